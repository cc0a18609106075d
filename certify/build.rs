//! Builds the no_std guest kernel (certify/guest, its own cargo workspace) as part of the
//! normal build and hands its path to the crate as HVCERT_GUEST_ELF.
//!
//! The inner cargo runs with certify/guest as its working directory (so it reads
//! certify/guest/.cargo/config.toml) and with the variables the outer cargo set for this
//! build script removed: RUSTFLAGS/CARGO_ENCODED_RUSTFLAGS would override the guest's
//! flags, CARGO_TARGET_DIR would redirect its output, clippy's wrapper would lint it with
//! the outer arguments, and the CARGO_CFG_*/CARGO_FEATURE_*/CARGO_PKG_* family describes
//! this crate, not the guest.
use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let guest = manifest_dir.join("guest");
    for p in [
        "src",
        "Cargo.toml",
        "Cargo.lock",
        "build.rs",
        "linker.ld",
        ".cargo/config.toml",
    ] {
        println!("cargo:rerun-if-changed={}", guest.join(p).display());
    }
    let target_dir = out_dir.join("guest-target");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&guest)
        .arg("build")
        .arg("--release")
        .arg("--manifest-path")
        .arg(guest.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    if env::var_os("CARGO_NET_OFFLINE").is_some() {
        cmd.arg("--offline");
    }
    for (k, _) in env::vars_os() {
        let Some(k) = k.to_str() else { continue };
        let leaks = k.starts_with("CARGO_")
            && !matches!(k, "CARGO_HOME" | "CARGO_MAKEFLAGS" | "CARGO_NET_OFFLINE")
            || matches!(
                k,
                "RUSTFLAGS"
                    | "RUSTDOCFLAGS"
                    | "RUSTC_WRAPPER"
                    | "RUSTC_WORKSPACE_WRAPPER"
                    | "CLIPPY_ARGS"
                    | "CLIPPY_CONF_DIR"
                    | "TARGET"
                    | "HOST"
                    | "OUT_DIR"
                    | "OPT_LEVEL"
                    | "PROFILE"
                    | "DEBUG"
                    | "NUM_JOBS"
                    | "RUSTC_LINKER"
                    | "__CARGO_FIX_PLZ"
            );
        if leaks {
            cmd.env_remove(k);
        }
    }
    // The inner cargo's stdout must not be read as build-script directives.
    cmd.stdout(std::process::Stdio::from(std::io::stderr()));
    let status = cmd.status().expect("run cargo to build the guest kernel");
    if !status.success() {
        panic!("building the guest kernel (certify/guest) failed: {status}");
    }
    let elf = target_dir.join("release").join("hvcert-guest");
    assert!(elf.is_file(), "guest build produced no {}", elf.display());
    println!("cargo:rustc-env=HVCERT_GUEST_ELF={}", elf.display());
}
