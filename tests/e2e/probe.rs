//! `hvcert probe` as a user runs it: live `--json`, `--from`, `--capture`, imports, bad lists.

#[path = "../common/mod.rs"]
mod common;

use common::hvcert;

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

#[test]
fn probe_json_on_the_live_host() {
    let kvm = common::kvm_available_or_skip("probe_json_on_the_live_host");
    let mut cmd = hvcert();
    cmd.args(["probe", "--json"]);
    if !kvm {
        cmd.arg("--no-kvm");
    }
    let v = json(&cmd.output().expect("run hvcert"));
    assert_eq!(v["schema"], "hvcert.probe/v1");
    for k in ["vendor", "family", "model", "stepping", "brand"] {
        assert!(v["cpu"].get(k).is_some(), "cpu.{k}");
    }
    for k in [
        "long_mode",
        "nx",
        "hw_virt",
        "slat",
        "vpid",
        "unrestricted_guest",
        "invariant_tsc",
        "hypervisor",
        "iommu",
    ] {
        assert!(v["features"][k]["state"].is_string(), "features.{k}");
    }
    for k in [
        "available",
        "api_version",
        "mode",
        "exit_us",
        "ring0_slowdown",
    ] {
        assert!(v["kvm"].get(k).is_some(), "kvm.{k}");
    }
    for k in ["class", "score", "reasons"] {
        assert!(v["verdict"].get(k).is_some(), "verdict.{k}");
    }
    if kvm {
        assert_eq!(v["kvm"]["available"], true, "{}", v["kvm"]);
        if v["features"]["hw_virt"]["state"] != "present" {
            assert_eq!(
                v["kvm"]["mode"], "nested_software",
                "this machine: KVM works, ring 0 emulated"
            );
        }
    }
}

#[test]
fn probe_table_is_the_default_output() {
    let out = hvcert().args(["probe", "--no-kvm"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for word in ["FACT", "hw_virt", "iommu", "verdict:"] {
        assert!(text.contains(word), "{word} missing in\n{text}");
    }
}

#[test]
fn probe_from_fixture_and_capture_round_trip() {
    let root = common::workspace_root();
    let fixture = root.join("fixtures/hosts/dell-r630-haswell-ep");
    let v = json(
        &hvcert()
            .args(["probe", "--json", "--from"])
            .arg(&fixture)
            .output()
            .unwrap(),
    );
    assert_eq!(v["verdict"]["class"], "certified");
    assert_eq!(v["platform"]["product"], "PowerEdge R630");
    assert_eq!(v["features"]["slat"]["kind"], "ept");

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out = hvcert()
        .args(["probe", "--no-kvm", "--json", "--capture"])
        .arg(dir)
        .output()
        .unwrap();
    let live = json(&out);
    assert!(dir.join("host.json").is_file() && dir.join("cpuid.txt").is_file());
    let replay = json(
        &hvcert()
            .args(["probe", "--json", "--from"])
            .arg(dir)
            .output()
            .unwrap(),
    );
    assert_eq!(live["features"], replay["features"]);
    assert_eq!(live["cpu"], replay["cpu"]);
}

#[test]
fn probe_imports_combine() {
    let dumps = common::workspace_root().join("fixtures/hosts/imported-dumps");
    let v = json(
        &hvcert()
            .args(["probe", "--json", "--cpuid-dump"])
            .arg(dumps.join("GenuineIntel00206D5_SandyBridgeEP_CPUID.txt"))
            .arg("--dmidecode")
            .arg(dumps.join("Dell_PowerEdge-R630_0354475C3BDD.txt"))
            .output()
            .unwrap(),
    );
    assert_eq!(v["cpu"]["model"], 0x2d);
    assert_eq!(v["platform"]["vendor"], "Dell Inc.");
    assert_eq!(v["kvm"]["mode"], "not_checked");
}

#[test]
fn malformed_list_fails_naming_file_line_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let list = dir.join("bad.toml");
    std::fs::write(
        &list,
        "[list]\nname = \"bad\"\n[requirements]\nrequired = [\"nx\"]\n[[server]]\nid = \"x\"\nvendor = \"V\"\nmodle = \"M\"\n",
    )
    .unwrap();
    let out = hvcert()
        .args(["probe", "--no-kvm", "--hcl"])
        .arg(&list)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a probe failure exits non-zero");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:8") && err.contains("modle"), "{err}");
}

