//! Exit dispatch: what each kind of vCPU exit does.
//!
//! Exit rules (every exit ends in one of these):
//! - Port I/O: the hypercall ports first, then the port bus ([`crate::devices::port_bus`]).
//!   COM1 (0x3f8..=0x3ff, [`crate::devices::legacy::serial`]) is the 8250 UART (a 16/32-bit
//!   access is one byte access per port, as on the ISA bus); port 0xf4
//!   ([`crate::devices::legacy::status`]) takes a status (any width, zero-extended; 32-bit
//!   is the convention) and ends the VM with it; ports 0xf6/0xf7 are the Hyper-V/Xen
//!   hypercall ports (see [`crate::hyperv`], [`crate::xen`]; the origin check is in
//!   [`crate::hypercall`]). Every other port is unclaimed: reads return all-ones, writes are
//!   dropped (an ISA bus with nothing attached; Linux probes such ports), counted and logged
//!   at debug level.
//! - MMIO: devices on the MMIO bus get the access; unclaimed addresses read all-ones and
//!   drop writes, counted and logged, like unclaimed ports.
//! - MSR exits (user-space MSR filter over 0x40000000..=0x400002FF): the synthetic MSRs of the
//!   chosen interface; anything else in that range raises #GP. Hyper-V MSRs are gated by the
//!   VM's privileges ([`crate::hv_config`]); a RESET write ends the VM as `VmEnd::Reset`, a
//!   CRASH_CTL notify as a crash whose reason starts "guest crash" and lists P0..P4. A write
//!   to EOM, SCONTROL, SIMP or a SINT re-delivers queued SynIC messages; a STIMER write
//!   (re)arms the VP's timers ([`crate::hyperv::synic`], [`crate::hyperv::stimer`]). The
//!   APIC-access MSRs 0x40000070..=0x40000072 are completed with the vCPU fd after the exit
//!   (`crate::apic_msr`).
//! - HLT is handled by the in-kernel LAPIC. A watchdog kicks the vCPUs (signal) on a
//!   back-off schedule (at 0.2 ms, then every 0.1 ms doubling to 10 ms) and asks each for its
//!   state (these are also the time samples behind `RunOutcome::ring0_share`): when every
//!   vCPU is halted with RFLAGS.IF = 0 or waits for a SIPI, nothing can wake the guest and the
//!   VM ends as a crash ("halted with interrupts disabled"); see [`crate::run`]. Between
//!   probes it reads each vCPU's "blocking" statistic (KVM binary stats, no kick): when all
//!   are blocked in the kernel, it probes at once.
//! - KVM_EXIT_INTERNAL_ERROR with `VmConfig::nested_fixes`: an emulation failure on one of
//!   the instructions [`crate::platform`] lists is emulated by the VMM and the guest goes on.
//! - KVM_EXIT_SHUTDOWN (triple fault), KVM_EXIT_INTERNAL_ERROR (emulation failure),
//!   KVM_EXIT_FAIL_ENTRY, KVM_RUN errors and any unexpected exit end the VM as a crash with a
//!   register dump. KVM_EXIT_SYSTEM_EVENT shutdown/reset end it as a shutdown.
//! - KVM capabilities used: IRQCHIP, PIT2, IRQFD, SYNC_REGS (regs + sregs: hypercalls read
//!   and write registers through the kvm_run area), X86_USER_SPACE_MSR + X86_MSR_FILTER (not
//!   with `Interface::None`); a host without them gets an `Error::Config`/`Error::Kvm` from
//!   `Vm::new`, never a guest-visible difference.
//! - The wall-clock timeout ends the VM as `Timeout`. Ending the VM stops every vCPU thread
//!   (signal kick until each has left KVM_RUN) and joins them before `run` returns.
//! - The console (UART, HvCallPostDebugData, Xen console_io) never blocks a vCPU in the
//!   caller's writer: a bounded buffer and a `vm-console` writer thread; a stalled writer
//!   loses output (counted in `RunOutcome::console_dropped`) and cannot hold `run` past its
//!   timeout by more than 0.5 s (rules in the `console` module, `src/console.rs`).
use crate::abi::hv as hv_abi;
use crate::abi::{xen::MSR_PAGE_INDEX_MASK, PAGE_SIZE};
use crate::apic_msr;
use crate::devices::legacy::status::le_value;
use crate::devices::port_bus::{PortRead, PortWrite};
use crate::hyperv::{self, MsrWrite, Partition};
use crate::layout::{HV_HYPERCALL_PORT, XEN_HYPERCALL_PORT};
use crate::state::{lock, Shared};
use crate::{xen, VmEnd};
use kvm_bindings::{KVM_SYSTEM_EVENT_RESET, KVM_SYSTEM_EVENT_SHUTDOWN};
use kvm_ioctls::{VcpuExit, VcpuFd};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend};

