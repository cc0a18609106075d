//! Guest profiles (`fixtures/guests/*.toml`): how a SUSE-like guest behaves, which cases it
//! runs and which of them block certification.
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

/// The guest OS a profile imitates.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuestOs {
    /// Human name, e.g. "SUSE Linux Enterprise Server 11 SP1".
    pub name: String,
    /// Linux kernel version the guest claims ("2.6.32"); encoded into GUEST_OS_ID.
    pub kernel: String,
    /// Explicit GUEST_OS_ID ("0x..."), overriding the Linux encoding.
    #[serde(default)]
    pub guest_os_id: Option<String>,
}

/// The devices a profile's VMs may get.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Devices {
    /// Size of the raw image the runner creates for a case with `disk = true`.
    #[serde(default = "default_disk_mib")]
    pub disk_mib: u32,
    /// The per-profile device limits (the seed's beta allowed one controller and one NIC).
    #[serde(default = "one_usize")]
    pub max_disks: usize,
    /// Most virtio-net NICs a VM of the profile may have.
    #[serde(default = "one_usize")]
    pub max_nics: usize,
}

impl Default for Devices {
    fn default() -> Self {
        Devices {
            disk_mib: default_disk_mib(),
            max_disks: 1,
            max_nics: 1,
        }
    }
}

fn default_disk_mib() -> u32 {
    1
}
fn one_usize() -> usize {
    1
}

/// What ends the VM when the case succeeds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExpectEnd {
    /// The guest reports and writes its status to port 0xf4.
    #[default]
    Status,
    /// The guest asks the hypervisor to power off (Xen SCHEDOP_shutdown).
    Shutdown,
    /// The guest reports a crash to the hypervisor (Xen SCHEDOP_shutdown crash, Hyper-V
    /// CRASH_CTL).
    Crash,
    /// The guest resets the partition (Hyper-V RESET MSR).
    Reset,
}

/// The `[hyperv]` table: the Hyper-V face of the profile's VMs.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HyperV {
    /// Vendor signature in CPUID leaf 0x40000000 (default "Microsoft Hv").
    #[serde(default)]
    pub vendor: Option<String>,
    /// TLFS names of the privileges, features and recommendations granted (default:
    /// everything implemented).
    #[serde(default)]
    pub privileges: Option<Vec<toml::Spanned<String>>>,
    /// Leaf 0x40000005 EAX: maximum virtual processors (default 255).
    #[serde(default)]
    pub max_virtual_processors: Option<u32>,
    /// Leaf 0x40000005 EBX: maximum logical processors (default 255).
    #[serde(default)]
    pub max_logical_processors: Option<u32>,
    /// `false`: treat the host TSC as unreliable, so the reference TSC page says "invalid"
    /// (sequence 0) and the guest must use TIME_REF_COUNT (default: as the host TSC is).
    #[serde(default)]
    pub reference_tsc_reliable: Option<bool>,
}

/// One case of a profile: a guest case and what the host expects of it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseSpec {
    /// KTAP name of the guest case.
    pub id: String,
    /// A failure of this case fails certification.
    #[serde(default)]
    pub blocker: bool,
    /// How the VM must end for the case to pass.
    #[serde(default)]
    pub expect_end: ExpectEnd,
    /// Text the host must find on the console (e.g. what a console hypercall wrote).
    #[serde(default)]
    pub console_contains: Option<String>,
    /// With `expect_end = "crash"`: text the hypervisor's crash reason must contain, so
    /// that an unrelated crash (a triple fault, say) doesn't pass for the expected one.
    #[serde(default)]
    pub crash_reason_contains: Option<String>,
    /// Set when the case is known not to be runnable yet: the reason, recorded as not-run.
    #[serde(default)]
    pub not_run: Option<String>,
    /// vCPUs for this case's VM (default: the profile's).
    #[serde(default)]
    pub vcpus: Option<u8>,
    /// Attach a fresh raw image (virtio-blk) to this case's VM.
    #[serde(default)]
    pub disk: bool,
    /// After the VM ended, check the image holds what the guest reported writing.
    #[serde(default)]
    pub check_image: bool,
    /// Attach a virtio-net NIC with the loopback backend.
    #[serde(default)]
    pub nic: bool,
    /// Put this case's disk and NIC on the VMBus (storvsc, netvsc) instead of virtio
    /// (needs the Hyper-V interface).
    #[serde(default)]
    pub vmbus: bool,
    /// TLFS names of Hyper-V privileges to withdraw for this case's VM (the gating sweep).
    #[serde(default)]
    pub hv_clear: Vec<toml::Spanned<String>>,
    /// Overrides `[hyperv] reference_tsc_reliable` for this case's VM.
    #[serde(default)]
    pub reference_tsc_reliable: Option<bool>,
}

