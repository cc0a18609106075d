//! The fleet report (`"schema": "hvcert.fleet/v1"`): one entry per host scored by `hvcert
//! fleet`, totals per verdict, and the hosts that share a blocker grouped together.
//! Rendered as JSON, HTML (sortable table, chart of verdicts), Markdown and JUnit XML (one
//! test case per host). Knows nothing of the probe: the caller fills [`FleetHost`]s.
mod html;
mod junit;
mod markdown;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Format;

/// The `schema` value of a fleet report.
pub const FLEET_SCHEMA: &str = "hvcert.fleet/v1";

/// Verdict classes in report order (best first), then the failed hosts.
pub const CLASSES: &[&str] = &["certified", "compatible", "untested", "unsupported"];

/// The `class` of a host that could not be read or scored.
pub const FAILED: &str = "failed";

/// What identifies a host: platform, CPU and chipset, as far as known.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostIdentity {
    /// DMI system vendor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    /// DMI system product.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    /// CPU: brand string or codename, with family/model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    /// Chipset name and PCI id of the host bridge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chipset: Option<String>,
}

/// A reason behind a host's verdict that needs action, with what to do about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Issue {
    /// The fact it concerns (`hw_virt`, `nx`, `bios`, ...).
    pub fact: String,
    /// What was found.
    pub message: String,
    /// What to do about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remedy: Option<String>,
}

/// One host of the fleet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetHost {
    /// The host's name (its folder under the scanned directory).
    pub name: String,
    /// The snapshot folder or dump file it was read from.
    pub path: String,
    /// `certified`, `compatible`, `untested`, `unsupported`, or [`FAILED`].
    pub class: String,
    /// The class with its qualifiers (`certified, provisional: ...`), or `failed`.
    pub label: String,
    /// The 0-100 score; absent for a failed host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<u8>,
    /// The verdict's qualifiers (`unchecked_required`, `mismatched_inputs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub qualifiers: Vec<String>,
    /// The inputs describe two machines (CPUID and DMI disagree about the CPU).
    #[serde(default)]
    pub mismatched_inputs: bool,
    /// Platform, CPU, chipset.
    pub identity: HostIdentity,
    /// The supported-list entry that matched, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched: Option<String>,
    /// Reasons that make the host unsupported.
    #[serde(default)]
    pub blockers: Vec<Issue>,
    /// Reasons that lower the score.
    #[serde(default)]
    pub warnings: Vec<Issue>,
    /// Why the host could not be read or scored (failed hosts only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl FleetHost {
    /// A host that could not be read or scored.
    pub fn failed(name: &str, path: &str, error: &str) -> FleetHost {
        FleetHost {
            name: name.to_string(),
            path: path.to_string(),
            class: FAILED.to_string(),
            label: FAILED.to_string(),
            score: None,
            qualifiers: Vec::new(),
            mismatched_inputs: false,
            identity: HostIdentity::default(),
            matched: None,
            blockers: Vec::new(),
            warnings: Vec::new(),
            error: Some(error.to_string()),
        }
    }

    /// Whether the host counts as a failure (JUnit): unsupported, or not scored at all.
    pub fn is_failure(&self) -> bool {
        self.class == "unsupported" || self.class == FAILED
    }
}

/// Hosts that share a blocker: the same fact with the same remedy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockerGroup {
    /// The fact the blocker concerns.
    pub fact: String,
    /// The blocker as the first host of the group states it.
    pub message: String,
    /// The shared remedy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remedy: Option<String>,
    /// The hosts' names, in report order.
    pub hosts: Vec<String>,
}

