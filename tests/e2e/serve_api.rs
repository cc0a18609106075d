//! `hvcert serve`'s API end to end, with the certify backend: every answer checked against
//! console/openapi.json and every documented operation exercised; a certify run started
//! through the API and followed case by case; uploads of probe documents, fleet reports,
//! packages and report folders; the token on a non-loopback address.
#[path = "../../console/tests/common/client.rs"]
mod client;
#[path = "../common/mod.rs"]
mod common;
#[path = "../../console/tests/common/openapi.rs"]
mod openapi;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use std::time::{Duration, Instant};

use client::Response;
use openapi::OpenApi;

/// A running `hvcert serve`, killed on drop.
use common::serve::serve;

fn fixture(name: &str) -> PathBuf {
    common::workspace_root().join("fixtures/reports").join(name)
}

/// A request whose answer is checked against the OpenAPI document.
fn call(api: &OpenApi, a: SocketAddr, method: &str, path: &str, ct: &str, body: &[u8]) -> Response {
    let headers: Vec<(&str, &str)> = if ct.is_empty() {
        Vec::new()
    } else {
        vec![("Content-Type", ct)]
    };
    let r = client::request(a, method, path, &headers, body);
    api.check(method, path, r.status, &r.body);
    r
}

fn get(api: &OpenApi, a: SocketAddr, path: &str) -> Response {
    call(api, a, "GET", path, "", b"")
}

fn post(api: &OpenApi, a: SocketAddr, path: &str, body: &[u8]) -> Response {
    call(api, a, "POST", path, "application/json", body)
}

