//! The fleet report as JUnit XML: one test suite, one test case per host; an unsupported
//! or a host that could not be read is a failure (`type` says which).
use std::fmt::Write;

use super::{identity_line, FleetReport, FAILED};
use crate::render::escape_markup as e;

/// Renders `r` as JUnit XML.
pub fn render(r: &FleetReport) -> String {
    let failures = r.total("unsupported") + r.total(FAILED);
    let errors = 0;
    let ts: String = r.date.trim_end_matches('Z').chars().take(19).collect();
    let mut o = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        o,
        "<testsuites name=\"hvcert fleet\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"0\">",
        r.hosts.len()
    );
    let _ = writeln!(
        o,
        "  <testsuite name=\"fleet\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"0\" timestamp=\"{}\">",
        r.hosts.len(),
        e(&ts)
    );
    for h in &r.hosts {
        let _ = write!(
            o,
            "    <testcase classname=\"fleet\" name=\"{}\"",
            e(&h.name)
        );
        let mut body = String::new();
        if let Some(err) = &h.error {
            let _ = writeln!(
                body,
                "      <failure type=\"{FAILED}\" message=\"{}\">{}</failure>",
                e(err),
                e(&h.path)
            );
        } else if h.is_failure() {
            let text: Vec<String> = h
                .blockers
                .iter()
                .map(|b| match &b.remedy {
                    Some(rem) => format!("{}: {}\nremedy: {rem}", b.fact, b.message),
                    None => format!("{}: {}", b.fact, b.message),
                })
                .collect();
            let _ = writeln!(
                body,
                "      <failure type=\"{}\" message=\"{}\">{}</failure>",
                e(&h.class),
                e(&h.label),
                e(&text.join("\n"))
            );
        }
        let out = format!(
            "{} · {} · score {}{}",
            identity_line(&h.identity),
            h.label,
            h.score.map_or("-".into(), |s| s.to_string()),
            if h.mismatched_inputs {
                " · the inputs look like two machines"
            } else {
                ""
            }
        );
        let _ = writeln!(body, "      <system-out>{}</system-out>", e(&out));
        let _ = write!(o, ">\n{body}    </testcase>\n");
    }
    o.push_str("  </testsuite>\n</testsuites>\n");
    o
}

#[cfg(test)]
mod tests {
    use crate::fleet::tests::sample;
    use crate::Format;

    #[test]
    fn one_case_per_host() {
        let t = sample().render(Format::Junit);
        assert_eq!(t.matches("<testcase ").count(), 5);
        assert_eq!(t.matches("<failure type=\"unsupported\"").count(), 2);
        assert_eq!(t.matches("<failure type=\"failed\"").count(), 1);
        assert!(t.contains("tests=\"5\" failures=\"3\" errors=\"0\""));
        assert!(t.contains("Dell &lt;Inc.&gt;"));
    }
}
