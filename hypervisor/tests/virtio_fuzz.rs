//! Property-based fuzzing of descriptor-chain and request parsing: random descriptor
//! tables, available rings and request bytes are fed to the virtio-blk and virtio-net
//! handlers. Whatever the guest writes, the handler returns (a request status or a
//! `Malformed` error that the transport turns into NEEDS_RESET) and never panics; the image
//! never grows and the used ring never holds more entries than were made available.
//!
//! Failing cases are persisted in `tests/virtio_fuzz.proptest-regressions` (committed) and
//! replayed first on every run.

mod virtio_util;

use hypervisor::virtio::block::{Block, SECTOR_SIZE};
use hypervisor::virtio::mmio::QueueHandler;
use hypervisor::virtio::net::{RX, TX};
use hypervisor::virtio::{DiskConfig, Net, NetConfig};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use virtio_bindings::bindings::virtio_blk::*;
use virtio_bindings::bindings::virtio_config::VIRTIO_F_VERSION_1;
use virtio_bindings::bindings::virtio_ring::{
    VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC,
};
use virtio_queue::Queue;
use virtio_util::*;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// Small guest memory so that random addresses often fall outside it.
const FUZZ_MEM: u64 = 0x4_0000;
const QSIZE: u16 = 8;
/// Buffers live in [0x10000, FUZZ_MEM); rings (and the used rings at +0x8000) below.
const BUF_BASE: u64 = 0x1_0000;

#[derive(Debug, Clone)]
struct RawDesc {
    addr: u64,
    len: u32,
    flags: u16,
    next: u16,
}

fn addr() -> impl Strategy<Value = u64> {
    prop_oneof![
        6 => BUF_BASE..FUZZ_MEM,
        1 => FUZZ_MEM - 64..FUZZ_MEM + 64,
        1 => Just(0u64),
        1 => any::<u64>(),
        1 => u64::MAX - 64..=u64::MAX,
    ]
}

fn len() -> impl Strategy<Value = u32> {
    prop_oneof![
        4 => Just(16u32),
        4 => Just(1u32),
        4 => Just(512u32),
        2 => 0u32..4096,
        1 => any::<u32>(),
    ]
}

fn desc() -> impl Strategy<Value = RawDesc> {
    (
        addr(),
        len(),
        0u16..8,
        prop_oneof![4 => 0u16..QSIZE, 1 => any::<u16>()],
    )
        .prop_map(|(addr, len, flags, next)| RawDesc {
            addr,
            len,
            flags,
            next,
        })
}

fn req_type() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(VIRTIO_BLK_T_IN),
        Just(VIRTIO_BLK_T_OUT),
        Just(VIRTIO_BLK_T_FLUSH),
        Just(VIRTIO_BLK_T_GET_ID),
        Just(VIRTIO_BLK_T_DISCARD),
        Just(VIRTIO_BLK_T_WRITE_ZEROES),
        any::<u32>(),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    descs: Vec<RawDesc>,
    /// Heads put into the available ring.
    heads: Vec<u16>,
    /// Extra amount added to avail.idx beyond `heads.len()` (a lying driver).
    idx_skew: u16,
    /// Request headers written at random buffer addresses: (addr, type, sector).
    headers: Vec<(u64, u32, u64)>,
    /// Random bytes sprinkled over buffer memory.
    noise: Vec<(u64, Vec<u8>)>,
    features: u64,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(desc(), QSIZE as usize),
        prop::collection::vec(prop_oneof![8 => 0u16..QSIZE, 1 => any::<u16>()], 0..10),
        prop_oneof![8 => Just(0u16), 1 => any::<u16>()],
        prop::collection::vec(
            (
                BUF_BASE..FUZZ_MEM - 16,
                req_type(),
                prop_oneof![0u64..40, Just(u64::MAX / 512), any::<u64>()],
            ),
            0..6,
        ),
        prop::collection::vec(
            (
                BUF_BASE..FUZZ_MEM - 64,
                prop::collection::vec(any::<u8>(), 0..64),
            ),
            0..4,
        ),
        any::<u8>(),
    )
        .prop_map(|(descs, heads, idx_skew, headers, noise, fbits)| {
            let mut features = 1u64 << VIRTIO_F_VERSION_1;
            for (bit, f) in [
                VIRTIO_BLK_F_FLUSH,
                VIRTIO_BLK_F_DISCARD,
                VIRTIO_BLK_F_WRITE_ZEROES,
                VIRTIO_RING_F_INDIRECT_DESC,
                VIRTIO_RING_F_EVENT_IDX,
            ]
            .iter()
            .enumerate()
            {
                if fbits & (1 << bit) != 0 {
                    features |= 1 << f;
                }
            }
            Case {
                descs,
                heads,
                idx_skew,
                headers,
                noise,
                features,
            }
        })
}

