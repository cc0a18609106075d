//! Requests one vCPU makes of others: the guest-TLB flushes of HvCallFlushVirtualAddress*
//! and the fixed IPIs of HvCallSendSyntheticClusterIpi* ([`crate::hyperv::Action`]).
//!
//! **TLB flushes.** KVM's own Hyper-V code (`kvm_hv_flush_tlb`) queues the ranges and makes
//! a `KVM_REQ_HV_TLB_FLUSH` / `KVM_REQ_TLB_FLUSH_GUEST` request of each target vCPU, waiting
//! (KVM_REQUEST_WAIT) until each one running guest code has left guest mode; the target
//! flushes before it re-enters. No ioctl makes that request directly, but KVM_SET_SREGS does
//! when CR0, CR3, CR4 or EFER change (`__set_sregs`: `kvm_mmu_reset_context` and
//! `KVM_REQ_TLB_FLUSH_GUEST`; on a shadow-paging host such as this one the reset also drops
//! and re-syncs the shadow roots). So a target flushes itself, on its own thread, before its
//! next KVM_RUN: KVM_SET_SREGS with CR4.PGE toggled, then the true registers back through the
//! kvm_run sync area (applied by the next KVM_RUN, before entry; a second reset, no extra
//! ioctl). That is the whole guest TLB (the TLFS allows flushing more than asked).
//!
//! The handshake mirrors KVM's `vcpu->mode`: a vCPU thread sets `in_guest` before it checks
//! for a pending flush and enters KVM_RUN, and clears it after; the requester sets `flush`,
//! then, if the target is in guest mode, kicks its thread (SIGRTMIN, KVM_RUN returns EINTR)
//! until the target has either taken the request or left guest mode. A kick landing just
//! before KVM_RUN is lost, hence the repeats. The hypercall returns only then, so no target
//! runs guest code with a stale TLB after the call, as the TLFS requires.
//!
//! **IPIs** go through the in-kernel LAPIC (KVM_SIGNAL_MSI, fixed, physical destination =
//! VP index = APIC ID), as the Xen adapter's upcalls do.
use crate::hypercall::MsiUpcall;
use crate::hyperv::Action;
use crate::state::Shared;
use crate::xen::Upcall;
use kvm_ioctls::{SyncReg, VcpuFd};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::{Duration, Instant};

/// CR4.PGE (global pages): toggling it makes KVM_SET_SREGS reset the MMU context.
const CR4_PGE: u64 = 1 << 7;
/// How often a requester re-kicks a target that has not answered.
const KICK_INTERVAL: Duration = Duration::from_micros(200);
/// How long a requester spins (yielding) for the answers before it sleeps between checks.
const SPIN_FOR: Duration = Duration::from_micros(100);
/// Sleep between checks after that.
const SLEEP_STEP: Duration = Duration::from_micros(50);
/// How long a requester waits for a target before giving up (a VMM bug or a stopping VM).
const ACK_TIMEOUT: Duration = Duration::from_secs(2);

/// One vCPU's side of the requests.
#[derive(Default)]
pub(crate) struct VpRequest {
    /// The vCPU thread's kernel thread id (0 until it runs).
    tid: AtomicI32,
    /// Inside (or about to enter) KVM_RUN.
    in_guest: AtomicBool,
    /// A guest-TLB flush is pending.
    flush: AtomicBool,
}

/// Every vCPU's requests, and the IPI path.
pub(crate) struct VpRequests {
    pid: i32,
    vps: Vec<VpRequest>,
    msi: Option<MsiUpcall>,
}

impl VpRequests {
    /// For `n` vCPUs; IPIs through `msi` (none in tests without a VM).
    pub(crate) fn new(n: usize, msi: Option<MsiUpcall>) -> Self {
        VpRequests {
            // SAFETY: getpid has no preconditions.
            pid: unsafe { libc::getpid() },
            vps: (0..n).map(|_| VpRequest::default()).collect(),
            msi,
        }
    }

