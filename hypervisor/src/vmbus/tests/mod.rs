//! Tests of the VMBus host: a recording sink, an echo device and a guest side written here
//! independently of the host's code (its own ring writer and reader, its own messages).
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::device::*;
use super::{VmbusHost, VmbusSink};
use crate::abi::vmbus::*;

mod messages;
mod parsers;
mod rings;
mod storvsc;
mod synic;
mod worker;

/// Guest RAM of the tests.
pub const MEM_BYTES: usize = 4 << 20;

/// What the host sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ev {
    /// A message.
    Msg { vp: u32, sint: u8, payload: Vec<u8> },
    /// An event flag.
    Signal { vp: u32, sint: u8, flag: u32 },
}

/// A sink that records.
#[derive(Default)]
pub struct Recorder {
    ev: Mutex<Vec<Ev>>,
    /// Refuse every message (a full SynIC queue).
    pub refuse: AtomicBool,
}

impl VmbusSink for Recorder {
    fn post_message(&self, vp: u32, sint: u8, message_type: u32, payload: &[u8]) -> bool {
        assert_eq!(message_type, HV_MESSAGE_TYPE_CHANNEL);
        assert!(payload.len() <= MAX_MESSAGE_PAYLOAD);
        if self.refuse.load(Ordering::SeqCst) {
            return false;
        }
        self.ev.lock().unwrap().push(Ev::Msg {
            vp,
            sint,
            payload: payload.to_vec(),
        });
        true
    }
    fn signal_event(&self, vp: u32, sint: u8, flag: u32) {
        self.ev.lock().unwrap().push(Ev::Signal { vp, sint, flag });
    }
}

impl Recorder {
    /// Everything recorded since the last take.
    pub fn take(&self) -> Vec<Ev> {
        std::mem::take(&mut *self.ev.lock().unwrap())
    }
    /// The message payloads recorded since the last take (signals dropped).
    pub fn msgs(&self) -> Vec<Vec<u8>> {
        self.take()
            .into_iter()
            .filter_map(|e| match e {
                Ev::Msg { payload, .. } => Some(payload),
                Ev::Signal { .. } => None,
            })
            .collect()
    }
    /// The signals recorded since the last take (messages dropped).
    pub fn signals(&self) -> Vec<(u32, u8, u32)> {
        self.take()
            .into_iter()
            .filter_map(|e| match e {
                Ev::Signal { vp, sint, flag } => Some((vp, sint, flag)),
                Ev::Msg { .. } => None,
            })
            .collect()
    }
}

/// What the echo device saw and is told to do.
#[derive(Default)]
pub struct EchoState {
    /// Packets received.
    pub seen: Mutex<Vec<Packet>>,
    /// Packets to send at the next poll.
    pub poll_out: Mutex<Vec<OutPacket>>,
    /// on_close calls.
    pub closes: AtomicUsize,
}

/// A device that completes every packet asking for it with the same payload. Payload
/// "fail" is malformed; "burst" + u32 n sends n in-band packets of 256 bytes; "gpadl" + u32
/// handle completes with the GPADL's page count (0xffffffff when unknown).
pub struct Echo {
    class: Guid,
    instance: Guid,
    st: Arc<EchoState>,
}

impl VmbusDevice for Echo {
    fn name(&self) -> &'static str {
        "echo"
    }
    fn class_id(&self) -> Guid {
        self.class
    }
    fn instance_id(&self) -> Guid {
        self.instance
    }
    fn on_packet(&mut self, ctx: &mut dyn ChannelCtx, pkt: &Packet) -> Result<(), DeviceError> {
        self.st.seen.lock().unwrap().push(pkt.clone());
        let p = &pkt.payload;
        if p.starts_with(b"fail") {
            return Err(DeviceError::Malformed("fail".into()));
        }
        if let Some(n) = p.strip_prefix(b"burst") {
            let n = u32::from_le_bytes(n[..4].try_into().unwrap());
            for i in 0..n {
                ctx.send(OutPacket::InBand {
                    transaction_id: u64::from(i),
                    completion_requested: false,
                    payload: vec![i as u8; 256],
                });
            }
        }
        if let Some(h) = p.strip_prefix(b"gpadl") {
            let h = u32::from_le_bytes(h[..4].try_into().unwrap());
            let n = ctx.gpadl_pfns(h).map_or(u32::MAX, |v| v.len() as u32);
            ctx.send(OutPacket::Completion {
                transaction_id: pkt.transaction_id,
                payload: n.to_le_bytes().to_vec(),
            });
            return Ok(());
        }
        if pkt.completion_requested {
            ctx.send(OutPacket::Completion {
                transaction_id: pkt.transaction_id,
                payload: p.clone(),
            });
        }
        Ok(())
    }
    fn poll(&mut self, ctx: &mut dyn ChannelCtx) -> Result<(), DeviceError> {
        for p in self.st.poll_out.lock().unwrap().drain(..) {
            ctx.send(p);
        }
        Ok(())
    }
    fn on_close(&mut self) {
        self.st.closes.fetch_add(1, Ordering::SeqCst);
    }
}

