//! The virtio figures shared by the benches (`virtio`, `vmbus`): virtio-blk sequential
//! 1 MiB requests through the device handler, `pwrite`/`pread` of the same blocks on the same
//! file, and virtio-net loopback frames per second.

use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use hypervisor::virtio::block::SECTOR_SIZE;
use hypervisor::virtio::mmio::QueueHandler;
use hypervisor::virtio::net::TX;
use hypervisor::virtio::{Block, DiskConfig, Net, NetConfig};
use virtio_bindings::bindings::virtio_blk::{VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT};
use virtio_bindings::bindings::virtio_config::VIRTIO_F_VERSION_1;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::virtio_util::*;

pub const MIB: u64 = 1 << 20;
pub const SEG: u32 = 64 << 10;
pub const HDR: u64 = 0x9_0000;
pub const STATUS: u64 = 0x9_1000;
pub const BUF: u64 = 0x20_0000;

pub fn mbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / MIB as f64 / d.as_secs_f64()
}

pub fn blk_chain(write: bool) -> Vec<Buf> {
    let mut v = vec![Buf(HDR, 16, false)];
    for i in 0..(MIB / u64::from(SEG)) {
        v.push(Buf(BUF + i * u64::from(SEG), SEG, !write));
    }
    v.push(Buf(STATUS, 1, true));
    v
}

pub fn bench_blk_handler(
    mem: &GuestMemoryMmap<()>,
    img: &std::path::Path,
    mib: u64,
    write: bool,
) -> Duration {
    let blk = Block::new(&DiskConfig {
        path: img.into(),
        read_only: false,
    })
    .unwrap();
    let mut h = blk.handler(1 << VIRTIO_F_VERSION_1).unwrap();
    let vq = Vq::new(mem, ring_base(0), 256);
    let mut qs = vec![device_queue(&vq)];
    let t0 = Instant::now();
    for i in 0..mib {
        post_request(mem, &vq, i, write);
        with_queues(mem, &mut qs, 1 << VIRTIO_F_VERSION_1, |q| {
            h.queue_event(0, q)
        })
        .unwrap();
        assert_eq!(read_u8(mem, STATUS), 0);
    }
    t0.elapsed()
}

/// Puts the request for MiB `i` (a write or a read of 1 MiB) on `vq` as descriptor chain 0.
pub fn post_request(mem: &GuestMemoryMmap<()>, vq: &Vq, i: u64, write: bool) {
    let kind = if write {
        VIRTIO_BLK_T_OUT
    } else {
        VIRTIO_BLK_T_IN
    };
    blk_header(mem, HDR, kind, i * MIB / SECTOR_SIZE);
    add_chain(vq, 0, &blk_chain(write));
}

pub fn bench_host(img: &std::path::Path, mib: u64, write: bool) -> Duration {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(img)
        .unwrap();
    let mut buf = vec![0x5au8; MIB as usize];
    let t0 = Instant::now();
    for i in 0..mib {
        if write {
            f.write_all_at(&buf, i * MIB).unwrap();
        } else {
            f.read_exact_at(&mut buf, i * MIB).unwrap();
        }
    }
    t0.elapsed()
}

pub fn bench_loopback(mem: &GuestMemoryMmap<()>, frames: u64) -> Duration {
    let net = Net::new(&NetConfig::Loopback, [2, 0, 0, 0, 0, 1]).unwrap();
    let mut h = net.handler().unwrap();
    let rxq = Vq::new(mem, ring_base(2), 256);
    let txq = Vq::new(mem, ring_base(3), 256);
    let mut qs = vec![device_queue(&rxq), device_queue(&txq)];
    let frame = vec![0xabu8; 1514];
    for i in 0..128u64 {
        mem.write_slice(&frame, GuestAddress(BUF + 0x800 * i + 12))
            .unwrap();
    }
    let batch = 128u64;
    let t0 = Instant::now();
    let mut done = 0;
    while done < frames {
        for i in 0..batch {
            add_chain(
                &rxq,
                (i % 256) as u16,
                &[Buf(0x40_0000 + 0x800 * i, 1526, true)],
            );
            add_chain(
                &txq,
                (2 * i % 256) as u16,
                &[
                    Buf(BUF + 0x800 * i, 12, false),
                    Buf(BUF + 0x800 * i + 12, 1514, false),
                ],
            );
        }
        with_queues(mem, &mut qs, 1 << VIRTIO_F_VERSION_1, |q| {
            h.queue_event(TX, q)
        })
        .unwrap();
        done += batch;
    }
    let d = t0.elapsed();
    assert_eq!(u64::from(rxq.used_idx()), frames % 65536);
    d
}
