# Exercises the Xen adapter; finds the Xen leaves at 0x40000000 or 0x40000100 (as Linux
# does), writes the page address to the advertised MSR, then makes calls. Guest buffers are
# passed as high-half virtual addresses (0xffff800000000000 + physical) so the VMM must walk
# the page tables. Ends with SCHEDOP_shutdown(poweroff), or (command line 'c') crash.
# A failed check exits with its number.
        .include "boot.inc"

.macro xen nr
        lea xenpage+\nr*32(%rip), %rax
        call *%rax
.endm

main:
        mov start_info(%rip), %rbx
        mov 24(%rbx), %rsi
        movzbl (%rsi), %r12d
        mov $0x40000000, %r13d
1:      mov %r13d, %eax
        cpuid
        cmp $0x566e6558, %ebx           # "XenV"
        je 2f
        add $0x100, %r13d
        cmp $0x40000200, %r13d
        jb 1b
        mov $1, %eax
        jmp fail
2:      lea 2(%r13), %eax
        cpuid                           # ebx = hypercall MSR
        mov %ebx, %ecx
        lea xenpage(%rip), %rax
        mov %rax, %rdx
        shr $32, %rdx
        wrmsr
        # 3: xen_version(XENVER_version)
        xor %edi, %edi
        xen 17
        check %rax, 0x40010, 3
        # 4: XENVER_extraversion into a high-half buffer
        lea buf(%rip), %rsi
        movabs $HIGH, %rax
        add %rax, %rsi
        mov $1, %edi
        xen 17
        check %rax, 0, 4
        movzbl buf(%rip), %eax
        check %rax, '.', 5
        # 6: console_io(CONSOLEIO_write) through the page tables
        mov $0, %edi
        mov $msg_end - msg, %esi
        lea msg(%rip), %rdx
        movabs $HIGH, %rax
        add %rax, %rdx
        xen 18
        check %rax, 0, 6
        # 7: sched_op(SCHEDOP_yield)
        xor %edi, %edi
        xen 29
        check %rax, 0, 7
        # 8: an untranslated hypercall -> -ENOSYS
        xor %edi, %edi
        xen 1
        check %rax, -38, 8
        # 9: console_io with an unmapped buffer -> -EFAULT
        xor %edi, %edi
        mov $4, %esi
        movabs $0x0000700000000000, %rdx
        xen 18
        check %rax, -14, 9
        # 10: hvm_op set/get param 2 (HVM_PARAM_STORE_EVTCHN: one a guest may set)
        movw $0x7ff0, prm(%rip)
        movl $2, prm+4(%rip)
        movq $0x1234, prm+8(%rip)
        xor %edi, %edi
        lea prm(%rip), %rsi
        xen 34
        check %rax, 0, 10
        movq $0, prm+8(%rip)
        mov $1, %edi
        lea prm(%rip), %rsi
        xen 34
        mov prm+8(%rip), %rax
        check %rax, 0x1234, 11
        # 12: memory_op(XENMEM_maximum_ram_page) > 0
        mov $2, %edi
        xen 12
        test %rax, %rax
        jg 3f
        mov $12, %eax
        jmp fail
3:      # shutdown
        movl $0, reason(%rip)
        cmp $'c', %r12b
        jne 4f
        movl $3, reason(%rip)
4:      mov $2, %edi
        lea reason(%rip), %rsi
        xen 29
        mov $13, %eax                   # not reached
        jmp fail

        .section .rodata
msg:    .ascii "xen console_io says hi\n"
msg_end:
        .section .data
        .p2align 3
buf:    .skip 16
prm:    .skip 16
reason: .long 0
