//! Channel management: every message type, and the bad input of issue 13.
use std::sync::atomic::Ordering;

use super::*;
use crate::abi::hv::{HV_STATUS_INVALID_CONNECTION_ID, HV_STATUS_INVALID_PARAMETER};
use crate::abi::hv_synic::HV_STATUS_INSUFFICIENT_BUFFERS;
use crate::vmbus::gpadl::MAX_GPADLS;

#[test]
fn each_supported_version_is_accepted_with_its_connection_id() {
    for v in SUPPORTED_VERSIONS {
        let g = Guest::new(1);
        let conn = if v >= VERSION_WIN10_V5 { 4 } else { 1 };
        assert_eq!(
            g.host
                .on_post_message(0, conn, HV_MESSAGE_TYPE_CHANNEL, &contact(v, 2)),
            0
        );
        let ev = g.sink.take();
        let Ev::Msg { vp, sint, payload } = &ev[0] else {
            panic!("{ev:?}")
        };
        assert_eq!(
            (*vp, *sint),
            (2, MESSAGE_SINT),
            "answered on target_vcpu, SINT 2"
        );
        assert_eq!(payload.len(), 16);
        assert_eq!(rd32(payload, 0), CHANNELMSG_VERSION_RESPONSE);
        assert_eq!(payload[8], 1, "version {v:#x} supported");
        let want_conn = if v >= VERSION_WIN10_V5 { 4 } else { 0 };
        assert_eq!(rd32(payload, 12), want_conn, "msg_conn_id for {v:#x}");
        assert_eq!(g.host.status().connection.unwrap().version, v);
    }
}

#[test]
fn versions_not_spoken_are_refused() {
    for v in [
        VERSION_WS2008,
        VERSION_WIN7,
        6 << 16,
        (5 << 16) | 4,
        0,
        u32::MAX,
    ] {
        let g = Guest::new(1);
        assert_eq!(g.post(&contact(v, 0)), 0);
        let r = g.sink.msgs();
        assert_eq!(r.len(), 1);
        assert_eq!(rd32(&r[0], 0), CHANNELMSG_VERSION_RESPONSE);
        assert_eq!(r[0][8], 0, "version {v:#x} refused");
        assert_eq!(g.host.status().connection, None);
        // Not connected: REQUESTOFFERS is ignored.
        g.post(&msg(CHANNELMSG_REQUESTOFFERS, 8));
        assert!(g.sink.msgs().is_empty());
    }
}

#[test]
fn a_message_sint_above_15_is_refused() {
    let g = Guest::new(1);
    let mut m = contact(VERSION_WIN10_V5_3, 0);
    m[16] = 16;
    g.post(&m);
    assert_eq!(g.sink.msgs()[0][8], 0);
    assert_eq!(g.host.status().connection, None);
}

#[test]
fn messages_go_to_the_sint_the_guest_named() {
    let g = Guest::new(1);
    let mut m = contact(VERSION_WIN10_V5_2, 3);
    m[16] = 5;
    g.host.on_post_message(0, 4, 1, &m);
    g.post(&msg(CHANNELMSG_REQUESTOFFERS, 8));
    for e in g.sink.take() {
        assert!(matches!(e, Ev::Msg { vp: 3, sint: 5, .. }), "{e:?}");
    }
}

