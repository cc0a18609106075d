//! The seccomp allow-lists, tried for real: a child process (this test binary, re-run on
//! `seccomp_child`) boots the virtio-blk guest with the filters on while the
//! `seccomp-test-hook` feature makes one thread kind call socket(2) right after installing
//! its filter; the VMM must die with the SIGSYS message naming the thread kind and the call,
//! and the distinct exit status. Without the hook, the same child runs the guest to its end.
mod common;
mod guests;
mod virtio_guests;
mod virtio_util;

use common::kvm_or_skip;
use hypervisor::seccomp::{self, ThreadKind, EXIT_FORBIDDEN};
use hypervisor::{DiskConfig, Vm, VmConfig, VmEnd};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use virtio_guests::guest;
use virtio_util::TempFile;

/// Child side: boots the blk guest (kernel and image from the environment), with the VMM
/// thread sandboxed too, console on stdout. Does nothing in a normal test run.
#[test]
fn seccomp_child() {
    let Some(kernel) = std::env::var_os("HVCERT_SECCOMP_KERNEL") else {
        return;
    };
    let img = std::env::var_os("HVCERT_SECCOMP_IMAGE").expect("image");
    let cfg = VmConfig::builder(PathBuf::from(kernel))
        .memory_mib(64)
        .timeout(Duration::from_secs(120))
        .disk(DiskConfig {
            path: img.into(),
            read_only: false,
        })
        .build();
    let vm = Vm::new(cfg).expect("VM");
    seccomp::install(ThreadKind::Vmm).expect("VMM filter");
    let out = vm.run(Box::new(std::io::stdout())).expect("run");
    println!("END {:?}", out.end);
}

/// The guests: `blk` drives a virtio-blk disk (a device worker), `hello` prints on COM1
/// (the console writer).
fn kernel(name: &str) -> PathBuf {
    match name {
        "blk" => guest("blk"),
        _ => guests::guest(name),
    }
}

/// Runs the child on guest `name` with `HVCERT_SECCOMP_TEST_FORBIDDEN=forbid` (if any):
/// (status, stdout, stderr).
fn child(name: &str, forbid: Option<&str>) -> (Option<i32>, String, String) {
    let kernel = kernel(name);
    let img = TempFile::new("seccomp", &vec![0u8; 4 << 20]);
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "seccomp_child",
        "--exact",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("HVCERT_SECCOMP_KERNEL", &kernel)
    .env("HVCERT_SECCOMP_IMAGE", &img.0)
    .env_remove("HVCERT_SECCOMP_TEST_FORBIDDEN");
    if let Some(kind) = forbid {
        cmd.env("HVCERT_SECCOMP_TEST_FORBIDDEN", kind);
    }
    let out = cmd.output().expect("run the child");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn forbidden_call_is_refused(kind: ThreadKind) {
    let name = if kind == ThreadKind::Console {
        "hello"
    } else {
        "blk"
    };
    let (code, stdout, stderr) = child(name, Some(kind.name()));
    let want = format!(
        "hvcert: seccomp: thread {} made forbidden syscall socket ({})",
        kind.name(),
        libc::SYS_socket
    );
    assert!(
        stderr.contains(&want),
        "stderr lacks {want:?}\nstdout: {stdout}\nstderr: {stderr}"
    );
    assert_eq!(
        code,
        Some(EXIT_FORBIDDEN),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(!stdout.contains("END "), "the run went on: {stdout}");
}

#[test]
fn guest_runs_to_its_end_under_every_filter() {
    if !kvm_or_skip("guest_runs_to_its_end_under_every_filter") {
        return;
    }
    for name in ["blk", "hello"] {
        let (code, stdout, stderr) = child(name, None);
        assert_eq!(code, Some(0), "{name}: stdout: {stdout}\nstderr: {stderr}");
        assert!(
            stdout.contains(&format!("END {:?}", VmEnd::Status(0x2a))),
            "{name}: stdout: {stdout}\nstderr: {stderr}"
        );
        assert!(!stderr.contains("seccomp"), "{name}: stderr: {stderr}");
        if name == "hello" {
            assert!(stdout.contains("hello from the PVH guest"), "{stdout}");
        }
    }
}

#[test]
fn forbidden_call_from_vcpu_thread() {
    if kvm_or_skip("forbidden_call_from_vcpu_thread") {
        forbidden_call_is_refused(ThreadKind::Vcpu);
    }
}

#[test]
fn forbidden_call_from_device_worker() {
    if kvm_or_skip("forbidden_call_from_device_worker") {
        forbidden_call_is_refused(ThreadKind::Worker);
    }
}

#[test]
fn forbidden_call_from_console_writer() {
    if kvm_or_skip("forbidden_call_from_console_writer") {
        forbidden_call_is_refused(ThreadKind::Console);
    }
}

#[test]
fn forbidden_call_from_vmm_thread() {
    if kvm_or_skip("forbidden_call_from_vmm_thread") {
        forbidden_call_is_refused(ThreadKind::Vmm);
    }
}
