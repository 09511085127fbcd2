//! Evaluation of a parsed condition against one record. Chains are walked
//! by loops and real nesting is bounded by the parser, so recursion here is
//! bounded too. node-bunyan gives the condition `this` = a shallow copy of
//! the record (`objCopy`), which matters only for a top-level `__proto__`
//! key: the copy's prototype becomes that value.

use super::jsval::*;
use super::methods;
use super::parser::{BinOp, Expr, Key, LogicOp, Step, Stmt, UnOp};
use crate::value::Value;
use std::borrow::Cow;

pub struct Evaluator<'r, 'a> {
    this: &'r Value<'a>,
    /// The record's top-level `__proto__` field (default mode only; in
    /// `BUNYAN_EXEC=vm` mode `this` is the record itself, no copy).
    proto_field: Option<&'r Value<'a>>,
}

enum Flow<'r, 'a> {
    Next,
    Return(V<'r, 'a>),
}

impl<'r, 'a> Evaluator<'r, 'a> {
    pub fn new(this: &'r Value<'a>, vm: bool) -> Self {
        let proto_field = if vm { None } else { this.get("__proto__") };
        Evaluator { this, proto_field }
    }

    pub fn run_body(&self, stmts: &'r [Stmt]) -> R<V<'r, 'a>> {
        Ok(match self.stmts(stmts)? {
            Flow::Return(v) => v,
            Flow::Next => V::Undefined,
        })
    }

    fn stmts(&self, stmts: &'r [Stmt]) -> R<Flow<'r, 'a>> {
        for s in stmts {
            if let Flow::Return(v) = self.stmt(s)? {
                return Ok(Flow::Return(v));
            }
        }
        Ok(Flow::Next)
    }

    fn stmt(&self, s: &'r Stmt) -> R<Flow<'r, 'a>> {
        Ok(match s {
            Stmt::Return(e) => Flow::Return(match e {
                Some(e) => self.eval(e)?,
                None => V::Undefined,
            }),
            Stmt::Expr(e) => {
                self.eval(e)?;
                Flow::Next
            }
            Stmt::If(c, t, e) => {
                if truthy(&self.eval(c)?) {
                    self.stmt(t)?
                } else if let Some(e) = e {
                    self.stmt(e)?
                } else {
                    Flow::Next
                }
            }
            Stmt::Block(b) => self.stmts(b)?,
        })
    }

    /// Whether `v` is the (copied) record whose prototype a top-level
    /// `__proto__` key replaced: then inherited properties come from that
    /// value, which this evaluator does not follow.
    fn replaced_proto(&self, v: &V) -> bool {
        matches!(self.proto_field, Some(Value::Object(_) | Value::Array(_) | Value::Null))
            && matches!(v, V::Json(r) if std::ptr::eq(*r, self.this))
    }

    fn get(&self, o: &V<'r, 'a>, key: &str) -> R<V<'r, 'a>> {
        if self.proto_field.is_some() && matches!(o, V::Json(r) if std::ptr::eq(*r, self.this)) {
            // objCopy: `copy.__proto__ = value` sets the prototype (objects,
            // arrays, null) or is ignored; there is no own `__proto__`.
            let proto = self.proto_field;
            if key == "__proto__" {
                return Ok(match proto {
                    Some(v @ (Value::Object(_) | Value::Array(_))) => V::Json(v),
                    Some(Value::Null) => V::Undefined,
                    _ => V::Native(Native::Proto(Proto::Object)),
                });
            }
            if self.replaced_proto(o) && self.this.get(key).is_none() {
                return unsupported("a record with a \"__proto__\" field");
            }
        }
        get(o, key)
    }

