//! Random guest packets never panic the devices: each is answered (one completion for
//! storvsc) or refused with a DeviceError, and the devices keep working afterwards.

use hypervisor::abi::netvsc::{
    MSG1_SEND_RECV_BUF, MSG1_SEND_RNDIS_PKT, MSG1_SEND_SEND_BUF, MSG_INIT, VERSION_61,
};
use hypervisor::abi::storvsc::*;
use hypervisor::virtio::{DiskConfig, NetConfig};
use hypervisor::vmbus::device::{GpaRange, OutPacket, Packet, PacketKind, VmbusDevice};
use hypervisor::vmbus::netvsc::NetVsc;
use hypervisor::vmbus::rndis::{self, Rndis};
use hypervisor::vmbus::storvsc::StorVsc;
use proptest::prelude::*;

use crate::fake::*;

fn kind() -> impl Strategy<Value = PacketKind> {
    prop_oneof![
        Just(PacketKind::InBand),
        Just(PacketKind::GpaDirect),
        Just(PacketKind::XferPages),
        Just(PacketKind::Completion),
    ]
}

fn range() -> impl Strategy<Value = GpaRange> {
    (
        any::<u32>().prop_map(|l| l % 20_000),
        0u32..4200,
        prop::collection::vec(
            prop_oneof![0u64..4096, Just(u64::MAX), (RAM / 4096)..(RAM / 4096 + 4)],
            0..6,
        ),
    )
        .prop_map(|(len, offset, pfns)| GpaRange { len, offset, pfns })
}

/// A payload: random bytes, or a valid-looking head (operation / message type) with random
/// bytes after it.
fn payload(heads: Vec<u32>) -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(heads),
        prop::collection::vec(any::<u8>(), 0..80),
        any::<bool>(),
    )
        .prop_map(|(head, mut rest, raw)| {
            if !raw && rest.len() >= 4 {
                rest[0..4].copy_from_slice(&head.to_le_bytes());
            }
            rest
        })
}

fn packet(heads: Vec<u32>) -> impl Strategy<Value = Packet> {
    (
        kind(),
        any::<bool>(),
        0u64..8,
        payload(heads),
        prop::collection::vec(range(), 0..3),
    )
        .prop_map(
            |(kind, completion_requested, transaction_id, payload, ranges)| Packet {
                kind,
                completion_requested,
                transaction_id,
                payload,
                ranges,
            },
        )
}

/// RNDIS-looking bytes: a message type the host knows, a length near the real one, and
/// random fields (offsets and lengths inside included).
fn rndis_bytes() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(vec![1u32, 2, 3, 4, 5, 6, 8, 0x8000_0004]),
        prop::collection::vec(any::<u8>(), 0..120),
        -8i64..8,
        prop::collection::vec((0usize..48, 0u32..200), 0..4),
    )
        .prop_map(|(t, mut m, slack, fields)| {
            m.resize(m.len().max(8), 0);
            m[0..4].copy_from_slice(&t.to_le_bytes());
            let len = (m.len() as i64 + slack).max(0) as u32;
            m[4..8].copy_from_slice(&len.to_le_bytes());
            for (at, v) in fields {
                let at = 8 + (at / 4) * 4;
                if at + 4 <= m.len() {
                    m[at..at + 4].copy_from_slice(&v.to_le_bytes());
                }
            }
            m
        })
}

fn image() -> tempfile::TempPath {
    let mut f = tempfile::Builder::new()
        .prefix("hvcert-storvsc-prop-")
        .tempfile()
        .unwrap();
    std::io::Write::write_all(&mut f, &vec![7u8; 64 * 512]).unwrap();
    f.into_temp_path()
}

