//! Hyper-V synthetic timers from the guest: periodic and direct mode, configuration checks,
//! the privilege gates, and the SynIC/timer latency figures.
use super::hv_synic::*;
use crate::boot::UPCALL_VECTOR;
use crate::ktap::{Msg, Outcome};
use crate::sys::{self, Fault};
use crate::{check, diag, msg, Ctx};

const COUNT: u32 = MSR_STIMER0_COUNT;
const CONFIG: u32 = MSR_STIMER0_CONFIG;

/// A periodic timer in message mode: every expiry one message, ExpirationTime advancing by
/// whole periods; each consumed message lets the next one in. The guest halts between
/// messages (a busy-polling vCPU would compete with the VMM's timer thread for the CPU).
/// Reports the precision: expiry -> VMM delivery, expiry -> guest ISR, missed periods.
pub fn periodic(_ctx: &mut Ctx) -> Outcome {
    req!(synic_on());
    let hz = req!(rd(MSR_TSC_FREQUENCY));
    check!(hz != 0, "TSC_FREQUENCY reads 0");
    let (tsc0, ref0) = (sys::rdtsc(), req!(now()));
    let to_ref = |tsc: u64| ref0 + ((tsc - tsc0) as u128 * 10_000_000 / hz as u128) as u64;
    let period = 2 * MS;
    req!(wr(COUNT, period));
    req!(wr(CONFIG, ST_ENABLE | ST_PERIODIC | st_sint(SINT)));
    let mut last = 0u64;
    let (mut worst, mut sum, mut isr_worst, mut isr_sum, mut missed) = (0u64, 0u64, 0, 0, 0);
    const N: u64 = 10;
    for i in 0..N {
        let mut waits = 0;
        while slot_type(SINT) == HVMSG_NONE {
            check!(waits < 1000, "periodic message {} missing", i);
            sys::wait_irq();
            waits += 1;
        }
        let isr = to_ref(sys::upcall_tsc());
        let (idx, exp, delivery) = timer_payload(SINT);
        check!(idx == 0, "TimerIndex {}", idx);
        check!(
            delivery >= exp,
            "delivered {} before expiry {}",
            delivery,
            exp
        );
        if i > 0 {
            check!(
                exp > last && (exp - last).is_multiple_of(period),
                "expiration {} not a whole number of periods after {}",
                exp,
                last
            );
            missed += (exp - last) / period - 1;
        }
        worst = worst.max(delivery - exp);
        sum += delivery - exp;
        isr_worst = isr_worst.max(isr.saturating_sub(exp));
        isr_sum += isr.saturating_sub(exp);
        last = exp;
        req!(consume(SINT));
    }
    req!(wr(CONFIG, 0));
    let cfg = req!(rd(CONFIG));
    check!(cfg & ST_ENABLE == 0, "CONFIG {:#x} after disabling", cfg);
    diag!(
        "periodic 2 ms: expiry -> VMM delivery avg {} us worst {} us; expiry -> guest ISR avg {} us worst {} us; {} periods missed (coalesced) over {} messages",
        sum / 10 / N,
        worst / 10,
        isr_sum / 10 / N,
        isr_worst / 10,
        missed,
        N
    );
    Outcome::Pass
}

/// Direct mode: the vector from CONFIG through the LAPIC, no message; a one-shot clears
/// Enable after it fires.
pub fn direct(_ctx: &mut Ctx) -> Outcome {
    req!(synic_on());
    let before = sys::upcalls();
    let due = req!(now()) + 2 * MS;
    req!(wr(COUNT, due));
    req!(wr(
        CONFIG,
        ST_ENABLE | ST_DIRECT | st_vector(UPCALL_VECTOR) | st_sint(SINT)
    ));
    let fired = req!(poll(1000, || irr(UPCALL_VECTOR)));
    check!(
        fired,
        "direct-mode vector not pending 1 s after the deadline"
    );
    let at = req!(now());
    check!(at >= due, "fired at {} before its deadline {}", at, due);
    let got = sys::wait_irq();
    check!(got == before + 1, "upcalls {} -> {}", before, got);
    for s in 0..16 {
        check!(slot_type(s) == HVMSG_NONE, "direct mode wrote slot {}", s);
    }
    let cfg = req!(rd(CONFIG));
    check!(cfg & ST_ENABLE == 0, "one-shot still enabled: {:#x}", cfg);
    Outcome::Pass
}

