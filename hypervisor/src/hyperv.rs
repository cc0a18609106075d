//! Hyper-V-style native interface (TLFS semantics), done in user space.
//!
//! - Synthetic MSRs ([`Partition::rdmsr`]/[`Partition::wrmsr`], reached through KVM's
//!   user-space MSR filter), each gated by its privilege ([`MSR_GATES`]; a clear bit is
//!   #GP): GUEST_OS_ID 0x40000000, HYPERCALL 0x40000001, VP_INDEX 0x40000002 (read-only),
//!   RESET 0x40000003 (bit 0 ends the VM as `VmEnd::Reset`), VP_RUNTIME 0x40000010 (vCPU
//!   thread CPU time), TIME_REF_COUNT 0x40000020 (100 ns units from the guest TSC, counted
//!   from partition creation, so equal on every vCPU), REFERENCE_TSC 0x40000021 (the TSC page:
//!   sequence, scale, offset giving the same time; sequence 0 when the host TSC is not
//!   invariant), TSC_FREQUENCY/APIC_FREQUENCY 0x40000022/3, VP_ASSIST_PAGE 0x40000073,
//!   SynIC SCONTROL/SVERSION/SIEFP/SIMP/EOM/SINT0-15 0x40000080..=0x4000009F (delivery in
//!   [`synic`]), STIMER0-3 CONFIG/COUNT 0x400000B0..=0x400000B7 ([`stimer`]; gated by
//!   AccessSyntheticTimerRegs), GUEST_IDLE 0x400000F0, CRASH_P0-P4/CRASH_CTL
//!   0x40000100..=0x40000105 (a CrashNotify write ends the VM as a "guest crash" with
//!   P0..P4 in the reason). Reserved bits, writes to read-only MSRs, unmasked SINT vectors
//!   below 16 and enabled overlay pages outside RAM raise #GP; anything else in
//!   0x40000000..=0x40000105 raises #GP, except the APIC-access MSRs EOI/ICR/TPR
//!   0x40000070..=0x40000072, which need the vCPU's LAPIC (`crate::apic_msr`, gated by
//!   AccessIntrCtrlRegs).
//! - Hypercalls gated by a privilege ([`CALL_GATES`]) return HV_STATUS_ACCESS_DENIED without
//!   it, before any input check (as KVM). HvCallPostMessage and HvCallSignalEvent validate
//!   their input and go to the SynIC's registered [`HvConnections`] (VMBus); with none
//!   registered they answer HV_STATUS_INVALID_CONNECTION_ID.
//! - SynIC delivery (messages, event flags, SINT vectors) is [`synic`].
//! - HvCallFlushVirtualAddressSpace/List and their Ex forms (`flush`, HV_VP_SET sets in
//!   [`vpset`]) and HvCallSendSyntheticClusterIpi(Ex) (`ipi`) decode into an [`Action`]
//!   that the caller carries out (`vp_requests`: a real guest-TLB flush of each target, a
//!   fixed IPI through the LAPIC). Fast calls continue their input in XMM0-5 only with
//!   XmmRegistersForFastHypercallAvailable ([`wants_xmm`], [`dispatch_xmm`]).
//! - The hypercall page ([`HYPERCALL_PAGE_CODE`]): `out 0xf6, eax; ret`, the OUT standing in
//!   for VMCALL (which does not reach user space on this host). The VMM checks each port
//!   exit: RIP must translate into the enabled page, at its OUT, and CPL must be 0; otherwise
//!   it injects #UD, as a hypervisor does for VMCALL from CPL > 0.
//!   One difference from VMCALL remains: the CPU checks I/O permission before the OUT can
//!   exit, so a CPL 3 caller whose I/O bitmap/IOPL forbids port 0xf6 gets #GP from the OUT
//!   instead of #UD from us (a caller allowed the port gets #UD). The page used to check CPL
//!   itself (`mov r11, cs; test r11b, 3; jnz ud2`) to turn that #GP into #UD too, but guest
//!   ring 0 is emulated here (~1 us an instruction): those 3 instructions made every
//!   hypercall 1.4-1.6x a bare port exit instead of ~1.1x, for a difference only a ring-3
//!   caller with no port access can see. After a call the VMM also does the page's `ret`
//!   (pops the return address into RIP) when the guest cannot tell the difference, which
//!   saves one more emulated instruction (`complete_call` in `vm.rs`).
//! - Calling convention: RCX = input value, RDX = input GPA, R8 = output GPA (fast calls:
//!   RDX/R8 are the input data); result value in RAX. No other register changes.
//! - Input value decoding ([`decode`]) and dispatch ([`dispatch`]) are pure functions over
//!   guest memory, so they are unit-tested without KVM.
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

