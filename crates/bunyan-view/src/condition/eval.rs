//! Evaluation of condition expressions against a record with JavaScript
//! semantics (`==` coercions, `<` on strings and numbers, truthiness,
//! string methods). Where JavaScript would throw a TypeError (a property of
//! `undefined`, an unknown method), the result is `undefined` instead.

use super::parser::{BinOp, Expr, Global, LogicOp, Stmt, UnOp};
use crate::js;
use crate::value::Value;
use std::borrow::Cow;
use std::cmp::Ordering;

/// A JavaScript value during evaluation; record parts are borrowed.
#[derive(Clone, Debug)]
pub enum JsVal<'r, 'a> {
    Undefined,
    Null,
    Bool(bool),
    Num(f64),
    Str(Cow<'r, str>),
    /// An object or array of the record (compared by identity).
    Json(&'r Value<'a>),
    /// An array made during evaluation (`match`, `split`, `[...]`).
    Arr(Vec<JsVal<'r, 'a>>),
    Regex(&'r regex::Regex, &'r str),
}

type V<'r, 'a> = JsVal<'r, 'a>;

fn from_json<'r, 'a>(v: &'r Value<'a>) -> V<'r, 'a> {
    match v {
        Value::Null => V::Null,
        Value::Bool(b) => V::Bool(*b),
        Value::Number(n) => V::Num(n.as_f64()),
        Value::String(s) => V::Str(Cow::Borrowed(s.as_ref())),
        Value::Array(_) | Value::Object(_) => V::Json(v),
    }
}

pub fn truthy(v: &V) -> bool {
    match v {
        V::Undefined | V::Null => false,
        V::Bool(b) => *b,
        V::Num(n) => *n != 0.0 && !n.is_nan(),
        V::Str(s) => !s.is_empty(),
        V::Json(_) | V::Arr(_) | V::Regex(..) => true,
    }
}

fn to_str<'r>(v: &V<'r, '_>) -> Cow<'r, str> {
    match v {
        V::Undefined => "undefined".into(),
        V::Null => "null".into(),
        V::Bool(b) => if *b { "true" } else { "false" }.into(),
        V::Num(n) => {
            let mut o = Vec::new();
            js::push_f64(&mut o, *n);
            String::from_utf8(o).unwrap_or_default().into()
        }
        V::Str(s) => s.clone(),
        V::Json(j) => js::to_string(j).into(),
        V::Arr(items) => items
            .iter()
            .map(|i| match i {
                V::Undefined | V::Null => Cow::Borrowed(""),
                other => to_str(other),
            })
            .collect::<Vec<_>>()
            .join(",")
            .into(),
        V::Regex(_, src) => Cow::Borrowed(*src),
    }
}

fn to_num(v: &V) -> f64 {
    match v {
        V::Undefined => f64::NAN,
        V::Null => 0.0,
        V::Bool(b) => f64::from(u8::from(*b)),
        V::Num(n) => *n,
        V::Str(s) => js::string_to_number(s),
        V::Json(j) => js::to_number(j),
        V::Arr(_) => js::string_to_number(&to_str(v)),
        V::Regex(..) => f64::NAN,
    }
}

fn is_object(v: &V) -> bool {
    matches!(v, V::Json(_) | V::Arr(_) | V::Regex(..))
}

/// ToPrimitive: objects become their string form.
fn to_primitive<'r, 'a>(v: &V<'r, 'a>) -> V<'r, 'a> {
    if is_object(v) {
        V::Str(to_str(v))
    } else {
        v.clone()
    }
}

fn strict_eq(a: &V, b: &V) -> bool {
    match (a, b) {
        (V::Undefined, V::Undefined) | (V::Null, V::Null) => true,
        (V::Bool(x), V::Bool(y)) => x == y,
        (V::Num(x), V::Num(y)) => x == y,
        (V::Str(x), V::Str(y)) => x == y,
        (V::Json(x), V::Json(y)) => std::ptr::eq(*x, *y),
        (V::Regex(x, _), V::Regex(y, _)) => std::ptr::eq(*x, *y),
        _ => false,
    }
}

fn loose_eq(a: &V, b: &V) -> bool {
    match (a, b) {
        (V::Undefined | V::Null, V::Undefined | V::Null) => true,
        (V::Undefined | V::Null, _) | (_, V::Undefined | V::Null) => false,
        (V::Num(_), V::Str(_)) | (V::Str(_), V::Num(_)) => to_num(a) == to_num(b),
        (V::Bool(_), _) => loose_eq(&V::Num(to_num(a)), b),
        (_, V::Bool(_)) => loose_eq(a, &V::Num(to_num(b))),
        _ if is_object(a) && !is_object(b) => loose_eq(&to_primitive(a), b),
        _ if is_object(b) && !is_object(a) => loose_eq(a, &to_primitive(b)),
        _ => strict_eq(a, b),
    }
}

/// `a < b` per the abstract relational comparison; `None` is "undefined" (NaN involved).
fn less_than(a: &V, b: &V) -> Option<bool> {
    let (pa, pb) = (to_primitive(a), to_primitive(b));
    if let (V::Str(x), V::Str(y)) = (&pa, &pb) {
        return Some(x.encode_utf16().cmp(y.encode_utf16()) == Ordering::Less);
    }
    let (x, y) = (to_num(&pa), to_num(&pb));
    if x.is_nan() || y.is_nan() {
        None
    } else {
        Some(x < y)
    }
}

fn type_of(v: &V) -> &'static str {
    match v {
        V::Undefined => "undefined",
        V::Bool(_) => "boolean",
        V::Num(_) => "number",
        V::Str(_) => "string",
        V::Null | V::Json(_) | V::Arr(_) | V::Regex(..) => "object",
    }
}

