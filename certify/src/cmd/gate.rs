//! `hvcert gate`: compare a run with a baseline. Exit 0 when no blocker case regressed and
//! no figure is worse than its tolerance, 1 on a regression (printed), 2 on unreadable
//! input or reports of different kinds (reported by main).
use std::path::PathBuf;
use std::process::ExitCode;

use reports::gate::{self, GateOptions};

#[derive(clap::Args)]
pub struct GateArgs {
    /// The reference run (JSON report), e.g. the last release's.
    #[arg(long, value_name = "BASE.json")]
    pub baseline: PathBuf,
    /// The run to check.
    #[arg(value_name = "CURRENT.json")]
    pub current: PathBuf,
    /// Waivers (TOML): blocker cases to treat as non-blockers until an expiry date.
    #[arg(long, value_name = "FILE")]
    pub waivers: Option<PathBuf>,
    /// Allowed worsening of a figure, in percent, for figures without their own tolerance.
    #[arg(long, value_name = "PCT", default_value_t = gate::DEFAULT_TOLERANCE_PCT, value_parser = parse_pct)]
    pub tolerance: f64,
}

fn parse_pct(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("{s:?} is not a number of percent"))?;
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(format!(
            "{s:?}: the tolerance must be a non-negative number"
        ))
    }
}

fn describe(r: &reports::Report) -> String {
    let id = &r.identity;
    let rev = id
        .git_revision
        .as_deref()
        // The first 12 characters (a short hash); the file may hold any text.
        .map(|g| format!(", revision {}", g.chars().take(12).collect::<String>()))
        .unwrap_or_default();
    format!(
        "hvcert {} {} of {}{rev}: {}",
        id.command,
        id.version,
        id.date,
        r.verdict_words()
    )
}

pub fn run(args: GateArgs) -> anyhow::Result<ExitCode> {
    let baseline = certify::probe_report::load(&args.baseline)?;
    let current = certify::probe_report::load(&args.current)?;
    if let Some(why) = gate::kind_mismatch(&baseline, &current) {
        anyhow::bail!(
            "{} vs {}: {why}",
            args.baseline.display(),
            args.current.display()
        );
    }
    let waivers = args
        .waivers
        .as_deref()
        .map(reports::Waivers::load)
        .transpose()?;
    println!(
        "baseline: {} ({})",
        args.baseline.display(),
        describe(&baseline)
    );
    println!(
        "current:  {} ({})",
        args.current.display(),
        describe(&current)
    );
    let opts = GateOptions {
        tolerance_pct: args.tolerance,
        waivers: waivers.as_ref(),
        today: reports::Date::today_utc(),
    };
    let result = gate::compare(&baseline, &current, &opts);
    print!("{result}");
    Ok(if result.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn describe_shortens_any_revision_without_panicking() {
        let mut r = reports::Report::new(reports::Identity::new("certify", "0.1.0", "2026-11-25"));
        r.identity.git_revision = Some("0123456789abcdef".into());
        assert!(super::describe(&r).contains(", revision 0123456789ab:"));
        // A report file can hold any text: 12 bytes must not split a character.
        r.identity.git_revision = Some("aéééééé-dirty".into());
        assert!(super::describe(&r).contains(", revision aéééééé-dirt:"));
    }
}
