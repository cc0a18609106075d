//! `hvcert run`: boot a kernel on the hvcert hypervisor, stream its serial console to stdout,
//! exit with the guest's status (port 0xf4, low 8 bits), 124 on timeout, 125 on a crash.
use hypervisor::{DiskBus, DiskConfig, Interface, NetConfig, Vm, VmConfig, VmEnd};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args)]
pub struct RunArgs {
    /// Kernel: a PVH ELF (XEN_ELFNOTE_PHYS32_ENTRY) or a bzImage.
    #[arg(long)]
    pub kernel: PathBuf,
    /// Kernel command line. Default for the built-in guest (`hvcert guest --out FILE`): a
    /// `profile=run cases=...` line whose cases exercise the interface, disk and network
    /// given (printed on stderr); for any other kernel: empty.
    #[arg(long)]
    pub cmdline: Option<String>,
    /// Initial ramdisk.
    #[arg(long)]
    pub initrd: Option<PathBuf>,
    /// Guest memory in MiB.
    #[arg(long, default_value_t = 128)]
    pub memory: u32,
    /// Number of vCPUs.
    #[arg(long, default_value_t = 1)]
    pub cpus: u8,
    /// Paravirtual interface: hyperv, xen, both or none.
    #[arg(long, default_value = "hyperv")]
    pub interface: Interface,
    /// Wall-clock limit in seconds (0 = none); exit status 124 when it elapses.
    #[arg(long, default_value_t = 60.0)]
    pub timeout: f64,
    /// Raw disk image behind a virtio-blk device: FILE or FILE,ro (read-only: guest writes
    /// fail with IOERR). Repeatable up to --max-disks.
    #[arg(long = "disk", value_name = "FILE[,ro]")]
    pub disks: Vec<DiskConfig>,
    /// Controller for the disks: `blk` (one virtio-blk device each), `scsi` (one
    /// virtio-scsi controller each, the disk as target 0 LUN 0) or `vmbus` (one synthetic
    /// SCSI controller (storvsc) each on the VMBus; needs `--interface hyperv` or `both`).
    #[arg(long, default_value = "blk", value_name = "blk|scsi|vmbus")]
    pub disk_bus: DiskBusArg,
    /// Network adapters: `virtio` (virtio-net) or `vmbus` (synthetic network adapters
    /// (netvsc) on the VMBus; needs `--interface hyperv` or `both`).
    #[arg(long, default_value = "virtio", value_name = "virtio|vmbus")]
    pub nic: NicArg,
    /// Network adapter (virtio-net) backend: `loopback` (every frame sent comes back) or
    /// `tap:NAME` (a host TAP interface). Repeatable up to --max-nics.
    #[arg(long = "net", value_name = "loopback|tap:NAME")]
    pub nets: Vec<NetConfig>,
    /// Most storage controllers this VM may have.
    #[arg(long, default_value_t = 1)]
    pub max_disks: usize,
    /// Most network adapters this VM may have.
    #[arg(long, default_value_t = 1)]
    pub max_nics: usize,
    /// Hyper-V vendor signature in CPUID leaf 0x40000000 (at most 12 ASCII characters).
    #[arg(long, default_value = "Microsoft Hv")]
    pub hv_vendor: String,
    /// Hyper-V privileges, features and recommendations the guest gets, as a comma-separated
    /// list of TLFS names (AccessVpIndex,PostMessages,...); every synthetic MSR and hypercall
    /// whose bit is missing raises #GP / returns HV_STATUS_ACCESS_DENIED. Default: everything
    /// implemented.
    #[arg(long, value_name = "LIST")]
    pub hv_features: Option<String>,
    /// Hyper-V implementation limits in CPUID leaf 0x40000005: maximum virtual processors
    /// and maximum logical processors, as `VPS,LPS` (default 255,255).
    #[arg(long, value_name = "VPS,LPS")]
    pub hv_limits: Option<String>,
    /// Stock-kernel fixes for a nested, software-assisted KVM host (`hypervisor::platform`:
    /// a command-line fragment hiding CPU features this host's emulator cannot run, and VMM
    /// emulation of the few instructions no option hides). `auto`: applied to a stock Linux
    /// kernel (bzImage, or vmlinux with Linux's banner) when the probe's KVM check says
    /// `nested_software`; never on hardware-assisted hosts nor to hvcert's own guests.
    #[arg(long, value_enum, default_value = "auto", value_name = "on|off|auto")]
    pub nested_fixes: certify::nested::NestedFixes,
    /// Print every vCPU's registers on stderr when the VM ends.
    #[arg(long)]
    pub dump_regs: bool,
    /// Run without the seccomp allow-lists (on by default: the vCPU, device, console and
    /// VMM threads may only make the system calls they need; any other kills the VMM).
    #[arg(long)]
    pub no_seccomp: bool,
}

/// `--disk-bus`: a virtio controller, or the VMBus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskBusArg {
    /// A virtio controller.
    Virtio(DiskBus),
    /// storvsc on the VMBus.
    Vmbus,
}

