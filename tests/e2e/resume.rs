//! `hvcert certify` interrupted and resumed: SIGKILL at random points, then `--resume`,
//! must give the case set and outcomes of an uninterrupted run; a journal of another
//! binary, a cut journal line and a corrupt one; and the refusal to run without KVM.
#[path = "../common/mod.rs"]
mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{assert_exit, hvcert};

/// A small, fast selection: one profile, every case (two at a time).
const ARGS: &[&str] = &[
    "certify",
    "--profile",
    "sles10sp1-like",
    "--seed",
    "42",
    "--jobs",
    "2",
    "--no-probe",
];

/// (suite, case, outcome, blocker, reasons) of every case of OUT/report.json, in order.
fn cases(out: &Path) -> Vec<(String, String, String, bool, Vec<String>)> {
    let rep = reports::load(out.join("report.json")).expect("report.json loads");
    rep.suites
        .iter()
        .flat_map(|s| {
            s.cases.iter().map(|c| {
                (
                    s.name.clone(),
                    c.id.clone(),
                    c.outcome.as_str().to_string(),
                    c.blocker,
                    c.reasons.clone(),
                )
            })
        })
        .collect()
}

fn certify(out: &Path) -> std::process::Output {
    hvcert()
        .args(ARGS)
        .arg("--out")
        .arg(out)
        .output()
        .expect("run hvcert certify")
}

fn resume(out: &Path) -> std::process::Output {
    hvcert()
        .args(["certify", "--resume"])
        .arg(out)
        .output()
        .expect("run hvcert certify --resume")
}

/// xorshift64: the test's seeded RNG.
fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

#[test]
fn sigkill_at_random_points_then_resume_matches_an_uninterrupted_run() {
    if !common::kvm_available_or_skip("sigkill_at_random_points_then_resume") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let reference = tmp.path().join("reference");
    let t0 = Instant::now();
    let res = certify(&reference);
    let full = t0.elapsed();
    assert_exit(&res, 0);
    let want = cases(&reference);
    assert!(want.len() >= 10, "{want:?}");
    // Issue 16 item 10: a run whose cases all passed leaves no disks/ folder.
    assert!(
        !reference.join("disks").exists(),
        "empty disks/ left behind"
    );

    let mut rng = 0x5eed_1234_u64;
    let (mut compared, mut no_journal, mut finished_before_kill) = (0, 0, Vec::new());
    let mut trial = 0;
    while compared < 20 {
        trial += 1;
        assert!(trial <= 60, "only {compared} trials reached a journal");
        let out = tmp.path().join(format!("trial{trial}"));
        let mut child = hvcert()
            .args(ARGS)
            .arg("--out")
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn hvcert certify");
        // Mostly while cases run; a few land after the last case or before the first.
        let delay = next(&mut rng) % (full.as_millis() as u64 * 9 / 10 + 1);
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().expect("SIGKILL"); // Child::kill is SIGKILL on Unix.
        child.wait().expect("reap");
        let journal = out.join("journal.jsonl");
        if !journal.exists() {
            // Killed before the run began: nothing to resume, and resume says so.
            let r = resume(&out);
            assert_exit(&r, 2);
            assert!(
                String::from_utf8_lossy(&r.stderr).contains("no journal to resume"),
                "{}",
                String::from_utf8_lossy(&r.stderr)
            );
            no_journal += 1;
            continue;
        }
        let text = std::fs::read_to_string(&journal).unwrap_or_default();
        finished_before_kill.push(text.matches('\n').count().saturating_sub(1));
        let r = resume(&out);
        assert_exit(&r, 0);
        assert_eq!(cases(&out), want, "trial {trial} (killed after {delay} ms)");
        compared += 1;
    }
    eprintln!(
        "{compared} kill+resume trials matched ({no_journal} killed before the journal \
         existed); cases finished before the kill: {finished_before_kill:?}; full run {:.2} s",
        full.as_secs_f64()
    );
    // The kills landed at different points, most of them while cases were running.
    let mid_run = finished_before_kill
        .iter()
        .filter(|&&n| n > 0 && n < want.len())
        .count();
    assert!(mid_run >= 5, "{finished_before_kill:?}");
}

