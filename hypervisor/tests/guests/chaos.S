# Hostile-guest interpreter for tests/chaos.rs. The host generates a script (PVH module 0,
# i.e. the initrd) and this guest executes it, op by op, so one assembled guest can issue any
# random sequence of port I/O, MMIO, MSR accesses, hypercalls and jumps into random code.
#
# Script layout (little-endian u64s):
#   header (64 bytes): [0] BSP op count, [1] APs to start (0-3), [2] first AP op index,
#                      [3] AP op count, [4] BSP ops to run before the APs start
#   ops from offset 64, 64 bytes each: kind, a, b, c, d, e, f, g
#   data (FILL sources, random code) after the ops, addressed by offset from the script start.
# Op kinds:
#   1 OUT port=a size=b value=c        2 IN port=a size=b
#   3 MMIO write addr=a size=b value=c 4 MMIO read addr=a size=b
#   5 RDMSR msr=a                      6 WRMSR msr=a value=b
#   7 Hyper-V call rcx=a rdx=b r8=c (through the page at hv_va)
#   8 Xen call nr=a rdi=b rsi=c rdx=d r10=e r8=f (through xen_va + nr*32)
#   9 FILL copy b bytes from script offset c to address a
#  10 Hyper-V setup: GUEST_OS_ID=a, then HYPERCALL MSR=b; hv_va = the page if it reads back
#     enabled
#     (b = -1: this guest's own hcpage, enabled)
#  11 Xen setup: wrmsr(a, b) (b = -1: this guest's xenpage; calls always go to xenpage)
#  12 CPUID leaf=a subleaf=b
#  13 ring 3: a=0 call hv_va, 1 OUT 0xf6 (IOPL 3), 2 call xen_va+b*32, 3 OUT 0xf7 (IOPL 3),
#     4 OUT 0xf4 (IOPL 3), 5 IN from port b (IOPL 0: #GP), 6 jump to random code at script
#     offset b (IOPL 3 if c != 0; ring 3 runs natively here)    (BSP only: one TSS)
#  14 JUMP to script offset a (random code); b=1: exception gates 0-31 point into the code
#     at the u16 offsets found at script offset c (else the op loop's recovery handler)
#  15 spin a iterations (lets other vCPUs interleave)
#  16 page tables: copy 4 KiB from script offset b to page a, keep this guest's PML4 entries
#     0, 256 and 511 in it, load it into CR3 (Xen buffers then go through random entries);
#     a = 0: back to the guest's own PML4
#  17 string I/O: port a, size b (1/2/4), count c, d = 0 rep outs / 1 rep ins, buffer e
# Any exception or interrupt skips to the next op (the handler resets RSP from r15). When the
# BSP's ops are done it waits (bounded) for the APs and writes 0x600d to port 0xf4.
# Registers: r12 = CPU index, r13 = end of this CPU's ops, r14 = current op, r15 = loop RSP.
        .include "boot.inc"
        .set SCRATCH, 0x800000
        .set OP_SIZE, 64
        .set TRAMP, 0x8000
        .set MAGIC, 0x600d

main:
        cli
        # Stray interrupts/exceptions on every vector go to the recovery handler.
        xor %ebx, %ebx
1:      lea recover(%rip), %rax
        lea idt(%rip), %rdi
        mov %rbx, %rcx
        shl $4, %rcx
        add %rcx, %rdi
        mov %ax, (%rdi)
        movw $0x08, 2(%rdi)
        movw $0x8e00, 4(%rdi)
        shr $16, %rax
        mov %ax, 6(%rdi)
        shr $16, %rax
        mov %eax, 8(%rdi)
        movl $0, 12(%rdi)
        inc %ebx
        cmp $256, %ebx
        jb 1b
        load_idt_tss
        # Unenabled hypercall pages trap at once (ud2; int3 is an emulation failure in
        # this host's ring-0 emulator) instead of sliding through zeros.
        lea hcpage(%rip), %rdi
        mov $4096, %ecx
        mov $0x0b0f, %ax
        rep stosw
        lea hcpage(%rip), %rax
        mov %rax, hv_va(%rip)
        lea xenpage(%rip), %rax
        mov %rax, xen_va(%rip)
        call map_extra
        # The script: PVH module 0.
        mov start_info(%rip), %rbx
        cmpl $0, 12(%rbx)
        jne 2f
        mov $0xbad, %eax
        ret
