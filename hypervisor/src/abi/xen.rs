//! Xen ABI definitions: CPUID leaves, the hypercall MSR, hypercall numbers, sub-operation
//! numbers, errno values and the hypercall page's stub size.

/// Xen's CPUID base leaf with `Interface::Xen`.
pub const CPUID_BASE: u32 = 0x4000_0000;
/// Xen's CPUID base leaf with `Interface::Both` (Hyper-V takes 0x40000000).
pub const CPUID_BASE_BOTH: u32 = 0x4000_0100;
/// Leaf offset from the base: version (EAX = major << 16 | minor).
pub const CPUID_VERSION_OFFSET: u32 = 1;
/// Leaf offset from the base: hypercall pages (EAX) and hypercall MSR (EBX).
pub const CPUID_HYPERCALL_OFFSET: u32 = 2;
/// "XenVMMXenVMM": the vendor signature of the base leaf.
pub const VENDOR: &[u8; 12] = b"XenVMMXenVMM";
/// The Xen version we report: 4.16.
pub const VERSION: u32 = (4 << 16) | 16;
/// Hypercall pages the guest may fill (leaf base + 2, EAX).
pub const HYPERCALL_PAGES: u32 = 1;

/// The hypercall-page MSR with `Interface::Xen`.
pub const MSR_HYPERCALL: u32 = 0x4000_0000;
/// The hypercall-page MSR with `Interface::Both` (Hyper-V takes 0x40000000).
pub const MSR_HYPERCALL_BOTH: u32 = 0x4000_0200;
/// Hypercall MSR value bits 11:0: the page index (only page 0 exists).
pub const MSR_PAGE_INDEX_MASK: u64 = 0xfff;

/// Bytes of one hypercall stub in the page; stub `nr` is at `nr * STUB_SIZE`.
pub const STUB_SIZE: u64 = 32;

/// __HYPERVISOR_memory_op.
pub const HYPERVISOR_MEMORY_OP: u32 = 12;
/// __HYPERVISOR_xen_version.
pub const HYPERVISOR_XEN_VERSION: u32 = 17;
/// __HYPERVISOR_console_io.
pub const HYPERVISOR_CONSOLE_IO: u32 = 18;
/// __HYPERVISOR_sched_op.
pub const HYPERVISOR_SCHED_OP: u32 = 29;
/// __HYPERVISOR_hvm_op.
pub const HYPERVISOR_HVM_OP: u32 = 34;

/// xen_version: XENVER_version.
pub const XENVER_VERSION: u64 = 0;
/// xen_version: XENVER_extraversion.
pub const XENVER_EXTRAVERSION: u64 = 1;
/// xen_version: XENVER_get_features.
pub const XENVER_GET_FEATURES: u64 = 6;

/// console_io: CONSOLEIO_write.
pub const CONSOLEIO_WRITE: u64 = 0;
/// console_io: CONSOLEIO_read.
pub const CONSOLEIO_READ: u64 = 1;

/// sched_op: SCHEDOP_yield.
pub const SCHEDOP_YIELD: u64 = 0;
/// sched_op: SCHEDOP_block.
pub const SCHEDOP_BLOCK: u64 = 1;
/// sched_op: SCHEDOP_shutdown.
pub const SCHEDOP_SHUTDOWN: u64 = 2;
/// SCHEDOP_shutdown reason: SHUTDOWN_poweroff.
pub const SHUTDOWN_POWEROFF: u32 = 0;
/// SCHEDOP_shutdown reason: SHUTDOWN_reboot.
pub const SHUTDOWN_REBOOT: u32 = 1;
/// SCHEDOP_shutdown reason: SHUTDOWN_crash.
pub const SHUTDOWN_CRASH: u32 = 3;

/// memory_op: XENMEM_maximum_ram_page.
pub const XENMEM_MAXIMUM_RAM_PAGE: u64 = 2;
/// memory_op: XENMEM_current_reservation.
pub const XENMEM_CURRENT_RESERVATION: u64 = 3;
/// memory_op: XENMEM_maximum_reservation.
pub const XENMEM_MAXIMUM_RESERVATION: u64 = 4;
/// memory_op: XENMEM_memory_map.
pub const XENMEM_MEMORY_MAP: u64 = 9;
/// Size of one e820 entry in a XENMEM_memory_map buffer (addr u64, size u64, type u32).
pub const E820_ENTRY_SIZE: usize = 20;

