//! Hyper-V cases of issue 12 (split from `hv.rs`): the vendor and Linux-style detection, the
//! privileges as configuration and the gating sweep (one VM per withdrawn privilege), and the
//! newer synthetic MSRs (RESET, VP_RUNTIME, reference TSC page, frequencies, crash, idle,
//! VP assist page, SynIC state) with PostMessage/SignalEvent input checks.
use super::hv::*;
use crate::ktap::Outcome;
use crate::sys::{self, Fault, Page};
use crate::{check, diag, fail, Ctx};

const MSR_RESET: u32 = 0x4000_0003;
const MSR_VP_RUNTIME: u32 = 0x4000_0010;
const MSR_REFERENCE_TSC: u32 = 0x4000_0021;
const MSR_TSC_FREQUENCY: u32 = 0x4000_0022;
const MSR_APIC_FREQUENCY: u32 = 0x4000_0023;
const MSR_VP_ASSIST_PAGE: u32 = 0x4000_0073;
const MSR_SCONTROL: u32 = 0x4000_0080;
const MSR_SVERSION: u32 = 0x4000_0081;
const MSR_SIEFP: u32 = 0x4000_0082;
const MSR_SIMP: u32 = 0x4000_0083;
const MSR_EOM: u32 = 0x4000_0084;
const MSR_SINT0: u32 = 0x4000_0090;
const MSR_SINT15: u32 = 0x4000_009F;
const MSR_GUEST_IDLE: u32 = 0x4000_00F0;
const MSR_CRASH_P0: u32 = 0x4000_0100;
const MSR_CRASH_CTL: u32 = 0x4000_0105;
const CALL_POST_MESSAGE: u64 = 0x005C;
const CALL_SIGNAL_EVENT: u64 = 0x005D;
const HV_STATUS_ACCESS_DENIED: u16 = 6;
const HV_STATUS_INVALID_CONNECTION_ID: u16 = 0x12;

/// Which CPUID register a gate bit is in: 0x40000003 EAX/EBX/EDX or 0x40000004 EAX.
#[derive(Clone, Copy)]
enum Reg {
    Eax,
    Ebx,
    Edx,
    Rec,
}

fn reg_value(r: Reg) -> u32 {
    match r {
        Reg::Eax => sys::cpuid(0x4000_0003).eax,
        Reg::Ebx => sys::cpuid(0x4000_0003).ebx,
        Reg::Edx => sys::cpuid(0x4000_0003).edx,
        Reg::Rec => sys::cpuid(0x4000_0004).eax,
    }
}

/// TLFS names of the privileges the sweep clears, with their bit (as the hypervisor's ABI).
const GATE_NAMES: &[(&str, Reg, u32)] = &[
    ("AccessVpRunTimeReg", Reg::Eax, 1 << 0),
    ("AccessPartitionReferenceCounter", Reg::Eax, 1 << 1),
    ("AccessSynicRegs", Reg::Eax, 1 << 2),
    ("AccessIntrCtrlRegs", Reg::Eax, 1 << 4),
    ("AccessHypercallMsrs", Reg::Eax, 1 << 5),
    ("AccessVpIndex", Reg::Eax, 1 << 6),
    ("AccessResetReg", Reg::Eax, 1 << 7),
    ("AccessPartitionReferenceTsc", Reg::Eax, 1 << 9),
    ("AccessGuestIdleReg", Reg::Eax, 1 << 10),
    ("AccessFrequencyRegs", Reg::Eax, 1 << 11),
    ("PostMessages", Reg::Ebx, 1 << 4),
    ("SignalEvents", Reg::Ebx, 1 << 5),
    ("Debugging", Reg::Ebx, 1 << 11),
    ("GuestCrashRegsAvailable", Reg::Edx, 1 << 10),
    (
        "UseHypercallForRemoteFlushAndLocalFlushEntire",
        Reg::Rec,
        1 << 2,
    ),
];

