//! storvsc's VSTOR parser: packets from the guest's ring (payload and GPA-direct ranges)
//! against a controller on a 64-block image, after Linux's initialization sequence or from
//! a cold start. Any panic is a bug; errors are expected.
#![no_main]
#[path = "common/virtq.rs"]
mod virtq;
#[path = "common/vmbus.rs"]
mod vmbus;

use hypervisor::abi::storvsc::*;
use hypervisor::virtio::DiskConfig;
use hypervisor::vmbus::device::{Packet, PacketKind, VmbusDevice};
use hypervisor::vmbus::storvsc::StorVsc;
use std::sync::OnceLock;
use virtq::TempFile;
use vmbus::*;

fn image() -> &'static TempFile {
    static IMG: OnceLock<TempFile> = OnceLock::new();
    IMG.get_or_init(|| TempFile::new("fuzz-storvsc", &vec![7u8; 64 * 512]))
}

fn op(op: u32, extra: &[(usize, u8)]) -> Vec<u8> {
    let mut p = vec![0u8; PACKET_LEN];
    p[0..4].copy_from_slice(&op.to_le_bytes());
    for &(at, v) in extra {
        p[at] = v;
    }
    p
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut b = Input(data);
    let mode = b.u8();
    let mut ctx = Ctx::new();
    let mut d = StorVsc::new(&DiskConfig {
        path: image().0.clone(),
        read_only: mode & 2 != 0,
    })
    .unwrap();
    if mode & 1 == 0 {
        let [lo, hi] = VERSION_WIN10.to_le_bytes();
        for p in [
            op(OP_BEGIN_INITIALIZATION, &[]),
            op(OP_QUERY_PROTOCOL_VERSION, &[(12, lo), (13, hi)]),
            op(OP_QUERY_PROPERTIES, &[]),
            op(OP_END_INITIALIZATION, &[]),
        ] {
            let pkt = Packet {
                kind: PacketKind::InBand,
                completion_requested: true,
                transaction_id: 1,
                payload: p,
                ranges: vec![],
            };
            d.on_packet(&mut ctx, &pkt).unwrap();
        }
    }
    // An EXECUTE_SRB for LUN 0 as the template the fuzzer patches.
    let template = op(
        OP_EXECUTE_SRB,
        &[(srb::CDB_LENGTH, 16), (srb::SENSE_INFO_LENGTH, 20)],
    );
    while !b.is_empty() {
        let pkt = packet(&mut b, Some(&template));
        let _ = d.on_packet(&mut ctx, &pkt);
    }
});
