//! `prodtrace catch` on a real C program (`examples/c/badclose.c`, which
//! closes a descriptor twice and then writes a marker file): printing the
//! failing call with its DWARF-unwound stack, counting, filters, and the
//! precision of --stop (the marker must not exist while the process is held);
//! and the session's guarantees: every match of a busy many-threaded target
//! acted on or reported skipped, a --stop command that survives a job-control
//! shell, output failures that stop nothing, one stopping session per
//! process, and a started command ended with an interrupted session.

mod catch_support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use catch_support::*;

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn print_shows_call_errno_and_the_caller_of_close() {
    let dir = tempfile::tempdir().unwrap();
    let bin = build_c("badclose", dir.path(), "badclose");
    let marker = dir.path().join("marker");
    let out = run(
        catch(&["--syscall", "close", "--errno", "EBADF", "--"])
            .arg(&bin)
            // Lingers 1.5 s after the bad close: --print symbolizes a live
            // process (a loaded 2-core machine can be slow to get there).
            .args([marker.to_str().unwrap(), "0", "-1", "1500"])
            .current_dir(dir.path()),
        LIMIT,
    );
    assert!(out.status.success(), "{}", out.all());
    assert!(out.stdout.contains("close(fd=3) = -1 EBADF (Bad file descriptor)"), "{}", out.all());
    assert!(out.stdout.contains("(badclose) tid "), "{}", out.all());
    // Built without frame pointers: only DWARF unwinding finds the caller.
    assert!(out.stdout.contains("user stack (DWARF unwinding)"), "{}", out.all());
    let names = stack_names(&out.stdout);
    assert!(names[0].contains("close"), "frame #0 is libc's close: {names:?}");
    assert!(names[1].starts_with("release_handle+"), "frame #1 is the caller of close(): {names:?}");
    assert!(names[2].starts_with("main+"), "{names:?}");
    // --print changes nothing: the program went on, wrote its marker and exited 0.
    assert!(out.stderr.contains("command exited with status 0"), "{}", out.all());
    assert!(marker.exists());
    assert!(out.stderr.contains("1 match"), "{}", out.all());
}

#[test]
fn stop_holds_the_process_before_its_next_instruction() {
    let dir = tempfile::tempdir().unwrap();
    let bin = build_c("badclose", dir.path(), "badclose");
    let marker = dir.path().join("marker");
    let out = run(
        catch(&["--syscall", "close", "--errno", "EBADF", "--stop", "-w", "--"]).arg(&bin).args([
            marker.to_str().unwrap(),
            "0",
            "-1",
            "0",
        ]),
        LIMIT,
    );
    assert!(out.status.success(), "{}", out.all());
    let pid = resume_pid(&out.stdout);
    // prodtrace has exited; the program is held in group-stop.
    assert_eq!(thread_states(pid), vec!['T'], "{}", out.all());
    std::thread::sleep(Duration::from_millis(300));
    assert!(!marker.exists(), "the program ran on past the failing close()");
    let bt = gdb_pid_bt(pid);
    assert!(bt.contains("close"), "{bt}");
    assert!(bt.contains("release_handle"), "{bt}");
    assert!(!marker.exists());
    assert_eq!(state(pid), Some('T'), "gdb left it stopped as found");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGCONT).unwrap();
    assert!(wait_for(Duration::from_secs(10), || marker.exists()), "resumed program wrote its marker");
    assert!(wait_for(Duration::from_secs(10), || state(pid).is_none() || state(pid) == Some('Z')));
}

