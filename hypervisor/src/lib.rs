//! A KVM virtual machine monitor: guest memory, vCPUs, boot, exits, a Hyper-V-style
//! hypercall interface, a Xen-compatibility adapter and virtio devices.
//!
//! The public entry points are [`VmConfig`], [`Vm::new`] and [`Vm::run`]. Guest-visible
//! conventions (ports, MSRs, CPUID leaves) are documented in [`layout`], [`hyperv`] and
//! [`xen`]; the exit-handling rules are documented in [`vm`].

pub mod boot;
pub mod bus;
mod console;
pub mod cpuid;
pub mod hyperv;
pub mod layout;
pub mod pagewalk;
pub mod virtio;
pub mod vm;
pub mod xen;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub use virtio::{DiskBus, DiskConfig, NetConfig};
pub use vm::{teardowns_pending, wait_for_teardowns, Vm};

/// Which paravirtual interface the guest sees through CPUID and MSRs. Serialized (and parsed
/// with `FromStr`) as `hyperv`, `xen`, `both`, `none`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Interface {
    /// Hyper-V-style (TLFS) leaves at 0x40000000, synthetic MSRs and hypercall page.
    #[default]
    HyperV,
    /// Xen leaves at 0x40000000 ("XenVMMXenVMM") and the Xen hypercall page MSR 0x40000000.
    Xen,
    /// Hyper-V at 0x40000000, Xen moved to leaves 0x40000100 and MSR 0x40000200.
    Both,
    /// No hypervisor leaves beyond the CPUID "hypervisor" bit; synthetic MSRs raise #GP.
    None,
}

impl Interface {
    pub fn has_hyperv(self) -> bool {
        matches!(self, Interface::HyperV | Interface::Both)
    }
    pub fn has_xen(self) -> bool {
        matches!(self, Interface::Xen | Interface::Both)
    }
    /// Xen's CPUID base leaf and hypercall MSR for this interface, if Xen is on.
    pub fn xen_base(self) -> Option<(u32, u32)> {
        match self {
            Interface::Xen => Some((0x4000_0000, 0x4000_0000)),
            Interface::Both => Some((0x4000_0100, 0x4000_0200)),
            _ => None,
        }
    }
}

impl std::str::FromStr for Interface {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "hyperv" | "hyper-v" => Ok(Interface::HyperV),
            "xen" => Ok(Interface::Xen),
            "both" => Ok(Interface::Both),
            "none" => Ok(Interface::None),
            other => Err(format!(
                "unknown interface `{other}`: expected hyperv, xen, both or none"
            )),
        }
    }
}

impl std::fmt::Display for Interface {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Interface::HyperV => "hyperv",
            Interface::Xen => "xen",
            Interface::Both => "both",
            Interface::None => "none",
        })
    }
}

/// Deliberate misbehaviour, so that a certification run can prove its cases can fail.
#[cfg(feature = "fault-injection")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer an unknown hypercall code with HV_STATUS_INVALID_PARAMETER (5) instead of
    /// HV_STATUS_INVALID_HYPERCALL_CODE (2).
    WrongInvalidCodeStatus,
}

/// Everything needed to build a VM.
#[derive(Clone, Debug)]
pub struct VmConfig {
    pub memory_mib: u32,
    pub cpus: u8,
    /// A PVH ELF (XEN_ELFNOTE_PHYS32_ENTRY) or a bzImage.
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    pub cmdline: String,
    pub interface: Interface,
    /// Wall-clock limit of [`Vm::run`]; `Duration::ZERO` means no limit.
    pub timeout: Duration,
    pub max_disks: usize,
    pub max_nics: usize,
    /// Disks (raw images), placed before the NICs on the MMIO bus.
    pub disks: Vec<virtio::DiskConfig>,
    /// Whether the disks are virtio-blk devices or virtio-scsi controllers.
    pub disk_bus: virtio::DiskBus,
    /// virtio-net devices.
    pub nets: Vec<virtio::NetConfig>,
    #[cfg(feature = "fault-injection")]
    pub fault: Option<Fault>,
}

