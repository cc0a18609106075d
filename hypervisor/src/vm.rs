//! The VM: KVM objects, vCPU threads and exit handling.
//!
//! Exit rules (every exit ends in one of these):
//! - Port I/O: COM1 (0x3f8..=0x3ff) is the 8250 UART (a 16/32-bit access is one byte access
//!   per port, as on the ISA bus); port 0xf4 takes a status (any width,
//!   zero-extended; 32-bit is the convention) and ends the VM with it; ports 0xf6/0xf7 are
//!   the Hyper-V/Xen hypercall ports (see [`crate::hyperv`], [`crate::xen`]). Every other
//!   port is unclaimed: reads return all-ones, writes are dropped (an ISA bus with nothing
//!   attached; Linux probes such ports), counted and logged at debug level.
//! - MMIO: devices on the MMIO bus get the access; unclaimed addresses read all-ones and
//!   drop writes, counted and logged, like unclaimed ports.
//! - MSR exits (user-space MSR filter over 0x40000000..=0x400002FF): the synthetic MSRs of the
//!   chosen interface; anything else in that range raises #GP.
//! - HLT is handled by the in-kernel LAPIC. A watchdog kicks the vCPUs (signal) on a
//!   back-off schedule (at 0.2 ms, then every 0.1 ms doubling to 10 ms) and asks each for its
//!   state (these are also the time samples behind `RunOutcome::ring0_share`): when every
//!   vCPU is halted with RFLAGS.IF = 0 or waits for a SIPI, nothing can wake the guest and the
//!   VM ends as a crash ("halted with interrupts disabled"). Between probes it reads each
//!   vCPU's "blocking" statistic (KVM binary stats, no kick): when all are blocked in the
//!   kernel, it probes at once.
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
use crate::boot;
use crate::bus::MmioBus;
use crate::console::Console;
use crate::hyperv::{self, MsrWrite, Partition};
use crate::layout::*;
use crate::pagewalk::{self, PagingMode};
use crate::xen::{self, XenEnd, XenState};
use crate::{cpuid, kvm_err, Error, Interface, RunOutcome, VmConfig, VmEnd};
use kvm_bindings::{
    kvm_enable_cap, kvm_pit_config, kvm_userspace_memory_region, CpuId, KVM_MAX_CPUID_ENTRIES,
    KVM_MP_STATE_HALTED, KVM_MP_STATE_INIT_RECEIVED, KVM_MP_STATE_UNINITIALIZED,
    KVM_MSR_EXIT_REASON_FILTER, KVM_PIT_SPEAKER_DUMMY, KVM_SYSTEM_EVENT_RESET,
    KVM_SYSTEM_EVENT_SHUTDOWN,
};
use kvm_ioctls::{
    Cap, Kvm, MsrFilterDefaultAction, MsrFilterRange, MsrFilterRangeFlags, SyncReg, VcpuExit,
    VcpuFd, VmFd,
};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use vm_memory::{
    Address, Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion,
    MemoryRegionAddress,
};
use vm_superio::serial::NoEvents;
use vm_superio::{Serial, Trigger};
use vmm_sys_util::eventfd::EventFd;
use vmm_sys_util::signal::{register_signal_handler, Killable, SIGRTMIN};

/// The user-space MSR filter range: Hyper-V synthetic MSRs and Xen's MSR at 0x40000200.
const MSR_FILTER_BASE: u32 = 0x4000_0000;
const MSR_FILTER_COUNT: u32 = 0x300;
/// The watchdog's first probe, after `run` starts. A vCPU's first KVM_RUN lasts ~100-150 us
/// here (the first entry's set-up); a probe (kick) during it costs ~30-50 us, so the first
/// one waits until a guest that halts at once has halted. Then every PROBE_FIRST_INTERVAL,
/// doubling.
const PROBE_FIRST: Duration = Duration::from_micros(200);
const PROBE_FIRST_INTERVAL: Duration = Duration::from_micros(100);
/// Gap between two reads of the vCPUs' "blocking" statistics during the first STATS_FAST_FOR
/// of a run (then doubling up to PROBE_MAX_INTERVAL): one pread per vCPU, no kick.
const STATS_INTERVAL: Duration = Duration::from_micros(25);
const STATS_FAST_FOR: Duration = Duration::from_millis(1);
/// Longest gap between two watchdog probes (each costs every vCPU one exit, ~20 us here):
/// bounds the delay in noticing a dead guest and gives ~100 privilege-level samples a second.
const PROBE_MAX_INTERVAL: Duration = Duration::from_millis(10);
/// A little more than the kernel's default SRCU expedited-grace-period holdoff (25 us).
const SRCU_HOLDOFF: Duration = Duration::from_micros(30);

/// Locks a mutex even if a thread panicked while holding it (the data stays usable).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Raises the UART's IRQ through an irqfd.
struct IrqTrigger(EventFd);

impl Trigger for IrqTrigger {
    type E = std::io::Error;
    fn trigger(&self) -> std::io::Result<()> {
        self.0.write(1)
    }
}

/// vCPU liveness as seen at the last watchdog probe.
const ST_RUNNING: u64 = 0;
const ST_HALTED_NOIRQ: u64 = 1;
const ST_WAIT_SIPI: u64 = 2;
/// Halted with interrupts enabled: alive (an interrupt wakes it), but not running, so not a
/// privilege-level sample either.
const ST_HALTED_IRQ: u64 = 3;

struct Shared {
    mem: GuestMemoryMmap,
    interface: Interface,
    created: Instant,
    serial: Mutex<Serial<IrqTrigger, NoEvents, Console>>,
    /// The console shared by the UART, HvCallPostDebugData and Xen console_io.
    console: Console,
    /// Fixed once the VM is created; each device has its own lock.
    mmio: MmioBus,
    hv: Mutex<Partition>,
    xen: Mutex<XenState>,
    counts: Mutex<BTreeMap<String, u64>>,
    trace: Mutex<xen::Trace>,
    memory_map: Vec<MemEntry>,
    end: Mutex<Option<VmEnd>>,
    end_cv: Condvar,
    stop: AtomicBool,
    /// Watchdog probe round; vCPU states are (round << 2) | state.
    probe_round: AtomicU64,
    vcpu_state: Vec<AtomicU64>,
    unclaimed: AtomicU64,
    /// Watchdog samples of running vCPUs, and how many found them in ring 0.
    samples: AtomicU64,
    samples_ring0: AtomicU64,
    /// vCPU threads that have left their loop.
    exited: std::sync::atomic::AtomicUsize,
    final_regs: Mutex<Vec<String>>,
    hv_opts: hyperv::DispatchOptions,
    /// Run-time milestones for the debug log: when `run` started, and "name@us" marks.
    run_start: Mutex<Option<Instant>>,
    timeline: Mutex<String>,
}

