//! A certification run from start to finish: select the profiles, check that this host
//! can run VMs, boot every case in its own VM (in parallel), classify the outcomes, and
//! write the journal (journal.jsonl, as cases finish), the run record (run.json), the
//! report (report.json) and the console logs into the output directory; or resume a run
//! from its journal.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::profile::{self, LoadedProfile};
use crate::record::{self, RunRecord, SuiteRecord};
use crate::{build_info, guest, journal, runner, vm};

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
/// output directory, journal); case failures are in the record. Every finished case is
/// journaled in OUT/journal.jsonl ([`journal`]) so that [`resume`] can finish the run.
pub fn run(
    opts: &Options,
    progress: &mut (dyn Write + Send),
    bar: bool,
) -> anyhow::Result<Finished> {
    run_inner(opts, None, progress, bar)
}

/// Finishes the run whose journal is in `dir`: reruns only the cases that did not finish,
/// with the first invocation's options (`jobs` overrides its VM count), and writes the
/// record and report a run without interruption would have. Refused when this binary,
/// the profiles, the guest or the case selection differ from the journal's.
pub fn resume(
    dir: &Path,
    jobs: Option<usize>,
    progress: &mut (dyn Write + Send),
    bar: bool,
) -> anyhow::Result<Finished> {
    let loaded = journal::load(&dir.join(journal::FILE))?;
    let o = &loaded.head.options;
    let opts = Options {
        profiles: o.profiles.clone(),
        cases: o.cases.clone(),
        jobs: Some(jobs.unwrap_or(o.jobs)),
        out: dir.to_path_buf(),
        seed: Some(loaded.head.identity.seed),
        profiles_dir: o.profiles_dir.clone(),
        guest: o.guest.clone(),
        probe_host: o.probe_host,
        command_line: o.command_line.clone(),
    };
    run_inner(&opts, Some(loaded), progress, bar)
}

/// The device the pre-run KVM check opens: HVCERT_KVM_DEVICE when set (tests point it at
/// a device that is not KVM), else /dev/kvm. The VMs themselves always use /dev/kvm.
pub fn kvm_device() -> PathBuf {
    std::env::var_os("HVCERT_KVM_DEVICE")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from("/dev/kvm"), PathBuf::from)
}

/// Checks once, before any case, that this host can run a VM (the probe's KVM check:
/// open the device, KVM_CREATE_VM, run a micro-guest). An environment that cannot run VMs
/// is not a certification result: the error says why, with the probe's remedy.
///
/// Returns the check, so that the host probe that follows can reuse it instead of booting
/// its micro-guest a second time.
pub fn check_kvm(dev: &Path) -> anyhow::Result<probe::raw::KvmCheck> {
    let c = probe::kvm_check::run(dev);
    if c.guest_ran {
        return Ok(c);
    }
    anyhow::bail!(
        "this host cannot run VMs ({}): {}; no case was run and no report written",
        c.error.as_deref().unwrap_or("the KVM check failed"),
        probe::verdict::KVM_UNAVAILABLE_REMEDY
    )
}

