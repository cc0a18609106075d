//! Hypercall entry: the origin check of a hypercall port exit (CPL 0, from the enabled
//! page's OUT), the hand-off to the Hyper-V dispatcher ([`crate::hyperv`]) or the Xen
//! adapter ([`crate::xen`]), and the completion through the kvm_run sync area (RAX, and the
//! page's `ret` done by the VMM). Refused calls get #UD.
use crate::abi::xen::STUB_SIZE;
use crate::abi::{OPCODE_OUT_IMM8_EAX, PAGE_SIZE};
use crate::exits::Next;
use crate::layout::{HV_HYPERCALL_PORT, XEN_HYPERCALL_PORT};
use crate::pagewalk::{self, PagingMode};
use crate::state::{lock, Shared};
use crate::xen::{self, XenEnd};
use crate::{hyperv, VmEnd};
use kvm_ioctls::{SyncReg, VcpuFd, VmFd};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// RFLAGS.TF (single-step).
const RFLAGS_TF: u64 = 1 << 8;
/// CR4.CET (control-flow enforcement: a shadow stack holds return addresses too).
const CR4_CET: u64 = 1 << 23;
/// The invalid-opcode exception vector.
const EXCEPTION_UD: u8 = 6;

/// The guest's paging mode from its system registers.
pub(crate) fn paging(s: &kvm_bindings::kvm_sregs) -> PagingMode {
    PagingMode {
        cr0: s.cr0,
        cr3: s.cr3,
        cr4: s.cr4,
        efer: s.efer,
    }
}

/// Checks that the exit came from CPL 0 and from inside the page at `page_gpa`; returns the
/// offset of RIP in the page.
/// Registers come from the kvm_run sync area (KVM_CAP_SYNC_REGS), filled by KVM on every exit:
/// each register ioctl costs ~7 us on this nested host, three of them would triple the cost
/// of a hypercall.
///
/// Checks that the exit came from CPL 0 and from the OUT at `out_offset` (or, for Xen, any
/// stub's OUT: `stride`) of the page at `page_gpa`. KVM reports a port exit with RIP past
/// the OUT (as on this host) or at it, so both are tried, and the instruction bytes
/// must be `out imm8, eax` to `port`. Returns the OUT's offset in the page.
fn check_origin(
    vcpu: &VcpuFd,
    shared: &Shared,
    page_gpa: Option<u64>,
    port: u16,
    out_offset: u64,
    stride: u64,
) -> Result<(kvm_bindings::kvm_regs, kvm_bindings::kvm_sregs, u64), String> {
    let sync = vcpu.sync_regs();
    let (regs, sregs) = (sync.regs, sync.sregs);
    let cpl = sregs.cs.selector & 3;
    if cpl != 0 {
        return Err(format!("hypercall from CPL {cpl}"));
    }
    let Some(page) = page_gpa else {
        return Err("hypercall port used while no hypercall page is enabled".into());
    };
    let mode = paging(&sregs);
    // Past the OUT first: that is where this host leaves RIP (one page walk instead of two).
    for rip in [regs.rip.wrapping_sub(2), regs.rip] {
        let Ok(gpa) = pagewalk::translate(&shared.mem, mode, rip) else {
            continue;
        };
        let Some(insn) = pagewalk::read_phys::<[u8; 2]>(&shared.mem, gpa) else {
            continue;
        };
        if insn != [OPCODE_OUT_IMM8_EAX, port as u8] {
            continue;
        }
        let off = gpa.wrapping_sub(page);
        if off < PAGE_SIZE && off % stride == out_offset {
            return Ok((regs, sregs, off));
        }
    }
    Err(format!(
        "hypercall port {port:#x} used from RIP {:#x}, not from the hypercall page at {page:#x}",
        regs.rip
    ))
}

/// Completes a hypercall through the sync area: RAX = the result, and the page's `ret` is
/// done here (RIP = the return address at [RSP], RSP + 8). Guest ring 0 is emulated on this
/// host (~1 us an instruction), so that saves a tenth of every call; the guest cannot tell,
/// since it never sees the page between its `call` and the return. The guest runs the page's
/// own `ret` instead when doing it here could differ: outside 64-bit mode, when single-
/// stepping (RFLAGS.TF), with CET enabled (a shadow stack also holds the return address),
/// when [RSP] is not readable RAM or the address is not canonical (the guest's `ret` then
/// faults as it should).
/// (KVM applies the dirty registers before it completes the port I/O, and it skips the OUT
/// on re-entry only if RIP is unchanged, so RIP may be set whether the exit left it at the
/// OUT, as VMX's fast path does, or past it, as on this host.)
fn complete_call(
    vcpu: &mut VcpuFd,
    shared: &Shared,
    sregs: &kvm_bindings::kvm_sregs,
    rax: u64,
) -> Next {
    let regs = &mut vcpu.sync_regs_mut().regs;
    regs.rax = rax;
    if sregs.cs.l == 1 && regs.rflags & RFLAGS_TF == 0 && sregs.cr4 & CR4_CET == 0 {
        // (A return address that straddles two pages is left to the guest's `ret`.)
        let ret = (regs.rsp & (PAGE_SIZE - 1) <= PAGE_SIZE - 8)
            .then(|| pagewalk::translate(&shared.mem, paging(sregs), regs.rsp).ok())
            .flatten()
            .and_then(|gpa| pagewalk::read_phys::<u64>(&shared.mem, gpa));
        if let Some(ret) = ret.filter(|&r| ((r as i64) << 16 >> 16) as u64 == r) {
            regs.rip = ret;
            regs.rsp = regs.rsp.wrapping_add(8);
        }
    }
    vcpu.set_sync_dirty_reg(SyncReg::Register);
    Next::Continue
}