impl Shared {
    fn finish(&self, end: VmEnd) {
        let mut e = lock(&self.end);
        if e.is_none() {
            *e = Some(end);
        }
        self.stop.store(true, Ordering::SeqCst);
        self.end_cv.notify_all();
    }

    /// Records a run-time milestone (`id` = vCPU, usize::MAX = the controller) for the debug
    /// log; only the first few dozen are kept (start-up and end, not steady state).
    fn mark(&self, id: usize, name: &str) {
        let Some(t0) = *lock(&self.run_start) else {
            return;
        };
        let us = t0.elapsed().as_micros();
        let mut t = lock(&self.timeline);
        if t.len() < 1024 {
            if id == usize::MAX {
                t.push_str(&format!("{name}@{us} "));
            } else {
                t.push_str(&format!("vcpu{id}.{name}@{us} "));
            }
        }
    }

    fn count(&self, name: &str) {
        let mut counts = lock(&self.counts);
        // No allocation once the name is known (this runs on every hypercall).
        match counts.get_mut(name) {
            Some(n) => *n += 1,
            None => {
                counts.insert(name.to_string(), 1);
            }
        }
    }

    fn console_write(&self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        self.console.push(data);
    }
}

/// A virtual machine, ready to run.
pub struct Vm {
    vm: Arc<VmFd>,
    threads: VcpuThreads,
    /// Each vCPU's "blocking" statistic; empty when the kernel lacks it.
    blocking: Vec<BlockingStat>,
    shared: Arc<Shared>,
    timeout: Duration,
    _serial_evt: EventFd,
}

/// The /dev/kvm system fd and the capabilities we check, once per process (like the supported
/// CPUID): they cannot change while the module is loaded.
struct System {
    kvm: Kvm,
    max_vcpus: usize,
    sync_regs: bool,
    msr_filter: bool,
}

fn system() -> Result<&'static System, Error> {
    static SYSTEM: std::sync::OnceLock<System> = std::sync::OnceLock::new();
    if let Some(s) = SYSTEM.get() {
        return Ok(s);
    }
    let kvm = Kvm::new().map_err(kvm_err("open /dev/kvm"))?;
    let sync = kvm_bindings::KVM_SYNC_X86_REGS | kvm_bindings::KVM_SYNC_X86_SREGS;
    let s = System {
        max_vcpus: kvm.get_max_vcpus(),
        sync_regs: kvm.check_extension_int(Cap::SyncRegs) as u32 & sync == sync,
        msr_filter: kvm.check_extension(Cap::X86UserSpaceMsr)
            && kvm.check_extension(Cap::X86MsrFilter),
        kvm,
    };
    Ok(SYSTEM.get_or_init(|| s))
}

/// Hand-off between `Vm::new`, `Vm::run` and the vCPU threads. The threads are started at the
/// end of `new`: a thread's start-up (mmap of its stack, 50-90 us here) overlapping the VM's
/// creation made KVM_X86_SET_MSR_FILTER and KVM_SET_USER_MEMORY_REGION 2x slower (probably
/// contention on the process's memory map, which both take); started last,
/// the spawn itself is cheaper too, and the thread's start-up overlaps the caller's call to
/// `run` (measured: `Vm::new` -0.09 ms, start to guest exit -5-10%). (Setting the vCPUs up
/// on those threads, concurrently with the kernel load, was tried twice: slower, KVM
/// serialises the work.)
#[derive(Default)]
struct Gate {
    st: Mutex<GateState>,
    cv: Condvar,
}

#[derive(Default)]
struct GateState {
    /// Set by `run`: each thread takes its vCPU and enters its run loop.
    vcpus: Vec<Option<VcpuFd>>,
    go: Option<Arc<Shared>>,
    /// Set when the VM is dropped (or `new` fails) before `run`: the threads end.
    abort: bool,
}

