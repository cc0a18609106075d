# Random code at the PVH entry: 32-bit protected mode, paging off, no IDT. Jumps straight to
# PVH module 0 (tests/chaos.rs fills it with random bytes).
        .section .note.Xen, "a"
        .p2align 2
        .long 4, 4, 18
        .asciz "Xen"
        .long _start
        .section .text.boot, "ax"
        .code32
        .globl _start
_start:
        cmpl $0, 12(%ebx)               # nr_modules
        je 1f
        mov 16(%ebx), %eax              # modlist_paddr (low half)
        mov (%eax), %eax                # module 0 paddr
        xor %ecx, %ecx
        xor %edx, %edx
        jmp *%eax
1:      mov $0xbad, %eax
        out %eax, $0xf4
        hlt
