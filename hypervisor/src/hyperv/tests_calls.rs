//! Dispatch of the flush, IPI, spin-wait and XMM-input hypercalls (issue 12).
use super::*;
use proptest::prelude::*;

const FAST: u64 = 1 << 16;

fn mem() -> GuestMemoryMmap {
    GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap()
}

fn call(input: u64, in_gpa: u64, out_gpa: u64) -> Call {
    Call {
        input,
        in_gpa,
        out_gpa,
    }
}

fn status(o: &Outcome) -> u16 {
    (o.rax & 0xffff) as u16
}

fn reps(o: &Outcome) -> u64 {
    (o.rax >> 32) & 0xfff
}

fn var_header(n: u64) -> u64 {
    n << 17
}

const OPTS: DispatchOptions = DispatchOptions {
    wrong_invalid_code_status: false,
    features: HvFeatures::ALL,
};

fn vps(a: &Option<Action>) -> Vec<u32> {
    match a {
        Some(Action::Flush(s)) | Some(Action::Ipi { targets: s, .. }) => s.iter(256).collect(),
        None => Vec::new(),
    }
}

fn xmm(q: &[u64]) -> Option<[u64; XMM_INPUT_QWORDS]> {
    let mut x = [0u64; XMM_INPUT_QWORDS];
    x[..q.len()].copy_from_slice(q);
    Some(x)
}

#[test]
fn flush_space_targets_its_processor_mask() {
    let m = mem();
    m.write_obj([0u64, 0, 0b101], GuestAddress(0x3000)).unwrap();
    let o = dispatch(&m, call(0x2, 0x3000, 0), OPTS);
    assert_eq!((status(&o), vps(&o.action)), (0, vec![0, 2]));
    // HV_FLUSH_ALL_PROCESSORS, and a mask of 0 (KVM's reading of Windows Server 2012).
    for (flags, mask) in [(1u64, 0b101u64), (0, 0)] {
        m.write_obj([0u64, flags, mask], GuestAddress(0x3000))
            .unwrap();
        let o = dispatch(&m, call(0x2, 0x3000, 0), OPTS);
        assert_eq!(o.action, Some(Action::Flush(VpSet::ALL)), "{flags} {mask}");
    }
    // An undefined flag: nothing is flushed.
    m.write_obj([0u64, 1 << 4, 1], GuestAddress(0x3000))
        .unwrap();
    let o = dispatch(&m, call(0x2, 0x3000, 0), OPTS);
    assert_eq!((status(&o), o.action), (5, None));
}

#[test]
fn fast_flush_needs_xmm_input_and_its_feature() {
    let m = mem();
    // RDX = AddressSpace, R8 = Flags, XMM0 low = ProcessorMask.
    let o = dispatch_xmm(&m, call(0x2 | FAST, 0, 0), OPTS, xmm(&[0b10]));
    assert_eq!((status(&o), vps(&o.action)), (0, vec![1]));
    let o = dispatch(&m, call(0x2 | FAST, 0, 0), OPTS);
    assert_eq!((status(&o), o.action), (3, None), "no XMM registers given");
    let mut no_xmm = OPTS;
    no_xmm
        .features
        .set("XmmRegistersForFastHypercallAvailable", false)
        .unwrap();
    let o = dispatch_xmm(&m, call(0x2 | FAST, 0, 0), no_xmm, xmm(&[0b10]));
    assert_eq!((status(&o), o.action), (3, None), "feature cleared");
    assert!(wants_xmm(0x2 | FAST, &OPTS.features));
    assert!(!wants_xmm(0x2 | FAST, &no_xmm.features));
    assert!(!wants_xmm(0x2, &OPTS.features), "memory input");
    assert!(!wants_xmm(0xb | FAST, &OPTS.features), "fits RDX/R8");
    assert!(wants_xmm(0x15 | FAST, &OPTS.features));
}

#[test]
fn fast_flush_list_reads_its_entries_from_xmm() {
    let m = mem();
    // Header: RDX, R8, XMM0 low; entries from XMM0 high: at most 11.
    let x = xmm(&[1, 0x1000, 0x2000, 0x3000]);
    let o = dispatch_xmm(&m, call(0x3 | FAST | 3 << 32, 0, 0), OPTS, x);
    assert_eq!((status(&o), reps(&o), vps(&o.action)), (0, 3, vec![0]));
    let o = dispatch_xmm(&m, call(0x3 | FAST | 11 << 32, 0, 0), OPTS, x);
    assert_eq!((status(&o), reps(&o)), (0, 11));
    let o = dispatch_xmm(&m, call(0x3 | FAST | 12 << 32, 0, 0), OPTS, x);
    assert_eq!((status(&o), reps(&o), o.action), (3, 0, None), "12 entries");
}

