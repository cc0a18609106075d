//! The guest's port-I/O bus: legacy devices at fixed port ranges, looked up by the exit
//! dispatch ([`crate::exits`]) like the MMIO bus ([`crate::devices::bus`]). The hypercall
//! ports are not on it: a hypercall needs the vCPU, so the dispatch handles them itself.
use std::sync::Mutex;

/// What a port read did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortRead {
    /// The device filled the buffer.
    Done,
    /// The device does not answer reads: the caller reads all-ones and counts the access as
    /// unclaimed.
    Unclaimed,
}

/// What a port write did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortWrite {
    /// The device took every byte.
    Done,
    /// The device took the bytes before index `from`; the rest fell on ports past its
    /// range (a wide access split per port, as the ISA bus does) and are unclaimed.
    PastEnd {
        /// Index of the first byte not taken.
        from: usize,
    },
    /// The write asks the VM to end with this status (the status port).
    End(u32),
}

/// A device on the port bus. `offset` is the accessed port minus the device's base; `data`
/// is the whole access (1, 2 or 4 bytes). Implementations must never panic on guest input.
pub trait PortDevice: Send {
    /// A guest IN.
    fn read(&mut self, offset: u16, data: &mut [u8]) -> PortRead;
    /// A guest OUT.
    fn write(&mut self, offset: u16, data: &[u8]) -> PortWrite;
}

/// One device's port range on the bus.
struct PortSlot {
    base: u16,
    len: u16,
    dev: Mutex<Box<dyn PortDevice>>,
}

/// The VM's port bus: fixed once the VM is built; each device has its own lock.
#[derive(Default)]
pub struct PortBus {
    slots: Vec<PortSlot>,
}

impl PortBus {
    /// Adds `dev` at ports `base..base + len`; refuses a range that overlaps another device
    /// or wraps past port 0xffff.
    pub fn insert(&mut self, base: u16, len: u16, dev: Box<dyn PortDevice>) -> Result<(), String> {
        let end = u32::from(base) + u32::from(len);
        if end > 0x1_0000 {
            return Err(format!("port range {base:#x}+{len} wraps"));
        }
        if let Some(o) = self
            .slots
            .iter()
            .find(|s| u32::from(base) < u32::from(s.base) + u32::from(s.len) && s.base < end as u16)
        {
            return Err(format!(
                "port range {base:#x}+{len} overlaps the device at {:#x}",
                o.base
            ));
        }
        self.slots.push(PortSlot {
            base,
            len,
            dev: Mutex::new(dev),
        });
        Ok(())
    }

    /// The device covering `port` and the offset into its range.
    pub fn find(&self, port: u16) -> Option<(&Mutex<Box<dyn PortDevice>>, u16)> {
        self.slots
            .iter()
            .find(|s| port >= s.base && port - s.base < s.len)
            .map(|s| (&s.dev, port - s.base))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Nop;
    impl PortDevice for Nop {
        fn read(&mut self, _: u16, _: &mut [u8]) -> PortRead {
            PortRead::Done
        }
        fn write(&mut self, _: u16, _: &[u8]) -> PortWrite {
            PortWrite::Done
        }
    }

    #[test]
    fn finds_by_range_and_refuses_overlaps() {
        let mut b = PortBus::default();
        b.insert(0x3f8, 8, Box::new(Nop)).unwrap();
        b.insert(0xf4, 1, Box::new(Nop)).unwrap();
        assert!(b.insert(0x3ff, 2, Box::new(Nop)).is_err());
        assert!(b.insert(0xffff, 2, Box::new(Nop)).is_err());
        assert_eq!(b.find(0x3fa).map(|(_, o)| o), Some(2));
        assert_eq!(b.find(0xf4).map(|(_, o)| o), Some(0));
        assert!(b.find(0x400).is_none());
        assert!(b.find(0xf5).is_none());
    }
}
