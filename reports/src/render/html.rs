//! A single-file HTML page: no external assets, no script. The verdict comes first, then
//! the run identity, the problems, a chart of case durations (inline SVG), one table per
//! profile, expired waivers and the host facts. Print CSS keeps it readable on paper.
use std::fmt::Write;

use super::{escape_markup as e, human_duration};
use crate::model::{format_number, Case, Outcome, Report, Suite};

const CSS: &str = r#"
:root { --pass:#1a7f37; --fail:#cf222e; --warn:#9a6700; --none:#57606a; --skip:#8c959f;
        --crash:#8250df; --timeout:#bc4c00; --line:#d0d7de; --bg:#f6f8fa; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color:#1f2328; margin:0 auto; max-width:1100px; padding:24px; }
h1 { font-size: 30px; margin: 0; letter-spacing: .02em; }
h2 { font-size: 20px; margin: 28px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
.verdict { border-radius: 8px; padding: 16px 20px; color: #fff; }
.verdict p { margin: 6px 0 0; font-size: 15px; }
.verdict-pass { background: var(--pass); } .verdict-fail { background: var(--fail); }
.verdict-warn { background: var(--warn); } .verdict-none { background: var(--none); }
dl.identity { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 16px 0; }
dl.identity dt { font-weight: 600; color:#57606a; } dl.identity dd { margin: 0; word-break: break-all; }
table { border-collapse: collapse; width: 100%; margin: 8px 0 16px; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: var(--bg); } td.num { text-align: right; white-space: nowrap; }
.o { font-weight: 600; white-space: nowrap; }
.o-pass { color: var(--pass); } .o-fail { color: var(--fail); } .o-skip { color: var(--skip); }
.o-crash { color: var(--crash); } .o-timeout { color: var(--timeout); } .o-not_run { color: var(--fail); }
.o-warn { color: var(--warn); } .o-none { color: var(--none); }
tr.waived td { background: #fff8c5; }
.tag { display:inline-block; border:1px solid var(--line); border-radius:10px; padding:0 6px; font-size:12px; }
pre { background: var(--bg); border: 1px solid var(--line); padding: 8px; overflow-x: auto;
      white-space: pre-wrap; word-break: break-all; font-size: 12px; max-height: 30em; }
details summary { cursor: pointer; color:#0969da; }
ul.reasons { margin: 0; padding-left: 18px; }
svg text { font: 12px system-ui, "DejaVu Sans", sans-serif; fill: #1f2328; }
footer { margin-top: 32px; color:#57606a; font-size: 12px; }
@media print {
  body { max-width: none; padding: 0; font-size: 11px; }
  .verdict { color: #000; background: none !important; border: 3px solid #000; }
  h2 { break-after: avoid; }
  tr, pre, svg { break-inside: avoid; }
  thead { display: table-header-group; }
  pre { max-height: none; }
  details > summary { color: #000; }
  details::details-content { content-visibility: visible; display: block; }
  a { color: #000; text-decoration: none; }
}
"#;

const CHART_MAX_BARS: usize = 30;

pub fn render(r: &Report) -> String {
    let s = &r.summary;
    let id = &r.identity;
    let mut o = String::new();
    let title = format!("hvcert {}: {}", id.command, r.verdict_words());
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        e(&title)
    );

    // 1. The verdict.
    let _ = write!(
        o,
        "<header id=\"verdict\" class=\"verdict verdict-{}\" data-verdict=\"{}\">\n\
         <h1>{}</h1>\n<p>hvcert {} · {}</p>\n<p>{} blocker failure{} · {} waived · {} non-blocker failure{} · {}</p>\n</header>\n",
        s.verdict.slug(),
        s.verdict.slug(),
        e(r.verdict_words()),
        e(&id.command),
        e(&s.counts_line()),
        s.blocker_failures,
        if s.blocker_failures == 1 { "" } else { "s" },
        s.waived_failures,
        s.non_blocker_failures,
        if s.non_blocker_failures == 1 { "" } else { "s" },
        e(&super::times_line(r)),
    );

    // 2. Identity.
    o.push_str("<dl class=\"identity\">\n");
    let mut row = |k: &str, v: &str| {
        let _ = writeln!(o, "<dt>{}</dt><dd>{}</dd>", e(k), e(v));
    };
    row("Version", &id.version);
    if let Some(g) = &id.git_revision {
        row("Git revision", g);
    }
    row("Date", &id.date);
    if !id.command_line.is_empty() {
        row("Command line", &id.command_line.join(" "));
    }
    if let Some(h) = host_line(&id.host) {
        row("Host", &h);
    }
    o.push_str("</dl>\n");

    // 3. Problems.
    let problems: Vec<(&Suite, &Case)> =
        r.cases().filter(|(_, c)| c.outcome.is_failure()).collect();
    if !problems.is_empty() {
        o.push_str("<section id=\"problems\">\n<h2>Problems</h2>\n<table>\n<thead><tr><th>Profile</th><th>Case</th><th>Outcome</th><th>Blocker</th><th>Reasons</th></tr></thead>\n<tbody>\n");
        for (suite, c) in &problems {
            let _ = writeln!(
                o,
                "<tr{}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                row_class(c),
                e(&suite.name),
                e(&c.id),
                outcome_html(c.outcome),
                blocker_html(c),
                reasons_html(c)
            );
        }
        o.push_str("</tbody>\n</table>\n</section>\n");
    }

    // 4. Chart.
    chart(&mut o, r);

    // 5. One table per profile.
    for (i, suite) in r.suites.iter().enumerate() {
        suite_table(&mut o, i, suite, r.suite_verdict_words(suite));
    }

    // 6. Expired waivers.
    if !r.expired_waivers.is_empty() {
        o.push_str(
            "<section id=\"expired-waivers\">\n<h2>Expired waivers (not applied)</h2>\n<ul>\n",
        );
        for w in &r.expired_waivers {
            let _ = write!(
                o,
                "<li><code>{}</code> expired {}: {}",
                e(&w.pattern),
                e(&w.expires),
                e(&w.reason)
            );
            if !w.matched.is_empty() {
                let _ = write!(o, " (matches {})", e(&w.matched.join(", ")));
            }
            o.push_str("</li>\n");
        }
        o.push_str("</ul>\n</section>\n");
    }

    // 7. Host facts and configuration, folded.
    for (name, value) in [("Host facts", &id.host), ("Run configuration", &id.config)] {
        if !value.is_null() {
            let pretty = serde_json::to_string_pretty(value).unwrap_or_default();
            let _ = write!(
                o,
                "<section>\n<h2>{name}</h2>\n<details><summary>Show JSON</summary>\n<pre>{}</pre>\n</details>\n</section>\n",
                e(&pretty)
            );
        }
    }

    let _ = write!(
        o,
        "<footer>Report schema {} · generated by hvcert {}</footer>\n</body>\n</html>\n",
        e(&r.schema),
        e(&id.version)
    );
    o
}

/// A one-line host description from common probe fields, if present (the host value is
/// opaque: only well-known string fields are looked up, never required).
fn host_line(host: &serde_json::Value) -> Option<String> {
    if host.is_null() {
        return None;
    }
    let pick = |path: &[&str]| -> Option<String> {
        let mut v = host;
        for p in path {
            v = v.get(p)?;
        }
        v.as_str().map(str::to_string)
    };
    let parts: Vec<String> = [
        &["hostname"][..],
        &["cpu", "brand"][..],
        &["verdict", "verdict"][..],
        &["verdict"][..],
    ]
    .iter()
    .filter_map(|p| pick(p))
    .collect();
    if parts.is_empty() {
        Some("see Host facts below".to_string())
    } else {
        Some(parts.join(" · "))
    }
}

fn row_class(c: &Case) -> &'static str {
    if c.is_waived() {
        " class=\"waived\""
    } else {
        ""
    }
}

fn outcome_slug(o: Outcome) -> &'static str {
    match o {
        Outcome::NotRun => "not_run",
        other => other.as_str(),
    }
}

fn outcome_html(o: Outcome) -> String {
    format!(
        "<span class=\"o o-{}\">{}</span>",
        outcome_slug(o),
        e(o.as_str())
    )
}

fn blocker_html(c: &Case) -> String {
    match &c.waiver {
        Some(w) if c.blocker => format!(
            "<span class=\"tag\">waived</span> until {}: {}",
            e(&w.expires),
            e(&w.reason)
        ),
        _ if c.blocker => "yes".to_string(),
        _ => "no".to_string(),
    }
}

fn reasons_html(c: &Case) -> String {
    if c.reasons.is_empty() {
        return String::new();
    }
    let mut s = String::from("<ul class=\"reasons\">");
    for r in &c.reasons {
        let _ = write!(s, "<li>{}</li>", e(r));
    }
    s.push_str("</ul>");
    s
}

fn suite_table(o: &mut String, index: usize, suite: &Suite, words: &str) {
    let ss = suite.summary();
    let _ = write!(
        o,
        "<section class=\"suite\" id=\"suite-{index}\">\n<h2>Profile {}: <span class=\"o o-{}\">{}</span></h2>\n<p>{}{}</p>\n",
        e(&suite.name),
        ss.verdict.slug(),
        e(words),
        e(&ss.counts_line()),
        if suite.description.is_empty() {
            String::new()
        } else {
            format!(" · {}", e(&suite.description))
        }
    );
    if suite.cases.is_empty() {
        o.push_str("<p>No cases.</p>\n</section>\n");
        return;
    }
    o.push_str("<table>\n<thead><tr><th>Case</th><th>Outcome</th><th>Blocker</th><th>Duration</th><th>Measurements</th><th>Details</th></tr></thead>\n<tbody>\n");
    for c in &suite.cases {
        let figures: Vec<String> = c
            .measurements
            .iter()
            .map(|m| {
                format!(
                    "<span title=\"{}\">{} {}</span>",
                    e(m.direction.as_str()),
                    e(&m.name),
                    e(&m.display_value())
                )
            })
            .collect();
        let mut details = reasons_html(c);
        if !c.log_excerpt.is_empty() {
            let _ = write!(
                details,
                "<details><summary>log excerpt</summary><pre>{}</pre></details>",
                e(&c.log_excerpt)
            );
        }
        let _ = writeln!(
            o,
            "<tr{}><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
            row_class(c),
            e(&c.id),
            outcome_html(c.outcome),
            blocker_html(c),
            e(&human_duration(c.duration_ms)),
            figures.join("<br>"),
            details
        );
    }
    o.push_str("</tbody>\n</table>\n</section>\n");
}

fn color(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "#1a7f37",
        Outcome::Fail | Outcome::NotRun => "#cf222e",
        Outcome::Skip => "#8c959f",
        Outcome::Crash => "#8250df",
        Outcome::Timeout => "#bc4c00",
    }
}

/// Horizontal bars of the longest cases, coloured by outcome.
fn chart(o: &mut String, r: &Report) {
    let mut cases: Vec<(&Suite, &Case)> = r.cases().filter(|(_, c)| c.duration_ms > 0).collect();
    if cases.is_empty() {
        figures_chart(o, r);
        return;
    }
    o.push_str("<section id=\"chart\">\n<h2>Case durations</h2>\n");
    // Longest first; stable, so equal durations keep report order.
    cases.sort_by_key(|c| std::cmp::Reverse(c.1.duration_ms));
    let shown = cases.len().min(CHART_MAX_BARS);
    let max = cases[0].1.duration_ms.max(1) as f64;
    let (label_w, bar_w, value_w, row_h, top) = (300.0, 520.0, 90.0, 20.0, 6.0);
    let width = label_w + bar_w + value_w;
    let height = top * 2.0 + row_h * shown as f64;
    let _ = writeln!(
        o,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" viewBox=\"0 0 {width} {height}\" width=\"100%\" style=\"max-width:{width}px\" aria-labelledby=\"chart-title\">\n<title id=\"chart-title\">Durations of the {shown} longest cases</title>"
    );
    for (i, (suite, c)) in cases.iter().take(shown).enumerate() {
        let y = top + row_h * i as f64;
        let w = (c.duration_ms as f64 / max * bar_w).max(1.0);
        let label = truncate(&format!("{} / {}", suite.name, c.id), 44);
        let _ = writeln!(
            o,
            "<g><title>{} / {}: {} ({})</title><text x=\"{}\" y=\"{:.0}\" text-anchor=\"end\">{}</text>\
             <rect x=\"{label_w}\" y=\"{:.0}\" width=\"{:.1}\" height=\"{:.0}\" rx=\"2\" fill=\"{}\"/>\
             <text x=\"{:.1}\" y=\"{:.0}\">{}</text></g>",
            e(&suite.name),
            e(&c.id),
            e(&human_duration(c.duration_ms)),
            e(c.outcome.as_str()),
            label_w - 6.0,
            y + row_h * 0.7,
            e(&label),
            y + 3.0,
            w,
            row_h - 6.0,
            color(c.outcome),
            label_w + w + 6.0,
            y + row_h * 0.7,
            e(&human_duration(c.duration_ms)),
        );
    }
    o.push_str("</svg>\n");
    if cases.len() > shown {
        let _ = writeln!(
            o,
            "<p>{} shorter case(s) not shown.</p>",
            cases.len() - shown
        );
    }
    let total: u64 = cases.iter().map(|(_, c)| c.duration_ms).sum();
    let _ = writeln!(
        o,
        "<p>Bars: {} cases, {} in total; colour shows the outcome.</p>\n</section>",
        format_number(cases.len() as f64),
        e(&human_duration(total))
    );
}

/// For runs without durations (e.g. a probe): the figures, one bar each, scaled within
/// their unit so that figures of one unit compare.
fn figures_chart(o: &mut String, r: &Report) {
    o.push_str("<section id=\"chart\">\n<h2>Figures</h2>\n");
    let figures: Vec<(String, &crate::Measurement)> = r
        .cases()
        .flat_map(|(s, c)| {
            c.measurements
                .iter()
                .filter(|m| m.value.is_finite())
                .map(move |m| (format!("{} / {} / {}", s.name, c.id, m.name), m))
        })
        .take(CHART_MAX_BARS)
        .collect();
    if figures.is_empty() {
        o.push_str("<p>No case recorded a duration or a figure.</p>\n</section>\n");
        return;
    }
    let unit_max = |unit: &str| {
        figures
            .iter()
            .filter(|(_, m)| m.unit == unit)
            .map(|(_, m)| m.value.abs())
            .fold(0.0_f64, f64::max)
    };
    let (label_w, bar_w, value_w, row_h, top) = (300.0, 520.0, 90.0, 20.0, 6.0);
    let width = label_w + bar_w + value_w;
    let height = top * 2.0 + row_h * figures.len() as f64;
    let _ = writeln!(
        o,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" viewBox=\"0 0 {width} {height}\" width=\"100%\" style=\"max-width:{width}px\" aria-labelledby=\"chart-title\">\n<title id=\"chart-title\">Figures, scaled within each unit</title>"
    );
    for (i, (label, m)) in figures.iter().enumerate() {
        let y = top + row_h * i as f64;
        let max = unit_max(&m.unit);
        let w = if max > 0.0 {
            (m.value.abs() / max * bar_w).max(1.0)
        } else {
            1.0
        };
        let _ = writeln!(
            o,
            "<g><title>{}: {} ({})</title><text x=\"{}\" y=\"{:.0}\" text-anchor=\"end\">{}</text>\
             <rect x=\"{label_w}\" y=\"{:.0}\" width=\"{:.1}\" height=\"{:.0}\" rx=\"2\" fill=\"#0969da\"/>\
             <text x=\"{:.1}\" y=\"{:.0}\">{}</text></g>",
            e(label),
            e(&m.display_value()),
            e(m.direction.as_str()),
            label_w - 6.0,
            y + row_h * 0.7,
            e(&truncate(label, 44)),
            y + 3.0,
            w,
            row_h - 6.0,
            label_w + w + 6.0,
            y + row_h * 0.7,
            e(&m.display_value()),
        );
    }
    o.push_str("</svg>\n</section>\n");
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use crate::{render, Case, Format, Identity, Measurement, Outcome, Report};

    #[test]
    fn figures_chart_without_durations() {
        let mut r = Report::new(Identity::new("probe", "0.1.0", "d"));
        r.add_case(
            "host",
            Case::new("kvm.exit_round_trip", Outcome::Pass)
                .measurement(Measurement::lower_is_better("round_trip", 9.1, "µs"))
                .measurement(Measurement::info("ratio", 3700.0, "")),
        );
        let h = render(&r, Format::Html);
        assert!(h.contains("<h2>Figures</h2>"), "{h}");
        assert!(h.contains("host / kvm.exit_round_trip / round_trip: 9.1 µs"));
        assert_eq!(h.matches("<rect").count(), 2);
        let empty = Report::new(Identity::new("probe", "0.1.0", "d"));
        assert!(render(&empty, Format::Html).contains("No case recorded a duration or a figure."));
    }

    #[test]
    fn self_contained_and_escaped() {
        let mut r = Report::new(Identity::new("certify", "0.1.0", "2026-11-25T14:57:18Z"));
        r.add_case(
            "p",
            Case::new("<script>alert(1)</script>", Outcome::Fail)
                .duration_ms(5)
                .log("</pre><img onerror=x>"),
        );
        let h = render(&r, Format::Html);
        assert!(!h.contains("<script>"));
        assert!(!h.contains("<img"));
        assert!(h.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(h.contains("id=\"verdict\" class=\"verdict verdict-fail\""));
        for external in ["src=", "<link", "@import", "url("] {
            assert!(!h.contains(external), "external reference {external}");
        }
        assert!(h.contains("<h2>Case durations</h2>"));
        // The verdict comes before any table.
        assert!(h.find("id=\"verdict\"").unwrap() < h.find("<table").unwrap());
    }
}
