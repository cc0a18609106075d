//! Xen vcpu_op (24) and set_timer_op (15): vcpu_info, runstate area and single-shot timers.

use super::*;

/// Arms vCPU `v`'s single-shot timer for `deadline` (reference ns); a deadline already
/// passed raises VIRQ_TIMER at once.
fn arm_timer(state: &mut XenState, env: &Env<'_>, v: u32, deadline: u64) -> (bool, String) {
    // Linux arms the timer at every tick: the pvclock is refreshed then (see
    // `refresh_time`), so it follows the reference clock.
    state.refresh(env);
    if deadline <= env.now_ns {
        let vec = state.raise_virq(env.mem, VIRQ_TIMER, v);
        return (false, format!("expired -> VIRQ_TIMER now (vector {vec:?})"));
    }
    let deadline = deadline.min(env.now_ns.saturating_add(TIMER_MAX_AHEAD_NS));
    state.timers.set(v as usize, Some(deadline));
    (
        true,
        format!("timer in {} us", (deadline - env.now_ns) / 1000),
    )
}

pub(super) fn set_timer_op(state: &mut XenState, env: &Env<'_>, a: [u64; 5]) -> Outcome {
    if a[0] == 0 {
        state.timers.set(env.vcpu as usize, None);
        return out(0, "set_timer_op(0) -> timer stopped -> 0".into());
    }
    let (armed, what) = arm_timer(state, env, env.vcpu, a[0]);
    Outcome {
        timer_armed: armed,
        ..out(0, format!("set_timer_op({}) -> {what} -> 0", a[0]))
    }
}

pub(super) fn vcpu_op(state: &mut XenState, env: &Env<'_>, a: [u64; 5]) -> Outcome {
    let (cmd, vcpu, arg) = (a[0], a[1], a[2]);
    let head = format!("vcpu_op({cmd}, vcpu {vcpu})");
    if vcpu >= u64::from(state.vcpus) {
        return out(ENOENT, format!("{head} -> -ENOENT"));
    }
    let v = vcpu as u32;
    match cmd {
        // Native: KVM_GET_MP_STATE of the vCPU (read by its own thread when it leaves
        // KVM_RUN: at its exits and the watchdog's kicks, so at most
        // `run::PROBE_MAX_INTERVAL` late), and the down flag below.
        VCPUOP_IS_UP => {
            let up = state.is_up(v);
            out(
                i64::from(up),
                format!("{head} VCPUOP_is_up -> {}", u8::from(up)),
            )
        }
        // Xen's `_VPF_down`: the vCPU's thread stays out of KVM_RUN (waits in the VMM) while
        // it is set. HVM vCPUs are started by INIT/SIPI through the in-kernel LAPIC, so up on
        // one that never ran is -EINVAL, as Xen says of a vCPU not initialised.
        VCPUOP_UP => {
            if !state.started.get(v as usize).copied().unwrap_or(false) {
                return out(
                    EINVAL,
                    format!(
                        "{head} VCPUOP_up -> -EINVAL (not started: INIT/SIPI starts HVM vCPUs)"
                    ),
                );
            }
            if let Some(d) = state.down.get_mut(v as usize) {
                *d = false;
            }
            state.notify.bump();
            out(
                0,
                format!("{head} VCPUOP_up -> its thread runs KVM_RUN again -> 0"),
            )
        }
        VCPUOP_DOWN => {
            let others_up = (0..state.vcpus).any(|o| o != v && state.is_up(o));
            if !others_up {
                // Xen: the last vCPU going down shuts the domain down (poweroff).
                return Outcome {
                    end: Some(XenEnd::Poweroff),
                    ..out(
                        0,
                        format!("{head} VCPUOP_down, last vCPU up -> VM ends (poweroff)"),
                    )
                };
            }
            if let Some(d) = state.down.get_mut(v as usize) {
                *d = true;
            }
            // Another vCPU stops at its next exit or watchdog kick (Xen's
            // vcpu_sleep_nosync does not wait either); the caller stops here.
            let wait = (v == env.vcpu).then(|| Wait {
                vcpu: v,
                ports: Vec::new(),
                deadline: None,
                until_up: true,
            });
            Outcome {
                wait,
                ..out(
                    0,
                    format!("{head} VCPUOP_down -> its thread leaves KVM_RUN -> 0"),
                )
            }
        }
        VCPUOP_SET_PERIODIC_TIMER => {
            // struct vcpu_set_periodic_timer { uint64_t period_ns; }; Xen: any vCPU of the
            // domain, a period under 1 ms or over STIME_DELTA_MAX is -EINVAL.
            let period = match env.read(arg, 8) {
                Ok(b) => le_u64(&b, 0),
                Err(e) => return out(e, format!("{head} VCPUOP_set_periodic_timer -> -EFAULT")),
            };
            if !(PERIODIC_MIN_NS..=PERIODIC_MAX_NS).contains(&period) {
                return out(
                    EINVAL,
                    format!("{head} VCPUOP_set_periodic_timer({period} ns) -> -EINVAL"),
                );
            }
            state.refresh(env);
            state
                .timers
                .set_periodic(v as usize, env.now_ns, Some(period));
            Outcome {
                timer_armed: true,
                ..out(
                    0,
                    format!("{head} VCPUOP_set_periodic_timer({period} ns) -> VMM timer, VIRQ_TIMER each period -> 0"),
                )
            }
        }
        VCPUOP_STOP_PERIODIC_TIMER => {
            let was = state.timers.periodic(v as usize);
            state.timers.set_periodic(v as usize, env.now_ns, None);
            out(
                0,
                format!(
                    "{head} VCPUOP_stop_periodic_timer -> 0 ({})",
                    if was.is_some() { "stopped" } else { "none ran" }
                ),
            )
        }
        VCPUOP_STOP_SINGLESHOT_TIMER => {
            if v != env.vcpu {
                return out(
                    EINVAL,
                    format!(
                        "{head} VCPUOP_stop_singleshot_timer -> -EINVAL (not the calling vCPU)"
                    ),
                );
            }
            state.timers.set(v as usize, None);
            out(0, format!("{head} VCPUOP_stop_singleshot_timer -> 0"))
        }
        VCPUOP_SET_SINGLESHOT_TIMER => {
            // struct vcpu_set_singleshot_timer { uint64_t timeout_abs_ns; uint32_t flags; }
            if v != env.vcpu {
                return out(
                    EINVAL,
                    format!("{head} VCPUOP_set_singleshot_timer -> -EINVAL (not the calling vCPU)"),
                );
            }
            let b = match env.read(arg, SINGLESHOT_TIMER_SIZE) {
                Ok(b) => b,
                Err(e) => return out(e, format!("{head} VCPUOP_set_singleshot_timer -> -EFAULT")),
            };
            let (deadline, flags) = (le_u64(&b, 0), le_u32(&b, 8));
            if flags & VCPU_SSHOTTMR_FUTURE != 0 && deadline <= env.now_ns {
                return out(
                    ETIME,
                    format!(
                        "{head} VCPUOP_set_singleshot_timer({deadline}, future) -> -ETIME (now {})",
                        env.now_ns
                    ),
                );
            }
            let (armed, what) = arm_timer(state, env, v, deadline);
            Outcome {
                timer_armed: armed,
                ..out(
                    0,
                    format!("{head} VCPUOP_set_singleshot_timer({deadline}) -> {what} -> 0"),
                )
            }
        }
        VCPUOP_REGISTER_VCPU_INFO => register_vcpu_info(state, env, v, arg, &head),
        VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA => {
            // struct vcpu_register_runstate_memory_area { uint64_t addr (guest-virtual); }
            let rc = res(env.read(arg, 8).and_then(|b| {
                let va = le_u64(&b, 0);
                // struct vcpu_runstate_info: state RUNSTATE_running (0), state_entry_time,
                // time[4] (time running = now).
                let mut info = vec![0u8; RUNSTATE_INFO_SIZE];
                info[8..16].copy_from_slice(&env.now_ns.to_le_bytes());
                info[16..24].copy_from_slice(&env.now_ns.to_le_bytes());
                env.write(va, &info).map(|_| 0)
            }));
            out(
                rc,
                format!(
                    "{head} VCPUOP_register_runstate_memory_area -> {}",
                    errname(rc)
                ),
            )
        }
        _ => out(ENOSYS, format!("{head} -> -ENOSYS")),
    }
}

