//! How a run ended: [`VmEnd`] and the [`RunOutcome`] that [`Vm::run`](crate::Vm::run)
//! returns.
use std::collections::BTreeMap;
use std::time::Duration;

/// How a VM ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VmEnd {
    /// The guest wrote this value to port 0xf4.
    Status(u32),
    /// The guest asked to power off (Xen SCHEDOP_shutdown poweroff/reboot, a KVM system event).
    Shutdown,
    /// The guest reset the partition (Hyper-V RESET MSR); the VMM does not reboot it.
    Reset,
    /// The wall-clock timeout elapsed.
    Timeout,
    /// The guest cannot continue: triple fault, emulation failure, halted with interrupts
    /// off, a Xen crash shutdown, ... `regs` is a register dump of the vCPU concerned.
    Crash {
        /// What happened, prefixed with the vCPU concerned where there is one.
        reason: String,
        /// Register dump of that vCPU (see [`crate::regs`]).
        regs: String,
    },
}

impl std::fmt::Display for VmEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VmEnd::Status(s) => write!(f, "status {s:#x}"),
            VmEnd::Shutdown => f.write_str("shutdown"),
            VmEnd::Reset => f.write_str("reset"),
            VmEnd::Timeout => f.write_str("timeout"),
            VmEnd::Crash { reason, .. } => write!(f, "crash: {reason}"),
        }
    }
}

impl VmEnd {
    /// Process exit code for `hvcert run`: status & 0xff, 124 timeout, 125 crash, 0 shutdown
    /// or reset.
    pub fn exit_code(&self) -> u8 {
        match self {
            VmEnd::Status(s) => (*s & 0xff) as u8,
            VmEnd::Shutdown | VmEnd::Reset => 0,
            VmEnd::Timeout => 124,
            VmEnd::Crash { .. } => 125,
        }
    }
}

/// What [`Vm::run`](crate::Vm::run) returns.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    /// How the VM ended.
    pub end: VmEnd,
    /// Hypercalls per call name (TLFS names such as `HvCallNotifyLongSpinWait`, invalid
    /// codes as `invalid(0x1234)`, Xen calls as `xen:console_io`, ...).
    pub hypercalls: BTreeMap<String, u64>,
    /// Xen hypercalls and what they were translated to, in order: the first
    /// [`crate::xen::TRACE_MAX`], then one line counting the rest.
    pub xen_trace: Vec<String>,
    /// Wall time of [`Vm::run`](crate::Vm::run)(crate::Vm::run), start to return.
    pub wall: Duration,
    /// Share of the running (not halted) guest time spent in ring 0, from the watchdog's
    /// periodic samples of each vCPU's privilege level; `None` when no sample was taken
    /// (runs shorter than ~0.2 ms).
    pub ring0_share: Option<f64>,
    /// Register dump of every vCPU when the VM ended (index = vCPU id).
    pub final_regs: Vec<String>,
    /// Number of accesses to unclaimed ports/MMIO (see the rule in [`crate::exits`]).
    pub unclaimed_accesses: u64,
    /// Guest console bytes the writer never got: the bounded buffer was full (the writer
    /// did not keep up or blocked) or the writer had failed (rule in the `console` module:
    /// nothing is dropped while the writer keeps up).
    pub console_dropped: u64,
}
