//! The VM manager: VM requests are validated against the limits `hvcert run` applies, stored
//! as records, and run as `hvcert run` child processes (never through a shell). A child's
//! serial console (its stdout, and its stderr notes) goes into a bounded in-memory buffer
//! that the SSE stream ([`ConsoleBuf::wait_from`], [`crate::sse`]) follows live. Stopping kills the child.
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::store::Store;
use crate::ApiError;

/// Most disks a VM request may name (each a virtio device; `hvcert run --max-disks`).
pub const MAX_DISKS: usize = 4;
/// Most network adapters a VM request may name (`hvcert run --max-nics`).
pub const MAX_NICS: usize = 4;
/// Most vCPUs a VM request may ask for (KVM may allow fewer: then the start fails with
/// `hvcert run`'s reason).
pub const MAX_VCPUS: u8 = 64;
/// Longest wall-clock limit of a VM, in seconds (0, no limit, is not offered).
pub const MAX_TIMEOUT_S: f64 = 24.0 * 3600.0;
/// Longest kernel command line accepted.
pub const MAX_CMDLINE: usize = 4096;
/// Console bytes kept per VM: older output is dropped first.
pub const CONSOLE_KEEP: usize = 1 << 20;
/// The `kernel` value that names the built-in guest.
pub const BUILTIN: &str = "builtin";

/// A request to create a VM (`POST /api/vms`). Unknown fields are refused.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmSpec {
    /// Display name (default `vm-N`).
    #[serde(default)]
    pub name: Option<String>,
    /// `builtin` (the built-in guest) or an absolute path to a PVH ELF or bzImage.
    pub kernel: String,
    /// Kernel command line; absent: `hvcert run`'s default.
    #[serde(default)]
    pub cmdline: Option<String>,
    /// Guest memory in MiB (hypervisor limits).
    #[serde(default = "default_memory")]
    pub memory_mib: u32,
    /// vCPUs, 1 to [`MAX_VCPUS`].
    #[serde(default = "default_vcpus")]
    pub vcpus: u8,
    /// Paravirtual interface: hyperv, xen, both or none.
    #[serde(default = "default_interface")]
    pub interface: String,
    /// Wall-clock limit in seconds (0 < t <= [`MAX_TIMEOUT_S`]).
    #[serde(default = "default_timeout")]
    pub timeout_s: f64,
    /// Raw disk images, `FILE` or `FILE,ro`, absolute paths, at most [`MAX_DISKS`].
    #[serde(default)]
    pub disks: Vec<String>,
    /// `blk` or `scsi`.
    #[serde(default = "default_bus")]
    pub disk_bus: String,
    /// Network adapters, `loopback` or `tap:NAME`, at most [`MAX_NICS`].
    #[serde(default)]
    pub nets: Vec<String>,
}

fn default_memory() -> u32 {
    128
}
fn default_vcpus() -> u8 {
    1
}
fn default_interface() -> String {
    "hyperv".into()
}
fn default_timeout() -> f64 {
    60.0
}
fn default_bus() -> String {
    "blk".into()
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::new(400, msg)
}

impl VmSpec {
    /// Checks every field against the limits; the error names the field and the limit.
    pub fn validate(&self) -> Result<(), ApiError> {
        use hypervisor::layout::{MAX_MEMORY_MIB, MIN_MEMORY_MIB};
        if let Some(n) = &self.name {
            if n.is_empty() || n.len() > 64 || n.chars().any(char::is_control) {
                return Err(bad("name: 1 to 64 printable characters"));
            }
        }
        if self.kernel != BUILTIN {
            check_file("kernel", &self.kernel)?;
        }
        if let Some(c) = &self.cmdline {
            if c.len() > MAX_CMDLINE || c.contains('\0') {
                return Err(bad(format!("cmdline: at most {MAX_CMDLINE} bytes, no NUL")));
            }
        }
        if !(MIN_MEMORY_MIB..=MAX_MEMORY_MIB).contains(&self.memory_mib) {
            return Err(ApiError::new(
                422,
                format!(
                    "memory_mib {} outside {MIN_MEMORY_MIB}..={MAX_MEMORY_MIB}",
                    self.memory_mib
                ),
            ));
        }
        if !(1..=MAX_VCPUS).contains(&self.vcpus) {
            return Err(ApiError::new(
                422,
                format!("vcpus {} outside 1..={MAX_VCPUS}", self.vcpus),
            ));
        }
        self.interface
            .parse::<hypervisor::Interface>()
            .map_err(|e| bad(format!("interface: {e}")))?;
        if !(self.timeout_s.is_finite() && self.timeout_s > 0.0 && self.timeout_s <= MAX_TIMEOUT_S)
        {
            return Err(ApiError::new(
                422,
                format!("timeout_s must be > 0 and <= {MAX_TIMEOUT_S}"),
            ));
        }
        if self.disks.len() > MAX_DISKS {
            return Err(ApiError::new(
                422,
                format!("{} disks, at most {MAX_DISKS}", self.disks.len()),
            ));
        }
        for d in &self.disks {
            let file = d.strip_suffix(",ro").unwrap_or(d);
            check_file("disks", file)?;
        }
        self.disk_bus
            .parse::<hypervisor::DiskBus>()
            .map_err(|e| bad(format!("disk_bus: {e}")))?;
        if self.nets.len() > MAX_NICS {
            return Err(ApiError::new(
                422,
                format!("{} network adapters, at most {MAX_NICS}", self.nets.len()),
            ));
        }
        for n in &self.nets {
            n.parse::<hypervisor::NetConfig>()
                .map_err(|e| bad(format!("nets: {e}")))?;
        }
        Ok(())
    }

