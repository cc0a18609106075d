//! Xen-compatibility adapter: Xen hypercalls translated into the native side.
//!
//! - The hypercall page (written when the guest writes a page GPA to Xen's MSR, 0x40000000,
//!   or 0x40000200 with `--interface both`) holds one 32-byte stub per hypercall number:
//!   `out 0xf7, eax; ret` (Xen's own stubs load the number into eax first: not needed here,
//!   the VMM takes the number from the stub the exit came from, which saves an emulated
//!   instruction). Call `page + nr*32` with args in rdi, rsi, rdx, r10, r8; the result comes
//!   back in rax. The VMM injects #UD when the exit is not from a stub's OUT or not from CPL 0 (like the
//!   Hyper-V page, see [`crate::hyperv`], a CPL 3 caller without access to port 0xf7 gets #GP
//!   from the OUT itself).
//! - Translations (each call appends one line to the VM's Xen trace, up to [`TRACE_MAX`]);
//!   "native" names the Hyper-V call or the KVM mechanism a Xen call becomes:
//!   - xen_version (17): version, extraversion, compile_info, capabilities, changeset,
//!     platform_parameters, pagesize, guest_handle: constants; get_features: the features
//!     that work here ([`FEATURES`]: auto_translated_physmap, hvm_callback_vector,
//!     hvm_safe_pvclock), submap 1.. -EINVAL.
//!   - console_io (18): CONSOLEIO_write -> HvCallPostDebugData (the console), read -> 0 bytes.
//!   - sched_op (29): yield -> HvCallNotifyLongSpinWait; block / poll -> the vCPU thread
//!     waits in the VMM (like a HLT, which has no hypercall in the native interface) until
//!     an event is pending, the poll's timeout passes or the VM ends; shutdown poweroff /
//!     reboot -> VM ends (status 0), crash / watchdog -> VM ends as a crash naming the
//!     reason, suspend -> -EINVAL (no save/restore); shutdown_code -> stored.
//!   - memory_op (12): maximum_ram_page, current/maximum_reservation, memory_map (the e820
//!     map), add_to_physmap: XENMAPSPACE_shared_info -> the guest's RAM frame becomes
//!     shared_info (zeroed; wall clock, time info, pending events written there); grant
//!     table frames -> -EINVAL (no grant table is offered), other spaces -EINVAL.
//!   - vcpu_op (24): register_vcpu_info (moves vcpu_info to a guest frame; -EINVAL if it
//!     crosses a page, is not RAM, or is registered twice, as Xen's `map_vcpu_info`),
//!     set_singleshot_timer / stop_singleshot_timer / set_timer_op (15) and
//!     set_periodic_timer / stop_periodic_timer -> VMM timers on the reference clock that
//!     raise VIRQ_TIMER (then KVM_SIGNAL_MSI), register_runstate_memory_area -> the area is
//!     written (state running), is_up -> KVM_GET_MP_STATE of that vCPU (read by its own
//!     thread between KVM_RUNs) and Xen's down flag, down -> the vCPU's thread stays out of
//!     KVM_RUN (the last vCPU up going down powers off, as Xen), up -> it runs KVM_RUN again
//!     (-EINVAL for a vCPU never started: HVM vCPUs start by INIT/SIPI through the in-kernel
//!     LAPIC), register_vcpu_time_memory_area -> -ENOSYS; bad vCPU -ENOENT.
//!   - event_channel_op (32): 2-level ABI ([`evtchn`]): bind_virq, bind_ipi, bind_vcpu,
//!     send, unmask, close, status, alloc_unbound + bind_interdomain to DOMID_SELF (a
//!     loopback pair; other domains -ESRCH); init_control (FIFO) -> -ENOSYS, so Linux keeps
//!     2-level. An event sets its bits in shared_info and, when the vCPU's
//!     `evtchn_upcall_pending` goes 0 -> 1, injects the upcall vector
//!     (HVMOP_set_evtchn_upcall_vector, advertised in CPUID base+4, else the vector type of
//!     HVM_PARAM_CALLBACK_IRQ) as a fixed interrupt through the in-kernel LAPIC
//!     (KVM_SIGNAL_MSI to the vCPU's APIC ID: the VM has a KVM irqchip, so KVM_INTERRUPT is
//!     not available). Unlike Xen's callback vector, that one is in the LAPIC's in-service
//!     register until the guest EOIs. VIRQ_DEBUG: raised from the host ([`DebugKey`], as
//!     Xen's 'q' debug key does).
//!   - hvm_op (34): set_param / get_param (guests set only the parameters Xen lets them
//!     set, others -EPERM; unset ones read 0: no xenstore, no PV console, so xenbus finds
//!     no store), set_evtchn_upcall_vector, pagetable_dying -> -EINVAL as Xen answers a
//!     domain on hardware-assisted paging (KVM's two-dimensional paging has no shadow).
//!   - physdev_op (33): -ENOSYS with Xen's reason per sub-op (`xen/physdev.rs`: no PIRQ
//!     emulation, XENFEAT_hvm_pirqs not offered; not the hardware domain).
//!   - Everything else (grant_table_op, mmu_update, ...): -ENOSYS.
//! - Time: system time (pvclock `system_time`) is the reference time in ns since the VM was
//!   created, the same clock as Hyper-V's TIME_REF_COUNT (100 ns units), so both interfaces
//!   agree; `tsc_timestamp` is the calling vCPU's IA32_TSC read with it, the scale comes
//!   from KVM_GET_TSC_KHZ.
//! - Hypercalls by VMCALL/VMMCALL (Linux since the XSA-466 fixes, no hypercall page): see
//!   `hypercall::xen_vmcall_on_kick`: the same dispatch.
//! - pvclock refresh: when a vCPU arms a timer or comes back from block/poll/down, its TSC
//!   is sampled again and every vcpu_info's time info rewritten ([`refresh_time`]).
//! - Guest buffers are guest-virtual: translated through the guest's page tables
//!   ([`crate::pagewalk`]); an untranslatable buffer is -EFAULT. Frame numbers
//!   (add_to_physmap, register_vcpu_info) are guest-physical.
use crate::layout::MemEntry;
use crate::pagewalk::{read_virt, write_virt, PagingMode};
use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::abi::xen::*;
use crate::abi::{OPCODE_INT3, OPCODE_OUT_IMM8_EAX, OPCODE_RET, PAGE_SIZE};

