# Random code at the PVH entry: 32-bit protected mode, paging off, no IDT. Jumps straight to
# PVH module 0 (tests/chaos.rs fills it with random bytes). The first byte of the command
# line may first enable hypercall pages (as the interface in use expects, so that no #GP
# triple-faults the guest before its random code runs): 'h' Hyper-V page at 0x10000,
# 'x' Xen page at 0x11000 through MSR 0x40000000, 'b' both (Xen's MSR at 0x40000200).
# The random code then finds the Hyper-V page in ebx and the Xen page in ebp.
        .set HV_PAGE, 0x10000
        .set XEN_PAGE, 0x11000
        .section .note.Xen, "a"
        .p2align 2
        .long 4, 4, 18
        .asciz "Xen"
        .long _start
        .section .text.boot, "ax"
        .code32
        .globl _start
_start:
        mov %ebx, %esi                  # hvm_start_info
        mov 24(%esi), %edi              # cmdline_paddr (low half)
        movzbl (%edi), %edi
        cmp $'h', %edi
        je 1f
        cmp $'b', %edi
        jne 2f
1:      mov $0x40000000, %ecx           # GUEST_OS_ID
        mov $1, %eax
        mov $0x81000000, %edx
        wrmsr
        mov $0x40000001, %ecx           # HYPERCALL: enable at HV_PAGE
        mov $HV_PAGE + 1, %eax
        xor %edx, %edx
        wrmsr
2:      mov $0x40000000, %ecx
        cmp $'x', %edi
        je 3f
        mov $0x40000200, %ecx
        cmp $'b', %edi
        jne 4f
3:      mov $XEN_PAGE, %eax
        xor %edx, %edx
        wrmsr
4:      cmpl $0, 12(%esi)               # nr_modules
        je 5f
        mov 16(%esi), %eax              # modlist_paddr (low half)
        mov (%eax), %eax                # module 0 paddr
        mov $HV_PAGE, %ebx
        mov $XEN_PAGE, %ebp
        xor %ecx, %ecx
        xor %edx, %edx
        jmp *%eax
5:      mov $0xbad, %eax
        out %eax, $0xf4
        hlt
