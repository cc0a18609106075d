//! A probe result as a run report (`hvcert.report/v1`): the one conversion behind
//! `hvcert probe --report FILE` and `hvcert report PROBE.json` (a saved `hvcert probe
//! --json`), so both render, and gate, exactly like a `hvcert certify` run.
//!
//! The report has one suite, [`SUITE`], with a fixed set of cases (stable ids, so that
//! `hvcert gate` can compare two hosts or two probes of one host):
//!
//! - `verdict`: the probe's class and score: fails (blocker) exactly when the probe says
//!   `unsupported`; figures `score` (0-100 points, higher is better) and, for a run that just
//!   probed, `probe_wall_time` (ms, informational); its log excerpt is the probe's table.
//! - `feature.<key>`, one per probe feature (`long_mode`, `nx`, `hw_virt`, ...). A feature
//!   the lists require is a blocker case: absent or disabled in firmware, it fails and
//!   fails the run (the probe's `unsupported`). A recommended feature that is absent is a
//!   non-blocker failure (a warning). When the probe itself judged a required feature's
//!   problem to be only a warning (hw_virt absent from CPUID while KVM runs guests, i.e.
//!   ring 0 emulated), the case is a non-blocker failure too, as in the probe's verdict. A
//!   feature whose state is unknown is skipped, with why. A feature the lists neither
//!   require nor recommend passes whatever its state (its state is in the reasons).
//! - `kvm`: the KVM functional check. Passes with hardware assistance; nested
//!   software-assisted or unavailable is a non-blocker failure (the probe's warning); not
//!   checked (imported or replayed data) is skipped. Its figures: `exit_us` (lower is
//!   better), `ring0_slowdown`, `vm_create_us`, `ring0_ns_per_op`, `ring3_ns_per_op`
//!   (informational): measurement names are the probe's JSON keys.
//! - `hcl`: the supported-server list match (the probe's `platform`, `bios`, `cpu`,
//!   `chipset`, `hcl` reasons, and any other fact). Fails as a non-blocker when the host is
//!   `untested` or a list warning applies (CPU not certified for the model, old BIOS).
//!
//! Every probe reason appears in exactly one case, prefixed with its level. So the run's
//! verdict is FAIL exactly when the probe says `unsupported`, and PASS only for a
//! `certified` or `compatible` host with nothing skipped or warned about.
//!
//! The reports crate knows nothing of the probe, and the probe nothing of reports: this
//! module is the only place that knows both.
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use probe::report::{Fact, Level, Reason, FEATURE_KEYS};
use probe::{Class, Hcl, KvmMode, ProbeReport, State};
use reports::{Case, Identity, Measurement, Outcome, Report};

/// Name of the suite that holds the probe's cases.
pub const SUITE: &str = "probe";

/// Allowed worsening of `exit_us` for the gate, in percent. The probe times 100 exits in
/// a few milliseconds as a screening figure, not a benchmark: on one idle machine it
/// moves by about a third between runs (9.2-12.9 µs on the nested development VM), so the
/// gate's default 10% would flag noise.
const EXIT_US_TOLERANCE_PCT: f64 = 50.0;

/// Which features the supported-server lists require or recommend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirements {
    /// Facts (probe feature keys) a supported server must have.
    pub required: Vec<String>,
    /// Facts a supported server should have (a warning when absent).
    pub recommended: Vec<String>,
    /// Where these come from: "lists" (the lists the probe used), "built-in sample list"
    /// or "inferred from the verdict" (see [`Requirements::for_saved`]).
    pub origin: &'static str,
}

impl Requirements {
    /// The union over `lists`, as the probe's verdict computes it ([`probe::hcl::requirements`]).
    pub fn from_lists(lists: &[Hcl]) -> Requirements {
        let (required, recommended) = probe::hcl::requirements(lists);
        Requirements {
            required,
            recommended,
            origin: "lists",
        }
    }

