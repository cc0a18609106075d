//! What a `CONFIG_XEN_PVHVM` Linux kernel asks of Xen in `xen_hvm_guest_init()` and after:
//! the version/feature queries, shared_info through XENMEM_add_to_physmap, vcpu_info
//! placement, the pvclock, 2-level event channels with the callback vector, single-shot
//! timers, SCHEDOP_block/poll, HVM parameters and the calls a HVM guest gets -ENOSYS for.
//! Each case checks the positive path and the errors Xen gives (bad vCPU, bad port,
//! unbound port, double bind, info outside RAM, unknown sub-op).
use super::xen::{hypercall, setup, Xen};
use crate::boot::UPCALL_VECTOR;
use crate::ktap::{Msg, Outcome};
use crate::port::outb;
use crate::sys::{self, Page};
use crate::{check, diag, fail, msg, Ctx};

const MEMORY_OP: u64 = 12;
const SET_TIMER_OP: u64 = 15;
const XEN_VERSION: u64 = 17;
const GRANT_TABLE_OP: u64 = 20;
const VCPU_OP: u64 = 24;
const SCHED_OP: u64 = 29;
const EVENT_CHANNEL_OP: u64 = 32;
const PHYSDEV_OP: u64 = 33;
const HVM_OP: u64 = 34;

const ENOENT: i64 = -2;
const EPERM: i64 = -1;
const EEXIST: i64 = -17;
const EINVAL: i64 = -22;
const ENOSYS: i64 = -38;
const ETIME: i64 = -62;
const DOMID_SELF: u32 = 0x7ff0;

const EVTCHNOP_BIND_VIRQ: u64 = 1;
const EVTCHNOP_CLOSE: u64 = 3;
const EVTCHNOP_SEND: u64 = 4;
const EVTCHNOP_STATUS: u64 = 5;
const EVTCHNOP_BIND_IPI: u64 = 7;
const EVTCHNOP_BIND_VCPU: u64 = 8;
const EVTCHNOP_UNMASK: u64 = 9;
const EVTCHNOP_INIT_CONTROL: u64 = 11;
const VIRQ_TIMER: u32 = 0;
const VIRQ_DEBUG: u32 = 1;
const VIRQ_CONSOLE: u32 = 2;

static mut SHINFO: Page = Page([0; 4096]);
static mut VCPU_PAGE: Page = Page([0; 4096]);
static mut ARG: Page = Page([0; 4096]);

fn shinfo() -> u64 {
    (&raw const SHINFO) as u64
}
pub(super) fn arg() -> u64 {
    (&raw const ARG) as u64
}

macro_rules! setup {
    () => {
        match setup() {
            Ok(x) => x,
            Err(m) => return Outcome::Fail(m),
        }
    };
}

macro_rules! call {
    ($x:expr, $nr:expr, $a:expr) => {
        match hypercall($x, $nr, $a) {
            Ok(r) => r,
            Err(m) => return Outcome::Fail(m),
        }
    };
}

macro_rules! req {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(m) => return Outcome::Fail(m),
        }
    };
}

/// Writes 32-bit words to ARG.
pub(super) fn words(w: &[u32]) {
    for (i, v) in w.iter().enumerate() {
        sys::write_u32(arg() + 4 * i as u64, *v);
    }
}

/// XENMEM_add_to_physmap(XENMAPSPACE_shared_info) at our SHINFO page.
pub(super) fn map_shared_info(x: &Xen) -> Result<u64, Msg> {
    add_to_physmap(x, 0, shinfo() >> 12).and_then(|r| {
        if r == 0 {
            Ok(shinfo())
        } else {
            Err(msg!("add_to_physmap(shared_info) returned {}", r))
        }
    })
}

pub(super) fn add_to_physmap(x: &Xen, space: u32, gpfn: u64) -> Result<i64, Msg> {
    // struct xen_add_to_physmap { u16 domid; u16 size; u32 space; u64 idx; u64 gpfn; }
    words(&[DOMID_SELF, space]);
    sys::write_u64(arg() + 8, 0);
    sys::write_u64(arg() + 16, gpfn);
    hypercall(x, MEMORY_OP, [7, arg(), 0, 0, 0])
}

