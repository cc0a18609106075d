//! The live host. Needs /dev/kvm for the KVM part (skips with a reason when absent, unless
//! HVCERT_REQUIRE_KVM is set).
use probe::report::State;

/// The tests' skip log (visible without `--nocapture`; see the file).
#[path = "../../tests/common/skip.rs"]
mod skip_log;
use probe::{KvmMode, ProbeOptions};

fn kvm_required_or_present() -> bool {
    if std::path::Path::new("/dev/kvm").exists() {
        return true;
    }
    if std::env::var_os("HVCERT_REQUIRE_KVM").is_some() {
        panic!("/dev/kvm is absent but HVCERT_REQUIRE_KVM is set");
    }
    skip_log::skip(
        "probe live KVM checks",
        "/dev/kvm is absent (set HVCERT_REQUIRE_KVM=1 to make this a failure)",
    );
    false
}

#[test]
fn live_probe_reads_this_host() {
    let r = probe::probe_live(&ProbeOptions {
        kvm_check: false,
        ..Default::default()
    });
    assert_eq!(r.source.kind, "live");
    assert!(r.cpu.vendor.is_some() && r.cpu.family.is_some());
    assert_eq!(
        r.features.long_mode.state,
        State::Present,
        "a 64-bit test binary runs here"
    );
    assert_eq!(r.kvm.mode, KvmMode::NotChecked);
    for (k, f) in r.features.iter() {
        if f.state == State::Unknown {
            assert!(f.why.is_some(), "{k} unknown without why");
        }
    }
    // CPUID agrees with the kernel's flags.
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap();
    let flags = probe::live::parse_cpuinfo(&cpuinfo).unwrap().flags;
    let has = |f: &str| flags.iter().any(|x| x == f);
    assert_eq!(r.features.nx.state == State::Present, has("nx"));
    assert_eq!(
        r.features.hypervisor.state == State::Present,
        has("hypervisor")
    );
    if r.features.hw_virt.state == State::Present {
        assert!(has("vmx") || has("svm"));
    }
}

#[test]
fn live_kvm_check_runs_a_guest_and_classifies() {
    if !kvm_required_or_present() {
        return;
    }
    let r = probe::probe_live(&ProbeOptions::default());
    assert!(
        r.kvm.available,
        "KVM must run the micro-guest here: {:?}",
        r.kvm.why
    );
    assert_eq!(r.kvm.api_version, Some(12));
    assert!(r.kvm.exit_us.unwrap() > 0.0);
    assert!(r.kvm.capabilities["user_memory"]);
    assert_ne!(r.kvm.mode, KvmMode::Unavailable);
    if r.features.hw_virt.state != State::Present {
        // No VT-x/AMD-V in CPUID (this nested machine), yet guests run: software-assisted.
        assert_eq!(r.kvm.mode, KvmMode::NestedSoftware, "{:?}", r.kvm);
        assert!(r.kvm.ring0_slowdown.unwrap() >= probe::facts::NESTED_SOFTWARE_RATIO);
        assert!(r.verdict.reasons.iter().any(|x| x.fact == "kvm"));
        assert_ne!(
            r.verdict.class,
            probe::Class::Unsupported,
            "KVM works: not unsupported"
        );
    }
    // The report is serializable both ways, as certify embeds it.
    let json = serde_json::to_string(&r).unwrap();
    let back: probe::ProbeReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back, r);
}

#[test]
fn live_capture_replays_the_same_report() {
    let raw = probe::live::collect(&probe::LiveOptions {
        kvm_check: kvm_required_or_present(),
        ..Default::default()
    });
    let scratch = tempfile::Builder::new()
        .prefix("hvcert-live-capture-")
        .tempdir()
        .unwrap();
    let dir = scratch.path().join("capture");
    probe::snapshot::write(&dir, &raw).unwrap();
    let back = probe::snapshot::read(&dir).unwrap();
    let lists = [probe::hcl::sample().unwrap()];
    let a = probe::evaluate(&raw, &lists);
    let b = probe::evaluate(&back, &lists);
    assert_eq!(a.features, b.features);
    assert_eq!(a.cpu, b.cpu);
    assert_eq!(a.verdict.class, b.verdict.class);
    // Replayed, not live: the snapshot's live input is named as captured, and its KVM
    // figures (when it has them) are marked as measured in the snapshot.
    assert_eq!(a.source.kind, "live");
    assert_eq!(b.source.kind, "snapshot");
    assert_eq!(b.source.inputs[1], probe::snapshot::CAPTURED_LIVE);
    if b.kvm.measured.is_some() {
        assert_eq!(b.kvm.measured.as_deref(), Some("snapshot"));
        assert!(b
            .to_table()
            .contains("(replayed from the snapshot, not measured now)"));
    }
}

#[test]
fn kvm_check_on_a_missing_device_is_unavailable_with_why() {
    let c = probe::kvm_check::run(std::path::Path::new("/nonexistent/kvm"));
    assert!(!c.opened);
    let r = probe::facts::kvm_report(&probe::raw::Avail::Known(c), false);
    assert_eq!(r.mode, KvmMode::Unavailable);
    assert!(r.why.unwrap().contains("/nonexistent/kvm"));
}

/// certify checks KVM before its first case and hands that check to the host probe: the
/// probe reports the given check (here a made-up one, recognisable by its figures) and does
/// not boot its micro-guest again.
#[test]
fn live_probe_reuses_a_given_kvm_check() {
    let given = probe::raw::KvmCheck {
        opened: true,
        api_version: Some(12),
        guest_ran: true,
        vm_create_us: Some(4321.0),
        exit_us: Some(9.5),
        ring0_ns: Some(8000.0),
        ring3_ns: Some(2.0),
        ..Default::default()
    };
    let r = probe::probe_live(&ProbeOptions {
        kvm_result: Some(given),
        ..Default::default()
    });
    assert_eq!(r.kvm.vm_create_us, Some(4321.0));
    assert_eq!(r.kvm.exit_us, Some(9.5));
    assert_eq!(r.kvm.ring0_slowdown, Some(4000.0));
    // With the KVM check off, a given result is not used either.
    let off = probe::probe_live(&ProbeOptions {
        kvm_check: false,
        kvm_result: Some(probe::raw::KvmCheck::default()),
        ..Default::default()
    });
    assert!(!off.kvm.available);
    assert_eq!(off.kvm.vm_create_us, None);
}