pub mod evtchn;
pub mod shinfo;
pub mod timer;

mod deliver;
mod evtchn_op;
mod hvm;
mod memory;
mod physdev;
mod sched;
mod vcpu;
mod version;

use evtchn_op::event_channel_op;
use hvm::hvm_op;
use memory::memory_op;
use sched::sched_op;
use vcpu::{set_timer_op, vcpu_op};
use version::{console_io, xen_version};

pub use deliver::{refresh_time, DebugKey};
pub use shinfo::TscSample;

// Kept at their old paths for callers of `hypervisor::xen::*`.
pub use crate::abi::xen::{
    DOMID_SELF, EFAULT, EINVAL, ENOSYS, ESRCH, HVM_NR_PARAMS, HYPERVISOR_CONSOLE_IO,
    HYPERVISOR_HVM_OP, HYPERVISOR_MEMORY_OP, HYPERVISOR_SCHED_OP, HYPERVISOR_XEN_VERSION,
};

/// XENVER_extraversion string (Xen's buffer is 16 bytes).
pub const EXTRAVERSION: &[u8; EXTRAVERSION_SIZE] = b".0-hvcert\0\0\0\0\0\0\0";
/// XENVER_capabilities: an HVM x86-64 guest.
pub const CAPABILITIES: &[u8] = b"hvm-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_32p";
/// XENVER_changeset.
pub const CHANGESET: &[u8] = b"hvcert Xen adapter";
/// XENVER_compile_info fields: compiler, compile_by, compile_domain, compile_date.
pub const COMPILE_INFO: [&[u8]; 4] = [b"rustc", b"hvcert", b"hvcert", b"2026"];
/// Feature submap 0 (XENVER_get_features): only what this adapter implements.
pub const FEATURES: u32 = (1 << XENFEAT_AUTO_TRANSLATED_PHYSMAP)
    | (1 << XENFEAT_HVM_CALLBACK_VECTOR)
    | (1 << XENFEAT_HVM_SAFE_PVCLOCK);
/// Largest CONSOLEIO_write accepted in one call.
pub const CONSOLE_WRITE_MAX: u64 = 1 << 20;
/// Longest a timer may be armed ahead (a guest's deadline further out is clamped to this;
/// the VM's own timeout ends it long before).
pub const TIMER_MAX_AHEAD_NS: u64 = 1 << 40;

