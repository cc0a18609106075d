//! The run record (run.json): every detail of every VM of a certification run, its
//! summary, and its translation into the reports crate's model (report.json).
use std::collections::BTreeMap;
use std::path::Path;

use reports::Outcome;
use serde::Serialize;

use crate::runner::CaseResult;

/// One profile's part of a run: the profile as it was loaded and its cases' results.
#[derive(Clone, Debug, Serialize)]
pub struct SuiteRecord {
    /// The profile's name (also the suite's name in report.json).
    pub profile: String,
    /// The profile's one-line description.
    pub description: String,
    /// Where the profile came from: a file path, or `builtin:` and the file it was
    /// embedded from.
    pub profile_path: String,
    /// SHA-256 of the profile's bytes, hex.
    pub profile_sha256: String,
    /// The hypervisor interface the profile's VMs expose.
    pub interface: hypervisor::Interface,
    /// The guest OS the profile imitates.
    pub guest_os: String,
    /// The GUEST_OS_ID written to the Hyper-V MSR ("0x...", Hyper-V interfaces only).
    pub guest_os_id: Option<String>,
    /// vCPUs of the profile's VMs (a case may override it).
    pub vcpus: u8,
    /// Guest memory of the profile's VMs.
    pub memory_mib: u32,
    /// The results of the profile's selected cases, in profile order.
    pub cases: Vec<CaseResult>,
}

/// The verdict of a run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// Cases in the run.
    pub total: usize,
    /// Cases per outcome (only the outcomes that occurred).
    pub counts: BTreeMap<Outcome, usize>,
    /// `PROFILE/CASE` of each blocker case whose outcome is a failure.
    pub blockers_failed: Vec<String>,
    /// Some case ran and no blocker failed.
    pub certified: bool,
}

/// Everything needed to reproduce and judge a run.
#[derive(Clone, Debug, Serialize)]
pub struct RunRecord {
    /// Format of this record ([`SCHEMA`]).
    pub schema: String,
    /// Version of the `hvcert` that ran.
    pub hvcert_version: String,
    /// Git revision `hvcert` was built from ([`crate::build_info::GIT_REVISION`]).
    pub git_revision: String,
    /// When the run started (RFC 3339, UTC).
    pub started: String,
    /// The process's command line.
    pub command_line: Vec<String>,
    /// The run seed; each case's seed derives from it ([`crate::runner::derive_seed`]).
    pub seed: u64,
    /// VMs run at the same time.
    pub jobs: usize,
    /// Path of the guest kernel booted.
    pub guest_elf: String,
    /// SHA-256 of the guest kernel, hex.
    pub guest_elf_sha256: String,
    /// The host's probe report (JSON), unless probing was turned off.
    pub host: Option<serde_json::Value>,
    /// Wall time of the VMs' part of the run.
    pub wall_ms: u64,
    /// Sum over cases of VM wall time x the hypervisor's ring-0 share, over the sum of VM
    /// wall times (None when the hypervisor doesn't measure it).
    pub ring0_share: Option<f64>,
    /// The verdict.
    pub summary: Summary,
    /// One per profile, in the order the profiles were given.
    pub suites: Vec<SuiteRecord>,
}

/// The `schema` of a [`RunRecord`].
pub const SCHEMA: &str = "hvcert.certify-run/v0";

/// Counts the outcomes and names the failed blockers ([`Outcome::is_failure`]: a blocker
/// that did not run fails too, as the reports crate judges it).
pub fn summarize(suites: &[SuiteRecord]) -> Summary {
    let mut s = Summary::default();
    for suite in suites {
        for c in &suite.cases {
            s.total += 1;
            *s.counts.entry(c.outcome).or_default() += 1;
            if c.blocker && c.outcome.is_failure() {
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

/// SHA-256 of a file's bytes, hex (or why it could not be read).
pub fn sha256_file(path: &Path) -> String {
    use sha2::Digest;
    match std::fs::read(path) {
        Ok(b) => format!("{:x}", sha2::Sha256::digest(&b)),
        Err(e) => format!("unreadable: {e}"),
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
    report.wall_ms = Some(rec.wall_ms);
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
            let mut case = Case::new(c.id.clone(), c.outcome)
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
