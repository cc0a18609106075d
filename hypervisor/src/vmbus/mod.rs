//! The host side of VMBus: channel management over SynIC messages, GPADLs, ring buffers in
//! guest pages, and the devices on the bus ([`device::VmbusDevice`]): [`storvsc`] (SCSI)
//! and [`netvsc`] (network, RNDIS in [`rndis`]).
//!
//! How it fits together:
//! - The guest posts channel messages with HvCallPostMessage to connection 1 (or 4 from
//!   protocol 5.0 on); the VM hands them to [`VmbusHost::on_post_message`]. The host answers
//!   through a [`VmbusSink`] (the SynIC: a message into the SIMP slot of the SINT the guest
//!   named, [`crate::abi::vmbus::MESSAGE_SINT`] = 2).
//! - Versions WIN8 (2.4) through WIN10 5.3 are accepted; anything else gets a
//!   VERSION_RESPONSE with version_supported = 0 and the guest tries the next one. From 5.0
//!   on the response names the connection id the contact came on as the message
//!   connection id.
//! - Offers: one per device, relids 1, 2, ... in the order given, connection id
//!   [`crate::abi::vmbus::CHANNEL_CONNECTION_ID_BASE`] + relid. No monitor id is allocated
//!   (monitored notification is not implemented): `monitor_allocated = 0` makes Linux
//!   signal each kick with HvCallSignalEvent on the channel's connection id, which
//!   [`VmbusHost::on_signal_event`] turns into draining that channel's ring. The interrupt
//!   is dedicated (the connection id names the channel; no interrupt-page bit).
//! - Host → guest interrupts: the SIEFP event flag numbered by the relid on SINT 2 of the
//!   channel's target VP (the Windows 8 and later scheme), through the sink.
//! - Rings and packets: [`ring`] and [`channel`] say the signalling rules; GPADLs:
//!   [`gpadl`]; what happens on bad input: each module's docs. Nothing a guest sends panics
//!   the VMM; guest memory is reached only through vm-memory's bounds-checked accessors.
//! - GPADL teardown while a channel is open on it closes that channel, then answers
//!   GPADL_TORNDOWN.
pub mod attach;
pub mod build;
pub mod channel;
pub mod device;
pub mod gpadl;
pub mod host;
pub mod msg;
pub mod netvsc;
pub mod packet;
pub mod ring;
pub mod rndis;
pub mod storvsc;
pub mod worker;

#[cfg(test)]
mod tests;

pub use attach::VmbusConfig;
pub use host::{Connection, VmbusError, VmbusHost, VmbusStatus, MAX_DEVICES};
pub use worker::VmbusRuntime;

/// Where the host's messages and events to the guest go (the SynIC in a VM, a recorder in
/// tests).
pub trait VmbusSink: Send + Sync {
    /// Posts a message of `message_type` with `payload` to SINT `sint` of VP `vp`; false
    /// when it could be neither delivered nor queued.
    fn post_message(&self, vp: u32, sint: u8, message_type: u32, payload: &[u8]) -> bool;
    /// Sets event flag `flag` of SINT `sint` on VP `vp` (and interrupts it).
    fn signal_event(&self, vp: u32, sint: u8, flag: u32);
}
