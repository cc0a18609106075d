//! The waivers file (TOML) parser, and applying the waivers to a report.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(w) = reports::Waivers::parse(text) {
            let today = reports::Date::new(2026, 12, 6).expect("date");
            let _ = w.find("suite", "case", today);
            let _ = reports::waivers::glob_match(text, "suite/case");
        }
    }
});
