//! The certify-run manager against a real server and database, with test backends (the
//! real one, through the suite on KVM, is in tests/e2e/serve_api.rs): a run that reports
//! its cases and ends with a report, and one whose backend panics, which must end
//! `failed` rather than stay `running`. Without a backend the routes answer 503.
#[path = "common/client.rs"]
mod client;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use console::backend::{
    Backend, CaseEvent, CertifyEvents, CertifyRequest, PackageCheck, ProfileCase, ProfileInfo,
};

#[derive(Debug)]
struct TestBackend {
    panic: bool,
}

impl Backend for TestBackend {
    fn profiles(&self) -> Result<Vec<ProfileInfo>, String> {
        Ok(vec![ProfileInfo {
            name: "p".into(),
            description: "test".into(),
            interface: "hyperv".into(),
            cases: vec![
                ProfileCase {
                    id: "a".into(),
                    blocker: true,
                },
                ProfileCase {
                    id: "b".into(),
                    blocker: false,
                },
            ],
        }])
    }

    fn certify(
        &self,
        _req: &CertifyRequest,
        out: &Path,
        events: &dyn CertifyEvents,
    ) -> Result<reports::Report, String> {
        assert!(
            out.parent().unwrap().ends_with("certify"),
            "{}",
            out.display()
        );
        if self.panic {
            panic!("test backend panics");
        }
        events.planned(2);
        let mut r = reports::Report::new(reports::Identity::new(
            "certify",
            "0.1.0",
            "2026-12-07T00:00:00Z",
        ));
        for (id, o) in [("a", reports::Outcome::Pass), ("b", reports::Outcome::Fail)] {
            events.case_done(&CaseEvent {
                suite: "p".into(),
                id: id.into(),
                outcome: o.as_str().into(),
                blocker: id == "a",
                duration_ms: 1,
                reason: None,
            });
            r.add_case("p", reports::Case::new(id, o));
        }
        Ok(r)
    }

    fn probe_report(&self, _: &str, _: &str) -> Result<reports::Report, String> {
        Err("not here".into())
    }

    fn probe_snapshot(&self, _: &Path) -> Result<reports::Report, String> {
        Err("not here".into())
    }

    fn verify_package(&self, _: &Path) -> Result<PackageCheck, String> {
        Err("not here".into())
    }
}

fn server(dir: &Path, backend: Option<TestBackend>) -> console::Server {
    console::Server::start(console::Config {
        addr: "127.0.0.1:0".parse().unwrap(),
        token: None,
        data_dir: dir.to_path_buf(),
        runner: None,
        max_body: 1 << 20,
        backend: backend.map(|b| Arc::new(b) as Arc<dyn Backend>),
        tls: None,
    })
    .unwrap()
}

fn wait_end(a: std::net::SocketAddr, id: i64) -> serde_json::Value {
    let t = Instant::now();
    loop {
        let j = client::get(a, &format!("/api/certify/{id}")).json();
        if !matches!(j["state"].as_str(), Some("queued" | "running")) {
            return j;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "{j}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_run_reports_its_cases_and_its_report_is_imported() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), Some(TestBackend { panic: false }));
    let a = s.addr();
    let bad = client::post_json(a, "/api/certify", br#"{"cases":["zz"]}"#);
    assert_eq!(bad.status, 422, "{}", bad.text());
    let r = client::post_json(a, "/api/certify", br#"{"profiles":["p"],"jobs":1}"#);
    assert_eq!(r.status, 202, "{}", r.text());
    let j = wait_end(a, r.json()["id"].as_i64().unwrap());
    assert_eq!(j["state"], "done", "{j}");
    assert_eq!(
        (j["planned"].as_i64(), j["finished"].as_i64()),
        (Some(2), Some(2))
    );
    assert_eq!(j["counts"]["fail"], 1);
    let run = client::get(a, &format!("/api/runs/{}", j["run_id"])).json();
    assert_eq!(run["run"]["total"], 2);
    assert_eq!(run["run"]["source"], "certify-job:1");
}

#[test]
fn a_panicking_run_ends_failed() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), Some(TestBackend { panic: true }));
    let a = s.addr();
    let r = client::post_json(a, "/api/certify", b"{}");
    assert_eq!(r.status, 202, "{}", r.text());
    let j = wait_end(a, r.json()["id"].as_i64().unwrap());
    assert_eq!(j["state"], "failed", "{j}");
    assert!(j["error"].as_str().unwrap().contains("panicked"), "{j}");
    // The next run may start.
    assert_eq!(client::post_json(a, "/api/certify", b"{}").status, 202);
}

#[test]
fn without_a_backend_certify_routes_are_503() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), None);
    let a = s.addr();
    assert_eq!(client::post_json(a, "/api/certify", b"{}").status, 503);
    assert_eq!(client::get(a, "/api/profiles").status, 503);
    assert_eq!(client::get(a, "/api/certify").json()["total"], 0);
    assert!(client::get(a, "/certify")
        .text()
        .contains("does not run certifications"));
}
