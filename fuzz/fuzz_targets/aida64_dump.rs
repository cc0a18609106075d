//! AIDA64 / InstLatx64 CPUID dump import.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = probe::import::parse_aida(text, std::path::Path::new("fuzz.txt"));
        for line in text.lines() {
            let _ = probe::import::parse_aida_cpuid_line(line);
        }
    }
});
