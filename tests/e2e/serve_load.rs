//! The console's figures, measured in this process (/proc/self), which runs the server and
//! nothing else (one test in this target, so no other test's threads count): 20 VMs
//! created, started, stopped and deleted through the API in parallel, with the threads,
//! open fds and resident memory before and after; and the server time of a run page of
//! 5,000 cases (the `Server-Timing` header). Run with `--nocapture` to see the figures.
#[path = "../../console/tests/common/client.rs"]
mod client;
#[path = "../common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

/// Threads, open fds and resident memory (KiB) of this process.
fn usage() -> (u64, usize, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir("/proc/self/fd").unwrap().count();
    (field("Threads:"), fds, field("VmRSS:"))
}

/// Waits (up to 10 s) until the thread and fd counts are back to `want`'s; returns the
/// last reading.
fn settle(want: (u64, usize, u64)) -> (u64, usize, u64) {
    let t = Instant::now();
    loop {
        let now = usage();
        if (now.0 <= want.0 && now.1 <= want.1) || t.elapsed() > Duration::from_secs(10) {
            return now;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn server_ms(r: &client::Response) -> f64 {
    r.header("server-timing")
        .and_then(|v| v.split("dur=").nth(1))
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("no Server-Timing header: {:?}", r.headers))
}

fn one_vm(addr: std::net::SocketAddr, i: usize) {
    let body = format!(
        r#"{{"name":"p{i}","kernel":"builtin","memory_mib":32,"cmdline":"profile=run cases=boot hang","timeout_s":120}}"#
    );
    let vm = client::post_json(addr, "/api/vms", body.as_bytes());
    assert_eq!(vm.status, 201, "{}", vm.text());
    let id = vm.json()["id"].as_i64().unwrap();
    let st = client::post_json(addr, &format!("/api/vms/{id}/start"), b"");
    assert_eq!(st.status, 202, "{}", st.text());
    let stop = client::post_json(addr, &format!("/api/vms/{id}/stop"), b"");
    assert!(stop.status == 202 || stop.status == 409, "{}", stop.text());
    let (_, _, mut r) = client::open(addr, "GET", &format!("/api/vms/{id}/console"), &[], b"");
    let events = client::read_events(&mut r);
    assert_eq!(events.last().unwrap().0, "end", "{events:?}");
    drop(r);
    let del = client::request(addr, "DELETE", &format!("/api/vms/{id}"), &[], b"");
    assert_eq!(del.status, 200, "{}", del.text());
}

#[test]
fn twenty_vms_in_parallel_do_not_leak_and_a_5000_case_run_page() {
    let dir = tempfile::tempdir().unwrap();
    let guest = certify::guest::guest_path(None, dir.path()).unwrap();
    let server = console::Server::start(console::Config {
        addr: "127.0.0.1:0".parse().unwrap(),
        token: None,
        data_dir: dir.path().join("data"),
        runner: Some(console::vms::Runner {
            program: env!("CARGO_BIN_EXE_hvcert").into(),
            builtin_guest: Some(guest),
            max_running: 32,
        }),
        max_body: 64 << 20,
        backend: None,
        tls: None,
    })
    .unwrap();
    let addr = server.addr();

    // Figure 1: a run page of 5,000 cases, server time.
    let mut r = reports::Report::new(reports::Identity::new(
        "certify",
        "0.1.0",
        "2026-12-06T00:00:00Z",
    ));
    for i in 0..5000u64 {
        let o = if i % 50 == 0 {
            reports::Outcome::Fail
        } else {
            reports::Outcome::Pass
        };
        r.add_case(
            &format!("suite{}", i % 4),
            reports::Case::new(format!("case_{i}"), o)
                .duration_ms(i)
                .log(&format!("line of case {i}\nok {i}")),
        );
    }
    let json = reports::render(&r, reports::Format::Json);
    let imp = client::post_json(addr, "/api/runs", json.as_bytes());
    assert_eq!(imp.status, 201, "{}", imp.text());
    let id = imp.json()["id"].as_i64().unwrap();
    let mut times = Vec::new();
    for _ in 0..3 {
        let page = client::get(addr, &format!("/runs/{id}"));
        assert_eq!(page.status, 200);
        assert!(page.text().contains("case_4999"));
        times.push(server_ms(&page));
    }
    let api = client::get(addr, &format!("/api/runs/{id}"));
    eprintln!(
        "FIGURE run page of 5000 cases: server time {:.0} / {:.0} / {:.0} ms (3 loads), \
         import {:.0} ms, GET /api/runs/{id} {:.0} ms",
        times[0],
        times[1],
        times[2],
        server_ms(&imp),
        server_ms(&api)
    );
    assert!(times[2] < 10_000.0, "run page took {} ms", times[2]);

    if !common::kvm_available_or_skip("twenty_vms_in_parallel_do_not_leak") {
        return;
    }
    // Figure 2: 20 VMs in parallel. One cycle first: first-use allocations are not leaks.
    one_vm(addr, 0);
    // The warm-up's request threads and child pipes close a moment after its answers.
    std::thread::sleep(Duration::from_millis(500));
    let before = usage();
    let t = Instant::now();
    std::thread::scope(|s| {
        for i in 1..=20 {
            s.spawn(move || one_vm(addr, i));
        }
    });
    let took = t.elapsed();
    let after = settle(before);
    eprintln!(
        "FIGURE 20 VMs created, started, stopped, deleted in parallel: {:.2} s; \
         threads {} -> {}, fds {} -> {}, RSS {} -> {} KiB",
        took.as_secs_f64(),
        before.0,
        after.0,
        before.1,
        after.1,
        before.2,
        after.2
    );
    // A leak is growth (fewer is a transient of the "before" reading that ended).
    assert!(
        after.0 <= before.0,
        "threads leaked: {} -> {}",
        before.0,
        after.0
    );
    assert!(
        after.1 <= before.1,
        "fds leaked: {} -> {}",
        before.1,
        after.1
    );
    // Memory is noisy (allocator caches): a leak of the VMs' consoles or records would be
    // far above this bound.
    assert!(
        after.2 < before.2 + 32 * 1024,
        "RSS grew from {} to {} KiB",
        before.2,
        after.2
    );
    assert_eq!(client::get(addr, "/api/vms").json()["total"], 0);
    server.shutdown();
}