    /// `hvcert run`'s arguments for this VM (`kernel` resolved).
    fn run_args(&self, kernel: &Path) -> Vec<std::ffi::OsString> {
        let mut a: Vec<std::ffi::OsString> = vec!["run".into(), "--kernel".into(), kernel.into()];
        let mut push = |k: &str, v: String| {
            a.push(k.into());
            a.push(v.into());
        };
        push("--memory", self.memory_mib.to_string());
        push("--cpus", self.vcpus.to_string());
        push("--interface", self.interface.clone());
        push("--timeout", self.timeout_s.to_string());
        if let Some(c) = &self.cmdline {
            push("--cmdline", c.clone());
        }
        for d in &self.disks {
            push("--disk", d.clone());
        }
        push("--disk-bus", self.disk_bus.clone());
        for n in &self.nets {
            push("--net", n.clone());
        }
        push("--max-disks", self.disks.len().max(1).to_string());
        push("--max-nics", self.nets.len().max(1).to_string());
        a
    }
}

fn check_file(field: &str, path: &str) -> Result<(), ApiError> {
    let p = Path::new(path);
    if !p.is_absolute() {
        return Err(bad(format!("{field}: {path:?} is not an absolute path")));
    }
    if !p.is_file() {
        return Err(ApiError::new(
            422,
            format!("{field}: {path:?} is not a readable file"),
        ));
    }
    Ok(())
}

/// How VMs are run: the `hvcert` executable and the built-in guest's file.
#[derive(Debug, Clone)]
pub struct Runner {
    /// The `hvcert` binary, run as `hvcert run ...` for each VM.
    pub program: PathBuf,
    /// The built-in guest kernel on disk (for `"kernel": "builtin"`).
    pub builtin_guest: Option<PathBuf>,
    /// Most VMs running at once; another start is refused with 429.
    pub max_running: usize,
}

/// A VM's console output and, once it ended, how (shared by the child's readers and every
/// SSE stream).
#[derive(Default)]
pub struct ConsoleBuf {
    st: Mutex<ConsoleState>,
    cv: Condvar,
}

#[derive(Default)]
struct ConsoleState {
    /// Absolute offset of `data[0]` (bytes dropped before it).
    base: usize,
    data: Vec<u8>,
    /// Set once the VM ended: a JSON object with its state, exit code and reason.
    end: Option<serde_json::Value>,
}

impl ConsoleBuf {
    fn lock(&self) -> MutexGuard<'_, ConsoleState> {
        self.st.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, bytes: &[u8]) {
        let mut st = self.lock();
        st.data.extend_from_slice(bytes);
        if st.data.len() > CONSOLE_KEEP {
            let cut = st.data.len() - CONSOLE_KEEP;
            st.data.drain(..cut);
            st.base += cut;
        }
        self.cv.notify_all();
    }

    fn finish(&self, end: serde_json::Value) {
        self.lock().end = Some(end);
        self.cv.notify_all();
    }

    /// The whole kept text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.lock().data).into_owned()
    }

    /// Waits until there are bytes past `pos` or the VM ended (or `timeout` passed); returns
    /// the new bytes, the next position and the end when it is reached.
    pub fn wait_from(
        &self,
        pos: usize,
        timeout: std::time::Duration,
    ) -> (Vec<u8>, usize, Option<serde_json::Value>) {
        let st = self.lock();
        let (st, _) = self
            .cv
            .wait_timeout_while(st, timeout, |s| {
                s.base + s.data.len() <= pos && s.end.is_none()
            })
            .unwrap_or_else(|p| p.into_inner());
        let start = pos.max(st.base) - st.base;
        let bytes = st.data.get(start..).unwrap_or_default().to_vec();
        let next = st.base + st.data.len();
        let end = if bytes.is_empty() {
            st.end.clone()
        } else {
            None
        };
        (bytes, next, end)
    }
}

