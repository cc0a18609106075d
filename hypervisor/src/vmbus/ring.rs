//! One VMBus ring buffer in guest pages, in Linux's layout (`struct hv_ring_buffer`): a 4 KiB
//! header page (write index, read index, interrupt mask, pending send size, feature bits),
//! then the data pages, which need not be contiguous in guest physical memory. Packets are
//! 8-byte aligned and followed by an 8-byte trailer (the writer's index before the packet in
//! bits 63:32); they wrap around the end of the data. The ring is never filled completely
//! (write == read means empty).
//!
//! Every index the guest can write is checked against the data size and alignment before
//! use; all memory goes through vm-memory's bounds-checked accessors. A bad index or a
//! packet that cannot be in the ring is a [`RingError`], never a panic.
use std::sync::atomic::{fence, Ordering};

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::abi::vmbus::{descriptor, ring};
use crate::abi::PAGE_SIZE;

use super::msg::u32_at;

/// What went wrong with a ring.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RingError {
    /// Fewer than two pages, or more data than an index can address.
    #[error("ring of {0} pages is not a valid size")]
    BadSize(usize),
    /// An index past the data or not 8-byte aligned.
    #[error("{which} index {value:#x} is invalid for a ring of {size:#x} data bytes")]
    BadIndex {
        /// "read" or "write".
        which: &'static str,
        /// The value found.
        value: u32,
        /// Data bytes.
        size: u32,
    },
    /// A packet whose descriptor does not fit what is in the ring.
    #[error("malformed packet in ring: {0}")]
    Malformed(&'static str),
    /// A packet that can never fit the ring.
    #[error("packet of {len} bytes can never fit a ring of {size} data bytes")]
    TooLarge {
        /// Packet bytes (trailer included).
        len: usize,
        /// Data bytes.
        size: u32,
    },
    /// A ring page is not guest memory any more.
    #[error("ring page not accessible")]
    Memory,
}

/// A ring in guest memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ring {
    header: u64,
    data: Vec<u64>,
    size: u32,
}

/// Result of writing one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write {
    /// Written; `signal` when the reader must be interrupted for it.
    Done {
        /// The reader was idle (mask clear) and had read everything before this packet.
        signal: bool,
    },
    /// Not enough room now.
    Full,
}

impl Ring {
    /// The ring on `pfns`: the header page first, then the data pages.
    pub fn new(pfns: &[u64]) -> Result<Ring, RingError> {
        let (&header, data) = pfns.split_first().ok_or(RingError::BadSize(0))?;
        let size = (data.len() as u64)
            .checked_mul(PAGE_SIZE)
            .filter(|&s| s > 0 && s <= 1 << 31)
            .ok_or(RingError::BadSize(pfns.len()))?;
        Ok(Ring {
            header: header.checked_mul(PAGE_SIZE).ok_or(RingError::Memory)?,
            data: data.to_vec(),
            size: size as u32,
        })
    }

    /// Data bytes.
    pub fn size(&self) -> u32 {
        self.size
    }

    fn field(&self, off: usize) -> GuestAddress {
        GuestAddress(self.header + off as u64)
    }

    fn load(&self, mem: &GuestMemoryMmap, off: usize) -> Result<u32, RingError> {
        mem.load::<u32>(self.field(off), Ordering::Acquire)
            .map_err(|_| RingError::Memory)
    }

    fn store(&self, mem: &GuestMemoryMmap, off: usize, v: u32) -> Result<(), RingError> {
        mem.store(v, self.field(off), Ordering::Release)
            .map_err(|_| RingError::Memory)
    }

    fn index(&self, mem: &GuestMemoryMmap, off: usize) -> Result<u32, RingError> {
        let value = self.load(mem, off)?;
        if value >= self.size || !value.is_multiple_of(8) {
            return Err(RingError::BadIndex {
                which: if off == ring::READ_INDEX {
                    "read"
                } else {
                    "write"
                },
                value,
                size: self.size,
            });
        }
        Ok(value)
    }

    /// The read index (checked).
    pub fn read_index(&self, mem: &GuestMemoryMmap) -> Result<u32, RingError> {
        self.index(mem, ring::READ_INDEX)
    }

    /// The write index (checked).
    pub fn write_index(&self, mem: &GuestMemoryMmap) -> Result<u32, RingError> {
        self.index(mem, ring::WRITE_INDEX)
    }

    /// Sets the interrupt mask (the host does while it drains the guest's ring).
    pub fn set_interrupt_mask(&self, mem: &GuestMemoryMmap, on: bool) -> Result<(), RingError> {
        self.store(mem, ring::INTERRUPT_MASK, u32::from(on))
    }

    /// Sets the pending send size (bytes the host waits for in the guest's ring; 0: none).
    pub fn set_pending_send_sz(&self, mem: &GuestMemoryMmap, v: u32) -> Result<(), RingError> {
        self.store(mem, ring::PENDING_SEND_SZ, v)
    }

    /// Guest address of data byte `pos` (< size) and the bytes left in its page.
    fn at(&self, pos: u32) -> Result<(GuestAddress, usize), RingError> {
        let page = (u64::from(pos) / PAGE_SIZE) as usize;
        let inpage = u64::from(pos) % PAGE_SIZE;
        let pfn = *self.data.get(page).ok_or(RingError::Memory)?;
        let gpa = pfn
            .checked_mul(PAGE_SIZE)
            .and_then(|g| g.checked_add(inpage))
            .ok_or(RingError::Memory)?;
        Ok((GuestAddress(gpa), (PAGE_SIZE - inpage) as usize))
    }

