//! Hostile guests: whatever a guest does, the VMM must end the VM with a `VmEnd` (status,
//! shutdown, timeout, crash with a reason), never panic, never run past its timeout, and
//! join every thread it started.
//!
//! Two guests (tests/guests/chaos*.S) run host-generated programs passed as the initrd (PVH
//! module 0):
//! - `chaos_raw`: jumps from the 32-bit PVH entry (paging off, no IDT) into random code,
//!   optionally after enabling the interface's hypercall pages (pointers in ebx/ebp); or a
//!   bzImage whose payload is random code, entered in long mode by the 64-bit boot protocol.
//! - `chaos`: an op interpreter in long mode (see the op list at the top of chaos.S): port
//!   I/O of every size and string I/O (the status and hypercall ports included), MMIO in and
//!   around the virtio window (a virtio-blk disk and a loopback virtio-net are attached;
//!   driver sessions with random rings) and elsewhere (LAPIC, IOAPIC, hole, above 4 GiB),
//!   synthetic-MSR reads/writes with random values, Hyper-V hypercalls with random input
//!   values and GPAs (end of RAM, straddling the MMIO hole of a 4.5 GiB VM, 2^64-8, huge rep
//!   counts, Ex calls' VP sets of up to 64 banks), Xen hypercalls with random arguments and bad guest-virtual addresses (also the
//!   last bytes of the address space, and through random page tables loaded into CR3),
//!   Xen shared_info/vcpu_info frames (page-crossing, beyond RAM), event ports beyond the
//!   2-level bitmap, timers in the past and far future, block/poll,
//!   hypercalls and random code from ring 3 (native here), and jumps into random code in
//!   ring 0 (optionally after enabling the hypercall pages, with the exception gates pointing
//!   into the random code), on 1-4 vCPUs.
//!
//! Checks per VM: no VMM thread panicked (a panic hook counts panics on `vcpu*`, `virtio-*`
//! and `vm-teardown` threads), `Vm::run` returned within timeout + slack (it runs on a
//! thread of its own, so a hang fails instead of hanging the test), a crash has a reason and
//! registers, and after `wait_for_teardowns` no VMM thread is left; over the whole run the
//! process's thread count (/proc/self/status) is back where it started.
//!
//! Every script is generated from a seeded RNG: the master seed is printed, and a failure
//! names it with the case index. Replay with `HVCERT_CHAOS_SEED=<seed>` (and
//! `HVCERT_CHAOS_CASE=<index>` for one case; `HVCERT_CHAOS_VERBOSE=1` prints every end) on
//! the same commit (the seed drives this file's generator); `HVCERT_CHAOS_CASES=<n>` changes
//! the number of cases per kind (default 30: 30 raw, 30 long-mode random code, 60 op
//! scripts). The bugs found so far are kept as hand-written scripts in [`regressions`], run
//! first.
//!
//! Half of the op scripts are "safe": no op that can legitimately end or wreck the VM
//! (status port, shutdown hypercall, LAPIC/IOAPIC writes, random code, recursive page
//! tables, ...). Those must run to their end and exit with the interpreter's status 0x600d:
//! anything else is a wrong end reason. A quarter of them run without a timeout.
mod common;
#[path = "guests/mod.rs"]
mod guests;

use common::kvm_or_skip;
use hypervisor::{DiskConfig, Interface, NetConfig, Vm, VmConfig, VmEnd};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MEMORY_MIB: u32 = 64;
const RAM_END: u64 = (MEMORY_MIB as u64) << 20;
/// Guest scratch area (chaos.S maps the top 2 MiB of the virtual address space onto it).
const SCRATCH: u64 = 0x80_0000;
const SCRATCH_LEN: u64 = 0x40_0000;
/// The interpreter's status when every op ran.
const MAGIC: u32 = 0x600d;
const VIRTIO_BASE: u64 = 0xd000_0000;
const TOP_VA: u64 = 0xffff_ffff_ffe0_0000;
const HIGH_HALF: u64 = 0xffff_8000_0000_0000;
/// Zeros after each script: writes at the end of RAM land here, not in the script.
const TAIL_PAD: usize = 16 << 10;
/// Slack over the timeout for `run` to return (a loaded 2-core host).
/// Random code often loops: keep its VMs short.
const RANDOM_CODE_TIMEOUT: Duration = Duration::from_millis(100);
const SLACK: Duration = Duration::from_millis(1500);
/// How long a VM without a timeout may take (only scripts that must end get none).
const NO_TIMEOUT_LIMIT: Duration = Duration::from_secs(10);

/// SplitMix64: tiny, seedable, good enough to pick fuzz inputs (proptest's shrinking is of
/// little use when each case is a whole VM; the seed is the reproducer).
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn mix(seed: u64, index: u64) -> u64 {
    Rng(seed ^ index.wrapping_mul(0xd1b5_4a32_d192_ed03)).next()
}

// Op kinds (chaos.S).
const OP_OUT: u64 = 1;
const OP_IN: u64 = 2;
const OP_MMIO_W: u64 = 3;
const OP_MMIO_R: u64 = 4;
const OP_RDMSR: u64 = 5;
const OP_WRMSR: u64 = 6;
const OP_HV: u64 = 7;
const OP_XEN: u64 = 8;
const OP_FILL: u64 = 9;
const OP_HV_SETUP: u64 = 10;
const OP_XEN_SETUP: u64 = 11;
const OP_CPUID: u64 = 12;
const OP_USER: u64 = 13;
const OP_JUMP: u64 = 14;
const OP_SPIN: u64 = 15;
const OP_PT: u64 = 16;
const OP_STR: u64 = 17;
/// Guest pages for random page tables (outside the scratch area: no FILL or device DMA
/// lands there by chance).
const PT_AREA: u64 = 0xc0_0000;

/// A generated script (see chaos.S for the layout).
#[derive(Default)]
struct Script {
    bsp: Vec<[u64; 8]>,
    ap: Vec<[u64; 8]>,
    aps: u64,
    /// The first `pre` BSP ops run before the APs are started.
    pre: u64,
    /// FILL sources and random code; op offsets into it are fixed up in `bytes`.
    data: Vec<u8>,
    /// An op that may legitimately end or wreck the VM was generated.
    may_end: bool,
    /// How the VM must end when `may_end` is false (None: status 0x600d).
    expect: Option<VmEnd>,
    /// Ops by kind, for the summary.
    kinds: [u64; 18],
}

