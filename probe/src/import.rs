//! Importers for real dumps: AIDA64/EVEREST CPUID text, `cpuid -r` raw text, `dmidecode`
//! text. Each returns a [`RawHost`] holding only what the dump has; every other input is
//! missing with the reason "not in `<file>`".
use std::path::Path;

use crate::raw::{parse_hex, Avail, CpuidTable, Dmi, DmiProcessor, Hex, MsrRead, MsrSet, RawHost};
use crate::ProbeError;

fn read(path: &Path) -> Result<String, ProbeError> {
    let bytes = std::fs::read(path).map_err(|e| ProbeError::io(path, e))?;
    // AIDA64 dumps are sometimes Latin-1; keep what is ASCII.
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn parse_error(path: &Path, line: usize, msg: impl Into<String>) -> ProbeError {
    ProbeError::Parse {
        file: path.display().to_string(),
        line,
        msg: msg.into(),
    }
}

/// `--cpuid-dump FILE`: an AIDA64/EVEREST dump or `cpuid -r` output (detected by content).
pub fn cpuid_dump(path: &Path) -> Result<RawHost, ProbeError> {
    let text = read(path)?;
    let name = file_name(path);
    let (table, msrs, kind) = if text
        .lines()
        .any(|l| l.trim_start().starts_with("0x") && l.contains("eax="))
    {
        (parse_cpuid_raw(&text, path)?, None, "cpuid -r")
    } else {
        let (t, m) = parse_aida(&text, path)?;
        (t, m, "AIDA64/EVEREST")
    };
    let why = format!("not in the {kind} dump {name}");
    let mut host = RawHost::empty(&why);
    host.inputs.push(format!("{kind} CPUID dump {name}"));
    host.cpuid = Avail::Known(table);
    host.msrs = match msrs {
        Some(m) => Avail::Known(m),
        None => Avail::missing(format!("the {kind} dump {name} has no MSR section")),
    };
    host.kvm = Avail::missing("the KVM functional check runs only on the live host");
    Ok(host)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Parses the raw format of the `cpuid` tool (`cpuid -r`, `cpuid -r -1`); CPU 0 only.
/// Lines: `   0x00000001 0x00: eax=0x000306f2 ebx=0x00400800 ecx=0x7dfefbff edx=0xbfebfbff`.
pub fn parse_cpuid_raw(text: &str, path: &Path) -> Result<CpuidTable, ProbeError> {
    let mut table = CpuidTable::default();
    let mut cpu_blocks = 0;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with("CPU") && t.ends_with(':') {
            cpu_blocks += 1;
            if cpu_blocks > 1 {
                break;
            }
            continue;
        }
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let (head, regs) = t.split_once(':').ok_or_else(|| {
            parse_error(
                path,
                i + 1,
                "expected `0xLEAF 0xSUB: eax=.. ebx=.. ecx=.. edx=..`",
            )
        })?;
        let mut hs = head.split_whitespace();
        let leaf = hs.next().and_then(parse_hex);
        let sub = hs.next().and_then(parse_hex);
        let (Some(leaf), Some(sub)) = (leaf, sub) else {
            return Err(parse_error(
                path,
                i + 1,
                format!("expected a hex leaf and sub-leaf, found {head:?}"),
            ));
        };
        let mut out = [None; 4];
        for part in regs.split_whitespace() {
            let (k, v) = part.split_once('=').ok_or_else(|| {
                parse_error(path, i + 1, format!("expected reg=0xVALUE, found {part:?}"))
            })?;
            let idx = match k {
                "eax" => 0,
                "ebx" => 1,
                "ecx" => 2,
                "edx" => 3,
                _ => return Err(parse_error(path, i + 1, format!("unknown register {k:?}"))),
            };
            let v = parse_hex(v)
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| {
                    parse_error(
                        path,
                        i + 1,
                        format!("{k}: expected a 32-bit hex value, found {v:?}"),
                    )
                })?;
            out[idx] = Some(v);
        }
        let [Some(a), Some(b), Some(c), Some(d)] = out else {
            return Err(parse_error(
                path,
                i + 1,
                "expected all of eax, ebx, ecx, edx",
            ));
        };
        let (Ok(leaf), Ok(sub)) = (u32::try_from(leaf), u32::try_from(sub)) else {
            return Err(parse_error(path, i + 1, "leaf and sub-leaf must be 32-bit"));
        };
        table.insert(leaf, sub, [a, b, c, d]);
    }
    if table.is_empty() {
        return Err(parse_error(
            path,
            1,
            "no CPUID lines (`0xLEAF 0xSUB: eax=...`) found",
        ));
    }
    Ok(table)
}

