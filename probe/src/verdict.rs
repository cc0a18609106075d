//! The verdict: class, 0-100 score and reasons, from derived facts and supported lists.
//!
//! [`decide`] runs `RULES` in order over one context (`Ctx`); each rule adds reasons and may raise
//! or lower the class. The score follows from the class and the reasons.
use crate::facts::Derived;
use crate::hcl::{
    cmp_versions, parse_dmi_date, parse_iso_date, parse_pci_id, requirements, Hcl, Server,
};
use crate::report::{Class, Fact, KvmMode, Level, Qualifier, Reason, State, Verdict};

fn remedy(key: &str, state: State, kind: Option<&str>) -> Option<String> {
    let vtx = matches!(
        kind,
        Some("vmx") | Some("ept") | Some("vpid") | Some("unrestricted_guest")
    );
    let name = if vtx { "VT-x" } else { "AMD-V (SVM)" };
    Some(match (key, state) {
        ("hw_virt", State::DisabledInFirmware) => {
            format!("enable {name} (\"Virtualization Technology\") in the firmware setup, then power-cycle the server")
        }
        ("hw_virt", _) => "use a CPU with VT-x or AMD-V; in a VM, enable nested virtualization in the outer hypervisor".into(),
        ("long_mode", _) => "use a 64-bit (x86-64) CPU: the hypervisor is 64-bit only".into(),
        ("nx", State::DisabledInFirmware) | ("nx", _) => {
            "enable \"Execute Disable Bit\" / \"NX\" in the firmware setup; if absent, the CPU is too old".into()
        }
        ("slat", _) => "EPT/NPT arrived with Nehalem (2008) and Barcelona (2007): use a newer CPU for guest memory performance".into(),
        ("vpid", _) => "VPID avoids TLB flushes on every exit: use Nehalem or later".into(),
        ("unrestricted_guest", _) => "guests' real-mode code is emulated without it: use Westmere or later".into(),
        ("invariant_tsc", _) => "guest clocks may drift: use a CPU with invariant TSC (Nehalem / Barcelona or later)".into(),
        ("iommu", State::Absent) => "enable VT-d / AMD-Vi (IOMMU) in the firmware setup to pass devices to guests".into(),
        ("iommu", _) => "run the probe on the live host (as root) to read the ACPI tables".into(),
        (_, State::Unknown) => "run the probe live as root (modprobe msr) or import a dump that has it".into(),
        _ => return None,
    })
}

/// "hw_virt (vmx)": a feature key with the kind of the fact, for messages.
fn label(key: &str, f: &Fact) -> String {
    match &f.kind {
        Some(k) => format!("{key} ({k})"),
        None => key.to_string(),
    }
}

/// What the rules share while deciding: the inputs, the reasons so far, and the state the
/// later rules read (class, match, flags set by the feature rules).
struct Ctx<'a> {
    d: &'a Derived,
    lists: &'a [Hcl],
    reasons: Vec<Reason>,
    /// A required feature is absent or disabled in firmware.
    blocked: bool,
    /// A required feature could not be checked.
    required_unknown: bool,
    /// VT-x/AMD-V is absent from CPUID yet KVM runs guests (emulated ring 0).
    emulated_virt: bool,
    /// Recommended features whose state is unknown (each lowers the score).
    unknown_recommended: u32,
    class: Class,
    matched: Option<String>,
    qualifiers: Vec<Qualifier>,
    /// The listed server the platform matches, with its list.
    server: Option<(&'a Hcl, &'a Server)>,
}

impl<'a> Ctx<'a> {
    fn new(d: &'a Derived, lists: &'a [Hcl]) -> Self {
        let (vendor, product) = platform_names(d);
        let server = lists
            .iter()
            .flat_map(|l| l.server.iter().map(move |s| (l, s)))
            .find(|(_, s)| s.matches(vendor, product));
        Ctx {
            d,
            lists,
            reasons: Vec::new(),
            blocked: false,
            required_unknown: false,
            emulated_virt: false,
            unknown_recommended: 0,
            class: Class::Untested,
            matched: None,
            qualifiers: Vec::new(),
            server,
        }
    }

