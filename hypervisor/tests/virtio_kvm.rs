//! Wiring virtio devices into a KVM VM: placement, ioeventfd/irqfd registration, limits.

mod common;
mod virtio_util;

use hypervisor::bus::MmioBus;
use hypervisor::virtio::{attach, DiskBus, DiskConfig, Error, NetConfig, MMIO_BASE};
use virtio_util::*;

/// A VM with an in-kernel irqchip, or `None` when the test is skipped (see
/// [`common::kvm_or_skip`]).
fn kvm_vm(test: &str) -> Option<kvm_ioctls::VmFd> {
    if !common::kvm_or_skip(test) {
        return None;
    }
    let kvm = kvm_ioctls::Kvm::new().expect("open /dev/kvm");
    let vm = kvm.create_vm().expect("KVM_CREATE_VM");
    vm.create_irq_chip().expect("KVM_CREATE_IRQCHIP");
    Some(vm)
}

#[test]
fn attach_places_and_wires_devices() {
    let Some(vm) = kvm_vm("attach_places_and_wires_devices") else {
        return;
    };
    let mem = memory();
    let img = TempFile::new("attach", &vec![0u8; 8192]);
    let disk = DiskConfig {
        path: img.0.clone(),
        read_only: true,
    };
    let mut bus = MmioBus::new();
    let devs = attach(
        &vm,
        &mem,
        &mut bus,
        &[disk],
        DiskBus::Blk,
        &[NetConfig::Loopback],
        1,
        1,
    )
    .unwrap();
    let cmdline = bus.cmdline_entries();
    assert_eq!(
        bus.reserved(),
        vec![(MMIO_BASE, 0x1000), (MMIO_BASE + 0x1000, 0x1000)]
    );
    assert_eq!(devs.len(), 2);
    assert_eq!(
        (devs[0].base, devs[0].gsi, devs[0].kind),
        (MMIO_BASE, 5, "blk")
    );
    assert_eq!(
        (devs[1].base, devs[1].gsi, devs[1].kind),
        (MMIO_BASE + 0x1000, 6, "net")
    );
    assert!(devs[1].net_stats.is_some());
    assert_eq!(
        cmdline,
        vec![
            "virtio_mmio.device=4K@0xd0000000:5".to_string(),
            "virtio_mmio.device=4K@0xd0001000:6".to_string()
        ]
    );
}

#[test]
fn attach_refuses_more_devices_than_allowed() {
    let Some(vm) = kvm_vm("attach_refuses_more_devices_than_allowed") else {
        return;
    };
    let mem = memory();
    let img = TempFile::new("limit", &vec![0u8; 4096]);
    let disk = DiskConfig {
        path: img.0.clone(),
        read_only: false,
    };
    let err = attach(
        &vm,
        &mem,
        &mut MmioBus::new(),
        &[disk.clone(), disk.clone()],
        DiskBus::Scsi,
        &[],
        1,
        1,
    )
    .err()
    .expect("refused");
    assert!(
        matches!(
            err,
            Error::TooManyDevices {
                requested: 2,
                max: 1,
                ..
            }
        ),
        "{err}"
    );
    let nets = [NetConfig::Loopback, NetConfig::Loopback];
    let err = attach(
        &vm,
        &mem,
        &mut MmioBus::new(),
        &[],
        DiskBus::Blk,
        &nets,
        1,
        1,
    )
    .err()
    .expect("refused");
    assert!(err.to_string().contains("network adapters"), "{err}");
    // A SCSI controller counts as the storage controller too; raised limits are honoured.
    let vm2 = kvm_vm("attach_refuses_more_devices_than_allowed").unwrap();
    let mut bus = MmioBus::new();
    let devs = attach(&vm2, &mem, &mut bus, &[disk], DiskBus::Scsi, &[], 1, 1).unwrap();
    assert_eq!((devs[0].kind, devs[0].gsi), ("scsi", 5));
    let devs = attach(
        &vm,
        &mem,
        &mut MmioBus::new(),
        &[],
        DiskBus::Blk,
        &nets,
        1,
        2,
    )
    .unwrap();
    assert_eq!(devs.len(), 2);
}