/// Writes a table in the `cpuid -r -1` format (the snapshot's cpuid.txt).
pub fn write_cpuid_raw(table: &CpuidTable) -> String {
    let mut s = String::from("CPU:\n");
    for (k, r) in &table.leaves {
        s.push_str(&format!(
            "   {:#010x} {:#04x}: eax={:#010x} ebx={:#010x} ecx={:#010x} edx={:#010x}\n",
            k.leaf, k.subleaf, r[0], r[1], r[2], r[3]
        ));
    }
    s
}

/// Parses an AIDA64/EVEREST/InstLatx64 CPUID dump: the CPUID lines of the first logical CPU
/// and the `MSR Registers` section (`MSR 0000048B: hhhh-hhhh-hhhh-hhhh`, first value of each
/// MSR, `< FAILED >` = unreadable).
///
/// CPUID lines come in these shapes (see [`parse_aida_cpuid_line`]):
/// `CPUID 00000004: EAX-EBX-ECX-EDX [SL 01]`, the same without the colon (`CPUID 00000004`,
/// then a tab or spaces), and registers as four words instead of dash-joined. A leaf listed
/// again without `[SL nn]` is its next sub-leaf, in order. The first logical CPU's section
/// ends at a `------[ ... ]------` header, at a `CPU#nnn` line (InstLatx64's own dumps), or at
/// a second leaf 0 (files whose CPU sections are only separated by blank lines).
pub fn parse_aida(text: &str, path: &Path) -> Result<(CpuidTable, Option<MsrSet>), ProbeError> {
    let mut table = CpuidTable::default();
    let mut first_cpu_done = false;
    let mut in_msr = false;
    let mut msrs: Option<MsrSet> = None;
    let mut seen: std::collections::HashMap<u32, u32> = std::collections::HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with("------[") {
            if !table.is_empty() {
                first_cpu_done = true;
            }
            in_msr = t.contains("MSR Registers");
            if in_msr && msrs.is_none() {
                msrs = Some(MsrSet {
                    reads: Vec::new(),
                    missing_why: Some(format!("MSR not listed in the dump {}", file_name(path))),
                });
            }
            continue;
        }
        if t.starts_with("CPU#") && !table.is_empty() {
            first_cpu_done = true;
            continue;
        }
        if let Some(parsed) = parse_aida_cpuid_line(t) {
            let AidaCpuidLine {
                leaf,
                regs,
                subleaf: sub,
            } = parsed.map_err(|msg| parse_error(path, i + 1, msg))?;
            if leaf == 0 && seen.contains_key(&0) {
                // Leaf 0 has no sub-leaves: a second one starts the next CPU's section.
                first_cpu_done = true;
            }
            if first_cpu_done {
                continue;
            }
            // Without `[SL nn]`, a repeated leaf is the next sub-leaf, in order.
            let sub = sub.unwrap_or_else(|| *seen.get(&leaf).unwrap_or(&0));
            *seen.entry(leaf).or_insert(0) += 1;
            table.insert(leaf, sub, regs);
            continue;
        }
        if in_msr {
            if let Some(rest) = t.strip_prefix("MSR ") {
                let Some((idx, val)) = rest.split_once(':') else {
                    continue;
                };
                let Some(idx) = parse_hex(idx) else {
                    return Err(parse_error(
                        path,
                        i + 1,
                        format!("MSR: expected 8 hex digits, found {idx:?}"),
                    ));
                };
                // Keep the MSRs the probe interprets; the rest of the section is noise here.
                if !(idx == 0x3a
                    || idx == 0x1a0
                    || (0x480..=0x491).contains(&idx)
                    || idx == 0xc001_0114)
                {
                    continue;
                }
                let set = msrs.get_or_insert_with(MsrSet::default);
                if set.reads.iter().any(|r| r.msr.0 == idx) {
                    continue; // later lines repeat the MSR for other cores
                }
                let val = val.trim();
                let read = if val.starts_with('<') {
                    MsrRead {
                        msr: Hex(idx),
                        value: None,
                        why: Some(format!("the dump says {}", val.trim())),
                    }
                } else {
                    let hexpart = val.split_whitespace().next().unwrap_or("");
                    let digits: String = hexpart.chars().filter(|c| *c != '-').collect();
                    let v = parse_hex(&digits).ok_or_else(|| {
                        parse_error(
                            path,
                            i + 1,
                            format!(
                                "MSR {idx:08X}: expected hhhh-hhhh-hhhh-hhhh, found {hexpart:?}"
                            ),
                        )
                    })?;
                    MsrRead {
                        msr: Hex(idx),
                        value: Some(Hex(v)),
                        why: None,
                    }
                };
                set.reads.push(read);
            }
        }
    }
    if table.is_empty() {
        return Err(parse_error(
            path,
            1,
            "no `CPUID LLLLLLLL: EAX-EBX-ECX-EDX` lines found (not an AIDA64/EVEREST/InstLatx64 dump?)",
        ));
    }
    Ok((table, msrs))
}

