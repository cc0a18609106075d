# virtio-scsi guest: INQUIRY, READ CAPACITY(10), WRITE(10) of an 8 KiB pattern at LBA 8,
# SYNCHRONIZE CACHE, READ(10) back and compare, a READ past the end (CHECK CONDITION,
# ILLEGAL REQUEST / LBA out of range), REPORT LUNS. Exit status 0x2a on success.
# (Label 9 is taken by boot.inc's `check` macro: never branch to 9f/9b here.)
        .include "boot.inc"
        .include "virtio.inc"
        .set REQQ, 2
        .set DIR_NONE, 0
        .set DIR_OUT, 1
        .set DIR_IN, 2

main:
        call check_announced
        call map_mmio
        rreg R_DEVICE_ID
        check %rax, 8, 0x17
        xor %edi, %edi
        call negotiate
        mov $REQQ, %edi
        lea ring(%rip), %rsi
        call setup_queue
        wreg R_STATUS, $0xf

        # INQUIRY, 36 bytes
        lea cdb_inquiry(%rip), %rdi
        lea buf_b(%rip), %rsi
        mov $36, %edx
        mov $DIR_IN, %ecx
        call scsi_cmd
        check %rax, 0, 0x70
        mov buf_b+8(%rip), %eax
        check %rax, 0x45435648, 0x71            # "HVCE" of "HVCERT"
        # READ CAPACITY(10): r12 = number of blocks
        lea cdb_readcap(%rip), %rdi
        lea buf_b(%rip), %rsi
        mov $8, %edx
        mov $DIR_IN, %ecx
        call scsi_cmd
        check %rax, 0, 0x72
        mov buf_b(%rip), %eax
        bswap %eax
        lea 1(%rax), %r12d
        # pattern in buf_a: qword i = i * K (8 KiB)
        lea buf_a(%rip), %rdi
        xor %ecx, %ecx
        movabs $0x9e3779b97f4a7c15, %r9
1:      mov %rcx, %rax
        imul %r9, %rax
        mov %rax, (%rdi,%rcx,8)
        inc %ecx
        cmp $1024, %ecx
        jb 1b
        # WRITE(10) LBA 8, 16 blocks
        lea cdb_write(%rip), %rdi
        lea buf_a(%rip), %rsi
        mov $8192, %edx
        mov $DIR_OUT, %ecx
        call scsi_cmd
        check %rax, 0, 0x73
        # SYNCHRONIZE CACHE(10)
        lea cdb_sync(%rip), %rdi
        xor %edx, %edx
        mov $DIR_NONE, %ecx
        call scsi_cmd
        check %rax, 0, 0x74
        # READ(10) LBA 8, 16 blocks, compare
        lea cdb_read(%rip), %rdi
        lea buf_b(%rip), %rsi
        mov $8192, %edx
        mov $DIR_IN, %ecx
        call scsi_cmd
        check %rax, 0, 0x75
        lea buf_a(%rip), %rsi
        lea buf_b(%rip), %rdi
        mov $1024, %ecx
        repe cmpsq
        je 2f
        mov $0x76, %eax
        jmp fail
2:      # READ(10) of one block at LBA = capacity: CHECK CONDITION, sense 5/0x21
        mov %r12d, %eax
        bswap %eax
        mov %eax, cdb_past+2(%rip)
        lea cdb_past(%rip), %rdi
        lea buf_b(%rip), %rsi
        mov $512, %edx
        mov $DIR_IN, %ecx
        call scsi_cmd
        check %rax, 2, 0x77
        movzbl resp+12+2(%rip), %eax
        and $0xf, %eax
        check %rax, 5, 0x78
        movzbl resp+12+12(%rip), %eax
        check %rax, 0x21, 0x79
        # REPORT LUNS: one LUN (list length 8)
        lea cdb_luns(%rip), %rdi
        lea buf_b(%rip), %rsi
        mov $16, %edx
        mov $DIR_IN, %ecx
        call scsi_cmd
        check %rax, 0, 0x7a
        mov buf_b(%rip), %eax
        bswap %eax
        check %rax, 8, 0x7b
        mov $0x2a, %eax
        ret

# scsi_cmd: rdi = 16-byte CDB, rsi = data, edx = data length, ecx = direction.
# Returns the SCSI status in rax; fails the test unless the virtio response is OK.
scsi_cmd:
        push %rbx
        mov %rsi, %r10
        mov %edx, %r11d
        mov %ecx, %r14d
        # request: LUN (target 0, LUN 0), tag, attributes, CDB
        lea req(%rip), %rax
        movq $0x400001, (%rax)                  # bytes 1, 0, 0x40, 0
        movq $7, 8(%rax)
        movw $0, 16(%rax)
        movb $0, 18(%rax)
        mov (%rdi), %rdx
        mov %rdx, 19(%rax)
        mov 8(%rdi), %rdx
        mov %rdx, 27(%rax)
        movq $0, 35(%rax)
        movq $0, 43(%rax)
        movb $0xee, resp+11(%rip)
        lea ring(%rip), %rbx
        xor %edi, %edi
        lea req(%rip), %rsi
        mov $51, %edx
        mov $F_NEXT, %ecx
        mov $1, %r8d
        call set_desc
        mov $1, %edi
        cmp $DIR_OUT, %r14d
        jne 1f
        mov %r10, %rsi
        mov %r11d, %edx
        mov $F_NEXT, %ecx
        mov $2, %r8d
        call set_desc
        mov $2, %edi
1:      lea resp(%rip), %rsi
        mov $108, %edx
        mov $F_WRITE, %ecx
        cmp $DIR_IN, %r14d
        jne 2f
        or $F_NEXT, %ecx
2:      lea 1(%rdi), %r8d
        call set_desc
        cmp $DIR_IN, %r14d
        jne 3f
        inc %edi
        mov %r10, %rsi
        mov %r11d, %edx
        mov $F_WRITE, %ecx
        xor %r8d, %r8d
        call set_desc
3:      xor %edi, %edi
        call push_avail
        wreg R_QUEUE_NOTIFY, $REQQ
        call wait_used
        movzbl resp+11(%rip), %eax              # virtio response
        check %rax, 0, 0x7f
        movzbl resp+10(%rip), %eax              # SCSI status
        pop %rbx
        ret

        .section .data
        .p2align 4
cdb_inquiry: .byte 0x12, 0, 0, 0, 36, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
cdb_readcap: .byte 0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
cdb_write:   .byte 0x2a, 0, 0, 0, 0, 8, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0
cdb_sync:    .byte 0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
cdb_read:    .byte 0x28, 0, 0, 0, 0, 8, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0
cdb_past:    .byte 0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0
cdb_luns:    .byte 0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0
        .p2align 4
req:    .skip 64
resp:   .skip 128

        .section .bss
        .p2align 12
pd_mmio: .skip 4096
ring:   .skip 3 * 4096
buf_a:  .skip 8192
buf_b:  .skip 8192
        .text
