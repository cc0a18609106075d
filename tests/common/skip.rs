//! How a test says it skipped. libtest captures a passing test's stderr, so a skipped test
//! would read "ok" with its reason hidden unless run with `--nocapture`: [`skip`] also
//! appends the reason to a file, `target/hvcert-skips.txt` (or `$HVCERT_SKIP_LOG`), which
//! `scripts/test.sh` clears before the tests and prints after them.
//!
//! Shared through `#[path]` by the e2e tests (tests/common), certify's unit tests (through
//! kvm.rs), the hypervisor's tests (hypervisor/tests/common) and the probe's live test.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

/// The skip log's file name, in the cargo target directory.
pub const SKIP_LOG_NAME: &str = "hvcert-skips.txt";

/// Records that `test` skipped because of `why`: a `SKIP test: why` line on stderr and in
/// the skip log ([`skip_log_path`]). Failing to write the log is only a note on stderr.
pub fn skip(test: &str, why: &str) {
    eprintln!("SKIP {test}: {why}");
    if let Some(path) = skip_log_path() {
        if let Err(e) = record_to(&path, test, why) {
            eprintln!("note: cannot append to {}: {e}", path.display());
        }
    }
}

/// Appends `SKIP test: why` (one line) to `path`.
pub fn record_to(path: &Path, test: &str, why: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    // One write per line: lines of tests running in parallel do not interleave.
    f.write_all(format!("SKIP {test}: {why}\n").as_bytes())
}

/// `$HVCERT_SKIP_LOG` when set, else [`SKIP_LOG_NAME`] in the cargo target directory of the
/// running test binary (`<target>/<profile>/deps/<test>` or `<target>/<profile>/<test>`).
pub fn skip_log_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HVCERT_SKIP_LOG").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    target_dir_of(&std::env::current_exe().ok()?).map(|t| t.join(SKIP_LOG_NAME))
}

/// The cargo target directory holding the executable `exe`: the parent of the profile
/// directory (`debug`, `release`, ...) that `exe` (or its `deps/`) lies in.
pub fn target_dir_of(exe: &Path) -> Option<PathBuf> {
    let dir = exe.parent()?;
    let profile = if dir.file_name()? == "deps" {
        dir.parent()?
    } else {
        dir
    };
    profile.parent().map(Path::to_path_buf)
}
