//! Guest-physical memory layout and guest-visible ports.
//!
//! ```text
//! 0x0000_0500  GDT (null, code32 0x08, code64 0x10, data 0x18, TSS 0x20)
//! 0x0000_6000  hvm_start_info (PVH); 0x6100 its memory map; 0x6800 module list
//! 0x0000_7000  boot_params "zero page" (bzImage)
//! 0x0000_8ff0  initial stack (bzImage)
//! 0x0000_9000  PML4, 0xa000 PDPT, 0xb000 PD: identity map of the first 1 GiB (bzImage)
//! 0x0002_0000  kernel command line (at most CMDLINE_MAX bytes)
//! 0x000e_0000  ACPI tables, RSDP first (crate::acpi; inside the reserved 0x9fc00..1 MiB)
//! 0x0010_0000  kernel (ELF p_paddr / bzImage code32_start)
//!   ...        initrd: page aligned, as high as possible in low memory
//! 0xc000_0000  MMIO hole up to 4 GiB; virtio-mmio devices from 0xd000_0000, 0x1000 apart
//! 0x1_0000_0000 the rest of guest RAM when it exceeds 3 GiB
//! ```

/// GDT base and selectors.
pub const GDT_ADDR: u64 = 0x500;
/// GDT selector: 32-bit code (PVH entry).
pub const SEL_CODE32: u16 = 0x08;
/// GDT selector: 64-bit code.
pub const SEL_CODE64: u16 = 0x10;
/// GDT selector: flat data.
pub const SEL_DATA: u16 = 0x18;
/// GDT selector: the TSS.
pub const SEL_TSS: u16 = 0x20;
/// The boot GDT: null, code32, code64, data, TSS descriptors.
pub const GDT: [u64; 5] = [
    0,
    0x00cf_9b00_0000_ffff, // 32-bit code, base 0, limit 4 GiB
    0x00af_9b00_0000_ffff, // 64-bit code
    0x00cf_9300_0000_ffff, // data
    0x0000_8b00_0000_0067, // 32/64-bit TSS (busy), base 0
];

/// PVH hvm_start_info.
pub const PVH_INFO_ADDR: u64 = 0x6000;
/// PVH memory map (hvm_memmap_table_entry array).
pub const PVH_MEMMAP_ADDR: u64 = 0x6100;
/// PVH module list (the initrd).
pub const PVH_MODLIST_ADDR: u64 = 0x6800;
/// Linux boot_params (zero page).
pub const ZERO_PAGE_ADDR: u64 = 0x7000;
/// Initial stack pointer of the boot vCPU.
pub const BOOT_STACK: u64 = 0x8ff0;
/// Boot page tables: PML4.
pub const PML4_ADDR: u64 = 0x9000;
/// Boot page tables: PDPT.
pub const PDPT_ADDR: u64 = 0xa000;
/// Boot page tables: page directory (2 MiB pages, first 1 GiB).
pub const PD_ADDR: u64 = 0xb000;
/// The kernel command line.
pub const CMDLINE_ADDR: u64 = 0x20000;
/// Longest command line, including the NUL.
pub const CMDLINE_MAX: usize = 4096;
/// Where the kernel is loaded (1 MiB).
pub const KERNEL_ADDR: u64 = 0x10_0000;
/// End of conventional memory (EBDA and ROMs above, reserved up to 1 MiB).
pub const LOW_RAM_END: u64 = 0x9_fc00;
/// Start of the MMIO hole below 4 GiB (RAM continues at [`FOUR_GIB`]).
pub const MMIO_HOLE_START: u64 = 0xc000_0000;
/// 4 GiB.
pub const FOUR_GIB: u64 = 0x1_0000_0000;
/// First virtio-mmio window: devices go from here upward, [`VIRTIO_MMIO_SIZE`] apart (the
/// guest learns of them from the command line; see [`crate::devices::bus::MmioBus`]).
pub const VIRTIO_MMIO_BASE: u64 = 0xd000_0000;
/// Size of each virtio-mmio window.
pub const VIRTIO_MMIO_SIZE: u64 = 0x1000;
/// GSI of the first virtio-mmio device (then one per device).
pub const VIRTIO_FIRST_GSI: u32 = 5;

