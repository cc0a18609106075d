//! shared_info and vcpu_info in guest memory: where they are, the event bits in them
//! (updated with atomic operations, the guest changes the same words concurrently), the
//! pvclock time info and the wall clock.
//!
//! shared_info is the guest's own RAM page named by XENMEM_add_to_physmap
//! (XENMAPSPACE_shared_info): Xen would put its page at that frame; here the guest's page
//! *is* the shared page (zeroed when mapped), which the guest cannot tell apart. A vCPU's
//! vcpu_info is slot `vcpu` of shared_info (vCPUs 0..32) until VCPUOP_register_vcpu_info
//! moves it to a guest frame of its choice.
use crate::abi::xen::*;
use crate::abi::PAGE_SIZE;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, VolatileMemory};

/// An atomic read-modify-write on a naturally aligned u64 of guest memory; `None` when the
/// address is not RAM.
fn with_u64<R>(mem: &GuestMemoryMmap, gpa: u64, f: impl FnOnce(&AtomicU64) -> R) -> Option<R> {
    let slice = mem.get_slice(GuestAddress(gpa), 8).ok()?;
    let a = slice.get_atomic_ref::<AtomicU64>(0).ok()?;
    Some(f(a))
}

fn with_u8<R>(mem: &GuestMemoryMmap, gpa: u64, f: impl FnOnce(&AtomicU8) -> R) -> Option<R> {
    let slice = mem.get_slice(GuestAddress(gpa), 1).ok()?;
    let a = slice.get_atomic_ref::<AtomicU8>(0).ok()?;
    Some(f(a))
}

/// Sets bit `bit` of the u64 at `gpa`; returns whether it was already set (`None`: not RAM).
pub fn test_and_set(mem: &GuestMemoryMmap, gpa: u64, bit: u32) -> Option<bool> {
    let m = 1u64 << (bit & 63);
    with_u64(mem, gpa, |a| a.fetch_or(m, Ordering::SeqCst) & m != 0)
}

/// Clears bit `bit` of the u64 at `gpa`; returns whether it was set.
pub fn test_and_clear(mem: &GuestMemoryMmap, gpa: u64, bit: u32) -> Option<bool> {
    let m = 1u64 << (bit & 63);
    with_u64(mem, gpa, |a| a.fetch_and(!m, Ordering::SeqCst) & m != 0)
}

/// Reads bit `bit` of the u64 at `gpa`.
pub fn test(mem: &GuestMemoryMmap, gpa: u64, bit: u32) -> Option<bool> {
    with_u64(mem, gpa, |a| {
        a.load(Ordering::SeqCst) & (1u64 << (bit & 63)) != 0
    })
}

/// Sets the byte at `gpa` to 1; returns its old value (`evtchn_upcall_pending`).
pub fn set_flag(mem: &GuestMemoryMmap, gpa: u64) -> Option<u8> {
    with_u8(mem, gpa, |a| a.swap(1, Ordering::SeqCst))
}

/// Reads the byte at `gpa`.
pub fn flag(mem: &GuestMemoryMmap, gpa: u64) -> Option<u8> {
    with_u8(mem, gpa, |a| a.load(Ordering::SeqCst))
}

/// Whether `[gpa, gpa + len)` is RAM of the guest and inside one page.
pub fn in_one_ram_page(mem: &GuestMemoryMmap, gpa: u64, len: u64) -> bool {
    let Some(end) = gpa.checked_add(len) else {
        return false;
    };
    len > 0
        && gpa / PAGE_SIZE == (end - 1) / PAGE_SIZE
        && mem.check_range(GuestAddress(gpa), len as usize)
}

/// The guest TSC, the reference time (ns since the VM was created: the time base of the
/// Hyper-V TIME_REF_COUNT) sampled right after it, and the TSC rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TscSample {
    /// Guest TSC (IA32_TSC of the calling vCPU).
    pub tsc: u64,
    /// Reference time in ns when `tsc` was read.
    pub ns: u64,
    /// TSC rate in kHz (KVM_GET_TSC_KHZ).
    pub khz: u32,
}

/// pvclock scale for a TSC of `khz` kHz, as Xen's `set_time_scale`: the TSC delta is shifted
/// by `shift` (left if positive) and multiplied by `mul / 2^32` to give ns.
pub fn time_scale(khz: u32) -> (u32, i8) {
    let hz = u64::from(khz.max(1)) * 1000;
    let mut shift: i8 = 0;
    let mut t64 = hz;
    while t64 > 2_000_000_000 {
        t64 >>= 1;
        shift -= 1;
    }
    let mut t32 = t64 as u32;
    while t32 <= 1_000_000_000 {
        t32 <<= 1;
        shift += 1;
    }
    let mul = ((1_000_000_000u64 << 32) / u64::from(t32)).min(u64::from(u32::MAX)) as u32;
    (mul, shift)
}

