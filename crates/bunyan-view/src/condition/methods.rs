//! The methods a condition may call ([`super::parser::METHODS`]) and the
//! global functions (`String`, `Number`, `Boolean`, `parseInt`,
//! `parseFloat`, `isNaN`), each following its ECMAScript definition for
//! every kind of receiver JavaScript defines it on; on any other receiver
//! the call is a TypeError, as in node ("x.y is not a function").

use super::jsval::*;
use super::parser::Global;
use super::regexp::{utf16, JsRegex};
use crate::js;
use crate::value::Value;
use std::borrow::Cow;
use std::rc::Rc;

type Args<'x, 'r, 'a> = &'x [V<'r, 'a>];

fn arg<'r, 'a>(args: Args<'_, 'r, 'a>, i: usize) -> V<'r, 'a> {
    args.get(i).cloned().unwrap_or(V::Undefined)
}

fn owned<'r, 'a>(s: String) -> R<V<'r, 'a>> {
    check_len(&s)?;
    Ok(V::Str(Cow::Owned(s)))
}

/// A relative start/end argument (`slice(-2)`), clamped to `0..=len`.
fn relative(v: &V, len: usize, default: usize) -> R<usize> {
    if matches!(v, V::Undefined) {
        return Ok(default);
    }
    let n = to_integer(v)?;
    Ok(if n < 0.0 { (len as f64 + n).max(0.0) as usize } else { n.min(len as f64) as usize })
}

fn clamp(n: f64, len: usize) -> usize {
    n.max(0.0).min(len as f64) as usize
}

/// `receiver.name(...args)`.
pub fn call<'r, 'a>(o: V<'r, 'a>, name: &str, args: Args<'_, 'r, 'a>) -> R<V<'r, 'a>> {
    let not_a_function = || type_error(format!("{name} is not a function"));
    // An own property of a record object shadows the prototype's method
    // (and is never a function).
    if let V::Json(Value::Object(obj)) = &o {
        if obj.get(name).is_some() {
            return not_a_function();
        }
    }
    if let V::Native(n) = o {
        return call_native(n, name, args);
    }
    let Some(proto) = proto_of(&o) else {
        return type_error(format!("Cannot read properties of {} (reading '{name}')", to_str(&o)?));
    };
    let Some((owner, _)) = proto_lookup(proto, name) else {
        return not_a_function();
    };
    match (owner, name) {
        (Proto::Object, "hasOwnProperty") => {
            let key = to_key(&arg(args, 0))?;
            Ok(V::Bool(has_own(&o, &key)?))
        }
        (_, "toString") => match &o {
            V::Num(n) => number_to_string(*n, &arg(args, 0)),
            V::Json(Value::Object(_)) => Ok(V::Str(Cow::Borrowed("[object Object]"))),
            other => Ok(V::Str(to_str(other)?)),
        },
        (Proto::String, _) => {
            let V::Str(s) = &o else { return not_a_function() };
            string_method(s, name, args)
        }
        (Proto::Array, _) => array_method(o.array_items().unwrap_or_default(), name, args),
        (Proto::RegExp, "test" | "exec") => {
            let V::Regex(re) = o else { return not_a_function() };
            let s = to_str(&arg(args, 0))?;
            let found = exec(re, &s)?;
            Ok(if name == "test" { V::Bool(!found.is_nullish()) } else { found })
        }
        (Proto::Number, "toFixed") => {
            let V::Num(n) = o else { return not_a_function() };
            to_fixed(n, &arg(args, 0))
        }
        // Defined in JavaScript, but not callable from a condition (the
        // parser refuses the name).
        _ => unsupported(format!("'.{name}()'")),
    }
}