// ---- `hvcert probe --report`: the probe's result as a run report (hvcert.report/v1) ----

fn host(name: &str) -> std::path::PathBuf {
    common::workspace_root().join("fixtures/hosts").join(name)
}

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes the probe's run report for a fixture host to `file`, returns stdout.
fn probe_report(fixture: &str, file: &std::path::Path, extra: &[&str]) -> String {
    ok(&hvcert()
        .args(["probe", "--from"])
        .arg(host(fixture))
        .arg("--report")
        .arg(file)
        .args(extra)
        .output()
        .unwrap())
}

fn read_json(path: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()))
}

fn case<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["suites"][0]["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no case {id}"))
}

#[test]
fn probe_report_json_and_html_on_a_fixture_host() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // JSON (from the extension): the run-report schema, with the probe's facts inside.
    let json_file = dir.join("r630.json");
    let stdout = probe_report("dell-r630-haswell-ep", &json_file, &[]);
    assert!(
        stdout.contains("FACT"),
        "the table is still printed:\n{stdout}"
    );
    let r = read_json(&json_file);
    assert_eq!(r["schema"], "hvcert.report/v1");
    assert_eq!(r["identity"]["command"], "probe");
    assert_eq!(r["identity"]["host"]["schema"], "hvcert.probe/v1");
    assert_eq!(r["identity"]["host"]["verdict"]["class"], "certified");
    assert_eq!(r["suites"][0]["name"], "probe");
    assert_eq!(case(&r, "feature.hw_virt")["outcome"], "pass");
    assert_eq!(case(&r, "feature.hw_virt")["blocker"], true);
    assert_eq!(case(&r, "verdict")["outcome"], "pass");
    let score = &case(&r, "verdict")["measurements"][0];
    assert_eq!(score["name"], "score");
    assert_eq!(score["direction"], "higher_is_better");
    assert_eq!(
        score["value"].as_f64(),
        r["identity"]["host"]["verdict"]["score"].as_f64()
    );
    // Imported data: no KVM check (skipped), so at best a pass with warnings.
    assert_eq!(case(&r, "kvm")["outcome"], "skip");
    assert_eq!(r["summary"]["verdict"], "pass_with_warnings");

    // HTML (from the extension), self-contained, verdict first.
    let html_file = dir.join("r630.html");
    probe_report("dell-r630-haswell-ep", &html_file, &[]);
    let html = std::fs::read_to_string(&html_file).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"), "{}", &html[..80]);
    // The probe's own verdict words, not the case-derived "PASS WITH WARNINGS".
    let verdict = html
        .find("<h1>certified (score 98/100)</h1>")
        .expect("verdict shown");
    let first_case = html.find("feature.long_mode").expect("cases shown");
    assert!(verdict < first_case, "the verdict comes first");
    assert!(html.contains("PowerEdge R630"));
    assert!(!html.contains("<script src=") && !html.contains("<link "));

    // --report-format wins over the extension; `hvcert report` renders the JSON the same.
    let md_file = dir.join("r630.out");
    probe_report("dell-r630-haswell-ep", &md_file, &["--report-format", "md"]);
    let md = std::fs::read_to_string(&md_file).unwrap();
    assert!(
        md.starts_with("## ⚠️ hvcert probe: certified (score 98/100)"),
        "{md}"
    );
    // What --report wrote is what `hvcert report` reads and renders: same JSON back, and
    // the same Markdown but for the figures of two different probe runs (wall time).
    let again = ok(&hvcert()
        .arg("report")
        .arg(&json_file)
        .args(["-f", "json"])
        .output()
        .unwrap());
    assert_eq!(again, std::fs::read_to_string(&json_file).unwrap());
    let again = ok(&hvcert()
        .arg("report")
        .arg(&json_file)
        .args(["-f", "md"])
        .output()
        .unwrap());
    let words = |s: &str| -> Vec<String> {
        s.split_whitespace()
            .filter(|w| !w.chars().any(|c| c.is_ascii_digit()))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(words(&again), words(&md));
}

