//! Kernel loading (PVH ELF and bzImage via linux-loader) and the boot vCPU's initial state.
use crate::layout::*;
use crate::Error;
use kvm_bindings::{kvm_regs, kvm_segment, kvm_sregs};
use linux_loader::configurator::pvh::PvhBootConfigurator;
use linux_loader::configurator::{BootConfigurator, BootParams};
use linux_loader::loader::bootparam::boot_params;
use linux_loader::loader::elf::start_info::{
    hvm_memmap_table_entry, hvm_modlist_entry, hvm_start_info,
};
use linux_loader::loader::elf::PvhBootCapability;
use linux_loader::loader::{BzImage, Cmdline, Elf, KernelLoader};
use std::fs::File;
use std::io::Read;
use std::path::Path;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// How the boot vCPU starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryMode {
    /// 32-bit protected mode, paging off, EBX = hvm_start_info (PVH boot ABI).
    Pvh {
        /// The PVH entry point (XEN_ELFNOTE_PHYS32_ENTRY).
        entry: u64,
    },
    /// 64-bit long mode with the first 1 GiB identity-mapped, RSI = boot_params
    /// (Linux 64-bit boot protocol), entry = load address + 0x200.
    Linux64 {
        /// The 64-bit entry point.
        entry: u64,
    },
}

/// Result of loading a kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Loaded {
    /// How the boot vCPU enters the kernel.
    pub mode: EntryMode,
    /// First guest-physical address past the loaded kernel image.
    pub kernel_end: u64,
    /// Where the initrd was placed: (guest-physical address, size), if there is one.
    pub initrd: Option<(u64, u64)>,
}

const ELF_MAGIC: [u8; 4] = [0x7f, b'E', b'L', b'F'];
const HDRS_MAGIC: u32 = 0x5372_6448;
const XEN_HVM_START_MAGIC: u32 = 0x336e_c578;
const XLF_KERNEL_64: u16 = 1;
const LOADFLAGS_CAN_USE_HEAP: u8 = 0x80;

