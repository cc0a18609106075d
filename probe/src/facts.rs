//! Pure interpretation: [`RawHost`] -> CPU identity, feature facts, KVM mode, platform,
//! chipset. No host access here.
use raw_cpuid::{CpuId, CpuIdResult, Hypervisor};

use crate::chipsets;
use crate::raw::{Avail, CpuidTable, KvmCheck, RawHost};
use crate::report::{Chipset, Cpu, Fact, Features, KvmMode, KvmReport, Platform, State};

/// Ring-0 over ring-3 loop time above which guest ring 0 is taken as emulated. With
/// VT-x/AMD-V both rings run the loop natively (ratio ~1); emulation costs ~1000x or more.
pub const NESTED_SOFTWARE_RATIO: f64 = 20.0;

/// Everything derived from the raw inputs, before the verdict.
#[derive(Debug, Clone)]
pub struct Derived {
    /// CPU identity (CPUID, else the DMI processor record).
    pub cpu: Cpu,
    /// Feature facts (long mode, NX, VT-x/AMD-V, SLAT, ...).
    pub features: Features,
    /// What the KVM functional check found.
    pub kvm: KvmReport,
    /// Platform identity from DMI.
    pub platform: Platform,
    /// Chipset from the first PCI host bridge.
    pub chipset: Chipset,
    /// Observations that are not features (e.g. CPUID and DMI disagreeing).
    pub notes: Vec<String>,
    /// The inputs disagree about the CPU (CPUID and the DMI processor record name different
    /// family/model): they may come from different machines.
    pub inputs_disagree: bool,
}

/// Interprets `raw` into facts (pure: no host access).
pub fn derive(raw: &RawHost) -> Derived {
    let mut notes = Vec::new();
    let mut inputs_disagree = false;
    let cpu = cpu_identity(raw, &mut notes, &mut inputs_disagree);
    let features = features(raw, &cpu);
    Derived {
        kvm: kvm_report(
            &raw.kvm,
            raw.inputs
                .first()
                .is_some_and(|i| i.starts_with("snapshot")),
        ),
        platform: platform(raw),
        chipset: chipset(raw),
        cpu,
        features,
        notes,
        inputs_disagree,
    }
}

fn with_table<T>(
    t: &CpuidTable,
    f: impl FnOnce(&CpuId<&dyn Fn(u32, u32) -> CpuIdResult>) -> T,
) -> T {
    let read = |a: u32, c: u32| {
        let r = t.get(a, c);
        CpuIdResult {
            eax: r[0],
            ebx: r[1],
            ecx: r[2],
            edx: r[3],
        }
    };
    let dynread: &dyn Fn(u32, u32) -> CpuIdResult = &read;
    let id = CpuId::with_cpuid_reader(dynread);
    f(&id)
}

/// Display family and model from CPUID leaf 1 EAX (Intel SDM vol. 2 "CPUID", AMD APM vol. 3
/// E.3.2). Computed here in u32 rather than through raw-cpuid's `family_id()`, which adds
/// base (0xf) and extended family (up to 0xff) in a u8 and overflows on such input.
fn display_family_model(f: &raw_cpuid::FeatureInfo) -> (u32, u32) {
    let base_family = u32::from(f.base_family_id());
    let base_model = u32::from(f.base_model_id());
    let family = if base_family == 0xf {
        base_family + u32::from(f.extended_family_id())
    } else {
        base_family
    };
    let model = if base_family == 0x6 || base_family == 0xf {
        (u32::from(f.extended_model_id()) << 4) + base_model
    } else {
        base_model
    };
    (family, model)
}

