//! `hvcert serve` end to end: the real binary on 127.0.0.1:0 with a store in a temporary
//! folder; import, a VM from the built-in guest followed through SSE to its end, the
//! binding rule, and the pages in headless Chromium (when installed).
#[path = "../../console/tests/common/client.rs"]
mod client;
#[path = "../common/mod.rs"]
mod common;

use std::io::BufRead;
use std::process::Stdio;

/// A running `hvcert serve`, killed on drop.
use common::serve::Serve;

fn serve(data: &std::path::Path, extra: &[&str]) -> Serve {
    let fixture = common::workspace_root().join("fixtures/reports/all-pass.json");
    let mut args = vec!["--import", fixture.to_str().unwrap()];
    args.extend_from_slice(extra);
    serve_bare(data, &args)
}

/// `hvcert serve` on an empty store (nothing imported at start).
fn serve_bare(data: &std::path::Path, extra: &[&str]) -> Serve {
    let mut args = vec!["--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    common::serve::serve(data, &args)
}

#[test]
fn non_loopback_without_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::hvcert()
        .args(["serve", "--listen", "0.0.0.0:0", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    common::assert_exit(&out, 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("requires --token"));
}

#[test]
fn vm_from_builtin_guest_streams_its_console_to_the_end() {
    if !common::kvm_available_or_skip("vm_from_builtin_guest_streams_its_console_to_the_end") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = serve(dir.path(), &[]);
    let runs = client::get(s.addr, "/api/runs").json();
    assert_eq!(runs["total"], 1, "the --import run is listed");
    let vm = client::post_json(
        s.addr,
        "/api/vms",
        br#"{"name":"t","kernel":"builtin","timeout_s":60}"#,
    );
    assert_eq!(vm.status, 201, "{}", vm.text());
    let id = vm.json()["id"].as_i64().unwrap();
    let started = client::post_json(s.addr, &format!("/api/vms/{id}/start"), b"");
    assert_eq!(started.status, 202, "{}", started.text());
    let (status, headers, mut r) =
        client::open(s.addr, "GET", &format!("/api/vms/{id}/console"), &[], b"");
    assert_eq!(status, 200);
    assert!(headers
        .iter()
        .any(|(k, v)| k == "content-type" && v == "text/event-stream"));
    let events = client::read_events(&mut r);
    let text: String = events
        .iter()
        .filter(|(e, _)| e == "console")
        .map(|(_, d)| serde_json::from_str::<String>(d).unwrap())
        .collect();
    let (last, end) = events.last().expect("events");
    assert_eq!(last, "end", "{events:?}");
    let end: serde_json::Value = serde_json::from_str(end).unwrap();
    assert_eq!(end["state"], "exited", "{end} {text}");
    assert_eq!(end["exit_code"], 0, "{end} {text}");
    assert!(text.contains("ok 1"), "KTAP output expected: {text}");
    let row = client::get(s.addr, &format!("/api/vms/{id}")).json();
    assert_eq!(row["state"], "exited");
    // The VM page shows the console text; deleting removes the record.
    assert!(client::get(s.addr, &format!("/vms/{id}"))
        .text()
        .contains("ok 1"));
    assert_eq!(
        client::request(s.addr, "DELETE", &format!("/api/vms/{id}"), &[], b"").status,
        200
    );
    assert_eq!(client::get(s.addr, &format!("/api/vms/{id}")).status, 404);
}

#[test]
fn stop_kills_a_running_vm() {
    if !common::kvm_available_or_skip("stop_kills_a_running_vm") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = serve(dir.path(), &[]);
    // A guest that never ends by itself: no profile, so it waits until the timeout.
    let vm = client::post_json(
        s.addr,
        "/api/vms",
        br#"{"kernel":"builtin","cmdline":"profile=run cases=boot hang","timeout_s":300}"#,
    );
    let id = vm.json()["id"].as_i64().unwrap();
    assert_eq!(
        client::post_json(s.addr, &format!("/api/vms/{id}/start"), b"").status,
        202
    );
    let again = client::post_json(s.addr, &format!("/api/vms/{id}/start"), b"");
    assert!(
        again.status == 409 || again.status == 202,
        "{}",
        again.text()
    );
    let stop = client::post_json(s.addr, &format!("/api/vms/{id}/stop"), b"");
    if stop.status == 409 {
        // The guest ended before the stop: nothing to prove here.
        return;
    }
    assert_eq!(stop.status, 202, "{}", stop.text());
    let (_, _, mut r) = client::open(s.addr, "GET", &format!("/api/vms/{id}/console"), &[], b"");
    let events = client::read_events(&mut r);
    let end: serde_json::Value = serde_json::from_str(&events.last().unwrap().1).unwrap();
    assert_eq!(end["state"], "stopped", "{end}");
}

/// Chromium's DOM of `url` after its scripts ran, or `None` (skip) without Chromium.
/// With `shot`, also a PNG screenshot kept at that path.
fn chromium_dom(url: &str, shot: Option<&std::path::Path>) -> Option<String> {
    let bin = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let Some(bin) = bin else {
        let required = std::env::var("HVCERT_REQUIRE_CHROMIUM").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "chromium is absent but HVCERT_REQUIRE_CHROMIUM=1"
        );
        common::skip_log::skip("serve pages in chromium", "chromium is absent");
        return None;
    };
    let profile = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--virtual-time-budget=3000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(url)
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    if let Some(shot) = shot {
        let st = std::process::Command::new(bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
            ])
            .args(["--window-size=1000,800", "--virtual-time-budget=3000"])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(format!("--screenshot={}", shot.display()))
            .arg(url)
            .output()
            .expect("chromium runs");
        assert!(
            st.status.success() && shot.exists(),
            "no screenshot of {url}"
        );
    }
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn pages_load_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(dir.path(), &[]);
    let base = format!("http://{}", s.addr);
    let vm = client::post_json(
        s.addr,
        "/api/vms",
        br#"{"name":"page-vm","kernel":"builtin"}"#,
    );
    let vid = vm.json()["id"].as_i64().unwrap();
    // A fleet report and a package (of the fixture run), made by hvcert and uploaded.
    let hosts = common::workspace_root().join("fixtures/hosts");
    let fleet = dir.path().join("fleet.json");
    let package = dir.path().join("pkg.tar.gz");
    let out = common::hvcert()
        .args(["fleet", "-o"])
        .arg(&fleet)
        .arg(hosts.join("dell-r630-haswell-ep"))
        .arg(hosts.join("intel-harpertown-no-nx"))
        .output()
        .unwrap();
    assert!(fleet.is_file(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = common::hvcert()
        .arg("package")
        .arg(&package)
        .arg(common::workspace_root().join("fixtures/reports/all-pass.json"))
        .output()
        .unwrap();
    common::assert_exit(&out, 0);
    for (file, ct) in [(&fleet, "application/json"), (&package, "application/gzip")] {
        let name = file.file_name().unwrap().to_str().unwrap();
        let r = client::request(
            s.addr,
            "POST",
            &format!("/api/import?name={name}"),
            &[("Content-Type", ct)],
            &std::fs::read(file).unwrap(),
        );
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let pages = [
        ("/hosts", "ci-runner-01"),
        ("/hosts/1", "Probe facts"),
        ("/runs", "pass/fail trend"),
        ("/runs/1", "Run #1"),
        ("/vms", "page-vm"),
        (&format!("/vms/{vid}") as &str, "Console"),
        ("/compare?base=1&run=1", "GATE PASSES"),
        ("/certify", "sles11sp1-like"),
        ("/fleets/1", "intel-harpertown-no-nx"),
        ("/packages/1", "matches its manifest"),
    ];
    // Screenshots of five pages are kept as artifacts in <target>/console-screenshots/.
    let shots = std::env::current_exe()
        .ok()
        .and_then(|e| common::skip_log::target_dir_of(&e))
        .map(|t| t.join("console-screenshots"));
    if let Some(d) = &shots {
        let _ = std::fs::create_dir_all(d);
    }
    for (path, want) in pages {
        let shot = ["/runs", "/runs/1", "/vms", "/fleets/1", "/packages/1"]
            .contains(&path)
            .then(|| {
                shots
                    .as_ref()
                    .map(|d| d.join(format!("{}.png", path.trim_matches('/').replace('/', "-"))))
            })
            .flatten();
        let Some(dom) = chromium_dom(&format!("{base}{path}"), shot.as_deref()) else {
            return;
        };
        assert!(dom.contains(want), "{path}: {want:?} missing in\n{dom}");
    }
}

#[path = "../../console/tests/common/cdp.rs"]
mod cdp;

/// The bar of issue 17 in a real browser (DevTools protocol), on an empty store: import a
/// real certify run (its folder as a tar archive) through the runs page's upload form,
/// open it, create a VM from the VMs page, start the minimal (built-in) guest from its page,
/// see its console text and end state appear live, start and stop it again, and no console
/// error on the way. Screenshots of each step go to <target>/console-screenshots/bar-*.png.
#[test]
fn bar_import_a_run_open_it_then_run_the_guest_from_its_page_in_chromium() {
    if !common::kvm_available_or_skip(
        "bar_import_a_run_open_it_then_run_the_guest_from_its_page_in_chromium",
    ) {
        return;
    }
    let Some(bin) = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    else {
        let required = std::env::var("HVCERT_REQUIRE_CHROMIUM").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "chromium is absent but HVCERT_REQUIRE_CHROMIUM=1"
        );
        common::skip_log::skip("vm page in chromium", "chromium is absent");
        return;
    };
    let shots = std::env::current_exe()
        .ok()
        .and_then(|e| common::skip_log::target_dir_of(&e))
        .map(|t| t.join("console-screenshots"));
    if let Some(d) = &shots {
        let _ = std::fs::create_dir_all(d);
    }
    let shot = |b: &mut cdp::Browser, name: &str| {
        if let Some(d) = &shots {
            b.screenshot(&d.join(format!("bar-{name}.png")));
        }
    };
    // A real certify run of two cases, archived as a folder the way a lab would keep it.
    let work = tempfile::tempdir().unwrap();
    let run_dir = work.path().join("run");
    let out = common::hvcert()
        .args(["certify", "--profile", "sles11sp1-like", "--case", "boot"])
        .args(["--case", "hv_cpuid", "--jobs", "1", "--no-probe", "--out"])
        .arg(&run_dir)
        .output()
        .unwrap();
    common::assert_exit(&out, 0);
    let archive = work.path().join("certify-run.tar");
    let tar = std::process::Command::new("tar")
        .arg("-C")
        .arg(&run_dir)
        .arg("-cf")
        .arg(&archive)
        .arg(".")
        .status()
        .unwrap();
    assert!(tar.success());

    let dir = tempfile::tempdir().unwrap();
    let s = serve_bare(dir.path(), &[]);
    let base = format!("http://{}", s.addr);
    let mut b = cdp::Browser::launch(bin);
    b.goto(&format!("{base}/runs"));
    assert_eq!(
        b.eval("document.querySelectorAll('a[href^=\"/runs/\"]').length"),
        0
    );
    let doc = b.call("DOM.getDocument", serde_json::json!({}));
    let input = b.call(
        "DOM.querySelector",
        serde_json::json!({"nodeId": doc["root"]["nodeId"], "selector": "#import [name=file]"}),
    );
    b.call(
        "DOM.setFileInputFiles",
        serde_json::json!({"nodeId": input["nodeId"], "files": [archive.to_str().unwrap()]}),
    );
    b.eval("document.querySelector('#import button').click(); true");
    b.wait_for(
        "document.readyState === 'complete' && document.querySelector('a[href=\"/runs/1\"]') !== null",
        std::time::Duration::from_secs(30),
    );
    assert_eq!(b.eval("document.getElementById('imsg').textContent"), "");
    shot(&mut b, "1-run-imported");
    b.eval("document.querySelector('a[href=\"/runs/1\"]').click(); true");
    b.wait_for(
        "location.pathname === '/runs/1' && document.readyState === 'complete'",
        std::time::Duration::from_secs(30),
    );
    let body = b.eval("document.body.textContent");
    let body = body.as_str().unwrap();
    assert!(
        body.contains("Run #1") && body.contains("hv_cpuid") && body.contains("sles11sp1-like"),
        "{body}"
    );
    shot(&mut b, "2-run-opened");

    b.goto(&format!("{base}/vms"));
    b.eval(
        "document.querySelector('#create [name=name]').value='from-page';\
         document.querySelector('#create button').click(); true",
    );
    b.wait_for(
        "/^\\/vms\\/\\d+$/.test(location.pathname) && document.readyState === 'complete'",
        std::time::Duration::from_secs(30),
    );
    assert!(b
        .eval("document.querySelector('h1').textContent")
        .as_str()
        .unwrap()
        .contains("from-page"));
    shot(&mut b, "3-vm-created");
    b.eval("document.getElementById('start').click(); true");
    b.wait_for(
        "document.getElementById('state').textContent.includes('exited')",
        std::time::Duration::from_secs(60),
    );
    let console = b.eval("document.getElementById('console').textContent");
    assert!(console.as_str().unwrap().contains("ok 1 boot"), "{console}");
    assert_eq!(
        b.eval("document.getElementById('end').textContent"),
        "guest status 0"
    );
    assert!(b
        .eval("document.getElementById('state').textContent")
        .as_str()
        .unwrap()
        .contains("exited"));
    shot(&mut b, "4-guest-ended");
    // Start again and stop at once, from the page's own buttons' actions.
    b.eval("(async () => { await act('start'); await act('stop'); return true })()");
    b.wait_for(
        "document.getElementById('end').textContent !== ''",
        std::time::Duration::from_secs(60),
    );
    let end = b.eval("document.getElementById('end').textContent");
    let msg = b.eval("document.getElementById('msg').textContent");
    assert!(
        end == "stopped through the console" || msg.as_str().unwrap().contains("not running"),
        "end {end}, message {msg}"
    );
    assert_eq!(b.console_errors(), Vec::<String>::new());
}

/// A certify run from the /certify page in a real browser: pick a profile, two cases and
/// one job, start it, watch the progress page until it links to the imported run, open
/// that run, and no console error on the way.
#[test]
fn certify_page_starts_a_run_and_follows_it_in_chromium() {
    if !common::kvm_available_or_skip("certify_page_starts_a_run_and_follows_it_in_chromium") {
        return;
    }
    let Some(bin) = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    else {
        let required = std::env::var("HVCERT_REQUIRE_CHROMIUM").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "chromium is absent but HVCERT_REQUIRE_CHROMIUM=1"
        );
        common::skip_log::skip("certify page in chromium", "chromium is absent");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let s = serve(dir.path(), &[]);
    let base = format!("http://{}", s.addr);
    let mut b = cdp::Browser::launch(bin);
    b.goto(&format!("{base}/certify"));
    b.eval(
        "document.querySelector('#certify [value=\"sles11sp1-like\"]').checked=true;\
         document.querySelector('#certify [name=cases]').value='boot, hv_cpuid';\
         document.querySelector('#certify [name=jobs]').value='1';\
         document.querySelector('#certify button').click(); true",
    );
    b.wait_for(
        "/^\\/certify\\/\\d+$/.test(location.pathname)",
        std::time::Duration::from_secs(30),
    );
    b.wait_for(
        "document.readyState === 'complete' && document.getElementById('report') !== null",
        std::time::Duration::from_secs(120),
    );
    let progress = b.eval("document.getElementById('progress').textContent");
    assert!(
        progress.as_str().unwrap().contains("2 of 2 cases finished"),
        "{progress}"
    );
    assert_eq!(
        b.eval("document.querySelectorAll('#cases tr').length"),
        3,
        "a header and two cases"
    );
    if let Some(t) = std::env::current_exe()
        .ok()
        .and_then(|e| common::skip_log::target_dir_of(&e))
    {
        let d = t.join("console-screenshots");
        let _ = std::fs::create_dir_all(&d);
        b.screenshot(&d.join("certify-run-done.png"));
    }
    b.eval("document.getElementById('report').click(); true");
    b.wait_for(
        "/^\\/runs\\/\\d+$/.test(location.pathname) && document.readyState === 'complete'",
        std::time::Duration::from_secs(30),
    );
    assert!(b
        .eval("document.body.textContent")
        .as_str()
        .unwrap()
        .contains("hv_cpuid"));
    assert_eq!(b.console_errors(), Vec::<String>::new());
}

/// A real certify run (a whole Xen profile, one VM at a time) cancelled from its page after
/// its first case, then resumed from the same page: it ends `cancelled` with part of its
/// cases, then `done` under the same id with every case once and the run imported whole.
/// Without Chromium (and not required), the page's buttons' API calls are made directly.
#[test]
fn certify_run_cancelled_then_resumed_from_its_page() {
    if !common::kvm_available_or_skip("certify_run_cancelled_then_resumed_from_its_page") {
        return;
    }
    let bin = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    if bin.is_none() {
        let required = std::env::var("HVCERT_REQUIRE_CHROMIUM").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "chromium is absent but HVCERT_REQUIRE_CHROMIUM=1"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let s = serve_bare(dir.path(), &[]);
    let base = format!("http://{}", s.addr);
    // The browser is up and the page's origin loaded before the run starts, so that the
    // cancel lands early.
    let mut b = bin.map(cdp::Browser::launch);
    if let Some(b) = b.as_mut() {
        b.goto(&format!("{base}/certify"));
    }
    let req = serde_json::json!({
        "profiles": ["sles10sp1-like"], "jobs": 1, "probe_host": false
    });
    let j = client::post_json(s.addr, "/api/certify", req.to_string().as_bytes());
    assert_eq!(j.status, 202, "{}", j.text());
    let id = j.json()["id"].as_i64().unwrap();
    let job = |a| client::get(a, &format!("/api/certify/{id}")).json();
    let t = std::time::Instant::now();
    while job(s.addr)["finished"].as_i64().unwrap_or(0) < 1 {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(120),
            "no case finished"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let shots = std::env::current_exe()
        .ok()
        .and_then(|e| common::skip_log::target_dir_of(&e))
        .map(|t| t.join("console-screenshots"));
    match b.as_mut() {
        Some(b) => {
            b.goto(&format!("{base}/certify/{id}"));
            b.eval("document.getElementById('cancel').click(); true");
            b.wait_for(
                "document.readyState === 'complete' && document.getElementById('resume') !== null",
                std::time::Duration::from_secs(60),
            );
            if let Some(d) = &shots {
                let _ = std::fs::create_dir_all(d);
                b.screenshot(&d.join("certify-cancelled.png"));
            }
        }
        None => assert_eq!(
            client::post_json(s.addr, &format!("/api/certify/{id}/cancel"), b"").status,
            202
        ),
    }
    let t = std::time::Instant::now();
    while job(s.addr)["state"] == "running" {
        assert!(t.elapsed() < std::time::Duration::from_secs(60));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let cancelled = job(s.addr);
    assert_eq!(cancelled["state"], "cancelled", "{cancelled}");
    let part = cancelled["finished"].as_i64().unwrap();
    let planned = cancelled["planned"].as_i64().unwrap();
    assert!(
        (1..planned).contains(&part),
        "cancelled after the first case, before the last: {cancelled}"
    );
    match b.as_mut() {
        Some(b) => {
            b.eval("document.getElementById('resume').click(); true");
            b.wait_for(
                "document.readyState === 'complete' && document.getElementById('report') !== null",
                std::time::Duration::from_secs(180),
            );
            if let Some(d) = &shots {
                b.screenshot(&d.join("certify-resumed-done.png"));
            }
            assert_eq!(b.console_errors(), Vec::<String>::new());
        }
        None => {
            assert_eq!(
                client::post_json(s.addr, &format!("/api/certify/{id}/resume"), b"").status,
                202
            );
            let t = std::time::Instant::now();
            while job(s.addr)["state"] == "running" {
                assert!(t.elapsed() < std::time::Duration::from_secs(180));
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
    }
    let done = job(s.addr);
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["finished"].as_i64(), Some(planned), "{done}");
    let listed = client::get(s.addr, &format!("/api/certify/{id}/cases?limit=500")).json();
    let ids: std::collections::BTreeSet<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len() as i64, planned, "each case once: {listed}");
    let run = client::get(s.addr, &format!("/api/runs/{}", done["run_id"])).json();
    assert_eq!(run["run"]["total"].as_i64(), Some(planned), "{run}");
}

/// The README tour's `hvcert serve ... --import out/` line, run as written (in a folder
/// holding a certify output `out/`; only `--listen 127.0.0.1:0` added, for a free port):
/// it serves, with the run imported.
#[test]
fn readme_serve_line_runs_as_written() {
    let readme = std::fs::read_to_string(common::workspace_root().join("README.md")).unwrap();
    let tour = readme
        .split("## A tour of the CLI")
        .nth(1)
        .and_then(|s| s.split("```").nth(1))
        .expect("README has a tour block");
    let words: Vec<&str> = tour
        .lines()
        .map(|l| {
            l.split('#')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .collect::<Vec<_>>()
        })
        .find(|w| w.starts_with(&["hvcert", "serve"]) && w.contains(&"--import"))
        .expect("a serve line with --import in the tour");
    let cwd = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(cwd.path().join("out")).unwrap();
    std::fs::copy(
        common::workspace_root().join("fixtures/reports/all-pass.json"),
        cwd.path().join("out/report.json"),
    )
    .unwrap();
    let mut child = common::hvcert()
        .args(&words[1..])
        .args(["--listen", "127.0.0.1:0"])
        .current_dir(cwd.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let s = Serve {
        addr: line
            .trim()
            .rsplit("http://")
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?} for {words:?}")),
        child,
    };
    assert_eq!(
        client::get(s.addr, "/api/runs").json()["total"],
        1,
        "{words:?}"
    );
    assert!(client::get(s.addr, "/runs")
        .text()
        .contains("href=\"/runs/1\""));
}