#[test]
fn request_offers_offers_every_device_then_all_delivered() {
    let g = Guest::connected(2);
    assert_eq!(g.post(&msg(CHANNELMSG_REQUESTOFFERS, 8)), 0);
    let r = g.sink.msgs();
    assert_eq!(r.len(), 3);
    for (i, o) in r[..2].iter().enumerate() {
        assert_eq!(o.len(), 196);
        assert_eq!(rd32(o, 0), CHANNELMSG_OFFERCHANNEL);
        let want = if i == 0 {
            // ba6163d9-04a1-4d29-b605-72e2ffb1dc7f, as Linux's guid_t holds it.
            [
                0xd9, 0x63, 0x61, 0xba, 0xa1, 0x04, 0x29, 0x4d, 0xb6, 0x05, 0x72, 0xe2, 0xff, 0xb1,
                0xdc, 0x7f,
            ]
        } else {
            // f8615163-df3e-46c5-913f-f2d2f965ed0e
            [
                0x63, 0x51, 0x61, 0xf8, 0x3e, 0xdf, 0xc5, 0x46, 0x91, 0x3f, 0xf2, 0xd2, 0xf9, 0x65,
                0xed, 0x0e,
            ]
        };
        assert_eq!(o[8..24], want);
        assert_eq!(o[24..40], [i as u8 + 1; 16], "instance");
        let relid = i as u32 + 1;
        assert_eq!(rd32(o, 184), relid);
        assert_eq!(o[188], 0, "monitor id");
        assert_eq!(o[189], 0, "no monitor allocated");
        assert_eq!(o[190], 1, "dedicated interrupt");
        assert_eq!(rd32(o, 192), CHANNEL_CONNECTION_ID_BASE + relid);
        assert_eq!(u16::from_le_bytes([o[180], o[181]]), 0, "primary channel");
    }
    assert_eq!(r[2], msg(CHANNELMSG_ALLOFFERS_DELIVERED, 8));
}

#[test]
fn gpadl_in_one_message_and_over_bodies() {
    let mut g = Guest::connected(1);
    let small = g.pages(3);
    let (h, r) = g.gpadl(1, &small);
    assert_eq!(r.len(), 1);
    assert_eq!(rd32(&r[0], 0), CHANNELMSG_GPADL_CREATED);
    assert_eq!(
        (rd32(&r[0], 8), rd32(&r[0], 12), rd32(&r[0], 16)),
        (1, h, 0)
    );
    // 100 pages: header + 3 bodies, one answer after the last body only.
    let big = g.pages(100);
    let (h2, r) = g.gpadl(1, &big);
    assert_eq!(r.len(), 1, "exactly one GPADL_CREATED");
    assert_eq!((rd32(&r[0], 12), rd32(&r[0], 16)), (h2, 0));
    assert_eq!(g.host.status().gpadls, 2);
}

#[test]
fn gpadl_naming_pages_outside_ram_is_refused() {
    let mut g = Guest::connected(1);
    let mut pfns = g.pages(4);
    pfns[2] = (MEM_BYTES as u64 / 4096) + 5;
    let (h, r) = g.gpadl(1, &pfns);
    assert_eq!(rd32(&r[0], 12), h);
    assert_ne!(rd32(&r[0], 16), 0, "refused");
    assert_eq!(g.host.status().gpadls, 0);
    // A PFN whose address overflows.
    let mut pfns = g.pages(1);
    pfns[0] = u64::MAX / 2;
    let (_, r) = g.gpadl(1, &pfns);
    assert_ne!(rd32(&r[0], 16), 0);
}

