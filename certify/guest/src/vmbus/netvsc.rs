//! A netvsc client (Linux drivers/net/hyperv/{netvsc.c,rndis_filter.c} from the wire up):
//! NVSP version negotiation, NDIS version and config, the receive and send buffers as
//! GPADLs, then RNDIS over SEND_RNDIS_PKT: INITIALIZE, QUERY, SET, PACKET. The host's
//! messages arrive as transfer-page packets naming ranges of the receive buffer; each is
//! completed to give the buffer back.
use super::conn::{get32, Bus};
use super::ring::{Channel, Pkt};
use super::wire::*;
use crate::ktap::Msg;
use crate::sys::Page;
use crate::{diag, msg};

pub const RING_PAGES: usize = 8;
/// 256 KiB: more PFNs than one GPADL_HEADER holds, so the GPADL needs BODY messages.
pub const RX_PAGES: usize = 64;
pub const TX_PAGES: usize = 16;
static mut RING: [Page; RING_PAGES] = [const { Page([0; 4096]) }; RING_PAGES];
static mut RXBUF: [Page; RX_PAGES] = [const { Page([0; 4096]) }; RX_PAGES];
static mut TXBUF: [Page; TX_PAGES] = [const { Page([0; 4096]) }; TX_PAGES];
/// RNDIS messages sent through GPA-direct page buffers instead of the send buffer.
static mut GPA_MSG: [Page; 1] = [const { Page([0; 4096]) }; 1];

fn gpa<T>(p: *const T) -> u64 {
    p as u64
}

/// Received data frames waiting to be read, and the biggest RNDIS message kept.
const QUEUE: usize = 4;
pub const SLOT: usize = 2048;

pub struct Net {
    pub ch: Channel,
    pub nvsp: u32,
    rx_gpadl: u32,
    tx_gpadl: u32,
    pub section_size: u32,
    pub sections: u32,
    pub mac: [u8; 6],
    pub mtu: u32,
    /// Last INDICATE_STATUS seen (0 = none).
    pub indicated: u32,
    next_id: u64,
    req_id: u32,
    pkt: [u8; 1024],
    /// The last control response.
    resp: [u8; SLOT],
    resp_len: usize,
    frames: [[u8; SLOT]; QUEUE],
    frame_len: [usize; QUEUE],
    n_frames: usize,
    /// Frames dropped because the queue was full.
    pub dropped: u32,
}

/// What one inbound packet was.
enum Ev {
    /// The host completed our packet `id` with this NVSP message type and status.
    Done { id: u64, kind: u32, status: u32 },
    /// RNDIS messages arrived (control responses kept in `resp`, frames queued).
    Rndis,
}

impl Net {
    pub fn open(bus: &mut Bus) -> Result<Net, Msg> {
        let offer = bus
            .find(&NIC_GUID)
            .ok_or_else(|| msg!("no network adapter offer among {} offers", bus.n_offers))?;
        let ch = Channel::open(bus, offer, gpa(&raw const RING), RING_PAGES)?;
        let mut n = Net {
            ch,
            nvsp: 0,
            rx_gpadl: 0,
            tx_gpadl: 0,
            section_size: 0,
            sections: 0,
            mac: [0; 6],
            mtu: 0,
            indicated: 0,
            next_id: 1,
            req_id: 1,
            pkt: [0; 1024],
            resp: [0; SLOT],
            resp_len: 0,
            frames: [[0; SLOT]; QUEUE],
            frame_len: [0; QUEUE],
            n_frames: 0,
            dropped: 0,
        };
        n.nvsp_init(bus)?;
        n.rndis_init(bus)?;
        Ok(n)
    }