/// Little-endian stores into a message.
pub fn put(m: &mut [u8], off: usize, v: &[u8]) {
    m[off..off + v.len()].copy_from_slice(v);
}

/// A message of `size` bytes with type `ty`.
pub fn msg(ty: u32, size: usize) -> Vec<u8> {
    let mut m = vec![0u8; size];
    put(&mut m, 0, &ty.to_le_bytes());
    m
}

/// u32 at `off`.
pub fn rd32(m: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(m[off..off + 4].try_into().unwrap())
}

/// INITIATE_CONTACT for `version`, answered on VP `vcpu`.
pub fn contact(version: u32, vcpu: u32) -> Vec<u8> {
    let mut m = msg(CHANNELMSG_INITIATE_CONTACT, 40);
    put(&mut m, 8, &version.to_le_bytes());
    put(&mut m, 12, &vcpu.to_le_bytes());
    if version >= VERSION_WIN10_V5 {
        m[16] = MESSAGE_SINT;
    } else {
        put(&mut m, 16, &0x1000u64.to_le_bytes());
    }
    m
}

/// A packet the guest read: type, flags, transaction id, bytes after the data offset, and
/// the whole packet.
pub type GPacket = (u16, u16, u64, Vec<u8>, Vec<u8>);

/// A guest's view of one ring: header GPA and data pages.
#[derive(Clone, Debug)]
pub struct GRing {
    pub header: u64,
    pub data: Vec<u64>,
}

impl GRing {
    pub fn size(&self) -> u32 {
        self.data.len() as u32 * 4096
    }
    pub fn get(&self, mem: &GuestMemoryMmap, off: u64) -> u32 {
        mem.read_obj(GuestAddress(self.header + off)).unwrap()
    }
    pub fn set(&self, mem: &GuestMemoryMmap, off: u64, v: u32) {
        mem.write_obj(v, GuestAddress(self.header + off)).unwrap()
    }
    fn byte_addr(&self, pos: u32) -> GuestAddress {
        let pos = pos % self.size();
        GuestAddress(self.data[(pos / 4096) as usize] * 4096 + u64::from(pos % 4096))
    }
    fn put_bytes(&self, mem: &GuestMemoryMmap, pos: u32, b: &[u8]) {
        for (i, x) in b.iter().enumerate() {
            mem.write_obj(*x, self.byte_addr(pos + i as u32)).unwrap();
        }
    }
    fn get_bytes(&self, mem: &GuestMemoryMmap, pos: u32, n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| mem.read_obj(self.byte_addr(pos + i as u32)).unwrap())
            .collect()
    }
    /// Writes a packet as Linux's `hv_ringbuffer_write` does; false when it does not fit.
    /// `head` goes between the descriptor and the payload.
    pub fn write(
        &self,
        mem: &GuestMemoryMmap,
        ty: u16,
        flags: u16,
        tid: u64,
        head: &[u8],
        payload: &[u8],
    ) -> bool {
        let offset = 16 + head.len();
        let len = (offset + payload.len()).div_ceil(8) * 8;
        let mut p = vec![0u8; len];
        put(&mut p, 0, &ty.to_le_bytes());
        put(&mut p, 2, &((offset / 8) as u16).to_le_bytes());
        put(&mut p, 4, &((len / 8) as u16).to_le_bytes());
        put(&mut p, 6, &flags.to_le_bytes());
        put(&mut p, 8, &tid.to_le_bytes());
        put(&mut p, 16, head);
        put(&mut p, offset, payload);
        self.write_raw(mem, &p)
    }
    /// Writes raw packet bytes plus the trailer; false when they do not fit.
    pub fn write_raw(&self, mem: &GuestMemoryMmap, p: &[u8]) -> bool {
        let w = self.get(mem, 0);
        let r = self.get(mem, 4);
        let used = if w >= r { w - r } else { self.size() - r + w };
        let total = p.len() as u32 + 8;
        if self.size() - used <= total {
            return false;
        }
        self.put_bytes(mem, w, p);
        self.put_bytes(mem, w + p.len() as u32, &(u64::from(w) << 32).to_le_bytes());
        self.set(mem, 0, (w + total) % self.size());
        true
    }
    /// Reads one packet: (type, flags, tid, bytes after the data offset) and the raw packet.
    pub fn read(&self, mem: &GuestMemoryMmap) -> Option<GPacket> {
        let w = self.get(mem, 0);
        let r = self.get(mem, 4);
        if w == r {
            return None;
        }
        let d = self.get_bytes(mem, r, 16);
        let ty = u16::from_le_bytes([d[0], d[1]]);
        let off = u16::from_le_bytes([d[2], d[3]]) as usize * 8;
        let len = u16::from_le_bytes([d[4], d[5]]) as usize * 8;
        let flags = u16::from_le_bytes([d[6], d[7]]);
        let tid = u64::from_le_bytes(d[8..16].try_into().unwrap());
        let raw = self.get_bytes(mem, r, len);
        let trailer = self.get_bytes(mem, r + len as u32, 8);
        assert_eq!(
            u64::from_le_bytes(trailer.try_into().unwrap()) >> 32,
            u64::from(r),
            "trailer holds the write index before the packet"
        );
        self.set(mem, 4, (r + len as u32 + 8) % self.size());
        Some((ty, flags, tid, raw[off..].to_vec(), raw))
    }
}