/// One verdict, one wording: the table, the run report's JSON, HTML and Markdown of the same
/// probe all say the probe's class and score, and none says the case-derived verdict.
#[test]
fn probe_verdict_reads_the_same_everywhere() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let fixture = "this-nested-kvm-machine";
    let words = "untested (score 44/100)";
    let table = ok(&hvcert()
        .args(["probe", "--from"])
        .arg(host(fixture))
        .output()
        .unwrap());
    assert!(
        table.lines().any(|l| l == format!("verdict: {words}")),
        "{table}"
    );
    let json_file = dir.join("p.json");
    probe_report(fixture, &json_file, &[]);
    let r = read_json(&json_file);
    assert_eq!(r["verdict_label"], words);
    let html_file = dir.join("p.html");
    probe_report(fixture, &html_file, &[]);
    let html = std::fs::read_to_string(&html_file).unwrap();
    assert!(
        html.contains(&format!("<title>hvcert probe: {words}</title>")),
        "{html}"
    );
    assert!(html.contains(&format!("<h1>{words}</h1>")), "{html}");
    let md_file = dir.join("p.md");
    probe_report(fixture, &md_file, &[]);
    let md = std::fs::read_to_string(&md_file).unwrap();
    assert!(
        md.lines()
            .next()
            .unwrap()
            .ends_with(&format!("hvcert probe: {words}")),
        "{md}"
    );
    let xml_file = dir.join("p.xml");
    probe_report(fixture, &xml_file, &[]);
    let xml = std::fs::read_to_string(&xml_file).unwrap();
    assert!(
        xml.contains(&format!("name=\"hvcert.verdict\" value=\"{words}\"")),
        "{xml}"
    );
    for (what, text) in [("html", &html), ("md", &md), ("xml", &xml)] {
        assert!(!text.contains("PASS WITH WARNINGS"), "{what}: {text}");
    }
}

/// `--from DIR` replays: its source is "snapshot" (not "snapshot+live"), its KVM line says
/// the figures are replayed, and `--no-kvm` leaves the recorded KVM check out.
#[test]
fn probe_from_a_snapshot_says_replayed_and_honours_no_kvm() {
    let run = |extra: &[&str]| {
        ok(&hvcert()
            .args(["probe", "--from"])
            .arg(host("this-nested-kvm-machine"))
            .args(extra)
            .output()
            .unwrap())
    };
    let kvm_line = |t: &str| {
        t.lines()
            .find(|l| l.starts_with("kvm "))
            .unwrap()
            .to_string()
    };
    let table = run(&[]);
    assert!(
        table.starts_with(
            "hvcert probe (snapshot: snapshot this-nested-kvm-machine, captured live host)"
        ),
        "{table}"
    );
    assert!(
        !table.contains("live:") && !table.contains("+live"),
        "{table}"
    );
    assert!(
        kvm_line(&table).ends_with("(replayed from the snapshot, not measured now)"),
        "{table}"
    );
    let table = run(&["--no-kvm"]);
    let kvm = kvm_line(&table);
    assert!(
        kvm.contains("not_checked") && kvm.contains("--no-kvm") && !kvm.contains("API"),
        "{table}"
    );
}

