//! Runs the package's Node.js tests (`node --test test/*.test.js`) against
//! the add-on cargo just built in this target directory, so
//! `cargo test --release --workspace` covers the JavaScript side too: the
//! API, bpftrace against real processes, bunyan end to end.  Needs root
//! (bpftrace) and setup.sh's npm packages (examples/node).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds the cdylib into this test binary's target directory (`cargo
/// test` builds only the test harnesses; a no-op when it is up to date) and
/// returns its path.
fn addon() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>");
    let target_dir = profile_dir.parent().expect("target directory");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet", "-p", "prodtrace-dtrace-provider"])
        .env("CARGO_TARGET_DIR", target_dir)
        .status()
        .expect("run cargo build");
    assert!(status.success(), "cargo build of the add-on failed");
    let lib = profile_dir.join("libprodtrace_dtrace_provider.so");
    assert!(lib.exists(), "add-on not built: {}", lib.display());
    lib
}

#[test]
fn node_tests_pass() {
    let pkg = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(pkg.join("test"))
        .expect("test directory")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".test.js"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "node test files: {files:?}");
    let addon = addon();
    let bunyan = addon.with_file_name("bunyan");
    let output = Command::new("node")
        .arg("--test")
        .arg("--test-concurrency=1")
        .args(&files)
        .current_dir(pkg)
        .env("PRODTRACE_DTRACE_PROVIDER_ADDON", &addon)
        .env("PRODTRACE_BUNYAN_BIN", &bunyan)
        .output()
        .expect("run node --test (is node installed?)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    print!("{stdout}");
    eprint!("{stderr}");
    assert!(output.status.success(), "node --test failed: {}", output.status);
    assert!(stdout.contains("\n# fail 0\n"), "no failure line in node's report");
    assert!(!stdout.contains("\n# pass 0\n"), "node ran no test");
}
