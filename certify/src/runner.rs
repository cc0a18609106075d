//! Runs profiles x cases as independent VMs in parallel and classifies each outcome.
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hypervisor::{Interface, VmEnd};
use reports::Outcome;
use serde::{Deserialize, Serialize};

use crate::ktap;
use crate::profile::{CaseSpec, ExpectEnd, LoadedProfile};

/// One VM to boot: a case of a profile.
#[derive(Clone, Debug)]
pub struct Job {
    /// The profile the case belongs to.
    pub profile: Arc<LoadedProfile>,
    /// The case.
    pub case: CaseSpec,
    /// The guest kernel command line (profile, case, seed, vCPUs, GUEST_OS_ID).
    pub cmdline: String,
    /// The case's seed ([`derive_seed`]).
    pub seed: u64,
    /// vCPUs of the VM.
    pub vcpus: u8,
    /// Guest memory.
    pub memory_mib: u32,
    /// The hypervisor interface the VM exposes.
    pub interface: Interface,
    /// The VM's deadline.
    pub timeout: Duration,
    /// Raw image created for this VM (virtio-blk), when the case wants a disk.
    pub disk_image: Option<PathBuf>,
    /// Size of the disk image.
    pub disk_bytes: u64,
    /// A virtio-net NIC with the loopback backend.
    pub nic: bool,
    /// The disk and NIC sit on the VMBus (storvsc, netvsc) instead of virtio.
    pub vmbus: bool,
}

/// What one VM run produced.
#[derive(Clone, Debug)]
pub struct RawRun {
    /// How the VM ended.
    pub end: VmEnd,
    /// Everything the guest wrote to its console.
    pub console: Vec<u8>,
    /// Hypercalls the hypervisor served, by name.
    pub hypercalls: BTreeMap<String, u64>,
    /// The Xen hypercalls in order, when traced.
    pub xen_trace: Vec<String>,
    /// The hypervisor's measure of the guest's ring-0 share, when it has one.
    pub ring0_share: Option<f64>,
}

/// Boots a job's VM. The KVM one is `super::vm::HypervisorExecutor`; tests use fakes.
pub trait Executor: Sync {
    /// Boots the job's VM and returns what it did; an error when the VM could not be run.
    fn run(&self, job: &Job) -> anyhow::Result<RawRun>;
}

/// The result of one case, as run.json records it (and the run's journal, which reads it
/// back on `--resume`; the console is then read back from `log_file`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CaseResult {
    /// The case's profile.
    pub profile: String,
    /// The case id.
    pub id: String,
    /// How the case ended ([`classify`]).
    pub outcome: Outcome,
    /// A failure of it fails certification.
    pub blocker: bool,
    /// Wall time of the VM (including creating its disk).
    pub duration_ms: u64,
    /// Why the case ended as it did.
    pub reasons: Vec<String>,
    /// The command line the guest was booted with.
    pub cmdline: String,
    /// The command line as the guest reported it (with what the hypervisor appended).
    pub guest_cmdline: Option<String>,
    /// The case's seed.
    pub seed: u64,
    /// How the VM ended (absent when it did not run).
    #[serde(
        serialize_with = "serialize_vm_end",
        deserialize_with = "deserialize_vm_end"
    )]
    pub vm_end: Option<VmEnd>,
    /// Hypercalls served, by name.
    pub hypercalls: BTreeMap<String, u64>,
    /// The Xen hypercalls in order, when traced.
    pub xen_trace: Vec<String>,
    /// The VM's ring-0 share: the hypervisor's, else the guest's own ([`GuestTiming`]).
    pub ring0_share: Option<f64>,
    /// The guest's account of its time, when it gave one.
    pub guest_timing: Option<GuestTiming>,
    /// The guest's `# ...` lines for this case.
    pub diagnostics: Vec<String>,
    /// Console log file, relative to the output directory.
    pub log_file: Option<String>,
    /// The last lines of the console.
    pub log_excerpt: String,
    /// The whole console (written to `log_file`, not to run.json).
    #[serde(skip)]
    pub console: Vec<u8>,
}