fn gp(msr: u32, v: u64) -> Result<(), Msg> {
    match sys::wrmsr(msr, v) {
        Err(Fault(13)) => Ok(()),
        Err(Fault(f)) => Err(msg!("wrmsr {:#x}={:#x}: vector {}, want #GP", msr, v, f)),
        Ok(()) => Err(msg!("wrmsr {:#x}={:#x} accepted, want #GP", msr, v)),
    }
}

/// Bad configurations: reserved bits and a direct-mode vector below 16 are #GP; a
/// message-mode timer to SINT 0 does not enable; COUNT 0 disables; AutoEnable enables on a
/// COUNT write; the four timers are distinct registers.
pub fn config(_ctx: &mut Ctx) -> Outcome {
    req!(synic_on());
    for bit in [13u32, 14, 15, 20, 31, 63] {
        req!(gp(CONFIG, ST_ENABLE | st_sint(SINT) | (1u64 << bit)));
    }
    req!(gp(CONFIG, ST_ENABLE | ST_DIRECT | st_vector(5)));
    req!(wr(CONFIG, ST_ENABLE | st_sint(0)));
    let c = req!(rd(CONFIG));
    check!(
        c & ST_ENABLE == 0,
        "message mode to SINT 0 enabled: {:#x}",
        c
    );
    req!(wr(CONFIG, ST_AUTO_ENABLE | st_sint(SINT)));
    let far = req!(now()) + 100_000 * MS;
    req!(wr(COUNT, far));
    let c = req!(rd(CONFIG));
    check!(c & ST_ENABLE != 0, "AutoEnable: COUNT write left {:#x}", c);
    check!(req!(rd(COUNT)) == far, "COUNT does not read back");
    req!(wr(COUNT, 0));
    let c = req!(rd(CONFIG));
    check!(c & ST_ENABLE == 0, "COUNT 0 left Enable set: {:#x}", c);
    // (CONFIG 0 first: with AutoEnable still set, a COUNT write would start the timer.)
    req!(wr(CONFIG, 0));
    for t in 0..4u32 {
        req!(wr(COUNT + 2 * t, 1000 + t as u64));
    }
    for t in 0..4u32 {
        let v = req!(rd(COUNT + 2 * t));
        check!(v == 1000 + t as u64, "STIMER{}_COUNT reads {}", t, v);
    }
    // The disabled timers never fire (COUNT 1000 is long past: an enabled one-shot would).
    let fired = req!(poll(5, || slot_type(SINT) != HVMSG_NONE));
    check!(!fired, "a disabled timer sent a message");
    // With AutoEnable, a COUNT in the past starts a one-shot that expires at once.
    req!(wr(CONFIG, ST_AUTO_ENABLE | st_sint(SINT)));
    req!(wr(COUNT, 1000));
    let fired = req!(poll(1000, || slot_type(SINT) != HVMSG_NONE));
    check!(fired, "a one-shot due in the past did not expire");
    let (_, exp, _) = timer_payload(SINT);
    check!(exp == 1000, "ExpirationTime {}, want 1000", exp);
    Outcome::Pass
}

