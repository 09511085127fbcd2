//! Snooping the example service through the engine (bunyan-snoop): debug
//! records reach the snooper while the service's stdout keeps only info
//! records; semaphores go back to 0 after Ctrl-C and after SIGKILL of the
//! snooper; `*` and NAME specs; deleted binaries; a slow reader loses
//! records in the kernel instead of slowing the service.

mod common;

use std::{
    process::Command,
    sync::RwLock,
    time::{Duration, Instant},
};

use common::*;

/// `*` attaches to every process with bunyan probes, the other tests'
/// services included: it runs alone (write lock), so that every test that
/// starts a service (read lock) sees only its own snooper, and the `*`
/// snooper is not flooded by another test's service.
static STAR: RwLock<()> = RwLock::new(());

fn snooper(spec: &str) -> Proc {
    Proc::spawn(
        Command::new(sibling_bin("bunyan-snoop", "bunyan-snoop")).arg(spec).stderr(std::process::Stdio::piped()),
    )
}

fn stderr_of(p: &mut Proc) -> String {
    use std::io::Read;
    let mut s = String::new();
    p.child.stderr.take().unwrap().read_to_string(&mut s).unwrap();
    s
}

/// Every debug record from the moment of attach to the service's exit
/// arrives, in order, while the service's own output has only info records.
#[test]
fn engine_delivers_every_debug_record_and_stdout_stays_info() {
    let _alone = STAR.read().unwrap_or_else(|p| p.into_inner());
    let mut svc = start_service(&["--rate", "400", "--duration", "3"]);
    let pid = svc.pid();
    let mut records = Vec::new();
    let mut sem_while_attached = None;
    let stats = bunyan_snoop::run(&pid.to_string(), &mut |rec| {
        if sem_while_attached.is_none() {
            sem_while_attached = Some(semaphores(pid));
        }
        records.push(record(std::str::from_utf8(rec)?));
        Ok(())
    })
    .unwrap();
    svc.wait(Duration::from_secs(10));
    let own: Vec<_> = svc.stdout.rest(Duration::from_secs(5)).iter().map(|l| record(l)).collect();

    // The service itself wrote info records only.
    assert!(own.len() >= 3, "{own:?}");
    assert!(own.iter().all(|r| r["level"] == 30), "{own:?}");
    // The snooper got debug records, all of them from attach to exit.
    let debug: Vec<u64> = records.iter().filter(|r| r["level"] == 20).map(|r| r["req_id"].as_u64().unwrap()).collect();
    assert!(debug.len() > 500, "only {} debug records", debug.len());
    assert!(debug.windows(2).all(|w| w[1] == w[0] + 1), "debug req_ids must be consecutive");
    let total = own.last().unwrap()["total"].as_u64().unwrap();
    assert_eq!(*debug.last().unwrap(), total - 1, "the last request's record arrived");
    // Info records are snooped too, and they are the ones stdout has.
    let snooped_info = records.iter().filter(|r| r["level"] == 30).count();
    assert!(snooped_info >= 2);
    assert!(records.iter().all(|r| r["pid"] == pid));
    assert_eq!(stats.delivered as usize, records.len());
    assert_eq!(stats.dropped, 0);
    assert_eq!(sem_while_attached.unwrap().iter().map(|(_, v)| *v).collect::<Vec<_>>(), [1; 6]);
}

/// With a minimum level, the lower levels' probes stay off: their semaphores
/// stay 0, so the service does not even build those records.
#[test]
fn min_level_leaves_lower_probes_off() {
    let _alone = STAR.read().unwrap_or_else(|p| p.into_inner());
    let mut svc = start_service(&["--rate", "400", "--duration", "2.5"]);
    let pid = svc.pid();
    let mut levels = Vec::new();
    let mut sems = None;
    let opts = bunyan_snoop::Options { min_level: 30, ..Default::default() };
    let stats = bunyan_snoop::run_with(&pid.to_string(), opts, &mut |rec| {
        sems.get_or_insert_with(|| semaphores(pid));
        levels.push(record(std::str::from_utf8(rec)?)["level"].as_u64().unwrap());
        Ok(())
    })
    .unwrap();
    svc.wait(Duration::from_secs(10));
    assert!(levels.len() >= 2 && levels.iter().all(|&l| l == 30), "{levels:?}");
    assert_eq!(stats.dropped, 0);
    let sems = sems.unwrap();
    let on: Vec<_> = sems.iter().filter(|(_, v)| *v == 1).map(|(n, _)| n.as_str()).collect();
    assert_eq!(on, ["log-error", "log-fatal", "log-info", "log-warn"], "{sems:?}");
    let e = bunyan_snoop::run_with("1", bunyan_snoop::Options { min_level: 61, ..Default::default() }, &mut |_| Ok(()))
        .unwrap_err();
    assert!(e.to_string().contains("above fatal"), "{e}");
}

