//! A KTAP parser (<https://docs.kernel.org/dev-tools/ktap.html>), tolerant of whatever else
//! shares the console: firmware banners, partial lines, binary noise. Only top-level
//! results count; indented (nested) lines are kept as diagnostics of the next result.

/// One `ok`/`not ok` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KtapResult {
    /// The test number the line gives.
    pub number: u32,
    /// `ok` (true) or `not ok`.
    pub ok: bool,
    /// The test's name (the guest's case id).
    pub name: String,
    /// A `# SKIP` or `# TODO` directive.
    pub directive: Option<Directive>,
    /// Text after `#` when it is not a SKIP/TODO directive (the failure reason).
    pub reason: Option<String>,
    /// `# ...` diagnostic lines seen since the previous result.
    pub diagnostics: Vec<String>,
}

/// A KTAP directive after `#`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Directive {
    /// `# SKIP reason`: the test did not apply.
    Skip(String),
    /// `# TODO reason`: a known failure.
    Todo(String),
}
/// What a console said in KTAP.

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KtapDoc {
    /// `KTAP version N` (or `TAP version N`) when seen.
    pub version: Option<u32>,
    /// `1..N`
    pub plan: Option<u32>,
    /// The top-level results, in console order.
    pub results: Vec<KtapResult>,
    /// `Bail out! reason`, when the guest gave up.
    pub bail_out: Option<String>,
    /// Lines after the header that were neither KTAP nor blank.
    pub unparsed_lines: usize,
}

impl KtapDoc {
    /// The first result named `name`.
    pub fn result(&self, name: &str) -> Option<&KtapResult> {
        self.results.iter().find(|r| r.name == name)
    }
}

/// Parse console text. Everything before the first version line is ignored (firmware
/// output); a missing version line still parses results, so a truncated log says what
/// it can.
pub fn parse(text: &str) -> KtapDoc {
    let mut doc = KtapDoc::default();
    let mut pending_diag: Vec<String> = Vec::new();
    let mut seen_header = false;
    for raw in text.split('\n') {
        let line = clean(raw);
        // The version line may follow garbage on the same physical line.
        if let Some(v) = find_version(&line) {
            if doc.version.is_none() {
                doc.version = Some(v);
                seen_header = true;
                continue;
            }
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            // Nested subtest output: keep as diagnostic context only.
            pending_diag.push(line.trim().to_string());
            continue;
        }
        let line = line.trim_end();
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            pending_diag.push(rest.to_string());
            continue;
        }
        if line == "#" {
            continue;
        }
        if let Some(n) = parse_plan(line) {
            doc.plan.get_or_insert(n);
            continue;
        }
        if let Some(mut r) = parse_result(line) {
            r.diagnostics = std::mem::take(&mut pending_diag);
            doc.results.push(r);
            continue;
        }
        if let Some(reason) = line.strip_prefix("Bail out!") {
            doc.bail_out = Some(reason.trim().to_string());
            continue;
        }
        if seen_header {
            doc.unparsed_lines += 1;
        }
    }
    doc
}

/// Drop carriage returns and control characters other than tab.
fn clean(raw: &str) -> String {
    raw.chars()
        .filter(|&c| c == '\t' || !c.is_control())
        .collect()
}

