//! The probe's output model (`"schema": "hvcert.probe/v1"`) and its terminal rendering.
use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// The `schema` value of a probe report.
pub const SCHEMA: &str = "hvcert.probe/v1";

/// The state of one fact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// The feature is there and usable.
    Present,
    /// The CPU does not have it (or the hypervisor below hides it).
    Absent,
    /// The CPU has it but firmware turned it off.
    DisabledInFirmware,
    /// It could not be checked; the fact's `why` says why.
    Unknown,
}

impl State {
    /// The snake_case name used in JSON and tables.
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
    /// The fact's state.
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
    /// A fact in `state`, read from `source`.
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
    /// An unknown fact, with why.
    pub fn unknown(why: impl Into<String>) -> Fact {
        Fact {
            source: None,
            why: Some(why.into()),
            ..Fact::new(State::Unknown, "")
        }
    }
    /// Sets the kind (`vmx`, `ept`, ...).
    pub fn kind(mut self, k: &str) -> Fact {
        self.kind = Some(k.to_string());
        self
    }
    /// Sets the note.
    pub fn note(mut self, n: impl Into<String>) -> Fact {
        self.note = Some(n.into());
        self
    }
}

/// Feature facts, keyed as in the JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Features {
    /// 64-bit mode (x86-64).
    pub long_mode: Fact,
    /// No-execute pages (NX / XD).
    pub nx: Fact,
    /// Hardware virtualization: VT-x (`vmx`) or AMD-V (`svm`).
    pub hw_virt: Fact,
    /// Second-level address translation: EPT or NPT.
    pub slat: Fact,
    /// Tagged guest TLB entries: VPID or AMD ASIDs.
    pub vpid: Fact,
    /// Real-mode and unpaged guest code without emulation.
    pub unrestricted_guest: Fact,
    /// A TSC that runs at a constant rate across power states.
    pub invariant_tsc: Fact,
    /// Whether the probe runs under a hypervisor (which one in `vendor`).
    pub hypervisor: Fact,
    /// An IOMMU (VT-d / AMD-Vi) for device assignment.
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
    /// The fact of a feature key (`long_mode`, `hw_virt`, ...), if the key exists.
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
    /// Every feature with its key, in JSON order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Fact)> {
        FEATURE_KEYS
            .iter()
            .filter_map(|k| self.get(k).map(|f| (*k, f)))
    }
}

/// CPU identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cpu {
    /// CPUID vendor string (`GenuineIntel`, `AuthenticAMD`).
    pub vendor: Option<String>,
    /// Display family (base + extended).
    pub family: Option<u32>,
    /// Display model (with the extended model).
    pub model: Option<u32>,
    /// Stepping.
    pub stepping: Option<u32>,
    /// Brand string (CPUID 0x80000002-4 or the DMI `Version`).
    pub brand: Option<String>,
    /// Microarchitecture / server codename from the probe's table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codename: Option<String>,
    /// Where the identity was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Why the identity is unknown.
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
    /// The snake_case name used in JSON and tables.
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
    /// Whether a guest ran.
    pub available: bool,
    /// KVM_GET_API_VERSION, if /dev/kvm opened.
    pub api_version: Option<i32>,
    /// How guests run.
    pub mode: KvmMode,
    /// Guest port-I/O exit to user space and back, µs.
    pub exit_us: Option<f64>,
    /// Guest ring-0 loop time over guest ring-3 loop time.
    pub ring0_slowdown: Option<f64>,
    /// KVM_CREATE_VM + memory + vCPU + first run to HLT, µs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm_create_us: Option<f64>,
    /// One iteration of the guest ring-0 loop, ns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring0_ns_per_op: Option<f64>,
    /// One iteration of the guest ring-3 loop, ns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring3_ns_per_op: Option<f64>,
    /// KVM capabilities that matter to hvcert: name -> present.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub capabilities: BTreeMap<String, bool>,
    /// "live", or "snapshot" when replayed from a capture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured: Option<String>,
    /// Why KVM is unavailable or not checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// Platform identity from DMI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Platform {
    /// System manufacturer.
    pub vendor: Option<String>,
    /// System model.
    pub product: Option<String>,
    /// BIOS version.
    pub bios_version: Option<String>,
    /// BIOS release date (as DMI writes it).
    pub bios_date: Option<String>,
    /// BIOS vendor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bios_vendor: Option<String>,
    /// Why the platform is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// Chipset from the PCI host bridge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chipset {
    /// Whether a host bridge was found.
    pub state: State,
    /// Host bridge PCI id, `vvvv:dddd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pci_id: Option<String>,
    /// Chipset name (from the probe's table).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Why the chipset is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// Verdict classes, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// A listed server model with a listed configuration.
    Certified,
    /// Not certified, but the model, its CPU family or its chipset is listed.
    Compatible,
    /// Nothing listed matches, or a required feature is not confirmed.
    Untested,
    /// A required feature is absent or disabled.
    Unsupported,
}