fn cpu_identity(raw: &RawHost, notes: &mut Vec<String>, disagree: &mut bool) -> Cpu {
    let dmi_cpu = raw.dmi.known().and_then(|d| d.processors.first().cloned());
    match &raw.cpuid {
        Avail::Known(t) => {
            let mut cpu = with_table(t, |id| {
                let vendor = id.get_vendor_info().map(|v| v.as_str().to_string());
                let fi = id.get_feature_info();
                let brand = id
                    .get_processor_brand_string()
                    .map(|b| b.as_str().split_whitespace().collect::<Vec<_>>().join(" "))
                    .filter(|b| !b.is_empty());
                Cpu {
                    vendor,
                    family: fi.as_ref().map(|f| display_family_model(f).0),
                    model: fi.as_ref().map(|f| display_family_model(f).1),
                    stepping: fi.as_ref().map(|f| u32::from(f.stepping_id())),
                    brand,
                    codename: None,
                    source: Some("CPUID leaves 0, 1, 0x80000002-4".into()),
                    why: None,
                }
            });
            cpu.codename =
                codename(cpu.vendor.as_deref(), cpu.family, cpu.model).map(str::to_string);
            if let Some(d) = dmi_cpu {
                if d.family.is_some() && (d.family != cpu.family || d.model != cpu.model) {
                    *disagree = true;
                    notes.push(format!(
                        "the DMI processor record says family {} model {} ({}), CPUID says family {} model {}: the inputs may come from different machines",
                        opt(d.family),
                        opt(d.model),
                        d.version.as_deref().unwrap_or("?"),
                        opt(cpu.family),
                        opt(cpu.model)
                    ));
                }
            }
            cpu
        }
        Avail::Missing(why) => match dmi_cpu {
            Some(d) => {
                let vendor = d.version.as_deref().and_then(|v| {
                    if v.contains("Intel") {
                        Some("GenuineIntel".to_string())
                    } else if v.contains("AMD") {
                        Some("AuthenticAMD".to_string())
                    } else {
                        None
                    }
                });
                Cpu {
                    codename: codename(vendor.as_deref(), d.family, d.model).map(str::to_string),
                    vendor,
                    family: d.family,
                    model: d.model,
                    stepping: d.stepping,
                    brand: d.version.clone(),
                    source: Some("DMI processor record (no CPUID input)".into()),
                    why: None,
                }
            }
            None => Cpu {
                vendor: None,
                family: None,
                model: None,
                stepping: None,
                brand: None,
                codename: None,
                source: None,
                why: Some(why.clone()),
            },
        },
    }
}

fn opt(v: Option<u32>) -> String {
    v.map_or("?".into(), |x| x.to_string())
}

/// Server codenames for the CPUs the sample list and fixtures know.
pub fn codename(
    vendor: Option<&str>,
    family: Option<u32>,
    model: Option<u32>,
) -> Option<&'static str> {
    let (f, m) = (family?, model?);
    Some(match (vendor?, f, m) {
        ("GenuineIntel", 6, 0x0f) => "Woodcrest/Clovertown (Core 2)",
        ("GenuineIntel", 6, 0x17) => "Harpertown (Penryn)",
        ("GenuineIntel", 6, 0x1d) => "Dunnington",
        ("GenuineIntel", 6, 0x1a) => "Nehalem-EP",
        ("GenuineIntel", 6, 0x2e) => "Nehalem-EX",
        ("GenuineIntel", 6, 0x2c) => "Westmere-EP",
        ("GenuineIntel", 6, 0x2f) => "Westmere-EX",
        ("GenuineIntel", 6, 0x2d) => "Sandy Bridge-EP",
        ("GenuineIntel", 6, 0x3e) => "Ivy Bridge-EP",
        ("GenuineIntel", 6, 0x3f) => "Haswell-EP",
        ("GenuineIntel", 6, 0x4f) => "Broadwell-EP",
        ("GenuineIntel", 6, 0x55) => "Skylake-SP/Cascade Lake",
        ("GenuineIntel", 6, 0x6a) => "Ice Lake-SP",
        ("GenuineIntel", 6, 0x8f) => "Sapphire Rapids",
        ("GenuineIntel", 6, 0xcf) => "Emerald Rapids",
        ("AuthenticAMD", 0x10, 0x02) => "Barcelona",
        ("AuthenticAMD", 0x10, 0x04) => "Shanghai",
        ("AuthenticAMD", 0x10, 0x08) => "Istanbul",
        ("AuthenticAMD", 0x10, 0x09) => "Magny-Cours",
        ("AuthenticAMD", 0x15, 0x01) => "Interlagos",
        ("AuthenticAMD", 0x15, 0x02) => "Abu Dhabi",
        ("AuthenticAMD", 0x17, 0x01) => "Naples",
        ("AuthenticAMD", 0x17, 0x31) => "Rome",
        ("AuthenticAMD", 0x19, 0x01) => "Milan",
        ("AuthenticAMD", 0x19, 0x11) => "Genoa",
        ("AuthenticAMD", 0x19, 0xa0..=0xaf) => "Bergamo",
        _ => return None,
    })
}

