//! A minimal VMBus guest for the benches: connects to a [`VmbusHost`], creates GPADLs and
//! opens channels with channel messages, and writes and reads ring packets as Linux's
//! `hv_ringbuffer_write` / `hv_pkt_iter` do (ring data pages contiguous here, bulk copies).

use std::sync::{Arc, Mutex};

use hypervisor::abi::vmbus::*;
use hypervisor::vmbus::device::VmbusDevice;
use hypervisor::vmbus::{VmbusHost, VmbusSink};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// Guest RAM of the benches.
pub const MEM_BYTES: usize = 32 << 20;

/// u32 at `off`.
pub fn le32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

fn put(m: &mut [u8], off: usize, v: &[u8]) {
    m[off..off + v.len()].copy_from_slice(v);
}

fn msg(ty: u32, size: usize) -> Vec<u8> {
    let mut m = vec![0u8; size];
    put(&mut m, 0, &ty.to_le_bytes());
    m
}

/// Keeps the host's channel messages; event signals are dropped (the bench polls).
#[derive(Default)]
pub struct Sink(Mutex<Vec<Vec<u8>>>);

impl VmbusSink for Sink {
    fn post_message(&self, _vp: u32, _sint: u8, _message_type: u32, payload: &[u8]) -> bool {
        self.0.lock().unwrap().push(payload.to_vec());
        true
    }
    fn signal_event(&self, _vp: u32, _sint: u8, _flag: u32) {}
}

