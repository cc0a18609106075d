//! A fake channel for driving VMBus devices without a VM: guest RAM, a GPADL table, and a
//! record of what the device sent.

use std::collections::HashMap;

use hypervisor::vmbus::device::{ChannelCtx, GpaRange, OutPacket, Packet, PacketKind};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// Bytes of fake guest RAM (GPA 0 up).
pub const RAM: u64 = 16 << 20;
/// A GPA well past the end of RAM.
pub const NOT_RAM: u64 = 1 << 40;

/// The fake channel.
pub struct Fake {
    pub mem: GuestMemoryMmap,
    pub gpadls: HashMap<u32, Vec<u64>>,
    pub sent: Vec<OutPacket>,
}

impl Fake {
    pub fn new() -> Self {
        Fake {
            mem: GuestMemoryMmap::from_ranges(&[(GuestAddress(0), RAM as usize)]).unwrap(),
            gpadls: HashMap::new(),
            sent: Vec::new(),
        }
    }

    /// Takes the packets sent so far.
    pub fn take(&mut self) -> Vec<OutPacket> {
        std::mem::take(&mut self.sent)
    }

    pub fn write(&self, gpa: u64, data: &[u8]) {
        self.mem.write_slice(data, GuestAddress(gpa)).unwrap();
    }

    pub fn read(&self, gpa: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        self.mem.read_slice(&mut v, GuestAddress(gpa)).unwrap();
        v
    }
}

impl ChannelCtx for Fake {
    fn mem(&self) -> &GuestMemoryMmap {
        &self.mem
    }
    fn gpadl_pfns(&self, handle: u32) -> Option<Vec<u64>> {
        self.gpadls.get(&handle).cloned()
    }
    fn send(&mut self, pkt: OutPacket) {
        self.sent.push(pkt);
    }
}

/// An in-band packet asking for a completion.
pub fn inband(tid: u64, payload: Vec<u8>) -> Packet {
    Packet {
        kind: PacketKind::InBand,
        completion_requested: true,
        transaction_id: tid,
        payload,
        ranges: Vec::new(),
    }
}

/// A GPA-direct packet with one range of `len` bytes at `gpa` (any page offset).
pub fn gpa_direct(tid: u64, payload: Vec<u8>, gpa: u64, len: u32) -> Packet {
    let first = gpa / 4096;
    let last = (gpa + u64::from(len.max(1)) - 1) / 4096;
    Packet {
        kind: PacketKind::GpaDirect,
        completion_requested: true,
        transaction_id: tid,
        payload,
        ranges: vec![GpaRange {
            len,
            offset: (gpa % 4096) as u32,
            pfns: (first..=last).collect(),
        }],
    }
}

/// The one completion among `sent` (panics otherwise: a test expectation).
pub fn only_completion(sent: &[OutPacket]) -> (u64, Vec<u8>) {
    assert_eq!(sent.len(), 1, "one packet expected: {sent:?}");
    match &sent[0] {
        OutPacket::Completion {
            transaction_id,
            payload,
        } => (*transaction_id, payload.clone()),
        other => panic!("completion expected, got {other:?}"),
    }
}

pub fn le32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}
