//! `-c CONDITION` hardening (issue 12): long flat expressions, methods
//! outside the language, prototype properties, `BUNYAN_EXEC=vm` refusals,
//! compared with node-bunyan's CLI where node gives an answer.

mod common;

use common::*;

const LOG: &str = concat!(
    r#"{"v":0,"level":30,"name":"a","hostname":"h","pid":1,"time":"2024-01-01T00:00:00.000Z","msg":"hello","arr":[1,2]}"#,
    "\n",
    r#"{"v":0,"level":40,"name":"a","hostname":"h","pid":2,"time":"2024-01-01T00:00:01.000Z","msg":"jello world","arr":[]}"#,
    "\n",
);

fn log_file() -> (tempfile::TempDir, String) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("c.log");
    std::fs::write(&p, LOG).unwrap();
    let s = p.to_str().unwrap().to_owned();
    (d, s)
}

/// One line on stderr, starting with `bunyan: error:`, exit status 1.
fn assert_refused(args: &[&str], env: &[(&str, &str)], what: &str) {
    let o = run_ours(args, b"", env);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{what}: {err}");
    assert!(o.stdout.is_empty(), "{what}");
    assert!(err.starts_with("bunyan: error: "), "{what}: {err}");
    assert_eq!(err.lines().count(), 1, "{what}: {err}");
}

#[test]
fn long_flat_expressions_neither_crash_nor_differ() {
    let (_d, f) = log_file();
    // node evaluates these; so do we (they used to overflow our stack, rc 134).
    let sum = vec!["1"; 30_000].join("+");
    assert_same(&["-c", &format!("{sum} == 30000"), &f], b"", &[]);
    let and = vec!["1"; 40_000].join("&&");
    assert_same(&["-c", &and, &f], b"", &[]);
    // node overflows its own stack on these; we run them (every record
    // throws: `this.a` is undefined) and show nothing.
    for c in [format!("this{}", ".a".repeat(60_000)), format!("this{}", "[0]".repeat(40_000))] {
        let o = run_ours(&["-c", &c, &f], b"", &[]);
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(o.stdout.is_empty() && o.stderr.is_empty());
    }
    // Nesting is bounded: one line, no crash.
    let deep = format!("{}1{}", "[".repeat(5_000), "]".repeat(5_000));
    assert_refused(&["-c", &deep, &f], &[], "deep brackets");
    let deep = format!("{}1{}", "(".repeat(50_000), ")".repeat(50_000));
    assert_refused(&["-c", &deep, &f], &[], "deep parentheses");
}

#[test]
fn methods_outside_the_language_are_refused_at_startup() {
    let (_d, f) = log_file();
    for c in [
        "this.msg.replace('h','j')=='jello'",
        "this.arr.map(function (x) { return x })",
        "this.msg.localeCompare('b') < 0",
        "this.msg.normalize() == 'hello'",
    ] {
        assert_refused(&["-c", c, &f], &[], c);
    }
    // Those the language now has behave as in node.
    for c in [
        "this.msg.repeat(2) == 'hellohello'",
        "this.msg.padStart(7) == '  hello'",
        "this.msg.at(-1) == 'o'",
        "this.arr.at(0) === 1",
    ] {
        assert_same(&["-c", c, &f], b"", &[]);
    }
}

#[test]
fn prototype_properties_are_truthy_as_in_node() {
    let (_d, f) = log_file();
    for c in ["this.__proto__", "this.constructor", "this.msg.trim", "this.hasOwnProperty"] {
        assert_same(&["-c", c, &f], b"", &[]);
    }
}

#[test]
fn vm_mode_refuses_what_node_refuses() {
    let (_d, f) = log_file();
    let vm = [("BUNYAN_EXEC", "vm")];
    assert_refused(&["-c", "process.exit(1)", &f], &vm, "process.exit in vm mode");
    let n = run_node(&["-c", "process.exit(1)", &f], b"", &vm);
    assert_eq!(n.status.code(), Some(1), "node refuses it too");
    // A name that is no field of node-bunyan's minimal record: node refuses it.
    assert_refused(&["-c", "level > 1 && nosuchfield", &f], &vm, "ReferenceError");
    assert_eq!(run_node(&["-c", "level > 1 && nosuchfield", &f], b"", &vm).status.code(), Some(1));
    assert_same(&["-c", "level >= 40 || typeof nosuchfield == 'string'", &f], b"", &vm);
}

#[test]
fn a_record_outside_the_language_is_reported_once() {
    // objCopy gives `this` the record's "__proto__" value as prototype.
    let line = r#"{"v":0,"level":30,"name":"a","hostname":"h","pid":1,"time":"2024-01-01T00:00:00.000Z","msg":"x","__proto__":{"x":1}}"#;
    let input = format!("{line}\n{line}\n{LOG}");
    let o = run_ours(&["-o", "simple", "-c", "this.x || this.level >= 40"], input.as_bytes(), &[]);
    assert_eq!(o.status.code(), Some(0));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("bunyan: warning: ") && err.contains("__proto__"), "{err}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "WARN - jello world\n");
}
