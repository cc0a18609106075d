//! Importing documents into the store, from an upload (`POST /api/import`) or from files
//! (`hvcert serve --import PATH`): a run report (`hvcert.report/v1`), a probe document
//! (`hvcert.probe/v1`, read as a run through the [`Backend`]), a fleet report
//! (`hvcert.fleet/v1`), a package (`hvcert package`'s tar archive, checked against its
//! manifest), a probe snapshot folder (`hvcert probe --capture DIR`, scored through the
//! [`Backend`]) or a whole report folder (a tar or tar.gz archive of it, or the folder
//! itself on the command line). Everything one import finds is written in one transaction: all
//! of it or nothing.
use std::io::Read;
use std::path::Path;

use serde::Serialize;
use sha2::Digest;

use crate::backend::{Backend, PackageCheck};
use crate::store::{import_tx, Store};
use crate::store_imports::{insert_fleet, insert_package};
use crate::ApiError;

/// Largest archive content read (after decompression).
pub const MAX_UNPACKED: u64 = 512 << 20;
/// Most files read from one archive or folder.
pub const MAX_FILES: usize = 20_000;

/// What one import stored.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Imported {
    /// Ids of the runs stored (reports and probe documents).
    pub runs: Vec<i64>,
    /// Ids of the fleet reports stored.
    pub fleets: Vec<i64>,
    /// Ids of the packages stored.
    pub packages: Vec<i64>,
    /// Files that were not imported, each with why (another schema, a package already
    /// stored).
    pub skipped: Vec<String>,
}

/// A document read and checked, not yet stored.
enum Item {
    Run(String, Box<reports::Report>),
    Fleet(Box<reports::fleet::FleetReport>),
    Package {
        name: String,
        sha256: String,
        archive: Vec<u8>,
        check: PackageCheck,
        runs: Vec<(String, reports::Report)>,
    },
}

fn unprocessable(msg: impl Into<String>) -> ApiError {
    ApiError::new(422, msg)
}

/// Imports one upload or file `bytes` named `name`; `source` is recorded with each run.
pub fn import_bytes(
    store: &Store,
    backend: Option<&dyn Backend>,
    tmp_dir: &Path,
    name: &str,
    bytes: Vec<u8>,
    source: &str,
) -> Result<Imported, ApiError> {
    let mut out = Imported::default();
    let items = read_any(backend, tmp_dir, name, bytes, &mut out.skipped, 0)?;
    write(store, items, source, out)
}

/// Imports a file, or every `.json`, `.tar`, `.tar.gz` and `.tgz` file under a folder
/// (recursively), as one import.
pub fn import_path(
    store: &Store,
    backend: Option<&dyn Backend>,
    tmp_dir: &Path,
    path: &Path,
) -> Result<Imported, ApiError> {
    let mut files = Vec::new();
    collect(path, &mut files)?;
    let mut out = Imported::default();
    let mut items = Vec::new();
    for f in files {
        if f.is_dir() {
            items.push(read_snapshot(backend, &f, &f.display().to_string())?);
            continue;
        }
        let bytes = std::fs::read(&f)
            .map_err(|e| ApiError::new(400, format!("{}: cannot read: {e}", f.display())))?;
        let name = f.display().to_string();
        items.extend(read_any(
            backend,
            tmp_dir,
            &name,
            bytes,
            &mut out.skipped,
            0,
        )?);
    }
    let source = format!("file:{}", path.display());
    write(store, items, &source, out)
}

