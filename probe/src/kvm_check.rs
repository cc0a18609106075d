//! The KVM functional check: open /dev/kvm, read the API version and capabilities, run a
//! micro-guest (the same 64-bit guest as `shared/tools/kvm-floor.c`) and measure
//! - VM creation (KVM_CREATE_VM + memory + vCPU + first run to HLT),
//! - one port-I/O exit to user space and back,
//! - a 2-instruction loop in guest ring 0 and in guest ring 3.
//!
//! Ring 0 far slower than ring 3 means guest supervisor code is emulated (nested,
//! software-assisted virtualization); with VT-x/AMD-V both run at native speed.
use std::path::Path;
use std::time::Instant;

use kvm_bindings::{kvm_regs, kvm_segment, kvm_userspace_memory_region};
use kvm_ioctls::{Cap, Kvm, VcpuExit, VcpuFd};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

use crate::raw::KvmCheck;

const MEM_SIZE: usize = 4 << 20;
const CODE_ADDR: u64 = 0x10000;

/// Guest code, 64-bit, at 0x10000. In: rbx = loop count, r12 = 1 to run the loop in ring 3,
/// r13 = number of port-0x10 exits. After the loop it writes port 0x11 (loop done), then
/// r13 times port 0x10, then port 0x12 (done) and HLT (ring 0 only).
const GUEST: &[u8] = &[
    0x4d, 0x85, 0xe4, // test r12,r12
    0x74, 0x18, // jz work
    0x6a, 0x23, // push 0x23 (ss)
    0x68, 0x00, 0x90, 0x00, 0x00, // push 0x9000 (rsp)
    0x68, 0x02, 0x30, 0x00, 0x00, // push 0x3002 (rflags, IOPL=3)
    0x6a, 0x1b, // push 0x1b (cs)
    0x48, 0x8d, 0x05, 0x03, 0x00, 0x00, 0x00, // lea rax,[rip+3]
    0x50, // push rax
    0x48, 0xcf, // iretq
    // work:
    0x48, 0x89, 0xd9, // mov rcx,rbx
    0x48, 0xff, 0xc9, // 1: dec rcx
    0x75, 0xfb, // jnz 1b
    0x66, 0xba, 0x11, 0x00, // mov dx,0x11
    0xee, // out dx,al
    0x66, 0xba, 0x10, 0x00, // mov dx,0x10
    0x4d, 0x85, 0xed, // 2: test r13,r13
    0x74, 0x06, // jz 3f
    0xee, // out dx,al
    0x49, 0xff, 0xcd, // dec r13
    0xeb, 0xf5, // jmp 2b
    0x66, 0xba, 0x12, 0x00, // 3: mov dx,0x12
    0xee, // out dx,al
    0xf4, // hlt
];

/// Capabilities recorded in the report: the ones the hvcert hypervisor uses or would use.
fn caps() -> Vec<(&'static str, Cap)> {
    vec![
        ("user_memory", Cap::UserMemory),
        ("irqchip", Cap::Irqchip),
        ("pit2", Cap::Pit2),
        ("ioeventfd", Cap::Ioeventfd),
        ("irqfd", Cap::Irqfd),
        ("irq_routing", Cap::IrqRouting),
        ("split_irqchip", Cap::SplitIrqchip),
        ("immediate_exit", Cap::ImmediateExit),
        ("x86_user_space_msr", Cap::X86UserSpaceMsr),
        ("x86_msr_filter", Cap::X86MsrFilter),
        ("xsave", Cap::Xsave),
        ("xcrs", Cap::Xcrs),
        ("vcpu_events", Cap::VcpuEvents),
        ("mp_state", Cap::MpState),
        ("get_tsc_khz", Cap::GetTscKhz),
        ("exit_hypercall", Cap::ExitHypercall),
        ("hyperv", Cap::Hyperv),
        ("xen_hvm", Cap::XenHvm),
        ("nested_state", Cap::NestedState),
        ("tsc_control", Cap::TscControl),
    ]
}

