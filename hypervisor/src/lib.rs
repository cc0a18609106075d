//! A KVM virtual machine monitor: guest memory, vCPUs, boot, exits, a Hyper-V-style
//! hypercall interface, a Xen-compatibility adapter and virtio devices.

pub mod bus;
pub mod virtio;