/// The snooper process: semaphores are 1 while it runs, 0 after Ctrl-C,
/// and 0 again after it is killed with SIGKILL (the kernel cleans up).
#[test]
fn semaphores_return_to_zero_after_sigint_and_sigkill() {
    let _alone = STAR.read().unwrap_or_else(|p| p.into_inner());
    let svc = start_service(&["--rate", "200"]);
    let pid = svc.pid();
    for sig in [libc::SIGINT, libc::SIGKILL] {
        let mut snoop = snooper(&pid.to_string());
        let first = snoop.stdout.next(Duration::from_secs(20)).expect("a snooped record");
        assert_eq!(record(&first)["pid"], pid);
        assert_eq!(semaphores(pid).iter().map(|(_, v)| *v).collect::<Vec<_>>(), [1; 6]);
        snoop.signal(sig);
        let status = snoop.wait(Duration::from_secs(10));
        if sig == libc::SIGINT {
            assert!(status.success(), "{status:?}");
            let err = stderr_of(&mut snoop);
            assert!(err.contains("records delivered") && err.contains(" 0 dropped"), "{err}");
        }
        wait_semaphores(pid, 0, Duration::from_secs(5));
    }
    // The service kept running, untouched.
    assert!(bunyan_snoop::semaphores(pid).is_ok());
    let line = svc.stdout.next(Duration::from_secs(5)).expect("service still logging");
    assert_eq!(record(&line)["level"], 30);
}

/// Reads `snoop`'s records until one comes from `pid`; returns it.
fn record_from(snoop: &Proc, pid: i32) -> serde_json::Map<String, serde_json::Value> {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let line = snoop
            .stdout
            .next(end.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|| panic!("no record from process {pid}"));
        let r = record(&line);
        if r["pid"] == pid {
            return r;
        }
    }
}

/// `*` finds the service among all processes, and a service started after
/// it (from a copy of the binary: a file it had not attached to yet); NAME
/// finds the service by command line.
#[test]
fn star_and_name_specs_find_the_service() {
    let _alone = STAR.write().unwrap_or_else(|p| p.into_inner());
    let tag = format!("snoop-name-test-{}", std::process::id());
    let svc = start_service(&["--rate", "200", "--name", &tag]);

    let mut star = snooper("*");
    assert_eq!(record_from(&star, svc.pid())["name"], tag.as_str());
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("log-service-later");
    copy_executable(&service_bin(), &copy);
    let later = Proc::spawn(Command::new(&copy).args(["--rate", "200", "--name", "later"]));
    assert_eq!(record_from(&star, later.pid())["name"], "later");
    star.signal(libc::SIGINT);
    let st = star.wait(Duration::from_secs(10));
    assert!(st.success(), "{st:?}: {}", stderr_of(&mut star));
    wait_semaphores(later.pid(), 0, Duration::from_secs(5));

    let mut by_name = snooper(&tag);
    assert_eq!(record_from(&by_name, svc.pid())["name"], tag.as_str());
    by_name.signal(libc::SIGINT);
    let st = by_name.wait(Duration::from_secs(10));
    assert!(st.success(), "{st:?}: {}", stderr_of(&mut by_name));
    wait_semaphores(svc.pid(), 0, Duration::from_secs(5));
}

