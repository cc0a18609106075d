//! netvsc: NVSP negotiation and buffers, RNDIS control, frames both ways on loopback, and
//! malformed input.

use hypervisor::abi::netvsc::MSG_INIT;
use hypervisor::abi::netvsc::*;
use hypervisor::abi::rndis::MSG_INIT as RNDIS_INIT;
use hypervisor::abi::rndis::*;
use hypervisor::virtio::{NetConfig, NetStats};
use hypervisor::vmbus::device::{
    DeviceError, GpaRange, OutPacket, Packet, PacketKind, VmbusDevice,
};
use hypervisor::vmbus::netvsc::{NetVsc, MAX_SECTIONS};

use crate::fake::*;

const MAC: [u8; 6] = [0x00, 0x15, 0x5d, 0x01, 0x02, 0x03];
const RECV_GPADL: u32 = 7;
const SEND_GPADL: u32 = 8;
/// Receive buffer: 64 pages, given in reverse order (not physically contiguous).
const RECV_BASE_PFN: u64 = 0x400;
const RECV_PAGES: u64 = 64;
/// Send buffer: 16 contiguous pages.
const SEND_BASE: u64 = 0x80_0000;
/// Scratch for GPA-direct messages.
const SCRATCH: u64 = 0xa0_0000;

fn recv_pfns() -> Vec<u64> {
    (RECV_BASE_PFN..RECV_BASE_PFN + RECV_PAGES).rev().collect()
}

fn nvsp(msg_type: u32, words: &[u32]) -> Vec<u8> {
    let mut m = msg_type.to_le_bytes().to_vec();
    for w in words {
        m.extend_from_slice(&w.to_le_bytes());
    }
    m.resize(MESSAGE_LEN, 0);
    m
}

fn buf_msg(msg_type: u32, gpadl: u32, id: u16) -> Vec<u8> {
    let mut m = nvsp(msg_type, &[gpadl]);
    m[8..10].copy_from_slice(&id.to_le_bytes());
    m
}

fn ask(d: &mut NetVsc, f: &mut Fake, p: Packet) -> Vec<u8> {
    let tid = p.transaction_id;
    d.on_packet(f, &p).expect("well-formed packet");
    let (t, payload) = only_completion(&f.take());
    assert_eq!(t, tid);
    assert_eq!(payload.len(), MESSAGE_LEN);
    payload
}

fn fake() -> Fake {
    let mut f = Fake::new();
    f.gpadls.insert(RECV_GPADL, recv_pfns());
    f.gpadls.insert(
        SEND_GPADL,
        (SEND_BASE / 4096..SEND_BASE / 4096 + 16).collect(),
    );
    f
}

/// NVSP bring-up as Linux does it (6.1, NDIS 6.30, receive then send buffer).
fn up(d: &mut NetVsc, f: &mut Fake) {
    let a = ask(d, f, inband(1, nvsp(MSG_INIT, &[VERSION_61, VERSION_61])));
    assert_eq!(
        (le32(&a, 0), le32(&a, 4), le32(&a, 12)),
        (MSG_INIT_COMPLETE, VERSION_61, STAT_SUCCESS)
    );
    let mut p = inband(2, nvsp(MSG1_SEND_NDIS_VER, &[6, 30]));
    p.completion_requested = false;
    d.on_packet(f, &p).unwrap();
    let mut p = inband(3, nvsp(MSG2_SEND_NDIS_CONFIG, &[1514, 0, 8, 0]));
    p.completion_requested = false;
    d.on_packet(f, &p).unwrap();
    assert!(f.take().is_empty(), "no answers to NDIS version/config");
    let a = ask(
        d,
        f,
        inband(
            4,
            buf_msg(MSG1_SEND_RECV_BUF, RECV_GPADL, RECEIVE_BUFFER_ID),
        ),
    );
    let sections = (RECV_PAGES * 4096 / u64::from(RECV_SECTION_SIZE)) as u32;
    assert_eq!(
        (0..7).map(|i| le32(&a, 4 * i)).collect::<Vec<_>>(),
        [
            MSG1_SEND_RECV_BUF_COMPLETE,
            STAT_SUCCESS,
            1,
            0,
            RECV_SECTION_SIZE,
            sections,
            sections * RECV_SECTION_SIZE
        ]
    );
    let a = ask(
        d,
        f,
        inband(5, buf_msg(MSG1_SEND_SEND_BUF, SEND_GPADL, SEND_BUFFER_ID)),
    );
    assert_eq!(
        (le32(&a, 0), le32(&a, 4), le32(&a, 8)),
        (MSG1_SEND_SEND_BUF_COMPLETE, STAT_SUCCESS, SEND_SECTION_SIZE)
    );
}

