//! `hvcert certify`.
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct CertifyArgs {}

pub fn run(_args: CertifyArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`hvcert certify` is not implemented yet")
}
