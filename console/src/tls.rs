//! TLS in front of the HTTP server (`--tls-cert`, `--tls-key`): `rustls` (ring provider)
//! terminates TLS on the public address and each connection is bridged, as plain bytes, to
//! the HTTP server listening on 127.0.0.1 only. The token rule is unchanged (the HTTP
//! server checks it on every request), so off loopback it is TLS + token.
//!
//! A connection uses two threads: client-to-server (decrypt, forward) and
//! server-to-client (encrypt, send), sharing the `rustls` connection behind a mutex that is
//! never held across a blocking read.
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConnection;

/// Most TLS connections open at once; more are closed at once.
pub const MAX_CONNECTIONS: usize = 256;
/// A connection whose client sends nothing for this long while the server has nothing to
/// send is closed.
const IDLE: Duration = Duration::from_secs(300);
/// How often a waiting client read checks whether the server side ended.
const TICK: Duration = Duration::from_millis(500);

/// The server side of TLS from a PEM certificate chain and a PEM private key.
pub fn server_config(cert: &Path, key: &Path) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| anyhow::anyhow!("{}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("{}: {e}", cert.display()))?;
    if chain.is_empty() {
        anyhow::bail!("{}: no certificate in it", cert.display());
    }
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| anyhow::anyhow!("{}: {e}", key.display()))?;
    // ring, not the default aws-lc-rs (which builds a large C library with cmake). rustls
    // 0.23.48 marks ring's provider deprecated for lacking post-quantum key exchange; its
    // X25519/P-256 key exchange and AEAD suites are what TLS 1.3 clients use today.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    Ok(Arc::new(cfg))
}

/// The TLS listener; [`TlsFront::stop`] (or drop) stops accepting.
pub struct TlsFront {
    addr: SocketAddr,
    stopping: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl TlsFront {
    /// Listens on `public` and bridges each TLS connection to `plain` (the HTTP server).
    pub fn start(
        public: SocketAddr,
        plain: SocketAddr,
        cfg: Arc<rustls::ServerConfig>,
    ) -> std::io::Result<TlsFront> {
        let listener = TcpListener::bind(public)?;
        let addr = listener.local_addr()?;
        let stopping = Arc::new(AtomicBool::new(false));
        let stop = stopping.clone();
        let accept = std::thread::Builder::new()
            .name("hvcert-tls".into())
            .spawn(move || accept_loop(&listener, plain, &cfg, &stop))?;
        Ok(TlsFront {
            addr,
            stopping,
            accept: Some(accept),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting (open connections end with their HTTP exchange).
    pub fn stop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wake the blocking accept.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(a) = self.accept.take() {
            let _ = a.join();
        }
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(
    listener: &TcpListener,
    plain: SocketAddr,
    cfg: &Arc<rustls::ServerConfig>,
    stopping: &AtomicBool,
) {
    let open = Arc::new(AtomicUsize::new(0));
    for client in listener.incoming() {
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        if open.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            open.fetch_sub(1, Ordering::SeqCst);
            continue; // dropped: closed
        }
        let (cfg, n) = (cfg.clone(), open.clone());
        let spawned = std::thread::Builder::new()
            .name("hvcert-tls-conn".into())
            .spawn(move || {
                let _ = bridge(client, plain, cfg);
                n.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            open.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

fn lock(c: &Mutex<ServerConnection>) -> MutexGuard<'_, ServerConnection> {
    c.lock().unwrap_or_else(|p| p.into_inner())
}

/// Sends what `rustls` has queued for the client.
fn flush(c: &mut ServerConnection, w: &mut TcpStream) -> std::io::Result<()> {
    while c.wants_write() {
        c.write_tls(w)?;
    }
    w.flush()
}

fn bridge(
    client: TcpStream,
    plain: SocketAddr,
    cfg: Arc<rustls::ServerConfig>,
) -> std::io::Result<()> {
    let conn = Arc::new(Mutex::new(
        ServerConnection::new(cfg).map_err(std::io::Error::other)?,
    ));
    let server = TcpStream::connect(plain)?;
    let (mut c_read, mut c_write) = (client.try_clone()?, client.try_clone()?);
    let (mut s_read, mut s_write) = (server.try_clone()?, server);
    c_read.set_read_timeout(Some(TICK))?;
    let server_done = Arc::new(AtomicBool::new(false));

    // Server to client: encrypt what the HTTP server answers, then close_notify.
    let (conn2, done2, mut c_write2) = (conn.clone(), server_done.clone(), client.try_clone()?);
    let back = std::thread::Builder::new()
        .name("hvcert-tls-out".into())
        .spawn(move || {
            let mut buf = vec![0u8; 16 << 10];
            loop {
                let n = match s_read.read(&mut buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => 0,
                };
                let mut c = lock(&conn2);
                if n == 0 {
                    c.send_close_notify();
                    let _ = flush(&mut c, &mut c_write2);
                    let _ = c_write2.shutdown(Shutdown::Write);
                    done2.store(true, Ordering::SeqCst);
                    return;
                }
                if c.writer().write_all(&buf[..n]).is_err() || flush(&mut c, &mut c_write2).is_err()
                {
                    done2.store(true, Ordering::SeqCst);
                    return;
                }
            }
        })?;

    // Client to server: decrypt and forward; handshake replies go back from here.
    let mut buf = vec![0u8; 16 << 10];
    let mut idle = Duration::ZERO;
    let result = loop {
        let n = match c_read.read(&mut buf) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                idle += TICK;
                if server_done.load(Ordering::SeqCst) || idle >= IDLE {
                    break Ok(());
                }
                continue;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => break Err(e),
        };
        idle = Duration::ZERO;
        if n == 0 {
            break Ok(());
        }
        let (plaintext, closed) = {
            let mut c = lock(&conn);
            let mut rd = &buf[..n];
            let mut failed = None;
            while !rd.is_empty() {
                if let Err(e) = c.read_tls(&mut rd) {
                    failed = Some(e);
                    break;
                }
                if let Err(e) = c.process_new_packets() {
                    // Tell the client why (an alert), then give up.
                    let _ = flush(&mut c, &mut c_write);
                    failed = Some(std::io::Error::other(e));
                    break;
                }
            }
            if let Some(e) = failed {
                break Err(e);
            }
            let mut plaintext = Vec::new();
            let mut closed = false;
            let mut chunk = [0u8; 4096];
            loop {
                match c.reader().read(&mut chunk) {
                    Ok(0) => {
                        closed = true;
                        break;
                    }
                    Ok(k) => plaintext.extend_from_slice(&chunk[..k]),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        closed = true;
                        break;
                    }
                }
            }
            if let Err(e) = flush(&mut c, &mut c_write) {
                break Err(e);
            }
            (plaintext, closed)
        };
        if !plaintext.is_empty() {
            if let Err(e) = s_write.write_all(&plaintext) {
                break Err(e);
            }
        }
        if closed {
            break Ok(());
        }
    };
    // The request side is over: the HTTP server sees the end, answers and closes.
    let _ = s_write.shutdown(Shutdown::Write);
    if result.is_err() {
        let _ = s_write.shutdown(Shutdown::Both);
        let _ = client.shutdown(Shutdown::Both);
    }
    let _ = back.join();
    result
}
