use super::*;
use proptest::prelude::*;

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

const OPTS: DispatchOptions = DispatchOptions {
    wrong_invalid_code_status: false,
    features: HvFeatures::ALL,
};

fn env(vp_index: u32, time_ref: u64) -> VpEnv {
    VpEnv {
        vp_index,
        time_ref,
        vp_runtime: 0,
    }
}

#[test]
fn decode_fields() {
    let v = 0x0003_0000_0000_0000u64 | (5u64 << 32) | (1 << 16) | (2 << 17) | 0x1234;
    assert_eq!(
        decode(v),
        Ok(Input {
            code: 0x1234,
            fast: true,
            var_header_qwords: 2,
            rep_count: 5,
            rep_start: 3
        })
    );
    for bit in [27, 31, 44, 47, 60, 63] {
        assert_eq!(decode(1u64 << bit), Err(3), "bit {bit}");
    }
}

proptest! {
    #[test]
    fn decode_roundtrip(code in 0u16.., fast: bool, vh in 0u16..1024, rc in 0u16..4096, rs in 0u16..4096) {
        let v = u64::from(code) | (u64::from(fast) << 16) | (u64::from(vh) << 17)
            | (u64::from(rc) << 32) | (u64::from(rs) << 48);
        prop_assert_eq!(decode(v), Ok(Input { code, fast, var_header_qwords: vh, rep_count: rc, rep_start: rs }));
    }

    #[test]
    fn decode_rejects_any_reserved_bit(v in any::<u64>()) {
        prop_assert_eq!(decode(v).is_err(), v & INPUT_RSVD_MASK != 0);
    }

    #[test]
    fn dispatch_never_panics(input in any::<u64>(), a in any::<u64>(), b in any::<u64>()) {
        let m = mem();
        let o = dispatch(&m, call(input, a, b), OPTS);
        prop_assert!(o.rax >> 44 == 0 && (o.rax >> 16) & 0xffff == 0);
    }
}

#[test]
fn unknown_code_and_fault_injection() {
    let m = mem();
    let o = dispatch(&m, call(0x7777, 0, 0), OPTS);
    assert_eq!(status(&o), 2);
    assert_eq!(o.name, "invalid(0x7777)");
    let o = dispatch(
        &m,
        call(0x7777, 0, 0),
        DispatchOptions {
            wrong_invalid_code_status: true,
            ..OPTS
        },
    );
    assert_eq!(status(&o), 5);
}

#[test]
fn extended_calls_denied_without_their_privilege() {
    let m = mem();
    // HvExtCallQueryCapabilities and the last extended code: denied (hyperv_features 19).
    for code in [0x8001u64, 0x8041] {
        let o = dispatch(&m, call(code | 1 << 16, 0, 0), OPTS);
        assert_eq!(status(&o), 6, "{code:#x}");
    }
    // Past the range, and with the privilege (none implemented): unknown call.
    assert_eq!(status(&dispatch(&m, call(0x8042, 0, 0), OPTS)), 2);
    let mut features = HvFeatures::ALL;
    features.set("EnableExtendedHypercalls", true).unwrap();
    let o = dispatch(&m, call(0x8001, 0, 0), DispatchOptions { features, ..OPTS });
    assert_eq!(status(&o), 2);
}

#[test]
fn notify_long_spin_wait() {
    let m = mem();
    assert_eq!(status(&dispatch(&m, call(0x8, 0x1000, 0x2000), OPTS)), 0);
    assert_eq!(
        status(&dispatch(&m, call(0x8 | 1 << 16, 7, 9), OPTS)),
        0,
        "fast: no GPA checks"
    );
    assert_eq!(status(&dispatch(&m, call(0x8, 0x1004, 0x2000), OPTS)), 4);
    assert_eq!(status(&dispatch(&m, call(0x8, 0x1000, 0x2001), OPTS)), 4);
    assert_eq!(status(&dispatch(&m, call(0x8, 0x1_0000_0000, 0), OPTS)), 5);
    assert_eq!(
        status(&dispatch(&m, call(0x8 | 1 << 32, 0x1000, 0), OPTS)),
        3,
        "rep on simple"
    );
    assert_eq!(
        status(&dispatch(&m, call(0x8 | 1 << 27, 0x1000, 0), OPTS)),
        3,
        "rsvdz"
    );
}

