# Does a ring-3 `syscall` reach the ring-0 handler at LSTAR? (issue 11: Debian's init died
# with "segfault at <entry_SYSCALL_64> ip <entry_SYSCALL_64>": RIP = LSTAR but still CPL 3.)
# Sets EFER.SCE, STAR (kernel CS 0x08, user base 0x10 -> CS 0x23 / SS 0x1b), LSTAR =
# sys_entry, SFMASK = IF; drops to ring 3 and runs `syscall`.
# Outcomes, printed by ring 0: "syscall: reached ring 0, rcx=<return address>" (status 0);
# "syscall: at LSTAR but CPL 3, cs=" (status 4: the handler ran with the user CS, so it
# leaves through ud2, whose #UD does reach ring 0); or an exception taken from the syscall
# itself (#PF / #UD / #GP: status 1 / 2 / 3, with CS, RIP and CR2).
        .include "boot.inc"

        .text
main:
        set_gate 14, pf
        set_gate 6, ud
        set_gate 13, gp
        load_idt_tss
        mov $0xc0000080, %ecx           # EFER.SCE
        rdmsr
        or $1, %eax
        wrmsr
        mov $0xc0000081, %ecx           # STAR: sysret base 0x10 (user CS 0x20|3, SS 0x18|3)
        xor %eax, %eax
        mov $0x00100008, %edx
        wrmsr
        mov $0xc0000082, %ecx           # LSTAR
        lea sys_entry(%rip), %rax
        mov %rax, %rdx
        shr $32, %rdx
        wrmsr
        mov $0xc0000084, %ecx           # SFMASK
        mov $0x200, %eax
        xor %edx, %edx
        wrmsr
        push $0x23
        lea ustack_top(%rip), %rax
        push %rax
        push $0x2
        push $0x1b
        lea ring3(%rip), %rax
        push %rax
        iretq
ring3:
        mov $0x1234, %eax
        syscall
        ud2                             # (sysret would come back here; we never sysret)

sys_entry:
        mov %cs, %r12
        test $3, %r12b
        jz 2f
        ud2                             # CPL 3 at LSTAR: #UD, handled in ring 0 (ud: r12)
2:      lea kstack_top(%rip), %rsp
        lea reached(%rip), %rsi
        call puts
        mov %rcx, %rax                  # return address saved by syscall
        call puthex
        xor %eax, %eax
        out %eax, $0xf4
1:      hlt
        jmp 1b

# Exception from the syscall: frame = [error code,] rip, cs, rflags, rsp, ss.
pf:     lea pfmsg(%rip), %rsi
        mov $1, %ebx
        pop %rax                        # error code
        jmp report
ud:     lea sys_entry(%rip), %rax
        cmp %rax, (%rsp)
        ja 3f                           # the ud2 in sys_entry (past its first byte)
        lea udmsg(%rip), %rsi
        mov $2, %ebx
        jmp report
3:      lea cpl3msg(%rip), %rsi
        call puts
        mov %r12, %rax
        call puthex
        mov $4, %eax
        out %eax, $0xf4
1:      hlt
        jmp 1b
gp:     lea gpmsg(%rip), %rsi
        mov $3, %ebx
        pop %rax
report: call puts
        mov 8(%rsp), %rax               # cs
        call puthex
        mov (%rsp), %rax                # rip
        call puthex
        mov %cr2, %rax
        call puthex
        mov %ebx, %eax
        out %eax, $0xf4
1:      hlt
        jmp 1b

        .section .rodata
reached: .asciz "syscall: reached ring 0, rcx="
pfmsg:  .asciz "syscall: #PF cs/rip/cr2=\n"
udmsg:  .asciz "syscall: #UD cs/rip/cr2=\n"
gpmsg:  .asciz "syscall: #GP cs/rip/cr2=\n"
cpl3msg: .asciz "syscall: at LSTAR but CPL 3, cs="
