//! The live host: the only code that reads this machine (CPUID instruction, /proc, /sys,
//! /dev/cpu/N/msr, /dev/kmsg, /dev/kvm).
use std::fs;
use std::io::{ErrorKind, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use raw_cpuid::{CpuIdReader, CpuIdReaderNative};
use x86::msr;

use crate::raw::{
    vendor_string, Avail, CpuInfo, CpuidTable, Dmi, Hex, MsrRead, MsrSet, PciDev, RawHost,
};

/// MSRs the probe reads on Intel: IA32_FEATURE_CONTROL and the VMX capability MSRs.
pub const INTEL_MSRS: &[u32] = &[
    msr::IA32_FEATURE_CONTROL,
    msr::IA32_MISC_ENABLE,
    msr::IA32_VMX_BASIC,
    msr::IA32_VMX_PROCBASED_CTLS,
    msr::IA32_VMX_PROCBASED_CTLS2,
    msr::IA32_VMX_EPT_VPID_CAP,
    msr::IA32_VMX_VMFUNC,
];
/// MSRs the probe reads on AMD: VM_CR (SVMDIS, LOCK).
pub const AMD_MSRS: &[u32] = &[AMD_VM_CR];
pub use crate::raw::AMD_VM_CR;

/// Where the live host's files are; tests point this at a fake tree.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// Root of /proc, /sys and /dev (normally "/").
    pub root: std::path::PathBuf,
    /// Run the KVM functional check.
    pub kvm_check: bool,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            root: "/".into(),
            kvm_check: true,
        }
    }
}

/// Collects everything from the running machine.
pub fn collect(opts: &LiveOptions) -> RawHost {
    let root = &opts.root;
    let t0 = std::time::Instant::now();
    let cpuid = read_cpuid();
    tracing::debug!(target: "probe", "cpuid: {:.3} ms", t0.elapsed().as_secs_f64() * 1e3);
    let vendor = {
        let r = cpuid.get(0, 0);
        vendor_string(r[1], r[3], r[2])
    };
    let msr_list: &[u32] = match vendor.as_str() {
        "GenuineIntel" => INTEL_MSRS,
        "AuthenticAMD" | "HygonGenuine" => AMD_MSRS,
        _ => &[],
    };
    // Each reader is timed at debug level (HVCERT_LOG=probe=debug) to keep the probe fast.
    fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
        let t0 = std::time::Instant::now();
        let v = f();
        tracing::debug!(target: "probe", "{what}: {:.3} ms", t0.elapsed().as_secs_f64() * 1e3);
        v
    }
    RawHost {
        inputs: vec!["live host".to_string()],
        cpuid: Avail::Known(cpuid),
        cpuid_missing: None,
        msrs: timed("msr", || read_msrs(&root.join("dev/cpu/0/msr"), msr_list)),
        cpuinfo: timed("cpuinfo", || read_cpuinfo(&root.join("proc/cpuinfo"))),
        dmi: timed("dmi", || read_dmi(&root.join("sys/class/dmi/id"))),
        pci_host_bridges: timed("pci", || read_pci(&root.join("sys/bus/pci/devices"))),
        acpi_tables: timed("acpi", || read_acpi(&root.join("sys/firmware/acpi/tables"))),
        iommu_groups: timed("iommu", || {
            read_iommu_groups(&root.join("sys/kernel/iommu_groups"))
        }),
        kernel_log: timed("kmsg", || read_kernel_log(&root.join("dev/kmsg"))),
        kvm: if opts.kvm_check {
            timed("kvm", || {
                Avail::Known(crate::kvm_check::run(&root.join("dev/kvm")))
            })
        } else {
            Avail::missing("the KVM check was not requested")
        },
    }
}

