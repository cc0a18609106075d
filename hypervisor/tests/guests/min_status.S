# The smallest PVH guest that ends with a status: out 0xf4 at the 32-bit entry.
        .section .note.Xen, "a"
        .p2align 2
        .long 4, 4, 18
        .asciz "Xen"
        .long _start
        .section .text.boot, "ax"
        .code32
        .globl _start
_start:
        xor %eax, %eax
        out %eax, $0xf4
        hlt
