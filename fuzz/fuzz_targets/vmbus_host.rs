//! VMBus host: channel messages, ring contents and indices all come from the guest. Each
//! input starts from a connected bus with channel 1 open (GPADL of pages 1..=8, rings of 4
//! pages each) and is read as operations: post a channel message, write bytes anywhere in
//! guest memory (ring headers, packets), signal a channel, poll. Covers the message parser,
//! the GPADL table, the ring reader and writer and the packet parser.
#![no_main]
use std::sync::Arc;

use hypervisor::abi::vmbus::*;
use hypervisor::vmbus::device::{
    ChannelCtx, DeviceError, Guid, OutPacket, Packet, VmbusDevice,
};
use hypervisor::vmbus::{VmbusHost, VmbusSink};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const PAGES: usize = 64;

struct Null;
impl VmbusSink for Null {
    fn post_message(&self, _: u32, _: u8, _: u32, p: &[u8]) -> bool {
        assert!(p.len() <= MAX_MESSAGE_PAYLOAD);
        true
    }
    fn signal_event(&self, _: u32, _: u8, _: u32) {}
}

/// Completes what asks for it; asks for the GPADL named by the first payload word.
struct Echo(Guid);
impl VmbusDevice for Echo {
    fn name(&self) -> &'static str {
        "echo"
    }
    fn class_id(&self) -> Guid {
        self.0
    }
    fn instance_id(&self) -> Guid {
        self.0
    }
    fn on_packet(&mut self, ctx: &mut dyn ChannelCtx, pkt: &Packet) -> Result<(), DeviceError> {
        if let Some(w) = pkt.payload.get(..4) {
            let _ = ctx.gpadl_pfns(u32::from_le_bytes([w[0], w[1], w[2], w[3]]));
        }
        if pkt.completion_requested {
            ctx.send(OutPacket::Completion {
                transaction_id: pkt.transaction_id,
                payload: pkt.payload.clone(),
            });
        }
        if pkt.payload.first() == Some(&0xff) {
            return Err(DeviceError::Malformed("0xff".into()));
        }
        Ok(())
    }
}

fn msg(ty: u32, size: usize, fields: &[(usize, u32)]) -> Vec<u8> {
    let mut m = vec![0u8; size];
    m[..4].copy_from_slice(&ty.to_le_bytes());
    for &(off, v) in fields {
        m[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }
    m
}

fn setup() -> (GuestMemoryMmap, VmbusHost) {
    let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), PAGES * 4096)]).expect("memory");
    let host = VmbusHost::new(
        mem.clone(),
        Arc::new(Null),
        vec![Box::new(Echo(CLASS_SCSI)), Box::new(Echo(CLASS_NIC))],
    )
    .expect("host");
    let post = |m: &[u8]| host.on_post_message(0, 1, HV_MESSAGE_TYPE_CHANNEL, m);
    post(&msg(14, 40, &[(8, VERSION_WIN10), (12, 0)]));
    post(&msg(3, 8, &[]));
    let mut h = msg(8, 20 + 8 + 8 * 8, &[(8, 1), (12, 1), (20, 8 * 4096)]);
    h[16..18].copy_from_slice(&(8u16 * 9).to_le_bytes());
    h[18..20].copy_from_slice(&1u16.to_le_bytes());
    for i in 0..8u64 {
        let o = 28 + 8 * i as usize;
        h[o..o + 8].copy_from_slice(&(i + 1).to_le_bytes());
    }
    post(&h);
    post(&msg(5, 148, &[(8, 1), (12, 1), (16, 1), (20, 0), (24, 4)]));
    (mem, host)
}

struct In<'a>(&'a [u8]);
impl In<'_> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (mem, host) = setup();
    let mut d = In(data);
    while let Some(op) = d.u8() {
        match op % 4 {
            0 => {
                let n = usize::from(d.u8().unwrap_or(0)) % 245;
                let m = d.take(n).to_vec();
                host.on_post_message(0, 1 + u32::from(op >> 7) * 3, HV_MESSAGE_TYPE_CHANNEL, &m);
            }
            1 => {
                let page = u64::from(d.u8().unwrap_or(0)) % PAGES as u64;
                let lo = d.u8().unwrap_or(0);
                let hi = d.u8().unwrap_or(0);
                let off = u64::from(u16::from_le_bytes([lo, hi])) % 4096;
                let n = usize::from(d.u8().unwrap_or(0));
                let bytes = d.take(n).to_vec();
                // Writes that run off the end of memory simply fail.
                let _ = mem.write_slice(&bytes, GuestAddress(page * 4096 + off));
            }
            2 => {
                let c = u32::from(d.u8().unwrap_or(0) % 4);
                host.on_signal_event(0, CHANNEL_CONNECTION_ID_BASE + c, 0);
            }
            _ => host.poll(),
        }
    }
});
