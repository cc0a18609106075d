//! storvsc's host side: the VSTOR protocol of the VMBus synthetic SCSI controller over one
//! channel, with one LUN (path 0, target 0, LUN 0) on a raw image through the shared SCSI
//! target emulation ([`crate::devices::scsi_target`]).
//!
//! Initialization (BEGIN_INITIALIZATION, QUERY_PROTOCOL_VERSION, QUERY_PROPERTIES,
//! END_INITIALIZATION) is answered with COMPLETE_IO packets; versions WIN7 through WIN10 are
//! accepted (pre-WIN8 requests in the shorter packet layout), others refused with
//! STATUS_REVISION_MISMATCH, which Linux takes as "try the next one". EXECUTE_SRB runs the
//! CDB against the target, moving data through the packet's GPA-direct range with
//! vm-memory's bounds-checked accessors; errors come back as CHECK CONDITION with sense
//! (srb_status ERROR | AUTOSENSE_VALID), another LUN as SRB_STATUS_INVALID_LUN, a data range
//! outside RAM as SRB_STATUS_ERROR. Packets too short to carry a request are refused with
//! [`DeviceError::Malformed`]; nothing a guest sends can panic the VMM.

use vm_memory::{GuestAddress, GuestMemory, Permissions};

use super::device::{ChannelCtx, DeviceError, Guid, OutPacket, Packet, VmbusDevice};
use crate::abi::storvsc::*;
use crate::devices::scsi_target::{DataBuf, ScsiTarget, CHECK_CONDITION};
use crate::devices::virtio::{DiskConfig, Error};

/// Largest transfer of one request, reported in QUERY_PROPERTIES.
pub const MAX_TRANSFER_BYTES: u32 = 1 << 20;
/// Instance GUID of the (one) controller's offer.
pub const INSTANCE_ID: Guid = [
    0x68, 0x76, 0x63, 0x65, 0x72, 0x74, 0x00, 0x00, 0x73, 0x74, 0x6f, 0x72, 0x00, 0x00, 0x00, 0x01,
];

/// A synthetic SCSI controller with one disk.
pub struct StorVsc {
    target: ScsiTarget,
    /// Negotiated protocol version (None until QUERY_PROTOCOL_VERSION succeeds).
    version: Option<u16>,
    /// END_INITIALIZATION was received.
    ready: bool,
}

impl StorVsc {
    /// A controller whose LUN 0 is the image `cfg` names.
    pub fn new(cfg: &DiskConfig) -> Result<Self, Error> {
        Ok(StorVsc {
            target: ScsiTarget::new(cfg)?,
            version: None,
            ready: false,
        })
    }

    /// The negotiated protocol version, if any.
    pub fn version(&self) -> Option<u16> {
        self.version
    }

    /// Capacity of the LUN in blocks.
    pub fn blocks(&self) -> u64 {
        self.target.blocks()
    }

    /// Bytes of a `vstor_packet` the guest sends in the negotiated layout.
    fn packet_len(&self) -> usize {
        match self.version {
            Some(v) if v >= VERSION_WIN8 => PACKET_LEN,
            _ => PACKET_LEN_PRE_WIN8,
        }
    }

    fn sense_size(&self) -> usize {
        match self.version {
            Some(v) if v >= VERSION_WIN8 => SENSE_BUFFER_SIZE,
            _ => SENSE_BUFFER_SIZE_PRE_WIN8,
        }
    }

    /// A COMPLETE_IO answer with `status`, built on a copy of the request (so the SRB
    /// fields the guest sent come back as they were unless the caller changes them).
    /// Always the full WIN8 size: Linux since 5.16 requires it of every answer, older
    /// kernels require at least the pre-WIN8 size and copy only that.
    fn answer(&self, req: &[u8], status: u32) -> Vec<u8> {
        let mut p = vec![0u8; PACKET_LEN];
        let n = req.len().min(p.len());
        p[..n].copy_from_slice(&req[..n]);
        p[0..4].copy_from_slice(&OP_COMPLETE_IO.to_le_bytes());
        p[4..8].copy_from_slice(&0u32.to_le_bytes());
        p[8..12].copy_from_slice(&status.to_le_bytes());
        p
    }

