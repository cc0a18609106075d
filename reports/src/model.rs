//! The report model: one run of `hvcert probe` or `hvcert certify`, serialized as JSON with
//! `"schema": "hvcert.report/v1"`.
//!
//! The model is built with [`Report::new`], [`Report::add_case`] (or [`Report::suite_mut`])
//! and the `Case`/`Measurement` constructors; [`Report::refresh_summary`] recomputes the
//! verdict from the cases (the renderers and [`crate::load`] always do that, so a stale
//! `summary` in a file never wins over its cases).
use serde::{Deserialize, Serialize};
use std::time::Duration;

use crate::date;

/// The schema written by this crate and the only one it reads.
pub const SCHEMA: &str = "hvcert.report/v1";

/// Longest log excerpt kept by [`Case::log`]: the tail of the log, at most this many lines…
pub const LOG_EXCERPT_MAX_LINES: usize = 60;
/// …and at most this many bytes.
pub const LOG_EXCERPT_MAX_BYTES: usize = 8 * 1024;

/// One run: who produced it, on what, and the results per suite (profile).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// Who produced the run, on what, how.
    pub identity: Identity,
    /// Derived from the cases; see [`Report::refresh_summary`].
    #[serde(default)]
    pub summary: Summary,
    /// Results, one suite per profile (or probe check group).
    #[serde(default)]
    pub suites: Vec<Suite>,
    /// Waivers that matched this run but had expired, so were not applied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expired_waivers: Vec<WaiverNote>,
    /// The verdict in the producing command's own words, when it has its own (a probe's
    /// `untested (score 44/100)`): every renderer shows it as the run's verdict, in place
    /// of the verdict derived from the cases ([`Report::verdict_words`]). `None` for
    /// certify runs, whose verdict is the cases'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict_label: Option<String>,
    /// Wall time of the whole run, when the producer measured it. Cases may run in
    /// parallel, so it differs from [`Summary::duration_ms`], the cases' summed time; the
    /// renderers show both, each named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_ms: Option<u64>,
}

/// Run identity: enough to reproduce the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// The subcommand that produced the report: "certify", "probe", ...
    pub command: String,
    /// hvcert version (the `CARGO_PKG_VERSION` of the binary).
    pub version: String,
    /// Git revision `hvcert` was built from, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_revision: Option<String>,
    /// RFC 3339 UTC date of the run, e.g. "2026-11-25T14:57:18Z".
    pub date: String,
    /// The process's command line.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command_line: Vec<String>,
    /// Host facts (the probe's JSON), opaque to this crate.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub host: serde_json::Value,
    /// Run configuration (profiles, seeds, ...), opaque to this crate.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub config: serde_json::Value,
}

/// A profile (or a group of probe checks) and its cases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    /// The profile's (or check group's) name, unique in the report.
    pub name: String,
    /// One line on what the suite is.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Per-suite configuration (e.g. the guest profile), opaque to this crate.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub config: serde_json::Value,
    /// The cases, in run order.
    #[serde(default)]
    pub cases: Vec<Case>,
}

/// One test case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// The case's id, unique in its suite.
    pub id: String,
    /// How the case ended.
    pub outcome: Outcome,
    /// Declared blocker: a failure fails the run unless a waiver applies.
    pub blocker: bool,
    /// How long the case took.
    #[serde(default)]
    pub duration_ms: u64,
    /// The tail of the case's log ([`Case::log`]).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub log_excerpt: String,
    /// Figures measured by the case.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measurements: Vec<Measurement>,
    /// Why the case ended as it did (failed assertions, crash reason, skip reason, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    /// The waiver that made this blocker case a non-blocker for this run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiver: Option<AppliedWaiver>,
}

/// How a case ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It ran and met every expectation.
    Pass,
    /// It ran and an expectation failed.
    Fail,
    /// It ran and decided it does not apply (e.g. a feature the host lacks).
    Skip,
    /// The guest (or the check) broke: an exception, a triple fault, a panic.
    Crash,
    /// It did not finish in time.
    Timeout,
    /// It was not run (known not runnable yet). Spelled "not run" for people and
    /// `not_run` in JSON.
    NotRun,
}

impl Outcome {
    /// Every outcome, in report order.
    pub const ALL: [Outcome; 6] = [
        Outcome::Pass,
        Outcome::Fail,
        Outcome::Skip,
        Outcome::Crash,
        Outcome::Timeout,
        Outcome::NotRun,
    ];

