//! SynIC delivery per vCPU: the second vCPU sets up its own SynIC (SIMP, SIEFP, SCONTROL,
//! SINT2 on its own vector) and arms its own STIMER0; the expiry message must land in ITS
//! SIMP page with its vector pending in ITS local APIC, while the boot vCPU's SynIC (set up
//! first, on other pages and `UPCALL_VECTOR`) sees nothing and keeps its own registers.
use super::hv_synic::*;
use crate::boot::{ap_tramp_end, ap_tramp_start, AP_ENTRY, AP_TRAMPOLINE, UPCALL_VECTOR};
use crate::ktap::Outcome;
use crate::sys::{self, Page};
use crate::{check, diag, Ctx};

/// The vector vCPU 1 gives its SINT2 (distinct from the boot vCPU's `UPCALL_VECTOR`).
const AP_VECTOR: u8 = 0x5a;

/// vCPU 1's SIMP and SIEFP pages.
#[no_mangle]
static mut HV_PERCPU_SIMP: Page = Page([0; 4096]);
#[no_mangle]
static mut HV_PERCPU_SIEFP: Page = Page([0; 4096]);
/// What vCPU 1 reports: [0] message type in its slot 2, [1] its IRR word holding
/// AP_VECTOR, [2] its SIMP MSR (low half) read back, [3] done flag.
#[no_mangle]
static mut HV_PERCPU_OUT: [u32; 4] = [0; 4];

core::arch::global_asm!(
    ".text",
    ".global hv_percpu_ap",
    // Ring 0 on an AP, interrupts off, r8 = its APIC ID. Only APIC ID 1 works.
    "hv_percpu_ap:",
    "cmp r8d, 1",
    "jne 9f",
    "mov rsi, 0xfee00000",
    "mov eax, dword ptr [rsi + 0xf0]",
    "or eax, 0x1ff",
    "mov dword ptr [rsi + 0xf0], eax",
    // SIMP, SIEFP (enabled, this vCPU's pages), SCONTROL, SINT2 = AP_VECTOR.
    "lea rax, [rip + HV_PERCPU_SIMP]",
    "or rax, 1",
    "mov rdx, rax",
    "shr rdx, 32",
    "mov ecx, 0x40000083",
    "wrmsr",
    "lea rax, [rip + HV_PERCPU_SIEFP]",
    "or rax, 1",
    "mov rdx, rax",
    "shr rdx, 32",
    "mov ecx, 0x40000082",
    "wrmsr",
    "mov eax, 1",
    "xor edx, edx",
    "mov ecx, 0x40000080",
    "wrmsr",
    "mov eax, {vec}",
    "xor edx, edx",
    "mov ecx, 0x40000092",
    "wrmsr",
    // STIMER0: one-shot, message mode to SINT2, due 2 ms from now.
    "mov ecx, 0x40000020",
    "rdmsr",
    "shl rdx, 32",
    "or rax, rdx",
    "mov r9, rax",
    "add rax, 20000",
    "mov rdx, rax",
    "shr rdx, 32",
    "mov ecx, 0x400000B1",
    "wrmsr",
    "mov eax, 0x20001",
    "xor edx, edx",
    "mov ecx, 0x400000B0",
    "wrmsr",
    // Wait (at most 1 s of reference time) for the message in slot 2, then for the vector.
    "2:",
    "mov eax, dword ptr [rip + HV_PERCPU_SIMP + 512]",
    "test eax, eax",
    "jz 3f",
    "mov eax, dword ptr [rsi + 0x200 + {irr}]",
    "bt eax, {bit}",
    "jc 4f",
    "3:",
    "mov ecx, 0x40000020",
    "rdmsr",
    "shl rdx, 32",
    "or rax, rdx",
    "sub rax, r9",
    "cmp rax, 10000000",
    "ja 4f",
    "pause",
    "jmp 2b",
    "4:",
    "mov eax, dword ptr [rip + HV_PERCPU_SIMP + 512]",
    "mov dword ptr [rip + HV_PERCPU_OUT], eax",
    "mov eax, dword ptr [rsi + 0x200 + {irr}]",
    "mov dword ptr [rip + HV_PERCPU_OUT + 4], eax",
    "mov ecx, 0x40000083",
    "rdmsr",
    "mov dword ptr [rip + HV_PERCPU_OUT + 8], eax",
    "mov dword ptr [rip + HV_PERCPU_OUT + 12], 1",
    "9:",
    "cli",
    "hlt",
    "jmp 9b",
    vec = const AP_VECTOR as u32,
    irr = const (AP_VECTOR as u32 / 32) * 0x10,
    bit = const AP_VECTOR as u32 % 32,
);
extern "C" {
    fn hv_percpu_ap();
}

