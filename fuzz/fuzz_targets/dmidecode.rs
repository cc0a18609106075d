//! dmidecode text import.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = probe::import::parse_dmidecode(text, std::path::Path::new("fuzz.txt"));
    }
});
