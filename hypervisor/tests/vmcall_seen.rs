//! Xen hypercalls made with VMCALL (Linux since the XSA-466 fixes: no hypercall page): the
//! VMM answers them (`hypercall::xen_vmcall_on_kick`), with the Xen interface only.
mod common;
#[path = "guests/mod.rs"]
mod guests;

use common::kvm_or_skip;
use hypervisor::{Interface, Vm, VmConfig, VmEnd};
use std::time::Duration;

fn run(interface: Interface, timeout: Duration) -> VmEnd {
    run_guest("vmcall_probe", interface, timeout)
}

fn run_guest(name: &str, interface: Interface, timeout: Duration) -> VmEnd {
    let vm = Vm::new(VmConfig {
        kernel: guests::guest(name),
        memory_mib: 32,
        interface,
        timeout,
        ..Default::default()
    })
    .expect("Vm::new");
    vm.run(Box::new(std::io::sink())).expect("run").end
}

#[test]
fn vmcall_is_a_xen_hypercall() {
    if !kvm_or_skip("vmcall_is_a_xen_hypercall") {
        return;
    }
    assert_eq!(
        run(Interface::Xen, Duration::from_secs(30)),
        VmEnd::Status(0)
    );
}

/// Without the Xen interface the VMM leaves VMCALL to KVM: whatever KVM does (this host:
/// the vCPU never gets past it; a hardware host: -KVM_ENOSYS in rax, check 1 fails), the
/// guest does not get its Xen answers.
#[test]
fn vmcall_without_xen_is_not_answered() {
    if !kvm_or_skip("vmcall_without_xen_is_not_answered") {
        return;
    }
    let end = run(Interface::None, Duration::from_secs(2));
    assert!(
        matches!(end, VmEnd::Timeout | VmEnd::Status(1)),
        "unexpected end {end:?}"
    );
}

/// 300 calls from one VMCALL: with the breakpoint on it (hypercall::watch_vmcall) they take
/// ~20 ms here; waiting for the watchdog's kick each (<= 10 ms) would take ~3 s.
#[test]
fn vmcall_breakpoint_makes_calls_exits() {
    if !kvm_or_skip("vmcall_breakpoint_makes_calls_exits") {
        return;
    }
    assert_eq!(
        run_guest("vmcall_loop", Interface::Xen, Duration::from_millis(2500)),
        VmEnd::Status(0)
    );
}
