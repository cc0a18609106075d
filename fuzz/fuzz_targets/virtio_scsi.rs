//! virtio-scsi commands: the request header and its CDB come from the guest. Half the
//! inputs use a well-formed chain (request, response, 4 KiB data-in) so that the fuzzer
//! spends its time in the CDB decoding; the other half use raw descriptors.
#![no_main]
#[path = "common/virtq.rs"]
mod virtq;

use hypervisor::virtio::scsi::Scsi;
use hypervisor::virtio::DiskConfig;
use std::sync::OnceLock;
use virtio_bindings::bindings::virtio_ring::{VRING_DESC_F_NEXT, VRING_DESC_F_WRITE};
use virtq::*;

/// virtio_scsi_cmd_req with a 32-byte CDB, and virtio_scsi_cmd_resp with 96 sense bytes.
const REQ: u32 = 51;
const RESP: u32 = 108;

fn image() -> &'static TempFile {
    static IMG: OnceLock<TempFile> = OnceLock::new();
    IMG.get_or_init(|| TempFile::new("fuzz-scsi", &vec![7u8; 64 * 512]))
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut b = Bytes_(data);
    let mode = b.u8();
    let features = features(mode >> 1, &[]);
    let (descs, heads) = if mode & 1 == 0 {
        let (n, w) = (VRING_DESC_F_NEXT as u16, VRING_DESC_F_WRITE as u16);
        let descs = vec![
            (BUF, REQ, n, 1),
            (BUF + 0x1000, RESP, n | w, 2),
            (BUF + 0x2000, 4096, w, 0),
        ];
        (descs, vec![0u16])
    } else {
        let descs = raw_descs(&mut b);
        let nheads = b.u8() % 10;
        (descs, (0..nheads).map(|_| u16::from(b.u8() % 12)).collect())
    };
    let scsi = Scsi::new(&DiskConfig {
        path: image().0.clone(),
        read_only: mode & 0x80 != 0,
    })
    .unwrap();
    let mut h = scsi.handler().unwrap();
    // Queue 2 is the first request queue (0: control, 1: event).
    run(&mut h, 3, 2, &descs, &heads, b.0, features);
});
