//! What the console needs from the `certify` crate, which depends on this one (so the
//! console cannot call it directly): the built-in profiles, a certification run, reading a
//! probe document as a run report, and verifying a package. `hvcert serve` hands an
//! implementation over in [`crate::Config::backend`]; without one, those routes answer 503.
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Most cases a certify request may name.
pub const MAX_CASES: usize = 256;
/// Most profiles a certify request may name.
pub const MAX_PROFILES: usize = 64;
/// Most VMs a certify request may run at once.
pub const MAX_JOBS: usize = 64;

/// A profile as the certify form and `GET /api/profiles` show it.
#[derive(Debug, Clone, Serialize)]
pub struct ProfileInfo {
    /// Its name (what a request names).
    pub name: String,
    /// What it stands for.
    pub description: String,
    /// Its paravirtual interface.
    pub interface: String,
    /// Its cases, in run order.
    pub cases: Vec<ProfileCase>,
}

/// One case of a profile.
#[derive(Debug, Clone, Serialize)]
pub struct ProfileCase {
    /// KTAP name.
    pub id: String,
    /// A failure of it fails certification.
    pub blocker: bool,
}

/// A request to run the certification suite (`POST /api/certify`). Unknown fields are
/// refused; profiles are names of the server's profiles (never paths).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertifyRequest {
    /// Profile names; empty: every profile.
    #[serde(default)]
    pub profiles: Vec<String>,
    /// Only these cases (KTAP names); empty: every case of the selected profiles.
    #[serde(default)]
    pub cases: Vec<String>,
    /// VMs run at the same time (1 to [`MAX_JOBS`]); absent: the server's CPUs.
    #[serde(default)]
    pub jobs: Option<usize>,
    /// The run seed; absent: from the clock.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Record the host's probe facts in the run (default true).
    #[serde(default = "yes")]
    pub probe_host: bool,
}

fn yes() -> bool {
    true
}

/// A case that finished, as a run reports it while it goes on.
#[derive(Debug, Clone, Serialize)]
pub struct CaseEvent {
    /// Its profile (the report's suite).
    pub suite: String,
    /// Its id.
    pub id: String,
    /// Its outcome (`pass`, `fail`, ...).
    pub outcome: String,
    /// Whether it is a blocker.
    pub blocker: bool,
    /// Its wall time in milliseconds.
    pub duration_ms: u64,
    /// Its first reason, when it has one.
    pub reason: Option<String>,
}

/// Where a certification run reports its progress.
pub trait CertifyEvents: Sync {
    /// The run will have `cases` cases.
    fn planned(&self, cases: usize);
    /// A case finished.
    fn case_done(&self, case: &CaseEvent);
}

/// What [`Backend::verify_package`] found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PackageCheck {
    /// Files checked against the manifest.
    pub files: usize,
    /// One line per problem (tampered, missing, extra file); empty: intact.
    pub problems: Vec<String>,
    /// The key (hex) whose signature of the manifest holds, when signed.
    pub signed_by: Option<String>,
}

/// The certify crate's side of the console.
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// The profiles a certify request may name.
    fn profiles(&self) -> Result<Vec<ProfileInfo>, String>;
    /// Runs the suite as `req` asks, writing into `out` (created), calling `events` as
    /// cases finish; returns the run's report. Blocks until the run ends.
    fn certify(
        &self,
        req: &CertifyRequest,
        out: &Path,
        events: &dyn CertifyEvents,
    ) -> Result<reports::Report, String>;
    /// A run report from a JSON document that is not a `hvcert.report/v1` (a saved `hvcert
    /// probe --json`); `name` is for messages.
    fn probe_report(&self, text: &str, name: &str) -> Result<reports::Report, String>;
    /// A run report from a probe snapshot folder (`hvcert probe --capture DIR`: host.json
    /// and cpuid.txt), scored against the built-in supported-server list.
    fn probe_snapshot(&self, dir: &Path) -> Result<reports::Report, String>;
    /// Checks a package archive (`hvcert package`) against its manifest and signature.
    fn verify_package(&self, file: &Path) -> Result<PackageCheck, String>;
}

impl CertifyRequest {
    /// Checks the request against `profiles` (the server's) and the limits; the error
    /// names the field.
    pub fn validate(&self, profiles: &[ProfileInfo]) -> Result<(), String> {
        if self.profiles.len() > MAX_PROFILES {
            return Err(format!("profiles: at most {MAX_PROFILES}"));
        }
        if self.cases.len() > MAX_CASES {
            return Err(format!("cases: at most {MAX_CASES}"));
        }
        for p in &self.profiles {
            if !profiles.iter().any(|k| &k.name == p) {
                return Err(format!(
                    "profiles: no profile {p:?} (GET /api/profiles lists them)"
                ));
            }
        }
        let selected: Vec<&ProfileInfo> = profiles
            .iter()
            .filter(|k| self.profiles.is_empty() || self.profiles.contains(&k.name))
            .collect();
        for c in &self.cases {
            if !selected.iter().any(|p| p.cases.iter().any(|k| &k.id == c)) {
                return Err(format!("cases: no selected profile has case {c:?}"));
            }
        }
        if let Some(j) = self.jobs {
            if !(1..=MAX_JOBS).contains(&j) {
                return Err(format!("jobs {j} outside 1..={MAX_JOBS}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_checked_against_the_profiles() {
        let profiles = vec![ProfileInfo {
            name: "p".into(),
            description: String::new(),
            interface: "hyperv".into(),
            cases: vec![ProfileCase {
                id: "boot".into(),
                blocker: true,
            }],
        }];
        let ok = CertifyRequest {
            profiles: vec!["p".into()],
            cases: vec!["boot".into()],
            jobs: Some(2),
            ..Default::default()
        };
        assert_eq!(ok.validate(&profiles), Ok(()));
        let bad = |r: CertifyRequest| r.validate(&profiles).unwrap_err();
        assert!(bad(CertifyRequest {
            profiles: vec!["../etc/x.toml".into()],
            ..Default::default()
        })
        .starts_with("profiles: no profile"));
        assert!(bad(CertifyRequest {
            cases: vec!["nope".into()],
            ..Default::default()
        })
        .contains("\"nope\""));
        assert!(bad(CertifyRequest {
            jobs: Some(0),
            ..Default::default()
        })
        .contains("jobs 0"));
        assert!(serde_json::from_str::<CertifyRequest>(r#"{"out":"/tmp"}"#).is_err());
        assert!(
            serde_json::from_str::<CertifyRequest>("{}")
                .unwrap()
                .probe_host
        );
    }
}