/// Ctrl-C after `*` attached to several files: every link is closed
/// cleanly, again and again.  (Closing them from several threads at once
/// corrupted libbpf's USDT bookkeeping: glibc aborted the snooper in about
/// one exit in six with four files.)
#[test]
fn star_detaches_from_many_files_cleanly() {
    let _alone = STAR.write().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let services: Vec<Proc> = (0..4)
        .map(|i| {
            let copy = dir.path().join(format!("log-service-{i}"));
            copy_executable(&service_bin(), &copy);
            let svc = Proc::spawn(Command::new(&copy).args(["--rate", "100"]));
            assert!(svc.stdout.next(Duration::from_secs(10)).unwrap().contains("started"));
            svc
        })
        .collect();
    for _ in 0..8 {
        let mut star = snooper("*");
        for svc in &services {
            record_from(&star, svc.pid());
        }
        star.signal(libc::SIGINT);
        let st = star.wait(Duration::from_secs(20));
        assert!(st.success(), "{st:?}: {}", stderr_of(&mut star));
    }
    for svc in &services {
        wait_semaphores(svc.pid(), 0, Duration::from_secs(5));
    }
}

/// A binary deleted from disk after it started is still snooped (through
/// /proc/PID/map_files).
#[test]
fn deleted_binary_is_snooped() {
    let _alone = STAR.read().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("log-service-copy");
    copy_executable(&service_bin(), &copy);
    let mut svc = Proc::spawn(Command::new(&copy).args(["--rate", "300", "--duration", "2"]));
    assert!(svc.stdout.next(Duration::from_secs(10)).unwrap().contains("started"));
    std::fs::remove_file(&copy).unwrap();
    let mut n = 0;
    let stats = bunyan_snoop::run(&svc.pid().to_string(), &mut |rec| {
        n += usize::from(record(std::str::from_utf8(rec)?)["level"] == 20);
        Ok(())
    })
    .unwrap();
    svc.wait(Duration::from_secs(10));
    assert!(n > 100, "{n} debug records from the deleted binary ({stats:?})");
}

/// A reader slower than the service: records are dropped (and counted) in
/// the kernel; the service is not held up: its 2 s loop takes 2 s.  The
/// records carry 16 KB each so the 16 MiB ring fills after ~1000 of them,
/// whatever the machine's load; the reader takes ~2,000 per second.
#[test]
fn slow_reader_drops_records_without_blocking_the_service() {
    let _alone = STAR.read().unwrap_or_else(|p| p.into_inner());
    let mut svc = Proc::spawn(
        Command::new(service_bin())
            .args(["--rate", "0", "--duration", "2", "--payload", "16000"])
            .stderr(std::process::Stdio::piped()),
    );
    assert!(svc.stdout.next(Duration::from_secs(10)).unwrap().contains("started"));
    let (mut delivered, mut pause_at) = (0u64, 10u64);
    let stats = bunyan_snoop::run(&svc.pid().to_string(), &mut |rec| {
        assert!(rec.starts_with(b"{\"name\":\"log-service\""));
        delivered += 1;
        if delivered == pause_at {
            pause_at += 10;
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    })
    .unwrap();
    assert!(svc.wait(Duration::from_secs(10)).success());
    assert!(stats.dropped > 0, "{stats:?}");
    assert_eq!(stats.delivered, delivered);
    let summary = stderr_of(&mut svc);
    let summary = record(summary.lines().last().expect("service summary"));
    let secs = summary["seconds"].as_f64().unwrap();
    assert!(secs < 2.5, "service held up: its 2 s run took {secs} s");
    assert!(delivered + stats.dropped <= summary["requests"].as_u64().unwrap() + 3);
}

#[test]
fn clear_errors_for_bad_targets() {
    let e = bunyan_snoop::run("999999999", &mut |_| Ok(())).unwrap_err();
    assert!(format!("{e:#}").contains("invalid PID") || format!("{e:#}").contains("not found"), "{e:#}");
    let e = bunyan_snoop::run("4194000", &mut |_| Ok(())).unwrap_err();
    assert!(format!("{e:#}").contains("process 4194000 not found"), "{e:#}");
    // A process without bunyan probes: waited for (here 1 s), then refused.
    let sleeper = Proc::spawn(Command::new("sleep").arg("30"));
    let quick = bunyan_snoop::Options { probe_wait: Some(Duration::from_secs(1)), ..Default::default() };
    let start = Instant::now();
    let e = bunyan_snoop::run_with(&sleeper.pid().to_string(), quick, &mut |_| Ok(())).unwrap_err();
    assert!(format!("{e:#}").contains("has no bunyan USDT probes in any mapped file (waited 1 s)"), "{e:#}");
    assert!(start.elapsed() >= Duration::from_secs(1), "it waited");
    let e = bunyan_snoop::run("no-such-process-name-xyz", &mut |_| Ok(())).unwrap_err();
    assert!(format!("{e:#}").contains("no running process matching"), "{e:#}");
    // A kernel thread.
    let e = bunyan_snoop::run("2", &mut |_| Ok(())).unwrap_err();
    assert!(format!("{e:#}").contains("process 2 (kthreadd) is a kernel thread"), "{e:#}");
}

/// Issue 12: a zombie was reported as "has no bunyan USDT probes".
#[test]
fn a_zombie_is_called_a_zombie() {
    // `sh -c 'sleep 0 & exec sleep 30'`: the first sleep exits and stays a
    // zombie, its parent (now sleep 30) never reaping it.
    let parent = Proc::spawn(Command::new("sh").args(["-c", "sleep 0 & exec sleep 30"]));
    let end = Instant::now() + Duration::from_secs(10);
    let zombie = loop {
        let children =
            std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", parent.pid())).unwrap_or_default();
        let z = children
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
            .find(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|s| s.contains(") Z ")));
        if let Some(z) = z {
            break z;
        }
        assert!(Instant::now() < end, "no zombie child of {}", parent.pid());
        std::thread::sleep(Duration::from_millis(20));
    };
    let e = bunyan_snoop::run(&zombie.to_string(), &mut |_| Ok(())).unwrap_err();
    assert_eq!(
        format!("{e:#}"),
        format!(
            "process {zombie} (sleep) is a zombie: it has exited and its parent (PID {}) has not reaped it; there is nothing to snoop",
            parent.pid()
        )
    );
}