#[test]
fn probe_report_to_stdout() {
    let out = hvcert()
        .args([
            "probe",
            "--report",
            "-",
            "--report-format",
            "junit",
            "--from",
        ])
        .arg(host("intel-harpertown"))
        .output()
        .unwrap();
    let xml = ok(&out);
    assert!(xml.starts_with("<?xml"), "{xml}");
    assert!(
        xml.contains("feature.slat") && !xml.contains("FACT"),
        "{xml}"
    );
    // Both on stdout: refused, exit 2.
    let out = hvcert()
        .args(["probe", "--json", "--report", "-", "--from"])
        .arg(host("intel-harpertown"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("standard output"));
}

#[test]
fn gate_on_probe_reports_certified_vs_unsupported() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let certified = dir.join("certified.json");
    let unsupported = dir.join("unsupported.json");
    probe_report("dell-r630-haswell-ep", &certified, &[]);
    probe_report("dell-r630-vtx-disabled-in-firmware", &unsupported, &[]);
    let gate = |base: &std::path::Path, cur: &std::path::Path| {
        hvcert()
            .args(["gate", "--baseline"])
            .arg(base)
            .arg(cur)
            .output()
            .unwrap()
    };
    let out = gate(&certified, &unsupported);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("REGRESSION probe/feature.hw_virt: pass -> fail"),
        "{text}"
    );
    assert!(
        text.contains("REGRESSION probe/verdict: pass -> fail"),
        "{text}"
    );
    // The other way round is an improvement; a host against itself passes.
    let out = gate(&unsupported, &certified);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = gate(&certified, &certified);
    assert_eq!(out.status.code(), Some(0));
    // Certified -> compatible (same CPU, unlisted model): the score drops past tolerance.
    let compatible = dir.join("compatible.json");
    probe_report("supermicro-x8dtu-nehalem-ep", &compatible, &[]);
    let baseline = dir.join("r710.json");
    probe_report("dell-r710-nehalem-ep", &baseline, &[]);
    let out = gate(&baseline, &compatible);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("probe/verdict") && text.contains("score"),
        "{text}"
    );
}

#[test]
fn report_renders_a_saved_probe_json() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let saved = dir.join("probe.json");
    let out = hvcert()
        .args(["probe", "--json", "--from"])
        .arg(host("dell-r630-vtx-disabled-in-firmware"))
        .output()
        .unwrap();
    std::fs::write(&saved, ok(&out)).unwrap();
    // Rendered like the run report `--report` writes: same cases, outcomes, reasons.
    let converted: serde_json::Value = serde_json::from_str(&ok(&hvcert()
        .arg("report")
        .arg(&saved)
        .args(["-f", "json"])
        .output()
        .unwrap()))
    .unwrap();
    let direct = dir.join("direct.json");
    probe_report("dell-r630-vtx-disabled-in-firmware", &direct, &[]);
    let direct = read_json(&direct);
    assert_eq!(converted["identity"]["command"], "probe");
    assert_eq!(converted["identity"]["host"], direct["identity"]["host"]);
    assert_eq!(
        converted["identity"]["config"]["converted_from"],
        saved.display().to_string()
    );
    let shape = |r: &serde_json::Value| -> Vec<(String, String, bool, Vec<String>)> {
        r["suites"][0]["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["id"].as_str().unwrap().to_string(),
                    c["outcome"].as_str().unwrap().to_string(),
                    c["blocker"].as_bool().unwrap(),
                    serde_json::from_value(c["reasons"].clone()).unwrap_or_default(),
                )
            })
            .collect()
    };
    assert_eq!(shape(&converted), shape(&direct));
    assert_eq!(converted["summary"]["verdict"], "fail");
    // HTML from the saved probe output, and the gate reads neither differently.
    let html = dir.join("probe.html");
    ok(&hvcert()
        .arg("report")
        .arg(&saved)
        .arg("-o")
        .arg(&html)
        .output()
        .unwrap());
    let html = std::fs::read_to_string(html).unwrap();
    // The probe's verdict words, as the table says them (not the case-derived "FAIL").
    assert!(
        html.contains("<h1>unsupported (score 19/100)</h1>") && html.contains("feature.hw_virt")
    );
    assert_eq!(converted["verdict_label"], direct["verdict_label"]);
    // Unknown schemas are still a clear error (exit 2).
    let foreign = dir.join("foreign.json");
    std::fs::write(&foreign, "{\"schema\": \"someone.else/v1\"}").unwrap();
    let out = hvcert().arg("report").arg(&foreign).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unsupported schema \"someone.else/v1\""),
        "{err}"
    );
}

