//! What a stock kernel needs on a `nested_software` host (issue 11): a kernel command-line
//! fragment and VMM-side emulation of the few instructions this host's KVM emulator cannot
//! run. Applied only when [`crate::VmConfig::nested_fixes`] asks for it (the probe's KVM
//! classification decides in certify); on a hardware-assisted host the guest sees an honest
//! CPU and none of this runs.
//!
//! Why a command line and not the CPUID mask: on the `kvm_pvm` host, KVM_SET_CPUID2 keeps our
//! hypervisor leaves but replaces leaves 1, 7.0, 7.1 and 0xD with the host's (KVM_GET_CPUID2
//! right after the set shows it; both guest rings see the host's bits; see
//! `docs/stock-kernel-nested.md` and `tests/cpuid_seen.rs`). So [`crate::cpuid`]'s mask does not
//! reach the guest here and the kernel must be told with `clearcpuid=`/`noxsave`.
//!
//! Decoder: hand-rolled on purpose. It recognises exactly the instructions listed in
//! [`Action`] (a dozen encodings, one ModRM/SIB memory-operand decoder) and refuses anything
//! else, so the VM still ends with the KVM error for an instruction nobody looked at.
//! iced-x86 (what Cloud Hypervisor's emulator uses) decodes all of x86 but is a large
//! dependency (its decoder tables dominate a cold build on this 2-core machine) for
//! these few opcodes; if the list grows past a handful of SSE moves it becomes the better
//! choice, with this module's [`Action`] as the interface kept.
use crate::pagewalk::{self, PagingMode};
use kvm_bindings::{kvm_regs, kvm_sregs};
use kvm_ioctls::VcpuFd;
use vm_memory::GuestMemoryMmap;

mod cmdline;
mod decode;

pub use cmdline::{
    host_tsc_khz, nested_cmdline, tsc_options, with_nested_cmdline, CmdlineItem, NESTED_CMDLINE,
};
pub use decode::{decode, Action, CpuMode, DecodeError, MemRef, Operand, Seg};

/// General-purpose register `n` (0 = RAX .. 15 = R15).
pub fn gpr(r: &kvm_regs, n: u8) -> u64 {
    match n & 15 {
        0 => r.rax,
        1 => r.rcx,
        2 => r.rdx,
        3 => r.rbx,
        4 => r.rsp,
        5 => r.rbp,
        6 => r.rsi,
        7 => r.rdi,
        8 => r.r8,
        9 => r.r9,
        10 => r.r10,
        11 => r.r11,
        12 => r.r12,
        13 => r.r13,
        14 => r.r14,
        _ => r.r15,
    }
}

/// Sets general-purpose register `n` (0 = RAX .. 15 = R15).
pub fn set_gpr(r: &mut kvm_regs, n: u8, v: u64) {
    let slot = match n & 15 {
        0 => &mut r.rax,
        1 => &mut r.rcx,
        2 => &mut r.rdx,
        3 => &mut r.rbx,
        4 => &mut r.rsp,
        5 => &mut r.rbp,
        6 => &mut r.rsi,
        7 => &mut r.rdi,
        8 => &mut r.r8,
        9 => &mut r.r9,
        10 => &mut r.r10,
        11 => &mut r.r11,
        12 => &mut r.r12,
        13 => &mut r.r13,
        14 => &mut r.r14,
        _ => &mut r.r15,
    };
    *slot = v;
}

