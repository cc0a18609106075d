//! Importers, snapshots and supported-server lists: real dumps parse, bad input is an error
//! that names file, line and what was expected.
use std::path::{Path, PathBuf};

use probe::raw::Avail;
use probe::report::State;
use probe::{HostSource, ProbeError};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}
fn dump(name: &str) -> PathBuf {
    fixtures().join("hosts/imported-dumps").join(name)
}
/// A scratch directory, removed when dropped.
fn tmp(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("hvcert-probe-test-{name}-"))
        .tempdir()
        .unwrap()
}
fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}
fn parse_err(e: ProbeError) -> (String, usize, String) {
    match e {
        ProbeError::Parse { file, line, msg } => (file, line, msg),
        other => panic!("expected a parse error, got {other}"),
    }
}

#[test]
fn aida_import_matches_the_converted_snapshot() {
    for (dumpfile, snap) in [
        ("GenuineIntel00006F4_Woodcrest_CPUID.txt", "intel-woodcrest"),
        (
            "AuthenticAMD0100F2A_K10_Barcelona_CPUID.txt",
            "amd-barcelona",
        ),
        (
            "GenuineIntel00206D5_SandyBridgeEP_CPUID.txt",
            "intel-sandybridge-ep",
        ),
    ] {
        let imported = probe::import::cpuid_dump(&dump(dumpfile)).unwrap();
        let stored = probe::snapshot::read(&fixtures().join("hosts").join(snap)).unwrap();
        assert_eq!(imported.cpuid, stored.cpuid, "{dumpfile}");
        assert_eq!(imported.msrs, stored.msrs, "{dumpfile}");
    }
}

#[test]
fn aida_import_reads_first_cpu_subleaves_and_vmx_msrs() {
    let h =
        probe::import::cpuid_dump(&dump("GenuineIntel00206D5_SandyBridgeEP_CPUID.txt")).unwrap();
    let t = h.cpuid.known().unwrap();
    assert_eq!(t.get(1, 0)[0], 0x000206d5);
    assert_ne!(t.get(4, 1), t.get(4, 0), "sub-leaves [SL 01] kept apart");
    let m = h.msrs.known().unwrap();
    assert_eq!(m.get(0x48b), Ok(0x0000_04ff_0000_0000));
    assert!(m.get(0x3a).is_err(), "0x3a is not in this dump");
}

#[test]
fn colonless_dump_imports_with_subleaves_in_order_from_the_first_cpu() {
    // `CPUID LLLLLLLL<TAB>EAX-EBX-ECX-EDX`, no `[SL nn]`, CPU sections split by blank lines.
    let h = probe::import::cpuid_dump(&dump(
        "GenuineIntel00206D5_SandyBridgeEP_CPUID_colonless.txt",
    ))
    .unwrap();
    let colon =
        probe::import::cpuid_dump(&dump("GenuineIntel00206D5_SandyBridgeEP_CPUID.txt")).unwrap();
    assert_eq!(
        h.cpuid, colon.cpuid,
        "same table as the AIDA64 dump it was written from"
    );
    let t = h.cpuid.known().unwrap();
    assert_eq!(t.get(1, 0)[1], 0x0020_0800, "CPU #0's leaf 1, not CPU #1's");
    assert_eq!(t.get(4, 3)[0], 0x3c07_c163, "4th leaf-4 line is sub-leaf 3");
    assert_eq!(
        t.get(0xb, 1)[1],
        0x0000_0010,
        "2nd leaf-0xb line is sub-leaf 1"
    );
    let r = probe::evaluate(&h, &[probe::hcl::sample().unwrap()]);
    assert_eq!(r.cpu.vendor.as_deref(), Some("GenuineIntel"));
    assert_eq!((r.cpu.family, r.cpu.model), (Some(6), Some(0x2d)));
    assert_eq!(r.features.long_mode.state, State::Present);
    assert_eq!(r.features.hw_virt.state, State::Present);
    assert_eq!(r.features.hw_virt.kind.as_deref(), Some("vmx"));
    assert_eq!(r.features.slat.state, State::Present);
    assert_eq!(r.features.slat.kind.as_deref(), Some("ept"));
}

