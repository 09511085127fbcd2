//! Bad input and faults for `prodtrace latency`: no privileges, a PID that
//! does not exist, a target without libuv, durations too large, a target
//! that exits during attach or while traced, Ctrl-C during attach, naming
//! that blocks, and `kill -9` of prodtrace itself — after which no uprobe
//! breakpoint may remain in the target.
//! Needs root (it drops privileges itself for the not-root case).

mod latency_support;

use std::process::Command;
use std::time::Duration;

use latency_support::*;

const LIMIT: Duration = Duration::from_secs(120);

/// The single line prodtrace printed on stderr.
fn one_error_line(r: &Running) -> String {
    let err = r.stderr();
    assert_eq!(err.len(), 1, "exactly one line on stderr:\n{}", r.output());
    assert!(err[0].starts_with("prodtrace: "), "{}", r.output());
    err[0].clone()
}

#[test]
fn not_root_is_one_line_saying_what_is_needed() {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"])
        .arg(env!("CARGO_BIN_EXE_prodtrace"))
        .args(["latency", "-p", &std::process::id().to_string()]);
    let (st, out) = run(&mut cmd, LIMIT);
    assert_eq!(st.code(), Some(1), "{}", out.output());
    let line = one_error_line(&out);
    assert!(line.contains("needs root") && line.contains("CAP_BPF"), "{line}");
}

#[test]
fn missing_pid() {
    // PIDs are always below pid_max.
    let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max").unwrap().trim().to_string();
    let (st, out) = run(&mut latency(&["-p", &pid_max]), LIMIT);
    assert_eq!(st.code(), Some(1), "{}", out.output());
    assert_eq!(one_error_line(&out), format!("prodtrace: no process with PID {pid_max}"));
}

#[test]
fn nothing_to_trace_is_a_usage_error() {
    let (st, out) = run(&mut latency(&[]), LIMIT);
    assert_eq!(st.code(), Some(1), "{}", out.output());
    assert!(one_error_line(&out).contains("-p PID, or -- CMD"));
}

#[test]
fn target_without_libuv() {
    let mut sleeper = Running::start(Command::new("sleep").arg("30"));
    let (st, out) = run(&mut latency(&["-p", &sleeper.pid().to_string()]), LIMIT);
    assert_eq!(st.code(), Some(1), "{}", out.output());
    let line = one_error_line(&out);
    assert!(line.contains(&format!("process {} (sleep) has no libuv", sleeper.pid())), "{line}");
    assert!(!stopped(sleeper.pid()), "left running");
    sleeper.signal(libc::SIGKILL);
    sleeper.wait(LIMIT);

    // Same with -- CMD: the command, held at exec, is not left behind.
    let (st, out) = run(&mut latency(&["--", "sleep", "30.4317"]), LIMIT);
    assert_eq!(st.code(), Some(1), "{}", out.output());
    assert!(one_error_line(&out).contains("(sleep) has no libuv"));
    let ps = Command::new("pgrep").args(["-f", "sleep 30.4317"]).output().unwrap();
    assert!(ps.stdout.is_empty(), "the held child was killed: {}", String::from_utf8_lossy(&ps.stdout));
}

/// Durations and intervals too large for the clock are refused when the
/// command line is parsed, before anything is attached or started (they
/// panicked: in parsing, or after attaching, adding to an Instant).
#[test]
fn huge_durations_are_refused_up_front() {
    let mut demo = looping_demo();
    std::thread::sleep(Duration::from_millis(500));
    let pid = demo.pid().to_string();
    for (flag, value) in [("-d", "3000000000000000h"), ("-i", "99999999999999999999"), ("-d", "18446744073709551615s")]
    {
        let (st, out) = run(&mut latency(&["-p", &pid, flag, value]), LIMIT);
        assert_eq!(st.code(), Some(2), "a usage error: {}", out.output());
        let err = out.stderr().join("\n");
        assert!(err.contains(&format!("`{value}` is too long: at most a year")), "{}", out.output());
        assert!(!err.contains("panicked"), "{}", out.output());
        assert!(!out.stderr().iter().any(|l| l.starts_with("Tracing")), "nothing attached: {}", out.output());
    }
    assert!(!stopped(demo.pid()) && !code_modified(demo.pid(), "uv_queue_work"));
    demo.signal(libc::SIGTERM);
    assert!(demo.wait(LIMIT).success());

    // With -- CMD the command is never started.
    let (st, out) = run(&mut latency(&["-d", "3000000000000000h", "--", "sleep", "30.4319"]), LIMIT);
    assert_eq!(st.code(), Some(2), "{}", out.output());
    let ps = Command::new("pgrep").args(["-f", "sleep 30.4319"]).output().unwrap();
    assert!(ps.stdout.is_empty(), "not started: {}", String::from_utf8_lossy(&ps.stdout));
}

