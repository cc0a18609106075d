//! Hyper-V Top-Level Functional Specification (TLFS) definitions: CPUID leaves and bits,
//! synthetic MSRs, hypercall codes, the hypercall input/result value layout and status codes.

/// CPUID leaf: vendor signature and highest hypervisor leaf (EAX).
pub const CPUID_VENDOR_AND_MAX: u32 = 0x4000_0000;
/// CPUID leaf: interface signature (EAX = "Hv#1").
pub const CPUID_INTERFACE: u32 = 0x4000_0001;
/// CPUID leaf: hypervisor system identity (build, version, service pack).
pub const CPUID_VERSION: u32 = 0x4000_0002;
/// CPUID leaf: partition privileges (EAX, EBX) and features.
pub const CPUID_FEATURES: u32 = 0x4000_0003;
/// CPUID leaf: implementation recommendations (EAX) and spin-wait retries (EBX).
pub const CPUID_ENLIGHTENMENTS: u32 = 0x4000_0004;
/// CPUID leaf: implementation limits (virtual and logical processors).
pub const CPUID_LIMITS: u32 = 0x4000_0005;
/// The first leaf after the ones we fill in; leaves up to [`CPUID_MAX_LEAF`] read as zero.
pub const CPUID_FIRST_ZERO_LEAF: u32 = 0x4000_0006;
/// Highest Hyper-V CPUID leaf we report.
pub const CPUID_MAX_LEAF: u32 = 0x4000_000A;

/// "hvcertHyperV": our vendor signature in leaf 0x40000000 (Linux keys on "Hv#1" in
/// 0x40000001).
pub const VENDOR: &[u8; 12] = b"hvcertHyperV";
/// "Hv#1", the interface signature in leaf 0x40000001 EAX.
pub const INTERFACE_SIG: u32 = 0x3123_7648;
/// Leaf 0x40000002 EAX: build number 1.
pub const VERSION_BUILD: u32 = 1;
/// Leaf 0x40000002 EBX: version 10.0 (major 31:16, minor 15:0).
pub const VERSION_MAJOR_MINOR: u32 = 0x000A_0000;

/// Leaf 0x40000003 EAX bit: AccessPartitionReferenceCounter (TIME_REF_COUNT).
pub const PRIV_ACCESS_PARTITION_REFERENCE_COUNTER: u32 = 1 << 1;
/// Leaf 0x40000003 EAX bit: AccessHypercallMsrs (GUEST_OS_ID, HYPERCALL).
pub const PRIV_ACCESS_HYPERCALL_MSRS: u32 = 1 << 5;
/// Leaf 0x40000003 EAX bit: AccessVpIndex.
pub const PRIV_ACCESS_VP_INDEX: u32 = 1 << 6;
/// Leaf 0x40000003 EBX bit: Debugging (HvCallPostDebugData / HvCallRetrieveDebugData).
pub const PRIV_DEBUGGING: u32 = 1 << 11;
/// Leaf 0x40000004 EAX bit: use a hypercall for local TLB flushes.
pub const RECOMMEND_HYPERCALL_LOCAL_FLUSH: u32 = 1 << 1;
/// Leaf 0x40000004 EAX bit: use a hypercall for remote TLB flushes.
pub const RECOMMEND_HYPERCALL_REMOTE_FLUSH: u32 = 1 << 2;

/// Partition privileges we grant (leaf 0x40000003 EAX).
pub const PRIV_EAX: u32 =
    PRIV_ACCESS_PARTITION_REFERENCE_COUNTER | PRIV_ACCESS_HYPERCALL_MSRS | PRIV_ACCESS_VP_INDEX;
/// Partition privileges we grant (leaf 0x40000003 EBX).
pub const PRIV_EBX: u32 = PRIV_DEBUGGING;
/// Recommendations we make (leaf 0x40000004 EAX).
pub const RECOMMEND_EAX: u32 = RECOMMEND_HYPERCALL_LOCAL_FLUSH | RECOMMEND_HYPERCALL_REMOTE_FLUSH;
/// Spin-wait retries before HvCallNotifyLongSpinWait (leaf 0x40000004 EBX).
pub const SPIN_RETRIES: u32 = 0x1000;
/// Virtual and logical processors we report in leaf 0x40000005 (EAX, EBX).
pub const MAX_PROCESSORS: u32 = 255;

/// First synthetic MSR.
pub const MSR_FIRST: u32 = 0x4000_0000;
/// Last synthetic MSR of the Hyper-V range.
pub const MSR_LAST: u32 = 0x4000_00ff;
/// HV_X64_MSR_GUEST_OS_ID.
pub const MSR_GUEST_OS_ID: u32 = 0x4000_0000;
/// HV_X64_MSR_HYPERCALL: page GPA 63:12, locked (1), enable (0).
pub const MSR_HYPERCALL: u32 = 0x4000_0001;
/// HV_X64_MSR_VP_INDEX (read-only).
pub const MSR_VP_INDEX: u32 = 0x4000_0002;
/// HV_X64_MSR_TIME_REF_COUNT (read-only, 100 ns units).
pub const MSR_TIME_REF_COUNT: u32 = 0x4000_0020;