impl Script {
    fn push(&mut self, ap: bool, op: [u64; 8]) {
        self.kinds[(op[0] as usize).min(17)] += 1;
        if ap {
            self.ap.push(op)
        } else {
            self.bsp.push(op)
        }
    }
    fn add_data(&mut self, d: &[u8]) -> u64 {
        while !self.data.len().is_multiple_of(16) {
            self.data.push(0);
        }
        let off = self.data.len() as u64;
        self.data.extend_from_slice(d);
        off
    }
    fn bytes(&self) -> Vec<u8> {
        let nops = (self.bsp.len() + self.ap.len()) as u64;
        let base = 64 + 64 * nops;
        let mut out = Vec::new();
        for v in [
            self.bsp.len() as u64,
            self.aps,
            self.bsp.len() as u64,
            self.ap.len() as u64,
            self.pre,
            0,
            0,
            0,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for op in self.bsp.iter().chain(&self.ap) {
            let mut op = *op;
            match op[0] {
                OP_FILL => op[3] += base,
                OP_PT if op[1] != 0 => op[2] += base,
                OP_USER if op[1] == 6 => op[2] += base,
                OP_JUMP => {
                    op[1] += base;
                    op[3] += base;
                }
                _ => {}
            }
            for v in op {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        out.extend_from_slice(&self.data);
        out.resize(out.len() + TAIL_PAD, 0);
        out
    }
}

fn op(kind: u64, args: &[u64]) -> [u64; 8] {
    let mut o = [0u64; 8];
    o[0] = kind;
    o[1..1 + args.len()].copy_from_slice(args);
    o
}

/// Guest-physical addresses for hypercall input/output blocks: aligned and not, inside the
/// scratch area, straddling the end of RAM, in the MMIO hole, far beyond, overflowing.
fn gpa(r: &mut Rng) -> u64 {
    let scratch = SCRATCH + r.below(SCRATCH_LEN - 0x2000);
    match r.below(12) {
        0..=3 => scratch & !7,
        4 => scratch,
        5 => RAM_END - r.pick(&[8, 16, 24, 32, 0x1000]),
        6 => RAM_END + r.below(64),
        // Also the ends of the RAM regions of a big VM (low RAM ends at 3 GiB, high RAM
        // starts at 4 GiB).
        7 => r.pick(&[
            VIRTIO_BASE,
            0xfee0_0000,
            0x1_0000_0000,
            0xc000_0000,
            0xbfff_fff8,
            0xbfff_fff0,
            0xbfff_f000,
            0xffff_fff8,
            0x1_2000_0000 - 8,
        ]),
        8 => u64::MAX - r.below(16),
        9 => r.next(),
        10 => r.pick(&[0, 8, 0x1000]),
        _ => (r.next() & 0x000f_ffff_ffff_f000) | (r.below(8) * 8),
    }
}

/// Guest-virtual addresses for Xen buffers: mapped (identity, high half, the last bytes of
/// the address space), unmapped, non-canonical, straddling the canonical hole.
fn gva(r: &mut Rng) -> u64 {
    let off = r.below(SCRATCH_LEN - 0x1000);
    match r.below(12) {
        0..=2 => SCRATCH + off,
        3 => HIGH_HALF + SCRATCH + off,
        4 => u64::MAX - r.below(8),
        5 => TOP_VA + off.min(0x1f_ffff),
        6 => 0x0000_7fff_ffff_ffff - r.below(16),
        7 => 0x0000_8000_0000_0000 + r.below(16),
        8 => r.next(),
        9 => 0,
        10 => 0x0000_7000_0000_0000,
        11 if r.chance(50) => {
            // Through any PML4 entry (random ones after an OP_PT), made canonical.
            let va = (r.below(512) << 39) | r.below(1 << 39);
            ((va << 16) as i64 >> 16) as u64
        }
        _ => RAM_END - r.below(32),
    }
}

/// A PML4 page of random entries: not present, arbitrary, pointing into the scratch area
/// (as tables or, with PS, as reserved-bit huge pages), at MMIO, at the top of the physical
/// address space, or (with `recursive`) at the page itself. chaos.S keeps its own entries
/// 0, 256 and 511.
fn random_pml4(r: &mut Rng, page: u64, recursive: bool) -> Vec<u8> {
    let mut d = Vec::with_capacity(4096);
    for _ in 0..512 {
        let e = match r.below(20) {
            0..=5 => 0,
            6..=9 => r.next(),
            10..=15 => ((SCRATCH + r.below(SCRATCH_LEN)) & !0xfff) | r.below(0x200),
            16 if recursive => page | r.pick(&[1u64, 3, 7, 0x83]),
            17 => VIRTIO_BASE | r.pick(&[1u64, 0x83]),
            18 => r.pick(&[0x000f_ffff_ffff_f001u64, 0xffff_f003, RAM_END | 1]),
            _ => ((SCRATCH + r.below(SCRATCH_LEN)) & !0xfff) | 0x87,
        };
        d.extend_from_slice(&e.to_le_bytes());
    }
    d
}

fn msr(r: &mut Rng) -> u64 {
    match r.below(8) {
        0..=3 => 0x4000_0000 + r.below(0x100),
        4 => r.pick(&[
            0x4000_0000,
            0x4000_0001,
            0x4000_0002,
            0x4000_0020,
            0x4000_0200,
            // RESET, VP_RUNTIME, REFERENCE_TSC, VP_ASSIST_PAGE, SCONTROL, SIMP, SINT0,
            // GUEST_IDLE, CRASH_CTL: overlay pages outside RAM, reserved bits, SINT vectors
            // below 16 (msr_value never gives RESET exactly 1 or CRASH_CTL only bit 63).
            0x4000_0003,
            0x4000_0010,
            0x4000_0021,
            0x4000_0073,
            0x4000_0080,
            0x4000_0083,
            0x4000_0090,
            0x4000_00f0,
            0x4000_0105,
            // SIEFP, EOM, STIMER0 CONFIG/COUNT (reserved bits, direct-mode vectors below 16,
            // COUNT 0, past deadlines), STIMER3_COUNT, APIC TPR (values above 0xff).
            0x4000_0082,
            0x4000_0084,
            0x4000_00b0,
            0x4000_00b1,
            0x4000_00b7,
            0x4000_0072,
        ]),
        5 => 0x4000_0100 + r.below(0x200),
        6 => 0x4000_0200,
        _ => r.pick(&[0x4000_00ff, 0x4000_0300, 0x3fff_ffff, 0x4000_0021]),
    }
}

/// A value for a synthetic MSR: arbitrary, or a page in the scratch area (enabled, locked),
/// or a page beyond RAM. Never a RAM page outside the scratch area, so a "safe" script
/// cannot have the VMM write a hypercall page over the interpreter.
fn msr_value(r: &mut Rng) -> u64 {
    let page = (SCRATCH + r.below(SCRATCH_LEN - 0x1000)) & !0xfff;
    match r.below(8) {
        0 => page | r.below(4),
        1 => page | 0xffc | r.below(4),
        2 => RAM_END | 1,
        3 => 0,
        4 => 0x8100_0000_0000_0000 | r.below(0x1000) | 1,
        _ => {
            // Arbitrary, but with bit 0..11 noise so it is never a plain RAM page address
            // outside the scratch area that a Xen MSR would accept.
            let v = r.next();
            if v & 0xfff == 0 && v < RAM_END {
                v | 0x10
            } else {
                v
            }
        }
    }
}

fn hv_input(r: &mut Rng) -> u64 {
    let code = match r.below(8) {
        // 0x5c, 0x5d: HvCallPostMessage, HvCallSignalEvent (the VMBus, when attached).
        0..=5 => r.pick(&[
            0x0002u64, 0x0003, 0x0008, 0x000b, 0x0013, 0x0014, 0x0015, 0x0069, 0x006a, 0x005c,
            0x005d,
        ]),
        6 => r.below(0x80),
        _ => r.below(0x1_0000),
    };
    let mut v = code;
    if r.chance(30) {
        v |= 1 << 16; // fast
    }
    if r.chance(10) {
        v |= r.below(0x400) << 17; // variable header size
    } else if r.chance(10) {
        // The Ex calls' HV_VP_SET banks: up to 64 (a set far bigger than the VM), or more.
        v |= r.below(66) << 17;
    }
    let reps = match r.below(4) {
        0 => 0,
        1 => 1 + r.below(8),
        2 => 0xfff,
        _ => r.below(0x1000),
    };
    v |= reps << 32;
    if r.chance(20) {
        v |= r.below(0x1000) << 48; // rep start (often > rep count)
    }
    if r.chance(10) {
        v |= r.next() & hypervisor::hyperv::INPUT_RSVD_MASK;
    }
    v
}

fn port(r: &mut Rng) -> u64 {
    match r.below(10) {
        0 => 0xf6,
        1 => 0xf7,
        2 => 0xf4,
        3 => 0x3f8 + r.below(8),
        4 => r.pick(&[0xf5, 0xf3, 0xf8, 0xf0]),
        5 => r.pick(&[
            0x20, 0x21, 0x40, 0x43, 0x61, 0x70, 0x71, 0x80, 0xa0, 0xcf8, 0xcfc,
        ]),
        _ => r.below(0x1_0000),
    }
}

/// MMIO: the two virtio windows (registers, config space, unaligned, straddling), just
/// outside them, the LAPIC/IOAPIC, the top of 4 GiB, above 4 GiB, above RAM.
fn mmio_addr(r: &mut Rng) -> (u64, bool) {
    let dev = VIRTIO_BASE + r.below(2) * 0x1000;
    let a = match r.below(12) {
        0..=3 => dev + r.below(0x2c) * 4,
        4 => dev + 0x100 + r.below(0x40),
        5 => dev + r.below(0x1000),
        6 => dev + 0xff8 + r.below(8),
        7 => r.pick(&[
            VIRTIO_BASE - 8,
            VIRTIO_BASE - 1,
            VIRTIO_BASE + 0x2000,
            0xcfff_f000,
        ]),
        8 => 0xfee0_0000 + r.below(0x40) * 16,
        9 => r.pick(&[
            0xfec0_0000u64,
            0xfec0_0010,
            0xffff_fff0,
            0xffff_fffc,
            0xfed0_0000,
        ]),
        10 => 0x1_0000_0000 + r.below(0x4000_0000),
        _ => r.pick(&[RAM_END, RAM_END + 0x1000, 0x3000_0000, 0xc000_0000]),
    };
    // LAPIC and IOAPIC writes can INIT vCPUs, route interrupts, ...: a guest may do that.
    let wrecks = (0xfec0_0000..0xfef0_0000).contains(&a);
    (a, wrecks)
}

/// Descriptor tables and rings in the scratch area, with descriptors pointing into it.
fn virtio_rings(r: &mut Rng, s: &mut Script, ap: bool) -> (u64, u64, u64, u64) {
    let qsize = r.pick(&[8u64, 16, 256, 2, 1, 3, 0, 0x8000]);
    let n = qsize.clamp(1, 256);
    let base = (SCRATCH + r.below(SCRATCH_LEN / 2)) & !0xfff;
    let desc = base;
    let avail = base + 0x1000 * (1 + n * 16 / 0x1000);
    let used = avail + 0x1000;
    let mut d = Vec::new();
    for _ in 0..n {
        let addr = if r.chance(85) {
            SCRATCH + r.below(SCRATCH_LEN)
        } else {
            gpa(r)
        };
        let len = match r.below(4) {
            0 => r.below(0x2000),
            1 => r.pick(&[0u64, 1, 10, 12, 16, 512, 0x1_0000]),
            2 => u64::from(u32::MAX) - r.below(16),
            _ => r.below(600),
        };
        let flags = r.below(8);
        let next = if r.chance(80) {
            r.below(n)
        } else {
            r.below(0x1_0000)
        };
        d.extend_from_slice(&addr.to_le_bytes());
        d.extend_from_slice(&(len as u32).to_le_bytes());
        d.extend_from_slice(&(flags as u16).to_le_bytes());
        d.extend_from_slice(&(next as u16).to_le_bytes());
    }
    let off = s.add_data(&d);
    s.push(ap, op(OP_FILL, &[desc, d.len() as u64, off]));
    let mut av = Vec::new();
    av.extend_from_slice(&(r.below(2) as u16).to_le_bytes());
    let idx = if r.chance(80) {
        1 + r.below(2 * n)
    } else {
        r.below(0x1_0000)
    };
    av.extend_from_slice(&(idx as u16).to_le_bytes());
    for _ in 0..n {
        let e = if r.chance(85) {
            r.below(n)
        } else {
            r.below(0x1_0000)
        };
        av.extend_from_slice(&(e as u16).to_le_bytes());
    }
    let off = s.add_data(&av);
    s.push(ap, op(OP_FILL, &[avail, av.len() as u64, off]));
    let zeros = vec![0u8; 8 + 8 * n as usize];
    let off = s.add_data(&zeros);
    s.push(ap, op(OP_FILL, &[used, zeros.len() as u64, off]));
    (qsize, desc, avail, used)
}

/// A virtio driver gone wrong: the negotiation in order (with random deviations), queues
/// on random rings, DRIVER_OK, notifications.
fn virtio_session(r: &mut Rng, s: &mut Script, ap: bool) {
    let base = VIRTIO_BASE + r.below(2) * 0x1000;
    let w = |s: &mut Script, off: u64, v: u64| s.push(ap, op(OP_MMIO_W, &[base + off, 4, v]));
    w(s, 0x70, 0);
    w(s, 0x70, 1);
    w(s, 0x70, 3);
    w(s, 0x24, 1);
    w(s, 0x20, if r.chance(85) { 1 } else { r.next() });
    w(s, 0x24, 0);
    w(
        s,
        0x20,
        if r.chance(50) {
            0
        } else {
            r.next() & 0xffff_ffff
        },
    );
    w(s, 0x70, 0xb);
    for q in 0..r.pick(&[1u64, 2, 2, 3]) {
        w(
            s,
            0x30,
            if r.chance(90) {
                q
            } else {
                r.next() & 0xffff_ffff
            },
        );
        let (qsize, desc, avail, used) = virtio_rings(r, s, ap);
        w(s, 0x38, qsize);
        w(s, 0x80, desc & 0xffff_ffff);
        w(s, 0x84, desc >> 32);
        w(s, 0x90, avail & 0xffff_ffff);
        w(s, 0x94, avail >> 32);
        w(s, 0xa0, used & 0xffff_ffff);
        w(s, 0xa4, if r.chance(5) { 0xffff_ffff } else { used >> 32 });
        w(s, 0x44, 1);
    }
    w(s, 0x70, 0xf);
    for _ in 0..r.below(4) + 1 {
        w(s, 0x50, if r.chance(90) { r.below(3) } else { r.next() });
        s.push(ap, op(OP_SPIN, &[r.below(50)]));
        s.push(ap, op(OP_MMIO_R, &[base + 0x60, 4]));
        w(s, 0x64, r.below(4));
    }
    if r.chance(30) {
        w(s, 0x70, 0); // reset while active
    }
}

/// The last op of a safe script: none (status 0x600d), a status-port write of any width
/// (zero-extended, so the low `size` bytes), a ring-3 status write with IOPL 3 (RAX = 4), or
/// on one vCPU a Xen SCHEDOP_shutdown (poweroff/reboot: shutdown; crash: a crash).
fn safe_ending(r: &mut Rng, s: &mut Script, iface: Interface, cpus: u8) -> Option<VmEnd> {
    match r.below(8) {
        0 | 1 => {
            let size = r.pick(&[1u64, 2, 4]);
            let v = r.next();
            s.push(false, op(OP_OUT, &[0xf4, size, v]));
            let mask = if size == 4 {
                u64::from(u32::MAX)
            } else {
                (1 << (8 * size)) - 1
            };
            Some(VmEnd::Status((v & mask) as u32))
        }
        2 => {
            s.push(false, op(OP_USER, &[4, 0]));
            Some(VmEnd::Status(4))
        }
        3 if cpus == 1 && iface.has_xen() => {
            // Re-enable this guest's Xen page (random MSR writes may have moved it), put the
            // reason in memory, call sched_op through a high-half address.
            let (_, m) = iface.xen_base()?;
            s.push(false, op(OP_XEN_SETUP, &[u64::from(m), u64::MAX]));
            let reason = r.pick(&[0u32, 1, 3]);
            let at = SCRATCH + (r.below(SCRATCH_LEN - 8) & !3);
            let off = s.add_data(&reason.to_le_bytes());
            s.push(false, op(OP_FILL, &[at, 4, off]));
            s.push(false, op(OP_XEN, &[29, 2, HIGH_HALF + at]));
            Some(if reason == 3 {
                VmEnd::Crash {
                    reason: "guest reported a crash".into(),
                    regs: String::new(),
                }
            } else {
                VmEnd::Shutdown
            })
        }
        _ => None,
    }
}

/// One random op for the interpreter.
fn random_op(r: &mut Rng, s: &mut Script, iface: Interface, ap: bool, safe: bool) {
    match r.below(100) {
        0..=9 => {
            let p = port(r);
            let size = r.pick(&[1u64, 2, 4]);
            if p == 0xf4 && (safe || !r.chance(10)) {
                // Mostly read the status port; a write ends the VM.
                s.push(ap, op(OP_IN, &[p, size]));
            } else {
                s.may_end |= p == 0xf4;
                s.push(ap, op(OP_OUT, &[p, size, r.next()]));
            }
        }
        10..=12 => {
            let p = port(r);
            s.push(ap, op(OP_IN, &[p, r.pick(&[1u64, 2, 4])]));
        }
        13..=14 => {
            // String I/O (rep outs/ins) through scratch buffers; the status port only read.
            let p = port(r);
            let out = p != 0xf4 && r.chance(50);
            let count = match r.below(4) {
                0 => 1,
                1 => r.below(16),
                2 => 4096 + r.below(8),
                _ => r.below(1000),
            };
            let size = r.pick(&[1u64, 2, 4]);
            let buf = SCRATCH + r.below(SCRATCH_LEN - 0x5000);
            s.push(ap, op(OP_STR, &[p, size, count, u64::from(!out), buf]));
        }
        15..=24 => {
            let (a, wrecks) = mmio_addr(r);
            let size = r.pick(&[1u64, 2, 4, 8]);
            if wrecks && (safe || !r.chance(20)) {
                s.push(ap, op(OP_MMIO_R, &[a, size]));
            } else {
                s.may_end |= wrecks;
                s.push(ap, op(OP_MMIO_W, &[a, size, r.next()]));
            }
        }
        25..=29 => {
            let (a, _) = mmio_addr(r);
            s.push(ap, op(OP_MMIO_R, &[a, r.pick(&[1u64, 2, 4, 8])]));
        }
        30..=36 => {
            let m = msr(r);
            s.push(ap, op(OP_RDMSR, &[m]));
        }
        37..=44 => {
            let m = msr(r);
            let v = msr_value(r);
            s.push(ap, op(OP_WRMSR, &[m, v]));
        }
        45..=46 => {
            let id = match r.below(4) {
                0 => 0,
                1 => r.next() | 0x10,
                _ => 0x8100_0000_0000_0000 | (r.below(0xfff) + 1),
            };
            let page = if r.chance(85) { u64::MAX } else { msr_value(r) };
            s.push(ap, op(OP_HV_SETUP, &[id, page]));
        }
        47..=48 => {
            let m = match (iface.xen_base(), r.below(4)) {
                (Some((_, m)), 0..=2) => u64::from(m),
                _ => msr(r),
            };
            let v = if r.chance(80) { u64::MAX } else { msr_value(r) };
            s.push(ap, op(OP_XEN_SETUP, &[m, v]));
        }
        49..=63 => {
            let input = hv_input(r);
            let (a, b) = (gpa(r), gpa(r));
            s.push(ap, op(OP_HV, &[input, a, b]));
        }
        64..=79 => {
            let nr = match r.below(6) {
                0..=3 => r.pick(&[12u64, 17, 18, 29, 34, 15, 24, 32, 32, 33]),
                4 => r.below(64),
                _ => r.below(128),
            };
            let a0 = match nr {
                12 => r.pick(&[2u64, 3, 4, 9, 9, 1, 0, 7, 7]),
                17 => r.pick(&[0u64, 1, 6, 6, 2, 99, 3, 4, 5, 7, 8]),
                18 => r.pick(&[0u64, 0, 1, 2]),
                29 => r.pick(&[0u64, 0, 0, 1, 2, 3, 5]),
                34 => r.pick(&[0u64, 1, 1, 2, 9, 23]),
                // set_timer_op: a deadline in the past, soon, or far away.
                15 => r.pick(&[0u64, 1, 1 << 20, 1 << 40, u64::MAX]),
                // vcpu_op: register_vcpu_info, timers (single-shot, periodic), is_up,
                // up/down, runstate, unknown.
                24 => r.pick(&[10u64, 10, 8, 9, 7, 6, 6, 3, 5, 1, 2, 99]),
                // event_channel_op: every sub-op (loopback pairs too), FIFO init, unknown.
                32 => r.pick(&[1u64, 3, 4, 4, 5, 7, 8, 9, 11, 99, 6, 6, 0]),
                // physdev_op: PIRQ ops, hardware-domain ops, PV-only, unknown.
                33 => r.pick(&[12u64, 5, 13, 23, 25, 28, 99]),
                _ => r.below(16),
            };
            // SCHEDOP_shutdown ends the VM; SCHEDOP_block / SCHEDOP_poll wait for an event
            // that may never come (then the VM's timeout ends it): not in safe scripts.
            let a0 = if safe && nr == 29 && matches!(a0, 1..=3) {
                0
            } else {
                a0
            };
            s.may_end |= nr == 29 && matches!(a0, 1 | 3);
            // VCPUOP_down parks a vCPU until an up that may never come, or (the last one
            // up) powers the VM off: not in safe scripts.
            let a0 = if safe && nr == 24 && a0 == 2 { 3 } else { a0 };
            s.may_end |= nr == 24 && a0 == 2;
            let mut a = [nr, a0, gva(r), gva(r), gva(r), gva(r)];
            if nr == 24 {
                // vcpu_op's second argument is a vCPU number: real ones, and beyond.
                a[2] = r.pick(&[0u64, 0, 1, 3, 4, 0xffff_ffff, u64::MAX]);
            }
            if nr == 18 && a0 == 0 {
                a[2] = match r.below(4) {
                    0 => r.below(64),
                    1 => (1 << 20) + r.below(2),
                    2 => r.next(),
                    _ => r.below(0x3000),
                };
            }
            // SCHEDOP_shutdown with a readable reason may end the VM.
            s.may_end |= nr == 29 && a0 == 2;
            s.push(ap, op(OP_XEN, &a));
        }
        80..=84 => {
            // Xen structures in guest memory: domid 0 / DOMID_SELF, small indexes, memory
            // map capacity, a buffer handle; at the start and at the end of the scratch
            // area (that is, at the very end of the virtual address space).
            let mut d = Vec::new();
            if r.chance(50) {
                d.extend_from_slice(&r.pick(&[0u16, 0x7ff0, 1]).to_le_bytes());
                d.extend_from_slice(&[0, 0]);
                d.extend_from_slice(&(r.below(48) as u32).to_le_bytes());
                d.extend_from_slice(&gva(r).to_le_bytes());
            } else {
                // Xen frame numbers and ports: vcpu_register_vcpu_info { mfn, offset } with
                // an offset that crosses the page, add_to_physmap gpfns beyond RAM, event
                // ports beyond the 2-level bitmap, timer deadlines in the past.
                let (rnd, rnd32, rnd64) = (r.next(), r.next() as u32, r.below(64) as u32);
                let mfn = r.pick(&[
                    SCRATCH >> 12,
                    RAM_END >> 12,
                    (RAM_END >> 12) - 1,
                    u64::MAX >> 12,
                    rnd,
                ]);
                d.extend_from_slice(&mfn.to_le_bytes());
                let off = r.pick(&[0u32, 0xfc0, 0xfc8, 0xfff, rnd32]);
                d.extend_from_slice(&off.to_le_bytes());
                let port = r.pick(&[1u32, 2, 4095, 4096, u32::MAX, rnd64]);
                d.extend_from_slice(&port.to_le_bytes());
                d.extend_from_slice(&r.pick(&[0u64, 1, mfn]).to_le_bytes());
            }
            let dst = match r.below(3) {
                0 => SCRATCH + SCRATCH_LEN / 2 - d.len() as u64 + r.below(16),
                1 => SCRATCH + r.below(SCRATCH_LEN - 0x1000),
                _ => SCRATCH + r.below(0x100),
            };
            let off = s.add_data(&d);
            s.push(ap, op(OP_FILL, &[dst, d.len() as u64, off]));
        }
        85..=86 => s.push(
            ap,
            op(OP_CPUID, &[0x4000_0000 + r.below(0x300), r.below(4)]),
        ),
        87..=90 => {
            let v = r.pick(&[0u64, 1, 2, 3, 4, 5]);
            let v = if safe && v == 4 { 0 } else { v };
            s.may_end |= v == 4;
            s.push(ap, op(OP_USER, &[v, r.below(0x1_0000)]));
        }
        91..=95 => virtio_session(r, s, ap),
        96 if !ap => {
            // Random page tables (BSP only: APs share their script, and so would share
            // the live page); recursive entries let Xen writes reach the live PML4.
            let recursive = !safe && r.chance(50);
            s.may_end |= recursive;
            let page = PT_AREA + r.below(16) * 0x1000;
            let d = random_pml4(r, page, recursive);
            let off = s.add_data(&d);
            s.push(ap, op(OP_PT, &[page, off]));
        }
        97 if !ap => s.push(ap, op(OP_PT, &[0, 0])),
        _ => s.push(ap, op(OP_SPIN, &[r.below(200)])),
    }
}

/// Random code, biased towards instructions that reach the VMM.
fn random_code(r: &mut Rng, len: usize) -> Vec<u8> {
    let mut c = Vec::with_capacity(len + 32);
    while c.len() < len {
        match r.below(24) {
            0..=7 => {
                let n = 1 + r.below(8) as usize;
                c.extend(r.bytes(n));
            }
            8 => {
                c.push(0xb9); // mov ecx, msr
                c.extend_from_slice(&(msr(r) as u32).to_le_bytes());
                c.extend_from_slice(if r.chance(50) {
                    &[0x0f, 0x32]
                } else {
                    &[0x0f, 0x30]
                });
            }
            9 => {
                c.push(0xb8); // mov eax, imm; out/in imm8
                c.extend_from_slice(&(r.next() as u32).to_le_bytes());
                c.push(r.pick(&[0xe6, 0xe7, 0xe4, 0xe5, 0xe7]));
                c.push(port(r) as u8);
            }
            10 => c.extend_from_slice(&[0xff, 0xd3]), // call *%rbx (Hyper-V page)
            11 => {
                // lea nr*32(%rbp), %rax; call *%rax (a Xen stub)
                c.extend_from_slice(&[0x48, 0x8d, 0x85]);
                c.extend_from_slice(&((r.below(64) * 32) as u32).to_le_bytes());
                c.extend_from_slice(&[0xff, 0xd0]);
            }
            12 => {
                c.extend_from_slice(&[0x48, 0xb9]); // movabs rcx, input
                c.extend_from_slice(&hv_input(r).to_le_bytes());
                c.extend_from_slice(&[0x48, 0xba]); // movabs rdx, gpa
                c.extend_from_slice(&gpa(r).to_le_bytes());
            }
            13 => {
                c.extend_from_slice(&[0x48, 0xbe]); // movabs rsi, gva
                c.extend_from_slice(&gva(r).to_le_bytes());
                c.extend_from_slice(&[0x48, 0xbf]); // movabs rdi, small
                c.extend_from_slice(&r.below(10).to_le_bytes());
            }
            14 => {
                c.extend_from_slice(&[0x48, 0xba]); // movabs rdx, mmio; mov [rdx], eax / mov eax, [rdx]
                c.extend_from_slice(&mmio_addr(r).0.to_le_bytes());
                c.extend_from_slice(if r.chance(50) {
                    &[0x89, 0x02]
                } else {
                    &[0x8b, 0x02]
                });
            }
            15 => c.extend_from_slice(&[0x0f, 0xa2]), // cpuid
            16 => c.push(r.pick(&[0xf4, 0xfa, 0xfb, 0xcc, 0x90])), // hlt cli sti int3 nop
            17 => c.extend_from_slice(&[0x0f, 0x0b]), // ud2
            18 => c.extend_from_slice(&[0xeb, r.next() as u8]), // jmp rel8
            19 => c.extend_from_slice(r.pick(&[
                &[0x0f, 0x05][..],   // syscall
                &[0x48, 0xcf],       // iretq
                &[0x0f, 0x01, 0xd9], // vmmcall
                &[0x0f, 0x01, 0xc1], // vmcall
                &[0x0f, 0x22, 0xd8], // mov cr3, rax
                &[0x0f, 0x01, 0xf8], // swapgs
            ])),
            20 => c.extend_from_slice(&[0xf3, 0x90]), // pause
            21 => {
                // mov eax, nr; vmcall: a Xen hypercall as Linux makes it since XSA-466
                // (the VMM answers it with the Xen interface, on whatever is in the
                // argument registers).
                c.push(0xb8);
                c.extend_from_slice(&(r.below(40) as u32).to_le_bytes());
                c.extend_from_slice(&[0x0f, 0x01, 0xc1]);
            }
            _ => c.extend(std::iter::repeat_n(0x90, r.below(4) as usize + 1)),
        }
    }
    c.truncate(len);
    c
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `chaos_raw`: random code from the 32-bit PVH entry; or (`Case::bz`) a bzImage whose
    /// protected-mode part is random, entered in long mode (64-bit boot protocol).
    Raw32,
    /// Random code in long mode, optionally after enabling the hypercall pages.
    Code64,
    /// Random ops.
    Ops,
}

struct Case {
    kind: Kind,
    memory_mib: u32,
    /// chaos_raw.S: which hypercall pages to enable before the random code.
    cmdline: &'static str,
    iface: Interface,
    cpus: u8,
    script: Script,
    timeout: Duration,
    devices: bool,
    /// Raw32 only: boot `script.data` as a bzImage payload instead.
    bz: bool,
}

fn make_case(kind: Kind, seed: u64) -> Case {
    let mut r = Rng(seed);
    let iface = r.pick(&[
        Interface::HyperV,
        Interface::Xen,
        Interface::Both,
        Interface::None,
    ]);
    let mut s = Script::default();
    match kind {
        Kind::Raw32 => {
            // Enable the interface's hypercall pages first (in 32-bit mode, paging off).
            let cmdline = match (iface, r.chance(70)) {
                (_, false) | (Interface::None, _) => "-",
                (Interface::HyperV, _) => "h",
                (Interface::Xen, _) => "x",
                (Interface::Both, _) => "b",
            };
            let n = 256 + r.below(4096) as usize;
            s.data = random_code(&mut r, n);
            s.may_end = true;
            Case {
                kind,
                memory_mib: MEMORY_MIB,
                cmdline,
                iface,
                cpus: 1,
                script: s,
                timeout: RANDOM_CODE_TIMEOUT,
                devices: false,
                bz: r.chance(30),
            }
        }
        Kind::Code64 => {
            let cmdline = "chaos";
            let cpus = r.pick(&[1u8, 1, 1, 2, 3]);
            s.aps = u64::from(cpus - 1);
            if r.chance(70) {
                s.push(false, op(OP_HV_SETUP, &[0x8100_0000_0000_0001, u64::MAX]));
            }
            if r.chance(70) {
                let m = iface.xen_base().map_or(0x4000_0000, |(_, m)| u64::from(m));
                s.push(false, op(OP_XEN_SETUP, &[m, u64::MAX]));
            }
            let len = 512 + r.below(4096) as usize;
            let code = random_code(&mut r, len);
            let gates: Vec<u8> = (0..32)
                .flat_map(|_| (r.below(code.len() as u64) as u16).to_le_bytes())
                .collect();
            let code_off = s.add_data(&code);
            let gates_off = s.add_data(&gates);
            if r.chance(30) {
                // Ring 3 (native here), IOPL 3 or 0; exceptions come back to ring 0.
                s.push(false, op(OP_USER, &[6, code_off, r.below(2)]));
            } else {
                let gated = u64::from(r.chance(50));
                s.push(false, op(OP_JUMP, &[code_off, gated, gates_off]));
            }
            if cpus > 1 {
                let entry = code_off + r.below(code.len() as u64);
                s.push(true, op(OP_JUMP, &[entry, 0, gates_off]));
            }
            s.may_end = true;
            Case {
                kind,
                memory_mib: MEMORY_MIB,
                cmdline,
                iface,
                cpus,
                script: s,
                timeout: RANDOM_CODE_TIMEOUT,
                devices: r.chance(50),
                bz: false,
            }
        }
        Kind::Ops => {
            let cpus = r.pick(&[1u8, 1, 2, 2, 3, 4]);
            s.aps = u64::from(cpus - 1);
            // Usually a working setup first, so that the calls reach the dispatchers.
            if r.chance(80) {
                s.push(false, op(OP_HV_SETUP, &[0x8100_0000_0000_0001, u64::MAX]));
            }
            if r.chance(80) {
                let m = iface.xen_base().map_or(0x4000_0000, |(_, m)| u64::from(m));
                s.push(false, op(OP_XEN_SETUP, &[m, u64::MAX]));
            }
            // That set-up runs before the APs start: an AP calling a page while the VMM
            // writes it into place would be cross-modifying code, which this host's
            // instruction emulator can fail on (seen once in ~12000 cases).
            s.pre = s.bsp.len() as u64;
            // Safe scripts have no op that may end the VM: they must run to their end.
            let safe = r.chance(50);
            let n = 40 + r.below(160);
            for _ in 0..n {
                random_op(&mut r, &mut s, iface, false, safe);
            }
            if cpus > 1 {
                for _ in 0..20 + r.below(80) {
                    random_op(&mut r, &mut s, iface, true, safe);
                }
            }
            // A safe script may end with one deliberate ending op, whose end is then known.
            if safe {
                s.expect = safe_ending(&mut r, &mut s, iface, cpus);
            }
            // Some scripts that must end run without a timeout: then only the VMM's own
            // rules (status port, watchdog) can end them.
            let timeout = if safe && r.chance(25) {
                Duration::ZERO
            } else {
                Duration::from_secs(3)
            };
            // Some VMs are big: RAM below 3 GiB and from 4 GiB on (two regions), so that
            // hypercall buffers can straddle the MMIO hole.
            let memory_mib = if r.chance(10) { 4608 } else { MEMORY_MIB };
            // The guest may overwrite its own hypercall page: when the page is put where
            // hypercall and Xen buffers go (a scratch page; in a big VM also RAM_END, the
            // end of RAM of the others but ordinary RAM there), their output can land in
            // it, and a vCPU's next call then runs whatever was written (zeros slide to an
            // instruction the emulator rejects). The VMM did what the guest asked.
            if s.bsp.iter().chain(&s.ap).any(|o| {
                let page = match o[0] {
                    OP_HV_SETUP if o[2] != u64::MAX => o[2],
                    OP_WRMSR if o[1] == 0x4000_0001 => o[2],
                    _ => return false,
                };
                let at = page & !0xfff;
                page & 1 == 1
                    && ((SCRATCH..SCRATCH + SCRATCH_LEN).contains(&at)
                        || (memory_mib != MEMORY_MIB && at == RAM_END))
            }) {
                s.may_end = true;
            }
            Case {
                kind,
                memory_mib,
                cmdline: "chaos",
                iface,
                cpus,
                script: s,
                timeout,
                devices: true,
                bz: false,
            }
        }
    }
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);
impl Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let mut v = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // Keep the head only: a hostile guest may print megabytes.
        if v.len() < 4096 {
            v.extend_from_slice(&b[..b.len().min(4096)]);
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Panics on threads the VMM started (vCPUs, virtio workers, teardown), counted by a hook:
/// a vCPU panic may otherwise show only as a late `Timeout`.
static VMM_PANICS: AtomicU64 = AtomicU64::new(0);

fn is_vmm_thread(name: &str) -> bool {
    name.starts_with("vcpu")
        || name.starts_with("virtio-")
        || name.starts_with("vm-teardown")
        || name == "vmbus"
}

fn install_panic_counter() {
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name().is_some_and(is_vmm_thread) {
            VMM_PANICS.fetch_add(1, Ordering::SeqCst);
        }
        prev(info);
    }));
}

fn thread_count() -> usize {
    let s = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    s.lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("Threads: line")
}

fn thread_names() -> Vec<String> {
    let mut v = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for e in dir.flatten() {
            if let Ok(c) = std::fs::read_to_string(e.path().join("comm")) {
                v.push(c.trim().to_string());
            }
        }
    }
    v
}

