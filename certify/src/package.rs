//! One certification package (`hvcert package`): the reports of many hosts and runs in a
//! single tar archive (gzip-compressed when its name ends in .gz or .tgz), with a merged
//! summary ([`crate::package_summary`]) and a manifest of the SHA-256 of every file, and
//! its verification.
//!
//! Layout of the archive:
//! - `manifest.json`: `{"schema": "hvcert.package/v1", "files": [{"path", "sha256", "bytes"}]}`
//!   for every other file, sorted by path;
//! - `summary.json`, `summary.html`, `summary.md`: per host its verdict, cases, failed
//!   blockers and waivers;
//! - `hosts/HOST/probe-N.json`, `hosts/HOST/certify-N.json`: the reports as given
//!   (byte for byte), numbered in date order.
//!
//! Inputs are `hvcert.report/v1` files (`hvcert probe --report x.json`, certify's
//! report.json) or certify output folders (their report.json), each optionally prefixed
//! with `HOST=` to name the host; unnamed hosts are named from their probe facts.
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::package_sign;
use crate::package_summary::{self, HostSummary, RunSummary};

/// The `schema` of a package's manifest.
pub const SCHEMA: &str = "hvcert.package/v1";

/// The manifest's file name in the archive.
pub const MANIFEST: &str = "manifest.json";

/// One file of the package as the manifest lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// Path in the archive.
    pub path: String,
    /// SHA-256 of its bytes, hex.
    pub sha256: String,
    /// Its size.
    pub bytes: u64,
}

/// The package's manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`SCHEMA`].
    pub schema: String,
    /// Every file of the package except the manifest, sorted by path.
    pub files: Vec<ManifestEntry>,
}

/// An input report, read and classified.
struct Input {
    host: String,
    kind: String,
    run_key: String,
    date: String,
    source: PathBuf,
    bytes: Vec<u8>,
    report: reports::Report,
}

/// What [`create`] made.
#[derive(Debug)]
pub struct Created {
    /// Hosts in the package.
    pub hosts: usize,
    /// Reports in the package.
    pub reports: usize,
    /// Files in the archive (the manifest included).
    pub files: usize,
}

/// A host's name from a report's probe facts: "vendor product / CPU brand".
fn host_name(report: &reports::Report) -> Option<String> {
    let h = &report.identity.host;
    let s = |p: &str| h.pointer(p).and_then(|v| v.as_str()).map(str::trim);
    let platform: Vec<&str> = [s("/platform/vendor"), s("/platform/product")]
        .into_iter()
        .flatten()
        .filter(|x| !x.is_empty())
        .collect();
    let cpu = s("/cpu/brand").filter(|x| !x.is_empty());
    match (platform.is_empty(), cpu) {
        (true, None) => None,
        (false, None) => Some(platform.join(" ")),
        (true, Some(c)) => Some(c.to_string()),
        (false, Some(c)) => Some(format!("{} / {c}", platform.join(" "))),
    }
}