/// HYPERCALL MSR bit 0: the hypercall page is enabled.
pub const HYPERCALL_ENABLE: u64 = 1 << 0;
/// HYPERCALL MSR bit 1: the MSR is locked (writes are ignored).
pub const HYPERCALL_LOCKED: u64 = 1 << 1;
/// HYPERCALL MSR bits 11:2, reserved.
pub const HYPERCALL_RESERVED: u64 = 0xffc;
/// HYPERCALL MSR bits 11:0 (everything below the page number).
pub const HYPERCALL_PAGE_OFFSET_MASK: u64 = 0xfff;

/// HV_STATUS_SUCCESS.
pub const HV_STATUS_SUCCESS: u16 = 0;
/// HV_STATUS_INVALID_HYPERCALL_CODE.
pub const HV_STATUS_INVALID_HYPERCALL_CODE: u16 = 2;
/// HV_STATUS_INVALID_HYPERCALL_INPUT.
pub const HV_STATUS_INVALID_HYPERCALL_INPUT: u16 = 3;
/// HV_STATUS_INVALID_ALIGNMENT.
pub const HV_STATUS_INVALID_ALIGNMENT: u16 = 4;
/// HV_STATUS_INVALID_PARAMETER.
pub const HV_STATUS_INVALID_PARAMETER: u16 = 5;

/// HvCallFlushVirtualAddressSpace.
pub const CALL_FLUSH_VA_SPACE: u16 = 0x0002;
/// HvCallFlushVirtualAddressList (a rep call).
pub const CALL_FLUSH_VA_LIST: u16 = 0x0003;
/// HvCallNotifyLongSpinWait.
pub const CALL_NOTIFY_LONG_SPIN_WAIT: u16 = 0x0008;
/// HvCallPostDebugData.
pub const CALL_POST_DEBUG_DATA: u16 = 0x0069;
/// HvCallRetrieveDebugData.
pub const CALL_RETRIEVE_DEBUG_DATA: u16 = 0x006A;

/// Input value: call code, bits 15:0.
pub const INPUT_CODE_MASK: u64 = 0xffff;
/// Input value: fast-call flag, bit 16.
pub const INPUT_FAST: u64 = 1 << 16;
/// Input value: variable header size in qwords, bits 26:17 (shift).
pub const INPUT_VAR_HEADER_SHIFT: u32 = 17;
/// Input value: variable header size (mask after the shift).
pub const INPUT_VAR_HEADER_MASK: u64 = 0x3ff;
/// Input value: rep count, bits 43:32 (shift).
pub const INPUT_REP_COUNT_SHIFT: u32 = 32;
/// Input value: rep start index, bits 59:48 (shift).
pub const INPUT_REP_START_SHIFT: u32 = 48;
/// Input value and result value: rep count/start/completed mask after the shift (12 bits).
pub const REP_MASK: u64 = 0xfff;
/// RsvdZ bits of the input value: 31:27, 47:44, 63:60.
pub const INPUT_RSVD_MASK: u64 = (0x1f << 27) | (0xf << 44) | (0xf << 60);
/// Result value: reps completed, bits 43:32 (shift); the status is bits 15:0.
pub const RESULT_REPS_SHIFT: u32 = 32;

/// HvCallFlushVirtualAddressSpace/List flags defined by the TLFS (HV_FLUSH_ALL_PROCESSORS,
/// HV_FLUSH_ALL_VIRTUAL_ADDRESS_SPACES, HV_FLUSH_NON_GLOBAL_MAPPINGS_ONLY,
/// HV_FLUSH_USE_EXTENDED_RANGE_FORMAT).
pub const FLUSH_FLAGS_VALID: u64 = 0xf;
/// Flush input block: offset of AddressSpace (u64).
pub const FLUSH_ADDRESS_SPACE_OFFSET: u64 = 0;
/// Flush input block: offset of Flags (u64).
pub const FLUSH_FLAGS_OFFSET: u64 = 8;
/// Flush input block: offset of ProcessorMask (u64).
pub const FLUSH_PROCESSOR_MASK_OFFSET: u64 = 16;
/// Flush-list input block: offset of the first GVA range (one u64 per rep).
pub const FLUSH_LIST_FIRST_RANGE_OFFSET: u64 = 24;

/// Largest Count of a debug-data call (one page minus the header).
pub const DEBUG_DATA_MAX: u32 = 4096 - 16;
/// HvCallPostDebugData input header size (Count u32, Options u32).
pub const POST_DEBUG_HEADER_SIZE: usize = 8;
/// HvCallRetrieveDebugData input header size (Count u32, Options u32, Timeout u64).
pub const RETRIEVE_DEBUG_HEADER_SIZE: usize = 16;
/// Debug-data output size (two u32 counts).
pub const DEBUG_DATA_OUTPUT_SIZE: usize = 8;
/// Memory-based calls: input and output GPAs must be 8-byte aligned (these bits clear).
pub const GPA_ALIGN_MASK: u64 = 7;
