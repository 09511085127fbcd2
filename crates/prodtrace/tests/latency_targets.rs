//! What `prodtrace latency` says about its target: a PID that is not a
//! process it can trace (a thread ID, a kernel thread, a zombie) is refused
//! in one line by the check all the tools share, and a command it started
//! is reported as it ended (its exit status, or the signal that killed it),
//! in the words `prodtrace catch` uses. Needs root and /usr/bin/node.

mod latency_support;

use std::process::Command;
use std::time::{Duration, Instant};

use latency_support::*;

const LIMIT: Duration = Duration::from_secs(120);

/// The single line prodtrace printed on stderr.
fn one_error_line(r: &Running) -> String {
    let err = r.stderr();
    assert_eq!(err.len(), 1, "exactly one line on stderr:\n{}", r.output());
    err[0].clone()
}

fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rfind(')').and_then(|i| stat[i + 1..].trim_start().chars().next())
}

#[test]
fn pids_that_are_not_traceable_processes() {
    let (st, out) = run(&mut latency(&["-p", "2"]), LIMIT);
    assert_eq!(st.code(), Some(1), "{}", out.output());
    assert_eq!(
        one_error_line(&out),
        "prodtrace: process 2 is a kernel thread (kthreadd): it runs no user-space code to trace"
    );

    let mut node = Command::new(NODE).args(["-e", "setTimeout(() => {}, 30000)"]).spawn().unwrap();
    let pid = node.id();
    let t0 = Instant::now();
    let tid = loop {
        let other = std::fs::read_dir(format!("/proc/{pid}/task"))
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .find(|&t| t != pid);
        if let Some(t) = other {
            break t;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "node started no thread");
        std::thread::sleep(Duration::from_millis(10));
    };
    let (st, out) = run(&mut latency(&["-p", &tid.to_string()]), LIMIT);
    assert_eq!(st.code(), Some(1), "{}", out.output());
    assert_eq!(
        one_error_line(&out),
        format!("prodtrace: {tid} is a thread of process {pid}: trace process {pid} (-p {pid})")
    );

    // Killed, not reaped yet by its parent (this test): a zombie.
    node.kill().unwrap();
    let t0 = Instant::now();
    while state(pid) != Some('Z') {
        assert!(t0.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(10));
    }
    let (st, out) = run(&mut latency(&["-p", &pid.to_string()]), LIMIT);
    assert_eq!(st.code(), Some(1), "{}", out.output());
    let line = one_error_line(&out);
    assert!(
        line.starts_with(&format!("prodtrace: process {pid} is a zombie: it has exited and waits for its parent ")),
        "{line}"
    );
    assert!(line.ends_with("there is nothing left to trace"), "{line}");
    node.wait().unwrap();
}

#[test]
fn a_started_command_is_reported_as_it_ended() {
    for (script, ended) in [
        ("setTimeout(() => process.kill(process.pid, 'SIGSEGV'), 300)", "command was killed by SIGSEGV"),
        ("setTimeout(() => process.exit(3), 300)", "command exited with status 3"),
    ] {
        let (st, out) = run(&mut latency(&["--", NODE, "-e", script]), LIMIT);
        assert!(st.success(), "{}", out.output());
        assert!(
            out.stderr().iter().any(|l| l.starts_with(&format!("prodtrace: {ended} after "))),
            "{ended}: {}",
            out.output()
        );
    }
}

#[test]
fn an_interrupted_session_ends_its_command_and_says_so() {
    let mut tracer = Running::start(&mut latency(&["--", NODE, "-e", "setTimeout(() => {}, 30000)"]));
    let line = tracer.wait_line("Tracing", true, LIMIT);
    let pid: u32 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    tracer.signal(libc::SIGINT);
    assert!(tracer.wait(LIMIT).success(), "{}", tracer.output());
    assert!(
        tracer.stderr().iter().any(|l| l
            == &format!(
                "prodtrace: command {pid} was killed by SIGTERM (a command prodtrace started ends with its session)"
            )),
        "{}",
        tracer.output()
    );
    assert_eq!(state(pid), None, "ended and reaped");
}
