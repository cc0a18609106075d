//! Building a VM from a [`VmConfig`]: the KVM VM with its MSR filter, memory slots,
//! irqchip and PIT; the devices; the kernel; the vCPUs and their (waiting) threads. Each
//! step of [`Vm::new`] is a function of its own, run in the order that keeps start-up fast
//! (see the notes on each).
use crate::abi::{MSR_FILTER_BASE, MSR_FILTER_COUNT};
use crate::boot::{self, Loaded};
use crate::console::Console;
use crate::devices::bus::MmioBus;
use crate::devices::legacy::serial::{Com1, IrqTrigger, COM1_PORTS};
use crate::devices::legacy::status::StatusPort;
use crate::devices::port_bus::PortBus;
use crate::error::{kvm_err, Error};
use crate::hypercall::MsiUpcall;
use crate::hyperv::{self, Partition};
use crate::kvm_stats::BlockingStat;
use crate::layout::*;
use crate::state::{lock, Control, Devices, Paravirt, Shared, Stats};
use crate::vstate::vcpu::{kick_handler_install, vcpu_setup, Gate, VcpuThreads};
use crate::xen::{self, XenState};
use crate::{cpuid, Interface, VmConfig};
use kvm_bindings::{
    kvm_enable_cap, kvm_pit_config, kvm_userspace_memory_region, CpuId, KVM_MAX_CPUID_ENTRIES,
    KVM_MSR_EXIT_REASON_FILTER, KVM_PIT_SPEAKER_DUMMY,
};
use kvm_ioctls::{
    Cap, Kvm, MsrFilterDefaultAction, MsrFilterRange, MsrFilterRangeFlags, VcpuFd, VmFd,
};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use vm_memory::{
    Address, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion,
    MemoryRegionAddress,
};
use vmm_sys_util::eventfd::EventFd;

/// A little more than the kernel's default SRCU expedited-grace-period holdoff (25 us).
const SRCU_HOLDOFF: Duration = Duration::from_micros(30);
/// The TSS KVM needs below 4 GiB on Intel hosts (three pages, inside the MMIO hole).
const TSS_ADDR: usize = 0xfffb_d000;

/// A virtual machine, ready to run.
pub struct Vm {
    pub(crate) vm: Arc<VmFd>,
    pub(crate) threads: VcpuThreads,
    /// Each vCPU's "blocking" statistic; empty when the kernel lacks it.
    pub(crate) blocking: Vec<BlockingStat>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) timeout: Duration,
    /// COM1's irqfd (the UART holds a clone), closed with the VM.
    pub(crate) serial_evt: EventFd,
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
    crate::platform::note_xsave_size(&kvm);
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

/// The kernel's placement and the tables built around it.
struct Guest {
    loaded: Loaded,
    memory_map: Vec<MemEntry>,
}

