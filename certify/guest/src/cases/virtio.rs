//! A polling virtio-mmio (version 2, VIRTIO_F_VERSION_1) driver for ring 3, with the block
//! and net cases. The MMIO window is mapped user-accessible and uncached (boot.rs);
//! interrupts stay off, so completion is found by polling the used ring.
use core::sync::atomic::{fence, Ordering};

use crate::ktap::{Msg, Outcome};
use crate::sys::{self, Page};
use crate::{check, diag, msg, Ctx};

const MAGIC: u32 = 0x7472_6976; // "virt"
const R_MAGIC: u64 = 0x000;
const R_VERSION: u64 = 0x004;
const R_DEVICE_ID: u64 = 0x008;
const R_DEVICE_FEATURES: u64 = 0x010;
const R_DEVICE_FEATURES_SEL: u64 = 0x014;
const R_DRIVER_FEATURES: u64 = 0x020;
const R_DRIVER_FEATURES_SEL: u64 = 0x024;
const R_QUEUE_SEL: u64 = 0x030;
const R_QUEUE_NUM_MAX: u64 = 0x034;
const R_QUEUE_NUM: u64 = 0x038;
const R_QUEUE_READY: u64 = 0x044;
const R_QUEUE_NOTIFY: u64 = 0x050;
const R_STATUS: u64 = 0x070;
const R_QUEUE_DESC: u64 = 0x080;
const R_QUEUE_DRIVER: u64 = 0x090;
const R_QUEUE_DEVICE: u64 = 0x0a0;
const R_CONFIG: u64 = 0x100;

const S_ACKNOWLEDGE: u32 = 1;
const S_DRIVER: u32 = 2;
const S_DRIVER_OK: u32 = 4;
const S_FEATURES_OK: u32 = 8;

const F_VERSION_1: u64 = 1 << 32;
const BLK_F_FLUSH: u64 = 1 << 9;
const NET_F_MTU: u64 = 1 << 3;
const NET_F_MAC: u64 = 1 << 5;

const DEV_NET: u32 = 1;
const DEV_BLK: u32 = 2;

const DESC_F_NEXT: u16 = 1;
const DESC_F_WRITE: u16 = 2;

/// Entries per queue we use (the device allows up to QueueNumMax).
const QSIZE: u16 = 16;

fn rd(base: u64, off: u64) -> u32 {
    sys::read_u32(base + off)
}
fn wr(base: u64, off: u64, v: u32) {
    sys::write_u32(base + off, v)
}

/// `virtio_mmio.device=SIZE@BASE:IRQ` entries of the command line, with the device type.
fn find_device(ctx: &Ctx, want: u32) -> Result<u64, Msg> {
    let mut seen = 0;
    for tok in ctx.cmdline.raw().split(' ') {
        let Some(spec) = tok.strip_prefix("virtio_mmio.device=") else {
            continue;
        };
        let Some((_, rest)) = spec.split_once('@') else {
            continue;
        };
        let base_str = rest.split(':').next().unwrap_or("");
        let Ok(base) = u64::from_str_radix(base_str.trim_start_matches("0x"), 16) else {
            continue;
        };
        if !(0xc000_0000..0x1_0000_0000).contains(&base) {
            diag!(
                "virtio-mmio device at {:#x} outside the mapped MMIO window",
                base
            );
            continue;
        }
        seen += 1;
        if rd(base, R_MAGIC) == MAGIC && rd(base, R_DEVICE_ID) == want {
            return Ok(base);
        }
    }
    Err(msg!(
        "no virtio-mmio device of type {} among {} announced on the command line",
        want,
        seen
    ))
}

/// One split virtqueue in one page: descriptors at 0, avail at 512, used at 1024.
struct Queue {
    index: u32,
    page: u64,
    avail_idx: u16,
    used_seen: u16,
}

