//! A storvsc client (Linux drivers/scsi/storvsc_drv.c from the wire up): the VSTOR
//! initialization (BEGIN_INITIALIZATION, QUERY_PROTOCOL_VERSION newest first,
//! QUERY_PROPERTIES, END_INITIALIZATION) and EXECUTE_SRB with the data as one GPA-direct
//! range, completions matched by transaction id.
use super::conn::{get32, Bus};
use super::ring::Channel;
use super::wire::*;
use crate::ktap::Msg;
use crate::sys::Page;
use crate::{diag, msg};

/// The channel's ring buffer: 4 pages each way (a header page and 12 KiB of data).
pub const RING_PAGES: usize = 8;
static mut RING: [Page; RING_PAGES] = [const { Page([0; 4096]) }; RING_PAGES];

pub fn ring_gpa() -> u64 {
    (&raw const RING) as u64
}

/// What one SRB came back with.
#[derive(Clone, Copy)]
pub struct Srb {
    pub srb_status: u8,
    pub scsi_status: u8,
    /// data_transfer_length as the host returned it.
    pub xfer: u32,
    pub sense: [u8; 20],
}

impl Srb {
    pub fn ok(&self) -> bool {
        self.srb_status & 0x3f == SRB_STATUS_SUCCESS && self.scsi_status == 0
    }
    /// Fixed-format sense: (key, asc, ascq).
    pub fn sense_key(&self) -> (u8, u8, u8) {
        (self.sense[2] & 0x0f, self.sense[12], self.sense[13])
    }
}

pub struct Stor {
    pub ch: Channel,
    /// Negotiated VSTOR protocol (major << 8 | minor).
    pub proto: u16,
    sense_len: u8,
    /// Bytes the pre-Win8 vmscsi_request lacks (16, or 0 from Win8 on).
    delta: usize,
    pub max_transfer: u32,
    next_id: u64,
    pkt: [u8; 1024],
}

impl Stor {
    /// Finds the SCSI controller's offer, opens its channel and initializes VSTOR.
    pub fn open(bus: &mut Bus) -> Result<Stor, Msg> {
        let offer = bus
            .find(&SCSI_GUID)
            .ok_or_else(|| msg!("no SCSI controller offer among {} offers", bus.n_offers))?;
        let ch = Channel::open(bus, offer, ring_gpa(), RING_PAGES)?;
        let mut s = Stor {
            ch,
            proto: 0,
            sense_len: 0x12,
            delta: 16,
            max_transfer: 0,
            next_id: 1,
            pkt: [0; 1024],
        };
        s.init(bus)?;
        Ok(s)
    }

    /// Sends a vstor_packet (sized for the negotiated protocol, as Linux does), with the
    /// data range if any, and waits for its completion; returns the completion's packet.
    pub fn exec(
        &mut self,
        bus: &mut Bus,
        pkt: &[u8; VSTOR_PACKET],
        data: Option<(u64, u32)>,
    ) -> Result<[u8; VSTOR_PACKET], Msg> {
        let id = self.next_id;
        self.next_id += 1;
        let size = VSTOR_PACKET - self.delta;
        match data {
            None => self.ch.send_inband(bus, id, true, &pkt[..size])?,
            Some((buf, len)) => self.ch.send_gpa_direct(bus, id, buf, len, &pkt[..size])?,
        }
        for _ in 0..32 {
            let p = self.ch.recv(bus, &mut self.pkt)?;
            let payload = &self.pkt[p.data_off..p.len];
            if p.kind == VM_PKT_COMP && p.trans_id == id {
                let mut out = [0u8; VSTOR_PACKET];
                let n = payload.len().min(VSTOR_PACKET);
                out[..n].copy_from_slice(&payload[..n]);
                if n < 12 {
                    return Err(msg!("completion of {} bytes", n));
                }
                return Ok(out);
            }
            // The host may send its own operations (ENUMERATE_BUS, REMOVE_DEVICE).
            let op = if payload.len() >= 4 {
                get32(payload, 0)
            } else {
                0
            };
            diag!(
                "storvsc: packet type {} trans {} op {} while waiting for {}",
                p.kind,
                p.trans_id,
                op,
                id
            );
        }
        Err(msg!("no completion for request {}", id))
    }

