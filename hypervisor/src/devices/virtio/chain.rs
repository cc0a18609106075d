//! Walking and validating one descriptor chain before a device looks at its contents.
//!
//! The chain is walked with `virtio_queue::DescriptorChain` (which bounds the walk by the
//! queue size and follows indirect tables). That iterator ends silently on every kind of
//! malformed chain (a loop, a `next` index outside the table, a descriptor table outside
//! guest memory, a bad indirect table, more than 4 GiB in total), so [`collect`] checks how
//! it ended: a last descriptor that still has VIRTQ_DESC_F_NEXT set means the chain was cut
//! short. Descriptors are read exactly once; the device then works on this snapshot, so a
//! guest that rewrites descriptors while the device runs cannot make the two disagree.

use std::ops::Deref;

use virtio_bindings::bindings::virtio_ring::VRING_DESC_F_INDIRECT;
use virtio_queue::desc::split::Descriptor;
use virtio_queue::DescriptorChain;
use vm_memory::{Address, Bytes, GuestAddress, GuestMemory, GuestMemoryError, Permissions};

/// One guest buffer of a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seg {
    /// Guest-physical address of the buffer.
    pub addr: GuestAddress,
    /// Length of the buffer in bytes.
    pub len: u32,
}

/// A validated chain: device-readable buffers first, then device-writable ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chain {
    /// Index of the chain's head descriptor (returned in the used ring).
    pub head: u16,
    /// Device-readable buffers, in order.
    pub readable: Vec<Seg>,
    /// Device-writable buffers, in order.
    pub writable: Vec<Seg>,
}

impl Chain {
    /// Total bytes of the device-readable buffers.
    pub fn readable_len(&self) -> u64 {
        self.readable.iter().map(|s| u64::from(s.len)).sum()
    }
    /// Total bytes of the device-writable buffers.
    pub fn writable_len(&self) -> u64 {
        self.writable.iter().map(|s| u64::from(s.len)).sum()
    }
}

/// Why a chain cannot be processed at all (the device goes to NEEDS_RESET).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("available ring: {0}")]
    /// The available ring itself cannot be read.
    Ring(String),
    #[error("chain at head {head}: no descriptor could be read (head outside the table, table outside guest memory, or a bad indirect table)")]
    /// No descriptor of the chain could be read.
    Empty {
        /// The chain's head index.
        head: u16,
    },
    #[error("chain at head {head}: cut short after {count} descriptors (a loop, a chain longer than the queue, a next index outside the table, or more than 4 GiB)")]
    /// The chain did not end within the limits.
    Unterminated {
        /// The chain's head index.
        head: u16,
        /// Descriptors read before giving up.
        count: usize,
    },
    #[error("chain at head {head}: indirect descriptor used but VIRTIO_RING_F_INDIRECT_DESC was not negotiated")]
    /// An indirect descriptor without the feature.
    IndirectNotNegotiated {
        /// The chain's head index.
        head: u16,
    },
    #[error("chain at head {head}: buffer {addr:#x}+{len:#x} is outside guest memory")]
    /// A buffer outside guest memory.
    OutsideMemory {
        /// The chain's head index.
        head: u16,
        /// The buffer's guest-physical address.
        addr: u64,
        /// The buffer's length.
        len: u32,
    },
    #[error("chain at head {head}: a device-readable buffer follows a device-writable one")]
    /// Readable after writable buffers.
    ReadableAfterWritable {
        /// The chain's head index.
        head: u16,
    },
    #[error("chain at head {head}: no device-writable byte for the request status")]
    /// No writable byte for the status.
    NoStatus {
        /// The chain's head index.
        head: u16,
    },
}

/// Walk and validate the chain. `desc_table` is the queue's descriptor table address (used to
/// check the head descriptor's INDIRECT flag against the negotiated features).
pub fn collect<M>(
    chain: DescriptorChain<M>,
    desc_table: GuestAddress,
    indirect_ok: bool,
) -> Result<Chain, Malformed>
where
    M: Deref,
    M::Target: GuestMemory,
{
    let head = chain.head_index();
    let mem = chain.memory();
    if !indirect_ok {
        let raw: Option<Descriptor> = desc_table
            .checked_add(u64::from(head) * 16)
            .and_then(|a| mem.read_obj(a).ok());
        if let Some(d) = raw {
            if d.flags() & VRING_DESC_F_INDIRECT as u16 != 0 {
                return Err(Malformed::IndirectNotNegotiated { head });
            }
        }
    }
    let mut out = Chain {
        head,
        ..Chain::default()
    };
    let mut last_has_next = false;
    let mut count = 0usize;
    // Checks need the memory while the iterator holds the chain; clone the cheap handle.
    let mut iter = chain;
    let mut descs = Vec::new();
    for d in iter.by_ref() {
        count += 1;
        last_has_next = d.has_next();
        descs.push(d);
    }
    let mem = iter.memory();
    if count == 0 {
        return Err(Malformed::Empty { head });
    }
    if last_has_next {
        return Err(Malformed::Unterminated { head, count });
    }
    for d in descs {
        let perm = if d.is_write_only() {
            Permissions::Write
        } else {
            Permissions::Read
        };
        if d.len() > 0 && !mem.check_range(d.addr(), d.len() as usize, perm) {
            return Err(Malformed::OutsideMemory {
                head,
                addr: d.addr().raw_value(),
                len: d.len(),
            });
        }
        let seg = Seg {
            addr: d.addr(),
            len: d.len(),
        };
        if d.is_write_only() {
            out.writable.push(seg);
        } else {
            if !out.writable.is_empty() {
                return Err(Malformed::ReadableAfterWritable { head });
            }
            out.readable.push(seg);
        }
    }
    Ok(out)
}

