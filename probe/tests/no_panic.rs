//! Whatever a dump or list contains, the parsers return a value or an error: never a panic.
use std::path::Path;

use proptest::prelude::*;

fn lines() -> impl Strategy<Value = String> {
    // Lines built from the tokens the parsers look for, mixed with noise.
    let token = prop_oneof![
        Just("CPUID 00000001: ".to_string()),
        Just("0000000F-756E6547-6C65746E-49656E69".to_string()),
        Just("CPUID 00000000\t0000000D-756E6547-6C65746E-49656E69".to_string()),
        Just("CPUID 00000004 3C004122 01C0003F 0000003F".to_string()),
        Just("CPU#001 AffMask: 0x0000000000000002 ".to_string()),
        Just("[SL 0".to_string()),
        Just("]".to_string()),
        Just("------[ MSR Registers ]------".to_string()),
        Just("MSR 0000048B: ".to_string()),
        Just("< FAILED >".to_string()),
        Just("   0x00000001 0x00: eax=0x1 ebx=0x2 ecx=0x3 edx=0x4".to_string()),
        Just("CPU 0:".to_string()),
        Just("Handle 0x0400, DMI type 4, 42 bytes".to_string()),
        Just("\tSignature: Type 0, Family 6, Model 63, Stepping 2".to_string()),
        Just("\tCharacteristics:".to_string()),
        Just("\t\tEnhanced Virtualization".to_string()),
        Just("[[server]]\nid = \"a\"".to_string()),
        Just("models = [[1, 0]]".to_string()),
        Just("é".to_string()),
        "[ -~]{0,12}".prop_map(|s| s),
    ];
    prop::collection::vec(token, 0..24).prop_map(|v| v.join("\n"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn parsers_never_panic(text in lines()) {
        let p = Path::new("fuzz.txt");
        let _ = probe::import::parse_aida(&text, p);
        for line in text.lines() {
            let _ = probe::import::parse_aida_cpuid_line(line);
        }
        let _ = probe::import::parse_cpuid_raw(&text, p);
        let _ = probe::import::parse_dmidecode(&text, p);
        let _ = probe::hcl::parse(&text, "fuzz.toml");
        let _ = probe::live::parse_cpuinfo(&text);
    }

    #[test]
    fn any_cpuid_table_evaluates(leaves in prop::collection::vec((prop_oneof![0u32..0x20, 0x4000_0000u32..0x4000_0004, 0x8000_0000u32..0x8000_0010], any::<[u32; 4]>()), 0..40)) {
        let mut t = probe::raw::CpuidTable::default();
        for (leaf, regs) in leaves {
            t.insert(leaf, 0, regs);
        }
        let mut raw = probe::RawHost::empty("fuzz");
        raw.cpuid = probe::raw::Avail::Known(t);
        let r = probe::evaluate(&raw, &[probe::hcl::sample().unwrap()]);
        prop_assert!(r.verdict.score <= 100);
        let _ = r.to_table();
    }
}
