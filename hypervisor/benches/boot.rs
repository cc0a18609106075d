//! Figures for the hypervisor (run `cargo bench -p hypervisor --bench boot`):
//! - VM start -> guest end for minimal PVH guests through the API (`Vm::new` + `run`),
//! - port-I/O exit, hypercall round trip (Hyper-V page, Xen stub) through our exit loop,
//! - process spawn -> exit for `hvcert run` and QEMU microvm booting the same minimal guest.
//!
//! Compare with kvm-floor, a C program outside this repository (`../shared/tools/kvm-floor.c`,
//! relative to the repository root): `cc -O2 -o /tmp/kvm-floor ../shared/tools/kvm-floor.c &&
//! /tmp/kvm-floor`, run in the same session (`-- compare` does that itself).
#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/guests/mod.rs"]
mod guests;

use hypervisor::{Interface, Vm, VmConfig, VmEnd};
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn cfg(kernel: std::path::PathBuf, cmdline: &str, mib: u32, iface: Interface) -> VmConfig {
    VmConfig {
        kernel,
        cmdline: cmdline.into(),
        memory_mib: mib,
        interface: iface,
        timeout: Duration::from_secs(30),
        // HVCERT_BENCH_NO_SECCOMP=1 measures without the seccomp filters (issue 16's cost).
        seccomp: std::env::var_os("HVCERT_BENCH_NO_SECCOMP").is_none(),
        ..Default::default()
    }
}

/// Wall time of Vm::new + run, seconds (and of Vm::new alone). The previous VM's kernel
/// teardown (background, see `Vm::run`) is waited for first so it does not overlap.
fn boot_timed(c: VmConfig) -> (f64, f64, VmEnd) {
    hypervisor::wait_for_teardowns(Duration::from_secs(5));
    let t = Instant::now();
    let vm = Vm::new(c).expect("Vm::new");
    let t_new = t.elapsed().as_secs_f64();
    let r = vm.run(Box::new(std::io::sink())).expect("run");
    (t.elapsed().as_secs_f64(), t_new, r.end)
}

fn boot_once(c: VmConfig) -> (f64, VmEnd) {
    let (t, _, e) = boot_timed(c);
    (t, e)
}

/// Median (start -> end, Vm::new part) in microseconds.
fn start_to_end(kernel: &std::path::Path, mib: u32, runs: usize) -> (f64, f64) {
    let mut v = Vec::new();
    let mut n = Vec::new();
    for _ in 0..runs {
        let (t, t_new, _) = boot_timed(cfg(kernel.to_path_buf(), "", mib, Interface::HyperV));
        v.push(t);
        n.push(t_new);
    }
    (median(v) * 1e6, median(n) * 1e6)
}

fn per_op_us(mode: &str, iface: Interface) -> f64 {
    let k = guests::guest("loop");
    let mut v = Vec::new();
    for _ in 0..5 {
        let (base, e0) = boot_once(cfg(k.clone(), "n", 16, iface));
        let (t, e1) = boot_once(cfg(k.clone(), mode, 16, iface));
        assert_eq!(
            (e0, e1),
            (VmEnd::Status(0), VmEnd::Status(0)),
            "mode {mode}"
        );
        v.push((t - base) / 20000.0 * 1e6);
    }
    median(v)
}

/// A console writer whose bytes can be read after the run.
#[derive(Clone, Default)]
struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The loop guest's interleaved mode ('i'): blocks of kvm-floor's exit loop, Hyper-V
/// hypercalls and Xen hypercalls, alternating inside one VM and timed by the guest, so slow
/// drifts of this shared host hit all three alike. Returns per-operation microseconds for
/// each block kind, in block order.
fn interleaved() -> BTreeMap<char, Vec<f64>> {
    const M: f64 = 2000.0;
    let out = Capture::default();
    let vm = Vm::new(cfg(guests::guest("loop"), "i", 16, Interface::Both)).expect("Vm::new");
    let r = vm.run(Box::new(out.clone())).expect("run");
    assert_eq!(r.end, VmEnd::Status(0), "interleaved mode");
    let text = String::from_utf8_lossy(&out.0.lock().unwrap()).to_string();
    let mut m: BTreeMap<char, Vec<f64>> = BTreeMap::new();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let (Some(tag), Some(hex)) = (it.next(), it.next()) else {
            continue;
        };
        let (Some(c), Ok(ticks)) = (tag.chars().next(), u64::from_str_radix(hex, 16)) else {
            continue;
        };
        // TIME_REF_COUNT counts 100 ns.
        m.entry(c).or_default().push(ticks as f64 * 0.1 / M);
    }
    m
}

