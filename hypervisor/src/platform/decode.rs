//! The instruction decoder: the few encodings this module emulates, into an [`Action`].

use super::*;

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
