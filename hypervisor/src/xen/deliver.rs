//! Event delivery and time refresh on [`XenState`]: an event's bits in shared_info, the
//! upcall (KVM_SIGNAL_MSI of the vCPU's upcall vector to its local APIC) and what Xen does
//! that KVM's LAPIC does not (an upcall refused by a disabled APIC is kept and retried;
//! naming the vector raises an upcall already pending); VIRQs, the host's debug key, and
//! the pvclock refresh.

use super::*;

impl XenState {
    /// Marks vCPU `v`'s upcall pending and injects its vector when it goes 0 -> 1 (or
    /// when an earlier injection was refused, see [`XenState::retry_owed`]).
    pub(super) fn upcall(&mut self, mem: &GuestMemoryMmap, v: u32) -> Option<u8> {
        let vi = self.vcpu_info_gpa(v)?;
        let was = shinfo::set_flag(mem, vi + VI_UPCALL_PENDING)?;
        self.notify.bump();
        if was != 0 {
            return self.retry_owed(v);
        }
        self.deliver(v)
    }

    /// Injects vCPU `v`'s upcall vector (KVM_SIGNAL_MSI). KVM drops a fixed interrupt to
    /// a local APIC that is software-disabled, where Xen's vlapic keeps it in the IRR until
    /// the guest enables it: Linux names its upcall vector before it enables its APIC, so
    /// that first upcall was lost and every later event found the selector already set
    /// (Debian's kernel never got its first VIRQ_TIMER). A refused injection is owed and
    /// retried ([`XenState::retry_owed`]) at the vCPU's next event or hypercall.
    fn deliver(&mut self, v: u32) -> Option<u8> {
        let vector = self.upcall_vector(v)?;
        let sink = self.sink.clone()?;
        let ok = sink.inject(v, vector);
        if let Some(o) = self.owed.get_mut(v as usize) {
            *o = !ok;
        }
        if ok {
            self.upcalls += 1;
            Some(vector)
        } else {
            None
        }
    }

    /// Injects an upcall owed to vCPU `v` (an earlier injection refused), if any.
    pub fn retry_owed(&mut self, v: u32) -> Option<u8> {
        if self.owed.get(v as usize).copied().unwrap_or(false) {
            self.deliver(v)
        } else {
            None
        }
    }

    /// Xen's `hvm_assert_evtchn_irq` when the guest names its upcall vector: if vCPU `v`
    /// has an upcall pending (set before there was a vector to raise, e.g. by
    /// VCPUOP_register_vcpu_info), the vector is injected now; otherwise that upcall would
    /// never come (events only inject on `evtchn_upcall_pending` going 0 -> 1).
    pub fn assert_upcall(&mut self, mem: &GuestMemoryMmap, v: u32) -> Option<u8> {
        let vi = self.vcpu_info_gpa(v)?;
        if shinfo::flag(mem, vi + VI_UPCALL_PENDING)? == 0 {
            return None;
        }
        self.deliver(v)
    }

    /// Sets `port` pending (2-level ABI, Xen's `evtchn_2l_set_pending`); returns the vector
    /// injected, if one was.
    pub fn set_pending(&mut self, mem: &GuestMemoryMmap, port: u32) -> Option<u8> {
        let Some(si) = self.shared_info else {
            if !self.early_pending.contains(&port) {
                self.early_pending.push(port);
            }
            return None;
        };
        let word = u64::from(port / 64) * 8;
        let bit = port % 64;
        if shinfo::test_and_set(mem, si + SI_EVTCHN_PENDING + word, bit)? {
            return None;
        }
        self.notify.bump();
        if shinfo::test(mem, si + SI_EVTCHN_MASK + word, bit)? {
            return None;
        }
        let v = self.evtchn.get(port).ok()?.vcpu;
        let vi = self.vcpu_info_gpa(v)?;
        if shinfo::test_and_set(mem, vi + VI_PENDING_SEL, port / 64)? {
            return self.retry_owed(v);
        }
        self.upcall(mem, v)
    }

