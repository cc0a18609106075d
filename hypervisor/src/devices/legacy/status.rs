//! The status port (0xf4): a write of any width (zero-extended; 32-bit is the convention)
//! ends the VM with that value. Reads are unclaimed.
use crate::devices::port_bus::{PortDevice, PortRead, PortWrite};

/// The status port as a port device.
#[derive(Clone, Copy, Debug, Default)]
pub struct StatusPort;

/// The little-endian value of an access of up to 8 bytes (zero-extended).
pub(crate) fn le_value(data: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = data.len().min(8);
    b[..n].copy_from_slice(&data[..n]);
    u64::from_le_bytes(b)
}

impl PortDevice for StatusPort {
    fn read(&mut self, _offset: u16, _data: &mut [u8]) -> PortRead {
        PortRead::Unclaimed
    }

    fn write(&mut self, _offset: u16, data: &[u8]) -> PortWrite {
        PortWrite::End(le_value(data) as u32)
    }
}
