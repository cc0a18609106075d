//! `hvcert real-guest`: boot a stock distribution kernel with hvcert's initramfs (the
//! real-guest tier, `certify::realguest`) and grade it by console milestones and `/init`'s
//! KTAP. Exit 0 when every case of every profile is ok, 1 otherwise.
use certify::nested::NestedFixes;
use certify::realguest::{self, RealProfile, RunOptions};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct RealGuestArgs {
    /// Profile name (in --profiles-dir) or path to a profile file; repeatable.
    /// Default: debian-cloud-none.
    #[arg(long = "profile", value_name = "NAME")]
    pub profiles: Vec<String>,
    /// Directory of the real-guest profiles.
    #[arg(long, value_name = "DIR", default_value = "fixtures/guests/real")]
    pub profiles_dir: PathBuf,
    /// Where scripts/real-guest.sh put the kernel package and the initramfs (default:
    /// $HVCERT_REAL_KERNEL_DIR, else target/real-guest).
    #[arg(long, value_name = "DIR")]
    pub real_kernel_dir: Option<PathBuf>,
    /// Output directory: PROFILE.console.log, PROFILE.json, PROFILE.disk.img.
    #[arg(long, default_value = "hvcert-real-guest")]
    pub out: PathBuf,
    /// Nested-host fixes (see `hvcert run --help`).
    #[arg(long, value_enum, default_value = "auto", value_name = "on|off|auto")]
    pub nested_fixes: NestedFixes,
    /// Wall-clock limit per VM in seconds (default: the profile's).
    #[arg(long)]
    pub timeout: Option<u64>,
    /// Extra kernel options after the profile's (e.g. `quiet`, `initcall_blacklist=...`).
    #[arg(long, default_value = "")]
    pub cmdline_extra: String,
    /// Do not echo the guest console on stderr.
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(args: RealGuestArgs) -> anyhow::Result<ExitCode> {
    let names = if args.profiles.is_empty() {
        vec!["debian-cloud-none".to_string()]
    } else {
        args.profiles.clone()
    };
    let opts = RunOptions {
        kernel_dir: realguest::kernel_dir(args.real_kernel_dir.as_deref()),
        out: args.out.clone(),
        nested_fixes: args.nested_fixes,
        timeout_secs: args.timeout,
        extra_cmdline: args.cmdline_extra.clone(),
    };
    let mut all_ok = true;
    for name in &names {
        let path = if name.ends_with(".toml") || name.contains('/') {
            PathBuf::from(name)
        } else {
            args.profiles_dir.join(format!("{name}.toml"))
        };
        let profile = RealProfile::load(Path::new(&path))?;
        let echo: Box<dyn std::io::Write + Send> = if args.quiet {
            Box::new(std::io::sink())
        } else {
            Box::new(std::io::stderr())
        };
        let r = realguest::run(&profile, &opts, echo)?;
        print!("{}", r.ktap());
        println!(
            "# {}: {} in {:.0} s (nested fixes {})",
            r.profile,
            r.end,
            r.wall_s,
            if r.nested_fixes { "on" } else { "off" }
        );
        all_ok &= r.passed();
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
