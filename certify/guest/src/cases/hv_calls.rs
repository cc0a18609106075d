//! Hyper-V hypercalls a Linux guest uses for TLB shootdowns and IPIs (issue 12):
//! HvCallFlushVirtualAddressSpace/List and their Ex forms with HV_VP_SET processor sets,
//! HvCallSendSyntheticClusterIpi(Ex) delivered through the LAPIC to this vCPU, XMM fast input
//! (on, and off through the profile's `hv_clear`), and their privilege gates.
use super::hv::{call, enable_hypercalls, hv_present, input_gpa, status};
use crate::boot::UPCALL_VECTOR;
use crate::ktap::{Msg, Outcome};
use crate::sys::{self, Fault};
use crate::{diag, msg, Ctx};

const CALL_FLUSH_SPACE: u64 = 0x0002;
const CALL_FLUSH_LIST: u64 = 0x0003;
const CALL_NOTIFY_LONG_SPIN_WAIT: u64 = 0x0008;
const CALL_SEND_IPI: u64 = 0x000B;
const CALL_FLUSH_SPACE_EX: u64 = 0x0013;
const CALL_FLUSH_LIST_EX: u64 = 0x0014;
const CALL_SEND_IPI_EX: u64 = 0x0015;
const FAST: u64 = 1 << 16;
const fn var_header(qwords: u64) -> u64 {
    qwords << 17
}
const fn reps(count: u64, start: u64) -> u64 {
    count << 32 | start << 48
}

const SUCCESS: u16 = 0;
const INVALID_HYPERCALL_INPUT: u16 = 3;
const INVALID_PARAMETER: u16 = 5;
const ACCESS_DENIED: u16 = 6;

/// HV_VP_SET formats.
const SPARSE_4K: u64 = 0;
const ALL: u64 = 1;
/// HV_FLUSH_ALL_PROCESSORS | HV_FLUSH_ALL_VIRTUAL_ADDRESS_SPACES.
const FLUSH_ALL: u64 = 3;

/// Leaf 0x40000003 EDX: XmmRegistersForFastHypercallAvailable.
const FEAT_XMM_INPUT: u32 = 1 << 4;
/// Leaf 0x40000004 EAX recommendations.
const REC_REMOTE_FLUSH: u32 = 1 << 2;
const REC_CLUSTER_IPI: u32 = 1 << 10;
const REC_EX_MASKS: u32 = 1 << 11;

const LAPIC: u64 = 0xfee0_0000;

type R = Result<(), Msg>;

fn run(f: impl FnOnce() -> R) -> Outcome {
    match f() {
        Ok(()) => Outcome::Pass,
        Err(m) => Outcome::Fail(m),
    }
}

/// Writes `q` as the input block.
fn input(q: &[u64]) -> u64 {
    for (i, v) in q.iter().enumerate() {
        sys::write_u64(input_gpa() + 8 * i as u64, *v);
    }
    input_gpa()
}

/// A call whose status must be `want`; returns RAX.
fn expect(page: u64, code: u64, rdx: u64, r8: u64, want: u16, what: &str) -> Result<u64, Msg> {
    let rax = call(page, code, rdx, r8)?;
    diag!("{}: input={:#x} -> rax={:#x}", what, code, rax);
    if status(rax) != want {
        return Err(msg!("{}: status {} (want {})", what, status(rax), want));
    }
    Ok(rax)
}

/// A fast hypercall with XMM0..XMM5 loaded from `x` (low half of XMM0 first) in ring 3
/// right before the gate (which touches no XMM register on its way to the page).
fn call_xmm(page: u64, code: u64, rdx: u64, r8: u64, x: &[u64; 12]) -> Result<u64, Msg> {
    use core::arch::x86_64::{__m128i, _mm_set_epi64x};
    // SAFETY: SSE2 is part of x86_64; building a vector has no side effects.
    let v =
        |i: usize| -> __m128i { unsafe { _mm_set_epi64x(x[2 * i + 1] as i64, x[2 * i] as i64) } };
    let (x0, x1, x2, x3, x4, x5) = (v(0), v(1), v(2), v(3), v(4), v(5));
    let rax: u64;
    // SAFETY: gate function 2 (as `sys::hv_hypercall`); XMM0-5 are inputs only, and the
    // clobbered general registers are declared.
    unsafe {
        core::arch::asm!("call {gate}", inout("rax") 2u64 => rax, inout("r9") page => _,
             inout("rdi") code => _, inout("rsi") rdx => _, inout("rdx") r8 => _,
             lateout("rcx") _, lateout("r8") _, lateout("r10") _, lateout("r11") _,
             in("xmm0") x0, in("xmm1") x1, in("xmm2") x2, in("xmm3") x3, in("xmm4") x4,
             in("xmm5") x5, gate = sym crate::boot::gate_stub)
    };
    // SAFETY: plain read of a static the gate writes.
    let f = unsafe { core::ptr::read_volatile(&raw const crate::boot::GATE_FAULT) };
    if f & 0x100 != 0 {
        return Err(msg!(
            "XMM hypercall {:#x} raised vector {}",
            code,
            Fault(f as u8).0
        ));
    }
    diag!("xmm call input={:#x} -> rax={:#x}", code, rax);
    Ok(rax)
}

