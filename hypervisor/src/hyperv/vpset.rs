//! Hypercall input as a sequence of qwords, whatever its form (memory, or fast in RDX, R8 and
//! XMM0-5), and the TLFS processor sets read from it: the 64-bit ProcessorMask of the
//! original calls and the HV_VP_SET of the Ex calls (format, valid bank mask, sparse banks).
//!
//! Errors follow the dispatcher's conventions: an input qword outside guest memory is
//! HV_STATUS_INVALID_PARAMETER (as the other memory-input calls here), a fast call whose input
//! runs past the registers it may use (RDX and R8, plus XMM0-5 only when the partition has
//! XmmRegistersForFastHypercallAvailable) is HV_STATUS_INVALID_HYPERCALL_INPUT, and so is an
//! HV_VP_SET whose bank count disagrees with the call's variable header size (as KVM's
//! `kvm_hv_flush_tlb`/`kvm_hv_send_ipi`). An unknown set format is
//! HV_STATUS_INVALID_PARAMETER (KVM takes any format but SPARSE_4K as "all" for flushes and
//! any but ALL as sparse for IPIs; the TLFS defines only the two).
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::abi::hv::{
    HV_STATUS_INVALID_HYPERCALL_INPUT, HV_STATUS_INVALID_PARAMETER, VP_SET_BANK_VPS,
    VP_SET_FORMAT_ALL, VP_SET_FORMAT_SPARSE_4K, VP_SET_MAX_BANKS, XMM_INPUT_QWORDS,
};

/// Where a hypercall's input qwords come from.
#[derive(Clone, Copy, Debug)]
pub enum Words<'a> {
    /// Memory input at a GPA.
    Memory {
        /// Guest memory.
        mem: &'a GuestMemoryMmap,
        /// The input GPA (RDX).
        gpa: u64,
    },
    /// Fast input: RDX, R8, then (when allowed) XMM0 low, XMM0 high, XMM1 low, ...
    Fast {
        /// RDX, R8 and the XMM halves.
        regs: [u64; 2 + XMM_INPUT_QWORDS],
        /// How many of `regs` the call may use: 2, or 14 with XMM fast input.
        avail: usize,
    },
}

impl Words<'_> {
    /// Input qword `i`.
    pub fn get(&self, i: u64) -> Result<u64, u16> {
        match *self {
            Words::Memory { mem, gpa } => {
                let at = i
                    .checked_mul(8)
                    .and_then(|o| gpa.checked_add(o))
                    .ok_or(HV_STATUS_INVALID_PARAMETER)?;
                mem.read_obj::<u64>(GuestAddress(at))
                    .map_err(|_| HV_STATUS_INVALID_PARAMETER)
            }
            Words::Fast { regs, avail } => usize::try_from(i)
                .ok()
                .filter(|&i| i < avail)
                .and_then(|i| regs.get(i).copied())
                .ok_or(HV_STATUS_INVALID_HYPERCALL_INPUT),
        }
    }

    /// Whether `n` qwords from `first` on can all be read without touching memory: for a
    /// fast call, whether they fit the registers (checked before anything is done, as KVM);
    /// memory input is checked as it is read.
    pub fn fast_fits(&self, first: u64, n: u64) -> bool {
        match *self {
            Words::Memory { .. } => true,
            Words::Fast { avail, .. } => first.checked_add(n).is_some_and(|e| e <= avail as u64),
        }
    }
}

/// A set of virtual processors by VP index (VP index n is vCPU n here).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct VpSet {
    /// Every VP of the partition.
    pub all: bool,
    /// Bank b, bit i: VP 64b + i.
    pub banks: [u64; VP_SET_MAX_BANKS],
}

impl std::fmt::Debug for VpSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.all {
            return write!(f, "VpSet(all)");
        }
        let vps: Vec<u32> = self
            .iter(VP_SET_BANK_VPS * VP_SET_MAX_BANKS as u32)
            .collect();
        write!(f, "VpSet({vps:?})")
    }
}

impl VpSet {
    /// No VP.
    pub const EMPTY: VpSet = VpSet {
        all: false,
        banks: [0; VP_SET_MAX_BANKS],
    };
    /// Every VP.
    pub const ALL: VpSet = VpSet {
        all: true,
        banks: [0; VP_SET_MAX_BANKS],
    };

