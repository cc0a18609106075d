//! Rings and packets through a channel: echo round trips, wrap-around, signalling rules,
//! flow control and the bad-input cases (indices beyond the ring, packets longer than it).
use std::sync::atomic::Ordering;

use super::*;
use crate::abi::vmbus::ring as rh;

#[test]
fn inband_round_trip_with_completion_and_one_signal() {
    let mut g = Guest::connected(1);
    let c = g.open(1, 2, 2);
    assert!(c
        .out
        .write(&g.mem, VM_PKT_DATA_INBAND, 1, 0xabc, &[], b"hello vmbus"));
    assert_eq!(g.kick(&c), 0);
    let seen = g.dev[0].seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].kind, PacketKind::InBand);
    assert!(seen[0].completion_requested);
    assert_eq!(seen[0].transaction_id, 0xabc);
    // The payload is padded to 8 bytes in the ring.
    assert_eq!(&seen[0].payload[..11], b"hello vmbus");
    assert_eq!(seen[0].payload.len(), 16);
    let (ty, flags, tid, payload, raw) = c.inr.read(&g.mem).unwrap();
    assert_eq!((ty, flags, tid), (VM_PKT_COMP, 0, 0xabc));
    assert_eq!(&payload[..11], b"hello vmbus");
    assert_eq!(raw.len() % 8, 0);
    assert_eq!(
        g.sink.signals(),
        vec![(1, MESSAGE_SINT, 1)],
        "relid bit, SINT 2, VP 1"
    );
    // The host read everything and left the mask clear.
    assert_eq!(c.out.get(&g.mem, 4), c.out.get(&g.mem, 0));
    assert_eq!(c.out.get(&g.mem, rh::INTERRUPT_MASK as u64), 0);
}

#[test]
fn gpa_direct_packets_carry_their_ranges() {
    let mut g = Guest::connected(1);
    let c = g.open(1, 3, 3);
    // reserved, range count 2; range 1: 5000 bytes at offset 100 (2 pages); range 2: 8 bytes.
    let mut head = Vec::new();
    head.extend_from_slice(&0u32.to_le_bytes());
    head.extend_from_slice(&2u32.to_le_bytes());
    head.extend_from_slice(&5000u32.to_le_bytes());
    head.extend_from_slice(&100u32.to_le_bytes());
    head.extend_from_slice(&0x20u64.to_le_bytes());
    head.extend_from_slice(&0x31u64.to_le_bytes());
    head.extend_from_slice(&8u32.to_le_bytes());
    head.extend_from_slice(&0u32.to_le_bytes());
    head.extend_from_slice(&0x40u64.to_le_bytes());
    assert!(c.out.write(
        &g.mem,
        VM_PKT_DATA_USING_GPA_DIRECT,
        1,
        5,
        &head,
        b"srb....."
    ));
    g.kick(&c);
    let p = g.dev[0].seen.lock().unwrap()[0].clone();
    assert_eq!(p.kind, PacketKind::GpaDirect);
    assert_eq!(p.payload, b"srb.....");
    assert_eq!(
        p.ranges,
        vec![
            GpaRange {
                len: 5000,
                offset: 100,
                pfns: vec![0x20, 0x31]
            },
            GpaRange {
                len: 8,
                offset: 0,
                pfns: vec![0x40]
            }
        ]
    );
}

#[test]
fn packets_wrap_around_the_ring_end() {
    let mut g = Guest::connected(1);
    // One data page each way: 4096 bytes, so indices wrap after a few packets.
    let c = g.open(1, 2, 2);
    for i in 0u32..200 {
        let payload: Vec<u8> = (0..(40 + i % 300)).map(|b| (b + i) as u8).collect();
        assert!(c
            .out
            .write(&g.mem, VM_PKT_DATA_INBAND, 1, u64::from(i), &[], &payload));
        g.kick(&c);
        let (ty, _, tid, back, _) = c.inr.read(&g.mem).expect("completion");
        assert_eq!((ty, tid), (VM_PKT_COMP, u64::from(i)));
        assert_eq!(&back[..payload.len()], &payload[..], "packet {i}");
    }
    assert_eq!(g.dev[0].seen.lock().unwrap().len(), 200);
    assert!(g.host.status().failed.is_empty());
}