/// Index of a UTF-16 position in a string, as a byte offset (clamped).
fn byte_at(s: &str, units: usize) -> usize {
    let mut n = 0;
    for (b, c) in s.char_indices() {
        if n >= units {
            return b;
        }
        n += c.len_utf16();
    }
    s.len()
}

/// UTF-16 position of a byte offset.
fn units_at(s: &str, byte: usize) -> f64 {
    js::utf16_len(&s[..byte]) as f64
}

/// JavaScript's relative index argument (`slice(-2)`), clamped to `0..=len`.
fn rel_index(v: Option<&V>, len: usize, default: usize) -> usize {
    match v {
        None | Some(V::Undefined) => default,
        Some(v) => {
            let n = to_num(v);
            let n = if n.is_nan() { 0.0 } else { n.trunc() };
            if n < 0.0 {
                (len as f64 + n).max(0.0) as usize
            } else {
                n.min(len as f64) as usize
            }
        }
    }
}

pub struct Evaluator<'r, 'a> {
    pub this: &'r Value<'a>,
}

enum Flow<'r, 'a> {
    Next,
    Return(V<'r, 'a>),
}

impl<'r, 'a> Evaluator<'r, 'a> {
    pub fn run_body(&self, stmts: &'r [Stmt]) -> V<'r, 'a> {
        match self.stmts(stmts) {
            Flow::Return(v) => v,
            Flow::Next => V::Undefined,
        }
    }

    fn stmts(&self, stmts: &'r [Stmt]) -> Flow<'r, 'a> {
        for s in stmts {
            if let Flow::Return(v) = self.stmt(s) {
                return Flow::Return(v);
            }
        }
        Flow::Next
    }

    fn stmt(&self, s: &'r Stmt) -> Flow<'r, 'a> {
        match s {
            Stmt::Return(e) => Flow::Return(e.as_ref().map_or(V::Undefined, |e| self.eval(e))),
            Stmt::Expr(e) => {
                self.eval(e);
                Flow::Next
            }
            Stmt::If(c, t, e) => {
                if truthy(&self.eval(c)) {
                    self.stmt(t)
                } else if let Some(e) = e {
                    self.stmt(e)
                } else {
                    Flow::Next
                }
            }
            Stmt::Block(b) => self.stmts(b),
        }
    }

