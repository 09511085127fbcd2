//! Parser of the `-c CONDITION` language into an expression tree.
//!
//! node-bunyan wraps a condition without `return` as `return (CONDITION)`
//! and otherwise runs it as a function body; both shapes are accepted here:
//! an expression, or statements made of `return`, `if`/`else`, blocks and
//! expressions. Identifiers are limited to `this`, literals, the level
//! constants `TRACE`..`FATAL` and a few global functions, so nothing outside
//! the record can be reached.

use super::lexer::Tok;
use anyhow::{anyhow, bail, Result};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BinOp {
    StrictEq,
    StrictNe,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    In,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LogicOp {
    And,
    Or,
    Nullish,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnOp {
    Not,
    Neg,
    Plus,
    Typeof,
}

/// Global functions a condition may call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Global {
    String,
    Number,
    Boolean,
    ParseInt,
    ParseFloat,
    IsNaN,
}

#[derive(Clone, Debug)]
pub enum Expr {
    Num(f64),
    Str(String),
    Bool(bool),
    Null,
    Undefined,
    Regex(Box<regex::Regex>, String),
    This,
    Array(Vec<Expr>),
    /// `obj[key]` / `obj.key` (`?.` is the same: missing values never throw here).
    Member(Box<Expr>, Box<Expr>),
    /// `obj.method(args)`.
    Method(Box<Expr>, String, Vec<Expr>),
    Call(Global, Vec<Expr>),
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Logic(LogicOp, Box<Expr>, Box<Expr>),
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
}

#[derive(Clone, Debug)]
pub enum Stmt {
    Return(Option<Expr>),
    Expr(Expr),
    If(Expr, Box<Stmt>, Option<Box<Stmt>>),
    Block(Vec<Stmt>),
}

/// Deepest nesting accepted (keeps recursion bounded on hostile input).
const MAX_DEPTH: usize = 100;

pub struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    depth: usize,
    /// Bare identifiers name record fields (node-bunyan's `BUNYAN_EXEC=vm`).
    bare_fields: bool,
}

