//! The crash-safe journal of a certification run (OUT/journal.jsonl), which
//! `hvcert certify --resume OUT` reads to rerun only the cases that did not finish.
//!
//! Line 1 is the head: the run's identity (binary version and build revision, profile
//! hashes, guest ELF hash, seed, selected cases), the options to run it again, and the
//! host facts recorded when it started. Every later line is one finished case
//! ([`CaseResult`]), appended and flushed to the disk (fdatasync) before the console
//! reports the case. The head is written to a temporary file, synced and renamed into
//! place, so a journal either has a complete head or does not exist.
//!
//! Reading it back: a last line without its newline was cut by the crash and is dropped
//! (its case reruns); any other line that does not parse is an error naming file:line.
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::runner::CaseResult;

/// File name of the journal in the output directory.
pub const FILE: &str = "journal.jsonl";

/// The `schema` of a journal's head.
pub const SCHEMA: &str = "hvcert.certify-journal/v1";

/// One profile as the run loaded it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileId {
    /// The profile's name.
    pub name: String,
    /// SHA-256 of the profile's bytes, hex.
    pub sha256: String,
}

/// What must be the same for a resumed run to be the same run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Version of the `hvcert` that ran.
    pub hvcert_version: String,
    /// Git revision it was built from.
    pub git_revision: String,
    /// The selected profiles, in run order.
    pub profiles: Vec<ProfileId>,
    /// SHA-256 of the guest kernel, hex.
    pub guest_elf_sha256: String,
    /// The run seed.
    pub seed: u64,
    /// `PROFILE/CASE` of every job of the run, in run order.
    pub cases: Vec<String>,
}

/// The options a resumed run is run again with (those of the first invocation).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOptions {
    /// `--profile` values.
    pub profiles: Vec<String>,
    /// `--case` values.
    pub cases: Vec<String>,
    /// `--profiles-dir`.
    pub profiles_dir: Option<PathBuf>,
    /// `--guest`.
    pub guest: Option<PathBuf>,
    /// VMs at the same time.
    pub jobs: usize,
    /// The host was probed.
    pub probe_host: bool,
    /// The first invocation's command line.
    pub command_line: Vec<String>,
}

/// Line 1 of the journal.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Head {
    /// [`SCHEMA`].
    pub schema: String,
    /// The run's identity.
    pub identity: Identity,
    /// How the run was started.
    pub options: RunOptions,
    /// When the run started (RFC 3339, UTC).
    pub started: String,
    /// The host's probe report recorded at the start, if probed.
    pub host: Option<serde_json::Value>,
}

/// A finished-case line.
#[derive(Serialize, Deserialize)]
struct CaseLine {
    case: CaseResult,
}

/// A journal read back.
#[derive(Debug)]
pub struct Loaded {
    /// Its head.
    pub head: Head,
    /// The finished cases, in the order they finished (a case journaled twice: the last).
    pub cases: Vec<CaseResult>,
    /// Length of the complete lines; anything after it was cut by a crash.
    pub valid_len: u64,
    /// A half-written last line was dropped.
    pub dropped_tail: bool,
}

