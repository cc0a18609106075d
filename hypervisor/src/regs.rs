//! Register dumps for crash reports and [`crate::RunOutcome::final_regs`].
use kvm_ioctls::VcpuFd;

/// A compact register dump (registers read with KVM_GET_REGS / KVM_GET_SREGS).
pub fn dump_regs(vcpu: &VcpuFd) -> String {
    let mut s = match vcpu.get_regs() {
        Ok(r) => fmt_regs(&r),
        Err(e) => format!("regs unavailable: {e}\n"),
    };
    match vcpu.get_sregs() {
        Ok(r) => s.push_str(&fmt_sregs(&r)),
        Err(e) => s.push_str(&format!("sregs unavailable: {e}")),
    }
    s
}

/// General-purpose registers, one line per group.
pub fn fmt_regs(r: &kvm_bindings::kvm_regs) -> String {
    format!(
        "rip={:#018x} rsp={:#018x} rflags={:#x}\n\
         rax={:#018x} rbx={:#018x} rcx={:#018x} rdx={:#018x}\n\
         rsi={:#018x} rdi={:#018x} rbp={:#018x} r8={:#018x}\n\
         r9={:#018x} r10={:#018x} r11={:#018x} r12={:#018x}\n\
         r13={:#018x} r14={:#018x} r15={:#018x}\n",
        r.rip,
        r.rsp,
        r.rflags,
        r.rax,
        r.rbx,
        r.rcx,
        r.rdx,
        r.rsi,
        r.rdi,
        r.rbp,
        r.r8,
        r.r9,
        r.r10,
        r.r11,
        r.r12,
        r.r13,
        r.r14,
        r.r15
    )
}

/// Control registers, CS/SS and the descriptor tables.
pub fn fmt_sregs(r: &kvm_bindings::kvm_sregs) -> String {
    format!(
        "cr0={:#x} cr2={:#x} cr3={:#x} cr4={:#x} efer={:#x}\n\
         cs={:#x}(l={} db={} dpl={}) ss={:#x} gdt={:#x}/{:#x} idt={:#x}/{:#x}",
        r.cr0,
        r.cr2,
        r.cr3,
        r.cr4,
        r.efer,
        r.cs.selector,
        r.cs.l,
        r.cs.db,
        r.cs.dpl,
        r.ss.selector,
        r.gdt.base,
        r.gdt.limit,
        r.idt.base,
        r.idt.limit
    )
}
