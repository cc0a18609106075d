//! Synthetic timers STIMER0-3 (CONFIG/COUNT MSRs 0x400000B0..=0x400000B7) per VP, and the
//! VM's `hv-stimer` thread that expires them.
//!
//! Rules (TLFS "Synthetic Timers"; where the TLFS is silent, as KVM's `hyperv.c`):
//! - Times are reference time (100 ns units), the clock of TIME_REF_COUNT and the reference
//!   TSC page ([`RefTime`] computes it the same way as the MSR read).
//! - CONFIG: Enable 0, Periodic 1, Lazy 2 (no effect), AutoEnable 3, ApicVector 11:4,
//!   DirectMode 12, SINTx 19:16; any other bit is #GP. DirectMode without the
//!   DirectSyntheticTimers feature is #GP, and so is an enabled direct-mode timer with a
//!   vector below 16. A message-mode timer with SINTx 0 cannot be enabled (Enable reads back
//!   clear, as KVM). An enabled timer whose COUNT is 0 stays idle (Enable may be set before
//!   COUNT is written, as KVM allows).
//! - COUNT: 0 clears Enable; non-zero with AutoEnable sets it. Any CONFIG/COUNT write stops
//!   the timer, and an enabled timer is armed again from the new values: one-shot expires
//!   at reference time COUNT (at once if that has passed), periodic every COUNT from now.
//! - Expiry, message mode: HVMSG_TIMER_EXPIRED (TimerIndex, ExpirationTime, DeliveryTime)
//!   into the SIMP slot of SINTx through [`Synic`]'s message protocol (queued behind a busy
//!   slot, no vector if the SINT is masked; dropped if the SynIC or SIMP is disabled).
//!   An expiry while the same timer's previous message still waits in the queue is
//!   coalesced with it (dropped), as KVM keeps at most one pending message per timer.
//!   Direct mode: ApicVector injected through the in-kernel LAPIC. A one-shot timer then
//!   clears Enable; a periodic one is re-armed at the next multiple of its period after now
//!   (missed periods are not delivered twice).
//! - The `hv-stimer` thread is started by the first armed timer; it holds the [`Synic`] only
//!   weakly (as the Xen timer thread does), so it never keeps a VM alive: once the VM is
//!   gone it ends at its next wake-up (at most [`TICK_MAX`]).
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use vm_memory::GuestMemoryMmap;

use super::msr::{host_tsc, Gp, TscInfo};
use super::synic::{HvMessage, Synic};
use crate::abi::hv::SINT_MIN_VECTOR;
use crate::abi::hv_synic::*;
use crate::state::lock;

/// Longest the timer thread sleeps before it checks that the VM still exists.
pub const TICK_MAX: Duration = Duration::from_millis(50);

/// One synthetic timer's registers and its next expiration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stimer {
    /// STIMERn_CONFIG.
    pub config: u64,
    /// STIMERn_COUNT.
    pub count: u64,
    /// Next expiration (reference time) while armed.
    pub deadline: Option<u64>,
}

impl Stimer {
    fn enabled(&self) -> bool {
        self.config & STIMER_ENABLE != 0
    }
    fn periodic(&self) -> bool {
        self.config & STIMER_PERIODIC != 0
    }
    fn direct(&self) -> bool {
        self.config & STIMER_DIRECT_MODE != 0
    }
    fn vector(&self) -> u8 {
        ((self.config >> STIMER_APIC_VECTOR_SHIFT) & STIMER_APIC_VECTOR_MASK) as u8
    }
    fn sint(&self) -> u8 {
        ((self.config >> STIMER_SINT_SHIFT) & STIMER_SINT_MASK) as u8
    }
    /// Enable cleared when the timer cannot run: message mode to SINT 0.
    fn settle(&mut self) {
        if !self.direct() && self.sint() == 0 {
            self.config &= !STIMER_ENABLE;
        }
        self.deadline = None;
    }
}

/// Whether `msr` is one of STIMER0-3 CONFIG/COUNT.
pub fn is_stimer_msr(msr: u32) -> bool {
    (MSR_STIMER0_CONFIG..=MSR_STIMER3_COUNT).contains(&msr)
}

/// (timer index, whether it is the COUNT register) of a STIMER MSR.
fn which(msr: u32) -> (usize, bool) {
    let off = msr.wrapping_sub(MSR_STIMER0_CONFIG) as usize;
    ((off / 2) % STIMER_COUNT, off % 2 == 1)
}

/// RDMSR of a STIMER MSR.
pub(super) fn read(t: &[Stimer; STIMER_COUNT], msr: u32) -> u64 {
    let (i, count) = which(msr);
    if count {
        t[i].count
    } else {
        t[i].config
    }
}

