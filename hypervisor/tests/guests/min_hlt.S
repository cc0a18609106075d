# The smallest PVH guest: cli; hlt at the 32-bit entry (the VMM ends it as "halted with
# interrupts disabled").
        .section .note.Xen, "a"
        .p2align 2
        .long 4, 4, 18
        .asciz "Xen"
        .long _start
        .section .text.boot, "ax"
        .code32
        .globl _start
_start:
        cli
        hlt
