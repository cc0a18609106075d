//! virtio-scsi command handling through the mock rings (no VM).

mod virtio_util;

use hypervisor::virtio::chain::Malformed;
use hypervisor::virtio::mmio::QueueHandler;
use hypervisor::virtio::scsi::*;
use hypervisor::virtio::{DiskConfig, Scsi};
use virtio_bindings::bindings::virtio_config::VIRTIO_F_VERSION_1;
use virtio_queue::Queue;
use virtio_util::*;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const F: u64 = 1 << VIRTIO_F_VERSION_1;
const REQ: u64 = DATA;
const RESP: u64 = DATA + 0x1000;
const BUF: u64 = DATA + 0x10000;

struct Rig {
    mem: GuestMemoryMmap<()>,
    img: TempFile,
    h: ScsiHandler,
}

fn image(blocks: u64) -> Vec<u8> {
    (0..blocks * 512).map(|i| (i % 239) as u8).collect()
}

fn rig(tag: &str, blocks: u64, read_only: bool) -> Rig {
    let img = TempFile::new(tag, &image(blocks));
    let s = Scsi::new(&DiskConfig {
        path: img.0.clone(),
        read_only,
    })
    .unwrap();
    assert_eq!(s.blocks(), blocks);
    Rig {
        mem: memory(),
        h: s.handler().unwrap(),
        img,
    }
}

fn lun0() -> [u8; 8] {
    [1, 0, 0x40, 0, 0, 0, 0, 0]
}

/// The response of one command: (response, status, sense, resid, used length).
struct Resp {
    response: u8,
    status: u8,
    sense: Vec<u8>,
    resid: u32,
    used: u32,
}

fn cmd(r: &mut Rig, lun: [u8; 8], cdb: &[u8], data_out: &[u8], data_in: u32) -> Resp {
    let mut req = vec![0u8; REQ_LEN as usize];
    req[0..8].copy_from_slice(&lun);
    req[8..16].copy_from_slice(&42u64.to_le_bytes());
    req[19..19 + cdb.len()].copy_from_slice(cdb);
    r.mem.write_slice(&req, GuestAddress(REQ)).unwrap();
    r.mem
        .write_slice(&[0xeeu8; RESP_LEN as usize], GuestAddress(RESP))
        .unwrap();
    let mut bufs = vec![Buf(REQ, REQ_LEN as u32, false)];
    if !data_out.is_empty() {
        r.mem.write_slice(data_out, GuestAddress(BUF)).unwrap();
        bufs.push(Buf(BUF, data_out.len() as u32, false));
    }
    bufs.push(Buf(RESP, RESP_LEN as u32, true));
    if data_in > 0 {
        bufs.push(Buf(BUF, data_in, true));
    }
    let vq = Vq::new(&r.mem, ring_base(REQUEST_Q), 16);
    add_chain(&vq, 0, &bufs);
    let mut qs: Vec<Queue> = vec![Queue::default(), Queue::default(), device_queue(&vq)];
    with_queues(&r.mem, &mut qs, F, |q| r.h.queue_event(REQUEST_Q, q)).expect("well-formed");
    let u = used(&vq);
    assert_eq!(u.len(), 1);
    let mut resp = vec![0u8; RESP_LEN as usize];
    r.mem.read_slice(&mut resp, GuestAddress(RESP)).unwrap();
    let sense_len = u32::from_le_bytes(resp[0..4].try_into().unwrap()) as usize;
    Resp {
        response: resp[11],
        status: resp[10],
        sense: resp[12..12 + sense_len].to_vec(),
        resid: u32::from_le_bytes(resp[4..8].try_into().unwrap()),
        used: u[0].1,
    }
}

fn data(r: &Rig, n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    r.mem.read_slice(&mut b, GuestAddress(BUF)).unwrap();
    b
}

fn sense_key_asc(resp: &Resp) -> (u8, u8) {
    assert_eq!(resp.status, CHECK_CONDITION);
    (resp.sense[2] & 0xf, resp.sense[12])
}

