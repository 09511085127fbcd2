//! Fuzzes the `-c CONDITION` language: compiling arbitrary text must fail
//! cleanly or succeed, and evaluating against an arbitrary record must not
//! panic. Input: the condition, a newline, then a JSON record.
#![no_main]

use bunyan_view::{Condition, Value};
use libfuzzer_sys::fuzz_target;

const DEFAULT_RECORD: &str = r#"{"v":0,"level":30,"name":"app","hostname":"h","pid":1,"time":"2024-01-01T00:00:00.000Z","msg":"hello world","req":{"method":"GET","url":"/x"},"tags":["a",1,null],"n":-0.5}"#;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (cond, rec) = text.split_once('\n').unwrap_or((&text, DEFAULT_RECORD));
    let Ok(c) = Condition::compile(cond) else {
        return;
    };
    let rec = Value::parse(rec)
        .or_else(|| Value::parse(DEFAULT_RECORD))
        .expect("default record parses");
    let _ = c.matches(&rec);
});