/// Polls certify run `id` until it ends; returns every progress answer seen.
fn follow(api: &OpenApi, a: SocketAddr, id: i64, limit: Duration) -> Vec<serde_json::Value> {
    let t = Instant::now();
    let mut seen = Vec::new();
    loop {
        let j = get(api, a, &format!("/api/certify/{id}")).json();
        let state = j["state"].as_str().unwrap().to_string();
        seen.push(j);
        if !matches!(state.as_str(), "queued" | "running") {
            return seen;
        }
        assert!(t.elapsed() < limit, "certify run {id} still {state}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn hvcert_ok(args: &[&std::ffi::OsStr]) {
    let out = common::hvcert().args(args).output().unwrap();
    common::assert_exit(&out, 0);
}

/// A probe document (a replayed snapshot), a fleet report and a package, made by hvcert.
fn documents(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let hosts = common::workspace_root().join("fixtures/hosts");
    let probe = dir.join("probe.json");
    let out = common::hvcert()
        .args(["probe", "--json", "--from"])
        .arg(hosts.join("dell-r630-haswell-ep"))
        .output()
        .unwrap();
    assert!(
        !out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&probe, &out.stdout).unwrap();
    let fleet = dir.join("fleet.json");
    let out = common::hvcert()
        .args(["fleet", "-o"])
        .arg(&fleet)
        .arg(hosts.join("dell-r630-haswell-ep"))
        .arg(hosts.join("intel-harpertown-no-nx"))
        .output()
        .unwrap();
    assert!(fleet.is_file(), "{}", String::from_utf8_lossy(&out.stderr));
    // A package of two runs: a certify run and a probe's run report.
    let probe_run = dir.join("probe-run.json");
    let out = common::hvcert()
        .args(["probe", "--from"])
        .arg(hosts.join("dell-r630-haswell-ep"))
        .arg("--report")
        .arg(&probe_run)
        .output()
        .unwrap();
    assert!(
        probe_run.is_file(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let package = dir.join("pkg.tar.gz");
    hvcert_ok(&[
        "package".as_ref(),
        package.as_os_str(),
        fixture("all-pass.json").as_os_str(),
        probe_run.as_os_str(),
    ]);
    (probe, fleet, package)
}

fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap()
}

#[test]
fn the_openapi_checker_can_say_no() {
    let api =
        OpenApi::new(serde_json::from_str(include_str!("../../console/openapi.json")).unwrap());
    let good = br#"{"error":"x"}"#;
    assert!(api.try_check("GET", "/api/runs/7", 404, good).is_ok());
    assert!(api
        .try_check("GET", "/api/runs/7", 404, br#"{"error":1}"#)
        .is_err());
    assert!(api.try_check("GET", "/api/runs/7", 418, good).is_err());
    assert!(api.try_check("GET", "/api/nowhere", 404, good).is_err());
    let e = api
        .try_check("GET", "/api/vms/1", 200, br#"{"id":1,"surprise":true}"#)
        .unwrap_err();
    assert!(
        e.contains("required field") || e.contains("surprise"),
        "{e}"
    );
    assert!(!api.unchecked().is_empty());
}

/// Every documented operation, through the real server, each answer against its schema.
#[test]
fn every_answer_matches_openapi_and_every_operation_is_exercised() {
    if !common::kvm_available_or_skip(
        "every_answer_matches_openapi_and_every_operation_is_exercised",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = serve(&dir.path().join("data"), &["--listen", "127.0.0.1:0"]);
    let a = s.addr;
    let doc = client::get(a, "/api/openapi.json").json();
    let api = OpenApi::new(doc.clone());
    assert_eq!(get(&api, a, "/api/openapi.json").json(), doc);
    let (probe, fleet, package) = documents(dir.path());

    // Runs: import, list (paged), read, a case, compare.
    let base = post(
        &api,
        a,
        "/api/runs",
        &std::fs::read(fixture("all-pass.json")).unwrap(),
    );
    assert_eq!(base.status, 201);
    let cur = call(
        &api,
        a,
        "POST",
        "/api/import?name=blocker-failure.json",
        "application/json",
        &std::fs::read(fixture("blocker-failure.json")).unwrap(),
    );
    assert_eq!(cur.status, 201, "{}", cur.text());
    let (b, c) = (
        base.json()["id"].as_i64().unwrap(),
        cur.json()["runs"][0].as_i64().unwrap(),
    );
    assert_eq!(post(&api, a, "/api/runs", b"{}").status, 400);
    assert_eq!(
        call(&api, a, "POST", "/api/runs", "text/plain", b"{}").status,
        415
    );
    let page1 = get(&api, a, "/api/runs?limit=1").json();
    assert_eq!(
        (page1["total"].as_i64(), page1["items"][0]["id"].as_i64()),
        (Some(2), Some(c))
    );
    let next = page1["next"].as_str().unwrap().to_string();
    let page2 = get(&api, a, &next).json();
    assert_eq!(page2["items"][0]["id"].as_i64(), Some(b));
    assert!(page2.get("next").is_none());
    assert_eq!(get(&api, a, "/api/runs?limit=501").status, 400);
    let run = get(&api, a, &format!("/api/runs/{c}")).json();
    assert_eq!(get(&api, a, "/api/runs/99").status, 404);
    let suite = run["report"]["suites"][0]["name"].as_str().unwrap();
    let case = run["report"]["suites"][0]["cases"][0]["id"]
        .as_str()
        .unwrap();
    let one = get(
        &api,
        a,
        &format!("/api/runs/{c}/cases/{case}?suite={suite}"),
    );
    assert_eq!(one.status, 200);
    assert_eq!(
        get(&api, a, &format!("/api/compare?base={b}&run={c}")).json()["passed"],
        false
    );
    assert_eq!(get(&api, a, "/api/compare?base=1").status, 400);

    // Hosts, probe documents, fleet reports, packages.
    let p = call(
        &api,
        a,
        "POST",
        "/api/import?name=probe.json",
        "application/json",
        &std::fs::read(&probe).unwrap(),
    );
    assert_eq!(p.status, 201, "{}", p.text());
    let hosts = get(&api, a, "/api/hosts").json();
    let hid = hosts["items"][0]["id"].as_i64().unwrap();
    assert_eq!(get(&api, a, &format!("/api/hosts/{hid}")).status, 200);
    assert_eq!(get(&api, a, "/api/hosts/999").status, 404);
    let f = call(
        &api,
        a,
        "POST",
        "/api/import?name=fleet.json",
        "application/json",
        &std::fs::read(&fleet).unwrap(),
    );
    assert_eq!(f.status, 201, "{}", f.text());
    let fid = f.json()["fleets"][0].as_i64().unwrap();
    assert_eq!(get(&api, a, "/api/fleets").json()["total"], 1);
    assert_eq!(
        get(&api, a, &format!("/api/fleets/{fid}")).json()["fleet"]["hosts"],
        2
    );
    assert_eq!(get(&api, a, "/api/fleets/999").status, 404);
    let pkg = std::fs::read(&package).unwrap();
    let up = call(
        &api,
        a,
        "POST",
        "/api/import?name=pkg.tar.gz",
        "application/gzip",
        &pkg,
    );
    assert_eq!(up.status, 201, "{}", up.text());
    let pid = up.json()["packages"][0].as_i64().unwrap();
    assert_eq!(get(&api, a, "/api/packages").json()["items"][0]["runs"], 2);
    assert_eq!(
        get(&api, a, &format!("/api/packages/{pid}")).json()["problems"],
        serde_json::json!([])
    );
    assert_eq!(get(&api, a, "/api/packages/999").status, 404);
    let archive = get(&api, a, &format!("/api/packages/{pid}/archive"));
    assert_eq!(archive.body, pkg, "the archive comes back byte for byte");
    assert_eq!(
        call(&api, a, "POST", "/api/import", "text/plain", b"x").status,
        415
    );

    // Certify: profiles, a one-case run, its progress and cases.
    let profiles = get(&api, a, "/api/profiles").json();
    assert!(profiles.as_array().unwrap().len() >= 3, "{profiles}");
    let bad = post(&api, a, "/api/certify", br#"{"profiles":["/etc/passwd"]}"#);
    assert_eq!(bad.status, 422, "{}", bad.text());
    assert_eq!(
        post(&api, a, "/api/certify", br#"{"out":"/tmp"}"#).status,
        400
    );
    let req = br#"{"profiles":["sles11sp1-like"],"cases":["boot","hv_cpuid"],"jobs":1,"probe_host":false}"#;
    let j = post(&api, a, "/api/certify", req);
    assert_eq!(j.status, 202, "{}", j.text());
    let jid = j.json()["id"].as_i64().unwrap();
    let again = post(&api, a, "/api/certify", req);
    let end = follow(&api, a, jid, Duration::from_secs(120));
    assert!(
        again.status == 409 || again.status == 202,
        "{}",
        again.text()
    );
    let last = end.last().unwrap();
    assert_eq!(last["state"], "done", "{last}");
    assert_eq!(
        get(&api, a, "/api/certify").json()["items"][0]["id"].as_i64(),
        Some(if again.status == 202 {
            again.json()["id"].as_i64().unwrap()
        } else {
            jid
        }),
        "newest first"
    );
    let cases = get(&api, a, &format!("/api/certify/{jid}/cases?limit=1")).json();
    assert_eq!(cases["total"], 2);
    assert_eq!(get(&api, a, "/api/certify/999").status, 404);
    // A finished run neither cancels nor resumes (serve.rs and console/tests/certify_jobs.rs
    // cancel and resume runs going on).
    for action in ["cancel", "resume"] {
        let r = post(&api, a, &format!("/api/certify/{jid}/{action}"), b"");
        assert_eq!(r.status, 409, "{action}: {}", r.text());
    }
    if again.status == 202 {
        follow(
            &api,
            a,
            again.json()["id"].as_i64().unwrap(),
            Duration::from_secs(120),
        );
    }

    // VMs: create, list, read, start, console, stop, delete.
    let vm = post(
        &api,
        a,
        "/api/vms",
        br#"{"kernel":"builtin","cmdline":"profile=run cases=boot hang","timeout_s":60}"#,
    );
    assert_eq!(vm.status, 201, "{}", vm.text());
    assert_eq!(
        post(&api, a, "/api/vms", br#"{"kernel":"builtin","vcpus":0}"#).status,
        422
    );
    let id = vm.json()["id"].as_i64().unwrap();
    assert_eq!(get(&api, a, "/api/vms").json()["total"], 1);
    assert_eq!(get(&api, a, &format!("/api/vms/{id}")).status, 200);
    assert_eq!(
        post(&api, a, &format!("/api/vms/{id}/stop"), b"").status,
        409
    );
    assert_eq!(
        post(&api, a, &format!("/api/vms/{id}/start"), b"").status,
        202
    );
    let stop = post(&api, a, &format!("/api/vms/{id}/stop"), b"");
    assert!(stop.status == 202 || stop.status == 409, "{}", stop.text());
    let (status, _, mut r) = client::open(a, "GET", &format!("/api/vms/{id}/console"), &[], b"");
    api.check("GET", &format!("/api/vms/{id}/console"), status, b"");
    assert_eq!(client::read_events(&mut r).last().unwrap().0, "end");
    assert_eq!(
        call(&api, a, "DELETE", &format!("/api/vms/{id}"), "", b"").status,
        200
    );
    assert_eq!(
        call(&api, a, "DELETE", &format!("/api/vms/{id}"), "", b"").status,
        404
    );

    let missing = api.unchecked();
    assert!(
        missing.is_empty(),
        "documented but never exercised: {missing:?}"
    );
}

/// A certify run started through the API: 202 at once, then the cases appear in the
/// store one by one while it runs, and the finished run is imported and linked.
#[test]
fn certify_run_through_the_api_reports_progress_case_by_case() {
    if !common::kvm_available_or_skip("certify_run_through_the_api_reports_progress_case_by_case") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = serve(dir.path(), &["--listen", "127.0.0.1:0"]);
    let a = s.addr;
    let api = OpenApi::new(client::get(a, "/api/openapi.json").json());
    let t = Instant::now();
    let j = post(
        &api,
        a,
        "/api/certify",
        br#"{"profiles":["sles11sp1-like"],"jobs":1,"probe_host":false}"#,
    );
    assert_eq!(j.status, 202, "{}", j.text());
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "the start does not wait for the run"
    );
    let id = j.json()["id"].as_i64().unwrap();
    // The progress page is served (and reloads itself) while the run goes on.
    let page = client::get(a, &format!("/certify/{id}")).text();
    assert!(page.contains(&format!("Certify run #{id}")), "{page}");
    let seen = follow(&api, a, id, Duration::from_secs(300));
    let last = seen.last().unwrap();
    assert_eq!(last["state"], "done", "{last}");
    let planned = last["planned"].as_i64().unwrap();
    assert!(planned > 5, "{last}");
    assert_eq!(last["finished"].as_i64(), Some(planned));
    let partial: Vec<i64> = seen
        .iter()
        .filter_map(|j| j["finished"].as_i64())
        .filter(|&n| n > 0 && n < planned)
        .collect();
    assert!(!partial.is_empty(), "no partial progress seen: {seen:?}");
    let run = last["run_id"].as_i64().expect("the run is imported");
    let summary = get(&api, a, &format!("/api/runs/{run}")).json();
    assert_eq!(summary["run"]["total"].as_i64(), Some(planned));
    assert_eq!(summary["run"]["source"], format!("certify-job:{id}"));
    let cases = get(&api, a, &format!("/api/certify/{id}/cases?limit=500")).json();
    assert_eq!(cases["items"].as_array().unwrap().len() as i64, planned);
    let page = client::get(a, &format!("/certify/{id}")).text();
    assert!(page.contains(&format!("href=\"/runs/{run}\"")), "{page}");
    assert!(
        !page.contains("http-equiv=\"refresh\""),
        "a finished run's page stays still"
    );
    assert!(client::get(a, "/certify")
        .text()
        .contains(&format!("certify #{id}")));
}

/// Probe documents, fleet reports, packages and report folders: one upload or one command
/// each, all of a folder or nothing.
#[test]
fn imports_probe_fleet_package_and_folder() {
    let dir = tempfile::tempdir().unwrap();
    let (probe, fleet, package) = documents(dir.path());
    // One command: a folder holding a certify output, a probe, a fleet report and a package.
    let folder = dir.path().join("reports");
    std::fs::create_dir_all(folder.join("certify-out")).unwrap();
    std::fs::copy(
        fixture("crash.json"),
        folder.join("certify-out/report.json"),
    )
    .unwrap();
    std::fs::write(
        folder.join("certify-out/run.json"),
        br#"{"schema":"hvcert.certify-run/v0"}"#,
    )
    .unwrap();
    std::fs::copy(&probe, folder.join("probe.json")).unwrap();
    std::fs::copy(&fleet, folder.join("fleet.json")).unwrap();
    std::fs::copy(&package, folder.join("pkg.tar.gz")).unwrap();
    // A probe snapshot folder (`hvcert probe --capture`), read as a whole.
    let snap = common::workspace_root().join("fixtures/hosts/intel-sandybridge-ep");
    std::fs::create_dir_all(folder.join("snap")).unwrap();
    for f in std::fs::read_dir(&snap).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, folder.join("snap").join(f.file_name().unwrap())).unwrap();
    }
    let data = dir.path().join("data");
    let out = common::hvcert()
        .args(["serve", "--import-only", "--data"])
        .arg(&data)
        .arg("--import")
        .arg(&folder)
        .output()
        .unwrap();
    common::assert_exit(&out, 0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("runs [1, 2, 3, 4, 5]") && err.contains("packages [1]"),
        "{err}"
    );
    assert!(err.contains("skipped") && err.contains("run.json"), "{err}");

    let s = serve(&data, &["--listen", "127.0.0.1:0"]);
    let a = s.addr;
    let runs = client::get(a, "/api/runs").json();
    assert_eq!(runs["total"], 5, "{runs}");
    assert_eq!(
        runs["items"][0]["command"], "probe",
        "the snapshot, last in order"
    );
    assert_eq!(client::get(a, "/api/fleets").json()["total"], 1);
    assert_eq!(client::get(a, "/api/packages").json()["total"], 1);
    let hosts = client::get(a, "/api/hosts").json();
    assert!(
        hosts["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["name"] == "intel-harpertown-no-nx"),
        "{hosts}"
    );

    // The hosts page lists the fleet report and the package with its check.
    let page = client::get(a, "/hosts").text();
    assert!(
        page.contains("href=\"/fleets/1\"") && page.contains("matches its manifest"),
        "{page}"
    );
    assert!(page.contains("href=\"/packages/1\""), "{page}");
    // Their own pages: every host of the fleet with its class and blocker, the shared
    // blocker with its remedy; the package's check and the two runs that came from it.
    let fleet_page = client::get(a, "/fleets/1");
    assert_eq!(fleet_page.status, 200);
    let fp = fleet_page.text();
    for want in [
        "dell-r630-haswell-ep",
        "certified",
        "intel-harpertown-no-nx",
        "unsupported",
        "required nx is absent",
        "Shared blockers",
        "Execute Disable Bit",
    ] {
        assert!(fp.contains(want), "{want:?} missing in {fp}");
    }
    let pp = client::get(a, "/packages/1").text();
    assert!(
        pp.contains("matches its manifest") && pp.contains("pkg.tar.gz"),
        "{pp}"
    );
    let from_package = client::get(a, "/api/runs?limit=500").json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["package_id"] == 1)
        .map(|r| format!("href=\"/runs/{}\"", r["id"]))
        .collect::<Vec<_>>();
    assert_eq!(from_package.len(), 2, "a package of two runs");
    assert!(from_package.iter().all(|l| pp.contains(l)), "{pp}");
    assert_eq!(client::get(a, "/fleets/9").status, 404);
    assert_eq!(client::get(a, "/packages/9").status, 404);

    // The same package again is recognised; a tampered one is refused with the reason.
    let pkg = std::fs::read(&package).unwrap();
    let again = client::request(
        a,
        "POST",
        "/api/import",
        &[("Content-Type", "application/gzip")],
        &pkg,
    );
    assert_eq!(again.status, 201, "{}", again.text());
    assert!(again.json()["skipped"][0]
        .as_str()
        .unwrap()
        .contains("already stored"));
    let plain = flate2::read::GzDecoder::new(&pkg[..]);
    let mut files = Vec::new();
    for e in tar::Archive::new(plain).entries().unwrap() {
        let mut e = e.unwrap();
        let mut d = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut d).unwrap();
        let p = e.path().unwrap().to_string_lossy().into_owned();
        if p.starts_with("hosts/") && p.ends_with(".json") {
            let text = String::from_utf8(d).unwrap();
            let tampered = text.replacen("\"outcome\": \"pass\"", "\"outcome\": \"fail\"", 1);
            assert_ne!(text, tampered, "{p}: nothing to tamper with");
            d = tampered.into_bytes();
        }
        files.push((p, d));
    }
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, d)| (p.as_str(), d.as_slice()))
        .collect();
    let bad = client::request(
        a,
        "POST",
        "/api/import",
        &[("Content-Type", "application/gzip")],
        &tar_gz(&refs),
    );
    assert_eq!(bad.status, 422, "{}", bad.text());
    assert!(
        bad.text().contains("does not match its manifest"),
        "{}",
        bad.text()
    );

    // One upload: a folder as tar.gz; with one broken report in it nothing is stored.
    let good = std::fs::read(fixture("timeout.json")).unwrap();
    let up = tar_gz(&[
        ("out/report.json", &good),
        ("out/probe.json", &std::fs::read(&probe).unwrap()),
    ]);
    // One upload: a probe snapshot folder as tar.gz.
    let host = std::fs::read(snap.join("host.json")).unwrap();
    let cpuid = std::fs::read(snap.join("cpuid.txt")).unwrap();
    let up_snap = tar_gz(&[("snap/host.json", &host), ("snap/cpuid.txt", &cpuid)]);
    let r = client::request(
        a,
        "POST",
        "/api/import?name=snap.tar.gz",
        &[("Content-Type", "application/gzip")],
        &up_snap,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        r.json()["runs"].as_array().unwrap().len(),
        1,
        "{}",
        r.text()
    );
    let r = client::request(
        a,
        "POST",
        "/api/import?name=out.tar.gz",
        &[("Content-Type", "application/gzip")],
        &up,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["runs"].as_array().unwrap().len(), 2);
    let broken = tar_gz(&[
        ("out/report.json", &good),
        ("out/x.json", br#"{"schema":"hvcert.report/v1"}"#),
    ]);
    let r = client::request(
        a,
        "POST",
        "/api/import",
        &[("Content-Type", "application/gzip")],
        &broken,
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        client::get(a, "/api/runs").json()["total"],
        8,
        "nothing of the broken folder"
    );
}

/// The bar's safety line: on a non-loopback address, a request without the token is 401.
#[test]
fn non_loopback_request_without_token_is_401() {
    // The address this machine would use towards another; no packet is sent.
    let local = std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|u| u.connect("10.255.255.255:9").map(|_| u))
        .and_then(|u| u.local_addr())
        .map(|a| a.ip());
    let ip = match local {
        Ok(ip) if !ip.is_loopback() && !ip.is_unspecified() => ip,
        _ => {
            common::skip_log::skip(
                "non_loopback_request_without_token_is_401",
                "no non-loopback address on this machine",
            );
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let token = "a-token-of-at-least-16-chars";
    let s = serve(
        dir.path(),
        &["--listen", &format!("{ip}:0"), "--token", token],
    );
    assert!(!s.addr.ip().is_loopback(), "{}", s.addr);
    let r = client::get(s.addr, "/api/runs");
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(client::get(s.addr, "/runs").status, 401);
    let auth = format!("Bearer {token}");
    let ok = client::request(s.addr, "GET", "/api/runs", &[("Authorization", &auth)], b"");
    assert_eq!(ok.status, 200, "{}", ok.text());
}
