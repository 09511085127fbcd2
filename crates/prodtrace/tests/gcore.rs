//! Tests of `prodtrace gcore` on real targets: a multi-threaded C program
//! (compiled here with `cc -g`) and Node itself, checked with gdb, plus the
//! ways it must refuse or fail cleanly (missing PID, traced target, no
//! privileges, unwritable directory, full disk, size limit, target killed
//! during the dump, destinations that are not regular files, a closed
//! stdout, gcore itself interrupted). Needs root, cc, gdb and /usr/bin/node.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const PRODTRACE: &str = env!("CARGO_BIN_EXE_prodtrace");

/// The test program, compiled once per test run (with -g, for gdb).
fn threads_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // Cargo's scratch directory for integration tests (in the target dir).
        let bin = Path::new(env!("CARGO_TARGET_TMPDIR")).join("gcore_threads");
        let src = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/gcore_fixtures/threads.c");
        let st = Command::new("cc").args(["-g", "-O0", "-pthread", "-o"]).arg(&bin).arg(src).status().expect("cc");
        assert!(st.success(), "cc failed");
        bin
    })
}

/// A running instance of the test program; killed on drop.
struct Target {
    child: Child,
    pid: u32,
    counter: PathBuf,
    _dir: tempfile::TempDir,
}

impl Target {
    fn start(extra: &[&str]) -> Target {
        let dir = tempfile::tempdir().unwrap();
        let counter = dir.path().join("counter");
        let mut child =
            Command::new(threads_binary()).arg(&counter).args(extra).stdout(Stdio::piped()).spawn().unwrap();
        let pid: u32 = first_line(&mut child).trim().parse().expect("target prints its PID");
        assert_eq!(pid, child.id());
        let t = Target { child, pid, counter, _dir: dir };
        if !extra.contains(&"stop") {
            t.assert_runs(); // main_loop has started
        }
        t
    }

    fn count(&self) -> u64 {
        std::fs::read_to_string(&self.counter).unwrap_or_default().trim().parse().unwrap_or(0)
    }

