//! Ring 3's end after an unexpected exception: boot.rs's exception path saves the exception
//! in `boot::CRASH` and switches to [`user_crash`] on its own stack, which reports it and
//! ends the VM. Kept apart from boot.rs so that the ring-0 module uses nothing else of the
//! guest (boot is a leaf; crash uses boot, ktap and sys).

/// Ring 3, on its own stack, after an exception nobody armed a trap for: report it in KTAP
/// on COM1 and end the VM.
#[no_mangle]
extern "C" fn user_crash() -> ! {
    // SAFETY: written once by the exception path before it switched here.
    let c = unsafe { core::ptr::read_volatile(&raw const crate::boot::CRASH) };
    crate::ktap::report_exception(c.vector, c.error, c.rip, c.cs, c.rsp);
    crate::sys::exit(crate::ktap::STATUS_CRASH)
}
