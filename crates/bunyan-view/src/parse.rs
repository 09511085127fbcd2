//! A JSON parser with `JSON.parse`'s grammar producing borrowed [`Value`]s.
//!
//! Hand-written because it is the hot path of the CLI (a record per line):
//! strings without escapes are borrowed from the line, objects are built
//! directly with JavaScript's duplicate-key rule, numbers beyond the double
//! range become ±Infinity like in JavaScript, and "-0" stays negative zero.
//! Input is a `&str`, so UTF-8 was validated once for the whole line.

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
    let mut p = P { s, b: s.as_bytes(), i: 0, depth: 0 };
    p.ws();
    let v = p.value()?;
    p.ws();
    (p.i == p.b.len()).then_some(v)
}

/// What [`skim_record`] learned about a line without building it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Skim {
    /// Not valid JSON, or valid JSON that is not a Bunyan record.
    NotRecord,
    /// A valid record whose `level` is this plain JSON number.
    Level(f64),
    /// Could not decide cheaply (non-numeric level, escaped keys): parse fully.
    Unknown,
}

/// Validates a line like [`parse_json`] + `isValidRecord` without building
/// values, reporting the record's numeric level: lets `-l` drop records
/// below the level at a fraction of the cost of a full parse.
pub fn skim_record(s: &str) -> Skim {
    let mut p = P { s, b: s.as_bytes(), i: 0, depth: 0 };
    p.ws();
    if p.b.first() != Some(&b'{') {
        return Skim::NotRecord;
    }
    match p.skim_top() {
        Some(r) => {
            p.ws();
            if p.i != p.b.len() {
                Skim::NotRecord
            } else {
                r
            }
        }
        None => Skim::NotRecord,
    }
}

