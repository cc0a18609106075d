//! The raw inputs a probe works from: what a [`crate::HostSource`] collects, before any
//! interpretation. A snapshot directory stores exactly this (see [`crate::snapshot`]).
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// An input that was collected, or the reason it could not be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Avail<T> {
    /// The input was collected.
    Known(T),
    /// The input could not be collected; the reason.
    Missing(String),
}

impl<T> Default for Avail<T> {
    fn default() -> Self {
        Avail::Missing("not collected".into())
    }
}

impl<T> Avail<T> {
    /// A missing input with its reason.
    pub fn missing(why: impl Into<String>) -> Self {
        Avail::Missing(why.into())
    }
    /// The value, if collected.
    pub fn known(&self) -> Option<&T> {
        match self {
            Avail::Known(t) => Some(t),
            Avail::Missing(_) => None,
        }
    }
    /// The reason, if missing.
    pub fn why(&self) -> Option<&str> {
        match self {
            Avail::Known(_) => None,
            Avail::Missing(w) => Some(w),
        }
    }
    /// Whether the input was collected.
    pub fn is_known(&self) -> bool {
        matches!(self, Avail::Known(_))
    }
    /// Keeps `self` when known, otherwise takes `other` (the later input fills gaps).
    /// When both are missing, the reasons are kept together.
    pub fn or(self, other: Avail<T>) -> Avail<T> {
        match (self, other) {
            (Avail::Known(a), _) => Avail::Known(a),
            (Avail::Missing(_), Avail::Known(b)) => Avail::Known(b),
            (Avail::Missing(a), Avail::Missing(b)) if a == b => Avail::Missing(a),
            (Avail::Missing(a), Avail::Missing(b)) => Avail::Missing(format!("{a}; {b}")),
        }
    }
}

/// One CPUID result (leaf, sub-leaf) -> (eax, ebx, ecx, edx).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CpuidKey {
    /// CPUID leaf (EAX input).
    pub leaf: u32,
    /// CPUID sub-leaf (ECX input); 0 for leaves without sub-leaves.
    pub subleaf: u32,
}

/// The CPUID leaves of one logical CPU. Serialized in the text format of `cpuid -r`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuidTable {
    /// Registers (EAX, EBX, ECX, EDX) by leaf and sub-leaf.
    pub leaves: BTreeMap<CpuidKey, [u32; 4]>,
}

impl CpuidTable {
    /// Records one result; the first one recorded for a (leaf, sub-leaf) wins.
    pub fn insert(&mut self, leaf: u32, subleaf: u32, regs: [u32; 4]) {
        self.leaves
            .entry(CpuidKey { leaf, subleaf })
            .or_insert(regs);
    }
    /// What the CPUID instruction would return; zeros for a leaf the dump lacks (the
    /// convention for leaves beyond the maximum).
    pub fn get(&self, leaf: u32, subleaf: u32) -> [u32; 4] {
        if let Some(r) = self.leaves.get(&CpuidKey { leaf, subleaf }) {
            return *r;
        }
        // Dumps list only sub-leaf 0 for leaves without sub-leaves.
        if subleaf != 0 && !self.has_subleaves(leaf) {
            if let Some(r) = self.leaves.get(&CpuidKey { leaf, subleaf: 0 }) {
                return *r;
            }
        }
        [0; 4]
    }
    fn has_subleaves(&self, leaf: u32) -> bool {
        self.leaves
            .range(
                CpuidKey { leaf, subleaf: 1 }..=CpuidKey {
                    leaf,
                    subleaf: u32::MAX,
                },
            )
            .next()
            .is_some()
    }
    /// Whether no leaf was recorded.
    pub fn is_empty(&self) -> bool {
        self.leaves.is_empty()
    }
}

/// AMD VM_CR MSR (SVMDIS, LOCK; not among the x86 crate's MSR names).
pub const AMD_VM_CR: u32 = 0xc001_0114;

/// The 12-byte vendor string CPUID returns in three registers, in the order given (leaf 0:
/// EBX, EDX, ECX; hypervisor leaf 0x40000000: EBX, ECX, EDX), trailing NULs dropped.
pub fn vendor_string(b: u32, c: u32, d: u32) -> String {
    let mut s = Vec::with_capacity(12);
    for r in [b, c, d] {
        s.extend_from_slice(&r.to_le_bytes());
    }
    String::from_utf8_lossy(&s)
        .trim_end_matches('\0')
        .to_string()
}

