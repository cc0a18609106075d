//! The HTTP server: binding rules (loopback unless a token is set), bearer-token check,
//! body limits, one thread per request, and the hand-off to [`crate::api`] and
//! [`crate::pages`].
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::store::Store;
use crate::vms::{Runner, VmManager};
use crate::ApiError;

/// Default largest request body (16 MiB); larger gets 413.
pub const DEFAULT_MAX_BODY: usize = 16 << 20;
/// Most requests handled at once; more get 503.
pub const MAX_IN_FLIGHT: usize = 256;

/// How to serve.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to bind. A non-loopback address requires [`Config::token`].
    pub addr: SocketAddr,
    /// Bearer token every request must carry (`Authorization: Bearer TOKEN`); optional on
    /// loopback, required elsewhere.
    pub token: Option<String>,
    /// Folder of the database (`console.db`), created when absent.
    pub data_dir: PathBuf,
    /// How VMs run; `None`: VM starts get 503.
    pub runner: Option<Runner>,
    /// Largest request body accepted, in bytes.
    pub max_body: usize,
    /// The certify crate's side (profiles, certify runs, probe documents, packages);
    /// `None`: those routes get 503.
    pub backend: Option<Arc<dyn crate::backend::Backend>>,
    /// Serve HTTPS with this configuration ([`crate::tls::server_config`]): TLS on `addr`,
    /// the HTTP server itself on 127.0.0.1 only.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// Everything a request handler needs.
pub struct App {
    /// The database.
    pub store: Arc<Store>,
    /// The VMs.
    pub vms: VmManager,
    /// Certify runs started here.
    pub certify: crate::certruns::CertifyManager,
    /// The data folder (the database, certify output, temporary uploads).
    pub data_dir: PathBuf,
    /// Whether clients reach this server through TLS (cookies are then `Secure`).
    pub tls: bool,
    token: Option<String>,
    max_body: usize,
}

/// The cookie that carries the token for a browser (set by `POST /login`).
pub const TOKEN_COOKIE: &str = "hvcert_token";

impl App {
    /// Whether `given` is this server's token (always true without one).
    pub fn token_ok(&self, given: &str) -> bool {
        self.token
            .as_deref()
            .is_none_or(|want| same_token(given, want))
    }
}

/// A request as the routes see it: the body already read and size-checked.
pub struct Req {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// Query parameters, percent-decoded.
    pub query: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// The `Content-Type` header's value, lower-case, when present.
    pub content_type: Option<String>,
}

impl Req {
    /// The first query parameter named `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What a route answers.
pub enum Resp {
    /// A complete body with a status and content type.
    Full {
        /// HTTP status.
        status: u16,
        /// `Content-Type`.
        content_type: &'static str,
        /// The body.
        body: Vec<u8>,
    },
    /// A Server-Sent Events stream of a VM console.
    Sse(crate::sse::ConsoleStream),
    /// `303 See Other` to `location`, setting the cookie `set_cookie` when given.
    Redirect {
        /// Where to.
        location: String,
        /// A `Set-Cookie` value.
        set_cookie: Option<String>,
    },
}

impl Resp {
    /// A JSON answer.
    pub fn json(status: u16, v: &impl serde::Serialize) -> Resp {
        Resp::Full {
            status,
            content_type: "application/json",
            body: serde_json::to_vec_pretty(v).unwrap_or_else(|_| b"{}".to_vec()),
        }
    }

