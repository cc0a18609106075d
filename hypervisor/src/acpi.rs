//! ACPI tables for stock kernels (issue 11): RSDP, XSDT, FADT, MADT and DSDT, built with
//! rust-vmm's `acpi_tables` crate as a pure function of the VM's shape ([`AcpiConfig`]) and
//! written at fixed guest-physical addresses in the BIOS area (0xe0000..0x100000, already
//! reserved in the memory map: see [`crate::layout`]).
//!
//! Debian's cloud kernel has no `VIRTIO_MMIO_CMDLINE_DEVICES`, so its virtio-mmio devices
//! must be in the DSDT (`LNRO0005`, one per device, with its MMIO window and interrupt), and
//! without a MADT it says "smpboot: Boot CPU (id 0) not listed by BIOS".
//!
//! Wired into boot for every guest (`vstate::vm`): [`write()`] after the devices are
//! attached; the guest gets [`RSDP_ADDR`] through PVH `hvm_start_info.rsdp_paddr` and bzImage
//! `boot_params.acpi_rsdp_addr` (Linux also finds the RSDP by scanning 0xe0000..0x100000);
//! [`TABLES_START`]..[`TABLES_END`] lies in the reserved BIOS entry of every memory map.
//!
//! The FADT is **not** hardware-reduced. Linux on a hardware-reduced ACPI platform skips the
//! legacy timer set-up (no PIT tick) and the legacy PIC; a guest without kvm-clock whose TSC
//! cannot be calibrated (the nested host: "tsc: Unable to calibrate against PIT") then
//! never sees a jiffy and hangs in "Calibrating delay loop" (seen 2026-12-06 with the
//! hardware-reduced tables of the first port). So the FADT describes a legacy PC: SCI on
//! IRQ 9, PM1a event/control blocks at ports [`PM1A_EVT_PORT`]/[`PM1A_CNT_PORT`] (unclaimed:
//! reads return all-ones, so SCI_EN reads set and the kernel takes the system as already in
//! ACPI mode; nothing raises the SCI), no PM timer, no SMI command port, a FACS. An ACPI
//! power-off (S5) would need those ports handled by the VMM; not done here.
use acpi_tables::aml;
use acpi_tables::facs::FACS;
use acpi_tables::fadt::{FADTBuilder, Flags};
use acpi_tables::gas::{AccessSize, AddressSpace, GAS};
use acpi_tables::madt::{
    EnabledStatus, IoApic, LocalInterruptController, ProcessorLocalApic, MADT,
};
use acpi_tables::rsdp::Rsdp;
use acpi_tables::xsdt::XSDT;
use acpi_tables::Aml;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// Where the RSDP goes: the start of the BIOS area Linux scans for "RSD PTR ".
pub const RSDP_ADDR: u64 = 0x000e_0000;
/// First byte of the ACPI tables (the RSDP).
pub const TABLES_START: u64 = RSDP_ADDR;
/// One past the last byte the tables may use.
pub const TABLES_END: u64 = 0x0010_0000;
/// The local APIC's and the IOAPIC's MMIO addresses (KVM's in-kernel irqchip).
pub const LAPIC_ADDR: u32 = 0xfee0_0000;
/// The IOAPIC's MMIO address.
pub const IOAPIC_ADDR: u32 = 0xfec0_0000;
/// The SCI's interrupt (ISA IRQ 9, as on PC chipsets).
pub const SCI_IRQ: u16 = 9;
/// PM1a event block (status + enable, 4 bytes) port.
pub const PM1A_EVT_PORT: u32 = 0x600;
/// PM1a control block (2 bytes) port.
pub const PM1A_CNT_PORT: u32 = 0x604;

const OEM_ID: [u8; 6] = *b"HVCERT";
const OEM_TABLE_ID: [u8; 8] = *b"HVCERT01";
const OEM_REVISION: u32 = 1;

/// A virtio-mmio device as the DSDT describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VirtioMmio {
    /// Base of its MMIO window.
    pub base: u64,
    /// Size of the window.
    pub size: u64,
    /// Its interrupt (GSI = IOAPIC pin).
    pub gsi: u32,
}