/// A 64-bit value written as a hexadecimal string ("0x3a") in snapshots (JSON numbers
/// cannot hold every u64 exactly).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Hex(pub u64);

impl fmt::Display for Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

impl Serialize for Hex {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Hex {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_hex(&s).map(Hex).ok_or_else(|| {
            serde::de::Error::custom(format!("expected a hex number like 0x3a, found {s:?}"))
        })
    }
}

/// Parses "0x3a", "3Ah", "3a" as hexadecimal.
pub fn parse_hex(s: &str) -> Option<u64> {
    let t = s.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    let t = t
        .strip_suffix('h')
        .or_else(|| t.strip_suffix('H'))
        .unwrap_or(t);
    if t.is_empty() {
        return None;
    }
    u64::from_str_radix(t, 16).ok()
}

/// One model-specific register as read (or not) on CPU 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MsrRead {
    /// MSR index.
    pub msr: Hex,
    /// The value read, if the read succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Hex>,
    /// Why the read failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// MSRs read from CPU 0. An MSR not in the list was not read; `missing_why` says why.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MsrSet {
    /// The MSRs read (or tried).
    pub reads: Vec<MsrRead>,
    /// Why an MSR absent from `reads` is unknown (e.g. "the dump has no MSR section").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_why: Option<String>,
}

impl MsrSet {
    /// The value, or why it is unknown.
    pub fn get(&self, msr: u32) -> Result<u64, String> {
        match self.reads.iter().find(|r| r.msr.0 == u64::from(msr)) {
            Some(MsrRead { value: Some(v), .. }) => Ok(v.0),
            Some(MsrRead { why: Some(w), .. }) => Err(w.clone()),
            Some(_) => Err(format!("MSR {msr:#x}: no value recorded")),
            None => Err(self
                .missing_why
                .clone()
                .unwrap_or_else(|| format!("MSR {msr:#x} was not read"))),
        }
    }
}

/// What /proc/cpuinfo says for the first processor.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CpuInfo {
    /// The `flags` line (CPUID features as the kernel sees them).
    pub flags: Vec<String>,
    /// The kernel's `vmx flags` line (Linux 5.8+ on Intel), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vmx_flags: Option<Vec<String>>,
}

/// Platform identity from DMI/SMBIOS.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Dmi {
    /// `sys_vendor`: the system manufacturer.
    pub sys_vendor: Option<String>,
    /// `product_name`: the system model.
    pub product_name: Option<String>,
    /// The BIOS vendor.
    pub bios_vendor: Option<String>,
    /// The BIOS version string.
    pub bios_version: Option<String>,
    /// The BIOS release date as DMI writes it (MM/DD/YYYY).
    pub bios_date: Option<String>,
    /// Processor records (SMBIOS type 4), from dmidecode text only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub processors: Vec<DmiProcessor>,
}

/// One SMBIOS processor record.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DmiProcessor {
    /// The processor `Version` string (usually the brand string).
    pub version: Option<String>,
    /// Display family from the record's `Signature`.
    pub family: Option<u32>,
    /// Display model from the record's `Signature`.
    pub model: Option<u32>,
    /// Stepping from the record's `Signature`.
    pub stepping: Option<u32>,
    /// "Enhanced Virtualization" among the processor characteristics.
    pub enhanced_virtualization: bool,
    /// Whether the record lists characteristics at all (old SMBIOS versions don't).
    pub has_characteristics: bool,
}

/// A PCI function of class "host bridge" (0x0600).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PciDev {
    /// PCI address (`0000:00:00.0`).
    pub address: String,
    /// PCI vendor id.
    pub vendor: u16,
    /// PCI device id.
    pub device: u16,
}

