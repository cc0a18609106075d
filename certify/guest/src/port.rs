//! Port I/O from ring 3 (which runs with IOPL=3, see boot.rs): the console and the exit
//! port. Its own module so that the KTAP writer (ktap.rs) and the primitives that report
//! through it (sys.rs) don't depend on each other.
use core::arch::asm;

/// The serial console (the KTAP output).
pub const COM1: u16 = 0x3f8;
/// The port whose write ends the VM with that status.
pub const EXIT_PORT: u16 = 0xf4;

/// Writes a byte to `port`.
pub fn outb(port: u16, v: u8) {
    // SAFETY: port I/O; ring 3 runs with IOPL=3 (see boot.rs).
    unsafe { asm!("out dx, al", in("dx") port, in("al") v, options(nostack, preserves_flags)) };
}

/// Writes a 32-bit value to `port`.
pub fn outl(port: u16, v: u32) {
    // SAFETY: as in `outb`.
    unsafe { asm!("out dx, eax", in("dx") port, in("eax") v, options(nostack, preserves_flags)) };
}