/// System time (ns) from the vcpu_time_info at `ti`, as Linux's pvclock reader does.
pub(super) fn pv_time(ti: u64) -> (u64, u64) {
    loop {
        let v1 = sys::read_u32(ti);
        if v1 & 1 != 0 {
            continue;
        }
        let ts = sys::read_u64(ti + 8);
        let st = sys::read_u64(ti + 16);
        let mul = sys::read_u32(ti + 24);
        let shift = sys::read_u8(ti + 28) as i8;
        let tsc = sys::rdtsc();
        if sys::read_u32(ti) != v1 {
            continue;
        }
        let d = tsc.wrapping_sub(ts);
        let d = if shift >= 0 { d << shift } else { d >> -shift };
        return (st + ((d as u128 * mul as u128) >> 32) as u64, tsc);
    }
}

/// Callback vector on: mask the legacy PIC, enable the LAPIC, HVM_PARAM_CALLBACK_IRQ =
/// vector type with UPCALL_VECTOR (what Linux's xen_set_callback_via does).
pub(super) fn callback_vector(x: &Xen) -> Result<(), Msg> {
    outb(0x21, 0xff);
    outb(0xa1, 0xff);
    const LAPIC: u64 = 0xfee0_0000;
    let svr = sys::read_u32(LAPIC + 0xf0);
    sys::write_u32(LAPIC + 0xf0, svr | 0x100 | 0xff);
    words(&[DOMID_SELF, 0]);
    sys::write_u64(arg() + 8, (2u64 << 56) | UPCALL_VECTOR as u64);
    let r = hypercall(x, HVM_OP, [0, arg(), 0, 0, 0])?;
    if r != 0 {
        return Err(msg!("set_param(CALLBACK_IRQ, vector) returned {}", r));
    }
    Ok(())
}

/// Whether `vector` is pending in the local APIC's IRR.
pub(super) fn irr(vector: u8) -> bool {
    let reg = 0xfee0_0200 + (vector as u64 / 32) * 0x10;
    sys::read_u32(reg) >> (vector % 32) & 1 != 0
}

pub(super) fn evtchn(x: &Xen, cmd: u64, w: &[u32]) -> Result<i64, Msg> {
    words(w);
    hypercall(x, EVTCHN_OP_NR, [cmd, arg(), 0, 0, 0])
}
const EVTCHN_OP_NR: u64 = EVENT_CHANNEL_OP;

pub(super) fn pending(si: u64, port: u32) -> bool {
    sys::read_u64(si + 2048 + (port as u64 / 64) * 8) >> (port % 64) & 1 != 0
}

/// Acknowledge like Linux's upcall handler: clear upcall_pending, selector, the port.
pub(super) fn ack(si: u64, port: u32) {
    sys::write_bytes(si, &[0]);
    sys::write_u64(si + 8, 0);
    let w = si + 2048 + (port as u64 / 64) * 8;
    sys::write_u64(w, sys::read_u64(w) & !(1u64 << (port % 64)));
}

/// xen_version sub-ops a Linux kernel and its tools read; get_features honest.
pub fn version_info(_ctx: &mut Ctx) -> Outcome {
    let x = setup!();
    let r = call!(&x, XEN_VERSION, [7, 0, 0, 0, 0]);
    check!(r == 4096, "XENVER_pagesize = {}", r);
    for (cmd, len, name) in [
        (2u64, 144u64, "compile_info"),
        (3, 1024, "capabilities"),
        (4, 64, "changeset"),
        (5, 8, "platform_parameters"),
        (8, 16, "guest_handle"),
    ] {
        for i in 0..len {
            sys::write_bytes(arg() + i, &[0xaa]);
        }
        let r = call!(&x, XEN_VERSION, [cmd, arg(), 0, 0, 0]);
        check!(r == 0, "XENVER_{} returned {}", name, r);
        let untouched = (0..len)
            .filter(|&i| sys::read_u8(arg() + i) == 0xaa)
            .count();
        check!(
            untouched == 0,
            "XENVER_{} left {} bytes unwritten",
            name,
            untouched
        );
    }
    sys::write_bytes(arg(), &[0; 64]);
    call!(&x, XEN_VERSION, [3, arg(), 0, 0, 0]);
    let caps: [u8; 14] = core::array::from_fn(|i| sys::read_u8(arg() + i as u64));
    check!(&caps == b"hvm-3.0-x86_64", "capabilities start {:?}", caps);
    words(&[0, 0]);
    let r = call!(&x, XEN_VERSION, [6, arg(), 0, 0, 0]);
    let f = sys::read_u32(arg() + 4);
    diag!("XENVER_get_features submap 0 = {:#x}", f);
    check!(r == 0, "get_features returned {}", r);
    check!(f & (1 << 8) != 0, "hvm_callback_vector not offered");
    check!(f & (1 << 9) != 0, "hvm_safe_pvclock not offered");
    check!(f & (1 << 2) != 0, "auto_translated_physmap not offered");
    check!(
        f & (1 << 10) == 0,
        "hvm_pirqs offered without PIRQ emulation"
    );
    words(&[1, 0]);
    let r = call!(&x, XEN_VERSION, [6, arg(), 0, 0, 0]);
    check!(
        r == EINVAL,
        "get_features submap 1 returned {}, want -EINVAL",
        r
    );
    Outcome::Pass
}

