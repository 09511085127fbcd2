//! The engine against node: the unmodified bunyan npm package, given real
//! probes by prodtrace's dtrace-provider (node/dtrace-provider), which
//! generates an ELF shared object with the probes at run time and loads it.
//! The object is deleted from disk before snooping starts: the engine reaches
//! it through /proc/PID/map_files.

mod common;

use std::{path::Path, process::Command, time::Duration};

use common::*;

#[test]
fn snoops_node_bunyan_through_a_deleted_generated_object() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let addon = sibling_bin("libprodtrace_dtrace_provider.so", "prodtrace-dtrace-provider");
    let mut node = Proc::spawn(
        Command::new("node")
            .env("PRODTRACE_DTRACE_PROVIDER_ADDON", &addon)
            .env("PRODTRACE_TEST_BUNYAN", repo.join("examples/node/node_modules/bunyan"))
            .arg("-r")
            .arg(repo.join("node/dtrace-provider/register.js"))
            .arg(repo.join("node/dtrace-provider/test/fixtures/bunyan-app.js"))
            .stderr(std::process::Stdio::piped()),
    );
    let pid = node.pid();
    // Wait for bunyan's first info record: the provider is loaded by then.
    let first = node.stdout.next(Duration::from_secs(20)).expect("the node app logs");
    assert_eq!(record(&first)["level"], 30);

    // The generated object: a mapped file that is neither node nor a system
    // library nor the add-on; delete it.
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let generated: Vec<&str> = maps
        .lines()
        .filter_map(|l| l.split_ascii_whitespace().nth(5))
        .filter(|p| {
            p.ends_with(".so") && !p.starts_with("/usr/") && !p.starts_with("/lib") && !p.contains("libprodtrace")
        })
        .collect();
    let object = *generated.first().unwrap_or_else(|| panic!("no generated object mapped:\n{maps}"));
    std::fs::remove_file(object).unwrap();
    assert!(std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap().contains(&format!("{object} (deleted)")));

    let mut snoop = Proc::spawn(Command::new(sibling_bin("bunyan-snoop", "bunyan-snoop")).arg(pid.to_string()));
    let mut ns = Vec::new();
    while ns.len() < 20 {
        let line = snoop.stdout.next(Duration::from_secs(20)).expect("records from node");
        let r = record(&line);
        assert_eq!(r["pid"], pid);
        assert_eq!(r["name"], "usdt-demo");
        if r["level"] == 20 {
            assert_eq!(r["msg"], format!("debug record {}", r["n"]));
            ns.push(r["n"].as_u64().unwrap());
        }
    }
    assert!(ns.windows(2).all(|w| w[1] == w[0] + 1), "consecutive debug records: {ns:?}");
    snoop.signal(libc::SIGINT);
    assert!(snoop.wait(Duration::from_secs(10)).success());
    // node's own output: info records only.
    for line in node.stdout.rest(Duration::from_millis(300)) {
        assert_eq!(record(&line)["level"], 30, "{line}");
    }
    node.signal(libc::SIGTERM);
    node.wait(Duration::from_secs(10));
}

/// Issue 12: `bunyan -p PID` on a node that has not created its first
/// bunyan logger yet (so dtrace-provider has made no probes) said "has no
/// bunyan USDT probes"; it now says it waits, and snoops once they appear.
/// The app creates its logger only once the test has seen that message.
#[test]
fn bunyan_p_waits_for_probes_that_node_creates_later() {
    use std::io::{BufRead, BufReader};
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let addon = sibling_bin("libprodtrace_dtrace_provider.so", "prodtrace-dtrace-provider");
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    let app = dir.path().join("late.js");
    std::fs::write(
        &app,
        r#"'use strict';
const fs = require('fs');
const wait = setInterval(function () {
    if (!fs.existsSync(process.env.GO_FILE)) return;
    clearInterval(wait);
    const log = require(process.env.PRODTRACE_TEST_BUNYAN).createLogger({ name: 'late', level: 'info' });
    let n = 0;
    const t = setInterval(function () {
        n++;
        log.debug({ n: n }, 'debug %d', n);
        if (n === 2000) clearInterval(t);
    }, 5);
}, 20);
process.on('SIGTERM', function () { process.exit(0); });
"#,
    )
    .unwrap();
    let node = Proc::spawn(
        Command::new("node")
            .env("PRODTRACE_DTRACE_PROVIDER_ADDON", &addon)
            .env("PRODTRACE_TEST_BUNYAN", repo.join("examples/node/node_modules/bunyan"))
            .env("GO_FILE", &go)
            .arg("-r")
            .arg(repo.join("node/dtrace-provider/register.js"))
            .arg(&app),
    );
    let mut cli = Proc::spawn(
        Command::new(sibling_bin("bunyan", "bunyan-cli"))
            .args(["-p", &node.pid().to_string(), "-o", "bunyan"])
            .stderr(std::process::Stdio::piped()),
    );
    let mut err = BufReader::new(cli.child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert_eq!(
        line.trim_end(),
        format!(
            "bunyan: process {} (node) has no bunyan USDT probes yet: waiting up to 10 s for them to appear \
             (node-bunyan creates them with its first logger when node/dtrace-provider is loaded)",
            node.pid()
        )
    );
    std::fs::write(&go, "").unwrap();
    line.clear();
    err.read_line(&mut line).unwrap();
    assert_eq!(
        line.trim_end(),
        format!("bunyan: bunyan USDT probes appeared in process {} (node): snooping", node.pid())
    );
    let mut ns = Vec::new();
    while ns.len() < 20 {
        let l = cli.stdout.next(Duration::from_secs(20)).expect("records from node");
        let r = record(&l);
        assert_eq!(r["pid"], node.pid());
        assert_eq!(r["level"], 20);
        ns.push(r["n"].as_u64().unwrap());
    }
    assert!(ns.windows(2).all(|w| w[1] == w[0] + 1), "consecutive debug records: {ns:?}");
    cli.signal(libc::SIGINT);
    assert!(cli.wait(Duration::from_secs(10)).success());
    node.signal(libc::SIGTERM);
}
