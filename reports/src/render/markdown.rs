//! Markdown for a pull-request comment (GitHub/GitLab flavoured): the verdict first, the
//! problems in a table, then everything else folded in `<details>`.
use std::fmt::Write;

use super::human_duration;
use crate::model::{Case, Outcome, Report, Verdict};

fn icon(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "✅",
        Verdict::PassWithWarnings => "⚠️",
        Verdict::Fail => "❌",
        Verdict::NoResults => "⚪",
    }
}

fn outcome_icon(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "✅",
        Outcome::Fail => "❌",
        Outcome::Skip => "⏭️",
        Outcome::Crash => "💥",
        Outcome::Timeout => "⏱️",
        Outcome::NotRun => "⛔",
    }
}

/// Escapes text for a table cell or a paragraph: Markdown punctuation is backslash-escaped,
/// `<`/`>`/`&` become entities (GitHub renders inline HTML), newlines become `<br>`, and
/// control characters a visible `\u{..}`.
pub fn md(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '|' | '~' | '!' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\n' => out.push_str("<br>"),
            '\r' => {}
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// A fenced code block whose fence is longer than any backtick run in `text`.
fn fenced(text: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    let fence = "`".repeat((longest + 1).max(3));
    let body: String = text
        .chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect();
    format!("{fence}text\n{body}\n{fence}\n")
}

fn outcome_cell(c: &Case) -> String {
    let mut s = format!("{} {}", outcome_icon(c.outcome), c.outcome);
    if let Some(w) = &c.waiver {
        let _ = write!(s, " (waived until {}: {})", w.expires, md(&w.reason));
    }
    s
}

fn blocker_cell(c: &Case) -> &'static str {
    match (c.blocker, c.is_waived()) {
        (true, false) => "yes",
        (true, true) => "waived",
        (false, _) => "no",
    }
}

pub fn render(r: &Report) -> String {
    let s = &r.summary;
    let id = &r.identity;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "## {} hvcert {}: {}\n",
        icon(s.verdict),
        md(&id.command),
        md(r.verdict_words())
    );
    let _ = write!(o, "**{}**", md(&s.counts_line()));
    let _ = write!(
        o,
        " · {} blocker failure{} · {} waived · {} non-blocker failure{} · {}\n\n",
        s.blocker_failures,
        if s.blocker_failures == 1 { "" } else { "s" },
        s.waived_failures,
        s.non_blocker_failures,
        if s.non_blocker_failures == 1 { "" } else { "s" },
        super::times_line(r)
    );
    let _ = write!(o, "hvcert {}", md(&id.version));
    if let Some(g) = &id.git_revision {
        let _ = write!(o, " (revision {})", md(g));
    }
    let _ = writeln!(o, " · {}\n", md(&id.date));

    let problems: Vec<_> = r.cases().filter(|(_, c)| c.outcome.is_failure()).collect();
    if !problems.is_empty() {
        o.push_str("### Problems\n\n");
        o.push_str("| Profile | Case | Outcome | Blocker | Reason |\n|---|---|---|---|---|\n");
        for (suite, c) in &problems {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} |",
                md(&suite.name),
                md(&c.id),
                outcome_cell(c),
                blocker_cell(c),
                md(&c.reasons.join("; "))
            );
        }
        o.push('\n');
    }

    if !r.expired_waivers.is_empty() {
        o.push_str("### Expired waivers (not applied)\n\n");
        for w in &r.expired_waivers {
            let _ = write!(
                o,
                "- {} expired {}: {}",
                md(&w.pattern),
                md(&w.expires),
                md(&w.reason)
            );
            if !w.matched.is_empty() {
                let _ = write!(o, " (matches {})", md(&w.matched.join(", ")));
            }
            o.push('\n');
        }
        o.push('\n');
    }

    let head = std::mem::take(&mut o);
    let _ = writeln!(o, "<details><summary>All cases ({})</summary>\n", s.total);
    for suite in &r.suites {
        let ss = suite.summary();
        let _ = writeln!(
            o,
            "#### {}: {} ({})\n",
            md(&suite.name),
            md(r.suite_verdict_words(suite)),
            md(&ss.counts_line())
        );
        if suite.cases.is_empty() {
            o.push_str("No cases.\n\n");
            continue;
        }
        o.push_str(
            "| Case | Outcome | Blocker | Duration | Measurements |\n|---|---|---|---|---|\n",
        );
        for c in &suite.cases {
            let figures: Vec<String> = c
                .measurements
                .iter()
                .map(|m| format!("{} {}", md(&m.name), md(&m.display_value())))
                .collect();
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} |",
                md(&c.id),
                outcome_cell(c),
                blocker_cell(c),
                human_duration(c.duration_ms),
                figures.join("<br>")
            );
        }
        o.push('\n');
    }
    o.push_str("</details>\n");
    let all_cases = std::mem::take(&mut o);

    let logs: Vec<_> = problems
        .iter()
        .filter(|(_, c)| !c.log_excerpt.is_empty())
        .collect();
    if !logs.is_empty() {
        o.push_str("\n<details><summary>Logs of the problems</summary>\n\n");
        for (suite, c) in logs {
            let _ = writeln!(
                o,
                "**{} / {}** ({})\n",
                md(&suite.name),
                md(&c.id),
                c.outcome
            );
            o.push_str(&fenced(&c.log_excerpt));
            o.push('\n');
        }
        o.push_str("</details>\n");
    }
    let logs = o;
    fit(head, all_cases, logs)
}