/// `full`: waits for teardown threads and for every VMM thread to be gone. Otherwise only
/// checks that no vCPU thread is left (`run` joins them before it returns; the kernel's
/// teardown of a VM, 20-30 ms here, then overlaps the next VM).
fn settle(full: bool) -> Result<(), String> {
    if full && !hypervisor::wait_for_teardowns(Duration::from_secs(10)) {
        return Err(format!(
            "{} VM teardowns still pending after 10 s",
            hypervisor::teardowns_pending()
        ));
    }
    let t = Instant::now();
    loop {
        let left: Vec<String> = thread_names()
            .into_iter()
            .filter(|n| {
                if full {
                    is_vmm_thread(n)
                } else {
                    n.starts_with("vcpu")
                }
            })
            .collect();
        if left.is_empty() {
            return Ok(());
        }
        if t.elapsed() > Duration::from_secs(2) {
            return Err(format!(
                "VMM threads left after the VM ended{}: {left:?}",
                if full {
                    " (this VM or one of the 7 before)"
                } else {
                    ""
                }
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

struct Env {
    /// Scratch directory (removed when the run ends).
    dir: tempfile::TempDir,
    disk: PathBuf,
    raw: PathBuf,
    chaos: PathBuf,
}

impl Env {
    fn new() -> Env {
        let dir = common::scratch_dir("chaos");
        let disk = dir.path().join("disk.img");
        Env {
            raw: guests::guest("chaos_raw"),
            chaos: guests::guest("chaos"),
            dir,
            disk,
        }
    }
}

/// Summary of what the cases did.
#[derive(Default)]
struct Stats {
    vms: u64,
    ends: std::collections::BTreeMap<String, u64>,
    hypercalls: u64,
    xen_calls: u64,
    unclaimed: u64,
    ops: [u64; 18],
    longest: Duration,
}

/// Runs one case; Err describes a VMM failure. `what` names the case and its seed.
fn run_case(env: &Env, what: &str, case: &Case, stats: &mut Stats) -> Result<(), String> {
    let kind = case.kind;
    let script = env.dir.path().join("script");
    std::fs::write(&script, case.script.bytes()).map_err(|e| e.to_string())?;
    let kernel = match kind {
        Kind::Raw32 if case.bz => {
            let bz = env.dir.path().join("bz.img");
            std::fs::write(&bz, guests::bzimage(&case.script.data)).map_err(|e| e.to_string())?;
            bz
        }
        Kind::Raw32 => env.raw.clone(),
        _ => env.chaos.clone(),
    };
    let mut cfg = VmConfig {
        kernel,
        cmdline: case.cmdline.into(),
        initrd: Some(script),
        memory_mib: case.memory_mib,
        cpus: case.cpus,
        interface: case.iface,
        timeout: case.timeout,
        ..Default::default()
    };
    if case.devices {
        std::fs::write(&env.disk, vec![0u8; 64 << 10]).map_err(|e| e.to_string())?;
        cfg.disks = vec![DiskConfig {
            path: env.disk.clone(),
            read_only: case.cpus.is_multiple_of(2),
        }];
        cfg.nets = vec![NetConfig::Loopback];
        // Every other Hyper-V case puts them on the VMBus (storvsc, netvsc): random
        // HvCallPostMessage / HvCallSignalEvent reach the VMBus host and its worker.
        if matches!(case.iface, Interface::HyperV | Interface::Both) && case.cpus % 2 == 1 {
            cfg.vmbus = hypervisor::vmbus::VmbusConfig {
                disks: true,
                nics: true,
            };
        }
    }
    let what = format!(
        "{what} ({kind:?}{}, {} vCPU, {} MiB, interface {}, {} ops)",
        if case.bz { " bzImage" } else { "" },
        case.cpus,
        case.memory_mib,
        case.iface,
        case.script.bsp.len() + case.script.ap.len()
    );
    let panics_before = VMM_PANICS.load(Ordering::SeqCst);
    let vm = Vm::new(cfg).map_err(|e| format!("{what}: Vm::new failed: {e}"))?;
    let out = Capture::default();
    let t = Instant::now();
    // `run` on a thread of its own, so that a VMM that hangs fails this test instead of
    // hanging it (the hung thread then also fails the thread-count check).
    let (tx, rx) = std::sync::mpsc::channel();
    let out2 = out.clone();
    std::thread::Builder::new()
        .name("chaos-run".into())
        .spawn(move || {
            let _ = tx.send(vm.run(Box::new(out2)));
        })
        .map_err(|e| format!("{what}: cannot spawn: {e}"))?;
    let limit = if case.timeout.is_zero() {
        NO_TIMEOUT_LIMIT
    } else {
        case.timeout + SLACK
    };
    let r = match rx.recv_timeout(limit) {
        Ok(r) => r.map_err(|e| format!("{what}: run failed: {e}"))?,
        Err(_) => {
            return Err(format!(
                "{what}: Vm::run has not returned after {limit:?} (timeout {:?}): VMM hang",
                case.timeout
            ))
        }
    };
    let wall = t.elapsed();
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let full = RUNS.fetch_add(1, Ordering::SeqCst) % 8 == 7;
    settle(full).map_err(|e| format!("{what}: {e}"))?;
    let panics = VMM_PANICS.load(Ordering::SeqCst) - panics_before;
    let describe = |msg: &str| {
        format!(
            "{what}: {msg}; ended with {:?} after {wall:?}; hypercalls {:?}; xen trace (last 5) {:?}",
            r.end,
            r.hypercalls,
            r.xen_trace.iter().rev().take(5).collect::<Vec<_>>()
        )
    };
    if panics > 0 {
        return Err(describe(&format!("{panics} VMM thread(s) panicked")));
    }
    if let VmEnd::Crash { reason, regs } = &r.end {
        if reason.contains("panic") {
            return Err(describe("VMM panic reported as a crash"));
        }
        if reason.is_empty() || regs.is_empty() {
            return Err(describe("crash without a reason or a register dump"));
        }
    }
    if !case.timeout.is_zero() && wall > case.timeout + SLACK {
        return Err(describe(&format!(
            "run returned {wall:?} after start, timeout {:?}",
            case.timeout
        )));
    }
    if r.end == VmEnd::Timeout && wall < case.timeout {
        return Err(describe("Timeout before the timeout"));
    }
    let expected = case.script.expect.clone().unwrap_or(VmEnd::Status(MAGIC));
    let as_expected = match (&expected, &r.end) {
        (VmEnd::Crash { reason: want, .. }, VmEnd::Crash { reason, .. }) => reason.contains(want),
        (want, got) => want == got,
    };
    if !case.script.may_end && !as_expected {
        return Err(describe(&format!(
            "this script must end with {expected} (no other op can end the VM)"
        )));
    }
    if std::env::var_os("HVCERT_CHAOS_VERBOSE").is_some() {
        eprintln!("chaos: {what}: {} after {wall:?}", r.end);
    }
    stats.vms += 1;
    let end = match &r.end {
        VmEnd::Crash { reason, .. } => {
            // Group by the reason's start, without addresses.
            let short: String = reason
                .split([':', ';', '(', ','])
                .take(2)
                .collect::<Vec<_>>()
                .join(":");
            format!("crash:{}", short.trim())
        }
        VmEnd::Status(s) if *s == MAGIC => "status:all-ops-done".into(),
        VmEnd::Status(_) => "status:other".into(),
        e => e.to_string(),
    };
    *stats.ends.entry(format!("{kind:?} {end}")).or_insert(0) += 1;
    stats.hypercalls += r
        .hypercalls
        .iter()
        .filter(|(k, _)| !k.starts_with("xen:"))
        .map(|(_, v)| v)
        .sum::<u64>();
    stats.xen_calls += r.xen_trace.len() as u64;
    stats.unclaimed += r.unclaimed_accesses;
    for (a, b) in stats.ops.iter_mut().zip(case.script.kinds) {
        *a += b;
    }
    stats.longest = stats.longest.max(wall);
    Ok(())
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => v.parse().ok(),
    }
}

/// Hand-written scripts for the VMM bugs this test found (kept independent of the random
/// generator, so they stay valid when it changes). Each must run to its end.
fn regressions() -> Vec<(&'static str, Case)> {
    let mut v = Vec::new();
    let xen = |iface: Interface, ops: Vec<[u64; 8]>, fill: Option<(u64, Vec<u8>)>| {
        let mut s = Script::default();
        let m = iface.xen_base().map_or(0x4000_0000, |(_, m)| u64::from(m));
        s.push(false, op(OP_XEN_SETUP, &[m, u64::MAX]));
        if let Some((dst, d)) = fill {
            let off = s.add_data(&d);
            s.push(false, op(OP_FILL, &[dst, d.len() as u64, off]));
        }
        for o in ops {
            s.push(false, o);
        }
        Case {
            kind: Kind::Ops,
            memory_mib: MEMORY_MIB,
            cmdline: "chaos",
            iface,
            cpus: 1,
            script: s,
            timeout: Duration::from_secs(3),
            devices: false,
            bz: false,
        }
    };
    // The last 8 bytes of the address space (-> SCRATCH + 0x1ffff8) hold a valid
    // xen_hvm_param head (domid 0, index 1); its value field wraps around to VA 0.
    let mut head = vec![0u8; 8];
    head[4] = 1;
    // src/xen.rs hvm_op: HVMOP_get_param at VA 2^64-8 computed `a[1] + 8` (overflow panic).
    v.push((
        "regression: Xen HVMOP_get_param at the last 8 bytes of the address space",
        xen(
            Interface::Xen,
            vec![op(OP_XEN, &[34, 1, u64::MAX - 7])],
            Some((SCRATCH + 0x1f_fff8, head.clone())),
        ),
    ));
    // src/xen.rs xen_version: XENVER_get_features at VA 2^64-4 computed `a[1] + 4`.
    v.push((
        "regression: Xen XENVER_get_features at the last 4 bytes of the address space",
        xen(
            Interface::Both,
            vec![
                op(OP_XEN, &[17, 6, u64::MAX - 3]),
                op(OP_XEN, &[17, 6, u64::MAX - 1]),
                op(OP_XEN, &[34, 0, u64::MAX - 7]),
                op(OP_XEN, &[34, 1, u64::MAX - 15]),
            ],
            Some((SCRATCH + 0x1f_fff0, [head.clone(), head].concat())),
        ),
    ));
    // The calls added for SMP, periodic timers and loopback event channels, with their
    // structures at the very end of the address space (the output fields of alloc_unbound
    // and bind_interdomain would be written past 2^64) and a vCPU number beyond the VM's.
    v.push((
        "Xen periodic timer, up/is_up, alloc_unbound/bind_interdomain at the end of the address space",
        xen(
            Interface::Xen,
            vec![
                op(OP_XEN, &[24, 6, 0, u64::MAX - 7]),
                op(OP_XEN, &[24, 6, 9, u64::MAX - 7]),
                op(OP_XEN, &[24, 1, 0xffff_ffff, 0]),
                op(OP_XEN, &[24, 3, 0, 0]),
                op(OP_XEN, &[32, 6, u64::MAX - 3]),
                op(OP_XEN, &[32, 0, u64::MAX - 7]),
                op(OP_XEN, &[32, 0, u64::MAX - 3]),
                op(OP_XEN, &[33, 13, u64::MAX]),
                op(OP_XEN, &[34, 9, u64::MAX - 7]),
            ],
            Some((SCRATCH + 0x1f_fff0, vec![0xf0, 0x7f, 0xf0, 0x7f, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0])),
        ),
    ));
    v
}

#[test]
fn hostile_guests_end_cleanly() {
    if !kvm_or_skip("hostile_guests_end_cleanly") {
        return;
    }
    install_panic_counter();
    let env = Env::new();
    // Settle anything earlier (none in this binary) before counting threads.
    settle(true).expect("settle before");
    let threads_before = thread_count();
    let master = env_u64("HVCERT_CHAOS_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    let per_kind = env_u64("HVCERT_CHAOS_CASES").unwrap_or(30);
    let only = env_u64("HVCERT_CHAOS_CASE");
    eprintln!(
        "chaos: master seed {master:#x} (replay: HVCERT_CHAOS_SEED={master:#x}), {per_kind} cases per kind"
    );
    let started = Instant::now();
    let mut stats = Stats::default();
    let mut failures = Vec::new();
    let check = |what: &str, case: &Case, stats: &mut Stats, failures: &mut Vec<String>| {
        if let Err(e) = run_case(&env, what, case, stats) {
            eprintln!("FAIL {e}");
            failures.push(e);
        }
    };
    if only.is_none() {
        for (what, case) in regressions() {
            check(what, &case, &mut stats, &mut failures);
        }
    }
    let kinds = [Kind::Raw32, Kind::Code64, Kind::Ops, Kind::Ops];
    for index in 0..per_kind * 4 {
        if only.is_some_and(|o| o != index) {
            continue;
        }
        let kind = kinds[(index % 4) as usize];
        let seed = mix(master, index);
        let case = make_case(kind, seed);
        check(
            &format!("case {index} (seed {seed:#x})"),
            &case,
            &mut stats,
            &mut failures,
        );
        if failures.len() >= 5 {
            break;
        }
    }
    settle(true).expect("settle after");
    let t = Instant::now();
    while thread_count() != threads_before && t.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let threads_after = thread_count();
    eprintln!(
        "chaos: {} VMs in {:?} (longest {:?}); hypercalls {} native, {} Xen; {} unclaimed accesses; ops by kind {:?}",
        stats.vms,
        started.elapsed(),
        stats.longest,
        stats.hypercalls,
        stats.xen_calls,
        stats.unclaimed,
        stats.ops
    );
    for (k, v) in &stats.ends {
        eprintln!("chaos:   {v:4} {k}");
    }
    assert!(
        failures.is_empty(),
        "master seed {master:#x}: {} failure(s) (replay with HVCERT_CHAOS_SEED={master:#x} HVCERT_CHAOS_CASE=<case>):\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(
        threads_after,
        threads_before,
        "threads before {threads_before}, after {threads_after}: {:?}",
        thread_names()
    );
}
