//! Ring-0 side of the guest: PVH entry, long mode, GDT/TSS/IDT, exception reporting, the
//! gate for privileged operations, AP start-up, and the drop to ring 3.
//!
//! Ring 0 is emulated instruction by instruction on the CI machines (~1 µs each), so this
//! file keeps ring-0 work small: the page tables and the IDT are built at compile time (at
//! run time only three page-table links and the TSS descriptor are stored), and everything
//! else runs in ring 3. Ring 3 runs with IOPL=3 and an all-ports-allowed I/O bitmap so it
//! can write COM1 and port 0xf4 itself (no gate per console byte); privileged work
//! (rdmsr/wrmsr, CPUID, calls into the hypercall pages) goes through the gate. All ring-0
//! code is assembly: the emulator fails on the SSE instructions compiled Rust may contain.
//!
//! Gate ABI: ring 3 does `call gate_stub`, a `ud2` that the #UD handler recognises by its
//! address (on the nested KVM of the CI machines `int n` and `syscall` from ring 3 don't
//! reach a ring-0 handler; exceptions do). RAX = function:
//! - 0: rdmsr(ECX := EDI) -> RAX
//! - 1: wrmsr(ECX := EDI, value RSI)
//! - 2: Hyper-V hypercall through the page at R9 (input RDI, input GPA RSI, output GPA RDX,
//!   moved to RCX/RDX/R8) -> RAX
//! - 3: `call r9` with RDI/RSI/RDX/R10/R8 passed through (Xen stubs) -> RAX
//! - 4: cpuid(leaf EDI, subleaf ESI) -> EAX, EBX in EDI, ECX in ESI, EDX. CPUID goes through
//!   ring 0 because on the nested KVM here a ring-3 CPUID is answered by the outer
//!   hypervisor, not by ours (ring 0 is emulated against our CPUID table); a real kernel
//!   executes it in ring 0 too.
//! - 6: wait for an interrupt (`sti; hlt; cli`). (A bare `sti; nop; cli` window does not
//!   take an interrupt already pending in the LAPIC on this host's ring-0 emulator; `hlt`
//!   does, and returns at once when one is pending.)
//! - 9: halt forever.
//!
//! RCX, R8, R10 and R11 may be clobbered. A fault inside the gate (e.g. #GP from an
//! unimplemented MSR) is caught: `GATE_FAULT` = 0x100 | vector, and the gate returns.
use core::arch::global_asm;

/// 2 MiB page flags: present, writable, user, accessed, dirty, large (A/D preset so the CPU
/// never has to write the tables).
const PDE_RAM: u64 = 0xE7;
/// Same, plus cache-disable and write-through for the MMIO window.
const PDE_MMIO: u64 = 0xFF;

#[repr(C, align(4096))]
pub struct Table(pub [u64; 512]);

const fn large_pages(base: u64, flags: u64) -> Table {
    let mut t = [0u64; 512];
    let mut i = 0;
    while i < 512 {
        t[i] = (base + ((i as u64) << 21)) | flags;
        i += 1;
    }
    Table(t)
}

#[no_mangle]
static mut PML4: Table = Table([0; 512]);
#[no_mangle]
static mut PDPT: Table = Table([0; 512]);
/// 0..1 GiB identity, user-accessible.
#[no_mangle]
static mut PD0: Table = large_pages(0, PDE_RAM);
/// 3..4 GiB identity, uncached: virtio-mmio devices live at 0xd000_0000.
#[no_mangle]
static mut PD3: Table = large_pages(3 << 30, PDE_MMIO);

#[no_mangle]
static mut START_INFO: u32 = 0;
/// TSC at the first instruction (ring 0), for the ring-0 share of the guest's life.
#[no_mangle]
pub static mut BOOT_TSC: u64 = 0;

pub const KSTACK_SIZE: usize = 16 * 1024;
#[repr(C, align(16))]
pub struct Stack<const N: usize>(pub [u8; N]);
#[no_mangle]
static mut KSTACK: Stack<KSTACK_SIZE> = Stack([0; KSTACK_SIZE]);
const USTACK_SIZE: usize = 128 * 1024;
#[no_mangle]
static mut USTACK: Stack<USTACK_SIZE> = Stack([0; USTACK_SIZE]);

