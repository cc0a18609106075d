//! Waivers: a TOML file that marks named blocker cases non-blocker, with a reason and an
//! expiry date.
//!
//! ```toml
//! [[waiver]]
//! case = "xen.*"              # case-id pattern: `*` any run of characters, `?` one
//! suite = "sles15-xen"        # optional suite (profile) pattern, default "*"
//! reason = "Xen event channels land in 0.2 (issue 12)"
//! expires = 2026-12-31        # last day it applies (TOML date or "YYYY-MM-DD")
//! ```
//! An expired waiver is not applied; it is recorded in the report's `expired_waivers`
//! (and printed by the gate) so that it gets renewed or removed.
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::date::Date;
use crate::model::{AppliedWaiver, Report, WaiverNote};
use crate::Error;

/// One waiver from the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiver {
    /// Case-id pattern (`*` matches any run of characters, `?` any one).
    pub case: String,
    /// Suite pattern (`*` for any suite).
    pub suite: String,
    /// Why the failure is accepted (shown in reports).
    pub reason: String,
    /// The last day the waiver applies.
    pub expires: Date,
}

/// A parsed waivers file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Waivers {
    /// The waivers, in file order.
    pub waivers: Vec<Waiver>,
    /// Where it was read from (for messages).
    pub source: Option<PathBuf>,
}

/// What [`Waivers::apply`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WaiverOutcome {
    /// "suite/case" of every case a waiver was applied to.
    pub applied: Vec<String>,
    /// Expired waivers (also recorded in the report).
    pub expired: Vec<WaiverNote>,
    /// Valid waivers that matched no blocker case: candidates for removal.
    pub unused: Vec<Waiver>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    waiver: Vec<RawWaiver>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWaiver {
    case: toml::Spanned<String>,
    #[serde(default)]
    suite: Option<String>,
    reason: toml::Spanned<String>,
    expires: toml::Spanned<toml::Value>,
}

impl Waivers {
    /// Reads and checks a waivers file; errors name the file and line.
    pub fn load(path: &Path) -> Result<Waivers, Error> {
        let text = std::fs::read_to_string(path).map_err(|err| Error::Io {
            path: path.to_path_buf(),
            err,
        })?;
        let mut w = Waivers::parse(&text).map_err(|msg| Error::Waivers {
            path: path.to_path_buf(),
            msg,
        })?;
        w.source = Some(path.to_path_buf());
        Ok(w)
    }

    /// Parses waivers from TOML text; the error message carries the line.
    pub fn parse(text: &str) -> Result<Waivers, String> {
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            // toml's message already says "TOML parse error at line N, column M".
            e.to_string().trim_end().to_string()
        })?;
        let line_of = |span: std::ops::Range<usize>| -> usize {
            text.get(..span.start)
                .map(|t| t.matches('\n').count() + 1)
                .unwrap_or(0)
        };
        let mut waivers = Vec::new();
        for r in raw.waiver {
            let case = r.case.get_ref().trim().to_string();
            if case.is_empty() {
                return Err(format!(
                    "line {}: `case` must not be empty",
                    line_of(r.case.span())
                ));
            }
            if r.reason.get_ref().trim().is_empty() {
                return Err(format!(
                    "line {}: waiver for {case:?} needs a non-empty `reason`",
                    line_of(r.reason.span())
                ));
            }
            let expires = match r.expires.get_ref() {
                toml::Value::Datetime(dt) if dt.time.is_none() && dt.offset.is_none() => dt
                    .date
                    .and_then(|d| Date::new(i32::from(d.year), d.month, d.day)),
                toml::Value::String(s) => Date::parse(s.trim()),
                _ => None,
            };
            let Some(expires) = expires else {
                // toml shows a bare Datetime value as its internal table: show it as written.
                let found = match r.expires.get_ref() {
                    toml::Value::Datetime(dt) => dt.to_string(),
                    other => other.to_string(),
                };
                return Err(format!(
                    "line {}: waiver for {case:?}: `expires` must be a date like 2026-12-31, found {found}",
                    line_of(r.expires.span()),
                ));
            };
            waivers.push(Waiver {
                case,
                suite: r.suite.unwrap_or_else(|| "*".to_string()),
                reason: r.reason.into_inner().trim().to_string(),
                expires,
            });
        }
        Ok(Waivers {
            waivers,
            source: None,
        })
    }

    /// The first waiver (valid on `today`) matching this case, if any.
    pub fn find(&self, suite: &str, case: &str, today: Date) -> Option<&Waiver> {
        self.waivers
            .iter()
            .find(|w| !w.is_expired(today) && w.matches(suite, case))
    }

    /// Applies the waivers valid on `today` to the blocker cases of `report` (sets
    /// [`crate::Case::waiver`]), records expired ones in `report.expired_waivers`, and
    /// refreshes the summary. The file is authoritative: waivers recorded in the report
    /// before are replaced.
    pub fn apply(&self, report: &mut Report, today: Date) -> WaiverOutcome {
        let mut out = WaiverOutcome::default();
        report.expired_waivers.clear();
        for suite in &mut report.suites {
            for case in &mut suite.cases {
                case.waiver = None;
            }
        }
        let mut used = vec![false; self.waivers.len()];
        let mut expired_hits: Vec<Vec<String>> = vec![Vec::new(); self.waivers.len()];
        for suite in &mut report.suites {
            for case in &mut suite.cases {
                if !case.blocker {
                    continue;
                }
                for (i, w) in self.waivers.iter().enumerate() {
                    if w.matches(&suite.name, &case.id) && w.is_expired(today) {
                        expired_hits[i].push(format!("{}/{}", suite.name, case.id));
                    }
                }
                let found = self
                    .waivers
                    .iter()
                    .position(|w| !w.is_expired(today) && w.matches(&suite.name, &case.id));
                if let Some(i) = found {
                    let w = &self.waivers[i];
                    used[i] = true;
                    case.waiver = Some(AppliedWaiver {
                        pattern: w.case.clone(),
                        reason: w.reason.clone(),
                        expires: w.expires.to_string(),
                    });
                    out.applied.push(format!("{}/{}", suite.name, case.id));
                }
            }
        }
        for (i, w) in self.waivers.iter().enumerate() {
            if w.is_expired(today) {
                let note = WaiverNote {
                    pattern: w.case.clone(),
                    suite: w.suite.clone(),
                    reason: w.reason.clone(),
                    expires: w.expires.to_string(),
                    matched: std::mem::take(&mut expired_hits[i]),
                };
                if !report.expired_waivers.contains(&note) {
                    report.expired_waivers.push(note.clone());
                }
                out.expired.push(note);
            } else if !used[i] {
                out.unused.push(w.clone());
            }
        }
        report.refresh_summary();
        out
    }
}