impl Queue {
    fn desc(&self, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let d = self.page + u64::from(i) * 16;
        sys::write_u64(d, addr);
        sys::write_u32(d + 8, len);
        sys::write_u32(d + 12, u32::from(flags) | (u32::from(next) << 16));
    }
    fn avail(&self) -> u64 {
        self.page + 512
    }
    fn used(&self) -> u64 {
        self.page + 1024
    }
    /// Make the chain starting at `head` available and notify the device.
    fn submit(&mut self, base: u64, head: u16) {
        let slot = self.avail() + 4 + u64::from(self.avail_idx % QSIZE) * 2;
        sys::write_u32(slot & !3, {
            let old = sys::read_u32(slot & !3);
            if slot & 2 == 0 {
                (old & 0xffff_0000) | u32::from(head)
            } else {
                (old & 0xffff) | (u32::from(head) << 16)
            }
        });
        fence(Ordering::SeqCst);
        self.avail_idx = self.avail_idx.wrapping_add(1);
        let flags_idx = u32::from(self.avail_idx) << 16; // flags 0 (we poll anyway)
        sys::write_u32(self.avail(), flags_idx);
        fence(Ordering::SeqCst);
        wr(base, R_QUEUE_NOTIFY, self.index);
    }
    /// Wait for the next used element: (descriptor id, bytes written).
    fn wait(&mut self, max_tsc: u64) -> Option<(u32, u32)> {
        let t0 = sys::rdtsc();
        loop {
            let idx = (sys::read_u32(self.used()) >> 16) as u16;
            if idx != self.used_seen {
                fence(Ordering::SeqCst);
                let e = self.used() + 4 + u64::from(self.used_seen % QSIZE) * 8;
                self.used_seen = self.used_seen.wrapping_add(1);
                return Some((sys::read_u32(e), sys::read_u32(e + 4)));
            }
            if sys::rdtsc().wrapping_sub(t0) > max_tsc {
                return None;
            }
            core::hint::spin_loop();
        }
    }
}

/// About 2 s at up to 5 GHz; the device threads answer in microseconds.
const WAIT_TSC: u64 = 10_000_000_000;

/// Reset, negotiate (VERSION_1 plus `wanted` among the offered), set up `queues`.
fn init(base: u64, wanted: u64, pages: &[u64]) -> Result<(u64, [Option<Queue>; 2]), Msg> {
    let version = rd(base, R_VERSION);
    if version != 2 {
        return Err(msg!(
            "virtio-mmio version {} at {:#x}, want 2 (modern)",
            version,
            base
        ));
    }
    wr(base, R_STATUS, 0);
    wr(base, R_STATUS, S_ACKNOWLEDGE);
    wr(base, R_STATUS, S_ACKNOWLEDGE | S_DRIVER);
    wr(base, R_DEVICE_FEATURES_SEL, 0);
    let lo = rd(base, R_DEVICE_FEATURES) as u64;
    wr(base, R_DEVICE_FEATURES_SEL, 1);
    let hi = rd(base, R_DEVICE_FEATURES) as u64;
    let offered = lo | (hi << 32);
    if offered & F_VERSION_1 == 0 {
        return Err(msg!(
            "device offers {:#x} without VIRTIO_F_VERSION_1",
            offered
        ));
    }
    let features = offered & (wanted | F_VERSION_1);
    wr(base, R_DRIVER_FEATURES_SEL, 0);
    wr(base, R_DRIVER_FEATURES, features as u32);
    wr(base, R_DRIVER_FEATURES_SEL, 1);
    wr(base, R_DRIVER_FEATURES, (features >> 32) as u32);
    wr(base, R_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK);
    if rd(base, R_STATUS) & S_FEATURES_OK == 0 {
        return Err(msg!("device refused features {:#x}", features));
    }
    let mut qs: [Option<Queue>; 2] = [None, None];
    for (i, &page) in pages.iter().enumerate() {
        wr(base, R_QUEUE_SEL, i as u32);
        let max = rd(base, R_QUEUE_NUM_MAX);
        if max < u32::from(QSIZE) {
            return Err(msg!("queue {} max size {} < {}", i, max, QSIZE));
        }
        for off in (0..4096).step_by(8) {
            sys::write_u64(page + off, 0);
        }
        wr(base, R_QUEUE_NUM, u32::from(QSIZE));
        for (reg, addr) in [
            (R_QUEUE_DESC, page),
            (R_QUEUE_DRIVER, page + 512),
            (R_QUEUE_DEVICE, page + 1024),
        ] {
            wr(base, reg, addr as u32);
            wr(base, reg + 4, (addr >> 32) as u32);
        }
        wr(base, R_QUEUE_READY, 1);
        qs[i] = Some(Queue {
            index: i as u32,
            page,
            avail_idx: 0,
            used_seen: 0,
        });
    }
    wr(
        base,
        R_STATUS,
        S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK,
    );
    Ok((features, qs))
}

