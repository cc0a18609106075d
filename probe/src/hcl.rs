//! Supported-server lists (`fixtures/hcl/*.toml`): schema, loading with errors that name
//! file, line and field, and matching.
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::report::FEATURE_KEYS;
use crate::ProbeError;

/// The sample list shipped with hvcert, used when no `--hcl` is given.
pub const SAMPLE: &str = include_str!("../../fixtures/hcl/sample.toml");
/// The name the sample list is reported under.
pub const SAMPLE_NAME: &str = "fixtures/hcl/sample.toml";

/// One supported-server list (a TOML file): requirements and listed hardware.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hcl {
    /// The `[list]` header: name, sample flag, releases.
    pub list: ListInfo,
    /// The `[requirements]` table: required and recommended feature keys.
    pub requirements: Requirements,
    /// `[[server]]` entries: certified server models.
    #[serde(default)]
    pub server: Vec<Server>,
    /// `[[cpu_family]]` entries: CPU families used by listed servers.
    #[serde(default)]
    pub cpu_family: Vec<CpuFamily>,
    /// `[[chipset]]` entries: chipsets used by listed servers.
    #[serde(default)]
    pub chipset: Vec<ChipsetEntry>,
    /// Where it was loaded from (set by the loader).
    #[serde(skip)]
    pub origin: String,
}

/// The `[list]` header of a supported-server list.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListInfo {
    /// The list's name, as reported in verdicts.
    pub name: String,
    /// True for the sample list: it says so in every verdict.
    #[serde(default)]
    pub sample: bool,
    /// Free text describing the list.
    #[serde(default)]
    pub description: String,
    /// Hypervisor releases this list is for.
    #[serde(default)]
    pub releases: Vec<String>,
}

/// The `[requirements]` table of a supported-server list.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requirements {
    /// Feature keys that must be present (else `unsupported`).
    pub required: Vec<Spanned<String>>,
    /// Feature keys whose absence lowers the score.
    #[serde(default)]
    pub recommended: Vec<Spanned<String>>,
}

/// One certified server model (`[[server]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    /// Stable id of the entry, reported in `matched`.
    pub id: String,
    /// DMI system vendor (case-insensitive exact match).
    pub vendor: String,
    /// DMI product name (case-insensitive; a trailing `*` matches any suffix).
    pub model: String,
    /// CPU family ids (from `[[cpu_family]]`) this model is certified with; empty = any.
    #[serde(default)]
    pub cpu_families: Vec<Spanned<String>>,
    /// Minimum BIOS version (dotted numbers compared numerically).
    #[serde(default)]
    pub min_bios: Option<String>,
    /// Minimum BIOS release date, YYYY-MM-DD (for vendors whose versions are not ordered).
    #[serde(default)]
    pub min_bios_date: Option<Spanned<String>>,
    /// Releases this model is certified for; empty = the list's releases.
    #[serde(default)]
    pub certified_releases: Vec<String>,
    /// Restrictions of the certification (reported as information).
    #[serde(default)]
    pub restrictions: Vec<String>,
    /// Notes reported with a match.
    #[serde(default)]
    pub notes: Vec<String>,
}

/// A CPU family used by listed servers (`[[cpu_family]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CpuFamily {
    /// Stable id of the entry, referenced by `Server::cpu_families` and reported in `matched`.
    pub id: String,
    /// CPUID vendor string: GenuineIntel or AuthenticAMD.
    pub vendor: Spanned<String>,
    /// Display family (base + extended).
    pub family: u32,
    /// Inclusive display-model ranges, e.g. [[0x3f, 0x3f]].
    pub models: Vec<Spanned<[u32; 2]>>,
    /// Name reported for the family (e.g. `Haswell-EP`).
    pub codename: String,
    /// Notes reported with a match.
    #[serde(default)]
    pub notes: Vec<String>,
}

/// A chipset used by listed servers (`[[chipset]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChipsetEntry {
    /// Stable id of the entry, reported in `matched`.
    pub id: String,
    /// PCI host bridge ids, "vvvv:dddd".
    pub pci_ids: Vec<Spanned<String>>,
    /// Name reported for the chipset.
    pub name: String,
    /// Notes reported with a match.
    #[serde(default)]
    pub notes: Vec<String>,
}

