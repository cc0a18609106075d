//! End to end on KVM: assembly guests (tests/virtio_guests/*.S, PVH, built with GNU as/ld on
//! the hypervisor's boot.inc) drive the virtio-mmio devices through the real exit loop,
//! ioeventfds and irqfds; the host then checks the image file.

mod common;
mod virtio_guests;
mod virtio_util;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::kvm_or_skip;
use hypervisor::{DiskBus, DiskConfig, NetConfig, Vm, VmConfig, VmEnd};
use virtio_guests::guest;
use virtio_util::TempFile;

/// Console that keeps every byte with its arrival time.
#[derive(Clone, Default)]
struct Console(Arc<Mutex<Vec<(Instant, u8)>>>);

impl Write for Console {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let now = Instant::now();
        let mut v = self.0.lock().unwrap();
        v.extend(buf.iter().map(|&b| (now, b)));
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Console {
    fn text(&self) -> String {
        String::from_utf8_lossy(
            &self
                .0
                .lock()
                .unwrap()
                .iter()
                .map(|x| x.1)
                .collect::<Vec<_>>(),
        )
        .into_owned()
    }
    /// Arrival time of the first occurrence of marker byte `m` at a line start.
    fn marker(&self, m: u8) -> Option<Instant> {
        let v = self.0.lock().unwrap();
        (0..v.len())
            .find(|&i| v[i].1 == m && (i == 0 || v[i - 1].1 == b'\n'))
            .map(|i| v[i].0)
    }
}

fn pattern_64k() -> Vec<u8> {
    (0u64..8192)
        .flat_map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes())
        .collect()
}

fn boot(
    kernel: &Path,
    cmdline: &str,
    disks: Vec<DiskConfig>,
    nets: Vec<NetConfig>,
) -> (VmEnd, Console) {
    boot_on(kernel, cmdline, disks, DiskBus::Blk, nets)
}

fn boot_on(
    kernel: &Path,
    cmdline: &str,
    disks: Vec<DiskConfig>,
    disk_bus: DiskBus,
    nets: Vec<NetConfig>,
) -> (VmEnd, Console) {
    let cfg = VmConfig {
        disk_bus,
        kernel: kernel.to_path_buf(),
        cmdline: cmdline.into(),
        memory_mib: 64,
        timeout: Duration::from_secs(120),
        disks,
        nets,
        ..Default::default()
    };
    let console = Console::default();
    let vm = Vm::new(cfg).expect("VM");
    let out = vm.run(Box::new(console.clone())).expect("run");
    (out.end, console)
}

#[test]
fn blk_guest_write_flush_read_verify_and_malformed() {
    if !kvm_or_skip("blk_guest_write_flush_read_verify_and_malformed") {
        return;
    }
    let kernel = guest("blk");
    let original: Vec<u8> = (0..4u32 << 20).map(|i| (i % 249) as u8).collect();
    let img = TempFile::new("e2e-blk", &original);
    let (end, console) = boot(
        &kernel,
        "",
        vec![DiskConfig {
            path: img.0.clone(),
            read_only: false,
        }],
        vec![],
    );
    assert_eq!(end, VmEnd::Status(0x2a), "console: {}", console.text());
    // Every QueueNotify went through an ioeventfd, none through an MMIO exit (no test in
    // this binary writes QueueNotify for a queue index without an ioeventfd).
    assert_eq!(hypervisor::virtio::mmio::mmio_notify_count(), 0);
    // The image, read from the host after the VM ended: pattern at sectors 8..136, the rest
    // untouched.
    let disk = std::fs::read(&img.0).unwrap();
    assert_eq!(disk.len(), original.len());
    assert_eq!(&disk[8 * 512..8 * 512 + 65536], &pattern_64k()[..]);
    assert_eq!(&disk[..8 * 512], &original[..8 * 512]);
    assert_eq!(&disk[8 * 512 + 65536..], &original[8 * 512 + 65536..]);
}

#[test]
fn blk_guest_read_only_image() {
    if !kvm_or_skip("blk_guest_read_only_image") {
        return;
    }
    let kernel = guest("blk");
    let original: Vec<u8> = (0..1u32 << 20).map(|i| (i % 241) as u8).collect();
    let img = TempFile::new("e2e-ro", &original);
    let (end, console) = boot(
        &kernel,
        "",
        vec![DiskConfig {
            path: img.0.clone(),
            read_only: true,
        }],
        vec![],
    );
    assert_eq!(end, VmEnd::Status(0x2a), "console: {}", console.text());
    assert_eq!(
        std::fs::read(&img.0).unwrap(),
        original,
        "read-only image unchanged"
    );
}