fn qemu_us(kernel: &std::path::Path, runs: usize) -> Option<f64> {
    let mut v = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let st = Command::new("qemu-system-x86_64")
            .args([
                "-M",
                "microvm",
                "-accel",
                "kvm",
                "-m",
                "16",
                "-nodefaults",
                "-no-user-config",
            ])
            .args([
                "-display",
                "none",
                "-device",
                "isa-debug-exit,iobase=0xf4,iosize=4",
            ])
            .arg("-kernel")
            .arg(kernel)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok()?;
        // isa-debug-exit: exit code (value << 1) | 1.
        if st.code() != Some(1) {
            eprintln!("qemu exited with {st:?}");
            return None;
        }
        v.push(t.elapsed().as_secs_f64());
    }
    Some(median(v) * 1e6)
}

fn hvcert_process_us(kernel: &std::path::Path, runs: usize) -> Option<f64> {
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?.parent()?.join("hvcert");
    if !bin.exists() {
        return None;
    }
    let mut v = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let st = Command::new(&bin)
            .args(["run", "--memory", "16", "--kernel"])
            .arg(kernel)
            .stdout(Stdio::null())
            .status()
            .ok()?;
        if st.code() != Some(0) {
            return None;
        }
        v.push(t.elapsed().as_secs_f64());
    }
    Some(median(v) * 1e6)
}

fn start_figures(status: &std::path::Path, hlt: &std::path::Path, runs: usize) {
    let (t, n) = start_to_end(status, 16, runs);
    println!(
        "vm_start_to_status_us {t:.1} us (Vm::new {n:.1} us; 16 MiB; guest: out 0xf4 at its entry)"
    );
    let (t, n) = start_to_end(hlt, 16, runs);
    println!("vm_start_to_hlt_us {t:.1} us (Vm::new {n:.1} us; 16 MiB; guest: cli; hlt, found by the watchdog)");
    let (t, n) = start_to_end(status, 128, runs.div_ceil(2));
    println!("vm_start_to_status_128m_us {t:.1} us (Vm::new {n:.1} us)");
}

/// Builds a C reference program with `cc -O2` into cargo's tmpdir; None if `cc` or the
/// source is missing or the build fails.
fn build_c(src: &std::path::Path, name: &str) -> Option<std::path::PathBuf> {
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    if !src.exists() {
        return None;
    }
    let ok = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&out)
        .arg(src)
        .stdout(Stdio::null())
        .status()
        .ok()?
        .success();
    ok.then_some(out)
}

/// Runs a reference program and returns its "name value unit" lines as a map.
fn run_c(bin: &std::path::Path, args: &[&str]) -> BTreeMap<String, f64> {
    let out = Command::new(bin)
        .args(args)
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    out.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.to_string(), it.next()?.parse().ok()?))
        })
        .collect()
}

