//! The ACPI tables every VM gets (hypervisor::acpi, issue 11), seen from guest memory: the
//! PVH start info points at the RSDP, the DSDT lists each virtio-mmio device, and our own
//! PVH guest still boots with `virtio_mmio.device=` on its command line.
#[path = "common/mod.rs"]
mod common;
#[path = "guests/mod.rs"]
mod guests;

use common::{kvm_or_skip, scratch_dir};
use hypervisor::{Interface, Vm, VmConfig, VmEnd};
use std::time::Duration;
use vm_memory::{Bytes, GuestAddress};

#[test]
fn pvh_guest_gets_the_rsdp_and_a_dsdt_with_each_virtio_device() {
    if !kvm_or_skip("pvh_guest_gets_the_rsdp_and_a_dsdt_with_each_virtio_device") {
        return;
    }
    let dir = scratch_dir("acpi");
    let img = dir.path().join("d.img");
    std::fs::write(&img, vec![0u8; 1 << 20]).unwrap();
    let c = VmConfig::builder(guests::guest("hello"))
        .memory_mib(32)
        .interface(Interface::None)
        .timeout(Duration::from_secs(20))
        .cmdline("console=ttyS0")
        .disk(img.to_string_lossy().parse().unwrap())
        .net("loopback".parse().unwrap())
        .build();
    let vm = Vm::new(c).expect("Vm::new");
    let mem = vm.memory();
    // hvm_start_info.rsdp_paddr (offset 32) -> "RSD PTR " at 0xe0000.
    let rsdp: u64 = mem.read_obj(GuestAddress(0x6000 + 32)).unwrap();
    assert_eq!(rsdp, hypervisor::acpi::RSDP_ADDR);
    let mut sig = [0u8; 8];
    mem.read_slice(&mut sig, GuestAddress(rsdp)).unwrap();
    assert_eq!(&sig, b"RSD PTR ");
    // The BIOS area holds one LNRO0005 (virtio-mmio) device per window: disk + NIC.
    let mut area = vec![0u8; 0x2000];
    mem.read_slice(&mut area, GuestAddress(rsdp)).unwrap();
    let n = area.windows(8).filter(|w| *w == b"LNRO0005").count();
    assert_eq!(n, 2, "virtio-mmio devices in the DSDT");
    // The command line still announces them, and our guest still runs to its status.
    let mut cmd = vec![0u8; 256];
    mem.read_slice(&mut cmd, GuestAddress(0x20000)).unwrap();
    let cmd = String::from_utf8_lossy(&cmd);
    assert!(
        cmd.contains("virtio_mmio.device=4K@0xd0000000:5 virtio_mmio.device=4K@0xd0001000:6"),
        "{cmd}"
    );
    let r = vm.run(Box::new(std::io::sink())).expect("run");
    assert_eq!(r.end, VmEnd::Status(0x2a), "hello exits with 0x2a");
}
