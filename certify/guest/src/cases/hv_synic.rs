//! Hyper-V SynIC and synthetic timers from the guest: messages in the SIMP slot with the
//! MessagePending/EOM protocol (driven by STIMER message mode), masked and polling SINTs,
//! event flags, STIMER one-shot/periodic/direct mode, the APIC-access MSRs, and their
//! negative cases (#GP without the privilege, reserved bits, bad vectors).
//!
//! Interrupts arrive on the guest's one handled vector (`UPCALL_VECTOR`, which counts them
//! and EOIs the xAPIC); ring 3 runs with interrupts off, so a delivered vector waits in the
//! LAPIC's IRR until `sys::wait_irq`, which lets a case check "pending" and "not pending".
use crate::boot::UPCALL_VECTOR;
use crate::ktap::{Msg, Outcome};
use crate::port::outb;
use crate::sys::{self, Fault, Page};
use crate::{check, diag, msg, Ctx};

pub(super) const MSR_TIME_REF_COUNT: u32 = 0x4000_0020;
pub(super) const MSR_TSC_FREQUENCY: u32 = 0x4000_0022;
pub(super) const MSR_SCONTROL: u32 = 0x4000_0080;
pub(super) const MSR_SIEFP: u32 = 0x4000_0082;
pub(super) const MSR_SIMP: u32 = 0x4000_0083;
pub(super) const MSR_EOM: u32 = 0x4000_0084;
pub(super) const MSR_SINT0: u32 = 0x4000_0090;
pub(super) const MSR_STIMER0_CONFIG: u32 = 0x4000_00B0;
pub(super) const MSR_STIMER0_COUNT: u32 = 0x4000_00B1;
pub(super) const MSR_APIC_EOI: u32 = 0x4000_0070;
pub(super) const MSR_APIC_ICR: u32 = 0x4000_0071;
pub(super) const MSR_APIC_TPR: u32 = 0x4000_0072;

pub(super) const SINT_MASKED: u64 = 1 << 16;
pub(super) const SINT_POLLING: u64 = 1 << 18;
pub(super) const ST_ENABLE: u64 = 1 << 0;
pub(super) const ST_PERIODIC: u64 = 1 << 1;
pub(super) const ST_AUTO_ENABLE: u64 = 1 << 3;
pub(super) const ST_DIRECT: u64 = 1 << 12;
pub(super) const fn st_sint(n: u64) -> u64 {
    n << 16
}
pub(super) const fn st_vector(v: u8) -> u64 {
    (v as u64) << 4
}
pub(super) const HVMSG_NONE: u32 = 0;
pub(super) const HVMSG_TIMER_EXPIRED: u32 = 0x8000_0010;
/// The SINT the cases use for timer messages.
pub(super) const SINT: u64 = 2;
/// 1 ms in reference time (100 ns units).
pub(super) const MS: u64 = 10_000;

static mut SIMP: Page = Page([0; 4096]);
static mut SIEFP: Page = Page([0; 4096]);

pub(super) fn simp() -> u64 {
    (&raw const SIMP) as u64
}
pub(super) fn siefp() -> u64 {
    (&raw const SIEFP) as u64
}
pub(super) fn slot(sint: u64) -> u64 {
    simp() + sint * 256
}
pub(super) fn slot_type(sint: u64) -> u32 {
    sys::read_u32(slot(sint))
}
pub(super) fn slot_flags(sint: u64) -> u8 {
    sys::read_u8(slot(sint) + 5)
}

pub(super) fn rd(msr: u32) -> Result<u64, Msg> {
    sys::rdmsr(msr).map_err(|Fault(v)| msg!("rdmsr {:#x}: vector {}", msr, v))
}
pub(super) fn wr(msr: u32, v: u64) -> Result<(), Msg> {
    sys::wrmsr(msr, v).map_err(|Fault(f)| msg!("wrmsr {:#x} = {:#x}: vector {}", msr, v, f))
}
pub(super) fn now() -> Result<u64, Msg> {
    rd(MSR_TIME_REF_COUNT)
}

/// `?` for `Result<_, Msg>` in a case.
macro_rules! req {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(m) => return Outcome::Fail(m),
        }
    };
}
pub(super) use req;

/// Whether `vector` is pending in the local APIC's IRR.
pub(super) fn irr(vector: u8) -> bool {
    let reg = 0xfee0_0200 + (vector as u64 / 32) * 0x10;
    sys::read_u32(reg) >> (vector % 32) & 1 != 0
}

