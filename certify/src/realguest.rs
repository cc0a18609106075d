//! The real-guest tier (issue 11): a stock distribution kernel (Debian's cloud kernel) with
//! the initramfs hvcert builds ([`crate::initramfs`]), booted on the hvcert hypervisor and
//! graded from the host by milestones of its console log, then by its `/init`'s own KTAP.
//!
//! Each milestone is a case: reached → `ok` (with the host's wall time and the kernel's own
//! timestamp when it was printed); not reached → `not ok` with how the VM ended and the
//! kernel's last lines (a timeout says so, with the console tail). `/init`'s KTAP results
//! follow as `init: NAME` cases; when `/init` never printed KTAP that is one `not ok` case.
//!
//! The profiles live in `fixtures/guests/real/` (outside the built-in set, so `hvcert
//! certify` and `cargo test` never run them: a boot takes minutes on a nested host). Files
//! are found under the real-kernel directory that `scripts/real-guest.sh` fills
//! (`--real-kernel-dir`, else `HVCERT_REAL_KERNEL_DIR`, else `target/real-guest`).
use crate::ktap;
use crate::nested::NestedFixes;
use anyhow::{bail, Context};
use hypervisor::{Interface, VmEnd};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Environment variable naming the real-kernel directory.
pub const KERNEL_DIR_ENV: &str = "HVCERT_REAL_KERNEL_DIR";
/// The real-kernel directory when neither the option nor the variable gives one.
pub const DEFAULT_KERNEL_DIR: &str = "target/real-guest";
/// Console lines quoted in a failure reason.
const TAIL_LINES: usize = 12;

/// A real-guest profile (`fixtures/guests/real/*.toml`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RealProfile {
    /// Profile name.
    pub name: String,
    /// One line on what it boots.
    pub description: String,
    /// The paravirtual interface the hypervisor offers.
    pub interface: Interface,
    /// vCPUs.
    #[serde(default = "one")]
    pub vcpus: u8,
    /// Guest RAM in MiB.
    pub memory_mib: u32,
    /// Wall-clock limit of the VM in seconds.
    pub timeout_secs: u64,
    /// The kernel, relative to the real-kernel directory; a `*` in the file name matches
    /// any text (the first match in name order is taken), e.g. `kernel/boot/vmlinuz-*`.
    pub kernel: String,
    /// The initramfs, relative to the real-kernel directory.
    pub initramfs: String,
    /// The kernel command line (the nested-host fragment and virtio-mmio entries are
    /// appended by the hypervisor).
    pub cmdline: String,
    /// Size of the fresh raw disk image attached as a virtio-blk device (0: no disk).
    #[serde(default)]
    pub disk_mib: u64,
    /// Attach a virtio-net NIC with the loopback backend.
    #[serde(default)]
    pub nic: bool,
    /// What the kernel should print after "Hypervisor detected: " (`Microsoft Hyper-V`,
    /// `Xen HVM`); absent: no such line before SMP is up.
    #[serde(default)]
    pub hypervisor: Option<String>,
}

fn one() -> u8 {
    1
}

impl RealProfile {
    /// Parses a profile file's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &Path) -> anyhow::Result<RealProfile> {
        let p: RealProfile =
            toml::from_str(text).with_context(|| format!("{}", origin.display()))?;
        if p.vcpus == 0 || p.memory_mib == 0 || p.timeout_secs == 0 {
            bail!(
                "{}: vcpus, memory_mib and timeout_secs must be positive",
                origin.display()
            );
        }
        Ok(p)
    }

    /// Reads and parses a profile file.
    pub fn load(path: &Path) -> anyhow::Result<RealProfile> {
        let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
        Self::parse(&text, path)
    }
}

/// The real-kernel directory: `explicit`, else [`KERNEL_DIR_ENV`], else
/// [`DEFAULT_KERNEL_DIR`].
pub fn kernel_dir(explicit: Option<&Path>) -> PathBuf {
    explicit
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os(KERNEL_DIR_ENV).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_KERNEL_DIR))
}

