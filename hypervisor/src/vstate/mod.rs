//! The KVM-side state of a VM, after Firecracker's `vstate`: [`vm`] builds the VM from a
//! configuration, `vcpu` creates the vCPUs and runs their threads.
pub(crate) mod vcpu;
pub mod vm;
