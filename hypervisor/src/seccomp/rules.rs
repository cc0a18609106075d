//! The allow-list of each thread kind. Derived from `strace -f` of the hypervisor's test
//! suite (vm, virtio_*, chaos), per thread name, and from reading the code that each
//! thread runs; anything else a thread asks for is a bug or an attack and ends the VMM.
//!
//! - every thread: memory management by the allocator (mmap, mprotect, munmap, mremap,
//!   madvise, brk), futex, signal return and masks, sigaltstack, exit, gettid, sleeping and
//!   clocks (the vDSO may fall back to the system call), write (stderr: tracing, panics,
//!   the SIGSYS message itself), exit_group (the SIGSYS handler's `_exit`) and
//!   sched_getaffinity (glibc's malloc, see `super::no_open`: open/openat fail with ENOENT
//!   rather than trap).
//! - console writer: write/writev to the run's output, close.
//! - device worker: its epoll loop, eventfd read/write, disk I/O (preadv/pwritev, pread/
//!   pwrite, lseek, fdatasync/fsync, fallocate), TAP read/write, close; ioctl KVM_SIGNAL_MSI only
//!   (the vmbus worker raises a channel interrupt after writing an unmasked inbound ring).
//! - vCPU: ioctl restricted to the vCPU requests the exit handlers use (KVM_RUN, register
//!   and event get/set, MP state), eventfds (irqfd, device activation: eventfd2, fcntl
//!   F_DUPFD_CLOEXEC), and starting the worker and console threads (clone/clone3,
//!   set_robust_list, rseq, sched_getaffinity, prctl PR_SET_NAME and PR_SET_NO_NEW_PRIVS,
//!   seccomp SET_MODE_FILTER so the new thread can narrow its filter). Because those threads
//!   inherit the vCPU filter, it also holds their lists.
//! - VMM (the thread in `Vm::run` of `hvcert run`): the watchdog (pread64 of the KVM stats
//!   fds, tgkill to kick the vCPUs, timer slack via prctl), joining threads, starting the
//!   teardown thread, closing fds.
use super::ThreadKind;
use kvm_bindings::{
    kvm_fpu, kvm_guest_debug, kvm_lapic_state, kvm_mp_state, kvm_msi, kvm_msrs, kvm_regs,
    kvm_sregs, kvm_vcpu_events, kvm_xsave, KVMIO,
};
use seccompiler::{SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompRule};
use std::collections::BTreeMap;
use vmm_sys_util::{ioctl_io_nr, ioctl_ior_nr, ioctl_iow_nr, ioctl_iowr_nr};

ioctl_io_nr!(KVM_RUN, KVMIO, 0x80);
ioctl_ior_nr!(KVM_GET_REGS, KVMIO, 0x81, kvm_regs);
ioctl_iow_nr!(KVM_SET_REGS, KVMIO, 0x82, kvm_regs);
ioctl_ior_nr!(KVM_GET_SREGS, KVMIO, 0x83, kvm_sregs);
ioctl_iow_nr!(KVM_SET_SREGS, KVMIO, 0x84, kvm_sregs);
ioctl_ior_nr!(KVM_GET_MP_STATE, KVMIO, 0x98, kvm_mp_state);
ioctl_ior_nr!(KVM_GET_VCPU_EVENTS, KVMIO, 0x9f, kvm_vcpu_events);
ioctl_iow_nr!(KVM_SET_VCPU_EVENTS, KVMIO, 0xa0, kvm_vcpu_events);
// The Xen adapter: upcalls through the in-kernel LAPIC (also from the `xen-timer` thread,
// which a vCPU starts and which inherits its filter), and the pvclock's TSC sample.
ioctl_iow_nr!(KVM_SIGNAL_MSI, KVMIO, 0xa5, kvm_msi);
ioctl_iowr_nr!(KVM_GET_MSRS, KVMIO, 0x88, kvm_msrs);
// The Xen adapter's breakpoint on the guest's VMCALL (`hypercall::xen_vmcall_on_kick`).
ioctl_iow_nr!(KVM_SET_GUEST_DEBUG, KVMIO, 0x9b, kvm_guest_debug);
ioctl_io_nr!(KVM_GET_TSC_KHZ, KVMIO, 0xa3);
// Hyper-V's APIC-access MSRs (`apic_msr`): EOI and TPR through the LAPIC state.
ioctl_ior_nr!(KVM_GET_LAPIC, KVMIO, 0x8e, kvm_lapic_state);
ioctl_iow_nr!(KVM_SET_LAPIC, KVMIO, 0x8f, kvm_lapic_state);
// The nested-host instruction fixes (`platform`): XMM registers and MXCSR.
ioctl_ior_nr!(KVM_GET_FPU, KVMIO, 0x8c, kvm_fpu);
ioctl_iow_nr!(KVM_SET_FPU, KVMIO, 0x8d, kvm_fpu);
ioctl_ior_nr!(KVM_GET_XSAVE, KVMIO, 0xa4, kvm_xsave);
ioctl_iow_nr!(KVM_SET_XSAVE, KVMIO, 0xa5, kvm_xsave);