/// Each synthetic MSR with its gate, and whether writing back what it reads must work when
/// the gate is open (read-only MSRs #GP on any write).
const MSR_PROBES: &[(u32, Reg, u32, bool)] = &[
    (MSR_GUEST_OS_ID, Reg::Eax, 1 << 5, true),
    (MSR_HYPERCALL, Reg::Eax, 1 << 5, true),
    (MSR_VP_INDEX, Reg::Eax, 1 << 6, false),
    (MSR_RESET, Reg::Eax, 1 << 7, true),
    (MSR_VP_RUNTIME, Reg::Eax, 1 << 0, false),
    (MSR_TIME_REF_COUNT, Reg::Eax, 1 << 1, false),
    (MSR_REFERENCE_TSC, Reg::Eax, 1 << 9, true),
    (MSR_TSC_FREQUENCY, Reg::Eax, 1 << 11, false),
    (MSR_APIC_FREQUENCY, Reg::Eax, 1 << 11, false),
    (MSR_VP_ASSIST_PAGE, Reg::Eax, 1 << 4, true),
    (MSR_SCONTROL, Reg::Eax, 1 << 2, true),
    (MSR_SVERSION, Reg::Eax, 1 << 2, false),
    (MSR_SIEFP, Reg::Eax, 1 << 2, true),
    (MSR_SIMP, Reg::Eax, 1 << 2, true),
    (MSR_EOM, Reg::Eax, 1 << 2, true),
    (MSR_SINT0, Reg::Eax, 1 << 2, true),
    (MSR_SINT15, Reg::Eax, 1 << 2, true),
    (MSR_GUEST_IDLE, Reg::Eax, 1 << 10, false),
    (MSR_CRASH_P0, Reg::Edx, 1 << 10, true),
    (MSR_CRASH_P0 + 4, Reg::Edx, 1 << 10, true),
    (MSR_CRASH_CTL, Reg::Edx, 1 << 10, true),
];

/// Checks every synthetic MSR and gated hypercall against leaves 0x40000003/4: #GP or
/// HV_STATUS_ACCESS_DENIED exactly when the gate bit is clear (KVM's hyperv_features).
fn check_gates(ctx: &Ctx) -> Result<u32, crate::ktap::Msg> {
    hv_present()?;
    let mut checks = 0u32;
    for &(msr, reg, mask, writable) in MSR_PROBES {
        let open = reg_value(reg) & mask != 0;
        match (sys::rdmsr(msr), open) {
            (Ok(v), true) => {
                // CRASH_CTL reads CrashNotify; writing that back would end the VM.
                let v = if msr == MSR_CRASH_CTL { 0 } else { v };
                if writable {
                    if let Err(f) = sys::wrmsr(msr, v) {
                        return Err(crate::msg!(
                            "wrmsr {:#x}={:#x} (privilege granted) raised vector {}",
                            msr,
                            v,
                            f.0
                        ));
                    }
                } else if sys::wrmsr(msr, v).is_ok() {
                    return Err(crate::msg!("wrmsr of read-only {:#x} succeeded", msr));
                }
            }
            (Err(Fault(13)), false) => {
                if sys::wrmsr(msr, 0).is_ok() {
                    return Err(crate::msg!(
                        "wrmsr {:#x} succeeded although its privilege is clear",
                        msr
                    ));
                }
            }
            (Ok(v), false) => {
                return Err(crate::msg!(
                    "rdmsr {:#x} returned {:#x} although its privilege is clear",
                    msr,
                    v
                ))
            }
            (Err(f), _) => {
                return Err(crate::msg!(
                    "rdmsr {:#x} raised vector {} (privilege {})",
                    msr,
                    f.0,
                    if open { "granted" } else { "clear" }
                ))
            }
        }
        checks += 1;
    }
    if reg_value(Reg::Eax) & (1 << 5) == 0 {
        diag!("no AccessHypercallMsrs: hypercalls cannot be enabled, MSRs checked");
        return Ok(checks);
    }
    let page = enable_hypercalls(ctx)?;
    sys::write_bytes(input_gpa(), &[0u8; 256]);
    // (call input, input, output, gate register, gate bit, status when granted)
    let calls: &[(u64, u64, u64, Reg, u32, u16)] = &[
        (
            CALL_FLUSH_SPACE | FAST,
            0,
            0,
            Reg::Rec,
            1 << 2,
            HV_STATUS_SUCCESS,
        ),
        (
            CALL_FLUSH_LIST,
            input_gpa(),
            0,
            Reg::Rec,
            1 << 2,
            HV_STATUS_SUCCESS,
        ),
        (
            CALL_POST_MESSAGE,
            input_gpa(),
            0,
            Reg::Ebx,
            1 << 4,
            HV_STATUS_INVALID_PARAMETER,
        ),
        (
            CALL_SIGNAL_EVENT | FAST,
            1,
            0,
            Reg::Ebx,
            1 << 5,
            HV_STATUS_INVALID_CONNECTION_ID,
        ),
        (
            CALL_POST_DEBUG_DATA,
            input_gpa(),
            output_gpa(),
            Reg::Ebx,
            1 << 11,
            HV_STATUS_SUCCESS,
        ),
        (
            CALL_RETRIEVE_DEBUG_DATA,
            input_gpa(),
            output_gpa(),
            Reg::Ebx,
            1 << 11,
            HV_STATUS_SUCCESS,
        ),
    ];
    for &(input, a, b, reg, mask, granted) in calls {
        let want = if reg_value(reg) & mask != 0 {
            granted
        } else {
            HV_STATUS_ACCESS_DENIED
        };
        let got = status(call(page, input, a, b)?);
        if got != want {
            return Err(crate::msg!(
                "hypercall {:#x}: status {:#x}, want {:#x}",
                input,
                got,
                want
            ));
        }
        checks += 1;
    }
    Ok(checks)
}

