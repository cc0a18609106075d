//! Hyper-V's APIC-access MSRs (EOI 0x40000070, ICR 0x40000071, TPR 0x40000072) against the
//! local APIC's own xAPIC page, and their privilege gate.
use super::hv_synic::*;
use crate::boot::{NOEOI_TAKEN, NOEOI_VECTOR, UPCALL_VECTOR};
use crate::ktap::{Msg, Outcome};
use crate::port::outb;
use crate::sys::{self, Fault};
use crate::{check, diag, msg, Ctx};

const LAPIC: u64 = 0xfee0_0000;

fn lapic_on() -> u32 {
    outb(0x21, 0xff);
    outb(0xa1, 0xff);
    let svr = sys::read_u32(LAPIC + 0xf0);
    sys::write_u32(LAPIC + 0xf0, svr | 0x100 | 0xff);
    sys::read_u32(LAPIC + 0x20) >> 24
}

/// Whether `vector` is in service (the LAPIC's ISR).
fn isr(vector: u8) -> bool {
    let reg = LAPIC + 0x100 + (vector as u64 / 32) * 0x10;
    sys::read_u32(reg) >> (vector % 32) & 1 != 0
}

fn noeoi_taken() -> u64 {
    // SAFETY: plain read of a counter the interrupt handler writes.
    unsafe { core::ptr::read_volatile(&raw const NOEOI_TAKEN) }
}

fn gp(msr: u32, v: u64) -> Result<(), Msg> {
    match sys::wrmsr(msr, v) {
        Err(Fault(13)) => Ok(()),
        Err(Fault(f)) => Err(msg!("wrmsr {:#x}={:#x}: vector {}, want #GP", msr, v, f)),
        Ok(()) => Err(msg!("wrmsr {:#x}={:#x} accepted, want #GP", msr, v)),
    }
}

/// TPR through the MSR and the xAPIC page agree both ways (and > 0xff is #GP); an ICR write
/// (fixed, physical destination = self; and shorthand self) raises the vector; the EOI MSR
/// ends the in-service vector that the guest's handler left in service.
pub fn apic_msrs(_ctx: &mut Ctx) -> Outcome {
    let me = lapic_on() as u64;
    // ICR: fixed, edge, physical destination = our APIC ID (bits 63:56 in xAPIC mode).
    let before = sys::upcalls();
    req!(wr(MSR_APIC_ICR, (me << 56) | 0x4000 | UPCALL_VECTOR as u64));
    check!(irr(UPCALL_VECTOR), "ICR self-IPI not pending");
    let got = sys::wait_irq();
    check!(got == before + 1, "upcalls {} -> {}", before, got);
    // Shorthand "self" to the no-EOI vector: taken, then still in service until EOI.
    let taken = noeoi_taken();
    req!(wr(MSR_APIC_ICR, (1 << 18) | 0x4000 | NOEOI_VECTOR as u64));
    check!(irr(NOEOI_VECTOR), "ICR shorthand-self IPI not pending");
    sys::wait_irq();
    check!(noeoi_taken() == taken + 1, "no-EOI vector not taken");
    if isr(NOEOI_VECTOR) {
        req!(wr(MSR_APIC_EOI, 0));
        check!(!isr(NOEOI_VECTOR), "EOI MSR left the vector in service");
    } else {
        // Seen on the nested (kvm_pvm) host: the LAPIC shows nothing in service after the
        // handler's iret although nobody EOI'd, so the EOI's effect cannot be seen here.
        diag!("host cleared the in-service vector by itself: EOI MSR effect not observable");
        req!(wr(MSR_APIC_EOI, 0));
    }
    req!(wr(MSR_APIC_TPR, 0x25));
    let mmio = sys::read_u32(LAPIC + 0x80);
    check!(mmio & 0xff == 0x25, "TPR MSR 0x25 -> xAPIC TPR {:#x}", mmio);
    sys::write_u32(LAPIC + 0x80, 0x31);
    let v = req!(rd(MSR_APIC_TPR));
    check!(v == 0x31, "xAPIC TPR 0x31 -> TPR MSR {:#x}", v);
    req!(gp(MSR_APIC_TPR, 0x100));
    req!(wr(MSR_APIC_TPR, 0));
    check!(req!(rd(MSR_APIC_EOI)) == 0, "EOI MSR does not read 0");
    diag!(
        "APIC ID {}: TPR, ICR (physical, self) and EOI MSRs agree with the LAPIC",
        me
    );
    Outcome::Pass
}

/// The profile withdraws AccessIntrCtrlRegs: the three APIC MSRs are #GP both ways.
pub fn apic_msrs_gate(_ctx: &mut Ctx) -> Outcome {
    let eax = sys::cpuid(0x4000_0003).eax;
    check!(
        eax & (1 << 4) == 0,
        "AccessIntrCtrlRegs still granted ({:#x}): hv_clear not applied",
        eax
    );
    lapic_on();
    for msr in [MSR_APIC_EOI, MSR_APIC_ICR, MSR_APIC_TPR] {
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
    check!(!irr(UPCALL_VECTOR), "a refused ICR write sent an IPI");
    Outcome::Pass
}
