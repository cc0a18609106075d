# Durability guest for the kill test: for i = 0, 1, 2, ...: write sector i with a pattern
# derived from i, FLUSH, and only then print i (16 hex digits) on the console. The host
# kills the VMM at a random moment; every sector whose number was printed must hold its
# pattern. Ends with status 0x2a when it reaches the end of the disk.
# (Label 9 is taken by boot.inc's `check` macro: never branch to 9f/9b here.)
        .include "boot.inc"
        .include "virtio.inc"

main:
        call map_mmio
        rreg R_DEVICE_ID
        check %rax, 2, 0x17
        mov $0x200, %edi                        # VIRTIO_BLK_F_FLUSH
        call negotiate
        xor %edi, %edi
        lea ring(%rip), %rsi
        call setup_queue
        wreg R_STATUS, $0xf
        mov R_CONFIG(%r15), %r12d               # capacity in sectors
        lea ring(%rip), %rbx
        xor %r13d, %r13d                        # i
        movabs $0x9e3779b97f4a7c15, %r14
1:      cmp %r12d, %r13d
        jae 4f
        # sector data: qword j = i * K + j (qword 0 = i * K)
        lea sector(%rip), %rdi
        mov %r13, %rax
        imul %r14, %rax
        xor %ecx, %ecx
2:      mov %rax, (%rdi,%rcx,8)
        inc %rax
        inc %ecx
        cmp $64, %ecx
        jb 2b
        # write: header, data (readable), status
        movl $1, hdr(%rip)
        mov %r13, hdr+8(%rip)
        xor %edi, %edi
        lea hdr(%rip), %rsi
        mov $16, %edx
        mov $F_NEXT, %ecx
        mov $1, %r8d
        call set_desc
        mov $1, %edi
        lea sector(%rip), %rsi
        mov $512, %edx
        mov $F_NEXT, %ecx
        mov $2, %r8d
        call set_desc
        mov $2, %edi
        lea status(%rip), %rsi
        mov $1, %edx
        mov $F_WRITE, %ecx
        xor %r8d, %r8d
        call set_desc
        movb $0xff, status(%rip)
        xor %edi, %edi
        call push_avail
        wreg R_QUEUE_NOTIFY, $0
        call wait_used
        movzbl status(%rip), %eax
        check %rax, 0, 0x60
        # flush: header, status
        movl $4, hdr(%rip)
        movq $0, hdr+8(%rip)
        xor %edi, %edi
        lea hdr(%rip), %rsi
        mov $16, %edx
        mov $F_NEXT, %ecx
        mov $2, %r8d
        call set_desc
        movb $0xff, status(%rip)
        xor %edi, %edi
        call push_avail
        wreg R_QUEUE_NOTIFY, $0
        call wait_used
        movzbl status(%rip), %eax
        check %rax, 0, 0x61
        mov %r13, %rax
        call puthex
        inc %r13d
        jmp 1b
4:      mov $0x2a, %eax
        ret

        .section .data
        .p2align 4
hdr:    .quad 0, 0
status: .byte 0

        .section .bss
        .p2align 12
pd_mmio: .skip 4096
ring:   .skip 3 * 4096
sector: .skip 512
        .text
