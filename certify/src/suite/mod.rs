//! The certification suite: guest profiles, the runner, the KTAP parser and the run record.
pub mod ktap;
pub mod profile;
pub mod runner;
pub mod storage;
pub mod vm;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use runner::{CaseResult, Outcome};

/// The guest kernel built by build.rs.
pub const GUEST_ELF: &str = env!("HVCERT_GUEST_ELF");
/// The same bytes, embedded, so an installed `hvcert` works without its build tree.
pub const GUEST_ELF_BYTES: &[u8] = include_bytes!(env!("HVCERT_GUEST_ELF"));

/// The guest to boot: `explicit`, else the build tree's ELF when it is still there and
/// unchanged, else the embedded copy written to `out/hvcert-guest.elf`.
pub fn guest_path(explicit: Option<&Path>, out: &Path) -> std::io::Result<PathBuf> {
    guest_path_from(explicit, Path::new(GUEST_ELF), out)
}

fn guest_path_from(explicit: Option<&Path>, built: &Path, out: &Path) -> std::io::Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    if std::fs::read(built).is_ok_and(|b| b == GUEST_ELF_BYTES) {
        return Ok(built.to_path_buf());
    }
    let copy = out.join("hvcert-guest.elf");
    std::fs::write(&copy, GUEST_ELF_BYTES)?;
    Ok(copy)
}

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
            // As the reports crate judges it: a blocker that didn't run fails too.
            if c.blocker && (c.outcome.is_failure() || c.outcome == Outcome::NotRun) {
                s.blockers_failed.push(format!("{}/{}", c.profile, c.id));
            }
        }
    }
    s.certified = s.blockers_failed.is_empty() && s.total > 0;
    s
}

/// The run's ring-0 share: total guest ring-0 cycles over total guest cycles when the
/// guests measured themselves, else the hypervisor's per-VM shares weighted by duration.
pub fn ring0_share(suites: &[SuiteRecord]) -> Option<f64> {
    let (mut r0, mut all) = (0u128, 0u128);
    for t in suites
        .iter()
        .flat_map(|s| &s.cases)
        .filter_map(|c| c.guest_timing)
    {
        r0 += u128::from(t.ring0_tsc);
        all += u128::from(t.total_tsc);
    }
    if all > 0 {
        return Some(r0 as f64 / all as f64);
    }
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

/// The run in the reports crate's model (`hvcert.report/v1`), which `hvcert report` and
/// `hvcert gate` read. Certify-specific detail (hypercall counts per name, Xen traces,
/// command lines, seeds) stays in run.json; the report carries the profile and run
/// configuration as opaque JSON so it is still reproducible from it alone.
pub fn to_report(rec: &RunRecord) -> reports::Report {
    use reports::{Case, Identity, Measurement};
    let config = serde_json::json!({
        "seed": rec.seed,
        "jobs": rec.jobs,
        "guest_elf": rec.guest_elf,
        "guest_elf_sha256": rec.guest_elf_sha256,
        "wall_ms": rec.wall_ms,
        "ring0_share": rec.ring0_share,
        "profiles": rec.suites.iter().map(|s| serde_json::json!({
            "name": s.profile, "path": s.profile_path, "sha256": s.profile_sha256,
        })).collect::<Vec<_>>(),
    });
    let mut identity = Identity::new("certify", &rec.hvcert_version, &rec.started)
        .with_git_revision(rec.git_revision.clone())
        .with_config(config)
        .with_command_line(rec.command_line.iter().cloned());
    if let Some(h) = &rec.host {
        identity = identity.with_host(h.clone());
    }
    let mut report = reports::Report::new(identity);
    for s in &rec.suites {
        let suite = report.suite_mut(&s.profile);
        suite.description = s.description.clone();
        suite.config = serde_json::json!({
            "interface": s.interface,
            "guest_os": s.guest_os,
            "guest_os_id": s.guest_os_id,
            "vcpus": s.vcpus,
            "memory_mib": s.memory_mib,
            "profile_path": s.profile_path,
            "profile_sha256": s.profile_sha256,
        });
        for c in &s.cases {
            let outcome = match c.outcome {
                Outcome::Pass => reports::Outcome::Pass,
                Outcome::Fail => reports::Outcome::Fail,
                Outcome::Skip => reports::Outcome::Skip,
                Outcome::Crash => reports::Outcome::Crash,
                Outcome::Timeout => reports::Outcome::Timeout,
                Outcome::NotRun => reports::Outcome::NotRun,
            };
            let mut case = Case::new(c.id.clone(), outcome)
                .blocker(c.blocker)
                .duration_ms(c.duration_ms)
                .log(&String::from_utf8_lossy(&c.console));
            for r in &c.reasons {
                case = case.reason(r.clone());
            }
            if let Some(r) = c.ring0_share {
                case = case.measurement(Measurement::info("guest_ring0_share", r * 100.0, "%"));
            }
            let calls: u64 = c.hypercalls.values().sum();
            if c.outcome != Outcome::NotRun {
                case = case.measurement(Measurement::info("hypercalls", calls as f64, "calls"));
            }
            suite.cases.push(case);
        }
    }
    report.refresh_summary();
    report
}

#[cfg(test)]
mod tests {
    use std::path::Path;

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
    fn embedded_guest_is_written_when_the_build_tree_is_gone() {
        let dir = std::env::temp_dir().join(format!("hvcert-guest-copy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(
            super::guest_path(None, &dir).unwrap(),
            Path::new(super::GUEST_ELF)
        );
        let gone = dir.join("no-such-build-tree/hvcert-guest");
        let p = super::guest_path_from(None, &gone, &dir).unwrap();
        assert_eq!(p, dir.join("hvcert-guest.elf"));
        assert_eq!(std::fs::read(&p).unwrap(), super::GUEST_ELF_BYTES);
        let explicit = dir.join("mine.elf");
        assert_eq!(super::guest_path(Some(&explicit), &dir).unwrap(), explicit);
        let _ = std::fs::remove_dir_all(&dir);
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
