use super::*;
use crate::abi::hv::{
    HV_STATUS_SUCCESS, MSR_EOM, MSR_SCONTROL, MSR_SIEFP, MSR_SIMP, MSR_SINT0, SINT_AUTO_EOI,
};
use crate::hv_config::HvFeatures;
use crate::hyperv::{Call, DispatchOptions, TscInfo};

const SIMP: u64 = 0x2000;
const SIEFP: u64 = 0x3000;
const VEC: u64 = 0x40;

fn mem() -> GuestMemoryMmap {
    GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap()
}

/// Records every injection.
#[derive(Default)]
struct Rec(Mutex<Vec<(u32, u8)>>);

impl Inject for Rec {
    fn inject(&self, vp: u32, vector: u8) -> bool {
        self.0.lock().unwrap().push((vp, vector));
        true
    }
}

impl Rec {
    fn take(&self) -> Vec<(u32, u8)> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// A 2-VP SynIC with SCONTROL, SIMP, SIEFP enabled on both and SINTn = vector VEC + n.
fn synic() -> (Synic, Arc<Rec>, GuestMemoryMmap) {
    let mut p = Partition::new(HvFeatures::ALL, 2, TscInfo::default());
    for vp in 0..2u32 {
        let off = u64::from(vp) * 0x2000;
        let ok = |_| true;
        p.wrmsr(MSR_SCONTROL, 1, vp, ok).unwrap();
        p.wrmsr(MSR_SIMP, (SIMP + off) | 1, vp, ok).unwrap();
        p.wrmsr(MSR_SIEFP, (SIEFP + off) | 1, vp, ok).unwrap();
        for n in 0..16 {
            p.wrmsr(MSR_SINT0 + n, VEC + u64::from(n), vp, ok).unwrap();
        }
    }
    let rec = Arc::new(Rec::default());
    let s = Synic::new(Arc::new(Mutex::new(p)), Some(rec.clone()), Instant::now());
    (s, rec, mem())
}

fn msg(t: u32, payload: &[u8]) -> HvMessage {
    HvMessage {
        message_type: t,
        payload: payload.to_vec(),
    }
}

fn slot(sint: u64) -> u64 {
    SIMP + sint * MESSAGE_SIZE
}

fn slot_type(m: &GuestMemoryMmap, sint: u64) -> u32 {
    m.read_obj(GuestAddress(slot(sint))).unwrap()
}

fn slot_flags(m: &GuestMemoryMmap, sint: u64) -> u8 {
    m.read_obj(GuestAddress(slot(sint) + MESSAGE_FLAGS_OFFSET))
        .unwrap()
}

fn slot_payload(m: &GuestMemoryMmap, sint: u64) -> Vec<u8> {
    let n: u8 = m
        .read_obj(GuestAddress(slot(sint) + MESSAGE_PAYLOAD_SIZE_OFFSET))
        .unwrap();
    let mut b = vec![0; n as usize];
    m.read_slice(&mut b, GuestAddress(slot(sint) + MESSAGE_PAYLOAD_OFFSET))
        .unwrap();
    b
}

/// The guest's side of a message: free the slot, EOM if MessagePending was set.
fn guest_consume(s: &Synic, m: &GuestMemoryMmap, sint: u64) -> bool {
    m.write_obj(HVMSG_NONE, GuestAddress(slot(sint))).unwrap();
    let pending = slot_flags(m, sint) & MESSAGE_FLAG_PENDING != 0;
    if pending {
        let ok = |_| true;
        lock(s.partition()).wrmsr(MSR_EOM, 0, 0, ok).unwrap();
        s.retry(m, 0);
    }
    pending
}

#[test]
fn message_lands_in_its_slot_and_injects_the_vector() {
    let (s, rec, m) = synic();
    s.post_message(&m, 0, 3, &msg(0x123, b"hello")).unwrap();
    assert_eq!(slot_type(&m, 3), 0x123);
    assert_eq!(slot_payload(&m, 3), b"hello");
    assert_eq!(slot_flags(&m, 3), 0);
    assert_eq!(rec.take(), vec![(0, VEC as u8 + 3)]);
    // Other slots untouched.
    assert_eq!(slot_type(&m, 2), HVMSG_NONE);
    // VP 1's page, not VP 0's.
    s.post_message(&m, 1, 3, &msg(0x77, b"x")).unwrap();
    let t: u32 = m.read_obj(GuestAddress(slot(3) + 0x2000)).unwrap();
    assert_eq!(t, 0x77);
    assert_eq!(rec.take(), vec![(1, VEC as u8 + 3)]);
}

#[test]
fn busy_slot_queues_sets_pending_and_eom_redelivers_in_order() {
    let (s, rec, m) = synic();
    for (i, t) in [1u32, 2, 3].iter().enumerate() {
        s.post_message(&m, 0, 5, &msg(*t, &[i as u8; 7])).unwrap();
    }
    // First delivered, the other two queued behind it with MessagePending set.
    assert_eq!(slot_type(&m, 5), 1);
    assert_eq!(
        slot_flags(&m, 5) & MESSAGE_FLAG_PENDING,
        MESSAGE_FLAG_PENDING
    );
    assert_eq!(rec.take().len(), 1);
    assert_eq!(lock(s.partition()).vps[0].synic.queued(5), 2);
    // An EOM without freeing the slot delivers nothing.
    s.retry(&m, 0);
    assert_eq!(slot_type(&m, 5), 1);
    assert!(rec.take().is_empty());
    // Guest frees the slot and EOMs: message 2 arrives, still flagged (3 waits).
    assert!(guest_consume(&s, &m, 5));
    assert_eq!(slot_type(&m, 5), 2);
    assert_eq!(slot_payload(&m, 5), vec![1u8; 7]);
    assert_eq!(
        slot_flags(&m, 5) & MESSAGE_FLAG_PENDING,
        MESSAGE_FLAG_PENDING
    );
    assert_eq!(rec.take(), vec![(0, VEC as u8 + 5)]);
    // Message 3, the last: no pending flag.
    assert!(guest_consume(&s, &m, 5));
    assert_eq!(slot_type(&m, 5), 3);
    assert_eq!(slot_flags(&m, 5), 0);
    assert_eq!(rec.take(), vec![(0, VEC as u8 + 5)]);
    assert!(!guest_consume(&s, &m, 5));
    assert_eq!(slot_type(&m, 5), HVMSG_NONE);
    assert!(rec.take().is_empty());
}

#[test]
fn slot_freed_without_eom_is_filled_by_the_next_post() {
    let (s, _rec, m) = synic();
    s.post_message(&m, 0, 0, &msg(1, b"")).unwrap();
    s.post_message(&m, 0, 0, &msg(2, b"")).unwrap();
    // The guest frees the slot but misses the flag (no EOM); the next post still finds
    // queued message 2 first, in order.
    m.write_obj(HVMSG_NONE, GuestAddress(slot(0))).unwrap();
    s.post_message(&m, 0, 0, &msg(3, b"")).unwrap();
    assert_eq!(slot_type(&m, 0), 2);
    assert_eq!(lock(s.partition()).vps[0].synic.queued(0), 1);
}

#[test]
fn queue_is_bounded() {
    let (s, _rec, m) = synic();
    for _ in 0..=MAX_QUEUED {
        s.post_message(&m, 0, 1, &msg(9, b"")).unwrap();
    }
    assert_eq!(
        s.post_message(&m, 0, 1, &msg(9, b"")),
        Err(SynicError::QueueFull)
    );
}

#[test]
fn masked_or_polling_sint_gets_the_message_but_no_vector() {
    let (s, rec, m) = synic();
    let ok = |_| true;
    lock(s.partition())
        .wrmsr(MSR_SINT0 + 2, VEC | SINT_MASKED, 0, ok)
        .unwrap();
    lock(s.partition())
        .wrmsr(MSR_SINT0 + 4, VEC | SINT_POLLING, 0, ok)
        .unwrap();
    s.post_message(&m, 0, 2, &msg(5, b"m")).unwrap();
    s.post_message(&m, 0, 4, &msg(5, b"p")).unwrap();
    assert_eq!(slot_type(&m, 2), 5);
    assert_eq!(slot_type(&m, 4), 5);
    assert_eq!(s.signal_event(&m, 0, 2, 1), Ok(true));
    assert!(rec.take().is_empty());
    // Auto-EOI does not stop delivery (it is not honoured: a plain fixed interrupt).
    lock(s.partition())
        .wrmsr(MSR_SINT0 + 6, VEC | SINT_AUTO_EOI, 0, ok)
        .unwrap();
    s.post_message(&m, 0, 6, &msg(5, b"a")).unwrap();
    assert_eq!(rec.take(), vec![(0, VEC as u8)]);
}

#[test]
fn disabled_synic_or_pages_refuse() {
    let (s, rec, m) = synic();
    let ok = |_| true;
    lock(s.partition()).wrmsr(MSR_SIMP, SIMP, 0, ok).unwrap();
    assert_eq!(
        s.post_message(&m, 0, 0, &msg(1, b"")),
        Err(SynicError::NoPage)
    );
    lock(s.partition()).wrmsr(MSR_SIEFP, SIEFP, 0, ok).unwrap();
    assert_eq!(s.signal_event(&m, 0, 0, 0), Err(SynicError::NoPage));
    lock(s.partition()).wrmsr(MSR_SCONTROL, 0, 1, ok).unwrap();
    assert_eq!(
        s.post_message(&m, 1, 0, &msg(1, b"")),
        Err(SynicError::Disabled)
    );
    assert_eq!(s.signal_event(&m, 1, 0, 0), Err(SynicError::Disabled));
    assert_eq!(slot_type(&m, 0), HVMSG_NONE);
    assert!(rec.take().is_empty());
}

#[test]
fn bad_arguments_are_errors_not_panics() {
    let (s, _rec, m) = synic();
    assert_eq!(
        s.post_message(&m, 2, 0, &msg(1, b"")),
        Err(SynicError::BadVp)
    );
    assert_eq!(
        s.post_message(&m, 0, 16, &msg(1, b"")),
        Err(SynicError::BadSint)
    );
    assert_eq!(
        s.post_message(&m, 0, 0, &msg(1, &[0; 241])),
        Err(SynicError::BadMessage)
    );
    assert_eq!(
        s.post_message(&m, 0, 0, &msg(HVMSG_NONE, b"")),
        Err(SynicError::BadMessage)
    );
    assert_eq!(s.signal_event(&m, 0, 0, 2048), Err(SynicError::BadFlag));
    assert_eq!(s.signal_event(&m, u32::MAX, 0, 0), Err(SynicError::BadVp));
    // A full 240-byte payload fits exactly.
    s.post_message(&m, 0, 15, &msg(1, &[0xab; 240])).unwrap();
    assert_eq!(slot_payload(&m, 15), vec![0xab; 240]);
    // A SIMP page outside RAM (the MSR check passed, then memory shrank): Memory.
    let small = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x1000)]).unwrap();
    assert_eq!(
        s.post_message(&small, 0, 0, &msg(1, b"")),
        Err(SynicError::Memory)
    );
    assert_eq!(s.signal_event(&small, 0, 0, 0), Err(SynicError::Memory));
}

