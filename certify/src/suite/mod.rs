//! The certification suite: guest profiles, the runner, the KTAP parser and the run record.
pub mod ktap;
pub mod profile;
pub mod runner;
pub mod vm;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use runner::CaseResult;

/// The guest kernel built by build.rs.
pub const GUEST_ELF: &str = env!("HVCERT_GUEST_ELF");

/// `fixtures/guests` of the source tree this binary was built from.
pub fn default_profiles_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("fixtures")
        .join("guests")
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SuiteRecord {
    pub profile: String,
    pub description: String,
    pub profile_path: String,
    pub profile_sha256: String,
    pub interface: profile::InterfaceKind,
    pub guest_os: String,
    pub guest_os_id: Option<String>,
    pub vcpus: u8,
    pub memory_mib: u32,
    pub cases: Vec<CaseResult>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Summary {
    pub total: usize,
    pub counts: BTreeMap<String, usize>,
    pub blockers_failed: Vec<String>,
    pub certified: bool,
}

/// Everything needed to reproduce and judge a run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunRecord {
    pub schema: String,
    pub hvcert_version: String,
    pub git_revision: String,
    pub started: String,
    pub command_line: Vec<String>,
    pub seed: u64,
    pub jobs: usize,
    pub guest_elf: String,
    pub guest_elf_sha256: String,
    pub host: Option<serde_json::Value>,
    pub wall_ms: u64,
    /// Sum over cases of VM wall time x the hypervisor's ring-0 share, over the sum of VM
    /// wall times (None when the hypervisor doesn't measure it).
    pub ring0_share: Option<f64>,
    pub summary: Summary,
    pub suites: Vec<SuiteRecord>,
}

pub fn summarize(suites: &[SuiteRecord]) -> Summary {
    let mut s = Summary::default();
    for suite in suites {
        for c in &suite.cases {
            s.total += 1;
            *s.counts.entry(c.outcome.as_str().to_string()).or_default() += 1;
            if c.blocker && c.outcome.is_failure() {
                s.blockers_failed.push(format!("{}/{}", c.profile, c.id));
            }
        }
    }
    s.certified = s.blockers_failed.is_empty() && s.total > 0;
    s
}

pub fn ring0_share(suites: &[SuiteRecord]) -> Option<f64> {
    let (mut num, mut den) = (0.0, 0.0);
    for c in suites.iter().flat_map(|s| &s.cases) {
        if let Some(r) = c.ring0_share {
            num += r * c.duration_ms as f64;
            den += c.duration_ms as f64;
        }
    }
    (den > 0.0).then(|| num / den)
}

pub fn sha256_file(path: &Path) -> String {
    use sha2::Digest;
    match std::fs::read(path) {
        Ok(b) => format!("{:x}", sha2::Sha256::digest(&b)),
        Err(e) => format!("unreadable: {e}"),
    }
}

/// `git rev-parse HEAD` of the source tree, with `-dirty` when it has local changes.
pub fn git_revision() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(&root)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match run(&["rev-parse", "HEAD"]) {
        Some(rev) => {
            let dirty = run(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{rev}-dirty")
            } else {
                rev
            }
        }
        None => option_env!("HVCERT_GIT_REVISION")
            .unwrap_or("unknown")
            .to_string(),
    }
}

/// RFC 3339 UTC time from the system clock (no date crate needed for one timestamp).
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamp_shape() {
        let t = super::now_rfc3339();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z'));
    }

    #[test]
    fn guest_elf_was_built() {
        let bytes = std::fs::read(super::GUEST_ELF).expect("build.rs built the guest");
        assert_eq!(&bytes[..4], b"\x7fELF");
        // The PVH note (XEN_ELFNOTE_PHYS32_ENTRY = 18, owner "Xen") is present.
        let needle = [4u8, 0, 0, 0, 4, 0, 0, 0, 18, 0, 0, 0, b'X', b'e', b'n', 0];
        assert!(
            bytes.windows(needle.len()).any(|w| w == needle),
            "no PVH entry note"
        );
    }

    #[test]
    fn outcomes_counted() {
        use super::runner::Outcome;
        assert!(
            Outcome::Timeout.is_failure()
                && !Outcome::Skip.is_failure()
                && !Outcome::NotRun.is_failure()
        );
    }
}