impl Default for VmConfig {
    fn default() -> Self {
        VmConfig {
            memory_mib: 128,
            cpus: 1,
            kernel: PathBuf::new(),
            initrd: None,
            cmdline: String::new(),
            interface: Interface::HyperV,
            timeout: Duration::from_secs(60),
            max_disks: 1,
            max_nics: 1,
            disks: Vec::new(),
            disk_bus: virtio::DiskBus::Blk,
            nets: Vec::new(),
            #[cfg(feature = "fault-injection")]
            fault: None,
        }
    }
}

/// How a VM ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VmEnd {
    /// The guest wrote this value to port 0xf4.
    Status(u32),
    /// The guest asked to power off (Xen SCHEDOP_shutdown poweroff/reboot, a KVM system event).
    Shutdown,
    /// The wall-clock timeout elapsed.
    Timeout,
    /// The guest cannot continue: triple fault, emulation failure, halted with interrupts
    /// off, a Xen crash shutdown, ... `regs` is a register dump of the vCPU concerned.
    Crash { reason: String, regs: String },
}

impl std::fmt::Display for VmEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VmEnd::Status(s) => write!(f, "status {s:#x}"),
            VmEnd::Shutdown => f.write_str("shutdown"),
            VmEnd::Timeout => f.write_str("timeout"),
            VmEnd::Crash { reason, .. } => write!(f, "crash: {reason}"),
        }
    }
}

impl VmEnd {
    /// Process exit code for `hvcert run`: status & 0xff, 124 timeout, 125 crash, 0 shutdown.
    pub fn exit_code(&self) -> u8 {
        match self {
            VmEnd::Status(s) => (*s & 0xff) as u8,
            VmEnd::Shutdown => 0,
            VmEnd::Timeout => 124,
            VmEnd::Crash { .. } => 125,
        }
    }
}

/// What [`Vm::run`] returns.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    pub end: VmEnd,
    /// Hypercalls per call name (TLFS names such as `HvCallNotifyLongSpinWait`, invalid
    /// codes as `invalid(0x1234)`, Xen calls as `xen:console_io`, ...).
    pub hypercalls: BTreeMap<String, u64>,
    /// Xen hypercalls and what they were translated to, in order: the first
    /// [`xen::TRACE_MAX`], then one line counting the rest.
    pub xen_trace: Vec<String>,
    pub wall: Duration,
    /// Share of the running (not halted) guest time spent in ring 0, from the watchdog's
    /// periodic samples of each vCPU's privilege level; `None` when no sample was taken
    /// (runs shorter than ~0.2 ms).
    pub ring0_share: Option<f64>,
    /// Register dump of every vCPU when the VM ended (index = vCPU id).
    pub final_regs: Vec<String>,
    /// Number of accesses to unclaimed ports/MMIO (see the rule in [`vm`]).
    pub unclaimed_accesses: u64,
    /// Guest console bytes the writer never got: the bounded buffer was full (the writer
    /// did not keep up or blocked) or the writer had failed (rule in the `console` module:
    /// nothing is dropped while the writer keeps up).
    pub console_dropped: u64,
}

/// Errors building or running a VM (never a guest's doing: those end the VM instead).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("KVM: {what}: {source}")]
    Kvm {
        what: &'static str,
        source: kvm_ioctls::Error,
    },
    #[error("guest memory: {0}")]
    Memory(String),
    #[error("kernel {path}: {msg}")]
    Kernel { path: PathBuf, msg: String },
    #[error("initrd {path}: {msg}")]
    Initrd { path: PathBuf, msg: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A virtio device could not be set up (its message names the file or limit).
    #[error(transparent)]
    Device(#[from] virtio::Error),
}

pub(crate) fn kvm_err(what: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> Error {
    move |source| Error::Kvm { what, source }
}
