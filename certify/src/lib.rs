//! The certification suite behind `hvcert`: SUSE-like guest profiles, the runner that
//! boots every case in its own VM on the hvcert hypervisor, the KTAP parser, the run
//! record, and the bridge from probe results to the reports crate's model. The `hvcert`
//! binary (src/main.rs, src/cmd/) only parses arguments and prints.
pub mod build_info;
pub mod guest;
pub mod initramfs;
pub mod journal;
pub mod ktap;
pub mod nested;
pub mod package;
pub mod package_sign;
pub mod package_summary;
pub mod probe_report;
pub mod profile;
pub mod realguest;
pub mod record;
pub mod runner;
pub mod storage;
pub mod suite;
pub mod vm;

/// The tests' one "KVM or skip" rule, shared with the end-to-end tests.
#[cfg(test)]
#[path = "../../tests/common/kvm.rs"]
mod test_kvm;