#[test]
fn no_signal_while_the_guest_masks_or_has_unread_packets() {
    let mut g = Guest::connected(1);
    let c = g.open(1, 2, 4);
    // Mask set: the guest is reading; no interrupt.
    c.inr.set(&g.mem, rh::INTERRUPT_MASK as u64, 1);
    c.out.write(&g.mem, VM_PKT_DATA_INBAND, 1, 1, &[], b"a");
    g.kick(&c);
    assert!(g.sink.signals().is_empty(), "masked");
    // Mask clear but the guest has not read the previous packet: no interrupt either.
    c.inr.set(&g.mem, rh::INTERRUPT_MASK as u64, 0);
    c.out.write(&g.mem, VM_PKT_DATA_INBAND, 1, 2, &[], b"b");
    g.kick(&c);
    assert!(g.sink.signals().is_empty(), "ring was not empty");
    // After the guest read both, the next packet interrupts.
    assert!(c.inr.read(&g.mem).is_some() && c.inr.read(&g.mem).is_some());
    c.out.write(&g.mem, VM_PKT_DATA_INBAND, 1, 3, &[], b"c");
    g.kick(&c);
    assert_eq!(g.sink.signals(), vec![(1, MESSAGE_SINT, 1)]);
    // A packet without completion request gets no answer and no signal.
    c.inr.read(&g.mem).unwrap();
    c.out.write(&g.mem, VM_PKT_DATA_INBAND, 0, 4, &[], b"d");
    g.kick(&c);
    assert!(c.inr.read(&g.mem).is_none());
    assert!(g.sink.signals().is_empty());
}

#[test]
fn a_full_inbound_ring_queues_and_flushes_on_the_guests_signal() {
    let mut g = Guest::connected(1);
    let c = g.open(1, 2, 2);
    // 40 packets of 256 + 16 + 8 bytes never fit 4096 bytes at once.
    let mut burst = b"burst".to_vec();
    burst.extend_from_slice(&40u32.to_le_bytes());
    c.out.write(&g.mem, VM_PKT_DATA_INBAND, 0, 1, &[], &burst);
    g.kick(&c);
    let pending = c.inr.get(&g.mem, rh::PENDING_SEND_SZ as u64);
    assert_eq!(pending, 256 + 16 + 8, "host waits for room for one packet");
    let mut got = Vec::new();
    while got.len() < 40 {
        let mut n = 0;
        while let Some((ty, _, tid, payload, _)) = c.inr.read(&g.mem) {
            assert_eq!(ty, VM_PKT_DATA_INBAND);
            assert_eq!(payload, vec![tid as u8; 256]);
            got.push(tid);
            n += 1;
        }
        assert!(n > 0, "progress after {} packets", got.len());
        // Linux signals when it freed room for pending_send_sz.
        g.kick(&c);
    }
    assert_eq!(got, (0..40).collect::<Vec<u64>>(), "in order, none lost");
    assert_eq!(c.inr.get(&g.mem, rh::PENDING_SEND_SZ as u64), 0, "cleared");
}

#[test]
fn the_guest_waiting_for_room_is_signalled_after_the_host_reads() {
    let mut g = Guest::connected(1);
    let c = g.open(1, 2, 4);
    // Fill the outbound ring with 7 packets of 512 + 24 bytes (3752 of 4096).
    for i in 0..7 {
        assert!(c
            .out
            .write(&g.mem, VM_PKT_DATA_INBAND, 0, i, &[], &[1u8; 512]));
    }
    assert!(!c
        .out
        .write(&g.mem, VM_PKT_DATA_INBAND, 0, 9, &[], &[1u8; 512]));
    // The guest waits for 1000 bytes (it set the feature bit at open).
    c.out.set(&g.mem, rh::PENDING_SEND_SZ as u64, 1000);
    g.kick(&c);
    assert_eq!(g.sink.signals(), vec![(1, MESSAGE_SINT, 1)], "room now");
    // Without the feature bit, no signal.
    c.out.set(&g.mem, rh::FEATURE_BITS as u64, 0);
    for i in 0..7 {
        assert!(c
            .out
            .write(&g.mem, VM_PKT_DATA_INBAND, 0, i, &[], &[1u8; 512]));
    }
    g.kick(&c);
    assert!(g.sink.signals().is_empty());
}

