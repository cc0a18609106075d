//! The guest console between the devices (UART, HvCallPostDebugData, Xen console_io) and
//! the caller's writer given to [`crate::Vm::run`].
//!
//! Rule: a vCPU never blocks in the caller's writer. The devices' bytes go into a bounded
//! buffer ([`BUFFER_MAX`] bytes) that a dedicated thread, `vm-console`, writes to the writer
//! in order (at most [`CHUNK`] bytes per `write_all`, each followed by `flush`), outside every
//! VMM lock. When the buffer is full, the writing vCPU waits for room (back-pressure: a slow
//! writer slows the guest down, nothing is lost) as long as the writer is making progress,
//! i.e. took a chunk within the last [`STALL`]. A writer stalled longer, a VM that is ending
//! (timeout, status, crash) or a writer that failed make the vCPU drop the bytes that do not
//! fit instead; they are counted (`RunOutcome::console_dropped`) and a warning is logged
//! once. So a writer blocked for good costs a vCPU at most one [`STALL`] wait per stall, and
//! VMM memory stays bounded.
//!
//! The thread starts with the guest's first output: a VM that never prints has none, and
//! `run` then flushes and drops the writer itself.
//!
//! When the VM has ended, `run` closes the buffer and waits for the thread to write what is
//! left and exit (dropping the writer) for as long as it makes progress (took a chunk within
//! the last [`STALL`]; a writer stalled already is not waited for at all), but at the latest
//! until the run's deadline, or [`DRAIN_GRACE`] after the VM ended if that is later (a run
//! without a deadline waits while the writer makes progress): a writer blocked for good
//! cannot hold `run` past its timeout by more than [`DRAIN_GRACE`]. If the thread is still
//! in a write then, `run` returns without it: the thread is detached and exits
//! (dropping the writer) as soon as that write returns or fails, after writing what is still
//! buffered (at most [`BUFFER_MAX`] bytes). That thread is the only thing left behind.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Bytes buffered for the writer at most.
pub const BUFFER_MAX: usize = 1 << 20;
/// Bytes handed to the writer per `write_all`.
pub const CHUNK: usize = 16 << 10;
/// A writer that took no chunk for this long is stalled.
pub const STALL: Duration = Duration::from_millis(500);
/// After the VM ended: the least time `run` gives the writer, even past the deadline.
pub const DRAIN_GRACE: Duration = Duration::from_millis(500);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Default)]
struct State {
    buf: VecDeque<u8>,
    dropped: u64,
    /// The VM is ending: no more waiting for room.
    ending: bool,
    /// No more input (the VM ended).
    closed: bool,
    /// The writer failed: later bytes are dropped.
    failed: bool,
    /// The writer thread has exited (and dropped the writer).
    done: bool,
    /// When the writer thread last took a chunk.
    progress: Option<Instant>,
    /// The caller's writer until the first output starts the thread with it.
    out: Option<Box<dyn Write + Send>>,
    /// The writer thread, once started.
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Inner {
    state: Mutex<State>,
    cv: Condvar,
}

/// The devices' side: a `Write` that never blocks on the caller's writer (cloneable).
#[derive(Clone, Default)]
pub struct Console(Arc<Inner>);

impl Console {
    /// Buffers `data`, waiting for room while the writer makes progress (see the rule in
    /// the module docs); drops and counts what does not fit otherwise.
    pub fn push(&self, mut data: &[u8]) {
        let mut s = lock(&self.0.state);
        while !data.is_empty() {
            if s.closed || s.failed {
                break;
            }
            let room = BUFFER_MAX.saturating_sub(s.buf.len());
            if room > 0 {
                if s.buf.is_empty() {
                    // The writer's clock starts when it has work.
                    s.progress = Some(Instant::now());
                }
                let take = data.len().min(room);
                s.buf.extend(&data[..take]);
                data = &data[take..];
                if let Some(out) = s.out.take() {
                    // The first output: start the writer thread (it waits for this lock).
                    let inner = self.0.clone();
                    // Started by a sandboxed vCPU thread, the writer narrows its inherited
                    // filter to its own list.
                    let sandboxed = crate::seccomp::current().is_some();
                    match std::thread::Builder::new()
                        .name("vm-console".into())
                        .spawn(move || {
                            if sandboxed {
                                if let Err(e) =
                                    crate::seccomp::install(crate::seccomp::ThreadKind::Console)
                                {
                                    tracing::warn!("{e}; dropping guest output");
                                    let mut s = lock(&inner.state);
                                    s.dropped += s.buf.len() as u64;
                                    s.buf.clear();
                                    s.failed = true;
                                    s.done = true;
                                    inner.cv.notify_all();
                                    return;
                                }
                            }
                            writer_thread(&inner, out)
                        }) {
                        Ok(h) => s.thread = Some(h),
                        Err(e) => {
                            tracing::warn!("cannot start the console writer thread ({e}); dropping guest output");
                            s.dropped += s.buf.len() as u64 + data.len() as u64;
                            s.buf.clear();
                            s.failed = true;
                            s.done = true;
                            return;
                        }
                    }
                }
                self.0.cv.notify_all();
                continue;
            }
            let now = Instant::now();
            let stall_at = s.progress.unwrap_or(now) + STALL;
            if s.ending || now >= stall_at {
                break;
            }
            s = self
                .0
                .cv
                .wait_timeout(s, stall_at - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        if !data.is_empty() {
            if s.dropped == 0 {
                tracing::warn!("console: the writer is stalled or failed; dropping guest output");
            }
            s.dropped += data.len() as u64;
        }
    }

    /// Hands over the caller's writer: the `vm-console` thread writing the buffer to `out`
    /// starts with the first output.
    pub fn start(&self, out: Box<dyn Write + Send>) -> Writer {
        let mut s = lock(&self.0.state);
        s.progress = Some(Instant::now());
        s.out = Some(out);
        Writer {
            inner: self.0.clone(),
        }
    }

    pub fn dropped(&self) -> u64 {
        lock(&self.0.state).dropped
    }
}

impl Write for Console {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.push(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn writer_thread(inner: &Inner, mut out: Box<dyn Write + Send>) {
    let mut chunk = Vec::with_capacity(CHUNK);
    loop {
        {
            let mut s = lock(&inner.state);
            while s.buf.is_empty() && !s.closed {
                s = inner.cv.wait(s).unwrap_or_else(|e| e.into_inner());
            }
            if s.buf.is_empty() {
                break;
            }
            let n = s.buf.len().min(CHUNK);
            chunk.clear();
            chunk.extend(s.buf.drain(..n));
            s.progress = Some(Instant::now());
            drop(s);
            inner.cv.notify_all();
        }
        if let Err(e) = out.write_all(&chunk).and_then(|_| out.flush()) {
            let mut s = lock(&inner.state);
            let lost = chunk.len() + s.buf.len();
            s.dropped += lost as u64;
            s.buf.clear();
            s.failed = true;
            tracing::warn!("console writer failed ({e}); dropping guest output from now on");
            break;
        }
    }
    drop(out);
    lock(&inner.state).done = true;
    inner.cv.notify_all();
}

/// The run's side of the console: ends it (see [`Writer::finish`]).
pub struct Writer {
    inner: Arc<Inner>,
}

impl Writer {
    /// The VM is ending: vCPUs stop waiting for room (bytes that do not fit are dropped).
    pub fn ending(&self) {
        lock(&self.inner.state).ending = true;
        self.inner.cv.notify_all();
    }

    /// Closes the buffer and waits for the thread as the module docs say (`deadline`: the
    /// run's, if any). Returns whether the thread finished (else it is left detached).
    pub fn finish(self, deadline: Option<Instant>) -> bool {
        let ended = Instant::now();
        let limit = deadline.map(|d| d.max(ended + DRAIN_GRACE));
        let mut s = lock(&self.inner.state);
        s.closed = true;
        s.ending = true;
        if let Some(mut out) = s.out.take() {
            // The guest printed nothing: no thread; flush and drop the writer here.
            drop(s);
            let _ = out.flush();
            drop(out);
            lock(&self.inner.state).done = true;
            return true;
        }
        self.inner.cv.notify_all();
        loop {
            if s.done {
                let h = s.thread.take();
                drop(s);
                if let Some(h) = h {
                    let _ = h.join();
                }
                return true;
            }
            let now = Instant::now();
            let stall_at = s.progress.unwrap_or(ended) + STALL;
            let until = limit.map_or(stall_at, |l| stall_at.min(l));
            if now >= until {
                break;
            }
            s = self
                .inner
                .cv
                .wait_timeout(s, until - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        tracing::warn!(
            queued = s.buf.len(),
            "console writer blocked; Vm::run returns without it (it exits once its write returns)"
        );
        false
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Never ran `finish` (an error path): let the thread end once the buffer is written
        // (or drop the writer here if the guest never printed).
        let mut s = lock(&self.inner.state);
        s.closed = true;
        let out = s.out.take();
        drop(s);
        drop(out);
        self.inner.cv.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks every write until the test releases it.
    struct Gate(std::sync::mpsc::Receiver<()>, Arc<Mutex<Vec<u8>>>);
    impl Write for Gate {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0
                .recv()
                .map_err(|_| std::io::Error::other("released for good"))?;
            lock(&self.1).extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn in_order_and_bounded_when_the_writer_blocks() {
        let (tx, rx) = std::sync::mpsc::channel();
        let got = Arc::new(Mutex::new(Vec::new()));
        let c = Console::default();
        let w = c.start(Box::new(Gate(rx, got.clone())));
        let data: Vec<u8> = (0..BUFFER_MAX * 2 + CHUNK).map(|i| i as u8).collect();
        for piece in data.chunks(1000) {
            c.push(piece);
        }
        // The thread holds at most one chunk; the buffer at most BUFFER_MAX.
        let d = c.dropped() as usize;
        assert!(d >= data.len() - BUFFER_MAX - CHUNK, "dropped {d}");
        let t = Instant::now();
        assert!(!w.finish(Some(Instant::now())));
        let waited = t.elapsed();
        assert!(
            waited < DRAIN_GRACE + Duration::from_millis(300),
            "{waited:?}"
        );
        // Release: the detached thread writes what it kept, in order, then exits.
        for _ in 0..(data.len() / CHUNK + 2) {
            let _ = tx.send(());
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while !lock(&c.0.state).done && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let got = lock(&got).clone();
        assert_eq!(got.len() + d, data.len());
        assert_eq!(got[..], data[..got.len()]);
    }

    #[test]
    fn everything_arrives_when_the_writer_keeps_up() {
        let out = Arc::new(Mutex::new(Vec::new()));
        struct Sink(Arc<Mutex<Vec<u8>>>);
        impl Write for Sink {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                lock(&self.0).extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let c = Console::default();
        let w = c.start(Box::new(Sink(out.clone())));
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        for b in &data {
            c.push(std::slice::from_ref(b));
        }
        assert!(w.finish(None));
        assert_eq!(c.dropped(), 0);
        assert_eq!(*lock(&out), data);
        // After the end, input is dropped and counted.
        c.push(b"late");
        assert_eq!(c.dropped(), 4);
    }

    #[test]
    fn no_output_no_thread_and_the_writer_is_flushed() {
        struct Flushed(Arc<Mutex<(u32, bool)>>);
        impl Write for Flushed {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                lock(&self.0).0 += 1;
                Ok(())
            }
        }
        impl Drop for Flushed {
            fn drop(&mut self) {
                lock(&self.0).1 = true;
            }
        }
        let seen = Arc::new(Mutex::new((0, false)));
        let c = Console::default();
        let w = c.start(Box::new(Flushed(seen.clone())));
        assert!(lock(&c.0.state).thread.is_none());
        assert!(w.finish(None));
        assert_eq!(
            *lock(&seen),
            (1, true),
            "flushed once and dropped by finish"
        );
        assert!(lock(&c.0.state).thread.is_none());
        // With output, the thread starts at the first byte.
        let c = Console::default();
        let w = c.start(Box::new(Flushed(seen.clone())));
        c.push(b"x");
        assert!(lock(&c.0.state).thread.is_some());
        assert!(w.finish(None));
    }
}