    /// An NVSP message with completion requested; waits for the host's completion
    /// carrying `want` and returns its message.
    fn nvsp(
        &mut self,
        bus: &mut Bus,
        m: &[u8; NVSP_MSG_SIZE],
        want: u32,
    ) -> Result<[u8; NVSP_MSG_SIZE], Msg> {
        let id = self.next_id;
        self.next_id += 1;
        self.ch.send_inband(bus, id, true, m)?;
        for _ in 0..32 {
            let p = self.ch.recv(bus, &mut self.pkt)?;
            let body = &self.pkt[p.data_off..p.len];
            let kind = if body.len() >= 4 { get32(body, 0) } else { 0 };
            if (p.kind == VM_PKT_COMP || p.kind == VM_PKT_DATA_INBAND) && kind == want {
                let mut out = [0u8; NVSP_MSG_SIZE];
                let k = body.len().min(NVSP_MSG_SIZE);
                out[..k].copy_from_slice(&body[..k]);
                return Ok(out);
            }
            diag!(
                "netvsc: packet type {} nvsp {} while waiting for {}",
                p.kind,
                kind,
                want
            );
        }
        Err(msg!("no NVSP message {} from the host", want))
    }

    fn nvsp_init(&mut self, bus: &mut Bus) -> Result<(), Msg> {
        for v in NVSP_VERSIONS {
            let r = self.nvsp(
                bus,
                &nvsp_msg(NVSP_MSG_INIT, &[v, v]),
                NVSP_MSG_INIT_COMPLETE,
            )?;
            if get32(&r, 12) == NVSP_STAT_SUCCESS {
                self.nvsp = v;
                break;
            }
        }
        if self.nvsp == 0 {
            return Err(msg!("the host accepted no NVSP version 6.1 .. 1"));
        }
        let minor = if self.nvsp <= 0x40000 { 1 } else { 30 };
        self.ch.send_inband(
            bus,
            0,
            false,
            &nvsp_msg(NVSP_MSG1_SEND_NDIS_VER, &[6, minor]),
        )?;
        if self.nvsp >= 0x30002 {
            // mtu + ETH_HLEN, reserved, capability (ieee8021q).
            let cfg = nvsp_msg(NVSP_MSG2_SEND_NDIS_CONFIG, &[1514, 0, 1 << 3, 0]);
            self.ch.send_inband(bus, 0, false, &cfg)?;
        }
        let relid = self.ch.offer.relid;
        self.rx_gpadl = bus.gpadl_create(relid, gpa(&raw const RXBUF), RX_PAGES)?;
        let mut m = nvsp_msg(NVSP_MSG1_SEND_RECV_BUF, &[self.rx_gpadl]);
        m[8..10].copy_from_slice(&NETVSC_RECEIVE_BUFFER_ID.to_le_bytes());
        let r = self.nvsp(bus, &m, NVSP_MSG1_SEND_RECV_BUF_COMPLETE)?;
        if get32(&r, 4) != NVSP_STAT_SUCCESS {
            return Err(msg!("receive buffer refused: status {}", get32(&r, 4)));
        }
        let rx_sections = get32(&r, 8);
        self.tx_gpadl = bus.gpadl_create(relid, gpa(&raw const TXBUF), TX_PAGES)?;
        let mut m = nvsp_msg(NVSP_MSG1_SEND_SEND_BUF, &[self.tx_gpadl]);
        m[8..10].copy_from_slice(&NETVSC_SEND_BUFFER_ID.to_le_bytes());
        let r = self.nvsp(bus, &m, NVSP_MSG1_SEND_SEND_BUF_COMPLETE)?;
        if get32(&r, 4) != NVSP_STAT_SUCCESS {
            return Err(msg!("send buffer refused: status {}", get32(&r, 4)));
        }
        self.section_size = get32(&r, 8);
        self.sections = (TX_PAGES as u32 * 4096)
            .checked_div(self.section_size)
            .unwrap_or(0);
        diag!(
            "netvsc: relid {} NVSP {:#x}, receive buffer {} KiB ({} sections), send buffer sections {} x {} bytes",
            relid,
            self.nvsp,
            RX_PAGES * 4,
            rx_sections,
            self.sections,
            self.section_size
        );
        Ok(())
    }

