//! The Xen calls beyond a single vCPU's basics: VCPUOP_up/down/is_up on a second vCPU,
//! the periodic timer, loopback event channels (EVTCHNOP_alloc_unbound +
//! bind_interdomain to DOMID_SELF), the pvclock refresh, and the physdev / privileged
//! version answers an unprivileged HVM domain gets. Positive and negative each.
use super::xen::{hypercall, setup};
use super::xen_pvhvm::{
    ack, arg, callback_vector, evtchn, map_shared_info, pending, pv_time, words_at,
};
use crate::boot::{ap_tramp_end, ap_tramp_start, AP_ENTRY, AP_TRAMPOLINE};
use crate::ktap::Outcome;
use crate::sys;
use crate::{check, diag, Ctx};

const XEN_VERSION: u64 = 17;
const VCPU_OP: u64 = 24;
const PHYSDEV_OP: u64 = 33;

const VCPUOP_UP: u64 = 1;
const VCPUOP_DOWN: u64 = 2;
const VCPUOP_IS_UP: u64 = 3;
const VCPUOP_SET_PERIODIC_TIMER: u64 = 6;
const VCPUOP_STOP_PERIODIC_TIMER: u64 = 7;
const VCPUOP_SET_SINGLESHOT_TIMER: u64 = 8;
const VCPUOP_STOP_SINGLESHOT_TIMER: u64 = 9;

const EVTCHNOP_BIND_INTERDOMAIN: u64 = 0;
const EVTCHNOP_BIND_VIRQ: u64 = 1;
const EVTCHNOP_CLOSE: u64 = 3;
const EVTCHNOP_SEND: u64 = 4;
const EVTCHNOP_STATUS: u64 = 5;
const EVTCHNOP_ALLOC_UNBOUND: u64 = 6;
const EVTCHNSTAT_UNBOUND: u32 = 1;
const EVTCHNSTAT_INTERDOMAIN: u32 = 2;
const VIRQ_TIMER: u32 = 0;

const EPERM: i64 = -1;
const ENOENT: i64 = -2;
const ESRCH: i64 = -3;
const EINVAL: i64 = -22;
const ENOSYS: i64 = -38;
const DOMID_SELF: u32 = 0x7ff0;

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

/// Spins (ring 3, interrupts off) for `ns` of pvclock time read from `ti`, bounded by TSC.
fn spin_ns(ti: u64, ns: u64) {
    let (t0, _) = pv_time(ti);
    let c0 = sys::rdtsc();
    while pv_time(ti).0 < t0 + ns && sys::rdtsc().wrapping_sub(c0) < 40_000_000_000 {
        core::hint::spin_loop();
    }
}