    fn copy_out(&self, mem: &GuestMemoryMmap, pos: u32, buf: &mut [u8]) -> Result<(), RingError> {
        let mut pos = pos % self.size;
        let mut done = 0;
        while done < buf.len() {
            let (gpa, room) = self.at(pos)?;
            let n = room.min(buf.len() - done);
            mem.read_slice(&mut buf[done..done + n], gpa)
                .map_err(|_| RingError::Memory)?;
            done += n;
            pos = ((u64::from(pos) + n as u64) % u64::from(self.size)) as u32;
        }
        Ok(())
    }

    fn copy_in(&self, mem: &GuestMemoryMmap, pos: u32, buf: &[u8]) -> Result<(), RingError> {
        let mut pos = pos % self.size;
        let mut done = 0;
        while done < buf.len() {
            let (gpa, room) = self.at(pos)?;
            let n = room.min(buf.len() - done);
            mem.write_slice(&buf[done..done + n], gpa)
                .map_err(|_| RingError::Memory)?;
            done += n;
            pos = ((u64::from(pos) + n as u64) % u64::from(self.size)) as u32;
        }
        Ok(())
    }

    fn advance(&self, pos: u32, n: u32) -> u32 {
        ((u64::from(pos) + u64::from(n)) % u64::from(self.size)) as u32
    }

    /// Bytes between `from` and `to` going forward.
    fn between(&self, from: u32, to: u32) -> u32 {
        if to >= from {
            to - from
        } else {
            self.size - from + to
        }
    }

    /// Reads the packet at `read` (the reader's private index) if `write` is past it.
    /// Returns the packet (descriptor included, trailer excluded) and the index after its
    /// trailer.
    pub fn read_at(
        &self,
        mem: &GuestMemoryMmap,
        read: u32,
        write: u32,
    ) -> Result<Option<(Vec<u8>, u32)>, RingError> {
        let avail = self.between(read, write);
        if avail == 0 {
            return Ok(None);
        }
        if (avail as usize) < descriptor::SIZE + ring::TRAILER_SIZE as usize {
            return Err(RingError::Malformed("fewer bytes than a descriptor"));
        }
        let mut desc = [0u8; descriptor::SIZE];
        self.copy_out(mem, read, &mut desc)?;
        let len8 = u32_at(&desc, descriptor::LEN8) & 0xffff;
        let offset8 = u32_at(&desc, descriptor::OFFSET8) & 0xffff;
        let len = len8 * 8;
        if (len as usize) < descriptor::SIZE {
            return Err(RingError::Malformed("length below the descriptor"));
        }
        if offset8 > len8 || (offset8 * 8) < descriptor::SIZE as u32 {
            return Err(RingError::Malformed("data offset outside the packet"));
        }
        if u64::from(len) + u64::from(ring::TRAILER_SIZE) > u64::from(avail) {
            return Err(RingError::Malformed(
                "packet longer than the data in the ring",
            ));
        }
        let mut pkt = vec![0u8; len as usize];
        self.copy_out(mem, read, &mut pkt)?;
        Ok(Some((pkt, self.advance(read, len + ring::TRAILER_SIZE))))
    }

    /// Publishes the reader's new index `new` (having started at `start`) and says whether
    /// the writer must be signalled under the pending-send-size protocol: it set the
    /// feature bit and a pending size, had no room for it before and has now.
    pub fn commit_read(
        &self,
        mem: &GuestMemoryMmap,
        start: u32,
        new: u32,
    ) -> Result<bool, RingError> {
        self.store(mem, ring::READ_INDEX, new)?;
        fence(Ordering::SeqCst);
        if self.load(mem, ring::FEATURE_BITS)? & ring::FEAT_PENDING_SEND_SZ == 0 {
            return Ok(false);
        }
        let pending = self.load(mem, ring::PENDING_SEND_SZ)?;
        if pending == 0 {
            return Ok(false);
        }
        let write = self.write_index(mem)?;
        // Room to write now (the writer's view: size minus unread bytes).
        let room = self.size - self.between(new, write);
        let freed = self.between(start, new);
        Ok(room.saturating_sub(freed) <= pending && room > pending)
    }

    /// Writes one packet (a multiple of 8 bytes, no trailer) after the write index.
    pub fn write(&self, mem: &GuestMemoryMmap, pkt: &[u8]) -> Result<Write, RingError> {
        let total = pkt.len() + ring::TRAILER_SIZE as usize;
        if !pkt.len().is_multiple_of(8) || total >= self.size as usize {
            return Err(RingError::TooLarge {
                len: total,
                size: self.size,
            });
        }
        let write = self.write_index(mem)?;
        let read = self.read_index(mem)?;
        let room = self.size - self.between(read, write);
        // Keep at least one byte free so that full and empty differ.
        if room as usize <= total {
            return Ok(Write::Full);
        }
        self.copy_in(mem, write, pkt)?;
        let trailer = u64::from(write) << 32;
        self.copy_in(
            mem,
            self.advance(write, pkt.len() as u32),
            &trailer.to_le_bytes(),
        )?;
        fence(Ordering::SeqCst);
        self.store(mem, ring::WRITE_INDEX, self.advance(write, total as u32))?;
        fence(Ordering::SeqCst);
        let signal = self.load(mem, ring::INTERRUPT_MASK)? == 0
            && self.load(mem, ring::READ_INDEX)? == write;
        Ok(Write::Done { signal })
    }
}
