//! Boots small assembled guests on KVM through the public API.
mod common;
#[path = "guests/mod.rs"]
mod guests;

use common::{kvm_or_skip, scratch_dir, Capture};
use hypervisor::{Interface, RunOutcome, Vm, VmConfig, VmEnd};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn cfg(kernel: std::path::PathBuf, cmdline: &str) -> VmConfig {
    VmConfig {
        kernel,
        cmdline: cmdline.into(),
        memory_mib: 32,
        timeout: Duration::from_secs(20),
        ..Default::default()
    }
}

fn boot(c: VmConfig) -> (RunOutcome, String) {
    let out = Capture::default();
    let vm = Vm::new(c).expect("Vm::new");
    let r = vm.run(Box::new(out.clone())).expect("run");
    (r, out.text())
}

#[test]
fn pvh_guest_prints_and_exits_with_status() {
    if !kvm_or_skip("pvh_guest_prints_and_exits_with_status") {
        return;
    }
    let (r, text) = boot(cfg(guests::guest("hello"), "console=ttyS0 hvcert=1"));
    assert_eq!(r.end, VmEnd::Status(0x2a), "{text}\n{:?}", r.final_regs);
    assert!(text.contains("hello from the PVH guest"), "{text}");
    assert!(text.contains("cmdline=console=ttyS0 hvcert=1"), "{text}");
    // A 16-bit OUT to COM1 writes its second byte to the next register (IER), not THR.
    assert!(text.contains("wide:W\n"), "{text:?}");
    assert_eq!(r.end.exit_code(), 0x2a);
    // One port read, one MMIO read, one MMIO write (memory is 32 MiB; 0x3000_0000 is unclaimed).
    assert_eq!(r.unclaimed_accesses, 3);
}

#[test]
fn timeout_beyond_the_clock_means_no_deadline() {
    if !kvm_or_skip("timeout_beyond_the_clock_means_no_deadline") {
        return;
    }
    let mut c = cfg(guests::guest("hello"), "");
    c.timeout = Duration::MAX;
    let (r, text) = boot(c);
    assert_eq!(r.end, VmEnd::Status(0x2a), "{text}");
}

#[test]
fn vm_can_move_between_threads() {
    fn assert_send<T: Send>() {}
    assert_send::<Vm>();
    assert_send::<hypervisor::RunOutcome>();
}

#[test]
fn pvh_initrd_is_module_zero() {
    if !kvm_or_skip("pvh_initrd_is_module_zero") {
        return;
    }
    let scratch = scratch_dir("pvh-initrd");
    let dir = scratch.path();
    let initrd = dir.join("initrd");
    std::fs::write(&initrd, b"RAMDISK1 and the rest").unwrap();
    let mut c = cfg(guests::guest("hello"), "x");
    c.initrd = Some(initrd.clone());
    let (r, text) = boot(c);
    assert_eq!(r.end, VmEnd::Status(0x2a), "{text}");
    assert!(text.contains("module0=RAMDISK1"), "{text}");
    // An initrd that cannot fit is a configuration error, not a crash.
    std::fs::write(&initrd, vec![0u8; 40 << 20]).unwrap();
    let mut c = cfg(guests::guest("hello"), "x");
    c.initrd = Some(initrd);
    let e = Vm::new(c).err().expect("40 MiB initrd in 32 MiB of memory");
    assert!(e.to_string().contains("initrd"), "{e}");
}

#[test]
fn smp_guest_boots_with_aps_waiting() {
    if !kvm_or_skip("smp_guest_boots_with_aps_waiting") {
        return;
    }
    let mut c = cfg(guests::guest("hello"), "smp");
    c.cpus = 2;
    let (r, _) = boot(c);
    assert_eq!(r.end, VmEnd::Status(0x2a));
    assert_eq!(r.final_regs.len(), 2);
}

#[test]
fn smp_guest_starts_an_ap_with_its_own_vp_index() {
    if !kvm_or_skip("smp_guest_starts_an_ap_with_its_own_vp_index") {
        return;
    }
    let mut c = cfg(guests::guest("smp"), "go");
    c.cpus = 2;
    let (r, text) = boot(c);
    assert_eq!(r.end, VmEnd::Status(0x2a), "{text}\n{:?}", r.final_regs);
    assert!(text.contains("AP started"), "{text}");
    // The AP halted with interrupts off, but the BSP went on: not a dead VM.
    let mut c = cfg(guests::guest("smp"), "h");
    c.cpus = 2;
    let (r, _) = boot(c);
    assert!(
        matches!(&r.end, VmEnd::Crash { reason, .. } if reason.contains("interrupts disabled")),
        "{:?}",
        r.end
    );
}

