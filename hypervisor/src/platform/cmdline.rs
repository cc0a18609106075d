//! The nested-host kernel command line: `clearcpuid=`/`noxsave` items and the TSC clock options.

/// One item of the nested-host command line: the option and the failure it prevents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CmdlineItem {
    /// The kernel option, as written on the command line.
    pub option: &'static str,
    /// What goes wrong on this host without it (the message seen, 2026-12-06).
    pub prevents: &'static str,
}

/// The command-line fragment for a stock Linux kernel (6.1 takes `clearcpuid=` feature
/// names) on a `nested_software` host, each item with the failure it prevents.
pub const NESTED_CMDLINE: &[CmdlineItem] = &[
    CmdlineItem {
        option: "noxsave",
        prevents: "KVM internal error 1 (emulation failure) on `xrstor` in fpu__init: the \
                   guest sees the host's XSAVE bit whatever KVM_SET_CPUID2 says",
    },
    CmdlineItem {
        option: "clearcpuid=popcnt,smap,smep,avx,avx2,avx512f,cx16,bmi1,bmi2,movbe,sse4_1,\
                 sse4_2,ssse3,rdrand,rdseed,fma,f16c,aes,pclmulqdq,adx,sha_ni,pcid,invpcid",
        prevents: "emulation failures on `popcnt` (hweight alternatives), `clac`/`stac` \
                   (SMAP; also emulated below, but each costs an exit), `lock cmpxchg16b` \
                   (cx16), VEX/EVEX and SSE4/SSSE3 code chosen by alternatives and \
                   crypto/raid drivers, `rdrand` (random init), `invpcid` (TLB flushes)",
    },
    CmdlineItem {
        option: "cryptomgr.notests",
        prevents: "crypto self-tests at boot running SSE code through the emulator \
                   (minutes of emulated ring 0 and SSE instructions it cannot run)",
    },
    CmdlineItem {
        option: "mitigations=off",
        prevents: "speculation-barrier work on every kernel entry (MSR writes, RSB \
                   stuffing), each instruction emulated at ~1 us",
    },
    CmdlineItem {
        option: "nosoftlockup",
        prevents: "~200 s of soft-lockup warnings (stack dumps through the emulated UART) \
                   while ftrace converts its call sites at ~1 us an instruction",
    },
];

/// [`NESTED_CMDLINE`] as one space-separated string.
pub fn nested_cmdline() -> String {
    NESTED_CMDLINE
        .iter()
        .map(|i| i.option)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The clock options for a guest whose TSC runs at `tsc_khz`: `tsc_early_khz=` (Linux
/// 5.6+) and `tsc=reliable`. Without them, on this host the kernel cannot calibrate the TSC
/// ("tsc: Unable to calibrate against PIT", "No reference (HPET/PMTIMER) available",
/// "Marking TSC unstable") and runs on the jiffies clocksource, so its timestamps follow the
/// (emulated, late) timer interrupts rather than time. `None` (frequency unknown): nothing.
///
/// Not applied by default (`Vm::new` passes `None`): measured 2026-12-06, with these the
/// kernel keeps real time but every 4 ms tick is handled in emulated ring 0 ("hrtimer:
/// interrupt took 17399618 ns"), and the boot crawled: the 1500 s timeout found it where
/// the jiffies run was by ~10 minutes (docs/stock-kernel-nested.md, run 2; the jiffies
/// clock loses the ticks the guest cannot keep up with, which is what lets it progress).
pub fn tsc_options(tsc_khz: Option<u32>) -> String {
    match tsc_khz {
        Some(khz) if khz > 0 => format!("tsc_early_khz={khz} tsc=reliable"),
        _ => String::new(),
    }
}

/// `user` with [`nested_cmdline`] and [`tsc_options`] appended (the user's own options come
/// first).
pub fn with_nested_cmdline(user: &str, tsc_khz: Option<u32>) -> String {
    let mut parts: Vec<String> = Vec::new();
    if !user.trim().is_empty() {
        parts.push(user.trim().to_string());
    }
    parts.push(nested_cmdline());
    let tsc = tsc_options(tsc_khz);
    if !tsc.is_empty() {
        parts.push(tsc);
    }
    parts.join(" ")
}

/// The vCPUs' TSC frequency (KVM_GET_TSC_KHZ on a throwaway VM's vCPU: the ioctl needs a
/// vCPU, and the real ones are created after the command line is written). `None` when
/// KVM cannot tell.
pub fn host_tsc_khz(kvm: &kvm_ioctls::Kvm) -> Option<u32> {
    let vm = kvm.create_vm().ok()?;
    let vcpu = vm.create_vcpu(0).ok()?;
    vcpu.get_tsc_khz().ok().filter(|&k| k > 0)
}