/// A file-name-safe form of a host name.
fn slug(s: &str) -> String {
    let mut out = String::new();
    for ch in s.chars() {
        if ch.is_ascii_alphanumeric() || ch == '.' || ch == '_' {
            out.push(ch);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches('-').to_string();
    if out.is_empty() {
        "host".into()
    } else {
        out
    }
}

fn read_input(arg: &str) -> anyhow::Result<Input> {
    let (named, path) = match arg.split_once('=') {
        Some((h, p)) if !h.is_empty() && !Path::new(arg).exists() => (Some(h.to_string()), p),
        _ => (None, arg),
    };
    let mut path = PathBuf::from(path);
    if path.is_dir() {
        path = path.join("report.json");
    }
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: not UTF-8 text: {e}", path.display()))?;
    // The schema first, so that an older report is named as such, not by a field it lacks.
    let schema = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("schema")?.as_str().map(str::to_string));
    match schema.as_deref() {
        Some(reports::SCHEMA) | None => {}
        Some(s) => {
            let hint = if s == "hvcert.probe/v1" {
                "; write the probe's run report with `hvcert probe --report FILE.json`"
            } else {
                "; make it again with this hvcert"
            };
            anyhow::bail!(
                "{}: schema {s:?} is not {:?} (an older or unknown kind of report){hint}",
                path.display(),
                reports::SCHEMA
            )
        }
    }
    let report = reports::parse(text, &path)?;
    let kind = report.identity.command.clone();
    if kind != "probe" && kind != "certify" {
        anyhow::bail!(
            "{}: a report of `hvcert {kind}`; a package holds probe and certify reports",
            path.display()
        );
    }
    let host = match named.or_else(|| host_name(&report)) {
        Some(h) => h,
        None => anyhow::bail!(
            "{}: the report has no host facts to name its host (a certify run with \
             --no-probe?); name it as HOST={}",
            path.display(),
            path.display()
        ),
    };
    let id = &report.identity;
    let run_key = format!(
        "{} {} {} {}",
        id.command,
        id.date,
        id.git_revision.as_deref().unwrap_or("-"),
        id.command_line.join(" ")
    );
    Ok(Input {
        host,
        kind,
        run_key,
        date: id.date.clone(),
        source: path,
        bytes,
        report,
    })
}

fn sha256_hex(b: &[u8]) -> String {
    format!("{:x}", sha2::Sha256::digest(b))
}

/// Builds the package `out` from `inputs` (`[HOST=]REPORT_OR_RUN_DIR`), signed with the
/// ed25519 secret key in `sign_key` when given ([`package_sign`]). Errors: an unreadable
/// input, a report of another schema or kind, a host without a name, and the same
/// host/run pair given twice.
pub fn create(out: &Path, inputs: &[String], sign_key: Option<&Path>) -> anyhow::Result<Created> {
    if inputs.is_empty() {
        anyhow::bail!("no report given: hvcert package OUT REPORT_OR_RUN_DIR...");
    }
    let mut all = Vec::new();
    for arg in inputs {
        all.push(read_input(arg)?);
    }
    // Duplicate host/run pairs.
    let mut seen: BTreeMap<(String, String), PathBuf> = BTreeMap::new();
    for i in &all {
        if let Some(first) = seen.insert((i.host.clone(), i.run_key.clone()), i.source.clone()) {
            anyhow::bail!(
                "{} and {} are the same {} run ({}) of host {:?}: give each run once",
                first.display(),
                i.source.display(),
                i.kind,
                i.date,
                i.host
            );
        }
    }
    // Group by host, runs in date order.
    let mut by_host: BTreeMap<String, Vec<Input>> = BTreeMap::new();
    for i in all {
        by_host.entry(i.host.clone()).or_default().push(i);
    }
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut hosts = Vec::new();
    let mut slugs: BTreeMap<String, usize> = BTreeMap::new();
    let mut n_reports = 0;
    for (host, mut runs) in by_host {
        runs.sort_by(|a, b| (a.kind.as_str(), &a.date).cmp(&(b.kind.as_str(), &b.date)));
        let mut dir = slug(&host);
        let k = slugs.entry(dir.clone()).or_default();
        *k += 1;
        if *k > 1 {
            dir = format!("{dir}-{k}");
        }
        let mut summary = HostSummary {
            host: host.clone(),
            folder: format!("hosts/{dir}"),
            runs: Vec::new(),
        };
        let mut counter: BTreeMap<String, usize> = BTreeMap::new();
        for r in runs {
            let n = counter.entry(r.kind.clone()).or_default();
            *n += 1;
            let file = format!("hosts/{dir}/{}-{n}.json", r.kind);
            summary.runs.push(RunSummary::of(&r.report, &file));
            files.insert(file, r.bytes);
            n_reports += 1;
        }
        hosts.push(summary);
    }
    let summary = package_summary::Summary {
        schema: package_summary::SCHEMA.into(),
        created: reports::date::now_rfc3339(),
        hvcert_version: crate::build_info::VERSION.into(),
        hosts,
    };
    files.insert(
        "summary.json".into(),
        serde_json::to_vec_pretty(&summary).context("serializing the summary")?,
    );
    files.insert(
        "summary.html".into(),
        package_summary::html(&summary).into_bytes(),
    );
    files.insert(
        "summary.md".into(),
        package_summary::markdown(&summary).into_bytes(),
    );
    let manifest = Manifest {
        schema: SCHEMA.into(),
        files: files
            .iter()
            .map(|(path, b)| ManifestEntry {
                path: path.clone(),
                sha256: sha256_hex(b),
                bytes: b.len() as u64,
            })
            .collect(),
    };
    let mut archive = Vec::new();
    {
        let mut tar = tar::Builder::new(&mut archive);
        let mut add = |path: &str, data: &[u8]| -> std::io::Result<()> {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(0);
            h.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut h, path, data)
        };
        let manifest_bytes = serde_json::to_vec_pretty(&manifest)?;
        add(MANIFEST, &manifest_bytes)?;
        if let Some(key) = sign_key {
            let sig = package_sign::sign(&manifest_bytes, key)?;
            add(package_sign::SIGNATURE, &serde_json::to_vec_pretty(&sig)?)?;
        }
        for (path, b) in &files {
            add(path, b)?;
        }
        tar.finish()?;
    }
    let bytes = if is_gz_name(out) {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&archive)?;
        gz.finish()?
    } else {
        archive
    };
    std::fs::write(out, bytes).with_context(|| format!("writing {}", out.display()))?;
    Ok(Created {
        hosts: summary.hosts.len(),
        reports: n_reports,
        files: files.len() + 1,
    })
}

