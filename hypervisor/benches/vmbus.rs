//! Host-side throughput of the VMBus devices through the channel layer and rings, next to
//! virtio's figures and the same work done directly, all in one run:
//! - storvsc sequential 1 MiB WRITE(10)/READ(10) (one GPA-direct range of 256 pages per
//!   request, posted in the guest's out ring, the host kicked, the completion read from the in
//!   ring), vs. virtio-blk's device handler and `pwrite`/`pread` of the same 1 MiB blocks on
//!   the same file.
//! - netvsc loopback frames per second: 1514-byte frames as RNDIS packets in send-buffer
//!   sections (NVSP RNDIS_PKT in the ring, 64 per kick), back as transfer-page packets into
//!   receive-buffer sections which the guest gives back; next to virtio-net loopback.
//!
//! Run: `cargo bench -p hypervisor --bench vmbus` (HVCERT_BENCH_MIB sets the image size).

#[path = "shared/virtio_figures.rs"]
mod virtio_figures;
#[path = "../tests/virtio_util/mod.rs"]
mod virtio_util;
#[path = "shared/vmbus_guest.rs"]
mod vmbus_guest;

use std::time::{Duration, Instant};

use hypervisor::abi::netvsc::{self, CHANNEL_CONTROL, CHANNEL_DATA, NO_SECTION};
use hypervisor::abi::rndis;
use hypervisor::abi::storvsc::*;
use hypervisor::abi::vmbus::{VM_PKT_COMP, VM_PKT_DATA_INBAND, VM_PKT_DATA_USING_GPA_DIRECT};
use hypervisor::virtio::{DiskConfig, NetConfig, NetStats};
use hypervisor::vmbus::netvsc::NetVsc;
use hypervisor::vmbus::storvsc::StorVsc;
use virtio_figures::*;
use virtio_util::TempFile;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vmbus_guest::{le32, Chan, Guest};

/// The 1 MiB data buffer of the storvsc requests.
const DATA: u64 = 0x10_0000;
const COMPLETION_REQUESTED: u16 = 1;

fn vstor(op: u32, len: usize) -> Vec<u8> {
    let mut p = vec![0u8; len];
    p[0..4].copy_from_slice(&op.to_le_bytes());
    p[4..8].copy_from_slice(&REQUEST_COMPLETION_FLAG.to_le_bytes());
    p
}

fn srb_rw10(write: bool, lba: u32, blocks: u16, xfer: u32) -> Vec<u8> {
    let mut cdb = vec![if write { 0x2a } else { 0x28 }, 0];
    cdb.extend_from_slice(&lba.to_be_bytes());
    cdb.push(0);
    cdb.extend_from_slice(&blocks.to_be_bytes());
    cdb.push(0);
    let mut p = vstor(OP_EXECUTE_SRB, PACKET_LEN);
    p[srb::LENGTH..srb::LENGTH + 2].copy_from_slice(&(VMSCSI_REQUEST_LEN as u16).to_le_bytes());
    p[srb::CDB_LENGTH] = cdb.len() as u8;
    p[srb::SENSE_INFO_LENGTH] = SENSE_BUFFER_SIZE as u8;
    p[srb::DATA_IN] = if write { WRITE_TYPE } else { READ_TYPE };
    p[srb::DATA_TRANSFER_LENGTH..srb::DATA_TRANSFER_LENGTH + 4]
        .copy_from_slice(&xfer.to_le_bytes());
    p[srb::CDB..srb::CDB + cdb.len()].copy_from_slice(&cdb);
    p
}

/// The GPA-direct header of one range of `len` bytes from page `first_pfn` on.
fn gpa_range(len: u32, first_pfn: u64) -> Vec<u8> {
    let mut h = vec![0u8; 8];
    h[4..8].copy_from_slice(&1u32.to_le_bytes());
    h.extend_from_slice(&len.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes());
    for p in first_pfn..first_pfn + u64::from(len).div_ceil(4096) {
        h.extend_from_slice(&p.to_le_bytes());
    }
    h
}

/// Sends one packet, kicks, and returns the one completion's payload.
fn ask(g: &Guest, c: &Chan, ty: u16, tid: u64, head: &[u8], p: &[u8]) -> Vec<u8> {
    assert!(c.out.write(&g.mem, ty, COMPLETION_REQUESTED, tid, head, p));
    assert_eq!(g.kick(c), 0);
    let (t, id, payload) = c.inr.read(&g.mem).expect("a completion");
    assert_eq!((t, id), (VM_PKT_COMP, tid));
    payload
}

