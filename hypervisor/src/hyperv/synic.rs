//! SynIC delivery: messages into the SIMP page's slots (with the MessagePending/EOM
//! protocol), event flags into the SIEFP page, and the SINT vector through the in-kernel
//! LAPIC.
//!
//! Rules (TLFS "Synthetic Interrupt Controller"):
//! - Everything needs SCONTROL.Enable on the target VP; messages need SIMP.Enable and events
//!   SIEFP.Enable ([`SynicError::Disabled`], [`SynicError::NoPage`] otherwise).
//! - A message for (vp, sint) is written into SIMP slot `sint` when its MessageType is
//!   HVMSG_NONE: bytes 4..256 first, then the type (a release store), so a guest that sees
//!   the type sees the message. Otherwise it is queued (at most [`MAX_QUEUED`] per SINT,
//!   [`SynicError::QueueFull`] past that) and the slot's MessagePending flag is set. The
//!   guest frees the slot (type = HVMSG_NONE), sees MessagePending and writes EOM; EOM (or
//!   any SynIC MSR write: [`Synic::retry`]) moves the next queued message into every free
//!   slot. A message written while others still wait carries MessagePending itself.
//!   After setting MessagePending the slot is read again: a guest that freed it in between
//!   (and so saw no flag) gets the message at once instead of waiting for an EOM.
//! - An event sets bit `flag` of the SINT's 2048-bit block in the SIEFP page (an atomic OR
//!   on the u64 holding it, as the guest clears bits with atomic operations too); the
//!   vector is injected only when the bit went from 0 to 1.
//! - The vector (SINTx bits 7:0) is injected as a fixed, edge-triggered MSI to the VP's APIC
//!   ([`Inject`]) unless the SINT is masked or in polling mode: then the message or flag is
//!   still written and the guest finds it when it looks (polling) or after unmasking.
//! - AutoEOI is *not* honoured: KVM's in-kernel LAPIC has no way to deliver a vector without
//!   setting its ISR bit, so the guest must EOI as for any fixed interrupt. The bit is kept
//!   (it reads back) and leaf 0x40000004 recommends DeprecatingAutoEOI (bit 9), which is
//!   what makes Linux leave it clear (`hv_recommend_using_aeoi()`).
//! - All guest memory goes through vm-memory's bounds-checked accessors; a page that is not
//!   RAM any more is [`SynicError::Memory`], never a panic.
//! - Callers: vCPU threads (hypercalls, MSR writes) and the `hv-stimer` thread, whose
//!   seccomp filter allows KVM_SIGNAL_MSI. A device worker thread's filter does not allow
//!   that ioctl: a device that posts from its own thread needs KVM_SIGNAL_MSI added to the
//!   worker rules (or to post from the vCPU thread that handles the guest's request).
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, VolatileMemory};

use super::stimer::{self, RefTime};
use super::{Partition, VpState};
use crate::abi::hv::{
    HV_STATUS_INVALID_CONNECTION_ID, OVERLAY_ENABLE, SCONTROL_ENABLE, SINT_MASKED, SINT_POLLING,
    SINT_VECTOR_MASK,
};
use crate::abi::hv_synic::*;
use crate::abi::PAGE_SIZE;
use crate::state::lock;

/// Most messages queued per (VP, SINT) behind a busy slot.
pub const MAX_QUEUED: usize = 64;

/// A message for a SIMP slot (payload ≤ 240 bytes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HvMessage {
    /// HV_MESSAGE_TYPE (not HVMSG_NONE).
    pub message_type: u32,
    /// Payload, at most [`MESSAGE_MAX_PAYLOAD`] bytes.
    pub payload: Vec<u8>,
}

/// Why a message or event could not be delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SynicError {
    /// No such VP.
    BadVp,
    /// SINT number above 15.
    BadSint,
    /// Event flag number above 2047.
    BadFlag,
    /// Payload over 240 bytes, or message type HVMSG_NONE.
    BadMessage,
    /// SCONTROL.Enable is clear on the VP.
    Disabled,
    /// The SIMP (messages) or SIEFP (events) page is disabled.
    NoPage,
    /// [`MAX_QUEUED`] messages already wait for this slot.
    QueueFull,
    /// The page is not guest RAM.
    Memory,
}

