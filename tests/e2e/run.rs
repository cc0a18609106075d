//! `hvcert run` end to end, with assembled guests.
#[path = "../common/mod.rs"]
mod common;
#[path = "../../hypervisor/tests/guests/mod.rs"]
mod guests;

use common::hvcert;

#[test]
fn run_streams_serial_and_exits_with_status() {
    if !common::kvm_available_or_skip("run_streams_serial_and_exits_with_status") {
        return;
    }
    let out = hvcert()
        .args([
            "run",
            "--memory",
            "16",
            "--cmdline",
            "from the cli",
            "--kernel",
        ])
        .arg(guests::guest("hello"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0x2a), "{stdout}");
    assert!(stdout.contains("hello from the PVH guest"), "{stdout}");
    assert!(stdout.contains("cmdline=from the cli"), "{stdout}");
}

#[test]
fn run_crash_is_125_with_one_line_reason() {
    if !common::kvm_available_or_skip("run_crash_is_125_with_one_line_reason") {
        return;
    }
    let out = hvcert()
        .args(["run", "--memory", "16", "--cmdline", "t", "--kernel"])
        .arg(guests::guest("crash"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("hvcert: guest crashed: "), "{stderr}");
}

#[test]
fn run_timeout_is_124() {
    if !common::kvm_available_or_skip("run_timeout_is_124") {
        return;
    }
    let out = hvcert()
        .args([
            "run",
            "--memory",
            "16",
            "--cmdline",
            "s",
            "--timeout",
            "0.3",
            "--kernel",
        ])
        .arg(guests::guest("crash"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(124));
    assert!(String::from_utf8_lossy(&out.stderr).contains("timeout"));
}

#[test]
fn run_xen_console_and_poweroff() {
    if !common::kvm_available_or_skip("run_xen_console_and_poweroff") {
        return;
    }
    for iface in ["xen", "both"] {
        let out = hvcert()
            .args([
                "run",
                "--memory",
                "16",
                "--interface",
                iface,
                "--cmdline",
                "x",
                "--kernel",
            ])
            .arg(guests::guest("xen"))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{iface}: {stdout}");
        assert!(
            stdout.contains("xen console_io says hi"),
            "{iface}: {stdout}"
        );
    }
    // Without the Xen interface the guest finds no Xen leaves and fails its check 1.
    let out = hvcert()
        .args(["run", "--memory", "16", "--interface", "hyperv", "--kernel"])
        .arg(guests::guest("xen"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn run_rejects_bad_arguments() {
    let out = hvcert()
        .args(["run", "--interface", "vmware", "--kernel", "/nonexistent"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("vmware"));
    let out = hvcert()
        .args(["run", "--kernel", "/nonexistent/kernel"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/kernel"));
}

#[test]
fn run_refuses_a_timeout_it_cannot_represent() {
    for bad in ["1e30", "-1", "NaN", "inf"] {
        let out = hvcert()
            .args([
                "run",
                "--kernel",
                "/nonexistent",
                &format!("--timeout={bad}"),
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "--timeout {bad}: {stderr}");
        assert!(
            stderr.contains("expected a non-negative number of seconds"),
            "--timeout {bad}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "--timeout {bad}: {stderr}");
    }
}

/// The README's tour lines that make a guest, a disk and boot them, taken from README.md
/// so they cannot drift: each is run as written (in a scratch directory), and the guest
/// must pass every case its default command line selects.
#[test]
fn readme_tour_runs_as_written() {
    let readme = std::fs::read_to_string(common::workspace_root().join("README.md")).unwrap();
    let tour = readme
        .split("## A tour of the CLI")
        .nth(1)
        .and_then(|s| s.split("```").nth(1))
        .expect("README has a tour block");
    let lines: Vec<Vec<&str>> = tour
        .lines()
        .map(|l| {
            l.split('#')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .collect()
        })
        .filter(|w: &Vec<&str>| {
            matches!(
                w.as_slice(),
                ["hvcert", "guest", ..] | ["truncate", ..] | ["hvcert", "run", ..]
            )
        })
        .collect();
    assert_eq!(lines.len(), 3, "guest, truncate and run lines in: {tour}");
    if !common::kvm_available_or_skip("readme_tour_runs_as_written") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for words in &lines {
        let mut cmd = if words[0] == "hvcert" {
            hvcert()
        } else {
            std::process::Command::new(words[0])
        };
        let out = cmd
            .args(&words[1..])
            .current_dir(dir.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            words.join(" ")
        );
        if words[1] == "run" {
            assert!(!stdout.contains("not ok"), "{stdout}");
            for case in [
                "boot",
                "xen_version",
                "storage_write_read_verify",
                "nic_frame_round_trip",
            ] {
                assert!(
                    stdout
                        .lines()
                        .any(|l| l.starts_with("ok ") && l.contains(case)),
                    "{case} not ok in:\n{stdout}"
                );
            }
        }
    }
}
