//! `hvcert certify`: boot the SUSE-like certification guests (profiles x cases, one VM
//! each, in parallel), parse their KTAP reports, record the run, and exit 1 when a blocker
//! case fails.
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use certify::suite;

#[derive(clap::Args)]
pub struct CertifyArgs {
    /// Profile name (in --profiles-dir) or path to a profile file; repeatable. Default: all.
    #[arg(long = "profile", value_name = "NAME")]
    profiles: Vec<String>,
    /// Only these cases (KTAP names); repeatable.
    #[arg(long = "case", value_name = "ID")]
    cases: Vec<String>,
    /// VMs run at the same time (default: available CPUs).
    #[arg(long)]
    jobs: Option<usize>,
    /// Output directory: report.json and logs/PROFILE/CASE.log.
    #[arg(long, default_value = "hvcert-certify")]
    out: PathBuf,
    /// Run seed (recorded; per-case seeds derive from it). Default: from the clock.
    #[arg(long)]
    seed: Option<u64>,
    /// Directory holding the profiles (default: the profiles built into hvcert).
    #[arg(long, value_name = "DIR")]
    profiles_dir: Option<PathBuf>,
    /// Guest kernel (default: the one built with this binary).
    #[arg(long, value_name = "ELF")]
    guest: Option<PathBuf>,
    /// List the profiles and their cases, run nothing.
    #[arg(long)]
    list: bool,
    /// Don't record the host's probe facts (skips reading /proc, /sys and the KVM check).
    #[arg(long)]
    no_probe: bool,
    /// Finish the interrupted run in DIR (its journal.jsonl): rerun only the cases that
    /// did not finish, with that run's options, and write its report.
    #[arg(long, value_name = "DIR", conflicts_with_all = [
        "profiles", "cases", "out", "seed", "profiles_dir", "guest", "list", "no_probe"
    ])]
    resume: Option<PathBuf>,
}

/// Lists the profiles, or runs the suite and prints each case and the verdict: exit 0
/// when every blocker case passed, 1 otherwise.
pub fn run(args: CertifyArgs) -> anyhow::Result<ExitCode> {
    let opts = suite::Options {
        profiles: args.profiles,
        cases: args.cases,
        jobs: args.jobs,
        out: args.out,
        seed: args.seed,
        profiles_dir: args.profiles_dir,
        guest: args.guest,
        probe_host: !args.no_probe,
        command_line: std::env::args().collect(),
    };
    if args.list {
        print_list(&suite::profiles(&opts)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut stderr = std::io::stderr();
    let bar = std::io::IsTerminal::is_terminal(&stderr);
    let done = match &args.resume {
        Some(dir) => suite::resume(dir, args.jobs, &mut stderr, bar)?,
        None => suite::run(&opts, &mut stderr, bar)?,
    };
    print_run(&done)?;
    Ok(if done.record.summary.blockers_failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_list(profiles: &[std::sync::Arc<certify::profile::LoadedProfile>]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    for p in profiles {
        let pr = &p.profile;
        writeln!(
            out,
            "{} ({}, {} vCPU, {} MiB): {}",
            pr.name, pr.interface, pr.vcpus, pr.memory_mib, pr.description
        )?;
        for c in &pr.cases {
            let tag = match (&c.not_run, c.blocker) {
                (Some(why), _) => format!("not run: {why}"),
                (None, true) => "blocker".into(),
                (None, false) => String::new(),
            };
            writeln!(out, "  {:<32} {tag}", c.id)?;
        }
    }
    Ok(())
}

fn print_run(done: &suite::Finished) -> std::io::Result<()> {
    let record = &done.record;
    let mut out = std::io::stdout().lock();
    for s in &record.suites {
        writeln!(out, "{}", s.profile)?;
        for c in &s.cases {
            let why = c
                .reasons
                .first()
                .map(|w| format!("  {w}"))
                .unwrap_or_default();
            let b = if c.blocker { "*" } else { " " };
            writeln!(
                out,
                "  {b}{:<8} {:<32} {:>6} ms{why}",
                c.outcome.as_str(),
                c.id,
                c.duration_ms
            )?;
        }
    }
    let counts: Vec<String> = record
        .summary
        .counts
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect();
    writeln!(
        out,
        "{} cases: {} in {:.2} s; report {}",
        record.summary.total,
        counts.join(", "),
        done.wall.as_secs_f64(),
        done.report_path.display()
    )?;
    if let Some(r) = record.ring0_share {
        writeln!(
            out,
            "guest ring-0 share of guest time: {:.1} % (boot + gate calls incl. their VMM exits)",
            r * 100.0
        )?;
    }
    if record.summary.blockers_failed.is_empty() {
        writeln!(out, "verdict: all blocker cases passed")?;
    } else {
        writeln!(
            out,
            "verdict: blocker cases failed: {}",
            record.summary.blockers_failed.join(", ")
        )?;
    }
    Ok(())
}