/// Result of the live KVM functional check (a micro-guest run through /dev/kvm).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct KvmCheck {
    /// Whether /dev/kvm could be opened.
    pub opened: bool,
    /// KVM_GET_API_VERSION, if opened.
    pub api_version: Option<i32>,
    /// Capabilities that matter to the hvcert hypervisor: name -> present.
    pub capabilities: BTreeMap<String, bool>,
    /// Whether the micro-guest ran to completion in ring 0 and in ring 3.
    pub guest_ran: bool,
    /// KVM_CREATE_VM + memory + vCPU + first run to HLT, microseconds.
    pub vm_create_us: Option<f64>,
    /// One guest port-I/O exit to user space and back, microseconds (median of batches).
    pub exit_us: Option<f64>,
    /// Per iteration of a 2-instruction loop in guest ring 0, nanoseconds.
    pub ring0_ns: Option<f64>,
    /// Per iteration of the same loop in guest ring 3, nanoseconds.
    pub ring3_ns: Option<f64>,
    /// Why the check could not run or stopped early.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Everything the probe knows about one host before interpretation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawHost {
    /// Where the data came from (one line per input).
    pub inputs: Vec<String>,
    /// CPUID of CPU 0 (stored in `cpuid.txt` of a snapshot, not in host.json).
    #[serde(skip)]
    pub cpuid: Avail<CpuidTable>,
    /// Why CPUID is missing, when it is (host.json carries this; cpuid.txt the data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpuid_missing: Option<String>,
    /// MSRs of CPU 0 (IA32_FEATURE_CONTROL, VMX capabilities, VM_CR).
    pub msrs: Avail<MsrSet>,
    /// The first processor of /proc/cpuinfo.
    pub cpuinfo: Avail<CpuInfo>,
    /// DMI/SMBIOS identity.
    pub dmi: Avail<Dmi>,
    /// PCI host bridges (class 0x0600).
    pub pci_host_bridges: Avail<Vec<PciDev>>,
    /// Names of the ACPI tables (DMAR/IVRS announce an IOMMU).
    pub acpi_tables: Avail<Vec<String>>,
    /// Number of kernel IOMMU groups.
    pub iommu_groups: Avail<u32>,
    /// Kernel log lines about virtualization being disabled/enabled by firmware.
    pub kernel_log: Avail<Vec<String>>,
    /// The KVM functional check.
    pub kvm: Avail<KvmCheck>,
}

impl RawHost {
    /// A host about which nothing is known; each field says `why`.
    pub fn empty(why: &str) -> Self {
        RawHost {
            inputs: Vec::new(),
            cpuid: Avail::missing(why),
            cpuid_missing: None,
            msrs: Avail::missing(why),
            cpuinfo: Avail::missing(why),
            dmi: Avail::missing(why),
            pci_host_bridges: Avail::missing(why),
            acpi_tables: Avail::missing(why),
            iommu_groups: Avail::missing(why),
            kernel_log: Avail::missing(why),
            kvm: Avail::missing(why),
        }
    }

    /// Combines two inputs about the same host: what `self` knows wins, `other` fills gaps.
    pub fn combine(self, other: RawHost) -> RawHost {
        let mut inputs = self.inputs;
        inputs.extend(other.inputs);
        RawHost {
            inputs,
            cpuid: self.cpuid.or(other.cpuid),
            cpuid_missing: None,
            msrs: merge_msrs(self.msrs, other.msrs),
            cpuinfo: self.cpuinfo.or(other.cpuinfo),
            dmi: merge_dmi(self.dmi, other.dmi),
            pci_host_bridges: self.pci_host_bridges.or(other.pci_host_bridges),
            acpi_tables: self.acpi_tables.or(other.acpi_tables),
            iommu_groups: self.iommu_groups.or(other.iommu_groups),
            kernel_log: self.kernel_log.or(other.kernel_log),
            kvm: self.kvm.or(other.kvm),
        }
    }
}

fn merge_msrs(a: Avail<MsrSet>, b: Avail<MsrSet>) -> Avail<MsrSet> {
    match (a, b) {
        (Avail::Known(mut x), Avail::Known(y)) => {
            for r in y.reads {
                match x.reads.iter_mut().find(|e| e.msr == r.msr) {
                    Some(e) if e.value.is_none() && r.value.is_some() => *e = r,
                    Some(_) => {}
                    None => x.reads.push(r),
                }
            }
            x.missing_why = x.missing_why.or(y.missing_why);
            Avail::Known(x)
        }
        (a, b) => a.or(b),
    }
}

fn merge_dmi(a: Avail<Dmi>, b: Avail<Dmi>) -> Avail<Dmi> {
    match (a, b) {
        (Avail::Known(x), Avail::Known(y)) => Avail::Known(Dmi {
            sys_vendor: x.sys_vendor.or(y.sys_vendor),
            product_name: x.product_name.or(y.product_name),
            bios_vendor: x.bios_vendor.or(y.bios_vendor),
            bios_version: x.bios_version.or(y.bios_version),
            bios_date: x.bios_date.or(y.bios_date),
            processors: if x.processors.is_empty() {
                y.processors
            } else {
                x.processors
            },
        }),
        (a, b) => a.or(b),
    }
}
