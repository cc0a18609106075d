//! Host-side throughput of the virtio devices, next to the same work done directly:
//! - virtio-blk sequential 1 MiB writes and reads (request = header + 16 x 64 KiB data
//!   descriptors + status) through the handler, and through the transport + worker thread
//!   (QueueNotify eventfd, one request in flight), vs. `pwrite`/`pread` of the same 1 MiB
//!   blocks on the same file.
//! - virtio-net loopback frames per second (1514-byte frames), TX ring -> RX ring.
//!
//! Run: `cargo bench -p hypervisor --bench virtio` (HVCERT_BENCH_MIB sets the image size;
//! HVCERT_BENCH_SECCOMP=1 runs the transport+worker figure under the seccomp filters).

#[path = "../tests/virtio_util/mod.rs"]
mod virtio_util;

#[path = "shared/virtio_figures.rs"]
mod virtio_figures;

use std::time::Duration;

use hypervisor::virtio::mmio::MmioTransport;
use hypervisor::virtio::{Block, DiskConfig};
use std::time::Instant;
use virtio_bindings::bindings::virtio_config::VIRTIO_F_VERSION_1;
use virtio_figures::*;
use virtio_util::*;
use vm_memory::{GuestAddress, GuestMemoryMmap};

fn bench_blk_worker(
    mem: &GuestMemoryMmap<()>,
    img: &std::path::Path,
    mib: u64,
    write: bool,
) -> Duration {
    let blk = Block::new(&DiskConfig {
        path: img.into(),
        read_only: false,
    })
    .unwrap();
    let mut t = MmioTransport::new(Box::new(blk), mem.clone()).unwrap();
    // HVCERT_BENCH_SECCOMP=1: the driver side runs on a thread under the vCPU filter, as in a
    // VM, so the worker it starts installs the device worker's filter (issue 16's cost).
    let sandboxed = std::env::var_os("HVCERT_BENCH_SECCOMP").is_some();
    std::thread::scope(|s| {
        s.spawn(move || {
            if sandboxed {
                hypervisor::seccomp::install(hypervisor::seccomp::ThreadKind::Vcpu).unwrap();
            }
            let vq = Vq::new(mem, ring_base(1), 256);
            assert!(negotiate(&mut t, 1 << VIRTIO_F_VERSION_1));
            setup_queue(&mut t, 0, &vq);
            driver_ok(&mut t);
            let t0 = Instant::now();
            for i in 0..mib {
                post_request(mem, &vq, i, write);
                t.queue_evts()[0].write(1).unwrap();
                while vq.used_idx() as u64 != i + 1 {
                    std::hint::spin_loop();
                }
                assert_eq!(read_u8(mem, STATUS), 0);
            }
            let d = t0.elapsed();
            // The worker stops (and the transport's fds close) on this thread.
            drop(t);
            d
        })
        .join()
        .unwrap()
    })
}

fn main() {
    let mib: u64 = std::env::var("HVCERT_BENCH_MIB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256);
    let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 16 << 20)]).unwrap();
    let img = TempFile::new("bench", &[]);
    std::fs::File::options()
        .write(true)
        .open(&img.0)
        .unwrap()
        .set_len(mib * MIB)
        .unwrap();
    println!(
        "virtio-blk, {mib} MiB image in {}, sequential 1 MiB requests (page cache):",
        std::env::temp_dir().display()
    );
    // Warm the page cache with a first full write.
    bench_host(&img.0, mib, true);
    for write in [true, false] {
        let what = if write { "write" } else { "read " };
        let mut best = [0f64; 3];
        for _ in 0..3 {
            let host = mbps(mib * MIB, bench_host(&img.0, mib, write));
            let dev = mbps(mib * MIB, bench_blk_handler(&mem, &img.0, mib, write));
            let wrk = mbps(mib * MIB, bench_blk_worker(&mem, &img.0, mib, write));
            for (b, v) in best.iter_mut().zip([host, dev, wrk]) {
                *b = b.max(v);
            }
        }
        println!(
            "  {what}: host pread/pwrite {:8.0} MB/s | device handler {:8.0} MB/s ({:5.1}%) | transport+worker {:8.0} MB/s ({:5.1}%)",
            best[0], best[1], 100.0 * best[1] / best[0], best[2], 100.0 * best[2] / best[0]
        );
    }
    let frames = 256 * 1024;
    let d = bench_loopback(&mem, frames);
    println!(
        "virtio-net loopback: {frames} frames of 1514 B in {:.3} s = {:.0} frames/s ({:.0} MB/s)",
        d.as_secs_f64(),
        frames as f64 / d.as_secs_f64(),
        mbps(frames * 1514, d)
    );
}
