//! netvsc's host side: NVSP over one VMBus channel, RNDIS inside it, frames to and from a
//! network backend ([`crate::devices::net_backend`]: loopback or TAP).
//!
//! - NVSP: INIT negotiates the newest version in the guest's range that the host speaks
//!   (NVSP 1, 2, 4, 5, 6, 6.1); NDIS version and NDIS config are recorded; SEND_RECV_BUF
//!   takes a GPADL as the receive buffer, answered with one section of
//!   [`RECV_SECTION_SIZE`]-byte sub-allocations; SEND_SEND_BUF takes a GPADL as the send
//!   buffer of [`SEND_SECTION_SIZE`]-byte sections; REVOKE_* drop them.
//! - SEND_RNDIS_PKT: the RNDIS message(s) are read from the named send-buffer section or
//!   from the packet's GPA-direct pages; data packets go to the backend, control messages
//!   are answered ([`super::rndis::Rndis`]); the packet completes with NVSP status SUCCESS,
//!   or INVALID_RNDIS_PKT / FAIL for malformed content.
//! - To the guest: RNDIS answers and received frames are written into free receive-buffer
//!   sections and announced with XferPages packets; the guest's completion of that packet
//!   returns the section. Frames wait (bounded) while no section is free, and are dropped
//!   until the guest sets a packet filter.
//!
//! Guest memory is reached only through vm-memory's bounds-checked accessors.

use std::collections::{HashMap, VecDeque};
use std::os::unix::io::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::device::{
    ChannelCtx, DeviceError, Guid, OutPacket, Packet, PacketKind, VmbusDevice, HV_PAGE_SIZE,
};
use super::rndis::{self, Rndis};
use crate::abi::netvsc::*;
use crate::abi::rndis::MSG_PACKET;
use crate::devices::net_backend::{NetBackend, Sent};
use crate::devices::virtio::net::{NetStats, DEFAULT_MTU, MAX_PENDING};
use crate::devices::virtio::{Error, NetConfig};

/// Instance GUID of the (one) adapter's offer.
pub const INSTANCE_ID: Guid = [
    0x68, 0x76, 0x63, 0x65, 0x72, 0x74, 0x00, 0x00, 0x6e, 0x65, 0x74, 0x76, 0x00, 0x00, 0x00, 0x01,
];
/// Largest RNDIS message accepted from GPA-direct pages (a frame plus headers, generously).
pub const MAX_RNDIS_MSG: u64 = 64 * 1024;
/// Most sections used of one buffer (Linux's default receive buffer has 9709).
pub const MAX_SECTIONS: u32 = 1 << 16;
/// RNDIS answers waiting for a receive section; more are dropped.
pub const MAX_PENDING_CONTROL: usize = 64;
/// Ethernet header + 802.1Q tag: a frame may be this much longer than the MTU.
const L2_OVERHEAD: usize = 18;
/// Shortest frame (dst, src, ethertype).
const ETH_HDR: usize = 14;

/// A buffer the guest shared through a GPADL.
struct GuestBuf {
    id: u16,
    pfns: Vec<u64>,
    sections: u32,
}

/// Calls `f(guest_address, range_in_buf)` for each page-bounded piece of
/// `[off, off + len)` of a GPADL buffer.
fn for_pages(
    pfns: &[u64],
    off: u64,
    len: usize,
    mut f: impl FnMut(GuestAddress, std::ops::Range<usize>) -> Result<(), DeviceError>,
) -> Result<(), DeviceError> {
    let mut done = 0usize;
    while done < len {
        let pos = off + done as u64;
        let page = usize::try_from(pos / HV_PAGE_SIZE).unwrap_or(usize::MAX);
        let within = pos % HV_PAGE_SIZE;
        let pfn = *pfns
            .get(page)
            .ok_or_else(|| DeviceError::Malformed("offset beyond the GPADL".into()))?;
        let addr = pfn
            .checked_mul(HV_PAGE_SIZE)
            .and_then(|a| a.checked_add(within))
            .ok_or_else(|| DeviceError::Memory(format!("pfn {pfn:#x}")))?;
        let n = ((HV_PAGE_SIZE - within) as usize).min(len - done);
        f(GuestAddress(addr), done..done + n)?;
        done += n;
    }
    Ok(())
}