/// A guest profile (one `fixtures/guests/*.toml`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Name ([A-Za-z0-9._-]+; it goes on the guest command line).
    pub name: String,
    /// One line on the guest it imitates.
    pub description: String,
    /// The hypervisor interface its VMs expose.
    pub interface: hypervisor::Interface,
    /// The guest OS it imitates.
    pub guest_os: GuestOs,
    /// vCPUs per VM (1..=64).
    #[serde(default = "one")]
    pub vcpus: u8,
    /// Guest memory per VM (16..=4096 MiB).
    pub memory_mib: u32,
    /// Per-VM deadline in seconds (1..=[`MAX_TIMEOUT_SECS`]).
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Device limits and sizes.
    #[serde(default)]
    pub devices: Devices,
    /// The Hyper-V vendor and privileges.
    #[serde(default)]
    pub hyperv: HyperV,
    /// The cases, in run order.
    pub cases: Vec<CaseSpec>,
}

/// Largest `timeout_secs` a profile may give.
pub const MAX_TIMEOUT_SECS: u64 = 86_400;

fn one() -> u8 {
    1
}
fn default_timeout() -> u64 {
    20
}

/// A profile with where it came from.
#[derive(Clone, Debug)]
pub struct LoadedProfile {
    /// The profile.
    pub profile: Profile,
    /// Where it came from: a file, or `builtin:` and the file it was embedded from.
    pub path: PathBuf,
    /// SHA-256 of its bytes, hex.
    pub sha256: String,
}