use crate::abi::hv::*;
use crate::abi::{OPCODE_INT3, OPCODE_OUT_IMM8_EAX, OPCODE_RET, PAGE_SIZE};
use crate::hv_config::HvFeatures;
use crate::layout::HV_HYPERCALL_PORT;

mod flush;
mod ipi;
#[cfg(any(test, feature = "fault-injection"))]
pub mod loopback;
mod msr;
pub mod stimer;
pub mod synic;
pub mod vpset;

pub use vpset::{Action, VpSet};

pub use msr::{crash_reason, host_tsc, tsc_page, Gp, MsrWrite, Partition, TscInfo, VpEnv, VpState};
pub use synic::{HvConnections, HvMessage, Synic, SynicError};

// Kept at their old paths for callers of `hypervisor::hyperv::*`.
pub use crate::abi::hv::{
    CALL_FLUSH_VA_LIST, CALL_FLUSH_VA_SPACE, CALL_NOTIFY_LONG_SPIN_WAIT, CALL_POST_DEBUG_DATA,
    CALL_RETRIEVE_DEBUG_DATA, HV_STATUS_INVALID_ALIGNMENT, HV_STATUS_INVALID_HYPERCALL_CODE,
    HV_STATUS_INVALID_HYPERCALL_INPUT, HV_STATUS_INVALID_PARAMETER, HV_STATUS_SUCCESS,
    INPUT_RSVD_MASK, MSR_GUEST_OS_ID, MSR_HYPERCALL, MSR_TIME_REF_COUNT, MSR_VP_INDEX,
};

/// Bytes of the hypercall page's code (the rest of the page is `int3`).
pub const HYPERCALL_PAGE_CODE: [u8; 3] = [
    OPCODE_OUT_IMM8_EAX,
    HV_HYPERCALL_PORT as u8, // out 0xf6, eax
    OPCODE_RET,
];

/// Offset of the `out` in the page.
pub const HYPERCALL_OUT_OFFSET: u64 = 0;

/// The whole 4 KiB hypercall page.
pub fn hypercall_page() -> [u8; PAGE_SIZE as usize] {
    let mut p = [OPCODE_INT3; PAGE_SIZE as usize];
    p[..HYPERCALL_PAGE_CODE.len()].copy_from_slice(&HYPERCALL_PAGE_CODE);
    p
}

/// A decoded hypercall input value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Input {
    /// Call code (bits 15:0).
    pub code: u16,
    /// Fast call: input in registers (bit 16).
    pub fast: bool,
    /// Variable header size in qwords (bits 26:17).
    pub var_header_qwords: u16,
    /// Rep count (bits 43:32).
    pub rep_count: u16,
    /// Rep start index (bits 59:48).
    pub rep_start: u16,
}

/// Decodes an input value: code 15:0, fast 16, variable header size 26:17, rep count 43:32,
/// rep start 59:48. Any RsvdZ bit set is HV_STATUS_INVALID_HYPERCALL_INPUT.
pub fn decode(input: u64) -> Result<Input, u16> {
    if input & INPUT_RSVD_MASK != 0 {
        return Err(HV_STATUS_INVALID_HYPERCALL_INPUT);
    }
    Ok(Input {
        code: (input & INPUT_CODE_MASK) as u16,
        fast: input & INPUT_FAST != 0,
        var_header_qwords: ((input >> INPUT_VAR_HEADER_SHIFT) & INPUT_VAR_HEADER_MASK) as u16,
        rep_count: ((input >> INPUT_REP_COUNT_SHIFT) & REP_MASK) as u16,
        rep_start: ((input >> INPUT_REP_START_SHIFT) & REP_MASK) as u16,
    })
}

