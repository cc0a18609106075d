# 300 Xen hypercalls by VMCALL from one function, as Linux's xen_hypercall_intel: after the
# first (found at a watchdog kick), the VMM's breakpoint on that VMCALL makes each an exit
# (KVM_EXIT_DEBUG) instead of a wait for the next kick (<= 10 ms each).
        .include "boot.inc"
main:
        mov $300, %r13d
1:      mov $17, %eax
        xor %edi, %edi
        call hc
        check %rax, 0x40010, 1
        dec %r13d
        jnz 1b
        xor %eax, %eax
        ret
hc:     vmcall
        ret