/// EVTCHNOP_alloc_unbound + bind_interdomain to our own domain: a loopback pair. A send on
/// one end sets the other pending and raises the upcall; an unbound port drops the event;
/// closing one end leaves the other unbound. Negatives: another domain (-ESRCH), a closed
/// or already bound remote port (-EINVAL).
pub fn evtchn_loopback(_ctx: &mut Ctx) -> Outcome {
    let x = setup!();
    let si = req!(map_shared_info(&x));
    req!(callback_vector(&x));
    // struct evtchn_alloc_unbound { domid_t dom, remote_dom; evtchn_port_t port; }
    let r = req!(evtchn(
        &x,
        EVTCHNOP_ALLOC_UNBOUND,
        &[DOMID_SELF | DOMID_SELF << 16, 0]
    ));
    let a = sys::read_u32(arg() + 4);
    check!(r == 0 && a != 0, "alloc_unbound returned {} port {}", r, a);
    let r = req!(evtchn(
        &x,
        EVTCHNOP_ALLOC_UNBOUND,
        &[DOMID_SELF | 5 << 16, 0]
    ));
    check!(
        r == ESRCH,
        "alloc_unbound for domain 5 returned {}, want -ESRCH",
        r
    );
    let r = req!(evtchn(&x, EVTCHNOP_STATUS, &[DOMID_SELF, a, 9, 9, 9, 9]));
    let st = sys::read_u32(arg() + 8);
    check!(
        r == 0 && st == EVTCHNSTAT_UNBOUND,
        "status(unbound): rc {} status {}",
        r,
        st
    );
    let before = sys::upcalls();
    let r = req!(evtchn(&x, EVTCHNOP_SEND, &[a]));
    check!(
        r == 0 && !pending(si, a) && sys::upcalls() == before,
        "send on an unbound port: rc {} pending {}",
        r,
        pending(si, a)
    );
    // struct evtchn_bind_interdomain { domid_t remote_dom; port remote_port, local_port; }
    let r = req!(evtchn(
        &x,
        EVTCHNOP_BIND_INTERDOMAIN,
        &[DOMID_SELF, 4000, 0]
    ));
    check!(
        r == EINVAL,
        "bind_interdomain to a closed port returned {}, want -EINVAL",
        r
    );
    let r = req!(evtchn(&x, EVTCHNOP_BIND_INTERDOMAIN, &[9, a, 0]));
    check!(
        r == ESRCH,
        "bind_interdomain to domain 9 returned {}, want -ESRCH",
        r
    );
    let r = req!(evtchn(&x, EVTCHNOP_BIND_INTERDOMAIN, &[DOMID_SELF, a, 0]));
    let l = sys::read_u32(arg() + 8);
    check!(
        r == 0 && l != a,
        "bind_interdomain returned {} port {}",
        r,
        l
    );
    let r = req!(evtchn(&x, EVTCHNOP_BIND_INTERDOMAIN, &[DOMID_SELF, a, 0]));
    check!(
        r == EINVAL,
        "second bind_interdomain returned {}, want -EINVAL",
        r
    );
    let r = req!(evtchn(&x, EVTCHNOP_STATUS, &[DOMID_SELF, l, 0, 0, 0, 0]));
    let (st, peer) = (sys::read_u32(arg() + 8), sys::read_u32(arg() + 20));
    check!(
        r == 0 && st == EVTCHNSTAT_INTERDOMAIN && peer == a,
        "status(interdomain): rc {} status {} peer {}",
        r,
        st,
        peer
    );
    for (from, to) in [(l, a), (a, l)] {
        let before = sys::upcalls();
        let r = req!(evtchn(&x, EVTCHNOP_SEND, &[from]));
        check!(r == 0, "send({}) returned {}", from, r);
        check!(
            pending(si, to),
            "send on {} left port {} not pending",
            from,
            to
        );
        let after = sys::wait_irq();
        check!(
            after == before + 1,
            "send on {}: upcalls {} -> {}",
            from,
            before,
            after
        );
        ack(si, to);
    }
    let r = req!(evtchn(&x, EVTCHNOP_CLOSE, &[l]));
    check!(r == 0, "close({}) returned {}", l, r);
    let r = req!(evtchn(&x, EVTCHNOP_STATUS, &[DOMID_SELF, a, 0, 0, 0, 0]));
    let st = sys::read_u32(arg() + 8);
    check!(
        r == 0 && st == EVTCHNSTAT_UNBOUND,
        "after close the peer's status is {}",
        st
    );
    let r = req!(evtchn(&x, EVTCHNOP_SEND, &[l]));
    check!(
        r == EINVAL,
        "send on the closed end returned {}, want -EINVAL",
        r
    );
    Outcome::Pass
}

/// VCPUOP_set_periodic_timer: VIRQ_TIMER every period until VCPUOP_stop_periodic_timer.
/// Negatives: a period under 1 ms (-EINVAL), a vCPU that does not exist (-ENOENT).
pub fn periodic_timer(_ctx: &mut Ctx) -> Outcome {
    let x = setup!();
    let si = req!(map_shared_info(&x));
    let ti = si + 32;
    req!(callback_vector(&x));
    let r = req!(evtchn(&x, EVTCHNOP_BIND_VIRQ, &[VIRQ_TIMER, 0, 0]));
    let port = sys::read_u32(arg() + 8);
    check!(r == 0, "bind_virq(TIMER) returned {}", r);
    let period = |p: u64, v: u64| {
        sys::write_u64(arg() + 64, p);
        hypercall(
            &x,
            VCPU_OP,
            [VCPUOP_SET_PERIODIC_TIMER, v, arg() + 64, 0, 0],
        )
    };
    let r = req!(period(999_999, 0));
    check!(r == EINVAL, "period 999999 ns returned {}, want -EINVAL", r);
    let r = req!(period(10_000_000, 5));
    check!(
        r == ENOENT,
        "periodic timer on vCPU 5 returned {}, want -ENOENT",
        r
    );
    let before = sys::upcalls();
    let (t0, _) = pv_time(ti);
    let r = req!(period(4_000_000, 0));
    check!(r == 0, "set_periodic_timer(4 ms) returned {}", r);
    // Three VIRQ_TIMERs from one set call: it re-arms itself (a single-shot timer fires
    // once). Up to 2 s: the VMM's timer thread shares a loaded host.
    let c0 = sys::rdtsc();
    while sys::upcalls() - before < 3
        && pv_time(ti).0 < t0 + 2_000_000_000
        && sys::rdtsc().wrapping_sub(c0) < 40_000_000_000
    {
        sys::wait_irq();
        ack(si, port);
    }
    let ticks = sys::upcalls() - before;
    let (t1, _) = pv_time(ti);
    diag!(
        "periodic 4 ms: {} VIRQ_TIMER upcalls in {} us of pvclock time",
        ticks,
        (t1 - t0) / 1000
    );
    check!(
        ticks >= 3,
        "only {} periodic upcalls in 2 s (4 ms period)",
        ticks
    );
    check!(
        t1 >= t0 + 8_000_000,
        "3 upcalls of a 4 ms periodic timer after {} us",
        (t1 - t0) / 1000
    );
    let r = call!(&x, VCPU_OP, [VCPUOP_STOP_PERIODIC_TIMER, 0, 0, 0, 0]);
    check!(r == 0, "stop_periodic_timer returned {}", r);
    ack(si, port);
    spin_ns(ti, 20_000_000);
    check!(
        !pending(si, port),
        "VIRQ_TIMER pending 20 ms after stop_periodic_timer"
    );
    Outcome::Pass
}