#[test]
fn triple_fault_is_a_crash_with_registers() {
    if !kvm_or_skip("triple_fault_is_a_crash_with_registers") {
        return;
    }
    let (r, _) = boot(cfg(guests::guest("crash"), "t"));
    match &r.end {
        VmEnd::Crash { reason, regs } => {
            // Hardware-assisted KVM reports KVM_EXIT_SHUTDOWN; nested PVM reports an internal
            // error "simultaneous exceptions" for the same guest.
            assert!(
                reason.contains("triple fault") || reason.contains("simultaneous exceptions"),
                "{reason}"
            );
            assert!(regs.contains("rip="), "{regs}");
        }
        e => panic!("expected a crash, got {e:?}"),
    }
    assert_eq!(r.end.exit_code(), 125);
}

/// `run` hands the console writer back (drops it) before it returns, not when the VM's
/// kernel-side teardown ends later on another thread.
#[test]
fn console_writer_is_dropped_when_run_returns() {
    if !kvm_or_skip("console_writer_is_dropped_when_run_returns") {
        return;
    }
    struct Flagged(Arc<std::sync::atomic::AtomicBool>);
    impl Write for Flagged {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl Drop for Flagged {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }
    let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let vm = Vm::new(cfg(guests::guest("hello"), "")).expect("Vm::new");
    let r = vm.run(Box::new(Flagged(dropped.clone()))).expect("run");
    assert!(matches!(r.end, VmEnd::Status(_)), "{:?}", r.end);
    assert!(
        dropped.load(std::sync::atomic::Ordering::SeqCst),
        "the console writer outlived Vm::run"
    );
}

#[test]
fn emulation_failure_is_a_crash() {
    if !kvm_or_skip("emulation_failure_is_a_crash") {
        return;
    }
    let (r, _) = boot(cfg(guests::guest("crash"), "e"));
    match &r.end {
        VmEnd::Crash { reason, .. } => assert!(reason.contains("emulation failure"), "{reason}"),
        // Hardware-assisted KVM runs the instruction natively.
        VmEnd::Status(0x79) => eprintln!("note: cmpxchg16b ran natively (not emulated here)"),
        e => panic!("expected a crash, got {e:?}"),
    }
}

#[test]
fn hlt_with_interrupts_off_ends_the_vm() {
    if !kvm_or_skip("hlt_with_interrupts_off_ends_the_vm") {
        return;
    }
    let (r, _) = boot(cfg(guests::guest("crash"), "h"));
    match &r.end {
        VmEnd::Crash { reason, regs } => {
            assert!(reason.contains("interrupts disabled"), "{reason}");
            assert!(regs.contains("rflags="), "{regs}");
        }
        e => panic!("expected a crash, got {e:?}"),
    }
    assert!(r.wall < Duration::from_secs(5), "{:?}", r.wall);
}

#[test]
fn timeout_stops_a_spinning_guest() {
    if !kvm_or_skip("timeout_stops_a_spinning_guest") {
        return;
    }
    let mut c = cfg(guests::guest("crash"), "s");
    c.timeout = Duration::from_millis(300);
    c.cpus = 2;
    let (r, _) = boot(c);
    assert_eq!(r.end, VmEnd::Timeout);
    assert_eq!(r.end.exit_code(), 124);
    assert!(r.wall < Duration::from_secs(3), "{:?}", r.wall);
    assert!(r.final_regs[0].contains("rip="));
}

#[test]
fn ring0_share_is_sampled() {
    if !kvm_or_skip("ring0_share_is_sampled") {
        return;
    }
    let mut c = cfg(guests::guest("crash"), "s");
    c.timeout = Duration::from_millis(400);
    let (r, _) = boot(c);
    let share = r.ring0_share.expect("samples were taken");
    assert!(share > 0.9, "ring-0 spin: {share}");
    let mut c = cfg(guests::guest("crash"), "r");
    c.timeout = Duration::from_millis(400);
    let (r, _) = boot(c);
    assert_eq!(r.end, VmEnd::Timeout);
    let share = r.ring0_share.expect("samples were taken");
    assert!(share < 0.1, "ring-3 spin: {share}");
}

#[test]
fn bzimage_boot_protocol_and_initrd() {
    if !kvm_or_skip("bzimage_boot_protocol_and_initrd") {
        return;
    }
    let scratch = scratch_dir("bz");
    let dir = scratch.path();
    let kernel = dir.join("bzImage");
    std::fs::write(&kernel, guests::bzimage(&guests::flat("bz"))).unwrap();
    let initrd = dir.join("initrd");
    std::fs::write(&initrd, b"INITRD!!and more").unwrap();
    let mut c = cfg(kernel.clone(), "root=/dev/vda quiet");
    c.initrd = Some(initrd);
    let (r, text) = boot(c);
    assert_eq!(r.end, VmEnd::Status(0x5a), "{text}");
    assert!(
        text.contains("bzImage entry64 cmdline=root=/dev/vda quiet"),
        "{text}"
    );
    assert!(text.contains("initrd=INITRD!!"), "{text}");
}

/// A real distribution kernel (HVCERT_TEST_KERNEL, else /boot/vmlinuz-*), if this machine
/// has one: the boot parameters are checked, then it runs for 2 s (it will not finish booting
/// where ring 0 is emulated) and must have left our entry state: its own GDT loaded.
#[test]
fn real_bzimage_loads_and_starts_if_present() {
    let from_env = std::env::var_os("HVCERT_TEST_KERNEL").map(std::path::PathBuf::from);
    let from_boot = || {
        std::fs::read_dir("/boot").ok().and_then(|d| {
            d.filter_map(|e| e.ok()).map(|e| e.path()).find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz"))
            })
        })
    };
    let Some(k) = from_env.or_else(from_boot) else {
        eprintln!(
            "SKIP real_bzimage_loads_and_starts_if_present: no /boot/vmlinuz-* here and HVCERT_TEST_KERNEL unset"
        );
        return;
    };
    if !kvm_or_skip("real_bzimage_loads_and_starts_if_present") {
        return;
    }
    let mut c = cfg(k, "console=ttyS0 earlyprintk=serial,ttyS0,115200");
    c.memory_mib = 256;
    c.timeout = Duration::from_secs(2);
    let vm = Vm::new(c).expect("a real bzImage loads");
    use vm_memory::Bytes;
    let mem = vm.memory();
    let mut hdr = [0u8; 4];
    mem.read_slice(&mut hdr, vm_memory::GuestAddress(0x7000 + 0x202))
        .unwrap();
    assert_eq!(&hdr, b"HdrS");
    let loader: u8 = mem
        .read_obj(vm_memory::GuestAddress(0x7000 + 0x210))
        .unwrap();
    assert_eq!(loader, 0xff, "type_of_loader");
    let cmd_ptr: u32 = mem
        .read_obj(vm_memory::GuestAddress(0x7000 + 0x228))
        .unwrap();
    assert_eq!(cmd_ptr, 0x20000);
    let e820_entries: u8 = mem
        .read_obj(vm_memory::GuestAddress(0x7000 + 0x1e8))
        .unwrap();
    assert!(e820_entries >= 3);
    let rsdp: u64 = mem
        .read_obj(vm_memory::GuestAddress(0x7000 + 0x70))
        .unwrap();
    assert_eq!(
        rsdp,
        hypervisor::acpi::RSDP_ADDR,
        "boot_params.acpi_rsdp_addr"
    );
    let r = vm.run(Box::new(std::io::sink())).unwrap();
    assert!(
        !r.final_regs[0].contains("gdt=0x500/"),
        "the kernel never loaded its own GDT: {:?}\n{}",
        r.end,
        r.final_regs[0]
    );
}

