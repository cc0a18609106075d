//! Hyper-V's APIC-access MSRs (HV_X64_MSR_EOI 0x40000070, ICR 0x40000071, TPR 0x40000072),
//! routed to the vCPU's in-kernel LAPIC; gated by AccessIntrCtrlRegs (#GP without it).
//!
//! KVM's Hyper-V support is absent on this host, so KVM does not handle these MSRs itself;
//! the MSR filter sends them here, on the vCPU's own thread, after the exit's borrow of the
//! run structure ends ([`Pending::ApicMsr`](crate::exits::Pending)). The result goes back into
//! the run structure's MSR exit (data, error) before the next KVM_RUN, which is when KVM
//! completes the RDMSR/WRMSR.
//! - ICR write: the interrupt command becomes a KVM_SIGNAL_MSI with the same vector,
//!   delivery mode (fixed, lowest priority, NMI, INIT, STARTUP), level/trigger and
//!   destination (physical or logical; bits 63:56 in xAPIC mode, 39:32 in x2APIC mode, as
//!   KVM's `kvm_apic_send_ipi`); shorthand "self" targets the vCPU's own APIC ID, "all
//!   including self" the broadcast ID, "all excluding self" every other vCPU in turn. An
//!   MSI goes through the same in-kernel delivery (`kvm_irq_delivery_to_apic`) as a LAPIC's
//!   IPI, and needs no LAPIC state round trip. The LAPIC's own ICR register is not updated,
//!   so an ICR read gives what the guest last wrote through the xAPIC page, not the MSR
//!   (Linux reads only EOI and TPR through the MSRs).
//! - EOI write and TPR write: KVM_GET_LAPIC, change the register page (EOI: clear the
//!   highest in-service bit; TPR: bits 7:0, a value above 0xff is #GP), KVM_SET_LAPIC. That
//!   is KVM's save/restore path: it recomputes the PPR and the in-service state, re-checks
//!   pending interrupts, and carries the LAPIC timer on from its current count. It is
//!   correct only on the vCPU's own thread while it is outside KVM_RUN, which is where this
//!   runs. Limitation: an EOI of a level-triggered vector is not forwarded to the IOAPIC
//!   (there is no ioctl for that); SynIC, timer and MSI vectors are edge-triggered.
//! - Reads: TPR from the register page; EOI reads 0 (write-only, as EOM); ICR as above.
use crate::abi::hv::{FeatureReg, PRIV_ACCESS_INTR_CTRL_REGS};
use crate::abi::hv_synic::{MSR_APIC_EOI, MSR_APIC_ICR, MSR_APIC_TPR};
use crate::exits::Next;
use crate::state::{lock, Shared};
use kvm_bindings::kvm_lapic_state;
use kvm_ioctls::VcpuFd;

/// xAPIC register offsets in the LAPIC register page.
const APIC_TPR: usize = 0x80;
const APIC_ISR: usize = 0x100;
const APIC_ICR_LOW: usize = 0x300;
const APIC_ICR_HIGH: usize = 0x310;
/// IA32_APIC_BASE and its x2APIC-enable bit.
const MSR_IA32_APIC_BASE: u32 = 0x1b;
const APIC_BASE_X2APIC: u64 = 1 << 10;
/// The LAPIC's MSI address window; destination ID in bits 19:12, logical mode bit 2.
const MSI_ADDRESS_BASE: u32 = 0xfee0_0000;
const MSI_DEST_LOGICAL: u32 = 1 << 2;
/// ICR low: vector, delivery mode, destination mode, level, trigger, shorthand.
const ICR_MSI_DATA_MASK: u32 = 0xc7ff;
const ICR_DEST_LOGICAL: u32 = 1 << 11;
const ICR_SHORTHAND_SHIFT: u32 = 18;
/// xAPIC physical broadcast destination.
const BROADCAST: u32 = 0xff;

/// An APIC-access MSR exit waiting for the vCPU fd.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ApicMsr {
    /// The MSR.
    pub msr: u32,
    /// The value written, or `None` for a read.
    pub write: Option<u64>,
}

