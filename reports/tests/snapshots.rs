//! insta snapshots pin every renderer on the report fixtures in `fixtures/reports/`.
//! To review a change: `INSTA_UPDATE=always cargo test -p reports --test snapshots`, then
//! read the `.snap` diff in git.
use std::path::PathBuf;

use reports::{render, Format, Verdict};

const FIXTURES: [&str; 5] = [
    "all-pass",
    "blocker-failure",
    "waived-failure",
    "crash",
    "timeout",
];

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/reports")
        .join(format!("{name}.json"))
}

#[test]
fn every_renderer_on_every_fixture() {
    for name in FIXTURES {
        let report = reports::load(fixture(name)).unwrap_or_else(|e| panic!("{e}"));
        for (format, ext) in [
            (Format::Json, "json"),
            (Format::Junit, "junit.xml"),
            (Format::Markdown, "md"),
            (Format::Html, "html"),
        ] {
            insta::assert_snapshot!(format!("{name}.{ext}"), render(&report, format));
        }
    }
}

#[test]
fn fixture_verdicts() {
    let verdict = |n| reports::load(fixture(n)).unwrap().summary.verdict;
    assert_eq!(verdict("all-pass"), Verdict::Pass);
    assert_eq!(verdict("blocker-failure"), Verdict::Fail);
    assert_eq!(verdict("waived-failure"), Verdict::PassWithWarnings);
    assert_eq!(verdict("crash"), Verdict::Fail);
    assert_eq!(verdict("timeout"), Verdict::Fail);
}

#[test]
fn json_rendering_round_trips() {
    for name in FIXTURES {
        let report = reports::load(fixture(name)).unwrap();
        let again = reports::parse(&render(&report, Format::Json), &fixture(name)).unwrap();
        assert_eq!(again, report, "{name}");
    }
}

#[test]
fn invalid_fixtures_name_the_problem() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/reports/invalid");
    let e = reports::load(dir.join("old-schema.json"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("old-schema.json") && e.contains("unsupported schema \"hvcert.report/v0\""),
        "{e}"
    );
    let e = reports::load(dir.join("malformed.json"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("malformed.json:6:") && e.contains("not valid JSON: trailing comma"),
        "{e}"
    );
    let e = reports::load(dir.join("absent.json"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("absent.json: cannot read"), "{e}");
}
