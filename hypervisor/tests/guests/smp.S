# SMP: the BSP starts vCPU 1 with INIT + SIPI through the x2APIC (the AP goes real mode ->
# protected mode -> long mode through a trampoline copied to 0x8000), the AP reads its
# Hyper-V VP_INDEX and halts. The BSP checks both VP indexes and exits 0x2a; with command
# line 'h' the BSP then halts with interrupts off too (every vCPU halted: the VM must end).
        .include "boot.inc"
        .set TRAMP, 0x8000
main:
        mov start_info(%rip), %rbx
        mov 24(%rbx), %rsi
        movzbl (%rsi), %r12d
        # Hyper-V: the guest identifies itself (not needed for VP_INDEX, but realistic).
        mov $0x40000000, %ecx
        mov $1, %eax
        mov $0x81000000, %edx
        wrmsr
        # Copy the trampoline below 1 MiB.
        lea tramp(%rip), %rsi
        mov $TRAMP, %edi
        mov $tramp_end - tramp, %ecx
        rep movsb
        # x2APIC on.
        mov $0x1b, %ecx
        rdmsr
        or $0xc00, %eax
        wrmsr
        # INIT, then SIPI (vector 0x08 -> 0x8000), to x2APIC ID 1.
        mov $0x830, %ecx
        mov $1, %edx
        mov $0x4500, %eax
        wrmsr
        mov $0x4608, %eax
        wrmsr
        # Wait for the AP (bounded).
        mov $2000000, %r13d
1:      cmpl $0, ap_count(%rip)
        jne 2f
        pause
        dec %r13d
        jnz 1b
        mov $1, %eax
        jmp fail
2:      mov $0x40000002, %ecx
        rdmsr
        check %rax, 0, 2
        mov ap_vp(%rip), %eax
        check %rax, 1, 3
        lea okmsg(%rip), %rsi
        call puts
        cmp $'h', %r12b
        jne 3f
        cli
        hlt
3:      mov $0x2a, %eax
        ret

ap64:
        mov $0x10, %ax
        mov %ax, %ds
        mov %ax, %es
        mov %ax, %ss
        lea kstack_top(%rip), %rsp
        mov $0x40000002, %ecx
        rdmsr
        mov %eax, ap_vp(%rip)
        lock incl ap_count(%rip)
1:      cli
        hlt
        jmp 1b

        .section .rodata
okmsg:  .asciz "AP started, VP indexes 0 and 1\n"

        .section .data
ap_count: .long 0
ap_vp:  .long 0xffffffff
        .include "ap_tramp.inc"
