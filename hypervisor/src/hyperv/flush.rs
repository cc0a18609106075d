//! HvCallFlushVirtualAddressSpace/List (0x0002/0x0003) and their Ex forms (0x0013/0x0014):
//! input decoding into the VP set whose TLBs must be flushed.
//!
//! Input (qwords, memory or fast): AddressSpace, Flags, then ProcessorMask (original forms)
//! or an HV_VP_SET (Ex forms: Format, ValidBankMask, banks in the variable header), then, for
//! the List forms, one GVA range per rep. HV_FLUSH_ALL_PROCESSORS targets every VP; so does a
//! ProcessorMask of 0 in the original forms (KVM's reading, for Windows Server 2012, which
//! sends that meaning "all"). AddressSpace, HV_FLUSH_ALL_VIRTUAL_ADDRESS_SPACES and
//! HV_FLUSH_NON_GLOBAL_MAPPINGS_ONLY narrow what must be flushed; the flush done is always the
//! whole guest TLB of each target (allowed: the TLFS lets the hypervisor flush more), so the
//! GVA list is read (it must be there) but each entry needs no work of its own.
//!
//! Reps: entries rep_start..rep_count are read; an entry outside guest memory stops the call
//! with HV_STATUS_INVALID_PARAMETER and the reps completed so far (the guest may resume with
//! rep_start = that count), and the TLBs are still flushed for the reps done. A fast List call
//! must hold its whole list in the registers (else HV_STATUS_INVALID_HYPERCALL_INPUT, before
//! anything is done, as KVM). KVM refuses a rep start index other than 0 for these calls; the
//! TLFS defines it for every rep call, and it is honoured here.
use super::vpset::{read_vp_set, Action, VpSet, Words};
use super::Input;
use crate::abi::hv::{
    CALL_FLUSH_VA_LIST, CALL_FLUSH_VA_LIST_EX, CALL_FLUSH_VA_SPACE_EX, FLUSH_ALL_PROCESSORS,
    FLUSH_FLAGS_VALID, HV_STATUS_INVALID_HYPERCALL_INPUT, HV_STATUS_INVALID_PARAMETER,
    HV_STATUS_SUCCESS,
};

/// Status, reps completed, and the flush to do.
pub(super) type FlushResult = (u16, u16, Option<Action>);

/// Decodes a flush call (`code` one of the four flush codes).
pub(super) fn flush(w: &Words, input: &Input, code: u16) -> FlushResult {
    let ex = code == CALL_FLUSH_VA_SPACE_EX || code == CALL_FLUSH_VA_LIST_EX;
    let list = code == CALL_FLUSH_VA_LIST || code == CALL_FLUSH_VA_LIST_EX;
    let (targets, first_entry) = match header(w, input, ex) {
        Ok(h) => h,
        Err(s) => return (s, 0, None),
    };
    if !list {
        return (HV_STATUS_SUCCESS, 0, Some(Action::Flush(targets)));
    }
    let (start, count) = (input.rep_start, input.rep_count);
    if !w.fast_fits(first_entry, u64::from(count)) {
        return (HV_STATUS_INVALID_HYPERCALL_INPUT, 0, None);
    }
    for rep in start..count {
        if let Err(s) = w.get(first_entry + u64::from(rep)) {
            let done = (rep > start).then_some(Action::Flush(targets));
            return (s, rep, done);
        }
    }
    let action = (count > start).then_some(Action::Flush(targets));
    (HV_STATUS_SUCCESS, count, action)
}

/// AddressSpace, Flags and the processor mask or set: the targets and the index of the first
/// GVA list entry.
fn header(w: &Words, input: &Input, ex: bool) -> Result<(VpSet, u64), u16> {
    let _address_space = w.get(0)?;
    let flags = w.get(1)?;
    let (set, first_entry) = if ex {
        let (set, banks) = read_vp_set(w, 2, input.var_header_qwords)?;
        (set, 4 + banks)
    } else {
        let mask = w.get(2)?;
        let set = if mask == 0 {
            VpSet::ALL
        } else {
            VpSet::from_mask(mask)
        };
        (set, 3)
    };
    if flags & !FLUSH_FLAGS_VALID != 0 {
        return Err(HV_STATUS_INVALID_PARAMETER);
    }
    let set = if flags & FLUSH_ALL_PROCESSORS != 0 {
        VpSet::ALL
    } else {
        set
    };
    Ok((set, first_entry))
}
