//! `hvcert serve`: the management console (web pages and JSON API) over a SQLite store in
//! `--data`; `--import` adds report files first. VMs run as `hvcert run` child processes
//! of this same binary. Binds 127.0.0.1 unless `--token` is given.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Folder of the console's database (created when absent).
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Address to listen on. Anything but a loopback address requires --token.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Bearer token required on every request (at least 16 characters).
    #[arg(long, env = "HVCERT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Report files (run or probe JSON) to import before serving; with --import-only, exit
    /// after importing.
    #[arg(long, value_name = "PATH", num_args = 1..)]
    pub import: Vec<PathBuf>,
    /// Import and exit without serving.
    #[arg(long)]
    pub import_only: bool,
    /// Most VMs running at once.
    #[arg(long, default_value_t = 32)]
    pub max_vms: usize,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = console::http::DEFAULT_MAX_BODY)]
    pub max_body: usize,
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    console::http::check_binding(&args.listen, args.token.as_deref())
        .map_err(anyhow::Error::msg)?;
    std::fs::create_dir_all(&args.data)?;
    if !args.import.is_empty() {
        let store = console::store::Store::open(&args.data)?;
        for path in &args.import {
            let report = certify::probe_report::load(path)?;
            let id = store.import(&report)?;
            eprintln!("hvcert serve: imported {} as run {id}", path.display());
        }
    }
    if args.import_only {
        return Ok(ExitCode::SUCCESS);
    }
    let guest = certify::guest::guest_path(None, &args.data)?;
    let runner = console::vms::Runner {
        program: std::env::current_exe()?,
        builtin_guest: Some(guest),
        max_running: args.max_vms,
    };
    let server = console::Server::start(console::Config {
        addr: args.listen,
        token: args.token,
        data_dir: args.data,
        runner: Some(runner),
        max_body: args.max_body,
    })?;
    // The port line is what scripts and tests wait for.
    println!("hvcert serve: listening on http://{}", server.addr());
    server.wait();
    Ok(ExitCode::SUCCESS)
}
