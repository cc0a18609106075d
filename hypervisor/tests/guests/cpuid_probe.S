# CPUID as the guest sees it, in ring 0 and in ring 3 (issue 11: why a stock kernel saw the
# host's XSAVE/AVX-512 bits). Prints, for each ring, "r<ring> <leaf>.<sub> <reg>=<hex>" lines
# for the leaves the VMM masks: 1 ECX, 7.0 EBX/ECX, 0xD.0 EAX, 0xD.1 EAX, 0x40000000 EBX.
# Ring 3 cannot do port I/O here (the nested host drops IOPL), so it stores its values and
# returns to ring 0 through #UD (ud2), which prints them. Status 0.
        .include "boot.inc"

# probe tag, leaf, subleaf, reg: print "<tag>=<hex of reg after cpuid(leaf, subleaf)>".
.macro probe tag, leaf, sub, reg
        lea 8f(%rip), %rsi
        call puts
        push %rbx
        mov $\leaf, %eax
        mov $\sub, %ecx
        cpuid
        mov \reg, %eax
        pop %rbx
        call puthex
        .section .rodata
8:      .asciz "\tag="
        .text
.endm

.macro all ring
        probe "\ring 1.0 ecx", 1, 0, %ecx
        probe "\ring 7.0 ebx", 7, 0, %ebx
        probe "\ring 7.0 ecx", 7, 0, %ecx
        probe "\ring d.0 eax", 0xd, 0, %eax
        probe "\ring d.1 eax", 0xd, 1, %eax
        probe "\ring 40000000.0 ebx", 0x40000000, 0, %ebx
.endm

# store n, leaf, sub, reg: ring 3 keeps the value in r3vals[n].
.macro store n, leaf, sub, reg
        mov $\leaf, %eax
        mov $\sub, %ecx
        cpuid
        mov \reg, %eax
        mov %rax, r3vals+\n*8(%rip)
.endm

# show n, tag: ring 0 prints "<tag>=<r3vals[n]>".
.macro show n, tag
        lea 8f(%rip), %rsi
        call puts
        mov r3vals+\n*8(%rip), %rax
        call puthex
        .section .rodata
8:      .asciz "\tag="
        .text
.endm

        .text
main:
        all r0
        set_gate 6, back
        load_idt_tss
        push $0x23
        lea ustack_top(%rip), %rax
        push %rax
        push $0x2
        push $0x1b
        lea ring3(%rip), %rax
        push %rax
        iretq
ring3:
        store 0, 1, 0, %ecx
        store 1, 7, 0, %ebx
        store 2, 7, 0, %ecx
        store 3, 0xd, 0, %eax
        store 4, 0xd, 1, %eax
        store 5, 0x40000000, 0, %ebx
        ud2
back:   # #UD from ring 3: print what it saw, end with status 0.
        lea kstack_top(%rip), %rsp
        show 0, "r3 1.0 ecx"
        show 1, "r3 7.0 ebx"
        show 2, "r3 7.0 ecx"
        show 3, "r3 d.0 eax"
        show 4, "r3 d.1 eax"
        show 5, "r3 40000000.0 ebx"
        xor %eax, %eax
        out %eax, $0xf4
1:      hlt
        jmp 1b

        .section .data
r3vals: .fill 8, 8, 0
        .text