    /// Fail, crash, timeout and not-run count against a blocker; pass and skip do not.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            Outcome::Fail | Outcome::Crash | Outcome::Timeout | Outcome::NotRun
        )
    }

    /// How the outcome is written for people ("not run" with a space).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Skip => "skip",
            Outcome::Crash => "crash",
            Outcome::Timeout => "timeout",
            Outcome::NotRun => "not run",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which way a figure should move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Smaller values are better (latencies, durations).
    LowerIsBetter,
    /// Larger values are better (throughput).
    HigherIsBetter,
    /// Recorded, never gated.
    Info,
}

impl Direction {
    /// How the direction is written for people.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::LowerIsBetter => "lower is better",
            Direction::HigherIsBetter => "higher is better",
            Direction::Info => "informational",
        }
    }
}

/// A figure measured by a case (e.g. the hypercall round trip in µs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Measurement {
    /// The figure's name, unique in its case.
    pub name: String,
    /// The value, in `unit`.
    pub value: f64,
    /// The unit, e.g. "µs".
    pub unit: String,
    /// Which way is better, and whether the gate compares it.
    pub direction: Direction,
    /// Allowed worsening in percent for the gate; when absent the gate's `--tolerance`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance_pct: Option<f64>,
}

/// A waiver as applied to one case (copied from the waivers file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppliedWaiver {
    /// The case-id pattern that matched.
    pub pattern: String,
    /// Why the case is waived.
    pub reason: String,
    /// "YYYY-MM-DD", last day the waiver applies.
    pub expires: String,
}

/// A waiver that was not applied because it had expired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaiverNote {
    /// The case-id pattern of the waiver.
    pub pattern: String,
    /// The suite pattern ("*" or empty: any suite).
    #[serde(default, skip_serializing_if = "is_star")]
    pub suite: String,
    /// Why the case was to be waived.
    pub reason: String,
    /// "YYYY-MM-DD", the last day the waiver applied.
    pub expires: String,
    /// "suite/case" of the cases it would have waived.
    #[serde(default)]
    pub matched: Vec<String>,
}

fn is_star(s: &str) -> bool {
    s == "*" || s.is_empty()
}

/// Counts and the overall verdict, derived from the cases.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    /// The overall verdict.
    pub verdict: Verdict,
    /// Cases in the run.
    pub total: usize,
    /// Cases that passed.
    pub pass: usize,
    /// Cases that failed.
    pub fail: usize,
    /// Cases skipped.
    pub skip: usize,
    /// Cases that crashed.
    pub crash: usize,
    /// Cases that timed out.
    pub timeout: usize,
    /// Cases that did not run.
    pub not_run: usize,
    /// Failing (fail/crash/timeout/not run) blocker cases without a waiver.
    pub blocker_failures: usize,
    /// Failing non-blocker cases (declared non-blocker, not waived).
    pub non_blocker_failures: usize,
    /// Failing blocker cases covered by a waiver.
    pub waived_failures: usize,
    /// Sum of the cases' durations (not the run's wall time: cases may run in parallel;
    /// see [`Report::wall_ms`]).
    pub duration_ms: u64,
}

impl Summary {
    /// How many cases ended with `o`.
    pub fn count(&self, o: Outcome) -> usize {
        match o {
            Outcome::Pass => self.pass,
            Outcome::Fail => self.fail,
            Outcome::Skip => self.skip,
            Outcome::Crash => self.crash,
            Outcome::Timeout => self.timeout,
            Outcome::NotRun => self.not_run,
        }
    }

    /// "12 cases: 9 pass, 1 fail, 2 skip" (only non-zero outcomes).
    pub fn counts_line(&self) -> String {
        let parts: Vec<String> = Outcome::ALL
            .iter()
            .filter(|o| self.count(**o) > 0)
            .map(|o| format!("{} {}", self.count(*o), o))
            .collect();
        let noun = if self.total == 1 { "case" } else { "cases" };
        if parts.is_empty() {
            format!("{} {noun}", self.total)
        } else {
            format!("{} {noun}: {}", self.total, parts.join(", "))
        }
    }
}

