//! `prodtrace catch` on Node itself: `examples/node/badclose.js` closes a
//! descriptor twice with fs.closeSync(); the failing close() is caught and
//! its stack shows the native frames (libuv's close, node::fs::Close) and
//! the JavaScript frames above them — read from V8's heap with the binary's
//! metadata, no `--perf-basic-prof` — with the line and column of each
//! call, on node 18, 20, 22 and 24; with `--core` and `--stop` they are read
//! while the process is held, and agree with `prodtrace jsstack` on the
//! core and on the held process.

mod catch_support;
#[path = "jsstack_support/mod.rs"]
mod jsstack_support;

use std::time::Duration;

use catch_support::*;
use jsstack_support::Node;

const LIMIT: Duration = Duration::from_secs(120);

/// One JavaScript frame of a printed stack: `name (script:line:col)  [tier]`.
#[derive(Debug, Clone, PartialEq)]
struct JsLine {
    name: String,
    script: String,
    line: u32,
    column: u32,
    tier: String,
}

/// The JavaScript frames (those with a script) of the stack `catch` printed.
fn js_lines(stdout: &str) -> Vec<JsLine> {
    stdout
        .lines()
        .filter(|l| l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let text = l.split_whitespace().skip(2).collect::<Vec<_>>().join(" ");
            let (call, tier) = text.rsplit_once(" [")?;
            let (name, location) = call.strip_suffix(')')?.rsplit_once(" (")?;
            let mut parts = location.rsplitn(3, ':');
            let column = parts.next()?.parse().ok()?;
            let line = parts.next()?.parse().ok()?;
            let script = parts.next()?.to_string();
            Some(JsLine { name: name.to_string(), script, line, column, tier: tier.trim_end_matches(']').to_string() })
        })
        .collect()
}

/// Line and column (1-based) of `call` on the first line of badclose.js
/// containing `marker`: where a frame stands while that call runs.
fn position(marker: &str, call: &str) -> (u32, u32) {
    let src = std::fs::read_to_string(repo().join("examples/node/badclose.js")).unwrap();
    let (i, line) = src.lines().enumerate().find(|(_, l)| l.contains(marker)).unwrap();
    (i as u32 + 1, line.find(call).unwrap() as u32 + 1)
}

/// `catch ARGS -- node badclose.js WARMUP 0 MARKER LINGER_MS` on `node`.
fn catch_badclose(node: Node, args: &[&str], warmup: &str, marker: &str, linger_ms: &str) -> Out {
    let mut cmd = catch(&["--syscall", "close", "--errno", "EBADF"]);
    let node_cmd = node.command();
    cmd.args(args).arg("--").arg(node_cmd.get_program()).args(node_cmd.get_args());
    cmd.arg(repo().join("examples/node/badclose.js")).args([warmup, "0", marker, linger_ms]);
    run(&mut cmd, LIMIT)
}

/// Asserts the stack holds node's close path, then closeSync, then the
/// script's releaseHandle and main at the lines and columns of their calls.
fn assert_node_close_stack(out: &Out) {
    let names = stack_names(&out.stdout);
    let pos = |pat: &str| names.iter().position(|n| n.contains(pat));
    let close = pos("uv_fs_close").unwrap_or_else(|| panic!("libuv's close in the stack: {}", out.all()));
    let binding = pos("node::fs::Close").unwrap_or_else(|| panic!("{}", out.all()));
    let js = js_lines(&out.stdout);
    let script = repo().join("examples/node/badclose.js").to_str().unwrap().to_string();
    let at = |name: &str| {
        js.iter().position(|f| f.name == name).unwrap_or_else(|| panic!("{name} in the stack: {}", out.all()))
    };
    let (close_sync, release, main) = (at("closeSync"), at("releaseHandle"), at("main"));
    assert_eq!(js[close_sync].script, "node:fs", "{}", out.all());
    assert!(
        close < binding && binding < names.iter().position(|n| n == "closeSync").unwrap(),
        "caller order: {names:?}"
    );
    assert!(close_sync < release && release < main, "{js:#?}");
    let (release_line, release_col) = position("fs.closeSync(fd);", "closeSync");
    let (main_line, main_col) = position("the bug", "releaseHandle");
    assert_eq!(
        (&js[release].script, js[release].line, js[release].column),
        (&script, release_line, release_col),
        "{js:#?}"
    );
    assert_eq!((&js[main].script, js[main].line, js[main].column), (&script, main_line, main_col), "{js:#?}");
    assert!(out.stdout.contains("JavaScript frames read from V8"), "{}", out.all());
}