/// A method of a built-in function or prototype. The prototypes of
/// String, Array, Number and Boolean are themselves "", [], 0 and false.
fn call_native<'r, 'a>(n: Native, name: &str, args: Args<'_, 'r, 'a>) -> R<V<'r, 'a>> {
    if name == "hasOwnProperty" {
        let key = to_key(&arg(args, 0))?;
        return Ok(V::Bool(native_has_own(n, &key)?));
    }
    match n {
        Native::Proto(Proto::String) => call(V::Str(Cow::Borrowed("")), name, args),
        Native::Proto(Proto::Array) => call(V::arr(Vec::new()), name, args),
        Native::Proto(Proto::Number) => call(V::Num(0.0), name, args),
        Native::Proto(Proto::Boolean) => call(V::Bool(false), name, args),
        // RegExp.prototype is not a RegExp (test/exec throw); Object.prototype
        // and functions have only toString among the callable methods.
        other if name == "toString" => Ok(V::Str(to_str(&V::Native(other))?)),
        _ => type_error(format!("{name} is not a function")),
    }
}

/// `Number.prototype.toString(radix)`.
fn number_to_string<'r, 'a>(n: f64, radix: &V) -> R<V<'r, 'a>> {
    let r = if matches!(radix, V::Undefined) { 10.0 } else { to_integer(radix)? };
    if !(2.0..=36.0).contains(&r) {
        return Err(Throw::Js("RangeError: toString() radix must be between 2 and 36".into()));
    }
    if r == 10.0 || !n.is_finite() {
        return Ok(V::Str(Cow::Owned(num_to_string(n))));
    }
    Ok(V::Str(Cow::Owned(double_to_radix(n, r as u32))))
}

/// V8's DoubleToRadixCString: fraction digits up to the double's
/// precision, rounded to even; unrepresented integer digits are 0.
fn double_to_radix(value: f64, radix: u32) -> String {
    let digit_char = |d: u32| std::char::from_digit(d, radix).unwrap_or('?');
    let next_double = |x: f64| f64::from_bits(x.to_bits() + 1);
    let negative = value < 0.0;
    let value = value.abs();
    let rf = f64::from(radix);
    let mut integer = value.floor();
    let mut fraction = value - integer;
    let mut delta = (0.5 * (next_double(value) - value)).max(next_double(0.0));
    let mut frac_digits: Vec<u32> = Vec::new();
    if fraction >= delta {
        loop {
            fraction *= rf;
            delta *= rf;
            let digit = fraction as u32;
            frac_digits.push(digit);
            fraction -= f64::from(digit);
            if (fraction > 0.5 || (fraction == 0.5 && digit & 1 == 1)) && fraction + delta > 1.0 {
                // Round up, carrying into earlier digits (or the integer part).
                loop {
                    match frac_digits.pop() {
                        None => {
                            integer += 1.0;
                            break;
                        }
                        Some(d) if d + 1 < radix => {
                            frac_digits.push(d + 1);
                            break;
                        }
                        Some(_) => {}
                    }
                }
                break;
            }
            if fraction < delta {
                break;
            }
        }
    }
    // Integer digits; those below the double's precision are written as 0.
    let exponent = |x: f64| ((x.to_bits() >> 52) & 0x7ff) as i64 - 1075;
    let mut int_digits = Vec::new();
    while exponent(integer / rf) > 0 {
        integer /= rf;
        int_digits.push('0');
    }
    loop {
        let rem = integer % rf;
        int_digits.push(digit_char(rem as u32));
        integer = (integer - rem) / rf;
        if integer <= 0.0 {
            break;
        }
    }
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    out.extend(int_digits.iter().rev());
    // A carry that removed every fraction digit removes the '.' too.
    if !frac_digits.is_empty() {
        out.push('.');
        out.extend(frac_digits.iter().map(|d| digit_char(*d)));
    }
    out
}