/// One VM of the gating sweep: `name` must be clear in CPUID, and every MSR and call must
/// follow its gate.
fn gate_sweep(ctx: &Ctx, name: &str) -> Outcome {
    let Some(&(_, reg, mask)) = GATE_NAMES.iter().find(|g| g.0 == name) else {
        fail!("no privilege {} in the guest's table", name);
    };
    if let Err(m) = hv_present() {
        return Outcome::Fail(m);
    }
    let v = reg_value(reg);
    diag!("{} withdrawn for this VM? register {:#x}", name, v);
    check!(
        v & mask == 0,
        "{} still set ({:#x}): the profile's hv_clear was not applied",
        name,
        v
    );
    match check_gates(ctx) {
        Ok(n) => {
            diag!("{} gated MSR/call checks agree with CPUID", n);
            Outcome::Pass
        }
        Err(m) => Outcome::Fail(m),
    }
}

macro_rules! gate_cases {
    ($($f:ident => $name:expr),* $(,)?) => {
        $(pub fn $f(ctx: &mut Ctx) -> Outcome { gate_sweep(ctx, $name) })*
    };
}

gate_cases! {
    gate_vp_runtime => "AccessVpRunTimeReg",
    gate_reference_counter => "AccessPartitionReferenceCounter",
    gate_synic => "AccessSynicRegs",
    gate_intr_ctrl => "AccessIntrCtrlRegs",
    gate_hypercall_msrs => "AccessHypercallMsrs",
    gate_vp_index => "AccessVpIndex",
    gate_reset => "AccessResetReg",
    gate_reference_tsc => "AccessPartitionReferenceTsc",
    gate_guest_idle => "AccessGuestIdleReg",
    gate_frequency => "AccessFrequencyRegs",
    gate_post_messages => "PostMessages",
    gate_signal_events => "SignalEvents",
    gate_debugging => "Debugging",
    gate_crash => "GuestCrashRegsAvailable",
    gate_remote_flush => "UseHypercallForRemoteFlushAndLocalFlushEntire",
}

/// Every privilege granted (the profile's default): every MSR works, no call is denied.
pub fn gate_all_granted(ctx: &mut Ctx) -> Outcome {
    for &(name, reg, mask) in GATE_NAMES {
        check!(
            reg_value(reg) & mask != 0,
            "{} not granted by default",
            name
        );
    }
    match check_gates(ctx) {
        Ok(n) => {
            diag!("{} MSR/call checks with every privilege granted", n);
            Outcome::Pass
        }
        Err(m) => Outcome::Fail(m),
    }
}