/// `rel` under `dir`, with one `*` in the file name matched against the directory listing
/// (first match in name order).
pub fn resolve_file(dir: &Path, rel: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join(rel);
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        bail!("{}: no file name", path.display());
    };
    let Some((pre, post)) = name.split_once('*') else {
        if !path.is_file() {
            bail!(
                "{} not found (run scripts/real-guest.sh --fetch, or give --real-kernel-dir / {KERNEL_DIR_ENV})",
                path.display()
            );
        }
        return Ok(path);
    };
    let parent = path.parent().unwrap_or(dir);
    let mut found: Vec<PathBuf> = std::fs::read_dir(parent)
        .with_context(|| {
            format!(
                "{} (run scripts/real-guest.sh --fetch, or give --real-kernel-dir / {KERNEL_DIR_ENV})",
                parent.display()
            )
        })?
        .filter_map(|e| e.ok())
        .filter(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            n.len() >= pre.len() + post.len() && n.starts_with(pre) && n.ends_with(post)
        })
        .map(|e| e.path())
        .collect();
    found.sort();
    found
        .into_iter()
        .next()
        .with_context(|| format!("nothing matches {}", path.display()))
}

/// A console line with the host's wall time when it was complete.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    /// Seconds since the VM started running.
    pub wall: f64,
    /// The text, without the newline.
    pub text: String,
}

/// A console writer that stamps each line with the wall time it arrived (and passes the
/// bytes on to `echo`, e.g. a log file).
#[derive(Clone)]
pub struct StampedConsole {
    start: Instant,
    inner: Arc<Mutex<(Vec<Line>, Vec<u8>)>>,
    echo: Arc<Mutex<Box<dyn Write + Send>>>,
}

impl StampedConsole {
    /// A console whose wall times count from now; bytes are also written to `echo`.
    pub fn new(echo: Box<dyn Write + Send>) -> Self {
        StampedConsole {
            start: Instant::now(),
            inner: Arc::new(Mutex::new((Vec::new(), Vec::new()))),
            echo: Arc::new(Mutex::new(echo)),
        }
    }

    /// The complete lines so far, plus the unfinished last one.
    pub fn lines(&self) -> Vec<Line> {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut v = g.0.clone();
        if !g.1.is_empty() {
            v.push(Line {
                wall: self.start.elapsed().as_secs_f64(),
                text: String::from_utf8_lossy(&g.1).into_owned(),
            });
        }
        v
    }
}

impl Write for StampedConsole {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let wall = self.start.elapsed().as_secs_f64();
        {
            let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            for &b in buf {
                if b == b'\n' {
                    let raw = std::mem::take(&mut g.1);
                    let text = String::from_utf8_lossy(&raw)
                        .trim_end_matches('\r')
                        .to_string();
                    g.0.push(Line { wall, text });
                } else {
                    g.1.push(b);
                }
            }
        }
        let mut e = self.echo.lock().unwrap_or_else(|e| e.into_inner());
        e.write_all(buf)?;
        e.flush()?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The kernel's own timestamp of a console line (`[   12.345678] ...`), in seconds.
pub fn kernel_time(line: &str) -> Option<f64> {
    let rest = line.trim_start().strip_prefix('[')?;
    let (num, _) = rest.split_once(']')?;
    num.trim().parse().ok()
}

/// One host-side milestone of a stock kernel's boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Milestone {
    /// Case name.
    pub id: &'static str,
    /// Any of these on a console line means reached.
    pub needles: &'static [&'static str],
}

/// The milestones, in boot order (the hypervisor milestone is graded apart: it depends on
/// the profile, see [`grade`]).
pub const MILESTONES: &[Milestone] = &[
    Milestone {
        id: "kernel_started",
        needles: &["Linux version "],
    },
    Milestone {
        id: "acpi_tables",
        needles: &["ACPI: RSDP "],
    },
    Milestone {
        id: "smp_up",
        needles: &["smp: Brought up "],
    },
    Milestone {
        id: "initramfs_unpacked",
        needles: &["Freeing initrd memory"],
    },
    Milestone {
        id: "run_init",
        needles: &["Run /init as init process"],
    },
];

