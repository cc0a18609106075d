use super::*;

fn d(b: &[u8]) -> Result<Action, DecodeError> {
    decode(b, CpuMode::Long64)
}

#[test]
fn simple_instructions() {
    assert_eq!(d(&[0xcc, 0x90]), Ok(Action::Breakpoint { len: 1 }));
    assert_eq!(d(&[0x9b]), Ok(Action::Skip { len: 1 }));
    assert_eq!(
        d(&[0x0f, 0x01, 0xca]),
        Ok(Action::SetAc { set: false, len: 3 })
    );
    assert_eq!(
        d(&[0x0f, 0x01, 0xcb]),
        Ok(Action::SetAc { set: true, len: 3 })
    );
}

#[test]
fn movd_xmm15_ecx_the_last_failure_seen() {
    assert_eq!(
        d(&[0x66, 0x44, 0x0f, 0x6e, 0xf9]),
        Ok(Action::MovToXmm {
            xmm: 15,
            src: Operand::Reg(1),
            wide: false,
            len: 5
        })
    );
    // movq rax, xmm0 (66 48 0f 7e c0); movq xmm1, r9 (66 49 0f 6e c9).
    assert_eq!(
        d(&[0x66, 0x48, 0x0f, 0x7e, 0xc0]),
        Ok(Action::MovFromXmm {
            xmm: 0,
            dst: Operand::Reg(0),
            wide: true,
            len: 5
        })
    );
    assert_eq!(
        d(&[0x66, 0x49, 0x0f, 0x6e, 0xc9]),
        Ok(Action::MovToXmm {
            xmm: 1,
            src: Operand::Reg(9),
            wide: true,
            len: 5
        })
    );
}

#[test]
fn mxcsr_memory_operands() {
    // ldmxcsr [rsp+0x4] = 0f ae 54 24 04
    let Ok(Action::Ldmxcsr { mem, len: 5 }) = d(&[0x0f, 0xae, 0x54, 0x24, 0x04]) else {
        panic!("ldmxcsr [rsp+4]")
    };
    assert_eq!((mem.base, mem.index, mem.disp), (Some(4), None, 4));
    // stmxcsr [rip+0x10] = 0f ae 1d 10 00 00 00
    let Ok(Action::Stmxcsr { mem, len: 7 }) = d(&[0x0f, 0xae, 0x1d, 0x10, 0, 0, 0]) else {
        panic!("stmxcsr [rip+0x10]")
    };
    assert!(mem.rip_relative);
    assert_eq!(mem.disp, 0x10);
    // ldmxcsr gs:[r12 + r13*8 - 8] = 65 43 0f ae 54 ec f8
    let Ok(Action::Ldmxcsr { mem, len: 7 }) = d(&[0x65, 0x43, 0x0f, 0xae, 0x54, 0xec, 0xf8]) else {
        panic!("ldmxcsr gs:[r12+r13*8-8]")
    };
    assert_eq!(
        (mem.seg, mem.base, mem.index, mem.disp),
        (Seg::Gs, Some(12), Some((13, 8)), -8)
    );
}

#[test]
fn linear_addresses() {
    let regs = kvm_regs {
        rip: 0x1000,
        rsp: 0x8000,
        r12: 0x100,
        r13: 2,
        ..Default::default()
    };
    let mut sregs = kvm_sregs::default();
    sregs.gs.base = 0xffff_8880_0000_0000;
    let Ok(Action::Stmxcsr { mem, len }) = d(&[0x0f, 0xae, 0x1d, 0x10, 0, 0, 0]) else {
        panic!()
    };
    assert_eq!(linear(&mem, &regs, &sregs, CpuMode::Long64, len), 0x1017);
    let Ok(Action::Ldmxcsr { mem, len }) = d(&[0x65, 0x43, 0x0f, 0xae, 0x54, 0xec, 0xf8]) else {
        panic!()
    };
    assert_eq!(
        linear(&mem, &regs, &sregs, CpuMode::Long64, len),
        0xffff_8880_0000_0108
    );
}

#[test]
fn refuses_what_it_does_not_know() {
    assert!(matches!(
        d(&[0xf3, 0x0f, 0xb8, 0xc0]),
        Err(DecodeError::Unsupported(_))
    ));
    assert!(matches!(
        d(&[0x0f, 0xae, 0xd0]),
        Err(DecodeError::Unsupported(_))
    ));
    assert_eq!(d(&[0x66, 0x0f]), Err(DecodeError::Truncated));
    assert_eq!(d(&[]), Err(DecodeError::Truncated));
    assert!(decode(&[0xcc], CpuMode::Other).is_err());
    // 32-bit mode: 0x44 is `inc esp`, not REX.
    assert!(decode(&[0x44, 0x0f, 0x6e, 0xf9], CpuMode::Protected32).is_err());
}

#[test]
fn failure_data_layout() {
    // flags = 1 (bytes valid); data[1] low byte = 5, then 66 44 0f 6e f9.
    let w1 = u64::from_le_bytes([5, 0x66, 0x44, 0x0f, 0x6e, 0xf9, 0, 0]);
    assert_eq!(
        failure_bytes(&[1, w1, 0]),
        Some(vec![0x66, 0x44, 0x0f, 0x6e, 0xf9])
    );
    assert_eq!(failure_bytes(&[0, w1, 0]), None);
    assert_eq!(failure_bytes(&[1]), None);
}

#[test]
fn cmdline_fragment() {
    let c = with_nested_cmdline("console=ttyS0", Some(2_450_000));
    assert!(c.starts_with("console=ttyS0 noxsave clearcpuid="));
    assert!(c.contains("smap") && c.contains("popcnt") && c.contains("cx16"));
    assert!(c.ends_with(" tsc_early_khz=2450000 tsc=reliable"), "{c}");
    assert!(NESTED_CMDLINE.iter().all(|i| !i.prevents.is_empty()));
    assert_eq!(with_nested_cmdline("", None), nested_cmdline());
    assert_eq!(tsc_options(Some(0)), "");
}