    pub fn eval(&self, e: &'r Expr) -> V<'r, 'a> {
        match e {
            Expr::Num(n) => V::Num(*n),
            Expr::Str(s) => V::Str(Cow::Borrowed(s)),
            Expr::Bool(b) => V::Bool(*b),
            Expr::Null => V::Null,
            Expr::Undefined => V::Undefined,
            Expr::Regex(re, src) => V::Regex(re, src),
            Expr::This => V::Json(self.this),
            Expr::Array(items) => V::Arr(items.iter().map(|i| self.eval(i)).collect()),
            Expr::Member(obj, key) => {
                let o = self.eval(obj);
                let k = self.eval(key);
                member(&o, &to_str(&k))
            }
            Expr::Method(obj, name, args) => {
                let o = self.eval(obj);
                let args: Vec<V> = args.iter().map(|a| self.eval(a)).collect();
                method(o, name, &args)
            }
            Expr::Call(g, args) => {
                let args: Vec<V> = args.iter().map(|a| self.eval(a)).collect();
                let a0 = args.first().cloned().unwrap_or(V::Undefined);
                match g {
                    Global::String => V::Str(to_str(&a0)),
                    Global::Number => V::Num(if args.is_empty() { 0.0 } else { to_num(&a0) }),
                    Global::Boolean => V::Bool(truthy(&a0)),
                    Global::ParseFloat => V::Num(parse_float(&to_str(&a0))),
                    Global::ParseInt => V::Num(parse_int(&to_str(&a0), args.get(1).map(to_num))),
                    Global::IsNaN => V::Bool(to_num(&a0).is_nan()),
                }
            }
            Expr::Unary(op, x) => {
                let v = self.eval(x);
                match op {
                    UnOp::Not => V::Bool(!truthy(&v)),
                    UnOp::Neg => V::Num(-to_num(&to_primitive(&v))),
                    UnOp::Plus => V::Num(to_num(&to_primitive(&v))),
                    UnOp::Typeof => V::Str(Cow::Borrowed(type_of(&v))),
                }
            }
            Expr::Logic(op, l, r) => {
                let lv = self.eval(l);
                match op {
                    LogicOp::And if !truthy(&lv) => lv,
                    LogicOp::Or if truthy(&lv) => lv,
                    LogicOp::Nullish if !matches!(lv, V::Undefined | V::Null) => lv,
                    _ => self.eval(r),
                }
            }
            Expr::Cond(c, a, b) => {
                if truthy(&self.eval(c)) {
                    self.eval(a)
                } else {
                    self.eval(b)
                }
            }
            Expr::Binary(op, l, r) => {
                let (a, b) = (self.eval(l), self.eval(r));
                binary(*op, &a, &b)
            }
        }
    }
}

fn binary<'r, 'a>(op: BinOp, a: &V<'r, 'a>, b: &V<'r, 'a>) -> V<'r, 'a> {
    match op {
        BinOp::StrictEq => V::Bool(strict_eq(a, b)),
        BinOp::StrictNe => V::Bool(!strict_eq(a, b)),
        BinOp::Eq => V::Bool(loose_eq(a, b)),
        BinOp::Ne => V::Bool(!loose_eq(a, b)),
        BinOp::Lt => V::Bool(less_than(a, b) == Some(true)),
        BinOp::Gt => V::Bool(less_than(b, a) == Some(true)),
        BinOp::Le => V::Bool(less_than(b, a) == Some(false)),
        BinOp::Ge => V::Bool(less_than(a, b) == Some(false)),
        BinOp::Add => {
            let (pa, pb) = (to_primitive(a), to_primitive(b));
            if matches!(pa, V::Str(_)) || matches!(pb, V::Str(_)) {
                V::Str(Cow::Owned(format!("{}{}", to_str(&pa), to_str(&pb))))
            } else {
                V::Num(to_num(&pa) + to_num(&pb))
            }
        }
        BinOp::Sub => V::Num(to_num(a) - to_num(b)),
        BinOp::Mul => V::Num(to_num(a) * to_num(b)),
        BinOp::Div => V::Num(to_num(a) / to_num(b)),
        BinOp::Rem => V::Num(to_num(a) % to_num(b)),
        BinOp::In => {
            let key = to_str(a);
            V::Bool(!matches!(member(b, &key), V::Undefined) || has_own(b, &key))
        }
    }
}

