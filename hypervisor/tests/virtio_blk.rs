//! virtio-blk request handling through virtio-queue's mock rings (no VM, no threads).

mod virtio_util;

use hypervisor::virtio::block::{Block, BlockHandler, SECTOR_SIZE};
use hypervisor::virtio::chain::Malformed;
use hypervisor::virtio::mmio::{QueueHandler, VirtioDevice};
use hypervisor::virtio::DiskConfig;
use virtio_bindings::bindings::virtio_blk::*;
use virtio_bindings::bindings::virtio_config::VIRTIO_F_VERSION_1;
use virtio_bindings::bindings::virtio_ring::{
    VRING_DESC_F_INDIRECT, VRING_DESC_F_NEXT, VRING_DESC_F_WRITE,
};
use virtio_queue::Queue;
use virtio_util::*;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const FEATURES: u64 = (1 << VIRTIO_F_VERSION_1)
    | (1 << VIRTIO_BLK_F_FLUSH)
    | (1 << VIRTIO_BLK_F_DISCARD)
    | (1 << VIRTIO_BLK_F_WRITE_ZEROES);

const HDR: u64 = DATA;
const BUF: u64 = DATA + 0x1000;
const STATUS: u64 = DATA + 0x800;

struct Rig {
    mem: GuestMemoryMmap<()>,
    img: TempFile,
    handler: BlockHandler,
}

fn image(sectors: u64) -> Vec<u8> {
    (0..sectors * SECTOR_SIZE)
        .map(|i| (i % 251) as u8)
        .collect()
}

fn rig(tag: &str, sectors: u64, read_only: bool, features: u64) -> Rig {
    let img = TempFile::new(tag, &image(sectors));
    let blk = Block::new(&DiskConfig {
        path: img.0.clone(),
        read_only,
    })
    .expect("open image");
    assert_eq!(blk.capacity(), sectors);
    let handler = blk.handler(features).expect("handler");
    Rig {
        mem: memory(),
        img,
        handler,
    }
}

/// Submit one chain on a fresh 16-entry queue and run the handler.
fn run(rig: &mut Rig, bufs: &[Buf]) -> Result<Vec<(u32, u32)>, Malformed> {
    let vq = Vq::new(&rig.mem, ring_base(0), 16);
    add_chain(&vq, 0, bufs);
    let mut qs = vec![device_queue(&vq)];
    with_queues(&rig.mem, &mut qs, FEATURES, |q| {
        rig.handler.queue_event(0, q)
    })?;
    Ok(used(&vq))
}

fn status(rig: &Rig) -> u32 {
    u32::from(read_u8(&rig.mem, STATUS))
}

fn req(rig: &mut Rig, t: u32, sector: u64, data: &[Buf]) -> (u32, Vec<(u32, u32)>) {
    blk_header(&rig.mem, HDR, t, sector);
    rig.mem.write_obj(0xffu8, GuestAddress(STATUS)).unwrap();
    let mut bufs = vec![Buf(HDR, 16, false)];
    bufs.extend_from_slice(data);
    bufs.push(Buf(STATUS, 1, true));
    let used = run(rig, &bufs).expect("well-formed chain");
    (status(rig), used)
}

#[test]
fn write_then_read_back_and_on_disk() {
    let mut r = rig("rw", 64, false, FEATURES);
    let pattern: Vec<u8> = (0..3 * 512).map(|i| (i * 7 % 256) as u8).collect();
    r.mem.write_slice(&pattern, GuestAddress(BUF)).unwrap();
    // Data split over two descriptors of uneven size.
    let (s, used) = req(
        &mut r,
        VIRTIO_BLK_T_OUT,
        5,
        &[Buf(BUF, 1000, false), Buf(BUF + 1000, 536, false)],
    );
    assert_eq!(s, VIRTIO_BLK_S_OK);
    assert_eq!(used, vec![(0, 1)]);
    let disk = std::fs::read(&r.img.0).unwrap();
    assert_eq!(&disk[5 * 512..8 * 512], &pattern[..]);
    assert_eq!(&disk[..5 * 512], &image(5)[..], "sectors before untouched");

    let out = BUF + 0x10000;
    let (s, used) = req(
        &mut r,
        VIRTIO_BLK_T_IN,
        5,
        &[Buf(out, 512, true), Buf(out + 512, 1024, true)],
    );
    assert_eq!(s, VIRTIO_BLK_S_OK);
    assert_eq!(used, vec![(0, 1536 + 1)]);
    let mut back = vec![0u8; 1536];
    r.mem.read_slice(&mut back, GuestAddress(out)).unwrap();
    assert_eq!(back, pattern);
}