fn line_of(text: &str, span: Range<usize>) -> usize {
    let end = span.start.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Parses one list; `origin` names it in errors.
pub fn parse(text: &str, origin: &str) -> Result<Hcl, ProbeError> {
    let err = |span: Option<Range<usize>>, msg: String| ProbeError::Parse {
        file: origin.to_string(),
        line: span.map(|s| line_of(text, s)).unwrap_or(0),
        msg,
    };
    let mut hcl: Hcl = toml::from_str(text).map_err(|e| err(e.span(), e.message().to_string()))?;
    hcl.origin = origin.to_string();
    for f in hcl
        .requirements
        .required
        .iter()
        .chain(&hcl.requirements.recommended)
    {
        if !FEATURE_KEYS.contains(&f.get_ref().as_str()) {
            return Err(err(
                Some(f.span()),
                format!(
                    "requirements: unknown feature {:?}; expected one of {}",
                    f.get_ref(),
                    FEATURE_KEYS.join(", ")
                ),
            ));
        }
    }
    for fam in &hcl.cpu_family {
        if !matches!(
            fam.vendor.get_ref().as_str(),
            "GenuineIntel" | "AuthenticAMD" | "HygonGenuine"
        ) {
            return Err(err(
                Some(fam.vendor.span()),
                format!(
                    "cpu_family {}: field `vendor`: expected GenuineIntel or AuthenticAMD, found {:?}",
                    fam.id,
                    fam.vendor.get_ref()
                ),
            ));
        }
        for m in &fam.models {
            let [lo, hi] = *m.get_ref();
            if lo > hi {
                return Err(err(
                    Some(m.span()),
                    format!(
                        "cpu_family {}: field `models`: range [{lo:#x}, {hi:#x}] is reversed",
                        fam.id
                    ),
                ));
            }
        }
    }
    for c in &hcl.chipset {
        for id in &c.pci_ids {
            if parse_pci_id(id.get_ref()).is_none() {
                return Err(err(
                    Some(id.span()),
                    format!(
                        "chipset {}: field `pci_ids`: expected \"vvvv:dddd\" in hex, found {:?}",
                        c.id,
                        id.get_ref()
                    ),
                ));
            }
        }
    }
    for s in &hcl.server {
        for f in &s.cpu_families {
            if !hcl.cpu_family.iter().any(|c| &c.id == f.get_ref()) {
                return Err(err(
                    Some(f.span()),
                    format!(
                        "server {}: field `cpu_families`: no [[cpu_family]] with id {:?}",
                        s.id,
                        f.get_ref()
                    ),
                ));
            }
        }
        if let Some(d) = &s.min_bios_date {
            if parse_iso_date(d.get_ref()).is_none() {
                return Err(err(
                    Some(d.span()),
                    format!(
                        "server {}: field `min_bios_date`: expected YYYY-MM-DD, found {:?}",
                        s.id,
                        d.get_ref()
                    ),
                ));
            }
        }
    }
    Ok(hcl)
}

/// Loads a list file, or every `*.toml` in a directory (sorted by name).
pub fn load(path: &Path) -> Result<Vec<Hcl>, ProbeError> {
    let files: Vec<PathBuf> = if path.is_dir() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| ProbeError::io(path, e))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        v.sort();
        v
    } else {
        vec![path.to_path_buf()]
    };
    files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(f).map_err(|e| ProbeError::io(f, e))?;
            parse(&text, &f.display().to_string())
        })
        .collect()
}

/// The features `lists` require and recommend (each once, in list order). A feature one
/// list requires and another only recommends is required: required wins.
pub fn requirements(lists: &[Hcl]) -> (Vec<String>, Vec<String>) {
    let mut required: Vec<String> = Vec::new();
    for r in lists.iter().flat_map(|l| &l.requirements.required) {
        if !required.contains(r.get_ref()) {
            required.push(r.get_ref().clone());
        }
    }
    let mut recommended: Vec<String> = Vec::new();
    for r in lists.iter().flat_map(|l| &l.requirements.recommended) {
        if !required.contains(r.get_ref()) && !recommended.contains(r.get_ref()) {
            recommended.push(r.get_ref().clone());
        }
    }
    (required, recommended)
}

/// The built-in sample list.
pub fn sample() -> Result<Hcl, ProbeError> {
    parse(SAMPLE, SAMPLE_NAME)
}

/// "8086:3c00" -> (0x8086, 0x3c00); None unless two hex numbers around a colon.
pub fn parse_pci_id(s: &str) -> Option<(u16, u16)> {
    let (v, d) = s.split_once(':')?;
    Some((
        u16::from_str_radix(v, 16).ok()?,
        u16::from_str_radix(d, 16).ok()?,
    ))
}

/// "2019-11-02" -> (2019, 11, 2).
pub fn parse_iso_date(s: &str) -> Option<(u32, u32, u32)> {
    let mut it = s.split('-').map(|p| p.parse::<u32>().ok());
    let (y, m, d) = (it.next()??, it.next()??, it.next()??);
    (it.next().is_none() && (1..=12).contains(&m) && (1..=31).contains(&d)).then_some((y, m, d))
}

/// DMI dates: "11/02/2019" (MM/DD/YYYY) -> (2019, 11, 2).
pub fn parse_dmi_date(s: &str) -> Option<(u32, u32, u32)> {
    let mut it = s.trim().split('/').map(|p| p.parse::<u32>().ok());
    let (m, d, y) = (it.next()??, it.next()??, it.next()??);
    let y = if y < 100 {
        y + 1900 + if y < 70 { 100 } else { 0 }
    } else {
        y
    };
    (it.next().is_none() && (1..=12).contains(&m) && (1..=31).contains(&d)).then_some((y, m, d))
}

/// Compares dotted numeric versions ("2.11.0" > "2.4.3"); None when either is not numeric.
pub fn cmp_versions(a: &str, b: &str) -> Option<std::cmp::Ordering> {
    let parse = |s: &str| {
        s.trim()
            .split('.')
            .map(|p| p.parse::<u64>().ok())
            .collect::<Option<Vec<_>>>()
    };
    let (mut x, mut y) = (parse(a)?, parse(b)?);
    let n = x.len().max(y.len());
    x.resize(n, 0);
    y.resize(n, 0);
    Some(x.cmp(&y))
}

impl Server {
    /// Whether DMI `vendor` and `product` name this model (see [`Server::model`] for wildcards).
    pub fn matches(&self, vendor: &str, product: &str) -> bool {
        let eq = |a: &str, b: &str| a.trim().eq_ignore_ascii_case(b.trim());
        let model_ok = match self.model.strip_suffix('*') {
            Some(prefix) => product
                .trim()
                .to_ascii_lowercase()
                .starts_with(&prefix.to_ascii_lowercase()),
            None => eq(&self.model, product),
        };
        eq(&self.vendor, vendor) && model_ok
    }
}

impl CpuFamily {
    /// Whether a CPU of this CPUID vendor, display family and model is in this family.
    pub fn matches(&self, vendor: &str, family: u32, model: u32) -> bool {
        self.vendor.get_ref() == vendor
            && self.family == family
            && self
                .models
                .iter()
                .any(|r| (r.get_ref()[0]..=r.get_ref()[1]).contains(&model))
    }
}