fn init(op: u32, version: u16) -> Packet {
    let mut p = vec![0u8; PACKET_LEN];
    p[0..4].copy_from_slice(&op.to_le_bytes());
    p[12..14].copy_from_slice(&version.to_le_bytes());
    inband(1, p)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn storvsc_never_panics(pkts in prop::collection::vec(packet(vec![OP_EXECUTE_SRB, OP_QUERY_PROTOCOL_VERSION, OP_BEGIN_INITIALIZATION, 99]), 1..12), cold in any::<bool>()) {
        let img = image();
        let mut d = StorVsc::new(&DiskConfig { path: img.to_path_buf(), read_only: false }).unwrap();
        let mut f = Fake::new();
        if !cold {
            for op in [OP_BEGIN_INITIALIZATION, OP_QUERY_PROTOCOL_VERSION, OP_QUERY_PROPERTIES, OP_END_INITIALIZATION] {
                d.on_packet(&mut f, &init(op, VERSION_WIN10)).unwrap();
            }
            f.take();
        }
        for p in &pkts {
            let r = d.on_packet(&mut f, p);
            let sent = f.take();
            match r {
                Ok(()) => {
                    let one = matches!(&sent[..], [OutPacket::Completion { payload, .. }] if payload.len() == PACKET_LEN);
                    prop_assert!(one, "one full-size completion: {:?}", sent);
                }
                Err(_) => prop_assert!(sent.is_empty()),
            }
        }
        // Still a working controller.
        for op in [OP_BEGIN_INITIALIZATION, OP_QUERY_PROTOCOL_VERSION, OP_END_INITIALIZATION] {
            d.on_packet(&mut f, &init(op, VERSION_WIN10)).unwrap();
        }
        let sent = f.take();
        let ok = sent.iter().all(|p| matches!(p, OutPacket::Completion { payload, .. } if le32(payload, 8) == STATUS_SUCCESS));
        prop_assert!(ok, "controller works again: {:?}", sent);
    }

    #[test]
    fn netvsc_never_panics(pkts in prop::collection::vec(packet(vec![MSG_INIT, MSG1_SEND_RNDIS_PKT, MSG1_SEND_RECV_BUF, MSG1_SEND_SEND_BUF, 103, 106, 133]), 1..16), section in rndis_bytes(), cold in any::<bool>()) {
        let mut f = Fake::new();
        f.gpadls.insert(1, (0x400..0x404).collect());
        f.gpadls.insert(2, (0x500..0x510).collect());
        f.write(0x50_0000, &section);
        let mut d = NetVsc::new(&NetConfig::Loopback, [0, 1, 2, 3, 4, 5]).unwrap();
        if !cold {
            let mut m = |t: u32, w: &[u32]| {
                let mut v = t.to_le_bytes().to_vec();
                for x in w { v.extend_from_slice(&x.to_le_bytes()); }
                v.resize(40, 0);
                d.on_packet(&mut f, &inband(1, v)).unwrap();
            };
            m(MSG_INIT, &[VERSION_61, VERSION_61]);
            m(MSG1_SEND_RECV_BUF, &[1, 0xcafe]);
            m(MSG1_SEND_SEND_BUF, &[2, 0]);
        }
        // The section's RNDIS bytes, sent from send section 0 before and after the rest.
        let mut from_section = MSG1_SEND_RNDIS_PKT.to_le_bytes().to_vec();
        for w in [0u32, 0, section.len() as u32] {
            from_section.extend_from_slice(&w.to_le_bytes());
        }
        from_section.resize(40, 0);
        let from_section = inband(9, from_section);
        for p in std::iter::once(&from_section).chain(&pkts).chain(std::iter::once(&from_section)) {
            let _ = d.on_packet(&mut f, p);
            let _ = d.poll(&mut f);
        }
        prop_assert!(d.sections_in_flight() <= 4 * 4096 / 1728);
    }

    #[test]
    fn rndis_parsers_never_panic(buf in prop::collection::vec(any::<u8>(), 0..200), t in prop::sample::select(vec![1u32, 2, 3, 4, 5, 6, 8, 0x8000_0002]), len in 0u32..300) {
        let mut m = buf.clone();
        if m.len() >= 8 {
            m[0..4].copy_from_slice(&t.to_le_bytes());
            m[4..8].copy_from_slice(&len.to_le_bytes());
        }
        let mut r = Rndis::new([0; 6], 1500);
        if let Ok(msgs) = rndis::split(&m) {
            for x in msgs {
                let _ = rndis::packet_frame(x);
                let _ = r.control(x);
            }
        }
        let _ = rndis::packet_frame(&buf);
        let _ = r.control(&buf);
    }
}