#[test]
fn flush_calls_read_their_input() {
    let m = mem();
    m.write_obj([0u64, 0x3, 0x1], GuestAddress(0x3000)).unwrap();
    m.write_obj([0x1000u64, 0x2000, 0x3000], GuestAddress(0x3018))
        .unwrap();
    assert_eq!(status(&dispatch(&m, call(0x2, 0x3000, 0), OPTS)), 0);
    let o = dispatch(&m, call(0x3 | 3 << 32, 0x3000, 0), OPTS);
    assert_eq!(o.rax, 3 << 32);
    assert_eq!(o.name, "HvCallFlushVirtualAddressList");
    let o = dispatch(&m, call(0x3 | 3 << 32 | 1 << 48, 0x3000, 0), OPTS);
    assert_eq!(o.rax, 3 << 32, "reps completed counts from rep start");
    assert_eq!(
        status(&dispatch(
            &m,
            call(0x3 | 1 << 32 | 2 << 48, 0x3000, 0),
            OPTS
        )),
        3
    );
    // A list running past the end of memory completes the reps that fit.
    let o = dispatch(&m, call(0x3 | 4 << 32, 0x10_0000 - 40, 0), OPTS);
    assert_eq!(o.rax, 5 | (2 << 32));
    m.write_obj(0x100u64, GuestAddress(0x3008)).unwrap();
    assert_eq!(
        status(&dispatch(&m, call(0x2, 0x3000, 0), OPTS)),
        5,
        "bad flags"
    );
}

#[test]
fn debug_data() {
    let m = mem();
    m.write_obj(5u32, GuestAddress(0x4000)).unwrap();
    m.write_obj(0u32, GuestAddress(0x4004)).unwrap();
    m.write_slice(b"hello", GuestAddress(0x4008)).unwrap();
    m.write_obj(0xffff_ffffu64, GuestAddress(0x5000)).unwrap();
    let o = dispatch(&m, call(0x69, 0x4000, 0x5000), OPTS);
    assert_eq!((status(&o), o.console.as_slice()), (0, &b"hello"[..]));
    assert_eq!(m.read_obj::<u64>(GuestAddress(0x5000)).unwrap(), 0);
    m.write_obj(5000u32, GuestAddress(0x4000)).unwrap();
    assert_eq!(status(&dispatch(&m, call(0x69, 0x4000, 0x5000), OPTS)), 5);
    assert_eq!(
        status(&dispatch(&m, call(0x69 | 1 << 16, 0x4000, 0x5000), OPTS)),
        3
    );
    m.write_obj([16u32, 0], GuestAddress(0x4000)).unwrap();
    assert_eq!(status(&dispatch(&m, call(0x6a, 0x4000, 0x5000), OPTS)), 0);
    assert_eq!(
        status(&dispatch(&m, call(0x6a, 0x4000, 0x20_0000), OPTS)),
        5
    );
}