static mut QPAGES: [Page; 2] = [const { Page([0; 4096]) }; 2];
static mut DATA: [Page; 4] = [const { Page([0; 4096]) }; 4];

fn qpage(i: usize) -> u64 {
    (&raw const QPAGES) as u64 + i as u64 * 4096
}
fn data(i: usize) -> u64 {
    (&raw const DATA) as u64 + i as u64 * 4096
}

fn seed(ctx: &Ctx) -> u64 {
    ctx.cmdline
        .get("seed")
        .and_then(|v| u64::from_str_radix(v.trim_start_matches("0x"), 16).ok())
        .unwrap_or(0x1234_5678)
}

/// xorshift64*: the pattern the host re-generates to check the image (suite/storage.rs).
fn fill_pattern(addr: u64, len: u64, seed: u64) {
    let mut x = seed | 1;
    for off in (0..len).step_by(8) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        sys::write_u64(addr + off, x.wrapping_mul(0x2545_f491_4f6c_dd1d));
    }
}

// ---- block ----

const BLK_T_IN: u32 = 0;
const BLK_T_OUT: u32 = 1;
const BLK_T_FLUSH: u32 = 4;
const BLK_S_OK: u8 = 0;
const BLK_S_IOERR: u8 = 1;

struct Blk {
    base: u64,
    q: Queue,
    capacity: u64,
    features: u64,
}

fn blk(ctx: &Ctx) -> Result<Blk, Msg> {
    let base = find_device(ctx, DEV_BLK)?;
    let (features, mut qs) = init(base, BLK_F_FLUSH, &[qpage(0)])?;
    let capacity = u64::from(rd(base, R_CONFIG)) | (u64::from(rd(base, R_CONFIG + 4)) << 32);
    diag!(
        "virtio-blk at {:#x}: features {:#x}, capacity {} sectors",
        base,
        features,
        capacity
    );
    let q = qs[0].take().ok_or_else(|| msg!("no queue"))?;
    Ok(Blk {
        base,
        q,
        capacity,
        features,
    })
}

/// Header in data(3)+0, status byte in data(3)+64; the buffer is `buf`.
fn blk_request(b: &mut Blk, kind: u32, sector: u64, buf: u64, len: u32) -> Result<u8, Msg> {
    let hdr = data(3);
    sys::write_u32(hdr, kind);
    sys::write_u32(hdr + 4, 0);
    sys::write_u64(hdr + 8, sector);
    let status = hdr + 64;
    sys::write_u32(status, 0xff);
    if len == 0 {
        b.q.desc(0, hdr, 16, DESC_F_NEXT, 1);
        b.q.desc(1, status, 1, DESC_F_WRITE, 0);
    } else {
        let dir = if kind == BLK_T_IN { DESC_F_WRITE } else { 0 };
        b.q.desc(0, hdr, 16, DESC_F_NEXT, 1);
        b.q.desc(1, buf, len, dir | DESC_F_NEXT, 2);
        b.q.desc(2, status, 1, DESC_F_WRITE, 0);
    }
    b.q.submit(b.base, 0);
    match b.q.wait(WAIT_TSC) {
        Some((0, _)) => Ok(sys::read_u8(status)),
        Some((id, _)) => Err(msg!("used ring returned descriptor {}, want 0", id)),
        None => Err(msg!(
            "request type {} sector {} not completed",
            kind,
            sector
        )),
    }
}

macro_rules! tryo {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(m) => return Outcome::Fail(m),
        }
    };
}