fn out(i: usize) -> u32 {
    // SAFETY: in bounds (i < 4 at every call); vCPU 1 writes these words, volatile sees it.
    unsafe { core::ptr::read_volatile((&raw const HV_PERCPU_OUT as *const u32).add(i & 3)) }
}

/// SynIC per vCPU (see the module comment).
pub fn synic_percpu(ctx: &mut Ctx) -> Outcome {
    let vcpus: usize = ctx
        .cmdline
        .get("vcpus")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    check!(
        vcpus >= 2,
        "needs vcpus >= 2 in the profile (vcpus={})",
        vcpus
    );
    // The boot vCPU's SynIC first: its pages, SINT2 -> UPCALL_VECTOR, its timers off.
    req!(synic_on());
    let ap_simp = (&raw const HV_PERCPU_SIMP) as u64;
    sys::write_bytes(ap_simp, &[0; 4096]);
    sys::write_bytes((&raw const HV_PERCPU_SIEFP) as u64, &[0; 4096]);
    // Start vCPU 1 into hv_percpu_ap (INIT-SIPI-SIPI to all but self).
    // SAFETY: written before the APs are started; they read it once.
    unsafe { core::ptr::write_volatile(&raw mut AP_ENTRY, hv_percpu_ap as *const () as u64) };
    let (start, end) = (
        &raw const ap_tramp_start as u64,
        &raw const ap_tramp_end as u64,
    );
    for i in 0..end - start {
        sys::write_bytes(AP_TRAMPOLINE + i, &[sys::read_u8(start + i)]);
    }
    const LAPIC: u64 = 0xfee0_0000;
    let icr = |low: u32| sys::write_u32(LAPIC + 0x300, (0b11 << 18) | low);
    icr(0x0000_4500);
    req!(poll(10, || false));
    for _ in 0..2 {
        icr(0x0000_4600 | (AP_TRAMPOLINE >> 12) as u32);
        if req!(poll(200, || out(3) == 1)) {
            break;
        }
    }
    check!(
        req!(poll(5000, || out(3) == 1)),
        "vCPU 1 did not report back"
    );
    let (ty, ap_irr, ap_simp_msr) = (out(0), out(1), out(2));
    let idx = sys::read_u32(ap_simp + 2 * 256 + 16);
    diag!(
        "vCPU 1: slot 2 type {:#x} TimerIndex {}, IRR word {:#x}, SIMP MSR {:#x}",
        ty,
        idx,
        ap_irr,
        ap_simp_msr
    );
    check!(
        ty == HVMSG_TIMER_EXPIRED,
        "vCPU 1's STIMER0 message not in its own SIMP slot 2 (type {:#x})",
        ty
    );
    check!(idx == 0, "vCPU 1's message names timer {}", idx);
    check!(
        ap_irr >> (AP_VECTOR % 32) & 1 != 0,
        "vCPU 1's SINT2 vector {:#x} not pending in its LAPIC",
        AP_VECTOR
    );
    check!(
        u64::from(ap_simp_msr) == (ap_simp & 0xffff_ffff) | 1,
        "vCPU 1's SIMP reads {:#x}, it wrote {:#x}",
        ap_simp_msr,
        ap_simp | 1
    );
    // The boot vCPU: nothing in any slot, neither vector pending, its registers its own.
    for s in 0..16 {
        check!(
            slot_type(s) == HVMSG_NONE,
            "vCPU 1's timer wrote the boot vCPU's slot {}",
            s
        );
    }
    check!(!irr(UPCALL_VECTOR), "boot vCPU's SINT2 vector pending");
    check!(!irr(AP_VECTOR), "vCPU 1's vector pending on the boot vCPU");
    let simp_msr = req!(rd(MSR_SIMP));
    check!(
        simp_msr == simp() | 1,
        "boot vCPU's SIMP reads {:#x} after vCPU 1 wrote its own, want {:#x}",
        simp_msr,
        simp() | 1
    );
    let sint2 = req!(rd(MSR_SINT0 + 2));
    check!(
        sint2 & 0xff == UPCALL_VECTOR as u64 && sint2 & SINT_MASKED == 0,
        "boot vCPU's SINT2 reads {:#x}",
        sint2
    );
    let cfg = req!(rd(MSR_STIMER0_CONFIG));
    check!(cfg == 0, "boot vCPU's STIMER0_CONFIG reads {:#x}", cfg);
    Outcome::Pass
}