/// Runs the whole check; never panics, records what failed in `error`.
pub fn run(dev: &Path) -> KvmCheck {
    let mut c = KvmCheck::default();
    let Ok(cpath) = std::ffi::CString::new(dev.as_os_str().as_encoded_bytes()) else {
        c.error = Some(format!("bad device path {}", dev.display()));
        return c;
    };
    let kvm = match Kvm::new_with_path(cpath.as_c_str()) {
        Ok(k) => k,
        Err(e) => {
            c.error = Some(format!("cannot open {}: {e}", dev.display()));
            return c;
        }
    };
    c.opened = true;
    c.api_version = Some(kvm.get_api_version());
    for (name, cap) in caps() {
        c.capabilities
            .insert(name.to_string(), kvm.check_extension(cap));
    }
    if let Err(e) = micro_guest(&kvm, &mut c) {
        c.error = Some(e);
    }
    c
}

struct Guest {
    // Field order matters for drop order: the vCPU and VM go before the memory they map.
    vcpu: VcpuFd,
    _vm: kvm_ioctls::VmFd,
    _mem: GuestMemoryMmap<()>,
}

fn micro_guest(kvm: &Kvm, c: &mut KvmCheck) -> Result<(), String> {
    let t0 = Instant::now();
    let mut g = Guest::new(kvm)?;
    start(&g.vcpu, 1, false, 0)?;
    let first = drive(&mut g.vcpu)?;
    c.vm_create_us = Some(round2(t0.elapsed().as_secs_f64() * 1e6));
    let _ = first;

    // Exit round trip: median over batches.
    let mut per_exit = Vec::new();
    for _ in 0..5 {
        let n = 20;
        start(&g.vcpu, 1, false, n)?;
        let r = drive(&mut g.vcpu)?;
        if r.exits != n {
            return Err(format!("expected {n} port-0x10 exits, saw {}", r.exits));
        }
        per_exit.push(r.exit_phase_s / n as f64);
    }
    per_exit.sort_by(f64::total_cmp);
    c.exit_us = Some(round2(per_exit[per_exit.len() / 2] * 1e6));

    c.ring0_ns = Some(round2(loop_ns(&mut g.vcpu, false, 200)?));
    c.ring3_ns = Some(round3(loop_ns(&mut g.vcpu, true, 100_000)?));
    c.guest_ran = true;
    Ok(())
}

/// Time per loop iteration in ns: grows the count until the loop takes about 0.3 ms (short,
/// so the whole probe stays fast; the entry/exit overhead is measured and subtracted).
fn loop_ns(vcpu: &mut VcpuFd, user: bool, mut n: u64) -> Result<f64, String> {
    const TARGET_S: f64 = 0.3e-3;
    const REPEATS: usize = 4;
    // Entry, ring switch and exit cost of a run with a 1-iteration loop in the same ring
    // (best of 3, after the warm-up runs), subtracted from the loop timings.
    let mut overhead = f64::MAX;
    for _ in 0..3 {
        start(vcpu, 1, user, 0)?;
        overhead = overhead.min(drive(vcpu)?.loop_s);
    }
    loop {
        start(vcpu, n, user, 0)?;
        let r = drive(vcpu)?;
        let t = (r.loop_s - overhead).max(r.loop_s * 0.05);
        if r.loop_s >= TARGET_S * 0.5 || n >= 1 << 32 {
            // Best of a few runs at this count: a preemption of the vCPU thread (a loaded
            // host) only ever lengthens a run, and one such run made a 2-core machine under
            // load read ring 3 at 74 ns per iteration instead of 0.3 (ratio 8.5: "hardware").
            let mut best = t;
            for _ in 0..REPEATS {
                start(vcpu, n, user, 0)?;
                let r = drive(vcpu)?;
                best = best.min((r.loop_s - overhead).max(r.loop_s * 0.05));
            }
            return Ok(best * 1e9 / n as f64);
        }
        let grow = (TARGET_S / r.loop_s.max(1e-7)).clamp(2.0, 256.0);
        n = ((n as f64) * grow) as u64;
    }
}

