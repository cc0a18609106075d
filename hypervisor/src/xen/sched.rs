//! Xen sched_op (29): yield, block, poll, shutdown.

use super::*;

pub(super) fn sched_op(state: &mut XenState, env: &Env<'_>, a: [u64; 5]) -> Outcome {
    match a[0] {
        SCHEDOP_YIELD => Outcome {
            native: Some("HvCallNotifyLongSpinWait"),
            ..out(
                0,
                "sched_op(SCHEDOP_yield) -> HvCallNotifyLongSpinWait -> 0".into(),
            )
        },
        SCHEDOP_BLOCK => {
            // Xen enables event delivery (clears evtchn_upcall_mask) and blocks until an
            // event is pending for this vCPU.
            if let Some(vi) = state.vcpu_info_gpa(env.vcpu) {
                let _ = env.mem.write_obj(0u8, GuestAddress(vi + VI_UPCALL_MASK));
            }
            Outcome {
                wait: Some(Wait {
                    vcpu: env.vcpu,
                    ports: Vec::new(),
                    deadline: None,
                    until_up: false,
                }),
                ..out(
                    0,
                    "sched_op(SCHEDOP_block) -> wait for an event -> 0".into(),
                )
            }
        }
        SCHEDOP_POLL => sched_poll(state, env, a),
        SCHEDOP_SHUTDOWN => {
            // struct sched_shutdown { unsigned int reason; }
            let reason = match env.read_u32(a[1]) {
                Ok(r) => r,
                Err(e) => {
                    return out(
                        e,
                        format!("sched_op(SCHEDOP_shutdown, {:#x}) -> -EFAULT", a[1]),
                    )
                }
            };
            match reason {
                SHUTDOWN_POWEROFF | SHUTDOWN_REBOOT => {
                    let what = if reason == SHUTDOWN_POWEROFF {
                        "poweroff"
                    } else {
                        "reboot"
                    };
                    Outcome {
                        end: Some(XenEnd::Poweroff),
                        ..out(0, format!("sched_op(SCHEDOP_shutdown, {what}) -> VM ends"))
                    }
                }
                SHUTDOWN_CRASH | SHUTDOWN_WATCHDOG => {
                    let what = if reason == SHUTDOWN_CRASH {
                        "crash"
                    } else {
                        "watchdog"
                    };
                    let code = state
                        .shutdown_code
                        .map(|c| format!(", shutdown code {c}"))
                        .unwrap_or_default();
                    Outcome {
                        end: Some(XenEnd::Crash(format!(
                            "guest reported a crash (Xen SCHEDOP_shutdown {what}{code})"
                        ))),
                        ..out(
                            0,
                            format!("sched_op(SCHEDOP_shutdown, {what}) -> VM ends as a crash"),
                        )
                    }
                }
                r => out(
                    EINVAL,
                    format!("sched_op(SCHEDOP_shutdown, reason {r}) -> -EINVAL"),
                ),
            }
        }
        SCHEDOP_SHUTDOWN_CODE => match env.read_u32(a[1]) {
            Ok(code) => {
                state.shutdown_code = Some(code);
                out(0, format!("sched_op(SCHEDOP_shutdown_code, {code}) -> 0"))
            }
            Err(e) => out(e, "sched_op(SCHEDOP_shutdown_code) -> -EFAULT".into()),
        },
        cmd => out(ENOSYS, format!("sched_op({cmd}) -> -ENOSYS")),
    }
}

/// SCHEDOP_poll: `struct sched_poll { XEN_GUEST_HANDLE(evtchn_port_t) ports;
/// unsigned int nr_ports; uint64_t timeout; }`.
fn sched_poll(state: &XenState, env: &Env<'_>, a: [u64; 5]) -> Outcome {
    let r = env.read(a[1], SCHED_POLL_SIZE).and_then(|p| {
        let (list, n, timeout) = (le_u64(&p, 0), le_u32(&p, 8), le_u64(&p, 16));
        if n > SCHED_POLL_MAX_PORTS {
            return Err(EINVAL);
        }
        let raw = env.read(list, n as usize * 4)?;
        let ports: Vec<u32> = raw.chunks_exact(4).map(|c| le_u32(c, 0)).collect();
        for &port in &ports {
            state.evtchn.get(port)?;
        }
        Ok((ports, timeout))
    });
    match r {
        Ok((ports, timeout)) => {
            let n = ports.len();
            Outcome {
                wait: Some(Wait {
                    vcpu: env.vcpu,
                    ports,
                    deadline: (timeout != 0).then_some(timeout),
                    until_up: false,
                }),
                ..out(
                    0,
                    format!("sched_op(SCHEDOP_poll, {n} ports, timeout {timeout}) -> wait -> 0"),
                )
            }
        }
        Err(e) => out(e, format!("sched_op(SCHEDOP_poll) -> {}", errname(e))),
    }
}
