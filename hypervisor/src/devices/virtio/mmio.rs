//! The virtio-mmio transport (virtio 1.x, register layout version 2) and the device worker;
//! the device-facing traits are in [`super::device`] (re-exported here).

use std::os::unix::io::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use virtio_bindings::bindings::virtio_config::{
    VIRTIO_CONFIG_S_ACKNOWLEDGE, VIRTIO_CONFIG_S_DRIVER, VIRTIO_CONFIG_S_DRIVER_OK,
    VIRTIO_CONFIG_S_FAILED, VIRTIO_CONFIG_S_FEATURES_OK, VIRTIO_CONFIG_S_NEEDS_RESET,
    VIRTIO_F_VERSION_1,
};
use virtio_bindings::bindings::virtio_ring::{
    VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC,
};
use virtio_queue::{Queue, QueueT};
use vm_memory::{GuestAddress, GuestMemoryMmap};
use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::eventfd::EventFd;

use super::chain::Malformed;
use super::{Error, Interrupt, INT_CONFIG, INT_VRING};
use crate::devices::bus::MmioDevice;

pub use super::device::{QueueHandler, Queues, VirtioDevice};

/// "virt" in little-endian.
pub const MAGIC: u32 = 0x7472_6976;
/// Register layout version of the modern virtio-mmio transport.
pub const VERSION: u32 = 2;
/// Vendor ID reported to the guest ("HVCT").
pub const VENDOR_ID: u32 = 0x5443_5648;

// Register offsets (virtio 1.2, 4.2.2).
const REG_MAGIC: u64 = 0x000;
const REG_VERSION: u64 = 0x004;
const REG_DEVICE_ID: u64 = 0x008;
const REG_VENDOR_ID: u64 = 0x00c;
const REG_DEVICE_FEATURES: u64 = 0x010;
const REG_DEVICE_FEATURES_SEL: u64 = 0x014;
const REG_DRIVER_FEATURES: u64 = 0x020;
const REG_DRIVER_FEATURES_SEL: u64 = 0x024;
const REG_QUEUE_SEL: u64 = 0x030;
const REG_QUEUE_NUM_MAX: u64 = 0x034;
const REG_QUEUE_NUM: u64 = 0x038;
const REG_QUEUE_READY: u64 = 0x044;
/// QueueNotify: the address to register ioeventfds on (datamatch = queue index).
pub const REG_QUEUE_NOTIFY: u64 = 0x050;
const REG_INTERRUPT_STATUS: u64 = 0x060;
const REG_INTERRUPT_ACK: u64 = 0x064;
const REG_STATUS: u64 = 0x070;
const REG_QUEUE_DESC_LOW: u64 = 0x080;
const REG_QUEUE_DESC_HIGH: u64 = 0x084;
const REG_QUEUE_DRIVER_LOW: u64 = 0x090;
const REG_QUEUE_DRIVER_HIGH: u64 = 0x094;
const REG_QUEUE_DEVICE_LOW: u64 = 0x0a0;
const REG_QUEUE_DEVICE_HIGH: u64 = 0x0a4;
const REG_SHM_LEN_LOW: u64 = 0x0b0;
const REG_SHM_BASE_HIGH: u64 = 0x0bc;
const REG_CONFIG_GENERATION: u64 = 0x0fc;
const REG_CONFIG: u64 = 0x100;

const S_ACK: u32 = VIRTIO_CONFIG_S_ACKNOWLEDGE;
const S_DRIVER: u32 = VIRTIO_CONFIG_S_DRIVER;
const S_FEATURES_OK: u32 = VIRTIO_CONFIG_S_FEATURES_OK;
const S_DRIVER_OK: u32 = VIRTIO_CONFIG_S_DRIVER_OK;
const S_FAILED: u32 = VIRTIO_CONFIG_S_FAILED;
const S_NEEDS_RESET: u32 = VIRTIO_CONFIG_S_NEEDS_RESET;

