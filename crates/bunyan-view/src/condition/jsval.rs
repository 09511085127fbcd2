//! JavaScript values during condition evaluation and the abstract
//! operations on them (ToPrimitive, ToString, ToNumber, `==`, `===`, `<`,
//! property lookup with the built-in prototypes), as node evaluates them.
//! Where JavaScript throws, the result is `Err(Throw::Js)`; where it would
//! produce something this evaluator cannot represent exactly (a property of
//! a built-in function, half of a surrogate pair), `Err(Throw::Unsupported)`.

use super::regexp::JsRegex;
use crate::js;
use crate::value::{array_index, Value};
use std::borrow::Cow;
use std::rc::Rc;

/// Why an evaluation stopped.
#[derive(Debug)]
pub enum Throw {
    /// JavaScript would throw this (TypeError, RangeError, ...).
    Js(String),
    /// JavaScript would go on, but with something outside this language.
    Unsupported(String),
}

pub type R<T> = Result<T, Throw>;

pub fn type_error<T>(msg: impl Into<String>) -> R<T> {
    Err(Throw::Js(format!("TypeError: {}", msg.into())))
}

pub fn unsupported<T>(what: impl Into<String>) -> R<T> {
    Err(Throw::Unsupported(what.into()))
}

/// V8's longest string (UTF-16 code units).
pub const MAX_STRING_LEN: usize = (1 << 29) - 24;

/// The built-in prototypes a value can reach.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Proto {
    Object,
    Array,
    String,
    Number,
    Boolean,
    RegExp,
    Function,
}

/// A built-in object reached through a property (`this.constructor`,
/// `this.msg.trim`, `this.__proto__`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Native {
    Proto(Proto),
    Ctor(Proto),
    Method(Proto, &'static str),
}

/// An array made during evaluation (`[...]`, `split`, `match`, `slice`);
/// `exec`/`match` results also carry `index` and `input`.
#[derive(Debug)]
pub struct ArrVal<'r, 'a> {
    pub items: Vec<V<'r, 'a>>,
    pub index: Option<f64>,
    pub input: Option<String>,
    pub named_groups: bool,
}

#[derive(Clone, Debug)]
pub enum V<'r, 'a> {
    Undefined,
    Null,
    Bool(bool),
    Num(f64),
    Str(Cow<'r, str>),
    /// An object or array of the record (compared by identity).
    Json(&'r Value<'a>),
    Arr(Rc<ArrVal<'r, 'a>>),
    Regex(&'r JsRegex),
    Native(Native),
}

impl<'r, 'a> V<'r, 'a> {
    pub fn arr(items: Vec<V<'r, 'a>>) -> V<'r, 'a> {
        V::Arr(Rc::new(ArrVal { items, index: None, input: None, named_groups: false }))
    }

    pub fn is_nullish(&self) -> bool {
        matches!(self, V::Undefined | V::Null)
    }

    pub fn is_object(&self) -> bool {
        matches!(self, V::Json(_) | V::Arr(_) | V::Regex(_) | V::Native(_))
    }

    /// The items of an array value.
    pub fn array_items(&self) -> Option<Vec<V<'r, 'a>>> {
        match self {
            V::Json(Value::Array(a)) => Some(a.iter().map(from_json).collect()),
            V::Arr(a) => Some(a.items.clone()),
            _ => None,
        }
    }
}

pub fn from_json<'r, 'a>(v: &'r Value<'a>) -> V<'r, 'a> {
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
        V::Json(_) | V::Arr(_) | V::Regex(..) | V::Native(_) => true,
    }
}

pub fn type_of(v: &V) -> &'static str {
    match v {
        V::Undefined => "undefined",
        V::Bool(_) => "boolean",
        V::Num(_) => "number",
        V::Str(_) => "string",
        V::Native(Native::Ctor(_) | Native::Method(..) | Native::Proto(Proto::Function)) => "function",
        V::Null | V::Json(_) | V::Arr(_) | V::Regex(..) | V::Native(Native::Proto(_)) => "object",
    }
}

