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

/// "Microsoft Hv": the default vendor signature in leaf 0x40000000, as QEMU's
/// `hv-vendor-id` default; Linux's `ms_hyperv_platform()` accepts only this one (with a max
/// leaf of at least [`CPUID_LINUX_MIN_LEAF`]). Configurable through `HvConfig::vendor`.
pub const VENDOR: &[u8; 12] = b"Microsoft Hv";
/// The lowest max leaf Linux accepts in leaf 0x40000000 EAX (HYPERV_CPUID_MIN).
pub const CPUID_LINUX_MIN_LEAF: u32 = 0x4000_0005;
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

/// Leaf 0x40000003 EAX bit: AccessVpRunTimeReg (VP_RUNTIME).
pub const PRIV_ACCESS_VP_RUNTIME: u32 = 1 << 0;
/// Leaf 0x40000003 EAX bit: AccessSynicRegs (SCONTROL, SVERSION, SIEFP, SIMP, EOM, SINTx).
pub const PRIV_ACCESS_SYNIC_REGS: u32 = 1 << 2;
/// Leaf 0x40000003 EAX bit: AccessIntrCtrlRegs (VP_ASSIST_PAGE; EOI/ICR/TPR).
pub const PRIV_ACCESS_INTR_CTRL_REGS: u32 = 1 << 4;
/// Leaf 0x40000003 EAX bit: AccessResetReg (RESET).
pub const PRIV_ACCESS_RESET_REG: u32 = 1 << 7;
/// Leaf 0x40000003 EAX bit: AccessPartitionReferenceTsc (REFERENCE_TSC).
pub const PRIV_ACCESS_PARTITION_REFERENCE_TSC: u32 = 1 << 9;
/// Leaf 0x40000003 EAX bit: AccessGuestIdleReg (GUEST_IDLE).
pub const PRIV_ACCESS_GUEST_IDLE_REG: u32 = 1 << 10;
/// Leaf 0x40000003 EAX bit: AccessFrequencyRegs (TSC_FREQUENCY, APIC_FREQUENCY).
pub const PRIV_ACCESS_FREQUENCY_REGS: u32 = 1 << 11;
/// Leaf 0x40000003 EBX bit: PostMessages (HvCallPostMessage).
pub const PRIV_POST_MESSAGES: u32 = 1 << 4;
/// Leaf 0x40000003 EBX bit: SignalEvents (HvCallSignalEvent).
pub const PRIV_SIGNAL_EVENTS: u32 = 1 << 5;
/// Leaf 0x40000003 EDX bit: GuestIdleStateAvailable.
pub const FEAT_GUEST_IDLE_STATE: u32 = 1 << 5;
/// Leaf 0x40000003 EDX bit: FrequencyRegsAvailable (timer frequency details).
pub const FEAT_FREQUENCY_REGS: u32 = 1 << 8;
/// Leaf 0x40000003 EDX bit: GuestCrashRegsAvailable (CRASH_P0..P4, CRASH_CTL).
pub const FEAT_GUEST_CRASH_REGS: u32 = 1 << 10;
/// Leaf 0x40000003 EDX bit: HypercallMsrLockAvailable.
pub const FEAT_HYPERCALL_MSR_LOCK: u32 = 1 << 18;
/// Leaf 0x40000004 EAX bit: use the RESET MSR to reset the partition.
pub const RECOMMEND_RESET_MSR: u32 = 1 << 4;
/// Leaf 0x40000004 EAX bit: relaxed timing (no watchdogs on timing).
pub const RECOMMEND_RELAXED_TIMING: u32 = 1 << 5;
/// Leaf 0x40000004 EAX bit: use HvCallSendSyntheticClusterIpi(Ex) instead of the APIC's ICR.
pub const RECOMMEND_CLUSTER_IPI: u32 = 1 << 10;
/// Leaf 0x40000004 EAX bit: use the Ex hypercalls (HV_VP_SET processor sets).
pub const RECOMMEND_EX_PROCESSOR_MASKS: u32 = 1 << 11;
/// Leaf 0x40000003 EDX bit: XmmRegistersForFastHypercallAvailable (fast input in XMM0-5).
pub const FEAT_XMM_HYPERCALL_INPUT: u32 = 1 << 4;