/// `--print` alone: the stack at the call, native and JavaScript frames,
/// with no flag given to node; the script's functions made hot first, so
/// they run as optimized code (some inlined into others).  Node is not
/// held: it stays alive a while (1.5 s) for its heap to be read.
///
/// Because node runs on, a garbage collection in the moment between the
/// call and the read can move or free the optimized code of a frame; that
/// frame then shows its function's name without a line and without the
/// callees inlined into it (documented; never a wrong line).  Seen once in
/// a loaded CI run, so a run whose optimized frame has no line is tried
/// again, up to three runs; every run must be right in what it prints.
fn print_shows_javascript_frames(node: Node) {
    let mut out = None;
    for _ in 0..3 {
        let o = catch_badclose(node, &["--print"], "20000", "", "1500");
        assert!(o.status.success(), "{}", o.all());
        assert!(o.stdout.contains("second close of fd"), "node went on and saw EBADF: {}", o.all());
        let js = js_lines(&o.stdout);
        let lost_its_code = !js.iter().any(|f| f.name == "closeSync")
            && o.stdout.lines().any(|l| l.contains("releaseHandle (") && l.contains(".js)  ["));
        if !lost_its_code {
            out = Some(o);
            break;
        }
        eprintln!("optimized releaseHandle read without its line (code moved since the call); again:\n{}", o.stdout);
    }
    let out = out.expect("three runs in a row lost releaseHandle's optimized code");
    assert_node_close_stack(&out);
    assert!(js_lines(&out.stdout).iter().any(|f| f.tier != "interpreted"), "JIT'd frames: {}", out.all());
}

/// `--hold`: the process is held only while the stack is read, so the
/// optimized frames are read as they were at the call (no collection can
/// move their code meanwhile: compare `--print` alone), then it runs on.
fn hold_reads_the_frames_at_the_call(node: Node) {
    let _lock = stopping_sessions();
    let out = catch_badclose(node, &["--hold", "-w"], "20000", "", "0");
    assert!(out.status.success(), "{}", out.all());
    assert!(out.stdout.contains("second close of fd"), "node was resumed and saw EBADF: {}", out.all());
    assert!(out.stdout.lines().any(|l| l.starts_with("resumed process ")), "{}", out.all());
    assert_node_close_stack(&out);
    assert!(js_lines(&out.stdout).iter().any(|f| f.tier != "interpreted"), "JIT'd frames: {}", out.all());
}

/// `--core --print`: the frames are read while the process is held for its
/// core, and are the frames `prodtrace jsstack` reads from that core.
fn core_and_its_stack_agree(node: Node) {
    let _lock = stopping_sessions();
    let dir = tempfile::tempdir().unwrap();
    let out = catch_badclose(node, &["--print", "--core", dir.path().to_str().unwrap(), "-w"], "0", "", "0");
    assert!(out.status.success(), "{}", out.all());
    assert_node_close_stack(&out);
    let core = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.path()).next().expect("a core");
    let o = std::process::Command::new(prodtrace_bin())
        .args(["jsstack", "--core", core.to_str().unwrap(), "--js-only"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let from_core = js_lines(&String::from_utf8_lossy(&o.stdout));
    assert!(!from_core.is_empty());
    assert_eq!(
        js_lines(&out.stdout),
        from_core[..js_lines(&out.stdout).len().min(from_core.len())],
        "catch vs jsstack --core"
    );
}

/// `--stop --print`: the frames are printed while the process is held,
/// and are those `prodtrace jsstack` reads from the held process.
fn stop_and_jsstack_agree(node: Node) {
    let _lock = stopping_sessions();
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("marker");
    let out = catch_badclose(node, &["--print", "--stop", "-w"], "0", marker.to_str().unwrap(), "0");
    assert!(out.status.success(), "{}", out.all());
    let pid = resume_pid(&out.stdout);
    assert_node_close_stack(&out);
    let o =
        std::process::Command::new(prodtrace_bin()).args(["jsstack", &pid.to_string(), "--js-only"]).output().unwrap();
    let live = js_lines(&String::from_utf8_lossy(&o.stdout));
    assert!(!marker.exists(), "held at the close");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGCONT).unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(js_lines(&out.stdout), live[..js_lines(&out.stdout).len().min(live.len())], "catch vs jsstack PID");
    assert!(wait_for(Duration::from_secs(20), || marker.exists()), "resumed node finished the script");
}

/// One test per check and node version: `node18::print_shows_javascript_frames`, ...
macro_rules! versions {
    ($($module:ident: $major:literal),* $(,)?) => {$(
        mod $module {
            const NODE: super::Node = super::Node($major);
            #[test]
            fn print_shows_javascript_frames() {
                super::print_shows_javascript_frames(NODE)
            }
            #[test]
            fn hold_reads_the_frames_at_the_call() {
                super::hold_reads_the_frames_at_the_call(NODE)
            }
            #[test]
            fn core_and_its_stack_agree() {
                super::core_and_its_stack_agree(NODE)
            }
            #[test]
            fn stop_and_jsstack_agree() {
                super::stop_and_jsstack_agree(NODE)
            }
        }
    )*};
}

versions! { node18: 18, node20: 20, node22: 22, node24: 24 }

#[test]
fn node_core_opens_in_gdb_at_the_failing_close() {
    let _lock = stopping_sessions();
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
    let _lock = stopping_sessions();
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