/// Linux's ms_hyperv_platform(): vendor "Microsoft Hv", 0x40000005 <= max leaf <= 0x4000ffff,
/// HYPERCALL and VP_INDEX MSRs available.
pub fn cpuid_linux_detect(_ctx: &mut Ctx) -> Outcome {
    let max = match hv_present() {
        Ok(m) => m,
        Err(m) => return Outcome::Fail(m),
    };
    let vendor = sys::signature(&sys::cpuid(0x4000_0000));
    diag!(
        "vendor '{}' max leaf {:#x}",
        core::str::from_utf8(&vendor).unwrap_or("?"),
        max
    );
    check!(
        &vendor == b"Microsoft Hv",
        "vendor is not \"Microsoft Hv\": Linux would not detect Hyper-V"
    );
    check!(
        (0x4000_0005..=0x4000_ffff).contains(&max),
        "max leaf {:#x} outside 0x40000005..=0x4000ffff",
        max
    );
    let eax = reg_value(Reg::Eax);
    check!(
        eax & (1 << 5) != 0 && eax & (1 << 6) != 0,
        "HYPERCALL/VP_INDEX not available: {:#x}",
        eax
    );
    Outcome::Pass
}

fn rd(msr: u32) -> Result<u64, crate::ktap::Msg> {
    sys::rdmsr(msr).map_err(|f| crate::msg!("rdmsr {:#x} raised vector {}", msr, f.0))
}

fn expect_gp_write(msr: u32, value: u64) -> Result<(), crate::ktap::Msg> {
    match sys::wrmsr(msr, value) {
        Err(Fault(13)) => Ok(()),
        Err(f) => Err(crate::msg!(
            "wrmsr {:#x}={:#x} raised vector {}, want #GP",
            msr,
            value,
            f.0
        )),
        Ok(()) => Err(crate::msg!(
            "wrmsr {:#x}={:#x} succeeded, want #GP",
            msr,
            value
        )),
    }
}

fn wr(msr: u32, value: u64) -> Result<(), crate::ktap::Msg> {
    sys::wrmsr(msr, value)
        .map_err(|f| crate::msg!("wrmsr {:#x}={:#x} raised vector {}", msr, value, f.0))
}

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(m) => return Outcome::Fail(m),
        }
    };
}

/// RESET: reads 0, reserved bits #GP (negative half).
pub fn msr_reset_reserved_gp(_ctx: &mut Ctx) -> Outcome {
    tri!(hv_present());
    check!(tri!(rd(MSR_RESET)) == 0, "RESET reads nonzero");
    tri!(expect_gp_write(MSR_RESET, 2));
    tri!(expect_gp_write(MSR_RESET, 1 << 63));
    tri!(wr(MSR_RESET, 0));
    Outcome::Pass
}

/// RESET bit 0 ends the VM as a reset (the profile expects `reset`); returning is a failure.
pub fn msr_reset(_ctx: &mut Ctx) -> Outcome {
    tri!(hv_present());
    diag!("writing RESET = 1");
    tri!(wr(MSR_RESET, 1));
    fail!("the VM went on after RESET = 1")
}

/// VP_RUNTIME: read-only, grows while the VP runs.
pub fn msr_vp_runtime(_ctx: &mut Ctx) -> Outcome {
    tri!(hv_present());
    let a = tri!(rd(MSR_VP_RUNTIME));
    let t0 = sys::rdtsc();
    while sys::rdtsc().wrapping_sub(t0) < 200_000_000 {
        core::hint::spin_loop();
    }
    let b = tri!(rd(MSR_VP_RUNTIME));
    diag!("VP_RUNTIME {} -> {} (100 ns units)", a, b);
    check!(b > a, "VP_RUNTIME did not grow: {} -> {}", a, b);
    tri!(expect_gp_write(MSR_VP_RUNTIME, 0));
    Outcome::Pass
}

static mut TSC_PAGE: Page = Page([0; 4096]);
static mut ASSIST_PAGE: Page = Page([0; 4096]);

fn page_time(page: u64) -> Option<u64> {
    loop {
        let seq = sys::read_u32(page);
        if seq == 0 {
            return None;
        }
        let scale = sys::read_u64(page + 8);
        let offset = sys::read_u64(page + 16);
        let tsc = sys::rdtsc();
        let t = ((u128::from(tsc) * u128::from(scale)) >> 64) as u64;
        if sys::read_u32(page) == seq {
            return Some(t.wrapping_add(offset));
        }
    }
}