fn has_own(v: &V, key: &str) -> bool {
    match v {
        V::Json(Value::Object(o)) => o.get(key).is_some(),
        V::Json(Value::Array(a)) => {
            key == "length"
                || crate::value::array_index(key).is_some_and(|i| (i as usize) < a.len())
        }
        _ => false,
    }
}

/// `obj[key]`.
fn member<'r, 'a>(o: &V<'r, 'a>, key: &str) -> V<'r, 'a> {
    match o {
        V::Json(Value::Object(obj)) => obj.get(key).map_or(V::Undefined, from_json),
        V::Json(Value::Array(a)) => {
            if key == "length" {
                return V::Num(a.len() as f64);
            }
            crate::value::array_index(key)
                .and_then(|i| a.get(i as usize))
                .map_or(V::Undefined, from_json)
        }
        V::Arr(items) => {
            if key == "length" {
                return V::Num(items.len() as f64);
            }
            crate::value::array_index(key)
                .and_then(|i| items.get(i as usize))
                .cloned()
                .unwrap_or(V::Undefined)
        }
        V::Str(s) => {
            if key == "length" {
                return V::Num(js::utf16_len(s) as f64);
            }
            match crate::value::array_index(key) {
                Some(i) => char_at(s, i as usize),
                None => V::Undefined,
            }
        }
        V::Regex(_, src) if key == "source" => {
            let inner = &src[1..src.rfind('/').unwrap_or(1)];
            V::Str(Cow::Owned(inner.to_owned()))
        }
        _ => V::Undefined,
    }
}

fn char_at<'r, 'a>(s: &str, i: usize) -> V<'r, 'a> {
    let b = byte_at(s, i);
    match s[b..].chars().next() {
        Some(c) if units_at(s, b) as usize == i => V::Str(Cow::Owned(c.to_string())),
        _ => V::Undefined,
    }
}

fn regex_of<'r>(v: &V<'r, '_>) -> Option<Cow<'r, regex::Regex>> {
    match v {
        V::Regex(re, _) => Some(Cow::Borrowed(*re)),
        other => regex::Regex::new(&regex::escape(&to_str(other)))
            .ok()
            .map(Cow::Owned),
    }
}