#[test]
fn indices_beyond_the_ring_fail_only_that_channel() {
    for (off, value) in [
        (0u64, 4096u32),
        (0, 0xffff_fff8),
        (4, 8192),
        (0, 12),
        (4, 4),
    ] {
        let mut g = Guest::connected(2);
        let c1 = g.open(1, 2, 2);
        let c2 = g.open(2, 2, 2);
        c1.out.set(&g.mem, off, value);
        assert_eq!(g.kick(&c1), 0, "the hypercall itself succeeds");
        let s = g.host.status();
        assert_eq!(s.failed.len(), 1, "index {off}={value:#x}: {s:?}");
        assert_eq!(s.failed[0].0, 1);
        assert!(s.failed[0].1.contains("index"), "{}", s.failed[0].1);
        // Later kicks leave the failed channel alone; channel 2 goes on.
        g.kick(&c1);
        c2.out.write(&g.mem, VM_PKT_DATA_INBAND, 1, 1, &[], b"ok");
        g.kick(&c2);
        assert!(c2.inr.read(&g.mem).is_some());
        // The guest closes the failed channel and can open it again.
        let mut close = msg(CHANNELMSG_CLOSECHANNEL, 12);
        put(&mut close, 8, &1u32.to_le_bytes());
        g.post(&close);
        assert!(g.host.status().failed.is_empty());
        assert_eq!(g.dev[0].closes.load(Ordering::SeqCst), 1);
    }
}

#[test]
fn the_inbound_ring_index_is_checked_too() {
    let mut g = Guest::connected(1);
    let c = g.open(1, 2, 2);
    c.inr.set(&g.mem, 4, 0x7777_0000);
    c.out.write(&g.mem, VM_PKT_DATA_INBAND, 1, 1, &[], b"x");
    g.kick(&c);
    assert_eq!(g.host.status().failed.len(), 1);
}

/// Writes a raw descriptor (type, offset8, len8) into the outbound ring with the write index
/// advanced by `advance` bytes.
fn raw_packet(g: &Guest, c: &GChan, ty: u16, offset8: u16, len8: u16, advance: u32) {
    let mut d = [0u8; 16];
    put(&mut d, 0, &ty.to_le_bytes());
    put(&mut d, 2, &offset8.to_le_bytes());
    put(&mut d, 4, &len8.to_le_bytes());
    g.mem
        .write_slice(&d, GuestAddress(c.out.data[0] * 4096))
        .unwrap();
    c.out.set(&g.mem, 0, advance);
}

#[test]
fn malformed_packets_fail_the_channel() {
    let cases: [(u16, u16, u16, u32, &str); 7] = [
        (
            VM_PKT_DATA_INBAND,
            2,
            600,
            64,
            "longer than the data in the ring",
        ),
        (VM_PKT_DATA_INBAND, 2, 0xffff, 4088, "longer than the ring"),
        (VM_PKT_DATA_INBAND, 2, 1, 16, "length below the descriptor"),
        (VM_PKT_DATA_INBAND, 1, 4, 40, "offset inside the descriptor"),
        (VM_PKT_DATA_INBAND, 5, 4, 40, "offset past the packet"),
        (VM_PKT_DATA_INBAND, 2, 2, 8, "fewer bytes than a descriptor"),
        (0x55, 2, 4, 40, "unknown type"),
    ];
    for (ty, off8, len8, adv, why) in cases {
        let mut g = Guest::connected(1);
        let c = g.open(1, 2, 2);
        raw_packet(&g, &c, ty, off8, len8, adv);
        g.kick(&c);
        assert_eq!(g.host.status().failed.len(), 1, "{why}");
        assert!(g.dev[0].seen.lock().unwrap().is_empty(), "{why}");
    }
    // GPA-direct with a range count the header cannot hold.
    let mut g = Guest::connected(1);
    let c = g.open(1, 2, 2);
    let mut head = vec![0u8; 8];
    put(&mut head, 4, &1000u32.to_le_bytes());
    c.out
        .write(&g.mem, VM_PKT_DATA_USING_GPA_DIRECT, 1, 1, &head, b"x");
    g.kick(&c);
    assert_eq!(g.host.status().failed.len(), 1);
}

#[test]
fn a_device_refusing_a_malformed_packet_fails_the_channel() {
    let mut g = Guest::connected(1);
    let c = g.open(1, 2, 2);
    c.out.write(&g.mem, VM_PKT_DATA_INBAND, 1, 1, &[], b"fail");
    c.out.write(&g.mem, VM_PKT_DATA_INBAND, 1, 2, &[], b"never");
    g.kick(&c);
    assert_eq!(
        g.dev[0].seen.lock().unwrap().len(),
        1,
        "stopped at the bad one"
    );
    assert!(g.host.status().failed[0].1.contains("malformed"));
}