/// What handling one exit decided.
pub(crate) enum Next {
    /// Enter the guest again.
    Continue,
    /// End the VM this way.
    End(VmEnd),
    /// End as a crash with this reason and the vCPU's register dump.
    Crash(String),
}

/// A pending action that needs the vCPU fd (so done after the exit's borrow ends).
pub(crate) enum Pending {
    /// Nothing.
    None,
    /// A Hyper-V hypercall ([`crate::hypercall::hv_call`]).
    HvCall,
    /// A Xen hypercall ([`crate::hypercall::xen_call`]).
    XenCall,
    /// An OUT to a hypercall port of an interface the guest does not have.
    BadHypercallPort(u16),
    /// KVM_EXIT_INTERNAL_ERROR, described from the run structure.
    InternalError,
    /// A Hyper-V APIC-access MSR ([`crate::apic_msr`]), done with the vCPU fd.
    ApicMsr(crate::apic_msr::ApicMsr),
}

/// Handles one exit of vCPU `id`.
pub(crate) fn handle_exit(
    id: usize,
    exit: VcpuExit<'_>,
    shared: &Shared,
    pending: &mut Pending,
) -> Next {
    let interface = shared.paravirt.interface;
    match exit {
        VcpuExit::IoOut(port, data) => {
            match port {
                HV_HYPERCALL_PORT if interface.has_hyperv() => *pending = Pending::HvCall,
                XEN_HYPERCALL_PORT if interface.has_xen() => *pending = Pending::XenCall,
                HV_HYPERCALL_PORT | XEN_HYPERCALL_PORT => {
                    *pending = Pending::BadHypercallPort(port)
                }
                p => return port_write(shared, p, data),
            }
            Next::Continue
        }
        VcpuExit::IoIn(port, data) => {
            let claimed = match shared.devices.ports.find(port) {
                Some((dev, off)) => lock(dev).read(off, data) == PortRead::Done,
                None => false,
            };
            if !claimed {
                data.fill(0xff);
                shared.unclaimed("port read", u64::from(port), 0);
            }
            Next::Continue
        }
        VcpuExit::MmioRead(addr, data) => {
            match shared.devices.mmio.find(addr) {
                Some((dev, off)) => lock(dev).read(off, data),
                None => {
                    data.fill(0xff);
                    shared.unclaimed("MMIO read", addr, 0);
                }
            }
            Next::Continue
        }
        VcpuExit::MmioWrite(addr, data) => {
            match shared.devices.mmio.find(addr) {
                Some((dev, off)) => lock(dev).write(off, data),
                None => shared.unclaimed("MMIO write", addr, le_value(data)),
            }
            Next::Continue
        }
        VcpuExit::X86Rdmsr(m) if interface.has_hyperv() && apic_msr::is_apic_msr(m.index) => {
            if apic_msr::allowed(shared) {
                *pending = Pending::ApicMsr(apic_msr::ApicMsr {
                    msr: m.index,
                    write: None,
                });
            } else {
                *m.error = 1;
            }
            Next::Continue
        }
        VcpuExit::X86Wrmsr(m) if interface.has_hyperv() && apic_msr::is_apic_msr(m.index) => {
            if apic_msr::allowed(shared) {
                *pending = Pending::ApicMsr(apic_msr::ApicMsr {
                    msr: m.index,
                    write: Some(m.data),
                });
            } else {
                *m.error = 1;
            }
            Next::Continue
        }
        VcpuExit::X86Rdmsr(m) => {
            match rdmsr(id, shared, m.index) {
                Some(v) => *m.data = v,
                None => *m.error = 1,
            }
            Next::Continue
        }
        VcpuExit::X86Wrmsr(m) => match hv_wrmsr(id, shared, m.index, m.data) {
            HvWrite::NotHv => {
                if !wrmsr(shared, m.index, m.data) {
                    *m.error = 1;
                }
                Next::Continue
            }
            HvWrite::Ok => Next::Continue,
            HvWrite::Gp => {
                *m.error = 1;
                Next::Continue
            }
            HvWrite::End(next) => next,
        },
        VcpuExit::Hlt => Next::Crash("HLT exit to user space".into()),
        VcpuExit::Shutdown => Next::Crash("triple fault (KVM_EXIT_SHUTDOWN)".into()),
        VcpuExit::InternalError => {
            *pending = Pending::InternalError;
            Next::Continue
        }
        VcpuExit::FailEntry(reason, cpu) => Next::Crash(format!(
            "VM entry failed: hardware reason {reason:#x} on host CPU {cpu}"
        )),
        VcpuExit::SystemEvent(kind, _) => match kind {
            KVM_SYSTEM_EVENT_SHUTDOWN | KVM_SYSTEM_EVENT_RESET => Next::End(VmEnd::Shutdown),
            k => Next::Crash(format!("system event {k}")),
        },
        VcpuExit::Intr | VcpuExit::IrqWindowOpen => Next::Continue,
        other => Next::Crash(format!("unexpected exit {other:?}")),
    }
}