struct Live {
    child: Mutex<Option<Child>>,
    console: Arc<ConsoleBuf>,
    stopping: AtomicBool,
    running: AtomicBool,
}

/// Runs VMs as child processes and keeps their consoles.
pub struct VmManager {
    store: Arc<Store>,
    runner: Option<Runner>,
    live: Mutex<HashMap<i64, Arc<Live>>>,
}

impl VmManager {
    /// A manager over `store`'s VM records; without a `runner`, starts are refused (503).
    pub fn new(store: Arc<Store>, runner: Option<Runner>) -> Self {
        VmManager {
            store,
            runner,
            live: Mutex::new(HashMap::new()),
        }
    }

    fn live(&self) -> MutexGuard<'_, HashMap<i64, Arc<Live>>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Validates and records a VM; returns its id.
    pub fn create(&self, spec: &VmSpec) -> Result<i64, ApiError> {
        spec.validate()?;
        if spec.kernel == BUILTIN
            && self
                .runner
                .as_ref()
                .and_then(|r| r.builtin_guest.as_ref())
                .is_none()
        {
            return Err(ApiError::new(
                422,
                "kernel: this server has no built-in guest",
            ));
        }
        let name = spec.name.clone().unwrap_or_else(|| "vm".into());
        let config = serde_json::to_value(spec).map_err(ApiError::internal)?;
        self.store
            .create_vm(&name, &config)
            .map_err(ApiError::internal)
    }

    /// Starts VM `id` (409 when it is running, 429 when too many are).
    pub fn start(&self, id: i64) -> Result<(), ApiError> {
        let Some(runner) = &self.runner else {
            return Err(ApiError::new(503, "this server does not run VMs"));
        };
        let row = self
            .store
            .vm(id)
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::new(404, format!("no VM {id}")))?;
        let spec: VmSpec = serde_json::from_value(row.config).map_err(ApiError::internal)?;
        let kernel = if spec.kernel == BUILTIN {
            runner
                .builtin_guest
                .clone()
                .ok_or_else(|| ApiError::new(422, "this server has no built-in guest"))?
        } else {
            PathBuf::from(&spec.kernel)
        };
        let mut live = self.live();
        if live
            .get(&id)
            .is_some_and(|l| l.running.load(Ordering::SeqCst))
        {
            return Err(ApiError::new(409, format!("VM {id} is running")));
        }
        let running = live
            .values()
            .filter(|l| l.running.load(Ordering::SeqCst))
            .count();
        if running >= runner.max_running {
            return Err(ApiError::new(
                429,
                format!("{running} VMs are running, at most {}", runner.max_running),
            ));
        }
        let mut child = Command::new(&runner.program)
            .args(spec.run_args(&kernel))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                ApiError::new(500, format!("cannot run {}: {e}", runner.program.display()))
            })?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let l = Arc::new(Live {
            child: Mutex::new(Some(child)),
            console: Arc::new(ConsoleBuf::default()),
            stopping: AtomicBool::new(false),
            running: AtomicBool::new(true),
        });
        live.insert(id, l.clone());
        drop(live);
        self.store.vm_started(id).map_err(ApiError::internal)?;
        let store = self.store.clone();
        let err_console = l.console.clone();
        let err_thread = std::thread::spawn(move || {
            if let Some(e) = stderr {
                pump(e, &err_console);
            }
        });
        std::thread::spawn(move || {
            if let Some(o) = stdout {
                pump(o, &l.console);
            }
            let _ = err_thread.join();
            let status = l
                .child
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .map(|mut c| c.wait());
            let code = status
                .as_ref()
                .and_then(|s| s.as_ref().ok())
                .and_then(|s| s.code());
            let stopped = l.stopping.load(Ordering::SeqCst);
            let (state, reason) = match (stopped, code) {
                (true, _) => ("stopped", "stopped through the console".to_string()),
                (false, Some(0)) => ("exited", "guest status 0".to_string()),
                (false, Some(124)) => ("exited", "timeout".to_string()),
                (false, Some(125)) => ("failed", "the guest crashed".to_string()),
                (false, Some(2)) => (
                    "failed",
                    "hvcert run refused the VM (see the console)".to_string(),
                ),
                (false, Some(c)) => ("exited", format!("guest status {c}")),
                (false, None) => ("failed", "hvcert run was killed".to_string()),
            };
            if let Err(e) = store.vm_ended(id, state, code, &reason) {
                eprintln!("hvcert serve: VM {id}: cannot record its end: {e}");
            }
            l.running.store(false, Ordering::SeqCst);
            l.console.finish(serde_json::json!({
                "state": state, "exit_code": code, "reason": reason
            }));
        });
        Ok(())
    }

    /// Stops VM `id` (kills its process); 409 when it is not running.
    pub fn stop(&self, id: i64) -> Result<(), ApiError> {
        let l = self.live().get(&id).cloned();
        match l {
            Some(l) if l.running.load(Ordering::SeqCst) => {
                l.stopping.store(true, Ordering::SeqCst);
                if let Some(c) = l.child.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
                    // Only an unreaped child is signalled: no pid reuse.
                    let _ = c.kill();
                }
                Ok(())
            }
            _ => Err(ApiError::new(409, format!("VM {id} is not running"))),
        }
    }

    /// Stops VM `id` if it runs and deletes its record.
    pub fn delete(&self, id: i64) -> Result<(), ApiError> {
        let _ = self.stop(id);
        if let Some(l) = self.live().remove(&id) {
            // Wait for the end to be recorded before the record goes.
            let _ = l.console.wait_until_end(std::time::Duration::from_secs(10));
        }
        if self.store.delete_vm(id).map_err(ApiError::internal)? {
            Ok(())
        } else {
            Err(ApiError::new(404, format!("no VM {id}")))
        }
    }

    /// VM `id`'s console of its last start in this server, if any.
    pub fn console(&self, id: i64) -> Option<Arc<ConsoleBuf>> {
        self.live().get(&id).map(|l| l.console.clone())
    }

    /// Stops every running VM and waits (up to 10 s) for their ends to be recorded.
    pub fn stop_all(&self) {
        let all: Vec<(i64, Arc<Live>)> = self.live().iter().map(|(k, v)| (*k, v.clone())).collect();
        for (id, _) in &all {
            let _ = self.stop(*id);
        }
        for (_, l) in all {
            let _ = l.console.wait_until_end(std::time::Duration::from_secs(10));
        }
    }
}