/// How a graded case ended.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Graded {
    /// Case name.
    pub id: String,
    /// Reached / passed.
    pub ok: bool,
    /// Host wall time (s since the VM started) of the line that decided it.
    pub wall_s: Option<f64>,
    /// The kernel's timestamp on that line.
    pub kernel_s: Option<f64>,
    /// The line, or why not (with the console's last lines).
    pub detail: String,
}

/// How the VM ended, in words for a reason.
pub fn end_text(end: &VmEnd, wall: f64) -> String {
    match end {
        VmEnd::Timeout => format!("timeout after {wall:.0} s"),
        VmEnd::Crash { reason, .. } => format!("VM crashed at {wall:.0} s: {reason}"),
        VmEnd::Status(s) => format!("guest status {s} at {wall:.0} s"),
        VmEnd::Shutdown => format!("guest shut down at {wall:.0} s"),
        VmEnd::Reset => format!("guest reset at {wall:.0} s"),
    }
}

fn tail(lines: &[Line]) -> String {
    let from = lines.len().saturating_sub(TAIL_LINES);
    let text = lines[from..]
        .iter()
        .map(|l| l.text.trim())
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join(" | ");
    if text.is_empty() {
        "(no console output)".into()
    } else {
        text
    }
}

/// Grades a finished boot: the milestones, the hypervisor the kernel detected (`expect`:
/// the text after "Hypervisor detected: ", `None` = no such line before SMP is up), then
/// `/init`'s KTAP results. `end` is how the VM ended (`wall` its wall time).
pub fn grade(lines: &[Line], expect_hv: Option<&str>, end: &VmEnd, wall: f64) -> Vec<Graded> {
    let find = |needles: &[&str]| {
        lines
            .iter()
            .position(|l| needles.iter().any(|n| l.text.contains(n)))
    };
    let why_not = || {
        format!(
            "not reached ({}); last lines: {}",
            end_text(end, wall),
            tail(lines)
        )
    };
    let hit = |id: &str, i: usize| Graded {
        id: id.to_string(),
        ok: true,
        wall_s: Some(lines[i].wall),
        kernel_s: kernel_time(&lines[i].text),
        detail: lines[i].text.trim().to_string(),
    };
    let miss = |id: &str, detail: String| Graded {
        id: id.to_string(),
        ok: false,
        wall_s: None,
        kernel_s: None,
        detail,
    };
    let mut out = Vec::new();
    for m in MILESTONES {
        out.push(match find(m.needles) {
            Some(i) => hit(m.id, i),
            None => miss(m.id, why_not()),
        });
        if m.id == "acpi_tables" {
            out.push(grade_hv(lines, expect_hv, &find, &why_not, &hit, &miss));
        }
    }
    // /init's KTAP, from the line after "Run /init".
    let Some(init) = find(&["Run /init as init process"]) else {
        out.push(miss("init_ktap", why_not()));
        return out;
    };
    let text: String = lines[init + 1..]
        .iter()
        .map(|l| format!("{}\n", l.text))
        .collect();
    let doc = ktap::parse(&text);
    if doc.results.is_empty() {
        out.push(miss(
            "init_ktap",
            format!(
                "/init printed no KTAP result ({}); last lines: {}",
                end_text(end, wall),
                tail(lines)
            ),
        ));
        return out;
    }
    for r in &doc.results {
        let at = lines[init + 1..]
            .iter()
            .find(|l| l.text.contains(&r.name))
            .map(|l| l.wall);
        out.push(Graded {
            id: format!("init: {}", r.name),
            ok: r.ok,
            wall_s: at,
            kernel_s: None,
            detail: r.reason.clone().unwrap_or_default(),
        });
    }
    if let Some(plan) = doc.plan {
        if (doc.results.len() as u32) < plan {
            out.push(miss(
                "init_ktap_complete",
                format!(
                    "{} of {plan} results ({}); last lines: {}",
                    doc.results.len(),
                    end_text(end, wall),
                    tail(lines)
                ),
            ));
        }
    }
    out
}