/// Injects #UD (a refused hypercall, as a hypervisor does for VMCALL it refuses).
pub(crate) fn inject_ud(vcpu: &VcpuFd, why: &str) -> Next {
    tracing::debug!("#UD: {why}");
    let mut ev = match vcpu.get_vcpu_events() {
        Ok(ev) => ev,
        Err(e) => return Next::Crash(format!("KVM_GET_VCPU_EVENTS: {e}")),
    };
    ev.exception.injected = 1;
    ev.exception.nr = EXCEPTION_UD;
    ev.exception.has_error_code = 0;
    ev.exception.error_code = 0;
    match vcpu.set_vcpu_events(&ev) {
        Ok(()) => Next::Continue,
        Err(e) => Next::Crash(format!("KVM_SET_VCPU_EVENTS: {e}")),
    }
}

/// A Hyper-V hypercall through the page's OUT to [`HV_HYPERCALL_PORT`].
pub(crate) fn hv_call(id: usize, vcpu: &mut VcpuFd, shared: &Shared) -> Next {
    let page = lock(&shared.paravirt.hv).hypercall_page_gpa();
    let (regs, sregs, _off) = match check_origin(
        vcpu,
        shared,
        page,
        HV_HYPERCALL_PORT,
        hyperv::HYPERCALL_OUT_OFFSET,
        PAGE_SIZE,
    ) {
        Ok(x) => x,
        Err(why) => return inject_ud(vcpu, &why),
    };
    let call = hyperv::Call {
        input: regs.rcx,
        in_gpa: regs.rdx,
        out_gpa: regs.r8,
    };
    let opts = shared.paravirt.hv_opts;
    // XMM fast input: the registers only when the call reads them (an ioctl, ~7 us here).
    let xmm = if hyperv::wants_xmm(call.input, &opts.features) {
        match vcpu.get_fpu() {
            Ok(fpu) => Some(xmm_qwords(&fpu)),
            Err(e) => return Next::Crash(format!("KVM_GET_FPU (XMM hypercall input): {e}")),
        }
    } else {
        None
    };
    let conns = shared.paravirt.synic.connections();
    let o = hyperv::dispatch_full(&shared.mem, call, opts, id as u32, conns.as_ref(), xmm);
    shared.count(&o.name);
    shared.console_write(&o.console);
    if let Some(action) = o.action {
        crate::vp_requests::act(shared, action);
    }
    complete_call(vcpu, shared, &sregs, o.rax)
}

/// XMM0..XMM5 as qwords, low half first (TLFS XMM fast hypercall input).
fn xmm_qwords(fpu: &kvm_bindings::kvm_fpu) -> [u64; crate::abi::hv::XMM_INPUT_QWORDS] {
    let mut q = [0u64; crate::abi::hv::XMM_INPUT_QWORDS];
    for (i, x) in q.iter_mut().enumerate() {
        let reg = &fpu.xmm[i / 2];
        let half = &reg[(i % 2) * 8..(i % 2) * 8 + 8];
        let mut b = [0u8; 8];
        b.copy_from_slice(half);
        *x = u64::from_le_bytes(b);
    }
    q
}

/// Upcalls through the in-kernel LAPIC: KVM_SIGNAL_MSI with a fixed, edge-triggered
/// message to the vCPU's APIC ID (KVM gives vCPU n APIC ID n). Holds the VM fd weakly so
/// the VM's teardown is not delayed by a Xen timer thread.
pub(crate) struct MsiUpcall {
    vm: Weak<VmFd>,
}

impl MsiUpcall {
    /// An injector for `vm`.
    pub(crate) fn new(vm: &Arc<VmFd>) -> Self {
        MsiUpcall {
            vm: Arc::downgrade(vm),
        }
    }
}

/// The LAPIC's MSI address window (destination APIC ID in bits 19:12, physical mode).
const MSI_ADDRESS_BASE: u32 = 0xfee0_0000;

