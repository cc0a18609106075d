//! One channel: its device, its state (closed, open on two rings, failed), and the servicing
//! loop that drains the guest's outbound ring into the device and writes the device's
//! answers into the guest's inbound ring.
//!
//! Rules:
//! - Draining: the interrupt mask of the guest's outbound ring is set while the host reads,
//!   cleared when the ring is empty, and the ring checked once more after clearing it (the
//!   guest signals only when the ring goes from empty to non-empty with the mask clear).
//! - After reading, the guest is signalled when it waits for room (pending-send-size
//!   protocol: feature bit, pending size, room before ≤ pending < room after).
//! - Writing: a packet is signalled when the guest's inbound-ring mask is clear and the
//!   guest had read everything before it (Linux's `hv_signal_on_write` rule). A packet that
//!   does not fit now is queued, the ring's pending send size set to what it needs, and
//!   the queue flushed when the guest signals after freeing room. At most one signal per
//!   service call: the SIEFP flag of the relid on SINT 2 of the channel's target VP.
//! - A ring index out of range, a malformed packet, a packet that can never fit, or a
//!   device's [`DeviceError::Malformed`] fails the channel: nothing more is read or written
//!   on it until the guest closes it (CLOSECHANNEL) — other channels go on. Memory and
//!   backend errors of a device are logged and the channel goes on.
use std::collections::VecDeque;

use vm_memory::GuestMemoryMmap;

use crate::abi::vmbus::MESSAGE_SINT;

use super::device::{ChannelCtx, DeviceError, OutPacket, VmbusDevice};
use super::gpadl::GpadlTable;
use super::packet;
use super::ring::{Ring, RingError, Write};
use super::VmbusSink;

/// Most packets read from one ring per service call (the rest waits for the next one).
pub const MAX_PACKETS_PER_SERVICE: usize = 1024;
/// Most packets waiting for room in the guest's inbound ring before the channel fails.
pub const MAX_QUEUED_PACKETS: usize = 4096;

/// An open channel's rings.
#[derive(Debug)]
pub struct Open {
    /// The ring GPADL.
    pub gpadl: u32,
    /// VP host → guest interrupts go to.
    pub target_vp: u32,
    /// Guest → host ring (the host reads).
    pub outbound: Ring,
    /// Host → guest ring (the host writes).
    pub inbound: Ring,
    /// Encoded packets waiting for room in `inbound`.
    pub queued: VecDeque<Vec<u8>>,
}

/// Where a channel is.
#[derive(Debug)]
pub enum State {
    /// Offered, not open.
    Closed,
    /// Open.
    Open(Open),
    /// Failed on bad input; waits for the guest's CLOSECHANNEL.
    Failed(String),
}

/// A channel and its device.
pub struct Channel {
    /// Relid (1-based).
    pub relid: u32,
    /// Connection id the guest signals it with.
    pub connection_id: u32,
    /// The device.
    pub device: Box<dyn VmbusDevice>,
    /// State.
    pub state: State,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("relid", &self.relid)
            .field("device", &self.device.name())
            .field("state", &self.state)
            .finish()
    }
}

/// What a device sees while it handles a packet.
struct Ctx<'a> {
    mem: &'a GuestMemoryMmap,
    gpadls: &'a GpadlTable,
    out: Vec<OutPacket>,
}

impl ChannelCtx for Ctx<'_> {
    fn mem(&self) -> &GuestMemoryMmap {
        self.mem
    }
    fn gpadl_pfns(&self, handle: u32) -> Option<Vec<u64>> {
        self.gpadls.get(handle).map(|g| g.pfns())
    }
    fn send(&mut self, pkt: OutPacket) {
        self.out.push(pkt);
    }
}

