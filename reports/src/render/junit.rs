//! JUnit XML, in the common form read by Jenkins, GitLab, GitHub actions and junitparser:
//! `<testsuites>` with one `<testsuite>` per profile and one `<testcase>` per case.
//!
//! Mapping: fail → `<failure>`; crash, timeout, not run → `<error>`; skip → `<skipped>`;
//! a waived failure → `<skipped>` whose message says it was waived (as pytest does for an
//! expected failure), so CI stays green on what the gate accepts. A non-blocker failure
//! stays a `<failure>`, its message starting with "[non-blocker]". Measurements and logs go
//! to the case's `<system-out>`.
use std::fmt::Write;

use super::{escape_markup as e, seconds};
use crate::model::{Case, Outcome, Report, Suite};

struct Counts {
    tests: usize,
    failures: usize,
    errors: usize,
    skipped: usize,
    ms: u64,
}

fn counts<'a>(cases: impl Iterator<Item = &'a Case>) -> Counts {
    let mut c = Counts {
        tests: 0,
        failures: 0,
        errors: 0,
        skipped: 0,
        ms: 0,
    };
    for case in cases {
        c.tests += 1;
        c.ms = c.ms.saturating_add(case.duration_ms);
        match kind(case) {
            Kind::Pass => {}
            Kind::Failure => c.failures += 1,
            Kind::Error => c.errors += 1,
            Kind::Skipped => c.skipped += 1,
        }
    }
    c
}

enum Kind {
    Pass,
    Failure,
    Error,
    Skipped,
}

fn kind(c: &Case) -> Kind {
    if c.outcome.is_failure() && c.is_waived() {
        return Kind::Skipped;
    }
    match c.outcome {
        Outcome::Pass => Kind::Pass,
        Outcome::Fail => Kind::Failure,
        Outcome::Crash | Outcome::Timeout | Outcome::NotRun => Kind::Error,
        Outcome::Skip => Kind::Skipped,
    }
}

/// JUnit's `timestamp` is an xs:dateTime without zone: "2026-11-25T14:57:18".
fn timestamp(date: &str) -> String {
    let t = date.trim_end_matches('Z');
    let t = t.split('.').next().unwrap_or(t);
    t.chars().take(19).collect()
}

pub fn render(r: &Report) -> String {
    let mut o = String::new();
    let all = counts(r.cases().map(|(_, c)| c));
    let ts = timestamp(&r.identity.date);
    let hostname = r
        .identity
        .host
        .get("hostname")
        .and_then(|h| h.as_str())
        .unwrap_or("localhost");
    o.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        o,
        "<testsuites name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{}\" timestamp=\"{}\">",
        e(&format!("hvcert {}", r.identity.command)),
        all.tests,
        all.failures,
        all.errors,
        all.skipped,
        seconds(all.ms),
        e(&ts)
    );
    for (i, s) in r.suites.iter().enumerate() {
        suite(&mut o, r, i, s, &ts, hostname);
    }
    o.push_str("</testsuites>\n");
    o
}

fn suite(o: &mut String, r: &Report, index: usize, s: &Suite, ts: &str, hostname: &str) {
    let c = counts(s.cases.iter());
    let _ = writeln!(
        o,
        "  <testsuite id=\"{index}\" name=\"{}\" package=\"hvcert\" hostname=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{}\" timestamp=\"{}\">",
        e(&s.name),
        e(hostname),
        c.tests,
        c.failures,
        c.errors,
        c.skipped,
        seconds(c.ms),
        e(ts)
    );
    o.push_str("    <properties>\n");
    let id = &r.identity;
    let mut props = vec![
        ("hvcert.command", id.command.clone()),
        ("hvcert.version", id.version.clone()),
        ("hvcert.date", id.date.clone()),
        ("hvcert.verdict", r.verdict_words().to_string()),
    ];
    if let Some(g) = &id.git_revision {
        props.push(("hvcert.git_revision", g.clone()));
    }
    if !id.command_line.is_empty() {
        props.push(("hvcert.command_line", id.command_line.join(" ")));
    }
    for (k, v) in props {
        let _ = writeln!(o, "      <property name=\"{k}\" value=\"{}\"/>", e(&v));
    }
    o.push_str("    </properties>\n");
    for case in &s.cases {
        testcase(o, s, case);
    }
    o.push_str("    <system-out></system-out>\n    <system-err></system-err>\n");
    o.push_str("  </testsuite>\n");
}