#[test]
fn instlatx64_cpu_sections_import_the_first_cpu() {
    // InstLatx64's own dumps: `CPU#000 AffMask: ...` heads each CPU's section.
    let h = probe::import::cpuid_dump(&dump("AuthenticAMD0100F52_K10_Rana_CPUID1.txt")).unwrap();
    let t = h.cpuid.known().unwrap();
    assert_eq!(t.get(1, 0)[1], 0x0003_0800, "CPU#000's leaf 1");
    assert!(
        !t.leaves.contains_key(&probe::raw::CpuidKey {
            leaf: 1,
            subleaf: 1
        }),
        "CPU#001's leaf 1 is not taken as a sub-leaf"
    );
    let r = probe::evaluate(&h, &[probe::hcl::sample().unwrap()]);
    assert_eq!(r.cpu.vendor.as_deref(), Some("AuthenticAMD"));
    assert_eq!((r.cpu.family, r.cpu.model), (Some(0x10), Some(5)));
    assert_eq!(r.features.hw_virt.state, State::Present);
    assert_eq!(r.features.hw_virt.kind.as_deref(), Some("svm"));
    assert_eq!(r.features.slat.state, State::Present);
    assert_eq!(r.features.slat.kind.as_deref(), Some("npt"));
}

#[test]
fn cpuid_line_shapes() {
    use probe::import::AidaCpuidLine;
    let line = probe::import::parse_aida_cpuid_line;
    let ok = |leaf, regs, subleaf| {
        Some(Ok(AidaCpuidLine {
            leaf,
            regs,
            subleaf,
        }))
    };
    let vendor = [0xd, 0x756e_6547, 0x6c65_746e, 0x4965_6e69];
    for shape in [
        "CPUID 00000000: 0000000D-756E6547-6C65746E-49656E69 [GenuineIntel]",
        "CPUID 00000000\t0000000D-756E6547-6C65746E-49656E69",
        "CPUID 00000000   0000000D-756E6547-6C65746E-49656E69 ",
        "CPUID 00000000: 0000000D 756E6547 6C65746E 49656E69",
        "CPUID 00000000\t0000000D\t756E6547\t6C65746E\t49656E69",
    ] {
        assert_eq!(line(shape), ok(0, vendor, None), "{shape:?}");
    }
    assert_eq!(
        line("CPUID 00000004\t3C004122-01C0003F-0000003F-00000000 [SL 01]"),
        ok(4, [0x3c00_4122, 0x01c0_003f, 0x3f, 0], Some(1))
    );
    for not_a_leaf in [
        "CPUID Manufacturer : GenuineIntel",
        "CPUID Revision     : 000206D5h",
        "CPUID 000000001 0000000D-756E6547-6C65746E-49656E69",
        "CPU#001 AffMask: 0x0000000000000002",
    ] {
        assert_eq!(line(not_a_leaf), None, "{not_a_leaf:?}");
    }
    for garbage in [
        "CPUID 00000001\t000206D5-00200800-1FBEE3FF",
        "CPUID 00000001\tzz",
        "CPUID 00000001:",
        "CPUID 00000001 000206D5-00200800-1FBEE3FF-BFEBFBFFF",
    ] {
        assert!(matches!(line(garbage), Some(Err(_))), "{garbage:?}");
    }
}

#[test]
fn cpuid_raw_import_takes_cpu_0_of_this_machine() {
    let h = probe::import::cpuid_dump(&dump("this-machine-cpuid-r.txt")).unwrap();
    assert!(h.inputs[0].starts_with("cpuid -r"));
    let r = probe::evaluate(&h, &[probe::hcl::sample().unwrap()]);
    assert_eq!(r.cpu.vendor.as_deref(), Some("AuthenticAMD"));
    assert_eq!(r.features.hw_virt.state, State::Absent);
    assert_eq!(r.features.hypervisor.vendor.as_deref(), Some("KVM"));
    assert_eq!(r.kvm.mode, probe::KvmMode::NotChecked);
    // Round trip through the snapshot's writer.
    let t = h.cpuid.known().unwrap();
    let text = probe::import::write_cpuid_raw(t);
    assert_eq!(
        &probe::import::parse_cpuid_raw(&text, Path::new("x")).unwrap(),
        t
    );
}

#[test]
fn dmidecode_import_reads_platform_and_processors() {
    let h = probe::import::dmidecode(&dump("Dell_PowerEdge-R630_0354475C3BDD.txt")).unwrap();
    let d = h.dmi.known().unwrap();
    assert_eq!(d.sys_vendor.as_deref(), Some("Dell Inc."));
    assert_eq!(d.product_name.as_deref(), Some("PowerEdge R630"));
    assert_eq!(d.bios_version.as_deref(), Some("2.11.0"));
    assert_eq!(d.bios_date.as_deref(), Some("11/02/2019"));
    assert_eq!(d.processors.len(), 2);
    assert_eq!(
        (d.processors[0].family, d.processors[0].model),
        (Some(6), Some(63))
    );
    assert!(d.processors[0].enhanced_virtualization);
    assert!(h.cpuid.known().is_none());
}

