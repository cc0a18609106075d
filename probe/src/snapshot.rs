//! Snapshot directories: `hvcert probe --capture DIR` writes one, `--from DIR` reads one.
//!
//! Layout: `host.json` (every input except CPUID, as [`RawHost`] in JSON) and `cpuid.txt`
//! (CPUID of CPU 0 in the raw text format of the `cpuid -r -1` tool, so it can be compared
//! with that tool's output and edited by hand).
use std::path::Path;

use crate::import::{parse_cpuid_raw, write_cpuid_raw};
use crate::raw::{Avail, RawHost};
use crate::ProbeError;

/// The file of a snapshot directory holding every input but CPUID, as JSON.
pub const HOST_FILE: &str = "host.json";
/// The file of a snapshot directory holding CPUID, in `cpuid -r -1` format.
pub const CPUID_FILE: &str = "cpuid.txt";

/// How a snapshot's reader names a live-host input it replays: the facts (KVM figures
/// included) were captured on a live host, not read now.
pub const CAPTURED_LIVE: &str = "captured live host";

/// Writes `host` into `dir` (created if needed).
pub fn write(dir: &Path, host: &RawHost) -> Result<(), ProbeError> {
    std::fs::create_dir_all(dir).map_err(|e| ProbeError::io(dir, e))?;
    let mut stored = host.clone();
    stored.cpuid_missing = host.cpuid.why().map(str::to_string);
    let json = serde_json::to_string_pretty(&stored)
        .map_err(|e| ProbeError::Other(format!("serializing host: {e}")))?;
    let hp = dir.join(HOST_FILE);
    std::fs::write(&hp, json + "\n").map_err(|e| ProbeError::io(&hp, e))?;
    let cp = dir.join(CPUID_FILE);
    match &host.cpuid {
        Avail::Known(t) => {
            std::fs::write(&cp, write_cpuid_raw(t)).map_err(|e| ProbeError::io(&cp, e))?
        }
        Avail::Missing(_) => {
            if cp.exists() {
                std::fs::remove_file(&cp).map_err(|e| ProbeError::io(&cp, e))?;
            }
        }
    }
    Ok(())
}

/// Reads a snapshot directory.
pub fn read(dir: &Path) -> Result<RawHost, ProbeError> {
    let hp = dir.join(HOST_FILE);
    let text = std::fs::read_to_string(&hp).map_err(|e| ProbeError::io(&hp, e))?;
    let mut host: RawHost = serde_json::from_str(&text).map_err(|e| ProbeError::Parse {
        file: hp.display().to_string(),
        line: e.line(),
        msg: e.to_string(),
    })?;
    let cp = dir.join(CPUID_FILE);
    host.cpuid = if cp.exists() {
        let t = std::fs::read_to_string(&cp).map_err(|e| ProbeError::io(&cp, e))?;
        Avail::Known(parse_cpuid_raw(&t, &cp)?)
    } else {
        Avail::missing(
            host.cpuid_missing
                .take()
                .unwrap_or_else(|| format!("the snapshot has no {CPUID_FILE}")),
        )
    };
    host.cpuid_missing = None;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string());
    // What the capture read live is replayed now: say so, so that the report's source
    // reads "snapshot", not "snapshot+live".
    for i in host.inputs.iter_mut().filter(|i| *i == "live host") {
        *i = CAPTURED_LIVE.to_string();
    }
    host.inputs.insert(0, format!("snapshot {name}"));
    Ok(host)
}