    fn push(&mut self, fact: &str, level: Level, message: String, remedy: Option<String>) {
        self.reasons.push(Reason {
            fact: fact.to_string(),
            level,
            message,
            remedy,
        });
    }
}

/// DMI system vendor and product name, empty when unknown.
fn platform_names(d: &Derived) -> (&str, &str) {
    (
        d.platform.vendor.as_deref().unwrap_or(""),
        d.platform.product.as_deref().unwrap_or(""),
    )
}

/// One verdict rule.
type Rule = fn(&mut Ctx);

/// The rules, applied in this order (the order of the reasons in a report).
/// The remedy when KVM cannot run a guest (the probe's KVM finding, and `hvcert certify`'s
/// refusal to run without KVM).
pub const KVM_UNAVAILABLE_REMEDY: &str =
    "load kvm_intel or kvm_amd, and give the user access to /dev/kvm (group kvm)";

const RULES: &[Rule] = &[
    required_features,
    recommended_features,
    kvm_mode,
    running_under_hypervisor,
    listed_server,
    listed_server_cpu,
    listed_server_min_bios,
    listed_server_min_bios_date,
    listed_server_restrictions_and_notes,
    unlisted_platform,
    unlisted_cpu_family_or_chipset,
    emulated_virt_is_at_best_untested,
    blockers_make_unsupported,
    sample_lists,
    provisional_class,
];

/// Decides the verdict. `lists` must not be empty for a meaningful class.
pub fn decide(d: &Derived, lists: &[Hcl]) -> Verdict {
    let mut cx = Ctx::new(d, lists);
    for rule in RULES {
        rule(&mut cx);
    }
    Verdict {
        score: score(&cx),
        class: cx.class,
        reasons: cx.reasons,
        matched: cx.matched,
        lists: lists.iter().map(|l| l.list.name.clone()).collect(),
        qualifiers: cx.qualifiers,
    }
}

/// The class's score range, lowered by warnings, blockers and unknown recommended features.
fn score(cx: &Ctx) -> u8 {
    let warnings = cx
        .reasons
        .iter()
        .filter(|r| r.level == Level::Warning)
        .count() as i32;
    let (base, lo, hi) = match cx.class {
        Class::Certified => (100, 85, 100),
        Class::Compatible => (84, 60, 84),
        Class::Untested => (59, 30, 59),
        Class::Unsupported => (29, 0, 29),
    };
    let blockers = cx
        .reasons
        .iter()
        .filter(|r| r.level == Level::Blocker)
        .count() as i32;
    let score = base - 5 * warnings - 10 * blockers - 2 * (cx.unknown_recommended as i32);
    score.clamp(lo, hi) as u8
}

/// Required features: absent/disabled blocks, unknown warns, absent VT-x under a working KVM
/// means emulation.
fn required_features(cx: &mut Ctx) {
    let d = cx.d;
    let kvm_runs = matches!(d.kvm.mode, KvmMode::Hardware | KvmMode::NestedSoftware);
    let (required, _) = requirements(cx.lists);
    for key in &required {
        let Some(f) = d.features.get(key) else {
            continue;
        };
        let label = label(key, f);
        match f.state {
            State::Present => {}
            State::Absent if key == "hw_virt" && kvm_runs => {
                cx.emulated_virt = true;
                cx.push(
                    key,
                    Level::Warning,
                    format!(
                        "required {label} is absent from CPUID, yet KVM runs guests here ({}): ring-0 guest code is emulated, fine for tests, not certifiable",
                        d.kvm.mode.as_str()
                    ),
                    remedy(key, f.state, f.kind.as_deref()),
                );
            }
            State::Absent | State::DisabledInFirmware => {
                cx.blocked = true;
                cx.push(
                    key,
                    Level::Blocker,
                    format!(
                        "required {label} is {} ({})",
                        f.state.as_str(),
                        f.source.as_deref().unwrap_or("")
                    ),
                    remedy(key, f.state, f.kind.as_deref()),
                );
            }
            State::Unknown => {
                cx.required_unknown = true;
                cx.push(
                    key,
                    Level::Warning,
                    format!(
                        "required {label} could not be checked: {}",
                        f.why.as_deref().unwrap_or("")
                    ),
                    remedy(key, State::Unknown, f.kind.as_deref()),
                );
            }
        }
        if f.state == State::Present {
            if let Some(n) = &f.note {
                if n.starts_with("firmware enable not verified") {
                    cx.push(
                        key,
                        Level::Info,
                        n.clone(),
                        Some("on the live server: modprobe msr and run the probe as root".into()),
                    );
                }
            }
        }
    }
}

