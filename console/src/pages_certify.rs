//! The certify pages: `/certify` (the form that starts a run through `POST /api/certify`,
//! and the runs started here) and `/certify/ID` (a run's progress: a bar, counts per
//! outcome and each case as it finished; it reloads itself every 2 s while the run goes
//! on, and links to the imported run once done).
use std::fmt::Write;

use crate::http::App;
use crate::pages::{badge, esc, page, page_with_head};
use crate::store::Page;
use crate::ApiError;

fn state_slug(state: &str) -> &'static str {
    match state {
        "done" => "pass",
        "failed" | "interrupted" => "fail",
        "running" | "queued" => "running",
        _ => "",
    }
}

/// `GET /certify`.
pub fn list(app: &App) -> Result<String, ApiError> {
    let mut b = String::from("<h1>Certify</h1>");
    match app
        .certify
        .backend()
        .and_then(|be| be.profiles().map_err(ApiError::internal))
    {
        Err(e) => {
            let _ = write!(b, "<p>{}</p>", esc(&e.message));
        }
        Ok(profiles) => {
            b.push_str("<form id=\"certify\"><fieldset><legend>Profiles (none: all)</legend>");
            for p in &profiles {
                let _ = write!(
                    b,
                    "<label title=\"{}\"><input type=\"checkbox\" name=\"profile\" value=\"{}\"> {} ({} cases)</label>",
                    esc(&p.description),
                    esc(&p.name),
                    esc(&p.name),
                    p.cases.len()
                );
            }
            b.push_str(
                "</fieldset><label>Jobs <input name=\"jobs\" type=\"number\" min=\"1\" max=\"64\" value=\"2\"></label>\
                 <label>Only cases <input name=\"cases\" placeholder=\"boot, cpuid_signature\"></label>\
                 <button type=\"submit\">Start</button> <span id=\"msg\"></span></form>\
                 <script>document.getElementById('certify').onsubmit=async e=>{e.preventDefault();\
                 const f=e.target,m=document.getElementById('msg');\
                 const req={profiles:[...f.querySelectorAll('[name=profile]:checked')].map(c=>c.value),\
                 cases:f.cases.value.split(',').map(s=>s.trim()).filter(s=>s),jobs:+f.jobs.value};\
                 const r=await fetch('/api/certify',{method:'POST',headers:{'Content-Type':'application/json'},body:JSON.stringify(req)});\
                 const j=await r.json();if(r.ok){location.href='/certify/'+j.id}else{m.textContent=j.error}};</script>",
            );
        }
    }
    let jobs = app
        .store
        .jobs(Page::first(crate::api::LIST_LIMIT))
        .map_err(ApiError::internal)?;
    b.push_str(
        "<h2>Runs started here</h2><div class=\"scroll\"><table><tr><th>Run</th><th>State</th>\
         <th>Progress</th><th class=\"wide\">Started</th><th>Report</th></tr>",
    );
    for j in jobs {
        let _ = write!(
            b,
            "<tr><td><a href=\"/certify/{id}\">certify #{id}</a></td><td>{}</td><td>{} / {}</td><td class=\"wide\">{}</td><td>{}</td></tr>",
            badge(state_slug(&j.state), &j.state),
            j.finished,
            j.planned.map_or("?".to_string(), |p| p.to_string()),
            esc(j.started.as_deref().unwrap_or("")),
            j.run_id
                .map(|r| format!("<a href=\"/runs/{r}\">run #{r}</a>"))
                .unwrap_or_default(),
            id = j.id,
        );
    }
    b.push_str("</table></div>");
    Ok(page("Certify", &b))
}

/// `GET /certify/ID`.
pub fn job(app: &App, id: i64) -> Result<String, ApiError> {
    let j = crate::api::job(app, id).map_err(|e| ApiError::new(e.status, e.message))?;
    let cases = app
        .store
        .job_cases(id, Page::first(crate::api_lists::MAX_LIMIT))
        .map_err(ApiError::internal)?;
    let going = j.state == "running" || j.state == "queued";
    let planned = j.planned.unwrap_or(0).max(j.finished).max(1);
    let failing: i64 = j
        .counts
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "pass" | "skip"))
        .map(|(_, v)| v)
        .sum();
    let pass = j.counts.get("pass").copied().unwrap_or(0);
    let mut b = format!(
        "<h1>Certify run #{id} <span id=\"state\">{}</span></h1>\
         <p id=\"progress\"><span class=\"bar\" style=\"width:{:.1}em\"></span><span class=\"bar f\" style=\"width:{:.1}em\"></span> \
         {} of {} cases finished: {}</p>",
        badge(state_slug(&j.state), &j.state),
        20.0 * pass as f64 / planned as f64,
        20.0 * failing as f64 / planned as f64,
        j.finished,
        j.planned.map_or("?".to_string(), |p| p.to_string()),
        esc(&j
            .counts
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(", ")),
    );
    if let Some(e) = &j.error {
        let _ = write!(b, "<p class=\"b fail\">{}</p>", esc(e));
    }
    if let Some(r) = j.run_id {
        let _ = write!(
            b,
            "<p>Report: <a id=\"report\" href=\"/runs/{r}\">run #{r}</a></p>"
        );
    }
    let _ = write!(
        b,
        "<h2>Request</h2><pre>{}</pre><h2>Cases as they finished</h2><div class=\"scroll\"><table id=\"cases\">\
         <tr><th>#</th><th>Profile</th><th>Case</th><th>Outcome</th><th>ms</th><th class=\"wide\">Reason</th></tr>",
        esc(&serde_json::to_string_pretty(&j.request).unwrap_or_default())
    );
    for c in cases {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}{}</td><td>{}</td><td>{}</td><td class=\"wide\">{}</td></tr>",
            c.seq,
            esc(&c.suite),
            if c.blocker { "*" } else { "" },
            esc(&c.id),
            badge(&c.outcome, &c.outcome),
            c.duration_ms,
            esc(c.reason.as_deref().unwrap_or(""))
        );
    }
    b.push_str("</table></div>");
    let head = if going {
        "<meta http-equiv=\"refresh\" content=\"2\">"
    } else {
        ""
    };
    Ok(page_with_head(&format!("certify #{id}"), head, &b))
}
