//! Hyper-V-enlightened cases (a SLES 11 SP1-like guest): CPUID "Hv#1", synthetic MSRs, the
//! hypercall page and native hypercalls per the TLFS, positive and negative.
use crate::ktap::Outcome;
use crate::sys::{self, Fault, Page};
use crate::{check, diag, fail, Ctx};

pub(super) const HV_SIGNATURE_EAX: u32 = 0x3123_7648; // "Hv#1"
pub(super) const MSR_GUEST_OS_ID: u32 = 0x4000_0000;
pub(super) const MSR_HYPERCALL: u32 = 0x4000_0001;
pub(super) const MSR_VP_INDEX: u32 = 0x4000_0002;
pub(super) const MSR_TIME_REF_COUNT: u32 = 0x4000_0020;
/// In the synthetic range, not defined by the TLFS and not implemented: must #GP.
pub(super) const MSR_UNIMPLEMENTED: u32 = 0x4000_00ff;

pub(super) const CALL_FLUSH_SPACE: u64 = 0x0002;
pub(super) const CALL_FLUSH_LIST: u64 = 0x0003;
pub(super) const CALL_NOTIFY_LONG_SPIN_WAIT: u64 = 0x0008;
pub(super) const CALL_POST_DEBUG_DATA: u64 = 0x0069;
pub(super) const CALL_RETRIEVE_DEBUG_DATA: u64 = 0x006A;
pub(super) const FAST: u64 = 1 << 16;
pub(super) const fn rep_count(n: u64) -> u64 {
    n << 32
}

pub(super) const HV_STATUS_SUCCESS: u16 = 0;
pub(super) const HV_STATUS_INVALID_HYPERCALL_CODE: u16 = 2;
pub(super) const HV_STATUS_INVALID_HYPERCALL_INPUT: u16 = 3;
pub(super) const HV_STATUS_INVALID_ALIGNMENT: u16 = 4;
pub(super) const HV_STATUS_INVALID_PARAMETER: u16 = 5;

/// Linux's encoding (TLFS "open source" guest ID): 0x8100 << 48 | LINUX_VERSION_CODE << 16.
/// The runner passes the profile's value as guest_os_id=; this is the fallback (2.6.32).
pub(super) const DEFAULT_GUEST_OS_ID: u64 = 0x8100_0002_0620_0000;

pub(super) static mut HYPERCALL_PAGE: Page = Page([0; 4096]);
pub(super) static mut INPUT: Page = Page([0; 4096]);
pub(super) static mut OUTPUT: Page = Page([0; 4096]);

pub(super) fn page_gpa() -> u64 {
    (&raw const HYPERCALL_PAGE) as u64
}
pub(super) fn input_gpa() -> u64 {
    (&raw const INPUT) as u64
}
pub(super) fn output_gpa() -> u64 {
    (&raw const OUTPUT) as u64
}

pub(super) fn guest_os_id(ctx: &Ctx) -> u64 {
    ctx.cmdline
        .get("guest_os_id")
        .and_then(|v| u64::from_str_radix(v.trim_start_matches("0x"), 16).ok())
        .unwrap_or(DEFAULT_GUEST_OS_ID)
}

pub(super) fn status(rax: u64) -> u16 {
    rax as u16
}

/// The Linux way: CPUID.1:ECX.hypervisor, then leaf 0x40000001 EAX == "Hv#1".
pub(super) fn hv_present() -> Result<u32, crate::ktap::Msg> {
    if sys::cpuid(1).ecx & (1 << 31) == 0 {
        return Err(crate::msg!("CPUID.1:ECX bit 31 (hypervisor present) clear"));
    }
    let max = sys::cpuid(0x4000_0000).eax;
    let iface = sys::cpuid(0x4000_0001).eax;
    if iface != HV_SIGNATURE_EAX {
        return Err(crate::msg!("CPUID 0x40000001 EAX={:#x}, not Hv#1", iface));
    }
    Ok(max)
}

/// GUEST_OS_ID, then the hypercall page enabled at our page. Returns the page address.
pub(super) fn enable_hypercalls(ctx: &Ctx) -> Result<u64, crate::ktap::Msg> {
    hv_present()?;
    let id = guest_os_id(ctx);
    sys::wrmsr(MSR_GUEST_OS_ID, id).map_err(|f| crate::msg!("wrmsr GUEST_OS_ID: fault {}", f.0))?;
    sys::wrmsr(MSR_HYPERCALL, page_gpa() | 1)
        .map_err(|f| crate::msg!("wrmsr HYPERCALL: fault {}", f.0))?;
    let v = sys::rdmsr(MSR_HYPERCALL).map_err(|f| crate::msg!("rdmsr HYPERCALL: fault {}", f.0))?;
    if v & 1 == 0 || v & !0xfff != page_gpa() {
        return Err(crate::msg!(
            "HYPERCALL MSR reads {:#x} after enabling at {:#x}",
            v,
            page_gpa()
        ));
    }
    Ok(page_gpa())
}