/// REFERENCE_TSC: the page's time agrees with TIME_REF_COUNT within 100 us (1,000 units),
/// at once and after 1 s of guest time.
pub fn msr_reference_tsc(_ctx: &mut Ctx) -> Outcome {
    tri!(hv_present());
    let page = (&raw const TSC_PAGE) as u64;
    tri!(wr(MSR_REFERENCE_TSC, page | 1));
    check!(
        tri!(rd(MSR_REFERENCE_TSC)) == page | 1,
        "REFERENCE_TSC does not read back"
    );
    let seq = sys::read_u32(page);
    let (scale, offset) = (sys::read_u64(page + 8), sys::read_u64(page + 16));
    diag!(
        "TSC page sequence {} scale {:#x} offset {}",
        seq,
        scale,
        offset as i64
    );
    if seq == 0 {
        return Outcome::Skip(crate::msg!(
            "sequence 0: the host TSC is not reliable, use the MSR"
        ));
    }
    let hz = tri!(rd(MSR_TSC_FREQUENCY));
    for round in 0..2 {
        let before = page_time(page).unwrap_or(0);
        let msr = tri!(rd(MSR_TIME_REF_COUNT));
        let after = page_time(page).unwrap_or(0);
        diag!(
            "round {}: page {} <= msr {} <= page {} (+-1000)",
            round,
            before,
            msr,
            after
        );
        check!(
            msr + 1_000 >= before && msr <= after + 1_000,
            "TIME_REF_COUNT {} outside the TSC page's [{}, {}] +- 100 us",
            msr,
            before,
            after
        );
        if round == 0 {
            let t0 = sys::rdtsc();
            while sys::rdtsc().wrapping_sub(t0) < hz {
                core::hint::spin_loop();
            }
        }
    }
    tri!(wr(MSR_REFERENCE_TSC, 0));
    Outcome::Pass
}

/// REFERENCE_TSC: reserved bits and a page outside RAM raise #GP.
pub fn msr_reference_tsc_bad_gp(ctx: &mut Ctx) -> Outcome {
    tri!(hv_present());
    let page = (&raw const TSC_PAGE) as u64;
    tri!(expect_gp_write(MSR_REFERENCE_TSC, page | 1 | 0x10));
    let beyond = (ctx.ram_top + 0x10_0000) & !0xfff;
    tri!(expect_gp_write(MSR_REFERENCE_TSC, beyond | 1));
    check!(
        tri!(rd(MSR_REFERENCE_TSC)) == 0,
        "REFERENCE_TSC changed by a refused write"
    );
    Outcome::Pass
}

/// TSC_FREQUENCY matches the TSC's rate against TIME_REF_COUNT (within 1%); APIC_FREQUENCY
/// is KVM's 1 GHz; both read-only.
pub fn msr_frequencies(_ctx: &mut Ctx) -> Outcome {
    tri!(hv_present());
    let hz = tri!(rd(MSR_TSC_FREQUENCY));
    let apic = tri!(rd(MSR_APIC_FREQUENCY));
    let (r0, t0) = (tri!(rd(MSR_TIME_REF_COUNT)), sys::rdtsc());
    while sys::rdtsc().wrapping_sub(t0) < hz / 4 {
        core::hint::spin_loop();
    }
    let (r1, t1) = (tri!(rd(MSR_TIME_REF_COUNT)), sys::rdtsc());
    let measured = (t1 - t0) as u128 * 10_000_000 / u128::from((r1 - r0).max(1));
    diag!(
        "TSC_FREQUENCY {} Hz, measured {} Hz, APIC_FREQUENCY {} Hz",
        hz,
        measured,
        apic
    );
    check!(hz > 0, "TSC_FREQUENCY is 0");
    check!(
        measured.abs_diff(u128::from(hz)) * 100 <= u128::from(hz),
        "TSC rate {} vs TSC_FREQUENCY {}",
        measured,
        hz
    );
    check!(
        apic == 1_000_000_000,
        "APIC_FREQUENCY {} (want 1 GHz)",
        apic
    );
    tri!(expect_gp_write(MSR_TSC_FREQUENCY, hz));
    tri!(expect_gp_write(MSR_APIC_FREQUENCY, apic));
    Outcome::Pass
}