/// Trace lines kept per VM ([`Trace`]): a guest can make millions of Xen hypercalls in one
/// run, and every line would otherwise stay in memory until the VM ends.
pub const TRACE_MAX: usize = 4096;

/// A VM's Xen trace: the first [`TRACE_MAX`] lines in order, then only a count.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    lines: Vec<String>,
    omitted: u64,
}

impl Trace {
    /// Appends a line (or counts it once [`TRACE_MAX`] are kept).
    pub fn push(&mut self, line: String) {
        if self.lines.len() < TRACE_MAX {
            self.lines.push(line);
        } else {
            self.omitted += 1;
        }
    }

    /// The kept lines, and a last line counting the omitted ones (if any).
    pub fn to_vec(&self) -> Vec<String> {
        let mut v = self.lines.clone();
        if self.omitted > 0 {
            v.push(format!(
                "... {} more Xen hypercalls not traced (only the first {TRACE_MAX} are kept)",
                self.omitted
            ));
        }
        v
    }
}

/// Offset of the `out` in each stub.
pub const STUB_OUT_OFFSET: u64 = 0;

/// Stubs per page.
pub const STUBS: usize = (PAGE_SIZE / STUB_SIZE) as usize;

/// One 32-byte stub (the same for every hypercall number: the VMM finds the number from
/// the stub's place in the page).
pub fn stub() -> [u8; STUB_SIZE as usize] {
    let mut s = [OPCODE_INT3; STUB_SIZE as usize];
    let code = [
        OPCODE_OUT_IMM8_EAX,
        crate::layout::XEN_HYPERCALL_PORT as u8, // out 0xf7, eax
        OPCODE_RET,
    ];
    s[..code.len()].copy_from_slice(&code);
    s
}

/// The whole 4 KiB hypercall page: [`STUBS`] copies of [`stub`].
pub fn hypercall_page() -> [u8; PAGE_SIZE as usize] {
    let mut p = [0u8; PAGE_SIZE as usize];
    for chunk in p.chunks_exact_mut(STUB_SIZE as usize) {
        chunk.copy_from_slice(&stub());
    }
    p
}

/// The name a Xen hypercall number is counted under (`hypercall_N` for unknown numbers).
pub fn name(nr: u32) -> String {
    match nr {
        HYPERVISOR_MEMORY_OP => "memory_op".into(),
        HYPERVISOR_SET_TIMER_OP => "set_timer_op".into(),
        HYPERVISOR_XEN_VERSION => "xen_version".into(),
        HYPERVISOR_CONSOLE_IO => "console_io".into(),
        HYPERVISOR_GRANT_TABLE_OP => "grant_table_op".into(),
        HYPERVISOR_VCPU_OP => "vcpu_op".into(),
        HYPERVISOR_SCHED_OP => "sched_op".into(),
        HYPERVISOR_EVENT_CHANNEL_OP => "event_channel_op".into(),
        HYPERVISOR_PHYSDEV_OP => "physdev_op".into(),
        HYPERVISOR_HVM_OP => "hvm_op".into(),
        n => format!("hypercall_{n}"),
    }
}

/// Injects an upcall vector into a vCPU (the VMM: KVM_SIGNAL_MSI to its LAPIC).
pub trait Upcall: Send + Sync {
    /// Raises `vector` on vCPU `vcpu` as a fixed, edge-triggered interrupt; `false` when
    /// it could not be delivered (the VM is gone).
    fn inject(&self, vcpu: u32, vector: u8) -> bool;
}

/// Wakes vCPU threads waiting in SCHEDOP_block / SCHEDOP_poll when an event is delivered.
#[derive(Debug, Default)]
pub struct Notify {
    generation: Mutex<u64>,
    cv: Condvar,
}

impl Notify {
    /// The current generation (read before checking the wait condition).
    pub fn generation(&self) -> u64 {
        *crate::state::lock(&self.generation)
    }
    /// Bumps the generation and wakes every waiter.
    pub fn bump(&self) {
        *crate::state::lock(&self.generation) += 1;
        self.cv.notify_all();
    }
    /// Waits until the generation differs from `seen` or `max` passes.
    pub fn wait(&self, seen: u64, max: Duration) {
        let g = crate::state::lock(&self.generation);
        if *g != seen {
            return;
        }
        let _ = self.cv.wait_timeout(g, max);
    }
}