    /// The VPs of a 64-bit ProcessorMask (VPs 0..63).
    pub fn from_mask(mask: u64) -> VpSet {
        let mut s = VpSet::EMPTY;
        s.banks[0] = mask;
        s
    }

    /// Whether VP `vp` is in the set.
    pub fn contains(&self, vp: u32) -> bool {
        if self.all {
            return true;
        }
        let (b, i) = ((vp / VP_SET_BANK_VPS) as usize, vp % VP_SET_BANK_VPS);
        self.banks.get(b).is_some_and(|w| w >> i & 1 == 1)
    }

    /// The set's VPs below `vps` (the partition's VP count), in order; indices at or above
    /// it name no VP and are ignored (as KVM does).
    pub fn iter(&self, vps: u32) -> impl Iterator<Item = u32> + '_ {
        (0..vps).filter(move |&vp| self.contains(vp))
    }

    /// Whether no VP below `vps` is in the set.
    pub fn is_empty_below(&self, vps: u32) -> bool {
        self.iter(vps).next().is_none()
    }
}

/// What a hypercall asks of other VPs, done by the caller of the dispatcher (the vCPU
/// threads and the in-kernel LAPIC are beyond the pure dispatcher).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Flush the guest TLB of these VPs before they next run guest code.
    Flush(VpSet),
    /// A fixed interrupt with `vector` to each of these VPs.
    Ipi {
        /// The vector (0x10..=0xFF).
        vector: u8,
        /// The targets.
        targets: VpSet,
    },
}

