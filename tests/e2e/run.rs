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
