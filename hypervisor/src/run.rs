//! Running a VM: [`Vm::run`] releases the vCPU threads, watches them until the guest ends
//! (the watchdog), stops and joins them, collects the [`RunOutcome`] and leaves the kernel's
//! teardown of the VM to a background thread.
//!
//! The watchdog: HLT is handled by the in-kernel LAPIC, so a guest that halts for good is
//! found by probing. The run loop kicks the vCPUs (signal) on a back-off schedule (at
//! [`PROBE_FIRST`], then every [`PROBE_FIRST_INTERVAL`] doubling to [`PROBE_MAX_INTERVAL`])
//! and asks each for its state; between probes it reads each vCPU's "blocking" statistic
//! (`src/kvm_stats.rs`) and probes at once when all are blocked. The rule is in
//! [`crate::exits`].
use crate::kvm_stats::BlockingStat;
use crate::state::{lock, Shared, ST_HALTED_NOIRQ, ST_WAIT_SIPI};
use crate::{Error, RunOutcome, Vm, VmEnd};
use kvm_ioctls::{VcpuFd, VmFd};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use vmm_sys_util::eventfd::EventFd;
use vmm_sys_util::signal::{Killable, SIGRTMIN};

/// The watchdog's first probe, after `run` starts. A vCPU's first KVM_RUN lasts ~100-150 us
/// here (the first entry's set-up); a probe (kick) during it costs ~30-50 us, so the first
/// one waits until a guest that halts at once has halted. Then every PROBE_FIRST_INTERVAL,
/// doubling.
pub const PROBE_FIRST: Duration = Duration::from_micros(200);
/// The first gap between two probes (doubling up to [`PROBE_MAX_INTERVAL`]).
pub const PROBE_FIRST_INTERVAL: Duration = Duration::from_micros(100);
/// Gap between two reads of the vCPUs' "blocking" statistics during the first STATS_FAST_FOR
/// of a run (then doubling up to PROBE_MAX_INTERVAL): one pread per vCPU, no kick.
const STATS_INTERVAL: Duration = Duration::from_micros(25);
/// See [`STATS_INTERVAL`].
const STATS_FAST_FOR: Duration = Duration::from_millis(1);
/// Longest gap between two watchdog probes (each costs every vCPU one exit, ~20 us here):
/// bounds the delay in noticing a dead guest and gives ~100 privilege-level samples a second.
pub const PROBE_MAX_INTERVAL: Duration = Duration::from_millis(10);
/// How long a probe waits for the vCPUs' answers.
const PROBE_ANSWER_WAIT: Duration = Duration::from_millis(1);

type Handles = Vec<JoinHandle<Option<VcpuFd>>>;

impl Vm {
    /// Runs the guest until it ends; the console gets the serial output. Every vCPU thread is
    /// joined before this returns.
    pub fn run(mut self, console: Box<dyn Write + Send>) -> Result<RunOutcome, Error> {
        let start = Instant::now();
        *lock(&self.shared.stats.run_start) = Some(start);
        // The devices write into a bounded buffer; this thread writes it to `console`
        // (see `crate::console`), so a blocked writer never blocks a vCPU.
        let writer = self.shared.devices.console.start(console);
        let handles = std::mem::take(&mut self.threads.handles);
        self.threads
            .gate
            .update(|s| s.go = Some(self.shared.clone()));
        // A timeout too large for the clock (e.g. Duration::MAX) means no deadline.
        let deadline = (!self.timeout.is_zero())
            .then(|| start.checked_add(self.timeout))
            .flatten();
        // Short waits: the default 50 us timer slack would stretch each one (restored below).
        let slack = timer_slack(Some(1_000));
        Watchdog::new(start, handles.len()).watch(&self.shared, &self.blocking, &handles, deadline);

        self.shared.mark(usize::MAX, "end_seen");
        // Stop first, then release vCPUs waiting for console room: a vCPU so released sees
        // `stop` before it could enter the guest (and write to the console) again.
        self.shared.control.stop.store(true, Ordering::SeqCst);
        writer.ending();
        timer_slack(slack);
        stop_vcpus(&self.shared, &handles);
        let vcpus = join_vcpus(&self.shared, handles);
        self.threads.gate.update(|s| s.go = None);
        self.shared.mark(usize::MAX, "joined");
        let stats = &self.shared.stats;
        tracing::debug!(timeline = %lock(&stats.timeline), "VM run (us since run start)");
        // Write out what the guest printed and drop the caller's writer, unless it is
        // blocked: then not past the deadline (+ a grace), see `crate::console`.
        writer.finish(deadline);
        let outcome = outcome(&self.shared, start);
        // (The stats fds hold references on the VM too.)
        teardown(
            self.vm,
            (vcpus, self.blocking),
            self.shared,
            self.serial_evt,
        );
        Ok(outcome)
    }
}

