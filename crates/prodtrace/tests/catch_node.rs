//! `prodtrace catch` on Node itself: `examples/node/badclose.js` closes a
//! descriptor twice with fs.closeSync(); the failing close() is caught with
//! --comm node (narrowed to the node we start), its stack shows both the
//! native frames (libuv's close, node::fs::Close) and the JIT'd JavaScript
//! frames named in /tmp/perf-PID.map (node --perf-basic-prof).

mod catch_support;

use std::time::Duration;

use catch_support::*;

const LIMIT: Duration = Duration::from_secs(120);

/// The PID in the `pid N (node)` line.
fn caught_pid(stdout: &str) -> u32 {
    let at = stdout.find("pid ").expect("a pid line");
    stdout[at + 4..].split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn node_stack_has_native_and_javascript_frames() {
    let script = repo().join("examples/node/badclose.js");
    let out = run(
        catch(&[
            "--comm",
            "node",
            "--syscall",
            "close",
            "--errno",
            "EBADF",
            "--",
            "/usr/bin/node",
            "--perf-basic-prof",
        ])
        .arg(&script)
        .args(["20000", "0", "", "1500"]),
        LIMIT,
    );
    let pid = caught_pid(&out.stdout);
    let _ = std::fs::remove_file(format!("/tmp/perf-{pid}.map"));
    assert!(out.status.success(), "{}", out.all());
    assert!(out.stdout.contains("second close of fd"), "node went on and saw EBADF: {}", out.all());
    let names = stack_names(&out.stdout);
    let pos = |pat: &str| names.iter().position(|n| n.contains(pat));
    let close = pos("uv_fs_close").unwrap_or_else(|| panic!("libuv's close in the stack: {}", out.all()));
    let binding = pos("node::fs::Close").unwrap_or_else(|| panic!("{}", out.all()));
    let js_close = pos("closeSync").unwrap_or_else(|| panic!("fs.closeSync (JS) in the stack: {}", out.all()));
    let js_user = pos("releaseHandle").unwrap_or_else(|| panic!("the script's function in the stack: {}", out.all()));
    assert!(close < binding && binding < js_close && js_close < js_user, "caller order: {names:?}");
    assert!(names[js_user].starts_with("JS:"), "a JIT frame from the perf map: {names:?}");
}

#[test]
fn node_core_opens_in_gdb_at_the_failing_close() {
    let dir = tempfile::tempdir().unwrap();
    let script = repo().join("examples/node/badclose.js");
    let marker = dir.path().join("marker");
    let out = run(
        catch(&["--comm", "node", "--syscall", "close", "--errno", "EBADF", "--core"])
            .arg(dir.path())
            .args(["-w", "--", "/usr/bin/node"])
            .arg(&script)
            .args(["0", "0", marker.to_str().unwrap()]),
        LIMIT,
    );
    assert!(out.status.success(), "{}", out.all());
    let core = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().unwrap().to_str().unwrap().starts_with("core.node."))
        .unwrap_or_else(|| panic!("no core written: {}", out.all()));
    // Node was resumed and carried on past the failing close.
    assert!(out.stdout.contains("second close of fd"), "{}", out.all());
    assert!(marker.exists());
    let bt = gdb_core_bt(std::path::Path::new("/usr/bin/node"), &core);
    let frames = bt_frames(&bt);
    assert!(!frames.is_empty(), "{bt}");
    // libuv is linked into node: its close path, then node's fs binding.
    let pos = |pat: &str| frames.iter().position(|f| f.contains(pat));
    let close = pos("uv__fs_close").or(pos("uv__close_nocancel")).unwrap_or_else(|| panic!("{bt}"));
    let binding = pos("node::fs::Close").unwrap_or_else(|| panic!("{bt}"));
    assert!(close < binding, "{bt}");
}

#[test]
fn node_is_held_at_the_failing_close_until_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let script = repo().join("examples/node/badclose.js");
    let marker = dir.path().join("marker");
    let out = run(
        catch(&["--comm", "node", "--syscall", "close", "--errno", "EBADF", "--stop", "-w", "--", "/usr/bin/node"])
            .arg(&script)
            .args(["0", "0", marker.to_str().unwrap()]),
        LIMIT,
    );
    assert!(out.status.success(), "{}", out.all());
    let pid = resume_pid(&out.stdout);
    let states = thread_states(pid);
    assert!(states.len() > 1 && states.iter().all(|&s| s == 'T'), "every node thread held: {states:?}");
    std::thread::sleep(Duration::from_millis(300));
    // The script writes the marker right after the failing closeSync().
    assert!(!marker.exists(), "node ran on past the failing close()");
    assert!(!out.stdout.contains("second close of fd"), "{}", out.all());
    let bt = gdb_pid_bt(pid);
    assert!(bt.contains("uv_fs_close"), "{bt}");
    assert!(!marker.exists());
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGCONT).unwrap();
    assert!(wait_for(Duration::from_secs(20), || marker.exists()), "resumed node finished the script");
    assert!(wait_for(Duration::from_secs(20), || state(pid).is_none()));
}
