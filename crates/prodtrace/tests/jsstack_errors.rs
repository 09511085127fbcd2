//! `prodtrace jsstack` on bad input: processes that are not node, gone,
//! stopped or traced; files that are not cores, cores of other programs,
//! cores cut short, filtered or damaged.  Every case ends with a clear
//! one-line error (or a warning and what could be read), never a panic or
//! a hang, and the target is left as it was found.

mod jsstack_support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jsstack_support::*;

const NODE: &str = "/usr/bin/node";

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_clean_failure(o: &std::process::Output, want: &str) {
    assert!(!o.status.success(), "{}", text(o));
    let err = stderr(o);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("prodtrace: ") && err.contains(want), "{want:?} in {err}");
}

fn proc_status(pid: u32, field: &str) -> String {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines().find_map(|l| l.strip_prefix(&format!("{field}:"))).unwrap().trim().to_string()
}

#[test]
fn a_process_that_is_not_node() {
    let mut sleep = Command::new("sleep").arg("60").spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !proc_status(sleep.id(), "State").starts_with('S') {
        assert!(Instant::now() < deadline, "sleep never slept");
        std::thread::sleep(Duration::from_millis(10));
    }
    let o = jsstack(&[&sleep.id().to_string()]);
    assert_clean_failure(&o, "no V8 metadata in /usr/bin/sleep");
    assert_eq!(proc_status(sleep.id(), "TracerPid"), "0");
    assert!(proc_status(sleep.id(), "State").starts_with('S'), "left sleeping, not stopped");
    sleep.kill().unwrap();
    sleep.wait().unwrap();
}

#[test]
fn a_process_that_does_not_exist() {
    assert_clean_failure(&jsstack(&["999999999"]), "no process with PID 999999999");
}

