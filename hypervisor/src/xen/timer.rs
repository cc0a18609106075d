//! Xen's two timers per vCPU, both raising VIRQ_TIMER: the single-shot one
//! (VCPUOP_set_singleshot_timer, set_timer_op) and the periodic one
//! (VCPUOP_set_periodic_timer); deadlines on the reference clock, and the VM's timer thread
//! that raises VIRQ_TIMER when one passes (native: a VMM timer, then KVM_SIGNAL_MSI).
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

/// One vCPU's timers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Slot {
    /// The single-shot deadline (reference ns).
    pub single: Option<u64>,
    /// The periodic timer: (next deadline, period), both ns.
    pub periodic: Option<(u64, u64)>,
}

/// Per-vCPU deadlines (reference ns) and the condition the timer thread sleeps on.
#[derive(Debug)]
pub struct Timers {
    deadlines: Mutex<Vec<Slot>>,
    cv: Condvar,
}

impl Timers {
    /// No timer armed, for `vcpus` vCPUs.
    pub fn new(vcpus: usize) -> Self {
        Timers {
            deadlines: Mutex::new(vec![Slot::default(); vcpus]),
            cv: Condvar::new(),
        }
    }

    /// Arms (or with `None` stops) vCPU `v`'s single-shot timer.
    pub fn set(&self, v: usize, deadline: Option<u64>) {
        if let Some(d) = lock(&self.deadlines).get_mut(v) {
            d.single = deadline;
        }
        self.cv.notify_all();
    }

    /// vCPU `v`'s single-shot deadline.
    pub fn get(&self, v: usize) -> Option<u64> {
        lock(&self.deadlines).get(v).and_then(|d| d.single)
    }

    /// Starts (first expiry one period from `now`) or with `None` stops vCPU `v`'s
    /// periodic timer.
    pub fn set_periodic(&self, v: usize, now: u64, period: Option<u64>) {
        if let Some(d) = lock(&self.deadlines).get_mut(v) {
            d.periodic = period.map(|p| (now.saturating_add(p), p));
        }
        self.cv.notify_all();
    }

    /// vCPU `v`'s periodic timer: (next deadline, period).
    pub fn periodic(&self, v: usize) -> Option<(u64, u64)> {
        lock(&self.deadlines).get(v).and_then(|d| d.periodic)
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

/// Takes the deadlines that passed at `now` (a single-shot one is cleared, a periodic one
/// moves on by whole periods past `now`, as Xen's `periodic_timer_fn` skips missed ticks);
/// returns their vCPUs (once each) and the next deadline.
pub fn take_due(d: &mut [Slot], now: u64) -> (Vec<u32>, Option<u64>) {
    let mut due = Vec::new();
    let mut next: Option<u64> = None;
    let mut upcoming = |t: u64| next = Some(next.map_or(t, |n: u64| n.min(t)));
    for (v, slot) in d.iter_mut().enumerate() {
        let mut fired = false;
        match slot.single {
            Some(t) if t <= now => {
                fired = true;
                slot.single = None;
            }
            Some(t) => upcoming(t),
            None => {}
        }
        if let Some((t, p)) = slot.periodic {
            if t <= now {
                fired = true;
                let missed = (now - t) / p.max(1);
                let t = t
                    .saturating_add(missed.saturating_add(1).saturating_mul(p))
                    .max(now.saturating_add(1));
                slot.periodic = Some((t, p));
                upcoming(t);
            } else {
                upcoming(t);
            }
        }
        if fired {
            due.push(v as u32);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_and_periodic() {
        let mut d = vec![Slot::default(); 2];
        d[0].single = Some(100);
        d[1].periodic = Some((50, 40));
        assert_eq!(take_due(&mut d, 10), (vec![], Some(50)));
        assert_eq!(take_due(&mut d, 60), (vec![1], Some(90)));
        assert_eq!(d[1].periodic, Some((90, 40)));
        // Both fire at 100; the single-shot one is gone after.
        assert_eq!(take_due(&mut d, 100), (vec![0, 1], Some(130)));
        assert_eq!(d[0].single, None);
        // Missed periods are skipped, not replayed: one VIRQ, next deadline past now.
        assert_eq!(take_due(&mut d, 1000), (vec![1], Some(1010)));
        assert_eq!(take_due(&mut d, 1001), (vec![], Some(1010)));
    }
}
