//! Benchmark of the full live probe (CPUID, /proc, /sys, MSRs, kernel log, KVM micro-guest,
//! verdict): `cargo bench -p probe`. Prints the median and spread of wall times, and the
//! same with the KVM check off, so the KVM share is visible.
use std::time::Instant;

fn run(n: usize, kvm_check: bool) -> Vec<f64> {
    let opts = probe::ProbeOptions {
        kvm_check,
        ..Default::default()
    };
    let mut t = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        let r = probe::probe_live(&opts);
        t.push(t0.elapsed().as_secs_f64() * 1e3);
        std::hint::black_box(r);
    }
    t.sort_by(f64::total_cmp);
    t
}

fn main() {
    // Warm-up (page cache, lazy kernel module state).
    let _ = run(2, true);
    let n = std::env::var("PROBE_BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(21);
    for (label, kvm) in [
        ("probe_live_full_ms", true),
        ("probe_live_no_kvm_ms", false),
    ] {
        let t = run(n, kvm);
        println!(
            "{label} median {:.2} ms  min {:.2}  max {:.2}  (n={n})",
            t[t.len() / 2],
            t[0],
            t[t.len() - 1]
        );
    }
    let r = probe::probe_live(&probe::ProbeOptions::default());
    println!(
        "kvm mode {} exit_us {:?} ring0_slowdown {:?} vm_create_us {:?}",
        r.kvm.mode.as_str(),
        r.kvm.exit_us,
        r.kvm.ring0_slowdown,
        r.kvm.vm_create_us
    );
}
