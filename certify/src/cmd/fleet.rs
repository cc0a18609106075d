//! `hvcert fleet DIR…`: score every host snapshot (or dump) under some folders, each host on
//! its own and in parallel, and write one fleet report.
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use probe::fleet::Scored;
use probe::report::Level;
use reports::fleet::{FleetHost, FleetReport, HostIdentity, Issue};

use super::report::FormatArg;

#[derive(clap::Args)]
pub struct FleetArgs {
    /// Folders to scan: every snapshot folder (with host.json, as `hvcert probe --capture`
    /// writes) is one host; so is a folder holding one CPUID dump and one dmidecode dump,
    /// and any other dump file. A folder that is itself a snapshot is one host.
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Output format [default: from the -o file's extension (.html, .xml, .md, .json), else md].
    #[arg(long, short = 'f', value_enum)]
    pub format: Option<FormatArg>,
    /// Write to FILE instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Supported-server list: a TOML file or a directory of them (repeatable). Default: the
    /// built-in sample list.
    #[arg(long, value_name = "PATH")]
    pub hcl: Vec<PathBuf>,
    /// Worker threads [default: the available cores].
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
}

pub fn run(args: FleetArgs) -> anyhow::Result<ExitCode> {
    let mut lists = Vec::new();
    for p in &args.hcl {
        lists.extend(probe::hcl::load(p)?);
    }
    if lists.is_empty() {
        lists.push(probe::hcl::sample()?);
    }
    let started = Instant::now();
    let hosts = probe::fleet::discover(&args.dirs);
    if hosts.is_empty() {
        anyhow::bail!(
            "no host snapshot or dump found under {}",
            args.dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let scored = probe::fleet::score(&hosts, &lists, args.jobs.unwrap_or(0));
    let mut report = FleetReport::new(
        env!("CARGO_PKG_VERSION"),
        &reports::date::now_rfc3339(),
        lists.iter().map(|l| l.list.name.clone()).collect(),
        scored.iter().map(fleet_host).collect(),
    );
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    let format = args
        .format
        .map(reports::Format::from)
        .or_else(|| args.output.as_deref().and_then(reports::Format::from_path))
        .unwrap_or(reports::Format::Markdown);
    let text = report.render(format);
    match &args.output {
        Some(path) => {
            std::fs::write(path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!(
                "hvcert fleet: {} written to {}",
                report.totals_line(),
                path.display()
            );
        }
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

/// One scored host as the fleet report shows it.
fn fleet_host(s: &Scored) -> FleetHost {
    let path = s.path.display().to_string();
    let r = match &s.result {
        Ok(r) => r,
        Err(e) => return FleetHost::failed(&s.name, &path, e),
    };
    let v = &r.verdict;
    let issues = |level: Level| -> Vec<Issue> {
        v.reasons
            .iter()
            .filter(|x| x.level == level)
            .map(|x| Issue {
                fact: x.fact.clone(),
                message: x.message.clone(),
                remedy: x.remedy.clone(),
            })
            .collect()
    };
    let c = &r.cpu;
    let fam = match (c.family, c.model) {
        (Some(f), Some(m)) => Some(format!("family {f:#x} model {m:#x}")),
        _ => None,
    };
    let cpu_name = c.brand.clone().or_else(|| c.codename.clone());
    let cpu = match (cpu_name, fam) {
        (Some(n), Some(f)) => Some(format!("{} ({f})", n.trim())),
        (n, f) => n.or(f),
    };
    let ch = &r.chipset;
    let chipset = match (&ch.name, &ch.pci_id) {
        (Some(n), Some(id)) => Some(format!("{n} ({id})")),
        (n, id) => n.clone().or_else(|| id.clone()),
    };
    FleetHost {
        name: s.name.clone(),
        path,
        class: v.class.as_str().to_string(),
        label: v.label(),
        score: Some(v.score),
        qualifiers: v
            .qualifiers
            .iter()
            .map(|q| q.as_str().to_string())
            .collect(),
        mismatched_inputs: v.qualifiers.contains(&probe::Qualifier::MismatchedInputs),
        identity: HostIdentity {
            vendor: r.platform.vendor.clone(),
            product: r.platform.product.clone(),
            cpu,
            chipset,
        },
        matched: v.matched.clone(),
        blockers: issues(Level::Blocker),
        warnings: issues(Level::Warning),
        error: None,
    }
}