#[test]
fn malformed_gpadls_are_refused() {
    let mut g = Guest::connected(1);
    let pfns = g.pages(2);
    let (h, _) = g.gpadl(1, &pfns);
    // The same handle again.
    let mut m = msg(CHANNELMSG_GPADL_HEADER, 36);
    put(&mut m, 8, &1u32.to_le_bytes());
    put(&mut m, 12, &h.to_le_bytes());
    put(&mut m, 16, &16u16.to_le_bytes());
    put(&mut m, 18, &1u16.to_le_bytes());
    put(&mut m, 20, &4096u32.to_le_bytes());
    put(&mut m, 28, &pfns[0].to_le_bytes());
    g.post(&m);
    assert_ne!(rd32(&g.sink.msgs()[0], 16), 0, "duplicate handle");
    assert!(g.host.status().gpadls == 1, "the first one stays");
    // Range claims 3 pages but range_buflen holds 1 PFN.
    put(&mut m, 12, &0x99u32.to_le_bytes());
    put(&mut m, 20, &(3 * 4096u32).to_le_bytes());
    g.post(&m);
    assert_ne!(rd32(&g.sink.msgs()[0], 16), 0, "range longer than its PFNs");
    // Range data not a whole number of words.
    let mut odd = m.clone();
    odd.push(0);
    put(&mut odd, 12, &0x9au32.to_le_bytes());
    g.post(&odd);
    assert!(g.sink.msgs().is_empty(), "ragged message dropped");
    // A body with more PFNs than announced.
    put(&mut m, 12, &0x9bu32.to_le_bytes());
    put(&mut m, 16, &24u16.to_le_bytes());
    put(&mut m, 20, &(2 * 4096u32).to_le_bytes());
    g.post(&m);
    assert!(g.sink.msgs().is_empty(), "waits for one more PFN");
    let mut b = msg(CHANNELMSG_GPADL_BODY, 32);
    put(&mut b, 12, &0x9bu32.to_le_bytes());
    g.post(&b);
    assert_ne!(rd32(&g.sink.msgs()[0], 16), 0, "too many PFNs");
    // A body for a GPADL nobody started.
    put(&mut b, 12, &0x77u32.to_le_bytes());
    g.post(&b);
    assert_ne!(rd32(&g.sink.msgs()[0], 16), 0);
    // Zero ranges, range_buflen not a multiple of 8.
    for (count, buflen) in [(0u16, 16u16), (1, 13)] {
        put(&mut m, 12, &0x9cu32.to_le_bytes());
        put(&mut m, 16, &buflen.to_le_bytes());
        put(&mut m, 18, &count.to_le_bytes());
        g.post(&m);
        assert_ne!(rd32(&g.sink.msgs()[0], 16), 0);
    }
    assert_eq!(g.host.status().gpadls, 1);
}

#[test]
fn open_channel_refusals_do_not_panic() {
    let mut g = Guest::connected(1);
    let pfns = g.pages(8);
    let (h, _) = g.gpadl(1, &pfns);
    let cases = [
        (9, h, 4, "unknown relid"),
        (0, h, 4, "relid 0"),
        (u32::MAX, h, 4, "relid u32::MAX"),
        (1, 0x1234, 4, "unknown GPADL"),
        (1, h, 1, "outbound ring of 1 page"),
        (1, h, 7, "inbound ring of 1 page"),
        (1, h, 8, "inbound ring of 0 pages"),
        (1, h, u32::MAX, "offset past the GPADL"),
    ];
    for (relid, gpadl, off, why) in cases {
        assert_eq!(g.post(&Guest::open_msg(relid, 5, gpadl, 0, off)), 0);
        let r = g.sink.msgs();
        assert_eq!(r.len(), 1, "{why}");
        assert_eq!(rd32(&r[0], 0), CHANNELMSG_OPENCHANNEL_RESULT);
        assert_eq!(rd32(&r[0], 8), relid);
        assert_eq!(rd32(&r[0], 12), 5);
        assert_ne!(rd32(&r[0], 16), 0, "{why}");
    }
    assert!(g.host.status().open.is_empty());
    // Ring indices the guest left out of range.
    g.mem
        .write_obj(0x10_0000u32, GuestAddress(pfns[0] * 4096))
        .unwrap();
    g.post(&Guest::open_msg(1, 5, h, 0, 4));
    assert_ne!(
        rd32(&g.sink.msgs()[0], 16),
        0,
        "write index beyond the ring"
    );
}

#[test]
fn open_twice_is_refused_and_close_reopens() {
    let mut g = Guest::connected(1);
    let c = g.open(1, 2, 2);
    g.post(&Guest::open_msg(1, 6, c.gpadl, 0, 2));
    assert_ne!(rd32(&g.sink.msgs()[0], 16), 0, "already open");
    let mut close = msg(CHANNELMSG_CLOSECHANNEL, 12);
    put(&mut close, 8, &1u32.to_le_bytes());
    assert_eq!(g.post(&close), 0);
    assert!(g.sink.msgs().is_empty(), "CLOSECHANNEL has no answer");
    assert!(g.host.status().open.is_empty());
    assert_eq!(g.dev[0].closes.load(Ordering::SeqCst), 1);
    g.post(&Guest::open_msg(1, 7, c.gpadl, 0, 2));
    assert_eq!(rd32(&g.sink.msgs()[0], 16), 0, "reopened");
    assert_eq!(g.host.status().open, vec![1]);
}

