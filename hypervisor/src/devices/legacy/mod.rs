//! Legacy port-I/O devices: COM1 ([`serial`]) and the status port ([`status`]), placed on
//! the VM's [`PortBus`](crate::devices::port_bus::PortBus) at the ports in
//! [`crate::layout`].
pub mod serial;
pub mod status;