/// One parsed CPUID line of an AIDA64/EVEREST/InstLatx64 dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AidaCpuidLine {
    /// The leaf (EAX input).
    pub leaf: u32,
    /// EAX, EBX, ECX, EDX.
    pub regs: [u32; 4],
    /// The sub-leaf of a `[SL nn]` marker; `None` when the line has none.
    pub subleaf: Option<u32>,
}

/// One CPUID line of an AIDA64/EVEREST/InstLatx64 dump: `None` when the line is not one
/// (`CPUID Manufacturer : ...` and other CPU Info lines are not), else the leaf, EAX..EDX and
/// the `[SL nn]` sub-leaf if marked, or what is wrong with it.
///
/// The leaf is `CPUID` and 8 hex digits, then a colon, a tab or spaces; the registers are
/// `EAX-EBX-ECX-EDX` or four whitespace-separated words of hex; anything after them (a
/// decoded string such as `[GenuineIntel]`, a `[SL nn]` marker) is a comment.
pub fn parse_aida_cpuid_line(t: &str) -> Option<Result<AidaCpuidLine, String>> {
    let rest = t.strip_prefix("CPUID")?;
    let rest = rest.strip_prefix([' ', '\t'])?.trim_start();
    let leaf_text = rest.get(..8)?;
    if !leaf_text.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let after = &rest[8..];
    let after = match after.strip_prefix(':') {
        Some(a) => a,
        // Colon-less shape: the leaf must stand alone, followed by a tab or spaces.
        None if after.starts_with([' ', '\t']) => after,
        None => return None,
    };
    Some(parse_aida_regs(leaf_text, after.trim()))
}

fn parse_aida_regs(leaf_text: &str, rest: &str) -> Result<AidaCpuidLine, String> {
    let leaf = u32::from_str_radix(leaf_text, 16)
        .map_err(|_| format!("CPUID leaf: expected 8 hex digits, found {leaf_text:?}"))?;
    let word = |p: &str| {
        (!p.is_empty() && p.len() <= 8)
            .then(|| u32::from_str_radix(p, 16).ok())
            .flatten()
    };
    let mut words = rest.split_whitespace();
    let first = words.next().unwrap_or("");
    let regs: Option<Vec<u32>> = if first.contains('-') {
        first.split('-').map(word).collect()
    } else {
        std::iter::once(first)
            .chain(words.take(3))
            .map(word)
            .collect()
    };
    let regs = regs.filter(|v| v.len() == 4).ok_or_else(|| {
        format!(
            "CPUID {leaf:08X}: expected EAX-EBX-ECX-EDX in hex, found {:?}",
            rest.split('[').next().unwrap_or("").trim()
        )
    })?;
    let sub = match rest.find("[SL ") {
        Some(p) => {
            let s = &rest[p + 4..];
            let end = s.find(']').unwrap_or(s.len());
            let sub = parse_hex(&s[..end])
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| format!("CPUID {leaf:08X}: bad sub-leaf {:?}", &s[..end]))?;
            Some(sub)
        }
        None => None,
    };
    Ok(AidaCpuidLine {
        leaf,
        regs: [regs[0], regs[1], regs[2], regs[3]],
        subleaf: sub,
    })
}