/// QueueNotify writes that reached a transport through an MMIO exit (process-wide). With
/// ioeventfds wired, a guest's notifications never get here; tests use this to check that.
static MMIO_NOTIFIES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// QueueNotify writes that reached any transport through an MMIO exit, so far.
pub fn mmio_notify_count() -> u64 {
    MMIO_NOTIFIES.load(Ordering::Relaxed)
}

/// Feature bits the transport itself offers on top of the device's.
pub const TRANSPORT_FEATURES: u64 =
    (1 << VIRTIO_F_VERSION_1) | (1 << VIRTIO_RING_F_EVENT_IDX) | (1 << VIRTIO_RING_F_INDIRECT_DESC);

/// Guest-visible state of one queue's registers.
#[derive(Debug, Clone, Default)]
struct QueueRegs {
    size: u16,
    ready: bool,
    desc: u64,
    avail: u64,
    used: u64,
}

struct WorkerHandle {
    kill: EventFd,
    thread: JoinHandle<()>,
}

/// Shared between the transport and its worker.
#[derive(Default)]
struct Shared {
    needs_reset: AtomicBool,
    error: Mutex<Option<String>>,
}

/// A virtio device on the guest's MMIO bus.
pub struct MmioTransport {
    device: Box<dyn VirtioDevice>,
    mem: GuestMemoryMmap<()>,
    interrupt: Arc<Interrupt>,
    queue_evts: Vec<EventFd>,
    regs: Vec<QueueRegs>,
    max_sizes: Vec<u16>,
    device_features_sel: u32,
    driver_features_sel: u32,
    driver_features: u64,
    queue_sel: u32,
    status: u32,
    config_generation: u32,
    shared: Arc<Shared>,
    worker: Option<WorkerHandle>,
}

fn set_half(v: &mut u64, high: bool, val: u32) {
    if high {
        *v = (*v & 0xffff_ffff) | (u64::from(val) << 32);
    } else {
        *v = (*v & !0xffff_ffff) | u64::from(val);
    }
}

