//! The SynIC side of VMBus for ring 3: hypercall page, SIMP/SIEFP/SINT2/SCONTROL,
//! HvCallPostMessage out, messages in from the SINT2 slot (with the pending/EOM protocol),
//! HvCallSignalEvent, and the event flags and LAPIC IRR for interrupt checks.
//!
//! Messages are found by polling the slot from ring 3 (native speed here); the gate is only
//! entered for the MSR writes, the hypercalls and EOM.
use core::sync::atomic::{fence, Ordering};

use super::wire::*;
use crate::boot::UPCALL_VECTOR;
use crate::ktap::Msg;
use crate::msg;
use crate::sys::{self, Page};

static mut HYPERCALL_PAGE: Page = Page([0; 4096]);
static mut SIMP_PAGE: Page = Page([0; 4096]);
static mut SIEFP_PAGE: Page = Page([0; 4096]);
static mut INPUT_PAGE: Page = Page([0; 4096]);

/// Linux's GUEST_OS_ID encoding for 2.6.32 (the runner passes the profile's as guest_os_id=).
const DEFAULT_GUEST_OS_ID: u64 = 0x8100_0002_0620_0000;
const LAPIC: u64 = 0xfee0_0000;
/// About 2 s at up to 5 GHz: the host answers in microseconds to milliseconds.
pub const WAIT_TSC: u64 = 10_000_000_000;

fn addr<T>(p: *const T) -> u64 {
    p as u64
}
pub fn simp_slot() -> u64 {
    addr(&raw const SIMP_PAGE) + u64::from(VMBUS_SINT) * MSG_SLOT
}
fn siefp_slot() -> u64 {
    addr(&raw const SIEFP_PAGE) + u64::from(VMBUS_SINT) * MSG_SLOT
}

fn wrmsr(msr: u32, v: u64) -> Result<(), Msg> {
    sys::wrmsr(msr, v).map_err(|f| msg!("wrmsr {:#x} <- {:#x}: fault {}", msr, v, f.0))
}

/// The partition's Hyper-V face, enabled for VMBus.
pub struct Hv {
    page: u64,
    /// Hypercalls made (PostMessage + SignalEvent).
    pub calls: u64,
    /// SignalEvent calls made.
    pub signals: u64,
}

/// CPUID "Hv#1", GUEST_OS_ID, the hypercall page, then the SynIC as Linux's
/// hv_synic_enable_regs sets it: SIMP, SIEFP, SINT2 -> the callback vector (not masked,
/// no auto-EOI: the guest's handler EOIs), SCONTROL enable.
pub fn enable(guest_os_id: Option<&str>) -> Result<Hv, Msg> {
    if sys::cpuid(0x4000_0001).eax != 0x3123_7648 {
        return Err(msg!("CPUID 0x40000001 is not Hv#1: no Hyper-V interface"));
    }
    let id = guest_os_id
        .and_then(|v| u64::from_str_radix(v.trim_start_matches("0x"), 16).ok())
        .unwrap_or(DEFAULT_GUEST_OS_ID);
    wrmsr(MSR_GUEST_OS_ID, id)?;
    let page = addr(&raw const HYPERCALL_PAGE);
    wrmsr(MSR_HYPERCALL, page | 1)?;
    for p in [simp_slot() & !0xfff, siefp_slot() & !0xfff] {
        for off in (0..4096).step_by(8) {
            sys::write_u64(p + off, 0);
        }
    }
    wrmsr(MSR_SIMP, addr(&raw const SIMP_PAGE) | 1)?;
    wrmsr(MSR_SIEFP, addr(&raw const SIEFP_PAGE) | 1)?;
    wrmsr(MSR_SINT0 + VMBUS_SINT, u64::from(UPCALL_VECTOR))?;
    wrmsr(MSR_SCONTROL, 1)?;
    // Software-enable the local APIC so the SINT's fixed interrupt is accepted into IRR.
    let svr = sys::read_u32(LAPIC + 0xf0);
    sys::write_u32(LAPIC + 0xf0, svr | 0x1ff);
    Ok(Hv {
        page,
        calls: 0,
        signals: 0,
    })
}

impl Hv {
    fn hypercall(&mut self, input: u64, param: u64) -> Result<u16, Msg> {
        self.calls += 1;
        let rax = sys::hv_hypercall(self.page, input, param, 0)
            .map_err(|f| msg!("hypercall {:#x} raised vector {}", input, f.0))?;
        Ok(rax as u16)
    }