/// hvm_op: HVMOP_set_param.
pub const HVMOP_SET_PARAM: u64 = 0;
/// hvm_op: HVMOP_get_param.
pub const HVMOP_GET_PARAM: u64 = 1;
/// Parameters HVMOP_get/set_param accept (Xen's HVM_NR_PARAMS is 39 for 4.16).
pub const HVM_NR_PARAMS: u32 = 39;

/// DOMID_SELF.
pub const DOMID_SELF: u16 = 0x7ff0;

/// -ENOSYS.
pub const ENOSYS: i64 = -38;
/// -EFAULT.
pub const EFAULT: i64 = -14;
/// -EINVAL.
pub const EINVAL: i64 = -22;
/// -ESRCH.
pub const ESRCH: i64 = -3;

/// `struct xen_feature_info { unsigned int submap_idx; uint32_t submap; }`: offset of
/// `submap` (and size of `submap_idx`).
pub const FEATURE_INFO_SUBMAP_OFFSET: u64 = 4;
/// `struct sched_shutdown { unsigned int reason; }`: size.
pub const SCHED_SHUTDOWN_SIZE: usize = 4;
/// `domid_t`: size (the XENMEM reservation queries read it first).
pub const DOMID_SIZE: usize = 2;
/// `struct xen_memory_map { unsigned int nr_entries; XEN_GUEST_HANDLE buffer; }`: size.
pub const MEMORY_MAP_SIZE: usize = 16;
/// `struct xen_memory_map`: offset of `buffer`.
pub const MEMORY_MAP_BUFFER_OFFSET: usize = 8;
/// `struct xen_hvm_param { domid_t domid; uint32_t index; uint64_t value; }`: size.
pub const HVM_PARAM_SIZE: usize = 16;
/// `struct xen_hvm_param`: offset of `index`.
pub const HVM_PARAM_INDEX_OFFSET: usize = 4;
/// `struct xen_hvm_param`: offset of `value`.
pub const HVM_PARAM_VALUE_OFFSET: usize = 8;
/// XENVER_extraversion: size of the caller's buffer.
pub const EXTRAVERSION_SIZE: usize = 16;

// ---- Hypercall numbers beyond the first five (xen.h) ----

/// __HYPERVISOR_set_timer_op: one-shot timer, absolute system time in ns (0 = stop).
pub const HYPERVISOR_SET_TIMER_OP: u32 = 15;
/// __HYPERVISOR_grant_table_op.
pub const HYPERVISOR_GRANT_TABLE_OP: u32 = 20;
/// __HYPERVISOR_vcpu_op.
pub const HYPERVISOR_VCPU_OP: u32 = 24;
/// __HYPERVISOR_event_channel_op.
pub const HYPERVISOR_EVENT_CHANNEL_OP: u32 = 32;
/// __HYPERVISOR_physdev_op.
pub const HYPERVISOR_PHYSDEV_OP: u32 = 33;

// ---- xen_version (version.h) ----

/// xen_version: XENVER_compile_info (`struct xen_compile_info`).
pub const XENVER_COMPILE_INFO: u64 = 2;
/// xen_version: XENVER_capabilities (`char[1024]`).
pub const XENVER_CAPABILITIES: u64 = 3;
/// xen_version: XENVER_changeset (`char[64]`).
pub const XENVER_CHANGESET: u64 = 4;
/// xen_version: XENVER_platform_parameters (`struct xen_platform_parameters`).
pub const XENVER_PLATFORM_PARAMETERS: u64 = 5;
/// xen_version: XENVER_pagesize (result in RAX).
pub const XENVER_PAGESIZE: u64 = 7;
/// xen_version: XENVER_guest_handle (`xen_domain_handle_t`, 16 bytes).
pub const XENVER_GUEST_HANDLE: u64 = 8;
/// `struct xen_compile_info { char compiler[64]; char compile_by[16];
/// char compile_domain[32]; char compile_date[32]; }`: field sizes in order.
pub const COMPILE_INFO_FIELDS: [usize; 4] = [64, 16, 32, 32];
/// `xen_capabilities_info_t`: size.
pub const CAPABILITIES_SIZE: usize = 1024;
/// `xen_changeset_info_t`: size.
pub const CHANGESET_SIZE: usize = 64;
/// `xen_domain_handle_t`: size.
pub const GUEST_HANDLE_SIZE: usize = 16;
/// `struct xen_platform_parameters { xen_ulong_t virt_start; }`: what x86-64 Xen reports
/// (HYPERVISOR_VIRT_START; an HVM guest's address space has no Xen hole, it is informative).
pub const PLATFORM_VIRT_START: u64 = 0xffff_8000_0000_0000;