/// What a vCPU waits for in SCHEDOP_block / SCHEDOP_poll (done by the caller, outside the
/// state's lock).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wait {
    /// The waiting vCPU.
    pub vcpu: u32,
    /// Ports to poll; empty = any event for the vCPU (SCHEDOP_block).
    pub ports: Vec<u32>,
    /// Reference time (ns) at which the wait ends anyway.
    pub deadline: Option<u64>,
    /// VCPUOP_down on itself: the wait ends when VCPUOP_up (from another vCPU) brings it
    /// back (or the VM ends), not on events.
    pub until_up: bool,
}

/// Per-VM Xen state.
pub struct XenState {
    /// GPA of the hypercall page, once written.
    pub page_gpa: Option<u64>,
    /// HVM parameters set through HVMOP_set_param.
    pub params: BTreeMap<u32, u64>,
    /// vCPUs of the guest.
    pub vcpus: u32,
    /// GPA of shared_info, once mapped (XENMEM_add_to_physmap).
    pub shared_info: Option<u64>,
    /// vcpu_info GPAs registered with VCPUOP_register_vcpu_info (index = vCPU).
    pub vcpu_info: Vec<Option<u64>>,
    /// Per-vCPU upcall vectors (HVMOP_set_evtchn_upcall_vector).
    pub upcall_vectors: Vec<Option<u8>>,
    /// The event-channel port table.
    pub evtchn: evtchn::Table,
    /// Ports that became pending before shared_info was mapped.
    pub early_pending: Vec<u32>,
    /// The last time sample written into the time infos.
    pub time: Option<TscSample>,
    /// SCHEDOP_shutdown_code's code.
    pub shutdown_code: Option<u32>,
    /// Single-shot timer deadlines, shared with the timer thread.
    pub timers: Arc<timer::Timers>,
    /// Whether the timer thread was started.
    pub timer_thread: bool,
    /// How upcalls are injected (none in unit tests).
    pub sink: Option<Arc<dyn Upcall>>,
    /// Wakes SCHEDOP_block / SCHEDOP_poll waiters.
    pub notify: Arc<Notify>,
    /// Upcalls injected so far.
    pub upcalls: u64,
    /// Per vCPU: whether it has left the wait for INIT/SIPI (KVM_GET_MP_STATE, read by its
    /// own thread when it leaves KVM_RUN); vCPU 0 starts running.
    pub started: Vec<bool>,
    /// Per vCPU: Xen's `_VPF_down`, set by VCPUOP_down, cleared by VCPUOP_up.
    pub down: Vec<bool>,
    /// Per vCPU: an upcall whose injection KVM refused (see `deliver`), to retry.
    pub owed: Vec<bool>,
}

impl std::fmt::Debug for XenState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XenState")
            .field("page_gpa", &self.page_gpa)
            .field("shared_info", &self.shared_info)
            .field("vcpu_info", &self.vcpu_info)
            .field("evtchn", &self.evtchn)
            .field("upcalls", &self.upcalls)
            .finish_non_exhaustive()
    }
}

impl Default for XenState {
    fn default() -> Self {
        XenState::new(1)
    }
}

impl XenState {
    /// The state of a guest with `vcpus` vCPUs, before any call.
    pub fn new(vcpus: u32) -> Self {
        let n = vcpus as usize;
        XenState {
            page_gpa: None,
            params: BTreeMap::new(),
            vcpus,
            shared_info: None,
            vcpu_info: vec![None; n],
            upcall_vectors: vec![None; n],
            evtchn: evtchn::Table::new(vcpus),
            early_pending: Vec::new(),
            time: None,
            shutdown_code: None,
            timers: Arc::new(timer::Timers::new(n)),
            timer_thread: false,
            sink: None,
            notify: Arc::new(Notify::default()),
            upcalls: 0,
            started: (0..n).map(|v| v == 0).collect(),
            down: vec![false; n],
            owed: vec![false; n],
        }
    }

    /// VCPUOP_is_up: the vCPU runs (left INIT/SIPI) and was not taken down.
    pub fn is_up(&self, v: u32) -> bool {
        let v = v as usize;
        self.started.get(v).copied().unwrap_or(false) && !self.down.get(v).copied().unwrap_or(true)
    }

