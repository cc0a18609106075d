//! Hyper-V TLFS definitions of the synthetic interrupt controller (SynIC), the synthetic
//! timers and the APIC-access MSRs: message and event-flag page layouts, message types,
//! STIMER MSRs and their configuration bits.

/// Number of SINTs per VP (SINT0..SINT15); also the slots of the SIMP and SIEFP pages.
pub const SINT_COUNT: usize = 16;
/// Size of one HV_MESSAGE (one SIMP slot).
pub const MESSAGE_SIZE: u64 = 256;
/// HV_MESSAGE: MessageType (u32) offset.
pub const MESSAGE_TYPE_OFFSET: u64 = 0;
/// HV_MESSAGE: PayloadSize (u8) offset.
pub const MESSAGE_PAYLOAD_SIZE_OFFSET: u64 = 4;
/// HV_MESSAGE: MessageFlags (u8) offset.
pub const MESSAGE_FLAGS_OFFSET: u64 = 5;
/// HV_MESSAGE: Sender / port id (u64) offset.
pub const MESSAGE_SENDER_OFFSET: u64 = 8;
/// HV_MESSAGE: Payload offset.
pub const MESSAGE_PAYLOAD_OFFSET: u64 = 16;
/// HV_MESSAGE: largest payload (30 qwords).
pub const MESSAGE_MAX_PAYLOAD: usize = 240;
/// HV_MESSAGE MessageFlags bit 0: MessagePending (more messages wait for this slot).
pub const MESSAGE_FLAG_PENDING: u8 = 1;

/// HV_STATUS_INSUFFICIENT_BUFFERS: HvCallPostMessage found the message queue full.
pub const HV_STATUS_INSUFFICIENT_BUFFERS: u16 = 0x13;

/// HVMSG_NONE: the slot is free.
pub const HVMSG_NONE: u32 = 0;
/// HVMSG_TIMER_EXPIRED: a synthetic timer expired (message mode).
pub const HVMSG_TIMER_EXPIRED: u32 = 0x8000_0010;
/// HV_TIMER_MESSAGE_PAYLOAD: TimerIndex (u32) at payload offset 0, reserved u32, then
/// ExpirationTime (u64, reference time) at 8 and DeliveryTime (u64) at 16.
pub const TIMER_MESSAGE_PAYLOAD_SIZE: usize = 24;

/// Size of one SINT's block of event flags in the SIEFP page (2048 bits).
pub const EVENT_FLAGS_SIZE: u64 = 256;
/// Event flags per SINT.
pub const EVENT_FLAGS_PER_SINT: u32 = 2048;

/// HV_X64_MSR_EOI (write: EOI of the local APIC).
pub const MSR_APIC_EOI: u32 = 0x4000_0070;
/// HV_X64_MSR_ICR (the 64-bit x2APIC-format ICR).
pub const MSR_APIC_ICR: u32 = 0x4000_0071;
/// HV_X64_MSR_TPR (the task-priority register, bits 7:0).
pub const MSR_APIC_TPR: u32 = 0x4000_0072;

/// HV_X64_MSR_STIMER0_CONFIG; timer n's CONFIG is at this + 2n, its COUNT right after.
pub const MSR_STIMER0_CONFIG: u32 = 0x4000_00B0;
/// HV_X64_MSR_STIMER3_COUNT (the last timer MSR).
pub const MSR_STIMER3_COUNT: u32 = 0x4000_00B7;
/// Synthetic timers per VP.
pub const STIMER_COUNT: usize = 4;
/// STIMER CONFIG bit 0: Enable.
pub const STIMER_ENABLE: u64 = 1 << 0;
/// STIMER CONFIG bit 1: Periodic.
pub const STIMER_PERIODIC: u64 = 1 << 1;
/// STIMER CONFIG bit 2: Lazy (no effect here).
pub const STIMER_LAZY: u64 = 1 << 2;
/// STIMER CONFIG bit 3: AutoEnable (a COUNT write sets Enable).
pub const STIMER_AUTO_ENABLE: u64 = 1 << 3;
/// STIMER CONFIG bits 11:4: ApicVector (direct mode).
pub const STIMER_APIC_VECTOR_SHIFT: u32 = 4;
/// STIMER CONFIG: ApicVector mask after the shift.
pub const STIMER_APIC_VECTOR_MASK: u64 = 0xff;
/// STIMER CONFIG bit 12: DirectMode (the vector, not a message).
pub const STIMER_DIRECT_MODE: u64 = 1 << 12;
/// STIMER CONFIG bits 19:16: SINTx (message mode).
pub const STIMER_SINT_SHIFT: u32 = 16;
/// STIMER CONFIG: SINTx mask after the shift.
pub const STIMER_SINT_MASK: u64 = 0xf;
/// STIMER CONFIG: every defined bit (the rest are reserved: #GP).
pub const STIMER_CONFIG_VALID: u64 = 0x000f_1fff;

/// Leaf 0x40000003 EAX bit: AccessSyntheticTimerRegs (STIMER0-3 CONFIG/COUNT).
pub const PRIV_ACCESS_SYNTHETIC_TIMER_REGS: u32 = 1 << 3;
/// Leaf 0x40000003 EDX bit: DirectSyntheticTimers (STIMER direct mode).
pub const FEAT_DIRECT_SYNTHETIC_TIMERS: u32 = 1 << 19;
/// Leaf 0x40000004 EAX bit 3: UseApicMsrs (use EOI/ICR/TPR MSRs instead of the xAPIC MMIO).
pub const RECOMMEND_APIC_MSRS: u32 = 1 << 3;
/// Leaf 0x40000004 EAX bit 9: DeprecatingAutoEOI (do not set SINTx.AutoEOI). We recommend
/// it: SINT vectors go through the in-kernel LAPIC as fixed interrupts, which the guest
/// must EOI (see `hyperv::synic`).
pub const RECOMMEND_DEPRECATING_AUTO_EOI: u32 = 1 << 9;