/// CRASH_P0..P4 hold what the guest writes; CRASH_CTL offers CrashNotify; a notify ends the
/// VM as a crash whose reason carries the parameters (the profile expects a crash).
pub fn msr_crash(_ctx: &mut Ctx) -> Outcome {
    tri!(hv_present());
    let ctl = tri!(rd(MSR_CRASH_CTL));
    check!(
        ctl & (1 << 63) != 0,
        "CRASH_CTL {:#x} lacks CrashNotify",
        ctl
    );
    for i in 0..5u32 {
        let v = 0x1000_0000_0000_0000 + u64::from(i) * 0x1111;
        tri!(wr(MSR_CRASH_P0 + i, v));
        check!(
            tri!(rd(MSR_CRASH_P0 + i)) == v,
            "CRASH_P{} does not read back",
            i
        );
    }
    diag!("notifying a crash");
    tri!(wr(MSR_CRASH_CTL, 1 << 63));
    fail!("the VM went on after CRASH_CTL notify")
}

/// CRASH_CTL: reserved bits raise #GP; a write without notify does nothing.
pub fn msr_crash_ctl_reserved_gp(_ctx: &mut Ctx) -> Outcome {
    tri!(hv_present());
    tri!(expect_gp_write(MSR_CRASH_CTL, 1));
    tri!(expect_gp_write(MSR_CRASH_CTL, (1 << 63) | (1 << 40)));
    tri!(wr(MSR_CRASH_CTL, 0));
    Outcome::Pass
}

/// GUEST_IDLE: a read returns (an interrupt or a spurious wake-up), a write raises #GP.
pub fn msr_guest_idle(_ctx: &mut Ctx) -> Outcome {
    tri!(hv_present());
    let v = tri!(rd(MSR_GUEST_IDLE));
    diag!("GUEST_IDLE read {:#x}", v);
    tri!(expect_gp_write(MSR_GUEST_IDLE, 0));
    Outcome::Pass
}

/// VP_ASSIST_PAGE: enable at a page (zeroed by the hypervisor), disable, reserved bits and a
/// page outside RAM raise #GP.
pub fn msr_vp_assist_page(ctx: &mut Ctx) -> Outcome {
    tri!(hv_present());
    let page = (&raw const ASSIST_PAGE) as u64;
    sys::write_bytes(page, &[0xa5; 64]);
    tri!(wr(MSR_VP_ASSIST_PAGE, page | 1));
    check!(
        tri!(rd(MSR_VP_ASSIST_PAGE)) == page | 1,
        "VP_ASSIST_PAGE does not read back"
    );
    check!(
        (0..64).all(|i| sys::read_u8(page + i) == 0),
        "the assist page was not cleared on enable"
    );
    tri!(wr(MSR_VP_ASSIST_PAGE, 0));
    check!(
        tri!(rd(MSR_VP_ASSIST_PAGE)) == 0,
        "VP_ASSIST_PAGE still set after disable"
    );
    tri!(expect_gp_write(MSR_VP_ASSIST_PAGE, page | 1 | 0x2));
    let beyond = (ctx.ram_top + 0x10_0000) & !0xfff;
    tri!(expect_gp_write(MSR_VP_ASSIST_PAGE, beyond | 1));
    Outcome::Pass
}

/// SynIC registers as state: SVERSION 1, SCONTROL enable, SIMP/SIEFP pages, SINTs start
/// masked and keep vector, masked, auto-EOI and polling; EOM accepts writes.
pub fn msr_synic(_ctx: &mut Ctx) -> Outcome {
    tri!(hv_present());
    check!(tri!(rd(MSR_SVERSION)) == 1, "SVERSION is not 1");
    tri!(wr(MSR_SCONTROL, 1));
    check!(tri!(rd(MSR_SCONTROL)) == 1, "SCONTROL does not read back");
    let (simp, siefp) = (
        (&raw const ASSIST_PAGE) as u64,
        (&raw const TSC_PAGE) as u64,
    );
    tri!(wr(MSR_SIMP, simp | 1));
    tri!(wr(MSR_SIEFP, siefp | 1));
    check!(tri!(rd(MSR_SIMP)) == simp | 1, "SIMP does not read back");
    check!(tri!(rd(MSR_SIEFP)) == siefp | 1, "SIEFP does not read back");
    for i in 0..16 {
        let v = tri!(rd(MSR_SINT0 + i));
        check!(
            v == 1 << 16,
            "SINT{} starts as {:#x}, want masked (0x10000)",
            i,
            v
        );
    }
    for v in [0x40u64, 0x41 | 1 << 17, 0x42 | 1 << 18, 0x5 | 1 << 16] {
        tri!(wr(MSR_SINT0 + 2, v));
        check!(
            tri!(rd(MSR_SINT0 + 2)) == v,
            "SINT2 = {:#x} does not read back",
            v
        );
    }
    tri!(wr(MSR_EOM, 0));
    check!(tri!(rd(MSR_EOM)) == 0, "EOM reads nonzero");
    tri!(wr(MSR_SCONTROL, 0));
    Outcome::Pass
}

