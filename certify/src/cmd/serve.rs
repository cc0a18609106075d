//! `hvcert serve`: the management console (web pages and JSON API) over a SQLite store in
//! `--data`; `--import` adds report files or whole report folders first. VMs run as
//! `hvcert run` child processes of this same binary; certify runs run in a worker thread
//! through [`super::serve_backend`]. Binds 127.0.0.1 unless `--token` is given.
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
    /// Report files or folders to import before serving: run reports, probe documents,
    /// fleet reports, packages (.tar, .tar.gz), or a folder holding any of them (each
    /// folder is one transaction); with --import-only, exit after importing.
    #[arg(long, value_name = "PATH", num_args = 1..)]
    pub import: Vec<PathBuf>,
    /// Import and exit without serving.
    #[arg(long)]
    pub import_only: bool,
    /// Serve HTTPS: the certificate chain (PEM); with --tls-key. The token rule is
    /// unchanged (TLS + token off loopback).
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
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
    let backend = std::sync::Arc::new(super::serve_backend::CertifyBackend { guest: None });
    if !args.import.is_empty() {
        let store = console::store::Store::open(&args.data)?;
        for path in &args.import {
            let done = console::imports::import_path(
                &store,
                Some(&*backend),
                &args.data.join("tmp"),
                path,
            )
            .map_err(|e| anyhow::anyhow!("importing {}: {}", path.display(), e.message))?;
            eprintln!(
                "hvcert serve: imported {}: runs {:?}, fleet reports {:?}, packages {:?}",
                path.display(),
                done.runs,
                done.fleets,
                done.packages
            );
            for s in &done.skipped {
                eprintln!("hvcert serve: skipped {s}");
            }
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
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(c), Some(k)) => Some(console::tls::server_config(c, k)?),
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let server = console::Server::start(console::Config {
        addr: args.listen,
        token: args.token,
        data_dir: args.data,
        runner: Some(runner),
        max_body: args.max_body,
        backend: Some(backend),
        tls,
    })?;
    // The port line is what scripts and tests wait for.
    println!("hvcert serve: listening on {scheme}://{}", server.addr());
    server.wait();
    Ok(ExitCode::SUCCESS)
}
