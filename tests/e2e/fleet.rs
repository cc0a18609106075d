//! `hvcert fleet DIR…`: every snapshot scored on its own, one fleet report; bad snapshots
//! are failed hosts, not a failed run. The throughput benchmark is `#[ignore]`d:
//! `cargo test --release -p certify --test fleet -- --ignored --nocapture`.

#[path = "../common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};

use common::{assert_exit, hvcert, workspace_root};

fn fixtures() -> PathBuf {
    workspace_root().join("fixtures/hosts")
}

fn fleet_json(args: &[&Path]) -> serde_json::Value {
    let mut cmd = hvcert();
    cmd.args(["fleet", "-f", "json"]).args(args);
    let out = cmd.output().expect("run hvcert");
    assert_exit(&out, 0);
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

fn host<'a>(v: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    v["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .find(|h| h["name"] == name)
        .unwrap_or_else(|| panic!("no host {name}"))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
    }
}

#[test]
fn fleet_of_the_fixture_hosts_and_the_shared_dumps() {
    let shared = Path::new("/work/shared/hardware");
    let mut roots = vec![fixtures()];
    if shared.is_dir() {
        roots.push(shared.to_path_buf());
    } else {
        eprintln!("note: {} absent: fixtures only", shared.display());
    }
    let refs: Vec<&Path> = roots.iter().map(PathBuf::as_path).collect();
    let v = fleet_json(&refs);
    assert_eq!(v["schema"], "hvcert.fleet/v1");
    let hosts = v["hosts"].as_array().expect("hosts");
    // 21 snapshots and 7 dump files in fixtures/hosts/imported-dumps; 11 CPUID and 7
    // dmidecode dumps in the shared folder.
    let want = if shared.is_dir() { 28 + 18 } else { 28 };
    assert_eq!(hosts.len(), want);
    let sum: u64 = v["totals"]
        .as_object()
        .expect("totals")
        .values()
        .map(|n| n.as_u64().expect("count"))
        .sum();
    assert_eq!(sum as usize, want);
    assert_eq!(v["totals"]["failed"], 0);

    // Each host has its own verdict (never merged).
    assert_eq!(host(&v, "dell-r630-haswell-ep")["class"], "certified");
    assert_eq!(host(&v, "dell-r630-haswell-ep")["label"], "certified");
    assert_eq!(host(&v, "amd-barcelona")["class"], "compatible");
    assert_eq!(host(&v, "intel-woodcrest")["class"], "untested");
    let vtx = host(&v, "dell-r630-vtx-disabled-in-firmware");
    assert_eq!(vtx["class"], "unsupported");
    assert_eq!(vtx["blockers"][0]["fact"], "hw_virt");
    assert!(vtx["blockers"][0]["remedy"]
        .as_str()
        .expect("remedy")
        .contains("enable VT-x"));
    assert_eq!(vtx["identity"]["vendor"], "Dell Inc.");
    assert_eq!(vtx["identity"]["product"], "PowerEdge R630");
    assert!(vtx["identity"]["chipset"]
        .as_str()
        .expect("chipset")
        .contains("8086:2f00"));
    assert_eq!(host(&v, "intel-yonah-32bit-only")["class"], "unsupported");

    // Two machines in one snapshot: flagged per host.
    let r710 = host(&v, "dell-r710-nehalem-ep");
    assert_eq!(r710["mismatched_inputs"], true);
    assert!(r710["label"]
        .as_str()
        .expect("label")
        .contains("provisional: the inputs describe different CPUs"));
    assert_eq!(host(&v, "lenovo-sr645-rome")["mismatched_inputs"], false);

    // Hosts sharing a blocker are grouped.
    let groups = v["groups"].as_array().expect("groups");
    let nx = groups
        .iter()
        .find(|g| g["fact"] == "nx")
        .expect("an nx group");
    assert_eq!(
        nx["hosts"],
        serde_json::json!(["intel-harpertown-no-nx", "intel-harpertown-xd-disabled"])
    );

    if shared.is_dir() {
        let d = host(&v, "dmidecode/Dell_PowerEdge-R630_0354475C3BDD.txt");
        assert_eq!(
            d["qualifiers"],
            serde_json::json!(["unchecked_required"]),
            "a dmidecode dump alone cannot check CPU features"
        );
        assert_eq!(
            host(&v, "cpuid/GenuineIntel00306F2_HaswellEP_CPUID.txt")["class"],
            "compatible"
        );
    }
}