/// The pvclock is refreshed when the guest arms a timer (as Xen refreshes it when it
/// schedules a vCPU): the version moves on by an even step, and time does not go back.
pub fn pvclock_refresh(_ctx: &mut Ctx) -> Outcome {
    let x = setup!();
    let si = req!(map_shared_info(&x));
    let ti = si + 32;
    let v1 = sys::read_u32(ti);
    let (t1, _) = pv_time(ti);
    check!(
        v1.is_multiple_of(2),
        "time info version {} is odd at rest",
        v1
    );
    sys::write_u64(arg(), t1 + 1_000_000_000);
    words_at(8, &[0, 0]);
    let r = call!(&x, VCPU_OP, [VCPUOP_SET_SINGLESHOT_TIMER, 0, arg(), 0, 0]);
    check!(r == 0, "set_singleshot_timer returned {}", r);
    let v2 = sys::read_u32(ti);
    let (t2, _) = pv_time(ti);
    diag!(
        "time info version {} -> {}, system time {} -> {} ns",
        v1,
        v2,
        t1,
        t2
    );
    check!(
        v2.is_multiple_of(2) && v2 >= v1 + 2,
        "time info not refreshed: version {} -> {}",
        v1,
        v2
    );
    check!(
        t2 >= t1,
        "pvclock went back across the refresh: {} -> {}",
        t1,
        t2
    );
    let r = call!(&x, VCPU_OP, [VCPUOP_STOP_SINGLESHOT_TIMER, 0, 0, 0, 0]);
    check!(r == 0, "stop_singleshot_timer returned {}", r);
    Outcome::Pass
}

/// physdev_op: every sub-op a HVM guest might issue is -ENOSYS (no PIRQ emulation, not
/// the hardware domain), as Xen answers; XENVER_commandline and build_id are -EPERM for an
/// unprivileged domain.
pub fn physdev_privileged(_ctx: &mut Ctx) -> Outcome {
    let x = setup!();
    for (cmd, name) in [
        (12u64, "eoi"),
        (5, "irq_status_query"),
        (13, "map_pirq"),
        (23, "get_free_pirq"),
        (25, "pci_device_add"),
        (28, "pirq_eoi_gmfn_v2"),
    ] {
        let r = call!(&x, PHYSDEV_OP, [cmd, arg(), 0, 0, 0]);
        check!(
            r == ENOSYS,
            "physdev_op({}) returned {}, want -ENOSYS",
            name,
            r
        );
    }
    for (cmd, name) in [(9u64, "commandline"), (10, "build_id")] {
        let r = call!(&x, XEN_VERSION, [cmd, arg(), 0, 0, 0]);
        check!(r == EPERM, "XENVER_{} returned {}, want -EPERM", name, r);
    }
    Outcome::Pass
}

/// Counts the AP's loop turns ([`xen_ap_entry`]).
#[no_mangle]
static mut XEN_AP_COUNT: u64 = 0;

core::arch::global_asm!(
    ".text",
    ".global xen_ap_entry",
    // Ring 0 on the AP: count, and leave to the VMM (port 0x80, unclaimed) each turn, so a
    // VCPUOP_down takes it at once.
    "xen_ap_entry:",
    "lock inc qword ptr [rip + XEN_AP_COUNT]",
    "out 0x80, al",
    "pause",
    "jmp xen_ap_entry",
);
extern "C" {
    fn xen_ap_entry();
}

