//! Virtio 1.x devices over the virtio-mmio transport (version 2, "modern").
//!
//! - [`mmio::MmioTransport`] implements [`crate::devices::bus::MmioDevice`]: the register file a guest
//!   driver programs (feature negotiation, queue set-up, status state machine, config space,
//!   interrupt status/ack, QueueNotify, reset).
//! - A device model ([`block::Block`], [`scsi::Scsi`], [`net::Net`]) implements
//!   [`VirtioDevice`]; when the driver sets DRIVER_OK the transport starts a worker thread
//!   that owns the device's queues and does all host-side I/O off the vCPU thread, woken by
//!   one [`EventFd`] per queue.
//! - Wiring for the VM: register each of [`mmio::MmioTransport::queue_evts`] with
//!   `VmFd::register_ioevent(evt, &IoEventAddress::Mmio(base + 0x50), queue_index as u32)`
//!   and [`mmio::MmioTransport::interrupt_evt`] with `VmFd::register_irqfd(evt, gsi)`. Without
//!   ioeventfd, a QueueNotify write that reaches the transport through a plain MMIO exit
//!   signals the same eventfd (the fallback path), so both wirings behave the same.
//! - The split rings are handled by the `virtio-queue` crate; descriptor chains are walked
//!   and validated once ([`chain::collect`]) before any request is parsed, so a guest that
//!   sends a looping chain, a chain longer than the queue, a chain pointing outside guest
//!   memory or an unnegotiated indirect table at the chain's head gets the device into
//!   NEEDS_RESET (and a config-change interrupt), never a VMM panic. (`virtio-queue` follows
//!   an INDIRECT flag further down a chain whatever was negotiated; that table is bounds-
//!   checked like any other, so such a chain is simply processed.) Malformed request
//!   *contents* (unknown type, wrong lengths or directions, out-of-range sectors, writes to
//!   a read-only image) get the request's error status (virtio-scsi: CHECK CONDITION with
//!   sense data).
//! - [`attach`] builds the configured devices, places them on the VM's MMIO bus (from
//!   0xd000_0000, 4 KiB apart, GSIs from 5; the bus announces them on the kernel command line
//!   and reserves them in the memory map) and registers the ioeventfds and irqfds. Device
//!   limits ([`check_device_limits`]) are enforced first.

pub mod block;
pub mod chain;
pub mod device;
pub mod mmio;
pub mod net;
pub mod scsi;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use vmm_sys_util::eventfd::EventFd;

pub use block::Block;
pub use mmio::{MmioTransport, VirtioDevice};
pub use net::{Net, NetStats};
pub use scsi::Scsi;

/// First guest-physical address of the virtio-mmio window (the value lives in
/// [`crate::layout`], which the MMIO bus places devices by).
pub const MMIO_BASE: u64 = crate::layout::VIRTIO_MMIO_BASE;
/// Size of one device's register window; devices are placed this far apart.
pub const MMIO_SIZE: u64 = crate::layout::VIRTIO_MMIO_SIZE;
/// First GSI used for virtio-mmio devices.
pub const FIRST_GSI: u32 = crate::layout::VIRTIO_FIRST_GSI;

/// A raw image file backing a virtio-blk device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskConfig {
    /// The raw disk image.
    pub path: PathBuf,
    /// Open the image read-only and advertise VIRTIO_BLK_F_RO; guest writes get IOERR.
    pub read_only: bool,
}

/// Which controller the disks are attached to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DiskBus {
    /// One virtio-blk device per disk.
    #[default]
    Blk,
    /// One virtio-scsi controller per disk (target 0, LUN 0): the synthetic SCSI controller.
    Scsi,
}

impl std::str::FromStr for DiskBus {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "blk" | "virtio-blk" => Ok(DiskBus::Blk),
            "scsi" | "virtio-scsi" => Ok(DiskBus::Scsi),
            _ => Err(Error::BadOption(format!(
                "--disk-bus {s}: expected `blk` or `scsi`"
            ))),
        }
    }
}

/// The backend of a virtio-net device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetConfig {
    /// Every frame the guest transmits is delivered back to its receive queue.
    Loopback,
    /// A host TAP interface of this name (created if absent; needs CAP_NET_ADMIN).
    Tap(String),
}

impl std::str::FromStr for NetConfig {
    type Err = Error;
    /// `loopback` or `tap:NAME`.
    fn from_str(s: &str) -> Result<Self, Error> {
        if s == "loopback" {
            return Ok(NetConfig::Loopback);
        }
        if let Some(name) = s.strip_prefix("tap:") {
            if name.is_empty() || name.len() >= libc::IFNAMSIZ {
                return Err(Error::BadOption(format!(
                    "--net {s}: the TAP name must be 1 to {} bytes",
                    libc::IFNAMSIZ - 1
                )));
            }
            return Ok(NetConfig::Tap(name.to_string()));
        }
        Err(Error::BadOption(format!(
            "--net {s}: expected `loopback` or `tap:NAME`"
        )))
    }
}