impl std::fmt::Display for SynicError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

impl std::error::Error for SynicError {}

/// Raises an interrupt vector on a VP (the VM's in-kernel LAPIC).
pub trait Inject: Send + Sync {
    /// Raises `vector` on VP `vp` as a fixed, edge-triggered interrupt; `false` when it could
    /// not be delivered (the VM is gone).
    fn inject(&self, vp: u32, vector: u8) -> bool;
    /// Sends a raw MSI (address low word, data) through the in-kernel irqchip; `false` when
    /// it was not delivered (or the injector cannot send raw MSIs).
    fn msi(&self, _address_lo: u32, _data: u32) -> bool {
        false
    }
}

/// Where the guest's HvCallPostMessage / HvCallSignalEvent go (VMBus registers one).
pub trait HvConnections: Send + Sync {
    /// HvCallPostMessage from vCPU `vp` to `connection_id`; returns an HV_STATUS.
    fn post_message(&self, vp: u32, connection_id: u32, message_type: u32, payload: &[u8]) -> u16;
    /// HvCallSignalEvent; returns an HV_STATUS.
    fn signal_event(&self, vp: u32, connection_id: u32, flag: u16) -> u16;
}

/// With no connection registered: every id is unknown.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoConnections;

impl HvConnections for NoConnections {
    fn post_message(&self, _: u32, _: u32, _: u32, _: &[u8]) -> u16 {
        HV_STATUS_INVALID_CONNECTION_ID
    }
    fn signal_event(&self, _: u32, _: u32, _: u16) -> u16 {
        HV_STATUS_INVALID_CONNECTION_ID
    }
}

/// Per-VP delivery state: the messages waiting behind each busy SIMP slot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SynicQueues {
    queued: [VecDeque<HvMessage>; SINT_COUNT],
}

impl SynicQueues {
    /// Messages waiting for SINT `sint`'s slot.
    pub fn queued(&self, sint: u8) -> usize {
        self.queued.get(usize::from(sint)).map_or(0, VecDeque::len)
    }

    /// Whether a message of `message_type` whose payload starts with `prefix` waits for
    /// SINT `sint`'s slot (a timer's earlier expiry: see [`super::stimer`]).
    pub fn waiting(&self, sint: u8, message_type: u32, prefix: &[u8]) -> bool {
        self.queued.get(usize::from(sint)).is_some_and(|q| {
            q.iter()
                .any(|m| m.message_type == message_type && m.payload.starts_with(prefix))
        })
    }
}

/// The vector to inject for `sint` now, if any: SCONTROL enabled, SINT neither masked nor
/// polling.
fn vector_of(vp: &VpState, sint: usize) -> Option<u8> {
    let s = *vp.sint.get(sint)?;
    (vp.scontrol & SCONTROL_ENABLE != 0 && s & (SINT_MASKED | SINT_POLLING) == 0)
        .then_some((s & SINT_VECTOR_MASK) as u8)
}

/// GPA of an enabled overlay page.
fn page(msr: u64) -> Option<u64> {
    (msr & OVERLAY_ENABLE != 0).then_some(msr & !(PAGE_SIZE - 1))
}

/// The 256 bytes of a message as its slot holds them, type excluded (bytes 4..256).
fn message_tail(msg: &HvMessage, pending: bool) -> [u8; (MESSAGE_SIZE - 4) as usize] {
    let mut b = [0u8; (MESSAGE_SIZE - 4) as usize];
    let at = |off: u64| (off - 4) as usize;
    let n = msg.payload.len().min(MESSAGE_MAX_PAYLOAD);
    b[at(MESSAGE_PAYLOAD_SIZE_OFFSET)] = n as u8;
    b[at(MESSAGE_FLAGS_OFFSET)] = if pending { MESSAGE_FLAG_PENDING } else { 0 };
    let p = at(MESSAGE_PAYLOAD_OFFSET);
    b[p..p + n].copy_from_slice(&msg.payload[..n]);
    b
}