fn lay_out(mem: &GuestMemoryMmap<()>, vq: &Vq, c: &Case) {
    for (a, bytes) in &c.noise {
        mem.write_slice(bytes, GuestAddress(*a)).unwrap();
    }
    for (a, t, s) in &c.headers {
        blk_header(mem, *a, *t, *s);
    }
    for (i, d) in c.descs.iter().enumerate() {
        store_desc(vq, i as u16, d.addr, d.len, d.flags, d.next);
    }
    for &h in &c.heads {
        push_avail(vq, h);
    }
    let idx = vq.avail_idx();
    vq.set_avail_idx(idx.wrapping_add(c.idx_skew));
}

fn small_memory() -> GuestMemoryMmap<()> {
    GuestMemoryMmap::from_ranges(&[(GuestAddress(0), FUZZ_MEM as usize)]).unwrap()
}

const SECTORS: u64 = 32;

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1000,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/virtio_fuzz.proptest-regressions",
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn blk_never_panics(c in case()) {
        let mem = small_memory();
        let img = TempFile::new("fuzz", &vec![7u8; (SECTORS * SECTOR_SIZE) as usize]);
        let blk = Block::new(&DiskConfig { path: img.0.clone(), read_only: c.features & 1 != 0 }).unwrap();
        let mut h = blk.handler(c.features).unwrap();
        let vq = Vq::new(&mem, GuestAddress(0x1000), QSIZE);
        lay_out(&mem, &vq, &c);
        let mut qs: Vec<Queue> = vec![device_queue(&vq)];
        let r = with_queues(&mem, &mut qs, c.features, |q| h.queue_event(0, q));
        let n_used = vq.used_idx();
        prop_assert!(usize::from(n_used) <= c.heads.len(), "used {} > offered {}", n_used, c.heads.len());
        if r.is_ok() && c.idx_skew == 0 {
            prop_assert_eq!(usize::from(n_used), c.heads.len(), "all chains completed");
        }
        let l = std::fs::metadata(&img.0).unwrap().len();
        prop_assert_eq!(l, SECTORS * SECTOR_SIZE, "image size unchanged");
    }

    #[test]
    fn net_never_panics(c in case(), loop_tx in any::<bool>()) {
        let mem = small_memory();
        let net = Net::new(&NetConfig::Loopback, [2, 0, 0, 0, 0, 1]).unwrap();
        let mut h = net.handler().unwrap();
        // The random queue is RX or TX; the other one is a sane queue with a few buffers.
        let (fuzzed, other) = if loop_tx { (TX, RX) } else { (RX, TX) };
        let vq = Vq::new(&mem, GuestAddress(0x1000), QSIZE);
        let vq2 = Vq::new(&mem, GuestAddress(0x4000), QSIZE);
        lay_out(&mem, &vq, &c);
        if other == RX {
            for i in 0..4u16 {
                add_chain(&vq2, i, &[Buf(BUF_BASE + 0x2000 * i as u64, 1600, true)]);
            }
        } else {
            for i in 0..4u16 {
                add_chain(&vq2, i, &[Buf(BUF_BASE + 0x2000 * i as u64, 80, false)]);
            }
        }
        let mut qs: Vec<Queue> = vec![Queue::default(), Queue::default()];
        qs[fuzzed] = device_queue(&vq);
        qs[other] = device_queue(&vq2);
        let _ = with_queues(&mem, &mut qs, c.features, |q| {
            h.queue_event(TX, q)?;
            h.queue_event(RX, q)
        });
        prop_assert!(usize::from(vq.used_idx()) <= c.heads.len());
    }
}

