//! Unit tests of the SMP, periodic-timer, loopback, pvclock-refresh and upcall-delivery
//! behaviour (the helpers are in `tests.rs`).
use super::tests::{clock, env0, evt, evtchn_guest, mem, run, Rec, SI};
use super::*;
use crate::layout::memory_map;
use std::sync::Mutex;

#[test]
fn vcpu_up_down() {
    let m = mem();
    let (mut st, _) = evtchn_guest(&m);
    let map = memory_map(4, &[]);
    let env = env0(&m, &map);
    let op = |st: &mut XenState, cmd: u64, v: u64| dispatch(st, &env, 24, [cmd, v, 0, 0, 0]);
    // vCPU 1 waits for INIT/SIPI: down, and VCPUOP_up cannot start it.
    assert_eq!(op(&mut st, VCPUOP_IS_UP, 1).rax, 0);
    assert_eq!(op(&mut st, VCPUOP_UP, 1).rax, EINVAL);
    assert_eq!(op(&mut st, VCPUOP_UP, 2).rax, ENOENT);
    assert_eq!(op(&mut st, VCPUOP_DOWN, 9).rax, ENOENT);
    st.mark_started(1);
    assert_eq!(op(&mut st, VCPUOP_IS_UP, 1).rax, 1);
    // Down another vCPU: no wait for the caller; its thread parks (wait_done false).
    let o = op(&mut st, VCPUOP_DOWN, 1);
    assert_eq!((o.rax, o.wait.is_none(), o.end.is_none()), (0, true, true));
    assert_eq!(op(&mut st, VCPUOP_IS_UP, 1).rax, 0);
    let park = Wait {
        vcpu: 1,
        ports: Vec::new(),
        deadline: None,
        until_up: true,
    };
    assert!(!st.wait_done(&m, &park));
    // The last vCPU up going down ends the VM (Xen: poweroff).
    assert_eq!(op(&mut st, VCPUOP_DOWN, 0).end, Some(XenEnd::Poweroff));
    assert_eq!(op(&mut st, VCPUOP_UP, 1).rax, 0);
    assert!(st.wait_done(&m, &park));
    assert_eq!(op(&mut st, VCPUOP_IS_UP, 1).rax, 1);
    // Down on itself: the caller waits until up.
    let o = op(&mut st, VCPUOP_DOWN, 0);
    assert_eq!(o.rax, 0);
    let w = o.wait.expect("down on itself waits");
    assert!(w.until_up && !st.wait_done(&m, &w));
    assert_eq!(op(&mut st, VCPUOP_UP, 0).rax, 0);
    assert!(st.wait_done(&m, &w));
}

#[test]
fn periodic_timer() {
    let m = mem();
    let (mut st, _) = evtchn_guest(&m);
    let map = memory_map(4, &[]);
    let env = env0(&m, &map);
    let set = |st: &mut XenState, v: u64, period: u64| {
        m.write_obj(period, GuestAddress(0x7800)).unwrap();
        dispatch(st, &env, 24, [VCPUOP_SET_PERIODIC_TIMER, v, 0x7800, 0, 0])
    };
    assert_eq!(set(&mut st, 0, 999_999).rax, EINVAL, "under 1 ms");
    assert_eq!(set(&mut st, 0, 1 << 62).rax, EINVAL, "over STIME_DELTA_MAX");
    assert_eq!(set(&mut st, 2, 10_000_000).rax, ENOENT);
    assert_eq!(
        dispatch(&mut st, &env, 24, [6, 0, 0x4000_0000, 0, 0]).rax,
        EFAULT
    );
    let o = set(&mut st, 1, 4_000_000);
    assert_eq!((o.rax, o.timer_armed), (0, true), "any vCPU of the domain");
    assert_eq!(st.timers.periodic(1), Some((1_000 + 4_000_000, 4_000_000)));
    assert_eq!(st.timers.get(1), None, "the single-shot timer is separate");
    let o = dispatch(&mut st, &env, 24, [VCPUOP_STOP_PERIODIC_TIMER, 1, 0, 0, 0]);
    assert!(o.trace.contains("stopped"), "{}", o.trace);
    assert_eq!(st.timers.periodic(1), None);
}

