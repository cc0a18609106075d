//! API tests against a running server: real HTTP on 127.0.0.1, a real SQLite database in a
//! temporary folder. (VMs: tests/e2e/serve.rs, which has the `hvcert` binary.)
#[path = "common/client.rs"]
mod client;

use client::{get, post_json, request};
use std::path::PathBuf;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../fixtures/reports")
            .join(name),
    )
    .expect("fixture")
}

fn server(dir: &std::path::Path, token: Option<&str>, max_body: usize) -> console::Server {
    console::Server::start(console::Config {
        addr: "127.0.0.1:0".parse().unwrap(),
        token: token.map(str::to_string),
        data_dir: dir.to_path_buf(),
        runner: None,
        max_body,
        backend: None,
        tls: None,
    })
    .expect("server starts")
}

#[test]
fn import_list_read_compare() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), None, 16 << 20);
    let a = s.addr();
    let base = post_json(a, "/api/runs", &fixture("all-pass.json"));
    assert_eq!(base.status, 201, "{}", base.text());
    let base_id = base.json()["id"].as_i64().unwrap();
    let cur = post_json(a, "/api/runs", &fixture("blocker-failure.json"));
    assert_eq!(cur.status, 201, "{}", cur.text());
    let cur_id = cur.json()["id"].as_i64().unwrap();
    assert_eq!(cur.json()["verdict"], "fail");

    let runs = get(a, "/api/runs").json();
    assert_eq!(runs["items"].as_array().unwrap().len(), 2);
    assert_eq!(runs["total"], 2);
    assert_eq!(
        runs["items"][0]["id"].as_i64(),
        Some(cur_id),
        "newest first"
    );

    let run = get(a, &format!("/api/runs/{cur_id}")).json();
    assert_eq!(run["report"]["schema"], "hvcert.report/v1");
    let suite = run["report"]["suites"][0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let case = run["report"]["suites"][0]["cases"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let c = get(a, &format!("/api/runs/{cur_id}/cases/{case}?suite={suite}"));
    assert_eq!(c.status, 200, "{}", c.text());
    assert_eq!(c.json()["id"], case.as_str());
    assert!(c.json().get("hypercalls").is_some());
    assert_eq!(
        get(a, &format!("/api/runs/{cur_id}/cases/nope")).status,
        404
    );
    assert_eq!(get(a, "/api/runs/999").status, 404);
    assert_eq!(get(a, "/api/runs/x").status, 400);

    let hosts = get(a, "/api/hosts").json()["items"].clone();
    assert_eq!(hosts[0]["runs"], 2);
    let hid = hosts[0]["id"].as_i64().unwrap();
    assert_eq!(
        get(a, &format!("/api/hosts/{hid}")).json()["runs"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let cmp = get(a, &format!("/api/compare?base={base_id}&run={cur_id}"));
    assert_eq!(cmp.status, 200, "{}", cmp.text());
    assert_eq!(cmp.json()["passed"], false, "{}", cmp.text());
    assert!(!cmp.json()["regressions"].as_array().unwrap().is_empty());
    let same = get(a, &format!("/api/compare?base={base_id}&run={base_id}")).json();
    assert_eq!(same["passed"], true);
    assert_eq!(get(a, "/api/compare?base=1").status, 400);

    // Pages render the stored data, escaped.
    let p = get(a, &format!("/runs/{cur_id}"));
    assert_eq!(p.status, 200);
    assert!(p.text().contains(&format!("Run #{cur_id}")));
    assert!(get(a, "/runs").text().contains("pass/fail trend"));
    assert!(get(a, "/hosts").text().contains("ci-runner-01"));
    assert!(get(a, &format!("/compare?base={base_id}&run={cur_id}"))
        .text()
        .contains("GATE FAILS"));
    assert_eq!(get(a, "/nowhere").status, 404);

    // The data survives a restart.
    s.shutdown();
    let s = server(dir.path(), None, 16 << 20);
    assert_eq!(get(s.addr(), "/api/runs").json()["total"], 2);
}

#[test]
fn bad_requests_are_refused_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), None, 4096);
    let a = s.addr();
    let big = vec![b' '; 5000];
    let r = post_json(a, "/api/runs", &big);
    assert_eq!(r.status, 413, "{}", r.text());
    let r = post_json(a, "/api/runs", b"{\"schema\": \"hvcert.report/v1\"");
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("not valid JSON"));
    let r = post_json(a, "/api/runs", b"{\"schema\": \"other\"}");
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("unsupported schema"));
    let r = request(
        a,
        "POST",
        "/api/runs",
        &[("Content-Type", "text/plain")],
        b"{}",
    );
    assert_eq!(r.status, 415);
    let r = request(
        a,
        "POST",
        "/api/runs",
        &[
            ("Content-Type", "application/json"),
            ("Origin", "http://evil.example"),
        ],
        b"{}",
    );
    assert_eq!(r.status, 403);
    let r = post_json(
        a,
        "/api/vms",
        br#"{"kernel":"builtin","memory_mib":999999}"#,
    );
    assert_eq!(r.status, 422);
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("memory_mib 999999"));
    let r = post_json(a, "/api/vms", br#"{"kernel":"builtin","command":"sh"}"#);
    assert_eq!(r.status, 400);
    assert_eq!(request(a, "DELETE", "/api/runs", &[], b"").status, 405);
}

