//! Network backends shared by the NICs (virtio-net and VMBus netvsc): a loopback (every
//! frame sent comes back as input: for tests) and a TAP device (non-blocking, no packet
//! info).

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::{AsRawFd, RawFd};

use crate::devices::virtio::{Error, NetConfig};

/// Largest frame read from a TAP device.
const TAP_BUF: usize = 65536;

/// Where a NIC's frames go and come from.
pub enum NetBackend {
    /// Frames sent come back as input.
    Loopback,
    /// A TAP interface.
    Tap(File),
}

/// What became of a frame handed to [`NetBackend::send`].
#[derive(Debug, PartialEq, Eq)]
pub enum Sent {
    /// Written to the backend.
    Delivered,
    /// Loopback: the frame is input for the NIC now.
    Looped(Vec<u8>),
    /// The backend refused it (short write, interface down).
    Failed,
}

impl NetBackend {
    /// The backend `cfg` names (opening, and creating if needed, a TAP interface).
    pub fn open(cfg: &NetConfig) -> Result<Self, Error> {
        Ok(match cfg {
            NetConfig::Loopback => NetBackend::Loopback,
            NetConfig::Tap(name) => NetBackend::Tap(open_tap(name)?),
        })
    }

    /// Another handle on the same backend (for a worker thread).
    pub fn try_clone(&self) -> Result<Self, Error> {
        Ok(match self {
            NetBackend::Loopback => NetBackend::Loopback,
            NetBackend::Tap(f) => NetBackend::Tap(f.try_clone().map_err(|err| Error::Io {
                what: "duplicating the TAP fd",
                err,
            })?),
        })
    }

    /// The fd to poll for input (TAP only).
    pub fn fd(&self) -> Option<RawFd> {
        match self {
            NetBackend::Tap(f) => Some(f.as_raw_fd()),
            NetBackend::Loopback => None,
        }
    }

    /// Hands one frame to the backend.
    pub fn send(&mut self, frame: Vec<u8>) -> Sent {
        match self {
            NetBackend::Loopback => Sent::Looped(frame),
            NetBackend::Tap(f) => match f.write(&frame) {
                Ok(n) if n == frame.len() => Sent::Delivered,
                _ => Sent::Failed,
            },
        }
    }

    /// Reads the frames waiting on the backend into `pending` until it holds `max`
    /// (`buf` is scratch space kept between calls). Loopback has nothing to read.
    pub fn receive(&mut self, pending: &mut VecDeque<Vec<u8>>, max: usize, buf: &mut Vec<u8>) {
        let NetBackend::Tap(f) = self else {
            return;
        };
        if buf.len() < TAP_BUF {
            *buf = vec![0u8; TAP_BUF];
        }
        while pending.len() < max {
            match f.read(buf) {
                Ok(0) => break,
                Ok(n) => pending.push_back(buf[..n].to_vec()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // EAGAIN: drained. Other errors (interface down): nothing to read.
                Err(_) => break,
            }
        }
    }
}

/// Open (creating if needed) the TAP interface `name`, non-blocking, without packet info.
pub fn open_tap(name: &str) -> Result<File, Error> {
    let err = |err| Error::Tap {
        name: name.to_string(),
        err,
    };
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains('\0') {
        return Err(err(std::io::Error::from(std::io::ErrorKind::InvalidInput)));
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open("/dev/net/tun")
        .map_err(err)?;
    let mut ifr_name = [0 as libc::c_char; libc::IFNAMSIZ];
    for (d, s) in ifr_name.iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    let mut ifr = libc::ifreq {
        ifr_name,
        ifr_ifru: libc::__c_anonymous_ifr_ifru {
            ifru_flags: (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short,
        },
    };
    // SAFETY: TUNSETIFF reads and writes one `struct ifreq`, which `ifr` is, for the
    // duration of the call; the fd is an open /dev/net/tun owned by `file`.
    let ret = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut ifr) };
    if ret < 0 {
        return Err(err(std::io::Error::last_os_error()));
    }
    Ok(file)
}