/// Trap recovery shared by ring 0 and ring 3 (all memory is user-accessible).
#[repr(C)]
pub struct Trap {
    /// 0 = not armed, 1 = a fault at CPL 3 resumes, 2 = a fault at CPL 0 resumes.
    pub armed: u64,
    pub resume_rip: u64,
    pub resume_rsp: u64,
    pub vector: u64,
    pub error: u64,
    pub fault_rip: u64,
    /// Set by `user_probe_call` when it was resumed by a trap.
    pub user_hit: u64,
}
#[no_mangle]
pub static mut TRAP: Trap = Trap {
    armed: 0,
    resume_rip: 0,
    resume_rsp: 0,
    vector: 0,
    error: 0,
    fault_rip: 0,
    user_hit: 0,
};
#[no_mangle]
pub static mut GATE_FAULT: u64 = 0;
/// The Xen upcall vector this guest's IDT serves (Linux's HYPERVISOR_CALLBACK_VECTOR).
pub const UPCALL_VECTOR: u8 = 0xf3;
/// Upcalls taken (the handler counts them).
#[no_mangle]
pub static mut UPCALLS: u64 = 0;
/// TSC at the last upcall.
#[no_mangle]
pub static mut UPCALL_TSC: u64 = 0;
/// A vector whose handler counts it in [`NOEOI_TAKEN`] and does not EOI.
pub const NOEOI_VECTOR: u8 = 0xf2;
/// Interrupts taken on [`NOEOI_VECTOR`].
#[no_mangle]
pub static mut NOEOI_TAKEN: u64 = 0;

#[repr(C, packed)]
struct Tss {
    _r0: u32,
    rsp0: u64,
    rsp1: u64,
    rsp2: u64,
    _r1: u64,
    ist: [u64; 7],
    _r2: u64,
    _r3: u16,
    iomap: u16,
    /// I/O permission bitmap: all ports allowed (plus the terminating 0xff byte).
    /// Architecturally IOPL=3 already lets ring 3 do port I/O without consulting it, but
    /// the nested KVM here (kvm_pvm) checks the bitmap; with it, both agree.
    bitmap: [u8; 8193],
}
#[no_mangle]
static mut TSS: Tss = Tss {
    _r0: 0,
    rsp0: 0,
    rsp1: 0,
    rsp2: 0,
    _r1: 0,
    ist: [0; 7],
    _r2: 0,
    _r3: 0,
    iomap: 104,
    bitmap: {
        let mut b = [0u8; 8193];
        b[8192] = 0xff;
        b
    },
};

/// Where the AP start-up code is copied (below 1 MiB, page-aligned, free in the PVH layout).
pub const AP_TRAMPOLINE: u64 = 0x1_0000;
/// Written by each AP once in long mode, 4 words at slot (its APIC ID): VP_INDEX,
/// initial APIC ID, done flag, TIME_REF_COUNT (low 32 bits, Hyper-V only).
#[no_mangle]
pub static mut AP_MAILBOX: [u32; 4 * MAX_CPUS] = [0; 4 * MAX_CPUS];
/// vCPUs the SMP case can start (APIC IDs 0..16).
pub const MAX_CPUS: usize = 16;
/// When non-zero, an AP jumps here (ring 0, its stack and the IDT loaded, r8 = its APIC
/// ID) instead of reporting VP_INDEX (the Xen SMP case: no Hyper-V MSR there).
#[no_mangle]
pub static mut AP_ENTRY: u64 = 0;
#[no_mangle]
static mut APSTACK: Stack<{ 1024 * MAX_CPUS }> = Stack([0; 1024 * MAX_CPUS]);

/// An exception nobody armed a trap for, as the exception path saved it for
/// `crash::user_crash`.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct Crash {
    /// Exception vector.
    pub vector: u64,
    /// Error code (0 for vectors without one).
    pub error: u64,
    /// Where it happened.
    pub rip: u64,
    /// The code segment then (its low bits: the privilege level).
    pub cs: u64,
    /// The stack pointer then.
    pub rsp: u64,
    taken: u64,
}
#[no_mangle]
pub static mut CRASH: Crash = Crash {
    vector: 0,
    error: 0,
    rip: 0,
    cs: 0,
    rsp: 0,
    taken: 0,
};
const CSTACK_SIZE: usize = 32 * 1024;
#[no_mangle]
static mut CSTACK: Stack<CSTACK_SIZE> = Stack([0; CSTACK_SIZE]);

