//! HTTPS: the server with a certificate (made here by the `openssl` command), a real TLS
//! client (rustls) trusting it: 401 without the token, 200 with it, the live answer
//! through the TLS bridge; plain HTTP on the TLS port gets no HTTP answer.
#[path = "../../tests/common/skip.rs"]
mod skip;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

const TOKEN: &str = "0123456789abcdef-tls-token";

/// A self-signed certificate for localhost/127.0.0.1: (cert.pem, key.pem), or None
/// without the openssl command.
fn certificate(dir: &std::path::Path) -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output();
    match out {
        Ok(o) if o.status.success() => Some((cert, key)),
        Ok(o) => panic!("openssl failed: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => {
            skip::skip("https_with_token", &format!("no openssl command ({e})"));
            None
        }
    }
}

/// One HTTPS GET (Connection: close); the status and the whole response text.
fn https(
    addr: SocketAddr,
    cert: &std::path::Path,
    path: &str,
    auth: Option<&str>,
) -> (u16, String) {
    let auth = auth
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    https_raw(
        addr,
        cert,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}\r\n"),
    )
}

/// One raw HTTPS request; the status and the whole response text.
fn https_raw(addr: SocketAddr, cert: &std::path::Path, request: &str) -> (u16, String) {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let conn =
        rustls::ClientConnection::new(Arc::new(cfg), ServerName::try_from("localhost").unwrap())
            .unwrap();
    let sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    tls.write_all(request.as_bytes()).unwrap();
    let mut text = Vec::new();
    match tls.read_to_end(&mut text) {
        Ok(_) => {}
        // A peer that closes without close_notify after a complete answer.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
        Err(e) => panic!("TLS read: {e}"),
    }
    let text = String::from_utf8_lossy(&text).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    (status, text)
}

#[test]
fn https_with_token() {
    let dir = tempfile::tempdir().unwrap();
    let Some((cert, key)) = certificate(dir.path()) else {
        return;
    };
    let tls = console::tls::server_config(&cert, &key).expect("TLS configuration");
    let s = console::Server::start(console::Config {
        addr: "127.0.0.1:0".parse().unwrap(),
        token: Some(TOKEN.into()),
        data_dir: dir.path().join("data"),
        runner: None,
        max_body: 1 << 20,
        backend: None,
        tls: Some(tls),
    })
    .unwrap();
    let a = s.addr();
    let (status, text) = https(a, &cert, "/api/runs", None);
    assert_eq!(status, 401, "{text}");
    let (status, text) = https(a, &cert, "/api/runs", Some(TOKEN));
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("\"total\": 0"), "{text}");
    // The browser sign-in cookie is Secure over TLS.
    let form = format!("token={TOKEN}");
    let (status, text) = https_raw(
        a,
        &cert,
        &format!(
            "POST /login HTTP/1.1\r\nHost: {a}\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        ),
    );
    assert_eq!(status, 303, "{text}");
    assert!(
        text.contains("HttpOnly; SameSite=Strict; Path=/; Secure"),
        "{text}"
    );
    // Several at once, through separate bridges.
    std::thread::scope(|sc| {
        for _ in 0..8 {
            sc.spawn(|| assert_eq!(https(a, &cert, "/api/hosts", Some(TOKEN)).0, 200));
        }
    });
    // Plain HTTP on the TLS port: no HTTP answer.
    let mut plain = TcpStream::connect(a).unwrap();
    plain
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    plain
        .write_all(b"GET /api/runs HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let _ = plain.read_to_end(&mut got);
    assert!(
        !got.starts_with(b"HTTP/"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    // A key that does not parse is refused with the file's name.
    std::fs::write(dir.path().join("bad.pem"), "not a key").unwrap();
    let e = console::tls::server_config(&cert, &dir.path().join("bad.pem")).unwrap_err();
    assert!(e.to_string().contains("bad.pem"), "{e}");
    s.shutdown();
}