/// Partition privileges granted by default (leaf 0x40000003 EAX): everything implemented.
pub const PRIV_EAX: u32 = PRIV_ACCESS_VP_RUNTIME
    | PRIV_ACCESS_PARTITION_REFERENCE_COUNTER
    | PRIV_ACCESS_SYNIC_REGS
    | PRIV_ACCESS_INTR_CTRL_REGS
    | PRIV_ACCESS_HYPERCALL_MSRS
    | PRIV_ACCESS_VP_INDEX
    | PRIV_ACCESS_RESET_REG
    | PRIV_ACCESS_PARTITION_REFERENCE_TSC
    | PRIV_ACCESS_GUEST_IDLE_REG
    | PRIV_ACCESS_FREQUENCY_REGS
    | super::hv_synic::PRIV_ACCESS_SYNTHETIC_TIMER_REGS;
/// Partition privileges granted by default (leaf 0x40000003 EBX).
pub const PRIV_EBX: u32 = PRIV_POST_MESSAGES | PRIV_SIGNAL_EVENTS | PRIV_DEBUGGING;
/// Features reported by default (leaf 0x40000003 EDX).
pub const FEAT_EDX: u32 = FEAT_GUEST_IDLE_STATE
    | FEAT_FREQUENCY_REGS
    | FEAT_GUEST_CRASH_REGS
    | FEAT_HYPERCALL_MSR_LOCK
    | super::hv_synic::FEAT_DIRECT_SYNTHETIC_TIMERS
    | FEAT_XMM_HYPERCALL_INPUT;
/// Recommendations made by default (leaf 0x40000004 EAX).
pub const RECOMMEND_EAX: u32 = RECOMMEND_HYPERCALL_LOCAL_FLUSH
    | RECOMMEND_HYPERCALL_REMOTE_FLUSH
    | RECOMMEND_RESET_MSR
    | RECOMMEND_RELAXED_TIMING
    | super::hv_synic::RECOMMEND_DEPRECATING_AUTO_EOI
    | RECOMMEND_CLUSTER_IPI
    | RECOMMEND_EX_PROCESSOR_MASKS;

/// Which CPUID register a named bit lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FeatureReg {
    /// Leaf 0x40000003 EAX: partition privileges, low half.
    PrivEax,
    /// Leaf 0x40000003 EBX: partition privileges, high half.
    PrivEbx,
    /// Leaf 0x40000003 EDX: features.
    FeatEdx,
    /// Leaf 0x40000004 EAX: implementation recommendations.
    RecommendEax,
    /// Leaf 0x40000004 EBX: spin-wait retries before HvCallNotifyLongSpinWait (a count, not
    /// bits: 0 or 0xFFFFFFFF means "never notify").
    RecommendEbx,
}