#[test]
fn bad_kernels_are_errors_not_panics() {
    if !kvm_or_skip("bad_kernels_are_errors_not_panics") {
        return;
    }
    let scratch = scratch_dir("bad");
    let dir = scratch.path();
    let junk = dir.join("junk");
    std::fs::write(&junk, vec![0x55u8; 8192]).unwrap();
    let e = Vm::new(cfg(junk.clone(), ""))
        .err()
        .expect("junk must fail");
    assert!(e.to_string().contains("junk"), "{e}");
    let e = Vm::new(cfg(dir.join("missing"), ""))
        .err()
        .expect("missing must fail");
    assert!(e.to_string().contains("missing"), "{e}");
    let mut c = cfg(guests::guest("hello"), "");
    c.memory_mib = 1;
    assert!(Vm::new(c).is_err());
    let mut c = cfg(guests::guest("hello"), "");
    c.cpus = 0;
    assert!(Vm::new(c).is_err());
}

#[test]
fn interface_parses() {
    assert_eq!("xen".parse::<Interface>(), Ok(Interface::Xen));
    assert!("vmware".parse::<Interface>().is_err());
    for i in [
        Interface::HyperV,
        Interface::Xen,
        Interface::Both,
        Interface::None,
    ] {
        assert_eq!(i.to_string().parse::<Interface>(), Ok(i));
    }
    assert_eq!(VmEnd::Status(0x2a).to_string(), "status 0x2a");
    assert_eq!(VmEnd::Timeout.exit_code(), 124);
    assert_eq!(VmEnd::Status(0x1ff).exit_code(), 0xff);
}

