//! The Hyper-V face a VM shows: vendor signature (leaf 0x40000000) and the privilege,
//! feature and recommendation bits (leaves 0x40000003/0x40000004) that also gate every
//! synthetic MSR and hypercall ([`crate::abi::hv::MSR_GATES`], [`crate::abi::hv::CALL_GATES`]).
use crate::abi::hv::{self, FeatureReg};

/// Leaf 0x40000003 EAX/EBX/EDX and leaf 0x40000004 EAX as the guest sees them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HvFeatures {
    /// Partition privileges, low half (leaf 0x40000003 EAX).
    pub priv_eax: u32,
    /// Partition privileges, high half (leaf 0x40000003 EBX).
    pub priv_ebx: u32,
    /// Features (leaf 0x40000003 EDX).
    pub features_edx: u32,
    /// Implementation recommendations (leaf 0x40000004 EAX).
    pub recommend_eax: u32,
    /// Spin-wait retries before HvCallNotifyLongSpinWait (leaf 0x40000004 EBX); 0 and
    /// 0xFFFFFFFF mean "never notify", and the call is then denied (as KVM).
    pub recommend_ebx: u32,
}

impl Default for HvFeatures {
    /// Everything implemented ([`HvFeatures::ALL`]).
    fn default() -> Self {
        HvFeatures::ALL
    }
}

impl HvFeatures {
    /// Everything implemented: the default.
    pub const ALL: HvFeatures = HvFeatures {
        priv_eax: hv::PRIV_EAX,
        priv_ebx: hv::PRIV_EBX,
        features_edx: hv::FEAT_EDX,
        recommend_eax: hv::RECOMMEND_EAX,
        recommend_ebx: hv::SPIN_RETRIES,
    };

    /// No bit set at all.
    pub const NONE: HvFeatures = HvFeatures {
        priv_eax: 0,
        priv_ebx: 0,
        features_edx: 0,
        recommend_eax: 0,
        recommend_ebx: 0,
    };

    fn reg_mut(&mut self, r: FeatureReg) -> &mut u32 {
        match r {
            FeatureReg::PrivEax => &mut self.priv_eax,
            FeatureReg::PrivEbx => &mut self.priv_ebx,
            FeatureReg::FeatEdx => &mut self.features_edx,
            FeatureReg::RecommendEax => &mut self.recommend_eax,
            FeatureReg::RecommendEbx => &mut self.recommend_ebx,
        }
    }

    /// Whether `mask` is set in register `r`. Leaf 0x40000004 EBX is a count, not bits: it
    /// "has" its gate when it recommends notifying at all (neither 0 nor 0xFFFFFFFF).
    pub fn has(&self, r: FeatureReg, mask: u32) -> bool {
        let v = match r {
            FeatureReg::PrivEax => self.priv_eax,
            FeatureReg::PrivEbx => self.priv_ebx,
            FeatureReg::FeatEdx => self.features_edx,
            FeatureReg::RecommendEax => self.recommend_eax,
            FeatureReg::RecommendEbx => {
                return self.recommend_ebx != 0 && self.recommend_ebx != u32::MAX
            }
        };
        v & mask == mask
    }

    /// Sets or clears the bit named `name` (a TLFS name from [`hv::FEATURE_NAMES`]).
    pub fn set(&mut self, name: &str, on: bool) -> Result<(), String> {
        let (reg, mask) = lookup(name)?;
        let v = self.reg_mut(reg);
        if on {
            *v |= mask;
        } else {
            *v &= !mask;
        }
        Ok(())
    }

    /// Exactly the named bits (an empty list: nothing at all).
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Result<HvFeatures, String> {
        let mut f = HvFeatures::NONE;
        for n in names {
            f.set(n.as_ref(), true)?;
        }
        Ok(f)
    }
}

/// The register and mask of a TLFS privilege/feature/recommendation name.
pub fn lookup(name: &str) -> Result<(FeatureReg, u32), String> {
    hv::FEATURE_NAMES
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|&(_, r, m)| (r, m))
        .ok_or_else(|| {
            format!("unknown Hyper-V privilege/feature `{name}` (TLFS names such as AccessVpIndex, PostMessages, GuestCrashRegsAvailable)")
        })
}

