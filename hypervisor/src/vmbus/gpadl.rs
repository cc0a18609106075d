//! GPADLs (guest physical address descriptor lists): the page lists a guest hands the host
//! with GPADL_HEADER (+ GPADL_BODY) messages, and the table of established ones.
//!
//! A GPADL's range data is a sequence of u64 words: per range one word holding byte count
//! (low 32 bits) and byte offset (high 32 bits), then one PFN per page the range spans. The
//! header announces `range_buflen` bytes and `range_count` ranges; the words arrive over the
//! header and any number of bodies. When all have arrived the ranges are parsed and every
//! page is checked to be guest RAM; only then is the GPADL established.
use std::collections::HashMap;

use vm_memory::{GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

use crate::abi::PAGE_SIZE;

/// Most GPADLs (pending and established together) one guest may hold. Linux needs one per
/// channel ring plus netvsc's receive and send buffers; each holds at most 64 KiB of range
/// data (`range_buflen` is 16 bits), so the table stays under 16 MiB whatever a guest does.
pub const MAX_GPADLS: usize = 256;

/// Why a GPADL was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GpadlError {
    /// The handle is already pending or established.
    #[error("GPADL {0:#x} already exists")]
    Duplicate(u32),
    /// [`MAX_GPADLS`] reached.
    #[error("too many GPADLs")]
    TooMany,
    /// A body for a GPADL with no header.
    #[error("GPADL {0:#x} has no header")]
    Unknown(u32),
    /// Range data that does not add up.
    #[error("GPADL {gpadl:#x}: {why}")]
    Malformed {
        /// Handle.
        gpadl: u32,
        /// What is wrong.
        why: &'static str,
    },
    /// A page that is not guest RAM.
    #[error("GPADL {gpadl:#x}: page {pfn:#x} is not guest RAM")]
    NotRam {
        /// Handle.
        gpadl: u32,
        /// The page.
        pfn: u64,
    },
}

/// One range of a GPADL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Range {
    /// Bytes.
    pub byte_count: u32,
    /// Offset into the first page.
    pub byte_offset: u32,
    /// Pages.
    pub pfns: Vec<u64>,
}

/// An established GPADL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gpadl {
    /// The relid named in its header.
    pub relid: u32,
    /// Its ranges.
    pub ranges: Vec<Range>,
}

impl Gpadl {
    /// Every page of every range, in order.
    pub fn pfns(&self) -> Vec<u64> {
        self.ranges
            .iter()
            .flat_map(|r| r.pfns.iter().copied())
            .collect()
    }
}

#[derive(Debug)]
struct Pending {
    relid: u32,
    range_count: u16,
    want_words: usize,
    words: Vec<u64>,
}

/// The GPADLs of one guest.
#[derive(Debug, Default)]
pub struct GpadlTable {
    pending: HashMap<u32, Pending>,
    established: HashMap<u32, Gpadl>,
}

/// What adding a header or body led to.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    /// More bodies expected.
    Incomplete,
    /// Established: answer GPADL_CREATED(relid, handle, 0).
    Created {
        /// Relid of the header.
        relid: u32,
    },
}

impl GpadlTable {
    /// Number of pending and established GPADLs.
    pub fn len(&self) -> usize {
        self.pending.len() + self.established.len()
    }

    /// No GPADL at all?
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The established GPADL `handle`.
    pub fn get(&self, handle: u32) -> Option<&Gpadl> {
        self.established.get(&handle)
    }

    /// Relid of a pending GPADL (for the error answer to a bad body).
    pub fn pending_relid(&self, handle: u32) -> Option<u32> {
        self.pending.get(&handle).map(|p| p.relid)
    }