    /// An HTML page.
    pub fn html(status: u16, page: String) -> Resp {
        Resp::Full {
            status,
            content_type: "text/html; charset=utf-8",
            body: page.into_bytes(),
        }
    }
}

/// A running server; [`Server::shutdown`] (or drop) stops it and its VMs.
pub struct Server {
    addr: SocketAddr,
    http: Arc<tiny_http::Server>,
    app: Arc<App>,
    accept: Option<JoinHandle<()>>,
    tls: Option<crate::tls::TlsFront>,
}

/// Whether a non-loopback `addr` is allowed with `token` (the binding rule).
pub fn check_binding(addr: &SocketAddr, token: Option<&str>) -> Result<(), String> {
    match token {
        Some(t) if t.len() < 16 => Err("--token must be at least 16 characters".into()),
        None if !addr.ip().is_loopback() => Err(format!(
            "{addr} is not a loopback address: serving on it requires --token"
        )),
        _ => Ok(()),
    }
}

impl Server {
    /// Opens the store, binds and starts accepting requests.
    pub fn start(cfg: Config) -> anyhow::Result<Server> {
        check_binding(&cfg.addr, cfg.token.as_deref()).map_err(anyhow::Error::msg)?;
        std::fs::create_dir_all(&cfg.data_dir)?;
        let store = Arc::new(Store::open(&cfg.data_dir)?);
        store.reset_running_vms()?;
        store.reset_running_jobs()?;
        // With TLS, the HTTP server is reachable on loopback only, behind the TLS front.
        let http_addr = match cfg.tls {
            Some(_) => SocketAddr::from(([127, 0, 0, 1], 0)),
            None => cfg.addr,
        };
        let http = Arc::new(
            tiny_http::Server::http(http_addr)
                .map_err(|e| anyhow::anyhow!("cannot bind {http_addr}: {e}"))?,
        );
        let plain = http
            .server_addr()
            .to_ip()
            .ok_or_else(|| anyhow::anyhow!("not an IP listener"))?;
        let tls = match &cfg.tls {
            Some(t) => Some(
                crate::tls::TlsFront::start(cfg.addr, plain, t.clone())
                    .map_err(|e| anyhow::anyhow!("cannot bind {}: {e}", cfg.addr))?,
            ),
            None => None,
        };
        let addr = tls.as_ref().map_or(plain, |t| t.addr());
        let app = Arc::new(App {
            vms: VmManager::new(store.clone(), cfg.runner),
            certify: crate::certruns::CertifyManager::new(
                store.clone(),
                cfg.backend,
                cfg.data_dir.clone(),
            ),
            data_dir: cfg.data_dir,
            tls: cfg.tls.is_some(),
            store,
            token: cfg.token,
            max_body: cfg.max_body,
        });
        let (h, a) = (http.clone(), app.clone());
        let accept = std::thread::spawn(move || accept_loop(&h, &a));
        Ok(Server {
            addr,
            http,
            app,
            accept: Some(accept),
            tls,
        })
    }

    /// The bound address (the real port when 0 was asked).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The store (for imports before serving).
    pub fn store(&self) -> &Store {
        &self.app.store
    }

    /// Blocks until the server stops (it does not stop by itself).
    pub fn wait(mut self) {
        if let Some(a) = self.accept.take() {
            let _ = a.join();
        }
    }