impl std::str::FromStr for DiskBusArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "vmbus" | "storvsc" => Ok(DiskBusArg::Vmbus),
            _ => s
                .parse::<DiskBus>()
                .map(DiskBusArg::Virtio)
                .map_err(|_| format!("--disk-bus {s}: expected `blk`, `scsi` or `vmbus`")),
        }
    }
}

/// `--nic`: virtio-net or netvsc on the VMBus.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum NicArg {
    /// virtio-net.
    Virtio,
    /// netvsc on the VMBus.
    Vmbus,
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let Ok(timeout) = Duration::try_from_secs_f64(args.timeout) else {
        anyhow::bail!(
            "--timeout {}: expected a non-negative number of seconds",
            args.timeout
        );
    };
    let cmdline = match args.cmdline {
        Some(c) => c,
        None => {
            let builtin = std::fs::read(&args.kernel)
                .is_ok_and(|bytes| certify::guest::is_builtin_guest(&bytes));
            if builtin {
                // The built-in guest's default cases drive virtio devices only.
                let virtio_disks = match args.disk_bus {
                    DiskBusArg::Virtio(_) => args.disks.len(),
                    DiskBusArg::Vmbus => 0,
                };
                let virtio_nets = match args.nic {
                    NicArg::Virtio => args.nets.len(),
                    NicArg::Vmbus => 0,
                };
                let c = certify::guest::default_cmdline(args.interface, virtio_disks, virtio_nets);
                eprintln!("hvcert: built-in guest, no --cmdline: using \"{c}\"");
                c
            } else {
                String::new()
            }
        }
    };
    let mut cfg = VmConfig {
        memory_mib: args.memory,
        cpus: args.cpus,
        kernel: args.kernel,
        initrd: args.initrd,
        cmdline,
        interface: args.interface,
        timeout,
        disks: args.disks,
        disk_bus: match args.disk_bus {
            DiskBusArg::Virtio(b) => b,
            DiskBusArg::Vmbus => DiskBus::default(),
        },
        nets: args.nets,
        vmbus: hypervisor::vmbus::VmbusConfig {
            disks: args.disk_bus == DiskBusArg::Vmbus,
            nics: args.nic == NicArg::Vmbus,
        },
        max_disks: args.max_disks,
        ..Default::default()
    };
    cfg.max_nics = args.max_nics;
    cfg.hyperv = hypervisor::HvConfig {
        vendor: hypervisor::hv_config::parse_vendor(&args.hv_vendor)
            .map_err(|e| anyhow::anyhow!("--hv-vendor: {e}"))?,
        features: match &args.hv_features {
            Some(list) => hypervisor::hv_config::parse_feature_list(list)
                .map_err(|e| anyhow::anyhow!("--hv-features: {e}"))?,
            None => hypervisor::HvFeatures::default(),
        },
        limits: match &args.hv_limits {
            Some(s) => parse_limits(s).map_err(|e| anyhow::anyhow!("--hv-limits {s:?}: {e}"))?,
            None => hypervisor::HvConfig::default().limits,
        },
        ..hypervisor::HvConfig::default()
    };
    cfg.seccomp = !args.no_seccomp;
    cfg.nested_fixes = certify::nested::resolve(args.nested_fixes, &cfg.kernel);
    if cfg.nested_fixes {
        eprintln!("hvcert: nested-host fixes for a stock kernel on (--nested-fixes off: none)");
    }
    let vm = Vm::new(cfg)?;
    if !args.no_seccomp {
        // This thread runs the VM and then only reports: it gets the VMM thread's list.
        hypervisor::seccomp::install(hypervisor::seccomp::ThreadKind::Vmm)?;
    }
    let outcome = vm.run(Box::new(std::io::stdout()))?;
    match &outcome.end {
        VmEnd::Crash { reason, .. } => eprintln!("hvcert: guest crashed: {reason}"),
        VmEnd::Timeout => eprintln!("hvcert: timeout after {:.1} s", outcome.wall.as_secs_f64()),
        _ => {}
    }
    if args.dump_regs {
        for (i, r) in outcome.final_regs.iter().enumerate() {
            eprintln!("vCPU {i}:\n{r}");
        }
    }
    Ok(ExitCode::from(outcome.end.exit_code()))
}

/// `VPS,LPS` for `--hv-limits`.
fn parse_limits(s: &str) -> Result<(u32, u32), String> {
    let (a, b) = s
        .split_once(',')
        .ok_or("expected two numbers VPS,LPS (e.g. 64,64)")?;
    let n = |what: &str, t: &str| {
        t.trim()
            .parse::<u32>()
            .map_err(|e| format!("{what} {t:?}: {e}"))
            .and_then(|n| hypervisor::hv_config::check_limit(what, n))
    };
    Ok((
        n("maximum virtual processors", a)?,
        n("maximum logical processors", b)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::parse_limits;

    #[test]
    fn hv_limits_parse_and_refuse() {
        assert_eq!(parse_limits("4,8"), Ok((4, 8)));
        assert_eq!(parse_limits(" 64 , 64 "), Ok((64, 64)));
        assert!(parse_limits("4").unwrap_err().contains("VPS,LPS"));
        assert!(parse_limits("0,4").unwrap_err().contains("at least 1"));
        assert!(parse_limits("4,x").unwrap_err().contains("logical"));
    }
}