fn expect_xmm(
    page: u64,
    code: u64,
    rdx: u64,
    r8: u64,
    x: &[u64; 12],
    want: u16,
    what: &str,
) -> Result<u64, Msg> {
    let rax = call_xmm(page, code, rdx, r8, x)?;
    if status(rax) != want {
        return Err(msg!("{}: status {} (want {})", what, status(rax), want));
    }
    Ok(rax)
}

fn reps_done(rax: u64) -> u64 {
    (rax >> 32) & 0xfff
}

/// The legacy PIC masked and the LAPIC software-enabled, so a fixed IPI is accepted.
fn lapic_on() {
    crate::port::outb(0x21, 0xff);
    crate::port::outb(0xa1, 0xff);
    let svr = sys::read_u32(LAPIC + 0xf0);
    sys::write_u32(LAPIC + 0xf0, svr | 0x100 | 0xff);
}

fn irr(vector: u8) -> bool {
    let v = u64::from(vector);
    sys::read_u32(LAPIC + 0x200 + (v / 32) * 0x10) >> (v % 32) & 1 == 1
}

/// After an IPI to this vCPU: pending in the IRR, then taken by the IDT's handler once.
fn ipi_arrives(what: &str) -> R {
    if !irr(UPCALL_VECTOR) {
        return Err(msg!(
            "{}: vector {:#x} not pending in the LAPIC IRR",
            what,
            UPCALL_VECTOR
        ));
    }
    let before = sys::upcalls();
    let after = sys::wait_irq();
    if after != before + 1 {
        return Err(msg!("{}: upcalls {} -> {}", what, before, after));
    }
    Ok(())
}

fn no_ipi(what: &str) -> R {
    if irr(UPCALL_VECTOR) {
        return Err(msg!("{}: an interrupt is pending, none expected", what));
    }
    Ok(())
}

/// HvCallSendSyntheticClusterIpi to this vCPU (VP 0): fast and memory forms arrive; a vector
/// below 16 or above 255, a TargetVtl, or a mask naming only absent VPs deliver nothing.
pub fn ipi_self(ctx: &mut Ctx) -> Outcome {
    run(|| {
        let page = enable_hypercalls(ctx)?;
        lapic_on();
        let v = u64::from(UPCALL_VECTOR);
        expect(
            page,
            CALL_SEND_IPI | FAST,
            v,
            1,
            SUCCESS,
            "fast IPI to VP 0",
        )?;
        ipi_arrives("fast IPI")?;
        let at = input(&[v, 1]);
        expect(page, CALL_SEND_IPI, at, 0, SUCCESS, "IPI, memory input")?;
        ipi_arrives("memory IPI")?;
        for bad in [15u64, 0x100] {
            expect(
                page,
                CALL_SEND_IPI | FAST,
                bad,
                1,
                INVALID_PARAMETER,
                "IPI vector out of range",
            )?;
        }
        expect(
            page,
            CALL_SEND_IPI | FAST,
            v | 1 << 32,
            1,
            INVALID_HYPERCALL_INPUT,
            "IPI with a TargetVtl",
        )?;
        expect(
            page,
            CALL_SEND_IPI | FAST,
            v,
            1 << 5,
            SUCCESS,
            "IPI to an absent VP",
        )?;
        no_ipi("after the refused and absent-VP IPIs")
    })
}