/// Recommended features: absent/disabled warns, unknown is noted and lowers the score.
fn recommended_features(cx: &mut Ctx) {
    let d = cx.d;
    let (_, recommended) = requirements(cx.lists);
    let hw_virt_missing = d.features.hw_virt.state != State::Present;
    for key in &recommended {
        let Some(f) = d.features.get(key) else {
            continue;
        };
        // Already explained by hw_virt: these exist only as part of VT-x/AMD-V.
        if hw_virt_missing && f.source.as_deref().is_some_and(|s| s.starts_with("needs ")) {
            continue;
        }
        let label = label(key, f);
        match f.state {
            State::Present => {
                if key == "iommu" && f.kernel_enabled == Some(false) {
                    cx.push(
                        key,
                        Level::Info,
                        "the IOMMU is in the ACPI tables but the kernel did not enable it".into(),
                        Some("boot with intel_iommu=on (Intel) or amd_iommu=on (AMD)".into()),
                    );
                }
            }
            State::Absent | State::DisabledInFirmware => {
                cx.push(
                    key,
                    Level::Warning,
                    format!(
                        "recommended {label} is {} ({})",
                        f.state.as_str(),
                        f.source.as_deref().unwrap_or("")
                    ),
                    remedy(key, f.state, f.kind.as_deref()),
                );
            }
            State::Unknown => {
                cx.unknown_recommended += 1;
                cx.push(
                    key,
                    Level::Info,
                    format!(
                        "recommended {label} is unknown: {}",
                        f.why.as_deref().unwrap_or("")
                    ),
                    remedy(key, State::Unknown, f.kind.as_deref()),
                );
            }
        }
    }
}

/// What the KVM functional check found.
fn kvm_mode(cx: &mut Ctx) {
    let d = cx.d;
    match d.kvm.mode {
        KvmMode::NestedSoftware => cx.push(
            "kvm",
            Level::Warning,
            format!(
                "KVM works but is nested and software-assisted: guest ring 0 runs {}x slower than ring 3 (exit {} us)",
                d.kvm.ring0_slowdown.map_or("?".into(), |r| format!("{r:.0}")),
                d.kvm.exit_us.map_or("?".into(), |e| e.to_string())
            ),
            Some("run on bare metal, or expose VT-x/AMD-V to this VM (nested virtualization)".into()),
        ),
        KvmMode::Unavailable => cx.push(
            "kvm",
            Level::Warning,
            format!("KVM cannot run a guest: {}", d.kvm.why.as_deref().unwrap_or("unknown error")),
            Some(KVM_UNAVAILABLE_REMEDY.into()),
        ),
        KvmMode::Hardware => cx.push(
            "kvm",
            Level::Info,
            format!(
                "KVM runs guests with hardware assistance (ring-0 slowdown {}x, exit {} us)",
                d.kvm.ring0_slowdown.map_or("?".into(), |r| r.to_string()),
                d.kvm.exit_us.map_or("?".into(), |e| e.to_string())
            ),
            None,
        ),
        KvmMode::NotChecked => {}
    }
}

/// The probe itself runs in a VM.
fn running_under_hypervisor(cx: &mut Ctx) {
    let h = &cx.d.features.hypervisor;
    if h.state == State::Present {
        let msg = format!(
            "running under a hypervisor ({})",
            h.vendor.as_deref().unwrap_or("unknown")
        );
        cx.push("hypervisor", Level::Info, msg, None);
    }
}