fn grade_hv(
    lines: &[Line],
    expect: Option<&str>,
    find: &dyn Fn(&[&str]) -> Option<usize>,
    why_not: &dyn Fn() -> String,
    hit: &dyn Fn(&str, usize) -> Graded,
    miss: &dyn Fn(&str, String) -> Graded,
) -> Graded {
    const ID: &str = "hypervisor_detected";
    let detected = find(&["Hypervisor detected: "]);
    match (expect, detected) {
        (Some(want), Some(i)) if lines[i].text.contains(want) => hit(ID, i),
        (Some(want), Some(i)) => miss(
            ID,
            format!("expected {want}, the kernel said: {}", lines[i].text.trim()),
        ),
        (Some(want), None) => miss(ID, format!("expected {want}: {}", why_not())),
        (None, Some(i)) => miss(
            ID,
            format!("expected none, the kernel said: {}", lines[i].text.trim()),
        ),
        (None, None) => match find(&["smp: Brought up "]) {
            Some(i) => {
                let mut g = hit(ID, i);
                g.detail = format!("none (no \"Hypervisor detected\" by: {})", g.detail);
                g
            }
            None => miss(ID, why_not()),
        },
    }
}

/// What [`run`] needs besides the profile.
pub struct RunOptions {
    /// The real-kernel directory.
    pub kernel_dir: PathBuf,
    /// Where the console log, the disk image and `result.json` go.
    pub out: PathBuf,
    /// Whether the nested-host fixes apply.
    pub nested_fixes: NestedFixes,
    /// Overrides the profile's timeout (seconds).
    pub timeout_secs: Option<u64>,
    /// Extra kernel options after the profile's.
    pub extra_cmdline: String,
}

/// One profile's boot and its grades.
#[derive(Clone, Debug, Serialize)]
pub struct RealRun {
    /// Profile name.
    pub profile: String,
    /// The kernel booted.
    pub kernel: PathBuf,
    /// Whether the nested-host fixes were applied.
    pub nested_fixes: bool,
    /// How the VM ended, in words.
    pub end: String,
    /// Wall time of the VM in seconds.
    pub wall_s: f64,
    /// The graded cases, in order.
    pub cases: Vec<Graded>,
}

impl RealRun {
    /// Whether every case is ok.
    pub fn passed(&self) -> bool {
        self.cases.iter().all(|c| c.ok)
    }

    /// The run as KTAP (one result per case, wall and kernel time in each line).
    pub fn ktap(&self) -> String {
        let mut s = format!(
            "KTAP version 1\n# {}\n1..{}\n",
            self.profile,
            self.cases.len()
        );
        for (i, c) in self.cases.iter().enumerate() {
            let t = match (c.wall_s, c.kernel_s) {
                (Some(w), Some(k)) => format!(" (wall {w:.1} s, kernel {k:.1} s)"),
                (Some(w), None) => format!(" (wall {w:.1} s)"),
                _ => String::new(),
            };
            let one = c.detail.replace('\n', " ");
            if c.ok {
                s.push_str(&format!("ok {} - {}{t} # {one}\n", i + 1, c.id));
            } else {
                s.push_str(&format!("not ok {} - {} # {one}\n", i + 1, c.id));
            }
        }
        s
    }
}