/// `obj.name(args)`.
fn method<'r, 'a>(o: V<'r, 'a>, name: &str, args: &[V<'r, 'a>]) -> V<'r, 'a> {
    let arg = |i: usize| args.get(i).cloned().unwrap_or(V::Undefined);
    if name == "toString" && !matches!(o, V::Undefined | V::Null) {
        return V::Str(to_str(&o));
    }
    if name == "hasOwnProperty" {
        return V::Bool(has_own(&o, &to_str(&arg(0))));
    }
    match &o {
        V::Str(s) => string_method(s, name, args),
        V::Json(Value::Array(_)) | V::Arr(_) => {
            let items: Vec<V> = match &o {
                V::Json(Value::Array(a)) => a.iter().map(from_json).collect(),
                V::Arr(a) => a.clone(),
                _ => Vec::new(),
            };
            match name {
                "includes" => V::Bool(items.iter().any(|i| same_value_zero(i, &arg(0)))),
                "indexOf" => V::Num(
                    items
                        .iter()
                        .position(|i| strict_eq(i, &arg(0)))
                        .map_or(-1.0, |p| p as f64),
                ),
                "join" => {
                    let sep = match arg(0) {
                        V::Undefined => Cow::Borrowed(","),
                        s => to_str(&s),
                    };
                    let parts: Vec<Cow<str>> = items
                        .iter()
                        .map(|i| {
                            if matches!(i, V::Undefined | V::Null) {
                                Cow::Borrowed("")
                            } else {
                                to_str(i)
                            }
                        })
                        .collect();
                    V::Str(Cow::Owned(parts.join(&sep)))
                }
                _ => V::Undefined,
            }
        }
        V::Regex(re, _) => match name {
            "test" => V::Bool(re.is_match(&to_str(&arg(0)))),
            "exec" => match_result(re, &to_str(&arg(0))),
            _ => V::Undefined,
        },
        V::Num(n) => match name {
            "toFixed" => {
                let d = to_num(&arg(0));
                let d = if d.is_nan() {
                    0
                } else {
                    d.clamp(0.0, 100.0) as usize
                };
                V::Str(Cow::Owned(format!("{n:.d$}")))
            }
            _ => V::Undefined,
        },
        _ => V::Undefined,
    }
}

fn same_value_zero(a: &V, b: &V) -> bool {
    match (a, b) {
        (V::Num(x), V::Num(y)) if x.is_nan() && y.is_nan() => true,
        _ => strict_eq(a, b),
    }
}

fn match_result<'r, 'a>(re: &regex::Regex, s: &str) -> V<'r, 'a> {
    match re.captures(s) {
        None => V::Null,
        Some(c) => V::Arr(
            c.iter()
                .map(|m| m.map_or(V::Undefined, |m| V::Str(Cow::Owned(m.as_str().to_owned()))))
                .collect(),
        ),
    }
}

