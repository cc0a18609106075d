//! Guest devices and the buses they sit on: legacy port-I/O devices on the port bus, virtio
//! devices (virtio-mmio transport) on the MMIO bus.
pub mod bus;
pub mod legacy;
pub mod port_bus;
pub mod virtio;