/// A guest with storvsc on `img`, its channel open and VSTOR initialized as Linux does.
fn storvsc_guest(img: &std::path::Path) -> (Guest, Chan) {
    let dev = StorVsc::new(&DiskConfig {
        path: img.into(),
        read_only: false,
    })
    .unwrap();
    let mut g = Guest::new(vec![Box::new(dev)]);
    let c = g.open(1, 0x10, 8, 8);
    let i = |op, len| {
        ask(
            &g,
            &c,
            VM_PKT_DATA_INBAND,
            u64::from(op),
            &[],
            &vstor(op, len),
        )
    };
    assert_eq!(le32(&i(OP_BEGIN_INITIALIZATION, PACKET_LEN_PRE_WIN8), 8), 0);
    let mut v = vstor(OP_QUERY_PROTOCOL_VERSION, PACKET_LEN_PRE_WIN8);
    v[12..14].copy_from_slice(&VERSION_WIN10.to_le_bytes());
    assert_eq!(le32(&ask(&g, &c, VM_PKT_DATA_INBAND, 20, &[], &v), 8), 0);
    i(OP_QUERY_PROPERTIES, PACKET_LEN);
    assert_eq!(le32(&i(OP_END_INITIALIZATION, PACKET_LEN), 8), 0);
    (g, c)
}

/// `mib` sequential 1 MiB WRITE(10)s or READ(10)s through the rings.
fn bench_storvsc(g: &Guest, c: &Chan, mib: u64, write: bool) -> Duration {
    let range = gpa_range(MIB as u32, DATA / 4096);
    let blocks = (MIB / 512) as u16;
    let t0 = Instant::now();
    for i in 0..mib {
        let lba = u32::try_from(i * u64::from(blocks)).unwrap();
        let p = srb_rw10(write, lba, blocks, MIB as u32);
        let a = ask(g, c, VM_PKT_DATA_USING_GPA_DIRECT, i, &range, &p);
        assert_eq!(
            (le32(&a, 0), a[HEADER_LEN + 2]),
            (OP_COMPLETE_IO, SRB_STATUS_SUCCESS),
            "SRB {i}"
        );
        assert_eq!(le32(&a, srb::DATA_TRANSFER_LENGTH), MIB as u32);
    }
    t0.elapsed()
}

// netvsc: buffers and batch.
const NIC_RING_PFN: u64 = 0x300;
const RECV_BUF: u64 = 0x40_0000;
const RECV_PAGES: u64 = 128;
const SEND_BUF: u64 = 0x80_0000;
const SEND_PAGES: u64 = 128;
const BATCH: u64 = 64;
const MAC: [u8; 6] = [0x00, 0x15, 0x5d, 0x01, 0x02, 0x03];

fn nvsp(msg_type: u32, words: &[u32]) -> Vec<u8> {
    let mut m = msg_type.to_le_bytes().to_vec();
    for w in words {
        m.extend_from_slice(&w.to_le_bytes());
    }
    m.resize(netvsc::MESSAGE_LEN, 0);
    m
}

fn rndis_msg(t: u32, body: &[u32], extra: &[u8]) -> Vec<u8> {
    let mut m = t.to_le_bytes().to_vec();
    m.extend_from_slice(&((8 + 4 * body.len() + extra.len()) as u32).to_le_bytes());
    for w in body {
        m.extend_from_slice(&w.to_le_bytes());
    }
    m.extend_from_slice(extra);
    m
}

/// A control RNDIS message in send section 0: completion, then the answer in a receive
/// section, given back.
fn rndis_control(g: &Guest, c: &Chan, msg: &[u8]) -> Vec<u8> {
    g.mem.write_slice(msg, GuestAddress(SEND_BUF)).unwrap();
    let p = nvsp(
        netvsc::MSG1_SEND_RNDIS_PKT,
        &[CHANNEL_CONTROL, 0, msg.len() as u32],
    );
    let a = ask(g, c, VM_PKT_DATA_INBAND, 1000, &[], &p);
    assert_eq!(le32(&a, 4), netvsc::STAT_SUCCESS);
    let (_, tid, x, raw) = c.inr.read_raw(&g.mem).expect("the RNDIS answer");
    assert_eq!(le32(&x, 0), netvsc::MSG1_SEND_RNDIS_PKT);
    let (len, off) = xfer_range(&raw);
    let mut answer = vec![0u8; len as usize];
    g.mem
        .read_slice(&mut answer, GuestAddress(RECV_BUF + u64::from(off)))
        .unwrap();
    give_back(g, c, tid);
    assert_eq!(g.kick(c), 0);
    answer
}