#[test]
fn loopback_event_channel() {
    let m = mem();
    let (mut st, rec) = evtchn_guest(&m);
    let map = memory_map(4, &[]);
    let env = env0(&m, &map);
    let self_ = DOMID_SELF as u32;
    // alloc_unbound { dom, remote_dom; port }
    let (rc, b) = evt(
        &mut st,
        &env,
        EVTCHNOP_ALLOC_UNBOUND,
        &[self_ | self_ << 16, 0],
    );
    assert_eq!(rc, 0);
    let a = b[1];
    assert_eq!(
        evt(&mut st, &env, EVTCHNOP_ALLOC_UNBOUND, &[self_ | 5 << 16, 0]).0,
        ESRCH
    );
    assert_eq!(
        evt(&mut st, &env, EVTCHNOP_SEND, &[a]).0,
        0,
        "unbound: dropped"
    );
    assert!(rec.0.lock().unwrap().is_empty());
    // bind_interdomain { remote_dom; remote_port; local_port }
    assert_eq!(
        evt(&mut st, &env, EVTCHNOP_BIND_INTERDOMAIN, &[9, a, 0]).0,
        ESRCH
    );
    assert_eq!(
        evt(&mut st, &env, EVTCHNOP_BIND_INTERDOMAIN, &[self_, 4000, 0]).0,
        EINVAL
    );
    let (rc, b) = evt(&mut st, &env, EVTCHNOP_BIND_INTERDOMAIN, &[self_, a, 0]);
    assert_eq!(rc, 0);
    let l = b[2];
    assert_eq!(
        evt(&mut st, &env, EVTCHNOP_BIND_INTERDOMAIN, &[self_, a, 0]).0,
        EINVAL
    );
    // status: interdomain, names the other end
    let (rc, b) = evt(&mut st, &env, EVTCHNOP_STATUS, &[self_, l, 0, 0, 0, 0]);
    assert_eq!((rc, b[2], b[4], b[5]), (0, EVTCHNSTAT_INTERDOMAIN, 0, a));
    // Move the far end to vCPU 1; a send on l sets a pending and upcalls vCPU 1.
    assert_eq!(evt(&mut st, &env, EVTCHNOP_BIND_VCPU, &[a, 1]).0, 0);
    assert_eq!(evt(&mut st, &env, EVTCHNOP_SEND, &[l]).0, 0);
    assert_eq!(*rec.0.lock().unwrap(), vec![(1, 0xf3)]);
    assert_eq!(m.read_obj::<u64>(GuestAddress(SI + 2048)).unwrap(), 1 << a);
    // Closing one end leaves the other unbound.
    assert_eq!(evt(&mut st, &env, EVTCHNOP_CLOSE, &[l]).0, 0);
    let (_, b) = evt(&mut st, &env, EVTCHNOP_STATUS, &[self_, a, 0, 0, 0, 0]);
    assert_eq!(b[2], EVTCHNSTAT_UNBOUND);
}

#[test]
fn pvclock_refresh_is_monotonic_and_versioned() {
    let m = mem();
    let (mut st, _) = evtchn_guest(&m);
    let ti = SI + 32;
    let v0 = m.read_obj::<u32>(GuestAddress(ti)).unwrap();
    assert_eq!(v0 % 2, 0);
    // 1 ms of TSC later (2 GHz), the reference clock 2 ms later: corrected forward.
    let s = refresh_time(
        &mut st,
        &m,
        TscSample {
            tsc: 1_000_000 + 2_000_000,
            ns: 500 + 2_000_000,
            khz: 2_000_000,
        },
    );
    assert_eq!(s.ns, 2_000_500);
    assert_eq!(m.read_obj::<u32>(GuestAddress(ti)).unwrap(), v0 + 2);
    assert_eq!(m.read_obj::<u64>(GuestAddress(ti + 16)).unwrap(), 2_000_500);
    // The reference clock behind what the old line gives at this TSC: no step back.
    let s = refresh_time(
        &mut st,
        &m,
        TscSample {
            tsc: 3_000_000 + 2_000_000,
            ns: 2_000_500 + 900_000,
            khz: 2_000_000,
        },
    );
    assert_eq!(s.ns, 3_000_500, "kept at the old parameters' time");
    assert_eq!(m.read_obj::<u64>(GuestAddress(ti + 8)).unwrap(), 5_000_000);
    assert_eq!(m.read_obj::<u32>(GuestAddress(ti)).unwrap(), v0 + 4);
    // vCPU 1's slot was refreshed too.
    assert_eq!(
        m.read_obj::<u64>(GuestAddress(SI + 64 + 32 + 16)).unwrap(),
        3_000_500
    );
}