/// An OUT to a port on the port bus (or to nothing).
fn port_write(shared: &Shared, port: u16, data: &[u8]) -> Next {
    let Some((dev, off)) = shared.devices.ports.find(port) else {
        shared.unclaimed("port write", u64::from(port), le_value(data));
        return Next::Continue;
    };
    let r = lock(dev).write(off, data);
    match r {
        PortWrite::Done => {}
        PortWrite::PastEnd { from } => {
            // Bytes past the device's ports: one unclaimed byte write per port.
            for (i, b) in data.iter().enumerate().skip(from) {
                let p = port.wrapping_add(i as u16);
                shared.unclaimed("port write", u64::from(p), u64::from(*b));
            }
        }
        PortWrite::End(status) => return Next::End(VmEnd::Status(status)),
    }
    Next::Continue
}

/// KVM_EXIT_INTERNAL_ERROR: with [`crate::VmConfig::nested_fixes`] an emulation failure on
/// an instruction [`crate::platform::emulate_failure`] knows is emulated by the VMM and the
/// guest continues; anything else (or without the fixes) ends the VM as a crash.
pub(crate) fn on_internal_error(vcpu: &mut VcpuFd, shared: &Shared) -> Next {
    if !shared.nested_fixes {
        return Next::Crash(internal_error(vcpu));
    }
    match crate::platform::emulate_failure(vcpu, &shared.mem) {
        Ok(_) => Next::Continue,
        Err(why) => Next::Crash(format!("{} ({why})", internal_error(vcpu))),
    }
}

/// Describes KVM_EXIT_INTERNAL_ERROR from the run structure's `internal` member.
pub(crate) fn internal_error(vcpu: &mut VcpuFd) -> String {
    let run = vcpu.get_kvm_run();
    // SAFETY: the last exit was KVM_EXIT_INTERNAL_ERROR, so `internal` is the active member
    // of the exit union; it is plain old data.
    let internal = unsafe { run.__bindgen_anon_1.internal };
    let n = (internal.ndata as usize).min(internal.data.len());
    let what = match internal.suberror {
        kvm_bindings::KVM_INTERNAL_ERROR_EMULATION => "instruction emulation failure",
        kvm_bindings::KVM_INTERNAL_ERROR_SIMUL_EX => "exception while delivering an exception (simultaneous exceptions: the guest triple-faulted)",
        kvm_bindings::KVM_INTERNAL_ERROR_DELIVERY_EV => "event delivery failure",
        kvm_bindings::KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON => "unexpected exit reason",
        _ => "unknown suberror",
    };
    format!(
        "KVM internal error {}: {what}; data {:x?}",
        internal.suberror,
        &internal.data[..n]
    )
}

/// RDMSR in the filtered range: the chosen interface's synthetic MSRs; `None` raises #GP.
fn rdmsr(id: usize, shared: &Shared, msr: u32) -> Option<u64> {
    let pv = &shared.paravirt;
    if let Some((_, xen_msr)) = pv.interface.xen_base() {
        if msr == xen_msr {
            // Xen's hypercall MSR is write-only.
            return None;
        }
    }
    if pv.interface.has_hyperv() && Partition::handles(msr) {
        let hv = lock(&pv.hv);
        let env = hyperv::VpEnv {
            vp_index: id as u32,
            time_ref: time_ref(shared, &hv.tsc),
            vp_runtime: if msr == hv_abi::MSR_VP_RUNTIME {
                vp_runtime_100ns()
            } else {
                0
            },
        };
        return hv.rdmsr(msr, &env).ok();
    }
    None
}

/// Hyper-V reference time (100 ns units): from the guest TSC when its frequency is known
/// (the same formula as the reference TSC page, so both agree), else from VM creation.
fn time_ref(shared: &Shared, tsc: &hyperv::TscInfo) -> u64 {
    if tsc.hz == 0 {
        return (shared.created.elapsed().as_nanos() / 100) as u64;
    }
    let guest_tsc = hyperv::host_tsc().wrapping_add_signed(tsc.offset);
    tsc.ref_time(guest_tsc)
}