fn is_gz_name(p: &Path) -> bool {
    let name = p.to_string_lossy();
    name.ends_with(".gz") || name.ends_with(".tgz")
}

/// The outcome of [`verify`]: empty `problems` means the package is intact.
#[derive(Debug, Default)]
pub struct Verified {
    /// Files checked against the manifest.
    pub files: usize,
    /// One line per problem, naming the file: tampered, missing, extra, duplicated.
    pub problems: Vec<String>,
    /// The public key (hex) whose signature of the manifest holds, when signed.
    pub signed_by: Option<String>,
}

/// Checks a package: every file the manifest lists is present once with its SHA-256 and
/// size, nothing else is in the archive, and a signature, when present, holds (and is by
/// `want_key`, hex, when given; then an unsigned package is a problem too). Errors (not
/// problems): the file cannot be read, is not a tar archive, or has no readable manifest.
pub fn verify(file: &Path, want_key: Option<&str>) -> anyhow::Result<Verified> {
    let raw = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let archive = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .with_context(|| format!("{}: not a valid gzip stream", file.display()))?;
        out
    } else {
        raw
    };
    let mut entries: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    let mut tar = tar::Archive::new(&archive[..]);
    let mut v = Verified::default();
    for e in tar
        .entries()
        .with_context(|| format!("{}: not a tar archive", file.display()))?
    {
        let mut e = e.with_context(|| format!("{}: corrupt tar archive", file.display()))?;
        let path = e.path()?.to_string_lossy().into_owned();
        if e.header().entry_type() != tar::EntryType::Regular {
            v.problems
                .push(format!("{path}: extra entry (not a regular file)"));
            continue;
        }
        let mut b = Vec::new();
        e.read_to_end(&mut b)
            .with_context(|| format!("{}: reading {path}", file.display()))?;
        entries.entry(path).or_default().push(b);
    }
    let manifest_bytes = match entries.remove(MANIFEST).as_deref() {
        Some([one]) => one.clone(),
        Some(_) => anyhow::bail!("{}: {MANIFEST} is in the archive twice", file.display()),
        None => anyhow::bail!("{}: no {MANIFEST}: not an hvcert package", file.display()),
    };
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
        .with_context(|| format!("{}: {MANIFEST} does not parse", file.display()))?;
    if manifest.schema != SCHEMA {
        anyhow::bail!(
            "{}: package schema {:?}, this hvcert reads {SCHEMA:?}",
            file.display(),
            manifest.schema
        );
    }
    for m in &manifest.files {
        match entries.remove(&m.path).as_deref() {
            None => v.problems.push(format!("{}: missing", m.path)),
            Some([b]) => {
                v.files += 1;
                let got = sha256_hex(b);
                if got != m.sha256 || b.len() as u64 != m.bytes {
                    v.problems.push(format!(
                        "{}: tampered (sha256 {got}, {} bytes; manifest says {}, {} bytes)",
                        m.path,
                        b.len(),
                        m.sha256,
                        m.bytes
                    ));
                }
            }
            Some(_) => v.problems.push(format!("{}: in the archive twice", m.path)),
        }
    }
    match entries.remove(package_sign::SIGNATURE).as_deref() {
        Some([one]) => match serde_json::from_slice::<package_sign::Signature>(one) {
            Ok(sig) => match package_sign::check(&manifest_bytes, &sig) {
                Ok(()) if want_key.is_some_and(|k| k != sig.public_key) => {
                    v.problems.push(format!(
                        "{}: signed by {}, not by the given key",
                        package_sign::SIGNATURE,
                        sig.public_key
                    ))
                }
                Ok(()) => v.signed_by = Some(sig.public_key),
                Err(why) => v
                    .problems
                    .push(format!("{}: {why}", package_sign::SIGNATURE)),
            },
            Err(e) => v
                .problems
                .push(format!("{}: does not parse: {e}", package_sign::SIGNATURE)),
        },
        Some(_) => v
            .problems
            .push(format!("{}: in the archive twice", package_sign::SIGNATURE)),
        None if want_key.is_some() => v.problems.push(format!(
            "{}: missing (the package is not signed)",
            package_sign::SIGNATURE
        )),
        None => {}
    }
    for extra in entries.keys() {
        v.problems
            .push(format!("{extra}: extra file, not in the manifest"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        format!(
            "ci={}/../fixtures/reports/{name}",
            env!("CARGO_MANIFEST_DIR")
        )
    }

    /// Rewrites a tar archive: `keep` decides which entries stay, `extra` is appended.
    fn rewrite(src: &[u8], keep: &dyn Fn(&str) -> bool, extra: Option<(&str, &[u8])>) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut b = tar::Builder::new(&mut out);
            for e in tar::Archive::new(src).entries().unwrap() {
                let mut e = e.unwrap();
                let path = e.path().unwrap().to_string_lossy().into_owned();
                if !keep(&path) {
                    continue;
                }
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                let mut h = e.header().clone();
                b.append_data(&mut h, &path, &data[..]).unwrap();
            }
            if let Some((path, data)) = extra {
                let mut h = tar::Header::new_ustar();
                h.set_size(data.len() as u64);
                h.set_mode(0o644);
                b.append_data(&mut h, path, data).unwrap();
            }
            b.finish().unwrap();
        }
        out
    }

    #[test]
    fn verify_names_missing_and_extra_files() {
        let dir = tempfile::tempdir().unwrap();
        let pkg = dir.path().join("p.tar");
        let made = create(&pkg, &[fixture("all-pass.json")], None).unwrap();
        assert_eq!((made.hosts, made.reports, made.files), (1, 1, 5));
        let good = std::fs::read(&pkg).unwrap();
        let v = verify(&pkg, None).unwrap();
        assert_eq!((v.files, v.problems.len()), (4, 0), "{:?}", v.problems);

        let bad = dir.path().join("bad.tar");
        let edited = rewrite(
            &good,
            &|p| p != "summary.html",
            Some(("hosts/ci/certify-9.json", b"{}")),
        );
        std::fs::write(&bad, edited).unwrap();
        let v = verify(&bad, None).unwrap();
        assert_eq!(
            v.problems,
            vec![
                "summary.html: missing".to_string(),
                "hosts/ci/certify-9.json: extra file, not in the manifest".to_string(),
            ]
        );
        // Without its manifest it is not a package at all.
        std::fs::write(&bad, rewrite(&good, &|p| p != MANIFEST, None)).unwrap();
        let e = format!("{:#}", verify(&bad, None).unwrap_err());
        assert!(e.contains("no manifest.json"), "{e}");
    }

    #[test]
    fn hosts_are_named_from_probe_facts_or_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        let mut r = reports::Report::new(reports::Identity::new(
            "certify",
            "0.1.0",
            "2026-01-01T00:00:00Z",
        ));
        reports::save(&r, &path).unwrap();
        let e = format!(
            "{:#}",
            create(
                &dir.path().join("p.tar"),
                &[path.display().to_string()],
                None
            )
            .unwrap_err()
        );
        assert!(e.contains("no host facts") && e.contains("HOST="), "{e}");
        r.identity.host = serde_json::json!({
            "platform": {"vendor": "Dell Inc.", "product": "PowerEdge R630"},
            "cpu": {"brand": "Xeon E5-2680 v3"},
        });
        assert_eq!(
            host_name(&r).as_deref(),
            Some("Dell Inc. PowerEdge R630 / Xeon E5-2680 v3")
        );
        assert_eq!(
            slug("Dell Inc. PowerEdge R630 / Xeon"),
            "Dell-Inc.-PowerEdge-R630-Xeon"
        );
    }
}