/// XENMEM_add_to_physmap(shared_info): wall clock and vcpu_info[0] time appear there;
/// grant-table frames, other spaces and frames outside RAM are refused.
pub fn shared_info(ctx: &mut Ctx) -> Outcome {
    let x = setup!();
    sys::write_u32(shinfo() + 3072, 0x5555);
    let si = req!(map_shared_info(&x));
    let wc_v = sys::read_u32(si + 3072);
    let wc_sec = sys::read_u32(si + 3076) as u64 | (sys::read_u32(si + 3084) as u64) << 32;
    diag!(
        "shared_info at {:#x}: wc_version {} wc_sec {}",
        si,
        wc_v,
        wc_sec
    );
    check!(
        wc_v.is_multiple_of(2) && wc_v != 0x5555,
        "wc_version {}",
        wc_v
    );
    check!(
        wc_sec > 1_577_836_800,
        "wall clock {} s is before 2020",
        wc_sec
    );
    let ti = si + 32;
    let (mul, ver) = (sys::read_u32(ti + 24), sys::read_u32(ti));
    check!(
        mul != 0 && ver.is_multiple_of(2),
        "vcpu_info[0].time: version {} mul {}",
        ver,
        mul
    );
    let max_pfn = sys::read_u64(si + 3088);
    check!(
        ctx.ram_top == 0 || max_pfn << 12 >= ctx.ram_top,
        "arch.max_pfn {:#x} below the RAM top {:#x}",
        max_pfn,
        ctx.ram_top
    );
    let r = req!(add_to_physmap(&x, 1, shinfo() >> 12));
    check!(
        r == EINVAL,
        "grant-table frame returned {}, want -EINVAL",
        r
    );
    let r = req!(add_to_physmap(&x, 9, shinfo() >> 12));
    check!(
        r == EINVAL,
        "unknown map space returned {}, want -EINVAL",
        r
    );
    let r = req!(add_to_physmap(&x, 0, 0xff_0000_0000 >> 12));
    check!(
        r == EINVAL,
        "shared_info outside RAM returned {}, want -EINVAL",
        r
    );
    let r = call!(&x, MEMORY_OP, [0x77, arg(), 0, 0, 0]);
    check!(r == ENOSYS, "unknown memory_op returned {}", r);
    Outcome::Pass
}

/// VCPUOP_register_vcpu_info: moves vcpu_info (time info follows); a vcpu_info crossing a
/// page, outside RAM, of a vCPU that does not exist or registered twice is refused.
pub fn vcpu_info(_ctx: &mut Ctx) -> Outcome {
    let x = setup!();
    req!(map_shared_info(&x));
    let page = (&raw const VCPU_PAGE) as u64;
    let reg = |vcpu: u64, mfn: u64, off: u32| {
        sys::write_u64(arg(), mfn);
        words_at(8, &[off, 0]);
        hypercall(&x, VCPU_OP, [10, vcpu, arg(), 0, 0])
    };
    let r = req!(reg(0, page >> 12, 0xfc8));
    check!(
        r == EINVAL,
        "vcpu_info crossing a page returned {}, want -EINVAL",
        r
    );
    let r = req!(reg(0, 0xff_0000_0000 >> 12, 0));
    check!(
        r == EINVAL,
        "vcpu_info outside RAM returned {}, want -EINVAL",
        r
    );
    let r = req!(reg(7, page >> 12, 0x40));
    check!(
        r == ENOENT,
        "vcpu_info for vCPU 7 returned {}, want -ENOENT",
        r
    );
    let r = req!(reg(0, page >> 12, 0x40));
    check!(r == 0, "register_vcpu_info returned {}", r);
    let ti = page + 0x40 + 32;
    let (mul, ver) = (sys::read_u32(ti + 24), sys::read_u32(ti));
    check!(
        mul != 0 && ver.is_multiple_of(2),
        "time info at the new place: version {} mul {}",
        ver,
        mul
    );
    let r = req!(reg(0, page >> 12, 0x80));
    check!(
        r == EINVAL,
        "second registration returned {}, want -EINVAL",
        r
    );
    let r = call!(&x, VCPU_OP, [3, 0, 0, 0, 0]);
    check!(r == 1, "VCPUOP_is_up(0) returned {}", r);
    let r = call!(&x, VCPU_OP, [3, 9, 0, 0, 0]);
    check!(r == ENOENT, "VCPUOP_is_up(9) returned {}, want -ENOENT", r);
    let r = call!(&x, VCPU_OP, [0x55, 0, 0, 0, 0]);
    check!(r == ENOSYS, "unknown vcpu_op returned {}, want -ENOSYS", r);
    Outcome::Pass
}

