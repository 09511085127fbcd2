//! Parser of the `-c CONDITION` language into an expression tree.
//!
//! node-bunyan wraps a condition without `return` as `return (CONDITION)`
//! and otherwise runs it as a function body; both shapes are accepted here:
//! an expression, or statements made of `return`, `if`/`else`, blocks and
//! expressions. Identifiers are limited to `this`, literals, the level
//! constants `TRACE`..`FATAL` and a few global functions, so nothing outside
//! the record can be reached; methods are limited to [`METHODS`].
//!
//! Flat chains (`a || b || ...`, `1 + 1 + ...`, `this.a.b.c...`, `!!!x`,
//! `a ? b : c ? d : ...`) become one node holding a list, parsed and
//! evaluated by loops, so only real nesting (parentheses, brackets,
//! arguments) deepens the tree, and that is bounded by [`MAX_DEPTH`].

use super::lexer::{Tok, Token};
use super::regexp::JsRegex;
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

/// The methods a condition may call, each implemented for every kind of
/// value JavaScript defines it on (see `methods.rs`). Any other method is
/// refused when the condition is compiled.
pub const METHODS: &[&str] = &[
    "at",
    "charAt",
    "charCodeAt",
    "concat",
    "endsWith",
    "exec",
    "hasOwnProperty",
    "includes",
    "indexOf",
    "join",
    "lastIndexOf",
    "match",
    "padEnd",
    "padStart",
    "repeat",
    "search",
    "slice",
    "split",
    "startsWith",
    "substr",
    "substring",
    "test",
    "toFixed",
    "toLowerCase",
    "toString",
    "toUpperCase",
    "trim",
    "trimEnd",
    "trimLeft",
    "trimRight",
    "trimStart",
];

#[derive(Debug)]
pub enum Key {
    Static(String),
    Computed(Expr),
}

/// One step of a member chain; `optional` is `?.` (the rest of the chain
/// is skipped when the value before it is null or undefined).
#[derive(Debug)]
pub enum Step {
    Get { key: Key, optional: bool },
    Call { name: String, args: Vec<Expr>, optional: bool },
}

#[derive(Debug)]
pub enum Expr {
    Num(f64),
    Str(String),
    Bool(bool),
    Null,
    Undefined,
    Regex(Box<JsRegex>),
    This,
    /// A bare identifier in `BUNYAN_EXEC=vm` mode: a record field
    /// (a ReferenceError when the record lacks it, except under `typeof`).
    Global(String),
    Array(Vec<Expr>),
    /// `base.a[b].c(args)...`
    Chain(Box<Expr>, Vec<Step>),
    Call(Global, Vec<Expr>),
    /// Unary operators, applied last to first.
    Unary(Vec<UnOp>, Box<Expr>),
    /// A left-associative run of operators of one precedence level.
    Binary(Box<Expr>, Vec<(BinOp, Expr)>),
    /// `a op b op c ...` for one logical operator.
    Logic(LogicOp, Vec<Expr>),
    /// `c1 ? v1 : c2 ? v2 : ... : otherwise`.
    Cond(Vec<(Expr, Expr)>, Box<Expr>),
}

#[derive(Debug)]
pub enum Stmt {
    Return(Option<Expr>),
    Expr(Expr),
    If(Expr, Box<Stmt>, Option<Box<Stmt>>),
    Block(Vec<Stmt>),
}

/// Deepest nesting accepted (parentheses, brackets, arguments, statements).
pub const MAX_DEPTH: usize = 100;

pub struct Parser {
    toks: Vec<Token>,
    pos: usize,
    depth: usize,
    /// Bare identifiers name record fields (node-bunyan's `BUNYAN_EXEC=vm`).
    bare_fields: bool,
    /// Whether the last `logic_and` read an unparenthesized `&&`.
    last_had_and: bool,
}

