//! What a virtio device model implements to sit behind the transport ([`super::mmio`]):
//! [`VirtioDevice`] (identity, features, config space, activation) and [`QueueHandler`]
//! (request processing on the worker thread), with [`Queues`], the handler's view of its
//! queues.

use std::os::unix::io::RawFd;

use virtio_bindings::bindings::virtio_ring::VIRTIO_RING_F_INDIRECT_DESC;
use virtio_queue::{Queue, QueueOwnedT, QueueT};
use vm_memory::{GuestAddress, GuestMemoryMmap};

use super::chain::{self, Chain, Malformed};
use super::Error;

/// A virtio device model behind the transport.
pub trait VirtioDevice: Send {
    /// Virtio device ID (1 = net, 2 = block).
    fn device_id(&self) -> u32;
    /// Maximum size of each queue (powers of two); the number of entries is the queue count.
    fn queue_max_sizes(&self) -> &[u16];
    /// Device-specific feature bits (the transport adds [`TRANSPORT_FEATURES`](super::mmio::TRANSPORT_FEATURES)).
    fn device_features(&self) -> u64;
    /// Read device config space; bytes past its end read as zero.
    fn read_config(&self, offset: u64, data: &mut [u8]);
    /// Write device config space (ignored by default).
    fn write_config(&mut self, _offset: u64, _data: &[u8]) {}
    /// Called at DRIVER_OK: create the handler that owns the host-side resources while the
    /// device runs (it lives on the worker thread and is dropped on reset).
    fn activate(&mut self, features: u64) -> Result<Box<dyn QueueHandler>, Error>;
    /// Short name for the worker thread and messages.
    fn name(&self) -> &'static str;
}

/// The queues of an active device, as seen by its [`QueueHandler`].
pub struct Queues<'a> {
    /// Guest memory the queues point into.
    pub mem: &'a GuestMemoryMmap<()>,
    /// The device's queues, as the driver configured them.
    pub queues: &'a mut [Queue],
    /// Negotiated features.
    pub features: u64,
    /// Bit i set: queue i got new used entries since the last interrupt check.
    pub used: u32,
}

impl Queues<'_> {
    /// Whether the driver accepted feature `bit`.
    pub fn has_feature(&self, bit: u32) -> bool {
        self.features & (1u64 << bit) != 0
    }

    /// Pop and validate the next available chain of queue `idx` (None if the queue is empty
    /// or not ready).
    pub fn pop(&mut self, idx: usize) -> Result<Option<Chain>, Malformed> {
        let indirect_ok = self.has_feature(VIRTIO_RING_F_INDIRECT_DESC);
        let mem = self.mem;
        let Some(q) = self.queues.get_mut(idx) else {
            return Ok(None);
        };
        if !q.ready() {
            return Ok(None);
        }
        let desc_table = GuestAddress(q.desc_table());
        let next = match q.iter(mem) {
            Ok(mut it) => it.next(),
            Err(e) => return Err(Malformed::Ring(e.to_string())),
        };
        match next {
            None => Ok(None),
            Some(c) => chain::collect(c, desc_table, indirect_ok).map(Some),
        }
    }

    /// Put the last popped chain back (it will be popped again).
    pub fn unpop(&mut self, idx: usize) {
        if let Some(q) = self.queues.get_mut(idx) {
            q.go_to_previous_position();
        }
    }

    /// Return a chain to the driver with `len` bytes written into its buffers.
    pub fn add_used(&mut self, idx: usize, head: u16, len: u32) -> Result<(), Malformed> {
        let mem = self.mem;
        let q = self
            .queues
            .get_mut(idx)
            .ok_or_else(|| Malformed::Ring(format!("no queue {idx}")))?;
        q.add_used(mem, head, len)
            .map_err(|e| Malformed::Ring(format!("used ring of queue {idx}: {e}")))?;
        self.used |= 1 << idx;
        Ok(())
    }

    /// Re-enable driver notifications for queue `idx`; true if more chains arrived meanwhile
    /// (the caller must process them).
    pub fn enable_notification(&mut self, idx: usize) -> Result<bool, Malformed> {
        let mem = self.mem;
        match self.queues.get_mut(idx) {
            Some(q) if q.ready() => q
                .enable_notification(mem)
                .map_err(|e| Malformed::Ring(format!("queue {idx}: {e}"))),
            _ => Ok(false),
        }
    }

    /// Asks the driver not to notify queue `idx` (VIRTQ_USED_F_NO_NOTIFY / event index).
    pub fn disable_notification(&mut self, idx: usize) -> Result<(), Malformed> {
        let mem = self.mem;
        match self.queues.get_mut(idx) {
            Some(q) if q.ready() => q
                .disable_notification(mem)
                .map_err(|e| Malformed::Ring(format!("queue {idx}: {e}"))),
            _ => Ok(()),
        }
    }

    /// Whether the driver wants an interrupt for the used entries added so far.
    pub fn needs_interrupt(&mut self) -> Result<bool, Malformed> {
        let mut any = false;
        let mem = self.mem;
        for (i, q) in self.queues.iter_mut().enumerate() {
            if self.used & (1 << i) != 0 {
                any |= q
                    .needs_notification(mem)
                    .map_err(|e| Malformed::Ring(format!("queue {i}: {e}")))?;
            }
        }
        self.used = 0;
        Ok(any)
    }
}

/// Host-side request processing of an active device; runs on the device's worker thread.
pub trait QueueHandler: Send {
    /// The driver notified queue `idx` (or the worker starts: every queue once).
    fn queue_event(&mut self, idx: usize, q: &mut Queues) -> Result<(), Malformed>;
    /// A host fd to poll for input (a TAP device), if any.
    fn backend_fd(&self) -> Option<RawFd> {
        None
    }
    /// Whether the worker should currently poll [`Self::backend_fd`] (false while there is no
    /// room to take more input, so a readable TAP does not spin the worker).
    fn backend_wanted(&self) -> bool {
        false
    }
    /// The backend fd is readable.
    fn backend_event(&mut self, _q: &mut Queues) -> Result<(), Malformed> {
        Ok(())
    }
}
