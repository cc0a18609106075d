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