/// The first (byte count, offset) range of a transfer-page packet.
fn xfer_range(raw: &[u8]) -> (u32, u32) {
    (le32(raw, 24), le32(raw, 28))
}

fn give_back(g: &Guest, c: &Chan, tid: u64) {
    let done = nvsp(
        netvsc::MSG1_SEND_RNDIS_PKT_COMPLETE,
        &[netvsc::STAT_SUCCESS],
    );
    assert!(c.out.write(&g.mem, VM_PKT_COMP, 0, tid, &[], &done));
}

/// A guest with netvsc on loopback: NVSP 6.1, receive and send buffers, RNDIS initialized
/// and the packet filter set, as Linux brings it up.
fn netvsc_guest() -> (Guest, Chan, std::sync::Arc<NetStats>) {
    let dev = NetVsc::new(&NetConfig::Loopback, MAC).unwrap();
    let stats = dev.stats();
    let mut g = Guest::new(vec![Box::new(dev)]);
    let c = g.open(1, NIC_RING_PFN, 16, 16);
    let recv = g.gpadl(
        1,
        &(RECV_BUF / 4096..RECV_BUF / 4096 + RECV_PAGES).collect::<Vec<_>>(),
    );
    let send = g.gpadl(
        1,
        &(SEND_BUF / 4096..SEND_BUF / 4096 + SEND_PAGES).collect::<Vec<_>>(),
    );
    let v = netvsc::VERSION_61;
    let a = ask(
        &g,
        &c,
        VM_PKT_DATA_INBAND,
        1,
        &[],
        &nvsp(netvsc::MSG_INIT, &[v, v]),
    );
    assert_eq!(le32(&a, 12), netvsc::STAT_SUCCESS);
    for m in [
        nvsp(netvsc::MSG1_SEND_NDIS_VER, &[6, 30]),
        nvsp(netvsc::MSG2_SEND_NDIS_CONFIG, &[1514, 0, 8, 0]),
    ] {
        assert!(c.out.write(&g.mem, VM_PKT_DATA_INBAND, 0, 2, &[], &m));
    }
    for (t, gpadl, id) in [
        (netvsc::MSG1_SEND_RECV_BUF, recv, netvsc::RECEIVE_BUFFER_ID),
        (netvsc::MSG1_SEND_SEND_BUF, send, netvsc::SEND_BUFFER_ID),
    ] {
        let mut m = nvsp(t, &[gpadl]);
        m[8..10].copy_from_slice(&id.to_le_bytes());
        let a = ask(&g, &c, VM_PKT_DATA_INBAND, 3, &[], &m);
        assert_eq!(le32(&a, 4), netvsc::STAT_SUCCESS, "buffer {t}");
    }
    let a = rndis_control(&g, &c, &rndis_msg(rndis::MSG_INIT, &[1, 1, 0, 0x4000], &[]));
    assert_eq!((le32(&a, 0), le32(&a, 12)), (rndis::MSG_INIT_C, 0));
    let filter = 0x0bu32.to_le_bytes();
    let a = rndis_control(
        &g,
        &c,
        &rndis_msg(
            rndis::MSG_SET,
            &[10, rndis::OID_GEN_CURRENT_PACKET_FILTER, 4, 20, 0],
            &filter,
        ),
    );
    assert_eq!((le32(&a, 0), le32(&a, 12)), (rndis::MSG_SET_C, 0));
    (g, c, stats)
}

