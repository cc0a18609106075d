//! The initramfs hvcert builds for stock distribution kernels (issue 11): busybox, the
//! kernel package's own driver modules with their dependencies, and an `/init` that prints
//! KTAP on the console and powers the VM off.
//!
//! [`build`] takes an extracted `linux-image-*` package (its `lib/modules/<release>/`) and
//! Debian's `busybox-static` binary and returns a newc cpio archive (uncompressed: the
//! kernel unpacks it without a decompressor, which matters when guest ring 0 is emulated).
//! The archive is reproducible: the same inputs give the same bytes (entries sorted by
//! path, inode numbers given in that order, one fixed mtime, uid and gid 0, modes fixed by
//! the builder rather than read from the host).
//!
//! Modules: Debian 12's package ships uncompressed `.ko` files and no `modules.dep`
//! (`depmod` runs when the package is installed). The dependencies are read from
//! `modules.dep` when there is one, else from each module's own `.modinfo` section
//! (`depends=`), as `depmod` does. Compressed modules (`.ko.xz`, `.ko.zst`, `.ko.gz`) are
//! refused with a clear error: busybox's `insmod` does not decompress them.
//!
//! Layout of the archive:
//! - `/init`: the script in `initramfs/init.sh` (its header documents the kernel
//!   command-line parameters that select the cases, `hvcert.disk=vda hvcert.nic=eth0 …`);
//! - `/bin/busybox` and a symlink per applet `/init` uses ([`APPLETS`]);
//! - `/dev/console` and `/dev/null` (the kernel opens the console before `/init` runs);
//! - `/lib/modules/<name>.ko`, one per module, `-` in names written as `_`;
//! - `/etc/hvcert/modules`: a line per wanted module, `name: dep … name`, its load order;
//!   a module built into the kernel has an empty list;
//! - `/etc/hvcert/release`: the kernel release the modules belong to.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The modules hvcert's guest profiles need: virtio (`none` interface), Hyper-V (VMBus
/// storage and network; `sd_mod` gives storvsc's SCSI disk its `/dev/sda`) and Xen (PV block
/// and network front ends).
pub const DEFAULT_MODULES: &[&str] = &[
    "virtio_mmio",
    "virtio_blk",
    "virtio_net",
    "hv_vmbus",
    "hv_storvsc",
    "sd_mod",
    "hv_netvsc",
    "xen_blkfront",
    "xen_netfront",
];

/// The busybox applets `/init` runs, each linked as `/bin/<applet>` to `/bin/busybox`.
pub const APPLETS: &[&str] = &[
    "[", "arping", "basename", "blockdev", "cat", "cmp", "cut", "dd", "dmesg", "echo", "grep",
    "halt", "head", "insmod", "ip", "ls", "lsmod", "mkdir", "mount", "od", "poweroff", "printf",
    "readlink", "sed", "sh", "sleep", "sync", "tail", "test", "tr", "uname",
];

/// The `/init` script (POSIX sh for busybox ash).
pub const INIT_SCRIPT: &str = include_str!("initramfs/init.sh");

/// What [`build`] puts in the initramfs.
#[derive(Debug, Clone)]
pub struct InitramfsSpec {
    /// Root of the extracted kernel package: the directory holding `lib/modules/<release>/`
    /// (for example `dpkg-deb -x linux-image-6.1.0-48-cloud-amd64_….deb <dir>`).
    pub kernel_tree: PathBuf,
    /// The release under `lib/modules/`; `None` takes the only one there is.
    pub release: Option<String>,
    /// Modules to include by name (`-` and `_` are the same), each with its dependencies.
    pub modules: Vec<String>,
    /// The static busybox binary (`bin/busybox` of Debian's `busybox-static`).
    pub busybox: PathBuf,
    /// Modification time of every entry, in seconds since the epoch.
    pub mtime: u32,
}

impl InitramfsSpec {
    /// A spec with [`DEFAULT_MODULES`], the release found in the tree and mtime 0.
    pub fn new(kernel_tree: impl Into<PathBuf>, busybox: impl Into<PathBuf>) -> Self {
        Self {
            kernel_tree: kernel_tree.into(),
            release: None,
            modules: DEFAULT_MODULES.iter().map(|m| m.to_string()).collect(),
            busybox: busybox.into(),
            mtime: 0,
        }
    }
}

