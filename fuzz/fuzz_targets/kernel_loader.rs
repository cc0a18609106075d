//! The kernel loaders (PVH ELF via XEN_ELFNOTE_PHYS32_ENTRY, bzImage) with boot parameters,
//! command line and memory map, into a 32 MiB guest memory.
#![no_main]
use hypervisor::boot;
use std::sync::OnceLock;
use vm_memory::{GuestAddress, GuestMemoryMmap};

struct Env {
    mem: GuestMemoryMmap,
    _dir: tempfile::TempDir,
    kernel: std::path::PathBuf,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let dir = tempfile::tempdir().expect("scratch dir");
        Env {
            mem: GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 32 << 20)]).expect("memory"),
            kernel: dir.path().join("kernel"),
            _dir: dir,
        }
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let e = env();
    std::fs::write(&e.kernel, data).expect("write the kernel");
    let cmdline = boot::cmdline("console=ttyS0", &[]).expect("command line");
    // With an RSDP address, as every VM now gets ACPI tables.
    let _ = boot::load(
        &e.mem,
        32,
        &e.kernel,
        None,
        &cmdline,
        &[],
        Some(hypervisor::acpi::RSDP_ADDR),
    );
});
