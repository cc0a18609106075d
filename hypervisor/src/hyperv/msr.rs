//! Synthetic MSRs: per-VP and partition-wide state, reads and writes, the reference TSC.

use super::*;
use crate::abi::hv_synic::{
    FEAT_DIRECT_SYNTHETIC_TIMERS, MSR_STIMER0_CONFIG, MSR_STIMER3_COUNT, STIMER_COUNT,
};

/// The guest TSC as the reference clock sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TscInfo {
    /// Guest TSC frequency in Hz (KVM_GET_TSC_KHZ x 1000); 0 when unknown.
    pub hz: u64,
    /// Guest TSC minus host TSC (KVM's offset, measured at VM creation).
    pub offset: i64,
    /// Whether the host TSC is invariant (constant and nonstop), so that the reference TSC
    /// page may be used; otherwise the page carries sequence 0 ("use the MSR").
    pub reliable: bool,
    /// Guest TSC when the partition was created: reference time counts from here.
    pub base: u64,
}

impl TscInfo {
    /// TscScale of the reference TSC page: 100 ns units per TSC tick, 64.64 fixed point.
    pub fn scale(&self) -> u64 {
        if self.hz == 0 {
            return 0;
        }
        ((u128::from(REFERENCE_HZ) << 64) / u128::from(self.hz)).min(u128::from(u64::MAX)) as u64
    }

    /// TscOffset of the reference TSC page: minus the reference time of [`TscInfo::base`], so
    /// that time counts from partition creation.
    pub fn page_offset(&self) -> i64 {
        (((u128::from(self.base) * u128::from(self.scale())) >> 64) as u64).wrapping_neg() as i64
    }

    /// Reference time (100 ns units) at guest TSC `tsc`: exactly what a guest computes from the
    /// page, ((tsc * scale) >> 64) + offset.
    pub fn ref_time(&self, tsc: u64) -> u64 {
        (((u128::from(tsc) * u128::from(self.scale())) >> 64) as u64)
            .wrapping_add_signed(self.page_offset())
    }
}

/// The host's TSC now (the guest's is this plus [`TscInfo::offset`]).
pub fn host_tsc() -> u64 {
    // SAFETY: RDTSC has no memory effects; every x86-64 CPU has it.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Per-VP synthetic-MSR state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VpState {
    /// HV_X64_MSR_VP_ASSIST_PAGE.
    pub vp_assist: u64,
    /// HV_X64_MSR_SCONTROL.
    pub scontrol: u64,
    /// HV_X64_MSR_SIEFP.
    pub siefp: u64,
    /// HV_X64_MSR_SIMP.
    pub simp: u64,
    /// HV_X64_MSR_SINT0..15.
    pub sint: [u64; 16],
    /// SynIC messages waiting behind busy SIMP slots ([`super::synic`]).
    pub synic: super::synic::SynicQueues,
    /// STIMER0-3 ([`super::stimer`]).
    pub stimers: [super::stimer::Stimer; STIMER_COUNT],
}

impl Default for VpState {
    /// As at reset: pages disabled, SynIC disabled, every SINT masked.
    fn default() -> Self {
        VpState {
            vp_assist: 0,
            scontrol: 0,
            siefp: 0,
            simp: 0,
            sint: [SINT_MASKED; 16],
            synic: Default::default(),
            stimers: Default::default(),
        }
    }
}

/// Partition-wide synthetic-MSR state (and the per-VP state, indexed by VP index).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Partition {
    /// HV_X64_MSR_GUEST_OS_ID as the guest wrote it.
    pub guest_os_id: u64,
    /// HV_X64_MSR_HYPERCALL: page GPA, locked and enable bits.
    pub hypercall_msr: u64,
    /// The privileges that gate each MSR ([`MSR_GATES`]).
    pub features: HvFeatures,
    /// HV_X64_MSR_REFERENCE_TSC.
    pub reference_tsc: u64,
    /// The reference TSC page's sequence last written (never 0 for a valid page).
    pub tsc_sequence: u32,
    /// The guest TSC behind TIME_REF_COUNT and the reference TSC page.
    pub tsc: TscInfo,
    /// HV_X64_MSR_CRASH_P0..P4.
    pub crash: [u64; 5],
    /// Per-VP state.
    pub vps: Vec<VpState>,
}

