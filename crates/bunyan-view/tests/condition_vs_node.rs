//! Differential test of the `-c` condition language against real node
//! (/usr/bin/node): the same conditions on the same records, evaluated the
//! way node-bunyan's CLI does (tests/condition_vs_node.js), must give the
//! same typed value (`num:1`, `str:"x"`, `arr[...]`, `fn:trim`, ...), or
//! `throw` on both sides. Conditions are a hand-written list plus a few
//! thousand generated from the language's grammar (fixed seed).

use bunyan_view::{Condition, Value};
use std::io::Write;
use std::process::{Command, Stdio};

const RECORDS: &[&str] = &[
    r#"{"v":0,"level":30,"name":"app","hostname":"h","pid":123,"time":"2024-01-01T00:00:00.000Z","msg":"hello world","n":"42","f":1.5,"z":0,"neg":-0,"t":true,"u":null,"e":"","ws":"  5 ","big":1e21,"tags":["a","b",1,null,true],"nested":[[1,2],[3]],"req":{"method":"GET","url":"/x?q=1","headers":{"host":"h"}},"arr":[3,1,2]}"#,
    r#"{"v":0,"level":50,"name":"app","hostname":"h","pid":7,"time":1700000000000,"msg":"Héllo 😀 wörld","n":"0x1f","f":-2.5,"z":"0","t":false,"e":[],"ws":"\u00a0\t1e3\n","tags":[],"req":{"method":"POST","toString":"x","constructor":1,"__proto__":{"a":1},"length":2},"arr":"abc","obj":{}}"#,
    r#"{"v":0,"level":"30","name":"app","hostname":"h","pid":"123","time":"2024-01-01T00:00:00.000Z","msg":"HELLO","n":10,"f":"1.50","z":null,"t":"false","e":{},"ws":"","tags":"a,b","req":null,"arr":[[]],"obj":{"0":"x","b":[{}]}}"#,
    r#"{"v":0,"level":20,"name":"app","hostname":"h","pid":0,"time":"2024-01-01T00:00:00.000Z","msg":"","hasOwnProperty":1,"valueOf":2,"tags":[["x"],"x"],"arr":[null],"req":{"url":"/"}}"#,
    r#"{"v":0,"level":60,"name":"app","hostname":"h","pid":99,"time":"2024-01-01T00:00:00.000Z","msg":"a-b-c 123 xyz 45","n":"-7.5e1","f":1e-7,"tags":["😀","é",""],"arr":[1,"1",1.0,"a"],"__proto__":5}"#,
];

