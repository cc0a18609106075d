//! The guest kernel (certify/guest) that build.rs builds and this crate embeds.
use hypervisor::Interface;
use std::path::{Path, PathBuf};

/// The guest kernel built by build.rs.
pub const GUEST_ELF: &str = env!("HVCERT_GUEST_ELF");
/// The same bytes, embedded, so an installed `hvcert` works without its build tree.
pub const GUEST_ELF_BYTES: &[u8] = include_bytes!(env!("HVCERT_GUEST_ELF"));

/// The guest to boot: `explicit`, else the build tree's ELF when it is still there and
/// unchanged, else the embedded copy written to `out/hvcert-guest.elf`.
pub fn guest_path(explicit: Option<&Path>, out: &Path) -> std::io::Result<PathBuf> {
    guest_path_from(explicit, Path::new(GUEST_ELF), out)
}

fn guest_path_from(explicit: Option<&Path>, built: &Path, out: &Path) -> std::io::Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    if std::fs::read(built).is_ok_and(|b| b == GUEST_ELF_BYTES) {
        return Ok(built.to_path_buf());
    }
    let copy = out.join("hvcert-guest.elf");
    std::fs::write(&copy, GUEST_ELF_BYTES)?;
    Ok(copy)
}

/// Whether `bytes` are this build's guest kernel (the embedded one).
pub fn is_builtin_guest(bytes: &[u8]) -> bool {
    bytes == GUEST_ELF_BYTES
}

/// The command line `hvcert run` gives the built-in guest when none is given: a `run`
/// profile whose cases exercise what the VM has: boot, the paravirtual `interface`, the
/// first disk when there are `disks`, the first network adapter when there are `nics`.
/// (The guest refuses to run without `profile=`.)
pub fn default_cmdline(interface: Interface, disks: usize, nics: usize) -> String {
    let mut cases = vec!["boot"];
    if matches!(interface, Interface::HyperV | Interface::Both) {
        cases.extend(["hv_cpuid", "hv_hypercall_page"]);
    }
    if matches!(interface, Interface::Xen | Interface::Both) {
        cases.extend(["xen_cpuid", "xen_version"]);
    }
    if disks > 0 {
        cases.extend(["storage_write_read_verify", "storage_flush"]);
    }
    if nics > 0 {
        cases.push("nic_frame_round_trip");
    }
    format!("profile=run cases={}", cases.join(","))
}

#[cfg(test)]
mod tests {
    use hypervisor::Interface;
    use std::path::Path;

    #[test]
    fn default_cmdline_follows_the_vm() {
        assert_eq!(
            super::default_cmdline(Interface::None, 0, 0),
            "profile=run cases=boot"
        );
        assert_eq!(
            super::default_cmdline(Interface::Xen, 1, 1),
            "profile=run cases=boot,xen_cpuid,xen_version,\
             storage_write_read_verify,storage_flush,nic_frame_round_trip"
        );
        assert_eq!(
            super::default_cmdline(Interface::Both, 0, 0),
            "profile=run cases=boot,hv_cpuid,hv_hypercall_page,xen_cpuid,xen_version"
        );
        assert!(super::is_builtin_guest(super::GUEST_ELF_BYTES));
        assert!(!super::is_builtin_guest(b"\x7fELF"));
    }

    #[test]
    fn guest_elf_was_built() {
        let bytes = std::fs::read(super::GUEST_ELF).expect("build.rs built the guest");
        assert_eq!(&bytes[..4], b"\x7fELF");
        // The PVH note (XEN_ELFNOTE_PHYS32_ENTRY = 18, owner "Xen") is present.
        let needle = [4u8, 0, 0, 0, 4, 0, 0, 0, 18, 0, 0, 0, b'X', b'e', b'n', 0];
        assert!(
            bytes.windows(needle.len()).any(|w| w == needle),
            "no PVH entry note"
        );
    }

    #[test]
    fn embedded_guest_is_written_when_the_build_tree_is_gone() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        assert_eq!(
            super::guest_path(None, dir).unwrap(),
            Path::new(super::GUEST_ELF)
        );
        let gone = dir.join("no-such-build-tree/hvcert-guest");
        let p = super::guest_path_from(None, &gone, dir).unwrap();
        assert_eq!(p, dir.join("hvcert-guest.elf"));
        assert_eq!(std::fs::read(&p).unwrap(), super::GUEST_ELF_BYTES);
        let explicit = dir.join("mine.elf");
        assert_eq!(super::guest_path(Some(&explicit), dir).unwrap(), explicit);
    }
}