/// Reads the CPUID leaves the probe and a snapshot need, on the CPU this thread runs on.
pub fn read_cpuid() -> CpuidTable {
    let r = CpuIdReaderNative;
    let mut t = CpuidTable::default();
    let put = |t: &mut CpuidTable, leaf: u32, sub: u32| {
        let x = r.cpuid2(leaf, sub);
        t.insert(leaf, sub, [x.eax, x.ebx, x.ecx, x.edx]);
        [x.eax, x.ebx, x.ecx, x.edx]
    };
    let max = put(&mut t, 0, 0)[0].min(0x20);
    for leaf in 1..=max {
        let first = put(&mut t, leaf, 0);
        let subs = match leaf {
            // Sub-leaf counts: leaf 7 says how many in EAX; the others are walked until empty.
            0x7 => first[0].min(3),
            0x4 | 0xb | 0xd | 0xf | 0x10 | 0x12 | 0x14 | 0x1f => 15,
            _ => 0,
        };
        for sub in 1..=subs {
            let x = r.cpuid2(leaf, sub);
            if [x.eax, x.ebx, x.ecx, x.edx] == [0; 4] {
                if leaf != 0xd {
                    break;
                }
                continue;
            }
            t.insert(leaf, sub, [x.eax, x.ebx, x.ecx, x.edx]);
        }
    }
    if t.get(1, 0)[2] & (1 << 31) != 0 {
        let hmax = put(&mut t, 0x4000_0000, 0)[0];
        if (0x4000_0000..=0x4000_00ff).contains(&hmax) {
            for leaf in 0x4000_0001..=hmax {
                put(&mut t, leaf, 0);
            }
        }
        // Xen moves its leaves to 0x40000100 when it also offers Viridian.
        put(&mut t, 0x4000_0100, 0);
    }
    let emax = put(&mut t, 0x8000_0000, 0)[0];
    if (0x8000_0001..=0x8000_00ff).contains(&emax) {
        for leaf in 0x8000_0001..=emax.min(0x8000_0028) {
            put(&mut t, leaf, 0);
        }
    }
    t
}

fn read_msrs(dev: &Path, list: &[u32]) -> Avail<MsrSet> {
    if list.is_empty() {
        return Avail::missing("no MSRs are read on a CPU of unknown vendor");
    }
    let file = match fs::OpenOptions::new().read(true).open(dev) {
        Ok(f) => f,
        Err(e) => {
            let why = match e.kind() {
                ErrorKind::NotFound => format!(
                    "{} does not exist: the msr driver is not loaded (modprobe msr)",
                    dev.display()
                ),
                ErrorKind::PermissionDenied => {
                    format!(
                        "{}: permission denied (reading MSRs needs root with CAP_SYS_RAWIO)",
                        dev.display()
                    )
                }
                _ => format!("{}: {e}", dev.display()),
            };
            return Avail::Known(MsrSet {
                reads: Vec::new(),
                missing_why: Some(why),
            });
        }
    };
    let mut reads = Vec::new();
    for &msr in list {
        let mut buf = [0u8; 8];
        // pread(2) at offset = MSR index, as the msr driver defines.
        match nix::sys::uio::pread(&file, &mut buf, i64::from(msr)) {
            Ok(8) => reads.push(MsrRead {
                msr: Hex(u64::from(msr)),
                value: Some(Hex(u64::from_le_bytes(buf))),
                why: None,
            }),
            Ok(n) => reads.push(MsrRead {
                msr: Hex(u64::from(msr)),
                value: None,
                why: Some(format!("short read of {n} bytes")),
            }),
            Err(e) => reads.push(MsrRead {
                msr: Hex(u64::from(msr)),
                value: None,
                why: Some(match e {
                    nix::errno::Errno::EIO => {
                        "rdmsr faulted: the CPU does not implement this MSR".to_string()
                    }
                    e => format!("pread: {e}"),
                }),
            }),
        }
    }
    Avail::Known(MsrSet {
        reads,
        missing_why: None,
    })
}

fn read_cpuinfo(path: &Path) -> Avail<CpuInfo> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return Avail::missing(format!("{}: {e}", path.display())),
    };
    parse_cpuinfo(&text).map_or_else(
        || Avail::missing(format!("{}: no `flags` line", path.display())),
        Avail::Known,
    )
}

/// The `flags` and `vmx flags` lines of the first processor in /proc/cpuinfo text.
pub fn parse_cpuinfo(text: &str) -> Option<CpuInfo> {
    let first = text.split("\n\n").next().unwrap_or("");
    let mut info: Option<CpuInfo> = None;
    for line in first.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let words = || v.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        match k.trim() {
            "flags" => info.get_or_insert_with(CpuInfo::default).flags = words(),
            "vmx flags" => info.get_or_insert_with(CpuInfo::default).vmx_flags = Some(words()),
            _ => {}
        }
    }
    info
}

