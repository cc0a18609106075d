//! A VM with its disks and NICs on the VMBus (`VmConfig::vmbus`): the Hyper-V interface is
//! required, the limits count VMBus devices, the devices leave virtio-mmio (no
//! `virtio_mmio.device=` entries, no LNRO0005 in the DSDT), the DSDT gains the VMBUS device
//! Linux's hv_vmbus binds to, and the VM runs and ends cleanly with the VMBus worker.
#[path = "common/mod.rs"]
mod common;
#[path = "guests/mod.rs"]
mod guests;

use common::{kvm_or_skip, scratch_dir};
use hypervisor::vmbus::VmbusConfig;
use hypervisor::{Interface, Vm, VmConfig, VmEnd};
use std::time::Duration;
use vm_memory::{Bytes, GuestAddress};

fn config(img: &std::path::Path, interface: Interface) -> VmConfig {
    VmConfig::builder(guests::guest("hello"))
        .memory_mib(32)
        .interface(interface)
        .timeout(Duration::from_secs(20))
        .cmdline("console=ttyS0")
        .disk(img.to_string_lossy().parse().unwrap())
        .net("loopback".parse().unwrap())
        .vmbus(VmbusConfig {
            disks: true,
            nics: true,
        })
        .build()
}

#[test]
fn vmbus_devices_need_the_hyperv_interface_and_respect_the_limits() {
    if !kvm_or_skip("vmbus_devices_need_the_hyperv_interface_and_respect_the_limits") {
        return;
    }
    let dir = scratch_dir("vmbus-cfg");
    let img = dir.path().join("d.img");
    std::fs::write(&img, vec![0u8; 1 << 20]).unwrap();
    for i in [Interface::Xen, Interface::None] {
        let Err(e) = Vm::new(config(&img, i)) else {
            panic!("VMBus without Hyper-V accepted")
        };
        assert!(e.to_string().contains("Hyper-V interface"), "{e}");
    }
    let mut c = config(&img, Interface::HyperV);
    c.disks.push(c.disks[0].clone());
    c.max_disks = 1;
    let Err(e) = Vm::new(c) else {
        panic!("two disks accepted with max_disks 1")
    };
    assert!(e.to_string().contains("max_disks"), "{e}");
}

#[test]
fn vmbus_devices_leave_virtio_and_the_dsdt_gets_vmbus() {
    if !kvm_or_skip("vmbus_devices_leave_virtio_and_the_dsdt_gets_vmbus") {
        return;
    }
    let dir = scratch_dir("vmbus-vm");
    let img = dir.path().join("d.img");
    std::fs::write(&img, vec![0u8; 1 << 20]).unwrap();
    let vm = Vm::new(config(&img, Interface::HyperV)).expect("Vm::new");
    let mem = vm.memory();
    let mut area = vec![0u8; 0x2000];
    mem.read_slice(&mut area, GuestAddress(hypervisor::acpi::RSDP_ADDR))
        .unwrap();
    let count = |pat: &[u8]| area.windows(pat.len()).filter(|w| *w == pat).count();
    assert_eq!(count(b"LNRO0005"), 0, "no virtio-mmio device");
    assert_eq!(count(b"VMBUS\0"), 1, "the VMBus device");
    let mut cmd = vec![0u8; 256];
    mem.read_slice(&mut cmd, GuestAddress(0x20000)).unwrap();
    assert!(!String::from_utf8_lossy(&cmd).contains("virtio_mmio"));
    let r = vm.run(Box::new(std::io::sink())).expect("run");
    assert_eq!(r.end, VmEnd::Status(0x2a), "hello exits with 0x2a");
}