macro_rules! setup {
    ($ctx:expr) => {
        match enable_hypercalls($ctx) {
            Ok(p) => p,
            Err(m) => return Outcome::Fail(m),
        }
    };
}

pub(super) fn call(
    page: u64,
    input: u64,
    in_gpa: u64,
    out_gpa: u64,
) -> Result<u64, crate::ktap::Msg> {
    sys::hv_hypercall(page, input, in_gpa, out_gpa)
        .map_err(|Fault(v)| crate::msg!("hypercall {:#x} from CPL 0 raised vector {}", input, v))
}

macro_rules! expect_status {
    ($page:expr, $input:expr, $in:expr, $out:expr, $want:expr, $what:expr) => {{
        let rax = match call($page, $input, $in, $out) {
            Ok(r) => r,
            Err(m) => return Outcome::Fail(m),
        };
        diag!(
            "{}: input={:#x} in={:#x} out={:#x} -> rax={:#x}",
            $what,
            $input,
            $in,
            $out,
            rax
        );
        check!(
            status(rax) == $want,
            "{}: status {} (want {})",
            $what,
            status(rax),
            $want
        );
        rax
    }};
}
// For the issue-12 cases in `hv_tlfs.rs`.
pub(super) use {expect_status, setup};

pub fn cpuid(_ctx: &mut Ctx) -> Outcome {
    let max = match hv_present() {
        Ok(m) => m,
        Err(m) => return Outcome::Fail(m),
    };
    let vendor = sys::signature(&sys::cpuid(0x4000_0000));
    let ver = sys::cpuid(0x4000_0002);
    let feat = sys::cpuid(0x4000_0003);
    let rec = sys::cpuid(0x4000_0004);
    let lim = sys::cpuid(0x4000_0005);
    diag!(
        "max={:#x} vendor='{}' version={:#x}:{:#x}:{:#x}",
        max,
        core::str::from_utf8(&vendor).unwrap_or("?"),
        ver.eax,
        ver.ebx,
        ver.ecx
    );
    diag!(
        "features eax={:#x} ebx={:#x} edx={:#x} recommendations eax={:#x} limits vps={} lps={}",
        feat.eax,
        feat.ebx,
        feat.edx,
        rec.eax,
        lim.eax,
        lim.ebx
    );
    check!(max >= 0x4000_0005, "max leaf {:#x} < 0x40000005", max);
    check!(vendor.iter().any(|&b| b != 0), "empty vendor signature");
    for (bit, name) in [
        (1, "AccessPartitionReferenceCounter"),
        (5, "AccessHypercallMsrs"),
        (6, "AccessVpIndex"),
    ] {
        check!(
            feat.eax & (1 << bit) != 0,
            "0x40000003 EAX lacks {} (bit {})",
            name,
            bit
        );
    }
    Outcome::Pass
}

pub fn msr_guest_os_id(ctx: &mut Ctx) -> Outcome {
    if let Err(m) = hv_present() {
        return Outcome::Fail(m);
    }
    let id = guest_os_id(ctx);
    diag!(
        "GUEST_OS_ID {:#x} (open source={}, os type={}, kernel {}.{}.{})",
        id,
        id >> 63,
        (id >> 56) & 0x7f,
        (id >> 32) & 0xff,
        (id >> 24) & 0xff,
        (id >> 16) & 0xff
    );
    if let Err(f) = sys::wrmsr(MSR_GUEST_OS_ID, id) {
        fail!("wrmsr GUEST_OS_ID raised vector {}", f.0);
    }
    match sys::rdmsr(MSR_GUEST_OS_ID) {
        Ok(v) => check!(v == id, "GUEST_OS_ID reads back {:#x}, wrote {:#x}", v, id),
        Err(f) => fail!("rdmsr GUEST_OS_ID raised vector {}", f.0),
    }
    Outcome::Pass
}

