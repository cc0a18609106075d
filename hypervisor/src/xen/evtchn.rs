//! Event channels, 2-level ABI: the port table (what each port is bound to and which vCPU
//! it notifies) and delivery into shared_info (pending bit, mask bit, the vCPU's selector
//! word and `evtchn_upcall_pending`, then the upcall vector through the in-kernel LAPIC).
//!
//! Error codes follow Xen's `common/event_channel.c`: a port beyond the table or a closed
//! port is -EINVAL, a vCPU that does not exist is -ENOENT, a VIRQ bound twice on one vCPU
//! is -EEXIST, no free port is -ENOSPC.
use crate::abi::xen::*;

/// What a port is bound to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bind {
    /// Closed (free).
    Free,
    /// A virtual IRQ.
    Virq(u32),
    /// An inter-processor event (EVTCHNOP_send on it notifies its vCPU).
    Ipi,
    /// EVTCHNOP_alloc_unbound: waiting for the remote domain (this one: the guest is alone,
    /// so only DOMID_SELF) to bind to it; a send on it is dropped, as Xen does.
    Unbound,
    /// EVTCHNOP_bind_interdomain to a port of this domain: a loopback pair, a send on one
    /// end sets the other pending.
    Interdomain(u32),
}

/// One port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Port {
    /// What it is bound to.
    pub bind: Bind,
    /// The vCPU it notifies.
    pub vcpu: u32,
}

/// Whether `virq` is per-vCPU (Xen's `virq_is_global` is false for these).
pub fn virq_per_vcpu(virq: u32) -> bool {
    matches!(virq, VIRQ_TIMER | VIRQ_DEBUG | VIRQ_XENOPROF | VIRQ_XENPMU)
}

/// The port table. Port 0 is reserved (never allocated), as in Xen.
#[derive(Clone, Debug)]
pub struct Table {
    ports: Vec<Port>,
    vcpus: u32,
}

impl Table {
    /// An empty table for a guest with `vcpus` vCPUs.
    pub fn new(vcpus: u32) -> Self {
        Table {
            ports: Vec::new(),
            vcpus,
        }
    }

    fn check_vcpu(&self, vcpu: u32) -> Result<(), i64> {
        if vcpu < self.vcpus {
            Ok(())
        } else {
            Err(ENOENT)
        }
    }

    /// The port's binding; -EINVAL when the port is beyond the table.
    pub fn get(&self, port: u32) -> Result<Port, i64> {
        if port == 0 || port >= EVTCHN_2L_NR_CHANNELS {
            return Err(EINVAL);
        }
        Ok(self.ports.get(port as usize).copied().unwrap_or(Port {
            bind: Bind::Free,
            vcpu: 0,
        }))
    }

    fn alloc(&mut self, p: Port) -> Result<u32, i64> {
        let free = (1..self.ports.len()).find(|&i| self.ports[i].bind == Bind::Free);
        let i = match free {
            Some(i) => i,
            None => {
                let i = self.ports.len().max(1);
                if i >= EVTCHN_2L_NR_CHANNELS as usize {
                    return Err(ENOSPC);
                }
                self.ports.resize(
                    i + 1,
                    Port {
                        bind: Bind::Free,
                        vcpu: 0,
                    },
                );
                i
            }
        };
        self.ports[i] = p;
        Ok(i as u32)
    }

    /// EVTCHNOP_bind_virq.
    pub fn bind_virq(&mut self, virq: u32, vcpu: u32) -> Result<u32, i64> {
        if virq >= NR_VIRQS {
            return Err(EINVAL);
        }
        if !virq_per_vcpu(virq) && vcpu != 0 {
            // Global VIRQs are bound on vCPU 0 (and moved with EVTCHNOP_bind_vcpu).
            return Err(EINVAL);
        }
        self.check_vcpu(vcpu)?;
        let taken = self
            .ports
            .iter()
            .any(|p| p.bind == Bind::Virq(virq) && (p.vcpu == vcpu || !virq_per_vcpu(virq)));
        if taken {
            return Err(EEXIST);
        }
        self.alloc(Port {
            bind: Bind::Virq(virq),
            vcpu,
        })
    }

