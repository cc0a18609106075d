//! `hvcert package`: probe and certify reports of several hosts in one archive with a
//! manifest; `package verify` passes a fresh package and names a tampered file; duplicate
//! runs and reports of another schema are refused.
#[path = "../common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};

use common::{assert_exit, hvcert, workspace_root};

/// `hvcert probe --from fixtures/hosts/HOST --report DIR/HOST.json` (no KVM needed).
fn probe_report(dir: &Path, host: &str) -> PathBuf {
    let out = dir.join(format!("{host}.json"));
    let r = hvcert()
        .args(["probe", "--no-kvm", "--from"])
        .arg(workspace_root().join("fixtures/hosts").join(host))
        .arg("--report")
        .arg(&out)
        .output()
        .expect("run hvcert probe");
    assert!(out.is_file(), "{}", String::from_utf8_lossy(&r.stderr));
    out
}

fn package(args: &[&dyn AsRef<std::ffi::OsStr>]) -> std::process::Output {
    let mut c = hvcert();
    c.arg("package");
    for a in args {
        c.arg(a);
    }
    c.output().expect("run hvcert package")
}

fn verify(file: &Path) -> std::process::Output {
    hvcert()
        .args(["package", "verify"])
        .arg(file)
        .output()
        .expect("run hvcert package verify")
}

#[test]
fn fresh_package_verifies_and_a_tampered_byte_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let a = probe_report(d, "dell-r630-haswell-ep");
    let b = probe_report(d, "amd-barcelona");
    let certified = workspace_root().join("fixtures/reports/all-pass.json");
    // The fixtures share one identity (the same run, as far as a package can tell): the
    // failed one is a later run.
    let failed = d.join("later-run.json");
    let text =
        std::fs::read_to_string(workspace_root().join("fixtures/reports/blocker-failure.json"))
            .unwrap()
            .replacen("2026-11-25T14:57:18Z", "2026-11-26T09:00:00Z", 1);
    std::fs::write(&failed, text).unwrap();
    let ci = format!("ci-runner={}", certified.display());
    let ci2 = format!("ci-runner={}", failed.display());
    let pkg = d.join("cert.tar");
    let r = package(&[&pkg, &a, &b, &ci, &ci2]);
    assert_exit(&r, 0);
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert!(stdout.contains("4 report(s) of 3 host(s)"), "{stdout}");
    let r = verify(&pkg);
    assert_exit(&r, 0);
    assert!(String::from_utf8_lossy(&r.stdout).contains("ok"));

    // The archive holds the reports byte for byte, the summaries and the manifest.
    let bytes = std::fs::read(&pkg).unwrap();
    let mut names = Vec::new();
    let mut summary_md = String::new();
    for e in tar::Archive::new(&bytes[..]).entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        if name == "summary.md" {
            std::io::Read::read_to_string(&mut e, &mut summary_md).unwrap();
        }
        names.push(name);
    }
    for want in [
        "manifest.json",
        "summary.json",
        "summary.html",
        "summary.md",
        "hosts/ci-runner/certify-1.json",
        "hosts/ci-runner/certify-2.json",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
    assert_eq!(
        names
            .iter()
            .filter(|n| n.ends_with("/probe-1.json"))
            .count(),
        2,
        "{names:?}"
    );
    assert!(
        summary_md.contains("| ci-runner | certify |") && summary_md.contains("FAIL"),
        "{summary_md}"
    );

    // One byte of one report changed: verification fails naming that file.
    let mut tampered = bytes.clone();
    let needle = b"\"command\": \"certify\"";
    let at = tampered
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("a certify report in the archive");
    tampered[at + 13] = b'C';
    let bad = d.join("tampered.tar");
    std::fs::write(&bad, &tampered).unwrap();
    let r = verify(&bad);
    assert_exit(&r, 1);
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert!(
        stdout.contains("hosts/ci-runner/certify-1.json: tampered"),
        "{stdout}"
    );

    // Compressed packages verify too.
    let gz = d.join("cert.tgz");
    assert_exit(&package(&[&gz, &a, &ci]), 0);
    assert_eq!(&std::fs::read(&gz).unwrap()[..2], &[0x1f, 0x8b]);
    assert_exit(&verify(&gz), 0);
}