#[test]
fn hyperv_interface_rules_from_the_guest() {
    if !kvm_or_skip("hyperv_interface_rules_from_the_guest") {
        return;
    }
    // With `both`, the Hyper-V side is unchanged (Xen moved to 0x40000100 / 0x40000200).
    let mut c = cfg(guests::guest("hyperv"), "all");
    c.interface = Interface::Both;
    assert_eq!(boot(c).0.end, VmEnd::Status(0x2a));
    let (r, text) = boot(cfg(guests::guest("hyperv"), "all"));
    assert_eq!(r.end, VmEnd::Status(0x2a), "{text}\n{}", r.final_regs[0]);
    assert!(
        text.contains("dbg!\n"),
        "PostDebugData reaches the console: {text}"
    );
    assert!(text.contains("hyperv checks passed"), "{text}");
    let h = &r.hypercalls;
    assert_eq!(h.get("HvCallNotifyLongSpinWait"), Some(&6), "{h:?}");
    assert_eq!(h.get("invalid(0x7777)"), Some(&1), "{h:?}");
    assert_eq!(h.get("HvCallFlushVirtualAddressSpace"), Some(&1), "{h:?}");
    assert_eq!(h.get("HvCallFlushVirtualAddressList"), Some(&1), "{h:?}");
    assert_eq!(h.get("HvCallPostDebugData"), Some(&1), "{h:?}");
    assert_eq!(h.get("HvCallRetrieveDebugData"), Some(&1), "{h:?}");
}

#[test]
fn hypercall_returns_with_any_stack_alignment() {
    if !kvm_or_skip("hypercall_returns_with_any_stack_alignment") {
        return;
    }
    // The VMM does the page's `ret` itself unless the return address straddles two pages;
    // both ways the call must come back to the caller with RSP restored (0x2b).
    let (r, text) = boot(cfg(guests::guest("hyperv"), "s"));
    assert_eq!(r.end, VmEnd::Status(0x2b), "{text}\n{}", r.final_regs[0]);
    assert_eq!(
        r.hypercalls.get("HvCallNotifyLongSpinWait"),
        Some(&2),
        "{:?}",
        r.hypercalls
    );
}

#[test]
fn hypercalls_from_cpl3_or_outside_the_page_raise_ud() {
    if !kvm_or_skip("hypercalls_from_cpl3_or_outside_the_page_raise_ud") {
        return;
    }
    // 0x60 | CPL of the code that took #UD; 0x53: #GP from CPL 3 (a ring-3 caller without
    // access to the hypercall port faults on the OUT's I/O permission check, before any exit).
    for (mode, want) in [
        ("U", 0x63),
        ("p", 0x63),
        ("o", 0x60),
        ("n", 0x60),
        ("u", 0x53),
    ] {
        let (r, text) = boot(cfg(guests::guest("hyperv"), mode));
        assert_eq!(
            r.end,
            VmEnd::Status(want),
            "mode {mode}: {text}\n{}",
            r.final_regs[0]
        );
        assert!(r.hypercalls.is_empty(), "mode {mode}: {:?}", r.hypercalls);
    }
}

