# Ends badly, chosen by the first command-line byte:
#  't' triple fault (page fault with an empty IDT), 'h' cli; hlt, 's' spin forever,
#  'r' spin forever in ring 3,
#  'e' lock cmpxchg16b in ring 0 (an emulation failure where ring 0 is emulated; runs
#  natively and returns 0x79 on hardware-assisted KVM).
        .include "boot.inc"
main:
        mov start_info(%rip), %rbx
        mov 24(%rbx), %rsi
        movzbl (%rsi), %eax
        cmp $'t', %al
        je triple
        cmp $'h', %al
        je halt
        cmp $'s', %al
        je spin
        cmp $'e', %al
        je emul
        cmp $'r', %al
        je ring3spin
        mov $0x77, %eax
        ret
triple:
        lidt null_idt(%rip)
        movabs $0x4000000000, %rax      # not mapped: #PF -> no IDT -> #DF -> shutdown
        mov (%rax), %rax
        ret
emul:
        lea buf16(%rip), %rdi           # ring-0 cmpxchg16b: KVM's emulator lacks it
        lock cmpxchg16b (%rdi)
        mov $0x79, %eax
        ret
halt:
        cli
        hlt
        mov $0x78, %eax
        ret
spin:
        jmp spin
ring3spin:                              # spin in ring 3 (native speed here)
        push $0x23
        lea ustack_top(%rip), %rax
        push %rax
        push $0x2
        push $0x1b
        lea 1f(%rip), %rax
        push %rax
        iretq
1:      jmp 1b
        .section .data
null_idt: .word 0
        .quad 0
        .p2align 4
buf16:  .quad 0, 0