#[test]
fn abort_kills_the_thread_at_the_call_and_tells_about_core_limits() {
    let dir = tempfile::tempdir().unwrap();
    let bin = build_c("badclose", dir.path(), "badclose");
    let marker = dir.path().join("marker");
    let mut cmd = catch(&["--syscall", "close", "--errno", "EBADF", "--abort", "-w", "--"]);
    cmd.arg(&bin).args([marker.to_str().unwrap(), "0", "-1", "0"]).current_dir(dir.path());
    // The child inherits a core limit of 0: prodtrace must say so.
    core_limit_zero(&mut cmd);
    let out = run(&mut cmd, LIMIT);
    assert!(out.status.success(), "{}", out.all());
    assert!(out.stdout.contains("sent SIGABRT to thread"), "{}", out.all());
    assert!(out.stderr.contains("core file size limit of 0"), "{}", out.all());
    assert!(out.stderr.contains("core_pattern"), "{}", out.all());
    assert!(out.stderr.contains("command was killed by SIGABRT"), "{}", out.all());
    assert!(!marker.exists(), "the thread died before writing the marker");
}

#[test]
fn count_and_return_value_filters_give_exact_matches() {
    let dir = tempfile::tempdir().unwrap();
    let bin = build_c("badclose", dir.path(), "badclose");
    let marker = dir.path().join("marker");
    let m = marker.to_str().unwrap();
    // Every close(fd 77): the good one (0) and the bad one (-EBADF).
    let out = run(
        catch(&["--syscall", "close", "--arg", "0", "77", "--count", "2", "--"]).arg(&bin).args([m, "0", "77", "200"]),
        LIMIT,
    );
    assert!(out.status.success(), "{}", out.all());
    assert!(out.stdout.contains("=== catch 1:"), "{}", out.all());
    assert!(out.stdout.contains("=== catch 2:"), "{}", out.all());
    assert!(!out.stdout.contains("=== catch 3:"), "{}", out.all());
    let calls: Vec<&str> = out.stdout.lines().filter(|l| l.starts_with("close(")).collect();
    assert_eq!(calls, ["close(fd=77) = 0", "close(fd=77) = -1 EBADF (Bad file descriptor)"], "{}", out.all());

    // --ret '<' 0 with no limit: exactly one failing close in the whole run.
    let out = run(
        catch(&["--syscall", "close", "--ret", "<", "0", "--count", "0", "--"]).arg(&bin).args([m, "0", "-1", "0"]),
        LIMIT,
    );
    assert!(out.status.success(), "{}", out.all());
    assert_eq!(out.stdout.matches("=== catch").count(), 1, "{}", out.all());
    assert!(out.stderr.contains("1 match\n"), "{}", out.all());

    // --failed on a syscall that never fails here: the command ends with no match.
    let out = run(catch(&["--syscall", "getppid", "--failed", "--"]).arg(&bin).args([m, "0", "-1", "0"]), LIMIT);
    assert!(!out.status.success(), "{}", out.all());
    assert!(out.stderr.contains("before any matching system call"), "{}", out.all());
}

#[test]
fn attaches_to_a_running_process_by_pid() {
    let dir = tempfile::tempdir().unwrap();
    let bin = build_c("badclose", dir.path(), "badclose");
    let marker = dir.path().join("marker");
    // Waits 2.5 s before its closes: time for prodtrace to attach.
    let mut target = Command::new(&bin).args([marker.to_str().unwrap(), "2500", "91", "1500"]).spawn().unwrap();
    let pid = target.id().to_string();
    let out = run(&mut catch(&["-p", &pid, "--syscall", "close", "--arg", "0", "91", "--failed"]), LIMIT);
    assert!(target.wait().unwrap().success());
    assert!(out.status.success(), "{}", out.all());
    assert!(out.stdout.contains(&format!("pid {pid} (badclose)")), "{}", out.all());
    assert!(out.stdout.contains("close(fd=91) = -1 EBADF"), "{}", out.all());
    assert!(stack_names(&out.stdout).iter().any(|n| n.starts_with("release_handle+")), "{}", out.all());
}