pub(super) fn words_at(off: u64, w: &[u32]) {
    for (i, v) in w.iter().enumerate() {
        sys::write_u32(arg() + off + 4 * i as u64, *v);
    }
}

/// pvclock: monotonic, its rate matches the VMM's clock across a SCHEDOP_poll timeout, and
/// with both interfaces it agrees with Hyper-V's TIME_REF_COUNT.
pub fn pvclock(_ctx: &mut Ctx) -> Outcome {
    let x = setup!();
    let si = req!(map_shared_info(&x));
    let ti = si + 32;
    let (t1, _) = pv_time(ti);
    let (t2, _) = pv_time(ti);
    check!(t2 >= t1, "pvclock went back: {} then {}", t1, t2);
    check!(
        t1 < 600_000_000_000,
        "system time {} ns: more than 10 min since VM creation",
        t1
    );
    // SCHEDOP_poll on an unbound-but-valid port set: the VMM waits until the timeout on
    // its own clock; the pvclock must have moved at least that much.
    let port = req!(bind_ipi(&x));
    let (t0, _) = pv_time(ti);
    let deadline = t0 + 20_000_000;
    sys::write_u32(arg() + 64, port);
    sys::write_u64(arg(), arg() + 64);
    words_at(8, &[1, 0]);
    sys::write_u64(arg() + 16, deadline);
    let r = call!(&x, SCHED_OP, [3, arg(), 0, 0, 0]);
    let (t3, _) = pv_time(ti);
    diag!("poll for 20 ms: pvclock moved {} us", (t3 - t0) / 1000);
    check!(r == 0, "SCHEDOP_poll returned {}", r);
    check!(
        t3 >= deadline,
        "poll returned at {} before its deadline {}",
        t3,
        deadline
    );
    check!(
        t3 < deadline + 2_000_000_000,
        "poll overslept: {} vs {}",
        t3,
        deadline
    );
    match sys::rdmsr(0x4000_0020) {
        Ok(r1) => {
            let (pv, _) = pv_time(ti);
            let r2 = match sys::rdmsr(0x4000_0020) {
                Ok(v) => v,
                Err(f) => fail!("TIME_REF_COUNT faulted {}", f.0),
            };
            let (lo, hi) = (r1 * 100, r2 * 100);
            diag!("TIME_REF_COUNT {}..{} ns, pvclock {} ns", lo, hi, pv);
            check!(
                pv + 2_000_000 >= lo && pv <= hi + 2_000_000,
                "pvclock {} ns outside TIME_REF_COUNT {}..{} ns (+-2 ms)",
                pv,
                lo,
                hi
            );
        }
        Err(_) => {
            diag!("no Hyper-V TIME_REF_COUNT here: checked against the VMM's poll timeout only")
        }
    }
    Outcome::Pass
}

pub(super) fn bind_ipi(x: &Xen) -> Result<u32, Msg> {
    let r = evtchn(x, EVTCHNOP_BIND_IPI, &[0, 0])?;
    if r != 0 {
        return Err(msg!("bind_ipi returned {}", r));
    }
    Ok(sys::read_u32(arg() + 4))
}