/// TLFS names of the privilege, feature and recommendation bits, with their register and bit
/// mask (names as the TLFS's HV_PARTITION_PRIVILEGE_MASK and feature/recommendation tables).
pub const FEATURE_NAMES: &[(&str, FeatureReg, u32)] = &[
    ("AccessVpRunTimeReg", FeatureReg::PrivEax, 1 << 0),
    (
        "AccessPartitionReferenceCounter",
        FeatureReg::PrivEax,
        1 << 1,
    ),
    ("AccessSynicRegs", FeatureReg::PrivEax, 1 << 2),
    ("AccessSyntheticTimerRegs", FeatureReg::PrivEax, 1 << 3),
    ("AccessIntrCtrlRegs", FeatureReg::PrivEax, 1 << 4),
    ("AccessHypercallMsrs", FeatureReg::PrivEax, 1 << 5),
    ("AccessVpIndex", FeatureReg::PrivEax, 1 << 6),
    ("AccessResetReg", FeatureReg::PrivEax, 1 << 7),
    ("AccessStatsReg", FeatureReg::PrivEax, 1 << 8),
    ("AccessPartitionReferenceTsc", FeatureReg::PrivEax, 1 << 9),
    ("AccessGuestIdleReg", FeatureReg::PrivEax, 1 << 10),
    ("AccessFrequencyRegs", FeatureReg::PrivEax, 1 << 11),
    ("AccessDebugRegs", FeatureReg::PrivEax, 1 << 12),
    (
        "AccessReenlightenmentControls",
        FeatureReg::PrivEax,
        1 << 13,
    ),
    ("CreatePartitions", FeatureReg::PrivEbx, 1 << 0),
    ("AccessPartitionId", FeatureReg::PrivEbx, 1 << 1),
    ("AccessMemoryPool", FeatureReg::PrivEbx, 1 << 2),
    ("AdjustMessageBuffers", FeatureReg::PrivEbx, 1 << 3),
    ("PostMessages", FeatureReg::PrivEbx, 1 << 4),
    ("SignalEvents", FeatureReg::PrivEbx, 1 << 5),
    ("CreatePort", FeatureReg::PrivEbx, 1 << 6),
    ("ConnectPort", FeatureReg::PrivEbx, 1 << 7),
    ("AccessStats", FeatureReg::PrivEbx, 1 << 8),
    ("Debugging", FeatureReg::PrivEbx, 1 << 11),
    ("CpuManagement", FeatureReg::PrivEbx, 1 << 12),
    ("AccessVSM", FeatureReg::PrivEbx, 1 << 16),
    ("AccessVpRegisters", FeatureReg::PrivEbx, 1 << 17),
    ("EnableExtendedHypercalls", FeatureReg::PrivEbx, 1 << 20),
    ("StartVirtualProcessor", FeatureReg::PrivEbx, 1 << 21),
    ("GuestDebuggingAvailable", FeatureReg::FeatEdx, 1 << 1),
    ("PerformanceMonitorAvailable", FeatureReg::FeatEdx, 1 << 2),
    (
        "XmmRegistersForFastHypercallAvailable",
        FeatureReg::FeatEdx,
        1 << 4,
    ),
    ("GuestIdleStateAvailable", FeatureReg::FeatEdx, 1 << 5),
    ("FrequencyRegsAvailable", FeatureReg::FeatEdx, 1 << 8),
    ("GuestCrashRegsAvailable", FeatureReg::FeatEdx, 1 << 10),
    ("DebugRegsAvailable", FeatureReg::FeatEdx, 1 << 11),
    ("HypercallMsrLockAvailable", FeatureReg::FeatEdx, 1 << 18),
    ("DirectSyntheticTimers", FeatureReg::FeatEdx, 1 << 19),
    (
        "UseHypercallForAddressSpaceSwitch",
        FeatureReg::RecommendEax,
        1 << 0,
    ),
    (
        "UseHypercallForLocalFlush",
        FeatureReg::RecommendEax,
        1 << 1,
    ),
    (
        "UseHypercallForRemoteFlushAndLocalFlushEntire",
        FeatureReg::RecommendEax,
        1 << 2,
    ),
    ("UseApicMsrs", FeatureReg::RecommendEax, 1 << 3),
    ("UseHvRegisterForReset", FeatureReg::RecommendEax, 1 << 4),
    ("UseRelaxedTiming", FeatureReg::RecommendEax, 1 << 5),
    ("DeprecatingAutoEOI", FeatureReg::RecommendEax, 1 << 9),
    ("UseSyntheticClusterIpi", FeatureReg::RecommendEax, 1 << 10),
    ("UseExProcessorMasks", FeatureReg::RecommendEax, 1 << 11),
    // Not a TLFS bit name: hvcert's name for leaf 0x40000004 EBX, the spin-wait retry count
    // (SPIN_RETRIES when set, 0 = never notify when cleared). KVM gates
    // HvCallNotifyLongSpinWait on it (hyperv_features sets EBX to open that stage).
    (
        "LongSpinWaitRetries",
        FeatureReg::RecommendEbx,
        SPIN_RETRIES,
    ),
];

