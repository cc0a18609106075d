//! Optional ed25519 signature of a certification package ([`crate::package`]): the
//! signer signs the bytes of `manifest.json` (which holds the SHA-256 of every other
//! file), and the archive carries `signature.json` with the public key and signature.
//!
//! Key files are hex text: the secret key file holds the 32-byte seed, the public key
//! file (`KEY.pub`) the 32-byte verifying key.
use std::path::{Path, PathBuf};

use anyhow::Context;
use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

/// The signature's file name in the archive (not listed in the manifest).
pub const SIGNATURE: &str = "signature.json";

/// `signature.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// Always "ed25519".
    pub algorithm: String,
    /// The signer's public key, hex (32 bytes).
    pub public_key: String,
    /// The signature of manifest.json's bytes, hex (64 bytes).
    pub signature: String,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex<const N: usize>(s: &str, what: &str) -> anyhow::Result<[u8; N]> {
    let s = s.trim();
    if s.len() != 2 * N || !s.is_ascii() {
        anyhow::bail!("{what}: expected {} hex digits, found {}", 2 * N, s.len());
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16)
            .map_err(|e| anyhow::anyhow!("{what}: not hex: {e}"))?;
    }
    Ok(out)
}

/// Writes a new key pair: the secret seed to `key` (mode 0600) and the public key to
/// `key.pub`; returns the public key file's path.
pub fn keygen(key: &Path) -> anyhow::Result<PathBuf> {
    use std::io::Read;
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .context("reading /dev/urandom")?;
    let sk = SigningKey::from_bytes(&seed);
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(key)
            .with_context(|| format!("creating {}", key.display()))?;
        writeln!(f, "{}", hex(&seed)).with_context(|| format!("writing {}", key.display()))?;
    }
    let public = PathBuf::from(format!("{}.pub", key.display()));
    std::fs::write(&public, format!("{}\n", hex(sk.verifying_key().as_bytes())))
        .with_context(|| format!("writing {}", public.display()))?;
    Ok(public)
}

/// Signs `manifest` with the secret key in `key`.
pub fn sign(manifest: &[u8], key: &Path) -> anyhow::Result<Signature> {
    let text =
        std::fs::read_to_string(key).with_context(|| format!("reading {}", key.display()))?;
    let seed = unhex::<32>(&text, &key.display().to_string())?;
    let sk = SigningKey::from_bytes(&seed);
    Ok(Signature {
        algorithm: "ed25519".into(),
        public_key: hex(sk.verifying_key().as_bytes()),
        signature: hex(&sk.sign(manifest).to_bytes()),
    })
}

/// Reads a public key file (`KEY.pub`), as hex.
pub fn read_public(path: &Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(hex(&unhex::<32>(&text, &path.display().to_string())?))
}

/// Checks `sig` over `manifest`; Err says why it does not hold.
pub fn check(manifest: &[u8], sig: &Signature) -> Result<(), String> {
    if sig.algorithm != "ed25519" {
        return Err(format!("unknown algorithm {:?}", sig.algorithm));
    }
    let pk = unhex::<32>(&sig.public_key, "public_key").map_err(|e| e.to_string())?;
    let s = unhex::<64>(&sig.signature, "signature").map_err(|e| e.to_string())?;
    let vk = VerifyingKey::from_bytes(&pk).map_err(|e| format!("bad public key: {e}"))?;
    vk.verify(manifest, &ed25519_dalek::Signature::from_bytes(&s))
        .map_err(|_| "the signature does not match manifest.json".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_detects_another_manifest_or_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k");
        let public = keygen(&key).unwrap();
        let sig = sign(b"manifest", &key).unwrap();
        assert_eq!(read_public(&public).unwrap(), sig.public_key);
        assert_eq!(check(b"manifest", &sig), Ok(()));
        assert!(check(b"manifesT", &sig)
            .unwrap_err()
            .contains("does not match"));
        let other = dir.path().join("k2");
        keygen(&other).unwrap();
        let mut forged = sign(b"manifest", &other).unwrap();
        forged.public_key = sig.public_key.clone();
        assert!(check(b"manifest", &forged).is_err());
        // An existing key is never overwritten.
        assert!(keygen(&key).is_err());
    }
}
