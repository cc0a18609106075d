//! Virtqueue descriptor chains (direct and indirect, any flags, loops, out-of-range
//! addresses) and virtio-blk requests, through the blk handler the worker runs.
#![no_main]
#[path = "common/virtq.rs"]
mod virtq;

use hypervisor::virtio::block::{Block, SECTOR_SIZE};
use hypervisor::virtio::DiskConfig;
use std::sync::OnceLock;
use virtio_bindings::bindings::virtio_blk::*;
use virtq::*;

fn image() -> &'static TempFile {
    static IMG: OnceLock<TempFile> = OnceLock::new();
    IMG.get_or_init(|| TempFile::new("fuzz-blk", &vec![7u8; 32 * SECTOR_SIZE as usize]))
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut b = Bytes_(data);
    let fbits = b.u8();
    let features = features(
        fbits,
        &[
            VIRTIO_BLK_F_FLUSH,
            VIRTIO_BLK_F_DISCARD,
            VIRTIO_BLK_F_WRITE_ZEROES,
        ],
    );
    let descs = raw_descs(&mut b);
    let nheads = b.u8() % 10;
    let heads: Vec<u16> = (0..nheads).map(|_| u16::from(b.u8() % 12)).collect();
    let blk = Block::new(&DiskConfig {
        path: image().0.clone(),
        read_only: fbits & 0x80 != 0,
    })
    .unwrap();
    let mut h = blk.handler(features).unwrap();
    run(&mut h, 1, 0, &descs, &heads, b.0, features);
    let len = std::fs::metadata(&image().0).unwrap().len();
    assert_eq!(len, 32 * SECTOR_SIZE, "the image never grows");
});