/// What differs between the identity a journal recorded and the current one, one phrase
/// per difference (empty: the same run).
pub fn differences(journal: &Identity, now: &Identity) -> Vec<String> {
    let mut out = Vec::new();
    let field = |out: &mut Vec<String>, what: &str, a: String, b: String| {
        if a != b {
            out.push(format!("{what}: journal {a}, now {b}"));
        }
    };
    field(
        &mut out,
        "hvcert version",
        journal.hvcert_version.clone(),
        now.hvcert_version.clone(),
    );
    field(
        &mut out,
        "build revision",
        journal.git_revision.clone(),
        now.git_revision.clone(),
    );
    let show = |p: &[ProfileId]| {
        p.iter()
            .map(|p| format!("{} sha256 {}", p.name, p.sha256))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if journal.profiles != now.profiles {
        for (a, b) in journal.profiles.iter().zip(&now.profiles) {
            if a.name == b.name && a.sha256 != b.sha256 {
                out.push(format!(
                    "profile {}: journal sha256 {}, now {}",
                    a.name, a.sha256, b.sha256
                ));
            }
        }
        if journal.profiles.len() != now.profiles.len()
            || journal
                .profiles
                .iter()
                .zip(&now.profiles)
                .any(|(a, b)| a.name != b.name)
        {
            out.push(format!(
                "profiles: journal [{}], now [{}]",
                show(&journal.profiles),
                show(&now.profiles)
            ));
        }
    }
    field(
        &mut out,
        "guest ELF sha256",
        journal.guest_elf_sha256.clone(),
        now.guest_elf_sha256.clone(),
    );
    field(
        &mut out,
        "seed",
        journal.seed.to_string(),
        now.seed.to_string(),
    );
    if journal.cases != now.cases {
        out.push(format!(
            "selected cases: journal {} case(s), now {}",
            journal.cases.len(),
            now.cases.len()
        ));
    }
    out
}

/// Reads a journal. Errors: no journal, no complete head, a head of another schema, or a
/// complete line that does not parse (named as file:line).
pub fn load(path: &Path) -> anyhow::Result<Loaded> {
    let bytes = std::fs::read(path).with_context(|| {
        format!(
            "{}: no journal to resume (was the run started by this version of hvcert?)",
            path.display()
        )
    })?;
    let mut offset = 0usize;
    let mut head: Option<Head> = None;
    let mut cases: Vec<CaseResult> = Vec::new();
    let mut line_no = 0usize;
    let mut dropped_tail = false;
    while offset < bytes.len() {
        line_no += 1;
        let Some(nl) = bytes[offset..].iter().position(|&b| b == b'\n') else {
            // Cut by the crash: the case it held reruns.
            dropped_tail = true;
            break;
        };
        let line = &bytes[offset..offset + nl];
        let at = || format!("{}:{line_no}", path.display());
        if head.is_none() {
            let value: serde_json::Value = serde_json::from_slice(line)
                .with_context(|| format!("{}: not a journal head", at()))?;
            match value.get("schema").and_then(|s| s.as_str()) {
                Some(SCHEMA) => {}
                other => anyhow::bail!(
                    "{}: journal schema {:?}, this hvcert reads {SCHEMA:?}",
                    at(),
                    other.unwrap_or("(none)")
                ),
            }
            head = Some(
                serde_json::from_value(value)
                    .with_context(|| format!("{}: not a journal head", at()))?,
            );
        } else {
            let c: CaseLine = serde_json::from_slice(line)
                .with_context(|| format!("{}: corrupt journal line", at()))?;
            cases.retain(|x| !(x.profile == c.case.profile && x.id == c.case.id));
            cases.push(c.case);
        }
        offset += nl + 1;
    }
    let Some(head) = head else {
        anyhow::bail!(
            "{}: the journal has no complete head; nothing to resume",
            path.display()
        );
    };
    Ok(Loaded {
        head,
        cases,
        valid_len: offset as u64,
        dropped_tail,
    })
}

/// The journal being written, shared by the runner's worker threads.
pub struct Journal {
    path: PathBuf,
    file: Mutex<File>,
}

impl Journal {
    /// Starts the journal of a new run in `dir`, replacing any earlier one.
    pub fn create(dir: &Path, head: &Head) -> anyhow::Result<Journal> {
        let path = dir.join(FILE);
        let tmp = dir.join(format!("{FILE}.tmp"));
        let mut line = serde_json::to_vec(head).context("serializing the journal head")?;
        line.push(b'\n');
        let written = File::create(&tmp).and_then(|mut f| {
            f.write_all(&line)?;
            f.sync_all()
        });
        written.with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("creating {}", path.display()))?;
        // The rename itself is durable once the directory is.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Self::open(path, line.len() as u64)
    }

    /// Reopens a journal to append to it, first cutting any half-written last line
    /// (`valid_len`, from [`load`]).
    pub fn reopen(path: &Path, valid_len: u64) -> anyhow::Result<Journal> {
        Self::open(path.to_path_buf(), valid_len)
    }

    fn open(path: PathBuf, valid_len: u64) -> anyhow::Result<Journal> {
        // O_APPEND: every line goes at the end, after the cut-off tail is truncated away.
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|f| {
                f.set_len(valid_len)?;
                f.sync_data()?;
                Ok(f)
            })
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(Journal {
            path,
            file: Mutex::new(file),
        })
    }

    /// Where the journal is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends a finished case as one line and flushes it to the disk.
    pub fn append(&self, case: &CaseResult) -> anyhow::Result<()> {
        let mut line = serde_json::to_vec(&CaseLine { case: case.clone() })?;
        line.push(b'\n');
        let mut f = self
            .file
            .lock()
            .map_err(|_| anyhow::anyhow!("journal lock poisoned"))?;
        f.write_all(&line)
            .and_then(|_| f.sync_data())
            .with_context(|| format!("appending to {}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head() -> Head {
        Head {
            schema: SCHEMA.into(),
            identity: Identity {
                hvcert_version: "0.1.0".into(),
                git_revision: "abc".into(),
                profiles: vec![ProfileId {
                    name: "p".into(),
                    sha256: "11".into(),
                }],
                guest_elf_sha256: "22".into(),
                seed: 7,
                cases: vec!["p/a".into(), "p/b".into()],
            },
            options: RunOptions {
                profiles: vec!["p".into()],
                cases: Vec::new(),
                profiles_dir: None,
                guest: None,
                jobs: 1,
                probe_host: false,
                command_line: vec!["hvcert".into()],
            },
            started: "2026-01-01T00:00:00Z".into(),
            host: None,
        }
    }

    fn case(id: &str) -> CaseResult {
        let v = serde_json::json!({
            "profile": "p", "id": id, "outcome": "pass", "blocker": true, "duration_ms": 3,
            "reasons": ["r"], "cmdline": "c", "guest_cmdline": null, "seed": 9,
            "vm_end": {"crash": {"reason": "triple fault; RIP=1"}},
            "hypercalls": {"x": 1}, "xen_trace": [], "ring0_share": 0.25,
            "guest_timing": null, "diagnostics": [], "log_file": null, "log_excerpt": "",
        });
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn appended_cases_read_back_and_a_cut_tail_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::create(dir.path(), &head()).unwrap();
        j.append(&case("a")).unwrap();
        let path = j.path().to_path_buf();
        drop(j);
        let l = load(&path).unwrap();
        assert_eq!(l.head.identity, head().identity);
        assert_eq!(l.cases.len(), 1);
        assert!(!l.dropped_tail);
        // The case serializes back to the same JSON (the crash reason included).
        assert_eq!(
            serde_json::to_value(&l.cases[0]).unwrap(),
            serde_json::to_value(case("a")).unwrap()
        );
        // Half of a second case line: dropped, and reopening cuts it off.
        let full = std::fs::read(&path).unwrap();
        let mut line = serde_json::to_vec(&CaseLine { case: case("b") }).unwrap();
        line.truncate(line.len() / 2);
        std::fs::write(&path, [full.clone(), line].concat()).unwrap();
        let l = load(&path).unwrap();
        assert_eq!((l.cases.len(), l.dropped_tail), (1, true));
        assert_eq!(l.valid_len, full.len() as u64);
        let j = Journal::reopen(&path, l.valid_len).unwrap();
        j.append(&case("b")).unwrap();
        let l = load(&path).unwrap();
        assert_eq!((l.cases.len(), l.dropped_tail), (2, false));
    }

    #[test]
    fn a_corrupt_middle_line_is_named_by_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::create(dir.path(), &head()).unwrap();
        j.append(&case("a")).unwrap();
        let path = j.path().to_path_buf();
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"case\": garbage}\n");
        text.push_str(&serde_json::to_string(&CaseLine { case: case("b") }).unwrap());
        text.push('\n');
        std::fs::write(&path, text).unwrap();
        let e = format!("{:#}", load(&path).unwrap_err());
        assert!(e.contains(&format!("{}:3: corrupt", path.display())), "{e}");
        // A journal without its head, or of another schema, is refused too.
        std::fs::write(&path, "{\"schema\": \"x\"}\n").unwrap();
        let e = format!("{:#}", load(&path).unwrap_err());
        assert!(e.contains(":1: journal schema \"x\""), "{e}");
        std::fs::write(&path, "{\"schema\"").unwrap();
        let e = format!("{:#}", load(&path).unwrap_err());
        assert!(e.contains("no complete head"), "{e}");
    }

    #[test]
    fn differences_name_what_changed() {
        let a = head().identity;
        assert!(differences(&a, &a).is_empty());
        let mut b = a.clone();
        b.git_revision = "def".into();
        b.profiles[0].sha256 = "33".into();
        let d = differences(&a, &b);
        assert_eq!(
            d,
            vec![
                "build revision: journal abc, now def".to_string(),
                "profile p: journal sha256 11, now 33".to_string(),
            ]
        );
        let mut c = a.clone();
        c.seed = 8;
        c.cases.pop();
        let d = differences(&a, &c).join("; ");
        assert!(d.contains("seed: journal 7, now 8"), "{d}");
        assert!(
            d.contains("selected cases: journal 2 case(s), now 1"),
            "{d}"
        );
    }
}
