//! The probe's output model (`"schema": "hvcert.probe/v1"`) and its terminal rendering.
use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

pub const SCHEMA: &str = "hvcert.probe/v1";

/// The state of one fact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Present,
    Absent,
    DisabledInFirmware,
    Unknown,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Present => "present",
            State::Absent => "absent",
            State::DisabledInFirmware => "disabled_in_firmware",
            State::Unknown => "unknown",
        }
    }
}

/// One host fact: its state and where it was read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fact {
    pub state: State,
    /// `vmx`|`svm` for hw_virt, `ept`|`npt` for slat, `vpid`|`asid` for vpid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Hypervisor vendor (for `hypervisor`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    /// ACPI table that announces the IOMMU (DMAR, IVRS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acpi_table: Option<String>,
    /// Whether the kernel enabled the IOMMU (it made IOMMU groups).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_enabled: Option<bool>,
    /// Where the state was read (e.g. `CPUID 0x80000001 EDX[29]`, `MSR 0x3a`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Why the state is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// Anything else worth knowing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Fact {
    pub fn new(state: State, source: impl Into<String>) -> Fact {
        Fact {
            state,
            kind: None,
            vendor: None,
            acpi_table: None,
            kernel_enabled: None,
            source: Some(source.into()),
            why: None,
            note: None,
        }
    }
    pub fn unknown(why: impl Into<String>) -> Fact {
        Fact {
            source: None,
            why: Some(why.into()),
            ..Fact::new(State::Unknown, "")
        }
    }
    pub fn kind(mut self, k: &str) -> Fact {
        self.kind = Some(k.to_string());
        self
    }
    pub fn note(mut self, n: impl Into<String>) -> Fact {
        self.note = Some(n.into());
        self
    }
}

/// Feature facts, keyed as in the JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Features {
    pub long_mode: Fact,
    pub nx: Fact,
    pub hw_virt: Fact,
    pub slat: Fact,
    pub vpid: Fact,
    pub unrestricted_guest: Fact,
    pub invariant_tsc: Fact,
    pub hypervisor: Fact,
    pub iommu: Fact,
}

/// Keys of [`Features`], in report order.
pub const FEATURE_KEYS: &[&str] = &[
    "long_mode",
    "nx",
    "hw_virt",
    "slat",
    "vpid",
    "unrestricted_guest",
    "invariant_tsc",
    "hypervisor",
    "iommu",
];

impl Features {
    pub fn get(&self, key: &str) -> Option<&Fact> {
        Some(match key {
            "long_mode" => &self.long_mode,
            "nx" => &self.nx,
            "hw_virt" => &self.hw_virt,
            "slat" => &self.slat,
            "vpid" => &self.vpid,
            "unrestricted_guest" => &self.unrestricted_guest,
            "invariant_tsc" => &self.invariant_tsc,
            "hypervisor" => &self.hypervisor,
            "iommu" => &self.iommu,
            _ => return None,
        })
    }
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Fact)> {
        FEATURE_KEYS
            .iter()
            .filter_map(|k| self.get(k).map(|f| (*k, f)))
    }
}

/// CPU identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cpu {
    pub vendor: Option<String>,
    pub family: Option<u32>,
    pub model: Option<u32>,
    pub stepping: Option<u32>,
    pub brand: Option<String>,
    /// Microarchitecture / server codename from the probe's table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codename: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// How KVM runs guests here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KvmMode {
    /// Guest ring 0 runs at native speed (VT-x/AMD-V).
    Hardware,
    /// Guests run, but guest ring 0 is emulated (nested, software-assisted).
    NestedSoftware,
    /// /dev/kvm cannot be opened or a guest cannot run.
    Unavailable,
    /// The functional check was not run (imported dumps, snapshots without it).
    NotChecked,
}

impl KvmMode {
    pub fn as_str(self) -> &'static str {
        match self {
            KvmMode::Hardware => "hardware",
            KvmMode::NestedSoftware => "nested_software",
            KvmMode::Unavailable => "unavailable",
            KvmMode::NotChecked => "not_checked",
        }
    }
}

/// Result of the KVM functional check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KvmReport {
    pub available: bool,
    pub api_version: Option<i32>,
    pub mode: KvmMode,
    /// Guest port-I/O exit to user space and back, µs.
    pub exit_us: Option<f64>,
    /// Guest ring-0 loop time over guest ring-3 loop time.
    pub ring0_slowdown: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm_create_us: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring0_ns_per_op: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring3_ns_per_op: Option<f64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub capabilities: BTreeMap<String, bool>,
    /// "live", or "snapshot" when replayed from a capture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// Platform identity from DMI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Platform {
    pub vendor: Option<String>,
    pub product: Option<String>,
    pub bios_version: Option<String>,
    pub bios_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bios_vendor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// Chipset from the PCI host bridge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chipset {
    pub state: State,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pci_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// Verdict classes, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    Certified,
    Compatible,
    Untested,
    Unsupported,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Certified => "certified",
            Class::Compatible => "compatible",
            Class::Untested => "untested",
            Class::Unsupported => "unsupported",
        }
    }
}