#[test]
fn register_marks_events_pending() {
    // Linux's order: shared_info, vcpu_info placement, then the upcall vector.
    let m = mem();
    let map = memory_map(4, &[]);
    let env = Env {
        clock: &clock,
        ..env0(&m, &map)
    };
    let rec = Arc::new(Rec::default());
    let mut st = XenState::new(1);
    st.sink = Some(rec.clone());
    m.write_obj([DOMID_SELF, 0], GuestAddress(0x7000)).unwrap();
    m.write_obj(0u32, GuestAddress(0x7004)).unwrap();
    m.write_obj(0u64, GuestAddress(0x7008)).unwrap();
    m.write_obj(SI >> 12, GuestAddress(0x7010)).unwrap();
    assert_eq!(dispatch(&mut st, &env, 12, [7, 0x7000, 0, 0, 0]).rax, 0);
    m.write_obj(0x30u64, GuestAddress(0x7300)).unwrap();
    m.write_obj([0x40u32, 0], GuestAddress(0x7308)).unwrap();
    assert_eq!(dispatch(&mut st, &env, 24, [10, 0, 0x7300, 0, 0]).rax, 0);
    let vi = 0x30_040;
    assert_eq!(m.read_obj::<u64>(GuestAddress(vi + 8)).unwrap(), u64::MAX);
    assert_eq!(
        m.read_obj::<u8>(GuestAddress(vi)).unwrap(),
        1,
        "events marked pending"
    );
    assert!(rec.0.lock().unwrap().is_empty(), "no vector yet");
    // Naming the vector raises the pending upcall (Xen's hvm_assert_evtchn_irq).
    m.write_obj(0u32, GuestAddress(0x7400)).unwrap();
    m.write_obj(0xf3u8, GuestAddress(0x7404)).unwrap();
    assert_eq!(dispatch(&mut st, &env, 34, [23, 0x7400, 0, 0, 0]).rax, 0);
    assert_eq!(*rec.0.lock().unwrap(), vec![(0, 0xf3)]);
    // The guest handles it (clears the flag and the selector); the next event upcalls.
    m.write_obj(0u8, GuestAddress(vi)).unwrap();
    m.write_obj(0u64, GuestAddress(vi + 8)).unwrap();
    let (rc, b) = evt(&mut st, &env, 1, &[0, 0, 0]);
    assert_eq!(rc, 0);
    st.raise_virq(&m, VIRQ_TIMER, 0);
    assert_eq!(rec.0.lock().unwrap().len(), 2, "port {}", b[2]);
}

/// Refuses injections while `off` (a software-disabled local APIC), records the others.
#[derive(Default)]
struct Apic {
    off: std::sync::atomic::AtomicBool,
    got: Mutex<Vec<(u32, u8)>>,
}
impl Upcall for Apic {
    fn inject(&self, vcpu: u32, vector: u8) -> bool {
        if self.off.load(std::sync::atomic::Ordering::SeqCst) {
            return false;
        }
        self.got.lock().unwrap().push((vcpu, vector));
        true
    }
}

#[test]
fn refused_upcall_is_retried() {
    let m = mem();
    let (mut st, _) = evtchn_guest(&m);
    let apic = Arc::new(Apic::default());
    st.sink = Some(apic.clone());
    let map = memory_map(4, &[]);
    let env = env0(&m, &map);
    let (_, b) = evt(&mut st, &env, 7, &[0, 0]);
    let ipi = b[1];
    let (rc, _) = evt(&mut st, &env, 1, &[0, 0, 0]); // VIRQ_TIMER
    assert_eq!(rc, 0);
    apic.off.store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(evt(&mut st, &env, 4, &[ipi]).0, 0);
    assert!(apic.got.lock().unwrap().is_empty());
    assert!(st.owed[0]);
    // The APIC is enabled; the next event finds upcall_pending and the selector set, and
    // still gets the owed upcall in.
    apic.off.store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(st.raise_virq(&m, VIRQ_TIMER, 0), Some(0xf3));
    assert_eq!(*apic.got.lock().unwrap(), vec![(0, 0xf3)]);
    assert!(!st.owed[0]);
    // Nothing owed: a further event while pending injects nothing more.
    assert_eq!(evt(&mut st, &env, 4, &[ipi]).0, 0);
    assert_eq!(apic.got.lock().unwrap().len(), 1);
    // Owed again, then any hypercall of that vCPU retries it.
    apic.off.store(true, std::sync::atomic::Ordering::SeqCst);
    m.write_obj(0u8, GuestAddress(SI)).unwrap();
    m.write_obj(0u64, GuestAddress(SI + 8)).unwrap();
    m.write_obj(0u64, GuestAddress(SI + 2048)).unwrap();
    assert_eq!(evt(&mut st, &env, 4, &[ipi]).0, 0);
    assert!(st.owed[0]);
    apic.off.store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(run(&m, &mut st, 17, [0; 5]).rax, 0x40010);
    assert_eq!(apic.got.lock().unwrap().len(), 2);
}

#[test]
fn privileged_version_queries() {
    let m = mem();
    let mut st = XenState::default();
    assert_eq!(
        run(&m, &mut st, 17, [XENVER_COMMANDLINE, 0x9000, 0, 0, 0]).rax,
        EPERM
    );
    assert_eq!(
        run(&m, &mut st, 17, [XENVER_BUILD_ID, 0x9000, 0, 0, 0]).rax,
        EPERM
    );
}
