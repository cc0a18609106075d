//! Xen-enlightened cases (a SLES 10 SP1-like guest): find the Xen leaves the way Linux does,
//! set up the hypercall page, and use the hypercalls such a guest makes.
use crate::ktap::{Msg, Outcome};
use crate::sys::{self, Page};
use crate::{check, diag, fail, msg, Ctx};

const HYPERVISOR_MMU_UPDATE: u64 = 1;
const HYPERVISOR_XEN_VERSION: u64 = 17;
const HYPERVISOR_CONSOLE_IO: u64 = 18;
const HYPERVISOR_SCHED_OP: u64 = 29;
const XENVER_VERSION: u64 = 0;
const XENVER_EXTRAVERSION: u64 = 1;
const XENVER_GET_FEATURES: u64 = 6;
const CONSOLEIO_WRITE: u64 = 0;
const SCHEDOP_YIELD: u64 = 0;
const SCHEDOP_SHUTDOWN: u64 = 2;
const SHUTDOWN_POWEROFF: u32 = 0;
const ENOSYS: i64 = -38;

/// Up to 4 hypercall pages (CPUID base+2 EAX says how many).
static mut PAGES: [Page; 4] = [const { Page([0; 4096]) }; 4];
static mut BUF: Page = Page([0; 4096]);

fn buf() -> u64 {
    (&raw const BUF) as u64
}

struct Xen {
    base: u32,
    page: u64,
}

/// Linux's xen_cpuid_base(): leaves 0x40000000..0x40010000 step 0x100, signature
/// "XenVMMXenVMM" and at least 2 more leaves.
fn find_base() -> Result<u32, Msg> {
    if sys::cpuid(1).ecx & (1 << 31) == 0 {
        return Err(msg!("CPUID.1:ECX bit 31 (hypervisor present) clear"));
    }
    let mut base = 0x4000_0000u32;
    while base < 0x4001_0000 {
        let c = sys::cpuid(base);
        if &sys::signature(&c) == b"XenVMMXenVMM" && c.eax.wrapping_sub(base) >= 2 {
            return Ok(base);
        }
        base += 0x100;
    }
    Err(msg!(
        "no XenVMMXenVMM signature in CPUID 0x40000000..0x40010000"
    ))
}

/// Find Xen, write each hypercall page's GPA to the MSR from leaf base+2.
fn setup() -> Result<Xen, Msg> {
    let base = find_base()?;
    let l2 = sys::cpuid(base + 2);
    let pages = l2.eax;
    let msr = l2.ebx;
    if pages == 0 || pages > 4 {
        return Err(msg!(
            "CPUID {:#x} EAX: {} hypercall pages (want 1..4)",
            base + 2,
            pages
        ));
    }
    let first = (&raw const PAGES) as u64;
    for i in 0..pages as u64 {
        sys::wrmsr(msr, first + i * 4096 + i)
            .map_err(|f| msg!("wrmsr {:#x}: vector {}", msr, f.0))?;
    }
    Ok(Xen { base, page: first })
}

macro_rules! setup {
    () => {
        match setup() {
            Ok(x) => x,
            Err(m) => return Outcome::Fail(m),
        }
    };
}

fn hypercall(x: &Xen, nr: u64, a: [u64; 5]) -> Result<i64, Msg> {
    sys::xen_hypercall(x.page, nr, a).map_err(|f| msg!("hypercall {} raised vector {}", nr, f.0))
}

macro_rules! call {
    ($x:expr, $nr:expr, $a:expr) => {
        match hypercall($x, $nr, $a) {
            Ok(r) => r,
            Err(m) => return Outcome::Fail(m),
        }
    };
}

pub fn cpuid(_ctx: &mut Ctx) -> Outcome {
    let base = match find_base() {
        Ok(b) => b,
        Err(m) => return Outcome::Fail(m),
    };
    let l0 = sys::cpuid(base);
    let l1 = sys::cpuid(base + 1);
    let l2 = sys::cpuid(base + 2);
    diag!(
        "Xen leaves at {:#x}: max={:#x} version {}.{} hypercall pages={} msr={:#x}",
        base,
        l0.eax,
        l1.eax >> 16,
        l1.eax & 0xffff,
        l2.eax,
        l2.ebx
    );
    check!(
        l1.eax >> 16 >= 3,
        "Xen version {:#x}: a SLES 10 SP1 guest needs 3.x or later",
        l1.eax
    );
    check!(l2.eax >= 1, "no hypercall pages announced");
    check!(
        l2.ebx >= 0x4000_0000,
        "hypercall MSR {:#x} outside the synthetic range",
        l2.ebx
    );
    Outcome::Pass
}

