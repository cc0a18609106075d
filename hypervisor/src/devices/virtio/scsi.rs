//! virtio-scsi: a synthetic SCSI controller with one target and one logical unit (target 0,
//! LUN 0) backed by a raw image file, the "synthetic storage controller" of the seed.
//!
//! Commands: TEST UNIT READY, REQUEST SENSE, INQUIRY (standard data and the VPD pages 0x00
//! and 0x80), READ CAPACITY(10), READ CAPACITY(16), MODE SENSE(6/10) (caching page, write
//! protect bit), READ(10/16), WRITE(10/16), SYNCHRONIZE CACHE(10/16) (`fdatasync`) and
//! REPORT LUNS. Anything else, an LBA range past the end, a write to a read-only image or a
//! data buffer shorter than the transfer ends with CHECK CONDITION and fixed-format sense
//! data (ILLEGAL REQUEST / DATA PROTECT / MEDIUM ERROR). Requests for another target or LUN
//! get VIRTIO_SCSI_S_BAD_TARGET. Task-management requests on the control queue complete at
//! once (there is never an outstanding command to abort: requests run to completion in
//! order); the event queue's buffers are kept and never used (no hot-plug).

use virtio_bindings::bindings::virtio_scsi::{
    VIRTIO_SCSI_S_BAD_TARGET, VIRTIO_SCSI_S_OK, VIRTIO_SCSI_T_AN_QUERY, VIRTIO_SCSI_T_AN_SUBSCRIBE,
    VIRTIO_SCSI_T_TMF,
};
use vm_memory::GuestMemory;

use super::chain::{self, Chain, Malformed};
use super::mmio::{QueueHandler, Queues, VirtioDevice};
use super::{DiskConfig, Error};
use crate::devices::scsi_target::{self, good, DataBuf, ScsiTarget};

/// Size of each queue.
pub const QUEUE_SIZE: u16 = 128;
/// Index of the control queue.
pub const CONTROL_Q: usize = 0;
/// Index of the event queue.
pub const EVENT_Q: usize = 1;
/// Index of the (one) request queue.
pub const REQUEST_Q: usize = 2;
/// Bytes per logical block.
pub const BLOCK: u64 = scsi_target::BLOCK;
/// CDB bytes in a request header (config `cdb_size`).
pub const CDB_SIZE: usize = 32;
/// Sense bytes in a response (config `sense_size`).
pub const SENSE_SIZE: usize = 96;
/// `struct virtio_scsi_cmd_req` with a 32-byte CDB.
pub const REQ_LEN: u64 = 19 + CDB_SIZE as u64;
/// `struct virtio_scsi_cmd_resp` with 96 bytes of sense.
pub const RESP_LEN: u64 = 12 + SENSE_SIZE as u64;
/// Largest transfer of one command, in blocks (config `max_sectors`).
pub const MAX_SECTORS: u32 = scsi_target::MAX_BLOCKS;

pub use crate::devices::scsi_target::{
    check, Outcome, ASC_INVALID_FIELD_IN_CDB, ASC_INVALID_OPCODE, ASC_LBA_OUT_OF_RANGE,
    ASC_UNRECOVERED_READ_ERROR, ASC_WRITE_ERROR, ASC_WRITE_PROTECTED, CHECK_CONDITION,
    DATA_PROTECT, GOOD, ILLEGAL_REQUEST, MEDIUM_ERROR,
};

/// A virtio-scsi controller with one disk.
pub struct Scsi {
    target: ScsiTarget,
    config: [u8; 36],
}

impl Scsi {
    /// A controller with one LUN backed by the disk image `cfg` names.
    pub fn new(cfg: &DiskConfig) -> Result<Self, Error> {
        let target = ScsiTarget::new(cfg)?;
        let mut config = [0u8; 36];
        let put = |c: &mut [u8; 36], off: usize, v: u32| {
            c[off..off + 4].copy_from_slice(&v.to_le_bytes())
        };
        put(&mut config, 0, 1); // num_queues (request queues)
        put(&mut config, 4, u32::from(QUEUE_SIZE) - 2); // seg_max
        put(&mut config, 8, MAX_SECTORS);
        put(&mut config, 12, u32::from(QUEUE_SIZE)); // cmd_per_lun
        put(&mut config, 16, 0); // event_info_size
        put(&mut config, 20, SENSE_SIZE as u32);
        put(&mut config, 24, CDB_SIZE as u32);
        // max_channel 0 (u16 at 28), max_target 0 (u16 at 30), max_lun 0 (u32 at 32).
        Ok(Scsi { target, config })
    }

    /// Capacity of the LUN in blocks.
    pub fn blocks(&self) -> u64 {
        self.target.blocks()
    }

    /// A handler for direct (synchronous) use, as the worker thread uses it.
    pub fn handler(&self) -> Result<ScsiHandler, Error> {
        Ok(ScsiHandler {
            target: self.target.try_clone()?,
        })
    }
}

impl VirtioDevice for Scsi {
    fn device_id(&self) -> u32 {
        virtio_bindings::virtio_ids::VIRTIO_ID_SCSI
    }
    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE, QUEUE_SIZE, QUEUE_SIZE]
    }
    fn device_features(&self) -> u64 {
        0
    }
    fn read_config(&self, offset: u64, data: &mut [u8]) {
        super::block::copy_config(&self.config, offset, data);
    }
    fn activate(&mut self, _features: u64) -> Result<Box<dyn QueueHandler>, Error> {
        Ok(Box::new(self.handler()?))
    }
    fn name(&self) -> &'static str {
        "scsi"
    }
}