/// Whether `msr` is one of the APIC-access MSRs.
pub(crate) fn is_apic_msr(msr: u32) -> bool {
    (MSR_APIC_EOI..=MSR_APIC_TPR).contains(&msr)
}

/// Whether the partition grants the APIC-access MSRs (AccessIntrCtrlRegs, as KVM's
/// HV_MSR_APIC_ACCESS_AVAILABLE).
pub(crate) fn allowed(shared: &Shared) -> bool {
    lock(&shared.paravirt.hv)
        .features
        .has(FeatureReg::PrivEax, PRIV_ACCESS_INTR_CTRL_REGS)
}

fn reg(s: &kvm_lapic_state, off: usize) -> u32 {
    let b = |i: usize| s.regs[off + i] as u8;
    u32::from_le_bytes([b(0), b(1), b(2), b(3)])
}

fn set_reg(s: &mut kvm_lapic_state, off: usize, v: u32) {
    for (i, b) in v.to_le_bytes().iter().enumerate() {
        s.regs[off + i] = *b as std::os::raw::c_char;
    }
}

/// Clears the highest in-service vector; whether there was one.
fn clear_highest_isr(s: &mut kvm_lapic_state) -> bool {
    for r in (0..8).rev() {
        let off = APIC_ISR + r * 0x10;
        let v = reg(s, off);
        if v != 0 {
            let bit = 31 - v.leading_zeros();
            set_reg(s, off, v & !(1 << bit));
            return true;
        }
    }
    false
}

/// The MSIs (address, data) an ICR value sends from vCPU `me` of `vcpus`.
fn icr_msis(icr: u64, x2apic: bool, me: u32, vcpus: u32) -> Vec<(u32, u32)> {
    let low = icr as u32;
    let dest = if x2apic {
        (icr >> 32) as u32 & 0xff
    } else {
        (icr >> 56) as u32
    };
    let data = low & ICR_MSI_DATA_MASK & !ICR_DEST_LOGICAL;
    let logical = if low & ICR_DEST_LOGICAL != 0 {
        MSI_DEST_LOGICAL
    } else {
        0
    };
    let phys = |id: u32| (MSI_ADDRESS_BASE | ((id & 0xff) << 12), data);
    match (low >> ICR_SHORTHAND_SHIFT) & 3 {
        0 => vec![(MSI_ADDRESS_BASE | (dest << 12) | logical, data)],
        1 => vec![phys(me)],
        2 => vec![phys(BROADCAST)],
        _ => (0..vcpus).filter(|&v| v != me).map(phys).collect(),
    }
}

/// Completes an APIC-access MSR exit of vCPU `id`.
pub(crate) fn complete(id: usize, vcpu: &mut VcpuFd, shared: &Shared, a: ApicMsr) -> Next {
    let r = match run(id, vcpu, shared, a) {
        Ok(r) => r,
        Err(why) => return Next::Crash(why),
    };
    let run = vcpu.get_kvm_run();
    // SAFETY: the last exit was KVM_EXIT_X86_RDMSR/WRMSR (that is what queued `a`), so `msr`
    // is the active member of the exit union; it is plain old data.
    let m = unsafe { &mut run.__bindgen_anon_1.msr };
    match r {
        Some(v) => {
            m.data = v;
            m.error = 0;
        }
        None => m.error = 1,
    }
    Next::Continue
}