    /// Stops accepting, stops the VMs.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(mut t) = self.tls.take() {
            t.stop();
        }
        self.http.unblock();
        if let Some(a) = self.accept.take() {
            let _ = a.join();
        }
        self.app.vms.stop_all();
        self.app.certify.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(http: &tiny_http::Server, app: &Arc<App>) {
    let in_flight = Arc::new(AtomicUsize::new(0));
    while let Ok(rq) = http.recv() {
        if in_flight.fetch_add(1, Ordering::SeqCst) >= MAX_IN_FLIGHT {
            in_flight.fetch_sub(1, Ordering::SeqCst);
            let _ = rq.respond(error_response(&ApiError::new(
                503,
                "too many requests in flight",
            )));
            continue;
        }
        let (app, n) = (app.clone(), in_flight.clone());
        let spawned = std::thread::Builder::new()
            .name("hvcert-http".into())
            .spawn(move || {
                handle(&app, rq);
                n.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            in_flight.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

fn header(rq: &tiny_http::Request, name: &str) -> Option<String> {
    rq.headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str().to_string())
}

/// Compares without an early exit, so the time taken does not tell how much matched.
fn same_token(given: &str, want: &str) -> bool {
    let (g, w) = (given.as_bytes(), want.as_bytes());
    g.len() == w.len() && g.iter().zip(w).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

fn error_response(e: &ApiError) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let body = serde_json::json!({ "error": e.message }).to_string();
    tiny_http::Response::from_data(body)
        .with_status_code(e.status)
        .with_header(ct("application/json"))
}

fn ct(v: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(&b"Content-Type"[..], v.as_bytes()).expect("valid header")
}

/// `Server-Timing: app;dur=MS`: the time from the request's arrival to its answer's
/// start (reading the body, the database, rendering), for clients and the figures.
fn timing(t0: std::time::Instant) -> tiny_http::Header {
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    tiny_http::Header::from_bytes(&b"Server-Timing"[..], format!("app;dur={ms:.1}").as_bytes())
        .expect("valid header")
}

/// Checks, reads and routes one request, and answers it.
fn handle(app: &App, mut rq: tiny_http::Request) {
    let t0 = std::time::Instant::now();
    match prepare(app, &mut rq) {
        Err(e) => {
            let _ = rq.respond(error_response(&e).with_header(timing(t0)));
        }
        Ok(req) => match route(app, &req) {
            Err(e) if req.path.starts_with("/api/") => {
                let _ = rq.respond(error_response(&e).with_header(timing(t0)));
            }
            Err(e) => {
                let page = crate::pages::error_page(&e);
                let _ = rq.respond(
                    tiny_http::Response::from_data(page)
                        .with_status_code(e.status)
                        .with_header(ct("text/html; charset=utf-8"))
                        .with_header(timing(t0)),
                );
            }
            Ok(Resp::Full {
                status,
                content_type,
                body,
            }) => {
                let _ = rq.respond(
                    tiny_http::Response::from_data(body)
                        .with_status_code(status)
                        .with_header(ct(content_type))
                        .with_header(timing(t0))
                        .with_header(
                            tiny_http::Header::from_bytes(
                                &b"X-Content-Type-Options"[..],
                                &b"nosniff"[..],
                            )
                            .expect("valid header"),
                        ),
                );
            }
            Ok(Resp::Redirect {
                location,
                set_cookie,
            }) => {
                let mut r = tiny_http::Response::empty(303).with_header(
                    tiny_http::Header::from_bytes(&b"Location"[..], location.as_bytes())
                        .expect("valid header"),
                );
                if let Some(c) = set_cookie {
                    r = r.with_header(
                        tiny_http::Header::from_bytes(&b"Set-Cookie"[..], c.as_bytes())
                            .expect("valid header"),
                    );
                }
                let _ = rq.respond(r);
            }
            Ok(Resp::Sse(stream)) => {
                let mut w = rq.into_writer();
                let _ = stream.write_to(&mut *w);
                let _ = w.flush();
            }
        },
    }
}

/// Authentication, cross-site and size checks, then the body.
fn prepare(app: &App, rq: &mut tiny_http::Request) -> Result<Req, ApiError> {
    // The login page is the one place reachable without the token (it checks it itself).
    let login = rq.url() == "/login";
    if let (Some(want), false) = (&app.token, login) {
        let bearer = header(rq, "Authorization")
            .as_deref()
            .and_then(|g| g.strip_prefix("Bearer "))
            .is_some_and(|g| same_token(g.trim(), want));
        let cookie = header(rq, "Cookie").is_some_and(|c| {
            c.split(';').any(|kv| {
                kv.trim()
                    .strip_prefix(TOKEN_COOKIE)
                    .and_then(|v| v.strip_prefix('='))
                    .is_some_and(|v| same_token(v, want))
            })
        });
        if !bearer && !cookie {
            return Err(ApiError::new(
                401,
                "missing or wrong token: send Authorization: Bearer TOKEN (browsers: /login)",
            ));
        }
    }
    let method = rq.method().as_str().to_ascii_uppercase();
    let content_type = header(rq, "Content-Type").map(|c| c.to_ascii_lowercase());
    if method != "GET" && method != "HEAD" {
        // A page of another site can POST to a loopback server (forms, no-cors fetch) but
        // not with a JSON content type, and a browser names its origin.
        if let (Some(origin), Some(host)) = (header(rq, "Origin"), header(rq, "Host")) {
            let o = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
                .unwrap_or(&origin);
            if o != host {
                return Err(ApiError::new(
                    403,
                    format!("cross-origin request from {origin}"),
                ));
            }
        }
    }
    if let Some(n) = rq.body_length() {
        if n > app.max_body {
            return Err(ApiError::new(
                413,
                format!("body of {n} bytes, at most {}", app.max_body),
            ));
        }
    }
    let mut body = Vec::new();
    rq.as_reader()
        .take(app.max_body as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| ApiError::new(400, format!("cannot read the body: {e}")))?;
    if body.len() > app.max_body {
        return Err(ApiError::new(
            413,
            format!("body larger than {} bytes", app.max_body),
        ));
    }
    let url = rq.url().to_string();
    let (path, q) = url.split_once('?').unwrap_or((&url, ""));
    Ok(Req {
        method,
        path: percent_decode(path),
        query: parse_query(q),
        body,
        content_type,
    })
}

fn route(app: &App, req: &Req) -> Result<Resp, ApiError> {
    if req.path.starts_with("/api/") {
        crate::api::route(app, req)
    } else {
        crate::pages::route(app, req)
    }
}

/// `a=1&b=x%20y` as pairs, percent- and `+`-decoded.
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                percent_decode(&k.replace('+', " ")),
                percent_decode(&v.replace('+', " ")),
            )
        })
        .collect()
}

/// Decodes `%XX` escapes (invalid ones are kept as they are; invalid UTF-8 is replaced).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    #[test]
    fn binding_rule() {
        let lo: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
        let any: std::net::SocketAddr = "0.0.0.0:0".parse().unwrap();
        assert!(super::check_binding(&lo, None).is_ok());
        assert!(super::check_binding(&any, None).is_err());
        assert!(super::check_binding(&any, Some("short")).is_err());
        assert!(super::check_binding(&any, Some("0123456789abcdef")).is_ok());
    }

    #[test]
    fn query_decoding() {
        assert_eq!(
            super::parse_query("base=1&run=a%20b+c&x"),
            vec![
                ("base".into(), "1".into()),
                ("run".into(), "a b c".into()),
                ("x".into(), "".into())
            ]
        );
        assert_eq!(super::percent_decode("%zz%4"), "%zz%4");
        assert_eq!(super::percent_decode("%é%41"), "%éA");
    }
}