/// `Number.prototype.toFixed`: exact decimal rounding, ties away from zero.
fn to_fixed<'r, 'a>(x: f64, digits: &V) -> R<V<'r, 'a>> {
    let f = to_integer(digits)?;
    if !(0.0..=100.0).contains(&f) {
        return Err(Throw::Js("RangeError: toFixed() digits argument must be between 0 and 100".into()));
    }
    if !x.is_finite() || x.abs() >= 1e21 {
        return Ok(V::Str(Cow::Owned(num_to_string(x))));
    }
    let f = f as usize;
    // The exact decimal expansion of the double (at most 1074 fraction digits).
    let exact = format!("{:.1100}", x.abs());
    let (int, frac) = exact.split_once('.').unwrap_or((&exact, ""));
    let mut digits: Vec<u8> = int.bytes().chain(frac.bytes().take(f)).map(|b| b - b'0').collect();
    if frac.as_bytes().get(f).is_some_and(|d| *d >= b'5') {
        // Round half up (the larger n when two are as close).
        let mut i = digits.len();
        loop {
            if i == 0 {
                digits.insert(0, 1);
                break;
            }
            i -= 1;
            if digits[i] == 9 {
                digits[i] = 0;
            } else {
                digits[i] += 1;
                break;
            }
        }
    }
    let int_len = digits.len() - f;
    let mut s = String::new();
    if x < 0.0 {
        s.push('-');
    }
    for (i, d) in digits.iter().enumerate() {
        if i == int_len {
            s.push('.');
        }
        s.push((b'0' + d) as char);
    }
    Ok(V::Str(Cow::Owned(s)))
}

/// RegExpBuiltinExec on a fresh regex (lastIndex 0): the match array
/// (with `index` and `input`) or null.
pub fn exec<'r, 'a>(re: &JsRegex, s: &str) -> R<V<'r, 'a>> {
    let text = utf16(s);
    let Some(m) = re.find(&text, 0) else { return Ok(V::Null) };
    let part = |a: usize, b: usize| -> R<V<'r, 'a>> {
        Ok(V::Str(Cow::Owned(
            String::from_utf16(&text[a..b]).or_else(|_| unsupported("a match that splits a surrogate pair"))?,
        )))
    };
    let mut items = vec![part(m.start, m.end)?];
    for g in &m.groups {
        items.push(match g {
            Some((a, b)) => part(*a, *b)?,
            None => V::Undefined,
        });
    }
    Ok(V::Arr(Rc::new(ArrVal { items, index: Some(m.start as f64), input: Some(s.to_owned()), named_groups: m.named })))
}

/// `new RegExp(pattern)` for `match`/`search` given a non-regex.
fn regexp_create(pattern: &V) -> R<JsRegex> {
    let src = if matches!(pattern, V::Undefined) { Cow::Borrowed("") } else { to_str(pattern)? };
    JsRegex::new(&src, "").map_err(|e| Throw::Js(format!("SyntaxError: {e}")))
}

/// Index (UTF-16) of the first occurrence of `needle` at or after `from`.
fn index_of(s: &str, needle: &str, from: usize) -> Option<usize> {
    let len = js::utf16_len(s);
    if from > len {
        return if needle.is_empty() { Some(len) } else { None };
    }
    if needle.is_empty() {
        return Some(from);
    }
    let b = byte_at(s, from);
    s[b..].find(needle).map(|p| js::utf16_len(&s[..b + p]))
}

/// Byte offset of the first character at or after UTF-16 position `units`.
fn byte_at(s: &str, units: usize) -> usize {
    if s.is_ascii() {
        return units.min(s.len());
    }
    let mut n = 0;
    for (b, c) in s.char_indices() {
        if n >= units {
            return b;
        }
        n += c.len_utf16();
    }
    s.len()
}

fn is_regex(v: &V) -> bool {
    matches!(v, V::Regex(_))
}

