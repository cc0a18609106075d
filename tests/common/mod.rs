//! Helpers shared by the end-to-end tests in `tests/e2e/` (include with `#[path = "../common/mod.rs"] mod common;`).
#![allow(dead_code)]
use std::path::PathBuf;
use std::process::Command;

mod kvm;
pub mod serve;
#[allow(unused_imports)] // Not every test target needs KVM.
pub use kvm::kvm_available_or_skip;
#[allow(unused_imports)]
pub use kvm::skip_log;

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

/// Asserts that `hvcert` exited with `code`, showing its stderr otherwise.
pub fn assert_exit(out: &std::process::Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