    /// HvCallPostMessage(connection_id, VMBus message type, payload). A full host queue
    /// (HV_STATUS_INSUFFICIENT_BUFFERS) is retried, as Linux's vmbus_post_msg does.
    pub fn post(&mut self, conn_id: u32, payload: &[u8]) -> Result<(), Msg> {
        if payload.len() > MSG_PAYLOAD_MAX {
            return Err(msg!("message of {} bytes is too large", payload.len()));
        }
        let inp = addr(&raw const INPUT_PAGE);
        sys::write_u32(inp, conn_id);
        sys::write_u32(inp + 4, 0);
        sys::write_u32(inp + 8, HVMSG_VMBUS);
        sys::write_u32(inp + 12, payload.len() as u32);
        sys::write_bytes(inp + 16, payload);
        let mut status = 0;
        for _ in 0..100 {
            status = self.hypercall(CALL_POST_MESSAGE, inp)?;
            if status != HV_STATUS_INSUFFICIENT_BUFFERS {
                break;
            }
            spin(100_000);
        }
        if status != HV_STATUS_SUCCESS {
            return Err(msg!(
                "HvCallPostMessage(conn {}, msgtype {}) status {:#x}",
                conn_id,
                u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]),
                status
            ));
        }
        Ok(())
    }

    /// HvCallSignalEvent (fast) on `conn_id`, flag 0.
    pub fn signal(&mut self, conn_id: u32) -> Result<(), Msg> {
        self.signals += 1;
        let st = self.hypercall(CALL_SIGNAL_EVENT | CALL_FAST, u64::from(conn_id))?;
        if st != HV_STATUS_SUCCESS {
            return Err(msg!("HvCallSignalEvent(conn {}) status {:#x}", conn_id, st));
        }
        Ok(())
    }

    /// Takes the message in the SINT2 slot, if any, into `buf`: (SynIC message type,
    /// payload length). Frees the slot and writes EOM when the host flagged another
    /// message pending.
    pub fn take(&mut self, buf: &mut [u8; MSG_PAYLOAD_MAX]) -> Result<Option<(u32, usize)>, Msg> {
        let slot = simp_slot();
        let kind = sys::read_u32(slot);
        if kind == HVMSG_NONE {
            return Ok(None);
        }
        fence(Ordering::SeqCst);
        let len = usize::from(sys::read_u8(slot + 4)).min(MSG_PAYLOAD_MAX);
        let flags = sys::read_u8(slot + 5);
        for (i, b) in buf.iter_mut().enumerate() {
            *b = if i < len {
                sys::read_u8(slot + MSG_PAYLOAD + i as u64)
            } else {
                0
            };
        }
        fence(Ordering::SeqCst);
        sys::write_u32(slot, HVMSG_NONE);
        fence(Ordering::SeqCst);
        if flags & MSG_FLAG_PENDING != 0 || sys::read_u8(slot + 5) & MSG_FLAG_PENDING != 0 {
            wrmsr(MSR_EOM, 0)?;
        }
        Ok(Some((kind, len)))
    }

    /// Waits (polling the slot) for the next message: (SynIC message type, length).
    pub fn next(&mut self, buf: &mut [u8; MSG_PAYLOAD_MAX]) -> Result<(u32, usize), Msg> {
        let t0 = sys::rdtsc();
        loop {
            if let Some(m) = self.take(buf)? {
                return Ok(m);
            }
            if sys::rdtsc().wrapping_sub(t0) > WAIT_TSC {
                return Err(msg!("no SynIC message on SINT{} in time", VMBUS_SINT));
            }
            core::hint::spin_loop();
        }
    }
}

pub fn spin(tsc: u64) {
    let t0 = sys::rdtsc();
    while sys::rdtsc().wrapping_sub(t0) < tsc {
        core::hint::spin_loop();
    }
}

/// Tests and clears the SINT2 event flag of `relid` (the host sets it before asserting
/// the SINT when it signals the channel).
pub fn take_event(relid: u32) -> bool {
    let word = siefp_slot() + u64::from(relid / 32) * 4;
    if relid >= 2048 {
        return false;
    }
    let bit = 1u32 << (relid % 32);
    let v = sys::read_u32(word);
    if v & bit == 0 {
        return false;
    }
    // SAFETY: `word` is inside SIEFP_PAGE, a static this guest owns; the atomic AND keeps a
    // bit the host sets concurrently.
    unsafe {
        let a = &*(word as *const core::sync::atomic::AtomicU32);
        a.fetch_and(!bit, Ordering::SeqCst);
    }
    true
}

/// Whether the callback vector is pending in the local APIC's IRR.
pub fn irr_pending() -> bool {
    let v = UPCALL_VECTOR as u64;
    sys::read_u32(LAPIC + 0x200 + (v / 32) * 0x10) >> (v % 32) & 1 != 0
}

/// Waits up to `tsc` cycles for the callback vector to become pending, then takes the
/// interrupt (sti; hlt in the gate, which returns at once as it is pending). Returns
/// whether one was taken.
pub fn take_interrupt(tsc: u64) -> bool {
    let t0 = sys::rdtsc();
    while !irr_pending() {
        if sys::rdtsc().wrapping_sub(t0) > tsc {
            return false;
        }
        core::hint::spin_loop();
    }
    let before = sys::upcalls();
    sys::wait_irq() > before
}
