# virtio-blk guest: checks the device announcement, negotiates, writes a 64 KiB pattern at
# sector 8, flushes, reads it back and compares; out-of-range and read-only checks; GET_ID;
# optional 1 MiB sequential write/read phases (count from "#N" on the command line, timed
# by the host from the "W"/"R"/"E" console markers); finally a looping descriptor chain must
# put the device into NEEDS_RESET, and after a reset the device works again.
# Exit status 0x2a on success; failure codes 0x10.. name the failed step.
# (Label 9 is taken by boot.inc's `check` macro: never branch to 9f/9b here.)
        .include "boot.inc"
        .include "virtio.inc"
        .set T_IN, 0
        .set T_OUT, 1
        .set T_FLUSH, 4
        .set T_GET_ID, 8
        .set IOAPIC, 0xfec00000
        .set LAPIC, 0xfee00000

main:
        call check_announced
        call map_mmio
        rreg R_MAGIC
        check %rax, 0x74726976, 0x10
        rreg R_VERSION
        check %rax, 2, 0x16
        rreg R_DEVICE_ID
        check %rax, 2, 0x17
        call init
        call irq_test
        mov R_CONFIG(%r15), %r12d               # capacity (sectors, < 4 GiB here)
        # Read-only? (F_RO, bit 5, offered by the device)
        wreg R_DEV_FEAT_SEL, $0
        rreg R_DEV_FEAT
        mov %eax, %r13d
        and $0x20, %r13d

        # Pattern: qword i of buf_a = i * 0x9e3779b97f4a7c15 (64 KiB).
        lea buf_a(%rip), %rdi
        xor %ecx, %ecx
        movabs $0x9e3779b97f4a7c15, %r9
1:      mov %rcx, %rax
        imul %r9, %rax
        mov %rax, (%rdi,%rcx,8)
        inc %ecx
        cmp $8192, %ecx
        jb 1b

        # write 64 KiB at sector 8
        mov $T_OUT, %edi
        mov $8, %esi
        lea buf_a(%rip), %rdx
        mov $65536, %ecx
        call blk_req
        test %r13d, %r13d
        jz 2f
        check %rax, 1, 0x20                     # read-only image: IOERR
        jmp 3f
2:      check %rax, 0, 0x21
3:
        # The used-buffer interrupt was raised (bit 0); ACK clears it.
        rreg R_INT_STATUS
        and $1, %eax
        check %rax, 1, 0x2b
        wreg R_INT_ACK, $1
        rreg R_INT_STATUS
        check %rax, 0, 0x2c
        # flush
        mov $T_FLUSH, %edi
        xor %esi, %esi
        xor %edx, %edx
        xor %ecx, %ecx
        call blk_req
        check %rax, 0, 0x22

        # read back into buf_b and compare (unless read-only)
        mov $T_IN, %edi
        mov $8, %esi
        lea buf_b(%rip), %rdx
        mov $65536, %ecx
        call blk_req
        check %rax, 0, 0x23
        test %r13d, %r13d
        jnz 4f
        lea buf_a(%rip), %rsi
        lea buf_b(%rip), %rdi
        mov $8192, %ecx
        repe cmpsq
        je 4f
        mov $0x24, %eax
        jmp fail
4:
        # out of range: one sector at `capacity`, and two sectors straddling the end
        mov $T_IN, %edi
        mov %r12d, %esi
        lea buf_b(%rip), %rdx
        mov $512, %ecx
        call blk_req
        check %rax, 1, 0x25
        mov $T_OUT, %edi
        lea -1(%r12), %esi
        lea buf_a(%rip), %rdx
        mov $1024, %ecx
        call blk_req
        check %rax, 1, 0x26

        # GET_ID: 20 bytes, must start with "hvc" (the image's file name)
        mov $T_GET_ID, %edi
        xor %esi, %esi
        lea buf_b(%rip), %rdx
        mov $20, %ecx
        call blk_req
        check %rax, 0, 0x27
        movzbl buf_b(%rip), %eax
        check %rax, 'h', 0x28

        call bench
        call malformed
        mov $0x2a, %eax
        ret