/// A crash's reason with the first line of the vCPU's register dump (where it was), or the
/// reason alone when there is no dump (as when read back by [`deserialize_vm_end`]).
fn crash_reason(reason: &str, regs: &str) -> String {
    match regs.lines().next().filter(|l| !l.is_empty()) {
        Some(first) => format!("{reason}; {first}"),
        None => reason.to_string(),
    }
}

/// run.json's `vm_end`: `"shutdown"`, `"reset"`, `"timeout"`, `{"status": N}` or
/// `{"crash": {"reason": "..."}}` (the reason with the first line of the register dump).
fn serialize_vm_end<S: serde::Serializer>(end: &Option<VmEnd>, s: S) -> Result<S::Ok, S::Error> {
    let value = end.as_ref().map(|e| match e {
        VmEnd::Status(n) => serde_json::json!({ "status": n }),
        VmEnd::Shutdown => serde_json::json!("shutdown"),
        VmEnd::Reset => serde_json::json!("reset"),
        VmEnd::Timeout => serde_json::json!("timeout"),
        VmEnd::Crash { reason, regs } => {
            serde_json::json!({ "crash": { "reason": crash_reason(reason, regs) } })
        }
    });
    value.serialize(s)
}

/// The inverse of [`serialize_vm_end`]: a crash comes back with its serialized reason
/// (reason and first register line) and no dump, so it serializes to the same JSON.
fn deserialize_vm_end<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<VmEnd>, D::Error> {
    use serde::de::Error;
    let v = serde_json::Value::deserialize(d)?;
    let end = match &v {
        serde_json::Value::Null => return Ok(None),
        serde_json::Value::String(s) if s == "shutdown" => VmEnd::Shutdown,
        serde_json::Value::String(s) if s == "reset" => VmEnd::Reset,
        serde_json::Value::String(s) if s == "timeout" => VmEnd::Timeout,
        _ => {
            if let Some(n) = v.get("status").and_then(|n| n.as_u64()) {
                VmEnd::Status(u32::try_from(n).map_err(D::Error::custom)?)
            } else if let Some(r) = v.pointer("/crash/reason").and_then(|r| r.as_str()) {
                VmEnd::Crash {
                    reason: r.to_string(),
                    regs: String::new(),
                }
            } else {
                return Err(D::Error::custom(format!("not a VM end: {v}")));
            }
        }
    };
    Ok(Some(end))
}

