//! When a run gets the nested-host fixes for stock kernels (`hypervisor::platform`, issue 11).
//!
//! The rule: `on` and `off` are what they say; `auto` (the default of `hvcert run` and of the
//! real-guest profiles) applies them when the kernel is a stock Linux kernel ([`is_stock_linux`]:
//! a bzImage, or an ELF vmlinux with Linux's version banner) **and** the probe's KVM check
//! classifies this host as `nested_software` (guest ring 0 emulated). On a hardware-assisted
//! host, or with our own guests (PVH ELF files without the banner), the guest sees an honest
//! CPU and every KVM emulation failure ends the VM as before.
//!
//! The KVM check runs a micro-guest (a few milliseconds); its classification is cached for
//! the process ([`host_kvm_mode`]).
use probe::KvmMode;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::OnceLock;

/// `--nested-fixes on|off|auto`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum NestedFixes {
    /// Always apply the fixes.
    On,
    /// Never apply them.
    Off,
    /// Apply them to stock Linux kernels on `nested_software` hosts only.
    #[default]
    Auto,
}

/// The probe's classification of this host's KVM (`/dev/kvm`), measured once per process.
pub fn host_kvm_mode() -> KvmMode {
    static MODE: OnceLock<KvmMode> = OnceLock::new();
    *MODE.get_or_init(|| {
        let check = probe::kvm_check::run(Path::new("/dev/kvm"));
        probe::facts::kvm_report(&probe::raw::Avail::Known(check), false).mode
    })
}

/// The pure rule: whether the fixes apply for `choice`, a kernel that is (or is not) a stock
/// Linux kernel, and the host's KVM classification.
pub fn decide(choice: NestedFixes, stock_linux: bool, mode: KvmMode) -> bool {
    match choice {
        NestedFixes::On => true,
        NestedFixes::Off => false,
        NestedFixes::Auto => stock_linux && mode == KvmMode::NestedSoftware,
    }
}

/// [`decide`] for `kernel` on this host; the KVM check runs only when `auto` meets a stock
/// kernel.
pub fn resolve(choice: NestedFixes, kernel: &Path) -> bool {
    match choice {
        NestedFixes::Auto if is_stock_linux(kernel) => decide(choice, true, host_kvm_mode()),
        NestedFixes::Auto => false,
        other => decide(other, false, KvmMode::NotChecked),
    }
}

/// Largest ELF file searched for the banner (a distribution vmlinux is ~60 MiB).
const ELF_SCAN_MAX: u64 = 512 << 20;

/// Whether `kernel` is a stock Linux kernel rather than one of hvcert's own guests: a
/// bzImage whose setup header names a kernel version (boot protocol `kernel_version`
/// pointer, a string starting with a digit), or an ELF file containing Linux's banner
/// `Linux version `. Unreadable files are not (the VM's own loader reports them).
pub fn is_stock_linux(kernel: &Path) -> bool {
    let Ok(mut f) = std::fs::File::open(kernel) else {
        return false;
    };
    let mut head = [0u8; 0x210];
    if f.read_exact(&mut head).is_err() {
        return false;
    }
    if head[..4] == [0x7f, b'E', b'L', b'F'] {
        let _ = f.seek(SeekFrom::Start(0));
        let mut data = Vec::new();
        if f.take(ELF_SCAN_MAX).read_to_end(&mut data).is_err() {
            return false;
        }
        return contains(&data, b"Linux version ");
    }
    if &head[0x202..0x206] != b"HdrS" {
        return false;
    }
    // kernel_version (0x20e): offset of the version string from 0x200 (protocol 2.00+).
    let off = u16::from_le_bytes([head[0x20e], head[0x20f]]);
    if off == 0 {
        return false;
    }
    let mut first = [0u8; 1];
    f.seek(SeekFrom::Start(u64::from(off) + 0x200))
        .and_then(|_| f.read_exact(&mut first))
        .is_ok()
        && first[0].is_ascii_digit()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_applies_only_to_stock_kernels_on_nested_hosts() {
        use KvmMode::*;
        for mode in [Hardware, NestedSoftware, Unavailable, NotChecked] {
            assert!(decide(NestedFixes::On, false, mode));
            assert!(!decide(NestedFixes::Off, true, mode));
            assert!(
                !decide(NestedFixes::Auto, false, mode),
                "own guest on {mode:?}"
            );
            assert_eq!(
                decide(NestedFixes::Auto, true, mode),
                mode == NestedSoftware,
                "stock kernel on {mode:?}"
            );
        }
    }

    #[test]
    fn stock_kernels_are_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, data: &[u8]| {
            let p = dir.path().join(name);
            std::fs::write(&p, data).unwrap();
            p
        };
        // A bzImage header whose kernel_version points at "6.1.0-…".
        let mut bz = vec![0u8; 0x400];
        bz[0x202..0x206].copy_from_slice(b"HdrS");
        bz[0x20e..0x210].copy_from_slice(&0x100u16.to_le_bytes());
        bz[0x300..0x306].copy_from_slice(b"6.1.0 ");
        assert!(is_stock_linux(&write("bz", &bz)));
        // Without a version string (hvcert's own test bzImage) it is not.
        bz[0x20e..0x210].copy_from_slice(&0u16.to_le_bytes());
        assert!(!is_stock_linux(&write("bz-nover", &bz)));
        // An ELF with Linux's banner is; one without is our PVH guest.
        let mut elf = vec![0u8; 0x300];
        elf[..4].copy_from_slice(&[0x7f, b'E', b'L', b'F']);
        assert!(!is_stock_linux(&write("guest.elf", &elf)));
        elf.extend_from_slice(b"Linux version 6.1.0-48-cloud-amd64 (debian-kernel@...)");
        assert!(is_stock_linux(&write("vmlinux", &elf)));
        assert!(!is_stock_linux(&dir.path().join("missing")));
        assert!(!is_stock_linux(&write("short", b"\x7fELF")));
    }
}
