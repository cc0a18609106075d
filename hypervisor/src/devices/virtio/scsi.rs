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

use std::fs::File;
use std::path::PathBuf;

use virtio_bindings::bindings::virtio_scsi::{
    VIRTIO_SCSI_S_BAD_TARGET, VIRTIO_SCSI_S_OK, VIRTIO_SCSI_T_AN_QUERY, VIRTIO_SCSI_T_AN_SUBSCRIBE,
    VIRTIO_SCSI_T_TMF,
};
use vm_memory::GuestMemory;

use super::chain::{self, Chain, FileIo, Malformed};
use super::mmio::{QueueHandler, Queues, VirtioDevice};
use super::{DiskConfig, Error};

/// Size of each queue.
pub const QUEUE_SIZE: u16 = 128;
/// Index of the control queue.
pub const CONTROL_Q: usize = 0;
/// Index of the event queue.
pub const EVENT_Q: usize = 1;
/// Index of the (one) request queue.
pub const REQUEST_Q: usize = 2;
/// Bytes per logical block.
pub const BLOCK: u64 = 512;
/// CDB bytes in a request header (config `cdb_size`).
pub const CDB_SIZE: usize = 32;
/// Sense bytes in a response (config `sense_size`).
pub const SENSE_SIZE: usize = 96;
/// `struct virtio_scsi_cmd_req` with a 32-byte CDB.
pub const REQ_LEN: u64 = 19 + CDB_SIZE as u64;
/// `struct virtio_scsi_cmd_resp` with 96 bytes of sense.
pub const RESP_LEN: u64 = 12 + SENSE_SIZE as u64;
/// Largest transfer of one command, in blocks (config `max_sectors`).
pub const MAX_SECTORS: u32 = 0xffff;

/// SCSI status codes.
pub const GOOD: u8 = 0x00;
/// SCSI status CHECK CONDITION (sense data follows).
pub const CHECK_CONDITION: u8 = 0x02;

/// Sense keys and additional sense codes used here.
pub const ILLEGAL_REQUEST: u8 = 0x05;
/// Sense key DATA PROTECT.
pub const DATA_PROTECT: u8 = 0x07;
/// Sense key MEDIUM ERROR.
pub const MEDIUM_ERROR: u8 = 0x03;
/// ASC INVALID COMMAND OPERATION CODE.
pub const ASC_INVALID_OPCODE: u8 = 0x20;
/// ASC LOGICAL BLOCK ADDRESS OUT OF RANGE.
pub const ASC_LBA_OUT_OF_RANGE: u8 = 0x21;
/// ASC INVALID FIELD IN CDB.
pub const ASC_INVALID_FIELD_IN_CDB: u8 = 0x24;
/// ASC WRITE PROTECTED.
pub const ASC_WRITE_PROTECTED: u8 = 0x27;
/// ASC UNRECOVERED READ ERROR.
pub const ASC_UNRECOVERED_READ_ERROR: u8 = 0x11;
/// ASC WRITE ERROR.
pub const ASC_WRITE_ERROR: u8 = 0x0c;

/// A virtio-scsi controller with one disk.
pub struct Scsi {
    file: File,
    path: PathBuf,
    read_only: bool,
    blocks: u64,
    config: [u8; 36],
}

impl Scsi {
    /// A controller with one LUN backed by the disk image `cfg` names.
    pub fn new(cfg: &DiskConfig) -> Result<Self, Error> {
        let (file, len) = super::open_image(cfg)?;
        let blocks = len / BLOCK;
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
        Ok(Scsi {
            file,
            path: cfg.path.clone(),
            read_only: cfg.read_only,
            blocks,
            config,
        })
    }

    /// Capacity of the LUN in blocks.
    pub fn blocks(&self) -> u64 {
        self.blocks
    }

    /// A handler for direct (synchronous) use, as the worker thread uses it.
    pub fn handler(&self) -> Result<ScsiHandler, Error> {
        Ok(ScsiHandler {
            file: self.file.try_clone().map_err(|err| Error::DiskOpen {
                path: self.path.clone(),
                err,
            })?,
            read_only: self.read_only,
            blocks: self.blocks,
            serial: serial_of(&self.path),
        })
    }
}

fn serial_of(path: &std::path::Path) -> Vec<u8> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.bytes()
        .filter(|b| b.is_ascii_graphic())
        .take(20)
        .collect()
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

/// The outcome of one SCSI command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// virtio-scsi response (VIRTIO_SCSI_S_*).
    pub response: u8,
    /// SCSI status.
    pub status: u8,
    /// Fixed-format sense data (CHECK CONDITION only).
    pub sense: Vec<u8>,
    /// Bytes placed in the data-in buffers.
    pub data_in: u64,
}