/// Largest Markdown a comment takes: GitHub refuses comments over 65,536 characters.
pub const MARKDOWN_LIMIT: usize = 60_000;

/// Drops the logs, then the full case list, when the comment would be too long.
fn fit(head: String, all_cases: String, logs: String) -> String {
    const NOTE: &str = "\n_Shortened to fit a comment: see the HTML or JSON report for ";
    if head.len() + all_cases.len() + logs.len() <= MARKDOWN_LIMIT {
        return head + &all_cases + &logs;
    }
    if head.len() + all_cases.len() + NOTE.len() + 20 <= MARKDOWN_LIMIT {
        return head + &all_cases + NOTE + "the logs._\n";
    }
    let mut out = head;
    if out.len() + NOTE.len() + 40 > MARKDOWN_LIMIT {
        // Even the problem table is too long: cut it at a line boundary.
        let mut cut = MARKDOWN_LIMIT - NOTE.len() - 40;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        let line_end = out[..cut].rfind('\n').map_or(0, |i| i + 1);
        out.truncate(line_end);
    }
    out + NOTE + "every case and the logs._\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_reports_fit_a_comment() {
        use crate::{Case, Identity, Outcome, Report};
        let mut r = Report::new(Identity::new("certify", "0.1.0", "d"));
        for i in 0..3000 {
            let outcome = if i % 2 == 0 {
                Outcome::Pass
            } else {
                Outcome::Fail
            };
            r.add_case(
                "p",
                Case::new(format!("case.{i}"), outcome).log("x\n".repeat(50).as_str()),
            );
        }
        let md = render(&r);
        assert!(md.len() <= MARKDOWN_LIMIT, "{}", md.len());
        assert!(md.starts_with("## ❌ hvcert certify: FAIL"));
        assert!(
            md.ends_with("every case and the logs._\n"),
            "{}",
            &md[md.len() - 200..]
        );
        // A moderate report keeps its case list and drops only the logs.
        let mut r = Report::new(Identity::new("certify", "0.1.0", "d"));
        for i in 0..200 {
            r.add_case(
                "p",
                Case::new(format!("c{i}"), Outcome::Fail).log(&"y".repeat(400)),
            );
        }
        let md = render(&r);
        assert!(
            md.contains("All cases (200)") && md.ends_with("the logs._\n"),
            "{}",
            md.len()
        );
    }

    #[test]
    fn escaping() {
        assert_eq!(md("a|b_c*<x>\nd"), "a\\|b\\_c\\*&lt;x&gt;<br>d");
        assert_eq!(fenced("x ``` y"), "````text\nx ``` y\n````\n");
        assert_eq!(fenced("plain"), "```text\nplain\n```\n");
    }
}