/// HvCallSendSyntheticClusterIpiEx: a sparse set {VP 0} and the ALL format from memory, a
/// set in XMM registers; a bank count disagreeing with the variable header, an unknown
/// format, and a set naming only VPs the VM lacks.
pub fn ipi_ex(ctx: &mut Ctx) -> Outcome {
    run(|| {
        let page = enable_hypercalls(ctx)?;
        lapic_on();
        let v = u64::from(UPCALL_VECTOR);
        let at = input(&[v, SPARSE_4K, 0b1, 0b1]);
        expect(
            page,
            CALL_SEND_IPI_EX | var_header(1),
            at,
            0,
            SUCCESS,
            "IPI Ex {VP 0}",
        )?;
        ipi_arrives("IPI Ex sparse")?;
        let at = input(&[v, ALL, 0]);
        expect(page, CALL_SEND_IPI_EX, at, 0, SUCCESS, "IPI Ex all")?;
        ipi_arrives("IPI Ex all")?;
        // Fast: RDX = vector, R8 = format, XMM0 = ValidBankMask | bank 0.
        let mut x = [0u64; 12];
        x[0] = 0b1;
        x[1] = 0b1;
        expect_xmm(
            page,
            CALL_SEND_IPI_EX | FAST | var_header(1),
            v,
            SPARSE_4K,
            &x,
            SUCCESS,
            "fast IPI Ex",
        )?;
        ipi_arrives("fast IPI Ex")?;
        let at = input(&[v, SPARSE_4K, 0b1, 0b1]);
        expect(
            page,
            CALL_SEND_IPI_EX,
            at,
            0,
            INVALID_HYPERCALL_INPUT,
            "bank count 1, header 0",
        )?;
        let at = input(&[v, 2, 0]);
        expect(
            page,
            CALL_SEND_IPI_EX,
            at,
            0,
            INVALID_PARAMETER,
            "unknown set format",
        )?;
        let at = input(&[v, SPARSE_4K, 0b10, u64::MAX]);
        expect(
            page,
            CALL_SEND_IPI_EX | var_header(1),
            at,
            0,
            SUCCESS,
            "set of VPs 64..127",
        )?;
        no_ipi("after the malformed and absent-VP IPI Ex")
    })
}

/// The Ex flushes from memory: sparse and ALL sets, a list with reps and a rep start, a
/// list running off the end of RAM (partial completion); malformed sets and flags.
pub fn flush_ex(ctx: &mut Ctx) -> Outcome {
    run(|| {
        let page = enable_hypercalls(ctx)?;
        let at = input(&[0, 0, SPARSE_4K, 0b1, 0b1]);
        expect(
            page,
            CALL_FLUSH_SPACE_EX | var_header(1),
            at,
            0,
            SUCCESS,
            "space Ex {VP 0}",
        )?;
        let at = input(&[0, 0, ALL, 0]);
        expect(page, CALL_FLUSH_SPACE_EX, at, 0, SUCCESS, "space Ex all")?;
        let at = input(&[0, 0, SPARSE_4K, 0b1, 0b1, 0x40_0000, 0x40_1000, 0x40_2000]);
        let rax = expect(
            page,
            CALL_FLUSH_LIST_EX | var_header(1) | reps(3, 0),
            at,
            0,
            SUCCESS,
            "list Ex 3 reps",
        )?;
        if reps_done(rax) != 3 {
            return Err(msg!("list Ex: {} reps completed of 3", reps_done(rax)));
        }
        let rax = expect(
            page,
            CALL_FLUSH_LIST_EX | var_header(1) | reps(3, 2),
            at,
            0,
            SUCCESS,
            "list Ex from rep 2",
        )?;
        if reps_done(rax) != 3 {
            return Err(msg!(
                "list Ex from rep 2: {} reps completed",
                reps_done(rax)
            ));
        }
        expect(
            page,
            CALL_FLUSH_SPACE_EX,
            at,
            0,
            INVALID_HYPERCALL_INPUT,
            "bank count 1, header 0",
        )?;
        let at = input(&[0, 0, 5, 0]);
        expect(
            page,
            CALL_FLUSH_SPACE_EX,
            at,
            0,
            INVALID_PARAMETER,
            "unknown set format",
        )?;
        let at = input(&[0, 1 << 9, ALL, 0]);
        expect(
            page,
            CALL_FLUSH_SPACE_EX,
            at,
            0,
            INVALID_PARAMETER,
            "undefined flag",
        )?;
        expect(
            page,
            CALL_FLUSH_SPACE_EX | reps(1, 0),
            at,
            0,
            INVALID_HYPERCALL_INPUT,
            "rep count on a simple call",
        )?;
        if ctx.ram_top >= 2 << 20 {
            // Header (4) + 1 entry below the top of RAM, the 2nd past it.
            let at = ctx.ram_top - 40;
            for (i, q) in [0u64, FLUSH_ALL, ALL, 0, 0x40_0000].iter().enumerate() {
                sys::write_u64(at + 8 * i as u64, *q);
            }
            let rax = expect(
                page,
                CALL_FLUSH_LIST_EX | reps(2, 0),
                at,
                0,
                INVALID_PARAMETER,
                "list Ex off the end of RAM",
            )?;
            if reps_done(rax) != 1 {
                return Err(msg!(
                    "list Ex crossing the end of RAM: {} reps done, want 1",
                    reps_done(rax)
                ));
            }
        }
        Ok(())
    })
}

