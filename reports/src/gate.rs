//! The release gate: compare a run with a baseline.
//!
//! A **regression** (the gate fails) is:
//! - a blocker case that passed in the baseline and now fails, crashes, times out, is
//!   skipped or did not run;
//! - a blocker case that passed in the baseline and is missing now;
//! - in a blocker case that passed in both runs, a figure with a direction that is worse
//!   than its tolerance, that changed unit, or that disappeared.
//!
//! "Blocker" is the current run's flag (the baseline's for a missing case), minus waivers.
//! The same findings on non-blocker cases are **warnings**, on waived cases **waived**;
//! neither fails the gate. Tolerance: the figure's own `tolerance_pct` (from the baseline,
//! else the current run) wins over [`GateOptions::tolerance_pct`].
use std::fmt;

use crate::date::Date;
use crate::model::{format_number, Case, Direction, Measurement, Outcome, Report};
use crate::waivers::{Waiver, Waivers};

/// How to compare.
#[derive(Debug, Clone)]
pub struct GateOptions<'a> {
    /// Default allowed worsening of a figure, in percent.
    pub tolerance_pct: f64,
    /// Waivers file; when `None`, waivers recorded in the current report are honoured
    /// while they have not expired.
    pub waivers: Option<&'a Waivers>,
    /// The day used to decide waiver expiry.
    pub today: Date,
}

/// Default `--tolerance`.
pub const DEFAULT_TOLERANCE_PCT: f64 = 10.0;

impl Default for GateOptions<'_> {
    fn default() -> Self {
        GateOptions {
            tolerance_pct: DEFAULT_TOLERANCE_PCT,
            waivers: None,
            today: Date::today_utc(),
        }
    }
}

/// What changed for one case.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Passed before, now has a failing or skip outcome.
    Outcome {
        /// Its outcome in the baseline.
        before: Outcome,
        /// Its outcome now.
        now: Outcome,
    },
    /// Passed before, absent now.
    Missing,
    /// A figure got worse than its tolerance.
    FigureWorse {
        /// The figure's name.
        name: String,
        /// Its value in the baseline.
        before: f64,
        /// Its value now.
        now: f64,
        /// Its unit.
        unit: String,
        /// Which way is better.
        direction: Direction,
        /// How much worse in percent (infinite when the baseline was 0).
        worse_pct: f64,
        /// How much worse it may get, in percent.
        tolerance_pct: f64,
    },
    /// A figure is reported in a different unit: not comparable.
    FigureUnitChanged {
        /// The figure's name.
        name: String,
        /// Its unit in the baseline.
        before: String,
        /// Its unit now.
        now: String,
    },
    /// A gated figure of the baseline is absent now.
    FigureMissing {
        /// The figure's name.
        name: String,
    },
}

/// One finding: a case (suite/id) and what changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// The suite (profile) of the case.
    pub suite: String,
    /// The case's id.
    pub case: String,
    /// What changed.
    pub change: Change,
    /// The waiver's reason when the case is waived.
    pub waiver: Option<String>,
}

/// The gate's answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GateResult {
    /// Fail the gate.
    pub regressions: Vec<Finding>,
    /// On non-blocker cases: printed, do not fail the gate.
    pub warnings: Vec<Finding>,
    /// On waived cases: printed, do not fail the gate.
    pub waived: Vec<Finding>,
    /// Expired or unused waivers, new cases, ...
    pub notes: Vec<String>,
}

impl GateResult {
    /// No regression: the gate lets the run through.
    pub fn passed(&self) -> bool {
        self.regressions.is_empty()
    }
}

/// Why `baseline` and `current` cannot be compared: they are different kinds of report
/// (made by different subcommands, e.g. a probe and a certify run), whose cases have
/// nothing in common. `None` when they are the same kind.
pub fn kind_mismatch(baseline: &Report, current: &Report) -> Option<String> {
    let (b, c) = (&baseline.identity.command, &current.identity.command);
    (b != c).then(|| {
        format!(
            "the baseline is a `hvcert {b}` report and the current run a `hvcert {c}` report: \
             a gate compares two reports of the same kind"
        )
    })
}