/// Conditions worth checking one by one (each found a mismatch once, or
/// guards a corner of JavaScript).
const HANDWRITTEN: &[&str] = &[
    "this.__proto__",
    "this.req.__proto__",
    "this.constructor",
    "this.msg.trim",
    "this.msg.replace",
    "typeof this.msg.trim",
    "this.hasOwnProperty('msg')",
    "this.hasOwnProperty('__proto__')",
    "this.req.hasOwnProperty('method')",
    "this.req.toString()",
    "this.req + ''",
    "this.tags + ''",
    "this.tags.toString()",
    "String(this.nested)",
    "'toString' in this",
    "'length' in this.tags",
    "'x' in this.msg",
    "0 in this.tags",
    "this.msg.match(/l+/g)",
    "this.msg.match(/(l)(x)?/)",
    "this.msg.match(/o/).index",
    "this.msg.match('l.')",
    "this.msg.match()",
    "this.msg.search('o')",
    "/./.exec(this.msg)",
    "/^.$/.test('😀')",
    "/^.$/u.test('😀')",
    "/\\w+/.exec(this.msg)",
    "/\\bw/.test(this.msg)",
    "/(a)\\1/.test('aa')",
    "/a{/.test('a{')",
    "/[^]/.test('\\n')",
    "/./.test('\\u2028')",
    "/HELLO/i.test(this.msg)",
    "/é/i.test('É')",
    "/\\d+/.exec(this.msg)",
    "/x/gi.toString()",
    "/x/.source",
    "/x/gimsu.flags",
    "(0.5).toFixed(0)",
    "(2.5).toFixed(0)",
    "(1.005).toFixed(2)",
    "this.f.toFixed(1)",
    "(-1.5).toFixed(0)",
    "(255).toString(16)",
    "(255).toString(2)",
    "(0.5).toString(2)",
    "(-255.5).toString(16)",
    "(0.1).toString(3)",
    "(1e21).toString(36)",
    "(1152921504606846976).toString(2)",
    "(0.9999999999999999).toString(2)",
    "(123.456).toString(36)",
    "(1e-7).toString(2)",
    "this.msg.split(/o/)",
    "this.msg.split(/(o)|(x)/)",
    "this.msg.split(/(?:)/, 4)",
    "''.split(/x/)",
    "''.split(/(?:)/)",
    "this.msg.split(/l+/)",
    "this.name.split(/p*/)",
    "(this.a && this.b) ?? 1",
    "this.u ?? (this.a || 2)",
    "this.msg.slice(-3)",
    "this.msg.substr(-3, 2)",
    "this.msg.substring(5, 1)",
    "this.msg.at(-1)",
    "this.msg.charCodeAt(1)",
    "this.msg.padStart(15, 'ab')",
    "this.msg.padEnd(14)",
    "'ab'.repeat(3)",
    "this.msg.split(' ')",
    "this.msg.split('', 3)",
    "this.msg.split()",
    "this.msg.lastIndexOf('o')",
    "this.msg.lastIndexOf('o', 5)",
    "this.msg.indexOf('', 100)",
    "this.msg.includes('wor', 7)",
    "this.msg.startsWith('llo', 2)",
    "this.msg.endsWith('hel', 3)",
    "this.tags.indexOf(null)",
    "this.tags.includes(NaN)",
    "[NaN].includes(NaN)",
    "[NaN].indexOf(NaN)",
    "this.tags.join('-')",
    "this.tags.slice(1, -1)",
    "this.tags.concat([1, 2], 3)",
    "this.tags.lastIndexOf('a', -10)",
    "this.tags.at(-1)",
    "this.n == 42",
    "this.n > 41",
    "this.ws == 5",
    "this.ws * 2",
    "+this.ws",
    "-this.e",
    "this.tags == 'a,b,1,,true'",
    "this.e == 0",
    "this.e == ''",
    "null == 0",
    "undefined == null",
    "NaN != NaN",
    "this.z === -0",
    "1 / this.neg",
    "this.big + 1",
    "'10' < '9'",
    "'a' < 'B'",
    "'😀' < '\\uffff'",
    "this.level >= WARN",
    "this.level == '30'",
    "parseInt(this.n)",
    "parseInt(this.ws)",
    "parseInt('0x1f', 16)",
    "parseInt('12', 2.9)",
    "parseInt('123', 4294967306)",
    "parseFloat(this.ws)",
    "parseFloat('1.e5')",
    "parseFloat('.5e-1x')",
    "Number(this.ws)",
    "Number(this.tags)",
    "String(this.u)",
    "Boolean(this.e)",
    "isNaN(this.msg)",
    "this.missing?.x.y",
    "this.req?.method",
    "this.missing?.['x']",
    "this.msg?.toUpperCase()",
    "this.u ?? 'dflt'",
    "this.z ?? 'dflt'",
    "this.e || 'dflt'",
    "this.t && this.msg",
    "typeof this.u",
    "typeof this.tags",
    "typeof /x/",
    "typeof this.nope",
    "this.msg.length",
    "this.msg[1]",
    "this.msg['length']",
    "this.tags[1.0]",
    "this.tags['01']",
    "this.tags[-0]",
    "this.obj[0]",
    "this.req.length",
    "this.toString()",
    "this.valueOf",
    "this.hasOwnProperty",
    "this.msg.toString()",
    "(5).toString()",
    "true.toString()",
    "this.t.toString()",
    "`a\\tb`",
    "'\\x41\\u0042\\u{43}'",
    "'a\\\nb'",
    "if (this.level > 40) return 'hi'; else return 'lo'",
    "return\nthis.level",
    "if (this.pid) { return this.pid } return -1",
    "this.level == 30;",
    "[1, 2, [3]] + ''",
    "[] + []",
    "[] == false",
    "[0] == false",
    "this.req == '[object Object]'",
    "this.msg.toLowerCase().includes('hello')",
    "this.msg.toUpperCase()",
    "'ß'.toUpperCase()",
    "'İ'.toLowerCase().length",
    "' \\ufeff x \\u2028'.trim()",
    "this.msg.concat(1, null, [2])",
    "1 + 2 + '3' + 4",
    "'3' - 1 + 1",
    "7 % -3",
    "-7 % 3",
    "0.1 + 0.2",
    "1e21 + ''",
    "1e-7 + ''",
    "123456789012345680000 + ''",
    "this.f / 0",
    "-this.z",
];

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'x>(&mut self, xs: &[&'x str]) -> &'x str {
        xs[self.below(xs.len())]
    }
}