/// VCPUOP_register_vcpu_info: `struct vcpu_register_vcpu_info { uint64_t mfn;
/// uint32_t offset; uint32_t rsvd; }`; errors as Xen's `map_vcpu_info`.
fn register_vcpu_info(
    state: &mut XenState,
    env: &Env<'_>,
    v: u32,
    arg: u64,
    head: &str,
) -> Outcome {
    let b = match env.read(arg, REGISTER_VCPU_INFO_SIZE) {
        Ok(b) => b,
        Err(e) => return out(e, format!("{head} VCPUOP_register_vcpu_info -> -EFAULT")),
    };
    let (mfn, offset, rsvd) = (le_u64(&b, 0), le_u32(&b, 8), le_u32(&b, 12));
    let head = format!("{head} VCPUOP_register_vcpu_info(mfn {mfn:#x}, offset {offset:#x})");
    if rsvd != 0 || u64::from(offset) > PAGE_SIZE - VCPU_INFO_SIZE {
        return out(EINVAL, format!("{head} -> -EINVAL (crosses a page)"));
    }
    if state.vcpu_info.get(v as usize).is_some_and(|s| s.is_some()) {
        return out(EINVAL, format!("{head} -> -EINVAL (already registered)"));
    }
    let gpa = mfn.wrapping_mul(PAGE_SIZE).wrapping_add(u64::from(offset));
    if mfn >= (1 << 52) || !env.is_ram(gpa, VCPU_INFO_SIZE) {
        return out(EINVAL, format!("{head} -> -EINVAL (not RAM)"));
    }
    // Xen copies the current contents (pending state) over, then points the vCPU at it.
    let old = state
        .vcpu_info_gpa(v)
        .and_then(|g| {
            let mut b = [0u8; VCPU_INFO_SIZE as usize];
            env.mem.read_slice(&mut b, GuestAddress(g)).ok().map(|_| b)
        })
        .unwrap_or([0u8; VCPU_INFO_SIZE as usize]);
    if env.mem.write_slice(&old, GuestAddress(gpa)).is_err() {
        return out(EFAULT, format!("{head} -> -EFAULT"));
    }
    // As Xen's map_vcpu_info: every selector bit set so the guest rescans, and the events
    // marked pending (vcpu_mark_events_pending: evtchn_upcall_pending, and the upcall if a
    // vector is known; else when the guest names one, see `assert_upcall`). Without the
    // latter, the all-ones selector keeps every later event from raising an upcall (seen
    // with Debian's kernel: its first timer interrupt never came).
    let _ = env
        .mem
        .write_obj(u64::MAX, GuestAddress(gpa + VI_PENDING_SEL));
    if let Some(slot) = state.vcpu_info.get_mut(v as usize) {
        *slot = Some(gpa);
    }
    state.upcall(env.mem, v);
    let sample = (env.clock)().or(state.time);
    if let Some(s) = sample {
        state.time = Some(s);
        shinfo::write_time(env.mem, gpa + VI_TIME, s);
    }
    out(0, format!("{head} -> vcpu_info at {gpa:#x} -> 0"))
}