#[test]
fn gpadl_teardown_while_in_use_closes_the_channel() {
    let mut g = Guest::connected(2);
    let c1 = g.open(1, 2, 2);
    let c2 = g.open(2, 2, 2);
    let mut t = msg(CHANNELMSG_GPADL_TEARDOWN, 16);
    put(&mut t, 8, &1u32.to_le_bytes());
    put(&mut t, 12, &c1.gpadl.to_le_bytes());
    assert_eq!(g.post(&t), 0);
    let r = g.sink.msgs();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].len(), 12);
    assert_eq!(rd32(&r[0], 0), CHANNELMSG_GPADL_TORNDOWN);
    assert_eq!(rd32(&r[0], 8), c1.gpadl);
    assert_eq!(g.host.status().open, vec![2], "channel 1 closed, 2 goes on");
    // The closed channel's ring is not touched any more.
    assert!(c1
        .out
        .write(&g.mem, VM_PKT_DATA_INBAND, 1, 1, &[], b"hello"));
    g.kick(&c1);
    assert!(c1.inr.read(&g.mem).is_none());
    assert!(g.dev[0].seen.lock().unwrap().is_empty());
    // Channel 2 still echoes.
    assert!(c2.out.write(&g.mem, VM_PKT_DATA_INBAND, 1, 9, &[], b"ping"));
    g.kick(&c2);
    assert_eq!(c2.inr.read(&g.mem).unwrap().3[..4], *b"ping");
    // Tearing down an unknown GPADL has no answer.
    g.post(&t);
    assert!(g.sink.msgs().is_empty());
}

#[test]
fn unload_closes_everything_and_answers() {
    let mut g = Guest::connected(1);
    g.open(1, 2, 2);
    assert_eq!(g.post(&msg(CHANNELMSG_UNLOAD, 8)), 0);
    assert_eq!(g.sink.msgs(), vec![msg(CHANNELMSG_UNLOAD_RESPONSE, 8)]);
    let s = g.host.status();
    assert_eq!((s.connection, s.open.len(), s.gpadls), (None, 0, 0));
    // A new contact works after it.
    g.post(&contact(VERSION_WIN8, 0));
    assert_eq!(g.sink.msgs()[0][8], 1);
}

#[test]
fn modify_channel_is_answered_from_5_3() {
    for (v, answered) in [(VERSION_WIN10_V5_3, true), (VERSION_WIN10_V4_1, false)] {
        let mut g = Guest::new(1);
        g.host.on_post_message(0, 4, 1, &contact(v, 0));
        g.sink.take();
        let c = g.open(1, 2, 2);
        let mut m = msg(CHANNELMSG_MODIFYCHANNEL, 16);
        put(&mut m, 8, &1u32.to_le_bytes());
        put(&mut m, 12, &3u32.to_le_bytes());
        g.host.on_post_message(0, 4, 1, &m);
        let r = g.sink.msgs();
        assert_eq!(r.len(), usize::from(answered));
        if answered {
            assert_eq!(rd32(&r[0], 0), CHANNELMSG_MODIFYCHANNEL_RESPONSE);
            assert_eq!((rd32(&r[0], 8), rd32(&r[0], 12)), (1, 0));
        }
        // Interrupts now go to VP 3.
        c.out.write(&g.mem, VM_PKT_DATA_INBAND, 1, 1, &[], b"x");
        g.kick(&c);
        assert_eq!(g.sink.signals(), vec![(3, MESSAGE_SINT, 1)]);
    }
}