fn kerr(path: &Path, msg: impl Into<String>) -> Error {
    Error::Kernel {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

/// Builds the command line the guest sees.
pub fn cmdline(user: &str, extra: &[String]) -> Result<Cmdline, Error> {
    let mut c = Cmdline::new(CMDLINE_MAX).map_err(|e| Error::Config(format!("cmdline: {e}")))?;
    if !user.is_empty() {
        c.insert_str(user)
            .map_err(|e| Error::Config(format!("cmdline `{user}`: {e}")))?;
    }
    for x in extra {
        c.insert_str(x)
            .map_err(|e| Error::Config(format!("cmdline `{x}`: {e}")))?;
    }
    Ok(c)
}

/// Kernels up to this size are read into memory in one go before loading: linux-loader reads
/// an ELF in many small pieces (headers, notes), each a syscall of a few microseconds here.
/// Bigger ones are read from the file straight into guest memory (no extra copy).
const READ_WHOLE_MAX: u64 = 4 << 20;

/// Loads `kernel` (+ `initrd`) and writes boot parameters, command line and memory map;
/// `rsdp` (the ACPI RSDP's address, [`crate::acpi::RSDP_ADDR`]) goes to PVH
/// `hvm_start_info.rsdp_paddr` or bzImage `boot_params.acpi_rsdp_addr` (boot protocol
/// 2.14+).
pub fn load(
    mem: &GuestMemoryMmap,
    memory_mib: u32,
    kernel: &Path,
    initrd: Option<&Path>,
    cmdline: &Cmdline,
    reserved: &[(u64, u64)],
    rsdp: Option<u64>,
) -> Result<Loaded, Error> {
    let mut f = File::open(kernel).map_err(|e| kerr(kernel, format!("cannot open: {e}")))?;
    // Only a regular file's length is known: a device (/dev/zero) or FIFO goes through the
    // loader, which reads no more than the headers ask for.
    let size = f
        .metadata()
        .ok()
        .filter(|m| m.is_file())
        .map_or(u64::MAX, |m| m.len());
    if size <= READ_WHOLE_MAX {
        let mut data = Vec::with_capacity(size as usize);
        // (Bounded even if the file grows meanwhile: the loader then sees its first bytes.)
        (&mut f)
            .take(READ_WHOLE_MAX + 1)
            .read_to_end(&mut data)
            .map_err(|e| kerr(kernel, format!("cannot read: {e}")))?;
        let mut c = std::io::Cursor::new(data);
        load_from(
            &mut c, mem, memory_mib, kernel, initrd, cmdline, reserved, rsdp,
        )
    } else {
        load_from(
            &mut f, mem, memory_mib, kernel, initrd, cmdline, reserved, rsdp,
        )
    }
}

#[allow(clippy::too_many_arguments)]
fn load_from<F: vm_memory::ReadVolatile + Read + std::io::Seek>(
    f: &mut F,
    mem: &GuestMemoryMmap,
    memory_mib: u32,
    kernel: &Path,
    initrd: Option<&Path>,
    cmdline: &Cmdline,
    reserved: &[(u64, u64)],
    rsdp: Option<u64>,
) -> Result<Loaded, Error> {
    let mut magic = [0u8; 4];
    f.read_exact(&mut magic)
        .map_err(|e| kerr(kernel, format!("cannot read the first 4 bytes: {e}")))?;
    let low_end = low_ram_end(memory_mib);
    let map = memory_map(memory_mib, reserved);
    linux_loader::loader::load_cmdline(mem, GuestAddress(CMDLINE_ADDR), cmdline)
        .map_err(|e| Error::Config(format!("command line: {e}")))?;
    let cmdline_len = cmdline
        .as_cstring()
        .map(|c| c.as_bytes().len())
        .unwrap_or(0);
    write_gdt(mem)?;

    if magic == ELF_MAGIC {
        let r = Elf::load(mem, None, f, Some(GuestAddress(KERNEL_ADDR)))
            .map_err(|e| kerr(kernel, format!("ELF load failed: {e}")))?;
        let PvhBootCapability::PvhEntryPresent(entry) = r.pvh_boot_cap else {
            return Err(kerr(
                kernel,
                "ELF kernel has no XEN_ELFNOTE_PHYS32_ENTRY note: only PVH ELF kernels can boot",
            ));
        };
        let initrd = match initrd {
            Some(p) => Some(load_initrd(
                mem,
                p,
                r.kernel_end,
                low_end,
                u64::from(u32::MAX),
            )?),
            None => None,
        };
        write_pvh(mem, &map, initrd, rsdp)?;
        Ok(Loaded {
            mode: EntryMode::Pvh { entry: entry.0 },
            kernel_end: r.kernel_end,
            initrd,
        })
    } else {
        let r = BzImage::load(mem, None, f, Some(GuestAddress(KERNEL_ADDR))).map_err(|e| {
            kerr(
                kernel,
                format!("neither an ELF nor a loadable bzImage: {e}"),
            )
        })?;
        let hdr = r
            .setup_header
            .ok_or_else(|| kerr(kernel, "bzImage without a setup header"))?;
        if hdr.header != HDRS_MAGIC {
            return Err(kerr(kernel, "bzImage setup header lacks the HdrS magic"));
        }
        let version = hdr.version;
        let xloadflags = hdr.xloadflags;
        if version < 0x020c || xloadflags & XLF_KERNEL_64 == 0 {
            return Err(kerr(
                kernel,
                format!(
                    "bzImage boot protocol {version:#06x} without the 64-bit entry (XLF_KERNEL_64): need >= 2.12"
                ),
            ));
        }
        let initrd_max = if hdr.initrd_addr_max == 0 {
            0x37ff_ffff
        } else {
            u64::from(hdr.initrd_addr_max)
        };
        let initrd = match initrd {
            Some(p) => Some(load_initrd(mem, p, r.kernel_end, low_end, initrd_max)?),
            None => None,
        };
        let mut params = boot_params {
            hdr,
            ..Default::default()
        };
        params.hdr.type_of_loader = 0xff;
        params.hdr.loadflags |= LOADFLAGS_CAN_USE_HEAP;
        params.hdr.heap_end_ptr = 0xfe00;
        params.hdr.cmd_line_ptr = CMDLINE_ADDR as u32;
        params.hdr.cmdline_size = cmdline_len as u32;
        // boot_params.acpi_rsdp_addr (0x070; read by boot protocol 2.14+ kernels, older ones
        // find the RSDP by scanning the BIOS area).
        params.acpi_rsdp_addr = rsdp.unwrap_or(0);
        if let Some((addr, size)) = initrd {
            params.hdr.ramdisk_image = addr as u32;
            params.hdr.ramdisk_size = size as u32;
        }
        if map.len() > params.e820_table.len() {
            return Err(Error::Config(
                "too many memory-map entries for boot_params".into(),
            ));
        }
        for (i, e) in map.iter().enumerate() {
            params.e820_table[i].addr = e.addr;
            params.e820_table[i].size = e.size;
            params.e820_table[i].r#type = e.kind;
        }
        params.e820_entries = map.len() as u8;
        mem.write_obj(params, GuestAddress(ZERO_PAGE_ADDR))
            .map_err(|e| Error::Memory(format!("boot_params: {e}")))?;
        write_identity_tables(mem)?;
        Ok(Loaded {
            mode: EntryMode::Linux64 {
                entry: r.kernel_load.0 + 0x200,
            },
            kernel_end: r.kernel_end,
            initrd,
        })
    }
}

fn write_gdt(mem: &GuestMemoryMmap) -> Result<(), Error> {
    mem.write_obj(GDT, GuestAddress(GDT_ADDR))
        .map_err(|e| Error::Memory(format!("GDT: {e}")))
}

fn write_identity_tables(mem: &GuestMemoryMmap) -> Result<(), Error> {
    let w = |gpa: u64, v: u64| {
        mem.write_obj(v, GuestAddress(gpa))
            .map_err(|e| Error::Memory(format!("page tables: {e}")))
    };
    w(PML4_ADDR, PDPT_ADDR | 3)?;
    w(PDPT_ADDR, PD_ADDR | 3)?;
    for i in 0..512u64 {
        w(PD_ADDR + i * 8, (i << 21) | 0x83)?;
    }
    Ok(())
}

/// Places the initrd page-aligned as high as possible below `min(low_end, max + 1)` and above
/// `kernel_end`.
fn load_initrd(
    mem: &GuestMemoryMmap,
    path: &Path,
    kernel_end: u64,
    low_end: u64,
    max: u64,
) -> Result<(u64, u64), Error> {
    let ierr = |msg: String| Error::Initrd {
        path: path.to_path_buf(),
        msg,
    };
    let top = low_end.min(max.saturating_add(1));
    // Read at most one byte more than could fit: the path may be a device or a FIFO that
    // never ends (its metadata length says nothing), and memory is the host's.
    let mut data = Vec::new();
    File::open(path)
        .and_then(|f| f.take(top.saturating_add(1)).read_to_end(&mut data))
        .map_err(|e| ierr(format!("cannot read: {e}")))?;
    let size = data.len() as u64;
    let addr = top.checked_sub(size).map(|a| a & !0xfff);
    // `kernel_end` comes from the kernel file (an ELF's p_memsz is not bounded by the
    // loader): rounding it up must not overflow.
    let lowest = kernel_end.checked_next_multiple_of(0x1000);
    match (addr, lowest) {
        (Some(a), Some(lowest)) if a >= lowest => {
            mem.write_slice(&data, GuestAddress(a))
                .map_err(|e| ierr(format!("cannot copy into guest memory: {e}")))?;
            Ok((a, size))
        }
        _ => Err(ierr(format!(
            "{size} bytes do not fit between the kernel end {kernel_end:#x} and {top:#x}: give the VM more memory"
        ))),
    }
}

fn write_pvh(
    mem: &GuestMemoryMmap,
    map: &[MemEntry],
    initrd: Option<(u64, u64)>,
    rsdp: Option<u64>,
) -> Result<(), Error> {
    let mut info = hvm_start_info {
        magic: XEN_HVM_START_MAGIC,
        version: 1,
        rsdp_paddr: rsdp.unwrap_or(0),
        cmdline_paddr: CMDLINE_ADDR,
        memmap_paddr: PVH_MEMMAP_ADDR,
        memmap_entries: map.len() as u32,
        ..Default::default()
    };
    let entries: Vec<hvm_memmap_table_entry> = map
        .iter()
        .map(|e| hvm_memmap_table_entry {
            addr: e.addr,
            size: e.size,
            type_: e.kind,
            reserved: 0,
        })
        .collect();
    if initrd.is_some() {
        info.nr_modules = 1;
        info.modlist_paddr = PVH_MODLIST_ADDR;
    }
    let mut params = BootParams::new(&info, GuestAddress(PVH_INFO_ADDR));
    params.set_sections(&entries, GuestAddress(PVH_MEMMAP_ADDR));
    if let Some((paddr, size)) = initrd {
        params.set_modules(
            &[hvm_modlist_entry {
                paddr,
                size,
                cmdline_paddr: 0,
                reserved: 0,
            }],
            GuestAddress(PVH_MODLIST_ADDR),
        );
    }
    PvhBootConfigurator::write_bootparams(&params, mem)
        .map_err(|e| Error::Memory(format!("PVH start info: {e}")))
}

fn seg(selector: u16, type_: u8, l: u8, db: u8) -> kvm_segment {
    kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        type_,
        present: 1,
        dpl: 0,
        db,
        s: 1,
        l,
        g: 1,
        avl: 0,
        unusable: 0,
        padding: 0,
    }
}

/// Sets up the boot vCPU's special and general registers for `mode`.
pub fn boot_regs(mode: EntryMode, sregs: &mut kvm_sregs) -> kvm_regs {
    let data = seg(SEL_DATA, 3, 0, 1);
    sregs.ds = data;
    sregs.es = data;
    sregs.fs = data;
    sregs.gs = data;
    sregs.ss = data;
    sregs.tr = kvm_segment {
        base: 0,
        limit: 0x67,
        selector: SEL_TSS,
        type_: 11,
        present: 1,
        s: 0,
        g: 0,
        db: 0,
        l: 0,
        dpl: 0,
        avl: 0,
        unusable: 0,
        padding: 0,
    };
    sregs.gdt.base = GDT_ADDR;
    sregs.gdt.limit = (GDT.len() * 8 - 1) as u16;
    sregs.idt.base = 0;
    sregs.idt.limit = 0;
    let mut regs = kvm_regs {
        rflags: 2,
        ..Default::default()
    };
    match mode {
        EntryMode::Pvh { entry } => {
            sregs.cs = seg(SEL_CODE32, 11, 0, 1);
            sregs.cr0 = 0x11; // PE | ET
            sregs.cr3 = 0;
            sregs.cr4 = 0;
            sregs.efer = 0;
            regs.rip = entry;
            regs.rbx = PVH_INFO_ADDR;
        }
        EntryMode::Linux64 { entry } => {
            sregs.cs = seg(SEL_CODE64, 11, 1, 0);
            sregs.cr0 = 0x8000_0011; // PG | ET | PE
            sregs.cr3 = PML4_ADDR;
            sregs.cr4 = 0x20; // PAE
            sregs.efer = 0x500; // LME | LMA
            regs.rip = entry;
            regs.rsi = ZERO_PAGE_ADDR;
            regs.rsp = BOOT_STACK;
            regs.rbp = BOOT_STACK;
        }
    }
    regs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mem() -> GuestMemoryMmap {
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 16 << 20)]).unwrap()
    }

    /// A scratch file of `len` bytes in a directory of its own (removed by the caller).
    fn initrd_file(name: &str, len: usize) -> (std::path::PathBuf, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("hvcert-boot-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("initrd");
        std::fs::write(&p, vec![0x5au8; len]).unwrap();
        (dir, p)
    }

    #[test]
    fn initrd_goes_high_and_page_aligned() {
        let m = mem();
        let (dir, p) = initrd_file("small", 5000);
        let (addr, size) = load_initrd(&m, &p, 0x20_0000, 16 << 20, u64::from(u32::MAX)).unwrap();
        assert_eq!(size, 5000);
        assert_eq!(addr, ((16 << 20) - 5000) & !0xfff);
        assert!(load_initrd(&m, &p, (16 << 20) - 0x1000, 16 << 20, u64::MAX).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }

    /// An ELF's p_memsz is not bounded by linux-loader: a kernel file can claim a segment end
    /// near 2^64. Placing the initrd must then fail, not overflow.
    #[test]
    fn initrd_after_a_kernel_ending_near_the_top_of_the_address_space() {
        let m = mem();
        let (dir, p) = initrd_file("huge-kernel-end", 100);
        for kernel_end in [u64::MAX, u64::MAX - 0xffe, u64::MAX - 0x1000] {
            assert!(load_initrd(&m, &p, kernel_end, 16 << 20, u64::MAX).is_err());
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A device given as the kernel is not read to its (missing) end.
    #[test]
    fn endless_kernel_is_refused() {
        let m = mem();
        let c = cmdline("", &[]).unwrap();
        let e = load(&m, 16, Path::new("/dev/zero"), None, &c, &[], None);
        let msg = e.unwrap_err().to_string();
        assert!(
            msg.contains("neither an ELF nor a loadable bzImage"),
            "{msg}"
        );
    }

    /// A device or FIFO given as the initrd is read only as far as could fit.
    #[test]
    fn endless_initrd_is_refused() {
        let m = mem();
        let e = load_initrd(&m, Path::new("/dev/zero"), 0x20_0000, 16 << 20, u64::MAX);
        let msg = e.unwrap_err().to_string();
        assert!(msg.contains("do not fit"), "{msg}");
    }
}