#[test]
fn comm_alone_selects_processes_by_name() {
    let dir = tempfile::tempdir().unwrap();
    // A name no other process on the machine has.
    let name = format!("bc{}", std::process::id());
    let bin = build_c("badclose", dir.path(), &name);
    let marker = dir.path().join("marker");
    let (child, _) =
        start_catching(&mut catch(&["--comm", &name, "--syscall", "close", "--errno", "9", "--count", "1"]));
    let st =
        Command::new(&bin).args([marker.to_str().unwrap(), "0", "-1", "200"]).stdout(Stdio::null()).status().unwrap();
    assert!(st.success());
    let out = finish(child, LIMIT);
    assert!(out.status.success(), "{}", out.all());
    assert!(out.stdout.contains(&format!("({name}) tid")), "{}", out.all());
    assert!(out.stdout.contains("close(fd=3) = -1 EBADF"), "{}", out.all());
}

#[test]
fn core_is_taken_at_the_call_and_the_process_resumed() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let bin = build_c("badclose", dir.path(), "badclose");
    let cores = dir.path().join("cores");
    std::fs::create_dir(&cores).unwrap();
    let marker = dir.path().join("marker");
    let out = run(
        catch(&["--syscall", "close", "--errno", "EBADF", "--core", cores.to_str().unwrap(), "-w", "--"])
            .arg(&bin)
            .args([marker.to_str().unwrap(), "0", "-1", "0"]),
        LIMIT,
    );
    assert!(out.status.success(), "{}", out.all());
    assert!(out.stdout.contains("close(fd=3) = -1 EBADF"), "{}", out.all());
    let files: Vec<_> = std::fs::read_dir(&cores).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let core = &files[0];
    assert!(out.stdout.contains(&format!("core: {}", core.display())), "{}", out.all());
    assert_eq!(std::fs::metadata(core).unwrap().permissions().mode() & 0o777, 0o600);
    // Resumed: it wrote the marker and exited normally.
    assert!(out.stdout.contains("resumed process"), "{}", out.all());
    assert!(out.stderr.contains("command exited with status 0"), "{}", out.all());
    assert!(marker.exists());
    // The core holds the moment of the failing close(), called by release_handle.
    let bt = gdb_core_bt(&bin, core);
    let frames = bt_frames(&bt);
    assert!(frames[0].contains("close"), "{bt}");
    assert!(frames[1].contains("release_handle"), "{bt}");
    assert!(frames.iter().any(|f| f.contains("main")), "{bt}");
}

#[test]
fn count_is_exact_when_many_threads_fail_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let bin = build_threads_badclose(dir.path());
    // 4 threads x 3000 failing closes; exactly 3 are acted on.
    let out = run(
        catch(&["--syscall", "close", "--errno", "EBADF", "--count", "3", "--"]).arg(&bin).args(["4", "3000"]),
        LIMIT,
    );
    assert!(out.status.success(), "{}", out.all());
    assert!(out.stdout.contains("failed closes: 12000"), "{}", out.all());
    assert_eq!(out.stdout.matches("=== catch").count(), 3, "{}", out.all());
    for n in 1..=3 {
        assert!(out.stdout.contains(&format!("=== catch {n}:")), "{}", out.all());
    }
    assert!(out.stderr.contains("3 matches"), "{}", out.all());
    assert!(!out.stderr.contains("lost"), "{}", out.all());

    // --stop: one match, the whole process (every thread) held.
    let out = run(
        catch(&["--syscall", "close", "--errno", "EBADF", "--stop", "-w", "--"]).arg(&bin).args(["4", "3000"]),
        LIMIT,
    );
    assert!(out.status.success(), "{}", out.all());
    assert_eq!(out.stdout.matches("catch 1:").count(), 1, "{}", out.all());
    assert!(!out.stdout.contains("catch 2:"), "{}", out.all());
    let pid = resume_pid(&out.stdout);
    let states = thread_states(pid);
    assert_eq!(states.len(), 5, "main and 4 workers: {states:?}");
    assert!(states.iter().all(|&s| s == 'T'), "{states:?}");
    let gdb = run(
        Command::new("gdb").args(["-batch", "-nx", "-p", &pid.to_string(), "-ex", "thread apply all bt"]),
        Duration::from_secs(120),
    );
    assert!(gdb.stdout.contains("worker_close"), "{}", gdb.all());
    assert!(thread_states(pid).iter().all(|&s| s == 'T'));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGCONT).unwrap();
    assert!(wait_for(Duration::from_secs(20), || state(pid).is_none()), "resumed process ran to its end");
}

