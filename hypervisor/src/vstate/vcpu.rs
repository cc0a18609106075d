//! vCPUs: their creation (CPUID, LAPIC, entry registers), their threads, and the gate the
//! threads wait at between [`Vm::new`](crate::Vm::new) and [`Vm::run`](crate::Vm::run).
use crate::boot;
use crate::error::{kvm_err, Error};
use crate::exits::{handle_exit, on_internal_error, Next, Pending};
use crate::hypercall::{hv_call, inject_ud, xen_call};
use crate::regs::{dump_regs, fmt_regs, fmt_sregs};
use crate::state::{lock, Shared, ST_HALTED_IRQ, ST_HALTED_NOIRQ, ST_RUNNING, ST_WAIT_SIPI};
use crate::VmEnd;
use kvm_bindings::{
    CpuId, KVM_MP_STATE_HALTED, KVM_MP_STATE_INIT_RECEIVED, KVM_MP_STATE_UNINITIALIZED,
};
use kvm_ioctls::{SyncReg, VcpuFd, VmFd};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use vmm_sys_util::signal::{register_signal_handler, SIGRTMIN};

/// RFLAGS.IF (interrupts enabled).
const RFLAGS_IF: u64 = 1 << 9;
/// LAPIC register offset of LVT LINT0.
const APIC_LVT_LINT0: usize = 0x350;
/// LAPIC register offset of LVT LINT1.
const APIC_LVT_LINT1: usize = 0x360;
/// LVT delivery mode NMI (bits 10:8).
const APIC_MODE_NMI: u32 = 4;
/// LVT delivery mode ExtINT (bits 10:8).
const APIC_MODE_EXTINT: u32 = 7;
/// LVT delivery mode bits.
const APIC_MODE_MASK: u32 = 0x700;

/// Hand-off between `Vm::new`, `Vm::run` and the vCPU threads. The threads are started at the
/// end of `new`: a thread's start-up (mmap of its stack, 50-90 us here) overlapping the VM's
/// creation made KVM_X86_SET_MSR_FILTER and KVM_SET_USER_MEMORY_REGION 2x slower (probably
/// contention on the process's memory map, which both take); started last,
/// the spawn itself is cheaper too, and the thread's start-up overlaps the caller's call to
/// `run` (measured: `Vm::new` -0.09 ms, start to guest exit -5-10%). (Setting the vCPUs up
/// on those threads, concurrently with the kernel load, was tried twice: slower, KVM
/// serialises the work.)
#[derive(Default)]
pub(crate) struct Gate {
    pub(crate) st: Mutex<GateState>,
    cv: Condvar,
}

#[derive(Default)]
pub(crate) struct GateState {
    /// Set by `new`: each thread takes its vCPU once `go` is set.
    pub(crate) vcpus: Vec<Option<VcpuFd>>,
    /// Set by `run`: the threads enter their run loops.
    pub(crate) go: Option<Arc<Shared>>,
    /// Set when the VM is dropped (or `new` fails) before `run`: the threads end.
    abort: bool,
}

impl VcpuThreads {
    /// No threads yet, around `gate`.
    pub(crate) fn new(gate: Arc<Gate>) -> Self {
        VcpuThreads {
            gate,
            handles: Vec::new(),
        }
    }

    /// Starts vCPU thread `id`; it waits at the gate for `run`.
    pub(crate) fn spawn(&mut self, id: usize) -> Result<(), Error> {
        let g = self.gate.clone();
        let h = std::thread::Builder::new()
            .name(format!("vcpu{id}"))
            .spawn(move || vcpu_thread(id, g))
            .map_err(Error::Io)?;
        self.handles.push(h);
        Ok(())
    }
}

impl Gate {
    /// Changes the state and wakes every waiting thread.
    pub(crate) fn update(&self, f: impl FnOnce(&mut GateState)) {
        f(&mut lock(&self.st));
        self.cv.notify_all();
    }

