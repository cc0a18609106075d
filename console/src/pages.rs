//! Server-rendered HTML pages: hosts, a host, runs (with the pass/fail trend), a run (the
//! HTML report's own rendering), VMs, a VM (start/stop, live console), compare. Every
//! value from the store is escaped; the only script is a little inline progressive
//! enhancement (create/start/stop through the API, the console through SSE).
use std::fmt::Write;

use crate::http::{App, Req, Resp};
use crate::store::Page;
use crate::ApiError;

/// Escapes text for HTML content and quoted attributes.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#222}\
nav{background:#1f2d3d;padding:.6em 1em}nav a{color:#fff;margin-right:1em;text-decoration:none}\
main{padding:1em;max-width:70em}table{border-collapse:collapse;width:100%}\
th,td{text-align:left;padding:.3em .5em;border-bottom:1px solid #ddd;vertical-align:top}\
.b{display:inline-block;padding:.1em .5em;border-radius:.8em;font-size:.85em;color:#fff;background:#777}\
.pass,.supported,.certified,.compatible,.exited{background:#2e7d32}.warn,.untested,.stopped{background:#b26a00}\
.fail,.unsupported,.failed{background:#c62828}.running{background:#1565c0}\
.bar{display:inline-block;height:.8em;background:#2e7d32}.bar.f{background:#c62828}\
pre{background:#111;color:#eee;padding:.6em;overflow:auto;max-height:30em;white-space:pre-wrap}\
.scroll{overflow-x:auto}form label{display:inline-block;margin:.2em .6em .2em 0}\
@media (max-width:40em){.wide{display:none}main{padding:.5em}}\
@media print{nav,button,form{display:none}pre{max-height:none;background:#fff;color:#000}}";

fn nav() -> &'static str {
    "<nav><a href=\"/hosts\">Hosts</a><a href=\"/runs\">Runs</a><a href=\"/vms\">VMs</a>\
     <a href=\"/compare\">Compare</a><a href=\"/certify\">Certify</a></nav>"
}

pub(crate) fn page(title: &str, body: &str) -> String {
    page_with_head(title, "", body)
}

/// A page with `head` (trusted markup) added to its head.
pub(crate) fn page_with_head(title: &str, head: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">{head}\
         <title>{} · hvcert</title><style>{STYLE}</style></head><body>{}<main>{body}</main></body></html>",
        esc(title),
        nav()
    )
}

pub(crate) fn badge(slug: &str, words: &str) -> String {
    format!("<span class=\"b {}\">{}</span>", esc(slug), esc(words))
}

/// The page for an error.
pub fn error_page(e: &ApiError) -> String {
    page(
        "Error",
        &format!(
            "<h1>{}</h1><p>{}</p>{}",
            e.status,
            esc(&e.message),
            if e.status == 401 {
                "<p><a href=\"/login\">Sign in</a></p>"
            } else {
                ""
            }
        ),
    )
}

fn id(s: &str) -> Result<i64, ApiError> {
    s.parse()
        .map_err(|_| ApiError::new(404, format!("{s:?} is not an id")))
}

/// Routes one page request.
pub fn route(app: &App, req: &Req) -> Result<Resp, ApiError> {
    if req.path == "/login" {
        return login(app, req);
    }
    if req.method != "GET" {
        return Err(ApiError::new(405, "pages are read with GET"));
    }
    let parts: Vec<&str> = req.path.trim_end_matches('/').split('/').skip(1).collect();
    let html = match parts.as_slice() {
        [] | [""] | ["hosts"] => hosts(app)?,
        ["hosts", h] => host(app, id(h)?)?,
        ["runs"] => runs(app, req)?,
        ["runs", r] => run(app, id(r)?)?,
        ["vms"] => vms(app)?,
        ["vms", v] => vm(app, id(v)?)?,
        ["compare"] => compare(app, req)?,
        ["certify"] => crate::pages_certify::list(app)?,
        ["certify", j] => crate::pages_certify::job(app, id(j)?)?,
        _ => return Err(ApiError::new(404, format!("no page {}", req.path))),
    };
    Ok(Resp::html(200, html))
}

/// `GET /login`: a form for the token; `POST /login` (form field `token`): sets the token
/// cookie (HttpOnly, SameSite=Strict) and goes to the hosts page.
fn login(app: &App, req: &Req) -> Result<Resp, ApiError> {
    let form = "<h1>Sign in</h1><form method=\"post\" action=\"/login\"><label>Token \
                <input name=\"token\" type=\"password\" autocomplete=\"current-password\"></label> \
                <button>Sign in</button></form>";
    match req.method.as_str() {
        "GET" => Ok(Resp::html(200, page("Sign in", form))),
        "POST" => {
            let body = String::from_utf8_lossy(&req.body);
            let fields = crate::http::parse_query(&body);
            let token = fields
                .iter()
                .find(|(k, _)| k == "token")
                .map(|(_, v)| v.as_str())
                .unwrap_or("");
            if token.is_empty() || !app.token_ok(token) || token.contains([';', '\r', '\n']) {
                return Ok(Resp::html(
                    401,
                    page("Sign in", &format!("<p>Wrong token.</p>{form}")),
                ));
            }
            Ok(Resp::Redirect {
                location: "/hosts".into(),
                set_cookie: Some(format!(
                    "{}={token}; HttpOnly; SameSite=Strict; Path=/{}",
                    crate::http::TOKEN_COOKIE,
                    if app.tls { "; Secure" } else { "" }
                )),
            })
        }
        _ => Err(ApiError::new(405, "GET or POST /login")),
    }
}

fn hosts(app: &App) -> Result<String, ApiError> {
    let hosts = app
        .store
        .hosts(Page::first(crate::api::LIST_LIMIT))
        .map_err(ApiError::internal)?;
    let mut b = String::from("<h1>Hosts</h1>");
    if hosts.is_empty() {
        b.push_str("<p>No host yet: import a run (<code>hvcert serve --import run.json</code> or <code>POST /api/runs</code>).</p>");
    }
    b.push_str("<div class=\"scroll\"><table><tr><th>Host</th><th>Verdict</th><th class=\"wide\">CPU</th><th>Runs</th><th class=\"wide\">Updated</th></tr>");
    for h in hosts {
        let score = h.score.map(|s| format!(" {s}/100")).unwrap_or_default();
        let _ = write!(
            b,
            "<tr><td><a href=\"/hosts/{}\">{}</a></td><td>{}</td><td class=\"wide\">{}</td><td>{}</td><td class=\"wide\">{}</td></tr>",
            h.id,
            esc(&h.name),
            badge(&h.verdict, &format!("{}{score}", h.verdict)),
            esc(&h.cpu),
            h.runs,
            esc(&h.updated)
        );
    }
    b.push_str("</table></div>");
    b.push_str(&crate::pages_imports::sections(app)?);
    Ok(page("Hosts", &b))
}

fn runs_table(runs: &[crate::store::RunSummary]) -> String {
    let mut b = String::from(
        "<div class=\"scroll\"><table id=\"runs\"><tr><th>Run</th><th>Verdict</th><th>Host</th>\
         <th class=\"wide\">Command</th><th class=\"wide\">Date</th><th>Pass / fail</th></tr>",
    );
    for r in runs {
        let failing = r.fail + r.crash + r.timeout + r.not_run;
        let total = r.total.max(1) as f64;
        let _ = write!(
            b,
            "<tr><td><a href=\"/runs/{id}\">#{id}</a></td><td>{}</td><td>{}</td><td class=\"wide\">{}</td>\
             <td class=\"wide\">{}</td><td><span class=\"bar\" style=\"width:{:.1}em\"></span>\
             <span class=\"bar f\" style=\"width:{:.1}em\"></span> {} / {}</td></tr>",
            badge(&r.verdict, &r.verdict_words),
            esc(r.host.as_deref().unwrap_or("—")),
            esc(&r.command),
            esc(&r.date),
            8.0 * r.pass as f64 / total,
            8.0 * failing as f64 / total,
            r.pass,
            failing,
            id = r.id,
        );
    }
    b.push_str("</table></div>");
    b
}

fn host(app: &App, hid: i64) -> Result<String, ApiError> {
    let (h, facts) = app
        .store
        .host(hid)
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::new(404, format!("no host {hid}")))?;
    let runs = app
        .store
        .runs(Some(hid), Page::first(crate::api::LIST_LIMIT))
        .map_err(ApiError::internal)?;
    let facts = serde_json::to_string_pretty(&facts).unwrap_or_default();
    let b = format!(
        "<h1>{} {}</h1><p>{}</p><h2>Runs</h2>{}<h2>Probe facts</h2><pre>{}</pre>",
        esc(&h.name),
        badge(&h.verdict, &h.verdict),
        esc(&h.cpu),
        runs_table(&runs),
        esc(&facts)
    );
    Ok(page(&h.name, &b))
}

/// Runs per page of the runs table.
pub const RUNS_PER_PAGE: usize = 100;

fn runs(app: &App, req: &Req) -> Result<String, ApiError> {
    let n: usize = req
        .param("page")
        .map(|p| p.parse().map_err(|_| ApiError::new(400, "page: a number")))
        .transpose()?
        .unwrap_or(1)
        .max(1);
    let offset = (n - 1).saturating_mul(RUNS_PER_PAGE);
    let runs = app
        .store
        .runs(
            None,
            Page {
                limit: RUNS_PER_PAGE,
                offset,
            },
        )
        .map_err(ApiError::internal)?;
    let total = app.store.runs_count(None).map_err(ApiError::internal)? as usize;
    let mut pager = String::from("<p class=\"pager\">");
    if n > 1 {
        let _ = write!(pager, "<a href=\"/runs?page={}\">newer</a> ", n - 1);
    }
    let _ = write!(
        pager,
        "runs {}–{} of {total}",
        (offset + 1).min(total),
        offset + runs.len()
    );
    if offset + runs.len() < total {
        let _ = write!(pager, " <a href=\"/runs?page={}\">older</a>", n + 1);
    }
    pager.push_str("</p>");
    // The trend: oldest to newest, one column per run, pass green over failing red.
    let mut trend = String::from("<div class=\"trend\" aria-label=\"pass/fail trend\" style=\"display:flex;align-items:flex-end;gap:2px;height:3em\">");
    for r in runs.iter().rev() {
        let total = r.total.max(1) as f64;
        let failing = (r.fail + r.crash + r.timeout + r.not_run) as f64;
        let _ = write!(
            trend,
            "<a href=\"/runs/{}\" title=\"#{} {}\" style=\"display:flex;flex-direction:column;width:.7em;height:100%\">\
             <span style=\"flex:{:.3};background:#c62828\"></span><span style=\"flex:{:.3};background:#2e7d32\"></span></a>",
            r.id,
            r.id,
            esc(&r.verdict_words),
            failing / total,
            r.pass as f64 / total
        );
    }
    trend.push_str("</div>");
    Ok(page(
        "Runs",
        &format!(
            "<h1>Runs</h1>{trend}{pager}{}{IMPORT_FORM}",
            runs_table(&runs)
        ),
    ))
}

/// One upload imports a report, probe or fleet document, a package, or a report folder as
/// a tar(.gz) archive (`POST /api/import`).
const IMPORT_FORM: &str = "<h2>Import</h2><form id=\"import\"><input type=\"file\" name=\"file\" \
     accept=\".json,.tar,.gz,.tgz\"> <button>Import</button> <span id=\"imsg\"></span></form>\
     <script>document.getElementById('import').onsubmit=async e=>{e.preventDefault();\
     const f=e.target.file.files[0],m=document.getElementById('imsg');if(!f)return;\
     const t=f.name.endsWith('.json')?'application/json':'application/octet-stream';\
     const r=await fetch('/api/import?name='+encodeURIComponent(f.name),{method:'POST',headers:{'Content-Type':t},body:f});\
     const j=await r.json();if(r.ok){location.reload()}else{m.textContent=j.error}};</script>";

/// The run page: the HTML report's own rendering, with the console's navigation.
fn run(app: &App, rid: i64) -> Result<String, ApiError> {
    let report = app
        .store
        .report(rid)
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::new(404, format!("no run {rid}")))?;
    let html = reports::render(&report, reports::Format::Html);
    let header = format!(
        "<div style=\"font-family:system-ui,sans-serif\"><style>nav{{background:#1f2d3d;padding:.6em 1em}}nav a{{color:#fff;margin-right:1em;text-decoration:none}}@media print{{nav{{display:none}}}}</style>{}<p style=\"margin:.5em 1em\">Run #{rid} · <a href=\"/api/runs/{rid}\">JSON</a> · <a href=\"/compare?run={rid}\">compare…</a></p></div>",
        nav()
    );
    Ok(match html.find("<body") {
        Some(i) => match html[i..].find('>') {
            Some(j) => format!("{}{header}{}", &html[..i + j + 1], &html[i + j + 1..]),
            None => html,
        },
        None => format!("{header}{html}"),
    })
}

fn vms(app: &App) -> Result<String, ApiError> {
    let vms = app
        .store
        .vms(Page::first(crate::api::LIST_LIMIT))
        .map_err(ApiError::internal)?;
    let mut b = String::from(
        "<h1>VMs</h1><form id=\"create\"><label>Name <input name=\"name\" value=\"vm\"></label>\
         <label>Kernel <input name=\"kernel\" value=\"builtin\" size=\"30\"></label>\
         <label>Memory MiB <input name=\"memory_mib\" type=\"number\" value=\"128\"></label>\
         <label>vCPUs <input name=\"vcpus\" type=\"number\" value=\"1\"></label>\
         <label>Interface <select name=\"interface\"><option>hyperv</option><option>xen</option>\
         <option>both</option><option>none</option></select></label>\
         <label>Timeout s <input name=\"timeout_s\" type=\"number\" value=\"60\"></label>\
         <label><input name=\"net\" type=\"checkbox\"> loopback NIC</label>\
         <button type=\"submit\">Create</button> <span id=\"msg\"></span></form>\
         <div class=\"scroll\"><table><tr><th>VM</th><th>State</th><th class=\"wide\">Created</th><th>End</th></tr>",
    );
    for v in vms {
        let _ = write!(
            b,
            "<tr><td><a href=\"/vms/{}\">{} #{}</a></td><td>{}</td><td class=\"wide\">{}</td><td>{}</td></tr>",
            v.id,
            esc(&v.name),
            v.id,
            badge(&v.state, &v.state),
            esc(&v.created),
            esc(v.end_reason.as_deref().unwrap_or(""))
        );
    }
    b.push_str("</table></div>");
    b.push_str(
        "<script>document.getElementById('create').onsubmit=async e=>{e.preventDefault();\
         const f=e.target,m=document.getElementById('msg');const spec={name:f.name.value,kernel:f.kernel.value,\
         memory_mib:+f.memory_mib.value,vcpus:+f.vcpus.value,interface:f.interface.value,\
         timeout_s:+f.timeout_s.value,nets:f.net.checked?['loopback']:[]};\
         const r=await fetch('/api/vms',{method:'POST',headers:{'Content-Type':'application/json'},body:JSON.stringify(spec)});\
         const j=await r.json();if(r.ok){location.href='/vms/'+j.id}else{m.textContent=j.error}};</script>",
    );
    Ok(page("VMs", &b))
}

fn vm(app: &App, vid: i64) -> Result<String, ApiError> {
    let v = app
        .store
        .vm(vid)
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::new(404, format!("no VM {vid}")))?;
    let config = serde_json::to_string_pretty(&v.config).unwrap_or_default();
    let b = format!(
        "<h1>{} #{vid} <span id=\"state\">{}</span></h1>\
         <p><button id=\"start\">Start</button> <button id=\"stop\">Stop</button> <span id=\"msg\"></span></p>\
         <p id=\"end\">{}</p><h2>Console</h2><pre id=\"console\">{}</pre>\
         <h2>Configuration</h2><pre>{}</pre>\
         <script>const id={vid},c=document.getElementById('console'),st=document.getElementById('state'),\
         msg=document.getElementById('msg'),end=document.getElementById('end');let es;\
         function follow(){{if(es)es.close();c.textContent='';es=new EventSource('/api/vms/'+id+'/console');\
         es.addEventListener('console',e=>{{c.textContent+=JSON.parse(e.data);c.scrollTop=c.scrollHeight}});\
         es.addEventListener('end',e=>{{const j=JSON.parse(e.data);es.close();\
         st.innerHTML='<span class=\"b '+j.state+'\">'+j.state+'</span>';end.textContent=j.reason||''}});}}\
         async function act(a){{const r=await fetch('/api/vms/'+id+'/'+a,{{method:'POST',headers:{{'Content-Type':'application/json'}}}});\
         const j=await r.json();msg.textContent=r.ok?'':j.error;if(r.ok&&a=='start'){{st.innerHTML='<span class=\"b running\">running</span>';end.textContent='';follow()}}}}\
         document.getElementById('start').onclick=()=>act('start');document.getElementById('stop').onclick=()=>act('stop');\
         if({running})follow();</script>",
        esc(&v.name),
        badge(&v.state, &v.state),
        esc(v.end_reason.as_deref().unwrap_or("")),
        esc(&app.vms.console(vid).map(|c| c.text()).unwrap_or_default()),
        esc(&config),
        running = v.state == "running",
    );
    Ok(page(&v.name, &b))
}

fn compare(app: &App, req: &Req) -> Result<String, ApiError> {
    let runs = app
        .store
        .runs(None, Page::first(crate::api::LIST_LIMIT))
        .map_err(ApiError::internal)?;
    let options = |sel: Option<&str>| {
        runs.iter()
            .map(|r| {
                let s = if sel == Some(r.id.to_string().as_str()) {
                    " selected"
                } else {
                    ""
                };
                format!(
                    "<option value=\"{}\"{s}>#{} {} {} {}</option>",
                    r.id,
                    r.id,
                    esc(&r.command),
                    esc(&r.date),
                    esc(&r.verdict_words)
                )
            })
            .collect::<String>()
    };
    let mut b = format!(
        "<h1>Compare</h1><form method=\"get\"><label>Baseline <select name=\"base\">{}</select></label>\
         <label>Run <select name=\"run\">{}</select></label><button>Compare</button></form>",
        options(req.param("base")),
        options(req.param("run"))
    );
    if req.param("base").is_some() && req.param("run").is_some() {
        match crate::api::compare(app, req) {
            Ok(c) => {
                let (slug, words) = if c.passed {
                    ("pass", "GATE PASSES")
                } else {
                    ("fail", "GATE FAILS: regression")
                };
                let _ = write!(
                    b,
                    "<h2>{}</h2><p>Baseline <a href=\"/runs/{}\">#{}</a>, run <a href=\"/runs/{}\">#{}</a> (the rules of <code>hvcert gate</code>).</p><pre>{}</pre>",
                    badge(slug, words),
                    c.base, c.base, c.run, c.run,
                    esc(&c.text)
                );
            }
            Err(e) => {
                let _ = write!(b, "<p class=\"b fail\">{}</p>", esc(&e.message));
            }
        }
    }
    Ok(page("Compare", &b))
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            super::esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