/// The numbers in `prodtrace: T matches: A acted on, S skipped ...` (or
/// `prodtrace: N matches` when nothing was skipped): (total, acted, skipped).
fn summary(stderr: &str) -> (u64, u64, u64) {
    let line = stderr.lines().rev().find(|l| l.starts_with("prodtrace: ") && l.contains(" match")).unwrap();
    let nums: Vec<u64> =
        line.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty()).map(|s| s.parse().unwrap()).collect();
    match nums.as_slice() {
        [total, acted, skipped] => (*total, *acted, *skipped),
        [n] => (*n, *n, 0),
        _ => panic!("unexpected summary: {line}"),
    }
}

#[test]
fn core_on_a_busy_multithreaded_target_accounts_for_every_match() {
    // 4 threads x 3000 failing closes, --count 0: one process held at a
    // time; every match is either acted on (a core) or reported skipped.
    let dir = tempfile::tempdir().unwrap();
    let bin = build_threads_badclose(dir.path());
    let cores = dir.path().join("cores");
    std::fs::create_dir(&cores).unwrap();
    let out = run(
        catch(&[
            "--syscall",
            "close",
            "--errno",
            "EBADF",
            "--count",
            "0",
            "-w",
            "--core",
            cores.to_str().unwrap(),
            "--",
        ])
        .arg(&bin)
        .args(["4", "3000"]),
        LIMIT,
    );
    assert!(out.status.success(), "{}", out.all());
    assert!(out.stdout.contains("failed closes: 12000"), "{}", out.all());
    let written = out.stdout.lines().filter(|l| l.starts_with("core: ")).count() as u64;
    let files = std::fs::read_dir(&cores).unwrap().count() as u64;
    assert_eq!(files, written, "{}", out.all());
    assert_eq!(out.stdout.lines().filter(|l| l.starts_with("resumed process ")).count() as u64, written);
    let (total, acted, skipped) = summary(&out.stderr);
    assert_eq!(total, 12000, "{}", out.all());
    assert_eq!(acted, written, "{}", out.all());
    assert_eq!(acted + skipped, 12000, "{}", out.all());
    for bad in ["lost", "did not stop", "ended before", "could not"] {
        assert!(!out.stderr.contains(bad), "{bad}: {}", out.all());
    }
    // The first core holds a thread at its failing close().
    let first =
        cores.join(out.stdout.lines().find_map(|l| l.strip_prefix("core: ")).unwrap().split(' ').next().unwrap());
    let gdb =
        run(Command::new("gdb").args(["-batch", "-nx", "-ex", "bt"]).arg(&bin).arg(&first), Duration::from_secs(120));
    assert!(gdb.stdout.contains("worker_close"), "{}", gdb.all());

    // --count 3: at most three cores (the program may finish all its closes
    // while matches are being skipped); until the session ends, every match
    // is acted on or counted.
    let cores3 = dir.path().join("cores3");
    std::fs::create_dir(&cores3).unwrap();
    let out = run(
        catch(&[
            "--syscall",
            "close",
            "--errno",
            "EBADF",
            "--count",
            "3",
            "-w",
            "--core",
            cores3.to_str().unwrap(),
            "--",
        ])
        .arg(&bin)
        .args(["4", "3000"]),
        LIMIT,
    );
    assert!(out.status.success(), "{}", out.all());
    let (total, acted, skipped) = summary(&out.stderr);
    assert!((1..=3).contains(&acted), "{}", out.all());
    assert_eq!(std::fs::read_dir(&cores3).unwrap().count() as u64, acted, "{}", out.all());
    assert_eq!(total, acted + skipped);
    if acted < 3 {
        assert_eq!(total, 12000, "the command ended first: all its matches counted: {}", out.all());
    }
    assert!(out.stdout.contains("failed closes: 12000"), "{}", out.all());
}