fn string_method<'r, 'a>(s: &Cow<'r, str>, name: &str, args: &[V<'r, 'a>]) -> V<'r, 'a> {
    let arg = |i: usize| args.get(i).cloned().unwrap_or(V::Undefined);
    let len = js::utf16_len(s);
    let owned = |x: String| V::Str(Cow::Owned(x));
    match name {
        "indexOf" | "includes" => {
            let needle = to_str(&arg(0));
            let from = byte_at(s, rel_index(args.get(1), len, 0).min(len));
            let found = s[from..]
                .find(needle.as_ref())
                .map(|p| units_at(s, from + p));
            if name == "includes" {
                V::Bool(found.is_some())
            } else {
                V::Num(found.unwrap_or(-1.0))
            }
        }
        "lastIndexOf" => V::Num(
            s.rfind(to_str(&arg(0)).as_ref())
                .map_or(-1.0, |p| units_at(s, p)),
        ),
        "startsWith" => V::Bool(
            s[byte_at(s, rel_index(args.get(1), len, 0))..].starts_with(to_str(&arg(0)).as_ref()),
        ),
        "endsWith" => V::Bool(
            s[..byte_at(s, rel_index(args.get(1), len, len))].ends_with(to_str(&arg(0)).as_ref()),
        ),
        "toLowerCase" | "toLocaleLowerCase" => owned(s.to_lowercase()),
        "toUpperCase" | "toLocaleUpperCase" => owned(s.to_uppercase()),
        "trim" => owned(s.trim_matches(js::is_js_whitespace).to_owned()),
        "trimStart" | "trimLeft" => owned(s.trim_start_matches(js::is_js_whitespace).to_owned()),
        "trimEnd" | "trimRight" => owned(s.trim_end_matches(js::is_js_whitespace).to_owned()),
        "slice" | "substring" => {
            let (mut a, mut b) = if name == "slice" {
                (
                    rel_index(args.first(), len, 0),
                    rel_index(args.get(1), len, len),
                )
            } else {
                let clamp = |v: Option<&V>, d: usize| match v {
                    None | Some(V::Undefined) => d,
                    Some(v) => {
                        let n = to_num(v);
                        if n.is_nan() {
                            0
                        } else {
                            n.clamp(0.0, len as f64) as usize
                        }
                    }
                };
                (clamp(args.first(), 0), clamp(args.get(1), len))
            };
            if name == "substring" && a > b {
                std::mem::swap(&mut a, &mut b);
            }
            if a >= b {
                return owned(String::new());
            }
            owned(s[byte_at(s, a)..byte_at(s, b)].to_owned())
        }
        "substr" => {
            let a = rel_index(args.first(), len, 0);
            let n = match args.get(1) {
                None | Some(V::Undefined) => len,
                Some(v) => to_num(v).max(0.0).min(len as f64) as usize,
            };
            let b = (a + n).min(len);
            owned(s[byte_at(s, a)..byte_at(s, b)].to_owned())
        }
        "charAt" => match char_at(s, to_num(&arg(0)).max(0.0) as usize) {
            V::Undefined => owned(String::new()),
            c => c,
        },
        "match" => match regex_of(&arg(0)) {
            Some(re) => match_result(&re, s),
            None => V::Null,
        },
        "search" => match regex_of(&arg(0)) {
            Some(re) => V::Num(re.find(s).map_or(-1.0, |m| units_at(s, m.start()))),
            None => V::Num(-1.0),
        },
        "split" => match arg(0) {
            V::Undefined => V::Arr(vec![V::Str(Cow::Owned(s.to_string()))]),
            sep => {
                let sep = to_str(&sep);
                if sep.is_empty() {
                    V::Arr(
                        s.chars()
                            .map(|c| V::Str(Cow::Owned(c.to_string())))
                            .collect(),
                    )
                } else {
                    V::Arr(
                        s.split(sep.as_ref())
                            .map(|p| V::Str(Cow::Owned(p.to_owned())))
                            .collect(),
                    )
                }
            }
        },
        "concat" => owned(args.iter().fold(s.to_string(), |acc, a| acc + &to_str(a))),
        "localeCompare" => V::Num(match s.as_ref().cmp(to_str(&arg(0)).as_ref()) {
            Ordering::Less => -1.0,
            Ordering::Equal => 0.0,
            Ordering::Greater => 1.0,
        }),
        _ => V::Undefined,
    }
}

fn parse_float(s: &str) -> f64 {
    let t = s.trim_start_matches(js::is_js_whitespace);
    let b = t.as_bytes();
    // Longest prefix that is a decimal literal (or Infinity).
    for prefix in ["Infinity", "+Infinity", "-Infinity"] {
        if t.starts_with(prefix) {
            return js::string_to_number(prefix);
        }
    }
    let mut best = f64::NAN;
    for end in 1..=b.len() {
        if !t.is_char_boundary(end) {
            continue;
        }
        let p = &t[..end];
        if p.ends_with(|c: char| c.is_whitespace()) || p.contains(['x', 'X', 'o', 'O', 'b', 'B']) {
            break;
        }
        let n = js::string_to_number(p);
        if !n.is_nan() {
            best = n;
        } else if !p.ends_with(['e', 'E', '+', '-', '.']) {
            break;
        }
    }
    best
}

fn parse_int(s: &str, radix: Option<f64>) -> f64 {
    let t = s.trim_start_matches(js::is_js_whitespace);
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let mut r = radix
        .filter(|r| !r.is_nan() && *r != 0.0)
        .map_or(10, |r| r as u32);
    let mut t = t;
    if (radix.is_none() || r == 16) && (t.starts_with("0x") || t.starts_with("0X")) {
        t = &t[2..];
        r = 16;
    }
    if !(2..=36).contains(&r) {
        return f64::NAN;
    }
    let mut acc = f64::NAN;
    for c in t.chars() {
        match c.to_digit(r) {
            Some(d) => acc = if acc.is_nan() { 0.0 } else { acc } * f64::from(r) + f64::from(d),
            None => break,
        }
    }
    if neg {
        -acc
    } else {
        acc
    }
}