#[test]
fn several_inputs_combine_into_one_host() {
    let raw = probe::collect(&[
        HostSource::CpuidDump(dump("GenuineIntel00206D5_SandyBridgeEP_CPUID.txt")),
        HostSource::Dmidecode(dump("Dell_PowerEdge-R630_0354475C3BDD.txt")),
    ])
    .unwrap();
    assert_eq!(raw.inputs.len(), 2);
    let r = probe::evaluate(&raw, &[probe::hcl::sample().unwrap()]);
    assert_eq!(r.cpu.codename.as_deref(), Some("Sandy Bridge-EP"));
    assert_eq!(r.platform.product.as_deref(), Some("PowerEdge R630"));
    // The R630 is certified with Haswell/Broadwell only: listed, but not certified here.
    assert_eq!(r.verdict.class, probe::Class::Compatible);
    assert!(r
        .verdict
        .reasons
        .iter()
        .any(|x| x.fact == "cpu" && x.remedy.is_some()));
    // dmidecode alone: CPU identity from the DMI processor record, features unknown.
    let d = probe::collect(&[HostSource::Dmidecode(dump(
        "Dell_PowerEdge-R630_0354475C3BDD.txt",
    ))])
    .unwrap();
    let r = probe::evaluate(&d, &[probe::hcl::sample().unwrap()]);
    assert_eq!((r.cpu.family, r.cpu.model), (Some(6), Some(63)));
    assert_eq!(r.features.nx.state, State::Unknown);
    assert!(r.features.nx.why.is_some());
    assert_eq!(
        r.features.hw_virt.state,
        State::Present,
        "DMI claims Enhanced Virtualization"
    );
}