const FC_LOCK: u64 = 1;
const FC_VMX_OUTSIDE_SMX: u64 = 1 << 2;
const VMCR_SVMDIS: u64 = 1 << 4;

/// What the kernel log says about firmware disabling VT-x/AMD-V, if anything.
fn log_says_disabled(raw: &RawHost) -> Option<String> {
    raw.kernel_log.known()?.iter().find_map(|l| {
        let low = l.to_ascii_lowercase();
        (low.contains("disabled by bios")
            || low.contains("not enabled (by bios)")
            || low.contains("disabled (by bios)"))
        .then(|| l.clone())
    })
}

fn features(raw: &RawHost, cpu: &Cpu) -> Features {
    let t = match &raw.cpuid {
        Avail::Known(t) => t,
        Avail::Missing(why) => return features_without_cpuid(raw, why),
    };
    let intel = cpu.vendor.as_deref() == Some("GenuineIntel");
    let amd = matches!(
        cpu.vendor.as_deref(),
        Some("AuthenticAMD") | Some("HygonGenuine")
    );
    let ext_max = t.get(0x8000_0000, 0)[0];
    let e1 = if ext_max >= 0x8000_0001 {
        t.get(0x8000_0001, 0)
    } else {
        [0; 4]
    };
    let l1 = t.get(1, 0);
    let bit = |v: u32, b: u32| v & (1 << b) != 0;
    let present =
        |b: bool, src: &str| Fact::new(if b { State::Present } else { State::Absent }, src);

    let long_mode = present(bit(e1[3], 29), "CPUID 0x80000001 EDX[29]");
    let mut nx = present(bit(e1[3], 20), "CPUID 0x80000001 EDX[20]");
    if nx.state == State::Absent && intel {
        // Intel firmware can hide NX through IA32_MISC_ENABLE bit 34 (XD Bit Disable).
        match raw.msrs.known().map(|m| m.get(x86::msr::IA32_MISC_ENABLE)) {
            Some(Ok(v)) if v & (1 << 34) != 0 => {
                nx = Fact::new(
                    State::DisabledInFirmware,
                    format!("CPUID 0x80000001 EDX[20] clear; MSR 0x1a0 IA32_MISC_ENABLE = {v:#x}: XD Bit Disable set"),
                )
            }
            Some(Ok(_)) => {}
            _ => nx.note = Some("firmware may hide NX (XD Bit Disable); IA32_MISC_ENABLE (0x1a0) was not read".into()),
        }
    }
    let invariant_tsc = if ext_max >= 0x8000_0007 {
        present(bit(t.get(0x8000_0007, 0)[3], 8), "CPUID 0x80000007 EDX[8]")
    } else {
        Fact::new(State::Absent, "CPUID max extended leaf below 0x80000007")
    };

    let hypervisor = if bit(l1[2], 31) {
        let vendor = with_table(t, |id| {
            id.get_hypervisor_info().map(|h| match h.identify() {
                Hypervisor::KVM => "KVM".to_string(),
                Hypervisor::HyperV => "Microsoft Hyper-V".to_string(),
                Hypervisor::Xen => "Xen".to_string(),
                Hypervisor::VMware => "VMware".to_string(),
                Hypervisor::QEMU => "QEMU (TCG)".to_string(),
                Hypervisor::Bhyve => "bhyve".to_string(),
                Hypervisor::QNX => "QNX".to_string(),
                Hypervisor::ACRN => "ACRN".to_string(),
                Hypervisor::Unknown(b, c, d) => crate::raw::vendor_string(b, c, d),
            })
        });
        let mut f = Fact::new(State::Present, "CPUID 1 ECX[31], signature at 0x40000000");
        f.vendor = Some(vendor.unwrap_or_else(|| "unknown (no 0x40000000 signature)".into()));
        f
    } else {
        Fact::new(State::Absent, "CPUID 1 ECX[31]")
    };

    let (hw_virt, slat, vpid, ug) = if intel || (!amd && bit(l1[2], 5)) {
        intel_virt(raw, t, cpu)
    } else if amd {
        amd_virt(raw, t)
    } else {
        let why = format!(
            "unknown CPU vendor {:?}",
            cpu.vendor.as_deref().unwrap_or("?")
        );
        (
            Fact::unknown(&why),
            Fact::unknown(&why),
            Fact::unknown(&why),
            Fact::unknown(&why),
        )
    };

    Features {
        long_mode,
        nx,
        hw_virt,
        slat,
        vpid,
        unrestricted_guest: ug,
        invariant_tsc,
        hypervisor,
        iommu: iommu(raw),
    }
}