fn string_method<'r, 'a>(s: &Cow<'r, str>, name: &str, args: Args<'_, 'r, 'a>) -> R<V<'r, 'a>> {
    let len = js::utf16_len(s);
    let a0 = arg(args, 0);
    let a1 = arg(args, 1);
    match name {
        "indexOf" => {
            let needle = to_str(&a0)?;
            let from = clamp(to_integer(&a1)?, len);
            Ok(V::Num(index_of(s, &needle, from).map_or(-1.0, |i| i as f64)))
        }
        "includes" | "startsWith" | "endsWith" => {
            if is_regex(&a0) {
                return type_error(format!(
                    "First argument to String.prototype.{name} must not be a regular expression"
                ));
            }
            let needle = to_str(&a0)?;
            let n16: Vec<u16> = needle.encode_utf16().collect();
            let s16: Vec<u16> = s.encode_utf16().collect();
            Ok(V::Bool(match name {
                "includes" => index_of(s, &needle, clamp(to_integer(&a1)?, len)).is_some(),
                "startsWith" => {
                    let start = clamp(to_integer(&a1)?, len);
                    s16[start..].starts_with(&n16)
                }
                _ => {
                    let end = if matches!(a1, V::Undefined) { len } else { clamp(to_integer(&a1)?, len) };
                    s16[..end].ends_with(&n16)
                }
            }))
        }
        "lastIndexOf" => {
            let needle = to_str(&a0)?;
            let n = to_num(&a1)?;
            let pos = if n.is_nan() { f64::INFINITY } else { n.trunc() };
            let start = clamp(pos, len);
            let n16: Vec<u16> = needle.encode_utf16().collect();
            let s16: Vec<u16> = s.encode_utf16().collect();
            let found = (0..=start.min(len.saturating_sub(n16.len())))
                .rev()
                .find(|&i| n16.len() <= len && s16[i..].starts_with(&n16));
            Ok(V::Num(found.map_or(-1.0, |i| i as f64)))
        }
        "slice" => {
            let a = relative(&a0, len, 0)?;
            let b = relative(&a1, len, len)?;
            owned(units(s, a, b)?)
        }
        "substring" => {
            let a = clamp(to_integer(&a0)?, len);
            let b = if matches!(a1, V::Undefined) { len } else { clamp(to_integer(&a1)?, len) };
            owned(units(s, a.min(b), a.max(b))?)
        }
        "substr" => {
            let a = relative(&a0, len, 0)?;
            let n = if matches!(a1, V::Undefined) { len as f64 } else { to_integer(&a1)? };
            let b = (a as f64 + n.max(0.0)).min(len as f64) as usize;
            owned(units(s, a, b.max(a))?)
        }
        "charAt" | "charCodeAt" | "at" => {
            let mut i = to_integer(&a0)?;
            if name == "at" && i < 0.0 {
                i += len as f64;
            }
            if i < 0.0 || i >= len as f64 {
                return Ok(match name {
                    "charAt" => V::Str(Cow::Borrowed("")),
                    "charCodeAt" => V::Num(f64::NAN),
                    _ => V::Undefined,
                });
            }
            let i = i as usize;
            if name == "charCodeAt" {
                return Ok(V::Num(f64::from(s.encode_utf16().nth(i).unwrap_or(0))));
            }
            owned(units(s, i, i + 1)?)
        }
        "concat" => {
            let mut out = s.to_string();
            for a in args {
                out.push_str(&to_str(a)?);
                check_len(&out)?;
            }
            owned(out)
        }
        "toLowerCase" => owned(s.to_lowercase()),
        "toUpperCase" => owned(s.to_uppercase()),
        "trim" => owned(s.trim_matches(js::is_js_whitespace).to_owned()),
        "trimStart" | "trimLeft" => owned(s.trim_start_matches(js::is_js_whitespace).to_owned()),
        "trimEnd" | "trimRight" => owned(s.trim_end_matches(js::is_js_whitespace).to_owned()),
        "padStart" | "padEnd" => {
            let max = to_integer(&a0)?.min(9007199254740991.0);
            if max <= len as f64 {
                return Ok(V::Str(s.clone()));
            }
            let fill = if matches!(a1, V::Undefined) { Cow::Borrowed(" ") } else { to_str(&a1)? };
            if fill.is_empty() {
                return Ok(V::Str(s.clone()));
            }
            if max > MAX_STRING_LEN as f64 {
                return Err(Throw::Js("RangeError: Invalid string length".into()));
            }
            let need = max as usize - len;
            let f16: Vec<u16> = fill.encode_utf16().collect();
            let pad16: Vec<u16> = f16.iter().copied().cycle().take(need).collect();
            let pad = String::from_utf16(&pad16).or_else(|_| unsupported("padding that splits a surrogate pair"))?;
            owned(if name == "padStart" { pad + s } else { s.to_string() + &pad })
        }
        "repeat" => {
            let n = to_integer(&a0)?;
            if n < 0.0 || n.is_infinite() {
                return Err(Throw::Js(format!("RangeError: Invalid count value: {}", num_to_string(n))));
            }
            if s.is_empty() || n == 0.0 {
                return Ok(V::Str(Cow::Borrowed("")));
            }
            if len as f64 * n > MAX_STRING_LEN as f64 {
                return Err(Throw::Js("RangeError: Invalid string length".into()));
            }
            owned(s.repeat(n as usize))
        }
        "split" => {
            if let V::Regex(re) = &a0 {
                let lim = if matches!(a1, V::Undefined) { u32::MAX as usize } else { to_uint32(to_num(&a1)?) as usize };
                return regex_split(re, s, lim);
            }
            let lim = if matches!(a1, V::Undefined) { u32::MAX as usize } else { to_uint32(to_num(&a1)?) as usize };
            let sep = to_str(&a0)?;
            if lim == 0 {
                return Ok(V::arr(Vec::new()));
            }
            if matches!(a0, V::Undefined) {
                return Ok(V::arr(vec![V::Str(s.clone())]));
            }
            let parts: Vec<V> = if sep.is_empty() {
                let mut parts = Vec::new();
                for u in s.encode_utf16().take(lim) {
                    let c =
                        String::from_utf16(&[u]).or_else(|_| unsupported("a string with half of a surrogate pair"))?;
                    parts.push(V::Str(Cow::Owned(c)));
                }
                parts
            } else {
                s.split(sep.as_ref()).take(lim).map(|p| V::Str(Cow::Owned(p.to_owned()))).collect()
            };
            Ok(V::arr(parts))
        }
        "match" => {
            let re_owned;
            let re = match &a0 {
                V::Regex(re) => *re,
                other => {
                    re_owned = regexp_create(other)?;
                    &re_owned
                }
            };
            if !re.global {
                return exec(re, s);
            }
            let text = utf16(s);
            let mut found = Vec::new();
            let mut at = 0;
            while let Some(m) = re.find(&text, at) {
                found.push(V::Str(Cow::Owned(
                    String::from_utf16(&text[m.start..m.end])
                        .or_else(|_| unsupported("a match that splits a surrogate pair"))?,
                )));
                at = if m.end == m.start { advance(&text, m.end, re.flags.contains('u')) } else { m.end };
            }
            Ok(if found.is_empty() { V::Null } else { V::arr(found) })
        }
        "search" => {
            let re_owned;
            let re = match &a0 {
                V::Regex(re) => *re,
                other => {
                    re_owned = regexp_create(other)?;
                    &re_owned
                }
            };
            Ok(V::Num(re.find(&utf16(s), 0).map_or(-1.0, |m| m.start as f64)))
        }
        _ => type_error(format!("{name} is not a function")),
    }
}

