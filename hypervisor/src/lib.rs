//! A KVM virtual machine monitor: guest memory, vCPUs, boot, exits, a Hyper-V-style
//! hypercall interface, a Xen-compatibility adapter and virtio devices.
//!
//! The public entry points are [`VmConfig`], [`Vm::new`] and [`Vm::run`]. Guest-visible
//! conventions (ports, MSRs, CPUID leaves) are documented in [`layout`], [`abi`], [`hyperv`]
//! and [`xen`]; the exit-handling rules are documented in [`exits`].
//!
//! Layout by concern: [`config`] and [`error`] (what a VM is built from, what can fail),
//! [`vstate`] (building the VM, the vCPUs and their threads), [`run`] (the run loop and
//! watchdog), [`exits`] (exit dispatch) and [`hypercall`] (hypercall entry), [`devices`]
//! (port bus with COM1 and the status port, MMIO bus with the virtio devices), [`abi`]
//! (Hyper-V and Xen definitions as pure data), [`hyperv`] and [`xen`] (their semantics),
//! [`boot`] and [`acpi`] (the firmware tables every guest gets), [`cpuid`], [`pagewalk`],
//! [`regs`], [`platform`] (what a stock kernel needs on a nested, software-assisted host);
//! [`seccomp`] (the threads' allow-lists).

pub mod abi;
pub mod acpi;
mod apic_msr;
pub mod boot;
pub mod config;
mod console;
pub mod cpuid;
pub mod devices;
pub mod error;
pub mod exits;
pub mod hv_config;
pub mod hypercall;
pub mod hyperv;
mod kvm_stats;
pub mod layout;
pub mod outcome;
pub mod pagewalk;
pub mod platform;
pub mod regs;
pub mod run;
pub mod seccomp;
mod state;
pub mod vmbus;
mod vp_requests;
pub mod vstate;
pub mod xen;

#[cfg(feature = "fault-injection")]
pub use config::Fault;
pub use config::{Interface, VmConfig, VmConfigBuilder};
pub use devices::virtio::{DiskBus, DiskConfig, NetConfig};
/// The MMIO bus and the virtio devices, at their former paths `hypervisor::bus` and
/// `hypervisor::virtio`.
pub use devices::{bus, virtio};
pub use error::Error;
pub use hv_config::{HvConfig, HvFeatures};
pub use outcome::{RunOutcome, VmEnd};
pub use run::{teardowns_pending, wait_for_teardowns};
pub use vstate::vm::Vm;