    pub fn eval(&self, e: &'r Expr) -> R<V<'r, 'a>> {
        Ok(match e {
            Expr::Num(n) => V::Num(*n),
            Expr::Str(s) => V::Str(Cow::Borrowed(s)),
            Expr::Bool(b) => V::Bool(*b),
            Expr::Null => V::Null,
            Expr::Undefined => V::Undefined,
            Expr::Regex(re) => V::Regex(re),
            Expr::This => V::Json(self.this),
            Expr::Global(name) => match self.global(name) {
                Some(v) => v,
                None => return Err(Throw::Js(format!("ReferenceError: {name} is not defined"))),
            },
            Expr::Array(items) => V::arr(items.iter().map(|i| self.eval(i)).collect::<R<_>>()?),
            Expr::Chain(base, steps) => {
                let mut cur = self.eval(base)?;
                for step in steps {
                    match step {
                        Step::Get { key, optional } => {
                            if *optional && cur.is_nullish() {
                                return Ok(V::Undefined);
                            }
                            let k = match key {
                                Key::Static(s) => Cow::Borrowed(s.as_str()),
                                Key::Computed(k) => {
                                    let kv = self.eval(k)?;
                                    if cur.is_nullish() {
                                        return get(&cur, &to_str(&kv)?);
                                    }
                                    Cow::Owned(to_key(&kv)?.into_owned())
                                }
                            };
                            cur = self.get(&cur, &k)?;
                        }
                        Step::Call { name, args, optional } => {
                            if *optional && cur.is_nullish() {
                                return Ok(V::Undefined);
                            }
                            if cur.is_nullish() {
                                return get(&cur, name);
                            }
                            if self.replaced_proto(&cur) {
                                return unsupported("a record with a \"__proto__\" field");
                            }
                            let args: Vec<V> = args.iter().map(|a| self.eval(a)).collect::<R<_>>()?;
                            if name == "hasOwnProperty"
                                && self.proto_field.is_some()
                                && matches!(cur, V::Json(r) if std::ptr::eq(r, self.this))
                                && to_key(args.first().unwrap_or(&V::Undefined))? == "__proto__"
                            {
                                // The copy has no own `__proto__`.
                                cur = V::Bool(false);
                                continue;
                            }
                            cur = methods::call(cur, name, &args)?;
                        }
                    }
                }
                cur
            }
            Expr::Call(g, args) => {
                let args: Vec<V> = args.iter().map(|a| self.eval(a)).collect::<R<_>>()?;
                self.check_this_args(&args)?;
                methods::call_global(*g, &args)?
            }
            Expr::Unary(ops, x) => {
                let mut v = match (ops.last(), x.as_ref()) {
                    // `typeof undeclared` does not throw.
                    (Some(UnOp::Typeof), Expr::Global(name)) => self.global(name).unwrap_or(V::Undefined),
                    _ => self.eval(x)?,
                };
                for op in ops.iter().rev() {
                    if matches!(op, UnOp::Neg | UnOp::Plus) {
                        self.check_this_args(std::slice::from_ref(&v))?;
                    }
                    v = match op {
                        UnOp::Not => V::Bool(!truthy(&v)),
                        UnOp::Neg => V::Num(-to_num(&v)?),
                        UnOp::Plus => V::Num(to_num(&v)?),
                        UnOp::Typeof => V::Str(Cow::Borrowed(type_of(&v))),
                    };
                }
                v
            }
            Expr::Logic(op, items) => {
                let mut v = self.eval(&items[0])?;
                for r in &items[1..] {
                    let done = match op {
                        LogicOp::And => !truthy(&v),
                        LogicOp::Or => truthy(&v),
                        LogicOp::Nullish => !v.is_nullish(),
                    };
                    if done {
                        break;
                    }
                    v = self.eval(r)?;
                }
                v
            }
            Expr::Cond(arms, otherwise) => {
                for (c, v) in arms {
                    if truthy(&self.eval(c)?) {
                        return self.eval(v);
                    }
                }
                self.eval(otherwise)?
            }
            Expr::Binary(first, rest) => {
                let mut a = self.eval(first)?;
                for (op, r) in rest {
                    let b = self.eval(r)?;
                    if !matches!(op, BinOp::StrictEq | BinOp::StrictNe) {
                        self.check_this_args(&[a.clone(), b.clone()])?;
                    }
                    a = binary(*op, &a, &b)?;
                }
                a
            }
        })
    }

    /// Converting the record itself to a primitive goes through its
    /// prototype, which a top-level `__proto__` key replaced.
    fn check_this_args(&self, vals: &[V]) -> R<()> {
        if vals.iter().any(|v| self.replaced_proto(v)) {
            return unsupported("a record with a \"__proto__\" field");
        }
        Ok(())
    }

    /// A bare name in vm mode: the record's field, else a level constant
    /// (node-bunyan defines `Object.prototype.TRACE = 10`, ...).
    fn global(&self, name: &str) -> Option<V<'r, 'a>> {
        if let Some(v) = self.this.get(name) {
            return Some(from_json(v));
        }
        let level = match name {
            "TRACE" => 10.0,
            "DEBUG" => 20.0,
            "INFO" => 30.0,
            "WARN" => 40.0,
            "ERROR" => 50.0,
            "FATAL" => 60.0,
            _ => return None,
        };
        Some(V::Num(level))
    }
}

fn binary<'r, 'a>(op: BinOp, a: &V<'r, 'a>, b: &V<'r, 'a>) -> R<V<'r, 'a>> {
    Ok(match op {
        BinOp::StrictEq => V::Bool(strict_eq(a, b)),
        BinOp::StrictNe => V::Bool(!strict_eq(a, b)),
        BinOp::Eq => V::Bool(loose_eq(a, b)?),
        BinOp::Ne => V::Bool(!loose_eq(a, b)?),
        BinOp::Lt => V::Bool(less_than(a, b)? == Some(true)),
        BinOp::Gt => V::Bool(less_than(b, a)? == Some(true)),
        BinOp::Le => V::Bool(less_than(b, a)? == Some(false)),
        BinOp::Ge => V::Bool(less_than(a, b)? == Some(false)),
        BinOp::Add => {
            let (pa, pb) = (to_primitive(a)?, to_primitive(b)?);
            if matches!(pa, V::Str(_)) || matches!(pb, V::Str(_)) {
                let (x, y) = (to_str(&pa)?, to_str(&pb)?);
                if x.len() + y.len() > MAX_STRING_LEN
                    && crate::js::utf16_len(&x) + crate::js::utf16_len(&y) > MAX_STRING_LEN
                {
                    return Err(Throw::Js("RangeError: Invalid string length".into()));
                }
                let mut s = String::with_capacity(x.len() + y.len());
                s.push_str(&x);
                s.push_str(&y);
                check_len(&s)?;
                V::Str(Cow::Owned(s))
            } else {
                V::Num(to_num(&pa)? + to_num(&pb)?)
            }
        }
        BinOp::Sub => V::Num(to_num(a)? - to_num(b)?),
        BinOp::Mul => V::Num(to_num(a)? * to_num(b)?),
        BinOp::Div => V::Num(to_num(a)? / to_num(b)?),
        BinOp::Rem => V::Num(to_num(a)? % to_num(b)?),
        BinOp::In => {
            let key = to_key(a)?;
            V::Bool(has_property(&key, b)?)
        }
    })
}
