//! What a VM is built from: [`VmConfig`] (a struct literal with `..Default::default()`, or
//! [`VmConfig::builder`]), the paravirtual [`Interface`] and, with the `fault-injection`
//! feature, the `Fault` to inject.
use crate::abi::xen;
use crate::devices::virtio::{DiskBus, DiskConfig, NetConfig};
use std::path::PathBuf;
use std::time::Duration;

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
    /// Whether the guest sees the Hyper-V-style interface (leaves, MSRs, hypercall page).
    pub fn has_hyperv(self) -> bool {
        matches!(self, Interface::HyperV | Interface::Both)
    }
    /// Whether the guest sees the Xen interface (leaves, hypercall MSR and stubs).
    pub fn has_xen(self) -> bool {
        matches!(self, Interface::Xen | Interface::Both)
    }
    /// Xen's CPUID base leaf and hypercall MSR for this interface, if Xen is on.
    pub fn xen_base(self) -> Option<(u32, u32)> {
        match self {
            Interface::Xen => Some((xen::CPUID_BASE, xen::MSR_HYPERCALL)),
            Interface::Both => Some((xen::CPUID_BASE_BOTH, xen::MSR_HYPERCALL_BOTH)),
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
    /// Not a misbehaviour but a test hook: register the SynIC loopback connection
    /// (`hyperv::loopback`), so that a guest can post messages and signal events to itself.
    SynicLoopback,
}

/// Everything needed to build a VM.
#[derive(Clone, Debug)]
pub struct VmConfig {
    /// Guest RAM in MiB (4 MiB to 64 GiB; above 3 GiB it continues past the MMIO hole).
    pub memory_mib: u32,
    /// Number of vCPUs (at least 1, at most what KVM allows).
    pub cpus: u8,
    /// A PVH ELF (XEN_ELFNOTE_PHYS32_ENTRY) or a bzImage.
    pub kernel: PathBuf,
    /// An initial ramdisk, passed as the PVH module or the bzImage initrd.
    pub initrd: Option<PathBuf>,
    /// The kernel command line; the virtio-mmio devices' entries are appended to it.
    pub cmdline: String,
    /// Which paravirtual interface the guest sees.
    pub interface: Interface,
    /// Wall-clock limit of [`Vm::run`](crate::Vm::run); `Duration::ZERO` means no limit.
    pub timeout: Duration,
    /// Most disks accepted ([`Vm::new`](crate::Vm::new) refuses more with `Error::Device`).
    pub max_disks: usize,
    /// Most NICs accepted ([`Vm::new`](crate::Vm::new) refuses more with `Error::Device`).
    pub max_nics: usize,
    /// Disks (raw images), placed before the NICs on the MMIO bus.
    pub disks: Vec<DiskConfig>,
    /// Whether the disks are virtio-blk devices or virtio-scsi controllers.
    pub disk_bus: DiskBus,
    /// virtio-net devices.
    pub nets: Vec<NetConfig>,
    /// Which of `disks` and `nets` sit on the VMBus (storvsc, netvsc) instead of
    /// virtio-mmio; needs the Hyper-V interface. The limits `max_disks`/`max_nics` count
    /// them the same way.
    pub vmbus: crate::vmbus::VmbusConfig,
    /// The Hyper-V vendor signature and privileges (with a Hyper-V interface).
    pub hyperv: crate::hv_config::HvConfig,
    /// Whether the VMM's own threads (vCPUs, device workers, console writer) run under their
    /// seccomp allow-lists ([`crate::seccomp`]); on by default.
    pub seccomp: bool,
    /// Stock-kernel fixes for a `nested_software` host ([`crate::platform`]): the
    /// command-line fragment [`crate::platform::NESTED_CMDLINE`] is appended, and KVM
    /// emulation failures on the instructions the VMM knows are emulated by it. Off by
    /// default (an honest CPU; every emulation failure ends the VM). The library never
    /// decides this itself: certify's `hvcert run` does, from the probe's KVM check.
    pub nested_fixes: bool,
    /// Deliberate misbehaviour to inject, if any.
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
            disk_bus: DiskBus::Blk,
            nets: Vec::new(),
            vmbus: crate::vmbus::VmbusConfig::default(),
            hyperv: crate::hv_config::HvConfig::default(),
            seccomp: true,
            nested_fixes: false,
            #[cfg(feature = "fault-injection")]
            fault: None,
        }
    }
}