/// Overall verdict of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every blocker passed and nothing failed.
    Pass,
    /// Every blocker passed, but a non-blocker failed, a failure was waived, or a case was
    /// skipped.
    PassWithWarnings,
    /// A blocker case failed, crashed, timed out or did not run.
    Fail,
    /// No case ran (none at all, or all skipped / not run without a blocker).
    #[default]
    NoResults,
}

impl Verdict {
    /// Upper-case label shown first in every rendering.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::PassWithWarnings => "PASS WITH WARNINGS",
            Verdict::Fail => "FAIL",
            Verdict::NoResults => "NO RESULTS",
        }
    }

    /// CSS class / machine-friendly name.
    pub fn slug(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::PassWithWarnings => "warn",
            Verdict::Fail => "fail",
            Verdict::NoResults => "none",
        }
    }
}

impl Report {
    /// The verdict as every rendering shows it: [`Report::verdict_label`] when the
    /// producing command set one, else the case-derived [`Verdict::label`].
    pub fn verdict_words(&self) -> &str {
        self.verdict_label
            .as_deref()
            .unwrap_or_else(|| self.summary.verdict.label())
    }

    /// A suite's verdict as the renderers show it: the report's own words
    /// ([`Report::verdict_label`]) when the report has them and this is its only suite
    /// (a probe's), else the verdict derived from the suite's cases.
    pub fn suite_verdict_words(&self, suite: &Suite) -> &str {
        match (&self.verdict_label, self.suites.len()) {
            (Some(words), 1) => words,
            _ => suite.summary().verdict.label(),
        }
    }

    /// An empty report for a run with this identity.
    pub fn new(identity: Identity) -> Self {
        let mut r = Report {
            schema: SCHEMA.to_string(),
            identity,
            summary: Summary::default(),
            suites: Vec::new(),
            expired_waivers: Vec::new(),
            verdict_label: None,
            wall_ms: None,
        };
        r.refresh_summary();
        r
    }

    /// The suite named `name`, created (empty, at the end) if absent.
    pub fn suite_mut(&mut self, name: &str) -> &mut Suite {
        let idx = match self.suites.iter().position(|s| s.name == name) {
            Some(i) => i,
            None => {
                self.suites.push(Suite::new(name));
                self.suites.len() - 1
            }
        };
        &mut self.suites[idx]
    }

    /// Adds `case` to suite `suite` (created if absent) and refreshes the summary.
    pub fn add_case(&mut self, suite: &str, case: Case) -> &mut Self {
        self.suite_mut(suite).cases.push(case);
        self.refresh_summary();
        self
    }

    /// Every case with its suite name, in report order.
    pub fn cases(&self) -> impl Iterator<Item = (&Suite, &Case)> {
        self.suites
            .iter()
            .flat_map(|s| s.cases.iter().map(move |c| (s, c)))
    }

    /// Finds a case by suite name and case id.
    pub fn case(&self, suite: &str, id: &str) -> Option<&Case> {
        self.suites
            .iter()
            .find(|s| s.name == suite)
            .and_then(|s| s.cases.iter().find(|c| c.id == id))
    }

    /// Recomputes [`Report::summary`] from the cases.
    pub fn refresh_summary(&mut self) {
        self.summary = Summary::of(self.suites.iter().flat_map(|s| s.cases.iter()));
    }

