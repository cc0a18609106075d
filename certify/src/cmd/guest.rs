//! `hvcert guest`: write the built-in guest kernel (the certification guest, a PVH ELF) to
//! a file, for `hvcert run --kernel`.
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

#[derive(clap::Args)]
pub struct GuestArgs {
    /// Where to write the guest kernel (a PVH ELF).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

pub fn run(args: GuestArgs) -> anyhow::Result<ExitCode> {
    std::fs::write(&args.out, certify::guest::GUEST_ELF_BYTES)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    eprintln!(
        "hvcert: guest kernel written to {} ({} bytes); boot it with `hvcert run --kernel {}`",
        args.out.display(),
        certify::guest::GUEST_ELF_BYTES.len(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
