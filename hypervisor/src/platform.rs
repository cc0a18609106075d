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

/// One item of the nested-host command line: the option and the failure it prevents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CmdlineItem {
    /// The kernel option, as written on the command line.
    pub option: &'static str,
    /// What goes wrong on this host without it (the message seen, 2026-12-06).
    pub prevents: &'static str,
}

/// The command-line fragment for a stock Linux kernel (6.1 takes `clearcpuid=` feature
/// names) on a `nested_software` host, each item with the failure it prevents.
pub const NESTED_CMDLINE: &[CmdlineItem] = &[
    CmdlineItem {
        option: "noxsave",
        prevents: "KVM internal error 1 (emulation failure) on `xrstor` in fpu__init: the \
                   guest sees the host's XSAVE bit whatever KVM_SET_CPUID2 says",
    },
    CmdlineItem {
        option: "clearcpuid=popcnt,smap,smep,avx,avx2,avx512f,cx16,bmi1,bmi2,movbe,sse4_1,\
                 sse4_2,ssse3,rdrand,rdseed,fma,f16c,aes,pclmulqdq,adx,sha_ni,pcid,invpcid",
        prevents: "emulation failures on `popcnt` (hweight alternatives), `clac`/`stac` \
                   (SMAP; also emulated below, but each costs an exit), `lock cmpxchg16b` \
                   (cx16), VEX/EVEX and SSE4/SSSE3 code chosen by alternatives and \
                   crypto/raid drivers, `rdrand` (random init), `invpcid` (TLB flushes)",
    },
    CmdlineItem {
        option: "cryptomgr.notests",
        prevents: "crypto self-tests at boot running SSE code through the emulator \
                   (minutes of emulated ring 0 and SSE instructions it cannot run)",
    },
    CmdlineItem {
        option: "mitigations=off",
        prevents: "speculation-barrier work on every kernel entry (MSR writes, RSB \
                   stuffing), each instruction emulated at ~1 us",
    },
    CmdlineItem {
        option: "nosoftlockup",
        prevents: "~200 s of soft-lockup warnings (stack dumps through the emulated UART) \
                   while ftrace converts its call sites at ~1 us an instruction",
    },
];

/// [`NESTED_CMDLINE`] as one space-separated string.
pub fn nested_cmdline() -> String {
    NESTED_CMDLINE
        .iter()
        .map(|i| i.option)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The clock options for a guest whose TSC runs at `tsc_khz`: `tsc_early_khz=` (Linux
/// 5.6+) and `tsc=reliable`. Without them, on this host the kernel cannot calibrate the TSC
/// ("tsc: Unable to calibrate against PIT", "No reference (HPET/PMTIMER) available",
/// "Marking TSC unstable") and runs on the jiffies clocksource, so its timestamps follow the
/// (emulated, late) timer interrupts rather than time. `None` (frequency unknown): nothing.
///
/// Not applied by default (`Vm::new` passes `None`): measured 2026-12-06, with these the
/// kernel keeps real time but every 4 ms tick is handled in emulated ring 0 ("hrtimer:
/// interrupt took 17399618 ns"), and the boot crawled: the 1500 s timeout found it where
/// the jiffies run was by ~10 minutes (docs/stock-kernel-nested.md, run 2; the jiffies
/// clock loses the ticks the guest cannot keep up with, which is what lets it progress).
pub fn tsc_options(tsc_khz: Option<u32>) -> String {
    match tsc_khz {
        Some(khz) if khz > 0 => format!("tsc_early_khz={khz} tsc=reliable"),
        _ => String::new(),
    }
}

/// `user` with [`nested_cmdline`] and [`tsc_options`] appended (the user's own options come
/// first).
pub fn with_nested_cmdline(user: &str, tsc_khz: Option<u32>) -> String {
    let mut parts: Vec<String> = Vec::new();
    if !user.trim().is_empty() {
        parts.push(user.trim().to_string());
    }
    parts.push(nested_cmdline());
    let tsc = tsc_options(tsc_khz);
    if !tsc.is_empty() {
        parts.push(tsc);
    }
    parts.join(" ")
}

/// The vCPUs' TSC frequency (KVM_GET_TSC_KHZ on a throwaway VM's vCPU: the ioctl needs a
/// vCPU, and the real ones are created after the command line is written). `None` when
/// KVM cannot tell.
pub fn host_tsc_khz(kvm: &kvm_ioctls::Kvm) -> Option<u32> {
    let vm = kvm.create_vm().ok()?;
    let vcpu = vm.create_vcpu(0).ok()?;
    vcpu.get_tsc_khz().ok().filter(|&k| k > 0)
}

/// The CPU mode an instruction is decoded in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuMode {
    /// 64-bit mode (CS.L = 1 with EFER.LMA): REX prefixes, RIP-relative addressing.
    Long64,
    /// 32-bit protected (or compatibility) mode with CS.D = 1.
    Protected32,
    /// Anything else (real mode, 16-bit code): nothing is emulated there.
    Other,
}

impl CpuMode {
    /// The mode described by the vCPU's system registers.
    pub fn of(s: &kvm_sregs) -> CpuMode {
        const EFER_LMA: u64 = 1 << 10;
        if s.cr0 & 1 == 0 {
            CpuMode::Other
        } else if s.cs.l == 1 && s.efer & EFER_LMA != 0 {
            CpuMode::Long64
        } else if s.cs.db == 1 {
            CpuMode::Protected32
        } else {
            CpuMode::Other
        }
    }
}

/// A segment register named by a prefix (only FS/GS have a base in 64-bit mode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seg {
    /// ES (prefix 0x26).
    Es,
    /// CS (prefix 0x2e).
    Cs,
    /// SS (prefix 0x36).
    Ss,
    /// DS (prefix 0x3e, and the default).
    Ds,
    /// FS (prefix 0x64).
    Fs,
    /// GS (prefix 0x65).
    Gs,
}