/// Boots `profile` and grades it; the console goes to `OUT/PROFILE.console.log` and
/// `echo`, the result to `OUT/PROFILE.json`.
pub fn run(
    profile: &RealProfile,
    opts: &RunOptions,
    echo: Box<dyn Write + Send>,
) -> anyhow::Result<RealRun> {
    let kernel = resolve_file(&opts.kernel_dir, &profile.kernel)?;
    let initrd = resolve_file(&opts.kernel_dir, &profile.initramfs)?;
    std::fs::create_dir_all(&opts.out).with_context(|| format!("{}", opts.out.display()))?;
    let log_path = opts.out.join(format!("{}.console.log", profile.name));
    let log =
        std::fs::File::create(&log_path).with_context(|| format!("{}", log_path.display()))?;
    let timeout = Duration::from_secs(opts.timeout_secs.unwrap_or(profile.timeout_secs));
    let mut cmdline = profile.cmdline.clone();
    if !opts.extra_cmdline.trim().is_empty() {
        cmdline = format!("{cmdline} {}", opts.extra_cmdline.trim());
    }
    let nested = crate::nested::resolve(opts.nested_fixes, &kernel);
    let mut b = hypervisor::VmConfig::builder(&kernel)
        .initrd(&initrd)
        .cmdline(cmdline)
        .interface(profile.interface)
        .memory_mib(profile.memory_mib)
        .cpus(profile.vcpus)
        .timeout(timeout)
        .nested_fixes(nested);
    if profile.disk_mib > 0 {
        let img = opts.out.join(format!("{}.disk.img", profile.name));
        let f = std::fs::File::create(&img).with_context(|| format!("{}", img.display()))?;
        f.set_len(profile.disk_mib << 20)?;
        b = b.disk(img.to_string_lossy().parse().map_err(anyhow::Error::msg)?);
    }
    if profile.nic {
        b = b.net("loopback".parse().map_err(anyhow::Error::msg)?);
    }
    let tee = Tee(Box::new(log), echo);
    let console = StampedConsole::new(Box::new(tee));
    let vm = hypervisor::Vm::new(b.build())?;
    let outcome = vm.run(Box::new(console.clone()))?;
    let wall = outcome.wall.as_secs_f64();
    let lines = console.lines();
    let cases = grade(&lines, profile.hypervisor.as_deref(), &outcome.end, wall);
    let r = RealRun {
        profile: profile.name.clone(),
        kernel,
        nested_fixes: nested,
        end: end_text(&outcome.end, wall),
        wall_s: wall,
        cases,
    };
    let json = opts.out.join(format!("{}.json", profile.name));
    std::fs::write(&json, serde_json::to_string_pretty(&r)?)
        .with_context(|| format!("{}", json.display()))?;
    Ok(r)
}

