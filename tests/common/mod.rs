//! Helpers shared by the end-to-end tests in `tests/e2e/` (include with `#[path = "../common/mod.rs"] mod common;`).
#![allow(dead_code)]
use std::path::PathBuf;
use std::process::Command;

/// The `hvcert` binary under test.
pub fn hvcert() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hvcert"))
}

/// Root of the workspace (the directory holding `fixtures/`).
pub fn workspace_root() -> PathBuf {
    // The e2e tests are test targets of the `certify` package.
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Whether tests that need /dev/kvm must run (CI sets HVCERT_REQUIRE_KVM=1).
/// Returns false (and prints why) when KVM is absent and not required.
pub fn kvm_available_or_skip(test: &str) -> bool {
    let present = std::path::Path::new("/dev/kvm").exists();
    if present {
        return true;
    }
    if std::env::var_os("HVCERT_REQUIRE_KVM").is_some() {
        panic!("{test}: /dev/kvm is absent but HVCERT_REQUIRE_KVM is set");
    }
    eprintln!("SKIP {test}: /dev/kvm is absent (set HVCERT_REQUIRE_KVM=1 to make this a failure)");
    false
}

/// Asserts that `hvcert` exited with `code`, showing its stderr otherwise.
pub fn assert_exit(out: &std::process::Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A fresh, empty scratch directory for one test, under cargo's per-target temporary
/// directory (so nothing is left in /tmp; `cargo clean` removes it).
pub fn scratch(suite: &str, test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("e2e-{suite}"))
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}