#[test]
fn event_flags_set_their_bit_and_inject_only_on_0_to_1() {
    let (s, rec, m) = synic();
    assert_eq!(s.signal_event(&m, 0, 3, 0), Ok(true));
    assert_eq!(s.signal_event(&m, 0, 3, 2047), Ok(true));
    assert_eq!(s.signal_event(&m, 0, 3, 2047), Ok(false));
    assert_eq!(rec.take(), vec![(0, VEC as u8 + 3), (0, VEC as u8 + 3)]);
    let block = SIEFP + 3 * EVENT_FLAGS_SIZE;
    let first: u64 = m.read_obj(GuestAddress(block)).unwrap();
    let last: u64 = m.read_obj(GuestAddress(block + 248)).unwrap();
    assert_eq!(first, 1);
    assert_eq!(last, 1 << 63);
    // Neighbouring SINT blocks untouched.
    let prev: u64 = m.read_obj(GuestAddress(block - 8)).unwrap();
    let next: u64 = m.read_obj(GuestAddress(block + 256)).unwrap();
    assert_eq!((prev, next), (0, 0));
    // The guest clears it: the next signal injects again.
    m.write_obj(0u64, GuestAddress(block)).unwrap();
    assert_eq!(s.signal_event(&m, 0, 3, 0), Ok(true));
    assert_eq!(rec.take(), vec![(0, VEC as u8 + 3)]);
}

