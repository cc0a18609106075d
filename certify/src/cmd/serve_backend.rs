//! The certify crate's side of `hvcert serve` ([`console::backend::Backend`]): the built-in
//! profiles, a certification run through the suite library in the console's worker
//! thread (its journal is followed to report each case as it finishes), probe documents
//! read as run reports, and package checks.
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use certify::{journal, package, probe_report, profile, suite};
use console::backend::{
    Backend, CaseEvent, CertifyEvents, CertifyRequest, PackageCheck, ProfileCase, ProfileInfo,
};

/// How often a running certification's journal is read for new cases.
const POLL: Duration = Duration::from_millis(200);

/// The backend of `hvcert serve`.
#[derive(Debug)]
pub struct CertifyBackend {
    /// The guest kernel the runs boot (None: the built-in one).
    pub guest: Option<PathBuf>,
}

impl Backend for CertifyBackend {
    fn profiles(&self) -> Result<Vec<ProfileInfo>, String> {
        let loaded = profile::select(None, &[]).map_err(|e| format!("{e:#}"))?;
        Ok(loaded
            .into_iter()
            .map(|p| ProfileInfo {
                name: p.profile.name.clone(),
                description: p.profile.description.clone(),
                interface: p.profile.interface.to_string(),
                cases: p
                    .profile
                    .cases
                    .iter()
                    .map(|c| ProfileCase {
                        id: c.id.clone(),
                        blocker: c.blocker,
                    })
                    .collect(),
            })
            .collect())
    }

    fn certify(
        &self,
        req: &CertifyRequest,
        out: &Path,
        events: &dyn CertifyEvents,
    ) -> Result<reports::Report, String> {
        let mut command_line = vec!["hvcert".to_string(), "certify".into()];
        for p in &req.profiles {
            command_line.extend(["--profile".into(), p.clone()]);
        }
        for c in &req.cases {
            command_line.extend(["--case".into(), c.clone()]);
        }
        if let Some(j) = req.jobs {
            command_line.extend(["--jobs".into(), j.to_string()]);
        }
        command_line.extend(["--out".into(), out.display().to_string()]);
        if !req.probe_host {
            command_line.push("--no-probe".into());
        }
        command_line.push("(started by hvcert serve)".into());
        let opts = suite::Options {
            profiles: req.profiles.clone(),
            cases: req.cases.clone(),
            jobs: req.jobs,
            out: out.to_path_buf(),
            seed: req.seed,
            profiles_dir: None,
            guest: self.guest.clone(),
            probe_host: req.probe_host,
            command_line,
        };
        let ended = AtomicBool::new(false);
        let finished = std::thread::scope(|s| {
            let follower = s.spawn(|| follow_journal(out, events, &ended));
            let r = suite::run(&opts, &mut std::io::sink(), false);
            ended.store(true, Ordering::SeqCst);
            let _ = follower.join();
            r
        })
        .map_err(|e| format!("{e:#}"))?;
        reports::load(&finished.report_path).map_err(|e| e.to_string())
    }

    fn probe_report(&self, text: &str, name: &str) -> Result<reports::Report, String> {
        let p: probe::ProbeReport = serde_json::from_str(text)
            .map_err(|e| format!("{name}: not a valid {}: {e}", probe::report::SCHEMA))?;
        let identity = reports::Identity::new(
            "probe",
            env!("CARGO_PKG_VERSION"),
            &reports::date::now_rfc3339(),
        );
        let req = probe_report::Requirements::for_saved(&p);
        let mut report = probe_report::to_report(&p, &req, identity, None);
        if let serde_json::Value::Object(c) = &mut report.identity.config {
            c.insert("converted_from".into(), name.into());
        }
        report
            .validate()
            .map_err(|m| format!("{name}: converted probe report is invalid: {m}"))?;
        Ok(report)
    }

    fn probe_snapshot(&self, dir: &Path) -> Result<reports::Report, String> {
        let raw = probe::collect(&[probe::HostSource::Snapshot(dir.to_path_buf())])
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        let lists = vec![probe::hcl::sample().map_err(|e| e.to_string())?];
        let report = probe::evaluate(&raw, &lists);
        Ok(probe_report::to_report(
            &report,
            &probe_report::Requirements::from_lists(&lists),
            probe_report::current_identity(),
            None,
        ))
    }

    fn verify_package(&self, file: &Path) -> Result<PackageCheck, String> {
        let v = package::verify(file, None).map_err(|e| format!("{e:#}"))?;
        Ok(PackageCheck {
            files: v.files,
            problems: v.problems,
            signed_by: v.signed_by,
        })
    }
}

/// Reports the cases the run's journal (OUT/journal.jsonl, appended as each case ends)
/// gains, until `ended` and one last read. Lines are read as plain JSON for the fields
/// shown here, not through `journal::load`, whose full case type cannot yet read back every
/// VM end (a `"reset"` end stops it: found here, reported to the lead).
fn follow_journal(out: &Path, events: &dyn CertifyEvents, ended: &AtomicBool) {
    let path = out.join(journal::FILE);
    let (mut planned, mut seen) = (false, 0usize);
    loop {
        let last = ended.load(Ordering::SeqCst);
        if let Ok(bytes) = std::fs::read(&path) {
            // Complete lines only: the last one may be half-written.
            let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            let mut lines = bytes[..complete]
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty());
            if let Some(head) = lines.next() {
                let head: serde_json::Value = serde_json::from_slice(head).unwrap_or_default();
                if !planned {
                    if let Some(cases) = head.pointer("/identity/cases").and_then(|c| c.as_array())
                    {
                        events.planned(cases.len());
                        planned = true;
                    }
                }
                for line in lines.skip(seen) {
                    seen += 1;
                    if let Some(c) = case_event(line) {
                        events.case_done(&c);
                    }
                }
            }
        }
        if last {
            return;
        }
        std::thread::sleep(POLL);
    }
}

/// The progress fields of one journal case line (`{"case": {...}}`).
fn case_event(line: &[u8]) -> Option<CaseEvent> {
    let v: serde_json::Value = serde_json::from_slice(line).ok()?;
    let c = v.get("case")?;
    let s = |k: &str| c.get(k).and_then(|x| x.as_str()).map(str::to_string);
    Some(CaseEvent {
        suite: s("profile")?,
        id: s("id")?,
        outcome: s("outcome")?,
        blocker: c.get("blocker").and_then(|b| b.as_bool()).unwrap_or(false),
        duration_ms: c.get("duration_ms").and_then(|d| d.as_u64()).unwrap_or(0),
        reason: c
            .get("reasons")
            .and_then(|r| r.get(0))
            .and_then(|r| r.as_str())
            .map(str::to_string),
    })
}
