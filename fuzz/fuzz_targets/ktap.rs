//! The KTAP parser over a guest's console (any bytes: the console is the guest's).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let doc = certify::ktap::parse(&text);
    if let Some(r) = doc.results.first() {
        let _ = doc.result(&r.name);
    }
});
