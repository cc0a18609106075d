//! hvcert certification guest kernel.
//!
//! Boots through PVH (32-bit entry, see boot.rs), enters long mode, sets up GDT/TSS/IDT and
//! drops to ring 3, where every test case runs natively. The command line selects the
//! behaviour: `profile=NAME cases=a,b,c [guest_os_id=0x...] [seed=N]`. Results are
//! reported in KTAP on COM1; the run ends through port 0xf4 with 0 (all ok or skipped),
//! 1 (some case failed) or 3 (unexpected exception or panic).
#![no_std]
#![no_main]
// Case helpers return their failure message (a fixed 160-byte buffer: there is no
// allocator to box it) by value; fine for a guest whose only job is these cases.
#![allow(clippy::result_large_err)]

mod boot;
mod cases;
mod crash;
mod ktap;
mod port;
mod sys;
mod vmbus;

use ktap::Outcome;

/// hvm_start_info (xen/include/public/arch-x86/hvm/start_info.h).
const START_INFO_MAGIC: u32 = 0x336e_c578;

pub struct Cmdline {
    raw: &'static str,
}

impl Cmdline {
    pub fn get(&self, key: &str) -> Option<&'static str> {
        self.raw.split(' ').find_map(|tok| {
            let (k, v) = tok.split_once('=')?;
            (k == key).then_some(v)
        })
    }
    pub fn raw(&self) -> &'static str {
        self.raw
    }
}

/// What the boot protocol told us, plus state shared between the cases of one run.
pub struct Ctx {
    pub cmdline: Cmdline,
    pub start_info: u64,
    pub start_info_ok: bool,
    /// Highest end of RAM in the PVH memory map (0 when the map is absent).
    pub ram_top: u64,
}

fn read_cmdline(start_info: u64) -> (&'static str, bool, u64) {
    if start_info == 0 || sys::read_u32(start_info) != START_INFO_MAGIC {
        return ("", false, 0);
    }
    let ptr = sys::read_u64(start_info + 24);
    let mut raw = "";
    if ptr != 0 && ptr < (1 << 30) {
        let mut len = 0usize;
        while len < 4096 && sys::read_u8(ptr + len as u64) != 0 {
            len += 1;
        }
        // SAFETY: [ptr, ptr+len) is identity-mapped guest RAM holding the command line the
        // loader wrote; it is never modified afterwards.
        let bytes = unsafe { core::slice::from_raw_parts(ptr as *const u8, len) };
        raw = core::str::from_utf8(bytes).unwrap_or("");
    }
    // Memory map: version >= 1 has memmap_paddr at 40 and memmap_entries at 48.
    let mut top = 0;
    if sys::read_u32(start_info + 4) >= 1 {
        let map = sys::read_u64(start_info + 40);
        let entries = sys::read_u32(start_info + 48).min(128);
        if map != 0 && map < (1 << 30) {
            for i in 0..entries as u64 {
                let e = map + i * 24;
                let (addr, size, ty) = (
                    sys::read_u64(e),
                    sys::read_u64(e + 8),
                    sys::read_u32(e + 16),
                );
                if ty == 1 {
                    top = top.max(addr + size);
                }
            }
        }
    }
    (raw, true, top)
}

#[no_mangle]
pub extern "C" fn user_main(start_info: u64) -> ! {
    // SAFETY: single CPU; written once here.
    unsafe { sys::USER_TSC = sys::rdtsc() };
    let (raw, ok, ram_top) = read_cmdline(start_info);
    let mut ctx = Ctx {
        cmdline: Cmdline { raw },
        start_info,
        start_info_ok: ok,
        ram_top,
    };
    println!("KTAP version 1");
    diag!(
        "hvcert-guest {} cmdline: {}",
        env!("CARGO_PKG_VERSION"),
        raw
    );
    let list = ctx.cmdline.get("cases").unwrap_or("boot");
    let total = list.split(',').filter(|c| !c.is_empty()).count();
    println!("1..{}", total);
    let mut failed = 0;
    for (i, name) in list.split(',').filter(|c| !c.is_empty()).enumerate() {
        let n = i as u32 + 1;
        ktap::set_current(n, name);
        let outcome = match cases::find(name) {
            Some(f) => f(&mut ctx),
            None => Outcome::Fail(msg!("unknown case")),
        };
        match outcome {
            Outcome::Pass => println!("ok {} {}", n, name),
            Outcome::Skip(m) => println!("ok {} {} # SKIP {}", n, name, m.as_str()),
            Outcome::Fail(m) => {
                failed += 1;
                println!("not ok {} {} # {}", n, name, m.as_str())
            }
        }
    }
    sys::exit(if failed == 0 {
        ktap::STATUS_OK
    } else {
        ktap::STATUS_FAILED
    })
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    // SAFETY: read of a static written only between cases.
    let (n, name) = unsafe { ktap::CURRENT };
    println!();
    println!(
        "not ok {} {} # panic: {}",
        n,
        name,
        msg!("{}", info.message()).as_str()
    );
    sys::exit(ktap::STATUS_CRASH)
}
