//! Wiring virtio devices into a KVM VM: placement, ioeventfd/irqfd registration, limits.

mod virtio_util;

use hypervisor::bus::MmioBus;
use hypervisor::virtio::{attach, DiskBus, DiskConfig, Error, NetConfig, MMIO_BASE};
use virtio_util::*;

fn kvm_vm() -> Option<kvm_ioctls::VmFd> {
    let required = std::env::var_os("HVCERT_REQUIRE_KVM").is_some();
    match kvm_ioctls::Kvm::new() {
        Ok(kvm) => {
            let vm = kvm.create_vm().expect("KVM_CREATE_VM");
            vm.create_irq_chip().expect("KVM_CREATE_IRQCHIP");
            Some(vm)
        }
        Err(e) if !required && !std::path::Path::new("/dev/kvm").exists() => {
            eprintln!("skipping: /dev/kvm absent ({e})");
            None
        }
        Err(e) => panic!("cannot open /dev/kvm: {e}"),
    }
}

#[test]
fn attach_places_and_wires_devices() {
    let Some(vm) = kvm_vm() else { return };
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
    let Some(vm) = kvm_vm() else { return };
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
    let vm2 = kvm_vm().unwrap();
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