    /// For a saved probe document, which does not carry the lists' requirements. When it
    /// was scored against the built-in sample list alone (by name), that list's; otherwise
    /// what the verdict shows: a feature with a blocker reason is required, an absent or
    /// disabled one with a warning is recommended. Inferred requirements miss features
    /// that were fine (they have no reason), which only changes how passing cases are
    /// labelled: every failure keeps the probe's own level.
    pub fn for_saved(p: &ProbeReport) -> Requirements {
        if let Ok(sample) = probe::hcl::sample() {
            if !p.verdict.lists.is_empty() && p.verdict.lists.iter().all(|n| *n == sample.list.name)
            {
                return Requirements {
                    origin: "built-in sample list",
                    ..Requirements::from_lists(std::slice::from_ref(&sample))
                };
            }
        }
        let mut required = Vec::new();
        let mut recommended = Vec::new();
        for r in &p.verdict.reasons {
            let Some(f) = p.features.get(&r.fact) else {
                continue;
            };
            match r.level {
                Level::Blocker if !required.contains(&r.fact) => required.push(r.fact.clone()),
                Level::Warning
                    if matches!(f.state, State::Absent | State::DisabledInFirmware)
                        && !recommended.contains(&r.fact) =>
                {
                    recommended.push(r.fact.clone())
                }
                _ => {}
            }
        }
        recommended.retain(|k| !required.contains(k));
        Requirements {
            required,
            recommended,
            origin: "inferred from the verdict",
        }
    }

    fn role(&self, key: &str) -> &'static str {
        if self.required.iter().any(|k| k == key) {
            "required"
        } else if self.recommended.iter().any(|k| k == key) {
            "recommended"
        } else {
            "informational"
        }
    }
}

/// The identity of a report made by this process (`hvcert probe --report`).
pub fn current_identity() -> Identity {
    Identity::current("probe", env!("CARGO_PKG_VERSION"))
        .with_git_revision(crate::build_info::GIT_REVISION)
}

/// Converts a probe result. `identity` names the run (its host facts are set here to the
/// probe's JSON); `wall` is how long the probe took, when this process ran it.
pub fn to_report(
    p: &ProbeReport,
    req: &Requirements,
    identity: Identity,
    wall: Option<Duration>,
) -> Report {
    let host = serde_json::to_value(p).unwrap_or(serde_json::Value::Null);
    let config = serde_json::json!({
        "source": p.source.kind,
        "inputs": p.source.inputs,
        "lists": p.verdict.lists,
        "requirements": {
            "required": req.required,
            "recommended": req.recommended,
            "origin": req.origin,
        },
    });
    let mut report = Report::new(identity.with_host(host).with_config(config));
    // One verdict, one wording: the run report of a probe is titled as the probe's table.
    report.verdict_label = Some(p.verdict.headline());
    report.wall_ms = wall.map(|w| w.as_millis() as u64);

    // Reasons go to the case of their fact; each is used exactly once.
    let mut used = vec![false; p.verdict.reasons.len()];
    let mut take = |pred: &dyn Fn(&Reason) -> bool| -> Vec<&Reason> {
        let mut out = Vec::new();
        for (i, r) in p.verdict.reasons.iter().enumerate() {
            if !used[i] && pred(r) {
                used[i] = true;
                out.push(r);
            }
        }
        out
    };

    let mut cases = Vec::new();
    for key in FEATURE_KEYS {
        let Some(fact) = p.features.get(key) else {
            continue;
        };
        let reasons = take(&|r| r.fact == *key);
        cases.push(feature_case(key, fact, req.role(key), &reasons));
    }
    let kvm_reasons = take(&|r| r.fact == "kvm");
    cases.push(kvm_case(p, &kvm_reasons));
    // The verdict case takes nothing by fact; everything left is about list matching.
    let list_reasons = take(&|_| true);
    cases.push(hcl_case(p, &list_reasons));
    // First, so that a reader sees the probe's class and score before the details.
    cases.insert(0, verdict_case(p, wall));

    let suite = report.suite_mut(SUITE);
    suite.description = describe_host(p);
    suite.config = serde_json::json!({
        "class": p.verdict.class.as_str(),
        "score": p.verdict.score,
        "matched": p.verdict.matched,
    });
    if !p.verdict.qualifiers.is_empty() {
        // Only when there are any, as in the probe's own JSON: reports without them read
        // exactly as before.
        suite.config["qualifiers"] = serde_json::json!(p.verdict.qualifiers);
    }
    suite.cases = cases;
    report.refresh_summary();
    report
}

