//! `hvcert initramfs`: build the initramfs for stock kernels (`certify::initramfs::build`)
//! from an extracted kernel package and Debian's static busybox, as a newc cpio archive.
use certify::initramfs::{self, InitramfsSpec};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct InitramfsArgs {
    /// Root of the extracted kernel package (holds `lib/modules/<release>/`).
    #[arg(long)]
    pub kernel_tree: PathBuf,
    /// The static busybox binary (`bin/busybox` of Debian's busybox-static).
    #[arg(long)]
    pub busybox: PathBuf,
    /// The release under `lib/modules/` (default: the only one there).
    #[arg(long)]
    pub release: Option<String>,
    /// A module to include with its dependencies (repeatable; default: virtio, Hyper-V and
    /// Xen storage and network drivers).
    #[arg(long = "module", value_name = "NAME")]
    pub modules: Vec<String>,
    /// Where the newc cpio archive goes.
    #[arg(short, long)]
    pub output: PathBuf,
}

pub fn run(args: InitramfsArgs) -> anyhow::Result<ExitCode> {
    let mut spec = InitramfsSpec::new(&args.kernel_tree, &args.busybox);
    spec.release = args.release;
    if !args.modules.is_empty() {
        spec.modules = args.modules;
    }
    let cpio = initramfs::build(&spec)?;
    std::fs::write(&args.output, &cpio)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.output.display()))?;
    eprintln!(
        "hvcert: wrote {} ({} bytes)",
        args.output.display(),
        cpio.len()
    );
    Ok(ExitCode::SUCCESS)
}