/// CPU time of the calling thread (the vCPU thread: KVM_RUN time counts) in 100 ns units,
/// from CLOCK_THREAD_CPUTIME_ID; 0 if unreadable.
fn vp_runtime_100ns() -> u64 {
    // The thread's CPU clock (a plain clock_gettime: allowed under the vCPU's seccomp
    // filter, where reading /proc/thread-self/schedstat would fail with ENOENT).
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID).map_or(0, |t| {
        (t.tv_sec() as u64)
            .saturating_mul(10_000_000)
            .saturating_add(t.tv_nsec() as u64 / 100)
    })
}

/// What a Hyper-V MSR write came to.
enum HvWrite {
    /// Not a Hyper-V MSR of this VM.
    NotHv,
    /// Done.
    Ok,
    /// #GP.
    Gp,
    /// The VM ends.
    End(Next),
}

/// WRMSR of a Hyper-V synthetic MSR (vCPU `id`).
fn hv_wrmsr(id: usize, shared: &Shared, msr: u32, value: u64) -> HvWrite {
    let pv = &shared.paravirt;
    if !(pv.interface.has_hyperv() && Partition::handles(msr)) {
        return HvWrite::NotHv;
    }
    if pv.interface.xen_base().is_some_and(|(_, x)| x == msr) {
        return HvWrite::NotHv;
    }
    let mem = &shared.mem;
    let page_ok = |gpa: u64| mem.check_range(GuestAddress(gpa), PAGE_SIZE as usize);
    let r = lock(&pv.hv).wrmsr(msr, value, id as u32, page_ok);
    let wrote = |r: Result<(), vm_memory::GuestMemoryError>| {
        if r.is_ok() {
            HvWrite::Ok
        } else {
            HvWrite::Gp
        }
    };
    if r.is_ok() && is_synic_msr(msr) {
        // EOM, or a SynIC register that may make a queued message deliverable now.
        pv.synic.retry(mem, id as u32);
    }
    if r.is_ok() && hyperv::stimer::is_stimer_msr(msr) {
        pv.synic.stimers_written(mem, id as u32);
    }
    match r {
        Ok(MsrWrite::Done) => HvWrite::Ok,
        Ok(MsrWrite::FillHypercallPage(gpa)) => {
            wrote(mem.write_slice(&hyperv::hypercall_page(), GuestAddress(gpa)))
        }
        Ok(MsrWrite::ZeroPage(gpa)) => {
            wrote(mem.write_slice(&[0u8; PAGE_SIZE as usize], GuestAddress(gpa)))
        }
        Ok(MsrWrite::TscPage(gpa, seq, scale, offset)) => {
            let mut page = [0u8; PAGE_SIZE as usize];
            page[..24].copy_from_slice(&hyperv::tsc_page(seq, scale, offset));
            wrote(mem.write_slice(&page, GuestAddress(gpa)))
        }
        Ok(MsrWrite::Reset) => HvWrite::End(Next::End(VmEnd::Reset)),
        Ok(MsrWrite::Crash(p)) => HvWrite::End(Next::Crash(hyperv::crash_reason(&p))),
        Err(_) => HvWrite::Gp,
    }
}

/// SCONTROL, SIMP, EOM and SINT0-15: writes after which queued SynIC messages are retried.
fn is_synic_msr(msr: u32) -> bool {
    matches!(
        msr,
        hv_abi::MSR_SCONTROL | hv_abi::MSR_SIMP | hv_abi::MSR_EOM | hv_abi::MSR_SINT0
            ..=hv_abi::MSR_SINT15
    )
}

/// WRMSR in the filtered range other than the Hyper-V MSRs ([`hv_wrmsr`]); `false` raises
/// #GP.
fn wrmsr(shared: &Shared, msr: u32, value: u64) -> bool {
    let mem = &shared.mem;
    let pv = &shared.paravirt;
    let page_ok = |gpa: u64| mem.check_range(GuestAddress(gpa), PAGE_SIZE as usize);
    if let Some((_, xen_msr)) = pv.interface.xen_base() {
        if msr == xen_msr {
            // Value: page GPA | page index (only page 0 exists).
            if value & MSR_PAGE_INDEX_MASK != 0 || !page_ok(value) {
                return false;
            }
            if mem
                .write_slice(&xen::hypercall_page(), GuestAddress(value))
                .is_err()
            {
                return false;
            }
            lock(&pv.xen).page_gpa = Some(value);
            return true;
        }
    }
    false
}
