# VIRQ_DEBUG from the host's Xen debug key: maps shared_info, binds VIRQ_DEBUG on vCPU 0,
# polls its port until 3 s of system time, then checks it is pending. Hypercalls with
# VMCALL (as Linux since the XSA-466 fixes). A failed check exits with its number.
        .include "boot.inc"
main:
        # 1: memory_op(XENMEM_add_to_physmap, shared_info at `si`)
        lea si(%rip), %rax
        shr $12, %rax
        mov %rax, xatp+16(%rip)
        mov $12, %eax
        mov $7, %edi
        lea xatp(%rip), %rsi
        vmcall
        check %rax, 0, 1
        # 2: event_channel_op(EVTCHNOP_bind_virq, VIRQ_DEBUG, vCPU 0)
        mov $32, %eax
        mov $1, %edi
        lea bind(%rip), %rsi
        vmcall
        check %rax, 0, 2
        # 3: sched_op(SCHEDOP_poll, [port], timeout 3 s of system time)
        mov bind+8(%rip), %eax
        mov %eax, ports(%rip)
        mov $29, %eax
        mov $3, %edi
        lea poll(%rip), %rsi
        vmcall
        check %rax, 0, 3
        # 4: the port is pending in shared_info
        mov bind+8(%rip), %ecx
        bt %rcx, si+2048(%rip)
        jc 1f
        mov $4, %eax
        jmp fail
1:      xor %eax, %eax
        ret

        .data
        .balign 8
xatp:   .word 0x7ff0, 0          # domid DOMID_SELF, size
        .long 0                  # space XENMAPSPACE_shared_info
        .quad 0                  # idx
        .quad 0                  # gpfn (set above)
bind:   .long 1, 0, 0            # virq VIRQ_DEBUG, vcpu 0, port (out)
ports:  .long 0
        .balign 8
poll:   .quad ports              # ports
        .long 1, 0               # nr_ports
        .quad 3000000000         # timeout (system time, ns)
        .balign 4096
si:     .fill 4096, 1, 0
