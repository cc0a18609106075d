//! The report model (serde, versioned), its renderers (JSON, JUnit XML, HTML, Markdown)
//! and the release gate. Knows nothing of KVM: host facts are an opaque JSON value.
//!
//! Producing a report (from `hvcert certify` or `hvcert probe`):
//! ```
//! use reports::{Case, Identity, Measurement, Outcome, Report, Format};
//! let mut report = Report::new(
//!     Identity::current("certify", env!("CARGO_PKG_VERSION"))
//!         .with_host(serde_json::json!({"cpu": "AMD EPYC"})),
//! );
//! report.add_case(
//!     "sles15-hyperv",
//!     Case::new("hypercall.invalid_code", Outcome::Pass)
//!         .duration_ms(12)
//!         .measurement(Measurement::lower_is_better("round_trip", 9.1, "µs")),
//! );
//! let json = reports::render(&report, Format::Json);
//! assert!(json.contains("\"schema\": \"hvcert.report/v1\""));
//! ```
pub mod date;
pub mod fleet;
pub mod gate;
mod model;
mod render;
pub mod waivers;

use std::path::{Path, PathBuf};

pub use date::Date;
pub use model::*;
pub use waivers::{Waiver, WaiverOutcome, Waivers};

/// Output formats of [`render`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The report model itself ([`SCHEMA`]), pretty-printed.
    Json,
    /// JUnit XML, for CI systems.
    Junit,
    /// A self-contained HTML page.
    Html,
    /// Markdown, for pull requests and chat.
    Markdown,
}

impl Format {
    /// Usual file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Junit => "xml",
            Format::Html => "html",
            Format::Markdown => "md",
        }
    }

    /// The format a file name's extension names (.html/.htm, .xml, .md/.markdown, .json,
    /// any case), if any.
    pub fn from_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "html" | "htm" => Some(Format::Html),
            "xml" => Some(Format::Junit),
            "md" | "markdown" => Some(Format::Markdown),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "json" => Ok(Format::Json),
            "junit" | "xml" => Ok(Format::Junit),
            "html" => Ok(Format::Html),
            "md" | "markdown" => Ok(Format::Markdown),
            _ => Err(format!(
                "unknown report format {s:?}: expected html, junit, md or json"
            )),
        }
    }
}

/// Errors reading reports and waivers. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read (or written).
    #[error("{}: cannot read: {err}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        err: std::io::Error,
    },
    /// The file is not JSON.
    #[error("{}:{line}:{column}: not valid JSON: {msg}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// Line of the error, from 1.
        line: usize,
        /// Column of the error, from 1.
        column: usize,
        /// What the parser said.
        msg: String,
    },
    /// The JSON is not a report of this schema (not an object, another or no `schema`),
    /// or its content is inconsistent (e.g. a case id used twice).
    #[error("{}: {msg}", path.display())]
    Schema {
        /// The file.
        path: PathBuf,
        /// What is wrong, with a hint when the file is another kind of report.
        msg: String,
    },
    /// The JSON has the right schema but not its shape (a missing or unknown field, ...).
    #[error("{}:{line}:{column}: not a valid {}: {msg}", path.display(), SCHEMA)]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Line of the error, from 1.
        line: usize,
        /// Column of the error, from 1.
        column: usize,
        /// What does not fit.
        msg: String,
    },
    /// The waivers file is malformed.
    #[error("{}: invalid waivers file: {msg}", path.display())]
    Waivers {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line when known.
        msg: String,
    },
}

/// Reads a report written by [`render`] with [`Format::Json`] (or [`save`]).
///
/// Checks the schema first, so an older or foreign file gets a clear message rather than
/// a field error; recomputes the summary from the cases.
pub fn load(path: impl AsRef<Path>) -> Result<Report, Error> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|err| Error::Io {
        path: path.to_path_buf(),
        err,
    })?;
    parse(&text, path)
}

/// Parses report JSON; `path` is only used in messages.
pub fn parse(text: &str, path: &Path) -> Result<Report, Error> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| Error::Syntax {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        msg: strip_position(&e),
    })?;
    let schema_err = |msg: String| Error::Schema {
        path: path.to_path_buf(),
        msg,
    };
    let Some(obj) = value.as_object() else {
        return Err(schema_err(format!(
            "expected a JSON object with \"schema\": \"{SCHEMA}\", found {}",
            json_kind(&value)
        )));
    };
    match obj.get("schema") {
        None => {
            return Err(schema_err(format!(
                "no \"schema\" field: not an hvcert report (expected \"schema\": \"{SCHEMA}\")"
            )))
        }
        Some(serde_json::Value::String(s)) if s == SCHEMA => {}
        Some(serde_json::Value::String(s)) => {
            let hint = match s.strip_prefix("hvcert.report/v") {
                Some(_) => "; this hvcert reads only that version: re-create the report with a matching hvcert",
                None if s.starts_with("hvcert.probe/") => {
                    "; this is a probe report (`hvcert probe --json`), not a run report"
                }
                None => "",
            };
            return Err(schema_err(format!(
                "unsupported schema {s:?}, expected {SCHEMA:?}{hint}"
            )));
        }
        Some(other) => {
            return Err(schema_err(format!(
                "\"schema\" must be the string {SCHEMA:?}, found {}",
                json_kind(other)
            )))
        }
    }
    // Deserialize from the text (not the Value) so field errors carry line and column.
    let mut report: Report = serde_json::from_str(text).map_err(|e| Error::Invalid {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        msg: strip_position(&e),
    })?;
    report.validate().map_err(|msg| Error::Schema {
        path: path.to_path_buf(),
        msg: format!("invalid report: {msg}"),
    })?;
    report.refresh_summary();
    Ok(report)
}