/// `frames` 1514-byte frames out through send sections and back through receive sections,
/// `BATCH` per kick (the previous batch's receive sections given back in the same kick).
fn bench_netvsc(frames: u64) -> Duration {
    let (g, c, stats) = netvsc_guest();
    let mut frame = vec![0xff; 6];
    frame.extend_from_slice(&MAC);
    frame.extend_from_slice(&[0x88, 0xb5]);
    frame.extend((0..1500).map(|i| i as u8));
    let msg = rndis_msg(
        rndis::MSG_PACKET,
        &[36, frame.len() as u32, 0, 0, 0, 0, 0, 0, 0],
        &frame,
    );
    let section = u64::from(netvsc::SEND_SECTION_SIZE);
    for s in 0..BATCH {
        g.mem
            .write_slice(&msg, GuestAddress(SEND_BUF + s * section))
            .unwrap();
    }
    let (tx0, rx0) = (
        NetStats::get(&stats.tx_frames),
        NetStats::get(&stats.rx_frames),
    );
    let mut lent = Vec::new();
    let mut done = 0;
    let t0 = Instant::now();
    while done < frames {
        for tid in lent.drain(..) {
            give_back(&g, &c, tid);
        }
        for s in 0..BATCH {
            let p = nvsp(
                netvsc::MSG1_SEND_RNDIS_PKT,
                &[CHANNEL_DATA, s as u32, msg.len() as u32],
            );
            assert!(c
                .out
                .write(&g.mem, VM_PKT_DATA_INBAND, COMPLETION_REQUESTED, s, &[], &p));
        }
        assert_eq!(g.kick(&c), 0);
        let mut completed = 0;
        while let Some((ty, tid, p, raw)) = c.inr.read_raw(&g.mem) {
            if ty == VM_PKT_COMP {
                assert_eq!(le32(&p, 4), netvsc::STAT_SUCCESS);
                completed += 1;
            } else {
                assert_eq!(
                    (le32(&p, 0), le32(&p, 4), le32(&p, 8)),
                    (netvsc::MSG1_SEND_RNDIS_PKT, CHANNEL_DATA, NO_SECTION)
                );
                assert_eq!(xfer_range(&raw).0 as usize, msg.len());
                lent.push(tid);
            }
        }
        assert_eq!((completed, lent.len() as u64), (BATCH, BATCH));
        done += BATCH;
    }
    let d = t0.elapsed();
    assert_eq!(NetStats::get(&stats.tx_frames) - tx0, done);
    assert_eq!(NetStats::get(&stats.rx_frames) - rx0, done);
    d
}

/// storvsc ran last in each round: after the writes the image's last MiB holds the guest's
/// pattern; after the reads the guest buffer (zeroed before them) holds the image's last MiB.
fn check_data(g: &Guest, img: &std::path::Path, mib: u64, write: bool, pattern: &[u8]) {
    let file = std::fs::read(img).unwrap();
    let last = &file[((mib - 1) * MIB) as usize..(mib * MIB) as usize];
    let mut buf = vec![0u8; MIB as usize];
    g.mem.read_slice(&mut buf, GuestAddress(DATA)).unwrap();
    if write {
        assert_eq!(last, pattern, "storvsc wrote the guest's bytes");
    } else {
        assert_eq!(buf, last, "storvsc read the image's bytes");
    }
}

fn main() {
    let mib: u64 = std::env::var("HVCERT_BENCH_MIB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256);
    let vmem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 16 << 20)]).unwrap();
    let img = TempFile::new("bench", &[]);
    std::fs::File::options()
        .write(true)
        .open(&img.0)
        .unwrap()
        .set_len(mib * MIB)
        .unwrap();
    let (g, c) = storvsc_guest(&img.0);
    let pattern: Vec<u8> = (0..MIB).map(|i| (i * 7 + 3) as u8).collect();
    g.mem.write_slice(&pattern, GuestAddress(DATA)).unwrap();
    println!(
        "{mib} MiB image in {}, sequential 1 MiB requests (page cache), best of 3 rounds:",
        std::env::temp_dir().display()
    );
    bench_host(&img.0, mib, true);
    for write in [true, false] {
        let what = if write { "write" } else { "read " };
        if !write {
            g.mem
                .write_slice(&vec![0u8; MIB as usize], GuestAddress(DATA))
                .unwrap();
        }
        let mut best = [0f64; 3];
        for _ in 0..3 {
            let host = mbps(mib * MIB, bench_host(&img.0, mib, write));
            let blk = mbps(mib * MIB, bench_blk_handler(&vmem, &img.0, mib, write));
            let stor = mbps(mib * MIB, bench_storvsc(&g, &c, mib, write));
            for (b, v) in best.iter_mut().zip([host, blk, stor]) {
                *b = b.max(v);
            }
        }
        check_data(&g, &img.0, mib, write, &pattern);
        println!(
            "  {what}: host pread/pwrite {:6.0} MiB/s | virtio-blk handler {:6.0} MiB/s ({:5.1}%) | storvsc through rings {:6.0} MiB/s ({:5.1}%)",
            best[0], best[1], 100.0 * best[1] / best[0], best[2], 100.0 * best[2] / best[0]
        );
    }
    let frames = 256 * 1024;
    let dv = bench_loopback(&vmem, frames);
    let dn = bench_netvsc(frames);
    let fps = |d: Duration| frames as f64 / d.as_secs_f64();
    println!(
        "loopback, {frames} frames of 1514 B: virtio-net {:.0} frames/s | netvsc through rings {:.0} frames/s ({:.1}% of virtio-net)",
        fps(dv),
        fps(dn),
        100.0 * fps(dn) / fps(dv)
    );
}