pub fn num_to_string(n: f64) -> String {
    let mut o = Vec::new();
    js::push_f64(&mut o, n);
    String::from_utf8(o).unwrap_or_default()
}

fn proto_name(p: Proto) -> &'static str {
    match p {
        Proto::Object => "Object",
        Proto::Array => "Array",
        Proto::String => "String",
        Proto::Number => "Number",
        Proto::Boolean => "Boolean",
        Proto::RegExp => "RegExp",
        Proto::Function => "Function",
    }
}

/// ToPrimitive (objects: `valueOf`, then `toString`, as the built-ins do).
pub fn to_primitive<'r, 'a>(v: &V<'r, 'a>) -> R<V<'r, 'a>> {
    Ok(match v {
        V::Json(Value::Object(o)) => {
            if o.get("toString").is_some() {
                // Own toString shadows Object.prototype's and is not callable.
                return type_error("Cannot convert object to primitive value");
            }
            V::Str(Cow::Borrowed("[object Object]"))
        }
        V::Json(Value::Array(a)) => V::Str(Cow::Owned(join(&a.iter().map(from_json).collect::<Vec<_>>(), ",")?)),
        V::Arr(a) => V::Str(Cow::Owned(join(&a.items, ",")?)),
        V::Regex(re) => V::Str(Cow::Owned(re.to_js_string())),
        V::Native(n) => match n {
            Native::Proto(Proto::Object) => V::Str(Cow::Borrowed("[object Object]")),
            Native::Proto(Proto::Array | Proto::String) => V::Str(Cow::Borrowed("")),
            Native::Proto(Proto::Number) => V::Num(0.0),
            Native::Proto(Proto::Boolean) => V::Bool(false),
            Native::Proto(Proto::RegExp) => V::Str(Cow::Borrowed("/(?:)/")),
            Native::Proto(Proto::Function) => V::Str(Cow::Borrowed("function () { [native code] }")),
            Native::Ctor(p) => V::Str(Cow::Owned(format!("function {}() {{ [native code] }}", proto_name(*p)))),
            Native::Method(_, name) => V::Str(Cow::Owned(format!("function {name}() {{ [native code] }}"))),
        },
        other => other.clone(),
    })
}

/// `Array.prototype.join`: null and undefined elements become "".
pub fn join(items: &[V], sep: &str) -> R<String> {
    let mut out = String::new();
    for (i, e) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        if !e.is_nullish() {
            out.push_str(&to_str(e)?);
        }
        check_len(&out)?;
    }
    Ok(out)
}

/// A RangeError where V8 could not build a string this long.
pub fn check_len(s: &str) -> R<()> {
    if s.len() > MAX_STRING_LEN && js::utf16_len(s) > MAX_STRING_LEN {
        return Err(Throw::Js("RangeError: Invalid string length".into()));
    }
    Ok(())
}

/// ToString.
pub fn to_str<'r>(v: &V<'r, '_>) -> R<Cow<'r, str>> {
    Ok(match v {
        V::Undefined => "undefined".into(),
        V::Null => "null".into(),
        V::Bool(b) => if *b { "true" } else { "false" }.into(),
        V::Num(n) => num_to_string(*n).into(),
        V::Str(s) => s.clone(),
        obj => match to_primitive(obj)? {
            V::Str(s) => s,
            prim => to_str(&prim)?,
        },
    })
}

/// ToNumber.
pub fn to_num(v: &V) -> R<f64> {
    Ok(match v {
        V::Undefined => f64::NAN,
        V::Null => 0.0,
        V::Bool(b) => f64::from(u8::from(*b)),
        V::Num(n) => *n,
        V::Str(s) => js::string_to_number(s),
        obj => to_num(&to_primitive(obj)?)?,
    })
}

/// ToIntegerOrInfinity.
pub fn to_integer(v: &V) -> R<f64> {
    let n = to_num(v)?;
    Ok(if n.is_nan() { 0.0 } else { n.trunc() + 0.0 })
}