#[test]
fn flush_and_get_id() {
    let mut r = rig("flush", 8, false, FEATURES);
    let (s, used) = req(&mut r, VIRTIO_BLK_T_FLUSH, 0, &[]);
    assert_eq!((s, used), (VIRTIO_BLK_S_OK, vec![(0, 1)]));

    let (s, used) = req(&mut r, VIRTIO_BLK_T_GET_ID, 0, &[Buf(BUF, 20, true)]);
    assert_eq!(s, VIRTIO_BLK_S_OK);
    assert_eq!(used, vec![(0, 21)]);
    let mut id = [0u8; 20];
    r.mem.read_slice(&mut id, GuestAddress(BUF)).unwrap();
    let name = r.img.0.file_name().unwrap().to_string_lossy().into_owned();
    let n = name.len().min(20);
    assert_eq!(&id[..n], &name.as_bytes()[..n]);
}

#[test]
fn flush_unnegotiated_is_unsupported() {
    let mut r = rig("noflush", 8, false, 1 << VIRTIO_F_VERSION_1);
    let (s, _) = req(&mut r, VIRTIO_BLK_T_FLUSH, 0, &[]);
    assert_eq!(s, VIRTIO_BLK_S_UNSUPP);
    let (s, _) = req(&mut r, VIRTIO_BLK_T_WRITE_ZEROES, 0, &[Buf(BUF, 16, false)]);
    assert_eq!(s, VIRTIO_BLK_S_UNSUPP);
}

#[test]
fn out_of_range_is_ioerr() {
    let mut r = rig("range", 8, false, FEATURES);
    // Last sector is fine, one past is not, a straddling request is not.
    assert_eq!(
        req(&mut r, VIRTIO_BLK_T_IN, 7, &[Buf(BUF, 512, true)]).0,
        VIRTIO_BLK_S_OK
    );
    for (sector, len) in [
        (8, 512),
        (7, 1024),
        (u64::MAX, 512),
        (u64::MAX / 512 + 1, 512),
    ] {
        let (s, used) = req(&mut r, VIRTIO_BLK_T_IN, sector, &[Buf(BUF, len, true)]);
        assert_eq!(s, VIRTIO_BLK_S_IOERR, "read sector {sector} len {len}");
        assert_eq!(used, vec![(0, 1)]);
        r.mem.write_slice(&[0u8; 512], GuestAddress(BUF)).unwrap();
        let (s, _) = req(&mut r, VIRTIO_BLK_T_OUT, sector, &[Buf(BUF, len, false)]);
        assert_eq!(s, VIRTIO_BLK_S_IOERR, "write sector {sector} len {len}");
    }
    assert_eq!(
        std::fs::read(&r.img.0).unwrap(),
        image(8),
        "image unchanged"
    );
}

#[test]
fn read_only_image_refuses_writes() {
    let img = TempFile::new("ro-feat", &image(4));
    let blk = Block::new(&DiskConfig {
        path: img.0.clone(),
        read_only: true,
    })
    .unwrap();
    assert_ne!(
        blk.device_features() & (1 << VIRTIO_BLK_F_RO),
        0,
        "F_RO advertised"
    );
    assert_eq!(blk.device_features() & (1 << VIRTIO_BLK_F_WRITE_ZEROES), 0);

    let mut r = rig("ro", 4, true, FEATURES | (1 << VIRTIO_BLK_F_RO));
    r.mem.write_slice(&[0xaa; 512], GuestAddress(BUF)).unwrap();
    let (s, _) = req(&mut r, VIRTIO_BLK_T_OUT, 0, &[Buf(BUF, 512, false)]);
    assert_eq!(s, VIRTIO_BLK_S_IOERR);
    assert_eq!(std::fs::read(&r.img.0).unwrap(), image(4));
    // Reads and flushes still work.
    assert_eq!(
        req(&mut r, VIRTIO_BLK_T_IN, 1, &[Buf(BUF, 512, true)]).0,
        VIRTIO_BLK_S_OK
    );
    assert_eq!(req(&mut r, VIRTIO_BLK_T_FLUSH, 0, &[]).0, VIRTIO_BLK_S_OK);
}

