//! Bad input never crashes the CLI and never loses a line: megabyte lines,
//! invalid UTF-8, truncated JSON, JSON that is not an object, records with
//! missing or odd fields, unknown levels, CRLF, a missing final newline,
//! NUL bytes, gzip input, and a reader that goes away (EPIPE).

mod common;

use common::*;
use std::process::{Command, Stdio};

/// Lines that are not valid records, each must come out exactly as it went in.
fn bad_lines() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = vec![
        b"plain text".to_vec(),
        b"".to_vec(),
        b"{".to_vec(),
        br#"{"v":0,"level":30,"name":"x","hostname":"h","pid":1,"time":"2024-01-01T00:00:00Z","msg":"trunc"#.to_vec(),
        b"[1,2,3]".to_vec(),
        b"\"just a string\"".to_vec(),
        b"42".to_vec(),
        b"null".to_vec(),
        br#"{"no":"bunyan fields"}"#.to_vec(),
        br#"{"v":0,"level":30,"name":"x","hostname":"h","pid":1,"time":"t"}"#.to_vec(),
        br#"{"v":0,"level":30,"name":"x","hostname":"h","pid":1,"time":"t","msg":null}"#.to_vec(),
        br#"{"v":0,"level":30,"name":"x","hostname":"h","pid":1,"time":"t","msg":"m"} trailing"#.to_vec(),
        b"\xff\xfe invalid utf-8 \xc3\x28 here".to_vec(),
        b"{\"v\":0,\xff}".to_vec(),
        b"with\0nul\0bytes".to_vec(),
        b"crlf line\r".to_vec(),
        b"{\"lone\":\"\\ud800\"}".to_vec(),
        format!("{}{}", "[".repeat(500), "]".repeat(500)).into_bytes(),
    ];
    let mut big = b"BIG ".to_vec();
    big.extend(std::iter::repeat_n(b'x', 1 << 20));
    v.push(big);
    let mut big_json = br#"{"v":0,"level":30,"name":"x","hostname":"h","pid":1,"time":"t","msg":""#.to_vec();
    big_json.extend(std::iter::repeat_n(b'y', 1 << 20));
    v.push(big_json); // truncated: no closing quote/brace
    v
}

