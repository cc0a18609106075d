//! The `hvcert` binary as a user runs it.
#[path = "../common/mod.rs"]
mod common;

use common::hvcert;

#[test]
fn help_lists_every_subcommand() {
    let out = hvcert().arg("--help").output().expect("run hvcert");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for sub in ["probe", "run", "certify", "report", "gate"] {
        assert!(text.contains(sub), "--help lacks {sub}: {text}");
    }
}
