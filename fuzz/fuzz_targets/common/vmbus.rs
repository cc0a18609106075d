//! Shared pieces of the VMBus device targets: a channel over 1 MiB of guest RAM and a
//! decoder turning fuzz bytes into guest packets (payload and GPA-direct ranges).
#![allow(dead_code)]

use std::collections::HashMap;

use hypervisor::vmbus::device::{ChannelCtx, GpaRange, OutPacket, Packet, PacketKind};
use vm_memory::{GuestAddress, GuestMemoryMmap};

/// Guest RAM: 256 pages from GPA 0.
pub const RAM_PAGES: u64 = 256;

pub struct Input<'a>(pub &'a [u8]);

impl Input<'_> {
    pub fn u8(&mut self) -> u8 {
        let (b, rest) = self.0.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        self.0 = rest;
        b
    }
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.0.len());
        let (a, rest) = self.0.split_at(n);
        self.0 = rest;
        a.to_vec()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

pub struct Ctx {
    pub mem: GuestMemoryMmap,
    pub gpadls: HashMap<u32, Vec<u64>>,
    pub sent: Vec<OutPacket>,
}

impl Ctx {
    pub fn new() -> Self {
        Ctx {
            mem: GuestMemoryMmap::from_ranges(&[(GuestAddress(0), (RAM_PAGES * 4096) as usize)])
                .unwrap(),
            gpadls: HashMap::new(),
            sent: Vec::new(),
        }
    }
}

impl ChannelCtx for Ctx {
    fn mem(&self) -> &GuestMemoryMmap {
        &self.mem
    }
    fn gpadl_pfns(&self, handle: u32) -> Option<Vec<u64>> {
        self.gpadls.get(&handle).cloned()
    }
    fn send(&mut self, pkt: OutPacket) {
        // Keep memory bounded over long inputs.
        if self.sent.len() > 64 {
            self.sent.clear();
        }
        self.sent.push(pkt);
    }
}

fn range(b: &mut Input) -> GpaRange {
    let len = u32::from(b.u16()) * (u32::from(b.u8() % 4) + 1);
    let offset = u32::from(b.u16() % 4200);
    let n = b.u8() % 5;
    let pfns = (0..n)
        .map(|_| match b.u8() {
            // Mostly RAM, sometimes just past it, sometimes absurd.
            0xff => u64::MAX >> (b.u8() % 64),
            0xfe => RAM_PAGES + u64::from(b.u8()),
            p => u64::from(p),
        })
        .collect();
    GpaRange { len, offset, pfns }
}

/// One packet: kind, transaction id, payload (raw, or `template` with bytes patched in),
/// GPA-direct ranges.
pub fn packet(b: &mut Input, template: Option<&[u8]>) -> Packet {
    let k = b.u8();
    let kind = match k % 4 {
        0 => PacketKind::InBand,
        1 => PacketKind::GpaDirect,
        2 => PacketKind::XferPages,
        _ => PacketKind::Completion,
    };
    let transaction_id = u64::from(b.u8() % 16);
    let payload = match template {
        Some(t) if k & 0x80 != 0 => {
            let mut p = t.to_vec();
            for _ in 0..b.u8() % 8 {
                let at = usize::from(b.u8()) % p.len().max(1);
                let v = b.u8();
                if let Some(x) = p.get_mut(at) {
                    *x = v;
                }
            }
            p
        }
        _ => {
            let n = usize::from(b.u8());
            b.bytes(n)
        }
    };
    let nranges = if kind == PacketKind::GpaDirect {
        b.u8() % 3
    } else {
        0
    };
    let ranges = (0..nranges).map(|_| range(b)).collect();
    Packet {
        kind,
        completion_requested: k & 0x40 == 0,
        transaction_id,
        payload,
        ranges,
    }
}
