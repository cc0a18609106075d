//! The store's certify runs started from the console: the request, the state, each case as
//! it finishes, and the imported run once it ended. Every write is one transaction, so the
//! progress seen after a crash is the progress made.
use std::collections::BTreeMap;

use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use crate::backend::CaseEvent;
use crate::store::{import_tx, now, Page, Store, StoreError};

/// A certify run started from the console, with its progress.
#[derive(Debug, Clone, Serialize)]
pub struct CertifyJob {
    /// Row id.
    pub id: i64,
    /// The request it was started with ([`crate::backend::CertifyRequest`] as JSON).
    pub request: serde_json::Value,
    /// `queued`, `running`, `done`, `failed`, `interrupted` (the server stopped during it).
    pub state: String,
    /// Creation time (RFC 3339).
    pub created: String,
    /// When it started running.
    pub started: Option<String>,
    /// When it ended.
    pub ended: Option<String>,
    /// Cases the run will have, once known.
    pub planned: Option<i64>,
    /// Cases finished so far.
    pub finished: i64,
    /// Finished cases per outcome.
    pub counts: BTreeMap<String, i64>,
    /// Why it failed (the run's setup: KVM, profiles, output folder).
    pub error: Option<String>,
    /// The imported run, once done.
    pub run_id: Option<i64>,
}

/// One finished case of a certify run in progress.
#[derive(Debug, Clone, Serialize)]
pub struct JobCase {
    /// Order of finishing, from 1.
    pub seq: i64,
    /// Profile (suite).
    pub suite: String,
    /// Case id.
    pub id: String,
    /// Outcome.
    pub outcome: String,
    /// Whether it is a blocker.
    pub blocker: bool,
    /// Wall time in milliseconds.
    pub duration_ms: i64,
    /// Its first reason.
    pub reason: Option<String>,
    /// When it was recorded (RFC 3339).
    pub finished: String,
}

const JOB_COLUMNS: &str =
    "id, request, state, created, started, ended, planned, error, run_id, out_dir";

impl Store {
    /// Records a queued certify run; returns its id. `out_dir(id)` names its output folder.
    pub fn create_job(
        &self,
        request: &serde_json::Value,
        out_dir: impl Fn(i64) -> String,
    ) -> Result<i64, StoreError> {
        self.transaction(|tx| {
            tx.execute(
                "INSERT INTO certify_jobs (request, state, created, out_dir)
                 VALUES (?1, 'queued', ?2, '')",
                params![serde_json::to_string(request)?, now()],
            )?;
            let id = tx.last_insert_rowid();
            tx.execute(
                "UPDATE certify_jobs SET out_dir = ?2 WHERE id = ?1",
                params![id, out_dir(id)],
            )?;
            Ok(id)
        })
    }

    /// Records that certify run `id` started.
    pub fn job_started(&self, id: i64) -> Result<(), StoreError> {
        self.job_update(
            "UPDATE certify_jobs SET state = 'running', started = ?2 WHERE id = ?1",
            params![id, now()],
        )
    }

    /// Records how many cases certify run `id` will have.
    pub fn job_planned(&self, id: i64, cases: usize) -> Result<(), StoreError> {
        self.job_update(
            "UPDATE certify_jobs SET planned = ?2 WHERE id = ?1",
            params![id, cases as i64],
        )
    }

    /// Records a finished case of certify run `id` (a case reported twice keeps the last).
    pub fn job_case(&self, id: i64, c: &CaseEvent) -> Result<(), StoreError> {
        self.job_update(
            "INSERT OR REPLACE INTO certify_job_cases
               (job_id, seq, suite, case_id, outcome, blocker, duration_ms, reason, finished)
             VALUES (?1, (SELECT COUNT(*) + 1 FROM certify_job_cases WHERE job_id = ?1),
               ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                id,
                c.suite,
                c.id,
                c.outcome,
                c.blocker,
                c.duration_ms as i64,
                c.reason,
                now()
            ],
        )
    }

    /// Imports certify run `id`'s report and marks the run done, in one transaction;
    /// returns the imported run's id.
    pub fn job_done(&self, id: i64, report: &reports::Report) -> Result<i64, StoreError> {
        self.transaction(|tx| {
            let run = import_tx(tx, report, &format!("certify-job:{id}"), None)?;
            tx.execute(
                "UPDATE certify_jobs SET state = 'done', ended = ?2, run_id = ?3 WHERE id = ?1",
                params![id, now(), run],
            )?;
            Ok(run)
        })
    }

    /// Marks certify run `id` failed with `error`.
    pub fn job_failed(&self, id: i64, error: &str) -> Result<(), StoreError> {
        self.job_update(
            "UPDATE certify_jobs SET state = 'failed', ended = ?2, error = ?3 WHERE id = ?1",
            params![id, now(), error],
        )
    }

