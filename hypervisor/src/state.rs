//! The state a running VM's threads share (vCPU threads, the run loop, the exit handlers),
//! grouped by concern: guest memory, devices, paravirtual interfaces, run control, and the
//! figures the run reports.
use crate::console::Console;
use crate::devices::bus::MmioBus;
use crate::devices::port_bus::PortBus;
use crate::hyperv::{self, Partition};
use crate::layout::MemEntry;
use crate::xen::{self, XenState};
use crate::{Interface, VmEnd};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;
use vm_memory::GuestMemoryMmap;

/// Locks a mutex even if a thread panicked while holding it (the data stays usable).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The guest's devices; fixed once the VM is created, each device has its own lock.
pub(crate) struct Devices {
    /// The console shared by the UART, HvCallPostDebugData and Xen console_io.
    pub console: Console,
    /// COM1 and the status port.
    pub ports: PortBus,
    /// The virtio-mmio devices.
    pub mmio: MmioBus,
}

/// The reference clock: ns since the VM was created. Hyper-V's TIME_REF_COUNT (100 ns
/// units) and Xen's system time (pvclock, timers) both read it, so the interfaces agree.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RefClock(pub Instant);

impl RefClock {
    /// ns since the VM was created.
    pub fn ns(&self) -> u64 {
        self.0.elapsed().as_nanos() as u64
    }
}

/// The paravirtual interfaces' per-VM state.
pub(crate) struct Paravirt {
    /// Which interfaces the guest sees.
    pub interface: Interface,
    /// Hyper-V partition state (synthetic MSRs); shared with the SynIC (and its timers).
    pub hv: Arc<Mutex<Partition>>,
    /// Hyper-V SynIC delivery onto `hv` (messages, events, the connections VMBus registers).
    pub synic: Arc<hyperv::Synic>,
    /// Hyper-V dispatch options (fault injection).
    pub hv_opts: hyperv::DispatchOptions,
    /// Xen adapter state (hypercall page, HVM parameters, shared_info, event channels);
    /// shared with the Xen timer thread (which holds it weakly).
    pub xen: Arc<Mutex<XenState>>,
}

/// Liveness of a vCPU as seen at the last watchdog probe (`Control::vcpu_state` holds
/// `(round << 2) | state`).
pub(crate) const ST_RUNNING: u64 = 0;
/// Halted with interrupts disabled.
pub(crate) const ST_HALTED_NOIRQ: u64 = 1;
/// Waiting for INIT/SIPI.
pub(crate) const ST_WAIT_SIPI: u64 = 2;
/// Halted with interrupts enabled: alive (an interrupt wakes it), but not running, so not a
/// privilege-level sample either.
pub(crate) const ST_HALTED_IRQ: u64 = 3;

/// How the run ends and how the run loop and the vCPU threads agree on it.
pub(crate) struct Control {
    /// The end, once decided (first one wins).
    pub end: Mutex<Option<VmEnd>>,
    /// Signalled when `end` is set or a vCPU thread leaves its loop.
    pub end_cv: Condvar,
    /// Every vCPU thread leaves its loop when this is set.
    pub stop: AtomicBool,
    /// Watchdog probe round; vCPU states are (round << 2) | state.
    pub probe_round: AtomicU64,
    /// Each vCPU's answer to the last probe.
    pub vcpu_state: Vec<AtomicU64>,
    /// vCPU threads that have left their loop.
    pub exited: AtomicUsize,
    /// Whether the vCPU threads install their seccomp filter before their first KVM_RUN.
    pub seccomp: bool,
}

/// What the run reports besides its end ([`crate::RunOutcome`]) and the debug timeline.
pub(crate) struct Stats {
    /// Hypercalls per name.
    pub counts: Mutex<BTreeMap<String, u64>>,
    /// Xen calls and their translations.
    pub trace: Mutex<xen::Trace>,
    /// Accesses to unclaimed ports and MMIO.
    pub unclaimed: AtomicU64,
    /// Watchdog samples of running vCPUs, and how many found them in ring 0.
    pub samples: AtomicU64,
    /// See `samples`.
    pub samples_ring0: AtomicU64,
    /// Each vCPU's register dump at the end.
    pub final_regs: Mutex<Vec<String>>,
    /// Run-time milestones for the debug log: when `run` started, and "name@us" marks.
    pub run_start: Mutex<Option<Instant>>,
    /// See `run_start`.
    pub timeline: Mutex<String>,
}

/// Everything the VM's threads share.
pub(crate) struct Shared {
    /// Guest memory.
    pub mem: GuestMemoryMmap,
    /// The guest's e820 map (the Xen adapter reports it).
    pub memory_map: Vec<MemEntry>,
    /// When the VM was created (Hyper-V's reference time counts from here).
    pub created: Instant,
    /// The guest's devices.
    pub devices: Devices,
    /// Hyper-V and Xen state.
    pub paravirt: Paravirt,
    /// [`crate::VmConfig::nested_fixes`]: the VMM emulates what KVM's emulator fails on.
    pub nested_fixes: bool,
    /// The run's end and its agreement.
    pub control: Control,
    /// Figures and the debug timeline.
    pub stats: Stats,
    /// TLB flushes and IPIs one vCPU asks of others (Hyper-V hypercalls).
    pub vp_requests: crate::vp_requests::VpRequests,
}

impl Shared {
    /// Ends the VM with `end` unless it has already ended; stops every vCPU.
    pub fn finish(&self, end: VmEnd) {
        let c = &self.control;
        let mut e = lock(&c.end);
        if e.is_none() {
            *e = Some(end);
        }
        c.stop.store(true, Ordering::SeqCst);
        c.end_cv.notify_all();
    }

    /// The reference clock (see [`RefClock`]).
    pub fn ref_clock(&self) -> RefClock {
        RefClock(self.created)
    }

    /// Whether the VM is stopping.
    pub fn stopping(&self) -> bool {
        self.control.stop.load(Ordering::SeqCst)
    }

    /// Records a run-time milestone (`id` = vCPU, usize::MAX = the controller) for the debug
    /// log; only the first few dozen are kept (start-up and end, not steady state).
    pub fn mark(&self, id: usize, name: &str) {
        let Some(t0) = *lock(&self.stats.run_start) else {
            return;
        };
        let us = t0.elapsed().as_micros();
        let mut t = lock(&self.stats.timeline);
        if t.len() < 1024 {
            if id == usize::MAX {
                t.push_str(&format!("{name}@{us} "));
            } else {
                t.push_str(&format!("vcpu{id}.{name}@{us} "));
            }
        }
    }

    /// Counts one hypercall under `name`.
    pub fn count(&self, name: &str) {
        let mut counts = lock(&self.stats.counts);
        // No allocation once the name is known (this runs on every hypercall).
        match counts.get_mut(name) {
            Some(n) => *n += 1,
            None => {
                counts.insert(name.to_string(), 1);
            }
        }
    }

    /// Writes guest output to the console (never blocks on the caller's writer).
    pub fn console_write(&self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        self.devices.console.push(data);
    }

    /// Counts and logs an access nothing claimed.
    pub fn unclaimed(&self, what: &str, addr: u64, value: u64) {
        self.stats.unclaimed.fetch_add(1, Ordering::Relaxed);
        tracing::debug!("unclaimed {what} at {addr:#x} (value {value:#x})");
    }
}
