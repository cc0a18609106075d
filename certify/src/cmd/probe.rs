//! `hvcert probe`.
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct ProbeArgs {}

pub fn run(_args: ProbeArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`hvcert probe` is not implemented yet")
}