impl xen::Upcall for MsiUpcall {
    fn inject(&self, vcpu: u32, vector: u8) -> bool {
        let Some(vm) = self.vm.upgrade() else {
            return false;
        };
        let msi = kvm_bindings::kvm_msi {
            address_lo: MSI_ADDRESS_BASE | ((vcpu & 0xff) << 12),
            address_hi: 0,
            data: u32::from(vector),
            ..Default::default()
        };
        vm.signal_msi(msi).is_ok_and(|n| n > 0)
    }
}

impl hyperv::synic::Inject for MsiUpcall {
    fn inject(&self, vp: u32, vector: u8) -> bool {
        xen::Upcall::inject(self, vp, vector)
    }
    fn msi(&self, address_lo: u32, data: u32) -> bool {
        let Some(vm) = self.vm.upgrade() else {
            return false;
        };
        let msi = kvm_bindings::kvm_msi {
            address_lo,
            data,
            ..Default::default()
        };
        vm.signal_msi(msi).is_ok_and(|n| n > 0)
    }
}

/// The calling vCPU's IA32_TSC and the reference time right after it, and the TSC rate.
fn tsc_sample(vcpu: &VcpuFd, shared: &Shared) -> Option<xen::TscSample> {
    const MSR_IA32_TSC: u32 = 0x10;
    let mut msrs = kvm_bindings::Msrs::from_entries(&[kvm_bindings::kvm_msr_entry {
        index: MSR_IA32_TSC,
        ..Default::default()
    }])
    .ok()?;
    let n = vcpu.get_msrs(&mut msrs).ok()?;
    let ns = shared.ref_clock().ns();
    let khz = vcpu.get_tsc_khz().ok()?;
    (n == 1).then(|| xen::TscSample {
        tsc: msrs.as_slice()[0].data,
        ns,
        khz,
    })
}

/// Waits for a SCHEDOP_block / SCHEDOP_poll condition, outside the Xen state's lock: until
/// an event it waits for is pending, its deadline passes or the VM stops.
fn xen_wait(shared: &Shared, w: &xen::Wait) {
    let notify = lock(&shared.paravirt.xen).notify.clone();
    let clock = shared.ref_clock();
    loop {
        let seen = notify.generation();
        if lock(&shared.paravirt.xen).wait_done(&shared.mem, w) || shared.stopping() {
            return;
        }
        let now = clock.ns();
        let slice = match w.deadline {
            Some(d) if d <= now => return,
            Some(d) => Duration::from_nanos(d - now).min(WAIT_SLICE),
            None => WAIT_SLICE,
        };
        notify.wait(seen, slice);
    }
}

/// Longest a blocked vCPU thread sleeps before it checks whether the VM is stopping.
const WAIT_SLICE: Duration = Duration::from_millis(10);

/// A Xen hypercall through a stub's OUT to [`XEN_HYPERCALL_PORT`]; the stub's place in the
/// page gives the hypercall number.
pub(crate) fn xen_call(id: usize, vcpu: &mut VcpuFd, shared: &Shared) -> Next {
    let page = lock(&shared.paravirt.xen).page_gpa;
    let (regs, sregs, off) = match check_origin(
        vcpu,
        shared,
        page,
        XEN_HYPERCALL_PORT,
        xen::STUB_OUT_OFFSET,
        STUB_SIZE,
    ) {
        Ok(x) => x,
        Err(why) => return inject_ud(vcpu, &why),
    };
    let nr = (off / STUB_SIZE) as u32;
    let now_ns = shared.ref_clock().ns();
    let boot_unix_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
        .saturating_sub(u128::from(now_ns));
    let o = {
        let vcpu_ref: &VcpuFd = vcpu;
        let clock = || tsc_sample(vcpu_ref, shared);
        let env = xen::Env {
            mem: &shared.mem,
            paging: paging(&sregs),
            memory_map: &shared.memory_map,
            vcpu: id as u32,
            now_ns,
            clock: &clock,
            boot_unix_ns,
        };
        let args = [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8];
        let mut st = lock(&shared.paravirt.xen);
        let o = xen::dispatch(&mut st, &env, nr, args);
        if o.timer_armed && !st.timer_thread {
            let started = xen::timer::spawn(
                Arc::downgrade(&shared.paravirt.xen),
                st.timers.clone(),
                shared.ref_clock(),
                shared.mem.clone(),
            );
            st.timer_thread = started.is_ok();
        }
        o
    };
    shared.count(&format!("xen:{}", xen::name(nr)));
    if let Some(native) = o.native {
        shared.count(native);
    }
    lock(&shared.stats.trace).push(o.trace);
    shared.console_write(&o.console);
    match o.end {
        Some(XenEnd::Poweroff) => return Next::End(VmEnd::Shutdown),
        Some(XenEnd::Crash(reason)) => return Next::Crash(reason),
        None => {}
    }
    if let Some(w) = &o.wait {
        xen_wait(shared, w);
    }
    complete_call(vcpu, shared, &sregs, o.rax as u64)
}