#[test]
fn msrs() {
    let mut p = Partition::default();
    let ok = |gpa: u64| gpa < 0x10_0000;
    assert_eq!(p.wrmsr(MSR_HYPERCALL, 0x5001, 0, ok), Ok(MsrWrite::Done));
    assert_eq!(
        p.rdmsr(MSR_HYPERCALL, &env(0, 0)),
        Ok(0),
        "ignored before GUEST_OS_ID"
    );
    p.wrmsr(MSR_GUEST_OS_ID, 0x8100_0000_0000_0001, 0, ok)
        .unwrap();
    assert_eq!(
        p.rdmsr(MSR_GUEST_OS_ID, &env(0, 0)),
        Ok(0x8100_0000_0000_0001)
    );
    assert_eq!(
        p.wrmsr(MSR_HYPERCALL, 0x5001, 0, ok),
        Ok(MsrWrite::FillHypercallPage(0x5000))
    );
    assert_eq!(p.hypercall_page_gpa(), Some(0x5000));
    assert_eq!(p.wrmsr(MSR_HYPERCALL, 0x20_0001, 0, ok), Err(Gp));
    assert_eq!(p.rdmsr(MSR_VP_INDEX, &env(3, 0)), Ok(3));
    assert_eq!(p.wrmsr(MSR_VP_INDEX, 3, 0, ok), Err(Gp));
    assert_eq!(p.rdmsr(MSR_TIME_REF_COUNT, &env(0, 42)), Ok(42));
    assert_eq!(p.wrmsr(MSR_TIME_REF_COUNT, 1, 0, ok), Err(Gp));
    assert_eq!(p.rdmsr(0x4000_0011, &env(0, 0)), Err(Gp));
    // Lock, then writes are ignored.
    p.wrmsr(MSR_HYPERCALL, 0x5003, 0, ok).unwrap();
    p.wrmsr(MSR_HYPERCALL, 0x6001, 0, ok).unwrap();
    assert_eq!(p.hypercall_page_gpa(), Some(0x5000));
}

fn part() -> Partition {
    Partition::new(
        HvFeatures::ALL,
        2,
        TscInfo {
            hz: 2_000_000_000,
            offset: 0,
            reliable: true,
            base: 4_000_000_000,
        },
    )
}

fn without(reg: crate::abi::hv::FeatureReg, mask: u32) -> HvFeatures {
    let mut f = HvFeatures::ALL;
    match reg {
        crate::abi::hv::FeatureReg::PrivEax => f.priv_eax &= !mask,
        crate::abi::hv::FeatureReg::PrivEbx => f.priv_ebx &= !mask,
        crate::abi::hv::FeatureReg::FeatEdx => f.features_edx &= !mask,
        crate::abi::hv::FeatureReg::RecommendEax => f.recommend_eax &= !mask,
        // A count, not bits: "cleared" is no recommendation to notify at all.
        crate::abi::hv::FeatureReg::RecommendEbx => f.recommend_ebx = 0,
    }
    f
}

#[test]
fn every_msr_is_gated_by_its_privilege() {
    let ok = |gpa: u64| gpa < 0x10_0000;
    for &(first, last, reg, mask) in MSR_GATES {
        for msr in [first, last] {
            let mut p = part();
            assert!(
                p.rdmsr(msr, &env(0, 0)).is_ok(),
                "{msr:#x} readable when granted"
            );
            p.features = without(reg, mask);
            assert_eq!(
                p.rdmsr(msr, &env(0, 0)),
                Err(Gp),
                "rdmsr {msr:#x} without privilege"
            );
            assert_eq!(
                p.wrmsr(msr, 0, 0, ok),
                Err(Gp),
                "wrmsr {msr:#x} without privilege"
            );
        }
    }
}

#[test]
fn every_gated_call_is_denied_without_its_privilege() {
    let m = mem();
    for &(code, reg, mask) in CALL_GATES {
        let opts = DispatchOptions {
            features: without(reg, mask),
            ..OPTS
        };
        let input = u64::from(code);
        assert_eq!(
            status(&dispatch(&m, call(input, 0x1000, 0x2000), opts)),
            6,
            "{code:#x}"
        );
        assert_ne!(
            status(&dispatch(&m, call(input, 0x1000, 0x2000), OPTS)),
            6,
            "{code:#x}"
        );
    }
}

