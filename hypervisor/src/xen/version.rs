//! Xen xen_version (17) and console_io (18): constant answers and the debug console.

use super::*;

pub(super) fn xen_version(env: &Env<'_>, a: [u64; 5]) -> Outcome {
    let write = |what: &str, data: &[u8]| {
        let rc = res(env.write(a[1], data).map(|_| 0));
        out(
            rc,
            format!("xen_version({what}, {:#x}) -> {}", a[1], errname(rc)),
        )
    };
    match a[0] {
        XENVER_VERSION => out(
            i64::from(VERSION),
            format!("xen_version(XENVER_version) -> {VERSION:#x}"),
        ),
        XENVER_EXTRAVERSION => write("XENVER_extraversion", EXTRAVERSION),
        XENVER_COMPILE_INFO => {
            let mut b = Vec::new();
            for (s, n) in COMPILE_INFO.iter().zip(COMPILE_INFO_FIELDS) {
                b.extend(padded(s, n));
            }
            write("XENVER_compile_info", &b)
        }
        XENVER_CAPABILITIES => write(
            "XENVER_capabilities",
            &padded(CAPABILITIES, CAPABILITIES_SIZE),
        ),
        XENVER_CHANGESET => write("XENVER_changeset", &padded(CHANGESET, CHANGESET_SIZE)),
        XENVER_PLATFORM_PARAMETERS => write(
            "XENVER_platform_parameters",
            &PLATFORM_VIRT_START.to_le_bytes(),
        ),
        XENVER_PAGESIZE => out(
            PAGE_SIZE as i64,
            format!("xen_version(XENVER_pagesize) -> {PAGE_SIZE}"),
        ),
        // The domain handle (a UUID) of this VM: all zeros, as for a domain built
        // without one.
        XENVER_GUEST_HANDLE => write("XENVER_guest_handle", &[0u8; GUEST_HANDLE_SIZE]),
        XENVER_GET_FEATURES => {
            // struct xen_feature_info { unsigned int submap_idx; uint32_t submap; }
            let rc = res(env.read_u32(a[1]).and_then(|idx| {
                if idx >= XENFEAT_NR_SUBMAPS {
                    return Err(EINVAL);
                }
                env.write(
                    a[1].wrapping_add(FEATURE_INFO_SUBMAP_OFFSET),
                    &FEATURES.to_le_bytes(),
                )
                .map(|_| 0)
            }));
            out(
                rc,
                format!(
                    "xen_version(XENVER_get_features, {:#x}) -> {FEATURES:#x}, {}",
                    a[1],
                    errname(rc)
                ),
            )
        }
        // Xen's XSM default policy lets only privileged domains read these; this guest is
        // an unprivileged HVM domain.
        XENVER_COMMANDLINE | XENVER_BUILD_ID => out(
            EPERM,
            format!(
                "xen_version({}) -> -EPERM (privileged domains only)",
                if a[0] == XENVER_COMMANDLINE {
                    "XENVER_commandline"
                } else {
                    "XENVER_build_id"
                }
            ),
        ),
        cmd => out(ENOSYS, format!("xen_version({cmd}) -> -ENOSYS")),
    }
}

pub(super) fn console_io(env: &Env<'_>, a: [u64; 5]) -> Outcome {
    match a[0] {
        CONSOLEIO_WRITE => {
            let count = a[1];
            if count > CONSOLE_WRITE_MAX {
                return out(
                    EINVAL,
                    format!("console_io(CONSOLEIO_write, {count}) -> -EINVAL"),
                );
            }
            match env.read(a[2], count as usize) {
                Ok(data) => Outcome {
                    console: data,
                    native: Some("HvCallPostDebugData"),
                    ..out(
                        0,
                        format!("console_io(CONSOLEIO_write, {count}) -> console -> 0"),
                    )
                },
                Err(e) => out(
                    e,
                    format!(
                        "console_io(CONSOLEIO_write, {count}, {:#x}) -> {}",
                        a[2],
                        errname(e)
                    ),
                ),
            }
        }
        CONSOLEIO_READ => out(0, "console_io(CONSOLEIO_read) -> 0".into()),
        cmd => out(ENOSYS, format!("console_io({cmd}) -> -ENOSYS")),
    }
}
