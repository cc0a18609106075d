//! Hyper-V hypercall input decoding and dispatch: the input value (RCX), the input and
//! output GPAs (RDX, R8) and the guest memory they point into all come from the guest.
#![no_main]
use hypervisor::hyperv::{self, Call, DispatchOptions};
use std::sync::OnceLock;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// Small, so that GPAs often fall outside it.
const MEM: usize = 0x4000;

fn mem() -> &'static GuestMemoryMmap {
    static MEM_: OnceLock<GuestMemoryMmap> = OnceLock::new();
    MEM_.get_or_init(|| GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MEM)]).expect("memory"))
}

fn u64_at(d: &[u8], i: usize) -> u64 {
    let mut b = [0u8; 8];
    for (k, x) in b.iter_mut().enumerate() {
        *x = d.get(i * 8 + k).copied().unwrap_or(0);
    }
    u64::from_le_bytes(b)
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let input = u64_at(data, 0);
    // GPAs mostly inside the small memory, sometimes anywhere.
    let gpa = |v: u64| {
        if v >> 63 == 0 {
            v % (MEM as u64 + 0x100)
        } else {
            v
        }
    };
    let call = Call {
        input,
        in_gpa: gpa(u64_at(data, 1)),
        out_gpa: gpa(u64_at(data, 2)),
    };
    let m = mem();
    let rest = data.get(24..).unwrap_or(&[]);
    let n = rest.len().min(MEM);
    m.write_slice(&rest[..n], GuestAddress(0))
        .expect("in range");
    let _ = hyperv::decode(input);
    let _ = hyperv::call_name(input as u16);
    let _ = hyperv::dispatch(m, call, DispatchOptions::default());
});