/// The register and bit that gates each implemented synthetic MSR (first..=last), as the TLFS
/// and KVM's hyperv_features stages assign them. An MSR not listed raises #GP.
pub const MSR_GATES: &[(u32, u32, FeatureReg, u32)] = &[
    (
        MSR_GUEST_OS_ID,
        MSR_HYPERCALL,
        FeatureReg::PrivEax,
        PRIV_ACCESS_HYPERCALL_MSRS,
    ),
    (
        MSR_VP_INDEX,
        MSR_VP_INDEX,
        FeatureReg::PrivEax,
        PRIV_ACCESS_VP_INDEX,
    ),
    (
        MSR_RESET,
        MSR_RESET,
        FeatureReg::PrivEax,
        PRIV_ACCESS_RESET_REG,
    ),
    (
        MSR_VP_RUNTIME,
        MSR_VP_RUNTIME,
        FeatureReg::PrivEax,
        PRIV_ACCESS_VP_RUNTIME,
    ),
    (
        MSR_TIME_REF_COUNT,
        MSR_TIME_REF_COUNT,
        FeatureReg::PrivEax,
        PRIV_ACCESS_PARTITION_REFERENCE_COUNTER,
    ),
    (
        MSR_REFERENCE_TSC,
        MSR_REFERENCE_TSC,
        FeatureReg::PrivEax,
        PRIV_ACCESS_PARTITION_REFERENCE_TSC,
    ),
    (
        MSR_TSC_FREQUENCY,
        MSR_APIC_FREQUENCY,
        FeatureReg::PrivEax,
        PRIV_ACCESS_FREQUENCY_REGS,
    ),
    (
        MSR_VP_ASSIST_PAGE,
        MSR_VP_ASSIST_PAGE,
        FeatureReg::PrivEax,
        PRIV_ACCESS_INTR_CTRL_REGS,
    ),
    (
        MSR_SCONTROL,
        MSR_EOM,
        FeatureReg::PrivEax,
        PRIV_ACCESS_SYNIC_REGS,
    ),
    (
        MSR_SINT0,
        MSR_SINT15,
        FeatureReg::PrivEax,
        PRIV_ACCESS_SYNIC_REGS,
    ),
    (
        super::hv_synic::MSR_STIMER0_CONFIG,
        super::hv_synic::MSR_STIMER3_COUNT,
        FeatureReg::PrivEax,
        super::hv_synic::PRIV_ACCESS_SYNTHETIC_TIMER_REGS,
    ),
    (
        MSR_GUEST_IDLE,
        MSR_GUEST_IDLE,
        FeatureReg::PrivEax,
        PRIV_ACCESS_GUEST_IDLE_REG,
    ),
    (
        MSR_CRASH_P0,
        MSR_CRASH_CTL,
        FeatureReg::FeatEdx,
        FEAT_GUEST_CRASH_REGS,
    ),
];

