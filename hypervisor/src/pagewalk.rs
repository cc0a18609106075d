//! Guest-virtual to guest-physical translation by walking the guest's page tables through
//! bounds-checked guest-memory reads. Supports paging off (identity) and 4-level long-mode
//! paging with 4 KiB, 2 MiB and 1 GiB pages. 32-bit paging, PAE without long mode and
//! 5-level paging are reported as unsupported.
use vm_memory::{
    ByteValued, Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion,
};

/// The paging-related control registers of a vCPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PagingMode {
    /// CR0 (PG, WP).
    pub cr0: u64,
    /// CR3: the top paging structure.
    pub cr3: u64,
    /// CR4 (PAE, LA57).
    pub cr4: u64,
    /// EFER (LMA).
    pub efer: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
/// Why a guest-virtual address could not be translated.
pub enum WalkError {
    /// A paging structure entry on the way is not present (level 4..1).
    NotPresent {
        /// The level of the missing entry.
        level: u8,
        /// The address being translated.
        va: u64,
    },
    /// A paging structure lies outside guest memory.
    OutsideMemory {
        /// The structure's guest-physical address.
        gpa: u64,
    },
    /// The address is not canonical.
    NonCanonical {
        /// The address.
        va: u64,
    },
    /// A paging mode the walker does not implement.
    Unsupported(&'static str),
}

impl std::fmt::Display for WalkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WalkError::NotPresent { level, va } => {
                write!(f, "{va:#x} not mapped (level-{level} entry not present)")
            }
            WalkError::OutsideMemory { gpa } => {
                write!(f, "page table at {gpa:#x} outside guest memory")
            }
            WalkError::NonCanonical { va } => write!(f, "{va:#x} is not canonical"),
            WalkError::Unsupported(m) => write!(f, "unsupported paging mode: {m}"),
        }
    }
}

const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const CR4_LA57: u64 = 1 << 12;
const EFER_LMA: u64 = 1 << 10;
const PRESENT: u64 = 1;
const PS: u64 = 1 << 7;
const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

/// Translates `va` with `read_u64` reading guest-physical quadwords (None = outside memory).
pub fn translate_with(
    read_u64: impl Fn(u64) -> Option<u64>,
    mode: PagingMode,
    va: u64,
) -> Result<u64, WalkError> {
    if mode.cr0 & CR0_PG == 0 {
        return Ok(va);
    }
    if mode.efer & EFER_LMA == 0 || mode.cr4 & CR4_PAE == 0 {
        return Err(WalkError::Unsupported("paging outside long mode"));
    }
    if mode.cr4 & CR4_LA57 != 0 {
        return Err(WalkError::Unsupported("5-level paging"));
    }
    let top = (va as i64) >> 47;
    if top != 0 && top != -1 {
        return Err(WalkError::NonCanonical { va });
    }
    let mut table = mode.cr3 & ADDR_MASK;
    for level in (1..=4u8).rev() {
        let shift = 12 + 9 * (u32::from(level) - 1);
        let idx = (va >> shift) & 0x1ff;
        let gpa = table + idx * 8;
        let entry = read_u64(gpa).ok_or(WalkError::OutsideMemory { gpa })?;
        if entry & PRESENT == 0 {
            return Err(WalkError::NotPresent { level, va });
        }
        if level == 1 || ((level == 2 || level == 3) && entry & PS != 0) {
            let page_mask = (1u64 << shift) - 1;
            return Ok((entry & ADDR_MASK & !page_mask) | (va & page_mask));
        }
        table = entry & ADDR_MASK;
    }
    // Level 1 always returns above.
    Err(WalkError::Unsupported("page walk ended without a leaf"))
}

/// Reads a `T` at guest-physical `gpa` if it lies inside one RAM region (bounds-checked by
/// vm-memory). The region's own accessor, not `GuestMemory::read_obj`: that one goes through
/// a range iterator meant for accesses spanning regions, which made page walks a visible
/// share of every hypercall's VMM time.
pub fn read_phys<T: ByteValued>(mem: &GuestMemoryMmap, gpa: u64) -> Option<T> {
    let addr = GuestAddress(gpa);
    let region = mem.find_region(addr)?;
    region.read_obj(region.to_region_addr(addr)?).ok()
}

/// Reads the aligned quadword at `gpa` (a paging-structure entry) with one atomic load, as
/// the CPU's page walker does, so an entry another vCPU is rewriting is seen whole, old or
/// new (bounds- and alignment-checked by vm-memory).
pub fn read_u64_aligned(mem: &GuestMemoryMmap, gpa: u64) -> Option<u64> {
    let addr = GuestAddress(gpa);
    let region = mem.find_region(addr)?;
    region
        .load(
            region.to_region_addr(addr)?,
            std::sync::atomic::Ordering::Relaxed,
        )
        .ok()
}

/// Translates `va` through the page tables in `mem`.
pub fn translate(mem: &GuestMemoryMmap, mode: PagingMode, va: u64) -> Result<u64, WalkError> {
    translate_with(|gpa| read_u64_aligned(mem, gpa), mode, va)
}

/// Why a guest-virtual buffer could not be accessed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessError {
    /// The translation failed.
    Walk(WalkError),
    /// Translated, but the physical page is not guest RAM.
    NotRam {
        /// The physical address.
        gpa: u64,
    },
}

