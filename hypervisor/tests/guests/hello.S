# Prints a greeting and the command line from hvm_start_info, checks the PVH start info
# (magic, memory map with at least 3 entries), then exits with status 0x2a.
        .include "boot.inc"
main:
        lea hello(%rip), %rsi
        call puts
        mov start_info(%rip), %rbx
        mov (%rbx), %eax
        check %rax, 0x336ec578, 0x11
        mov 48(%rbx), %eax              # memmap_entries
        cmp $3, %eax
        jb memfail
        lea cmdmsg(%rip), %rsi
        call puts
        mov 24(%rbx), %rsi              # cmdline_paddr
        call puts
        mov $'\n', %al
        mov $COM1, %dx
        out %al, %dx
        mov $0x2a, %eax
        ret
memfail:
        mov $0x12, %eax
        ret
        .section .rodata
hello:  .asciz "hello from the PVH guest\n"
cmdmsg: .asciz "cmdline="