/// The fleet report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetReport {
    /// Always [`FLEET_SCHEMA`].
    pub schema: String,
    /// hvcert version that scored the fleet.
    pub version: String,
    /// When (RFC 3339, UTC).
    pub date: String,
    /// Supported-server lists the hosts were scored against.
    #[serde(default)]
    pub lists: Vec<String>,
    /// Hosts per class (every class of [`CLASSES`] and [`FAILED`], zeros included).
    pub totals: BTreeMap<String, usize>,
    /// Hosts whose class is qualified (provisional).
    pub provisional: usize,
    /// Hosts whose inputs describe two machines.
    pub mismatched_inputs: usize,
    /// Every host, in the order given.
    pub hosts: Vec<FleetHost>,
    /// Hosts sharing a blocker, largest group first.
    pub groups: Vec<BlockerGroup>,
    /// Wall time of discovery and scoring, ms.
    #[serde(default)]
    pub elapsed_ms: u64,
}

impl FleetReport {
    /// A report over `hosts`: totals and groups computed here.
    pub fn new(version: &str, date: &str, lists: Vec<String>, hosts: Vec<FleetHost>) -> Self {
        let mut totals: BTreeMap<String, usize> = CLASSES
            .iter()
            .chain([&FAILED])
            .map(|c| (c.to_string(), 0))
            .collect();
        for h in &hosts {
            *totals.entry(h.class.clone()).or_default() += 1;
        }
        let groups = group_blockers(&hosts);
        FleetReport {
            schema: FLEET_SCHEMA.to_string(),
            version: version.to_string(),
            date: date.to_string(),
            lists,
            totals,
            provisional: hosts.iter().filter(|h| !h.qualifiers.is_empty()).count(),
            mismatched_inputs: hosts.iter().filter(|h| h.mismatched_inputs).count(),
            hosts,
            groups,
            elapsed_ms: 0,
        }
    }

    /// The number of hosts in `class`.
    pub fn total(&self, class: &str) -> usize {
        self.totals.get(class).copied().unwrap_or(0)
    }

    /// Classes in report order with their counts, then any unknown class the hosts carry.
    pub fn totals_in_order(&self) -> Vec<(&str, usize)> {
        let mut v: Vec<(&str, usize)> = CLASSES
            .iter()
            .chain([&FAILED])
            .map(|c| (*c, self.total(c)))
            .collect();
        for (k, n) in &self.totals {
            if !v.iter().any(|(c, _)| c == k) {
                v.push((k.as_str(), *n));
            }
        }
        v
    }

    /// `22 hosts: 2 certified, 5 compatible, ...`.
    pub fn totals_line(&self) -> String {
        let parts: Vec<String> = self
            .totals_in_order()
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(c, n)| format!("{n} {c}"))
            .collect();
        format!(
            "{} host{}: {}",
            self.hosts.len(),
            if self.hosts.len() == 1 { "" } else { "s" },
            if parts.is_empty() {
                "none".to_string()
            } else {
                parts.join(", ")
            }
        )
    }

    /// The report in `format`.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Json => {
                let mut s = serde_json::to_string_pretty(self).unwrap_or_else(|e| {
                    format!("{{\"error\": \"cannot serialize the fleet report: {e}\"}}")
                });
                s.push('\n');
                s
            }
            Format::Html => html::render(self),
            Format::Markdown => markdown::render(self),
            Format::Junit => junit::render(self),
        }
    }
}

/// Groups hosts by blocker: same fact, same remedy (or, without a remedy, same message).
/// Every blocker is in one group, a group of one included; largest groups first.
pub fn group_blockers(hosts: &[FleetHost]) -> Vec<BlockerGroup> {
    let mut groups: Vec<BlockerGroup> = Vec::new();
    for h in hosts {
        for b in &h.blockers {
            let same = |g: &BlockerGroup| {
                g.fact == b.fact
                    && match (&g.remedy, &b.remedy) {
                        (Some(a), Some(c)) => a == c,
                        (None, None) => g.message == b.message,
                        _ => false,
                    }
            };
            match groups.iter_mut().find(|g| same(g)) {
                Some(g) => {
                    if !g.hosts.contains(&h.name) {
                        g.hosts.push(h.name.clone());
                    }
                }
                None => groups.push(BlockerGroup {
                    fact: b.fact.clone(),
                    message: b.message.clone(),
                    remedy: b.remedy.clone(),
                    hosts: vec![h.name.clone()],
                }),
            }
        }
    }
    // Stable: equal sizes keep first-seen order.
    groups.sort_by_key(|g| std::cmp::Reverse(g.hosts.len()));
    groups
}