pub fn strict_eq(a: &V, b: &V) -> bool {
    match (a, b) {
        (V::Undefined, V::Undefined) | (V::Null, V::Null) => true,
        (V::Bool(x), V::Bool(y)) => x == y,
        (V::Num(x), V::Num(y)) => x == y,
        (V::Str(x), V::Str(y)) => x == y,
        (V::Json(x), V::Json(y)) => std::ptr::eq(*x, *y),
        (V::Arr(x), V::Arr(y)) => Rc::ptr_eq(x, y),
        (V::Regex(x), V::Regex(y)) => std::ptr::eq(*x, *y),
        (V::Native(x), V::Native(y)) => x == y,
        _ => false,
    }
}

pub fn same_value_zero(a: &V, b: &V) -> bool {
    match (a, b) {
        (V::Num(x), V::Num(y)) if x.is_nan() && y.is_nan() => true,
        _ => strict_eq(a, b),
    }
}

/// `a == b`.
pub fn loose_eq(a: &V, b: &V) -> R<bool> {
    Ok(match (a, b) {
        (V::Undefined | V::Null, V::Undefined | V::Null) => true,
        (V::Undefined | V::Null, _) | (_, V::Undefined | V::Null) => false,
        (V::Num(_), V::Str(_)) | (V::Str(_), V::Num(_)) => to_num(a)? == to_num(b)?,
        (V::Bool(_), _) => loose_eq(&V::Num(to_num(a)?), b)?,
        (_, V::Bool(_)) => loose_eq(a, &V::Num(to_num(b)?))?,
        _ if a.is_object() && !b.is_object() => loose_eq(&to_primitive(a)?, b)?,
        _ if b.is_object() && !a.is_object() => loose_eq(a, &to_primitive(b)?)?,
        _ => strict_eq(a, b),
    })
}

/// `a < b` per IsLessThan; `None` is "undefined" (NaN involved).
pub fn less_than(a: &V, b: &V) -> R<Option<bool>> {
    let (pa, pb) = (to_primitive(a)?, to_primitive(b)?);
    if let (V::Str(x), V::Str(y)) = (&pa, &pb) {
        return Ok(Some(x.encode_utf16().lt(y.encode_utf16())));
    }
    let (x, y) = (to_num(&pa)?, to_num(&pb)?);
    Ok(if x.is_nan() || y.is_nan() { None } else { Some(x < y) })
}

/// Own property names of each built-in prototype in node 20
/// (`Object.getOwnPropertyNames(X.prototype)`; a test checks them).
pub const PROTO_NAMES: [(Proto, &[&str]); 7] = [
    (
        Proto::Object,
        &[
            "__defineGetter__",
            "__defineSetter__",
            "__lookupGetter__",
            "__lookupSetter__",
            "__proto__",
            "constructor",
            "hasOwnProperty",
            "isPrototypeOf",
            "propertyIsEnumerable",
            "toLocaleString",
            "toString",
            "valueOf",
        ],
    ),
    (
        Proto::Array,
        &[
            "at",
            "concat",
            "constructor",
            "copyWithin",
            "entries",
            "every",
            "fill",
            "filter",
            "find",
            "findIndex",
            "findLast",
            "findLastIndex",
            "flat",
            "flatMap",
            "forEach",
            "includes",
            "indexOf",
            "join",
            "keys",
            "lastIndexOf",
            "length",
            "map",
            "pop",
            "push",
            "reduce",
            "reduceRight",
            "reverse",
            "shift",
            "slice",
            "some",
            "sort",
            "splice",
            "toLocaleString",
            "toReversed",
            "toSorted",
            "toSpliced",
            "toString",
            "unshift",
            "values",
            "with",
        ],
    ),
    (
        Proto::String,
        &[
            "anchor",
            "at",
            "big",
            "blink",
            "bold",
            "charAt",
            "charCodeAt",
            "codePointAt",
            "concat",
            "constructor",
            "endsWith",
            "fixed",
            "fontcolor",
            "fontsize",
            "includes",
            "indexOf",
            "isWellFormed",
            "italics",
            "lastIndexOf",
            "length",
            "link",
            "localeCompare",
            "match",
            "matchAll",
            "normalize",
            "padEnd",
            "padStart",
            "repeat",
            "replace",
            "replaceAll",
            "search",
            "slice",
            "small",
            "split",
            "startsWith",
            "strike",
            "sub",
            "substr",
            "substring",
            "sup",
            "toLocaleLowerCase",
            "toLocaleUpperCase",
            "toLowerCase",
            "toString",
            "toUpperCase",
            "toWellFormed",
            "trim",
            "trimEnd",
            "trimLeft",
            "trimRight",
            "trimStart",
            "valueOf",
        ],
    ),
    (
        Proto::Number,
        &["constructor", "toExponential", "toFixed", "toLocaleString", "toPrecision", "toString", "valueOf"],
    ),
    (Proto::Boolean, &["constructor", "toString", "valueOf"]),
    (
        Proto::RegExp,
        &[
            "compile",
            "constructor",
            "dotAll",
            "exec",
            "flags",
            "global",
            "hasIndices",
            "ignoreCase",
            "multiline",
            "source",
            "sticky",
            "test",
            "toString",
            "unicode",
            "unicodeSets",
        ],
    ),
    (Proto::Function, &["apply", "arguments", "bind", "call", "caller", "constructor", "length", "name", "toString"]),
];