/// The register and bit that gates each implemented hypercall (KVM's gates: flushes on the
/// remote-flush recommendation, debug data on Debugging, messages and events on PostMessages
/// and SignalEvents). A call not listed is ungated.
pub const CALL_GATES: &[(u16, FeatureReg, u32)] = &[
    (
        CALL_FLUSH_VA_SPACE,
        FeatureReg::RecommendEax,
        RECOMMEND_HYPERCALL_REMOTE_FLUSH,
    ),
    (
        CALL_FLUSH_VA_LIST,
        FeatureReg::RecommendEax,
        RECOMMEND_HYPERCALL_REMOTE_FLUSH,
    ),
    (
        CALL_FLUSH_VA_SPACE_EX,
        FeatureReg::RecommendEax,
        RECOMMEND_HYPERCALL_REMOTE_FLUSH | RECOMMEND_EX_PROCESSOR_MASKS,
    ),
    (
        CALL_FLUSH_VA_LIST_EX,
        FeatureReg::RecommendEax,
        RECOMMEND_HYPERCALL_REMOTE_FLUSH | RECOMMEND_EX_PROCESSOR_MASKS,
    ),
    (
        CALL_SEND_IPI,
        FeatureReg::RecommendEax,
        RECOMMEND_CLUSTER_IPI,
    ),
    (
        CALL_SEND_IPI_EX,
        FeatureReg::RecommendEax,
        RECOMMEND_CLUSTER_IPI | RECOMMEND_EX_PROCESSOR_MASKS,
    ),
    (
        CALL_NOTIFY_LONG_SPIN_WAIT,
        FeatureReg::RecommendEbx,
        SPIN_RETRIES,
    ),
    (CALL_POST_MESSAGE, FeatureReg::PrivEbx, PRIV_POST_MESSAGES),
    (CALL_SIGNAL_EVENT, FeatureReg::PrivEbx, PRIV_SIGNAL_EVENTS),
    (CALL_POST_DEBUG_DATA, FeatureReg::PrivEbx, PRIV_DEBUGGING),
    (
        CALL_RETRIEVE_DEBUG_DATA,
        FeatureReg::PrivEbx,
        PRIV_DEBUGGING,
    ),
];
/// Spin-wait retries before HvCallNotifyLongSpinWait (leaf 0x40000004 EBX).
pub const SPIN_RETRIES: u32 = 0x1000;
/// Virtual and logical processors reported in leaf 0x40000005 (EAX, EBX) by default.
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
/// HV_X64_MSR_RESET: writing bit 0 resets the partition.
pub const MSR_RESET: u32 = 0x4000_0003;
/// HV_X64_MSR_VP_RUNTIME (read-only, 100 ns units the VP has run).
pub const MSR_VP_RUNTIME: u32 = 0x4000_0010;
/// HV_X64_MSR_REFERENCE_TSC: TSC page GPA 63:12, enable (0).
pub const MSR_REFERENCE_TSC: u32 = 0x4000_0021;
/// HV_X64_MSR_TSC_FREQUENCY (read-only, Hz).
pub const MSR_TSC_FREQUENCY: u32 = 0x4000_0022;
/// HV_X64_MSR_APIC_FREQUENCY (read-only, Hz).
pub const MSR_APIC_FREQUENCY: u32 = 0x4000_0023;
/// HV_X64_MSR_VP_ASSIST_PAGE: page GPA 63:12, enable (0).
pub const MSR_VP_ASSIST_PAGE: u32 = 0x4000_0073;
/// HV_X64_MSR_SCONTROL: SynIC enable (0).
pub const MSR_SCONTROL: u32 = 0x4000_0080;
/// HV_X64_MSR_SVERSION (read-only).
pub const MSR_SVERSION: u32 = 0x4000_0081;
/// HV_X64_MSR_SIEFP: event flags page GPA 63:12, enable (0).
pub const MSR_SIEFP: u32 = 0x4000_0082;
/// HV_X64_MSR_SIMP: message page GPA 63:12, enable (0).
pub const MSR_SIMP: u32 = 0x4000_0083;
/// HV_X64_MSR_EOM (write-only end of message; reads as 0).
pub const MSR_EOM: u32 = 0x4000_0084;
/// HV_X64_MSR_SINT0.
pub const MSR_SINT0: u32 = 0x4000_0090;
/// HV_X64_MSR_SINT15.
pub const MSR_SINT15: u32 = 0x4000_009F;
/// HV_X64_MSR_GUEST_IDLE (read: idle until an interrupt).
pub const MSR_GUEST_IDLE: u32 = 0x4000_00F0;
/// HV_X64_MSR_CRASH_P0 (P1..P4 follow).
pub const MSR_CRASH_P0: u32 = 0x4000_0100;
/// HV_X64_MSR_CRASH_P4.
pub const MSR_CRASH_P4: u32 = 0x4000_0104;
/// HV_X64_MSR_CRASH_CTL: bit 63 CrashNotify, bit 62 CrashMessage.
pub const MSR_CRASH_CTL: u32 = 0x4000_0105;
/// Last synthetic MSR we decode (the crash MSRs are past 0x400000FF).
pub const MSR_LAST_DECODED: u32 = MSR_CRASH_CTL;

