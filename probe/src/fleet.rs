//! Fleets: find every host under some folders and score each one on its own, in parallel.
//!
//! [`discover`] walks the folders. A host is:
//! - a snapshot directory (one holding `host.json`, as `hvcert probe --capture` writes);
//!   the walk does not descend into it;
//! - a pair of dumps: a directory (not a snapshot) holding exactly one CPUID dump and
//!   exactly one `dmidecode` dump, which describe one machine;
//! - otherwise each CPUID or `dmidecode` dump file on its own.
//!
//! Files that are neither (READMEs, scripts) are skipped. Unlike `hvcert probe --from A
//! --from B`, which combines its inputs into one host, a fleet never merges two hosts.
//! [`score`] then reads and scores every host; a host that cannot be read is a failed
//! [`Scored`] (its error kept), never a failed run.
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::{evaluate, Hcl, HostSource, ProbeReport};

/// One host found by [`discover`]: its name and the inputs that describe it.
#[derive(Debug, Clone)]
pub struct FleetHost {
    /// The host's name: its path relative to the folder given, or the folder's own name.
    pub name: String,
    /// The snapshot directory or dump file (the first one of a pair).
    pub path: PathBuf,
    /// What to read; several sources here describe the one machine (a dump pair).
    pub sources: Vec<HostSource>,
    /// Set when the host could not even be listed (e.g. a folder that does not exist).
    pub error: Option<String>,
}

/// One host's result: the probe report, or why it could not be produced.
#[derive(Debug, Clone)]
pub struct Scored {
    /// As in [`FleetHost::name`].
    pub name: String,
    /// As in [`FleetHost::path`].
    pub path: PathBuf,
    /// The probe report, or the error (with its causes) that prevented it.
    pub result: Result<ProbeReport, String>,
}

/// What kind of dump a file is, judged by its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DumpKind {
    Cpuid,
    Dmidecode,
}

/// Looks at a file's text: `dmidecode` output, a CPUID dump (AIDA64/EVEREST, InstLatx64,
/// `cpuid -r`), or neither.
fn sniff(path: &Path) -> Option<DumpKind> {
    use std::io::Read;
    let mut head = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(64 * 1024)
        .read_to_end(&mut head)
        .ok()?;
    let text = String::from_utf8_lossy(&head);
    if text.starts_with("# dmidecode") || text.lines().any(|l| l.starts_with("Handle 0x")) {
        return Some(DumpKind::Dmidecode);
    }
    let cpuid_line = |l: &str| {
        let t = l.trim_start();
        (t.starts_with("0x") && t.contains("eax="))
            || t.strip_prefix("CPUID ").is_some_and(|r| {
                r.len() >= 8 && r.as_bytes()[..8].iter().all(u8::is_ascii_hexdigit)
            })
    };
    if text.lines().any(cpuid_line) {
        return Some(DumpKind::Cpuid);
    }
    None
}

/// Finds every host under `roots` (folders, snapshot folders or dump files), sorted by
/// name within each root. A root that cannot be read is one host with an error. Names are
/// unique: when two roots hold the same name, each such host's name is prefixed with its
/// root (`lab-a/node1`, `lab-b/node1`).
pub fn discover(roots: &[PathBuf]) -> Vec<FleetHost> {
    let mut hosts = Vec::new();
    let mut root_of = Vec::new();
    for root in roots {
        let root_name = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| root.display().to_string());
        let start = hosts.len();
        match std::fs::metadata(root) {
            Err(e) => hosts.push(FleetHost {
                name: root_name.clone(),
                path: root.clone(),
                sources: Vec::new(),
                error: Some(format!("{}: {e}", root.display())),
            }),
            Ok(m) if m.is_file() => {
                let source = match sniff(root) {
                    Some(DumpKind::Dmidecode) => HostSource::Dmidecode(root.clone()),
                    // A file given by name is tried as a CPUID dump; its importer says why not.
                    _ => HostSource::CpuidDump(root.clone()),
                };
                hosts.push(FleetHost {
                    name: root_name.clone(),
                    path: root.clone(),
                    sources: vec![source],
                    error: None,
                });
            }
            Ok(_) => walk(
                root,
                root,
                &root_name,
                &mut hosts,
                &mut std::collections::HashSet::new(),
            ),
        }
        hosts[start..].sort_by(|a, b| a.name.cmp(&b.name));
        root_of.resize(hosts.len(), root_name);
    }
    let mut seen = std::collections::HashMap::new();
    for h in &hosts {
        *seen.entry(h.name.clone()).or_insert(0usize) += 1;
    }
    for (h, root) in hosts.iter_mut().zip(&root_of) {
        if seen[&h.name] > 1 && h.name != *root {
            h.name = format!("{root}/{}", h.name);
        }
    }
    hosts
}