fn intel_virt(raw: &RawHost, t: &CpuidTable, cpu: &Cpu) -> (Fact, Fact, Fact, Fact) {
    let vmx = t.get(1, 0)[2] & (1 << 5) != 0;
    if !vmx {
        let note = "the CPU (or the hypervisor below) does not offer VT-x";
        let hw = Fact::new(State::Absent, "CPUID 1 ECX[5]")
            .kind("vmx")
            .note(note);
        let dep = || Fact::new(State::Absent, "needs VT-x (CPUID 1 ECX[5] clear)");
        return (hw, dep().kind("ept"), dep().kind("vpid"), dep());
    }
    // Firmware enable: IA32_FEATURE_CONTROL, then the kernel log, then /proc/cpuinfo.
    let msrs = raw.msrs.known();
    let fc = match msrs {
        Some(m) => m.get(x86::msr::IA32_FEATURE_CONTROL),
        None => Err(raw.msrs.why().unwrap_or("").to_string()),
    };
    let cpuinfo_hides_vmx = raw
        .cpuinfo
        .known()
        .is_some_and(|c| !c.flags.iter().any(|f| f == "vmx"));
    let hw = match fc {
        Ok(v) if v & FC_LOCK != 0 && v & FC_VMX_OUTSIDE_SMX == 0 => Fact::new(
            State::DisabledInFirmware,
            format!("MSR 0x3a IA32_FEATURE_CONTROL = {v:#x}: locked with VMX outside SMX off"),
        ),
        Ok(v) if v & FC_LOCK == 0 => Fact::new(
            State::Present,
            format!("CPUID 1 ECX[5]; MSR 0x3a = {v:#x} unlocked (the kernel enables VMX)"),
        ),
        Ok(v) => Fact::new(State::Present, format!("CPUID 1 ECX[5]; MSR 0x3a = {v:#x}: locked, VMX enabled")),
        Err(msr_why) => {
            if let Some(line) = log_says_disabled(raw) {
                Fact::new(State::DisabledInFirmware, format!("kernel log: {line}"))
            } else if cpuinfo_hides_vmx {
                Fact::new(
                    State::DisabledInFirmware,
                    "CPUID 1 ECX[5] set but /proc/cpuinfo hides vmx (the kernel hides it when firmware disabled VT-x)",
                )
            } else {
                Fact::new(State::Present, "CPUID 1 ECX[5]").note(format!(
                    "firmware enable not verified from IA32_FEATURE_CONTROL: {msr_why}"
                ))
            }
        }
    }
    .kind("vmx");

    // EPT / VPID / unrestricted guest: capability MSRs, else the kernel's `vmx flags`, else
    // the model table.
    let caps = msrs.map(|m| {
        (
            m.get(x86::msr::IA32_VMX_PROCBASED_CTLS),
            m.get(x86::msr::IA32_VMX_PROCBASED_CTLS2),
        )
    });
    let from_msr = match caps {
        Some((Ok(proc), ctls2)) => {
            if proc >> 32 & (1 << 31) == 0 {
                Some((
                    false,
                    false,
                    false,
                    "MSR 0x482: no secondary controls".to_string(),
                ))
            } else {
                match ctls2 {
                    Ok(c2) => {
                        let a1 = c2 >> 32;
                        Some((
                            a1 & 2 != 0,
                            a1 & (1 << 5) != 0,
                            a1 & (1 << 7) != 0,
                            "MSR 0x48b IA32_VMX_PROCBASED_CTLS2".to_string(),
                        ))
                    }
                    Err(_) => None,
                }
            }
        }
        _ => None,
    };
    let vmx_flags = raw.cpuinfo.known().and_then(|c| c.vmx_flags.clone());
    let (ept, vpid, ug, src) = if let Some(x) = from_msr {
        x
    } else if let Some(fl) = vmx_flags {
        let has = |n: &str| fl.iter().any(|f| f == n);
        (
            has("ept"),
            has("vpid"),
            has("unrestricted_guest"),
            "/proc/cpuinfo `vmx flags`".to_string(),
        )
    } else if let Some(gen) = intel_generation(cpu.family, cpu.model) {
        (
            gen.0,
            gen.1,
            gen.2,
            format!(
                "model table ({}): no VMX capability MSRs in the input",
                gen.3
            ),
        )
    } else {
        let why = match (msrs, raw.msrs.why()) {
            (Some(m), _) => m
                .get(x86::msr::IA32_VMX_PROCBASED_CTLS2)
                .err()
                .unwrap_or_default(),
            (None, w) => w.unwrap_or("").to_string(),
        };
        let why = format!(
            "VMX capability MSR 0x48b unknown ({why}) and no `vmx flags` line in /proc/cpuinfo"
        );
        return (
            hw,
            Fact::unknown(&why).kind("ept"),
            Fact::unknown(&why).kind("vpid"),
            Fact::unknown(&why),
        );
    };
    let st = |b: bool| if b { State::Present } else { State::Absent };
    (
        hw,
        Fact::new(st(ept), src.clone()).kind("ept"),
        Fact::new(st(vpid), src.clone()).kind("vpid"),
        Fact::new(st(ug), src),
    )
}