/// Overlay-page MSRs (REFERENCE_TSC, VP_ASSIST_PAGE, SIEFP, SIMP): enable bit 0.
pub const OVERLAY_ENABLE: u64 = 1;
/// Overlay-page MSRs: bits 11:1 are reserved.
pub const OVERLAY_RESERVED: u64 = 0xffe;
/// SCONTROL: enable (bit 0); the other bits are reserved.
pub const SCONTROL_ENABLE: u64 = 1;
/// SVERSION value: SynIC version 1.
pub const SYNIC_VERSION: u64 = 1;
/// SINTx: vector 7:0.
pub const SINT_VECTOR_MASK: u64 = 0xff;
/// SINTx: masked (16).
pub const SINT_MASKED: u64 = 1 << 16;
/// SINTx: auto-EOI (17).
pub const SINT_AUTO_EOI: u64 = 1 << 17;
/// SINTx: polling (18).
pub const SINT_POLLING: u64 = 1 << 18;
/// SINTx: every defined bit; the rest are reserved.
pub const SINT_VALID: u64 = SINT_VECTOR_MASK | SINT_MASKED | SINT_AUTO_EOI | SINT_POLLING;
/// Lowest SINT vector allowed while unmasked (vectors 0..15 are exceptions).
pub const SINT_MIN_VECTOR: u64 = 16;
/// RESET MSR: bit 0 requests the reset; the other bits are reserved.
pub const RESET_REQUEST: u64 = 1;
/// CRASH_CTL: CrashNotify (63): the crash parameters are final, the guest crashed.
pub const CRASH_CTL_NOTIFY: u64 = 1 << 63;
/// CRASH_CTL: CrashMessage (62): P3/P4 hold a message's GPA and length.
pub const CRASH_CTL_MESSAGE: u64 = 1 << 62;
/// APIC timer frequency under KVM's in-kernel LAPIC (1 ns bus cycle).
pub const APIC_FREQUENCY_HZ: u64 = 1_000_000_000;
/// Reference time unit: 100 ns, i.e. 10 MHz.
pub const REFERENCE_HZ: u64 = 10_000_000;
/// REFERENCE_TSC page: TscSequence (u32) offset; 0 means "use the MSR".
pub const TSC_PAGE_SEQUENCE_OFFSET: u64 = 0;
/// REFERENCE_TSC page: TscScale (u64, 64.64 fixed point) offset.
pub const TSC_PAGE_SCALE_OFFSET: u64 = 8;
/// REFERENCE_TSC page: TscOffset (i64, 100 ns units) offset.
pub const TSC_PAGE_OFFSET_OFFSET: u64 = 16;

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
/// HV_STATUS_ACCESS_DENIED: the caller lacks the call's privilege.
pub const HV_STATUS_ACCESS_DENIED: u16 = 6;
/// HV_STATUS_INVALID_CONNECTION_ID: no such message/event connection.
pub const HV_STATUS_INVALID_CONNECTION_ID: u16 = 0x12;