/// The name of `path` under `root` (`root_name` for the root itself).
fn rel_name(root: &Path, path: &Path, root_name: &str) -> String {
    match path.strip_prefix(root) {
        Ok(r) if !r.as_os_str().is_empty() => r.display().to_string(),
        _ => root_name.to_string(),
    }
}

/// Walks `dir` for hosts; `visited` (canonical paths) stops symbolic-link loops.
fn walk(
    root: &Path,
    dir: &Path,
    root_name: &str,
    hosts: &mut Vec<FleetHost>,
    visited: &mut std::collections::HashSet<PathBuf>,
) {
    if let Ok(c) = dir.canonicalize() {
        if !visited.insert(c) {
            return;
        }
    }
    let name = rel_name(root, dir, root_name);
    if dir.join(crate::snapshot::HOST_FILE).exists() {
        hosts.push(FleetHost {
            name,
            path: dir.to_path_buf(),
            sources: vec![HostSource::Snapshot(dir.to_path_buf())],
            error: None,
        });
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(rd) => {
            let mut v: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
            v.sort();
            v
        }
        Err(e) => {
            hosts.push(FleetHost {
                name,
                path: dir.to_path_buf(),
                sources: Vec::new(),
                error: Some(format!("{}: {e}", dir.display())),
            });
            return;
        }
    };
    let mut cpuid = Vec::new();
    let mut dmi = Vec::new();
    for p in &entries {
        if p.is_dir() {
            walk(root, p, root_name, hosts, visited);
        } else if p.is_file() {
            match sniff(p) {
                Some(DumpKind::Cpuid) => cpuid.push(p.clone()),
                Some(DumpKind::Dmidecode) => dmi.push(p.clone()),
                None => {}
            }
        }
    }
    if cpuid.len() == 1 && dmi.len() == 1 {
        hosts.push(FleetHost {
            name,
            path: cpuid[0].clone(),
            sources: vec![
                HostSource::CpuidDump(cpuid[0].clone()),
                HostSource::Dmidecode(dmi[0].clone()),
            ],
            error: None,
        });
        return;
    }
    for p in cpuid {
        hosts.push(FleetHost {
            name: rel_name(root, &p, root_name),
            path: p.clone(),
            sources: vec![HostSource::CpuidDump(p)],
            error: None,
        });
    }
    for p in dmi {
        hosts.push(FleetHost {
            name: rel_name(root, &p, root_name),
            path: p.clone(),
            sources: vec![HostSource::Dmidecode(p)],
            error: None,
        });
    }
}

/// Reads and scores one host on its own.
pub fn score_one(host: &FleetHost, lists: &[Hcl]) -> Scored {
    let result = match &host.error {
        Some(e) => Err(e.clone()),
        None => crate::collect(&host.sources)
            .map(|raw| evaluate(&raw, lists))
            .map_err(|e| error_chain(&e)),
    };
    Scored {
        name: host.name.clone(),
        path: host.path.clone(),
        result,
    }
}

/// An error with its causes, `: `-separated.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// The number of worker threads [`score`] uses for `hosts` hosts: the available cores,
/// at most one per host, at least one.
pub fn workers(hosts: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.min(hosts).max(1)
}