/// Own property names of the constructors in node 20
/// (`Object.getOwnPropertyNames(X)`; a test checks them).
pub const CTOR_NAMES: [(Proto, &[&str]); 7] = [
    (
        Proto::Object,
        &[
            "assign",
            "create",
            "defineProperties",
            "defineProperty",
            "entries",
            "freeze",
            "fromEntries",
            "getOwnPropertyDescriptor",
            "getOwnPropertyDescriptors",
            "getOwnPropertyNames",
            "getOwnPropertySymbols",
            "getPrototypeOf",
            "hasOwn",
            "is",
            "isExtensible",
            "isFrozen",
            "isSealed",
            "keys",
            "length",
            "name",
            "preventExtensions",
            "prototype",
            "seal",
            "setPrototypeOf",
            "values",
        ],
    ),
    (Proto::Array, &["from", "isArray", "length", "name", "of", "prototype"]),
    (Proto::String, &["fromCharCode", "fromCodePoint", "length", "name", "prototype", "raw"]),
    (
        Proto::Number,
        &[
            "EPSILON",
            "MAX_SAFE_INTEGER",
            "MAX_VALUE",
            "MIN_SAFE_INTEGER",
            "MIN_VALUE",
            "NEGATIVE_INFINITY",
            "NaN",
            "POSITIVE_INFINITY",
            "isFinite",
            "isInteger",
            "isNaN",
            "isSafeInteger",
            "length",
            "name",
            "parseFloat",
            "parseInt",
            "prototype",
        ],
    ),
    (Proto::Boolean, &["length", "name", "prototype"]),
    (
        Proto::RegExp,
        &[
            "$&",
            "$'",
            "$+",
            "$1",
            "$2",
            "$3",
            "$4",
            "$5",
            "$6",
            "$7",
            "$8",
            "$9",
            "$_",
            "$`",
            "input",
            "lastMatch",
            "lastParen",
            "leftContext",
            "length",
            "name",
            "prototype",
            "rightContext",
        ],
    ),
    (Proto::Function, &["length", "name", "prototype"]),
];