// ---- features.h ----

/// XENFEAT_auto_translated_physmap: the guest sees guest-physical frames only (HVM).
pub const XENFEAT_AUTO_TRANSLATED_PHYSMAP: u32 = 2;
/// XENFEAT_hvm_callback_vector: event upcalls through an IDT vector.
pub const XENFEAT_HVM_CALLBACK_VECTOR: u32 = 8;
/// XENFEAT_hvm_safe_pvclock: the pvclock in vcpu_info is usable by an HVM guest.
pub const XENFEAT_HVM_SAFE_PVCLOCK: u32 = 9;
/// XENFEAT_hvm_pirqs: physical IRQs as event channels (not offered).
pub const XENFEAT_HVM_PIRQS: u32 = 10;
/// XENFEAT_NR_SUBMAPS: feature submaps that exist (only submap 0).
pub const XENFEAT_NR_SUBMAPS: u32 = 1;

// ---- memory.h ----

/// memory_op: XENMEM_add_to_physmap.
pub const XENMEM_ADD_TO_PHYSMAP: u64 = 7;
/// `struct xen_add_to_physmap { domid_t domid; uint16_t size; unsigned int space;
/// xen_ulong_t idx; xen_pfn_t gpfn; }`: size.
pub const ADD_TO_PHYSMAP_SIZE: usize = 24;
/// `struct xen_add_to_physmap`: offset of `space`.
pub const ADD_TO_PHYSMAP_SPACE_OFFSET: usize = 4;
/// `struct xen_add_to_physmap`: offset of `idx`.
pub const ADD_TO_PHYSMAP_IDX_OFFSET: usize = 8;
/// `struct xen_add_to_physmap`: offset of `gpfn`.
pub const ADD_TO_PHYSMAP_GPFN_OFFSET: usize = 16;
/// XENMAPSPACE_shared_info.
pub const XENMAPSPACE_SHARED_INFO: u32 = 0;
/// XENMAPSPACE_grant_table.
pub const XENMAPSPACE_GRANT_TABLE: u32 = 1;

// ---- shared_info / vcpu_info layout (xen.h, arch-x86/xen-x86_64.h) ----

