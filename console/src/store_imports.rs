//! The store's fleet reports (`hvcert fleet`, each host's verdict also updating the hosts
//! table) and packages (`hvcert package`: the archive kept as it was uploaded, its check,
//! and the runs imported from it).
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use crate::backend::PackageCheck;
use crate::store::{now, Page, Store, StoreError};

/// A stored fleet report's summary.
#[derive(Debug, Clone, Serialize)]
pub struct FleetRow {
    /// Row id.
    pub id: i64,
    /// hvcert version that scored the fleet.
    pub version: String,
    /// When it was scored (RFC 3339).
    pub date: String,
    /// Hosts in it.
    pub hosts: i64,
    /// Hosts per class.
    pub totals: serde_json::Value,
    /// When it was imported (RFC 3339).
    pub imported_at: String,
}

/// A stored package.
#[derive(Debug, Clone, Serialize)]
pub struct PackageRow {
    /// Row id.
    pub id: i64,
    /// File name it was imported as.
    pub name: String,
    /// SHA-256 of the archive, hex.
    pub sha256: String,
    /// Size of the archive.
    pub bytes: i64,
    /// Files its manifest lists.
    pub files: i64,
    /// The key whose signature holds, when signed.
    pub signed_by: Option<String>,
    /// Problems the check found (empty: intact).
    pub problems: Vec<String>,
    /// When it was imported (RFC 3339).
    pub imported_at: String,
    /// Runs imported from it.
    pub runs: i64,
}

/// Stores a fleet report inside `tx` and updates its hosts' verdicts (a new host gets the
/// fleet entry as its facts; a known host keeps its probe facts); returns its id.
pub(crate) fn insert_fleet(
    tx: &rusqlite::Transaction<'_>,
    fleet: &reports::fleet::FleetReport,
) -> Result<i64, StoreError> {
    tx.execute(
        "INSERT INTO fleets (version, date, hosts, totals, imported_at, report)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            fleet.version,
            fleet.date,
            fleet.hosts.len() as i64,
            serde_json::to_string(&fleet.totals)?,
            now(),
            serde_json::to_string(fleet)?
        ],
    )?;
    let id = tx.last_insert_rowid();
    for h in &fleet.hosts {
        tx.execute(
            "INSERT INTO hosts (name, cpu, facts, verdict, score, updated)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(name) DO UPDATE SET verdict = excluded.verdict,
               score = excluded.score, updated = excluded.updated,
               cpu = CASE WHEN excluded.cpu = '' THEN hosts.cpu ELSE excluded.cpu END",
            params![
                h.name,
                h.identity.cpu.clone().unwrap_or_default(),
                serde_json::to_string(h)?,
                h.class,
                h.score.map(i64::from),
                now()
            ],
        )?;
    }
    Ok(id)
}

/// Stores a package archive and its check inside `tx`; returns its id. The same archive
/// twice is refused (its SHA-256 is unique).
pub(crate) fn insert_package(
    tx: &rusqlite::Transaction<'_>,
    name: &str,
    sha256: &str,
    archive: &[u8],
    check: &PackageCheck,
) -> Result<i64, StoreError> {
    tx.execute(
        "INSERT INTO packages (name, sha256, bytes, files, signed_by, problems, imported_at, archive)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            name,
            sha256,
            archive.len() as i64,
            check.files as i64,
            check.signed_by,
            serde_json::to_string(&check.problems)?,
            now(),
            archive
        ],
    )?;
    Ok(tx.last_insert_rowid())
}

const PACKAGE_COLUMNS: &str = "p.id, p.name, p.sha256, p.bytes, p.files, p.signed_by, \
    p.problems, p.imported_at, (SELECT COUNT(*) FROM runs r WHERE r.package_id = p.id)";

fn package_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(PackageRow, String)> {
    Ok((
        PackageRow {
            id: r.get(0)?,
            name: r.get(1)?,
            sha256: r.get(2)?,
            bytes: r.get(3)?,
            files: r.get(4)?,
            signed_by: r.get(5)?,
            problems: Vec::new(),
            imported_at: r.get(7)?,
            runs: r.get(8)?,
        },
        r.get(6)?,
    ))
}

fn with_problems((mut p, problems): (PackageRow, String)) -> Result<PackageRow, StoreError> {
    p.problems = serde_json::from_str(&problems)?;
    Ok(p)
}

const FLEET_COLUMNS: &str = "id, version, date, hosts, totals, imported_at";

fn fleet_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(FleetRow, String)> {
    Ok((
        FleetRow {
            id: r.get(0)?,
            version: r.get(1)?,
            date: r.get(2)?,
            hosts: r.get(3)?,
            totals: serde_json::Value::Null,
            imported_at: r.get(5)?,
        },
        r.get(4)?,
    ))
}

fn with_totals((mut f, totals): (FleetRow, String)) -> Result<FleetRow, StoreError> {
    f.totals = serde_json::from_str(&totals)?;
    Ok(f)
}

impl Store {
    /// Whether a package with this SHA-256 is stored.
    pub fn has_package(&self, sha256: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn()
            .query_row("SELECT 1 FROM packages WHERE sha256 = ?1", [sha256], |_| {
                Ok(())
            })
            .optional()?
            .is_some())
    }

    /// Packages, newest first.
    pub fn packages(&self, page: Page) -> Result<Vec<PackageRow>, StoreError> {
        let conn = self.conn();
        let mut q = conn.prepare(&format!(
            "SELECT {PACKAGE_COLUMNS} FROM packages p ORDER BY p.id DESC LIMIT ?1 OFFSET ?2"
        ))?;
        let raw = q
            .query_map(params![page.limit as i64, page.offset as i64], package_row)?
            .collect::<Result<Vec<_>, _>>()?;
        raw.into_iter().map(with_problems).collect()
    }

    /// One package.
    pub fn package(&self, id: i64) -> Result<Option<PackageRow>, StoreError> {
        let raw = self
            .conn()
            .query_row(
                &format!("SELECT {PACKAGE_COLUMNS} FROM packages p WHERE p.id = ?1"),
                [id],
                package_row,
            )
            .optional()?;
        raw.map(with_problems).transpose()
    }

    /// One package's archive, byte for byte as imported.
    pub fn package_archive(&self, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .conn()
            .query_row("SELECT archive FROM packages WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// Fleet reports, newest first.
    pub fn fleets(&self, page: Page) -> Result<Vec<FleetRow>, StoreError> {
        let conn = self.conn();
        let mut q = conn.prepare(&format!(
            "SELECT {FLEET_COLUMNS} FROM fleets ORDER BY id DESC LIMIT ?1 OFFSET ?2"
        ))?;
        let raw = q
            .query_map(params![page.limit as i64, page.offset as i64], fleet_row)?
            .collect::<Result<Vec<_>, _>>()?;
        raw.into_iter().map(with_totals).collect()
    }

    /// One fleet report: its summary and the whole report.
    pub fn fleet(&self, id: i64) -> Result<Option<(FleetRow, serde_json::Value)>, StoreError> {
        let raw = self
            .conn()
            .query_row(
                &format!("SELECT {FLEET_COLUMNS}, report FROM fleets WHERE id = ?1"),
                [id],
                |r| Ok((fleet_row(r)?, r.get::<_, String>(6)?)),
            )
            .optional()?;
        match raw {
            None => Ok(None),
            Some((row, report)) => Ok(Some((with_totals(row)?, serde_json::from_str(&report)?))),
        }
    }
}