2:      mov 16(%rbx), %rsi
        mov (%rsi), %rsi
        mov %rsi, script(%rip)
        # First the BSP ops that run before the APs start (header word 4: the hypercall
        # pages' set-up, so that no AP calls a page while the VMM writes it, which is
        # cross-modifying code), then the APs, then the rest of the BSP's ops.
        xor %r12d, %r12d
        lea 64(%rsi), %r14
        mov 32(%rsi), %r13
        shl $6, %r13
        add %r14, %r13
        lea pre_done(%rip), %rax
        mov %rax, done_at(%rip)
        jmp op_start
pre_done:
        mov script(%rip), %rsi
        cmpq $0, 8(%rsi)
        je 3f
        call start_aps
3:      mov script(%rip), %rsi
        lea 64(%rsi), %r13
        mov (%rsi), %rax
        shl $6, %rax
        add %rax, %r13
        lea done_bsp(%rip), %rax
        mov %rax, done_at(%rip)
        jmp op_start

done_bsp:
        # Wait (bounded) for the APs to finish their ops.
        mov script(%rip), %rsi
        mov 8(%rsi), %rbx
        mov $20000, %ecx
1:      cmp %rbx, aps_done(%rip)
        jae 2f
        pause
        dec %ecx
        jnz 1b
2:      mov $MAGIC, %eax
        out %eax, $0xf4
        hlt

# map_extra: 1-5 GiB (RAM of big VMs, the MMIO hole with LAPIC/IOAPIC, RAM or nothing above
# 4 GiB) with uncached 2 MiB pages, and
# the top 2 MiB of the virtual address space (0xffffffffffe00000) -> SCRATCH, so that guest
# buffers can sit at the very end of the address space.
map_extra:
        lea pdx(%rip), %rdi
        movabs $0x40000000 + 0x9b, %rax
        mov $2048, %ecx
1:      mov %rax, (%rdi)
        add $0x200000, %rax
        add $8, %rdi
        dec %ecx
        jnz 1b
        lea pdpt(%rip), %rdi
        lea pdx(%rip), %rax
        or $7, %rax
        mov $1, %ecx
2:      mov %rax, (%rdi,%rcx,8)
        add $4096, %rax
        inc %ecx
        cmp $5, %ecx
        jb 2b
        lea pd_top(%rip), %rax
        movq $SCRATCH + 0x87, 511*8(%rax)
        or $7, %rax
        lea pdpt_top(%rip), %rdi
        mov %rax, 511*8(%rdi)
        mov %rdi, %rax
        or $7, %rax
        lea pml4(%rip), %rdi
        mov %rax, 511*8(%rdi)
        mov %cr3, %rax
        mov %rax, %cr3
        ret

# start_aps: INIT + SIPI to all but self through the xAPIC (0xfee00300).
start_aps:
        lea tramp(%rip), %rsi
        mov $TRAMP, %edi
        mov $tramp_end - tramp, %ecx
        rep movsb
        mov $0xfee00000, %edi
        movl $0, 0x310(%rdi)
        movl $0xc4500, 0x300(%rdi)
        movl $0xc4608, 0x300(%rdi)
        ret

ap64:
        mov $0x10, %ax
        mov %ax, %ds
        mov %ax, %es
        mov %ax, %ss
        mov $1, %eax
        lock xadd %eax, ap_next(%rip)
        mov %eax, %r12d                 # CPU index 1..3
        and $3, %eax
        inc %eax
        shl $12, %rax
        lea ap_stacks(%rip), %rsp
        add %rax, %rsp
        lidt idt_ptr(%rip)
        mov script(%rip), %rsi
        mov 16(%rsi), %r14
        shl $6, %r14
        lea 64(%rsi,%r14), %r14
        mov 24(%rsi), %r13
        shl $6, %r13
        add %r14, %r13
        lea done_ap(%rip), %rax
        # APs share done_at with the BSP: keep theirs on the stack instead.
        push %rax
        mov %rsp, %r15
        jmp op_loop_ap

done_ap:
        lock incq aps_done(%rip)
1:      cli
        hlt
        jmp 1b

op_start:
        mov %rsp, %r15
op_loop:
        mov %r15, %rsp
        cmp %r13, %r14
        jb 1f
        test %r12, %r12
        jnz 2f
        jmp *done_at(%rip)
2:      jmp *(%rsp)
op_loop_ap:
        jmp op_loop
1:      mov (%r14), %rax
        cmp $18, %rax
        jae op_next
        lea op_table(%rip), %rdx
        jmp *(%rdx,%rax,8)
op_next:
        add $OP_SIZE, %r14
        jmp op_loop

# The recovery handler: every vector lands here; count it and go on with the next op.
recover:
        lock incq exc_count(%rip)
        mov %r15, %rsp
        jmp op_next