#[test]
fn inquiry_capacity_report_luns() {
    let mut r = rig("inq", 100, false);
    let resp = cmd(&mut r, lun0(), &[0x12, 0, 0, 0, 96, 0], &[], 96);
    assert_eq!((resp.response, resp.status), (0, GOOD));
    let d = data(&r, 36);
    assert_eq!(d[0], 0, "direct-access device");
    assert_eq!(&d[8..14], b"HVCERT");
    assert_eq!(resp.used, RESP_LEN as u32 + 36);
    assert_eq!(resp.resid, 96 - 36);
    // Allocation length shorter than the data: truncated.
    let resp = cmd(&mut r, lun0(), &[0x12, 0, 0, 0, 5, 0], &[], 96);
    assert_eq!(resp.used, RESP_LEN as u32 + 5);
    // VPD: supported pages, serial number, identification, block limits.
    cmd(&mut r, lun0(), &[0x12, 1, 0x00, 0, 64, 0], &[], 64);
    assert_eq!(&data(&r, 9), &[0, 0, 0, 5, 0x00, 0x80, 0x83, 0xb0, 0xb1]);
    cmd(&mut r, lun0(), &[0x12, 1, 0x80, 0, 64, 0], &[], 64);
    let d = data(&r, 8);
    assert_eq!(d[1], 0x80);
    assert_eq!(&d[4..7], b"hvc");
    cmd(&mut r, lun0(), &[0x12, 1, 0x83, 0, 64, 0], &[], 64);
    let d = data(&r, 16);
    assert_eq!((d[1], d[4], d[5]), (0x83, 0x02, 0x01));
    assert_eq!(&d[8..14], b"HVCERT");
    cmd(&mut r, lun0(), &[0x12, 1, 0xb0, 0, 64, 0], &[], 64);
    let d = data(&r, 16);
    assert_eq!(d[1], 0xb0);
    assert_eq!(
        u32::from_be_bytes(d[8..12].try_into().unwrap()),
        MAX_SECTORS
    );
    let resp = cmd(&mut r, lun0(), &[0x12, 1, 0xb2, 0, 64, 0], &[], 64);
    assert_eq!(
        sense_key_asc(&resp),
        (ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB)
    );

    cmd(&mut r, lun0(), &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[], 8);
    assert_eq!(&data(&r, 8), &[0, 0, 0, 99, 0, 0, 2, 0]);
    let mut rc16 = [0u8; 16];
    rc16[0] = 0x9e;
    rc16[1] = 0x10;
    rc16[13] = 32;
    cmd(&mut r, lun0(), &rc16, &[], 32);
    let d = data(&r, 12);
    assert_eq!(u64::from_be_bytes(d[0..8].try_into().unwrap()), 99);
    assert_eq!(u32::from_be_bytes(d[8..12].try_into().unwrap()), 512);

    let resp = cmd(
        &mut r,
        lun0(),
        &[0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0],
        &[],
        64,
    );
    assert_eq!(resp.status, GOOD);
    assert_eq!(&data(&r, 16)[..4], &[0, 0, 0, 8]);
    assert_eq!(
        cmd(&mut r, lun0(), &[0, 0, 0, 0, 0, 0], &[], 0).status,
        GOOD,
        "TEST UNIT READY"
    );
}

