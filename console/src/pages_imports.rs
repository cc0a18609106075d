//! The hosts page's sections for imported fleet reports (hosts per verdict class) and
//! packages (whether they match their manifest, who signed them, how many runs came from
//! them), newest first.
use std::fmt::Write;

use crate::http::App;
use crate::pages::{badge, esc};
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
                "<tr><td><a href=\"/api/fleets/{id}\">fleet #{id}</a></td><td>{}</td><td>{classes}</td><td class=\"wide\">{}</td></tr>",
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
                "<tr><td><a href=\"/api/packages/{id}/archive\">{}</a></td><td>{check}</td>\
                 <td><a href=\"/api/runs?limit=500\">{}</a></td><td class=\"wide\">{}</td><td class=\"wide\"><code>{}</code></td></tr>",
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