#[test]
fn stop_from_a_job_control_shell_leaves_a_resumable_command() {
    // An interactive shell runs prodtrace as a job: in a process group of
    // its own. When prodtrace exits, a stopped command in that group would
    // be an orphaned stopped process group, which the kernel kills with
    // SIGHUP: the "kill -CONT" printed would resume nothing.
    let dir = tempfile::tempdir().unwrap();
    let bin = build_c("badclose", dir.path(), "badclose");
    let marker = dir.path().join("marker");
    let mut cmd = catch(&["--syscall", "close", "--errno", "EBADF", "--stop", "-w", "--"]);
    cmd.arg(&bin).args([marker.to_str().unwrap(), "0", "-1", "0"]);
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let out = run(&mut cmd, LIMIT);
    assert!(out.status.success(), "{}", out.all());
    let pid = resume_pid(&out.stdout);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(state(pid), Some('T'), "the command is still there, stopped: {}", out.all());
    assert!(!marker.exists());
    signal(pid, nix::sys::signal::Signal::SIGCONT);
    assert!(wait_for(Duration::from_secs(10), || marker.exists()), "resumed, it ran on");
    assert!(wait_for(Duration::from_secs(10), || state(pid).is_none() || state(pid) == Some('Z')));
}

/// Runs `cmd` with its stdout a pipe whose reading end is already closed.
fn run_with_closed_stdout(cmd: &mut Command) -> Out {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(child.stdout.take());
    finish(child, LIMIT)
}

#[test]
fn a_closed_or_full_stdout_stops_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let bin = build_c("badclose", dir.path(), "badclose");
    for (round, full) in [false, true].into_iter().enumerate() {
        let cores = dir.path().join(format!("cores{round}"));
        std::fs::create_dir(&cores).unwrap();
        let marker = dir.path().join(format!("marker{round}"));
        let mut cmd = catch(&["--syscall", "close", "--errno", "EBADF", "--core", cores.to_str().unwrap(), "-w", "--"]);
        cmd.arg(&bin).args([marker.to_str().unwrap(), "300", "-1", "0"]);
        let out = if full {
            cmd.stdout(std::fs::File::create("/dev/full").unwrap());
            let child = cmd.stdin(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
            finish(child, LIMIT)
        } else {
            run_with_closed_stdout(&mut cmd)
        };
        assert_eq!(out.status.code(), Some(0), "{}", out.all());
        assert!(!out.stderr.contains("panicked"), "{}", out.all());
        let why = if full { "No space left on device" } else { "Broken pipe" };
        assert!(out.stderr.contains(&format!("cannot write to standard output ({why})")), "{}", out.all());
        // The report went on on stderr; the core was written, the command resumed.
        assert!(out.stderr.contains("core: ") && out.stderr.contains("resumed process"), "{}", out.all());
        assert!(out.stderr.contains("command exited with status 0"), "{}", out.all());
        assert_eq!(std::fs::read_dir(&cores).unwrap().count(), 1, "{}", out.all());
        assert!(marker.exists());
    }
}

