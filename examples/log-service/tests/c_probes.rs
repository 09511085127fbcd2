//! The engine against plain C programs (tests/fixtures/, compiled here with
//! the system C compiler): a probe without a semaphore in the main binary,
//! and a shared library with a semaphore-guarded probe that the program
//! dlopen()s after snooping has started.

mod common;

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use common::*;

/// Compiles fixture `src` into `out` with extra `flags`.
fn cc(src: &str, out: &Path, flags: &[&str]) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(src);
    let st = Command::new("cc").args(["-O2", "-o"]).arg(out).arg(&src).args(flags).status().expect("a C compiler (cc)");
    assert!(st.success(), "compiling {}", src.display());
}

fn build(dir: &Path) -> (PathBuf, PathBuf) {
    let exe = dir.join("nosema");
    let lib = dir.join("libsema.so");
    cc("nosema.c", &exe, &["-ldl"]);
    cc("libsema.c", &lib, &["-shared", "-fPIC"]);
    (exe, lib)
}

fn snooper(pid: i32) -> Proc {
    Proc::spawn(Command::new(sibling_bin("bunyan-snoop", "bunyan-snoop")).arg(pid.to_string()))
}

#[test]
fn snoops_probes_without_semaphores_in_a_c_program() {
    let dir = tempfile::tempdir().unwrap();
    let (exe, _) = build(dir.path());
    let probes = bunyan_snoop::notes::bunyan_probes(&exe).unwrap();
    assert_eq!(probes.len(), 1);
    assert_eq!((probes[0].name.as_str(), probes[0].semaphore_offset), ("log-info", None));

    let prog = Proc::spawn(&mut Command::new(&exe));
    assert_eq!(prog.stdout.next(Duration::from_secs(10)).as_deref(), Some("ready"));
    let mut snoop = snooper(prog.pid());
    let mut ns = Vec::new();
    while ns.len() < 10 {
        let r = record(&snoop.stdout.next(Duration::from_secs(20)).expect("records from the C program"));
        assert_eq!((r["name"].as_str(), r["pid"].as_i64()), (Some("nosema"), Some(prog.pid() as i64)));
        ns.push(r["n"].as_u64().unwrap());
    }
    assert!(ns.windows(2).all(|w| w[1] == w[0] + 1), "{ns:?}");
    snoop.signal(libc::SIGINT);
    assert!(snoop.wait(Duration::from_secs(10)).success());
}

/// A library loaded after snooping started is picked up by the rescan; its
/// semaphore is raised by the kernel while attached and dropped after.
#[test]
fn picks_up_a_library_loaded_later() {
    let dir = tempfile::tempdir().unwrap();
    let (exe, lib) = build(dir.path());
    let lib_probes = bunyan_snoop::notes::bunyan_probes(&lib).unwrap();
    assert_eq!(lib_probes.len(), 1);
    assert!(lib_probes[0].semaphore_offset.is_some());

    let prog = Proc::spawn(Command::new(&exe).arg(&lib));
    assert_eq!(prog.stdout.next(Duration::from_secs(10)).as_deref(), Some("ready"));
    let mut snoop = snooper(prog.pid());
    assert_eq!(prog.stdout.next(Duration::from_secs(10)).as_deref(), Some("loaded"));
    let end = Instant::now() + Duration::from_secs(20);
    let mut lib_ns = Vec::new();
    while lib_ns.len() < 10 {
        let line = snoop.stdout.next(end.saturating_duration_since(Instant::now())).expect("records");
        let r = record(&line);
        if r["name"] == "libsema" {
            lib_ns.push(r["n"].as_u64().unwrap());
        }
    }
    assert!(lib_ns.windows(2).all(|w| w[1] == w[0] + 1), "{lib_ns:?}");
    let sem = |pid| bunyan_snoop::semaphores(pid).unwrap().into_iter().map(|s| (s.probe, s.value)).collect::<Vec<_>>();
    assert_eq!(sem(prog.pid()), [("log-debug".to_string(), 1)]);
    snoop.signal(libc::SIGINT);
    assert!(snoop.wait(Duration::from_secs(10)).success());
    let end = Instant::now() + Duration::from_secs(5);
    while sem(prog.pid()) != [("log-debug".to_string(), 0)] {
        assert!(Instant::now() < end, "semaphore back to 0: {:?}", sem(prog.pid()));
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A process forked while its parent is snooped: the child is not a target
/// (none of its records arrive), and its copy of the semaphore, raised when
/// it was forked, is back to 0 with the parent's once snooping stops.
#[test]
fn forked_child_is_not_snooped_and_its_semaphore_drops() {
    let dir = tempfile::tempdir().unwrap();
    let (exe, lib) = build(dir.path());
    let prog = Proc::spawn(Command::new(&exe).arg(&lib).arg("fork"));
    assert_eq!(prog.stdout.next(Duration::from_secs(10)).as_deref(), Some("ready"));
    assert_eq!(prog.stdout.next(Duration::from_secs(10)).as_deref(), Some("loaded"));
    let mut snoop = snooper(prog.pid());
    let forked = prog.stdout.next(Duration::from_secs(10)).expect("the child");
    let child: i32 = forked.strip_prefix("forked ").unwrap().parse().unwrap();
    let _reap = KillOnDrop(child);
    let sem = |pid| bunyan_snoop::semaphores(pid).unwrap().into_iter().map(|s| s.value).collect::<Vec<_>>();
    // Records for a while after the fork: all from the parent.
    let end = Instant::now() + Duration::from_millis(500);
    let mut after_fork = 0;
    while let Some(line) = snoop.stdout.next(end.saturating_duration_since(Instant::now())) {
        let r = record(&line);
        assert_eq!(r["pid"], prog.pid(), "{line}");
        after_fork += usize::from(r["n"].as_u64().unwrap() > 150);
    }
    assert!(after_fork > 10, "{after_fork} parent records after the fork");
    assert_eq!(sem(prog.pid()), [1]);
    snoop.signal(libc::SIGINT);
    assert!(snoop.wait(Duration::from_secs(10)).success());
    let end = Instant::now() + Duration::from_secs(5);
    while sem(prog.pid()) != [0] || sem(child) != [0] {
        assert!(Instant::now() < end, "parent {:?} child {:?}", sem(prog.pid()), sem(child));
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills the fixture's forked child (not our child: no wait) when dropped,
/// even if the test fails.
struct KillOnDrop(i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the PID the fixture printed for its child.
        unsafe { libc::kill(self.0, libc::SIGKILL) };
    }
}