/// `length` of the built-in methods with parameters (node 20; the others
/// have 0; a test checks them).
pub const METHOD_LENGTHS: [(Proto, &str); 7] = [
    (Proto::Object, "__defineGetter__:2 __defineSetter__:2 __lookupGetter__:1 __lookupSetter__:1 hasOwnProperty:1 isPrototypeOf:1 propertyIsEnumerable:1"),
    (Proto::Array, "at:1 concat:1 copyWithin:2 every:1 fill:1 filter:1 find:1 findIndex:1 findLast:1 findLastIndex:1 flatMap:1 forEach:1 includes:1 indexOf:1 join:1 lastIndexOf:1 map:1 push:1 reduce:1 reduceRight:1 slice:2 some:1 sort:1 splice:2 toSorted:1 toSpliced:2 unshift:1 with:2"),
    (Proto::String, "anchor:1 at:1 charAt:1 charCodeAt:1 codePointAt:1 concat:1 endsWith:1 fontcolor:1 fontsize:1 includes:1 indexOf:1 lastIndexOf:1 link:1 localeCompare:1 match:1 matchAll:1 padEnd:1 padStart:1 repeat:1 replace:2 replaceAll:2 search:1 slice:2 split:2 startsWith:1 substr:2 substring:2"),
    (Proto::Number, "toExponential:1 toFixed:1 toPrecision:1 toString:1"),
    (Proto::Boolean, ""),
    (Proto::RegExp, "compile:2 exec:1 test:1"),
    (Proto::Function, "apply:2 bind:1 call:1"),
];

fn method_length(p: Proto, name: &str) -> f64 {
    METHOD_LENGTHS
        .iter()
        .find(|(q, _)| *q == p)
        .and_then(|(_, l)| l.split(' ').find_map(|e| e.strip_prefix(name)?.strip_prefix(':')))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0.0)
}

fn ctor_names(p: Proto) -> &'static [&'static str] {
    CTOR_NAMES.iter().find(|(q, _)| *q == p).map(|(_, n)| *n).unwrap_or(&[])
}

/// `Number.EPSILON`, ...
fn number_constant(k: &str) -> Option<f64> {
    Some(match k {
        "EPSILON" => f64::EPSILON,
        "MAX_SAFE_INTEGER" => 9007199254740991.0,
        "MIN_SAFE_INTEGER" => -9007199254740991.0,
        "MAX_VALUE" => f64::MAX,
        "MIN_VALUE" => 5e-324,
        "NaN" => f64::NAN,
        "NEGATIVE_INFINITY" => f64::NEG_INFINITY,
        "POSITIVE_INFINITY" => f64::INFINITY,
        _ => return None,
    })
}

/// Whether a native value is a function (the others are prototypes).
fn is_function(n: Native) -> bool {
    matches!(n, Native::Ctor(_) | Native::Method(..) | Native::Proto(Proto::Function))
}

/// Own property names of a native value, when known exactly.
pub fn native_has_own(n: Native, key: &str) -> R<bool> {
    Ok(match n {
        Native::Proto(p) => names(p).contains(&key),
        Native::Ctor(p) => ctor_names(p).contains(&key),
        Native::Method(..) => matches!(key, "length" | "name"),
    })
}

/// `n[key]` for a built-in function or prototype.
pub fn native_get<'r, 'a>(n: Native, key: &str) -> R<V<'r, 'a>> {
    if is_function(n) {
        match (n, key) {
            (_, "arguments" | "caller") => {
                return type_error("'caller', 'callee', and 'arguments' properties may not be accessed")
            }
            (Native::Method(_, name), "name") => return Ok(V::Str(Cow::Borrowed(name))),
            (Native::Ctor(p), "name") => return Ok(V::Str(Cow::Borrowed(proto_name(p)))),
            (Native::Proto(_), "name") => return Ok(V::Str(Cow::Borrowed(""))),
            (Native::Method(p, name), "length") => return Ok(V::Num(method_length(p, name))),
            (Native::Ctor(p), "length") => return Ok(V::Num(if p == Proto::RegExp { 2.0 } else { 1.0 })),
            (Native::Proto(_), "length") => return Ok(V::Num(0.0)),
            (Native::Ctor(p), "prototype") => return Ok(V::Native(Native::Proto(p))),
            (Native::Ctor(Proto::Number), k) if number_constant(k).is_some() => {
                return Ok(V::Num(number_constant(k).unwrap_or(f64::NAN)))
            }
            (Native::Ctor(p), k) if ctor_names(p).contains(&k) => {
                return unsupported("static properties of built-in constructors")
            }
            (_, "__proto__") => {
                return Ok(V::Native(Native::Proto(if n == Native::Proto(Proto::Function) {
                    Proto::Object
                } else {
                    Proto::Function
                })))
            }
            _ => {}
        }
        return Ok(inherited(Proto::Function, key));
    }
    let Native::Proto(p) = n else { return Ok(V::Undefined) };
    if p == Proto::RegExp {
        match key {
            "source" => return Ok(V::Str(Cow::Borrowed("(?:)"))),
            "flags" => return Ok(V::Str(Cow::Borrowed(""))),
            "dotAll" | "global" | "hasIndices" | "ignoreCase" | "multiline" | "sticky" | "unicode" | "unicodeSets" => {
                return Ok(V::Undefined)
            }
            _ => {}
        }
    }
    if key == "__proto__" {
        return Ok(if p == Proto::Object { V::Null } else { V::Native(Native::Proto(Proto::Object)) });
    }
    Ok(inherited(p, key))
}