/// Host-side processing of an active virtio-scsi controller.
pub struct ScsiHandler {
    target: ScsiTarget,
}

impl QueueHandler for ScsiHandler {
    fn queue_event(&mut self, idx: usize, q: &mut Queues) -> Result<(), Malformed> {
        if idx == EVENT_Q {
            // Event buffers stay with the device until there is an event (never).
            return Ok(());
        }
        loop {
            q.disable_notification(idx)?;
            while let Some(c) = q.pop(idx)? {
                let used = if idx == CONTROL_Q {
                    self.control(q.mem, &c)?
                } else {
                    self.command(q.mem, &c)?
                };
                q.add_used(idx, c.head, used)?;
            }
            if !q.enable_notification(idx)? {
                return Ok(());
            }
        }
    }
}

impl ScsiHandler {
    /// A control-queue request: task management completes at once; asynchronous
    /// notification queries report no events.
    fn control<M: GuestMemory>(&mut self, mem: &M, c: &Chain) -> Result<u32, Malformed> {
        let mut t = [0u8; 4];
        if c.readable_len() < 4 || chain::read_bytes(mem, &c.readable, 0, &mut t).is_err() {
            return Err(Malformed::NoStatus { head: c.head });
        }
        let resp: Vec<u8> = match u32::from_le_bytes(t) {
            // virtio_scsi_ctrl_tmf_resp { u8 response }: FUNCTION COMPLETE.
            VIRTIO_SCSI_T_TMF => vec![VIRTIO_SCSI_S_OK as u8],
            // virtio_scsi_ctrl_an_resp { le32 event_actual; u8 response }.
            VIRTIO_SCSI_T_AN_QUERY | VIRTIO_SCSI_T_AN_SUBSCRIBE => {
                vec![0, 0, 0, 0, VIRTIO_SCSI_S_OK as u8]
            }
            // Unknown control request: "function rejected" where it fits in the buffer.
            _ => {
                vec![virtio_bindings::bindings::virtio_scsi::VIRTIO_SCSI_S_FUNCTION_REJECTED as u8]
            }
        };
        if c.writable_len() < resp.len() as u64 {
            return Err(Malformed::NoStatus { head: c.head });
        }
        chain::write_bytes(mem, &c.writable, 0, &resp)
            .map_err(|_| Malformed::NoStatus { head: c.head })?;
        Ok(resp.len() as u32)
    }

    /// A request-queue command: returns the used length.
    fn command<M: GuestMemory>(&mut self, mem: &M, c: &Chain) -> Result<u32, Malformed> {
        // Without room for the response header there is nowhere to report anything.
        if c.writable_len() < RESP_LEN {
            return Err(Malformed::NoStatus { head: c.head });
        }
        let (response, out) = if c.readable_len() < REQ_LEN {
            (ok(), check(ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB))
        } else {
            let mut req = [0u8; REQ_LEN as usize];
            match chain::read_bytes(mem, &c.readable, 0, &mut req) {
                Ok(()) => self.execute(mem, c, &req),
                Err(_) => (ok(), check(ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB)),
            }
        };
        let data_capacity = c.writable_len() - RESP_LEN;
        let mut resp = [0u8; RESP_LEN as usize];
        let sense_len = out.sense.len().min(SENSE_SIZE);
        resp[0..4].copy_from_slice(&(sense_len as u32).to_le_bytes());
        let resid =
            u32::try_from(data_capacity - out.data_in.min(data_capacity)).unwrap_or(u32::MAX);
        resp[4..8].copy_from_slice(&resid.to_le_bytes());
        resp[10] = out.status;
        resp[11] = response;
        resp[12..12 + sense_len].copy_from_slice(&out.sense[..sense_len]);
        chain::write_bytes(mem, &c.writable, 0, &resp)
            .map_err(|_| Malformed::NoStatus { head: c.head })?;
        Ok(u32::try_from(RESP_LEN + out.data_in).unwrap_or(u32::MAX))
    }

    /// Execute one command. `req` is the request header (LUN, tag, attributes, CDB).
    /// Returns the virtio-scsi response code and the command's outcome.
    fn execute<M: GuestMemory>(&mut self, mem: &M, c: &Chain, req: &[u8]) -> (u8, Outcome) {
        let lun = &req[0..8];
        // Single-level LUN structure: byte 0 = 1, byte 1 = target, bytes 2-3 = LUN.
        let lun_number = u16::from_be_bytes([lun[2], lun[3]]) & 0x3fff;
        if lun[0] != 1 || lun[1] != 0 || lun_number != 0 {
            return (VIRTIO_SCSI_S_BAD_TARGET as u8, good(0));
        }
        let cdb = &req[19..19 + CDB_SIZE];
        let din = DataBuf {
            segs: &c.writable,
            offset: RESP_LEN,
            len: c.writable_len() - RESP_LEN,
        };
        let dout = DataBuf {
            segs: &c.readable,
            offset: REQ_LEN,
            len: c.readable_len() - REQ_LEN,
        };
        (ok(), self.target.execute(mem, cdb, din, dout))
    }
}

fn ok() -> u8 {
    VIRTIO_SCSI_S_OK as u8
}
