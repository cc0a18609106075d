//! Property tests: whatever a guest log or a case id contains, the renderers' escaping
//! keeps the markup intact and loses no information.
use proptest::prelude::*;
use reports::{render, Case, Format, Identity, Outcome, Report};

/// Undoes `escape_markup` for the text it produced (entities and `\u{..}`).
fn unescape(s: &str) -> String {
    let s = s
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'");
    let mut out = String::new();
    let mut rest = s.as_str();
    while let Some(i) = rest.find("\\u{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 3..];
        let end = after.find('}').expect("closed");
        let c = char::from_u32(u32::from_str_radix(&after[..end], 16).unwrap()).unwrap();
        out.push(c);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out.replace("&amp;", "&")
}

fn report_with(id: &str, log: &str) -> Report {
    let mut r = Report::new(Identity::new("certify", "0.1.0", "2026-11-25T00:00:00Z"));
    r.add_case("p", Case::new(id, Outcome::Fail).reason(log).log(log));
    r
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn junit_text_stays_well_formed(id in "[^\\\\]{0,40}", log in "\\PC{0,80}|[\\x00-\\x1f<>&\"']{0,40}") {
        let x = render(&report_with(&id, &log), Format::Junit);
        // No character XML 1.0 forbids.
        for c in x.chars() {
            let ok = matches!(c, '\t' | '\n' | '\r') || !(c < ' ' || ('\u{7f}'..='\u{9f}').contains(&c) || c == '\u{fffe}' || c == '\u{ffff}');
            prop_assert!(ok, "forbidden char {:?}", c);
        }
        // The case name attribute carries the id back exactly (when it has no `\u{`).
        let start = x.find("<testcase name=\"").unwrap() + "<testcase name=\"".len();
        let end = start + x[start..].find('"').unwrap();
        if !id.contains("\\u{") {
            prop_assert_eq!(unescape(&x[start..end]), id.clone());
        }
        // Only the markup we wrote: every `<` starts one of our elements.
        for (i, _) in x.match_indices('<') {
            let tag = &x[i..];
            prop_assert!(
                ["<?xml", "<testsuites", "</testsuites", "<testsuite", "</testsuite", "<properties", "</properties",
                 "<property ", "<testcase", "</testcase", "<failure", "</failure", "<system-out", "</system-out",
                 "<system-err", "</system-err"].iter().any(|t| tag.starts_with(t)),
                "unexpected markup at {}", &tag[..tag.len().min(20)]
            );
        }
    }

    #[test]
    fn html_has_no_injected_markup(id in "\\PC{0,40}", log in "\\PC{0,80}") {
        let h = render(&report_with(&id, &log), Format::Html);
        // Injected text can't add elements: the tag count is that of the same-shaped plain
        // text (every char but line breaks replaced by 'a').
        let shape = |s: &str| s.chars().map(|c| if c == '\n' || c == '\r' { c } else { 'a' }).collect::<String>();
        let plain = render(&report_with(&shape(&id), &shape(&log)), Format::Html);
        prop_assert_eq!(h.matches('<').count(), plain.matches('<').count());
    }

    #[test]
    fn markdown_table_rows_stay_rows(id in "\\PC{0,40}", log in "\\PC{0,80}") {
        let md = render(&report_with(&id, &log), Format::Markdown);
        let row = md.lines().find(|l| l.starts_with("| p |")).expect("problem row");
        // Five cells: six unescaped pipes.
        let unescaped = row.match_indices('|').filter(|(i, _)| *i == 0 || !row[..*i].ends_with('\\')).count();
        prop_assert_eq!(unescaped, 6, "{}", row);
    }
}
