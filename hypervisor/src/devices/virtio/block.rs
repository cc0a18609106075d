//! virtio-blk on a raw image file.
//!
//! Requests: IN (read), OUT (write), FLUSH (`fdatasync`), GET_ID, DISCARD (validated, then a
//! no-op: discard is advisory and the image is not sparse-managed) and WRITE_ZEROES (zeros
//! written). Requests past the end of the image, writes to a read-only image and malformed
//! request contents complete with VIRTIO_BLK_S_IOERR (or S_UNSUPP for an unknown or
//! unnegotiated type); only a chain with no device-writable status byte (nowhere to report
//! an error) puts the device into NEEDS_RESET.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::PathBuf;

use virtio_bindings::bindings::virtio_blk::{
    VIRTIO_BLK_F_DISCARD, VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_F_RO, VIRTIO_BLK_F_SEG_MAX,
    VIRTIO_BLK_F_WRITE_ZEROES, VIRTIO_BLK_ID_BYTES, VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_OK,
    VIRTIO_BLK_S_UNSUPP, VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_GET_ID,
    VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_WRITE_ZEROES,
};
use vm_memory::GuestMemory;

use super::chain::{self, Chain, FileIo, Malformed};
use super::mmio::{QueueHandler, Queues, VirtioDevice};
use super::{DiskConfig, Error};

/// Bytes per sector (virtio-blk's unit of `sector` and capacity).
pub const SECTOR_SIZE: u64 = 512;
/// Size of the device's one request queue.
pub const QUEUE_SIZE: u16 = 256;
/// Size of `struct virtio_blk_outhdr` (type, ioprio, sector).
pub const HEADER_LEN: u64 = 16;
/// Largest WRITE_ZEROES request (sectors): bounds the time one request holds the worker.
pub const MAX_WRITE_ZEROES_SECTORS: u32 = 1 << 16;
/// Largest discard/write-zeroes request, in sectors (config `max_discard_sectors`).
pub const MAX_DISCARD_SECTORS: u32 = u32::MAX;
/// Size of the config space we expose (`struct virtio_blk_config` up to write_zeroes_may_unmap).
pub const CONFIG_LEN: usize = 60;

/// Outcome of one request, as written to its status byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// VIRTIO_BLK_S_OK.
    Ok,
    /// VIRTIO_BLK_S_IOERR.
    IoErr,
    /// VIRTIO_BLK_S_UNSUPP.
    Unsupp,
}

impl Status {
    fn byte(self) -> u8 {
        (match self {
            Status::Ok => VIRTIO_BLK_S_OK,
            Status::IoErr => VIRTIO_BLK_S_IOERR,
            Status::Unsupp => VIRTIO_BLK_S_UNSUPP,
        }) as u8
    }
}

/// A parsed request header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// VIRTIO_BLK_T_* request type.
    pub req_type: u32,
    /// First sector of the request (512-byte units).
    pub sector: u64,
}

/// A virtio-blk device model (the transport-facing part).
pub struct Block {
    file: File,
    path: PathBuf,
    read_only: bool,
    capacity: u64,
    id: [u8; VIRTIO_BLK_ID_BYTES as usize],
    config: [u8; CONFIG_LEN],
}

impl Block {
    /// Opens the disk image `cfg` names (read-only if `cfg` says so).
    pub fn new(cfg: &DiskConfig) -> Result<Self, Error> {
        let (file, len) = super::open_image(cfg)?;
        let capacity = len / SECTOR_SIZE;
        let mut id = [0u8; VIRTIO_BLK_ID_BYTES as usize];
        let name = cfg
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let n = name.len().min(id.len());
        id[..n].copy_from_slice(&name.as_bytes()[..n]);

        let mut config = [0u8; CONFIG_LEN];
        config[0..8].copy_from_slice(&capacity.to_le_bytes());
        // seg_max: a request must leave room for its header and status descriptors.
        config[12..16].copy_from_slice(&u32::from(QUEUE_SIZE - 2).to_le_bytes());
        config[36..40].copy_from_slice(&MAX_DISCARD_SECTORS.to_le_bytes());
        config[40..44].copy_from_slice(&1u32.to_le_bytes()); // max_discard_seg
        config[44..48].copy_from_slice(&1u32.to_le_bytes()); // discard_sector_alignment
        config[48..52].copy_from_slice(&MAX_WRITE_ZEROES_SECTORS.to_le_bytes());
        config[52..56].copy_from_slice(&1u32.to_le_bytes()); // max_write_zeroes_seg
        Ok(Block {
            file,
            path: cfg.path.clone(),
            read_only: cfg.read_only,
            capacity,
            id,
            config,
        })
    }

