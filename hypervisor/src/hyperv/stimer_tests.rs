use super::*;
use crate::abi::hv::{MSR_SCONTROL, MSR_SIMP, MSR_SINT0};
use crate::hv_config::HvFeatures;
use crate::hyperv::synic::Inject;
use crate::hyperv::Partition;
use vm_memory::{Bytes, GuestAddress};

const CFG: u32 = MSR_STIMER0_CONFIG;
const CNT: u32 = MSR_STIMER0_CONFIG + 1;

fn regs() -> [Stimer; STIMER_COUNT] {
    Default::default()
}

#[test]
fn config_checks() {
    let mut t = regs();
    for bit in [13, 14, 15, 20, 63] {
        assert_eq!(
            write(&mut t, CFG, 1 | (2 << 16) | (1 << bit), true),
            Err(Gp)
        );
    }
    assert_eq!(write(&mut t, CFG, STIMER_DIRECT_MODE, false), Err(Gp));
    assert_eq!(
        write(
            &mut t,
            CFG,
            STIMER_ENABLE | STIMER_DIRECT_MODE | (5 << 4),
            true
        ),
        Err(Gp)
    );
    // A disabled direct timer may hold any vector.
    assert_eq!(
        write(&mut t, CFG, STIMER_DIRECT_MODE | (5 << 4), true),
        Ok(())
    );
    // Message mode to SINT 0: Enable does not stick.
    write(&mut t, CFG, STIMER_ENABLE, true).unwrap();
    assert_eq!(read(&t, CFG), 0);
    // Enable before COUNT is kept; COUNT 0 clears it; AutoEnable sets it.
    write(&mut t, CFG, STIMER_ENABLE | (2 << 16), true).unwrap();
    assert_eq!(read(&t, CFG) & STIMER_ENABLE, STIMER_ENABLE);
    write(&mut t, CNT, 0, true).unwrap();
    assert_eq!(read(&t, CFG) & STIMER_ENABLE, 0);
    write(&mut t, CFG, STIMER_AUTO_ENABLE | (2 << 16), true).unwrap();
    write(&mut t, CNT, 5, true).unwrap();
    assert_eq!(read(&t, CFG) & STIMER_ENABLE, STIMER_ENABLE);
    assert_eq!(read(&t, CNT), 5);
    // Timer 3's registers are its own.
    write(&mut t, MSR_STIMER3_COUNT, 9, true).unwrap();
    assert_eq!((read(&t, CNT), read(&t, MSR_STIMER3_COUNT)), (5, 9));
}

#[test]
fn one_shot_and_periodic_expiry() {
    let mut t = regs();
    write(&mut t, CFG, STIMER_ENABLE | (3 << 16), true).unwrap();
    write(&mut t, CNT, 1000, true).unwrap();
    write(
        &mut t,
        CFG + 2,
        STIMER_ENABLE | STIMER_PERIODIC | (3 << 16),
        true,
    )
    .unwrap();
    write(&mut t, CNT + 2, 300, true).unwrap();
    arm(&mut t, 500);
    assert_eq!(t[0].deadline, Some(1000));
    assert_eq!(t[1].deadline, Some(800));
    let (f, next) = expire(&mut t, 799);
    assert!(f.is_empty());
    assert_eq!(next, Some(800));
    // At 1150: the one-shot (due 1000) and the periodic (due 800, missed 1100) fire once.
    let (f, next) = expire(&mut t, 1150);
    assert_eq!(f.len(), 2);
    match &f[0] {
        Fire::Message(3, m) => assert_eq!(*m, timer_message(0, 1000, 1150)),
        _ => panic!("timer 0 should post a message to SINT 3"),
    }
    assert_eq!(
        t[0].config & STIMER_ENABLE,
        0,
        "one-shot disabled after expiry"
    );
    assert_eq!(t[1].deadline, Some(1400), "next whole period after now");
    assert_eq!(next, Some(1400));
    // A one-shot in the past fires at once.
    write(
        &mut t,
        CFG + 4,
        STIMER_ENABLE | STIMER_DIRECT_MODE | (0x40 << 4),
        true,
    )
    .unwrap();
    write(&mut t, CNT + 4, 10, true).unwrap();
    arm(&mut t, 2000);
    let (f, _) = expire(&mut t, 2000);
    // (The periodic timer, due at 1400, fires again too; in timer order.)
    assert!(matches!(
        f.as_slice(),
        [Fire::Message(3, _), Fire::Direct(0x40)]
    ));
}

