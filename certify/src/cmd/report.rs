//! `hvcert report`.
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct ReportArgs {}

pub fn run(_args: ReportArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`hvcert report` is not implemented yet")
}