/// Every thread's needs (see the module notes).
const COMMON: &[i64] = &[
    libc::SYS_brk,
    libc::SYS_mmap,
    libc::SYS_mprotect,
    libc::SYS_munmap,
    libc::SYS_mremap,
    libc::SYS_madvise,
    libc::SYS_futex,
    libc::SYS_rt_sigreturn,
    libc::SYS_rt_sigprocmask,
    libc::SYS_sigaltstack,
    libc::SYS_restart_syscall,
    libc::SYS_exit,
    libc::SYS_exit_group,
    libc::SYS_gettid,
    libc::SYS_getpid,
    libc::SYS_sched_yield,
    libc::SYS_sched_getaffinity,
    libc::SYS_clock_gettime,
    libc::SYS_clock_nanosleep,
    libc::SYS_nanosleep,
    libc::SYS_write,
];

/// The console writer's own needs.
const CONSOLE: &[i64] = &[libc::SYS_writev, libc::SYS_close];

/// A device worker's own needs.
const WORKER: &[i64] = &[
    libc::SYS_epoll_create1,
    libc::SYS_epoll_ctl,
    libc::SYS_epoll_wait,
    libc::SYS_epoll_pwait,
    libc::SYS_read,
    libc::SYS_readv,
    libc::SYS_writev,
    libc::SYS_preadv,
    libc::SYS_pwritev,
    libc::SYS_pread64,
    libc::SYS_pwrite64,
    libc::SYS_lseek,
    libc::SYS_fdatasync,
    libc::SYS_fsync,
    libc::SYS_fallocate,
    libc::SYS_fcntl,
    libc::SYS_close,
];

/// Starting a thread (from glibc's pthread_create and std's thread start-up).
const SPAWN: &[i64] = &[
    libc::SYS_clone,
    libc::SYS_clone3,
    libc::SYS_set_robust_list,
    libc::SYS_rseq,
    libc::SYS_sched_getaffinity,
];

/// The vCPU thread's own needs (ioctl, prctl and seccomp are added with argument rules).
const VCPU: &[i64] = &[
    libc::SYS_read,
    // Kicking other vCPUs out of KVM_RUN for a Hyper-V TLB flush (`vp_requests`).
    libc::SYS_tgkill,
    libc::SYS_eventfd2,
    libc::SYS_fcntl,
    libc::SYS_close,
];

/// The VMM thread's own needs (prctl is added with argument rules).
const VMM: &[i64] = &[
    libc::SYS_read,
    libc::SYS_pread64,
    libc::SYS_tgkill,
    libc::SYS_close,
    libc::SYS_fcntl,
    libc::SYS_sigaltstack,
    libc::SYS_rt_sigaction,
];

/// `arg == value` (the low 32 bits for ioctl requests, which the kernel takes as `unsigned int`).
fn eq(arg: u8, value: u64) -> SeccompRule {
    let cond = SeccompCondition::new(arg, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, value)
        .expect("argument index below 6");
    SeccompRule::new(vec![cond]).expect("one condition")
}

fn allow(map: &mut BTreeMap<i64, Vec<SeccompRule>>, calls: &[i64]) {
    for &nr in calls {
        // An empty rule list allows the call whatever its arguments.
        map.insert(nr, Vec::new());
    }
}

/// open and openat, whatever their arguments (see `super::no_open`).
pub(super) fn no_open() -> BTreeMap<i64, Vec<SeccompRule>> {
    BTreeMap::from([(libc::SYS_open, Vec::new()), (libc::SYS_openat, Vec::new())])
}