/// A connection that answers one id.
struct One;
impl HvConnections for One {
    fn post_message(&self, vp: u32, id: u32, t: u32, payload: &[u8]) -> u16 {
        if id == 7 && vp == 1 && t == 3 && payload == b"abc" {
            HV_STATUS_SUCCESS
        } else {
            HV_STATUS_INVALID_CONNECTION_ID
        }
    }
    fn signal_event(&self, vp: u32, id: u32, flag: u16) -> u16 {
        if id == 8 && vp == 1 && flag == 9 {
            HV_STATUS_SUCCESS
        } else {
            HV_STATUS_INVALID_CONNECTION_ID
        }
    }
}

#[test]
fn hypercalls_reach_the_registered_connections() {
    use crate::abi::hv::{CALL_POST_MESSAGE, CALL_SIGNAL_EVENT, INPUT_FAST};
    let (s, _rec, m) = synic();
    let opts = DispatchOptions {
        features: HvFeatures::ALL,
        ..Default::default()
    };
    // Input block at 0x8000: id 7, reserved, type 3, size 3, "abc".
    let mut b = [0u8; 256];
    b[0] = 7;
    b[8] = 3;
    b[12] = 3;
    b[16..19].copy_from_slice(b"abc");
    m.write_slice(&b, GuestAddress(0x8000)).unwrap();
    let post = Call {
        input: u64::from(CALL_POST_MESSAGE),
        in_gpa: 0x8000,
        out_gpa: 0,
    };
    let sig = |id: u64| Call {
        input: u64::from(CALL_SIGNAL_EVENT) | INPUT_FAST,
        in_gpa: id | (9 << 32),
        out_gpa: 0,
    };
    let st = |c: Call, vp: u32| {
        let conns = s.connections();
        (crate::hyperv::dispatch_from(&m, c, opts, vp, conns.as_ref()).rax & 0xffff) as u16
    };
    // None registered yet.
    assert_eq!(st(post, 1), HV_STATUS_INVALID_CONNECTION_ID);
    assert_eq!(st(sig(8), 1), HV_STATUS_INVALID_CONNECTION_ID);
    s.set_connections(Arc::new(One));
    assert_eq!(st(post, 1), HV_STATUS_SUCCESS);
    assert_eq!(st(post, 0), HV_STATUS_INVALID_CONNECTION_ID);
    assert_eq!(st(sig(8), 1), HV_STATUS_SUCCESS);
    assert_eq!(st(sig(7), 1), HV_STATUS_INVALID_CONNECTION_ID);
}