/// Call `f(addr, n)` for each piece of `segs` covering the byte range `[offset, offset+len)`
/// of their concatenation. The caller has checked the range lies within the segments.
fn for_each_piece<E>(
    segs: &[Seg],
    mut offset: u64,
    mut len: u64,
    mut f: impl FnMut(GuestAddress, usize) -> Result<(), E>,
) -> Result<(), E> {
    for s in segs {
        if len == 0 {
            break;
        }
        let slen = u64::from(s.len);
        if offset >= slen {
            offset -= slen;
            continue;
        }
        let n = (slen - offset).min(len);
        // Cannot overflow: `collect` checked addr..addr+len lies in guest memory.
        f(s.addr.unchecked_add(offset), n as usize)?;
        len -= n;
        offset = 0;
    }
    Ok(())
}

/// Copy bytes from the segments (starting `offset` bytes in) into `buf`.
pub fn read_bytes<M: GuestMemory>(
    mem: &M,
    segs: &[Seg],
    offset: u64,
    buf: &mut [u8],
) -> Result<(), GuestMemoryError> {
    let mut done = 0usize;
    for_each_piece(segs, offset, buf.len() as u64, |a, n| {
        mem.read_slice(&mut buf[done..done + n], a)?;
        done += n;
        Ok(())
    })
}

/// Copy `data` into the segments, starting `offset` bytes in.
pub fn write_bytes<M: GuestMemory>(
    mem: &M,
    segs: &[Seg],
    offset: u64,
    data: &[u8],
) -> Result<(), GuestMemoryError> {
    let mut done = 0usize;
    for_each_piece(segs, offset, data.len() as u64, |a, n| {
        mem.write_slice(&data[done..done + n], a)?;
        done += n;
        Ok(())
    })
}

/// Direction of [`file_io`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileIo {
    /// File -> guest buffers (`preadv`).
    Read,
    /// Guest buffers -> file (`pwritev`).
    Write,
}

/// Positioned vectored I/O between `len` bytes of the segments (from `offset`) and `file`
/// at `file_off`: one `preadv`/`pwritev` per request (up to IOV_MAX pieces) instead of one
/// syscall per descriptor. vm-memory has no vectored file I/O, hence the iovecs built here
/// from its bounds-checked `VolatileSlice`s.
pub fn file_io<M: GuestMemory>(
    mem: &M,
    segs: &[Seg],
    offset: u64,
    len: u64,
    file: &std::fs::File,
    file_off: u64,
    dir: FileIo,
) -> std::io::Result<()> {
    use std::io::{Error, ErrorKind};
    use std::os::unix::io::AsRawFd;
    use vm_memory::bitmap::Bitmap;

    let bad = |e: GuestMemoryError| Error::new(ErrorKind::InvalidInput, e.to_string());
    let perm = match dir {
        FileIo::Read => Permissions::Write,
        FileIo::Write => Permissions::Read,
    };
    let mut slices = Vec::new();
    for_each_piece(segs, offset, len, |a, n| {
        for s in mem.get_slices(a, n, perm).map_err(bad)? {
            slices.push(s.map_err(bad)?);
        }
        Ok::<(), Error>(())
    })?;
    let guards: Vec<_> = slices.iter().map(|s| s.ptr_guard_mut()).collect();
    let mut iovs: Vec<libc::iovec> = guards
        .iter()
        .map(|g| libc::iovec {
            iov_base: g.as_ptr().cast(),
            iov_len: g.len(),
        })
        .collect();
    let mut first = 0usize;
    let mut pos = file_off;
    while first < iovs.len() {
        let cnt = (iovs.len() - first).min(1024) as libc::c_int;
        let off = libc::off_t::try_from(pos).map_err(|_| Error::from(ErrorKind::InvalidInput))?;
        let iov = iovs[first..].as_ptr();
        // SAFETY: every iovec describes a `VolatileSlice` of guest memory obtained from the
        // bounds-checked `get_slices` (so it lies inside a mapped region), kept alive and
        // mapped by `slices`/`guards` for the whole call; `cnt` iovecs starting at `first`
        // exist in `iovs`. The kernel reads or writes only those ranges.
        let r = unsafe {
            match dir {
                FileIo::Read => libc::preadv(file.as_raw_fd(), iov, cnt, off),
                FileIo::Write => libc::pwritev(file.as_raw_fd(), iov, cnt, off),
            }
        };
        if r < 0 {
            let e = Error::last_os_error();
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if r == 0 {
            return Err(Error::from(ErrorKind::UnexpectedEof));
        }
        let mut done = r as usize;
        pos += done as u64;
        while done > 0 && first < iovs.len() {
            let v = &mut iovs[first];
            if done >= v.iov_len {
                done -= v.iov_len;
                first += 1;
            } else {
                // SAFETY: advancing within the same iovec's buffer (done < iov_len).
                v.iov_base = unsafe { v.iov_base.cast::<u8>().add(done).cast() };
                v.iov_len -= done;
                done = 0;
            }
        }
    }
    if dir == FileIo::Read {
        for s in &slices {
            s.bitmap().mark_dirty(0, s.len());
        }
    }
    Ok(())
}
