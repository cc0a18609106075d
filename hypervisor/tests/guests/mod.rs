//! Builds the tiny assembly test guests (tests/guests/*.S) into PVH ELF files with GNU as/ld.
//! Shared by the hypervisor's tests, its benches and the workspace's e2e tests (include with
//! `#[path]`). Output goes to CARGO_TARGET_TMPDIR; rebuilt when a source is newer.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::Command;

/// Directory of the guest sources (this file's directory).
pub fn source_dir() -> PathBuf {
    // Every crate using this helper sits one level below the workspace root.
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .expect("crate dir has a parent")
        .join("hypervisor/tests/guests")
}

fn out_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("hvcert-guests");
    std::fs::create_dir_all(&d).expect("create guest output dir");
    d
}

fn mtime(p: &Path) -> std::time::SystemTime {
    std::fs::metadata(p)
        .and_then(|m| m.modified())
        .unwrap_or(std::time::UNIX_EPOCH)
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Assembles and links `NAME.S` into a PVH ELF; returns its path.
pub fn guest(name: &str) -> PathBuf {
    let src_dir = source_dir();
    let src = src_dir.join(format!("{name}.S"));
    let out = out_dir().join(format!("{name}.elf"));
    // Rebuilt when the source, the linker script or any shared include is newer.
    let includes = std::fs::read_dir(&src_dir)
        .expect("read the guest source dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "inc"));
    let newest = [src.clone(), src_dir.join("link.ld")]
        .into_iter()
        .chain(includes)
        .map(|p| mtime(&p))
        .max()
        .unwrap();
    if out.exists() && mtime(&out) >= newest {
        return out;
    }
    let tag =
        format!("{}-{:?}", std::process::id(), std::thread::current().id()).replace(['(', ')'], "");
    let obj = out_dir().join(format!("{name}.{tag}.o"));
    let tmp = out_dir().join(format!("{name}.{tag}.elf"));
    run(Command::new("as")
        .arg("--64")
        .arg("-I")
        .arg(&src_dir)
        .arg("-o")
        .arg(&obj)
        .arg(&src));
    run(Command::new("ld")
        .args(["-nostdlib", "-static", "--no-warn-rwx-segments", "-T"])
        .arg(src_dir.join("link.ld"))
        .arg("-o")
        .arg(&tmp)
        .arg(&obj));
    let _ = std::fs::remove_file(&obj);
    std::fs::rename(&tmp, &out).expect("rename guest");
    out
}

/// Builds a flat binary of `NAME.S` linked at 1 MiB (for the synthetic bzImage payload).
pub fn flat(name: &str) -> Vec<u8> {
    let elf = guest(name);
    let bin = out_dir().join(format!("{name}.{}.bin", std::process::id()));
    run(Command::new("objcopy")
        .args([
            "-O",
            "binary",
            "--only-section=.text",
            "--only-section=.data",
        ])
        .arg(&elf)
        .arg(&bin));
    let data = std::fs::read(&bin).expect("read flat binary");
    let _ = std::fs::remove_file(&bin);
    data
}

/// A minimal bzImage (boot protocol 2.15, XLF_KERNEL_64) whose protected-mode part is
/// `payload` (loaded at 1 MiB; the 64-bit entry is at +0x200).
pub fn bzimage(payload: &[u8]) -> Vec<u8> {
    let setup_sects = 1u8;
    let mut img = vec![0u8; (usize::from(setup_sects) + 1) * 512];
    img[0x1f1] = setup_sects;
    img[0x1fe..0x200].copy_from_slice(&0xaa55u16.to_le_bytes());
    img[0x202..0x206].copy_from_slice(b"HdrS");
    img[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
    img[0x211] = 0x01; // loadflags: LOADED_HIGH
    img[0x214..0x218].copy_from_slice(&0x10_0000u32.to_le_bytes()); // code32_start
    img[0x22c..0x230].copy_from_slice(&0x37ff_ffffu32.to_le_bytes()); // initrd_addr_max
    img[0x236..0x238].copy_from_slice(&0x0001u16.to_le_bytes()); // xloadflags: KERNEL_64
    img[0x238..0x23c].copy_from_slice(&4095u32.to_le_bytes()); // cmdline_size
    img.extend_from_slice(payload);
    img
}
