//! A VM's VMBus: which devices go on it ([`VmbusConfig`]), and hooking the host into the
//! SynIC: the SynIC's connections route the
//! guest's HvCallPostMessage / HvCallSignalEvent to a [`VmbusRuntime`], and the host answers
//! through [`SynicSink`] (messages into the SIMP slot, event flags into the SIEFP page).
use std::sync::{Arc, Weak};

use vm_memory::GuestMemoryMmap;

use crate::hyperv::{HvConnections, HvMessage, Synic};
use crate::Error;

use super::device::VmbusDevice;
use super::{VmbusHost, VmbusRuntime, VmbusSink};

/// Which of a VM's disks and NICs sit on the VMBus (storvsc, netvsc) instead of
/// virtio-mmio. The VMBus needs the Hyper-V interface (its SynIC).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VmbusConfig {
    /// Every disk is a synthetic SCSI controller (storvsc) with the disk as LUN 0.
    pub disks: bool,
    /// Every NIC is a synthetic network adapter (netvsc).
    pub nics: bool,
}

impl VmbusConfig {
    /// Whether the VM gets a VMBus at all.
    pub fn enabled(&self) -> bool {
        self.disks || self.nics
    }
}

/// The host's answers into the SynIC. Holds the SynIC weakly: the SynIC owns the
/// connections, which own the host, which owns this sink.
pub struct SynicSink {
    synic: Weak<Synic>,
    mem: GuestMemoryMmap,
}

impl VmbusSink for SynicSink {
    fn post_message(&self, vp: u32, sint: u8, message_type: u32, payload: &[u8]) -> bool {
        let Some(s) = self.synic.upgrade() else {
            return false;
        };
        let msg = HvMessage {
            message_type,
            payload: payload.to_vec(),
        };
        match s.post_message(&self.mem, vp, sint, &msg) {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(vp, sint, "vmbus: message not delivered: {e}");
                false
            }
        }
    }
    fn signal_event(&self, vp: u32, sint: u8, flag: u32) {
        if let Some(s) = self.synic.upgrade() {
            if let Err(e) = s.signal_event(&self.mem, vp, sint, flag) {
                tracing::debug!(vp, sint, flag, "vmbus: event not delivered: {e}");
            }
        }
    }
}

impl HvConnections for VmbusRuntime {
    fn post_message(&self, vp: u32, connection_id: u32, message_type: u32, payload: &[u8]) -> u16 {
        VmbusRuntime::post_message(self, vp, connection_id, message_type, payload)
    }
    fn signal_event(&self, vp: u32, connection_id: u32, flag: u16) -> u16 {
        VmbusRuntime::signal_event(self, vp, connection_id, flag)
    }
}

/// Builds the VMBus host over `devices`, starts its worker and registers it as the SynIC's
/// connections. The runtime lives as long as the SynIC holds it.
pub fn attach(
    synic: &Arc<Synic>,
    mem: &GuestMemoryMmap,
    devices: Vec<Box<dyn VmbusDevice>>,
    seccomp: bool,
) -> Result<Arc<VmbusRuntime>, Error> {
    let sink = Arc::new(SynicSink {
        synic: Arc::downgrade(synic),
        mem: mem.clone(),
    });
    let host =
        VmbusHost::new(mem.clone(), sink, devices).map_err(|e| Error::Config(e.to_string()))?;
    let rt = Arc::new(VmbusRuntime::start(Arc::new(host), seccomp)?);
    synic.set_connections(rt.clone());
    Ok(rt)
}