/// SynIC reserved bits, a SINT vector below 16 while unmasked, SVERSION writes and overlay
/// pages outside RAM raise #GP.
pub fn msr_synic_reserved_gp(ctx: &mut Ctx) -> Outcome {
    tri!(hv_present());
    tri!(expect_gp_write(MSR_SCONTROL, 2));
    tri!(expect_gp_write(MSR_SVERSION, 1));
    tri!(expect_gp_write(MSR_SINT0, 0x05));
    tri!(expect_gp_write(MSR_SINT0, 0x40 | 1 << 20));
    tri!(expect_gp_write(
        MSR_SIMP,
        (&raw const ASSIST_PAGE) as u64 | 1 | 0x100
    ));
    let beyond = (ctx.ram_top + 0x10_0000) & !0xfff;
    tri!(expect_gp_write(MSR_SIEFP, beyond | 1));
    check!(
        tri!(rd(MSR_SINT0)) == 1 << 16,
        "SINT0 changed by refused writes"
    );
    Outcome::Pass
}

/// HvCallPostMessage: a well-formed message gets INVALID_CONNECTION_ID (no connection yet),
/// a too-large payload INVALID_PARAMETER, a fast call INVALID_HYPERCALL_INPUT.
pub fn call_post_message(ctx: &mut Ctx) -> Outcome {
    let page = setup!(ctx);
    let inp = input_gpa();
    sys::write_bytes(inp, &[0u8; 256]);
    sys::write_u32(inp, 1); // connection id
    sys::write_u32(inp + 8, 1); // message type
    sys::write_u32(inp + 12, 16); // payload size
    expect_status!(
        page,
        CALL_POST_MESSAGE,
        inp,
        0,
        HV_STATUS_INVALID_CONNECTION_ID,
        "PostMessage"
    );
    sys::write_u32(inp + 12, 241);
    expect_status!(
        page,
        CALL_POST_MESSAGE,
        inp,
        0,
        HV_STATUS_INVALID_PARAMETER,
        "PostMessage payload 241"
    );
    expect_status!(
        page,
        CALL_POST_MESSAGE | FAST,
        1,
        0,
        HV_STATUS_INVALID_HYPERCALL_INPUT,
        "PostMessage fast"
    );
    Outcome::Pass
}

/// HvCallSignalEvent (fast and slow): INVALID_CONNECTION_ID with no connection; RsvdZ set is
/// INVALID_HYPERCALL_INPUT.
pub fn call_signal_event(ctx: &mut Ctx) -> Outcome {
    let page = setup!(ctx);
    expect_status!(
        page,
        CALL_SIGNAL_EVENT | FAST,
        7,
        0,
        HV_STATUS_INVALID_CONNECTION_ID,
        "SignalEvent fast"
    );
    sys::write_u64(input_gpa(), 7);
    expect_status!(
        page,
        CALL_SIGNAL_EVENT,
        input_gpa(),
        0,
        HV_STATUS_INVALID_CONNECTION_ID,
        "SignalEvent slow"
    );
    expect_status!(
        page,
        CALL_SIGNAL_EVENT | FAST,
        7 | 1u64 << 48,
        0,
        HV_STATUS_INVALID_HYPERCALL_INPUT,
        "SignalEvent RsvdZ"
    );
    Outcome::Pass
}