/// Reads `len` bytes at `off` of the receive buffer through its (reversed) pages.
fn recv_read(f: &Fake, off: u32, len: u32) -> Vec<u8> {
    let pfns = recv_pfns();
    (off..off + len)
        .map(|o| {
            let gpa = pfns[(o / 4096) as usize] * 4096 + u64::from(o % 4096);
            f.read(gpa, 1)[0]
        })
        .collect()
}

/// One XferPages packet: (transaction id, channel type, RNDIS bytes).
fn received(f: &Fake, p: &OutPacket) -> (u64, u32, Vec<u8>) {
    let OutPacket::XferPages {
        transaction_id,
        xfer_pageset_id,
        ranges,
        payload,
    } = p
    else {
        panic!("XferPages expected, got {p:?}");
    };
    assert_eq!(*xfer_pageset_id, RECEIVE_BUFFER_ID);
    assert_eq!(
        (le32(payload, 0), le32(payload, 8)),
        (MSG1_SEND_RNDIS_PKT, NO_SECTION)
    );
    assert_eq!(ranges.len(), 1);
    let (len, off) = ranges[0];
    assert!(len <= RECV_SECTION_SIZE && off % RECV_SECTION_SIZE == 0);
    (*transaction_id, le32(payload, 4), recv_read(f, off, len))
}

/// Sends RNDIS bytes in send section `index`; returns the NVSP completion status and the
/// packets that followed it.
fn rndis_in_section(
    d: &mut NetVsc,
    f: &mut Fake,
    tid: u64,
    channel: u32,
    index: u32,
    msg: &[u8],
) -> (u32, Vec<OutPacket>) {
    f.write(
        SEND_BASE + u64::from(index) * u64::from(SEND_SECTION_SIZE),
        msg,
    );
    let p = inband(
        tid,
        nvsp(MSG1_SEND_RNDIS_PKT, &[channel, index, msg.len() as u32]),
    );
    d.on_packet(f, &p).expect("well-formed NVSP");
    split_completion(f, tid)
}

fn split_completion(f: &mut Fake, tid: u64) -> (u32, Vec<OutPacket>) {
    let mut sent = f.take();
    assert!(!sent.is_empty());
    let OutPacket::Completion {
        transaction_id,
        payload,
    } = sent.remove(0)
    else {
        panic!("completion first");
    };
    assert_eq!(transaction_id, tid);
    assert_eq!(le32(&payload, 0), MSG1_SEND_RNDIS_PKT_COMPLETE);
    (le32(&payload, 4), sent)
}

/// Gives a receive section back, as the guest does after consuming it.
fn give_back(d: &mut NetVsc, f: &mut Fake, tid: u64) {
    let p = Packet {
        kind: PacketKind::Completion,
        completion_requested: false,
        transaction_id: tid,
        payload: nvsp(MSG1_SEND_RNDIS_PKT_COMPLETE, &[STAT_SUCCESS]),
        ranges: Vec::new(),
    };
    d.on_packet(f, &p).expect("completion of a lent section");
}

fn rndis_msg(t: u32, body: &[u32], extra: &[u8]) -> Vec<u8> {
    let mut m = t.to_le_bytes().to_vec();
    let len = 8 + 4 * body.len() + extra.len();
    m.extend_from_slice(&(len as u32).to_le_bytes());
    for w in body {
        m.extend_from_slice(&w.to_le_bytes());
    }
    m.extend_from_slice(extra);
    m
}

/// A control request in section 0, its answer read and the section given back.
fn control(d: &mut NetVsc, f: &mut Fake, msg: &[u8]) -> Vec<u8> {
    let (status, sent) = rndis_in_section(d, f, 50, CHANNEL_CONTROL, 0, msg);
    assert_eq!(status, STAT_SUCCESS);
    assert_eq!(sent.len(), 1, "one answer: {sent:?}");
    let (tid, channel, answer) = received(f, &sent[0]);
    assert_eq!(channel, CHANNEL_CONTROL);
    give_back(d, f, tid);
    answer
}