fn record(msg: &str, level: &str) -> Vec<u8> {
    format!(r#"{{"v":0,"level":{level},"name":"app","hostname":"h","pid":7,"time":"2024-01-01T00:00:00.000Z","msg":"{msg}"}}"#).into_bytes()
}

fn input() -> (Vec<u8>, usize) {
    let mut data = Vec::new();
    let mut records = 0;
    for (i, bad) in bad_lines().into_iter().enumerate() {
        data.extend_from_slice(&bad);
        data.push(b'\n');
        let level = ["30", "35", "\"40\"", "99", "-1", "{}"][i % 6];
        data.extend_from_slice(&record(&format!("rec {i}"), level));
        data.push(b'\n');
        records += 1;
    }
    // A 1 MB valid record.
    let big = "z".repeat(1 << 20);
    data.extend_from_slice(&record(&big, "30"));
    data.push(b'\n');
    records += 1;
    (data, records)
}

fn split_lines(b: &[u8]) -> Vec<&[u8]> {
    let mut v: Vec<&[u8]> = b.split(|&c| c == b'\n').collect();
    if v.last().is_some_and(|l| l.is_empty()) {
        v.pop();
    }
    v
}

#[test]
fn bad_lines_pass_through_unchanged_in_every_mode() {
    let (data, records) = input();
    let bad = bad_lines();
    for mode in ["long", "short", "simple", "json", "bunyan", "inspect"] {
        let o = run_ours(&["-o", mode], &data, &[]);
        assert_eq!(o.status.code(), Some(0), "{mode}: {}", String::from_utf8_lossy(&o.stderr));
        assert!(o.stderr.is_empty(), "{mode}: {}", String::from_utf8_lossy(&o.stderr));
        let lines = split_lines(&o.stdout);
        for b in &bad {
            assert!(
                lines.iter().any(|l| l == b),
                "{mode}: line lost or changed: {:?}",
                String::from_utf8_lossy(&b[..b.len().min(60)])
            );
        }
        if mode == "bunyan" || mode == "simple" {
            // One output line per input line: nothing lost, nothing invented.
            assert_eq!(lines.len(), bad.len() + records, "{mode}");
        }
    }
    // --strict drops exactly the bad lines.
    let o = run_ours(&["--strict", "-0"], &data, &[]);
    assert_eq!(split_lines(&o.stdout).len(), records);
}

#[test]
fn megabyte_record_renders_whole() {
    let big = "q".repeat(1 << 20);
    let o = run_ours(&["-o", "simple"], &record(&big, "40"), &[]);
    assert_eq!(o.stdout, format!("WARN - {big}\n").into_bytes());
}

#[test]
fn invalid_utf8_inside_a_record_renders_like_node() {
    let mut line =
        br#"{"v":0,"level":30,"name":"app","hostname":"h","pid":7,"time":"2024-01-01T00:00:00.000Z","msg":"bad "#
            .to_vec();
    line.extend_from_slice(b"\xff\xfe byte\"}\n");
    assert_same(&["-o", "short"], &line, &[]);
    assert_same(&[], &line, &[]);
    // node would replace the bytes of a non-record line too; we keep them.
    line.extend_from_slice(b"plain \xff line\n");
    let o = run_ours(&[], &line, &[]);
    assert!(o.stdout.ends_with(b"plain \xff line\n"), "non-record bytes kept raw");
}

#[test]
fn missing_final_newline_and_empty_input() {
    let mut data = record("last", "30");
    data.extend_from_slice(b"\ntail without newline");
    assert_same(&["-o", "simple"], &data, &[]);
    let o = run_ours(&[], b"", &[]);
    assert!(o.status.success() && o.stdout.is_empty());
}

#[test]
fn gzip_files_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("a.log");
    let (data, _) = input();
    std::fs::write(&plain, &data).unwrap();
    let st = Command::new("gzip").arg("-k").arg(&plain).status().expect("gzip");
    assert!(st.success());
    let gz = dir.path().join("a.log.gz");
    let a = run_ours(&[plain.to_str().unwrap()], b"", &[]);
    let b = run_ours(&[gz.to_str().unwrap()], b"", &[]);
    assert!(a.status.success() && b.status.success());
    assert_eq!(a.stdout, b.stdout);
}

#[test]
fn closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("big.log");
    let mut data = Vec::new();
    for i in 0..100_000 {
        data.extend_from_slice(&record(&format!("line {i}"), "30"));
        data.push(b'\n');
    }
    std::fs::write(&f, data).unwrap();
    let mut child = Command::new(ours()).arg(&f).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut first = [0u8; 100];
    std::io::Read::read_exact(&mut out, &mut first).unwrap();
    drop(out);
    let res = child.wait_with_output().unwrap();
    assert_eq!(res.status.code(), Some(0));
    assert!(res.stderr.is_empty(), "{}", String::from_utf8_lossy(&res.stderr));
}

#[test]
fn live_pipe_output_is_not_held_back() {
    // A writer that pauses: records must show before the input ends.
    let mut child =
        Command::new(ours()).args(["-o", "simple"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let mut sin = child.stdin.take().unwrap();
    let mut sout = child.stdout.take().unwrap();
    std::io::Write::write_all(&mut sin, &record("first", "30")).unwrap();
    std::io::Write::write_all(&mut sin, b"\n").unwrap();
    let mut buf = [0u8; 13];
    std::io::Read::read_exact(&mut sout, &mut buf).unwrap();
    assert_eq!(&buf, b"INFO - first\n");
    drop(sin);
    child.wait().unwrap();
}