/// Why an initramfs could not be built.
#[derive(Debug, thiserror::Error)]
pub enum InitramfsError {
    /// The kernel tree has no `lib/modules/<release>/` directory.
    #[error("the kernel package has no modules directory: searched {searched}")]
    NoModulesDir {
        /// The directory looked in (`lib/modules` or `lib/modules/<release>`).
        searched: PathBuf,
    },
    /// More than one release under `lib/modules/` and none chosen.
    #[error("{dir} holds several kernel releases ({}): choose one", releases.join(", "))]
    SeveralReleases {
        /// `lib/modules` of the kernel tree.
        dir: PathBuf,
        /// The releases found there.
        releases: Vec<String>,
    },
    /// A wanted module, or one it depends on, is not in the package.
    #[error("module {module}{} not found: searched {searched}", required_by.as_ref().map(|r| format!(" (needed by {r})")).unwrap_or_default())]
    ModuleMissing {
        /// The module's name.
        module: String,
        /// The module that depends on it; `None` for a wanted module.
        required_by: Option<String>,
        /// Where it was looked for (`modules.dep`, or the `kernel/` tree that was walked).
        searched: PathBuf,
    },
    /// The module file is compressed; busybox `insmod` cannot load it.
    #[error(
        "module {module} is compressed ({path}): busybox insmod loads only uncompressed .ko files"
    )]
    CompressedModule {
        /// The module's name.
        module: String,
        /// Its file.
        path: PathBuf,
    },
    /// A module's `.modinfo` could not be read.
    #[error("module {path}: cannot read its .modinfo: {reason}")]
    BadModule {
        /// The module file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The modules depend on each other in a circle.
    #[error("module dependency cycle through {module}")]
    Cycle {
        /// A module on the cycle.
        module: String,
    },
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// An entry does not fit a newc header (a file of 4 GiB or more).
    #[error("{name} does not fit a newc cpio entry ({size} bytes)")]
    TooLarge {
        /// The archive path.
        name: String,
        /// Its size.
        size: usize,
    },
}

/// Result of this module's functions.
pub type Result<T> = std::result::Result<T, InitramfsError>;

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> InitramfsError + '_ {
    move |source| InitramfsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A module name as the kernel spells it: `-` written as `_`.
fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

/// The module name of a file name (`intel-uncore.ko.xz` → `intel_uncore`), if it is a module.
fn module_name(file_name: &str) -> Option<String> {
    [".ko", ".ko.xz", ".ko.zst", ".ko.gz"]
        .iter()
        .find_map(|ext| file_name.strip_suffix(ext))
        .map(normalize)
}

/// The modules of one kernel release: where each is and what it depends on.
struct ModuleIndex {
    /// `lib/modules/<release>`.
    dir: PathBuf,
    /// The release (the directory's name).
    release: String,
    /// Module name → file, relative to `dir`.
    files: BTreeMap<String, PathBuf>,
    /// Module name → the dependencies `modules.dep` lists; `None` when there is no
    /// `modules.dep` (they are then read from the module's `.modinfo`).
    deps: Option<HashMap<String, Vec<String>>>,
    /// Modules built into the kernel (`modules.builtin`).
    builtin: BTreeSet<String>,
    /// What a missing module's error says was searched.
    searched: PathBuf,
}

