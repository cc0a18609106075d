//! The guest's CPUID: the host's (KVM_GET_SUPPORTED_CPUID) with a documented mask, plus our
//! hypervisor leaves.
//!
//! Mask, and why. On this platform guest ring 0 runs through KVM's instruction emulator,
//! which lacks `cmpxchg16b`, the XSAVE family and the VEX/EVEX-encoded instructions (a Debian
//! kernel died with "emulation failure" on `lock cmpxchg16b` and on `xrstor`). So we hide:
//! - leaf 1 ECX: FMA (12), CX16 (13), PCID (17), XSAVE (26), OSXSAVE (27), AVX (28), F16C (29);
//!   and set the "hypervisor" bit (31). EBX bits 31:24 = the vCPU's APIC ID, bits 23:16 = vCPUs.
//! - leaf 7.0 EBX: AVX2 (5), INVPCID (10), AVX-512 F/DQ/IFMA/PF/ER/CD/BW/VL (16, 17, 21, 26,
//!   27, 28, 30, 31); ECX: AVX-512 VBMI (1), VBMI2 (6), GFNI (8), VAES (9), VPCLMULQDQ (10),
//!   VNNI (11), BITALG (12), VPOPCNTDQ (14); EDX: AVX-512 4VNNIW/4FMAPS (2, 3), AMX (22, 24, 25),
//!   AVX512_FP16 (23); leaf 7.1 EAX: AVX-VNNI (4), AVX512_BF16 (5).
//! - leaf 0xD (XSAVE state) removed; leaf 0x80000001 ECX: XOP (11), FMA4 (16).
//! - every host hypervisor leaf 0x40000000..=0x4FFFFFFF (KVM's own "KVMKVMKVM" paravirt
//!   leaves) removed, replaced by ours for the chosen [`Interface`].
//! - leaves 0xB / 0x1F EDX (x2APIC ID) = the vCPU's id.
use crate::hv_config::HvConfig;
use crate::Interface;
use kvm_bindings::kvm_cpuid_entry2;

use crate::abi::{hv, xen, CPUID_HYPERVISOR_FIRST, CPUID_HYPERVISOR_LAST};

// Kept at their old paths for callers of `hypervisor::cpuid::*`.
pub use crate::abi::hv::{
    CPUID_MAX_LEAF as HV_MAX_LEAF, INTERFACE_SIG as HV_INTERFACE_SIG, PRIV_EAX as HV_PRIV_EAX,
    PRIV_EBX as HV_PRIV_EBX, RECOMMEND_EAX as HV_RECOMMEND_EAX, SPIN_RETRIES as HV_SPIN_RETRIES,
    VENDOR as HV_VENDOR,
};
pub use crate::abi::xen::{VENDOR as XEN_VENDOR, VERSION as XEN_VERSION};

fn sig(s: &[u8; 12]) -> (u32, u32, u32) {
    let w = |i: usize| u32::from_le_bytes([s[i], s[i + 1], s[i + 2], s[i + 3]]);
    (w(0), w(4), w(8))
}

fn leaf(function: u32, eax: u32, ebx: u32, ecx: u32, edx: u32) -> kvm_cpuid_entry2 {
    kvm_cpuid_entry2 {
        function,
        eax,
        ebx,
        ecx,
        edx,
        ..Default::default()
    }
}

fn clear(v: &mut u32, bits: &[u32]) {
    for b in bits {
        *v &= !(1 << b);
    }
}

/// Builds the CPUID table for vCPU `vcpu` of `cpus` from the host's supported entries; `hv`
/// gives the Hyper-V vendor and privilege leaves.
pub fn build(
    host: &[kvm_cpuid_entry2],
    iface: Interface,
    hv: &HvConfig,
    vcpu: u8,
    cpus: u8,
) -> Vec<kvm_cpuid_entry2> {
    let mut out: Vec<kvm_cpuid_entry2> = host
        .iter()
        .filter(|e| {
            !(CPUID_HYPERVISOR_FIRST..=CPUID_HYPERVISOR_LAST).contains(&e.function)
                && e.function != 0xD
        })
        .copied()
        .collect();
    for e in out.iter_mut() {
        match (e.function, e.index) {
            (1, _) => {
                clear(&mut e.ecx, &[12, 13, 17, 26, 27, 28, 29]);
                e.ecx |= 1 << 31;
                e.ebx = (e.ebx & 0x0000_ffff) | (u32::from(vcpu) << 24) | (u32::from(cpus) << 16);
            }
            (7, 0) => {
                clear(&mut e.ebx, &[5, 10, 16, 17, 21, 26, 27, 28, 30, 31]);
                clear(&mut e.ecx, &[1, 6, 8, 9, 10, 11, 12, 14]);
                clear(&mut e.edx, &[2, 3, 22, 23, 24, 25]);
            }
            (7, 1) => clear(&mut e.eax, &[4, 5]),
            (0xB, _) | (0x1F, _) => e.edx = u32::from(vcpu),
            (0x8000_0001, _) => clear(&mut e.ecx, &[11, 16]),
            _ => {}
        }
    }
    out.extend(hypervisor_leaves(iface, hv));
    out
}

