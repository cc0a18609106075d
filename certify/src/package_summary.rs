//! The merged summary of a certification package ([`crate::package`]): per host, each
//! run's verdict, case counts, failed blockers and waivers, as JSON, HTML and Markdown.
use serde::{Deserialize, Serialize};

/// The `schema` of a package summary.
pub const SCHEMA: &str = "hvcert.package-summary/v1";

/// The whole package's summary.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Summary {
    /// [`SCHEMA`].
    pub schema: String,
    /// When the package was made (RFC 3339, UTC).
    pub created: String,
    /// Version of the `hvcert` that made it.
    pub hvcert_version: String,
    /// One per host, sorted by name.
    pub hosts: Vec<HostSummary>,
}

/// One host and its runs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HostSummary {
    /// The host's name (given as HOST=, or from its probe facts).
    pub host: String,
    /// Its folder in the archive.
    pub folder: String,
    /// Its probe and certify runs (probe first, each kind in date order).
    pub runs: Vec<RunSummary>,
}

/// One run of a host.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunSummary {
    /// "probe" or "certify".
    pub kind: String,
    /// When it ran.
    pub date: String,
    /// Its report in the archive.
    pub file: String,
    /// The run's verdict label ("PASS", "FAIL", ...).
    pub verdict: String,
    /// The probe's own verdict for the host ("certified", ..., with its score), for a
    /// probe report.
    pub host_verdict: Option<String>,
    /// "N cases: …" per outcome.
    pub cases: String,
    /// `SUITE/CASE` of every failed blocker case without a waiver.
    pub blockers: Vec<String>,
    /// `SUITE/CASE: pattern (reason, expires DATE)` of every waived case.
    pub waivers: Vec<String>,
}

impl RunSummary {
    /// The summary of `report`, stored in the archive as `file`.
    pub fn of(report: &reports::Report, file: &str) -> RunSummary {
        let mut r = report.clone();
        r.refresh_summary();
        let mut blockers = Vec::new();
        let mut waivers = Vec::new();
        for s in &r.suites {
            for c in &s.cases {
                match &c.waiver {
                    Some(w) => waivers.push(format!(
                        "{}/{}: {} ({}, expires {})",
                        s.name, c.id, w.pattern, w.reason, w.expires
                    )),
                    None if c.blocker && c.outcome.is_failure() => {
                        blockers.push(format!("{}/{}", s.name, c.id))
                    }
                    None => {}
                }
            }
        }
        let h = &r.identity.host;
        let host_verdict = (r.identity.command == "probe")
            .then(|| {
                let class = h.pointer("/verdict/class")?.as_str()?;
                let score = h.pointer("/verdict/score")?.as_u64()?;
                Some(format!("{class} ({score}/100)"))
            })
            .flatten();
        RunSummary {
            kind: r.identity.command.clone(),
            date: r.identity.date.clone(),
            file: file.to_string(),
            verdict: r.summary.verdict.label().to_string(),
            host_verdict,
            cases: r.summary.counts_line(),
            blockers,
            waivers,
        }
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn md(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

/// The summary as a standalone HTML page (one table row per run).
pub fn html(s: &Summary) -> String {
    let mut out = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>hvcert certification package</title>\
         <style>body{font-family:sans-serif}table{border-collapse:collapse}\
         td,th{border:1px solid #999;padding:4px 8px;text-align:left;vertical-align:top}</style>\
         </head><body>\n<h1>hvcert certification package</h1>\n",
    );
    out.push_str(&format!(
        "<p>{} host(s), made {} by hvcert {}</p>\n<table>\n<tr><th>Host</th><th>Run</th>\
         <th>Date</th><th>Verdict</th><th>Cases</th><th>Failed blockers</th><th>Waivers</th>\
         <th>Report</th></tr>\n",
        s.hosts.len(),
        esc(&s.created),
        esc(&s.hvcert_version)
    ));
    for row in rows(s) {
        out.push_str("<tr>");
        for cell in &row {
            out.push_str(&format!("<td>{}</td>", esc(cell)));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n</body></html>\n");
    out
}

/// One table row per run, unescaped, in the column order both renderers use: host, run
/// kind, date, verdict (with the host's probe verdict), cases, failed blockers, waivers,
/// report file.
fn rows(s: &Summary) -> Vec<[String; 8]> {
    let mut rows = Vec::new();
    for h in &s.hosts {
        for r in &h.runs {
            let verdict = match &r.host_verdict {
                Some(v) => format!("{} — host {}", r.verdict, v),
                None => r.verdict.clone(),
            };
            rows.push([
                h.host.clone(),
                r.kind.clone(),
                r.date.clone(),
                verdict,
                r.cases.clone(),
                list(&r.blockers),
                list(&r.waivers),
                r.file.clone(),
            ]);
        }
    }
    rows
}

/// The summary as Markdown (one table row per run).
pub fn markdown(s: &Summary) -> String {
    let mut out = format!(
        "# hvcert certification package\n\n{} host(s), made {} by hvcert {}\n\n\
         | Host | Run | Date | Verdict | Cases | Failed blockers | Waivers | Report |\n\
         |---|---|---|---|---|---|---|---|\n",
        s.hosts.len(),
        s.created,
        s.hvcert_version
    );
    for row in rows(s) {
        let cells: Vec<String> = row.iter().map(|c| md(c)).collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> Summary {
        Summary {
            schema: "s".into(),
            created: "2026-12-06".into(),
            hvcert_version: "0.1.0".into(),
            hosts: vec![HostSummary {
                host: "Dell <R630>".into(),
                folder: "hosts/dell".into(),
                runs: vec![RunSummary {
                    kind: "certify".into(),
                    date: "2026-12-06".into(),
                    file: "hosts/dell/certify-1.json".into(),
                    verdict: "FAIL".into(),
                    host_verdict: Some("certified".into()),
                    cases: "3 pass, 1 fail".into(),
                    blockers: vec!["boot".into()],
                    waivers: Vec::new(),
                }],
            }],
        }
    }

    #[test]
    fn both_renderers_give_one_escaped_row_per_run() {
        let s = summary();
        let h = html(&s);
        assert!(
            h.contains(
                "<tr><td>Dell &lt;R630&gt;</td><td>certify</td><td>2026-12-06</td>\
                 <td>FAIL — host certified</td><td>3 pass, 1 fail</td><td>boot</td>"
            ),
            "{h}"
        );
        let m = markdown(&s);
        assert!(
            m.contains("| certify | 2026-12-06 | FAIL — host certified | 3 pass, 1 fail | boot |"),
            "{m}"
        );
        assert!(m.contains("| hosts/dell/certify-1.json |\n"), "{m}");
    }
}