pub fn msr_hypercall_before_os_id(_ctx: &mut Ctx) -> Outcome {
    if let Err(m) = hv_present() {
        return Outcome::Fail(m);
    }
    if let Err(f) = sys::wrmsr(MSR_GUEST_OS_ID, 0) {
        fail!("wrmsr GUEST_OS_ID=0 raised vector {}", f.0);
    }
    if let Err(f) = sys::wrmsr(MSR_HYPERCALL, page_gpa() | 1) {
        fail!("wrmsr HYPERCALL raised vector {}", f.0);
    }
    let v = match sys::rdmsr(MSR_HYPERCALL) {
        Ok(v) => v,
        Err(f) => fail!("rdmsr HYPERCALL raised vector {}", f.0),
    };
    diag!("HYPERCALL MSR after enable with GUEST_OS_ID=0: {:#x}", v);
    check!(
        v & 1 == 0,
        "enable bit set ({:#x}) although GUEST_OS_ID is zero",
        v
    );
    let filled = (0..64).any(|i| sys::read_u8(page_gpa() + i) != 0);
    check!(
        !filled,
        "the VMM filled the hypercall page although the enable was ignored"
    );
    Outcome::Pass
}

/// HYPERCALL MSR bit 1 (Locked): once set, writes are ignored until reset; the page keeps
/// working.
pub fn msr_hypercall_locked(ctx: &mut Ctx) -> Outcome {
    let page = setup!(ctx);
    if let Err(f) = sys::wrmsr(MSR_HYPERCALL, page | 0b11) {
        fail!("wrmsr HYPERCALL enable|locked raised vector {}", f.0);
    }
    let locked = match sys::rdmsr(MSR_HYPERCALL) {
        Ok(v) => v,
        Err(f) => fail!("rdmsr HYPERCALL raised vector {}", f.0),
    };
    check!(
        locked & 0b11 == 0b11 && locked & !0xfff == page,
        "after enable|locked the MSR reads {:#x}",
        locked
    );
    // Try to disable, then to move the page: both ignored.
    for value in [0, (page + 0x1000) | 1] {
        match sys::wrmsr(MSR_HYPERCALL, value) {
            Ok(()) => {}
            Err(f) => fail!(
                "wrmsr HYPERCALL={:#x} on a locked MSR raised vector {}",
                value,
                f.0
            ),
        }
        match sys::rdmsr(MSR_HYPERCALL) {
            Ok(v) => check!(
                v == locked,
                "locked MSR changed to {:#x} after writing {:#x}",
                v,
                value
            ),
            Err(f) => fail!("rdmsr HYPERCALL raised vector {}", f.0),
        }
    }
    expect_status!(
        page,
        CALL_NOTIFY_LONG_SPIN_WAIT | FAST,
        1,
        0,
        HV_STATUS_SUCCESS,
        "NotifyLongSpinWait (locked page)"
    );
    Outcome::Pass
}

pub fn msr_unimplemented_gp(_ctx: &mut Ctx) -> Outcome {
    if let Err(m) = hv_present() {
        return Outcome::Fail(m);
    }
    match sys::rdmsr(MSR_UNIMPLEMENTED) {
        Err(Fault(13)) => {}
        Err(Fault(v)) => fail!(
            "rdmsr {:#x} raised vector {}, want #GP",
            MSR_UNIMPLEMENTED,
            v
        ),
        Ok(v) => fail!("rdmsr {:#x} returned {:#x}, want #GP", MSR_UNIMPLEMENTED, v),
    }
    match sys::wrmsr(MSR_UNIMPLEMENTED, 1) {
        Err(Fault(13)) => {}
        Err(Fault(v)) => fail!(
            "wrmsr {:#x} raised vector {}, want #GP",
            MSR_UNIMPLEMENTED,
            v
        ),
        Ok(()) => fail!("wrmsr {:#x} succeeded, want #GP", MSR_UNIMPLEMENTED),
    }
    Outcome::Pass
}

pub fn msr_vp_index(_ctx: &mut Ctx) -> Outcome {
    if let Err(m) = hv_present() {
        return Outcome::Fail(m);
    }
    match sys::rdmsr(MSR_VP_INDEX) {
        Ok(v) => check!(v == 0, "VP_INDEX on the boot vCPU reads {}", v),
        Err(f) => fail!("rdmsr VP_INDEX raised vector {}", f.0),
    }
    Outcome::Pass
}

