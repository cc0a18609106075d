//! A split virtqueue laid out in a small guest memory from fuzz bytes, then handed to a
//! device's queue handler as the worker thread would (shared by the virtqueue targets).
#![allow(dead_code)]
#[path = "../../../hypervisor/tests/virtio_util/mod.rs"]
mod virtio_util;

use hypervisor::virtio::mmio::QueueHandler;
use virtio_bindings::bindings::virtio_config::VIRTIO_F_VERSION_1;
use virtio_bindings::bindings::virtio_ring::{
    VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC,
};
use virtio_queue::Queue;
pub use virtio_util::TempFile;
use virtio_util::{device_queue, push_avail, store_desc, with_queues, Vq};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// Small guest memory so that addresses often fall outside it.
pub const MEM: u64 = 0x4_0000;
/// Buffers live from here on; the rings are below.
pub const BUF: u64 = 0x1_0000;
pub const QSIZE: u16 = 8;

/// Fuzz bytes, consumed from the front (zeros once exhausted).
pub struct Bytes_<'a>(pub &'a [u8]);

impl Bytes_<'_> {
    pub fn u8(&mut self) -> u8 {
        let (b, rest) = self.0.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        self.0 = rest;
        b
    }
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
}

/// One descriptor: (addr, len, flags, next).
pub type Desc = (u64, u32, u16, u16);

/// Descriptors decoded from 6 bytes each: addresses in 8-byte steps from `BUF` (some past
/// the end of memory), lengths up to 64 KiB, any of NEXT/WRITE/INDIRECT, `next` sometimes
/// past the queue.
pub fn raw_descs(b: &mut Bytes_<'_>) -> Vec<Desc> {
    (0..QSIZE)
        .map(|_| {
            let addr = BUF + u64::from(b.u16()) * 8;
            let len = u32::from(b.u16());
            let flags = u16::from(b.u8() & 7);
            let next = u16::from(b.u8() % (2 * QSIZE as u8));
            (addr, len, flags, next)
        })
        .collect()
}

/// Negotiated features from one byte: VERSION_1 always, plus `extra` bits in order, then
/// INDIRECT_DESC and EVENT_IDX.
pub fn features(bits: u8, extra: &[u32]) -> u64 {
    let mut f = 1u64 << VIRTIO_F_VERSION_1;
    let all: Vec<u32> = extra
        .iter()
        .copied()
        .chain([VIRTIO_RING_F_INDIRECT_DESC, VIRTIO_RING_F_EVENT_IDX])
        .collect();
    for (i, bit) in all.iter().enumerate() {
        if bits & (1 << i) != 0 {
            f |= 1 << bit;
        }
    }
    f
}

/// Lays out `descs`, makes `heads` available, copies `data` to `BUF`, and runs `handler`
/// on queue `queue` (the handler owns queue index `queue` among `nqueues`).
pub fn run(
    handler: &mut dyn QueueHandler,
    nqueues: usize,
    queue: usize,
    descs: &[Desc],
    heads: &[u16],
    data: &[u8],
    features: u64,
) {
    let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), MEM as usize)]).unwrap();
    let n = data.len().min((MEM - BUF) as usize);
    mem.write_slice(&data[..n], GuestAddress(BUF)).unwrap();
    let vqs: Vec<Vq> = (0..nqueues)
        .map(|i| Vq::new(&mem, GuestAddress(0x1000 + 0x2000 * i as u64), QSIZE))
        .collect();
    let vq = &vqs[queue];
    for (i, d) in descs.iter().enumerate() {
        store_desc(vq, i as u16, d.0, d.1, d.2, d.3);
    }
    for &h in heads {
        push_avail(vq, h);
    }
    let mut qs: Vec<Queue> = vqs.iter().map(device_queue).collect();
    let _ = with_queues(&mem, &mut qs, features, |q| handler.queue_event(queue, q));
}