/// `RegExp.prototype[Symbol.split]`: sticky matches at each position, with
/// captures spliced in.
fn regex_split<'r, 'a>(re: &JsRegex, s: &str, lim: usize) -> R<V<'r, 'a>> {
    let text = utf16(s);
    let unicode = re.flags.contains('u');
    let piece = |a: usize, b: usize| -> R<V<'r, 'a>> {
        Ok(V::Str(Cow::Owned(
            String::from_utf16(&text[a..b]).or_else(|_| unsupported("a string with half of a surrogate pair"))?,
        )))
    };
    let mut out = Vec::new();
    if lim == 0 {
        return Ok(V::arr(out));
    }
    let size = text.len();
    if size == 0 {
        if re.find(&text, 0).is_some_and(|m| m.start == 0) {
            return Ok(V::arr(out));
        }
        return Ok(V::arr(vec![V::Str(Cow::Owned(s.to_owned()))]));
    }
    let (mut p, mut q) = (0, 0);
    while q < size {
        // A sticky match at q exists exactly when the leftmost match from q starts there.
        let Some(m) = re.find(&text, q) else { break };
        if m.start != q {
            q = m.start;
            continue;
        }
        let e = m.end.min(size);
        if e == p {
            q = advance(&text, q, unicode);
            continue;
        }
        out.push(piece(p, q)?);
        if out.len() == lim {
            return Ok(V::arr(out));
        }
        p = e;
        for g in &m.groups {
            out.push(match g {
                Some((a, b)) => piece(*a, *b)?,
                None => V::Undefined,
            });
            if out.len() == lim {
                return Ok(V::arr(out));
            }
        }
        q = p;
    }
    out.push(piece(p, size)?);
    Ok(V::arr(out))
}

