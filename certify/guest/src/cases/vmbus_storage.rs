//! VMBus storage cases: the synthetic SCSI controller through the guest's storvsc client.
//! Writes are reported as `# storage: wrote ...` for the host to check the image after
//! the VM ends (certify/src/storage.rs), as the virtio storage cases do.
use super::vmbus::connect;
use crate::ktap::{Msg, Outcome};
use crate::sys::{self, Page};
use crate::vmbus::conn::Bus;
use crate::vmbus::storvsc::Stor;
use crate::vmbus::wire::*;
use crate::{check, diag, Ctx};

macro_rules! tryo {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(m) => return Outcome::Fail(m),
        }
    };
}

const DATA_PAGES: usize = 8;
static mut DATA: [Page; DATA_PAGES] = [const { Page([0; 4096]) }; DATA_PAGES];
fn data(page: usize) -> u64 {
    (&raw const DATA) as u64 + page as u64 * 4096
}

fn seed(ctx: &Ctx) -> u64 {
    ctx.cmdline
        .get("seed")
        .and_then(|v| u64::from_str_radix(v.trim_start_matches("0x"), 16).ok())
        .unwrap_or(0x1234_5678)
}

/// xorshift64*: the pattern certify/src/storage.rs regenerates to check the image.
fn fill_pattern(addr: u64, len: u64, seed: u64) {
    let mut x = seed | 1;
    for off in (0..len).step_by(8) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        sys::write_u64(addr + off, x.wrapping_mul(0x2545_f491_4f6c_dd1d));
    }
}

fn open(ctx: &Ctx) -> Result<(Bus, Stor), Msg> {
    let mut bus = connect(ctx)?;
    let s = Stor::open(&mut bus)?;
    Ok((bus, s))
}

fn finish(mut bus: Bus, s: Stor) -> Outcome {
    tryo!(s.close(&mut bus));
    tryo!(bus.unload());
    Outcome::Pass
}

/// INQUIRY (standard data: a direct-access device; VPD page 0x00 lists itself), TEST UNIT
/// READY, and READ CAPACITY (10) and (16) agreeing on 512-byte blocks.
pub fn inquiry(ctx: &mut Ctx) -> Outcome {
    let (mut bus, mut s) = tryo!(open(ctx));
    let buf = data(0);
    crate::vmbus::conn::zero(buf, 1);
    let r = tryo!(s.scsi(&mut bus, &[0x12, 0, 0, 0, 36, 0], READ_TYPE, buf, 36));
    check!(
        r.ok(),
        "INQUIRY: srb {:#x} scsi {:#x}",
        r.srb_status,
        r.scsi_status
    );
    let pdt = sys::read_u8(buf) & 0x1f;
    check!(
        pdt == 0,
        "INQUIRY peripheral device type {:#x}, want 0 (disk)",
        pdt
    );
    let mut id = [b' '; 24];
    for (i, b) in id.iter_mut().enumerate() {
        let c = sys::read_u8(buf + 8 + i as u64);
        *b = if c.is_ascii_graphic() || c == b' ' {
            c
        } else {
            b'?'
        };
    }
    diag!(
        "storvsc: INQUIRY '{}' ({} bytes returned)",
        core::str::from_utf8(&id).unwrap_or("?"),
        r.xfer
    );
    crate::vmbus::conn::zero(buf, 1);
    let r = tryo!(s.scsi(&mut bus, &[0x12, 1, 0x00, 0, 255, 0], READ_TYPE, buf, 255));
    check!(
        r.ok(),
        "INQUIRY VPD 0x00: srb {:#x} scsi {:#x}",
        r.srb_status,
        r.scsi_status
    );
    let n = sys::read_u8(buf + 3) as u64;
    check!(
        sys::read_u8(buf + 1) == 0 && (0..n).any(|i| sys::read_u8(buf + 4 + i) == 0),
        "VPD page 0x00 malformed (page {:#x}, {} entries)",
        sys::read_u8(buf + 1),
        n
    );
    let r = tryo!(s.scsi(&mut bus, &[0; 6], READ_TYPE, 0, 0));
    check!(
        r.ok(),
        "TEST UNIT READY: srb {:#x} scsi {:#x}",
        r.srb_status,
        r.scsi_status
    );
    let (blocks, bl) = tryo!(s.capacity(&mut bus, buf));
    check!(
        bl == 512 && blocks >= 16,
        "READ CAPACITY(10): {} blocks of {}",
        blocks,
        bl
    );
    crate::vmbus::conn::zero(buf, 1);
    let cdb16 = [0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0];
    let r = tryo!(s.scsi(&mut bus, &cdb16, READ_TYPE, buf, 32));
    check!(
        r.ok(),
        "READ CAPACITY(16): srb {:#x} scsi {:#x}",
        r.srb_status,
        r.scsi_status
    );
    let last16 = u64::from_be_bytes(sys::read_u64(buf).to_le_bytes());
    check!(
        last16 + 1 == blocks,
        "READ CAPACITY(16) says {} blocks, (10) says {}",
        last16 + 1,
        blocks
    );
    diag!("storvsc: capacity {} blocks of {} bytes", blocks, bl);
    finish(bus, s)
}

