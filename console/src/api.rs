//! The JSON API routes (documented in docs/console-api.md). Errors are `{"error": reason}`
//! with a 4xx/5xx status.
use serde::Serialize;

use crate::api_lists::{list, page};
use crate::http::{App, Req, Resp};
use crate::store::{Page, Table};
use crate::vms::VmSpec;
use crate::ApiError;

/// Most runs a page (host page, compare form) shows.
pub const LIST_LIMIT: usize = crate::api_lists::MAX_LIMIT;

/// The OpenAPI description of this API (hand-kept; `tests/api.rs` checks real answers
/// against it).
pub const OPENAPI: &str = include_str!("../openapi.json");

fn internal(e: crate::store::StoreError) -> ApiError {
    ApiError::internal(e)
}

/// Routes one `/api/...` request.
pub fn route(app: &App, req: &Req) -> Result<Resp, ApiError> {
    let parts: Vec<&str> = req.path.trim_end_matches('/').split('/').skip(2).collect();
    let m = req.method.as_str();
    match (m, parts.as_slice()) {
        ("GET", ["openapi.json"]) => Ok(Resp::Full {
            status: 200,
            content_type: "application/json",
            body: OPENAPI.as_bytes().to_vec(),
        }),
        ("GET", ["hosts"]) => {
            let p = page(req)?;
            let items = app.store.hosts(p).map_err(internal)?;
            let total = app.store.count(Table::Hosts).map_err(internal)?;
            ok(&list(req, p, total, items))
        }
        ("GET", ["hosts", id]) => {
            let id = int(id)?;
            let (host, facts) = app
                .store
                .host(id)
                .map_err(ApiError::internal)?
                .ok_or_else(|| not_found("host", id))?;
            let runs = app
                .store
                .runs(Some(id), Page::first(LIST_LIMIT))
                .map_err(ApiError::internal)?;
            ok(&serde_json::json!({ "host": host, "facts": facts, "runs": runs }))
        }
        ("GET", ["runs"]) => {
            let p = page(req)?;
            let host = req.param("host").map(int).transpose()?;
            let items = app.store.runs(host, p).map_err(internal)?;
            let total = app.store.runs_count(host).map_err(internal)?;
            ok(&list(req, p, total, items))
        }
        ("POST", ["import"]) => {
            let ok_type = matches!(
                req.content_type
                    .as_deref()
                    .and_then(|c| c.split(';').next()),
                Some(
                    "application/json"
                        | "application/x-tar"
                        | "application/gzip"
                        | "application/octet-stream"
                )
            );
            if !ok_type {
                return Err(ApiError::new(
                    415,
                    "Content-Type: application/json (a report, probe or fleet document), \
                     application/x-tar or application/gzip (a report folder or package)",
                ));
            }
            let name = req.param("name").unwrap_or("upload");
            let done = crate::imports::import_bytes(
                &app.store,
                app.certify.backend().ok().map(|b| &**b),
                &app.data_dir.join("tmp"),
                name,
                req.body.clone(),
                &format!("upload:{name}"),
            )?;
            Ok(Resp::json(201, &done))
        }
        ("GET", ["fleets"]) => {
            let p = page(req)?;
            let items = app.store.fleets(p).map_err(internal)?;
            let total = app.store.count(Table::Fleets).map_err(internal)?;
            ok(&list(req, p, total, items))
        }
        ("GET", ["fleets", id]) => {
            let id = int(id)?;
            let (fleet, report) = app
                .store
                .fleet(id)
                .map_err(internal)?
                .ok_or_else(|| not_found("fleet report", id))?;
            ok(&serde_json::json!({ "fleet": fleet, "report": report }))
        }
        ("GET", ["packages"]) => {
            let p = page(req)?;
            let items = app.store.packages(p).map_err(internal)?;
            let total = app.store.count(Table::Packages).map_err(internal)?;
            ok(&list(req, p, total, items))
        }
        ("GET", ["packages", id]) => {
            let id = int(id)?;
            ok(&app
                .store
                .package(id)
                .map_err(internal)?
                .ok_or_else(|| not_found("package", id))?)
        }
        ("GET", ["packages", id, "archive"]) => {
            let id = int(id)?;
            let body = app
                .store
                .package_archive(id)
                .map_err(internal)?
                .ok_or_else(|| not_found("package", id))?;
            Ok(Resp::Full {
                status: 200,
                content_type: "application/octet-stream",
                body,
            })
        }
        ("GET", ["profiles"]) => ok(&app
            .certify
            .backend()?
            .profiles()
            .map_err(ApiError::internal)?),
        ("POST", ["certify"]) => {
            json_body(req)?;
            let r: crate::backend::CertifyRequest = serde_json::from_slice(&req.body)
                .map_err(|e| ApiError::new(400, format!("not a certify request: {e}")))?;
            let id = app.certify.start(r)?;
            Ok(Resp::json(202, &job(app, id)?))
        }
        ("GET", ["certify"]) => {
            let p = page(req)?;
            let items = app.store.jobs(p).map_err(internal)?;
            let total = app.store.count(Table::CertifyJobs).map_err(internal)?;
            ok(&list(req, p, total, items))
        }
        ("GET", ["certify", id]) => ok(&job(app, int(id)?)?),
        ("GET", ["certify", id, "cases"]) => {
            let id = int(id)?;
            let j = job(app, id)?;
            let p = page(req)?;
            let items = app.store.job_cases(id, p).map_err(internal)?;
            ok(&list(req, p, j.finished, items))
        }
        ("POST", ["runs"]) => {
            let report = parse_report(req)?;
            let id = app.store.import(&report).map_err(ApiError::internal)?;
            Ok(Resp::json(
                201,
                &app.store.run(id).map_err(ApiError::internal)?,
            ))
        }
        ("GET", ["runs", id]) => {
            let id = int(id)?;
            let summary = app
                .store
                .run(id)
                .map_err(ApiError::internal)?
                .ok_or_else(|| not_found("run", id))?;
            let report = app.store.report(id).map_err(ApiError::internal)?;
            ok(&serde_json::json!({ "run": summary, "report": report }))
        }
        ("GET", ["runs", id, "cases", case]) => {
            let id = int(id)?;
            app.store
                .run(id)
                .map_err(ApiError::internal)?
                .ok_or_else(|| not_found("run", id))?;
            let rows = app
                .store
                .cases_named(id, case, req.param("suite"))
                .map_err(ApiError::internal)?;
            match rows.len() {
                0 => Err(ApiError::new(404, format!("run {id} has no case {case:?}"))),
                1 => ok(&rows[0]),
                _ => Err(ApiError::new(
                    400,
                    format!(
                        "case {case:?} is in several suites ({}): add ?suite=NAME",
                        rows.iter()
                            .map(|r| r.suite.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )),
            }
        }
        ("GET", ["compare"]) => ok(&compare(app, req)?),
        ("GET", ["vms"]) => {
            let p = page(req)?;
            let items = app.store.vms(p).map_err(internal)?;
            let total = app.store.count(Table::Vms).map_err(internal)?;
            ok(&list(req, p, total, items))
        }
        ("POST", ["vms"]) => {
            json_body(req)?;
            let spec: VmSpec = serde_json::from_slice(&req.body)
                .map_err(|e| ApiError::new(400, format!("not a VM request: {e}")))?;
            let id = app.vms.create(&spec)?;
            Ok(Resp::json(
                201,
                &app.store.vm(id).map_err(ApiError::internal)?,
            ))
        }
        ("GET", ["vms", id]) => {
            let id = int(id)?;
            ok(&vm(app, id)?)
        }
        ("POST", ["vms", id, "start"]) => {
            let id = int(id)?;
            app.vms.start(id)?;
            Ok(Resp::json(202, &vm(app, id)?))
        }
        ("POST", ["vms", id, "stop"]) => {
            let id = int(id)?;
            app.vms.stop(id)?;
            Ok(Resp::json(202, &vm(app, id)?))
        }
        ("DELETE", ["vms", id]) => {
            let id = int(id)?;
            app.vms.delete(id)?;
            Ok(Resp::json(200, &serde_json::json!({ "deleted": id })))
        }
        ("GET", ["vms", id, "console"]) => {
            let id = int(id)?;
            let row = vm(app, id)?;
            Ok(Resp::Sse(crate::sse::ConsoleStream {
                console: app.vms.console(id),
                stored_end: serde_json::json!({
                    "state": row.state, "exit_code": row.exit_code, "reason": row.end_reason
                }),
            }))
        }
        (
            _,
            ["hosts" | "runs" | "compare" | "vms" | "import" | "fleets" | "packages" | "profiles"
            | "certify" | "openapi.json", ..],
        ) => Err(ApiError::new(
            405,
            format!("{m} is not allowed on {}", req.path),
        )),
        _ => Err(ApiError::new(404, format!("no API route {}", req.path))),
    }
}

fn ok(v: &impl Serialize) -> Result<Resp, ApiError> {
    Ok(Resp::json(200, v))
}

fn int(s: &str) -> Result<i64, ApiError> {
    s.parse()
        .map_err(|_| ApiError::new(400, format!("{s:?} is not an id")))
}

fn not_found(what: &str, id: i64) -> ApiError {
    ApiError::new(404, format!("no {what} {id}"))
}

/// Certify run `id` with its progress, or 404.
pub fn job(app: &App, id: i64) -> Result<crate::store_certify::CertifyJob, ApiError> {
    app.store
        .job(id)
        .map_err(internal)?
        .map(|(j, _)| j)
        .ok_or_else(|| not_found("certify run", id))
}

fn vm(app: &App, id: i64) -> Result<crate::store::VmRow, ApiError> {
    app.store
        .vm(id)
        .map_err(ApiError::internal)?
        .ok_or_else(|| not_found("VM", id))
}

fn json_body(req: &Req) -> Result<(), ApiError> {
    match req.content_type.as_deref() {
        Some(c) if c.split(';').next() == Some("application/json") => Ok(()),
        _ => Err(ApiError::new(
            415,
            "the body must be JSON (Content-Type: application/json)",
        )),
    }
}

/// A report from the request body: a `hvcert.report/v1` document, validated.
fn parse_report(req: &Req) -> Result<reports::Report, ApiError> {
    json_body(req)?;
    let text =
        std::str::from_utf8(&req.body).map_err(|_| ApiError::new(400, "the body is not UTF-8"))?;
    reports::parse(text, std::path::Path::new("request body"))
        .map_err(|e| ApiError::new(400, e.to_string()))
}

/// The gate's answer as JSON.
#[derive(Serialize)]
pub struct Comparison {
    /// Baseline run id.
    pub base: i64,
    /// Compared run id.
    pub run: i64,
    /// Whether the gate passes (no regression).
    pub passed: bool,
    /// Regressions (fail the gate), one line each as `hvcert gate` prints them.
    pub regressions: Vec<Finding>,
    /// Findings on non-blocker cases.
    pub warnings: Vec<Finding>,
    /// Findings on waived cases.
    pub waived: Vec<Finding>,
    /// Notes (new cases, expired waivers, ...).
    pub notes: Vec<String>,
    /// The whole verdict as `hvcert gate` prints it.
    pub text: String,
}

/// One gate finding.
#[derive(Serialize)]
pub struct Finding {
    /// Suite of the case.
    pub suite: String,
    /// The case.
    pub case: String,
    /// The finding as `hvcert gate` prints it.
    pub change: String,
}

fn findings(f: &[reports::gate::Finding]) -> Vec<Finding> {
    f.iter()
        .map(|f| Finding {
            suite: f.suite.clone(),
            case: f.case.clone(),
            change: f.to_string(),
        })
        .collect()
}

/// `base` and `run` from the query, compared by `reports::gate` with `hvcert gate`'s
/// defaults (tolerance 10 %, waivers recorded in the run).
pub fn compare(app: &App, req: &Req) -> Result<Comparison, ApiError> {
    let get = |name: &str| -> Result<(i64, reports::Report), ApiError> {
        let id = int(req
            .param(name)
            .ok_or_else(|| ApiError::new(400, format!("missing ?{name}=RUN_ID")))?)?;
        let r = app
            .store
            .report(id)
            .map_err(ApiError::internal)?
            .ok_or_else(|| not_found("run", id))?;
        Ok((id, r))
    };
    let (base_id, base) = get("base")?;
    let (run_id, run) = get("run")?;
    if let Some(why) = reports::gate::kind_mismatch(&base, &run) {
        return Err(ApiError::new(422, why));
    }
    let result = reports::gate::compare(&base, &run, &reports::gate::GateOptions::default());
    Ok(Comparison {
        base: base_id,
        run: run_id,
        passed: result.passed(),
        regressions: findings(&result.regressions),
        warnings: findings(&result.warnings),
        waived: findings(&result.waived),
        notes: result.notes.clone(),
        text: result.to_string(),
    })
}
