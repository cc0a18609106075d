//! An open channel's two ring buffers in Linux's layout (drivers/hv/ring_buffer.c): one
//! GPADL, the guest->host ring first, each ring a header page and a data area. Packets are
//! 8-byte aligned and followed by the u64 "previous indices"; the writer never fills the
//! ring completely. Signalling follows Linux: after a write, SignalEvent when the host
//! has not masked interrupts and the ring was empty; after a read, when the host waits
//! for room (pending_send_sz) and now has it.
use core::sync::atomic::{fence, Ordering};

use super::conn::{self, Bus, Offer};
use super::synic::{self, WAIT_TSC};
use super::wire::*;
use crate::ktap::Msg;
use crate::{msg, sys};

#[derive(Clone, Copy)]
struct Ring {
    /// Header page.
    hdr: u64,
    /// Bytes of data after the header page.
    size: u32,
}

impl Ring {
    fn data(&self) -> u64 {
        self.hdr + RING_HEADER
    }
    fn rd(&self, off: u64) -> u32 {
        sys::read_u32(self.hdr + off)
    }
    fn wr(&self, off: u64, v: u32) {
        sys::write_u32(self.hdr + off, v)
    }
    /// Copy `src` into the data area at `at`, wrapping.
    fn put(&self, at: u32, src: &[u8]) -> u32 {
        let first = ((self.size - at) as usize).min(src.len());
        copy_to(self.data() + u64::from(at), &src[..first]);
        copy_to(self.data(), &src[first..]);
        ((at as usize + src.len()) % self.size as usize) as u32
    }
    /// Copy from the data area at `at` into `dst`, wrapping.
    fn get(&self, at: u32, dst: &mut [u8]) {
        let first = ((self.size - at) as usize).min(dst.len());
        let (a, b) = dst.split_at_mut(first);
        copy_from(self.data() + u64::from(at), a);
        copy_from(self.data(), b);
    }
    fn avail_write(&self) -> u32 {
        let (w, r) = (self.rd(RING_WRITE), self.rd(RING_READ));
        if w >= r {
            self.size - (w - r)
        } else {
            r - w
        }
    }
    fn avail_read(&self) -> u32 {
        let (w, r) = (self.rd(RING_WRITE), self.rd(RING_READ));
        if w >= r {
            w - r
        } else {
            self.size - r + w
        }
    }
}

fn copy_to(dst: u64, src: &[u8]) {
    if !src.is_empty() {
        // SAFETY: `dst` is inside a ring this guest owns (a static, identity-mapped), with
        // `src.len()` bytes of room (the caller splits at the end of the data area).
        unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), dst as *mut u8, src.len()) }
    }
}
fn copy_from(src: u64, dst: &mut [u8]) {
    if !dst.is_empty() {
        // SAFETY: as in `copy_to`, reading.
        unsafe { core::ptr::copy_nonoverlapping(src as *const u8, dst.as_mut_ptr(), dst.len()) }
    }
}

/// A received packet's descriptor; its bytes (descriptor included) are in the caller's
/// buffer.
#[derive(Clone, Copy, Debug)]
pub struct Pkt {
    pub kind: u16,
    pub trans_id: u64,
    /// Offset of the payload in the packet (offset8 * 8).
    pub data_off: usize,
    /// Whole packet length (len8 * 8).
    pub len: usize,
}

/// An open channel.
pub struct Channel {
    pub offer: Offer,
    pub gpadl: u32,
    out: Ring,
    inb: Ring,
    /// SignalEvent calls this channel made.
    pub signals: u32,
    pub sent: u32,
    pub received: u32,
}

impl Channel {
    /// GPADL over `pages` pages at `gpa` (half for each direction), OPENCHANNEL.
    pub fn open(bus: &mut Bus, offer: Offer, gpa: u64, pages: usize) -> Result<Channel, Msg> {
        let ch = Channel::prepare(bus, offer, gpa, pages)?;
        let st = bus.open_status(offer.relid, ch.gpadl, (pages / 2) as u32)?;
        if st != 0 {
            return Err(msg!(
                "OPENCHANNEL relid {} refused: status {:#x}",
                offer.relid,
                st
            ));
        }
        Ok(ch)
    }