/// Legacy vcpu_info slots inside shared_info (XEN_LEGACY_MAX_VCPUS).
pub const LEGACY_MAX_VCPUS: usize = 32;
/// `struct vcpu_info`: size.
pub const VCPU_INFO_SIZE: u64 = 64;
/// `struct vcpu_info`: offset of `uint8_t evtchn_upcall_pending`.
pub const VI_UPCALL_PENDING: u64 = 0;
/// `struct vcpu_info`: offset of `uint8_t evtchn_upcall_mask`.
pub const VI_UPCALL_MASK: u64 = 1;
/// `struct vcpu_info`: offset of `xen_ulong_t evtchn_pending_sel`.
pub const VI_PENDING_SEL: u64 = 8;
/// `struct vcpu_info`: offset of `struct vcpu_time_info time` (after `arch`, 16 bytes).
pub const VI_TIME: u64 = 32;
/// `struct vcpu_time_info`: offset of `uint32_t version`.
pub const TI_VERSION: u64 = 0;
/// `struct vcpu_time_info`: offset of `uint64_t tsc_timestamp`.
pub const TI_TSC_TIMESTAMP: u64 = 8;
/// `struct vcpu_time_info`: offset of `uint64_t system_time`.
pub const TI_SYSTEM_TIME: u64 = 16;
/// `struct vcpu_time_info`: offset of `uint32_t tsc_to_system_mul`.
pub const TI_MUL: u64 = 24;
/// `struct vcpu_time_info`: offset of `int8_t tsc_shift`.
pub const TI_SHIFT: u64 = 28;
/// `struct vcpu_time_info`: offset of `uint8_t flags`.
pub const TI_FLAGS: u64 = 29;
/// XEN_PVCLOCK_TSC_STABLE_BIT: the TSC is synchronised across vCPUs.
pub const PVCLOCK_TSC_STABLE: u8 = 1;
/// `struct shared_info`: offset of `xen_ulong_t evtchn_pending[64]`.
pub const SI_EVTCHN_PENDING: u64 = 2048;
/// `struct shared_info`: offset of `xen_ulong_t evtchn_mask[64]`.
pub const SI_EVTCHN_MASK: u64 = 2560;
/// `struct shared_info`: offset of `uint32_t wc_version`.
pub const SI_WC_VERSION: u64 = 3072;
/// `struct shared_info`: offset of `uint32_t wc_sec`.
pub const SI_WC_SEC: u64 = 3076;
/// `struct shared_info`: offset of `uint32_t wc_nsec`.
pub const SI_WC_NSEC: u64 = 3080;
/// `struct shared_info`: offset of `uint32_t wc_sec_hi` (x86-64).
pub const SI_WC_SEC_HI: u64 = 3084;
/// `struct shared_info`: offset of `arch.max_pfn`.
pub const SI_ARCH_MAX_PFN: u64 = 3088;

// ---- vcpu.h ----

/// vcpu_op: VCPUOP_up.
pub const VCPUOP_UP: u64 = 1;
/// vcpu_op: VCPUOP_down.
pub const VCPUOP_DOWN: u64 = 2;
/// vcpu_op: VCPUOP_is_up.
pub const VCPUOP_IS_UP: u64 = 3;
/// vcpu_op: VCPUOP_register_runstate_memory_area.
pub const VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA: u64 = 5;
/// vcpu_op: VCPUOP_stop_periodic_timer.
pub const VCPUOP_STOP_PERIODIC_TIMER: u64 = 7;
/// vcpu_op: VCPUOP_set_singleshot_timer.
pub const VCPUOP_SET_SINGLESHOT_TIMER: u64 = 8;
/// vcpu_op: VCPUOP_stop_singleshot_timer.
pub const VCPUOP_STOP_SINGLESHOT_TIMER: u64 = 9;
/// vcpu_op: VCPUOP_register_vcpu_info.
pub const VCPUOP_REGISTER_VCPU_INFO: u64 = 10;
/// `struct vcpu_register_vcpu_info { uint64_t mfn; uint32_t offset; uint32_t rsvd; }`: size.
pub const REGISTER_VCPU_INFO_SIZE: usize = 16;
/// `struct vcpu_set_singleshot_timer { uint64_t timeout_abs_ns; uint32_t flags; }`: size.
pub const SINGLESHOT_TIMER_SIZE: usize = 16;
/// VCPU_SSHOTTMR_future: fail with -ETIME when the deadline has passed.
pub const VCPU_SSHOTTMR_FUTURE: u32 = 1;
/// `struct vcpu_runstate_info { int state; uint64_t state_entry_time; uint64_t time[4]; }`:
/// size (x86-64 alignment).
pub const RUNSTATE_INFO_SIZE: usize = 48;

// ---- event_channel.h ----