impl ModuleIndex {
    fn open(kernel_tree: &Path, release: Option<&str>) -> Result<Self> {
        let base = kernel_tree.join("lib/modules");
        let release = match release {
            Some(r) => r.to_string(),
            None => {
                let rd = fs::read_dir(&base).map_err(|_| InitramfsError::NoModulesDir {
                    searched: base.clone(),
                })?;
                let mut releases = Vec::new();
                for e in rd {
                    let e = e.map_err(io_err(&base))?;
                    if e.path().is_dir() {
                        releases.push(e.file_name().to_string_lossy().into_owned());
                    }
                }
                releases.sort();
                match releases.len() {
                    0 => return Err(InitramfsError::NoModulesDir { searched: base }),
                    1 => releases.remove(0),
                    _ => {
                        return Err(InitramfsError::SeveralReleases {
                            dir: base,
                            releases,
                        })
                    }
                }
            }
        };
        let dir = base.join(&release);
        if !dir.is_dir() {
            return Err(InitramfsError::NoModulesDir { searched: dir });
        }
        let builtin = match fs::read_to_string(dir.join("modules.builtin")) {
            Ok(text) => text
                .lines()
                .filter_map(|l| l.rsplit('/').next().and_then(module_name))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeSet::new(),
            Err(e) => return Err(io_err(&dir.join("modules.builtin"))(e)),
        };
        let dep_path = dir.join("modules.dep");
        let mut files = BTreeMap::new();
        match fs::read_to_string(&dep_path) {
            Ok(text) => {
                let mut deps = HashMap::new();
                for line in text.lines() {
                    let Some((file, rest)) = line.split_once(':') else {
                        continue;
                    };
                    let Some(name) = file.rsplit('/').next().and_then(module_name) else {
                        continue;
                    };
                    let list = rest
                        .split_whitespace()
                        .filter_map(|d| d.rsplit('/').next().and_then(module_name))
                        .collect();
                    files.insert(name.clone(), PathBuf::from(file));
                    deps.insert(name, list);
                }
                Ok(Self {
                    dir,
                    release,
                    files,
                    deps: Some(deps),
                    builtin,
                    searched: dep_path,
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let kernel = dir.join("kernel");
                walk(&dir, &kernel, &mut files)?;
                Ok(Self {
                    dir,
                    release,
                    files,
                    deps: None,
                    builtin,
                    searched: kernel,
                })
            }
            Err(e) => Err(io_err(&dep_path)(e)),
        }
    }

    /// The dependencies of `name` (a module that is in `files`).
    fn deps_of(&self, name: &str, rel: &Path) -> Result<Vec<String>> {
        if let Some(deps) = &self.deps {
            return Ok(deps.get(name).cloned().unwrap_or_default());
        }
        let path = self.dir.join(rel);
        let data = fs::read(&path).map_err(io_err(&path))?;
        modinfo_depends(&data).map_err(|reason| InitramfsError::BadModule { path, reason })
    }

    /// `roots` and everything they depend on, each once, every dependency before its
    /// users; each root's own load order alongside.
    fn resolve(&self, roots: &[String]) -> Result<Resolved> {
        let mut state = HashMap::new();
        let mut order = Vec::new();
        let mut per_root = Vec::new();
        for root in roots {
            let root = normalize(root);
            if per_root.iter().any(|(r, _)| *r == root) {
                continue;
            }
            let mut mine = Vec::new();
            self.visit(&root, None, &mut state, &mut order, &mut mine)?;
            per_root.push((root, mine));
        }
        Ok(Resolved { order, per_root })
    }

    fn visit(
        &self,
        name: &str,
        required_by: Option<&str>,
        state: &mut HashMap<String, bool>,
        order: &mut Vec<(String, PathBuf)>,
        mine: &mut Vec<String>,
    ) -> Result<()> {
        if mine.iter().any(|m| m == name) {
            return Ok(());
        }
        if self.builtin.contains(name) && !self.files.contains_key(name) {
            return Ok(());
        }
        let rel = self
            .files
            .get(name)
            .ok_or_else(|| InitramfsError::ModuleMissing {
                module: name.to_string(),
                required_by: required_by.map(str::to_string),
                searched: self.searched.clone(),
            })?;
        match state.get(name) {
            Some(false) => {
                return Err(InitramfsError::Cycle {
                    module: name.to_string(),
                })
            }
            Some(true) => {
                // Loaded already for another root: its dependencies are in `order`, but this
                // root's own list still needs them.
                for d in self.deps_of(name, rel)? {
                    self.visit(&d, Some(name), state, order, mine)?;
                }
                mine.push(name.to_string());
                return Ok(());
            }
            None => {}
        }
        let ext_ok = rel.extension().is_some_and(|e| e == "ko");
        if !ext_ok {
            return Err(InitramfsError::CompressedModule {
                module: name.to_string(),
                path: self.dir.join(rel),
            });
        }
        state.insert(name.to_string(), false);
        for d in self.deps_of(name, rel)? {
            self.visit(&d, Some(name), state, order, mine)?;
        }
        state.insert(name.to_string(), true);
        order.push((name.to_string(), self.dir.join(rel)));
        mine.push(name.to_string());
        Ok(())
    }
}

/// The modules to put in the archive.
struct Resolved {
    /// Every module once, in load order, with its file.
    order: Vec<(String, PathBuf)>,
    /// Each wanted module with its own load order (empty when built into the kernel).
    per_root: Vec<(String, Vec<String>)>,
}

/// Every module file under `dir` (recursively, in sorted order) into `files`, by name,
/// relative to `base`. The first of two files with one name wins, as in `depmod`'s search.
fn walk(base: &Path, dir: &Path, files: &mut BTreeMap<String, PathBuf>) -> Result<()> {
    let rd = fs::read_dir(dir).map_err(io_err(dir))?;
    let mut entries = rd
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(io_err(dir))?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(base, &path, files)?;
        } else if let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(module_name)
        {
            let rel = path.strip_prefix(base).unwrap_or(&path).to_path_buf();
            files.entry(name).or_insert(rel);
        }
    }
    Ok(())
}

/// The `depends=` list of a module's `.modinfo` section (NUL-separated `key=value`).
fn modinfo_depends(elf: &[u8]) -> std::result::Result<Vec<String>, String> {
    use object::{Object, ObjectSection};
    let file = object::File::parse(elf).map_err(|e| e.to_string())?;
    let section = file
        .section_by_name(".modinfo")
        .ok_or("no .modinfo section")?;
    let data = section.data().map_err(|e| e.to_string())?;
    Ok(data
        .split(|b| *b == 0)
        .find_map(|kv| kv.strip_prefix(b"depends="))
        .map(|list| {
            String::from_utf8_lossy(list)
                .split(',')
                .filter(|d| !d.is_empty())
                .map(normalize)
                .collect()
        })
        .unwrap_or_default())
}

/// The pattern `/init` writes when the command line has no `hvcert.pattern=`.
pub const DEFAULT_PATTERN: &str = "hvcert";

/// The 512-byte block `/init` writes at sector `hvcert.sector=` (default 0) of the disk
/// for `hvcert.pattern=<pattern>`: `HVCERT <pattern>\n`, zero-padded. The host compares the
/// disk image with it after the VM ends. `None` when the text does not fit one sector.
pub fn disk_block(pattern: &str) -> Option<Vec<u8>> {
    let mut block = format!("HVCERT {pattern}\n").into_bytes();
    if block.len() > 512 {
        return None;
    }
    block.resize(512, 0);
    Some(block)
}

