//! deploy/ansible/collect.yml against an inventory of several hosts on this machine
//! (`ansible_connection=local`), each with its own fake /proc and /sys tree (`hvcert probe
//! --root`): the snapshots land in one folder per host and `hvcert fleet` scores them.
//!
//! Needs `ansible-playbook` (ansible-core from PyPI; the test tries `python3 -m pip install
//! ansible-core` when it is missing). Skips with a reason when it cannot be had, unless
//! HVCERT_REQUIRE_ANSIBLE=1 (CI), which makes that a failure.

#[path = "../common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::workspace_root;

/// `ansible-playbook` on PATH or next to python3's scripts, installing ansible-core once if
/// needed. None when it cannot be had.
fn ansible_playbook() -> Option<PathBuf> {
    let find = || -> Option<PathBuf> {
        let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect())
            .unwrap_or_default();
        // pip --user installs here.
        if let Some(home) = std::env::var_os("HOME") {
            dirs.push(Path::new(&home).join(".local/bin"));
        }
        dirs.into_iter()
            .map(|d| d.join("ansible-playbook"))
            .find(|p| {
                Command::new(p)
                    .arg("--version")
                    .output()
                    .is_ok_and(|o| o.status.success())
            })
    };
    if let Some(p) = find() {
        return Some(p);
    }
    eprintln!("ansible-playbook not found: trying python3 -m pip install ansible-core");
    let ok = Command::new("python3")
        .args(["-m", "pip", "install", "-q", "ansible-core"])
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        find()
    } else {
        None
    }
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

/// A fake host root: DMI identity, /proc/cpuinfo (this machine's), an optional PCI host
/// bridge. Everything else is absent, as on a host without those files.
fn fake_root(root: &Path, vendor: &str, product: &str, bridge: Option<(&str, &str)>) {
    let dmi = root.join("sys/class/dmi/id");
    write(&dmi.join("sys_vendor"), &format!("{vendor}\n"));
    write(&dmi.join("product_name"), &format!("{product}\n"));
    write(&dmi.join("bios_version"), "2.19.0\n");
    write(&dmi.join("bios_date"), "07/01/2024\n");
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    write(&root.join("proc/cpuinfo"), &cpuinfo);
    if let Some((v, d)) = bridge {
        let dev = root.join("sys/bus/pci/devices/0000:00:00.0");
        write(&dev.join("class"), "0x060000\n");
        write(&dev.join("vendor"), &format!("0x{v}\n"));
        write(&dev.join("device"), &format!("0x{d}\n"));
    }
}

/// One fake host: inventory name, DMI vendor and product, PCI host bridge (vendor, device).
struct FakeHost {
    name: &'static str,
    vendor: &'static str,
    product: &'static str,
    bridge: Option<(&'static str, &'static str)>,
}

const HOSTS: &[FakeHost] = &[
    FakeHost {
        name: "node-a",
        vendor: "Dell Inc.",
        product: "PowerEdge R630",
        bridge: Some(("8086", "2f00")),
    },
    FakeHost {
        name: "node-b",
        vendor: "Lenovo",
        product: "ThinkSystem SR645",
        bridge: None,
    },
    FakeHost {
        name: "node-c",
        vendor: "Supermicro",
        product: "X8DTU",
        bridge: None,
    },
];

#[test]
fn ansible_collects_snapshots_and_scores_the_fleet() {
    let required = std::env::var_os("HVCERT_REQUIRE_ANSIBLE").is_some_and(|v| v == "1");
    let Some(playbook_bin) = ansible_playbook() else {
        if required {
            panic!("ansible-playbook cannot be found or installed, and HVCERT_REQUIRE_ANSIBLE=1");
        }
        common::skip_log::skip(
            "ansible_collects_snapshots_and_scores_the_fleet",
            "ansible-playbook cannot be found or installed (python3 -m pip install ansible-core; \
             set HVCERT_REQUIRE_ANSIBLE=1 to make this a failure)",
        );
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_path_buf();
    let mut inventory = String::from("[fleet]\n");
    for FakeHost {
        name,
        vendor,
        product,
        bridge,
    } in HOSTS
    {
        let root = dir.join("roots").join(name);
        fake_root(&root, vendor, product, *bridge);
        inventory.push_str(&format!(
            "{name} ansible_connection=local hvcert_root={} hvcert_remote_dir={}\n",
            root.display(),
            dir.join("remote").join(name).display()
        ));
    }
    // The controller play runs on localhost with this Python too.
    inventory.push_str("\n[all:vars]\nansible_python_interpreter={{ ansible_playbook_python }}\n");
    write(&dir.join("inventory.ini"), &inventory);
    let collected = dir.join("collected");
    let extra = serde_json::json!({
        "hvcert_binary": env!("CARGO_BIN_EXE_hvcert"),
        "hvcert_collect_dir": collected,
        "hvcert_probe_args": ["--no-kvm"],
    });
    let out = Command::new(&playbook_bin)
        .arg("-i")
        .arg(dir.join("inventory.ini"))
        .arg(workspace_root().join("deploy/ansible/collect.yml"))
        .arg("-e")
        .arg(extra.to_string())
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_LOCAL_TEMP", dir.join("ansible-local"))
        .env("ANSIBLE_REMOTE_TEMP", dir.join("ansible-remote"))
        .env("ANSIBLE_RETRY_FILES_ENABLED", "0")
        .env("ANSIBLE_FORKS", "3")
        .output()
        .expect("run ansible-playbook");
    let log = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "ansible-playbook failed:\n{log}");

    for FakeHost {
        name,
        vendor,
        product,
        ..
    } in HOSTS
    {
        let host_json = collected.join(name).join("host.json");
        assert!(
            host_json.is_file(),
            "{} missing:\n{log}",
            host_json.display()
        );
        assert!(collected.join(name).join("cpuid.txt").is_file());
        // The remote working folder is cleaned up.
        assert!(!dir.join("remote").join(name).exists());
        let raw: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&host_json).expect("read"))
                .expect("host.json is JSON");
        assert_eq!(raw["dmi"]["known"]["sys_vendor"], *vendor, "{name}");
        assert_eq!(raw["dmi"]["known"]["product_name"], *product, "{name}");
    }
    let fleet: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(collected.join("fleet.json")).expect("fleet.json written"),
    )
    .expect("fleet.json is JSON");
    assert_eq!(fleet["schema"], "hvcert.fleet/v1");
    let hosts = fleet["hosts"].as_array().expect("hosts");
    assert_eq!(hosts.len(), HOSTS.len(), "{fleet:#}");
    for (h, want) in hosts.iter().zip(HOSTS) {
        assert_eq!(h["name"], want.name);
        assert_ne!(h["class"], "failed", "{h:#}");
        assert_eq!(h["identity"]["vendor"], want.vendor);
        assert_eq!(h["identity"]["product"], want.product);
    }
    assert!(hosts[0]["identity"]["chipset"]
        .as_str()
        .is_some_and(|c| c.contains("8086:2f00")));
    for f in ["fleet.html", "fleet.md", "fleet.xml"] {
        assert!(collected.join(f).is_file(), "{f} missing");
    }
}