#[test]
fn post_message_and_signal_event() {
    let m = mem();
    m.write_obj([1u32, 0, 1, 16], GuestAddress(0x4000)).unwrap();
    assert_eq!(status(&dispatch(&m, call(0x5c, 0x4000, 0), OPTS)), 0x12);
    m.write_obj(241u32, GuestAddress(0x400c)).unwrap();
    assert_eq!(status(&dispatch(&m, call(0x5c, 0x4000, 0), OPTS)), 5);
    assert_eq!(status(&dispatch(&m, call(0x5c | 1 << 16, 1, 0), OPTS)), 3);
    assert_eq!(
        status(&dispatch(&m, call(0x5d | 1 << 16, 7, 0), OPTS)),
        0x12
    );
    assert_eq!(
        status(&dispatch(&m, call(0x5d | 1 << 16, 7 | 1 << 48, 0), OPTS)),
        3
    );
}

#[test]
fn reset_crash_and_read_only_msrs() {
    let ok = |gpa: u64| gpa < 0x10_0000;
    let mut p = part();
    assert_eq!(p.wrmsr(MSR_RESET, 1, 0, ok), Ok(MsrWrite::Reset));
    assert_eq!(p.wrmsr(MSR_RESET, 2, 0, ok), Err(Gp));
    assert_eq!(p.wrmsr(MSR_RESET, 0, 0, ok), Ok(MsrWrite::Done));
    for i in 0..5 {
        p.wrmsr(MSR_CRASH_P0 + i, u64::from(i) + 10, 0, ok).unwrap();
    }
    assert_eq!(p.rdmsr(MSR_CRASH_CTL, &env(0, 0)), Ok(1 << 63));
    assert_eq!(p.wrmsr(MSR_CRASH_CTL, 1, 0, ok), Err(Gp));
    assert_eq!(
        p.wrmsr(MSR_CRASH_CTL, 1 << 63, 0, ok),
        Ok(MsrWrite::Crash([10, 11, 12, 13, 14]))
    );
    assert!(crash_reason(&[10, 11, 12, 13, 14]).starts_with("guest crash"));
    assert!(crash_reason(&[10, 11, 12, 13, 14]).contains("P4=0xe"));
    assert_eq!(p.rdmsr(MSR_TSC_FREQUENCY, &env(0, 0)), Ok(2_000_000_000));
    assert_eq!(p.rdmsr(MSR_APIC_FREQUENCY, &env(0, 0)), Ok(1_000_000_000));
    let e = VpEnv {
        vp_runtime: 77,
        ..env(1, 5)
    };
    assert_eq!(p.rdmsr(MSR_VP_RUNTIME, &e), Ok(77));
    for msr in [
        MSR_VP_RUNTIME,
        MSR_TSC_FREQUENCY,
        MSR_APIC_FREQUENCY,
        MSR_SVERSION,
        MSR_GUEST_IDLE,
    ] {
        assert_eq!(p.wrmsr(msr, 0, 0, ok), Err(Gp), "{msr:#x}");
    }
    assert_eq!(p.rdmsr(MSR_GUEST_IDLE, &env(0, 0)), Ok(0));
}

