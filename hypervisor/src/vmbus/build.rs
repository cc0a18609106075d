//! The VMBus devices of a VM: one storvsc per disk, one netvsc per NIC (with the MACs the
//! virtio NICs would get), each instance GUID offset by its index so that two controllers
//! are two devices to the guest.
use crate::devices::virtio::{mac_for, DiskConfig, NetConfig};
use crate::Error;

use super::device::{ChannelCtx, DeviceError, Guid, Packet, VmbusDevice};
use super::netvsc::NetVsc;
use super::storvsc::StorVsc;
use super::VmbusConfig;

/// A device whose instance GUID's last byte is offset by its index among devices of its
/// class (the device models have one fixed instance GUID; two controllers need two).
struct Indexed {
    inner: Box<dyn VmbusDevice>,
    index: u8,
}

impl VmbusDevice for Indexed {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn class_id(&self) -> Guid {
        self.inner.class_id()
    }
    fn instance_id(&self) -> Guid {
        let mut g = self.inner.instance_id();
        g[15] = g[15].wrapping_add(self.index);
        g
    }
    fn on_packet(&mut self, ctx: &mut dyn ChannelCtx, pkt: &Packet) -> Result<(), DeviceError> {
        self.inner.on_packet(ctx, pkt)
    }
    fn poll(&mut self, ctx: &mut dyn ChannelCtx) -> Result<(), DeviceError> {
        self.inner.poll(ctx)
    }
    fn on_close(&mut self) {
        self.inner.on_close()
    }
}

/// The VMBus devices of a VM: one storvsc per disk (when `cfg.disks`), then one netvsc per
/// NIC (when `cfg.nics`, MACs as the virtio NICs get them).
pub fn build_devices(
    cfg: VmbusConfig,
    disks: &[DiskConfig],
    nets: &[NetConfig],
) -> Result<Vec<Box<dyn VmbusDevice>>, Error> {
    let mut devs: Vec<Box<dyn VmbusDevice>> = Vec::new();
    if cfg.disks {
        for (i, d) in disks.iter().enumerate() {
            devs.push(Box::new(Indexed {
                inner: Box::new(StorVsc::new(d)?),
                index: i as u8,
            }));
        }
    }
    if cfg.nics {
        for (i, n) in nets.iter().enumerate() {
            devs.push(Box::new(Indexed {
                inner: Box::new(NetVsc::new(n, mac_for(i))?),
                index: i as u8,
            }));
        }
    }
    if devs.len() > super::MAX_DEVICES {
        return Err(Error::Config(format!(
            "{} VMBus devices requested; at most {} are supported",
            devs.len(),
            super::MAX_DEVICES
        )));
    }
    Ok(devs)
}
