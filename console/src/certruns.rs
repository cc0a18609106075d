//! Certify runs started through the console: a request is validated against the server's
//! profiles, recorded, and run by the [`Backend`] in a worker thread (one run at a time:
//! a run already uses every CPU it is given). Each case is stored as it finishes; at the
//! end the run's report is imported like an upload, in the same transaction that marks
//! the run done. Output (report.json, logs, journal) goes to `DATA/certify/ID/`.
//!
//! A run going on can be cancelled (it ends `cancelled`, its finished cases and journal
//! kept); a cancelled, failed or interrupted run with a journal can be resumed under the
//! same id: only the cases that did not finish run again.
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::backend::{Backend, CaseEvent, CertifyEvents, CertifyRequest};
use crate::store::Store;
use crate::ApiError;

/// Runs certify requests one at a time.
pub struct CertifyManager {
    store: Arc<Store>,
    backend: Option<Arc<dyn Backend>>,
    data_dir: PathBuf,
    worker: Mutex<Option<Worker>>,
}

/// The run going on (or last run): its id, its thread and its cancel flag.
struct Worker {
    id: i64,
    handle: JoinHandle<()>,
    cancel: Arc<AtomicBool>,
}

/// What a worker does: a new run or the resumption of one.
enum Task {
    Start(CertifyRequest),
    Resume(Option<usize>),
}

/// Records a run's progress in the store as the backend reports it.
struct Recorder<'a> {
    store: &'a Store,
    id: i64,
    cancel: &'a AtomicBool,
}

impl CertifyEvents for Recorder<'_> {
    fn planned(&self, cases: usize) {
        if let Err(e) = self.store.job_planned(self.id, cases) {
            eprintln!("hvcert serve: certify run {}: {e}", self.id);
        }
    }

    fn case_done(&self, case: &CaseEvent) {
        if let Err(e) = self.store.job_case(self.id, case) {
            eprintln!("hvcert serve: certify run {}: {e}", self.id);
        }
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }
}

/// States a run can be resumed from.
pub const RESUMABLE: [&str; 3] = ["cancelled", "failed", "interrupted"];

impl CertifyManager {
    /// A manager over `store`; without a backend, starts are refused (503).
    pub fn new(store: Arc<Store>, backend: Option<Arc<dyn Backend>>, data_dir: PathBuf) -> Self {
        CertifyManager {
            store,
            backend,
            data_dir,
            worker: Mutex::new(None),
        }
    }

    /// The backend, or 503.
    pub fn backend(&self) -> Result<&Arc<dyn Backend>, ApiError> {
        self.backend
            .as_ref()
            .ok_or_else(|| ApiError::new(503, "this server does not run certifications"))
    }

    /// Validates `req`, records it and starts it in a worker thread; returns its id. 409
    /// while another run is going on.
    pub fn start(&self, req: CertifyRequest) -> Result<i64, ApiError> {
        let backend = self.backend()?.clone();
        let profiles = backend.profiles().map_err(ApiError::internal)?;
        req.validate(&profiles).map_err(|e| ApiError::new(422, e))?;
        let mut worker = self.idle_worker()?;
        let dir = self.data_dir.join("certify");
        let request = serde_json::to_value(&req).map_err(ApiError::internal)?;
        let id = self
            .store
            .create_job(&request, |id| {
                dir.join(id.to_string()).display().to_string()
            })
            .map_err(ApiError::internal)?;
        *worker = Some(self.spawn(id, backend, Task::Start(req))?);
        Ok(id)
    }

