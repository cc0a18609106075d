//! Xen-compatibility adapter: Xen hypercalls translated into the native dispatcher.
//!
//! - The hypercall page (written when the guest writes a page GPA to Xen's MSR, 0x40000000,
//!   or 0x40000200 with `--interface both`) holds one 32-byte stub per hypercall number:
//!   `out 0xf7, eax; ret` (Xen's own stubs load the number into eax first: not needed here,
//!   the VMM takes the number from the stub the exit came from, which saves an emulated
//!   instruction). Call `page + nr*32` with args in rdi, rsi, rdx, r10, r8; the result comes
//!   back in rax. The VMM injects #UD when the exit is not from a stub's OUT or not from CPL 0 (like the
//!   Hyper-V page, see [`crate::hyperv`], a CPL 3 caller without access to port 0xf7 gets #GP
//!   from the OUT itself).
//! - Translations (each call appends one line to the VM's Xen trace, up to [`TRACE_MAX`]):
//!   xen_version (17): XENVER_version, XENVER_extraversion, XENVER_get_features;
//!   console_io (18): CONSOLEIO_write -> the console, CONSOLEIO_read -> 0 bytes;
//!   sched_op (29): SCHEDOP_yield / SCHEDOP_block -> HvCallNotifyLongSpinWait,
//!   SCHEDOP_shutdown poweroff/reboot -> VM ends (status 0), crash -> VM ends as a crash;
//!   memory_op (12): XENMEM_maximum_ram_page, current/maximum_reservation, memory_map;
//!   hvm_op (34): HVMOP_set_param / HVMOP_get_param (per-VM parameter table).
//!   Everything else: -ENOSYS.
//! - Guest buffers are guest-virtual: translated through the guest's page tables
//!   ([`crate::pagewalk`]); an untranslatable buffer is -EFAULT.
use crate::layout::MemEntry;
use crate::pagewalk::{read_virt, write_virt, PagingMode};
use std::collections::BTreeMap;
use vm_memory::GuestMemoryMmap;

use crate::abi::xen::*;
use crate::abi::{OPCODE_INT3, OPCODE_OUT_IMM8_EAX, OPCODE_RET, PAGE_SIZE};

// Kept at their old paths for callers of `hypervisor::xen::*`.
pub use crate::abi::xen::{
    DOMID_SELF, EFAULT, EINVAL, ENOSYS, ESRCH, HVM_NR_PARAMS, HYPERVISOR_CONSOLE_IO,
    HYPERVISOR_HVM_OP, HYPERVISOR_MEMORY_OP, HYPERVISOR_SCHED_OP, HYPERVISOR_XEN_VERSION,
};

/// XENVER_extraversion string (Xen's buffer is 16 bytes).
pub const EXTRAVERSION: &[u8; EXTRAVERSION_SIZE] = b".0-hvcert\0\0\0\0\0\0\0";
/// Largest CONSOLEIO_write accepted in one call.
pub const CONSOLE_WRITE_MAX: u64 = 1 << 20;

/// Trace lines kept per VM ([`Trace`]): a guest can make millions of Xen hypercalls in one
/// run, and every line would otherwise stay in memory until the VM ends.
pub const TRACE_MAX: usize = 4096;

/// A VM's Xen trace: the first [`TRACE_MAX`] lines in order, then only a count.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    lines: Vec<String>,
    omitted: u64,
}

impl Trace {
    /// Appends a line (or counts it once [`TRACE_MAX`] are kept).
    pub fn push(&mut self, line: String) {
        if self.lines.len() < TRACE_MAX {
            self.lines.push(line);
        } else {
            self.omitted += 1;
        }
    }

    /// The kept lines, and a last line counting the omitted ones (if any).
    pub fn to_vec(&self) -> Vec<String> {
        let mut v = self.lines.clone();
        if self.omitted > 0 {
            v.push(format!(
                "... {} more Xen hypercalls not traced (only the first {TRACE_MAX} are kept)",
                self.omitted
            ));
        }
        v
    }
}

/// Offset of the `out` in each stub.
pub const STUB_OUT_OFFSET: u64 = 0;

/// Stubs per page.
pub const STUBS: usize = (PAGE_SIZE / STUB_SIZE) as usize;