/// A listed server model: `certified` to begin with.
fn listed_server(cx: &mut Ctx) {
    let Some((list, s)) = cx.server else {
        return;
    };
    let (vendor, product) = platform_names(cx.d);
    cx.matched = Some(format!("server {} ({})", s.id, list.list.name));
    cx.class = Class::Certified;
    let releases = if s.certified_releases.is_empty() {
        list.list.releases.clone()
    } else {
        s.certified_releases.clone()
    };
    let msg = format!(
        "{} {} is a listed server (certified for {})",
        vendor,
        product,
        releases.join(", ")
    );
    cx.push("platform", Level::Info, msg, None);
}

/// A listed server certified only with some CPU families: another CPU is `compatible`.
fn listed_server_cpu(cx: &mut Ctx) {
    let Some((list, s)) = cx.server else {
        return;
    };
    if s.cpu_families.is_empty() {
        return;
    }
    let d = cx.d;
    let Some((f, m)) = d.cpu.family.zip(d.cpu.model) else {
        return;
    };
    let cpu_vendor = d.cpu.vendor.as_deref().unwrap_or("");
    let fams: Vec<_> = list
        .cpu_family
        .iter()
        .filter(|c| s.cpu_families.iter().any(|id| id.get_ref() == &c.id))
        .collect();
    if !fams.iter().any(|c| c.matches(cpu_vendor, f, m)) {
        cx.class = Class::Compatible;
        cx.push(
            "cpu",
            Level::Warning,
            format!(
                "this {} is certified only with {}; the CPU is family {f:#x} model {m:#x}",
                s.id,
                fams.iter()
                    .map(|c| c.codename.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Some("use a certified CPU option for this model".into()),
        );
    }
}

/// A listed server's minimum BIOS version: older is `compatible`.
fn listed_server_min_bios(cx: &mut Ctx) {
    let Some(min) = cx.server.and_then(|(_, s)| s.min_bios.as_ref()) else {
        return;
    };
    match cx.d.platform.bios_version.as_deref() {
        Some(have) => match cmp_versions(have, min) {
            Some(std::cmp::Ordering::Less) => {
                cx.class = cx.class.max(Class::Compatible);
                cx.push(
                    "bios",
                    Level::Warning,
                    format!("BIOS {have} is older than the certified minimum {min}"),
                    Some(format!("update the BIOS to {min} or later")),
                );
            }
            Some(_) => {}
            None => cx.push(
                "bios",
                Level::Info,
                format!("BIOS version {have:?} cannot be compared with the minimum {min:?}"),
                None,
            ),
        },
        None => cx.push(
            "bios",
            Level::Info,
            format!("BIOS version unknown; the certified minimum is {min}"),
            None,
        ),
    }
}

/// A listed server's minimum BIOS date: older is `compatible`.
fn listed_server_min_bios_date(cx: &mut Ctx) {
    let Some(min) = cx.server.and_then(|(_, s)| s.min_bios_date.as_ref()) else {
        return;
    };
    let have = cx.d.platform.bios_date.as_deref().and_then(parse_dmi_date);
    let want = parse_iso_date(min.get_ref());
    if let (Some(h), Some(w)) = (have, want) {
        if h < w {
            cx.class = cx.class.max(Class::Compatible);
            cx.push(
                "bios",
                Level::Warning,
                format!(
                    "BIOS dated {} is older than the certified minimum {}",
                    cx.d.platform.bios_date.as_deref().unwrap_or(""),
                    min.get_ref()
                ),
                Some(format!(
                    "update the BIOS to a release from {} or later",
                    min.get_ref()
                )),
            );
        }
    }
}

/// A listed server's restrictions and notes, as information.
fn listed_server_restrictions_and_notes(cx: &mut Ctx) {
    let Some((_, s)) = cx.server else {
        return;
    };
    for r in &s.restrictions {
        cx.push("platform", Level::Info, format!("restriction: {r}"), None);
    }
    for n in &s.notes {
        cx.push("platform", Level::Info, n.clone(), None);
    }
}

/// No listed server matches: `untested`, saying whether the platform was known at all.
fn unlisted_platform(cx: &mut Ctx) {
    if cx.server.is_some() {
        return;
    }
    let d = cx.d;
    let (vendor, product) = platform_names(d);
    if d.platform.vendor.is_some() || d.platform.product.is_some() {
        cx.push(
            "platform",
            Level::Info,
            format!("{vendor} {product} is not a listed server"),
            None,
        );
    } else {
        cx.push(
            "platform",
            Level::Info,
            format!(
                "platform unknown ({}): cannot match a listed server",
                d.platform.why.as_deref().unwrap_or("no DMI")
            ),
            Some("import the server's dmidecode output with --dmidecode FILE".into()),
        );
    }
    cx.class = Class::Untested;
}

/// An unlisted platform whose CPU family or chipset is listed: `compatible` when every
/// required feature is confirmed present.
fn unlisted_cpu_family_or_chipset(cx: &mut Ctx) {
    if cx.server.is_some() {
        return;
    }
    let d = cx.d;
    let lists = cx.lists;
    let cpu_vendor = d.cpu.vendor.as_deref().unwrap_or("");
    let fam = d.cpu.family.zip(d.cpu.model).and_then(|(f, m)| {
        lists
            .iter()
            .flat_map(|l| l.cpu_family.iter())
            .find(|c| c.matches(cpu_vendor, f, m))
    });
    let chip = d.chipset.pci_id.as_deref().and_then(parse_pci_id);
    let chipset = chip.and_then(|(v, dv)| {
        lists.iter().flat_map(|l| l.chipset.iter()).find(|c| {
            c.pci_ids
                .iter()
                .any(|id| parse_pci_id(id.get_ref()) == Some((v, dv)))
        })
    });
    if let Some(c) = fam {
        cx.matched = Some(format!("cpu_family {}", c.id));
        cx.push(
            "cpu",
            Level::Info,
            format!("CPU family {} is used by listed servers", c.codename),
            None,
        );
        for n in &c.notes {
            cx.push("cpu", Level::Info, n.clone(), None);
        }
    }
    if let Some(c) = chipset {
        if cx.matched.is_none() {
            cx.matched = Some(format!("chipset {}", c.id));
        }
        cx.push(
            "chipset",
            Level::Info,
            format!("chipset {} is used by listed servers", c.name),
            None,
        );
    }
    if fam.is_some() || chipset.is_some() {
        if cx.required_unknown || cx.emulated_virt {
            cx.push(
                "hcl",
                Level::Info,
                "not `compatible`: a required feature is not confirmed present".into(),
                None,
            );
        } else {
            cx.class = Class::Compatible;
            cx.push(
                "hcl",
                Level::Info,
                "not a listed model, but the CPU family or chipset is: expected to work, without guarantee".into(),
                None,
            );
        }
    } else if d.cpu.family.is_some() {
        cx.push(
            "cpu",
            Level::Info,
            format!(
                "CPU {} is not in any list",
                d.cpu
                    .codename
                    .as_deref()
                    .or(d.cpu.brand.as_deref())
                    .unwrap_or("(unnamed)")
            ),
            None,
        );
    }
}

/// Emulated VT-x/AMD-V is never better than `untested`.
fn emulated_virt_is_at_best_untested(cx: &mut Ctx) {
    if cx.emulated_virt {
        cx.class = cx.class.max(Class::Untested);
    }
}

/// A missing or disabled required feature makes the host `unsupported`.
fn blockers_make_unsupported(cx: &mut Ctx) {
    if cx.blocked {
        cx.class = Class::Unsupported;
    }
}

/// Says when a list is a sample, not a real certification list.
fn sample_lists(cx: &mut Ctx) {
    for l in cx.lists {
        if l.list.sample {
            cx.push(
                "hcl",
                Level::Info,
                format!("list {:?} is a SAMPLE built from public hardware dumps, not a real certification list", l.list.name),
                None,
            );
        }
    }
}

/// Qualifies a class that rests on what was not confirmed: unchecked required features
/// (unless already `unsupported`, which needs nothing more), inputs that disagree.
fn provisional_class(cx: &mut Ctx) {
    if cx.required_unknown && cx.class != Class::Unsupported {
        cx.qualifiers.push(Qualifier::UncheckedRequired);
    }
    if cx.d.inputs_disagree {
        cx.qualifiers.push(Qualifier::MismatchedInputs);
    }
}