    /// EVTCHNOP_bind_ipi.
    pub fn bind_ipi(&mut self, vcpu: u32) -> Result<u32, i64> {
        self.check_vcpu(vcpu)?;
        self.alloc(Port {
            bind: Bind::Ipi,
            vcpu,
        })
    }

    /// EVTCHNOP_alloc_unbound (the remote domain is this one: the caller checked it).
    pub fn alloc_unbound(&mut self) -> Result<u32, i64> {
        self.alloc(Port {
            bind: Bind::Unbound,
            vcpu: 0,
        })
    }

    /// EVTCHNOP_bind_interdomain to `remote` of this domain: it must be unbound (Xen:
    /// -EINVAL otherwise); both ends become interdomain, each naming the other.
    pub fn bind_interdomain(&mut self, remote: u32) -> Result<u32, i64> {
        if self.get(remote)?.bind != Bind::Unbound {
            return Err(EINVAL);
        }
        let local = self.alloc(Port {
            bind: Bind::Interdomain(remote),
            vcpu: 0,
        })?;
        self.ports[remote as usize].bind = Bind::Interdomain(local);
        Ok(local)
    }

    /// EVTCHNOP_bind_vcpu: global VIRQs and unbound / interdomain ports move (Xen: IPIs and
    /// per-vCPU VIRQs are -EINVAL).
    pub fn bind_vcpu(&mut self, port: u32, vcpu: u32) -> Result<(), i64> {
        let p = self.get(port)?;
        self.check_vcpu(vcpu)?;
        match p.bind {
            Bind::Unbound | Bind::Interdomain(_) => {
                self.ports[port as usize].vcpu = vcpu;
                Ok(())
            }
            Bind::Virq(v) if !virq_per_vcpu(v) => {
                self.ports[port as usize].vcpu = vcpu;
                Ok(())
            }
            _ => Err(EINVAL),
        }
    }

    /// EVTCHNOP_close; the other end of an interdomain pair goes back to unbound (Xen's
    /// `evtchn_close`).
    pub fn close(&mut self, port: u32) -> Result<(), i64> {
        match self.get(port)?.bind {
            Bind::Free => Err(EINVAL),
            Bind::Interdomain(peer) => {
                if let Some(p) = self.ports.get_mut(peer as usize) {
                    p.bind = Bind::Unbound;
                }
                self.ports[port as usize].bind = Bind::Free;
                Ok(())
            }
            _ => {
                self.ports[port as usize].bind = Bind::Free;
                Ok(())
            }
        }
    }

    /// The port a VIRQ is bound to on `vcpu`, if any.
    pub fn virq_port(&self, virq: u32, vcpu: u32) -> Option<u32> {
        self.ports
            .iter()
            .position(|p| p.bind == Bind::Virq(virq) && p.vcpu == vcpu)
            .map(|i| i as u32)
    }

    /// EVTCHNOP_send (Xen's `evtchn_send`): the port to set pending and the vCPU it
    /// notifies: an IPI port itself, an interdomain port's other end; `None` for an unbound
    /// port (the event is dropped, 0); closed and VIRQ ports are -EINVAL.
    pub fn send_target(&self, port: u32) -> Result<Option<(u32, u32)>, i64> {
        let p = self.get(port)?;
        match p.bind {
            Bind::Ipi => Ok(Some((port, p.vcpu))),
            Bind::Interdomain(peer) => Ok(Some((peer, self.get(peer)?.vcpu))),
            Bind::Unbound => Ok(None),
            _ => Err(EINVAL),
        }
    }