#[test]
fn timer_message_layout() {
    let m = timer_message(2, 0x1122, 0x3344);
    assert_eq!(m.message_type, HVMSG_TIMER_EXPIRED);
    assert_eq!(m.payload.len(), TIMER_MESSAGE_PAYLOAD_SIZE);
    assert_eq!(&m.payload[0..8], &[2, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(&m.payload[8..16], &0x1122u64.to_le_bytes());
    assert_eq!(&m.payload[16..24], &0x3344u64.to_le_bytes());
}

struct Rec(Mutex<Vec<(u32, u8)>>);
impl Inject for Rec {
    fn inject(&self, vp: u32, vector: u8) -> bool {
        self.0.lock().unwrap().push((vp, vector));
        true
    }
}

fn synic() -> (Arc<Synic>, Arc<Rec>, GuestMemoryMmap) {
    let mut p = Partition::new(HvFeatures::ALL, 1, TscInfo::default());
    let ok = |_| true;
    p.wrmsr(MSR_SCONTROL, 1, 0, ok).unwrap();
    p.wrmsr(MSR_SIMP, 0x2000 | 1, 0, ok).unwrap();
    p.wrmsr(MSR_SINT0 + 1, 0x50, 0, ok).unwrap();
    let rec = Arc::new(Rec(Mutex::new(Vec::new())));
    let s = Synic::new(Arc::new(Mutex::new(p)), Some(rec.clone()), Instant::now());
    let m = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap();
    (Arc::new(s), rec, m)
}

#[test]
fn run_timers_posts_messages_and_injects() {
    let (s, rec, m) = synic();
    {
        let mut hv = lock(s.partition());
        let ok = |_| true;
        hv.wrmsr(CFG, STIMER_ENABLE | (1 << 16), 0, ok).unwrap();
        hv.wrmsr(CNT, 100, 0, ok).unwrap();
        hv.wrmsr(
            CFG + 2,
            STIMER_ENABLE | STIMER_DIRECT_MODE | (0x60 << 4),
            0,
            ok,
        )
        .unwrap();
        hv.wrmsr(CNT + 2, 200, 0, ok).unwrap();
        arm(&mut hv.vps[0].stimers, 0);
    }
    assert_eq!(s.run_timers(&m, 150), Some(200));
    let t: u32 = m.read_obj(GuestAddress(0x2000 + 256)).unwrap();
    assert_eq!(t, HVMSG_TIMER_EXPIRED);
    assert_eq!(rec.0.lock().unwrap().as_slice(), &[(0, 0x50)]);
    assert_eq!(s.run_timers(&m, 250), None);
    assert_eq!(rec.0.lock().unwrap().as_slice(), &[(0, 0x50), (0, 0x60)]);
}

#[test]
fn timer_thread_fires_and_does_not_keep_the_synic_alive() {
    let (s, rec, m) = synic();
    {
        let mut hv = lock(s.partition());
        let ok = |_| true;
        hv.wrmsr(CFG, STIMER_ENABLE | STIMER_PERIODIC | (1 << 16), 0, ok)
            .unwrap();
        // Every 1 ms.
        hv.wrmsr(CNT, 10_000, 0, ok).unwrap();
    }
    s.stimers_written(&m, 0);
    let t0 = Instant::now();
    while rec.0.lock().unwrap().is_empty() && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(!rec.0.lock().unwrap().is_empty(), "the thread never fired");
    let w = Arc::downgrade(&s);
    drop(s);
    let t0 = Instant::now();
    while w.upgrade().is_some() && t0.elapsed() < Duration::from_secs(1) {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(
        w.upgrade().is_none(),
        "the timer thread keeps the SynIC alive"
    );
}

#[test]
fn a_periodic_timer_queues_at_most_one_message_behind_a_busy_slot() {
    let (s, _rec, m) = synic();
    {
        let mut hv = lock(s.partition());
        let ok = |_| true;
        hv.wrmsr(CFG, STIMER_ENABLE | STIMER_PERIODIC | (1 << 16), 0, ok)
            .unwrap();
        hv.wrmsr(CNT, 10, 0, ok).unwrap();
        arm(&mut hv.vps[0].stimers, 0);
    }
    // Expiries at 10, 20, ...: the first takes the slot, the second queues, the rest are
    // coalesced with it while the guest does not free the slot.
    for now in (10..200).step_by(10) {
        s.run_timers(&m, now);
    }
    assert_eq!(lock(s.partition()).vps[0].synic.queued(1), 1);
}
