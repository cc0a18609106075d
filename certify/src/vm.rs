//! Boots a job on the hvcert hypervisor (KVM).
use std::io::Write;
use std::sync::{Arc, Mutex};

use crate::runner::{Executor, Job, RawRun};

/// Runs jobs on the `hypervisor` crate.
pub struct HypervisorExecutor {
    /// The guest kernel to boot.
    pub guest: std::path::PathBuf,
    /// A deliberate misbehaviour of the hypervisor (test builds only, where the
    /// dev-dependency turns on the hypervisor's `fault-injection` feature).
    #[cfg(test)]
    pub fault: Option<hypervisor::Fault>,
}

impl HypervisorExecutor {
    /// An executor booting `guest`.
    pub fn new(guest: std::path::PathBuf) -> Self {
        HypervisorExecutor {
            guest,
            #[cfg(test)]
            fault: None,
        }
    }
}

/// The console: everything the guest writes to COM1 (and through console hypercalls).
#[derive(Clone, Default)]
struct Console(Arc<Mutex<Vec<u8>>>);

impl Write for Console {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            // A runaway guest can't exhaust host memory through its console.
            let room = (4usize << 20).saturating_sub(v.len());
            v.extend_from_slice(&buf[..buf.len().min(room)]);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Executor for HypervisorExecutor {
    fn run(&self, job: &Job) -> anyhow::Result<RawRun> {
        let cfg = hypervisor::VmConfig {
            memory_mib: job.memory_mib,
            cpus: job.vcpus,
            kernel: self.guest.clone(),
            cmdline: job.cmdline.clone(),
            interface: job.interface,
            timeout: job.timeout,
            max_disks: job.profile.profile.devices.max_disks,
            max_nics: job.profile.profile.devices.max_nics,
            disks: job
                .disk_image
                .iter()
                .map(|path| hypervisor::DiskConfig {
                    path: path.clone(),
                    read_only: false,
                })
                .collect(),
            nets: if job.nic {
                vec![hypervisor::NetConfig::Loopback]
            } else {
                Vec::new()
            },
            vmbus: hypervisor::vmbus::VmbusConfig {
                disks: job.vmbus,
                nics: job.vmbus,
            },
            hyperv: job.profile.profile.hv_config(&job.case)?,
            #[cfg(test)]
            fault: self.fault,
            ..Default::default()
        };
        let console = Console::default();
        let vm = hypervisor::Vm::new(cfg)?;
        let out = vm.run(Box::new(console.clone()))?;
        let bytes = console.0.lock().map(|v| v.clone()).unwrap_or_default();
        Ok(RawRun {
            end: out.end,
            console: bytes,
            hypercalls: out.hypercalls,
            xen_trace: out.xen_trace,
            ring0_share: out.ring0_share,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::profile;
    use crate::runner;
    use reports::Outcome;

    use crate::test_kvm::kvm_available_or_skip as kvm_or_skip;

    fn job(case: &str) -> runner::Job {
        let p = profile::select(None, &["sles11sp1-like".to_string()])
            .expect("profile loads")
            .remove(0);
        let p = Arc::new(p);
        runner::jobs_for(p, 1, &[case.to_string()], &std::env::temp_dir())
            .expect("jobs")
            .remove(0)
    }

    /// The hypervisor's `fault-injection` feature answers an unknown hypercall code with
    /// status 5 instead of 2: the matching case must fail, and pass without the fault.
    #[test]
    fn injected_fault_fails_the_matching_case() {
        if !kvm_or_skip("injected_fault_fails_the_matching_case") {
            return;
        }
        let j = job("hv_call_invalid_code");
        let mut exec = HypervisorExecutor::new(crate::guest::GUEST_ELF.into());
        let clean = runner::classify(&j.case, &exec.run(&j).expect("vm runs"));
        assert_eq!(clean.0, Outcome::Pass, "{clean:?}");

        exec.fault = Some(hypervisor::Fault::WrongInvalidCodeStatus);
        let raw = exec.run(&j).expect("vm runs");
        let (outcome, reasons, _) = runner::classify(&j.case, &raw);
        assert_eq!(outcome, Outcome::Fail, "{reasons:?}");
        assert!(
            reasons[0].contains("status 5 (want 2)"),
            "reason names the wrong status: {reasons:?}"
        );
        // Only that case: another hypercall case still passes under the same fault.
        let other = job("hv_call_misaligned");
        let (o, r, _) = runner::classify(&other.case, &exec.run(&other).expect("vm runs"));
        assert_eq!(o, Outcome::Pass, "{r:?}");
    }

    /// hv_synic_event_flags needs the SynIC loopback connection (the `fault-injection`
    /// feature's test hook): without it the case skips, with it the guest drives event flags
    /// and posted messages through the SynIC and passes.
    #[test]
    fn synic_loopback_case() {
        if !kvm_or_skip("synic_loopback_case") {
            return;
        }
        let mut j = job("hv_synic_stimer_message");
        j.cmdline = j.cmdline.replace(
            "cases=hv_synic_stimer_message",
            "cases=hv_synic_event_flags",
        );
        j.case.id = "hv_synic_event_flags".into();
        let mut exec = HypervisorExecutor::new(crate::guest::GUEST_ELF.into());
        let (o, r, _) = runner::classify(&j.case, &exec.run(&j).expect("vm runs"));
        assert_eq!(o, Outcome::Skip, "{r:?}");
        exec.fault = Some(hypervisor::Fault::SynicLoopback);
        let (o, r, _) = runner::classify(&j.case, &exec.run(&j).expect("vm runs"));
        assert_eq!(o, Outcome::Pass, "{r:?}");
    }
}