/// ns for `delta` TSC ticks with scale `(mul, shift)` (the guest's pvclock arithmetic).
pub fn scale_delta(delta: u64, mul: u32, shift: i8) -> u64 {
    let d = if shift >= 0 {
        delta << shift
    } else {
        delta >> (-shift)
    };
    ((u128::from(d) * u128::from(mul)) >> 32) as u64
}

/// Writes a vcpu_time_info at `ti` (version odd while it changes, then even, as Xen does).
pub fn write_time(mem: &GuestMemoryMmap, ti: u64, s: TscSample) -> bool {
    let (mul, shift) = time_scale(s.khz);
    let v: u32 = mem.read_obj(GuestAddress(ti + TI_VERSION)).unwrap_or(0);
    let v = v | 1;
    let ok = mem.write_obj(v, GuestAddress(ti + TI_VERSION)).is_ok();
    std::sync::atomic::fence(Ordering::SeqCst);
    let ok = ok
        && mem
            .write_obj(s.tsc, GuestAddress(ti + TI_TSC_TIMESTAMP))
            .is_ok()
        && mem
            .write_obj(s.ns, GuestAddress(ti + TI_SYSTEM_TIME))
            .is_ok()
        && mem.write_obj(mul, GuestAddress(ti + TI_MUL)).is_ok()
        && mem
            .write_obj(shift as u8, GuestAddress(ti + TI_SHIFT))
            .is_ok()
        && mem
            .write_obj(PVCLOCK_TSC_STABLE, GuestAddress(ti + TI_FLAGS))
            .is_ok();
    std::sync::atomic::fence(Ordering::SeqCst);
    ok && mem
        .write_obj(v.wrapping_add(1), GuestAddress(ti + TI_VERSION))
        .is_ok()
}

/// Writes the wall clock (time of system time 0, i.e. of the VM's creation) into
/// shared_info at `si`: wc_version odd, sec/nsec/sec_hi, wc_version even.
pub fn write_wallclock(mem: &GuestMemoryMmap, si: u64, boot_unix_ns: u128) -> bool {
    let sec = (boot_unix_ns / 1_000_000_000) as u64;
    let nsec = (boot_unix_ns % 1_000_000_000) as u32;
    let v: u32 = mem.read_obj(GuestAddress(si + SI_WC_VERSION)).unwrap_or(0) | 1;
    mem.write_obj(v, GuestAddress(si + SI_WC_VERSION)).is_ok()
        && mem
            .write_obj(sec as u32, GuestAddress(si + SI_WC_SEC))
            .is_ok()
        && mem.write_obj(nsec, GuestAddress(si + SI_WC_NSEC)).is_ok()
        && mem
            .write_obj((sec >> 32) as u32, GuestAddress(si + SI_WC_SEC_HI))
            .is_ok()
        && mem
            .write_obj(v.wrapping_add(1), GuestAddress(si + SI_WC_VERSION))
            .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_matches_ns() {
        for khz in [1_000_000u32, 2_345_678, 3_000_000, 100_000, 5_000_000] {
            let (mul, shift) = time_scale(khz);
            // One second of ticks is one second, to 1 ppm.
            let ns = scale_delta(u64::from(khz) * 1000, mul, shift);
            assert!((ns as i64 - 1_000_000_000).abs() < 1_000, "{khz} kHz: {ns}");
        }
    }

    #[test]
    fn bits_and_bounds() {
        let m = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10000)]).unwrap();
        assert_eq!(test_and_set(&m, 0x800, 5), Some(false));
        assert_eq!(test_and_set(&m, 0x800, 5), Some(true));
        assert_eq!(test(&m, 0x800, 5), Some(true));
        assert_eq!(test_and_clear(&m, 0x800, 5), Some(true));
        assert_eq!(test(&m, 0x800, 5), Some(false));
        assert_eq!(test_and_set(&m, 0x20000, 1), None);
        assert_eq!(set_flag(&m, 0x10), Some(0));
        assert_eq!(flag(&m, 0x10), Some(1));
        assert!(in_one_ram_page(&m, 0x1fc0, 64));
        assert!(!in_one_ram_page(&m, 0x1fe0, 64));
        assert!(!in_one_ram_page(&m, 0xffc0, 128));
        assert!(!in_one_ram_page(&m, u64::MAX - 8, 64));
    }
}