impl MmioTransport {
    /// A transport for `device` over guest memory `mem` (device status 0, no queue set up).
    pub fn new(device: Box<dyn VirtioDevice>, mem: GuestMemoryMmap<()>) -> Result<Self, Error> {
        let max_sizes = device.queue_max_sizes().to_vec();
        let queue_evts = max_sizes
            .iter()
            .map(|_| {
                EventFd::new(libc::EFD_NONBLOCK).map_err(|err| Error::Io {
                    what: "creating a queue eventfd",
                    err,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(MmioTransport {
            regs: vec![QueueRegs::default(); max_sizes.len()],
            max_sizes,
            device,
            mem,
            interrupt: Arc::new(Interrupt::new()?),
            queue_evts,
            device_features_sel: 0,
            driver_features_sel: 0,
            driver_features: 0,
            queue_sel: 0,
            status: 0,
            config_generation: 0,
            shared: Arc::new(Shared::default()),
            worker: None,
        })
    }

    /// One eventfd per queue: register each with ioeventfd on base + [`REG_QUEUE_NOTIFY`],
    /// datamatch = its index.
    pub fn queue_evts(&self) -> &[EventFd] {
        &self.queue_evts
    }

    /// Wire to an irqfd on the device's GSI.
    pub fn interrupt_evt(&self) -> &EventFd {
        self.interrupt.evt()
    }

    /// The virtio device ID of the device behind the transport.
    pub fn device_id(&self) -> u32 {
        self.device.device_id()
    }

    /// The device status register as the guest reads it.
    pub fn status(&self) -> u32 {
        self.status
            | if self.shared.needs_reset.load(Ordering::Acquire) {
                S_NEEDS_RESET
            } else {
                0
            }
    }

    /// Why the device entered NEEDS_RESET, if it did.
    pub fn error(&self) -> Option<String> {
        lock(&self.shared.error).clone()
    }

    /// Whether the driver has set DRIVER_OK and the device is running.
    pub fn is_active(&self) -> bool {
        self.worker.is_some()
    }

    fn offered_features(&self) -> u64 {
        self.device.device_features() | TRANSPORT_FEATURES
    }

    fn fail(&mut self, why: String) {
        fail(&self.shared, &self.interrupt, why);
    }

    fn read_reg(&self, offset: u64) -> u32 {
        let q = self.regs.get(self.queue_sel as usize);
        match offset {
            REG_MAGIC => MAGIC,
            REG_VERSION => VERSION,
            REG_DEVICE_ID => self.device.device_id(),
            REG_VENDOR_ID => VENDOR_ID,
            REG_DEVICE_FEATURES => match self.device_features_sel {
                0 => self.offered_features() as u32,
                1 => (self.offered_features() >> 32) as u32,
                _ => 0,
            },
            REG_QUEUE_NUM_MAX => self
                .max_sizes
                .get(self.queue_sel as usize)
                .copied()
                .map_or(0, u32::from),
            REG_QUEUE_READY => q.map_or(0, |q| u32::from(q.ready)),
            REG_QUEUE_NUM => q.map_or(0, |q| u32::from(q.size)),
            REG_QUEUE_DESC_LOW => q.map_or(0, |q| q.desc as u32),
            REG_QUEUE_DESC_HIGH => q.map_or(0, |q| (q.desc >> 32) as u32),
            REG_QUEUE_DRIVER_LOW => q.map_or(0, |q| q.avail as u32),
            REG_QUEUE_DRIVER_HIGH => q.map_or(0, |q| (q.avail >> 32) as u32),
            REG_QUEUE_DEVICE_LOW => q.map_or(0, |q| q.used as u32),
            REG_QUEUE_DEVICE_HIGH => q.map_or(0, |q| (q.used >> 32) as u32),
            REG_INTERRUPT_STATUS => self.interrupt.status(),
            REG_STATUS => self.status(),
            // No shared memory regions: length reads as -1.
            REG_SHM_LEN_LOW..=REG_SHM_BASE_HIGH => 0xffff_ffff,
            REG_CONFIG_GENERATION => self.config_generation,
            _ => 0,
        }
    }

    fn write_reg(&mut self, offset: u64, val: u32) {
        let features_phase = self.status & S_DRIVER != 0 && self.status & S_FEATURES_OK == 0;
        let queue_phase = self.status & S_FEATURES_OK != 0 && self.status & S_DRIVER_OK == 0;
        match offset {
            REG_DEVICE_FEATURES_SEL => self.device_features_sel = val,
            REG_DRIVER_FEATURES_SEL => self.driver_features_sel = val,
            REG_DRIVER_FEATURES if features_phase => match self.driver_features_sel {
                0 => set_half(&mut self.driver_features, false, val),
                1 => set_half(&mut self.driver_features, true, val),
                // Bits above 63 do not exist; a driver setting any of them would be
                // accepting an unoffered feature: remember that so FEATURES_OK fails.
                _ if val != 0 => self.driver_features |= 1 << 63,
                _ => {}
            },
            REG_QUEUE_SEL => self.queue_sel = val,
            REG_QUEUE_NOTIFY => self.notify(val),
            REG_INTERRUPT_ACK => self.interrupt.ack(val),
            REG_STATUS => self.write_status(val),
            REG_QUEUE_NUM
            | REG_QUEUE_READY
            | REG_QUEUE_DESC_LOW
            | REG_QUEUE_DESC_HIGH
            | REG_QUEUE_DRIVER_LOW
            | REG_QUEUE_DRIVER_HIGH
            | REG_QUEUE_DEVICE_LOW
            | REG_QUEUE_DEVICE_HIGH
                if queue_phase =>
            {
                let Some(q) = self.regs.get_mut(self.queue_sel as usize) else {
                    return;
                };
                match offset {
                    // Validated (power of two, <= max) at DRIVER_OK.
                    REG_QUEUE_NUM => q.size = val.min(u32::from(u16::MAX)) as u16,
                    REG_QUEUE_READY => q.ready = val & 1 == 1,
                    REG_QUEUE_DESC_LOW => set_half(&mut q.desc, false, val),
                    REG_QUEUE_DESC_HIGH => set_half(&mut q.desc, true, val),
                    REG_QUEUE_DRIVER_LOW => set_half(&mut q.avail, false, val),
                    REG_QUEUE_DRIVER_HIGH => set_half(&mut q.avail, true, val),
                    REG_QUEUE_DEVICE_LOW => set_half(&mut q.used, false, val),
                    REG_QUEUE_DEVICE_HIGH => set_half(&mut q.used, true, val),
                    _ => {}
                }
            }
            // Read-only registers, writes outside their phase, unknown offsets: ignored.
            _ => {}
        }
    }

    /// QueueNotify through a plain MMIO exit: same path as an ioeventfd.
    fn notify(&mut self, val: u32) {
        if self.status & S_DRIVER_OK == 0 {
            return;
        }
        if let Some(evt) = self.queue_evts.get(val as usize) {
            MMIO_NOTIFIES.fetch_add(1, Ordering::Relaxed);
            let _ = evt.write(1);
        }
    }

    fn write_status(&mut self, val: u32) {
        if val == 0 {
            self.reset();
            return;
        }
        // The driver only ever adds bits (and never writes the device's NEEDS_RESET bit).
        let val = val & !S_NEEDS_RESET;
        if self.status & !val != 0 {
            return;
        }
        let added = val & !self.status;
        let mut new = self.status | (added & (S_ACK | S_DRIVER | S_FAILED));
        if added & S_DRIVER != 0 && new & S_ACK == 0 {
            new &= !S_DRIVER;
        }
        if added & S_FEATURES_OK != 0 && new & S_DRIVER != 0 && self.features_acceptable() {
            new |= S_FEATURES_OK;
        }
        self.status = new;
        if added & S_DRIVER_OK != 0 && new & S_FEATURES_OK != 0 && new & S_FAILED == 0 {
            self.status |= S_DRIVER_OK;
            if let Err(why) = self.activate() {
                self.fail(why);
            }
        }
    }

    /// FEATURES_OK is only accepted for a subset of the offered features that includes
    /// VIRTIO_F_VERSION_1 (this is a modern-only device).
    fn features_acceptable(&self) -> bool {
        self.driver_features & !self.offered_features() == 0
            && self.driver_features & (1 << VIRTIO_F_VERSION_1) != 0
    }

    fn build_queues(&self) -> Result<Vec<Queue>, String> {
        let mut out = Vec::with_capacity(self.regs.len());
        for (i, (r, &max)) in self.regs.iter().zip(&self.max_sizes).enumerate() {
            let mut q = Queue::new(max).map_err(|e| format!("queue {i}: {e}"))?;
            if r.ready {
                q.try_set_size(r.size)
                    .map_err(|e| format!("queue {i}: size {}: {e}", r.size))?;
                q.try_set_desc_table_address(GuestAddress(r.desc))
                    .map_err(|e| format!("queue {i}: descriptor table {:#x}: {e}", r.desc))?;
                q.try_set_avail_ring_address(GuestAddress(r.avail))
                    .map_err(|e| format!("queue {i}: driver area {:#x}: {e}", r.avail))?;
                q.try_set_used_ring_address(GuestAddress(r.used))
                    .map_err(|e| format!("queue {i}: device area {:#x}: {e}", r.used))?;
                q.set_event_idx(self.driver_features & (1 << VIRTIO_RING_F_EVENT_IDX) != 0);
                q.set_ready(true);
                if !q.is_valid(&self.mem) {
                    return Err(format!(
                        "queue {i}: rings (size {}, desc {:#x}, driver {:#x}, device {:#x}) are not in guest memory",
                        r.size, r.desc, r.avail, r.used
                    ));
                }
            }
            out.push(q);
        }
        Ok(out)
    }

    fn activate(&mut self) -> Result<(), String> {
        let queues = self.build_queues()?;
        let handler = self
            .device
            .activate(self.driver_features)
            .map_err(|e| format!("activating {}: {e}", self.device.name()))?;
        let kill = EventFd::new(libc::EFD_NONBLOCK).map_err(|e| format!("kill eventfd: {e}"))?;
        let worker = Worker {
            mem: self.mem.clone(),
            queues,
            features: self.driver_features,
            handler,
            queue_evts: self
                .queue_evts
                .iter()
                .map(EventFd::try_clone)
                .collect::<Result<_, _>>()
                .map_err(|e| format!("cloning a queue eventfd: {e}"))?,
            kill: kill.try_clone().map_err(|e| format!("kill eventfd: {e}"))?,
            interrupt: self.interrupt.clone(),
            shared: self.shared.clone(),
        };
        // Started by a sandboxed vCPU thread, the worker inherits its filter and narrows it
        // to its own list before it reads a queue.
        let sandboxed = crate::seccomp::current().is_some();
        let thread = std::thread::Builder::new()
            .name(format!("virtio-{}", self.device.name()))
            .spawn(move || {
                if sandboxed {
                    if let Err(e) = crate::seccomp::install(crate::seccomp::ThreadKind::Worker) {
                        fail(&worker.shared, &worker.interrupt, e.to_string());
                        return;
                    }
                }
                worker.run()
            })
            .map_err(|e| format!("spawning the worker thread: {e}"))?;
        self.worker = Some(WorkerHandle { kill, thread });
        Ok(())
    }

    fn stop_worker(&mut self) {
        if let Some(w) = self.worker.take() {
            let _ = w.kill.write(1);
            // A worker never panics on guest input; if it did, the device just stops.
            let _ = w.thread.join();
        }
    }

    /// Device reset (status 0): stop the worker, forget all negotiated state.
    pub fn reset(&mut self) {
        self.stop_worker();
        for r in &mut self.regs {
            *r = QueueRegs::default();
        }
        for e in &self.queue_evts {
            // Drain stale notifications; EAGAIN when there are none.
            let _ = e.read();
        }
        self.device_features_sel = 0;
        self.driver_features_sel = 0;
        self.driver_features = 0;
        self.queue_sel = 0;
        self.status = 0;
        self.interrupt.clear();
        self.shared.needs_reset.store(false, Ordering::Release);
        *lock(&self.shared.error) = None;
    }
}

impl Drop for MmioTransport {
    fn drop(&mut self) {
        self.stop_worker();
    }
}

/// Locks a mutex even if a thread panicked while holding it: the NEEDS_RESET reason must
/// still be recorded, reported and cleared by a reset.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn fail(shared: &Shared, interrupt: &Interrupt, why: String) {
    tracing::warn!("virtio device needs reset: {why}");
    lock(&shared.error).get_or_insert(why);
    shared.needs_reset.store(true, Ordering::Release);
    interrupt.trigger(INT_CONFIG);
}

impl MmioDevice for MmioTransport {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        if offset >= REG_CONFIG {
            data.fill(0);
            self.device.read_config(offset - REG_CONFIG, data);
            return;
        }
        // Registers are 32-bit; other widths and unaligned offsets read as zero.
        if data.len() == 4 && offset.is_multiple_of(4) {
            data.copy_from_slice(&self.read_reg(offset).to_le_bytes());
        } else {
            data.fill(0);
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if offset >= REG_CONFIG {
            self.device.write_config(offset - REG_CONFIG, data);
            self.config_generation = self.config_generation.wrapping_add(1);
            return;
        }
        if let Ok(b) = <[u8; 4]>::try_from(data) {
            if offset.is_multiple_of(4) {
                self.write_reg(offset, u32::from_le_bytes(b));
            }
        }
    }
}

/// The device's worker thread: owns the queues and the handler while the device is active.
struct Worker {
    mem: GuestMemoryMmap<()>,
    queues: Vec<Queue>,
    features: u64,
    handler: Box<dyn QueueHandler>,
    queue_evts: Vec<EventFd>,
    kill: EventFd,
    interrupt: Arc<Interrupt>,
    shared: Arc<Shared>,
}

impl Worker {
    fn step(
        &mut self,
        f: impl FnOnce(&mut dyn QueueHandler, &mut Queues) -> Result<(), Malformed>,
    ) -> bool {
        let mut q = Queues {
            mem: &self.mem,
            queues: &mut self.queues,
            features: self.features,
            used: 0,
        };
        let r = f(self.handler.as_mut(), &mut q).and_then(|()| q.needs_interrupt());
        match r {
            Ok(true) => {
                self.interrupt.trigger(INT_VRING);
                true
            }
            Ok(false) => true,
            Err(m) => {
                fail(&self.shared, &self.interrupt, m.to_string());
                false
            }
        }
    }

    fn run(mut self) {
        let Ok(epoll) = Epoll::new() else {
            fail(&self.shared, &self.interrupt, "epoll_create failed".into());
            return;
        };
        let n = self.queue_evts.len() as u64;
        let kill_token = n;
        let backend_token = n + 1;
        let mut ok = true;
        for (i, e) in self.queue_evts.iter().enumerate() {
            ok &= epoll
                .ctl(
                    ControlOperation::Add,
                    e.as_raw_fd(),
                    EpollEvent::new(EventSet::IN, i as u64),
                )
                .is_ok();
        }
        ok &= epoll
            .ctl(
                ControlOperation::Add,
                self.kill.as_raw_fd(),
                EpollEvent::new(EventSet::IN, kill_token),
            )
            .is_ok();
        let backend = self.handler.backend_fd();
        let mut backend_polled = false;
        if let Some(fd) = backend {
            ok &= epoll
                .ctl(
                    ControlOperation::Add,
                    fd,
                    EpollEvent::new(EventSet::empty(), backend_token),
                )
                .is_ok();
        }
        if !ok {
            fail(&self.shared, &self.interrupt, "epoll_ctl failed".into());
            return;
        }
        // Chains made available before DRIVER_OK (or before the ioeventfd was wired).
        let mut healthy = true;
        for i in 0..self.queues.len() {
            healthy = healthy && self.step(|h, q| h.queue_event(i, q));
        }
        let mut events = vec![EpollEvent::default(); self.queue_evts.len() + 2];
        loop {
            if let (Some(fd), true) = (backend, healthy) {
                let want = self.handler.backend_wanted();
                if want != backend_polled {
                    let set = if want {
                        EventSet::IN
                    } else {
                        EventSet::empty()
                    };
                    let _ = epoll.ctl(
                        ControlOperation::Modify,
                        fd,
                        EpollEvent::new(set, backend_token),
                    );
                    backend_polled = want;
                }
            }
            let count = match epoll.wait(-1, &mut events) {
                Ok(c) => c,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    fail(&self.shared, &self.interrupt, format!("epoll_wait: {e}"));
                    return;
                }
            };
            for ev in events.iter().take(count) {
                let token = ev.data();
                if token == kill_token {
                    return;
                }
                if token == backend_token {
                    if healthy {
                        healthy = self.step(|h, q| h.backend_event(q));
                    }
                    continue;
                }
                let i = token as usize;
                if let Some(e) = self.queue_evts.get(i) {
                    let _ = e.read();
                }
                // After NEEDS_RESET the device ignores the queues until the driver resets it.
                if healthy {
                    healthy = self.step(|h, q| h.queue_event(i, q));
                }
            }
            if !healthy && backend_polled {
                if let Some(fd) = backend {
                    let _ = epoll.ctl(
                        ControlOperation::Modify,
                        fd,
                        EpollEvent::new(EventSet::empty(), backend_token),
                    );
                    backend_polled = false;
                }
            }
        }
    }
}