/// The rules of `kind`: system call number -> conditions (empty: any arguments).
pub(super) fn rules(kind: ThreadKind) -> BTreeMap<i64, Vec<SeccompRule>> {
    let mut m = BTreeMap::new();
    allow(&mut m, COMMON);
    // Allowed here so that the `no_open` program installed with this one decides: ENOENT
    // (of two filters the stricter action wins, and SIGSYS is stricter than an errno).
    allow(&mut m, &[libc::SYS_open, libc::SYS_openat]);
    match kind {
        ThreadKind::Console => allow(&mut m, CONSOLE),
        ThreadKind::Worker => {
            allow(&mut m, WORKER);
            // The `vmbus` worker raises the guest's channel interrupt (SynIC event flag +
            // SINT vector) after it writes an inbound ring the guest left unmasked; that one
            // ioctl only (any other request number stays SIGSYS).
            m.insert(
                libc::SYS_ioctl,
                vec![eq(1, u64::from(KVM_SIGNAL_MSI() as u32))],
            );
        }
        ThreadKind::Vcpu => {
            allow(&mut m, VCPU);
            allow(&mut m, SPAWN);
            allow(&mut m, WORKER);
            allow(&mut m, CONSOLE);
            let ioctls = [
                KVM_RUN(),
                KVM_GET_REGS(),
                KVM_SET_REGS(),
                KVM_GET_SREGS(),
                KVM_SET_SREGS(),
                KVM_GET_MP_STATE(),
                KVM_GET_VCPU_EVENTS(),
                KVM_SET_VCPU_EVENTS(),
                KVM_SIGNAL_MSI(),
                KVM_GET_MSRS(),
                KVM_SET_GUEST_DEBUG(),
                KVM_GET_TSC_KHZ(),
                KVM_GET_FPU(),
                KVM_SET_FPU(),
                KVM_GET_XSAVE(),
                KVM_SET_XSAVE(),
                KVM_GET_LAPIC(),
                KVM_SET_LAPIC(),
            ];
            m.insert(
                libc::SYS_ioctl,
                ioctls.iter().map(|&r| eq(1, u64::from(r as u32))).collect(),
            );
            m.insert(
                libc::SYS_prctl,
                vec![
                    eq(0, libc::PR_SET_NAME as u64),
                    eq(0, libc::PR_SET_NO_NEW_PRIVS as u64),
                ],
            );
            m.insert(
                libc::SYS_seccomp,
                vec![eq(0, u64::from(libc::SECCOMP_SET_MODE_FILTER))],
            );
        }
        ThreadKind::Vmm => {
            allow(&mut m, VMM);
            allow(&mut m, SPAWN);
            m.insert(
                libc::SYS_prctl,
                vec![
                    eq(0, libc::PR_SET_NAME as u64),
                    eq(0, libc::PR_GET_TIMERSLACK as u64),
                    eq(0, libc::PR_SET_TIMERSLACK as u64),
                ],
            );
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_match_the_kernel_headers() {
        // From <linux/kvm.h> on x86_64 (as strace decodes them).
        assert_eq!(KVM_RUN(), 0xae80);
        assert_eq!(KVM_GET_REGS(), 0x8090_ae81);
        assert_eq!(KVM_GET_SREGS(), 0x8138_ae83);
        assert_eq!(KVM_GET_MP_STATE(), 0x8004_ae98);
        // <linux/kvm.h>: _IOW(KVMIO, 0xa5, struct kvm_msi) (32 bytes), _IOWR(KVMIO, 0x88,
        // struct kvm_msrs) (8 bytes), _IO(KVMIO, 0xa3), _IOR(KVMIO, 0xa4, struct kvm_xsave).
        assert_eq!(KVM_SIGNAL_MSI(), 0x4020_aea5);
        assert_eq!(KVM_GET_MSRS(), 0xc008_ae88);
        assert_eq!(KVM_GET_TSC_KHZ(), 0xaea3);
        assert_eq!(KVM_GET_XSAVE(), 0x9000_aea4);
        // _IOR/_IOW(KVMIO, 0x8e/0x8f, struct kvm_lapic_state) (1024 bytes).
        assert_eq!(KVM_GET_LAPIC(), 0x8400_ae8e);
        assert_eq!(KVM_SET_LAPIC(), 0x4400_ae8f);
    }

    #[test]
    fn worker_and_console_lists_are_within_the_vcpu_list() {
        let vcpu = rules(ThreadKind::Vcpu);
        for kind in [ThreadKind::Worker, ThreadKind::Console] {
            for nr in rules(kind).keys() {
                assert!(
                    vcpu.contains_key(nr),
                    "{kind:?} needs {nr}, the vCPU list lacks it"
                );
            }
        }
        // A worker's only ioctl is KVM_SIGNAL_MSI (the vmbus worker's channel interrupt).
        assert_eq!(
            rules(ThreadKind::Worker)
                .get(&libc::SYS_ioctl)
                .map(Vec::len),
            Some(1)
        );
        assert!(!rules(ThreadKind::Console).contains_key(&libc::SYS_ioctl));
        assert!(!vcpu.contains_key(&libc::SYS_socket));
        assert!(!vcpu.contains_key(&libc::SYS_execve));
        assert!(
            vcpu.contains_key(&libc::SYS_openat),
            "denied with ENOENT by no_open"
        );
    }
}