/// `-- compare [ROUNDS]`: hvcert's start and hypercall figures alternating, round by round,
/// with kvm-floor (`../shared/tools/kvm-floor.c` relative to the repository root) and `tools/kvm-floor-shaped.c`, both
/// built here with cc; prints the median of each round's ratio (the host's noise moves all
/// figures of a round together, so ratios within a round are the stable figures).
fn compare(rounds: usize) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf();
    let floor = build_c(&root.join("../shared/tools/kvm-floor.c"), "kvm-floor");
    let shaped = build_c(&root.join("tools/kvm-floor-shaped.c"), "kvm-floor-shaped");
    if floor.is_none() {
        println!(
            "kvm-floor: ../shared/tools/kvm-floor.c missing or cc failed; its ratios are left out"
        );
    }
    let status = guests::guest("min_status");
    let _ = start_to_end(&status, 16, 3);
    let mut r: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for _ in 0..rounds {
        let f = floor.as_deref().map(|b| run_c(b, &[])).unwrap_or_default();
        let sh = shaped
            .as_deref()
            .map(|b| run_c(b, &["11"]))
            .unwrap_or_default();
        // kvm-floor's VMs are destroyed when it exits; let that kernel work finish first.
        std::thread::sleep(Duration::from_millis(300));
        let (start, _) = start_to_end(&status, 16, 11);
        let m = interleaved();
        let hv = median(m.get(&'h').cloned().unwrap_or_default());
        let lp = median(m.get(&'f').cloned().unwrap_or_default());
        r.entry("vm_start_us").or_default().push(start);
        r.entry("hypercall_hyperv_us").or_default().push(hv);
        r.entry("hypercall_over_loop_in_vm")
            .or_default()
            .push(hv / lp);
        if let (Some(c), Some(p)) = (f.get("vm_create_us"), f.get("pio_exit_us")) {
            r.entry("vm_start_over_kvm_floor_vm_create")
                .or_default()
                .push(start / c);
            r.entry("hypercall_over_kvm_floor_pio_exit")
                .or_default()
                .push(hv / p);
        }
        if let Some(t) = sh.get("total_us") {
            r.entry("vm_start_over_shaped_floor")
                .or_default()
                .push(start / t);
        }
    }
    for (k, v) in r {
        let lo = v.iter().cloned().fold(f64::INFINITY, f64::min);
        let hi = v.iter().cloned().fold(0.0, f64::max);
        println!(
            "{k} {:.3} (median of {} rounds; {lo:.3}-{hi:.3})",
            median(v.clone()),
            v.len()
        );
    }
}

/// The loop guest's 'j' mode: the flush and IPI hypercalls interleaved with the floor loop
/// and the spin-wait call in one VM (figures per operation, medians over the rounds).
fn calls_interleaved() {
    const M: f64 = 500.0;
    let out = Capture::default();
    let vm = Vm::new(cfg(guests::guest("loop"), "j", 16, Interface::HyperV)).expect("Vm::new");
    let r = vm.run(Box::new(out.clone())).expect("run");
    assert_eq!(r.end, VmEnd::Status(0), "calls mode");
    let text = String::from_utf8_lossy(&out.0.lock().unwrap()).to_string();
    let mut m: BTreeMap<char, Vec<f64>> = BTreeMap::new();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let (Some(tag), Some(hex)) = (it.next(), it.next()) else {
            continue;
        };
        let (Some(c), Ok(ticks)) = (tag.chars().next(), u64::from_str_radix(hex, 16)) else {
            continue;
        };
        m.entry(c).or_default().push(ticks as f64 * 0.1 / M);
    }
    let f = m.get(&'f').cloned().unwrap_or_default();
    for (c, what) in [
        ('h', "fast HvCallNotifyLongSpinWait"),
        (
            'F',
            "HvCallFlushVirtualAddressSpace of this vCPU (memory input, real flush)",
        ),
        (
            'I',
            "fast HvCallSendSyntheticClusterIpi to this vCPU (KVM_SIGNAL_MSI)",
        ),
        (
            'X',
            "fast HvCallSendSyntheticClusterIpiEx, set in XMM0 (+ KVM_GET_FPU)",
        ),
    ] {
        let v = m.get(&c).cloned().unwrap_or_default();
        let ratios: Vec<f64> = v.iter().zip(&f).map(|(a, b)| a / b).collect();
        if ratios.is_empty() {
            println!("calls_{c} n/a");
            continue;
        }
        println!(
            "calls_{c}_over_floor_loop {:.2} x ({what}: {:.2} us, floor loop {:.2} us; median of {} rounds)",
            median(ratios.clone()),
            median(v),
            median(f.clone()),
            ratios.len()
        );
    }
    println!(
        "calls counts: {:?}",
        r.hypercalls
            .iter()
            .filter(|(k, _)| k.starts_with("vp-"))
            .collect::<Vec<_>>()
    );
}