/// XMM fast input (feature bit set): the flushes' processor mask, GVA list and VP set in
/// XMM0-5; a list longer than the registers hold is invalid input.
pub fn xmm_fast(ctx: &mut Ctx) -> Outcome {
    run(|| {
        hv_present()?;
        let edx = sys::cpuid(0x4000_0003).edx;
        if edx & FEAT_XMM_INPUT == 0 {
            return Err(msg!(
                "XmmRegistersForFastHypercallAvailable clear (EDX {:#x})",
                edx
            ));
        }
        let page = enable_hypercalls(ctx)?;
        let mut x = [0u64; 12];
        x[0] = 0b1; // ProcessorMask: VP 0
        expect_xmm(
            page,
            CALL_FLUSH_SPACE | FAST,
            0,
            0,
            &x,
            SUCCESS,
            "fast flush space",
        )?;
        for (i, q) in x.iter_mut().enumerate().skip(1) {
            *q = 0x40_0000 + 0x1000 * i as u64;
        }
        let rax = expect_xmm(
            page,
            CALL_FLUSH_LIST | FAST | reps(11, 0),
            0,
            0,
            &x,
            SUCCESS,
            "fast list, 11 reps",
        )?;
        if reps_done(rax) != 11 {
            return Err(msg!("fast list: {} reps completed of 11", reps_done(rax)));
        }
        expect_xmm(
            page,
            CALL_FLUSH_LIST | FAST | reps(12, 0),
            0,
            0,
            &x,
            INVALID_HYPERCALL_INPUT,
            "fast list, 12 reps",
        )?;
        // Ex: XMM0 = Format | ValidBankMask, XMM1 low = bank 0.
        let mut x = [0u64; 12];
        x[0] = SPARSE_4K;
        x[1] = 0b1;
        x[2] = 0b1;
        expect_xmm(
            page,
            CALL_FLUSH_SPACE_EX | FAST | var_header(1),
            0,
            0,
            &x,
            SUCCESS,
            "fast space Ex",
        )?;
        expect_xmm(
            page,
            CALL_FLUSH_SPACE_EX | FAST | var_header(11),
            0,
            0,
            &x,
            INVALID_HYPERCALL_INPUT,
            "fast Ex, bank count 1, header 11",
        )?;
        Ok(())
    })
}

/// XMM fast input withdrawn (`hv_clear`): the same fast flush is invalid input although the
/// registers hold a valid mask; memory input and a fast IPI (which fits RDX/R8) still work.
pub fn xmm_off(ctx: &mut Ctx) -> Outcome {
    run(|| {
        hv_present()?;
        let edx = sys::cpuid(0x4000_0003).edx;
        if edx & FEAT_XMM_INPUT != 0 {
            return Err(msg!(
                "XmmRegistersForFastHypercallAvailable still set (EDX {:#x}): hv_clear not applied",
                edx
            ));
        }
        let page = enable_hypercalls(ctx)?;
        let mut x = [0u64; 12];
        x[0] = 0b1;
        expect_xmm(
            page,
            CALL_FLUSH_SPACE | FAST,
            0,
            0,
            &x,
            INVALID_HYPERCALL_INPUT,
            "fast flush without XMM input",
        )?;
        let mut x = [0u64; 12];
        x[0] = ALL;
        expect_xmm(
            page,
            CALL_FLUSH_SPACE_EX | FAST,
            0,
            0,
            &x,
            INVALID_HYPERCALL_INPUT,
            "fast Ex flush without XMM input",
        )?;
        let at = input(&[0, 0, 0b1]);
        expect(page, CALL_FLUSH_SPACE, at, 0, SUCCESS, "memory flush")?;
        expect(
            page,
            CALL_SEND_IPI | FAST,
            u64::from(UPCALL_VECTOR),
            0,
            SUCCESS,
            "fast IPI, empty mask",
        )?;
        Ok(())
    })
}

