//! storvsc: VSTOR initialization, SCSI commands through GPA-direct ranges, errors.

use hypervisor::abi::storvsc::*;
use hypervisor::devices::scsi_target::{ASC_LBA_OUT_OF_RANGE, CHECK_CONDITION, ILLEGAL_REQUEST};
use hypervisor::virtio::DiskConfig;
use hypervisor::vmbus::device::{DeviceError, GpaRange, Packet, VmbusDevice};
use hypervisor::vmbus::storvsc::{StorVsc, MAX_TRANSFER_BYTES};

use crate::fake::*;

const BUF: u64 = 0x10_0000;

fn image(blocks: u64) -> tempfile::TempPath {
    let mut f = tempfile::Builder::new()
        .prefix("hvcert-storvsc-")
        .tempfile()
        .unwrap();
    let data: Vec<u8> = (0..blocks * 512).map(|i| (i % 251) as u8).collect();
    std::io::Write::write_all(&mut f, &data).unwrap();
    f.into_temp_path()
}

fn device(img: &tempfile::TempPath) -> StorVsc {
    StorVsc::new(&DiskConfig {
        path: img.to_path_buf(),
        read_only: false,
    })
    .unwrap()
}

/// A `vstor_packet` of `len` bytes with `op`.
fn vstor(op: u32, len: usize) -> Vec<u8> {
    let mut p = vec![0u8; len];
    p[0..4].copy_from_slice(&op.to_le_bytes());
    p[4..8].copy_from_slice(&REQUEST_COMPLETION_FLAG.to_le_bytes());
    p
}

fn version_query(v: u16) -> Vec<u8> {
    let mut p = vstor(OP_QUERY_PROTOCOL_VERSION, PACKET_LEN_PRE_WIN8);
    p[12..14].copy_from_slice(&v.to_le_bytes());
    p
}

/// Sends one packet and returns the completion payload (checking the transaction id).
fn ask(d: &mut StorVsc, f: &mut Fake, p: Packet) -> Vec<u8> {
    let tid = p.transaction_id;
    d.on_packet(f, &p).expect("well-formed packet");
    let (t, payload) = only_completion(&f.take());
    assert_eq!(t, tid);
    assert_eq!(le32(&payload, 0), OP_COMPLETE_IO);
    payload
}

/// Linux's initialization sequence (WIN10).
fn ready(d: &mut StorVsc, f: &mut Fake) {
    let a = ask(
        d,
        f,
        inband(1, vstor(OP_BEGIN_INITIALIZATION, PACKET_LEN_PRE_WIN8)),
    );
    assert_eq!(le32(&a, 8), STATUS_SUCCESS);
    let a = ask(d, f, inband(2, version_query(VERSION_WIN10)));
    assert_eq!(le32(&a, 8), STATUS_SUCCESS);
    ask(d, f, inband(3, vstor(OP_QUERY_PROPERTIES, PACKET_LEN)));
    let a = ask(d, f, inband(4, vstor(OP_END_INITIALIZATION, PACKET_LEN)));
    assert_eq!(le32(&a, 8), STATUS_SUCCESS);
}

/// An EXECUTE_SRB for LUN 0 with `cdb`.
fn srb_packet(cdb: &[u8], data_in: u8, xfer: u32) -> Vec<u8> {
    let mut p = vstor(OP_EXECUTE_SRB, PACKET_LEN);
    p[srb::LENGTH..srb::LENGTH + 2].copy_from_slice(&(VMSCSI_REQUEST_LEN as u16).to_le_bytes());
    p[srb::CDB_LENGTH] = cdb.len() as u8;
    p[srb::SENSE_INFO_LENGTH] = SENSE_BUFFER_SIZE as u8;
    p[srb::DATA_IN] = data_in;
    p[srb::DATA_TRANSFER_LENGTH..srb::DATA_TRANSFER_LENGTH + 4]
        .copy_from_slice(&xfer.to_le_bytes());
    p[srb::CDB..srb::CDB + cdb.len()].copy_from_slice(cdb);
    p
}

struct Srb {
    srb_status: u8,
    scsi_status: u8,
    sense: Vec<u8>,
    xfer: u32,
}

fn run(d: &mut StorVsc, f: &mut Fake, p: Packet) -> Srb {
    let a = ask(d, f, p);
    assert_eq!(a.len(), PACKET_LEN);
    assert_eq!(le32(&a, 8), STATUS_SUCCESS);
    let n = usize::from(a[srb::SENSE_INFO_LENGTH]);
    Srb {
        srb_status: a[srb::SRB_STATUS],
        scsi_status: a[srb::SCSI_STATUS],
        sense: a[srb::CDB..srb::CDB + n].to_vec(),
        xfer: le32(&a, srb::DATA_TRANSFER_LENGTH),
    }
}

