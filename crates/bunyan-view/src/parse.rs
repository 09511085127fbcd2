//! A JSON parser with `JSON.parse`'s grammar producing borrowed [`Value`]s.
//!
//! Hand-written because it is the hot path of the CLI (a record per line):
//! strings without escapes are borrowed from the line, objects are built
//! directly with JavaScript's duplicate-key rule, numbers beyond the double
//! range become ±Infinity like in JavaScript, and "-0" stays negative zero.
//! Input is a `&str`, so UTF-8 was validated once for the whole line.

use crate::record::{required_bit, ALL_REQUIRED};
use crate::skim::skim_below;
use crate::value::{Number, Object, Value};
use std::borrow::Cow;

/// Deepest nesting accepted (renderers recurse; deeper lines pass through).
pub const MAX_DEPTH: usize = 128;

struct P<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
    depth: usize,
}

/// Parses a whole JSON text (surrounding whitespace allowed); `None` if it
/// is not valid JSON (or nests deeper than [`MAX_DEPTH`]).
pub fn parse_json(s: &str) -> Option<Value<'_>> {
    let mut p = P::new(s);
    p.ws();
    let mut v = Value::Null;
    p.value_into(&mut v)?;
    p.at_end().then_some(v)
}

/// Whether a string body holds a raw control character (invalid in JSON).
/// Written without early exit so that it vectorizes.
fn has_control(b: &[u8]) -> bool {
    b.iter().fold(0u8, |acc, &c| acc | u8::from(c < 0x20)) != 0
}

/// The value of the four hex digits of a `\uXXXX` escape at `at`.
pub(crate) fn hex4(b: &[u8], at: usize) -> Option<u32> {
    let h = b.get(at..at + 4)?;
    let mut v = 0;
    for &c in h {
        v = v * 16 + (c as char).to_digit(16)?;
    }
    Some(v)
}

/// Index just past the ASCII digits (maybe none) starting at `j`.
#[inline(always)]
pub(crate) fn skip_digits(b: &[u8], mut j: usize) -> usize {
    while b.get(j).is_some_and(u8::is_ascii_digit) {
        j += 1;
    }
    j
}

/// Index just past the ASCII digits starting at `j`; `None` if there are none.
#[inline(always)]
pub(crate) fn after_digits(b: &[u8], j: usize) -> Option<usize> {
    let end = skip_digits(b, j);
    (end > j).then_some(end)
}

/// Result of [`parse_record_above`].
#[derive(Debug, PartialEq)]
pub enum Filtered<'a> {
    /// The whole line, parsed (still to be checked with `is_valid_record`).
    Parsed(Value<'a>),
    /// A valid record whose numeric level is below the minimum: hidden.
    Below,
    /// Not valid JSON, or valid JSON that is not a record: pass it through.
    NotRecord,
}

/// Parses a line for `-l MIN` alone: like [`parse_json`], but once the
/// top-level `level` turns out to be a number below `min`, the rest of the
/// line is only validated, not built (the record will be hidden, so only
/// "is it a valid record?" matters). Same answers as parsing fully. Most
/// hidden records are recognised first without building anything
/// ([`skim_below`]).
pub fn parse_record_above(s: &str, min: f64) -> Filtered<'_> {
    if skim_below(s.as_bytes(), min) {
        return Filtered::Below;
    }
    parse_record_above_built(s, min)
}

/// [`parse_record_above`] without the [`skim_below`] shortcut, for callers
/// that already ran it on the line's raw bytes.
pub fn parse_record_above_built(s: &str, min: f64) -> Filtered<'_> {
    let mut p = P::new(s);
    if p.b.first() != Some(&b'{') {
        return Filtered::NotRecord;
    }
    match p.top_object(min) {
        Some(Some(v)) if p.at_end() => Filtered::Parsed(v),
        Some(None) if p.at_end() => Filtered::Below,
        Some(_) => Filtered::NotRecord,
        None => match p.i {
            // Bail-out marker: decide with a full parse.
            usize::MAX => match parse_json(s) {
                Some(v) => Filtered::Parsed(v),
                None => Filtered::NotRecord,
            },
            _ => Filtered::NotRecord,
        },
    }
}