    /// Waits until `f` returns `Some`; `None` when the start-up was aborted.
    fn wait<T>(&self, mut f: impl FnMut(&mut GateState) -> Option<T>) -> Option<T> {
        let mut g = lock(&self.st);
        loop {
            if g.abort {
                return None;
            }
            if let Some(v) = f(&mut g) {
                return Some(v);
            }
            g = self.cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// The vCPU threads between `Vm::new` and `Vm::run`; dropping this (a failed `new`, a VM
/// dropped without running) ends and joins them. Each thread returns its vCPU fd, closed by
/// the VM's teardown.
pub(crate) struct VcpuThreads {
    pub(crate) gate: Arc<Gate>,
    pub(crate) handles: Vec<JoinHandle<Option<VcpuFd>>>,
}

impl Drop for VcpuThreads {
    fn drop(&mut self) {
        if self.handles.is_empty() {
            return;
        }
        self.gate.update(|s| s.abort = true);
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// Installs the no-op handler of the signal that kicks a vCPU out of KVM_RUN (once).
pub(crate) fn kick_handler_install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        extern "C" fn noop(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {}
        if let Err(e) = register_signal_handler(SIGRTMIN(), noop) {
            tracing::warn!("cannot install the vCPU kick signal handler: {e}");
        }
    });
}

/// A vCPU thread: waits for `run` (which hands it its vCPU), runs it.
fn vcpu_thread(id: usize, gate: Arc<Gate>) -> Option<VcpuFd> {
    let (mut vcpu, shared) = gate.wait(|s| {
        let shared = s.go.clone()?;
        Some((s.vcpus.get_mut(id)?.take()?, shared))
    })?;
    if shared.control.seccomp {
        if let Err(e) = crate::seccomp::install(crate::seccomp::ThreadKind::Vcpu) {
            // Never run a guest unfiltered when the filter was asked for.
            shared.finish(VmEnd::Crash {
                reason: format!("vCPU {id}: {e}"),
                regs: String::new(),
            });
            return Some(vcpu);
        }
    }
    // A panic is a VMM bug: end the VM now, not at its timeout (or never).
    let s = shared.clone();
    let run = std::panic::AssertUnwindSafe(|| vcpu_loop(id, &mut vcpu, shared));
    if std::panic::catch_unwind(run).is_err() {
        s.finish(VmEnd::Crash {
            reason: format!("vCPU {id}: VMM bug: the vCPU thread panicked"),
            regs: String::new(),
        });
    }
    Some(vcpu)
}

/// Creates vCPU `id`: CPUID, LAPIC, and for the boot vCPU its entry registers.
pub(crate) fn vcpu_setup(
    vm: &VmFd,
    id: u8,
    table: &CpuId,
    entry: Option<boot::EntryMode>,
) -> Result<VcpuFd, Error> {
    let vcpu = vm
        .create_vcpu(u64::from(id))
        .map_err(kvm_err("KVM_CREATE_VCPU"))?;
    vcpu.set_cpuid2(table).map_err(kvm_err("KVM_SET_CPUID2"))?;
    setup_lapic(&vcpu)?;
    if let Some(mode) = entry {
        let mut sregs = vcpu.get_sregs().map_err(kvm_err("KVM_GET_SREGS"))?;
        let regs = boot::boot_regs(mode, &mut sregs);
        vcpu.set_sregs(&sregs).map_err(kvm_err("KVM_SET_SREGS"))?;
        vcpu.set_regs(&regs).map_err(kvm_err("KVM_SET_REGS"))?;
    }
    Ok(vcpu)
}

/// LINT0 = ExtINT (legacy PIC), LINT1 = NMI, as a BIOS leaves them.
fn setup_lapic(vcpu: &VcpuFd) -> Result<(), Error> {
    let mut lapic = vcpu.get_lapic().map_err(kvm_err("KVM_GET_LAPIC"))?;
    let set = |regs: &mut [libc::c_char; 1024], off: usize, mode: u32| {
        let mut b = [0u8; 4];
        for (i, x) in b.iter_mut().enumerate() {
            *x = regs[off + i] as u8;
        }
        let v = (u32::from_le_bytes(b) & !APIC_MODE_MASK) | (mode << 8);
        for (i, x) in v.to_le_bytes().iter().enumerate() {
            regs[off + i] = *x as libc::c_char;
        }
    };
    set(&mut lapic.regs, APIC_LVT_LINT0, APIC_MODE_EXTINT);
    set(&mut lapic.regs, APIC_LVT_LINT1, APIC_MODE_NMI);
    vcpu.set_lapic(&lapic).map_err(kvm_err("KVM_SET_LAPIC"))
}

/// Runs vCPU `id` until the VM stops: KVM_RUN, exit dispatch, watchdog probes.
fn vcpu_loop(id: usize, vcpu: &mut VcpuFd, shared: Arc<Shared>) {
    shared.mark(id, "thread");
    shared.vp_requests.register_thread(id);
    let mut first = true;
    let mut ended = None;
    // Whether the kvm_run sync area holds the registers as of the last exit.
    let mut synced = false;
    let mut last_round = 0u64;
    vcpu.set_sync_valid_reg(SyncReg::Register);
    vcpu.set_sync_valid_reg(SyncReg::SystemRegister);
    loop {
        if shared.stopping() {
            break;
        }
        let mut pending = Pending::None;
        if first {
            shared.mark(id, "kvm_run");
        }
        match shared.vp_requests.enter(id, vcpu, synced) {
            Ok(true) => shared.count("vp-tlb-flush-done"),
            Ok(false) => {}
            Err(e) => {
                shared.vp_requests.leave(id);
                ended = Some(VmEnd::Crash {
                    reason: format!("vCPU {id}: {e}"),
                    regs: dump_regs(vcpu),
                });
                break;
            }
        }
        let r = vcpu.run();
        shared.vp_requests.leave(id);
        // KVM stores the sync registers on every return from KVM_RUN, errors included.
        synced = true;
        if first {
            shared.mark(id, "first_exit");
            first = false;
        }
        let next = match r {
            Ok(exit) => handle_exit(id, exit, &shared, &mut pending),
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {
                let round = shared.control.probe_round.load(Ordering::SeqCst);
                if round != last_round {
                    last_round = round;
                    let st = liveness(vcpu);
                    shared.control.vcpu_state[id].store((round << 2) | st, Ordering::SeqCst);
                    if st == ST_RUNNING {
                        // A time sample of the privilege level (KVM refreshes the sync area
                        // on every return from KVM_RUN, interrupted ones included).
                        let cpl = vcpu.sync_regs().sregs.cs.selector & 3;
                        shared.stats.samples.fetch_add(1, Ordering::Relaxed);
                        if cpl == 0 {
                            shared.stats.samples_ring0.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                Next::Continue
            }
            Err(e) => Next::Crash(format!("KVM_RUN failed: {e}")),
        };
        let next = match (next, pending) {
            (Next::Continue, Pending::HvCall) => hv_call(id, vcpu, &shared),
            (Next::Continue, Pending::XenCall) => xen_call(id, vcpu, &shared),
            (Next::Continue, Pending::InternalError) => on_internal_error(vcpu, &shared),
            (Next::Continue, Pending::ApicMsr(a)) => {
                crate::apic_msr::complete(id, vcpu, &shared, a)
            }
            (Next::Continue, Pending::BadHypercallPort(port)) => inject_ud(
                vcpu,
                &format!("OUT to hypercall port {port:#x} outside its page"),
            ),
            (n, _) => n,
        };
        match next {
            Next::Continue => {}
            Next::End(end) => {
                ended = Some(end);
                break;
            }
            Next::Crash(reason) => {
                let regs = dump_regs(vcpu);
                ended = Some(VmEnd::Crash {
                    reason: format!("vCPU {id}: {reason}"),
                    regs,
                });
                break;
            }
        }
    }
    if ended.is_some() {
        shared.control.stop.store(true, Ordering::SeqCst);
    }
    shared.mark(id, "loop_end");
    // From the sync area when it is current: two register ioctls cost ~15 us here, on the way
    // out of every VM.
    lock(&shared.stats.final_regs)[id] = if synced {
        let sync = vcpu.sync_regs();
        format!("{}{}", fmt_regs(&sync.regs), fmt_sregs(&sync.sregs))
    } else {
        dump_regs(vcpu)
    };
    shared.mark(id, "regs");
    // Record the end (if this vCPU ended the VM) and count out under the `end` lock, with one
    // wake-up of the controller (each costs ~10-20 us here), so it cannot miss it.
    let mut e = lock(&shared.control.end);
    if let Some(end) = ended {
        e.get_or_insert(end);
    }
    shared.control.exited.fetch_add(1, Ordering::SeqCst);
    shared.control.end_cv.notify_all();
}

/// The vCPU's state for a watchdog probe (one of the `ST_*` constants).
fn liveness(vcpu: &VcpuFd) -> u64 {
    let Ok(mp) = vcpu.get_mp_state() else {
        return ST_RUNNING;
    };
    match mp.mp_state {
        KVM_MP_STATE_HALTED => match vcpu.get_regs() {
            Ok(r) if r.rflags & RFLAGS_IF == 0 => ST_HALTED_NOIRQ,
            Ok(_) => ST_HALTED_IRQ,
            Err(_) => ST_RUNNING,
        },
        KVM_MP_STATE_UNINITIALIZED | KVM_MP_STATE_INIT_RECEIVED => ST_WAIT_SIPI,
        _ => ST_RUNNING,
    }
}
