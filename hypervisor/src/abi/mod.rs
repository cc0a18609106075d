//! Guest-visible ABI definitions, as pure data: CPUID leaves and bits, MSR numbers,
//! hypercall and sub-operation numbers, status codes and structure layouts.
//!
//! Nothing here has behaviour beyond trivial `const fn`s; the code that implements these
//! interfaces ([`crate::hyperv`], [`crate::xen`], [`crate::cpuid`], the exit dispatch) names
//! these constants instead of writing the numbers inline.

pub mod hv;
pub mod hv_synic;
pub mod netvsc;
pub mod rndis;
pub mod storvsc;
pub mod vmbus;
pub mod xen;

/// The synthetic-MSR range that KVM's user-space MSR filter sends to the VMM: the Hyper-V
/// MSRs at 0x40000000..=0x400000FF and Xen's hypercall MSR (0x40000000 or 0x40000200).
pub const MSR_FILTER_BASE: u32 = 0x4000_0000;
/// Number of MSRs in the filtered range starting at [`MSR_FILTER_BASE`].
pub const MSR_FILTER_COUNT: u32 = 0x300;

/// First CPUID leaf of the range reserved for hypervisors.
pub const CPUID_HYPERVISOR_FIRST: u32 = 0x4000_0000;
/// Last CPUID leaf of the range reserved for hypervisors.
pub const CPUID_HYPERVISOR_LAST: u32 = 0x4FFF_FFFF;

/// Size of a guest page, as the hypercall pages use it.
pub const PAGE_SIZE: u64 = 4096;

/// `out imm8, eax`: the first byte of the instruction both hypercall pages use to exit.
pub const OPCODE_OUT_IMM8_EAX: u8 = 0xe7;
/// `ret` (near return).
pub const OPCODE_RET: u8 = 0xc3;
/// `int3`: the filler of the hypercall pages around their code.
pub const OPCODE_INT3: u8 = 0xcc;