    /// Number of vCPUs.
    fn len(&self) -> u32 {
        self.vps.len() as u32
    }

    /// Called by vCPU thread `id` once, before its first KVM_RUN.
    pub(crate) fn register_thread(&self, id: usize) {
        if let Some(v) = self.vps.get(id) {
            // SAFETY: gettid has no preconditions.
            v.tid.store(unsafe { libc::gettid() }, Ordering::SeqCst);
        }
    }

    /// Called by vCPU thread `id` right before KVM_RUN: enters guest mode and carries out a
    /// pending flush: whether it flushed. An error if the flush failed (the caller ends
    /// the VM: a target that cannot flush must not run on). `synced`: the kvm_run sync area
    /// holds the vCPU's registers (it has returned from KVM_RUN at least once).
    pub(crate) fn enter(&self, id: usize, vcpu: &mut VcpuFd, synced: bool) -> Result<bool, String> {
        if self.begin(id) {
            flush_guest_tlb(vcpu, synced)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Enters guest mode; whether a flush was pending (and is now taken).
    fn begin(&self, id: usize) -> bool {
        let Some(v) = self.vps.get(id) else {
            return false;
        };
        v.in_guest.store(true, Ordering::SeqCst);
        v.flush.swap(false, Ordering::SeqCst)
    }

    /// Called by vCPU thread `id` right after KVM_RUN returns.
    pub(crate) fn leave(&self, id: usize) {
        if let Some(v) = self.vps.get(id) {
            v.in_guest.store(false, Ordering::SeqCst);
        }
    }

    /// Carries out a hypercall's action; returns how many VPs it reached. `stopping` ends the wait for acknowledgements early.
    pub(crate) fn carry_out(&self, action: Action, stopping: &dyn Fn() -> bool) -> u32 {
        match action {
            Action::Ipi { vector, targets } => {
                let Some(msi) = &self.msi else { return 0 };
                let mut n = 0;
                for vp in targets.iter(self.len()) {
                    n += u32::from(msi.inject(vp, vector));
                }
                n
            }
            Action::Flush(targets) => {
                let mut waiting = Vec::new();
                for vp in targets.iter(self.len()) {
                    let v = &self.vps[vp as usize];
                    v.flush.store(true, Ordering::SeqCst);
                    if v.in_guest.load(Ordering::SeqCst) {
                        waiting.push(vp as usize);
                    }
                }
                let n = targets.iter(self.len()).count() as u32;
                self.wait_acks(waiting, stopping);
                n
            }
        }
    }

    /// Kicks each of `waiting` until it has taken its flush request or left guest mode.
    fn wait_acks(&self, mut waiting: Vec<usize>, stopping: &dyn Fn() -> bool) {
        let t0 = Instant::now();
        let mut kicked = None::<Instant>;
        loop {
            waiting.retain(|&i| {
                let v = &self.vps[i];
                v.flush.load(Ordering::SeqCst) && v.in_guest.load(Ordering::SeqCst)
            });
            if waiting.is_empty() || stopping() {
                return;
            }
            if t0.elapsed() > ACK_TIMEOUT {
                tracing::warn!("vCPUs {waiting:?} did not take a TLB flush request");
                return;
            }
            if kicked.is_none_or(|k| k.elapsed() >= KICK_INTERVAL) {
                for &i in &waiting {
                    self.kick(i);
                }
                kicked = Some(Instant::now());
            }
            // A target answers in ~50-80 us here; on a loaded host it waits for a CPU
            // (seen: 10-20 ms at a load of 15 on 2 cores), which spinning would only delay.
            if t0.elapsed() < SPIN_FOR {
                std::thread::yield_now();
            } else {
                std::thread::sleep(SLEEP_STEP);
            }
        }
    }

    /// Sends the kick signal to vCPU `i`'s thread.
    fn kick(&self, i: usize) {
        let tid = self.vps[i].tid.load(Ordering::SeqCst);
        if tid != 0 {
            // SAFETY: tgkill with this process's pid and one of its thread ids; the signal
            // (SIGRTMIN) has a no-op handler (`kick_handler_install`).
            unsafe {
                libc::syscall(
                    libc::SYS_tgkill,
                    self.pid,
                    tid,
                    vmm_sys_util::signal::SIGRTMIN(),
                )
            };
        }
    }
}

/// Flushes the vCPU's guest TLB (see the module notes): CR4.PGE toggled by KVM_SET_SREGS,
/// the true registers back through the sync area at the next KVM_RUN. The system registers
/// come from the sync area when it is current (KVM fills it on every return from KVM_RUN,
/// and nothing sets them by ioctl between runs): one ioctl instead of two.
fn flush_guest_tlb(vcpu: &mut VcpuFd, synced: bool) -> Result<(), String> {
    let sregs = if synced {
        vcpu.sync_regs().sregs
    } else {
        vcpu.get_sregs()
            .map_err(|e| format!("KVM_GET_SREGS: {e}"))?
    };
    let mut toggled = sregs;
    toggled.cr4 ^= CR4_PGE;
    vcpu.set_sregs(&toggled)
        .map_err(|e| format!("KVM_SET_SREGS (TLB flush): {e}"))?;
    vcpu.sync_regs_mut().sregs = sregs;
    vcpu.set_sync_dirty_reg(SyncReg::SystemRegister);
    Ok(())
}

/// Carries out a hypercall's `action` and counts the VPs it reached (under
/// `vp-tlb-flush-requested` / `vp-ipi-sent`; each target counts `vp-tlb-flush-done` when it
/// flushes).
pub(crate) fn act(shared: &Shared, action: Action) {
    let n = shared.vp_requests.carry_out(action, &|| shared.stopping());
    let what = match action {
        Action::Flush(_) => "vp-tlb-flush-requested",
        Action::Ipi { .. } => "vp-ipi-sent",
    };
    for _ in 0..n {
        shared.count(what);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hyperv::VpSet;
    use std::sync::atomic::AtomicU64;
    use std::sync::Arc;

    /// A target "in guest mode" (blocked in pause() as a vCPU in KVM_RUN) is kicked out, and
    /// the request is taken before it "re-enters"; the requester waits for that, not longer.
    #[test]
    fn a_flush_kicks_a_target_in_guest_mode_and_waits_for_it() {
        crate::vstate::vcpu::kick_handler_install();
        let r = Arc::new(VpRequests::new(2, None));
        let flushed = Arc::new(AtomicU64::new(0));
        let (r2, f2) = (r.clone(), flushed.clone());
        let t = std::thread::spawn(move || {
            r2.register_thread(1);
            loop {
                if r2.begin(1) {
                    f2.fetch_add(1, Ordering::SeqCst);
                    r2.leave(1);
                    return;
                }
                // SAFETY: pause() only waits for a signal.
                unsafe { libc::pause() };
                r2.leave(1);
            }
        });
        while !r.vps[1].in_guest.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        let t0 = Instant::now();
        let n = r.carry_out(Action::Flush(VpSet::from_mask(0b10)), &|| false);
        let waited = t0.elapsed();
        assert_eq!(n, 1);
        assert!(waited < Duration::from_millis(500), "waited {waited:?}");
        t.join().unwrap();
        assert_eq!(flushed.load(Ordering::SeqCst), 1);
        // A target outside guest mode is not waited for; VPs the VM lacks are ignored.
        let t0 = Instant::now();
        assert_eq!(r.carry_out(Action::Flush(VpSet::ALL), &|| false), 2);
        assert_eq!(
            r.carry_out(Action::Flush(VpSet::from_mask(0b100)), &|| false),
            0
        );
        assert!(t0.elapsed() < Duration::from_millis(100));
        assert!(r.begin(0) && r.begin(1), "both flagged by the ALL flush");
    }
}