    /// Checks what serde cannot: unique case ids per suite, unique suite names, finite
    /// figures. Returns a message naming the offending entry.
    pub fn validate(&self) -> Result<(), String> {
        let mut suites = std::collections::BTreeSet::new();
        for s in &self.suites {
            if s.name.is_empty() {
                return Err("a suite has an empty name".into());
            }
            if !suites.insert(s.name.as_str()) {
                return Err(format!("suite {:?} appears twice", s.name));
            }
            let mut ids = std::collections::BTreeSet::new();
            for c in &s.cases {
                if c.id.is_empty() {
                    return Err(format!("suite {:?} has a case with an empty id", s.name));
                }
                if !ids.insert(c.id.as_str()) {
                    return Err(format!("suite {:?}: case {:?} appears twice", s.name, c.id));
                }
                for m in &c.measurements {
                    if !m.value.is_finite() {
                        return Err(format!(
                            "{}/{}: measurement {:?} is not a finite number",
                            s.name, c.id, m.name
                        ));
                    }
                    if let Some(t) = m.tolerance_pct {
                        if !(t.is_finite() && t >= 0.0) {
                            return Err(format!(
                                "{}/{}: measurement {:?} has a negative or non-finite tolerance_pct",
                                s.name, c.id, m.name
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

impl Summary {
    /// Summary of a set of cases.
    pub fn of<'a>(cases: impl Iterator<Item = &'a Case>) -> Summary {
        let mut s = Summary::default();
        for c in cases {
            s.total += 1;
            s.duration_ms = s.duration_ms.saturating_add(c.duration_ms);
            match c.outcome {
                Outcome::Pass => s.pass += 1,
                Outcome::Fail => s.fail += 1,
                Outcome::Skip => s.skip += 1,
                Outcome::Crash => s.crash += 1,
                Outcome::Timeout => s.timeout += 1,
                Outcome::NotRun => s.not_run += 1,
            }
            if c.outcome.is_failure() {
                if c.is_waived() {
                    s.waived_failures += 1;
                } else if c.blocker {
                    s.blocker_failures += 1;
                } else {
                    s.non_blocker_failures += 1;
                }
            }
        }
        s.verdict = if s.blocker_failures > 0 {
            Verdict::Fail
        } else if s.pass + s.fail + s.crash + s.timeout == 0 && s.not_run + s.skip == s.total {
            // Nothing executed: no blocker failed only because nothing ran.
            if s.total > 0 && s.non_blocker_failures + s.waived_failures > 0 {
                Verdict::PassWithWarnings
            } else {
                Verdict::NoResults
            }
        } else if s.non_blocker_failures + s.waived_failures + s.skip > 0 {
            Verdict::PassWithWarnings
        } else {
            Verdict::Pass
        };
        s
    }
}

impl Identity {
    /// Identity of a run of `hvcert <command>` started now, with the process's command line.
    pub fn current(command: &str, version: &str) -> Self {
        Identity {
            command: command.to_string(),
            version: version.to_string(),
            git_revision: None,
            date: date::now_rfc3339(),
            command_line: std::env::args().collect(),
            host: serde_json::Value::Null,
            config: serde_json::Value::Null,
        }
    }

    /// Identity with everything given (for tests and tools replaying a run).
    pub fn new(command: &str, version: &str, date: &str) -> Self {
        Identity {
            command: command.to_string(),
            version: version.to_string(),
            git_revision: None,
            date: date.to_string(),
            command_line: Vec::new(),
            host: serde_json::Value::Null,
            config: serde_json::Value::Null,
        }
    }

    /// Records the git revision the binary was built from.
    pub fn with_git_revision(mut self, rev: impl Into<String>) -> Self {
        self.git_revision = Some(rev.into());
        self
    }

    /// Host facts, e.g. `serde_json::to_value(&probe_report)?`.
    pub fn with_host(mut self, host: serde_json::Value) -> Self {
        self.host = host;
        self
    }

    /// Records the run configuration (opaque to this crate).
    pub fn with_config(mut self, config: serde_json::Value) -> Self {
        self.config = config;
        self
    }

    /// Records the process's command line.
    pub fn with_command_line<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.command_line = args.into_iter().map(Into::into).collect();
        self
    }
}

impl Suite {
    /// An empty suite named `name`.
    pub fn new(name: &str) -> Self {
        Suite {
            name: name.to_string(),
            description: String::new(),
            config: serde_json::Value::Null,
            cases: Vec::new(),
        }
    }

    /// Counts and verdict of this suite alone.
    pub fn summary(&self) -> Summary {
        Summary::of(self.cases.iter())
    }
}

impl Case {
    /// A blocker case with this outcome (use [`Case::non_blocker`] to relax it).
    pub fn new(id: impl Into<String>, outcome: Outcome) -> Self {
        Case {
            id: id.into(),
            outcome,
            blocker: true,
            duration_ms: 0,
            log_excerpt: String::new(),
            measurements: Vec::new(),
            reasons: Vec::new(),
            waiver: None,
        }
    }

    /// Makes the case a non-blocker: its failure does not fail the run.
    pub fn non_blocker(mut self) -> Self {
        self.blocker = false;
        self
    }

    /// Sets whether the case is a blocker.
    pub fn blocker(mut self, blocker: bool) -> Self {
        self.blocker = blocker;
        self
    }

    /// Sets the duration (saturating at `u64::MAX` ms).
    pub fn duration(mut self, d: Duration) -> Self {
        self.duration_ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        self
    }

    /// Sets the duration in milliseconds.
    pub fn duration_ms(mut self, ms: u64) -> Self {
        self.duration_ms = ms;
        self
    }

    /// Keeps the tail of `log` (at most [`LOG_EXCERPT_MAX_LINES`] lines and
    /// [`LOG_EXCERPT_MAX_BYTES`] bytes), which is where a failure usually shows.
    pub fn log(mut self, log: &str) -> Self {
        self.log_excerpt = excerpt(log);
        self
    }

    /// Adds a reason (why the case ended as it did).
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reasons.push(reason.into());
        self
    }

    /// Adds a measured figure.
    pub fn measurement(mut self, m: Measurement) -> Self {
        self.measurements.push(m);
        self
    }

    /// True when a waiver covers this case (it then counts as a non-blocker).
    pub fn is_waived(&self) -> bool {
        self.waiver.is_some()
    }

    /// Blocker for this run: declared blocker and not waived.
    pub fn is_effective_blocker(&self) -> bool {
        self.blocker && self.waiver.is_none()
    }

    /// The figure named `name`, if the case measured it.
    pub fn measurement_named(&self, name: &str) -> Option<&Measurement> {
        self.measurements.iter().find(|m| m.name == name)
    }
}

impl Measurement {
    /// A figure with the given direction and no tolerance of its own.
    pub fn new(
        name: impl Into<String>,
        value: f64,
        unit: impl Into<String>,
        direction: Direction,
    ) -> Self {
        Measurement {
            name: name.into(),
            value,
            unit: unit.into(),
            direction,
            tolerance_pct: None,
        }
    }

    /// A figure where smaller is better.
    pub fn lower_is_better(name: impl Into<String>, value: f64, unit: impl Into<String>) -> Self {
        Self::new(name, value, unit, Direction::LowerIsBetter)
    }

    /// A figure where larger is better.
    pub fn higher_is_better(name: impl Into<String>, value: f64, unit: impl Into<String>) -> Self {
        Self::new(name, value, unit, Direction::HigherIsBetter)
    }

    /// A figure that is recorded and never gated.
    pub fn info(name: impl Into<String>, value: f64, unit: impl Into<String>) -> Self {
        Self::new(name, value, unit, Direction::Info)
    }

    /// Per-figure gate tolerance in percent (overrides the gate's default).
    pub fn tolerance_pct(mut self, pct: f64) -> Self {
        self.tolerance_pct = Some(pct);
        self
    }

    /// "1.25 µs" with a compact number format.
    pub fn display_value(&self) -> String {
        let v = format_number(self.value);
        if self.unit.is_empty() {
            v
        } else if self.value == 1.0 && COUNT_UNITS.contains(&self.unit.as_str()) {
            // "1 call", not "1 calls" (the unit itself stays as recorded: the gate compares it).
            format!("{v} {}", &self.unit[..self.unit.len() - 1])
        } else {
            format!("{v} {}", self.unit)
        }
    }
}

/// Units that are plural nouns of a count: shown singular for a value of exactly 1.
const COUNT_UNITS: &[&str] = &[
    "calls", "cases", "exits", "frames", "requests", "sectors", "bytes",
];

/// Compact, deterministic number formatting: integers without decimals, others with up to
/// 3 significant decimals.
pub fn format_number(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return format!("{}", v as i64);
    }
    let s = if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    };
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// Tail of a log, bounded in lines and bytes (cut at a char boundary).
fn excerpt(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    let start = lines.len().saturating_sub(LOG_EXCERPT_MAX_LINES);
    let mut text = lines[start..].join("\n");
    let mut truncated = start > 0;
    if text.len() > LOG_EXCERPT_MAX_BYTES {
        truncated = true;
        let mut cut = text.len() - LOG_EXCERPT_MAX_BYTES;
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
        text = text[cut..].to_string();
    }
    if truncated {
        format!("[... log truncated ...]\n{text}")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        let id = Identity::new("certify", "0.1.0", "2026-11-25T00:00:00Z");
        let mut r = Report::new(id);
        assert_eq!(r.summary.verdict, Verdict::NoResults);
        r.add_case("p", Case::new("a", Outcome::Pass));
        assert_eq!(r.summary.verdict, Verdict::Pass);
        r.add_case("p", Case::new("b", Outcome::Fail).non_blocker());
        assert_eq!(r.summary.verdict, Verdict::PassWithWarnings);
        r.add_case("q", Case::new("c", Outcome::Timeout));
        assert_eq!(r.summary.verdict, Verdict::Fail);
        assert_eq!(r.summary.blocker_failures, 1);
        assert_eq!(r.summary.non_blocker_failures, 1);
        assert_eq!(r.suites.len(), 2);
        r.suites[1].cases[0].waiver = Some(AppliedWaiver {
            pattern: "c".into(),
            reason: "known".into(),
            expires: "2099-01-01".into(),
        });
        r.refresh_summary();
        assert_eq!(r.summary.verdict, Verdict::PassWithWarnings);
        assert_eq!(r.summary.waived_failures, 1);
    }

    #[test]
    fn count_units_are_singular_for_one() {
        let m = |v| Measurement::info("hypercalls", v, "calls").display_value();
        assert_eq!(m(1.0), "1 call");
        assert_eq!(m(2.0), "2 calls");
        assert_eq!(m(0.0), "0 calls");
        assert_eq!(Measurement::info("t", 1.0, "ms").display_value(), "1 ms");
        assert_eq!(Measurement::info("t", 1.0, "s").display_value(), "1 s");
    }

    #[test]
    fn not_run_blocker_fails() {
        let mut r = Report::new(Identity::new("certify", "0.1.0", "x"));
        r.add_case("p", Case::new("a", Outcome::NotRun));
        assert_eq!(r.summary.verdict, Verdict::Fail);
        let mut r = Report::new(Identity::new("certify", "0.1.0", "x"));
        r.add_case("p", Case::new("a", Outcome::Skip));
        assert_eq!(r.summary.verdict, Verdict::NoResults);
    }

    /// The one Outcome of reports and certify: which outcomes fail a blocker, and how
    /// "not run" is spelled for people and in JSON.
    #[test]
    fn failure_outcomes_and_not_run_spellings() {
        let failing: Vec<Outcome> = Outcome::ALL
            .into_iter()
            .filter(|o| o.is_failure())
            .collect();
        // A blocker that did not run leaves the guest uncertified, as a failure does.
        assert_eq!(
            failing,
            [
                Outcome::Fail,
                Outcome::Crash,
                Outcome::Timeout,
                Outcome::NotRun
            ]
        );
        assert_eq!(Outcome::NotRun.to_string(), "not run");
        assert_eq!(
            serde_json::to_string(&Outcome::NotRun).unwrap(),
            "\"not_run\""
        );
        let back: Outcome = serde_json::from_str("\"not_run\"").unwrap();
        assert_eq!(back, Outcome::NotRun);
    }

    #[test]
    fn excerpt_keeps_tail_on_char_boundary() {
        let log: String = (0..100).map(|i| format!("line {i} é\n")).collect();
        let c = Case::new("a", Outcome::Fail).log(&log);
        assert!(c.log_excerpt.starts_with("[... log truncated ...]\n"));
        assert!(c.log_excerpt.ends_with("line 99 é"));
        assert_eq!(c.log_excerpt.lines().count(), LOG_EXCERPT_MAX_LINES + 1);
        let big = "é".repeat(10_000);
        let c = Case::new("a", Outcome::Fail).log(&big);
        assert!(c.log_excerpt.len() <= LOG_EXCERPT_MAX_BYTES + 30);
        let c = Case::new("a", Outcome::Fail).log("short\n");
        assert_eq!(c.log_excerpt, "short");
    }

    #[test]
    fn numbers() {
        assert_eq!(format_number(12.0), "12");
        assert_eq!(format_number(9.126), "9.13");
        assert_eq!(format_number(0.29), "0.29");
        assert_eq!(format_number(1070.44), "1070.4");
        assert_eq!(format_number(-3.0), "-3");
    }

    #[test]
    fn validate_rejects_duplicates() {
        let mut r = Report::new(Identity::new("certify", "0.1.0", "x"));
        r.add_case("p", Case::new("a", Outcome::Pass));
        r.add_case("p", Case::new("a", Outcome::Pass));
        assert!(r.validate().unwrap_err().contains("\"a\" appears twice"));
    }
}