impl std::str::FromStr for DiskConfig {
    type Err = Error;
    /// `FILE` or `FILE,ro`.
    fn from_str(s: &str) -> Result<Self, Error> {
        let (path, read_only) = match s.rsplit_once(',') {
            Some((p, "ro")) => (p, true),
            Some((p, "rw")) => (p, false),
            Some((_, other)) => {
                return Err(Error::BadOption(format!(
                    "--disk {s}: unknown option `{other}` (expected `ro` or `rw`)"
                )))
            }
            None => (s, false),
        };
        if path.is_empty() {
            return Err(Error::BadOption(format!("--disk {s}: empty file name")));
        }
        Ok(DiskConfig {
            path: PathBuf::from(path),
            read_only,
        })
    }
}

/// Errors setting up virtio devices (never raised by guest behaviour: that is handled inside
/// the device with NEEDS_RESET or a request error status).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    // (Fields are named `err`, not `source`, so that the cause is printed once, in the
    // message, rather than again as an error chain.)
    #[error("disk image {path}: {err}")]
    /// A disk image could not be opened.
    DiskOpen {
        /// The image.
        path: PathBuf,
        /// Why.
        err: std::io::Error,
    },
    #[error("TAP device {name}: {err}")]
    /// A TAP device could not be opened or configured.
    Tap {
        /// The TAP interface name.
        name: String,
        /// Why.
        err: std::io::Error,
    },
    #[error("{what}: {err}")]
    /// A host I/O operation failed while setting a device up.
    Io {
        /// What was being done.
        what: &'static str,
        /// Why it failed.
        err: std::io::Error,
    },
    #[error(
        "too many {kind}: {requested} configured, but this VM allows at most {max} ({option})"
    )]
    /// More devices of a kind than the VM allows.
    TooManyDevices {
        /// "disks" or "NICs".
        kind: &'static str,
        /// How many were configured.
        requested: usize,
        /// The limit.
        max: usize,
        /// The option that raises the limit.
        option: &'static str,
    },
    #[error("{0}")]
    /// A device option that cannot be parsed.
    BadOption(String),
    #[error("KVM: {what}: {err}")]
    /// A KVM ioctl for a device (ioeventfd, irqfd) failed.
    Kvm {
        /// The ioctl and device.
        what: String,
        /// The error KVM returned.
        err: kvm_ioctls::Error,
    },
}