    fn complete(&self, ctx: &mut dyn ChannelCtx, pkt: &Packet, payload: Vec<u8>) {
        ctx.send(OutPacket::Completion {
            transaction_id: pkt.transaction_id,
            payload,
        });
    }

    /// Handles one EXECUTE_SRB; returns the answer packet.
    fn execute_srb(&mut self, ctx: &mut dyn ChannelCtx, pkt: &Packet, req: &[u8]) -> Vec<u8> {
        let mut p = self.answer(req, STATUS_SUCCESS);
        let set_srb = |p: &mut Vec<u8>, srb: u8, scsi: u8, sense: &[u8], xfer: u32| {
            p[srb::SRB_STATUS] = srb;
            p[srb::SCSI_STATUS] = scsi;
            p[srb::SENSE_INFO_LENGTH] = sense.len() as u8;
            p[srb::DATA_TRANSFER_LENGTH..srb::DATA_TRANSFER_LENGTH + 4]
                .copy_from_slice(&xfer.to_le_bytes());
            p[srb::CDB..srb::CDB + sense.len()].copy_from_slice(sense);
        };
        if req[srb::PATH_ID] != 0 || req[srb::TARGET_ID] != 0 || req[srb::LUN] != 0 {
            set_srb(&mut p, SRB_STATUS_INVALID_LUN, 0, &[], 0);
            return p;
        }
        let cdb_len = usize::from(req[srb::CDB_LENGTH]).min(CDB_LEN);
        let cdb = &req[srb::CDB..srb::CDB + cdb_len];
        let xfer = u32::from_le_bytes([
            req[srb::DATA_TRANSFER_LENGTH],
            req[srb::DATA_TRANSFER_LENGTH + 1],
            req[srb::DATA_TRANSFER_LENGTH + 2],
            req[srb::DATA_TRANSFER_LENGTH + 3],
        ]);
        // The data buffer: the packet's GPA-direct ranges, in order, cut to the length the
        // request names.
        let mut segs = Vec::new();
        for r in &pkt.ranges {
            match r.segments() {
                Some(s) => segs.extend(s),
                None => {
                    set_srb(&mut p, SRB_STATUS_INVALID_REQUEST, 0, &[], 0);
                    return p;
                }
            }
        }
        let have: u64 = segs.iter().map(|s| u64::from(s.len)).sum();
        let len = have.min(u64::from(xfer));
        if !in_ram(ctx.mem(), &segs, len) {
            set_srb(&mut p, SRB_STATUS_ERROR, 0, &[], 0);
            return p;
        }
        let buf = DataBuf {
            segs: &segs,
            offset: 0,
            len,
        };
        let (din, dout) = match req[srb::DATA_IN] {
            READ_TYPE => (buf, DataBuf::NONE),
            WRITE_TYPE => (DataBuf::NONE, buf),
            _ => (DataBuf::NONE, DataBuf::NONE),
        };
        let out = self.target.execute(ctx.mem(), cdb, din, dout);
        if out.status == CHECK_CONDITION {
            let room = usize::from(req[srb::SENSE_INFO_LENGTH]).min(self.sense_size());
            let sense = &out.sense[..out.sense.len().min(room)];
            let srb = SRB_STATUS_ERROR | SRB_STATUS_AUTOSENSE_VALID;
            set_srb(&mut p, srb, out.status, sense, 0);
        } else {
            let moved = if req[srb::DATA_IN] == WRITE_TYPE {
                len
            } else {
                out.data_in
            };
            let moved = u32::try_from(moved).unwrap_or(u32::MAX);
            set_srb(&mut p, SRB_STATUS_SUCCESS, out.status, &[], moved);
        }
        p
    }
}

/// Whether the first `len` bytes of `segs` are guest RAM.
fn in_ram<M: GuestMemory>(mem: &M, segs: &[crate::devices::virtio::chain::Seg], len: u64) -> bool {
    let mut left = len;
    for s in segs {
        if left == 0 {
            break;
        }
        let n = u64::from(s.len).min(left);
        let Ok(n_usize) = usize::try_from(n) else {
            return false;
        };
        if !GuestMemory::check_range(mem, GuestAddress(s.addr.0), n_usize, Permissions::ReadWrite) {
            return false;
        }
        left -= n;
    }
    true
}