/// One 32-byte stub (the same for every hypercall number: the VMM finds the number from
/// the stub's place in the page).
pub fn stub() -> [u8; STUB_SIZE as usize] {
    let mut s = [OPCODE_INT3; STUB_SIZE as usize];
    let code = [
        OPCODE_OUT_IMM8_EAX,
        crate::layout::XEN_HYPERCALL_PORT as u8, // out 0xf7, eax
        OPCODE_RET,
    ];
    s[..code.len()].copy_from_slice(&code);
    s
}

/// The whole 4 KiB hypercall page: [`STUBS`] copies of [`stub`].
pub fn hypercall_page() -> [u8; PAGE_SIZE as usize] {
    let mut p = [0u8; PAGE_SIZE as usize];
    for chunk in p.chunks_exact_mut(STUB_SIZE as usize) {
        chunk.copy_from_slice(&stub());
    }
    p
}

/// The name a Xen hypercall number is counted under (`hypercall_N` for unknown numbers).
pub fn name(nr: u32) -> String {
    match nr {
        HYPERVISOR_MEMORY_OP => "memory_op".into(),
        HYPERVISOR_XEN_VERSION => "xen_version".into(),
        HYPERVISOR_CONSOLE_IO => "console_io".into(),
        HYPERVISOR_SCHED_OP => "sched_op".into(),
        HYPERVISOR_HVM_OP => "hvm_op".into(),
        n => format!("hypercall_{n}"),
    }
}

/// Per-VM Xen state.
#[derive(Clone, Debug, Default)]
pub struct XenState {
    /// GPA of the hypercall page, once written.
    pub page_gpa: Option<u64>,
    /// HVM parameters set through HVMOP_set_param.
    pub params: BTreeMap<u32, u64>,
}

/// How a Xen call ends the VM, if it does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XenEnd {
    /// SCHEDOP_shutdown poweroff or reboot: the VM ends as a shutdown.
    Poweroff,
    /// SCHEDOP_shutdown crash: the VM ends as a crash with this reason.
    Crash(String),
}

/// What one Xen hypercall did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Value for RAX (0 or a negative errno).
    pub rax: i64,
    /// Trace line.
    pub trace: String,
    /// Bytes for the console.
    pub console: Vec<u8>,
    /// Native call this was translated to (counted under its own name too).
    pub native: Option<&'static str>,
    /// Whether the call ends the VM.
    pub end: Option<XenEnd>,
}

/// The guest environment a call sees.
pub struct Env<'a> {
    /// Guest memory.
    pub mem: &'a GuestMemoryMmap,
    /// The calling vCPU's paging mode (buffers are guest-virtual).
    pub paging: PagingMode,
    /// The guest's e820 map.
    pub memory_map: &'a [MemEntry],
}

impl Env<'_> {
    fn read(&self, va: u64, len: usize) -> Result<Vec<u8>, i64> {
        read_virt(self.mem, self.paging, va, len).map_err(|_| EFAULT)
    }
    fn write(&self, va: u64, data: &[u8]) -> Result<(), i64> {
        write_virt(self.mem, self.paging, va, data).map_err(|_| EFAULT)
    }
    fn ram_pages(&self) -> u64 {
        self.memory_map
            .iter()
            .filter(|e| e.kind == crate::layout::E820_RAM)
            .map(|e| e.size >> 12)
            .sum()
    }
    fn max_ram_pfn(&self) -> u64 {
        self.memory_map
            .iter()
            .filter(|e| e.kind == crate::layout::E820_RAM)
            .map(|e| (e.addr + e.size) >> 12)
            .max()
            .unwrap_or(0)
            .saturating_sub(1)
    }
}

fn out(rax: i64, trace: String) -> Outcome {
    Outcome {
        rax,
        trace,
        console: Vec::new(),
        native: None,
        end: None,
    }
}

/// Executes Xen hypercall `nr` with `args` (rdi, rsi, rdx, r10, r8).
pub fn dispatch(state: &mut XenState, env: &Env<'_>, nr: u32, args: [u64; 5]) -> Outcome {
    match nr {
        HYPERVISOR_XEN_VERSION => xen_version(env, args),
        HYPERVISOR_CONSOLE_IO => console_io(env, args),
        HYPERVISOR_SCHED_OP => sched_op(env, args),
        HYPERVISOR_MEMORY_OP => memory_op(env, args),
        HYPERVISOR_HVM_OP => hvm_op(state, env, args),
        _ => out(ENOSYS, format!("{}(...) -> -ENOSYS", name(nr))),
    }
}

fn res(r: Result<i64, i64>) -> i64 {
    r.unwrap_or_else(|e| e)
}