#[test]
fn token_is_required_when_set() {
    let dir = tempfile::tempdir().unwrap();
    let token = "0123456789abcdef-token";
    let s = server(dir.path(), Some(token), 1 << 20);
    let a = s.addr();
    assert_eq!(get(a, "/api/runs").status, 401);
    assert_eq!(get(a, "/hosts").status, 401);
    let wrong = request(
        a,
        "GET",
        "/api/runs",
        &[("Authorization", "Bearer wrong")],
        b"",
    );
    assert_eq!(wrong.status, 401);
    let auth = format!("Bearer {token}");
    let ok = request(a, "GET", "/api/runs", &[("Authorization", &auth)], b"");
    assert_eq!(ok.status, 200);
    // Browsers sign in once: the form sets an HttpOnly cookie that then stands for the token.
    let bad = request(
        a,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"token=nope",
    );
    assert_eq!(bad.status, 401);
    let form = format!("token={token}");
    let login = request(
        a,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    );
    assert_eq!(login.status, 303, "{}", login.text());
    let cookie = login.header("set-cookie").expect("a cookie").to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap();
    let page = request(a, "GET", "/hosts", &[("Cookie", pair)], b"");
    assert_eq!(page.status, 200);
    let wrong = request(a, "GET", "/hosts", &[("Cookie", "hvcert_token=nope")], b"");
    assert_eq!(wrong.status, 401);
    assert!(wrong.text().contains("/login"));
    // A non-loopback address without a token is refused before binding.
    let err = console::Server::start(console::Config {
        addr: "0.0.0.0:0".parse().unwrap(),
        token: None,
        data_dir: dir.path().to_path_buf(),
        runner: None,
        max_body: 1024,
        backend: None,
        tls: None,
    })
    .err()
    .expect("refused");
    assert!(err.to_string().contains("requires --token"), "{err}");
}

/// Figure: server time of a run page of 5,000 cases (printed; bounded loosely so a
/// pathological slowdown fails).
#[test]
fn run_page_of_5000_cases() {
    use reports::{Case, Identity, Outcome, Report};
    let mut r = Report::new(Identity::new("certify", "0.1.0", "2026-12-06T00:00:00Z"));
    for i in 0..5000 {
        let o = if i % 50 == 0 {
            Outcome::Fail
        } else {
            Outcome::Pass
        };
        r.add_case(
            &format!("suite{}", i % 4),
            Case::new(format!("case_{i}"), o)
                .duration_ms(i)
                .log(&format!("line of case {i}\nok {i}")),
        );
    }
    let json = reports::render(&r, reports::Format::Json);
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), None, 16 << 20);
    let t = std::time::Instant::now();
    let imp = post_json(s.addr(), "/api/runs", json.as_bytes());
    let import_ms = t.elapsed().as_secs_f64() * 1e3;
    assert_eq!(imp.status, 201, "{}", imp.text());
    let id = imp.json()["id"].as_i64().unwrap();
    let t = std::time::Instant::now();
    let page = get(s.addr(), &format!("/runs/{id}"));
    let page_ms = t.elapsed().as_secs_f64() * 1e3;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("case_4999"));
    let t = std::time::Instant::now();
    let api = get(s.addr(), &format!("/api/runs/{id}"));
    let api_ms = t.elapsed().as_secs_f64() * 1e3;
    assert_eq!(api.status, 200);
    eprintln!(
        "FIGURE 5000 cases: import {import_ms:.0} ms, run page {page_ms:.0} ms ({} bytes), \
         GET /api/runs/{id} {api_ms:.0} ms",
        page.body.len()
    );
    assert!(page_ms < 10_000.0, "run page took {page_ms} ms");
}
