//! A host snapshot directory (host.json + cpuid.txt), read with `probe::snapshot::read`.
//! The input is host.json, optionally followed by `\n----cpuid.txt----\n` and cpuid.txt.
#![no_main]
use std::sync::OnceLock;

const SPLIT: &[u8] = b"\n----cpuid.txt----\n";

fn dir() -> &'static std::path::Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("scratch dir"))
        .path()
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let d = dir();
    let (host, cpuid) = match data.windows(SPLIT.len()).position(|w| w == SPLIT) {
        Some(i) => (&data[..i], Some(&data[i + SPLIT.len()..])),
        None => (data, None),
    };
    std::fs::write(d.join("host.json"), host).expect("write host.json");
    match cpuid {
        Some(c) => std::fs::write(d.join("cpuid.txt"), c).expect("write cpuid.txt"),
        None => {
            let _ = std::fs::remove_file(d.join("cpuid.txt"));
        }
    }
    let _ = probe::snapshot::read(d);
});