    /// Certify runs left queued or running when the server last stopped are `interrupted`
    /// (run at start-up); their finished cases stay.
    pub fn reset_running_jobs(&self) -> Result<(), StoreError> {
        self.job_update(
            "UPDATE certify_jobs SET state = 'interrupted', ended = ?1,
               error = 'the server stopped during the run'
             WHERE state IN ('queued', 'running')",
            params![now()],
        )
    }

    /// Certify runs, newest first.
    pub fn jobs(&self, page: Page) -> Result<Vec<CertifyJob>, StoreError> {
        let ids: Vec<i64> = {
            let conn = self.conn();
            let mut q =
                conn.prepare("SELECT id FROM certify_jobs ORDER BY id DESC LIMIT ?1 OFFSET ?2")?;
            let rows = q.query_map(params![page.limit as i64, page.offset as i64], |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some((j, _)) = self.job(id)? {
                out.push(j);
            }
        }
        Ok(out)
    }

    /// Certify run `id` with its progress, and its output folder.
    pub fn job(&self, id: i64) -> Result<Option<(CertifyJob, String)>, StoreError> {
        let conn = self.conn();
        let row = conn
            .query_row(
                &format!("SELECT {JOB_COLUMNS} FROM certify_jobs WHERE id = ?1"),
                [id],
                |r| {
                    Ok((
                        CertifyJob {
                            id: r.get(0)?,
                            request: serde_json::Value::Null,
                            state: r.get(2)?,
                            created: r.get(3)?,
                            started: r.get(4)?,
                            ended: r.get(5)?,
                            planned: r.get(6)?,
                            finished: 0,
                            counts: BTreeMap::new(),
                            error: r.get(7)?,
                            run_id: r.get(8)?,
                        },
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(9)?,
                    ))
                },
            )
            .optional()?;
        let Some((mut job, request, out_dir)) = row else {
            return Ok(None);
        };
        job.request = serde_json::from_str(&request)?;
        let mut q = conn.prepare(
            "SELECT outcome, COUNT(*) FROM certify_job_cases WHERE job_id = ?1 GROUP BY outcome",
        )?;
        for row in q.query_map([id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
            let (outcome, n) = row?;
            job.finished += n;
            job.counts.insert(outcome, n);
        }
        Ok(Some((job, out_dir)))
    }

    /// Certify run `id`'s finished cases in the order they finished.
    pub fn job_cases(&self, id: i64, page: Page) -> Result<Vec<JobCase>, StoreError> {
        let conn = self.conn();
        let mut q = conn.prepare(
            "SELECT seq, suite, case_id, outcome, blocker, duration_ms, reason, finished
             FROM certify_job_cases WHERE job_id = ?1 ORDER BY seq LIMIT ?2 OFFSET ?3",
        )?;
        let rows = q.query_map(params![id, page.limit as i64, page.offset as i64], |r| {
            Ok(JobCase {
                seq: r.get(0)?,
                suite: r.get(1)?,
                id: r.get(2)?,
                outcome: r.get(3)?,
                blocker: r.get(4)?,
                duration_ms: r.get(5)?,
                reason: r.get(6)?,
                finished: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn job_update(&self, sql: &str, p: impl rusqlite::Params) -> Result<(), StoreError> {
        self.transaction(|tx| {
            tx.execute(sql, p)?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::backend::CaseEvent;
    use crate::store::{Page, Store};

    fn case(id: &str, outcome: &str) -> CaseEvent {
        CaseEvent {
            suite: "p".into(),
            id: id.into(),
            outcome: outcome.into(),
            blocker: true,
            duration_ms: 5,
            reason: None,
        }
    }

    #[test]
    fn progress_is_recorded_case_by_case_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let id = {
            let s = Store::open(dir.path()).unwrap();
            let id = s
                .create_job(&serde_json::json!({"jobs": 1}), |i| format!("out/{i}"))
                .unwrap();
            s.job_started(id).unwrap();
            s.job_planned(id, 3).unwrap();
            s.job_case(id, &case("a", "pass")).unwrap();
            s.job_case(id, &case("b", "fail")).unwrap();
            id
        };
        // The server stopped during the run: what finished is kept, the run is interrupted.
        let s = Store::open(dir.path()).unwrap();
        s.reset_running_jobs().unwrap();
        let (job, out) = s.job(id).unwrap().unwrap();
        assert_eq!(out, format!("out/{id}"));
        assert_eq!(job.state, "interrupted");
        assert_eq!((job.planned, job.finished), (Some(3), 2));
        assert_eq!(job.counts.get("fail"), Some(&1));
        let cases = s.job_cases(id, Page::first(10)).unwrap();
        assert_eq!(
            cases
                .iter()
                .map(|c| (c.seq, c.id.as_str()))
                .collect::<Vec<_>>(),
            vec![(1, "a"), (2, "b")]
        );
        assert_eq!(s.jobs(Page::first(10)).unwrap().len(), 1);
    }
}