/// IPI event channel: send sets the bits and raises the callback vector; masked, only the
/// pending bit; unmask delivers; close; the errors for bad/closed ports and bad vCPUs.
pub fn evtchn_ipi(_ctx: &mut Ctx) -> Outcome {
    let x = setup!();
    let si = req!(map_shared_info(&x));
    req!(callback_vector(&x));
    let r = req!(evtchn(&x, EVTCHNOP_INIT_CONTROL, &[0, 0, 0, 0]));
    check!(
        r == ENOSYS,
        "init_control (FIFO) returned {}, want -ENOSYS",
        r
    );
    let port = req!(bind_ipi(&x));
    let before = sys::upcalls();
    let r = req!(evtchn(&x, EVTCHNOP_SEND, &[port]));
    check!(r == 0, "send({}) returned {}", port, r);
    check!(pending(si, port), "port {} not pending after send", port);
    check!(sys::read_u8(si) == 1, "evtchn_upcall_pending not set");
    check!(
        sys::read_u64(si + 8) & 1 << (port / 64) != 0,
        "pending_sel bit not set"
    );
    check!(
        irr(UPCALL_VECTOR),
        "upcall vector not pending in the LAPIC IRR after send"
    );
    let after = sys::wait_irq();
    check!(
        after == before + 1,
        "upcalls {} -> {} after send",
        before,
        after
    );
    ack(si, port);
    // Masked: the pending bit only.
    let mw = si + 2560 + (port as u64 / 64) * 8;
    sys::write_u64(mw, sys::read_u64(mw) | 1 << (port % 64));
    req!(evtchn(&x, EVTCHNOP_SEND, &[port]));
    check!(pending(si, port), "masked port not pending");
    check!(
        !irr(UPCALL_VECTOR) && sys::upcalls() == after,
        "upcall on a masked port"
    );
    let r = req!(evtchn(&x, EVTCHNOP_UNMASK, &[port]));
    check!(r == 0, "unmask returned {}", r);
    check!(
        irr(UPCALL_VECTOR),
        "unmask of a pending port raised no upcall"
    );
    check!(sys::wait_irq() == after + 1, "unmask's upcall not taken");
    ack(si, port);
    let r = req!(evtchn(&x, EVTCHNOP_STATUS, &[DOMID_SELF, port, 9, 9]));
    check!(
        r == 0 && sys::read_u32(arg() + 8) == 5,
        "status: rc {} status {}",
        r,
        sys::read_u32(arg() + 8)
    );
    let r = req!(evtchn(&x, EVTCHNOP_CLOSE, &[port]));
    check!(r == 0, "close returned {}", r);
    let r = req!(evtchn(&x, EVTCHNOP_CLOSE, &[port]));
    check!(r == EINVAL, "second close returned {}, want -EINVAL", r);
    let r = req!(evtchn(&x, EVTCHNOP_SEND, &[port]));
    check!(
        r == EINVAL,
        "send on a closed port returned {}, want -EINVAL",
        r
    );
    let r = req!(evtchn(&x, EVTCHNOP_SEND, &[5000]));
    check!(
        r == EINVAL,
        "send on port 5000 returned {}, want -EINVAL",
        r
    );
    let r = req!(evtchn(&x, EVTCHNOP_BIND_IPI, &[7, 0]));
    check!(r == ENOENT, "bind_ipi(vCPU 7) returned {}, want -ENOENT", r);
    let r = req!(evtchn(&x, 0x42, &[0]));
    check!(r == ENOSYS, "unknown event_channel_op returned {}", r);
    Outcome::Pass
}

