//! The HTTP endpoint of `prodtrace latency --serve`: `GET /metrics` (and a
//! one-line index at `/`), nothing else, on the one address it was given.
//!
//! hyper on a single-threaded tokio runtime, in its own thread, with bounds
//! that keep a slow or hostile client from holding scrapes up or growing
//! memory: request heads of at most 8 KiB and 32 headers, read within 5 s;
//! at most 16 connections at once from one client address and 256 in all
//! (more are closed at once), so that one client cannot take the places of
//! the others; each connection lives at most 60 s; request bodies are
//! never read.  Before
//! encoding, a scrape asks the tracing loop to fold in what its BPF
//! programs collected (waiting at most 2 s, then serving what it has).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ACCEPT, ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::registry::Registry;
use tokio::sync::oneshot;

use super::metrics::Format;

const MAX_CONNECTIONS: usize = 256;
const MAX_PER_CLIENT: usize = 16;
const HEAD_LIMIT: usize = 8192;
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);
const REFRESH_WAIT: Duration = Duration::from_secs(2);

/// A request from the server to the tracing loop: fold in new data, then
/// answer on the channel.
pub type Refresh = oneshot::Sender<()>;

/// Binds `addr` (`HOST:PORT`, `[IPv6]:PORT`), with one-line errors.
pub fn bind(addr: &str) -> Result<TcpListener> {
    let parsed: SocketAddr = match addr.parse() {
        Ok(a) => a,
        Err(_) if addr.starts_with(':') => bail!(
            "--serve {addr}: give the address to listen on too, e.g. 127.0.0.1{addr} (prodtrace never \
             listens on every interface unless told to: 0.0.0.0{addr})"
        ),
        Err(_) => bail!("--serve {addr}: not an address: give IP:PORT, e.g. 127.0.0.1:9464 or [::1]:9464"),
    };
    let listener = TcpListener::bind(parsed).map_err(|e| match e.kind() {
        std::io::ErrorKind::AddrInUse => anyhow::anyhow!("--serve {addr}: the port is in use by another program"),
        std::io::ErrorKind::AddrNotAvailable => {
            anyhow::anyhow!("--serve {addr}: no interface of this machine has the address {}", parsed.ip())
        }
        std::io::ErrorKind::PermissionDenied => {
            anyhow::anyhow!("--serve {addr}: not allowed to listen on port {}", parsed.port())
        }
        _ => anyhow::anyhow!("--serve {addr}: cannot listen: {e}"),
    })?;
    listener.set_nonblocking(true).context("setting the listening socket non-blocking")?;
    Ok(listener)
}

/// Serves `registry` on `listener` from a new thread, for as long as the
/// process runs.
pub fn spawn(listener: TcpListener, registry: Registry, refresh: Sender<Refresh>) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .context("starting the HTTP server's runtime")?;
    let state = Arc::new(State {
        registry,
        refresh: std::sync::Mutex::new(refresh),
        connections: AtomicUsize::new(0),
        per_client: std::sync::Mutex::new(HashMap::new()),
    });
    std::thread::Builder::new()
        .name("prodtrace-http".into())
        .spawn(move || rt.block_on(accept_loop(listener, state)))
        .context("starting the HTTP server's thread")?;
    Ok(())
}

struct State {
    registry: Registry,
    refresh: std::sync::Mutex<Sender<Refresh>>,
    connections: AtomicUsize,
    /// Open connections by client address.
    per_client: std::sync::Mutex<HashMap<IpAddr, usize>>,
}

impl State {
    /// Counts a new connection from `ip`; false when over a limit.
    fn admit(&self, ip: IpAddr) -> bool {
        let mut per = self.per_client.lock().unwrap_or_else(|e| e.into_inner());
        let n = per.entry(ip).or_insert(0);
        if *n >= MAX_PER_CLIENT || self.connections.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
            if *n == 0 {
                per.remove(&ip);
            }
            return false;
        }
        *n += 1;
        self.connections.fetch_add(1, Ordering::SeqCst);
        true
    }

    fn leave(&self, ip: IpAddr) {
        let mut per = self.per_client.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = per.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                per.remove(&ip);
            }
        }
        self.connections.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("prodtrace: warning: the HTTP server cannot run: {e}");
            return;
        }
    };
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(_) => {
                // Out of file descriptors and the like: wait, do not spin.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let ip = peer.ip();
        if !state.admit(ip) {
            drop(stream);
            continue;
        }
        let state = state.clone();
        tokio::spawn(async move {
            let conn_state = state.clone();
            let service = hyper::service::service_fn(move |req| handle(conn_state.clone(), req));
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .max_buf_size(HEAD_LIMIT)
                .max_headers(32)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_LIFETIME, conn).await;
            state.leave(ip);
        });
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "read-only: GET /metrics\n");
        r.headers_mut().insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return Ok(r);
    }
    match req.uri().path() {
        "/metrics" => {}
        "/" => return Ok(text(StatusCode::OK, "prodtrace latency: metrics at /metrics\n")),
        _ => return Ok(text(StatusCode::NOT_FOUND, "not found: metrics are at /metrics\n")),
    }
    let (tx, rx) = oneshot::channel();
    let asked = state.refresh.lock().map(|s| s.send(tx).is_ok()).unwrap_or(false);
    if asked {
        // Past the wait, serve what the store has (the loop may be busy
        // attaching to a new process).
        let _ = tokio::time::timeout(REFRESH_WAIT, rx).await;
    }
    let accept = req.headers().get(ACCEPT).and_then(|v| v.to_str().ok());
    let format = Format::negotiate(accept);
    let body = format.encode(&state.registry);
    let mut r = Response::new(Full::new(Bytes::from(body)));
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    Ok(r)
}
