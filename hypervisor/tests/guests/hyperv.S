# Exercises the Hyper-V-style interface from ring 0; exits 0x2a when every check passed,
# else with the number of the failed check. Command line 'U': call the hypercall page from
# ring 3 with IOPL 3; 'p': OUT to the hypercall port from ring 3 with IOPL 3; 'o': OUT to
# the port from ring 0 outside the page; 'n': use the port before any page is enabled.
# These end in the #UD handler with status 0x60 | CPL. 'u': call the page from ring 3
# without port access: the OUT's I/O permission check raises #GP first, status 0x50 | CPL.
# 'm': exit 0x40 + the number of #GPs taken by one read and one write of GUEST_OS_ID.
# 's': hypercalls with the return address across a page boundary and at an odd RSP: 0x2b.
        .include "boot.inc"
        .set HV_OUT, 0x3000             # scratch area (identity mapped)

.macro rdmsr_to reg, msr
        mov $\msr, %ecx
        rdmsr
        shl $32, %rdx
        or %rdx, %rax
        mov %rax, \reg
.endm
.macro wrmsr_val msr, val
        mov $\msr, %ecx
        movabs $\val, %rax
        mov %rax, %rdx
        shr $32, %rdx
        wrmsr
.endm
.macro hv code, in, out
        movabs $\code, %rcx
        movabs $\in, %rdx
        movabs $\out, %r8
        lea hcpage(%rip), %rax
        call *%rax
.endm

# hv_with_rsp: a fast NotifyLongSpinWait with RSP at \at; RSP must come back unchanged
# (else on to 7f) and the status must be 0 (else fail with \n).
.macro hv_with_rsp at, n
        lea \at(%rip), %rsp
        hv 0x10008, 0, 0
        lea \at(%rip), %r14
        cmp %r14, %rsp
        jne 7f
        check %rax, 0, \n
.endm

main:
        set_gate 6, ud_handler
        set_gate 13, gp_handler
        load_idt_tss
        mov start_info(%rip), %rbx
        mov 24(%rbx), %rsi
        movzbl (%rsi), %r12d            # mode byte
        cmp $'m', %r12b
        jne 8f
        # 'm': synthetic MSRs only: count #GPs of GUEST_OS_ID read/write, exit 0x40 + count.
        movl $0, gp_count(%rip)
        mov $0x40000000, %ecx
        rdmsr
        mov $0x40000000, %ecx
        xor %eax, %eax
        xor %edx, %edx
        wrmsr
        mov gp_count(%rip), %eax
        add $0x40, %eax
        ret
8:      cmp $'n', %r12b
        jne 1f
        out %eax, $0xf6                 # no page enabled yet -> #UD
        mov $0x70, %eax
        ret
1:
        # 1-3: CPUID leaves
        mov $0x40000000, %eax
        cpuid
        cmp $0x40000005, %eax
        jae 2f
        mov $1, %eax
        jmp fail
2:      check %rbx, 0x7263694d, 2       # "Micr" (vendor "Microsoft Hv")
        mov $0x40000001, %eax
        cpuid
        check %rax, 0x31237648, 3       # "Hv#1"
        mov $0x40000003, %eax
        cpuid
        and $0x62, %eax
        check %rax, 0x62, 4
        # 5: HYPERCALL write ignored while GUEST_OS_ID is 0
        lea hcpage(%rip), %rax
        or $1, %rax
        mov %rax, %r13
        mov $0x40000001, %ecx
        mov %r13, %rdx
        shr $32, %rdx
        wrmsr
        rdmsr_to %r14, 0x40000001
        check %r14, 0, 5
        # 6: GUEST_OS_ID round trip
        wrmsr_val 0x40000000, 0x8100123456789abc
        rdmsr_to %r14, 0x40000000
        check %r14, 0x8100123456789abc, 6
        # 7: enable the hypercall page; reads back; page filled
        mov $0x40000001, %ecx
        mov %r13, %rax
        mov %r13, %rdx
        shr $32, %rdx
        wrmsr
        rdmsr_to %r14, 0x40000001
        cmp %r13, %r14
        je 3f
        mov $7, %eax
        jmp fail
3:      movzbl hcpage(%rip), %eax
        check %rax, 0xe7, 8             # out imm8, eax
        # 9: VP_INDEX
        rdmsr_to %r14, 0x40000002
        check %r14, 0, 9
        # 10: TIME_REF_COUNT monotonic and advancing
        rdmsr_to %r14, 0x40000020
        rdmsr_to %r15, 0x40000020
        cmp %r14, %r15
        jae 4f
        mov $10, %eax
        jmp fail
