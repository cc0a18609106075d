//! certify's guest profile (TOML) parser and validation.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(p) = certify::profile::Profile::parse(text, std::path::Path::new("fuzz.toml")) {
            let _ = p.guest_os_id();
        }
    }
});
