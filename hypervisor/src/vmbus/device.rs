//! The contract between the VMBus channel layer (vmbus/channel*.rs, ring.rs, gpadl.rs) and
//! the devices on it (vmbus/storvsc.rs, vmbus/netvsc.rs). File: hypervisor/src/vmbus/device.rs.
//! Both VMBus helpers start from this exact text; extend it additively only.
use vm_memory::GuestMemoryMmap;

/// A GUID in the little-endian wire layout VMBus offers use (first three fields LE).
pub type Guid = [u8; 16];

/// Packet types a guest puts in its outbound ring (VM_PKT_*).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketKind {
    /// VM_PKT_DATA_INBAND (6).
    InBand,
    /// VM_PKT_DATA_USING_GPA_DIRECT (9).
    GpaDirect,
    /// VM_PKT_DATA_USING_XFER_PAGES (7).
    XferPages,
    /// VM_PKT_COMP (11).
    Completion,
}

/// One multi-page range of a GPA-direct packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GpaRange {
    /// Bytes in the range.
    pub len: u32,
    /// Offset into the first page.
    pub offset: u32,
    /// Guest page frame numbers.
    pub pfns: Vec<u64>,
}

/// A packet read from the guest's outbound ring, already parsed and bounds-checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    /// Descriptor type.
    pub kind: PacketKind,
    /// VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED was set.
    pub completion_requested: bool,
    /// The guest's transaction id (echoed in completions).
    pub transaction_id: u64,
    /// In-band payload bytes.
    pub payload: Vec<u8>,
    /// GPA-direct ranges (empty for other kinds).
    pub ranges: Vec<GpaRange>,
}

/// A packet for the guest's inbound ring; the channel layer writes it and signals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutPacket {
    /// VM_PKT_DATA_INBAND.
    InBand {
        /// Transaction id.
        transaction_id: u64,
        /// Ask the guest for a completion.
        completion_requested: bool,
        /// Payload.
        payload: Vec<u8>,
    },
    /// VM_PKT_COMP answering the guest's `transaction_id`.
    Completion {
        /// The guest's transaction id.
        transaction_id: u64,
        /// Payload.
        payload: Vec<u8>,
    },
    /// VM_PKT_DATA_USING_XFER_PAGES (netvsc receive): ranges of a receive-buffer GPADL.
    XferPages {
        /// Transaction id (the guest completes it to give the buffer back).
        transaction_id: u64,
        /// Transfer page set id.
        xfer_pageset_id: u16,
        /// (byte_count, byte_offset) ranges in the transfer page set.
        ranges: Vec<(u32, u32)>,
        /// In-band payload (e.g. the NVSP message).
        payload: Vec<u8>,
    },
}

/// What a device may use while it handles a packet.
pub trait ChannelCtx {
    /// Guest memory (bounds-checked accessors only).
    fn mem(&self) -> &GuestMemoryMmap;
    /// Page frame numbers of an established GPADL of this partition.
    fn gpadl_pfns(&self, handle: u32) -> Option<Vec<u64>>;
    /// Queues a packet for the guest's inbound ring.
    fn send(&mut self, pkt: OutPacket);
}

/// Why a device refused a packet (the channel layer logs it and, for malformed input,
/// may close the channel; the VMM never panics).
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// A packet the protocol does not allow.
    #[error("malformed packet: {0}")]
    Malformed(String),
    /// Guest memory named by the packet is not RAM.
    #[error("guest memory: {0}")]
    Memory(String),
    /// The backing file or network backend failed.
    #[error("backend: {0}")]
    Backend(String),
}

/// A device's host side.
pub trait VmbusDevice: Send {
    /// Short name for logs ("storvsc", "netvsc").
    fn name(&self) -> &'static str;
    /// Device class GUID of the offer (Linux binds its driver by it).
    fn class_id(&self) -> Guid;
    /// Instance GUID of the offer.
    fn instance_id(&self) -> Guid;
    /// Handles one packet from the guest's outbound ring.
    fn on_packet(&mut self, ctx: &mut dyn ChannelCtx, pkt: &Packet) -> Result<(), DeviceError>;
    /// Work not started by a guest packet (netvsc: frames arriving from the backend).
    fn poll(&mut self, _ctx: &mut dyn ChannelCtx) -> Result<(), DeviceError> {
        Ok(())
    }
    /// The channel was closed (CLOSECHANNEL, its ring GPADL torn down, UNLOAD, a new
    /// INITIATE_CONTACT): forget per-open protocol state. (Added by the channel layer.)
    fn on_close(&mut self) {}
}

// ---- Additions by the device side (additive only). ----

/// Bytes in a VMBus page (GPA-direct ranges and GPADLs count in these).
pub const HV_PAGE_SIZE: u64 = 4096;

impl GpaRange {
    /// The range as guest segments, physically contiguous pages merged; `None` if the range
    /// is inconsistent (offset past the first page, more bytes than its pages hold, a page
    /// number whose address overflows). Whether the pages are RAM is checked on access.
    pub fn segments(&self) -> Option<Vec<crate::devices::virtio::chain::Seg>> {
        use crate::devices::virtio::chain::Seg;
        use vm_memory::GuestAddress;
        let offset = u64::from(self.offset);
        if offset >= HV_PAGE_SIZE {
            return None;
        }
        let room = (self.pfns.len() as u64)
            .checked_mul(HV_PAGE_SIZE)?
            .checked_sub(offset)?;
        if u64::from(self.len) > room {
            return None;
        }
        let mut segs: Vec<Seg> = Vec::new();
        let mut left = u64::from(self.len);
        let mut skip = offset;
        for &pfn in &self.pfns {
            if left == 0 {
                break;
            }
            let addr = pfn.checked_mul(HV_PAGE_SIZE)?.checked_add(skip)?;
            let n = (HV_PAGE_SIZE - skip).min(left);
            skip = 0;
            left -= n;
            match segs.last_mut() {
                Some(last) if last.addr.0.checked_add(u64::from(last.len)) == Some(addr) => {
                    last.len = last.len.checked_add(n as u32)?;
                }
                _ => segs.push(Seg {
                    addr: GuestAddress(addr),
                    len: n as u32,
                }),
            }
        }
        Some(segs)
    }
}
