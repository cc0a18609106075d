//! [`VmbusHost`]: the connection state machine fed by the guest's HvCallPostMessage
//! payloads, the channels and their devices, and the entry points the VM calls.
use std::sync::{Arc, Mutex};

use vm_memory::GuestMemoryMmap;

use crate::abi::hv::{
    HV_STATUS_INVALID_CONNECTION_ID, HV_STATUS_INVALID_PARAMETER, HV_STATUS_SUCCESS,
};
use crate::abi::hv_synic::HV_STATUS_INSUFFICIENT_BUFFERS;
use crate::abi::vmbus::*;

use super::channel::{Channel, Open, State};
use super::device::VmbusDevice;
use super::gpadl::{GpadlError, GpadlTable, Progress};
use super::msg::{self, Incoming, Offer};
use super::ring::Ring;
use super::VmbusSink;

/// Most devices one VMBus offers.
pub const MAX_DEVICES: usize = 64;

/// Why a VMBus could not be built.
#[derive(Debug, thiserror::Error)]
pub enum VmbusError {
    /// More devices than [`MAX_DEVICES`].
    #[error("{0} VMBus devices requested; at most {MAX_DEVICES} are supported")]
    TooManyDevices(usize),
}

/// The negotiated connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Connection {
    /// Protocol version.
    pub version: u32,
    /// VP the host's messages go to.
    pub target_vp: u32,
    /// SINT they go to.
    pub msg_sint: u8,
}

/// A snapshot of the host's state (for tests and logs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VmbusStatus {
    /// The connection, once INITIATE_CONTACT succeeded.
    pub connection: Option<Connection>,
    /// Relids of open channels.
    pub open: Vec<u32>,
    /// Relids of failed channels and why.
    pub failed: Vec<(u32, String)>,
    /// GPADLs pending or established.
    pub gpadls: usize,
    /// Guest messages refused as malformed or out of place.
    pub bad_messages: u64,
}

struct Inner {
    mem: GuestMemoryMmap,
    sink: Arc<dyn VmbusSink>,
    conn: Option<Connection>,
    gpadls: GpadlTable,
    channels: Vec<Channel>,
    bad_messages: u64,
    /// An answer could not be queued during the current message.
    post_failed: bool,
}

/// The host side of one VM's VMBus.
pub struct VmbusHost {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for VmbusHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VmbusHost").finish_non_exhaustive()
    }
}