fn names(p: Proto) -> &'static [&'static str] {
    PROTO_NAMES.iter().find(|(q, _)| *q == p).map(|(_, n)| *n).unwrap_or(&[])
}

/// Which prototype on the chain of a `p` value defines `key`, and the
/// static name.
pub fn proto_lookup(p: Proto, key: &str) -> Option<(Proto, &'static str)> {
    for owner in [p, Proto::Object] {
        if let Some(n) = names(owner).iter().find(|n| **n == key) {
            return Some((owner, n));
        }
    }
    None
}

/// A property inherited from the prototype of a `p` value.
fn inherited<'r, 'a>(p: Proto, key: &str) -> V<'r, 'a> {
    match proto_lookup(p, key) {
        None => V::Undefined,
        Some((_, "__proto__")) => V::Native(Native::Proto(p)),
        Some((owner, "constructor")) => V::Native(Native::Ctor(owner)),
        // Instances have their own length; the prototypes' is 0.
        Some((_, "length")) => V::Num(0.0),
        // V8 defines these two as the same functions as trimStart/trimEnd.
        Some((Proto::String, "trimLeft")) => V::Native(Native::Method(Proto::String, "trimStart")),
        Some((Proto::String, "trimRight")) => V::Native(Native::Method(Proto::String, "trimEnd")),
        Some((owner, name)) => V::Native(Native::Method(owner, name)),
    }
}

/// The prototype of a non-nullish value.
pub fn proto_of(v: &V) -> Option<Proto> {
    Some(match v {
        V::Bool(_) => Proto::Boolean,
        V::Num(_) => Proto::Number,
        V::Str(_) => Proto::String,
        V::Json(Value::Object(_)) => Proto::Object,
        V::Json(_) | V::Arr(_) => Proto::Array,
        V::Regex(_) => Proto::RegExp,
        V::Undefined | V::Null | V::Native(_) => return None,
    })
}

/// ToPropertyKey.
pub fn to_key<'r>(v: &V<'r, '_>) -> R<Cow<'r, str>> {
    match v {
        V::Str(s) => Ok(s.clone()),
        other => to_str(&to_primitive(other)?),
    }
}

/// The code units `[a, b)` of a string as a string; half of a surrogate
/// pair cannot be represented.
pub fn units(s: &str, a: usize, b: usize) -> R<String> {
    if a >= b {
        return Ok(String::new());
    }
    if s.is_ascii() {
        return Ok(s[a..b].to_owned());
    }
    let u: Vec<u16> = s.encode_utf16().collect();
    String::from_utf16(&u[a..b]).or_else(|_| unsupported("a string with half of a surrogate pair"))
}