/// A decoded memory operand: seg:[base + index * scale + disp] (or [RIP + len + disp]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemRef {
    /// The segment (DS unless overridden; SS for RSP/RBP bases is irrelevant: no base then).
    pub seg: Seg,
    /// Base register number (0 = RAX .. 15 = R15).
    pub base: Option<u8>,
    /// Index register number and scale (1, 2, 4, 8).
    pub index: Option<(u8, u8)>,
    /// Sign-extended displacement.
    pub disp: i64,
    /// RIP-relative (64-bit mode, ModRM mod 00 r/m 101): relative to the next instruction.
    pub rip_relative: bool,
    /// 32-bit address size (0x67 prefix in 64-bit mode, or 32-bit mode): the sum wraps at
    /// 4 GiB.
    pub addr32: bool,
}

/// A general-purpose register or memory operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operand {
    /// Register number (0 = RAX .. 15 = R15).
    Reg(u8),
    /// A memory operand.
    Mem(MemRef),
}

/// What to do for one instruction the host's emulator failed on. `len` is the
/// instruction's length (RIP advances by it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// `int3` (cc): inject #BP with RIP past it (Linux's int3 self-test in alternatives).
    Breakpoint {
        /// Instruction length.
        len: u8,
    },
    /// `fwait` (9b): nothing to do with no x87 exception pending; RIP + len.
    Skip {
        /// Instruction length.
        len: u8,
    },
    /// `clac` (0f 01 ca, `set` false) / `stac` (0f 01 cb, `set` true): RFLAGS.AC.
    SetAc {
        /// New value of RFLAGS.AC.
        set: bool,
        /// Instruction length.
        len: u8,
    },
    /// `ldmxcsr m32` (0f ae /2): MXCSR := `[mem]`.
    Ldmxcsr {
        /// The source.
        mem: MemRef,
        /// Instruction length.
        len: u8,
    },
    /// `stmxcsr m32` (0f ae /3): `[mem]` := MXCSR.
    Stmxcsr {
        /// The destination.
        mem: MemRef,
        /// Instruction length.
        len: u8,
    },
    /// `movd/movq xmm, r/m32/64` (`66 [REX] 0f 6e /r`): `XMM[xmm]` := zero-extended source.
    MovToXmm {
        /// Destination XMM register (0..=15).
        xmm: u8,
        /// Source register or memory.
        src: Operand,
        /// 64-bit (`movq`, REX.W) rather than 32-bit.
        wide: bool,
        /// Instruction length.
        len: u8,
    },
    /// `movd/movq r/m32/64, xmm` (`66 [REX] 0f 7e /r`): destination := `XMM[xmm]` low bits (a
    /// 32-bit register destination is zero-extended, as any 32-bit register write).
    MovFromXmm {
        /// Source XMM register (0..=15).
        xmm: u8,
        /// Destination register or memory.
        dst: Operand,
        /// 64-bit (`movq`, REX.W) rather than 32-bit.
        wide: bool,
        /// Instruction length.
        len: u8,
    },
}

/// Why an instruction is not emulated here.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes end before the instruction does.
    #[error("instruction bytes end early")]
    Truncated,
    /// Not one of the instructions this module handles.
    #[error("not an instruction the VMM emulates: {0}")]
    Unsupported(String),
}

fn unsupported(what: &str, bytes: &[u8]) -> DecodeError {
    DecodeError::Unsupported(format!("{what} ({:02x?})", bytes))
}

