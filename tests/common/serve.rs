//! `hvcert serve` as a child process for the console's end-to-end tests: started with a
//! store folder and extra arguments, its address read from the first stdout line, killed
//! when dropped.
use std::io::BufRead;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Stdio};

/// A running `hvcert serve`; killed and reaped on drop.
pub struct Serve {
    /// The server process.
    pub child: Child,
    /// Where it listens (from its "... http://ADDR" line).
    pub addr: SocketAddr,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `hvcert serve --data DATA ARGS...`, once it has printed its address.
pub fn serve(data: &Path, args: &[&str]) -> Serve {
    let mut child = super::hvcert()
        .arg("serve")
        .arg("--data")
        .arg(data)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("hvcert serve starts");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .rsplit("http://")
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    Serve { child, addr }
}
