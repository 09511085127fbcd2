//! Record times in every output mode, compared byte for byte with
//! node-bunyan's CLI (moment 2.31 and V8's Date underneath): the records
//! of tests/gen-times.js (ISO forms, Date's range limits, numbers,
//! RFC 2822, arrays, objects, DST edges, pseudo-random strings) under
//! several time zones, and merged by time from two files.

mod common;

use common::*;
use std::process::Command;

fn times_log() -> (tempfile::TempDir, String) {
    let script = repo_root().join("crates/bunyan-cli/tests/gen-times.js");
    let out = Command::new(node()).arg(script).output().expect("run gen-times.js");
    assert!(out.status.success());
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("times.log");
    std::fs::write(&p, out.stdout).unwrap();
    let s = p.to_str().unwrap().to_owned();
    (d, s)
}

#[test]
fn times_match_node_in_every_mode_and_zone() {
    let (_d, f) = times_log();
    for zone in ["UTC", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"] {
        for args in [
            vec!["-o", "short"],
            vec!["-o", "long"],
            vec!["-o", "long", "-L"],
            vec!["-o", "short", "-L"],
            vec!["-o", "json-0"],
            vec!["-o", "inspect"],
            vec!["-o", "simple"],
        ] {
            let mut a = args.clone();
            a.push(&f);
            assert_same(&a, b"", &[("TZ", zone)]);
        }
    }
}

#[test]
fn merged_by_time_like_node() {
    let (d, f) = times_log();
    let text = std::fs::read_to_string(&f).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let (a, b) = (d.path().join("a.log"), d.path().join("b.log"));
    let half = lines.len() / 2;
    std::fs::write(&a, lines[..half].join("\n") + "\n").unwrap();
    std::fs::write(&b, lines[half..].join("\n") + "\n").unwrap();
    assert_same(&["-o", "short", a.to_str().unwrap(), b.to_str().unwrap()], b"", &[("TZ", "America/New_York")]);
}

/// Issue 12: `1e20` printed a time and `+275760-09-13T00:00:00.000Z`
/// printed "Invalid date"; node-bunyan does the opposite.
#[test]
fn date_range_limits() {
    let rec =
        |t: &str| format!(r#"{{"v":0,"level":30,"name":"a","hostname":"h","pid":1,"time":{t},"msg":"m"}}"#) + "\n";
    for (t, want) in [
        ("1e20", "Invalid date"),
        ("8640000000000001", "Invalid date"),
        ("8640000000000000", "00:00:00.000Z"),
        ("\"+275760-09-13T00:00:00.000Z\"", "00:00:00.000Z"),
        ("\"+275760-09-13T00:00:00.001Z\"", "Invalid date"),
        ("\"-271821-04-20T00:00:00.000Z\"", "00:00:00.000Z"),
        ("\"-000001-12-31T23:59:59.999Z\"", "23:59:59.999Z"),
        ("1.9", "00:00:00.001Z"),
    ] {
        let o = run_ours(&["-o", "short"], rec(t).as_bytes(), &[]);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.starts_with(&format!("{want}  INFO a: m")), "{t}: {out}");
    }
}

/// Documented divergence: strings moment passes to `new Date(string)`
/// show as "Invalid date".
#[test]
fn date_fallback_strings_are_invalid_dates() {
    let line = r#"{"v":0,"level":30,"name":"a","hostname":"h","pid":1,"time":"2024-1-15","msg":"m"}"#.to_owned() + "\n";
    let o = run_ours(&["-o", "short"], line.as_bytes(), &[]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "Invalid date  INFO a: m\n");
}