fn query(d: &mut NetVsc, f: &mut Fake, oid: u32) -> (u32, Vec<u8>) {
    let a = control(d, f, &rndis_msg(MSG_QUERY, &[9, oid, 0, 20, 0], &[]));
    assert_eq!(
        (le32(&a, 0), le32(&a, 4) as usize, le32(&a, 8)),
        (MSG_QUERY_C, a.len(), 9)
    );
    let (len, off) = (le32(&a, 16) as usize, le32(&a, 20) as usize);
    (le32(&a, 12), a[8 + off..8 + off + len].to_vec())
}

fn set(d: &mut NetVsc, f: &mut Fake, oid: u32, value: &[u8]) -> u32 {
    let a = control(
        d,
        f,
        &rndis_msg(MSG_SET, &[10, oid, value.len() as u32, 20, 0], value),
    );
    assert_eq!((le32(&a, 0), le32(&a, 8)), (MSG_SET_C, 10));
    le32(&a, 12)
}

fn initialized(d: &mut NetVsc, f: &mut Fake) {
    up(d, f);
    let a = control(d, f, &rndis_msg(RNDIS_INIT, &[1, 1, 0, 0x4000], &[]));
    assert_eq!(
        (le32(&a, 0), le32(&a, 8), le32(&a, 12)),
        (MSG_INIT_C, 1, STATUS_SUCCESS)
    );
    assert_eq!((le32(&a, 16), le32(&a, 28)), (1, MEDIUM_802_3));
    assert!(le32(&a, 32) >= 1, "max_pkt_per_msg");
}

fn device() -> NetVsc {
    NetVsc::new(&NetConfig::Loopback, MAC).unwrap()
}

fn frame(n: usize, tag: u8) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&MAC);
    f.extend_from_slice(&[0x88, 0xb5]);
    f.extend((0..n).map(|i| (i as u8) ^ tag));
    f
}

fn packet_msg(fr: &[u8]) -> Vec<u8> {
    rndis_msg(MSG_PACKET, &[36, fr.len() as u32, 0, 0, 0, 0, 0, 0, 0], fr)
}

#[test]
fn nvsp_version_negotiation() {
    let mut f = fake();
    for v in VERSIONS {
        let mut d = device();
        let a = ask(&mut d, &mut f, inband(1, nvsp(MSG_INIT, &[v, v])));
        assert_eq!(
            (le32(&a, 4), le32(&a, 12)),
            (v, STAT_SUCCESS),
            "version {v:#x}"
        );
        assert_eq!(d.version(), Some(v));
    }
    let mut d = device();
    let a = ask(
        &mut d,
        &mut f,
        inband(1, nvsp(MSG_INIT, &[VERSION_1, 0xffff_ffff])),
    );
    assert_eq!(le32(&a, 4), VERSION_61, "newest in range");
    for (min, max) in [
        (0x10, 0x20),
        (0x70000, 0x70000),
        (VERSION_5 + 1, VERSION_6 - 1),
        (5, 1),
    ] {
        let mut d = device();
        let a = ask(&mut d, &mut f, inband(1, nvsp(MSG_INIT, &[min, max])));
        assert_eq!(le32(&a, 12), STAT_FAIL, "{min:#x}..{max:#x}");
        assert_eq!(d.version(), None);
        // No buffers before a version.
        let a = ask(
            &mut d,
            &mut f,
            inband(
                2,
                buf_msg(MSG1_SEND_RECV_BUF, RECV_GPADL, RECEIVE_BUFFER_ID),
            ),
        );
        assert_eq!(le32(&a, 4), STAT_FAIL);
    }
}