fn ap_count() -> u64 {
    // SAFETY: a counter the AP increments; volatile read.
    unsafe { core::ptr::read_volatile(&raw const XEN_AP_COUNT) }
}

/// VCPUOP_is_up/up/down with a second vCPU: down before INIT/SIPI (and up cannot start
/// it: -EINVAL), up once started; down stops it (its counter stands still), up resumes it.
/// Negatives: vCPUs that do not exist (-ENOENT).
pub fn vcpu_up_down(ctx: &mut Ctx) -> Outcome {
    let vcpus: u64 = ctx
        .cmdline
        .get("vcpus")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    if vcpus < 2 {
        return Outcome::Skip(crate::msg!("single vCPU (vcpus={})", vcpus));
    }
    let x = setup!();
    let si = req!(map_shared_info(&x));
    let ti = si + 32;
    let op = |cmd: u64, v: u64| hypercall(&x, VCPU_OP, [cmd, v, 0, 0, 0]);
    let r = req!(op(VCPUOP_IS_UP, 0));
    check!(r == 1, "is_up(0) returned {}", r);
    let r = req!(op(VCPUOP_IS_UP, 1));
    check!(r == 0, "is_up(1) before INIT/SIPI returned {}, want 0", r);
    let r = req!(op(VCPUOP_UP, 1));
    check!(
        r == EINVAL,
        "up(1) before INIT/SIPI returned {}, want -EINVAL",
        r
    );
    let r = req!(op(VCPUOP_IS_UP, vcpus));
    check!(r == ENOENT, "is_up({}) returned {}, want -ENOENT", vcpus, r);
    let r = req!(op(VCPUOP_DOWN, 9));
    check!(r == ENOENT, "down(9) returned {}, want -ENOENT", r);
    // Start vCPU 1 (INIT-SIPI-SIPI to all but self) into xen_ap_entry.
    // SAFETY: written before the APs are started; they read it once.
    unsafe { core::ptr::write_volatile(&raw mut AP_ENTRY, xen_ap_entry as *const () as u64) };
    let (start, end) = (
        &raw const ap_tramp_start as u64,
        &raw const ap_tramp_end as u64,
    );
    for i in 0..end - start {
        sys::write_bytes(AP_TRAMPOLINE + i, &[sys::read_u8(start + i)]);
    }
    const LAPIC: u64 = 0xfee0_0000;
    let svr = sys::read_u32(LAPIC + 0xf0);
    sys::write_u32(LAPIC + 0xf0, svr | 0x1ff);
    let icr = |low: u32| sys::write_u32(LAPIC + 0x300, (0b11 << 18) | low);
    icr(0x0000_4500);
    spin_ns(ti, 10_000_000);
    for _ in 0..2 {
        if ap_count() > 0 {
            break;
        }
        icr(0x0000_4600 | (AP_TRAMPOLINE >> 12) as u32);
        spin_ns(ti, 200_000_000);
    }
    let wait_until = |f: &dyn Fn() -> bool, ns: u64| {
        let (t0, _) = pv_time(ti);
        while !f() && pv_time(ti).0 < t0 + ns {
            core::hint::spin_loop();
        }
        f()
    };
    check!(
        wait_until(&|| ap_count() > 0, 5_000_000_000),
        "vCPU 1 did not start"
    );
    // is_up follows KVM_GET_MP_STATE as the AP's thread reads it (at its next exit).
    let up = wait_until(
        &|| matches!(hypercall(&x, VCPU_OP, [VCPUOP_IS_UP, 1, 0, 0, 0]), Ok(1)),
        1_000_000_000,
    );
    check!(up, "is_up(1) still 0 after vCPU 1 started");
    let r = req!(op(VCPUOP_DOWN, 1));
    check!(r == 0, "down(1) returned {}", r);
    let r = req!(op(VCPUOP_IS_UP, 1));
    check!(r == 0, "is_up(1) after down returned {}", r);
    spin_ns(ti, 20_000_000);
    let c1 = ap_count();
    spin_ns(ti, 50_000_000);
    let c2 = ap_count();
    diag!("vCPU 1 down: its counter {} -> {} over 50 ms", c1, c2);
    check!(c1 == c2, "vCPU 1 still runs while down: {} -> {}", c1, c2);
    let r = req!(op(VCPUOP_UP, 1));
    check!(r == 0, "up(1) returned {}", r);
    check!(
        wait_until(&|| ap_count() > c2, 1_000_000_000),
        "vCPU 1 did not run again after up"
    );
    let r = req!(op(VCPUOP_IS_UP, 1));
    check!(r == 1, "is_up(1) after up returned {}", r);
    Outcome::Pass
}
