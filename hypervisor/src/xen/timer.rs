//! Single-shot timers (VCPUOP_set_singleshot_timer, set_timer_op): per-vCPU deadlines on
//! the reference clock, and the VM's timer thread that raises VIRQ_TIMER when one passes.
//!
//! The thread is started with the first armed timer and holds only a weak reference to the
//! Xen state: once the VM is gone it ends at its next wake-up (at most [`TICK_MAX`]).
use super::XenState;
use crate::abi::xen::VIRQ_TIMER;
use crate::state::{lock, RefClock};
use std::sync::{Condvar, Mutex, Weak};
use std::time::Duration;
use vm_memory::GuestMemoryMmap;

/// Longest the timer thread sleeps before it checks that the VM still exists.
pub const TICK_MAX: Duration = Duration::from_millis(50);

/// Per-vCPU deadlines (reference ns) and the condition the timer thread sleeps on.
#[derive(Debug)]
pub struct Timers {
    deadlines: Mutex<Vec<Option<u64>>>,
    cv: Condvar,
}

impl Timers {
    /// No timer armed, for `vcpus` vCPUs.
    pub fn new(vcpus: usize) -> Self {
        Timers {
            deadlines: Mutex::new(vec![None; vcpus]),
            cv: Condvar::new(),
        }
    }

    /// Arms (or with `None` stops) vCPU `v`'s timer.
    pub fn set(&self, v: usize, deadline: Option<u64>) {
        if let Some(d) = lock(&self.deadlines).get_mut(v) {
            *d = deadline;
        }
        self.cv.notify_all();
    }

    /// vCPU `v`'s deadline.
    pub fn get(&self, v: usize) -> Option<u64> {
        lock(&self.deadlines).get(v).copied().flatten()
    }

    /// Waits until a deadline passes (or [`TICK_MAX`]); returns the vCPUs whose timers
    /// expired (their deadlines are cleared).
    fn wait_due(&self, clock: RefClock) -> Vec<u32> {
        let mut d = lock(&self.deadlines);
        let (due, next) = take_due(&mut d, clock.ns());
        if !due.is_empty() {
            return due;
        }
        let now = clock.ns();
        let wait = next.map_or(TICK_MAX, |t| {
            Duration::from_nanos(t.saturating_sub(now)).min(TICK_MAX)
        });
        let (mut d, _) = self
            .cv
            .wait_timeout(d, wait)
            .unwrap_or_else(|e| e.into_inner());
        take_due(&mut d, clock.ns()).0
    }
}

/// Takes the deadlines that passed at `now`; returns their vCPUs and the next deadline.
fn take_due(d: &mut [Option<u64>], now: u64) -> (Vec<u32>, Option<u64>) {
    let mut due = Vec::new();
    let mut next: Option<u64> = None;
    for (v, slot) in d.iter_mut().enumerate() {
        match *slot {
            Some(t) if t <= now => {
                due.push(v as u32);
                *slot = None;
            }
            Some(t) => next = Some(next.map_or(t, |n| n.min(t))),
            None => {}
        }
    }
    (due, next)
}

/// Starts the timer thread of a VM.
pub(crate) fn spawn(
    state: Weak<Mutex<XenState>>,
    timers: std::sync::Arc<Timers>,
    clock: RefClock,
    mem: GuestMemoryMmap,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("xen-timer".into())
        .spawn(move || loop {
            let due = timers.wait_due(clock);
            let Some(st) = state.upgrade() else { break };
            if !due.is_empty() {
                let mut st = lock(&st);
                for v in due {
                    st.raise_virq(&mem, VIRQ_TIMER, v);
                }
            }
        })
        .map(|_| ())
}
