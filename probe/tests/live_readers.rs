//! The live readers on a fake /proc, /sys, /dev tree (LiveOptions::root), so every reader
//! and the facts that hang on them are checked without the hardware they describe.
use std::path::Path;

use probe::raw::Avail;
use probe::report::State;

fn put(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// An empty fake root, removed when dropped.
fn fake_root(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("hvcert-fake-root-{name}-"))
        .tempdir()
        .unwrap()
}

const CPUINFO: &str = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu vme lm nx vmx\n\
vmx flags\t: vnmi preemption_timer invvpid ept_x_only ept_ad flexpriority tsc_offset vtpr mtf vapic ept vpid\n\n\
processor\t: 1\nflags\t\t: fpu\n";

#[test]
fn live_readers_on_a_fake_tree() {
    let scratch = fake_root("full");
    let root = scratch.path().to_path_buf();
    put(&root, "proc/cpuinfo", CPUINFO);
    for (f, v) in [
        ("sys_vendor", "Dell Inc.\n"),
        ("product_name", "PowerEdge R630\n"),
        ("bios_vendor", "Dell Inc.\n"),
        ("bios_version", "2.11.0\n"),
        ("bios_date", "11/02/2019\n"),
    ] {
        put(&root, &format!("sys/class/dmi/id/{f}"), v);
    }
    put(
        &root,
        "sys/bus/pci/devices/0000:00:00.0/class",
        "0x060000\n",
    );
    put(&root, "sys/bus/pci/devices/0000:00:00.0/vendor", "0x8086\n");
    put(&root, "sys/bus/pci/devices/0000:00:00.0/device", "0x2f00\n");
    put(
        &root,
        "sys/bus/pci/devices/0000:00:01.0/class",
        "0x020000\n",
    );
    put(&root, "sys/bus/pci/devices/0000:00:01.0/vendor", "0x8086\n");
    put(&root, "sys/bus/pci/devices/0000:00:01.0/device", "0x1521\n");
    for t in ["APIC", "DMAR", "DSDT", "FACP"] {
        put(&root, &format!("sys/firmware/acpi/tables/{t}"), "");
    }
    std::fs::create_dir_all(root.join("sys/kernel/iommu_groups/0")).unwrap();
    std::fs::create_dir_all(root.join("sys/kernel/iommu_groups/1")).unwrap();
    put(
        &root,
        "dev/kmsg",
        "6,1,0,-;Linux version 6.1\n4,2,5,-;x86/cpu: VMX (outside TXT) disabled by BIOS\n SUBSYSTEM=cpu\n",
    );
    let raw = probe::live::collect(&probe::LiveOptions {
        root: root.clone(),
        kvm_check: false,
    });
    let d = raw.dmi.known().unwrap();
    assert_eq!(d.product_name.as_deref(), Some("PowerEdge R630"));
    let pci = raw.pci_host_bridges.known().unwrap();
    assert_eq!(pci.len(), 1, "only class 0x0600");
    assert_eq!((pci[0].vendor, pci[0].device), (0x8086, 0x2f00));
    assert_eq!(raw.iommu_groups, Avail::Known(2));
    assert_eq!(
        raw.kernel_log,
        Avail::Known(vec![
            "x86/cpu: VMX (outside TXT) disabled by BIOS".to_string()
        ])
    );
    let ci = raw.cpuinfo.known().unwrap();
    assert!(ci.vmx_flags.as_ref().unwrap().contains(&"ept".to_string()));
    // The MSR device is absent in the fake tree: the reason says so (or the vendor is not read).
    assert!(
        matches!(&raw.msrs, Avail::Known(m) if m.missing_why.is_some()) || raw.msrs.why().is_some()
    );

    // Put an Intel Haswell CPUID under it (the fake tree cannot fake the instruction).
    let haswell = probe::snapshot::read(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/hosts/dell-r630-haswell-ep"),
    )
    .unwrap();
    let mut host = raw.clone();
    host.cpuid = haswell.cpuid.clone();
    let r = probe::evaluate(&host, &[probe::hcl::sample().unwrap()]);
    assert_eq!(
        r.chipset.name.as_deref(),
        Some("Intel Xeon E5 v3 (Haswell-EP) DMI2, C610 platform")
    );
    assert_eq!(r.features.iommu.state, State::Present);
    assert_eq!(r.features.iommu.kernel_enabled, Some(true));
    // No MSR: the kernel log decides the firmware state.
    assert_eq!(r.features.hw_virt.state, State::DisabledInFirmware);
    // No capability MSRs: EPT/VPID from the kernel's `vmx flags` line (no unrestricted_guest there).
    assert!(r
        .features
        .slat
        .source
        .as_deref()
        .unwrap()
        .contains("vmx flags"));
    assert_eq!(r.features.slat.state, State::Present);
    assert_eq!(r.features.unrestricted_guest.state, State::Absent);
    assert_eq!(r.verdict.class, probe::Class::Unsupported);

    // Without the log line, cpuinfo hiding `vmx` while CPUID has it also means firmware-off.
    let mut host2 = host.clone();
    host2.kernel_log = Avail::Known(vec![]);
    host2.cpuinfo = Avail::Known(probe::raw::CpuInfo {
        flags: vec!["fpu".into(), "lm".into(), "nx".into()],
        vmx_flags: None,
    });
    let r2 = probe::evaluate(&host2, &[probe::hcl::sample().unwrap()]);
    assert_eq!(r2.features.hw_virt.state, State::DisabledInFirmware);
    assert!(r2
        .features
        .hw_virt
        .source
        .as_deref()
        .unwrap()
        .contains("hides vmx"));

    // With vmx in cpuinfo and nothing else: present, firmware state noted as unverified.
    let mut host3 = host2.clone();
    host3.cpuinfo = raw.cpuinfo.clone();
    let r3 = probe::evaluate(&host3, &[probe::hcl::sample().unwrap()]);
    assert_eq!(r3.features.hw_virt.state, State::Present);
    assert!(r3
        .features
        .hw_virt
        .note
        .as_deref()
        .unwrap()
        .contains("not verified"));
    assert_eq!(r3.verdict.class, probe::Class::Certified);
}

