//! Packets: parsing what the guest put in its outbound ring into a [`Packet`] (every count
//! and offset checked against the packet's own length) and encoding an [`OutPacket`] for the
//! guest's inbound ring.
use crate::abi::vmbus::*;
use crate::abi::PAGE_SIZE;

use super::device::{GpaRange, OutPacket, Packet, PacketKind};
use super::msg::{u32_at, u64_at};

/// Why a packet is malformed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// Shorter than its headers.
    #[error("packet too short")]
    Short,
    /// Data offset before the end of the headers or past the packet.
    #[error("packet data offset invalid")]
    Offset,
    /// A GPA range list that does not fit the header area.
    #[error("GPA range list malformed")]
    Ranges,
    /// A descriptor type the host does not take from a guest.
    #[error("unsupported packet type {0}")]
    Type(u16),
}

fn u16_at(b: &[u8], off: usize) -> u16 {
    (u32_at(b, off) & 0xffff) as u16
}

/// Parses one packet (descriptor included, trailer excluded) from the guest's ring.
pub fn parse(b: &[u8]) -> Result<Packet, PacketError> {
    if b.len() < descriptor::SIZE {
        return Err(PacketError::Short);
    }
    let ty = u16_at(b, descriptor::TYPE);
    let offset = usize::from(u16_at(b, descriptor::OFFSET8)) * 8;
    let len = (usize::from(u16_at(b, descriptor::LEN8)) * 8).min(b.len());
    let flags = u16_at(b, descriptor::FLAGS);
    let transaction_id = u64_at(b, descriptor::TRANS_ID);
    if offset < descriptor::SIZE || offset > len {
        return Err(PacketError::Offset);
    }
    let headers = b.get(..offset).ok_or(PacketError::Offset)?;
    let payload = b.get(offset..len).ok_or(PacketError::Offset)?.to_vec();
    let (kind, ranges) = match ty {
        VM_PKT_DATA_INBAND => (PacketKind::InBand, Vec::new()),
        VM_PKT_COMP => (PacketKind::Completion, Vec::new()),
        VM_PKT_DATA_USING_GPA_DIRECT => (PacketKind::GpaDirect, gpa_ranges(headers)?),
        VM_PKT_DATA_USING_XFER_PAGES => {
            if offset < xfer_pages::RANGES {
                return Err(PacketError::Short);
            }
            (PacketKind::XferPages, Vec::new())
        }
        t => return Err(PacketError::Type(t)),
    };
    Ok(Packet {
        kind,
        completion_requested: flags & VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED != 0,
        transaction_id,
        payload,
        ranges,
    })
}

/// The ranges of a GPA-direct packet's header area (`h` = bytes before the data offset).
fn gpa_ranges(h: &[u8]) -> Result<Vec<GpaRange>, PacketError> {
    if h.len() < gpa_direct::RANGES {
        return Err(PacketError::Short);
    }
    let count = u32_at(h, gpa_direct::RANGE_COUNT) as usize;
    // Each range needs at least its 8-byte header and one PFN.
    if count > (h.len() - gpa_direct::RANGES) / 16 {
        return Err(PacketError::Ranges);
    }
    let mut ranges = Vec::with_capacity(count);
    let mut pos = gpa_direct::RANGES;
    for _ in 0..count {
        let hdr = h
            .get(pos..pos + gpa_range::SIZE)
            .ok_or(PacketError::Ranges)?;
        let len = u32_at(hdr, gpa_range::BYTE_COUNT);
        let offset = u32_at(hdr, gpa_range::BYTE_OFFSET);
        if u64::from(offset) >= PAGE_SIZE {
            return Err(PacketError::Ranges);
        }
        let pages = (u64::from(offset) + u64::from(len)).div_ceil(PAGE_SIZE) as usize;
        if pages == 0 {
            return Err(PacketError::Ranges);
        }
        pos += gpa_range::SIZE;
        let end = pages
            .checked_mul(8)
            .and_then(|n| n.checked_add(pos))
            .ok_or(PacketError::Ranges)?;
        let raw = h.get(pos..end).ok_or(PacketError::Ranges)?;
        let pfns = raw.chunks_exact(8).map(|c| u64_at(c, 0)).collect();
        ranges.push(GpaRange { len, offset, pfns });
        pos = end;
    }
    Ok(ranges)
}

fn put16(m: &mut [u8], off: usize, v: u16) {
    if let Some(s) = m.get_mut(off..off + 2) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

fn put32(m: &mut [u8], off: usize, v: u32) {
    if let Some(s) = m.get_mut(off..off + 4) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

/// Encodes `p` for the guest's inbound ring (padded to 8 bytes, trailer not included);
/// `None` when it is longer than a descriptor can describe (512 KiB).
pub fn encode(p: &OutPacket) -> Option<Vec<u8>> {
    let (ty, flags, tid, head, payload): (u16, u16, u64, Vec<u8>, &[u8]) = match p {
        OutPacket::InBand {
            transaction_id,
            completion_requested,
            payload,
        } => (
            VM_PKT_DATA_INBAND,
            if *completion_requested {
                VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED
            } else {
                0
            },
            *transaction_id,
            Vec::new(),
            payload,
        ),
        OutPacket::Completion {
            transaction_id,
            payload,
        } => (VM_PKT_COMP, 0, *transaction_id, Vec::new(), payload),
        OutPacket::XferPages {
            transaction_id,
            xfer_pageset_id,
            ranges,
            payload,
        } => {
            let mut h = vec![0u8; xfer_pages::RANGES - descriptor::SIZE];
            put16(
                &mut h,
                xfer_pages::XFER_PAGESET_ID - descriptor::SIZE,
                *xfer_pageset_id,
            );
            put32(
                &mut h,
                xfer_pages::RANGE_COUNT - descriptor::SIZE,
                u32::try_from(ranges.len()).ok()?,
            );
            for (count, offset) in ranges {
                h.extend_from_slice(&count.to_le_bytes());
                h.extend_from_slice(&offset.to_le_bytes());
            }
            // The guest completes the packet to hand the receive buffer section back.
            (
                VM_PKT_DATA_USING_XFER_PAGES,
                VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED,
                *transaction_id,
                h,
                payload,
            )
        }
    };
    let offset = descriptor::SIZE + head.len();
    let len = (offset + payload.len()).next_multiple_of(8);
    let offset8 = u16::try_from(offset / 8).ok()?;
    let len8 = u16::try_from(len / 8).ok()?;
    let mut m = vec![0u8; len];
    put16(&mut m, descriptor::TYPE, ty);
    put16(&mut m, descriptor::OFFSET8, offset8);
    put16(&mut m, descriptor::LEN8, len8);
    put16(&mut m, descriptor::FLAGS, flags);
    m[descriptor::TRANS_ID..descriptor::SIZE].copy_from_slice(&tid.to_le_bytes());
    m[descriptor::SIZE..offset].copy_from_slice(&head);
    m[offset..offset + payload.len()].copy_from_slice(payload);
    Some(m)
}
