//! JavaScript conversions node-bunyan's CLI relies on implicitly: `String(x)`
//! (string concatenation), `Number(x)`, truthiness, and `Number#toString`
//! formatting of doubles, applied to parsed JSON [`Value`]s.

use crate::parse::{after_digits, skip_digits};
use crate::value::{Number, Value};

/// Appends `Number.prototype.toString()` of a double (`1e+21`, `1.5e-7`, `0.1`).
pub fn push_f64(out: &mut Vec<u8>, f: f64) {
    if f.is_nan() {
        out.extend_from_slice(b"NaN");
        return;
    }
    if f.is_infinite() {
        out.extend_from_slice(if f > 0.0 { b"Infinity" } else { b"-Infinity" });
        return;
    }
    if f == 0.0 {
        out.push(b'0');
        return;
    }
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        push_int(out, f as i64);
        return;
    }
    // ECMAScript Number::toString (shortest digits, ties to even, JS layout).
    let mut buf = ryu_js::Buffer::new();
    out.extend_from_slice(buf.format(f).as_bytes());
}

/// Appends a decimal integer.
pub fn push_int(out: &mut Vec<u8>, i: i64) {
    if i < 0 {
        out.push(b'-');
    }
    push_u64(out, i.unsigned_abs());
}

/// Appends a decimal unsigned integer.
pub fn push_u64(out: &mut Vec<u8>, mut u: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

/// Appends a parsed JSON number the way node prints it. Integers keep
/// every digit (node would round those beyond 2^53; see docs).
pub fn push_number(out: &mut Vec<u8>, n: Number) {
    match n {
        Number::U(u) => push_u64(out, u),
        Number::I(i) => push_int(out, i),
        Number::F(f) => push_f64(out, f),
    }
}

/// Appends `String(value)` (what `'' + value` gives in JavaScript).
pub fn push_to_string(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => push_number(out, *n),
        Value::String(s) => out.extend_from_slice(s.as_bytes()),
        Value::Array(a) => push_array_join(out, a),
        Value::Object(_) => out.extend_from_slice(b"[object Object]"),
    }
}

/// `Array.prototype.join(',')`: null elements become empty strings.
fn push_array_join(out: &mut Vec<u8>, a: &[Value]) {
    for (i, e) in a.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if !matches!(e, Value::Null) {
            push_to_string(out, e);
        }
    }
}

/// `String(value)` as an owned string.
pub fn to_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_string(),
        _ => {
            let mut out = Vec::new();
            push_to_string(&mut out, v);
            String::from_utf8(out).unwrap_or_default()
        }
    }
}

/// JavaScript truthiness.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => {
            let f = n.as_f64();
            f != 0.0 && !f.is_nan()
        }
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// `Number(value)`.
pub fn to_number(v: &Value) -> f64 {
    match v {
        Value::Null => 0.0,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Number(n) => n.as_f64(),
        Value::String(s) => string_to_number(s),
        Value::Array(_) => {
            let mut out = Vec::new();
            push_to_string(&mut out, v);
            string_to_number(std::str::from_utf8(&out).unwrap_or("x"))
        }
        Value::Object(_) => f64::NAN,
    }
}

/// Whether JavaScript's `String.prototype.trim` removes this character.
pub fn is_js_whitespace(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}' | '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}' | '\u{3000}' | '\u{feff}'
    )
}

/// `Number(string)`: decimal, `0x`/`0o`/`0b`, `Infinity`; empty is 0; else NaN.
pub fn string_to_number(s: &str) -> f64 {
    let t = s.trim_matches(is_js_whitespace);
    if t.is_empty() {
        return 0.0;
    }
    let b = t.as_bytes();
    if b.len() > 2 && b[0] == b'0' {
        let radix = match b[1] {
            b'x' | b'X' => 16,
            b'o' | b'O' => 8,
            b'b' | b'B' => 2,
            _ => 0,
        };
        if radix != 0 {
            let mut acc = 0f64;
            for &c in &b[2..] {
                match (c as char).to_digit(radix) {
                    Some(d) => acc = acc * f64::from(radix) + f64::from(d),
                    None => return f64::NAN,
                }
            }
            return acc;
        }
    }
    let (sign, body) = match b[0] {
        b'+' => (1.0, &t[1..]),
        b'-' => (-1.0, &t[1..]),
        _ => (1.0, t),
    };
    if body == "Infinity" {
        return sign * f64::INFINITY;
    }
    if !is_decimal_literal(body.as_bytes()) {
        return f64::NAN;
    }
    body.parse::<f64>().map(|f| sign * f).unwrap_or(f64::NAN)
}

/// `StrUnsignedDecimalLiteral` without `Infinity`: `1`, `1.`, `.5`, `1e3`, `1.5E-2`.
fn is_decimal_literal(b: &[u8]) -> bool {
    let mut i = skip_digits(b, 0);
    let mut digits = i;
    if i < b.len() && b[i] == b'.' {
        let f = i + 1;
        i = skip_digits(b, f);
        digits += i - f;
    }
    if digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        match after_digits(b, i) {
            Some(end) => i = end,
            None => return false,
        }
    }
    i == b.len()
}

/// Length in UTF-16 code units (JavaScript's `string.length`).
pub fn utf16_len(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.chars().map(char::len_utf16).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(x: f64) -> String {
        let mut o = Vec::new();
        push_f64(&mut o, x);
        String::from_utf8(o).unwrap()
    }

    #[test]
    fn numbers_format_like_javascript() {
        assert_eq!(f(1.0), "1");
        assert_eq!(f(-0.0), "0");
        assert_eq!(f(0.1), "0.1");
        assert_eq!(f(1.5e-7), "1.5e-7");
        assert_eq!(f(0.000001), "0.000001");
        assert_eq!(f(1e21), "1e+21");
        assert_eq!(f(1.2345e21), "1.2345e+21");
        assert_eq!(f(123456789012345680000.0), "123456789012345680000");
        assert_eq!(f(-12.5), "-12.5");
        assert_eq!(f(2.3630142211914062), "2.3630142211914062");
        assert_eq!(f(f64::NAN), "NaN");
    }

    #[test]
    fn string_to_number_matches_javascript() {
        assert_eq!(string_to_number(" 42 "), 42.0);
        assert_eq!(string_to_number(""), 0.0);
        assert_eq!(string_to_number("0x1f"), 31.0);
        assert_eq!(string_to_number("-Infinity"), f64::NEG_INFINITY);
        assert!(string_to_number("inf").is_nan());
        assert!(string_to_number("1e").is_nan());
        assert!(string_to_number("-0x1").is_nan());
        assert_eq!(string_to_number(".5"), 0.5);
        assert_eq!(string_to_number("5."), 5.0);
    }
}