#[test]
fn bad_dumps_name_file_and_line() {
    let scratch = tmp("dumps");
    let d = scratch.path().to_path_buf();
    let p = write(&d, "aida.txt", "------[ CPU Info ]------\nCPUID Manufacturer: GenuineIntel\nCPUID 00000000: 0000000F-756E6547-zz-49656E69\n");
    let (file, line, msg) = parse_err(probe::import::cpuid_dump(&p).unwrap_err());
    assert!(file.ends_with("aida.txt"));
    assert_eq!(line, 3);
    assert!(msg.contains("EAX-EBX-ECX-EDX"), "{msg}");
    let p = write(&d, "colonless.txt", "CPUID 00000000\t0000000D-756E6547-6C65746E-49656E69\n\nCPUID 00000001\t000206D5-00200800\n");
    let (file, line, msg) = parse_err(probe::import::cpuid_dump(&p).unwrap_err());
    assert!(file.ends_with("colonless.txt"));
    assert_eq!(line, 3);
    assert!(
        msg.contains("CPUID 00000001: expected EAX-EBX-ECX-EDX"),
        "{msg}"
    );

    let p = write(&d, "raw.txt", "CPU 0:\n   0x00000000 0x00: eax=0x1 ebx=0x2 ecx=0x3 edx=0x4\n   0x00000001 0x00: eax=0x1 ebx=0x2 ecx=0x3\n");
    let (_, line, msg) = parse_err(probe::import::cpuid_dump(&p).unwrap_err());
    assert_eq!(line, 3);
    assert!(msg.contains("edx"), "{msg}");

    let p = write(&d, "nothing.txt", "hello\n");
    assert!(matches!(
        probe::import::cpuid_dump(&p),
        Err(ProbeError::Parse { .. })
    ));
    let p = write(&d, "dmi.txt", "# dmidecode 3.3\nSMBIOS 2.8 present.\n");
    let (file, _, msg) = parse_err(probe::import::dmidecode(&p).unwrap_err());
    assert!(
        file.ends_with("dmi.txt") && msg.contains("Handle"),
        "{file} {msg}"
    );
    let p = write(&d, "dmi2.txt", "Handle 0x0000, DMI type zero, 24 bytes\n");
    assert_eq!(parse_err(probe::import::dmidecode(&p).unwrap_err()).1, 1);
    match probe::import::cpuid_dump(&d.join("absent.txt")) {
        Err(ProbeError::Io { path, .. }) => assert!(path.ends_with("absent.txt")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn snapshot_round_trip_and_bad_snapshot() {
    let raw = probe::collect(&[
        HostSource::CpuidDump(dump("GenuineIntel00206D5_SandyBridgeEP_CPUID.txt")),
        HostSource::Dmidecode(dump("Dell_PowerEdge-R630_0354475C3BDD.txt")),
    ])
    .unwrap();
    let scratch = tmp("snap");
    let d = scratch.path().to_path_buf();
    probe::snapshot::write(&d, &raw).unwrap();
    let mut back = probe::snapshot::read(&d).unwrap();
    assert!(back.inputs.remove(0).starts_with("snapshot "));
    assert_eq!(back, raw);

    // A snapshot without CPUID keeps the reason.
    let mut no_cpuid = raw.clone();
    no_cpuid.cpuid = Avail::missing("lost");
    probe::snapshot::write(&d, &no_cpuid).unwrap();
    assert_eq!(
        probe::snapshot::read(&d).unwrap().cpuid,
        Avail::missing("lost")
    );

    write(&d, "host.json", "{\n  \"inputs\": [],\n  \"msrs\": 7\n}\n");
    let (file, line, _) = parse_err(probe::snapshot::read(&d).unwrap_err());
    assert!(file.ends_with("host.json"));
    assert_eq!(line, 3);
}

fn hcl_err(text: &str) -> (String, usize, String) {
    let scratch = tmp("hcl");
    let d = scratch.path().to_path_buf();
    let p = write(&d, "list.toml", text);
    parse_err(probe::hcl::load(&p).unwrap_err())
}

const HEAD: &str = "[list]\nname = \"t\"\n[requirements]\nrequired = [\"nx\"]\n";

#[test]
fn sample_list_is_marked_as_sample() {
    let s = probe::hcl::sample().unwrap();
    assert!(s.list.sample);
    assert!(s.server.len() >= 4 && !s.cpu_family.is_empty() && !s.chipset.is_empty());
    let loaded = probe::hcl::load(&fixtures().join("hcl")).unwrap();
    assert_eq!(loaded.len(), 1);
    assert!(probe::hcl::SAMPLE.contains("SAMPLE"));
}

#[test]
fn malformed_lists_name_file_line_and_field() {
    let (file, line, msg) = hcl_err(&format!(
        "{HEAD}[[server]]\nid = \"a\"\nvendor = \"Dell\"\nmodle = \"R1\"\n"
    ));
    assert!(file.ends_with("list.toml"));
    assert_eq!(line, 8);
    assert!(msg.contains("modle"), "{msg}");

    let (_, line, msg) = hcl_err(&format!("{HEAD}[[cpu_family]]\nid = \"x\"\nvendor = \"GenuineIntel\"\nfamily = \"six\"\nmodels = []\ncodename = \"c\"\n"));
    assert_eq!(line, 8);
    assert!(msg.contains("integer") || msg.contains("u32"), "{msg}");

    let (_, line, msg) =
        hcl_err("[list]\nname = \"t\"\n[requirements]\nrequired = [\"nx\",\n  \"vtx\"]\n");
    assert_eq!(line, 5);
    assert!(msg.contains("vtx") && msg.contains("hw_virt"), "{msg}");

    let (_, line, msg) = hcl_err(&format!(
        "{HEAD}[[chipset]]\nid = \"c\"\nname = \"n\"\npci_ids = [\"8086-2f00\"]\n"
    ));
    assert_eq!(line, 8);
    assert!(msg.contains("pci_ids"), "{msg}");

    let (_, line, msg) = hcl_err(&format!("{HEAD}[[cpu_family]]\nid = \"x\"\nvendor = \"GenuineIntel\"\nfamily = 6\nmodels = [[0x3f, 0x2f]]\ncodename = \"c\"\n"));
    assert_eq!(line, 9);
    assert!(msg.contains("models") && msg.contains("reversed"), "{msg}");

    let (_, line, msg) = hcl_err(&format!("{HEAD}[[server]]\nid = \"a\"\nvendor = \"Dell\"\nmodel = \"R1\"\ncpu_families = [\"nope\"]\n"));
    assert_eq!(line, 9);
    assert!(
        msg.contains("cpu_families") && msg.contains("nope"),
        "{msg}"
    );

    let (_, line, msg) = hcl_err("[list]\nname = \"t\"\n");
    assert!(msg.contains("requirements"), "{msg}");
    assert!(line >= 1);
}

#[test]
fn several_lists_load_at_once() {
    let scratch = tmp("lists");
    let d = scratch.path().to_path_buf();
    write(&d, "a.toml", probe::hcl::SAMPLE);
    write(
        &d,
        "b.toml",
        "[list]\nname = \"extra\"\n[requirements]\nrequired = [\"nx\"]\n[[server]]\nid = \"my-box\"\nvendor = \"Acme\"\nmodel = \"Box *\"\n",
    );
    let lists = probe::hcl::load(&d).unwrap();
    assert_eq!(lists.len(), 2);
    assert!(lists[1].server[0].matches("ACME", "box 3000"));
    assert!(!lists[1].server[0].matches("Acme", "Crate"));
}

#[test]
fn a_feature_one_list_requires_and_another_recommends_is_required_once() {
    // The first list only recommends nx, the second requires it: required wins, so a host
    // without NX gets one blocker for it, not a blocker and a warning as well.
    let a = probe::hcl::parse(
        "[list]\nname = \"a\"\n[requirements]\nrequired = [\"long_mode\"]\nrecommended = [\"nx\"]\n",
        "a.toml",
    )
    .unwrap();
    let b = probe::hcl::parse(
        "[list]\nname = \"b\"\n[requirements]\nrequired = [\"nx\"]\n",
        "b.toml",
    )
    .unwrap();
    let raw = HostSource::Snapshot(fixtures().join("hosts/intel-harpertown-no-nx"))
        .collect()
        .unwrap();
    let lists = [a, b];
    let report = probe::evaluate(&raw, &lists);
    assert_eq!(report.features.nx.state, State::Absent, "fixture changed");
    let nx: Vec<_> = report
        .verdict
        .reasons
        .iter()
        .filter(|r| r.fact == "nx")
        .map(|r| r.level)
        .collect();
    assert_eq!(nx, vec![probe::report::Level::Blocker]);
    assert_eq!(
        probe::hcl::requirements(&lists),
        (
            vec!["long_mode".to_string(), "nx".to_string()],
            Vec::<String>::new()
        )
    );
}

/// The message and its sources joined with ": ", as anyhow's `{:#}` prints an error.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(&format!(": {c}"));
        src = c.source();
    }
    s
}

#[test]
fn missing_files_say_the_os_error_once() {
    let scratch = tmp("missing");
    let d = scratch.path().to_path_buf();
    // "No such file or directory (os error 2)"
    let os = std::fs::read(d.join("x")).unwrap_err().to_string();
    for e in [
        probe::hcl::load(&d.join("missing.toml")).unwrap_err(),
        probe::collect(&[HostSource::Snapshot(d.join("nodir"))]).unwrap_err(),
        probe::import::cpuid_dump(&d.join("absent.txt")).unwrap_err(),
    ] {
        let text = chain(&e);
        assert_eq!(text.matches(&os).count(), 1, "{text}");
        assert!(text.contains(&d.display().to_string()), "{text}");
    }
}

#[test]
fn verdicts_on_unconfirmed_inputs_are_provisional() {
    use probe::Qualifier;
    let lists = [probe::hcl::sample().unwrap()];
    let dmi = HostSource::Dmidecode(dump("Dell_PowerEdge-R630_0354475C3BDD.txt"));
    // dmidecode alone: long mode, NX, ... could not be checked.
    let r = probe::evaluate(&probe::collect(std::slice::from_ref(&dmi)).unwrap(), &lists);
    assert_eq!(r.features.long_mode.state, State::Unknown);
    assert_eq!(r.verdict.qualifiers, vec![Qualifier::UncheckedRequired]);
    assert!(
        r.verdict.label().starts_with(&format!(
            "{}, provisional: required",
            r.verdict.class.as_str()
        )),
        "{}",
        r.verdict.label()
    );
    assert!(r.to_table().contains(&r.verdict.label()));
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["verdict"]["qualifiers"][0], "unchecked_required");

    // A Sandy Bridge-EP CPUID dump with the dmidecode of a Haswell-EP R630.
    let cpuid = HostSource::CpuidDump(dump("GenuineIntel00206D5_SandyBridgeEP_CPUID.txt"));
    let r = probe::evaluate(&probe::collect(&[cpuid.clone(), dmi]).unwrap(), &lists);
    assert_eq!(r.verdict.qualifiers, vec![Qualifier::MismatchedInputs]);
    assert!(
        r.verdict.label().contains("different CPUs"),
        "{}",
        r.verdict.label()
    );

    // CPUID alone confirms every required feature: nothing to qualify.
    let r = probe::evaluate(&probe::collect(&[cpuid]).unwrap(), &lists);
    assert!(
        r.verdict.qualifiers.is_empty(),
        "{:?}",
        r.verdict.qualifiers
    );
    assert_eq!(r.verdict.label(), r.verdict.class.as_str());
    let json = serde_json::to_value(&r).unwrap();
    assert!(
        json["verdict"].get("qualifiers").is_none(),
        "omitted when empty"
    );
}