/// Compares `current` with `baseline`.
pub fn compare(baseline: &Report, current: &Report, opts: &GateOptions<'_>) -> GateResult {
    let mut result = GateResult::default();
    let mut current = current.clone();
    match opts.waivers {
        Some(w) => {
            let out = w.apply(&mut current, opts.today);
            for e in &out.expired {
                result.notes.push(format!(
                    "expired waiver {:?} (expired {}, reason: {}) not applied{}",
                    e.pattern,
                    e.expires,
                    e.reason,
                    if e.matched.is_empty() {
                        String::new()
                    } else {
                        format!("; it matches {}", e.matched.join(", "))
                    }
                ));
            }
            for u in &out.unused {
                if !matches_missing(baseline, &current, u) {
                    result.notes.push(format!(
                        "waiver {:?} (suite {:?}) matches no blocker case: consider removing it",
                        u.case, u.suite
                    ));
                }
            }
        }
        None => {
            // Honour waivers recorded at run time, unless they expired since.
            for suite in &mut current.suites {
                for case in &mut suite.cases {
                    let expired = case
                        .waiver
                        .take_if(|w| Date::parse(&w.expires).is_none_or(|d| opts.today > d));
                    if let Some(w) = expired {
                        result.notes.push(format!(
                            "waiver {:?} recorded for {}/{} expired {}: not applied",
                            w.pattern, suite.name, case.id, w.expires
                        ));
                    }
                }
            }
        }
    }

    for bsuite in &baseline.suites {
        for bcase in &bsuite.cases {
            let now = current.case(&bsuite.name, &bcase.id);
            let mut changes = Vec::new();
            if bcase.outcome == Outcome::Pass {
                match now {
                    None => changes.push(Change::Missing),
                    Some(c) if c.outcome != Outcome::Pass => changes.push(Change::Outcome {
                        before: bcase.outcome,
                        now: c.outcome,
                    }),
                    Some(_) => {}
                }
            }
            // Figures are compared between passing runs of the case only: a failed case's
            // figures mean little, and its outcome is already a finding.
            if let Some(c) = now.filter(|c| c.outcome == Outcome::Pass) {
                if bcase.outcome == Outcome::Pass {
                    changes.extend(figure_changes(bcase, c, opts.tolerance_pct));
                }
            }
            if changes.is_empty() {
                continue;
            }
            // Blocker status and waiver of the case for this comparison.
            let (blocker, waiver) = match now {
                Some(c) => (c.blocker, c.waiver.as_ref().map(|w| w.reason.clone())),
                None => (
                    bcase.blocker,
                    opts.waivers
                        .and_then(|w| w.find(&bsuite.name, &bcase.id, opts.today))
                        .map(|w| w.reason.clone()),
                ),
            };
            for change in changes {
                let f = Finding {
                    suite: bsuite.name.clone(),
                    case: bcase.id.clone(),
                    change,
                    waiver: waiver.clone(),
                };
                if waiver.is_some() {
                    result.waived.push(f);
                } else if blocker {
                    result.regressions.push(f);
                } else {
                    result.warnings.push(f);
                }
            }
        }
    }

    let new_cases: Vec<String> = current
        .cases()
        .filter(|(s, c)| baseline.case(&s.name, &c.id).is_none())
        .map(|(s, c)| format!("{}/{}", s.name, c.id))
        .collect();
    if !new_cases.is_empty() {
        result.notes.push(format!(
            "{} case(s) not in the baseline: {}",
            new_cases.len(),
            new_cases.join(", ")
        ));
    }
    result
}

