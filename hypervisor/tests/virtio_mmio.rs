//! The virtio-mmio transport driven register by register, with the device worker thread.

mod virtio_util;

use hypervisor::bus::MmioDevice;
use hypervisor::virtio::block::SECTOR_SIZE;
use hypervisor::virtio::mmio::{MmioTransport, MAGIC, TRANSPORT_FEATURES, VENDOR_ID};
use hypervisor::virtio::{Block, DiskConfig, INT_CONFIG, INT_VRING};
use virtio_bindings::bindings::virtio_blk::*;
use virtio_bindings::bindings::virtio_config::VIRTIO_F_VERSION_1;
use virtio_bindings::bindings::virtio_ring::VIRTIO_RING_F_EVENT_IDX;
use virtio_util::*;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const NEEDS_RESET: u32 = 64;

fn blk(tag: &str, sectors: u64) -> (GuestMemoryMmap<()>, TempFile, MmioTransport) {
    let img = TempFile::new(tag, &vec![0u8; (sectors * SECTOR_SIZE) as usize]);
    let mem = memory();
    let dev = Block::new(&DiskConfig {
        path: img.0.clone(),
        read_only: false,
    })
    .unwrap();
    let t = MmioTransport::new(Box::new(dev), mem.clone()).unwrap();
    (mem, img, t)
}

#[test]
fn identity_registers() {
    let (_m, _i, mut t) = blk("ident", 8);
    assert_eq!(rd(&mut t, 0x000), MAGIC);
    assert_eq!(rd(&mut t, 0x004), 2);
    assert_eq!(rd(&mut t, 0x008), 2, "block device id");
    assert_eq!(rd(&mut t, 0x00c), VENDOR_ID);
    let f = device_features(&mut t);
    assert_eq!(f & TRANSPORT_FEATURES, TRANSPORT_FEATURES);
    assert_ne!(f & (1 << VIRTIO_BLK_F_FLUSH), 0);
    assert_eq!(f & (1 << VIRTIO_BLK_F_RO), 0);
    wr(&mut t, 0x30, 0);
    assert_eq!(rd(&mut t, 0x34), 256, "QueueNumMax");
    wr(&mut t, 0x30, 1);
    assert_eq!(rd(&mut t, 0x34), 0, "no queue 1");
    // Narrow or unaligned register accesses read as zero and never panic.
    let mut b2 = [0xffu8; 2];
    t.read(0, &mut b2);
    assert_eq!(b2, [0, 0]);
    let mut b4 = [0xffu8; 4];
    t.read(2, &mut b4);
    assert_eq!(b4, [0; 4]);
    t.write(0x70, &[1]);
    assert_eq!(rd(&mut t, 0x70), 0, "1-byte status write ignored");
    // Config space: capacity at any width.
    let mut cap = [0u8; 8];
    t.read(0x100, &mut cap);
    assert_eq!(u64::from_le_bytes(cap), 8);
    let mut one = [0u8; 1];
    t.read(0x100, &mut one);
    assert_eq!(one[0], 8);
    let mut past = [0xffu8; 4];
    t.read(0x100 + 4000, &mut past);
    assert_eq!(past, [0; 4]);
    for off in (0..0x1000u64).step_by(2) {
        t.read(off, &mut b4);
        t.write(off, &[0xff; 3]);
    }
}

#[test]
fn features_ok_requires_version_1_and_offered_bits() {
    let (_m, _i, mut t) = blk("feat", 8);
    assert!(
        !negotiate(&mut t, 1 << VIRTIO_BLK_F_FLUSH),
        "legacy driver refused"
    );
    assert!(
        !negotiate(&mut t, (1 << VIRTIO_F_VERSION_1) | (1 << 50)),
        "unoffered feature refused"
    );
    assert!(
        !negotiate(&mut t, (1 << VIRTIO_F_VERSION_1) | (1 << VIRTIO_BLK_F_RO)),
        "F_RO not offered on a writable image"
    );
    assert!(negotiate(&mut t, 1 << VIRTIO_F_VERSION_1));
    // Features are frozen after FEATURES_OK.
    wr(&mut t, 0x24, 0);
    wr(&mut t, 0x20, 0xffff_ffff);
    wr(&mut t, 0x70, 1 | 2 | 8 | 4);
    assert_eq!(rd(&mut t, 0x70) & NEEDS_RESET, 0);
    assert!(t.is_active());
}

