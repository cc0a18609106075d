//! `hvcert package OUT REPORT…`: merge probe and certify reports of many hosts into one
//! certification package; `hvcert package verify FILE`: check one (exit 1 when tampered).
use std::path::PathBuf;
use std::process::ExitCode;

use certify::package;

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct PackageArgs {
    #[command(subcommand)]
    command: Option<PackageCommand>,
    /// The package to write: a tar archive, gzip-compressed when the name ends in .gz/.tgz.
    #[arg(required = true)]
    out: Option<PathBuf>,
    /// `[HOST=]PATH`: a report (`hvcert probe --report x.json`, certify's report.json) or
    /// a certify output folder; HOST names the host (default: from its probe facts).
    #[arg(required = true, value_name = "RUN_OR_REPORT")]
    inputs: Vec<String>,
}

#[derive(clap::Subcommand)]
enum PackageCommand {
    /// Check a package against its manifest; exit 1 naming each tampered, missing or
    /// extra file.
    Verify {
        /// The package file.
        file: PathBuf,
    },
}

/// Makes or verifies a package.
pub fn run(args: PackageArgs) -> anyhow::Result<ExitCode> {
    if let Some(PackageCommand::Verify { file }) = args.command {
        let v = package::verify(&file)?;
        if v.problems.is_empty() {
            println!(
                "{}: ok, {} files match the manifest",
                file.display(),
                v.files
            );
            return Ok(ExitCode::SUCCESS);
        }
        for p in &v.problems {
            println!("{}: {p}", file.display());
        }
        println!("{}: verification FAILED", file.display());
        return Ok(ExitCode::from(1));
    }
    let out = args
        .out
        .ok_or_else(|| anyhow::anyhow!("give the package file to write"))?;
    let made = package::create(&out, &args.inputs)?;
    println!(
        "{}: {} report(s) of {} host(s), {} files",
        out.display(),
        made.reports,
        made.hosts,
        made.files
    );
    Ok(ExitCode::SUCCESS)
}