#[test]
fn wrong_lengths_and_directions_are_ioerr() {
    let mut r = rig("dir", 8, false, FEATURES);
    // Read whose data buffer is device-readable.
    assert_eq!(
        req(&mut r, VIRTIO_BLK_T_IN, 0, &[Buf(BUF, 512, false)]).0,
        VIRTIO_BLK_S_IOERR
    );
    // Write whose data buffer is device-writable.
    assert_eq!(
        req(&mut r, VIRTIO_BLK_T_OUT, 0, &[Buf(BUF, 512, true)]).0,
        VIRTIO_BLK_S_IOERR
    );
    // Not a whole number of sectors.
    assert_eq!(
        req(&mut r, VIRTIO_BLK_T_IN, 0, &[Buf(BUF, 100, true)]).0,
        VIRTIO_BLK_S_IOERR
    );
    // Flush carrying data.
    assert_eq!(
        req(&mut r, VIRTIO_BLK_T_FLUSH, 0, &[Buf(BUF, 512, true)]).0,
        VIRTIO_BLK_S_IOERR
    );
    // Unknown request type.
    assert_eq!(req(&mut r, 0x4242, 0, &[]).0, VIRTIO_BLK_S_UNSUPP);
    // Header shorter than 16 bytes.
    r.mem.write_obj(0xffu8, GuestAddress(STATUS)).unwrap();
    let used = run(&mut r, &[Buf(HDR, 8, false), Buf(STATUS, 1, true)]).unwrap();
    assert_eq!((status(&r), used), (VIRTIO_BLK_S_IOERR, vec![(0, 1)]));
    assert_eq!(std::fs::read(&r.img.0).unwrap(), image(8));
}

#[test]
fn write_zeroes_and_discard() {
    let mut r = rig("wz", 16, false, FEATURES);
    let seg = |sector: u64, num: u32, flags: u32| {
        let mut b = [0u8; 16];
        b[0..8].copy_from_slice(&sector.to_le_bytes());
        b[8..12].copy_from_slice(&num.to_le_bytes());
        b[12..16].copy_from_slice(&flags.to_le_bytes());
        b
    };
    r.mem.write_slice(&seg(2, 3, 0), GuestAddress(BUF)).unwrap();
    let (s, _) = req(&mut r, VIRTIO_BLK_T_WRITE_ZEROES, 0, &[Buf(BUF, 16, false)]);
    assert_eq!(s, VIRTIO_BLK_S_OK);
    let disk = std::fs::read(&r.img.0).unwrap();
    assert!(disk[2 * 512..5 * 512].iter().all(|&b| b == 0));
    assert_eq!(&disk[5 * 512..], &image(16)[5 * 512..]);
    // Discard validates its range, then succeeds (advisory).
    let (s, _) = req(&mut r, VIRTIO_BLK_T_DISCARD, 0, &[Buf(BUF, 16, false)]);
    assert_eq!(s, VIRTIO_BLK_S_OK);
    r.mem
        .write_slice(&seg(15, 2, 0), GuestAddress(BUF))
        .unwrap();
    let (s, _) = req(&mut r, VIRTIO_BLK_T_DISCARD, 0, &[Buf(BUF, 16, false)]);
    assert_eq!(s, VIRTIO_BLK_S_IOERR, "discard past the end");
    // Unmap flag is only defined for write-zeroes.
    r.mem.write_slice(&seg(0, 1, 1), GuestAddress(BUF)).unwrap();
    let (s, _) = req(&mut r, VIRTIO_BLK_T_DISCARD, 0, &[Buf(BUF, 16, false)]);
    assert_eq!(s, VIRTIO_BLK_S_UNSUPP);
}

/// Run the handler on a queue whose descriptors were stored by `build`.
fn run_raw(rig: &mut Rig, features: u64, build: impl FnOnce(&Vq)) -> Result<(), Malformed> {
    let vq = Vq::new(&rig.mem, ring_base(0), 16);
    build(&vq);
    let mut qs: Vec<Queue> = vec![device_queue(&vq)];
    with_queues(&rig.mem, &mut qs, features, |q| {
        rig.handler.queue_event(0, q)
    })
}

const N: u16 = VRING_DESC_F_NEXT as u16;
const W: u16 = VRING_DESC_F_WRITE as u16;

#[test]
fn descriptor_loop_needs_reset() {
    let mut r = rig("loop", 8, false, FEATURES);
    blk_header(&r.mem, HDR, VIRTIO_BLK_T_IN, 0);
    let e = run_raw(&mut r, FEATURES, |vq| {
        store_desc(vq, 0, HDR, 16, N, 1);
        store_desc(vq, 1, BUF, 512, N | W, 2);
        store_desc(vq, 2, STATUS, 1, N | W, 1); // back to 1: a loop
        push_avail(vq, 0);
    })
    .unwrap_err();
    assert!(matches!(e, Malformed::Unterminated { head: 0, .. }), "{e}");
}

