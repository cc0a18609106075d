//! `hvcert gate` as CI runs it: exit 0 (no blocker regression), 1 (regression, printed),
//! 2 (unreadable input).
#[path = "../common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::process::Output;

fn fixture(name: &str) -> PathBuf {
    common::workspace_root().join("fixtures/reports").join(name)
}

fn gate(baseline: &PathBuf, current: &PathBuf, extra: &[&str]) -> Output {
    common::hvcert()
        .arg("gate")
        .arg("--baseline")
        .arg(baseline)
        .arg(current)
        .args(extra)
        .output()
        .expect("run hvcert gate")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn same_run_passes() {
    let base = fixture("all-pass.json");
    let o = gate(&base, &base, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("gate: PASS"));
}

#[test]
fn blocker_regressions_fail_with_exit_1() {
    let base = fixture("all-pass.json");
    for (current, expected) in [
        (
            "blocker-failure.json",
            "REGRESSION sles15-hyperv/hypercall.invalid_code: pass -> fail",
        ),
        (
            "crash.json",
            "REGRESSION sles15-hyperv/storage.write_read_verify: pass -> crash",
        ),
        (
            "timeout.json",
            "REGRESSION sles15-xen/smp.two_vcpus: pass -> timeout",
        ),
    ] {
        let o = gate(&base, &fixture(current), &[]);
        assert_eq!(o.status.code(), Some(1), "{current}: {}", stdout(&o));
        assert!(stdout(&o).contains(expected), "{current}: {}", stdout(&o));
        assert!(stdout(&o).contains("gate: FAIL"));
    }
    // The non-blocker failure is a warning, not a regression.
    let o = gate(&base, &fixture("blocker-failure.json"), &[]);
    assert!(stdout(&o)
        .contains("warning (non-blocker) sles15-hyperv/net.loopback_frames: pass -> fail"));
    assert!(stdout(&o).contains("gate: FAIL (1 regression(s)"));
}

#[test]
fn waivers_let_a_known_failure_through_and_expired_ones_are_reported() {
    let o = gate(
        &fixture("all-pass.json"),
        &fixture("blocker-failure.json"),
        &["--waivers", fixture("waivers.toml").to_str().unwrap()],
    );
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains(
            "waived sles15-hyperv/hypercall.invalid_code: pass -> fail (waived: wrong status"
        ),
        "{out}"
    );
    assert!(
        out.contains("note: expired waiver \"storage.*\" (expired 2026-01-31"),
        "{out}"
    );
    // The expired waiver does not hide the crash.
    let o = gate(
        &fixture("all-pass.json"),
        &fixture("crash.json"),
        &["--waivers", fixture("waivers.toml").to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    // A waiver recorded in the report (at run time) is honoured while valid.
    let o = gate(
        &fixture("all-pass.json"),
        &fixture("waived-failure.json"),
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

#[test]
fn missing_cases_and_worse_figures() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("all-pass.json")).unwrap()).unwrap();
    // Drop a blocker case, slow the hypercall round trip by 20% (its own tolerance is
    // 15%) and the boot by 8% (default tolerance 10%).
    let hv = &mut v["suites"][0]["cases"];
    hv.as_array_mut()
        .unwrap()
        .retain(|c| c["id"] != "cpuid.signature");
    for c in hv.as_array_mut().unwrap() {
        if c["id"] == "hypercall.invalid_code" {
            c["measurements"][0]["value"] = 11.28.into();
        }
        if c["id"] == "boot" {
            c["measurements"][0]["value"] = 41.58.into();
        }
    }
    let current = dir.join("current.json");
    std::fs::write(&current, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let o = gate(&fixture("all-pass.json"), &current, &[]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains(
            "REGRESSION sles15-hyperv/cpuid.signature: passed in the baseline, missing now"
        ),
        "{out}"
    );
    assert!(out.contains("REGRESSION sles15-hyperv/hypercall.invalid_code: round_trip 9.4 µs -> 11.28 µs (20% worse, lower is better, tolerance 15%)"), "{out}");
    assert!(
        !out.contains("boot_to_init"),
        "8% is within the default 10%: {out}"
    );
    // A tighter default tolerance catches the boot too; the per-figure 15% still wins.
    let o = gate(&fixture("all-pass.json"), &current, &["--tolerance", "5"]);
    assert!(
        stdout(&o).contains("boot_to_init 38.5 ms -> 41.58 ms (8% worse"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("tolerance 15%"));
}

#[test]
fn unreadable_input_exits_2() {
    let base = fixture("all-pass.json");
    for (current, extra, expected) in [
        (
            fixture("invalid/malformed.json"),
            vec![],
            "malformed.json:6:57: not valid JSON",
        ),
        (
            fixture("invalid/old-schema.json"),
            vec![],
            "unsupported schema \"hvcert.report/v0\"",
        ),
        (fixture("nope.json"), vec![], "nope.json: cannot read"),
        (
            base.clone(),
            vec!["--waivers", "/nonexistent/waivers.toml"],
            "waivers.toml: cannot read",
        ),
        (base.clone(), vec!["--tolerance=-3"], "non-negative"),
    ] {
        let o = gate(&base, &current, &extra);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{}: {err}", current.display());
        assert!(err.contains(expected), "{err}");
    }
    // A broken waivers file names its line.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let w = dir.join("w.toml");
    std::fs::write(
        &w,
        "[[waiver]]\ncase = \"boot\"\nreason = \"r\"\nexpires = 2026-02-30\n",
    )
    .unwrap();
    let o = gate(&base, &base, &["--waivers", w.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err.contains("w.toml: invalid waivers file") && err.contains("line 4"),
        "{err}"
    );
}

/// A probe report and a certify run have no case in common: comparing them is an error
/// naming both kinds (exit 2), not a list of "not in the baseline" cases.
#[test]
fn different_report_kinds_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let probe = tmp.path().join("probe.json");
    let o = common::hvcert()
        .args(["probe", "--from"])
        .arg(common::workspace_root().join("fixtures/hosts/dell-r630-haswell-ep"))
        .arg("--report")
        .arg(&probe)
        .output()
        .unwrap();
    common::assert_exit(&o, 0);
    let certify = fixture("all-pass.json");
    for (base, current, first, second) in [
        (&probe, &certify, "probe", "certify"),
        (&certify, &probe, "certify", "probe"),
    ] {
        let o = gate(base, current, &[]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{}{err}", stdout(&o));
        assert!(
            err.contains(&format!("baseline is a `hvcert {first}` report"))
                && err.contains(&format!("current run a `hvcert {second}` report")),
            "{err}"
        );
        assert!(
            !stdout(&o).contains("not in the baseline"),
            "{}",
            stdout(&o)
        );
    }
}
