//! seccomp-bpf sandboxing of the VMM's threads: one allow-list per [`ThreadKind`], built
//! with rust-vmm's `seccompiler` (as Firecracker does) and installed by each thread on itself
//! before it touches guest data (a vCPU thread before its first KVM_RUN).
//!
//! A system call outside a thread's list raises SIGSYS (`SECCOMP_RET_TRAP`); the handler
//! installed here writes `hvcert: seccomp: thread <kind> made forbidden syscall <name> (<nr>)`
//! on stderr with write(2) alone and ends the process with [`EXIT_FORBIDDEN`]: never silent,
//! never an errno a caller could mistake for an I/O error.
//!
//! Filters stack: a thread inherits its creator's filter and may only narrow it. The device
//! workers and the console writer are started by a vCPU thread (when the guest activates a
//! device or first writes to COM1), so the vCPU list also holds what they need; each of them
//! then installs its own, narrower list. What each list holds and why is in `seccomp/rules.rs`.
mod names;
mod rules;

use seccompiler::{apply_filter, BpfProgram, SeccompAction, SeccompFilter};
use std::cell::Cell;
use std::sync::OnceLock;

/// The exit status of a process killed for a forbidden system call.
pub const EXIT_FORBIDDEN: i32 = 159;

/// The kinds of VMM thread, each with its own allow-list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadKind {
    /// A vCPU thread: KVM_RUN and the exit handlers (hypercalls, port and MMIO devices).
    Vcpu,
    /// A virtio device worker: queue notifications, disk and TAP I/O, interrupts.
    Worker,
    /// The console writer: copies guest output to the run's writer.
    Console,
    /// The thread that calls [`Vm::run`](crate::Vm::run) in a process of its own (`hvcert run`):
    /// the watchdog, vCPU kicks and the teardown. Installed by the caller, see [`install`].
    Vmm,
}

impl ThreadKind {
    /// The kind's name in the SIGSYS message and in `HVCERT_SECCOMP_TEST_FORBIDDEN`.
    pub fn name(self) -> &'static str {
        match self {
            ThreadKind::Vcpu => "vcpu",
            ThreadKind::Worker => "worker",
            ThreadKind::Console => "console",
            ThreadKind::Vmm => "vmm",
        }
    }

    fn index(self) -> u8 {
        match self {
            ThreadKind::Vcpu => 1,
            ThreadKind::Worker => 2,
            ThreadKind::Console => 3,
            ThreadKind::Vmm => 4,
        }
    }
}

/// Why a filter could not be built or installed.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// seccompiler refused the rules or the kernel refused the program.
    #[error("seccomp filter for the {kind} thread: {reason}")]
    Filter {
        /// The thread kind whose filter failed.
        kind: &'static str,
        /// seccompiler's (or the kernel's) error.
        reason: String,
    },
    /// The SIGSYS handler could not be installed.
    #[error("seccomp: cannot install the SIGSYS handler: {0}")]
    Handler(std::io::Error),
}

thread_local! {
    /// The calling thread's kind (`ThreadKind::index`), 0 while it has no filter. Const-
    /// initialised without a destructor, so the SIGSYS handler may read it.
    static KIND: Cell<u8> = const { Cell::new(0) };
}

/// The kind of filter the calling thread installed, if any. A thread started by a sandboxed
/// thread inherits its filter and should install its own (see the module notes).
pub fn current() -> Option<ThreadKind> {
    match KIND.with(Cell::get) {
        1 => Some(ThreadKind::Vcpu),
        2 => Some(ThreadKind::Worker),
        3 => Some(ThreadKind::Console),
        4 => Some(ThreadKind::Vmm),
        _ => None,
    }
}

/// The compiled program of `kind` (built once per process).
fn program(kind: ThreadKind) -> Result<&'static BpfProgram, SeccompError> {
    static PROGRAMS: [OnceLock<Result<BpfProgram, String>>; 4] = [
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
    ];
    let slot = &PROGRAMS[usize::from(kind.index() - 1)];
    let built = slot.get_or_init(|| {
        compile(
            rules::rules(kind),
            SeccompAction::Trap,
            SeccompAction::Allow,
        )
    });
    built.as_ref().map_err(|e| SeccompError::Filter {
        kind: kind.name(),
        reason: e.clone(),
    })
}