    /// Sends one RNDIS message: through send-buffer section `section`, or (None) as a
    /// GPA-direct page buffer. Returns our transaction id.
    fn rndis_send(
        &mut self,
        bus: &mut Bus,
        channel: u32,
        msg: &[u8],
        section: Option<u32>,
    ) -> Result<u64, Msg> {
        let id = self.next_id;
        self.next_id += 1;
        match section {
            Some(s) => {
                if s >= self.sections || msg.len() > self.section_size as usize {
                    return Err(msg!(
                        "RNDIS message of {} bytes does not fit send section {} ({} x {})",
                        msg.len(),
                        s,
                        self.sections,
                        self.section_size
                    ));
                }
                let at = gpa(&raw const TXBUF) + u64::from(s * self.section_size);
                crate::sys::write_bytes(at, msg);
                let m = nvsp_msg(NVSP_MSG1_SEND_RNDIS_PKT, &[channel, s, msg.len() as u32]);
                self.ch.send_inband(bus, id, true, &m)?;
            }
            None => {
                if msg.len() > 4096 {
                    return Err(msg!("RNDIS message of {} bytes > one page", msg.len()));
                }
                let at = gpa(&raw const GPA_MSG);
                crate::sys::write_bytes(at, msg);
                let m = nvsp_msg(
                    NVSP_MSG1_SEND_RNDIS_PKT,
                    &[channel, NETVSC_INVALID_INDEX, 0],
                );
                self.ch.send_gpa_direct(bus, id, at, msg.len() as u32, &m)?;
            }
        }
        Ok(id)
    }

    /// Reads and handles one inbound packet.
    fn pump(&mut self, bus: &mut Bus) -> Result<Ev, Msg> {
        let p = self.ch.recv(bus, &mut self.pkt)?;
        let body = &self.pkt[p.data_off..p.len];
        let kind = if body.len() >= 4 { get32(body, 0) } else { 0 };
        match p.kind {
            VM_PKT_COMP => {
                let status = if body.len() >= 8 { get32(body, 4) } else { 0 };
                Ok(Ev::Done {
                    id: p.trans_id,
                    kind,
                    status,
                })
            }
            VM_PKT_DATA_USING_XFER_PAGES if kind == NVSP_MSG1_SEND_RNDIS_PKT => {
                self.xfer(bus, p)?;
                Ok(Ev::Rndis)
            }
            _ => Err(msg!(
                "unexpected packet type {} (NVSP {}) from the host",
                p.kind,
                kind
            )),
        }
    }

    /// A transfer-page packet: copy each range's RNDIS message out of the receive buffer,
    /// then complete the packet.
    fn xfer(&mut self, bus: &mut Bus, p: Pkt) -> Result<(), Msg> {
        let h = &self.pkt[..p.len];
        if p.len < 24 {
            return Err(msg!("transfer-page packet of {} bytes", p.len));
        }
        let set = u16::from_le_bytes([h[16], h[17]]);
        let count = get32(h, 20) as usize;
        if set != NETVSC_RECEIVE_BUFFER_ID || 24 + count * 8 > p.data_off {
            return Err(msg!(
                "transfer-page packet: page set {:#x}, {} ranges, data at {}",
                set,
                count,
                p.data_off
            ));
        }
        for i in 0..count {
            let h = &self.pkt[..p.len];
            let (len, off) = (get32(h, 24 + i * 8) as usize, get32(h, 28 + i * 8) as usize);
            if off.checked_add(len).is_none_or(|e| e > RX_PAGES * 4096) || len < 8 {
                return Err(msg!(
                    "receive range {} +{} outside the receive buffer",
                    off,
                    len
                ));
            }
            let src = gpa(&raw const RXBUF) + off as u64;
            let mut slot = [0u8; SLOT];
            let n = len.min(SLOT);
            for (j, b) in slot[..n].iter_mut().enumerate() {
                *b = crate::sys::read_u8(src + j as u64);
            }
            self.rndis_in(&slot[..n], len);
        }
        let done = nvsp_msg(NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE, &[NVSP_STAT_SUCCESS]);
        self.ch.send_completion(bus, p.trans_id, &done[..8])
    }