/// COM1 (8250 UART, IRQ 4).
pub const COM1_BASE: u16 = 0x3f8;
/// COM1's IRQ (GSI).
pub const COM1_IRQ: u32 = 4;
/// A write ends the VM with the written value as its status (isa-debug-exit placement).
pub const STATUS_PORT: u16 = 0xf4;
/// The Hyper-V hypercall page's `out 0xf6, eax` lands here. Only honoured from inside the
/// enabled hypercall page at CPL 0; anything else gets #UD.
pub const HV_HYPERCALL_PORT: u16 = 0xf6;
/// The Xen hypercall stubs' `out 0xf7, eax` lands here (same checks as above).
pub const XEN_HYPERCALL_PORT: u16 = 0xf7;

/// Smallest and largest memory sizes accepted.
pub const MIN_MEMORY_MIB: u32 = 4;
/// Largest guest RAM.
pub const MAX_MEMORY_MIB: u32 = 64 * 1024;

/// E820 / PVH memory-map entry types.
pub const E820_RAM: u32 = 1;
/// e820 type: reserved.
pub const E820_RESERVED: u32 = 2;

/// One memory-map entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemEntry {
    /// First guest-physical address.
    pub addr: u64,
    /// Size in bytes.
    pub size: u64,
    /// e820 type ([`E820_RAM`] or [`E820_RESERVED`]).
    pub kind: u32,
}

/// Guest RAM ranges for `memory_mib` MiB: below the MMIO hole, then above 4 GiB.
pub fn ram_ranges(memory_mib: u32) -> Vec<(u64, u64)> {
    let total = u64::from(memory_mib) << 20;
    if total <= MMIO_HOLE_START {
        vec![(0, total)]
    } else {
        vec![(0, MMIO_HOLE_START), (FOUR_GIB, total - MMIO_HOLE_START)]
    }
}

/// The memory map the guest sees: RAM below 640 KiB, RAM from 1 MiB, RAM above 4 GiB, and
/// `reserved` ranges (device MMIO windows).
pub fn memory_map(memory_mib: u32, reserved: &[(u64, u64)]) -> Vec<MemEntry> {
    let mut map = vec![MemEntry {
        addr: 0,
        size: LOW_RAM_END,
        kind: E820_RAM,
    }];
    map.push(MemEntry {
        addr: LOW_RAM_END,
        size: KERNEL_ADDR - LOW_RAM_END,
        kind: E820_RESERVED,
    });
    for (start, size) in ram_ranges(memory_mib) {
        let (start, size) = if start == 0 {
            (KERNEL_ADDR, size.saturating_sub(KERNEL_ADDR))
        } else {
            (start, size)
        };
        if size > 0 {
            map.push(MemEntry {
                addr: start,
                size,
                kind: E820_RAM,
            });
        }
    }
    for &(addr, size) in reserved {
        map.push(MemEntry {
            addr,
            size,
            kind: E820_RESERVED,
        });
    }
    map.sort_by_key(|e| e.addr);
    map
}

/// End (exclusive) of RAM below the MMIO hole.
pub fn low_ram_end(memory_mib: u32) -> u64 {
    ram_ranges(memory_mib)[0].1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_memory_is_one_range() {
        assert_eq!(ram_ranges(128), vec![(0, 128 << 20)]);
        assert_eq!(low_ram_end(128), 128 << 20);
    }

    #[test]
    fn large_memory_skips_the_mmio_hole() {
        let r = ram_ranges(4096);
        assert_eq!(r, vec![(0, 0xc000_0000), (0x1_0000_0000, 0x4000_0000)]);
    }

    #[test]
    fn memory_map_marks_legacy_hole_and_devices_reserved() {
        let m = memory_map(64, &[(VIRTIO_MMIO_BASE, 0x1000)]);
        assert_eq!(
            m,
            vec![
                MemEntry {
                    addr: 0,
                    size: 0x9fc00,
                    kind: 1
                },
                MemEntry {
                    addr: 0x9fc00,
                    size: 0x100000 - 0x9fc00,
                    kind: 2
                },
                MemEntry {
                    addr: 0x100000,
                    size: (64 << 20) - 0x100000,
                    kind: 1
                },
                MemEntry {
                    addr: 0xd000_0000,
                    size: 0x1000,
                    kind: 2
                },
            ]
        );
    }
}
