//! Xen hvm_op (34): HVM parameters, the upcall vector and pagetable_dying.

use super::*;

pub(super) fn hvm_op(state: &mut XenState, env: &Env<'_>, a: [u64; 5]) -> Outcome {
    match a[0] {
        HVMOP_SET_PARAM | HVMOP_GET_PARAM => hvm_param(state, env, a),
        HVMOP_SET_EVTCHN_UPCALL_VECTOR => {
            // struct xen_hvm_evtchn_upcall_vector { uint32_t vcpu; uint8_t vector; }
            let r = env.read(a[1], 5).and_then(|b| {
                let (vcpu, vector) = (le_u32(&b, 0), b[4]);
                if vector < UPCALL_VECTOR_MIN {
                    return Err(EINVAL);
                }
                let slot = state.upcall_vectors.get_mut(vcpu as usize).ok_or(ENOENT)?;
                *slot = Some(vector);
                state.assert_upcall(env.mem, vcpu);
                Ok((vcpu, vector))
            });
            match r {
                Ok((v, vec)) => out(
                    0,
                    format!("hvm_op(HVMOP_set_evtchn_upcall_vector, vcpu {v}, {vec:#x}) -> 0"),
                ),
                Err(e) => out(
                    e,
                    format!("hvm_op(HVMOP_set_evtchn_upcall_vector) -> {}", errname(e)),
                ),
            }
        }
        HVMOP_PAGETABLE_DYING => {
            // struct xen_hvm_pagetable_dying { domid_t domid; uint64_t gpa; }. The hint is
            // for shadow paging; Xen answers -EINVAL to a domain on hardware-assisted paging
            // (HAP), which is what KVM's two-dimensional paging is: there is no native call to
            // make. Linux then prints "HVMOP_pagetable_dying not supported" (debug level) and
            // does not call it at every exit_mmap.
            let rc = res(env.read(a[1], 16).and_then(|b| {
                let domid = u16::from_le_bytes([b[0], b[1]]);
                if domid != DOMID_SELF && domid != OWN_DOMID {
                    return Err(ESRCH);
                }
                Err(EINVAL)
            }));
            out(
                rc,
                format!(
                    "hvm_op(HVMOP_pagetable_dying) -> {} (hardware-assisted paging: no shadow to drop)",
                    errname(rc)
                ),
            )
        }
        cmd => out(ENOSYS, format!("hvm_op({cmd}) -> -ENOSYS")),
    }
}

fn hvm_param(state: &mut XenState, env: &Env<'_>, a: [u64; 5]) -> Outcome {
    // struct xen_hvm_param { domid_t domid; (pad) uint32_t index; uint64_t value; }
    let op = if a[0] == HVMOP_SET_PARAM {
        "HVMOP_set_param"
    } else {
        "HVMOP_get_param"
    };
    let p = match env.read(a[1], HVM_PARAM_SIZE) {
        Ok(p) => p,
        Err(e) => return out(e, format!("hvm_op({op}, {:#x}) -> -EFAULT", a[1])),
    };
    let domid = u16::from_le_bytes([p[0], p[1]]);
    let index = le_u32(&p, HVM_PARAM_INDEX_OFFSET);
    let value = le_u64(&p, HVM_PARAM_VALUE_OFFSET);
    if domid != DOMID_SELF && domid != 0 {
        return out(ESRCH, format!("hvm_op({op}, dom {domid:#x}) -> -ESRCH"));
    }
    if index >= HVM_NR_PARAMS {
        return out(EINVAL, format!("hvm_op({op}, {index}) -> -EINVAL"));
    }
    if a[0] == HVMOP_SET_PARAM {
        if !HVM_GUEST_SETTABLE_PARAMS.contains(&index) {
            return out(
                EPERM,
                format!("hvm_op(HVMOP_set_param, {index}) -> -EPERM (not settable by the guest)"),
            );
        }
        state.params.insert(index, value);
        if index == HVM_PARAM_CALLBACK_IRQ {
            for v in 0..state.vcpus {
                state.assert_upcall(env.mem, v);
            }
        }
        out(
            0,
            format!("hvm_op(HVMOP_set_param, {index}, {value:#x}) -> 0"),
        )
    } else {
        let v = state.params.get(&index).copied().unwrap_or(0);
        let rc = res(env
            .write(
                a[1].wrapping_add(HVM_PARAM_VALUE_OFFSET as u64),
                &v.to_le_bytes(),
            )
            .map(|_| 0));
        out(
            rc,
            format!(
                "hvm_op(HVMOP_get_param, {index}) -> {v:#x}, {}",
                errname(rc)
            ),
        )
    }
}
