//! REFERENCE_TSC when the TSC is not reliable (the case's VM runs with
//! `reference_tsc_reliable = false`): the page the guest enables carries sequence 0, which
//! the TLFS defines as "invalid, use the TIME_REF_COUNT MSR", on every (re)enable; the MSR
//! still reads back and TIME_REF_COUNT still counts at the TSC's pace.
use super::hv::hv_present;
use super::hv_synic::{rd, req, wr, MSR_TIME_REF_COUNT, MSR_TSC_FREQUENCY};
use crate::ktap::Outcome;
use crate::sys::{self, Page};
use crate::{check, diag, Ctx};

const MSR_REFERENCE_TSC: u32 = 0x4000_0021;
/// What the page holds before the hypervisor writes it (so "never written" is not 0).
const SENTINEL: u32 = 0xdead_beef;

static mut PAGE: Page = Page([0; 4096]);

/// See the module comment.
pub fn reference_tsc_unreliable(_ctx: &mut Ctx) -> Outcome {
    if let Err(m) = hv_present() {
        return Outcome::Fail(m);
    }
    let page = (&raw const PAGE) as u64;
    for round in 0..2 {
        sys::write_bytes(page, &SENTINEL.to_le_bytes());
        req!(wr(MSR_REFERENCE_TSC, page | 1));
        let back = req!(rd(MSR_REFERENCE_TSC));
        check!(
            back == page | 1,
            "REFERENCE_TSC reads {:#x}, wrote {:#x}",
            back,
            page | 1
        );
        let seq = sys::read_u32(page);
        diag!("enable {}: TSC page sequence {:#x}", round, seq);
        check!(seq != SENTINEL, "the hypervisor did not write the TSC page");
        check!(
            seq == 0,
            "TSC page sequence {:#x} with an unreliable TSC, want 0 (use the MSR)",
            seq
        );
        req!(wr(MSR_REFERENCE_TSC, 0));
    }
    // The fallback works: TIME_REF_COUNT advances as the TSC does (100 ns units).
    let hz = req!(rd(MSR_TSC_FREQUENCY));
    check!(hz != 0, "TSC_FREQUENCY reads 0");
    let (r0, t0) = (req!(rd(MSR_TIME_REF_COUNT)), sys::rdtsc());
    while sys::rdtsc().wrapping_sub(t0) < hz / 20 {
        core::hint::spin_loop();
    }
    let (r1, t1) = (req!(rd(MSR_TIME_REF_COUNT)), sys::rdtsc());
    let by_tsc = (u128::from(t1.wrapping_sub(t0)) * 10_000_000 / u128::from(hz)) as u64;
    let by_msr = r1.wrapping_sub(r0);
    diag!(
        "TIME_REF_COUNT advanced {} over {} by the TSC (50 ms)",
        by_msr,
        by_tsc
    );
    check!(r1 > r0, "TIME_REF_COUNT did not advance: {} -> {}", r0, r1);
    check!(
        by_msr.abs_diff(by_tsc) <= by_tsc / 10 + 1_000,
        "TIME_REF_COUNT advanced {} while the TSC says {}",
        by_msr,
        by_tsc
    );
    Outcome::Pass
}