/// What the VMM knows when a VP reads an MSR.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VpEnv {
    /// The VP's index.
    pub vp_index: u32,
    /// Reference time now (100 ns units).
    pub time_ref: u64,
    /// Time the VP has run (100 ns units).
    pub vp_runtime: u64,
}

/// What an MSR write asks of the VMM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsrWrite {
    /// Nothing more to do.
    Done,
    /// Fill the hypercall page at this GPA.
    FillHypercallPage(u64),
    /// Zero the overlay page at this GPA (VP assist, SIMP, SIEFP when enabled).
    ZeroPage(u64),
    /// Write the reference TSC page at this GPA: sequence, scale, offset.
    TscPage(u64, u32, u64, i64),
    /// The guest asked for a reset (RESET bit 0).
    Reset,
    /// The guest reported a crash (CRASH_CTL CrashNotify) with P0..P4.
    Crash([u64; 5]),
}

/// A #GP for the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gp;

/// Writes an overlay-page MSR value (enable bit 0, reserved 11:1, GPA 63:12): reserved bits
/// or an enabled page outside RAM raise #GP (our reading of the TLFS's "the GPA must be
/// valid"; KVM does the same for the pages it has to write).
fn overlay(value: u64, page_ok: &impl Fn(u64) -> bool) -> Result<Option<u64>, Gp> {
    if value & OVERLAY_RESERVED != 0 {
        return Err(Gp);
    }
    if value & OVERLAY_ENABLE == 0 {
        return Ok(None);
    }
    let gpa = value & !HYPERCALL_PAGE_OFFSET_MASK;
    if !page_ok(gpa) {
        return Err(Gp);
    }
    Ok(Some(gpa))
}

impl Partition {
    /// A partition of `vps` VPs with these privileges.
    pub fn new(features: HvFeatures, vps: usize, tsc: TscInfo) -> Partition {
        Partition {
            features,
            tsc,
            vps: vec![VpState::default(); vps],
            ..Partition::default()
        }
    }

    /// Page GPA if the hypercall page is enabled.
    pub fn hypercall_page_gpa(&self) -> Option<u64> {
        (self.hypercall_msr & HYPERCALL_ENABLE != 0)
            .then_some(self.hypercall_msr & !HYPERCALL_PAGE_OFFSET_MASK)
    }

    /// Whether `msr` is in the Hyper-V synthetic range we decode (0x40000000..=0x40000105).
    pub fn handles(msr: u32) -> bool {
        (MSR_FIRST..=MSR_LAST_DECODED).contains(&msr)
    }

    /// Whether `msr` is implemented and its privilege granted.
    fn allowed(&self, msr: u32) -> bool {
        MSR_GATES
            .iter()
            .find(|g| (g.0..=g.1).contains(&msr))
            .is_some_and(|&(_, _, reg, mask)| self.features.has(reg, mask))
    }