/// Why servicing stopped the channel.
#[derive(Debug, thiserror::Error)]
enum Fail {
    #[error("ring: {0}")]
    Ring(#[from] RingError),
    #[error("packet: {0}")]
    Packet(#[from] packet::PacketError),
    #[error("device: {0}")]
    Device(DeviceError),
    #[error("{0}")]
    Other(&'static str),
}

impl Channel {
    /// Closes the channel (CLOSECHANNEL, GPADL teardown, UNLOAD): its rings are never
    /// touched again.
    pub fn close(&mut self) {
        if !matches!(self.state, State::Closed) {
            self.device.on_close();
        }
        self.state = State::Closed;
    }

    /// Is it open on GPADL `handle`?
    pub fn uses_gpadl(&self, handle: u32) -> bool {
        matches!(&self.state, State::Open(o) if o.gpadl == handle)
    }

    /// Drains the guest's outbound ring into the device (when `drain`), lets the device do
    /// its own work (when `poll`), writes its packets and signals the guest once if needed.
    pub fn service(
        &mut self,
        mem: &GuestMemoryMmap,
        gpadls: &GpadlTable,
        sink: &dyn VmbusSink,
        drain: bool,
        poll: bool,
    ) {
        let State::Open(open) = &mut self.state else {
            return;
        };
        let mut signal = false;
        let r = service_open(
            open,
            self.device.as_mut(),
            mem,
            gpadls,
            &mut signal,
            drain,
            poll,
        );
        let target_vp = open.target_vp;
        if signal {
            sink.signal_event(target_vp, MESSAGE_SINT, self.relid);
        }
        if let Err(e) = r {
            tracing::warn!(
                relid = self.relid,
                device = self.device.name(),
                "vmbus channel failed: {e}"
            );
            self.state = State::Failed(e.to_string());
        }
    }
}

fn service_open(
    open: &mut Open,
    device: &mut dyn VmbusDevice,
    mem: &GuestMemoryMmap,
    gpadls: &GpadlTable,
    signal: &mut bool,
    drain: bool,
    poll: bool,
) -> Result<(), Fail> {
    flush(open, mem, signal)?;
    if drain {
        drain_outbound(open, device, mem, gpadls, signal)?;
    }
    if poll {
        let mut ctx = Ctx {
            mem,
            gpadls,
            out: Vec::new(),
        };
        let r = device.poll(&mut ctx);
        let out = std::mem::take(&mut ctx.out);
        send_all(open, mem, out, signal)?;
        device_result(device, r)?;
    }
    Ok(())
}

/// A device error: malformed input fails the channel, the rest is logged.
fn device_result(device: &dyn VmbusDevice, r: Result<(), DeviceError>) -> Result<(), Fail> {
    match r {
        Ok(()) => Ok(()),
        Err(e @ DeviceError::Malformed(_)) => Err(Fail::Device(e)),
        Err(e) => {
            tracing::warn!(device = device.name(), "vmbus device error: {e}");
            Ok(())
        }
    }
}

fn drain_outbound(
    open: &mut Open,
    device: &mut dyn VmbusDevice,
    mem: &GuestMemoryMmap,
    gpadls: &GpadlTable,
    signal: &mut bool,
) -> Result<(), Fail> {
    let ring = open.outbound.clone();
    ring.set_interrupt_mask(mem, true)?;
    let start = ring.read_index(mem)?;
    let mut read = start;
    let mut n = 0;
    loop {
        let write = ring.write_index(mem)?;
        let next = match ring.read_at(mem, read, write)? {
            Some((bytes, next)) if n < MAX_PACKETS_PER_SERVICE => {
                let pkt = packet::parse(&bytes)?;
                let mut ctx = Ctx {
                    mem,
                    gpadls,
                    out: Vec::new(),
                };
                let r = device.on_packet(&mut ctx, &pkt);
                let out = std::mem::take(&mut ctx.out);
                send_all(open, mem, out, signal)?;
                device_result(device, r)?;
                n += 1;
                next
            }
            Some(_) => break,
            None => {
                // Empty: unmask, then look once more (a packet written before the guest
                // saw the mask clear would otherwise go unsignalled).
                ring.set_interrupt_mask(mem, false)?;
                std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
                if ring.write_index(mem)? == read {
                    break;
                }
                ring.set_interrupt_mask(mem, true)?;
                continue;
            }
        };
        read = next;
    }
    ring.set_interrupt_mask(mem, false)?;
    if read != start && ring.commit_read(mem, start, read)? {
        *signal = true;
    }
    Ok(())
}

fn send_all(
    open: &mut Open,
    mem: &GuestMemoryMmap,
    out: Vec<OutPacket>,
    signal: &mut bool,
) -> Result<(), Fail> {
    for p in out {
        let bytes = packet::encode(&p).ok_or(Fail::Other("device packet too long to encode"))?;
        if bytes.len() + 8 >= open.inbound.size() as usize {
            return Err(RingError::TooLarge {
                len: bytes.len() + 8,
                size: open.inbound.size(),
            }
            .into());
        }
        if open.queued.len() >= MAX_QUEUED_PACKETS {
            return Err(Fail::Other("guest does not read its inbound ring"));
        }
        open.queued.push_back(bytes);
    }
    flush(open, mem, signal)
}

/// Writes queued packets while they fit; sets or clears the pending send size.
fn flush(open: &mut Open, mem: &GuestMemoryMmap, signal: &mut bool) -> Result<(), Fail> {
    let had_queue = !open.queued.is_empty();
    while let Some(p) = open.queued.front() {
        match open.inbound.write(mem, p)? {
            Write::Done { signal: s } => {
                *signal |= s;
                open.queued.pop_front();
            }
            Write::Full => {
                let need = u32::try_from(p.len() + 8).unwrap_or(u32::MAX);
                open.inbound.set_pending_send_sz(mem, need)?;
                std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
                // The guest may have made room before it could see the pending size.
                match open.inbound.write(mem, p)? {
                    Write::Done { signal: s } => {
                        *signal |= s;
                        open.queued.pop_front();
                    }
                    Write::Full => return Ok(()),
                }
            }
        }
    }
    if had_queue {
        open.inbound.set_pending_send_sz(mem, 0)?;
    }
    Ok(())
}