/// The status `/init` printed before powering off (its line `# hvcert status N (…)`: the
/// number of failed cases), from the console output; `None` if the line is not there
/// (the guest never got that far).
pub fn console_status(console: &str) -> Option<u32> {
    console.lines().rev().find_map(|l| {
        l.trim_end_matches('\r')
            .strip_prefix("# hvcert status ")?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
}

/// One archive entry's type and content.
enum Node {
    Dir,
    File { mode: u32, data: Vec<u8> },
    Symlink(String),
    CharDev { major: u32, minor: u32 },
}

/// Builds the initramfs `spec` describes: a newc cpio archive, uncompressed.
///
/// The same spec over the same files gives the same bytes. Errors name what is missing
/// and where it was looked for: no `lib/modules/<release>/` in the kernel tree, a wanted
/// module (or a dependency, with the module that needs it) not in the package, a
/// compressed module, an unreadable busybox.
pub fn build(spec: &InitramfsSpec) -> Result<Vec<u8>> {
    let index = ModuleIndex::open(&spec.kernel_tree, spec.release.as_deref())?;
    let resolved = index.resolve(&spec.modules)?;
    let busybox = fs::read(&spec.busybox).map_err(io_err(&spec.busybox))?;

    let mut tree: BTreeMap<String, Node> = BTreeMap::new();
    for dir in [
        "bin",
        "dev",
        "etc",
        "etc/hvcert",
        "lib",
        "lib/modules",
        "proc",
        "sys",
        "tmp",
    ] {
        tree.insert(dir.to_string(), Node::Dir);
    }
    tree.insert("dev/console".into(), Node::CharDev { major: 5, minor: 1 });
    tree.insert("dev/null".into(), Node::CharDev { major: 1, minor: 3 });
    tree.insert(
        "init".into(),
        Node::File {
            mode: 0o755,
            data: INIT_SCRIPT.as_bytes().to_vec(),
        },
    );
    tree.insert(
        "bin/busybox".into(),
        Node::File {
            mode: 0o755,
            data: busybox,
        },
    );
    for applet in APPLETS {
        tree.insert(format!("bin/{applet}"), Node::Symlink("busybox".into()));
    }
    for (name, path) in &resolved.order {
        let data = fs::read(path).map_err(io_err(path))?;
        tree.insert(
            format!("lib/modules/{name}.ko"),
            Node::File { mode: 0o644, data },
        );
    }
    let mut list = String::new();
    for (root, order) in &resolved.per_root {
        list.push_str(root);
        list.push(':');
        for m in order {
            list.push(' ');
            list.push_str(m);
        }
        list.push('\n');
    }
    tree.insert(
        "etc/hvcert/modules".into(),
        Node::File {
            mode: 0o644,
            data: list.into_bytes(),
        },
    );
    tree.insert(
        "etc/hvcert/release".into(),
        Node::File {
            mode: 0o644,
            data: format!("{}\n", index.release).into_bytes(),
        },
    );
    write_newc(&tree, spec.mtime)
}

/// The archive of `tree`, in its (sorted) order, inode numbers from 1 in that order.
fn write_newc(tree: &BTreeMap<String, Node>, mtime: u32) -> Result<Vec<u8>> {
    const S_IFDIR: u32 = 0o040000;
    const S_IFREG: u32 = 0o100000;
    const S_IFLNK: u32 = 0o120000;
    const S_IFCHR: u32 = 0o020000;
    let mut out = Vec::new();
    let to_io = |source| InitramfsError::Io {
        path: PathBuf::from("<cpio archive in memory>"),
        source,
    };
    for (ino, (name, node)) in (1u32..).zip(tree) {
        let b = cpio::NewcBuilder::new(name)
            .ino(ino)
            .uid(0)
            .gid(0)
            .mtime(mtime);
        let (b, data): (_, &[u8]) = match node {
            Node::Dir => (b.mode(S_IFDIR | 0o755).nlink(2), &[]),
            Node::File { mode, data } => (b.mode(S_IFREG | mode), data),
            Node::Symlink(target) => (b.mode(S_IFLNK | 0o777), target.as_bytes()),
            Node::CharDev { major, minor } => (
                b.mode(S_IFCHR | 0o600)
                    .rdev_major(*major)
                    .rdev_minor(*minor),
                &[],
            ),
        };
        let size = u32::try_from(data.len()).map_err(|_| InitramfsError::TooLarge {
            name: name.clone(),
            size: data.len(),
        })?;
        let mut w = b.write(&mut out, size);
        w.write_all(data).map_err(to_io)?;
        w.finish().map_err(to_io)?;
    }
    cpio::newc::trailer(&mut out).map_err(to_io)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    const RELEASE: &str = "6.1.0-test-cloud-amd64";

    /// A minimal ELF64 relocatable file whose only section is `.modinfo` holding `modinfo`.
    fn elf_with_modinfo(modinfo: &[u8]) -> Vec<u8> {
        let shstrtab = b"\0.modinfo\0.shstrtab\0";
        let mut f = Vec::new();
        f.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
        let data_end = 64 + modinfo.len() + shstrtab.len();
        let shoff = data_end.next_multiple_of(8);
        f.extend_from_slice(&1u16.to_le_bytes()); // ET_REL
        f.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
        f.extend_from_slice(&1u32.to_le_bytes());
        f.extend_from_slice(&0u64.to_le_bytes()); // entry
        f.extend_from_slice(&0u64.to_le_bytes()); // phoff
        f.extend_from_slice(&(shoff as u64).to_le_bytes());
        f.extend_from_slice(&0u32.to_le_bytes()); // flags
        for v in [64u16, 0, 0, 64, 3, 2] {
            f.extend_from_slice(&v.to_le_bytes());
        }
        f.extend_from_slice(modinfo);
        f.extend_from_slice(shstrtab);
        f.resize(shoff, 0);
        let sh = |f: &mut Vec<u8>, name: u32, ty: u32, off: usize, size: usize| {
            f.extend_from_slice(&name.to_le_bytes());
            f.extend_from_slice(&ty.to_le_bytes());
            f.extend_from_slice(&0u64.to_le_bytes()); // flags
            f.extend_from_slice(&0u64.to_le_bytes()); // addr
            f.extend_from_slice(&(off as u64).to_le_bytes());
            f.extend_from_slice(&(size as u64).to_le_bytes());
            f.extend_from_slice(&0u32.to_le_bytes());
            f.extend_from_slice(&0u32.to_le_bytes());
            f.extend_from_slice(&1u64.to_le_bytes());
            f.extend_from_slice(&0u64.to_le_bytes());
        };
        sh(&mut f, 0, 0, 0, 0);
        sh(&mut f, 1, 1, 64, modinfo.len());
        sh(&mut f, 10, 3, 64 + modinfo.len(), shstrtab.len());
        f
    }

    /// Modules of the fake package: file (relative to lib/modules/<release>) and depends=.
    const MODULES: &[(&str, &str)] = &[
        ("kernel/drivers/virtio/virtio.ko", ""),
        ("kernel/drivers/virtio/virtio_ring.ko", ""),
        ("kernel/drivers/virtio/virtio_mmio.ko", "virtio,virtio_ring"),
        ("kernel/drivers/block/virtio_blk.ko", "virtio,virtio_ring"),
        (
            "kernel/drivers/net/virtio_net.ko",
            "virtio_ring,virtio,net_failover",
        ),
        ("kernel/drivers/net/net_failover.ko", "failover"),
        ("kernel/net/core/failover.ko", ""),
        ("kernel/drivers/hv/hv_vmbus.ko", ""),
        (
            "kernel/drivers/scsi/hv_storvsc.ko",
            "scsi_mod,hv_vmbus,scsi_transport_fc,scsi_common",
        ),
        ("kernel/drivers/scsi/scsi_mod.ko", "scsi_common"),
        ("kernel/drivers/scsi/scsi_common.ko", ""),
        (
            "kernel/drivers/scsi/scsi_transport_fc.ko",
            "scsi_mod,scsi_common",
        ),
        ("kernel/drivers/scsi/sd_mod.ko", "scsi_mod,scsi_common"),
        ("kernel/drivers/net/hyperv/hv_netvsc.ko", "hv_vmbus"),
        ("kernel/drivers/block/xen-blkfront.ko", ""),
        ("kernel/drivers/net/xen-netfront.ko", ""),
    ];

    fn name_of(file: &str) -> String {
        module_name(file.rsplit('/').next().unwrap()).unwrap()
    }

    /// A fake extracted kernel package and busybox under a temp dir. With `with_dep`, a
    /// `modules.dep` (full closures, as depmod writes) and non-ELF module files; without,
    /// ELF module files whose `.modinfo` carries the dependencies (as Debian ships them).
    fn fake_package(with_dep: bool) -> (tempfile::TempDir, InitramfsSpec) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("k/lib/modules").join(RELEASE);
        let mut dep = String::new();
        for (file, depends) in MODULES {
            let path = dir.join(file);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            let name = name_of(file);
            let content = if with_dep {
                format!("fake module {name}\n").into_bytes()
            } else {
                elf_with_modinfo(
                    format!("license=GPL\0depends={depends}\0name={name}\0").as_bytes(),
                )
            };
            fs::write(&path, content).unwrap();
            // modules.dep lists the whole closure of each module.
            let mut closure = Vec::new();
            let mut todo: Vec<&str> = depends.split(',').filter(|d| !d.is_empty()).collect();
            while let Some(d) = todo.pop() {
                let (f, dd) = MODULES.iter().find(|(f, _)| name_of(f) == d).unwrap();
                if !closure.contains(f) {
                    closure.push(*f);
                    todo.extend(dd.split(',').filter(|d| !d.is_empty()));
                }
            }
            dep.push_str(&format!("{file}: {}\n", closure.join(" ")));
        }
        if with_dep {
            fs::write(dir.join("modules.dep"), dep).unwrap();
        }
        fs::write(
            dir.join("modules.builtin"),
            "kernel/drivers/block/loop.ko\nkernel/fs/ext4/ext4.ko\n",
        )
        .unwrap();
        let busybox = tmp.path().join("busybox");
        fs::write(&busybox, b"\x7fELF fake busybox").unwrap();
        let spec = InitramfsSpec::new(tmp.path().join("k"), busybox);
        (tmp, spec)
    }

    /// One entry read back from an archive.
    struct Parsed {
        name: String,
        mode: u32,
        ino: u32,
        rdev: (u32, u32),
        data: Vec<u8>,
    }

    /// Every entry of a newc archive, read with the cpio crate's reader.
    fn entries(archive: &[u8]) -> Vec<Parsed> {
        let mut out = Vec::new();
        let mut rest = archive;
        loop {
            let mut r = cpio::NewcReader::new(rest).unwrap();
            if r.entry().is_trailer() {
                break;
            }
            let e = r.entry();
            let meta = (
                e.name().to_string(),
                e.mode(),
                e.ino(),
                (e.rdev_major(), e.rdev_minor()),
            );
            assert_eq!((e.uid(), e.gid(), e.mtime()), (0, 0, 0), "{}", meta.0);
            let mut data = Vec::new();
            r.read_to_end(&mut data).unwrap();
            out.push(Parsed {
                name: meta.0,
                mode: meta.1,
                ino: meta.2,
                rdev: meta.3,
                data,
            });
            rest = r.finish().unwrap();
        }
        out
    }

    fn file<'a>(es: &'a [Parsed], name: &str) -> &'a Parsed {
        es.iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("{name} not in the archive"))
    }

    /// Checks that in `order` every module comes after its dependencies, each once.
    fn assert_load_order(order: &[&str]) {
        for (i, m) in order.iter().enumerate() {
            assert_eq!(order.iter().filter(|x| *x == m).count(), 1, "{m} twice");
            let depends = MODULES.iter().find(|(f, _)| name_of(f) == *m).unwrap().1;
            for d in depends.split(',').filter(|d| !d.is_empty()) {
                let j = order.iter().position(|x| *x == d);
                assert!(
                    j.is_some_and(|j| j < i),
                    "{d} must load before {m}: {order:?}"
                );
            }
        }
    }

    fn check_dependency_order(with_dep: bool) {
        let (_tmp, spec) = fake_package(with_dep);
        let es = entries(&build(&spec).unwrap());
        let list = String::from_utf8(file(&es, "etc/hvcert/modules").data.clone()).unwrap();
        let lines: Vec<&str> = list.lines().collect();
        assert_eq!(lines.len(), DEFAULT_MODULES.len(), "{list}");
        for (line, want) in lines.iter().zip(DEFAULT_MODULES) {
            let (root, order) = line.split_once(':').unwrap();
            assert_eq!(root, *want);
            let order: Vec<&str> = order.split_whitespace().collect();
            assert_eq!(order.last(), Some(want), "{line}");
            assert_load_order(&order);
        }
        if !with_dep {
            // `depends=` order, depth first (with modules.dep, its listing order instead).
            assert_eq!(
                lines[2],
                "virtio_net: virtio_ring virtio failover net_failover virtio_net"
            );
            assert_eq!(
                lines[4],
                "hv_storvsc: scsi_common scsi_mod hv_vmbus scsi_transport_fc hv_storvsc"
            );
        }
        // `xen-blkfront.ko` is the module xen_blkfront.
        assert_eq!(lines[7], "xen_blkfront: xen_blkfront");
        // Each module's file once, under its kernel name.
        let mods: Vec<&str> = es
            .iter()
            .filter_map(|e| e.name.strip_prefix("lib/modules/"))
            .collect();
        assert_eq!(mods.len(), MODULES.len(), "{mods:?}");
        let blk = &file(&es, "lib/modules/virtio_blk.ko").data;
        if with_dep {
            assert_eq!(blk, b"fake module virtio_blk\n");
        } else {
            assert!(blk.starts_with(b"\x7fELF"));
        }
        assert_eq!(
            String::from_utf8(file(&es, "etc/hvcert/release").data.clone()).unwrap(),
            format!("{RELEASE}\n")
        );
    }

    #[test]
    fn dependencies_load_first_from_modules_dep() {
        check_dependency_order(true);
    }

    #[test]
    fn dependencies_load_first_from_modinfo_without_modules_dep() {
        check_dependency_order(false);
    }

    #[test]
    fn modinfo_depends_reads_the_list() {
        let elf = elf_with_modinfo(b"alias=x\0depends=scsi_mod,hv-vmbus\0name=hv_storvsc\0");
        assert_eq!(modinfo_depends(&elf).unwrap(), ["scsi_mod", "hv_vmbus"]);
        let none = elf_with_modinfo(b"name=virtio\0");
        assert!(modinfo_depends(&none).unwrap().is_empty());
        assert!(modinfo_depends(b"not an elf").is_err());
    }

    #[test]
    fn a_missing_module_is_named_with_the_path_searched() {
        for with_dep in [true, false] {
            let (tmp, mut spec) = fake_package(with_dep);
            spec.modules.push("vmw_pvscsi".into());
            let err = build(&spec).unwrap_err().to_string();
            let dir = tmp.path().join("k/lib/modules").join(RELEASE);
            let searched = if with_dep {
                dir.join("modules.dep")
            } else {
                dir.join("kernel")
            };
            assert_eq!(
                err,
                format!(
                    "module vmw_pvscsi not found: searched {}",
                    searched.display()
                )
            );
        }
    }

    #[test]
    fn a_missing_dependency_names_the_module_that_needs_it() {
        let (tmp, spec) = fake_package(false);
        let dir = tmp.path().join("k/lib/modules").join(RELEASE);
        fs::remove_file(dir.join("kernel/net/core/failover.ko")).unwrap();
        let err = build(&spec).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "module failover (needed by net_failover) not found: searched {}",
                dir.join("kernel").display()
            )
        );
    }

    #[test]
    fn a_package_without_modules_is_an_error() {
        let (tmp, spec) = fake_package(true);
        fs::remove_dir_all(tmp.path().join("k/lib")).unwrap();
        let err = build(&spec).unwrap_err();
        assert!(
            matches!(&err, InitramfsError::NoModulesDir { searched } if *searched == tmp.path().join("k/lib/modules")),
            "{err}"
        );
        assert!(
            err.to_string().contains("has no modules directory"),
            "{err}"
        );

        // An empty lib/modules, and a release that is not there.
        let (tmp, mut spec) = fake_package(true);
        fs::remove_dir_all(tmp.path().join("k/lib/modules").join(RELEASE)).unwrap();
        assert!(matches!(
            build(&spec),
            Err(InitramfsError::NoModulesDir { .. })
        ));
        spec.release = Some("5.10.0-other".into());
        let err = build(&spec).unwrap_err().to_string();
        assert!(err.ends_with("lib/modules/5.10.0-other"), "{err}");
    }

    #[test]
    fn compressed_modules_and_cycles_are_errors() {
        let (tmp, spec) = fake_package(false);
        let dir = tmp.path().join("k/lib/modules").join(RELEASE);
        let ko = dir.join("kernel/drivers/hv/hv_vmbus.ko");
        fs::rename(&ko, dir.join("kernel/drivers/hv/hv_vmbus.ko.xz")).unwrap();
        let err = build(&spec).unwrap_err().to_string();
        assert!(
            err.starts_with("module hv_vmbus is compressed (") && err.contains("hv_vmbus.ko.xz"),
            "{err}"
        );

        let (tmp, spec) = fake_package(false);
        let dir = tmp.path().join("k/lib/modules").join(RELEASE);
        fs::write(
            dir.join("kernel/net/core/failover.ko"),
            elf_with_modinfo(b"depends=virtio_net\0"),
        )
        .unwrap();
        let err = build(&spec).unwrap_err();
        assert!(matches!(err, InitramfsError::Cycle { .. }), "{err}");
    }

    #[test]
    fn a_builtin_module_gets_an_empty_load_list() {
        let (_tmp, mut spec) = fake_package(false);
        spec.modules = vec!["virtio_blk".into(), "ext4".into()];
        let es = entries(&build(&spec).unwrap());
        let list = String::from_utf8(file(&es, "etc/hvcert/modules").data.clone()).unwrap();
        assert_eq!(list, "virtio_blk: virtio virtio_ring virtio_blk\next4:\n");
    }

    #[test]
    fn the_same_inputs_give_the_same_bytes() {
        let (_tmp, spec) = fake_package(false);
        let a = build(&spec).unwrap();
        // Host metadata must not leak in: other mtimes and modes on the same files.
        let dir = spec.kernel_tree.join("lib/modules").join(RELEASE);
        let blk = dir.join("kernel/drivers/block/virtio_blk.ko");
        let content = fs::read(&blk).unwrap();
        fs::remove_file(&blk).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs::write(&blk, content).unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&spec.busybox, fs::Permissions::from_mode(0o700)).unwrap();
        let b = build(&spec).unwrap();
        assert!(a == b, "two builds differ");
        // And the content does count.
        let mut other = spec.clone();
        other.mtime = 1;
        assert_ne!(build(&other).unwrap(), a);
    }

    #[test]
    fn the_archive_is_newc_with_sorted_entries_modes_and_devices() {
        let (_tmp, spec) = fake_package(true);
        let archive = build(&spec).unwrap();
        assert!(archive.starts_with(b"070701"));
        assert_eq!(archive.len() % 4, 0);
        let es = entries(&archive);
        let names: Vec<&str> = es.iter().map(|e| e.name.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        // Inode numbers 1, 2, 3, ... in archive order: unique, host inodes not used.
        let inos: Vec<u32> = es.iter().map(|e| e.ino).collect();
        assert_eq!(inos, (1..=es.len() as u32).collect::<Vec<_>>());
        // Every parent directory comes before its entries.
        for (i, n) in names.iter().enumerate() {
            if let Some((parent, _)) = n.rsplit_once('/') {
                let p = names.iter().position(|x| *x == parent);
                assert!(p.is_some_and(|p| p < i), "{parent} before {n}");
            }
        }
        let init = file(&es, "init");
        assert_eq!(init.mode, 0o100755);
        assert_eq!(init.data, INIT_SCRIPT.as_bytes());
        assert!(INIT_SCRIPT.starts_with("#!/bin/sh\n"));
        assert_eq!(file(&es, "bin/busybox").mode, 0o100755);
        assert_eq!(file(&es, "bin/busybox").data, b"\x7fELF fake busybox");
        for applet in APPLETS {
            let e = file(&es, &format!("bin/{applet}"));
            assert_eq!(
                (e.mode, e.data.as_slice()),
                (0o120777, &b"busybox"[..]),
                "{applet}"
            );
        }
        let console = file(&es, "dev/console");
        assert_eq!((console.mode, console.rdev), (0o020600, (5, 1)));
        assert_eq!(file(&es, "dev/null").rdev, (1, 3));
        for d in [
            "bin",
            "dev",
            "proc",
            "sys",
            "tmp",
            "etc/hvcert",
            "lib/modules",
        ] {
            assert_eq!(file(&es, d).mode, 0o040755, "{d}");
        }
        assert_eq!(file(&es, "lib/modules/hv_netvsc.ko").mode, 0o100644);
    }

    #[test]
    fn disk_block_and_console_status_match_the_init_script() {
        // The script writes `echo "HVCERT $(param pattern hvcert)"` padded by dd conv=sync.
        assert!(INIT_SCRIPT.contains(r#"echo "HVCERT $(param pattern hvcert)" >/tmp/pattern"#));
        assert!(INIT_SCRIPT.contains("conv=sync,fsync"));
        let block = disk_block(DEFAULT_PATTERN).unwrap();
        assert_eq!(block.len(), 512);
        assert_eq!(&block[..14], b"HVCERT hvcert\n");
        assert!(block[14..].iter().all(|b| *b == 0));
        assert_eq!(disk_block(&"x".repeat(505)), None);
        assert!(
            INIT_SCRIPT.contains(r##"echo "# hvcert status $FAILED ($N cases, $FAILED failed)""##)
        );
        // Console output of this /init run in a container (no modules, no disk, no NIC).
        let console = "KTAP version 1\r\n1..14\r\nok 1 - booted to user space\r\n\
            not ok 13 - nic lo frames out: 0 # tx_packets did not move; kernel:\r\n\
            # hvcert status 8 (14 cases, 8 failed)\r\n[  461.2] reboot: Power down\r\n";
        assert_eq!(console_status(console), Some(8));
        assert_eq!(
            console_status("# hvcert status 0 (14 cases, 0 failed)\n"),
            Some(0)
        );
        assert_eq!(console_status("ok 1 - booted to user space\n"), None);
        assert_eq!(console_status("# hvcert status x\n"), None);
    }

    #[test]
    fn repeated_modules_are_listed_once() {
        let (_tmp, mut spec) = fake_package(false);
        spec.modules = vec!["virtio_blk".into(), "virtio-blk".into()];
        let es = entries(&build(&spec).unwrap());
        let list = String::from_utf8(file(&es, "etc/hvcert/modules").data.clone()).unwrap();
        assert_eq!(list, "virtio_blk: virtio virtio_ring virtio_blk\n");
    }

    #[test]
    fn the_init_script_is_valid_posix_sh() {
        let out = std::process::Command::new("sh")
            .arg("-n")
            .arg("-c")
            .arg(INIT_SCRIPT)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The real packages: set HVCERT_INITRAMFS_KERNEL_TREE to an extracted
    /// `linux-image-*-cloud-amd64` package and HVCERT_INITRAMFS_BUSYBOX to `bin/busybox` of
    /// an extracted `busybox-static`. Skips (with the reason) when they are not set. With
    /// HVCERT_INITRAMFS_OUT set, the archive is also written there (for a boot by hand).
    #[test]
    fn real_debian_packages() {
        let (Some(tree), Some(busybox)) = (
            std::env::var_os("HVCERT_INITRAMFS_KERNEL_TREE"),
            std::env::var_os("HVCERT_INITRAMFS_BUSYBOX"),
        ) else {
            eprintln!("skipped: HVCERT_INITRAMFS_KERNEL_TREE and HVCERT_INITRAMFS_BUSYBOX not set");
            return;
        };
        let spec = InitramfsSpec::new(tree, &busybox);
        let t = std::time::Instant::now();
        let archive = build(&spec).unwrap();
        let took = t.elapsed();
        assert_eq!(build(&spec).unwrap(), archive, "not reproducible");
        if let Some(out) = std::env::var_os("HVCERT_INITRAMFS_OUT") {
            fs::write(out, &archive).unwrap();
        }
        let es = entries(&archive);
        let list = String::from_utf8(file(&es, "etc/hvcert/modules").data.clone()).unwrap();
        eprintln!(
            "initramfs: {} bytes, {} entries, built in {took:?}\n{list}",
            archive.len(),
            es.len()
        );
        // Per-profile archives are smaller: each profile's modules only.
        for profile in [
            &["virtio_mmio", "virtio_blk", "virtio_net"][..],
            &["hv_vmbus", "hv_storvsc", "sd_mod", "hv_netvsc"],
            &["xen_blkfront", "xen_netfront"],
        ] {
            let mut one = spec.clone();
            one.modules = profile.iter().map(|m| m.to_string()).collect();
            eprintln!("{profile:?}: {} bytes", build(&one).unwrap().len());
        }
        for m in DEFAULT_MODULES {
            assert!(
                file(&es, &format!("lib/modules/{m}.ko"))
                    .data
                    .starts_with(b"\x7fELF"),
                "{m}"
            );
        }
        // Every applet /init uses is in this busybox.
        let out = std::process::Command::new(&busybox)
            .arg("--list")
            .output()
            .unwrap();
        let have = String::from_utf8_lossy(&out.stdout);
        for applet in APPLETS {
            assert!(have.lines().any(|l| l == *applet), "busybox lacks {applet}");
        }
    }
}
