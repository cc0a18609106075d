//! Renderers. Escaping is hand-written (a few lines each) because each target needs its
//! own rules: XML 1.0 forbids most control characters outright (an escaping crate would
//! emit `&#1;`, which XML parsers reject), and Markdown table cells need `|` and newlines
//! handled, which no HTML/XML escaper does.
pub mod html;
pub mod junit;
pub mod markdown;

use crate::model::Report;

/// Pretty JSON with a trailing newline.
pub fn json(report: &Report) -> String {
    let mut s = serde_json::to_string_pretty(report).unwrap_or_else(|e| {
        // Only non-string map keys can make this fail, and the model has none.
        format!("{{\"error\": \"cannot serialize report: {e}\"}}")
    });
    s.push('\n');
    s
}

/// Escapes text for XML 1.0 and HTML, in text and in double- or single-quoted attributes.
/// Characters XML 1.0 forbids (C0 controls other than tab/LF/CR, U+FFFE, U+FFFF) and C1
/// controls (parse errors in HTML) become a visible `\u{..}` so logs keep the information.
pub fn escape_markup(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if is_forbidden(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn is_forbidden(c: char) -> bool {
    matches!(c as u32, 0..=0x1f | 0x7f..=0x9f | 0xfffe | 0xffff)
}

/// "1.234" seconds from milliseconds.
pub fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// The run's times, each named: "1.5 s" (or only the
/// summed time when the run's wall time is not recorded).
pub fn times_line(r: &crate::Report) -> String {
    let summed = format!(
        "{} summed over cases",
        human_duration(r.summary.duration_ms)
    );
    match r.wall_ms {
        Some(w) => format!("{} wall time, {summed}", human_duration(w)),
        None => summed,
    }
}

/// Human duration: "850 ms", "12.3 s", "2 min 5 s".
pub fn human_duration(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(
            escape_markup("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(escape_markup("a\u{1b}[0mb\u{0}\n"), "a\\u{1b}[0mb\\u{0}\n");
        assert_eq!(escape_markup("µs é ✓"), "µs é ✓");
    }

    #[test]
    fn durations() {
        assert_eq!(seconds(12), "0.012");
        assert_eq!(seconds(61_005), "61.005");
        assert_eq!(human_duration(850), "850 ms");
        assert_eq!(human_duration(12_340), "12.3 s");
        assert_eq!(human_duration(125_000), "2 min 5 s");
    }

    #[test]
    fn times_are_named() {
        let mut r = crate::Report::new(crate::Identity::new("certify", "0.1.0", "x"));
        r.add_case(
            "p",
            crate::Case::new("a", crate::Outcome::Pass).duration_ms(1500),
        );
        assert_eq!(times_line(&r), "1.5 s summed over cases");
        r.wall_ms = Some(780);
        assert_eq!(times_line(&r), "780 ms wall time, 1.5 s summed over cases");
    }
}