/// The run loop's schedule: when to probe the vCPUs and when to read their statistics.
struct Watchdog {
    start: Instant,
    interval: Duration,
    probe_at: Instant,
    dead_rounds: u32,
    needed_rounds: u32,
    stats_interval: Duration,
    stats_at: Instant,
}

impl Watchdog {
    fn new(start: Instant, vcpus: usize) -> Self {
        Watchdog {
            start,
            interval: PROBE_FIRST_INTERVAL,
            probe_at: start + PROBE_FIRST,
            dead_rounds: 0,
            needed_rounds: if vcpus == 1 { 1 } else { 2 },
            stats_interval: STATS_INTERVAL,
            stats_at: start + STATS_INTERVAL,
        }
    }

    /// Waits until the VM ends: the guest's or a vCPU's doing, the deadline, or every vCPU
    /// found dead by the probes.
    fn watch(
        &mut self,
        shared: &Shared,
        blocking: &[BlockingStat],
        handles: &Handles,
        deadline: Option<Instant>,
    ) {
        let c = &shared.control;
        loop {
            let now = Instant::now();
            let guard = lock(&c.end);
            if guard.is_some() {
                break;
            }
            let mut wake = deadline.map_or(self.probe_at, |d| d.min(self.probe_at));
            if !blocking.is_empty() {
                wake = wake.min(self.stats_at);
            }
            let wait = wake.saturating_duration_since(now);
            let (guard, _) = c
                .end_cv
                .wait_timeout(guard, wait)
                .unwrap_or_else(|e| e.into_inner());
            if guard.is_some() {
                break;
            }
            drop(guard);
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                shared.finish(VmEnd::Timeout);
                break;
            }
            if !blocking.is_empty() && now >= self.stats_at {
                self.read_stats(blocking, now);
            }
            if now >= self.probe_at && self.probe(shared, handles) {
                break;
            }
        }
    }

    /// Probes at once when every vCPU is blocked in the kernel.
    fn read_stats(&mut self, blocking: &[BlockingStat], now: Instant) {
        if blocking.iter().all(|b| b.get() == Some(true)) {
            self.probe_at = now;
        }
        if now.duration_since(self.start) >= STATS_FAST_FOR {
            self.stats_interval = (self.stats_interval * 2).min(PROBE_MAX_INTERVAL);
        }
        self.stats_at = now + self.stats_interval;
    }

    /// Asks every vCPU for its state, waits (briefly) for the answers, evaluates; true when
    /// the VM has been ended as halted for good.
    fn probe(&mut self, shared: &Shared, handles: &Handles) -> bool {
        let c = &shared.control;
        shared.mark(usize::MAX, "probe");
        let round = c.probe_round.fetch_add(1, Ordering::SeqCst) + 1;
        kick(handles);
        let asked = Instant::now();
        while asked.elapsed() < PROBE_ANSWER_WAIT
            && !c.stop.load(Ordering::SeqCst)
            && !c
                .vcpu_state
                .iter()
                .all(|s| s.load(Ordering::SeqCst) >> 2 == round)
        {
            std::thread::sleep(Duration::from_micros(10));
        }
        let states: Vec<u64> = c
            .vcpu_state
            .iter()
            .map(|s| s.load(Ordering::SeqCst))
            .collect();
        let all_dead = states
            .iter()
            .all(|v| v >> 2 == round && (v & 3 == ST_HALTED_NOIRQ || v & 3 == ST_WAIT_SIPI));
        let any_halted = states.iter().any(|v| v & 3 == ST_HALTED_NOIRQ);
        if all_dead && any_halted {
            self.dead_rounds += 1;
        } else {
            self.dead_rounds = 0;
        }
        if self.dead_rounds >= self.needed_rounds {
            shared.finish(VmEnd::Crash {
                reason: "halted with interrupts disabled (every vCPU in HLT with RFLAGS.IF=0 or waiting for SIPI)".into(),
                regs: String::new(),
            });
            return true;
        }
        self.interval = (self.interval * 2).min(PROBE_MAX_INTERVAL);
        self.probe_at = Instant::now() + self.interval;
        false
    }
}

/// Signals every vCPU thread still running, so that it leaves KVM_RUN.
fn kick(handles: &Handles) {
    for h in handles {
        if !h.is_finished() {
            let _ = h.kill(SIGRTMIN());
        }
    }
}

