//! Host facts -> findings -> verdict against a supported-server list.
//!
//! [`HostSource`] is the only thing that touches the host (live machine, snapshot
//! directory, imported dumps); it yields a [`RawHost`]. Everything after it is pure:
//! [`facts::derive`] interprets, [`verdict::decide`] scores against [`hcl`] lists, and
//! [`ProbeReport`] is the serializable result (`"schema": "hvcert.probe/v1"`).
use std::path::{Path, PathBuf};

pub mod chipsets;
pub mod facts;
pub mod fleet;
pub mod hcl;
pub mod import;
pub mod kvm_check;
pub mod live;
pub mod raw;
pub mod report;
pub mod snapshot;
pub mod verdict;

pub use hcl::Hcl;
pub use live::LiveOptions;
pub use raw::RawHost;
pub use report::{Class, KvmMode, ProbeReport, Qualifier, State};

/// Errors of the probe itself (not findings about the host, which are facts).
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    // The OS error is the source, not part of this message: error reporters that print the
    // chain (anyhow's `{:#}`, `Caused by:`) would otherwise show it twice.
    /// A file or directory could not be read or written.
    #[error("{path}")]
    Io {
        /// The path that failed.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// An input file is malformed.
    #[error("{file}:{line}: {msg}")]
    Parse {
        /// The file (as given).
        file: String,
        /// 1-based line of the problem.
        line: usize,
        /// What was expected and what was found.
        msg: String,
    },
    /// Anything else (e.g. no host source given).
    #[error("{0}")]
    Other(String),
}

impl ProbeError {
    /// An [`ProbeError::Io`] for `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        ProbeError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// One input about a host. Several combine into one host ([`collect`]).
#[derive(Debug, Clone)]
pub enum HostSource {
    /// This machine.
    Live(LiveOptions),
    /// A directory written by `hvcert probe --capture`.
    Snapshot(PathBuf),
    /// AIDA64/EVEREST CPUID text or `cpuid -r` output.
    CpuidDump(PathBuf),
    /// `dmidecode` text.
    Dmidecode(PathBuf),
}

impl HostSource {
    /// Reads this source into a [`RawHost`].
    pub fn collect(&self) -> Result<RawHost, ProbeError> {
        match self {
            HostSource::Live(o) => Ok(live::collect(o)),
            HostSource::Snapshot(d) => snapshot::read(d),
            HostSource::CpuidDump(f) => import::cpuid_dump(f),
            HostSource::Dmidecode(f) => import::dmidecode(f),
        }
    }
}

/// Collects every source and combines them: earlier sources win, later ones fill gaps.
pub fn collect(sources: &[HostSource]) -> Result<RawHost, ProbeError> {
    let mut host: Option<RawHost> = None;
    for s in sources {
        let h = s.collect()?;
        host = Some(match host {
            None => h,
            Some(prev) => prev.combine(h),
        });
    }
    host.ok_or_else(|| ProbeError::Other("no host source given".into()))
}

/// Interprets raw inputs and scores them against `lists` (pure).
pub fn evaluate(raw: &RawHost, lists: &[Hcl]) -> ProbeReport {
    let d = facts::derive(raw);
    let verdict = verdict::decide(&d, lists);
    let mut kinds: Vec<&str> = Vec::new();
    for i in &raw.inputs {
        let k = if i == "live host" {
            "live"
        } else if i.starts_with("snapshot") || i == snapshot::CAPTURED_LIVE {
            "snapshot"
        } else {
            "import"
        };
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    ProbeReport {
        schema: report::SCHEMA.to_string(),
        source: report::SourceInfo {
            kind: kinds.join("+"),
            inputs: raw.inputs.clone(),
        },
        cpu: d.cpu,
        features: d.features,
        kvm: d.kvm,
        platform: d.platform,
        chipset: d.chipset,
        verdict,
        notes: d.notes,
    }
}

/// Options of [`probe_live`].
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// Run the KVM micro-guest (default true).
    pub kvm_check: bool,
    /// Supported-server lists; empty = the built-in sample list.
    pub lists: Vec<Hcl>,
    /// A KVM check this process already ran on /dev/kvm (certify checks KVM before its
    /// first case): used instead of running the micro-guest again when `kvm_check` is set.
    pub kvm_result: Option<raw::KvmCheck>,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            kvm_check: true,
            lists: Vec::new(),
            kvm_result: None,
        }
    }
}

/// Probes this machine (for certify to record host facts). Never fails: what cannot be
/// read becomes `unknown` with why.
pub fn probe_live(opts: &ProbeOptions) -> ProbeReport {
    let reuse = opts.kvm_result.clone().filter(|_| opts.kvm_check);
    let mut raw = live::collect(&LiveOptions {
        kvm_check: opts.kvm_check && reuse.is_none(),
        ..LiveOptions::default()
    });
    if let Some(check) = reuse {
        raw.kvm = raw::Avail::Known(check);
    }
    let lists = if opts.lists.is_empty() {
        hcl::sample().map(|s| vec![s]).unwrap_or_default()
    } else {
        opts.lists.clone()
    };
    evaluate(&raw, &lists)
}