#[test]
fn chain_longer_than_queue_needs_reset() {
    let mut r = rig("long", 8, false, FEATURES);
    blk_header(&r.mem, HDR, VIRTIO_BLK_T_IN, 0);
    let e = run_raw(&mut r, FEATURES, |vq| {
        store_desc(vq, 0, HDR, 16, N, 1);
        for i in 1..16 {
            // Every descriptor points to the next, the last back into the table.
            store_desc(vq, i, BUF, 512, N | W, (i + 1) % 16);
        }
        push_avail(vq, 0);
    })
    .unwrap_err();
    assert!(matches!(e, Malformed::Unterminated { .. }), "{e}");
    // A next index past the end of the table.
    let e = run_raw(&mut r, FEATURES, |vq| {
        store_desc(vq, 0, HDR, 16, N, 200);
        push_avail(vq, 0);
    })
    .unwrap_err();
    assert!(matches!(e, Malformed::Unterminated { .. }), "{e}");
}

#[test]
fn buffer_outside_memory_needs_reset() {
    let mut r = rig("oob", 8, false, FEATURES);
    let e = run_raw(&mut r, FEATURES, |vq| {
        store_desc(vq, 0, HDR, 16, N, 1);
        store_desc(vq, 1, MEM_SIZE as u64 - 256, 512, N | W, 2);
        store_desc(vq, 2, STATUS, 1, W, 0);
        push_avail(vq, 0);
    })
    .unwrap_err();
    assert!(matches!(e, Malformed::OutsideMemory { .. }), "{e}");
    let e = run_raw(&mut r, FEATURES, |vq| {
        store_desc(vq, 0, u64::MAX - 4, 16, 0, 0);
        push_avail(vq, 0);
    })
    .unwrap_err();
    assert!(matches!(e, Malformed::OutsideMemory { .. }), "{e}");
}

#[test]
fn no_status_byte_needs_reset() {
    let mut r = rig("nostatus", 8, false, FEATURES);
    blk_header(&r.mem, HDR, VIRTIO_BLK_T_FLUSH, 0);
    let e = run_raw(&mut r, FEATURES, |vq| {
        store_desc(vq, 0, HDR, 16, 0, 0);
        push_avail(vq, 0);
    })
    .unwrap_err();
    assert!(matches!(e, Malformed::NoStatus { .. }), "{e}");
}

#[test]
fn readable_after_writable_needs_reset() {
    let mut r = rig("order", 8, false, FEATURES);
    blk_header(&r.mem, HDR, VIRTIO_BLK_T_FLUSH, 0);
    let e = run_raw(&mut r, FEATURES, |vq| {
        store_desc(vq, 0, STATUS, 1, N | W, 1);
        store_desc(vq, 1, HDR, 16, 0, 0);
        push_avail(vq, 0);
    })
    .unwrap_err();
    assert!(matches!(e, Malformed::ReadableAfterWritable { .. }), "{e}");
}

#[test]
fn indirect_without_negotiation_needs_reset_and_works_when_negotiated() {
    let mut r = rig("indirect", 8, false, FEATURES);
    blk_header(&r.mem, HDR, VIRTIO_BLK_T_FLUSH, 0);
    // Indirect table at DATA+0x4000: header, status.
    let table = DATA + 0x4000;
    let d = |addr: u64, len: u32, flags: u16, next: u16| {
        let mut b = [0u8; 16];
        b[0..8].copy_from_slice(&addr.to_le_bytes());
        b[8..12].copy_from_slice(&len.to_le_bytes());
        b[12..14].copy_from_slice(&flags.to_le_bytes());
        b[14..16].copy_from_slice(&next.to_le_bytes());
        b
    };
    r.mem
        .write_slice(&d(HDR, 16, N, 1), GuestAddress(table))
        .unwrap();
    r.mem
        .write_slice(&d(STATUS, 1, W, 0), GuestAddress(table + 16))
        .unwrap();
    let ind = VRING_DESC_F_INDIRECT as u16;
    let e = run_raw(&mut r, FEATURES, |vq| {
        store_desc(vq, 0, table, 32, ind, 0);
        push_avail(vq, 0);
    })
    .unwrap_err();
    assert!(matches!(e, Malformed::IndirectNotNegotiated { .. }), "{e}");

    let with_indirect =
        FEATURES | (1 << virtio_bindings::bindings::virtio_ring::VIRTIO_RING_F_INDIRECT_DESC);
    r.mem.write_obj(0xffu8, GuestAddress(STATUS)).unwrap();
    run_raw(&mut r, with_indirect, |vq| {
        store_desc(vq, 0, table, 32, ind, 0);
        push_avail(vq, 0);
    })
    .unwrap();
    assert_eq!(status(&r), VIRTIO_BLK_S_OK);
}

