//! Ring-3 primitives: the ud2 gate, CPUID, the exit port, and the memory functions the
//! compiler expects (no libc here). Port I/O itself is in port.rs.
use core::arch::asm;

use crate::port::{outl, EXIT_PORT};

/// TSC cycles spent in the gate (ring 0, including the VMM exits made from there).
static mut GATE_TSC: u64 = 0;
static mut GATE_CALLS: u64 = 0;
/// TSC when ring 3 was entered.
pub static mut USER_TSC: u64 = 0;

pub fn rdtsc() -> u64 {
    // SAFETY: rdtsc is unprivileged (CR4.TSD clear) and has no side effects.
    unsafe { core::arch::x86_64::_rdtsc() }
}

fn gate_timed<T>(f: impl FnOnce() -> T) -> T {
    let t0 = rdtsc();
    let r = f();
    let dt = rdtsc().wrapping_sub(t0);
    // SAFETY: single CPU; plain counters.
    unsafe {
        GATE_TSC = GATE_TSC.wrapping_add(dt);
        GATE_CALLS += 1;
    }
    r
}

/// `# timing: ...`: where the guest's time went, in TSC cycles (the runner turns it into
/// the ring-0 share when the hypervisor doesn't measure it).
pub fn print_timing() {
    let now = rdtsc();
    // SAFETY: reads of counters only this CPU writes.
    let (boot, user, gate, calls) =
        unsafe { (crate::boot::BOOT_TSC, USER_TSC, GATE_TSC, GATE_CALLS) };
    crate::diag!(
        "timing: boot_ring0_tsc={} gate_tsc={} gate_calls={} total_tsc={}",
        user.wrapping_sub(boot),
        gate,
        calls,
        now.wrapping_sub(boot)
    );
}

/// End the VM with `status` through port 0xf4. If nothing listens there, halt in ring 0.
pub fn exit(status: u32) -> ! {
    print_timing();
    outl(EXIT_PORT, status);
    // SAFETY: gate function 9 never returns.
    unsafe {
        asm!("call {gate}", in("rax") 9u64, gate = sym crate::boot::gate_stub, options(noreturn))
    }
}

/// A fault taken inside the gate (vector), e.g. #GP = 13.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault(pub u8);

fn gate_fault() -> Option<Fault> {
    // SAFETY: plain read of a static the gate writes; no concurrent writer while we run.
    let f = unsafe { core::ptr::read_volatile(&raw const crate::boot::GATE_FAULT) };
    if f & 0x100 != 0 {
        Some(Fault(f as u8))
    } else {
        None
    }
}

pub fn rdmsr(msr: u32) -> Result<u64, Fault> {
    let v = gate_timed(|| {
        let v: u64;
        // SAFETY: gate function 0 executes rdmsr in ring 0 with a trap armed; it clobbers
        // rdx (and rcx/r11 may be clobbered by the gate).
        unsafe {
            asm!("call {gate}", inout("rax") 0u64 => v, in("rdi") msr as u64, lateout("rdx") _,
                 lateout("rcx") _, lateout("r11") _, gate = sym crate::boot::gate_stub)
        };
        v
    });
    match gate_fault() {
        Some(f) => Err(f),
        None => Ok(v),
    }
}

pub fn wrmsr(msr: u32, value: u64) -> Result<(), Fault> {
    gate_timed(|| {
        // SAFETY: gate function 1 executes wrmsr in ring 0 with a trap armed.
        unsafe {
            asm!("call {gate}", inout("rax") 1u64 => _, in("rdi") msr as u64, in("rsi") value,
                 lateout("rdx") _, lateout("rcx") _, lateout("r11") _, gate = sym crate::boot::gate_stub)
        }
    });
    match gate_fault() {
        Some(f) => Err(f),
        None => Ok(()),
    }
}

