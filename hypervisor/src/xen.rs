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
//!     is_up, set_singleshot_timer / stop_singleshot_timer / set_timer_op (15) -> a VMM
//!     timer on the reference clock that raises VIRQ_TIMER, stop_periodic_timer -> 0 (no
//!     periodic timer ever runs), register_runstate_memory_area -> the area is written
//!     (state running), up/down -> -ENOSYS (HVM vCPUs start through INIT/SIPI here);
//!     bad vCPU -ENOENT.
//!   - event_channel_op (32): 2-level ABI ([`evtchn`]): bind_virq, bind_ipi, bind_vcpu,
//!     send, unmask, close, status; init_control (FIFO) -> -ENOSYS, so Linux keeps 2-level.
//!     An event sets its bits in shared_info and, when the vCPU's `evtchn_upcall_pending`
//!     goes 0 -> 1, injects the upcall vector (HVMOP_set_evtchn_upcall_vector, else the
//!     vector type of HVM_PARAM_CALLBACK_IRQ) as a fixed interrupt through the in-kernel
//!     LAPIC (KVM_SIGNAL_MSI to the vCPU's APIC ID: the VM has a KVM irqchip, so
//!     KVM_INTERRUPT is not available).
//!   - hvm_op (34): set_param / get_param (guests set only the parameters Xen lets them
//!     set, others -EPERM; unset ones read 0: no xenstore, no PV console, so xenbus finds
//!     no store), set_evtchn_upcall_vector, pagetable_dying -> 0 (a shadow-paging hint;
//!     KVM's two-dimensional paging has nothing to drop).
//!   - physdev_op (33): -ENOSYS, as Xen answers an HVM domain without PIRQ emulation
//!     (XENFEAT_hvm_pirqs is not offered).
//!   - Everything else (grant_table_op, mmu_update, ...): -ENOSYS.
//! - Time: system time (pvclock `system_time`) is the reference time in ns since the VM was
//!   created, the same clock as Hyper-V's TIME_REF_COUNT (100 ns units), so both interfaces
//!   agree; `tsc_timestamp` is the calling vCPU's IA32_TSC read with it, the scale comes
//!   from KVM_GET_TSC_KHZ.
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
        }
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

    /// Marks vCPU `v`'s upcall pending and injects its vector when it goes 0 -> 1.
    fn upcall(&mut self, mem: &GuestMemoryMmap, v: u32) -> Option<u8> {
        let vi = self.vcpu_info_gpa(v)?;
        let was = shinfo::set_flag(mem, vi + VI_UPCALL_PENDING)?;
        self.notify.bump();
        if was != 0 {
            return None;
        }
        let vector = self.upcall_vector(v)?;
        let sink = self.sink.as_ref()?;
        if sink.inject(v, vector) {
            self.upcalls += 1;
            Some(vector)
        } else {
            None
        }
    }

    /// Sets `port` pending (2-level ABI, Xen's `evtchn_2l_set_pending`); returns the vector
    /// injected, if one was.
    pub fn set_pending(&mut self, mem: &GuestMemoryMmap, port: u32) -> Option<u8> {
        let Some(si) = self.shared_info else {
            if !self.early_pending.contains(&port) {
                self.early_pending.push(port);
            }
            return None;
        };
        let word = u64::from(port / 64) * 8;
        let bit = port % 64;
        if shinfo::test_and_set(mem, si + SI_EVTCHN_PENDING + word, bit)? {
            return None;
        }
        self.notify.bump();
        if shinfo::test(mem, si + SI_EVTCHN_MASK + word, bit)? {
            return None;
        }
        let v = self.evtchn.get(port).ok()?.vcpu;
        let vi = self.vcpu_info_gpa(v)?;
        if shinfo::test_and_set(mem, vi + VI_PENDING_SEL, port / 64)? {
            return None;
        }
        self.upcall(mem, v)
    }

    /// EVTCHNOP_unmask (Xen's `evtchn_2l_unmask`): clears the mask, and a pending event
    /// then goes to its vCPU.
    fn unmask(&mut self, mem: &GuestMemoryMmap, port: u32) -> Result<Option<u8>, i64> {
        let p = self.evtchn.get(port)?;
        let Some(si) = self.shared_info else {
            return Ok(None);
        };
        let word = u64::from(port / 64) * 8;
        let bit = port % 64;
        shinfo::test_and_clear(mem, si + SI_EVTCHN_MASK + word, bit).ok_or(EFAULT)?;
        if shinfo::test(mem, si + SI_EVTCHN_PENDING + word, bit) == Some(true) {
            if let Some(vi) = self.vcpu_info_gpa(p.vcpu) {
                if shinfo::test_and_set(mem, vi + VI_PENDING_SEL, port / 64) == Some(false) {
                    return Ok(self.upcall(mem, p.vcpu));
                }
            }
        }
        Ok(None)
    }

    /// Raises `virq` on vCPU `v` if a port is bound to it (the timer thread's path).
    pub fn raise_virq(&mut self, mem: &GuestMemoryMmap, virq: u32, v: u32) -> Option<u8> {
        let port = self.evtchn.virq_port(virq, v)?;
        self.set_pending(mem, port)
    }

    /// Whether a SCHEDOP_block / SCHEDOP_poll wait is over (an event it waits for is
    /// pending).
    pub fn wait_done(&self, mem: &GuestMemoryMmap, w: &Wait) -> bool {
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
    match nr {
        HYPERVISOR_XEN_VERSION => xen_version(env, args),
        HYPERVISOR_CONSOLE_IO => console_io(env, args),
        HYPERVISOR_SCHED_OP => sched_op(state, env, args),
        HYPERVISOR_MEMORY_OP => memory_op(state, env, args),
        HYPERVISOR_HVM_OP => hvm_op(state, env, args),
        HYPERVISOR_VCPU_OP => vcpu_op(state, env, args),
        HYPERVISOR_SET_TIMER_OP => set_timer_op(state, env, args),
        HYPERVISOR_EVENT_CHANNEL_OP => event_channel_op(state, env, args),
        HYPERVISOR_PHYSDEV_OP => out(
            ENOSYS,
            format!(
                "physdev_op({}) -> -ENOSYS (no PIRQ emulation for this HVM guest)",
                args[0]
            ),
        ),
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

fn xen_version(env: &Env<'_>, a: [u64; 5]) -> Outcome {
    let write = |what: &str, data: &[u8]| {
        let rc = res(env.write(a[1], data).map(|_| 0));
        out(
            rc,
            format!("xen_version({what}, {:#x}) -> {}", a[1], errname(rc)),
        )
    };
    match a[0] {
        XENVER_VERSION => out(
            i64::from(VERSION),
            format!("xen_version(XENVER_version) -> {VERSION:#x}"),
        ),
        XENVER_EXTRAVERSION => write("XENVER_extraversion", EXTRAVERSION),
        XENVER_COMPILE_INFO => {
            let mut b = Vec::new();
            for (s, n) in COMPILE_INFO.iter().zip(COMPILE_INFO_FIELDS) {
                b.extend(padded(s, n));
            }
            write("XENVER_compile_info", &b)
        }
        XENVER_CAPABILITIES => write(
            "XENVER_capabilities",
            &padded(CAPABILITIES, CAPABILITIES_SIZE),
        ),
        XENVER_CHANGESET => write("XENVER_changeset", &padded(CHANGESET, CHANGESET_SIZE)),
        XENVER_PLATFORM_PARAMETERS => write(
            "XENVER_platform_parameters",
            &PLATFORM_VIRT_START.to_le_bytes(),
        ),
        XENVER_PAGESIZE => out(
            PAGE_SIZE as i64,
            format!("xen_version(XENVER_pagesize) -> {PAGE_SIZE}"),
        ),
        // The domain handle (a UUID) of this VM: all zeros, as for a domain built
        // without one.
        XENVER_GUEST_HANDLE => write("XENVER_guest_handle", &[0u8; GUEST_HANDLE_SIZE]),
        XENVER_GET_FEATURES => {
            // struct xen_feature_info { unsigned int submap_idx; uint32_t submap; }
            let rc = res(env.read_u32(a[1]).and_then(|idx| {
                if idx >= XENFEAT_NR_SUBMAPS {
                    return Err(EINVAL);
                }
                env.write(
                    a[1].wrapping_add(FEATURE_INFO_SUBMAP_OFFSET),
                    &FEATURES.to_le_bytes(),
                )
                .map(|_| 0)
            }));
            out(
                rc,
                format!(
                    "xen_version(XENVER_get_features, {:#x}) -> {FEATURES:#x}, {}",
                    a[1],
                    errname(rc)
                ),
            )
        }
        cmd => out(ENOSYS, format!("xen_version({cmd}) -> -ENOSYS")),
    }
}

fn console_io(env: &Env<'_>, a: [u64; 5]) -> Outcome {
    match a[0] {
        CONSOLEIO_WRITE => {
            let count = a[1];
            if count > CONSOLE_WRITE_MAX {
                return out(
                    EINVAL,
                    format!("console_io(CONSOLEIO_write, {count}) -> -EINVAL"),
                );
            }
            match env.read(a[2], count as usize) {
                Ok(data) => Outcome {
                    console: data,
                    native: Some("HvCallPostDebugData"),
                    ..out(
                        0,
                        format!("console_io(CONSOLEIO_write, {count}) -> console -> 0"),
                    )
                },
                Err(e) => out(
                    e,
                    format!(
                        "console_io(CONSOLEIO_write, {count}, {:#x}) -> {}",
                        a[2],
                        errname(e)
                    ),
                ),
            }
        }
        CONSOLEIO_READ => out(0, "console_io(CONSOLEIO_read) -> 0".into()),
        cmd => out(ENOSYS, format!("console_io({cmd}) -> -ENOSYS")),
    }
}

fn sched_op(state: &mut XenState, env: &Env<'_>, a: [u64; 5]) -> Outcome {
    match a[0] {
        SCHEDOP_YIELD => Outcome {
            native: Some("HvCallNotifyLongSpinWait"),
            ..out(
                0,
                "sched_op(SCHEDOP_yield) -> HvCallNotifyLongSpinWait -> 0".into(),
            )
        },
        SCHEDOP_BLOCK => {
            // Xen enables event delivery (clears evtchn_upcall_mask) and blocks until an
            // event is pending for this vCPU.
            if let Some(vi) = state.vcpu_info_gpa(env.vcpu) {
                let _ = env.mem.write_obj(0u8, GuestAddress(vi + VI_UPCALL_MASK));
            }
            Outcome {
                wait: Some(Wait {
                    vcpu: env.vcpu,
                    ports: Vec::new(),
                    deadline: None,
                }),
                ..out(
                    0,
                    "sched_op(SCHEDOP_block) -> wait for an event -> 0".into(),
                )
            }
        }
        SCHEDOP_POLL => sched_poll(state, env, a),
        SCHEDOP_SHUTDOWN => {
            // struct sched_shutdown { unsigned int reason; }
            let reason = match env.read_u32(a[1]) {
                Ok(r) => r,
                Err(e) => {
                    return out(
                        e,
                        format!("sched_op(SCHEDOP_shutdown, {:#x}) -> -EFAULT", a[1]),
                    )
                }
            };
            match reason {
                SHUTDOWN_POWEROFF | SHUTDOWN_REBOOT => {
                    let what = if reason == SHUTDOWN_POWEROFF {
                        "poweroff"
                    } else {
                        "reboot"
                    };
                    Outcome {
                        end: Some(XenEnd::Poweroff),
                        ..out(0, format!("sched_op(SCHEDOP_shutdown, {what}) -> VM ends"))
                    }
                }
                SHUTDOWN_CRASH | SHUTDOWN_WATCHDOG => {
                    let what = if reason == SHUTDOWN_CRASH {
                        "crash"
                    } else {
                        "watchdog"
                    };
                    let code = state
                        .shutdown_code
                        .map(|c| format!(", shutdown code {c}"))
                        .unwrap_or_default();
                    Outcome {
                        end: Some(XenEnd::Crash(format!(
                            "guest reported a crash (Xen SCHEDOP_shutdown {what}{code})"
                        ))),
                        ..out(
                            0,
                            format!("sched_op(SCHEDOP_shutdown, {what}) -> VM ends as a crash"),
                        )
                    }
                }
                r => out(
                    EINVAL,
                    format!("sched_op(SCHEDOP_shutdown, reason {r}) -> -EINVAL"),
                ),
            }
        }
        SCHEDOP_SHUTDOWN_CODE => match env.read_u32(a[1]) {
            Ok(code) => {
                state.shutdown_code = Some(code);
                out(0, format!("sched_op(SCHEDOP_shutdown_code, {code}) -> 0"))
            }
            Err(e) => out(e, "sched_op(SCHEDOP_shutdown_code) -> -EFAULT".into()),
        },
        cmd => out(ENOSYS, format!("sched_op({cmd}) -> -ENOSYS")),
    }
}

/// SCHEDOP_poll: `struct sched_poll { XEN_GUEST_HANDLE(evtchn_port_t) ports;
/// unsigned int nr_ports; uint64_t timeout; }`.
fn sched_poll(state: &XenState, env: &Env<'_>, a: [u64; 5]) -> Outcome {
    let r = env.read(a[1], SCHED_POLL_SIZE).and_then(|p| {
        let (list, n, timeout) = (le_u64(&p, 0), le_u32(&p, 8), le_u64(&p, 16));
        if n > SCHED_POLL_MAX_PORTS {
            return Err(EINVAL);
        }
        let raw = env.read(list, n as usize * 4)?;
        let ports: Vec<u32> = raw.chunks_exact(4).map(|c| le_u32(c, 0)).collect();
        for &port in &ports {
            state.evtchn.get(port)?;
        }
        Ok((ports, timeout))
    });
    match r {
        Ok((ports, timeout)) => {
            let n = ports.len();
            Outcome {
                wait: Some(Wait {
                    vcpu: env.vcpu,
                    ports,
                    deadline: (timeout != 0).then_some(timeout),
                }),
                ..out(
                    0,
                    format!("sched_op(SCHEDOP_poll, {n} ports, timeout {timeout}) -> wait -> 0"),
                )
            }
        }
        Err(e) => out(e, format!("sched_op(SCHEDOP_poll) -> {}", errname(e))),
    }
}

fn memory_op(state: &mut XenState, env: &Env<'_>, a: [u64; 5]) -> Outcome {
    match a[0] {
        XENMEM_MAXIMUM_RAM_PAGE => {
            let pfn = env.max_ram_pfn() as i64;
            out(
                pfn,
                format!("memory_op(XENMEM_maximum_ram_page) -> {pfn:#x}"),
            )
        }
        XENMEM_CURRENT_RESERVATION | XENMEM_MAXIMUM_RESERVATION => {
            let what = if a[0] == XENMEM_CURRENT_RESERVATION {
                "current_reservation"
            } else {
                "maximum_reservation"
            };
            let rc = res(env.read(a[1], DOMID_SIZE).and_then(|d| {
                let domid = u16::from_le_bytes([d[0], d[1]]);
                if domid == DOMID_SELF || domid == 0 {
                    Ok(env.ram_pages() as i64)
                } else {
                    Err(ESRCH)
                }
            }));
            out(rc, format!("memory_op(XENMEM_{what}) -> {}", errname(rc)))
        }
        XENMEM_MEMORY_MAP => {
            // struct xen_memory_map { unsigned int nr_entries; (pad) XEN_GUEST_HANDLE buffer; }
            let rc = res(env.read(a[1], MEMORY_MAP_SIZE).and_then(|m| {
                let cap = le_u32(&m, 0) as usize;
                let buf = le_u64(&m, MEMORY_MAP_BUFFER_OFFSET);
                let n = env.memory_map.len().min(cap);
                let mut bytes = Vec::with_capacity(n * E820_ENTRY_SIZE);
                for e in &env.memory_map[..n] {
                    bytes.extend_from_slice(&e.addr.to_le_bytes());
                    bytes.extend_from_slice(&e.size.to_le_bytes());
                    bytes.extend_from_slice(&e.kind.to_le_bytes());
                }
                env.write(buf, &bytes)?;
                env.write(a[1], &(n as u32).to_le_bytes())?;
                Ok(0)
            }));
            out(
                rc,
                format!("memory_op(XENMEM_memory_map) -> {}", errname(rc)),
            )
        }
        XENMEM_ADD_TO_PHYSMAP => add_to_physmap(state, env, a),
        cmd => out(ENOSYS, format!("memory_op({cmd}) -> -ENOSYS")),
    }
}

/// XENMEM_add_to_physmap: XENMAPSPACE_shared_info puts shared_info at `gpfn`.
fn add_to_physmap(state: &mut XenState, env: &Env<'_>, a: [u64; 5]) -> Outcome {
    let p = match env.read(a[1], ADD_TO_PHYSMAP_SIZE) {
        Ok(p) => p,
        Err(e) => return out(e, "memory_op(XENMEM_add_to_physmap) -> -EFAULT".into()),
    };
    let domid = u16::from_le_bytes([p[0], p[1]]);
    let space = le_u32(&p, ADD_TO_PHYSMAP_SPACE_OFFSET);
    let idx = le_u64(&p, ADD_TO_PHYSMAP_IDX_OFFSET);
    let gpfn = le_u64(&p, ADD_TO_PHYSMAP_GPFN_OFFSET);
    let head =
        format!("memory_op(XENMEM_add_to_physmap, space {space}, idx {idx}, gpfn {gpfn:#x})");
    if domid != DOMID_SELF && domid != 0 {
        return out(ESRCH, format!("{head} -> -ESRCH"));
    }
    match space {
        XENMAPSPACE_SHARED_INFO if idx == 0 => {}
        XENMAPSPACE_GRANT_TABLE => {
            return out(
                EINVAL,
                format!("{head} -> -EINVAL (no grant table is offered)"),
            )
        }
        _ => return out(EINVAL, format!("{head} -> -EINVAL")),
    }
    let gpa = gpfn.wrapping_mul(PAGE_SIZE);
    if gpfn >= (1 << 52) || !env.is_ram(gpa, PAGE_SIZE) {
        return out(EINVAL, format!("{head} -> -EINVAL (not a RAM frame)"));
    }
    if env
        .mem
        .write_slice(&[0u8; PAGE_SIZE as usize], GuestAddress(gpa))
        .is_err()
    {
        return out(EFAULT, format!("{head} -> -EFAULT"));
    }
    state.shared_info = Some(gpa);
    let max_pfn = env.max_ram_pfn() + 1;
    let _ = env
        .mem
        .write_obj(max_pfn, GuestAddress(gpa + SI_ARCH_MAX_PFN));
    shinfo::write_wallclock(env.mem, gpa, env.boot_unix_ns);
    if let Some(s) = (env.clock)() {
        state.write_times(env.mem, s);
    }
    for port in std::mem::take(&mut state.early_pending) {
        state.set_pending(env.mem, port);
    }
    out(0, format!("{head} -> shared_info at {gpa:#x} -> 0"))
}

fn hvm_op(state: &mut XenState, env: &Env<'_>, a: [u64; 5]) -> Outcome {
    match a[0] {
        HVMOP_SET_PARAM | HVMOP_GET_PARAM => hvm_param(state, env, a),
        HVMOP_SET_EVTCHN_UPCALL_VECTOR => {
            // struct xen_hvm_evtchn_upcall_vector { uint32_t vcpu; uint8_t vector; }
            let r = env.read(a[1], 5).and_then(|b| {
                let (vcpu, vector) = (le_u32(&b, 0), b[4]);
                if vector < UPCALL_VECTOR_MIN {
                    return Err(EINVAL);
                }
                let slot = state.upcall_vectors.get_mut(vcpu as usize).ok_or(ENOENT)?;
                *slot = Some(vector);
                Ok((vcpu, vector))
            });
            match r {
                Ok((v, vec)) => out(
                    0,
                    format!("hvm_op(HVMOP_set_evtchn_upcall_vector, vcpu {v}, {vec:#x}) -> 0"),
                ),
                Err(e) => out(
                    e,
                    format!("hvm_op(HVMOP_set_evtchn_upcall_vector) -> {}", errname(e)),
                ),
            }
        }
        HVMOP_PAGETABLE_DYING => {
            // struct xen_hvm_pagetable_dying { domid_t domid; uint64_t gpa; }
            let rc = res(env.read(a[1], 16).and_then(|b| {
                let domid = u16::from_le_bytes([b[0], b[1]]);
                if domid != DOMID_SELF && domid != 0 {
                    return Err(ESRCH);
                }
                Ok(0)
            }));
            out(
                rc,
                format!(
                    "hvm_op(HVMOP_pagetable_dying) -> {} (nothing to drop: two-dimensional paging)",
                    errname(rc)
                ),
            )
        }
        cmd => out(ENOSYS, format!("hvm_op({cmd}) -> -ENOSYS")),
    }
}

fn hvm_param(state: &mut XenState, env: &Env<'_>, a: [u64; 5]) -> Outcome {
    // struct xen_hvm_param { domid_t domid; (pad) uint32_t index; uint64_t value; }
    let op = if a[0] == HVMOP_SET_PARAM {
        "HVMOP_set_param"
    } else {
        "HVMOP_get_param"
    };
    let p = match env.read(a[1], HVM_PARAM_SIZE) {
        Ok(p) => p,
        Err(e) => return out(e, format!("hvm_op({op}, {:#x}) -> -EFAULT", a[1])),
    };
    let domid = u16::from_le_bytes([p[0], p[1]]);
    let index = le_u32(&p, HVM_PARAM_INDEX_OFFSET);
    let value = le_u64(&p, HVM_PARAM_VALUE_OFFSET);
    if domid != DOMID_SELF && domid != 0 {
        return out(ESRCH, format!("hvm_op({op}, dom {domid:#x}) -> -ESRCH"));
    }
    if index >= HVM_NR_PARAMS {
        return out(EINVAL, format!("hvm_op({op}, {index}) -> -EINVAL"));
    }
    if a[0] == HVMOP_SET_PARAM {
        if !HVM_GUEST_SETTABLE_PARAMS.contains(&index) {
            return out(
                EPERM,
                format!("hvm_op(HVMOP_set_param, {index}) -> -EPERM (not settable by the guest)"),
            );
        }
        state.params.insert(index, value);
        out(
            0,
            format!("hvm_op(HVMOP_set_param, {index}, {value:#x}) -> 0"),
        )
    } else {
        let v = state.params.get(&index).copied().unwrap_or(0);
        let rc = res(env
            .write(
                a[1].wrapping_add(HVM_PARAM_VALUE_OFFSET as u64),
                &v.to_le_bytes(),
            )
            .map(|_| 0));
        out(
            rc,
            format!(
                "hvm_op(HVMOP_get_param, {index}) -> {v:#x}, {}",
                errname(rc)
            ),
        )
    }
}

/// Arms vCPU `v`'s single-shot timer for `deadline` (reference ns); a deadline already
/// passed raises VIRQ_TIMER at once.
fn arm_timer(state: &mut XenState, env: &Env<'_>, v: u32, deadline: u64) -> (bool, String) {
    if deadline <= env.now_ns {
        let vec = state.raise_virq(env.mem, VIRQ_TIMER, v);
        return (false, format!("expired -> VIRQ_TIMER now (vector {vec:?})"));
    }
    let deadline = deadline.min(env.now_ns.saturating_add(TIMER_MAX_AHEAD_NS));
    state.timers.set(v as usize, Some(deadline));
    (
        true,
        format!("timer in {} us", (deadline - env.now_ns) / 1000),
    )
}

fn set_timer_op(state: &mut XenState, env: &Env<'_>, a: [u64; 5]) -> Outcome {
    if a[0] == 0 {
        state.timers.set(env.vcpu as usize, None);
        return out(0, "set_timer_op(0) -> timer stopped -> 0".into());
    }
    let (armed, what) = arm_timer(state, env, env.vcpu, a[0]);
    Outcome {
        timer_armed: armed,
        ..out(0, format!("set_timer_op({}) -> {what} -> 0", a[0]))
    }
}

fn vcpu_op(state: &mut XenState, env: &Env<'_>, a: [u64; 5]) -> Outcome {
    let (cmd, vcpu, arg) = (a[0], a[1], a[2]);
    let head = format!("vcpu_op({cmd}, vcpu {vcpu})");
    if vcpu >= u64::from(state.vcpus) {
        return out(ENOENT, format!("{head} -> -ENOENT"));
    }
    let v = vcpu as u32;
    match cmd {
        VCPUOP_IS_UP => out(1, format!("{head} VCPUOP_is_up -> 1")),
        VCPUOP_UP | VCPUOP_DOWN => out(
            ENOSYS,
            format!("{head} VCPUOP_up/down -> -ENOSYS (HVM vCPUs start through INIT/SIPI)"),
        ),
        VCPUOP_STOP_PERIODIC_TIMER => out(
            0,
            format!("{head} VCPUOP_stop_periodic_timer -> 0 (none runs)"),
        ),
        VCPUOP_STOP_SINGLESHOT_TIMER => {
            if v != env.vcpu {
                return out(
                    EINVAL,
                    format!(
                        "{head} VCPUOP_stop_singleshot_timer -> -EINVAL (not the calling vCPU)"
                    ),
                );
            }
            state.timers.set(v as usize, None);
            out(0, format!("{head} VCPUOP_stop_singleshot_timer -> 0"))
        }
        VCPUOP_SET_SINGLESHOT_TIMER => {
            // struct vcpu_set_singleshot_timer { uint64_t timeout_abs_ns; uint32_t flags; }
            if v != env.vcpu {
                return out(
                    EINVAL,
                    format!("{head} VCPUOP_set_singleshot_timer -> -EINVAL (not the calling vCPU)"),
                );
            }
            let b = match env.read(arg, SINGLESHOT_TIMER_SIZE) {
                Ok(b) => b,
                Err(e) => return out(e, format!("{head} VCPUOP_set_singleshot_timer -> -EFAULT")),
            };
            let (deadline, flags) = (le_u64(&b, 0), le_u32(&b, 8));
            if flags & VCPU_SSHOTTMR_FUTURE != 0 && deadline <= env.now_ns {
                return out(
                    ETIME,
                    format!(
                        "{head} VCPUOP_set_singleshot_timer({deadline}, future) -> -ETIME (now {})",
                        env.now_ns
                    ),
                );
            }
            let (armed, what) = arm_timer(state, env, v, deadline);
            Outcome {
                timer_armed: armed,
                ..out(
                    0,
                    format!("{head} VCPUOP_set_singleshot_timer({deadline}) -> {what} -> 0"),
                )
            }
        }
        VCPUOP_REGISTER_VCPU_INFO => register_vcpu_info(state, env, v, arg, &head),
        VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA => {
            // struct vcpu_register_runstate_memory_area { uint64_t addr (guest-virtual); }
            let rc = res(env.read(arg, 8).and_then(|b| {
                let va = le_u64(&b, 0);
                // struct vcpu_runstate_info: state RUNSTATE_running (0), state_entry_time,
                // time[4] (time running = now).
                let mut info = vec![0u8; RUNSTATE_INFO_SIZE];
                info[8..16].copy_from_slice(&env.now_ns.to_le_bytes());
                info[16..24].copy_from_slice(&env.now_ns.to_le_bytes());
                env.write(va, &info).map(|_| 0)
            }));
            out(
                rc,
                format!(
                    "{head} VCPUOP_register_runstate_memory_area -> {}",
                    errname(rc)
                ),
            )
        }
        _ => out(ENOSYS, format!("{head} -> -ENOSYS")),
    }
}

/// VCPUOP_register_vcpu_info: `struct vcpu_register_vcpu_info { uint64_t mfn;
/// uint32_t offset; uint32_t rsvd; }`; errors as Xen's `map_vcpu_info`.
fn register_vcpu_info(
    state: &mut XenState,
    env: &Env<'_>,
    v: u32,
    arg: u64,
    head: &str,
) -> Outcome {
    let b = match env.read(arg, REGISTER_VCPU_INFO_SIZE) {
        Ok(b) => b,
        Err(e) => return out(e, format!("{head} VCPUOP_register_vcpu_info -> -EFAULT")),
    };
    let (mfn, offset, rsvd) = (le_u64(&b, 0), le_u32(&b, 8), le_u32(&b, 12));
    let head = format!("{head} VCPUOP_register_vcpu_info(mfn {mfn:#x}, offset {offset:#x})");
    if rsvd != 0 || u64::from(offset) > PAGE_SIZE - VCPU_INFO_SIZE {
        return out(EINVAL, format!("{head} -> -EINVAL (crosses a page)"));
    }
    if state.vcpu_info.get(v as usize).is_some_and(|s| s.is_some()) {
        return out(EINVAL, format!("{head} -> -EINVAL (already registered)"));
    }
    let gpa = mfn.wrapping_mul(PAGE_SIZE).wrapping_add(u64::from(offset));
    if mfn >= (1 << 52) || !env.is_ram(gpa, VCPU_INFO_SIZE) {
        return out(EINVAL, format!("{head} -> -EINVAL (not RAM)"));
    }
    // Xen copies the current contents (pending state) over, then points the vCPU at it.
    let old = state
        .vcpu_info_gpa(v)
        .and_then(|g| {
            let mut b = [0u8; VCPU_INFO_SIZE as usize];
            env.mem.read_slice(&mut b, GuestAddress(g)).ok().map(|_| b)
        })
        .unwrap_or([0u8; VCPU_INFO_SIZE as usize]);
    if env.mem.write_slice(&old, GuestAddress(gpa)).is_err() {
        return out(EFAULT, format!("{head} -> -EFAULT"));
    }
    // Linux sets evtchn_pending_sel in the new area to all ones so it rescans.
    let _ = env
        .mem
        .write_obj(u64::MAX, GuestAddress(gpa + VI_PENDING_SEL));
    if let Some(slot) = state.vcpu_info.get_mut(v as usize) {
        *slot = Some(gpa);
    }
    let sample = (env.clock)().or(state.time);
    if let Some(s) = sample {
        state.time = Some(s);
        shinfo::write_time(env.mem, gpa + VI_TIME, s);
    }
    out(0, format!("{head} -> vcpu_info at {gpa:#x} -> 0"))
}

fn event_channel_op(state: &mut XenState, env: &Env<'_>, a: [u64; 5]) -> Outcome {
    let (cmd, arg) = (a[0], a[1]);
    let rw = |n: usize| env.read(arg, n);
    let r: Result<(i64, String), (i64, String)> = match cmd {
        EVTCHNOP_BIND_VIRQ => (|| {
            let b = rw(12).map_err(|e| (e, String::new()))?;
            let (virq, vcpu) = (le_u32(&b, 0), le_u32(&b, 4));
            let port = state
                .evtchn
                .bind_virq(virq, vcpu)
                .map_err(|e| (e, format!("bind_virq({virq}, vcpu {vcpu})")))?;
            env.write_field(arg, 8, &port.to_le_bytes())
                .map_err(|e| (e, String::new()))?;
            Ok((0, format!("bind_virq({virq}, vcpu {vcpu}) -> port {port}")))
        })(),
        EVTCHNOP_BIND_IPI => (|| {
            let vcpu = env.read_u32(arg).map_err(|e| (e, String::new()))?;
            let port = state
                .evtchn
                .bind_ipi(vcpu)
                .map_err(|e| (e, format!("bind_ipi(vcpu {vcpu})")))?;
            env.write_field(arg, 4, &port.to_le_bytes())
                .map_err(|e| (e, String::new()))?;
            Ok((0, format!("bind_ipi(vcpu {vcpu}) -> port {port}")))
        })(),
        EVTCHNOP_BIND_VCPU => (|| {
            let b = rw(8).map_err(|e| (e, String::new()))?;
            let (port, vcpu) = (le_u32(&b, 0), le_u32(&b, 4));
            state
                .evtchn
                .bind_vcpu(port, vcpu)
                .map_err(|e| (e, format!("bind_vcpu(port {port}, vcpu {vcpu})")))?;
            Ok((0, format!("bind_vcpu(port {port}, vcpu {vcpu})")))
        })(),
        EVTCHNOP_CLOSE => (|| {
            let port = env.read_u32(arg).map_err(|e| (e, String::new()))?;
            state
                .evtchn
                .close(port)
                .map_err(|e| (e, format!("close({port})")))?;
            if let Some(si) = state.shared_info {
                let _ = shinfo::test_and_clear(
                    env.mem,
                    si + SI_EVTCHN_PENDING + u64::from(port / 64) * 8,
                    port % 64,
                );
            }
            Ok((0, format!("close({port})")))
        })(),
        EVTCHNOP_SEND => (|| {
            let port = env.read_u32(arg).map_err(|e| (e, String::new()))?;
            let vcpu = state
                .evtchn
                .send_target(port)
                .map_err(|e| (e, format!("send({port})")))?;
            let vec = state.set_pending(env.mem, port);
            let how = match vec {
                Some(v) => format!("KVM_SIGNAL_MSI vector {v:#x} to vCPU {vcpu}"),
                None => "pending bits only".into(),
            };
            Ok((0, format!("send({port}) -> {how}")))
        })(),
        EVTCHNOP_UNMASK => (|| {
            let port = env.read_u32(arg).map_err(|e| (e, String::new()))?;
            let vec = state
                .unmask(env.mem, port)
                .map_err(|e| (e, format!("unmask({port})")))?;
            Ok((0, format!("unmask({port}) -> upcall {vec:?}")))
        })(),
        EVTCHNOP_STATUS => (|| {
            // struct evtchn_status { domid_t dom; evtchn_port_t port; uint32_t status;
            // uint32_t vcpu; union { ... uint32_t virq; } u; }
            let b = rw(8).map_err(|e| (e, String::new()))?;
            let dom = u16::from_le_bytes([b[0], b[1]]);
            let port = le_u32(&b, 4);
            if dom != DOMID_SELF && dom != 0 {
                return Err((ESRCH, format!("status(dom {dom:#x})")));
            }
            let (st, vcpu, u) = state
                .evtchn
                .status(port)
                .map_err(|e| (e, format!("status({port})")))?;
            let mut o = Vec::new();
            o.extend_from_slice(&st.to_le_bytes());
            o.extend_from_slice(&vcpu.to_le_bytes());
            o.extend_from_slice(&u.to_le_bytes());
            env.write_field(arg, 8, &o)
                .map_err(|e| (e, String::new()))?;
            Ok((0, format!("status({port}) -> {st}, vcpu {vcpu}")))
        })(),
        EVTCHNOP_INIT_CONTROL => Err((
            ENOSYS,
            "init_control (FIFO ABI not offered: 2-level)".into(),
        )),
        c => Err((ENOSYS, format!("{c}"))),
    };
    match r {
        Ok((rc, what)) => out(rc, format!("event_channel_op({what}) -> {}", errname(rc))),
        Err((rc, what)) => out(
            rc,
            format!("event_channel_op({cmd} {what}) -> {}", errname(rc)),
        ),
    }
}

/// Samples time for the pvclock and writes it everywhere (the caller has the vCPU).
pub fn refresh_time(state: &mut XenState, mem: &GuestMemoryMmap, s: TscSample) {
    state.write_times(mem, s);
}

#[cfg(test)]
mod tests;