/// The program every sandboxed thread installs first: open/openat fail with ENOENT (not
/// SIGSYS). glibc's malloc reads /sys/devices/system/cpu/online when it creates a new arena
/// past its eighth, in whichever thread that happens, and falls back to sched_getaffinity
/// when the file cannot be opened; a thread never needs to open anything else.
fn no_open() -> Result<&'static BpfProgram, SeccompError> {
    static PROGRAM: OnceLock<Result<BpfProgram, String>> = OnceLock::new();
    PROGRAM
        .get_or_init(|| {
            compile(
                rules::no_open(),
                SeccompAction::Allow,
                SeccompAction::Errno(libc::ENOENT as u32),
            )
        })
        .as_ref()
        .map_err(|e| SeccompError::Filter {
            kind: "every",
            reason: e.clone(),
        })
}

fn compile(
    rules: std::collections::BTreeMap<i64, Vec<seccompiler::SeccompRule>>,
    mismatch: SeccompAction,
    matched: SeccompAction,
) -> Result<BpfProgram, String> {
    let filter = SeccompFilter::new(rules, mismatch, matched, seccompiler::TargetArch::x86_64)
        .map_err(|e| e.to_string())?;
    BpfProgram::try_from(filter).map_err(|e| e.to_string())
}

/// Builds every thread kind's program and installs the SIGSYS handler, so that a failure
/// shows when the VM is created (and the vCPU threads' start-up does no compiling).
pub fn prepare() -> Result<(), SeccompError> {
    install_sigsys_handler()?;
    for kind in [
        ThreadKind::Vcpu,
        ThreadKind::Worker,
        ThreadKind::Console,
        ThreadKind::Vmm,
    ] {
        program(kind)?;
    }
    no_open()?;
    Ok(())
}

/// Installs `kind`'s allow-list on the calling thread (irrevocably; threads it starts later
/// inherit it). The VMM does this on its own threads when [`VmConfig::seccomp`](crate::VmConfig)
/// is on; a process that runs one VM and exits (`hvcert run`) also calls it with
/// [`ThreadKind::Vmm`] on the thread that calls [`Vm::run`](crate::Vm::run), after
/// [`Vm::new`](crate::Vm::new).
pub fn install(kind: ThreadKind) -> Result<(), SeccompError> {
    prepare()?;
    let prog = program(kind)?;
    // (A thread started by a sandboxed one already has this one; a second copy costs a few
    // BPF instructions per system call.)
    apply_filter(no_open()?).map_err(|e| SeccompError::Filter {
        kind: kind.name(),
        reason: e.to_string(),
    })?;
    apply_filter(prog).map_err(|e| SeccompError::Filter {
        kind: kind.name(),
        reason: e.to_string(),
    })?;
    KIND.with(|k| k.set(kind.index()));
    #[cfg(feature = "seccomp-test-hook")]
    test_hook(kind);
    Ok(())
}

/// With the `seccomp-test-hook` feature: when `HVCERT_SECCOMP_TEST_FORBIDDEN` names this
/// thread's kind, make a forbidden call (socket(2)) right after installing the filter.
#[cfg(feature = "seccomp-test-hook")]
fn test_hook(kind: ThreadKind) {
    if std::env::var("HVCERT_SECCOMP_TEST_FORBIDDEN").as_deref() == Ok(kind.name()) {
        // SAFETY: socket(2) takes plain integers; the descriptor, if any, is closed.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
        if fd >= 0 {
            // SAFETY: `fd` was just returned to us and is not used again.
            unsafe { libc::close(fd) };
        }
    }
}

/// The SIGSYS part of siginfo_t on x86_64 (`_sigsys` in the kernel's union).
#[repr(C)]
struct SigsysInfo {
    signo: libc::c_int,
    errno: libc::c_int,
    code: libc::c_int,
    _pad: libc::c_int,
    call_addr: *mut libc::c_void,
    syscall: libc::c_int,
    arch: libc::c_uint,
}