/// Write 8 sectors of a seeded pattern, read them back, compare; the runner checks the
/// same bytes in the image file after the VM ends (the `# storage:` line says where).
fn write_read_verify(ctx: &Ctx, flush: bool) -> Outcome {
    let mut b = tryo!(blk(ctx));
    check!(
        b.capacity >= 16,
        "capacity {} sectors is too small",
        b.capacity
    );
    let s = seed(ctx);
    let sector = (s % (b.capacity - 8)) & !7;
    fill_pattern(data(0), 4096, s);
    let st = tryo!(blk_request(&mut b, BLK_T_OUT, sector, data(0), 4096));
    check!(st == BLK_S_OK, "write at sector {} status {}", sector, st);
    for off in (0..4096).step_by(8) {
        sys::write_u64(data(1) + off, 0);
    }
    let st = tryo!(blk_request(&mut b, BLK_T_IN, sector, data(1), 4096));
    check!(st == BLK_S_OK, "read at sector {} status {}", sector, st);
    for off in (0..4096).step_by(8) {
        let (w, r) = (sys::read_u64(data(0) + off), sys::read_u64(data(1) + off));
        check!(
            w == r,
            "read back differs at byte {} of sector {}: {:#x} != {:#x}",
            off,
            sector,
            r,
            w
        );
    }
    if flush {
        check!(
            b.features & BLK_F_FLUSH != 0,
            "VIRTIO_BLK_F_FLUSH not offered"
        );
        let st = tryo!(blk_request(&mut b, BLK_T_FLUSH, 0, 0, 0));
        check!(st == BLK_S_OK, "flush status {}", st);
    }
    diag!(
        "storage: wrote sector={} bytes=4096 seed={:#x} flushed={}",
        sector,
        s,
        flush as u8
    );
    Outcome::Pass
}

pub fn storage_write_read_verify(ctx: &mut Ctx) -> Outcome {
    write_read_verify(ctx, false)
}

pub fn storage_flush(ctx: &mut Ctx) -> Outcome {
    write_read_verify(ctx, true)
}

pub fn storage_out_of_range(ctx: &mut Ctx) -> Outcome {
    let mut b = tryo!(blk(ctx));
    let cap = b.capacity;
    let st = tryo!(blk_request(&mut b, BLK_T_IN, cap, data(1), 512));
    check!(
        st == BLK_S_IOERR,
        "read at sector {} (= capacity) status {}, want IOERR",
        cap,
        st
    );
    let st = tryo!(blk_request(&mut b, BLK_T_OUT, cap - 1, data(0), 1024));
    check!(
        st == BLK_S_IOERR,
        "write across the end (sector {}) status {}, want IOERR",
        cap - 1,
        st
    );
    // The device still works afterwards.
    let st = tryo!(blk_request(&mut b, BLK_T_IN, 0, data(1), 512));
    check!(
        st == BLK_S_OK,
        "read of sector 0 after the errors: status {}",
        st
    );
    Outcome::Pass
}

// ---- net ----

const NET_HDR: u64 = 12;
const RX_BUF: u32 = 2048;

struct NetDev {
    base: u64,
    rx: Queue,
    tx: Queue,
    mac: [u8; 6],
    mtu: u16,
}

fn net(ctx: &Ctx) -> Result<NetDev, Msg> {
    let base = find_device(ctx, DEV_NET)?;
    let (features, mut qs) = init(base, NET_F_MAC | NET_F_MTU, &[qpage(0), qpage(1)])?;
    let mut mac = [0u8; 6];
    for (i, m) in mac.iter_mut().enumerate() {
        *m = sys::read_u8(base + R_CONFIG + i as u64);
    }
    let mtu = if features & NET_F_MTU != 0 {
        (rd(base, R_CONFIG + 8) >> 16) as u16
    } else {
        1500
    };
    diag!(
        "virtio-net at {:#x}: features {:#x}, mac {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}, mtu {}",
        base, features, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], mtu
    );
    let rx = qs[0].take().ok_or_else(|| msg!("no rx queue"))?;
    let tx = qs[1].take().ok_or_else(|| msg!("no tx queue"))?;
    let mut n = NetDev {
        base,
        rx,
        tx,
        mac,
        mtu,
    };
    // Two receive buffers (header + frame), in data(2).
    for i in 0..2u16 {
        n.rx.desc(
            i,
            data(2) + u64::from(i) * u64::from(RX_BUF),
            RX_BUF,
            DESC_F_WRITE,
            0,
        );
        n.rx.submit(n.base, i);
    }
    Ok(n)
}