/// An open channel from the guest's side.
pub struct GChan {
    pub conn_id: u32,
    pub gpadl: u32,
    /// Guest → host.
    pub out: GRing,
    /// Host → guest.
    pub inr: GRing,
}

/// A guest with a VMBus host, its sink and echo devices.
pub struct Guest {
    pub mem: GuestMemoryMmap,
    pub host: VmbusHost,
    pub sink: Arc<Recorder>,
    pub dev: Vec<Arc<EchoState>>,
    next_pfn: u64,
    next_gpadl: u32,
}

impl Guest {
    /// A guest whose host offers `devices` (no echo devices).
    pub fn with_devices(devices: Vec<Box<dyn VmbusDevice>>) -> Guest {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MEM_BYTES)]).unwrap();
        let sink = Arc::new(Recorder::default());
        let host = VmbusHost::new(mem.clone(), sink.clone(), devices).unwrap();
        Guest {
            mem,
            host,
            sink,
            dev: Vec::new(),
            next_pfn: 16,
            next_gpadl: 0xe1e10,
        }
    }

    /// `n` echo devices: SCSI class first, then NIC class.
    pub fn new(n: usize) -> Guest {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MEM_BYTES)]).unwrap();
        let sink = Arc::new(Recorder::default());
        let dev: Vec<Arc<EchoState>> = (0..n).map(|_| Arc::default()).collect();
        let devices = dev
            .iter()
            .enumerate()
            .map(|(i, st)| {
                Box::new(Echo {
                    class: if i == 0 { CLASS_SCSI } else { CLASS_NIC },
                    instance: [i as u8 + 1; 16],
                    st: st.clone(),
                }) as Box<dyn VmbusDevice>
            })
            .collect();
        let host = VmbusHost::new(mem.clone(), sink.clone(), devices).unwrap();
        Guest {
            mem,
            host,
            sink,
            dev,
            next_pfn: 16,
            next_gpadl: 0xe1e10,
        }
    }

    /// Posts a channel message on connection 1 from VP 0.
    pub fn post(&self, m: &[u8]) -> u16 {
        self.host
            .on_post_message(0, MESSAGE_CONNECTION_ID, HV_MESSAGE_TYPE_CHANNEL, m)
    }

    /// Connects at WIN10 (answers on VP 1) and drops the response.
    pub fn connected(n: usize) -> Guest {
        let g = Guest::new(n);
        assert_eq!(g.post(&contact(VERSION_WIN10, 1)), 0);
        let r = g.sink.msgs();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0][8], 1, "version accepted");
        g
    }

    /// `n` fresh pages, every other page (so that they are not contiguous).
    pub fn pages(&mut self, n: usize) -> Vec<u64> {
        let v = (0..n as u64).map(|i| self.next_pfn + 2 * i).collect();
        self.next_pfn += 2 * n as u64;
        v
    }

    /// Sends a GPADL as Linux does (26 PFNs in the header, 28 per body); returns the handle
    /// and the messages the host answered with.
    pub fn gpadl(&mut self, relid: u32, pfns: &[u64]) -> (u32, Vec<Vec<u8>>) {
        let h = self.next_gpadl;
        self.next_gpadl += 1;
        let size = pfns.len() as u32 * 4096;
        let first = pfns.len().min(26);
        let mut m = msg(CHANNELMSG_GPADL_HEADER, 20 + 8 + first * 8);
        put(&mut m, 8, &relid.to_le_bytes());
        put(&mut m, 12, &h.to_le_bytes());
        put(&mut m, 16, &((8 + pfns.len() * 8) as u16).to_le_bytes());
        put(&mut m, 18, &1u16.to_le_bytes());
        put(&mut m, 20, &size.to_le_bytes());
        for (i, p) in pfns[..first].iter().enumerate() {
            put(&mut m, 28 + i * 8, &p.to_le_bytes());
        }
        assert_eq!(self.post(&m), 0);
        for chunk in pfns[first..].chunks(28) {
            let mut b = msg(CHANNELMSG_GPADL_BODY, 16 + chunk.len() * 8);
            put(&mut b, 12, &h.to_le_bytes());
            for (i, p) in chunk.iter().enumerate() {
                put(&mut b, 16 + i * 8, &p.to_le_bytes());
            }
            assert_eq!(self.post(&b), 0);
        }
        (h, self.sink.msgs())
    }

    /// OPENCHANNEL message.
    pub fn open_msg(relid: u32, open_id: u32, gpadl: u32, vp: u32, downstream: u32) -> Vec<u8> {
        let mut m = msg(CHANNELMSG_OPENCHANNEL, 148);
        put(&mut m, 8, &relid.to_le_bytes());
        put(&mut m, 12, &open_id.to_le_bytes());
        put(&mut m, 16, &gpadl.to_le_bytes());
        put(&mut m, 20, &vp.to_le_bytes());
        put(&mut m, 24, &downstream.to_le_bytes());
        m
    }

    /// Opens `relid` on rings of `out_pages` and `in_pages` pages (headers included),
    /// interrupts to VP 1.
    pub fn open(&mut self, relid: u32, out_pages: usize, in_pages: usize) -> GChan {
        let pfns = self.pages(out_pages + in_pages);
        let (gpadl, r) = self.gpadl(relid, &pfns);
        assert_eq!(r.len(), 1);
        assert_eq!(rd32(&r[0], 0), CHANNELMSG_GPADL_CREATED);
        assert_eq!(rd32(&r[0], 16), 0, "GPADL created");
        // Linux zeroes both ring headers and sets the feature bit.
        for p in [pfns[0], pfns[out_pages]] {
            self.mem
                .write_slice(&[0u8; 4096], GuestAddress(p * 4096))
                .unwrap();
            self.mem
                .write_obj(1u32, GuestAddress(p * 4096 + 64))
                .unwrap();
        }
        assert_eq!(
            self.post(&Guest::open_msg(relid, 77, gpadl, 1, out_pages as u32)),
            0
        );
        let r = self.sink.msgs();
        assert_eq!(r.len(), 1);
        assert_eq!(rd32(&r[0], 0), CHANNELMSG_OPENCHANNEL_RESULT);
        assert_eq!(rd32(&r[0], 8), relid);
        assert_eq!(rd32(&r[0], 12), 77);
        assert_eq!(rd32(&r[0], 16), 0, "opened");
        let ring = |p: &[u64]| GRing {
            header: p[0] * 4096,
            data: p[1..].to_vec(),
        };
        GChan {
            conn_id: CHANNEL_CONNECTION_ID_BASE + relid,
            gpadl,
            out: ring(&pfns[..out_pages]),
            inr: ring(&pfns[out_pages..]),
        }
    }

    /// Kicks a channel as Linux's vmbus_set_event does.
    pub fn kick(&self, c: &GChan) -> u16 {
        self.host.on_signal_event(0, c.conn_id, 0)
    }
}