impl Guest {
    fn new(kvm: &Kvm) -> Result<Guest, String> {
        let vm = kvm.create_vm().map_err(|e| format!("KVM_CREATE_VM: {e}"))?;
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), MEM_SIZE)])
            .map_err(|e| format!("guest memory: {e}"))?;
        let w = |v: u64, a: u64| {
            mem.write_obj(v, GuestAddress(a))
                .map_err(|e| format!("guest memory: {e}"))
        };
        // Identity map of the first 4 MiB with 2 MiB pages, user-accessible.
        w(0x2000 | 7, 0x1000)?;
        w(0x3000 | 7, 0x2000)?;
        w(0x87, 0x3000)?;
        w(0x20_0087, 0x3008)?;
        // GDT: 0x08 kernel code, 0x10 kernel data, 0x18 user code, 0x20 user data.
        w(0x00af_9a00_0000_ffff, 0x508)?;
        w(0x00cf_9200_0000_ffff, 0x510)?;
        w(0x00af_fa00_0000_ffff, 0x518)?;
        w(0x00cf_f200_0000_ffff, 0x520)?;
        mem.write_slice(GUEST, GuestAddress(CODE_ADDR))
            .map_err(|e| format!("guest memory: {e}"))?;
        let host = mem
            .get_host_address(GuestAddress(0))
            .map_err(|e| format!("guest memory: {e}"))?;
        let region = kvm_userspace_memory_region {
            slot: 0,
            flags: 0,
            guest_phys_addr: 0,
            memory_size: MEM_SIZE as u64,
            userspace_addr: host as u64,
        };
        // SAFETY: `host` is the start of the MEM_SIZE-byte anonymous mapping owned by `mem`;
        // `mem` is kept in the returned Guest and dropped after the VM (field order).
        unsafe { vm.set_user_memory_region(region) }
            .map_err(|e| format!("KVM_SET_USER_MEMORY_REGION: {e}"))?;
        let vcpu = vm
            .create_vcpu(0)
            .map_err(|e| format!("KVM_CREATE_VCPU: {e}"))?;
        Ok(Guest {
            vcpu,
            _vm: vm,
            _mem: mem,
        })
    }
}

fn start(vcpu: &VcpuFd, loop_count: u64, user: bool, exits: u64) -> Result<(), String> {
    let mut s = vcpu
        .get_sregs()
        .map_err(|e| format!("KVM_GET_SREGS: {e}"))?;
    let code = kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector: 8,
        present: 1,
        type_: 11,
        s: 1,
        l: 1,
        g: 1,
        ..Default::default()
    };
    let data = kvm_segment {
        type_: 3,
        selector: 16,
        l: 0,
        db: 1,
        ..code
    };
    s.cs = code;
    s.ds = data;
    s.es = data;
    s.fs = data;
    s.gs = data;
    s.ss = data;
    s.gdt.base = 0x500;
    s.gdt.limit = 39;
    s.cr3 = 0x1000;
    s.cr4 = (1 << 5) | (1 << 9) | (1 << 10); // PAE, OSFXSR, OSXMMEXCPT
    s.cr0 = 0x8005_0033; // PG, AM, WP, NE, ET, MP, PE
    s.efer = 0x500; // LME, LMA
    vcpu.set_sregs(&s)
        .map_err(|e| format!("KVM_SET_SREGS: {e}"))?;
    let regs = kvm_regs {
        rip: CODE_ADDR,
        rbx: loop_count,
        r12: u64::from(user),
        r13: exits,
        rflags: 2,
        rsp: 0x8000,
        ..Default::default()
    };
    vcpu.set_regs(&regs)
        .map_err(|e| format!("KVM_SET_REGS: {e}"))
}

struct Drive {
    loop_s: f64,
    exit_phase_s: f64,
    exits: u64,
}

fn drive(vcpu: &mut VcpuFd) -> Result<Drive, String> {
    let t0 = Instant::now();
    let mut loop_s = None;
    let mut t_exit0 = t0;
    let mut exits = 0;
    // Bounded: the guest does at most one exit per requested OUT plus three.
    for _ in 0..1_000_000 {
        match vcpu.run().map_err(|e| format!("KVM_RUN: {e}"))? {
            VcpuExit::Hlt => break,
            VcpuExit::IoOut(0x11, _) => {
                loop_s = Some(t0.elapsed().as_secs_f64());
                t_exit0 = Instant::now();
            }
            VcpuExit::IoOut(0x10, _) => exits += 1,
            VcpuExit::IoOut(0x12, _) => break,
            other => return Err(format!("micro-guest: unexpected exit {other:?}")),
        }
    }
    let loop_s = loop_s.ok_or("micro-guest ended without reaching the end of its loop")?;
    Ok(Drive {
        loop_s,
        exit_phase_s: t_exit0.elapsed().as_secs_f64(),
        exits,
    })
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