/// Scores every host, each on its own, on up to `threads` threads (0 = [`workers`]).
/// The results are in the order of `hosts`.
pub fn score(hosts: &[FleetHost], lists: &[Hcl], threads: usize) -> Vec<Scored> {
    let threads = if threads == 0 {
        workers(hosts.len())
    } else {
        threads.min(hosts.len()).max(1)
    };
    let next = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<Scored>>> = Mutex::new(vec![None; hosts.len()]);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(h) = hosts.get(i) else { break };
                let r = score_one(h, lists);
                // A poisoned lock only means another worker panicked; its slot stays empty.
                let mut g = slots.lock().unwrap_or_else(|p| p.into_inner());
                g[i] = Some(r);
            });
        }
    });
    let slots = slots.into_inner().unwrap_or_else(|p| p.into_inner());
    slots
        .into_iter()
        .zip(hosts)
        .map(|(r, h)| {
            r.unwrap_or_else(|| Scored {
                name: h.name.clone(),
                path: h.path.clone(),
                result: Err("scoring this host panicked".into()),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/hosts")
    }

    #[test]
    fn discovers_snapshots_and_dumps_without_merging() {
        let hosts = discover(&[fixtures()]);
        let snaps = hosts
            .iter()
            .filter(|h| matches!(h.sources.as_slice(), [HostSource::Snapshot(_)]))
            .count();
        assert_eq!(snaps, 21);
        // imported-dumps holds several CPUID dumps and one dmidecode: not a pair, so each
        // dump is a host of its own.
        assert!(hosts.iter().all(|h| h.sources.len() == 1));
        assert!(hosts
            .iter()
            .any(|h| h.name == "imported-dumps/Dell_PowerEdge-R630_0354475C3BDD.txt"));
        assert!(!hosts.iter().any(|h| h.name.ends_with("README.md")));
    }

    #[test]
    fn the_same_name_under_two_roots_is_kept_apart() {
        let dir = tempfile::tempdir().unwrap();
        for lab in ["lab-a", "lab-b"] {
            let node = dir.path().join(lab).join("node1");
            std::fs::create_dir_all(&node).unwrap();
            std::fs::write(node.join("host.json"), "{}").unwrap();
        }
        let hosts = discover(&[dir.path().join("lab-a"), dir.path().join("lab-b")]);
        let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["lab-a/node1", "lab-b/node1"]);
    }

    #[test]
    fn a_symbolic_link_loop_is_walked_once() {
        let dir = tempfile::tempdir().unwrap();
        let node = dir.path().join("rack/node1");
        std::fs::create_dir_all(&node).unwrap();
        std::fs::write(node.join("host.json"), "{}").unwrap();
        std::os::unix::fs::symlink(dir.path(), dir.path().join("rack/loop")).unwrap();
        let hosts = discover(&[dir.path().to_path_buf()]);
        let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["rack/node1"]);
    }

    #[test]
    fn a_missing_folder_is_one_failed_host() {
        let hosts = discover(&[PathBuf::from("/nonexistent/fleet")]);
        assert_eq!(hosts.len(), 1);
        let s = score(&hosts, &[], 0);
        assert!(s[0].result.is_err());
    }

    #[test]
    fn a_pair_of_dumps_is_one_host() {
        let dir = tempfile::tempdir().unwrap();
        let pair = dir.path().join("r630");
        std::fs::create_dir(&pair).unwrap();
        let dumps = fixtures().join("imported-dumps");
        for f in [
            "Dell_PowerEdge-R630_0354475C3BDD.txt",
            "GenuineIntel00206D5_SandyBridgeEP_CPUID.txt",
        ] {
            std::fs::copy(dumps.join(f), pair.join(f)).unwrap();
        }
        let hosts = discover(&[dir.path().to_path_buf()]);
        assert_eq!(hosts.len(), 1);
        assert_eq!(hosts[0].name, "r630");
        assert_eq!(hosts[0].sources.len(), 2);
    }
}