/// VIRQ binding: TIMER and DEBUG per vCPU, a double bind, an unknown VIRQ, a global VIRQ
/// moved with bind_vcpu (and a per-vCPU one refused), status.
pub fn evtchn_virq(_ctx: &mut Ctx) -> Outcome {
    let x = setup!();
    req!(map_shared_info(&x));
    let r = req!(evtchn(&x, EVTCHNOP_BIND_VIRQ, &[VIRQ_TIMER, 0, 0]));
    let timer = sys::read_u32(arg() + 8);
    check!(
        r == 0 && timer != 0,
        "bind_virq(TIMER) returned {} port {}",
        r,
        timer
    );
    let r = req!(evtchn(&x, EVTCHNOP_BIND_VIRQ, &[VIRQ_TIMER, 0, 0]));
    check!(
        r == EEXIST,
        "second bind_virq(TIMER) returned {}, want -EEXIST",
        r
    );
    let r = req!(evtchn(&x, EVTCHNOP_BIND_VIRQ, &[VIRQ_DEBUG, 0, 0]));
    let debug = sys::read_u32(arg() + 8);
    check!(
        r == 0 && debug != timer,
        "bind_virq(DEBUG) returned {} port {}",
        r,
        debug
    );
    let r = req!(evtchn(&x, EVTCHNOP_BIND_VIRQ, &[99, 0, 0]));
    check!(r == EINVAL, "bind_virq(99) returned {}, want -EINVAL", r);
    let r = req!(evtchn(&x, EVTCHNOP_BIND_VIRQ, &[VIRQ_DEBUG, 4, 0]));
    check!(
        r == ENOENT,
        "bind_virq on vCPU 4 returned {}, want -ENOENT",
        r
    );
    let r = req!(evtchn(&x, EVTCHNOP_BIND_VIRQ, &[VIRQ_CONSOLE, 0, 0]));
    let con = sys::read_u32(arg() + 8);
    check!(r == 0, "bind_virq(CONSOLE) returned {}", r);
    let r = req!(evtchn(&x, EVTCHNOP_BIND_VCPU, &[con, 0]));
    check!(r == 0, "bind_vcpu(global VIRQ, 0) returned {}", r);
    let r = req!(evtchn(&x, EVTCHNOP_BIND_VCPU, &[con, 9]));
    check!(
        r == ENOENT,
        "bind_vcpu(vCPU 9) returned {}, want -ENOENT",
        r
    );
    let r = req!(evtchn(&x, EVTCHNOP_BIND_VCPU, &[timer, 0]));
    check!(
        r == EINVAL,
        "bind_vcpu(per-vCPU VIRQ) returned {}, want -EINVAL",
        r
    );
    let r = req!(evtchn(&x, EVTCHNOP_BIND_VCPU, &[4095, 0]));
    check!(
        r == EINVAL,
        "bind_vcpu(unbound port) returned {}, want -EINVAL",
        r
    );
    let r = req!(evtchn(&x, EVTCHNOP_STATUS, &[DOMID_SELF, debug, 0, 0, 0]));
    let (st, v, virq) = (
        sys::read_u32(arg() + 8),
        sys::read_u32(arg() + 12),
        sys::read_u32(arg() + 16),
    );
    check!(
        r == 0 && st == 4 && v == 0 && virq == VIRQ_DEBUG,
        "status(DEBUG): rc {} status {} vcpu {} virq {}",
        r,
        st,
        v,
        virq
    );
    let r = req!(evtchn(&x, EVTCHNOP_SEND, &[timer]));
    check!(
        r == EINVAL,
        "send on a VIRQ port returned {}, want -EINVAL",
        r
    );
    Outcome::Pass
}

