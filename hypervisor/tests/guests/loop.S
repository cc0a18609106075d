# Benchmark loops, 20000 iterations chosen by the first command-line byte:
#  'n' nothing, 'h' fast HvCallNotifyLongSpinWait through the hypercall page,
#  'x' Xen sched_op(SCHEDOP_yield) through the Xen page (needs --interface both/xen),
#  'p' an OUT to an unclaimed port (the VMM's plain port-I/O exit),
#  'e' Xen EVTCHNOP_send on an IPI port bound to this vCPU, through the Xen page, until
#      its upcall handler ran (per-vCPU upcall vector, x2APIC EOI; needs --interface both),
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
        cmp $'e', %r12b
        je evtloop
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
# 'e': the upcall is taken as soon as the call returns (IF=1 around it).
evtloop:
        call enable_xen_page
        mov $0x1b, %ecx                 # IA32_APIC_BASE: x2APIC on
        rdmsr
        or $0xc00, %eax
        wrmsr
        mov $0x80f, %ecx                # x2APIC SVR: software-enabled, spurious 0xff
        mov $0x1ff, %eax
        xor %edx, %edx
        wrmsr
        set_gate 0xf3, evt_isr
        lidt idt_ptr(%rip)
        lea si(%rip), %rax              # memory_op(XENMEM_add_to_physmap, shared_info)
        shr $12, %rax
        mov %rax, xatp+16(%rip)
        mov $7, %edi
        lea xatp(%rip), %rsi
        lea xenpage+12*32(%rip), %rax
        call *%rax
        check %rax, 0, 0x21
        mov $23, %edi                   # hvm_op(HVMOP_set_evtchn_upcall_vector, 0, 0xf3)
        lea upv(%rip), %rsi
        lea xenpage+34*32(%rip), %rax
        call *%rax
        check %rax, 0, 0x22
        mov $7, %edi                    # event_channel_op(EVTCHNOP_bind_ipi, vCPU 0)
        lea ipi(%rip), %rsi
        lea xenpage+32*32(%rip), %rax
        call *%rax
        check %rax, 0, 0x23
        lea xenpage+32*32(%rip), %rbx
1:      mov upcount(%rip), %r14
        mov $4, %edi                    # EVTCHNOP_send(port)
        lea ipi+4(%rip), %rsi
        sti
        call *%rbx
2:      cmp upcount(%rip), %r14
        je 2b
        cli
        dec %r13d
        jnz 1b
        xor %eax, %eax
        ret
evt_isr:
        push %rax
        push %rcx
        push %rdx
        incq upcount(%rip)
        movb $0, si(%rip)               # vcpu_info[0].evtchn_upcall_pending
        movq $0, si+8(%rip)             # evtchn_pending_sel
        movq $0, si+2048(%rip)          # evtchn_pending[0]
        mov $0x80b, %ecx                # x2APIC EOI
        xor %eax, %eax
        xor %edx, %edx
        wrmsr
        pop %rdx
        pop %rcx
        pop %rax
        iretq
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

        .data
        .balign 8
xatp:   .word 0x7ff0, 0                 # domid DOMID_SELF; space shared_info; idx; gpfn
        .long 0
        .quad 0, 0
upv:    .long 0                         # vcpu 0, vector 0xf3
        .byte 0xf3, 0, 0, 0
ipi:    .long 0, 0                      # vcpu 0, port (out)
upcount: .quad 0
        .balign 4096
si:     .fill 4096, 1, 0