fn run_inner(
    opts: &Options,
    resumed: Option<journal::Loaded>,
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
    // Before anything is written: no VM, no run.
    let kvm_dev = kvm_device();
    let kvm = check_kvm(&kvm_dev)?;
    // The probe's own KVM check is on /dev/kvm: reuse this one only when it was that device.
    let kvm = (kvm_dev == Path::new("/dev/kvm")).then_some(kvm);
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("creating {}", opts.out.display()))?;
    let guest = guest::guest_path(opts.guest.as_deref(), &opts.out)
        .with_context(|| format!("writing the guest kernel into {}", opts.out.display()))?;
    if !guest.is_file() {
        anyhow::bail!("guest kernel {} not found", guest.display());
    }
    let guest_elf_sha256 = record::sha256_file(&guest);
    let identity = journal::Identity {
        hvcert_version: build_info::VERSION.into(),
        git_revision: build_info::GIT_REVISION.into(),
        profiles: profiles
            .iter()
            .map(|p| journal::ProfileId {
                name: p.profile.name.clone(),
                sha256: p.sha256.clone(),
            })
            .collect(),
        guest_elf_sha256: guest_elf_sha256.clone(),
        seed,
        cases: jobs
            .iter()
            .map(|j| format!("{}/{}", j.profile.profile.name, j.case.id))
            .collect(),
    };
    let (started, host, journal, mut done) = match resumed {
        Some(loaded) => {
            let diffs = journal::differences(&loaded.head.identity, &identity);
            if !diffs.is_empty() {
                anyhow::bail!(
                    "cannot resume {}: not the same run ({})",
                    opts.out.display(),
                    diffs.join("; ")
                );
            }
            let path = opts.out.join(journal::FILE);
            let j = journal::Journal::reopen(&path, loaded.valid_len)?;
            // A finished case whose log is gone reruns (its report would lack the log).
            let mut done = Vec::new();
            for mut c in loaded.cases {
                // Each case line must be a case of this run, booted as this run boots it.
                let Some(job) = jobs
                    .iter()
                    .find(|j| j.profile.profile.name == c.profile && j.case.id == c.id)
                else {
                    anyhow::bail!(
                        "cannot resume {}: the journal has case {}/{}, which is not in the run",
                        opts.out.display(),
                        c.profile,
                        c.id
                    );
                };
                if c.cmdline != job.cmdline {
                    anyhow::bail!(
                        "cannot resume {}: case {}/{} ran with command line {:?}, the run's \
                         head gives {:?}",
                        opts.out.display(),
                        c.profile,
                        c.id,
                        c.cmdline,
                        job.cmdline
                    );
                }
                match &c.log_file {
                    Some(rel) => match std::fs::read(opts.out.join(rel)) {
                        Ok(bytes) => c.console = bytes,
                        Err(_) => continue,
                    },
                    None if c.outcome != reports::Outcome::NotRun => continue,
                    None => {}
                }
                done.push(c);
            }
            writeln!(
                progress,
                "hvcert certify: resuming {}: {} of {} cases finished{}",
                opts.out.display(),
                done.len(),
                jobs.len(),
                if loaded.dropped_tail {
                    " (a half-written journal line was dropped)"
                } else {
                    ""
                }
            )?;
            (loaded.head.started, loaded.head.host, j, done)
        }
        None => {
            let started = reports::date::now_rfc3339();
            // The host's facts go into the run before any guest boots.
            let host = if opts.probe_host {
                let t = Instant::now();
                let facts = probe::probe_live(&probe::ProbeOptions {
                    kvm_result: kvm.clone(),
                    ..Default::default()
                });
                writeln!(
                    progress,
                    "hvcert certify: host probed in {} ms",
                    t.elapsed().as_millis()
                )?;
                Some(serde_json::to_value(&facts).context("serializing the probe report")?)
            } else {
                None
            };
            let head = journal::Head {
                schema: journal::SCHEMA.into(),
                identity: identity.clone(),
                options: journal::RunOptions {
                    profiles: opts.profiles.clone(),
                    cases: opts.cases.clone(),
                    profiles_dir: opts.profiles_dir.clone(),
                    guest: opts.guest.clone(),
                    jobs: workers,
                    probe_host: opts.probe_host,
                    command_line: opts.command_line.clone(),
                },
                started: started.clone(),
                host: host.clone(),
            };
            // A report of an earlier run in this directory is not this run's.
            for stale in ["run.json", "report.json"] {
                let _ = std::fs::remove_file(opts.out.join(stale));
            }
            let j = journal::Journal::create(&opts.out, &head)?;
            (started, host, j, Vec::new())
        }
    };
    let todo: Vec<runner::Job> = jobs
        .iter()
        .filter(|j| {
            !done
                .iter()
                .any(|c| c.profile == j.profile.profile.name && c.id == j.case.id)
        })
        .cloned()
        .collect();
    writeln!(
        progress,
        "hvcert certify: {} VMs from {} profile(s), {workers} at a time, seed {seed}",
        todo.len(),
        profiles.len()
    )?;
    let exec = vm::HypervisorExecutor::new(guest.clone());
    let failed: std::sync::Mutex<Option<anyhow::Error>> = std::sync::Mutex::new(None);
    let on_done = |r: &mut runner::CaseResult| {
        let saved = runner::write_log(&opts.out, r)
            .map_err(anyhow::Error::from)
            .and_then(|_| journal.append(r));
        if let (Err(e), Ok(mut f)) = (saved, failed.lock()) {
            f.get_or_insert(e);
        }
    };
    let t0 = Instant::now();
    let ran = runner::run_all_with(&exec, &todo, workers, progress, bar, &on_done);
    let wall = t0.elapsed();
    if let Some(e) = failed.into_inner().ok().flatten() {
        return Err(e.context("the run's journal or logs could not be written; no report written"));
    }
    // Disk images are kept only for failed cases; no failure, no disks/ folder.
    let _ = std::fs::remove_dir(opts.out.join("disks"));
    done.extend(ran);
    // Job order, as a run without interruption records it.
    let mut results = Vec::with_capacity(jobs.len());
    for j in &jobs {
        let i = done
            .iter()
            .position(|c| c.profile == j.profile.profile.name && c.id == j.case.id)
            .with_context(|| format!("{}/{} has no result", j.profile.profile.name, j.case.id))?;
        results.push(done.swap_remove(i));
    }

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
        guest_elf_sha256,
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