/// The identity as one line: `Dell Inc. PowerEdge R630 · Xeon ... · C610`.
pub fn identity_line(id: &HostIdentity) -> String {
    let platform = match (&id.vendor, &id.product) {
        (None, None) => None,
        (v, p) => Some(
            [v.as_deref(), p.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" "),
        ),
    };
    [platform, id.cpu.clone(), id.chipset.clone()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" · ")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn host(name: &str, class: &str, blockers: &[(&str, &str)]) -> FleetHost {
        FleetHost {
            name: name.into(),
            path: format!("/fleet/{name}"),
            class: class.into(),
            label: class.into(),
            score: Some(if class == "unsupported" { 9 } else { 70 }),
            qualifiers: Vec::new(),
            mismatched_inputs: false,
            identity: HostIdentity {
                vendor: Some("Dell <Inc.>".into()),
                product: Some("R630 | x".into()),
                cpu: Some("Xeon".into()),
                chipset: None,
            },
            matched: None,
            blockers: blockers
                .iter()
                .map(|(f, r)| Issue {
                    fact: f.to_string(),
                    message: format!("{f} off on {name}"),
                    remedy: Some(r.to_string()),
                })
                .collect(),
            warnings: Vec::new(),
            error: None,
        }
    }

    pub(crate) fn sample() -> FleetReport {
        let mut mism = host("d", "compatible", &[]);
        mism.mismatched_inputs = true;
        mism.qualifiers = vec!["mismatched_inputs".into()];
        mism.label = "compatible, provisional: the inputs describe different CPUs".into();
        FleetReport::new(
            "0.1.0",
            "2026-12-06T00:00:00Z",
            vec!["sample".into()],
            vec![
                host("a", "unsupported", &[("hw_virt", "enable VT-x")]),
                host("b", "certified", &[]),
                host(
                    "c",
                    "unsupported",
                    &[("hw_virt", "enable VT-x"), ("nx", "enable NX")],
                ),
                mism,
                FleetHost::failed("e", "/fleet/e", "host.json: expected value at line 1"),
            ],
        )
    }

    #[test]
    fn totals_and_groups() {
        let r = sample();
        assert_eq!(r.total("unsupported"), 2);
        assert_eq!(r.total("certified"), 1);
        assert_eq!(r.total(FAILED), 1);
        assert_eq!(r.total("untested"), 0);
        assert_eq!(r.mismatched_inputs, 1);
        assert_eq!(r.provisional, 1);
        assert_eq!(r.groups.len(), 2);
        assert_eq!(r.groups[0].fact, "hw_virt");
        assert_eq!(r.groups[0].hosts, vec!["a", "c"]);
        assert_eq!(r.groups[1].hosts, vec!["c"]);
        assert_eq!(
            r.totals_line(),
            "5 hosts: 1 certified, 1 compatible, 2 unsupported, 1 failed"
        );
    }

    #[test]
    fn json_round_trips() {
        let r = sample();
        let text = r.render(Format::Json);
        assert!(text.contains("\"schema\": \"hvcert.fleet/v1\""));
        let back: FleetReport = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn identity_line_joins_what_is_known() {
        let id = HostIdentity {
            vendor: Some("HP".into()),
            product: None,
            cpu: Some("Xeon".into()),
            chipset: Some("C610".into()),
        };
        assert_eq!(identity_line(&id), "HP · Xeon · C610");
        assert_eq!(identity_line(&HostIdentity::default()), "");
    }
}
