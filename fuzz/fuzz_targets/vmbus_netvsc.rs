//! netvsc's NVSP and RNDIS parsers: packets from the guest's ring, after Linux's bring-up
//! (NVSP init, receive and send buffers, RNDIS init, packet filter) or from a cold start,
//! with RNDIS bytes in send-buffer sections, GPA-direct pages or nowhere; completions of
//! receive packets; backend polls. Any panic is a bug; errors are expected.
#![no_main]
#[path = "common/vmbus.rs"]
mod vmbus;

use hypervisor::abi::netvsc::*;
use hypervisor::virtio::NetConfig;
use hypervisor::vmbus::device::{Packet, PacketKind, VmbusDevice};
use hypervisor::vmbus::netvsc::NetVsc;
use vm_memory::{Bytes, GuestAddress};
use vmbus::*;

const SEND_PFN: u64 = 64;

fn nvsp(t: u32, words: &[u32]) -> Vec<u8> {
    let mut m = t.to_le_bytes().to_vec();
    for w in words {
        m.extend_from_slice(&w.to_le_bytes());
    }
    m.resize(MESSAGE_LEN, 0);
    m
}

fn inband(payload: Vec<u8>) -> Packet {
    Packet {
        kind: PacketKind::InBand,
        completion_requested: true,
        transaction_id: 1,
        payload,
        ranges: vec![],
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut b = Input(data);
    let mode = b.u8();
    let mut ctx = Ctx::new();
    ctx.gpadls
        .insert(1, (16..16 + u64::from(b.u8() % 33)).collect());
    ctx.gpadls.insert(2, (SEND_PFN..SEND_PFN + 16).collect());
    let mut d = NetVsc::new(&NetConfig::Loopback, [0, 0x15, 0x5d, 0, 0, 1]).unwrap();
    if mode & 1 == 0 {
        let _ = d.on_packet(&mut ctx, &inband(nvsp(MSG_INIT, &[VERSION_61, VERSION_61])));
        let _ = d.on_packet(&mut ctx, &inband(nvsp(MSG1_SEND_RECV_BUF, &[1, 0xcafe])));
        let _ = d.on_packet(&mut ctx, &inband(nvsp(MSG1_SEND_SEND_BUF, &[2, 0])));
        // RNDIS INITIALIZE and a packet filter, from send sections 0 and 1.
        let init: [u32; 6] = [2, 24, 1, 1, 0, 0x4000];
        let filter: [u32; 8] = [5, 36, 2, 0x0001_010E, 4, 20, 0, 0x0b];
        for (i, m) in [&init[..], &filter[..]].iter().enumerate() {
            let bytes: Vec<u8> = m.iter().flat_map(|w| w.to_le_bytes()).collect();
            let gpa = SEND_PFN * 4096 + i as u64 * u64::from(SEND_SECTION_SIZE);
            ctx.mem.write_slice(&bytes, GuestAddress(gpa)).unwrap();
            let p = nvsp(MSG1_SEND_RNDIS_PKT, &[1, i as u32, bytes.len() as u32]);
            let _ = d.on_packet(&mut ctx, &inband(p));
        }
    }
    // Send sections carry fuzz bytes too.
    let n = usize::from(b.u16() % 6144);
    let section = b.bytes(n);
    ctx.mem
        .write_slice(
            &section,
            GuestAddress(SEND_PFN * 4096 + 2 * u64::from(SEND_SECTION_SIZE)),
        )
        .unwrap();
    let template = nvsp(MSG1_SEND_RNDIS_PKT, &[0, 2, section.len() as u32]);
    while !b.is_empty() {
        if b.u8() % 8 == 0 {
            let _ = d.poll(&mut ctx);
            continue;
        }
        let pkt = packet(&mut b, Some(&template));
        let _ = d.on_packet(&mut ctx, &pkt);
    }
});