/// The profile withdraws AccessSyntheticTimerRegs: every STIMER MSR is #GP both ways, the
/// other SynIC MSRs still work.
pub fn gate(_ctx: &mut Ctx) -> Outcome {
    let eax = sys::cpuid(0x4000_0003).eax;
    check!(
        eax & (1 << 3) == 0,
        "AccessSyntheticTimerRegs still granted ({:#x}): hv_clear not applied",
        eax
    );
    for msr in CONFIG..=CONFIG + 7 {
        match sys::rdmsr(msr) {
            Err(Fault(13)) => {}
            other => crate::fail!(
                "rdmsr {:#x} gave {:?}, want #GP",
                msr,
                other.map_err(|f| f.0)
            ),
        }
        req!(gp(msr, 0));
    }
    req!(synic_on());
    Outcome::Pass
}

/// The profile withdraws DirectSyntheticTimers: direct mode is #GP, message mode works.
pub fn direct_gate(_ctx: &mut Ctx) -> Outcome {
    let edx = sys::cpuid(0x4000_0003).edx;
    check!(
        edx & (1 << 19) == 0,
        "DirectSyntheticTimers still offered ({:#x})",
        edx
    );
    req!(synic_on());
    req!(gp(CONFIG, ST_DIRECT | st_vector(UPCALL_VECTOR)));
    req!(wr(CONFIG, ST_ENABLE | st_sint(SINT)));
    Outcome::Pass
}

/// Figures: one-shot timer expiry -> guest ISR latency and the SynIC message round trip
/// (expiry -> ISR -> slot freed and EOM written), against a plain exit (RDMSR of
/// TIME_REF_COUNT) measured in the same run.
pub fn bench(_ctx: &mut Ctx) -> Outcome {
    req!(synic_on());
    let hz = req!(rd(MSR_TSC_FREQUENCY));
    check!(hz != 0, "TSC_FREQUENCY reads 0");
    // TSC -> reference time (100 ns): anchor both clocks once.
    let (tsc0, ref0) = (sys::rdtsc(), req!(now()));
    let to_ref = |tsc: u64| ref0 + ((tsc - tsc0) as u128 * 10_000_000 / hz as u128) as u64;
    const N: u64 = 20;
    let t = sys::rdtsc();
    for _ in 0..N {
        req!(now());
    }
    let exit_ns = (sys::rdtsc() - t) as u128 * 1_000_000_000 / hz as u128 / N as u128;
    let (mut isr_sum, mut isr_max, mut rt_sum, mut host_sum) = (0u64, 0u64, 0u64, 0u64);
    req!(wr(CONFIG, ST_ENABLE | ST_AUTO_ENABLE | st_sint(SINT)));
    for i in 0..N {
        let before = sys::upcalls();
        let due = req!(now()) + MS;
        req!(wr(COUNT, due));
        let mut got = sys::wait_irq();
        while got == before {
            got = sys::wait_irq();
        }
        let isr = to_ref(sys::upcall_tsc());
        check!(
            slot_type(SINT) == HVMSG_TIMER_EXPIRED,
            "iteration {}: no message",
            i
        );
        let (_, exp, delivery) = timer_payload(SINT);
        check!(
            exp == due,
            "iteration {}: expiration {} != COUNT {}",
            i,
            exp,
            due
        );
        req!(consume(SINT));
        req!(wr(super::hv_synic::MSR_EOM, 0));
        let done = to_ref(sys::rdtsc());
        let lat = isr.saturating_sub(exp);
        isr_sum += lat;
        isr_max = isr_max.max(lat);
        rt_sum += done.saturating_sub(exp);
        host_sum += delivery.saturating_sub(exp);
    }
    diag!(
        "bench: plain exit (rdmsr TIME_REF_COUNT) {} ns; timer expiry -> guest ISR avg {} us max {} us; expiry -> VMM posts message avg {} us; expiry -> ISR -> EOM round trip avg {} us (N={})",
        exit_ns,
        isr_sum * 100 / N / 1000,
        isr_max / 10,
        host_sum * 100 / N / 1000,
        rt_sum * 100 / N / 1000,
        N
    );
    Outcome::Pass
}