    fn rndis_in(&mut self, m: &[u8], full_len: usize) {
        let kind = get32(m, 0);
        match kind {
            RNDIS_MSG_PACKET => {
                if self.n_frames < QUEUE && full_len <= SLOT {
                    self.frames[self.n_frames][..m.len()].copy_from_slice(m);
                    self.frame_len[self.n_frames] = m.len();
                    self.n_frames += 1;
                } else {
                    self.dropped += 1;
                }
            }
            RNDIS_MSG_INDICATE => {
                self.indicated = if m.len() >= 12 { get32(m, 8) } else { 0 };
                diag!("netvsc: RNDIS indicate status {:#x}", self.indicated);
            }
            _ => {
                self.resp[..m.len()].copy_from_slice(m);
                self.resp_len = m.len();
            }
        }
    }

    /// An RNDIS control request (req_id at 8 filled in here); waits for the send
    /// completion and the matching response, which is returned (in `self.resp`).
    fn rndis_request(&mut self, bus: &mut Bus, m: &mut [u8]) -> Result<&[u8], Msg> {
        let req = self.req_id;
        self.req_id += 1;
        m[8..12].copy_from_slice(&req.to_le_bytes());
        let want = get32(m, 0) | RNDIS_MSG_COMPLETION;
        self.resp_len = 0;
        let id = self.rndis_send(bus, RNDIS_CHANNEL_CONTROL, m, Some(0))?;
        let (mut sent, mut answered) = (false, false);
        for _ in 0..32 {
            match self.pump(bus)? {
                Ev::Done {
                    id: d,
                    kind,
                    status,
                } if d == id => {
                    if kind != NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE || status != NVSP_STAT_SUCCESS {
                        return Err(msg!(
                            "RNDIS {:#x} completed with NVSP {} status {}",
                            want,
                            kind,
                            status
                        ));
                    }
                    sent = true;
                }
                Ev::Done { id: d, .. } => {
                    diag!("netvsc: completion for {} while waiting for {}", d, id)
                }
                Ev::Rndis => {
                    if self.resp_len >= 16
                        && get32(&self.resp, 0) == want
                        && get32(&self.resp, 8) == req
                    {
                        answered = true;
                    }
                }
            }
            if sent && answered {
                return Ok(&self.resp[..self.resp_len]);
            }
        }
        Err(msg!(
            "RNDIS request {:#x}: sent {} answered {}",
            want & 0xff,
            sent,
            answered
        ))
    }

    fn rndis_init(&mut self, bus: &mut Bus) -> Result<(), Msg> {
        let (mut m, n) = rndis_msg(RNDIS_MSG_INIT, &[0, 1, 0, 0x4000]);
        let r = self.rndis_request(bus, &mut m[..n])?;
        if get32(r, 12) != RNDIS_STATUS_SUCCESS || r.len() < 40 {
            return Err(msg!(
                "RNDIS INITIALIZE status {:#x} ({} bytes)",
                get32(r, 12),
                r.len()
            ));
        }
        let (major, minor, medium, max_xfer) =
            (get32(r, 16), get32(r, 20), get32(r, 28), get32(r, 36));
        diag!(
            "netvsc: RNDIS {}.{} medium {} max_xfer {}",
            major,
            minor,
            medium,
            max_xfer
        );
        let mac = self.query(bus, OID_802_3_PERMANENT_ADDRESS)?;
        if mac.1 < 6 {
            return Err(msg!("permanent address of {} bytes", mac.1));
        }
        self.mac.copy_from_slice(&mac.0[..6]);
        let mtu = self.query(bus, OID_GEN_MAXIMUM_FRAME_SIZE)?;
        self.mtu = u32::from_le_bytes([mtu.0[0], mtu.0[1], mtu.0[2], mtu.0[3]]);
        let filter =
            NDIS_PACKET_TYPE_DIRECTED | NDIS_PACKET_TYPE_MULTICAST | NDIS_PACKET_TYPE_BROADCAST;
        let st = self.set(bus, OID_GEN_CURRENT_PACKET_FILTER, filter)?;
        if st != RNDIS_STATUS_SUCCESS {
            return Err(msg!("SET packet filter status {:#x}", st));
        }
        let m = self.mac;
        diag!(
            "netvsc: mac {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x} mtu {}",
            m[0],
            m[1],
            m[2],
            m[3],
            m[4],
            m[5],
            self.mtu
        );
        Ok(())
    }