impl Parser {
    pub fn new(toks: Vec<Token>, bare_fields: bool) -> Parser {
        Parser { toks, pos: 0, depth: 0, bare_fields, last_had_and: false }
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
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

    fn nested<T>(&mut self, f: impl FnOnce(&mut Parser) -> Result<T>) -> Result<T> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            bail!("condition nested too deeply (more than {MAX_DEPTH} levels)");
        }
        let r = f(self);
        self.depth -= 1;
        r
    }

    /// A whole function body: statements until the end.
    pub fn body(&mut self) -> Result<Vec<Stmt>> {
        let mut stmts = Vec::new();
        while !self.at_end() {
            if self.eat_punct(";") {
                continue;
            }
            stmts.push(self.nested(Parser::statement)?);
        }
        Ok(stmts)
    }

    fn statement(&mut self) -> Result<Stmt> {
        let s = if self.is_ident("return") {
            self.pos += 1;
            let asi = self.toks.get(self.pos).is_some_and(|t| t.newline_before);
            if self.at_end() || asi || self.is_punct(";") || self.is_punct("}") {
                Stmt::Return(None)
            } else {
                Stmt::Return(Some(self.expression()?))
            }
        } else if self.is_ident("if") {
            self.pos += 1;
            self.expect("(")?;
            let c = self.expression()?;
            self.expect(")")?;
            let then = Box::new(self.nested(Parser::statement)?);
            self.eat_punct(";");
            let els = if self.is_ident("else") {
                self.pos += 1;
                Some(Box::new(self.nested(Parser::statement)?))
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
                stmts.push(self.nested(Parser::statement)?);
            }
            Stmt::Block(stmts)
        } else {
            Stmt::Expr(self.expression()?)
        };
        let next_on_new_line = self.toks.get(self.pos).is_some_and(|t| t.newline_before);
        if !self.at_end()
            && !self.is_punct("}")
            && !self.is_ident("else")
            && !self.eat_punct(";")
            && !next_on_new_line
            && !matches!(s, Stmt::If(..) | Stmt::Block(_))
        {
            bail!("expected ';' {}", self.where_());
        }
        Ok(s)
    }

    /// One expression (a comma-free JavaScript expression).
    pub fn expression(&mut self) -> Result<Expr> {
        self.nested(Parser::conditional)
    }

    fn conditional(&mut self) -> Result<Expr> {
        let first = self.logic_or()?;
        if !self.is_punct("?") {
            return Ok(first);
        }
        let mut arms = Vec::new();
        let mut cond = first;
        loop {
            self.expect("?")?;
            let then = self.expression()?;
            self.expect(":")?;
            arms.push((cond, then));
            let e = self.logic_or()?;
            if self.is_punct("?") {
                cond = e;
            } else {
                return Ok(Expr::Cond(arms, Box::new(e)));
            }
        }
    }

    fn logic_or(&mut self) -> Result<Expr> {
        let first = self.logic_and()?;
        let mut mixed = self.last_had_and;
        let op = if self.is_punct("||") {
            LogicOp::Or
        } else if self.is_punct("??") {
            LogicOp::Nullish
        } else {
            return Ok(first);
        };
        let mut items = vec![first];
        while self.eat_punct(if op == LogicOp::Or { "||" } else { "??" }) {
            items.push(self.logic_and()?);
            mixed |= self.last_had_and;
        }
        if op == LogicOp::Nullish && mixed {
            bail!("'??' cannot be mixed with '&&' or '||' without parentheses");
        }
        if self.is_punct("||") || self.is_punct("??") {
            bail!("'??' cannot be mixed with '&&' or '||' without parentheses");
        }
        Ok(Expr::Logic(op, items))
    }

    fn logic_and(&mut self) -> Result<Expr> {
        let first = self.equality()?;
        if !self.is_punct("&&") {
            self.last_had_and = false;
            return Ok(first);
        }
        let mut items = vec![first];
        while self.eat_punct("&&") {
            items.push(self.equality()?);
        }
        self.last_had_and = true;
        Ok(Expr::Logic(LogicOp::And, items))
    }

    fn binary_level(&mut self, ops: &[(&str, BinOp)], next: fn(&mut Parser) -> Result<Expr>) -> Result<Expr> {
        let first = next(self)?;
        let mut rest = Vec::new();
        'outer: loop {
            for (p, op) in ops {
                let hit = if *p == "in" { self.is_ident("in") } else { self.is_punct(p) };
                if hit {
                    self.pos += 1;
                    rest.push((*op, next(self)?));
                    continue 'outer;
                }
            }
            break;
        }
        Ok(if rest.is_empty() { first } else { Expr::Binary(Box::new(first), rest) })
    }

    fn equality(&mut self) -> Result<Expr> {
        self.binary_level(
            &[("===", BinOp::StrictEq), ("!==", BinOp::StrictNe), ("==", BinOp::Eq), ("!=", BinOp::Ne)],
            Parser::relational,
        )
    }

    fn relational(&mut self) -> Result<Expr> {
        self.binary_level(
            &[("<=", BinOp::Le), (">=", BinOp::Ge), ("<", BinOp::Lt), (">", BinOp::Gt), ("in", BinOp::In)],
            Parser::additive,
        )
    }

    fn additive(&mut self) -> Result<Expr> {
        self.binary_level(&[("+", BinOp::Add), ("-", BinOp::Sub)], Parser::multiplicative)
    }

    fn multiplicative(&mut self) -> Result<Expr> {
        self.binary_level(&[("*", BinOp::Mul), ("/", BinOp::Div), ("%", BinOp::Rem)], Parser::unary)
    }

    fn unary(&mut self) -> Result<Expr> {
        let mut ops = Vec::new();
        loop {
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
                break;
            };
            ops.push(op);
        }
        let e = self.postfix()?;
        if self.is_punct("**") {
            bail!("'**' is not supported");
        }
        Ok(if ops.is_empty() { e } else { Expr::Unary(ops, Box::new(e)) })
    }

    fn postfix(&mut self) -> Result<Expr> {
        let base = self.primary()?;
        let mut steps = Vec::new();
        loop {
            let optional = self.is_punct("?.");
            if self.eat_punct(".") || self.eat_punct("?.") {
                if optional && self.eat_punct("[") {
                    let k = self.expression()?;
                    self.expect("]")?;
                    steps.push(Step::Get { key: Key::Computed(k), optional });
                    continue;
                }
                let name = match self.peek() {
                    Some(Tok::Ident(n)) => n.clone(),
                    _ => bail!("expected a property name {}", self.where_()),
                };
                self.pos += 1;
                if self.eat_punct("(") {
                    if !METHODS.contains(&name.as_str()) {
                        bail!("'.{name}()' is not supported in a condition (methods: {})", METHODS.join(" "));
                    }
                    let args = self.nested(Parser::arguments)?;
                    steps.push(Step::Call { name, args, optional });
                } else {
                    steps.push(Step::Get { key: Key::Static(name), optional });
                }
            } else if self.eat_punct("[") {
                let k = self.expression()?;
                self.expect("]")?;
                steps.push(Step::Get { key: Key::Computed(k), optional: false });
            } else if self.is_punct("(") {
                bail!("only methods of values and String/Number/Boolean/parseInt/parseFloat/isNaN can be called");
            } else if self.is_punct("++") || self.is_punct("--") {
                bail!("'++' and '--' are not supported (a condition cannot change the record)");
            } else if matches!(self.peek(), Some(Tok::Str(_))) && !steps.is_empty() {
                bail!("tagged templates are not supported");
            } else {
                break;
            }
        }
        Ok(if steps.is_empty() { base } else { Expr::Chain(Box::new(base), steps) })
    }

    fn arguments(&mut self) -> Result<Vec<Expr>> {
        let mut args = Vec::new();
        if self.eat_punct(")") {
            return Ok(args);
        }
        loop {
            if self.is_punct("...") {
                bail!("spread arguments are not supported");
            }
            args.push(self.expression()?);
            if self.eat_punct(")") {
                return Ok(args);
            }
            self.expect(",")?;
            if self.eat_punct(")") {
                return Ok(args);
            }
        }
    }

    fn primary(&mut self) -> Result<Expr> {
        let tok = self.peek().cloned().ok_or_else(|| anyhow!("unexpected end of condition"))?;
        self.pos += 1;
        Ok(match tok {
            Tok::Num(n) => Expr::Num(n),
            Tok::Str(s) => Expr::Str(s),
            Tok::Regex(src, flags) => Expr::Regex(Box::new(JsRegex::new(&src, &flags)?)),
            Tok::Punct("(") => {
                let e = self.expression()?;
                self.expect(")")?;
                e
            }
            Tok::Punct("[") => self.nested(|p| {
                let mut items = Vec::new();
                while !p.eat_punct("]") {
                    if p.is_punct(",") {
                        bail!("array holes are not supported");
                    }
                    if p.is_punct("...") {
                        bail!("spread elements are not supported");
                    }
                    items.push(p.expression()?);
                    if p.eat_punct("]") {
                        break;
                    }
                    p.expect(",")?;
                }
                Ok(Expr::Array(items))
            })?,
            Tok::Punct("++" | "--") => {
                bail!("'++' and '--' are not supported (a condition cannot change the record)")
            }
            Tok::Ident(id) => match id.as_str() {
                "this" => Expr::This,
                "true" => Expr::Bool(true),
                "false" => Expr::Bool(false),
                "null" => Expr::Null,
                "undefined" => Expr::Undefined,
                "NaN" => Expr::Num(f64::NAN),
                "Infinity" => Expr::Num(f64::INFINITY),
                "TRACE" if !self.bare_fields => Expr::Num(10.0),
                "DEBUG" if !self.bare_fields => Expr::Num(20.0),
                "INFO" if !self.bare_fields => Expr::Num(30.0),
                "WARN" if !self.bare_fields => Expr::Num(40.0),
                "ERROR" if !self.bare_fields => Expr::Num(50.0),
                "FATAL" if !self.bare_fields => Expr::Num(60.0),
                g @ ("String" | "Number" | "Boolean" | "parseInt" | "parseFloat" | "isNaN") if self.is_punct("(") => {
                    let global = match g {
                        "String" => Global::String,
                        "Number" => Global::Number,
                        "Boolean" => Global::Boolean,
                        "parseInt" => Global::ParseInt,
                        "parseFloat" => Global::ParseFloat,
                        _ => Global::IsNaN,
                    };
                    self.expect("(")?;
                    Expr::Call(global, self.nested(Parser::arguments)?)
                }
                other if self.bare_fields && !is_reserved(other) && !is_vm_global(other) => {
                    Expr::Global(other.to_owned())
                }
                other => bail!(
                    "'{other}' is not available in a condition (use this.{other} for a record field; \
                     TRACE..FATAL, String(), Number() and literals are defined)"
                ),
            },
            other => bail!("unexpected {}", describe(&other)),
        })
    }
}