#[test]
fn a_stopped_process_is_read_and_left_stopped() {
    let demo = Demo::start(NODE20, &[], "interp", 1);
    unsafe { libc::kill(demo.pid as i32, libc::SIGSTOP) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !proc_status(demo.pid, "State").starts_with('T') {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    }
    let o = jsstack(&[&demo.pid.to_string()]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("block (") && out.contains("left stopped"), "{out}");
    std::thread::sleep(Duration::from_millis(100));
    assert!(proc_status(demo.pid, "State").starts_with('T'), "still stopped");
    assert_eq!(proc_status(demo.pid, "TracerPid"), "0");
    unsafe { libc::kill(demo.pid as i32, libc::SIGCONT) };
}

#[test]
fn a_process_traced_by_a_debugger() {
    let demo = Demo::start(NODE20, &[], "interp", 1);
    let mut gdb = Command::new("gdb")
        .args(["-nx", "-batch", "-p", &demo.pid.to_string(), "-ex", "shell sleep 20"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while proc_status(demo.pid, "TracerPid") == "0" {
        assert!(Instant::now() < deadline, "gdb did not attach");
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = jsstack(&[&demo.pid.to_string()]);
    assert_clean_failure(&o, "already traced by");
    assert!(stderr(&o).contains("gdb"), "{}", stderr(&o));
    let _ = gdb.kill();
    let _ = gdb.wait();
}

#[test]
fn files_that_are_not_node_cores() {
    let dir = tempfile::tempdir().unwrap();
    let text_file = dir.path().join("notes.txt");
    std::fs::write(&text_file, "not a core\n").unwrap();
    assert_clean_failure(&jsstack(&["--core", text_file.to_str().unwrap()]), "is not an ELF file");
    assert_clean_failure(&jsstack(&["--core", NODE]), "is not a core file");
    assert_clean_failure(&jsstack(&["--core", "/nonexistent/core"]), "cannot open /nonexistent/core");

    // A core of a program that is not node.
    let mut sleep = Command::new("sleep").arg("60").spawn().unwrap();
    let core = dir.path().join("core.sleep");
    let g = Command::new(env!("CARGO_BIN_EXE_prodtrace"))
        .args(["gcore", &sleep.id().to_string(), "-o"])
        .arg(&core)
        .output()
        .unwrap();
    sleep.kill().unwrap();
    sleep.wait().unwrap();
    assert!(g.status.success(), "{}", text(&g));
    assert_clean_failure(&jsstack(&["--core", core.to_str().unwrap()]), "no V8 metadata in /usr/bin/sleep");
    // A node core read with the wrong executable.
    let demo = Demo::start(NODE20, &[], "interp", 1);
    let node_core = dir.path().join("core.node");
    gcore(demo.pid, &node_core);
    assert_clean_failure(
        &jsstack(&["--core", node_core.to_str().unwrap(), "--exe", "/usr/bin/sleep"]),
        "no V8 metadata in",
    );
}

/// A core of the demo, and the JavaScript frames read from it intact.
fn demo_core(dir: &Path, filter: Option<&str>) -> (std::path::PathBuf, usize) {
    let demo = Demo::start(NODE20, &[], "interp", 1);
    if let Some(f) = filter {
        std::fs::write(format!("/proc/{}/coredump_filter", demo.pid), f).unwrap();
    }
    let core = dir.join(format!("core.{}", filter.unwrap_or("full")));
    gcore(demo.pid, &core);
    let (_, threads) = parse_json(&jsstack(&["--core", core.to_str().unwrap(), "--json"]));
    (core, threads.iter().map(|t| t.js().len()).sum())
}

#[test]
fn a_filtered_core_says_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    // coredump_filter 0: no anonymous memory, so no stacks and no heap.
    let (core, js) = demo_core(dir.path(), Some("0"));
    assert_eq!(js, 0);
    let o = jsstack(&["--core", core.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(stderr(&o).contains("is not in") && stderr(&o).contains("coredump_filter"), "{}", text(&o));
}

#[test]
fn truncated_and_damaged_cores_never_crash_or_hang() {
    let dir = tempfile::tempdir().unwrap();
    let (core, js) = demo_core(dir.path(), None);
    assert!(js >= 5);
    let bytes = std::fs::read(&core).unwrap();
    // Cut short at several lengths.
    for cut in [bytes.len() / 10, bytes.len() / 3, bytes.len() * 2 / 3, bytes.len() - 4096] {
        let short = dir.path().join("core.short");
        std::fs::write(&short, &bytes[..cut]).unwrap();
        let o = jsstack(&["--core", short.to_str().unwrap()]);
        assert!(!stderr(&o).contains("panicked"), "{}", text(&o));
        if o.status.success() {
            assert!(stderr(&o).contains("truncated"), "{}", text(&o));
        } else {
            assert_eq!(stderr(&o).lines().filter(|l| !l.contains("warning:")).count(), 1, "{}", text(&o));
        }
    }
    // Heap and stack words overwritten with garbage, in many places
    // (a fixed pseudo-random sequence: the same every run).
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for round in 0..8 {
        let mut damaged = bytes.clone();
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let at = (4096 + (x as usize % (damaged.len() - 4096 - 8))) & !7;
            let word = match round % 4 {
                0 => x,
                1 => x & 0xffff_ffff_ffff_fff8 | 1, // looks like a heap pointer
                2 => (x & 0xff) << 32,              // looks like a Smi
                _ => 0,
            };
            damaged[at..at + 8].copy_from_slice(&word.to_le_bytes());
        }
        let bad = dir.path().join("core.damaged");
        std::fs::write(&bad, &damaged).unwrap();
        let t0 = Instant::now();
        let o = jsstack(&["--core", bad.to_str().unwrap()]);
        assert!(!stderr(&o).contains("panicked"), "round {round}: {}", text(&o));
        // Success, or a one-line error (after warnings about the file).
        let err = stderr(&o);
        assert!(
            o.status.success() || err.lines().filter(|l| !l.contains("warning:")).count() == 1,
            "round {round}: {}",
            text(&o)
        );
        assert!(err.lines().all(|l| l.starts_with("prodtrace: ")), "round {round}: {}", text(&o));
        assert!(t0.elapsed() < Duration::from_secs(30), "round {round} took {:?}", t0.elapsed());
    }
}

#[test]
fn a_closed_stdout_leaves_the_target_running() {
    let demo = Demo::start(NODE20, &[], "interp", 1);
    let mut child = Command::new(env!("CARGO_BIN_EXE_prodtrace"))
        .args(["jsstack", &demo.pid.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(!err.contains("panicked"), "{err}");
    assert!(status.success() || err.lines().count() <= 1, "{status:?} {err}");
    assert_eq!(proc_status(demo.pid, "TracerPid"), "0");
    assert!(proc_status(demo.pid, "State").starts_with('S'), "blocked in its wait, not stopped");
}

/// Where the file holds the value of dynamic symbol `name` of an ELF file.
fn symbol_file_offset(data: &[u8], name: &str) -> usize {
    use object::{Object, ObjectSection, ObjectSymbol};
    let elf = object::File::parse(data).unwrap();
    let sym = elf.dynamic_symbols().find(|s| s.name() == Ok(name)).unwrap_or_else(|| panic!("no {name}"));
    let section = elf.section_by_index(sym.section_index().unwrap()).unwrap();
    let (offset, _) = section.file_range().unwrap();
    (offset + sym.address() - section.address()) as usize
}

#[test]
fn a_v8_layout_it_cannot_read_is_refused_naming_the_version() {
    // A node 20 core read with a copy of node whose metadata says tagged
    // values are 4 bytes (a V8 built with pointer compression, as Chrome's
    // and Electron's are): refused in one line naming V8's version.
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(NODE20, &[], "interp", 1);
    let core = dir.path().join("core");
    gcore(demo.pid, &core);
    drop(demo);
    let mut node = std::fs::read(NODE).unwrap();
    let at = symbol_file_offset(&node, "v8dbg_TaggedSize");
    assert_eq!(node[at..at + 4], 8i32.to_le_bytes());
    node[at..at + 4].copy_from_slice(&4i32.to_le_bytes());
    let patched = dir.path().join("node");
    std::fs::write(&patched, &node).unwrap();
    let o = jsstack(&["--core", core.to_str().unwrap(), "--exe", patched.to_str().unwrap()]);
    assert_clean_failure(&o, "V8 11.3 is not supported");
    assert!(stderr(&o).contains("pointer compression"), "{}", stderr(&o));
    // The same core with the real binary reads.
    assert!(jsstack(&["--core", core.to_str().unwrap()]).status.success());
}
