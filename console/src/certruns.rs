//! Certify runs started through the console: a request is validated against the server's
//! profiles, recorded, and run by the [`Backend`] in a worker thread (one run at a time:
//! a run already uses every CPU it is given). Each case is stored as it finishes; at the
//! end the run's report is imported like an upload, in the same transaction that marks
//! the run done. Output (report.json, logs, journal) goes to `DATA/certify/ID/`.
use std::path::PathBuf;
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
    worker: Mutex<Option<(i64, JoinHandle<()>)>>,
}

/// Records a run's progress in the store as the backend reports it.
struct Recorder<'a> {
    store: &'a Store,
    id: i64,
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
}

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
        let mut worker = self.worker.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((id, h)) = worker.as_ref() {
            // The thread may still be on its way out after recording the end.
            let ended = self
                .store
                .job(*id)
                .ok()
                .flatten()
                .is_some_and(|(j, _)| !matches!(j.state.as_str(), "queued" | "running"));
            if !h.is_finished() && !ended {
                return Err(ApiError::new(
                    409,
                    format!("certify run {id} is going on: one run at a time"),
                ));
            }
        }
        if let Some((_, h)) = worker.take() {
            let _ = h.join();
        }
        let dir = self.data_dir.join("certify");
        let request = serde_json::to_value(&req).map_err(ApiError::internal)?;
        let id = self
            .store
            .create_job(&request, |id| {
                dir.join(id.to_string()).display().to_string()
            })
            .map_err(ApiError::internal)?;
        let out = dir.join(id.to_string());
        let store = self.store.clone();
        let handle = std::thread::Builder::new()
            .name(format!("hvcert-certify-{id}"))
            .spawn(move || {
                let rec = Recorder { store: &store, id };
                let recorded = store.job_started(id).and_then(|_| {
                    // A panic in the run must not leave it `running` for ever.
                    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        backend.certify(&req, &out, &rec)
                    }))
                    .unwrap_or_else(|_| Err("the run panicked (see the server's log)".into()));
                    match run {
                        Ok(report) => store.job_done(id, &report).map(|_| ()),
                        Err(e) => store.job_failed(id, &e),
                    }
                });
                if let Err(e) = recorded {
                    eprintln!("hvcert serve: certify run {id}: cannot record it: {e}");
                }
            })
            .map_err(ApiError::internal)?;
        *worker = Some((id, handle));
        Ok(id)
    }

    /// Waits for the run going on, if any, to end (server shutdown).
    pub fn wait(&self) {
        let w = self.worker.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some((_, h)) = w {
            let _ = h.join();
        }
    }
}