/// (EPT, VPID, unrestricted guest, generation) for Intel family 6 server cores, used only
/// when neither the capability MSRs nor the kernel's `vmx flags` are available.
fn intel_generation(
    family: Option<u32>,
    model: Option<u32>,
) -> Option<(bool, bool, bool, &'static str)> {
    if family? != 6 {
        return None;
    }
    Some(match model? {
        0x0e | 0x0f | 0x16 | 0x17 | 0x1d => {
            (false, false, false, "Core/Core 2: VT-x without EPT/VPID")
        }
        0x1a | 0x1e | 0x1f | 0x2e => (
            true,
            true,
            false,
            "Nehalem: EPT and VPID, no unrestricted guest",
        ),
        0x25 | 0x2c | 0x2f | 0x2a | 0x2d | 0x3a | 0x3e | 0x3c | 0x3f | 0x45 | 0x46 | 0x4f
        | 0x55 | 0x56 | 0x6a | 0x6c | 0x8f | 0xcf => (
            true,
            true,
            true,
            "Westmere or later: EPT, VPID, unrestricted guest",
        ),
        _ => return None,
    })
}

fn amd_virt(raw: &RawHost, t: &CpuidTable) -> (Fact, Fact, Fact, Fact) {
    let ext_max = t.get(0x8000_0000, 0)[0];
    let svm = ext_max >= 0x8000_0001 && t.get(0x8000_0001, 0)[2] & (1 << 2) != 0;
    if !svm {
        let hw = Fact::new(State::Absent, "CPUID 0x80000001 ECX[2]")
            .kind("svm")
            .note("the CPU (or the hypervisor below) does not offer AMD-V");
        let dep = || Fact::new(State::Absent, "needs AMD-V (CPUID 0x80000001 ECX[2] clear)");
        return (hw, dep().kind("npt"), dep().kind("asid"), dep());
    }
    let vmcr = match raw.msrs.known() {
        Some(m) => m.get(crate::raw::AMD_VM_CR),
        None => Err(raw.msrs.why().unwrap_or("").to_string()),
    };
    let hw = match vmcr {
        Ok(v) if v & VMCR_SVMDIS != 0 => Fact::new(
            State::DisabledInFirmware,
            format!("MSR 0xc0010114 VM_CR = {v:#x}: SVMDIS set"),
        ),
        Ok(v) => Fact::new(
            State::Present,
            format!("CPUID 0x80000001 ECX[2]; MSR 0xc0010114 VM_CR = {v:#x}"),
        ),
        Err(why) => match log_says_disabled(raw) {
            Some(line) => Fact::new(State::DisabledInFirmware, format!("kernel log: {line}")),
            None => Fact::new(State::Present, "CPUID 0x80000001 ECX[2]")
                .note(format!("firmware enable not verified from VM_CR: {why}")),
        },
    }
    .kind("svm");
    let a = if ext_max >= 0x8000_000a {
        t.get(0x8000_000a, 0)
    } else {
        [0; 4]
    };
    let npt = a[3] & 1 != 0;
    let st = |b: bool| if b { State::Present } else { State::Absent };
    let mut vpid = Fact::new(st(a[1] > 0), "CPUID 0x8000000A EBX (number of ASIDs)").kind("asid");
    if a[1] > 0 {
        vpid.note = Some(format!("{} ASIDs (SVM's equivalent of VPID)", a[1]));
    }
    (
        hw,
        Fact::new(st(npt), "CPUID 0x8000000A EDX[0]").kind("npt"),
        vpid,
        Fact::new(
            State::Present,
            "AMD-V runs real-mode and unpaged guests natively",
        ),
    )
}

