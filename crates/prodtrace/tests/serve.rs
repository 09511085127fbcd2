//! End-to-end tests of `prodtrace latency --serve` without Prometheus:
//! processes picked up by name as they start and dropped when they exit,
//! several -p, exact counts in the exposition (checked by promtool on every
//! scrape), the kind cap with 10,000 kinds, --sample attaching and
//! detaching, --breakdown's phases, and the endpoint's limits and errors.
//! Real targets: /usr/bin/node with the sqlite demo, and a C program
//! linked with Debian's libuv.so.  Needs root and scripts/setup.sh.

mod latency_support;
mod serve_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use latency_support::*;
use serve_support::*;

const LIMIT: Duration = Duration::from_secs(120);

fn sqlite_counts(iterations: u64) -> std::collections::BTreeMap<String, u64> {
    expected_counts(iterations).into_iter().map(|(k, n)| (sqlite_kind(&k), n)).collect()
}

/// The sqlite demo started through `exe` in batches mode, waiting.
fn batch_demo(exe: &std::path::Path, iterations: u64) -> Running {
    let mut cmd = Command::new(exe);
    cmd.arg("sqlite-demo.js")
        .current_dir(node_dir())
        .env("SQLITE_DEMO_WAIT", "batches")
        .env("SQLITE_DEMO_ITERATIONS", iterations.to_string());
    let r = Running::start(&mut cmd);
    r.wait_line("ready", false, LIMIT);
    r
}

/// --comm NAME: a process with that name started after prodtrace is picked
/// up (exec tracepoint) and counted exactly; when it exits it is dropped,
/// its series stay for --grace and then go; scrapes made meanwhile all
/// succeed and pass promtool.
#[test]
fn comm_picks_up_new_processes_and_drops_them_after_exit() {
    const N: u64 = 50;
    let dir = tempfile::tempdir().unwrap();
    let name = format!("ptsrv{}", std::process::id());
    let exe = node_named(dir.path(), &name);
    let port = free_port();
    let serve = serve(port, &["--comm", &name, "--sample", "off", "--grace", "2s"]);
    let text = scrape_checked(port);
    assert_eq!(value_of(&text, "prodtrace_traced_processes", &[]), Some(0.0), "{text}");

    let mut demo = batch_demo(&exe, N);
    let pid = demo.pid();
    serve.wait_line(&format!("tracing process {pid} ({name})"), true, LIMIT);
    demo.send_line("go");
    demo.wait_line("\"iterations\":50,", false, LIMIT);
    let text = scrape_until(port, LIMIT, "the demo's counts", |t| counts_of(t, pid) == sqlite_counts(N));
    assert_eq!(value_of(&text, "prodtrace_traced_processes", &[]), Some(1.0));
    for (labels, _) in samples(&text, "prodtrace_async_operation_duration_seconds_count") {
        assert_eq!(labels["comm"], name, "{labels:?}");
    }

    // Exit: dropped, series kept for the grace period, then removed.
    demo.stdin.take();
    assert!(demo.wait(LIMIT).success(), "{}", demo.output());
    serve.wait_line(&format!("process {pid} ended"), true, LIMIT);
    assert_eq!(counts_of(&scrape_checked(port), pid), sqlite_counts(N), "series stay during the grace period");
    let text = scrape_until(port, LIMIT, "series removed after the grace period", |t| counts_of(t, pid).is_empty());
    assert_eq!(value_of(&text, "prodtrace_traced_processes", &[]), Some(0.0), "{text}");

    // A second process with the name is picked up too.
    let mut demo2 = batch_demo(&exe, N);
    let pid2 = demo2.pid();
    serve.wait_line(&format!("tracing process {pid2} ({name})"), true, LIMIT);
    demo2.send_line("go");
    demo2.wait_line("\"iterations\":50,", false, LIMIT);
    scrape_until(port, LIMIT, "the second demo's counts", |t| counts_of(t, pid2) == sqlite_counts(N));
    demo2.stdin.take();
    assert!(demo2.wait(LIMIT).success());
}