#[test]
fn driver_ok_without_features_ok_is_ignored() {
    let (_m, _i, mut t) = blk("order", 8);
    wr(&mut t, 0x70, 1);
    wr(&mut t, 0x70, 1 | 2);
    wr(&mut t, 0x70, 1 | 2 | 4);
    assert_eq!(rd(&mut t, 0x70), 1 | 2);
    assert!(!t.is_active());
    // Clearing bits other than by reset is ignored.
    wr(&mut t, 0x70, 1);
    assert_eq!(rd(&mut t, 0x70), 1 | 2);
}

fn blk_roundtrip(event_idx: bool, use_eventfd: bool) {
    let (mem, img, mut t) = blk(&format!("rt{event_idx}{use_eventfd}"), 32);
    let vq = Vq::new(&mem, ring_base(0), 64);
    let mut f = (1 << VIRTIO_F_VERSION_1) | (1 << VIRTIO_BLK_F_FLUSH);
    if event_idx {
        f |= 1 << VIRTIO_RING_F_EVENT_IDX;
    }
    assert!(negotiate(&mut t, f));
    setup_queue(&mut t, 0, &vq);
    driver_ok(&mut t);
    assert!(t.is_active());
    assert_eq!(rd(&mut t, 0x70), 1 | 2 | 4 | 8);

    let hdr = DATA;
    let data = DATA + 0x1000;
    let st = DATA + 0x800;
    let pattern: Vec<u8> = (0..4096).map(|i| (i * 13 % 256) as u8).collect();
    mem.write_slice(&pattern, GuestAddress(data)).unwrap();
    let mut n = 0u16;
    let notify = |t: &mut MmioTransport| {
        if use_eventfd {
            // What KVM does when the ioeventfd on QueueNotify matches.
            t.queue_evts()[0].write(1).unwrap();
        } else {
            wr(t, 0x50, 0);
        }
    };
    // Several write requests (8 sectors each), then a flush, then reads.
    for i in 0..3u64 {
        let h = hdr + 0x40 * i;
        blk_header(&mem, h, VIRTIO_BLK_T_OUT, i * 8);
        add_chain(
            &vq,
            (i * 3) as u16,
            &[
                Buf(h, 16, false),
                Buf(data, 4096, false),
                Buf(st + i, 1, true),
            ],
        );
        n += 1;
        notify(&mut t);
        assert!(wait_used(&vq, n), "write {i} completed");
    }
    blk_header(&mem, hdr + 0x100, VIRTIO_BLK_T_FLUSH, 0);
    add_chain(
        &vq,
        10,
        &[Buf(hdr + 0x100, 16, false), Buf(st + 10, 1, true)],
    );
    n += 1;
    notify(&mut t);
    assert!(wait_used(&vq, n));
    for i in [0u64, 1, 2, 10] {
        assert_eq!(read_u8(&mem, st + i), 0, "status of request {i}");
    }
    let disk = std::fs::read(&img.0).unwrap();
    for i in 0..3 {
        assert_eq!(&disk[i * 4096..(i + 1) * 4096], &pattern[..]);
    }
    if !use_eventfd {
        assert!(
            hypervisor::virtio::mmio::mmio_notify_count() >= 4,
            "fallback path counted"
        );
    }
    // Interrupt raised through the eventfd with the VRING bit; ACK clears it.
    assert!(wait_for(|| rd(&mut t, 0x60) & INT_VRING != 0));
    assert!(t.interrupt_evt().read().unwrap() >= 1);
    wr(&mut t, 0x64, INT_VRING);
    assert_eq!(rd(&mut t, 0x60), 0);

    // Reset stops the device and clears everything; it can then be set up again.
    wr(&mut t, 0x70, 0);
    assert!(!t.is_active());
    assert_eq!(rd(&mut t, 0x70), 0);
    wr(&mut t, 0x30, 0);
    assert_eq!(rd(&mut t, 0x44), 0, "queue not ready after reset");
    let vq2 = Vq::new(&mem, ring_base(1), 16);
    assert!(negotiate(&mut t, f));
    setup_queue(&mut t, 0, &vq2);
    driver_ok(&mut t);
    blk_header(&mem, hdr, VIRTIO_BLK_T_IN, 8);
    let out = DATA + 0x10000;
    add_chain(
        &vq2,
        0,
        &[Buf(hdr, 16, false), Buf(out, 4096, true), Buf(st, 1, true)],
    );
    wr(&mut t, 0x50, 0);
    assert!(wait_used(&vq2, 1));
    let mut back = vec![0u8; 4096];
    mem.read_slice(&mut back, GuestAddress(out)).unwrap();
    assert_eq!(back, pattern);
}

#[test]
fn blk_roundtrip_mmio_notify() {
    blk_roundtrip(false, false);
}

#[test]
fn blk_roundtrip_eventfd_notify_event_idx() {
    blk_roundtrip(true, true);
}