op_out:
        mov 8(%r14), %rdx
        mov 24(%r14), %rax
        mov 16(%r14), %rcx
        cmp $1, %rcx
        je 1f
        cmp $2, %rcx
        je 2f
        out %eax, %dx
        jmp op_next
1:      out %al, %dx
        jmp op_next
2:      out %ax, %dx
        jmp op_next

op_in:
        mov 8(%r14), %rdx
        mov 16(%r14), %rcx
        cmp $1, %rcx
        je 1f
        cmp $2, %rcx
        je 2f
        in %dx, %eax
        jmp op_next
1:      in %dx, %al
        jmp op_next
2:      in %dx, %ax
        jmp op_next

op_mmio_w:
        mov 8(%r14), %rdi
        mov 24(%r14), %rax
        mov 16(%r14), %rcx
        cmp $1, %rcx
        je 1f
        cmp $2, %rcx
        je 2f
        cmp $8, %rcx
        je 8f
        mov %eax, (%rdi)
        jmp op_next
1:      mov %al, (%rdi)
        jmp op_next
2:      mov %ax, (%rdi)
        jmp op_next
8:      mov %rax, (%rdi)
        jmp op_next

op_mmio_r:
        mov 8(%r14), %rdi
        mov 16(%r14), %rcx
        cmp $1, %rcx
        je 1f
        cmp $2, %rcx
        je 2f
        cmp $8, %rcx
        je 8f
        mov (%rdi), %eax
        jmp op_next
1:      mov (%rdi), %al
        jmp op_next
2:      mov (%rdi), %ax
        jmp op_next
8:      mov (%rdi), %rax
        jmp op_next

op_rdmsr:
        mov 8(%r14), %rcx
        rdmsr
        jmp op_next

op_wrmsr:
        mov 8(%r14), %rcx
        mov 16(%r14), %rax
        mov %rax, %rdx
        shr $32, %rdx
        wrmsr
        jmp op_next

op_hv:
        mov 8(%r14), %rcx
        mov 16(%r14), %rdx
        mov 24(%r14), %r8
        mov hv_va(%rip), %rax
        call *%rax
        jmp op_next

op_xen:
        mov 8(%r14), %rax
        shl $5, %rax
        add xen_va(%rip), %rax
        mov 16(%r14), %rdi
        mov 24(%r14), %rsi
        mov 32(%r14), %rdx
        mov 40(%r14), %r10
        mov 48(%r14), %r8
        call *%rax
        jmp op_next

op_fill:
        mov 8(%r14), %rdi
        mov 16(%r14), %rcx
        mov 24(%r14), %rsi
        add script(%rip), %rsi
        rep movsb
        jmp op_next

op_hv_setup:
        mov $0x40000000, %ecx
        mov 8(%r14), %rax
        mov %rax, %rdx
        shr $32, %rdx
        wrmsr
        mov $0x40000001, %ecx
        mov 16(%r14), %rax
        cmp $-1, %rax                   # -1: this guest's own page, enabled
        jne 1f
        lea hcpage+1(%rip), %rax
1:      mov %rax, %rdx
        shr $32, %rdx
        wrmsr
        # Use the page only if it reads back enabled (the write is ignored while
        # GUEST_OS_ID is 0 or the MSR is locked).
        mov $0x40000001, %ecx
        rdmsr
        test $1, %al
        jz op_next
        shl $32, %rdx
        or %rdx, %rax
        and $~0xfff, %rax
        mov %rax, hv_va(%rip)
        jmp op_next

op_xen_setup:
        mov 8(%r14), %rcx
        mov 16(%r14), %rax
        cmp $-1, %rax                   # -1: this guest's own page
        jne 1f
        lea xenpage(%rip), %rax
1:      mov %rax, %rdx
        shr $32, %rdx
        wrmsr
        # Xen's MSR is write-only and a successful write may have been to some other MSR:
        # the stubs are used only at this guest's own page (ud2 until the VMM fills it).
        jmp op_next
        jmp op_next

op_cpuid:
        mov 8(%r14), %rax
        mov 16(%r14), %rcx
        cpuid
        jmp op_next

op_user:
        test %r12, %r12
        jnz op_next
        push $0x23                      # ss
        lea ustack_top(%rip), %rax
        push %rax
        mov 8(%r14), %rax
        cmp $1, %rax
        je 1f
        cmp $3, %rax
        je 1f
        cmp $4, %rax
        je 1f
        cmp $6, %rax
        jne 3f
        cmpq $0, 24(%r14)
        jne 1f