/// Processes that come and go while the endpoint is scraped without a
/// pause: every scrape answers 200 and passes promtool, prodtrace keeps
/// running, and once the processes are gone (and --grace has passed) no
/// process is exported.
#[test]
fn scrapes_keep_working_while_processes_come_and_go() {
    let dir = tempfile::tempdir().unwrap();
    let name = format!("ptchurn{}", std::process::id());
    let exe = node_named(dir.path(), &name);
    let port = free_port();
    let mut serve = serve(port, &["--comm", &name, "--sample", "off", "--grace", "1s"]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let scraper = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                scrape_checked(port);
                n += 1;
            }
            n
        })
    };
    // Short-lived demos (picked up or not, depending on how fast they are).
    for _ in 0..5 {
        let mut cmd = Command::new(&exe);
        cmd.arg("sqlite-demo.js").current_dir(node_dir()).env("SQLITE_DEMO_ITERATIONS", "30");
        let (st, out) = run(&mut cmd, LIMIT);
        assert!(st.success(), "{}", out.output());
    }
    // A demo killed in the middle of its work, while scrapes go on.
    let mut cmd = Command::new(&exe);
    cmd.arg("sqlite-demo.js").current_dir(node_dir());
    let mut victim = Running::start(&mut cmd);
    serve.wait_line(&format!("tracing process {}", victim.pid()), true, LIMIT);
    scrape_until(port, LIMIT, "the victim's first operations", |t| !counts_of(t, victim.pid()).is_empty());
    victim.signal(libc::SIGKILL);
    victim.wait(LIMIT);
    serve.wait_line(&format!("process {} ended", victim.pid()), true, LIMIT);
    scrape_until(port, LIMIT, "no process exported", |t| value_of(t, "prodtrace_traced_processes", &[]) == Some(0.0));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let scrapes = scraper.join().expect("every scrape succeeded and passed promtool");
    assert!(scrapes > 0);
    assert!(serve.child.try_wait().unwrap().is_none(), "prodtrace still serving:\n{}", serve.output());
    serve.signal(libc::SIGINT);
    assert!(serve.wait(LIMIT).success(), "{}", serve.output());
}

