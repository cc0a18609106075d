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
use kvm_ioctls::{SyncReg, VcpuFd};

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
pub(crate) fn hv_call(vcpu: &mut VcpuFd, shared: &Shared) -> Next {
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
    let o = hyperv::dispatch(&shared.mem, call, shared.paravirt.hv_opts);
    shared.count(&o.name);
    shared.console_write(&o.console);
    complete_call(vcpu, shared, &sregs, o.rax)
}

/// A Xen hypercall through a stub's OUT to [`XEN_HYPERCALL_PORT`]; the stub's place in the
/// page gives the hypercall number.
pub(crate) fn xen_call(vcpu: &mut VcpuFd, shared: &Shared) -> Next {
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
    let env = xen::Env {
        mem: &shared.mem,
        paging: paging(&sregs),
        memory_map: &shared.memory_map,
    };
    let args = [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8];
    let o = {
        let mut st = lock(&shared.paravirt.xen);
        xen::dispatch(&mut st, &env, nr, args)
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
    complete_call(vcpu, shared, &sregs, o.rax as u64)
}