/// Decide a case's outcome from what the VM did. Pure; unit-tested below.
pub fn classify(case: &CaseSpec, raw: &RawRun) -> (Outcome, Vec<String>, Vec<String>) {
    let text = String::from_utf8_lossy(&raw.console);
    let doc = ktap::parse(&text);
    let result = doc.result(&case.id);
    let diagnostics = result.map(|r| r.diagnostics.clone()).unwrap_or_default();
    let mut reasons = Vec::new();
    if case.expect_end == ExpectEnd::Crash {
        // The guest's last words must be the announcement, and the hypervisor must have
        // ended the VM as a crash (anything else, a timeout included, is a failure).
        return match &raw.end {
            VmEnd::Crash { reason, regs }
                if result.is_none()
                    && case
                        .crash_reason_contains
                        .as_ref()
                        .is_none_or(|want| reason.contains(want.as_str())) =>
            {
                reasons.push(format!(
                    "VM ended as a crash, as the guest asked: {}",
                    crash_reason(reason, regs)
                ));
                finish(case, &text, reasons, diagnostics)
            }
            other => {
                reasons.push(format!(
                    "expected the VM to end as a crash, it ended with {other}"
                ));
                if let Some(why) = result.and_then(|r| r.reason.clone()) {
                    reasons.push(why);
                }
                (Outcome::Fail, reasons, diagnostics)
            }
        };
    }
    match &raw.end {
        VmEnd::Timeout => {
            reasons.push(match result {
                Some(r) => format!(
                    "VM timed out after the guest reported {}",
                    if r.ok { "ok" } else { "not ok" }
                ),
                None => "VM timed out before the guest reported the case".into(),
            });
            return (Outcome::Timeout, reasons, diagnostics);
        }
        VmEnd::Crash { reason, regs } => {
            reasons.push(format!("VM crashed: {}", crash_reason(reason, regs)));
            return (Outcome::Crash, reasons, diagnostics);
        }
        _ => {}
    }
    if doc.version.is_none() {
        reasons.push("no KTAP header on the console".into());
    }
    if matches!(case.expect_end, ExpectEnd::Shutdown | ExpectEnd::Reset) {
        let want = if case.expect_end == ExpectEnd::Reset {
            VmEnd::Reset
        } else {
            VmEnd::Shutdown
        };
        if let Some(r) = result.filter(|r| !r.ok) {
            reasons.push(
                r.reason
                    .clone()
                    .unwrap_or_else(|| "guest reported not ok".into()),
            );
            return (Outcome::Fail, reasons, diagnostics);
        }
        if raw.end != want {
            reasons.push(format!(
                "expected the VM to end by {want}, it ended with {}",
                raw.end
            ));
            return (Outcome::Fail, reasons, diagnostics);
        }
        return finish(case, &text, reasons, diagnostics);
    }
    let Some(r) = result else {
        reasons.push(format!(
            "no KTAP result for {} (VM ended with {})",
            case.id, raw.end
        ));
        return (Outcome::Crash, reasons, diagnostics);
    };
    if !r.ok {
        let why = r
            .reason
            .clone()
            .unwrap_or_else(|| "guest reported not ok".into());
        let outcome = if why.starts_with("exception") || why.starts_with("panic") {
            Outcome::Crash
        } else {
            Outcome::Fail
        };
        reasons.push(why);
        return (outcome, reasons, diagnostics);
    }
    match &raw.end {
        VmEnd::Status(0) => {}
        other => {
            reasons.push(format!("guest reported ok but the VM ended with {other}"));
            return (Outcome::Fail, reasons, diagnostics);
        }
    }
    if let Some(ktap::Directive::Skip(why)) = &r.directive {
        reasons.push(why.clone());
        return (Outcome::Skip, reasons, diagnostics);
    }
    finish(case, &text, reasons, diagnostics)
}

fn finish(
    case: &CaseSpec,
    text: &str,
    mut reasons: Vec<String>,
    diagnostics: Vec<String>,
) -> (Outcome, Vec<String>, Vec<String>) {
    if let Some(want) = &case.console_contains {
        if !text.contains(want.as_str()) {
            reasons.push(format!("console lacks {want:?}"));
            return (Outcome::Fail, reasons, diagnostics);
        }
    }
    (Outcome::Pass, reasons, diagnostics)
}

/// The guest's own account of its time, in TSC cycles (`# timing: boot_ring0_tsc=A
/// gate_tsc=B gate_calls=C total_tsc=D`): ring 0 = boot (A) + gate calls (B), out of its
/// whole life (D). B includes the VMM exits made from ring 0 (hypercalls, MSRs), so it is
/// an upper bound on ring-0 execution proper.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestTiming {
    /// Guest ring-0 cycles: boot plus gate calls.
    pub ring0_tsc: u64,
    /// All guest cycles.
    pub total_tsc: u64,
    /// Gate calls made (ring 3 to ring 0).
    pub gate_calls: u64,
}

/// The guest's last `# timing:` line, when complete and consistent.
pub fn guest_timing(console: &[u8]) -> Option<GuestTiming> {
    let text = String::from_utf8_lossy(console);
    let line = text
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("# timing:"))?;
    let field = |name: &str| -> Option<u64> {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))?
            .parse()
            .ok()
    };
    let ring0_tsc = field("boot_ring0_tsc")?.checked_add(field("gate_tsc")?)?;
    let total_tsc = field("total_tsc")?;
    (total_tsc > 0 && ring0_tsc <= total_tsc).then_some(GuestTiming {
        ring0_tsc,
        total_tsc,
        gate_calls: field("gate_calls")?,
    })
}

impl GuestTiming {
    /// Share of the guest's life in ring 0.
    pub fn share(self) -> f64 {
        self.ring0_tsc as f64 / self.total_tsc as f64
    }
}