fn testcase(o: &mut String, s: &Suite, c: &Case) {
    let _ = write!(
        o,
        "    <testcase name=\"{}\" classname=\"{}\" time=\"{}\"",
        e(&c.id),
        e(&s.name),
        seconds(c.duration_ms)
    );
    let out = system_out(c);
    let k = kind(c);
    if matches!(k, Kind::Pass) && out.is_empty() {
        o.push_str("/>\n");
        return;
    }
    o.push_str(">\n");
    let first_reason = c.reasons.first().map(String::as_str);
    match k {
        Kind::Pass => {}
        Kind::Failure | Kind::Error => {
            let tag = if matches!(k, Kind::Failure) {
                "failure"
            } else {
                "error"
            };
            let base = first_reason.unwrap_or(match c.outcome {
                Outcome::Crash => "the guest crashed",
                Outcome::Timeout => "the case timed out",
                Outcome::NotRun => "the case did not run",
                _ => "the case failed",
            });
            let message = if c.blocker {
                base.to_string()
            } else {
                format!("[non-blocker] {base}")
            };
            let mut body = String::new();
            for reason in &c.reasons {
                let _ = writeln!(body, "{reason}");
            }
            if !c.log_excerpt.is_empty() {
                if !body.is_empty() {
                    body.push('\n');
                }
                body.push_str(&c.log_excerpt);
                body.push('\n');
            }
            let outcome_type = match c.outcome {
                Outcome::NotRun => "not_run",
                other => other.as_str(),
            };
            let _ = writeln!(
                o,
                "      <{tag} message=\"{}\" type=\"{outcome_type}\">{}</{tag}>",
                e(&message),
                e(&body)
            );
        }
        Kind::Skipped => {
            let message = match &c.waiver {
                Some(w) if c.outcome.is_failure() => {
                    format!("waived until {} ({}): {}", w.expires, c.outcome, w.reason)
                }
                _ => first_reason.unwrap_or("skipped").to_string(),
            };
            let _ = writeln!(o, "      <skipped message=\"{}\"/>", e(&message));
        }
    }
    if !out.is_empty() {
        let _ = writeln!(o, "      <system-out>{}</system-out>", e(&out));
    }
    o.push_str("    </testcase>\n");
}

/// Measurements, and for waived or skipped cases the reasons and log (failures carry
/// them in their element).
fn system_out(c: &Case) -> String {
    let mut out = String::new();
    for m in &c.measurements {
        let _ = writeln!(
            out,
            "measurement {} = {} ({})",
            m.name,
            m.display_value(),
            m.direction.as_str()
        );
    }
    if matches!(kind(c), Kind::Skipped | Kind::Pass) {
        // A plain skip already shows its first reason as the message.
        let already_shown = usize::from(matches!(kind(c), Kind::Skipped) && c.waiver.is_none());
        let reasons = c.reasons.iter().skip(already_shown);
        for r in reasons {
            let _ = writeln!(out, "{r}");
        }
        if !c.log_excerpt.is_empty() && c.outcome != Outcome::Pass {
            out.push_str(&c.log_excerpt);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::{render, Case, Format, Identity, Outcome, Report};

    #[test]
    fn counts_and_escaping() {
        let mut r = Report::new(Identity::new("certify", "0.1.0", "2026-11-25T14:57:18Z"));
        r.add_case("p<1>", Case::new("a&b", Outcome::Pass));
        r.add_case(
            "p<1>",
            Case::new("c", Outcome::Fail)
                .reason("expected \"2\" got <5>")
                .log("\u{1b}[31mred\u{1b}[0m ]]>"),
        );
        r.add_case("p<1>", Case::new("d", Outcome::Crash).non_blocker());
        r.add_case(
            "p<1>",
            Case::new("e", Outcome::Skip).reason("no tap device"),
        );
        let x = render(&r, Format::Junit);
        assert!(
            x.contains("tests=\"4\" failures=\"1\" errors=\"1\" skipped=\"1\""),
            "{x}"
        );
        assert!(x.contains("name=\"p&lt;1&gt;\""));
        assert!(x.contains("<testcase name=\"a&amp;b\" classname=\"p&lt;1&gt;\" time=\"0.000\"/>"));
        assert!(
            x.contains("message=\"expected &quot;2&quot; got &lt;5&gt;\" type=\"fail\""),
            "{x}"
        );
        assert!(x.contains("\\u{1b}[31mred\\u{1b}[0m ]]&gt;"), "{x}");
        assert!(
            x.contains("message=\"[non-blocker] the guest crashed\" type=\"crash\""),
            "{x}"
        );
        assert!(x.contains("<skipped message=\"no tap device\"/>"), "{x}");
        assert!(x.contains("timestamp=\"2026-11-25T14:57:18\""));
    }
}
