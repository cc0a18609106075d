//! `hvcert probe`: will this server run our hypervisor, and why.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use probe::{HostSource, LiveOptions};

use super::report::FormatArg;
use certify::probe_report;

#[derive(clap::Args)]
pub struct ProbeArgs {
    /// Print the report as JSON ("schema": "hvcert.probe/v1") instead of a table.
    #[arg(long)]
    json: bool,
    /// Also write the collected inputs as a snapshot directory (read back with --from).
    #[arg(long, value_name = "DIR")]
    capture: Option<PathBuf>,
    /// Read a snapshot directory instead of the live host.
    #[arg(long, value_name = "DIR")]
    from: Vec<PathBuf>,
    /// Import a CPUID dump: AIDA64/EVEREST text or `cpuid -r` output.
    #[arg(long, value_name = "FILE")]
    cpuid_dump: Vec<PathBuf>,
    /// Import `dmidecode` text (platform, BIOS, processor records).
    #[arg(long, value_name = "FILE")]
    dmidecode: Vec<PathBuf>,
    /// Supported-server list: a TOML file or a directory of them (repeatable). Default: the
    /// built-in sample list.
    #[arg(long, value_name = "PATH")]
    hcl: Vec<PathBuf>,
    /// Skip the KVM functional check (micro-guest) on the live host; with --from, leave out
    /// the KVM check the snapshot recorded.
    #[arg(long)]
    no_kvm: bool,
    /// Read the live host's /proc, /sys and /dev under DIR instead of / (tests and fake
    /// hosts; CPUID is always this CPU's).
    #[arg(long, value_name = "DIR", hide = true, default_value = "/")]
    root: PathBuf,
    /// Also write the result as a run report ("schema": "hvcert.report/v1", as `hvcert
    /// certify` writes; read by `hvcert report` and `hvcert gate`) to FILE; `-` writes it
    /// to standard output instead of the table.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Format of --report [default: from FILE's extension (.html, .xml, .md, .json), else json].
    #[arg(long, value_enum, requires = "report")]
    report_format: Option<FormatArg>,
}

pub fn run(args: ProbeArgs) -> anyhow::Result<ExitCode> {
    let mut sources: Vec<HostSource> = Vec::new();
    sources.extend(args.from.iter().cloned().map(HostSource::Snapshot));
    sources.extend(args.cpuid_dump.iter().cloned().map(HostSource::CpuidDump));
    sources.extend(args.dmidecode.iter().cloned().map(HostSource::Dmidecode));
    if sources.is_empty() {
        sources.push(HostSource::Live(LiveOptions {
            kvm_check: !args.no_kvm,
            root: args.root.clone(),
        }));
    }
    let mut lists = Vec::new();
    for p in &args.hcl {
        lists.extend(probe::hcl::load(p)?);
    }
    if lists.is_empty() {
        lists.push(probe::hcl::sample()?);
    }
    let to_stdout = args.report.as_deref() == Some(Path::new("-"));
    if to_stdout && args.json {
        anyhow::bail!("--report - and --json both write to standard output: give --report a file");
    }
    let started = Instant::now();
    let mut raw = probe::collect(&sources)?;
    if args.no_kvm {
        raw.kvm = probe::raw::Avail::missing("the KVM check was not requested (--no-kvm)");
    }
    if let Some(dir) = &args.capture {
        probe::snapshot::write(dir, &raw)
            .with_context(|| format!("writing snapshot {}", dir.display()))?;
        eprintln!("hvcert: snapshot written to {}", dir.display());
    }
    let report = probe::evaluate(&raw, &lists);
    let wall = started.elapsed();
    let out = if let Some(path) = &args.report {
        let format = args
            .report_format
            .map(reports::Format::from)
            .or_else(|| reports::Format::from_path(path))
            .unwrap_or(reports::Format::Json);
        let run = probe_report::to_report(
            &report,
            &probe_report::Requirements::from_lists(&lists),
            probe_report::current_identity(),
            Some(wall),
        );
        let text = reports::render(&run, format);
        if to_stdout {
            Some(text)
        } else {
            std::fs::write(path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!(
                "hvcert: report written to {} ({})",
                path.display(),
                run.verdict_words()
            );
            None
        }
    } else {
        None
    };
    let out = if let Some(text) = out {
        text
    } else if args.json {
        serde_json::to_string_pretty(&report)? + "\n"
    } else {
        report.to_table()
    };
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (e.g. `| head`) is not a probe failure.
    match stdout
        .write_all(out.as_bytes())
        .and_then(|_| stdout.flush())
    {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => return Err(e.into()),
    }
    Ok(ExitCode::SUCCESS)
}
