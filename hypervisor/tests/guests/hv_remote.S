# Hyper-V calls aimed at another vCPU: the BSP enables the hypercall page, starts vCPU 1
# (which enables its LAPIC and halts with interrupts off, as in smp.S), then
#   2: HvCallFlushVirtualAddressSpace, memory input, ProcessorMask = VP 1
#   3: HvCallFlushVirtualAddressSpaceEx, memory input, HV_GENERIC_SET_ALL (VPs 0 and 1)
#   4: HvCallSendSyntheticClusterIpi, fast, vector 0x40 to VP 1
# each must return HV_STATUS_SUCCESS (the flushes only once VP 1 has been made to leave
# guest mode), spins a little so that VP 1 flushes before the VM ends, and exits 0x2a.
        .include "boot.inc"
        .set TRAMP, 0x8000
        .set IN, 0x3000                 # hypercall input (identity mapped)
.macro hv code, in, out
        movabs $\code, %rcx
        movabs $\in, %rdx
        movabs $\out, %r8
        lea hcpage(%rip), %rax
        call *%rax
.endm
main:
        # GUEST_OS_ID, then the hypercall page.
        mov $0x40000000, %ecx
        mov $1, %eax
        mov $0x81000000, %edx
        wrmsr
        lea hcpage(%rip), %rax
        or $1, %rax
        mov %rax, %rdx
        shr $32, %rdx
        mov $0x40000001, %ecx
        wrmsr
        # Start vCPU 1 (trampoline below 1 MiB, x2APIC INIT + SIPI).
        lea tramp(%rip), %rsi
        mov $TRAMP, %edi
        mov $tramp_end - tramp, %ecx
        rep movsb
        mov $0x1b, %ecx
        rdmsr
        or $0xc00, %eax
        wrmsr
        mov $0x830, %ecx
        mov $1, %edx
        mov $0x4500, %eax
        wrmsr
        mov $0x4608, %eax
        wrmsr
        mov $2000000, %r13d
1:      cmpl $0, ap_count(%rip)
        jne 2f
        pause
        dec %r13d
        jnz 1b
        mov $1, %eax
        jmp fail
2:      # 2: flush VP 1 (AddressSpace 0, Flags 0, ProcessorMask 0b10).
        movq $0, IN
        movq $0, IN + 8
        movq $2, IN + 16
        hv 0x2, IN, 0
        check %rax, 0, 2
        # 3: Ex flush of every VP (Format 1 = all, ValidBankMask 0).
        movq $0, IN + 8
        movq $1, IN + 16
        movq $0, IN + 24
        hv 0x13, IN, 0
        check %rax, 0, 3
        # 4: fast IPI, vector 0x40, ProcessorMask 0b10.
        hv 0x1000b, 0x40, 2
        check %rax, 0, 4
        # Let vCPU 1 re-enter (and flush) before the VM ends.
        mov $20000, %r13d
3:      pause
        dec %r13d
        jnz 3b
        mov $0x2a, %eax
        ret

ap64:
        mov $0x10, %ax
        mov %ax, %ds
        mov %ax, %es
        mov %ax, %ss
        lea kstack_top(%rip), %rsp
        # x2APIC on and software-enabled (SVR), so that a fixed IPI is accepted.
        mov $0x1b, %ecx
        rdmsr
        or $0xc00, %eax
        wrmsr
        mov $0x80f, %ecx
        mov $0x1ff, %eax
        xor %edx, %edx
        wrmsr
        lock incl ap_count(%rip)
1:      cli
        hlt
        jmp 1b

        .section .data
ap_count: .long 0
        .include "ap_tramp.inc"
