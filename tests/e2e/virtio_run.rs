//! `hvcert run --disk/--net` end to end: the virtio test guests run under the CLI, the
//! image is checked from the host afterwards, and device limits and bad options are refused
//! with clear messages.

#[path = "../common/mod.rs"]
mod common;
#[path = "../../hypervisor/tests/virtio_guests/mod.rs"]
mod virtio_guests;

use common::hvcert;

/// A zero-filled image file in its own temporary directory, removed on drop (also when a
/// test fails).
struct Image {
    path: std::path::PathBuf,
    /// Holds the directory (and so the image) until the test is done.
    _dir: tempfile::TempDir,
}

impl AsRef<std::path::Path> for Image {
    fn as_ref(&self) -> &std::path::Path {
        &self.path
    }
}

impl AsRef<std::ffi::OsStr> for Image {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.path.as_os_str()
    }
}

fn temp_image(tag: &str, len: usize) -> Image {
    // The blk guest checks that GET_ID (the image's file name) starts with "h".
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(format!("hvcert-{tag}.img"));
    std::fs::write(&p, vec![0u8; len]).unwrap();
    Image { path: p, _dir: dir }
}

/// Qword 1 of sector 8 of `img`: the blk and scsi guests write qword i = i * K from sector 8
/// on.
fn second_qword(img: &Image) -> u64 {
    let disk = std::fs::read(img).unwrap();
    u64::from_le_bytes(disk[8 * 512 + 8..8 * 512 + 16].try_into().unwrap())
}

#[test]
fn run_with_disk_writes_the_image() {
    if !common::kvm_available_or_skip("run_with_disk_writes_the_image") {
        return;
    }
    let img = temp_image("disk", 1 << 20);
    let out = hvcert()
        .args(["run", "--kernel"])
        .arg(virtio_guests::guest("blk"))
        .arg("--disk")
        .arg(&img)
        .output()
        .unwrap();
    common::assert_exit(&out, 0x2a);
    assert_eq!(second_qword(&img), 0x9e37_79b9_7f4a_7c15);
}

#[test]
fn run_with_read_only_disk_and_loopback_nic() {
    if !common::kvm_available_or_skip("run_with_read_only_disk_and_loopback_nic") {
        return;
    }
    let img = temp_image("ro", 1 << 20);
    let out = hvcert()
        .args(["run", "--kernel"])
        .arg(virtio_guests::guest("blk"))
        .arg("--disk")
        .arg(format!("{},ro", img.path.display()))
        .args(["--net", "loopback"])
        .output()
        .unwrap();
    common::assert_exit(&out, 0x2a);
    assert!(
        std::fs::read(&img).unwrap().iter().all(|&b| b == 0),
        "read-only image unchanged"
    );

    let out = hvcert()
        .args(["run", "--kernel"])
        .arg(virtio_guests::guest("net"))
        .args(["--net", "loopback", "--cmdline", "#104"])
        .output()
        .unwrap();
    common::assert_exit(&out, 0x2a);
}

#[test]
fn run_refuses_too_many_devices_and_bad_options() {
    if !common::kvm_available_or_skip("run_refuses_too_many_devices_and_bad_options") {
        return;
    }
    let img = temp_image("limit", 1 << 20);
    let kernel = virtio_guests::guest("blk");
    let out = hvcert()
        .args(["run", "--kernel"])
        .arg(&kernel)
        .arg("--disk")
        .arg(&img)
        .arg("--disk")
        .arg(&img)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        err.contains("at most 1") && err.contains("max_disks"),
        "{err}"
    );
    // Raising the limit lets both through (the guest uses the first).
    let out = hvcert()
        .args(["run", "--max-disks", "2", "--kernel"])
        .arg(&kernel)
        .arg("--disk")
        .arg(&img)
        .arg("--disk")
        .arg(&img)
        .output()
        .unwrap();
    common::assert_exit(&out, 0x2a);

    let out = hvcert()
        .args(["run", "--kernel"])
        .arg(&kernel)
        .args(["--net", "bridge0"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err.contains("loopback") && err.contains("tap:NAME"),
        "{err}"
    );
    let out = hvcert()
        .args(["run", "--kernel"])
        .arg(&kernel)
        .args(["--disk", "/nonexistent/hvcert.img"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/hvcert.img"), "{err}");
}

#[test]
fn run_with_scsi_controller() {
    if !common::kvm_available_or_skip("run_with_scsi_controller") {
        return;
    }
    let img = temp_image("scsi", 1 << 20);
    let out = hvcert()
        .args(["run", "--disk-bus", "scsi", "--kernel"])
        .arg(virtio_guests::guest("scsi"))
        .arg("--disk")
        .arg(&img)
        .output()
        .unwrap();
    common::assert_exit(&out, 0x2a);
    assert_eq!(second_qword(&img), 0x9e37_79b9_7f4a_7c15);
    let out = hvcert()
        .args(["run", "--disk-bus", "ide", "--kernel"])
        .arg(virtio_guests::guest("scsi"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`blk`, `scsi` or `vmbus`"));
}

#[test]
fn run_with_vmbus_devices() {
    if !common::kvm_available_or_skip("run_with_vmbus_devices") {
        return;
    }
    let img = temp_image("vmbus", 1 << 20);
    let guest = img.path.with_file_name("guest.elf");
    let out = hvcert()
        .arg("guest")
        .arg("--out")
        .arg(&guest)
        .output()
        .unwrap();
    assert!(out.status.success());
    // The disk and NIC leave virtio-mmio for the VMBus: the built-in guest's default cases
    // (no virtio device to drive) pass, and the VMBus worker ends with the VM.
    let out = hvcert()
        .args([
            "run",
            "--disk-bus",
            "vmbus",
            "--nic",
            "vmbus",
            "--net",
            "loopback",
        ])
        .arg("--kernel")
        .arg(&guest)
        .arg("--disk")
        .arg(&img)
        .output()
        .unwrap();
    common::assert_exit(&out, 0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cases=boot,hv_cpuid,hv_hypercall_page\""),
        "no virtio storage or NIC case chosen: {err}"
    );
    // The VMBus needs the SynIC of the Hyper-V interface (each flag on its own).
    for flags in [
        ["--disk-bus", "vmbus", "--disk"],
        ["--nic", "vmbus", "--net"],
    ] {
        let mut cmd = hvcert();
        cmd.args(["run", "--interface", "xen", "--kernel"])
            .arg(&guest)
            .args(&flags[..2])
            .arg(flags[2]);
        if flags[2] == "--disk" {
            cmd.arg(&img);
        } else {
            cmd.arg("loopback");
        }
        let out = cmd.output().unwrap();
        assert_ne!(out.status.code(), Some(0), "{flags:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("need the Hyper-V interface"),
            "{flags:?}: {err}"
        );
    }
}
