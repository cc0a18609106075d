//! Every host snapshot in fixtures/hosts: insta snapshots of the JSON report and the table,
//! plus the verdicts and facts we expect from what each machine is.
use std::path::{Path, PathBuf};

use probe::report::{Class, KvmMode, State};
use probe::{HostSource, ProbeReport};

fn hosts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/hosts")
}

fn host_names() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(hosts_dir())
        .expect("fixtures/hosts")
        .flatten()
        .filter(|e| e.path().join("host.json").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn report(name: &str) -> ProbeReport {
    let raw =
        probe::collect(&[HostSource::Snapshot(hosts_dir().join(name))]).expect("snapshot reads");
    probe::evaluate(&raw, &[probe::hcl::sample().expect("sample list parses")])
}

#[test]
fn every_fixture_matches_its_snapshots() {
    let names = host_names();
    assert!(names.len() >= 20, "expected all fixtures, found {names:?}");
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| {
        for name in &names {
            let r = report(name);
            insta::assert_json_snapshot!(format!("{name}.json"), r);
            insta::assert_snapshot!(format!("{name}.table"), r.to_table());
        }
    });
}

#[test]
fn json_report_round_trips_and_has_the_stable_keys() {
    for name in host_names() {
        let r = report(&name);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["schema"], "hvcert.probe/v1");
        for k in ["vendor", "family", "model", "stepping", "brand"] {
            assert!(json["cpu"].get(k).is_some(), "{name}: cpu.{k}");
        }
        for k in probe::report::FEATURE_KEYS {
            assert!(
                json["features"][k]["state"].is_string(),
                "{name}: features.{k}.state"
            );
            if json["features"][k]["state"] == "unknown" {
                assert!(
                    json["features"][k]["why"].is_string(),
                    "{name}: features.{k} unknown without why"
                );
            }
        }
        for k in [
            "available",
            "api_version",
            "mode",
            "exit_us",
            "ring0_slowdown",
        ] {
            assert!(json["kvm"].get(k).is_some(), "{name}: kvm.{k}");
        }
        for k in ["vendor", "product", "bios_version", "bios_date"] {
            assert!(json["platform"].get(k).is_some(), "{name}: platform.{k}");
        }
        assert!(json["chipset"].is_object());
        for k in ["class", "score", "reasons"] {
            assert!(json["verdict"].get(k).is_some(), "{name}: verdict.{k}");
        }
        let back: ProbeReport = serde_json::from_value(json).unwrap();
        assert_eq!(back, r, "{name}: JSON round trip");
    }
}

#[test]
fn verdicts_follow_the_hardware() {
    use Class::*;
    let expect: &[(&str, Class)] = &[
        ("dell-r630-haswell-ep", Certified),
        ("hp-dl360-gen9-haswell-ep", Certified),
        ("dell-r6515-rome", Certified),
        ("lenovo-sr645-rome", Certified),
        ("dell-r710-nehalem-ep", Certified),
        ("supermicro-x8dtu-nehalem-ep", Compatible),
        ("hp-dl380-g7-nehalem-ep", Compatible),
        ("intel-sandybridge-ep", Compatible),
        ("intel-skylake-x", Compatible),
        ("intel-sapphire-rapids", Compatible),
        ("amd-barcelona", Compatible),
        ("amd-istanbul", Compatible),
        ("amd-interlagos", Untested),
        ("intel-woodcrest", Untested),
        ("intel-harpertown", Untested),
        ("this-nested-kvm-machine", Untested),
        ("dell-r630-vtx-disabled-in-firmware", Unsupported),
        ("dell-r6515-svm-disabled-kernel-log", Unsupported),
        ("intel-harpertown-no-nx", Unsupported),
        ("intel-harpertown-xd-disabled", Unsupported),
        ("intel-yonah-32bit-only", Unsupported),
    ];
    for (name, class) in expect {
        let r = report(name);
        assert_eq!(r.verdict.class, *class, "{name}: {:#?}", r.verdict);
        let (lo, hi) = match class {
            Certified => (85, 100),
            Compatible => (60, 84),
            Untested => (30, 59),
            Unsupported => (0, 29),
        };
        assert!(
            (lo..=hi).contains(&r.verdict.score),
            "{name}: score {}",
            r.verdict.score
        );
        if *class == Unsupported {
            let b = r
                .verdict
                .reasons
                .iter()
                .find(|x| x.level == probe::report::Level::Blocker)
                .expect("a blocker");
            assert!(b.remedy.is_some(), "{name}: blocker without remedy");
        }
    }
    // Every fixture has an expectation.
    for n in host_names() {
        assert!(
            expect.iter().any(|(e, _)| *e == n),
            "no expected verdict for fixture {n}"
        );
    }
}

