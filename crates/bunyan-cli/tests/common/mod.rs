//! Helpers for the CLI tests: run our `bunyan` and node-bunyan's CLI (the
//! real npm package under examples/node) on the same input, and generate
//! logs with the real bunyan logger (tests/gen-logs.js).

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repo root")
}

pub fn node() -> String {
    let n = "/usr/bin/node";
    assert!(Path::new(n).exists(), "node is required (run scripts/setup.sh)");
    n.to_owned()
}

/// node-bunyan's own CLI script.
pub fn node_bunyan() -> PathBuf {
    let p = repo_root().join("examples/node/node_modules/bunyan/bin/bunyan");
    assert!(p.exists(), "{} is missing: run `npm ci` in examples/node (scripts/setup.sh)", p.display());
    p
}

pub fn ours() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_bunyan"))
}

/// Runs a command with the given stdin bytes and environment. Stdout goes
/// to a file: node-bunyan exits with `process.exit()`, which can cut off
/// output still queued for a pipe (so a pipe would make node's side flaky).
pub fn run(mut cmd: Command, stdin: &[u8], env: &[(&str, &str)]) -> Output {
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.env_remove("BUNYAN_NO_COLOR").env_remove("BUNYAN_NO_PAGER");
    let out_file = tempfile::NamedTempFile::new().expect("temp file");
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(out_file.reopen().expect("reopen"))
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut sin = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = sin.write_all(&data);
    });
    let mut out = child.wait_with_output().expect("wait");
    writer.join().unwrap();
    out.stdout = std::fs::read(out_file.path()).expect("read output");
    out
}

pub fn run_ours(args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(ours());
    c.args(args);
    run(c, stdin, env)
}

pub fn run_node(args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(node());
    c.arg(node_bunyan()).args(args);
    run(c, stdin, env)
}

/// Asserts both CLIs give byte-identical stdout and the same exit status.
pub fn assert_same(args: &[&str], stdin: &[u8], env: &[(&str, &str)]) {
    let n = run_node(args, stdin, env);
    let o = run_ours(args, stdin, env);
    if n.stdout != o.stdout {
        let ns = String::from_utf8_lossy(&n.stdout);
        let os = String::from_utf8_lossy(&o.stdout);
        let (i, (a, b)) = ns
            .lines()
            .zip(os.lines())
            .enumerate()
            .find(|(_, (a, b))| a != b)
            .unwrap_or((0, ("<length differs>", "<length differs>")));
        panic!(
            "stdout differs for {args:?} {env:?} at line {}:\n node: {a}\n ours: {b}\n(node {} bytes, ours {} bytes; ours stderr: {})",
            i + 1,
            n.stdout.len(),
            o.stdout.len(),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    assert_eq!(
        n.status.code(),
        o.status.code(),
        "exit status differs for {args:?}; ours stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        !n.stdout.is_empty() || n.status.code() != Some(0),
        "empty output for {args:?}: the comparison would prove nothing"
    );
}

/// Writes `n` records made by the real bunyan logger to `path`.
pub fn gen_log(path: &Path, n: usize, seed: u32, offset_ms: u64) {
    let script = repo_root().join("crates/bunyan-cli/tests/gen-logs.js");
    let out = Command::new(node())
        .arg(script)
        .args([n.to_string(), seed.to_string(), offset_ms.to_string()])
        .output()
        .expect("run gen-logs.js");
    assert!(out.status.success(), "gen-logs.js failed: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout.iter().filter(|&&b| b == b'\n').count(), n, "generator wrote a line per record");
    std::fs::write(path, out.stdout).unwrap();
}

pub fn odd_log() -> PathBuf {
    repo_root().join("crates/bunyan-cli/tests/data/odd.log")
}