    /// A GPADL_HEADER. On error nothing of `handle` is kept (unless it was a duplicate of an
    /// existing one, which stays as it was).
    pub fn header(
        &mut self,
        mem: &GuestMemoryMmap,
        relid: u32,
        handle: u32,
        range_buflen: u16,
        range_count: u16,
        words: &[u64],
    ) -> Result<Progress, GpadlError> {
        if self.pending.contains_key(&handle) || self.established.contains_key(&handle) {
            return Err(GpadlError::Duplicate(handle));
        }
        if self.len() >= MAX_GPADLS {
            return Err(GpadlError::TooMany);
        }
        let bad = |why| GpadlError::Malformed { gpadl: handle, why };
        if range_count == 0 {
            return Err(bad("no ranges"));
        }
        if !range_buflen.is_multiple_of(8) {
            return Err(bad("range_buflen is not a multiple of 8"));
        }
        let want_words = usize::from(range_buflen) / 8;
        if words.len() > want_words {
            return Err(bad("more range data than range_buflen"));
        }
        self.pending.insert(
            handle,
            Pending {
                relid,
                range_count,
                want_words,
                words: words.to_vec(),
            },
        );
        self.try_finish(mem, handle)
    }

    /// A GPADL_BODY. On error the pending GPADL is dropped.
    pub fn body(
        &mut self,
        mem: &GuestMemoryMmap,
        handle: u32,
        words: &[u64],
    ) -> Result<Progress, GpadlError> {
        let p = self
            .pending
            .get_mut(&handle)
            .ok_or(GpadlError::Unknown(handle))?;
        if p.words.len() + words.len() > p.want_words {
            self.pending.remove(&handle);
            return Err(GpadlError::Malformed {
                gpadl: handle,
                why: "more range data than range_buflen",
            });
        }
        p.words.extend_from_slice(words);
        self.try_finish(mem, handle)
    }

    fn try_finish(&mut self, mem: &GuestMemoryMmap, handle: u32) -> Result<Progress, GpadlError> {
        let Some(p) = self.pending.get(&handle) else {
            return Err(GpadlError::Unknown(handle));
        };
        if p.words.len() < p.want_words {
            return Ok(Progress::Incomplete);
        }
        let Some(p) = self.pending.remove(&handle) else {
            return Err(GpadlError::Unknown(handle));
        };
        let ranges = parse_ranges(mem, handle, p.range_count, &p.words)?;
        self.established.insert(
            handle,
            Gpadl {
                relid: p.relid,
                ranges,
            },
        );
        Ok(Progress::Created { relid: p.relid })
    }

    /// Removes an established (or pending) GPADL; false when there is none.
    pub fn remove(&mut self, handle: u32) -> bool {
        self.established.remove(&handle).is_some() || self.pending.remove(&handle).is_some()
    }

    /// Forgets every GPADL (UNLOAD).
    pub fn clear(&mut self) {
        self.pending.clear();
        self.established.clear();
    }
}

/// Is the page `pfn` guest RAM, all of it?
pub fn page_is_ram(mem: &GuestMemoryMmap, pfn: u64) -> bool {
    pfn.checked_mul(PAGE_SIZE)
        .is_some_and(|gpa| mem.check_range(GuestAddress(gpa), PAGE_SIZE as usize))
}

/// Parses `count` ranges that must use exactly `words`, each page checked to be RAM.
fn parse_ranges(
    mem: &GuestMemoryMmap,
    handle: u32,
    count: u16,
    words: &[u64],
) -> Result<Vec<Range>, GpadlError> {
    let bad = |why| GpadlError::Malformed { gpadl: handle, why };
    let mut ranges = Vec::with_capacity(usize::from(count));
    let mut rest = words;
    for _ in 0..count {
        let (&w, tail) = rest.split_first().ok_or(bad("range data ends early"))?;
        let byte_count = w as u32;
        let byte_offset = (w >> 32) as u32;
        if byte_count == 0 {
            return Err(bad("empty range"));
        }
        if u64::from(byte_offset) >= PAGE_SIZE {
            return Err(bad("range offset past the first page"));
        }
        let pages = (u64::from(byte_offset) + u64::from(byte_count)).div_ceil(PAGE_SIZE);
        let pages = usize::try_from(pages).map_err(|_| bad("range too long"))?;
        if pages > tail.len() {
            return Err(bad("range spans more pages than PFNs given"));
        }
        let (pfns, tail) = tail.split_at(pages);
        if let Some(&pfn) = pfns.iter().find(|&&p| !page_is_ram(mem, p)) {
            return Err(GpadlError::NotRam { gpadl: handle, pfn });
        }
        ranges.push(Range {
            byte_count,
            byte_offset,
            pfns: pfns.to_vec(),
        });
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(bad("range data left after the last range"));
    }
    Ok(ranges)
}