/// An Ex input block at 0x3000: AddressSpace, Flags, Format, ValidBankMask, banks.
fn ex_block(m: &GuestMemoryMmap, flags: u64, format: u64, valid: u64, banks: &[u64]) {
    m.write_obj([0u64, flags, format, valid], GuestAddress(0x3000))
        .unwrap();
    for (i, b) in banks.iter().enumerate() {
        m.write_obj(*b, GuestAddress(0x3020 + 8 * i as u64))
            .unwrap();
    }
}

#[test]
fn flush_ex_sparse_sets() {
    let m = mem();
    // Banks 0 and 1: VP 3 and VP 64.
    ex_block(&m, 0, 0, 0b11, &[1 << 3, 1]);
    let o = dispatch(&m, call(0x13 | var_header(2), 0x3000, 0), OPTS);
    assert_eq!((status(&o), vps(&o.action)), (0, vec![3, 64]));
    assert_eq!(o.name, "HvCallFlushVirtualAddressSpaceEx");
    // Variable header size disagreeing with the bank count.
    for vh in [0, 1, 3] {
        let o = dispatch(&m, call(0x13 | var_header(vh), 0x3000, 0), OPTS);
        assert_eq!((status(&o), o.action), (3, None), "var header {vh}");
    }
    // HV_GENERIC_SET_ALL; an unknown format.
    ex_block(&m, 0, 1, 0, &[]);
    let o = dispatch(&m, call(0x13, 0x3000, 0), OPTS);
    assert_eq!(o.action, Some(Action::Flush(VpSet::ALL)));
    ex_block(&m, 0, 7, 0, &[]);
    assert_eq!(status(&dispatch(&m, call(0x13, 0x3000, 0), OPTS)), 5);
    // 64 banks claimed, running past the end of RAM.
    let at = 0x10_0000 - 64;
    m.write_obj([0u64, 0, 0, u64::MAX], GuestAddress(at))
        .unwrap();
    let o = dispatch(&m, call(0x13 | var_header(64), at, 0), OPTS);
    assert_eq!((status(&o), o.action), (5, None));
    // Ex calls are gated by the Ex recommendation too.
    for name in [
        "UseExProcessorMasks",
        "UseHypercallForRemoteFlushAndLocalFlushEntire",
    ] {
        let mut opts = OPTS;
        opts.features.set(name, false).unwrap();
        ex_block(&m, 0, 1, 0, &[]);
        assert_eq!(
            status(&dispatch(&m, call(0x13, 0x3000, 0), opts)),
            6,
            "{name}"
        );
        assert_eq!(
            status(&dispatch(&m, call(0x14, 0x3000, 0), opts)),
            6,
            "{name}"
        );
    }
}

#[test]
fn flush_list_ex_reps_follow_the_banks() {
    let m = mem();
    ex_block(&m, 0, 0, 0b100, &[0b1, 0x40_0000, 0x40_1000, 0x40_2000]);
    let o = dispatch(&m, call(0x14 | var_header(1) | 3 << 32, 0x3000, 0), OPTS);
    assert_eq!((status(&o), reps(&o), vps(&o.action)), (0, 3, vec![128]));
    let o = dispatch(
        &m,
        call(0x14 | var_header(1) | 3 << 32 | 2 << 48, 0x3000, 0),
        OPTS,
    );
    assert_eq!((status(&o), reps(&o)), (0, 3), "rep start 2");
    // Partial completion: header + bank + 2 entries fit below the top of RAM, the 3rd not;
    // the reps done are flushed.
    let at = 0x10_0000 - 48;
    m.write_obj([0u64, 1, 0, 1, 1, 0x40_0000], GuestAddress(at))
        .unwrap();
    let o = dispatch(&m, call(0x14 | var_header(1) | 3 << 32, at, 0), OPTS);
    assert_eq!((status(&o), reps(&o)), (5, 1));
    assert_eq!(o.action, Some(Action::Flush(VpSet::ALL)));
    // Resuming at the failed rep with nothing done: no flush.
    let o = dispatch(
        &m,
        call(0x14 | var_header(1) | 3 << 32 | 1 << 48, at, 0),
        OPTS,
    );
    assert_eq!((status(&o), reps(&o), o.action), (5, 1, None));
}

