//! Issue 12 audit: TIME_REF_COUNT across vCPUs, and the interfaces KVM's hyperv_features
//! stages probe that this hypervisor does not offer (their CPUID bits must be clear and the
//! MSRs #GP, the calls refused), so a guest never sees half an interface.
use super::hv::{call, enable_hypercalls, hv_present, status};
use crate::ktap::{Msg, Outcome};
use crate::sys::{self, Fault};
use crate::{check, diag, msg, Ctx};

const MSR_TIME_REF_COUNT: u32 = 0x4000_0020;

/// Synthetic MSRs of features not offered, as KVM's hyperv_features names them: synthetic
/// debugger (stages 41-43), reenlightenment and TSC emulation (34-37), TSC invariant
/// control (44-47).
const UNOFFERED_MSRS: &[(u32, &str)] = &[
    (0x4000_00F1, "SYNDBG_CONTROL"),
    (0x4000_00F2, "SYNDBG_STATUS"),
    (0x4000_00F3, "SYNDBG_SEND_BUFFER"),
    (0x4000_00F4, "SYNDBG_RECV_BUFFER"),
    (0x4000_00F5, "SYNDBG_PENDING_BUFFER"),
    (0x4000_0106, "REENLIGHTENMENT_CONTROL"),
    (0x4000_0107, "TSC_EMULATION_CONTROL"),
    (0x4000_0108, "TSC_EMULATION_STATUS"),
    (0x4000_0118, "TSC_INVARIANT_CONTROL"),
];

/// Their CPUID bits (leaf, register index 0=EAX 1=EBX 3=EDX, mask): AccessReenlightenment-
/// Controls, AccessTscInvariantControls, EnableExtendedHypercalls, DebugRegsAvailable
/// (KVM's HV_FEATURE_DEBUG_MSRS_AVAILABLE).
const UNOFFERED_BITS: &[(u32, usize, u32, &str)] = &[
    (0x4000_0003, 0, 1 << 13, "AccessReenlightenmentControls"),
    (0x4000_0003, 0, 1 << 15, "AccessTscInvariantControls"),
    (0x4000_0003, 1, 1 << 20, "EnableExtendedHypercalls"),
    (0x4000_0003, 3, 1 << 11, "DebugRegsAvailable"),
];

const CALL_RESET_DEBUG_SESSION: u64 = 0x006B;
const EXT_CALL_QUERY_CAPABILITIES: u64 = 0x8001;
const FAST: u64 = 1 << 16;
const HV_STATUS_INVALID_HYPERCALL_CODE: u16 = 2;
const HV_STATUS_ACCESS_DENIED: u16 = 6;

fn rd(msr: u32) -> Result<u64, Msg> {
    sys::rdmsr(msr).map_err(|f| msg!("rdmsr {:#x} raised vector {}", msr, f.0))
}

fn run(f: impl FnOnce() -> Result<(), Msg>) -> Outcome {
    match f() {
        Ok(()) => Outcome::Pass,
        Err(m) => Outcome::Fail(m),
    }
}

/// The AP mailbox word `i` (boot.rs AP_MAILBOX), written once by an AP.
fn mailbox(i: usize) -> u32 {
    use crate::boot::{AP_MAILBOX, MAX_CPUS};
    if i >= 4 * MAX_CPUS {
        return 0;
    }
    // SAFETY: in bounds (checked above); APs write these words once, volatile sees it.
    unsafe { core::ptr::read_volatile((&raw const AP_MAILBOX as *const u32).add(i)) }
}