#[test]
fn a_second_stopping_session_on_the_same_process_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bin = build_c("badclose", dir.path(), "badclose");
    let marker = dir.path().join("marker");
    let (a_dir, b_dir) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir(&a_dir).unwrap();
    std::fs::create_dir(&b_dir).unwrap();
    // Its closes come after 5 s: time for both sessions to start.
    let mut target = Command::new(&bin).args([marker.to_str().unwrap(), "5000", "-1", "0"]).spawn().unwrap();
    let pid = target.id().to_string();
    let (first, _) = start_catching(&mut catch(&[
        "-p",
        &pid,
        "--syscall",
        "close",
        "--errno",
        "EBADF",
        "--core",
        a_dir.to_str().unwrap(),
        "-w",
    ]));
    let second = run(
        &mut catch(&["-p", &pid, "--syscall", "close", "--errno", "EBADF", "--core", b_dir.to_str().unwrap(), "-w"]),
        LIMIT,
    );
    assert_eq!(second.status.code(), Some(1), "{}", second.all());
    assert_eq!(second.stderr.lines().count(), 1, "{}", second.all());
    assert!(
        second.stderr.starts_with(&format!(
            "prodtrace: process {pid} is already watched by another prodtrace catch that stops processes (PID {}: ",
            first.id()
        )),
        "{}",
        second.all()
    );
    // A session that may stop any process cannot start beside it either.
    let any = run(&mut catch(&["--comm", "nosuchname", "--syscall", "close", "--stop", "-w"]), LIMIT);
    assert_eq!(any.status.code(), Some(1), "{}", any.all());
    assert!(any.stderr.contains("another prodtrace catch that stops processes is running"), "{}", any.all());
    // A printing session is no problem.
    let out = finish(first, LIMIT);
    assert!(out.status.success(), "{}", out.all());
    assert!(target.wait().unwrap().success());
    assert_eq!(std::fs::read_dir(&b_dir).unwrap().count(), 0);
    let core = std::fs::read_dir(&a_dir).unwrap().next().unwrap().unwrap().path();
    let frames = bt_frames(&gdb_core_bt(&bin, &core));
    assert!(frames[0].contains("close") && frames[1].contains("release_handle"), "{frames:?}");
}

#[test]
fn an_interrupted_session_ends_the_command_it_started() {
    use nix::sys::signal::Signal;
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        let (child, stderr) = start_catching(&mut catch(&[
            "--syscall",
            "close",
            "--errno",
            "EBADF",
            "--count",
            "0",
            "--",
            "sleep",
            "30",
        ]));
        let sleep = banner_pid(&stderr.lock().unwrap());
        assert_eq!(state(sleep).map(|s| s != 'Z'), Some(true));
        signal(child.id(), sig);
        let out = finish(child, LIMIT);
        let alive = state(sleep).is_some();
        if alive {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(sleep as i32), Signal::SIGKILL);
        }
        wait_for(Duration::from_secs(1), || stderr.lock().unwrap().contains("matches"));
        let err = stderr.lock().unwrap().clone();
        assert!(out.status.success(), "{sig}: {err}");
        assert!(!alive, "{sig}: the command was left running: {err}");
        assert!(
            err.contains(&format!(
                "prodtrace: interrupted: command {sleep} was killed by SIGTERM (a command prodtrace started ends \
                 with its session)"
            )),
            "{sig}: {err}"
        );
    }
}

#[test]
fn an_interrupted_session_leaves_a_command_stopped_by_stop_alone() {
    let dir = tempfile::tempdir().unwrap();
    let bin = build_c("badclose", dir.path(), "badclose");
    let marker = dir.path().join("marker");
    let (mut child, _) = start_catching(
        catch(&["--syscall", "close", "--errno", "EBADF", "--stop", "-w", "--count", "0", "--"]).arg(&bin).args([
            marker.to_str().unwrap(),
            "0",
            "-1",
            "0",
        ]),
    );
    // Read stdout until the match is reported.
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut report = String::new();
    while !report.contains("kill -CONT") {
        assert!(reader.read_line(&mut report).unwrap() > 0, "{report}");
    }
    let pid = resume_pid(&report);
    signal(child.id(), nix::sys::signal::Signal::SIGINT);
    let out = finish(child, LIMIT);
    assert!(out.status.success(), "{}", out.all());
    assert_eq!(state(pid), Some('T'), "left stopped, as printed");
    signal(pid, nix::sys::signal::Signal::SIGCONT);
    assert!(wait_for(Duration::from_secs(10), || marker.exists()));
}