fn rw10(op: u8, lba: u32, blocks: u16) -> Vec<u8> {
    let mut c = vec![op, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    c[2..6].copy_from_slice(&lba.to_be_bytes());
    c[7..9].copy_from_slice(&blocks.to_be_bytes());
    c
}

fn rw16(op: u8, lba: u64, blocks: u32) -> Vec<u8> {
    let mut c = vec![0u8; 16];
    c[0] = op;
    c[2..10].copy_from_slice(&lba.to_be_bytes());
    c[10..14].copy_from_slice(&blocks.to_be_bytes());
    c
}

#[test]
fn initialization_and_version_negotiation() {
    let img = image(64);
    let (mut d, mut f) = (device(&img), Fake::new());
    assert_eq!(d.class_id(), CLASS_ID);
    // Answers have the full size even to a pre-WIN8-sized question (Linux >= 5.16 drops
    // shorter ones; older kernels asked with 48 bytes and accept more).
    let a = ask(
        &mut d,
        &mut f,
        inband(1, vstor(OP_BEGIN_INITIALIZATION, PACKET_LEN_PRE_WIN8)),
    );
    assert_eq!(a.len(), PACKET_LEN);
    // A version we don't speak: refused the way Linux moves on to its next one.
    for v in [
        proto_version(7, 0),
        proto_version(2, 0),
        proto_version(5, 0),
    ] {
        let a = ask(&mut d, &mut f, inband(2, version_query(v)));
        assert_eq!(le32(&a, 8), STATUS_REVISION_MISMATCH, "version {v:#x}");
    }
    assert_eq!(d.version(), None);
    // I/O before END_INITIALIZATION is refused.
    let a = ask(
        &mut d,
        &mut f,
        inband(3, srb_packet(&[0, 0, 0, 0, 0, 0], UNKNOWN_TYPE, 0)),
    );
    assert_eq!(le32(&a, 8), STATUS_INVALID_DEVICE_STATE);
    // Linux's list, newest first: the first is taken.
    let a = ask(&mut d, &mut f, inband(4, version_query(VERSION_WIN10)));
    assert_eq!(le32(&a, 8), STATUS_SUCCESS);
    assert_eq!(d.version(), Some(VERSION_WIN10));
    let a = ask(
        &mut d,
        &mut f,
        inband(5, vstor(OP_QUERY_PROPERTIES, PACKET_LEN)),
    );
    assert_eq!(a.len(), PACKET_LEN);
    assert_eq!(le32(&a, 8), STATUS_SUCCESS);
    assert_eq!(le32(&a, props::MAX_TRANSFER_BYTES), MAX_TRANSFER_BYTES);
    assert_eq!(
        &a[props::MAX_CHANNEL_CNT..props::MAX_CHANNEL_CNT + 2],
        &[0, 0]
    );
    assert_eq!(le32(&a, props::FLAGS) & SUPPORTS_MULTI_CHANNEL, 0);
    let a = ask(
        &mut d,
        &mut f,
        inband(6, vstor(OP_END_INITIALIZATION, PACKET_LEN)),
    );
    assert_eq!(le32(&a, 8), STATUS_SUCCESS);
    let s = run(
        &mut d,
        &mut f,
        inband(7, srb_packet(&[0, 0, 0, 0, 0, 0], UNKNOWN_TYPE, 0)),
    );
    assert_eq!((s.srb_status, s.scsi_status), (SRB_STATUS_SUCCESS, 0));
    // The other accepted versions (8.1, 8, 7) negotiate too.
    for v in [VERSION_WIN8_1, VERSION_WIN8, VERSION_WIN7] {
        let mut d = device(&img);
        let a = ask(&mut d, &mut f, inband(8, version_query(v)));
        assert_eq!(le32(&a, 8), STATUS_SUCCESS);
        assert_eq!(d.version(), Some(v));
    }
}

#[test]
fn write_read_flush_round_trip_through_gpa_ranges() {
    let img = image(64);
    let (mut d, mut f) = (device(&img), Fake::new());
    ready(&mut d, &mut f);
    // 8 blocks from a buffer that starts mid-page and spans two pages.
    let src = BUF + 0x234;
    let data: Vec<u8> = (0..4096u32).map(|i| (i * 7 + 3) as u8).collect();
    f.write(src, &data);
    let w = run(
        &mut d,
        &mut f,
        gpa_direct(
            10,
            srb_packet(&rw10(0x2a, 5, 8), WRITE_TYPE, 4096),
            src,
            4096,
        ),
    );
    assert_eq!(
        (w.srb_status, w.scsi_status, w.xfer),
        (SRB_STATUS_SUCCESS, 0, 4096)
    );
    // Back with READ(16) into another unaligned buffer.
    let dst = BUF + 0x10_0000 + 0x10;
    let r = run(
        &mut d,
        &mut f,
        gpa_direct(
            11,
            srb_packet(&rw16(0x88, 5, 8), READ_TYPE, 4096),
            dst,
            4096,
        ),
    );
    assert_eq!(
        (r.srb_status, r.scsi_status, r.xfer),
        (SRB_STATUS_SUCCESS, 0, 4096)
    );
    assert_eq!(f.read(dst, 4096), data);
    // SYNCHRONIZE CACHE(10), then the image holds the data (host side).
    let s = run(
        &mut d,
        &mut f,
        inband(
            12,
            srb_packet(&[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0], UNKNOWN_TYPE, 0),
        ),
    );
    assert_eq!((s.srb_status, s.scsi_status), (SRB_STATUS_SUCCESS, 0));
    let file = std::fs::read(&img).unwrap();
    assert_eq!(&file[5 * 512..13 * 512], &data[..]);
    assert_eq!(
        file[5 * 512 - 1],
        ((5 * 512 - 1) % 251) as u8,
        "neighbour untouched"
    );
}

#[test]
fn inquiry_vpd_capacity_mode_sense_report_luns() {
    let img = image(64);
    let (mut d, mut f) = (device(&img), Fake::new());
    ready(&mut d, &mut f);
    let mut get = |cdb: &[u8], len: u32| {
        f.write(BUF, &vec![0xee; len as usize]);
        let s = run(
            &mut d,
            &mut f,
            gpa_direct(20, srb_packet(cdb, READ_TYPE, len), BUF, len),
        );
        assert_eq!(
            (s.srb_status, s.scsi_status),
            (SRB_STATUS_SUCCESS, 0),
            "cdb {cdb:02x?}"
        );
        (s.xfer, f.read(BUF, s.xfer as usize))
    };
    let (n, d0) = get(&[0x12, 0, 0, 0, 96, 0], 96);
    assert_eq!(n, 36, "short transfer reported");
    assert_eq!(&d0[8..14], b"HVCERT");
    let (_, pages) = get(&[0x12, 1, 0, 0, 64, 0], 64);
    assert_eq!(&pages[4..], &[0x00, 0x80, 0x83, 0xb0, 0xb1]);
    let (_, id) = get(&[0x12, 1, 0x83, 0, 64, 0], 64);
    assert_eq!(&id[8..14], b"HVCERT");
    let (_, cap) = get(&[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], 8);
    assert_eq!(cap, [0, 0, 0, 63, 0, 0, 2, 0]);
    let mut rc16 = [0u8; 16];
    rc16[0] = 0x9e;
    rc16[1] = 0x10;
    rc16[13] = 32;
    let (_, cap) = get(&rc16, 32);
    assert_eq!(u64::from_be_bytes(cap[0..8].try_into().unwrap()), 63);
    let (_, ms) = get(&[0x1a, 0, 0x3f, 0, 64, 0], 64);
    assert_eq!(ms[4], 0x08, "caching page");
    let (_, luns) = get(&[0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0], 64);
    assert_eq!(&luns[0..4], &[0, 0, 0, 8]);
    let (_, sense) = get(&[0x03, 0, 0, 0, 18, 0], 18);
    assert_eq!(sense[0], 0x70);
}

#[test]
fn scsi_errors_come_back_with_sense() {
    let img = image(64);
    let (mut d, mut f) = (device(&img), Fake::new());
    ready(&mut d, &mut f);
    // LBA out of range: CHECK CONDITION, ILLEGAL REQUEST / LBA OUT OF RANGE, sense valid.
    let s = run(
        &mut d,
        &mut f,
        gpa_direct(
            30,
            srb_packet(&rw10(0x28, 63, 2), READ_TYPE, 1024),
            BUF,
            1024,
        ),
    );
    assert_eq!(s.srb_status, SRB_STATUS_ERROR | SRB_STATUS_AUTOSENSE_VALID);
    assert_eq!(s.scsi_status, CHECK_CONDITION);
    assert_eq!(s.sense.len(), 18);
    assert_eq!(
        (s.sense[2] & 0xf, s.sense[12]),
        (ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE)
    );
    assert_eq!(s.xfer, 0);
    // Unknown opcode.
    let s = run(
        &mut d,
        &mut f,
        inband(31, srb_packet(&[0xd7, 0, 0, 0, 0, 0], UNKNOWN_TYPE, 0)),
    );
    assert_eq!((s.scsi_status, s.sense[12]), (CHECK_CONDITION, 0x20));
    // A read longer than the buffer the guest gave.
    let s = run(
        &mut d,
        &mut f,
        gpa_direct(32, srb_packet(&rw10(0x28, 0, 4), READ_TYPE, 2048), BUF, 512),
    );
    assert_eq!(s.scsi_status, CHECK_CONDITION);
    // Another LUN / target: no such device.
    let mut p = srb_packet(&[0x12, 0, 0, 0, 36, 0], READ_TYPE, 36);
    p[srb::LUN] = 1;
    let s = run(&mut d, &mut f, gpa_direct(33, p, BUF, 36));
    assert_eq!(s.srb_status, SRB_STATUS_INVALID_LUN);
    let mut p = srb_packet(&[0, 0, 0, 0, 0, 0], UNKNOWN_TYPE, 0);
    p[srb::TARGET_ID] = 1;
    assert_eq!(
        run(&mut d, &mut f, inband(34, p)).srb_status,
        SRB_STATUS_INVALID_LUN
    );
}

#[test]
fn bad_packets_are_refused_without_panic() {
    let img = image(64);
    let (mut d, mut f) = (device(&img), Fake::new());
    ready(&mut d, &mut f);
    // Shorter than the header; an EXECUTE_SRB shorter than the negotiated layout; a version
    // query without a version.
    for p in [
        vec![],
        vec![3, 0, 0],
        vstor(OP_EXECUTE_SRB, PACKET_LEN - 1),
        vstor(OP_QUERY_PROTOCOL_VERSION, 12),
    ] {
        let r = d.on_packet(&mut f, &inband(40, p.clone()));
        assert!(matches!(r, Err(DeviceError::Malformed(_))), "{p:?}: {r:?}");
        assert!(f.take().is_empty());
    }
    // Unknown operation, and operations only the host sends: the protocol's error.
    for op in [
        0,
        OP_COMPLETE_IO,
        OP_ENUMERATE_BUS,
        OP_CREATE_SUB_CHANNELS,
        99,
        u32::MAX,
    ] {
        let a = ask(&mut d, &mut f, inband(41, vstor(op, PACKET_LEN)));
        assert_eq!(le32(&a, 8), STATUS_INVALID_DEVICE_REQUEST, "op {op}");
    }
    // Data pages outside RAM: an error status, the image untouched.
    let before = std::fs::read(&img).unwrap();
    let s = run(
        &mut d,
        &mut f,
        gpa_direct(
            42,
            srb_packet(&rw10(0x2a, 0, 8), WRITE_TYPE, 4096),
            NOT_RAM,
            4096,
        ),
    );
    assert_eq!(s.srb_status, SRB_STATUS_ERROR);
    let s = run(
        &mut d,
        &mut f,
        gpa_direct(
            43,
            srb_packet(&rw10(0x28, 0, 8), READ_TYPE, 4096),
            RAM - 512,
            4096,
        ),
    );
    assert_eq!(s.srb_status, SRB_STATUS_ERROR);
    assert_eq!(std::fs::read(&img).unwrap(), before);
    // Inconsistent ranges: offset past the first page, more bytes than the pages hold,
    // page numbers whose address overflows.
    for range in [
        GpaRange {
            len: 512,
            offset: 4096,
            pfns: vec![1],
        },
        GpaRange {
            len: 8192,
            offset: 0,
            pfns: vec![1],
        },
        GpaRange {
            len: 512,
            offset: 0,
            pfns: vec![u64::MAX],
        },
    ] {
        let mut p = gpa_direct(44, srb_packet(&rw10(0x28, 0, 1), READ_TYPE, 512), BUF, 512);
        p.ranges = vec![range.clone()];
        let s = run(&mut d, &mut f, p);
        assert_ne!(s.srb_status, SRB_STATUS_SUCCESS, "{range:?}");
    }
    // Sense longer than the guest's sense buffer is cut to it.
    let mut p = srb_packet(&rw10(0x28, 64, 1), READ_TYPE, 512);
    p[srb::SENSE_INFO_LENGTH] = 8;
    let s = run(&mut d, &mut f, gpa_direct(45, p, BUF, 512));
    assert_eq!(s.sense.len(), 8);
}