    /// Reads `msr` for the VP in `env`; #GP for an MSR that is not implemented, whose
    /// privilege is clear, or that is write-only.
    pub fn rdmsr(&self, msr: u32, env: &VpEnv) -> Result<u64, Gp> {
        if !self.allowed(msr) {
            return Err(Gp);
        }
        let vp = self.vps.get(env.vp_index as usize);
        let vp_reg = |f: fn(&VpState) -> u64| vp.map(f).ok_or(Gp);
        match msr {
            MSR_GUEST_OS_ID => Ok(self.guest_os_id),
            MSR_HYPERCALL => Ok(self.hypercall_msr),
            MSR_VP_INDEX => Ok(u64::from(env.vp_index)),
            MSR_RESET => Ok(0),
            MSR_VP_RUNTIME => Ok(env.vp_runtime),
            MSR_TIME_REF_COUNT => Ok(env.time_ref),
            MSR_REFERENCE_TSC => Ok(self.reference_tsc),
            MSR_TSC_FREQUENCY if self.tsc.hz != 0 => Ok(self.tsc.hz),
            MSR_APIC_FREQUENCY => Ok(APIC_FREQUENCY_HZ),
            MSR_VP_ASSIST_PAGE => vp_reg(|v| v.vp_assist),
            MSR_SCONTROL => vp_reg(|v| v.scontrol),
            MSR_SVERSION => Ok(SYNIC_VERSION),
            MSR_SIEFP => vp_reg(|v| v.siefp),
            MSR_SIMP => vp_reg(|v| v.simp),
            MSR_EOM => Ok(0),
            MSR_SINT0..=MSR_SINT15 => {
                let i = (msr - MSR_SINT0) as usize;
                vp.map(|v| v.sint[i]).ok_or(Gp)
            }
            MSR_STIMER0_CONFIG..=MSR_STIMER3_COUNT => {
                vp.map(|v| super::stimer::read(&v.stimers, msr)).ok_or(Gp)
            }
            // Idle until an interrupt: returning at once is a spurious wake-up, which the
            // guest must tolerate (it re-checks its idle condition).
            MSR_GUEST_IDLE => Ok(0),
            MSR_CRASH_P0..=MSR_CRASH_P4 => Ok(self.crash[(msr - MSR_CRASH_P0) as usize]),
            // Reads give the capabilities: CrashNotify.
            MSR_CRASH_CTL => Ok(CRASH_CTL_NOTIFY),
            _ => Err(Gp),
        }
    }

