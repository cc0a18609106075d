//! The console's database: one SQLite file (`console.db` in the data folder) holding hosts,
//! imported runs with their cases, and VM records. Every write is one transaction.
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::migrations;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite said no.
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    /// A stored JSON column does not parse (the database was edited by hand).
    #[error("database holds invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// A host: a machine that runs were made on, named by its probe's hostname.
#[derive(Debug, Clone, Serialize)]
pub struct Host {
    /// Row id.
    pub id: i64,
    /// Hostname from the report's host facts (`unknown` when absent).
    pub name: String,
    /// CPU brand string, when known.
    pub cpu: String,
    /// The probe's verdict for this host (`supported`, `untested`, ...), or the latest
    /// run's verdict slug when no probe verdict was seen.
    pub verdict: String,
    /// The probe's score out of 100, when known.
    pub score: Option<i64>,
    /// When a run last updated this host (RFC 3339).
    pub updated: String,
    /// Runs stored for this host.
    pub runs: i64,
}

/// A stored run: the summary columns of one imported report.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// Row id.
    pub id: i64,
    /// The host it ran on, when known.
    pub host_id: Option<i64>,
    /// The host's name, when known.
    pub host: Option<String>,
    /// Producing subcommand (`certify`, `probe`, ...).
    pub command: String,
    /// hvcert version.
    pub version: String,
    /// Git revision of hvcert, when recorded.
    pub git_revision: Option<String>,
    /// Date of the run (RFC 3339).
    pub date: String,
    /// Verdict slug: pass, warn, fail or none.
    pub verdict: String,
    /// The verdict as the report words it.
    pub verdict_words: String,
    /// Cases in the run.
    pub total: i64,
    /// Cases that passed.
    pub pass: i64,
    /// Cases that failed.
    pub fail: i64,
    /// Cases skipped.
    pub skip: i64,
    /// Cases that crashed.
    pub crash: i64,
    /// Cases that timed out.
    pub timeout: i64,
    /// Cases that did not run.
    pub not_run: i64,
    /// Unwaived failing blocker cases.
    pub blocker_failures: i64,
    /// Summed case time in milliseconds.
    pub duration_ms: i64,
    /// Wall time of the run, when measured.
    pub wall_ms: Option<i64>,
    /// When it was imported (RFC 3339).
    pub imported_at: String,
    /// Where it came from: `upload`, `file:PATH`, `certify-job:N`, `package:N`, ...
    pub source: Option<String>,
    /// The package it was imported from, when it was.
    pub package_id: Option<i64>,
}

/// One case of a stored run.
#[derive(Debug, Clone, Serialize)]
pub struct CaseRow {
    /// Suite (profile) name.
    pub suite: String,
    /// Case id, unique in its suite.
    pub id: String,
    /// Outcome (`pass`, `fail`, ...).
    pub outcome: String,
    /// Whether it is a blocker.
    pub blocker: bool,
    /// Its duration in milliseconds.
    pub duration_ms: i64,
    /// The tail of its log.
    pub log_excerpt: String,
    /// Hypercalls the case made (its `hypercalls` figure), when recorded.
    pub hypercalls: Option<i64>,
    /// Its figures, as in the report.
    pub measurements: serde_json::Value,
    /// Why it ended as it did.
    pub reasons: Vec<String>,
}

/// A VM record.
#[derive(Debug, Clone, Serialize)]
pub struct VmRow {
    /// Row id.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// The validated request it was created from ([`crate::vms::VmSpec`] as JSON).
    pub config: serde_json::Value,
    /// `created`, `running`, `stopped`, `exited`, `failed`.
    pub state: String,
    /// Creation time (RFC 3339).
    pub created: String,
    /// Last start (RFC 3339).
    pub started: Option<String>,
    /// Last end (RFC 3339).
    pub ended: Option<String>,
    /// `hvcert run`'s exit status at the last end (guest status, 124 timeout, 125 crash).
    pub exit_code: Option<i64>,
    /// How the last run ended, in words.
    pub end_reason: Option<String>,
}

/// The database. Cloning is not offered: share it behind an `Arc`.
pub struct Store {
    conn: Mutex<Connection>,
}