/// AdvanceStringIndex.
fn advance(text: &[u16], i: usize, unicode: bool) -> usize {
    if unicode && i + 1 < text.len() && (0xd800..0xdc00).contains(&text[i]) && (0xdc00..0xe000).contains(&text[i + 1]) {
        i + 2
    } else {
        i + 1
    }
}

fn to_uint32(n: f64) -> u32 {
    if !n.is_finite() {
        return 0;
    }
    n.trunc().rem_euclid(4294967296.0) as u32
}

fn to_int32(n: f64) -> i32 {
    to_uint32(n) as i32
}

fn array_method<'r, 'a>(items: Vec<V<'r, 'a>>, name: &str, args: Args<'_, 'r, 'a>) -> R<V<'r, 'a>> {
    let len = items.len();
    let a0 = arg(args, 0);
    let a1 = arg(args, 1);
    match name {
        "join" => {
            let sep = if matches!(a0, V::Undefined) { Cow::Borrowed(",") } else { to_str(&a0)? };
            owned(join(&items, &sep)?)
        }
        "includes" | "indexOf" => {
            let from = relative(&a1, len, 0)?;
            let pos = items.iter().skip(from).position(|i| {
                if name == "includes" {
                    same_value_zero(i, &a0)
                } else {
                    strict_eq(i, &a0)
                }
            });
            Ok(if name == "includes" {
                V::Bool(pos.is_some())
            } else {
                V::Num(pos.map_or(-1.0, |p| (p + from) as f64))
            })
        }
        "lastIndexOf" => {
            if len == 0 {
                return Ok(V::Num(-1.0));
            }
            let from = if args.len() < 2 { len as f64 - 1.0 } else { to_integer(&a1)? };
            let from = if from < 0.0 { len as f64 + from } else { from.min(len as f64 - 1.0) };
            if from < 0.0 {
                return Ok(V::Num(-1.0));
            }
            let pos = (0..=from as usize).rev().find(|&i| strict_eq(&items[i], &a0));
            Ok(V::Num(pos.map_or(-1.0, |p| p as f64)))
        }
        "slice" => {
            let a = relative(&a0, len, 0)?;
            let b = relative(&a1, len, len)?;
            Ok(V::arr(if a < b { items[a..b].to_vec() } else { Vec::new() }))
        }
        "concat" => {
            let mut out = items;
            for a in args {
                match a.array_items() {
                    Some(more) => out.extend(more),
                    None => out.push(a.clone()),
                }
            }
            Ok(V::arr(out))
        }
        "at" => {
            let mut i = to_integer(&a0)?;
            if i < 0.0 {
                i += len as f64;
            }
            Ok(if i < 0.0 || i >= len as f64 { V::Undefined } else { items[i as usize].clone() })
        }
        _ => type_error(format!("{name} is not a function")),
    }
}

/// `String(x)`, `Number(x)`, ... .
pub fn call_global<'r, 'a>(g: Global, args: Args<'_, 'r, 'a>) -> R<V<'r, 'a>> {
    let a0 = arg(args, 0);
    Ok(match g {
        Global::String => {
            if args.is_empty() {
                V::Str(Cow::Borrowed(""))
            } else {
                V::Str(to_str(&a0)?)
            }
        }
        Global::Number => V::Num(if args.is_empty() { 0.0 } else { to_num(&a0)? }),
        Global::Boolean => V::Bool(truthy(&a0)),
        Global::ParseFloat => V::Num(parse_float(&to_str(&a0)?)),
        Global::ParseInt => {
            let s = to_str(&a0)?;
            let radix = to_int32(to_num(&arg(args, 1))?);
            V::Num(parse_int(&s, radix))
        }
        Global::IsNaN => V::Bool(to_num(&a0)?.is_nan()),
    })
}