fn mmio_op() -> impl Strategy<Value = (bool, u64, u32, usize)> {
    (
        any::<bool>(),
        prop_oneof![
            4 => (0u64..0x40).prop_map(|r| r * 4),
            2 => prop::sample::select(vec![0x70u64, 0x70, 0x50, 0x44, 0x38, 0x30, 0x20, 0x24]),
            1 => 0u64..0x1000,
        ],
        prop_oneof![
            4 => prop::sample::select(vec![0u32, 1, 3, 7, 11, 15, 0x4000_0000 >> 30, 16, 256]),
            1 => any::<u32>(),
        ],
        prop::sample::select(vec![1usize, 2, 4, 4, 4, 8]),
    )
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 300,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/virtio_fuzz.proptest-regressions",
        ))),
        ..ProptestConfig::default()
    })]

    /// Random register traffic (any offset, width, value, order) never panics the transport,
    /// and the identity registers keep their values.
    #[test]
    fn mmio_registers_never_panic(ops in prop::collection::vec(mmio_op(), 1..60)) {
        use hypervisor::bus::MmioDevice;
        let mem = small_memory();
        let img = TempFile::new("fuzzmmio", &vec![0u8; 4096]);
        let blk = Block::new(&DiskConfig { path: img.0.clone(), read_only: false }).unwrap();
        let mut t = hypervisor::virtio::MmioTransport::new(Box::new(blk), mem).unwrap();
        for (write, off, val, width) in ops {
            let bytes = u64::from(val).to_le_bytes();
            if write {
                t.write(off, &bytes[..width]);
            } else {
                let mut b = vec![0u8; width];
                t.read(off, &mut b);
            }
        }
        prop_assert_eq!(rd(&mut t, 0), hypervisor::virtio::mmio::MAGIC);
        prop_assert_eq!(rd(&mut t, 4), 2);
    }
}

fn cdb() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![
            prop::sample::select(vec![
                0x00u8, 0x03, 0x12, 0x25, 0x9e, 0x1a, 0x5a, 0xa0, 0x35, 0x91, 0x28, 0x88, 0x2a,
                0x8a
            ]),
            any::<u8>(),
        ],
        prop::collection::vec(
            prop_oneof![4 => 0u8..4, 2 => any::<u8>(), 1 => Just(0xffu8)],
            31,
        ),
    )
        .prop_map(|(op, rest)| {
            let mut v = vec![op];
            v.extend(rest);
            v
        })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 600,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/virtio_fuzz.proptest-regressions",
        ))),
        ..ProptestConfig::default()
    })]

    /// virtio-scsi with random CDBs, LUNs and buffer sizes (and, half the time, random
    /// descriptor tables): never a panic, the image never grows, and a well-formed chain
    /// always completes with a response.
    #[test]
    fn scsi_never_panics(
        c in case(),
        random_table in any::<bool>(),
        cdb in cdb(),
        lun in prop_oneof![3 => Just([1u8, 0, 0x40, 0, 0, 0, 0, 0]), 1 => any::<[u8; 8]>()],
        out_len in prop_oneof![Just(0u32), Just(512), 0u32..4096],
        in_len in prop_oneof![Just(0u32), Just(512), 0u32..8192],
        resp_len in prop_oneof![4 => Just(108u32), 1 => 0u32..200],
    ) {
        use hypervisor::virtio::scsi::{REQUEST_Q, REQ_LEN};
        use hypervisor::virtio::Scsi;
        let mem = small_memory();
        let img = TempFile::new("fuzzscsi", &vec![3u8; (SECTORS * SECTOR_SIZE) as usize]);
        let scsi = Scsi::new(&DiskConfig { path: img.0.clone(), read_only: c.features & 2 != 0 }).unwrap();
        let mut h = scsi.handler().unwrap();
        let vq = Vq::new(&mem, GuestAddress(0x1000), QSIZE);
        let offered = if random_table {
            lay_out(&mem, &vq, &c);
            c.heads.len()
        } else {
            let mut req = vec![0u8; REQ_LEN as usize];
            req[0..8].copy_from_slice(&lun);
            req[19..51].copy_from_slice(&cdb);
            mem.write_slice(&req, GuestAddress(BUF_BASE)).unwrap();
            let mut bufs = vec![Buf(BUF_BASE, REQ_LEN as u32, false)];
            if out_len > 0 {
                bufs.push(Buf(BUF_BASE + 0x1000, out_len, false));
            }
            bufs.push(Buf(BUF_BASE + 0x3000, resp_len, true));
            if in_len > 0 {
                bufs.push(Buf(BUF_BASE + 0x4000, in_len, true));
            }
            add_chain(&vq, 0, &bufs);
            1
        };
        let mut qs: Vec<Queue> = vec![Queue::default(), Queue::default(), device_queue(&vq)];
        let r = with_queues(&mem, &mut qs, c.features, |q| h.queue_event(REQUEST_Q, q));
        let n = usize::from(vq.used_idx());
        prop_assert!(n <= offered);
        if !random_table {
            // The response is the first 108 bytes of the device-writable part, whatever the
            // descriptor boundaries.
            let room = resp_len + in_len >= 108;
            prop_assert_eq!(r.is_ok(), room, "reset only without room for a response");
            prop_assert_eq!(n, usize::from(room));
        }
        prop_assert_eq!(std::fs::metadata(&img.0).unwrap().len(), SECTORS * SECTOR_SIZE);
    }
}