fn find_version(line: &str) -> Option<u32> {
    for tag in ["KTAP version ", "TAP version "] {
        if let Some(pos) = line.find(tag) {
            let digits: String = line[pos + tag.len()..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            if let Ok(v) = digits.parse() {
                return Some(v);
            }
        }
    }
    None
}

fn parse_plan(line: &str) -> Option<u32> {
    let rest = line.strip_prefix("1..")?;
    let digits = rest.split_whitespace().next()?;
    digits.parse().ok()
}

fn parse_result(line: &str) -> Option<KtapResult> {
    let (ok, rest) = if let Some(r) = line.strip_prefix("not ok ") {
        (false, r)
    } else if let Some(r) = line.strip_prefix("ok ") {
        (true, r)
    } else {
        return None;
    };
    let rest = rest.trim_start();
    let num_len = rest.chars().take_while(|c| c.is_ascii_digit()).count();
    if num_len == 0 {
        return None;
    }
    let number: u32 = rest[..num_len].parse().ok()?;
    let rest = rest[num_len..].trim_start();
    let rest = rest.strip_prefix("- ").unwrap_or(rest);
    let (name, comment) = match rest.find(" #") {
        Some(i) => (rest[..i].trim(), Some(rest[i + 2..].trim())),
        None if rest.starts_with('#') => ("", Some(rest[1..].trim())),
        None => (rest.trim(), None),
    };
    let mut directive = None;
    let mut reason = None;
    if let Some(c) = comment {
        let upper = c.to_ascii_uppercase();
        if upper.starts_with("SKIP") {
            directive = Some(Directive::Skip(c[4..].trim().to_string()));
        } else if upper.starts_with("TODO") {
            directive = Some(Directive::Todo(c[4..].trim().to_string()));
        } else if !c.is_empty() {
            reason = Some(c.to_string());
        }
    }
    Some(KtapResult {
        number,
        ok,
        name: name.to_string(),
        directive,
        reason,
        diagnostics: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_guest_log() {
        let log = "SeaBIOS (version 1.16)\r\nBooting from ROM..KTAP version 1\n\
                   # hvcert-guest 0.1.0 cmdline: profile=x cases=a,b,c,d\n1..4\n\
                   # cs=0x23\nok 1 boot\nnot ok 2 hv_cpuid # CPUID 0x40000001 EAX=0x0, not Hv#1\n\
                   ok 3 smp_vp_index # SKIP second vCPU bring-up not implemented\n\
                   \nnot ok 4 crash # exception #UD vector=6 error=0x0 rip=0x100b5b cpl=3\n";
        let d = parse(log);
        assert_eq!(d.version, Some(1));
        assert_eq!(d.plan, Some(4));
        assert_eq!(d.results.len(), 4);
        assert_eq!(d.results[0].name, "boot");
        assert!(d.results[0].ok);
        assert_eq!(
            d.results[0].diagnostics.last().map(String::as_str),
            Some("cs=0x23")
        );
        let r = d.result("hv_cpuid").unwrap();
        assert!(!r.ok);
        assert_eq!(
            r.reason.as_deref(),
            Some("CPUID 0x40000001 EAX=0x0, not Hv#1")
        );
        let s = d.result("smp_vp_index").unwrap();
        assert_eq!(
            s.directive,
            Some(Directive::Skip(
                "second vCPU bring-up not implemented".into()
            ))
        );
        assert!(d
            .result("crash")
            .unwrap()
            .reason
            .as_deref()
            .unwrap()
            .starts_with("exception #UD"));
        assert_eq!(d.unparsed_lines, 0);
    }

    #[test]
    fn tolerates_dashes_todo_nesting_and_bail_out() {
        let log = "KTAP version 1\n1..2\n    KTAP version 1\n    1..1\n    ok 1 inner\n\
                   ok 1 - outer # TODO not yet\nBail out! disk gone\n";
        let d = parse(log);
        assert_eq!(d.results.len(), 1, "nested results don't count: {d:?}");
        assert_eq!(d.results[0].name, "outer");
        assert_eq!(
            d.results[0].directive,
            Some(Directive::Todo("not yet".into()))
        );
        assert_eq!(d.bail_out.as_deref(), Some("disk gone"));
    }

    #[test]
    fn garbage_and_truncation() {
        let d = parse(
            "KTAP version 1\n1..3\nok 1 boot\nok two\nnot ok\n\u{0}\u{1b}[2Jnoise\nnot ok 2 hv_",
        );
        assert_eq!(d.results.len(), 2);
        assert_eq!(d.results[1].name, "hv_");
        assert!(!d.results[1].ok);
        assert_eq!(d.unparsed_lines, 3);
        assert_eq!(parse("").results.len(), 0);
        assert_eq!(parse("ok 99999999999999999999 x").results.len(), 0);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC*") {
            let _ = parse(&s);
        }

        #[test]
        fn finds_results_among_noise(noise in "[a-z #\\n]{0,40}", n in 1u32..1000, name in "[a-z_]{1,12}") {
            let log = format!("{noise}\nKTAP version 1\n1..1\nok {n} {name}\n{noise}");
            let d = parse(&log);
            proptest::prop_assert!(d.results.iter().any(|r| r.number == n && r.name == name && r.ok));
        }
    }
}