const RUN_COLUMNS: &str = "r.id, r.host_id, h.name, r.command, r.version, r.git_revision, r.date, \
    r.verdict, r.verdict_words, r.total, r.pass, r.fail, r.skip, r.crash, r.timeout, r.not_run, \
    r.blocker_failures, r.duration_ms, r.wall_ms, r.imported_at, r.source, r.package_id";

fn run_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunSummary> {
    Ok(RunSummary {
        id: r.get(0)?,
        host_id: r.get(1)?,
        host: r.get(2)?,
        command: r.get(3)?,
        version: r.get(4)?,
        git_revision: r.get(5)?,
        date: r.get(6)?,
        verdict: r.get(7)?,
        verdict_words: r.get(8)?,
        total: r.get(9)?,
        pass: r.get(10)?,
        fail: r.get(11)?,
        skip: r.get(12)?,
        crash: r.get(13)?,
        timeout: r.get(14)?,
        not_run: r.get(15)?,
        blocker_failures: r.get(16)?,
        duration_ms: r.get(17)?,
        wall_ms: r.get(18)?,
        imported_at: r.get(19)?,
        source: r.get(20)?,
        package_id: r.get(21)?,
    })
}

const VM_COLUMNS: &str = "id, name, config, state, created, started, ended, exit_code, end_reason";

fn vm_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(VmRow, String)> {
    let config: String = r.get(2)?;
    Ok((
        VmRow {
            id: r.get(0)?,
            name: r.get(1)?,
            config: serde_json::Value::Null,
            state: r.get(3)?,
            created: r.get(4)?,
            started: r.get(5)?,
            ended: r.get(6)?,
            exit_code: r.get(7)?,
            end_reason: r.get(8)?,
        },
        config,
    ))
}

fn with_config((mut row, config): (VmRow, String)) -> Result<VmRow, StoreError> {
    row.config = serde_json::from_str(&config)?;
    Ok(row)
}

/// Host facts a report carries: (name, cpu, probe verdict, probe score).
fn host_facts(host: &serde_json::Value) -> (String, String, Option<String>, Option<i64>) {
    let s = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(str::to_string);
    let name = s(host.get("hostname")).unwrap_or_else(|| "unknown".into());
    let cpu = s(host.pointer("/cpu/brand")).unwrap_or_default();
    let verdict = s(host.pointer("/verdict/verdict"));
    let score = host.pointer("/verdict/score").and_then(|v| v.as_i64());
    (name, cpu, verdict, score)
}

/// A window of a list: at most `limit` rows from `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Most rows returned.
    pub limit: usize,
    /// Rows skipped first.
    pub offset: usize,
}

impl Page {
    /// The first `limit` rows.
    pub fn first(limit: usize) -> Page {
        Page { limit, offset: 0 }
    }
}

/// The tables [`Store::count`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// Hosts.
    Hosts,
    /// VM records.
    Vms,
    /// Fleet reports.
    Fleets,
    /// Packages.
    Packages,
    /// Certify runs started from the console.
    CertifyJobs,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Hosts => "hosts",
            Table::Vms => "vms",
            Table::Fleets => "fleets",
            Table::Packages => "packages",
            Table::CertifyJobs => "certify_jobs",
        }
    }
}

pub(crate) fn now() -> String {
    reports::date::now_rfc3339()
}