impl VmbusHost {
    /// A VMBus over guest memory `mem`, answering through `sink`, offering `devices` (relids
    /// 1, 2, ... in this order).
    pub fn new(
        mem: GuestMemoryMmap,
        sink: Arc<dyn VmbusSink>,
        devices: Vec<Box<dyn VmbusDevice>>,
    ) -> Result<VmbusHost, VmbusError> {
        if devices.len() > MAX_DEVICES {
            return Err(VmbusError::TooManyDevices(devices.len()));
        }
        let channels = devices
            .into_iter()
            .zip(1u32..)
            .map(|(device, relid)| Channel {
                relid,
                connection_id: CHANNEL_CONNECTION_ID_BASE + relid,
                device,
                state: State::Closed,
            })
            .collect();
        Ok(VmbusHost {
            inner: Mutex::new(Inner {
                mem,
                sink,
                conn: None,
                gpadls: GpadlTable::default(),
                channels,
                bad_messages: 0,
                post_failed: false,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// HvCallPostMessage from VP `vp` to `connection_id`: a channel message. Returns the
    /// HV_STATUS of the hypercall.
    pub fn on_post_message(
        &self,
        vp: u32,
        connection_id: u32,
        message_type: u32,
        payload: &[u8],
    ) -> u16 {
        if connection_id != MESSAGE_CONNECTION_ID && connection_id != MESSAGE_CONNECTION_ID_4 {
            return HV_STATUS_INVALID_CONNECTION_ID;
        }
        if message_type != HV_MESSAGE_TYPE_CHANNEL || payload.len() > MAX_MESSAGE_PAYLOAD {
            return HV_STATUS_INVALID_PARAMETER;
        }
        let mut g = self.lock();
        g.post_failed = false;
        match msg::parse(payload) {
            Ok(m) => g.handle(connection_id, m),
            Err(e) => {
                g.bad_messages += 1;
                tracing::debug!(vp, "vmbus: refused channel message: {e}");
            }
        }
        if g.post_failed {
            HV_STATUS_INSUFFICIENT_BUFFERS
        } else {
            HV_STATUS_SUCCESS
        }
    }

    /// HvCallSignalEvent to `connection_id`: the guest kicked a channel; drain its ring.
    pub fn on_signal_event(&self, _vp: u32, connection_id: u32, _flag: u16) -> u16 {
        let mut g = self.lock();
        let Inner {
            mem,
            sink,
            gpadls,
            channels,
            ..
        } = &mut *g;
        if connection_id == EVENT_CONNECTION_ID {
            // The shared event connection: service every open channel.
            for c in channels.iter_mut() {
                c.service(mem, gpadls, sink.as_ref(), true, false);
            }
            return HV_STATUS_SUCCESS;
        }
        match channels
            .iter_mut()
            .find(|c| c.connection_id == connection_id)
        {
            Some(c) => {
                c.service(mem, gpadls, sink.as_ref(), true, false);
                HV_STATUS_SUCCESS
            }
            None => HV_STATUS_INVALID_CONNECTION_ID,
        }
    }

    /// Device-initiated work and anything left in the rings: services every open channel.
    pub fn poll(&self) {
        let mut g = self.lock();
        let Inner {
            mem,
            sink,
            gpadls,
            channels,
            ..
        } = &mut *g;
        for c in channels.iter_mut() {
            c.service(mem, gpadls, sink.as_ref(), true, true);
        }
    }

    /// Connection ids the guest signals channels with, by relid (for the VM's routing).
    pub fn connection_ids(&self) -> Vec<(u32, u32)> {
        let g = self.lock();
        g.channels
            .iter()
            .map(|c| (c.relid, c.connection_id))
            .collect()
    }

    /// A snapshot of the state.
    pub fn status(&self) -> VmbusStatus {
        let g = self.lock();
        let mut s = VmbusStatus {
            connection: g.conn,
            gpadls: g.gpadls.len(),
            bad_messages: g.bad_messages,
            ..VmbusStatus::default()
        };
        for c in &g.channels {
            match &c.state {
                State::Open(_) => s.open.push(c.relid),
                State::Failed(why) => s.failed.push((c.relid, why.clone())),
                State::Closed => {}
            }
        }
        s
    }
}

impl Inner {
    fn post(&mut self, bytes: &[u8]) {
        let Some(c) = self.conn else { return };
        self.post_to(c.target_vp, c.msg_sint, bytes);
    }

    fn post_to(&mut self, vp: u32, sint: u8, bytes: &[u8]) {
        if !self
            .sink
            .post_message(vp, sint, HV_MESSAGE_TYPE_CHANNEL, bytes)
        {
            self.post_failed = true;
        }
    }

    fn bad(&mut self, why: &str) {
        self.bad_messages += 1;
        tracing::debug!("vmbus: {why}");
    }

    fn channel(&mut self, relid: u32) -> Option<&mut Channel> {
        self.channels.iter_mut().find(|c| c.relid == relid)
    }

    /// Closes every channel and forgets every GPADL.
    fn reset(&mut self) {
        for c in &mut self.channels {
            c.close();
        }
        self.gpadls.clear();
    }

    fn handle(&mut self, connection_id: u32, m: Incoming) {
        if let Incoming::InitiateContact {
            version,
            target_vcpu,
            msg_sint,
            interrupt_page: _,
        } = m
        {
            return self.initiate_contact(connection_id, version, target_vcpu, msg_sint);
        }
        if self.conn.is_none() {
            return self.bad("channel message before INITIATE_CONTACT");
        }
        match m {
            Incoming::InitiateContact { .. } => {}
            Incoming::RequestOffers => {
                let offers: Vec<Vec<u8>> = self
                    .channels
                    .iter()
                    .map(|c| {
                        msg::offer_channel(&Offer {
                            class_id: c.device.class_id(),
                            instance_id: c.device.instance_id(),
                            relid: c.relid,
                            connection_id: c.connection_id,
                        })
                    })
                    .collect();
                for o in offers {
                    self.post(&o);
                }
                self.post(&msg::header_only(CHANNELMSG_ALLOFFERS_DELIVERED));
            }
            Incoming::GpadlHeader {
                relid,
                gpadl,
                range_buflen,
                range_count,
                words,
            } => {
                let r =
                    self.gpadls
                        .header(&self.mem, relid, gpadl, range_buflen, range_count, &words);
                self.gpadl_progress(relid, gpadl, r);
            }
            Incoming::GpadlBody { gpadl, words } => {
                let relid = self.gpadls.pending_relid(gpadl).unwrap_or(0);
                let r = self.gpadls.body(&self.mem, gpadl, &words);
                self.gpadl_progress(relid, gpadl, r);
            }
            Incoming::GpadlTeardown { relid: _, gpadl } => {
                // Teardown of a GPADL a channel is open on closes that channel first: the
                // guest is about to reuse the pages, so the host must never touch them
                // again (refusing would leave the guest waiting for TORNDOWN forever).
                for c in &mut self.channels {
                    if c.uses_gpadl(gpadl) {
                        tracing::warn!(
                            relid = c.relid,
                            "vmbus: ring GPADL {gpadl:#x} torn down while open; channel closed"
                        );
                        c.close();
                    }
                }
                if self.gpadls.remove(gpadl) {
                    self.post(&msg::gpadl_torndown(gpadl));
                } else {
                    self.bad("GPADL_TEARDOWN of an unknown GPADL");
                }
            }
            Incoming::OpenChannel {
                relid,
                open_id,
                ring_gpadl,
                target_vp,
                downstream_offset,
            } => {
                let status = match self.open(relid, ring_gpadl, target_vp, downstream_offset) {
                    Ok(()) => 0,
                    Err((status, why)) => {
                        self.bad(why);
                        status
                    }
                };
                self.post(&msg::open_result(relid, open_id, status));
            }
            Incoming::CloseChannel { relid } => match self.channel(relid) {
                Some(c) => c.close(),
                None => self.bad("CLOSECHANNEL of an unknown relid"),
            },
            Incoming::RelidReleased { .. } => {}
            Incoming::ModifyChannel { relid, target_vp } => {
                let status = match self.channel(relid).map(|c| &mut c.state) {
                    Some(State::Open(o)) => {
                        o.target_vp = target_vp;
                        0
                    }
                    _ => STATUS_INVALID_PARAMETER,
                };
                if self.conn.is_some_and(|c| c.version >= VERSION_WIN10_V5_3) {
                    self.post(&msg::modify_channel_response(relid, status));
                }
            }
            Incoming::Unload => {
                self.reset();
                self.post(&msg::header_only(CHANNELMSG_UNLOAD_RESPONSE));
                self.conn = None;
            }
            Incoming::Unsupported(t) => {
                self.bad_messages += 1;
                tracing::debug!("vmbus: unsupported channel message type {t}");
            }
        }
    }

    fn initiate_contact(
        &mut self,
        connection_id: u32,
        version: u32,
        target_vcpu: u32,
        msg_sint: u8,
    ) {
        let ok = SUPPORTED_VERSIONS.contains(&version) && msg_sint < 16;
        // A new contact starts over (kexec, a reloaded driver).
        self.reset();
        self.conn = None;
        let sint = if msg_sint < 16 {
            msg_sint
        } else {
            MESSAGE_SINT
        };
        if !ok {
            self.bad("INITIATE_CONTACT with a version not spoken");
            return self.post_to(target_vcpu, sint, &msg::version_response(false, 0));
        }
        let conn_id = if version >= VERSION_WIN10_V5 {
            connection_id
        } else {
            0
        };
        self.conn = Some(Connection {
            version,
            target_vp: target_vcpu,
            msg_sint: sint,
        });
        self.post(&msg::version_response(true, conn_id));
    }

    fn gpadl_progress(&mut self, relid: u32, gpadl: u32, r: Result<Progress, GpadlError>) {
        match r {
            Ok(Progress::Incomplete) => {}
            Ok(Progress::Created { relid }) => self.post(&msg::gpadl_created(relid, gpadl, 0)),
            Err(e) => {
                self.bad(&e.to_string());
                self.post(&msg::gpadl_created(relid, gpadl, STATUS_UNSUCCESSFUL));
            }
        }
    }

    /// OPENCHANNEL: the channel, the GPADL and the split checked; the error is the status
    /// for OPENCHANNEL_RESULT and why.
    fn open(
        &mut self,
        relid: u32,
        ring_gpadl: u32,
        target_vp: u32,
        downstream_offset: u32,
    ) -> Result<(), (u32, &'static str)> {
        if !self.channels.iter().any(|c| c.relid == relid) {
            return Err((STATUS_INVALID_PARAMETER, "OPENCHANNEL of an unknown relid"));
        }
        let Some(g) = self.gpadls.get(ring_gpadl) else {
            return Err((STATUS_INVALID_PARAMETER, "OPENCHANNEL on an unknown GPADL"));
        };
        if g.ranges.first().is_none_or(|r| r.byte_offset != 0) {
            return Err((STATUS_UNSUCCESSFUL, "ring GPADL does not start on a page"));
        }
        let pfns = g.pfns();
        let off = downstream_offset as usize;
        if off < 2 || pfns.len().saturating_sub(off) < 2 {
            return Err((
                STATUS_UNSUCCESSFUL,
                "ring GPADL split leaves a ring under 2 pages",
            ));
        }
        let (up, down) = pfns.split_at(off);
        let outbound = Ring::new(up).map_err(|_| (STATUS_UNSUCCESSFUL, "bad outbound ring"))?;
        let inbound = Ring::new(down).map_err(|_| (STATUS_UNSUCCESSFUL, "bad inbound ring"))?;
        let mem = self.mem.clone();
        for r in [&outbound, &inbound] {
            if r.read_index(&mem).is_err() || r.write_index(&mem).is_err() {
                return Err((STATUS_UNSUCCESSFUL, "ring indices out of range at open"));
            }
        }
        let Some(c) = self.channel(relid) else {
            return Err((STATUS_INVALID_PARAMETER, "OPENCHANNEL of an unknown relid"));
        };
        if matches!(c.state, State::Open(_)) {
            return Err((STATUS_UNSUCCESSFUL, "OPENCHANNEL of an open channel"));
        }
        c.state = State::Open(Open {
            gpadl: ring_gpadl,
            target_vp,
            outbound,
            inbound,
            queued: Default::default(),
        });
        Ok(())
    }
}