/// The SynIC on: legacy PIC masked, LAPIC enabled, SIMP and SIEFP zeroed and enabled,
/// SCONTROL enabled, every SINT masked but `SINT` (UPCALL_VECTOR), every timer off.
pub(super) fn synic_on() -> Result<(), Msg> {
    if sys::cpuid(0x4000_0001).eax != 0x3123_7648 {
        return Err(msg!("no Hv#1 interface"));
    }
    outb(0x21, 0xff);
    outb(0xa1, 0xff);
    const LAPIC: u64 = 0xfee0_0000;
    let svr = sys::read_u32(LAPIC + 0xf0);
    sys::write_u32(LAPIC + 0xf0, svr | 0x100 | 0xff);
    sys::write_bytes(simp(), &[0; 4096]);
    sys::write_bytes(siefp(), &[0; 4096]);
    wr(MSR_SIMP, simp() | 1)?;
    wr(MSR_SIEFP, siefp() | 1)?;
    wr(MSR_SCONTROL, 1)?;
    for n in 0..16 {
        let v = if n == SINT as u32 {
            UPCALL_VECTOR as u64
        } else {
            SINT_MASKED
        };
        wr(MSR_SINT0 + n, v)?;
    }
    // (Without AccessSyntheticTimerRegs the timer MSRs #GP: nothing to stop.)
    if sys::cpuid(0x4000_0003).eax & (1 << 3) != 0 {
        for t in 0..4 {
            wr(MSR_STIMER0_CONFIG + 2 * t, 0)?;
        }
    }
    Ok(())
}

/// Polls (ring 3, no interrupt taken) until `cond` or ~`ms` of reference time pass.
pub(super) fn poll(ms: u64, mut cond: impl FnMut() -> bool) -> Result<bool, Msg> {
    let end = now()? + ms * MS;
    loop {
        if cond() {
            return Ok(true);
        }
        if now()? > end {
            return Ok(cond());
        }
        for _ in 0..1000 {
            core::hint::spin_loop();
        }
    }
}

/// The timer message in `sint`'s slot: (TimerIndex, ExpirationTime, DeliveryTime).
pub(super) fn timer_payload(sint: u64) -> (u32, u64, u64) {
    let p = slot(sint) + 16;
    (
        sys::read_u32(p),
        sys::read_u64(p + 8),
        sys::read_u64(p + 16),
    )
}

/// The guest's side of a message: free the slot, EOM if MessagePending was set. Returns
/// whether it was.
pub(super) fn consume(sint: u64) -> Result<bool, Msg> {
    sys::write_u32(slot(sint), HVMSG_NONE);
    let pending = slot_flags(sint) & 1 != 0;
    if pending {
        wr(MSR_EOM, 0)?;
    }
    Ok(pending)
}

/// A one-shot STIMER0 in message mode lands HVMSG_TIMER_EXPIRED in the SINT's SIMP slot
/// (TimerIndex 0, ExpirationTime = COUNT, DeliveryTime not before it) and raises the SINT's
/// vector; Enable clears after a one-shot expiry.
pub fn stimer_message(_ctx: &mut Ctx) -> Outcome {
    req!(synic_on());
    let before = sys::upcalls();
    let t0 = req!(now());
    let due = t0 + 2 * MS;
    req!(wr(MSR_STIMER0_CONFIG, ST_ENABLE | st_sint(SINT)));
    req!(wr(MSR_STIMER0_COUNT, due));
    let landed = req!(poll(1000, || slot_type(SINT) != HVMSG_NONE));
    check!(
        landed,
        "no message in SINT{} slot 1 s after the deadline",
        SINT
    );
    let t = slot_type(SINT);
    check!(
        t == HVMSG_TIMER_EXPIRED,
        "slot type {:#x}, want HVMSG_TIMER_EXPIRED",
        t
    );
    let size = sys::read_u8(slot(SINT) + 4);
    check!(size == 24, "payload size {}, want 24", size);
    let (idx, exp, delivery) = timer_payload(SINT);
    diag!(
        "TimerIndex {} expiration {} delivery {} (+{} us)",
        idx,
        exp,
        delivery,
        delivery.saturating_sub(exp) / 10
    );
    check!(idx == 0, "TimerIndex {}", idx);
    check!(exp == due, "ExpirationTime {} != COUNT {}", exp, due);
    check!(
        delivery >= exp,
        "DeliveryTime {} before expiration",
        delivery
    );
    check!(irr(UPCALL_VECTOR), "SINT vector not pending in the IRR");
    let got = sys::wait_irq();
    check!(got == before + 1, "upcalls {} -> {}", before, got);
    let cfg = req!(rd(MSR_STIMER0_CONFIG));
    check!(cfg & ST_ENABLE == 0, "one-shot still enabled: {:#x}", cfg);
    // No other slot was written.
    for s in 0..16 {
        if s != SINT {
            check!(slot_type(s) == HVMSG_NONE, "slot {} written", s);
        }
    }
    Outcome::Pass
}

