//! The test cases, by KTAP name. Each case sets up what it needs (cases run alone, one per
//! VM, under `hvcert certify`, but may also be chained on one command line).
use crate::ktap::Outcome;
use crate::{check, diag, Ctx};

mod hv;
mod hv_apic;
mod hv_calls;
mod hv_more;
mod hv_percpu;
mod hv_stimer;
mod hv_synic;
mod hv_synic_loop;
mod hv_tlfs;
mod hv_tsc_unreliable;
mod virtio;
mod vmbus;
mod vmbus_net;
mod vmbus_storage;
mod xen;
mod xen_pvhvm;
mod xen_smp;

type Case = fn(&mut Ctx) -> Outcome;

const CASES: &[(&str, Case)] = &[
    ("boot", boot),
    ("hv_cpuid", hv::cpuid),
    ("hv_msr_guest_os_id", hv::msr_guest_os_id),
    (
        "hv_msr_hypercall_before_os_id",
        hv::msr_hypercall_before_os_id,
    ),
    ("hv_msr_hypercall_locked", hv::msr_hypercall_locked),
    ("hv_msr_unimplemented_gp", hv::msr_unimplemented_gp),
    ("hv_msr_vp_index", hv::msr_vp_index),
    ("hv_msr_time_ref_count", hv::msr_time_ref_count),
    ("hv_hypercall_page", hv::hypercall_page),
    ("hv_call_long_spin_wait", hv::call_long_spin_wait),
    ("hv_call_flush_space", hv::call_flush_space),
    ("hv_call_flush_list", hv::call_flush_list),
    ("hv_call_rep_semantics", hv::call_rep_semantics),
    ("hv_call_post_debug_data", hv::call_post_debug_data),
    ("hv_call_retrieve_debug_data", hv::call_retrieve_debug_data),
    ("hv_call_invalid_code", hv::call_invalid_code),
    ("hv_call_reserved_bits", hv::call_reserved_bits),
    ("hv_call_rep_on_simple", hv::call_rep_on_simple),
    ("hv_call_misaligned", hv::call_misaligned),
    ("hv_call_bad_gpa", hv::call_bad_gpa),
    ("hv_call_cpl3_ud", hv::call_cpl3_ud),
    ("hv_cpuid_linux_detect", hv_tlfs::cpuid_linux_detect),
    ("hv_msr_reset_reserved_gp", hv_tlfs::msr_reset_reserved_gp),
    ("hv_msr_reset", hv_tlfs::msr_reset),
    ("hv_msr_vp_runtime", hv_tlfs::msr_vp_runtime),
    ("hv_msr_reference_tsc", hv_tlfs::msr_reference_tsc),
    (
        "hv_msr_reference_tsc_bad_gp",
        hv_tlfs::msr_reference_tsc_bad_gp,
    ),
    ("hv_msr_frequencies", hv_tlfs::msr_frequencies),
    ("hv_msr_crash", hv_tlfs::msr_crash),
    (
        "hv_msr_crash_ctl_reserved_gp",
        hv_tlfs::msr_crash_ctl_reserved_gp,
    ),
    ("hv_msr_guest_idle", hv_tlfs::msr_guest_idle),
    ("hv_msr_vp_assist_page", hv_tlfs::msr_vp_assist_page),
    ("hv_msr_synic", hv_tlfs::msr_synic),
    ("hv_msr_synic_reserved_gp", hv_tlfs::msr_synic_reserved_gp),
    ("hv_call_post_message", hv_tlfs::call_post_message),
    ("hv_call_signal_event", hv_tlfs::call_signal_event),
    ("hv_gate_all_granted", hv_tlfs::gate_all_granted),
    ("hv_gate_vp_runtime", hv_tlfs::gate_vp_runtime),
    ("hv_gate_reference_counter", hv_tlfs::gate_reference_counter),
    ("hv_gate_synic", hv_tlfs::gate_synic),
    ("hv_gate_intr_ctrl", hv_tlfs::gate_intr_ctrl),
    ("hv_gate_hypercall_msrs", hv_tlfs::gate_hypercall_msrs),
    ("hv_gate_vp_index", hv_tlfs::gate_vp_index),
    ("hv_gate_reset", hv_tlfs::gate_reset),
    ("hv_gate_reference_tsc", hv_tlfs::gate_reference_tsc),
    ("hv_gate_guest_idle", hv_tlfs::gate_guest_idle),
    ("hv_gate_frequency", hv_tlfs::gate_frequency),
    ("hv_gate_post_messages", hv_tlfs::gate_post_messages),
    ("hv_gate_signal_events", hv_tlfs::gate_signal_events),
    ("hv_gate_debugging", hv_tlfs::gate_debugging),
    ("hv_gate_crash", hv_tlfs::gate_crash),
    ("hv_gate_remote_flush", hv_tlfs::gate_remote_flush),
    ("hv_synic_stimer_message", hv_synic::stimer_message),
    (
        "hv_synic_message_pending_eom",
        hv_synic::message_pending_eom,
    ),
    ("hv_synic_masked_sint", hv_synic::masked_sint),
    ("hv_stimer_periodic", hv_stimer::periodic),
    ("hv_stimer_direct", hv_stimer::direct),
    ("hv_stimer_config", hv_stimer::config),
    ("hv_stimer_gate", hv_stimer::gate),
    ("hv_stimer_direct_gate", hv_stimer::direct_gate),
    ("hv_synic_bench", hv_stimer::bench),
    ("hv_apic_msrs", hv_apic::apic_msrs),
    // Needs the hypervisor's SynicLoopback test hook (skips without it): not in a profile.
    ("hv_synic_event_flags", hv_synic_loop::event_flags),
    ("hv_apic_msrs_gate", hv_apic::apic_msrs_gate),
    ("hv_call_ipi_self", hv_calls::ipi_self),
    ("hv_call_ipi_ex", hv_calls::ipi_ex),
    ("hv_call_flush_ex", hv_calls::flush_ex),
    ("hv_call_flush_real", hv_calls::flush_real),
    ("hv_call_flush_remote", hv_calls::flush_remote),
    ("hv_call_xmm_fast", hv_calls::xmm_fast),
    ("hv_call_xmm_off", hv_calls::xmm_off),
    (
        "hv_gate_calls_all_granted",
        hv_calls::gate_calls_all_granted,
    ),
    ("hv_gate_cluster_ipi", hv_calls::gate_cluster_ipi),
    (
        "hv_gate_ex_processor_masks",
        hv_calls::gate_ex_processor_masks,
    ),
    ("hv_gate_remote_flush_ex", hv_calls::gate_remote_flush_ex),
    ("hv_gate_long_spin_wait", hv_calls::gate_long_spin_wait),
    ("hv_time_ref_count_smp", hv_more::time_ref_count_smp),
    ("hv_unoffered", hv_more::unoffered),
    ("hv_synic_percpu", hv_percpu::synic_percpu),
    (
        "hv_reference_tsc_unreliable",
        hv_tsc_unreliable::reference_tsc_unreliable,
    ),
    ("smp_vp_index", smp_vp_index),
    (
        "storage_write_read_verify",
        virtio::storage_write_read_verify,
    ),
    ("storage_flush", virtio::storage_flush),
    ("storage_out_of_range", virtio::storage_out_of_range),
    ("nic_frame_round_trip", virtio::nic_frame_round_trip),
    ("nic_mtu", virtio::nic_mtu),
    ("selftest_traps", selftest_traps),
    ("selftest_crash", selftest_crash),
    ("selftest_hang", selftest_hang),
    ("xen_cpuid", xen::cpuid),
    ("xen_hypercall_page", xen::hypercall_page),
    ("xen_version", xen::version),
    ("xen_console_io", xen::console_io),
    ("xen_sched_yield", xen::sched_yield),
    ("xen_enosys", xen::enosys),
    ("xen_memory_op", xen::memory_op),
    ("xen_hvm_param", xen::hvm_param),
    ("xen_shutdown", xen::shutdown),
    ("xen_shutdown_crash", xen::shutdown_crash),
    ("xen_cpl3_ud", xen::cpl3_ud),
    ("xen_version_info", xen_pvhvm::version_info),
    ("xen_shared_info", xen_pvhvm::shared_info),
    ("xen_vcpu_info", xen_pvhvm::vcpu_info),
    ("xen_pvclock", xen_pvhvm::pvclock),
    ("xen_evtchn_ipi", xen_pvhvm::evtchn_ipi),
    ("xen_evtchn_virq", xen_pvhvm::evtchn_virq),
    ("xen_timer", xen_pvhvm::timer),
    ("xen_sched_block_poll", xen_pvhvm::sched_block_poll),
    ("xen_hvm_misc", xen_pvhvm::hvm_misc),
    ("xen_evtchn_latency", xen_pvhvm::evtchn_latency),
    ("xen_evtchn_loopback", xen_smp::evtchn_loopback),
    ("xen_periodic_timer", xen_smp::periodic_timer),
    ("xen_pvclock_refresh", xen_smp::pvclock_refresh),
    ("xen_physdev_privileged", xen_smp::physdev_privileged),
    ("xen_vcpu_up_down", xen_smp::vcpu_up_down),
    ("vmbus_version", vmbus::negotiate),
    ("vmbus_offers", vmbus::offers),
    ("vmbus_gpadl", vmbus::gpadl),
    ("vmbus_open_close", vmbus::open_close),
    ("vmbus_ring_signal", vmbus::ring_signal),
    ("vmbus_storage_inquiry", vmbus_storage::inquiry),
    (
        "vmbus_storage_write_read_verify",
        vmbus_storage::write_read_verify_case,
    ),
    ("vmbus_storage_flush", vmbus_storage::flush),
    ("vmbus_storage_out_of_range", vmbus_storage::out_of_range),
    ("vmbus_nic_frame_round_trip", vmbus_net::frame_round_trip),
    ("vmbus_nic_link_status", vmbus_net::link_status),
    ("vmbus_nic_mtu", vmbus_net::mtu),
];