/// Hyper-V hypercall through the page at `page`, from CPL 0 (gate function 2).
pub fn hv_hypercall(page: u64, input: u64, in_gpa: u64, out_gpa: u64) -> Result<u64, Fault> {
    let rax = gate_timed(|| {
        let rax: u64;
        // SAFETY: the gate calls `page` in ring 0; the hypercall page code is the VMM's and
        // may clobber any caller-saved register, all declared here.
        unsafe {
            asm!("call {gate}", inout("rax") 2u64 => rax, inout("r9") page => _,
                 inout("rdi") input => _, inout("rsi") in_gpa => _, inout("rdx") out_gpa => _,
                 lateout("rcx") _, lateout("r8") _, lateout("r10") _, lateout("r11") _,
                 gate = sym crate::boot::gate_stub)
        };
        rax
    });
    match gate_fault() {
        Some(f) => Err(f),
        None => Ok(rax),
    }
}

/// Xen hypercall `nr` through the page at `page` (32-byte stubs), from CPL 0.
pub fn xen_hypercall(page: u64, nr: u64, a: [u64; 5]) -> Result<i64, Fault> {
    let rax = gate_timed(|| {
        let rax: u64;
        // SAFETY: as in `hv_hypercall`; Xen's ABI passes rdi, rsi, rdx, r10, r8.
        unsafe {
            asm!("call {gate}", inout("rax") 3u64 => rax, inout("r9") page + nr * 32 => _,
                 inout("rdi") a[0] => _, inout("rsi") a[1] => _, inout("rdx") a[2] => _,
                 inout("r10") a[3] => _, inout("r8") a[4] => _,
                 lateout("rcx") _, lateout("r11") _, gate = sym crate::boot::gate_stub)
        };
        rax
    });
    match gate_fault() {
        Some(f) => Err(f),
        None => Ok(rax as i64),
    }
}

/// Waits for an interrupt (gate function 6); returns the upcalls taken so far.
pub fn wait_irq() -> u64 {
    // SAFETY: gate function 6 runs `sti; hlt; cli` in ring 0.
    unsafe {
        asm!("call {gate}", inout("rax") 6u64 => _, lateout("rcx") _, lateout("r11") _,
             gate = sym crate::boot::gate_stub)
    };
    upcalls()
}

/// Upcalls the handler has counted.
pub fn upcalls() -> u64 {
    // SAFETY: plain read of a counter the interrupt handler writes.
    unsafe { core::ptr::read_volatile(&raw const crate::boot::UPCALLS) }
}

/// TSC at the last upcall.
pub fn upcall_tsc() -> u64 {
    // SAFETY: as in `upcalls`.
    unsafe { core::ptr::read_volatile(&raw const crate::boot::UPCALL_TSC) }
}

