//! SynIC event flags and posted messages driven by the guest itself through the hypervisor's
//! loopback connection (a test hook: connection 0x7e50 + n sends back to SINT n). Without
//! the hook, connection ids are unknown and the case skips.
use super::hv_synic::*;
use crate::boot::UPCALL_VECTOR;
use crate::ktap::{Msg, Outcome};
use crate::sys::{self, Page};
use crate::{check, diag, msg, Ctx};

const LOOPBACK_BASE: u64 = 0x7e50;
const CALL_POST_MESSAGE: u64 = 0x5c;
const CALL_SIGNAL_EVENT: u64 = 0x5d;
const FAST: u64 = 1 << 16;
const HV_STATUS_INVALID_PARAMETER: u16 = 5;
const HV_STATUS_INVALID_CONNECTION_ID: u16 = 0x12;
const HV_STATUS_INSUFFICIENT_BUFFERS: u16 = 0x13;

static mut HC_PAGE: Page = Page([0; 4096]);
static mut HC_INPUT: Page = Page([0; 4096]);

fn page() -> u64 {
    (&raw const HC_PAGE) as u64
}
fn input() -> u64 {
    (&raw const HC_INPUT) as u64
}

/// GUEST_OS_ID (Linux 2.6.32) and the hypercall page.
fn hypercalls() -> Result<(), Msg> {
    wr(0x4000_0000, 0x8100_0002_0620_0000)?;
    wr(0x4000_0001, page() | 1)
}

fn status(input_value: u64, a: u64) -> Result<u16, Msg> {
    sys::hv_hypercall(page(), input_value, a, 0)
        .map(|rax| rax as u16)
        .map_err(|f| msg!("hypercall {:#x} raised vector {}", input_value, f.0))
}

fn signal(sint: u64, flag: u16) -> Result<u16, Msg> {
    status(
        CALL_SIGNAL_EVENT | FAST,
        (LOOPBACK_BASE + sint) | (flag as u64) << 32,
    )
}

fn post(sint: u64, msg_type: u32, payload: &[u8]) -> Result<u16, Msg> {
    let i = input();
    sys::write_u32(i, (LOOPBACK_BASE + sint) as u32);
    sys::write_u32(i + 4, 0);
    sys::write_u32(i + 8, msg_type);
    sys::write_u32(i + 12, payload.len() as u32);
    sys::write_bytes(i + 16, payload);
    status(CALL_POST_MESSAGE, i)
}

fn flag_set(sint: u64, flag: u64) -> bool {
    sys::read_u64(siefp() + sint * 256 + flag / 64 * 8) >> (flag % 64) & 1 != 0
}

/// Event flags: HvCallSignalEvent sets the flag in the SINT's SIEFP block and raises the
/// vector only on a 0->1 change; a masked SINT gets the flag but no vector; flag 2048 is
/// out of range. Messages: HvCallPostMessage lands in the slot, queues behind it with
/// MessagePending and EOM re-delivery, and a full queue answers
/// HV_STATUS_INSUFFICIENT_BUFFERS.
pub fn event_flags(_ctx: &mut Ctx) -> Outcome {
    req!(synic_on());
    req!(hypercalls());
    let s = req!(signal(SINT, 5));
    if s == HV_STATUS_INVALID_CONNECTION_ID {
        return Outcome::Skip(msg!(
            "no loopback connection (the hypervisor's SynicLoopback test hook is off)"
        ));
    }
    let before = sys::upcalls();
    check!(s == 0, "SignalEvent flag 5: status {:#x}", s);
    check!(flag_set(SINT, 5), "flag 5 not set in the SIEFP block");
    check!(irr(UPCALL_VECTOR), "no vector for a newly set flag");
    check!(sys::wait_irq() == before + 1, "vector not taken");
    check!(req!(signal(SINT, 5)) == 0, "second SignalEvent failed");
    check!(!irr(UPCALL_VECTOR), "vector raised for an already set flag");
    check!(
        req!(signal(SINT, 2047)) == 0,
        "SignalEvent flag 2047 failed"
    );
    check!(flag_set(SINT, 2047), "flag 2047 not set");
    check!(irr(UPCALL_VECTOR), "no vector for flag 2047");
    sys::wait_irq();
    check!(
        !flag_set(SINT - 1, 2047) && !flag_set(SINT + 1, 0),
        "a neighbouring SINT's block was written"
    );
    check!(
        req!(signal(3, 0)) == 0,
        "SignalEvent to masked SINT 3 failed"
    );
    check!(flag_set(3, 0), "masked SINT's flag not set");
    check!(!irr(UPCALL_VECTOR), "vector raised for a masked SINT");
    let s = req!(signal(SINT, 2048));
    check!(
        s == HV_STATUS_INVALID_PARAMETER,
        "flag 2048: status {:#x}, want {:#x}",
        s,
        HV_STATUS_INVALID_PARAMETER
    );

    // Messages.
    for (i, p) in [b"ping", b"pong", b"last"].iter().enumerate() {
        let s = req!(post(SINT, 0x100 + i as u32, *p));
        check!(s == 0, "PostMessage {}: status {:#x}", i, s);
    }
    check!(slot_type(SINT) == 0x100, "slot type {:#x}", slot_type(SINT));
    check!(sys::read_u8(slot(SINT) + 4) == 4, "payload size");
    check!(
        sys::read_u32(slot(SINT) + 16) == u32::from_le_bytes(*b"ping"),
        "payload"
    );
    check!(
        slot_flags(SINT) & 1 != 0,
        "MessagePending not set with 2 queued"
    );
    sys::wait_irq();
    check!(req!(consume(SINT)), "pending flag lost");
    check!(
        slot_type(SINT) == 0x101,
        "EOM brought type {:#x}",
        slot_type(SINT)
    );
    check!(req!(consume(SINT)), "pending flag lost on the second");
    check!(
        slot_type(SINT) == 0x102,
        "EOM brought type {:#x}",
        slot_type(SINT)
    );
    check!(
        slot_flags(SINT) & 1 == 0,
        "MessagePending on the last message"
    );
    // The slot is busy: 64 queue, the next is refused.
    let mut n = 0;
    let last = loop {
        let s = req!(post(SINT, 0x200, b"x"));
        if s != 0 || n > 100 {
            break s;
        }
        n += 1;
    };
    diag!(
        "{} messages queued behind a busy slot, then status {:#x}",
        n,
        last
    );
    check!(
        last == HV_STATUS_INSUFFICIENT_BUFFERS && n == 64,
        "queue took {} then status {:#x}",
        n,
        last
    );
    Outcome::Pass
}