#[test]
fn synthetic_msrs_and_leaves_absent_without_hyperv() {
    if !kvm_or_skip("synthetic_msrs_and_leaves_absent_without_hyperv") {
        return;
    }
    // With the Xen interface, leaf 0x40000000 is Xen's (max leaf 0x40000002): check 1 fails.
    let mut c = cfg(guests::guest("hyperv"), "all");
    c.interface = Interface::Xen;
    assert_eq!(boot(c).0.end, VmEnd::Status(1));
    // GUEST_OS_ID: a plain MSR with Hyper-V on, #GP for both accesses with Xen or nothing.
    for (iface, gps) in [
        (Interface::HyperV, 0),
        (Interface::Both, 0),
        (Interface::None, 2),
    ] {
        let mut c = cfg(guests::guest("hyperv"), "m");
        c.interface = iface;
        assert_eq!(boot(c).0.end, VmEnd::Status(0x40 + gps), "{iface}");
    }
    // With Xen alone, 0x40000000 is Xen's write-only hypercall MSR: the read #GPs, and the
    // write of GPA 0 (inside RAM, page aligned) installs the stubs there.
    let mut c = cfg(guests::guest("hyperv"), "m");
    c.interface = Interface::Xen;
    assert_eq!(boot(c).0.end, VmEnd::Status(0x41));
    // No interface: leaf 0x40000000 is not a hypervisor leaf any more.
    let mut c = cfg(guests::guest("hyperv"), "all");
    c.interface = Interface::None;
    let end = boot(c).0.end;
    assert!(
        matches!(end, VmEnd::Status(1) | VmEnd::Status(2)),
        "{end:?}"
    );
}

#[test]
fn xen_adapter_translates_and_powers_off() {
    if !kvm_or_skip("xen_adapter_translates_and_powers_off") {
        return;
    }
    for iface in [Interface::Xen, Interface::Both] {
        let mut c = cfg(guests::guest("xen"), "x");
        c.interface = iface;
        let (r, text) = boot(c);
        assert_eq!(
            r.end,
            VmEnd::Shutdown,
            "{iface}: {text}\n{:?}",
            r.final_regs
        );
        assert_eq!(r.end.exit_code(), 0);
        assert!(text.contains("xen console_io says hi\n"), "{text}");
        let t = r.xen_trace.join("\n");
        for want in [
            "xen_version(XENVER_version) -> 0x40010",
            "xen_version(XENVER_extraversion",
            "console_io(CONSOLEIO_write, 23) -> console -> 0",
            "sched_op(SCHEDOP_yield) -> HvCallNotifyLongSpinWait -> 0",
            "hypercall_1(...) -> -ENOSYS",
            "-EFAULT",
            "hvm_op(HVMOP_get_param, 2) -> 0x1234",
            "memory_op(XENMEM_maximum_ram_page)",
            "sched_op(SCHEDOP_shutdown, poweroff) -> VM ends",
        ] {
            assert!(t.contains(want), "{iface}: trace lacks `{want}`:\n{t}");
        }
        assert_eq!(r.hypercalls.get("HvCallNotifyLongSpinWait"), Some(&1));
        assert_eq!(r.hypercalls.get("xen:console_io"), Some(&2));
    }
}

#[test]
fn xen_crash_shutdown_is_a_crash() {
    if !kvm_or_skip("xen_crash_shutdown_is_a_crash") {
        return;
    }
    let mut c = cfg(guests::guest("xen"), "c");
    c.interface = Interface::Xen;
    let (r, _) = boot(c);
    assert!(
        matches!(&r.end, VmEnd::Crash { reason, .. } if reason.contains("crash")),
        "{:?}",
        r.end
    );
    assert_eq!(r.end.exit_code(), 125);
}

#[cfg(feature = "fault-injection")]
#[test]
fn fault_injection_breaks_the_invalid_code_status() {
    if !kvm_or_skip("fault_injection_breaks_the_invalid_code_status") {
        return;
    }
    let mut c = cfg(guests::guest("hyperv"), "all");
    c.fault = Some(hypervisor::Fault::WrongInvalidCodeStatus);
    // Check 15 of the guest expects HV_STATUS_INVALID_HYPERCALL_CODE.
    assert_eq!(boot(c).0.end, VmEnd::Status(15));
}