fn errname(rc: i64) -> String {
    match rc {
        ENOSYS => "-ENOSYS".into(),
        EFAULT => "-EFAULT".into(),
        EINVAL => "-EINVAL".into(),
        ESRCH => "-ESRCH".into(),
        n => format!("{n:#x}"),
    }
}

fn xen_version(env: &Env<'_>, a: [u64; 5]) -> Outcome {
    match a[0] {
        XENVER_VERSION => out(
            i64::from(VERSION),
            format!("xen_version(XENVER_version) -> {VERSION:#x}"),
        ),
        XENVER_EXTRAVERSION => {
            let rc = res(env.write(a[1], EXTRAVERSION).map(|_| 0));
            out(
                rc,
                format!(
                    "xen_version(XENVER_extraversion, {:#x}) -> {}",
                    a[1],
                    errname(rc)
                ),
            )
        }
        XENVER_GET_FEATURES => {
            // struct xen_feature_info { unsigned int submap_idx; uint32_t submap; }
            let rc = res(env
                .read(a[1], FEATURE_INFO_SUBMAP_OFFSET as usize)
                .and_then(|idx| {
                    let _idx = u32::from_le_bytes([idx[0], idx[1], idx[2], idx[3]]);
                    // No optional Xen features are offered: every submap is 0.
                    env.write(
                        a[1].wrapping_add(FEATURE_INFO_SUBMAP_OFFSET),
                        &0u32.to_le_bytes(),
                    )
                    .map(|_| 0)
                }));
            out(
                rc,
                format!(
                    "xen_version(XENVER_get_features, {:#x}) -> {}",
                    a[1],
                    errname(rc)
                ),
            )
        }
        cmd => out(ENOSYS, format!("xen_version({cmd}) -> -ENOSYS")),
    }
}

fn console_io(env: &Env<'_>, a: [u64; 5]) -> Outcome {
    match a[0] {
        CONSOLEIO_WRITE => {
            let count = a[1];
            if count > CONSOLE_WRITE_MAX {
                return out(
                    EINVAL,
                    format!("console_io(CONSOLEIO_write, {count}) -> -EINVAL"),
                );
            }
            match env.read(a[2], count as usize) {
                Ok(data) => Outcome {
                    rax: 0,
                    trace: format!("console_io(CONSOLEIO_write, {count}) -> console -> 0"),
                    console: data,
                    native: Some("HvCallPostDebugData"),
                    end: None,
                },
                Err(e) => out(
                    e,
                    format!(
                        "console_io(CONSOLEIO_write, {count}, {:#x}) -> {}",
                        a[2],
                        errname(e)
                    ),
                ),
            }
        }
        CONSOLEIO_READ => out(0, "console_io(CONSOLEIO_read) -> 0".into()),
        cmd => out(ENOSYS, format!("console_io({cmd}) -> -ENOSYS")),
    }
}

fn sched_op(env: &Env<'_>, a: [u64; 5]) -> Outcome {
    match a[0] {
        SCHEDOP_YIELD | SCHEDOP_BLOCK => {
            let what = if a[0] == SCHEDOP_YIELD {
                "SCHEDOP_yield"
            } else {
                "SCHEDOP_block"
            };
            let mut o = out(
                0,
                format!("sched_op({what}) -> HvCallNotifyLongSpinWait -> 0"),
            );
            o.native = Some("HvCallNotifyLongSpinWait");
            o
        }
        SCHEDOP_SHUTDOWN => {
            // struct sched_shutdown { unsigned int reason; }
            let reason = match env.read(a[1], SCHED_SHUTDOWN_SIZE) {
                Ok(b) => u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
                Err(e) => {
                    return out(
                        e,
                        format!("sched_op(SCHEDOP_shutdown, {:#x}) -> -EFAULT", a[1]),
                    )
                }
            };
            match reason {
                SHUTDOWN_POWEROFF | SHUTDOWN_REBOOT => {
                    let what = if reason == SHUTDOWN_POWEROFF {
                        "poweroff"
                    } else {
                        "reboot"
                    };
                    let mut o = out(0, format!("sched_op(SCHEDOP_shutdown, {what}) -> VM ends"));
                    o.end = Some(XenEnd::Poweroff);
                    o
                }
                SHUTDOWN_CRASH => {
                    let mut o = out(
                        0,
                        "sched_op(SCHEDOP_shutdown, crash) -> VM ends as a crash".into(),
                    );
                    o.end = Some(XenEnd::Crash(
                        "guest reported a crash (Xen SCHEDOP_shutdown crash)".into(),
                    ));
                    o
                }
                r => out(
                    EINVAL,
                    format!("sched_op(SCHEDOP_shutdown, reason {r}) -> -EINVAL"),
                ),
            }
        }
        cmd => out(ENOSYS, format!("sched_op({cmd}) -> -ENOSYS")),
    }
}

