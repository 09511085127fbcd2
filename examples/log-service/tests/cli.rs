//! `bunyan -p PID -l debug` (node-bunyan's CLI flags) against the example
//! service: the CLI shows the debug records the service's own output lacks,
//! in node-bunyan's formats, and leaves the semaphores at 0 when it stops.

mod common;

use std::{process::Command, time::Duration};

use common::*;

fn bunyan(args: &[&str]) -> Proc {
    Proc::spawn(Command::new(sibling_bin("bunyan", "bunyan-cli")).args(args))
}

#[test]
fn bunyan_p_shows_debug_records_in_json_and_long_format() {
    let svc = start_service(&["--rate", "200"]);
    let pid = svc.pid().to_string();

    // -o bunyan: the records themselves, one per line.
    let mut cli = bunyan(&["-p", &pid, "-l", "debug", "-o", "bunyan"]);
    let mut debug = 0;
    while debug < 20 {
        let line = cli.stdout.next(Duration::from_secs(20)).expect("bunyan -p printed records");
        let r = record(&line);
        assert_eq!(r["pid"], svc.pid());
        assert!(r["level"].as_u64().unwrap() >= 20, "{line}");
        debug += usize::from(r["level"] == 20);
    }
    assert_eq!(semaphores(svc.pid()).iter().map(|(_, v)| *v).collect::<Vec<_>>(), [1; 6]);
    cli.signal(libc::SIGINT);
    cli.wait(Duration::from_secs(10));
    wait_semaphores(svc.pid(), 0, Duration::from_secs(5));

    // Default (long) format, as node-bunyan renders a record with a
    // `component`: "[time] DEBUG: name/component/pid on host: msg (extras)".
    let mut cli = bunyan(&["-p", &pid, "-l", "debug", "--no-color"]);
    let want = format!("DEBUG: log-service/handler/{pid} on ");
    let line = loop {
        let line = cli.stdout.next(Duration::from_secs(20)).expect("bunyan -p printed records");
        if line.contains("DEBUG:") {
            break line;
        }
    };
    assert!(line.starts_with('[') && line.contains(&want) && line.contains(": handled request "), "{line}");
    cli.signal(libc::SIGKILL);
    cli.wait(Duration::from_secs(10));
    wait_semaphores(svc.pid(), 0, Duration::from_secs(5));

    // The service's own output: info records only.
    let own = svc.stdout.next(Duration::from_secs(5)).expect("service output");
    assert_eq!(record(&own)["level"], 30);
}

#[test]
fn bunyan_p_level_filter_hides_debug() {
    let svc = start_service(&["--rate", "500"]);
    let mut cli = bunyan(&["-p", &svc.pid().to_string(), "-l", "info", "-o", "bunyan"]);
    // Two info records (one per second) and not a single debug one between.
    for _ in 0..2 {
        let line = cli.stdout.next(Duration::from_secs(20)).expect("info records");
        assert_eq!(record(&line)["level"], 30, "{line}");
    }
    cli.signal(libc::SIGINT);
    cli.wait(Duration::from_secs(10));
    wait_semaphores(svc.pid(), 0, Duration::from_secs(5));
}