/// Reserved words and keywords that are never record fields.
fn is_reserved(id: &str) -> bool {
    matches!(
        id,
        "break"
            | "case"
            | "catch"
            | "class"
            | "const"
            | "continue"
            | "debugger"
            | "default"
            | "delete"
            | "do"
            | "else"
            | "export"
            | "extends"
            | "finally"
            | "for"
            | "function"
            | "if"
            | "import"
            | "in"
            | "instanceof"
            | "new"
            | "return"
            | "super"
            | "switch"
            | "throw"
            | "try"
            | "typeof"
            | "var"
            | "void"
            | "while"
            | "with"
            | "yield"
            | "let"
            | "static"
            | "enum"
            | "await"
            | "implements"
            | "package"
            | "protected"
            | "interface"
            | "private"
            | "public"
            | "arguments"
            | "async"
            | "of"
    )
}

/// Globals of a fresh `vm` context (node 20), which a bare name would reach
/// in `BUNYAN_EXEC=vm` mode instead of a record field.
fn is_vm_global(id: &str) -> bool {
    matches!(
        id,
        "Object"
            | "Function"
            | "Array"
            | "Number"
            | "parseFloat"
            | "parseInt"
            | "Boolean"
            | "String"
            | "Symbol"
            | "Date"
            | "Promise"
            | "RegExp"
            | "Error"
            | "AggregateError"
            | "EvalError"
            | "RangeError"
            | "ReferenceError"
            | "SyntaxError"
            | "TypeError"
            | "URIError"
            | "globalThis"
            | "JSON"
            | "Math"
            | "Intl"
            | "ArrayBuffer"
            | "Uint8Array"
            | "Int8Array"
            | "Uint16Array"
            | "Int16Array"
            | "Uint32Array"
            | "Int32Array"
            | "Float32Array"
            | "Float64Array"
            | "Uint8ClampedArray"
            | "BigUint64Array"
            | "BigInt64Array"
            | "DataView"
            | "Map"
            | "BigInt"
            | "Set"
            | "WeakMap"
            | "WeakSet"
            | "Proxy"
            | "Reflect"
            | "FinalizationRegistry"
            | "WeakRef"
            | "decodeURI"
            | "decodeURIComponent"
            | "encodeURI"
            | "encodeURIComponent"
            | "escape"
            | "unescape"
            | "eval"
            | "isFinite"
            | "isNaN"
            | "console"
            | "SharedArrayBuffer"
            | "Atomics"
            | "WebAssembly"
    )
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