/// Appends `s` to `buf` at `*len` (truncating at the end of `buf`).
fn put(buf: &mut [u8], len: &mut usize, s: &[u8]) {
    for &b in s {
        if *len < buf.len() {
            buf[*len] = b;
            *len += 1;
        }
    }
}

/// Formats the SIGSYS message for `kind` (a `ThreadKind::index`, 0: unsandboxed) and `nr`;
/// no allocation, so the handler may call it.
fn message(buf: &mut [u8; 160], kind: u8, nr: i64) -> usize {
    let mut len = 0;
    let kind = match kind {
        1 => "vcpu",
        2 => "worker",
        3 => "console",
        4 => "vmm",
        _ => "unknown",
    };
    put(buf, &mut len, b"hvcert: seccomp: thread ");
    put(buf, &mut len, kind.as_bytes());
    put(buf, &mut len, b" made forbidden syscall ");
    let name = usize::try_from(nr)
        .ok()
        .and_then(|i| names::NAMES.get(i))
        .copied()
        .unwrap_or("");
    put(
        buf,
        &mut len,
        if name.is_empty() {
            b"?"
        } else {
            name.as_bytes()
        },
    );
    put(buf, &mut len, b" (");
    let mut digits = [0u8; 20];
    let mut n = nr.unsigned_abs();
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if nr < 0 {
        put(buf, &mut len, b"-");
    }
    put(buf, &mut len, &digits[i..]);
    put(buf, &mut len, b")\n");
    len
}

extern "C" fn on_sigsys(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    let nr = if info.is_null() {
        -1
    } else {
        // SAFETY: the kernel passes a valid siginfo_t for SIGSYS; `SigsysInfo` is the
        // x86_64 layout of its SIGSYS member, read-only here.
        i64::from(unsafe { (*(info as *const SigsysInfo)).syscall })
    };
    let mut buf = [0u8; 160];
    let len = message(&mut buf, KIND.with(Cell::get), nr);
    // SAFETY: write(2) and _exit(2) are async-signal-safe; `buf[..len]` is initialised.
    unsafe {
        libc::write(2, buf.as_ptr().cast(), len);
        libc::_exit(EXIT_FORBIDDEN);
    }
}

fn install_sigsys_handler() -> Result<(), SeccompError> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        // SAFETY: a zeroed sigaction is valid; we set a handler that only calls
        // async-signal-safe functions, with SA_SIGINFO for its three-argument form.
        let r = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_sigsys as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(libc::SIGSYS, &sa, std::ptr::null_mut())
        };
        if r == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error().to_string())
        }
    })
    .clone()
    .map_err(|e| SeccompError::Handler(std::io::Error::other(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(kind: u8, nr: i64) -> String {
        let mut buf = [0u8; 160];
        let n = message(&mut buf, kind, nr);
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn message_names_thread_and_syscall() {
        assert_eq!(
            msg(2, libc::SYS_socket),
            "hvcert: seccomp: thread worker made forbidden syscall socket (41)\n"
        );
        assert_eq!(
            msg(1, libc::SYS_execve),
            "hvcert: seccomp: thread vcpu made forbidden syscall execve (59)\n"
        );
        assert_eq!(
            msg(0, 9999),
            "hvcert: seccomp: thread unknown made forbidden syscall ? (9999)\n"
        );
    }

    #[test]
    fn open_fails_with_enoent_and_the_rest_works_under_every_filter() {
        for kind in [
            ThreadKind::Vcpu,
            ThreadKind::Worker,
            ThreadKind::Console,
            ThreadKind::Vmm,
        ] {
            let r = std::thread::spawn(move || {
                install(kind).unwrap();
                assert_eq!(current(), Some(kind));
                let open = std::fs::File::open("/")
                    .map(|_| ())
                    .map_err(|e| e.raw_os_error());
                // Allowed calls still work: a write to stderr, memory.
                eprint!("");
                let v = vec![0u8; 1 << 20];
                (open, v.len())
            })
            .join()
            .unwrap();
            assert_eq!(r, (Err(Some(libc::ENOENT)), 1 << 20), "{kind:?}");
        }
        assert_eq!(current(), None, "the test thread itself stays unfiltered");
    }

    #[test]
    fn every_program_builds() {
        prepare().unwrap();
    }
}