fn collect(path: &Path, files: &mut Vec<std::path::PathBuf>) -> Result<(), ApiError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| ApiError::new(400, format!("{}: {e}", path.display())))?;
    if !meta.is_dir() {
        files.push(path.to_path_buf());
        return Ok(());
    }
    if std::fs::read(path.join(SNAPSHOT_HOST)).is_ok_and(|b| is_snapshot_host(&b)) {
        files.push(path.to_path_buf()); // a probe snapshot: read as a whole
        return Ok(());
    }
    let mut entries: Vec<_> = std::fs::read_dir(path)
        .map_err(|e| ApiError::new(400, format!("{}: {e}", path.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if files.len() >= MAX_FILES {
            return Err(unprocessable(format!("more than {MAX_FILES} files")));
        }
        if p.is_dir() {
            collect(&p, files)?;
        } else if is_importable_name(&p.to_string_lossy()) {
            files.push(p);
        }
    }
    Ok(())
}

/// A name part no other import in this process uses at the same time.
fn unique() -> String {
    static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{n}", std::process::id())
}

/// The file that makes a folder a probe snapshot (`probe::snapshot::HOST_FILE`).
const SNAPSHOT_HOST: &str = "host.json";

/// Whether `host.json`'s bytes are a probe snapshot's: JSON without a `schema` and with
/// the `inputs` it was read from.
fn is_snapshot_host(b: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(b)
        .is_ok_and(|v| v.get("schema").is_none() && v.get("inputs").is_some_and(|i| i.is_array()))
}

/// A probe snapshot folder as a run, through the backend.
fn read_snapshot(backend: Option<&dyn Backend>, dir: &Path, name: &str) -> Result<Item, ApiError> {
    let b = backend.ok_or_else(|| ApiError::new(503, "this server cannot read probe snapshots"))?;
    let r = b
        .probe_snapshot(dir)
        .map_err(|e| ApiError::new(400, format!("{name}: {e}")))?;
    Ok(Item::Run(name.to_string(), Box::new(r)))
}

/// The snapshots in an archive's files: each folder holding a snapshot `host.json` is
/// written (its files only) to a private temporary folder and read from there.
fn archive_snapshots(
    backend: Option<&dyn Backend>,
    tmp_dir: &Path,
    name: &str,
    files: &[(String, Vec<u8>)],
) -> Result<(Vec<Item>, Vec<String>), ApiError> {
    let dirs: Vec<String> = files
        .iter()
        .filter(|(p, d)| {
            Path::new(p).file_name().is_some_and(|f| f == SNAPSHOT_HOST) && is_snapshot_host(d)
        })
        .map(|(p, _)| p[..p.len() - SNAPSHOT_HOST.len()].to_string())
        .collect();
    let mut items = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let tmp = tmp_dir.join(format!("snapshot-{}-{i}", unique()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(ApiError::internal)?;
        for (p, d) in files {
            let Some(rest) = p.strip_prefix(dir.as_str()) else {
                continue;
            };
            // Only the folder's own files, by plain name: nothing written outside `tmp`.
            let plain = !rest.is_empty()
                && !rest.contains('/')
                && rest != ".."
                && rest != "."
                && !rest.contains('\\');
            if plain {
                std::fs::write(tmp.join(rest), d).map_err(ApiError::internal)?;
            }
        }
        let item = read_snapshot(backend, &tmp, &format!("{name}:{dir}"));
        let _ = std::fs::remove_dir_all(&tmp);
        items.push(item?);
    }
    Ok((items, dirs))
}

fn is_importable_name(n: &str) -> bool {
    [".json", ".tar", ".tar.gz", ".tgz"]
        .iter()
        .any(|x| n.ends_with(x))
}

fn is_tar(b: &[u8]) -> bool {
    b.get(257..262) == Some(b"ustar")
}

/// Reads a JSON document, a tar archive or a gzip-compressed one.
fn read_any(
    backend: Option<&dyn Backend>,
    tmp_dir: &Path,
    name: &str,
    bytes: Vec<u8>,
    skipped: &mut Vec<String>,
    depth: usize,
) -> Result<Vec<Item>, ApiError> {
    if bytes.starts_with(&[0x1f, 0x8b]) || is_tar(&bytes) {
        if depth > 1 {
            skipped.push(format!("{name}: an archive nested too deep"));
            return Ok(Vec::new());
        }
        return read_archive(backend, tmp_dir, name, bytes, skipped, depth);
    }
    match read_json(backend, name, &bytes)? {
        Some(item) => Ok(vec![item]),
        None => {
            skipped.push(format!("{name}: not a report, probe or fleet document"));
            Ok(Vec::new())
        }
    }
}

/// A document by its `schema`; `None` for JSON of another kind.
fn read_json(
    backend: Option<&dyn Backend>,
    name: &str,
    bytes: &[u8],
) -> Result<Option<Item>, ApiError> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| ApiError::new(400, format!("{name}: not UTF-8")))?;
    let v: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| ApiError::new(400, format!("{name}: not valid JSON: {e}")))?;
    let schema = v.get("schema").and_then(|s| s.as_str()).unwrap_or("");
    if schema.starts_with("hvcert.report/") {
        let r =
            reports::parse(text, Path::new(name)).map_err(|e| ApiError::new(400, e.to_string()))?;
        return Ok(Some(Item::Run(name.to_string(), Box::new(r))));
    }
    if schema.starts_with("hvcert.probe/") {
        let b =
            backend.ok_or_else(|| ApiError::new(503, "this server cannot read probe documents"))?;
        let r = b
            .probe_report(text, name)
            .map_err(|e| ApiError::new(400, e))?;
        return Ok(Some(Item::Run(name.to_string(), Box::new(r))));
    }
    if schema == reports::fleet::FLEET_SCHEMA {
        let f: reports::fleet::FleetReport = serde_json::from_value(v)
            .map_err(|e| ApiError::new(400, format!("{name}: not a valid fleet report: {e}")))?;
        return Ok(Some(Item::Fleet(Box::new(f))));
    }
    if schema.starts_with("hvcert.fleet/") {
        return Err(unprocessable(format!(
            "{name}: unsupported schema {schema:?} (this server reads {:?})",
            reports::fleet::FLEET_SCHEMA
        )));
    }
    Ok(None)
}