/// `parseFloat`: the longest prefix that is a StrDecimalLiteral.
pub fn parse_float(s: &str) -> f64 {
    let t = s.trim_start_matches(js::is_js_whitespace);
    let b = t.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i = 1;
    }
    if t[i..].starts_with("Infinity") {
        return if b[0] == b'-' { f64::NEG_INFINITY } else { f64::INFINITY };
    }
    let digits = |mut j: usize| {
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        j
    };
    let int_end = digits(i);
    let mut end = int_end;
    let mut any = int_end > i;
    if end < b.len() && b[end] == b'.' {
        let f = digits(end + 1);
        if f > end + 1 || any {
            any |= f > end + 1;
            end = f;
        }
    }
    if !any {
        return f64::NAN;
    }
    if end < b.len() && (b[end] == b'e' || b[end] == b'E') {
        let mut j = end + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        let k = digits(j);
        if k > j {
            end = k;
        }
    }
    t[..end].parse::<f64>().unwrap_or(f64::NAN)
}

/// `parseInt(s, radix)` (radix already ToInt32).
pub fn parse_int(s: &str, radix: i32) -> f64 {
    let t = s.trim_start_matches(js::is_js_whitespace);
    let (neg, mut t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let mut r = radix;
    let mut strip = true;
    if r != 0 {
        if !(2..=36).contains(&r) {
            return f64::NAN;
        }
        if r != 16 {
            strip = false;
        }
    } else {
        r = 10;
    }
    if strip && (t.starts_with("0x") || t.starts_with("0X")) {
        t = &t[2..];
        r = 16;
    }
    let end = t.find(|c: char| c.to_digit(r as u32).is_none()).unwrap_or(t.len());
    let z = &t[..end];
    if z.is_empty() {
        return f64::NAN;
    }
    let v = if r == 10 {
        z.parse::<f64>().unwrap_or(f64::NAN)
    } else {
        z.chars().fold(0.0, |acc, c| acc * f64::from(r) + f64::from(c.to_digit(r as u32).unwrap_or(0)))
    };
    if neg {
        -v
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_fixed_rounds_like_javascript() {
        let f = |x: f64, d: f64| match to_fixed(x, &V::Num(d)).unwrap() {
            V::Str(s) => s.into_owned(),
            _ => unreachable!(),
        };
        assert_eq!(f(0.5, 0.0), "1");
        assert_eq!(f(2.5, 0.0), "3");
        assert_eq!(f(-2.5, 0.0), "-3");
        assert_eq!(f(-0.0, 2.0), "0.00");
        assert_eq!(f(1.005, 2.0), "1.00");
        assert_eq!(f(1e21, 2.0), "1e+21");
        assert_eq!(f(-0.0001, 2.0), "-0.00");
        assert_eq!(f(9.995, 2.0), "9.99");
        assert_eq!(f(99.5, 0.0), "100");
    }

    #[test]
    fn parse_float_and_int() {
        assert_eq!(parse_float("  1.5e3x"), 1500.0);
        assert_eq!(parse_float("1e"), 1.0);
        assert_eq!(parse_float("-.5"), -0.5);
        assert_eq!(parse_float("5."), 5.0);
        assert!(parse_float(".e1").is_nan());
        assert!(parse_float("-").is_nan());
        assert_eq!(parse_float("-Infinityx"), f64::NEG_INFINITY);
        assert_eq!(parse_int("0x1f", 0), 31.0);
        assert_eq!(parse_int("0x1f", 16), 31.0);
        assert_eq!(parse_int("0x1f", 10), 0.0);
        assert_eq!(parse_int("12abc", 0), 12.0);
        assert!(parse_int("z", 0).is_nan());
        assert!(parse_int("1", 37).is_nan());
    }
}