/// How much a reason weighs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Decides `unsupported`.
    Blocker,
    /// Lowers the score.
    Warning,
    /// Explains the class.
    Info,
}

/// One reason behind the verdict, tied to the fact that caused it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    /// The fact: a feature key, or `platform`, `cpu`, `chipset`, `bios`, `kvm`, `hcl`.
    pub fact: String,
    pub level: Level,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remedy: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub class: Class,
    pub score: u8,
    pub reasons: Vec<Reason>,
    /// The list entry that matched (server, CPU family or chipset id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched: Option<String>,
    /// Names of the supported-server lists consulted.
    #[serde(default)]
    pub lists: Vec<String>,
}

/// Where the facts came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// `live`, `snapshot`, `import`, or a `+`-joined combination.
    pub kind: String,
    pub inputs: Vec<String>,
}

/// The probe's report (`hvcert probe --json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeReport {
    pub schema: String,
    pub source: SourceInfo,
    pub cpu: Cpu,
    pub features: Features,
    pub kvm: KvmReport,
    pub platform: Platform,
    pub chipset: Chipset,
    pub verdict: Verdict,
    /// Observations that are not features (e.g. inputs that disagree).
    #[serde(default)]
    pub notes: Vec<String>,
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or_else(|| "?".to_string(), |x| x.to_string())
}

impl ProbeReport {
    /// The terminal table (the default output).
    pub fn to_table(&self) -> String {
        let mut s = String::new();
        let c = &self.cpu;
        let _ = writeln!(
            s,
            "hvcert probe ({}: {})",
            self.source.kind,
            self.source.inputs.join(", ")
        );
        let _ = writeln!(s);
        let cpu_line = format!(
            "{} family {} model {} stepping {}{}",
            opt(&c.vendor),
            c.family.map_or("?".into(), |f| format!("{f:#x}")),
            c.model.map_or("?".into(), |m| format!("{m:#x}")),
            opt(&c.stepping),
            c.codename
                .as_ref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        );
        let p = &self.platform;
        let platform = match (&p.vendor, &p.product) {
            (None, None) => format!("unknown ({})", opt(&p.why)),
            _ => format!(
                "{} {}, BIOS {} ({})",
                opt(&p.vendor),
                opt(&p.product),
                opt(&p.bios_version),
                opt(&p.bios_date)
            ),
        };
        let ch = &self.chipset;
        let chipset = match ch.state {
            State::Present => format!("{} {}", opt(&ch.pci_id), opt(&ch.name)),
            st => format!("{} ({})", st.as_str(), opt(&ch.why)),
        };
        let cpu_line = match &c.brand {
            Some(b) => format!("{b}; {cpu_line}"),
            None => cpu_line,
        };
        let mut rows: Vec<(String, String, String)> = vec![
            ("cpu".into(), String::new(), cpu_line),
            ("platform".into(), String::new(), platform),
            ("chipset".into(), String::new(), chipset),
        ];
        for (k, f) in self.features.iter() {
            let mut state = f.state.as_str().to_string();
            if let Some(kind) = &f.kind {
                if f.state == State::Present {
                    state = format!("{state} ({kind})");
                }
            }
            if let Some(v) = &f.vendor {
                state = format!("{state} ({v})");
            }
            let detail = f
                .why
                .clone()
                .or_else(|| {
                    f.source.clone().map(|src| match &f.note {
                        Some(n) => format!("{src}; {n}"),
                        None => src,
                    })
                })
                .unwrap_or_default();
            rows.push((k.to_string(), state, detail));
        }
        let k = &self.kvm;
        let kvm_detail = match k.mode {
            KvmMode::Hardware | KvmMode::NestedSoftware => format!(
                "API {}, exit {} us, ring 0 {}x slower than ring 3",
                opt(&k.api_version),
                opt(&k.exit_us),
                opt(&k.ring0_slowdown)
            ),
            _ => opt(&k.why),
        };
        rows.push(("kvm".into(), k.mode.as_str().into(), kvm_detail));
        let w0 = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
        let w1 = rows.iter().map(|r| r.1.len()).max().unwrap_or(0).min(40);
        let _ = writeln!(s, "{:<w0$}  {:<w1$}  DETAIL", "FACT", "STATE");
        for (a, b, c) in &rows {
            let _ = writeln!(s, "{a:<w0$}  {b:<w1$}  {c}");
        }
        let v = &self.verdict;
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "verdict: {} (score {}/100){}",
            v.class.as_str(),
            v.score,
            v.matched
                .as_ref()
                .map(|m| format!(", matched {m}"))
                .unwrap_or_default()
        );
        for r in &v.reasons {
            let lvl = match r.level {
                Level::Blocker => "BLOCKER",
                Level::Warning => "warning",
                Level::Info => "info",
            };
            let _ = writeln!(s, "  [{lvl}] {}: {}", r.fact, r.message);
            if let Some(rem) = &r.remedy {
                let _ = writeln!(s, "      remedy: {rem}");
            }
        }
        for n in &self.notes {
            let _ = writeln!(s, "note: {n}");
        }
        s
    }
}