impl Sink {
    fn take(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// A packet the guest read: type, transaction id, bytes after the data offset, raw packet.
pub type RawPacket = (u16, u64, Vec<u8>, Vec<u8>);

/// One ring as the guest sees it: header page, then `size` bytes of data.
pub struct Ring {
    header: u64,
    data: u64,
    size: u32,
}

impl Ring {
    fn index(&self, mem: &GuestMemoryMmap, off: u64) -> u32 {
        mem.read_obj(GuestAddress(self.header + off)).unwrap()
    }
    fn set_index(&self, mem: &GuestMemoryMmap, off: u64, v: u32) {
        mem.write_obj(v, GuestAddress(self.header + off)).unwrap()
    }
    fn copy_in(&self, mem: &GuestMemoryMmap, pos: u32, b: &[u8]) {
        let first = b.len().min((self.size - pos) as usize);
        let at = |p: u32| GuestAddress(self.data + u64::from(p));
        mem.write_slice(&b[..first], at(pos)).unwrap();
        mem.write_slice(&b[first..], at(0)).unwrap();
    }
    fn copy_out(&self, mem: &GuestMemoryMmap, pos: u32, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        let first = n.min((self.size - pos) as usize);
        let at = |p: u32| GuestAddress(self.data + u64::from(p));
        mem.read_slice(&mut v[..first], at(pos)).unwrap();
        mem.read_slice(&mut v[first..], at(0)).unwrap();
        v
    }

    /// Writes a packet (`head` between the descriptor and the payload) and its trailer;
    /// false when it does not fit.
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
        let mut p = vec![0u8; len + 8];
        put(&mut p, 0, &ty.to_le_bytes());
        put(&mut p, 2, &((offset / 8) as u16).to_le_bytes());
        put(&mut p, 4, &((len / 8) as u16).to_le_bytes());
        put(&mut p, 6, &flags.to_le_bytes());
        put(&mut p, 8, &tid.to_le_bytes());
        put(&mut p, 16, head);
        put(&mut p, offset, payload);
        let (w, r) = (self.index(mem, 0), self.index(mem, 4));
        let used = if w >= r { w - r } else { self.size - r + w };
        if self.size - used <= p.len() as u32 {
            return false;
        }
        put(&mut p, len, &(u64::from(w) << 32).to_le_bytes());
        self.copy_in(mem, w, &p);
        self.set_index(mem, 0, (w + p.len() as u32) % self.size);
        true
    }

    /// Reads one packet.
    pub fn read_raw(&self, mem: &GuestMemoryMmap) -> Option<RawPacket> {
        let (w, r) = (self.index(mem, 0), self.index(mem, 4));
        if w == r {
            return None;
        }
        let d = self.copy_out(mem, r, 16);
        let ty = u16::from_le_bytes([d[0], d[1]]);
        let off = usize::from(u16::from_le_bytes([d[2], d[3]])) * 8;
        let len = usize::from(u16::from_le_bytes([d[4], d[5]])) * 8;
        let tid = u64::from_le_bytes(d[8..16].try_into().unwrap());
        let raw = self.copy_out(mem, r, len);
        self.set_index(mem, 4, (r + len as u32 + 8) % self.size);
        Some((ty, tid, raw[off..].to_vec(), raw))
    }

    /// Reads one packet: type, transaction id, bytes after the data offset.
    pub fn read(&self, mem: &GuestMemoryMmap) -> Option<(u16, u64, Vec<u8>)> {
        self.read_raw(mem).map(|(t, id, p, _)| (t, id, p))
    }
}

/// An open channel.
pub struct Chan {
    conn_id: u32,
    /// Guest -> host.
    pub out: Ring,
    /// Host -> guest.
    pub inr: Ring,
}

/// A guest connected to a host offering `devices` (relids 1, 2, ...).
pub struct Guest {
    pub mem: GuestMemoryMmap,
    host: VmbusHost,
    sink: Arc<Sink>,
    next_gpadl: u32,
}

impl Guest {
    /// Connects (VMBus 5.3, messages on VP 0) and asks for the offers.
    pub fn new(devices: Vec<Box<dyn VmbusDevice>>) -> Guest {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MEM_BYTES)]).unwrap();
        let sink = Arc::new(Sink::default());
        let host = VmbusHost::new(mem.clone(), sink.clone(), devices).unwrap();
        let g = Guest {
            mem,
            host,
            sink,
            next_gpadl: 0xe1e10,
        };
        let mut m = msg(CHANNELMSG_INITIATE_CONTACT, 40);
        put(&mut m, 8, &VERSION_WIN10_V5_3.to_le_bytes());
        m[16] = MESSAGE_SINT;
        g.post(&m);
        let r = g.sink.take();
        assert_eq!((r.len(), r[0][8]), (1, 1), "version accepted");
        g.post(&msg(CHANNELMSG_REQUESTOFFERS, 8));
        g.sink.take();
        g
    }

    fn post(&self, m: &[u8]) {
        let s = self
            .host
            .on_post_message(0, MESSAGE_CONNECTION_ID, HV_MESSAGE_TYPE_CHANNEL, m);
        assert_eq!(s, 0);
    }

    /// A GPADL over `pfns` for channel `relid`, sent as Linux does; returns its handle.
    pub fn gpadl(&mut self, relid: u32, pfns: &[u64]) -> u32 {
        let h = self.next_gpadl;
        self.next_gpadl += 1;
        let first = pfns.len().min(26);
        let mut m = msg(CHANNELMSG_GPADL_HEADER, 28 + first * 8);
        put(&mut m, 8, &relid.to_le_bytes());
        put(&mut m, 12, &h.to_le_bytes());
        put(&mut m, 16, &((8 + pfns.len() * 8) as u16).to_le_bytes());
        put(&mut m, 18, &1u16.to_le_bytes());
        put(&mut m, 20, &(pfns.len() as u32 * 4096).to_le_bytes());
        for (i, p) in pfns[..first].iter().enumerate() {
            put(&mut m, 28 + i * 8, &p.to_le_bytes());
        }
        self.post(&m);
        for chunk in pfns[first..].chunks(28) {
            let mut b = msg(CHANNELMSG_GPADL_BODY, 16 + chunk.len() * 8);
            put(&mut b, 12, &h.to_le_bytes());
            for (i, p) in chunk.iter().enumerate() {
                put(&mut b, 16 + i * 8, &p.to_le_bytes());
            }
            self.post(&b);
        }
        let r = self.sink.take();
        assert_eq!(r.len(), 1);
        assert_eq!(
            (le32(&r[0], 0), le32(&r[0], 16)),
            (CHANNELMSG_GPADL_CREATED, 0)
        );
        h
    }

    /// Opens `relid` on rings of `out_pages` and `in_pages` pages (headers included),
    /// contiguous from page `pfn`.
    pub fn open(&mut self, relid: u32, pfn: u64, out_pages: u64, in_pages: u64) -> Chan {
        let pfns: Vec<u64> = (pfn..pfn + out_pages + in_pages).collect();
        let gpadl = self.gpadl(relid, &pfns);
        let ring = |p: u64, pages: u64| {
            self.mem
                .write_slice(&[0u8; 4096], GuestAddress(p * 4096))
                .unwrap();
            self.mem
                .write_obj(1u32, GuestAddress(p * 4096 + 64))
                .unwrap();
            Ring {
                header: p * 4096,
                data: (p + 1) * 4096,
                size: (pages - 1) as u32 * 4096,
            }
        };
        let (out, inr) = (ring(pfn, out_pages), ring(pfn + out_pages, in_pages));
        let mut m = msg(CHANNELMSG_OPENCHANNEL, 148);
        put(&mut m, 8, &relid.to_le_bytes());
        put(&mut m, 12, &77u32.to_le_bytes());
        put(&mut m, 16, &gpadl.to_le_bytes());
        put(&mut m, 24, &(out_pages as u32).to_le_bytes());
        self.post(&m);
        let r = self.sink.take();
        assert_eq!(r.len(), 1);
        assert_eq!(
            (le32(&r[0], 0), le32(&r[0], 16)),
            (CHANNELMSG_OPENCHANNEL_RESULT, 0),
            "opened"
        );
        Chan {
            conn_id: CHANNEL_CONNECTION_ID_BASE + relid,
            out,
            inr,
        }
    }

    /// Kicks a channel (HvCallSignalEvent); returns the hypercall status.
    pub fn kick(&self, c: &Chan) -> u16 {
        self.host.on_signal_event(0, c.conn_id, 0)
    }
}
