//! KVM binary statistics (Linux >= 5.18): the watchdog reads each vCPU's "blocking"
//! statistic to notice halted vCPUs without kicking them.
use kvm_ioctls::VcpuFd;

vmm_sys_util::ioctl_io_nr!(KVM_GET_STATS_FD, kvm_bindings::KVMIO, 0xce);

/// A vCPU's "blocking" statistic (KVM binary statistics, Linux >= 5.18): 1 while its thread
/// sleeps in the kernel (halted, or waiting for INIT/SIPI). One pread, the vCPU undisturbed.
pub(crate) struct BlockingStat {
    file: std::fs::File,
    offset: u64,
}

impl BlockingStat {
    /// Opens vCPU `vcpu`'s statistics; `None` when the kernel lacks them.
    pub(crate) fn open(vcpu: &VcpuFd) -> Option<BlockingStat> {
        use std::os::fd::FromRawFd;
        // SAFETY: KVM_GET_STATS_FD takes no argument and returns a new fd or -1; `vcpu` is a
        // live vCPU fd.
        let fd = unsafe { vmm_sys_util::ioctl::ioctl(vcpu, KVM_GET_STATS_FD()) };
        if fd < 0 {
            return None;
        }
        // SAFETY: `fd` is a new descriptor that nothing else owns.
        let file = unsafe { std::fs::File::from_raw_fd(fd) };
        // The descriptor table is the same for every vCPU of this kernel.
        static OFFSET: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
        let offset = (*OFFSET.get_or_init(|| stat_offset(&file, b"blocking")))?;
        Some(BlockingStat { file, offset })
    }

    /// Whether the vCPU's thread is blocked in the kernel now; `None` on a read error.
    pub(crate) fn get(&self) -> Option<bool> {
        use std::os::unix::fs::FileExt;
        let mut b = [0u8; 8];
        self.file.read_exact_at(&mut b, self.offset).ok()?;
        Some(u64::from_le_bytes(b) != 0)
    }
}

/// Offset of statistic `name`'s value in a KVM stats fd (struct kvm_stats_header, then
/// kvm_stats_desc entries of 16 bytes + name_size).
fn stat_offset(f: &std::fs::File, name: &[u8]) -> Option<u64> {
    use std::os::unix::fs::FileExt;
    let mut h = [0u8; 24];
    f.read_exact_at(&mut h, 0).ok()?;
    let w = |b: &[u8], i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let (name_size, num_desc) = (w(&h, 4) as usize, w(&h, 8) as usize);
    let (desc_offset, data_offset) = (w(&h, 16), w(&h, 20));
    if name_size == 0 || name_size > 4096 || num_desc > 4096 {
        return None;
    }
    let stride = 16 + name_size;
    let mut descs = vec![0u8; stride * num_desc];
    f.read_exact_at(&mut descs, u64::from(desc_offset)).ok()?;
    descs.chunks_exact(stride).find_map(|d| {
        let n = &d[16..];
        let n = &n[..n.iter().position(|&c| c == 0).unwrap_or(n.len())];
        (n == name).then(|| u64::from(data_offset) + u64::from(w(d, 8)))
    })
}