fn mem_err(e: vm_memory::GuestMemoryError) -> DeviceError {
    DeviceError::Memory(e.to_string())
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// An NVSP message of `msg_type` with `words` after the header, padded to
/// `sizeof(struct nvsp_message)`.
fn nvsp(msg_type: u32, words: &[u32]) -> Vec<u8> {
    let mut m = Vec::with_capacity(MESSAGE_LEN);
    m.extend_from_slice(&msg_type.to_le_bytes());
    for w in words {
        m.extend_from_slice(&w.to_le_bytes());
    }
    m.resize(m.len().max(MESSAGE_LEN), 0);
    m
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// A synthetic network adapter.
pub struct NetVsc {
    backend: NetBackend,
    rndis: Rndis,
    version: Option<u32>,
    ndis_version: Option<(u32, u32)>,
    recv: Option<GuestBuf>,
    send: Option<GuestBuf>,
    /// Receive sections not lent to the guest.
    free: Vec<u32>,
    /// XferPages transaction id -> the section it lent.
    in_flight: HashMap<u64, u32>,
    next_tid: u64,
    pending_control: VecDeque<Vec<u8>>,
    pending_rx: VecDeque<Vec<u8>>,
    stats: Arc<NetStats>,
    buf: Vec<u8>,
}

impl NetVsc {
    /// An adapter with MAC `mac` on the backend `cfg` names.
    pub fn new(cfg: &NetConfig, mac: [u8; 6]) -> Result<Self, Error> {
        Ok(NetVsc {
            backend: NetBackend::open(cfg)?,
            rndis: Rndis::new(mac, u32::from(DEFAULT_MTU)),
            version: None,
            ndis_version: None,
            recv: None,
            send: None,
            free: Vec::new(),
            in_flight: HashMap::new(),
            next_tid: 1,
            pending_control: VecDeque::new(),
            pending_rx: VecDeque::new(),
            stats: Arc::new(NetStats::default()),
            buf: Vec::new(),
        })
    }

    /// The negotiated NVSP version, if any.
    pub fn version(&self) -> Option<u32> {
        self.version
    }

    /// The RNDIS state (MAC, MTU, filter, link).
    pub fn rndis(&self) -> &Rndis {
        &self.rndis
    }

    /// The adapter's frame counters (shared; readable after the VM ends).
    pub fn stats(&self) -> Arc<NetStats> {
        self.stats.clone()
    }

    /// The backend's fd to poll for input (TAP), for the channel's worker.
    pub fn backend_fd(&self) -> Option<RawFd> {
        self.backend.fd()
    }

    /// Receive sections currently lent to the guest.
    pub fn sections_in_flight(&self) -> usize {
        self.in_flight.len()
    }

    fn complete(ctx: &mut dyn ChannelCtx, pkt: &Packet, payload: Vec<u8>) {
        ctx.send(OutPacket::Completion {
            transaction_id: pkt.transaction_id,
            payload,
        });
    }

    /// Takes the GPADL `handle` as a buffer of `section`-byte sections.
    fn take_gpadl(
        ctx: &dyn ChannelCtx,
        msg: &[u8],
        section: u32,
    ) -> Result<Option<GuestBuf>, DeviceError> {
        let (Some(handle), Some(id)) = (u32_at(msg, 4), msg.get(8..10)) else {
            return Err(DeviceError::Malformed(
                "NVSP buffer message too short".into(),
            ));
        };
        let id = u16::from_le_bytes([id[0], id[1]]);
        let Some(pfns) = ctx.gpadl_pfns(handle) else {
            return Ok(None);
        };
        let len = pfns.len() as u64 * HV_PAGE_SIZE;
        // Bounded: offsets stay 32-bit and the free list small, whatever the GPADL's size.
        let sections = (len / u64::from(section)).min(u64::from(MAX_SECTIONS)) as u32;
        if sections == 0 {
            return Ok(None);
        }
        Ok(Some(GuestBuf { id, pfns, sections }))
    }

    /// The RNDIS bytes of a SEND_RNDIS_PKT: from a send-buffer section or the packet's
    /// GPA-direct pages. `Err(status)` is the NVSP status to complete with.
    fn rndis_bytes(&self, mem: &GuestMemoryMmap, pkt: &Packet, msg: &[u8]) -> Result<Vec<u8>, u32> {
        let index = u32_at(msg, 8).unwrap_or(NO_SECTION);
        let size = u32_at(msg, 12).unwrap_or(0);
        if index != NO_SECTION {
            let Some(sb) = &self.send else {
                return Err(STAT_FAIL);
            };
            if index >= sb.sections || size > SEND_SECTION_SIZE {
                return Err(STAT_FAIL);
            }
            let off = u64::from(index) * u64::from(SEND_SECTION_SIZE);
            let mut buf = vec![0u8; size as usize];
            for_pages(&sb.pfns, off, buf.len(), |a, r| {
                mem.read_slice(&mut buf[r], a).map_err(mem_err)
            })
            .map_err(|_| STAT_FAIL)?;
            return Ok(buf);
        }
        let mut segs = Vec::new();
        for r in &pkt.ranges {
            segs.extend(r.segments().ok_or(STAT_FAIL)?);
        }
        let total: u64 = segs.iter().map(|s| u64::from(s.len)).sum();
        if total > MAX_RNDIS_MSG {
            return Err(STAT_INVALID_RNDIS_PKT);
        }
        let mut buf = vec![0u8; total as usize];
        crate::devices::virtio::chain::read_bytes(mem, &segs, 0, &mut buf)
            .map_err(|_| STAT_FAIL)?;
        Ok(buf)
    }

    /// Handles the RNDIS message(s) of one SEND_RNDIS_PKT; returns the NVSP status.
    fn rndis_packet(&mut self, mem: &GuestMemoryMmap, pkt: &Packet, msg: &[u8]) -> u32 {
        let bytes = match self.rndis_bytes(mem, pkt, msg) {
            Ok(b) => b,
            Err(status) => return status,
        };
        let Ok(msgs) = rndis::split(&bytes) else {
            return STAT_INVALID_RNDIS_PKT;
        };
        if msgs.is_empty() {
            return STAT_INVALID_RNDIS_PKT;
        }
        let max_frame = self.rndis.mtu as usize + L2_OVERHEAD;
        for m in msgs {
            if rndis::msg_type(m) == MSG_PACKET {
                let Ok(frame) = rndis::packet_frame(m) else {
                    bump(&self.stats.tx_dropped);
                    return STAT_INVALID_RNDIS_PKT;
                };
                if !(ETH_HDR..=max_frame).contains(&frame.len()) {
                    bump(&self.stats.tx_dropped);
                    continue;
                }
                match self.backend.send(frame.to_vec()) {
                    Sent::Delivered => bump(&self.stats.tx_frames),
                    Sent::Looped(f) => {
                        bump(&self.stats.tx_frames);
                        self.queue_rx(f);
                    }
                    Sent::Failed => bump(&self.stats.tx_dropped),
                }
            } else {
                match self.rndis.control(m) {
                    Ok(Some(answer)) => {
                        if self.pending_control.len() < MAX_PENDING_CONTROL {
                            self.pending_control.push_back(answer);
                        }
                    }
                    Ok(None) => {}
                    Err(_) => return STAT_INVALID_RNDIS_PKT,
                }
            }
        }
        STAT_SUCCESS
    }

    fn queue_rx(&mut self, frame: Vec<u8>) {
        if self.pending_rx.len() >= MAX_PENDING {
            bump(&self.stats.rx_dropped);
        } else {
            self.pending_rx.push_back(frame);
        }
    }

    /// Moves RNDIS answers, then frames, into free receive sections.
    fn deliver(&mut self, ctx: &mut dyn ChannelCtx) -> Result<(), DeviceError> {
        if self.rndis.filter == 0 {
            // No filter set (or reset): frames are not indicated.
            while self.pending_rx.pop_front().is_some() {
                bump(&self.stats.rx_dropped);
            }
        }
        loop {
            let Some(rb) = &self.recv else {
                return Ok(());
            };
            let (msg, control) = if let Some(m) = self.pending_control.front() {
                (m.clone(), true)
            } else if let Some(f) = self.pending_rx.front() {
                (rndis::packet_msg(f), false)
            } else {
                return Ok(());
            };
            let Some(&index) = self.free.last() else {
                return Ok(());
            };
            if control {
                self.pending_control.pop_front();
            } else {
                self.pending_rx.pop_front();
            }
            if msg.len() > RECV_SECTION_SIZE as usize {
                bump(&self.stats.rx_dropped);
                continue;
            }
            let off = u64::from(index) * u64::from(RECV_SECTION_SIZE);
            let mem = ctx.mem();
            let written = for_pages(&rb.pfns, off, msg.len(), |a, r| {
                mem.write_slice(&msg[r], a).map_err(mem_err)
            });
            if let Err(e) = written {
                bump(&self.stats.rx_dropped);
                return Err(e);
            }
            self.free.pop();
            let tid = self.next_tid;
            self.next_tid = self.next_tid.wrapping_add(1);
            self.in_flight.insert(tid, index);
            let channel = if control {
                CHANNEL_CONTROL
            } else {
                CHANNEL_DATA
            };
            ctx.send(OutPacket::XferPages {
                transaction_id: tid,
                xfer_pageset_id: rb.id,
                ranges: vec![(msg.len() as u32, off as u32)],
                payload: nvsp(MSG1_SEND_RNDIS_PKT, &[channel, NO_SECTION, 0]),
            });
            if !control {
                bump(&self.stats.rx_frames);
            }
        }
    }

    fn nvsp_message(&mut self, ctx: &mut dyn ChannelCtx, pkt: &Packet) -> Result<(), DeviceError> {
        let msg = &pkt.payload;
        let short =
            |what: &str| DeviceError::Malformed(format!("NVSP {what}: {} bytes", msg.len()));
        let msg_type = u32_at(msg, 0).ok_or_else(|| short("header"))?;
        match msg_type {
            MSG_INIT => {
                let (Some(min), Some(max)) = (u32_at(msg, 4), u32_at(msg, 8)) else {
                    return Err(short("INIT"));
                };
                let chosen = VERSIONS.iter().rev().find(|&&v| min <= v && v <= max);
                let answer = match chosen {
                    Some(&v) => {
                        self.version = Some(v);
                        nvsp(MSG_INIT_COMPLETE, &[v, 0, STAT_SUCCESS])
                    }
                    None => nvsp(MSG_INIT_COMPLETE, &[0, 0, STAT_FAIL]),
                };
                Self::complete(ctx, pkt, answer);
            }
            MSG1_SEND_NDIS_VER => {
                let (Some(major), Some(minor)) = (u32_at(msg, 4), u32_at(msg, 8)) else {
                    return Err(short("SEND_NDIS_VER"));
                };
                self.ndis_version = Some((major, minor));
            }
            MSG2_SEND_NDIS_CONFIG => {
                u32_at(msg, 4).ok_or_else(|| short("SEND_NDIS_CONFIG"))?;
            }
            MSG1_SEND_RECV_BUF => {
                let taken = if self.version.is_none() || self.recv.is_some() {
                    None
                } else {
                    Self::take_gpadl(ctx, msg, RECV_SECTION_SIZE)?
                };
                let answer = match taken {
                    Some(b) => {
                        let n = b.sections;
                        let words = [
                            STAT_SUCCESS,
                            1,
                            0,
                            RECV_SECTION_SIZE,
                            n,
                            n * RECV_SECTION_SIZE,
                        ];
                        self.free = (0..n).rev().collect();
                        self.in_flight.clear();
                        self.recv = Some(b);
                        nvsp(MSG1_SEND_RECV_BUF_COMPLETE, &words)
                    }
                    None => nvsp(MSG1_SEND_RECV_BUF_COMPLETE, &[STAT_FAIL, 0]),
                };
                Self::complete(ctx, pkt, answer);
            }
            MSG1_SEND_SEND_BUF => {
                let taken = if self.version.is_none() || self.send.is_some() {
                    None
                } else {
                    Self::take_gpadl(ctx, msg, SEND_SECTION_SIZE)?
                };
                let answer = match taken {
                    Some(b) => {
                        self.send = Some(b);
                        nvsp(
                            MSG1_SEND_SEND_BUF_COMPLETE,
                            &[STAT_SUCCESS, SEND_SECTION_SIZE],
                        )
                    }
                    None => nvsp(MSG1_SEND_SEND_BUF_COMPLETE, &[STAT_FAIL, 0]),
                };
                Self::complete(ctx, pkt, answer);
            }
            MSG1_REVOKE_RECV_BUF => {
                self.recv = None;
                self.free.clear();
                self.in_flight.clear();
            }
            MSG1_REVOKE_SEND_BUF => self.send = None,
            MSG1_SEND_RNDIS_PKT => {
                if msg.len() < 16 {
                    return Err(short("SEND_RNDIS_PKT"));
                }
                let status = self.rndis_packet(ctx.mem(), pkt, msg);
                Self::complete(ctx, pkt, nvsp(MSG1_SEND_RNDIS_PKT_COMPLETE, &[status]));
                self.deliver(ctx)?;
            }
            MSG5_SUBCHANNEL => {
                // No sub-channels (the RSS capability query is not supported either).
                Self::complete(ctx, pkt, nvsp(MSG5_SUBCHANNEL, &[STAT_FAIL, 0]));
            }
            MSG4_SWITCH_DATA_PATH => {
                if pkt.completion_requested {
                    Self::complete(ctx, pkt, nvsp(MSG4_SWITCH_DATA_PATH, &[STAT_SUCCESS]));
                }
            }
            other => {
                return Err(DeviceError::Malformed(format!("NVSP message type {other}")));
            }
        }
        Ok(())
    }
}

impl VmbusDevice for NetVsc {
    fn name(&self) -> &'static str {
        "netvsc"
    }
    fn class_id(&self) -> Guid {
        CLASS_ID
    }
    fn instance_id(&self) -> Guid {
        INSTANCE_ID
    }

    fn on_packet(&mut self, ctx: &mut dyn ChannelCtx, pkt: &Packet) -> Result<(), DeviceError> {
        if pkt.kind == PacketKind::Completion {
            // The guest gives back a receive section.
            let Some(index) = self.in_flight.remove(&pkt.transaction_id) else {
                return Err(DeviceError::Malformed(format!(
                    "completion for unknown transaction {}",
                    pkt.transaction_id
                )));
            };
            self.free.push(index);
            return self.deliver(ctx);
        }
        self.nvsp_message(ctx, pkt)
    }

    fn poll(&mut self, ctx: &mut dyn ChannelCtx) -> Result<(), DeviceError> {
        if self.recv.is_some() && self.rndis.filter != 0 {
            let mut pending = std::mem::take(&mut self.pending_rx);
            self.backend
                .receive(&mut pending, MAX_PENDING, &mut self.buf);
            self.pending_rx = pending;
        }
        self.deliver(ctx)
    }
}
