//! The store's schema as an ordered list of migrations. SQLite's `user_version` holds how
//! many have been applied; [`migrate`] applies the rest, each in its own transaction, so a
//! crash leaves the database at the last complete version.
use rusqlite::Connection;

/// The migrations, in order. Never edit one that shipped: append a new one.
pub const MIGRATIONS: &[&str] = &[
    // 1: hosts, runs, cases, VMs.
    "CREATE TABLE hosts (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        cpu TEXT NOT NULL DEFAULT '',
        facts TEXT NOT NULL DEFAULT 'null',
        verdict TEXT NOT NULL DEFAULT '',
        score INTEGER,
        updated TEXT NOT NULL
    );
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        host_id INTEGER REFERENCES hosts(id) ON DELETE SET NULL,
        command TEXT NOT NULL,
        version TEXT NOT NULL,
        git_revision TEXT,
        date TEXT NOT NULL,
        verdict TEXT NOT NULL,
        verdict_words TEXT NOT NULL,
        total INTEGER NOT NULL,
        pass INTEGER NOT NULL,
        fail INTEGER NOT NULL,
        skip INTEGER NOT NULL,
        crash INTEGER NOT NULL,
        timeout INTEGER NOT NULL,
        not_run INTEGER NOT NULL,
        blocker_failures INTEGER NOT NULL,
        duration_ms INTEGER NOT NULL,
        wall_ms INTEGER,
        imported_at TEXT NOT NULL,
        report TEXT NOT NULL
    );
    CREATE TABLE cases (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        suite TEXT NOT NULL,
        case_id TEXT NOT NULL,
        outcome TEXT NOT NULL,
        blocker INTEGER NOT NULL,
        duration_ms INTEGER NOT NULL,
        log_excerpt TEXT NOT NULL,
        hypercalls INTEGER,
        measurements TEXT NOT NULL,
        reasons TEXT NOT NULL,
        PRIMARY KEY (run_id, suite, case_id)
    );
    CREATE TABLE vms (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        config TEXT NOT NULL,
        state TEXT NOT NULL,
        created TEXT NOT NULL,
        started TEXT,
        ended TEXT,
        exit_code INTEGER,
        end_reason TEXT
    );",
    // 2: the lookups the pages make.
    "CREATE INDEX runs_by_host ON runs(host_id, id);
     CREATE INDEX cases_by_case ON cases(case_id);",
    // 3: certify runs started from the console (with their cases as they finish), fleet
    // reports, packages, and where an imported run came from.
    "CREATE TABLE certify_jobs (
        id INTEGER PRIMARY KEY,
        request TEXT NOT NULL,
        state TEXT NOT NULL,
        created TEXT NOT NULL,
        started TEXT,
        ended TEXT,
        planned INTEGER,
        error TEXT,
        run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,
        out_dir TEXT NOT NULL
    );
    CREATE TABLE certify_job_cases (
        job_id INTEGER NOT NULL REFERENCES certify_jobs(id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        suite TEXT NOT NULL,
        case_id TEXT NOT NULL,
        outcome TEXT NOT NULL,
        blocker INTEGER NOT NULL,
        duration_ms INTEGER NOT NULL,
        reason TEXT,
        finished TEXT NOT NULL,
        PRIMARY KEY (job_id, suite, case_id)
    );
    CREATE TABLE fleets (
        id INTEGER PRIMARY KEY,
        version TEXT NOT NULL,
        date TEXT NOT NULL,
        hosts INTEGER NOT NULL,
        totals TEXT NOT NULL,
        imported_at TEXT NOT NULL,
        report TEXT NOT NULL
    );
    CREATE TABLE packages (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        sha256 TEXT NOT NULL UNIQUE,
        bytes INTEGER NOT NULL,
        files INTEGER NOT NULL,
        signed_by TEXT,
        problems TEXT NOT NULL,
        imported_at TEXT NOT NULL,
        archive BLOB NOT NULL
    );
    ALTER TABLE runs ADD COLUMN source TEXT;
    ALTER TABLE runs ADD COLUMN package_id INTEGER REFERENCES packages(id) ON DELETE SET NULL;",
];

/// Applies the migrations `conn` lacks; returns the schema version it is at afterwards.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<usize> {
    let current: usize = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        // PRAGMA takes no parameters; the value is our own integer.
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
        tx.commit()?;
    }
    Ok(MIGRATIONS.len().max(current))
}
