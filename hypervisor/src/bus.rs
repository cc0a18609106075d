//! The guest's MMIO bus: the contract between the VM's exit loop and its devices.

/// A device on the guest's MMIO bus. `offset` is relative to the device's base address.
/// Implementations must accept any offset and any access size a guest can produce
/// (unknown registers read as zero and ignore writes) and must never panic.
pub trait MmioDevice: Send {
    fn read(&mut self, offset: u64, data: &mut [u8]);
    fn write(&mut self, offset: u64, data: &[u8]);
}