# irq_test: route GSI 5 through the IOAPIC to vector 0x30, enable interrupts, do a FLUSH
# and wait for the interrupt handler to run: the device's irqfd reached the guest.
irq_test:
        mov $0xff, %al                          # mask the (uninitialised) 8259s
        out %al, $0x21
        out %al, $0xa1
        set_gate 0x30, irq_handler
        lidt idt_ptr(%rip)
        mov $LAPIC, %edi
        movl $0x1ff, 0xf0(%rdi)                 # SVR: APIC enabled, spurious vector 0xff
        mov $IOAPIC, %edi
        movl $(0x10 + 2*5), (%rdi)              # redirection entry of pin 5, low
        movl $0x30, 0x10(%rdi)                  # vector 0x30, fixed, edge, unmasked
        movl $(0x11 + 2*5), (%rdi)              # high: destination APIC 0
        movl $0, 0x10(%rdi)
        sti
        mov $T_FLUSH, %edi
        xor %esi, %esi
        xor %ecx, %ecx
        call blk_req
        check %rax, 0, 0x18
        mov $0x4000000, %ecx
1:      cmpl $0, irq_count(%rip)
        jne 2f
        pause
        dec %ecx
        jnz 1b
        cli
        mov $0x19, %eax
        jmp fail
2:      cli
        rreg R_INT_STATUS
        wreg R_INT_ACK, $3
        ret

# wait_used_irq: like wait_used, but sleeps (sti; hlt) until the device's interrupt instead
# of spinning, as a real driver does; the vCPU then leaves the host CPU to the device.
wait_used_irq:
1:      cli
        movzwl 0x2002(%rbx), %eax
        cmp 0x1002(%rbx), %ax
        je 2f
        sti
        hlt
        jmp 1b
2:      ret

irq_handler:
        incl irq_count(%rip)
        push %rax
        mov $LAPIC, %eax
        movl $0, 0xb0(%rax)                     # EOI
        pop %rax
        iretq

init:
        mov $0x200, %edi                        # VIRTIO_BLK_F_FLUSH
        call negotiate
        xor %edi, %edi
        lea ring(%rip), %rsi
        call setup_queue
        wreg R_STATUS, $0xf
        ret

# blk_req: edi = type, esi = sector, rdx = data, ecx = data length (0: no data
# descriptor). The data buffer is device-writable for T_IN and T_GET_ID. Returns the
# status byte in rax.
blk_req:
        push %rbx
        lea ring(%rip), %rbx
        mov %edi, hdr(%rip)
        movl $0, hdr+4(%rip)
        mov %rsi, hdr+8(%rip)
        movb $0xff, status(%rip)
        mov %edi, %r10d                         # type
        mov %rdx, %r11                          # data
        mov %ecx, %r14d                         # length
        # desc 0: header
        xor %edi, %edi
        lea hdr(%rip), %rsi
        mov $16, %edx
        mov $F_NEXT, %ecx
        mov $1, %r8d
        call set_desc
        mov $1, %edi
        test %r14d, %r14d
        jz 1f
        # desc 1: data
        mov %r11, %rsi
        mov %r14d, %edx
        mov $F_NEXT, %ecx
        cmp $T_IN, %r10d
        je 2f
        cmp $T_GET_ID, %r10d
        jne 3f
2:      or $F_WRITE, %ecx
3:      mov $2, %r8d
        call set_desc
        mov $2, %edi
1:      # status descriptor
        lea status(%rip), %rsi
        mov $1, %edx
        mov $F_WRITE, %ecx
        xor %r8d, %r8d
        call set_desc
        xor %edi, %edi
        call push_avail
        wreg R_QUEUE_NOTIFY, $0                 # an ioeventfd (or the MMIO fallback)
        call wait_used
        movzbl status(%rip), %eax
        pop %rbx
        ret

# bench: N x 1 MiB sequential writes, then N x 1 MiB reads (N from "#N" on the cmdline,
# rounded down to a multiple of 4), four requests in flight per notification.
bench:
        call parse_count
        and $~3, %r12d
        test %r12d, %r12d
        jz 8f
        # Give the 1 MiB buffer real contents first.
        lea big(%rip), %rdi
        movabs $0x5a5a5a5a5a5a5a5a, %rax
        mov $(0x100000/8), %ecx
        rep stosq
        lea markw(%rip), %rsi
        call puts
        xor %ebx, %ebx