/// EVTCHNOP_bind_interdomain.
pub const EVTCHNOP_BIND_INTERDOMAIN: u64 = 0;
/// EVTCHNOP_bind_virq.
pub const EVTCHNOP_BIND_VIRQ: u64 = 1;
/// EVTCHNOP_close.
pub const EVTCHNOP_CLOSE: u64 = 3;
/// EVTCHNOP_send.
pub const EVTCHNOP_SEND: u64 = 4;
/// EVTCHNOP_status.
pub const EVTCHNOP_STATUS: u64 = 5;
/// EVTCHNOP_alloc_unbound.
pub const EVTCHNOP_ALLOC_UNBOUND: u64 = 6;
/// EVTCHNOP_bind_ipi.
pub const EVTCHNOP_BIND_IPI: u64 = 7;
/// EVTCHNOP_bind_vcpu.
pub const EVTCHNOP_BIND_VCPU: u64 = 8;
/// EVTCHNOP_unmask.
pub const EVTCHNOP_UNMASK: u64 = 9;
/// EVTCHNOP_init_control (FIFO ABI: not offered, the guest keeps the 2-level ABI).
pub const EVTCHNOP_INIT_CONTROL: u64 = 11;
/// Ports of the 2-level ABI on x86-64: 64 words of 64 bits.
pub const EVTCHN_2L_NR_CHANNELS: u32 = 4096;
/// NR_VIRQS.
pub const NR_VIRQS: u32 = 24;
/// VIRQ_TIMER (per vCPU).
pub const VIRQ_TIMER: u32 = 0;
/// VIRQ_DEBUG (per vCPU).
pub const VIRQ_DEBUG: u32 = 1;
/// VIRQ_XENOPROF (per vCPU).
pub const VIRQ_XENOPROF: u32 = 6;
/// VIRQ_XENPMU (per vCPU).
pub const VIRQ_XENPMU: u32 = 13;
/// EVTCHNSTAT_closed.
pub const EVTCHNSTAT_CLOSED: u32 = 0;
/// EVTCHNSTAT_unbound.
pub const EVTCHNSTAT_UNBOUND: u32 = 1;
/// EVTCHNSTAT_virq.
pub const EVTCHNSTAT_VIRQ: u32 = 4;
/// EVTCHNSTAT_ipi.
pub const EVTCHNSTAT_IPI: u32 = 5;
/// `struct evtchn_status`: size (dom, port, status, vcpu, union u).
pub const EVTCHN_STATUS_SIZE: usize = 24;

// ---- sched.h ----

/// sched_op: SCHEDOP_poll.
pub const SCHEDOP_POLL: u64 = 3;
/// sched_op: SCHEDOP_shutdown_code.
pub const SCHEDOP_SHUTDOWN_CODE: u64 = 5;
/// SCHEDOP_shutdown reason: SHUTDOWN_suspend.
pub const SHUTDOWN_SUSPEND: u32 = 2;
/// SCHEDOP_shutdown reason: SHUTDOWN_watchdog.
pub const SHUTDOWN_WATCHDOG: u32 = 4;
/// `struct sched_poll { XEN_GUEST_HANDLE ports; unsigned int nr_ports; uint64_t timeout; }`:
/// size.
pub const SCHED_POLL_SIZE: usize = 24;
/// Most ports one SCHEDOP_poll may name (Xen: 128).
pub const SCHED_POLL_MAX_PORTS: u32 = 128;

// ---- hvm_op.h / params.h ----

/// hvm_op: HVMOP_pagetable_dying.
pub const HVMOP_PAGETABLE_DYING: u64 = 9;
/// hvm_op: HVMOP_set_evtchn_upcall_vector.
pub const HVMOP_SET_EVTCHN_UPCALL_VECTOR: u64 = 23;
/// HVM_PARAM_CALLBACK_IRQ.
pub const HVM_PARAM_CALLBACK_IRQ: u32 = 0;
/// HVM_PARAM_CALLBACK_IRQ value bits 63:56: the callback type.
pub const HVM_PARAM_CALLBACK_TYPE_SHIFT: u32 = 56;
/// Callback type 2: an IDT vector (bits 7:0).
pub const HVM_PARAM_CALLBACK_TYPE_VECTOR: u64 = 2;
/// HVM parameters a guest may set on itself (Xen's `hvm_allow_set_param`): CALLBACK_IRQ,
/// STORE_EVTCHN, VM86_TSS, CONSOLE_EVTCHN, ACPI_IOPORTS_LOCATION, VM_GENERATION_ID_ADDR,
/// X87_FIP_WIDTH, VM86_TSS_SIZED; the others give -EPERM.
pub const HVM_GUEST_SETTABLE_PARAMS: [u32; 8] = [0, 2, 15, 18, 19, 34, 36, 37];
/// Lowest vector HVMOP_set_evtchn_upcall_vector accepts.
pub const UPCALL_VECTOR_MIN: u8 = 0x10;

// ---- errno (Xen's public errno.h) ----