/// Two timer messages for one SINT: the first lands, the second waits behind it with
/// MessagePending set; freeing the slot alone brings nothing, EOM brings the second (without
/// MessagePending, nothing more waits).
pub fn message_pending_eom(_ctx: &mut Ctx) -> Outcome {
    req!(synic_on());
    let t0 = req!(now());
    req!(wr(MSR_STIMER0_CONFIG, ST_ENABLE | st_sint(SINT)));
    req!(wr(MSR_STIMER0_CONFIG + 2, ST_ENABLE | st_sint(SINT)));
    req!(wr(MSR_STIMER0_COUNT, t0 + 2 * MS));
    req!(wr(MSR_STIMER0_COUNT + 2, t0 + 3 * MS));
    let queued = req!(poll(1000, || slot_flags(SINT) & 1 != 0));
    check!(
        queued,
        "MessagePending not set 1 s after two timers (slot type {:#x})",
        slot_type(SINT)
    );
    let (first, _, _) = timer_payload(SINT);
    check!(
        slot_type(SINT) == HVMSG_TIMER_EXPIRED && first == 0,
        "slot holds type {:#x} timer {}, want timer 0's message",
        slot_type(SINT),
        first
    );
    // Free the slot without EOM: the queued message must wait for the EOM.
    sys::write_u32(slot(SINT), HVMSG_NONE);
    let early = req!(poll(3, || slot_type(SINT) != HVMSG_NONE));
    check!(!early, "queued message delivered without EOM");
    check!(slot_flags(SINT) & 1 != 0, "MessagePending cleared");
    req!(wr(MSR_EOM, 0));
    check!(
        slot_type(SINT) == HVMSG_TIMER_EXPIRED,
        "EOM did not re-deliver (slot type {:#x})",
        slot_type(SINT)
    );
    let (second, exp, _) = timer_payload(SINT);
    check!(second == 1, "re-delivered TimerIndex {}, want 1", second);
    check!(exp == t0 + 3 * MS, "re-delivered expiration {}", exp);
    check!(
        slot_flags(SINT) & 1 == 0,
        "MessagePending set on the last message"
    );
    check!(irr(UPCALL_VECTOR), "SINT vector not pending");
    sys::wait_irq();
    let pending = req!(consume(SINT));
    check!(!pending, "nothing should wait after the second message");
    let late = req!(poll(3, || slot_type(SINT) != HVMSG_NONE));
    check!(!late, "a third message appeared");
    Outcome::Pass
}

/// A masked SINT still gets the message in its slot but no interrupt; so does a SINT in
/// polling mode.
pub fn masked_sint(_ctx: &mut Ctx) -> Outcome {
    req!(synic_on());
    let before = sys::upcalls();
    req!(wr(
        MSR_SINT0 + SINT as u32,
        SINT_MASKED | UPCALL_VECTOR as u64
    ));
    req!(wr(MSR_SINT0 + 3, SINT_POLLING | UPCALL_VECTOR as u64));
    let t0 = req!(now());
    req!(wr(MSR_STIMER0_CONFIG, ST_ENABLE | st_sint(SINT)));
    req!(wr(MSR_STIMER0_CONFIG + 2, ST_ENABLE | st_sint(3)));
    req!(wr(MSR_STIMER0_COUNT, t0 + MS));
    req!(wr(MSR_STIMER0_COUNT + 2, t0 + MS));
    let both = req!(poll(1000, || slot_type(SINT) != HVMSG_NONE
        && slot_type(3) != HVMSG_NONE));
    check!(
        both,
        "messages missing: masked slot {:#x}, polling slot {:#x}",
        slot_type(SINT),
        slot_type(3)
    );
    // Give a wrongly injected vector time to arrive.
    let _ = req!(poll(2, || false));
    check!(
        !irr(UPCALL_VECTOR),
        "vector pending for a masked/polling SINT"
    );
    check!(
        sys::upcalls() == before,
        "upcalls {} -> {}",
        before,
        sys::upcalls()
    );
    Outcome::Pass
}