    /// Writes `msr` for VP `vp`; `page_ok(gpa)` says whether a page at `gpa` is guest RAM.
    /// #GP for an MSR that is not implemented, whose privilege is clear, that is read-only,
    /// or for reserved bits.
    pub fn wrmsr(
        &mut self,
        msr: u32,
        value: u64,
        vp: u32,
        page_ok: impl Fn(u64) -> bool,
    ) -> Result<MsrWrite, Gp> {
        if !self.allowed(msr) {
            return Err(Gp);
        }
        match msr {
            MSR_GUEST_OS_ID => {
                self.guest_os_id = value;
                if value == 0 && self.hypercall_msr & HYPERCALL_LOCKED == 0 {
                    // Clearing the guest OS ID disables the (unlocked) hypercall page.
                    self.hypercall_msr &= !HYPERCALL_ENABLE;
                }
                Ok(MsrWrite::Done)
            }
            MSR_HYPERCALL => {
                if self.hypercall_msr & HYPERCALL_LOCKED != 0 {
                    // Locked: writes are ignored.
                    return Ok(MsrWrite::Done);
                }
                if self.guest_os_id == 0 {
                    // TLFS: the hypercall page cannot be enabled before the guest identifies
                    // itself; the write is ignored and reads back with enable clear.
                    return Ok(MsrWrite::Done);
                }
                // Bits 11:2 are reserved: keep only enable, locked and the page number.
                let value = value & !HYPERCALL_RESERVED;
                let gpa = value & !HYPERCALL_PAGE_OFFSET_MASK;
                if value & HYPERCALL_ENABLE != 0 {
                    if !page_ok(gpa) {
                        return Err(Gp);
                    }
                    self.hypercall_msr = value;
                    return Ok(MsrWrite::FillHypercallPage(gpa));
                }
                self.hypercall_msr = value;
                Ok(MsrWrite::Done)
            }
            MSR_RESET => match value {
                0 => Ok(MsrWrite::Done),
                RESET_REQUEST => Ok(MsrWrite::Reset),
                _ => Err(Gp),
            },
            MSR_REFERENCE_TSC => {
                let page = overlay(value, &page_ok)?;
                self.reference_tsc = value;
                let Some(gpa) = page else {
                    return Ok(MsrWrite::Done);
                };
                // A new sequence on every (re)enable, never 0 (invalid) or u32::MAX.
                self.tsc_sequence = match self.tsc_sequence.wrapping_add(1) {
                    0 | u32::MAX => 1,
                    n => n,
                };
                let seq = if self.tsc.reliable && self.tsc.hz != 0 {
                    self.tsc_sequence
                } else {
                    0
                };
                Ok(MsrWrite::TscPage(
                    gpa,
                    seq,
                    self.tsc.scale(),
                    self.tsc.page_offset(),
                ))
            }
            MSR_VP_ASSIST_PAGE | MSR_SIEFP | MSR_SIMP => {
                let page = overlay(value, &page_ok)?;
                let st = self.vps.get_mut(vp as usize).ok_or(Gp)?;
                let reg = match msr {
                    MSR_VP_ASSIST_PAGE => &mut st.vp_assist,
                    MSR_SIEFP => &mut st.siefp,
                    _ => &mut st.simp,
                };
                let changed = *reg != value;
                *reg = value;
                Ok(match page {
                    Some(gpa) if changed => MsrWrite::ZeroPage(gpa),
                    _ => MsrWrite::Done,
                })
            }
            MSR_SCONTROL => {
                if value & !SCONTROL_ENABLE != 0 {
                    return Err(Gp);
                }
                self.vps.get_mut(vp as usize).ok_or(Gp)?.scontrol = value;
                Ok(MsrWrite::Done)
            }
            // End of message: nothing is pending until SynIC delivery exists.
            MSR_EOM => Ok(MsrWrite::Done),
            MSR_SINT0..=MSR_SINT15 => {
                if value & !SINT_VALID != 0
                    || (value & SINT_MASKED == 0 && value & SINT_VECTOR_MASK < SINT_MIN_VECTOR)
                {
                    return Err(Gp);
                }
                let st = self.vps.get_mut(vp as usize).ok_or(Gp)?;
                st.sint[(msr - MSR_SINT0) as usize] = value;
                Ok(MsrWrite::Done)
            }
            MSR_STIMER0_CONFIG..=MSR_STIMER3_COUNT => {
                let direct = self
                    .features
                    .has(FeatureReg::FeatEdx, FEAT_DIRECT_SYNTHETIC_TIMERS);
                let st = self.vps.get_mut(vp as usize).ok_or(Gp)?;
                super::stimer::write(&mut st.stimers, msr, value, direct)?;
                Ok(MsrWrite::Done)
            }
            MSR_CRASH_P0..=MSR_CRASH_P4 => {
                self.crash[(msr - MSR_CRASH_P0) as usize] = value;
                Ok(MsrWrite::Done)
            }
            MSR_CRASH_CTL => {
                if value & !(CRASH_CTL_NOTIFY | CRASH_CTL_MESSAGE) != 0 {
                    return Err(Gp);
                }
                if value & CRASH_CTL_NOTIFY != 0 {
                    return Ok(MsrWrite::Crash(self.crash));
                }
                Ok(MsrWrite::Done)
            }
            // Read-only (VP_INDEX, VP_RUNTIME, TIME_REF_COUNT, frequencies, SVERSION) or
            // read-only in effect (GUEST_IDLE).
            _ => Err(Gp),
        }
    }
}

/// The reason a VM ends with after a crash notification: "guest crash" and P0..P4.
pub fn crash_reason(p: &[u64; 5]) -> String {
    format!(
        "guest crash (Hyper-V CRASH_CTL notify): P0={:#x} P1={:#x} P2={:#x} P3={:#x} P4={:#x}",
        p[0], p[1], p[2], p[3], p[4]
    )
}

/// The reference TSC page's first 24 bytes: TscSequence u32, reserved u32, TscScale u64,
/// TscOffset i64 (the rest of the page is zero).
pub fn tsc_page(seq: u32, scale: u64, offset: i64) -> [u8; 24] {
    let mut b = [0u8; 24];
    b[TSC_PAGE_SEQUENCE_OFFSET as usize..4].copy_from_slice(&seq.to_le_bytes());
    b[TSC_PAGE_SCALE_OFFSET as usize..16].copy_from_slice(&scale.to_le_bytes());
    b[TSC_PAGE_OFFSET_OFFSET as usize..24].copy_from_slice(&offset.to_le_bytes());
    b
}