#[test]
fn resume_refuses_another_binary_and_reads_cut_and_corrupt_journals() {
    if !common::kvm_available_or_skip("resume_refuses_another_binary") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    assert_exit(&certify(&out), 0);
    let want = cases(&out);
    let journal = out.join("journal.jsonl");
    let text = std::fs::read_to_string(&journal).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), want.len() + 1, "head + one line per case");

    // A cut last line: the cases before it stand, that case reruns.
    let cut = format!(
        "{}\n{}",
        lines[..4].join("\n"),
        &lines[4][..lines[4].len() / 2]
    );
    std::fs::write(&journal, &cut).unwrap();
    std::fs::remove_file(out.join("report.json")).unwrap();
    let r = resume(&out);
    assert_exit(&r, 0);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(
        stderr.contains("3 of") && stderr.contains("half-written"),
        "{stderr}"
    );
    assert_eq!(cases(&out), want);

    // A corrupt line in the middle: file:line.
    let mut bad: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    bad[2] = "{\"case\": tru".into();
    std::fs::write(&journal, bad.join("\n") + "\n").unwrap();
    let r = resume(&out);
    assert_exit(&r, 2);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(
        stderr.contains(&format!("{}:3: corrupt journal line", journal.display())),
        "{stderr}"
    );

    // Another binary (version and revision in the head): refused, naming what differs.
    let head = lines[0]
        .replacen(
            &format!("\"hvcert_version\":\"{}\"", env!("CARGO_PKG_VERSION")),
            "\"hvcert_version\":\"0.0.1\"",
            1,
        )
        .replacen("\"git_revision\":\"", "\"git_revision\":\"x", 1);
    assert_ne!(head, lines[0]);
    let mut other = vec![head];
    other.extend(lines[1..].iter().map(|l| l.to_string()));
    std::fs::write(&journal, other.join("\n") + "\n").unwrap();
    let r = resume(&out);
    assert_exit(&r, 2);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(
        stderr.contains("not the same run")
            && stderr.contains("hvcert version: journal 0.0.1")
            && stderr.contains("build revision: journal x"),
        "{stderr}"
    );
    // A head whose seed was edited no longer matches the cases run under it.
    let head = lines[0].replacen("\"seed\":42", "\"seed\":43", 1);
    assert_ne!(head, lines[0]);
    let mut other = vec![head];
    other.extend(lines[1..].iter().map(|l| l.to_string()));
    std::fs::write(&journal, other.join("\n") + "\n").unwrap();
    let r = resume(&out);
    assert_exit(&r, 2);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(stderr.contains("ran with command line"), "{stderr}");
    // A changed profile is refused by its hash.
    let head = lines[0].replacen("\"sha256\":\"", "\"sha256\":\"0", 1);
    let mut other = vec![head];
    other.extend(lines[1..].iter().map(|l| l.to_string()));
    std::fs::write(&journal, other.join("\n") + "\n").unwrap();
    let r = resume(&out);
    assert_exit(&r, 2);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(
        stderr.contains("profile sles10sp1-like: journal sha256 0"),
        "{stderr}"
    );
}

/// Issue 16 item 11: no usable KVM is not a certification result.
#[test]
fn certify_without_kvm_says_so_once_and_writes_no_report() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let r = hvcert()
        .args(ARGS)
        .arg("--out")
        .arg(&out)
        .env("HVCERT_KVM_DEVICE", "/dev/null")
        .output()
        .expect("run hvcert certify");
    assert_exit(&r, 2);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("cannot run VMs")
            && stderr.contains("KVM_CREATE_VM")
            && stderr.contains("load kvm_intel or kvm_amd"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("os error 25").count(),
        1,
        "the OS error once: {stderr}"
    );
    assert!(String::from_utf8_lossy(&r.stdout).is_empty());
    assert!(!out.join("report.json").exists() && !out.join("run.json").exists());
    assert!(!out.join("journal.jsonl").exists());
}