/// `--dmidecode FILE`: platform identity and processor records from `dmidecode` text.
pub fn dmidecode(path: &Path) -> Result<RawHost, ProbeError> {
    let text = read(path)?;
    let name = file_name(path);
    let dmi = parse_dmidecode(&text, path)?;
    let mut host = RawHost::empty(&format!("not in the dmidecode dump {name}"));
    host.inputs.push(format!("dmidecode dump {name}"));
    host.dmi = Avail::Known(dmi);
    host.kvm = Avail::missing("the KVM functional check runs only on the live host");
    Ok(host)
}

/// Parses `dmidecode` text: type 0 (BIOS), type 1 (System), type 4 (Processor) records.
pub fn parse_dmidecode(text: &str, path: &Path) -> Result<Dmi, ProbeError> {
    let mut dmi = Dmi::default();
    let mut ty: Option<u32> = None;
    let mut in_chars = false;
    let mut seen_handle = false;
    for (i, line) in text.lines().enumerate() {
        if line.starts_with("Handle ") {
            seen_handle = true;
            ty = line
                .split("DMI type ")
                .nth(1)
                .and_then(|s| s.split(',').next())
                .and_then(|s| s.trim().parse().ok());
            if ty.is_none() {
                return Err(parse_error(
                    path,
                    i + 1,
                    format!("expected `Handle 0x.., DMI type N, ..`, found {line:?}"),
                ));
            }
            if ty == Some(4) {
                dmi.processors.push(DmiProcessor::default());
            }
            in_chars = false;
            continue;
        }
        let depth = line.chars().take_while(|c| *c == '\t').count();
        let t = line.trim();
        if depth == 1 {
            in_chars = false;
        }
        let kv = t.split_once(':').map(|(k, v)| (k.trim(), clean(v)));
        match (ty, depth, kv) {
            (Some(0), 1, Some(("Vendor", v))) => dmi.bios_vendor = v,
            (Some(0), 1, Some(("Version", v))) => dmi.bios_version = v,
            (Some(0), 1, Some(("Release Date", v))) => dmi.bios_date = v,
            (Some(1), 1, Some(("Manufacturer", v))) => dmi.sys_vendor = v,
            (Some(1), 1, Some(("Product Name", v))) => dmi.product_name = v,
            (Some(4), 1, Some(("Version", v))) => {
                if let Some(p) = dmi.processors.last_mut() {
                    p.version = v;
                }
            }
            (Some(4), 1, Some(("Signature", Some(v)))) => {
                if let Some(p) = dmi.processors.last_mut() {
                    // "Type 0, Family 6, Model 63, Stepping 2" or "Family 23, Model 49, Stepping 0"
                    for part in v.split(',') {
                        let mut w = part.split_whitespace();
                        let (k, n) = (w.next(), w.next().and_then(|n| n.parse::<u32>().ok()));
                        match k {
                            Some("Family") => p.family = n,
                            Some("Model") => p.model = n,
                            Some("Stepping") => p.stepping = n,
                            _ => {}
                        }
                    }
                }
            }
            (Some(4), 1, Some(("Characteristics", _))) => {
                in_chars = true;
                if let Some(p) = dmi.processors.last_mut() {
                    p.has_characteristics = true;
                }
            }
            (Some(4), 2, _) if in_chars && t == "Enhanced Virtualization" => {
                if let Some(p) = dmi.processors.last_mut() {
                    p.enhanced_virtualization = true;
                }
            }
            _ => {}
        }
    }
    if !seen_handle {
        return Err(parse_error(
            path,
            1,
            "no `Handle 0x...., DMI type N` records found (not dmidecode output?)",
        ));
    }
    // Records for empty sockets carry no signature; drop them.
    dmi.processors
        .retain(|p| p.family.is_some() || p.version.is_some());
    Ok(dmi)
}

fn clean(v: &str) -> Option<String> {
    let v = v.trim();
    if v.is_empty() || v == "Not Specified" || v == "To Be Filled By O.E.M." || v == "Unknown" {
        None
    } else {
        Some(v.to_string())
    }
}
