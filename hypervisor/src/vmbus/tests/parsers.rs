//! The message and packet parsers on their own: layouts, and arbitrary bytes never panic.
use proptest::prelude::*;

use super::*;
use crate::vmbus::msg::{self, Incoming, MsgError};
use crate::vmbus::packet::{self, PacketError};

#[test]
fn initiate_contact_fields_depend_on_the_version() {
    let m = msg::parse(&contact(VERSION_WIN8_1, 3)).unwrap();
    assert_eq!(
        m,
        Incoming::InitiateContact {
            version: VERSION_WIN8_1,
            target_vcpu: 3,
            msg_sint: MESSAGE_SINT,
            interrupt_page: 0x1000
        }
    );
    let mut c = contact(VERSION_WIN10_V5_1, 0);
    c[16] = 7;
    let Incoming::InitiateContact {
        msg_sint,
        interrupt_page,
        ..
    } = msg::parse(&c).unwrap()
    else {
        panic!()
    };
    assert_eq!((msg_sint, interrupt_page), (7, 0));
}

#[test]
fn message_errors() {
    assert_eq!(
        msg::parse(&[1, 2, 3]),
        Err(MsgError::TooShort {
            msgtype: 0,
            len: 3,
            need: 8
        })
    );
    assert_eq!(msg::parse(&[0; 241]), Err(MsgError::TooLong(241)));
    assert_eq!(msg::parse(&msg(0, 8)), Err(MsgError::BadType(0)));
    assert_eq!(msg::parse(&msg(25, 8)), Err(MsgError::BadType(25)));
    assert_eq!(msg::parse(&msg(21, 8)), Ok(Incoming::Unsupported(21)));
    assert_eq!(
        msg::parse(&msg(CHANNELMSG_GPADL_BODY, 17)),
        Err(MsgError::Ragged(1))
    );
}

#[test]
fn encoded_messages_have_linux_sizes() {
    assert_eq!(msg::version_response(true, 4).len(), 16);
    assert_eq!(msg::open_result(1, 2, 3).len(), 20);
    assert_eq!(msg::gpadl_created(1, 2, 3).len(), 20);
    assert_eq!(msg::gpadl_torndown(1).len(), 12);
    assert_eq!(msg::modify_channel_response(1, 0).len(), 16);
    assert_eq!(msg::header_only(CHANNELMSG_UNLOAD_RESPONSE).len(), 8);
}

#[test]
fn packet_layout_round_trip() {
    let out = OutPacket::InBand {
        transaction_id: 7,
        completion_requested: true,
        payload: vec![1, 2, 3],
    };
    let b = packet::encode(&out).unwrap();
    assert_eq!(b.len(), 24);
    let p = packet::parse(&b).unwrap();
    assert_eq!(p.kind, PacketKind::InBand);
    assert!(p.completion_requested);
    assert_eq!(p.transaction_id, 7);
    assert_eq!(p.payload, vec![1, 2, 3, 0, 0, 0, 0, 0]);
    let c = packet::encode(&OutPacket::Completion {
        transaction_id: 9,
        payload: vec![],
    })
    .unwrap();
    assert_eq!(c.len(), 16);
    assert_eq!(packet::parse(&c).unwrap().kind, PacketKind::Completion);
    // A payload a descriptor cannot describe (len8 is 16 bits).
    assert!(packet::encode(&OutPacket::Completion {
        transaction_id: 0,
        payload: vec![0; 1 << 19],
    })
    .is_none());
}

#[test]
fn packet_errors() {
    assert_eq!(packet::parse(&[0; 8]), Err(PacketError::Short));
    let mut b = vec![0u8; 32];
    put(&mut b, 0, &VM_PKT_DATA_INBAND.to_le_bytes());
    put(&mut b, 2, &1u16.to_le_bytes());
    put(&mut b, 4, &4u16.to_le_bytes());
    assert_eq!(packet::parse(&b), Err(PacketError::Offset));
    put(&mut b, 2, &5u16.to_le_bytes());
    assert_eq!(packet::parse(&b), Err(PacketError::Offset));
    put(&mut b, 0, &VM_PKT_DATA_USING_GPADL.to_le_bytes());
    put(&mut b, 2, &2u16.to_le_bytes());
    assert_eq!(
        packet::parse(&b),
        Err(PacketError::Type(VM_PKT_DATA_USING_GPADL))
    );
    // GPA direct: a range whose PFNs run past the header area; a zero-length range.
    put(&mut b, 0, &VM_PKT_DATA_USING_GPA_DIRECT.to_le_bytes());
    put(&mut b, 2, &4u16.to_le_bytes());
    put(&mut b, 20, &1u32.to_le_bytes());
    assert_eq!(packet::parse(&b), Err(PacketError::Ranges));
    let mut g = vec![0u8; 48];
    put(&mut g, 0, &VM_PKT_DATA_USING_GPA_DIRECT.to_le_bytes());
    put(&mut g, 2, &5u16.to_le_bytes());
    put(&mut g, 4, &6u16.to_le_bytes());
    put(&mut g, 20, &1u32.to_le_bytes());
    put(&mut g, 24, &4096u32.to_le_bytes());
    put(&mut g, 32, &0x55u64.to_le_bytes());
    assert_eq!(packet::parse(&g).unwrap().ranges[0].pfns, vec![0x55]);
    put(&mut g, 24, &0u32.to_le_bytes());
    assert_eq!(packet::parse(&g), Err(PacketError::Ranges));
    put(&mut g, 28, &4096u32.to_le_bytes());
    assert_eq!(
        packet::parse(&g),
        Err(PacketError::Ranges),
        "offset past the page"
    );
}

proptest! {
    #[test]
    fn arbitrary_messages_never_panic(b in proptest::collection::vec(any::<u8>(), 0..260),
                                      ty in 0u32..30) {
        let mut b = b;
        if b.len() >= 4 {
            b[..4].copy_from_slice(&ty.to_le_bytes());
        }
        let _ = msg::parse(&b);
    }

    #[test]
    fn arbitrary_packets_never_panic(b in proptest::collection::vec(any::<u8>(), 0..600),
                                     ty in prop::sample::select(vec![6u16, 7, 9, 11, 3]),
                                     off8 in 0u16..80, len8 in 0u16..80) {
        let mut b = b;
        if b.len() >= 8 {
            b[..2].copy_from_slice(&ty.to_le_bytes());
            b[2..4].copy_from_slice(&off8.to_le_bytes());
            b[4..6].copy_from_slice(&len8.to_le_bytes());
        }
        let _ = packet::parse(&b);
    }
}