#[test]
fn rndis_control_messages() {
    let (mut d, mut f) = (device(), fake());
    initialized(&mut d, &mut f);
    assert_eq!(
        query(&mut d, &mut f, OID_802_3_PERMANENT_ADDRESS),
        (STATUS_SUCCESS, MAC.to_vec())
    );
    assert_eq!(
        query(&mut d, &mut f, OID_802_3_CURRENT_ADDRESS),
        (STATUS_SUCCESS, MAC.to_vec())
    );
    assert_eq!(
        query(&mut d, &mut f, OID_GEN_MAXIMUM_FRAME_SIZE),
        (STATUS_SUCCESS, 1500u32.to_le_bytes().to_vec())
    );
    assert_eq!(
        query(&mut d, &mut f, OID_GEN_MEDIA_CONNECT_STATUS),
        (STATUS_SUCCESS, MEDIA_STATE_CONNECTED.to_le_bytes().to_vec())
    );
    let (s, speed) = query(&mut d, &mut f, OID_GEN_LINK_SPEED);
    assert_eq!((s, le32(&speed, 0)), (STATUS_SUCCESS, 100_000_000));
    // Offload capabilities: the NDIS object Linux validates (type, revision, size).
    let (s, caps) = query(&mut d, &mut f, OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES);
    assert_eq!(s, STATUS_SUCCESS);
    assert_eq!(
        (caps[0], caps[1]),
        (NDIS_OBJECT_TYPE_OFFLOAD, NDIS_OFFLOAD_REVISION_1)
    );
    let size = u16::from_le_bytes([caps[2], caps[3]]);
    assert!(size >= NDIS_OFFLOAD_SIZE_6_0 && usize::from(size) <= caps.len());
    // RSS and unknown OIDs: not supported, no data.
    for oid in [OID_GEN_RECEIVE_SCALE_CAPABILITIES, 0x0001_0116, 0xdead_beef] {
        assert_eq!(
            query(&mut d, &mut f, oid),
            (STATUS_NOT_SUPPORTED, vec![]),
            "oid {oid:#x}"
        );
    }
    // Sets.
    assert_eq!(d.rndis().filter, 0);
    assert_eq!(
        set(
            &mut d,
            &mut f,
            OID_GEN_CURRENT_PACKET_FILTER,
            &0x0bu32.to_le_bytes()
        ),
        STATUS_SUCCESS
    );
    assert_eq!(d.rndis().filter, 0x0b);
    assert_eq!(
        set(&mut d, &mut f, OID_GEN_CURRENT_PACKET_FILTER, &[1, 2]),
        STATUS_INVALID_LENGTH
    );
    assert_eq!(
        set(
            &mut d,
            &mut f,
            OID_TCP_OFFLOAD_PARAMETERS,
            &[0x80, 3, 22, 0, 1, 0]
        ),
        STATUS_SUCCESS
    );
    assert_eq!(
        set(&mut d, &mut f, OID_GEN_RNDIS_CONFIG_PARAMETER, &[0; 20]),
        STATUS_NOT_SUPPORTED
    );
    // Keepalive; halt has no answer.
    let a = control(&mut d, &mut f, &rndis_msg(MSG_KEEPALIVE, &[77], &[]));
    assert_eq!(
        (le32(&a, 0), le32(&a, 8), le32(&a, 12)),
        (MSG_KEEPALIVE_C, 77, STATUS_SUCCESS)
    );
    let a = control(&mut d, &mut f, &rndis_msg(MSG_RESET, &[0], &[]));
    assert_eq!((le32(&a, 0), le32(&a, 8)), (MSG_RESET_C, STATUS_SUCCESS));
    let (status, sent) = rndis_in_section(
        &mut d,
        &mut f,
        60,
        CHANNEL_CONTROL,
        1,
        &rndis_msg(MSG_HALT, &[5], &[]),
    );
    assert_eq!((status, sent.len()), (STAT_SUCCESS, 0));
    assert!(!d.rndis().initialized);
    // Every lent section came back.
    assert_eq!(d.sections_in_flight(), 0);
}