pub fn hypercall_page(_ctx: &mut Ctx) -> Outcome {
    let x = setup!();
    diag!("Xen base {:#x}, hypercall page at {:#x}", x.base, x.page);
    // Every stub slot we use was filled (32 bytes apart).
    for nr in [
        HYPERVISOR_XEN_VERSION,
        HYPERVISOR_CONSOLE_IO,
        HYPERVISOR_SCHED_OP,
    ] {
        let stub = x.page + nr * 32;
        let filled = (0..32).any(|i| sys::read_u8(stub + i) != 0);
        check!(filled, "stub {} at {:#x} is empty", nr, stub);
    }
    Outcome::Pass
}

pub fn version(_ctx: &mut Ctx) -> Outcome {
    let x = setup!();
    let v = call!(&x, HYPERVISOR_XEN_VERSION, [XENVER_VERSION, 0, 0, 0, 0]);
    let leaf = sys::cpuid(x.base + 1).eax as i64;
    diag!("XENVER_version = {:#x} (CPUID says {:#x})", v, leaf);
    check!(
        v == leaf,
        "XENVER_version {:#x} differs from CPUID {:#x} EAX {:#x}",
        v,
        x.base + 1,
        leaf
    );
    for i in 0..16 {
        sys::write_bytes(buf() + i, &[0xff]);
    }
    let r = call!(
        &x,
        HYPERVISOR_XEN_VERSION,
        [XENVER_EXTRAVERSION, buf(), 0, 0, 0]
    );
    check!(r >= 0, "XENVER_extraversion returned {}", r);
    let mut extra = [0u8; 16];
    for (i, b) in extra.iter_mut().enumerate() {
        *b = sys::read_u8(buf() + i as u64);
    }
    let len = extra.iter().position(|&b| b == 0);
    check!(
        len.is_some(),
        "XENVER_extraversion left no NUL in its 16 bytes"
    );
    diag!(
        "extraversion '{}'",
        core::str::from_utf8(&extra[..len.unwrap_or(0)]).unwrap_or("?")
    );
    sys::write_u32(buf(), 0); // submap_idx
    sys::write_u32(buf() + 4, 0xdead_beef); // submap
    let r = call!(
        &x,
        HYPERVISOR_XEN_VERSION,
        [XENVER_GET_FEATURES, buf(), 0, 0, 0]
    );
    check!(r == 0, "XENVER_get_features returned {}", r);
    let submap = sys::read_u32(buf() + 4);
    diag!("features submap 0 = {:#x}", submap);
    check!(
        submap != 0xdead_beef,
        "XENVER_get_features did not write the submap"
    );
    Outcome::Pass
}

pub fn console_io(_ctx: &mut Ctx) -> Outcome {
    let x = setup!();
    let text = b"hvcert-xen-console-ok\n";
    sys::write_bytes(buf(), text);
    let r = call!(
        &x,
        HYPERVISOR_CONSOLE_IO,
        [CONSOLEIO_WRITE, text.len() as u64, buf(), 0, 0]
    );
    diag!("CONSOLEIO_write returned {}", r);
    check!(r >= 0, "CONSOLEIO_write returned {}", r);
    Outcome::Pass
}

pub fn sched_yield(_ctx: &mut Ctx) -> Outcome {
    let x = setup!();
    for _ in 0..3 {
        let r = call!(&x, HYPERVISOR_SCHED_OP, [SCHEDOP_YIELD, 0, 0, 0, 0]);
        check!(r == 0, "SCHEDOP_yield returned {}", r);
    }
    Outcome::Pass
}

pub fn enosys(_ctx: &mut Ctx) -> Outcome {
    let x = setup!();
    // mmu_update is PV-only: never translated for an HVM guest.
    let r = call!(&x, HYPERVISOR_MMU_UPDATE, [0, 0, 0, 0, 0]);
    check!(r == ENOSYS, "mmu_update returned {}, want -ENOSYS (-38)", r);
    let r = call!(&x, HYPERVISOR_XEN_VERSION, [0x7777, 0, 0, 0, 0]);
    diag!("xen_version with unknown cmd returned {}", r);
    check!(
        r < 0,
        "xen_version with an unknown cmd returned {}, want an error",
        r
    );
    Outcome::Pass
}

/// SCHEDOP_shutdown(poweroff): the VM must end here; the runner checks it ended by
/// shutdown. Returning at all is the failure.
pub fn shutdown(_ctx: &mut Ctx) -> Outcome {
    let x = setup!();
    sys::write_u32(buf(), SHUTDOWN_POWEROFF);
    diag!("calling SCHEDOP_shutdown(poweroff)");
    let r = call!(&x, HYPERVISOR_SCHED_OP, [SCHEDOP_SHUTDOWN, buf(), 0, 0, 0]);
    fail!("SCHEDOP_shutdown returned {}", r)
}