fn read_dmi(dir: &Path) -> Avail<Dmi> {
    if !dir.is_dir() {
        return Avail::missing(format!(
            "{} is absent: the firmware exposes no SMBIOS/DMI tables (usual in micro-VMs such as Firecracker)",
            dir.display()
        ));
    }
    let get = |name: &str| {
        fs::read_to_string(dir.join(name))
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty() && s != "Not Specified" && s != "To Be Filled By O.E.M.")
    };
    Avail::Known(Dmi {
        sys_vendor: get("sys_vendor"),
        product_name: get("product_name"),
        bios_vendor: get("bios_vendor"),
        bios_version: get("bios_version"),
        bios_date: get("bios_date"),
        processors: Vec::new(),
    })
}

fn read_pci(dir: &Path) -> Avail<Vec<PciDev>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => return Avail::missing(format!("{}: {e}", dir.display())),
    };
    let hex = |p: &Path| {
        fs::read_to_string(p)
            .ok()
            .and_then(|s| crate::raw::parse_hex(&s))
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let p = e.path();
        let Some(class) = hex(&p.join("class")) else {
            continue;
        };
        if class >> 8 != 0x0600 {
            continue;
        }
        let (Some(v), Some(d)) = (hex(&p.join("vendor")), hex(&p.join("device"))) else {
            continue;
        };
        let (Ok(vendor), Ok(device)) = (u16::try_from(v), u16::try_from(d)) else {
            continue;
        };
        out.push(PciDev {
            address: e.file_name().to_string_lossy().into_owned(),
            vendor,
            device,
        });
    }
    out.sort_by(|a, b| a.address.cmp(&b.address));
    Avail::Known(out)
}

fn read_acpi(dir: &Path) -> Avail<Vec<String>> {
    match fs::read_dir(dir) {
        Ok(entries) => {
            let mut names: Vec<String> = entries
                .flatten()
                .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            Avail::Known(names)
        }
        Err(e) => Avail::missing(format!("{}: {e}", dir.display())),
    }
}

fn read_iommu_groups(dir: &Path) -> Avail<u32> {
    match fs::read_dir(dir) {
        Ok(entries) => Avail::Known(u32::try_from(entries.count()).unwrap_or(u32::MAX)),
        Err(e) if e.kind() == ErrorKind::NotFound => Avail::Known(0),
        Err(e) => Avail::missing(format!("{}: {e}", dir.display())),
    }
}

/// Whether a kernel log line says something about virtualization or IOMMU enablement.
pub fn kernel_line_matters(line: &str) -> bool {
    let l = line.to_ascii_lowercase();
    l.contains("disabled by bios")
        || l.contains("not enabled (by bios)")
        || l.contains("svm disabled")
        || l.contains("vmx (outside txt)")
        || l.contains("kvm_intel")
        || l.contains("kvm_amd")
        || l.contains("dmar: iommu enabled")
        || l.contains("amd-vi: iommu performance")
        || l.contains("amd-vi: interrupt remapping enabled")
        || (l.contains("kvm") && l.contains("disabled"))
}

fn read_kernel_log(dev: &Path) -> Avail<Vec<String>> {
    let mut f = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(dev)
    {
        Ok(f) => f,
        Err(e) => {
            return Avail::missing(match e.kind() {
                ErrorKind::PermissionDenied => format!(
                    "{}: permission denied (kernel.dmesg_restrict is set; run as root to read the kernel log)",
                    dev.display()
                ),
                _ => format!("{}: {e}", dev.display()),
            })
        }
    };
    let mut lines = Vec::new();
    let mut buf = vec![0u8; 8192];
    // Each read returns one record; EAGAIN ends the log, EPIPE means a record was overwritten.
    for _ in 0..100_000 {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                // /dev/kmsg gives one record per read: "prio,seq,usec,flags;message\n" and
                // " KEY=value" continuation lines; a plain file (a saved log) gives many lines.
                for line in String::from_utf8_lossy(&buf[..n]).lines() {
                    if line.starts_with(' ') {
                        continue;
                    }
                    let msg = match line.split_once(';') {
                        Some((head, m)) if head.split(',').count() >= 3 => m,
                        _ => line,
                    };
                    let msg = msg.trim();
                    if kernel_line_matters(msg) && lines.len() < 50 {
                        lines.push(msg.to_string());
                    }
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(e) => return Avail::missing(format!("{}: {e}", dev.display())),
        }
    }
    Avail::Known(lines)
}
