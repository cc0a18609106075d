//! `hvcert report`: render a saved run as HTML, JUnit XML, Markdown or JSON.
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum FormatArg {
    Html,
    Junit,
    Md,
    Json,
}

impl From<FormatArg> for reports::Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Html => reports::Format::Html,
            FormatArg::Junit => reports::Format::Junit,
            FormatArg::Md => reports::Format::Markdown,
            FormatArg::Json => reports::Format::Json,
        }
    }
}

#[derive(clap::Args)]
pub struct ReportArgs {
    /// A saved run (JSON with "schema": "hvcert.report/v1"), or a saved `hvcert probe --json`
    /// ("schema": "hvcert.probe/v1"), converted as `hvcert probe --report` does.
    pub run: PathBuf,
    /// Output format [default: from the -o file's extension (.html, .xml, .md, .json), else md].
    #[arg(long, short = 'f', value_enum)]
    pub format: Option<FormatArg>,
    /// Write to FILE instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Apply a waivers file (TOML) before rendering; expired waivers are listed, not applied.
    #[arg(long, value_name = "FILE")]
    pub waivers: Option<PathBuf>,
}

pub fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let mut report = certify::probe_report::load(&args.run)?;
    if let Some(path) = &args.waivers {
        let waivers = reports::Waivers::load(path)?;
        let out = waivers.apply(&mut report, reports::Date::today_utc());
        for e in &out.expired {
            eprintln!(
                "hvcert report: note: waiver {:?} expired {}: not applied",
                e.pattern, e.expires
            );
        }
    }
    let format = args
        .format
        .map(reports::Format::from)
        .or_else(|| args.output.as_deref().and_then(reports::Format::from_path))
        .unwrap_or(reports::Format::Markdown);
    let text = reports::render(&report, format);
    match &args.output {
        Some(path) => std::fs::write(path, text)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            if let Err(e) = out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
                // A closed pipe (`| head`) is not an error worth a message.
                if e.kind() != std::io::ErrorKind::BrokenPipe {
                    return Err(e).context("cannot write to standard output");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
