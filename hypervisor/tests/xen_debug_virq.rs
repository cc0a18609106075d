//! VIRQ_DEBUG raised from the host (`Vm::xen_debug_key`, Xen's 'q' debug key): the guest
//! binds it, polls its port, and finds it pending; without a press the poll times out.
mod common;
#[path = "guests/mod.rs"]
mod guests;

use common::kvm_or_skip;
use hypervisor::{Interface, Vm, VmConfig, VmEnd};
use std::time::Duration;

fn run(press: bool) -> (VmEnd, usize) {
    let vm = Vm::new(VmConfig {
        kernel: guests::guest("xen_debug_virq"),
        memory_mib: 32,
        interface: Interface::Xen,
        timeout: Duration::from_secs(30),
        ..Default::default()
    })
    .expect("Vm::new");
    let key = vm.xen_debug_key();
    let presser = std::thread::spawn(move || {
        let mut raised = 0;
        while let Some(ports) = key.press().filter(|_| press) {
            raised += ports.len();
            std::thread::sleep(Duration::from_millis(20));
        }
        raised
    });
    let end = vm.run(Box::new(std::io::sink())).expect("run").end;
    (end, presser.join().expect("presser"))
}

#[test]
fn debug_key_raises_virq_debug() {
    if !kvm_or_skip("debug_key_raises_virq_debug") {
        return;
    }
    let (end, raised) = run(true);
    assert_eq!(end, VmEnd::Status(0));
    assert!(raised > 0, "no press found VIRQ_DEBUG bound");
}

#[test]
fn without_a_press_the_poll_times_out() {
    if !kvm_or_skip("without_a_press_the_poll_times_out") {
        return;
    }
    assert_eq!(run(false).0, VmEnd::Status(4));
}
