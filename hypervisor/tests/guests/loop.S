# Benchmark loops, 20000 iterations chosen by the first command-line byte:
#  'n' nothing, 'h' fast HvCallNotifyLongSpinWait through the hypercall page,
#  'x' Xen sched_op(SCHEDOP_yield) through the Xen page (needs --interface both/xen),
#  'p' an OUT to an unclaimed port (the VMM's plain port-I/O exit),
#  'q' a call to code like the hypercall page's (OUT, ret) but with unclaimed port 0x80,
#      so the guest runs the `ret` itself (for a hypercall the VMM does the return).
#  'i' interleaved, for ratios that machine noise does not swamp: ROUNDS rounds of three
#      timed blocks of M operations each, timed with TIME_REF_COUNT (100 ns units):
#      'f' kvm-floor's exit loop exactly (test; jz; out; dec; jmp) to unclaimed port 0x10,
#      'h' as 'h' above, 'x' as 'x' above (needs --interface both). Prints one line per
#      block, "f|h|x <ticks in hex>", then exits 0.
#  'j' interleaved like 'i' (blocks of M2), for the cost of the flush and IPI hypercalls
#      against the same floor loop and spin-wait call: 'f', 'h' as above, 'F' a memory-input
#      HvCallFlushVirtualAddressSpace of this vCPU (VP 0: the VMM flushes its guest TLB
#      before the next entry), 'I' a fast HvCallSendSyntheticClusterIpi to this vCPU (the
#      LAPIC is left software-disabled, so KVM_SIGNAL_MSI is made but nothing is taken),
#      'X' a fast HvCallSendSyntheticClusterIpiEx to HV_GENERIC_SET_ALL, whose
#      ValidBankMask is XMM0's low half (0 from reset: ring 0 here cannot run SSE moves):
#      'I' plus reading XMM0-5 (KVM_GET_FPU).
        .include "boot.inc"
        .set N, 20000
main:
        mov start_info(%rip), %rbx
        mov 24(%rbx), %rsi
        movzbl (%rsi), %r12d
        mov $N, %r13d
        cmp $'h', %r12b
        je hyperv
        cmp $'x', %r12b
        je xenloop
        cmp $'p', %r12b
        je pio
        cmp $'q', %r12b
        je pagecopy
        cmp $'i', %r12b
        je interleaved
        cmp $'j', %r12b
        je interleaved_calls
        xor %eax, %eax
        ret
# GUEST_OS_ID, then the Hyper-V hypercall page at hcpage.
enable_hv_page:
        mov $0x40000000, %ecx
        mov $1, %eax
        mov $0x81000000, %edx
        wrmsr
        mov $0x40000001, %ecx
        lea hcpage+1(%rip), %rax
        xor %edx, %edx
        wrmsr
        ret
# The Xen hypercall page at xenpage (Xen's MSR with --interface both).
enable_xen_page:
        mov $0x40000200, %ecx
        lea xenpage(%rip), %rax
        xor %edx, %edx
        wrmsr
        ret
hyperv:
        call enable_hv_page
        lea hcpage(%rip), %rbx
1:      mov $0x10008, %ecx
        call *%rbx
        dec %r13d
        jnz 1b
        ret
xenloop:
        call enable_xen_page
        lea xenpage+29*32(%rip), %rbx
1:      xor %edi, %edi
        call *%rbx
        dec %r13d
        jnz 1b
        xor %eax, %eax
        ret
pio:
1:      out %al, $0x80
        dec %r13d
        jnz 1b
        xor %eax, %eax
        ret
        .set ROUNDS, 15
        .set M, 2000
.macro timeref reg
        mov $0x40000020, %ecx
        rdmsr
        shl $32, %rdx
        or %rax, %rdx
        mov %rdx, \reg
.endm
.macro report tag
        timeref %rax
        sub %r15, %rax
        push %rax
        lea \tag(%rip), %rsi
        call puts
        pop %rax
        call puthex
.endm
interleaved:
        call enable_hv_page
        call enable_xen_page
        mov $ROUNDS, %r14d
1:      timeref %r15                    # f: kvm-floor's loop, its registers and port
        mov $M, %r13
        mov $0x10, %dx
2:      test %r13, %r13
        jz 3f
        out %al, %dx
        dec %r13
        jmp 2b
3:      report tag_f
        timeref %r15                    # h
        lea hcpage(%rip), %rbx
        mov $M, %r13d
4:      mov $0x10008, %ecx
        call *%rbx
        dec %r13d
        jnz 4b
        report tag_h
        timeref %r15                    # x
        lea xenpage+29*32(%rip), %rbx
        mov $M, %r13d
5:      xor %edi, %edi
        call *%rbx
        dec %r13d
        jnz 5b
        report tag_x
        dec %r14d
        jnz 1b
        xor %eax, %eax
        ret
tag_f:  .asciz "f "
tag_h:  .asciz "h "
tag_x:  .asciz "x "
        .set M2, 500
interleaved_calls:
        call enable_hv_page
        lea hcpage(%rip), %rbx
        mov $ROUNDS, %r14d
1:      timeref %r15                    # f
        mov $M2, %r13
        mov $0x10, %dx
2:      test %r13, %r13
        jz 3f
        out %al, %dx
        dec %r13
        jmp 2b
3:      report tag_f
        timeref %r15                    # h
        mov $M2, %r13d
4:      mov $0x10008, %ecx
        call *%rbx
        dec %r13d
        jnz 4b
        report tag_h
        timeref %r15                    # F
        mov $M2, %r13d
5:      mov $0x2, %ecx
        lea flush_in(%rip), %rdx
        xor %r8d, %r8d
        call *%rbx
        dec %r13d
        jnz 5b
        report tag_F
        timeref %r15                    # I
        mov $M2, %r13d
6:      mov $0x1000b, %ecx
        mov $0xf3, %edx
        mov $1, %r8d
        call *%rbx
        dec %r13d
        jnz 6b
        report tag_I
        timeref %r15                    # X
        mov $M2, %r13d
7:      mov $0x10015, %ecx
        mov $0xf3, %edx
        mov $1, %r8d
        call *%rbx
        dec %r13d
        jnz 7b
        report tag_X
        dec %r14d
        jnz 1b
        xor %eax, %eax
        ret
tag_F:  .asciz "F "
tag_I:  .asciz "I "
tag_X:  .asciz "X "
        .p2align 3
flush_in:
        .quad 0, 0, 1                   # AddressSpace, Flags, ProcessorMask = VP 0
pagecopy:
        lea fakepage(%rip), %rbx
1:      mov $0x10008, %ecx
        call *%rbx
        dec %r13d
        jnz 1b
        xor %eax, %eax
        ret
fakepage:
        out %eax, $0x80
        ret