/// `o[key]`.
pub fn get<'r, 'a>(o: &V<'r, 'a>, key: &str) -> R<V<'r, 'a>> {
    Ok(match o {
        V::Undefined | V::Null => {
            return type_error(format!(
                "Cannot read properties of {} (reading '{key}')",
                if matches!(o, V::Null) { "null" } else { "undefined" }
            ))
        }
        V::Json(Value::Object(obj)) => match obj.get(key) {
            Some(v) => from_json(v),
            None => inherited(Proto::Object, key),
        },
        V::Json(Value::Array(a)) => {
            if key == "length" {
                return Ok(V::Num(a.len() as f64));
            }
            match array_index(key) {
                Some(i) => a.get(i as usize).map_or(V::Undefined, from_json),
                None => inherited(Proto::Array, key),
            }
        }
        V::Arr(a) => {
            if key == "length" {
                return Ok(V::Num(a.items.len() as f64));
            }
            if let Some(input) = &a.input {
                match key {
                    "index" => return Ok(V::Num(a.index.unwrap_or(0.0))),
                    "input" => return Ok(V::Str(Cow::Owned(input.clone()))),
                    "groups" if a.named_groups => return unsupported("named groups"),
                    "groups" => return Ok(V::Undefined),
                    _ => {}
                }
            }
            match array_index(key) {
                Some(i) => a.items.get(i as usize).cloned().unwrap_or(V::Undefined),
                None => inherited(Proto::Array, key),
            }
        }
        V::Str(s) => {
            if key == "length" {
                return Ok(V::Num(js::utf16_len(s) as f64));
            }
            match array_index(key) {
                Some(i) if (i as usize) < js::utf16_len(s) => {
                    let i = i as usize;
                    V::Str(Cow::Owned(units(s, i, i + 1)?))
                }
                Some(_) => V::Undefined,
                None => inherited(Proto::String, key),
            }
        }
        V::Num(_) => inherited(Proto::Number, key),
        V::Bool(_) => inherited(Proto::Boolean, key),
        V::Regex(re) => {
            let flag = |c| V::Bool(re.flags.contains(c));
            match key {
                "lastIndex" => V::Num(0.0),
                "source" => V::Str(Cow::Borrowed(&re.source)),
                "flags" => V::Str(Cow::Borrowed(&re.flags)),
                "global" => flag('g'),
                "ignoreCase" => flag('i'),
                "multiline" => flag('m'),
                "dotAll" => flag('s'),
                "unicode" => flag('u'),
                "sticky" => flag('y'),
                "hasIndices" => flag('d'),
                "unicodeSets" => flag('v'),
                _ => inherited(Proto::RegExp, key),
            }
        }
        V::Native(n) => return native_get(*n, key),
        V::Json(prim) => return get(&from_json(prim), key),
    })
}

/// HasOwnProperty.
pub fn has_own(o: &V, key: &str) -> R<bool> {
    Ok(match o {
        V::Undefined | V::Null => return type_error("Cannot convert undefined or null to object"),
        V::Json(Value::Object(obj)) => obj.get(key).is_some(),
        V::Json(Value::Array(a)) => key == "length" || array_index(key).is_some_and(|i| (i as usize) < a.len()),
        V::Arr(a) => {
            key == "length"
                || array_index(key).is_some_and(|i| (i as usize) < a.items.len())
                || (a.input.is_some() && matches!(key, "index" | "input" | "groups"))
        }
        V::Str(s) => key == "length" || array_index(key).is_some_and(|i| (i as usize) < js::utf16_len(s)),
        V::Num(_) | V::Bool(_) => false,
        V::Regex(_) => key == "lastIndex",
        V::Native(n) => return native_has_own(*n, key),
        V::Json(prim) => return has_own(&from_json(prim), key),
    })
}

/// `key in o`.
pub fn has_property(key: &str, o: &V) -> R<bool> {
    if !o.is_object() {
        return type_error(format!("Cannot use 'in' operator to search for '{key}'"));
    }
    if has_own(o, key)? {
        return Ok(true);
    }
    let p = match o {
        V::Native(n) if is_function(*n) => Proto::Function,
        V::Native(Native::Proto(Proto::Object)) => return Ok(false),
        V::Native(_) => Proto::Object,
        other => proto_of(other).unwrap_or(Proto::Object),
    };
    Ok(proto_lookup(p, key).is_some())
}