#[test]
fn a_device_packet_larger_than_the_ring_fails_the_channel() {
    let mut g = Guest::connected(1);
    let c = g.open(1, 2, 2);
    g.dev[0].poll_out.lock().unwrap().push(OutPacket::InBand {
        transaction_id: 1,
        completion_requested: false,
        payload: vec![0; 5000],
    });
    g.host.poll();
    assert_eq!(g.host.status().failed.len(), 1);
    assert!(c.inr.read(&g.mem).is_none());
}

#[test]
fn poll_sends_device_packets_and_xfer_pages() {
    let mut g = Guest::connected(1);
    let c = g.open(1, 2, 2);
    g.dev[0]
        .poll_out
        .lock()
        .unwrap()
        .push(OutPacket::XferPages {
            transaction_id: 42,
            xfer_pageset_id: 0xcafe,
            ranges: vec![(1514, 0), (60, 4096)],
            payload: b"nvsp".to_vec(),
        });
    g.host.poll();
    let (ty, flags, tid, payload, raw) = c.inr.read(&g.mem).unwrap();
    assert_eq!((ty, flags, tid), (VM_PKT_DATA_USING_XFER_PAGES, 1, 42));
    assert_eq!(&payload[..4], b"nvsp");
    assert_eq!(u16::from_le_bytes([raw[16], raw[17]]), 0xcafe);
    assert_eq!(rd32(&raw, 20), 2);
    assert_eq!((rd32(&raw, 24), rd32(&raw, 28)), (1514, 0));
    assert_eq!((rd32(&raw, 32), rd32(&raw, 36)), (60, 4096));
    assert_eq!(
        u16::from_le_bytes([raw[2], raw[3]]),
        5,
        "data offset after the ranges"
    );
    assert_eq!(g.sink.signals(), vec![(1, MESSAGE_SINT, 1)]);
}

#[test]
fn devices_see_gpadls_until_they_are_torn_down() {
    let mut g = Guest::connected(1);
    let c = g.open(1, 2, 2);
    let pfns = g.pages(30);
    let (h, _) = g.gpadl(1, &pfns);
    let ask = |g: &Guest| {
        let mut p = b"gpadl".to_vec();
        p.extend_from_slice(&h.to_le_bytes());
        c.out.write(&g.mem, VM_PKT_DATA_INBAND, 1, 1, &[], &p);
        g.kick(&c);
        rd32(&c.inr.read(&g.mem).unwrap().3, 0)
    };
    assert_eq!(ask(&g), 30);
    let mut t = msg(CHANNELMSG_GPADL_TEARDOWN, 16);
    put(&mut t, 12, &h.to_le_bytes());
    g.post(&t);
    assert_eq!(ask(&g), u32::MAX);
}

#[test]
fn the_shared_event_connection_services_every_channel() {
    let mut g = Guest::connected(2);
    let c1 = g.open(1, 2, 2);
    let c2 = g.open(2, 2, 2);
    c1.out.write(&g.mem, VM_PKT_DATA_INBAND, 1, 1, &[], b"1");
    c2.out.write(&g.mem, VM_PKT_DATA_INBAND, 1, 2, &[], b"2");
    assert_eq!(g.host.on_signal_event(0, EVENT_CONNECTION_ID, 0), 0);
    assert!(c1.inr.read(&g.mem).is_some() && c2.inr.read(&g.mem).is_some());
}

#[test]
fn a_long_ring_is_serviced_in_slices_and_poll_finishes_it() {
    use crate::vmbus::channel::MAX_PACKETS_PER_SERVICE;
    let mut g = Guest::connected(1);
    // 1100 packets of 24 + 8 bytes need 35200 bytes: 9 data pages.
    let c = g.open(1, 10, 2);
    let n = MAX_PACKETS_PER_SERVICE + 76;
    for i in 0..n {
        assert!(c
            .out
            .write(&g.mem, VM_PKT_DATA_INBAND, 0, i as u64, &[], b"12345678"));
    }
    g.kick(&c);
    assert_eq!(g.dev[0].seen.lock().unwrap().len(), MAX_PACKETS_PER_SERVICE);
    assert_eq!(
        c.out.get(&g.mem, rh::INTERRUPT_MASK as u64),
        0,
        "mask clear while packets are left, so the guest's next write signals"
    );
    g.host.poll();
    assert_eq!(g.dev[0].seen.lock().unwrap().len(), n);
    assert!(g.host.status().failed.is_empty());
}