    /// RNDIS QUERY: the information buffer (first 64 bytes) and its length.
    pub fn query(&mut self, bus: &mut Bus, oid: u32) -> Result<([u8; 64], usize), Msg> {
        let (mut m, n) = rndis_msg(RNDIS_MSG_QUERY, &[0, oid, 0, 20, 0]);
        let r = self.rndis_request(bus, &mut m[..n])?;
        let (st, len, off) = (get32(r, 12), get32(r, 16) as usize, get32(r, 20) as usize);
        if st != RNDIS_STATUS_SUCCESS {
            return Err(msg!("QUERY {:#x} status {:#x}", oid, st));
        }
        let start = 8 + off;
        if start.checked_add(len).is_none_or(|e| e > r.len()) {
            return Err(msg!(
                "QUERY {:#x}: {} bytes at {} beyond the {}-byte reply",
                oid,
                len,
                off,
                r.len()
            ));
        }
        let mut out = [0u8; 64];
        let n = len.min(64);
        out[..n].copy_from_slice(&r[start..start + n]);
        Ok((out, len))
    }

    /// RNDIS SET of a u32 OID: the completion's status.
    pub fn set(&mut self, bus: &mut Bus, oid: u32, value: u32) -> Result<u32, Msg> {
        let (mut m, n) = rndis_msg(RNDIS_MSG_SET, &[0, oid, 4, 20, 0, value]);
        let r = self.rndis_request(bus, &mut m[..n])?;
        Ok(get32(r, 12))
    }

    /// Sends one Ethernet frame as an RNDIS PACKET (through the send buffer, or as a
    /// GPA-direct page buffer) and waits for its completion: the NVSP status.
    pub fn send_frame(
        &mut self,
        bus: &mut Bus,
        frame: &[u8],
        via_send_buffer: bool,
    ) -> Result<u32, Msg> {
        let mut m = [0u8; SLOT + RNDIS_PACKET_HDR];
        let total = RNDIS_PACKET_HDR + frame.len();
        if total > m.len() {
            return Err(msg!(
                "frame of {} bytes too big for this client",
                frame.len()
            ));
        }
        let (hdr, n) = rndis_msg(
            RNDIS_MSG_PACKET,
            &[36, frame.len() as u32, 0, 0, 0, 0, 0, 0, 0],
        );
        m[..n].copy_from_slice(&hdr[..n]);
        m[4..8].copy_from_slice(&(total as u32).to_le_bytes());
        m[RNDIS_PACKET_HDR..total].copy_from_slice(frame);
        let section = via_send_buffer.then_some(1);
        let id = self.rndis_send(bus, RNDIS_CHANNEL_DATA, &m[..total], section)?;
        for _ in 0..32 {
            match self.pump(bus)? {
                Ev::Done { id: d, status, .. } if d == id => return Ok(status),
                Ev::Done { id: d, .. } => {
                    diag!("netvsc: completion for {} while waiting for {}", d, id)
                }
                Ev::Rndis => {}
            }
        }
        Err(msg!("frame send {} not completed", id))
    }

