//! The guest's MMIO bus: the contract between the VM's exit loop and its devices.

/// A device on the guest's MMIO bus. `offset` is relative to the device's base address.
/// Implementations must accept any offset and any access size a guest can produce
/// (unknown registers read as zero and ignore writes) and must never panic.
pub trait MmioDevice: Send {
    /// A guest read of `data.len()` bytes at `offset`; fill `data`.
    fn read(&mut self, offset: u64, data: &mut [u8]);
    /// A guest write of `data` at `offset`.
    fn write(&mut self, offset: u64, data: &[u8]);
}

use crate::layout::{VIRTIO_FIRST_GSI, VIRTIO_MMIO_BASE, VIRTIO_MMIO_SIZE};
use std::sync::Mutex;

/// One device window on the bus. Each device has its own lock: an access waits only for
/// other accesses to the same device (a virtio reset, which waits for the device's worker
/// thread, does not stall the other devices' vCPUs).
pub struct MmioSlot {
    /// First guest-physical address of the window.
    pub base: u64,
    /// Size of the window in bytes.
    pub size: u64,
    /// The GSI the device raises its interrupt on.
    pub gsi: u32,
    /// The device, behind its own lock.
    pub dev: Mutex<Box<dyn MmioDevice>>,
}

/// The VM's MMIO bus. Virtio-mmio devices are placed from 0xd000_0000 upward, 0x1000 apart,
/// with GSIs from 5 upward ([`crate::layout`]); each is announced on the kernel command line as
/// `virtio_mmio.device=4K@0xd0000000:5` and reserved in the guest's memory map.
#[derive(Default)]
pub struct MmioBus {
    slots: Vec<MmioSlot>,
}

impl MmioBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    /// Where the next device will go: (base address, GSI).
    pub fn next_slot(&self) -> (u64, u32) {
        let i = self.slots.len() as u64;
        (
            VIRTIO_MMIO_BASE + i * VIRTIO_MMIO_SIZE,
            VIRTIO_FIRST_GSI + i as u32,
        )
    }

    /// Adds a virtio-mmio device at [`MmioBus::next_slot`]; returns its (base, GSI).
    pub fn add_virtio(&mut self, dev: Box<dyn MmioDevice>) -> (u64, u32) {
        let (base, gsi) = self.next_slot();
        self.slots.push(MmioSlot {
            base,
            size: VIRTIO_MMIO_SIZE,
            gsi,
            dev: Mutex::new(dev),
        });
        (base, gsi)
    }

    /// Inserts a device already placed by its caller (e.g. `virtio::attach`); refuses a
    /// window that overlaps another.
    pub fn insert(
        &mut self,
        base: u64,
        size: u64,
        gsi: u32,
        dev: Box<dyn MmioDevice>,
    ) -> Result<(), String> {
        let end = base
            .checked_add(size)
            .ok_or_else(|| format!("MMIO window {base:#x}+{size:#x} overflows"))?;
        if let Some(o) = self
            .slots
            .iter()
            .find(|s| base < s.base + s.size && s.base < end)
        {
            return Err(format!(
                "MMIO window {base:#x}+{size:#x} overlaps the device at {:#x}",
                o.base
            ));
        }
        self.slots.push(MmioSlot {
            base,
            size,
            gsi,
            dev: Mutex::new(dev),
        });
        Ok(())
    }

    /// Kernel command-line entries announcing the devices.
    pub fn cmdline_entries(&self) -> Vec<String> {
        self.slots
            .iter()
            .map(|s| {
                format!(
                    "virtio_mmio.device={}K@{:#x}:{}",
                    s.size / 1024,
                    s.base,
                    s.gsi
                )
            })
            .collect()
    }

    /// Each device's (base, size, GSI), in bus order (the DSDT lists them: [`crate::acpi`]).
    pub fn windows(&self) -> Vec<(u64, u64, u32)> {
        self.slots.iter().map(|s| (s.base, s.size, s.gsi)).collect()
    }

    /// Address ranges to mark reserved in the memory map.
    pub fn reserved(&self) -> Vec<(u64, u64)> {
        self.slots.iter().map(|s| (s.base, s.size)).collect()
    }

    /// The device covering `addr` and the offset into it.
    pub fn find(&self, addr: u64) -> Option<(&Mutex<Box<dyn MmioDevice>>, u64)> {
        self.slots
            .iter()
            .find(|s| addr >= s.base && addr - s.base < s.size)
            .map(|s| (&s.dev, addr - s.base))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Reg(u8);
    impl MmioDevice for Reg {
        fn read(&mut self, _offset: u64, data: &mut [u8]) {
            data.fill(self.0);
        }
        fn write(&mut self, _offset: u64, data: &[u8]) {
            self.0 = data[0];
        }
    }

    #[test]
    fn placement_follows_the_contract() {
        let mut bus = MmioBus::new();
        assert_eq!(bus.add_virtio(Box::new(Reg(1))), (0xd000_0000, 5));
        assert_eq!(bus.add_virtio(Box::new(Reg(2))), (0xd000_1000, 6));
        assert_eq!(
            bus.cmdline_entries(),
            vec![
                "virtio_mmio.device=4K@0xd0000000:5",
                "virtio_mmio.device=4K@0xd0001000:6"
            ]
        );
        assert_eq!(
            bus.reserved(),
            vec![(0xd000_0000, 0x1000), (0xd000_1000, 0x1000)]
        );
        let (dev, off) = bus.find(0xd000_1ff8).unwrap();
        assert_eq!(off, 0xff8);
        let mut b = [0u8; 2];
        dev.lock().unwrap().read(off, &mut b);
        assert_eq!(b, [2, 2]);
        assert!(bus.find(0xd000_2000).is_none());
        assert!(bus
            .insert(0xd000_1800, 0x1000, 9, Box::new(Reg(3)))
            .is_err());
        assert!(bus.insert(0xd000_2000, 0x1000, 7, Box::new(Reg(3))).is_ok());
        assert_eq!(bus.find(0xd000_2004).unwrap().1, 4);
    }
}