/// Does the access; `Ok(None)` is #GP, `Err` a VMM failure.
fn run(id: usize, vcpu: &VcpuFd, shared: &Shared, a: ApicMsr) -> Result<Option<u64>, String> {
    let get = || vcpu.get_lapic().map_err(|e| format!("KVM_GET_LAPIC: {e}"));
    let set = |s: &kvm_lapic_state| vcpu.set_lapic(s).map_err(|e| format!("KVM_SET_LAPIC: {e}"));
    Ok(match (a.msr, a.write) {
        (MSR_APIC_EOI, None) => Some(0),
        (MSR_APIC_EOI, Some(_)) => {
            let mut s = get()?;
            if clear_highest_isr(&mut s) {
                set(&s)?;
            }
            Some(0)
        }
        (MSR_APIC_TPR, None) => Some(u64::from(reg(&get()?, APIC_TPR) & 0xff)),
        (MSR_APIC_TPR, Some(v)) if v > 0xff => None,
        (MSR_APIC_TPR, Some(v)) => {
            let mut s = get()?;
            set_reg(&mut s, APIC_TPR, v as u32);
            set(&s)?;
            Some(0)
        }
        (MSR_APIC_ICR, None) => {
            let s = get()?;
            Some(u64::from(reg(&s, APIC_ICR_LOW)) | u64::from(reg(&s, APIC_ICR_HIGH)) << 32)
        }
        (MSR_APIC_ICR, Some(v)) => {
            let x2apic = apic_base(vcpu)? & APIC_BASE_X2APIC != 0;
            let vcpus = shared.control.vcpu_state.len() as u32;
            for (addr, data) in icr_msis(v, x2apic, id as u32, vcpus) {
                shared.paravirt.synic.signal_msi(addr, data);
            }
            Some(0)
        }
        _ => None,
    })
}

/// The vCPU's IA32_APIC_BASE.
fn apic_base(vcpu: &VcpuFd) -> Result<u64, String> {
    let mut msrs = kvm_bindings::Msrs::from_entries(&[kvm_bindings::kvm_msr_entry {
        index: MSR_IA32_APIC_BASE,
        ..Default::default()
    }])
    .map_err(|e| format!("IA32_APIC_BASE: {e:?}"))?;
    match vcpu.get_msrs(&mut msrs) {
        Ok(1) => Ok(msrs.as_slice()[0].data),
        Ok(_) => Err("KVM_GET_MSRS IA32_APIC_BASE: not read".into()),
        Err(e) => Err(format!("KVM_GET_MSRS IA32_APIC_BASE: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icr_becomes_msis() {
        // Fixed vector 0x40 to physical APIC ID 3 (xAPIC: destination in 63:56).
        assert_eq!(
            icr_msis((3u64 << 56) | 0x40, false, 0, 4),
            vec![(0xfee0_3000, 0x40)]
        );
        // x2APIC: destination in 39:32.
        assert_eq!(
            icr_msis((2u64 << 32) | 0x4040, true, 0, 4),
            vec![(0xfee0_2000, 0x4040)]
        );
        // Logical destination, NMI delivery.
        assert_eq!(
            icr_msis((1u64 << 56) | 0x0c00 | 0x800, false, 0, 4),
            vec![(0xfee0_1004, 0x0400)]
        );
        // Shorthands: self, all including self, all excluding self.
        assert_eq!(
            icr_msis((1 << 18) | 0x41, false, 2, 4),
            vec![(0xfee0_2000, 0x41)]
        );
        assert_eq!(
            icr_msis((2 << 18) | 0x41, false, 2, 4),
            vec![(0xfeef_f000, 0x41)]
        );
        assert_eq!(
            icr_msis((3 << 18) | 0x41, false, 2, 4)
                .iter()
                .map(|m| m.0)
                .collect::<Vec<_>>(),
            vec![0xfee0_0000, 0xfee0_1000, 0xfee0_3000]
        );
    }

    #[test]
    fn eoi_clears_the_highest_in_service_vector() {
        let mut s = kvm_lapic_state { regs: [0; 1024] };
        set_reg(&mut s, APIC_ISR + 0x10, 1 << 3); // vector 35
        set_reg(&mut s, APIC_ISR + 0x70, 1 << 19); // vector 243
        assert!(clear_highest_isr(&mut s));
        assert_eq!(reg(&s, APIC_ISR + 0x70), 0);
        assert_eq!(reg(&s, APIC_ISR + 0x10), 1 << 3);
        assert!(clear_highest_isr(&mut s));
        assert!(!clear_highest_isr(&mut s));
    }
}