/// HvCallFlushVirtualAddressSpace.
pub const CALL_FLUSH_VA_SPACE: u16 = 0x0002;
/// HvCallFlushVirtualAddressList (a rep call).
pub const CALL_FLUSH_VA_LIST: u16 = 0x0003;
/// HvCallNotifyLongSpinWait.
pub const CALL_NOTIFY_LONG_SPIN_WAIT: u16 = 0x0008;
/// HvCallSendSyntheticClusterIpi.
pub const CALL_SEND_IPI: u16 = 0x000B;
/// HvCallFlushVirtualAddressSpaceEx.
pub const CALL_FLUSH_VA_SPACE_EX: u16 = 0x0013;
/// HvCallFlushVirtualAddressListEx (a rep call).
pub const CALL_FLUSH_VA_LIST_EX: u16 = 0x0014;
/// HvCallSendSyntheticClusterIpiEx.
pub const CALL_SEND_IPI_EX: u16 = 0x0015;
/// HvCallPostMessage.
pub const CALL_POST_MESSAGE: u16 = 0x005C;
/// HvCallSignalEvent.
pub const CALL_SIGNAL_EVENT: u16 = 0x005D;
/// HvCallPostMessage input: ConnectionId u32, Reserved u32, MessageType u32, PayloadSize u32,
/// Payload\[240\].
pub const POST_MESSAGE_INPUT_SIZE: usize = 256;
/// Largest HvCallPostMessage payload.
pub const POST_MESSAGE_MAX_PAYLOAD: u32 = 240;
/// HvCallPostMessage input: offset of Payload.
pub const POST_MESSAGE_PAYLOAD_OFFSET: usize = 16;
/// HvCallPostDebugData.
pub const CALL_POST_DEBUG_DATA: u16 = 0x0069;
/// HvCallRetrieveDebugData.
pub const CALL_RETRIEVE_DEBUG_DATA: u16 = 0x006A;
/// Extended hypercalls (TLFS "Extended Hypercall Interface"): HvExtCallQueryCapabilities
/// is the first; KVM takes the 64 codes after it as the range.
pub const EXT_CALL_FIRST: u16 = 0x8001;
/// Last extended hypercall code (KVM's HV_EXT_CALL_MAX).
pub const EXT_CALL_LAST: u16 = 0x8041;
/// Leaf 0x40000003 EBX bit: EnableExtendedHypercalls (never granted: none implemented).
pub const PRIV_ENABLE_EXTENDED_HYPERCALLS: u32 = 1 << 20;

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
/// Flags: HV_FLUSH_ALL_PROCESSORS (the processor mask/set is ignored).
pub const FLUSH_ALL_PROCESSORS: u64 = 1 << 0;
/// Flags: HV_FLUSH_ALL_VIRTUAL_ADDRESS_SPACES (AddressSpace is ignored).
pub const FLUSH_ALL_VIRTUAL_ADDRESS_SPACES: u64 = 1 << 1;
/// Flags: HV_FLUSH_NON_GLOBAL_MAPPINGS_ONLY.
pub const FLUSH_NON_GLOBAL_MAPPINGS_ONLY: u64 = 1 << 2;
/// Flags: HV_FLUSH_USE_EXTENDED_RANGE_FORMAT (GVA list entries with large-page ranges).
pub const FLUSH_USE_EXTENDED_RANGE_FORMAT: u64 = 1 << 3;
/// Ex flush input block (AddressSpace, Flags, then an HV_VP_SET): offset of the VP set.
pub const FLUSH_EX_VP_SET_OFFSET: u64 = 16;

/// HV_VP_SET: Format (u64), ValidBankMask (u64), then one u64 bank per set mask bit (the
/// banks are the call's variable header, whose size must equal the number of banks).
pub const VP_SET_HEADER_SIZE: u64 = 16;
/// HV_GENERIC_SET_SPARSE_4K: banks of 64 VPs, bank n = VPs 64n..64n+63.
pub const VP_SET_FORMAT_SPARSE_4K: u64 = 0;
/// HV_GENERIC_SET_ALL: every VP of the partition (ValidBankMask and banks ignored).
pub const VP_SET_FORMAT_ALL: u64 = 1;
/// VPs in one sparse bank.
pub const VP_SET_BANK_VPS: u32 = 64;
/// Most banks an HV_VP_SET can hold (one ValidBankMask bit each).
pub const VP_SET_MAX_BANKS: usize = 64;

/// HvCallSendSyntheticClusterIpi input: Vector (u32), TargetVtl (u8), padding (3 bytes),
/// ProcessorMask (u64). The Ex form has an HV_VP_SET at offset 8 instead of the mask.
pub const SEND_IPI_INPUT_SIZE: usize = 16;
/// Offset of the processor mask / HV_VP_SET in the IPI inputs.
pub const SEND_IPI_TARGETS_OFFSET: u64 = 8;
/// Lowest vector HvCallSendSyntheticClusterIpi accepts (0..15 are exceptions).
pub const IPI_MIN_VECTOR: u32 = 0x10;
/// Highest vector HvCallSendSyntheticClusterIpi accepts.
pub const IPI_MAX_VECTOR: u32 = 0xFF;

/// XMM fast input: registers XMM0..XMM5 continue the input after RDX and R8.
pub const XMM_INPUT_REGISTERS: usize = 6;
/// XMM fast input: qwords in XMM0..XMM5 (low half of XMM0 first).
pub const XMM_INPUT_QWORDS: usize = 2 * XMM_INPUT_REGISTERS;

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
