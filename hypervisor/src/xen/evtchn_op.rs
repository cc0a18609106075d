//! Xen event_channel_op (32): the 2-level event channel commands, on top of [`super::evtchn`].

use super::*;

pub(super) fn event_channel_op(state: &mut XenState, env: &Env<'_>, a: [u64; 5]) -> Outcome {
    let (cmd, arg) = (a[0], a[1]);
    let rw = |n: usize| env.read(arg, n);
    let r: Result<(i64, String), (i64, String)> = match cmd {
        EVTCHNOP_BIND_VIRQ => (|| {
            let b = rw(12).map_err(|e| (e, String::new()))?;
            let (virq, vcpu) = (le_u32(&b, 0), le_u32(&b, 4));
            let port = state
                .evtchn
                .bind_virq(virq, vcpu)
                .map_err(|e| (e, format!("bind_virq({virq}, vcpu {vcpu})")))?;
            env.write_field(arg, 8, &port.to_le_bytes())
                .map_err(|e| (e, String::new()))?;
            Ok((0, format!("bind_virq({virq}, vcpu {vcpu}) -> port {port}")))
        })(),
        EVTCHNOP_BIND_IPI => (|| {
            let vcpu = env.read_u32(arg).map_err(|e| (e, String::new()))?;
            let port = state
                .evtchn
                .bind_ipi(vcpu)
                .map_err(|e| (e, format!("bind_ipi(vcpu {vcpu})")))?;
            env.write_field(arg, 4, &port.to_le_bytes())
                .map_err(|e| (e, String::new()))?;
            Ok((0, format!("bind_ipi(vcpu {vcpu}) -> port {port}")))
        })(),
        EVTCHNOP_BIND_VCPU => (|| {
            let b = rw(8).map_err(|e| (e, String::new()))?;
            let (port, vcpu) = (le_u32(&b, 0), le_u32(&b, 4));
            state
                .evtchn
                .bind_vcpu(port, vcpu)
                .map_err(|e| (e, format!("bind_vcpu(port {port}, vcpu {vcpu})")))?;
            Ok((0, format!("bind_vcpu(port {port}, vcpu {vcpu})")))
        })(),
        EVTCHNOP_CLOSE => (|| {
            let port = env.read_u32(arg).map_err(|e| (e, String::new()))?;
            state
                .evtchn
                .close(port)
                .map_err(|e| (e, format!("close({port})")))?;
            if let Some(si) = state.shared_info {
                let _ = shinfo::test_and_clear(
                    env.mem,
                    si + SI_EVTCHN_PENDING + u64::from(port / 64) * 8,
                    port % 64,
                );
            }
            Ok((0, format!("close({port})")))
        })(),
        EVTCHNOP_SEND => (|| {
            // IPI: the port itself; interdomain (loopback): the other end; unbound: dropped.
            // Native: KVM_SIGNAL_MSI of the upcall vector to the notified vCPU's LAPIC.
            let port = env.read_u32(arg).map_err(|e| (e, String::new()))?;
            let target = state
                .evtchn
                .send_target(port)
                .map_err(|e| (e, format!("send({port})")))?;
            let Some((to, vcpu)) = target else {
                return Ok((0, format!("send({port}) unbound -> dropped")));
            };
            let vec = state.set_pending(env.mem, to);
            let how = match vec {
                Some(v) => format!("KVM_SIGNAL_MSI vector {v:#x} to vCPU {vcpu}"),
                None => "pending bits only".into(),
            };
            Ok((0, format!("send({port}) -> port {to}: {how}")))
        })(),
        EVTCHNOP_ALLOC_UNBOUND => (|| {
            // struct evtchn_alloc_unbound { domid_t dom, remote_dom; evtchn_port_t port; }
            // The guest is this adapter's only domain: both must name it.
            let b = rw(4).map_err(|e| (e, String::new()))?;
            let (dom, remote) = (
                u16::from_le_bytes([b[0], b[1]]),
                u16::from_le_bytes([b[2], b[3]]),
            );
            if !is_self(dom) || !is_self(remote) {
                return Err((
                    ESRCH,
                    format!("alloc_unbound(dom {dom:#x}, remote {remote:#x})"),
                ));
            }
            let port = state
                .evtchn
                .alloc_unbound()
                .map_err(|e| (e, "alloc_unbound".into()))?;
            env.write_field(arg, 4, &port.to_le_bytes())
                .map_err(|e| (e, String::new()))?;
            Ok((0, format!("alloc_unbound(self) -> port {port}")))
        })(),
        EVTCHNOP_BIND_INTERDOMAIN => (|| {
            // struct evtchn_bind_interdomain { domid_t remote_dom; evtchn_port_t
            // remote_port; evtchn_port_t local_port; }: to DOMID_SELF, a loopback pair.
            let b = rw(8).map_err(|e| (e, String::new()))?;
            let (remote, rport) = (u16::from_le_bytes([b[0], b[1]]), le_u32(&b, 4));
            if !is_self(remote) {
                return Err((ESRCH, format!("bind_interdomain(dom {remote:#x})")));
            }
            let port = state
                .evtchn
                .bind_interdomain(rport)
                .map_err(|e| (e, format!("bind_interdomain(self, port {rport})")))?;
            env.write_field(arg, 8, &port.to_le_bytes())
                .map_err(|e| (e, String::new()))?;
            Ok((
                0,
                format!("bind_interdomain(self, port {rport}) -> port {port} (loopback pair)"),
            ))
        })(),
        EVTCHNOP_UNMASK => (|| {
            let port = env.read_u32(arg).map_err(|e| (e, String::new()))?;
            let vec = state
                .unmask(env.mem, port)
                .map_err(|e| (e, format!("unmask({port})")))?;
            Ok((0, format!("unmask({port}) -> upcall {vec:?}")))
        })(),
        EVTCHNOP_STATUS => (|| {
            // struct evtchn_status { domid_t dom; evtchn_port_t port; uint32_t status;
            // uint32_t vcpu; union { ... uint32_t virq; } u; }
            let b = rw(8).map_err(|e| (e, String::new()))?;
            let dom = u16::from_le_bytes([b[0], b[1]]);
            let port = le_u32(&b, 4);
            if !is_self(dom) {
                return Err((ESRCH, format!("status(dom {dom:#x})")));
            }
            let (st, vcpu, u) = state
                .evtchn
                .status(port)
                .map_err(|e| (e, format!("status({port})")))?;
            let mut o = Vec::new();
            o.extend_from_slice(&st.to_le_bytes());
            o.extend_from_slice(&vcpu.to_le_bytes());
            o.extend_from_slice(&u[0].to_le_bytes());
            o.extend_from_slice(&u[1].to_le_bytes());
            env.write_field(arg, 8, &o)
                .map_err(|e| (e, String::new()))?;
            Ok((0, format!("status({port}) -> {st}, vcpu {vcpu}")))
        })(),
        EVTCHNOP_INIT_CONTROL => Err((
            ENOSYS,
            "init_control (FIFO ABI not offered: 2-level)".into(),
        )),
        c => Err((ENOSYS, format!("{c}"))),
    };
    match r {
        Ok((rc, what)) => out(rc, format!("event_channel_op({what}) -> {}", errname(rc))),
        Err((rc, what)) => out(
            rc,
            format!("event_channel_op({cmd} {what}) -> {}", errname(rc)),
        ),
    }
}

/// Whether a domid names the guest's own domain (DOMID_SELF or its id).
fn is_self(dom: u16) -> bool {
    dom == DOMID_SELF || dom == OWN_DOMID
}