pub fn msr_time_ref_count(_ctx: &mut Ctx) -> Outcome {
    if let Err(m) = hv_present() {
        return Outcome::Fail(m);
    }
    let first = match sys::rdmsr(MSR_TIME_REF_COUNT) {
        Ok(v) => v,
        Err(f) => fail!("rdmsr TIME_REF_COUNT raised vector {}", f.0),
    };
    let mut prev = first;
    let mut reads = 1u32;
    // Until it advanced by 1 ms (10,000 units of 100 ns), at most 2,000 reads.
    while prev.wrapping_sub(first) < 10_000 && reads < 2_000 {
        let v = match sys::rdmsr(MSR_TIME_REF_COUNT) {
            Ok(v) => v,
            Err(f) => fail!("rdmsr TIME_REF_COUNT raised vector {}", f.0),
        };
        check!(
            v >= prev,
            "TIME_REF_COUNT went backwards: {} after {}",
            v,
            prev
        );
        prev = v;
        reads += 1;
    }
    diag!("TIME_REF_COUNT {} -> {} over {} reads", first, prev, reads);
    check!(
        prev > first,
        "TIME_REF_COUNT did not advance over {} reads",
        reads
    );
    check!(
        prev - first >= 10_000,
        "TIME_REF_COUNT advanced only {} in {} reads",
        prev - first,
        reads
    );
    Outcome::Pass
}

pub fn hypercall_page(ctx: &mut Ctx) -> Outcome {
    let page = setup!(ctx);
    let filled = (0..4096).filter(|&i| sys::read_u8(page + i) != 0).count();
    diag!(
        "hypercall page at {:#x}: {} non-zero bytes, first {:#x} {:#x} {:#x} {:#x}",
        page,
        filled,
        sys::read_u8(page),
        sys::read_u8(page + 1),
        sys::read_u8(page + 2),
        sys::read_u8(page + 3)
    );
    check!(filled > 0, "hypercall page at {:#x} left empty", page);
    // A hypercall through it works: NotifyLongSpinWait (fast) succeeds.
    expect_status!(
        page,
        CALL_NOTIFY_LONG_SPIN_WAIT | FAST,
        1,
        0,
        HV_STATUS_SUCCESS,
        "NotifyLongSpinWait"
    );
    Outcome::Pass
}

pub fn call_long_spin_wait(ctx: &mut Ctx) -> Outcome {
    let page = setup!(ctx);
    // Memory form: SpinWaitCount in the input block.
    sys::write_u64(input_gpa(), 7);
    expect_status!(
        page,
        CALL_NOTIFY_LONG_SPIN_WAIT,
        input_gpa(),
        0,
        HV_STATUS_SUCCESS,
        "NotifyLongSpinWait (memory input)"
    );
    for count in [1u64, 0x1000] {
        expect_status!(
            page,
            CALL_NOTIFY_LONG_SPIN_WAIT | FAST,
            count,
            0,
            HV_STATUS_SUCCESS,
            "NotifyLongSpinWait"
        );
    }
    Outcome::Pass
}

/// HV_FLUSH_ALL_PROCESSORS | HV_FLUSH_ALL_VIRTUAL_ADDRESS_SPACES, processor mask 1.
pub(super) fn flush_header(at: u64) {
    sys::write_u64(at, 0); // AddressSpace
    sys::write_u64(at + 8, 3); // Flags
    sys::write_u64(at + 16, 1); // ProcessorMask
}

pub fn call_flush_space(ctx: &mut Ctx) -> Outcome {
    let page = setup!(ctx);
    flush_header(input_gpa());
    expect_status!(
        page,
        CALL_FLUSH_SPACE,
        input_gpa(),
        0,
        HV_STATUS_SUCCESS,
        "FlushVirtualAddressSpace"
    );
    // Fast form: AddressSpace in RDX, Flags in R8 (processor mask unused with ALL_PROCESSORS).
    expect_status!(
        page,
        CALL_FLUSH_SPACE | FAST,
        0,
        3,
        HV_STATUS_SUCCESS,
        "fast FlushVirtualAddressSpace"
    );
    // An undefined flag bit is an invalid parameter.
    sys::write_u64(input_gpa() + 8, 3 | 1 << 20);
    expect_status!(
        page,
        CALL_FLUSH_SPACE,
        input_gpa(),
        0,
        HV_STATUS_INVALID_PARAMETER,
        "FlushVirtualAddressSpace with an undefined flag"
    );
    Outcome::Pass
}

