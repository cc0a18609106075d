//! Xen physdev_op (33) for an HVM guest, answered as Xen's `hvm_physdev_op` answers a
//! domain without PIRQ emulation that is not the hardware domain: every sub-op is -ENOSYS.
//! The guest's interrupts are the emulated LAPIC/IOAPIC/MSI (KVM's in-kernel irqchip), so
//! there is no native call to translate to; XENFEAT_hvm_pirqs is not offered, so Linux
//! never routes a GSI or MSI through event channels and does not ask.

use super::*;

/// The reason each sub-op a HVM guest may issue is refused (Xen's grouping).
fn why(cmd: u64) -> &'static str {
    match cmd {
        PHYSDEVOP_MAP_PIRQ
        | PHYSDEVOP_UNMAP_PIRQ
        | PHYSDEVOP_EOI
        | PHYSDEVOP_IRQ_STATUS_QUERY
        | PHYSDEVOP_GET_FREE_PIRQ => {
            "no PIRQ emulation for this HVM domain (XENFEAT_hvm_pirqs off)"
        }
        PHYSDEVOP_PCI_MMCFG_RESERVED
        | PHYSDEVOP_PCI_DEVICE_ADD
        | PHYSDEVOP_PCI_DEVICE_REMOVE
        | PHYSDEVOP_DBGP_OP => "hardware domain only",
        PHYSDEVOP_PIRQ_EOI_GMFN_V2 => "PV guests only",
        _ => "not a physdev op for HVM guests",
    }
}

/// physdev_op(cmd, arg): -ENOSYS with Xen's reason in the trace. The argument is not read
/// (Xen refuses before it copies it in).
pub(super) fn physdev_op(a: [u64; 5]) -> Outcome {
    out(
        ENOSYS,
        format!("physdev_op({}) -> -ENOSYS ({})", a[0], why(a[0])),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sub_op_is_enosys_with_xens_reason() {
        for (cmd, reason) in [
            (PHYSDEVOP_MAP_PIRQ, "no PIRQ"),
            (PHYSDEVOP_EOI, "no PIRQ"),
            (PHYSDEVOP_IRQ_STATUS_QUERY, "no PIRQ"),
            (PHYSDEVOP_GET_FREE_PIRQ, "no PIRQ"),
            (PHYSDEVOP_PCI_DEVICE_ADD, "hardware domain"),
            (PHYSDEVOP_PIRQ_EOI_GMFN_V2, "PV guests"),
            (99, "not a physdev op"),
        ] {
            let o = physdev_op([cmd, 0, 0, 0, 0]);
            assert_eq!(o.rax, ENOSYS, "{cmd}");
            assert!(o.trace.contains(reason), "{cmd}: {}", o.trace);
        }
    }
}