const LITERALS: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "3",
    "-2",
    "1.5",
    "0.5",
    "10",
    "100",
    "NaN",
    "Infinity",
    "-Infinity",
    "1e21",
    "0x10",
    "''",
    "'a'",
    "'l'",
    "'o'",
    "'hello'",
    "'10'",
    "' 5 '",
    "'é'",
    "'😀'",
    "'true'",
    "'null'",
    "'-'",
    "' '",
    "'0'",
    "'b'",
    "true",
    "false",
    "null",
    "undefined",
    "[]",
    "[1]",
    "['a', 'b']",
    "/l/",
    "/l+/g",
    "/(\\d+)/",
    "/^h/i",
    "/o(r)?/",
    "/./u",
    "/\\w/",
    "/[a-c]/g",
];
const FIELDS: &[&str] = &[
    "msg", "level", "pid", "n", "f", "z", "neg", "t", "u", "e", "ws", "big", "tags", "nested", "req", "arr", "obj",
    "missing", "time", "name",
];
const SUBKEYS: &[&str] =
    &["method", "url", "length", "0", "1", "headers", "toString", "constructor", "__proto__", "b", "x"];
const BINOPS: &[&str] = &["===", "!==", "==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "%", "&&", "||", "??"];

/// A property after `.` or `?.`: numbers go in brackets.
fn prop(k: &str) -> String {
    if k.as_bytes()[0].is_ascii_digit() {
        format!("[{k}]")
    } else {
        k.to_owned()
    }
}

fn gen(r: &mut Rng, depth: usize) -> String {
    let leaf = depth == 0 || r.below(3) == 0;
    if leaf {
        return match r.below(4) {
            0 => r.pick(LITERALS).to_owned(),
            1 => format!("this.{}", r.pick(FIELDS)),
            2 => format!("this.{}?.{}", r.pick(FIELDS), prop(r.pick(SUBKEYS))),
            _ => format!("this['{}']", r.pick(FIELDS)),
        };
    }
    let d = depth - 1;
    match r.below(9) {
        0 | 1 => {
            let op = r.pick(BINOPS);
            let (a, b) = (gen(r, d), gen(r, d));
            // `??` cannot be mixed with && / || without parentheses.
            format!("({a}) {op} ({b})")
        }
        2 => format!("{}({})", r.pick(&["!", "-", "+", "typeof "]), gen(r, d)),
        3 => format!("({}) ? ({}) : ({})", gen(r, d), gen(r, d), gen(r, d)),
        4 => format!("({})[{}]", gen(r, d), gen(r, d)),
        5 => {
            let (base, k) = (gen(r, d), prop(r.pick(SUBKEYS)));
            let dot = if r.below(2) == 0 {
                "?."
            } else if k.starts_with('[') {
                ""
            } else {
                "."
            };
            format!("({base}){dot}{k}")
        }
        6 => format!("{}({})", r.pick(&["String", "Number", "Boolean", "parseInt", "parseFloat", "isNaN"]), gen(r, d)),
        7 => format!("[{}, {}]", gen(r, d), gen(r, d)),
        _ => {
            let m = r.pick(bunyan_view::condition::METHODS);
            let n = r.below(3);
            let args: Vec<String> = (0..n).map(|_| gen(r, d)).collect();
            format!("({}).{m}({})", gen(r, d), args.join(", "))
        }
    }
}

fn json_str(s: &str) -> String {
    let mut o = Vec::new();
    bunyan_view::json::push_json_string(&mut o, s);
    String::from_utf8(o).unwrap()
}

/// Runs node on the conditions: one list of results per condition.
fn node_values(conds: &[String]) -> Vec<Vec<String>> {
    let input = format!(
        "{{\"conds\":[{}],\"recs\":[{}]}}",
        conds.iter().map(|c| json_str(c)).collect::<Vec<_>>().join(","),
        RECORDS.iter().map(|r| json_str(r)).collect::<Vec<_>>().join(",")
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/condition_vs_node.js");
    let mut child = Command::new("/usr/bin/node")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run /usr/bin/node (scripts/setup.sh installs it)");
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "node failed");
    let text = String::from_utf8(out.stdout).unwrap();
    let v = Value::parse(&text).expect("node's output is JSON");
    let Value::Array(rows) = v else { panic!("not an array") };
    rows.iter()
        .map(|row| match row {
            Value::Array(cells) => cells.iter().map(|c| c.as_str().unwrap().to_owned()).collect(),
            _ => panic!("not an array"),
        })
        .collect()
}

struct Tally {
    compared: usize,
    refused: usize,
    /// Values JavaScript has but this language cannot hold (a lone
    /// surrogate): announced on stderr, the record is left out.
    surrogates: usize,
    mismatches: Vec<String>,
}

const SURROGATE: &str = "unsupported: a string with half of a surrogate pair";

fn compare(conds: &[String]) -> Tally {
    let records: Vec<Value> = RECORDS.iter().map(|r| Value::parse(r).unwrap()).collect();
    let node = node_values(conds);
    let mut t = Tally { compared: 0, refused: 0, surrogates: 0, mismatches: Vec::new() };
    for (c, want) in conds.iter().zip(&node) {
        let cond = match Condition::compile(c) {
            Ok(c) => c,
            Err(e) => {
                if std::env::var_os("SHOW_REFUSED").is_some() {
                    eprintln!("refused: {e:#}");
                }
                t.refused += 1;
                continue;
            }
        };
        for (i, (rec, want)) in records.iter().zip(want).enumerate() {
            let got = cond.debug_value(rec);
            t.compared += 1;
            if got == SURROGATE {
                if std::env::var_os("SHOW_REFUSED").is_some() {
                    eprintln!("surrogate: {c} on record {i}: node {want}");
                }
                t.surrogates += 1;
            } else if got != *want {
                t.mismatches.push(format!("{c}  on record {i}: node {want}, ours {got}"));
            }
        }
    }
    t
}

#[test]
fn handwritten_conditions_match_node() {
    let conds: Vec<String> = HANDWRITTEN.iter().map(|s| s.to_string()).collect();
    let t = compare(&conds);
    assert!(t.mismatches.is_empty(), "{} mismatches:\n{}", t.mismatches.len(), t.mismatches.join("\n"));
    assert_eq!(t.refused, 0, "every hand-written condition is in the language");
    assert_eq!(t.surrogates, 0);
}

#[test]
fn generated_conditions_match_node() {
    // CONDITION_SEED / CONDITION_COUNT explore further than the default run.
    let seed = std::env::var("CONDITION_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x9e3779b97f4a7c15);
    let count = std::env::var("CONDITION_COUNT").ok().and_then(|s| s.parse().ok()).unwrap_or(6000);
    let mut r = Rng(seed);
    let conds: Vec<String> = (0..count).map(|i| gen(&mut r, 1 + i % 5)).collect();
    let t = compare(&conds);
    assert!(
        t.mismatches.is_empty(),
        "{} mismatches out of {} evaluations:\n{}",
        t.mismatches.len(),
        t.compared,
        t.mismatches.iter().take(60).cloned().collect::<Vec<_>>().join("\n")
    );
    // The generator writes the language: refusals would make the test weak.
    assert!(t.refused * 20 < conds.len(), "{} of {} refused", t.refused, conds.len());
    assert!(t.surrogates * 500 < t.compared, "{} lone surrogates", t.surrogates);
}

/// What node refuses to compile must not be accepted here.
#[test]
fn what_node_refuses_is_refused() {
    let conds: Vec<String> = [
        "this.a ?? this.b || 1",
        "this.a || this.b ?? 1",
        "/(?i:a)/.test(this.msg)",
        "this.level;;",
        "this.level; ",
        "010 == 8",
        "'\\1'",
        "--this.level",
        "this.level++",
        "/a/gg.test('a')",
        "return this.level\nelse",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let node = node_values(&conds);
    for (c, n) in conds.iter().zip(&node) {
        let compiled = Condition::compile(c).is_ok();
        if n[0] == "compile-error" {
            assert!(!compiled, "node refuses {c:?}, we accept it");
        } else {
            // Valid JavaScript we read differently: refused.
            assert!(!compiled, "{c:?} must be refused (node gives {})", n[0]);
        }
    }
}

/// The built-in prototypes' and constructors' properties (names, whether
/// own, `typeof`, `length`, `name`) are node 20's.
#[test]
fn builtin_properties_match_node() {
    let out = Command::new("/usr/bin/node")
        .arg("-e")
        .arg(
            "const l = [String.prototype, Array.prototype, Object.prototype, Number.prototype, \
             Boolean.prototype, RegExp.prototype, Function.prototype, String, Array, Object, Number, \
             Boolean, RegExp, Function].map(o => Object.getOwnPropertyNames(o)); \
             process.stdout.write(JSON.stringify(l))",
        )
        .output()
        .expect("run node");
    let text = String::from_utf8(out.stdout).unwrap();
    let Value::Array(lists) = Value::parse(&text).unwrap() else { panic!() };
    let bases = [
        "this.msg.__proto__",
        "this.tags.__proto__",
        "this.req.__proto__",
        "(1).__proto__",
        "true.__proto__",
        "/x/.__proto__",
        "this.msg.trim.__proto__",
    ];
    let mut conds = Vec::new();
    for (i, list) in lists.iter().enumerate() {
        let base = if i < 7 { bases[i].to_owned() } else { format!("{}.constructor", bases[i - 7]) };
        let Value::Array(names) = list else { panic!() };
        assert!(names.len() > 2);
        for n in names {
            let n = json_str(n.as_str().unwrap());
            conds.push(format!("{base}.hasOwnProperty({n})"));
            conds.push(format!("typeof {base}[{n}]"));
            conds.push(format!("{base}[{n}] && {base}[{n}].name"));
            conds.push(format!("{base}[{n}] && {base}[{n}].length"));
            conds.push(format!("{n} in {base}"));
        }
    }
    let t = compare(&conds);
    let unsupported: Vec<_> = t.mismatches.iter().filter(|m| m.contains("unsupported: static")).collect();
    let real: Vec<_> = t.mismatches.iter().filter(|m| !m.contains("unsupported: static")).collect();
    assert!(
        real.is_empty(),
        "{} mismatches:\n{}",
        real.len(),
        real.iter().take(40).map(|s| s.as_str()).collect::<Vec<_>>().join("\n")
    );
    // Static members of constructors (Object.keys, RegExp.$1, ...) are refused at run time.
    assert!(unsupported.len() < t.compared / 5);
    assert_eq!(t.refused, 0);
}
