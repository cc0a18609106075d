//! `hvcert gate`.
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct GateArgs {}

pub fn run(_args: GateArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`hvcert gate` is not implemented yet")
}