/// A console writer that blocks for good (a full pipe nobody reads) neither stops the
/// timeout nor makes `run` wait for it; the guest's output beyond the bounded buffer is
/// counted as dropped, and the writer thread exits once the writer returns.
#[test]
fn blocked_console_writer_does_not_hold_run_past_the_timeout() {
    if !kvm_or_skip("blocked_console_writer_does_not_hold_run_past_the_timeout") {
        return;
    }
    struct Blocked {
        release: std::sync::mpsc::Receiver<()>,
        wrote: Arc<std::sync::atomic::AtomicU64>,
        dropped: Arc<std::sync::atomic::AtomicBool>,
    }
    impl Write for Blocked {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            // Blocks until the test releases it (or drops the sender: then an error).
            self.release
                .recv()
                .map_err(|_| std::io::Error::other("closed"))?;
            self.wrote
                .fetch_add(b.len() as u64, std::sync::atomic::Ordering::SeqCst);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl Drop for Blocked {
        fn drop(&mut self) {
            self.dropped
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let wrote = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut c = cfg(guests::guest("spam"), "x");
    c.interface = Interface::Xen;
    c.timeout = Duration::from_secs(1);
    let vm = Vm::new(c).expect("Vm::new");
    let t = std::time::Instant::now();
    let r = vm
        .run(Box::new(Blocked {
            release: rx,
            wrote: wrote.clone(),
            dropped: dropped.clone(),
        }))
        .expect("run");
    let took = t.elapsed();
    eprintln!(
        "blocked writer: run took {took:?}, console_dropped {} bytes",
        r.console_dropped
    );
    assert_eq!(r.end, VmEnd::Timeout);
    assert!(took < Duration::from_secs(3), "run took {took:?}");
    assert!(
        r.console_dropped > 0,
        "the guest printed more than the buffer"
    );
    assert_eq!(wrote.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert!(!dropped.load(std::sync::atomic::Ordering::SeqCst));
    // Releasing the writer for good: the detached writer thread fails its write, drops the
    // writer and exits.
    drop(tx);
    let t = std::time::Instant::now();
    while !dropped.load(std::sync::atomic::Ordering::SeqCst) {
        assert!(t.elapsed() < Duration::from_secs(5), "writer never dropped");
        std::thread::sleep(Duration::from_millis(5));
    }
}
/// A writer that accepts everything but is slower than the guest (Xen console_io, 64 KiB
/// per call) slows the guest down: nothing is dropped, all arrives in order.
#[test]
fn slow_console_writer_loses_nothing() {
    if !kvm_or_skip("slow_console_writer_loses_nothing") {
        return;
    }
    let mut c = cfg(guests::guest("spam"), "x");
    c.interface = Interface::Xen;
    c.timeout = Duration::from_millis(300);
    let (r, text) = boot(c);
    eprintln!(
        "slow writer: {} bytes in {:?}, dropped {}",
        text.len(),
        r.wall,
        r.console_dropped
    );
    assert_eq!(r.end, VmEnd::Timeout);
    // Nothing is lost while the VM runs. Once the timeout ends it, a vCPU that was waiting
    // for room in the middle of a console_io call stops waiting (module docs of `console`):
    // at most the rest of that one 64 KiB call is dropped.
    assert!(
        r.console_dropped <= 64 * 1024,
        "dropped {}",
        r.console_dropped
    );
    assert!(text.len() > 1 << 20, "{} bytes", text.len());
    assert!(text.bytes().all(|b| b == b'x'));
}

#[test]
fn hyperv_flush_and_ipi_reach_another_vcpu() {
    if !kvm_or_skip("hyperv_flush_and_ipi_reach_another_vcpu") {
        return;
    }
    let mut c = cfg(guests::guest("hv_remote"), "");
    c.cpus = 2;
    c.interface = Interface::HyperV;
    let (r, text) = boot(c);
    assert_eq!(r.end, VmEnd::Status(0x2a), "{text}\n{:?}", r.final_regs);
    let n = |k: &str| r.hypercalls.get(k).copied().unwrap_or(0);
    // VP 1 once, then VPs 0 and 1; each target flushed before it ran guest code again
    // (the halted VP 1 was kicked out of KVM_RUN for it).
    assert_eq!(n("vp-tlb-flush-requested"), 3, "{:?}", r.hypercalls);
    assert_eq!(n("vp-tlb-flush-done"), 3, "{:?}", r.hypercalls);
    assert_eq!(n("vp-ipi-sent"), 1, "{:?}", r.hypercalls);
    assert_eq!(
        n("HvCallFlushVirtualAddressSpaceEx"),
        1,
        "{:?}",
        r.hypercalls
    );
}
