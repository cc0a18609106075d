//! `hvcert`: hardware-compatibility probe, hypervisor runner, certification suite,
//! reports and the release gate.
use clap::{Parser, Subcommand};

mod cmd;

#[derive(Parser)]
#[command(
    name = "hvcert",
    version,
    about = "Hardware-compatibility and certification harness for the hvcert hypervisor"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Detect virtualization features of this server and score it against supported-server lists.
    Probe(cmd::probe::ProbeArgs),
    /// Boot a guest kernel on the hvcert hypervisor.
    Run(cmd::run::RunArgs),
    /// Write the built-in guest kernel (a PVH ELF) to a file, for `run --kernel`.
    Guest(cmd::guest::GuestArgs),
    /// Boot SUSE-like certification guests and validate device and hypercall behaviour.
    Certify(cmd::certify::CertifyArgs),
    /// Render a saved run as HTML, JUnit XML, Markdown or JSON.
    Report(cmd::report::ReportArgs),
    /// Compare a run with a baseline; exit 1 on a regression.
    Gate(cmd::gate::GateArgs),
    /// Score every host snapshot under some folders, each on its own; one fleet report.
    Fleet(cmd::fleet::FleetArgs),
    /// Merge the reports of many hosts and runs into one certification package, or verify one.
    Package(cmd::package::PackageArgs),
    /// Serve the management console (web pages and JSON API) over a store of runs and VMs.
    Serve(cmd::serve::ServeArgs),
    /// Build the initramfs for stock kernels (modules + busybox + a KTAP /init) as a cpio.
    Initramfs(cmd::initramfs::InitramfsArgs),
    /// Boot a stock distribution kernel (real-guest tier, minutes) and grade its milestones.
    RealGuest(cmd::real_guest::RealGuestArgs),
}

/// Set by a parent (`hvcert serve` starting a certify run) that wants this process to end
/// with it: its process id.
const PARENT_PID_ENV: &str = "HVCERT_PARENT_PID";

/// With [`PARENT_PID_ENV`] set: ask the kernel for SIGKILL when the parent dies
/// (PR_SET_PDEATHSIG), so a killed `hvcert serve` leaves no certify run writing into a folder
/// the next server may resume; and fail at once if that parent is already gone (it died
/// before the request took effect).
fn die_with_parent() -> Result<(), String> {
    let Some(want) = std::env::var_os(PARENT_PID_ENV) else {
        return Ok(());
    };
    let want: i32 = want
        .to_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{PARENT_PID_ENV}={want:?} is not a process id"))?;
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .map_err(|e| format!("PR_SET_PDEATHSIG: {e}"))?;
    let parent = nix::unistd::getppid().as_raw();
    if parent != want {
        return Err(format!(
            "parent process {want} is gone (parent is now {parent}): not starting"
        ));
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("HVCERT_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if let Err(e) = die_with_parent() {
        eprintln!("hvcert: {e}");
        return std::process::ExitCode::from(2);
    }
    let result = match cli.command {
        Command::Probe(a) => cmd::probe::run(a),
        Command::Run(a) => cmd::run::run(a),
        Command::Guest(a) => cmd::guest::run(a),
        Command::Certify(a) => cmd::certify::run(a),
        Command::Report(a) => cmd::report::run(a),
        Command::Gate(a) => cmd::gate::run(a),
        Command::Fleet(a) => cmd::fleet::run(a),
        Command::Package(a) => cmd::package::run(a),
        Command::Serve(a) => cmd::serve::run(a),
        Command::Initramfs(a) => cmd::initramfs::run(a),
        Command::RealGuest(a) => cmd::real_guest::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hvcert: error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