/// Writes `report` as JSON to `path`.
pub fn save(report: &Report, path: impl AsRef<Path>) -> std::io::Result<()> {
    std::fs::write(path, render(report, Format::Json))
}

/// Renders a report. The summary is recomputed from the cases first.
pub fn render(report: &Report, format: Format) -> String {
    let mut r = report.clone();
    r.refresh_summary();
    match format {
        Format::Json => render::json(&r),
        Format::Junit => render::junit::render(&r),
        Format::Html => render::html::render(&r),
        Format::Markdown => render::markdown::render(&r),
    }
}

/// serde_json's message without its " at line L column C" tail (we print our own).
fn strip_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("run.json")
    }

    #[test]
    fn format_from_a_file_name() {
        for f in [Format::Json, Format::Junit, Format::Html, Format::Markdown] {
            let name = format!("out.{}", f.extension());
            assert_eq!(Format::from_path(Path::new(&name)), Some(f));
        }
        assert_eq!(Format::from_path(Path::new("R.HTM")), Some(Format::Html));
        assert_eq!(
            Format::from_path(Path::new("r.markdown")),
            Some(Format::Markdown)
        );
        assert_eq!(Format::from_path(Path::new("r.txt")), None);
        assert_eq!(Format::from_path(Path::new("json")), None);
    }

    #[test]
    fn round_trip() {
        let mut r = Report::new(
            Identity::new("certify", "0.1.0", "2026-11-25T00:00:00Z")
                .with_git_revision("abc123")
                .with_host(serde_json::json!({"cpu": {"vendor": "AuthenticAMD"}})),
        );
        r.add_case(
            "p",
            Case::new("a", Outcome::Timeout)
                .log("x\ny")
                .measurement(Measurement::info("n", 1.5, "")),
        );
        let json = render(&r, Format::Json);
        let back = parse(&json, p()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn errors_are_clear() {
        let e = parse("{\n  \"schema\": \"hvcert.report/v1\",\n  oops\n}", p()).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("run.json:3:3: not valid JSON: key must be a string"),
            "{e}"
        );
        let e = parse("{\"schema\": \"hvcert.report/v0\"}", p()).unwrap_err();
        assert!(
            e.to_string()
                .contains("unsupported schema \"hvcert.report/v0\", expected \"hvcert.report/v1\""),
            "{e}"
        );
        let e = parse("{\"schema\": \"hvcert.probe/v1\"}", p()).unwrap_err();
        assert!(e.to_string().contains("probe report"), "{e}");
        let e = parse("{\"cases\": []}", p()).unwrap_err();
        assert!(e.to_string().contains("no \"schema\" field"), "{e}");
        let e = parse("[1]", p()).unwrap_err();
        assert!(e.to_string().contains("found an array"), "{e}");
        let e = parse(
            "{\"schema\": \"hvcert.report/v1\",\n\"identity\": {\"command\": \"c\", \"version\": \"v\", \"date\": \"d\"},\n\"suites\": [{\"name\": \"p\", \"cases\": [{\"id\": \"a\", \"outcome\": \"exploded\", \"blocker\": true}]}]}",
            p(),
        )
        .unwrap_err();
        let s = e.to_string();
        assert!(
            s.starts_with("run.json:3:") && s.contains("unknown variant `exploded`"),
            "{s}"
        );
        let e = parse(
            "{\"schema\": \"hvcert.report/v1\",\n\"identity\": {\"command\": \"c\", \"version\": \"v\", \"date\": \"d\"},\n\"suites\": [{\"name\": \"p\", \"cases\": [{\"id\": \"a\", \"outcome\": \"pass\", \"blocker\": true, \"ms\": 3}]}]}",
            p(),
        )
        .unwrap_err();
        let s = e.to_string();
        assert!(
            s.starts_with("run.json:3:") && s.contains("unknown field `ms`"),
            "{s}"
        );
        let e = parse("", p()).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("run.json:1:0: not valid JSON: EOF"),
            "{e}"
        );
    }

    #[test]
    fn stale_summary_is_recomputed() {
        let mut r = Report::new(Identity::new("certify", "0.1.0", "d"));
        r.add_case("p", Case::new("a", Outcome::Fail));
        let mut v: serde_json::Value = serde_json::from_str(&render(&r, Format::Json)).unwrap();
        v["summary"]["verdict"] = "pass".into();
        let back = parse(&v.to_string(), p()).unwrap();
        assert_eq!(back.summary.verdict, Verdict::Fail);
    }
}