/// Message delivery on one VP, with the partition locked.
struct Slots<'a> {
    vp: &'a mut VpState,
    mem: &'a GuestMemoryMmap,
}

impl Slots<'_> {
    fn simp(&self) -> Result<u64, SynicError> {
        if self.vp.scontrol & SCONTROL_ENABLE == 0 {
            return Err(SynicError::Disabled);
        }
        page(self.vp.simp).ok_or(SynicError::NoPage)
    }

    fn slot(&self, sint: usize) -> Result<u64, SynicError> {
        Ok(self.simp()? + sint as u64 * MESSAGE_SIZE)
    }

    fn slot_type(&self, slot: u64) -> Result<u32, SynicError> {
        self.mem
            .load::<u32>(GuestAddress(slot + MESSAGE_TYPE_OFFSET), Ordering::Acquire)
            .map_err(|_| SynicError::Memory)
    }

    fn write_message(&self, slot: u64, msg: &HvMessage, pending: bool) -> Result<(), SynicError> {
        let tail = message_tail(msg, pending);
        self.mem
            .write_slice(&tail, GuestAddress(slot + 4))
            .and_then(|()| {
                self.mem.store(
                    msg.message_type,
                    GuestAddress(slot + MESSAGE_TYPE_OFFSET),
                    Ordering::Release,
                )
            })
            .map_err(|_| SynicError::Memory)
    }

    fn set_pending(&self, slot: u64) -> Result<(), SynicError> {
        let a = GuestAddress(slot + MESSAGE_FLAGS_OFFSET);
        let f: u8 = self.mem.read_obj(a).map_err(|_| SynicError::Memory)?;
        self.mem
            .store(f | MESSAGE_FLAG_PENDING, a, Ordering::SeqCst)
            .map_err(|_| SynicError::Memory)
    }

    /// Moves queued messages of `sint` into its slot while the slot is free (at most one
    /// fits; the loop is for a slot freed while MessagePending was being set). Returns
    /// whether a message was written.
    fn flush(&mut self, sint: usize) -> Result<bool, SynicError> {
        let slot = self.slot(sint)?;
        loop {
            if self.vp.synic.queued[sint].is_empty() {
                return Ok(false);
            }
            if self.slot_type(slot)? == HVMSG_NONE {
                let Some(msg) = self.vp.synic.queued[sint].pop_front() else {
                    return Ok(false);
                };
                let more = !self.vp.synic.queued[sint].is_empty();
                if let Err(e) = self.write_message(slot, &msg, more) {
                    self.vp.synic.queued[sint].push_front(msg);
                    return Err(e);
                }
                return Ok(true);
            }
            self.set_pending(slot)?;
            std::sync::atomic::fence(Ordering::SeqCst);
            if self.slot_type(slot)? != HVMSG_NONE {
                return Ok(false);
            }
        }
    }

    /// Posts `msg` to `sint`: into the slot, or queued behind it. Returns the vector to
    /// inject (a message was written and the SINT is deliverable).
    fn post(&mut self, sint: usize, msg: &HvMessage) -> Result<Option<u8>, SynicError> {
        if msg.payload.len() > MESSAGE_MAX_PAYLOAD || msg.message_type == HVMSG_NONE {
            return Err(SynicError::BadMessage);
        }
        self.simp()?;
        if self.vp.synic.queued[sint].len() >= MAX_QUEUED {
            return Err(SynicError::QueueFull);
        }
        self.vp.synic.queued[sint].push_back(msg.clone());
        let wrote = match self.flush(sint) {
            Ok(w) => w,
            Err(e) => {
                // Not deliverable at all (memory): take it back.
                self.vp.synic.queued[sint].pop_back();
                return Err(e);
            }
        };
        Ok(if wrote {
            vector_of(self.vp, sint)
        } else {
            None
        })
    }

    /// After EOM or any SynIC register change: fills every free slot with its next queued
    /// message; returns the vectors to inject.
    fn retry(&mut self) -> Vec<u8> {
        let mut v = Vec::new();
        for sint in 0..SINT_COUNT {
            if let Ok(true) = self.flush(sint) {
                v.extend(vector_of(self.vp, sint));
            }
        }
        v
    }

    /// Sets event flag `flag` of `sint`; `(newly set, vector to inject)`.
    fn set_flag(&mut self, sint: usize, flag: u32) -> Result<(bool, Option<u8>), SynicError> {
        if flag >= EVENT_FLAGS_PER_SINT {
            return Err(SynicError::BadFlag);
        }
        if self.vp.scontrol & SCONTROL_ENABLE == 0 {
            return Err(SynicError::Disabled);
        }
        let base = page(self.vp.siefp).ok_or(SynicError::NoPage)?;
        let word = base + sint as u64 * EVENT_FLAGS_SIZE + u64::from(flag / 64) * 8;
        let m = 1u64 << (flag % 64);
        let slice = self
            .mem
            .get_slice(GuestAddress(word), 8)
            .map_err(|_| SynicError::Memory)?;
        let a = slice
            .get_atomic_ref::<AtomicU64>(0)
            .map_err(|_| SynicError::Memory)?;
        let newly = a.fetch_or(m, Ordering::SeqCst) & m == 0;
        Ok((
            newly,
            if newly {
                vector_of(self.vp, sint)
            } else {
                None
            },
        ))
    }
}