#[test]
fn loopback_frames_come_back_in_the_receive_buffer() {
    let (mut d, mut f) = (device(), fake());
    initialized(&mut d, &mut f);
    let stats = d.stats();
    // No packet filter yet: the looped frame is not indicated.
    let (status, sent) = rndis_in_section(
        &mut d,
        &mut f,
        70,
        CHANNEL_DATA,
        2,
        &packet_msg(&frame(50, 1)),
    );
    assert_eq!((status, sent.len()), (STAT_SUCCESS, 0));
    assert_eq!(NetStats::get(&stats.rx_dropped), 1);
    assert_eq!(
        set(
            &mut d,
            &mut f,
            OID_GEN_CURRENT_PACKET_FILTER,
            &0x0bu32.to_le_bytes()
        ),
        STATUS_SUCCESS
    );
    // Through a send section.
    let fr = frame(1500 - 14 + 14 - 14, 2);
    let (status, sent) = rndis_in_section(&mut d, &mut f, 71, CHANNEL_DATA, 3, &packet_msg(&fr));
    assert_eq!((status, sent.len()), (STAT_SUCCESS, 1));
    let (tid, channel, back) = received(&f, &sent[0]);
    assert_eq!(
        (channel, le32(&back, 0), le32(&back, 4) as usize),
        (CHANNEL_DATA, MSG_PACKET, back.len())
    );
    let (off, len) = (le32(&back, 8) as usize, le32(&back, 12) as usize);
    assert_eq!(&back[8 + off..8 + off + len], &fr[..]);
    give_back(&mut d, &mut f, tid);
    // Through GPA-direct pages: RNDIS header in one range, the frame in another.
    let fr = frame(300, 3);
    let msg = packet_msg(&fr);
    f.write(SCRATCH + 0xff0, &msg[..44]);
    f.write(SCRATCH + 0x3000 + 0x123, &msg[44..]);
    let p = Packet {
        kind: PacketKind::GpaDirect,
        completion_requested: true,
        transaction_id: 72,
        payload: nvsp(MSG1_SEND_RNDIS_PKT, &[CHANNEL_DATA, NO_SECTION, 0]),
        ranges: vec![
            GpaRange {
                len: 44,
                offset: 0xff0,
                pfns: vec![SCRATCH / 4096, SCRATCH / 4096 + 1],
            },
            GpaRange {
                len: fr.len() as u32,
                offset: 0x123,
                pfns: vec![SCRATCH / 4096 + 3],
            },
        ],
    };
    d.on_packet(&mut f, &p).unwrap();
    let (status, sent) = split_completion(&mut f, 72);
    assert_eq!((status, sent.len()), (STAT_SUCCESS, 1));
    let (tid, _, back) = received(&f, &sent[0]);
    assert_eq!(&back[44..], &fr[..]);
    give_back(&mut d, &mut f, tid);
    assert_eq!(
        (
            NetStats::get(&stats.tx_frames),
            NetStats::get(&stats.rx_frames)
        ),
        (3, 2)
    );
    // Oversized and runt frames are dropped, the packet still completes.
    for n in [1600, 2] {
        let mut fr = frame(0, 0);
        fr.resize(n, 0);
        let (status, sent) =
            rndis_in_section(&mut d, &mut f, 73, CHANNEL_DATA, 0, &packet_msg(&fr));
        assert_eq!((status, sent.len()), (STAT_SUCCESS, 0), "{n}-byte frame");
    }
    assert_eq!(NetStats::get(&stats.tx_dropped), 2);
}

#[test]
fn frames_wait_for_free_sections() {
    let (mut d, mut f) = (device(), fake());
    // A one-page receive buffer: two sections.
    f.gpadls
        .insert(RECV_GPADL, vec![RECV_BASE_PFN + RECV_PAGES - 1]);
    ask(
        &mut d,
        &mut f,
        inband(1, nvsp(MSG_INIT, &[VERSION_61, VERSION_61])),
    );
    let a = ask(
        &mut d,
        &mut f,
        inband(
            2,
            buf_msg(MSG1_SEND_RECV_BUF, RECV_GPADL, RECEIVE_BUFFER_ID),
        ),
    );
    assert_eq!(le32(&a, 20), 2, "two sections");
    ask(
        &mut d,
        &mut f,
        inband(3, buf_msg(MSG1_SEND_SEND_BUF, SEND_GPADL, SEND_BUFFER_ID)),
    );
    let (_, sent) = rndis_in_section(
        &mut d,
        &mut f,
        4,
        CHANNEL_CONTROL,
        0,
        &rndis_msg(RNDIS_INIT, &[1, 1, 0, 0x4000], &[]),
    );
    let (t_init, ..) = received(&f, &sent[0]);
    let (_, sent) = rndis_in_section(
        &mut d,
        &mut f,
        5,
        CHANNEL_CONTROL,
        0,
        &rndis_msg(
            MSG_SET,
            &[2, OID_GEN_CURRENT_PACKET_FILTER, 4, 20, 0],
            &1u32.to_le_bytes(),
        ),
    );
    let (t_set, ..) = received(&f, &sent[0]);
    // Both sections are lent: the next frame waits.
    let (status, sent) = rndis_in_section(
        &mut d,
        &mut f,
        6,
        CHANNEL_DATA,
        1,
        &packet_msg(&frame(100, 9)),
    );
    assert_eq!((status, sent.len()), (STAT_SUCCESS, 0));
    d.poll(&mut f).unwrap();
    assert!(f.take().is_empty());
    give_back(&mut d, &mut f, t_init);
    let sent = f.take();
    assert_eq!(sent.len(), 1, "the waiting frame goes out");
    let (_, channel, back) = received(&f, &sent[0]);
    assert_eq!((channel, &back[44..]), (CHANNEL_DATA, &frame(100, 9)[..]));
    // A completion for a transaction never sent (or already completed) is refused.
    give_back(&mut d, &mut f, t_set);
    let again = Packet {
        kind: PacketKind::Completion,
        completion_requested: false,
        transaction_id: t_set,
        payload: vec![],
        ranges: vec![],
    };
    assert!(matches!(
        d.on_packet(&mut f, &again),
        Err(DeviceError::Malformed(_))
    ));
}

