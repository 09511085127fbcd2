//! Helpers shared by the `prodtrace catch` integration tests: running the
//! real `prodtrace` binary with a time limit, compiling the C test programs
//! from `examples/c/`, reading process state, and asking gdb for stacks.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// The prodtrace binary under test.
pub fn prodtrace_bin() -> &'static str {
    env!("CARGO_BIN_EXE_prodtrace")
}

/// `prodtrace catch ARGS...`.
pub fn catch(args: &[&str]) -> Command {
    let mut c = Command::new(prodtrace_bin());
    c.arg("catch").args(args);
    c
}

/// Result of a finished command.
pub struct Out {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// Both streams, for assertion messages.
    pub fn all(&self) -> String {
        format!("status {:?}\n--- stdout\n{}--- stderr\n{}", self.status, self.stdout, self.stderr)
    }
}

/// Runs `cmd` to completion, killing it and failing after `limit`.
pub fn run(cmd: &mut Command, limit: Duration) -> Out {
    let child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    finish(child, limit)
}

/// Collects a spawned child's output (stdout and stderr piped), killing it
/// and failing after `limit`.  A process the command started may keep the
/// pipes open (a target left stopped): output is taken once the command
/// itself has exited, without waiting for EOF for more than a second.
pub fn finish(mut child: Child, limit: Duration) -> Out {
    let out = child.stdout.take().map(collect);
    let err = child.stderr.take().map(collect);
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("command did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Out {
        status,
        stdout: out.map(Collected::take).unwrap_or_default(),
        stderr: err.map(Collected::take).unwrap_or_default(),
    }
}

/// Output of a pipe, read by a background thread.
struct Collected {
    buf: Arc<Mutex<Vec<u8>>>,
    done: Arc<AtomicBool>,
}

impl Collected {
    fn take(self) -> String {
        wait_for(Duration::from_secs(1), || self.done.load(Ordering::SeqCst));
        let buf = self.buf.lock().unwrap();
        String::from_utf8_lossy(&buf).into_owned()
    }
}

fn collect<R: Read + Send + 'static>(mut pipe: R) -> Collected {
    let buf: Arc<Mutex<Vec<u8>>> = Arc::default();
    let done: Arc<AtomicBool> = Arc::default();
    let (b, d) = (buf.clone(), done.clone());
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut chunk) {
            if n == 0 {
                break;
            }
            b.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
        d.store(true, Ordering::SeqCst);
    });
    Collected { buf, done }
}

/// Starts prodtrace and waits until it reports that it is catching (the
/// probe is attached); returns the child (stdout still piped) and its
/// stderr, which a background thread keeps collecting.
pub fn start_catching(cmd: &mut Command) -> (Child, Arc<Mutex<String>>) {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut reader = BufReader::new(child.stderr.take().unwrap());
    let stderr: Arc<Mutex<String>> = Arc::default();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 {
            let _ = child.kill();
            panic!("prodtrace ended before catching: {}", stderr.lock().unwrap());
        }
        stderr.lock().unwrap().push_str(&line);
        if line.contains("catching") {
            break;
        }
    }
    // Keep draining stderr so prodtrace never blocks on a full pipe.
    let sink = stderr.clone();
    std::thread::spawn(move || {
        for line in reader.lines().map_while(Result::ok) {
            let mut s = sink.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
    (child, stderr)
}

/// Compiles `examples/c/NAME.c` into `dir/OUT` (gcc, -O2 -g, no frame
/// pointers: stacks must be unwound with DWARF).
pub fn build_c(name: &str, dir: &Path, out: &str) -> PathBuf {
    let src = repo().join(format!("examples/c/{name}.c"));
    let bin = dir.join(out);
    let st = Command::new("cc")
        .args(["-O2", "-g", "-fomit-frame-pointer", "-o"])
        .arg(&bin)
        .arg(&src)
        .status()
        .expect("cc (gcc) must be installed");
    assert!(st.success(), "compiling {}", src.display());
    bin
}

/// The state letter of process `pid` (None when gone).
pub fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rfind(')').and_then(|i| stat[i + 1..].trim_start().chars().next())
}

/// State letters of every thread of `pid`.
pub fn thread_states(pid: u32) -> Vec<char> {
    let mut v = Vec::new();
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap().flatten() {
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap();
        v.push(stat.rfind(')').and_then(|i| stat[i + 1..].trim_start().chars().next()).unwrap());
    }
    v
}

/// Polls `cond` every 10 ms for up to `limit`.
pub fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `gdb -batch ... -ex bt` on a core file.
pub fn gdb_core_bt(binary: &Path, core: &Path) -> String {
    let out = run(
        Command::new("gdb").args(["-batch", "-nx", "-ex", "info threads", "-ex", "bt"]).arg(binary).arg(core),
        Duration::from_secs(120),
    );
    format!("{}{}", out.stdout, out.stderr)
}

/// `gdb -batch -p PID -ex bt` (gdb attaches and detaches; a process in
/// group-stop stays stopped).
pub fn gdb_pid_bt(pid: u32) -> String {
    let out =
        run(Command::new("gdb").args(["-batch", "-nx", "-p", &pid.to_string(), "-ex", "bt"]), Duration::from_secs(120));
    format!("{}{}", out.stdout, out.stderr)
}

/// The PID in `... resume it with: kill -CONT PID ...`.
pub fn resume_pid(stdout: &str) -> u32 {
    let at = stdout.find("kill -CONT ").expect("prodtrace said how to resume");
    stdout[at + 11..].split_whitespace().next().unwrap().parse().unwrap()
}

/// The frame names of a printed user stack, innermost first.
pub fn stack_names(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|l| l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_string))
        .collect()
}

/// The frame lines (`#N ...`) of the last backtrace in gdb's output (gdb
/// also prints frame #0 once when it loads a core).
pub fn bt_frames(gdb_output: &str) -> Vec<String> {
    let lines: Vec<&str> = gdb_output.lines().collect();
    let start = lines.iter().rposition(|l| l.starts_with("#0 ")).unwrap_or(lines.len());
    lines[start..].iter().filter(|l| l.starts_with('#')).map(|l| l.to_string()).collect()
}

/// Held by the tests of one test binary that run catch sessions that stop
/// processes: a session that may stop any process (`--comm`) refuses to
/// start beside another stopping session, and tests run in parallel.
pub fn stopping_sessions() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The PID in the banner `prodtrace: catching ... in process N ...`.
pub fn banner_pid(stderr: &str) -> u32 {
    let at = stderr.find(" in process ").expect("a banner naming the process");
    stderr[at + 12..].split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
}

/// Sends `sig` to `pid`.
pub fn signal(pid: u32, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig).unwrap();
}

/// Makes `cmd`'s child start with a core file size limit of 0 (the
/// default on most hosts), which `catch --abort` must report.
pub fn core_limit_zero(cmd: &mut Command) {
    // SAFETY: setrlimit is async-signal-safe.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(cmd, || {
            let zero = libc::rlimit { rlim_cur: 0, rlim_max: libc::RLIM_INFINITY };
            libc::setrlimit(libc::RLIMIT_CORE, &zero);
            Ok(())
        });
    }
}

/// Compiles `examples/c/threads_badclose.c` into `dir/tbc`.
pub fn build_threads_badclose(dir: &Path) -> PathBuf {
    let bin = dir.join("tbc");
    let st = Command::new("cc")
        .args(["-O2", "-g", "-pthread", "-o"])
        .arg(&bin)
        .arg(repo().join("examples/c/threads_badclose.c"))
        .status()
        .unwrap();
    assert!(st.success());
    bin
}