/// Result value: status 15:0, reps completed 43:32.
pub fn result_value(status: u16, reps_completed: u16) -> u64 {
    u64::from(status) | ((u64::from(reps_completed) & REP_MASK) << RESULT_REPS_SHIFT)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct CallInfo {
    code: u16,
    name: &'static str,
    rep: bool,
    /// May be issued as a fast call (input in registers).
    fast_ok: bool,
    /// Takes a variable header (the Ex calls' HV_VP_SET banks).
    var_header: bool,
}

const CALLS: &[CallInfo] = &[
    CallInfo {
        code: CALL_FLUSH_VA_SPACE,
        name: "HvCallFlushVirtualAddressSpace",
        rep: false,
        fast_ok: true,
        var_header: false,
    },
    CallInfo {
        code: CALL_FLUSH_VA_LIST,
        name: "HvCallFlushVirtualAddressList",
        rep: true,
        fast_ok: true,
        var_header: false,
    },
    CallInfo {
        code: CALL_FLUSH_VA_SPACE_EX,
        name: "HvCallFlushVirtualAddressSpaceEx",
        rep: false,
        fast_ok: true,
        var_header: true,
    },
    CallInfo {
        code: CALL_FLUSH_VA_LIST_EX,
        name: "HvCallFlushVirtualAddressListEx",
        rep: true,
        fast_ok: true,
        var_header: true,
    },
    CallInfo {
        code: CALL_SEND_IPI,
        name: "HvCallSendSyntheticClusterIpi",
        rep: false,
        fast_ok: true,
        var_header: false,
    },
    CallInfo {
        code: CALL_SEND_IPI_EX,
        name: "HvCallSendSyntheticClusterIpiEx",
        rep: false,
        fast_ok: true,
        var_header: true,
    },
    CallInfo {
        code: CALL_NOTIFY_LONG_SPIN_WAIT,
        name: "HvCallNotifyLongSpinWait",
        rep: false,
        fast_ok: true,
        var_header: false,
    },
    CallInfo {
        code: CALL_POST_MESSAGE,
        name: "HvCallPostMessage",
        rep: false,
        fast_ok: false,
        var_header: false,
    },
    CallInfo {
        code: CALL_SIGNAL_EVENT,
        name: "HvCallSignalEvent",
        rep: false,
        fast_ok: true,
        var_header: false,
    },
    CallInfo {
        code: CALL_POST_DEBUG_DATA,
        name: "HvCallPostDebugData",
        rep: false,
        fast_ok: false,
        var_header: false,
    },
    CallInfo {
        code: CALL_RETRIEVE_DEBUG_DATA,
        name: "HvCallRetrieveDebugData",
        rep: false,
        fast_ok: false,
        var_header: false,
    },
];

/// TLFS name of a call code, if implemented.
pub fn call_name(code: u16) -> Option<&'static str> {
    CALLS.iter().find(|c| c.code == code).map(|c| c.name)
}

/// A hypercall as the guest issued it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Call {
    /// The input value (RCX).
    pub input: u64,
    /// Input GPA (RDX), or the first input qword of a fast call.
    pub in_gpa: u64,
    /// Output GPA (R8), or the second input qword of a fast call.
    pub out_gpa: u64,
}

/// What a hypercall did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Value for RAX.
    pub rax: u64,
    /// Name the call is counted under.
    /// TLFS name of the call, or `invalid(0x....)` (borrowed for the implemented calls, so a
    /// hypercall allocates nothing).
    pub name: std::borrow::Cow<'static, str>,
    /// Bytes for the console (HvCallPostDebugData).
    pub console: Vec<u8>,
    /// What the call asks of other VPs (TLB flushes, IPIs), for the caller to carry out.
    pub action: Option<Action>,
}

/// Options that change dispatch behaviour: the privileges that gate calls, fault injection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DispatchOptions {
    /// Answer an unknown call code with HV_STATUS_INVALID_PARAMETER instead of
    /// HV_STATUS_INVALID_HYPERCALL_CODE (the `fault-injection` feature's
    /// `Fault::WrongInvalidCodeStatus`).
    pub wrong_invalid_code_status: bool,
    /// The partition's privileges: a call whose gate ([`CALL_GATES`]) is clear gets
    /// HV_STATUS_ACCESS_DENIED before any input check.
    pub features: HvFeatures,
}

/// Calls whose fast form may continue its input in XMM0-5 (TLFS "XMM Fast Hypercall Input";
/// the ones KVM reads XMM registers for).
const XMM_INPUT_CALLS: &[u16] = &[
    CALL_FLUSH_VA_SPACE,
    CALL_FLUSH_VA_LIST,
    CALL_FLUSH_VA_SPACE_EX,
    CALL_FLUSH_VA_LIST_EX,
    CALL_SEND_IPI_EX,
];

