# Payload of a synthetic bzImage (protected-mode part, loaded at 1 MiB). The 64-bit entry
# at +0x200 checks the Linux 64-bit boot protocol state (RSI = boot_params with HdrS,
# type_of_loader set), prints the command line and the initrd's first 8 bytes, exits 0x5a.
        .section .text.boot, "ax"
        .code64
        .globl _start
_start:
        hlt                             # 32-bit entry: not used
        .org 0x200
entry64:
        cmp $0x7000, %rsi
        jne bad
        cmpl $0x53726448, 0x202(%rsi)
        jne bad
        cmpb $0xff, 0x210(%rsi)         # type_of_loader
        jne bad
        mov %rsi, %rbx
        lea msg(%rip), %rsi
        call puts
        mov 0x228(%rbx), %esi           # cmd_line_ptr
        call puts
        mov $'\n', %al
        mov $0x3f8, %dx
        out %al, %dx
        mov 0x21c(%rbx), %ecx           # ramdisk_size
        test %ecx, %ecx
        jz 1f
        lea initrd(%rip), %rsi
        call puts
        mov 0x218(%rbx), %esi           # ramdisk_image
        mov $8, %ecx
        mov $0x3f8, %dx
2:      lodsb
        out %al, %dx
        dec %ecx
        jnz 2b
        mov $'\n', %al
        out %al, %dx
1:      mov $0x5a, %eax
        out %eax, $0xf4
bad:
        mov $0xbad, %eax
        out %eax, $0xf4
puts:
        mov $0x3f8, %dx
1:      lodsb
        test %al, %al
        jz 2f
        out %al, %dx
        jmp 1b
2:      ret
msg:    .asciz "bzImage entry64 cmdline="
initrd: .asciz "initrd="
