//! A certification run from start to finish: select the profiles, boot every case in its
//! own VM (in parallel), classify the outcomes, and write the run record (run.json), the
//! report (report.json) and the console logs into the output directory.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::profile::{self, LoadedProfile};
use crate::record::{self, RunRecord, SuiteRecord};
use crate::{build_info, guest, runner, vm};

/// What to run and where to write it.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Profile names or paths to profile files ([`profile::select`]); empty: all.
    pub profiles: Vec<String>,
    /// Only these cases (KTAP names); empty: every case of the selected profiles.
    pub cases: Vec<String>,
    /// VMs run at the same time; None: the available CPUs.
    pub jobs: Option<usize>,
    /// Output directory: run.json, report.json, logs/PROFILE/CASE.log.
    pub out: PathBuf,
    /// The run seed; None: from the clock.
    pub seed: Option<u64>,
    /// Where profile names are looked up; None: the built-in profiles.
    pub profiles_dir: Option<PathBuf>,
    /// The guest kernel; None: the one built with this binary ([`guest::guest_path`]).
    pub guest: Option<PathBuf>,
    /// Record the host's probe facts in the run.
    pub probe_host: bool,
    /// The command line to record.
    pub command_line: Vec<String>,
}

/// A finished run.
#[derive(Clone, Debug)]
pub struct Finished {
    /// The run record, as written to run.json.
    pub record: RunRecord,
    /// Where report.json was written.
    pub report_path: PathBuf,
    /// Wall time of the VMs' part of the run.
    pub wall: Duration,
}

/// The selected profiles ([`Options::profiles`] in [`Options::profiles_dir`]).
pub fn profiles(opts: &Options) -> anyhow::Result<Vec<Arc<LoadedProfile>>> {
    Ok(
        profile::select(opts.profiles_dir.as_deref(), &opts.profiles)?
            .into_iter()
            .map(Arc::new)
            .collect(),
    )
}

/// Runs the suite. Progress and timings go to `progress` (a bar when `bar`, see
/// [`runner::progress_text`]). Errors are about the setup (profiles, case filter, KVM,
/// output directory); case failures are in the record.
pub fn run(
    opts: &Options,
    progress: &mut (dyn Write + Send),
    bar: bool,
) -> anyhow::Result<Finished> {
    let profiles = profiles(opts)?;
    let seed = opts.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
    });
    for want in &opts.cases {
        if !profiles
            .iter()
            .any(|p| p.profile.cases.iter().any(|c| &c.id == want))
        {
            anyhow::bail!("--case {want}: no selected profile has that case (see --list)");
        }
    }
    let mut jobs = Vec::new();
    for p in &profiles {
        jobs.extend(runner::jobs_for(p.clone(), seed, &opts.cases, &opts.out)?);
    }
    if jobs.is_empty() {
        anyhow::bail!("no case matches {:?}", opts.cases);
    }
    let workers = opts.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    if !Path::new("/dev/kvm").exists() {
        anyhow::bail!(
            "/dev/kvm is absent: the certification guests run on KVM (try `hvcert probe`)"
        );
    }
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("creating {}", opts.out.display()))?;
    let guest = guest::guest_path(opts.guest.as_deref(), &opts.out)
        .with_context(|| format!("writing the guest kernel into {}", opts.out.display()))?;
    if !guest.is_file() {
        anyhow::bail!("guest kernel {} not found", guest.display());
    }
    let started = reports::date::now_rfc3339();
    // The host's facts go into the run before any guest boots.
    let host = if opts.probe_host {
        let t = Instant::now();
        let facts = probe::probe_live(&probe::ProbeOptions::default());
        writeln!(
            progress,
            "hvcert certify: host probed in {} ms",
            t.elapsed().as_millis()
        )?;
        Some(serde_json::to_value(&facts).context("serializing the probe report")?)
    } else {
        None
    };
    writeln!(
        progress,
        "hvcert certify: {} VMs from {} profile(s), {workers} at a time, seed {seed}",
        jobs.len(),
        profiles.len()
    )?;
    let exec = vm::HypervisorExecutor::new(guest.clone());
    let t0 = Instant::now();
    let mut results = runner::run_all(&exec, &jobs, workers, progress, bar);
    let wall = t0.elapsed();
    runner::write_logs(&opts.out, &mut results)?;

    let suites: Vec<SuiteRecord> = profiles.iter().map(|p| suite_record(p, &results)).collect();
    let record = RunRecord {
        schema: record::SCHEMA.into(),
        hvcert_version: build_info::VERSION.into(),
        git_revision: build_info::GIT_REVISION.into(),
        started,
        command_line: opts.command_line.clone(),
        seed,
        jobs: workers,
        guest_elf: guest.display().to_string(),
        guest_elf_sha256: record::sha256_file(&guest),
        host,
        wall_ms: wall.as_millis() as u64,
        ring0_share: record::ring0_share(&suites),
        summary: record::summarize(&suites),
        suites,
    };
    let run_json = opts.out.join("run.json");
    std::fs::write(&run_json, serde_json::to_vec_pretty(&record)?)
        .with_context(|| format!("writing {}", run_json.display()))?;
    let report_path = opts.out.join("report.json");
    reports::save(&record::to_report(&record), &report_path)
        .with_context(|| format!("writing {}", report_path.display()))?;
    Ok(Finished {
        record,
        report_path,
        wall,
    })
}

/// One profile's part of the record: the profile and its results, in job order.
fn suite_record(p: &LoadedProfile, results: &[runner::CaseResult]) -> SuiteRecord {
    let pr = &p.profile;
    SuiteRecord {
        profile: pr.name.clone(),
        description: pr.description.clone(),
        profile_path: p.path.display().to_string(),
        profile_sha256: p.sha256.clone(),
        interface: pr.interface,
        guest_os: pr.guest_os.name.clone(),
        guest_os_id: pr
            .interface
            .has_hyperv()
            .then(|| pr.guest_os_id().map(|id| format!("{id:#018x}")).ok())
            .flatten(),
        vcpus: pr.vcpus,
        memory_mib: pr.memory_mib,
        cases: results
            .iter()
            .filter(|r| r.profile == pr.name)
            .cloned()
            .collect(),
    }
}