/// WRMSR of a STIMER MSR; `direct_ok`: the DirectSyntheticTimers feature is offered. Stops
/// the timer (its deadline is cleared); [`Synic::stimers_written`] arms it again.
pub(super) fn write(
    t: &mut [Stimer; STIMER_COUNT],
    msr: u32,
    value: u64,
    direct_ok: bool,
) -> Result<(), Gp> {
    let (i, is_count) = which(msr);
    let st = &mut t[i];
    if is_count {
        st.count = value;
        if value == 0 {
            st.config &= !STIMER_ENABLE;
        } else if st.config & STIMER_AUTO_ENABLE != 0 {
            st.config |= STIMER_ENABLE;
        }
    } else {
        if value & !STIMER_CONFIG_VALID != 0 || (value & STIMER_DIRECT_MODE != 0 && !direct_ok) {
            return Err(Gp);
        }
        let new = Stimer {
            config: value,
            ..*st
        };
        if new.enabled() && new.direct() && u64::from(new.vector()) < SINT_MIN_VECTOR {
            return Err(Gp);
        }
        st.config = value;
    }
    st.settle();
    Ok(())
}

/// The partition's reference clock, as TIME_REF_COUNT reads it: from the guest TSC when its
/// rate is known (the reference TSC page's formula), else 100 ns units since VM creation.
#[derive(Clone, Copy, Debug)]
pub struct RefTime {
    /// The guest TSC.
    pub tsc: TscInfo,
    /// When the VM was created.
    pub created: Instant,
}

impl RefTime {
    /// Reference time now (100 ns units).
    pub fn now(&self) -> u64 {
        if self.tsc.hz == 0 {
            return (self.created.elapsed().as_nanos() / 100) as u64;
        }
        self.tsc
            .ref_time(host_tsc().wrapping_add_signed(self.tsc.offset))
    }
}

/// The HVMSG_TIMER_EXPIRED message of timer `index`.
pub fn timer_message(index: u32, expiration: u64, delivery: u64) -> HvMessage {
    let mut payload = Vec::with_capacity(TIMER_MESSAGE_PAYLOAD_SIZE);
    payload.extend_from_slice(&index.to_le_bytes());
    payload.extend_from_slice(&0u32.to_le_bytes());
    payload.extend_from_slice(&expiration.to_le_bytes());
    payload.extend_from_slice(&delivery.to_le_bytes());
    HvMessage {
        message_type: HVMSG_TIMER_EXPIRED,
        payload,
    }
}

/// What one expiry asks of the SynIC (done after the timer state is updated).
pub(super) enum Fire {
    /// Post this message to SINT `.0`.
    Message(u8, HvMessage),
    /// Inject this vector.
    Direct(u8),
}

/// Arms every enabled, unarmed timer of a VP at reference time `now`.
pub(super) fn arm(t: &mut [Stimer; STIMER_COUNT], now: u64) {
    for st in t.iter_mut() {
        if !st.enabled() || st.count == 0 || st.deadline.is_some() {
            continue;
        }
        st.deadline = Some(if st.periodic() {
            now.saturating_add(st.count)
        } else {
            st.count
        });
    }
}

/// Expires the timers of a VP that are due at `now`; returns what to deliver and the next
/// deadline among the VP's timers.
pub(super) fn expire(t: &mut [Stimer; STIMER_COUNT], now: u64) -> (Vec<Fire>, Option<u64>) {
    let mut fire = Vec::new();
    let mut next: Option<u64> = None;
    for (i, st) in t.iter_mut().enumerate() {
        let Some(d) = st.deadline else { continue };
        if d > now {
            next = Some(next.map_or(d, |n| n.min(d)));
            continue;
        }
        fire.push(if st.direct() {
            Fire::Direct(st.vector())
        } else {
            Fire::Message(st.sint(), timer_message(i as u32, d, now))
        });
        if st.periodic() && st.count != 0 {
            // The next multiple of the period after now.
            let behind = (now - d) / st.count + 1;
            let n = d.saturating_add(behind.saturating_mul(st.count));
            st.deadline = Some(n);
            next = Some(next.map_or(n, |x| x.min(n)));
        } else {
            st.config &= !STIMER_ENABLE;
            st.deadline = None;
        }
    }
    (fire, next)
}

/// Wakes the timer thread when a timer is (re)armed.
#[derive(Debug, Default)]
pub(super) struct Wake {
    generation: Mutex<u64>,
    cv: Condvar,
}

impl Wake {
    pub(super) fn notify(&self) {
        *lock(&self.generation) += 1;
        self.cv.notify_all();
    }
    fn generation(&self) -> u64 {
        *lock(&self.generation)
    }
    fn wait(&self, seen: u64, timeout: Duration) {
        let g = lock(&self.generation);
        if *g != seen {
            return;
        }
        let _ = self.cv.wait_timeout(g, timeout);
    }
}

/// Starts the VM's timer thread.
pub(super) fn spawn(
    synic: Weak<Synic>,
    wake: Arc<Wake>,
    mem: GuestMemoryMmap,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("hv-stimer".into())
        .spawn(move || loop {
            let seen = wake.generation();
            let wait = {
                let Some(s) = synic.upgrade() else { break };
                let now = s.clock().now();
                let next = s.run_timers(&mem, now);
                next.map_or(TICK_MAX, |d| {
                    Duration::from_nanos(d.saturating_sub(s.clock().now()).saturating_mul(100))
                        .min(TICK_MAX)
                })
            };
            if !wait.is_zero() {
                wake.wait(seen, wait);
            }
        })
        .map(|_| ())
}

#[cfg(test)]
#[path = "stimer_tests.rs"]
mod tests;