/// The linear address of `m` for an instruction of `len` bytes at `regs.rip`.
pub fn linear(m: &MemRef, regs: &kvm_regs, sregs: &kvm_sregs, mode: CpuMode, len: u8) -> u64 {
    let mut ea = m.disp as u64;
    if m.rip_relative {
        ea = ea.wrapping_add(regs.rip.wrapping_add(u64::from(len)));
    }
    if let Some(b) = m.base {
        ea = ea.wrapping_add(gpr(regs, b));
    }
    if let Some((i, s)) = m.index {
        ea = ea.wrapping_add(gpr(regs, i).wrapping_mul(u64::from(s)));
    }
    if m.addr32 {
        ea &= 0xffff_ffff;
    }
    let base = match (mode, m.seg) {
        (CpuMode::Long64, Seg::Fs) => sregs.fs.base,
        (CpuMode::Long64, Seg::Gs) => sregs.gs.base,
        (CpuMode::Long64, _) => 0,
        (_, Seg::Es) => sregs.es.base,
        (_, Seg::Cs) => sregs.cs.base,
        (_, Seg::Ss) => sregs.ss.base,
        (_, Seg::Ds) => sregs.ds.base,
        (_, Seg::Fs) => sregs.fs.base,
        (_, Seg::Gs) => sregs.gs.base,
    };
    let la = base.wrapping_add(ea);
    if mode == CpuMode::Long64 {
        la
    } else {
        la & 0xffff_ffff
    }
}

/// The instruction bytes of a KVM "emulation failure" internal error (`data` = the
/// `internal.data` words): `data[0]` bit 0 = KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES,
/// the low byte of `data[1]` = how many bytes were fetched, then up to 15 bytes.
pub fn failure_bytes(data: &[u64]) -> Option<Vec<u8>> {
    if data.len() < 3 || data[0] & 1 == 0 {
        return None;
    }
    let mut raw = Vec::with_capacity(24);
    for w in &data[1..data.len().min(3)] {
        raw.extend_from_slice(&w.to_le_bytes());
    }
    let n = usize::from(raw[0]).min(15);
    Some(raw[1..1 + n].to_vec())
}

/// Handles KVM_EXIT_INTERNAL_ERROR on `vcpu` (the last exit): an instruction-emulation
/// failure (suberror 1) on an instruction [`decode`] knows is emulated ([`emulate`]) and the
/// guest continues; anything else is `Err` with the reason (the VM then ends as before).
pub fn emulate_failure(vcpu: &mut VcpuFd, mem: &GuestMemoryMmap) -> Result<Action, String> {
    let run = vcpu.get_kvm_run();
    // SAFETY: the caller saw KVM_EXIT_INTERNAL_ERROR as the last exit, so `internal` is the
    // active member of the exit union; it is plain old data.
    let internal = unsafe { run.__bindgen_anon_1.internal };
    if internal.suberror != 1 {
        return Err(format!(
            "suberror {} is not an emulation failure",
            internal.suberror
        ));
    }
    let n = (internal.ndata as usize).min(internal.data.len());
    let bytes = failure_bytes(&internal.data[..n]);
    let action = emulate(vcpu, mem, bytes.as_deref()).map_err(|e| format!("VMM emulation: {e}"))?;
    // (KVM_SET_REGS went around the sync-regs area; KVM applies that area only when marked
    // dirty, so it does not undo this.)
    tracing::debug!(?action, "emulated after a KVM emulation failure");
    Ok(action)
}

/// MXCSR's 32-bit word in the XSAVE area (legacy region, byte 24).
const MXCSR_WORD: usize = 6;

/// The vCPU XSAVE size KVM reports (KVM_CAP_XSAVE2), read once per process. A vCPU thread
/// runs under its seccomp filter, where opening /dev/kvm fails: [`note_xsave_size`] records
/// it while the VM is built.
static XSAVE_SIZE: std::sync::OnceLock<i32> = std::sync::OnceLock::new();

/// Records the XSAVE size from the VMM's KVM handle (called while the VM is built, before
/// any vCPU thread's seccomp filter is on).
pub fn note_xsave_size(kvm: &kvm_ioctls::Kvm) {
    XSAVE_SIZE.get_or_init(|| kvm.check_extension_int(kvm_ioctls::Cap::Xsave2));
}

