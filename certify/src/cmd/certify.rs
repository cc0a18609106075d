//! `hvcert certify`: boot the SUSE-like certification guests (profiles x cases, one VM
//! each, in parallel), parse their KTAP reports, record the run, and exit 1 when a blocker
//! case fails.
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;

// The suite lives in certify/src/suite/ (owned with this subcommand).
#[path = "../suite/mod.rs"]
pub mod suite;

use suite::profile;
use suite::runner;

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
    /// Directory holding the profiles.
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
}

pub fn run(args: CertifyArgs) -> anyhow::Result<ExitCode> {
    let dir = args
        .profiles_dir
        .clone()
        .unwrap_or_else(suite::default_profiles_dir);
    let paths = if args.profiles.is_empty() {
        profile::all_in(&dir)?
    } else {
        args.profiles
            .iter()
            .map(|n| profile::resolve(&dir, n))
            .collect()
    };
    if paths.is_empty() {
        anyhow::bail!("no profiles found in {}", dir.display());
    }
    let profiles = paths
        .iter()
        .map(|p| profile::load(p).map(Arc::new))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut names = std::collections::BTreeSet::new();
    for p in &profiles {
        if !names.insert(p.profile.name.as_str()) {
            anyhow::bail!(
                "{}: profile name {} is used twice",
                p.path.display(),
                p.profile.name
            );
        }
    }
    if args.list {
        let mut out = std::io::stdout().lock();
        for p in &profiles {
            let pr = &p.profile;
            writeln!(
                out,
                "{} ({:?}, {} vCPU, {} MiB): {}",
                pr.name, pr.interface, pr.vcpus, pr.memory_mib, pr.description
            )?;
            for c in &pr.cases {
                let tag = match (&c.not_run, c.blocker) {
                    (Some(why), _) => format!("not-run: {why}"),
                    (None, true) => "blocker".into(),
                    (None, false) => String::new(),
                };
                writeln!(out, "  {:<32} {tag}", c.id)?;
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
    });
    let mut jobs = Vec::new();
    for p in &profiles {
        jobs.extend(runner::jobs_for(p.clone(), seed, &args.cases, &args.out)?);
    }
    if jobs.is_empty() {
        anyhow::bail!("no case matches {:?}", args.cases);
    }
    let workers = args.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    if !std::path::Path::new("/dev/kvm").exists() {
        anyhow::bail!(
            "/dev/kvm is absent: the certification guests run on KVM (try `hvcert probe`)"
        );
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let guest = suite::guest_path(args.guest.as_deref(), &args.out)
        .with_context(|| format!("writing the guest kernel into {}", args.out.display()))?;
    if !guest.is_file() {
        anyhow::bail!("guest kernel {} not found", guest.display());
    }
    let started = reports::date::now_rfc3339();
    // The host's facts go into the run before any guest boots.
    let host = if args.no_probe {
        None
    } else {
        let t = Instant::now();
        let facts = probe::probe_live(&probe::ProbeOptions::default());
        eprintln!(
            "hvcert certify: host probed in {} ms",
            t.elapsed().as_millis()
        );
        Some(serde_json::to_value(&facts).context("serializing the probe report")?)
    };
    eprintln!(
        "hvcert certify: {} VMs from {} profile(s), {workers} at a time, seed {seed}",
        jobs.len(),
        profiles.len()
    );
    let exec = suite::vm::HypervisorExecutor::new(guest.clone());
    let t0 = Instant::now();
    let mut stderr = std::io::stderr();
    let bar = std::io::IsTerminal::is_terminal(&stderr);
    let mut results = runner::run_all(&exec, &jobs, workers, &mut stderr, bar);
    let wall = t0.elapsed();
    runner::write_logs(&args.out, &mut results)?;

    let mut suites = Vec::new();
    for p in &profiles {
        let pr = &p.profile;
        let cases: Vec<_> = results
            .iter()
            .filter(|r| r.profile == pr.name)
            .cloned()
            .collect();
        let hyperv = matches!(
            pr.interface,
            profile::InterfaceKind::Hyperv | profile::InterfaceKind::Both
        );
        suites.push(suite::SuiteRecord {
            profile: pr.name.clone(),
            description: pr.description.clone(),
            profile_path: p.path.display().to_string(),
            profile_sha256: p.sha256.clone(),
            interface: pr.interface,
            guest_os: pr.guest_os.name.clone(),
            guest_os_id: hyperv
                .then(|| pr.guest_os_id().map(|id| format!("{id:#018x}")).ok())
                .flatten(),
            vcpus: pr.vcpus,
            memory_mib: pr.memory_mib,
            cases,
        });
    }
    let summary = suite::summarize(&suites);
    let record = suite::RunRecord {
        schema: "hvcert.certify-run/v0".into(),
        hvcert_version: env!("CARGO_PKG_VERSION").into(),
        git_revision: suite::git_revision(),
        started,
        command_line: std::env::args().collect(),
        seed,
        jobs: workers,
        guest_elf: guest.display().to_string(),
        guest_elf_sha256: suite::sha256_file(&guest),
        host,
        wall_ms: wall.as_millis() as u64,
        ring0_share: suite::ring0_share(&suites),
        summary,
        suites,
    };
    let run_json = args.out.join("run.json");
    std::fs::write(&run_json, serde_json::to_vec_pretty(&record)?)
        .with_context(|| format!("writing {}", run_json.display()))?;
    let report = args.out.join("report.json");
    reports::save(&suite::to_report(&record), &report)
        .with_context(|| format!("writing {}", report.display()))?;

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
        wall.as_secs_f64(),
        report.display()
    )?;
    if let Some(r) = record.ring0_share {
        writeln!(out, "guest ring-0 share of VM time: {:.1} %", r * 100.0)?;
    }
    if record.summary.blockers_failed.is_empty() {
        writeln!(out, "verdict: all blocker cases passed")?;
        Ok(ExitCode::SUCCESS)
    } else {
        writeln!(
            out,
            "verdict: blocker cases failed: {}",
            record.summary.blockers_failed.join(", ")
        )?;
        Ok(ExitCode::from(1))
    }
}
