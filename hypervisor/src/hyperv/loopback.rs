//! A test hook, not part of a production build: the SynIC loopback connection. Compiled
//! only for unit tests and with the `fault-injection` feature, and registered only when a
//! VM is built with `Fault::SynicLoopback`.
//!
//! Connection ids [`LOOPBACK_BASE`]`+n` (n = 0..15) send back to the calling VP's SINT n:
//! HvCallPostMessage posts the same message type and payload into its SIMP slot,
//! HvCallSignalEvent sets the flag in its SIEFP block. So a guest can drive the SynIC's
//! message and event delivery itself, before a VMBus exists.
use std::sync::{Arc, Weak};

use vm_memory::GuestMemoryMmap;

use super::synic::{HvConnections, HvMessage, Synic, SynicError};
use crate::abi::hv::{
    HV_STATUS_INVALID_CONNECTION_ID, HV_STATUS_INVALID_PARAMETER, HV_STATUS_SUCCESS,
};
use crate::abi::hv_synic::{HV_STATUS_INSUFFICIENT_BUFFERS, SINT_COUNT};

/// The first loopback connection id (SINT 0); SINT n is this + n.
pub const LOOPBACK_BASE: u32 = 0x7e50;

/// The loopback connections of one VM.
pub struct Loopback {
    synic: Weak<Synic>,
    mem: GuestMemoryMmap,
}

impl Loopback {
    /// Loopback for `synic` (held weakly: the SynIC holds this).
    pub fn new(synic: &Arc<Synic>, mem: GuestMemoryMmap) -> Loopback {
        Loopback {
            synic: Arc::downgrade(synic),
            mem,
        }
    }

    fn sint(id: u32) -> Option<u8> {
        let n = id.checked_sub(LOOPBACK_BASE)?;
        (n < SINT_COUNT as u32).then_some(n as u8)
    }
}

/// The HV_STATUS for a delivery error.
fn status(e: SynicError) -> u16 {
    match e {
        SynicError::QueueFull => HV_STATUS_INSUFFICIENT_BUFFERS,
        _ => HV_STATUS_INVALID_PARAMETER,
    }
}

impl HvConnections for Loopback {
    fn post_message(&self, vp: u32, id: u32, message_type: u32, payload: &[u8]) -> u16 {
        let (Some(sint), Some(s)) = (Self::sint(id), self.synic.upgrade()) else {
            return HV_STATUS_INVALID_CONNECTION_ID;
        };
        let msg = HvMessage {
            message_type,
            payload: payload.to_vec(),
        };
        match s.post_message(&self.mem, vp, sint, &msg) {
            Ok(()) => HV_STATUS_SUCCESS,
            Err(e) => status(e),
        }
    }

    fn signal_event(&self, vp: u32, id: u32, flag: u16) -> u16 {
        let (Some(sint), Some(s)) = (Self::sint(id), self.synic.upgrade()) else {
            return HV_STATUS_INVALID_CONNECTION_ID;
        };
        match s.signal_event(&self.mem, vp, sint, u32::from(flag)) {
            Ok(_) => HV_STATUS_SUCCESS,
            Err(e) => status(e),
        }
    }
}