global_asm!(
    r#"
    .section .note.Xen, "a"
    .balign 4
    .long 4
    .long 4
    .long 18            /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .balign 4
    .long _start32
    .balign 4

    .section .data.gdt, "aw"
    .balign 16
    .global GDT
GDT:
    .quad 0
    .quad 0x00AF9A000000FFFF    /* 0x08 kernel code, 64-bit */
    .quad 0x00CF92000000FFFF    /* 0x10 kernel data */
    .quad 0x00CFF2000000FFFF    /* 0x18 user data (DPL 3) */
    .quad 0x00AFFA000000FFFF    /* 0x20 user code, 64-bit (DPL 3) */
    .quad 0, 0                  /* 0x28 TSS, filled at boot */
    .quad 0x00CF9A000000FFFF    /* 0x38 kernel code, 32-bit (AP start-up only) */
GDT_END:
    .balign 8
GDT_PTR:
    .word GDT_END - GDT - 1
    .long GDT

    .section .text.boot, "ax"
    .code32
    .global _start32
_start32:
    rdtsc
    mov dword ptr [BOOT_TSC], eax
    mov dword ptr [BOOT_TSC + 4], edx
    cli
    cld
    mov dword ptr [START_INFO], ebx
    mov eax, offset PDPT
    or eax, 7
    mov dword ptr [PML4], eax
    mov eax, offset PD0
    or eax, 7
    mov dword ptr [PDPT], eax
    mov eax, offset PD3
    or eax, 7
    mov dword ptr [PDPT + 24], eax
    mov eax, cr4
    or eax, 0x620               /* PAE | OSFXSR | OSXMMEXCPT */
    mov cr4, eax
    mov eax, offset PML4
    mov cr3, eax
    mov ecx, 0xC0000080         /* EFER */
    rdmsr
    or eax, 0x100               /* LME */
    wrmsr
    mov eax, cr0
    and eax, 0xFFFFFFFB         /* clear EM */
    or eax, 0x80000023          /* PG | NE | MP | PE */
    mov cr0, eax
    lgdt [GDT_PTR]
    .byte 0xEA                  /* ljmp 0x08:long_entry */
    .long long_entry
    .word 0x08

    .code64
long_entry:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    xor eax, eax
    mov fs, ax
    mov gs, ax
    lea rsp, [rip + KSTACK + {kstack}]
    /* TSS.rsp0 = top of the kernel stack (interrupts and the gate from ring 3). */
    mov qword ptr [rip + TSS + 4], rsp
    /* 64-bit TSS descriptor in GDT[5..7]: limit 103, type 0x89, base split. */
    lea rax, [rip + TSS]
    mov rdx, rax
    shl rdx, 16
    mov rcx, 0xFFFFFF0000
    and rdx, rcx
    mov rcx, rax
    shr rcx, 24
    and ecx, 0xFF
    shl rcx, 56
    or rdx, rcx
    mov rcx, 0x0000890000002068   /* limit = 104 + 8193 - 1 */
    or rdx, rcx
    mov qword ptr [rip + GDT + 40], rdx
    shr rax, 32
    mov qword ptr [rip + GDT + 48], rax
    /* The IDT is static data (built by the assembler from the fixed stub addresses). */
    lidt [rip + IDT_PTR]
    mov ax, 0x28
    ltr ax
    /* Ring 3: user_main(start_info) on the user stack, IOPL 3, interrupts off. */
    mov edi, dword ptr [rip + START_INFO]
    lea rsi, [rip + USTACK + {ustack}]
    lea rax, [rip + user_main]
    jmp to_user

    /* to_user: rax = entry, rsi = stack top, rdi = argument. */
to_user:
    sub rsi, 8
    push 0x1b
    push rsi
    push 0x3002
    push 0x23
    push rax
    iretq

    .section .data.idtptr, "aw"
    .balign 8
IDT_PTR:
    .word IDT_END - IDT - 1
    .quad IDT

    /* 32 interrupt gates (DPL 0, selector 0x08) for the exception stubs, which the linker
       script places at ISR_BASE, 16 bytes apart: the offsets are absolute expressions the
       assembler can split, so no ring-0 code fills the IDT at boot. */
    .set ISR_BASE, 0x101000
    .balign 16
IDT:
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .word (ISR_BASE + \n * 16) & 0xFFFF
    .word 0x08
    .byte 0, 0x8E
    .word (ISR_BASE + \n * 16) >> 16
    .long 0
    .long 0
    .endr
    /* Vectors 32 .. NOEOI_VECTOR-1 not present; NOEOI_VECTOR (0xf2): counted, not EOI'd
       (ISR_BASE + 33 * 16); UPCALL_VECTOR: the Xen upcall. */
    .fill (0xf2 - 32) * 16, 1, 0
    .word (ISR_BASE + 33 * 16) & 0xFFFF
    .word 0x08
    .byte 0, 0x8E
    .word (ISR_BASE + 33 * 16) >> 16
    .long 0
    .long 0
    .word (ISR_BASE + 32 * 16) & 0xFFFF
    .word 0x08
    .byte 0, 0x8E
    .word (ISR_BASE + 32 * 16) >> 16
    .long 0
    .long 0
IDT_END:

    /* ---- Application processors (SMP case) ----
       ap_tramp_start..ap_tramp_end is copied by ring 3 to AP_TRAMPOLINE (SIPI vector
       AP_TRAMPOLINE >> 12); the AP starts there in real mode with CS = that >> 4, IP 0. */
    .global ap_tramp_start
    .global ap_tramp_end
    .code16
ap_tramp_start:
    cli
    mov ax, cs
    mov ds, ax
    .byte 0x66, 0x0f, 0x01, 0x16    /* o32 lgdt [disp16] */
    .word ap_gdtptr - ap_tramp_start
    mov eax, cr0
    or al, 1
    mov cr0, eax
    .byte 0x66, 0xEA                /* o32 ljmp 0x38:ap_start32 */
    .long ap_start32
    .word 0x38
    .balign 4
ap_gdtptr:
    .word GDT_END - GDT - 1
    .long GDT
ap_tramp_end:

    .code32
ap_start32:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov eax, cr4
    or eax, 0x620
    mov cr4, eax
    mov eax, offset PML4
    mov cr3, eax
    mov ecx, 0xC0000080
    rdmsr
    or eax, 0x100
    wrmsr
    mov eax, cr0
    and eax, 0xFFFFFFFB
    or eax, 0x80000023
    mov cr0, eax
    .byte 0xEA
    .long ap_long
    .word 0x08

    .code64
ap_long:
    /* Initial APIC ID (CPUID.1:EBX[31:24]) picks this AP's stack and mailbox slot. */
    mov eax, 1
    xor ecx, ecx
    cpuid
    shr ebx, 24
    and ebx, 15
    mov r8d, ebx
    lea rsp, [rip + APSTACK]
    lea eax, [ebx + 1]
    shl eax, 10
    add rsp, rax
    lidt [rip + IDT_PTR]
    mov rax, [rip + AP_ENTRY]
    test rax, rax
    jz 34f
    jmp rax
34:
    /* Report VP_INDEX and the APIC ID in slot (APIC ID), then stop. */
    mov ecx, 0x40000002
    rdmsr
    lea rdi, [rip + AP_MAILBOX]
    mov ecx, r8d
    shl ecx, 4
    add rdi, rcx
    mov dword ptr [rdi], eax
    mov dword ptr [rdi + 4], r8d
    /* TIME_REF_COUNT (low half) in word 3, before the done flag, on Hyper-V ("Hv#1") with
       AccessPartitionReferenceCounter; hv_time_ref_count_smp orders it against the BSP. */
    mov eax, 0x40000001
    cpuid
    cmp eax, 0x31237648
    jne 34f
    mov eax, 0x40000003
    cpuid
    test al, 2
    jz 34f
    mov ecx, 0x40000020
    rdmsr
    mov dword ptr [rdi + 12], eax
34:
    mov dword ptr [rdi + 8], 1
33:
    cli
    hlt
    jmp 33b

    /* Exception stubs, one per vector at ISR_BASE + 16 * vector (linker.ld pins the
       section): push a dummy error code where the CPU pushes none, then the vector. */
    .section .text.isr, "ax"
    .global isr_0
    .global isr_31
    .balign 16
isr_0:
    push 0
    push 0
    jmp isr_common
    .balign 16
isr_1:
    push 0
    push 1
    jmp isr_common
    .balign 16
isr_2:
    push 0
    push 2
    jmp isr_common
    .balign 16
isr_3:
    push 0
    push 3
    jmp isr_common
    .balign 16
isr_4:
    push 0
    push 4
    jmp isr_common
    .balign 16
isr_5:
    push 0
    push 5
    jmp isr_common
    .balign 16
isr_6:
    jmp isr_ud
    .balign 16
isr_7:
    push 0
    push 7
    jmp isr_common
    .balign 16
isr_8:
    push 8
    jmp isr_common
    .balign 16
isr_9:
    push 0
    push 9
    jmp isr_common
    .balign 16
isr_10:
    push 10
    jmp isr_common
    .balign 16
isr_11:
    push 11
    jmp isr_common
    .balign 16
isr_12:
    push 12
    jmp isr_common
    .balign 16
isr_13:
    push 13
    jmp isr_common
    .balign 16
isr_14:
    push 14
    jmp isr_common
    .balign 16
isr_15:
    push 0
    push 15
    jmp isr_common
    .balign 16
isr_16:
    push 0
    push 16
    jmp isr_common
    .balign 16
isr_17:
    push 17
    jmp isr_common
    .balign 16
isr_18:
    push 0
    push 18
    jmp isr_common
    .balign 16
isr_19:
    push 0
    push 19
    jmp isr_common
    .balign 16
isr_20:
    push 0
    push 20
    jmp isr_common
    .balign 16
isr_21:
    push 21
    jmp isr_common
    .balign 16
isr_22:
    push 0
    push 22
    jmp isr_common
    .balign 16
isr_23:
    push 0
    push 23
    jmp isr_common
    .balign 16
isr_24:
    push 0
    push 24
    jmp isr_common
    .balign 16
isr_25:
    push 0
    push 25
    jmp isr_common
    .balign 16
isr_26:
    push 0
    push 26
    jmp isr_common
    .balign 16
isr_27:
    push 0
    push 27
    jmp isr_common
    .balign 16
isr_28:
    push 0
    push 28
    jmp isr_common
    .balign 16
isr_29:
    push 29
    jmp isr_common
    .balign 16
isr_30:
    push 30
    jmp isr_common
    .balign 16
isr_31:
    push 0
    push 31
    jmp isr_common
    .balign 16
    /* The Xen event upcall (vector UPCALL_VECTOR, at ISR_BASE + 32 * 16): count it, note
       the TSC, EOI the local APIC. */
isr_upcall:
    jmp upcall_body
    .balign 16
    /* NOEOI_VECTOR (at ISR_BASE + 33 * 16): count it and leave it in service, so that a
       case can end it with an EOI of its own (Hyper-V's EOI MSR). */
isr_noeoi:
    add qword ptr [rip + NOEOI_TAKEN], 1
    iretq

    .text
upcall_body:
    push rax
    push rdx
    rdtsc
    shl rdx, 32
    or rax, rdx
    mov qword ptr [rip + UPCALL_TSC], rax
    add qword ptr [rip + UPCALLS], 1
    mov eax, 0xfee000b0
    mov dword ptr [rax], 0
    pop rdx
    pop rax
    iretq
    /* #UD: the gate's ud2 (recognised by its address) or a real #UD. */
isr_ud:
    push rax
    lea rax, [rip + gate_stub]
    cmp rax, qword ptr [rsp + 8]
    pop rax
    je gate_entry
    push 0
    push 6
    jmp isr_common

isr_common:
    /* [rsp] vector, +8 error, +16 rip, +24 cs, +32 rflags, +40 rsp, +48 ss */
    push rax
    mov rax, qword ptr [rsp + 32]
    and eax, 3
    cmp eax, 3
    mov eax, 1
    je 23f
    mov eax, 2
23:
    cmp qword ptr [rip + TRAP], rax
    jne 24f
    mov qword ptr [rip + TRAP], 0
    mov rax, qword ptr [rsp + 8]
    mov qword ptr [rip + TRAP + 24], rax
    mov rax, qword ptr [rsp + 16]
    mov qword ptr [rip + TRAP + 32], rax
    mov rax, qword ptr [rsp + 24]
    mov qword ptr [rip + TRAP + 40], rax
    mov rax, qword ptr [rip + TRAP + 8]
    mov qword ptr [rsp + 24], rax
    mov rax, qword ptr [rip + TRAP + 16]
    mov qword ptr [rsp + 48], rax
    pop rax
    add rsp, 16
    iretq
24:
    /* Unexpected: save vector, error, rip, cs, rsp and report from ring 3 (the reporter
       formats with the full compiler output, SSE included, which the ring-0 emulator
       may not handle). A second unexpected fault ends the VM from here. */
    cmp qword ptr [rip + CRASH + 40], 0
    jne 32f
    mov qword ptr [rip + CRASH + 40], 1
    mov rax, qword ptr [rsp + 8]
    mov qword ptr [rip + CRASH], rax
    mov rax, qword ptr [rsp + 16]
    mov qword ptr [rip + CRASH + 8], rax
    mov rax, qword ptr [rsp + 24]
    mov qword ptr [rip + CRASH + 16], rax
    mov rax, qword ptr [rsp + 32]
    mov qword ptr [rip + CRASH + 24], rax
    mov rax, qword ptr [rsp + 48]
    mov qword ptr [rip + CRASH + 32], rax
    lea rsi, [rip + CSTACK + {cstack}]
    lea rax, [rip + user_crash]
    jmp to_user
32:
    mov dx, 0xf4
    mov eax, 3
    out dx, eax
25:
    cli
    hlt
    jmp 25b

    /* The gate: ring 3 calls gate_stub, whose ud2 lands here through #UD (on the nested
       KVM of the CI machines `int n` and `syscall` from ring 3 don't reach a ring-0
       handler; exceptions do). The iret frame is on the kernel stack; skip the ud2. */
gate_entry:
    add qword ptr [rsp], 2
    mov qword ptr [rip + GATE_FAULT], 0
    cmp rax, 0
    je gate_rdmsr
    cmp rax, 1
    je gate_wrmsr
    cmp rax, 2
    je gate_hv
    cmp rax, 3
    je gate_call
    cmp rax, 4
    je gate_cpuid
    cmp rax, 6
    je gate_wait_irq
    cmp rax, 9
    je 25b
    mov rax, -1
    jmp gate_ret
gate_wait_irq:
    /* Wait for an interrupt (sti's shadow covers the hlt, so none is missed). */
    sti
    hlt
    cli
    jmp gate_ret
gate_cpuid:
    push rbx
    mov eax, edi
    mov ecx, esi
    cpuid
    mov edi, ebx
    mov esi, ecx
    pop rbx
    jmp gate_ret
gate_rdmsr:
    mov ecx, edi
    lea rax, [rip + 26f]
    mov qword ptr [rip + TRAP + 8], rax
    mov qword ptr [rip + TRAP + 16], rsp
    mov qword ptr [rip + TRAP], 2
    rdmsr
    mov qword ptr [rip + TRAP], 0
    shl rdx, 32
    or rax, rdx
    jmp gate_ret
gate_wrmsr:
    mov ecx, edi
    mov eax, esi
    mov rdx, rsi
    shr rdx, 32
    lea r11, [rip + 26f]
    mov qword ptr [rip + TRAP + 8], r11
    mov qword ptr [rip + TRAP + 16], rsp
    mov qword ptr [rip + TRAP], 2
    wrmsr
    mov qword ptr [rip + TRAP], 0
    xor eax, eax
    jmp gate_ret
gate_hv:
    /* Hyper-V: input RCX, input GPA RDX, output GPA R8. */
    mov rcx, rdi
    mov r8, rdx
    mov rdx, rsi
gate_call:
    lea rax, [rip + 26f]
    mov qword ptr [rip + TRAP + 8], rax
    mov qword ptr [rip + TRAP + 16], rsp
    mov qword ptr [rip + TRAP], 2
    call r9
    mov qword ptr [rip + TRAP], 0
    jmp gate_ret
26:
    mov rax, qword ptr [rip + TRAP + 24]
    or rax, 0x100
    mov qword ptr [rip + GATE_FAULT], rax
    mov rax, -1
gate_ret:
    iretq

    .global gate_stub
gate_stub:
    ud2
    ret

    /* user_probe_call(target, rcx, rdx, r8) -> rax, from ring 3: calls target with a trap
       armed for CPL 3; TRAP.user_hit = 1 when a fault resumed here instead. */
    .global user_probe_call
user_probe_call:
    push rbx
    push rbp
    push r12
    push r13
    push r14
    push r15
    mov qword ptr [rip + TRAP + 48], 0
    lea rax, [rip + 28f]
    mov qword ptr [rip + TRAP + 8], rax
    mov qword ptr [rip + TRAP + 16], rsp
    mov qword ptr [rip + TRAP], 1
    mov r8, rcx
    mov rcx, rsi
    mov r11, rdi
    call r11
    mov qword ptr [rip + TRAP], 0
    jmp 29f
28:
    mov qword ptr [rip + TRAP + 48], 1
    mov rax, -1
29:
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbp
    pop rbx
    ret

    .text
"#,
    kstack = const KSTACK_SIZE,
    ustack = const USTACK_SIZE,
    cstack = const CSTACK_SIZE,
);

extern "C" {
    pub static ap_tramp_start: u8;
    pub static ap_tramp_end: u8;
    /// `ud2; ret`: the gate (see the module docs); called only from inline asm.
    pub fn gate_stub();
    pub fn user_probe_call(target: u64, rcx: u64, rdx: u64, r8: u64) -> u64;
}
