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