    /// EVTCHNOP_status: (status, vcpu, u words): the VIRQ; the remote domain of an
    /// unbound port; the remote domain and port of an interdomain one.
    pub fn status(&self, port: u32) -> Result<(u32, u32, [u32; 2]), i64> {
        let p = self.get(port)?;
        let dom = u32::from(OWN_DOMID);
        Ok(match p.bind {
            Bind::Free => (EVTCHNSTAT_CLOSED, 0, [0, 0]),
            Bind::Virq(v) => (EVTCHNSTAT_VIRQ, p.vcpu, [v, 0]),
            Bind::Ipi => (EVTCHNSTAT_IPI, p.vcpu, [0, 0]),
            Bind::Unbound => (EVTCHNSTAT_UNBOUND, p.vcpu, [dom, 0]),
            Bind::Interdomain(peer) => (EVTCHNSTAT_INTERDOMAIN, p.vcpu, [dom, peer]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_rules() {
        let mut t = Table::new(2);
        let timer0 = t.bind_virq(VIRQ_TIMER, 0).unwrap();
        assert_eq!(timer0, 1, "port 0 is reserved");
        assert_eq!(t.bind_virq(VIRQ_TIMER, 0), Err(EEXIST));
        assert_eq!(t.bind_virq(VIRQ_TIMER, 1), Ok(2));
        assert_eq!(t.bind_virq(VIRQ_TIMER, 2), Err(ENOENT));
        assert_eq!(t.bind_virq(NR_VIRQS, 0), Err(EINVAL));
        assert_eq!(t.bind_virq(2, 1), Err(EINVAL), "global VIRQ on vCPU 1");
        let con = t.bind_virq(2, 0).unwrap();
        assert_eq!(t.bind_vcpu(con, 1), Ok(()));
        assert_eq!(t.status(con), Ok((EVTCHNSTAT_VIRQ, 1, [2, 0])));
        assert_eq!(t.bind_vcpu(timer0, 1), Err(EINVAL));
        assert_eq!(t.bind_vcpu(con, 9), Err(ENOENT));
        let ipi = t.bind_ipi(1).unwrap();
        assert_eq!(t.send_target(ipi), Ok(Some((ipi, 1))));
        assert_eq!(t.send_target(timer0), Err(EINVAL));
        assert_eq!(t.send_target(4000), Err(EINVAL));
        assert_eq!(t.send_target(EVTCHN_2L_NR_CHANNELS), Err(EINVAL));
        assert_eq!(t.close(ipi), Ok(()));
        assert_eq!(t.close(ipi), Err(EINVAL));
        assert_eq!(t.status(ipi), Ok((EVTCHNSTAT_CLOSED, 0, [0, 0])));
        assert_eq!(t.bind_ipi(0), Ok(ipi), "closed ports are reused");
        assert_eq!(t.virq_port(VIRQ_TIMER, 1), Some(2));
        assert_eq!(t.bind_ipi(7), Err(ENOENT));
    }

    #[test]
    fn loopback_pair() {
        let mut t = Table::new(2);
        let a = t.alloc_unbound().unwrap();
        assert_eq!(t.status(a), Ok((EVTCHNSTAT_UNBOUND, 0, [0, 0])));
        assert_eq!(
            t.send_target(a),
            Ok(None),
            "a send on an unbound port is dropped"
        );
        let ipi = t.bind_ipi(0).unwrap();
        assert_eq!(t.bind_interdomain(ipi), Err(EINVAL), "not unbound");
        assert_eq!(t.bind_interdomain(0), Err(EINVAL));
        assert_eq!(t.bind_interdomain(4096), Err(EINVAL));
        let b = t.bind_interdomain(a).unwrap();
        assert_eq!(t.bind_interdomain(a), Err(EINVAL), "already bound");
        assert_eq!(t.status(a), Ok((EVTCHNSTAT_INTERDOMAIN, 0, [0, b])));
        assert_eq!(t.status(b), Ok((EVTCHNSTAT_INTERDOMAIN, 0, [0, a])));
        assert_eq!(t.bind_vcpu(b, 1), Ok(()));
        assert_eq!(t.send_target(a), Ok(Some((b, 1))));
        assert_eq!(t.send_target(b), Ok(Some((a, 0))));
        assert_eq!(t.close(b), Ok(()));
        assert_eq!(
            t.status(a),
            Ok((EVTCHNSTAT_UNBOUND, 0, [0, 0])),
            "back to unbound"
        );
        assert_eq!(t.send_target(b), Err(EINVAL));
    }

    #[test]
    fn table_fills_up() {
        let mut t = Table::new(1);
        for i in 1..EVTCHN_2L_NR_CHANNELS {
            assert_eq!(t.bind_ipi(0), Ok(i));
        }
        assert_eq!(t.bind_ipi(0), Err(ENOSPC));
    }
}