/// A VM's SynIC: delivery onto the per-VP registers of its [`Partition`], the injector, and
/// the connections HvCallPostMessage / HvCallSignalEvent go to.
pub struct Synic {
    hv: Arc<Mutex<Partition>>,
    inject: Option<Arc<dyn Inject>>,
    connections: RwLock<Arc<dyn HvConnections>>,
    /// The reference clock the synthetic timers run on.
    clock: RefTime,
    /// Wakes the timer thread.
    wake: Arc<stimer::Wake>,
    /// Whether the timer thread has been started.
    timer_thread: AtomicBool,
}

impl std::fmt::Debug for Synic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Synic")
            .field("inject", &self.inject.is_some())
            .finish_non_exhaustive()
    }
}

impl Synic {
    /// The SynIC of partition `hv`, injecting through `inject` (`None`: nothing is injected,
    /// for tests without KVM).
    /// `created`: when the VM was created (the reference clock's origin when the guest TSC
    /// rate is unknown).
    pub fn new(
        hv: Arc<Mutex<Partition>>,
        inject: Option<Arc<dyn Inject>>,
        created: Instant,
    ) -> Synic {
        let tsc = lock(&hv).tsc;
        Synic {
            hv,
            inject,
            connections: RwLock::new(Arc::new(NoConnections)),
            clock: RefTime { tsc, created },
            wake: Arc::default(),
            timer_thread: AtomicBool::new(false),
        }
    }

    /// The reference clock (TIME_REF_COUNT's).
    pub fn clock(&self) -> RefTime {
        self.clock
    }

    /// The partition it delivers to.
    pub fn partition(&self) -> &Arc<Mutex<Partition>> {
        &self.hv
    }

    /// Registers where HvCallPostMessage / HvCallSignalEvent go (replacing the previous one).
    pub fn set_connections(&self, c: Arc<dyn HvConnections>) {
        *self.connections.write().unwrap_or_else(|e| e.into_inner()) = c;
    }

