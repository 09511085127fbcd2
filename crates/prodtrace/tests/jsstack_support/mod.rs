//! Helpers of the `prodtrace jsstack` tests: the node versions they run on
//! ([`Node`]: node 18, 20, 22 and 24, found by `scripts/node-version`),
//! starting the demo program (`examples/node/jsstack-demo.js`) and reading
//! V8's own view of its stack (the `new Error().stack` it prints, and
//! `_v8_internal_Print_StackTrace()` called from gdb), running `prodtrace
//! jsstack --json` and parsing it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// A node version the tests run on: /usr/bin/node (20) or one that
/// `scripts/setup.sh` put in the cache (18 from Debian 12's packages, 22
/// and 24 from npm).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Node(pub u32);

pub const NODE20: Node = Node(20);

impl Node {
    /// `scripts/node-version MAJOR`: runs node, with the environment it
    /// needs (node 18's libnode), as the same process (exec).
    pub fn command(self) -> Command {
        let mut c = Command::new(repo().join("scripts/node-version"));
        c.arg(self.0.to_string());
        c
    }

    /// The node binary (the process's executable).
    pub fn path(self) -> PathBuf {
        let o = self.command().output().unwrap();
        assert!(
            o.status.success(),
            "node {} is not installed: run scripts/setup.sh ({})",
            self.0,
            String::from_utf8_lossy(&o.stderr)
        );
        PathBuf::from(String::from_utf8(o.stdout).unwrap().trim_end())
    }

    /// The version of V8 that node ships.
    pub fn v8(self) -> &'static str {
        match self.0 {
            18 => "10.2",
            20 => "11.3",
            22 => "12.4",
            24 => "13.6",
            n => panic!("node {n} is not one of the tested versions"),
        }
    }
}

pub fn demo_script() -> PathBuf {
    repo().join("examples/node/jsstack-demo.js")
}