fn memory_op(env: &Env<'_>, a: [u64; 5]) -> Outcome {
    match a[0] {
        XENMEM_MAXIMUM_RAM_PAGE => {
            let pfn = env.max_ram_pfn() as i64;
            out(
                pfn,
                format!("memory_op(XENMEM_maximum_ram_page) -> {pfn:#x}"),
            )
        }
        XENMEM_CURRENT_RESERVATION | XENMEM_MAXIMUM_RESERVATION => {
            let what = if a[0] == XENMEM_CURRENT_RESERVATION {
                "current_reservation"
            } else {
                "maximum_reservation"
            };
            let rc = res(env.read(a[1], DOMID_SIZE).and_then(|d| {
                let domid = u16::from_le_bytes([d[0], d[1]]);
                if domid == DOMID_SELF || domid == 0 {
                    Ok(env.ram_pages() as i64)
                } else {
                    Err(ESRCH)
                }
            }));
            out(rc, format!("memory_op(XENMEM_{what}) -> {}", errname(rc)))
        }
        XENMEM_MEMORY_MAP => {
            // struct xen_memory_map { unsigned int nr_entries; (pad) XEN_GUEST_HANDLE buffer; }
            let rc = res(env.read(a[1], MEMORY_MAP_SIZE).and_then(|m| {
                let cap = u32::from_le_bytes([m[0], m[1], m[2], m[3]]) as usize;
                let buf = u64::from_le_bytes(
                    m[MEMORY_MAP_BUFFER_OFFSET..MEMORY_MAP_BUFFER_OFFSET + 8]
                        .try_into()
                        .unwrap_or([0; 8]),
                );
                let n = env.memory_map.len().min(cap);
                let mut bytes = Vec::with_capacity(n * E820_ENTRY_SIZE);
                for e in &env.memory_map[..n] {
                    bytes.extend_from_slice(&e.addr.to_le_bytes());
                    bytes.extend_from_slice(&e.size.to_le_bytes());
                    bytes.extend_from_slice(&e.kind.to_le_bytes());
                }
                env.write(buf, &bytes)?;
                env.write(a[1], &(n as u32).to_le_bytes())?;
                Ok(0)
            }));
            out(
                rc,
                format!("memory_op(XENMEM_memory_map) -> {}", errname(rc)),
            )
        }
        cmd => out(ENOSYS, format!("memory_op({cmd}) -> -ENOSYS")),
    }
}

