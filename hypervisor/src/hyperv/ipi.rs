//! HvCallSendSyntheticClusterIpi (0x000B) and HvCallSendSyntheticClusterIpiEx (0x0015): input
//! decoding into a vector and the VPs that get it as a fixed interrupt.
//!
//! Input (qwords, memory or fast): Vector u32 | TargetVtl u8 | padding (qword 0), then the
//! ProcessorMask (original form, qword 1; fits RDX/R8 as a fast call) or an HV_VP_SET (Ex
//! form, qword 1 on; fast only with XMM input). Only VTL 0 exists here, so any bit of 63:32
//! (TargetVtl, padding) set is HV_STATUS_INVALID_HYPERCALL_INPUT (KVM: the same in the fast
//! form, ignored in memory). A vector outside 0x10..=0xFF is HV_STATUS_INVALID_PARAMETER as
//! the TLFS says (KVM answers HV_STATUS_INVALID_HYPERCALL_INPUT). VP indices the partition
//! does not have are ignored, as KVM does.
use super::vpset::{read_vp_set, Action, VpSet, Words};
use super::Input;
use crate::abi::hv::{
    CALL_SEND_IPI_EX, HV_STATUS_INVALID_HYPERCALL_INPUT, HV_STATUS_INVALID_PARAMETER,
    HV_STATUS_SUCCESS, IPI_MAX_VECTOR, IPI_MIN_VECTOR,
};

/// Decodes an IPI call: status and the delivery to do.
pub(super) fn send_ipi(w: &Words, input: &Input, code: u16) -> (u16, Option<Action>) {
    match decode(w, input, code) {
        Ok(a) => (HV_STATUS_SUCCESS, Some(a)),
        Err(s) => (s, None),
    }
}

fn decode(w: &Words, input: &Input, code: u16) -> Result<Action, u16> {
    let q0 = w.get(0)?;
    if q0 >> 32 != 0 {
        return Err(HV_STATUS_INVALID_HYPERCALL_INPUT);
    }
    let targets = if code == CALL_SEND_IPI_EX {
        read_vp_set(w, 1, input.var_header_qwords)?.0
    } else {
        VpSet::from_mask(w.get(1)?)
    };
    let vector = q0 as u32;
    if !(IPI_MIN_VECTOR..=IPI_MAX_VECTOR).contains(&vector) {
        return Err(HV_STATUS_INVALID_PARAMETER);
    }
    Ok(Action::Ipi {
        vector: vector as u8,
        targets,
    })
}