/// Only a DMI processor record (or nothing) describes the CPU.
fn features_without_cpuid(raw: &RawHost, why: &str) -> Features {
    let why = format!("no CPUID input ({why})");
    let u = || Fact::unknown(&why);
    let dmi = raw.dmi.known().and_then(|d| d.processors.first().cloned());
    let hw_virt = match dmi {
        Some(p) if p.enhanced_virtualization => Fact::new(
            State::Present,
            "DMI processor characteristics list Enhanced Virtualization (a firmware claim; no CPUID)",
        ),
        _ => u(),
    };
    Features {
        long_mode: u(),
        nx: u(),
        hw_virt,
        slat: u(),
        vpid: u(),
        unrestricted_guest: u(),
        invariant_tsc: u(),
        hypervisor: u(),
        iommu: iommu(raw),
    }
}

fn iommu(raw: &RawHost) -> Fact {
    let table = raw
        .acpi_tables
        .known()
        .map(|ts| ts.iter().find(|t| *t == "DMAR" || *t == "IVRS").cloned());
    let groups = raw.iommu_groups.known().copied();
    let mut f = match (&table, groups) {
        (Some(Some(name)), g) => {
            let mut f = Fact::new(State::Present, format!("ACPI {name} table"));
            f.acpi_table = Some(name.clone());
            f.kernel_enabled = g.map(|n| n > 0);
            if g == Some(0) {
                f.note = Some(
                    "the kernel made no IOMMU groups: boot with intel_iommu=on or amd_iommu=on"
                        .into(),
                );
            }
            f
        }
        (Some(None), Some(n)) if n > 0 => {
            let mut f = Fact::new(State::Present, "kernel IOMMU groups (no DMAR/IVRS table)");
            f.kernel_enabled = Some(true);
            f
        }
        (Some(None), g) => {
            let mut f = Fact::new(State::Absent, "ACPI tables list has no DMAR or IVRS")
                .note("no IOMMU, or VT-d/AMD-Vi disabled in firmware setup");
            f.kernel_enabled = g.map(|n| n > 0);
            f
        }
        (None, Some(n)) if n > 0 => {
            let mut f = Fact::new(State::Present, "kernel IOMMU groups");
            f.kernel_enabled = Some(true);
            f
        }
        (None, _) => Fact::unknown(raw.acpi_tables.why().unwrap_or("no ACPI table list")),
    };
    if f.state == State::Present && f.kind.is_none() {
        f.kind = f.acpi_table.as_deref().map(|t| {
            if t == "DMAR" {
                "vt-d".into()
            } else {
                "amd-vi".into()
            }
        });
    }
    f
}