impl Gate {
    fn update(&self, f: impl FnOnce(&mut GateState)) {
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
struct VcpuThreads {
    gate: Arc<Gate>,
    handles: Vec<JoinHandle<Option<VcpuFd>>>,
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

fn kick_handler_install() {
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
fn vcpu_setup(
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

impl Vm {
    /// Creates the VM: memory, irqchip + PIT, vCPUs with CPUID, MSR filter, kernel loaded.
    pub fn new(cfg: VmConfig) -> Result<Vm, Error> {
        if cfg.cpus == 0 {
            return Err(Error::Config("cpus must be at least 1".into()));
        }
        if !(MIN_MEMORY_MIB..=MAX_MEMORY_MIB).contains(&cfg.memory_mib) {
            return Err(Error::Config(format!(
                "memory {} MiB outside {MIN_MEMORY_MIB}..={MAX_MEMORY_MIB} MiB",
                cfg.memory_mib
            )));
        }
        kick_handler_install();
        let mut phases = Phases::new();
        let sys = system()?;
        let kvm = &sys.kvm;
        let max = sys.max_vcpus;
        if usize::from(cfg.cpus) > max {
            return Err(Error::Config(format!(
                "{} vCPUs requested, KVM allows {max}",
                cfg.cpus
            )));
        }
        if !sys.sync_regs {
            return Err(Error::Config(
                "KVM lacks KVM_CAP_SYNC_REGS (regs + sregs), used on every hypercall".into(),
            ));
        }
        // The vCPU threads are started last (see `Gate`); dropping `threads` on an error
        // ends them.
        let gate = Arc::new(Gate::default());
        let mut threads = VcpuThreads {
            gate: gate.clone(),
            handles: Vec::new(),
        };
        // Guest memory before the VM fd: locals drop in reverse order, so on every error
        // path below the VM fd (and its memory slots) goes before the mapping does.
        let ranges: Vec<(GuestAddress, usize)> = ram_ranges(cfg.memory_mib)
            .into_iter()
            .map(|(a, s)| (GuestAddress(a), s as usize))
            .collect();
        let mem = GuestMemoryMmap::from_ranges(&ranges)
            .map_err(|e| Error::Memory(format!("cannot map {} MiB: {e}", cfg.memory_mib)))?;
        phases.mark("mmap");
        let vm = Arc::new(kvm.create_vm().map_err(kvm_err("KVM_CREATE_VM"))?);
        phases.mark("create_vm");
        // Order matters for start-up time: KVM_X86_SET_MSR_FILTER and KVM_CREATE_PIT2 wait for
        // an SRCU grace period, which the kernel expedites only when no grace period ended in
        // the last 25 us (srcu exp_holdoff). So the filter goes first, and the PIT last, well
        // after the irqchip's grace period: 0.1 ms instead of ~15 ms on this host.
        if cfg.interface != Interface::None {
            install_msr_filter(sys, &vm)?;
        }
        phases.mark("msr_filter");

        for (slot, region) in mem.iter().enumerate() {
            let host = region
                .get_host_address(MemoryRegionAddress(0))
                .map_err(|e| Error::Memory(format!("region host address: {e}")))?;
            let r = kvm_userspace_memory_region {
                slot: slot as u32,
                flags: 0,
                guest_phys_addr: region.start_addr().raw_value(),
                memory_size: region.len(),
                userspace_addr: host as u64,
            };
            // SAFETY: the region is a live mmap owned by `mem`, which outlives every KVM fd of
            // this VM (VM, vCPUs, stats): on an error in `new` they are locals declared after
            // `mem` (dropped first); a VM that never ran drops its `vm`, `threads` (vCPU fds)
            // and `blocking` fields before `shared`; `teardown` drops `shared` last. Slots do
            // not overlap (`ram_ranges`).
            unsafe { vm.set_user_memory_region(r) }
                .map_err(kvm_err("KVM_SET_USER_MEMORY_REGION"))?;
        }
        phases.mark("memory");
        vm.set_tss_address(0xfffb_d000)
            .map_err(kvm_err("KVM_SET_TSS_ADDR"))?;
        vm.create_irq_chip()
            .map_err(kvm_err("KVM_CREATE_IRQCHIP"))?;
        let irqchip_at = Instant::now();
        phases.mark("irqchip");

        // Devices: virtio-mmio windows are reserved in the memory map and announced on the
        // command line. Device models are added to `devices` here (see `MmioBus::add_virtio`)
        // by the virtio integration.
        let mut devices = MmioBus::new();
        let device_info = crate::virtio::attach(
            &vm,
            &mem,
            &mut devices,
            &cfg.disks,
            cfg.disk_bus,
            &cfg.nets,
            cfg.max_disks,
            cfg.max_nics,
        )?;
        for d in &device_info {
            tracing::debug!(kind = d.kind, base = d.base, gsi = d.gsi, "virtio device");
        }
        let reserved = devices.reserved();
        let extra = devices.cmdline_entries();

        let cmdline = boot::cmdline(&cfg.cmdline, &extra)?;
        let memory_map = memory_map(cfg.memory_mib, &reserved);
        phases.mark("devices");
        let loaded = boot::load(
            &mem,
            cfg.memory_mib,
            &cfg.kernel,
            cfg.initrd.as_deref(),
            &cmdline,
            &reserved,
        )?;

        phases.mark("load");
        let serial_evt = EventFd::new(libc::EFD_NONBLOCK).map_err(Error::Io)?;
        vm.register_irqfd(&serial_evt, COM1_IRQ)
            .map_err(kvm_err("KVM_IRQFD (COM1)"))?;
        phases.mark("irqfd");
        let host_cpuid = host_cpuid(kvm)?;
        phases.mark("cpuid");
        let mut vcpus = Vec::new();
        for id in 0..cfg.cpus {
            let entries = cpuid::build(&host_cpuid, cfg.interface, id, cfg.cpus);
            let table = CpuId::from_entries(&entries)
                .map_err(|_| Error::Config("CPUID table too large".into()))?;
            let entry = (id == 0).then_some(loaded.mode);
            vcpus.push(Some(vcpu_setup(&vm, id, &table, entry)?));
            phases.mark("vcpu");
        }
        let console = Console::default();
        let serial = Serial::new(
            IrqTrigger(serial_evt.try_clone().map_err(Error::Io)?),
            console.clone(),
        );

        // The PIT last: its irq_srcu grace period is expedited only when none ended in the
        // last 25 us (see above), and the irqchip's just did; the work since then (kernel
        // load, vCPUs) is that pause, so nobody sleeps (a 30 us sleep lasts ~100 us here).
        while irqchip_at.elapsed() < SRCU_HOLDOFF {
            std::hint::spin_loop();
        }
        vm.create_pit2(kvm_pit_config {
            flags: KVM_PIT_SPEAKER_DUMMY,
            ..Default::default()
        })
        .map_err(kvm_err("KVM_CREATE_PIT2"))?;
        phases.mark("pit");
        for id in 0..cfg.cpus {
            let g = gate.clone();
            let h = std::thread::Builder::new()
                .name(format!("vcpu{id}"))
                .spawn(move || vcpu_thread(usize::from(id), g))
                .map_err(Error::Io)?;
            threads.handles.push(h);
        }
        phases.mark("threads");
        tracing::debug!(
            mode = ?loaded.mode,
            phases = %phases.0,
            total_us = phases.1.elapsed().as_micros() as u64,
            "VM created"
        );

        #[cfg(feature = "fault-injection")]
        let hv_opts = hyperv::DispatchOptions {
            wrong_invalid_code_status: cfg.fault == Some(crate::Fault::WrongInvalidCodeStatus),
        };
        #[cfg(not(feature = "fault-injection"))]
        let hv_opts = hyperv::DispatchOptions::default();

        let shared = Arc::new(Shared {
            mem,
            interface: cfg.interface,
            created: Instant::now(),
            serial: Mutex::new(serial),
            console,
            mmio: devices,
            hv: Mutex::new(Partition::default()),
            xen: Mutex::new(XenState::default()),
            counts: Mutex::new(BTreeMap::new()),
            trace: Mutex::new(xen::Trace::default()),
            memory_map,
            end: Mutex::new(None),
            end_cv: Condvar::new(),
            stop: AtomicBool::new(false),
            probe_round: AtomicU64::new(0),
            vcpu_state: (0..cfg.cpus).map(|_| AtomicU64::new(0)).collect(),
            unclaimed: AtomicU64::new(0),
            exited: std::sync::atomic::AtomicUsize::new(0),
            samples: AtomicU64::new(0),
            samples_ring0: AtomicU64::new(0),
            final_regs: Mutex::new(vec![String::new(); usize::from(cfg.cpus)]),
            hv_opts,
            run_start: Mutex::new(None),
            timeline: Mutex::new(String::new()),
        });
        let blocking: Option<Vec<BlockingStat>> =
            vcpus.iter().flatten().map(BlockingStat::open).collect();
        lock(&threads.gate.st).vcpus = vcpus;
        Ok(Vm {
            vm,
            threads,
            blocking: blocking.unwrap_or_default(),
            shared,
            timeout: cfg.timeout,
            _serial_evt: serial_evt,
        })
    }

    /// Guest memory (cloneable; for devices and tests).
    pub fn memory(&self) -> &GuestMemoryMmap {
        &self.shared.mem
    }

    /// The KVM VM fd (for devices: ioeventfd/irqfd registration).
    pub fn vm_fd(&self) -> &VmFd {
        &self.vm
    }

    /// Runs the guest until it ends; the console gets the serial output. Every vCPU thread is
    /// joined before this returns.
    pub fn run(mut self, console: Box<dyn Write + Send>) -> Result<RunOutcome, Error> {
        let start = Instant::now();
        *lock(&self.shared.run_start) = Some(start);
        // The devices write into a bounded buffer; this thread writes it to `console`
        // (see `crate::console`), so a blocked writer never blocks a vCPU.
        let writer = self.shared.console.start(console);
        let handles = std::mem::take(&mut self.threads.handles);
        let n = handles.len();
        self.threads
            .gate
            .update(|s| s.go = Some(self.shared.clone()));

        // A timeout too large for the clock (e.g. Duration::MAX) means no deadline.
        let deadline = (!self.timeout.is_zero())
            .then(|| start.checked_add(self.timeout))
            .flatten();
        let mut interval = PROBE_FIRST_INTERVAL;
        let mut probe_at = start + PROBE_FIRST;
        let mut dead_rounds = 0u32;
        let needed_rounds = if n == 1 { 1 } else { 2 };
        let mut stats_interval = STATS_INTERVAL;
        let mut stats_at = start + stats_interval;
        // Short waits: the default 50 us timer slack would stretch each one (restored below).
        let slack = timer_slack(Some(1_000));
        loop {
            let now = Instant::now();
            let guard = lock(&self.shared.end);
            if guard.is_some() {
                break;
            }
            let mut wake = deadline.map_or(probe_at, |d| d.min(probe_at));
            if !self.blocking.is_empty() {
                wake = wake.min(stats_at);
            }
            let wait = wake.saturating_duration_since(now);
            let (guard, _) = self
                .shared
                .end_cv
                .wait_timeout(guard, wait)
                .unwrap_or_else(|e| e.into_inner());
            if guard.is_some() {
                break;
            }
            drop(guard);
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                self.shared.finish(VmEnd::Timeout);
                break;
            }
            if !self.blocking.is_empty() && now >= stats_at {
                if self.blocking.iter().all(|b| b.get() == Some(true)) {
                    probe_at = now;
                }
                if now.duration_since(start) >= STATS_FAST_FOR {
                    stats_interval = (stats_interval * 2).min(PROBE_MAX_INTERVAL);
                }
                stats_at = now + stats_interval;
            }
            if now >= probe_at {
                // Ask every vCPU for its state, wait (briefly) for the answers, evaluate.
                self.shared.mark(usize::MAX, "probe");
                let round = self.shared.probe_round.fetch_add(1, Ordering::SeqCst) + 1;
                for h in &handles {
                    if !h.is_finished() {
                        let _ = h.kill(SIGRTMIN());
                    }
                }
                let asked = Instant::now();
                while asked.elapsed() < Duration::from_millis(1)
                    && !self.shared.stop.load(Ordering::SeqCst)
                    && !self
                        .shared
                        .vcpu_state
                        .iter()
                        .all(|s| s.load(Ordering::SeqCst) >> 2 == round)
                {
                    std::thread::sleep(Duration::from_micros(10));
                }
                let states: Vec<u64> = self
                    .shared
                    .vcpu_state
                    .iter()
                    .map(|s| s.load(Ordering::SeqCst))
                    .collect();
                let all_dead = states.iter().all(|v| {
                    v >> 2 == round && (v & 3 == ST_HALTED_NOIRQ || v & 3 == ST_WAIT_SIPI)
                });
                let any_halted = states.iter().any(|v| v & 3 == ST_HALTED_NOIRQ);
                if all_dead && any_halted {
                    dead_rounds += 1;
                } else {
                    dead_rounds = 0;
                }
                if dead_rounds >= needed_rounds {
                    self.shared.finish(VmEnd::Crash {
                        reason: "halted with interrupts disabled (every vCPU in HLT with RFLAGS.IF=0 or waiting for SIPI)".into(),
                        regs: String::new(),
                    });
                    break;
                }
                interval = (interval * 2).min(PROBE_MAX_INTERVAL);
                probe_at = Instant::now() + interval;
            }
        }

        self.shared.mark(usize::MAX, "end_seen");
        // Stop first, then release vCPUs waiting for console room: a vCPU so released sees
        // `stop` before it could enter the guest (and write to the console) again.
        self.shared.stop.store(true, Ordering::SeqCst);
        writer.ending();
        timer_slack(slack);
        // Stop: kick every vCPU until its thread has left KVM_RUN, then join.
        // Each vCPU thread counts itself out in `exited` and signals `end_cv`; a kick can be
        // lost if it lands just before KVM_RUN, so kicks repeat until every thread is out.
        let spawned = handles.len();
        let mut wait = Duration::from_micros(50);
        loop {
            // (A thread that panicked never counts itself out, but it is finished.)
            let all_out = || {
                self.shared.exited.load(Ordering::SeqCst) >= spawned
                    || handles.iter().all(|h| h.is_finished())
            };
            if all_out() {
                break;
            }
            for h in &handles {
                if !h.is_finished() {
                    let _ = h.kill(SIGRTMIN());
                }
            }
            let guard = lock(&self.shared.end);
            if all_out() {
                break;
            }
            let _ = self
                .shared
                .end_cv
                .wait_timeout(guard, wait)
                .unwrap_or_else(|e| e.into_inner());
            if self.shared.exited.load(Ordering::SeqCst) >= spawned {
                break;
            }
            wait = (wait * 2).min(Duration::from_millis(5));
        }
        let mut vcpus = Vec::with_capacity(n);
        for h in handles {
            match h.join() {
                Ok(v) => vcpus.extend(v),
                Err(_) => self.shared.finish(VmEnd::Crash {
                    reason: "a vCPU thread panicked".into(),
                    regs: String::new(),
                }),
            }
        }
        self.threads.gate.update(|s| s.go = None);
        self.shared.mark(usize::MAX, "joined");
        tracing::debug!(timeline = %lock(&self.shared.timeline), "VM run (us since run start)");
        // Write out what the guest printed and drop the caller's writer, unless it is
        // blocked: then not past the deadline (+ a grace), see `crate::console`.
        writer.finish(deadline);
        let final_regs = lock(&self.shared.final_regs).clone();
        let mut end = lock(&self.shared.end).clone().unwrap_or(VmEnd::Timeout);
        if let VmEnd::Crash { regs, .. } = &mut end {
            if regs.is_empty() {
                *regs = final_regs.first().cloned().unwrap_or_default();
            }
        }
        let outcome = RunOutcome {
            end,
            hypercalls: lock(&self.shared.counts).clone(),
            xen_trace: lock(&self.shared.trace).to_vec(),
            wall: start.elapsed(),
            ring0_share: {
                let n = self.shared.samples.load(Ordering::Relaxed);
                (n > 0).then(|| self.shared.samples_ring0.load(Ordering::Relaxed) as f64 / n as f64)
            },
            final_regs,
            unclaimed_accesses: self.shared.unclaimed.load(Ordering::SeqCst),
            console_dropped: self.shared.console.dropped(),
        };
        // (The stats fds hold references on the VM too.)
        teardown(
            self.vm,
            (vcpus, self.blocking),
            self.shared,
            self._serial_evt,
        );
        Ok(outcome)
    }
}

/// Sets the calling thread's timer slack (ns) when `set` is given; returns the previous one.
fn timer_slack(set: Option<u64>) -> Option<u64> {
    // SAFETY: PR_GET_TIMERSLACK / PR_SET_TIMERSLACK take plain integers and only affect the
    // calling thread's timer slack.
    let old = unsafe { libc::prctl(libc::PR_GET_TIMERSLACK, 0, 0, 0, 0) };
    if let Some(ns) = set {
        // SAFETY: as above.
        unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, ns as libc::c_ulong, 0, 0, 0) };
    }
    u64::try_from(old).ok()
}

vmm_sys_util::ioctl_io_nr!(KVM_GET_STATS_FD, kvm_bindings::KVMIO, 0xce);

/// A vCPU's "blocking" statistic (KVM binary statistics, Linux >= 5.18): 1 while its thread
/// sleeps in the kernel (halted, or waiting for INIT/SIPI). One pread, the vCPU undisturbed.
struct BlockingStat {
    file: std::fs::File,
    offset: u64,
}

impl BlockingStat {
    fn open(vcpu: &VcpuFd) -> Option<BlockingStat> {
        use std::os::fd::FromRawFd;
        // SAFETY: KVM_GET_STATS_FD takes no argument and returns a new fd or -1; `vcpu` is a
        // live vCPU fd.
        let fd = unsafe { vmm_sys_util::ioctl::ioctl(vcpu, KVM_GET_STATS_FD()) };
        if fd < 0 {
            return None;
        }
        // SAFETY: `fd` is a new descriptor that nothing else owns.
        let file = unsafe { std::fs::File::from_raw_fd(fd) };
        // The descriptor table is the same for every vCPU of this kernel.
        static OFFSET: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
        let offset = (*OFFSET.get_or_init(|| stat_offset(&file, b"blocking")))?;
        Some(BlockingStat { file, offset })
    }

    fn get(&self) -> Option<bool> {
        use std::os::unix::fs::FileExt;
        let mut b = [0u8; 8];
        self.file.read_exact_at(&mut b, self.offset).ok()?;
        Some(u64::from_le_bytes(b) != 0)
    }
}

/// Offset of statistic `name`'s value in a KVM stats fd (struct kvm_stats_header, then
/// kvm_stats_desc entries of 16 bytes + name_size).
fn stat_offset(f: &std::fs::File, name: &[u8]) -> Option<u64> {
    use std::os::unix::fs::FileExt;
    let mut h = [0u8; 24];
    f.read_exact_at(&mut h, 0).ok()?;
    let w = |b: &[u8], i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let (name_size, num_desc) = (w(&h, 4) as usize, w(&h, 8) as usize);
    let (desc_offset, data_offset) = (w(&h, 16), w(&h, 20));
    if name_size == 0 || name_size > 4096 || num_desc > 4096 {
        return None;
    }
    let stride = 16 + name_size;
    let mut descs = vec![0u8; stride * num_desc];
    f.read_exact_at(&mut descs, u64::from(desc_offset)).ok()?;
    descs.chunks_exact(stride).find_map(|d| {
        let n = &d[16..];
        let n = &n[..n.iter().position(|&c| c == 0).unwrap_or(n.len())];
        (n == name).then(|| u64::from(data_offset) + u64::from(w(d, 8)))
    })
}

static TEARDOWNS: AtomicU64 = AtomicU64::new(0);

/// VMs whose kernel-side teardown is still running (see [`Vm::run`]).
pub fn teardowns_pending() -> u64 {
    TEARDOWNS.load(Ordering::SeqCst)
}

/// Waits (up to `max`) until every finished VM has been torn down; true when none is left.
pub fn wait_for_teardowns(max: Duration) -> bool {
    let t = Instant::now();
    while teardowns_pending() > 0 {
        if t.elapsed() >= max {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

/// Closing a VM with an in-kernel irqchip costs 20-30 ms on this host (the kernel
/// synchronises its I/O buses), so the fds are closed on a short-lived thread and `run`
/// returns without waiting; guest memory stays mapped until the VM fd is closed. The
/// thread only closes fds and ends; [`wait_for_teardowns`] waits for it.
fn teardown(
    vm: Arc<VmFd>,
    vcpus: (Vec<VcpuFd>, Vec<BlockingStat>),
    shared: Arc<Shared>,
    evt: EventFd,
) {
    TEARDOWNS.fetch_add(1, Ordering::SeqCst);
    let job = move || {
        drop(vcpus);
        drop(vm);
        drop(evt);
        drop(shared);
        TEARDOWNS.fetch_sub(1, Ordering::SeqCst);
    };
    let job = std::sync::Arc::new(Mutex::new(Some(job)));
    let j2 = job.clone();
    let spawned = std::thread::Builder::new()
        .name("vm-teardown".into())
        .spawn(move || {
            if let Some(f) = lock(&j2).take() {
                f()
            }
        });
    if spawned.is_err() {
        if let Some(f) = lock(&job).take() {
            f()
        }
    }
}

/// Start-up phase timings for the debug log (`HVCERT_LOG=hypervisor=debug`).
struct Phases(String, Instant, Instant);

impl Phases {
    fn new() -> Self {
        let now = Instant::now();
        Phases(String::new(), now, now)
    }
    fn mark(&mut self, name: &str) {
        let now = Instant::now();
        self.0
            .push_str(&format!("{name}={}us ", (now - self.2).as_micros()));
        self.2 = now;
    }
}

/// KVM_GET_SUPPORTED_CPUID, once per process (it costs ~0.4 ms here and never changes).
fn host_cpuid(kvm: &Kvm) -> Result<Vec<kvm_bindings::kvm_cpuid_entry2>, Error> {
    static CACHE: std::sync::OnceLock<Vec<kvm_bindings::kvm_cpuid_entry2>> =
        std::sync::OnceLock::new();
    if let Some(c) = CACHE.get() {
        return Ok(c.clone());
    }
    let c = kvm
        .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
        .map_err(kvm_err("KVM_GET_SUPPORTED_CPUID"))?;
    Ok(CACHE.get_or_init(|| c.as_slice().to_vec()).clone())
}

fn install_msr_filter(sys: &System, vm: &VmFd) -> Result<(), Error> {
    if !sys.msr_filter {
        return Err(Error::Config(
            "KVM lacks KVM_CAP_X86_USER_SPACE_MSR / KVM_CAP_X86_MSR_FILTER, needed for synthetic MSRs (use --interface none)".into(),
        ));
    }
    let cap = kvm_enable_cap {
        cap: kvm_bindings::KVM_CAP_X86_USER_SPACE_MSR,
        args: [u64::from(KVM_MSR_EXIT_REASON_FILTER), 0, 0, 0],
        ..Default::default()
    };
    vm.enable_cap(&cap)
        .map_err(kvm_err("KVM_ENABLE_CAP(X86_USER_SPACE_MSR)"))?;
    // A clear bit denies the access, which sends it to user space.
    let bitmap = [0u8; (MSR_FILTER_COUNT / 8) as usize];
    let range = MsrFilterRange {
        flags: MsrFilterRangeFlags::READ | MsrFilterRangeFlags::WRITE,
        base: MSR_FILTER_BASE,
        msr_count: MSR_FILTER_COUNT,
        bitmap: &bitmap,
    };
    vm.set_msr_filter(MsrFilterDefaultAction::ALLOW, &[range])
        .map_err(kvm_err("KVM_X86_SET_MSR_FILTER"))
}

/// LINT0 = ExtINT (legacy PIC), LINT1 = NMI, as a BIOS leaves them.
fn setup_lapic(vcpu: &VcpuFd) -> Result<(), Error> {
    let mut lapic = vcpu.get_lapic().map_err(kvm_err("KVM_GET_LAPIC"))?;
    let set = |regs: &mut [libc::c_char; 1024], off: usize, mode: u32| {
        let mut b = [0u8; 4];
        for (i, x) in b.iter_mut().enumerate() {
            *x = regs[off + i] as u8;
        }
        let v = (u32::from_le_bytes(b) & !0x700) | (mode << 8);
        for (i, x) in v.to_le_bytes().iter().enumerate() {
            regs[off + i] = *x as libc::c_char;
        }
    };
    set(&mut lapic.regs, 0x350, 7);
    set(&mut lapic.regs, 0x360, 4);
    vcpu.set_lapic(&lapic).map_err(kvm_err("KVM_SET_LAPIC"))
}

/// What handling one exit decided.
enum Next {
    Continue,
    End(VmEnd),
    /// End as a crash with this reason and the vCPU's register dump.
    Crash(String),
}

/// A pending action that needs the vCPU fd (so done after the exit's borrow ends).
enum Pending {
    None,
    HvCall,
    XenCall,
    BadHypercallPort(u16),
    InternalError,
}

fn vcpu_loop(id: usize, vcpu: &mut VcpuFd, shared: Arc<Shared>) {
    shared.mark(id, "thread");
    let mut first = true;
    let mut ended = None;
    // Whether the kvm_run sync area holds the registers as of the last exit.
    let mut synced = false;
    let mut last_round = 0u64;
    vcpu.set_sync_valid_reg(SyncReg::Register);
    vcpu.set_sync_valid_reg(SyncReg::SystemRegister);
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let mut pending = Pending::None;
        if first {
            shared.mark(id, "kvm_run");
        }
        let r = vcpu.run();
        // KVM stores the sync registers on every return from KVM_RUN, errors included.
        synced = true;
        if first {
            shared.mark(id, "first_exit");
            first = false;
        }
        let next = match r {
            Ok(exit) => handle_exit(id, exit, &shared, &mut pending),
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {
                let round = shared.probe_round.load(Ordering::SeqCst);
                if round != last_round {
                    last_round = round;
                    let st = liveness(vcpu);
                    shared.vcpu_state[id].store((round << 2) | st, Ordering::SeqCst);
                    if st == ST_RUNNING {
                        // A time sample of the privilege level (KVM refreshes the sync area
                        // on every return from KVM_RUN, interrupted ones included).
                        let cpl = vcpu.sync_regs().sregs.cs.selector & 3;
                        shared.samples.fetch_add(1, Ordering::Relaxed);
                        if cpl == 0 {
                            shared.samples_ring0.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                Next::Continue
            }
            Err(e) => Next::Crash(format!("KVM_RUN failed: {e}")),
        };
        let next = match (next, pending) {
            (Next::Continue, Pending::HvCall) => hv_call(id, vcpu, &shared),
            (Next::Continue, Pending::XenCall) => xen_call(vcpu, &shared),
            (Next::Continue, Pending::InternalError) => Next::Crash(internal_error(vcpu)),
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
        shared.stop.store(true, Ordering::SeqCst);
    }
    shared.mark(id, "loop_end");
    // From the sync area when it is current: two register ioctls cost ~15 us here, on the way
    // out of every VM.
    lock(&shared.final_regs)[id] = if synced {
        let sync = vcpu.sync_regs();
        format!("{}{}", fmt_regs(&sync.regs), fmt_sregs(&sync.sregs))
    } else {
        dump_regs(vcpu)
    };
    shared.mark(id, "regs");
    // Record the end (if this vCPU ended the VM) and count out under the `end` lock, with one
    // wake-up of the controller (each costs ~10-20 us here), so it cannot miss it.
    let mut e = lock(&shared.end);
    if let Some(end) = ended {
        e.get_or_insert(end);
    }
    shared.exited.fetch_add(1, Ordering::SeqCst);
    shared.end_cv.notify_all();
}

fn liveness(vcpu: &VcpuFd) -> u64 {
    let Ok(mp) = vcpu.get_mp_state() else {
        return ST_RUNNING;
    };
    match mp.mp_state {
        KVM_MP_STATE_HALTED => match vcpu.get_regs() {
            Ok(r) if r.rflags & (1 << 9) == 0 => ST_HALTED_NOIRQ,
            Ok(_) => ST_HALTED_IRQ,
            Err(_) => ST_RUNNING,
        },
        KVM_MP_STATE_UNINITIALIZED | KVM_MP_STATE_INIT_RECEIVED => ST_WAIT_SIPI,
        _ => ST_RUNNING,
    }
}

fn handle_exit(id: usize, exit: VcpuExit<'_>, shared: &Shared, pending: &mut Pending) -> Next {
    match exit {
        VcpuExit::IoOut(port, data) => {
            let value = le_value(data);
            match port {
                STATUS_PORT => return Next::End(VmEnd::Status(value as u32)),
                p if com1_reg(p).is_some() => {
                    // A wider OUT is one byte write per port, as the ISA bus splits it:
                    // byte i goes to port p + i (past COM1's 8 ports: unclaimed).
                    let mut s = lock(&shared.serial);
                    for (i, b) in data.iter().enumerate() {
                        let port = p.wrapping_add(i as u16);
                        match com1_reg(port) {
                            Some(reg) => {
                                if let Err(e) = s.write(reg, *b) {
                                    tracing::debug!("COM1 write: {e:?}");
                                }
                            }
                            None => unclaimed(shared, "port write", u64::from(port), u64::from(*b)),
                        }
                    }
                }
                HV_HYPERCALL_PORT if shared.interface.has_hyperv() => *pending = Pending::HvCall,
                XEN_HYPERCALL_PORT if shared.interface.has_xen() => *pending = Pending::XenCall,
                HV_HYPERCALL_PORT | XEN_HYPERCALL_PORT => {
                    *pending = Pending::BadHypercallPort(port)
                }
                p => unclaimed(shared, "port write", u64::from(p), value),
            }
            Next::Continue
        }
        VcpuExit::IoIn(port, data) => {
            if com1_reg(port).is_some() {
                // Byte i of a wider IN comes from port + i (all-ones past COM1).
                let mut s = lock(&shared.serial);
                for (i, b) in data.iter_mut().enumerate() {
                    *b = com1_reg(port.wrapping_add(i as u16)).map_or(0xff, |reg| s.read(reg));
                }
            } else {
                data.fill(0xff);
                unclaimed(shared, "port read", u64::from(port), 0);
            }
            Next::Continue
        }
        VcpuExit::MmioRead(addr, data) => {
            match shared.mmio.find(addr) {
                Some((dev, off)) => lock(dev).read(off, data),
                None => {
                    data.fill(0xff);
                    unclaimed(shared, "MMIO read", addr, 0);
                }
            }
            Next::Continue
        }
        VcpuExit::MmioWrite(addr, data) => {
            match shared.mmio.find(addr) {
                Some((dev, off)) => lock(dev).write(off, data),
                None => unclaimed(shared, "MMIO write", addr, le_value(data)),
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
        VcpuExit::X86Wrmsr(m) => {
            if !wrmsr(shared, m.index, m.data) {
                *m.error = 1;
            }
            Next::Continue
        }
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

/// Describes KVM_EXIT_INTERNAL_ERROR from the run structure's `internal` member.
fn internal_error(vcpu: &mut VcpuFd) -> String {
    let run = vcpu.get_kvm_run();
    // SAFETY: the last exit was KVM_EXIT_INTERNAL_ERROR, so `internal` is the active member
    // of the exit union; it is plain old data.
    let internal = unsafe { run.__bindgen_anon_1.internal };
    let n = (internal.ndata as usize).min(internal.data.len());
    let what = match internal.suberror {
        1 => "instruction emulation failure",
        2 => "exception while delivering an exception (simultaneous exceptions: the guest triple-faulted)",
        3 => "event delivery failure",
        4 => "unexpected exit reason",
        _ => "unknown suberror",
    };
    format!(
        "KVM internal error {}: {what}; data {:x?}",
        internal.suberror,
        &internal.data[..n]
    )
}

fn le_value(data: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = data.len().min(8);
    b[..n].copy_from_slice(&data[..n]);
    u64::from_le_bytes(b)
}

/// The UART register offset of `port`, if it is one of COM1's 8 ports.
fn com1_reg(port: u16) -> Option<u8> {
    port.checked_sub(COM1_BASE)
        .filter(|&r| r < 8)
        .map(|r| r as u8)
}

fn unclaimed(shared: &Shared, what: &str, addr: u64, value: u64) {
    shared.unclaimed.fetch_add(1, Ordering::Relaxed);
    tracing::debug!("unclaimed {what} at {addr:#x} (value {value:#x})");
}

fn rdmsr(id: usize, shared: &Shared, msr: u32) -> Option<u64> {
    if let Some((_, xen_msr)) = shared.interface.xen_base() {
        if msr == xen_msr {
            // Xen's hypercall MSR is write-only.
            return None;
        }
    }
    if shared.interface.has_hyperv() && Partition::handles(msr) {
        let t = shared.created.elapsed().as_nanos() / 100;
        return lock(&shared.hv).rdmsr(msr, id as u32, t as u64).ok();
    }
    None
}

fn wrmsr(shared: &Shared, msr: u32, value: u64) -> bool {
    let mem = &shared.mem;
    let page_ok = |gpa: u64| mem.check_range(GuestAddress(gpa), 4096);
    if let Some((_, xen_msr)) = shared.interface.xen_base() {
        if msr == xen_msr {
            // Value: page GPA | page index (only page 0 exists).
            if value & 0xfff != 0 || !page_ok(value) {
                return false;
            }
            if mem
                .write_slice(&xen::hypercall_page(), GuestAddress(value))
                .is_err()
            {
                return false;
            }
            lock(&shared.xen).page_gpa = Some(value);
            return true;
        }
    }
    if shared.interface.has_hyperv() && Partition::handles(msr) {
        let r = lock(&shared.hv).wrmsr(msr, value, page_ok);
        return match r {
            Ok(MsrWrite::Done) => true,
            Ok(MsrWrite::FillHypercallPage(gpa)) => mem
                .write_slice(&hyperv::hypercall_page(), GuestAddress(gpa))
                .is_ok(),
            Err(_) => false,
        };
    }
    false
}

fn paging(s: &kvm_bindings::kvm_sregs) -> PagingMode {
    PagingMode {
        cr0: s.cr0,
        cr3: s.cr3,
        cr4: s.cr4,
        efer: s.efer,
    }
}

/// Checks that the exit came from CPL 0 and from inside the page at `page_gpa`; returns the
/// offset of RIP in the page.
/// Registers come from the kvm_run sync area (KVM_CAP_SYNC_REGS), filled by KVM on every exit:
/// each register ioctl costs ~7 us on this nested host, three of them would triple the cost
/// of a hypercall.
///
/// Checks that the exit came from CPL 0 and from the OUT at `out_offset` (or, for Xen, any
/// stub's OUT: `stride`) of the page at `page_gpa`. KVM reports a port exit with RIP past
/// the OUT (as on this host) or at it, so both are tried, and the instruction bytes
/// must be `out imm8, eax` to `port`. Returns the OUT's offset in the page.
fn check_origin(
    vcpu: &VcpuFd,
    shared: &Shared,
    page_gpa: Option<u64>,
    port: u16,
    out_offset: u64,
    stride: u64,
) -> Result<(kvm_bindings::kvm_regs, kvm_bindings::kvm_sregs, u64), String> {
    let sync = vcpu.sync_regs();
    let (regs, sregs) = (sync.regs, sync.sregs);
    let cpl = sregs.cs.selector & 3;
    if cpl != 0 {
        return Err(format!("hypercall from CPL {cpl}"));
    }
    let Some(page) = page_gpa else {
        return Err("hypercall port used while no hypercall page is enabled".into());
    };
    let mode = paging(&sregs);
    // Past the OUT first: that is where this host leaves RIP (one page walk instead of two).
    for rip in [regs.rip.wrapping_sub(2), regs.rip] {
        let Ok(gpa) = pagewalk::translate(&shared.mem, mode, rip) else {
            continue;
        };
        let Some(insn) = pagewalk::read_phys::<[u8; 2]>(&shared.mem, gpa) else {
            continue;
        };
        if insn != [0xe7, port as u8] {
            continue;
        }
        let off = gpa.wrapping_sub(page);
        if off < 4096 && off % stride == out_offset {
            return Ok((regs, sregs, off));
        }
    }
    Err(format!(
        "hypercall port {port:#x} used from RIP {:#x}, not from the hypercall page at {page:#x}",
        regs.rip
    ))
}

/// Completes a hypercall through the sync area: RAX = the result, and the page's `ret` is
/// done here (RIP = the return address at [RSP], RSP + 8). Guest ring 0 is emulated on this
/// host (~1 us an instruction), so that saves a tenth of every call; the guest cannot tell,
/// since it never sees the page between its `call` and the return. The guest runs the page's
/// own `ret` instead when doing it here could differ: outside 64-bit mode, when single-
/// stepping (RFLAGS.TF), with CET enabled (a shadow stack also holds the return address),
/// when [RSP] is not readable RAM or the address is not canonical (the guest's `ret` then
/// faults as it should).
/// (KVM applies the dirty registers before it completes the port I/O, and it skips the OUT
/// on re-entry only if RIP is unchanged, so RIP may be set whether the exit left it at the
/// OUT, as VMX's fast path does, or past it, as on this host.)
fn complete_call(
    vcpu: &mut VcpuFd,
    shared: &Shared,
    sregs: &kvm_bindings::kvm_sregs,
    rax: u64,
) -> Next {
    const RFLAGS_TF: u64 = 1 << 8;
    const CR4_CET: u64 = 1 << 23;
    let regs = &mut vcpu.sync_regs_mut().regs;
    regs.rax = rax;
    if sregs.cs.l == 1 && regs.rflags & RFLAGS_TF == 0 && sregs.cr4 & CR4_CET == 0 {
        // (A return address that straddles two pages is left to the guest's `ret`.)
        let ret = (regs.rsp & 0xfff <= 0xff8)
            .then(|| pagewalk::translate(&shared.mem, paging(sregs), regs.rsp).ok())
            .flatten()
            .and_then(|gpa| pagewalk::read_phys::<u64>(&shared.mem, gpa));
        if let Some(ret) = ret.filter(|&r| ((r as i64) << 16 >> 16) as u64 == r) {
            regs.rip = ret;
            regs.rsp = regs.rsp.wrapping_add(8);
        }
    }
    vcpu.set_sync_dirty_reg(SyncReg::Register);
    Next::Continue
}

fn inject_ud(vcpu: &VcpuFd, why: &str) -> Next {
    tracing::debug!("#UD: {why}");
    let mut ev = match vcpu.get_vcpu_events() {
        Ok(ev) => ev,
        Err(e) => return Next::Crash(format!("KVM_GET_VCPU_EVENTS: {e}")),
    };
    ev.exception.injected = 1;
    ev.exception.nr = 6;
    ev.exception.has_error_code = 0;
    ev.exception.error_code = 0;
    match vcpu.set_vcpu_events(&ev) {
        Ok(()) => Next::Continue,
        Err(e) => Next::Crash(format!("KVM_SET_VCPU_EVENTS: {e}")),
    }
}

fn hv_call(_id: usize, vcpu: &mut VcpuFd, shared: &Shared) -> Next {
    let page = lock(&shared.hv).hypercall_page_gpa();
    let (regs, sregs, _off) = match check_origin(
        vcpu,
        shared,
        page,
        HV_HYPERCALL_PORT,
        hyperv::HYPERCALL_OUT_OFFSET,
        4096,
    ) {
        Ok(x) => x,
        Err(why) => return inject_ud(vcpu, &why),
    };
    let call = hyperv::Call {
        input: regs.rcx,
        in_gpa: regs.rdx,
        out_gpa: regs.r8,
    };
    let o = hyperv::dispatch(&shared.mem, call, shared.hv_opts);
    shared.count(&o.name);
    shared.console_write(&o.console);
    complete_call(vcpu, shared, &sregs, o.rax)
}

fn xen_call(vcpu: &mut VcpuFd, shared: &Shared) -> Next {
    let page = lock(&shared.xen).page_gpa;
    let (regs, sregs, off) = match check_origin(
        vcpu,
        shared,
        page,
        XEN_HYPERCALL_PORT,
        xen::STUB_OUT_OFFSET,
        32,
    ) {
        Ok(x) => x,
        Err(why) => return inject_ud(vcpu, &why),
    };
    let nr = (off / 32) as u32;
    let env = xen::Env {
        mem: &shared.mem,
        paging: paging(&sregs),
        memory_map: &shared.memory_map,
    };
    let args = [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8];
    let o = {
        let mut st = lock(&shared.xen);
        xen::dispatch(&mut st, &env, nr, args)
    };
    shared.count(&format!("xen:{}", xen::name(nr)));
    if let Some(native) = o.native {
        shared.count(native);
    }
    lock(&shared.trace).push(o.trace);
    shared.console_write(&o.console);
    match o.end {
        Some(XenEnd::Poweroff) => return Next::End(VmEnd::Shutdown),
        Some(XenEnd::Crash(reason)) => return Next::Crash(reason),
        None => {}
    }
    complete_call(vcpu, shared, &sregs, o.rax as u64)
}

/// A compact register dump (registers read with KVM_GET_REGS / KVM_GET_SREGS).
pub fn dump_regs(vcpu: &VcpuFd) -> String {
    let mut s = match vcpu.get_regs() {
        Ok(r) => fmt_regs(&r),
        Err(e) => format!("regs unavailable: {e}\n"),
    };
    match vcpu.get_sregs() {
        Ok(r) => s.push_str(&fmt_sregs(&r)),
        Err(e) => s.push_str(&format!("sregs unavailable: {e}")),
    }
    s
}

fn fmt_regs(r: &kvm_bindings::kvm_regs) -> String {
    format!(
        "rip={:#018x} rsp={:#018x} rflags={:#x}\n\
         rax={:#018x} rbx={:#018x} rcx={:#018x} rdx={:#018x}\n\
         rsi={:#018x} rdi={:#018x} rbp={:#018x} r8={:#018x}\n\
         r9={:#018x} r10={:#018x} r11={:#018x} r12={:#018x}\n\
         r13={:#018x} r14={:#018x} r15={:#018x}\n",
        r.rip,
        r.rsp,
        r.rflags,
        r.rax,
        r.rbx,
        r.rcx,
        r.rdx,
        r.rsi,
        r.rdi,
        r.rbp,
        r.r8,
        r.r9,
        r.r10,
        r.r11,
        r.r12,
        r.r13,
        r.r14,
        r.r15
    )
}

fn fmt_sregs(r: &kvm_bindings::kvm_sregs) -> String {
    format!(
        "cr0={:#x} cr2={:#x} cr3={:#x} cr4={:#x} efer={:#x}\n\
         cs={:#x}(l={} db={} dpl={}) ss={:#x} gdt={:#x}/{:#x} idt={:#x}/{:#x}",
        r.cr0,
        r.cr2,
        r.cr3,
        r.cr4,
        r.efer,
        r.cs.selector,
        r.cs.l,
        r.cs.db,
        r.cs.dpl,
        r.ss.selector,
        r.gdt.base,
        r.gdt.limit,
        r.idt.base,
        r.idt.limit
    )
}