4:      # 11-12: #GP for an unimplemented synthetic MSR and for writing VP_INDEX
        movl $0, gp_count(%rip)
        mov $0x40000011, %ecx            # (0x40000010 is VP_RUNTIME now)
        rdmsr
        mov gp_count(%rip), %eax
        check %rax, 1, 11
        wrmsr_val 0x40000002, 5
        mov gp_count(%rip), %eax
        check %rax, 2, 12
        cmp $'u', %r12b
        je to_ring3
        cmp $'U', %r12b
        je to_ring3
        cmp $'p', %r12b
        je to_ring3
        cmp $'s', %r12b
        jne 6f
        # 's': a call whose return address straddles two pages (the VMM leaves that return
        # to the page's own `ret`), then one with an odd RSP inside a page (the VMM does it).
        mov %rsp, %r15
        hv_with_rsp sbuf+4096+4, 24
        hv_with_rsp sbuf+2048+3, 25
        mov %r15, %rsp
        mov $0x2b, %eax
        ret
7:      mov %r15, %rsp
        mov $26, %eax
        jmp fail
6:
        cmp $'o', %r12b
        jne 5f
        out %eax, $0xf6                 # outside the page -> #UD
        mov $0x71, %eax
        ret
5:
        # 13: NotifyLongSpinWait, fast
        hv 0x10008, 0, 0
        check %rax, 0, 13
        # 14: NotifyLongSpinWait, input in memory
        hv 0x8, HV_OUT, HV_OUT+0x100
        check %rax, 0, 14
        # 15: unknown code
        hv 0x7777, 0, 0
        check %rax, 2, 15
        # 16: RsvdZ bit
        hv 0x8000008, HV_OUT, 0
        check %rax, 3, 16
        # 17: rep count on a simple call
        hv 0x100000008, HV_OUT, 0
        check %rax, 3, 17
        # 18: misaligned input GPA
        hv 0x8, HV_OUT+4, 0
        check %rax, 4, 18
        # 19: input GPA outside guest memory
        hv 0x8, 0x100000000, 0
        check %rax, 5, 19
        # 20: FlushVirtualAddressSpace
        movq $0, HV_OUT
        movq $3, HV_OUT+8
        movq $1, HV_OUT+16
        hv 0x2, HV_OUT, 0
        check %rax, 0, 20
        # 21: FlushVirtualAddressList, 3 reps
        movq $0x1000, HV_OUT+24
        movq $0x2000, HV_OUT+32
        movq $0x3000, HV_OUT+40
        hv 0x300000003, HV_OUT, 0
        check %rax, 0x300000000, 21
        # 22: PostDebugData "dbg!\n"
        movl $5, HV_OUT+0x200
        movl $0, HV_OUT+0x204
        movl $0x21676264, HV_OUT+0x208
        movb $'\n', HV_OUT+0x20c
        hv 0x69, HV_OUT+0x200, HV_OUT+0x400
        check %rax, 0, 22
        # 23: RetrieveDebugData
        movl $16, HV_OUT+0x200
        hv 0x6a, HV_OUT+0x200, HV_OUT+0x400
        check %rax, 0, 23
        lea okmsg(%rip), %rsi
        call puts
        mov $0x2a, %eax
        ret

to_ring3:
        push $0x23                      # ss
        lea ustack_top(%rip), %rax
        push %rax
        cmp $'u', %r12b
        je 1f
        push $0x3002                    # IOPL 3 ('U', 'p')
        jmp 2f
1:      movw $104, tss+102(%rip)        # I/O map base past the TSS limit: no port allowed
        push $0x2                       # IOPL 0
2:      push $0x1b                      # cs
        lea user(%rip), %rax
        push %rax
        iretq
user:
        cmp $'p', %r12b
        je 1f
        mov $0x10008, %rcx
        lea hcpage(%rip), %rax
        call *%rax
        mov $0x72, %eax
        jmp user_exit
1:      out %eax, $0xf6
        mov $0x73, %eax
user_exit:
        jmp user_exit                   # never reached when #UD fires

ud_handler:
        mov 8(%rsp), %rax               # CS of the faulting code
        and $3, %eax
        or $0x60, %eax
        out %eax, $0xf4
        hlt

gp_handler:
        testb $3, 16(%rsp)              # CS of the faulting code (after the error code)
        jz 1f
        mov $0x53, %eax                 # #GP from ring 3 ('u')
        out %eax, $0xf4
        hlt
1:      incl gp_count(%rip)
        add $8, %rsp                    # error code
        addq $2, (%rsp)                 # skip rdmsr/wrmsr
        iretq

        .section .rodata
okmsg:  .asciz "hyperv checks passed\n"
        .section .data
gp_count: .long 0
        .section .bss
        .p2align 12
sbuf:   .skip 8192