/// Build a frame to ourselves (EtherType 0x88b5, local experimental) of `len` bytes in
/// data(0) after a zeroed virtio_net_hdr_v1; send it.
fn send(n: &mut NetDev, len: u64, seed: u64) {
    let buf = data(0);
    for off in (0..NET_HDR + len + 8).step_by(8) {
        sys::write_u64(buf + off, 0);
    }
    fill_pattern(buf + NET_HDR, len, seed);
    let mut hdr = [0u8; 14];
    hdr[0..6].copy_from_slice(&n.mac);
    hdr[6..12].copy_from_slice(&n.mac);
    hdr[12..14].copy_from_slice(&[0x88, 0xb5]);
    sys::write_bytes(buf + NET_HDR, &hdr);
    n.tx.desc(0, buf, (NET_HDR + len) as u32, 0, 0);
    n.tx.submit(n.base, 0);
}

/// Receive one frame and compare it with what `send` built (`len` bytes).
fn receive_matches(n: &mut NetDev, len: u64) -> Result<(), Msg> {
    let (id, written) =
        n.rx.wait(WAIT_TSC)
            .ok_or_else(|| msg!("no frame received ({} bytes sent)", len))?;
    check_rx(id, written, len)?;
    let got = data(2) + u64::from(id) * u64::from(RX_BUF) + NET_HDR;
    let sent = data(0) + NET_HDR;
    for off in 0..len {
        if sys::read_u8(got + off) != sys::read_u8(sent + off) {
            return Err(msg!("received frame differs at byte {}", off));
        }
    }
    // Give the buffer back.
    n.rx.submit(n.base, id as u16);
    Ok(())
}

fn check_rx(id: u32, written: u32, len: u64) -> Result<(), Msg> {
    if id > 1 {
        return Err(msg!("rx used element names descriptor {}", id));
    }
    if u64::from(written) != NET_HDR + len {
        return Err(msg!(
            "received {} bytes, want {} (header + {} frame)",
            written,
            NET_HDR + len,
            len
        ));
    }
    Ok(())
}

fn tx_done(n: &mut NetDev) -> Result<(), Msg> {
    n.tx.wait(WAIT_TSC)
        .map(|_| ())
        .ok_or_else(|| msg!("transmit not completed"))
}

pub fn nic_frame_round_trip(ctx: &mut Ctx) -> Outcome {
    let mut n = tryo!(net(ctx));
    let s = seed(ctx);
    send(&mut n, 64, s);
    tryo!(tx_done(&mut n));
    tryo!(receive_matches(&mut n, 64));
    send(&mut n, 300, s ^ 1);
    tryo!(tx_done(&mut n));
    tryo!(receive_matches(&mut n, 300));
    Outcome::Pass
}

/// A frame of exactly MTU payload (14-byte header + MTU) comes back; one byte more than
/// the device accepts (MTU + 18, room for a VLAN tag) is dropped, and the next normal
/// frame still arrives first.
pub fn nic_mtu(ctx: &mut Ctx) -> Outcome {
    let mut n = tryo!(net(ctx));
    check!(
        n.mtu >= 68 && u32::from(n.mtu) + 14 + NET_HDR as u32 <= RX_BUF,
        "MTU {} unusable",
        n.mtu
    );
    let s = seed(ctx);
    let full = 14 + u64::from(n.mtu);
    send(&mut n, full, s);
    tryo!(tx_done(&mut n));
    tryo!(receive_matches(&mut n, full));
    send(&mut n, full + 5, s ^ 2);
    tryo!(tx_done(&mut n));
    send(&mut n, 80, s ^ 3);
    tryo!(tx_done(&mut n));
    match receive_matches(&mut n, 80) {
        Ok(()) => Outcome::Pass,
        Err(m) => Outcome::Fail(msg!("after an oversized frame: {}", m.as_str())),
    }
}