/// The regular files of a tar archive (gzip-compressed or not): (path, bytes).
fn unpack(bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>, ApiError> {
    let plain: Box<dyn Read + '_> = if bytes.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(bytes))
    } else {
        Box::new(bytes)
    };
    let mut ar = tar::Archive::new(plain.take(MAX_UNPACKED));
    let mut files = Vec::new();
    let entries = ar
        .entries()
        .map_err(|e| ApiError::new(400, format!("not a tar archive: {e}")))?;
    for e in entries {
        let mut e = e.map_err(|e| ApiError::new(400, format!("bad tar entry: {e}")))?;
        if !e.header().entry_type().is_file() {
            continue;
        }
        if files.len() >= MAX_FILES {
            return Err(unprocessable(format!("more than {MAX_FILES} files")));
        }
        let path = e
            .path()
            .map_err(|e| ApiError::new(400, format!("bad tar path: {e}")))?
            .to_string_lossy()
            .into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data)
            .map_err(|e| ApiError::new(400, format!("{path}: cannot read: {e}")))?;
        files.push((path, data));
    }
    Ok(files)
}

fn read_archive(
    backend: Option<&dyn Backend>,
    tmp_dir: &Path,
    name: &str,
    bytes: Vec<u8>,
    skipped: &mut Vec<String>,
    depth: usize,
) -> Result<Vec<Item>, ApiError> {
    let files = unpack(&bytes)?;
    let manifest = files.iter().find(|(p, _)| p == "manifest.json");
    let is_package = manifest.is_some_and(|(_, m)| {
        serde_json::from_slice::<serde_json::Value>(m)
            .ok()
            .and_then(|v| {
                v.get("schema")?
                    .as_str()
                    .map(|s| s.starts_with("hvcert.package/"))
            })
            .unwrap_or(false)
    });
    if is_package {
        return read_package(backend, tmp_dir, name, bytes, files).map(|p| vec![p]);
    }
    let (mut items, snapshot_dirs) = archive_snapshots(backend, tmp_dir, name, &files)?;
    for (path, data) in files {
        let in_snapshot = snapshot_dirs
            .iter()
            .any(|d| path.strip_prefix(d.as_str()) == Some(SNAPSHOT_HOST));
        if !is_importable_name(&path) || in_snapshot {
            continue;
        }
        let inner = format!("{name}:{path}");
        items.extend(read_any(
            backend,
            tmp_dir,
            &inner,
            data,
            skipped,
            depth + 1,
        )?);
    }
    Ok(items)
}

