//! The certify crate's side of `hvcert serve` ([`console::backend::Backend`]): the built-in
//! profiles, a certification run (`hvcert certify`, this very binary, as a child process
//! with an argument vector, never a shell, so that a cancel can end it and its VMs at
//! once; its journal is followed to report each case as it finishes, and `--resume`
//! finishes it later), probe documents read as run reports, and package checks.
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use certify::{journal, package, probe_report, profile};
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
        let mut args: Vec<std::ffi::OsString> = vec!["certify".into()];
        for p in &req.profiles {
            args.extend(["--profile".into(), p.into()]);
        }
        for c in &req.cases {
            args.extend(["--case".into(), c.into()]);
        }
        if let Some(j) = req.jobs {
            args.extend(["--jobs".into(), j.to_string().into()]);
        }
        if let Some(s) = req.seed {
            args.extend(["--seed".into(), s.to_string().into()]);
        }
        if let Some(g) = &self.guest {
            args.extend(["--guest".into(), g.into()]);
        }
        if !req.probe_host {
            args.push("--no-probe".into());
        }
        args.extend(["--out".into(), out.into()]);
        std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
        run_certify(&args, out, events)
    }

    fn resume(
        &self,
        out: &Path,
        jobs: Option<usize>,
        events: &dyn CertifyEvents,
    ) -> Result<reports::Report, String> {
        let mut args: Vec<std::ffi::OsString> = vec!["certify".into(), "--resume".into()];
        args.push(out.into());
        if let Some(j) = jobs {
            args.extend(["--jobs".into(), j.to_string().into()]);
        }
        run_certify(&args, out, events)
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

/// Where the child's stderr (its progress and any setup error) goes, in the run's folder.
const STDERR_LOG: &str = "certify.stderr.log";

/// Runs `hvcert ARGS` (a certify run writing into `out`), reporting the journal's new cases
/// to `events` and killing it when `events` is cancelled; the run's report when it ended
/// with one (exit 0, or 1: a blocker failed).
fn run_certify(
    args: &[std::ffi::OsString],
    out: &Path,
    events: &dyn CertifyEvents,
) -> Result<reports::Report, String> {
    let exe = std::env::current_exe().map_err(|e| format!("this binary: {e}"))?;
    let log = std::fs::File::create(out.join(STDERR_LOG))
        .map_err(|e| format!("{}: {e}", out.display()))?;
    // Cases already journaled (a resumed run) were reported when they finished.
    let already = journal_cases(out);
    let mut child = Command::new(exe)
        .args(args)
        // The child ends with this server, even on SIGKILL (see `die_with_parent` in main.rs;
        // the kernel ties it to this thread, which waits for the child below).
        .env("HVCERT_PARENT_PID", std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start hvcert certify: {e}"))?;
    let ended = AtomicBool::new(false);
    let status = std::thread::scope(|s| {
        let follower = s.spawn(|| follow_journal(out, events, &ended, already));
        let status = loop {
            match child.try_wait() {
                Ok(Some(st)) => break Ok(st),
                Ok(None) if events.cancelled() => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Err("cancelled".to_string());
                }
                Ok(None) => std::thread::sleep(POLL),
                Err(e) => break Err(format!("waiting for hvcert certify: {e}")),
            }
        };
        ended.store(true, Ordering::SeqCst);
        let _ = follower.join();
        status
    })?;
    if !matches!(status.code(), Some(0 | 1)) {
        let text = std::fs::read_to_string(out.join(STDERR_LOG)).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(3).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!(
            "hvcert certify ended with {status}: {}",
            tail.join(" / ")
        ));
    }
    reports::load(out.join("report.json")).map_err(|e| e.to_string())
}

/// Case lines already in OUT's journal.
fn journal_cases(out: &Path) -> usize {
    std::fs::read(out.join(journal::FILE)).map_or(0, |b| {
        let complete = b.iter().rposition(|&c| c == b'\n').map_or(0, |i| i + 1);
        b[..complete]
            .split(|&c| c == b'\n')
            .filter(|l| !l.is_empty())
            .count()
            .saturating_sub(1)
    })
}

/// Reports the cases the run's journal (OUT/journal.jsonl, appended as each case ends)
/// gains, until `ended` and one last read. Lines are read as plain JSON for the fields
/// shown here, not through `journal::load`, whose full case type cannot yet read back every
/// VM end (a `"reset"` end stops it: found here, reported to the lead).
/// The first `skip` case lines are not reported (a resumed run's earlier cases).
fn follow_journal(out: &Path, events: &dyn CertifyEvents, ended: &AtomicBool, skip: usize) {
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
                    if seen <= skip {
                        continue;
                    }
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