#[test]
fn fleet_scores_each_host_where_probe_from_merges() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_path_buf();
    copy_dir(
        &fixtures().join("dell-r630-haswell-ep"),
        &dir.join("haswell"),
    );
    copy_dir(&fixtures().join("amd-barcelona"), &dir.join("barcelona"));
    let v = fleet_json(&[&dir]);
    assert_eq!(v["hosts"].as_array().expect("hosts").len(), 2);
    assert_eq!(host(&v, "haswell")["class"], "certified");
    assert_eq!(host(&v, "barcelona")["class"], "compatible");
    // `probe --from A --from B` still combines its inputs into one host.
    let out = hvcert()
        .args(["probe", "--json", "--from"])
        .arg(dir.join("haswell"))
        .arg("--from")
        .arg(dir.join("barcelona"))
        .output()
        .expect("run hvcert");
    assert_exit(&out, 0);
    let p: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let inputs = p["source"]["inputs"].as_array().expect("inputs");
    assert!(inputs.iter().any(|i| i == "snapshot haswell"), "{inputs:?}");
    assert!(
        inputs.iter().any(|i| i == "snapshot barcelona"),
        "{inputs:?}"
    );
}

#[test]
fn an_unreadable_snapshot_is_one_failed_host() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_path_buf();
    copy_dir(&fixtures().join("dell-r630-haswell-ep"), &dir.join("good"));
    copy_dir(&fixtures().join("intel-harpertown"), &dir.join("bad-json"));
    std::fs::write(dir.join("bad-json/host.json"), "{ \"inputs\": [").expect("write");
    copy_dir(&fixtures().join("intel-harpertown"), &dir.join("bad-cpuid"));
    std::fs::write(dir.join("bad-cpuid/cpuid.txt"), "CPU 0:\n   0x1 zz\n").expect("write");
    let v = fleet_json(&[&dir, &dir.join("does-not-exist")]);
    assert_eq!(v["hosts"].as_array().expect("hosts").len(), 4);
    assert_eq!(v["totals"]["failed"], 3);
    assert_eq!(v["totals"]["certified"], 1);
    let bad = host(&v, "bad-json");
    assert_eq!(bad["class"], "failed");
    assert!(bad["error"].as_str().expect("error").contains("host.json"));
    assert!(host(&v, "bad-cpuid")["error"]
        .as_str()
        .expect("error")
        .contains("cpuid.txt"));
    assert!(host(&v, "does-not-exist")["error"].is_string());

    // JUnit: one test case per host; the failed ones are failures.
    let xml = dir.join("fleet.xml");
    let out = hvcert()
        .arg("fleet")
        .arg(&dir)
        .arg("-o")
        .arg(&xml)
        .output()
        .expect("run hvcert");
    assert_exit(&out, 0);
    let text = std::fs::read_to_string(&xml).expect("junit written");
    assert!(text.starts_with("<?xml"));
    assert_eq!(text.matches("<testcase ").count(), 3);
    assert_eq!(text.matches("<failure type=\"failed\"").count(), 2);
}

#[test]
fn formats_follow_the_output_extension_and_threads_do_not_change_the_result() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_path_buf();
    let html = dir.join("fleet.html");
    let out = hvcert()
        .arg("fleet")
        .arg(fixtures())
        .arg("-o")
        .arg(&html)
        .output()
        .expect("run hvcert");
    assert_exit(&out, 0);
    let page = std::fs::read_to_string(&html).expect("html written");
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains("<table class=\"sortable\">"));
    assert!(page.contains("<svg"));
    assert_eq!(page.matches("<tr data-class=").count(), 28);

    let strip = |mut v: serde_json::Value| {
        v["date"] = serde_json::Value::Null;
        v["elapsed_ms"] = serde_json::Value::Null;
        v
    };
    let one = hvcert()
        .args(["fleet", "-f", "json", "-j", "1"])
        .arg(fixtures())
        .output()
        .expect("run hvcert");
    assert_exit(&one, 0);
    let one: serde_json::Value = serde_json::from_slice(&one.stdout).expect("JSON");
    assert_eq!(strip(one), strip(fleet_json(&[&fixtures()])));
}

#[test]
fn fleet_markdown_of_the_fixture_hosts() {
    let out = hvcert()
        .args(["fleet", "-f", "md"])
        .arg(fixtures())
        .output()
        .expect("run hvcert");
    assert_exit(&out, 0);
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    // The footer carries the date and version.
    let stable: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("_Generated by hvcert"))
        .collect();
    insta::assert_snapshot!("fleet_fixture_hosts_md", stable.join("\n"));
}