#[test]
fn malformed_ring_sets_needs_reset_and_reset_recovers() {
    let (mem, _img, mut t) = blk("nr", 8);
    let vq = Vq::new(&mem, ring_base(0), 16);
    assert!(negotiate(&mut t, 1 << VIRTIO_F_VERSION_1));
    setup_queue(&mut t, 0, &vq);
    driver_ok(&mut t);
    // A two-descriptor loop.
    store_desc(&vq, 0, DATA, 16, 1, 1);
    store_desc(&vq, 1, DATA + 16, 16, 1, 0);
    push_avail(&vq, 0);
    wr(&mut t, 0x50, 0);
    assert!(wait_for(|| rd(&mut t, 0x70) & NEEDS_RESET != 0));
    assert_ne!(rd(&mut t, 0x60) & INT_CONFIG, 0, "config interrupt raised");
    assert!(t.error().unwrap().contains("cut short"), "{:?}", t.error());
    // Further notifications are ignored while in NEEDS_RESET.
    wr(&mut t, 0x50, 0);
    assert_eq!(vq.used_idx(), 0);
    // Reset clears NEEDS_RESET; the device works again.
    wr(&mut t, 0x70, 0);
    assert_eq!(rd(&mut t, 0x70), 0);
    assert_eq!(rd(&mut t, 0x60), 0);
    assert!(t.error().is_none());
    let vq = Vq::new(&mem, ring_base(2), 16);
    assert!(negotiate(&mut t, 1 << VIRTIO_F_VERSION_1));
    setup_queue(&mut t, 0, &vq);
    driver_ok(&mut t);
    blk_header(&mem, DATA, VIRTIO_BLK_T_IN, 0);
    add_chain(
        &vq,
        0,
        &[
            Buf(DATA, 16, false),
            Buf(DATA + 0x1000, 512, true),
            Buf(DATA + 0x800, 1, true),
        ],
    );
    wr(&mut t, 0x50, 0);
    assert!(wait_used(&vq, 1));
    assert_eq!(rd(&mut t, 0x70) & NEEDS_RESET, 0);
}

#[test]
fn bad_queue_setup_needs_reset_at_driver_ok() {
    // Size not a power of two.
    let (mem, _img, mut t) = blk("qsize", 8);
    let vq = Vq::new(&mem, ring_base(0), 16);
    assert!(negotiate(&mut t, 1 << VIRTIO_F_VERSION_1));
    setup_queue(&mut t, 0, &vq);
    wr(&mut t, 0x30, 0);
    wr(&mut t, 0x38, 12);
    driver_ok(&mut t);
    assert_ne!(rd(&mut t, 0x70) & NEEDS_RESET, 0);
    assert!(!t.is_active());
    assert!(t.error().unwrap().contains("size 12"), "{:?}", t.error());

    // Rings outside guest memory.
    wr(&mut t, 0x70, 0);
    assert!(negotiate(&mut t, 1 << VIRTIO_F_VERSION_1));
    setup_queue(&mut t, 0, &vq);
    wr(&mut t, 0xa0, 0xff00_0000);
    driver_ok(&mut t);
    assert_ne!(rd(&mut t, 0x70) & NEEDS_RESET, 0);
    assert!(
        t.error().unwrap().contains("not in guest memory"),
        "{:?}",
        t.error()
    );

    // Queue registers written before FEATURES_OK are ignored.
    wr(&mut t, 0x70, 0);
    wr(&mut t, 0x30, 0);
    wr(&mut t, 0x38, 8);
    wr(&mut t, 0x44, 1);
    assert_eq!(rd(&mut t, 0x44), 0);
    assert_eq!(rd(&mut t, 0x38), 0);
}

#[test]
fn notify_before_driver_ok_and_bad_queue_index_are_harmless() {
    let (mem, _img, mut t) = blk("notify", 8);
    wr(&mut t, 0x50, 0);
    wr(&mut t, 0x50, 7);
    let vq = Vq::new(&mem, ring_base(0), 16);
    assert!(negotiate(&mut t, 1 << VIRTIO_F_VERSION_1));
    setup_queue(&mut t, 0, &vq);
    // A chain made available before DRIVER_OK is processed when the worker starts.
    blk_header(&mem, DATA, VIRTIO_BLK_T_FLUSH, 0);
    add_chain(&vq, 0, &[Buf(DATA, 16, false), Buf(DATA + 0x800, 1, true)]);
    driver_ok(&mut t);
    wr(&mut t, 0x50, 0xffff);
    assert!(wait_used(&vq, 1));
    // FLUSH was not negotiated.
    assert_eq!(u32::from(read_u8(&mem, DATA + 0x800)), VIRTIO_BLK_S_UNSUPP);
}
