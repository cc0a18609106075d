//! Boots a job on the hvcert hypervisor.
use super::runner::{Executor, Job, RawRun};

/// Runs jobs on the `hypervisor` crate (KVM).
pub struct HypervisorExecutor {
    pub guest: std::path::PathBuf,
}

impl Executor for HypervisorExecutor {
    fn run(&self, job: &Job) -> anyhow::Result<RawRun> {
        anyhow::bail!(
            "cannot boot {} ({:?}, {} vCPU, {} MiB, timeout {:?}): the hvcert hypervisor has not landed in this build",
            self.guest.display(),
            job.interface,
            job.vcpus,
            job.memory_mib,
            job.timeout
        )
    }
}