#[test]
fn malformed_input_gets_protocol_errors() {
    let (mut d, mut f) = (device(), fake());
    // NVSP messages too short, unknown types: refused.
    for m in [
        vec![],
        vec![1, 0],
        nvsp(MSG_INIT, &[])[..8].to_vec(),
        nvsp(MSG1_SEND_RNDIS_PKT, &[])[..12].to_vec(),
        nvsp(999, &[]),
        nvsp(MSG1_SEND_RECV_BUF_COMPLETE, &[]),
    ] {
        let r = d.on_packet(&mut f, &inband(1, m.clone()));
        assert!(matches!(r, Err(DeviceError::Malformed(_))), "{m:?}: {r:?}");
        assert!(f.take().is_empty());
    }
    initialized(&mut d, &mut f);
    // A second receive buffer, or an unknown GPADL: FAIL.
    let a = ask(
        &mut d,
        &mut f,
        inband(
            2,
            buf_msg(MSG1_SEND_RECV_BUF, RECV_GPADL, RECEIVE_BUFFER_ID),
        ),
    );
    assert_eq!(le32(&a, 4), STAT_FAIL);
    let mut d2 = device();
    ask(
        &mut d2,
        &mut f,
        inband(3, nvsp(MSG_INIT, &[VERSION_5, VERSION_5])),
    );
    let a = ask(
        &mut d2,
        &mut f,
        inband(4, buf_msg(MSG1_SEND_SEND_BUF, 12345, 0)),
    );
    assert_eq!(le32(&a, 4), STAT_FAIL);
    // A huge receive buffer: sections capped so offsets stay 32-bit.
    let mut d3 = device();
    f.gpadls.insert(99, (0..2_000_000u64).collect());
    ask(
        &mut d3,
        &mut f,
        inband(3, nvsp(MSG_INIT, &[VERSION_5, VERSION_5])),
    );
    let a = ask(
        &mut d3,
        &mut f,
        inband(4, buf_msg(MSG1_SEND_RECV_BUF, 99, RECEIVE_BUFFER_ID)),
    );
    assert_eq!((le32(&a, 4), le32(&a, 20)), (STAT_SUCCESS, MAX_SECTIONS));
    assert_eq!(le32(&a, 24), MAX_SECTIONS * RECV_SECTION_SIZE);
    // Send sections out of range or too big; no send buffer at all.
    for (index, size) in [(1000, 16), (u32::MAX - 1, 16), (0, SEND_SECTION_SIZE + 1)] {
        let p = inband(
            5,
            nvsp(MSG1_SEND_RNDIS_PKT, &[CHANNEL_CONTROL, index, size]),
        );
        d.on_packet(&mut f, &p).unwrap();
        assert_eq!(
            split_completion(&mut f, 5),
            (STAT_FAIL, vec![]),
            "section {index} size {size}"
        );
    }
    let p = inband(6, nvsp(MSG1_SEND_RNDIS_PKT, &[CHANNEL_CONTROL, 0, 16]));
    d2.on_packet(&mut f, &p).unwrap();
    assert_eq!(split_completion(&mut f, 6).0, STAT_FAIL);
    // RNDIS lengths that lie.
    let keep = rndis_msg(MSG_KEEPALIVE, &[1], &[]);
    let mut long = keep.clone();
    long[4..8].copy_from_slice(&100u32.to_le_bytes());
    let mut short = keep.clone();
    short[4..8].copy_from_slice(&4u32.to_le_bytes());
    let fr = frame(60, 1);
    let mut bad_off = packet_msg(&fr);
    bad_off[8..12].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    let mut bad_len = packet_msg(&fr);
    bad_len[12..16].copy_from_slice(&(fr.len() as u32 + 1).to_le_bytes());
    let mut inside_hdr = packet_msg(&fr);
    inside_hdr[8..12].copy_from_slice(&4u32.to_le_bytes());
    let trailing = [keep.clone(), vec![1, 2, 3]].concat();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("msg_len past the buffer", long),
        ("msg_len below the header", short),
        ("data_offset past the message", bad_off),
        ("data_len past the message", bad_len),
        ("data inside the header", inside_hdr),
        ("truncated query", rndis_msg(MSG_QUERY, &[1, 2], &[])),
        ("truncated init", rndis_msg(RNDIS_INIT, &[1], &[])),
        ("unknown type", rndis_msg(0x77, &[1], &[])),
        (
            "completion type from the guest",
            rndis_msg(MSG_INIT_C, &[1, 0], &[]),
        ),
        ("trailing bytes", trailing),
        ("nothing", vec![]),
    ];
    for (what, m) in cases {
        let (status, sent) = rndis_in_section(&mut d, &mut f, 7, CHANNEL_CONTROL, 0, &m);
        assert_eq!((status, sent.len()), (STAT_INVALID_RNDIS_PKT, 0), "{what}");
    }
    // A set whose value lies outside the message: the RNDIS error.
    let mut m = rndis_msg(
        MSG_SET,
        &[3, OID_GEN_CURRENT_PACKET_FILTER, 4, 200, 0],
        &[1, 0, 0, 0],
    );
    let a = control(&mut d, &mut f, &m);
    assert_eq!(
        (le32(&a, 0), le32(&a, 12)),
        (MSG_SET_C, STATUS_INVALID_DATA)
    );
    m[20..24].copy_from_slice(&4u32.to_le_bytes());
    assert_eq!(
        le32(&control(&mut d, &mut f, &m), 12),
        STATUS_INVALID_DATA,
        "value inside the header"
    );
    // GPA-direct pages outside RAM, or more than a message may hold.
    for (gpa, len) in [(NOT_RAM, 64), (RAM - 16, 64), (SCRATCH, 128 * 1024)] {
        let p = gpa_direct(
            8,
            nvsp(MSG1_SEND_RNDIS_PKT, &[CHANNEL_CONTROL, NO_SECTION, 0]),
            gpa,
            len,
        );
        d.on_packet(&mut f, &p).unwrap();
        assert_ne!(
            split_completion(&mut f, 8).0,
            STAT_SUCCESS,
            "{gpa:#x}+{len}"
        );
    }
    // The device still works afterwards.
    assert_eq!(
        query(&mut d, &mut f, OID_802_3_PERMANENT_ADDRESS),
        (STATUS_SUCCESS, MAC.to_vec())
    );
    assert_eq!(d.sections_in_flight(), 0);
}