/// Writes to both.
struct Tee(Box<dyn Write + Send>, Box<dyn Write + Send>);
impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_all(buf)?;
        self.1.write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()?;
        self.1.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<Line> {
        text.lines()
            .enumerate()
            .map(|(i, t)| Line {
                wall: i as f64,
                text: t.to_string(),
            })
            .collect()
    }

    const BOOT: &str = "\
[    0.000000] Linux version 6.1.0-48-cloud-amd64 (debian-kernel@lists.debian.org)
[    0.000000] ACPI: RSDP 0x00000000000E0000 000024 (v02 HVCERT)
[    0.000000] Hypervisor detected: Microsoft Hyper-V
[   32.600000] smp: Brought up 1 node, 1 CPU
[  309.900000] Freeing initrd memory: 4096K
[  394.800000] Run /init as init process
KTAP version 1
1..2
ok 1 - booted to user space
not ok 2 - hypervisor detected: none # expected Microsoft Hyper-V
";

    fn ids(g: &[Graded]) -> Vec<(String, bool)> {
        g.iter().map(|c| (c.id.clone(), c.ok)).collect()
    }

    #[test]
    fn a_full_boot_grades_every_milestone_and_the_init_ktap() {
        let g = grade(
            &lines(BOOT),
            Some("Microsoft Hyper-V"),
            &VmEnd::Shutdown,
            400.0,
        );
        let want: Vec<(String, bool)> = [
            ("kernel_started", true),
            ("acpi_tables", true),
            ("hypervisor_detected", true),
            ("smp_up", true),
            ("initramfs_unpacked", true),
            ("run_init", true),
            ("init: booted to user space", true),
            ("init: hypervisor detected: none", false),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), *b))
        .collect();
        assert_eq!(ids(&g), want);
        assert_eq!(g[3].kernel_s, Some(32.6));
        assert_eq!(g[3].wall_s, Some(3.0));
        assert_eq!(g[7].detail, "expected Microsoft Hyper-V");
    }

    #[test]
    fn a_timeout_fails_the_rest_with_the_console_tail() {
        let text: String = BOOT.lines().take(4).map(|l| format!("{l}\n")).collect();
        let g = grade(&lines(&text), None, &VmEnd::Timeout, 900.0);
        let failed: Vec<&str> = g.iter().filter(|c| !c.ok).map(|c| c.id.as_str()).collect();
        // The Hyper-V line is there but the profile expects no hypervisor.
        assert_eq!(
            failed,
            [
                "hypervisor_detected",
                "initramfs_unpacked",
                "run_init",
                "init_ktap"
            ]
        );
        let d = &g.iter().find(|c| c.id == "run_init").unwrap().detail;
        assert!(d.contains("timeout after 900 s"), "{d}");
        assert!(d.contains("smp: Brought up 1 node"), "{d}");
    }

    #[test]
    fn a_silent_console_says_so() {
        let g = grade(&[], None, &VmEnd::Timeout, 20.0);
        assert!(g.iter().all(|c| !c.ok));
        assert!(
            g[0].detail.ends_with("last lines: (no console output)"),
            "{}",
            g[0].detail
        );
    }

    #[test]
    fn no_hypervisor_expected_and_none_seen_is_ok_once_smp_is_up() {
        let text = BOOT.replace("Hypervisor detected: Microsoft Hyper-V", "nothing here");
        let g = grade(&lines(&text), None, &VmEnd::Shutdown, 1.0);
        let hv = g.iter().find(|c| c.id == "hypervisor_detected").unwrap();
        assert!(hv.ok, "{hv:?}");
        assert_eq!(hv.kernel_s, Some(32.6));
    }

    #[test]
    fn init_without_ktap_is_a_failure_with_the_crash() {
        let text = BOOT.lines().take(6).map(|l| format!("{l}\n")).collect::<String>()
            + "init[1]: segfault at ffffffffa0e00080\nKernel panic - not syncing: Attempted to kill init!\n";
        let end = VmEnd::Crash {
            reason: "triple fault (KVM_EXIT_SHUTDOWN)".into(),
            regs: String::new(),
        };
        let g = grade(&lines(&text), Some("Microsoft Hyper-V"), &end, 777.0);
        let last = g.last().unwrap();
        assert_eq!(last.id, "init_ktap");
        assert!(!last.ok);
        assert!(
            last.detail.contains("Attempted to kill init"),
            "{}",
            last.detail
        );
        assert!(last.detail.contains("triple fault"), "{}", last.detail);
    }

    #[test]
    fn console_lines_are_stamped_and_kernel_times_parsed() {
        let mut c = StampedConsole::new(Box::new(std::io::sink()));
        c.write_all(b"[    1.500000] a\r\nb").unwrap();
        c.write_all(b"c\n").unwrap();
        let l = c.lines();
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].text, "[    1.500000] a");
        assert_eq!(l[1].text, "bc");
        assert_eq!(kernel_time(&l[0].text), Some(1.5));
        assert_eq!(kernel_time("no stamp"), None);
    }

    #[test]
    fn shipped_real_profiles_parse_and_stay_out_of_the_builtin_set() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/guests/real");
        let mut names = Vec::new();
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml") {
                let prof = RealProfile::load(&p).unwrap();
                assert_eq!(
                    Some(prof.name.as_str()),
                    p.file_stem().and_then(|s| s.to_str())
                );
                names.push(prof.name);
            }
        }
        names.sort();
        assert_eq!(
            names,
            [
                "debian-cloud-hyperv",
                "debian-cloud-none",
                "debian-cloud-xen"
            ]
        );
        let builtin = crate::profile::all_in(&dir.join("..")).unwrap();
        assert!(
            builtin
                .iter()
                .all(|p| !p.to_string_lossy().contains("debian")),
            "{builtin:?}"
        );
    }

    #[test]
    fn kernel_file_patterns() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("kernel/boot")).unwrap();
        std::fs::write(
            d.path().join("kernel/boot/vmlinuz-6.1.0-9-cloud-amd64"),
            b"",
        )
        .unwrap();
        std::fs::write(d.path().join("kernel/boot/config-6.1.0-9-cloud-amd64"), b"").unwrap();
        let k = resolve_file(d.path(), "kernel/boot/vmlinuz-*").unwrap();
        assert!(k.ends_with("vmlinuz-6.1.0-9-cloud-amd64"));
        let e = resolve_file(d.path(), "initramfs.cpio")
            .unwrap_err()
            .to_string();
        assert!(e.contains("real-guest.sh"), "{e}");
        assert!(resolve_file(d.path(), "kernel/boot/bzImage-*").is_err());
    }
}