/// "blocker: message (remedy: ...)".
fn reason_line(r: &Reason) -> String {
    let level = match r.level {
        Level::Blocker => "blocker",
        Level::Warning => "warning",
        Level::Info => "info",
    };
    match &r.remedy {
        Some(remedy) => format!("{level}: {} (remedy: {remedy})", r.message),
        None => format!("{level}: {}", r.message),
    }
}

fn has(reasons: &[&Reason], level: Level) -> bool {
    reasons.iter().any(|r| r.level == level)
}

/// `present (vmx), CPUID 1 ECX[5]; required by the lists`.
fn state_line(fact: &Fact, role: &str) -> String {
    let mut s = fact.state.as_str().to_string();
    let mut extra: Vec<&str> = Vec::new();
    extra.extend(fact.kind.as_deref());
    extra.extend(fact.vendor.as_deref());
    extra.extend(fact.acpi_table.as_deref());
    if !extra.is_empty() {
        s.push_str(&format!(" ({})", extra.join(", ")));
    }
    if let Some(src) = fact.source.as_deref().filter(|s| !s.is_empty()) {
        s.push_str(&format!(", {src}"));
    }
    if let Some(why) = &fact.why {
        s.push_str(&format!(": {why}"));
    }
    if let (Some(k), None) = (fact.kernel_enabled, &fact.note) {
        s.push_str(if k {
            "; enabled by the kernel"
        } else {
            "; not enabled by the kernel"
        });
    }
    if let Some(note) = &fact.note {
        s.push_str(&format!("; {note}"));
    }
    let role = match role {
        "informational" => "neither required nor recommended by the lists".to_string(),
        r => format!("{r} by the lists"),
    };
    format!("state: {s}; {role}")
}

fn feature_case(key: &str, fact: &Fact, role: &str, reasons: &[&Reason]) -> Case {
    let required = role == "required";
    let (outcome, blocker) = if has(reasons, Level::Blocker) {
        (Outcome::Fail, true)
    } else if fact.state == State::Unknown {
        (Outcome::Skip, required)
    } else if has(reasons, Level::Warning) {
        (Outcome::Fail, false)
    } else {
        match (fact.state, role) {
            (State::Present, _) | (_, "informational") => (Outcome::Pass, required),
            // Not explained by a reason (the probe reports recommended VT-x parts only
            // through hw_virt when VT-x itself is missing): still not available.
            (_, "required") => (Outcome::Fail, true),
            _ => (Outcome::Fail, false),
        }
    };
    let mut case = Case::new(format!("feature.{key}"), outcome)
        .blocker(blocker)
        .reason(state_line(fact, role));
    for r in reasons {
        case = case.reason(reason_line(r));
    }
    case
}

fn kvm_case(p: &ProbeReport, reasons: &[&Reason]) -> Case {
    let k = &p.kvm;
    let outcome = if has(reasons, Level::Blocker) {
        Outcome::Fail
    } else {
        match k.mode {
            KvmMode::NotChecked => Outcome::Skip,
            _ if has(reasons, Level::Warning) => Outcome::Fail,
            KvmMode::Hardware | KvmMode::NestedSoftware => Outcome::Pass,
            KvmMode::Unavailable => Outcome::Fail,
        }
    };
    let mut state = format!("mode: {}", k.mode.as_str());
    if let Some(v) = k.api_version {
        state.push_str(&format!(", API version {v}"));
    }
    if let Some(m) = &k.measured {
        state.push_str(&format!(", measured {m}"));
    }
    if let Some(why) = &k.why {
        state.push_str(&format!(": {why}"));
    }
    let mut case = Case::new("kvm", outcome)
        .blocker(has(reasons, Level::Blocker))
        .reason(state);
    let missing: Vec<&str> = k
        .capabilities
        .iter()
        .filter(|(_, on)| !**on)
        .map(|(name, _)| name.as_str())
        .collect();
    if !missing.is_empty() {
        case = case.reason(format!("capabilities not offered: {}", missing.join(", ")));
    }
    for r in reasons {
        case = case.reason(reason_line(r));
    }
    let figures = [
        k.exit_us.map(|v| {
            Measurement::lower_is_better("exit_us", v, "µs").tolerance_pct(EXIT_US_TOLERANCE_PCT)
        }),
        k.ring0_slowdown
            .map(|v| Measurement::info("ring0_slowdown", v, "x")),
        // One cold VM creation: too noisy to gate on.
        k.vm_create_us
            .map(|v| Measurement::info("vm_create_us", v, "µs")),
        k.ring0_ns_per_op
            .map(|v| Measurement::info("ring0_ns_per_op", v, "ns")),
        k.ring3_ns_per_op
            .map(|v| Measurement::info("ring3_ns_per_op", v, "ns")),
    ];
    for m in figures.into_iter().flatten() {
        // A saved document could hold anything; the report model wants finite figures.
        if m.value.is_finite() {
            case = case.measurement(m);
        }
    }
    case
}

