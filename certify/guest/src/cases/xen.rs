//! Xen-enlightened cases (a SLES 10 SP1-like guest): find the Xen leaves the way Linux does,
//! set up the hypercall page, and use the hypercalls such a guest makes.
use crate::ktap::{Msg, Outcome};
use crate::sys::{self, Page};
use crate::{check, diag, fail, msg, Ctx};

const HYPERVISOR_MMU_UPDATE: u64 = 1;
const HYPERVISOR_MEMORY_OP: u64 = 12;
const HYPERVISOR_HVM_OP: u64 = 34;
const XENMEM_MAXIMUM_RAM_PAGE: u64 = 2;
const XENMEM_CURRENT_RESERVATION: u64 = 3;
const XENMEM_MEMORY_MAP: u64 = 9;
const HVMOP_SET_PARAM: u64 = 0;
const HVMOP_GET_PARAM: u64 = 1;
/// HVM_PARAM_CALLBACK_IRQ: what a PV-on-HVM driver sets first.
const HVM_PARAM_CALLBACK_IRQ: u32 = 0;
const DOMID_SELF: u16 = 0x7ff0;
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
const SHUTDOWN_CRASH: u32 = 3;
const ENOSYS: i64 = -38;

/// Up to 4 hypercall pages (CPUID base+2 EAX says how many).
static mut PAGES: [Page; 4] = [const { Page([0; 4096]) }; 4];
static mut BUF: Page = Page([0; 4096]);

fn buf() -> u64 {
    (&raw const BUF) as u64
}