/// Reads an HV_VP_SET whose Format and ValidBankMask are qwords `at` and `at + 1`, and whose
/// banks follow from `at + 2`, one per ValidBankMask bit, `var_header_qwords` of them (the
/// call's variable header). Returns the set and the number of bank qwords it holds.
pub fn read_vp_set(w: &Words, at: u64, var_header_qwords: u16) -> Result<(VpSet, u64), u16> {
    let format = w.get(at)?;
    let valid = w.get(at + 1)?;
    let nbanks = u64::from(valid.count_ones());
    if u64::from(var_header_qwords) != nbanks {
        return Err(HV_STATUS_INVALID_HYPERCALL_INPUT);
    }
    if !w.fast_fits(at + 2, nbanks) {
        return Err(HV_STATUS_INVALID_HYPERCALL_INPUT);
    }
    match format {
        VP_SET_FORMAT_ALL => {
            // The banks still belong to the input (and must be readable), but name nothing.
            for k in 0..nbanks {
                w.get(at + 2 + k)?;
            }
            Ok((VpSet::ALL, nbanks))
        }
        VP_SET_FORMAT_SPARSE_4K => {
            let mut s = VpSet::EMPTY;
            let mut k = 0;
            for bank in 0..VP_SET_MAX_BANKS {
                if valid >> bank & 1 == 1 {
                    s.banks[bank] = w.get(at + 2 + k)?;
                    k += 1;
                }
            }
            Ok((s, nbanks))
        }
        _ => Err(HV_STATUS_INVALID_PARAMETER),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast(q: &[u64], xmm: bool) -> Words<'static> {
        let mut regs = [0u64; 2 + XMM_INPUT_QWORDS];
        regs[..q.len()].copy_from_slice(q);
        Words::Fast {
            regs,
            avail: if xmm { regs.len() } else { 2 },
        }
    }

    #[test]
    fn sparse_banks_map_to_vp_indices() {
        // Banks 0 and 2 valid: VPs 1 and 3 of bank 0, VP 64*2+5 = 133 of bank 2.
        let w = fast(
            &[0, 0, VP_SET_FORMAT_SPARSE_4K, 0b101, 0b1010, 1 << 5],
            true,
        );
        let (s, n) = read_vp_set(&w, 2, 2).unwrap();
        assert_eq!(n, 2);
        assert_eq!(s.iter(200).collect::<Vec<_>>(), vec![1, 3, 133]);
        // A VM of 4 VPs: VP 133 names nothing there and is ignored.
        assert_eq!(s.iter(4).collect::<Vec<_>>(), vec![1, 3]);
        assert!(!s.contains(64) && s.contains(133));
    }

    #[test]
    fn all_format_and_mask() {
        let w = fast(&[0, 0, VP_SET_FORMAT_ALL, 0], true);
        let (s, n) = read_vp_set(&w, 2, 0).unwrap();
        assert_eq!((s, n), (VpSet::ALL, 0));
        assert_eq!(s.iter(3).count(), 3);
        assert_eq!(
            VpSet::from_mask(0b110).iter(64).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert!(VpSet::from_mask(1 << 5).is_empty_below(4));
    }

    #[test]
    fn bank_count_must_match_the_variable_header() {
        let w = fast(&[0, 0, VP_SET_FORMAT_SPARSE_4K, 0b11, 1, 1], true);
        assert_eq!(
            read_vp_set(&w, 2, 1),
            Err(HV_STATUS_INVALID_HYPERCALL_INPUT)
        );
        assert_eq!(
            read_vp_set(&w, 2, 3),
            Err(HV_STATUS_INVALID_HYPERCALL_INPUT)
        );
        // So for the ALL format too (KVM checks before looking at the format).
        let w = fast(&[0, 0, VP_SET_FORMAT_ALL, 0b1, 0], true);
        assert_eq!(
            read_vp_set(&w, 2, 0),
            Err(HV_STATUS_INVALID_HYPERCALL_INPUT)
        );
    }

    #[test]
    fn oversized_sets_do_not_fit_the_registers() {
        // 64 banks: a variable header of 64 qwords, far more than XMM0-5 hold.
        let w = fast(&[0, 0, VP_SET_FORMAT_SPARSE_4K, u64::MAX], true);
        assert_eq!(
            read_vp_set(&w, 2, 64),
            Err(HV_STATUS_INVALID_HYPERCALL_INPUT)
        );
        // 10 banks after the 4 header qwords fill all 14 register qwords exactly.
        let w = fast(&[0, 0, VP_SET_FORMAT_SPARSE_4K, 0x3ff], true);
        assert!(read_vp_set(&w, 2, 10).is_ok());
        let w = fast(&[0, 0, VP_SET_FORMAT_SPARSE_4K, 0x7ff], true);
        assert_eq!(
            read_vp_set(&w, 2, 11),
            Err(HV_STATUS_INVALID_HYPERCALL_INPUT)
        );
        // Without XMM input only RDX and R8 exist.
        let w = fast(&[0, VP_SET_FORMAT_ALL], false);
        assert_eq!(
            read_vp_set(&w, 1, 0),
            Err(HV_STATUS_INVALID_HYPERCALL_INPUT)
        );
    }

    #[test]
    fn unknown_format_is_an_invalid_parameter() {
        let w = fast(&[0, 0, 2, 0], true);
        assert_eq!(read_vp_set(&w, 2, 0), Err(HV_STATUS_INVALID_PARAMETER));
    }

    #[test]
    fn memory_sets_and_their_bounds() {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x2000)]).unwrap();
        let at = 0x1000u64;
        for (i, q) in [VP_SET_FORMAT_SPARSE_4K, 1 << 63, 0xf0].iter().enumerate() {
            mem.write_obj(*q, GuestAddress(at + 8 * i as u64)).unwrap();
        }
        let w = Words::Memory { mem: &mem, gpa: at };
        let (s, _) = read_vp_set(&w, 0, 1).unwrap();
        assert_eq!(
            s.iter(64 * 64).collect::<Vec<_>>(),
            vec![4036, 4037, 4038, 4039]
        );
        // The last bank past the end of RAM.
        let w = Words::Memory {
            mem: &mem,
            gpa: 0x2000 - 16,
        };
        mem.write_obj(1u64, GuestAddress(0x2000 - 8)).unwrap();
        mem.write_obj(0u64, GuestAddress(0x2000 - 16)).unwrap();
        assert_eq!(read_vp_set(&w, 0, 1), Err(HV_STATUS_INVALID_PARAMETER));
        // A GPA whose offset overflows.
        let w = Words::Memory {
            mem: &mem,
            gpa: u64::MAX - 7,
        };
        assert_eq!(w.get(1), Err(HV_STATUS_INVALID_PARAMETER));
    }
}