impl VmConfig {
    /// A builder starting from [`VmConfig::default`] with `kernel` set.
    pub fn builder(kernel: impl Into<PathBuf>) -> VmConfigBuilder {
        VmConfigBuilder(VmConfig {
            kernel: kernel.into(),
            ..VmConfig::default()
        })
    }
}

/// Builds a [`VmConfig`] step by step; each method sets the field of the same name.
#[derive(Clone, Debug)]
#[must_use]
pub struct VmConfigBuilder(VmConfig);

impl VmConfigBuilder {
    /// Guest RAM in MiB.
    pub fn memory_mib(mut self, mib: u32) -> Self {
        self.0.memory_mib = mib;
        self
    }
    /// Number of vCPUs.
    pub fn cpus(mut self, cpus: u8) -> Self {
        self.0.cpus = cpus;
        self
    }
    /// An initial ramdisk.
    pub fn initrd(mut self, path: impl Into<PathBuf>) -> Self {
        self.0.initrd = Some(path.into());
        self
    }
    /// The kernel command line.
    pub fn cmdline(mut self, cmdline: impl Into<String>) -> Self {
        self.0.cmdline = cmdline.into();
        self
    }
    /// The paravirtual interface.
    pub fn interface(mut self, interface: Interface) -> Self {
        self.0.interface = interface;
        self
    }
    /// Wall-clock limit of a run (`Duration::ZERO`: none).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.0.timeout = timeout;
        self
    }
    /// Adds a disk (and raises `max_disks` to fit it).
    pub fn disk(mut self, disk: DiskConfig) -> Self {
        self.0.disks.push(disk);
        self.0.max_disks = self.0.max_disks.max(self.0.disks.len());
        self
    }
    /// Which disks and NICs sit on the VMBus instead of virtio-mmio.
    pub fn vmbus(mut self, vmbus: crate::vmbus::VmbusConfig) -> Self {
        self.0.vmbus = vmbus;
        self
    }
    /// Whether disks are virtio-blk devices or virtio-scsi controllers.
    pub fn disk_bus(mut self, bus: DiskBus) -> Self {
        self.0.disk_bus = bus;
        self
    }
    /// Adds a NIC (and raises `max_nics` to fit it).
    pub fn net(mut self, net: NetConfig) -> Self {
        self.0.nets.push(net);
        self.0.max_nics = self.0.max_nics.max(self.0.nets.len());
        self
    }
    /// The Hyper-V vendor signature and privileges.
    pub fn hyperv(mut self, hyperv: crate::hv_config::HvConfig) -> Self {
        self.0.hyperv = hyperv;
        self
    }
    /// Whether the VMM's threads run under their seccomp allow-lists.
    pub fn seccomp(mut self, on: bool) -> Self {
        self.0.seccomp = on;
        self
    }
    /// Whether the nested-host fixes for stock kernels apply ([`VmConfig::nested_fixes`]).
    pub fn nested_fixes(mut self, on: bool) -> Self {
        self.0.nested_fixes = on;
        self
    }
    /// Deliberate misbehaviour to inject.
    #[cfg(feature = "fault-injection")]
    pub fn fault(mut self, fault: Fault) -> Self {
        self.0.fault = Some(fault);
        self
    }
    /// The finished configuration.
    pub fn build(self) -> VmConfig {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_sets_fields_and_keeps_defaults() {
        let c = VmConfig::builder("k.elf")
            .memory_mib(16)
            .cpus(2)
            .cmdline("quiet")
            .interface(Interface::Xen)
            .timeout(Duration::from_secs(5))
            .disk("d.img".parse().unwrap())
            .disk("e.img".parse().unwrap())
            .build();
        assert_eq!(c.kernel, PathBuf::from("k.elf"));
        assert_eq!((c.memory_mib, c.cpus), (16, 2));
        assert_eq!(c.cmdline, "quiet");
        assert_eq!(c.interface, Interface::Xen);
        assert_eq!(c.timeout, Duration::from_secs(5));
        assert_eq!((c.disks.len(), c.max_disks), (2, 2));
        assert_eq!((c.nets.len(), c.max_nics), (0, 1));
        assert_eq!(c.initrd, None);
        assert!(c.seccomp, "seccomp is on by default");
        assert!(!VmConfig::builder("k").seccomp(false).build().seccomp);
        assert!(!c.nested_fixes, "nested fixes are off unless asked for");
        assert!(
            VmConfig::builder("k")
                .nested_fixes(true)
                .build()
                .nested_fixes
        );
    }
}