    /// Records that vCPU `v` left the wait for INIT/SIPI.
    pub fn mark_started(&mut self, v: u32) {
        if let Some(s) = self.started.get_mut(v as usize) {
            *s = true;
        }
        self.notify.bump();
    }

    /// GPA of vCPU `v`'s vcpu_info: the registered one, else its slot in shared_info.
    pub fn vcpu_info_gpa(&self, v: u32) -> Option<u64> {
        if let Some(Some(g)) = self.vcpu_info.get(v as usize) {
            return Some(*g);
        }
        let si = self.shared_info?;
        ((v as usize) < LEGACY_MAX_VCPUS && v < self.vcpus)
            .then(|| si + u64::from(v) * VCPU_INFO_SIZE)
    }

    /// The vector upcalls for vCPU `v` use, if the guest set one.
    pub fn upcall_vector(&self, v: u32) -> Option<u8> {
        if let Some(Some(vec)) = self.upcall_vectors.get(v as usize) {
            return Some(*vec);
        }
        let p = *self.params.get(&HVM_PARAM_CALLBACK_IRQ)?;
        (p >> HVM_PARAM_CALLBACK_TYPE_SHIFT == HVM_PARAM_CALLBACK_TYPE_VECTOR).then_some(p as u8)
    }

    /// Whether a SCHEDOP_block / SCHEDOP_poll wait is over (an event it waits for is
    /// pending).
    pub fn wait_done(&self, mem: &GuestMemoryMmap, w: &Wait) -> bool {
        if w.until_up {
            return !self.down.get(w.vcpu as usize).copied().unwrap_or(false);
        }
        if w.ports.is_empty() {
            return self
                .vcpu_info_gpa(w.vcpu)
                .and_then(|vi| shinfo::flag(mem, vi + VI_UPCALL_PENDING))
                .is_some_and(|f| f != 0);
        }
        let Some(si) = self.shared_info else {
            return w.ports.iter().any(|p| self.early_pending.contains(p));
        };
        w.ports.iter().any(|&p| {
            shinfo::test(mem, si + SI_EVTCHN_PENDING + u64::from(p / 64) * 8, p % 64) == Some(true)
        })
    }

    /// Writes the time info of every vCPU's vcpu_info from `s`.
    fn write_times(&mut self, mem: &GuestMemoryMmap, s: TscSample) {
        self.time = Some(s);
        for v in 0..self.vcpus {
            if let Some(vi) = self.vcpu_info_gpa(v) {
                shinfo::write_time(mem, vi + VI_TIME, s);
            }
        }
    }
}

/// How a Xen call ends the VM, if it does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XenEnd {
    /// SCHEDOP_shutdown poweroff or reboot: the VM ends as a shutdown.
    Poweroff,
    /// SCHEDOP_shutdown crash: the VM ends as a crash with this reason.
    Crash(String),
}

/// What one Xen hypercall did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Value for RAX (0 or a negative errno).
    pub rax: i64,
    /// Trace line.
    pub trace: String,
    /// Bytes for the console.
    pub console: Vec<u8>,
    /// Native call this was translated to (counted under its own name too).
    pub native: Option<&'static str>,
    /// Whether the call ends the VM.
    pub end: Option<XenEnd>,
    /// A wait the caller does before returning (SCHEDOP_block / SCHEDOP_poll).
    pub wait: Option<Wait>,
    /// A timer was armed: the caller starts the timer thread if it is not running.
    pub timer_armed: bool,
}

/// The guest environment a call sees.
pub struct Env<'a> {
    /// Guest memory.
    pub mem: &'a GuestMemoryMmap,
    /// The calling vCPU's paging mode (buffers are guest-virtual).
    pub paging: PagingMode,
    /// The guest's e820 map.
    pub memory_map: &'a [MemEntry],
    /// The calling vCPU.
    pub vcpu: u32,
    /// Reference time now (ns since the VM was created).
    pub now_ns: u64,
    /// Samples the calling vCPU's TSC with the reference time (an ioctl: only called by
    /// the calls that write time info); `None` when it cannot.
    pub clock: &'a dyn Fn() -> Option<TscSample>,
    /// Unix time (ns) of reference time 0, for the wall clock.
    pub boot_unix_ns: u128,
}