fn read_package(
    backend: Option<&dyn Backend>,
    tmp_dir: &Path,
    name: &str,
    archive: Vec<u8>,
    files: Vec<(String, Vec<u8>)>,
) -> Result<Item, ApiError> {
    let b = backend.ok_or_else(|| ApiError::new(503, "this server cannot check packages"))?;
    let sha256 = hex(&sha2::Sha256::digest(&archive));
    // The check reads a file: the upload goes to a private temporary file first.
    std::fs::create_dir_all(tmp_dir).map_err(ApiError::internal)?;
    let tmp = tmp_dir.join(format!("upload-{}.tar{}", unique(), gz_suffix(&archive)));
    std::fs::write(&tmp, &archive).map_err(ApiError::internal)?;
    let check = b.verify_package(&tmp);
    let _ = std::fs::remove_file(&tmp);
    let check = check.map_err(|e| ApiError::new(400, format!("{name}: {e}")))?;
    if !check.problems.is_empty() {
        return Err(unprocessable(format!(
            "{name}: the package does not match its manifest: {}",
            check.problems.join("; ")
        )));
    }
    let mut runs = Vec::new();
    for (path, data) in files {
        if !(path.starts_with("hosts/") && path.ends_with(".json")) {
            continue;
        }
        let inner = format!("{name}:{path}");
        match read_json(backend, &inner, &data)? {
            Some(Item::Run(n, r)) => runs.push((n, *r)),
            _ => return Err(unprocessable(format!("{inner}: not a run report"))),
        }
    }
    let base = Path::new(name)
        .file_name()
        .map_or_else(|| name.to_string(), |f| f.to_string_lossy().into_owned());
    Ok(Item::Package {
        name: base,
        sha256,
        archive,
        check,
        runs,
    })
}

fn gz_suffix(b: &[u8]) -> &'static str {
    if b.starts_with(&[0x1f, 0x8b]) {
        ".gz"
    } else {
        ""
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn write(
    store: &Store,
    items: Vec<Item>,
    source: &str,
    mut out: Imported,
) -> Result<Imported, ApiError> {
    if items.is_empty() {
        return Err(unprocessable(format!(
            "nothing to import ({})",
            if out.skipped.is_empty() {
                "no file".to_string()
            } else {
                out.skipped.join("; ")
            }
        )));
    }
    let mut fresh = Vec::new();
    for item in items {
        if let Item::Package { name, sha256, .. } = &item {
            if store.has_package(sha256).map_err(ApiError::internal)? {
                out.skipped
                    .push(format!("{name}: this package is already stored"));
                continue;
            }
        }
        fresh.push(item);
    }
    store
        .transaction(|tx| {
            for item in &fresh {
                match item {
                    Item::Run(_, r) => out.runs.push(import_tx(tx, r, source, None)?),
                    Item::Fleet(f) => out.fleets.push(insert_fleet(tx, f)?),
                    Item::Package {
                        name,
                        sha256,
                        archive,
                        check,
                        runs,
                    } => {
                        let id = insert_package(tx, name, sha256, archive, check)?;
                        out.packages.push(id);
                        for (_, r) in runs {
                            out.runs
                                .push(import_tx(tx, r, &format!("package:{id}"), Some(id))?);
                        }
                    }
                }
            }
            Ok(())
        })
        .map_err(ApiError::internal)?;
    Ok(out)
}