    /// The rings initialised and their GPADL created, not yet opened.
    pub fn prepare(bus: &mut Bus, offer: Offer, gpa: u64, pages: usize) -> Result<Channel, Msg> {
        if pages < 4 || !pages.is_multiple_of(2) {
            return Err(msg!("ring of {} pages", pages));
        }
        conn::zero(gpa, pages);
        let half = (pages / 2) as u64 * 4096;
        let out = Ring {
            hdr: gpa,
            size: (half - RING_HEADER) as u32,
        };
        let inb = Ring {
            hdr: gpa + half,
            size: (half - RING_HEADER) as u32,
        };
        // Both rings advertise pending_send_sz support (hv_ringbuffer_init), and the guest
        // polls, so it masks the host's interrupts for the inbound ring.
        out.wr(RING_FEATURES, RING_FEAT_PENDING_SEND_SZ);
        inb.wr(RING_FEATURES, RING_FEAT_PENDING_SEND_SZ);
        inb.wr(RING_INTR_MASK, 1);
        let gpadl = bus.gpadl_create(offer.relid, gpa, pages)?;
        Ok(Channel {
            offer,
            gpadl,
            out,
            inb,
            signals: 0,
            sent: 0,
            received: 0,
        })
    }

    /// CLOSECHANNEL, then GPADL_TEARDOWN of the ring.
    pub fn close(self, bus: &mut Bus) -> Result<(), Msg> {
        bus.close(self.offer.relid)?;
        bus.gpadl_teardown(self.offer.relid, self.gpadl)
    }

    /// Host interrupts for the inbound ring on (false) or off (true).
    pub fn mask_interrupts(&self, masked: bool) {
        self.inb.wr(RING_INTR_MASK, masked as u32);
        fence(Ordering::SeqCst);
    }