impl VmbusDevice for StorVsc {
    fn name(&self) -> &'static str {
        "storvsc"
    }
    fn class_id(&self) -> Guid {
        CLASS_ID
    }
    fn instance_id(&self) -> Guid {
        INSTANCE_ID
    }

    fn on_packet(&mut self, ctx: &mut dyn ChannelCtx, pkt: &Packet) -> Result<(), DeviceError> {
        if pkt.kind == super::device::PacketKind::Completion {
            // The host never asks the guest for completions.
            return Err(DeviceError::Malformed(
                "storvsc: unexpected completion".into(),
            ));
        }
        let raw = &pkt.payload;
        if raw.len() < HEADER_LEN {
            return Err(DeviceError::Malformed(format!(
                "storvsc: {}-byte packet, shorter than its header",
                raw.len()
            )));
        }
        let op = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
        // Work on a full-size copy: fields the guest left out (pre-WIN8 layout) read as 0.
        let mut req = vec![0u8; PACKET_LEN];
        let n = raw.len().min(PACKET_LEN);
        req[..n].copy_from_slice(&raw[..n]);
        let answer = match op {
            OP_BEGIN_INITIALIZATION => {
                self.ready = false;
                self.answer(&req, STATUS_SUCCESS)
            }
            OP_QUERY_PROTOCOL_VERSION => {
                if raw.len() < VERSION_MAJOR_MINOR + 2 {
                    return Err(DeviceError::Malformed(
                        "storvsc: QUERY_PROTOCOL_VERSION without a version".into(),
                    ));
                }
                let v =
                    u16::from_le_bytes([req[VERSION_MAJOR_MINOR], req[VERSION_MAJOR_MINOR + 1]]);
                if matches!(
                    v,
                    VERSION_WIN7 | VERSION_WIN8 | VERSION_WIN8_1 | VERSION_WIN10
                ) {
                    // The answer still has the layout the question was asked in.
                    let p = self.answer(&req, STATUS_SUCCESS);
                    self.version = Some(v);
                    p
                } else {
                    self.answer(&req, STATUS_REVISION_MISMATCH)
                }
            }
            OP_QUERY_PROPERTIES => {
                let mut p = self.answer(&[0u8; 12], STATUS_SUCCESS);
                p[props::MAX_CHANNEL_CNT..props::MAX_CHANNEL_CNT + 2]
                    .copy_from_slice(&0u16.to_le_bytes());
                p[props::FLAGS..props::FLAGS + 4].copy_from_slice(&0u32.to_le_bytes());
                p[props::MAX_TRANSFER_BYTES..props::MAX_TRANSFER_BYTES + 4]
                    .copy_from_slice(&MAX_TRANSFER_BYTES.to_le_bytes());
                p
            }
            OP_END_INITIALIZATION => {
                if self.version.is_none() {
                    self.answer(&req, STATUS_INVALID_DEVICE_STATE)
                } else {
                    self.ready = true;
                    self.answer(&req, STATUS_SUCCESS)
                }
            }
            OP_EXECUTE_SRB => {
                if raw.len() < self.packet_len() {
                    return Err(DeviceError::Malformed(format!(
                        "storvsc: {}-byte EXECUTE_SRB, {} expected",
                        raw.len(),
                        self.packet_len()
                    )));
                }
                if !self.ready {
                    self.answer(&req, STATUS_INVALID_DEVICE_STATE)
                } else {
                    self.execute_srb(ctx, pkt, &req)
                }
            }
            // Requests run to completion in order: there is never anything to reset.
            OP_RESET_LUN | OP_RESET_ADAPTER | OP_RESET_BUS => self.answer(&req, STATUS_SUCCESS),
            _ => self.answer(&req, STATUS_INVALID_DEVICE_REQUEST),
        };
        self.complete(ctx, pkt, answer);
        Ok(())
    }
}
