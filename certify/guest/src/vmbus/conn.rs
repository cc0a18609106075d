//! The VMBus connection: INITIATE_CONTACT with version negotiation, REQUESTOFFERS and the
//! offers up to ALLOFFERS_DELIVERED, GPADLs, OPENCHANNEL/CLOSECHANNEL, UNLOAD (Linux's
//! drivers/hv/connection.c and channel_mgmt.c, from the client's side).
use super::synic::{self, Hv};
use super::wire::*;
use crate::ktap::Msg;
use crate::sys::{self, Page};
use crate::{diag, msg};

/// One OFFERCHANNEL.
#[derive(Clone, Copy)]
pub struct Offer {
    pub class: [u8; 16],
    pub instance: [u8; 16],
    pub relid: u32,
    pub conn_id: u32,
    pub sub_index: u16,
    pub flags: u16,
    pub monitor_id: u8,
    pub monitor_allocated: bool,
    pub dedicated_interrupt: bool,
}

pub const MAX_OFFERS: usize = 16;

/// Interrupt page (pre-5.0 INITIATE_CONTACT) and the two monitor pages Linux passes.
static mut CONTACT_PAGES: [Page; 3] = [const { Page([0; 4096]) }; 3];

pub struct Bus {
    pub hv: Hv,
    /// Negotiated version (0 until INITIATE_CONTACT succeeded).
    pub version: u32,
    /// Connection id for messages after INITIATE_CONTACT.
    pub msg_conn: u32,
    pub offers: [Option<Offer>; MAX_OFFERS],
    pub n_offers: usize,
    next_gpadl: u32,
    next_open_id: u32,
    /// Messages that arrived while waiting for another (logged, counted).
    pub unexpected: u32,
    buf: [u8; MSG_PAYLOAD_MAX],
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}
pub fn get32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn get16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn header(b: &mut [u8], kind: u32) {
    put32(b, 0, kind);
    put32(b, 4, 0);
}

pub fn fmt_guid(g: &[u8; 16]) -> Msg {
    msg!(
        "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        u32::from_le_bytes([g[0], g[1], g[2], g[3]]),
        u16::from_le_bytes([g[4], g[5]]),
        u16::from_le_bytes([g[6], g[7]]),
        g[8],
        g[9],
        g[10],
        g[11],
        g[12],
        g[13],
        g[14],
        g[15]
    )
}

impl Bus {
    /// The SynIC enabled, nothing negotiated yet.
    pub fn new(guest_os_id: Option<&str>) -> Result<Bus, Msg> {
        Ok(Bus {
            hv: synic::enable(guest_os_id)?,
            version: 0,
            msg_conn: MSG_CONN_ID,
            offers: [None; MAX_OFFERS],
            n_offers: 0,
            next_gpadl: FIRST_GPADL,
            next_open_id: 1,
            unexpected: 0,
            buf: [0; MSG_PAYLOAD_MAX],
        })
    }

    /// SynIC enabled, the newest version the host accepts negotiated, offers collected.
    pub fn connect(guest_os_id: Option<&str>) -> Result<Bus, Msg> {
        let mut bus = Bus::new(guest_os_id)?;
        bus.negotiate()?;
        bus.request_offers()?;
        Ok(bus)
    }

    /// Waits for the channel message `want`; other messages are logged and dropped
    /// (an OFFERCHANNEL is kept). Returns the payload length; the payload is in `self.buf`.
    fn expect(&mut self, want: u32) -> Result<usize, Msg> {
        for _ in 0..64 {
            let (kind, len) = self.hv.next(&mut self.buf)?;
            if kind != HVMSG_VMBUS {
                diag!("vmbus: SynIC message type {:#x} on SINT2 ignored", kind);
                self.unexpected += 1;
                continue;
            }
            if len < 8 {
                return Err(msg!("channel message of {} bytes (< header)", len));
            }
            let got = get32(&self.buf, 0);
            if got == want {
                return Ok(len);
            }
            if got == CHANNELMSG_OFFERCHANNEL && len >= OFFER_SIZE {
                self.record_offer();
            } else {
                diag!("vmbus: channel message {} while waiting for {}", got, want);
                self.unexpected += 1;
            }
        }
        Err(msg!("too many other messages while waiting for {}", want))
    }

    fn post(&mut self, conn: u32, m: &[u8]) -> Result<(), Msg> {
        self.hv.post(conn, m)
    }