pub fn find(name: &str) -> Option<Case> {
    CASES.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// Boot: we are in ring 3 in long mode, the PVH start info is valid and carried our
/// command line and a memory map.
fn boot(ctx: &mut Ctx) -> Outcome {
    let cs: u16;
    // SAFETY: reading CS has no side effects.
    unsafe { core::arch::asm!("mov {0:x}, cs", out(reg) cs, options(nomem, nostack)) };
    check!(cs & 3 == 3, "test logic not in ring 3 (cs={:#x})", cs);
    check!(
        ctx.start_info_ok,
        "hvm_start_info magic missing at {:#x}",
        ctx.start_info
    );
    check!(
        ctx.cmdline.get("profile").is_some(),
        "command line lacks profile=: '{}'",
        ctx.cmdline.raw()
    );
    check!(
        ctx.ram_top >= 16 << 20,
        "memory map reports {} bytes of RAM",
        ctx.ram_top
    );
    let hv_present = crate::sys::cpuid(1).ecx >> 31 & 1;
    diag!(
        "cs={:#x} ram_top={:#x} cpuid.1:ecx.hypervisor={}",
        cs,
        ctx.ram_top,
        hv_present
    );
    Outcome::Pass
}

/// Bring up every other vCPU (INIT-SIPI-SIPI to all but self through the local APIC, a
/// real-mode trampoline, then long mode in ring 0) and check that vCPU n reads VP_INDEX n.
fn smp_vp_index(ctx: &mut Ctx) -> Outcome {
    use crate::boot::{ap_tramp_end, ap_tramp_start, AP_MAILBOX, AP_TRAMPOLINE, MAX_CPUS};
    use crate::sys;
    let vcpus: usize = ctx
        .cmdline
        .get("vcpus")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    if vcpus < 2 {
        return Outcome::Skip(crate::msg!("single vCPU (vcpus={})", vcpus));
    }
    check!(
        vcpus <= MAX_CPUS,
        "vcpus={} exceeds the {} this guest can start",
        vcpus,
        MAX_CPUS
    );
    match sys::rdmsr(0x4000_0002) {
        Ok(0) => {}
        Ok(v) => crate::fail!("VP_INDEX on the boot vCPU reads {}", v),
        Err(f) => crate::fail!("rdmsr VP_INDEX raised vector {}", f.0),
    }
    let (start, end) = (
        &raw const ap_tramp_start as u64,
        &raw const ap_tramp_end as u64,
    );
    for i in 0..end - start {
        sys::write_bytes(AP_TRAMPOLINE + i, &[sys::read_u8(start + i)]);
    }
    const LAPIC: u64 = 0xfee0_0000;
    let svr = sys::read_u32(LAPIC + 0xf0);
    sys::write_u32(LAPIC + 0xf0, svr | 0x1ff);
    let id = sys::read_u32(LAPIC + 0x20) >> 24;
    diag!(
        "BSP APIC ID {}; starting {} AP(s) at {:#x}",
        id,
        vcpus - 1,
        AP_TRAMPOLINE
    );
    // ICR with destination shorthand "all excluding self".
    let icr = |low: u32| sys::write_u32(LAPIC + 0x300, (0b11 << 18) | low);
    let word = |i: usize| {
        // SAFETY: APs write these words once; volatile reads see it.
        unsafe { core::ptr::read_volatile((&raw const AP_MAILBOX as *const u32).add(i)) }
    };
    let up = || (1..vcpus).filter(|&a| word(a * 4 + 2) == 1).count();
    let spin = |tsc: u64| {
        let t0 = sys::rdtsc();
        while sys::rdtsc().wrapping_sub(t0) < tsc && up() < vcpus - 1 {
            core::hint::spin_loop();
        }
    };
    icr(0x0000_4500); // INIT, assert
    spin(10_000_000);
    let vector = (AP_TRAMPOLINE >> 12) as u32;
    for _ in 0..2 {
        if up() == vcpus - 1 {
            break;
        }
        icr(0x0000_4600 | vector); // STARTUP
        spin(2_000_000_000);
    }
    spin(10_000_000_000);
    for apic in 1..vcpus {
        let slot = apic * 4;
        check!(
            word(slot + 2) == 1,
            "vCPU with APIC ID {} did not come up ({} of {} did)",
            apic,
            up(),
            vcpus - 1
        );
        diag!("AP APIC ID {}: VP_INDEX {}", word(slot + 1), word(slot));
        check!(
            word(slot) == apic as u32,
            "VP_INDEX on the vCPU with APIC ID {} reads {}",
            apic,
            word(slot)
        );
    }
    Outcome::Pass
}

core::arch::global_asm!(
    ".text",
    ".global selftest_ud2",
    "selftest_ud2:",
    "ud2",
    "ret",
);
extern "C" {
    fn selftest_ud2();
}

/// The guest's own machinery, on any hypervisor: a faulting rdmsr in the gate is caught
/// as #GP, a real one works (EFER has LME and LMA set in long mode), and a fault at CPL 3
/// under an armed trap resumes with its vector.
fn selftest_traps(_ctx: &mut Ctx) -> Outcome {
    use crate::sys::{rdmsr, Fault};
    match rdmsr(0x4000_7777) {
        Err(Fault(13)) => {}
        other => crate::fail!("rdmsr of a bogus MSR gave {:?}, want #GP", other),
    }
    match rdmsr(0xC000_0080) {
        Ok(efer) => check!(efer & 0x500 == 0x500, "EFER {:#x} lacks LME|LMA", efer),
        Err(f) => crate::fail!("rdmsr EFER faulted: {}", f.0),
    }
    let target = selftest_ud2 as *const () as usize as u64;
    match crate::sys::call_from_ring3(target, 0, 0, 0) {
        Err(Fault(6)) => {}
        other => crate::fail!("ud2 at CPL 3 gave {:?}, want #UD", other),
    }
    // And the machinery is reusable after a trap.
    match rdmsr(0x4000_7777) {
        Err(Fault(13)) => Outcome::Pass,
        other => crate::fail!("second bogus rdmsr gave {:?}, want #GP", other),
    }
}

/// An unexpected exception must be reported as a KTAP failure and end the VM.
fn selftest_crash(_ctx: &mut Ctx) -> Outcome {
    // SAFETY: deliberately raises #UD without a trap armed; the exception path ends the VM.
    unsafe { core::arch::asm!("ud2") };
    crate::fail!("ud2 returned")
}

/// Never returns (ring 3, interrupts off): the runner's timeout path.
fn selftest_hang(_ctx: &mut Ctx) -> Outcome {
    diag!("spinning forever");
    loop {
        core::hint::spin_loop();
    }
}