/// The Hyper-V face of a VM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HvConfig {
    /// Leaf 0x40000000 EBX:ECX:EDX vendor signature (12 bytes, NUL-padded).
    pub vendor: [u8; 12],
    /// Privileges, features and recommendations.
    pub features: HvFeatures,
    /// Implementation limits in leaf 0x40000005: (maximum virtual processors, maximum
    /// logical processors).
    pub limits: (u32, u32),
    /// Whether the reference TSC page may be valid: `false` treats the host TSC as
    /// unreliable, so the page carries sequence 0 ("use TIME_REF_COUNT") even on an
    /// invariant host TSC. `true` (the default) leaves it to the host TSC.
    pub reference_tsc_reliable: bool,
}

impl Default for HvConfig {
    fn default() -> Self {
        HvConfig {
            vendor: *hv::VENDOR,
            features: HvFeatures::default(),
            limits: (hv::MAX_PROCESSORS, hv::MAX_PROCESSORS),
            reference_tsc_reliable: true,
        }
    }
}

/// A leaf 0x40000005 limit as a profile or `hvcert run` gives it: at least 1 (Linux takes
/// the maximum virtual processors as the partition's bound on CPUs it may bring up).
pub fn check_limit(what: &str, n: u32) -> Result<u32, String> {
    if n == 0 {
        return Err(format!("{what} = 0: expected at least 1"));
    }
    Ok(n)
}

/// A vendor string as leaf 0x40000000 carries it: printable ASCII, at most 12 bytes,
/// NUL-padded.
pub fn parse_vendor(s: &str) -> Result<[u8; 12], String> {
    if s.len() > 12 || !s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(format!(
            "Hyper-V vendor {s:?}: expected at most 12 printable ASCII characters"
        ));
    }
    let mut v = [0u8; 12];
    v[..s.len()].copy_from_slice(s.as_bytes());
    Ok(v)
}

/// A comma-separated list of TLFS names (as `hvcert run --hv-features`): exactly those bits.
pub fn parse_feature_list(list: &str) -> Result<HvFeatures, String> {
    let names: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    HvFeatures::from_names(&names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_bits_and_unknown_is_an_error() {
        let f = parse_feature_list("AccessVpIndex, PostMessages,GuestCrashRegsAvailable").unwrap();
        assert_eq!(f.priv_eax, 1 << 6);
        assert_eq!(f.priv_ebx, 1 << 4);
        assert_eq!(f.features_edx, 1 << 10);
        assert_eq!(f.recommend_eax, 0);
        let e = parse_feature_list("AccessVpIndex,AccessWarpDrive").unwrap_err();
        assert!(e.contains("AccessWarpDrive"), "{e}");
        let mut d = HvFeatures::default();
        assert!(d.has(FeatureReg::PrivEax, hv::PRIV_ACCESS_VP_INDEX));
        d.set("AccessVpIndex", false).unwrap();
        assert!(!d.has(FeatureReg::PrivEax, hv::PRIV_ACCESS_VP_INDEX));
        // Names are unique.
        for (i, (n, _, _)) in hv::FEATURE_NAMES.iter().enumerate() {
            assert!(
                hv::FEATURE_NAMES[i + 1..].iter().all(|(m, _, _)| m != n),
                "{n}"
            );
        }
    }

    #[test]
    fn vendor_strings() {
        assert_eq!(&parse_vendor("Microsoft Hv").unwrap(), b"Microsoft Hv");
        assert_eq!(&parse_vendor("KVM").unwrap(), b"KVM\0\0\0\0\0\0\0\0\0");
        assert!(parse_vendor("Microsoft Hv!").is_err());
        assert!(parse_vendor("caf\u{e9}").is_err());
        assert_eq!(&HvConfig::default().vendor, b"Microsoft Hv");
    }
}