/// A perf map path removed when dropped.
struct RemoveOnDrop(String);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Naming kinds never holds up the end of a session: `-d` ends tracing on
/// time even when naming blocks — here on a FIFO where node's perf map
/// should be (anyone can create /tmp/perf-PID.map).  Kinds used to be named
/// in the tracing loop, between deadline checks, so a slow name lookup
/// (symbol tables, DWARF, /proc/PID/maps re-read for each unknown address,
/// the perf map re-read for each JIT address) delayed the end — by 10 s on
/// a loaded machine — and this one hung the session for good.
#[test]
fn deadline_holds_when_naming_blocks() {
    let mut cmd = latency(&["--json", "--by", "caller", "-d", "3", "--", "node", "worker-demo.js", "forever", "1"]);
    cmd.env("WORKER_DEMO_WAIT", "stdin");
    let mut tracer = Running::start(&mut cmd);
    let line = tracer.wait_line("Tracing", true, LIMIT);
    let pid = line.split_whitespace().nth(1).unwrap();
    let fifo = RemoveOnDrop(format!("/tmp/perf-{pid}.map"));
    let c = std::ffi::CString::new(fifo.0.clone()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo {}", fifo.0);
    // The demo (prodtrace's child) shares its stdin.
    tracer.send_line("go");
    let st = tracer.wait(LIMIT);
    assert!(st.success(), "{}", tracer.output());
    let got = counts(&json_reports(&tracer)[0]);
    assert!(got["uv_fs_stat"] > 0 && got.len() == 2, "{got:?}");
    let end = tracer.stderr().into_iter().find(|l| l.contains("duration elapsed after")).expect("end line");
    let secs: f64 = end.rsplit(' ').nth(1).unwrap().parse().unwrap();
    assert!(secs < 3.0 + 5.0, "tracing ended on time: {end}");
}

/// The target dies (kill -9) while traced: prodtrace prints what it
/// collected and exits 0.
#[test]
fn target_killed_while_traced() {
    let mut demo = looping_demo();
    std::thread::sleep(Duration::from_millis(500));
    let mut tracer = Running::start(&mut latency(&["-p", &demo.pid().to_string(), "--json"]));
    tracer.wait_line("Tracing", true, LIMIT);
    std::thread::sleep(Duration::from_millis(1000));
    demo.signal(libc::SIGKILL);
    demo.wait(LIMIT);
    assert!(tracer.wait(LIMIT).success(), "{}", tracer.output());
    let reports = json_reports(&tracer);
    assert_eq!(reports.len(), 1, "{}", tracer.output());
    assert!(counts(&reports[0]).values().sum::<u64>() > 0, "{}", tracer.output());
    assert!(tracer.stderr().iter().any(|l| l.contains("process exited")), "{}", tracer.output());
}

/// The target exits while prodtrace is still reading its binaries and
/// attaching: exit 0, nothing collected, no error.
#[test]
fn target_exits_during_attach() {
    for delay_ms in [100, 250] {
        let mut cmd = Command::new(NODE);
        cmd.args(["-e", &format!("console.log('ready'); setTimeout(() => {{}}, {delay_ms})")]);
        let mut target = Running::start(&mut cmd);
        target.wait_line("ready", false, LIMIT);
        let (st, out) = run(&mut latency(&["-p", &target.pid().to_string(), "--json"]), LIMIT);
        target.wait(LIMIT);
        assert!(st.success(), "{}", out.output());
        assert!(
            out.stderr().iter().all(|l| !l.starts_with("prodtrace: ") || l.contains("exited") || l.contains("nothing")),
            "{}",
            out.output()
        );
        assert_eq!(json_reports(&out), vec![Vec::<serde_json::Value>::new()], "{}", out.output());
    }
}

/// Ctrl-C while attaching: exit 0, and the target runs on untouched.
#[test]
fn ctrl_c_during_attach() {
    let mut demo = looping_demo();
    std::thread::sleep(Duration::from_millis(500));
    let pid = demo.pid();
    for delay_ms in [80, 200] {
        let mut tracer = Running::start(&mut latency(&["-p", &pid.to_string()]));
        std::thread::sleep(Duration::from_millis(delay_ms));
        tracer.signal(libc::SIGINT);
        let st = tracer.wait(LIMIT);
        assert_eq!(st.code(), Some(0), "{}", tracer.output());
        assert!(!stopped(pid));
        assert!(!code_modified(pid, "uv_queue_work"), "breakpoint left in uv_queue_work");
        assert!(!code_modified(pid, "uv__queue_done"), "breakpoint left in uv__queue_done");
    }
    demo.signal(libc::SIGTERM);
    assert!(demo.wait(LIMIT).success());
}

/// `kill -9` of prodtrace: the kernel drops its uprobes with its file
/// descriptors (at once for uprobe_multi links, from a work queue for
/// classic uprobes' perf events).  Checked on the target's code itself: while traced it
/// differs from the file (int3 planted); after the kill it is identical.
#[test]
fn no_probe_survives_kill_9() {
    let mut demo = looping_demo();
    std::thread::sleep(Duration::from_millis(500));
    let pid = demo.pid();
    for args in [vec!["-p"], vec!["--breakdown", "-p"]] {
        let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        args.push(pid.to_string());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut tracer = Running::start(&mut latency(&args));
        tracer.wait_line("Tracing", true, LIMIT);
        assert!(code_modified(pid, "uv_queue_work"), "probe planted in uv_queue_work while tracing");
        assert!(code_modified(pid, "uv__queue_done"), "probe planted in uv__queue_done while tracing");
        assert!(code_modified(pid, "uv__work_submit") && code_modified(pid, "uv__fs_done"), "fs probes planted");
        let breakdown = args.contains(&"--breakdown");
        assert_eq!(code_modified(pid, "worker"), breakdown, "worker-loop probes only with --breakdown");
        tracer.signal(libc::SIGKILL);
        tracer.wait(LIMIT);
        for f in ["uv_queue_work", "uv__queue_done", "worker", "uv__work_submit", "uv__fs_done", "uv__random_done"] {
            assert!(code_restored(pid, f), "breakpoint left in {f} after kill -9");
        }
        assert!(!stopped(pid));
    }
    // The target kept working all along.
    demo.signal(libc::SIGTERM);
    assert!(demo.wait(LIMIT).success());
    assert!(demo_summary(&demo)["iterations"].as_u64().unwrap() > 0);
}

/// A normal end (SIGINT) removes the probes too, and prints the report.
#[test]
fn ctrl_c_prints_report_and_removes_probes() {
    let mut demo = looping_demo();
    std::thread::sleep(Duration::from_millis(500));
    let pid = demo.pid();
    let mut tracer = Running::start(&mut latency(&["-p", &pid.to_string()]));
    tracer.wait_line("Tracing", true, LIMIT);
    std::thread::sleep(Duration::from_millis(1000));
    tracer.signal(libc::SIGINT);
    assert!(tracer.wait(LIMIT).success(), "{}", tracer.output());
    assert!(
        tracer.stdout().iter().any(|l| l.starts_with("  node_sqlite3.node`node_sqlite3::Statement::Work_Run")),
        "{}",
        tracer.output()
    );
    assert!(!code_modified(pid, "uv_queue_work") && !code_modified(pid, "uv__queue_done"));
    demo.signal(libc::SIGTERM);
    assert!(demo.wait(LIMIT).success());
}