/// Which gate a call has (as the hypervisor's CALL_GATES and KVM).
#[derive(Clone, Copy)]
enum Gate {
    Rec(u32),
    SpinRetries,
}

fn gate_open(g: Gate) -> bool {
    match g {
        Gate::Rec(mask) => sys::cpuid(0x4000_0004).eax & mask == mask,
        Gate::SpinRetries => {
            let ebx = sys::cpuid(0x4000_0004).ebx;
            ebx != 0 && ebx != u32::MAX
        }
    }
}

/// Every call of this file against its gate in CPUID: HV_STATUS_ACCESS_DENIED exactly when
/// the gate is closed. Inputs name no VP or this one, so nothing is left pending.
fn check_call_gates(page: u64) -> Result<u32, Msg> {
    let v = u64::from(UPCALL_VECTOR);
    // (input value, block or RDX, R8, gate)
    let calls: &[(u64, &[u64], u64, Gate)] = &[
        (CALL_FLUSH_SPACE, &[0, 0, 1], 0, Gate::Rec(REC_REMOTE_FLUSH)),
        (CALL_FLUSH_LIST, &[0, 0, 1], 0, Gate::Rec(REC_REMOTE_FLUSH)),
        (
            CALL_FLUSH_SPACE_EX,
            &[0, 0, ALL, 0],
            0,
            Gate::Rec(REC_REMOTE_FLUSH | REC_EX_MASKS),
        ),
        (
            CALL_FLUSH_LIST_EX,
            &[0, 0, ALL, 0],
            0,
            Gate::Rec(REC_REMOTE_FLUSH | REC_EX_MASKS),
        ),
        (CALL_SEND_IPI, &[v, 0], 0, Gate::Rec(REC_CLUSTER_IPI)),
        (
            CALL_SEND_IPI_EX,
            &[v, SPARSE_4K, 0],
            0,
            Gate::Rec(REC_CLUSTER_IPI | REC_EX_MASKS),
        ),
        (CALL_NOTIFY_LONG_SPIN_WAIT | FAST, &[], 1, Gate::SpinRetries),
    ];
    let mut n = 0;
    for &(code, block, r8, gate) in calls {
        let rdx = if block.is_empty() { 1 } else { input(block) };
        let want = if gate_open(gate) {
            SUCCESS
        } else {
            ACCESS_DENIED
        };
        let got = status(call(page, code, rdx, r8)?);
        if got != want {
            return Err(msg!("hypercall {:#x}: status {}, want {}", code, got, want));
        }
        n += 1;
    }
    Ok(n)
}

/// One VM of the gating sweep for these calls: `rec`/`spin` names what the profile withdrew
/// (it must read as withdrawn in CPUID), then every call must follow its gate.
fn gate_case(ctx: &Ctx, withdrawn: Option<Gate>) -> Outcome {
    run(|| {
        hv_present()?;
        if let Some(g) = withdrawn {
            if gate_open(g) {
                return Err(msg!(
                    "the withdrawn recommendation still reads as granted: hv_clear not applied"
                ));
            }
        }
        let page = enable_hypercalls(ctx)?;
        let n = check_call_gates(page)?;
        diag!("{} gated calls agree with CPUID 0x40000004", n);
        no_ipi("after the gate checks")
    })
}

/// Everything granted (the profile's default): no call of this file is denied.
pub fn gate_calls_all_granted(ctx: &mut Ctx) -> Outcome {
    for g in [
        Gate::Rec(REC_REMOTE_FLUSH | REC_CLUSTER_IPI | REC_EX_MASKS),
        Gate::SpinRetries,
    ] {
        if !gate_open(g) {
            crate::fail!("a flush/IPI/spin-wait recommendation is not granted by default");
        }
    }
    gate_case(ctx, None)
}

pub fn gate_cluster_ipi(ctx: &mut Ctx) -> Outcome {
    gate_case(ctx, Some(Gate::Rec(REC_CLUSTER_IPI)))
}

pub fn gate_ex_processor_masks(ctx: &mut Ctx) -> Outcome {
    gate_case(ctx, Some(Gate::Rec(REC_EX_MASKS)))
}

pub fn gate_remote_flush_ex(ctx: &mut Ctx) -> Outcome {
    gate_case(ctx, Some(Gate::Rec(REC_REMOTE_FLUSH)))
}

pub fn gate_long_spin_wait(ctx: &mut Ctx) -> Outcome {
    gate_case(ctx, Some(Gate::SpinRetries))
}