#[test]
fn malformed_messages_are_dropped() {
    let g = Guest::connected(1);
    let full: Vec<(u32, usize)> = vec![
        (CHANNELMSG_INITIATE_CONTACT, 40),
        (CHANNELMSG_OPENCHANNEL, 148),
        (CHANNELMSG_CLOSECHANNEL, 12),
        (CHANNELMSG_GPADL_HEADER, 20),
        (CHANNELMSG_GPADL_BODY, 16),
        (CHANNELMSG_GPADL_TEARDOWN, 16),
        (CHANNELMSG_MODIFYCHANNEL, 16),
        (CHANNELMSG_REQUESTOFFERS, 8),
    ];
    for (ty, size) in full {
        let before = g.host.status().bad_messages;
        let m = msg(ty, size - 1);
        assert_eq!(g.post(&m), 0, "a bad message is still delivered");
        assert!(
            g.sink.msgs().is_empty(),
            "type {ty}: no answer to a short message"
        );
        assert_eq!(
            g.host.status().bad_messages,
            before + 1,
            "type {ty} counted"
        );
    }
    for ty in [0, 25, 99, u32::MAX, CHANNELMSG_OFFERCHANNEL, 21] {
        g.post(&msg(ty, 64));
        assert!(g.sink.msgs().is_empty());
    }
    assert!(g.host.status().connection.is_some(), "still connected");
    // Hypercall-level refusals.
    assert_eq!(
        g.host
            .on_post_message(0, 7, HV_MESSAGE_TYPE_CHANNEL, &msg(3, 8)),
        HV_STATUS_INVALID_CONNECTION_ID
    );
    assert_eq!(
        g.host
            .on_post_message(0, 1, HV_MESSAGE_TYPE_CHANNEL, &[0u8; 241]),
        HV_STATUS_INVALID_PARAMETER
    );
    assert_eq!(
        g.host.on_post_message(0, 1, 2, &msg(3, 8)),
        HV_STATUS_INVALID_PARAMETER
    );
    assert_eq!(
        g.host.on_signal_event(0, 0x9999, 0),
        HV_STATUS_INVALID_CONNECTION_ID
    );
}

#[test]
fn a_full_synic_queue_is_insufficient_buffers() {
    let g = Guest::connected(1);
    g.sink.refuse.store(true, Ordering::SeqCst);
    assert_eq!(
        g.post(&msg(CHANNELMSG_REQUESTOFFERS, 8)),
        HV_STATUS_INSUFFICIENT_BUFFERS
    );
    g.sink.refuse.store(false, Ordering::SeqCst);
    assert_eq!(g.post(&msg(CHANNELMSG_REQUESTOFFERS, 8)), 0);
    assert_eq!(g.sink.msgs().len(), 2);
}

#[test]
fn message_storm_keeps_the_host_bounded_and_alive() {
    let mut g = Guest::connected(2);
    let c = g.open(2, 2, 2);
    // Unfinished GPADL headers: bounded by MAX_GPADLS.
    for h in 0..(MAX_GPADLS as u32 + 500) {
        let mut m = msg(CHANNELMSG_GPADL_HEADER, 28);
        put(&mut m, 12, &(0x10_0000 + h).to_le_bytes());
        put(&mut m, 16, &4000u16.to_le_bytes());
        put(&mut m, 18, &1u16.to_le_bytes());
        g.post(&m);
    }
    assert!(g.host.status().gpadls <= MAX_GPADLS);
    g.sink.take();
    // Pseudo-random messages of every type and length.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = (x % 241) as usize;
        let mut m: Vec<u8> = (0..len).map(|i| (x >> (i % 56)) as u8).collect();
        if len >= 4 {
            // Types 0..=13: never INITIATE_CONTACT or UNLOAD (they would reset).
            let ty = ((x >> 8) % 14) as u32;
            put(&mut m, 0, &ty.to_le_bytes());
        }
        g.post(&m);
        g.host
            .on_signal_event(0, (x >> 20) as u32 % 0x2010, (x >> 40) as u16);
    }
    g.sink.take();
    // Channel 2 still works unless the storm closed it legitimately; reopen if needed.
    let s = g.host.status();
    assert!(s.connection.is_some());
    assert!(s.gpadls <= MAX_GPADLS);
    if s.open.contains(&2) {
        let w = c.out.get(&g.mem, 0);
        let r = c.out.get(&g.mem, 4);
        assert!(w < c.out.size() && r < c.out.size());
    }
}
