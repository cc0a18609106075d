//! Names of common server chipsets by PCI host-bridge ID (vendor:device), from the PCI ID
//! repository's entries for the host bridge of each platform.
/// (PCI vendor id, device id, name) of known server host bridges.
pub const TABLE: &[(u16, u16, &str)] = &[
    (0x8086, 0x25c0, "Intel 5000X (Greencreek) MCH"),
    (0x8086, 0x25d0, "Intel 5000Z MCH"),
    (0x8086, 0x25d4, "Intel 5000V MCH"),
    (0x8086, 0x25d8, "Intel 5000P (Blackford) MCH"),
    (0x8086, 0x4003, "Intel 5400 (Seaburg) MCH"),
    (0x8086, 0x3403, "Intel 5500 I/O Hub (Tylersburg)"),
    (0x8086, 0x3405, "Intel 5520/5500/X58 I/O Hub (Tylersburg)"),
    (0x8086, 0x3406, "Intel 5520 I/O Hub (Tylersburg)"),
    (
        0x8086,
        0x3c00,
        "Intel Xeon E5 (Sandy Bridge-EP) DMI2, C600 platform",
    ),
    (
        0x8086,
        0x0e00,
        "Intel Xeon E5 v2 (Ivy Bridge-EP) DMI2, C600 platform",
    ),
    (
        0x8086,
        0x2f00,
        "Intel Xeon E5 v3 (Haswell-EP) DMI2, C610 platform",
    ),
    (
        0x8086,
        0x6f00,
        "Intel Xeon E5 v4 (Broadwell-EP) DMI2, C610 platform",
    ),
    (
        0x8086,
        0x2020,
        "Intel Xeon Scalable (Skylake-SP) DMI3, C620 platform",
    ),
    (
        0x8086,
        0x09a2,
        "Intel Xeon Scalable (Ice Lake-SP/Sapphire Rapids) Memory Map/VT-d",
    ),
    (0x8086, 0x1237, "Intel 440FX (emulated by QEMU)"),
    (0x8086, 0x29c0, "Intel Q35 MCH (emulated by QEMU)"),
    (0x8086, 0x0d57, "Firecracker virtual PCI host bridge"),
    (0x1002, 0x5a10, "AMD SR5690/RD890 northbridge"),
    (
        0x1022,
        0x1200,
        "AMD Family 10h HyperTransport configuration",
    ),
    (0x1022, 0x1600, "AMD Family 15h processor function 0"),
    (0x1022, 0x1450, "AMD Family 17h (Naples) root complex"),
    (
        0x1022,
        0x1480,
        "AMD Starship/Matisse (Rome/Milan) root complex",
    ),
    (0x1022, 0x14a4, "AMD Genoa/Bergamo root complex"),
];

/// The chipset name for a host-bridge PCI id, when the table knows it.
pub fn name(vendor: u16, device: u16) -> Option<&'static str> {
    TABLE
        .iter()
        .find(|(v, d, _)| *v == vendor && *d == device)
        .map(|e| e.2)
}

/// A readable name of a PCI vendor id (`Intel`, `AMD`, ...; else `vendor vvvv`).
pub fn vendor_name(vendor: u16) -> String {
    match vendor {
        0x8086 => "Intel".into(),
        0x1022 | 0x1002 => "AMD".into(),
        0x10de => "NVIDIA".into(),
        v => format!("vendor {v:04x}"),
    }
}