impl Class {
    /// The snake_case name used in JSON and tables.
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
    /// How much it weighs.
    pub level: Level,
    /// What was found.
    pub message: String,
    /// What to do about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remedy: Option<String>,
}

/// The verdict: class, score and the reasons behind them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Certified, compatible, untested or unsupported.
    pub class: Class,
    /// 0-100 within the class's range, lowered by warnings and blockers.
    pub score: u8,
    /// The reasons, in the order the rules ran.
    pub reasons: Vec<Reason>,
    /// The list entry that matched (server, CPU family or chipset id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched: Option<String>,
    /// Names of the supported-server lists consulted.
    #[serde(default)]
    pub lists: Vec<String>,
    /// What the class rests on that was not confirmed; empty when nothing. Part of the class
    /// as shown ([`Verdict::label`]), not only a reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub qualifiers: Vec<Qualifier>,
}

impl Verdict {
    /// The class with its qualifiers, as a report shows it: `certified`, or e.g.
    /// `certified, provisional: required features not checked`.
    pub fn label(&self) -> String {
        if self.qualifiers.is_empty() {
            return self.class.as_str().to_string();
        }
        let why: Vec<&str> = self.qualifiers.iter().map(|q| q.describe()).collect();
        format!("{}, provisional: {}", self.class.as_str(), why.join("; "))
    }

    /// The verdict in the words every rendering of a probe uses (the table, and the run
    /// report's title): the label and the score, e.g. `untested (score 44/100)`.
    pub fn headline(&self) -> String {
        format!("{} (score {}/100)", self.label(), self.score)
    }
}

/// A reservation about a verdict's class: the class holds only if what it rests on is true.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Qualifier {
    /// A required feature could not be checked (e.g. only dmidecode was given: long mode and
    /// NX are unknown); the class is what it would be if it were present.
    UncheckedRequired,
    /// The inputs disagree about the CPU (e.g. CPUID and DMI from different machines).
    MismatchedInputs,
}

impl Qualifier {
    /// The snake_case name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Qualifier::UncheckedRequired => "unchecked_required",
            Qualifier::MismatchedInputs => "mismatched_inputs",
        }
    }

    /// A few words for the class label.
    pub fn describe(self) -> &'static str {
        match self {
            Qualifier::UncheckedRequired => "required features not checked",
            Qualifier::MismatchedInputs => "the inputs describe different CPUs",
        }
    }
}

/// Where the facts came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// `live`, `snapshot`, `import`, or a `+`-joined combination.
    pub kind: String,
    /// One line per input (e.g. `AIDA64/EVEREST CPUID dump x.txt`).
    pub inputs: Vec<String>,
}

/// The probe's report (`hvcert probe --json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeReport {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// Where the facts came from.
    pub source: SourceInfo,
    /// CPU identity.
    pub cpu: Cpu,
    /// Feature facts.
    pub features: Features,
    /// The KVM functional check.
    pub kvm: KvmReport,
    /// Platform identity.
    pub platform: Platform,
    /// Chipset identity.
    pub chipset: Chipset,
    /// The verdict against the lists.
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
        let kvm_detail = if k.measured.as_deref() == Some("snapshot") {
            format!("{kvm_detail} (replayed from the snapshot, not measured now)")
        } else {
            kvm_detail
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
            "verdict: {}{}",
            v.headline(),
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