#[test]
fn empty_tree_gives_reasons_not_errors() {
    let scratch = fake_root("empty");
    let root = scratch.path().to_path_buf();
    let raw = probe::live::collect(&probe::LiveOptions {
        root: root.clone(),
        kvm_check: true,
    });
    assert!(raw.cpuinfo.why().unwrap().contains("cpuinfo"));
    assert!(raw.dmi.why().unwrap().contains("dmi"));
    assert!(raw.acpi_tables.why().is_some());
    assert!(raw.kernel_log.why().unwrap().contains("kmsg"));
    let kvm = raw.kvm.known().unwrap();
    assert!(!kvm.opened && kvm.error.as_deref().unwrap().contains("dev/kvm"));
    let r = probe::evaluate(&raw, &[probe::hcl::sample().unwrap()]);
    assert_eq!(r.kvm.mode, probe::KvmMode::Unavailable);
    assert_eq!(r.features.iommu.state, State::Unknown);
    assert!(r.features.iommu.why.is_some());
}

#[test]
fn intel_feature_control_and_capability_msrs_decode() {
    use probe::raw::{Hex, MsrRead, MsrSet};
    let haswell = probe::snapshot::read(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/hosts/dell-r630-haswell-ep"),
    )
    .unwrap();
    let with_msrs = |reads: Vec<(u64, u64)>| {
        let mut h = haswell.clone();
        h.msrs = Avail::Known(MsrSet {
            reads: reads
                .into_iter()
                .map(|(m, v)| MsrRead {
                    msr: Hex(m),
                    value: Some(Hex(v)),
                    why: None,
                })
                .collect(),
            missing_why: Some("not read".into()),
        });
        probe::evaluate(&h, &[probe::hcl::sample().unwrap()]).features
    };
    // Locked with VMX outside SMX enabled; unlocked (the kernel enables it); locked off.
    assert_eq!(with_msrs(vec![(0x3a, 0x5)]).hw_virt.state, State::Present);
    assert_eq!(with_msrs(vec![(0x3a, 0x0)]).hw_virt.state, State::Present);
    assert_eq!(
        with_msrs(vec![(0x3a, 0x3)]).hw_virt.state,
        State::DisabledInFirmware
    );
    // No secondary controls in 0x482: no EPT whatever 0x48b says.
    let f = with_msrs(vec![
        (0x482, 0x7fff_ffff_0000_0000),
        (0x48b, 0xffff_ffff_0000_0000),
    ]);
    assert_eq!(f.slat.state, State::Absent);
    // Secondary controls with EPT only.
    let f = with_msrs(vec![
        (0x482, 0xffff_ffff_0000_0000),
        (0x48b, 0x0000_0002_0000_0000),
    ]);
    assert_eq!(
        (f.slat.state, f.vpid.state, f.unrestricted_guest.state),
        (State::Present, State::Absent, State::Absent)
    );
}