#[test]
fn overlay_pages_and_synic() {
    let ok = |gpa: u64| gpa < 0x10_0000;
    let mut p = part();
    assert_eq!(
        p.wrmsr(MSR_VP_ASSIST_PAGE, 0x5001, 1, ok),
        Ok(MsrWrite::ZeroPage(0x5000))
    );
    assert_eq!(p.rdmsr(MSR_VP_ASSIST_PAGE, &env(1, 0)), Ok(0x5001));
    assert_eq!(p.rdmsr(MSR_VP_ASSIST_PAGE, &env(0, 0)), Ok(0), "per VP");
    assert_eq!(
        p.wrmsr(MSR_VP_ASSIST_PAGE, 0x5003, 1, ok),
        Err(Gp),
        "reserved"
    );
    assert_eq!(p.wrmsr(MSR_SIMP, 0x20_0001, 0, ok), Err(Gp), "outside RAM");
    assert_eq!(
        p.wrmsr(MSR_SIMP, 0x20_0000, 0, ok),
        Ok(MsrWrite::Done),
        "disabled: any GPA"
    );
    assert_eq!(
        p.wrmsr(MSR_SIEFP, 0x6001, 0, ok),
        Ok(MsrWrite::ZeroPage(0x6000))
    );
    assert_eq!(p.wrmsr(MSR_SIMP, 0x20_0000, 5, ok), Err(Gp), "no VP 5");
    assert_eq!(p.rdmsr(MSR_SINT0 + 3, &env(0, 0)), Ok(SINT_MASKED));
    assert_eq!(
        p.wrmsr(MSR_SINT0, 0x0f, 0, ok),
        Err(Gp),
        "vector < 16 unmasked"
    );
    assert_eq!(
        p.wrmsr(MSR_SINT0, 0x0f | SINT_MASKED, 0, ok),
        Ok(MsrWrite::Done)
    );
    assert_eq!(
        p.wrmsr(MSR_SINT15, 0x40 | 1 << 19, 0, ok),
        Err(Gp),
        "reserved"
    );
    assert_eq!(
        p.wrmsr(MSR_SINT15, 0x40 | SINT_AUTO_EOI | SINT_POLLING, 0, ok),
        Ok(MsrWrite::Done)
    );
    assert_eq!(
        p.rdmsr(MSR_SINT15, &env(0, 0)),
        Ok(0x40 | SINT_AUTO_EOI | SINT_POLLING)
    );
    assert_eq!(p.wrmsr(MSR_SCONTROL, 2, 0, ok), Err(Gp));
    assert_eq!(p.wrmsr(MSR_SCONTROL, 1, 0, ok), Ok(MsrWrite::Done));
    assert_eq!(p.rdmsr(MSR_SVERSION, &env(0, 0)), Ok(1));
}

#[test]
fn reference_tsc_page_agrees_with_time_ref_count() {
    let ok = |gpa: u64| gpa < 0x10_0000;
    let mut p = part();
    let Ok(MsrWrite::TscPage(gpa, seq, scale, offset)) = p.wrmsr(MSR_REFERENCE_TSC, 0x7001, 0, ok)
    else {
        panic!("no TSC page");
    };
    assert_eq!((gpa, seq), (0x7000, 1));
    assert_eq!(
        p.tsc.ref_time(4_000_000_000),
        0,
        "counts from partition creation"
    );
    for tsc in [4_000_000_000u64, 6_000_000_000, 1 << 50] {
        let page =
            (((u128::from(tsc) * u128::from(scale)) >> 64) as u64).wrapping_add_signed(offset);
        assert_eq!(page, p.tsc.ref_time(tsc));
    }
    assert_eq!(
        p.tsc.ref_time(6_000_000_000),
        10_000_000,
        "1 s later at 2 GHz"
    );
    let Ok(MsrWrite::TscPage(_, seq2, ..)) = p.wrmsr(MSR_REFERENCE_TSC, 0x7001, 0, ok) else {
        panic!("no TSC page")
    };
    assert_eq!(seq2, 2, "a new sequence on re-enable");
    p.tsc.reliable = false;
    let Ok(MsrWrite::TscPage(_, seq3, ..)) = p.wrmsr(MSR_REFERENCE_TSC, 0x7001, 0, ok) else {
        panic!("no TSC page")
    };
    assert_eq!(seq3, 0, "unreliable TSC: use the MSR");
    assert_eq!(p.wrmsr(MSR_REFERENCE_TSC, 0x7011, 0, ok), Err(Gp));
    assert_eq!(p.wrmsr(MSR_REFERENCE_TSC, 0x20_0001, 0, ok), Err(Gp));
    assert_eq!(p.rdmsr(MSR_REFERENCE_TSC, &env(0, 0)), Ok(0x7001));
}

#[test]
fn page_code_layout() {
    let p = hypercall_page();
    // `out 0xf6, eax` at the recorded offset, then `ret`, then int3 padding.
    let o = HYPERCALL_OUT_OFFSET as usize;
    assert_eq!(
        &p[o..o + 3],
        &[0xe7, crate::layout::HV_HYPERCALL_PORT as u8, 0xc3]
    );
    assert_eq!(p[3], 0xcc);
    assert_eq!(p[4095], 0xcc);
}
