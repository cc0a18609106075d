//! Builds the virtio test guests (`NAME.S` here, on the hypervisor's tests/guests/boot.inc
//! and link.ld) into PVH ELF files with GNU as/ld. Shared by the hypervisor's tests and the
//! workspace's e2e tests (include with `#[path]`).
#![allow(dead_code)]
use std::path::PathBuf;
use std::process::Command;

fn run_tool(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Assemble and link `NAME.S`; returns the ELF's path (unique per process and thread).
pub fn guest(name: &str) -> PathBuf {
    // Every crate using this helper sits one level below the workspace root.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crate dir has a parent")
        .to_path_buf();
    let mine = root.join("hypervisor/tests/virtio_guests");
    let theirs = root.join("hypervisor/tests/guests");
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("hvcert-virtio-guests");
    std::fs::create_dir_all(&out).expect("guest output dir");
    let tag =
        format!("{}-{:?}", std::process::id(), std::thread::current().id()).replace(['(', ')'], "");
    let obj = out.join(format!("{name}.{tag}.o"));
    let elf = out.join(format!("{name}.{tag}.elf"));
    run_tool(
        Command::new("as")
            .args(["--64", "-I"])
            .arg(&mine)
            .arg("-I")
            .arg(&theirs)
            .arg("-o")
            .arg(&obj)
            .arg(mine.join(format!("{name}.S"))),
    );
    run_tool(
        Command::new("ld")
            .args(["-nostdlib", "-static", "--no-warn-rwx-segments", "-T"])
            .arg(theirs.join("link.ld"))
            .arg("-o")
            .arg(&elf)
            .arg(&obj),
    );
    let _ = std::fs::remove_file(&obj);
    elf
}
