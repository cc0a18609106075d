//! Imported fleet reports and packages: the hosts page's sections (hosts per verdict
//! class; whether a package matches its manifest, who signed it, how many runs came from
//! it; newest first), and a page of each: `/fleets/ID` (every host with its class, score
//! and blockers, and the blockers hosts share) and `/packages/ID` (its check, its
//! problems and the runs imported from it).
use std::fmt::Write;

use crate::http::App;
use crate::pages::{badge, esc, page};
use crate::store::Page;
use crate::ApiError;

/// Fleet reports and packages shown on the hosts page.
const SHOWN: usize = 50;

/// The two sections, empty when nothing of either kind was imported.
pub fn sections(app: &App) -> Result<String, ApiError> {
    let fleets = app
        .store
        .fleets(Page::first(SHOWN))
        .map_err(ApiError::internal)?;
    let packages = app
        .store
        .packages(Page::first(SHOWN))
        .map_err(ApiError::internal)?;
    let mut b = String::new();
    if !fleets.is_empty() {
        b.push_str(
            "<h2>Fleet reports</h2><div class=\"scroll\"><table id=\"fleets\"><tr><th>Fleet</th>\
             <th>Hosts</th><th>By verdict</th><th class=\"wide\">Scored</th></tr>",
        );
        for f in fleets {
            let classes: String = f
                .totals
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(_, n)| n.as_i64().unwrap_or(0) > 0)
                .map(|(c, n)| badge(c, &format!("{n} {c}")))
                .collect::<Vec<_>>()
                .join(" ");
            let _ = write!(
                b,
                "<tr><td><a href=\"/fleets/{id}\">fleet #{id}</a></td><td>{}</td><td>{classes}</td><td class=\"wide\">{}</td></tr>",
                f.hosts,
                esc(&f.date),
                id = f.id
            );
        }
        b.push_str("</table></div>");
    }
    if !packages.is_empty() {
        b.push_str(
            "<h2>Packages</h2><div class=\"scroll\"><table id=\"packages\"><tr><th>Package</th>\
             <th>Check</th><th>Runs</th><th class=\"wide\">Signed by</th><th class=\"wide\">SHA-256</th></tr>",
        );
        for p in packages {
            let check = if p.problems.is_empty() {
                badge("pass", "matches its manifest")
            } else {
                badge("fail", &format!("{} problems", p.problems.len()))
            };
            let _ = write!(
                b,
                "<tr><td><a href=\"/packages/{id}\">{}</a></td><td>{check}</td>\
                 <td>{}</td><td class=\"wide\">{}</td><td class=\"wide\"><code>{}</code></td></tr>",
                esc(&p.name),
                p.runs,
                esc(p.signed_by.as_deref().unwrap_or("unsigned")),
                esc(&p.sha256),
                id = p.id
            );
        }
        b.push_str("</table></div>");
    }
    Ok(b)
}

fn class_badge(class: &str) -> String {
    let slug = match class {
        "certified" | "compatible" => "pass",
        "unsupported" | "failed" => "fail",
        _ => "skip",
    };
    badge(slug, class)
}

/// `GET /fleets/ID`: a fleet report's hosts and shared blockers.
pub fn fleet(app: &App, id: i64) -> Result<String, ApiError> {
    let (f, report) = app
        .store
        .fleet(id)
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::new(404, format!("no fleet report {id}")))?;
    let s = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or("").to_string();
    let totals: String = f
        .totals
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, n)| n.as_i64().unwrap_or(0) > 0)
        .map(|(c, n)| format!("{} ", badge(c, &format!("{n} {c}"))))
        .collect();
    let mut b = format!(
        "<h1>Fleet report #{id}</h1><p>{} hosts scored {} by hvcert {}: {totals}</p>\
         <p><a href=\"/api/fleets/{id}\">JSON</a></p>\
         <h2>Hosts</h2><div class=\"scroll\"><table id=\"hosts\"><tr><th>Host</th><th>Class</th>\
         <th>Score</th><th class=\"wide\">CPU</th><th class=\"wide\">Matched</th><th>Blockers</th></tr>",
        f.hosts,
        esc(&f.date),
        esc(&f.version),
    );
    for h in report["hosts"].as_array().into_iter().flatten() {
        let blockers: Vec<String> = h["blockers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|i| esc(&s(i, "message")))
            .chain(h["error"].as_str().map(esc))
            .collect();
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"wide\">{}</td><td class=\"wide\">{}</td><td>{}</td></tr>",
            esc(&s(h, "name")),
            class_badge(&s(h, "class")),
            h["score"].as_u64().map_or("—".to_string(), |v| v.to_string()),
            esc(&s(&h["identity"], "cpu")),
            esc(&s(h, "matched")),
            blockers.join("<br>"),
        );
    }
    b.push_str("</table></div>");
    let groups = report["groups"].as_array().cloned().unwrap_or_default();
    if !groups.is_empty() {
        b.push_str(
            "<h2>Shared blockers</h2><div class=\"scroll\"><table id=\"groups\"><tr><th>Fact</th>\
             <th>Blocker</th><th>Remedy</th><th>Hosts</th></tr>",
        );
        for g in &groups {
            let hosts: Vec<String> = g["hosts"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|h| h.as_str())
                .map(esc)
                .collect();
            let _ = write!(
                b,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&s(g, "fact")),
                esc(&s(g, "message")),
                esc(&s(g, "remedy")),
                hosts.join(", ")
            );
        }
        b.push_str("</table></div>");
    }
    Ok(page(&format!("fleet #{id}"), &b))
}

/// `GET /packages/ID`: a package's check and the runs imported from it.
pub fn package(app: &App, id: i64) -> Result<String, ApiError> {
    let p = app
        .store
        .package(id)
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::new(404, format!("no package {id}")))?;
    let check = if p.problems.is_empty() {
        badge("pass", "matches its manifest")
    } else {
        badge("fail", &format!("{} problems", p.problems.len()))
    };
    let mut b = format!(
        "<h1>Package {} <span id=\"check\">{check}</span></h1>\
         <p>{} files in its manifest, {} bytes, signed by <code>{}</code>, imported {}.</p>\
         <p>SHA-256 <code>{}</code></p>\
         <p><a href=\"/api/packages/{id}/archive\">Download the archive</a> · <a href=\"/api/packages/{id}\">JSON</a></p>",
        esc(&p.name),
        p.files,
        p.bytes,
        esc(p.signed_by.as_deref().unwrap_or("nobody (unsigned)")),
        esc(&p.imported_at),
        esc(&p.sha256),
    );
    if !p.problems.is_empty() {
        b.push_str("<h2>Problems</h2><ul id=\"problems\">");
        for pr in &p.problems {
            let _ = write!(b, "<li>{}</li>", esc(pr));
        }
        b.push_str("</ul>");
    }
    let runs = app
        .store
        .package_runs(id, Page::first(crate::api::LIST_LIMIT))
        .map_err(ApiError::internal)?;
    let _ = write!(b, "<h2>Runs from it ({})</h2>", p.runs);
    b.push_str(&crate::pages::runs_table(&runs));
    Ok(page(&p.name, &b))
}