/// Call `target` directly from ring 3 (CPL 3). Err(vector) when it faulted.
pub fn call_from_ring3(target: u64, rcx: u64, rdx: u64, r8: u64) -> Result<u64, Fault> {
    // SAFETY: user_probe_call arms a CPL-3 trap, so a fault resumes it; it saves the
    // callee-saved registers itself.
    let rax = unsafe { crate::boot::user_probe_call(target, rcx, rdx, r8) };
    // SAFETY: plain reads of statics the trap path wrote.
    let (hit, vector) = unsafe {
        let t = &raw const crate::boot::TRAP;
        (
            core::ptr::read_volatile(&raw const (*t).user_hit),
            core::ptr::read_volatile(&raw const (*t).vector),
        )
    };
    if hit != 0 {
        Err(Fault(vector as u8))
    } else {
        Ok(rax)
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Cpuid {
    pub eax: u32,
    pub ebx: u32,
    pub ecx: u32,
    pub edx: u32,
}

/// CPUID through the gate (ring 0; see boot.rs for why not natively in ring 3).
pub fn cpuid(leaf: u32) -> Cpuid {
    gate_timed(|| {
        let (eax, ebx, ecx, edx): (u64, u64, u64, u64);
        // SAFETY: gate function 4 runs cpuid in ring 0 and returns the four registers.
        unsafe {
            asm!("call {gate}", inout("rax") 4u64 => eax, inout("rdi") leaf as u64 => ebx,
                 inout("rsi") 0u64 => ecx, lateout("rdx") edx, lateout("rcx") _, lateout("r11") _,
                 gate = sym crate::boot::gate_stub)
        };
        Cpuid {
            eax: eax as u32,
            ebx: ebx as u32,
            ecx: ecx as u32,
            edx: edx as u32,
        }
    })
}

/// The 12-byte signature in EBX, ECX, EDX.
pub fn signature(c: &Cpuid) -> [u8; 12] {
    let mut s = [0u8; 12];
    s[0..4].copy_from_slice(&c.ebx.to_le_bytes());
    s[4..8].copy_from_slice(&c.ecx.to_le_bytes());
    s[8..12].copy_from_slice(&c.edx.to_le_bytes());
    s
}

pub fn read_u8(addr: u64) -> u8 {
    // SAFETY: callers pass identity-mapped addresses inside guest RAM.
    unsafe { core::ptr::read_volatile(addr as *const u8) }
}
pub fn read_u32(addr: u64) -> u32 {
    // SAFETY: as in `read_u8`.
    unsafe { core::ptr::read_volatile(addr as *const u32) }
}
pub fn read_u64(addr: u64) -> u64 {
    // SAFETY: as in `read_u8`.
    unsafe { core::ptr::read_volatile(addr as *const u64) }
}

// The compiler lowers copies to these symbols; libc is absent, so the guest provides
// them with string instructions (also fine when ring 0 is emulated).
#[no_mangle]
unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller (compiler-generated) guarantees valid, non-overlapping ranges.
    unsafe {
        asm!("rep movsb", inout("rdi") dst => _, inout("rsi") src => _, inout("rcx") n => _,
             options(nostack, preserves_flags))
    };
    dst
}

#[no_mangle]
unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dst as usize) <= (src as usize) || (dst as usize) >= (src as usize) + n {
        // SAFETY: forward copy is safe when dst is below src or the ranges don't overlap.
        unsafe { memcpy(dst, src, n) }
    } else {
        // SAFETY: overlapping with dst above src: copy backwards.
        unsafe {
            asm!("std", "rep movsb", "cld",
                 inout("rdi") dst.add(n - 1) => _, inout("rsi") src.add(n - 1) => _,
                 inout("rcx") n => _, options(nostack))
        };
        dst
    }
}

#[no_mangle]
unsafe extern "C" fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees a valid range.
    unsafe {
        asm!("rep stosb", inout("rdi") dst => _, inout("rcx") n => _, in("al") c as u8,
             options(nostack, preserves_flags))
    };
    dst
}

#[no_mangle]
unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i < n {
        // SAFETY: the caller guarantees both ranges are valid for n bytes; volatile keeps
        // the compiler from turning this loop back into a memcmp call.
        let (x, y) = unsafe {
            (
                core::ptr::read_volatile(a.add(i)),
                core::ptr::read_volatile(b.add(i)),
            )
        };
        if x != y {
            return x as i32 - y as i32;
        }
        i += 1;
    }
    0
}

#[no_mangle]
unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: same contract as memcmp.
    unsafe { memcmp(a, b, n) }
}

pub fn write_u32(addr: u64, v: u32) {
    // SAFETY: callers pass identity-mapped addresses of their own buffers.
    unsafe { core::ptr::write_volatile(addr as *mut u32, v) }
}
pub fn write_u64(addr: u64, v: u64) {
    // SAFETY: as in `write_u32`.
    unsafe { core::ptr::write_volatile(addr as *mut u64, v) }
}
pub fn write_bytes(addr: u64, b: &[u8]) {
    for (i, &x) in b.iter().enumerate() {
        // SAFETY: as in `write_u32`.
        unsafe { core::ptr::write_volatile((addr + i as u64) as *mut u8, x) }
    }
}

/// A page-aligned 4 KiB buffer (hypercall pages, hypercall input/output blocks).
#[repr(C, align(4096))]
pub struct Page(pub [u8; 4096]);