impl Profile {
    /// Parses and validates profile TOML; errors name `origin` and the line.
    pub fn parse(text: &str, origin: &Path) -> anyhow::Result<Profile> {
        let line_of = |span: std::ops::Range<usize>| {
            text[..span.start.min(text.len())].matches('\n').count() + 1
        };
        let p: Profile = toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|s| {
                    let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                    format!(":{line}")
                })
                .unwrap_or_default();
            anyhow::anyhow!("{}{at}: {}", origin.display(), e.message())
        })?;
        p.validate()
            .with_context(|| format!("{}", origin.display()))?;
        // Unknown privilege names: the file and the line of the name.
        let names = p
            .hyperv
            .privileges
            .iter()
            .flatten()
            .chain(p.cases.iter().flat_map(|c| &c.hv_clear));
        for n in names {
            if let Err(e) = hypervisor::hv_config::lookup(n.get_ref()) {
                bail!("{}:{}: {e}", origin.display(), line_of(n.span()));
            }
        }
        if let Some(v) = &p.hyperv.vendor {
            hypervisor::hv_config::parse_vendor(v)
                .map_err(|e| anyhow::anyhow!("{}: [hyperv] {e}", origin.display()))?;
        }
        for (what, n) in [
            ("max_virtual_processors", p.hyperv.max_virtual_processors),
            ("max_logical_processors", p.hyperv.max_logical_processors),
        ] {
            if let Some(n) = n {
                hypervisor::hv_config::check_limit(what, n)
                    .map_err(|e| anyhow::anyhow!("{}: [hyperv] {e}", origin.display()))?;
            }
        }
        Ok(p)
    }

    /// The Hyper-V face of `case`'s VM: the profile's vendor and privileges, less the case's
    /// `hv_clear` ones.
    pub fn hv_config(&self, case: &CaseSpec) -> anyhow::Result<hypervisor::HvConfig> {
        let mut cfg = hypervisor::HvConfig::default();
        if let Some(v) = &self.hyperv.vendor {
            cfg.vendor = hypervisor::hv_config::parse_vendor(v).map_err(anyhow::Error::msg)?;
        }
        if let Some(names) = &self.hyperv.privileges {
            let names: Vec<&str> = names.iter().map(|n| n.get_ref().as_str()).collect();
            cfg.features =
                hypervisor::HvFeatures::from_names(&names).map_err(anyhow::Error::msg)?;
        }
        if let Some(n) = self.hyperv.max_virtual_processors {
            cfg.limits.0 = n;
        }
        if let Some(n) = self.hyperv.max_logical_processors {
            cfg.limits.1 = n;
        }
        if let Some(r) = case
            .reference_tsc_reliable
            .or(self.hyperv.reference_tsc_reliable)
        {
            cfg.reference_tsc_reliable = r;
        }
        for n in &case.hv_clear {
            cfg.features
                .set(n.get_ref(), false)
                .map_err(anyhow::Error::msg)?;
        }
        Ok(cfg)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'))
        {
            bail!(
                "name {:?}: expected [A-Za-z0-9._-]+ (it goes on the kernel command line)",
                self.name
            );
        }
        if self.cases.is_empty() {
            bail!("profile {} lists no cases", self.name);
        }
        if !(1..=64).contains(&self.vcpus) {
            bail!("vcpus = {}: expected 1..=64", self.vcpus);
        }
        if !(1..=1024).contains(&self.devices.disk_mib) {
            bail!(
                "devices.disk_mib = {}: expected 1..=1024",
                self.devices.disk_mib
            );
        }
        if !(16..=4096).contains(&self.memory_mib) {
            bail!("memory_mib = {}: expected 16..=4096", self.memory_mib);
        }
        // Every certification VM needs a deadline (0 would let a hung guest hang the run),
        // and a sane one.
        if !(1..=MAX_TIMEOUT_SECS).contains(&self.timeout_secs) {
            bail!(
                "timeout_secs = {}: expected 1..={MAX_TIMEOUT_SECS} (a day at most)",
                self.timeout_secs
            );
        }
        let mut seen = std::collections::BTreeSet::new();
        for c in &self.cases {
            if c.id.is_empty()
                || !c
                    .id
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
            {
                bail!("case id {:?}: expected [A-Za-z0-9_]+", c.id);
            }
            if !seen.insert(&c.id) {
                bail!("case {} listed twice", c.id);
            }
            if let Some(v) = c.vcpus.filter(|v| !(1..=64).contains(v)) {
                bail!("case {}: vcpus = {v}: expected 1..=64", c.id);
            }
            if c.disk && self.devices.max_disks == 0 || c.nic && self.devices.max_nics == 0 {
                bail!(
                    "case {} needs a device the profile's limits (max_disks/max_nics) forbid",
                    c.id
                );
            }
            if c.vmbus && !self.interface.has_hyperv() {
                bail!(
                    "case {}: vmbus = true needs interface hyperv or both, not {:?}",
                    c.id,
                    self.interface
                );
            }
            if c.vmbus && !c.disk && !c.nic {
                bail!(
                    "case {}: vmbus = true but the case has no disk or nic",
                    c.id
                );
            }
            if c.check_image && !c.disk {
                bail!("case {} checks the image but has no disk", c.id);
            }
            if c.blocker && c.not_run.is_some() {
                bail!("case {} is a blocker but marked not_run", c.id);
            }
        }
        self.guest_os_id()?;
        Ok(())
    }

    /// The GUEST_OS_ID a Linux guest of this kernel version writes (TLFS open-source
    /// encoding as Linux's hv_generate_guest_id: 0x8100 << 48 | LINUX_VERSION_CODE << 16;
    /// bit 63 open source, OS type 1 = Linux).
    pub fn guest_os_id(&self) -> anyhow::Result<u64> {
        if let Some(id) = &self.guest_os.guest_os_id {
            let hex = id.trim_start_matches("0x");
            return u64::from_str_radix(hex, 16)
                .with_context(|| format!("guest_os_id {id:?}: expected 0x-hex"));
        }
        let parts: Vec<&str> = self.guest_os.kernel.split('.').collect();
        // "2.6.32.12-0.7-default" -> 2, 6, 32 (LINUX_VERSION_CODE keeps three numbers).
        let num = |i: usize| -> anyhow::Result<u64> {
            let s = parts.get(i).copied().unwrap_or("0");
            let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
            let v: u64 = digits
                .parse()
                .with_context(|| format!("kernel {:?}: expected a.b.c", self.guest_os.kernel))?;
            Ok(v.min(255))
        };
        let code = (num(0)? << 16) | (num(1)? << 8) | num(2)?;
        Ok((0x8100u64 << 48) | (code << 16))
    }
}

