//! The host behind the real SynIC: the guest's posts reach it through the SynIC's
//! connections, its answers land in the SIMP slot of SINT 2 (queued behind each other with
//! the message-pending/EOM protocol), and a channel's completion sets the relid's bit in the
//! target VP's SIEFP block for SINT 2 and injects that SINT's vector.
use std::sync::Mutex as StdMutex;
use std::time::{Duration, Instant};

use super::*;
use crate::abi::hv::{MSR_SCONTROL, MSR_SIEFP, MSR_SIMP, MSR_SINT0};
use crate::abi::hv_synic::{
    EVENT_FLAGS_SIZE, MESSAGE_PAYLOAD_OFFSET, MESSAGE_PAYLOAD_SIZE_OFFSET, MESSAGE_SIZE,
};
use crate::hv_config::HvFeatures;
use crate::hyperv::synic::Inject;
use crate::hyperv::{Partition, Synic, TscInfo};
use crate::vmbus::attach;

const SIMP: u64 = 0x3f_0000;
const SIEFP: u64 = 0x3f_4000;
const VEC: u64 = 0x40;

#[derive(Default)]
struct Rec(StdMutex<Vec<(u32, u8)>>);
impl Inject for Rec {
    fn inject(&self, vp: u32, vector: u8) -> bool {
        self.0.lock().unwrap().push((vp, vector));
        true
    }
}

/// 2 VPs, SynIC on, VP n's SIMP at SIMP + n * 8 KiB, SIEFP likewise, SINTn = VEC + n.
fn synic(rec: Arc<Rec>) -> Arc<Synic> {
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
    Arc::new(Synic::new(
        Arc::new(std::sync::Mutex::new(p)),
        Some(rec),
        Instant::now(),
    ))
}

/// Takes the message in VP 0's SINT 2 slot (freeing it and writing EOM, as Linux does).
fn take_message(s: &Synic, mem: &GuestMemoryMmap) -> Option<Vec<u8>> {
    let slot = SIMP + 2 * MESSAGE_SIZE;
    let ty: u32 = mem.read_obj(GuestAddress(slot)).unwrap();
    if ty == 0 {
        return None;
    }
    assert_eq!(ty, HV_MESSAGE_TYPE_CHANNEL);
    let len: u8 = mem
        .read_obj(GuestAddress(slot + MESSAGE_PAYLOAD_SIZE_OFFSET))
        .unwrap();
    let mut p = vec![0u8; usize::from(len)];
    mem.read_slice(&mut p, GuestAddress(slot + MESSAGE_PAYLOAD_OFFSET))
        .unwrap();
    mem.write_obj(0u32, GuestAddress(slot)).unwrap();
    s.retry(mem, 0);
    Some(p)
}

#[test]
fn messages_and_events_go_through_the_synic() {
    let mut g = Guest::new(1);
    let rec = Arc::new(Rec::default());
    let s = synic(rec.clone());
    // Move the echo device into a host answering through the SynIC.
    let devices: Vec<Box<dyn VmbusDevice>> = vec![Box::new(Echo {
        class: CLASS_SCSI,
        instance: [1; 16],
        st: g.dev[0].clone(),
    })];
    let _rt = attach::attach(&s, &g.mem, devices, false).unwrap();
    let conns = s.connections();
    assert_eq!(
        conns.post_message(
            0,
            MESSAGE_CONNECTION_ID_4,
            1,
            &contact(VERSION_WIN10_V5_3, 0)
        ),
        0
    );
    let r = take_message(&s, &g.mem).expect("VERSION_RESPONSE in the SIMP slot");
    assert_eq!(
        (rd32(&r, 0), r[8], rd32(&r, 12)),
        (CHANNELMSG_VERSION_RESPONSE, 1, 4)
    );
    assert!(rec.0.lock().unwrap().contains(&(0, (VEC + 2) as u8)));
    // Offer + ALLOFFERS_DELIVERED: the second waits behind the first until EOM.
    conns.post_message(0, 4, 1, &msg(CHANNELMSG_REQUESTOFFERS, 8));
    let o = take_message(&s, &g.mem).unwrap();
    assert_eq!((rd32(&o, 0), o.len()), (CHANNELMSG_OFFERCHANNEL, 196));
    let a = take_message(&s, &g.mem).unwrap();
    assert_eq!(rd32(&a, 0), CHANNELMSG_ALLOFFERS_DELIVERED);
    assert!(take_message(&s, &g.mem).is_none());
    // A ring GPADL and OPENCHANNEL with interrupts to VP 1.
    let pfns = g.pages(4);
    for p in &pfns {
        g.mem
            .write_slice(&[0u8; 4096], GuestAddress(p * 4096))
            .unwrap();
    }
    let mut h = msg(CHANNELMSG_GPADL_HEADER, 20 + 8 + 32);
    put(&mut h, 8, &1u32.to_le_bytes());
    put(&mut h, 12, &0x100u32.to_le_bytes());
    put(&mut h, 16, &40u16.to_le_bytes());
    put(&mut h, 18, &1u16.to_le_bytes());
    put(&mut h, 20, &(4 * 4096u32).to_le_bytes());
    for (i, p) in pfns.iter().enumerate() {
        put(&mut h, 28 + i * 8, &p.to_le_bytes());
    }
    conns.post_message(0, 4, 1, &h);
    assert_eq!(
        rd32(&take_message(&s, &g.mem).unwrap(), 16),
        0,
        "GPADL created"
    );
    conns.post_message(0, 4, 1, &Guest::open_msg(1, 3, 0x100, 1, 2));
    assert_eq!(rd32(&take_message(&s, &g.mem).unwrap(), 16), 0, "opened");
    // A packet, a kick through the SynIC's connections, the worker's completion.
    let out = GRing {
        header: pfns[0] * 4096,
        data: vec![pfns[1]],
    };
    let inr = GRing {
        header: pfns[2] * 4096,
        data: vec![pfns[3]],
    };
    rec.0.lock().unwrap().clear();
    out.write(&g.mem, VM_PKT_DATA_INBAND, 1, 11, &[], b"through the synic");
    assert_eq!(conns.signal_event(0, CHANNEL_CONNECTION_ID_BASE + 1, 0), 0);
    let t = Instant::now();
    while inr.read(&g.mem).is_none() {
        assert!(t.elapsed() < Duration::from_secs(5), "no completion");
        std::thread::sleep(Duration::from_millis(1));
    }
    // VP 1's SIEFP block for SINT 2 has bit 1 (the relid) set; VP 1 got SINT 2's vector.
    let flags: u64 = g
        .mem
        .read_obj(GuestAddress(SIEFP + 0x2000 + 2 * EVENT_FLAGS_SIZE))
        .unwrap();
    assert_eq!(flags, 1 << 1);
    assert_eq!(*rec.0.lock().unwrap(), vec![(1, (VEC + 2) as u8)]);
    assert_eq!(
        conns.signal_event(0, 0x7777, 0),
        crate::abi::hv::HV_STATUS_INVALID_CONNECTION_ID
    );
}
