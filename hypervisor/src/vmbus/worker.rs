//! Running a [`VmbusHost`] in a VM: channel messages are handled on the vCPU thread that
//! posted them (they only touch guest memory and the SynIC), but a kick (HvCallSignalEvent)
//! is handed to a worker thread that drains the channel's ring and runs its device, as the
//! virtio devices' workers do: device I/O (image reads and writes, TAP) happens under the
//! worker's seccomp allow-list, never on a vCPU thread, and the hypercall returns at once.
//! The worker also polls every device at [`POLL_INTERVAL`] for device-initiated work
//! (frames arriving from a network backend) and rings left with packets.
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::abi::hv::{HV_STATUS_INVALID_CONNECTION_ID, HV_STATUS_SUCCESS};
use crate::abi::vmbus::EVENT_CONNECTION_ID;
use crate::state::lock;

use super::VmbusHost;

/// How often the worker polls every device when no kick arrives.
pub const POLL_INTERVAL: Duration = Duration::from_millis(2);

#[derive(Default)]
struct KickState {
    /// Connection ids kicked since the worker last looked (deduplicated).
    pending: Vec<u32>,
    stop: bool,
}

/// The kicks waiting for the worker.
#[derive(Default)]
struct Kicks {
    m: Mutex<KickState>,
    cv: Condvar,
}

/// The VMBus as the VM's connections see it: messages handled at once, kicks queued for the
/// worker. Dropping it stops and joins the worker.
pub struct VmbusRuntime {
    host: Arc<VmbusHost>,
    kicks: Arc<Kicks>,
    ids: Vec<u32>,
    worker: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for VmbusRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VmbusRuntime")
            .field("ids", &self.ids)
            .finish_non_exhaustive()
    }
}

impl VmbusRuntime {
    /// Starts the worker for `host`; with `seccomp` it installs the worker allow-list first.
    pub fn start(host: Arc<VmbusHost>, seccomp: bool) -> std::io::Result<VmbusRuntime> {
        let kicks = Arc::new(Kicks::default());
        let ids = host.connection_ids().into_iter().map(|(_, c)| c).collect();
        let (h, k) = (host.clone(), kicks.clone());
        let worker = std::thread::Builder::new()
            .name("vmbus".into())
            .spawn(move || {
                if seccomp {
                    if let Err(e) = crate::seccomp::install(crate::seccomp::ThreadKind::Worker) {
                        tracing::error!("vmbus worker: seccomp: {e}");
                        return;
                    }
                }
                worker(&h, &k);
            })?;
        Ok(VmbusRuntime {
            host,
            kicks,
            ids,
            worker: Some(worker),
        })
    }

    /// The host.
    pub fn host(&self) -> &Arc<VmbusHost> {
        &self.host
    }

    /// HvCallPostMessage: handled now, on the caller's thread.
    pub fn post_message(&self, vp: u32, connection_id: u32, message_type: u32, p: &[u8]) -> u16 {
        self.host
            .on_post_message(vp, connection_id, message_type, p)
    }

    /// HvCallSignalEvent: an unknown connection id is refused now; a channel's is queued for
    /// the worker.
    pub fn signal_event(&self, _vp: u32, connection_id: u32, _flag: u16) -> u16 {
        if connection_id != EVENT_CONNECTION_ID && !self.ids.contains(&connection_id) {
            return HV_STATUS_INVALID_CONNECTION_ID;
        }
        let mut s = lock(&self.kicks.m);
        if !s.pending.contains(&connection_id) {
            s.pending.push(connection_id);
        }
        self.kicks.cv.notify_one();
        HV_STATUS_SUCCESS
    }
}

impl Drop for VmbusRuntime {
    fn drop(&mut self) {
        lock(&self.kicks.m).stop = true;
        self.kicks.cv.notify_all();
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

fn worker(host: &VmbusHost, kicks: &Kicks) {
    let mut s = lock(&kicks.m);
    loop {
        if s.stop {
            return;
        }
        if s.pending.is_empty() {
            let (g, t) = kicks
                .cv
                .wait_timeout(s, POLL_INTERVAL)
                .unwrap_or_else(|e| e.into_inner());
            s = g;
            if t.timed_out() && s.pending.is_empty() && !s.stop {
                drop(s);
                host.poll();
                s = lock(&kicks.m);
            }
            continue;
        }
        let pending = std::mem::take(&mut s.pending);
        drop(s);
        for c in pending {
            host.on_signal_event(0, c, 0);
        }
        s = lock(&kicks.m);
    }
}
