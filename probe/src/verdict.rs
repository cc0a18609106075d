//! The verdict: class, 0-100 score and reasons, from derived facts and supported lists.
use crate::facts::Derived;
use crate::hcl::{cmp_versions, parse_dmi_date, parse_iso_date, parse_pci_id, requirements, Hcl};
use crate::report::{Class, Fact, KvmMode, Level, Reason, State, Verdict};

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

/// Decides the verdict. `lists` must not be empty for a meaningful class.
pub fn decide(d: &Derived, lists: &[Hcl]) -> Verdict {
    let mut reasons: Vec<Reason> = Vec::new();
    let mut push = |fact: &str, level: Level, message: String, remedy: Option<String>| {
        reasons.push(Reason {
            fact: fact.to_string(),
            level,
            message,
            remedy,
        })
    };
    let kvm_runs = matches!(d.kvm.mode, KvmMode::Hardware | KvmMode::NestedSoftware);

    let (required, recommended) = requirements(lists);

    let mut blocked = false;
    let mut required_unknown = false;
    let mut emulated_virt = false;
    for key in &required {
        let Some(f) = d.features.get(key) else {
            continue;
        };
        let label = label(key, f);
        match f.state {
            State::Present => {}
            State::Absent if key == "hw_virt" && kvm_runs => {
                emulated_virt = true;
                push(
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
                blocked = true;
                push(
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
                required_unknown = true;
                push(
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
                    push(
                        key,
                        Level::Info,
                        n.clone(),
                        Some("on the live server: modprobe msr and run the probe as root".into()),
                    );
                }
            }
        }
    }
    let mut unknown_recommended = 0u32;
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
                    push(
                        key,
                        Level::Info,
                        "the IOMMU is in the ACPI tables but the kernel did not enable it".into(),
                        Some("boot with intel_iommu=on (Intel) or amd_iommu=on (AMD)".into()),
                    );
                }
            }
            State::Absent | State::DisabledInFirmware => {
                push(
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
                unknown_recommended += 1;
                push(
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

    match d.kvm.mode {
        KvmMode::NestedSoftware => push(
            "kvm",
            Level::Warning,
            format!(
                "KVM works but is nested and software-assisted: guest ring 0 runs {}x slower than ring 3 (exit {} us)",
                d.kvm.ring0_slowdown.map_or("?".into(), |r| format!("{r:.0}")),
                d.kvm.exit_us.map_or("?".into(), |e| e.to_string())
            ),
            Some("run on bare metal, or expose VT-x/AMD-V to this VM (nested virtualization)".into()),
        ),
        KvmMode::Unavailable => push(
            "kvm",
            Level::Warning,
            format!("KVM cannot run a guest: {}", d.kvm.why.as_deref().unwrap_or("unknown error")),
            Some("load kvm_intel or kvm_amd, and give the user access to /dev/kvm (group kvm)".into()),
        ),
        KvmMode::Hardware => push(
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
    if d.features.hypervisor.state == State::Present {
        push(
            "hypervisor",
            Level::Info,
            format!(
                "running under a hypervisor ({})",
                d.features.hypervisor.vendor.as_deref().unwrap_or("unknown")
            ),
            None,
        );
    }

    // Matching against the lists.
    let vendor = d.platform.vendor.as_deref().unwrap_or("");
    let product = d.platform.product.as_deref().unwrap_or("");
    let cpu_vendor = d.cpu.vendor.as_deref().unwrap_or("");
    let cpu_fm = d.cpu.family.zip(d.cpu.model);
    let chip = d.chipset.pci_id.as_deref().and_then(parse_pci_id);

    let mut class;
    let mut matched = None;
    let server = lists
        .iter()
        .flat_map(|l| l.server.iter().map(move |s| (l, s)))
        .find(|(_, s)| s.matches(vendor, product));
    if let Some((list, s)) = server {
        matched = Some(format!("server {} ({})", s.id, list.list.name));
        class = Class::Certified;
        let releases = if s.certified_releases.is_empty() {
            list.list.releases.clone()
        } else {
            s.certified_releases.clone()
        };
        push(
            "platform",
            Level::Info,
            format!(
                "{} {} is a listed server (certified for {})",
                vendor,
                product,
                releases.join(", ")
            ),
            None,
        );
        if !s.cpu_families.is_empty() {
            if let Some((f, m)) = cpu_fm {
                let fams: Vec<_> = list
                    .cpu_family
                    .iter()
                    .filter(|c| s.cpu_families.iter().any(|id| id.get_ref() == &c.id))
                    .collect();
                if !fams.iter().any(|c| c.matches(cpu_vendor, f, m)) {
                    class = Class::Compatible;
                    push(
                        "cpu",
                        Level::Warning,
                        format!(
                            "this {} is certified only with {}; the CPU is family {f:#x} model {m:#x}",
                            s.id,
                            fams.iter().map(|c| c.codename.as_str()).collect::<Vec<_>>().join(", ")
                        ),
                        Some("use a certified CPU option for this model".into()),
                    );
                }
            }
        }
        if let Some(min) = &s.min_bios {
            match d.platform.bios_version.as_deref() {
                Some(have) => match cmp_versions(have, min) {
                    Some(std::cmp::Ordering::Less) => {
                        class = class.max(Class::Compatible);
                        push(
                            "bios",
                            Level::Warning,
                            format!("BIOS {have} is older than the certified minimum {min}"),
                            Some(format!("update the BIOS to {min} or later")),
                        );
                    }
                    Some(_) => {}
                    None => push(
                        "bios",
                        Level::Info,
                        format!(
                            "BIOS version {have:?} cannot be compared with the minimum {min:?}"
                        ),
                        None,
                    ),
                },
                None => push(
                    "bios",
                    Level::Info,
                    format!("BIOS version unknown; the certified minimum is {min}"),
                    None,
                ),
            }
        }
        if let Some(min) = &s.min_bios_date {
            let have = d.platform.bios_date.as_deref().and_then(parse_dmi_date);
            let want = parse_iso_date(min.get_ref());
            if let (Some(h), Some(w)) = (have, want) {
                if h < w {
                    class = class.max(Class::Compatible);
                    push(
                        "bios",
                        Level::Warning,
                        format!(
                            "BIOS dated {} is older than the certified minimum {}",
                            d.platform.bios_date.as_deref().unwrap_or(""),
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
        for r in &s.restrictions {
            push("platform", Level::Info, format!("restriction: {r}"), None);
        }
        for n in &s.notes {
            push("platform", Level::Info, n.clone(), None);
        }
    } else {
        let fam = cpu_fm.and_then(|(f, m)| {
            lists
                .iter()
                .flat_map(|l| l.cpu_family.iter())
                .find(|c| c.matches(cpu_vendor, f, m))
        });
        let chipset = chip.and_then(|(v, dv)| {
            lists.iter().flat_map(|l| l.chipset.iter()).find(|c| {
                c.pci_ids
                    .iter()
                    .any(|id| parse_pci_id(id.get_ref()) == Some((v, dv)))
            })
        });
        if d.platform.vendor.is_some() || d.platform.product.is_some() {
            push(
                "platform",
                Level::Info,
                format!("{vendor} {product} is not a listed server"),
                None,
            );
        } else {
            push(
                "platform",
                Level::Info,
                format!(
                    "platform unknown ({}): cannot match a listed server",
                    d.platform.why.as_deref().unwrap_or("no DMI")
                ),
                Some("import the server's dmidecode output with --dmidecode FILE".into()),
            );
        }
        class = Class::Untested;
        if let Some(c) = fam {
            matched = Some(format!("cpu_family {}", c.id));
            push(
                "cpu",
                Level::Info,
                format!("CPU family {} is used by listed servers", c.codename),
                None,
            );
            for n in &c.notes {
                push("cpu", Level::Info, n.clone(), None);
            }
        }
        if let Some(c) = chipset {
            if matched.is_none() {
                matched = Some(format!("chipset {}", c.id));
            }
            push(
                "chipset",
                Level::Info,
                format!("chipset {} is used by listed servers", c.name),
                None,
            );
        }
        if fam.is_some() || chipset.is_some() {
            if required_unknown || emulated_virt {
                push(
                    "hcl",
                    Level::Info,
                    "not `compatible`: a required feature is not confirmed present".into(),
                    None,
                );
            } else {
                class = Class::Compatible;
                push(
                    "hcl",
                    Level::Info,
                    "not a listed model, but the CPU family or chipset is: expected to work, without guarantee".into(),
                    None,
                );
            }
        } else if d.cpu.family.is_some() {
            push(
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
    if emulated_virt {
        class = class.max(Class::Untested);
    }
    if blocked {
        class = Class::Unsupported;
    }
    for l in lists {
        if l.list.sample {
            push(
                "hcl",
                Level::Info,
                format!("list {:?} is a SAMPLE built from public hardware dumps, not a real certification list", l.list.name),
                None,
            );
        }
    }

    let warnings = reasons.iter().filter(|r| r.level == Level::Warning).count() as i32;
    let (base, lo, hi) = match class {
        Class::Certified => (100, 85, 100),
        Class::Compatible => (84, 60, 84),
        Class::Untested => (59, 30, 59),
        Class::Unsupported => (29, 0, 29),
    };
    let blockers = reasons.iter().filter(|r| r.level == Level::Blocker).count() as i32;
    let score = base - 5 * warnings - 10 * blockers - 2 * (unknown_recommended as i32);
    let score = score.clamp(lo, hi) as u8;
    Verdict {
        class,
        score,
        reasons,
        matched,
        lists: lists.iter().map(|l| l.list.name.clone()).collect(),
    }
}