/// -ENOENT.
pub const ENOENT: i64 = -2;
/// -EPERM.
pub const EPERM: i64 = -1;
/// -EEXIST.
pub const EEXIST: i64 = -17;
/// -ENOSPC.
pub const ENOSPC: i64 = -28;
/// -ETIME.
pub const ETIME: i64 = -62;

/// vcpu_op: VCPUOP_set_periodic_timer.
pub const VCPUOP_SET_PERIODIC_TIMER: u64 = 6;
/// vcpu_op: VCPUOP_register_vcpu_time_memory_area (not offered: -ENOSYS).
pub const VCPUOP_REGISTER_VCPU_TIME_MEMORY_AREA: u64 = 13;
/// Shortest period VCPUOP_set_periodic_timer accepts (Xen: 1 ms, else -EINVAL).
pub const PERIODIC_MIN_NS: u64 = 1_000_000;
/// Longest period: Xen's STIME_DELTA_MAX (2^62 - 1 ns); a longer one is -EINVAL.
pub const PERIODIC_MAX_NS: u64 = (1 << 62) - 1;
/// EVTCHNSTAT_interdomain.
pub const EVTCHNSTAT_INTERDOMAIN: u32 = 2;
/// The domain id this adapter's guest has (it is alone: the id Xen reports for DOMID_SELF
/// in status answers; 0 is also accepted as "self" by the calls that take a domid).
pub const OWN_DOMID: u16 = 0;
/// -EOPNOTSUPP.
pub const EOPNOTSUPP: i64 = -95;
/// physdev_op: PHYSDEVOP_eoi.
pub const PHYSDEVOP_EOI: u64 = 12;
/// physdev_op: PHYSDEVOP_irq_status_query.
pub const PHYSDEVOP_IRQ_STATUS_QUERY: u64 = 5;
/// physdev_op: PHYSDEVOP_map_pirq.
pub const PHYSDEVOP_MAP_PIRQ: u64 = 13;
/// physdev_op: PHYSDEVOP_unmap_pirq.
pub const PHYSDEVOP_UNMAP_PIRQ: u64 = 14;
/// physdev_op: PHYSDEVOP_get_free_pirq.
pub const PHYSDEVOP_GET_FREE_PIRQ: u64 = 23;
/// physdev_op: PHYSDEVOP_pci_mmcfg_reserved.
pub const PHYSDEVOP_PCI_MMCFG_RESERVED: u64 = 24;
/// physdev_op: PHYSDEVOP_pci_device_add.
pub const PHYSDEVOP_PCI_DEVICE_ADD: u64 = 25;
/// physdev_op: PHYSDEVOP_pci_device_remove.
pub const PHYSDEVOP_PCI_DEVICE_REMOVE: u64 = 26;
/// physdev_op: PHYSDEVOP_pirq_eoi_gmfn_v2 (PV only).
pub const PHYSDEVOP_PIRQ_EOI_GMFN_V2: u64 = 28;
/// physdev_op: PHYSDEVOP_dbgp_op.
pub const PHYSDEVOP_DBGP_OP: u64 = 29;
/// xen_version: XENVER_commandline (Xen's own command line: privileged domains only).
pub const XENVER_COMMANDLINE: u64 = 9;
/// xen_version: XENVER_build_id (privileged domains only).
pub const XENVER_BUILD_ID: u64 = 10;
/// CPUID leaf base+3: TSC mode and frequency (all zero here: Linux HVM does not read it).
pub const CPUID_TIME_OFFSET: u32 = 3;
/// CPUID leaf base+4: HVM-specific features (EAX flags).
pub const CPUID_HVM_OFFSET: u32 = 4;
/// CPUID base+4 EAX XEN_HVM_CPUID_UPCALL_VECTOR: HVMOP_set_evtchn_upcall_vector works (a
/// per-vCPU vector through the local APIC, which the guest EOIs). Linux then takes it
/// instead of the HVM_PARAM_CALLBACK_IRQ vector, which Xen raises without the LAPIC's
/// in-service bit (no EOI) and which here, through KVM's LAPIC, would need one.
pub const XEN_HVM_CPUID_UPCALL_VECTOR: u32 = 1 << 6;