    fn op(
        &mut self,
        bus: &mut Bus,
        op: u32,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<[u8; 64], Msg> {
        let mut pkt = [0u8; VSTOR_PACKET];
        pkt[0..4].copy_from_slice(&op.to_le_bytes());
        pkt[4..8].copy_from_slice(&VSTOR_FLAG_REQUEST_COMPLETION.to_le_bytes());
        fill(&mut pkt[VSTOR_UNION..]);
        self.exec(bus, &pkt, None)
    }

    fn init(&mut self, bus: &mut Bus) -> Result<(), Msg> {
        let r = self.op(bus, VSTOR_OP_BEGIN_INIT, |_| {})?;
        check_complete(&r, "BEGIN_INITIALIZATION")?;
        for (ver, sense, delta) in VSTOR_VERSIONS {
            let r = self.op(bus, VSTOR_OP_QUERY_PROTOCOL, |u| {
                u[0..2].copy_from_slice(&ver.to_le_bytes());
            })?;
            if get32(&r, 0) != VSTOR_OP_COMPLETE_IO {
                return Err(msg!(
                    "QUERY_PROTOCOL_VERSION answered with operation {}",
                    get32(&r, 0)
                ));
            }
            if get32(&r, 8) == 0 {
                self.proto = ver;
                self.sense_len = sense;
                self.delta = delta;
                break;
            }
        }
        if self.proto == 0 {
            return Err(msg!("the host accepted no VSTOR protocol 6.2 .. 2.0"));
        }
        let r = self.op(bus, VSTOR_OP_QUERY_PROPERTIES, |_| {})?;
        check_complete(&r, "QUERY_PROPERTIES")?;
        self.max_transfer = get32(&r, VSTOR_UNION + PROP_MAX_TRANSFER);
        let r = self.op(bus, VSTOR_OP_END_INIT, |_| {})?;
        check_complete(&r, "END_INITIALIZATION")?;
        diag!(
            "storvsc: relid {} protocol {}.{} max_transfer {} bytes",
            self.ch.offer.relid,
            self.proto >> 8,
            self.proto & 0xff,
            self.max_transfer
        );
        Ok(())
    }

    /// EXECUTE_SRB: `cdb` on target 0 LUN 0; data of `len` bytes at `buf` in direction
    /// `dir` (READ_TYPE / WRITE_TYPE), or none (`len` 0, UNKNOWN_TYPE).
    pub fn scsi(
        &mut self,
        bus: &mut Bus,
        cdb: &[u8],
        dir: u8,
        buf: u64,
        len: u32,
    ) -> Result<Srb, Msg> {
        let mut pkt = [0u8; VSTOR_PACKET];
        pkt[0..4].copy_from_slice(&VSTOR_OP_EXECUTE_SRB.to_le_bytes());
        pkt[4..8].copy_from_slice(&VSTOR_FLAG_REQUEST_COMPLETION.to_le_bytes());
        let srb = &mut pkt[VSTOR_UNION..];
        srb[0..2].copy_from_slice(&((SRB_LEN - self.delta) as u16).to_le_bytes());
        srb[SRB_CDB_LEN] = cdb.len() as u8;
        srb[SRB_SENSE_LEN] = self.sense_len;
        srb[SRB_DATA_IN] = if len == 0 { UNKNOWN_TYPE } else { dir };
        srb[SRB_XFER_LEN..SRB_XFER_LEN + 4].copy_from_slice(&len.to_le_bytes());
        srb[SRB_CDB..SRB_CDB + cdb.len()].copy_from_slice(cdb);
        if self.delta == 0 {
            srb[38] = 0xff; // queue_tag = SP_UNTAGGED
            srb[39] = 0x20; // queue_action = SRB_SIMPLE_TAG_REQUEST
            let flags = 0x8 // SRB_FLAGS_DISABLE_SYNCH_TRANSFER
                | match (len, dir) {
                    (0, _) => 0,
                    (_, READ_TYPE) => SRB_FLAGS_DATA_IN,
                    _ => SRB_FLAGS_DATA_OUT,
                };
            srb[SRB_FLAGS..SRB_FLAGS + 4].copy_from_slice(&flags.to_le_bytes());
        }
        let data = (len != 0).then_some((buf, len));
        let r = self.exec(bus, &pkt, data)?;
        if get32(&r, 0) != VSTOR_OP_COMPLETE_IO {
            return Err(msg!("EXECUTE_SRB answered with operation {}", get32(&r, 0)));
        }
        let u = &r[VSTOR_UNION..];
        let mut sense = [0u8; 20];
        sense.copy_from_slice(&u[SRB_CDB..SRB_CDB + 20]);
        Ok(Srb {
            srb_status: u[SRB_STATUS],
            scsi_status: u[SRB_SCSI_STATUS],
            xfer: get32(u, SRB_XFER_LEN),
            sense,
        })
    }

    /// READ CAPACITY (10): (last LBA + 1, block length).
    pub fn capacity(&mut self, bus: &mut Bus, buf: u64) -> Result<(u64, u32), Msg> {
        crate::sys::write_u64(buf, 0);
        let r = self.scsi(bus, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], READ_TYPE, buf, 8)?;
        if !r.ok() {
            return Err(msg!(
                "READ CAPACITY(10): srb {:#x} scsi {:#x}",
                r.srb_status,
                r.scsi_status
            ));
        }
        let v = crate::sys::read_u64(buf).to_le_bytes();
        let last = u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
        let block = u32::from_be_bytes([v[4], v[5], v[6], v[7]]);
        Ok((u64::from(last) + 1, block))
    }

    /// READ(10) / WRITE(10) of `blocks` 512-byte blocks at `lba`.
    pub fn rw(
        &mut self,
        bus: &mut Bus,
        write: bool,
        lba: u32,
        blocks: u16,
        buf: u64,
    ) -> Result<Srb, Msg> {
        let l = lba.to_be_bytes();
        let n = blocks.to_be_bytes();
        let cdb = [
            if write { 0x2a } else { 0x28 },
            0,
            l[0],
            l[1],
            l[2],
            l[3],
            0,
            n[0],
            n[1],
            0,
        ];
        let dir = if write { WRITE_TYPE } else { READ_TYPE };
        self.scsi(bus, &cdb, dir, buf, u32::from(blocks) * 512)
    }

    /// CLOSECHANNEL and GPADL teardown.
    pub fn close(self, bus: &mut Bus) -> Result<(), Msg> {
        self.ch.close(bus)
    }
}

fn check_complete(r: &[u8; 64], what: &str) -> Result<(), Msg> {
    let (op, st) = (get32(r, 0), get32(r, 8));
    if op != VSTOR_OP_COMPLETE_IO || st != 0 {
        return Err(msg!("{}: operation {} status {:#x}", what, op, st));
    }
    Ok(())
}
