//! `hvcert report` as a user runs it, and the HTML report in headless Chromium.
//!
//! The Chromium test skips with a printed reason when /usr/bin/chromium is absent, unless
//! HVCERT_REQUIRE_CHROMIUM is set (CI installs Debian's chromium and sets it).
#[path = "../common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::hvcert;

fn fixture(name: &str) -> PathBuf {
    common::workspace_root().join("fixtures/reports").join(name)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn renders_every_format_to_a_file_or_stdout() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for (flag, file, marker) in [
        ("html", "r.html", "<!DOCTYPE html>"),
        ("junit", "r.xml", "<testsuites name=\"hvcert certify\""),
        ("md", "r.md", "## ❌ hvcert certify: FAIL"),
        ("json", "r.json", "\"schema\": \"hvcert.report/v1\""),
    ] {
        let out_path = dir.join(file);
        let out = hvcert()
            .arg("report")
            .arg(fixture("blocker-failure.json"))
            .args(["--format", flag, "-o"])
            .arg(&out_path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{flag}: {}", text(&out.stderr));
        assert!(out.stdout.is_empty(), "-o writes nothing to stdout");
        let written = std::fs::read_to_string(&out_path).unwrap();
        assert!(written.contains(marker), "{flag}: {written}");
        // Same bytes as the library renders.
        let report = reports::load(fixture("blocker-failure.json")).unwrap();
        let format: reports::Format = flag.parse().unwrap();
        assert_eq!(written, reports::render(&report, format), "{flag}");
    }
    // Format from the -o extension; Markdown on stdout by default.
    let out_path = dir.join("inferred.html");
    let out = hvcert()
        .arg("report")
        .arg(fixture("all-pass.json"))
        .arg("-o")
        .arg(&out_path)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(std::fs::read_to_string(&out_path)
        .unwrap()
        .starts_with("<!DOCTYPE html>"));
    let out = hvcert()
        .arg("report")
        .arg(fixture("all-pass.json"))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(text(&out.stdout).starts_with("## ✅ hvcert certify: PASS\n"));
    // A saved JSON rendering reads back to the same report.
    let again = reports::load(dir.join("r.json")).unwrap();
    assert_eq!(
        again,
        reports::load(fixture("blocker-failure.json")).unwrap()
    );
}

#[test]
fn waivers_change_the_rendered_verdict() {
    let out = hvcert()
        .arg("report")
        .arg(fixture("blocker-failure.json"))
        .args(["--format", "md", "--waivers"])
        .arg(fixture("waivers.toml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let md = text(&out.stdout);
    assert!(
        md.starts_with("## ⚠️ hvcert certify: PASS WITH WARNINGS"),
        "{md}"
    );
    assert!(md.contains("waived until 2099-12-31"), "{md}");
    assert!(md.contains("### Expired waivers (not applied)"), "{md}");
    assert!(text(&out.stderr).contains("waiver \"storage.*\" expired 2026-01-31"));
}

#[test]
fn unreadable_input_exits_2_naming_the_file() {
    let cases = [
        (
            fixture("invalid/old-schema.json"),
            "old-schema.json: unsupported schema \"hvcert.report/v0\"",
        ),
        (
            fixture("invalid/malformed.json"),
            "malformed.json:6:57: not valid JSON: trailing comma",
        ),
        (fixture("invalid/absent.json"), "absent.json: cannot read"),
        (fixture("waivers.toml"), "waivers.toml:1:1: not valid JSON"),
    ];
    for (path, expected) in cases {
        let out = hvcert().arg("report").arg(&path).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", path.display());
        let err = text(&out.stderr);
        assert!(err.contains(expected), "{}: {err}", path.display());
    }
    let out = hvcert()
        .arg("report")
        .arg(fixture("all-pass.json"))
        .args(["--format", "pdf"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

// ---------------------------------------------------------------- headless Chromium

const CHROMIUM: &str = "/usr/bin/chromium";

fn chromium_available_or_skip(test: &str) -> bool {
    if Path::new(CHROMIUM).exists() {
        return true;
    }
    if std::env::var_os("HVCERT_REQUIRE_CHROMIUM").is_some() {
        panic!("{test}: {CHROMIUM} is absent but HVCERT_REQUIRE_CHROMIUM is set");
    }
    common::skip_log::skip(
        test,
        &format!("{CHROMIUM} is absent (apt-get install chromium; set HVCERT_REQUIRE_CHROMIUM=1 to make this a failure)"),
    );
    false
}

/// Runs headless Chromium on `page` with extra flags, killed after 90 s.
fn chromium(dir: &Path, profile: &str, extra: &[&str], page: &Path) -> Output {
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", dir.join(profile).display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    // Drain the pipes on threads so a chatty Chromium cannot block on a full pipe.
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut so, &mut v).ok();
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut se, &mut v).ok();
        v
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 90 s on {}", page.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    }
}

/// Console messages and uncaught exceptions Chromium logged for the page. The report has
/// no script, so any console output at all (including "Failed to load resource" for an
/// external asset) is a problem.
fn console_problems(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .map(str::to_string)
        .collect()
}

/// Loads `page` and returns (DOM after load, console problems).
fn dom_and_console(dir: &Path, profile: &str, page: &Path) -> (String, Vec<String>) {
    let out = chromium(
        dir,
        profile,
        &["--dump-dom", "--enable-logging=stderr", "--v=0"],
        page,
    );
    assert!(
        out.status.success(),
        "chromium --dump-dom failed: {}",
        text(&out.stderr)
    );
    (text(&out.stdout), console_problems(&text(&out.stderr)))
}

#[test]
fn html_report_in_headless_chromium() {
    if !chromium_available_or_skip("html_report_in_headless_chromium") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();

    // The detector itself: a page with a console error and an uncaught exception must be
    // caught, or a clean result below would prove nothing.
    let bad = dir.join("bad.html");
    std::fs::write(
        &bad,
        "<!DOCTYPE html><html><body><p>x</p><script>console.error('boom'); undefined_fn();</script></body></html>",
    )
    .unwrap();
    let (_, problems) = dom_and_console(dir, "profile-bad", &bad);
    assert!(
        problems.iter().any(|p| p.contains("boom"))
            && problems.iter().any(|p| p.contains("Uncaught")),
        "the console check misses errors: {problems:?}"
    );

    for (fixture_name, verdict, slug) in [
        ("blocker-failure.json", "FAIL", "fail"),
        ("waived-failure.json", "PASS WITH WARNINGS", "warn"),
        ("all-pass.json", "PASS", "pass"),
    ] {
        let page = dir.join(fixture_name.replace(".json", ".html"));
        let out = hvcert()
            .arg("report")
            .arg(fixture(fixture_name))
            .args(["--format", "html", "-o"])
            .arg(&page)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));

        // It loads without console errors and shows the verdict first.
        let (dom, problems) = dom_and_console(dir, &format!("profile-dom-{slug}"), &page);
        assert!(
            problems.is_empty(),
            "{fixture_name}: console problems: {problems:?}"
        );
        let header = format!("<header id=\"verdict\" class=\"verdict verdict-{slug}\" data-verdict=\"{slug}\">\n<h1>{verdict}</h1>");
        assert!(
            dom.contains(&header),
            "{fixture_name}: verdict missing from the DOM:\n{dom}"
        );
        assert!(dom.find("id=\"verdict\"").unwrap() < dom.find("<table").unwrap());
        assert!(dom.contains("<svg"), "chart missing");
        assert!(
            dom.contains("Profile sles15-hyperv"),
            "per-profile table missing"
        );

        // It renders: a real PNG of the requested size, not a blank page.
        let png = dir.join(format!("{slug}.png"));
        let shot = format!("--screenshot={}", png.display());
        let out = chromium(
            dir,
            &format!("profile-shot-{slug}"),
            &[&shot, "--window-size=1200,1600"],
            &page,
        );
        assert!(
            out.status.success(),
            "screenshot failed: {}",
            text(&out.stderr)
        );
        let bytes = std::fs::read(&png).expect("screenshot written");
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
        assert_eq!(&bytes[12..16], b"IHDR");
        let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
        let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
        assert_eq!((width, height), (1200, 1600));
        // A blank 1200x1600 page compresses to a few KB; the report is far richer.
        assert!(
            bytes.len() > 40_000,
            "{slug}.png is only {} bytes: blank?",
            bytes.len()
        );
    }
}