impl Vm {
    /// Creates the VM: memory, irqchip + PIT, vCPUs with CPUID, MSR filter, kernel loaded.
    pub fn new(cfg: VmConfig) -> Result<Vm, Error> {
        let sys = check_config(&cfg)?;
        if cfg.seccomp {
            // The filters are compiled (and the SIGSYS handler installed) here, not on the
            // vCPU threads' way to their first KVM_RUN.
            crate::seccomp::prepare().map_err(|e| Error::Config(e.to_string()))?;
        }
        kick_handler_install();
        let mut phases = Phases::new();
        // The vCPU threads are started last (see `Gate`); dropping `threads` on an error
        // ends them.
        let mut threads = VcpuThreads::new(Arc::new(Gate::default()));
        // Guest memory before the VM fd: locals drop in reverse order, so on every error
        // path below the VM fd (and its memory slots) goes before the mapping does.
        let mem = map_memory(cfg.memory_mib)?;
        phases.mark("mmap");
        let vm = Arc::new(sys.kvm.create_vm().map_err(kvm_err("KVM_CREATE_VM"))?);
        phases.mark("create_vm");
        let irqchip_at = setup_vm(sys, &vm, &mem, cfg.interface, &mut phases)?;
        let mmio = attach_virtio(&vm, &mem, &cfg)?;
        let guest = load_guest(&mem, &cfg, &mmio, &mut phases)?;
        let serial_evt = EventFd::new(libc::EFD_NONBLOCK).map_err(Error::Io)?;
        vm.register_irqfd(&serial_evt, COM1_IRQ)
            .map_err(kvm_err("KVM_IRQFD (COM1)"))?;
        phases.mark("irqfd");
        let vcpus = create_vcpus(sys, &vm, &cfg, guest.loaded.mode, &mut phases)?;
        let console = Console::default();
        let ports = legacy_ports(&serial_evt, &console)?;
        create_pit(&vm, irqchip_at)?;
        phases.mark("pit");
        for id in 0..cfg.cpus {
            threads.spawn(usize::from(id))?;
        }
        phases.mark("threads");
        tracing::debug!(
            mode = ?guest.loaded.mode,
            phases = %phases.0,
            total_us = phases.1.elapsed().as_micros() as u64,
            "VM created"
        );
        let devices = Devices {
            console,
            ports,
            mmio,
        };
        let tsc = vcpus
            .first()
            .and_then(Option::as_ref)
            .map(measure_tsc)
            .map(|t| hyperv::TscInfo {
                // Configuration can only withdraw reliability, never claim it.
                reliable: t.reliable && cfg.hyperv.reference_tsc_reliable,
                ..t
            })
            .unwrap_or_default();
        let vmbus_devices = crate::vmbus::build::build_devices(cfg.vmbus, &cfg.disks, &cfg.nets)?;
        let shared = Arc::new(shared_state(&cfg, mem, guest.memory_map, devices, &vm, tsc));
        if cfg.vmbus.enabled() {
            // The SynIC owns the runtime (its worker stops when the VM's state is dropped).
            crate::vmbus::attach::attach(
                &shared.paravirt.synic,
                &shared.mem,
                vmbus_devices,
                cfg.seccomp,
            )?;
        }
        let blocking: Option<Vec<BlockingStat>> =
            vcpus.iter().flatten().map(BlockingStat::open).collect();
        lock(&threads.gate.st).vcpus = vcpus;
        Ok(Vm {
            vm,
            threads,
            blocking: blocking.unwrap_or_default(),
            shared,
            timeout: cfg.timeout,
            serial_evt,
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

    /// The host's Xen debug key for this VM (raises VIRQ_DEBUG while it runs).
    pub fn xen_debug_key(&self) -> xen::DebugKey {
        xen::DebugKey {
            state: Arc::downgrade(&self.shared.paravirt.xen),
            mem: self.shared.mem.clone(),
        }
    }
}

/// Checks the configuration against the host's limits and capabilities.
fn check_config(cfg: &VmConfig) -> Result<&'static System, Error> {
    if cfg.cpus == 0 {
        return Err(Error::Config("cpus must be at least 1".into()));
    }
    if !(MIN_MEMORY_MIB..=MAX_MEMORY_MIB).contains(&cfg.memory_mib) {
        return Err(Error::Config(format!(
            "memory {} MiB outside {MIN_MEMORY_MIB}..={MAX_MEMORY_MIB} MiB",
            cfg.memory_mib
        )));
    }
    let sys = system()?;
    let max = sys.max_vcpus;
    if usize::from(cfg.cpus) > max {
        return Err(Error::Config(format!(
            "{} vCPUs requested, KVM allows {max}",
            cfg.cpus
        )));
    }
    if cfg.vmbus.enabled() && !matches!(cfg.interface, Interface::HyperV | Interface::Both) {
        return Err(Error::Config(format!(
            "VMBus devices need the Hyper-V interface (its SynIC), not --interface {}",
            cfg.interface
        )));
    }
    if !sys.sync_regs {
        return Err(Error::Config(
            "KVM lacks KVM_CAP_SYNC_REGS (regs + sregs), used on every hypercall".into(),
        ));
    }
    Ok(sys)
}

/// Maps guest RAM (below the MMIO hole, and above 4 GiB for large guests).
fn map_memory(memory_mib: u32) -> Result<GuestMemoryMmap, Error> {
    let ranges: Vec<(GuestAddress, usize)> = ram_ranges(memory_mib)
        .into_iter()
        .map(|(a, s)| (GuestAddress(a), s as usize))
        .collect();
    GuestMemoryMmap::from_ranges(&ranges)
        .map_err(|e| Error::Memory(format!("cannot map {memory_mib} MiB: {e}")))
}

/// The VM-wide KVM set-up: MSR filter, memory slots, TSS, irqchip. Returns when the
/// irqchip was created (the PIT waits for its SRCU grace period, see [`create_pit`]).
fn setup_vm(
    sys: &System,
    vm: &VmFd,
    mem: &GuestMemoryMmap,
    interface: Interface,
    phases: &mut Phases,
) -> Result<Instant, Error> {
    // Order matters for start-up time: KVM_X86_SET_MSR_FILTER and KVM_CREATE_PIT2 wait for
    // an SRCU grace period, which the kernel expedites only when no grace period ended in
    // the last 25 us (srcu exp_holdoff). So the filter goes first, and the PIT last, well
    // after the irqchip's grace period: 0.1 ms instead of ~15 ms on this host.
    if interface != Interface::None {
        install_msr_filter(sys, vm)?;
    }
    phases.mark("msr_filter");
    register_memory(vm, mem)?;
    phases.mark("memory");
    vm.set_tss_address(TSS_ADDR)
        .map_err(kvm_err("KVM_SET_TSS_ADDR"))?;
    vm.create_irq_chip()
        .map_err(kvm_err("KVM_CREATE_IRQCHIP"))?;
    let irqchip_at = Instant::now();
    phases.mark("irqchip");
    Ok(irqchip_at)
}

/// One KVM memory slot per region of `mem`.
fn register_memory(vm: &VmFd, mem: &GuestMemoryMmap) -> Result<(), Error> {
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
        // this VM (VM, vCPUs, stats): on an error in `Vm::new` they are locals declared after
        // `mem` (dropped first); a VM that never ran drops its `vm`, `threads` (vCPU fds)
        // and `blocking` fields before `shared`; `teardown` drops `shared` last. Slots do
        // not overlap (`ram_ranges`).
        unsafe { vm.set_user_memory_region(r) }.map_err(kvm_err("KVM_SET_USER_MEMORY_REGION"))?;
    }
    Ok(())
}

/// The virtio devices: virtio-mmio windows, reserved in the memory map and announced on the
/// command line (see [`crate::devices::virtio::attach`]).
fn attach_virtio(vm: &VmFd, mem: &GuestMemoryMmap, cfg: &VmConfig) -> Result<MmioBus, Error> {
    let mut mmio = MmioBus::new();
    // The limits count every disk and NIC, whichever bus it is on.
    crate::devices::virtio::check_device_limits(
        &cfg.disks,
        &cfg.nets,
        cfg.max_disks,
        cfg.max_nics,
    )?;
    let disks: &[_] = if cfg.vmbus.disks { &[] } else { &cfg.disks };
    let nets: &[_] = if cfg.vmbus.nics { &[] } else { &cfg.nets };
    let device_info = crate::devices::virtio::attach(
        vm,
        mem,
        &mut mmio,
        disks,
        cfg.disk_bus,
        nets,
        cfg.max_disks,
        cfg.max_nics,
    )?;
    for d in &device_info {
        tracing::debug!(kind = d.kind, base = d.base, gsi = d.gsi, "virtio device");
    }
    Ok(mmio)
}

/// Loads the kernel (and initrd) with the command line and memory map the devices need.
fn load_guest(
    mem: &GuestMemoryMmap,
    cfg: &VmConfig,
    mmio: &MmioBus,
    phases: &mut Phases,
) -> Result<Guest, Error> {
    let reserved = mmio.reserved();
    // Stock kernels on a nested host: the fragment of `platform` after the user's options.
    let user_cmdline = if cfg.nested_fixes {
        crate::platform::with_nested_cmdline(&cfg.cmdline, None)
    } else {
        cfg.cmdline.clone()
    };
    let cmdline = boot::cmdline(&user_cmdline, &mmio.cmdline_entries())?;
    let memory_map = memory_map(cfg.memory_mib, &reserved);
    phases.mark("devices");
    let rsdp = write_acpi(mem, cfg, mmio)?;
    phases.mark("acpi");
    let loaded = boot::load(
        mem,
        cfg.memory_mib,
        &cfg.kernel,
        cfg.initrd.as_deref(),
        &cmdline,
        &reserved,
        Some(rsdp),
    )?;
    phases.mark("load");
    Ok(Guest { loaded, memory_map })
}

/// Writes the ACPI tables ([`crate::acpi`]: every vCPU, the IOAPIC, COM1 and each
/// virtio-mmio device on `mmio`) into the BIOS area, reserved in every memory map
/// ([`crate::layout::memory_map`]); returns the RSDP's address for the boot parameters.
fn write_acpi(mem: &GuestMemoryMmap, cfg: &VmConfig, mmio: &MmioBus) -> Result<u64, Error> {
    let acpi_cfg = crate::acpi::AcpiConfig {
        cpus: cfg.cpus,
        virtio: mmio
            .windows()
            .into_iter()
            .map(|(base, size, gsi)| crate::acpi::VirtioMmio { base, size, gsi })
            .collect(),
        vmbus: cfg.vmbus.enabled(),
    };
    crate::acpi::build(&acpi_cfg)
        .and_then(|t| crate::acpi::write(mem, &t))
        .map_err(|e| Error::Config(format!("ACPI tables: {e}")))?;
    Ok(crate::acpi::RSDP_ADDR)
}

/// Creates every vCPU (CPUID per vCPU; the boot vCPU gets the entry registers).
fn create_vcpus(
    sys: &System,
    vm: &VmFd,
    cfg: &VmConfig,
    mode: boot::EntryMode,
    phases: &mut Phases,
) -> Result<Vec<Option<VcpuFd>>, Error> {
    let host_cpuid = host_cpuid(&sys.kvm)?;
    phases.mark("cpuid");
    let mut vcpus = Vec::new();
    for id in 0..cfg.cpus {
        let entries = cpuid::build(&host_cpuid, cfg.interface, &cfg.hyperv, id, cfg.cpus);
        let table = CpuId::from_entries(&entries)
            .map_err(|_| Error::Config("CPUID table too large".into()))?;
        let entry = (id == 0).then_some(mode);
        vcpus.push(Some(vcpu_setup(vm, id, &table, entry)?));
        phases.mark("vcpu");
    }
    Ok(vcpus)
}

/// The port bus: COM1 (raising its IRQ through `serial_evt`) and the status port.
fn legacy_ports(serial_evt: &EventFd, console: &Console) -> Result<PortBus, Error> {
    let com1 = Com1::new(
        IrqTrigger(serial_evt.try_clone().map_err(Error::Io)?),
        console.clone(),
    );
    let mut ports = PortBus::default();
    ports
        .insert(COM1_BASE, COM1_PORTS, Box::new(com1))
        .and_then(|()| ports.insert(STATUS_PORT, 1, Box::new(StatusPort)))
        .map_err(Error::Config)?;
    Ok(ports)
}

/// The PIT, last: its irq_srcu grace period is expedited only when none ended in the last
/// 25 us (see [`setup_vm`]), and the irqchip's just did; the work since then (kernel load,
/// vCPUs) is that pause, so nobody sleeps (a 30 us sleep lasts ~100 us here).
fn create_pit(vm: &VmFd, irqchip_at: Instant) -> Result<(), Error> {
    while irqchip_at.elapsed() < SRCU_HOLDOFF {
        std::hint::spin_loop();
    }
    vm.create_pit2(kvm_pit_config {
        flags: KVM_PIT_SPEAKER_DUMMY,
        ..Default::default()
    })
    .map_err(kvm_err("KVM_CREATE_PIT2"))
}

/// The state the VM's threads share, as it is before the first run.
fn shared_state(
    cfg: &VmConfig,
    mem: GuestMemoryMmap,
    memory_map: Vec<MemEntry>,
    devices: Devices,
    vm: &Arc<VmFd>,
    tsc: hyperv::TscInfo,
) -> Shared {
    #[cfg(feature = "fault-injection")]
    let hv_opts = hyperv::DispatchOptions {
        wrong_invalid_code_status: cfg.fault == Some(crate::Fault::WrongInvalidCodeStatus),
        features: cfg.hyperv.features,
    };
    #[cfg(not(feature = "fault-injection"))]
    let hv_opts = hyperv::DispatchOptions {
        features: cfg.hyperv.features,
        ..Default::default()
    };
    let hv = Arc::new(Mutex::new(Partition::new(
        cfg.hyperv.features,
        usize::from(cfg.cpus),
        tsc,
    )));
    let created = Instant::now();
    let synic = Arc::new(hyperv::Synic::new(
        hv.clone(),
        Some(Arc::new(MsiUpcall::new(vm))),
        created,
    ));
    #[cfg(feature = "fault-injection")]
    if cfg.fault == Some(crate::Fault::SynicLoopback) {
        synic.set_connections(Arc::new(hyperv::loopback::Loopback::new(
            &synic,
            mem.clone(),
        )));
    }
    Shared {
        mem,
        memory_map,
        created,
        devices,
        paravirt: Paravirt {
            interface: cfg.interface,
            hv,
            synic,
            hv_opts,
            xen: Arc::new(Mutex::new(XenState {
                sink: Some(Arc::new(MsiUpcall::new(vm))),
                ..XenState::new(u32::from(cfg.cpus))
            })),
        },
        nested_fixes: cfg.nested_fixes,
        control: Control {
            end: Mutex::new(None),
            end_cv: Condvar::new(),
            stop: AtomicBool::new(false),
            probe_round: AtomicU64::new(0),
            vcpu_state: (0..cfg.cpus).map(|_| AtomicU64::new(0)).collect(),
            exited: AtomicUsize::new(0),
            seccomp: cfg.seccomp,
        },
        stats: Stats {
            counts: Mutex::new(BTreeMap::new()),
            trace: Mutex::new(xen::Trace::default()),
            unclaimed: AtomicU64::new(0),
            samples: AtomicU64::new(0),
            samples_ring0: AtomicU64::new(0),
            final_regs: Mutex::new(vec![String::new(); usize::from(cfg.cpus)]),
            run_start: Mutex::new(None),
            timeline: Mutex::new(String::new()),
        },
        vp_requests: crate::vp_requests::VpRequests::new(
            usize::from(cfg.cpus),
            Some(MsiUpcall::new(vm)),
        ),
    }
}

/// The guest TSC for Hyper-V's reference time: its frequency (KVM_GET_TSC_KHZ), its offset
/// from the host TSC (IA32_TSC read through KVM_GET_MSRS between two host reads), and whether
/// the host TSC is invariant (/proc/cpuinfo `constant_tsc` and `nonstop_tsc`). Anything
/// unavailable leaves `hz` 0: TIME_REF_COUNT then counts from VM creation and the reference
/// TSC page says "use the MSR".
fn measure_tsc(vcpu: &VcpuFd) -> hyperv::TscInfo {
    const MSR_IA32_TSC: u32 = 0x10;
    let Ok(khz) = vcpu.get_tsc_khz() else {
        return hyperv::TscInfo::default();
    };
    let Ok(mut msrs) = kvm_bindings::Msrs::from_entries(&[kvm_bindings::kvm_msr_entry {
        index: MSR_IA32_TSC,
        ..Default::default()
    }]) else {
        return hyperv::TscInfo::default();
    };
    let t0 = hyperv::host_tsc();
    let n = vcpu.get_msrs(&mut msrs);
    let t1 = hyperv::host_tsc();
    if n.ok() != Some(1) {
        return hyperv::TscInfo::default();
    }
    let guest = msrs.as_slice()[0].data;
    let host_mid = t0 / 2 + t1 / 2;
    let flags = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let has = |f: &str| flags.split_whitespace().any(|w| w == f);
    hyperv::TscInfo {
        hz: u64::from(khz) * 1000,
        offset: guest.wrapping_sub(host_mid) as i64,
        reliable: has("constant_tsc") && has("nonstop_tsc"),
        base: guest,
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

/// Sends the synthetic-MSR range ([`MSR_FILTER_BASE`], [`MSR_FILTER_COUNT`]) to user space.
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