/// The VM shape the tables describe.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AcpiConfig {
    /// Number of vCPUs (APIC IDs 0..cpus, each enabled).
    pub cpus: u8,
    /// The virtio-mmio devices, in bus order.
    pub virtio: Vec<VirtioMmio>,
    /// A VMBus device (`_HID` "VMBUS", empty `_CRS`): Linux's `hv_vmbus` binds to it and
    /// only then connects (its `vmbus_acpi_add` walks the `_CRS`, which must exist; on x86
    /// the VMBus interrupt is the SynIC's vector, so no IRQ resource is needed).
    pub vmbus: bool,
}

/// The tables, each with the guest-physical address it goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tables {
    /// (address, bytes) of RSDP, XSDT, FADT, FACS, MADT, DSDT in that order.
    pub blobs: Vec<(u64, Vec<u8>)>,
}

/// Why the tables could not be built or written.
#[derive(Debug, thiserror::Error)]
pub enum AcpiError {
    /// A device window is above 4 GiB (the DSDT's Memory32Fixed cannot hold it).
    #[error("virtio-mmio window {0:#x} is above 4 GiB")]
    WindowAbove4G(u64),
    /// More devices than the four-character AML names allow.
    #[error("too many virtio-mmio devices ({0}, at most 256)")]
    TooManyDevices(usize),
    /// The tables do not fit between TABLES_START and TABLES_END.
    #[error("ACPI tables need {0} bytes, more than the BIOS area holds")]
    TooLarge(u64),
    /// Guest memory does not cover the tables' area.
    #[error("cannot write the ACPI tables: {0}")]
    Memory(String),
}

fn bytes(t: &dyn Aml) -> Vec<u8> {
    let mut v = Vec::new();
    t.to_aml_bytes(&mut v);
    v
}

fn align16(a: u64) -> u64 {
    (a + 15) & !15
}