pub fn call_flush_list(ctx: &mut Ctx) -> Outcome {
    let page = setup!(ctx);
    flush_header(input_gpa());
    let reps = 3u64;
    for i in 0..reps {
        sys::write_u64(input_gpa() + 24 + i * 8, 0x40_0000 + i * 0x1000); // GVA | count 0
    }
    let rax = expect_status!(
        page,
        CALL_FLUSH_LIST | rep_count(reps),
        input_gpa(),
        0,
        HV_STATUS_SUCCESS,
        "FlushVirtualAddressList"
    );
    let done = (rax >> 32) & 0xfff;
    check!(
        done == reps,
        "FlushVirtualAddressList completed {} of {} reps",
        done,
        reps
    );
    Outcome::Pass
}

/// Rep calls: a rep start resumes part-way; an input list running off the end of RAM
/// stops with HV_STATUS_INVALID_PARAMETER and says how many reps were done; rep start past
/// rep count is invalid input.
pub fn call_rep_semantics(ctx: &mut Ctx) -> Outcome {
    let page = setup!(ctx);
    flush_header(input_gpa());
    for i in 0..4u64 {
        sys::write_u64(input_gpa() + 24 + i * 8, 0x40_0000 + i * 0x1000);
    }
    let rax = expect_status!(
        page,
        CALL_FLUSH_LIST | rep_count(4) | (2 << 48),
        input_gpa(),
        0,
        HV_STATUS_SUCCESS,
        "FlushVirtualAddressList reps 2..4"
    );
    check!(
        (rax >> 32) & 0xfff == 4,
        "rep start 2 of 4: reps completed {}",
        (rax >> 32) & 0xfff
    );
    expect_status!(
        page,
        CALL_FLUSH_LIST | rep_count(2) | (3 << 48),
        input_gpa(),
        0,
        HV_STATUS_INVALID_HYPERCALL_INPUT,
        "rep start past rep count"
    );
    if ctx.ram_top >= 2 << 20 {
        // Header + 2 entries fit below the top of RAM, the 3rd doesn't.
        let at = ctx.ram_top - 24 - 16;
        flush_header(at);
        sys::write_u64(at + 24, 0x40_0000);
        sys::write_u64(at + 32, 0x40_1000);
        let rax = expect_status!(
            page,
            CALL_FLUSH_LIST | rep_count(3),
            at,
            0,
            HV_STATUS_INVALID_PARAMETER,
            "rep list running off the end of RAM"
        );
        check!(
            (rax >> 32) & 0xfff == 2,
            "list crossing the end of RAM: reps completed {}, want 2",
            (rax >> 32) & 0xfff
        );
    }
    // A variable header on a call that has none is invalid input too.
    expect_status!(
        page,
        CALL_NOTIFY_LONG_SPIN_WAIT | FAST | (1 << 17),
        1,
        0,
        HV_STATUS_INVALID_HYPERCALL_INPUT,
        "variable header size 1"
    );
    Outcome::Pass
}

pub fn call_post_debug_data(ctx: &mut Ctx) -> Outcome {
    let page = setup!(ctx);
    let text = b"hvcert-debug-data-ok\n";
    sys::write_u32(input_gpa(), text.len() as u32); // Count
    sys::write_u32(input_gpa() + 4, 0); // Options
    sys::write_bytes(input_gpa() + 8, text);
    sys::write_u32(output_gpa(), 0xdead_beef);
    expect_status!(
        page,
        CALL_POST_DEBUG_DATA,
        input_gpa(),
        output_gpa(),
        HV_STATUS_SUCCESS,
        "PostDebugData"
    );
    diag!(
        "PostDebugData output PendingCount={:#x}",
        sys::read_u32(output_gpa())
    );
    Outcome::Pass
}

pub fn call_retrieve_debug_data(ctx: &mut Ctx) -> Outcome {
    let page = setup!(ctx);
    sys::write_u32(input_gpa(), 64); // Count
    sys::write_u32(input_gpa() + 4, 0); // Options
    sys::write_u64(input_gpa() + 8, 0); // Timeout
    sys::write_u64(output_gpa(), u64::MAX);
    expect_status!(
        page,
        CALL_RETRIEVE_DEBUG_DATA,
        input_gpa(),
        output_gpa(),
        HV_STATUS_SUCCESS,
        "RetrieveDebugData"
    );
    let got = sys::read_u32(output_gpa());
    diag!(
        "RetrieveDebugData RetrievedCount={} RemainingCount={}",
        got,
        sys::read_u32(output_gpa() + 4)
    );
    check!(
        got <= 64,
        "RetrievedCount {} exceeds the 64 bytes asked",
        got
    );
    // A fast call is not allowed for it.
    expect_status!(
        page,
        CALL_RETRIEVE_DEBUG_DATA | FAST,
        0,
        0,
        HV_STATUS_INVALID_HYPERCALL_INPUT,
        "fast RetrieveDebugData"
    );
    Outcome::Pass
}