#[repr(C, align(4096))]
struct Page4k([u64; 512]);
static mut FLUSH_PT: Page4k = Page4k([0; 512]);
static mut FLUSH_A: Page4k = Page4k([0; 512]);
static mut FLUSH_B: Page4k = Page4k([0; 512]);
extern "C" {
    /// The boot page directory for 0..1 GiB (boot.rs; 2 MiB pages).
    static mut PD0: crate::boot::Table;
}
/// A PD0 slot far above this guest's RAM (VA 1000 MiB), free for a 4 KiB page table.
const FLUSH_PDE: usize = 500;
/// Present, writable, user, accessed (and dirty for a PTE): nothing for the CPU to write.
const PDE_TABLE: u64 = 0x27;
const PTE_PAGE: u64 = 0x67;

/// The flush is real: a 4 KiB mapping is pointed at page A and read (filling the TLB), its
/// PTE is switched to page B without INVLPG, then HvCallFlushVirtualAddressSpace of this VP
/// must make the next read see B. (Whether the read before the flush still saw A, a stale
/// entry, depends on the host's TLB/shadow paging and is only reported.)
pub fn flush_real(ctx: &mut Ctx) -> Outcome {
    run(|| {
        let page = enable_hypercalls(ctx)?;
        let (pt, a, b) = (
            (&raw const FLUSH_PT) as u64,
            (&raw const FLUSH_A) as u64,
            (&raw const FLUSH_B) as u64,
        );
        let pde = (&raw const PD0) as u64 + 8 * FLUSH_PDE as u64;
        let va = (FLUSH_PDE as u64) << 21;
        sys::write_u64(a, 0xaaaa_aaaa_aaaa_aaaa);
        sys::write_u64(b, 0xbbbb_bbbb_bbbb_bbbb);
        sys::write_u64(pt, a | PTE_PAGE);
        let old_pde = sys::read_u64(pde);
        sys::write_u64(pde, pt | PDE_TABLE);
        let flush = |what: &str| -> R {
            let at = input(&[0, 0, 0b1]);
            expect(page, CALL_FLUSH_SPACE, at, 0, SUCCESS, what).map(|_| ())
        };
        // The slot's old 2 MiB mapping was never used, but flush once so that the test starts
        // from the new table whatever the host did.
        flush("flush after installing the page table")?;
        let before = sys::read_u64(va);
        if before != 0xaaaa_aaaa_aaaa_aaaa {
            return Err(msg!("VA {:#x} reads {:#x}, not page A", va, before));
        }
        sys::write_u64(pt, b | PTE_PAGE);
        let stale = sys::read_u64(va);
        flush("flush after the PTE switch")?;
        let after = sys::read_u64(va);
        diag!(
            "read before the flush: {} ({:#x}); after: {:#x}",
            if stale == 0xaaaa_aaaa_aaaa_aaaa {
                "stale page A"
            } else {
                "page B"
            },
            stale,
            after
        );
        sys::write_u64(pde, old_pde);
        flush("flush after restoring the page directory")?;
        if after != 0xbbbb_bbbb_bbbb_bbbb {
            return Err(msg!(
                "after the flush VA {:#x} still reads {:#x}, not page B",
                va,
                after
            ));
        }
        Ok(())
    })
}

/// Flushes and an IPI aimed at another vCPU: vCPU 1 is started (as `smp_vp_index`) and halts
/// with interrupts off; a flush of VP 1 alone, an Ex flush of every VP and an IPI to VP 1
/// must each succeed and return (the VMM kicks the halted vCPU out of KVM_RUN and waits
/// for it to take the flush).
pub fn flush_remote(ctx: &mut Ctx) -> Outcome {
    match super::smp_vp_index(ctx) {
        Outcome::Pass => {}
        other => return other,
    }
    run(|| {
        let page = enable_hypercalls(ctx)?;
        let t0 = sys::rdtsc();
        let at = input(&[0, 0, 0b10]);
        expect(page, CALL_FLUSH_SPACE, at, 0, SUCCESS, "flush of VP 1")?;
        let at = input(&[0, 0, ALL, 0]);
        expect(
            page,
            CALL_FLUSH_SPACE_EX,
            at,
            0,
            SUCCESS,
            "Ex flush of every VP",
        )?;
        let v = u64::from(UPCALL_VECTOR);
        expect(page, CALL_SEND_IPI | FAST, v, 0b10, SUCCESS, "IPI to VP 1")?;
        diag!(
            "3 calls aimed at VP 1 took {} TSC cycles",
            sys::rdtsc().wrapping_sub(t0)
        );
        Ok(())
    })
}
