//! A saved report reads back with exactly the figures it was written with: `hvcert gate`
//! compares figures, so a 1-ulp drift in parsing would be a (tiny) lie.
use proptest::prelude::*;
use reports::{Case, Format, Identity, Measurement, Outcome, Report};

proptest! {
    #[test]
    fn measurements_survive_json_round_trip(value in proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL | proptest::num::f64::ZERO) {
        let mut report = Report::new(Identity::new("certify", "0.1.0", "2026-11-25T00:00:00Z"));
        report.add_case(
            "suite",
            Case::new("case", Outcome::Pass).measurement(Measurement::lower_is_better("figure", value, "ms")),
        );
        let json = reports::render(&report, Format::Json);
        let back = reports::parse(&json, std::path::Path::new("roundtrip.json")).unwrap();
        let got = back.suites[0].cases[0].measurements[0].value;
        prop_assert_eq!(got.to_bits(), value.to_bits());
        prop_assert_eq!(reports::render(&back, Format::Json), json);
    }
}
