//! A minimal Chrome DevTools Protocol client for the browser tests: headless Chromium with
//! `--remote-debugging-port=0`, one page target, JSON messages over a hand-written
//! WebSocket (client frames masked, as RFC 6455 requires). Enough to navigate, evaluate
//! and collect console errors; no extra crates.
#![allow(dead_code)]
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A headless Chromium and a connection to its first page.
pub struct Browser {
    child: Child,
    ws: TcpStream,
    next_id: u64,
    /// Events received so far (`method`, `params`).
    pub events: Vec<(String, serde_json::Value)>,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    /// Starts `bin` headless and attaches to its page.
    pub fn launch(bin: &str) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromium starts");
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let port = loop {
            let mut line = String::new();
            assert!(err.read_line(&mut line).unwrap() > 0, "chromium exited");
            if let Some(rest) = line
                .trim()
                .strip_prefix("DevTools listening on ws://127.0.0.1:")
            {
                break rest.split('/').next().unwrap().parse::<u16>().unwrap();
            }
        };
        // Keep draining stderr so Chromium never blocks on it.
        std::thread::spawn(move || for _ in err.lines() {});
        let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
        let list = super::client::get(addr, "/json/list").json();
        let page = list
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["type"] == "page")
            .expect("a page target")["webSocketDebuggerUrl"]
            .as_str()
            .unwrap()
            .to_string();
        let path = page.splitn(4, '/').nth(3).unwrap();
        let mut ws = TcpStream::connect(addr).unwrap();
        ws.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        write!(
            ws,
            "GET /{path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            ws.read_exact(&mut b).unwrap();
            head.push(b[0]);
        }
        assert!(
            head.starts_with(b"HTTP/1.1 101"),
            "{}",
            String::from_utf8_lossy(&head)
        );
        let mut br = Browser {
            child,
            ws,
            next_id: 1,
            events: Vec::new(),
            _profile: profile,
        };
        br.call("Runtime.enable", serde_json::json!({}));
        br.call("Page.enable", serde_json::json!({}));
        br
    }

    fn send(&mut self, text: &str) {
        let p = text.as_bytes();
        let mut f = vec![0x81u8];
        match p.len() {
            n if n < 126 => f.push(0x80 | n as u8),
            n if n < 65536 => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(0x80 | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let mask = [0x37u8, 0xfa, 0x21, 0x3d];
        f.extend_from_slice(&mask);
        f.extend(p.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.ws.write_all(&f).unwrap();
    }

    fn recv(&mut self) -> serde_json::Value {
        let mut msg = Vec::new();
        loop {
            let mut h = [0u8; 2];
            self.ws.read_exact(&mut h).unwrap();
            let mut len = u64::from(h[1] & 0x7f);
            if len == 126 {
                let mut l = [0u8; 2];
                self.ws.read_exact(&mut l).unwrap();
                len = u64::from(u16::from_be_bytes(l));
            } else if len == 127 {
                let mut l = [0u8; 8];
                self.ws.read_exact(&mut l).unwrap();
                len = u64::from_be_bytes(l);
            }
            let mut data = vec![0u8; len as usize];
            self.ws.read_exact(&mut data).unwrap();
            match h[0] & 0x0f {
                0 | 1 => msg.extend_from_slice(&data),
                8 => panic!("DevTools closed the connection"),
                _ => continue,
            }
            if h[0] & 0x80 != 0 {
                return serde_json::from_slice(&msg).unwrap();
            }
        }
    }

    /// Calls `method`; returns its `result` (events seen meanwhile go to `events`).
    pub fn call(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&serde_json::json!({"id": id, "method": method, "params": params}).to_string());
        loop {
            let m = self.recv();
            if m["id"].as_u64() == Some(id) {
                // An evaluation during a navigation may fail: the caller polls again.
                assert!(
                    m.get("error").is_none() || method == "Runtime.evaluate",
                    "{method}: {m}"
                );
                return m["result"].clone();
            }
            if let Some(ev) = m["method"].as_str() {
                self.events.push((ev.to_string(), m["params"].clone()));
            }
        }
    }

    /// Evaluates `js` in the page; its value.
    pub fn eval(&mut self, js: &str) -> serde_json::Value {
        let r = self.call(
            "Runtime.evaluate",
            serde_json::json!({"expression": js, "returnByValue": true, "awaitPromise": true}),
        );
        r["result"]["value"].clone()
    }

    /// Navigates and waits for the page to be loaded.
    pub fn goto(&mut self, url: &str) {
        self.call("Page.navigate", serde_json::json!({ "url": url }));
        self.wait_for(
            "document.readyState === 'complete'",
            Duration::from_secs(30),
        );
    }

    /// Polls `js` until it is true; panics after `max`.
    pub fn wait_for(&mut self, js: &str, max: Duration) {
        let t = Instant::now();
        while self.eval(js) != serde_json::Value::Bool(true) {
            assert!(t.elapsed() < max, "timed out waiting for {js}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Uncaught exceptions and `console.error` calls seen so far.
    pub fn console_errors(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|(m, p)| {
                m == "Runtime.exceptionThrown"
                    || (m == "Runtime.consoleAPICalled" && p["type"] == "error")
            })
            .map(|(m, p)| format!("{m}: {p}"))
            .collect()
    }

    /// A PNG screenshot of the page, written to `path`.
    pub fn screenshot(&mut self, path: &std::path::Path) {
        let r = self.call(
            "Page.captureScreenshot",
            serde_json::json!({"format": "png"}),
        );
        let b64 = r["data"].as_str().unwrap();
        std::fs::write(path, decode_base64(b64)).unwrap();
    }
}

fn decode_base64(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let bytes: Vec<u8> = s
        .bytes()
        .filter(|c| *c != b'=' && !c.is_ascii_whitespace())
        .collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= u32::from(val(*c)) << (18 - 6 * i);
        }
        let k = chunk.len() * 6 / 8;
        out.extend_from_slice(&n.to_be_bytes()[1..1 + k]);
    }
    out
}