/// The DSDT body: COM1 (PNP0501, ports 0x3f8..0x3ff, IRQ 4) and one `LNRO0005` device per
/// virtio-mmio window (edge-triggered, active-high interrupt, as Cloud Hypervisor does).
fn dsdt(cfg: &AcpiConfig) -> Result<Vec<u8>, AcpiError> {
    if cfg.virtio.len() > 256 {
        return Err(AcpiError::TooManyDevices(cfg.virtio.len()));
    }
    let (com1_io, com1_irq) = (
        aml::IO::new(0x3f8, 0x3f8, 0, 8),
        aml::Interrupt::new(true, true, false, false, crate::layout::COM1_IRQ),
    );
    let com1_crs = aml::ResourceTemplate::new(vec![&com1_io, &com1_irq]);
    let (com1_hid, com1_uid) = (aml::EISAName::new("PNP0501"), aml::ZERO);
    let com1_names = [
        aml::Name::new("_HID".into(), &com1_hid),
        aml::Name::new("_UID".into(), &com1_uid),
        aml::Name::new("_CRS".into(), &com1_crs),
    ];
    let com1 = aml::Device::new(
        "COM1".into(),
        com1_names.iter().map(|n| n as &dyn Aml).collect(),
    );
    let mut body = bytes(&com1);
    for (i, d) in cfg.virtio.iter().enumerate() {
        let base = u32::try_from(d.base).map_err(|_| AcpiError::WindowAbove4G(d.base))?;
        let size = u32::try_from(d.size).map_err(|_| AcpiError::WindowAbove4G(d.base))?;
        let window = aml::Memory32Fixed::new(true, base, size);
        let irq = aml::Interrupt::new(true, true, false, false, d.gsi);
        let crs = aml::ResourceTemplate::new(vec![&window, &irq]);
        let (hid, uid): (&'static str, u32) = ("LNRO0005", i as u32);
        let names = [
            aml::Name::new("_HID".into(), &hid),
            aml::Name::new("_UID".into(), &uid),
            aml::Name::new("_CRS".into(), &crs),
        ];
        let name = format!("V{i:03X}");
        let dev = aml::Device::new(
            name.as_str().into(),
            names.iter().map(|n| n as &dyn Aml).collect(),
        );
        body.extend(bytes(&dev));
    }
    if cfg.vmbus {
        body.extend(vmbus_device());
    }
    let mut sdt = acpi_tables::sdt::Sdt::new(*b"DSDT", 36, 6, OEM_ID, OEM_TABLE_ID, OEM_REVISION);
    sdt.append_slice(&aml::Scope::raw("_SB_".into(), body));
    Ok(sdt.as_slice().to_vec())
}

/// `Device (VMBS) { _HID "VMBUS", _UID 0, _CRS {} }`.
fn vmbus_device() -> Vec<u8> {
    let crs = aml::ResourceTemplate::new(vec![]);
    let (hid, uid): (&'static str, u32) = ("VMBUS", 0);
    let names = [
        aml::Name::new("_HID".into(), &hid),
        aml::Name::new("_UID".into(), &uid),
        aml::Name::new("_CRS".into(), &crs),
    ];
    bytes(&aml::Device::new(
        "VMBS".into(),
        names.iter().map(|n| n as &dyn Aml).collect(),
    ))
}

/// Builds every table for `cfg` at its address (pure).
pub fn build(cfg: &AcpiConfig) -> Result<Tables, AcpiError> {
    let xsdt_addr = align16(RSDP_ADDR + Rsdp::len() as u64);
    // XSDT: header + 2 entries (FADT, MADT).
    let fadt_addr = align16(xsdt_addr + 36 + 2 * 8);
    // The FACS is 64-byte aligned.
    let facs_addr = (fadt_addr + acpi_tables::fadt::FADT::len() as u64 + 63) & !63;
    let after_fadt = facs_addr + FACS::len() as u64;
    let madt_addr = align16(after_fadt);
    let mut madt = MADT::new(
        OEM_ID,
        OEM_TABLE_ID,
        OEM_REVISION,
        LocalInterruptController::Address(LAPIC_ADDR),
    );
    for id in 0..cfg.cpus {
        madt.add_structure(ProcessorLocalApic::new(id, id, EnabledStatus::Enabled));
    }
    madt.add_structure(IoApic::new(0, IOAPIC_ADDR, 0));
    let madt = bytes(&madt);
    let dsdt_addr = align16(madt_addr + madt.len() as u64);
    let dsdt = dsdt(cfg)?;
    let end = dsdt_addr + dsdt.len() as u64;
    if end > TABLES_END {
        return Err(AcpiError::TooLarge(end - TABLES_START));
    }
    let fadt = legacy_fadt(dsdt_addr, facs_addr);
    let mut xsdt = XSDT::new(OEM_ID, OEM_TABLE_ID, OEM_REVISION);
    xsdt.add_entry(fadt_addr);
    xsdt.add_entry(madt_addr);
    Ok(Tables {
        blobs: vec![
            (RSDP_ADDR, bytes(&Rsdp::new(OEM_ID, xsdt_addr))),
            (xsdt_addr, bytes(&xsdt)),
            (fadt_addr, bytes(&fadt)),
            (facs_addr, bytes(&FACS::new())),
            (madt_addr, madt),
            (dsdt_addr, dsdt),
        ],
    })
}

/// The FADT of a legacy (not hardware-reduced) PC; see the module documentation.
fn legacy_fadt(dsdt_addr: u64, facs_addr: u64) -> acpi_tables::fadt::FADT {
    let io = |port: u32, bytes: u8, size| {
        GAS::new(AddressSpace::SystemIo, bytes * 8, 0, size, port.into())
    };
    let mut b = FADTBuilder::new(OEM_ID, OEM_TABLE_ID, OEM_REVISION)
        .dsdt_64(dsdt_addr)
        .firmware_ctrl_64(facs_addr)
        .flag(Flags::PwrButton)
        .flag(Flags::SlpButton);
    b.sci_int = SCI_IRQ.into();
    b.pm1a_evt_blk = PM1A_EVT_PORT.into();
    b.pm1a_cnt_blk = PM1A_CNT_PORT.into();
    b.pm1_evt_len = 4;
    b.pm1_cnt_len = 2;
    b.x_pm1a_evt_blk = io(PM1A_EVT_PORT, 4, AccessSize::DwordAccess);
    b.x_pm1a_cnt_blk = io(PM1A_CNT_PORT, 2, AccessSize::WordAccess);
    b.finalize()
}

/// Writes `tables` into guest memory.
pub fn write(mem: &GuestMemoryMmap, tables: &Tables) -> Result<(), AcpiError> {
    for (addr, b) in &tables.blobs {
        mem.write_slice(b, GuestAddress(*addr))
            .map_err(|e| AcpiError::Memory(format!("{addr:#x}: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(b: &[u8]) -> u8 {
        b.iter().fold(0u8, |a, x| a.wrapping_add(*x))
    }
    fn u32_at(b: &[u8], o: usize) -> u32 {
        u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
    }
    fn u64_at(b: &[u8], o: usize) -> u64 {
        u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
    }

    fn cfg(cpus: u8, n: usize) -> AcpiConfig {
        AcpiConfig {
            cpus,
            virtio: (0..n)
                .map(|i| VirtioMmio {
                    base: 0xd000_0000 + 0x1000 * i as u64,
                    size: 0x1000,
                    gsi: 5 + i as u32,
                })
                .collect(),
            vmbus: false,
        }
    }

    #[test]
    fn dsdt_has_a_vmbus_device_when_asked() {
        let count = |c: &AcpiConfig| {
            let t = build(c).unwrap();
            let d = &t.blobs[5].1;
            d.windows(6).filter(|w| *w == b"VMBUS\0").count()
        };
        let mut c = cfg(1, 1);
        assert_eq!(count(&c), 0);
        c.vmbus = true;
        assert_eq!(count(&c), 1);
        let t = build(&c).unwrap();
        let d = &t.blobs[5].1;
        // The empty _CRS: a buffer holding only the end tag (0x79, checksum 0).
        assert!(d.windows(4).any(|w| w == b"_CRS"));
        assert!(d.windows(4).any(|w| w == b"VMBS"));
        assert_eq!(
            d.iter().map(|&b| u32::from(b)).sum::<u32>() % 256,
            0,
            "checksum"
        );
    }

    #[test]
    fn checksums_lengths_and_links() {
        let t = build(&cfg(2, 2)).unwrap();
        let [(ra, rsdp), (xa, xsdt), (fa, fadt), (sa, facs), (ma, madt), (da, dsdt)] = &t.blobs[..]
        else {
            panic!("six tables")
        };
        assert_eq!(*ra, RSDP_ADDR);
        assert_eq!(&rsdp[..8], b"RSD PTR ");
        assert_eq!(rsdp.len(), 36);
        assert_eq!(sum(&rsdp[..20]), 0, "RSDP v1 checksum");
        assert_eq!(sum(rsdp), 0, "RSDP extended checksum");
        assert_eq!(u64_at(rsdp, 24), *xa, "RSDP -> XSDT");
        for (sig, b) in [
            (b"XSDT", xsdt),
            (b"FACP", fadt),
            (b"APIC", madt),
            (b"DSDT", dsdt),
        ] {
            assert_eq!(&b[..4], sig);
            assert_eq!(
                u32_at(b, 4) as usize,
                b.len(),
                "{} length",
                String::from_utf8_lossy(sig)
            );
            assert_eq!(sum(b), 0, "{} checksum", String::from_utf8_lossy(sig));
        }
        assert_eq!(xsdt.len(), 36 + 16);
        assert_eq!(
            (u64_at(xsdt, 36), u64_at(xsdt, 44)),
            (*fa, *ma),
            "XSDT entries"
        );
        assert_eq!(u64_at(fadt, 140), *da, "FADT X_DSDT");
        assert_eq!(u32_at(fadt, 112) & (1 << 20), 0, "not hardware-reduced");
        assert_eq!(u16::from_le_bytes([fadt[46], fadt[47]]), 9, "SCI_INT");
        assert_eq!(u32_at(fadt, 56), PM1A_EVT_PORT, "PM1a_EVT_BLK");
        assert_eq!(u32_at(fadt, 64), PM1A_CNT_PORT, "PM1a_CNT_BLK");
        assert_eq!((fadt[88], fadt[89]), (4, 2), "PM1 lengths");
        assert_eq!(u32_at(fadt, 76), 0, "no PM timer");
        assert_eq!(u64_at(fadt, 132), *sa, "FADT X_FIRMWARE_CTRL -> FACS");
        assert_eq!(&facs[..4], b"FACS");
        assert_eq!((u32_at(facs, 4), facs.len()), (64, 64), "FACS length");
        assert_eq!(sa % 64, 0, "FACS alignment");
        // Tables do not overlap and stay in the BIOS area.
        let mut end = 0;
        for (a, b) in &t.blobs {
            assert!(*a >= end, "overlap at {a:#x}");
            end = a + b.len() as u64;
        }
        assert!(end <= TABLES_END);
    }

    #[test]
    fn madt_lists_every_vcpu_and_the_ioapic() {
        let t = build(&cfg(4, 0)).unwrap();
        let madt = &t.blobs[4].1;
        assert_eq!(u32_at(madt, 36), LAPIC_ADDR);
        let mut lapics = Vec::new();
        let mut ioapics = 0;
        let mut o = 44;
        while o < madt.len() {
            let (ty, len) = (madt[o], madt[o + 1] as usize);
            match ty {
                0 => {
                    assert_eq!(u32_at(madt, o + 4) & 1, 1, "enabled");
                    lapics.push(madt[o + 3]);
                }
                1 => {
                    ioapics += 1;
                    assert_eq!(u32_at(madt, o + 4), IOAPIC_ADDR);
                }
                t => panic!("unexpected MADT entry type {t}"),
            }
            o += len;
        }
        assert_eq!(lapics, vec![0, 1, 2, 3]);
        assert_eq!(ioapics, 1);
    }

    #[test]
    fn dsdt_has_com1_and_each_virtio_device() {
        let t = build(&cfg(1, 3)).unwrap();
        let dsdt = &t.blobs[5].1;
        let count = |pat: &[u8]| dsdt.windows(pat.len()).filter(|w| *w == pat).count();
        assert_eq!(count(b"LNRO0005\0"), 3);
        assert_eq!(count(b"COM1"), 1);
        assert_eq!(count(b"_SB_"), 1);
        for i in 0..3u32 {
            // Memory32Fixed: 0x86, len 9, rw, base, size.
            let mut m = vec![0x86, 9, 0, 1];
            m.extend((0xd000_0000u32 + 0x1000 * i).to_le_bytes());
            m.extend(0x1000u32.to_le_bytes());
            assert_eq!(count(&m), 1, "window {i}");
            // Extended interrupt: 0x89, len 6, flags (consumer, edge) = 3, count 1, GSI.
            let mut irq = vec![0x89, 6, 0, 3, 1];
            irq.extend((5 + i).to_le_bytes());
            assert_eq!(count(&irq), 1, "interrupt {i}");
        }
        assert_eq!(
            build(&cfg(1, 0)).unwrap().blobs[5]
                .1
                .windows(8)
                .filter(|w| *w == b"LNRO0005")
                .count(),
            0
        );
    }

    #[test]
    fn bad_shapes_are_errors() {
        let mut c = cfg(1, 1);
        c.virtio[0].base = 0x1_0000_0000;
        assert!(matches!(build(&c), Err(AcpiError::WindowAbove4G(_))));
        assert!(matches!(
            build(&cfg(1, 300)),
            Err(AcpiError::TooManyDevices(300))
        ));
    }

    /// The guest must not take the tables' area for RAM: it lies inside one reserved
    /// e820 entry of every memory map, devices or not.
    #[test]
    fn tables_area_is_reserved_in_every_memory_map() {
        for mib in [4, 128, 4096] {
            for reserved in [&[][..], &[(0xd000_0000, 0x1000)][..]] {
                let map = crate::layout::memory_map(mib, reserved);
                assert!(
                    map.iter().any(|e| e.kind == crate::layout::E820_RESERVED
                        && e.addr <= TABLES_START
                        && TABLES_END <= e.addr + e.size),
                    "{mib} MiB: {map:?}"
                );
                assert!(
                    !map.iter().any(|e| e.kind == crate::layout::E820_RAM
                        && e.addr < TABLES_END
                        && TABLES_START < e.addr + e.size),
                    "RAM overlaps the tables at {mib} MiB"
                );
            }
        }
    }

    #[test]
    fn written_into_guest_memory() {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 2 << 20)]).unwrap();
        let t = build(&cfg(2, 1)).unwrap();
        write(&mem, &t).unwrap();
        let mut sig = [0u8; 8];
        mem.read_slice(&mut sig, GuestAddress(RSDP_ADDR)).unwrap();
        assert_eq!(&sig, b"RSD PTR ");
        let small = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x1000)]).unwrap();
        assert!(write(&small, &t).is_err());
    }
}