#[test]
fn duplicate_runs_and_other_schemas_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let a = probe_report(d, "dell-r630-haswell-ep");
    let copy = d.join("copy.json");
    std::fs::copy(&a, &copy).unwrap();
    let pkg = d.join("p.tar");
    let r = package(&[&pkg, &a, &copy]);
    assert_exit(&r, 2);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(stderr.contains("are the same probe run"), "{stderr}");
    assert!(!pkg.exists());

    let old = workspace_root().join("fixtures/reports/invalid/old-schema.json");
    let r = package(&[&pkg, &a, &old]);
    assert_exit(&r, 2);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(
        stderr.contains("old-schema.json: schema \"hvcert.report/v0\" is not"),
        "{stderr}"
    );
    assert!(!pkg.exists());
}

#[test]
fn signed_package_verifies_and_a_rewritten_manifest_is_caught() {
    use sha2::Digest;
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let key = d.join("lab.key");
    let r = hvcert()
        .args(["package", "keygen"])
        .arg(&key)
        .output()
        .unwrap();
    assert_exit(&r, 0);
    let public = d.join("lab.key.pub");
    let a = probe_report(d, "dell-r630-haswell-ep");
    let pkg = d.join("signed.tar");
    let r = hvcert()
        .args(["package", "--sign"])
        .arg(&key)
        .arg(&pkg)
        .arg(&a)
        .output()
        .unwrap();
    assert_exit(&r, 0);
    let verify_key = |file: &Path, key: &Path| {
        hvcert()
            .args(["package", "verify", "--key"])
            .arg(key)
            .arg(file)
            .output()
            .unwrap()
    };
    let r = verify_key(&pkg, &public);
    assert_exit(&r, 0);
    assert!(String::from_utf8_lossy(&r.stdout).contains("signed by ed25519 key"));

    // Another key: refused. An unsigned package when a key is required: refused.
    let other = d.join("other.key");
    assert_exit(
        &hvcert()
            .args(["package", "keygen"])
            .arg(&other)
            .output()
            .unwrap(),
        0,
    );
    let r = verify_key(&pkg, &d.join("other.key.pub"));
    assert_exit(&r, 1);
    assert!(String::from_utf8_lossy(&r.stdout).contains("not by the given key"));
    let unsigned = d.join("unsigned.tar");
    assert_exit(&package(&[&unsigned, &a]), 0);
    let r = verify_key(&unsigned, &public);
    assert_exit(&r, 1);
    assert!(String::from_utf8_lossy(&r.stdout).contains("not signed"));

    // A file changed and its manifest line rewritten to match: only the signature shows it.
    let bytes = std::fs::read(&pkg).unwrap();
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for e in tar::Archive::new(&bytes[..]).entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        files.push((name, data));
    }
    let md = files.iter().position(|(n, _)| n == "summary.md").unwrap();
    let old_sha = format!("{:x}", sha2::Sha256::digest(&files[md].1));
    files[md].1.extend_from_slice(b"certified by nobody\n");
    let new_sha = format!("{:x}", sha2::Sha256::digest(&files[md].1));
    let old_len = files[md].1.len() - 20;
    let new_len = files[md].1.len();
    let m = files
        .iter()
        .position(|(n, _)| n == "manifest.json")
        .unwrap();
    let mut manifest: serde_json::Value = serde_json::from_slice(&files[m].1).unwrap();
    for f in manifest["files"].as_array_mut().unwrap() {
        if f["path"] == "summary.md" {
            assert_eq!(f["sha256"], old_sha.as_str());
            assert_eq!(f["bytes"], old_len);
            f["sha256"] = new_sha.clone().into();
            f["bytes"] = new_len.into();
        }
    }
    files[m].1 = serde_json::to_vec_pretty(&manifest).unwrap();
    let mut out = Vec::new();
    {
        let mut b = tar::Builder::new(&mut out);
        for (name, data) in &files {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, name, &data[..]).unwrap();
        }
        b.finish().unwrap();
    }
    let forged = d.join("forged.tar");
    std::fs::write(&forged, out).unwrap();
    let r = verify(&forged);
    assert_exit(&r, 1);
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert!(
        stdout.contains("signature.json: the signature does not match manifest.json"),
        "{stdout}"
    );
}