/// Kicks every vCPU until its thread has left KVM_RUN. Each vCPU thread counts itself out
/// in `exited` and signals `end_cv`; a kick can be lost if it lands just before KVM_RUN, so
/// kicks repeat until every thread is out.
fn stop_vcpus(shared: &Shared, handles: &Handles) {
    let c = &shared.control;
    let spawned = handles.len();
    let mut wait = Duration::from_micros(50);
    loop {
        // (A thread that panicked never counts itself out, but it is finished.)
        let all_out = || {
            c.exited.load(Ordering::SeqCst) >= spawned || handles.iter().all(|h| h.is_finished())
        };
        if all_out() {
            break;
        }
        kick(handles);
        let guard = lock(&c.end);
        if all_out() {
            break;
        }
        let _ = c
            .end_cv
            .wait_timeout(guard, wait)
            .unwrap_or_else(|e| e.into_inner());
        if c.exited.load(Ordering::SeqCst) >= spawned {
            break;
        }
        wait = (wait * 2).min(Duration::from_millis(5));
    }
}

/// Joins the vCPU threads; returns their vCPU fds (closed by the teardown).
fn join_vcpus(shared: &Shared, handles: Handles) -> Vec<VcpuFd> {
    let mut vcpus = Vec::with_capacity(handles.len());
    for h in handles {
        match h.join() {
            Ok(v) => vcpus.extend(v),
            Err(_) => shared.finish(VmEnd::Crash {
                reason: "a vCPU thread panicked".into(),
                regs: String::new(),
            }),
        }
    }
    vcpus
}

/// The run's outcome, once every vCPU thread is joined.
fn outcome(shared: &Shared, start: Instant) -> RunOutcome {
    let stats = &shared.stats;
    let final_regs = lock(&stats.final_regs).clone();
    let mut end = lock(&shared.control.end).clone().unwrap_or(VmEnd::Timeout);
    if let VmEnd::Crash { regs, .. } = &mut end {
        if regs.is_empty() {
            *regs = final_regs.first().cloned().unwrap_or_default();
        }
    }
    RunOutcome {
        end,
        hypercalls: lock(&stats.counts).clone(),
        xen_trace: lock(&stats.trace).to_vec(),
        wall: start.elapsed(),
        ring0_share: {
            let n = stats.samples.load(Ordering::Relaxed);
            (n > 0).then(|| stats.samples_ring0.load(Ordering::Relaxed) as f64 / n as f64)
        },
        final_regs,
        unclaimed_accesses: stats.unclaimed.load(Ordering::SeqCst),
        console_dropped: shared.devices.console.dropped(),
    }
}

/// Sets the calling thread's timer slack (ns) when `set` is given; returns the previous one.
fn timer_slack(set: Option<u64>) -> Option<u64> {
    // SAFETY: PR_GET_TIMERSLACK / PR_SET_TIMERSLACK take plain integers and only affect the
    // calling thread's timer slack.
    let old = unsafe { libc::prctl(libc::PR_GET_TIMERSLACK, 0, 0, 0, 0) };
    if let Some(ns) = set {
        // SAFETY: as above.
        unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, ns as libc::c_ulong, 0, 0, 0) };
    }
    u64::try_from(old).ok()
}

static TEARDOWNS: AtomicU64 = AtomicU64::new(0);

/// VMs whose kernel-side teardown is still running (see [`Vm::run`]).
pub fn teardowns_pending() -> u64 {
    TEARDOWNS.load(Ordering::SeqCst)
}

/// Waits (up to `max`) until every finished VM has been torn down; true when none is left.
pub fn wait_for_teardowns(max: Duration) -> bool {
    let t = Instant::now();
    while teardowns_pending() > 0 {
        if t.elapsed() >= max {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

/// Closing a VM with an in-kernel irqchip costs 20-30 ms on this host (the kernel
/// synchronises its I/O buses), so the fds are closed on a short-lived thread and `run`
/// returns without waiting; guest memory stays mapped until the VM fd is closed. The
/// thread only closes fds and ends; [`wait_for_teardowns`] waits for it.
fn teardown(
    vm: Arc<VmFd>,
    vcpus: (Vec<VcpuFd>, Vec<BlockingStat>),
    shared: Arc<Shared>,
    evt: EventFd,
) {
    TEARDOWNS.fetch_add(1, Ordering::SeqCst);
    let job = move || {
        drop(vcpus);
        drop(vm);
        drop(evt);
        drop(shared);
        TEARDOWNS.fetch_sub(1, Ordering::SeqCst);
    };
    let job = std::sync::Arc::new(Mutex::new(Some(job)));
    let j2 = job.clone();
    let spawned = std::thread::Builder::new()
        .name("vm-teardown".into())
        .spawn(move || {
            if let Some(f) = lock(&j2).take() {
                f()
            }
        });
    if spawned.is_err() {
        if let Some(f) = lock(&job).take() {
            f()
        }
    }
}
