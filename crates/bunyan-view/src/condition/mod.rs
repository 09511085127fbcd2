//! `-c CONDITION`: a safe JavaScript-subset filter over records.
//!
//! node-bunyan runs conditions as JavaScript with `this` bound to the
//! record. This module accepts the same text (`this.level >= WARN &&
//! /timeout/i.test(this.msg)`, `this.req && this.req.method === 'POST'`,
//! `return this.pid == 123`), parses it once and evaluates it per record
//! with JavaScript's semantics, without executing arbitrary code. What it
//! cannot evaluate exactly as node would is refused at compile time; the
//! few cases only a record can reveal are reported once on stderr.
//!
//! Files: `lexer` (tokens), `parser` (tree, nesting bounds, the method
//! list), `eval` (walking the tree), `jsval` (values and JS abstract
//! operations), `methods` (built-in methods and functions), `regexp`
//! (JavaScript regexes on the `regress` crate).

mod eval;
mod jsval;
mod lexer;
mod methods;
mod parser;
mod regexp;

use crate::value::Value;
use anyhow::{Context, Result};
use eval::Evaluator;
use jsval::{truthy, Native, Throw, V};
use lexer::Tok;
use parser::{Expr, Parser, Stmt};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub use parser::METHODS;

/// Longest condition accepted, in bytes (Linux's limit on one argument).
pub const MAX_LEN: usize = 128 * 1024;

/// A compiled condition.
#[derive(Clone, Debug)]
pub struct Condition {
    program: Arc<Program>,
    vm: bool,
    src: Arc<str>,
    /// Whether the "not supported" warning was printed.
    warned: Arc<AtomicBool>,
}

#[derive(Debug)]
enum Program {
    Expr(Expr),
    Body(Vec<Stmt>),
}

/// The result of a condition on one record.
#[derive(Debug)]
pub enum Outcome {
    /// The condition's value is truthy.
    Pass,
    Fail,
    /// JavaScript would throw (node-bunyan crashes; the record is left out).
    Threw(String),
    /// The evaluation reached something outside this language.
    Unsupported(String),
}

impl Condition {
    /// Compiles condition text. Like node-bunyan, text with a `return`
    /// statement is a function body; anything else is one expression (one
    /// `;` may end it, as node-bunyan strips a final `;`).
    pub fn compile(src: &str) -> Result<Condition> {
        Self::compile_inner(src, false).with_context(|| format!("illegal CONDITION code: {}", shorten(src)))
    }

    /// Compiles a condition for node-bunyan's `BUNYAN_EXEC=vm` mode, where
    /// the record's fields are globals: `-c 'level >= 40 && pid == 123'`.
    /// Like node-bunyan, a condition that would throw on a minimal record
    /// is refused.
    pub fn compile_vm(src: &str) -> Result<Condition> {
        let c = Self::compile_inner(src, true).with_context(|| format!("illegal CONDITION code: {}", shorten(src)))?;
        let min = Value::parse(
            r#"{"v":0,"level":30,"name":"name","hostname":"hostname","pid":123,"time":1700000000000,"msg":"msg"}"#,
        )
        .expect("minimal record parses");
        if let Outcome::Threw(e) | Outcome::Unsupported(e) = c.evaluate(&min) {
            anyhow::bail!("CONDITION code cannot safely filter a minimal Bunyan log record: {}: {e}", shorten(src));
        }
        Ok(c)
    }

    fn compile_inner(src: &str, vm: bool) -> Result<Condition> {
        anyhow::ensure!(src.len() <= MAX_LEN, "condition longer than {MAX_LEN} bytes");
        let toks = lexer::tokenize(src)?;
        let has_return = !vm && toks.iter().any(|t| matches!(&t.tok, Tok::Ident(i) if i == "return"));
        let n = toks.len();
        let mut p = Parser::new(toks, vm);
        let program = if has_return {
            Program::Body(p.body()?)
        } else {
            let e = p.expression()?;
            if vm {
                while p.eat_semicolon() {}
            } else if src.ends_with(';') {
                // node-bunyan strips one final ';' (the very last character).
                p.eat_semicolon();
            }
            anyhow::ensure!(p.at_end() || n == 0, "unexpected text after the condition");
            Program::Expr(e)
        };
        Ok(Condition { program: Arc::new(program), vm, src: src.into(), warned: Arc::new(AtomicBool::new(false)) })
    }