/// Issue 12: permission denied on /proc/PID/maps was reported as "process
/// not found".  A user without CAP_SYS_PTRACE cannot read another user's
/// process; the message says so (before any "needs root" for the BPF
/// program).
#[test]
fn permission_denied_is_explained() {
    use std::os::unix::fs::PermissionsExt;
    let root_owned = Proc::spawn(Command::new("sleep").arg("30"));
    // A copy the unprivileged user can run wherever the checkout lives.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bunyan = dir.path().join("bunyan");
    copy_executable(&sibling_bin("bunyan", "bunyan-cli"), &bunyan);
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&bunyan)
        .args(["-p", &root_owned.pid().to_string()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let pid = root_owned.pid();
    assert_eq!(
        err.trim_end(),
        format!(
            "bunyan: error: process {pid} (sleep): permission denied reading /proc/{pid}/maps: reading another \
             user's process needs CAP_SYS_PTRACE, which this process lacks (run it as root)"
        )
    );
}

/// Records of up to 1 MiB arrive whole (those over 32 KiB take the long
/// path in the kernel); longer ones are counted as too long, apart from
/// the records dropped because the reader fell behind.
#[test]
fn long_records_arrive_and_longer_ones_are_counted_apart() {
    let _alone = STAR.read().unwrap_or_else(|p| p.into_inner());
    for (payload, delivered_debug) in [(100_000usize, true), (2_000_000, false)] {
        let mut svc = start_service(&["--rate", "50", "--duration", "2", "--payload", &payload.to_string()]);
        let (mut debug, mut lens) = (0u64, Vec::new());
        let stats = bunyan_snoop::run(&svc.pid().to_string(), &mut |rec| {
            let r = record(std::str::from_utf8(rec)?);
            if r["level"] == 20 {
                debug += 1;
                lens.push(r["payload"].as_str().map_or(0, str::len));
            }
            Ok(())
        })
        .unwrap();
        svc.wait(Duration::from_secs(20));
        assert_eq!(stats.dropped, 0, "{stats:?}");
        assert_eq!(stats.unreadable, 0, "{stats:?}");
        if delivered_debug {
            assert!(debug >= 50, "{debug} debug records of {payload} bytes: {stats:?}");
            assert!(lens.iter().all(|&l| l == payload), "whole payloads");
            assert_eq!(stats.too_long, 0);
        } else {
            assert_eq!(debug, 0);
            // About 50 debug records per second for ~2 s, all too long.
            assert!(stats.too_long >= 50, "{stats:?}");
        }
    }
}