    /// The next received frame (waiting for it): copied into `out`, its length returned.
    pub fn recv_frame(&mut self, bus: &mut Bus, out: &mut [u8]) -> Result<usize, Msg> {
        for _ in 0..32 {
            if self.n_frames > 0 {
                let m = self.frames[0];
                let mlen = self.frame_len[0];
                self.frames.copy_within(1..self.n_frames, 0);
                self.frame_len.copy_within(1..self.n_frames, 0);
                self.n_frames -= 1;
                let (off, len) = (get32(&m, 8) as usize, get32(&m, 12) as usize);
                let start = 8 + off;
                if start.checked_add(len).is_none_or(|e| e > mlen) || len > out.len() {
                    return Err(msg!(
                        "RNDIS packet: {} bytes at {} in a {}-byte message",
                        len,
                        off,
                        mlen
                    ));
                }
                out[..len].copy_from_slice(&m[start..start + len]);
                return Ok(len);
            }
            match self.pump(bus)? {
                Ev::Done { id, .. } => diag!("netvsc: stray completion {}", id),
                Ev::Rndis => {}
            }
        }
        Err(msg!("no frame received"))
    }

    /// Whether a frame is waiting or arrives within `tsc` cycles.
    pub fn frame_within(&mut self, bus: &mut Bus, tsc: u64) -> Result<bool, Msg> {
        let t0 = crate::sys::rdtsc();
        while self.n_frames == 0 && crate::sys::rdtsc().wrapping_sub(t0) < tsc {
            if self.ch.readable() {
                self.pump(bus)?;
            }
        }
        Ok(self.n_frames > 0)
    }

    /// Linux's order (netvsc_device_remove): REVOKE_RECV_BUF and REVOKE_SEND_BUF (no
    /// answer), CLOSECHANNEL with the ring's GPADL teardown, then the buffers' GPADLs.
    pub fn close(mut self, bus: &mut Bus) -> Result<(), Msg> {
        let mut m = nvsp_msg(NVSP_MSG1_REVOKE_RECV_BUF, &[]);
        m[4..6].copy_from_slice(&NETVSC_RECEIVE_BUFFER_ID.to_le_bytes());
        self.ch.send_inband(bus, 0, false, &m)?;
        let mut m = nvsp_msg(NVSP_MSG1_REVOKE_SEND_BUF, &[]);
        m[4..6].copy_from_slice(&NETVSC_SEND_BUFFER_ID.to_le_bytes());
        self.ch.send_inband(bus, 0, false, &m)?;
        let relid = self.ch.offer.relid;
        let (rx, tx) = (self.rx_gpadl, self.tx_gpadl);
        self.ch.close(bus)?;
        bus.gpadl_teardown(relid, rx)?;
        bus.gpadl_teardown(relid, tx)
    }
}

fn nvsp_msg(kind: u32, words: &[u32]) -> [u8; NVSP_MSG_SIZE] {
    let mut m = [0u8; NVSP_MSG_SIZE];
    m[0..4].copy_from_slice(&kind.to_le_bytes());
    for (i, w) in words.iter().enumerate() {
        m[4 + i * 4..8 + i * 4].copy_from_slice(&w.to_le_bytes());
    }
    m
}

/// An RNDIS message of 8 + 4 * words.len() bytes (type, length, then the words).
fn rndis_msg<const N: usize>(kind: u32, words: &[u32; N]) -> ([u8; 64], usize) {
    let mut m = [0u8; 64];
    let len = 8 + 4 * N;
    m[0..4].copy_from_slice(&kind.to_le_bytes());
    m[4..8].copy_from_slice(&(len as u32).to_le_bytes());
    for (i, w) in words.iter().enumerate() {
        m[8 + i * 4..12 + i * 4].copy_from_slice(&w.to_le_bytes());
    }
    (m, len)
}