/// -p may be repeated: each process has its own series, counted exactly.
#[test]
fn several_pids_are_counted_apart() {
    let mut a = batch_demo(std::path::Path::new(NODE), 40);
    let mut b = batch_demo(std::path::Path::new(NODE), 70);
    let port = free_port();
    let serve = serve(port, &["-p", &a.pid().to_string(), "-p", &b.pid().to_string(), "--sample", "off"]);
    for d in [&a, &b] {
        serve.wait_line(&format!("tracing process {}", d.pid()), true, LIMIT);
    }
    a.send_line("go");
    b.send_line("go");
    a.wait_line("\"iterations\":40,", false, LIMIT);
    b.wait_line("\"iterations\":70,", false, LIMIT);
    scrape_until(port, LIMIT, "both demos' counts", |t| {
        counts_of(t, a.pid()) == sqlite_counts(40) && counts_of(t, b.pid()) == sqlite_counts(70)
    });
    // OpenMetrics when asked for it.
    let om = get(port, "/metrics", Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"));
    assert_eq!(
        om.header("content-type").as_deref(),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert!(om.body.ends_with("# EOF\n"), "{}", om.body);
    assert!(om.body.contains("# TYPE prodtrace_async_operation_duration_seconds histogram"));
    assert!(om.body.contains("# TYPE prodtrace_build info"));
    for d in [&mut a, &mut b] {
        d.stdin.take();
        assert!(d.wait(LIMIT).success());
    }
}

/// --breakdown adds a `phase` label: total and the three phases, each
/// counting every operation.
#[test]
fn breakdown_exports_phases() {
    const N: u64 = 30;
    let mut demo = batch_demo(std::path::Path::new(NODE), N);
    let port = free_port();
    let serve = serve(port, &["-p", &demo.pid().to_string(), "--sample", "off", "--breakdown"]);
    serve.wait_line("tracing process", true, LIMIT);
    demo.send_line("go");
    demo.wait_line("\"iterations\":30,", false, LIMIT);
    let text = scrape_until(port, LIMIT, "the demo's counts", |t| counts_of(t, demo.pid()) == sqlite_counts(N));
    for phase in ["total", "queue_wait", "run", "completion_delay"] {
        let got: std::collections::BTreeMap<String, u64> =
            samples(&text, "prodtrace_async_operation_duration_seconds_count")
                .into_iter()
                .filter(|(l, _)| l["phase"] == phase)
                .map(|(l, v)| (l["kind"].clone(), v as u64))
                .collect();
        assert_eq!(got, sqlite_counts(N), "phase {phase}");
    }
    demo.stdin.take();
    assert!(demo.wait(LIMIT).success());
}

/// --sample ON/PERIOD: the probes are in the target's code only part of
/// the time (seen both ways), the gauge says the fraction and that counts
/// are raw, and cycles are counted.
#[test]
fn sampling_attaches_and_detaches() {
    let mut demo = looping_demo();
    let pid = demo.pid();
    // Let node load sqlite3 before checking its code.
    std::thread::sleep(Duration::from_millis(500));
    let port = free_port();
    let serve = serve(port, &["-p", &pid.to_string(), "--sample", "1s/2s"]);
    serve.wait_line("tracing process", true, LIMIT);
    let (mut seen_on, mut seen_off) = (false, false);
    let until = Instant::now() + LIMIT;
    while !(seen_on && seen_off) {
        assert!(Instant::now() < until, "probes seen attached: {seen_on}, detached: {seen_off}");
        if code_modified(pid, "uv_queue_work") {
            seen_on = true;
        } else {
            seen_off = true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = scrape_until(port, LIMIT, "two sample cycles", |t| {
        value_of(t, "prodtrace_sample_cycles_total", &[]).is_some_and(|c| c >= 2.0)
    });
    assert_eq!(value_of(&text, "prodtrace_sampled_fraction", &[("counts", "raw")]), Some(0.5), "{text}");
    assert!(!counts_of(&text, pid).is_empty(), "operations counted while attached:\n{text}");
    demo.signal(libc::SIGTERM);
    demo.wait(LIMIT);
    drop(serve);
}

/// A C program (Debian's libuv.so) whose 10,000 operations each have their
/// own work callback: 10,000 kinds.  The default cap (100 kinds) exports
/// 100 and counts the rest, with one warning; nothing crashes.
#[test]
fn ten_thousand_kinds_are_capped() {
    const KINDS: usize = 10_000;
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("kinds.c");
    let mut c = String::from(
        "#include <stdio.h>\n#include <unistd.h>\n#include <uv.h>\n\
         static uv_work_t req;\nstatic int next;\n",
    );
    for i in 0..KINDS {
        c.push_str(&format!("static void w{i}(uv_work_t *r) {{ r->data = (void *){i}L; }}\n"));
    }
    c.push_str("static uv_work_cb fns[] = {");
    for i in 0..KINDS {
        c.push_str(&format!("w{i},"));
    }
    c.push_str(&format!(
        "}};\nstatic void done(uv_work_t *r, int status) {{\n\
           if (++next < {KINDS}) uv_queue_work(uv_default_loop(), &req, fns[next], done);\n}}\n\
         int main(void) {{\n  char line[16];\n  printf(\"ready %d\\n\", getpid()); fflush(stdout);\n\
           if (!fgets(line, sizeof line, stdin)) return 1;\n\
           uv_queue_work(uv_default_loop(), &req, fns[0], done);\n  uv_run(uv_default_loop(), UV_RUN_DEFAULT);\n\
           printf(\"done %d\\n\", next); fflush(stdout);\n  while (fgets(line, sizeof line, stdin)) {{}}\n  return 0;\n}}\n"
    ));
    std::fs::write(&src, c).unwrap();
    let exe = dir.path().join("kinds");
    let st = Command::new("cc").args(["-O1", "-fno-ipa-icf", "-o"]).arg(&exe).arg(&src).arg("-luv").status().unwrap();
    assert!(st.success(), "compiling the 10,000-kind program (needs libuv1-dev)");

    let mut prog = Running::start(&mut Command::new(&exe));
    prog.wait_line("ready", false, LIMIT);
    let pid = prog.pid();
    let port = free_port();
    let serve = serve(port, &["-p", &pid.to_string(), "--sample", "off"]);
    serve.wait_line("tracing process", true, LIMIT);
    prog.send_line("go");
    prog.wait_line(&format!("done {KINDS}"), false, LIMIT);
    let pid_s = pid.to_string();
    let labels = [("pid", pid_s.as_str())];
    let text = scrape_until(port, LIMIT, "10,000 operations accounted for", |t| {
        let exported: u64 = counts_of(t, pid).values().sum();
        let capped = value_of(t, "prodtrace_operations_lost_total", &[("pid", &pid_s), ("reason", "kind_cap")]);
        capped.is_some_and(|c| exported + c as u64 == KINDS as u64)
    });
    let kinds = counts_of(&text, pid);
    assert_eq!(kinds.len(), 100, "{kinds:?}");
    assert!(kinds.values().all(|&n| n == 1), "{kinds:?}");
    assert!(kinds.keys().all(|k| k.starts_with("kinds`w")), "{kinds:?}");
    assert_eq!(value_of(&text, "prodtrace_series_dropped_total", &labels), Some((KINDS - 100) as f64));
    assert_eq!(
        value_of(&text, "prodtrace_operations_lost_total", &[("pid", &pid_s), ("reason", "kind_cap")]),
        Some(9900.0)
    );
    serve.wait_line(&format!("process {pid} has more than 100 kinds"), true, LIMIT);
    prog.stdin.take();
    assert!(prog.wait(LIMIT).success());
}

/// Errors are one line and exit 1: a port in use, an address that is not
/// one, a missing host, a process that does not exist, -- CMD.
#[test]
fn bad_addresses_and_busy_ports_are_one_line_errors() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_addr = busy.local_addr().unwrap().to_string();
    let me = std::process::id().to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--serve", &busy_addr, "-p", &me], "the port is in use by another program"),
        (vec!["--serve", "localhost:x", "-p", &me], "not an address: give IP:PORT"),
        (vec!["--serve", ":9464", "-p", &me], "give the address to listen on too"),
        (vec!["--serve", "192.0.2.1:9464", "-p", &me], "no interface of this machine has the address 192.0.2.1"),
        (vec!["--serve", "127.0.0.1:0", "-p", "4194304"], "no process with PID 4194304"),
        (vec!["--serve", "127.0.0.1:0"], "say what to trace: -p PID (may be repeated) and/or --comm NAME"),
        (vec!["--serve", "127.0.0.1:0", "--", "node"], "--serve traces running processes"),
        (vec!["--serve", "127.0.0.1:0", "-p", &me, "--sample", "20s/2s"], "ON must not be longer than PERIOD"),
        (vec!["-p", &me, "-p", &me], "needs --serve ADDR"),
        (vec!["--serve", "127.0.0.1:0", "-p", &me, "--max-kinds", "0"], "--max-kinds 0 would export nothing"),
        (vec!["--serve", "127.0.0.1:0", "-p", &me, "--sample", "2s"], "give ON/PERIOD"),
    ];
    for (args, want) in cases {
        // output() reads stdout and stderr to their end.
        let out = latency(&args).stdin(std::process::Stdio::null()).output().unwrap();
        let err: Vec<String> = String::from_utf8_lossy(&out.stderr).lines().map(String::from).collect();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err:?}");
        assert_eq!(err.len(), 1, "{args:?}: one line: {err:?}");
        assert!(err[0].starts_with("prodtrace: ") && err[0].contains(want), "{args:?}: {err:?}");
    }
    drop(busy);
}

/// The endpoint is read-only and bounded: other paths 404, other methods
/// 405, an oversized request head is refused without harm, idle
/// connections from one client address do not keep another client from
/// scraping, and every scrape still works afterwards.
#[test]
fn http_is_read_only_and_bounded() {
    let demo = batch_demo(std::path::Path::new(NODE), 10);
    let port = free_port();
    let serve = serve(port, &["-p", &demo.pid().to_string(), "--sample", "off"]);
    serve.wait_line("tracing process", true, LIMIT);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));

    assert_eq!(get(port, "/", None).status, 200);
    assert_eq!(get(port, "/debug", None).status, 404);
    let post = http_raw(addr, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi")
        .unwrap();
    assert_eq!(post.status, 405, "{post:?}");
    assert_eq!(post.header("allow").as_deref(), Some("GET, HEAD"));

    // A 1 MiB header: refused (431) or the connection closed, not read whole.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nX-Big: ");
    let big = vec![b'a'; 1 << 20];
    let _ = s.write_all(&big);
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let resp = String::from_utf8_lossy(&resp);
    assert!(resp.is_empty() || resp.starts_with("HTTP/1.1 431"), "{resp}");

    // 40 idle connections from 127.0.0.1 (more than one client may hold)...
    let idle: Vec<TcpStream> = (0..40).filter_map(|_| TcpStream::connect(addr).ok()).collect();
    assert!(!idle.is_empty());
    // ...do not keep a scraper at another address from being served.
    let from = std::net::TcpListener::bind("127.0.0.2:0").map(|_| ()).is_ok();
    assert!(from, "127.0.0.2 is a loopback address");
    let sock = socket2_connect_from([127, 0, 0, 2], addr);
    let text = scrape_over(sock);
    assert!(text.contains("prodtrace_build_info"), "{text}");
    // Once they are closed, 127.0.0.1 is served again (as soon as the
    // server has seen them close).
    drop(idle);
    let until = Instant::now() + LIMIT;
    let req = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    while !http_raw(addr, req).is_ok_and(|r| r.status == 200) {
        assert!(Instant::now() < until, "127.0.0.1 not served again after its idle connections closed");
        std::thread::sleep(Duration::from_millis(100));
    }
    scrape_checked(port);
    drop(serve);
    drop(demo);
}

/// A TCP connection to `to` from the loopback address `from` (std cannot
/// choose the source address; a bound socket via libc can).
fn socket2_connect_from(from: [u8; 4], to: SocketAddr) -> TcpStream {
    use std::os::fd::FromRawFd;
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        let mut local: libc::sockaddr_in = std::mem::zeroed();
        local.sin_family = libc::AF_INET as u16;
        local.sin_addr.s_addr = u32::from_ne_bytes(from);
        assert_eq!(
            libc::bind(fd, &local as *const _ as *const libc::sockaddr, std::mem::size_of_val(&local) as u32),
            0
        );
        let mut remote: libc::sockaddr_in = std::mem::zeroed();
        remote.sin_family = libc::AF_INET as u16;
        remote.sin_port = to.port().to_be();
        remote.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        let rc = libc::connect(fd, &remote as *const _ as *const libc::sockaddr, std::mem::size_of_val(&remote) as u32);
        assert_eq!(rc, 0, "connect: {}", std::io::Error::last_os_error());
        TcpStream::from_raw_fd(fd)
    }
}

fn scrape_over(mut s: TcpStream) -> String {
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{}", &out[..out.len().min(300)]);
    out
}
