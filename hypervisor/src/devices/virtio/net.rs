//! virtio-net with a loopback backend (every transmitted frame comes back on the receive
//! queue: for tests) and a TAP backend. No offloads are offered: frames are plain Ethernet
//! frames behind a zeroed `virtio_net_hdr_v1` (12 bytes with VIRTIO_F_VERSION_1).

use std::collections::VecDeque;
use std::os::unix::io::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use virtio_bindings::bindings::virtio_net::{
    VIRTIO_NET_F_MAC, VIRTIO_NET_F_MTU, VIRTIO_NET_F_STATUS, VIRTIO_NET_S_LINK_UP,
};

use super::block::copy_config;
use super::chain::{self, Chain, Malformed};
use super::mmio::{QueueHandler, Queues, VirtioDevice};
use super::{Error, NetConfig};
pub use crate::devices::net_backend::open_tap;
use crate::devices::net_backend::{NetBackend, Sent};

/// Index of the receive queue.
pub const RX: usize = 0;
/// Index of the transmit queue.
pub const TX: usize = 1;
/// Size of each queue.
pub const QUEUE_SIZE: u16 = 256;
/// `struct virtio_net_hdr_v1` (flags, gso_type, hdr_len, gso_size, csum_start, csum_offset,
/// num_buffers).
pub const NET_HDR_LEN: u64 = 12;
/// The MTU reported in the config space.
pub const DEFAULT_MTU: u16 = 1500;
/// Frames waiting for a receive buffer (loopback or TAP input); more are dropped.
pub const MAX_PENDING: usize = 256;
/// Ethernet header + 802.1Q tag: a frame may be this much longer than the MTU.
const L2_OVERHEAD: usize = 18;
/// Shortest valid Ethernet frame header (dst, src, ethertype).
const ETH_HDR: usize = 14;

/// Frame counters, readable while the device runs.
#[derive(Debug, Default)]
pub struct NetStats {
    /// Frames the guest sent that reached the backend.
    pub tx_frames: AtomicU64,
    /// Frames delivered to the guest.
    pub rx_frames: AtomicU64,
    /// TX chains rejected (no header, device-writable buffers, too long) or not sent.
    pub tx_dropped: AtomicU64,
    /// Frames dropped on the receive side (no room, buffer too small, wrong direction).
    pub rx_dropped: AtomicU64,
}

impl NetStats {
    /// Reads one counter.
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// A virtio-net device model.
pub struct Net {
    backend: NetBackend,
    config: [u8; 12],
    mtu: u16,
    stats: Arc<NetStats>,
}

impl Net {
    /// A NIC with MAC `mac` on the backend `cfg` names (loopback or a TAP device).
    pub fn new(cfg: &NetConfig, mac: [u8; 6]) -> Result<Self, Error> {
        let backend = NetBackend::open(cfg)?;
        let mtu = DEFAULT_MTU;
        let mut config = [0u8; 12];
        config[0..6].copy_from_slice(&mac);
        config[6..8].copy_from_slice(&(VIRTIO_NET_S_LINK_UP as u16).to_le_bytes());
        config[8..10].copy_from_slice(&1u16.to_le_bytes()); // max_virtqueue_pairs
        config[10..12].copy_from_slice(&mtu.to_le_bytes());
        Ok(Net {
            backend,
            config,
            mtu,
            stats: Arc::new(NetStats::default()),
        })
    }

    /// The device's frame counters (shared; they stay readable after the VM ends).
    pub fn stats(&self) -> Arc<NetStats> {
        self.stats.clone()
    }

    /// A handler for direct (synchronous) use, as the worker thread uses it.
    pub fn handler(&self) -> Result<NetHandler, Error> {
        Ok(NetHandler {
            backend: self.backend.try_clone()?,
            pending: VecDeque::new(),
            stats: self.stats.clone(),
            max_frame: usize::from(self.mtu) + L2_OVERHEAD,
            buf: Vec::new(),
        })
    }
}

impl VirtioDevice for Net {
    fn device_id(&self) -> u32 {
        virtio_bindings::virtio_ids::VIRTIO_ID_NET
    }
    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE, QUEUE_SIZE]
    }
    fn device_features(&self) -> u64 {
        (1 << VIRTIO_NET_F_MAC) | (1 << VIRTIO_NET_F_MTU) | (1 << VIRTIO_NET_F_STATUS)
    }
    fn read_config(&self, offset: u64, data: &mut [u8]) {
        copy_config(&self.config, offset, data);
    }
    fn activate(&mut self, _features: u64) -> Result<Box<dyn QueueHandler>, Error> {
        Ok(Box::new(self.handler()?))
    }
    fn name(&self) -> &'static str {
        "net"
    }
}