/// Sets the guest's MXCSR. Through KVM_GET/SET_XSAVE: KVM_SET_FPU ignores `mxcsr`
/// (seen here: an `ldmxcsr` emulated through it read back unchanged).
fn set_mxcsr(vcpu: &VcpuFd, v: u32) -> Result<(), String> {
    // KVM_SET_XSAVE copies the vCPU's whole XSAVE size from our 4096-byte struct; refuse if
    // that size (KVM_CAP_XSAVE2: 0 before Linux 5.17, i.e. 4096) exceeds it.
    let size = *XSAVE_SIZE.get_or_init(|| {
        kvm_ioctls::Kvm::new().map_or(-1, |k| k.check_extension_int(kvm_ioctls::Cap::Xsave2))
    });
    if !(0..=4096).contains(&size) {
        return Err(format!(
            "XSAVE state of {size} bytes: cannot set MXCSR through KVM_SET_XSAVE"
        ));
    }
    let mut x = vcpu
        .get_xsave()
        .map_err(|e| format!("KVM_GET_XSAVE: {e}"))?;
    x.region[MXCSR_WORD] = v;
    // SAFETY: `x` is the kernel's own XSAVE image of this vCPU with one word changed, and the
    // vCPU's XSAVE size is at most the struct's 4096 bytes (checked above), so the kernel
    // reads only inside `x`.
    unsafe { vcpu.set_xsave(&x) }.map_err(|e| format!("KVM_SET_XSAVE: {e}"))
}

/// An exception to inject instead of completing the instruction.
const GP: u32 = 13;