/// Last lines of the console text, for reports.
pub fn excerpt(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn run_one(exec: &dyn Executor, job: &Job) -> CaseResult {
    let mut res = CaseResult {
        profile: job.profile.profile.name.clone(),
        id: job.case.id.clone(),
        outcome: Outcome::NotRun,
        blocker: job.case.blocker,
        duration_ms: 0,
        reasons: Vec::new(),
        cmdline: job.cmdline.clone(),
        guest_cmdline: None,
        seed: job.seed,
        vm_end: None,
        hypercalls: BTreeMap::new(),
        xen_trace: Vec::new(),
        ring0_share: None,
        guest_timing: None,
        diagnostics: Vec::new(),
        log_file: None,
        log_excerpt: String::new(),
        console: Vec::new(),
    };
    if let Some(why) = &job.case.not_run {
        res.reasons.push(why.clone());
        return res;
    }
    let t0 = Instant::now();
    if let Some(img) = &job.disk_image {
        let made = img
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|_| std::fs::File::create(img))
            .and_then(|f| f.set_len(job.disk_bytes));
        if let Err(e) = made {
            res.outcome = Outcome::Crash;
            res.reasons.push(format!(
                "could not create the disk image {}: {e}",
                img.display()
            ));
            return res;
        }
    }
    match exec.run(job) {
        Ok(raw) => {
            let (mut outcome, mut reasons, diagnostics) = classify(&job.case, &raw);
            let text = String::from_utf8_lossy(&raw.console);
            if outcome == Outcome::Pass && job.case.check_image {
                let checked = match &job.disk_image {
                    Some(img) => crate::storage::verify_image(img, &text, job.seed)
                        .map_err(|e| format!("host check of the image: {e}")),
                    None => Err("no disk image to check".into()),
                };
                match checked {
                    Ok(n) => reasons.push(format!("image checked on the host: {n} write(s) found")),
                    Err(why) => {
                        outcome = Outcome::Fail;
                        reasons.push(why);
                    }
                }
            }
            res.outcome = outcome;
            res.reasons = reasons;
            res.diagnostics = diagnostics;
            // Keep the image of a failed case for inspection; drop the others.
            if outcome == Outcome::Pass {
                if let Some(img) = &job.disk_image {
                    let _ = std::fs::remove_file(img);
                }
            }
            res.guest_cmdline = text
                .lines()
                .find_map(|l| Some(l.split_once(" cmdline: ")?.1.trim().to_string()));
            res.log_excerpt = excerpt(&text, 12);
            drop(text);
            res.vm_end = Some(raw.end.clone());
            res.hypercalls = raw.hypercalls;
            res.xen_trace = raw.xen_trace;
            res.guest_timing = guest_timing(&raw.console);
            res.ring0_share = raw.ring0_share.or(res.guest_timing.map(GuestTiming::share));
            res.console = raw.console;
        }
        Err(e) => {
            res.outcome = Outcome::Crash;
            res.reasons.push(format!("could not run the VM: {e:#}"));
        }
    }
    res.duration_ms = t0.elapsed().as_millis() as u64;
    res
}