fn good(data_in: u64) -> Outcome {
    Outcome {
        response: VIRTIO_SCSI_S_OK as u8,
        status: GOOD,
        sense: Vec::new(),
        data_in,
    }
}

/// CHECK CONDITION with fixed-format sense data (SPC-4 4.5.3).
pub fn check(key: u8, asc: u8) -> Outcome {
    let mut sense = vec![0u8; 18];
    sense[0] = 0x70;
    sense[2] = key;
    sense[7] = 10;
    sense[12] = asc;
    Outcome {
        response: VIRTIO_SCSI_S_OK as u8,
        status: CHECK_CONDITION,
        sense,
        data_in: 0,
    }
}

fn be16(b: &[u8]) -> u64 {
    u64::from(u16::from_be_bytes([b[0], b[1]]))
}
fn be32(b: &[u8]) -> u64 {
    u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}
fn be64(b: &[u8]) -> u64 {
    u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

/// Host-side processing of an active virtio-scsi controller.
pub struct ScsiHandler {
    file: File,
    read_only: bool,
    blocks: u64,
    serial: Vec<u8>,
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
        let out = if c.readable_len() < REQ_LEN {
            check(ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB)
        } else {
            let mut req = [0u8; REQ_LEN as usize];
            match chain::read_bytes(mem, &c.readable, 0, &mut req) {
                Ok(()) => self.execute(mem, c, &req),
                Err(_) => check(ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB),
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
        resp[11] = out.response;
        resp[12..12 + sense_len].copy_from_slice(&out.sense[..sense_len]);
        chain::write_bytes(mem, &c.writable, 0, &resp)
            .map_err(|_| Malformed::NoStatus { head: c.head })?;
        Ok(u32::try_from(RESP_LEN + out.data_in).unwrap_or(u32::MAX))
    }

    /// Execute one command. `req` is the request header (LUN, tag, attributes, CDB).
    fn execute<M: GuestMemory>(&mut self, mem: &M, c: &Chain, req: &[u8]) -> Outcome {
        let lun = &req[0..8];
        // Single-level LUN structure: byte 0 = 1, byte 1 = target, bytes 2-3 = LUN.
        let lun_number = be16(&lun[2..4]) & 0x3fff;
        if lun[0] != 1 || lun[1] != 0 || lun_number != 0 {
            return Outcome {
                response: VIRTIO_SCSI_S_BAD_TARGET as u8,
                status: GOOD,
                sense: Vec::new(),
                data_in: 0,
            };
        }
        let cdb = &req[19..19 + CDB_SIZE];
        let data_in_cap = c.writable_len() - RESP_LEN;
        let data_out_len = c.readable_len() - REQ_LEN;
        let reply = |data: &[u8], alloc: u64| -> Outcome {
            let n = (data.len() as u64).min(alloc).min(data_in_cap);
            match chain::write_bytes(mem, &c.writable, RESP_LEN, &data[..n as usize]) {
                Ok(()) => good(n),
                Err(_) => check(ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB),
            }
        };
        match cdb[0] {
            0x00 => good(0), // TEST UNIT READY
            0x03 => {
                // REQUEST SENSE: no pending sense (errors are reported with the command).
                let mut s = vec![0u8; 18];
                s[0] = 0x70;
                s[7] = 10;
                reply(&s, u64::from(cdb[4]))
            }
            0x12 => self.inquiry(cdb, reply),
            0x25 => {
                // READ CAPACITY(10)
                let last = self.blocks.saturating_sub(1).min(0xffff_ffff) as u32;
                let mut d = Vec::with_capacity(8);
                d.extend_from_slice(&last.to_be_bytes());
                d.extend_from_slice(&(BLOCK as u32).to_be_bytes());
                reply(&d, 8)
            }
            0x9e if cdb[1] & 0x1f == 0x10 => {
                // SERVICE ACTION IN(16) / READ CAPACITY(16)
                let mut d = vec![0u8; 32];
                d[0..8].copy_from_slice(&self.blocks.saturating_sub(1).to_be_bytes());
                d[8..12].copy_from_slice(&(BLOCK as u32).to_be_bytes());
                reply(&d, be32(&cdb[10..14]))
            }
            0x1a | 0x5a => self.mode_sense(cdb, reply),
            0xa0 => {
                // REPORT LUNS: one LUN, 0.
                let mut d = vec![0u8; 16];
                d[0..4].copy_from_slice(&8u32.to_be_bytes());
                reply(&d, be32(&cdb[6..10]))
            }
            0x35 | 0x91 => {
                // SYNCHRONIZE CACHE(10/16)
                if self.read_only {
                    return good(0);
                }
                match self.file.sync_data() {
                    Ok(()) => good(0),
                    Err(_) => check(MEDIUM_ERROR, ASC_WRITE_ERROR),
                }
            }
            op @ (0x28 | 0x88 | 0x2a | 0x8a) => {
                let (lba, blocks) = if op & 0x80 == 0 {
                    (be32(&cdb[2..6]), be16(&cdb[7..9]))
                } else {
                    (be64(&cdb[2..10]), be32(&cdb[10..14]))
                };
                let write = op == 0x2a || op == 0x8a;
                self.rw(mem, c, write, lba, blocks, data_in_cap, data_out_len)
            }
            _ => check(ILLEGAL_REQUEST, ASC_INVALID_OPCODE),
        }
    }

    fn inquiry(&self, cdb: &[u8], reply: impl Fn(&[u8], u64) -> Outcome) -> Outcome {
        let alloc = be16(&cdb[3..5]);
        if cdb[1] & 1 == 0 {
            if cdb[2] != 0 {
                return check(ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
            }
            let mut d = vec![0u8; 36];
            d[0] = 0x00; // direct-access block device, connected
            d[2] = 0x05; // SPC-3
            d[3] = 0x02; // response data format 2
            d[4] = 31; // additional length
            d[7] = 0x02; // CmdQue
            d[8..16].copy_from_slice(b"HVCERT  ");
            d[16..32].copy_from_slice(b"SYNTHETIC SCSI  ");
            d[32..36].copy_from_slice(b"0001");
            return reply(&d, alloc);
        }
        match cdb[2] {
            0x00 => reply(&[0, 0x00, 0, 2, 0x00, 0x80], alloc),
            0x80 => {
                let mut d = vec![0, 0x80, 0, self.serial.len() as u8];
                d.extend_from_slice(&self.serial);
                reply(&d, alloc)
            }
            _ => check(ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB),
        }
    }

    fn mode_sense(&self, cdb: &[u8], reply: impl Fn(&[u8], u64) -> Outcome) -> Outcome {
        let ten = cdb[0] == 0x5a;
        let page = cdb[2] & 0x3f;
        let wp = if self.read_only { 0x80 } else { 0 };
        // Caching mode page: write cache enabled (so drivers send SYNCHRONIZE CACHE).
        let caching = [
            0x08u8, 0x12, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        let pages: &[u8] = match page {
            0x08 | 0x3f => &caching,
            _ => return check(ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB),
        };
        let mut d = if ten {
            let len = (6 + pages.len()) as u16;
            let mut h = vec![0u8; 8];
            h[0..2].copy_from_slice(&len.to_be_bytes());
            h[3] = wp;
            h
        } else {
            vec![(3 + pages.len()) as u8, 0, wp, 0]
        };
        d.extend_from_slice(pages);
        let alloc = if ten {
            be16(&cdb[7..9])
        } else {
            u64::from(cdb[4])
        };
        reply(&d, alloc)
    }

    #[allow(clippy::too_many_arguments)]
    fn rw<M: GuestMemory>(
        &mut self,
        mem: &M,
        c: &Chain,
        write: bool,
        lba: u64,
        blocks: u64,
        data_in_cap: u64,
        data_out_len: u64,
    ) -> Outcome {
        if blocks > u64::from(MAX_SECTORS) {
            return check(ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
        }
        let Some(end) = lba.checked_add(blocks) else {
            return check(ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
        };
        if end > self.blocks {
            return check(ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
        }
        let len = blocks * BLOCK;
        let off = lba * BLOCK;
        if write {
            if self.read_only {
                return check(DATA_PROTECT, ASC_WRITE_PROTECTED);
            }
            if data_out_len < len {
                return check(ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
            }
            match chain::file_io(
                mem,
                &c.readable,
                REQ_LEN,
                len,
                &self.file,
                off,
                FileIo::Write,
            ) {
                Ok(()) => good(0),
                Err(_) => check(MEDIUM_ERROR, ASC_WRITE_ERROR),
            }
        } else {
            if data_in_cap < len {
                return check(ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
            }
            match chain::file_io(
                mem,
                &c.writable,
                RESP_LEN,
                len,
                &self.file,
                off,
                FileIo::Read,
            ) {
                Ok(()) => good(len),
                Err(_) => check(MEDIUM_ERROR, ASC_UNRECOVERED_READ_ERROR),
            }
        }
    }
}