impl<'a> P<'a> {
    fn new(s: &'a str) -> P<'a> {
        P { s, b: s.as_bytes(), i: 0, depth: 0 }
    }

    /// Skips trailing whitespace; whether the input ends there.
    fn at_end(&mut self) -> bool {
        self.ws();
        self.i == self.b.len()
    }

    /// The top-level object for [`parse_record_above`]: `Some(Some(v))` when
    /// built completely, `Some(None)` for a valid record below `min`, `None`
    /// for invalid JSON or a non-record (or, with `i == usize::MAX`, a case
    /// to leave to the full parser).
    fn top_object(&mut self, min: f64) -> Option<Option<Value<'a>>> {
        let empty = self.open(b'}')?;
        let mut out = Value::Object(Object::with_capacity(12));
        let Value::Object(obj) = &mut out else {
            return None;
        };
        if empty {
            return Some(Some(out));
        }
        loop {
            let key = self.member_key()?;
            let is_level = key == "level";
            let slot = obj.slot_for(key);
            self.value_into(slot)?;
            let below = is_level && matches!(slot, Value::Number(n) if n.as_f64() < min);
            let more = self.next_or_close(b'}')?;
            if below {
                let mut present = 0u8;
                for (k, v) in obj.entries() {
                    if !matches!(v, Value::Null) {
                        present |= required_bit(k);
                    }
                }
                if more {
                    present = self.skim_members(present)?;
                }
                return if present == ALL_REQUIRED { Some(None) } else { None };
            }
            if !more {
                return Some(Some(out));
            }
        }
    }

    /// Validates the remaining `"key": value` members of the top-level
    /// object without building them, updating which required fields are
    /// present and non-null. Bails out (`i = usize::MAX`) on another
    /// `level` or an escaped key.
    fn skim_members(&mut self, mut present: u8) -> Option<u8> {
        loop {
            let key = self.member_key()?;
            if key == "level" || matches!(key, Cow::Owned(_)) {
                self.i = usize::MAX;
                return None;
            }
            let bit = required_bit(&key);
            if bit != 0 {
                if self.b[self.i..].starts_with(b"null") {
                    present &= !bit;
                } else {
                    present |= bit;
                }
            }
            self.skip_value()?;
            if !self.next_or_close(b'}')? {
                return Some(present);
            }
        }
    }

    /// Validates one value without building it (escaped strings aside).
    fn skip_value(&mut self) -> Option<()> {
        match *self.b.get(self.i)? {
            b'{' | b'[' => {
                let close = if self.b[self.i] == b'{' { b'}' } else { b']' };
                if self.open(close)? {
                    return Some(());
                }
                loop {
                    if close == b'}' {
                        self.member_key()?;
                    } else {
                        self.ws();
                    }
                    self.skip_value()?;
                    if !self.next_or_close(close)? {
                        return Some(());
                    }
                }
            }
            b'"' => self.string().map(drop),
            b't' => self.lit(b"true", Value::Null).map(drop),
            b'f' => self.lit(b"false", Value::Null).map(drop),
            b'n' => self.lit(b"null", Value::Null).map(drop),
            b'-' | b'0'..=b'9' => self.number().map(drop),
            _ => None,
        }
    }

    fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            if c == b' ' || c == b'\n' || c == b'\r' || c == b'\t' {
                self.i += 1;
            } else {
                break;
            }
        }
    }

    #[inline(always)]
    fn lit(&mut self, word: &[u8], v: Value<'a>) -> Option<Value<'a>> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Some(v)
        } else {
            None
        }
    }

    /// Parses a value straight into `out` (building in place avoids
    /// copying large values around, which dominates otherwise).
    fn value_into(&mut self, out: &mut Value<'a>) -> Option<()> {
        *out = match *self.b.get(self.i)? {
            b'{' => return self.object_into(out),
            b'[' => return self.array_into(out),
            b'"' => Value::String(self.string()?),
            b't' => self.lit(b"true", Value::Bool(true))?,
            b'f' => self.lit(b"false", Value::Bool(false))?,
            b'n' => self.lit(b"null", Value::Null)?,
            b'-' | b'0'..=b'9' => self.number()?,
            _ => return None,
        };
        Some(())
    }

    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    /// Steps into the object or array whose `{` or `[` is at `i` (one level
    /// deeper); `Some(true)` if `close` ends it right away (and steps out).
    #[inline(always)]
    fn open(&mut self, close: u8) -> Option<bool> {
        self.enter()?;
        self.i += 1;
        self.ws();
        if self.b.get(self.i) == Some(&close) {
            self.i += 1;
            self.depth -= 1;
            return Some(true);
        }
        Some(false)
    }

    /// An object member's `"key":` with the whitespace around it, up to
    /// its value.
    #[inline(always)]
    fn member_key(&mut self) -> Option<Cow<'a, str>> {
        self.ws();
        if self.b.get(self.i) != Some(&b'"') {
            return None;
        }
        let key = self.string()?;
        self.ws();
        if self.b.get(self.i) != Some(&b':') {
            return None;
        }
        self.i += 1;
        self.ws();
        Some(key)
    }

    /// What follows a member or item: `,` gives `Some(true)` (another one
    /// comes), `close` gives `Some(false)` (and steps out one level).
    #[inline(always)]
    fn next_or_close(&mut self, close: u8) -> Option<bool> {
        self.ws();
        match *self.b.get(self.i)? {
            b',' => {
                self.i += 1;
                Some(true)
            }
            c if c == close => {
                self.i += 1;
                self.depth -= 1;
                Some(false)
            }
            _ => None,
        }
    }

    fn object_into(&mut self, out: &mut Value<'a>) -> Option<()> {
        let empty = self.open(b'}')?;
        *out = Value::Object(Object::with_capacity(12));
        let Value::Object(obj) = out else { return None };
        if empty {
            return Some(());
        }
        loop {
            let key = self.member_key()?;
            self.value_into(obj.slot_for(key))?;
            if !self.next_or_close(b'}')? {
                return Some(());
            }
        }
    }

    fn array_into(&mut self, out: &mut Value<'a>) -> Option<()> {
        let empty = self.open(b']')?;
        *out = Value::Array(Vec::new());
        let Value::Array(items) = out else {
            return None;
        };
        if empty {
            return Some(());
        }
        loop {
            self.ws();
            items.push(Value::Null);
            let last = items.len() - 1;
            self.value_into(&mut items[last])?;
            if !self.next_or_close(b']')? {
                return Some(());
            }
        }
    }

    /// A string starting at the opening quote. The common case (no
    /// escapes) is inlined into the callers; unescaping is out of line.
    #[inline(always)]
    fn string(&mut self) -> Option<Cow<'a, str>> {
        let start = self.i + 1;
        let b = self.b;
        // Fast path, no escapes: short strings byte by byte, long ones with memchr.
        let mut j = start;
        let short_end = (start + 24).min(b.len());
        while j < short_end {
            match b[j] {
                b'"' => {
                    self.i = j + 1;
                    return Some(Cow::Borrowed(&self.s[start..j]));
                }
                b'\\' => break,
                c if c < 0x20 => return None,
                _ => j += 1,
            }
        }
        if j == short_end {
            let k = j + memchr::memchr2(b'"', b'\\', &b[j..])?;
            if has_control(&b[j..k]) {
                return None;
            }
            if b[k] == b'"' {
                self.i = k + 1;
                return Some(Cow::Borrowed(&self.s[start..k]));
            }
            j = k;
        }
        self.string_escaped(start, j)
    }

    /// Rest of [`P::string`] from the first backslash at `j`: unescapes.
    #[cold]
    #[inline(never)]
    fn string_escaped(&mut self, start: usize, mut j: usize) -> Option<Cow<'a, str>> {
        let mut out = String::with_capacity(j - start + 16);
        out.push_str(&self.s[start..j]);
        loop {
            match *self.b.get(j)? {
                b'"' => {
                    self.i = j + 1;
                    return Some(Cow::Owned(out));
                }
                b'\\' => {
                    j += 1;
                    match *self.b.get(j)? {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = hex4(self.b, j + 1)?;
                            j += 4;
                            let c = if (0xd800..0xdc00).contains(&hi) {
                                // A surrogate pair; a lone surrogate can't be a Rust string.
                                if self.b.get(j + 1) != Some(&b'\\') || self.b.get(j + 2) != Some(&b'u') {
                                    return None;
                                }
                                let lo = hex4(self.b, j + 3)?;
                                if !(0xdc00..0xe000).contains(&lo) {
                                    return None;
                                }
                                j += 6;
                                char::from_u32(0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00))?
                            } else {
                                char::from_u32(hi)?
                            };
                            out.push(c);
                        }
                        _ => return None,
                    }
                    j += 1;
                }
                _ => {
                    let k = j + memchr::memchr2(b'"', b'\\', &self.b[j..])?;
                    if has_control(&self.b[j..k]) {
                        return None;
                    }
                    out.push_str(&self.s[j..k]);
                    j = k;
                }
            }
        }
    }

    #[inline(always)]
    fn number(&mut self) -> Option<Value<'a>> {
        let start = self.i;
        let b = self.b;
        let mut j = self.i;
        let neg = b[j] == b'-';
        if neg {
            j += 1;
        }
        let int_start = j;
        match b.get(j) {
            Some(b'0') => j += 1,
            Some(b'1'..=b'9') => j = after_digits(b, j)?,
            _ => return None,
        }
        let int_end = j;
        let mut is_float = false;
        if b.get(j) == Some(&b'.') {
            j = after_digits(b, j + 1)?;
            is_float = true;
        }
        if matches!(b.get(j), Some(b'e' | b'E')) {
            j += 1;
            if matches!(b.get(j), Some(b'+' | b'-')) {
                j += 1;
            }
            j = after_digits(b, j)?;
            is_float = true;
        }
        self.i = j;
        if !is_float && int_end - int_start <= 20 {
            let digits = &self.s[int_start..int_end];
            if let Ok(u) = digits.parse::<u64>() {
                if !neg {
                    return Some(Value::Number(Number::U(u)));
                }
                if u == 0 {
                    return Some(Value::Number(Number::F(-0.0)));
                }
                if u <= i64::MAX as u64 + 1 {
                    return Some(Value::Number(Number::I((u as i64).wrapping_neg())));
                }
            }
        }
        // Rust's float parsing is correctly rounded; overflow gives ±inf like JS.
        self.s[start..j].parse::<f64>().ok().map(|f| Value::Number(Number::F(f)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a full parse + `isValidRecord` + `-l min` would decide.
    fn reference(s: &str, min: f64) -> &'static str {
        match parse_json(s).filter(|_| s.starts_with('{')) {
            Some(v) if crate::record::is_valid_record(&v) => {
                if crate::js::to_number(v.get("level").unwrap()) < min {
                    "below"
                } else {
                    "shown"
                }
            }
            _ => "not",
        }
    }

    fn fast(s: &str, min: f64) -> &'static str {
        match parse_record_above(s, min) {
            Filtered::Below => "below",
            Filtered::NotRecord => "not",
            Filtered::Parsed(v) if !crate::record::is_valid_record(&v) => "not",
            Filtered::Parsed(v) if crate::js::to_number(v.get("level").unwrap()) < min => "below",
            Filtered::Parsed(_) => "shown",
        }
    }

    #[test]
    fn level_filtered_parse_agrees_with_full_parse() {
        let base = r#"{"name":"a","hostname":"h","pid":1,"level":20,"x":{"y":[1,"\n",{}]},"msg":"m","time":"t","v":0}"#;
        let cases = [
            base.to_owned(),
            base.replace(r#""level":20"#, r#""level":50"#),
            base.replace(r#""level":20"#, r#""level":"20""#),
            base.replace(r#","v":0}"#, "}"),
            base.replace(r#""v":0}"#, r#""v":null}"#),
            base.replace(r#""msg":"m""#, r#""msg":"m","msg":null"#),
            base.replace(r#""v":0}"#, r#""v":0,"level":50}"#),
            base.replace(r#""v":0}"#, r#""v":0,"\u006cevel":50}"#),
            base.replace(r#""v":0}"#, r#""v":0"#),
            base.replace(r#""v":0}"#, r#""v":0} x"#),
            base.replace(r#"[1,"#, r#"[1,,"#),
            base.replace(r#""x":{"#, r#""x":{"a":tru,"#),
            r#"{"level":10}"#.to_owned(),
            r#"{"v":0,"level":10,"name":"a","hostname":"h","pid":1,"time":"t","msg":"m"}"#.to_owned(),
            format!("{{\"level\":10,\"deep\":{}1{}}}", "[".repeat(200), "]".repeat(200)),
        ];
        for c in &cases {
            for min in [0.0, 30.0, 60.0] {
                assert_eq!(fast(c, min), reference(c, min), "{c} with -l {min}");
            }
        }
    }

    #[test]
    fn accepts_what_json_parse_accepts() {
        for ok in [
            "{}",
            "[]",
            " {\"a\" : [1, -2.5e3, true, false, null, \"x\"]} ",
            "\"\\u00e9\\ud83d\\ude00\\n\"",
            "-0",
            "1e400",
            "0",
        ] {
            assert!(parse_json(ok).is_some(), "{ok}");
        }
        for bad in [
            "",
            "{",
            "{\"a\":}",
            "[1,]",
            "{\"a\":1,}",
            "01",
            "1.",
            ".5",
            "+1",
            "\"\t\"",
            "\"\\x\"",
            "\"\\ud800\"",
            "nul",
            "{} x",
            "'a'",
            "[1 2]",
            "{\"a\" 1}",
            "-",
            "1e",
            "NaN",
        ] {
            assert!(parse_json(bad).is_none(), "{bad}");
        }
        assert!(parse_json(&"[".repeat(200)).is_none());
    }

    #[test]
    fn numbers_keep_js_meaning() {
        assert_eq!(parse_json("18446744073709551615"), Some(Value::Number(Number::U(u64::MAX))));
        assert_eq!(parse_json("-9223372036854775808"), Some(Value::Number(Number::I(i64::MIN))));
        assert_eq!(parse_json("1e400"), Some(Value::Number(Number::F(f64::INFINITY))));
        assert!(matches!(parse_json("-0"), Some(Value::Number(Number::F(z))) if z == 0.0 && z.is_sign_negative()));
        assert_eq!(parse_json("97.27034568786621"), Some(Value::Number(Number::F(97.27034568786621))));
    }
}