    /// EVTCHNOP_unmask (Xen's `evtchn_2l_unmask`): clears the mask, and a pending event
    /// then goes to its vCPU.
    pub(super) fn unmask(&mut self, mem: &GuestMemoryMmap, port: u32) -> Result<Option<u8>, i64> {
        let p = self.evtchn.get(port)?;
        let Some(si) = self.shared_info else {
            return Ok(None);
        };
        let word = u64::from(port / 64) * 8;
        let bit = port % 64;
        shinfo::test_and_clear(mem, si + SI_EVTCHN_MASK + word, bit).ok_or(EFAULT)?;
        if shinfo::test(mem, si + SI_EVTCHN_PENDING + word, bit) == Some(true) {
            if let Some(vi) = self.vcpu_info_gpa(p.vcpu) {
                if shinfo::test_and_set(mem, vi + VI_PENDING_SEL, port / 64) == Some(false) {
                    return Ok(self.upcall(mem, p.vcpu));
                }
            }
        }
        Ok(None)
    }

    /// Raises `virq` on vCPU `v` if a port is bound to it (the timer thread's path).
    pub fn raise_virq(&mut self, mem: &GuestMemoryMmap, virq: u32, v: u32) -> Option<u8> {
        let port = self.evtchn.virq_port(virq, v)?;
        self.set_pending(mem, port)
    }

    /// Xen's 'q' debug key (`dump_domains`): VIRQ_DEBUG to each vCPU that bound it; returns
    /// the ports raised. The host's trigger ([`DebugKey`]); the guest cannot raise it.
    pub fn debug_key(&mut self, mem: &GuestMemoryMmap) -> Vec<u32> {
        (0..self.vcpus)
            .filter_map(|v| {
                let port = self.evtchn.virq_port(VIRQ_DEBUG, v)?;
                self.set_pending(mem, port);
                Some(port)
            })
            .collect()
    }
}

/// The host's Xen debug key of one VM ([`crate::Vm::xen_debug_key`]): pressing it raises
/// VIRQ_DEBUG as Xen's 'q' key does (native: the event's upcall, KVM_SIGNAL_MSI). Holds the
/// VM's Xen state weakly: once the VM is gone, [`DebugKey::press`] says so.
#[derive(Clone)]
pub struct DebugKey {
    pub(crate) state: std::sync::Weak<Mutex<XenState>>,
    pub(crate) mem: GuestMemoryMmap,
}

impl DebugKey {
    /// Raises VIRQ_DEBUG on every vCPU that bound it; the ports raised, or `None` when
    /// the VM has ended.
    pub fn press(&self) -> Option<Vec<u32>> {
        let st = self.state.upgrade()?;
        let ports = crate::state::lock(&st).debug_key(&self.mem);
        Some(ports)
    }
}

/// Refreshes every vCPU's pvclock time info from a new sample `s` (the caller's vCPU TSC
/// and the reference clock read together), as Xen's `update_vcpu_system_time` does when a
/// vCPU is scheduled or its timer fires: version odd, the fields, version even. Returns
/// what was written.
///
/// The guest's clock never steps back: if the old parameters already give a later time at
/// the new sample's TSC (the TSC ran a little fast against the reference clock), that time
/// is kept as the new `system_time` (the guest's clock then waits for the reference clock
/// at the same rate, ppm apart); a slow TSC is corrected forward at once. (KVM's vCPUs
/// share one TSC offset from creation, so one vCPU's sample serves them all.)
pub fn refresh_time(state: &mut XenState, mem: &GuestMemoryMmap, s: TscSample) -> TscSample {
    let s = match state.time {
        Some(old) if old.khz == s.khz && s.tsc >= old.tsc => {
            let (mul, shift) = shinfo::time_scale(old.khz);
            let then = old
                .ns
                .saturating_add(shinfo::scale_delta(s.tsc - old.tsc, mul, shift));
            TscSample {
                ns: s.ns.max(then),
                ..s
            }
        }
        _ => s,
    };
    state.write_times(mem, s);
    s
}

impl XenState {
    /// [`refresh_time`] from the calling vCPU's sample, if it can take one.
    pub(super) fn refresh(&mut self, env: &Env<'_>) {
        if self.shared_info.is_none() && self.vcpu_info.iter().all(Option::is_none) {
            return;
        }
        if let Some(s) = (env.clock)() {
            refresh_time(self, env.mem, s);
        }
    }
}