pub fn call_invalid_code(ctx: &mut Ctx) -> Outcome {
    let page = setup!(ctx);
    for code in [0xfffe_u64, 0x7fff] {
        expect_status!(
            page,
            code | FAST,
            0,
            0,
            HV_STATUS_INVALID_HYPERCALL_CODE,
            "unknown call code"
        );
    }
    Outcome::Pass
}

pub fn call_reserved_bits(ctx: &mut Ctx) -> Outcome {
    let page = setup!(ctx);
    // RsvdZ: 31:27 (27 is "nested" in later TLFS, left out), 47:44, 63:60.
    for bit in [31u64, 44, 47, 60, 63] {
        expect_status!(
            page,
            CALL_NOTIFY_LONG_SPIN_WAIT | FAST | (1 << bit),
            1,
            0,
            HV_STATUS_INVALID_HYPERCALL_INPUT,
            "reserved bit"
        );
    }
    Outcome::Pass
}

pub fn call_rep_on_simple(ctx: &mut Ctx) -> Outcome {
    let page = setup!(ctx);
    expect_status!(
        page,
        CALL_NOTIFY_LONG_SPIN_WAIT | FAST | rep_count(1),
        1,
        0,
        HV_STATUS_INVALID_HYPERCALL_INPUT,
        "rep count on a simple call"
    );
    flush_header(input_gpa());
    expect_status!(
        page,
        CALL_FLUSH_SPACE | rep_count(2),
        input_gpa(),
        0,
        HV_STATUS_INVALID_HYPERCALL_INPUT,
        "rep count on FlushVirtualAddressSpace"
    );
    Outcome::Pass
}

pub fn call_misaligned(ctx: &mut Ctx) -> Outcome {
    let page = setup!(ctx);
    flush_header(input_gpa());
    expect_status!(
        page,
        CALL_FLUSH_SPACE,
        input_gpa() + 4,
        0,
        HV_STATUS_INVALID_ALIGNMENT,
        "misaligned input GPA"
    );
    let text = b"x";
    sys::write_u32(input_gpa(), 1);
    sys::write_u32(input_gpa() + 4, 0);
    sys::write_bytes(input_gpa() + 8, text);
    expect_status!(
        page,
        CALL_POST_DEBUG_DATA,
        input_gpa(),
        output_gpa() + 2,
        HV_STATUS_INVALID_ALIGNMENT,
        "misaligned output GPA"
    );
    Outcome::Pass
}

pub fn call_bad_gpa(ctx: &mut Ctx) -> Outcome {
    let page = setup!(ctx);
    // Page-aligned, past the end of RAM per the PVH memory map.
    let top = if ctx.ram_top != 0 {
        ctx.ram_top
    } else {
        1 << 30
    };
    let bad = (top + 0x10_0000) & !0xfff;
    expect_status!(
        page,
        CALL_FLUSH_SPACE,
        bad,
        0,
        HV_STATUS_INVALID_PARAMETER,
        "input GPA outside RAM"
    );
    Outcome::Pass
}

pub fn call_cpl3_ud(ctx: &mut Ctx) -> Outcome {
    let page = setup!(ctx);
    match sys::call_from_ring3(page, CALL_NOTIFY_LONG_SPIN_WAIT | FAST, 1, 0) {
        Err(Fault(6)) => {}
        Err(Fault(v)) => fail!("hypercall from CPL 3 raised vector {}, want #UD (6)", v),
        Ok(rax) => fail!("hypercall from CPL 3 returned {:#x}, want #UD", rax),
    }
    // A guest that jumps past whatever CPL check the page code itself makes, straight onto
    // an `out imm8, eax` in it, must not get a hypercall done either: the VMM checks CPL.
    let mut tried = 0;
    for off in 0..64 {
        if sys::read_u8(page + off) != 0xe7 {
            continue;
        }
        tried += 1;
        match sys::call_from_ring3(page + off, CALL_NOTIFY_LONG_SPIN_WAIT | FAST, 1, 0) {
            Err(Fault(_)) => {}
            Ok(rax) => fail!(
                "ring 3 jumping to the page's exit at +{:#x} got rax={:#x}, want a fault",
                off,
                rax
            ),
        }
    }
    diag!(
        "{} exit instruction(s) in the page also fault from CPL 3",
        tried
    );
    Outcome::Pass
}