pub(super) struct Xen {
    pub(super) base: u32,
    pub(super) page: u64,
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
pub(super) fn setup() -> Result<Xen, Msg> {
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

pub(super) fn hypercall(x: &Xen, nr: u64, a: [u64; 5]) -> Result<i64, Msg> {
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
    shutdown_with(SHUTDOWN_POWEROFF, "poweroff")
}

/// SCHEDOP_shutdown(crash): what a guest kernel does on panic; the VM must end as a crash.
pub fn shutdown_crash(_ctx: &mut Ctx) -> Outcome {
    shutdown_with(SHUTDOWN_CRASH, "crash")
}

fn shutdown_with(reason: u32, what: &str) -> Outcome {
    let x = setup!();
    sys::write_u32(buf(), reason);
    sys::print_timing();
    diag!("calling SCHEDOP_shutdown({})", what);
    let r = call!(&x, HYPERVISOR_SCHED_OP, [SCHEDOP_SHUTDOWN, buf(), 0, 0, 0]);
    fail!("SCHEDOP_shutdown returned {}", r)
}

/// memory_op as a PV-on-HVM guest uses it to size itself: maximum_ram_page,
/// current_reservation(DOMID_SELF) and the memory map, checked against the PVH map.
pub fn memory_op(ctx: &mut Ctx) -> Outcome {
    let x = setup!();
    let max_pfn = call!(
        &x,
        HYPERVISOR_MEMORY_OP,
        [XENMEM_MAXIMUM_RAM_PAGE, 0, 0, 0, 0]
    );
    diag!(
        "XENMEM_maximum_ram_page = {:#x} (PVH map RAM top {:#x})",
        max_pfn,
        ctx.ram_top
    );
    check!(max_pfn > 0, "XENMEM_maximum_ram_page returned {}", max_pfn);
    check!(
        ctx.ram_top == 0 || (max_pfn as u64 + 1) << 12 >= ctx.ram_top,
        "maximum_ram_page {:#x} below the RAM top {:#x}",
        max_pfn,
        ctx.ram_top
    );
    sys::write_u32(buf(), DOMID_SELF as u32);
    let pages = call!(
        &x,
        HYPERVISOR_MEMORY_OP,
        [XENMEM_CURRENT_RESERVATION, buf(), 0, 0, 0]
    );
    diag!("XENMEM_current_reservation = {} pages", pages);
    check!(
        pages > 0 && (pages as u64) << 12 <= ctx.ram_top.max(1 << 30),
        "current_reservation {} pages",
        pages
    );
    // struct xen_memory_map { u32 nr_entries; u64 buffer; } -> e820 entries of 20 bytes.
    let map = buf() + 2048;
    sys::write_u32(buf(), 16);
    sys::write_u64(buf() + 8, map);
    let r = call!(
        &x,
        HYPERVISOR_MEMORY_OP,
        [XENMEM_MEMORY_MAP, buf(), 0, 0, 0]
    );
    check!(r == 0, "XENMEM_memory_map returned {}", r);
    let n = sys::read_u32(buf());
    check!(
        (1..=16).contains(&n),
        "XENMEM_memory_map gave {} entries",
        n
    );
    let mut top = 0;
    for i in 0..n as u64 {
        let e = map + i * 20;
        let (addr, size, kind) = (
            sys::read_u64(e),
            sys::read_u64(e + 8),
            sys::read_u32(e + 16),
        );
        diag!("e820 {:#x}+{:#x} type {}", addr, size, kind);
        if kind == 1 {
            top = top.max(addr + size);
        }
    }
    check!(
        ctx.ram_top == 0 || top == ctx.ram_top,
        "Xen map RAM top {:#x} != PVH map {:#x}",
        top,
        ctx.ram_top
    );
    Outcome::Pass
}

/// hvm_op set/get param round trip (HVM_PARAM_CALLBACK_IRQ), and a foreign domain refused.
pub fn hvm_param(_ctx: &mut Ctx) -> Outcome {
    let x = setup!();
    // struct xen_hvm_param { u16 domid; u16 pad; u32 index; u64 value; }
    let set = |domid: u16, index: u32, value: u64| {
        sys::write_u32(buf(), domid as u32);
        sys::write_u32(buf() + 4, index);
        sys::write_u64(buf() + 8, value);
    };
    let value = 0x0200_0000_0000_0005; // "vector" callback type with vector 5
    set(DOMID_SELF, HVM_PARAM_CALLBACK_IRQ, value);
    let r = call!(&x, HYPERVISOR_HVM_OP, [HVMOP_SET_PARAM, buf(), 0, 0, 0]);
    check!(r == 0, "HVMOP_set_param returned {}", r);
    set(DOMID_SELF, HVM_PARAM_CALLBACK_IRQ, 0);
    let r = call!(&x, HYPERVISOR_HVM_OP, [HVMOP_GET_PARAM, buf(), 0, 0, 0]);
    check!(r == 0, "HVMOP_get_param returned {}", r);
    let got = sys::read_u64(buf() + 8);
    check!(
        got == value,
        "HVMOP_get_param gave {:#x}, set {:#x}",
        got,
        value
    );
    set(7, HVM_PARAM_CALLBACK_IRQ, 0);
    let r = call!(&x, HYPERVISOR_HVM_OP, [HVMOP_GET_PARAM, buf(), 0, 0, 0]);
    diag!("HVMOP_get_param for domain 7 returned {}", r);
    check!(r < 0, "HVMOP_get_param for another domain returned {}", r);
    Outcome::Pass
}

/// Xen hypercalls are for the kernel: the stub called from ring 3 raises #UD, also when
/// entered right at its exit instruction.
pub fn cpl3_ud(_ctx: &mut Ctx) -> Outcome {
    let x = setup!();
    let stub = x.page + HYPERVISOR_XEN_VERSION * 32;
    match sys::call_from_ring3(stub, 0, 0, 0) {
        Err(sys::Fault(6)) => {}
        Err(f) => fail!(
            "xen_version stub from CPL 3 raised vector {}, want #UD (6)",
            f.0
        ),
        Ok(r) => fail!("xen_version stub from CPL 3 returned {:#x}, want #UD", r),
    }
    for off in 0..32 {
        if sys::read_u8(stub + off) == 0xe7 {
            if let Ok(r) = sys::call_from_ring3(stub + off, 0, 0, 0) {
                fail!(
                    "ring 3 at the stub's exit (+{:#x}) returned {:#x}, want a fault",
                    off,
                    r
                );
            }
        }
    }
    Outcome::Pass
}
