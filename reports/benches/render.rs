//! Rendering and gate cost on a large synthetic run (plain main, prints figures):
//! `cargo bench -p reports --bench render`. The reference is serde_json's compact
//! serialization of the same report, the floor for any rendering of it.
use std::hint::black_box;
use std::time::Instant;

use reports::gate::{compare, GateOptions};
use reports::{render, Case, Date, Format, Identity, Measurement, Outcome, Report};

fn big_report(profiles: usize, cases: usize) -> Report {
    let mut r = Report::new(Identity::new("certify", "0.1.0", "2026-11-25T00:00:00Z"));
    for p in 0..profiles {
        let suite = r.suite_mut(&format!("profile-{p}"));
        for c in 0..cases {
            let outcome = match c % 50 {
                0 => Outcome::Fail,
                1 => Outcome::Skip,
                _ => Outcome::Pass,
            };
            let mut case = Case::new(format!("case.{c}"), outcome)
                .duration_ms((c * 7 % 900) as u64 + 5)
                .measurement(Measurement::lower_is_better(
                    "rtt",
                    9.0 + (c % 10) as f64,
                    "µs",
                ));
            if outcome == Outcome::Fail {
                case = case
                    .reason("expected 2, got 5")
                    .log(&"KTAP line <x> & y\n".repeat(40));
            }
            suite.cases.push(case);
        }
    }
    r.refresh_summary();
    r
}

fn time<F: FnMut() -> usize>(name: &str, reps: u32, mut f: F) {
    let t = Instant::now();
    let mut bytes = 0;
    for _ in 0..reps {
        bytes = black_box(f());
    }
    let per = t.elapsed() / reps;
    println!(
        "{name:<28} {:>9.3} ms  ({bytes} bytes)",
        per.as_secs_f64() * 1e3
    );
}

fn main() {
    let r = big_report(10, 500);
    println!("report: {} cases", r.summary.total);
    time("reference serde_json", 20, || {
        serde_json::to_string(&r).unwrap().len()
    });
    for (name, f) in [
        ("json (pretty)", Format::Json),
        ("junit", Format::Junit),
        ("markdown", Format::Markdown),
        ("html", Format::Html),
    ] {
        time(name, 20, || render(&r, f).len());
    }
    let json = render(&r, Format::Json);
    time("load (parse + validate)", 20, || {
        reports::parse(&json, std::path::Path::new("bench.json"))
            .unwrap()
            .summary
            .total
    });
    let opts = GateOptions {
        today: Date::parse("2026-11-25").unwrap(),
        ..GateOptions::default()
    };
    time("gate compare (self)", 20, || {
        compare(&r, &r, &opts).regressions.len()
    });
}
