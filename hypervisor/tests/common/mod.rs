//! Helpers every hypervisor test crate shares: whether KVM is here, and scratch space.
#![allow(dead_code)]

use std::path::Path;

/// The tests' skip log (visible without `--nocapture`; see the file).
#[path = "../../../tests/common/skip.rs"]
pub mod skip_log;

/// Whether a KVM test can run: true when /dev/kvm exists. Otherwise the test is skipped
/// (a line on stderr, return false), unless `HVCERT_REQUIRE_KVM` is set (to anything but
/// `0`): then a missing /dev/kvm fails the test.
pub fn kvm_or_skip(test: &str) -> bool {
    if Path::new("/dev/kvm").exists() {
        return true;
    }
    if std::env::var_os("HVCERT_REQUIRE_KVM").is_some_and(|v| v != "0") {
        panic!("{test}: /dev/kvm is absent but HVCERT_REQUIRE_KVM is set");
    }
    skip_log::skip(
        test,
        "/dev/kvm is absent (set HVCERT_REQUIRE_KVM=1 to fail instead)",
    );
    false
}

/// A scratch directory under cargo's per-target temporary directory, removed (with its
/// contents) when dropped.
pub fn scratch_dir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("hvcert-{tag}-"))
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("scratch directory")
}

/// A console sink the test can read back: what the guest printed, in full.
#[derive(Clone, Default)]
pub struct Capture(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
impl std::io::Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
