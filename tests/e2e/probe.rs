//! `hvcert probe` as a user runs it: live `--json`, `--from`, `--capture`, imports, bad lists.
use std::process::Command;

#[path = "../common/mod.rs"]
mod common;

fn hvcert() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hvcert"))
}

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

    let dir = std::env::temp_dir().join(format!("hvcert-e2e-capture-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = hvcert()
        .args(["probe", "--no-kvm", "--json", "--capture"])
        .arg(&dir)
        .output()
        .unwrap();
    let live = json(&out);
    assert!(dir.join("host.json").is_file() && dir.join("cpuid.txt").is_file());
    let replay = json(
        &hvcert()
            .args(["probe", "--json", "--from"])
            .arg(&dir)
            .output()
            .unwrap(),
    );
    assert_eq!(live["features"], replay["features"]);
    assert_eq!(live["cpu"], replay["cpu"]);
    let _ = std::fs::remove_dir_all(&dir);
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
    let dir = std::env::temp_dir().join(format!("hvcert-e2e-hcl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
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
    let _ = std::fs::remove_dir_all(&dir);
}
