//! The report JSON reader (schema check, validation, summary).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(r) = reports::parse(text, std::path::Path::new("fuzz.json")) {
            let _ = r.validate();
        }
    }
});