fn hvm_op(state: &mut XenState, env: &Env<'_>, a: [u64; 5]) -> Outcome {
    // struct xen_hvm_param { domid_t domid; (pad) uint32_t index; uint64_t value; }
    let op = match a[0] {
        HVMOP_SET_PARAM => "HVMOP_set_param",
        HVMOP_GET_PARAM => "HVMOP_get_param",
        cmd => return out(ENOSYS, format!("hvm_op({cmd}) -> -ENOSYS")),
    };
    let p = match env.read(a[1], HVM_PARAM_SIZE) {
        Ok(p) => p,
        Err(e) => return out(e, format!("hvm_op({op}, {:#x}) -> -EFAULT", a[1])),
    };
    let domid = u16::from_le_bytes([p[0], p[1]]);
    let i = HVM_PARAM_INDEX_OFFSET;
    let index = u32::from_le_bytes([p[i], p[i + 1], p[i + 2], p[i + 3]]);
    let v = HVM_PARAM_VALUE_OFFSET;
    let value = u64::from_le_bytes(p[v..v + 8].try_into().unwrap_or([0; 8]));
    if domid != DOMID_SELF && domid != 0 {
        return out(ESRCH, format!("hvm_op({op}, dom {domid:#x}) -> -ESRCH"));
    }
    if index >= HVM_NR_PARAMS {
        return out(EINVAL, format!("hvm_op({op}, {index}) -> -EINVAL"));
    }
    if a[0] == HVMOP_SET_PARAM {
        state.params.insert(index, value);
        out(
            0,
            format!("hvm_op(HVMOP_set_param, {index}, {value:#x}) -> 0"),
        )
    } else {
        let v = state.params.get(&index).copied().unwrap_or(0);
        let rc = res(env
            .write(
                a[1].wrapping_add(HVM_PARAM_VALUE_OFFSET as u64),
                &v.to_le_bytes(),
            )
            .map(|_| 0));
        out(
            rc,
            format!(
                "hvm_op(HVMOP_get_param, {index}) -> {v:#x}, {}",
                errname(rc)
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::memory_map;
    use vm_memory::{Bytes, GuestAddress};

    fn mem() -> GuestMemoryMmap {
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x40_0000)]).unwrap()
    }

    fn run(m: &GuestMemoryMmap, st: &mut XenState, nr: u32, a: [u64; 5]) -> Outcome {
        let map = memory_map(4, &[]);
        let env = Env {
            mem: m,
            paging: PagingMode::default(),
            memory_map: &map,
        };
        dispatch(st, &env, nr, a)
    }

    /// Long-mode tables mapping VA 0xffff_8000_0000_0000 + x -> x (first 2 MiB).
    fn paged_env<'a>(m: &'a GuestMemoryMmap, map: &'a [MemEntry]) -> Env<'a> {
        m.write_obj(0x2000u64 | 3, GuestAddress(0x1000 + 256 * 8))
            .unwrap();
        m.write_obj(0x3000u64 | 3, GuestAddress(0x2000)).unwrap();
        m.write_obj(0x83u64, GuestAddress(0x3000)).unwrap();
        Env {
            mem: m,
            paging: PagingMode {
                cr0: 0x8000_0001,
                cr3: 0x1000,
                cr4: 0x20,
                efer: 0x500,
            },
            memory_map: map,
        }
    }

    #[test]
    fn trace_is_bounded() {
        let mut t = Trace::default();
        for i in 0..TRACE_MAX + 10 {
            t.push(format!("call {i}"));
        }
        let v = t.to_vec();
        assert_eq!(v.len(), TRACE_MAX + 1);
        assert_eq!(v[0], "call 0");
        assert_eq!(v[TRACE_MAX - 1], format!("call {}", TRACE_MAX - 1));
        assert!(v[TRACE_MAX].starts_with("... 10 more"), "{}", v[TRACE_MAX]);
        let mut short = Trace::default();
        short.push("one".into());
        assert_eq!(short.to_vec(), vec!["one".to_string()]);
    }

    #[test]
    fn stubs() {
        let p = hypercall_page();
        let o = 18 * 32 + STUB_OUT_OFFSET as usize;
        assert_eq!(&p[o..o + 3], &[0xe7, 0xf7, 0xc3]);
        // int3 padding up to the next stub.
        assert!(p[18 * 32 + 3..19 * 32].iter().all(|&b| b == 0xcc));
    }

    #[test]
    fn version_calls() {
        let m = mem();
        let mut st = XenState::default();
        assert_eq!(run(&m, &mut st, 17, [0; 5]).rax, 0x40010);
        assert_eq!(run(&m, &mut st, 17, [1, 0x5000, 0, 0, 0]).rax, 0);
        let mut b = [0u8; 16];
        m.read_slice(&mut b, GuestAddress(0x5000)).unwrap();
        assert_eq!(&b, EXTRAVERSION);
        m.write_obj(0xffff_ffff_ffff_ffffu64, GuestAddress(0x6000))
            .unwrap();
        assert_eq!(run(&m, &mut st, 17, [6, 0x6000, 0, 0, 0]).rax, 0);
        assert_eq!(m.read_obj::<u32>(GuestAddress(0x6004)).unwrap(), 0);
        assert_eq!(run(&m, &mut st, 17, [6, 0x4000_0000, 0, 0, 0]).rax, EFAULT);
        assert_eq!(run(&m, &mut st, 17, [99, 0, 0, 0, 0]).rax, ENOSYS);
    }

    #[test]
    fn console_through_page_tables() {
        let m = mem();
        let map = memory_map(4, &[]);
        let env = paged_env(&m, &map);
        m.write_slice(b"hi xen\n", GuestAddress(0x8000)).unwrap();
        let mut st = XenState::default();
        let o = dispatch(&mut st, &env, 18, [0, 7, 0xffff_8000_0000_8000, 0, 0]);
        assert_eq!((o.rax, o.console.as_slice()), (0, &b"hi xen\n"[..]));
        assert!(o.trace.contains("CONSOLEIO_write"), "{}", o.trace);
        // Identity address not mapped in these tables.
        let o = dispatch(&mut st, &env, 18, [0, 7, 0x8000, 0, 0]);
        assert_eq!(o.rax, EFAULT);
        assert!(o.console.is_empty());
        assert_eq!(
            dispatch(&mut st, &env, 18, [0, 1 << 30, 0x8000, 0, 0]).rax,
            EINVAL
        );
    }

    #[test]
    fn sched_ops() {
        let m = mem();
        let mut st = XenState::default();
        let o = run(&m, &mut st, 29, [0; 5]);
        assert_eq!((o.rax, o.native), (0, Some("HvCallNotifyLongSpinWait")));
        m.write_obj(0u32, GuestAddress(0x7000)).unwrap();
        assert_eq!(
            run(&m, &mut st, 29, [2, 0x7000, 0, 0, 0]).end,
            Some(XenEnd::Poweroff)
        );
        m.write_obj(3u32, GuestAddress(0x7000)).unwrap();
        assert!(matches!(
            run(&m, &mut st, 29, [2, 0x7000, 0, 0, 0]).end,
            Some(XenEnd::Crash(_))
        ));
        m.write_obj(9u32, GuestAddress(0x7000)).unwrap();
        assert_eq!(run(&m, &mut st, 29, [2, 0x7000, 0, 0, 0]).rax, EINVAL);
        assert_eq!(run(&m, &mut st, 29, [77, 0, 0, 0, 0]).rax, ENOSYS);
    }

    #[test]
    fn memory_and_hvm_ops() {
        let m = mem();
        let mut st = XenState::default();
        assert_eq!(run(&m, &mut st, 12, [2, 0, 0, 0, 0]).rax, 0x3ff);
        m.write_obj(DOMID_SELF, GuestAddress(0x7000)).unwrap();
        assert_eq!(run(&m, &mut st, 12, [3, 0x7000, 0, 0, 0]).rax, 0x9f + 0x300);
        m.write_obj([8u32, 0], GuestAddress(0x7100)).unwrap();
        m.write_obj(0x7200u64, GuestAddress(0x7108)).unwrap();
        assert_eq!(run(&m, &mut st, 12, [9, 0x7100, 0, 0, 0]).rax, 0);
        assert_eq!(m.read_obj::<u32>(GuestAddress(0x7100)).unwrap(), 3);
        assert_eq!(
            m.read_obj::<u64>(GuestAddress(0x7200 + 40)).unwrap(),
            0x100000
        );
        // set then get a parameter
        m.write_obj([DOMID_SELF, 0], GuestAddress(0x7300)).unwrap();
        m.write_obj(1u32, GuestAddress(0x7304)).unwrap();
        m.write_obj(0xabcu64, GuestAddress(0x7308)).unwrap();
        assert_eq!(run(&m, &mut st, 34, [0, 0x7300, 0, 0, 0]).rax, 0);
        m.write_obj(0u64, GuestAddress(0x7308)).unwrap();
        assert_eq!(run(&m, &mut st, 34, [1, 0x7300, 0, 0, 0]).rax, 0);
        assert_eq!(m.read_obj::<u64>(GuestAddress(0x7308)).unwrap(), 0xabc);
        m.write_obj(500u32, GuestAddress(0x7304)).unwrap();
        assert_eq!(run(&m, &mut st, 34, [1, 0x7300, 0, 0, 0]).rax, EINVAL);
        assert_eq!(run(&m, &mut st, 1, [0; 5]).rax, ENOSYS);
        assert_eq!(run(&m, &mut st, 12, [7, 0, 0, 0, 0]).rax, ENOSYS);
    }

    proptest::proptest! {
        #[test]
        fn dispatch_never_panics(nr in 0u32..64, a in proptest::array::uniform5(proptest::prelude::any::<u64>()), small in proptest::array::uniform5(0u64..0x50_0000)) {
            let m = mem();
            let map = memory_map(4, &[]);
            let mut st = XenState::default();
            let env = paged_env(&m, &map);
            let _ = dispatch(&mut st, &env, nr, a);
            let _ = dispatch(&mut st, &env, nr, small);
            let env = Env { mem: &m, paging: PagingMode::default(), memory_map: &map };
            let _ = dispatch(&mut st, &env, nr, small);
        }
    }
}