/// Whether the hypercall with input value `input` reads XMM0-5: a fast call of one of
/// `XMM_INPUT_CALLS` in a partition with XmmRegistersForFastHypercallAvailable. The caller
/// then fetches the registers (an ioctl) and passes them to [`dispatch_xmm`].
pub fn wants_xmm(input: u64, features: &HvFeatures) -> bool {
    input & INPUT_FAST != 0
        && XMM_INPUT_CALLS.contains(&((input & INPUT_CODE_MASK) as u16))
        && features.has(FeatureReg::FeatEdx, FEAT_XMM_HYPERCALL_INPUT)
}

/// Validates and executes a hypercall from VP 0 with no connections and no XMM input (see
/// [`dispatch_full`]).
pub fn dispatch(mem: &GuestMemoryMmap, call: Call, opts: DispatchOptions) -> Outcome {
    dispatch_full(mem, call, opts, 0, &synic::NoConnections, None)
}

/// [`dispatch`] for a call from VP `vp`, whose HvCallPostMessage / HvCallSignalEvent go to
/// `conns` once their input is valid (the SynIC's registered [`HvConnections`]).
pub fn dispatch_from(
    mem: &GuestMemoryMmap,
    call: Call,
    opts: DispatchOptions,
    vp: u32,
    conns: &dyn HvConnections,
) -> Outcome {
    dispatch_full(mem, call, opts, vp, conns, None)
}

/// [`dispatch`] with XMM fast input (see [`dispatch_full`]).
pub fn dispatch_xmm(
    mem: &GuestMemoryMmap,
    call: Call,
    opts: DispatchOptions,
    xmm: Option<[u64; XMM_INPUT_QWORDS]>,
) -> Outcome {
    dispatch_full(mem, call, opts, 0, &synic::NoConnections, xmm)
}

/// Validates and executes a hypercall from VP `vp`. Order of checks: call code, privilege,
/// RsvdZ bits, rep/simple mismatch and fast-call support, variable header, alignment of
/// input/output GPA, GPA ranges, then call-specific parameters. HvCallPostMessage /
/// HvCallSignalEvent go to `conns` once their input is valid. `xmm`: XMM0..XMM5 as qwords
/// (low half first), used for a fast call's input past RDX and R8 only when the partition
/// has XmmRegistersForFastHypercallAvailable; without them such a call is
/// HV_STATUS_INVALID_HYPERCALL_INPUT.
pub fn dispatch_full(
    mem: &GuestMemoryMmap,
    call: Call,
    opts: DispatchOptions,
    vp: u32,
    conns: &dyn HvConnections,
    xmm: Option<[u64; XMM_INPUT_QWORDS]>,
) -> Outcome {
    let code = (call.input & INPUT_CODE_MASK) as u16;
    let Some(info) = CALLS.iter().find(|c| c.code == code) else {
        // An extended call without EnableExtendedHypercalls is denied (KVM's
        // hyperv_features stage 19); none is implemented, so with it they are unknown.
        let extended = (EXT_CALL_FIRST..=EXT_CALL_LAST).contains(&code)
            && !opts
                .features
                .has(FeatureReg::PrivEbx, PRIV_ENABLE_EXTENDED_HYPERCALLS);
        let status = if extended {
            HV_STATUS_ACCESS_DENIED
        } else if opts.wrong_invalid_code_status {
            HV_STATUS_INVALID_PARAMETER
        } else {
            HV_STATUS_INVALID_HYPERCALL_CODE
        };
        return Outcome {
            rax: result_value(status, 0),
            name: format!("invalid({code:#06x})").into(),
            console: Vec::new(),
            action: None,
        };
    };
    let fail = |status: u16| Outcome {
        rax: result_value(status, 0),
        name: info.name.into(),
        console: Vec::new(),
        action: None,
    };
    if let Some(&(_, reg, mask)) = CALL_GATES.iter().find(|g| g.0 == code) {
        if !opts.features.has(reg, mask) {
            return fail(HV_STATUS_ACCESS_DENIED);
        }
    }
    let input = match decode(call.input) {
        Ok(i) => i,
        Err(s) => return fail(s),
    };
    if !info.rep && (input.rep_count != 0 || input.rep_start != 0) {
        return fail(HV_STATUS_INVALID_HYPERCALL_INPUT);
    }
    if info.rep && input.rep_start > input.rep_count {
        return fail(HV_STATUS_INVALID_HYPERCALL_INPUT);
    }
    if input.fast && !info.fast_ok {
        return fail(HV_STATUS_INVALID_HYPERCALL_INPUT);
    }
    if input.var_header_qwords != 0 && !info.var_header {
        return fail(HV_STATUS_INVALID_HYPERCALL_INPUT);
    }
    if !input.fast && (call.in_gpa & GPA_ALIGN_MASK != 0 || call.out_gpa & GPA_ALIGN_MASK != 0) {
        return fail(HV_STATUS_INVALID_ALIGNMENT);
    }
    let xmm = xmm.filter(|_| {
        opts.features
            .has(FeatureReg::FeatEdx, FEAT_XMM_HYPERCALL_INPUT)
    });
    let ctx = Ctx {
        mem,
        call,
        input,
        vp,
        conns,
    };
    let words = ctx.words(xmm);
    let mut action = None;
    let (status, reps, console) = match info.code {
        CALL_NOTIFY_LONG_SPIN_WAIT => ctx.notify_long_spin_wait(),
        CALL_FLUSH_VA_SPACE
        | CALL_FLUSH_VA_LIST
        | CALL_FLUSH_VA_SPACE_EX
        | CALL_FLUSH_VA_LIST_EX => {
            let (status, reps, a) = flush::flush(&words, &input, info.code);
            action = a;
            (status, reps, Vec::new())
        }
        CALL_SEND_IPI | CALL_SEND_IPI_EX => {
            let (status, a) = ipi::send_ipi(&words, &input, info.code);
            action = a;
            (status, 0, Vec::new())
        }
        CALL_POST_DEBUG_DATA => ctx.post_debug_data(),
        CALL_RETRIEVE_DEBUG_DATA => ctx.retrieve_debug_data(),
        CALL_POST_MESSAGE => ctx.post_message(),
        CALL_SIGNAL_EVENT => ctx.signal_event(),
        _ => (HV_STATUS_INVALID_HYPERCALL_CODE, 0, Vec::new()),
    };
    Outcome {
        rax: result_value(status, reps),
        name: info.name.into(),
        console,
        action,
    }
}