#[test]
fn probe_report_on_the_live_host_has_the_kvm_figures() {
    let kvm = common::kvm_available_or_skip("probe_report_on_the_live_host_has_the_kvm_figures");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let file = dir.join("live.json");
    let mut cmd = hvcert();
    cmd.args(["probe", "--report"]).arg(&file);
    if !kvm {
        cmd.arg("--no-kvm");
    }
    ok(&cmd.output().unwrap());
    let r = read_json(&file);
    let verdict = case(&r, "verdict");
    let wall = verdict["measurements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "probe_wall_time")
        .expect("wall time");
    assert_eq!(wall["unit"], "ms");
    assert!(wall["value"].as_f64().unwrap() > 0.0);
    assert!(r["identity"]["git_revision"].is_string());
    if kvm {
        let k = case(&r, "kvm");
        let m = |name: &str| {
            k["measurements"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["name"] == name)
                .unwrap_or_else(|| panic!("{name} in {k}"))
                .clone()
        };
        let exit = m("exit_us");
        assert_eq!(exit["unit"], "µs");
        assert_eq!(exit["direction"], "lower_is_better");
        assert_eq!(exit["value"], r["identity"]["host"]["kvm"]["exit_us"]);
        assert_eq!(m("ring0_slowdown")["direction"], "info");
        // This machine: KVM works, nested and software-assisted -> a non-blocker warning.
        if r["identity"]["host"]["kvm"]["mode"] == "nested_software" {
            assert_eq!(k["outcome"], "fail");
            assert_eq!(k["blocker"], false);
            assert_ne!(r["summary"]["verdict"], "fail");
        }
    }
}

/// The converted report, pinned for one host (blocker failure). Run-specific fields are
/// normalized; the host facts are checked equal to `hvcert probe --json` and elided (the
/// probe's own snapshots pin them).
#[test]
fn probe_report_snapshot() {
    let fixture = "dell-r630-vtx-disabled-in-firmware";
    let out = hvcert()
        .args(["probe", "--report", "-", "--from"])
        .arg(host(fixture))
        .output()
        .unwrap();
    let mut r: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    let facts = json(
        &hvcert()
            .args(["probe", "--json", "--from"])
            .arg(host(fixture))
            .output()
            .unwrap(),
    );
    assert_eq!(r["identity"]["host"], facts);
    let id = &mut r["identity"];
    id["host"] = "<hvcert probe --json>".into();
    assert!(id["date"].as_str().unwrap().ends_with('Z'));
    id["date"] = "<date>".into();
    assert!(id["git_revision"].is_string());
    id["git_revision"] = "<revision>".into();
    assert_eq!(id["command_line"][1], "probe");
    id["command_line"] = serde_json::json!(["<command line>"]);
    id["version"] = "<version>".into();
    for c in r["suites"][0]["cases"].as_array_mut().unwrap() {
        c["duration_ms"] = 0.into();
        if let Some(ms) = c.get_mut("measurements").and_then(|m| m.as_array_mut()) {
            for m in ms.iter_mut().filter(|m| m["name"] == "probe_wall_time") {
                m["value"] = 0.0.into();
            }
        }
    }
    r["summary"]["duration_ms"] = 0.into();
    assert!(r["wall_ms"].is_u64(), "the probe's wall time is recorded");
    r["wall_ms"] = "<wall time>".into();
    insta::assert_json_snapshot!("probe_report_r630_vtx_disabled", r);
}

#[test]
fn gate_reads_raw_probe_json_too() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let probe_json = |fixture: &str, name: &str| {
        let path = dir.join(name);
        let out = ok(&hvcert()
            .args(["probe", "--json", "--from"])
            .arg(host(fixture))
            .output()
            .unwrap());
        std::fs::write(&path, out).unwrap();
        path
    };
    let certified = probe_json("dell-r630-haswell-ep", "certified.json");
    let unsupported = probe_json("dell-r630-vtx-disabled-in-firmware", "unsupported.json");
    let out = hvcert()
        .args(["gate", "--baseline"])
        .arg(&certified)
        .arg(&unsupported)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("REGRESSION probe/feature.hw_virt: pass -> fail"),
        "{text}"
    );
}
