//! Helpers for the `prodtrace latency --serve` tests: free loopback ports,
//! scraping /metrics (a plain HTTP/1.1 GET over a TcpStream), checking a
//! scrape with the real `promtool check metrics`, reading the exposition,
//! and a real Prometheus server (Debian's `prometheus` package) run on a
//! loopback port with a temporary configuration and data directory.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::latency_support::Running;

/// A loopback port free at the time of asking.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts `prodtrace latency --serve 127.0.0.1:PORT ARGS...` and waits
/// until it serves.
pub fn serve(port: u16, args: &[&str]) -> Running {
    let addr = format!("127.0.0.1:{port}");
    let mut all = vec!["--serve", &addr];
    all.extend_from_slice(args);
    let r = Running::start(&mut crate::latency_support::latency(&all));
    r.wait_line("Serving metrics on", true, Duration::from_secs(60));
    r
}

/// One HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// Sends `request` (a full HTTP request) to `addr` and reads the response
/// until the server closes the connection (at most 60 s).
pub fn http_raw(addr: SocketAddr, request: &str) -> std::io::Result<Response> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    s.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    Ok(Response { status, head: head.to_string(), body: decode_chunked(head, body) })
}

fn decode_chunked(head: &str, body: &str) -> String {
    if !head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        return body.to_string();
    }
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&after[..n]);
        rest = &after[n + 2..];
    }
    out
}

/// GET `path` with an optional Accept header.
pub fn get(port: u16, path: &str, accept: Option<&str>) -> Response {
    let accept = accept.map(|a| format!("Accept: {a}\r\n")).unwrap_or_default();
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{accept}Connection: close\r\n\r\n");
    http_raw(SocketAddr::from(([127, 0, 0, 1], port)), &req).unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// Scrapes /metrics in the Prometheus text format and checks it with
/// `promtool check metrics` (which must pass); returns the text.
pub fn scrape_checked(port: u16) -> String {
    let r = get(port, "/metrics", None);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-type").as_deref(), Some("text/plain; version=0.0.4; charset=utf-8"));
    promtool_check(&r.body);
    r.body
}

/// `promtool check metrics` on an exposition; panics with its complaints.
pub fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus, scripts/setup.sh)");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n--- exposition (first 3000 bytes)\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        &text[..text.len().min(3000)]
    );
}

/// Samples of the exposition `text` whose name is `name`, as
/// (labels without `le`... as written, value).
pub fn samples(text: &str, name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.strip_suffix('}')?),
                None => (series, ""),
            };
            (n == name).then(|| (parse_labels(labels), value.parse().unwrap_or(f64::NAN)))
        })
        .collect()
}

fn parse_labels(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = s;
    while let Some((k, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        value.push(if n == 'n' { '\n' } else { n });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.insert(k.trim_start_matches(',').to_string(), value);
        rest = &after[end..];
    }
    out
}

/// `kind -> _count` of process `pid` in an exposition.
pub fn counts_of(text: &str, pid: u32) -> BTreeMap<String, u64> {
    samples(text, "prodtrace_async_operation_duration_seconds_count")
        .into_iter()
        .filter(|(l, _)| l["pid"] == pid.to_string() && l.get("phase").is_none_or(|p| p == "total"))
        .map(|(l, v)| (l["kind"].clone(), v as u64))
        .collect()
}

/// The value of the one sample of `name` whose labels include `want`.
pub fn value_of(text: &str, name: &str, want: &[(&str, &str)]) -> Option<f64> {
    samples(text, name)
        .into_iter()
        .find(|(l, _)| want.iter().all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v)))
        .map(|(_, v)| v)
}

/// sqlite3 kinds as `--serve` names them (module`function).
pub fn sqlite_kind(name: &str) -> String {
    format!("node_sqlite3.node`{name}")
}

/// Scrapes until `done(text)` holds (at most `limit`), checking every
/// scrape with promtool; returns the last text.
pub fn scrape_until(port: u16, limit: Duration, what: &str, done: impl Fn(&str) -> bool) -> String {
    let until = Instant::now() + limit;
    loop {
        let text = scrape_checked(port);
        if done(&text) {
            return text;
        }
        assert!(Instant::now() < until, "{what}: not seen within {limit:?}; last scrape:\n{text}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A real Prometheus server scraping `target` every second, on a free
/// loopback port, with its configuration and data in a temporary directory.
pub struct Prometheus {
    pub run: Running,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    pub fn start(target: u16) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: prodtrace\n    static_configs:\n      - targets: ['127.0.0.1:{target}']\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let mut cmd = Command::new("prometheus");
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .current_dir(dir.path());
        let run = Running::start(&mut cmd);
        let p = Prometheus { run, port, _dir: dir };
        let until = Instant::now() + Duration::from_secs(60);
        while get_opt(port, "/-/ready").is_none_or(|r| r.status != 200) {
            assert!(Instant::now() < until, "Prometheus did not become ready:\n{}", p.run.output());
            std::thread::sleep(Duration::from_millis(200));
        }
        p
    }

    /// GET /api/v1/query?query=Q[&time=T]: the `data.result` array.
    pub fn query(&self, q: &str, time: Option<f64>) -> Vec<Value> {
        let mut path = format!("/api/v1/query?query={}", urlencode(q));
        if let Some(t) = time {
            path.push_str(&format!("&time={t:.3}"));
        }
        let r = get(self.port, &path, None);
        let v: Value = serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{q}: {e}: {r:?}"));
        assert_eq!(v["status"], "success", "{q}: {v}");
        v["data"]["result"].as_array().unwrap().clone()
    }

    /// The scrape target's health and last error.
    pub fn target_health(&self) -> (String, String) {
        let r = get(self.port, "/api/v1/targets", None);
        let v: Value = serde_json::from_str(&r.body).unwrap();
        let t = &v["data"]["activeTargets"][0];
        (t["health"].as_str().unwrap_or("").to_string(), t["lastError"].as_str().unwrap_or("").to_string())
    }
}

fn get_opt(port: u16, path: &str) -> Option<Response> {
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    http_raw(SocketAddr::from(([127, 0, 0, 1], port)), &req).ok()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A symlink to node named `name` in `dir`: processes started through it
/// are named (comm) `name`, so that `--comm name` picks up this test's
/// processes and no other test's.
pub fn node_named(dir: &Path, name: &str) -> std::path::PathBuf {
    let link = dir.join(name);
    std::os::unix::fs::symlink(crate::latency_support::NODE, &link).unwrap();
    link
}
