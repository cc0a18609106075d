//! Builds the no_std guest kernel (certify/guest, its own cargo workspace) as part of the
//! normal build and hands its path to the crate as HVCERT_GUEST_ELF; embeds the shipped
//! profiles (fixtures/guests/*.toml, as OUT_DIR/builtin_profiles.rs); and records the git
//! revision of the source tree as HVCERT_GIT_REVISION, so the binary depends on neither
//! the tree nor `git` at run time.
//!
//! The inner cargo runs with certify/guest as its working directory (so it reads
//! certify/guest/.cargo/config.toml) and with the variables the outer cargo set for this
//! build script removed: RUSTFLAGS/CARGO_ENCODED_RUSTFLAGS would override the guest's
//! flags, CARGO_TARGET_DIR would redirect its output, clippy's wrapper would lint it with
//! the outer arguments, and the CARGO_CFG_*/CARGO_FEATURE_*/CARGO_PKG_* family describes
//! this crate, not the guest.
use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    embed_profiles(&manifest_dir.join("../fixtures/guests"), &out_dir);
    println!(
        "cargo:rustc-env=HVCERT_GIT_REVISION={}",
        git_revision(&manifest_dir)
    );
    build_guest(&manifest_dir, &out_dir);
}

/// Writes `&[(file name, include_str!(file)), ...]` for every `*.toml` in `dir`, sorted.
fn embed_profiles(dir: &Path, out_dir: &Path) {
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut code = String::from("&[\n");
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let name = f
            .file_name()
            .and_then(|n| n.to_str())
            .expect("UTF-8 file name");
        let abs = f.canonicalize().expect("profile path");
        let abs = abs.to_str().expect("UTF-8 path");
        code.push_str(&format!("    ({name:?}, include_str!({abs:?})),\n"));
    }
    code.push(']');
    std::fs::write(out_dir.join("builtin_profiles.rs"), code).expect("write builtin_profiles.rs");
}

/// `git rev-parse HEAD` of the source tree, with `-dirty` when tracked files differed from
/// it when this script last ran (an edit that is not staged does not rerun it); the
/// HVCERT_GIT_REVISION environment variable wins; "unknown" outside a git checkout.
/// Reruns when HEAD, the branch it points to (or packed-refs) or the index change.
fn git_revision(manifest_dir: &Path) -> String {
    println!("cargo:rerun-if-env-changed=HVCERT_GIT_REVISION");
    if let Some(rev) = env::var_os("HVCERT_GIT_REVISION") {
        return rev.to_string_lossy().into_owned();
    }
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(manifest_dir)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let Some(rev) = git(&["rev-parse", "HEAD"]) else {
        return "unknown".into();
    };
    // A packed branch has no file of its own: packed-refs holds it. Only existing files
    // are watched (cargo reruns a script every time for a missing one).
    let mut watch = vec!["HEAD".into(), "index".into(), "packed-refs".into()];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watch.push(branch);
    }
    for name in watch {
        let path = git(&["rev-parse", "--path-format=absolute", "--git-path", &name]);
        if let Some(path) = path.filter(|p| Path::new(p).exists()) {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    // --no-optional-locks: `status` must not rewrite the index it watches (that would make
    // the next build rerun this script).
    let dirty = git(&[
        "--no-optional-locks",
        "status",
        "--porcelain",
        "--untracked-files=no",
    ])
    .is_some_and(|s| !s.is_empty());
    if dirty {
        format!("{rev}-dirty")
    } else {
        rev
    }
}

/// Builds certify/guest and sets HVCERT_GUEST_ELF to the kernel's path.
fn build_guest(manifest_dir: &Path, out_dir: &Path) {
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
