use super::*;
use crate::layout::memory_map;
use std::sync::Mutex;

pub(super) fn mem() -> GuestMemoryMmap {
    GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x40_0000)]).unwrap()
}

pub(super) fn no_clock() -> Option<TscSample> {
    None
}

pub(super) fn run(m: &GuestMemoryMmap, st: &mut XenState, nr: u32, a: [u64; 5]) -> Outcome {
    let map = memory_map(4, &[]);
    let env = Env {
        mem: m,
        paging: PagingMode::default(),
        memory_map: &map,
        vcpu: 0,
        now_ns: 1_000,
        clock: &no_clock,
        boot_unix_ns: 0,
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
        vcpu: 0,
        now_ns: 1_000,
        clock: &no_clock,
        boot_unix_ns: 0,
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
    // Submap 0: exactly the features implemented; submap 1 and up do not exist.
    m.write_obj(0xffff_ffff_0000_0000u64, GuestAddress(0x6000))
        .unwrap();
    assert_eq!(run(&m, &mut st, 17, [6, 0x6000, 0, 0, 0]).rax, 0);
    assert_eq!(
        m.read_obj::<u32>(GuestAddress(0x6004)).unwrap(),
        (1 << 2) | (1 << 8) | (1 << 9)
    );
    m.write_obj(0xffff_ffff_ffff_ffffu64, GuestAddress(0x6000))
        .unwrap();
    assert_eq!(run(&m, &mut st, 17, [6, 0x6000, 0, 0, 0]).rax, EINVAL);
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
    assert_eq!(run(&m, &mut st, 34, [0, 0x7300, 0, 0, 0]).rax, EPERM);
    m.write_obj(2u32, GuestAddress(0x7304)).unwrap();
    assert_eq!(run(&m, &mut st, 34, [0, 0x7300, 0, 0, 0]).rax, 0);
    m.write_obj(0u64, GuestAddress(0x7308)).unwrap();
    assert_eq!(run(&m, &mut st, 34, [1, 0x7300, 0, 0, 0]).rax, 0);
    assert_eq!(m.read_obj::<u64>(GuestAddress(0x7308)).unwrap(), 0xabc);
    m.write_obj(500u32, GuestAddress(0x7304)).unwrap();
    assert_eq!(run(&m, &mut st, 34, [1, 0x7300, 0, 0, 0]).rax, EINVAL);
    assert_eq!(run(&m, &mut st, 1, [0; 5]).rax, ENOSYS);
    assert_eq!(run(&m, &mut st, 12, [99, 0, 0, 0, 0]).rax, ENOSYS);
}

/// Records injected upcalls.
#[derive(Default)]
pub(super) struct Rec(pub(super) Mutex<Vec<(u32, u8)>>);
impl Upcall for Rec {
    fn inject(&self, vcpu: u32, vector: u8) -> bool {
        self.0.lock().unwrap().push((vcpu, vector));
        true
    }
}

pub(super) const SI: u64 = 0x20_000;

pub(super) fn clock() -> Option<TscSample> {
    Some(TscSample {
        tsc: 1_000_000,
        ns: 500,
        khz: 2_000_000,
    })
}

/// A 2-vCPU guest with shared_info mapped at SI and callback vector 0xf3.
pub(super) fn evtchn_guest(m: &GuestMemoryMmap) -> (XenState, Arc<Rec>) {
    let rec = Arc::new(Rec::default());
    let mut st = XenState::new(2);
    st.sink = Some(rec.clone());
    let map = memory_map(4, &[]);
    let env = Env {
        clock: &clock,
        ..env0(m, &map)
    };
    // struct xen_add_to_physmap { domid, size, space, idx, gpfn }
    m.write_obj([DOMID_SELF, 0], GuestAddress(0x7000)).unwrap();
    m.write_obj(0u32, GuestAddress(0x7004)).unwrap();
    m.write_obj(0u64, GuestAddress(0x7008)).unwrap();
    m.write_obj(SI >> 12, GuestAddress(0x7010)).unwrap();
    assert_eq!(dispatch(&mut st, &env, 12, [7, 0x7000, 0, 0, 0]).rax, 0);
    m.write_obj([DOMID_SELF, 0], GuestAddress(0x7100)).unwrap();
    m.write_obj(0u32, GuestAddress(0x7104)).unwrap();
    m.write_obj((2u64 << 56) | 0xf3, GuestAddress(0x7108))
        .unwrap();
    assert_eq!(dispatch(&mut st, &env, 34, [0, 0x7100, 0, 0, 0]).rax, 0);
    (st, rec)
}

pub(super) fn env0<'a>(m: &'a GuestMemoryMmap, map: &'a [MemEntry]) -> Env<'a> {
    Env {
        mem: m,
        paging: PagingMode::default(),
        memory_map: map,
        vcpu: 0,
        now_ns: 1_000,
        clock: &no_clock,
        boot_unix_ns: 1_700_000_000_123_456_789,
    }
}

pub(super) fn evt(st: &mut XenState, env: &Env<'_>, cmd: u64, words: &[u32]) -> (i64, Vec<u32>) {
    for (i, w) in words.iter().enumerate() {
        env.mem
            .write_obj(*w, GuestAddress(0x7200 + 4 * i as u64))
            .unwrap();
    }
    let rc = dispatch(st, env, 32, [cmd, 0x7200, 0, 0, 0]).rax;
    let back = (0..6)
        .map(|i| env.mem.read_obj(GuestAddress(0x7200 + 4 * i)).unwrap())
        .collect();
    (rc, back)
}

#[test]
fn shared_info_and_time() {
    let m = mem();
    let (st, _) = evtchn_guest(&m);
    assert_eq!(st.shared_info, Some(SI));
    // Wall clock: even version, seconds of boot_unix_ns.
    assert_eq!(m.read_obj::<u32>(GuestAddress(SI + 3072)).unwrap(), 2);
    assert_eq!(
        m.read_obj::<u32>(GuestAddress(SI + 3076)).unwrap(),
        1_700_000_000
    );
    assert_eq!(
        m.read_obj::<u32>(GuestAddress(SI + 3080)).unwrap(),
        123_456_789
    );
    // vCPU 1's time info in its legacy slot.
    let ti = SI + 64 + 32;
    assert_eq!(m.read_obj::<u32>(GuestAddress(ti)).unwrap() % 2, 0);
    assert_eq!(m.read_obj::<u64>(GuestAddress(ti + 8)).unwrap(), 1_000_000);
    assert_eq!(m.read_obj::<u64>(GuestAddress(ti + 16)).unwrap(), 500);
    let (mul, shift) = shinfo::time_scale(2_000_000);
    assert_eq!(m.read_obj::<u32>(GuestAddress(ti + 24)).unwrap(), mul);
    assert_eq!(
        m.read_obj::<u8>(GuestAddress(ti + 28)).unwrap() as i8,
        shift
    );
    // Grant-table frames and frames outside RAM are refused.
    let map = memory_map(4, &[]);
    let env = env0(&m, &map);
    let mut st = XenState::default();
    m.write_obj(1u32, GuestAddress(0x7004)).unwrap();
    assert_eq!(
        dispatch(&mut st, &env, 12, [7, 0x7000, 0, 0, 0]).rax,
        EINVAL
    );
    m.write_obj(0u32, GuestAddress(0x7004)).unwrap();
    m.write_obj(0x10_0000u64, GuestAddress(0x7010)).unwrap();
    assert_eq!(
        dispatch(&mut st, &env, 12, [7, 0x7000, 0, 0, 0]).rax,
        EINVAL
    );
    assert_eq!(st.shared_info, None);
}

#[test]
fn register_vcpu_info_rules() {
    let m = mem();
    let (mut st, _) = evtchn_guest(&m);
    let map = memory_map(4, &[]);
    let env = Env {
        clock: &clock,
        ..env0(&m, &map)
    };
    let reg = |st: &mut XenState, vcpu: u64, mfn: u64, off: u32| {
        m.write_obj(mfn, GuestAddress(0x7300)).unwrap();
        m.write_obj([off, 0], GuestAddress(0x7308)).unwrap();
        dispatch(st, &env, 24, [10, vcpu, 0x7300, 0, 0]).rax
    };
    assert_eq!(reg(&mut st, 0, 0x30, 0xfc0 + 8), EINVAL, "crosses a page");
    assert_eq!(reg(&mut st, 0, 0x10_0000, 0), EINVAL, "outside RAM");
    assert_eq!(reg(&mut st, 5, 0x30, 0), ENOENT, "no such vCPU");
    assert_eq!(reg(&mut st, 1, 0x30, 0x40), 0);
    assert_eq!(reg(&mut st, 1, 0x31, 0), EINVAL, "registered twice");
    assert_eq!(st.vcpu_info_gpa(1), Some(0x30_040));
    assert_eq!(st.vcpu_info_gpa(0), Some(SI));
    assert_eq!(
        m.read_obj::<u64>(GuestAddress(0x30_040 + 32 + 8)).unwrap(),
        1_000_000
    );
    // is_up (vCPU 1 has not left INIT/SIPI), unknown vcpu op
    assert_eq!(dispatch(&mut st, &env, 24, [3, 0, 0, 0, 0]).rax, 1);
    assert_eq!(dispatch(&mut st, &env, 24, [3, 1, 0, 0, 0]).rax, 0);
    assert_eq!(dispatch(&mut st, &env, 24, [3, 2, 0, 0, 0]).rax, ENOENT);
    assert_eq!(dispatch(&mut st, &env, 24, [77, 0, 0, 0, 0]).rax, ENOSYS);
    assert_eq!(dispatch(&mut st, &env, 24, [7, 0, 0, 0, 0]).rax, 0);
}

#[test]
fn event_channels_deliver() {
    let m = mem();
    let (mut st, rec) = evtchn_guest(&m);
    let map = memory_map(4, &[]);
    let env = env0(&m, &map);
    // init_control: no FIFO ABI.
    assert_eq!(evt(&mut st, &env, 11, &[0]).0, ENOSYS);
    let (rc, b) = evt(&mut st, &env, 7, &[0, 0]); // bind_ipi vcpu 0
    assert_eq!(rc, 0);
    let ipi = b[1];
    assert_eq!(ipi, 1);
    assert_eq!(evt(&mut st, &env, 4, &[ipi]).0, 0); // send
    assert_eq!(*rec.0.lock().unwrap(), vec![(0, 0xf3)]);
    assert_eq!(m.read_obj::<u8>(GuestAddress(SI)).unwrap(), 1);
    assert_eq!(m.read_obj::<u64>(GuestAddress(SI + 8)).unwrap(), 1);
    assert_eq!(
        m.read_obj::<u64>(GuestAddress(SI + 2048)).unwrap(),
        1 << ipi
    );
    // Again while pending: no second upcall.
    assert_eq!(evt(&mut st, &env, 4, &[ipi]).0, 0);
    assert_eq!(rec.0.lock().unwrap().len(), 1);
    // Guest acks, masks the port; a send only sets the pending bit; unmask delivers.
    m.write_obj(0u8, GuestAddress(SI)).unwrap();
    m.write_obj(0u64, GuestAddress(SI + 8)).unwrap();
    m.write_obj(0u64, GuestAddress(SI + 2048)).unwrap();
    m.write_obj(1u64 << ipi, GuestAddress(SI + 2560)).unwrap();
    assert_eq!(evt(&mut st, &env, 4, &[ipi]).0, 0);
    assert_eq!(rec.0.lock().unwrap().len(), 1);
    assert_eq!(evt(&mut st, &env, 9, &[ipi]).0, 0); // unmask
    assert_eq!(rec.0.lock().unwrap().len(), 2);
    assert_eq!(m.read_obj::<u64>(GuestAddress(SI + 2560)).unwrap(), 0);
    // Negatives: bad port, unbound (closed) port, VIRQ port, double bind, bad vCPU.
    assert_eq!(evt(&mut st, &env, 4, &[5000]).0, EINVAL);
    assert_eq!(evt(&mut st, &env, 4, &[9]).0, EINVAL);
    let (rc, b) = evt(&mut st, &env, 1, &[0, 1, 0]); // bind_virq TIMER vcpu 1
    assert_eq!(rc, 0);
    let timer1 = b[2];
    assert_eq!(evt(&mut st, &env, 1, &[0, 1, 0]).0, EEXIST);
    assert_eq!(evt(&mut st, &env, 1, &[1, 7, 0]).0, ENOENT);
    assert_eq!(evt(&mut st, &env, 4, &[timer1]).0, EINVAL);
    // status
    let (rc, b) = evt(&mut st, &env, 5, &[DOMID_SELF as u32, timer1, 0, 0, 0]);
    assert_eq!((rc, b[2], b[3], b[4]), (0, EVTCHNSTAT_VIRQ, 1, VIRQ_TIMER));
    assert_eq!(evt(&mut st, &env, 5, &[DOMID_SELF as u32, 4096]).0, EINVAL);
    // close, then the port is closed
    assert_eq!(evt(&mut st, &env, 3, &[timer1]).0, 0);
    assert_eq!(evt(&mut st, &env, 3, &[timer1]).0, EINVAL);
    let (_, b) = evt(&mut st, &env, 5, &[DOMID_SELF as u32, timer1]);
    assert_eq!(b[2], EVTCHNSTAT_CLOSED);
    // Per-vCPU upcall vector wins over the callback parameter.
    m.write_obj(1u32, GuestAddress(0x7400)).unwrap();
    m.write_obj(0x40u8, GuestAddress(0x7404)).unwrap();
    assert_eq!(dispatch(&mut st, &env, 34, [23, 0x7400, 0, 0, 0]).rax, 0);
    assert_eq!(st.upcall_vector(1), Some(0x40));
    m.write_obj(0x05u8, GuestAddress(0x7404)).unwrap();
    assert_eq!(
        dispatch(&mut st, &env, 34, [23, 0x7400, 0, 0, 0]).rax,
        EINVAL
    );
}

#[test]
fn timers_and_polls() {
    let m = mem();
    let (mut st, rec) = evtchn_guest(&m);
    let map = memory_map(4, &[]);
    let env = env0(&m, &map);
    let (rc, b) = evt(&mut st, &env, 1, &[0, 0, 0]); // VIRQ_TIMER on vCPU 0
    assert_eq!(rc, 0);
    let port = b[2];
    let sshot = |st: &mut XenState, vcpu: u64, t: u64, flags: u32| {
        m.write_obj(t, GuestAddress(0x7500)).unwrap();
        m.write_obj([flags, 0], GuestAddress(0x7508)).unwrap();
        dispatch(st, &env, 24, [8, vcpu, 0x7500, 0, 0])
    };
    // In the past with VCPU_SSHOTTMR_future: -ETIME; without: fires now.
    assert_eq!(sshot(&mut st, 0, 10, 1).rax, ETIME);
    assert!(rec.0.lock().unwrap().is_empty());
    let o = sshot(&mut st, 0, 10, 0);
    assert_eq!((o.rax, o.timer_armed), (0, false));
    assert_eq!(rec.0.lock().unwrap().len(), 1);
    // Another vCPU's timer: -EINVAL (Xen: only the caller's).
    assert_eq!(sshot(&mut st, 1, 5_000, 0).rax, EINVAL);
    let o = sshot(&mut st, 0, 5_000, 0);
    assert_eq!((o.rax, o.timer_armed), (0, true));
    assert_eq!(st.timers.get(0), Some(5_000));
    assert_eq!(dispatch(&mut st, &env, 24, [9, 0, 0, 0, 0]).rax, 0);
    assert_eq!(st.timers.get(0), None);
    // Poll: the port is pending, so the wait is already over.
    m.write_obj(port, GuestAddress(0x7600)).unwrap();
    m.write_obj(0x7600u64, GuestAddress(0x7610)).unwrap();
    m.write_obj([1u32, 0], GuestAddress(0x7618)).unwrap();
    m.write_obj(0u64, GuestAddress(0x7620)).unwrap();
    let o = dispatch(&mut st, &env, 29, [3, 0x7610, 0, 0, 0]);
    let w = o.wait.expect("poll waits");
    assert!(st.wait_done(&m, &w));
    m.write_obj(0u64, GuestAddress(SI + 2048)).unwrap();
    assert!(!st.wait_done(&m, &w));
    m.write_obj(4096u32, GuestAddress(0x7600)).unwrap();
    assert_eq!(
        dispatch(&mut st, &env, 29, [3, 0x7610, 0, 0, 0]).rax,
        EINVAL
    );
    // physdev: no PIRQs; pagetable_dying: -EINVAL as Xen on HAP, -ESRCH for another domain.
    assert_eq!(dispatch(&mut st, &env, 33, [28, 0, 0, 0, 0]).rax, ENOSYS);
    m.write_obj(DOMID_SELF, GuestAddress(0x7700)).unwrap();
    assert_eq!(
        dispatch(&mut st, &env, 34, [9, 0x7700, 0, 0, 0]).rax,
        EINVAL
    );
    m.write_obj(5u16, GuestAddress(0x7700)).unwrap();
    assert_eq!(dispatch(&mut st, &env, 34, [9, 0x7700, 0, 0, 0]).rax, ESRCH);
    assert_eq!(
        dispatch(&mut st, &env, 34, [9, 0x3f_fff8, 0, 0, 0]).rax,
        EFAULT
    );
    assert_eq!(
        dispatch(&mut st, &env, 34, [77, 0x7700, 0, 0, 0]).rax,
        ENOSYS
    );
}

#[test]
fn version_strings() {
    let m = mem();
    let mut st = XenState::default();
    assert_eq!(run(&m, &mut st, 17, [7, 0, 0, 0, 0]).rax, 4096);
    for (cmd, len) in [(2u64, 144usize), (3, 1024), (4, 64), (5, 8), (8, 16)] {
        m.write_slice(&vec![0xaa; len], GuestAddress(0x9000))
            .unwrap();
        assert_eq!(
            run(&m, &mut st, 17, [cmd, 0x9000, 0, 0, 0]).rax,
            0,
            "cmd {cmd}"
        );
        let mut b = vec![0u8; len];
        m.read_slice(&mut b, GuestAddress(0x9000)).unwrap();
        assert!(!b.contains(&0xaa), "cmd {cmd} left bytes unwritten");
    }
    assert_eq!(run(&m, &mut st, 17, [3, 0x4000_0000, 0, 0, 0]).rax, EFAULT);
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
        let env = Env { mem: &m, paging: PagingMode::default(), memory_map: &map, vcpu: 0, now_ns: 5, clock: &no_clock, boot_unix_ns: 0 };
        let _ = dispatch(&mut st, &env, nr, small);
    }
}
