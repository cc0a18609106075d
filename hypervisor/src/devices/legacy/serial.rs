//! COM1: the 8250 UART of `vm-superio` at ports 0x3f8..=0x3ff, IRQ 4 through an irqfd, its
//! output into the VM's console (`src/console.rs`). A 16/32-bit access is one byte access
//! per port, as on the ISA bus: byte i goes to (or comes from) port + i; bytes past COM1's 8
//! ports are unclaimed (writes dropped and counted by the caller, reads all-ones).
use crate::console::Console;
use crate::devices::port_bus::{PortDevice, PortRead, PortWrite};
use vm_superio::serial::NoEvents;
use vm_superio::{Serial, Trigger};
use vmm_sys_util::eventfd::EventFd;

/// Ports of the UART (its register file).
pub const COM1_PORTS: u16 = 8;

/// Raises the UART's IRQ through an irqfd.
pub struct IrqTrigger(pub EventFd);

impl Trigger for IrqTrigger {
    type E = std::io::Error;
    fn trigger(&self) -> std::io::Result<()> {
        self.0.write(1)
    }
}

/// The COM1 UART as a port device.
pub struct Com1(Serial<IrqTrigger, NoEvents, Console>);

impl Com1 {
    /// A UART raising `irq` and writing to `console`.
    pub fn new(irq: IrqTrigger, console: Console) -> Self {
        Com1(Serial::new(irq, console))
    }
}

/// The UART register of byte `i` of an access at `offset`, if it falls on COM1.
fn reg(offset: u16, i: usize) -> Option<u8> {
    let r = usize::from(offset) + i;
    (r < usize::from(COM1_PORTS)).then_some(r as u8)
}

impl PortDevice for Com1 {
    fn read(&mut self, offset: u16, data: &mut [u8]) -> PortRead {
        for (i, b) in data.iter_mut().enumerate() {
            *b = reg(offset, i).map_or(0xff, |r| self.0.read(r));
        }
        PortRead::Done
    }

    fn write(&mut self, offset: u16, data: &[u8]) -> PortWrite {
        for (i, b) in data.iter().enumerate() {
            let Some(r) = reg(offset, i) else {
                return PortWrite::PastEnd { from: i };
            };
            if let Err(e) = self.0.write(r, *b) {
                tracing::debug!("COM1 write: {e:?}");
            }
        }
        PortWrite::Done
    }
}