    /// One INITIATE_CONTACT: Ok(true) when the host accepted `version`.
    pub fn initiate_contact(&mut self, version: u32) -> Result<bool, Msg> {
        let mut m = [0u8; IC_SIZE];
        header(&mut m, CHANNELMSG_INITIATE_CONTACT);
        put32(&mut m, IC_VERSION, version);
        put32(&mut m, IC_TARGET_VCPU, 0);
        let pages = (&raw const CONTACT_PAGES) as u64;
        let conn = if version >= VERSION_WIN10_V5 {
            m[IC_MSG_SINT] = VMBUS_SINT as u8;
            MSG_CONN_ID_4
        } else {
            put64(&mut m, IC_INTERRUPT_PAGE, pages);
            MSG_CONN_ID
        };
        put64(&mut m, IC_MONITOR1, pages + 4096);
        put64(&mut m, IC_MONITOR2, pages + 8192);
        self.post(conn, &m)?;
        let len = self.expect(CHANNELMSG_VERSION_RESPONSE)?;
        if len < 9 {
            return Err(msg!("VERSION_RESPONSE of {} bytes", len));
        }
        if self.buf[VR_SUPPORTED] == 0 {
            return Ok(false);
        }
        self.version = version;
        self.msg_conn = if version >= VERSION_WIN10_V5 {
            if len < 16 {
                return Err(msg!(
                    "5.x VERSION_RESPONSE of {} bytes lacks msg_conn_id",
                    len
                ));
            }
            get32(&self.buf, VR_MSG_CONN_ID)
        } else {
            MSG_CONN_ID
        };
        Ok(true)
    }

    /// Linux's vmbus_negotiate_version loop: newest first until one is accepted.
    pub fn negotiate(&mut self) -> Result<u32, Msg> {
        for v in VERSIONS {
            if self.initiate_contact(v)? {
                diag!(
                    "vmbus: version {}.{} accepted, message connection id {}",
                    v >> 16,
                    v & 0xffff,
                    self.msg_conn
                );
                return Ok(v);
            }
        }
        Err(msg!("the host accepted none of VMBus 5.3 .. 2.4 (WIN8)"))
    }

    fn record_offer(&mut self) {
        let b = &self.buf;
        let mut class = [0u8; 16];
        let mut instance = [0u8; 16];
        class.copy_from_slice(&b[OFFER_IF_TYPE..OFFER_IF_TYPE + 16]);
        instance.copy_from_slice(&b[OFFER_IF_INSTANCE..OFFER_IF_INSTANCE + 16]);
        let o = Offer {
            class,
            instance,
            relid: get32(b, OFFER_CHILD_RELID),
            conn_id: get32(b, OFFER_CONNECTION_ID),
            sub_index: get16(b, OFFER_SUB_INDEX),
            flags: get16(b, OFFER_CHN_FLAGS),
            monitor_id: b[OFFER_MONITOR_ID],
            monitor_allocated: b[OFFER_MONITOR_ALLOCATED] & 1 != 0,
            dedicated_interrupt: get16(b, OFFER_DEDICATED_INTERRUPT) & 1 != 0,
        };
        diag!(
            "vmbus: offer relid {} class {} instance {} conn {} flags {:#x} monitor {}/{} dedicated {}",
            o.relid,
            fmt_guid(&o.class).as_str(),
            fmt_guid(&o.instance).as_str(),
            o.conn_id,
            o.flags,
            o.monitor_allocated as u8,
            o.monitor_id,
            o.dedicated_interrupt as u8
        );
        if self.n_offers < MAX_OFFERS {
            self.offers[self.n_offers] = Some(o);
            self.n_offers += 1;
        }
    }

    /// REQUESTOFFERS, then OFFERCHANNELs until ALLOFFERS_DELIVERED.
    pub fn request_offers(&mut self) -> Result<usize, Msg> {
        let mut m = [0u8; 8];
        header(&mut m, CHANNELMSG_REQUESTOFFERS);
        self.post(self.msg_conn, &m)?;
        self.expect(CHANNELMSG_ALLOFFERS_DELIVERED)?;
        Ok(self.n_offers)
    }

    pub fn find(&self, class: &[u8; 16]) -> Option<Offer> {
        self.offers[..self.n_offers]
            .iter()
            .flatten()
            .find(|o| &o.class == class && o.sub_index == 0)
            .copied()
    }

