//! `cpuid -r` dump import (also the snapshot's cpuid.txt).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = probe::import::parse_cpuid_raw(text, std::path::Path::new("fuzz.txt"));
    }
});
