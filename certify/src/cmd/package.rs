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
    /// Sign the manifest with the ed25519 secret key in KEY (see `hvcert package keygen`).
    #[arg(long, value_name = "KEY")]
    sign: Option<PathBuf>,
}

#[derive(clap::Subcommand)]
enum PackageCommand {
    /// Check a package against its manifest; exit 1 naming each tampered, missing or
    /// extra file.
    Verify {
        /// The package file.
        file: PathBuf,
        /// Require a signature by this public key (a KEY.pub file from `package keygen`).
        #[arg(long, value_name = "KEY.pub")]
        key: Option<PathBuf>,
    },
    /// Make an ed25519 key pair for signing packages: KEY (secret, mode 0600) and KEY.pub.
    Keygen {
        /// The secret key file to create (never overwritten).
        key: PathBuf,
    },
}

/// Makes or verifies a package.
pub fn run(args: PackageArgs) -> anyhow::Result<ExitCode> {
    if let Some(PackageCommand::Keygen { key }) = &args.command {
        let public = certify::package_sign::keygen(key)?;
        println!(
            "secret key {}, public key {}",
            key.display(),
            public.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(PackageCommand::Verify { file, key }) = args.command {
        let want = key
            .as_deref()
            .map(certify::package_sign::read_public)
            .transpose()?;
        let v = package::verify(&file, want.as_deref())?;
        if v.problems.is_empty() {
            let signed = v
                .signed_by
                .map(|k| format!(", signed by ed25519 key {k}"))
                .unwrap_or_else(|| ", unsigned".into());
            println!(
                "{}: ok, {} files match the manifest{signed}",
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
    let made = package::create(&out, &args.inputs, args.sign.as_deref())?;
    println!(
        "{}: {} report(s) of {} host(s), {} files",
        out.display(),
        made.reports,
        made.hosts,
        made.files
    );
    Ok(ExitCode::SUCCESS)
}
