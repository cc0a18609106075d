//! The one "KVM or skip" rule of the tests (shared by the e2e tests through
//! tests/common/mod.rs and by certify's unit tests through `#[path]`).

// The skip log, next to this file (a `#[path]` here is relative to this file's directory).
#[path = "skip.rs"]
pub mod skip_log;

/// Whether a test that needs /dev/kvm can run. When /dev/kvm is absent it returns false
/// (and records why, see skip.rs) so the test skips, unless HVCERT_REQUIRE_KVM=1 (CI), which makes it a
/// failure.
pub fn kvm_available_or_skip(test: &str) -> bool {
    if std::path::Path::new("/dev/kvm").exists() {
        return true;
    }
    let required = std::env::var("HVCERT_REQUIRE_KVM").is_ok_and(|v| !v.is_empty() && v != "0");
    assert!(
        !required,
        "{test}: /dev/kvm is absent but HVCERT_REQUIRE_KVM is set"
    );
    skip_log::skip(
        test,
        "/dev/kvm is absent (set HVCERT_REQUIRE_KVM=1 to make this a failure)",
    );
    false
}