/// Our hypervisor leaves for `iface` (pure; see the module docs and hyperv/xen modules);
/// the Hyper-V vendor (leaf 0x40000000), privileges and features (0x40000003) and
/// recommendations (0x40000004) come from `cfg`.
pub fn hypervisor_leaves(iface: Interface, cfg: &HvConfig) -> Vec<kvm_cpuid_entry2> {
    let mut v = Vec::new();
    if iface.has_hyperv() {
        let f = &cfg.features;
        let (b, c, d) = sig(&cfg.vendor);
        v.push(leaf(hv::CPUID_VENDOR_AND_MAX, hv::CPUID_MAX_LEAF, b, c, d));
        v.push(leaf(hv::CPUID_INTERFACE, hv::INTERFACE_SIG, 0, 0, 0));
        // Build 1, version 10.0, service pack 0.
        v.push(leaf(
            hv::CPUID_VERSION,
            hv::VERSION_BUILD,
            hv::VERSION_MAJOR_MINOR,
            0,
            0,
        ));
        v.push(leaf(
            hv::CPUID_FEATURES,
            f.priv_eax,
            f.priv_ebx,
            0,
            f.features_edx,
        ));
        v.push(leaf(
            hv::CPUID_ENLIGHTENMENTS,
            f.recommend_eax,
            f.recommend_ebx,
            0,
            0,
        ));
        // Limits: virtual processors, logical processors.
        v.push(leaf(hv::CPUID_LIMITS, cfg.limits.0, cfg.limits.1, 0, 0));
        for f in hv::CPUID_FIRST_ZERO_LEAF..=hv::CPUID_MAX_LEAF {
            v.push(leaf(f, 0, 0, 0, 0));
        }
    }
    if let Some((base, msr)) = iface.xen_base() {
        let (b, c, d) = sig(xen::VENDOR);
        let hypercall = base + xen::CPUID_HYPERCALL_OFFSET;
        let hvm = base + xen::CPUID_HVM_OFFSET;
        v.push(leaf(base, hvm, b, c, d));
        v.push(leaf(
            base + xen::CPUID_VERSION_OFFSET,
            xen::VERSION,
            0,
            0,
            0,
        ));
        v.push(leaf(hypercall, xen::HYPERCALL_PAGES, msr, 0, 0));
        v.push(leaf(base + xen::CPUID_TIME_OFFSET, 0, 0, 0, 0));
        v.push(leaf(hvm, xen::XEN_HVM_CPUID_UPCALL_VECTOR, 0, 0, 0));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(v: &[kvm_cpuid_entry2], f: u32) -> Option<kvm_cpuid_entry2> {
        v.iter().find(|e| e.function == f).copied()
    }

    fn host() -> Vec<kvm_cpuid_entry2> {
        vec![
            leaf(1, 0, 0x0000_0800, 0xffff_ffff, 0xffff_ffff),
            kvm_cpuid_entry2 {
                function: 7,
                index: 0,
                ebx: 0xffff_ffff,
                ecx: 0xffff_ffff,
                edx: 0xffff_ffff,
                ..Default::default()
            },
            leaf(0xD, 7, 0, 0, 0),
            leaf(0x4000_0000, 0x4000_0001, 0x4b4d564b, 0x564b4d56, 0x4d),
            leaf(0x4000_0001, 0xffff, 0, 0, 0),
            leaf(0x8000_0001, 0, 0, 0xffff_ffff, 0),
        ]
    }

    #[test]
    fn mask_hides_what_the_emulator_cannot_run() {
        let v = build(&host(), Interface::None, &HvConfig::default(), 2, 4);
        let l1 = find(&v, 1).unwrap();
        for bit in [12, 13, 26, 27, 28, 29] {
            assert_eq!(l1.ecx & (1 << bit), 0, "leaf 1 ecx bit {bit}");
        }
        assert_ne!(l1.ecx & (1 << 31), 0, "hypervisor bit");
        assert_eq!(l1.ebx >> 24, 2);
        assert_eq!((l1.ebx >> 16) & 0xff, 4);
        let l7 = find(&v, 7).unwrap();
        assert_eq!(l7.ebx & (1 << 5), 0, "avx2");
        assert_eq!(l7.ebx & (1 << 16), 0, "avx512f");
        assert_ne!(l7.ebx & 1, 0, "fsgsbase kept");
        assert!(find(&v, 0xD).is_none());
        assert!(find(&v, 0x4000_0000).is_none(), "host KVM leaves hidden");
        assert_eq!(find(&v, 0x8000_0001).unwrap().ecx & (1 << 16), 0);
    }

    #[test]
    fn hyperv_leaves() {
        let v = build(&host(), Interface::HyperV, &HvConfig::default(), 0, 1);
        let l0 = find(&v, 0x4000_0000).unwrap();
        assert!(l0.eax >= 0x4000_0005);
        let l1 = find(&v, 0x4000_0001).unwrap();
        assert_eq!(l1.eax, 0x3123_7648);
        let l3 = find(&v, 0x4000_0003).unwrap();
        assert_eq!(l3.eax & 0x62, 0x62);
        assert_eq!(v.iter().filter(|e| e.function == 0x4000_0000).count(), 1);
    }

    /// Linux's `ms_hyperv_platform()` (arch/x86/kernel/cpu/mshyperv.c): the hypervisor bit,
    /// vendor "Microsoft Hv" with 0x40000005 <= max leaf <= 0x4000ffff, then the HYPERCALL
    /// and VP_INDEX MSRs available in leaf 0x40000003 EAX.
    fn ms_hyperv_platform(v: &[kvm_cpuid_entry2]) -> bool {
        let Some(l1) = find(v, 1) else { return false };
        if l1.ecx & (1 << 31) == 0 {
            return false;
        }
        let Some(l0) = find(v, 0x4000_0000) else {
            return false;
        };
        let mut sig = [0u8; 12];
        for (i, r) in [l0.ebx, l0.ecx, l0.edx].iter().enumerate() {
            sig[i * 4..i * 4 + 4].copy_from_slice(&r.to_le_bytes());
        }
        if !(0x4000_0005..=0x4000_ffff).contains(&l0.eax) || &sig != b"Microsoft Hv" {
            return false;
        }
        let l3 = find(v, 0x4000_0003).map(|e| e.eax).unwrap_or(0);
        l3 & (1 << 5) != 0 && l3 & (1 << 6) != 0
    }

    #[test]
    fn linux_detects_the_default_vendor() {
        let v = build(&host(), Interface::HyperV, &HvConfig::default(), 0, 1);
        assert!(ms_hyperv_platform(&v));
        let custom = HvConfig {
            vendor: crate::hv_config::parse_vendor("hvcertHyperV").unwrap(),
            ..HvConfig::default()
        };
        let v = build(&host(), Interface::HyperV, &custom, 0, 1);
        assert!(
            !ms_hyperv_platform(&v),
            "another vendor is not Hyper-V to Linux"
        );
        assert_eq!(sig(b"hvcertHyperV").0, find(&v, 0x4000_0000).unwrap().ebx);
        let limited = HvConfig {
            limits: (4, 8),
            ..HvConfig::default()
        };
        let l5 = find(
            &build(&host(), Interface::HyperV, &limited, 0, 1),
            0x4000_0005,
        )
        .unwrap();
        assert_eq!(
            (l5.eax, l5.ebx),
            (4, 8),
            "leaf 0x40000005 from the configuration"
        );
        let l5 = find(&v, 0x4000_0005).unwrap();
        assert_eq!((l5.eax, l5.ebx), (hv::MAX_PROCESSORS, hv::MAX_PROCESSORS));
        let mut no_vp = HvConfig::default();
        no_vp.features.set("AccessVpIndex", false).unwrap();
        let v = build(&host(), Interface::HyperV, &no_vp, 0, 1);
        assert!(!ms_hyperv_platform(&v), "VP_INDEX privilege missing");
        let l3 = find(&v, 0x4000_0003).unwrap();
        assert_eq!(l3.eax, hv::PRIV_EAX & !(1 << 6));
        assert_eq!((l3.ebx, l3.edx), (hv::PRIV_EBX, hv::FEAT_EDX));
    }

    #[test]
    fn xen_leaves_move_when_both() {
        let v = hypervisor_leaves(Interface::Xen, &HvConfig::default());
        let l0 = find(&v, 0x4000_0000).unwrap();
        assert_eq!((l0.ebx, l0.ecx, l0.edx), sig(b"XenVMMXenVMM"));
        assert!(l0.eax >= 0x4000_0002);
        assert_eq!(find(&v, 0x4000_0002).unwrap().ebx, 0x4000_0000);
        let v = hypervisor_leaves(Interface::Both, &HvConfig::default());
        assert_eq!(find(&v, 0x4000_0001).unwrap().eax, HV_INTERFACE_SIG);
        let x = find(&v, 0x4000_0100).unwrap();
        assert_eq!((x.ebx, x.ecx, x.edx), sig(b"XenVMMXenVMM"));
        assert_eq!(x.eax, 0x4000_0104);
        assert_eq!(find(&v, 0x4000_0101).unwrap().eax, XEN_VERSION);
        // base+4: HVMOP_set_evtchn_upcall_vector offered (Linux's per-vCPU upcall).
        assert_eq!(find(&v, 0x4000_0104).unwrap().eax, 1 << 6);
        assert_eq!(find(&v, 0x4000_0102).unwrap().ebx, 0x4000_0200);
        assert!(hypervisor_leaves(Interface::None, &HvConfig::default()).is_empty());
    }
}