#[test]
fn send_ipi_vectors_and_masks() {
    let m = mem();
    // Fast: RDX = vector, R8 = mask.
    let o = dispatch(&m, call(0xb | FAST, 0xf3, 0b11), OPTS);
    assert_eq!(
        (status(&o), o.action),
        (
            0,
            Some(Action::Ipi {
                vector: 0xf3,
                targets: VpSet::from_mask(0b11)
            })
        )
    );
    assert_eq!(o.name, "HvCallSendSyntheticClusterIpi");
    for bad in [0u64, 15, 0x100, 0xffff_ffff] {
        let o = dispatch(&m, call(0xb | FAST, bad, 1), OPTS);
        assert_eq!((status(&o), o.action), (5, None), "vector {bad:#x}");
    }
    for v in [0x10u64, 0xff] {
        assert_eq!(status(&dispatch(&m, call(0xb | FAST, v, 1), OPTS)), 0);
    }
    // TargetVtl / padding set.
    let o = dispatch(&m, call(0xb | FAST, 0xf3 | 1 << 32, 1), OPTS);
    assert_eq!(status(&o), 3);
    // Memory form.
    m.write_obj([0x40u64, 1 << 2], GuestAddress(0x3000))
        .unwrap();
    let o = dispatch(&m, call(0xb, 0x3000, 0), OPTS);
    assert_eq!(vps(&o.action), vec![2]);
    // Gate.
    let mut opts = OPTS;
    opts.features.set("UseSyntheticClusterIpi", false).unwrap();
    assert_eq!(status(&dispatch(&m, call(0xb | FAST, 0xf3, 1), opts)), 6);
}

#[test]
fn send_ipi_ex_sets() {
    let m = mem();
    // Fast with XMM: RDX = vector, R8 = Format, XMM0 low = ValidBankMask, then banks.
    let o = dispatch_xmm(
        &m,
        call(0x15 | FAST | var_header(1), 0xf3, 0),
        OPTS,
        xmm(&[0b10, 1 << 4]),
    );
    assert_eq!((status(&o), vps(&o.action)), (0, vec![68]));
    let o = dispatch(&m, call(0x15 | FAST | var_header(1), 0xf3, 0), OPTS);
    assert_eq!(status(&o), 3, "Ex set without XMM input");
    // All, from memory: vector, Format, ValidBankMask.
    m.write_obj([0x30u64, 1, 0], GuestAddress(0x3000)).unwrap();
    let o = dispatch(&m, call(0x15, 0x3000, 0), OPTS);
    assert_eq!(
        o.action,
        Some(Action::Ipi {
            vector: 0x30,
            targets: VpSet::ALL
        })
    );
    // Malformed: bank count vs variable header; bad vector after a good set.
    m.write_obj([0x30u64, 0, 0b1, 1], GuestAddress(0x3000))
        .unwrap();
    assert_eq!(status(&dispatch(&m, call(0x15, 0x3000, 0), OPTS)), 3);
    assert_eq!(
        status(&dispatch(&m, call(0x15 | var_header(1), 0x3000, 0), OPTS)),
        0
    );
    m.write_obj(0x0fu64, GuestAddress(0x3000)).unwrap();
    assert_eq!(
        status(&dispatch(&m, call(0x15 | var_header(1), 0x3000, 0), OPTS)),
        5
    );
    // Not a rep call; not valid on calls without a variable header.
    assert_eq!(
        status(&dispatch(&m, call(0x15 | 1 << 32, 0x3000, 0), OPTS)),
        3
    );
    assert_eq!(
        status(&dispatch(
            &m,
            call(0xb | FAST | var_header(1), 0xf3, 1),
            OPTS
        )),
        3
    );
}

#[test]
fn long_spin_wait_is_gated_by_the_retry_count() {
    let m = mem();
    for ebx in [0u32, u32::MAX] {
        let mut opts = OPTS;
        opts.features.recommend_ebx = ebx;
        assert_eq!(
            status(&dispatch(&m, call(0x8 | FAST, 1, 0), opts)),
            6,
            "{ebx:#x}"
        );
    }
    let mut opts = OPTS;
    opts.features.recommend_ebx = 1;
    assert_eq!(status(&dispatch(&m, call(0x8 | FAST, 1, 0), opts)), 0);
    let mut f = HvFeatures::ALL;
    f.set("LongSpinWaitRetries", false).unwrap();
    assert_eq!(f.recommend_ebx, 0);
}

proptest! {
    #[test]
    fn dispatch_xmm_never_panics(code in prop::sample::select(vec![2u64, 3, 0xb, 0x13, 0x14, 0x15]),
                                 fast: bool, vh in 0u64..80, rc in 0u64..4096,
                                 a in any::<u64>(), b in any::<u64>(),
                                 x in prop::array::uniform12(any::<u64>())) {
        let m = mem();
        let input = code | (u64::from(fast) << 16) | vh << 17 | rc << 32;
        let o = dispatch_xmm(&m, call(input, a & 0xf_fff8, b), OPTS, Some(x));
        prop_assert!(o.rax >> 44 == 0 && (o.rax >> 16) & 0xffff == 0);
        prop_assert!(status(&o) == 0 || o.action.is_none() || code == 3 || code == 0x14);
    }
}