    /// GPADL_HEADER (+ GPADL_BODY messages past 26 pages) for `pages` pages at `gpa`;
    /// waits for GPADL_CREATED. Returns (handle, creation_status).
    pub fn gpadl_create_status(
        &mut self,
        relid: u32,
        gpa: u64,
        pages: usize,
    ) -> Result<(u32, u32), Msg> {
        let handle = self.next_gpadl;
        self.next_gpadl += 1;
        let first = pages.min(GPADL_HEADER_PFNS);
        let mut m = [0u8; MSG_PAYLOAD_MAX];
        header(&mut m, CHANNELMSG_GPADL_HEADER);
        put32(&mut m, 8, relid);
        put32(&mut m, 12, handle);
        let range_buflen = 8 + pages * 8;
        m[16..18].copy_from_slice(&(range_buflen as u16).to_le_bytes());
        m[18..20].copy_from_slice(&1u16.to_le_bytes());
        put32(&mut m, 20, (pages * 4096) as u32);
        put32(&mut m, 24, 0);
        let pfn = gpa >> 12;
        for i in 0..first {
            put64(&mut m, 28 + i * 8, pfn + i as u64);
        }
        self.post(self.msg_conn, &m[..28 + first * 8])?;
        let mut done = first;
        let mut number = 0u32;
        while done < pages {
            let n = (pages - done).min(GPADL_BODY_PFNS);
            let mut b = [0u8; MSG_PAYLOAD_MAX];
            header(&mut b, CHANNELMSG_GPADL_BODY);
            number += 1;
            put32(&mut b, 8, number);
            put32(&mut b, 12, handle);
            for i in 0..n {
                put64(&mut b, 16 + i * 8, pfn + (done + i) as u64);
            }
            self.post(self.msg_conn, &b[..16 + n * 8])?;
            done += n;
        }
        let len = self.expect(CHANNELMSG_GPADL_CREATED)?;
        if len < 20 {
            return Err(msg!("GPADL_CREATED of {} bytes", len));
        }
        let (r, h, st) = (
            get32(&self.buf, 8),
            get32(&self.buf, 12),
            get32(&self.buf, 16),
        );
        if r != relid || h != handle {
            return Err(msg!(
                "GPADL_CREATED for relid {} gpadl {:#x}, want {} {:#x}",
                r,
                h,
                relid,
                handle
            ));
        }
        Ok((handle, st))
    }

    pub fn gpadl_create(&mut self, relid: u32, gpa: u64, pages: usize) -> Result<u32, Msg> {
        let (h, st) = self.gpadl_create_status(relid, gpa, pages)?;
        if st != 0 {
            return Err(msg!(
                "GPADL {:#x} ({} pages) refused: status {:#x}",
                h,
                pages,
                st
            ));
        }
        Ok(h)
    }

    /// GPADL_TEARDOWN, waits for GPADL_TORNDOWN.
    pub fn gpadl_teardown(&mut self, relid: u32, handle: u32) -> Result<(), Msg> {
        let mut m = [0u8; 16];
        header(&mut m, CHANNELMSG_GPADL_TEARDOWN);
        put32(&mut m, 8, relid);
        put32(&mut m, 12, handle);
        self.post(self.msg_conn, &m)?;
        let len = self.expect(CHANNELMSG_GPADL_TORNDOWN)?;
        let h = if len >= 12 { get32(&self.buf, 8) } else { 0 };
        if h != handle {
            return Err(msg!("GPADL_TORNDOWN names {:#x}, want {:#x}", h, handle));
        }
        Ok(())
    }

    /// OPENCHANNEL with the ring GPADL (guest->host ring first, `send_pages` pages of it);
    /// returns OPENCHANNEL_RESULT's status (0 = opened).
    pub fn open_status(&mut self, relid: u32, gpadl: u32, send_pages: u32) -> Result<u32, Msg> {
        let open_id = self.next_open_id;
        self.next_open_id += 1;
        let mut m = [0u8; OPEN_SIZE];
        header(&mut m, CHANNELMSG_OPENCHANNEL);
        put32(&mut m, 8, relid);
        put32(&mut m, 12, open_id);
        put32(&mut m, 16, gpadl);
        put32(&mut m, 20, 0);
        put32(&mut m, 24, send_pages);
        self.post(self.msg_conn, &m)?;
        let len = self.expect(CHANNELMSG_OPENCHANNEL_RESULT)?;
        if len < 20 {
            return Err(msg!("OPENCHANNEL_RESULT of {} bytes", len));
        }
        let (r, id, st) = (
            get32(&self.buf, 8),
            get32(&self.buf, 12),
            get32(&self.buf, 16),
        );
        if r != relid || id != open_id {
            return Err(msg!(
                "OPENCHANNEL_RESULT for relid {} openid {}, want {} {}",
                r,
                id,
                relid,
                open_id
            ));
        }
        Ok(st)
    }

    /// CLOSECHANNEL (the protocol has no answer to it).
    pub fn close(&mut self, relid: u32) -> Result<(), Msg> {
        let mut m = [0u8; 12];
        header(&mut m, CHANNELMSG_CLOSECHANNEL);
        put32(&mut m, 8, relid);
        self.post(self.msg_conn, &m)
    }

    /// UNLOAD, waits for UNLOAD_RESPONSE; the bus is disconnected afterwards.
    pub fn unload(&mut self) -> Result<(), Msg> {
        let mut m = [0u8; 8];
        header(&mut m, CHANNELMSG_UNLOAD);
        self.post(self.msg_conn, &m)?;
        self.expect(CHANNELMSG_UNLOAD_RESPONSE)?;
        self.version = 0;
        self.n_offers = 0;
        Ok(())
    }
}

/// A zeroed region of `pages` pages at `gpa` (ring buffers start zeroed).
pub fn zero(gpa: u64, pages: usize) {
    for off in (0..pages as u64 * 4096).step_by(8) {
        sys::write_u64(gpa + off, 0);
    }
}