impl Waiver {
    /// Expired once `today` is after the expiry date.
    pub fn is_expired(&self, today: Date) -> bool {
        today > self.expires
    }

    /// Whether the waiver's patterns match this suite and case.
    pub fn matches(&self, suite: &str, case: &str) -> bool {
        glob_match(&self.suite, suite) && glob_match(&self.case, case)
    }
}

/// Glob match over chars: `*` matches any run (also empty), `?` exactly one char,
/// everything else itself. Iterative with single backtrack point (linear-ish, no
/// recursion, so no blow-up on patterns like `a*a*a*b`). Hand-written: the `glob`
/// crates match paths (`/` handling, character classes) which case ids don't need.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && p[pi] == t[ti])) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Case, Identity, Outcome};

    #[test]
    fn globs() {
        assert!(glob_match("*", ""));
        assert!(glob_match("xen.*", "xen.event"));
        assert!(!glob_match("xen.*", "hyperv.xen.event"));
        assert!(glob_match("*.invalid_*", "hypercall.invalid_code"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
        assert!(glob_match("a*a*a*b", "aaaaaaaaaaaaab"));
        assert!(!glob_match("a*a*a*b", "aaaaaaaaaaaaaa"));
        assert!(glob_match("boot", "boot"));
        assert!(!glob_match("boot", "boot2"));
    }

    #[test]
    fn parse_errors_name_line() {
        let e = Waivers::parse("[[waiver]]\ncase = \"a\"\nreason = \"r\"\nexpires = 2026-02-30\n")
            .unwrap_err();
        assert!(e.contains("line 4"), "{e}");
        let e = Waivers::parse("[[waiver]]\ncase = \"a\"\nreason = \"r\"\nexpires = \"soon\"\n")
            .unwrap_err();
        assert!(e.contains("line 4") && e.contains("2026-12-31"), "{e}");
        let e = Waivers::parse("[[waiver]]\ncase = \"a\"\nreason = \"  \"\nexpires = 2026-01-01\n")
            .unwrap_err();
        assert!(e.contains("line 3") && e.contains("reason"), "{e}");
        let e = Waivers::parse("[[waiver]]\ncase = \"a\"\n").unwrap_err();
        assert!(e.contains("line") && e.contains("reason"), "{e}");
        let e = Waivers::parse("[[waiver]]\ncase = \"a\"\nreasn = \"x\"\n").unwrap_err();
        assert!(e.contains("reasn"), "{e}");
        // A date-time (not a date) is shown as written, not as toml's internal table.
        let e = Waivers::parse(
            "[[waiver]]\ncase = \"a\"\nreason = \"r\"\nexpires = 2026-12-31T00:00:00\n",
        )
        .unwrap_err();
        assert!(
            e.contains("line 4") && e.ends_with("found 2026-12-31T00:00:00"),
            "{e}"
        );
        let e = Waivers::parse("[[waiver]]\ncase = \"a\"\nreason = \"r\"\nexpires = 20261231\n")
            .unwrap_err();
        assert!(e.ends_with("found 20261231"), "{e}");
    }

    #[test]
    fn apply_respects_expiry_and_blockers() {
        let w = Waivers::parse(
            "[[waiver]]\ncase = \"xen.*\"\nreason = \"in progress\"\nexpires = 2026-12-31\n\
             [[waiver]]\ncase = \"boot\"\nsuite = \"old-*\"\nreason = \"gone\"\nexpires = \"2026-01-01\"\n\
             [[waiver]]\ncase = \"nothing\"\nreason = \"unused\"\nexpires = 2030-01-01\n",
        )
        .unwrap();
        let mut r = Report::new(Identity::new("certify", "0.1.0", "2026-11-25T00:00:00Z"));
        r.add_case("p", Case::new("xen.event", Outcome::Fail));
        r.add_case("p", Case::new("xen.grant", Outcome::Fail).non_blocker());
        r.add_case("old-profile", Case::new("boot", Outcome::Crash));
        let today = Date::parse("2026-11-25").unwrap();
        let out = w.apply(&mut r, today);
        assert_eq!(out.applied, vec!["p/xen.event"]);
        assert_eq!(out.expired.len(), 1);
        assert_eq!(out.expired[0].matched, vec!["old-profile/boot"]);
        assert_eq!(out.unused.len(), 1);
        assert_eq!(r.expired_waivers.len(), 1);
        assert_eq!(r.summary.waived_failures, 1);
        assert_eq!(r.summary.blocker_failures, 1);
        // Expiry day itself still applies; the day after does not.
        let last = Date::parse("2026-12-31").unwrap();
        assert!(w.find("p", "xen.event", last).is_some());
        assert!(w
            .find("p", "xen.event", Date::parse("2027-01-01").unwrap())
            .is_none());
    }
}