/// Whether waiver `w` (unused on the current run) covers a case that is missing now:
/// then it is in use, not a candidate for removal.
fn matches_missing(baseline: &Report, current: &Report, w: &Waiver) -> bool {
    baseline.cases().any(|(s, c)| {
        c.blocker && current.case(&s.name, &c.id).is_none() && w.matches(&s.name, &c.id)
    })
}

fn figure_changes(before: &Case, now: &Case, default_tol: f64) -> Vec<Change> {
    let mut out = Vec::new();
    for bm in &before.measurements {
        if bm.direction == Direction::Info {
            continue;
        }
        let Some(nm) = now.measurement_named(&bm.name) else {
            out.push(Change::FigureMissing {
                name: bm.name.clone(),
            });
            continue;
        };
        if nm.unit != bm.unit {
            out.push(Change::FigureUnitChanged {
                name: bm.name.clone(),
                before: bm.unit.clone(),
                now: nm.unit.clone(),
            });
            continue;
        }
        let tol = bm.tolerance_pct.or(nm.tolerance_pct).unwrap_or(default_tol);
        let worse = worse_pct(bm, nm.value);
        if worse > tol {
            out.push(Change::FigureWorse {
                name: bm.name.clone(),
                before: bm.value,
                now: nm.value,
                unit: bm.unit.clone(),
                direction: bm.direction,
                worse_pct: worse,
                tolerance_pct: tol,
            });
        }
    }
    out
}

/// How much worse `now` is than the baseline figure, in percent (negative = better).
pub fn worse_pct(before: &Measurement, now: f64) -> f64 {
    let delta = match before.direction {
        Direction::LowerIsBetter => now - before.value,
        Direction::HigherIsBetter => before.value - now,
        Direction::Info => return 0.0,
    };
    if before.value == 0.0 {
        return if delta > 0.0 {
            f64::INFINITY
        } else if delta < 0.0 {
            f64::NEG_INFINITY
        } else {
            0.0
        };
    }
    delta / before.value.abs() * 100.0
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}: ", self.suite, self.case)?;
        match &self.change {
            Change::Outcome { before, now } => write!(f, "{before} -> {now}")?,
            Change::Missing => write!(f, "passed in the baseline, missing now")?,
            Change::FigureWorse {
                name,
                before,
                now,
                unit,
                direction,
                worse_pct,
                tolerance_pct,
            } => {
                let worse = if worse_pct.is_finite() {
                    format!("{}% worse", format_number(*worse_pct))
                } else {
                    "worse (baseline was 0)".to_string()
                };
                write!(
                    f,
                    "{name} {} {unit} -> {} {unit} ({worse}, {}, tolerance {}%)",
                    format_number(*before),
                    format_number(*now),
                    direction.as_str(),
                    format_number(*tolerance_pct)
                )?
            }
            Change::FigureUnitChanged { name, before, now } => write!(
                f,
                "{name} changed unit {before:?} -> {now:?}: not comparable"
            )?,
            Change::FigureMissing { name } => {
                write!(f, "figure {name} was measured in the baseline, missing now")?
            }
        }
        if let Some(r) = &self.waiver {
            write!(f, " (waived: {r})")?;
        }
        Ok(())
    }
}

