//! Whether a ring-3 `syscall` reaches the guest's ring-0 handler (issue 11: on the nested
//! kvm_pvm host it does not; docs/stock-kernel-nested.md, "User space").
mod common;
#[path = "guests/mod.rs"]
mod guests;

use common::{kvm_or_skip, Capture};

use hypervisor::{Interface, Vm, VmConfig, VmEnd};
use std::time::Duration;

#[test]
fn ring3_syscall() {
    if !kvm_or_skip("ring3_syscall") {
        return;
    }
    let out = Capture::default();
    let vm = Vm::new(VmConfig {
        kernel: guests::guest("syscall_probe"),
        memory_mib: 32,
        interface: Interface::None,
        timeout: Duration::from_secs(30),
        ..Default::default()
    })
    .expect("Vm::new");
    let r = vm.run(Box::new(out.clone())).expect("run");
    let text = String::from_utf8_lossy(&out.0.lock().unwrap()).into_owned();
    eprintln!("{text}\nend: {:?}", r.end);
    // Either outcome is a fact about the host, asserted in full: a working `syscall`
    // (hardware-assisted KVM) returns through ring 0 with RCX = the address after it; on
    // the kvm_pvm host the code at LSTAR runs at hardware CPL 3 (`mov %cs` reads 0x33, the
    // host's own user code selector: PVM's native "guest supervisor" mode).
    match r.end {
        VmEnd::Status(0) => assert!(text.contains("reached ring 0, rcx="), "{text}"),
        VmEnd::Status(4) => assert!(
            text.contains("at LSTAR but CPL 3, cs=00000000000000"),
            "{text}"
        ),
        ref e => panic!("syscall took an exception or the guest failed: {e:?}\n{text}"),
    }
}