    /// The registered connections ([`NoConnections`] until one is registered).
    pub fn connections(&self) -> Arc<dyn HvConnections> {
        self.connections
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Sends a raw MSI through the injector (the APIC-access ICR MSR).
    pub fn signal_msi(&self, address_lo: u32, data: u32) -> bool {
        self.inject
            .as_ref()
            .is_some_and(|i| i.msi(address_lo, data))
    }

    fn raise(&self, vp: u32, vectors: impl IntoIterator<Item = u8>) {
        if let Some(i) = &self.inject {
            for v in vectors {
                i.inject(vp, v);
            }
        }
    }

    fn with_vp<R>(
        &self,
        mem: &GuestMemoryMmap,
        vp: u32,
        f: impl FnOnce(&mut Slots<'_>) -> Result<R, SynicError>,
    ) -> Result<R, SynicError> {
        let mut hv = lock(&self.hv);
        let st = hv.vps.get_mut(vp as usize).ok_or(SynicError::BadVp)?;
        f(&mut Slots { vp: st, mem })
    }

    /// Deliver (or queue) a message to vCPU `vp`'s SINT `sint`.
    pub fn post_message(
        &self,
        mem: &GuestMemoryMmap,
        vp: u32,
        sint: u8,
        msg: &HvMessage,
    ) -> Result<(), SynicError> {
        let sint = usize::from(sint);
        if sint >= SINT_COUNT {
            return Err(SynicError::BadSint);
        }
        let v = self.with_vp(mem, vp, |s| s.post(sint, msg))?;
        self.raise(vp, v);
        Ok(())
    }

    /// Set event flag `flag` in vCPU `vp`'s SIEFP slot for `sint`; Ok(true) if it was newly
    /// set (and the vector injected, unless the SINT is masked or polling).
    pub fn signal_event(
        &self,
        mem: &GuestMemoryMmap,
        vp: u32,
        sint: u8,
        flag: u32,
    ) -> Result<bool, SynicError> {
        let sint = usize::from(sint);
        if sint >= SINT_COUNT {
            return Err(SynicError::BadSint);
        }
        let (newly, v) = self.with_vp(mem, vp, |s| s.set_flag(sint, flag))?;
        self.raise(vp, v);
        Ok(newly)
    }

    /// After a guest write to a STIMER MSR of `vp`: arms its enabled timers and wakes (or
    /// starts) the timer thread.
    pub fn stimers_written(self: &Arc<Self>, mem: &GuestMemoryMmap, vp: u32) {
        let now = self.clock.now();
        if let Some(st) = lock(&self.hv).vps.get_mut(vp as usize) {
            stimer::arm(&mut st.stimers, now);
        }
        if !self.timer_thread.swap(true, Ordering::SeqCst)
            && stimer::spawn(Arc::downgrade(self), self.wake.clone(), mem.clone()).is_err()
        {
            self.timer_thread.store(false, Ordering::SeqCst);
        }
        self.wake.notify();
    }

    /// Expires every timer due at reference time `now` (messages posted, vectors injected);
    /// returns the next deadline.
    pub fn run_timers(&self, mem: &GuestMemoryMmap, now: u64) -> Option<u64> {
        let mut raise = Vec::new();
        let mut next: Option<u64> = None;
        {
            let mut hv = lock(&self.hv);
            for (i, st) in hv.vps.iter_mut().enumerate() {
                let (fires, n) = stimer::expire(&mut st.stimers, now);
                if let Some(n) = n {
                    next = Some(next.map_or(n, |x| x.min(n)));
                }
                for f in fires {
                    match f {
                        stimer::Fire::Direct(v) => raise.push((i as u32, v)),
                        stimer::Fire::Message(sint, msg) => {
                            // An expiry of this timer still waiting behind a busy slot:
                            // this one is coalesced with it (as KVM keeps one pending
                            // message per timer), so timers cannot fill the queue.
                            if st.synic.waiting(sint, msg.message_type, &msg.payload[..4]) {
                                continue;
                            }
                            // Not deliverable (SynIC or SIMP off, queue full): dropped.
                            if let Ok(Some(v)) =
                                (Slots { vp: st, mem }).post(usize::from(sint), &msg)
                            {
                                raise.push((i as u32, v));
                            }
                        }
                    }
                }
            }
        }
        for (vp, v) in raise {
            self.raise(vp, [v]);
        }
        next
    }

    /// After a guest write to EOM or another SynIC MSR of `vp`: re-delivers queued messages
    /// into the slots that are free now, injecting their vectors.
    pub fn retry(&self, mem: &GuestMemoryMmap, vp: u32) {
        if let Ok(v) = self.with_vp(mem, vp, |s| Ok(s.retry())) {
            self.raise(vp, v);
        }
    }
}

#[cfg(test)]
#[path = "synic_tests.rs"]
mod tests;