    /// Writes one packet made of `parts` (descriptor first) and signals the host when
    /// needed. Waits (with pending_send_sz set) while the ring lacks room.
    pub fn write(&mut self, bus: &mut Bus, parts: &[&[u8]]) -> Result<(), Msg> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let padded = (len + 7) & !7;
        let total = padded as u32 + 8;
        if total >= self.out.size {
            return Err(msg!("packet of {} bytes exceeds the ring", len));
        }
        let t0 = sys::rdtsc();
        while self.out.avail_write() <= total {
            self.out.wr(RING_PENDING_SEND, total);
            if sys::rdtsc().wrapping_sub(t0) > WAIT_TSC {
                return Err(msg!("outbound ring full for {} s", 2));
            }
            core::hint::spin_loop();
        }
        self.out.wr(RING_PENDING_SEND, 0);
        let old = self.out.rd(RING_WRITE);
        let mut pos = old;
        for p in parts {
            pos = self.out.put(pos, p);
        }
        pos = self.out.put(pos, &[0u8; 8][..padded - len]);
        pos = self.out.put(pos, &(u64::from(old) << 32).to_le_bytes());
        fence(Ordering::SeqCst);
        self.out.wr(RING_WRITE, pos);
        fence(Ordering::SeqCst);
        self.sent += 1;
        if self.out.rd(RING_INTR_MASK) == 0 && old == self.out.rd(RING_READ) {
            self.signals += 1;
            bus.hv.signal(self.offer.conn_id)?;
        }
        Ok(())
    }

    /// In-band packet: descriptor + payload.
    pub fn send_inband(
        &mut self,
        bus: &mut Bus,
        trans_id: u64,
        completion: bool,
        payload: &[u8],
    ) -> Result<(), Msg> {
        let len = PKT_DESC + payload.len();
        let d = descriptor(
            VM_PKT_DATA_INBAND,
            PKT_DESC,
            len,
            completion as u16 * PKT_FLAG_COMPLETION_REQUESTED,
            trans_id,
        );
        self.write(bus, &[&d, payload])
    }

    /// Completion packet (VM_PKT_COMP) for the host's `trans_id`.
    pub fn send_completion(
        &mut self,
        bus: &mut Bus,
        trans_id: u64,
        payload: &[u8],
    ) -> Result<(), Msg> {
        let d = descriptor(VM_PKT_COMP, PKT_DESC, PKT_DESC + payload.len(), 0, trans_id);
        self.write(bus, &[&d, payload])
    }

    /// GPA-direct packet with one multi-page range (vmbus_packet_mpb_array) covering
    /// `len` bytes at guest address `buf`, and `payload` in band; completion requested.
    pub fn send_gpa_direct(
        &mut self,
        bus: &mut Bus,
        trans_id: u64,
        buf: u64,
        len: u32,
        payload: &[u8],
    ) -> Result<(), Msg> {
        let offset = (buf & 0xfff) as u32;
        let npfn = (u64::from(offset) + u64::from(len)).div_ceil(4096) as usize;
        let mut range = [0u8; 16 + 8 * 64];
        if npfn > 64 {
            return Err(msg!(
                "GPA-direct range of {} pages (this client's limit is 64)",
                npfn
            ));
        }
        range[0..4].copy_from_slice(&0u32.to_le_bytes()); // reserved
        range[4..8].copy_from_slice(&1u32.to_le_bytes()); // rangecount
        range[8..12].copy_from_slice(&len.to_le_bytes());
        range[12..16].copy_from_slice(&offset.to_le_bytes());
        for i in 0..npfn {
            let pfn = (buf >> 12) + i as u64;
            range[16 + i * 8..24 + i * 8].copy_from_slice(&pfn.to_le_bytes());
        }
        let ranges = &range[..16 + npfn * 8];
        let hdr_len = PKT_DESC + ranges.len();
        let d = descriptor(
            VM_PKT_DATA_USING_GPA_DIRECT,
            hdr_len,
            hdr_len + payload.len(),
            PKT_FLAG_COMPLETION_REQUESTED,
            trans_id,
        );
        self.write(bus, &[&d, ranges, payload])
    }

    /// Reads the next packet into `buf` if there is one. A packet whose descriptor is
    /// inconsistent with the ring is an error (the host wrote garbage).
    pub fn read(&mut self, bus: &mut Bus, buf: &mut [u8]) -> Result<Option<Pkt>, Msg> {
        let avail = self.inb.avail_read();
        if avail == 0 {
            return Ok(None);
        }
        fence(Ordering::SeqCst);
        let r = self.inb.rd(RING_READ);
        if r >= self.inb.size || !r.is_multiple_of(8) {
            return Err(msg!("inbound read index {:#x} invalid", r));
        }
        let mut d = [0u8; PKT_DESC];
        if avail < PKT_DESC as u32 + 8 {
            return Err(msg!(
                "inbound ring holds {} bytes, less than a packet",
                avail
            ));
        }
        self.inb.get(r, &mut d);
        let kind = u16::from_le_bytes([d[0], d[1]]);
        let off8 = u16::from_le_bytes([d[2], d[3]]) as usize;
        let len8 = u16::from_le_bytes([d[4], d[5]]) as usize;
        let trans_id = u64::from_le_bytes([d[8], d[9], d[10], d[11], d[12], d[13], d[14], d[15]]);
        let len = len8 * 8;
        if len < PKT_DESC || off8 * 8 > len || len as u32 + 8 > avail {
            return Err(msg!(
                "inbound packet type {} offset8 {} len8 {} with {} bytes in the ring",
                kind,
                off8,
                len8,
                avail
            ));
        }
        if len > buf.len() {
            return Err(msg!(
                "inbound packet of {} bytes (buffer {})",
                len,
                buf.len()
            ));
        }
        self.inb.get(r, &mut buf[..len]);
        let before = self.inb.size - avail;
        let next = ((r as usize + len + 8) % self.inb.size as usize) as u32;
        fence(Ordering::SeqCst);
        self.inb.wr(RING_READ, next);
        fence(Ordering::SeqCst);
        self.received += 1;
        // The host waits for room: signal when this read gave it enough.
        let pending = self.inb.rd(RING_PENDING_SEND);
        if self.inb.rd(RING_FEATURES) & RING_FEAT_PENDING_SEND_SZ != 0 && pending != 0 {
            let now = self.inb.avail_write();
            if before <= pending && now > pending {
                self.signals += 1;
                bus.hv.signal(self.offer.conn_id)?;
            }
        }
        Ok(Some(Pkt {
            kind,
            trans_id,
            data_off: off8 * 8,
            len,
        }))
    }

    /// Waits (polling) for the next packet.
    pub fn recv(&mut self, bus: &mut Bus, buf: &mut [u8]) -> Result<Pkt, Msg> {
        let t0 = sys::rdtsc();
        loop {
            if let Some(p) = self.read(bus, buf)? {
                return Ok(p);
            }
            if sys::rdtsc().wrapping_sub(t0) > WAIT_TSC {
                return Err(msg!(
                    "no packet from the host on relid {} in time",
                    self.offer.relid
                ));
            }
            core::hint::spin_loop();
        }
    }

    /// Whether the inbound ring holds a packet.
    pub fn readable(&self) -> bool {
        self.inb.avail_read() != 0
    }

    /// The event flag for this channel was set (and is now cleared).
    pub fn take_event(&self) -> bool {
        synic::take_event(self.offer.relid)
    }
}

fn descriptor(kind: u16, data_off: usize, len: usize, flags: u16, trans_id: u64) -> [u8; PKT_DESC] {
    let mut d = [0u8; PKT_DESC];
    d[0..2].copy_from_slice(&kind.to_le_bytes());
    d[2..4].copy_from_slice(&((data_off / 8) as u16).to_le_bytes());
    d[4..6].copy_from_slice(&(len.div_ceil(8) as u16).to_le_bytes());
    d[6..8].copy_from_slice(&flags.to_le_bytes());
    d[8..16].copy_from_slice(&trans_id.to_le_bytes());
    d
}