/// Fleet scoring throughput on 1,000 snapshots (copies of the fixture snapshots).
#[test]
#[ignore = "benchmark: cargo test --release -p certify --test fleet -- --ignored --nocapture"]
fn fleet_throughput_1000_snapshots() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_path_buf();
    let snaps: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .expect("fixtures")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("host.json").exists())
        .collect();
    for i in 0..1000 {
        let src = &snaps[i % snaps.len()];
        copy_dir(src, &dir.join(format!("host-{i:04}")));
    }
    let started = std::time::Instant::now();
    let out = hvcert()
        .args(["fleet", "-f", "json"])
        .arg(&dir)
        .output()
        .expect("run hvcert");
    let wall = started.elapsed();
    assert_exit(&out, 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["hosts"].as_array().expect("hosts").len(), 1000);
    assert_eq!(v["totals"]["failed"], 0);
    let secs = wall.as_secs_f64();
    eprintln!(
        "fleet: 1000 snapshots in {:.3} s (whole process, {} ms inside) = {:.0} hosts/s on {} cores",
        secs,
        v["elapsed_ms"],
        1000.0 / secs,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
}

/// The fleet JUnit XML read by a real consumer, Python's junitparser (skips when absent,
/// unless HVCERT_REQUIRE_JUNITPARSER is set).
#[test]
fn junitparser_reads_the_fleet_junit() {
    let have = std::process::Command::new("python3")
        .args(["-c", "import junitparser"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        if std::env::var_os("HVCERT_REQUIRE_JUNITPARSER").is_some() {
            panic!("python3 with junitparser is required (HVCERT_REQUIRE_JUNITPARSER is set)");
        }
        eprintln!("SKIP junitparser_reads_the_fleet_junit: python3 or junitparser is absent");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_path_buf();
    copy_dir(&fixtures().join("dell-r630-haswell-ep"), &dir.join("good"));
    copy_dir(
        &fixtures().join("intel-yonah-32bit-only"),
        &dir.join("yonah"),
    );
    copy_dir(&fixtures().join("intel-harpertown"), &dir.join("broken"));
    std::fs::write(dir.join("broken/host.json"), "not json").expect("write");
    let xml = dir.join("fleet.xml");
    let out = hvcert()
        .arg("fleet")
        .arg(&dir)
        .arg("-o")
        .arg(&xml)
        .output()
        .expect("run hvcert");
    assert_exit(&out, 0);
    let script = r#"
import json, sys
from junitparser import JUnitXml, Failure
xml = JUnitXml.fromfile(sys.argv[1])
cases = [[c.name, [r.type for r in c.result if isinstance(r, Failure)]] for s in xml for c in s]
print(json.dumps(cases))
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(&xml)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "junitparser rejected the fleet XML: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cases: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        cases,
        serde_json::json!([
            ["broken", ["failed"]],
            ["good", []],
            ["yonah", ["unsupported"]]
        ])
    );
}

/// The collection path without Ansible: `hvcert probe --root FAKE --capture` on two fake
/// hosts (distinct DMI), then one fleet over the captures.
#[test]
fn captures_of_fake_roots_make_a_fleet() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_path_buf();
    for (name, vendor, product) in [
        ("node-a", "Dell Inc.", "PowerEdge R630"),
        ("node-b", "Lenovo", "ThinkSystem SR645"),
    ] {
        let dmi = dir.join("roots").join(name).join("sys/class/dmi/id");
        std::fs::create_dir_all(&dmi).expect("mkdir");
        std::fs::write(dmi.join("sys_vendor"), format!("{vendor}\n")).expect("write");
        std::fs::write(dmi.join("product_name"), format!("{product}\n")).expect("write");
        let out = hvcert()
            .args(["probe", "--no-kvm", "--root"])
            .arg(dir.join("roots").join(name))
            .arg("--capture")
            .arg(dir.join("collected").join(name))
            .output()
            .expect("run hvcert");
        assert_exit(&out, 0);
    }
    let v = fleet_json(&[&dir.join("collected")]);
    assert_eq!(v["hosts"].as_array().expect("hosts").len(), 2);
    assert_eq!(host(&v, "node-a")["identity"]["vendor"], "Dell Inc.");
    assert_eq!(
        host(&v, "node-b")["identity"]["product"],
        "ThinkSystem SR645"
    );
}
