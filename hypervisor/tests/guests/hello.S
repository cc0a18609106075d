# Prints a greeting and the command line from hvm_start_info, checks the PVH start info
# (magic, memory map with at least 3 entries) and that an unclaimed port and unclaimed MMIO
# read as all-ones, then exits with status 0x2a.
        .include "boot.inc"
main:
        lea hello(%rip), %rsi
        call puts
        # A 16-bit OUT to COM1 is two byte writes, to 0x3f8 (THR) and 0x3f9 (IER): prints
        # "wide:W" (not "wide:W!"), then IER is cleared again.
        lea widemsg(%rip), %rsi
        call puts
        mov $COM1, %dx
        mov $0x2157, %ax                # '!' << 8 | 'W'
        out %ax, %dx
        inc %dx
        xor %al, %al
        out %al, %dx
        dec %dx
        mov $'\n', %al
        out %al, %dx
        mov start_info(%rip), %rbx
        mov (%rbx), %eax
        check %rax, 0x336ec578, 0x11
        mov 48(%rbx), %eax              # memmap_entries
        cmp $3, %eax
        jb memfail
        # Unclaimed port and MMIO (below 1 GiB, above RAM) read as all-ones.
        mov $0x99, %dx
        inb %dx, %al
        movzbl %al, %eax
        check %rax, 0xff, 0x13
        mov $0x30000000, %ecx
        mov (%rcx), %eax
        check %rax, 0xffffffff, 0x14
        movl $0x1234, (%rcx)
        lea cmdmsg(%rip), %rsi
        call puts
        mov 24(%rbx), %rsi              # cmdline_paddr
        call puts
        mov $'\n', %al
        mov $COM1, %dx
        out %al, %dx
        # An initrd arrives as PVH module 0: print its first 8 bytes.
        cmpl $0, 12(%rbx)               # nr_modules
        je 1f
        lea modmsg(%rip), %rsi
        call puts
        mov 16(%rbx), %rsi              # modlist_paddr
        mov (%rsi), %rsi                # hvm_modlist_entry.paddr
        mov $8, %ecx
        mov $COM1, %dx
2:      lodsb
        out %al, %dx
        dec %ecx
        jnz 2b
        mov $'\n', %al
        out %al, %dx
1:      mov $0x2a, %eax
        ret
memfail:
        mov $0x12, %eax
        ret
        .section .rodata
hello:  .asciz "hello from the PVH guest\n"
cmdmsg: .asciz "cmdline="
modmsg: .asciz "module0="
widemsg: .asciz "wide:"