4:      mov $T_OUT, %edi
        call batch4
        add $4, %ebx
        cmp %r12d, %ebx
        jb 4b
        lea markr(%rip), %rsi
        call puts
        xor %ebx, %ebx
5:      mov $T_IN, %edi
        call batch4
        add $4, %ebx
        cmp %r12d, %ebx
        jb 5b
        lea marke(%rip), %rsi
        call puts
8:      ret

# batch4: four 1 MiB requests of type edi at MiB ebx..ebx+3 (all on the `big` buffer),
# one notification, wait for all four.
batch4:
        push %rbx
        mov %ebx, %r10d                         # first MiB
        mov %edi, %r11d                         # type
        lea ring(%rip), %rbx
        xor %r14d, %r14d                        # k
1:      mov %r14d, %eax
        shl $4, %eax
        lea bhdr(%rip), %rsi
        add %rax, %rsi                          # this request's header
        mov %r11d, (%rsi)
        movl $0, 4(%rsi)
        lea (%r10,%r14), %eax
        shl $11, %rax
        mov %rax, 8(%rsi)
        lea (%r14,%r14,2), %edi                 # descriptor 3k: header
        mov $16, %edx
        mov $F_NEXT, %ecx
        lea 1(%rdi), %r8d
        call set_desc
        inc %edi                                # 3k+1: data
        lea big(%rip), %rsi
        mov $0x100000, %edx
        mov $F_NEXT, %ecx
        cmp $T_IN, %r11d
        jne 2f
        or $F_WRITE, %ecx
2:      lea 1(%rdi), %r8d
        call set_desc
        inc %edi                                # 3k+2: status
        lea bstatus(%rip), %rsi
        add %r14, %rsi
        movb $0xff, (%rsi)
        mov $1, %edx
        mov $F_WRITE, %ecx
        xor %r8d, %r8d
        call set_desc
        lea (%r14,%r14,2), %edi
        call push_avail
        inc %r14d
        cmp $4, %r14d
        jb 1b
        wreg R_QUEUE_NOTIFY, $0
        call wait_used_irq
        mov bstatus(%rip), %eax                 # four status bytes, all 0
        check %rax, 0, 0x30
        pop %rbx
        ret

# malformed: a two-descriptor loop must set NEEDS_RESET (status bit 6) with a config
# interrupt; after a reset and re-initialisation a flush works again.
malformed:
        lea ring(%rip), %rbx
        xor %edi, %edi
        lea hdr(%rip), %rsi
        mov $16, %edx
        mov $F_NEXT, %ecx
        mov $1, %r8d
        call set_desc
        mov $1, %edi
        lea status(%rip), %rsi
        mov $1, %edx
        mov $(F_NEXT|F_WRITE), %ecx
        xor %r8d, %r8d
        call set_desc
        xor %edi, %edi
        call push_avail
        wreg R_QUEUE_NOTIFY, $0
        mov $0x4000000, %ecx
1:      rreg R_STATUS
        test $0x40, %eax
        jnz 2f
        pause
        dec %ecx
        jnz 1b
        mov $0x40, %eax
        jmp fail
2:      rreg R_INT_STATUS
        test $2, %eax
        jnz 3f
        mov $0x41, %eax
        jmp fail
3:      wreg R_INT_ACK, $3
        call init                               # negotiate resets (status 0) first
        rreg R_STATUS
        check %rax, 0xf, 0x42
        mov $T_FLUSH, %edi
        xor %esi, %esi
        xor %ecx, %ecx
        call blk_req
        check %rax, 0, 0x43
        ret

        .section .rodata
markw:  .asciz "W\n"
markr:  .asciz "R\n"
marke:  .asciz "E\n"

        .section .data
        .p2align 4
irq_count: .long 0
bstatus: .long 0
        .p2align 4
bhdr:   .skip 64
hdr:    .quad 0, 0
status: .byte 0

        .section .bss
        .p2align 12
pd_mmio: .skip 4096
ring:   .skip 3 * 4096
buf_a:  .skip 65536
buf_b:  .skip 65536
        .p2align 20
big:    .skip 0x100000
        .text
