//! The hardware compatibility list (TOML) parser.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = probe::hcl::parse(text, "fuzz.toml");
    }
});