/// WRITE(10) of 8 KiB of a seeded pattern from a buffer starting 512 bytes into a page
/// (a GPA-direct range over 3 pages with an offset), READ(10) back into another buffer,
/// compare; with `flush`, SYNCHRONIZE CACHE(10). The host then checks the image.
fn write_read_verify(ctx: &Ctx, flush: bool) -> Outcome {
    let (mut bus, mut s) = tryo!(open(ctx));
    let (blocks, _) = tryo!(s.capacity(&mut bus, data(7)));
    check!(blocks >= 64, "capacity {} blocks is too small", blocks);
    let sd = seed(ctx);
    const LEN: u64 = 8192;
    let sector = (sd % (blocks - LEN / 512)) & !7;
    let src = data(0) + 512;
    fill_pattern(src, LEN, sd);
    let r = tryo!(s.rw(&mut bus, true, sector as u32, (LEN / 512) as u16, src));
    check!(
        r.ok(),
        "WRITE(10) at {}: srb {:#x} scsi {:#x}",
        sector,
        r.srb_status,
        r.scsi_status
    );
    let dst = data(3) + 1024;
    crate::vmbus::conn::zero(data(3), 4);
    let r = tryo!(s.rw(&mut bus, false, sector as u32, (LEN / 512) as u16, dst));
    check!(
        r.ok(),
        "READ(10) at {}: srb {:#x} scsi {:#x}",
        sector,
        r.srb_status,
        r.scsi_status
    );
    check!(
        r.xfer as u64 == LEN,
        "READ(10) returned {} bytes, want {}",
        r.xfer,
        LEN
    );
    for off in (0..LEN).step_by(8) {
        let (w, g) = (sys::read_u64(src + off), sys::read_u64(dst + off));
        check!(
            w == g,
            "read back differs at byte {} of sector {}: {:#x} != {:#x}",
            off,
            sector,
            g,
            w
        );
    }
    if flush {
        let r = tryo!(s.scsi(
            &mut bus,
            &[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            WRITE_TYPE,
            0,
            0
        ));
        check!(
            r.ok(),
            "SYNCHRONIZE CACHE: srb {:#x} scsi {:#x}",
            r.srb_status,
            r.scsi_status
        );
    }
    diag!(
        "storage: wrote sector={} bytes={} seed={:#x} flushed={}",
        sector,
        LEN,
        sd,
        flush as u8
    );
    finish(bus, s)
}

pub fn write_read_verify_case(ctx: &mut Ctx) -> Outcome {
    write_read_verify(ctx, false)
}

pub fn flush(ctx: &mut Ctx) -> Outcome {
    write_read_verify(ctx, true)
}

/// READ(10) at LBA = capacity and a WRITE(10) across the end: CHECK CONDITION with
/// autosense, ILLEGAL REQUEST / LOGICAL BLOCK ADDRESS OUT OF RANGE (0x21); then a read of
/// LBA 0 still works.
pub fn out_of_range(ctx: &mut Ctx) -> Outcome {
    let (mut bus, mut s) = tryo!(open(ctx));
    let (blocks, _) = tryo!(s.capacity(&mut bus, data(7)));
    for (write, lba, n) in [(false, blocks, 1u16), (true, blocks - 1, 2)] {
        let what = if write {
            "WRITE(10) across the end"
        } else {
            "READ(10) at capacity"
        };
        let r = tryo!(s.rw(&mut bus, write, lba as u32, n, data(0)));
        let (key, asc, ascq) = r.sense_key();
        diag!(
            "storvsc: {} (lba {}): srb {:#x} scsi {:#x} sense {:#x}/{:#x}/{:#x}",
            what,
            lba,
            r.srb_status,
            r.scsi_status,
            key,
            asc,
            ascq
        );
        check!(
            r.scsi_status == SCSI_CHECK_CONDITION,
            "{}: scsi status {:#x}, want CHECK CONDITION",
            what,
            r.scsi_status
        );
        check!(
            r.srb_status & 0x3f == SRB_STATUS_ERROR
                && r.srb_status & SRB_STATUS_AUTOSENSE_VALID != 0,
            "{}: srb status {:#x}, want ERROR | AUTOSENSE_VALID",
            what,
            r.srb_status
        );
        check!(
            r.sense[0] & 0x7f == 0x70 && key == 0x5 && asc == 0x21,
            "{}: sense {:#x} key {:#x} asc {:#x}, want 0x70 ILLEGAL REQUEST 0x21",
            what,
            r.sense[0],
            key,
            asc
        );
    }
    let r = tryo!(s.rw(&mut bus, false, 0, 1, data(0)));
    check!(
        r.ok(),
        "READ(10) of LBA 0 after the errors: srb {:#x}",
        r.srb_status
    );
    finish(bus, s)
}