    /// Capacity in 512-byte sectors (a partial last sector is not exposed).
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// A handler for direct (synchronous) use, as the worker thread uses it.
    pub fn handler(&self, features: u64) -> Result<BlockHandler, Error> {
        Ok(BlockHandler {
            file: self.file.try_clone().map_err(|err| Error::DiskOpen {
                path: self.path.clone(),
                err,
            })?,
            read_only: self.read_only,
            capacity_bytes: self.capacity * SECTOR_SIZE,
            id: self.id,
            features,
            zeros: Vec::new(),
        })
    }
}

impl VirtioDevice for Block {
    fn device_id(&self) -> u32 {
        virtio_bindings::virtio_ids::VIRTIO_ID_BLOCK
    }
    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE]
    }
    fn device_features(&self) -> u64 {
        let mut f = (1 << VIRTIO_BLK_F_FLUSH) | (1 << VIRTIO_BLK_F_SEG_MAX);
        if self.read_only {
            f |= 1 << VIRTIO_BLK_F_RO;
        } else {
            f |= (1 << VIRTIO_BLK_F_DISCARD) | (1 << VIRTIO_BLK_F_WRITE_ZEROES);
        }
        f
    }
    fn read_config(&self, offset: u64, data: &mut [u8]) {
        copy_config(&self.config, offset, data);
    }
    fn activate(&mut self, features: u64) -> Result<Box<dyn QueueHandler>, Error> {
        Ok(Box::new(self.handler(features)?))
    }
    fn name(&self) -> &'static str {
        "blk"
    }
}

/// Copy the part of `config` at `offset` into `data` (bytes past the end stay as they are;
/// the transport zero-fills first).
pub(crate) fn copy_config(config: &[u8], offset: u64, data: &mut [u8]) {
    let Ok(off) = usize::try_from(offset) else {
        return;
    };
    if off >= config.len() {
        return;
    }
    let n = data.len().min(config.len() - off);
    data[..n].copy_from_slice(&config[off..off + n]);
}

/// Host-side request processing of an active virtio-blk device.
pub struct BlockHandler {
    file: File,
    read_only: bool,
    capacity_bytes: u64,
    id: [u8; VIRTIO_BLK_ID_BYTES as usize],
    features: u64,
    zeros: Vec<u8>,
}

impl QueueHandler for BlockHandler {
    fn queue_event(&mut self, idx: usize, q: &mut Queues) -> Result<(), Malformed> {
        if idx != 0 {
            return Ok(());
        }
        loop {
            q.disable_notification(0)?;
            while let Some(chain) = q.pop(0)? {
                let used = self.process(q.mem, &chain)?;
                q.add_used(0, chain.head, used)?;
            }
            if !q.enable_notification(0)? {
                return Ok(());
            }
        }
    }
}

impl BlockHandler {
    fn has(&self, bit: u32) -> bool {
        self.features & (1u64 << bit) != 0
    }

    /// Byte offset of `[sector, sector + len)` if it lies inside the image.
    fn range(&self, sector: u64, len: u64) -> Option<u64> {
        let start = sector.checked_mul(SECTOR_SIZE)?;
        let end = start.checked_add(len)?;
        (end <= self.capacity_bytes).then_some(start)
    }

    /// Execute one request and write its status; returns the used length (bytes written
    /// into the chain's device-writable buffers).
    pub fn process<M: GuestMemory>(&mut self, mem: &M, c: &Chain) -> Result<u32, Malformed> {
        let wlen = c.writable_len();
        if wlen == 0 {
            return Err(Malformed::NoStatus { head: c.head });
        }
        let (status, data_written) = self.execute(mem, c);
        chain::write_bytes(mem, &c.writable, wlen - 1, &[status.byte()])
            .map_err(|_| Malformed::NoStatus { head: c.head })?;
        // Used length: data written (only on success) plus the status byte.
        let used = if status == Status::Ok {
            data_written + 1
        } else {
            1
        };
        Ok(u32::try_from(used).unwrap_or(u32::MAX))
    }

