//! `-c CONDITION`: a safe JavaScript-subset filter over records.
//!
//! node-bunyan runs conditions as JavaScript with `this` bound to the
//! record. This module accepts the same text (`this.level >= WARN &&
//! /timeout/i.test(this.msg)`, `this.req && this.req.method === 'POST'`,
//! `return this.pid == 123`), parses it once and evaluates it per record
//! with JavaScript's comparison and truthiness rules, without executing
//! arbitrary code.

mod eval;
mod lexer;
mod parser;

use crate::value::Value;
use anyhow::{Context, Result};
use eval::{truthy, Evaluator};
use lexer::Tok;
use parser::{Expr, Parser, Stmt};

/// A compiled condition.
#[derive(Clone, Debug)]
pub struct Condition {
    program: Program,
}

#[derive(Clone, Debug)]
enum Program {
    Expr(Expr),
    Body(Vec<Stmt>),
}

impl Condition {
    /// Compiles condition text. Like node-bunyan, text with a `return`
    /// statement is a function body; anything else is one expression (an
    /// optional trailing `;` is ignored).
    pub fn compile(src: &str) -> Result<Condition> {
        Self::compile_inner(src, false).with_context(|| format!("illegal CONDITION code: {src}"))
    }

    /// Compiles a condition for node-bunyan's `BUNYAN_EXEC=vm` mode, where
    /// the record's fields are globals: `-c 'level >= 40 && pid == 123'`.
    pub fn compile_vm(src: &str) -> Result<Condition> {
        Self::compile_inner(src, true).with_context(|| format!("illegal CONDITION code: {src}"))
    }

    fn compile_inner(src: &str, vm: bool) -> Result<Condition> {
        let toks = lexer::tokenize(src)?;
        let has_return = !vm
            && toks
                .iter()
                .any(|t| matches!(t, Tok::Ident(i) if i == "return"));
        let mut p = Parser::new(toks, vm);
        let program = if has_return {
            Program::Body(p.body()?)
        } else {
            let e = p.expression()?;
            while !p.at_end() {
                // Only a trailing ';' may follow.
                anyhow::ensure!(p.eat_semicolon(), "unexpected text after the condition");
            }
            Program::Expr(e)
        };
        Ok(Condition { program })
    }

    /// Whether the record passes (the condition's value is truthy).
    pub fn matches(&self, record: &Value) -> bool {
        let ev = Evaluator { this: record };
        match &self.program {
            Program::Expr(e) => truthy(&ev.eval(e)),
            Program::Body(b) => truthy(&ev.run_body(b)),
        }
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
        assert!(check(
            "this.req.method === 'POST' && this.req['url'] == '/x'",
            REC
        ));
        assert!(!check("this.res && this.res.statusCode >= 500", REC));
        assert!(check("this.n > 41", REC));
        assert!(check("this.tags.length === 2 && this.tags[1] === 'b'", REC));
        assert!(check("this.tags.includes('a')", REC));
        assert!(check("!this.missing", REC));
        assert!(check(
            "this.missing === undefined && this.missing == null",
            REC
        ));
        assert!(!check("this.e", REC));
        assert!(check("(this.pid > 100) ? true : false;", REC));
        assert!(check("return this.pid == 123", REC));
        assert!(check(
            "if (this.level > 40) return false; return true;",
            REC
        ));
        assert!(!check("this.missing.deeper == 1", REC));
        assert!(check("typeof this.pid === 'number'", REC));
        assert!(check("'10' < '9' && 10 > 9", REC));
        assert!(check("this.msg.toLowerCase().startsWith('request')", REC));
    }

    #[test]
    fn vm_mode_reads_fields_as_globals() {
        let c = Condition::compile_vm("level >= INFO && req.method == 'POST' && !missing").unwrap();
        assert!(c.matches(&Value::parse(REC).unwrap()));
        assert!(Condition::compile("level >= INFO").is_err());
    }

    #[test]
    fn rejects_what_it_cannot_do_safely() {
        assert!(Condition::compile("process.exit(1)").is_err());
        assert!(Condition::compile("this.a = 1").is_err());
        assert!(Condition::compile("this.pid ==").is_err());
        assert!(Condition::compile("require('fs')").is_err());
        assert!(Condition::compile(&"(".repeat(10_000)).is_err());
    }
}