/// Host-side frame processing of an active virtio-net device.
pub struct NetHandler {
    backend: NetBackend,
    pending: VecDeque<Vec<u8>>,
    stats: Arc<NetStats>,
    max_frame: usize,
    buf: Vec<u8>,
}

impl NetHandler {
    /// Frames received from the backend and not yet delivered to the guest.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// The payload of a TX chain, or None if the chain is not a valid frame.
    fn tx_frame<M: vm_memory::GuestMemory>(&self, mem: &M, c: &Chain) -> Option<Vec<u8>> {
        let rlen = c.readable_len();
        if !c.writable.is_empty() || rlen < NET_HDR_LEN {
            return None;
        }
        let len = usize::try_from(rlen - NET_HDR_LEN).ok()?;
        if !(ETH_HDR..=self.max_frame).contains(&len) {
            return None;
        }
        let mut frame = vec![0u8; len];
        chain::read_bytes(mem, &c.readable, NET_HDR_LEN, &mut frame).ok()?;
        Some(frame)
    }

    fn process_tx(&mut self, q: &mut Queues) -> Result<(), Malformed> {
        loop {
            q.disable_notification(TX)?;
            while let Some(c) = q.pop(TX)? {
                match self.tx_frame(q.mem, &c) {
                    None => bump(&self.stats.tx_dropped),
                    Some(frame) => match self.backend.send(frame) {
                        Sent::Looped(frame) => {
                            bump(&self.stats.tx_frames);
                            if self.pending.len() >= MAX_PENDING {
                                self.deliver_rx(q)?;
                            }
                            if self.pending.len() >= MAX_PENDING {
                                bump(&self.stats.rx_dropped);
                            } else {
                                self.pending.push_back(frame);
                            }
                        }
                        Sent::Delivered => bump(&self.stats.tx_frames),
                        Sent::Failed => bump(&self.stats.tx_dropped),
                    },
                }
                q.add_used(TX, c.head, 0)?;
            }
            if !q.enable_notification(TX)? {
                return Ok(());
            }
        }
    }

    /// Move pending frames into receive buffers while both exist.
    fn deliver_rx(&mut self, q: &mut Queues) -> Result<(), Malformed> {
        while let Some(frame) = self.pending.front() {
            let Some(c) = q.pop(RX)? else {
                // Out of buffers: ask for a notification when the driver adds some, and
                // re-check in case it did in the meantime.
                if q.enable_notification(RX)? {
                    continue;
                }
                return Ok(());
            };
            if !c.readable.is_empty() {
                // Wrong direction: return the buffer unused.
                bump(&self.stats.rx_dropped);
                q.add_used(RX, c.head, 0)?;
                continue;
            }
            let need = NET_HDR_LEN + frame.len() as u64;
            if c.writable_len() < need {
                // Too small for this frame: drop the frame, keep the buffer for the next.
                bump(&self.stats.rx_dropped);
                self.pending.pop_front();
                q.unpop(RX);
                continue;
            }
            let mut hdr = [0u8; NET_HDR_LEN as usize];
            hdr[10..12].copy_from_slice(&1u16.to_le_bytes()); // num_buffers
            let ok = chain::write_bytes(q.mem, &c.writable, 0, &hdr).is_ok()
                && chain::write_bytes(q.mem, &c.writable, NET_HDR_LEN, frame).is_ok();
            if ok {
                bump(&self.stats.rx_frames);
                q.add_used(RX, c.head, need as u32)?;
            } else {
                bump(&self.stats.rx_dropped);
                q.add_used(RX, c.head, 0)?;
            }
            self.pending.pop_front();
        }
        Ok(())
    }

    fn read_tap(&mut self) {
        self.backend
            .receive(&mut self.pending, MAX_PENDING, &mut self.buf);
    }
}

impl QueueHandler for NetHandler {
    fn queue_event(&mut self, idx: usize, q: &mut Queues) -> Result<(), Malformed> {
        if idx == TX {
            self.process_tx(q)?;
        }
        self.deliver_rx(q)
    }
    fn backend_fd(&self) -> Option<RawFd> {
        self.backend.fd()
    }
    fn backend_wanted(&self) -> bool {
        self.pending.len() < MAX_PENDING
    }
    fn backend_event(&mut self, q: &mut Queues) -> Result<(), Malformed> {
        self.read_tap();
        self.deliver_rx(q)
    }
}