    /// Evaluates the condition on a record.
    pub fn evaluate(&self, record: &Value) -> Outcome {
        match self.value(record) {
            Ok(v) if truthy(&v) => Outcome::Pass,
            Ok(_) => Outcome::Fail,
            Err(Throw::Js(e)) => Outcome::Threw(e),
            Err(Throw::Unsupported(e)) => Outcome::Unsupported(e),
        }
    }

    fn value<'r, 'a>(&'r self, record: &'r Value<'a>) -> Result<V<'r, 'a>, Throw> {
        let ev = Evaluator::new(record, self.vm);
        match &*self.program {
            Program::Expr(e) => ev.eval(e),
            Program::Body(b) => ev.run_body(b),
        }
    }

    /// Whether the record passes. A record on which JavaScript would throw
    /// is left out (node-bunyan would crash); one that reaches something
    /// outside the language is left out with a warning on stderr (once).
    pub fn matches(&self, record: &Value) -> bool {
        match self.evaluate(record) {
            Outcome::Pass => true,
            Outcome::Fail | Outcome::Threw(_) => false,
            Outcome::Unsupported(what) => {
                if !self.warned.swap(true, Ordering::Relaxed) {
                    eprintln!(
                        "bunyan: warning: CONDITION {}: {what} is not supported; records where it matters are left out",
                        shorten(&self.src)
                    );
                }
                false
            }
        }
    }

    /// The condition's value on a record, typed as in the differential
    /// tests against node (`num:1`, `str:"x"`, `arr[...]`, `throw`, ...).
    #[doc(hidden)]
    pub fn debug_value(&self, record: &Value) -> String {
        match self.value(record) {
            Ok(v) => repr(&v),
            Err(Throw::Js(_)) => "throw".into(),
            Err(Throw::Unsupported(w)) => format!("unsupported: {w}"),
        }
    }
}

/// The condition for messages (long ones cut).
fn shorten(src: &str) -> String {
    if src.chars().count() <= 200 {
        return src.to_owned();
    }
    let head: String = src.chars().take(200).collect();
    format!("{head}... ({} bytes)", src.len())
}

