//! What CPUID a guest sees on this host, ring 0 and ring 3, against the table the VMM gave
//! KVM_SET_CPUID2 (issue 11; findings in docs/stock-kernel-nested.md).
mod common;
#[path = "guests/mod.rs"]
mod guests;

use common::{kvm_or_skip, Capture};

use hypervisor::{Interface, Vm, VmConfig, VmEnd};
use std::time::Duration;

/// The value printed for `tag` (e.g. "r0 1.0 ecx").
fn value(text: &str, tag: &str) -> u64 {
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{tag}=")))
        .unwrap_or_else(|| panic!("no {tag} in {text}"));
    u64::from_str_radix(line.trim(), 16).unwrap()
}

#[test]
fn ring0_cpuid_follows_the_table() {
    if !kvm_or_skip("ring0_cpuid_follows_the_table") {
        return;
    }
    let out = Capture::default();
    let vm = Vm::new(VmConfig {
        kernel: guests::guest("cpuid_probe"),
        memory_mib: 32,
        interface: Interface::HyperV,
        timeout: Duration::from_secs(30),
        ..Default::default()
    })
    .expect("Vm::new");
    let r = vm.run(Box::new(out.clone())).expect("run");
    let text = String::from_utf8_lossy(&out.0.lock().unwrap()).into_owned();
    eprintln!("{text}");
    assert_eq!(r.end, VmEnd::Status(0), "{text}");
    // Both rings see our hypervisor leaf (the default "Microsoft Hv": EBX = "Micr")...
    assert_eq!(
        value(&text, "r0 40000000.0 ebx"),
        0x7263_694d,
        "ring-0 hypervisor leaf"
    );
    assert_eq!(
        value(&text, "r3 40000000.0 ebx"),
        0x7263_694d,
        "ring-3 hypervisor leaf"
    );
    // ...and the same feature leaves: both are answered from KVM's table, ring 3 included.
    for tag in ["1.0 ecx", "7.0 ebx", "7.0 ecx", "d.0 eax", "d.1 eax"] {
        assert_eq!(
            value(&text, &format!("r0 {tag}")),
            value(&text, &format!("r3 {tag}")),
            "{tag}: ring 0 vs ring 3"
        );
    }
    // What the guest sees is what KVM_GET_CPUID2 reports (not necessarily what we set: on
    // the kvm_pvm host the feature leaves are the host's, see docs/stock-kernel-nested.md).
    let back = table_after_set(Interface::HyperV);
    let l1 = back.iter().find(|e| e.function == 1).unwrap();
    // (OSXSAVE, bit 27, follows the guest's CR4, which this guest leaves clear.)
    assert_eq!(
        value(&text, "r0 1.0 ecx"),
        u64::from(l1.ecx & !(1 << 27)),
        "leaf 1 ECX"
    );
}

/// KVM_GET_CPUID2 right after KVM_SET_CPUID2 of the VMM's table (`cpuid::build`).
fn table_after_set(iface: Interface) -> Vec<kvm_bindings::kvm_cpuid_entry2> {
    let kvm = kvm_ioctls::Kvm::new().unwrap();
    let host = kvm
        .get_supported_cpuid(kvm_bindings::KVM_MAX_CPUID_ENTRIES)
        .unwrap();
    let entries = hypervisor::cpuid::build(
        host.as_slice(),
        iface,
        &hypervisor::HvConfig::default(),
        0,
        1,
    );
    let vm = kvm.create_vm().unwrap();
    vm.create_irq_chip().unwrap();
    let vcpu = vm.create_vcpu(0).unwrap();
    let table = kvm_bindings::CpuId::from_entries(&entries).unwrap();
    vcpu.set_cpuid2(&table).unwrap();
    let back = vcpu
        .get_cpuid2(kvm_bindings::KVM_MAX_CPUID_ENTRIES)
        .unwrap();
    if std::env::var_os("HVCERT_CPUID_DUMP").is_some() {
        for (name, v) in [("set", &entries[..]), ("get", back.as_slice())] {
            for e in v {
                eprintln!(
                    "{name} {:08x}.{} flags={} {:08x} {:08x} {:08x} {:08x}",
                    e.function, e.index, e.flags, e.eax, e.ebx, e.ecx, e.edx
                );
            }
        }
    }
    back.as_slice().to_vec()
}

/// KVM keeps the hypervisor leaves we set (on every host); whether it keeps the feature mask
/// is printed (on the kvm_pvm host it does not: docs/stock-kernel-nested.md).
#[test]
fn kvm_keeps_our_hypervisor_leaves() {
    if !kvm_or_skip("kvm_keeps_our_hypervisor_leaves") {
        return;
    }
    let back = table_after_set(Interface::HyperV);
    let find = |f: u32| {
        back.iter()
            .find(|e| e.function == f && e.index == 0)
            .copied()
    };
    let l0 = find(0x4000_0000).expect("leaf 0x40000000 kept");
    assert_eq!(l0.ebx, 0x7263_694d, "Microsoft Hv signature");
    let l1 = find(1).unwrap();
    eprintln!(
        "after KVM_SET_CPUID2: leaf 1 ECX {:#x} (XSAVE {}), leaf 0xD {}",
        l1.ecx,
        l1.ecx >> 26 & 1,
        if find(0xD).is_some() {
            "present"
        } else {
            "absent"
        }
    );
}