#[test]
fn facts_follow_the_hardware() {
    let f = |name: &str| report(name).features;
    // VT-x without EPT (Core 2), with EPT but no unrestricted guest (Nehalem), full (Haswell).
    let w = f("intel-woodcrest");
    assert_eq!(w.hw_virt.state, State::Present);
    assert_eq!(w.slat.state, State::Absent);
    let n = f("supermicro-x8dtu-nehalem-ep");
    assert_eq!(
        (n.slat.state, n.vpid.state, n.unrestricted_guest.state),
        (State::Present, State::Present, State::Absent)
    );
    let h = f("dell-r630-haswell-ep");
    assert_eq!(h.slat.kind.as_deref(), Some("ept"));
    assert!(
        h.slat.source.as_deref().unwrap().contains("0x48b"),
        "EPT from the VMX capability MSR"
    );
    assert_eq!(h.unrestricted_guest.state, State::Present);
    // Sandy Bridge-EP's dump has the VMX MSRs too.
    assert!(f("intel-sandybridge-ep")
        .slat
        .source
        .as_deref()
        .unwrap()
        .contains("0x48b"));
    // AMD: NPT from CPUID 0x8000000A, on the first NPT generation too.
    for amd in [
        "amd-barcelona",
        "amd-istanbul",
        "amd-interlagos",
        "dell-r6515-rome",
    ] {
        let a = f(amd);
        assert_eq!(
            (a.hw_virt.kind.as_deref(), a.hw_virt.state),
            (Some("svm"), State::Present),
            "{amd}"
        );
        assert_eq!(
            (a.slat.kind.as_deref(), a.slat.state),
            (Some("npt"), State::Present),
            "{amd}"
        );
    }
    // Firmware-disabled cases and what they were read from.
    let d = f("dell-r630-vtx-disabled-in-firmware");
    assert_eq!(d.hw_virt.state, State::DisabledInFirmware);
    assert!(d.hw_virt.source.as_deref().unwrap().contains("0x3a"));
    assert_eq!(d.iommu.state, State::Present);
    assert_eq!(d.iommu.kernel_enabled, Some(false));
    let k = f("dell-r6515-svm-disabled-kernel-log");
    assert_eq!(k.hw_virt.state, State::DisabledInFirmware);
    assert!(k
        .hw_virt
        .source
        .as_deref()
        .unwrap()
        .starts_with("kernel log"));
    assert_eq!(f("intel-harpertown-no-nx").nx.state, State::Absent);
    assert_eq!(
        f("intel-harpertown-xd-disabled").nx.state,
        State::DisabledInFirmware
    );
    assert_eq!(f("intel-yonah-32bit-only").long_mode.state, State::Absent);
    // Old CPUs without invariant TSC, newer with.
    assert_eq!(f("intel-harpertown").invariant_tsc.state, State::Absent);
    assert_eq!(
        f("intel-sapphire-rapids").invariant_tsc.state,
        State::Present
    );
}

#[test]
fn the_nested_machine_snapshot_says_kvm_works_nested() {
    let r = report("this-nested-kvm-machine");
    assert_eq!(
        r.features.hw_virt.state,
        State::Absent,
        "no vmx/svm in CPUID here"
    );
    assert_eq!(r.features.hypervisor.state, State::Present);
    assert!(r.kvm.available);
    assert_eq!(r.kvm.mode, KvmMode::NestedSoftware);
    assert_eq!(r.kvm.measured.as_deref(), Some("snapshot"));
    assert!(r.kvm.ring0_slowdown.unwrap() > 100.0);
    assert_eq!(r.platform.vendor, None);
    assert!(r.platform.why.is_some());
}

#[test]
fn mismatched_inputs_are_noted() {
    // The R710 dmidecode lists Westmere-EP CPUs (model 44), the dump is a Nehalem-EP (26).
    let r = report("dell-r710-nehalem-ep");
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("model 44") && n.contains("model 26")),
        "{:?}",
        r.notes
    );
    assert!(report("supermicro-x8dtu-nehalem-ep").notes.is_empty());
}