/// Single-shot timer: VIRQ_TIMER arrives through the per-vCPU upcall vector after the
/// deadline; -ETIME for a past deadline with VCPU_SSHOTTMR_future; other vCPUs refused.
pub fn timer(_ctx: &mut Ctx) -> Outcome {
    let x = setup!();
    let si = req!(map_shared_info(&x));
    req!(callback_vector(&x));
    // HVMOP_set_evtchn_upcall_vector { u32 vcpu; u8 vector; }
    words(&[0, 5]);
    let r = call!(&x, HVM_OP, [23, arg(), 0, 0, 0]);
    check!(r == EINVAL, "upcall vector 5 returned {}, want -EINVAL", r);
    words(&[3, UPCALL_VECTOR as u32]);
    let r = call!(&x, HVM_OP, [23, arg(), 0, 0, 0]);
    check!(
        r == ENOENT,
        "upcall vector for vCPU 3 returned {}, want -ENOENT",
        r
    );
    words(&[0, UPCALL_VECTOR as u32]);
    let r = call!(&x, HVM_OP, [23, arg(), 0, 0, 0]);
    check!(r == 0, "HVMOP_set_evtchn_upcall_vector returned {}", r);
    let r = req!(evtchn(&x, EVTCHNOP_BIND_VIRQ, &[VIRQ_TIMER, 0, 0]));
    let port = sys::read_u32(arg() + 8);
    check!(r == 0, "bind_virq(TIMER) returned {}", r);
    let r = call!(&x, VCPU_OP, [7, 0, 0, 0, 0]);
    check!(r == 0, "stop_periodic_timer returned {}", r);
    let ti = si + 32;
    let (now, _) = pv_time(ti);
    sys::write_u64(arg(), now.saturating_sub(1_000_000));
    words_at(8, &[1, 0]);
    let r = call!(&x, VCPU_OP, [8, 0, arg(), 0, 0]);
    check!(
        r == ETIME,
        "past deadline with SSHOTTMR_future returned {}, want -ETIME",
        r
    );
    let r = call!(&x, VCPU_OP, [8, 1, arg(), 0, 0]);
    check!(r == ENOENT, "timer on vCPU 1 returned {}, want -ENOENT", r);
    let before = sys::upcalls();
    let (now, _) = pv_time(ti);
    let deadline = now + 3_000_000;
    sys::write_u64(arg(), deadline);
    words_at(8, &[0, 0]);
    let r = call!(&x, VCPU_OP, [8, 0, arg(), 0, 0]);
    check!(r == 0, "set_singleshot_timer returned {}", r);
    let mut got = sys::wait_irq();
    let t0 = sys::rdtsc();
    while got == before && sys::rdtsc().wrapping_sub(t0) < 20_000_000_000 {
        got = sys::wait_irq();
    }
    let (at, _) = pv_time(ti);
    diag!(
        "VIRQ_TIMER upcall {} us after the deadline",
        at.saturating_sub(deadline) / 1000
    );
    check!(got == before + 1, "no timer upcall ({} -> {})", before, got);
    check!(pending(si, port), "VIRQ_TIMER port {} not pending", port);
    check!(
        at >= deadline,
        "timer fired at {} before its deadline {}",
        at,
        deadline
    );
    ack(si, port);
    let r = call!(&x, VCPU_OP, [9, 0, 0, 0, 0]);
    check!(r == 0, "stop_singleshot_timer returned {}", r);
    // set_timer_op in the past fires at once.
    let r = call!(&x, SET_TIMER_OP, [1, 0, 0, 0, 0]);
    check!(
        r == 0 && pending(si, port),
        "set_timer_op(past) returned {} pending {}",
        r,
        pending(si, port)
    );
    Outcome::Pass
}

/// SCHEDOP_poll/block: return at once when a port is pending, errors for bad ports and too
/// many ports; SCHEDOP_shutdown_code accepted.
pub fn sched_block_poll(_ctx: &mut Ctx) -> Outcome {
    let x = setup!();
    let si = req!(map_shared_info(&x));
    let port = req!(bind_ipi(&x));
    req!(evtchn(&x, EVTCHNOP_SEND, &[port]));
    let poll = |ports: &[u32], n: u32, timeout: u64| {
        for (i, p) in ports.iter().enumerate() {
            sys::write_u32(arg() + 256 + 4 * i as u64, *p);
        }
        sys::write_u64(arg(), arg() + 256);
        words_at(8, &[n, 0]);
        sys::write_u64(arg() + 16, timeout);
        hypercall(&x, SCHED_OP, [3, arg(), 0, 0, 0])
    };
    let t0 = sys::rdtsc();
    let r = req!(poll(&[port], 1, 0));
    check!(r == 0, "poll on a pending port returned {}", r);
    diag!("poll on a pending port took {} TSC", sys::rdtsc() - t0);
    let r = req!(poll(&[4096], 1, 0));
    check!(
        r == EINVAL,
        "poll on port 4096 returned {}, want -EINVAL",
        r
    );
    let r = req!(poll(&[port], 129, 0));
    check!(
        r == EINVAL,
        "poll on 129 ports returned {}, want -EINVAL",
        r
    );
    // SCHEDOP_block: an event is pending (upcall_pending set by the send), so it returns.
    check!(sys::read_u8(si) == 1, "upcall_pending not set");
    let r = call!(&x, SCHED_OP, [1, 0, 0, 0, 0]);
    check!(r == 0, "SCHEDOP_block returned {}", r);
    sys::write_u32(arg(), 7);
    let r = call!(&x, SCHED_OP, [5, arg(), 0, 0, 0]);
    check!(r == 0, "SCHEDOP_shutdown_code returned {}", r);
    sys::write_u32(arg(), 2);
    let r = call!(&x, SCHED_OP, [2, arg(), 0, 0, 0]);
    check!(
        r == EINVAL,
        "SCHEDOP_shutdown(suspend) returned {}, want -EINVAL",
        r
    );
    let r = call!(&x, SCHED_OP, [0x66, 0, 0, 0, 0]);
    check!(r == ENOSYS, "unknown sched_op returned {}", r);
    Outcome::Pass
}