/// Reads `len` bytes at guest-virtual `va`, page by page.
pub fn read_virt(
    mem: &GuestMemoryMmap,
    mode: PagingMode,
    va: u64,
    len: usize,
) -> Result<Vec<u8>, AccessError> {
    let mut out = vec![0u8; len];
    let mut done = 0usize;
    while done < len {
        let cur = va.wrapping_add(done as u64);
        let in_page = (0x1000 - (cur & 0xfff)) as usize;
        let n = in_page.min(len - done);
        let gpa = translate(mem, mode, cur).map_err(AccessError::Walk)?;
        mem.read_slice(&mut out[done..done + n], GuestAddress(gpa))
            .map_err(|_| AccessError::NotRam { gpa })?;
        done += n;
    }
    Ok(out)
}

/// Writes `data` at guest-virtual `va`, page by page.
pub fn write_virt(
    mem: &GuestMemoryMmap,
    mode: PagingMode,
    va: u64,
    data: &[u8],
) -> Result<(), AccessError> {
    let mut done = 0usize;
    while done < data.len() {
        let cur = va.wrapping_add(done as u64);
        let in_page = (0x1000 - (cur & 0xfff)) as usize;
        let n = in_page.min(data.len() - done);
        let gpa = translate(mem, mode, cur).map_err(AccessError::Walk)?;
        mem.write_slice(&data[done..done + n], GuestAddress(gpa))
            .map_err(|_| AccessError::NotRam { gpa })?;
        done += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mem() -> GuestMemoryMmap {
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x40_0000)]).unwrap()
    }

    fn lm(cr3: u64) -> PagingMode {
        PagingMode {
            cr0: CR0_PG | 1,
            cr3,
            cr4: CR4_PAE,
            efer: EFER_LMA | (1 << 8),
        }
    }

    fn w(m: &GuestMemoryMmap, gpa: u64, v: u64) {
        m.write_obj(v, GuestAddress(gpa)).unwrap();
    }

    /// Maps VA 0xffff_8000_0020_3000 -> 4 KiB page 0x30_0000, VA 0x4000_0000 -> 2 MiB
    /// page 0x20_0000, VA 0x80_0000_0000 -> 1 GiB page 0.
    fn tables(m: &GuestMemoryMmap) {
        // PML4 at 0x1000
        w(m, 0x1000 + 256 * 8, 0x2000 | 3);
        w(m, 0x1000, 0x5000 | 3);
        w(m, 0x1000 + 8, 0x7000 | 3);
        // high half: PDPT 0x2000 -> PD 0x3000 -> PT 0x4000
        w(m, 0x2000, 0x3000 | 3);
        w(m, 0x3000 + 8, 0x4000 | 3);
        w(m, 0x4000 + 3 * 8, 0x30_0000 | 3);
        // low: PDPT 0x5000 [1] -> PD 0x6000 [0] 2 MiB page 0x20_0000
        w(m, 0x5000 + 8, 0x6000 | 3);
        w(m, 0x6000, 0x20_0000 | 3 | PS);
        // PML4[1] -> PDPT 0x7000 [0] 1 GiB page at 0
        w(m, 0x7000, 3 | PS);
    }

    #[test]
    fn paging_off_is_identity() {
        let m = mem();
        assert_eq!(translate(&m, PagingMode::default(), 0x1234), Ok(0x1234));
    }

    #[test]
    fn four_level_walk_all_page_sizes() {
        let m = mem();
        tables(&m);
        let mode = lm(0x1000);
        assert_eq!(translate(&m, mode, 0xffff_8000_0020_3abc), Ok(0x30_0abc));
        assert_eq!(translate(&m, mode, 0x4001_2345), Ok(0x21_2345));
        assert_eq!(translate(&m, mode, 0x80_0012_3456), Ok(0x12_3456));
    }

    #[test]
    fn walk_errors() {
        let m = mem();
        tables(&m);
        let mode = lm(0x1000);
        assert_eq!(
            translate(&m, mode, 0x0000_8000_0000_0000),
            Err(WalkError::NonCanonical {
                va: 0x0000_8000_0000_0000
            })
        );
        assert_eq!(
            translate(&m, mode, 0xffff_8000_0020_4000),
            Err(WalkError::NotPresent {
                level: 1,
                va: 0xffff_8000_0020_4000
            })
        );
        assert!(matches!(
            translate(&m, mode, 0x100_0000_0000),
            Err(WalkError::NotPresent { level: 4, .. })
        ));
        // CR3 outside guest memory.
        assert!(matches!(
            translate(&m, lm(0x1_0000_0000), 0x1000),
            Err(WalkError::OutsideMemory { .. })
        ));
        let mut pae32 = mode;
        pae32.efer = 0;
        assert!(matches!(
            translate(&m, pae32, 0),
            Err(WalkError::Unsupported(_))
        ));
    }

    #[test]
    fn buffers_cross_pages() {
        let m = mem();
        tables(&m);
        let mode = lm(0x1000);
        // 0x4000_0ffe.. crosses into the next 4 KiB of the same 2 MiB page.
        write_virt(&m, mode, 0x4000_0ffe, b"abcd").unwrap();
        assert_eq!(read_virt(&m, mode, 0x4000_0ffe, 4).unwrap(), b"abcd");
        let mut raw = [0u8; 4];
        m.read_slice(&mut raw, GuestAddress(0x20_0ffe)).unwrap();
        assert_eq!(&raw, b"abcd");
        // The 4 KiB mapping ends at 0xffff_8000_0020_3fff.
        assert!(read_virt(&m, mode, 0xffff_8000_0020_3ffe, 4).is_err());
    }

    proptest::proptest! {
        #[test]
        fn walk_never_panics(cr3 in proptest::prelude::any::<u64>(), va in proptest::prelude::any::<u64>(), fill in proptest::prelude::any::<u64>()) {
            let read = |_gpa: u64| Some(fill);
            let _ = translate_with(read, lm(cr3), va);
        }
    }
}