#[test]
fn tap_backend_if_permitted() {
    let name = format!("hvcv{}", std::process::id() % 100_000);
    match NetVsc::new(&NetConfig::Tap(name.clone()), MAC) {
        Ok(mut d) => {
            assert!(d.backend_fd().is_some());
            assert!(std::path::Path::new(&format!("/sys/class/net/{name}")).exists());
            let mut f = fake();
            initialized(&mut d, &mut f);
            let stats = d.stats();
            // A frame to a TAP that is down: dropped (or sent), completed, nothing comes back.
            let (status, sent) = rndis_in_section(
                &mut d,
                &mut f,
                90,
                CHANNEL_DATA,
                2,
                &packet_msg(&frame(60, 5)),
            );
            assert_eq!((status, sent.len()), (STAT_SUCCESS, 0));
            assert_eq!(
                NetStats::get(&stats.tx_frames) + NetStats::get(&stats.tx_dropped),
                1
            );
            d.poll(&mut f).unwrap();
        }
        Err(e) => eprintln!("skipping tap_backend_if_permitted: cannot create a TAP device: {e}"),
    }
    let err = NetVsc::new(&NetConfig::Tap("x".repeat(40)), MAC)
        .err()
        .expect("name too long");
    assert!(err.to_string().contains("TAP device"), "{err}");
}
