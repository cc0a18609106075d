//! `hvcert certify` end to end on KVM: both SUSE-like profiles, every case in its own VM,
//! the run record, and the blocker rule of the exit code.
#[path = "../common/mod.rs"]
mod common;

use std::path::Path;
use std::time::Instant;

use common::hvcert;

/// run.json: the certify run record (every detail of every VM).
fn report(out: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(out.join("run.json")).expect("run.json written");
    serde_json::from_str(&text).expect("run.json parses")
}

#[test]
fn full_suite_passes_on_kvm() {
    if !common::kvm_available_or_skip("full_suite_passes_on_kvm") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path();
    let t0 = Instant::now();
    let res = hvcert()
        .args(["certify", "--jobs", "2", "--seed", "42", "--out"])
        .arg(out)
        .output()
        .expect("run hvcert certify");
    let wall = t0.elapsed();
    let stdout = String::from_utf8_lossy(&res.stdout);
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert_eq!(
        res.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    eprintln!("full suite wall time: {:.2} s", wall.as_secs_f64());
    assert!(
        stdout.contains("verdict: all blocker cases passed"),
        "{stdout}"
    );

    // report.json is the reports crate's model, readable by `hvcert report` / `gate`.
    let rep = reports::load(out.join("report.json")).expect("report.json loads");
    assert_eq!(rep.identity.command, "certify");
    assert_eq!(rep.summary.blocker_failures, 0, "{:?}", rep.summary);
    assert!(rep.summary.pass >= 25, "{:?}", rep.summary);
    let flush = rep
        .case("sles11sp1-like", "storage_flush")
        .expect("storage_flush in report");
    assert!(
        flush
            .reasons
            .iter()
            .any(|r| r.contains("image checked on the host")),
        "{flush:?}"
    );

    // The rest of the tool chain reads it: JUnit for CI, and the gate (a run against
    // itself has no regression).
    let junit = hvcert()
        .args(["report", "-f", "junit"])
        .arg(out.join("report.json"))
        .output()
        .expect("run hvcert report");
    assert!(
        junit.status.success(),
        "{}",
        String::from_utf8_lossy(&junit.stderr)
    );
    let xml = String::from_utf8_lossy(&junit.stdout);
    assert!(
        xml.contains("xen_console_io") && xml.contains("hv_call_cpl3_ud"),
        "{xml}"
    );
    let gate = hvcert()
        .arg("gate")
        .arg("--baseline")
        .arg(out.join("report.json"))
        .arg(out.join("report.json"))
        .output()
        .expect("run hvcert gate");
    assert_eq!(
        gate.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&gate.stdout)
    );

    let r = report(out);
    assert_eq!(r["seed"], 42);
    assert_eq!(r["summary"]["certified"], true);
    assert!(r["git_revision"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(r["hvcert_version"], env!("CARGO_PKG_VERSION"));
    let suites = r["suites"].as_array().expect("suites");
    let names: Vec<&str> = suites
        .iter()
        .filter_map(|s| s["profile"].as_str())
        .collect();
    assert!(
        names.contains(&"sles10sp1-like") && names.contains(&"sles11sp1-like"),
        "{names:?}"
    );
    let mut ran = 0;
    for s in suites {
        assert_eq!(s["profile_sha256"].as_str().map(str::len), Some(64));
        for c in s["cases"].as_array().expect("cases") {
            let id = c["id"].as_str().unwrap_or("?");
            match c["outcome"].as_str() {
                Some("pass") => {
                    ran += 1;
                    let log = out.join(c["log_file"].as_str().expect("log file"));
                    let text = std::fs::read_to_string(&log).expect("console log");
                    assert!(
                        text.contains(&format!("ok 1 {id}"))
                            || id.starts_with("xen_shutdown")
                            // These end the VM from the guest (RESET, CRASH_CTL notify).
                            || matches!(id, "hv_msr_reset" | "hv_msr_crash"),
                        "{text}"
                    );
                    assert!(c["cmdline"]
                        .as_str()
                        .is_some_and(|l| l.contains(&format!("cases={id}"))));
                }
                Some("not_run") => assert!(c["reasons"][0].as_str().is_some()),
                other => panic!("{}/{id}: {other:?} {}", s["profile"], c["reasons"]),
            }
        }
    }
    assert!(ran >= 25, "only {ran} cases ran");
    // The host saw what the guest did: hypercall counts and the Xen trace.
    let xen = suites
        .iter()
        .find(|s| s["profile"] == "sles10sp1-like")
        .expect("xen suite");
    let console = xen["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "xen_console_io")
        .unwrap();
    assert!(
        console["xen_trace"]
            .as_array()
            .is_some_and(|t| !t.is_empty()),
        "{console}"
    );
    let shutdown = xen["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "xen_shutdown")
        .unwrap();
    assert_eq!(shutdown["vm_end"], "shutdown");
    let hv = suites
        .iter()
        .find(|s| s["profile"] == "sles11sp1-like")
        .expect("hv suite");
    assert_eq!(hv["guest_os_id"], "0x8100000206200000");
    let flush = hv["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "hv_call_flush_list")
        .unwrap();
    assert_eq!(
        flush["hypercalls"]["HvCallFlushVirtualAddressList"], 1,
        "{flush}"
    );
}

/// A profile whose blocker case can't pass (Hyper-V cases on a guest with no hypervisor
/// interface) makes the run exit 1 and names the case; the same case as a non-blocker
/// doesn't.
#[test]
fn failing_blocker_exits_nonzero() {
    if !common::kvm_available_or_skip("failing_blocker_exits_nonzero") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let profile = |blocker: bool| {
        format!(
            "name = \"bare\"\ndescription = \"no enlightenments\"\ninterface = \"none\"\nmemory_mib = 32\n\
             [guest_os]\nname = \"x\"\nkernel = \"2.6.32\"\n\
             [[cases]]\nid = \"boot\"\nblocker = true\n\
             [[cases]]\nid = \"hv_cpuid\"\nblocker = {blocker}\n"
        )
    };
    for (blocker, code) in [(true, 1), (false, 0)] {
        let path = dir.join(format!("bare-{blocker}.toml"));
        std::fs::write(&path, profile(blocker)).unwrap();
        let out = dir.join(format!("out-{blocker}"));
        let res = hvcert()
            .args(["certify", "--profile"])
            .arg(&path)
            .arg("--out")
            .arg(&out)
            .output()
            .expect("run hvcert certify");
        let stdout = String::from_utf8_lossy(&res.stdout);
        assert_eq!(
            res.status.code(),
            Some(code),
            "blocker={blocker}:\n{stdout}"
        );
        let r = report(&out);
        let cases = r["suites"][0]["cases"].as_array().unwrap();
        assert_eq!(cases[0]["outcome"], "pass");
        assert_eq!(cases[1]["outcome"], "fail");
        assert!(
            cases[1]["reasons"][0].as_str().unwrap().contains("Hv#1"),
            "{}",
            cases[1]
        );
        if blocker {
            assert!(
                stdout.contains("blocker cases failed: bare/hv_cpuid"),
                "{stdout}"
            );
        }
    }
}

#[test]
fn bad_profile_is_reported_with_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let path = dir.join("broken.toml");
    std::fs::write(
        &path,
        "name = \"b\"\ndescription = \"d\"\ninterface = \"vmware\"\n",
    )
    .unwrap();
    let res = hvcert()
        .args(["certify", "--profile"])
        .arg(&path)
        .arg("--out")
        .arg(dir.join("out"))
        .output()
        .expect("run hvcert certify");
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("broken.toml:3"), "{stderr}");
}

#[test]
fn unknown_case_filter_is_an_error() {
    let res = hvcert()
        .args(["certify", "--case", "hv_cpuidd", "--out"])
        .arg(tempfile::tempdir().unwrap().path())
        .output()
        .expect("run hvcert certify");
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--case hv_cpuidd"), "{stderr}");
}

#[test]
fn list_shows_profiles_and_blockers() {
    let res = hvcert()
        .args(["certify", "--list"])
        .output()
        .expect("run hvcert certify --list");
    assert!(res.status.success());
    let text = String::from_utf8_lossy(&res.stdout);
    assert!(
        text.contains("sles10sp1-like") && text.contains("sles11sp1-like"),
        "{text}"
    );
    assert!(
        text.contains("smp_vp_index") && text.contains("blocker"),
        "{text}"
    );
}

/// An unexpected exception in the guest is a crash (with vector and RIP), a guest that
/// never reports is a timeout, an unknown case is a failure; all three fail the run.
#[test]
fn crash_timeout_and_unknown_case_outcomes() {
    if !common::kvm_available_or_skip("crash_timeout_and_unknown_case_outcomes") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let path = dir.join("selftest.toml");
    std::fs::write(
        &path,
        "name = \"selftest\"\ndescription = \"guest self-tests\"\ninterface = \"hyperv\"\n\
         memory_mib = 32\ntimeout_secs = 1\n[guest_os]\nname = \"x\"\nkernel = \"2.6.32\"\n\
         [[cases]]\nid = \"selftest_traps\"\nblocker = true\n\
         [[cases]]\nid = \"selftest_crash\"\nblocker = true\n\
         [[cases]]\nid = \"selftest_hang\"\n\
         [[cases]]\nid = \"no_such_case\"\n",
    )
    .unwrap();
    let out = dir.join("out");
    let res = hvcert()
        .args(["certify", "--no-probe", "--profile"])
        .arg(&path)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run hvcert certify");
    let stdout = String::from_utf8_lossy(&res.stdout);
    assert_eq!(res.status.code(), Some(1), "{stdout}");
    let r = report(&out);
    let cases = r["suites"][0]["cases"].as_array().unwrap();
    let get = |id: &str| cases.iter().find(|c| c["id"] == id).unwrap();
    assert_eq!(
        get("selftest_traps")["outcome"],
        "pass",
        "{}",
        get("selftest_traps")
    );
    let crash = get("selftest_crash");
    assert_eq!(crash["outcome"], "crash", "{crash}");
    let why = crash["reasons"][0].as_str().unwrap();
    assert!(
        why.contains("#UD") && why.contains("rip=0x") && why.contains("cpl=3"),
        "{why}"
    );
    assert_eq!(
        get("selftest_hang")["outcome"],
        "timeout",
        "{}",
        get("selftest_hang")
    );
    let unknown = get("no_such_case");
    assert_eq!(unknown["outcome"], "fail");
    assert_eq!(unknown["reasons"][0], "unknown case");
    assert!(
        stdout.contains("blocker cases failed: selftest/selftest_crash"),
        "{stdout}"
    );
}

/// The binary does not depend on the tree it was built in: copied to a directory outside
/// it and run from another working directory, it lists the built-in profiles, runs a
/// couple of their cases, and records the git revision captured at build time.
#[test]
fn relocated_binary_lists_and_runs_the_builtin_profiles() {
    let bin_dir = tempfile::tempdir().unwrap();
    let bin = bin_dir.path().join("hvcert");
    std::fs::copy(env!("CARGO_BIN_EXE_hvcert"), &bin).expect("copy hvcert");
    let cwd = tempfile::tempdir().unwrap();
    let list = std::process::Command::new(&bin)
        .current_dir(cwd.path())
        .args(["certify", "--list"])
        .output()
        .expect("run the copied hvcert");
    common::assert_exit(&list, 0);
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(
        text.contains("sles10sp1-like") && text.contains("sles11sp1-like"),
        "{text}"
    );
    if !common::kvm_available_or_skip("relocated_binary_lists_and_runs_the_builtin_profiles") {
        return;
    }
    let res = std::process::Command::new(&bin)
        .current_dir(cwd.path())
        .args(["certify", "--no-probe", "--profile", "sles11sp1-like"])
        .args(["--case", "boot", "--case", "hv_cpuid", "--out", "out"])
        .output()
        .expect("run the copied hvcert");
    common::assert_exit(&res, 0);
    let r = report(&cwd.path().join("out"));
    let cases = r["suites"][0]["cases"].as_array().expect("cases");
    let got: Vec<(&str, &str)> = cases
        .iter()
        .map(|c| (c["id"].as_str().unwrap(), c["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(got, [("boot", "pass"), ("hv_cpuid", "pass")]);
    assert_eq!(
        r["suites"][0]["profile_path"],
        "builtin:fixtures/guests/sles11sp1-like.toml"
    );
    let rev = r["git_revision"].as_str().expect("git_revision");
    let hex = rev.trim_end_matches("-dirty");
    assert!(
        hex.len() == 40 && hex.chars().all(|c| c.is_ascii_hexdigit()),
        "{rev}"
    );
}