/// One progress update. With `bar` (a terminal), a bar redrawn in place, and a full line
/// only for cases that did not pass; otherwise one line per case (logs, CI).
pub fn progress_text(n: usize, total: usize, r: &CaseResult, bar: bool) -> String {
    let why = r
        .reasons
        .first()
        .map(|w| format!(" — {w}"))
        .unwrap_or_default();
    let line = format!(
        "[{n:>3}/{total}] {:<7} {}/{} ({} ms){why}",
        r.outcome.as_str(),
        r.profile,
        r.id,
        r.duration_ms
    );
    if !bar {
        return line + "\n";
    }
    const WIDTH: usize = 30;
    let filled = WIDTH * n / total.max(1);
    let mut out = String::from("\r\x1b[K");
    if !matches!(r.outcome, Outcome::Pass | Outcome::Skip) {
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str(&format!(
        "[{}{}] {n}/{total} {}/{}",
        "#".repeat(filled),
        "-".repeat(WIDTH - filled),
        r.profile,
        r.id
    ));
    if n == total {
        out.push('\n');
    }
    out
}

/// Run every job on `workers` threads; results come back in job order. Progress goes to
/// `progress` (stderr in the CLI), one update per finished case ([`progress_text`]).
pub fn run_all(
    exec: &dyn Executor,
    jobs: &[Job],
    workers: usize,
    progress: &mut (dyn Write + Send),
    bar: bool,
) -> Vec<CaseResult> {
    run_all_with(exec, jobs, workers, progress, bar, &|_| {})
}

/// [`run_all`], calling `on_done` with each finished case before its progress update (the
/// suite writes the case's log and journals it there, so a case is durable before the
/// console says it finished).
pub fn run_all_with(
    exec: &dyn Executor,
    jobs: &[Job],
    workers: usize,
    progress: &mut (dyn Write + Send),
    bar: bool,
    on_done: &(dyn Fn(&mut CaseResult) + Sync),
) -> Vec<CaseResult> {
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<CaseResult>>> = Mutex::new(vec![None; jobs.len()]);
    let progress = Mutex::new(progress);
    let workers = workers.clamp(1, jobs.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(job) = jobs.get(i) else { break };
                let mut r = run_one(exec, job);
                on_done(&mut r);
                let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                if let Ok(mut p) = progress.lock() {
                    let _ = p.write_all(progress_text(n, jobs.len(), &r, bar).as_bytes());
                    let _ = p.flush();
                }
                if let Ok(mut all) = results.lock() {
                    all[i] = Some(r);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect()
}

/// SplitMix64: per-case seeds derived from the run seed, profile and case.
pub fn derive_seed(run_seed: u64, profile: &str, case: &str) -> u64 {
    let mut h = run_seed ^ 0xcbf2_9ce4_8422_2325;
    for b in profile.bytes().chain([b'/']).chain(case.bytes()) {
        h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
    }
    h = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The jobs of one profile; disk images go under `work_dir/disks/`.
pub fn jobs_for(
    profile: Arc<LoadedProfile>,
    run_seed: u64,
    only_cases: &[String],
    work_dir: &Path,
) -> anyhow::Result<Vec<Job>> {
    let p = &profile.profile;
    let id = p.guest_os_id()?;
    let mut out = Vec::new();
    for c in &p.cases {
        if !only_cases.is_empty() && !only_cases.contains(&c.id) {
            continue;
        }
        let seed = derive_seed(run_seed, &p.name, &c.id);
        let vcpus = c.vcpus.unwrap_or(p.vcpus);
        let mut cmdline = format!(
            "profile={} cases={} seed={seed:#x} vcpus={vcpus}",
            p.name, c.id
        );
        if p.interface.has_hyperv() {
            cmdline.push_str(&format!(" guest_os_id={id:#x}"));
        }
        out.push(Job {
            profile: profile.clone(),
            case: c.clone(),
            cmdline,
            seed,
            vcpus,
            memory_mib: p.memory_mib,
            interface: p.interface,
            timeout: Duration::from_secs(p.timeout_secs),
            disk_image: c.disk.then(|| {
                work_dir
                    .join("disks")
                    .join(format!("{}-{}.img", p.name, c.id))
            }),
            disk_bytes: u64::from(p.devices.disk_mib) << 20,
            nic: c.nic,
            vmbus: c.vmbus,
        });
    }
    Ok(out)
}

/// Write each case's console to OUT/logs/PROFILE/CASE.log and record the relative path.
pub fn write_logs(out: &Path, results: &mut [CaseResult]) -> anyhow::Result<()> {
    for r in results.iter_mut() {
        write_log(out, r)?;
    }
    Ok(())
}

/// Write one case's console to OUT/logs/PROFILE/CASE.log (flushed to the disk) and record
/// the relative path; a case that did not run has no log.
pub fn write_log(out: &Path, r: &mut CaseResult) -> std::io::Result<()> {
    if r.outcome == Outcome::NotRun {
        return Ok(());
    }
    let rel: PathBuf = ["logs", r.profile.as_str(), &format!("{}.log", r.id)]
        .iter()
        .collect();
    let path = out.join(&rel);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::File::create(&path)?;
    f.write_all(&r.console)?;
    f.sync_data()?;
    r.log_file = Some(rel.to_string_lossy().into_owned());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every way a VM can end survives run.json and the journal (`--resume` reads it back):
    /// `"reset"` (Hyper-V RESET MSR) once did not, and a journal with `hv_msr_reset` in it
    /// could not be resumed.
    #[test]
    fn every_vm_end_round_trips_through_json() {
        #[derive(Serialize, Deserialize)]
        struct W {
            #[serde(
                serialize_with = "serialize_vm_end",
                deserialize_with = "deserialize_vm_end"
            )]
            e: Option<VmEnd>,
        }
        let ends = [
            None,
            Some(VmEnd::Status(7)),
            Some(VmEnd::Shutdown),
            Some(VmEnd::Reset),
            Some(VmEnd::Timeout),
            Some(VmEnd::Crash {
                reason: "triple fault".into(),
                regs: String::new(),
            }),
        ];
        for e in ends {
            let json = serde_json::to_string(&W { e: e.clone() }).unwrap();
            let back: W = serde_json::from_str(&json)
                .unwrap_or_else(|err| panic!("{json} does not read back: {err}"));
            assert_eq!(serde_json::to_string(&back).unwrap(), json);
            assert_eq!(format!("{:?}", back.e), format!("{e:?}"));
        }
    }

    fn case(id: &str) -> CaseSpec {
        CaseSpec {
            id: id.into(),
            blocker: true,
            expect_end: ExpectEnd::Status,
            console_contains: None,
            crash_reason_contains: None,
            not_run: None,
            vcpus: None,
            disk: false,
            check_image: false,
            nic: false,
            vmbus: false,
            hv_clear: Vec::new(),
            reference_tsc_reliable: None,
        }
    }

    fn raw(console: &str, end: VmEnd) -> RawRun {
        RawRun {
            end,
            console: console.as_bytes().to_vec(),
            hypercalls: BTreeMap::new(),
            xen_trace: Vec::new(),
            ring0_share: None,
        }
    }

    #[test]
    fn classifies_every_outcome() {
        let c = case("hv_cpuid");
        let ok = "KTAP version 1\n1..1\n# max=0x40000005\nok 1 hv_cpuid\n";
        let (o, r, d) = classify(&c, &raw(ok, VmEnd::Status(0)));
        assert_eq!(
            (o, r.len(), d),
            (Outcome::Pass, 0, vec!["max=0x40000005".to_string()])
        );
        let (o, r, _) = classify(&c, &raw(ok, VmEnd::Status(1)));
        assert_eq!(o, Outcome::Fail, "{r:?}");
        let bad = "KTAP version 1\n1..1\nnot ok 1 hv_cpuid # status 5 (want 2)\n";
        let (o, r, _) = classify(&c, &raw(bad, VmEnd::Status(1)));
        assert_eq!(
            (o, r),
            (Outcome::Fail, vec!["status 5 (want 2)".to_string()])
        );
        let exc = "KTAP version 1\n1..1\nnot ok 1 hv_cpuid # exception #GP vector=13\n";
        assert_eq!(classify(&c, &raw(exc, VmEnd::Status(3))).0, Outcome::Crash);
        let skip = "KTAP version 1\n1..1\nok 1 hv_cpuid # SKIP no APs\n";
        assert_eq!(classify(&c, &raw(skip, VmEnd::Status(0))).0, Outcome::Skip);
        assert_eq!(
            classify(&c, &raw("KTAP version 1\n1..1\n", VmEnd::Status(0))).0,
            Outcome::Crash
        );
        assert_eq!(classify(&c, &raw("", VmEnd::Timeout)).0, Outcome::Timeout);
        let crash = VmEnd::Crash {
            reason: "triple fault".into(),
            regs: String::new(),
        };
        assert_eq!(classify(&c, &raw(ok, crash)).0, Outcome::Crash);
    }

    #[test]
    fn shutdown_and_console_checks() {
        let mut c = case("xen_shutdown");
        c.expect_end = ExpectEnd::Shutdown;
        let log = "KTAP version 1\n1..1\n# calling SCHEDOP_shutdown(poweroff)\n";
        assert_eq!(classify(&c, &raw(log, VmEnd::Shutdown)).0, Outcome::Pass);
        assert_eq!(classify(&c, &raw(log, VmEnd::Status(0))).0, Outcome::Fail);
        let returned = format!("{log}not ok 1 xen_shutdown # SCHEDOP_shutdown returned -38\n");
        assert_eq!(
            classify(&c, &raw(&returned, VmEnd::Status(1))).0,
            Outcome::Fail
        );

        let mut c = case("xen_shutdown_crash");
        c.expect_end = ExpectEnd::Crash;
        let crashed = VmEnd::Crash {
            reason: "guest reported a crash".into(),
            regs: String::new(),
        };
        let log = "KTAP version 1\n1..1\n# calling SCHEDOP_shutdown(crash)\n";
        assert_eq!(classify(&c, &raw(log, crashed.clone())).0, Outcome::Pass);
        c.crash_reason_contains = Some("SCHEDOP_shutdown crash".into());
        assert_eq!(
            classify(&c, &raw(log, crashed.clone())).0,
            Outcome::Fail,
            "other crash"
        );
        let right = VmEnd::Crash {
            reason: "guest reported a crash (Xen SCHEDOP_shutdown crash)".into(),
            regs: String::new(),
        };
        assert_eq!(classify(&c, &raw(log, right)).0, Outcome::Pass);
        assert_eq!(classify(&c, &raw(log, VmEnd::Shutdown)).0, Outcome::Fail);
        assert_eq!(classify(&c, &raw(log, VmEnd::Timeout)).0, Outcome::Fail);
        let returned =
            format!("{log}not ok 1 xen_shutdown_crash # SCHEDOP_shutdown returned -22\n");
        assert_eq!(classify(&c, &raw(&returned, crashed)).0, Outcome::Fail);

        let mut c = case("xen_console_io");
        c.console_contains = Some("hvcert-xen-console-ok".into());
        let log = "KTAP version 1\n1..1\nok 1 xen_console_io\n";
        assert_eq!(classify(&c, &raw(log, VmEnd::Status(0))).0, Outcome::Fail);
        let with = format!("hvcert-xen-console-ok\n{log}");
        assert_eq!(classify(&c, &raw(&with, VmEnd::Status(0))).0, Outcome::Pass);
    }

    fn guest_ring0_share(console: &[u8]) -> Option<f64> {
        guest_timing(console).map(GuestTiming::share)
    }

    #[test]
    fn ring0_share_from_guest_timing() {
        let log = b"KTAP version 1\nok 1 x\n# timing: boot_ring0_tsc=300 gate_tsc=100 gate_calls=4 total_tsc=1000\n";
        assert_eq!(guest_ring0_share(log), Some(0.4));
        let t = guest_timing(log).unwrap();
        assert_eq!((t.ring0_tsc, t.total_tsc, t.gate_calls), (400, 1000, 4));
        assert_eq!(
            guest_ring0_share(b"# timing: boot_ring0_tsc=3 gate_tsc=1"),
            None
        );
        assert_eq!(
            guest_ring0_share(
                b"# timing: boot_ring0_tsc=3000 gate_tsc=1 gate_calls=1 total_tsc=10"
            ),
            None
        );
    }

    proptest::proptest! {
        /// Any console and any ending classify without panicking, into a definite outcome.
        #[test]
        fn classify_never_panics(console in "\\PC{0,200}", status in 0u32..5, which in 0u8..4) {
            let end = match which {
                0 => VmEnd::Status(status),
                1 => VmEnd::Shutdown,
                2 => VmEnd::Timeout,
                _ => VmEnd::Crash { reason: console.clone(), regs: String::new() },
            };
            let mut c = case("x");
            for e in [ExpectEnd::Status, ExpectEnd::Shutdown, ExpectEnd::Crash] {
                c.expect_end = e;
                let (o, _, _) = classify(&c, &raw(&console, end.clone()));
                proptest::prop_assert!(o != Outcome::NotRun);
            }
            let _ = guest_ring0_share(console.as_bytes());
        }
    }

    struct Fake;
    impl Executor for Fake {
        fn run(&self, job: &Job) -> anyhow::Result<RawRun> {
            if job.case.id == "broken" {
                anyhow::bail!("no /dev/kvm");
            }
            let text = format!("KTAP version 1\n1..1\nok 1 {}\n", job.case.id);
            Ok(raw(&text, VmEnd::Status(0)))
        }
    }

    #[test]
    fn runs_in_parallel_and_keeps_order() {
        let text = r#"
name = "p"
description = "d"
interface = "xen"
memory_mib = 64
[guest_os]
name = "x"
kernel = "2.6.16"
[[cases]]
id = "a"
[[cases]]
id = "broken"
[[cases]]
id = "c"
not_run = "later"
[[cases]]
id = "d"
"#;
        let profile = crate::profile::Profile::parse(text, Path::new("p.toml")).unwrap();
        let lp = Arc::new(LoadedProfile {
            profile,
            path: "p.toml".into(),
            sha256: String::new(),
        });
        let jobs = jobs_for(lp, 7, &[], Path::new("/nonexistent")).unwrap();
        assert!(jobs[0].cmdline.starts_with("profile=p cases=a seed=0x"));
        assert!(
            !jobs[0].cmdline.contains("guest_os_id"),
            "xen guests write no Hyper-V id"
        );
        let mut progress = Vec::new();
        let res = run_all(&Fake, &jobs, 3, &mut progress, false);
        let got: Vec<_> = res.iter().map(|r| (r.id.as_str(), r.outcome)).collect();
        assert_eq!(
            got,
            vec![
                ("a", Outcome::Pass),
                ("broken", Outcome::Crash),
                ("c", Outcome::NotRun),
                ("d", Outcome::Pass)
            ]
        );
        assert_eq!(String::from_utf8(progress).unwrap().lines().count(), 4);
        // On a terminal: a bar redrawn in place, full lines only for what didn't pass.
        let bar = progress_text(2, 4, &res[1], true);
        assert!(
            bar.starts_with("\r\x1b[K[  2/4] crash")
                && bar.contains("\n[###############---------------] 2/4"),
            "{bar:?}"
        );
        assert!(!progress_text(1, 4, &res[0], true).contains('\n'));
        assert!(progress_text(4, 4, &res[3], true).ends_with('\n'));
        assert_ne!(derive_seed(7, "p", "a"), derive_seed(7, "p", "d"));
        // Reproducible: the same run seed gives the same command lines; another doesn't.
        let again = jobs_for(jobs[0].profile.clone(), 7, &[], Path::new("/x")).unwrap();
        let other = jobs_for(jobs[0].profile.clone(), 8, &[], Path::new("/x")).unwrap();
        assert_eq!(again[0].cmdline, jobs[0].cmdline);
        assert_ne!(other[0].cmdline, jobs[0].cmdline);
        assert_eq!(derive_seed(7, "p", "a"), jobs[0].seed);
    }

    #[test]
    fn vmbus_cases_carry_the_bus_to_their_job() {
        let text = r#"
name = "v"
description = "d"
interface = "hyperv"
memory_mib = 64
[guest_os]
name = "x"
kernel = "2.6.32"
[[cases]]
id = "a"
disk = true
vmbus = true
[[cases]]
id = "b"
disk = true
"#;
        let profile = crate::profile::Profile::parse(text, Path::new("v.toml")).unwrap();
        let lp = Arc::new(LoadedProfile {
            profile,
            path: "v.toml".into(),
            sha256: String::new(),
        });
        let jobs = jobs_for(lp, 1, &[], Path::new("/x")).unwrap();
        assert!(jobs[0].vmbus && jobs[0].disk_image.is_some());
        assert!(!jobs[1].vmbus && jobs[1].disk_image.is_some());
    }
}