    /// Resumes certify run `id` (cancelled, failed or interrupted, with a journal in its
    /// output folder) under the same id; `jobs` overrides its VM count. 409 when it is not
    /// in such a state or another run is going on.
    pub fn resume(&self, id: i64, jobs: Option<usize>) -> Result<(), ApiError> {
        let backend = self.backend()?.clone();
        if let Some(j) = jobs {
            if !(1..=crate::backend::MAX_JOBS).contains(&j) {
                return Err(ApiError::new(
                    422,
                    format!("jobs {j} outside 1..={}", crate::backend::MAX_JOBS),
                ));
            }
        }
        let mut worker = self.idle_worker()?;
        let (job, out_dir) = self
            .store
            .job(id)
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::new(404, format!("no certify run {id}")))?;
        if !RESUMABLE.contains(&job.state.as_str()) {
            return Err(ApiError::new(
                409,
                format!(
                    "certify run {id} is {}: only a cancelled, failed or interrupted run resumes",
                    job.state
                ),
            ));
        }
        if !std::path::Path::new(&out_dir)
            .join("journal.jsonl")
            .is_file()
        {
            return Err(ApiError::new(
                409,
                format!("certify run {id} has no journal to resume from (it never started a case)"),
            ));
        }
        // Running from this answer on, not from whenever the worker gets going.
        self.store.job_started(id).map_err(ApiError::internal)?;
        *worker = Some(self.spawn(id, backend, Task::Resume(jobs))?);
        Ok(())
    }

    /// Asks certify run `id`, going on, to stop; it ends `cancelled`. 409 when it is not
    /// the run going on.
    pub fn cancel(&self, id: i64) -> Result<(), ApiError> {
        let worker = self.worker.lock().unwrap_or_else(|p| p.into_inner());
        match worker.as_ref() {
            Some(w) if w.id == id && !w.handle.is_finished() && !self.ended(id) => {
                w.cancel.store(true, Ordering::SeqCst);
                Ok(())
            }
            _ => Err(ApiError::new(
                409,
                format!("certify run {id} is not going on"),
            )),
        }
    }

    /// Whether run `id` is recorded as ended (its thread may still be on its way out).
    fn ended(&self, id: i64) -> bool {
        self.store
            .job(id)
            .ok()
            .flatten()
            .is_some_and(|(j, _)| !matches!(j.state.as_str(), "queued" | "running"))
    }

    /// The worker slot, once no run is going on (409 otherwise); the last thread joined.
    fn idle_worker(&self) -> Result<std::sync::MutexGuard<'_, Option<Worker>>, ApiError> {
        let mut worker = self.worker.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = worker.as_ref() {
            if !w.handle.is_finished() && !self.ended(w.id) {
                return Err(ApiError::new(
                    409,
                    format!("certify run {} is going on: one run at a time", w.id),
                ));
            }
        }
        if let Some(w) = worker.take() {
            let _ = w.handle.join();
        }
        Ok(worker)
    }

    /// Runs `task` for run `id` in a new worker thread.
    fn spawn(&self, id: i64, backend: Arc<dyn Backend>, task: Task) -> Result<Worker, ApiError> {
        let out = self.data_dir.join("certify").join(id.to_string());
        let store = self.store.clone();
        let cancel = Arc::new(AtomicBool::new(false));
        let flag = cancel.clone();
        let handle = std::thread::Builder::new()
            .name(format!("hvcert-certify-{id}"))
            .spawn(move || {
                let rec = Recorder {
                    store: &store,
                    id,
                    cancel: &flag,
                };
                let recorded = store.job_started(id).and_then(|_| {
                    // A panic in the run must not leave it `running` for ever.
                    let run =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match &task {
                            Task::Start(req) => backend.certify(req, &out, &rec),
                            Task::Resume(jobs) => backend.resume(&out, *jobs, &rec),
                        }))
                        .unwrap_or_else(|_| Err("the run panicked (see the server's log)".into()));
                    match run {
                        Ok(report) => store.job_done(id, &report).map(|_| ()),
                        Err(_) if flag.load(Ordering::SeqCst) => store.job_cancelled(id),
                        Err(e) => store.job_failed(id, &e),
                    }
                });
                if let Err(e) = recorded {
                    eprintln!("hvcert serve: certify run {id}: cannot record it: {e}");
                }
            })
            .map_err(ApiError::internal)?;
        Ok(Worker { id, handle, cancel })
    }

    /// Server shutdown: cancels the run going on, if any (it ends `cancelled` and can be
    /// resumed by the next server), and waits for its worker to record that.
    pub fn wait(&self) {
        let w = self.worker.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(w) = w {
            w.cancel.store(true, Ordering::SeqCst);
            let _ = w.handle.join();
        }
    }
}
