//! Errors building or running a VM.
use std::path::PathBuf;

/// Errors building or running a VM (never a guest's doing: those end the VM instead).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration cannot be built on this host (limits, missing KVM capabilities).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A KVM ioctl failed.
    #[error("KVM: {what}: {source}")]
    Kvm {
        /// The ioctl (or step) that failed.
        what: &'static str,
        /// The error KVM returned.
        source: kvm_ioctls::Error,
    },
    /// Guest memory could not be mapped or accessed.
    #[error("guest memory: {0}")]
    Memory(String),
    /// The kernel image could not be read or loaded.
    #[error("kernel {path}: {msg}")]
    Kernel {
        /// The kernel file.
        path: PathBuf,
        /// What is wrong with it.
        msg: String,
    },
    /// The initrd could not be read or placed.
    #[error("initrd {path}: {msg}")]
    Initrd {
        /// The initrd file.
        path: PathBuf,
        /// What is wrong with it.
        msg: String,
    },
    /// A host I/O error (eventfds, threads).
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A virtio device could not be set up (its message names the file or limit).
    #[error(transparent)]
    Device(#[from] crate::devices::virtio::Error),
}

/// Maps a KVM error to [`Error::Kvm`] naming `what`.
pub(crate) fn kvm_err(what: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> Error {
    move |source| Error::Kvm { what, source }
}
