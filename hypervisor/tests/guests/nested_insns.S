# The instructions hypervisor::platform emulates after a KVM emulation failure on the
# nested host, run in ring 0 (issue 11): int3 (-> #BP handler), fwait, stac/clac (RFLAGS.AC),
# ldmxcsr/stmxcsr (memory operands), movd xmm15, ecx / movd eax, xmm15 / movq xmm1, r9 /
# movq rax, xmm1. Each result is checked; status 0 = all right, else the failing check's
# number. On a hardware-assisted host they simply run.
        .include "boot.inc"

        .text
main:
        set_gate 3, bp
        load_idt_tss
        mov %cr4, %rax                  # OSFXSR | OSXMMEXCPT: SSE allowed
        or $0x600, %rax
        mov %rax, %cr4
        # int3: the handler counts, returns past it.
        int3
        mov bpcount(%rip), %rax
        check %rax, 1, 0x21
        # fwait: nothing pending, no effect.
        fwait
        # stac / clac: RFLAGS.AC (bit 18) set, then clear. (Only if CPUID.7.0:EBX.SMAP.)
        mov $7, %eax
        xor %ecx, %ecx
        cpuid
        bt $20, %ebx
        jnc 1f
        stac
        pushf
        pop %rax
        shr $18, %rax
        and $1, %rax
        check %rax, 1, 0x22
        clac
        pushf
        pop %rax
        shr $18, %rax
        and $1, %rax
        check %rax, 0, 0x23
1:
        # movd xmm15, ecx (66 44 0f 6e f9) and back to eax (66 44 0f 7e f8).
        mov $0x89abcdef, %ecx
        movd %ecx, %xmm15
        xor %eax, %eax
        movd %xmm15, %eax
        check %rax, 0x89abcdef, 0x25
        # movq xmm1, r9 / movq rax, xmm1.
        movabs $0x0123456789abcdef, %r9
        movq %r9, %xmm1
        xor %eax, %eax
        movq %xmm1, %rax
        check %rax, 0x0123456789abcdef, 0x26
        # Last, so that its known flakiness here (see tests/nested_insns.rs) hides no
        # other check.
        # ldmxcsr / stmxcsr through memory: 0x1f80 | RC=11 (0x6000) -> read back.
        movl $0x7f80, mx_in(%rip)
        lea mx_in(%rip), %rbx
        ldmxcsr (%rbx)
        stmxcsr mx_out(%rip)
        mov mx_out(%rip), %eax
        check %rax, 0x7f80, 0x24
        xor %eax, %eax
        ret

bp:     incq bpcount(%rip)
        iretq

        .section .data
bpcount: .quad 0
mx_in:  .long 0
mx_out: .long 0
