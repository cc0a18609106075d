# virtio-net guest (loopback backend): checks the announcement and config space (MAC, link
# up, MTU), posts receive buffers, sends a frame and checks it comes back intact on the
# receive queue; then, with "#N" on the command line, N more frames (rounded down to a
# multiple of 8) in batches of 8 per notification, run in ring 3 (native speed here; console
# output and the exit go to ring 0 through `ud2` and the #UD handler, since an `int $0x80`
# gate from ring 3 triple-faulted on this nested host), timed by the host from the
# "F"/"E" console markers.
# Exit status 0x2a on success.
# (Label 9 is taken by boot.inc's `check` macro: never branch to 9f/9b here.)
        .include "boot.inc"
        .include "virtio.inc"
        .set FRAME, 60
        .set HDR, 12

main:
        call check_announced
        call map_mmio
        rreg R_DEVICE_ID
        check %rax, 1, 0x17
        mov $0x10028, %edi                      # MAC | MTU | STATUS
        call negotiate
        movzbl R_CONFIG(%r15), %eax
        check %rax, 0x52, 0x50
        movzwl R_CONFIG+6(%r15), %eax
        check %rax, 1, 0x51                     # VIRTIO_NET_S_LINK_UP
        movzwl R_CONFIG+10(%r15), %eax
        check %rax, 1500, 0x52
        xor %edi, %edi
        lea rxring(%rip), %rsi
        call setup_queue
        mov $1, %edi
        lea txring(%rip), %rsi
        call setup_queue
        wreg R_STATUS, $0xf

        # Sixteen receive buffers of 2 KiB: descriptors 0..15 of the RX queue.
        lea rxring(%rip), %rbx
        xor %r12d, %r12d
1:      mov %r12d, %edi
        mov %r12, %rsi
        shl $11, %rsi
        lea rxbuf(%rip), %rax
        add %rax, %rsi
        mov $2048, %edx
        mov $F_WRITE, %ecx
        xor %r8d, %r8d
        call set_desc
        mov %r12d, %edi
        call push_avail
        inc %r12d
        cmp $16, %r12d
        jb 1b
        wreg R_QUEUE_NOTIFY, $0

        # The frame: zero virtio-net header, dst = src = our MAC, ethertype 0x88b5, payload.
        lea txbuf(%rip), %rdi
        xor %eax, %eax
        mov $(HDR+FRAME), %ecx
        rep stosb
        lea txbuf+HDR(%rip), %rdi
        mov R_CONFIG(%r15), %eax
        mov %eax, (%rdi)
        mov %eax, 6(%rdi)
        movzwl R_CONFIG+4(%r15), %eax
        mov %ax, 4(%rdi)
        mov %ax, 10(%rdi)
        movw $0xb588, 12(%rdi)
        mov $14, %ecx
2:      mov %cl, (%rdi,%rcx)
        inc %ecx
        cmp $FRAME, %ecx
        jb 2b
        lea txring(%rip), %rbx
        xor %edi, %edi
        lea txbuf(%rip), %rsi
        mov $(HDR+FRAME), %edx
        xor %ecx, %ecx
        xor %r8d, %r8d
        call set_desc

        xor %r13d, %r13d                        # frames received so far
        call send_one
        # First frame: used length, num_buffers, payload.
        lea rxring(%rip), %rbx
        mov 0x2004(%rbx), %eax                  # used.ring[0].id
        check %rax, 0, 0x53
        mov 0x2008(%rbx), %eax                  # used.ring[0].len
        check %rax, HDR+FRAME, 0x54
        movzwl rxbuf+10(%rip), %eax
        check %rax, 1, 0x55
        lea rxbuf+HDR(%rip), %rsi
        lea txbuf+HDR(%rip), %rdi
        mov $FRAME, %ecx
        repe cmpsb
        je 3f
        mov $0x56, %eax
        jmp fail
3:
        # "#N": N more frames, in ring 3.
        call parse_count
        and $~7, %r12d
        test %r12d, %r12d
        jz 5f
        # TX descriptors 0..7 all carry the same frame.
        lea txring(%rip), %rbx
        xor %r14d, %r14d
4:      mov %r14d, %edi
        lea txbuf(%rip), %rsi
        mov $(HDR+FRAME), %edx
        xor %ecx, %ecx
        xor %r8d, %r8d
        call set_desc
        inc %r14d
        cmp $8, %r14d
        jb 4b
        set_gate 6, sys_handler
        load_idt_tss
        push $0x23                              # ss: user data
        lea ustack_top(%rip), %rax
        push %rax
        push $0x2                               # rflags: IF clear
        push $0x1b                              # cs: user code
        lea user_bench(%rip), %rax
        push %rax
        iretq
5:      mov $0x2a, %eax
        ret

# sys_handler (#UD from `ud2` in ring 3): eax = 1: puts(rsi); eax = 2: end the VM with
# edi; anything else (a real #UD) ends it with 0x5f.
sys_handler:
        cmp $2, %eax
        je 1f
        cmp $1, %eax
        jne 2f
        call puts
        addq $2, (%rsp)                         # past the ud2
        iretq
2:      mov $0x5f, %edi
1:      mov %edi, %eax
        out %eax, $0xf4
        hlt

# user_bench (ring 3): r12 frames in batches of 8; then ends the VM with 0x2a.
user_bench:
        lea markf(%rip), %rsi
        mov $1, %eax
        ud2
1:      lea txring(%rip), %rbx
        xor %r14d, %r14d
2:      mov %r14d, %edi
        call push_avail
        inc %r14d
        cmp $8, %r14d
        jb 2b
        wreg R_QUEUE_NOTIFY, $1
        call wait_used
        lea rxring(%rip), %rbx
        add $8, %r13d
        mov $0x4000000, %ecx
3:      movzwl 0x2002(%rbx), %eax
        cmp %r13w, %ax
        je 4f
        pause
        dec %ecx
        jnz 3b
        mov $0x58, %eax
        jmp fail
4:      # give the eight used receive buffers back
        lea -8(%r13), %r14d
5:      mov %r14d, %eax
        and $(QSIZE-1), %eax
        mov 0x2004(%rbx,%rax,8), %edi
        call push_avail
        inc %r14d
        cmp %r13d, %r14d
        jb 5b
        sub $8, %r12d
        jnz 1b
        lea marke(%rip), %rsi
        mov $1, %eax
        ud2
        mov $2, %eax
        mov $0x2a, %edi
        ud2

# send_one: transmit TX descriptor 0, wait for its completion and for one more received
# frame (r13 = frames received so far), then give that receive buffer back.
send_one:
        lea txring(%rip), %rbx
        xor %edi, %edi
        call push_avail
        wreg R_QUEUE_NOTIFY, $1
        call wait_used
        lea rxring(%rip), %rbx
        inc %r13d
        mov $0x4000000, %ecx
1:      movzwl 0x2002(%rbx), %eax
        cmp %r13w, %ax
        je 2f
        pause
        dec %ecx
        jnz 1b
        mov $0x57, %eax
        jmp fail
2:      lea -1(%r13), %eax
        and $(QSIZE-1), %eax
        mov 0x2004(%rbx,%rax,8), %edi           # id of the used buffer
        call push_avail
        ret


        .section .rodata
markf:  .asciz "F\n"
marke:  .asciz "E\n"

        .section .bss
        .p2align 12
pd_mmio: .skip 4096
rxring: .skip 3 * 4096
txring: .skip 3 * 4096
rxbuf:  .skip 16 * 2048
txbuf:  .skip 2048
        .text