    fn execute<M: GuestMemory>(&mut self, mem: &M, c: &Chain) -> (Status, u64) {
        let rlen = c.readable_len();
        let wlen = c.writable_len();
        let Some(h) = parse_header(mem, c) else {
            return (Status::IoErr, 0);
        };
        // Data bytes the request carries in each direction.
        let data_in = wlen - 1;
        let data_out = rlen - HEADER_LEN;
        match h.req_type {
            VIRTIO_BLK_T_IN => {
                if data_out != 0 || !data_in.is_multiple_of(SECTOR_SIZE) {
                    return (Status::IoErr, 0);
                }
                let Some(off) = self.range(h.sector, data_in) else {
                    return (Status::IoErr, 0);
                };
                let r = chain::file_io(mem, &c.writable, 0, data_in, &self.file, off, FileIo::Read);
                match r {
                    Ok(()) => (Status::Ok, data_in),
                    Err(_) => (Status::IoErr, 0),
                }
            }
            VIRTIO_BLK_T_OUT => {
                if self.read_only || data_in != 0 || !data_out.is_multiple_of(SECTOR_SIZE) {
                    return (Status::IoErr, 0);
                }
                let Some(off) = self.range(h.sector, data_out) else {
                    return (Status::IoErr, 0);
                };
                let r = chain::file_io(
                    mem,
                    &c.readable,
                    HEADER_LEN,
                    data_out,
                    &self.file,
                    off,
                    FileIo::Write,
                );
                match r {
                    Ok(()) => (Status::Ok, 0),
                    Err(_) => (Status::IoErr, 0),
                }
            }
            VIRTIO_BLK_T_FLUSH => {
                if !self.has(VIRTIO_BLK_F_FLUSH) {
                    return (Status::Unsupp, 0);
                }
                if data_in != 0 || data_out != 0 {
                    return (Status::IoErr, 0);
                }
                if self.read_only {
                    return (Status::Ok, 0);
                }
                match self.file.sync_data() {
                    Ok(()) => (Status::Ok, 0),
                    Err(_) => (Status::IoErr, 0),
                }
            }
            VIRTIO_BLK_T_GET_ID => {
                if data_out != 0 || data_in == 0 {
                    return (Status::IoErr, 0);
                }
                let n = data_in.min(self.id.len() as u64) as usize;
                match chain::write_bytes(mem, &c.writable, 0, &self.id[..n]) {
                    Ok(()) => (Status::Ok, n as u64),
                    Err(_) => (Status::IoErr, 0),
                }
            }
            t @ (VIRTIO_BLK_T_DISCARD | VIRTIO_BLK_T_WRITE_ZEROES) => {
                let zeroes = t == VIRTIO_BLK_T_WRITE_ZEROES;
                let feature = if zeroes {
                    VIRTIO_BLK_F_WRITE_ZEROES
                } else {
                    VIRTIO_BLK_F_DISCARD
                };
                if !self.has(feature) {
                    return (Status::Unsupp, 0);
                }
                // Exactly one 16-byte segment (max_*_seg = 1).
                if self.read_only || data_in != 0 || data_out != 16 {
                    return (Status::IoErr, 0);
                }
                let mut seg = [0u8; 16];
                if chain::read_bytes(mem, &c.readable, HEADER_LEN, &mut seg).is_err() {
                    return (Status::IoErr, 0);
                }
                let sector = u64::from_le_bytes(seg[0..8].try_into().unwrap_or_default());
                let num = u32::from_le_bytes(seg[8..12].try_into().unwrap_or_default());
                let flags = u32::from_le_bytes(seg[12..16].try_into().unwrap_or_default());
                let max = if zeroes {
                    MAX_WRITE_ZEROES_SECTORS
                } else {
                    MAX_DISCARD_SECTORS
                };
                // Only the UNMAP flag (bit 0), and only for WRITE_ZEROES, is defined.
                if flags & !u32::from(zeroes) != 0 {
                    return (Status::Unsupp, 0);
                }
                if num > max {
                    return (Status::IoErr, 0);
                }
                let len = u64::from(num) * SECTOR_SIZE;
                let Some(off) = self.range(sector, len) else {
                    return (Status::IoErr, 0);
                };
                if !zeroes {
                    return (Status::Ok, 0);
                }
                match self.write_zeroes(off, len) {
                    Ok(()) => (Status::Ok, 0),
                    Err(_) => (Status::IoErr, 0),
                }
            }
            _ => (Status::Unsupp, 0),
        }
    }

    fn write_zeroes(&mut self, off: u64, mut len: u64) -> std::io::Result<()> {
        const CHUNK: usize = 1 << 20;
        if self.zeros.len() < CHUNK {
            self.zeros = vec![0u8; CHUNK];
        }
        self.file.seek(SeekFrom::Start(off))?;
        while len > 0 {
            let n = len.min(CHUNK as u64) as usize;
            self.file.write_all(&self.zeros[..n])?;
            len -= n as u64;
        }
        Ok(())
    }
}

/// Read the request header (None if the readable part is shorter than 16 bytes).
pub fn parse_header<M: GuestMemory>(mem: &M, c: &Chain) -> Option<Header> {
    if c.readable_len() < HEADER_LEN {
        return None;
    }
    let mut b = [0u8; HEADER_LEN as usize];
    chain::read_bytes(mem, &c.readable, 0, &mut b).ok()?;
    Some(Header {
        req_type: u32::from_le_bytes(b[0..4].try_into().ok()?),
        sector: u64::from_le_bytes(b[8..16].try_into().ok()?),
    })
}