/// `prodtrace jsstack ARGS...`, run to completion (at most 60 s).
pub fn jsstack(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_prodtrace"))
        .arg("jsstack")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("prodtrace jsstack {args:?} did not finish in 60 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

/// `prodtrace gcore PID -o CORE`, which must succeed.
pub fn gcore(pid: u32, core: &std::path::Path) {
    let o = Command::new(env!("CARGO_BIN_EXE_prodtrace"))
        .args(["gcore", &pid.to_string(), "-o"])
        .arg(core)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
}

pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A running demo program; killed when dropped.
pub struct Demo {
    pub child: Child,
    pub pid: u32,
    pub out: PathBuf,
    _dir: tempfile::TempDir,
}

impl Demo {
    /// Starts `node [node_args] jsstack-demo.js MODE` and waits until
    /// `threads` threads have reported their stacks.
    pub fn start(node: Node, node_args: &[&str], mode: &str, threads: usize) -> Demo {
        Demo::start_with(node, node_args, mode, threads, |_| {})
    }

    pub fn start_with(
        node: Node,
        node_args: &[&str],
        mode: &str,
        threads: usize,
        setup: impl FnOnce(&mut Command),
    ) -> Demo {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("stdout");
        let mut cmd = node.command();
        cmd.args(node_args).arg(demo_script()).arg(mode).stdin(Stdio::null());
        cmd.stdout(std::fs::File::create(&out).unwrap()).stderr(Stdio::inherit());
        setup(&mut cmd);
        let child = cmd.spawn().unwrap();
        let pid = child.id();
        let demo = Demo { child, pid, out, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        while demo.reports().len() < threads {
            assert!(Instant::now() < deadline, "the demo did not report {threads} stacks in 60 s: {}", demo.stdout());
            std::thread::sleep(Duration::from_millis(20));
        }
        // The main thread reports, then blocks in Atomics.wait (a futex):
        // wait for that, so its stack is the one it reported.
        while mode != "spin"
            && !std::fs::read_to_string(format!("/proc/{pid}/syscall")).is_ok_and(|s| s.starts_with("202 "))
        {
            assert!(Instant::now() < deadline, "the demo's main thread did not block in Atomics.wait in 60 s");
            std::thread::sleep(Duration::from_millis(10));
        }
        demo
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// The JSON lines the demo printed.
    pub fn reports(&self) -> Vec<Value> {
        self.stdout().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }

    /// V8's `new Error().stack` of thread `thread` ("main", "worker").
    pub fn error_stack(&self, thread: &str) -> Vec<StackLine> {
        let r = self
            .reports()
            .into_iter()
            .find(|r| r["thread"] == thread)
            .unwrap_or_else(|| panic!("no report of {thread}"));
        r["stack"].as_array().unwrap().iter().map(|l| StackLine::parse(l.as_str().unwrap())).collect()
    }

    /// Calls `_v8_internal_Print_StackTrace()` in thread `tid` from gdb (the
    /// output goes to the demo's stdout) and parses what it printed.
    pub fn v8_print_stack_trace(&self, tid: u32) -> Vec<V8Frame> {
        let before = self.stdout().len();
        let select = format!("python [t.switch() for t in gdb.selected_inferior().threads() if t.ptid[1] == {tid}]");
        let o = Command::new("gdb")
            .args([
                "-nx",
                "-batch",
                "-p",
                &self.pid.to_string(),
                "-ex",
                &select,
                "-ex",
                "call (void)_v8_internal_Print_StackTrace()",
                "-ex",
                "detach",
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let all = self.stdout();
            let new = &all[before.min(all.len())..];
            if let Some(at) = new.find("==== JS stack trace") {
                let section = &new[at..];
                if let Some(end) = section.find("==== Details") {
                    return V8Frame::parse_all(&section[..end]);
                }
            }
            assert!(
                Instant::now() < deadline,
                "no V8 stack trace printed: gdb said {}",
                String::from_utf8_lossy(&o.stdout)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The thread IDs of the demo.
    pub fn tids(&self) -> Vec<u32> {
        let mut v: Vec<u32> = std::fs::read_dir(format!("/proc/{}/task", self.pid))
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        v.sort();
        v
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One line of `new Error().stack`: `at NAME (FILE:LINE:COL)` or `at FILE:LINE:COL`.
#[derive(Debug, Clone, PartialEq)]
pub struct StackLine {
    pub name: String,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub column: Option<u32>,
}

impl StackLine {
    pub fn parse(s: &str) -> StackLine {
        let (name, loc) = match s.rfind(" (") {
            Some(i) if s.ends_with(')') => (s[..i].to_string(), &s[i + 2..s.len() - 1]),
            _ => (String::new(), s),
        };
        let mut parts = loc.rsplitn(3, ':');
        let col = parts.next().and_then(|c| c.parse().ok());
        let line = parts.next().and_then(|l| l.parse().ok());
        match (parts.next(), line, col) {
            (Some(file), Some(line), Some(col)) => {
                StackLine { name, file: Some(file.to_string()), line: Some(line), column: Some(col) }
            }
            _ => StackLine { name, file: None, line: None, column: None },
        }
    }
}

/// One JavaScript frame of `_v8_internal_Print_StackTrace()`:
/// `N: NAME [0x..] [FILE:LINE]` (interpreted) or `[FILE:~LINE]` (other
/// tiers: the function's first line).
#[derive(Debug, Clone, PartialEq)]
pub struct V8Frame {
    pub name: String,
    pub file: String,
    pub line: u32,
    /// `~`: the line is where the function starts, not the current line.
    pub approximate: bool,
}

impl V8Frame {
    fn parse_all(section: &str) -> Vec<V8Frame> {
        section
            .lines()
            .filter_map(|l| {
                let l = l.trim_start();
                let (_, rest) = l.split_once(": ")?;
                let name_end = rest.find(" [0x")?;
                let name = rest[..name_end].to_string();
                let loc_start = rest[name_end + 3..].find(" [")? + name_end + 5;
                let loc_end = rest[loc_start..].find(']')? + loc_start;
                let (file, line) = rest[loc_start..loc_end].rsplit_once(':')?;
                let approximate = line.starts_with('~');
                Some(V8Frame {
                    name,
                    file: file.to_string(),
                    line: line.trim_start_matches('~').parse().ok()?,
                    approximate,
                })
            })
            .collect()
    }
}

/// One thread of `jsstack --json`.
#[derive(Debug)]
pub struct JsThread {
    pub tid: u32,
    pub label: String,
    pub frames: Vec<Value>,
}

impl JsThread {
    /// The JavaScript frames only.
    pub fn js(&self) -> Vec<&Value> {
        self.frames.iter().filter(|f| f["kind"] == "js").collect()
    }
}

/// Parses `jsstack --json` output.
pub fn parse_json(o: &Output) -> (Value, Vec<JsThread>) {
    assert!(o.status.success(), "{}", text(o));
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)));
    let threads = doc["threads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| JsThread {
            tid: t["tid"].as_u64().unwrap() as u32,
            label: t["label"].as_str().unwrap().to_string(),
            frames: t["frames"].as_array().unwrap().clone(),
        })
        .collect();
    (doc, threads)
}

/// The line (1-based) of the demo marked `// WAIT` and the column of the
/// `wait` it calls: where the innermost JavaScript frame stands.
pub fn wait_position() -> (u32, u32) {
    let src = std::fs::read_to_string(demo_script()).unwrap();
    let (i, line) = src.lines().enumerate().find(|(_, l)| l.contains("// WAIT")).unwrap();
    (i as u32 + 1, line.find("wait(").unwrap() as u32 + 1)
}

/// Asserts that `ours` (jsstack's JavaScript frames of one thread) are
/// V8's `new Error().stack`: same functions, scripts, lines and columns,
/// in order — except the innermost, which is at the `Atomics.wait` call
/// rather than at the `new Error()` before it.
pub fn assert_matches_error_stack(ours: &[&Value], theirs: &[StackLine]) {
    let shown: Vec<String> = ours.iter().map(|f| f.to_string()).collect();
    assert!(ours.len() >= theirs.len(), "fewer frames than V8's {theirs:#?}: {shown:#?}");
    let (wait_line, wait_col) = wait_position();
    for (i, (o, t)) in ours.iter().zip(theirs).enumerate() {
        let (line, col) = if i == 0 { (Some(wait_line), Some(wait_col)) } else { (t.line, t.column) };
        assert_eq!(
            o["script"].as_str(),
            t.file.as_deref().filter(|f| *f != "<anonymous>"),
            "frame {i} script: {shown:#?} vs {theirs:#?}"
        );
        assert_eq!(o["line"].as_u64().map(|v| v as u32), line, "frame {i} line: {shown:#?} vs {theirs:#?}");
        assert_eq!(o["column"].as_u64().map(|v| v as u32), col, "frame {i} column: {shown:#?} vs {theirs:#?}");
        let name = o["function"].as_str().unwrap();
        assert!(name_matches(name, &t.name), "frame {i}: {name:?} is not V8's {:?}: {shown:#?}", t.name);
    }
}

/// Whether our function name is the one V8 shows in an Error stack, which
/// may prefix the receiver's type (`Object.<anonymous>`,
/// `EventEmitter.emit`) and suffix the property (`[as runMain]`).
pub fn name_matches(ours: &str, theirs: &str) -> bool {
    let theirs = theirs.split(" [as ").next().unwrap();
    let theirs = theirs.strip_prefix("async ").unwrap_or(theirs);
    let theirs = theirs.strip_prefix("new ").unwrap_or(theirs);
    ours == theirs
        || (!ours.is_empty() && theirs.ends_with(&format!(".{ours}")))
        || (ours.is_empty() && (theirs.is_empty() || theirs.ends_with("<anonymous>") || theirs.starts_with('[')))
}

/// Asserts that the frames V8 prints itself (`_v8_internal_Print_StackTrace`,
/// one per physical frame: inlined functions are not shown) are our
/// non-inlined JavaScript frames that have a script: same names, scripts,
/// and lines (for frames V8 shows with `~`, the line where the function
/// starts, our current line must be at or after it).
pub fn assert_matches_v8_trace(ours: &[&Value], v8: &[V8Frame]) {
    let physical: Vec<&&Value> = ours.iter().filter(|f| f["inlined"] == false && f["script"].is_string()).collect();
    let shown: Vec<String> = physical.iter().map(|f| f.to_string()).collect();
    assert_eq!(physical.len(), v8.len(), "frame count: ours {shown:#?} V8 {v8:#?}");
    for (i, (o, t)) in physical.iter().zip(v8).enumerate() {
        assert_eq!(o["script"].as_str(), Some(t.file.as_str()), "frame {i}: {shown:#?} vs {v8:#?}");
        let line = o["line"].as_u64().unwrap() as u32;
        if t.approximate {
            assert!(line >= t.line, "frame {i}: line {line} before its function's start {}: {shown:#?}", t.line);
        } else {
            assert_eq!(line, t.line, "frame {i}: {shown:#?} vs {v8:#?}");
        }
        let name = o["function"].as_str().unwrap();
        let (printed, aka) = match t.name.split_once("(aka ") {
            Some((a, b)) => (a.to_string(), b.trim_end_matches(')').to_string()),
            None => (t.name.clone(), String::new()),
        };
        // V8 prints an anonymous function's own (empty) name, never the
        // name it inferred from the source (`exports.emitMessage = function`),
        // which we show: names are compared with Error.stack's for those.
        let ok = [&printed, &aka].iter().any(|n| {
            name == n.as_str()
                || (!name.is_empty() && name.ends_with(&format!(".{n}")))
                || n.as_str() == "/* anonymous */"
        });
        assert!(ok, "frame {i}: {name:?} is not V8's {:?}", t.name);
    }
}
