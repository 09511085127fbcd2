//! Helpers shared by the `prodtrace latency` integration tests: running the
//! real prodtrace binary, node with the sqlite3 demo, bpftrace as the
//! independent count of operations, the C libuv.so program; reading
//! prodtrace's JSON and text output; and checking a target's code for
//! uprobe breakpoints left behind.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

pub fn node_dir() -> PathBuf {
    repo().join("examples/node")
}

pub const NODE: &str = "/usr/bin/node";

/// How the tests make prodtrace attach its uprobes: the `*_classic` test
/// crates (latency_classic.rs, latency_faults_classic.rs, which include the
/// tests of latency.rs and latency_faults.rs) force classic uprobes, the
/// others leave prodtrace to choose (uprobe_multi links on this kernel).
pub fn uprobes_mode() -> &'static str {
    if env!("CARGO_CRATE_NAME").ends_with("_classic") {
        "classic"
    } else {
        "auto"
    }
}

/// `prodtrace latency ARGS...`, run in examples/node.
pub fn latency(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_prodtrace"));
    c.arg("latency").args(args).current_dir(node_dir()).env("PRODTRACE_UPROBES", uprobes_mode());
    c
}

/// A running child whose stdout and stderr lines are collected by threads.
pub struct Running {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    out: Arc<Mutex<Vec<String>>>,
    err: Arc<Mutex<Vec<String>>>,
    out_rx: Receiver<String>,
    err_rx: Receiver<String>,
    /// Set when stdout, stderr reached end of file.
    out_eof: Arc<AtomicBool>,
    err_eof: Arc<AtomicBool>,
}

/// Collects the lines of `r` in a thread: (lines so far, each line as it
/// comes, end of file reached).
fn pump(r: impl Read + Send + 'static) -> (Arc<Mutex<Vec<String>>>, Receiver<String>, Arc<AtomicBool>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let eof = Arc::new(AtomicBool::new(false));
    let (tx, rx) = channel();
    let (l, e) = (lines.clone(), eof.clone());
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            l.lock().unwrap().push(line.clone());
            let _ = tx.send(line);
        }
        e.store(true, Ordering::SeqCst);
    });
    (lines, rx, eof)
}

