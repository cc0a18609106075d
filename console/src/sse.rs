//! The live console as Server-Sent Events: `event: console` with the new text as a JSON
//! string, repeated as the guest prints, then one `event: end` with the VM's end
//! (`{"state", "exit_code", "reason"}`) and the stream closes.
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use crate::vms::ConsoleBuf;

/// How often a `: keep-alive` comment is sent while the guest is silent.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// One SSE response.
pub struct ConsoleStream {
    /// The console to follow; `None` when the VM has not run in this server.
    pub console: Option<Arc<ConsoleBuf>>,
    /// The end to send when there is no console (the stored state).
    pub stored_end: serde_json::Value,
}

impl ConsoleStream {
    /// Writes the HTTP response (status line, headers, events) until the VM ends or the
    /// client goes away.
    pub fn write_to(&self, w: &mut dyn Write) -> std::io::Result<()> {
        w.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
              X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
        )?;
        w.flush()?;
        let Some(console) = &self.console else {
            return write_event(w, "end", &self.stored_end.to_string());
        };
        let mut pos = 0;
        loop {
            let (bytes, next, end) = console.wait_from(pos, KEEPALIVE);
            pos = next;
            if !bytes.is_empty() {
                let text = serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned());
                write_event(w, "console", &text.to_string())?;
            } else if let Some(end) = end {
                return write_event(w, "end", &end.to_string());
            } else {
                w.write_all(b": keep-alive\n\n")?;
                w.flush()?;
            }
        }
    }
}

/// One event; `data` is a single line (JSON never holds a raw newline).
fn write_event(w: &mut dyn Write, event: &str, data: &str) -> std::io::Result<()> {
    write!(w, "event: {event}\ndata: {data}\n\n")?;
    w.flush()
}
