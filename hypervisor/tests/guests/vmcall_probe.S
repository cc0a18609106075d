# Xen hypercalls made as Linux does since the XSA-466 fixes: VMCALL with the number in
# rax (no hypercall page). A failed check exits with its number; 0 when all pass.
        .include "boot.inc"
main:
        # 1: xen_version(XENVER_version) = 4.16
        mov $17, %eax
        xor %edi, %edi
        vmcall
        check %rax, 0x40010, 1
        # 2: xen_version(XENVER_pagesize) = 4096
        mov $17, %eax
        mov $7, %edi
        vmcall
        check %rax, 4096, 2
        # 3: an unknown hypercall number: -ENOSYS
        mov $99, %eax
        vmcall
        check %rax, -38, 3
        # 4: xen_version(XENVER_extraversion) into a buffer through the page tables
        mov $17, %eax
        mov $1, %edi
        lea buf(%rip), %rsi
        vmcall
        check %rax, 0, 4
        movzbl buf(%rip), %eax
        check %rax, '.', 5
        xor %eax, %eax
        ret

        .data
buf:    .fill 64, 1, 0