#[test]
fn avail_index_jump_needs_reset() {
    let mut r = rig("availjump", 8, false, FEATURES);
    let e = run_raw(&mut r, FEATURES, |vq| {
        vq.set_avail_idx(100); // 100 new chains in a 16-entry queue
    })
    .unwrap_err();
    assert!(matches!(e, Malformed::Ring(_)), "{e}");
}

#[test]
fn many_requests_in_one_batch() {
    let mut r = rig("batch", 64, false, FEATURES);
    let vq = Vq::new(&r.mem, ring_base(0), 16);
    // Five reads of sector i each, chains of 3 descriptors.
    for i in 0..5u16 {
        let h = HDR + 0x100 * i as u64;
        blk_header(&r.mem, h, VIRTIO_BLK_T_IN, i as u64);
        add_chain(
            &vq,
            i * 3,
            &[
                Buf(h, 16, false),
                Buf(BUF + 0x1000 * i as u64, 512, true),
                Buf(STATUS + i as u64, 1, true),
            ],
        );
    }
    let mut qs = vec![device_queue(&vq)];
    with_queues(&r.mem, &mut qs, FEATURES, |q| r.handler.queue_event(0, q)).unwrap();
    let u = used(&vq);
    assert_eq!(u.len(), 5);
    let img = image(64);
    for i in 0..5u64 {
        assert_eq!(u[i as usize], ((i * 3) as u32, 513));
        assert_eq!(read_u8(&r.mem, STATUS + i), 0);
        let mut b = vec![0u8; 512];
        r.mem
            .read_slice(&mut b, GuestAddress(BUF + 0x1000 * i))
            .unwrap();
        assert_eq!(&b[..], &img[i as usize * 512..(i as usize + 1) * 512]);
    }
}

#[test]
fn missing_image_is_a_clear_error() {
    let err = Block::new(&DiskConfig {
        path: "/nonexistent/hvcert/disk.img".into(),
        read_only: false,
    })
    .err()
    .expect("must fail");
    let msg = err.to_string();
    assert!(msg.contains("/nonexistent/hvcert/disk.img"), "{msg}");
}

#[test]
fn data_buffer_spanning_two_memory_regions() {
    // Two adjacent regions: one buffer descriptor crosses the boundary at 2 MiB, so the
    // vectored I/O gets two slices for it.
    let mem = GuestMemoryMmap::<()>::from_ranges(&[
        (GuestAddress(0), 2 << 20),
        (GuestAddress(2 << 20), 2 << 20),
    ])
    .unwrap();
    let img = TempFile::new("regions", &image(16));
    let blk = Block::new(&DiskConfig {
        path: img.0.clone(),
        read_only: false,
    })
    .unwrap();
    let mut h = blk.handler(FEATURES).unwrap();
    let span = (2 << 20) - 700;
    let pattern: Vec<u8> = (0..2048).map(|i| (i * 31 % 253) as u8).collect();
    mem.write_slice(&pattern, GuestAddress(span)).unwrap();
    let vq = Vq::new(&mem, ring_base(0), 16);
    blk_header(&mem, HDR, VIRTIO_BLK_T_OUT, 3);
    add_chain(
        &vq,
        0,
        &[
            Buf(HDR, 16, false),
            Buf(span, 2048, false),
            Buf(STATUS, 1, true),
        ],
    );
    blk_header(&mem, HDR + 64, VIRTIO_BLK_T_IN, 3);
    let out = (2 << 20) - 100;
    add_chain(
        &vq,
        3,
        &[
            Buf(HDR + 64, 16, false),
            Buf(out, 2048, true),
            Buf(STATUS + 1, 1, true),
        ],
    );
    let mut qs = vec![device_queue(&vq)];
    with_queues(&mem, &mut qs, FEATURES, |q| h.queue_event(0, q)).unwrap();
    assert_eq!(used(&vq), vec![(0, 1), (3, 2049)]);
    assert_eq!((read_u8(&mem, STATUS), read_u8(&mem, STATUS + 1)), (0, 0));
    assert_eq!(
        &std::fs::read(&img.0).unwrap()[3 * 512..7 * 512],
        &pattern[..]
    );
    let mut back = vec![0u8; 2048];
    mem.read_slice(&mut back, GuestAddress(out)).unwrap();
    assert_eq!(back, pattern);
}
