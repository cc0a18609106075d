//! A SCSI target emulation shared by the SCSI controllers (virtio-scsi and VMBus storvsc):
//! one logical unit backed by a raw image file, commands in, data and sense out.
//!
//! Commands: TEST UNIT READY, REQUEST SENSE, INQUIRY (standard data and the VPD pages 0x00,
//! 0x80, 0x83, 0xb0 and 0xb1), READ CAPACITY(10), READ CAPACITY(16), MODE SENSE(6/10)
//! (caching page, write protect bit), READ(10/16), WRITE(10/16), SYNCHRONIZE CACHE(10/16)
//! (`fdatasync`) and REPORT LUNS. Anything else, an LBA range past the end, a write to a
//! read-only image or a data buffer shorter than the transfer ends with CHECK CONDITION and
//! fixed-format sense data (ILLEGAL REQUEST / DATA PROTECT / MEDIUM ERROR).
//!
//! The transport hands the target its data buffers as guest segments
//! ([`crate::devices::virtio::chain::Seg`]); data moves only through vm-memory's
//! bounds-checked accessors, so a buffer outside RAM fails the command, never the VMM.

use std::fs::File;
use std::path::{Path, PathBuf};

use vm_memory::GuestMemory;

use crate::devices::virtio::chain::{self, FileIo, Seg};
use crate::devices::virtio::{DiskConfig, Error};

/// Bytes per logical block.
pub const BLOCK: u64 = 512;
/// Largest transfer of one command, in blocks.
pub const MAX_BLOCKS: u32 = 0xffff;
/// CDB bytes the target looks at (longer CDBs are cut, shorter ones zero-padded).
pub const CDB_MAX: usize = 32;

/// SCSI status GOOD.
pub const GOOD: u8 = 0x00;
/// SCSI status CHECK CONDITION (sense data follows).
pub const CHECK_CONDITION: u8 = 0x02;

/// Sense key ILLEGAL REQUEST.
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

/// The outcome of one SCSI command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// SCSI status.
    pub status: u8,
    /// Fixed-format sense data (CHECK CONDITION only).
    pub sense: Vec<u8>,
    /// Bytes placed in the data-in buffer.
    pub data_in: u64,
}

/// GOOD status with `data_in` bytes transferred to the initiator.
pub fn good(data_in: u64) -> Outcome {
    Outcome {
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
        status: CHECK_CONDITION,
        sense,
        data_in: 0,
    }
}

/// A data buffer of a command: `len` bytes of `segs` starting `offset` bytes in.
#[derive(Debug, Clone, Copy)]
pub struct DataBuf<'a> {
    /// Guest segments.
    pub segs: &'a [Seg],
    /// Bytes of `segs` before the buffer starts (e.g. a request header).
    pub offset: u64,
    /// Bytes in the buffer.
    pub len: u64,
}

impl DataBuf<'_> {
    /// No buffer.
    pub const NONE: DataBuf<'static> = DataBuf {
        segs: &[],
        offset: 0,
        len: 0,
    };
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

/// One logical unit on a raw image.
pub struct ScsiTarget {
    file: File,
    path: PathBuf,
    read_only: bool,
    blocks: u64,
    serial: Vec<u8>,
}

impl ScsiTarget {
    /// Opens the disk image `cfg` names (read-only if `cfg` says so).
    pub fn new(cfg: &DiskConfig) -> Result<Self, Error> {
        let (file, len) = crate::devices::virtio::open_image(cfg)?;
        Ok(ScsiTarget {
            file,
            path: cfg.path.clone(),
            read_only: cfg.read_only,
            blocks: len / BLOCK,
            serial: serial_of(&cfg.path),
        })
    }

    /// Another handle on the same image (for a worker thread).
    pub fn try_clone(&self) -> Result<Self, Error> {
        Ok(ScsiTarget {
            file: self.file.try_clone().map_err(|err| Error::DiskOpen {
                path: self.path.clone(),
                err,
            })?,
            path: self.path.clone(),
            read_only: self.read_only,
            blocks: self.blocks,
            serial: self.serial.clone(),
        })
    }

    /// Capacity in blocks (a partial last block is not exposed).
    pub fn blocks(&self) -> u64 {
        self.blocks
    }

    /// Executes one command. `din` is where data for the initiator goes (its `len` is the
    /// room there), `dout` holds the data the initiator sends.
    pub fn execute<M: GuestMemory>(
        &mut self,
        mem: &M,
        cdb: &[u8],
        din: DataBuf,
        dout: DataBuf,
    ) -> Outcome {
        let mut c = [0u8; CDB_MAX];
        let n = cdb.len().min(CDB_MAX);
        c[..n].copy_from_slice(&cdb[..n]);
        let cdb = &c;
        let reply = |data: &[u8], alloc: u64| -> Outcome {
            let n = (data.len() as u64).min(alloc).min(din.len);
            match chain::write_bytes(mem, din.segs, din.offset, &data[..n as usize]) {
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
                self.rw(mem, write, lba, blocks, din, dout)
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
            0x00 => reply(&[0, 0x00, 0, 5, 0x00, 0x80, 0x83, 0xb0, 0xb1], alloc),
            0x80 => {
                let mut d = vec![0, 0x80, 0, self.serial.len() as u8];
                d.extend_from_slice(&self.serial);
                reply(&d, alloc)
            }
            0x83 => {
                // Device identification: one T10 vendor ID designator (ASCII, LU-associated).
                let mut desig = b"HVCERT  ".to_vec();
                desig.extend_from_slice(&self.serial);
                let mut d = vec![0, 0x83, 0, (4 + desig.len()) as u8];
                d.extend_from_slice(&[0x02, 0x01, 0x00, desig.len() as u8]);
                d.extend_from_slice(&desig);
                reply(&d, alloc)
            }
            0xb0 => {
                // Block limits: maximum and optimal transfer length; no UNMAP.
                let mut d = vec![0u8; 64];
                d[1] = 0xb0;
                d[3] = 0x3c;
                d[8..12].copy_from_slice(&MAX_BLOCKS.to_be_bytes());
                d[12..16].copy_from_slice(&MAX_BLOCKS.to_be_bytes());
                reply(&d, alloc)
            }
            0xb1 => {
                // Block device characteristics: non-rotating medium.
                let mut d = vec![0u8; 64];
                d[1] = 0xb1;
                d[3] = 0x3c;
                d[5] = 0x01;
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

    fn rw<M: GuestMemory>(
        &mut self,
        mem: &M,
        write: bool,
        lba: u64,
        blocks: u64,
        din: DataBuf,
        dout: DataBuf,
    ) -> Outcome {
        if blocks > u64::from(MAX_BLOCKS) {
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
            if dout.len < len {
                return check(ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
            }
            let r = chain::file_io(
                mem,
                dout.segs,
                dout.offset,
                len,
                &self.file,
                off,
                FileIo::Write,
            );
            match r {
                Ok(()) => good(0),
                Err(_) => check(MEDIUM_ERROR, ASC_WRITE_ERROR),
            }
        } else {
            if din.len < len {
                return check(ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
            }
            let r = chain::file_io(
                mem,
                din.segs,
                din.offset,
                len,
                &self.file,
                off,
                FileIo::Read,
            );
            match r {
                Ok(()) => good(len),
                Err(_) => check(MEDIUM_ERROR, ASC_UNRECOVERED_READ_ERROR),
            }
        }
    }
}

fn serial_of(path: &Path) -> Vec<u8> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.bytes()
        .filter(|b| b.is_ascii_graphic())
        .take(20)
        .collect()
}
