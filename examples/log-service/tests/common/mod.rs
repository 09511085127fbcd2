//! Helpers for the end-to-end tests: locating the built binaries, running
//! the example service and snoopers as child processes, reading their output
//! line by line, and reading probe semaphores.

#![allow(dead_code)] // each test binary uses a subset

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, ChildStdout, Command, Stdio},
    sync::mpsc::{self, Receiver},
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

/// The example service binary built with this test.
pub fn service_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_log-service"))
}

/// Copies an executable with cp(1) rather than `std::fs::copy`: a write
/// descriptor held by this multi-threaded test process leaks into the
/// children other tests fork meanwhile, and exec'ing the copy then fails
/// with ETXTBSY ("Text file busy") until they exec.
pub fn copy_executable(from: &Path, to: &Path) {
    let st = Command::new("cp").arg(from).arg(to).status().expect("running cp");
    assert!(st.success(), "cp {} {}", from.display(), to.display());
}

/// A binary of another workspace package in the same target directory
/// (`target/release/NAME`); fails with a hint when it was not built.
pub fn sibling_bin(name: &str, package: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target/release");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build it first (cargo build --release -p {package}, or the whole workspace)",
        path.display()
    );
    path
}

/// Lines of a child's stdout, arriving on a channel.
pub struct Lines(Receiver<String>);

impl Lines {
    pub fn new(out: ChildStdout) -> Lines {
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines(rx)
    }

    /// The next line, waiting at most `timeout`; None at EOF or timeout.
    pub fn next(&self, timeout: Duration) -> Option<String> {
        self.0.recv_timeout(timeout).ok()
    }

    /// Every line until EOF (waits at most `timeout` in total).
    pub fn rest(&self, timeout: Duration) -> Vec<String> {
        let end = Instant::now() + timeout;
        let mut out = Vec::new();
        while let Some(l) = self.next(end.saturating_duration_since(Instant::now())) {
            out.push(l);
        }
        out
    }
}

/// A running child process, killed when dropped.
pub struct Proc {
    pub child: Child,
    pub stdout: Lines,
}

impl Proc {
    pub fn spawn(cmd: &mut Command) -> Proc {
        let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
        let stdout = Lines::new(child.stdout.take().unwrap());
        Proc { child, stdout }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends `sig` to this child (only to it, by PID).
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's PID.
        assert_eq!(unsafe { libc::kill(self.pid(), sig) }, 0, "kill({}, {sig})", self.pid());
    }

    /// Waits for the exit status, at most `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let end = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(Instant::now() < end, "process {} did not exit within {timeout:?}", self.pid());
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the example service with `args`, stdout piped, stderr inherited.
pub fn start_service(args: &[&str]) -> Proc {
    let svc = Proc::spawn(Command::new(service_bin()).args(args));
    // Wait for its first record: it is up and its probes are mapped.
    let first = svc.stdout.next(Duration::from_secs(10)).expect("service printed its start record");
    assert!(first.contains("log-service started"), "{first}");
    svc
}

/// Parses a JSON object line (panics with the line otherwise).
pub fn record(line: &str) -> serde_json::Map<String, Value> {
    match serde_json::from_str(line) {
        Ok(Value::Object(m)) => m,
        _ => panic!("not a JSON record: {line:?}"),
    }
}

/// The values of all six bunyan probe semaphores of `pid`, by probe name.
pub fn semaphores(pid: i32) -> Vec<(String, u16)> {
    let mut s: Vec<_> =
        bunyan_snoop::semaphores(pid).expect("reading semaphores").into_iter().map(|s| (s.probe, s.value)).collect();
    s.sort();
    assert_eq!(s.len(), 6, "six bunyan probes with semaphores: {s:?}");
    s
}

/// Waits until every semaphore of `pid` equals `value` (the kernel updates
/// them as links come and go); panics with the last values on timeout.
pub fn wait_semaphores(pid: i32, value: u16, timeout: Duration) {
    let end = Instant::now() + timeout;
    loop {
        let s = semaphores(pid);
        if s.iter().all(|(_, v)| *v == value) {
            return;
        }
        assert!(Instant::now() < end, "semaphores of {pid} should all be {value}: {s:?}");
        thread::sleep(Duration::from_millis(20));
    }
}