/// Emulates the instruction KVM failed on (internal error 1) on `vcpu`: decodes `bytes` (or,
/// when KVM gave none, the bytes at RIP read through the page walk), applies the [`Action`]
/// to registers, FPU/SSE state and guest memory. `Err` names why not (the VM then ends as
/// before, with this reason added).
pub fn emulate(
    vcpu: &VcpuFd,
    mem: &GuestMemoryMmap,
    bytes: Option<&[u8]>,
) -> Result<Action, String> {
    let mut regs = vcpu.get_regs().map_err(|e| format!("KVM_GET_REGS: {e}"))?;
    let sregs = vcpu
        .get_sregs()
        .map_err(|e| format!("KVM_GET_SREGS: {e}"))?;
    let mode = CpuMode::of(&sregs);
    let paging = PagingMode {
        cr0: sregs.cr0,
        cr3: sregs.cr3,
        cr4: sregs.cr4,
        efer: sregs.efer,
    };
    let fetched;
    let bytes = match bytes {
        Some(b) if !b.is_empty() => b,
        _ => {
            let rip = if mode == CpuMode::Long64 {
                regs.rip
            } else {
                sregs.cs.base.wrapping_add(regs.rip) & 0xffff_ffff
            };
            fetched = pagewalk::read_virt(mem, paging, rip, 15)
                .map_err(|e| format!("cannot read the instruction at {rip:#x}: {e:?}"))?;
            &fetched[..]
        }
    };
    let action = decode(bytes, mode).map_err(|e| e.to_string())?;
    let read = |m: &MemRef, len: u8, n: usize| {
        let la = linear(m, &regs, &sregs, mode, len);
        pagewalk::read_virt(mem, paging, la, n).map_err(|e| (la, e))
    };
    let mut fault = None;
    let advance = match action {
        Action::Breakpoint { len } => {
            let mut ev = vcpu
                .get_vcpu_events()
                .map_err(|e| format!("KVM_GET_VCPU_EVENTS: {e}"))?;
            ev.exception.injected = 1;
            ev.exception.nr = 3;
            ev.exception.has_error_code = 0;
            ev.exception.error_code = 0;
            regs.rip = regs.rip.wrapping_add(u64::from(len));
            vcpu.set_regs(&regs)
                .map_err(|e| format!("KVM_SET_REGS: {e}"))?;
            vcpu.set_vcpu_events(&ev)
                .map_err(|e| format!("KVM_SET_VCPU_EVENTS: {e}"))?;
            return Ok(action);
        }
        Action::Skip { len } => len,
        Action::SetAc { set, len } => {
            const AC: u64 = 1 << 18;
            regs.rflags = if set {
                regs.rflags | AC
            } else {
                regs.rflags & !AC
            };
            len
        }
        Action::Ldmxcsr { mem: m, len } => {
            let v = read(&m, len, 4).map_err(|(la, e)| format!("ldmxcsr [{la:#x}]: {e:?}"))?;
            let v = u32::from_le_bytes([v[0], v[1], v[2], v[3]]);
            if v & !0xffff != 0 {
                fault = Some(GP);
            } else {
                set_mxcsr(vcpu, v)?;
            }
            len
        }
        Action::Stmxcsr { mem: m, len } => {
            let x = vcpu
                .get_xsave()
                .map_err(|e| format!("KVM_GET_XSAVE: {e}"))?;
            let la = linear(&m, &regs, &sregs, mode, len);
            pagewalk::write_virt(mem, paging, la, &x.region[MXCSR_WORD].to_le_bytes())
                .map_err(|e| format!("stmxcsr [{la:#x}]: {e:?}"))?;
            len
        }
        Action::MovToXmm {
            xmm,
            src,
            wide,
            len,
        } => {
            let v = match src {
                Operand::Reg(n) => gpr(&regs, n),
                Operand::Mem(m) => {
                    let b = read(&m, len, if wide { 8 } else { 4 })
                        .map_err(|(la, e)| format!("movd [{la:#x}]: {e:?}"))?;
                    let mut w = [0u8; 8];
                    w[..b.len()].copy_from_slice(&b);
                    u64::from_le_bytes(w)
                }
            };
            let v = if wide { v } else { v & 0xffff_ffff };
            let mut fpu = vcpu.get_fpu().map_err(|e| format!("KVM_GET_FPU: {e}"))?;
            let mut x = [0u8; 16];
            x[..8].copy_from_slice(&v.to_le_bytes());
            fpu.xmm[usize::from(xmm & 15)] = x;
            vcpu.set_fpu(&fpu)
                .map_err(|e| format!("KVM_SET_FPU: {e}"))?;
            len
        }
        Action::MovFromXmm {
            xmm,
            dst,
            wide,
            len,
        } => {
            let fpu = vcpu.get_fpu().map_err(|e| format!("KVM_GET_FPU: {e}"))?;
            let x = fpu.xmm[usize::from(xmm & 15)];
            let mut w = [0u8; 8];
            w.copy_from_slice(&x[..8]);
            let v = u64::from_le_bytes(w);
            let v = if wide { v } else { v & 0xffff_ffff };
            match dst {
                Operand::Reg(n) => set_gpr(&mut regs, n, v),
                Operand::Mem(m) => {
                    let la = linear(&m, &regs, &sregs, mode, len);
                    let n = if wide { 8 } else { 4 };
                    pagewalk::write_virt(mem, paging, la, &v.to_le_bytes()[..n])
                        .map_err(|e| format!("movd [{la:#x}]: {e:?}"))?;
                }
            }
            len
        }
    };
    if let Some(nr) = fault {
        let mut ev = vcpu
            .get_vcpu_events()
            .map_err(|e| format!("KVM_GET_VCPU_EVENTS: {e}"))?;
        ev.exception.injected = 1;
        ev.exception.nr = nr as u8;
        ev.exception.has_error_code = 1;
        ev.exception.error_code = 0;
        vcpu.set_vcpu_events(&ev)
            .map_err(|e| format!("KVM_SET_VCPU_EVENTS: {e}"))?;
        return Ok(action);
    }
    regs.rip = regs.rip.wrapping_add(u64::from(advance));
    vcpu.set_regs(&regs)
        .map_err(|e| format!("KVM_SET_REGS: {e}"))?;
    Ok(action)
}

#[cfg(test)]
mod tests;