impl Parser {
    pub fn new(toks: Vec<Tok>, bare_fields: bool) -> Parser {
        Parser {
            toks,
            pos: 0,
            depth: 0,
            bare_fields,
        }
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn is_punct(&self, p: &str) -> bool {
        matches!(self.peek(), Some(Tok::Punct(q)) if *q == p)
    }

    fn is_ident(&self, id: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(q)) if q == id)
    }

    fn eat_punct(&mut self, p: &str) -> bool {
        if self.is_punct(p) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, p: &str) -> Result<()> {
        if self.eat_punct(p) {
            Ok(())
        } else {
            bail!("expected '{p}' {}", self.where_())
        }
    }

    fn where_(&self) -> String {
        match self.peek() {
            None => "at end of condition".into(),
            Some(t) => format!("before {}", describe(t)),
        }
    }

    /// Consumes one `;` if there is one.
    pub fn eat_semicolon(&mut self) -> bool {
        self.eat_punct(";")
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.toks.len()
    }

    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            bail!("condition nested too deeply");
        }
        Ok(())
    }

    /// A whole function body: statements until the end.
    pub fn body(&mut self) -> Result<Vec<Stmt>> {
        let mut stmts = Vec::new();
        while !self.at_end() {
            if self.eat_punct(";") {
                continue;
            }
            stmts.push(self.statement()?);
        }
        Ok(stmts)
    }

    fn statement(&mut self) -> Result<Stmt> {
        self.enter()?;
        let s = if self.is_ident("return") {
            self.pos += 1;
            if self.at_end() || self.is_punct(";") || self.is_punct("}") {
                Stmt::Return(None)
            } else {
                Stmt::Return(Some(self.expression()?))
            }
        } else if self.is_ident("if") {
            self.pos += 1;
            self.expect("(")?;
            let c = self.expression()?;
            self.expect(")")?;
            let then = Box::new(self.statement()?);
            self.eat_punct(";");
            let els = if self.is_ident("else") {
                self.pos += 1;
                Some(Box::new(self.statement()?))
            } else {
                None
            };
            Stmt::If(c, then, els)
        } else if self.eat_punct("{") {
            let mut stmts = Vec::new();
            while !self.eat_punct("}") {
                if self.at_end() {
                    bail!("expected '}}' at end of condition");
                }
                if self.eat_punct(";") {
                    continue;
                }
                stmts.push(self.statement()?);
            }
            Stmt::Block(stmts)
        } else {
            Stmt::Expr(self.expression()?)
        };
        if !self.at_end()
            && !self.is_punct("}")
            && !self.is_ident("else")
            && !self.eat_punct(";")
            && !matches!(s, Stmt::If(..) | Stmt::Block(_))
        {
            bail!("expected ';' {}", self.where_());
        }
        self.depth -= 1;
        Ok(s)
    }

    /// One expression (a comma-free JavaScript expression).
    pub fn expression(&mut self) -> Result<Expr> {
        self.enter()?;
        let e = self.conditional()?;
        self.depth -= 1;
        Ok(e)
    }

    fn conditional(&mut self) -> Result<Expr> {
        let c = self.logic_or()?;
        if self.eat_punct("?") {
            let a = self.expression()?;
            self.expect(":")?;
            let b = self.expression()?;
            return Ok(Expr::Cond(Box::new(c), Box::new(a), Box::new(b)));
        }
        Ok(c)
    }

    fn logic_or(&mut self) -> Result<Expr> {
        let mut l = self.logic_and()?;
        loop {
            let op = if self.eat_punct("||") {
                LogicOp::Or
            } else if self.eat_punct("??") {
                LogicOp::Nullish
            } else {
                return Ok(l);
            };
            let r = self.logic_and()?;
            l = Expr::Logic(op, Box::new(l), Box::new(r));
        }
    }

    fn logic_and(&mut self) -> Result<Expr> {
        let mut l = self.equality()?;
        while self.eat_punct("&&") {
            let r = self.equality()?;
            l = Expr::Logic(LogicOp::And, Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn binary_level(
        &mut self,
        ops: &[(&str, BinOp)],
        next: fn(&mut Parser) -> Result<Expr>,
    ) -> Result<Expr> {
        let mut l = next(self)?;
        'outer: loop {
            for (p, op) in ops {
                let hit = if *p == "in" {
                    self.is_ident("in")
                } else {
                    self.is_punct(p)
                };
                if hit {
                    self.pos += 1;
                    let r = next(self)?;
                    l = Expr::Binary(*op, Box::new(l), Box::new(r));
                    continue 'outer;
                }
            }
            return Ok(l);
        }
    }

    fn equality(&mut self) -> Result<Expr> {
        self.binary_level(
            &[
                ("===", BinOp::StrictEq),
                ("!==", BinOp::StrictNe),
                ("==", BinOp::Eq),
                ("!=", BinOp::Ne),
            ],
            Parser::relational,
        )
    }

    fn relational(&mut self) -> Result<Expr> {
        self.binary_level(
            &[
                ("<=", BinOp::Le),
                (">=", BinOp::Ge),
                ("<", BinOp::Lt),
                (">", BinOp::Gt),
                ("in", BinOp::In),
            ],
            Parser::additive,
        )
    }

    fn additive(&mut self) -> Result<Expr> {
        self.binary_level(
            &[("+", BinOp::Add), ("-", BinOp::Sub)],
            Parser::multiplicative,
        )
    }

    fn multiplicative(&mut self) -> Result<Expr> {
        self.binary_level(
            &[("*", BinOp::Mul), ("/", BinOp::Div), ("%", BinOp::Rem)],
            Parser::unary,
        )
    }

    fn unary(&mut self) -> Result<Expr> {
        let op = if self.eat_punct("!") {
            UnOp::Not
        } else if self.eat_punct("-") {
            UnOp::Neg
        } else if self.eat_punct("+") {
            UnOp::Plus
        } else if self.is_ident("typeof") {
            self.pos += 1;
            UnOp::Typeof
        } else {
            return self.postfix();
        };
        self.enter()?;
        let e = self.unary()?;
        self.depth -= 1;
        Ok(Expr::Unary(op, Box::new(e)))
    }

    fn postfix(&mut self) -> Result<Expr> {
        let mut e = self.primary()?;
        loop {
            if self.eat_punct(".") || self.eat_punct("?.") {
                if self.is_punct("[") {
                    continue;
                }
                let name = match self.toks.get(self.pos) {
                    Some(Tok::Ident(n)) => n.clone(),
                    _ => bail!("expected a property name {}", self.where_()),
                };
                self.pos += 1;
                if self.eat_punct("(") {
                    let args = self.arguments()?;
                    e = Expr::Method(Box::new(e), name, args);
                } else {
                    e = Expr::Member(Box::new(e), Box::new(Expr::Str(name)));
                }
            } else if self.eat_punct("[") {
                let k = self.expression()?;
                self.expect("]")?;
                e = Expr::Member(Box::new(e), Box::new(k));
            } else if self.is_punct("(") {
                bail!("only methods of values and String/Number/Boolean/parseInt/parseFloat/isNaN can be called");
            } else {
                return Ok(e);
            }
        }
    }

    fn arguments(&mut self) -> Result<Vec<Expr>> {
        let mut args = Vec::new();
        if self.eat_punct(")") {
            return Ok(args);
        }
        loop {
            args.push(self.expression()?);
            if self.eat_punct(")") {
                return Ok(args);
            }
            self.expect(",")?;
        }
    }

    fn primary(&mut self) -> Result<Expr> {
        let tok = self
            .toks
            .get(self.pos)
            .cloned()
            .ok_or_else(|| anyhow!("unexpected end of condition"))?;
        self.pos += 1;
        Ok(match tok {
            Tok::Num(n) => Expr::Num(n),
            Tok::Str(s) => Expr::Str(s),
            Tok::Regex(src, flags) => Expr::Regex(Box::new(compile_regex(&src, &flags)?), format!("/{src}/{flags}")),
            Tok::Punct("(") => {
                let e = self.expression()?;
                self.expect(")")?;
                e
            }
            Tok::Punct("[") => {
                let mut items = Vec::new();
                if !self.eat_punct("]") {
                    loop {
                        items.push(self.expression()?);
                        if self.eat_punct("]") {
                            break;
                        }
                        self.expect(",")?;
                        if self.eat_punct("]") {
                            break;
                        }
                    }
                }
                Expr::Array(items)
            }
            Tok::Ident(id) => match id.as_str() {
                "this" => Expr::This,
                "true" => Expr::Bool(true),
                "false" => Expr::Bool(false),
                "null" => Expr::Null,
                "undefined" => Expr::Undefined,
                "NaN" => Expr::Num(f64::NAN),
                "Infinity" => Expr::Num(f64::INFINITY),
                "TRACE" => Expr::Num(10.0),
                "DEBUG" => Expr::Num(20.0),
                "INFO" => Expr::Num(30.0),
                "WARN" => Expr::Num(40.0),
                "ERROR" => Expr::Num(50.0),
                "FATAL" => Expr::Num(60.0),
                g @ ("String" | "Number" | "Boolean" | "parseInt" | "parseFloat" | "isNaN") => {
                    let global = match g {
                        "String" => Global::String,
                        "Number" => Global::Number,
                        "Boolean" => Global::Boolean,
                        "parseInt" => Global::ParseInt,
                        "parseFloat" => Global::ParseFloat,
                        _ => Global::IsNaN,
                    };
                    self.expect("(")?;
                    Expr::Call(global, self.arguments()?)
                }
                other if self.bare_fields => Expr::Member(Box::new(Expr::This), Box::new(Expr::Str(other.to_owned()))),
                other => bail!(
                    "'{other}' is not available in a condition (use this.{other} for a record field; \
                     TRACE..FATAL, String(), Number() and literals are defined)"
                ),
            },
            other => bail!("unexpected {}", describe(&other)),
        })
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Num(n) => format!("number {n}"),
        Tok::Str(s) => format!("string {s:?}"),
        Tok::Regex(s, f) => format!("regex /{s}/{f}"),
        Tok::Ident(i) => format!("'{i}'"),
        Tok::Punct(p) => format!("'{p}'"),
    }
}

/// Builds a Rust regex for a JavaScript regex literal (flags `i`, `m`, `s`,
/// `g`, `u`; back-references and look-around are not supported).
pub fn compile_regex(src: &str, flags: &str) -> Result<regex::Regex> {
    let mut prefix = String::new();
    for f in flags.chars() {
        match f {
            'i' => prefix.push('i'),
            'm' => prefix.push('m'),
            's' => prefix.push('s'),
            'g' | 'u' | 'd' => {}
            other => bail!("unsupported regex flag '{other}'"),
        }
    }
    // JavaScript allows escaping '/' (and other punctuation) freely.
    let mut translated = String::with_capacity(src.len());
    let mut it = src.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some('/') => translated.push('/'),
                Some('d') => translated.push_str("[0-9]"),
                Some('D') => translated.push_str("[^0-9]"),
                Some(n) => {
                    translated.push('\\');
                    translated.push(n);
                }
                None => translated.push('\\'),
            }
        } else {
            translated.push(c);
        }
    }
    let full = if prefix.is_empty() {
        translated
    } else {
        format!("(?{prefix}){translated}")
    };
    regex::RegexBuilder::new(&full)
        .size_limit(1 << 22)
        .build()
        .map_err(|e| anyhow!("unsupported regular expression /{src}/{flags}: {e}"))
}