fn hcl_case(p: &ProbeReport, reasons: &[&Reason]) -> Case {
    let untested = p.verdict.class == Class::Untested;
    let outcome = if has(reasons, Level::Blocker) || has(reasons, Level::Warning) || untested {
        Outcome::Fail
    } else {
        Outcome::Pass
    };
    let matched = match &p.verdict.matched {
        Some(m) => format!("matched {m}"),
        None => "no list entry matches this host".to_string(),
    };
    let lists_word = if p.verdict.lists.len() == 1 {
        "list"
    } else {
        "lists"
    };
    let lists = if p.verdict.lists.is_empty() {
        "no list".to_string()
    } else {
        p.verdict
            .lists
            .iter()
            .map(|l| format!("{l:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut case = Case::new("hcl", outcome)
        .blocker(has(reasons, Level::Blocker))
        .reason(format!("{matched}; {lists_word} consulted: {lists}"));
    if untested {
        case = case.reason(
            "untested: neither the model nor its CPU family or chipset is listed with every required feature confirmed: no guarantee",
        );
    }
    for r in reasons {
        case = case.reason(reason_line(r));
    }
    case
}

fn verdict_case(p: &ProbeReport, wall: Option<Duration>) -> Case {
    let v = &p.verdict;
    let outcome = if v.class == Class::Unsupported {
        Outcome::Fail
    } else {
        Outcome::Pass
    };
    let mut case = Case::new("verdict", outcome)
        .reason(format!("{} (score {}/100)", v.label(), v.score))
        .measurement(Measurement::higher_is_better(
            "score",
            f64::from(v.score),
            "points",
        ))
        .log(&p.to_table());
    let mut blockers: Vec<&str> = Vec::new();
    for r in v.reasons.iter().filter(|r| r.level == Level::Blocker) {
        if !blockers.contains(&r.fact.as_str()) {
            blockers.push(&r.fact);
        }
    }
    if !blockers.is_empty() {
        case = case.reason(format!("blocked by: {}", blockers.join(", ")));
    }
    for n in &p.notes {
        case = case.reason(format!("note: {n}"));
    }
    if let Some(w) = wall {
        case = case
            .duration(w)
            // Dominated by the host's load and the KVM check: not a figure to gate on.
            .measurement(Measurement::info(
                "probe_wall_time",
                w.as_secs_f64() * 1000.0,
                "ms",
            ));
    }
    case
}

/// "Dell Inc. PowerEdge R630 · Intel(R) Xeon(R) ... (Haswell-EP) · certified, score 98/100".
fn describe_host(p: &ProbeReport) -> String {
    let mut parts: Vec<String> = Vec::new();
    let platform: Vec<&str> = [p.platform.vendor.as_deref(), p.platform.product.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    if !platform.is_empty() {
        parts.push(platform.join(" "));
    }
    let cpu = match (&p.cpu.brand, &p.cpu.codename) {
        (Some(b), Some(c)) => Some(format!("{b} ({c})")),
        (Some(b), None) => Some(b.clone()),
        (None, Some(c)) => Some(c.clone()),
        (None, None) => None,
    };
    parts.extend(cpu);
    parts.push(format!(
        "{}, score {}/100",
        p.verdict.label(),
        p.verdict.score
    ));
    format!("hvcert probe: {}", parts.join(" · "))
}

/// Reads a saved run for `hvcert report`: a run report (`hvcert.report/v1`), or a saved
/// `hvcert probe --json` (`hvcert.probe/v1`), which is converted. Any other schema is the
/// reports crate's clear error.
pub fn load(path: &Path) -> anyhow::Result<Report> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let schema = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("schema").and_then(|s| s.as_str()).map(str::to_string));
    match schema.as_deref() {
        Some(probe::report::SCHEMA) => {}
        Some(s) if s.starts_with("hvcert.probe/") => anyhow::bail!(
            "{}: unsupported schema {s:?}: this hvcert reads probe output with \"schema\": {:?} (and run reports with {:?}); re-create it with a matching hvcert",
            path.display(),
            probe::report::SCHEMA,
            reports::SCHEMA
        ),
        _ => return Ok(reports::parse(&text, path)?),
    }
    let p: ProbeReport = serde_json::from_str(&text).map_err(|e| {
        let msg = e.to_string();
        let msg = msg.rfind(" at line ").map_or(msg.as_str(), |i| &msg[..i]);
        anyhow::anyhow!(
            "{}:{}:{}: not a valid {}: {msg}",
            path.display(),
            e.line(),
            e.column(),
            probe::report::SCHEMA
        )
    })?;
    // The document does not say when it was made: its file's time is the best guess.
    let date = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or_else(reports::date::now_rfc3339, |d| {
            reports::date::rfc3339(d.as_secs())
        });
    let identity = Identity::new("probe", env!("CARGO_PKG_VERSION"), &date);
    let mut report = to_report(&p, &Requirements::for_saved(&p), identity, None);
    if let serde_json::Value::Object(c) = &mut report.identity.config {
        c.insert(
            "converted_from".into(),
            serde_json::Value::String(path.display().to_string()),
        );
    }
    report.validate().map_err(|m| {
        anyhow::anyhow!("{}: converted probe report is invalid: {m}", path.display())
    })?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    fn fixture(name: &str) -> ProbeReport {
        let raw = probe::collect(&[probe::HostSource::Snapshot(
            root().join("fixtures/hosts").join(name),
        )])
        .unwrap();
        probe::evaluate(&raw, &[probe::hcl::sample().unwrap()])
    }

    fn all_fixtures() -> Vec<(String, ProbeReport)> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(root().join("fixtures/hosts")).unwrap() {
            let e = e.unwrap();
            if e.path().join("host.json").is_file() {
                let name = e.file_name().to_string_lossy().into_owned();
                out.push((name.clone(), fixture(&name)));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        assert!(out.len() >= 15, "fixtures found: {}", out.len());
        out
    }

    fn convert(p: &ProbeReport) -> Report {
        let sample = probe::hcl::sample().unwrap();
        to_report(
            p,
            &Requirements::from_lists(&[sample]),
            Identity::new("probe", "0", "d"),
            None,
        )
    }

    fn outcome(r: &Report, id: &str) -> (Outcome, bool) {
        let c = r.case(SUITE, id).unwrap_or_else(|| panic!("case {id}"));
        (c.outcome, c.blocker)
    }

    #[test]
    fn run_verdict_follows_the_probe_class_on_every_fixture() {
        for (name, p) in all_fixtures() {
            let r = convert(&p);
            r.validate().unwrap();
            let class = p.verdict.class;
            let v = r.summary.verdict;
            assert_eq!(
                v == reports::Verdict::Fail,
                class == Class::Unsupported,
                "{name}: {class:?} -> {v:?}"
            );
            if v == reports::Verdict::Pass {
                assert!(
                    matches!(class, Class::Certified | Class::Compatible),
                    "{name}"
                );
            }
            if class == Class::Untested {
                assert_eq!(v, reports::Verdict::PassWithWarnings, "{name}");
            }
            // Same cases on every host, so the gate can compare any two.
            let ids: Vec<&str> = r.suites[0].cases.iter().map(|c| c.id.as_str()).collect();
            assert_eq!(ids.len(), FEATURE_KEYS.len() + 3, "{name}");
            assert_eq!(r.suites.len(), 1);
            // Every probe reason is in exactly one case.
            let lines: Vec<&String> = r.cases().flat_map(|(_, c)| c.reasons.iter()).collect();
            for reason in &p.verdict.reasons {
                let n = lines.iter().filter(|l| **l == &reason_line(reason)).count();
                assert!(n >= 1, "{name}: reason {reason:?} lost");
            }
            let level_lines = lines
                .iter()
                .filter(|l| {
                    l.starts_with("blocker: ")
                        || l.starts_with("warning: ")
                        || l.starts_with("info: ")
                })
                .count();
            assert_eq!(level_lines, p.verdict.reasons.len(), "{name}");
            // The host facts are the probe's JSON, intact.
            let back: ProbeReport = serde_json::from_value(r.identity.host.clone()).unwrap();
            assert_eq!(back, p, "{name}");
        }
    }

    #[test]
    fn a_provisional_verdict_says_so_in_the_report() {
        // The R710 snapshot pairs a Nehalem-EP CPUID dump with a Westmere-EP DMI record:
        // the probe qualifies its verdict, and the run report must carry that wording.
        let p = fixture("dell-r710-nehalem-ep");
        assert!(!p.verdict.qualifiers.is_empty());
        let r = convert(&p);
        let c = r.case(SUITE, "verdict").unwrap();
        assert!(c.reasons[0].contains("provisional"), "{:?}", c.reasons);
        assert!(r.suites[0].description.contains("provisional"));
        assert!(r.suites[0].config.get("qualifiers").is_some());
        // A host without qualifiers keeps the plain class and no qualifiers key.
        let p = fixture("dell-r630-haswell-ep");
        let r = convert(&p);
        assert!(r.suites[0].config.get("qualifiers").is_none());
    }

    #[test]
    fn required_feature_disabled_in_firmware_is_a_blocker_failure() {
        let p = fixture("dell-r630-vtx-disabled-in-firmware");
        let r = convert(&p);
        assert_eq!(outcome(&r, "feature.hw_virt"), (Outcome::Fail, true));
        assert_eq!(outcome(&r, "verdict"), (Outcome::Fail, true));
        let c = r.case(SUITE, "feature.hw_virt").unwrap();
        assert!(
            c.reasons[0].starts_with("state: disabled_in_firmware (vmx)"),
            "{:?}",
            c.reasons
        );
        assert!(
            c.reasons[1].starts_with("blocker: required hw_virt"),
            "{:?}",
            c.reasons
        );
        assert!(
            c.reasons[1].contains("remedy: enable VT-x"),
            "{:?}",
            c.reasons
        );
        // The other required features are still blocker cases, passing.
        assert_eq!(outcome(&r, "feature.nx"), (Outcome::Pass, true));
        assert_eq!(r.summary.blocker_failures, 2);
    }

    #[test]
    fn recommended_features_are_non_blockers() {
        // Harpertown: VT-x without EPT/VPID/unrestricted guest, no invariant TSC.
        let r = convert(&fixture("intel-harpertown"));
        for key in ["slat", "vpid", "unrestricted_guest", "invariant_tsc"] {
            assert_eq!(
                outcome(&r, &format!("feature.{key}")),
                (Outcome::Fail, false),
                "{key}"
            );
        }
        assert_eq!(outcome(&r, "feature.hw_virt"), (Outcome::Pass, true));
        assert_eq!(outcome(&r, "hcl"), (Outcome::Fail, false), "untested");
        assert_eq!(r.summary.verdict, reports::Verdict::PassWithWarnings);
        // No-NX: the blocker plus VT-x parts that the probe explains through hw_virt.
        let r = convert(&fixture("intel-yonah-32bit-only"));
        assert_eq!(outcome(&r, "feature.long_mode"), (Outcome::Fail, true));
    }

    #[test]
    fn nested_machine_warns_without_failing() {
        let p = fixture("this-nested-kvm-machine");
        let r = convert(&p);
        // Required hw_virt absent, but the probe calls it a warning: KVM runs guests.
        assert_eq!(outcome(&r, "feature.hw_virt"), (Outcome::Fail, false));
        assert_eq!(outcome(&r, "kvm"), (Outcome::Fail, false));
        assert_eq!(r.summary.verdict, reports::Verdict::PassWithWarnings);
        let kvm = r.case(SUITE, "kvm").unwrap();
        let exit = kvm.measurement_named("exit_us").expect("exit_us");
        assert_eq!(exit.direction, reports::Direction::LowerIsBetter);
        assert_eq!(exit.unit, "µs");
        assert_eq!(Some(exit.value), p.kvm.exit_us);
        let slow = kvm.measurement_named("ring0_slowdown").unwrap();
        assert_eq!(slow.direction, reports::Direction::Info);
    }

    #[test]
    fn certified_host_and_its_score() {
        let p = fixture("dell-r630-haswell-ep");
        let r = convert(&p);
        assert_eq!(outcome(&r, "hcl"), (Outcome::Pass, false));
        assert_eq!(outcome(&r, "verdict"), (Outcome::Pass, true));
        // Imported data: no KVM check, IOMMU unknown -> skipped, so a warning-level pass.
        assert_eq!(outcome(&r, "kvm"), (Outcome::Skip, false));
        assert_eq!(outcome(&r, "feature.iommu"), (Outcome::Skip, false));
        assert_eq!(r.summary.verdict, reports::Verdict::PassWithWarnings);
        let score = r
            .case(SUITE, "verdict")
            .unwrap()
            .measurement_named("score")
            .unwrap();
        assert_eq!(score.value, f64::from(p.verdict.score));
        assert_eq!(score.direction, reports::Direction::HigherIsBetter);
        assert!(r.suites[0].description.contains("PowerEdge R630"));
        assert!(r.suites[0].description.contains("certified"));
        assert!(r
            .case(SUITE, "verdict")
            .unwrap()
            .log_excerpt
            .contains("FACT"));
    }

    #[test]
    fn saved_requirements() {
        // Scored against the sample list: its requirements exactly.
        let p = fixture("dell-r630-haswell-ep");
        let req = Requirements::for_saved(&p);
        assert_eq!(req.origin, "built-in sample list");
        assert_eq!(req.required, ["long_mode", "nx", "hw_virt"]);
        // Another list: inferred from the reasons, and the failures are the same.
        let mut p = fixture("intel-harpertown-no-nx");
        p.verdict.lists = vec!["site list".into()];
        let req = Requirements::for_saved(&p);
        assert_eq!(req.origin, "inferred from the verdict");
        assert_eq!(req.required, ["nx"]);
        assert!(req.recommended.contains(&"slat".to_string()));
        let inferred = to_report(&p, &req, Identity::new("probe", "0", "d"), None);
        let listed = convert(&p);
        let failures = |r: &Report| -> Vec<(String, bool)> {
            r.cases()
                .filter(|(_, c)| c.outcome.is_failure())
                .map(|(_, c)| (c.id.clone(), c.blocker))
                .collect()
        };
        assert_eq!(failures(&inferred), failures(&listed));
    }

    #[test]
    fn load_converts_probe_json_and_keeps_other_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let p = fixture("intel-harpertown-xd-disabled");
        let f = dir.join("probe.json");
        std::fs::write(&f, serde_json::to_string_pretty(&p).unwrap()).unwrap();
        let r = load(&f).unwrap();
        assert_eq!(r.identity.command, "probe");
        assert_eq!(r.summary.verdict, reports::Verdict::Fail);
        assert_eq!(
            r.identity.config["converted_from"],
            f.display().to_string().as_str()
        );
        // A damaged probe document names file, line and column.
        let bad = dir.join("bad.json");
        std::fs::write(&bad, "{\n\"schema\": \"hvcert.probe/v1\",\n\"cpu\": 3\n}").unwrap();
        let e = load(&bad).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}:3:", bad.display())), "{e}");
        assert!(e.contains("not a valid hvcert.probe/v1"), "{e}");
        // Unknown schemas keep the reports crate's error.
        let other = dir.join("other.json");
        std::fs::write(&other, "{\"schema\": \"hvcert.report/v0\"}").unwrap();
        let e = load(&other).unwrap_err().to_string();
        assert!(e.contains("unsupported schema \"hvcert.report/v0\""), "{e}");
        std::fs::write(&other, "{\"schema\": \"hvcert.probe/v9\"}").unwrap();
        let e = load(&other).unwrap_err().to_string();
        assert!(
            e.contains("unsupported schema \"hvcert.probe/v9\"") && e.contains("hvcert.probe/v1"),
            "{e}"
        );
    }
}