impl Running {
    pub fn start(cmd: &mut Command) -> Running {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let stdin = child.stdin.take();
        let (out, out_rx, out_eof) = pump(child.stdout.take().unwrap());
        let (err, err_rx, err_eof) = pump(child.stderr.take().unwrap());
        Running { child, stdin, out, err, out_rx, err_rx, out_eof, err_eof }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for a stdout (or stderr) line containing `needle`.
    pub fn wait_line(&self, needle: &str, stderr: bool, limit: Duration) -> String {
        let rx = if stderr { &self.err_rx } else { &self.out_rx };
        let until = Instant::now() + limit;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!("no line containing {needle:?} within {limit:?}; output so far:\n{}", self.output()),
            }
        }
    }

    pub fn send_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    pub fn signal(&self, sig: i32) {
        unsafe { libc::kill(self.pid() as i32, sig) };
    }

    /// Waits for exit, failing (and killing) after `limit`.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let until = Instant::now() + limit;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                // Let the reader threads read the last lines: until both
                // pipes are at end of file (or 10 s, when a process the
                // child started still holds them).
                let until = Instant::now() + Duration::from_secs(10);
                while !(self.out_eof.load(Ordering::SeqCst) && self.err_eof.load(Ordering::SeqCst))
                    && Instant::now() < until
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                return st;
            }
            if Instant::now() > until {
                let _ = self.child.kill();
                panic!("{:?} did not exit within {limit:?}; output:\n{}", self.child.id(), self.output());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stdout(&self) -> Vec<String> {
        self.out.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> Vec<String> {
        self.err.lock().unwrap().clone()
    }

    pub fn output(&self) -> String {
        format!("--- stdout\n{}\n--- stderr\n{}", self.stdout().join("\n"), self.stderr().join("\n"))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs to completion with a time limit.
pub fn run(cmd: &mut Command, limit: Duration) -> (ExitStatus, Running) {
    let mut r = Running::start(cmd);
    r.stdin.take();
    let st = r.wait(limit);
    (st, r)
}

/// The sqlite demo with a fixed number of iterations, loaded and waiting
/// for a line on stdin before it starts.
pub fn waiting_demo(iterations: u32) -> Running {
    let mut cmd = Command::new(NODE);
    cmd.arg("sqlite-demo.js")
        .current_dir(node_dir())
        .env("SQLITE_DEMO_WAIT", "stdin")
        .env("SQLITE_DEMO_ITERATIONS", iterations.to_string());
    let r = Running::start(&mut cmd);
    r.wait_line("ready", false, Duration::from_secs(20));
    r
}

/// The sqlite demo looping until SIGTERM.
pub fn looping_demo() -> Running {
    let mut cmd = Command::new(NODE);
    cmd.arg("sqlite-demo.js").current_dir(node_dir());
    Running::start(&mut cmd)
}

/// The demo's `{"sqlite_demo": {...}}` summary line.
pub fn demo_summary(r: &Running) -> Value {
    r.stdout()
        .iter()
        .find_map(|l| serde_json::from_str::<Value>(l).ok().filter(|v| v.get("sqlite_demo").is_some()))
        .unwrap_or_else(|| panic!("no demo summary in:\n{}", r.output()))["sqlite_demo"]
        .clone()
}

/// The JSON arrays prodtrace printed (one per line).
pub fn json_reports(r: &Running) -> Vec<Vec<Value>> {
    r.stdout()
        .iter()
        .filter(|l| l.starts_with('['))
        .map(|l| serde_json::from_str::<Value>(l).unwrap().as_array().unwrap().clone())
        .collect()
}

/// `kind -> count` of one JSON report.
pub fn counts(report: &[Value]) -> BTreeMap<String, u64> {
    report.iter().map(|k| (k["kind"].as_str().unwrap().to_string(), k["count"].as_u64().unwrap())).collect()
}

/// Operations per iteration of sqlite-demo.js, by N-API execute callback
/// (established independently by `counts_match_bpftrace_exactly`).
pub const PER_ITERATION: [(&str, u64); 6] = [
    ("node_sqlite3::Database::Work_Open", 1),
    ("node_sqlite3::Database::Work_Exec", 1),
    ("node_sqlite3::Database::Work_Close", 1),
    ("node_sqlite3::Statement::Work_Prepare", 2),
    ("node_sqlite3::Statement::Work_Bind", 1),
    ("node_sqlite3::Statement::Work_Run", 11),
];

pub fn expected_counts(iterations: u64) -> BTreeMap<String, u64> {
    PER_ITERATION.iter().map(|(k, n)| (k.to_string(), n * iterations)).collect()
}

/// Checks a kind's statistics are self-consistent and plausible latencies.
pub fn assert_plausible(k: &Value) {
    let n = |f: &str| k[f].as_u64().unwrap_or_else(|| panic!("{f} missing in {k}"));
    let (count, min, max) = (n("count"), n("min_ns"), n("max_ns"));
    assert!(count > 0, "{k}");
    assert!(min > 0, "zero latency: {k}");
    assert!(max < 10_000_000_000, "latency over 10 s: {k}");
    assert!(
        min <= n("p50_ns") && n("p50_ns") <= n("p90_ns") && n("p90_ns") <= n("p99_ns") && n("p99_ns") <= max,
        "{k}"
    );
    assert!(n("sum_ns") >= count * min && n("sum_ns") <= count * max, "{k}");
    let buckets = k["buckets"].as_array().unwrap();
    let total: u64 = buckets.iter().map(|b| b[1].as_u64().unwrap()).sum();
    assert_eq!(total, count, "bucket counts add up: {k}");
    for b in buckets {
        let lo = b[0].as_u64().unwrap();
        assert!(lo == 0 || lo.is_power_of_two(), "{k}");
    }
    let first = buckets[0][0].as_u64().unwrap();
    assert!(first <= min && min < first.max(1) * 2, "min in the first bucket: {k}");
}

/// bpftrace counting, for process `pid`, calls of every N-API execute
/// callback of the sqlite3 add-on (worker threads) and of uv_queue_work.
pub struct Bpftrace {
    pub run: Running,
}

pub fn addon_path() -> PathBuf {
    node_dir().join("node_modules/sqlite3/build/Release/node_sqlite3.node")
}

impl Bpftrace {
    pub fn count_operations(pid: u32) -> Bpftrace {
        let script = format!(
            "uprobe:{addon}:*Work_* /pid == {pid}/ {{ @[probe] = count(); }}\n\
             uprobe:{NODE}:uv_queue_work /pid == {pid}/ {{ @queued = count(); }}\n",
            addon = addon_path().display()
        );
        // -p binds the uprobes to the process: without it bpftrace plants
        // them in every node process, including other tests' targets, whose
        // code those tests check for breakpoints left behind.
        let mut cmd = Command::new("bpftrace");
        cmd.arg("-p").arg(pid.to_string()).arg("-e").arg(script);
        let run = Running::start(&mut cmd);
        run.wait_line("Attaching", false, Duration::from_secs(60));
        // bpftrace prints "Attaching" before it attaches: wait until its
        // breakpoints are in the target's code, for every execute callback
        // and uv_queue_work, so that no operation escapes the count.
        let execs: Vec<String> = function_symbols(&addon_path())
            .into_iter()
            .map(|(name, _, _)| name)
            .filter(|n| napi_execute_name(n).is_some())
            .collect();
        assert!(!execs.is_empty());
        let until = Instant::now() + Duration::from_secs(60);
        while !(code_modified(pid, "uv_queue_work") && execs.iter().all(|f| file_code_modified(pid, &addon_path(), f)))
        {
            assert!(Instant::now() < until, "bpftrace did not attach within 60 s:\n{}", run.output());
            std::thread::sleep(Duration::from_millis(50));
        }
        Bpftrace { run }
    }

    /// Stops bpftrace and returns (execute callback name -> calls, uv_queue_work calls).
    pub fn finish(mut self) -> (BTreeMap<String, u64>, u64) {
        self.run.signal(libc::SIGINT);
        self.run.wait(Duration::from_secs(60));
        let mut execs = BTreeMap::new();
        let mut queued = 0;
        for line in self.run.stdout() {
            if let Some(v) = line.strip_prefix("@queued: ") {
                queued = v.trim().parse().unwrap();
            } else if let Some((probe, n)) = line.strip_prefix("@[").and_then(|l| l.split_once("]: ")) {
                let mangled = probe.rsplit(':').next().unwrap();
                if let Some(name) = napi_execute_name(mangled) {
                    execs.insert(name, n.trim().parse().unwrap());
                }
            }
        }
        (execs, queued)
    }
}

/// `node_sqlite3::Class::Work_X` for a mangled N-API execute callback
/// `_ZN12node_sqlite3<n>Class<n>Work_XEP10napi_env__Pv` (signature
/// `(napi_env, void*)`), `None` for other functions.
pub fn napi_execute_name(mangled: &str) -> Option<String> {
    let mut rest = mangled.strip_prefix("_ZN")?.strip_suffix("EP10napi_env__Pv")?;
    let mut parts = Vec::new();
    while !rest.is_empty() {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        let len: usize = rest[..digits].parse().ok()?;
        parts.push(&rest[digits..digits + len]);
        rest = &rest[digits + len..];
    }
    Some(parts.join("::"))
}

/// `(name, address, size)` of the sized function symbols of an ELF file, from `nm -S`.
pub fn function_symbols(file: &Path) -> Vec<(String, u64, u64)> {
    let out = Command::new("nm").arg("-S").arg(file).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<_> = l.split_whitespace().collect();
            (f.len() == 4 && matches!(f[2], "T" | "t" | "W" | "w")).then(|| {
                (f[3].to_string(), u64::from_str_radix(f[0], 16).unwrap(), u64::from_str_radix(f[1], 16).unwrap())
            })
        })
        .collect()
}

/// Whether the code of function `func` of `file` (a non-PIE executable or a
/// shared library) in process `pid` differs from the file's contents —
/// i.e. a uprobe breakpoint (int3) is planted in it.
pub fn file_code_modified(pid: u32, file: &Path, func: &str) -> bool {
    let (_, addr, size) = function_symbols(file)
        .into_iter()
        .find(|(n, _, _)| n == func)
        .unwrap_or_else(|| panic!("{func} not in {}", file.display()));
    let canon = file.canonicalize().unwrap();
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mappings: Vec<(u64, u64, u64)> = maps
        .lines()
        .filter_map(|l| {
            let f: Vec<_> = l.split_whitespace().collect();
            let (s, e) = f[0].split_once('-').unwrap();
            (f.len() >= 6 && Path::new(f[5]) == canon).then(|| {
                (
                    u64::from_str_radix(s, 16).unwrap(),
                    u64::from_str_radix(e, 16).unwrap(),
                    u64::from_str_radix(f[2], 16).unwrap(),
                )
            })
        })
        .collect();
    assert!(!mappings.is_empty(), "{} not mapped in {pid}", file.display());
    // Load bias: 0 for non-PIE node, the lowest mapping for a library.
    let bias = if file == Path::new(NODE) { 0 } else { mappings.iter().map(|m| m.0).min().unwrap() };
    let live_addr = addr + bias;
    let (start, _, offset) = *mappings
        .iter()
        .find(|m| live_addr >= m.0 && live_addr < m.1)
        .unwrap_or_else(|| panic!("{func} not in a mapping of {}", file.display()));
    let mut live = vec![0u8; size as usize];
    let mem = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
    std::os::unix::fs::FileExt::read_exact_at(&mem, &mut live, live_addr).unwrap();
    let mut disk = vec![0u8; size as usize];
    let f = std::fs::File::open(file).unwrap();
    std::os::unix::fs::FileExt::read_exact_at(&f, &mut disk, live_addr - start + offset).unwrap();
    live != disk
}

/// [`file_code_modified`] for a function of /usr/bin/node.
pub fn code_modified(pid: u32, func: &str) -> bool {
    file_code_modified(pid, Path::new(NODE), func)
}

/// Whether function `func` of /usr/bin/node in process `pid` is (or within
/// 10 s becomes) identical to the file: after prodtrace was killed, the
/// kernel removes classic uprobes from a work queue (it closes the perf
/// events a dead process held after it is gone), so not at once.
pub fn code_restored(pid: u32, func: &str) -> bool {
    let until = Instant::now() + Duration::from_secs(10);
    while code_modified(pid, func) {
        if Instant::now() > until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// Whether the process is stopped (state T or t).
pub fn stopped(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rfind(')').and_then(|i| stat[i + 1..].trim_start().chars().next());
    matches!(state, Some('T') | Some('t'))
}

/// Compiles examples/c/uv-work.c against libuv.so into `dir`.
pub fn build_uv_work(dir: &Path) -> PathBuf {
    let exe = dir.join("uv-work");
    let st = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&exe)
        .arg(repo().join("examples/c/uv-work.c"))
        .arg("-luv")
        .status()
        .expect("cc");
    assert!(st.success(), "compiling uv-work.c (needs libuv1-dev)");
    exe
}