/// TIME_REF_COUNT is one partition-wide clock: every AP's first read (stored before it
/// reports itself up) lies between the boot vCPU's reads before the INIT-SIPI-SIPI and after
/// it saw all APs up. A per-vCPU clock (an offset of more than that window) fails.
pub fn time_ref_count_smp(ctx: &mut Ctx) -> Outcome {
    let vcpus: usize = ctx
        .cmdline
        .get("vcpus")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    check!(
        vcpus >= 2,
        "needs vcpus >= 2 in the profile (vcpus={})",
        vcpus
    );
    if let Err(m) = hv_present() {
        return Outcome::Fail(m);
    }
    let before = match rd(MSR_TIME_REF_COUNT) {
        Ok(v) => v,
        Err(m) => return Outcome::Fail(m),
    };
    match super::smp_vp_index(ctx) {
        Outcome::Pass => {}
        other => return other,
    }
    let after = match rd(MSR_TIME_REF_COUNT) {
        Ok(v) => v,
        Err(m) => return Outcome::Fail(m),
    };
    diag!(
        "BSP TIME_REF_COUNT {} before starting APs, {} after ({} us window)",
        before,
        after,
        after.wrapping_sub(before) / 10
    );
    check!(after >= before, "BSP TIME_REF_COUNT went back");
    check!(
        after < 1 << 32,
        "TIME_REF_COUNT {} past 32 bits: APs store only the low half",
        after
    );
    for apic in 1..vcpus {
        let t = u64::from(mailbox(apic * 4 + 3));
        diag!("vCPU {}: TIME_REF_COUNT {}", apic, t);
        check!(
            before <= t && t <= after,
            "vCPU {} read TIME_REF_COUNT {} outside the boot vCPU's [{}, {}]: not one clock",
            apic,
            t,
            before,
            after
        );
    }
    Outcome::Pass
}

/// What KVM's hyperv_features probes and this hypervisor does not offer: the CPUID bits are
/// clear, each MSR raises #GP on read and write (stages 34, 37, 41, 44 with the bit clear),
/// HvCallResetDebugSession is an unknown call without the synthetic debugger (stage 5) and
/// the extended HvExtCallQueryCapabilities is denied without EnableExtendedHypercalls
/// (stage 19).
pub fn unoffered(ctx: &mut Ctx) -> Outcome {
    run(|| {
        hv_present()?;
        for &(leaf, reg, mask, name) in UNOFFERED_BITS {
            let r = sys::cpuid(leaf);
            let v = [r.eax, r.ebx, r.ecx, r.edx][reg];
            if v & mask != 0 {
                return Err(msg!("CPUID {:#x} offers {} ({:#x})", leaf, name, v));
            }
        }
        for &(m, name) in UNOFFERED_MSRS {
            match sys::rdmsr(m) {
                Err(Fault(13)) => {}
                Err(f) => return Err(msg!("rdmsr {} raised vector {}, want #GP", name, f.0)),
                Ok(v) => return Err(msg!("rdmsr {} returned {:#x}, want #GP", name, v)),
            }
            for value in [0u64, 1] {
                match sys::wrmsr(m, value) {
                    Err(Fault(13)) => {}
                    Err(f) => {
                        return Err(msg!("wrmsr {}={}: vector {}, want #GP", name, value, f.0))
                    }
                    Ok(()) => return Err(msg!("wrmsr {}={} accepted, want #GP", name, value)),
                }
            }
        }
        let page = enable_hypercalls(ctx)?;
        let calls = [
            (
                CALL_RESET_DEBUG_SESSION | FAST,
                HV_STATUS_INVALID_HYPERCALL_CODE,
                "HvCallResetDebugSession",
            ),
            (
                EXT_CALL_QUERY_CAPABILITIES | FAST,
                HV_STATUS_ACCESS_DENIED,
                "HvExtCallQueryCapabilities",
            ),
        ];
        for (input, want, name) in calls {
            let got = status(call(page, input, 0, 0)?);
            diag!("{}: status {:#x}", name, got);
            if got != want {
                return Err(msg!("{}: status {:#x}, want {:#x}", name, got, want));
            }
        }
        diag!(
            "{} MSRs, {} CPUID bits, 2 calls not offered",
            UNOFFERED_MSRS.len(),
            UNOFFERED_BITS.len()
        );
        Ok(())
    })
}
