//! A tiny virtio "driver" for tests: rings in guest memory through virtio-queue's
//! `MockSplitQueue`, chains written descriptor by descriptor, and helpers to program the
//! virtio-mmio transport register by register like a guest would.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use hypervisor::bus::MmioDevice;
use hypervisor::virtio::mmio::{MmioTransport, Queues};
use virtio_bindings::bindings::virtio_ring::{VRING_DESC_F_NEXT, VRING_DESC_F_WRITE};
use virtio_queue::desc::{split::Descriptor, RawDescriptor};
use virtio_queue::mock::MockSplitQueue;
use virtio_queue::Queue;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

pub const MEM_SIZE: usize = 16 << 20;
/// Data buffers live from here on (rings are below 1 MiB).
pub const DATA: u64 = 0x10_0000;

pub fn memory() -> GuestMemoryMmap<()> {
    GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MEM_SIZE)]).expect("guest memory")
}

/// Ring base of queue `i` (each queue gets 64 KiB).
pub fn ring_base(i: usize) -> GuestAddress {
    GuestAddress(0x1_0000 * (i as u64 + 1))
}

/// A driver-side queue: descriptor table and available ring through virtio-queue's
/// `MockSplitQueue`; the used ring at `base + 0x8000`. (`MockSplitQueue::create` places its
/// own used ring at `avail.end()`, which counts ring *elements* as bytes, so for queues of
/// more than a few entries its used ring overlaps the tail of the available ring; we keep
/// the device's used ring clear of it.)
pub struct Vq<'a> {
    pub mock: MockSplitQueue<'a, GuestMemoryMmap<()>>,
    mem: &'a GuestMemoryMmap<()>,
    pub used_addr: GuestAddress,
    pub size: u16,
}

impl<'a> Vq<'a> {
    pub fn new(mem: &'a GuestMemoryMmap<()>, base: GuestAddress, size: u16) -> Self {
        let used_addr = GuestAddress(base.0 + 0x8000);
        mem.write_slice(&vec![0u8; 6 + 8 * size as usize], used_addr)
            .expect("used ring");
        Vq {
            mock: MockSplitQueue::create(mem, base, size),
            mem,
            used_addr,
            size,
        }
    }
    pub fn desc_table_addr(&self) -> GuestAddress {
        self.mock.desc_table_addr()
    }
    pub fn avail_addr(&self) -> GuestAddress {
        self.mock.avail_addr()
    }
    pub fn used_idx(&self) -> u16 {
        self.mem
            .read_obj(GuestAddress(self.used_addr.0 + 2))
            .expect("used idx")
    }
    pub fn avail_idx(&self) -> u16 {
        self.mock.avail().idx().load()
    }
    pub fn set_avail_idx(&self, v: u16) {
        self.mock.avail().idx().store(v)
    }
}

/// One buffer of a chain: (guest address, length, device-writable).
#[derive(Debug, Clone, Copy)]
pub struct Buf(pub u64, pub u32, pub bool);

/// Write `bufs` as one chain at descriptor indices `first..` and make it available.
pub fn add_chain(vq: &Vq, first: u16, bufs: &[Buf]) -> u16 {
    let n = bufs.len() as u16;
    for (k, b) in bufs.iter().enumerate() {
        let k = k as u16;
        let mut flags = if b.2 { VRING_DESC_F_WRITE as u16 } else { 0 };
        if k + 1 < n {
            flags |= VRING_DESC_F_NEXT as u16;
        }
        let d = Descriptor::new(b.0, b.1, flags, first + k + 1);
        vq.mock
            .desc_table()
            .store(first + k, RawDescriptor::from(d))
            .expect("store descriptor");
    }
    push_avail(vq, first);
    first
}

/// Put head `head` into the available ring.
pub fn push_avail(vq: &Vq, head: u16) {
    let idx = vq.avail_idx();
    vq.mock
        .avail()
        .ring()
        .ref_at((idx % vq.size) as usize)
        .expect("avail slot")
        .store(head);
    vq.set_avail_idx(idx.wrapping_add(1));
}

/// Store a raw descriptor.
pub fn store_desc(vq: &Vq, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
    vq.mock
        .desc_table()
        .store(
            i,
            RawDescriptor::from(Descriptor::new(addr, len, flags, next)),
        )
        .expect("store descriptor");
}