/// Opens a disk image (read-write unless `cfg.read_only`); returns it with its length in
/// bytes. Shared by virtio-blk and virtio-scsi.
pub(crate) fn open_image(cfg: &DiskConfig) -> Result<(std::fs::File, u64), Error> {
    let open_err = |err| Error::DiskOpen {
        path: cfg.path.clone(),
        err,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(!cfg.read_only)
        .open(&cfg.path)
        .map_err(open_err)?;
    let len = file.metadata().map_err(open_err)?.len();
    Ok((file, len))
}

/// Refuse a device configuration above the per-VM limits (the seed's beta: one storage
/// controller and one NIC).
pub fn check_device_limits(
    disks: &[DiskConfig],
    nets: &[NetConfig],
    max_disks: usize,
    max_nics: usize,
) -> Result<(), Error> {
    if disks.len() > max_disks {
        return Err(Error::TooManyDevices {
            kind: "storage controllers",
            requested: disks.len(),
            max: max_disks,
            option: "max_disks",
        });
    }
    if nets.len() > max_nics {
        return Err(Error::TooManyDevices {
            kind: "network adapters",
            requested: nets.len(),
            max: max_nics,
            option: "max_nics",
        });
    }
    Ok(())
}

/// The interrupt line of one device: the InterruptStatus register plus the eventfd the VM
/// wires to an irqfd (edge-triggered GSI).
#[derive(Debug)]
pub struct Interrupt {
    status: AtomicU32,
    evt: EventFd,
}

/// InterruptStatus bit 0: the device used a buffer.
pub const INT_VRING: u32 = 1;
/// InterruptStatus bit 1: configuration (or device status, e.g. NEEDS_RESET) changed.
pub const INT_CONFIG: u32 = 2;

impl Interrupt {
    /// InterruptStatus 0 and a new (non-blocking) eventfd for the line.
    pub fn new() -> Result<Self, Error> {
        Ok(Interrupt {
            status: AtomicU32::new(0),
            evt: EventFd::new(libc::EFD_NONBLOCK).map_err(|err| Error::Io {
                what: "creating the interrupt eventfd",
                err,
            })?,
        })
    }
    /// The eventfd registered as the device's irqfd.
    pub fn evt(&self) -> &EventFd {
        &self.evt
    }
    /// The InterruptStatus register.
    pub fn status(&self) -> u32 {
        self.status.load(Ordering::Acquire)
    }
    /// InterruptACK: clears `bits`.
    pub fn ack(&self, bits: u32) {
        self.status.fetch_and(!bits, Ordering::AcqRel);
    }
    /// Clears every bit (device reset).
    pub fn clear(&self) {
        self.status.store(0, Ordering::Release);
    }
    /// Set `bits` in InterruptStatus and raise the line.
    pub fn trigger(&self, bits: u32) {
        self.status.fetch_or(bits, Ordering::AcqRel);
        // An eventfd write only fails when the counter would overflow (2^64-2 pending
        // signals); the line is raised anyway in that case.
        let _ = self.evt.write(1);
    }
}

/// A virtio-mmio device placed on the guest's MMIO bus by [`attach`].
#[derive(Clone)]
pub struct DeviceInfo {
    /// Guest-physical base of the device's MMIO window.
    pub base: u64,
    /// The GSI of its interrupt.
    pub gsi: u32,
    /// "blk", "scsi" or "net".
    pub kind: &'static str,
    /// Frame counters of a NIC.
    pub net_stats: Option<std::sync::Arc<NetStats>>,
}

/// MAC address of the `index`-th NIC (locally administered, QEMU's 52:54:00 prefix).
pub fn mac_for(index: usize) -> [u8; 6] {
    [
        0x52,
        0x54,
        0x00,
        0x12,
        0x34,
        0x56u8.wrapping_add(index as u8),
    ]
}

/// A device model, its kind and (for a NIC) its counters.
type NewDevice = (
    Box<dyn VirtioDevice>,
    &'static str,
    Option<std::sync::Arc<NetStats>>,
);

/// Build the configured devices (disks first, then NICs), put them on `bus` (which places
/// them from [`MMIO_BASE`] upward, [`MMIO_SIZE`] apart, GSIs from [`FIRST_GSI`]; the bus
/// also provides the command-line entries and reserved ranges) and wire them into KVM: one
/// ioeventfd per queue on the QueueNotify register (datamatch = queue index, as Linux's
/// virtio_mmio driver writes it) and an irqfd per device. The VM must already have its
/// irqchip. Refuses more devices than `max_disks`/`max_nics`. Disks become virtio-blk
/// devices or virtio-scsi controllers according to `disk_bus`.
#[allow(clippy::too_many_arguments)]
pub fn attach(
    vm: &kvm_ioctls::VmFd,
    mem: &vm_memory::GuestMemoryMmap<()>,
    bus: &mut crate::devices::bus::MmioBus,
    disks: &[DiskConfig],
    disk_bus: DiskBus,
    nets: &[NetConfig],
    max_disks: usize,
    max_nics: usize,
) -> Result<Vec<DeviceInfo>, Error> {
    check_device_limits(disks, nets, max_disks, max_nics)?;
    let mut devs: Vec<NewDevice> = Vec::new();
    for d in disks {
        match disk_bus {
            DiskBus::Blk => devs.push((Box::new(Block::new(d)?), "blk", None)),
            DiskBus::Scsi => devs.push((Box::new(Scsi::new(d)?), "scsi", None)),
        }
    }
    for (i, n) in nets.iter().enumerate() {
        let net = Net::new(n, mac_for(i))?;
        let stats = net.stats();
        devs.push((Box::new(net), "net", Some(stats)));
    }
    let mut out = Vec::new();
    for (dev, kind, net_stats) in devs {
        let (base, gsi) = bus.next_slot();
        let transport = MmioTransport::new(dev, mem.clone())?;
        for (q, evt) in transport.queue_evts().iter().enumerate() {
            vm.register_ioevent(
                evt,
                &kvm_ioctls::IoEventAddress::Mmio(base + mmio::REG_QUEUE_NOTIFY),
                q as u32,
            )
            .map_err(|err| Error::Kvm {
                what: format!("KVM_IOEVENTFD for virtio-{kind} queue {q} at {base:#x}"),
                err,
            })?;
        }
        vm.register_irqfd(transport.interrupt_evt(), gsi)
            .map_err(|err| Error::Kvm {
                what: format!("KVM_IRQFD for virtio-{kind} on GSI {gsi}"),
                err,
            })?;
        let placed = bus.add_virtio(Box::new(transport));
        debug_assert_eq!(placed, (base, gsi));
        out.push(DeviceInfo {
            base,
            gsi,
            kind,
            net_stats,
        });
    }
    Ok(out)
}