impl ConsoleBuf {
    /// Waits until the VM ended; whether it did within `timeout`.
    pub fn wait_until_end(&self, timeout: std::time::Duration) -> bool {
        let st = self.lock();
        let (st, _) = self
            .cv
            .wait_timeout_while(st, timeout, |s| s.end.is_none())
            .unwrap_or_else(|p| p.into_inner());
        st.end.is_some()
    }
}

fn pump(mut r: impl Read, console: &ConsoleBuf) {
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => console.push(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::VmSpec;

    fn spec(json: &str) -> VmSpec {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn limits_are_checked_with_reasons() {
        assert!(spec(r#"{"kernel":"builtin"}"#).validate().is_ok());
        let e = spec(r#"{"kernel":"builtin","memory_mib":1}"#)
            .validate()
            .unwrap_err();
        assert_eq!(e.status, 422);
        assert!(e.message.contains("memory_mib 1"), "{}", e.message);
        let e = spec(r#"{"kernel":"builtin","vcpus":0}"#)
            .validate()
            .unwrap_err();
        assert!(e.message.contains("vcpus 0"), "{}", e.message);
        let e = spec(r#"{"kernel":"relative/k"}"#).validate().unwrap_err();
        assert_eq!(e.status, 400);
        let e = spec(r#"{"kernel":"builtin","interface":"vmware"}"#)
            .validate()
            .unwrap_err();
        assert!(e.message.starts_with("interface:"), "{}", e.message);
        let e = spec(r#"{"kernel":"builtin","nets":["loopback","loopback","loopback","loopback","loopback"]}"#)
            .validate()
            .unwrap_err();
        assert!(e.message.contains("at most 4"), "{}", e.message);
        assert!(serde_json::from_str::<VmSpec>(r#"{"kernel":"builtin","shell":"rm"}"#).is_err());
    }

    #[test]
    fn console_reader_sees_bytes_then_end() {
        let c = super::ConsoleBuf::default();
        c.push(b"hello");
        let (b, pos, end) = c.wait_from(0, std::time::Duration::from_millis(10));
        assert_eq!((b.as_slice(), pos, end), (&b"hello"[..], 5, None));
        c.finish(serde_json::json!({"state": "exited"}));
        let (b, _, end) = c.wait_from(pos, std::time::Duration::from_millis(10));
        assert!(b.is_empty());
        assert_eq!(end.unwrap()["state"], "exited");
    }
}