impl fmt::Display for GateResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in &self.regressions {
            writeln!(f, "REGRESSION {r}")?;
        }
        for w in &self.warnings {
            writeln!(f, "warning (non-blocker) {w}")?;
        }
        for w in &self.waived {
            writeln!(f, "waived {w}")?;
        }
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        if self.passed() {
            write!(f, "gate: PASS (no blocker regression")?;
        } else {
            write!(f, "gate: FAIL ({} regression(s)", self.regressions.len())?;
        }
        writeln!(
            f,
            ", {} warning(s), {} waived)",
            self.warnings.len(),
            self.waived.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Case, Identity, Measurement};

    fn report(cases: Vec<(&str, Case)>) -> Report {
        let mut r = Report::new(Identity::new("certify", "0.1.0", "2026-11-25T00:00:00Z"));
        for (s, c) in cases {
            r.add_case(s, c);
        }
        r
    }

    fn opts() -> GateOptions<'static> {
        GateOptions {
            tolerance_pct: 10.0,
            waivers: None,
            today: Date::parse("2026-11-25").unwrap(),
        }
    }

    #[test]
    fn different_kinds_are_named() {
        let certify = report(vec![]);
        let mut probe = report(vec![]);
        probe.identity.command = "probe".into();
        assert_eq!(kind_mismatch(&certify, &certify), None);
        let why = kind_mismatch(&probe, &certify).expect("a mismatch");
        assert!(
            why.contains("baseline is a `hvcert probe` report")
                && why.contains("current run a `hvcert certify` report"),
            "{why}"
        );
    }

    #[test]
    fn identical_runs_pass() {
        let r = report(vec![
            ("p", Case::new("a", Outcome::Pass)),
            ("p", Case::new("b", Outcome::Fail)),
        ]);
        let g = compare(&r, &r, &opts());
        assert!(g.passed(), "{g}");
        assert!(g.to_string().contains("gate: PASS"));
    }

    #[test]
    fn outcome_and_missing_regressions() {
        let base = report(vec![
            ("p", Case::new("a", Outcome::Pass)),
            ("p", Case::new("b", Outcome::Pass)),
            ("p", Case::new("c", Outcome::Pass).non_blocker()),
            ("p", Case::new("d", Outcome::Fail)),
        ]);
        let cur = report(vec![
            ("p", Case::new("a", Outcome::Crash)),
            ("p", Case::new("c", Outcome::Fail).non_blocker()),
            ("p", Case::new("d", Outcome::Fail)),
            ("p", Case::new("e", Outcome::Pass)),
        ]);
        let g = compare(&base, &cur, &opts());
        assert!(!g.passed());
        assert_eq!(g.regressions.len(), 2, "{g}");
        assert_eq!(
            g.regressions[0].change,
            Change::Outcome {
                before: Outcome::Pass,
                now: Outcome::Crash
            }
        );
        assert_eq!(g.regressions[1].change, Change::Missing);
        assert_eq!(g.warnings.len(), 1);
        let text = g.to_string();
        assert!(text.contains("REGRESSION p/a: pass -> crash"), "{text}");
        assert!(text.contains("REGRESSION p/b: passed in the baseline, missing now"));
        assert!(text.contains("p/e"), "new case noted: {text}");
    }

    #[test]
    fn figures_respect_direction_and_tolerance() {
        let m = |v| Measurement::lower_is_better("rtt", v, "us");
        let h = |v| Measurement::higher_is_better("iops", v, "1/s").tolerance_pct(5.0);
        let base = report(vec![(
            "p",
            Case::new("a", Outcome::Pass)
                .measurement(m(10.0))
                .measurement(h(1000.0)),
        )]);
        // 10% worse on rtt is within 10%; 4% fewer iops within 5%.
        let ok = report(vec![(
            "p",
            Case::new("a", Outcome::Pass)
                .measurement(m(11.0))
                .measurement(h(960.0)),
        )]);
        assert!(compare(&base, &ok, &opts()).passed());
        // Better is always fine.
        let better = report(vec![(
            "p",
            Case::new("a", Outcome::Pass)
                .measurement(m(1.0))
                .measurement(h(5000.0)),
        )]);
        assert!(compare(&base, &better, &opts()).passed());
        let bad = report(vec![(
            "p",
            Case::new("a", Outcome::Pass)
                .measurement(m(11.5))
                .measurement(h(940.0)),
        )]);
        let g = compare(&base, &bad, &opts());
        assert_eq!(g.regressions.len(), 2, "{g}");
        let text = g.to_string();
        assert!(
            text.contains("rtt 10 us -> 11.5 us (15% worse, lower is better, tolerance 10%)"),
            "{text}"
        );
        assert!(
            text.contains("iops 1000 1/s -> 940 1/s (6% worse, higher is better, tolerance 5%)"),
            "{text}"
        );
        // Wider tolerance from the command line.
        let wide = GateOptions {
            tolerance_pct: 20.0,
            ..opts()
        };
        assert_eq!(compare(&base, &bad, &wide).regressions.len(), 1);
        // Unit change and missing figure.
        let moved = report(vec![(
            "p",
            Case::new("a", Outcome::Pass)
                .measurement(Measurement::lower_is_better("rtt", 0.01, "ms")),
        )]);
        let g = compare(&base, &moved, &opts());
        assert!(matches!(
            g.regressions[0].change,
            Change::FigureUnitChanged { .. }
        ));
        assert!(matches!(
            g.regressions[1].change,
            Change::FigureMissing { .. }
        ));
    }

    #[test]
    fn zero_baseline() {
        let base = report(vec![(
            "p",
            Case::new("a", Outcome::Pass)
                .measurement(Measurement::lower_is_better("errors", 0.0, "")),
        )]);
        let same = base.clone();
        assert!(compare(&base, &same, &opts()).passed());
        let worse = report(vec![(
            "p",
            Case::new("a", Outcome::Pass)
                .measurement(Measurement::lower_is_better("errors", 1.0, "")),
        )]);
        let g = compare(&base, &worse, &opts());
        assert!(g.to_string().contains("worse (baseline was 0)"), "{g}");
    }

    #[test]
    fn waivers_turn_regressions_into_waived() {
        let base = report(vec![
            ("p", Case::new("xen.a", Outcome::Pass)),
            ("p", Case::new("xen.b", Outcome::Pass)),
            ("p", Case::new("boot", Outcome::Pass)),
        ]);
        let cur = report(vec![
            ("p", Case::new("xen.a", Outcome::Fail)),
            ("p", Case::new("boot", Outcome::Timeout)),
        ]);
        let w = Waivers::parse(
            "[[waiver]]\ncase = \"xen.*\"\nreason = \"wip\"\nexpires = 2026-12-01\n\
             [[waiver]]\ncase = \"boot\"\nreason = \"old\"\nexpires = 2026-11-24\n",
        )
        .unwrap();
        let o = GateOptions {
            waivers: Some(&w),
            ..opts()
        };
        let g = compare(&base, &cur, &o);
        assert_eq!(g.waived.len(), 2, "{g}");
        assert_eq!(g.regressions.len(), 1, "{g}");
        assert_eq!(g.regressions[0].case, "boot");
        let text = g.to_string();
        assert!(
            text.contains("expired waiver \"boot\" (expired 2026-11-24"),
            "{text}"
        );
        assert!(
            text.contains("waived p/xen.b: passed in the baseline, missing now (waived: wip)"),
            "{text}"
        );
        // After expiry the waiver no longer applies.
        let later = GateOptions {
            today: Date::parse("2026-12-02").unwrap(),
            ..o
        };
        assert_eq!(compare(&base, &cur, &later).regressions.len(), 3);
    }

    #[test]
    fn recorded_waivers_expire_too() {
        let base = report(vec![("p", Case::new("a", Outcome::Pass))]);
        let mut cur = report(vec![("p", Case::new("a", Outcome::Fail))]);
        cur.suites[0].cases[0].waiver = Some(crate::model::AppliedWaiver {
            pattern: "a".into(),
            reason: "r".into(),
            expires: "2026-11-30".into(),
        });
        assert!(compare(&base, &cur, &opts()).passed());
        let later = GateOptions {
            today: Date::parse("2026-12-01").unwrap(),
            ..opts()
        };
        let g = compare(&base, &cur, &later);
        assert!(!g.passed());
        assert!(g.to_string().contains("expired 2026-11-30"), "{g}");
    }
}