/// The HVM parameters Linux reads (no xenstore, no PV console: 0), parameters a guest may
/// not set, pagetable_dying (-EINVAL: hardware-assisted paging), and the -ENOSYS answers (physdev, grant tables, unknown hvm_op).
pub fn hvm_misc(_ctx: &mut Ctx) -> Outcome {
    let x = setup!();
    for (index, name) in [
        (1u32, "STORE_PFN"),
        (2, "STORE_EVTCHN"),
        (17, "CONSOLE_PFN"),
    ] {
        words(&[DOMID_SELF, index]);
        sys::write_u64(arg() + 8, 0x1234);
        let r = call!(&x, HVM_OP, [1, arg(), 0, 0, 0]);
        let v = sys::read_u64(arg() + 8);
        check!(
            r == 0 && v == 0,
            "get_param({}) returned {} value {:#x}",
            name,
            r,
            v
        );
    }
    words(&[DOMID_SELF, 1]);
    sys::write_u64(arg() + 8, 0x99);
    let r = call!(&x, HVM_OP, [0, arg(), 0, 0, 0]);
    check!(
        r == EPERM,
        "set_param(STORE_PFN) returned {}, want -EPERM",
        r
    );
    // struct xen_hvm_pagetable_dying { u16 domid; u64 gpa; }, gpa ~0 as Linux probes it:
    // -EINVAL, as Xen answers a domain on hardware-assisted paging.
    words(&[DOMID_SELF, 0]);
    sys::write_u64(arg() + 8, !0);
    let r = call!(&x, HVM_OP, [9, arg(), 0, 0, 0]);
    check!(
        r == EINVAL,
        "HVMOP_pagetable_dying returned {}, want -EINVAL (HAP)",
        r
    );
    let r = call!(&x, HVM_OP, [0x99, arg(), 0, 0, 0]);
    check!(r == ENOSYS, "unknown hvm_op returned {}", r);
    let r = call!(&x, PHYSDEV_OP, [28, arg(), 0, 0, 0]);
    check!(
        r == ENOSYS,
        "physdev_op(pirq_eoi_gmfn_v2) returned {}, want -ENOSYS",
        r
    );
    let r = call!(&x, GRANT_TABLE_OP, [0, arg(), 1, 0, 0]);
    check!(r == ENOSYS, "grant_table_op returned {}, want -ENOSYS", r);
    Outcome::Pass
}

/// Benchmark: EVTCHNOP_send on an IPI port bound to this vCPU until the upcall handler
/// runs, against a plain hypercall (XENVER_version), in TSC cycles (median of 64).
pub fn evtchn_latency(_ctx: &mut Ctx) -> Outcome {
    let x = setup!();
    let si = req!(map_shared_info(&x));
    req!(callback_vector(&x));
    let port = req!(bind_ipi(&x));
    const N: usize = 64;
    let mut plain = [0u64; N];
    let mut upcall = [0u64; N];
    for i in 0..N {
        let t0 = sys::rdtsc();
        call!(&x, XEN_VERSION, [0, 0, 0, 0, 0]);
        plain[i] = sys::rdtsc() - t0;
        let before = sys::upcalls();
        words(&[port]);
        let t0 = sys::rdtsc();
        let r = call!(&x, EVENT_CHANNEL_OP, [EVTCHNOP_SEND, arg(), 0, 0, 0]);
        let n = sys::wait_irq();
        check!(
            r == 0 && n == before + 1,
            "send {}: rc {} upcalls {} -> {}",
            i,
            r,
            before,
            n
        );
        upcall[i] = sys::upcall_tsc() - t0;
        ack(si, port);
    }
    plain.sort_unstable();
    upcall.sort_unstable();
    let mul = sys::read_u32(si + 32 + 24) as u128;
    let shift = sys::read_u8(si + 32 + 28) as i8;
    let ns = |d: u64| {
        let d = if shift >= 0 { d << shift } else { d >> -shift };
        ((d as u128 * mul) >> 32) as u64
    };
    diag!(
        "bench: plain hypercall median {} TSC ({} ns); send->upcall median {} TSC ({} ns); n={}",
        plain[N / 2],
        ns(plain[N / 2]),
        upcall[N / 2],
        ns(upcall[N / 2]),
        N
    );
    Outcome::Pass
}