/// Used ring entries so far: (id, len).
pub fn used(vq: &Vq) -> Vec<(u32, u32)> {
    let n = vq.used_idx();
    (0..n)
        .map(|i| {
            let a = vq.used_addr.0 + 4 + 8 * u64::from(i % vq.size);
            let id: u32 = vq.mem.read_obj(GuestAddress(a)).expect("used id");
            let len: u32 = vq.mem.read_obj(GuestAddress(a + 4)).expect("used len");
            (id, len)
        })
        .collect()
}

/// A block request header at `addr`.
pub fn blk_header(mem: &GuestMemoryMmap<()>, addr: u64, req_type: u32, sector: u64) {
    let mut h = [0u8; 16];
    h[0..4].copy_from_slice(&req_type.to_le_bytes());
    h[8..16].copy_from_slice(&sector.to_le_bytes());
    mem.write_slice(&h, GuestAddress(addr)).expect("header");
}

pub fn read_u8(mem: &GuestMemoryMmap<()>, addr: u64) -> u8 {
    mem.read_obj(GuestAddress(addr)).expect("read")
}

/// A `Queue` (device side) over the mock rings, for direct handler calls.
pub fn device_queue(vq: &Vq) -> Queue {
    let mut q = vq.mock.create_queue::<Queue>().expect("queue");
    q.try_set_used_ring_address(vq.used_addr)
        .expect("used ring");
    q
}

/// Run `f` with a `Queues` view, as the worker does.
pub fn with_queues<R>(
    mem: &GuestMemoryMmap<()>,
    queues: &mut [Queue],
    features: u64,
    f: impl FnOnce(&mut Queues) -> R,
) -> R {
    let mut q = Queues {
        mem,
        queues,
        features,
        used: 0,
    };
    f(&mut q)
}

// ---- register-level driver ----

pub fn rd(t: &mut MmioTransport, off: u64) -> u32 {
    let mut b = [0u8; 4];
    t.read(off, &mut b);
    u32::from_le_bytes(b)
}

pub fn wr(t: &mut MmioTransport, off: u64, v: u32) {
    t.write(off, &v.to_le_bytes());
}

pub fn device_features(t: &mut MmioTransport) -> u64 {
    wr(t, 0x14, 0);
    let lo = rd(t, 0x10) as u64;
    wr(t, 0x14, 1);
    let hi = rd(t, 0x10) as u64;
    lo | hi << 32
}

/// ACKNOWLEDGE, DRIVER, features, FEATURES_OK; returns whether FEATURES_OK stuck.
pub fn negotiate(t: &mut MmioTransport, features: u64) -> bool {
    wr(t, 0x70, 0);
    wr(t, 0x70, 1);
    wr(t, 0x70, 1 | 2);
    wr(t, 0x24, 0);
    wr(t, 0x20, features as u32);
    wr(t, 0x24, 1);
    wr(t, 0x20, (features >> 32) as u32);
    wr(t, 0x70, 1 | 2 | 8);
    rd(t, 0x70) & 8 != 0
}

/// Program queue `i` with the mock's rings and size, and mark it ready.
pub fn setup_queue(t: &mut MmioTransport, i: u32, vq: &Vq) {
    let size = u32::from(vq.size);
    wr(t, 0x30, i);
    wr(t, 0x38, size);
    let set = |t: &mut MmioTransport, lo: u64, a: GuestAddress| {
        wr(t, lo, a.0 as u32);
        wr(t, lo + 4, (a.0 >> 32) as u32);
    };
    set(t, 0x80, vq.desc_table_addr());
    set(t, 0x90, vq.avail_addr());
    set(t, 0xa0, vq.used_addr);
    wr(t, 0x44, 1);
}

pub fn driver_ok(t: &mut MmioTransport) {
    wr(t, 0x70, 1 | 2 | 8 | 4);
}

/// Wait until the used ring holds `n` entries (the worker thread runs asynchronously).
pub fn wait_used(vq: &Vq, n: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if vq.used_idx() >= n {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    false
}

/// Wait until `cond` holds (up to 10 s).
pub fn wait_for(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    false
}

/// A temporary file holding `contents`, removed on drop (`tempfile` does the removal; the
/// path is kept as a plain field for the tests' `img.0`).
pub struct TempFile(pub std::path::PathBuf, tempfile::TempPath);

impl TempFile {
    pub fn new(tag: &str, contents: &[u8]) -> Self {
        let mut f = tempfile::Builder::new()
            .prefix(&format!("hvcert-virtio-{tag}-"))
            .tempfile()
            .expect("temp file");
        std::io::Write::write_all(&mut f, contents).expect("temp file contents");
        let path = f.into_temp_path();
        TempFile(path.to_path_buf(), path)
    }
}