    /// Asserts the target is running: its counter advances.
    fn assert_runs(&self) {
        let before = self.count();
        let t0 = Instant::now();
        while self.count() <= before {
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "target {} does not run on (counter stuck at {before})",
                self.pid
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Asserts the target is held in a group-stop after a dump: every
    /// thread stopped, its counter frozen, and no tracer left attached.
    fn assert_stays_stopped(&self) {
        wait_all_stopped(self.pid);
        let count = self.count();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(self.count(), count, "the target ran on after the dump");
        assert_eq!(tracer_pid(self.pid), 0);
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn gcore(args: &[&str]) -> Output {
    Command::new(PRODTRACE).arg("gcore").args(args).output().unwrap()
}

/// Starts `prodtrace gcore PID -o CORE` in the background, its stderr piped.
fn spawn_gcore(pid: u32, core: &Path) -> std::process::Child {
    Command::new(PRODTRACE)
        .args(["gcore", &pid.to_string(), "-o", core.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// State letters of every thread of `pid`.
fn thread_states(pid: u32) -> Vec<char> {
    let mut states = Vec::new();
    for e in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let stat = std::fs::read_to_string(e.unwrap().path().join("stat")).unwrap();
        states.push(stat[stat.rfind(')').unwrap() + 2..].chars().next().unwrap());
    }
    states
}

fn tracer_pid(pid: u32) -> u32 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines().find_map(|l| l.strip_prefix("TracerPid:")).unwrap().trim().parse().unwrap()
}

/// `gdb -batch` on a binary and a core; returns stdout and stderr.
fn gdb(binary: &Path, core: &Path, cmds: &[&str]) -> String {
    let mut cmd = Command::new("gdb");
    cmd.args(["-nx", "-batch"]);
    for c in cmds {
        cmd.args(["-ex", c]);
    }
    let o = cmd.arg(binary).arg(core).output().expect("gdb");
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// The frames of the last backtrace in gdb output (gdb also prints frame
/// #0 alone when it loads the core).
fn last_backtrace(out: &str) -> Vec<String> {
    let mut groups: Vec<Vec<String>> = Vec::new();
    let mut in_group = false;
    for l in out.lines() {
        if l.starts_with('#') {
            if !in_group {
                groups.push(Vec::new());
            }
            groups.last_mut().unwrap().push(l.to_string());
        }
        in_group = l.starts_with('#');
    }
    groups.pop().unwrap_or_default()
}

/// Number of threads `info threads` lists.
fn gdb_thread_count(out: &str) -> usize {
    out.lines()
        .filter(|l| {
            let l = l.trim_start_matches('*').trim_start();
            l.split_whitespace().next().is_some_and(|id| id.parse::<u32>().is_ok()) && l.contains("(LWP ")
        })
        .count()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn c_program_core_loads_in_gdb_and_the_target_runs_on() {
    let t = Target::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let core = dir.path().join("core");
    let o = gcore(&[&t.pid.to_string(), "-o", core.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary = String::from_utf8_lossy(&o.stdout);
    assert!(summary.starts_with(&format!("Saved {}: ", core.display())), "{summary}");
    assert!(summary.contains(", 4 threads, process paused "), "{summary}");
    assert_eq!(mode(&core), 0o600);
    // Only the core: the temporary file was renamed.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    // The target runs on, untraced, not stopped.
    t.assert_runs();
    assert_eq!(tracer_pid(t.pid), 0);
    assert!(thread_states(t.pid).iter().all(|s| !matches!(s, 't' | 'T')), "{:?}", thread_states(t.pid));

    let out = gdb(threads_binary(), &core, &["info threads", "bt", "thread apply all bt"]);
    assert_eq!(gdb_thread_count(&out), 4, "{out}");
    for f in ["main_loop", "worker_sleep", "worker_cond", "worker_spin"] {
        assert!(out.contains(&format!(" {f} (")), "no frame {f} in:\n{out}");
    }
    // `bt` (the selected thread is the main thread) goes through main_loop to main.
    let bt = last_backtrace(&gdb(threads_binary(), &core, &["bt"]));
    assert!(bt.iter().any(|l| l.contains(" main_loop (")), "{bt:?}");
    assert!(bt.iter().any(|l| l.contains(" main (")), "{bt:?}");
    assert!(!out.contains("Cannot access memory"), "{out}");
    assert!(!out.contains("too small"), "{out}");
}

#[test]
fn a_stopped_target_is_dumped_and_left_stopped() {
    let t = Target::start(&[]);
    let pid = t.pid;
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(pid as i32, libc::SIGSTOP) };
    wait_all_stopped(pid);
    let count = t.count();
    let dir = tempfile::tempdir().unwrap();
    let core = dir.path().join("core");
    let o = gcore(&[&pid.to_string(), "-o", core.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("(left stopped, as it was)"));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(thread_states(pid), vec!['T'; 4], "every thread stays in the group-stop");
    assert_eq!(tracer_pid(pid), 0);
    assert_eq!(t.count(), count, "the target did not run");

    let out = gdb(threads_binary(), &core, &["info threads", "thread apply all bt"]);
    assert_eq!(gdb_thread_count(&out), 4, "{out}");
    assert!(out.contains("Program terminated with signal SIGSTOP"), "{out}");
    assert!(out.contains(" main_loop (") && out.contains(" worker_spin ("), "{out}");

    // SIGCONT resumes it.
    unsafe { libc::kill(pid as i32, libc::SIGCONT) };
    t.assert_runs();
}

/// Waits until every thread of `pid` is in a group-stop.
fn wait_all_stopped(pid: u32) {
    let t0 = Instant::now();
    while !thread_states(pid).iter().all(|&s| s == 'T') {
        assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", thread_states(pid));
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Thread ID of the thread named `name` (threads.c names its threads).
fn tid_named(pid: u32, name: &str) -> u32 {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| std::fs::read_to_string(p.join("comm")).unwrap().trim() == name)
        .and_then(|p| p.file_name()?.to_str()?.parse().ok())
        .unwrap()
}

#[test]
fn a_target_stopped_at_a_syscall_exit_keeps_its_registers_and_stays_stopped() {
    // The main thread stops itself with tgkill(SIGSTOP) in stop_here(): the
    // state a BPF program leaves a target in when it sends SIGSTOP at a
    // syscall exit.
    let t = Target::start(&["0", "stop"]);
    wait_all_stopped(t.pid);
    let dir = tempfile::tempdir().unwrap();
    let core = dir.path().join("core");
    let r = corefile::write_core(t.pid, &core, &corefile::Options::default()).unwrap();
    assert!(r.stopped);
    assert_eq!(r.threads, 4);
    // Detached threads re-enter the group-stop (briefly 'R' in the kernel).
    t.assert_stays_stopped();
    let bt = last_backtrace(&gdb(threads_binary(), &core, &["bt"]));
    // #0 in libc's syscall(), #1 stop_here, #2 main: registers of that stop.
    assert!(bt[0].contains("syscall"), "{bt:?}");
    assert!(bt[1].contains(" stop_here ("), "{bt:?}");
    assert!(bt[2].contains(" main ("), "{bt:?}");
    unsafe { libc::kill(t.pid as i32, libc::SIGCONT) };
    t.assert_runs();
}

#[test]
fn a_stop_signal_in_flight_is_not_lost() {
    // SIGSTOP sent and the dump started at once, the way `catch --core`
    // works: some threads are frozen before they reach the group-stop. The
    // dump must not swallow the stop: afterwards the process is stopped.
    // Process-directed (kill) and thread-directed (tgkill, as
    // bpf_send_signal_thread does) stops, to a sleeping and a running thread.
    for round in 0..4 {
        let t = Target::start(&[]);
        let tid = tid_named(t.pid, if round % 2 == 0 { "sleep" } else { "spin" });
        unsafe {
            if round < 2 {
                libc::kill(t.pid as i32, libc::SIGSTOP);
            } else {
                libc::syscall(libc::SYS_tgkill, t.pid, tid, libc::SIGSTOP);
            }
        }
        let core = tempfile::NamedTempFile::new().unwrap();
        let r = corefile::write_core(t.pid, core.path(), &corefile::Options::default()).unwrap();
        assert_eq!(r.threads, 4);
        t.assert_stays_stopped();
        unsafe { libc::kill(t.pid as i32, libc::SIGCONT) };
        t.assert_runs();
    }
}

#[test]
fn first_thread_selects_the_thread_gdb_shows() {
    let t = Target::start(&[]);
    let spin = tid_named(t.pid, "spin");
    let core = tempfile::NamedTempFile::new().unwrap();
    let opts = corefile::Options { first_thread: Some(spin), ..Default::default() };
    corefile::write_core(t.pid, core.path(), &opts).unwrap();
    let out = gdb(threads_binary(), core.path(), &["bt"]);
    assert!(out.contains("[Current thread is 1 (Thread 0x") && out.contains(&format!("(LWP {spin}))]")), "{out}");
    // (It may still be on its way out of the start-up barrier.)
    let bt = last_backtrace(&out);
    assert!(bt.iter().any(|l| l.contains(" worker_spin (")), "{bt:?}");
    t.assert_runs();
}

#[test]
fn threads_created_during_the_dump_do_not_break_it() {
    let t = Target::start(&["0", "churn"]);
    let dir = tempfile::tempdir().unwrap();
    for i in 0..5 {
        let core = dir.path().join(format!("core{i}"));
        let o = gcore(&[&t.pid.to_string(), "-o", core.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        let out = gdb(threads_binary(), &core, &["info threads"]);
        // main, sleep, cond, spin, churn, and maybe one short-lived thread.
        let n = gdb_thread_count(&out);
        assert!((5..=6).contains(&n), "{n} threads:\n{out}");
        t.assert_runs();
        assert_eq!(tracer_pid(t.pid), 0);
    }
}

#[test]
fn node_core_loads_in_gdb_and_is_much_smaller_than_gdbs() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("heap.js");
    // About 30 MB of live JS objects, then an idle event loop.
    std::fs::write(
        &script,
        "const keep = []; for (let i = 0; i < 30; i++) keep.push(Buffer.alloc(1 << 20, i).toString('latin1'));\n\
         setInterval(() => keep.length, 1000); console.log(process.pid);\n",
    )
    .unwrap();
    let mut node = Command::new("/usr/bin/node").arg(&script).stdout(Stdio::piped()).spawn().unwrap();
    first_line(&mut node); // the script is running once it printed its PID
    let pid = node.id().to_string();
    let task_count = || std::fs::read_dir(format!("/proc/{pid}/task")).unwrap().count();
    let before = task_count();

    let core = dir.path().join("core.node");
    let o = gcore(&[&pid, "-o", core.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let after = task_count();
    // Every thread, and the count the summary line gives.
    let out = gdb(Path::new("/usr/bin/node"), &core, &["info threads", "bt"]);
    let n = gdb_thread_count(&out);
    assert!(before.min(after) <= n && n <= before.max(after), "{n} threads, {before}/{after} in /proc:\n{out}");
    let summary = String::from_utf8_lossy(&o.stdout);
    assert!(summary.contains(&format!(", {n} threads, ")), "{summary}");
    assert!(out.contains(" uv_run ("), "{out}");
    assert!(out.contains("epoll_wait") || out.contains("epoll_pwait"), "{out}");
    assert!(out.contains("node::Start"), "{out}");
    assert!(!out.contains("too small"), "{out}");

    // gdb's own gcore of the same process, for the size comparison.
    let prefix = dir.path().join("gdbcore");
    let g = Command::new("gcore").arg("-o").arg(&prefix).arg(&pid).output().unwrap();
    assert!(g.status.success(), "gcore: {}", String::from_utf8_lossy(&g.stderr));
    let gdb_size = std::fs::metadata(format!("{}.{pid}", prefix.display())).unwrap().len();
    let ours = std::fs::metadata(&core).unwrap().len();
    assert!(ours * 4 < gdb_size, "ours {ours} bytes vs gdb's {gdb_size}");
    // Still running: it answers a signal-free liveness check and is untraced.
    assert_eq!(tracer_pid(node.id()), 0);
    node.kill().unwrap();
    node.wait().unwrap();
}

#[test]
fn refuses_a_missing_pid() {
    let o = gcore(&["999999999"]);
    assert!(!o.status.success());
    assert_eq!(stderr(&o), "prodtrace: no process with PID 999999999\n");
}

#[test]
fn refuses_a_thread_id() {
    let t = Target::start(&[]);
    let tid = tid_named(t.pid, "sleep");
    let o = gcore(&[&tid.to_string()]);
    assert!(!o.status.success());
    assert_eq!(stderr(&o), format!("prodtrace: {tid} is a thread of process {0}: dump process {0}\n", t.pid));
}

#[test]
fn refuses_a_kernel_thread() {
    let o = gcore(&["2"]); // kthreadd
    assert!(!o.status.success());
    assert_eq!(stderr(&o), "prodtrace: process 2 is a kernel thread (kthreadd): it has no user memory to dump\n");
}

#[test]
fn refuses_a_target_traced_by_a_debugger() {
    // This test process becomes the tracer of a child held at exec.
    let held = procctl::spawn_stopped(&["sleep".to_string(), "30".to_string()]).unwrap();
    let o = gcore(&[&held.pid.to_string(), "-o", "/tmp/never-written-core"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    // The tracer is this test's thread that spawned the child.
    let tracer = err.split("is already traced by PID ").nth(1).and_then(|r| r.split(' ').next()).unwrap_or("?");
    assert!(Path::new(&format!("/proc/self/task/{tracer}")).exists(), "{err}");
    assert!(err.starts_with(&format!("prodtrace: process {} is already traced by PID {tracer} (", held.pid)), "{err}");
    assert!(err.contains("detach the debugger first"), "{err}");
    assert_eq!(err.lines().count(), 1);
    assert!(!Path::new("/tmp/never-written-core").exists());
    drop(held);
}

#[test]
fn refuses_without_privileges() {
    let t = Target::start(&[]);
    // A copy of prodtrace that user nobody can run.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = dir.path().join("prodtrace");
    // cp(1), not std::fs::copy: a write descriptor of this test process
    // would leak into children other tests fork meanwhile (ETXTBSY at exec).
    assert!(Command::new("cp").arg(PRODTRACE).arg(&bin).status().unwrap().success());
    let o = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"])
        .arg(&bin)
        .args(["gcore", &t.pid.to_string(), "-o", "/tmp/x"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert_eq!(
        stderr(&o),
        format!("prodtrace: dumping process {} needs root or CAP_SYS_PTRACE: run it with sudo\n", t.pid)
    );
    t.assert_runs();
}

/// A tmpfs mounted on a fresh directory, unmounted on drop (even when the
/// test fails).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(opts: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let st = Command::new("mount").args(["-t", "tmpfs", "-o", opts, "tmpfs"]).arg(dir.path()).status().unwrap();
        assert!(st.success(), "mount tmpfs");
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn a_full_disk_leaves_no_file_and_the_target_running() {
    let t = Target::start(&["8"]); // 8 MB touched: more than the 1 MB disk
    let fs = Tmpfs::mount("size=1M");
    let core = fs.path().join("core");
    let o = gcore(&[&t.pid.to_string(), "-o", core.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("No space left on device"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(std::fs::read_dir(fs.path()).unwrap().count(), 0, "no partial file");
    t.assert_runs();
    assert_eq!(tracer_pid(t.pid), 0);
}

#[test]
fn an_unwritable_directory_is_reported_before_touching_the_target() {
    let t = Target::start(&[]);
    let fs = Tmpfs::mount("ro,size=1M");
    let o = gcore(&[&t.pid.to_string(), "-o", fs.path().join("core").to_str().unwrap()]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains(&format!("cannot create a file in {}", fs.path().display())), "{err}");
    assert!(err.contains("Read-only file system"), "{err}");
    assert_eq!(err.lines().count(), 1);
    t.assert_runs();
}

#[test]
fn max_size_is_enforced_with_no_file_left() {
    let t = Target::start(&["8"]);
    let dir = tempfile::tempdir().unwrap();
    let core = dir.path().join("core");
    let o = gcore(&[&t.pid.to_string(), "-o", core.to_str().unwrap(), "--max-size", "1M"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("more than the limit of 1048576 bytes; nothing written"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    t.assert_runs();
    // A limit that fits: written.
    let o = gcore(&[&t.pid.to_string(), "-o", core.to_str().unwrap(), "--max-size", "64M"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::metadata(&core).unwrap().len() <= 64 << 20);
}

#[test]
fn a_target_killed_during_the_dump_gives_a_clean_error() {
    // 1 GB of touched memory keeps the dump going long enough to kill the
    // target at different moments: as soon as the temporary file exists
    // (before the freeze), once it is frozen, and a little later.
    for (round, extra_ms) in [None, Some(0), Some(30)].into_iter().enumerate() {
        let t = Target::start(&["1024"]);
        let dir = tempfile::tempdir().unwrap();
        let core = dir.path().join("core");
        let g = spawn_gcore(t.pid, &core);
        let t0 = Instant::now();
        match extra_ms {
            None => {
                while std::fs::read_dir(dir.path()).unwrap().count() == 0 {
                    assert!(t0.elapsed() < Duration::from_secs(20), "no temporary file");
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
            Some(ms) => {
                while !thread_states(t.pid).contains(&'t') {
                    assert!(t0.elapsed() < Duration::from_secs(20), "never frozen");
                    std::thread::sleep(Duration::from_micros(200));
                }
                std::thread::sleep(Duration::from_millis(ms));
            }
        }
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(t.pid as i32, libc::SIGKILL) };
        let o = g.wait_with_output().unwrap();
        assert!(!o.status.success(), "round {round}");
        assert_eq!(
            stderr(&o),
            format!("prodtrace: process {} exited during the dump; no core written\n", t.pid),
            "round {round}"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no partial file");
    }
}

#[test]
fn refuses_destinations_that_are_not_regular_files_before_touching_the_target() {
    let t = Target::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    let c = |path: &Path| std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: mknod/mkfifo on valid paths; a copy of /dev/null (1, 3).
    unsafe {
        assert_eq!(libc::mknod(c(&p("null")).as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)), 0);
        assert_eq!(libc::mkfifo(c(&p("fifo")).as_ptr(), 0o600), 0);
    }
    std::os::unix::fs::symlink("/proc/self/fd/1", p("fd1")).unwrap();
    std::os::unix::fs::symlink(p("null"), p("to-null")).unwrap();
    use std::os::unix::fs::FileTypeExt;
    type IsKind = fn(&std::fs::FileType) -> bool;
    let cases: [(&str, &str, IsKind); 4] = [
        ("null", "a character device", |t| t.is_char_device()),
        ("fifo", "a FIFO", |t| t.is_fifo()),
        ("fd1", "a symbolic link (to /proc/self/fd/1)", |t| t.is_symlink()),
        ("to-null", "a symbolic link (to ", |t| t.is_symlink()),
    ];
    for (name, what, still) in cases {
        let o = gcore(&[&t.pid.to_string(), "-o", p(name).to_str().unwrap()]);
        assert!(!o.status.success(), "{name}");
        let err = stderr(&o);
        assert!(err.starts_with(&format!("prodtrace: cannot write {}: it is {what}", p(name).display())), "{err}");
        assert!(err.ends_with("; a core is written only to a new name or over a regular file\n"), "{err}");
        assert!(still(&std::fs::symlink_metadata(p(name)).unwrap().file_type()), "{name} was replaced");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 4, "nothing else written");
    t.assert_runs();
    assert_eq!(tracer_pid(t.pid), 0);
}

#[test]
fn a_missing_directory_is_refused_before_the_dump() {
    let t = Target::start(&[]);
    let cwd = tempfile::tempdir().unwrap();
    for (dest, why) in [("newdir/", "no such directory"), ("newdir/core", "directory newdir does not exist")] {
        let o = Command::new(PRODTRACE)
            .args(["gcore", &t.pid.to_string(), "-o", dest])
            .current_dir(cwd.path())
            .output()
            .unwrap();
        assert!(!o.status.success());
        assert_eq!(stderr(&o), format!("prodtrace: cannot write {dest}: {why}\n"));
        assert_eq!(std::fs::read_dir(cwd.path()).unwrap().count(), 0, "nothing written");
    }
    t.assert_runs();
}

#[test]
fn a_closed_or_full_stdout_still_gives_the_core() {
    let t = Target::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    for full in [false, true] {
        let core = dir.path().join(format!("core-{full}"));
        let mut cmd = Command::new(PRODTRACE);
        cmd.args(["gcore", &t.pid.to_string(), "-o", core.to_str().unwrap()]).stderr(Stdio::piped());
        let o = if full {
            cmd.stdout(std::fs::File::create("/dev/full").unwrap()).output().unwrap()
        } else {
            let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
            drop(child.stdout.take()); // nobody reads: writing fails with EPIPE
            child.wait_with_output().unwrap()
        };
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(0), "{err}");
        let why = if full { "No space left on device" } else { "Broken pipe" };
        assert!(err.starts_with(&format!("prodtrace: cannot write to standard output ({why})")), "{err}");
        assert!(err.contains(&format!("Saved {}: ", core.display())), "{err}");
        assert!(core.exists());
        t.assert_runs();
    }
}

#[test]
fn an_interrupted_gcore_leaves_no_file_and_the_target_as_it_was() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        let t = Target::start(&["1024"]);
        let dir = tempfile::tempdir().unwrap();
        let core = dir.path().join("core");
        let g = spawn_gcore(t.pid, &core);
        // Interrupted once the target is frozen: 1 GB is still to copy and write.
        let t0 = Instant::now();
        while !thread_states(t.pid).contains(&'t') {
            assert!(t0.elapsed() < Duration::from_secs(20), "never frozen");
            std::thread::sleep(Duration::from_micros(200));
        }
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(g.id() as i32, sig) };
        let o = g.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(1), "signal {sig}: {}", stderr(&o));
        assert_eq!(
            stderr(&o),
            format!("prodtrace: interrupted; no core written (process {} is as it was before the dump)\n", t.pid)
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "signal {sig}: a file was left");
        t.assert_runs();
        assert_eq!(tracer_pid(t.pid), 0);
    }
}

#[test]
fn the_size_given_by_max_size_is_the_size_written() {
    // A stopped target: its memory does not change between the runs.
    let t = Target::start(&["8"]);
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(t.pid as i32, libc::SIGSTOP) };
    wait_all_stopped(t.pid);
    let dir = tempfile::tempdir().unwrap();
    let core = dir.path().join("core");
    let o = gcore(&[&t.pid.to_string(), "-o", core.to_str().unwrap(), "--max-size", "1"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    let size: u64 = err
        .strip_prefix("prodtrace: the core would be ")
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{err}"));
    let o = gcore(&[&t.pid.to_string(), "-o", core.to_str().unwrap(), "--max-size", &size.to_string()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::metadata(&core).unwrap().len(), size);
    let o = gcore(&[&t.pid.to_string(), "-o", core.to_str().unwrap(), "--max-size", &(size - 1).to_string()]);
    assert!(stderr(&o).starts_with(&format!("prodtrace: the core would be {size} bytes")), "{}", stderr(&o));
    unsafe { libc::kill(t.pid as i32, libc::SIGCONT) };
    t.assert_runs();
}

#[test]
fn refuses_a_zombie() {
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    let pid = child.id();
    child.kill().unwrap();
    let t0 = Instant::now();
    while thread_states(pid) != vec!['Z'] {
        assert!(t0.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(5));
    }
    let o = gcore(&[&pid.to_string()]);
    assert_eq!(
        stderr(&o),
        format!(
            "prodtrace: process {pid} is a zombie: it has exited and waits for its parent {} ({}) to collect its \
             exit status; there is nothing left to dump\n",
            std::process::id(),
            std::fs::read_to_string(format!("/proc/{}/comm", std::process::id())).unwrap().trim()
        )
    );
    child.wait().unwrap();
}

/// Waits for and returns the first line a child writes to its (piped) stdout.
fn first_line(child: &mut std::process::Child) -> String {
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    line
}
