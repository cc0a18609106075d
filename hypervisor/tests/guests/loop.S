# Benchmark loops, 20000 iterations chosen by the first command-line byte:
#  'n' nothing, 'h' fast HvCallNotifyLongSpinWait through the hypercall page,
#  'x' Xen sched_op(SCHEDOP_yield) through the Xen page (needs --interface both/xen),
#  'p' an OUT to an unclaimed port (the VMM's plain port-I/O exit),
#  'q' the hypercall page's exact instructions (OUT, ret) but to unclaimed port
#      0x80: the guest-side cost of 'h' without the hypercall handling.
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
        xor %eax, %eax
        ret
hyperv:
        wrmsr_guest_id:
        mov $0x40000000, %ecx
        mov $1, %eax
        mov $0x81000000, %edx
        wrmsr
        mov $0x40000001, %ecx
        lea hcpage+1(%rip), %rax
        xor %edx, %edx
        wrmsr
        lea hcpage(%rip), %rbx
1:      mov $0x10008, %ecx
        call *%rbx
        dec %r13d
        jnz 1b
        ret
xenloop:
        mov $0x40000200, %ecx
        lea xenpage(%rip), %rax
        xor %edx, %edx
        wrmsr
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