/// Reads and parses one profile file.
pub fn load(path: &Path) -> anyhow::Result<LoadedProfile> {
    let bytes =
        std::fs::read(path).with_context(|| format!("reading profile {}", path.display()))?;
    from_bytes(bytes, path.to_path_buf())
}

fn from_bytes(bytes: Vec<u8>, path: PathBuf) -> anyhow::Result<LoadedProfile> {
    use sha2::Digest;
    let sha256 = format!("{:x}", sha2::Sha256::digest(&bytes));
    let text =
        String::from_utf8(bytes).with_context(|| format!("{}: not UTF-8", path.display()))?;
    let profile = Profile::parse(&text, &path)?;
    Ok(LoadedProfile {
        profile,
        path,
        sha256,
    })
}

/// The profiles shipped with hvcert (`fixtures/guests/*.toml`), embedded by build.rs as
/// (file name, text) pairs sorted by file name, so an installed binary needs no source tree.
pub const BUILTIN: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/builtin_profiles.rs"));

/// The origin recorded for a built-in profile: `builtin:` and the file it was embedded from.
fn builtin_path(file: &str) -> PathBuf {
    PathBuf::from(format!("builtin:fixtures/guests/{file}"))
}

/// The profiles to run. `names` are profile names or paths to profile files (a name with
/// `/` or ending in `.toml`); with none, every profile. Names are looked up in `dir` when
/// given, else among the [`BUILTIN`] ones. A profile name may appear only once.
pub fn select(dir: Option<&Path>, names: &[String]) -> anyhow::Result<Vec<LoadedProfile>> {
    let mut profiles = Vec::new();
    match dir {
        Some(dir) if names.is_empty() => {
            for path in all_in(dir)? {
                profiles.push(load(&path)?);
            }
        }
        None if names.is_empty() => {
            for (file, text) in BUILTIN {
                profiles.push(from_bytes(text.as_bytes().to_vec(), builtin_path(file))?);
            }
        }
        _ => {
            for name in names {
                profiles.push(match (dir, is_path(name)) {
                    (Some(dir), false) => load(&resolve(dir, name))?,
                    (None, false) => builtin(name)?,
                    (_, true) => load(Path::new(name))?,
                });
            }
        }
    }
    if profiles.is_empty() {
        match dir {
            Some(dir) => bail!("no profiles found in {}", dir.display()),
            None => bail!("no built-in profiles"),
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for p in &profiles {
        if !seen.insert(p.profile.name.as_str()) {
            bail!(
                "{}: profile name {} is used twice",
                p.path.display(),
                p.profile.name
            );
        }
    }
    Ok(profiles)
}

/// The built-in profile `NAME` (file `NAME.toml`).
fn builtin(name: &str) -> anyhow::Result<LoadedProfile> {
    let file = format!("{name}.toml");
    let Some((_, text)) = BUILTIN.iter().find(|(f, _)| *f == file) else {
        let known: Vec<&str> = BUILTIN
            .iter()
            .filter_map(|(f, _)| f.strip_suffix(".toml"))
            .collect();
        bail!(
            "no built-in profile {name} (built in: {}; or give --profiles-dir or a path)",
            known.join(", ")
        );
    };
    from_bytes(text.as_bytes().to_vec(), builtin_path(&file))
}

/// A profile argument that names a file rather than a profile.
fn is_path(name: &str) -> bool {
    name.contains('/') || name.ends_with(".toml")
}

/// `NAME` -> `DIR/NAME.toml`; a path (with `/` or ending in .toml) is taken as is.
pub fn resolve(dir: &Path, name: &str) -> PathBuf {
    if is_path(name) {
        PathBuf::from(name)
    } else {
        dir.join(format!("{name}.toml"))
    }
}

/// Every `*.toml` in `dir`, sorted.
pub fn all_in(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("listing profiles in {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    v.sort();
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINI: &str = r#"
name = "t"
description = "d"
interface = "hyperv"
memory_mib = 64
[guest_os]
name = "SLES 11 SP1"
kernel = "2.6.32"
[[cases]]
id = "boot"
blocker = true
"#;

    #[test]
    fn linux_guest_os_id_encoding() {
        let p = Profile::parse(MINI, Path::new("t.toml")).unwrap();
        // 2.6.32 -> LINUX_VERSION_CODE 0x020620.
        assert_eq!(p.guest_os_id().unwrap(), 0x8100_0002_0620_0000);
        let sles = MINI.replace("2.6.32", "2.6.32.12-0.7-default");
        let p2 = Profile::parse(&sles, Path::new("t.toml")).unwrap();
        assert_eq!(p2.guest_os_id().unwrap(), 0x8100_0002_0620_0000);
        let explicit = MINI.replace(
            "kernel = \"2.6.32\"",
            "kernel = \"x\"\nguest_os_id = \"0x8100000206100000\"",
        );
        let p3 = Profile::parse(&explicit, Path::new("t.toml")).unwrap();
        assert_eq!(p3.guest_os_id().unwrap(), 0x8100_0002_0610_0000);
        let bad = MINI.replace("2.6.32", "two.six");
        assert!(Profile::parse(&bad, Path::new("t.toml")).is_err());
        assert_eq!(p.vcpus, 1);
        assert_eq!(p.cases[0].expect_end, ExpectEnd::Status);
    }

    #[test]
    fn errors_name_file_and_line() {
        let bad = MINI.replace("memory_mib = 64", "memory_mib = \"lots\"");
        let e = Profile::parse(&bad, Path::new("fixtures/x.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("fixtures/x.toml:5:"), "{e}");
        let unknown = MINI.replace("blocker = true", "blocker = true\nfrobnicate = 1");
        let e = Profile::parse(&unknown, Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.toml:") && e.contains("frobnicate"), "{e}");
        let dup = format!("{MINI}\n[[cases]]\nid = \"boot\"\n");
        let e = format!(
            "{:#}",
            Profile::parse(&dup, Path::new("x.toml")).unwrap_err()
        );
        assert!(e.contains("listed twice"), "{e}");
    }

    #[test]
    fn hyperv_limits_from_the_profile() {
        let with = |extra: &str| {
            MINI.replace(
                "[[cases]]\nid = \"boot\"\nblocker = true",
                &format!("[hyperv]\n{extra}\n[[cases]]\nid = \"boot\"\nblocker = true"),
            )
        };
        let p = Profile::parse(
            &with("max_virtual_processors = 4\nmax_logical_processors = 8"),
            Path::new("t.toml"),
        )
        .unwrap();
        assert_eq!(p.hv_config(&p.cases[0]).unwrap().limits, (4, 8));
        let p = Profile::parse(&with("max_logical_processors = 2"), Path::new("t.toml")).unwrap();
        assert_eq!(
            p.hv_config(&p.cases[0]).unwrap().limits,
            (hypervisor::abi::hv::MAX_PROCESSORS, 2)
        );
        let e = format!(
            "{:#}",
            Profile::parse(&with("max_virtual_processors = 0"), Path::new("z.toml")).unwrap_err()
        );
        assert!(
            e.contains("z.toml") && e.contains("max_virtual_processors = 0"),
            "{e}"
        );
    }

    #[test]
    fn reference_tsc_reliable_from_the_profile_and_the_case() {
        let with = |table: &str, case: &str| {
            MINI.replace(
                "[[cases]]\nid = \"boot\"\nblocker = true",
                &format!("[hyperv]\n{table}\n[[cases]]\nid = \"boot\"\nblocker = true\n{case}"),
            )
        };
        let reliable = |text: &str| {
            let p = Profile::parse(text, Path::new("t.toml")).unwrap();
            p.hv_config(&p.cases[0]).unwrap().reference_tsc_reliable
        };
        assert!(reliable(MINI), "default: as the host TSC is");
        assert!(!reliable(&with("reference_tsc_reliable = false", "")));
        assert!(!reliable(&with("", "reference_tsc_reliable = false")));
        assert!(reliable(&with(
            "reference_tsc_reliable = false",
            "reference_tsc_reliable = true"
        )));
    }

    #[test]
    fn hyperv_table_and_unknown_privilege_names() {
        let p = Profile::parse(MINI, Path::new("t.toml")).unwrap();
        let cfg = p.hv_config(&p.cases[0]).unwrap();
        assert_eq!(cfg, hypervisor::HvConfig::default());
        assert_eq!(&cfg.vendor, b"Microsoft Hv");
        let custom = MINI.replace(
            "[[cases]]\nid = \"boot\"\nblocker = true",
            "[hyperv]\nvendor = \"hvcertHyperV\"\nprivileges = [\"AccessHypercallMsrs\", \"AccessVpIndex\", \"PostMessages\"]\n[[cases]]\nid = \"boot\"\nblocker = true\nhv_clear = [\"AccessVpIndex\"]",
        );
        let p = Profile::parse(&custom, Path::new("t.toml")).unwrap();
        let cfg = p.hv_config(&p.cases[0]).unwrap();
        assert_eq!(&cfg.vendor, b"hvcertHyperV");
        assert_eq!(cfg.features.priv_eax, 1 << 5);
        assert_eq!(cfg.features.priv_ebx, 1 << 4);
        let bad = custom.replace(
            "\"PostMessages\"]",
            "\"PostMessages\",\n  \"AccessWarpDrive\"]",
        );
        let e = format!(
            "{:#}",
            Profile::parse(&bad, Path::new("g.toml")).unwrap_err()
        );
        assert!(
            e.starts_with("g.toml:12:") && e.contains("AccessWarpDrive"),
            "{e}"
        );
        let bad_clear = custom.replace("hv_clear = [\"AccessVpIndex\"]", "hv_clear = [\"Nope\"]");
        let e = format!(
            "{:#}",
            Profile::parse(&bad_clear, Path::new("g.toml")).unwrap_err()
        );
        assert!(e.starts_with("g.toml:15:") && e.contains("Nope"), "{e}");
        let long = custom.replace("hvcertHyperV", "hvcertHyperVX");
        assert!(Profile::parse(&long, Path::new("g.toml")).is_err());
    }

    #[test]
    fn case_vcpus_and_timeout_are_bounded_like_the_profile_ones() {
        let err = |text: &str| {
            format!(
                "{:#}",
                Profile::parse(text, Path::new("x.toml")).unwrap_err()
            )
        };
        let zero = MINI.replace("blocker = true", "blocker = true\nvcpus = 0");
        let e = err(&zero);
        assert!(e.contains("case boot: vcpus = 0: expected 1..=64"), "{e}");
        let many = MINI.replace("blocker = true", "blocker = true\nvcpus = 65");
        assert!(err(&many).contains("vcpus = 65"));
        let four = MINI.replace("blocker = true", "blocker = true\nvcpus = 4");
        assert_eq!(
            Profile::parse(&four, Path::new("x.toml")).unwrap().cases[0].vcpus,
            Some(4)
        );
        // i64::MAX seconds would overflow the hypervisor's deadline (Instant + Duration).
        let forever = MINI.replace(
            "memory_mib = 64",
            "memory_mib = 64\ntimeout_secs = 9223372036854775807",
        );
        let e = err(&forever);
        assert!(
            e.contains("timeout_secs = 9223372036854775807: expected 1..=86400"),
            "{e}"
        );
        let never = MINI.replace("memory_mib = 64", "memory_mib = 64\ntimeout_secs = 0");
        let e = err(&never);
        assert!(e.contains("timeout_secs = 0: expected 1..=86400"), "{e}");
    }

    #[test]
    fn vmbus_cases_need_hyperv_and_a_device() {
        let err = |text: &str| {
            format!(
                "{:#}",
                Profile::parse(text, Path::new("x.toml")).unwrap_err()
            )
        };
        let ok = MINI.replace(
            "blocker = true",
            "blocker = true\ndisk = true\nvmbus = true",
        );
        let p = Profile::parse(&ok, Path::new("x.toml")).unwrap();
        assert!(p.cases[0].vmbus && p.cases[0].disk);
        let xen = ok.replace("interface = \"hyperv\"", "interface = \"xen\"");
        let e = err(&xen);
        assert!(
            e.contains("case boot: vmbus = true needs interface hyperv"),
            "{e}"
        );
        let bare = MINI.replace("blocker = true", "blocker = true\nvmbus = true");
        assert!(err(&bare).contains("vmbus = true but the case has no disk or nic"));
    }
}

#[cfg(test)]
mod fixture_tests {
    use super::*;

    /// Every shipped profile loads, and every case it names exists in the guest's case
    /// table (so a typo is caught without booting anything).
    #[test]
    fn shipped_profiles_name_real_guest_cases() {
        let table = include_str!("../guest/src/cases/mod.rs");
        let dir = source_dir();
        let paths = all_in(&dir).unwrap();
        assert!(paths.len() >= 2, "{paths:?}");
        for path in paths {
            let p = load(&path).unwrap_or_else(|e| panic!("{e:#}"));
            assert_eq!(
                path.file_stem().and_then(|s| s.to_str()),
                Some(p.profile.name.as_str()),
                "file name and profile name differ"
            );
            for c in &p.profile.cases {
                assert!(
                    table.contains(&format!("\"{}\",", c.id)),
                    "{}: case {} is not in the guest's table",
                    path.display(),
                    c.id
                );
            }
        }
    }

    /// `fixtures/guests` of this source tree.
    fn source_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/guests")
    }

    /// The embedded profiles are exactly the shipped files, and select them by default.
    #[test]
    fn builtin_profiles_are_the_shipped_files() {
        let files = all_in(&source_dir()).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        let builtin: Vec<&str> = BUILTIN.iter().map(|(f, _)| *f).collect();
        assert_eq!(builtin, names);
        for ((_, text), path) in BUILTIN.iter().zip(&files) {
            assert_eq!(*text, std::fs::read_to_string(path).unwrap(), "{path:?}");
        }
        let all = select(None, &[]).unwrap();
        assert_eq!(all.len(), files.len());
        let from_dir = select(Some(&source_dir()), &[]).unwrap();
        for (b, d) in all.iter().zip(&from_dir) {
            assert_eq!((&b.profile.name, &b.sha256), (&d.profile.name, &d.sha256));
            assert!(
                b.path.to_string_lossy().starts_with("builtin:"),
                "{:?}",
                b.path
            );
        }
        let one = select(None, &["sles11sp1-like".to_string()]).unwrap();
        assert_eq!(one[0].profile.name, "sles11sp1-like");
        let e = format!("{:#}", select(None, &["nope".to_string()]).unwrap_err());
        assert!(e.contains("no built-in profile nope"), "{e}");
        let twice = vec!["sles11sp1-like".to_string(), "sles11sp1-like".to_string()];
        let e = format!("{:#}", select(None, &twice).unwrap_err());
        assert!(e.contains("used twice"), "{e}");
    }
}
