//! Host-side checks of the storage cases: after the VM ended, the bytes the guest says it
//! wrote (`# storage: wrote sector=S bytes=N seed=X flushed=F`) must be in the image file.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// Bytes per disk sector.
pub const SECTOR: u64 = 512;

/// The guest's pattern (certify/guest/src/cases/virtio.rs `fill_pattern`): xorshift64*.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    let mut x = seed | 1;
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// One write the guest reported (`# storage: wrote ...`).
#[derive(Debug, PartialEq, Eq)]
pub struct Write {
    /// First sector written.
    pub sector: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Seed of the written pattern ([`pattern`]).
    pub seed: u64,
}

fn parse_num(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// The writes the guest reported on its console.
pub fn reported_writes(console: &str) -> Vec<Write> {
    console
        .lines()
        .filter_map(|l| l.trim().strip_prefix("# storage: wrote "))
        .filter_map(|rest| {
            let get = |k: &str| {
                rest.split_whitespace()
                    .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='))
                    .and_then(parse_num)
            };
            Some(Write {
                sector: get("sector")?,
                bytes: get("bytes")?,
                seed: get("seed")?,
            })
        })
        .collect()
}

/// Check every reported write against the image. Err names what differs.
pub fn verify_image(image: &Path, console: &str, expected_seed: u64) -> Result<usize, String> {
    let writes = reported_writes(console);
    if writes.is_empty() {
        return Err("the guest reported no storage write".into());
    }
    let mut f = std::fs::File::open(image).map_err(|e| format!("{}: {e}", image.display()))?;
    for w in &writes {
        if w.seed != expected_seed {
            return Err(format!(
                "guest used seed {:#x}, the run gave it {expected_seed:#x}",
                w.seed
            ));
        }
        if w.bytes > 1 << 20 {
            return Err(format!("implausible write of {} bytes", w.bytes));
        }
        let mut got = vec![0u8; w.bytes as usize];
        let offset = w
            .sector
            .checked_mul(SECTOR)
            .ok_or_else(|| format!("sector {} is beyond any image", w.sector))?;
        f.seek(SeekFrom::Start(offset))
            .and_then(|_| f.read_exact(&mut got))
            .map_err(|e| format!("{} at sector {}: {e}", image.display(), w.sector))?;
        let want = pattern(w.bytes as usize, w.seed);
        if let Some(i) = got.iter().zip(&want).position(|(a, b)| a != b) {
            return Err(format!(
                "image differs from what the guest wrote at sector {} byte {i}",
                w.sector
            ));
        }
    }
    Ok(writes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_and_detects_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("d.img");
        let mut bytes = vec![0u8; 64 * 512];
        bytes[8 * 512..8 * 512 + 4096].copy_from_slice(&pattern(4096, 0x1234));
        std::fs::write(&img, &bytes).unwrap();
        let log =
            "# storage: wrote sector=8 bytes=4096 seed=0x1234 flushed=1\nok 1 storage_flush\n";
        assert_eq!(verify_image(&img, log, 0x1234), Ok(1));
        assert!(verify_image(&img, log, 0x9).unwrap_err().contains("seed"));
        assert!(verify_image(&img, "ok 1 x", 0x1234).is_err());
        bytes[8 * 512 + 100] ^= 1;
        std::fs::write(&img, &bytes).unwrap();
        let e = verify_image(&img, log, 0x1234).unwrap_err();
        assert!(e.contains("sector 8 byte 100"), "{e}");
        let far = "# storage: wrote sector=4000 bytes=512 seed=0x1234 flushed=0\n";
        assert!(verify_image(&img, far, 0x1234).is_err());
        let huge = "# storage: wrote sector=0xffffffffffffffff bytes=512 seed=0x1234\n";
        assert!(verify_image(&img, huge, 0x1234)
            .unwrap_err()
            .contains("beyond"));
    }

    #[test]
    fn pattern_matches_the_guest() {
        // First words of xorshift64* from seed 0x1234 (as the guest wrote them on QEMU).
        let p = pattern(16, 0x1234);
        assert_eq!(
            u64::from_le_bytes(p[0..8].try_into().unwrap()),
            0x26258bbd88ac47f5
        );
        assert_eq!(
            u64::from_le_bytes(p[8..16].try_into().unwrap()),
            0x38bcf9792dc61b8f
        );
    }

    proptest::proptest! {
        /// Whatever a guest prints, checking the image never panics.
        #[test]
        fn arbitrary_console_never_panics(
            sector in proptest::prelude::any::<u64>(),
            bytes in proptest::prelude::any::<u64>(),
            noise in "\\PC{0,40}",
        ) {
            let dir = tempfile::tempdir().unwrap();
            let img = dir.path().join("p.img");
            std::fs::write(&img, vec![0u8; 4096]).unwrap();
            let log = format!("{noise}\n# storage: wrote sector={sector} bytes={bytes} seed=0x1\n{noise}");
            let _ = verify_image(&img, &log, 1);
            let _ = reported_writes(&noise);
        }
    }
}
