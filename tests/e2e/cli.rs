//! The `hvcert` binary as a user runs it.
#[path = "../common/mod.rs"]
mod common;

use common::hvcert;

#[test]
fn help_lists_every_subcommand() {
    let out = hvcert().arg("--help").output().expect("run hvcert");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for sub in ["probe", "run", "guest", "certify", "report", "gate"] {
        assert!(text.contains(sub), "--help lacks {sub}: {text}");
    }
}

/// A skipped test is visible without `--nocapture`: its reason is appended to the skip log
/// in the target directory, which scripts/test.sh prints after the tests.
#[test]
fn skip_reasons_go_to_the_skip_log_in_the_target_dir() {
    use common::skip_log::{record_to, skip_log_path, target_dir_of, SKIP_LOG_NAME};
    use std::path::Path;
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("skips.txt");
    record_to(&log, "a_test", "/dev/kvm is absent").unwrap();
    record_to(&log, "b_test", "chromium is absent").unwrap();
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "SKIP a_test: /dev/kvm is absent\nSKIP b_test: chromium is absent\n"
    );
    // The target directory, from either place cargo puts a test or bench executable.
    for exe in [
        "/w/target/debug/deps/cli-0123",
        "/w/target/release/boot-0123",
    ] {
        assert_eq!(
            target_dir_of(Path::new(exe)).unwrap(),
            Path::new("/w/target")
        );
    }
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap();
    let expected = match std::env::var_os("HVCERT_SKIP_LOG").filter(|p| !p.is_empty()) {
        Some(p) => std::path::PathBuf::from(p),
        None => target.join(SKIP_LOG_NAME),
    };
    assert_eq!(skip_log_path().unwrap(), expected);
}

/// A process started with HVCERT_PARENT_PID (as `hvcert serve` starts its certify runs)
/// ends when that parent dies, even though nobody kills it: a shell starts `hvcert serve`
/// (which would run forever) and exits; the child must be gone within seconds. And a child
/// whose parent is already not the one named refuses to start.
#[test]
fn a_child_with_hvcert_parent_pid_dies_with_its_parent() {
    let data = tempfile::tempdir().unwrap();
    let script = format!(
        "HVCERT_PARENT_PID=$$ '{}' serve --data '{}' --listen 127.0.0.1:0 >/dev/null 2>&1 & echo $!; sleep 1",
        env!("CARGO_BIN_EXE_hvcert"),
        data.path().display()
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    let pid: i32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let proc_dir = std::path::PathBuf::from(format!("/proc/{pid}"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    // Gone, or a zombie waiting for init to reap it.
    let alive = || {
        std::fs::read_to_string(proc_dir.join("stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false)
    };
    while alive() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let still = alive();
    if still {
        let _ = std::process::Command::new("kill")
            .arg(pid.to_string())
            .status();
    }
    assert!(!still, "hvcert serve (pid {pid}) outlived its parent shell");

    // The named parent is not ours: exit 2 at once, before serving.
    let out = hvcert()
        .env("HVCERT_PARENT_PID", "1")
        .args(["serve", "--data"])
        .arg(data.path())
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("parent process 1 is gone"));
}
