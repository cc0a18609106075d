//! Guest devices and the buses they sit on: legacy port-I/O devices on the port bus, virtio
//! devices (virtio-mmio transport) on the MMIO bus, and what the device families share: the
//! SCSI target emulation ([`scsi_target`]) and the network backends ([`net_backend`]).
pub mod bus;
pub mod legacy;
pub mod net_backend;
pub mod port_bus;
pub mod scsi_target;
pub mod virtio;