#[test]
fn write_read_10_and_16_and_sync() {
    let mut r = rig("rw", 64, false);
    let pattern: Vec<u8> = (0..2048u32).map(|i| (i * 7 % 256) as u8).collect();
    // WRITE(10) 4 blocks at LBA 3.
    let resp = cmd(
        &mut r,
        lun0(),
        &[0x2a, 0, 0, 0, 0, 3, 0, 0, 4, 0],
        &pattern,
        0,
    );
    assert_eq!((resp.response, resp.status), (0, GOOD));
    let disk = std::fs::read(&r.img.0).unwrap();
    assert_eq!(&disk[3 * 512..7 * 512], &pattern[..]);
    assert_eq!(&disk[..3 * 512], &image(3)[..]);
    // READ(16) the same blocks.
    let mut rd16 = [0u8; 16];
    rd16[0] = 0x88;
    rd16[9] = 3;
    rd16[13] = 4;
    let resp = cmd(&mut r, lun0(), &rd16, &[], 4096);
    assert_eq!(resp.status, GOOD);
    assert_eq!(resp.used, RESP_LEN as u32 + 2048);
    assert_eq!(resp.resid, 2048);
    assert_eq!(data(&r, 2048), pattern);
    // WRITE(16) one block at the last LBA, READ(10) it back.
    let mut wr16 = [0u8; 16];
    wr16[0] = 0x8a;
    wr16[9] = 63;
    wr16[13] = 1;
    let blk = vec![0x5au8; 512];
    assert_eq!(cmd(&mut r, lun0(), &wr16, &blk, 0).status, GOOD);
    assert_eq!(
        cmd(
            &mut r,
            lun0(),
            &[0x28, 0, 0, 0, 0, 63, 0, 0, 1, 0],
            &[],
            512
        )
        .status,
        GOOD
    );
    assert_eq!(data(&r, 512), blk);
    // SYNCHRONIZE CACHE(10) and (16).
    assert_eq!(
        cmd(&mut r, lun0(), &[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[], 0).status,
        GOOD
    );
    let mut sc16 = [0u8; 16];
    sc16[0] = 0x91;
    assert_eq!(cmd(&mut r, lun0(), &sc16, &[], 0).status, GOOD);
}

#[test]
fn errors_are_check_conditions() {
    let mut r = rig("err", 16, false);
    // Past the end, straddling the end, LBA overflow.
    let resp = cmd(
        &mut r,
        lun0(),
        &[0x28, 0, 0, 0, 0, 16, 0, 0, 1, 0],
        &[],
        512,
    );
    assert_eq!(
        sense_key_asc(&resp),
        (ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE)
    );
    assert_eq!(resp.used, RESP_LEN as u32);
    let resp = cmd(
        &mut r,
        lun0(),
        &[0x2a, 0, 0, 0, 0, 15, 0, 0, 2, 0],
        &[0u8; 1024],
        0,
    );
    assert_eq!(
        sense_key_asc(&resp),
        (ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE)
    );
    let mut rd16 = [0u8; 16];
    rd16[0] = 0x88;
    rd16[2..10].copy_from_slice(&u64::MAX.to_be_bytes());
    rd16[13] = 2;
    let resp = cmd(&mut r, lun0(), &rd16, &[], 1024);
    assert_eq!(
        sense_key_asc(&resp),
        (ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE)
    );
    // Data buffer shorter than the transfer.
    let resp = cmd(&mut r, lun0(), &[0x28, 0, 0, 0, 0, 0, 0, 0, 2, 0], &[], 512);
    assert_eq!(
        sense_key_asc(&resp),
        (ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB)
    );
    let resp = cmd(
        &mut r,
        lun0(),
        &[0x2a, 0, 0, 0, 0, 0, 0, 0, 2, 0],
        &[0u8; 512],
        0,
    );
    assert_eq!(
        sense_key_asc(&resp),
        (ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB)
    );
    // Unknown opcode.
    let resp = cmd(&mut r, lun0(), &[0xc7, 0, 0, 0, 0, 0], &[], 0);
    assert_eq!(sense_key_asc(&resp), (ILLEGAL_REQUEST, ASC_INVALID_OPCODE));
    // Another target or LUN.
    let resp = cmd(
        &mut r,
        [1, 1, 0x40, 0, 0, 0, 0, 0],
        &[0, 0, 0, 0, 0, 0],
        &[],
        0,
    );
    assert_eq!(resp.response, 3, "VIRTIO_SCSI_S_BAD_TARGET");
    let resp = cmd(
        &mut r,
        [1, 0, 0x40, 1, 0, 0, 0, 0],
        &[0, 0, 0, 0, 0, 0],
        &[],
        0,
    );
    assert_eq!(resp.response, 3);
    assert_eq!(
        std::fs::read(&r.img.0).unwrap(),
        image(16),
        "image unchanged"
    );
}

#[test]
fn read_only_lun() {
    let mut r = rig("ro", 8, true);
    let resp = cmd(
        &mut r,
        lun0(),
        &[0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0],
        &[0u8; 512],
        0,
    );
    assert_eq!(sense_key_asc(&resp), (DATA_PROTECT, ASC_WRITE_PROTECTED));
    assert_eq!(std::fs::read(&r.img.0).unwrap(), image(8));
    // MODE SENSE(6) and (10), caching page: WP bit set; WCE set.
    let resp = cmd(&mut r, lun0(), &[0x1a, 0, 0x08, 0, 64, 0], &[], 64);
    assert_eq!(resp.status, GOOD);
    let d = data(&r, 24);
    assert_eq!(d[2] & 0x80, 0x80, "write protect");
    assert_eq!((d[4], d[6] & 4), (0x08, 4), "caching page, WCE");
    cmd(
        &mut r,
        lun0(),
        &[0x5a, 0, 0x3f, 0, 0, 0, 0, 0, 64, 0],
        &[],
        64,
    );
    assert_eq!(data(&r, 8)[3] & 0x80, 0x80);
    let resp = cmd(&mut r, lun0(), &[0x1a, 0, 0x1c, 0, 64, 0], &[], 64);
    assert_eq!(
        sense_key_asc(&resp),
        (ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB)
    );
}

#[test]
fn control_queue_and_malformed_requests() {
    let mut r = rig("ctl", 8, false);
    let vq = Vq::new(&r.mem, ring_base(CONTROL_Q), 16);
    // TMF ABORT TASK: type 0, subtype 0, lun, tag.
    let mut tmf = vec![0u8; 24];
    tmf[8..16].copy_from_slice(&lun0());
    r.mem.write_slice(&tmf, GuestAddress(REQ)).unwrap();
    r.mem.write_obj(0xeeu8, GuestAddress(RESP)).unwrap();
    add_chain(&vq, 0, &[Buf(REQ, 24, false), Buf(RESP, 1, true)]);
    // AN query: type 1.
    r.mem
        .write_slice(&1u32.to_le_bytes(), GuestAddress(REQ + 0x100))
        .unwrap();
    add_chain(
        &vq,
        2,
        &[Buf(REQ + 0x100, 16, false), Buf(RESP + 0x100, 5, true)],
    );
    let mut qs: Vec<Queue> = vec![device_queue(&vq), Queue::default(), Queue::default()];
    with_queues(&r.mem, &mut qs, F, |q| r.h.queue_event(CONTROL_Q, q)).unwrap();
    assert_eq!(used(&vq), vec![(0, 1), (2, 5)]);
    assert_eq!(read_u8(&r.mem, RESP), 0, "function complete");

    // A command without room for the response: the device needs a reset.
    let vq = Vq::new(&r.mem, ring_base(REQUEST_Q), 16);
    add_chain(
        &vq,
        0,
        &[Buf(REQ, REQ_LEN as u32, false), Buf(RESP, 20, true)],
    );
    let mut qs: Vec<Queue> = vec![Queue::default(), Queue::default(), device_queue(&vq)];
    let e = with_queues(&r.mem, &mut qs, F, |q| r.h.queue_event(REQUEST_Q, q)).unwrap_err();
    assert!(matches!(e, Malformed::NoStatus { .. }), "{e}");
    // A short request header: CHECK CONDITION, not a reset.
    let vq = Vq::new(&r.mem, ring_base(REQUEST_Q + 1), 16);
    add_chain(
        &vq,
        0,
        &[Buf(REQ, 10, false), Buf(RESP, RESP_LEN as u32, true)],
    );
    let mut qs: Vec<Queue> = vec![Queue::default(), Queue::default(), device_queue(&vq)];
    with_queues(&r.mem, &mut qs, F, |q| r.h.queue_event(REQUEST_Q, q)).unwrap();
    assert_eq!(read_u8(&r.mem, RESP + 10), CHECK_CONDITION);
}