fn main() {
    if !common::kvm_or_skip("boot bench") {
        return;
    }
    if std::env::var_os("HVCERT_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_env("HVCERT_LOG"))
            .with_writer(std::io::stderr)
            .init();
    }
    // `cargo bench -p hypervisor --bench boot -- start [RUNS]`: only the start-up figures;
    // `-- ops`: only the per-exit and per-hypercall figures; `-- interleaved`: only those
    // measured inside one VM; `-- compare [ROUNDS]`: ratios against the C references.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "compare") {
        let rounds = args.iter().find_map(|a| a.parse().ok()).unwrap_or(7);
        compare(rounds);
        return;
    }
    let start_only = args.iter().any(|a| a == "start");
    let ops_only = args.iter().any(|a| a == "ops" || a == "interleaved");
    let runs: usize = args
        .iter()
        .find_map(|a| a.parse().ok())
        .unwrap_or(21)
        .max(1);
    let hlt = guests::guest("min_hlt");
    let status = guests::guest("min_status");
    // Warm up (page cache, first-VM costs).
    let _ = start_to_end(&status, 16, 3);
    if !ops_only {
        start_figures(&status, &hlt, runs);
    }
    if start_only {
        return;
    }
    let ops = [
        (
            "pio_exit_vmm_us",
            "p",
            "guest OUT to an unclaimed port, our exit loop",
        ),
        (
            "pio_exit_page_code_us",
            "q",
            "the hypercall page's instructions, OUT to an unclaimed port",
        ),
        (
            "hypercall_hyperv_us",
            "h",
            "fast HvCallNotifyLongSpinWait through the hypercall page",
        ),
        (
            "hypercall_xen_us",
            "x",
            "Xen sched_op(SCHEDOP_yield) through its stub",
        ),
    ];
    // `-- interleaved`: only the interleaved figures below.
    let interleaved_only = args.iter().any(|a| a == "interleaved");
    for (name, mode, what) in ops {
        if interleaved_only {
            break;
        }
        println!("{name} {:.2} us ({what})", per_op_us(mode, Interface::Both));
    }
    // The same exits, interleaved in one VM (see `interleaved`): the ratios are the figures
    // to hold against the goal, the absolute values move with the host's load.
    let m = interleaved();
    let f = m.get(&'f').cloned().unwrap_or_default();
    for (c, name) in [('h', "hyperv"), ('x', "xen")] {
        let v = m.get(&c).cloned().unwrap_or_default();
        let ratios: Vec<f64> = v.iter().zip(&f).map(|(a, b)| a / b).collect();
        if ratios.is_empty() {
            println!("interleaved_{name} n/a");
            continue;
        }
        println!(
            "interleaved_{name}_over_floor_loop {:.3} x (median of {} rounds; hypercall {:.2} us, kvm-floor's loop in this VMM {:.2} us)",
            median(ratios.clone()),
            ratios.len(),
            median(v),
            median(f.clone())
        );
    }
    calls_interleaved();
    if ops_only {
        return;
    }
    match hvcert_process_us(&status, 11) {
        Some(t) => println!("hvcert_run_process_us {t:.0} us   (spawn `hvcert run` -> exit)"),
        None => println!("hvcert_run_process_us n/a (build the hvcert binary first)"),
    }
    match qemu_us(&status, 11) {
        Some(t) => println!("qemu_microvm_process_us {t:.0} us   (spawn qemu-system-x86_64 -M microvm -> exit, same guest)"),
        None => println!("qemu_microvm_process_us n/a (qemu-system-x86_64 missing or failed)"),
    }
}