3:      push $0x2
        jmp 2f
1:      push $0x3002                    # IOPL 3
2:      push $0x1b                      # cs
        lea user(%rip), %rax
        push %rax
        mov 8(%r14), %rax
        mov 16(%r14), %rbx
        cmp $6, %rax
        jne 3f
        add script(%rip), %rbx
3:      iretq
# Ring 3: every path ends in an exception (or, for OUT 0xf4, the end of the VM).
user:
        cmp $0, %rax
        jne 1f
        mov hv_va(%rip), %rax
        call *%rax
        ud2
1:      cmp $1, %rax
        jne 1f
        out %eax, $0xf6
        ud2
1:      cmp $2, %rax
        jne 1f
        and $127, %rbx
        shl $5, %rbx
        mov xen_va(%rip), %rax
        add %rbx, %rax
        call *%rax
        ud2
1:      cmp $3, %rax
        jne 1f
        out %eax, $0xf7
        ud2
1:      cmp $4, %rax
        jne 1f
        out %eax, $0xf4
        ud2
1:      cmp $6, %rax
        jne 1f
        xor %eax, %eax
        jmp *%rbx
1:      mov %bx, %dx
        in %dx, %al
        ud2

op_jump:
        mov 8(%r14), %rbx
        add script(%rip), %rbx
        cmpq $1, 16(%r14)
        jne 3f
        # Gates 0-31 -> code + u16 offsets at script offset c.
        mov 24(%r14), %rsi
        add script(%rip), %rsi
        lea idt(%rip), %rdi
        mov $32, %ecx
1:      movzwl (%rsi), %eax
        add %rbx, %rax
        mov %ax, (%rdi)
        movw $0x08, 2(%rdi)
        movw $0x8e00, 4(%rdi)
        shr $16, %rax
        mov %ax, 6(%rdi)
        shr $16, %rax
        mov %eax, 8(%rdi)
        movl $0, 12(%rdi)
        add $2, %rsi
        add $16, %rdi
        dec %ecx
        jnz 1b
3:      mov %rbx, %rax
        mov hv_va(%rip), %rbx
        mov xen_va(%rip), %rbp
        xor %ecx, %ecx
        xor %edx, %edx
        jmp *%rax

op_spin:
        mov 8(%r14), %rcx
        test %rcx, %rcx
        jz op_next
1:      pause
        dec %rcx
        jnz 1b
        jmp op_next

op_pt:
        lea pml4(%rip), %rdx
        mov %rdx, %cr3                  # the target may be the live PML4: leave it first
        mov 8(%r14), %rdi
        test %rdi, %rdi
        jz 1f
        mov 16(%r14), %rsi
        add script(%rip), %rsi
        mov $4096, %ecx
        rep movsb
        mov 8(%r14), %rdi
        mov (%rdx), %rax
        mov %rax, (%rdi)
        mov 256*8(%rdx), %rax
        mov %rax, 256*8(%rdi)
        mov 511*8(%rdx), %rax
        mov %rax, 511*8(%rdi)
        mov %rdi, %rdx
1:      mov %rdx, %cr3
        jmp op_next

op_str:
        cld
        mov 8(%r14), %rdx
        mov 16(%r14), %rax
        mov 24(%r14), %rcx
        mov 40(%r14), %rsi
        mov %rsi, %rdi
        cmpq $0, 32(%r14)
        jne 5f
        cmp $1, %rax
        je 1f
        cmp $2, %rax
        je 2f
        rep outsl
        jmp op_next
1:      rep outsb
        jmp op_next
2:      rep outsw
        jmp op_next
5:      cmp $1, %rax
        je 1f
        cmp $2, %rax
        je 2f
        rep insl
        jmp op_next
1:      rep insb
        jmp op_next
2:      rep insw
        jmp op_next

        .section .rodata
        .p2align 3
op_table:
        .quad op_next, op_out, op_in, op_mmio_w, op_mmio_r, op_rdmsr, op_wrmsr, op_hv
        .quad op_xen, op_fill, op_hv_setup, op_xen_setup, op_cpuid, op_user, op_jump, op_spin
        .quad op_pt, op_str

        .section .data
        .p2align 3
script: .quad 0
hv_va:  .quad 0
xen_va: .quad 0
done_at: .quad 0
exc_count: .quad 0
aps_done: .quad 0
ap_next: .long 1
        .include "ap_tramp.inc"

        .section .bss
        .p2align 12
pdx:    .skip 4 * 4096
pdpt_top: .skip 4096
pd_top: .skip 4096
ap_stacks: .skip 4 * 4096
        .text