impl<'a> P<'a> {
    /// The top-level object of [`skim_record`]; `None` if not valid JSON.
    fn skim_top(&mut self) -> Option<Skim> {
        const REQUIRED: [&str; 7] = ["v", "level", "name", "hostname", "pid", "time", "msg"];
        self.enter()?;
        self.i += 1;
        let mut non_null = 0u8;
        let mut level: Option<f64> = None;
        let mut unknown = false;
        self.ws();
        if self.b.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Some(Skim::NotRecord);
        }
        loop {
            self.ws();
            if self.b.get(self.i) != Some(&b'"') {
                return None;
            }
            let key = self.string()?;
            if matches!(key, Cow::Owned(_)) {
                unknown = true; // escaped key: may spell a required field
            }
            self.ws();
            if self.b.get(self.i) != Some(&b':') {
                return None;
            }
            self.i += 1;
            self.ws();
            let slot = REQUIRED.iter().position(|r| *r == key);
            let is_null = self.b[self.i..].starts_with(b"null");
            if key == "level" {
                match self.b.get(self.i) {
                    Some(b'-' | b'0'..=b'9') => match self.number()? {
                        Value::Number(n) => level = Some(n.as_f64()),
                        _ => return None,
                    },
                    _ => {
                        level = None;
                        self.skip_value()?;
                    }
                }
            } else {
                self.skip_value()?;
            }
            if let Some(slot) = slot {
                if is_null {
                    non_null &= !(1 << slot);
                } else {
                    non_null |= 1 << slot;
                }
            }
            self.ws();
            match self.b.get(self.i)? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    self.depth -= 1;
                    break;
                }
                _ => return None,
            }
        }
        Some(match (unknown, non_null == 0x7f, level) {
            (true, _, _) => Skim::Unknown,
            (false, false, _) => Skim::NotRecord,
            (false, true, Some(l)) => Skim::Level(l),
            (false, true, None) => Skim::Unknown,
        })
    }

    /// Validates one value without keeping it.
    fn skip_value(&mut self) -> Option<()> {
        match *self.b.get(self.i)? {
            b'{' => {
                self.enter()?;
                self.i += 1;
                self.ws();
                if self.b.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    self.depth -= 1;
                    return Some(());
                }
                loop {
                    self.ws();
                    if self.b.get(self.i) != Some(&b'"') {
                        return None;
                    }
                    self.skip_string()?;
                    self.ws();
                    if self.b.get(self.i) != Some(&b':') {
                        return None;
                    }
                    self.i += 1;
                    self.ws();
                    self.skip_value()?;
                    self.ws();
                    match self.b.get(self.i)? {
                        b',' => self.i += 1,
                        b'}' => {
                            self.i += 1;
                            self.depth -= 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b'[' => {
                self.enter()?;
                self.i += 1;
                self.ws();
                if self.b.get(self.i) == Some(&b']') {
                    self.i += 1;
                    self.depth -= 1;
                    return Some(());
                }
                loop {
                    self.ws();
                    self.skip_value()?;
                    self.ws();
                    match self.b.get(self.i)? {
                        b',' => self.i += 1,
                        b']' => {
                            self.i += 1;
                            self.depth -= 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b'"' => self.skip_string(),
            _ => self.value().map(|_| ()),
        }
    }

    /// Validates a string; only strings with escapes are decoded (to check them).
    fn skip_string(&mut self) -> Option<()> {
        let start = self.i + 1;
        let k = start + memchr::memchr2(b'"', b'\\', &self.b[start..])?;
        if self.b[k] == b'"' && !self.b[start..k].iter().any(|&c| c < 0x20) {
            self.i = k + 1;
            return Some(());
        }
        self.string().map(|_| ())
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

    fn lit(&mut self, word: &[u8], v: Value<'a>) -> Option<Value<'a>> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Some(v)
        } else {
            None
        }
    }

    fn value(&mut self) -> Option<Value<'a>> {
        match *self.b.get(self.i)? {
            b'{' => self.object(),
            b'[' => self.array(),
            b'"' => self.string().map(Value::String),
            b't' => self.lit(b"true", Value::Bool(true)),
            b'f' => self.lit(b"false", Value::Bool(false)),
            b'n' => self.lit(b"null", Value::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    fn object(&mut self) -> Option<Value<'a>> {
        self.enter()?;
        self.i += 1;
        let mut obj = Object::with_capacity(12);
        self.ws();
        if self.b.get(self.i) == Some(&b'}') {
            self.i += 1;
            self.depth -= 1;
            return Some(Value::Object(obj));
        }
        loop {
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
            let v = self.value()?;
            obj.insert_parsed(key, v);
            self.ws();
            match self.b.get(self.i)? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    self.depth -= 1;
                    return Some(Value::Object(obj));
                }
                _ => return None,
            }
        }
    }

    fn array(&mut self) -> Option<Value<'a>> {
        self.enter()?;
        self.i += 1;
        let mut items = Vec::new();
        self.ws();
        if self.b.get(self.i) == Some(&b']') {
            self.i += 1;
            self.depth -= 1;
            return Some(Value::Array(items));
        }
        loop {
            self.ws();
            items.push(self.value()?);
            self.ws();
            match self.b.get(self.i)? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    self.depth -= 1;
                    return Some(Value::Array(items));
                }
                _ => return None,
            }
        }
    }

    /// A string starting at the opening quote.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        let start = self.i + 1;
        let mut j = start;
        // Fast path: no escapes.
        loop {
            let k = j + memchr::memchr2(b'"', b'\\', &self.b[j..])?;
            if self.b[j..k].iter().any(|&c| c < 0x20) {
                return None;
            }
            if self.b[k] == b'"' {
                self.i = k + 1;
                return Some(Cow::Borrowed(&self.s[start..k]));
            }
            j = k;
            break;
        }
        // Slow path: unescape.
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
                            let hi = self.hex4(j + 1)?;
                            j += 4;
                            let c = if (0xd800..0xdc00).contains(&hi) {
                                // A surrogate pair; a lone surrogate can't be a Rust string.
                                if self.b.get(j + 1) != Some(&b'\\') || self.b.get(j + 2) != Some(&b'u') {
                                    return None;
                                }
                                let lo = self.hex4(j + 3)?;
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
                    if self.b[j..k].iter().any(|&c| c < 0x20) {
                        return None;
                    }
                    out.push_str(&self.s[j..k]);
                    j = k;
                }
            }
        }
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        let h = self.b.get(at..at + 4)?;
        let mut v = 0;
        for &c in h {
            v = v * 16 + (c as char).to_digit(16)?;
        }
        Some(v)
    }

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
            Some(b'1'..=b'9') => {
                while b.get(j).is_some_and(u8::is_ascii_digit) {
                    j += 1;
                }
            }
            _ => return None,
        }
        let int_end = j;
        let mut is_float = false;
        if b.get(j) == Some(&b'.') {
            j += 1;
            let f = j;
            while b.get(j).is_some_and(u8::is_ascii_digit) {
                j += 1;
            }
            if j == f {
                return None;
            }
            is_float = true;
        }
        if matches!(b.get(j), Some(b'e' | b'E')) {
            j += 1;
            if matches!(b.get(j), Some(b'+' | b'-')) {
                j += 1;
            }
            let e = j;
            while b.get(j).is_some_and(u8::is_ascii_digit) {
                j += 1;
            }
            if j == e {
                return None;
            }
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

    #[test]
    fn skim_agrees_with_full_parse() {
        let r = r#"{"v":0,"level":40,"name":"a","hostname":"h","pid":1,"time":"t","msg":"m","x":{"y":[1,"\n",null]}}"#;
        assert_eq!(skim_record(r), Skim::Level(40.0));
        assert_eq!(skim_record(&r.replace("40", "\"40\"")), Skim::Unknown);
        assert_eq!(skim_record(&r.replace("\"msg\":\"m\"", "\"msg\":null")), Skim::NotRecord);
        assert_eq!(skim_record(&r.replace("\"msg\":\"m\"", "\"msg\":\"m\",\"msg\":null")), Skim::NotRecord);
        assert_eq!(skim_record(&r.replace("\"msg\":\"m\"", "\"msg\":null,\"msg\":1")), Skim::Level(40.0));
        assert_eq!(skim_record(&r.replace("\"msg\"", "\"\\u006dsg\"")), Skim::Unknown);
        assert_eq!(skim_record(&r[..r.len() - 1]), Skim::NotRecord);
        assert_eq!(skim_record("[1]"), Skim::NotRecord);
    }

    #[test]
    fn accepts_what_json_parse_accepts() {
        for ok in [
            "{}", "[]", " {\"a\" : [1, -2.5e3, true, false, null, \"x\"]} ", "\"\\u00e9\\ud83d\\ude00\\n\"", "-0", "1e400", "0",
        ] {
            assert!(parse_json(ok).is_some(), "{ok}");
        }
        for bad in [
            "", "{", "{\"a\":}", "[1,]", "{\"a\":1,}", "01", "1.", ".5", "+1", "\"\t\"", "\"\\x\"", "\"\\ud800\"", "nul",
            "{} x", "'a'", "[1 2]", "{\"a\" 1}", "-", "1e", "NaN",
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
