//! Xen memory_op (12): RAM sizes, the e820 map and add_to_physmap (shared_info).

use super::*;

pub(super) fn memory_op(state: &mut XenState, env: &Env<'_>, a: [u64; 5]) -> Outcome {
    match a[0] {
        XENMEM_MAXIMUM_RAM_PAGE => {
            let pfn = env.max_ram_pfn() as i64;
            out(
                pfn,
                format!("memory_op(XENMEM_maximum_ram_page) -> {pfn:#x}"),
            )
        }
        XENMEM_CURRENT_RESERVATION | XENMEM_MAXIMUM_RESERVATION => {
            let what = if a[0] == XENMEM_CURRENT_RESERVATION {
                "current_reservation"
            } else {
                "maximum_reservation"
            };
            let rc = res(env.read(a[1], DOMID_SIZE).and_then(|d| {
                let domid = u16::from_le_bytes([d[0], d[1]]);
                if domid == DOMID_SELF || domid == 0 {
                    Ok(env.ram_pages() as i64)
                } else {
                    Err(ESRCH)
                }
            }));
            out(rc, format!("memory_op(XENMEM_{what}) -> {}", errname(rc)))
        }
        XENMEM_MEMORY_MAP => {
            // struct xen_memory_map { unsigned int nr_entries; (pad) XEN_GUEST_HANDLE buffer; }
            let rc = res(env.read(a[1], MEMORY_MAP_SIZE).and_then(|m| {
                let cap = le_u32(&m, 0) as usize;
                let buf = le_u64(&m, MEMORY_MAP_BUFFER_OFFSET);
                let n = env.memory_map.len().min(cap);
                let mut bytes = Vec::with_capacity(n * E820_ENTRY_SIZE);
                for e in &env.memory_map[..n] {
                    bytes.extend_from_slice(&e.addr.to_le_bytes());
                    bytes.extend_from_slice(&e.size.to_le_bytes());
                    bytes.extend_from_slice(&e.kind.to_le_bytes());
                }
                env.write(buf, &bytes)?;
                env.write(a[1], &(n as u32).to_le_bytes())?;
                Ok(0)
            }));
            out(
                rc,
                format!("memory_op(XENMEM_memory_map) -> {}", errname(rc)),
            )
        }
        XENMEM_ADD_TO_PHYSMAP => add_to_physmap(state, env, a),
        cmd => out(ENOSYS, format!("memory_op({cmd}) -> -ENOSYS")),
    }
}

/// XENMEM_add_to_physmap: XENMAPSPACE_shared_info puts shared_info at `gpfn`.
fn add_to_physmap(state: &mut XenState, env: &Env<'_>, a: [u64; 5]) -> Outcome {
    let p = match env.read(a[1], ADD_TO_PHYSMAP_SIZE) {
        Ok(p) => p,
        Err(e) => return out(e, "memory_op(XENMEM_add_to_physmap) -> -EFAULT".into()),
    };
    let domid = u16::from_le_bytes([p[0], p[1]]);
    let space = le_u32(&p, ADD_TO_PHYSMAP_SPACE_OFFSET);
    let idx = le_u64(&p, ADD_TO_PHYSMAP_IDX_OFFSET);
    let gpfn = le_u64(&p, ADD_TO_PHYSMAP_GPFN_OFFSET);
    let head =
        format!("memory_op(XENMEM_add_to_physmap, space {space}, idx {idx}, gpfn {gpfn:#x})");
    if domid != DOMID_SELF && domid != 0 {
        return out(ESRCH, format!("{head} -> -ESRCH"));
    }
    match space {
        XENMAPSPACE_SHARED_INFO if idx == 0 => {}
        XENMAPSPACE_GRANT_TABLE => {
            return out(
                EINVAL,
                format!("{head} -> -EINVAL (no grant table is offered)"),
            )
        }
        _ => return out(EINVAL, format!("{head} -> -EINVAL")),
    }
    let gpa = gpfn.wrapping_mul(PAGE_SIZE);
    if gpfn >= (1 << 52) || !env.is_ram(gpa, PAGE_SIZE) {
        return out(EINVAL, format!("{head} -> -EINVAL (not a RAM frame)"));
    }
    if env
        .mem
        .write_slice(&[0u8; PAGE_SIZE as usize], GuestAddress(gpa))
        .is_err()
    {
        return out(EFAULT, format!("{head} -> -EFAULT"));
    }
    state.shared_info = Some(gpa);
    let max_pfn = env.max_ram_pfn() + 1;
    let _ = env
        .mem
        .write_obj(max_pfn, GuestAddress(gpa + SI_ARCH_MAX_PFN));
    shinfo::write_wallclock(env.mem, gpa, env.boot_unix_ns);
    if let Some(s) = (env.clock)() {
        state.write_times(env.mem, s);
    }
    for port in std::mem::take(&mut state.early_pending) {
        state.set_pending(env.mem, port);
    }
    out(0, format!("{head} -> shared_info at {gpa:#x} -> 0"))
}