/// Interprets a KVM functional check; `from_snapshot` marks the measurement as replayed.
pub fn kvm_report(kvm: &Avail<KvmCheck>, from_snapshot: bool) -> KvmReport {
    let base = |mode, why: Option<String>| KvmReport {
        available: false,
        api_version: None,
        mode,
        exit_us: None,
        ring0_slowdown: None,
        vm_create_us: None,
        ring0_ns_per_op: None,
        ring3_ns_per_op: None,
        capabilities: Default::default(),
        measured: None,
        why,
    };
    let c = match kvm {
        Avail::Missing(why) => return base(KvmMode::NotChecked, Some(why.clone())),
        Avail::Known(c) => c,
    };
    let mut r = base(KvmMode::Unavailable, c.error.clone());
    r.measured = Some(if from_snapshot { "snapshot" } else { "live" }.into());
    r.api_version = c.api_version;
    r.capabilities = c.capabilities.clone();
    r.vm_create_us = c.vm_create_us;
    r.exit_us = c.exit_us;
    r.ring0_ns_per_op = c.ring0_ns;
    r.ring3_ns_per_op = c.ring3_ns;
    if !c.opened || !c.guest_ran {
        if r.why.is_none() {
            r.why = Some("the micro-guest did not run".into());
        }
        return r;
    }
    r.available = true;
    match (c.ring0_ns, c.ring3_ns) {
        (Some(r0), Some(r3)) if r3 > 0.0 => {
            let ratio = r0 / r3;
            r.ring0_slowdown = Some((ratio * 10.0).round() / 10.0);
            r.mode = if ratio >= NESTED_SOFTWARE_RATIO {
                KvmMode::NestedSoftware
            } else {
                KvmMode::Hardware
            };
        }
        _ => {
            r.mode = KvmMode::Hardware;
            r.why = Some("ring timings missing; assuming hardware-assisted".into());
        }
    }
    r
}

fn platform(raw: &RawHost) -> Platform {
    match &raw.dmi {
        Avail::Known(d) => Platform {
            vendor: d.sys_vendor.clone(),
            product: d.product_name.clone(),
            bios_version: d.bios_version.clone(),
            bios_date: d.bios_date.clone(),
            bios_vendor: d.bios_vendor.clone(),
            why: None,
        },
        Avail::Missing(why) => Platform {
            vendor: None,
            product: None,
            bios_version: None,
            bios_date: None,
            bios_vendor: None,
            why: Some(why.clone()),
        },
    }
}

fn chipset(raw: &RawHost) -> Chipset {
    match &raw.pci_host_bridges {
        Avail::Known(devs) => match devs.first() {
            Some(d) => Chipset {
                state: State::Present,
                pci_id: Some(format!("{:04x}:{:04x}", d.vendor, d.device)),
                name: Some(
                    chipsets::name(d.vendor, d.device)
                        .map(str::to_string)
                        .unwrap_or_else(|| {
                            format!(
                                "unknown host bridge from {}",
                                chipsets::vendor_name(d.vendor)
                            )
                        }),
                ),
                why: None,
            },
            None => Chipset {
                state: State::Unknown,
                pci_id: None,
                name: None,
                why: Some("no PCI device of class host bridge (0x0600)".into()),
            },
        },
        Avail::Missing(why) => Chipset {
            state: State::Unknown,
            pci_id: None,
            name: None,
            why: Some(why.clone()),
        },
    }
}