#[test]
fn too_many_devices_refused() {
    if !kvm_or_skip("too_many_devices_refused") {
        return;
    }
    let img = TempFile::new("e2e-limit", &[0u8; 4096]);
    let d = DiskConfig {
        path: img.0.clone(),
        read_only: false,
    };
    let cfg = VmConfig {
        kernel: guest("blk"),
        disks: vec![d.clone(), d],
        ..Default::default()
    };
    let err = Vm::new(cfg).err().expect("refused").to_string();
    assert!(
        err.contains("at most 1") && err.contains("max_disks"),
        "{err}"
    );
}

/// Guest-side sequential 1 MiB throughput next to the host doing the same on the same file
/// (best of 3 runs each, interleaved, since the machine is shared). Ignored by default
/// (timing); run with `cargo test -p hypervisor --test virtio_e2e blk_guest_throughput --
/// --ignored --nocapture` (HVCERT_BENCH_MIB sets the size, default 64).
#[test]
#[ignore]
fn blk_guest_throughput() {
    use std::os::unix::fs::FileExt;
    let mib: u64 = std::env::var("HVCERT_BENCH_MIB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64);
    let kernel = guest("blk");
    // A fully written (allocated) image, so neither side pays for block allocation.
    let img = TempFile::new("e2e-bench", &vec![0u8; (mib << 20) as usize]);
    let (mut gw, mut gr, mut hw, mut hr) = (0f64, 0f64, 0f64, 0f64);
    for _ in 0..3 {
        let (end, console) = boot(
            &kernel,
            &format!("#{mib}"),
            vec![DiskConfig {
                path: img.0.clone(),
                read_only: false,
            }],
            vec![],
        );
        assert_eq!(end, VmEnd::Status(0x2a), "console: {}", console.text());
        let (w, r, e) = (
            console.marker(b'W').unwrap(),
            console.marker(b'R').unwrap(),
            console.marker(b'E').unwrap(),
        );
        gw = gw.max(mib as f64 / (r - w).as_secs_f64());
        gr = gr.max(mib as f64 / (e - r).as_secs_f64());
        // Host reference: the same 1 MiB pwrite/pread sequence on the same file.
        let f = std::fs::File::options()
            .read(true)
            .write(true)
            .open(&img.0)
            .unwrap();
        let mut buf = vec![0x5au8; 1 << 20];
        let t = Instant::now();
        for i in 0..mib {
            f.write_all_at(&buf, i << 20).unwrap();
        }
        hw = hw.max(mib as f64 / t.elapsed().as_secs_f64());
        let t = Instant::now();
        for i in 0..mib {
            f.read_exact_at(&mut buf, i << 20).unwrap();
        }
        hr = hr.max(mib as f64 / t.elapsed().as_secs_f64());
    }
    println!(
        "guest 1 MiB sequential (best of 3): write {gw:.0} MB/s ({:.0}% of host {hw:.0}), read {gr:.0} MB/s ({:.0}% of host {hr:.0})",
        100.0 * gw / hw,
        100.0 * gr / hr
    );
}

#[test]
fn net_guest_loopback_frames() {
    if !kvm_or_skip("net_guest_loopback_frames") {
        return;
    }
    let kernel = guest("net");
    let frames = 20000u32;
    let (end, console) = boot(
        &kernel,
        &format!("#{frames}"),
        vec![],
        vec![NetConfig::Loopback],
    );
    assert_eq!(end, VmEnd::Status(0x2a), "console: {}", console.text());
    let (f, e) = (console.marker(b'F').unwrap(), console.marker(b'E').unwrap());
    println!(
        "guest loopback (ring 3, 8 frames per notification): {frames} frames of 60 B: {:.0} frames/s",
        f64::from(frames) / (e - f).as_secs_f64()
    );
}

#[test]
fn blk_and_net_together() {
    if !kvm_or_skip("blk_and_net_together") {
        return;
    }
    // The disk is device 0 (0xd0000000, GSI 5), the NIC device 1: the blk guest finds its
    // disk, the NIC sits unused next to it.
    let img = TempFile::new("e2e-both", &vec![0u8; 1 << 20]);
    let (end, console) = boot(
        &guest("blk"),
        "",
        vec![DiskConfig {
            path: img.0.clone(),
            read_only: false,
        }],
        vec![NetConfig::Loopback],
    );
    assert_eq!(end, VmEnd::Status(0x2a), "console: {}", console.text());
}

/// Child side of the kill test: runs the kill guest on the image named by
/// HVCERT_KILL_IMAGE with the console on stdout. Does nothing in a normal test run.
#[test]
fn kill_test_child() {
    let Some(img) = std::env::var_os("HVCERT_KILL_IMAGE") else {
        return;
    };
    let kernel = PathBuf::from(std::env::var_os("HVCERT_KILL_KERNEL").expect("kernel"));
    let cfg = VmConfig {
        kernel,
        memory_mib: 64,
        timeout: Duration::from_secs(600),
        disks: vec![DiskConfig {
            path: img.into(),
            read_only: false,
        }],
        ..Default::default()
    };
    let out = Vm::new(cfg)
        .expect("VM")
        .run(Box::new(std::io::stdout()))
        .expect("run");
    println!("END {:?}", out.end);
}

/// The VMM (a child process running the kill guest) is SIGKILLed at random moments; every
/// sector the guest reported as written *and flushed* must be in the image afterwards.
#[test]
fn kill_test_flushed_sectors_survive() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    if !kvm_or_skip("kill_test_flushed_sectors_survive") {
        return;
    }
    let kernel = guest("kill");
    let trials: u32 = std::env::var("HVCERT_KILL_TRIALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let mut seed: u64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("kill test seed {seed:#x}");
    let (mut total_flushed, mut lost) = (0u64, 0u64);
    for trial in 0..trials {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_millis(30 + seed % 400);
        let img = TempFile::new(&format!("kill{trial}"), &vec![0u8; 16 << 20]);
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "kill_test_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("HVCERT_KILL_IMAGE", &img.0)
            .env("HVCERT_KILL_KERNEL", &kernel)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the VMM child");
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter(|l| l.len() == 16 && l.bytes().all(|b| b.is_ascii_hexdigit()))
                .filter_map(|l| u64::from_str_radix(&l, 16).ok())
                .collect::<Vec<u64>>()
        });
        std::thread::sleep(delay);
        // SIGKILL: no destructor, no flush of anything the VMM might still hold.
        child.kill().expect("SIGKILL");
        let _ = child.wait();
        let flushed = reader.join().unwrap();
        let disk = std::fs::read(&img.0).unwrap();
        let k = 0x9e37_79b9_7f4a_7c15u64;
        let mut trial_lost = 0;
        for &i in &flushed {
            let s = &disk[i as usize * 512..(i as usize + 1) * 512];
            let ok = (0..64u64).all(|j| {
                let q =
                    u64::from_le_bytes(s[j as usize * 8..j as usize * 8 + 8].try_into().unwrap());
                q == i.wrapping_mul(k).wrapping_add(j)
            });
            if !ok {
                trial_lost += 1;
            }
        }
        println!(
            "trial {trial}: killed after {} ms, {} sectors reported flushed, {trial_lost} lost",
            delay.as_millis(),
            flushed.len()
        );
        total_flushed += flushed.len() as u64;
        lost += trial_lost;
    }
    println!("kill test: {trials} trials, {total_flushed} flushed sectors checked, {lost} lost");
    assert_eq!(lost, 0);
    assert!(total_flushed > 0, "the guest never got to flush anything");
}

#[test]
fn scsi_guest_inquiry_write_sync_read_and_sense() {
    if !kvm_or_skip("scsi_guest_inquiry_write_sync_read_and_sense") {
        return;
    }
    let original: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
    let img = TempFile::new("e2e-scsi", &original);
    let (end, console) = boot_on(
        &guest("scsi"),
        "",
        vec![DiskConfig {
            path: img.0.clone(),
            read_only: false,
        }],
        DiskBus::Scsi,
        vec![],
    );
    assert_eq!(end, VmEnd::Status(0x2a), "console: {}", console.text());
    let disk = std::fs::read(&img.0).unwrap();
    assert_eq!(&disk[8 * 512..8 * 512 + 8192], &pattern_64k()[..8192]);
    assert_eq!(&disk[..8 * 512], &original[..8 * 512]);
    assert_eq!(&disk[8 * 512 + 8192..], &original[8 * 512 + 8192..]);
}
