//! KTAP output on COM1 (https://docs.kernel.org/dev-tools/ktap.html).
use core::fmt::{self, Write};

use crate::port::{outb, COM1};

/// Exit statuses (port 0xf4): all cases ok or skipped / some failed / an unexpected
/// exception or panic ended the run.
pub const STATUS_OK: u32 = 0;
pub const STATUS_FAILED: u32 = 1;
pub const STATUS_CRASH: u32 = 3;

pub struct Serial;

impl Write for Serial {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            outb(COM1, b);
        }
        Ok(())
    }
}

#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = writeln!($crate::ktap::Serial, $($arg)*);
    }};
}

/// A diagnostic line `# ...`.
#[macro_export]
macro_rules! diag {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let mut s = $crate::ktap::Serial;
        let _ = s.write_str("# ");
        let _ = writeln!(s, $($arg)*);
    }};
}

/// A fixed-capacity message (no allocator in the guest); silently truncates.
pub struct Msg {
    buf: [u8; 160],
    len: usize,
}

impl Msg {
    pub const fn new() -> Self {
        Msg {
            buf: [0; 160],
            len: 0,
        }
    }
    pub fn as_str(&self) -> &str {
        match core::str::from_utf8(&self.buf[..self.len]) {
            Ok(s) => s,
            Err(e) => core::str::from_utf8(&self.buf[..e.valid_up_to()]).unwrap_or(""),
        }
    }
}

impl Default for Msg {
    fn default() -> Self {
        Self::new()
    }
}

impl Write for Msg {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len < self.buf.len() && b != b'\n' {
                self.buf[self.len] = b;
                self.len += 1;
            }
        }
        Ok(())
    }
}

pub enum Outcome {
    Pass,
    Fail(Msg),
    Skip(Msg),
}

#[macro_export]
macro_rules! msg {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let mut m = $crate::ktap::Msg::new();
        let _ = write!(m, $($arg)*);
        m
    }};
}

/// Return `Outcome::Fail` with a formatted reason.
#[macro_export]
macro_rules! fail {
    ($($arg:tt)*) => { return $crate::ktap::Outcome::Fail($crate::msg!($($arg)*)) };
}

/// `check!(cond, "reason {}", x)`: fail the case unless `cond`.
#[macro_export]
macro_rules! check {
    ($cond:expr, $($arg:tt)*) => { if !$cond { $crate::fail!($($arg)*); } };
}

/// The case running now, so that an exception can be reported against it.
pub static mut CURRENT: (u32, &str) = (0, "");

pub fn set_current(n: u32, name: &'static str) {
    // SAFETY: single CPU; read only by the exception path.
    unsafe { CURRENT = (n, name) };
}

const VECTOR_NAMES: [&str; 32] = [
    "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS", "#NP", "#SS",
    "#GP", "#PF", "#15", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "#22", "#23", "#24", "#25",
    "#26", "#27", "#HV", "#VC", "#SX", "#31",
];

/// An unexpected exception: `not ok N case # exception ...`, the line the runner
/// classifies as a crash.
pub fn report_exception(vector: u64, error: u64, rip: u64, cs: u64, rsp: u64) {
    // SAFETY: read of a static written only by ring 3 between cases.
    let (n, name) = unsafe { CURRENT };
    crate::println!();
    crate::println!(
        "not ok {} {} # exception {} vector={} error={:#x} rip={:#x} cpl={} rsp={:#x}",
        n,
        name,
        VECTOR_NAMES[(vector & 31) as usize],
        vector,
        error,
        rip,
        cs & 3,
        rsp
    );
}
