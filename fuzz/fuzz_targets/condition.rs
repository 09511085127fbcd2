//! Fuzzes the `-c CONDITION` language: compiling arbitrary text (in both
//! the default and the `BUNYAN_EXEC=vm` mode) must fail cleanly or
//! succeed, and evaluating against an arbitrary record must not panic or
//! overflow the stack. Input: the condition, a newline, then a JSON record.
//! A condition of the form `HEAD\x01UNIT\x01TAIL` is expanded to HEAD,
//! UNIT repeated 20,000 times, TAIL, so that the fuzzer reaches long flat
//! expressions (`1+1+...`, `this.a.a...`, `!!!...x`) that a short input
//! cannot spell out.
#![no_main]

use bunyan_view::{Condition, Value};
use libfuzzer_sys::fuzz_target;

const DEFAULT_RECORD: &str = r#"{"v":0,"level":30,"name":"app","hostname":"h","pid":1,"time":"2024-01-01T00:00:00.000Z","msg":"hello world 😀","req":{"method":"GET","url":"/x","__proto__":{"a":1}},"tags":["a",1,null],"n":-0.5,"toString":1}"#;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (cond, rec) = text.split_once('\n').unwrap_or((&text, DEFAULT_RECORD));
    let expanded;
    let cond = match cond.splitn(3, '\x01').collect::<Vec<_>>()[..] {
        [head, unit, tail] => {
            expanded = format!("{head}{}{tail}", unit.repeat(20_000));
            expanded.as_str()
        }
        _ => cond,
    };
    let rec = Value::parse(rec)
        .or_else(|| Value::parse(DEFAULT_RECORD))
        .expect("default record parses");
    for c in [Condition::compile(cond), Condition::compile_vm(cond)].into_iter().flatten() {
        let _ = c.evaluate(&rec);
        let _ = c.debug_value(&rec);
    }
});