/// Decodes the instruction at the start of `bytes` in `mode` into an [`Action`].
pub fn decode(bytes: &[u8], mode: CpuMode) -> Result<Action, DecodeError> {
    if mode == CpuMode::Other {
        return Err(unsupported("not in 32- or 64-bit mode", bytes));
    }
    let long = mode == CpuMode::Long64;
    let mut i = 0usize;
    let mut opsize = false;
    let mut rep = false;
    let mut addr32 = !long;
    let mut seg = Seg::Ds;
    loop {
        let b = *bytes.get(i).ok_or(DecodeError::Truncated)?;
        match b {
            0x66 => opsize = true,
            0xf2 | 0xf3 | 0xf0 => rep = true,
            0x67 => addr32 = !addr32 || long,
            0x26 => seg = Seg::Es,
            0x2e => seg = Seg::Cs,
            0x36 => seg = Seg::Ss,
            0x3e => seg = Seg::Ds,
            0x64 => seg = Seg::Fs,
            0x65 => seg = Seg::Gs,
            _ => break,
        }
        i += 1;
        if i >= 15 {
            return Err(unsupported("too many prefixes", bytes));
        }
    }
    if !long && addr32 && bytes[..i].contains(&0x67) {
        return Err(unsupported("16-bit addressing", bytes));
    }
    let mut rex = 0u8;
    if long && (0x40..=0x4f).contains(&bytes[i]) {
        rex = bytes[i];
        i += 1;
    }
    let (w, r, x, b) = (rex & 8 != 0, rex & 4 != 0, rex & 2 != 0, rex & 1 != 0);
    let at = |k: usize| bytes.get(k).copied().ok_or(DecodeError::Truncated);
    let len = |n: usize| -> Result<u8, DecodeError> {
        if n > 15 {
            Err(unsupported("longer than 15 bytes", bytes))
        } else {
            Ok(n as u8)
        }
    };
    let op = at(i)?;
    let plain = !opsize && !rep && rex == 0;
    match op {
        0xcc if plain => return Ok(Action::Breakpoint { len: len(i + 1)? }),
        0x9b if plain => return Ok(Action::Skip { len: len(i + 1)? }),
        0x0f => {}
        _ => return Err(unsupported("opcode", bytes)),
    }
    let op2 = at(i + 1)?;
    match op2 {
        0x01 if plain => match at(i + 2)? {
            0xca => Ok(Action::SetAc {
                set: false,
                len: len(i + 3)?,
            }),
            0xcb => Ok(Action::SetAc {
                set: true,
                len: len(i + 3)?,
            }),
            _ => Err(unsupported("0f 01 group", bytes)),
        },
        0xae if !opsize && !rep => {
            let (reg, operand, n) = modrm(bytes, i + 2, long, addr32, seg, x, b)?;
            let Operand::Mem(mem) = operand else {
                return Err(unsupported("0f ae register form", bytes));
            };
            match reg & 7 {
                2 => Ok(Action::Ldmxcsr { mem, len: len(n)? }),
                3 => Ok(Action::Stmxcsr { mem, len: len(n)? }),
                _ => Err(unsupported("0f ae group", bytes)),
            }
        }
        0x6e | 0x7e if opsize && !rep => {
            let (reg, operand, n) = modrm(bytes, i + 2, long, addr32, seg, x, b)?;
            let xmm = (reg & 7) | if r { 8 } else { 0 };
            let len = len(n)?;
            Ok(if op2 == 0x6e {
                Action::MovToXmm {
                    xmm,
                    src: operand,
                    wide: w,
                    len,
                }
            } else {
                Action::MovFromXmm {
                    xmm,
                    dst: operand,
                    wide: w,
                    len,
                }
            })
        }
        _ => Err(unsupported("0f opcode", bytes)),
    }
}

/// Decodes ModRM (+ SIB + displacement) at `k`: returns the reg field (without REX.R), the
/// r/m operand, and the offset just past the operand bytes.
fn modrm(
    bytes: &[u8],
    k: usize,
    long: bool,
    addr32: bool,
    seg: Seg,
    rex_x: bool,
    rex_b: bool,
) -> Result<(u8, Operand, usize), DecodeError> {
    let at = |k: usize| bytes.get(k).copied().ok_or(DecodeError::Truncated);
    let m = at(k)?;
    let (md, reg, rm) = (m >> 6, (m >> 3) & 7, m & 7);
    let ext_b = if rex_b { 8 } else { 0 };
    if md == 3 {
        return Ok((reg, Operand::Reg(rm | ext_b), k + 1));
    }
    let mut p = k + 1;
    let mut mem = MemRef {
        seg,
        base: None,
        index: None,
        disp: 0,
        rip_relative: false,
        addr32,
    };
    let mut disp_size = match md {
        1 => 1,
        2 => 4,
        _ => 0,
    };
    if rm == 4 {
        let sib = at(p)?;
        p += 1;
        let (scale, idx, base) = (1u8 << (sib >> 6), (sib >> 3) & 7, sib & 7);
        let idx = idx | if rex_x { 8 } else { 0 };
        if idx != 4 {
            mem.index = Some((idx, scale));
        }
        if base == 5 && md == 0 {
            disp_size = 4;
        } else {
            mem.base = Some(base | ext_b);
        }
    } else if rm == 5 && md == 0 {
        disp_size = 4;
        mem.rip_relative = long;
    } else {
        mem.base = Some(rm | ext_b);
    }
    mem.disp = match disp_size {
        1 => i64::from(at(p)? as i8),
        4 => {
            let d = [at(p)?, at(p + 1)?, at(p + 2)?, at(p + 3)?];
            i64::from(i32::from_le_bytes(d))
        }
        _ => 0,
    };
    Ok((reg, Operand::Mem(mem), p + disp_size))
}

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