fn repr(v: &V) -> String {
    let json_str = |s: &str| {
        let mut o = Vec::new();
        crate::json::push_json_string(&mut o, s);
        String::from_utf8(o).unwrap_or_default()
    };
    match v {
        V::Undefined => "undefined".into(),
        V::Null => "null".into(),
        V::Bool(b) => format!("bool:{b}"),
        V::Num(n) if *n == 0.0 && n.is_sign_negative() => "num:-0".into(),
        V::Num(n) => format!("num:{}", jsval::num_to_string(*n)),
        V::Str(s) => format!("str:{}", json_str(s)),
        V::Json(Value::Object(_)) => format!(
            "obj:{}",
            crate::json::to_json(
                match v {
                    V::Json(j) => j,
                    _ => unreachable!(),
                },
                0
            )
        ),
        V::Json(_) | V::Arr(_) => {
            let items: Vec<String> = v.array_items().unwrap_or_default().iter().map(repr).collect();
            format!("arr[{}]", items.join(","))
        }
        V::Regex(re) => format!("re:{}", re.to_js_string()),
        V::Native(Native::Method(_, name)) => format!("fn:{name}"),
        V::Native(Native::Ctor(p)) => format!("fn:{p:?}"),
        V::Native(Native::Proto(jsval::Proto::Function)) => "fn:".into(),
        V::Native(Native::Proto(p)) => format!("proto:{p:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(cond: &str, rec: &str) -> bool {
        let c = Condition::compile(cond).unwrap_or_else(|e| panic!("{cond}: {e:#}"));
        c.matches(&Value::parse(rec).unwrap())
    }

    const REC: &str = r#"{"v":0,"level":30,"name":"app","hostname":"h","pid":123,"time":"2024-01-01T00:00:00.000Z","msg":"request Timeout after 5s","n":"42","tags":["a","b"],"req":{"method":"POST","url":"/x"},"e":""}"#;

    #[test]
    fn common_conditions() {
        assert!(check("this.pid == 123", REC));
        assert!(check("this.pid === 123", REC));
        assert!(!check("this.pid === '123'", REC));
        assert!(check("this.pid == '123'", REC));
        assert!(check("this.level == INFO", REC));
        assert!(check("this.level >= INFO && this.level < WARN", REC));
        assert!(check(r#"this.msg.indexOf("Timeout") != -1"#, REC));
        assert!(check("/timeout/i.test(this.msg)", REC));
        assert!(check("this.msg.match(/after (\\d+)s/)[1] === '5'", REC));
        assert!(check("this.req.method === 'POST' && this.req['url'] == '/x'", REC));
        assert!(!check("this.res && this.res.statusCode >= 500", REC));
        assert!(check("this.n > 41", REC));
        assert!(check("this.tags.length === 2 && this.tags[1] === 'b'", REC));
        assert!(check("this.tags.includes('a')", REC));
        assert!(check("!this.missing", REC));
        assert!(check("this.missing === undefined && this.missing == null", REC));
        assert!(!check("this.e", REC));
        assert!(check("(this.pid > 100) ? true : false;", REC));
        assert!(check("return this.pid == 123", REC));
        assert!(check("if (this.level > 40) return false; return true;", REC));
        assert!(!check("this.missing.deeper == 1", REC));
        assert!(check("typeof this.pid === 'number'", REC));
        assert!(check("'10' < '9' && 10 > 9", REC));
        assert!(check("this.msg.toLowerCase().startsWith('request')", REC));
    }

    #[test]
    fn vm_mode_reads_fields_as_globals() {
        let c = Condition::compile_vm("level >= INFO && req.method == 'POST' && !missing").unwrap_err();
        // `missing` is a ReferenceError on node-bunyan's minimal record.
        assert!(format!("{c:#}").contains("minimal Bunyan log record"), "{c:#}");
        let c = Condition::compile_vm("level >= INFO && typeof missing == 'undefined'").unwrap();
        assert!(c.matches(&Value::parse(REC).unwrap()));
        assert!(Condition::compile("level >= INFO").is_err());
    }

    #[test]
    fn rejects_what_it_cannot_do_safely() {
        assert!(Condition::compile("process.exit(1)").is_err());
        assert!(Condition::compile_vm("process.exit(1)").is_err());
        assert!(Condition::compile("this.a = 1").is_err());
        assert!(Condition::compile("this.pid ==").is_err());
        assert!(Condition::compile("require('fs')").is_err());
        assert!(Condition::compile(&"(".repeat(10_000)).is_err());
    }

    /// Issue 12: methods outside the language were accepted and made every
    /// record fail; now they are refused when the condition is compiled.
    #[test]
    fn unsupported_methods_are_refused_at_compile_time() {
        for c in [
            "this.msg.replace('h','j')=='jello'",
            "this.msg.localeCompare('a') < 0",
            "this.arr.map(x)",
            "this.tags.filter(Boolean).length",
            "this.msg.normalize() == 'x'",
        ] {
            let e = Condition::compile(c).expect_err(c);
            assert!(format!("{e:#}").contains("is not supported in a condition"), "{c}: {e:#}");
        }
        for c in ["this.msg.repeat(2)", "this.msg.padStart(3)", "this.msg.at(-1)"] {
            assert!(Condition::compile(c).is_ok(), "{c}");
        }
    }

    /// Issue 12: long flat expressions overflowed the stack.
    #[test]
    fn long_flat_expressions_do_not_overflow() {
        let rec = Value::parse(REC).unwrap();
        let sum = vec!["1"; 30_000].join("+");
        assert_eq!(Condition::compile(&sum).unwrap().debug_value(&rec), "num:30000");
        let and = vec!["1"; 40_000].join("&&");
        assert!(Condition::compile(&and).unwrap().matches(&rec));
        let members = format!("this{}", ".a".repeat(60_000));
        assert!(!Condition::compile(&members).unwrap().matches(&rec));
        let index = format!("this{}", "[0]".repeat(40_000));
        assert!(!Condition::compile(&index).unwrap().matches(&rec));
        let nots = format!("{}this", "!".repeat(59_999));
        assert!(!Condition::compile(&nots).unwrap().matches(&rec));
        let conds = format!("{}0", "this.a ? 1 : ".repeat(9_000));
        assert!(!Condition::compile(&conds).unwrap().matches(&rec));
        let e = Condition::compile(&"x".repeat(MAX_LEN + 1)).unwrap_err();
        assert!(format!("{e:#}").contains("longer than"), "{e:#}");
    }

    #[test]
    fn prototype_properties_are_truthy_like_node() {
        let rec = Value::parse(REC).unwrap();
        for (c, want) in [
            ("this.__proto__", "proto:Object"),
            ("this.constructor", "fn:Object"),
            ("this.msg.trim", "fn:trim"),
            ("typeof this.hasOwnProperty", "str:\"function\""),
            ("this.tags.__proto__ === this.req.__proto__", "bool:false"),
            ("this.__proto__ === this.req.__proto__", "bool:true"),
        ] {
            assert_eq!(Condition::compile(c).unwrap().debug_value(&rec), want, "{c}");
        }
    }
}