impl Store {
    /// Opens (creating when absent) `dir/console.db` and brings its schema up to date.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Self::from_connection(Connection::open(dir.join("console.db"))?)
    }

    /// An in-memory database (tests).
    pub fn in_memory() -> Result<Store, StoreError> {
        Self::from_connection(Connection::open_in_memory()?)
    }

    fn from_connection(mut conn: Connection) -> Result<Store, StoreError> {
        // WAL: readers do not wait for a writer; synchronous=FULL: a committed transaction
        // survives a power cut.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        migrations::migrate(&mut conn)?;
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-written transaction (rusqlite
        // rolls back on drop), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The schema version (number of migrations applied).
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn()
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    /// Stores a report (its host, the run and every case) in one transaction; returns the
    /// new run's id.
    pub fn import(&self, report: &reports::Report) -> Result<i64, StoreError> {
        self.import_from(report, "upload")
    }

    /// [`Store::import`], recording where the report came from (`source`).
    pub fn import_from(&self, report: &reports::Report, source: &str) -> Result<i64, StoreError> {
        self.transaction(|tx| import_tx(tx, report, source, None))
    }

    /// Runs `f` in one transaction: committed when it returns `Ok`, rolled back otherwise.
    pub fn transaction<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let v = f(&tx)?;
        tx.commit()?;
        Ok(v)
    }

    /// Hosts by name: `page.limit` of them from `page.offset`.
    pub fn hosts(&self, page: Page) -> Result<Vec<Host>, StoreError> {
        let conn = self.conn();
        let mut q = conn.prepare(
            "SELECT h.id, h.name, h.cpu, h.verdict, h.score, h.updated,
               (SELECT COUNT(*) FROM runs r WHERE r.host_id = h.id)
             FROM hosts h ORDER BY h.name LIMIT ?1 OFFSET ?2",
        )?;
        let rows = q.query_map(params![page.limit as i64, page.offset as i64], host_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many rows `table` (`hosts`, `vms`, `fleets`, `packages`, `certify_jobs`) holds.
    pub fn count(&self, table: Table) -> Result<i64, StoreError> {
        let sql = format!("SELECT COUNT(*) FROM {}", table.name());
        Ok(self.conn().query_row(&sql, [], |r| r.get(0))?)
    }

    /// One host, with its facts (the probe JSON).
    pub fn host(&self, id: i64) -> Result<Option<(Host, serde_json::Value)>, StoreError> {
        let conn = self.conn();
        let row = conn
            .query_row(
                "SELECT h.id, h.name, h.cpu, h.verdict, h.score, h.updated,
                   (SELECT COUNT(*) FROM runs r WHERE r.host_id = h.id), h.facts
                 FROM hosts h WHERE h.id = ?1",
                [id],
                |r| Ok((host_row(r)?, r.get::<_, String>(7)?)),
            )
            .optional()?;
        match row {
            None => Ok(None),
            Some((h, facts)) => Ok(Some((h, serde_json::from_str(&facts)?))),
        }
    }

    /// Runs, newest first; only `host`'s when given; `page.limit` of them from
    /// `page.offset`.
    pub fn runs(&self, host: Option<i64>, page: Page) -> Result<Vec<RunSummary>, StoreError> {
        let conn = self.conn();
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs r LEFT JOIN hosts h ON h.id = r.host_id
             WHERE (?1 IS NULL OR r.host_id = ?1) ORDER BY r.id DESC LIMIT ?2 OFFSET ?3"
        );
        let mut q = conn.prepare(&sql)?;
        let rows = q.query_map(
            params![host, page.limit as i64, page.offset as i64],
            run_row,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many runs there are (only `host`'s when given).
    pub fn runs_count(&self, host: Option<i64>) -> Result<i64, StoreError> {
        Ok(self.conn().query_row(
            "SELECT COUNT(*) FROM runs WHERE (?1 IS NULL OR host_id = ?1)",
            [host],
            |r| r.get(0),
        )?)
    }

    /// One run's summary.
    pub fn run(&self, id: i64) -> Result<Option<RunSummary>, StoreError> {
        let conn = self.conn();
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs r LEFT JOIN hosts h ON h.id = r.host_id WHERE r.id = ?1"
        );
        Ok(conn.query_row(&sql, [id], run_row).optional()?)
    }

    /// One run's full report, as imported.
    pub fn report(&self, id: i64) -> Result<Option<reports::Report>, StoreError> {
        let conn = self.conn();
        let json: Option<String> = conn
            .query_row("SELECT report FROM runs WHERE id = ?1", [id], |r| r.get(0))
            .optional()?;
        match json {
            None => Ok(None),
            Some(j) => Ok(Some(serde_json::from_str(&j)?)),
        }
    }

    /// The cases of run `run` named `case` (one per suite that has it; only `suite`'s when
    /// given).
    pub fn cases_named(
        &self,
        run: i64,
        case: &str,
        suite: Option<&str>,
    ) -> Result<Vec<CaseRow>, StoreError> {
        let conn = self.conn();
        let mut q = conn.prepare(
            "SELECT suite, case_id, outcome, blocker, duration_ms, log_excerpt, hypercalls,
               measurements, reasons
             FROM cases WHERE run_id = ?1 AND case_id = ?2 AND (?3 IS NULL OR suite = ?3)
             ORDER BY suite",
        )?;
        let raw = q
            .query_map(params![run, case, suite], |r| {
                Ok((
                    CaseRow {
                        suite: r.get(0)?,
                        id: r.get(1)?,
                        outcome: r.get(2)?,
                        blocker: r.get(3)?,
                        duration_ms: r.get(4)?,
                        log_excerpt: r.get(5)?,
                        hypercalls: r.get(6)?,
                        measurements: serde_json::Value::Null,
                        reasons: Vec::new(),
                    },
                    r.get::<_, String>(7)?,
                    r.get::<_, String>(8)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        raw.into_iter()
            .map(|(mut c, m, reasons)| {
                c.measurements = serde_json::from_str(&m)?;
                c.reasons = serde_json::from_str(&reasons)?;
                Ok(c)
            })
            .collect()
    }

    /// Creates a VM record in state `created`; returns its id.
    pub fn create_vm(&self, name: &str, config: &serde_json::Value) -> Result<i64, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO vms (name, config, state, created) VALUES (?1, ?2, 'created', ?3)",
            params![name, serde_json::to_string(config)?, now()],
        )?;
        let id = tx.last_insert_rowid();
        tx.commit()?;
        Ok(id)
    }

    /// VM records, newest first: `page.limit` of them from `page.offset`.
    pub fn vms(&self, page: Page) -> Result<Vec<VmRow>, StoreError> {
        let conn = self.conn();
        let mut q = conn.prepare(&format!(
            "SELECT {VM_COLUMNS} FROM vms ORDER BY id DESC LIMIT ?1 OFFSET ?2"
        ))?;
        let raw = q
            .query_map(params![page.limit as i64, page.offset as i64], vm_row)?
            .collect::<Result<Vec<_>, _>>()?;
        raw.into_iter().map(with_config).collect()
    }

    /// One VM record.
    pub fn vm(&self, id: i64) -> Result<Option<VmRow>, StoreError> {
        let conn = self.conn();
        let raw = conn
            .query_row(
                &format!("SELECT {VM_COLUMNS} FROM vms WHERE id = ?1"),
                [id],
                vm_row,
            )
            .optional()?;
        raw.map(with_config).transpose()
    }

    /// Records that VM `id` started now.
    pub fn vm_started(&self, id: i64) -> Result<(), StoreError> {
        self.write(
            "UPDATE vms SET state = 'running', started = ?2, ended = NULL, exit_code = NULL,
               end_reason = NULL WHERE id = ?1",
            params![id, now()],
        )
    }

    /// Records that VM `id` ended now in `state`, with `exit_code` and `reason`.
    pub fn vm_ended(
        &self,
        id: i64,
        state: &str,
        exit_code: Option<i32>,
        reason: &str,
    ) -> Result<(), StoreError> {
        self.write(
            "UPDATE vms SET state = ?2, ended = ?3, exit_code = ?4, end_reason = ?5 WHERE id = ?1",
            params![id, state, now(), exit_code, reason],
        )
    }

    /// Deletes VM `id`'s record; whether there was one.
    pub fn delete_vm(&self, id: i64) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let n = tx.execute("DELETE FROM vms WHERE id = ?1", [id])?;
        tx.commit()?;
        Ok(n > 0)
    }

    /// VMs recorded as running when the server last stopped: their processes are gone, so
    /// they are marked `stopped` (run at start-up).
    pub fn reset_running_vms(&self) -> Result<(), StoreError> {
        self.write(
            "UPDATE vms SET state = 'stopped', ended = ?1, end_reason = 'the server restarted'
             WHERE state = 'running'",
            params![now()],
        )
    }

    fn write(&self, sql: &str, p: impl rusqlite::Params) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(sql, p)?;
        tx.commit()?;
        Ok(())
    }
}

/// Upserts a host by name with its facts, verdict and score; returns its id.
pub(crate) fn upsert_host(
    tx: &rusqlite::Transaction<'_>,
    name: &str,
    cpu: &str,
    facts: &serde_json::Value,
    verdict: &str,
    score: Option<i64>,
) -> Result<i64, StoreError> {
    tx.execute(
        "INSERT INTO hosts (name, cpu, facts, verdict, score, updated)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(name) DO UPDATE SET cpu = excluded.cpu, facts = excluded.facts,
           verdict = excluded.verdict, score = excluded.score, updated = excluded.updated",
        params![
            name,
            cpu,
            serde_json::to_string(facts)?,
            verdict,
            score,
            now()
        ],
    )?;
    Ok(tx.query_row("SELECT id FROM hosts WHERE name = ?1", [name], |r| r.get(0))?)
}

/// Stores a report (its host, the run and every case) inside `tx`; returns the run's id.
pub(crate) fn import_tx(
    tx: &rusqlite::Transaction<'_>,
    report: &reports::Report,
    source: &str,
    package_id: Option<i64>,
) -> Result<i64, StoreError> {
    let mut report = report.clone();
    report.refresh_summary();
    let json = serde_json::to_string(&report)?;
    let host_id = if report.identity.host.is_null() {
        None
    } else {
        let (name, cpu, verdict, score) = host_facts(&report.identity.host);
        let verdict = verdict.unwrap_or_else(|| report.summary.verdict.slug().to_string());
        Some(upsert_host(
            tx,
            &name,
            &cpu,
            &report.identity.host,
            &verdict,
            score,
        )?)
    };
    let s = &report.summary;
    let id = &report.identity;
    tx.execute(
        "INSERT INTO runs (host_id, command, version, git_revision, date, verdict,
           verdict_words, total, pass, fail, skip, crash, timeout, not_run,
           blocker_failures, duration_ms, wall_ms, imported_at, report, source, package_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
           ?17, ?18, ?19, ?20, ?21)",
        params![
            host_id,
            id.command,
            id.version,
            id.git_revision,
            id.date,
            s.verdict.slug(),
            report.verdict_words(),
            s.total as i64,
            s.pass as i64,
            s.fail as i64,
            s.skip as i64,
            s.crash as i64,
            s.timeout as i64,
            s.not_run as i64,
            s.blocker_failures as i64,
            s.duration_ms as i64,
            report.wall_ms.map(|w| w as i64),
            now(),
            json,
            source,
            package_id,
        ],
    )?;
    let run_id = tx.last_insert_rowid();
    let mut ins = tx.prepare(
        "INSERT INTO cases (run_id, suite, case_id, outcome, blocker, duration_ms,
           log_excerpt, hypercalls, measurements, reasons)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    for (suite, case) in report.cases() {
        let hypercalls = case
            .measurement_named("hypercalls")
            .map(|m| m.value.round() as i64);
        ins.execute(params![
            run_id,
            suite.name,
            case.id,
            case.outcome.as_str(),
            case.blocker,
            case.duration_ms as i64,
            case.log_excerpt,
            hypercalls,
            serde_json::to_string(&case.measurements)?,
            serde_json::to_string(&case.reasons)?,
        ])?;
    }
    Ok(run_id)
}

fn host_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Host> {
    Ok(Host {
        id: r.get(0)?,
        name: r.get(1)?,
        cpu: r.get(2)?,
        verdict: r.get(3)?,
        score: r.get(4)?,
        updated: r.get(5)?,
        runs: r.get(6)?,
    })
}

#[cfg(test)]
mod tests {
    use super::Store;

    fn fixture(name: &str) -> reports::Report {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fixtures/reports")
            .join(name);
        reports::load(&p).expect("fixture loads")
    }

    #[test]
    fn import_stores_host_run_and_cases() {
        let s = Store::in_memory().unwrap();
        assert_eq!(s.schema_version().unwrap(), 3);
        let id = s.import(&fixture("blocker-failure.json")).unwrap();
        let run = s.run(id).unwrap().unwrap();
        assert_eq!(run.verdict, "fail");
        assert_eq!(run.command, "certify");
        let hosts = s.hosts(super::Page::first(10)).unwrap();
        assert_eq!(hosts.len(), 1);
        assert_eq!(hosts[0].runs, 1);
        let report = s.report(id).unwrap().unwrap();
        let (suite, case) = report.cases().next().unwrap();
        let rows = s.cases_named(id, &case.id, Some(&suite.name)).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].outcome, case.outcome.as_str());
        assert!(s.run(id + 1).unwrap().is_none());
    }

    #[test]
    fn reopening_keeps_data_and_schema() {
        let dir = tempfile::tempdir().unwrap();
        let id = {
            let s = Store::open(dir.path()).unwrap();
            s.import(&fixture("all-pass.json")).unwrap()
        };
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.schema_version().unwrap(), 3);
        assert_eq!(s.run(id).unwrap().unwrap().verdict, "pass");
    }
}
