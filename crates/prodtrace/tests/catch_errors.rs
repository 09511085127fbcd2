//! Bad input to `prodtrace catch`: each case must end with one clear line on
//! stderr, exit status 1, and leave any target running as it was.

mod catch_support;

use std::process::{Command, Stdio};
use std::time::Duration;

use catch_support::*;

const LIMIT: Duration = Duration::from_secs(60);

/// Runs prodtrace, expects failure, returns its one-line error.
fn fails(cmd: &mut Command) -> String {
    let out = run(cmd, LIMIT);
    assert_eq!(out.status.code(), Some(1), "{}", out.all());
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {}", out.all());
    assert!(lines[0].starts_with("prodtrace: "), "{}", out.all());
    lines[0].to_string()
}

/// A `sleep` we started and kill when dropped.
struct Sleeper(std::process::Child);

impl Sleeper {
    fn new() -> Self {
        Sleeper(Command::new("sleep").arg("60").stdout(Stdio::null()).spawn().unwrap())
    }
    fn pid(&self) -> String {
        self.0.id().to_string()
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn unknown_names_get_suggestions() {
    let e = fails(&mut catch(&["--syscall", "clsoe", "-p", "1"]));
    assert!(e.starts_with("prodtrace: unknown system call 'clsoe'; did you mean: close"), "{e}");
    let e = fails(&mut catch(&["--syscall", "close", "--errno", "EBADFF", "-p", "1"]));
    assert!(e.starts_with("prodtrace: unknown errno name 'EBADFF'; did you mean: EBADF"), "{e}");
    let e = fails(&mut catch(&["--syscall", "close", "--ret", "=<", "0", "-p", "1"]));
    assert!(e.contains("operator must be one of"), "{e}");
    let e = fails(&mut catch(&["-p", "1"]));
    assert!(e.contains("say what to catch"), "{e}");
}

#[test]
fn hold_goes_with_print_only() {
    // A usage error (clap's, exit status 2), like --abort with --stop.
    for other in [&["--stop"][..], &["--core", "/tmp"], &["--abort"]] {
        let out = run(catch(&["--syscall", "close", "-p", "1", "--hold", "-w"]).args(other), LIMIT);
        assert_eq!(out.status.code(), Some(2), "{}", out.all());
        let first = out.stderr.lines().next().unwrap_or_default();
        assert!(first.contains("'--hold' cannot be used with") && first.contains(other[0]), "{}", out.all());
    }
}

#[test]
fn signalling_actions_need_destructive() {
    for (flag, extra) in [("--abort", None), ("--stop", None), ("--core", Some("/tmp")), ("--hold", None)] {
        let mut c = catch(&["--syscall", "close", "-p", "1", flag]);
        if let Some(x) = extra {
            c.arg(x);
        }
        let e = fails(&mut c);
        assert!(e.contains(flag) && e.contains("add -w/--destructive"), "{e}");
    }
}

#[test]
fn vanished_pid() {
    // PIDs are below 2^22 on Linux: this one cannot exist.
    let e = fails(&mut catch(&["--syscall", "close", "-p", "4194304"]));
    assert_eq!(e, "prodtrace: no process with PID 4194304");
    // A process that exits while being watched, before any match.
    let mut short = Command::new("sleep").arg("0.7").spawn().unwrap();
    let pid = short.id().to_string();
    let out = run(&mut catch(&["--syscall", "close", "--errno", "EBADF", "-p", &pid]), LIMIT);
    short.wait().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", out.all());
    assert!(out.stderr.contains(&format!("process {pid} exited before any matching system call")), "{}", out.all());
}

#[test]
fn unwritable_or_missing_core_directory_is_refused_before_attaching() {
    let s = Sleeper::new();
    let e = fails(&mut catch(&["--syscall", "close", "-p", &s.pid(), "-w", "--core", "/nonexistent/dir"]));
    assert!(e.contains("--core /nonexistent/dir: cannot use it"), "{e}");
    // Even root cannot create files in /proc.
    let e = fails(&mut catch(&["--syscall", "close", "-p", &s.pid(), "-w", "--core", "/proc"]));
    assert!(e.contains("--core /proc: cannot write there"), "{e}");
    let e = fails(&mut catch(&["--syscall", "close", "-p", &s.pid(), "-w", "--core", "/etc/hostname"]));
    assert!(e.contains("not a directory"), "{e}");
}

#[test]
fn no_privileges() {
    let s = Sleeper::new();
    let out = run(
        Command::new("setpriv")
            .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--inh-caps=-all"])
            .arg(prodtrace_bin())
            .args(["catch", "--syscall", "close", "-p", &s.pid()]),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(1), "{}", out.all());
    assert_eq!(
        out.stderr.trim(),
        "prodtrace: prodtrace catch needs root, or the CAP_BPF and CAP_PERFMON capabilities: run it with sudo"
    );
}

#[test]
fn stopped_or_traced_targets_are_refused_for_signalling_actions() {
    let s = Sleeper::new();
    let pid = nix::unistd::Pid::from_raw(s.0.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    assert!(wait_for(Duration::from_secs(5), || state(s.0.id()) == Some('T')));
    let e = fails(&mut catch(&["--syscall", "close", "-p", &s.pid(), "--stop", "-w"]));
    assert!(e.contains("is already stopped") && e.contains(&format!("kill -CONT {}", s.pid())), "{e}");
    assert_eq!(state(s.0.id()), Some('T'), "left as it was");
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();

    // Traced (we play the debugger with PTRACE_SEIZE, which does not stop it).
    nix::sys::ptrace::seize(pid, nix::sys::ptrace::Options::empty()).unwrap();
    let e = fails(&mut catch(&["--syscall", "close", "-p", &s.pid(), "--core", "/tmp", "-w"]));
    assert!(e.contains("is being traced by process") && e.contains("detach the debugger"), "{e}");
    assert_eq!(state(s.0.id()), Some('S'), "still running (sleeping)");
}

#[test]
fn ctrl_c_and_sigterm_end_the_session_cleanly() {
    let _serial = stopping_sessions();
    let s = Sleeper::new();
    // A few times each: the signal may land in the thread waiting for events.
    for sig in [nix::sys::signal::Signal::SIGINT, nix::sys::signal::Signal::SIGTERM].repeat(3) {
        let (child, stderr) =
            start_catching(&mut catch(&["--syscall", "close", "-p", &s.pid(), "--count", "0", "--stop", "-w"]));
        std::thread::sleep(Duration::from_millis(150));
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
        let out = finish(child, LIMIT);
        // Give the stderr collector a moment to see EOF.
        wait_for(Duration::from_secs(1), || stderr.lock().unwrap().contains("matches"));
        let err = stderr.lock().unwrap().clone();
        assert!(out.status.success(), "{sig}: {err}");
        assert!(err.ends_with("prodtrace: 0 matches\n"), "{sig}: {err}");
        assert_eq!(state(s.0.id()), Some('S'), "target untouched");
    }
}

#[test]
fn a_traced_thread_found_by_comm_is_not_signalled() {
    let _serial = stopping_sessions();
    let dir = tempfile::tempdir().unwrap();
    let name = format!("bt{}", std::process::id());
    let bin = build_c("badclose", dir.path(), &name);
    let marker = dir.path().join("marker");
    let mut target = Command::new(&bin).args([marker.to_str().unwrap(), "2500", "-1", "0"]).spawn().unwrap();
    let pid = nix::unistd::Pid::from_raw(target.id() as i32);
    // We are its debugger now (PTRACE_SEIZE does not stop it).
    nix::sys::ptrace::seize(pid, nix::sys::ptrace::Options::empty()).unwrap();
    let out = run(
        catch(&["--comm", &name, "--syscall", "close", "--errno", "EBADF", "--core"]).arg(dir.path()).arg("-w"),
        LIMIT,
    );
    assert!(out.status.success(), "{}", out.all());
    assert!(out.stderr.contains("is traced by a debugger") && out.stderr.contains("not signalled"), "{}", out.all());
    assert!(out.stdout.contains("close(fd=3) = -1 EBADF"), "{}", out.all());
    assert!(!out.stdout.contains("core:"), "{}", out.all());
    let st = target.wait().unwrap();
    assert!(st.success(), "ran to its end untouched: {st:?}");
    assert!(marker.exists());
    let cores = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("core"))
        .count();
    assert_eq!(cores, 0);
}

#[test]
fn a_dangling_separator_is_an_error() {
    // Without the check, "--" and nothing after it meant: the whole machine
    // (with --stop -w, whichever process failed a close first).
    let e = fails(&mut catch(&["--syscall", "close", "--errno", "EBADF", "--"]));
    assert_eq!(e, "prodtrace: nothing after --: give the command to start (-- CMD ARGS...), or leave out the --");
}

#[test]
fn names_numbers_and_calls_that_never_return() {
    for n in ["4096", "99999999999", "0"] {
        let e = fails(&mut catch(&["--syscall", "close", "--errno", n, "-p", "1"]));
        assert_eq!(e, format!("prodtrace: errno {n} is out of range (1 to 4095)"));
    }
    let e = fails(&mut catch(&["--syscall", "CLSOE", "-p", "1"]));
    assert!(e.starts_with("prodtrace: unknown system call 'CLSOE'; did you mean: close"), "{e}");
    for name in ["exit_group", "exit"] {
        let e = fails(&mut catch(&["--syscall", &format!("close,{name}"), "-p", "1"]));
        assert!(e.starts_with(&format!("prodtrace: {name}() never returns, so it cannot be caught")), "{e}");
    }
    // Upper case is accepted; --errno already says failing, --failed adds nothing.
    let dir = tempfile::tempdir().unwrap();
    let bin = build_c("badclose", dir.path(), "badclose");
    let marker = dir.path().join("marker");
    let out = run(catch(&["--syscall", "CLOSE", "--errno", "ebadf", "--failed", "--"]).arg(&bin).arg(&marker), LIMIT);
    assert!(out.status.success(), "{}", out.all());
    let banner = out.stderr.lines().next().unwrap();
    assert!(banner.starts_with("prodtrace: catching close() failing with EBADF in process "), "{banner}");
}

#[test]
fn pids_that_are_not_processes_we_can_catch_in() {
    // A kernel thread: it makes no system calls from user space.
    let e = fails(&mut catch(&["--syscall", "close", "-p", "2", "--stop", "-w"]));
    assert_eq!(
        e,
        "prodtrace: process 2 is a kernel thread (kthreadd): it makes no system calls from user space, so there is \
         nothing to catch"
    );
    // PID 1: the kernel does not let a BPF program signal init (here, it may
    // not even let us look at it).
    let e = fails(&mut catch(&["--syscall", "close", "-p", "1", "--stop", "-w"]));
    if std::fs::read_link("/proc/1/exe").is_ok() {
        assert!(
            e.starts_with("prodtrace: process 1 is the init process: the kernel does not let a BPF program signal it"),
            "{e}"
        );
    } else {
        assert!(e.starts_with("prodtrace: not permitted to catch system calls in process 1, even as root"), "{e}");
    }
    // A thread ID: the process is named.
    let mut node = Command::new("/usr/bin/node").args(["-e", "setTimeout(() => {}, 30000)"]).spawn().unwrap();
    let pid = node.id();
    let mut tid = 0;
    assert!(wait_for(Duration::from_secs(10), || {
        tid = std::fs::read_dir(format!("/proc/{pid}/task"))
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .find(|&t| t != pid)
            .unwrap_or(0);
        tid != 0
    }));
    let e = fails(&mut catch(&["--syscall", "close", "-p", &tid.to_string()]));
    assert_eq!(
        e,
        format!(
            "prodtrace: {tid} is a thread of process {pid}: use -p {pid} (it covers all the threads of process {pid})"
        )
    );
    // A zombie: dead, not yet reaped by its parent (this test).
    node.kill().unwrap();
    assert!(wait_for(Duration::from_secs(10), || state(pid) == Some('Z')));
    let e = fails(&mut catch(&["--syscall", "close", "-p", &pid.to_string()]));
    assert!(
        e.starts_with(&format!("prodtrace: process {pid} is a zombie: it has exited and waits for its parent ")),
        "{e}"
    );
    node.wait().unwrap();
}

#[test]
fn the_core_limit_note_is_given_once() {
    let _serial = stopping_sessions();
    let dir = tempfile::tempdir().unwrap();
    let bin = build_c("badclose", dir.path(), "badclose");
    let marker = dir.path().join("marker");
    let mut cmd = catch(&["--syscall", "close", "--errno", "EBADF", "--core"]);
    cmd.arg(dir.path()).args(["--abort", "-w", "--"]).arg(&bin).args([marker.to_str().unwrap(), "0", "-1", "0"]);
    core_limit_zero(&mut cmd);
    let out = run(&mut cmd, LIMIT);
    assert!(out.status.success(), "{}", out.all());
    assert!(out.stdout.contains("core: ") && out.stdout.contains("sent SIGABRT to thread"), "{}", out.all());
    assert_eq!(out.stderr.matches("core file size limit of 0").count(), 1, "{}", out.all());
    assert!(out.stderr.contains("command was killed by SIGABRT"), "{}", out.all());
}

#[test]
fn a_file_the_kernel_cannot_run_is_not_run_through_sh() {
    let dir = tempfile::tempdir().unwrap();
    // Executable, no ELF header, no #! line (like /etc/hostname with mode 755).
    let file = dir.path().join("hostname");
    let marker = dir.path().join("ran");
    std::fs::write(&file, format!("touch {}\n", marker.display())).unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let e = fails(catch(&["--syscall", "close", "--"]).arg(&file));
    assert_eq!(
        e,
        format!(
            "prodtrace: cannot start {0}: not a program the kernel can run (no ELF header or #! line); for a shell \
             script without #!, run: -- sh {0}",
            file.display()
        )
    );
    assert!(!marker.exists(), "it was run by a shell");
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let e = fails(catch(&["--syscall", "close", "--"]).arg(&file));
    assert!(e.contains("it is not executable"), "{e}");
}

#[test]
fn prodtrace_never_catches_itself() {
    let _serial = stopping_sessions();
    // A copy of prodtrace whose name the filter matches: every 100 ms it
    // waits for events in epoll_wait. Without the exclusion it would stop
    // itself at its own first poll and hang.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let name = format!("pt{}", std::process::id());
    let copy = dir.path().join(&name);
    assert!(Command::new("cp").arg(prodtrace_bin()).arg(&copy).status().unwrap().success());
    let mut cmd = Command::new(&copy);
    cmd.args(["catch", "--comm", &name, "--syscall", "epoll_wait,epoll_pwait", "--stop", "-w"]);
    let (first, _) = start_catching(&mut cmd);
    std::thread::sleep(Duration::from_millis(1500));
    let first_state = state(first.id());
    if first_state == Some('T') {
        signal(first.id(), nix::sys::signal::Signal::SIGKILL);
    }
    assert_ne!(first_state, Some('T'), "prodtrace stopped itself");
    // Another process of that name is still caught (and stopped).
    let s = Sleeper::new();
    let mut other = Command::new(&copy)
        .args(["catch", "--syscall", "close", "-p", &s.pid()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = finish(first, LIMIT);
    let other_state = state(other.id());
    other.kill().unwrap();
    other.wait().unwrap();
    assert!(out.status.success(), "{}", out.all());
    assert!(out.stdout.contains(&format!("pid {} ({name})", other.id())), "{}", out.all());
    assert_eq!(other_state, Some('T'), "the other copy was stopped at its match");
}