impl Env<'_> {
    fn read(&self, va: u64, len: usize) -> Result<Vec<u8>, i64> {
        read_virt(self.mem, self.paging, va, len).map_err(|_| EFAULT)
    }
    fn write(&self, va: u64, data: &[u8]) -> Result<(), i64> {
        write_virt(self.mem, self.paging, va, data).map_err(|_| EFAULT)
    }
    /// Writes a field at `off` bytes into the guest structure at `va`: a structure that
    /// wraps around the end of the address space is -EFAULT (found by the chaos test: a
    /// guest handle near 2^64 made `va + off` overflow).
    fn write_field(&self, va: u64, off: u64, data: &[u8]) -> Result<(), i64> {
        self.write(va.checked_add(off).ok_or(EFAULT)?, data)
    }
    fn read_u32(&self, va: u64) -> Result<u32, i64> {
        let b = self.read(va, 4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn ram_pages(&self) -> u64 {
        self.memory_map
            .iter()
            .filter(|e| e.kind == crate::layout::E820_RAM)
            .map(|e| e.size >> 12)
            .sum()
    }
    fn max_ram_pfn(&self) -> u64 {
        self.memory_map
            .iter()
            .filter(|e| e.kind == crate::layout::E820_RAM)
            .map(|e| e.addr.saturating_add(e.size) >> 12)
            .max()
            .unwrap_or(0)
            .saturating_sub(1)
    }
    /// Whether the frame at `gpa` is RAM in the e820 map (and mapped).
    fn is_ram(&self, gpa: u64, len: u64) -> bool {
        let end = gpa.saturating_add(len);
        self.memory_map.iter().any(|e| {
            e.kind == crate::layout::E820_RAM
                && gpa >= e.addr
                && end <= e.addr.saturating_add(e.size)
        }) && shinfo::in_one_ram_page(self.mem, gpa, len)
    }
}

fn le_u64(b: &[u8], off: usize) -> u64 {
    b.get(off..off + 8)
        .and_then(|s| s.try_into().ok())
        .map(u64::from_le_bytes)
        .unwrap_or(0)
}

fn le_u32(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_le_bytes)
        .unwrap_or(0)
}

fn out(rax: i64, trace: String) -> Outcome {
    Outcome {
        rax,
        trace,
        console: Vec::new(),
        native: None,
        end: None,
        wait: None,
        timer_armed: false,
    }
}

/// Executes Xen hypercall `nr` with `args` (rdi, rsi, rdx, r10, r8).
pub fn dispatch(state: &mut XenState, env: &Env<'_>, nr: u32, args: [u64; 5]) -> Outcome {
    // The caller runs, so its local APIC may take an upcall refused before.
    state.retry_owed(env.vcpu);
    match nr {
        HYPERVISOR_XEN_VERSION => xen_version(env, args),
        HYPERVISOR_CONSOLE_IO => console_io(env, args),
        HYPERVISOR_SCHED_OP => sched_op(state, env, args),
        HYPERVISOR_MEMORY_OP => memory_op(state, env, args),
        HYPERVISOR_HVM_OP => hvm_op(state, env, args),
        HYPERVISOR_VCPU_OP => vcpu_op(state, env, args),
        HYPERVISOR_SET_TIMER_OP => set_timer_op(state, env, args),
        HYPERVISOR_EVENT_CHANNEL_OP => event_channel_op(state, env, args),
        HYPERVISOR_PHYSDEV_OP => physdev::physdev_op(args),
        _ => out(ENOSYS, format!("{}(...) -> -ENOSYS", name(nr))),
    }
}

fn res(r: Result<i64, i64>) -> i64 {
    r.unwrap_or_else(|e| e)
}

fn errname(rc: i64) -> String {
    match rc {
        ENOSYS => "-ENOSYS".into(),
        EFAULT => "-EFAULT".into(),
        EINVAL => "-EINVAL".into(),
        ESRCH => "-ESRCH".into(),
        ENOENT => "-ENOENT".into(),
        EPERM => "-EPERM".into(),
        EEXIST => "-EEXIST".into(),
        ENOSPC => "-ENOSPC".into(),
        ETIME => "-ETIME".into(),
        n => format!("{n:#x}"),
    }
}

/// A NUL-padded copy of `s` in a buffer of `size` bytes (the last byte stays NUL).
fn padded(s: &[u8], size: usize) -> Vec<u8> {
    let mut v = vec![0u8; size];
    let n = s.len().min(size.saturating_sub(1));
    v[..n].copy_from_slice(&s[..n]);
    v
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_smp;