struct Ctx<'a> {
    mem: &'a GuestMemoryMmap,
    call: Call,
    input: Input,
    /// The calling VP.
    vp: u32,
    /// Where messages and events go.
    conns: &'a dyn HvConnections,
}

type Res = (u16, u16, Vec<u8>);

impl Ctx<'_> {
    /// The call's input as qwords: memory at the input GPA, or RDX, R8 and (with `xmm`)
    /// XMM0-5.
    fn words(&self, xmm: Option<[u64; XMM_INPUT_QWORDS]>) -> vpset::Words<'_> {
        if !self.input.fast {
            return vpset::Words::Memory {
                mem: self.mem,
                gpa: self.call.in_gpa,
            };
        }
        let mut regs = [0u64; 2 + XMM_INPUT_QWORDS];
        regs[0] = self.call.in_gpa;
        regs[1] = self.call.out_gpa;
        if let Some(x) = xmm {
            regs[2..].copy_from_slice(&x);
        }
        vpset::Words::Fast {
            regs,
            avail: if xmm.is_some() { regs.len() } else { 2 },
        }
    }

    /// Input block must lie in guest memory (else HV_STATUS_INVALID_PARAMETER).
    fn read_in(&self, off: u64, buf: &mut [u8]) -> Result<(), u16> {
        let gpa = self
            .call
            .in_gpa
            .checked_add(off)
            .ok_or(HV_STATUS_INVALID_PARAMETER)?;
        self.mem
            .read_slice(buf, GuestAddress(gpa))
            .map_err(|_| HV_STATUS_INVALID_PARAMETER)
    }
    fn read_in_u64(&self, off: u64) -> Result<u64, u16> {
        let mut b = [0u8; 8];
        self.read_in(off, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn check_out(&self, len: usize) -> Result<(), u16> {
        if self.mem.check_range(GuestAddress(self.call.out_gpa), len) {
            Ok(())
        } else {
            Err(HV_STATUS_INVALID_PARAMETER)
        }
    }

    fn notify_long_spin_wait(&self) -> Res {
        if !self.input.fast {
            if let Err(s) = self.read_in_u64(0) {
                return (s, 0, Vec::new());
            }
        }
        (HV_STATUS_SUCCESS, 0, Vec::new())
    }

    /// Reads the `len`-byte input header of a debug-data call (Count u32, Options u32, ...):
    /// Count must not exceed DEBUG_DATA_MAX and Options must be 0. Returns Count.
    fn debug_header(&self, len: usize) -> Result<u32, u16> {
        let mut hdr = [0u8; RETRIEVE_DEBUG_HEADER_SIZE];
        let hdr = &mut hdr[..len.clamp(POST_DEBUG_HEADER_SIZE, RETRIEVE_DEBUG_HEADER_SIZE)];
        self.read_in(0, hdr)?;
        let count = u32::from_le_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
        let options = u32::from_le_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]);
        if count > DEBUG_DATA_MAX || options != 0 {
            return Err(HV_STATUS_INVALID_PARAMETER);
        }
        Ok(count)
    }

    /// Writes a debug-data call's 8-byte output (two u32 counts, both 0).
    fn write_zero_counts(&self) -> Result<(), u16> {
        self.check_out(DEBUG_DATA_OUTPUT_SIZE)?;
        self.mem
            .write_obj(0u64, GuestAddress(self.call.out_gpa))
            .map_err(|_| HV_STATUS_INVALID_PARAMETER)
    }

    /// Input: Count u32, Options u32, Data\[Count\]. Output: PendingCount u32, Reserved u32.
    /// The data goes to the VM's console.
    fn post_debug_data(&self) -> Res {
        let run = || {
            let count = self.debug_header(POST_DEBUG_HEADER_SIZE)?;
            let mut data = vec![0u8; count as usize];
            self.read_in(POST_DEBUG_HEADER_SIZE as u64, &mut data)?;
            self.write_zero_counts()?;
            Ok(data)
        };
        match run() {
            Ok(data) => (HV_STATUS_SUCCESS, 0, data),
            Err(s) => (s, 0, Vec::new()),
        }
    }

    /// Input: ConnectionId u32, Reserved u32, MessageType u32, PayloadSize u32, Payload.
    /// Reserved must be 0, MessageType in 1..0x80000000 (the top half is the hypervisor's),
    /// PayloadSize at most 240 (else HV_STATUS_INVALID_PARAMETER). A well-formed message goes
    /// to the registered connections (none: HV_STATUS_INVALID_CONNECTION_ID).
    fn post_message(&self) -> Res {
        let mut b = [0u8; POST_MESSAGE_INPUT_SIZE];
        if let Err(s) = self.read_in(0, &mut b) {
            return (s, 0, Vec::new());
        }
        let w = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let (reserved, msg_type, size) = (w(4), w(8), w(12));
        if reserved != 0
            || msg_type == 0
            || msg_type >= 0x8000_0000
            || size > POST_MESSAGE_MAX_PAYLOAD
        {
            return (HV_STATUS_INVALID_PARAMETER, 0, Vec::new());
        }
        let payload = &b[POST_MESSAGE_PAYLOAD_OFFSET..][..size as usize];
        let status = self.conns.post_message(self.vp, w(0), msg_type, payload);
        (status, 0, Vec::new())
    }

    /// Input (one qword, fast or in memory): ConnectionId u32, FlagNumber u16, RsvdZ u16.
    /// RsvdZ set is HV_STATUS_INVALID_HYPERCALL_INPUT; otherwise it goes to the registered
    /// connections (none: HV_STATUS_INVALID_CONNECTION_ID).
    fn signal_event(&self) -> Res {
        let v = if self.input.fast {
            self.call.in_gpa
        } else {
            match self.read_in_u64(0) {
                Ok(v) => v,
                Err(s) => return (s, 0, Vec::new()),
            }
        };
        if v >> 48 != 0 {
            return (HV_STATUS_INVALID_HYPERCALL_INPUT, 0, Vec::new());
        }
        let status = self.conns.signal_event(self.vp, v as u32, (v >> 32) as u16);
        (status, 0, Vec::new())
    }

    /// Input: Count u32, Options u32, Timeout u64. Output: RetrievedCount u32,
    /// RemainingCount u32, Data. No host-to-guest debug data exists, so 0 bytes come back.
    fn retrieve_debug_data(&self) -> Res {
        match self
            .debug_header(RETRIEVE_DEBUG_HEADER_SIZE)
            .and_then(|_| self.write_zero_counts())
        {
            Ok(()) => (HV_STATUS_SUCCESS, 0, Vec::new()),
            Err(s) => (s, 0, Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_calls;
