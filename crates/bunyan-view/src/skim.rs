//! The `-l MIN` shortcut for hidden records: [`skim_below`] decides, on a
//! line's raw bytes and without building anything (no allocation, no UTF-8
//! validation), that a line is a valid record whose level is below `MIN`.
//!
//! It answers `true` only when a full parse (of the line decoded like node
//! does, invalid UTF-8 becoming U+FFFD) would give a valid record hidden by
//! `-l MIN`; anything it is unsure about (escaped keys, a repeated `level`,
//! a level that is not a plain non-negative integer) answers `false`, and
//! the caller then parses the line fully. Skipping UTF-8 validation is
//! exact: bytes >= 0x80 are valid only inside strings, both before and
//! after U+FFFD replacement, and replacement never touches ASCII bytes.

use crate::parse::{hex4, MAX_DEPTH};
use crate::record::ALL_REQUIRED;

/// Whether `line` is certainly a valid record with a numeric level `< min`
/// (see the module documentation).
pub fn skim_below(line: &[u8], min: f64) -> bool {
    let mut s = Skim { b: line, i: 0 };
    if line.first() != Some(&b'{') {
        return false;
    }
    s.top_object(min).is_some() && s.at_end()
}

/// [`crate::record::required_bit`] on raw bytes (`level` is handled apart).
#[inline(always)]
fn required_bit_of(key: &[u8]) -> u8 {
    match key {
        b"v" => 1,
        b"name" => 4,
        b"hostname" => 8,
        b"pid" => 16,
        b"time" => 32,
        b"msg" => 64,
        _ => 0,
    }
}

/// A cursor over the line; every method returns `None` for "not sure".
struct Skim<'a> {
    b: &'a [u8],
    i: usize,
}

/// Byte-wise `x < n` flags (high bit of each byte) for `n <= 0x80`; only
/// the lowest flag is exact, which is all [`Skim::string`] uses.
#[inline(always)]
fn lanes_less(x: u64, n: u8) -> u64 {
    x.wrapping_sub(0x0101_0101_0101_0101 * n as u64) & !x & 0x8080_8080_8080_8080
}

/// Byte-wise `x == c` flags (lowest flag exact).
#[inline(always)]
fn lanes_eq(x: u64, c: u8) -> u64 {
    lanes_less(x ^ (0x0101_0101_0101_0101 * c as u64), 1)
}

impl Skim<'_> {
    fn at_end(&mut self) -> bool {
        self.ws();
        self.i == self.b.len()
    }

    #[inline(always)]
    fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            if c == b' ' || c == b'\n' || c == b'\r' || c == b'\t' {
                self.i += 1;
            } else {
                break;
            }
        }
    }

    /// The top-level object: `Some(())` if valid, with a `level` below
    /// `min` and every required field present and non-null.
    fn top_object(&mut self, min: f64) -> Option<()> {
        self.i = 1;
        self.ws();
        let mut present = 0u8;
        let mut level_seen = false;
        if self.b.get(self.i) == Some(&b'}') {
            return None;
        }
        loop {
            let (key, escaped) = self.key()?;
            // An escaped key might spell a required one: not sure.
            if escaped {
                return None;
            }
            if key == b"level" {
                // A repeated level is left to the full parser.
                if level_seen || !self.level_below(min) {
                    return None;
                }
                level_seen = true;
                present |= 2;
            } else {
                let bit = required_bit_of(key);
                if bit != 0 {
                    if self.b[self.i..].starts_with(b"null") {
                        present &= !bit;
                    } else {
                        present |= bit;
                    }
                }
                self.value(1)?;
            }
            self.ws();
            match *self.b.get(self.i)? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return (present == ALL_REQUIRED).then_some(());
                }
                _ => return None,
            }
        }
    }

    /// The value of `level` at `i`: whether it is a plain integer below
    /// `min` (`false` if not, or not sure).
    fn level_below(&mut self, min: f64) -> bool {
        let b = self.b;
        let start = self.i;
        let mut j = start;
        match b.get(j) {
            Some(b'0') => j += 1,
            Some(b'1'..=b'9') => {
                while b.get(j).is_some_and(u8::is_ascii_digit) {
                    j += 1;
                }
            }
            _ => return false,
        }
        if j - start > 15 || matches!(b.get(j), Some(b'.' | b'e' | b'E' | b'0'..=b'9')) {
            return false;
        }
        let n = b[start..j].iter().fold(0u64, |acc, &c| acc * 10 + u64::from(c - b'0'));
        self.i = j;
        (n as f64) < min
    }

    /// A member's `"key":` with the whitespace around it, up to its value:
    /// the key as written, and whether it holds escapes.
    #[inline(always)]
    fn key(&mut self) -> Option<(&[u8], bool)> {
        self.ws();
        if self.b.get(self.i) != Some(&b'"') {
            return None;
        }
        let start = self.i + 1;
        let escaped;
        (self.i, escaped) = self.string()?;
        let key = &self.b[start..self.i - 1];
        self.ws();
        if self.b.get(self.i) != Some(&b':') {
            return None;
        }
        self.i += 1;
        self.ws();
        Some((key, escaped))
    }

    /// Validates one value at `i`, nested `depth` levels deep already.
    /// Strings and numbers are handled inline, the rest out of line.
    #[inline(always)]
    fn value(&mut self, depth: usize) -> Option<()> {
        match *self.b.get(self.i)? {
            b'"' => {
                self.i = self.string()?.0;
                Some(())
            }
            b'-' | b'0'..=b'9' => self.number(),
            _ => self.other_value(depth),
        }
    }

    /// [`Skim::value`] for objects, arrays and literals.
    #[inline(never)]
    fn other_value(&mut self, depth: usize) -> Option<()> {
        match *self.b.get(self.i)? {
            open @ (b'{' | b'[') => {
                let depth = depth + 1;
                if depth > MAX_DEPTH {
                    return None;
                }
                let close = if open == b'{' { b'}' } else { b']' };
                self.i += 1;
                self.ws();
                if self.b.get(self.i) == Some(&close) {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    if close == b'}' {
                        self.key()?;
                    } else {
                        self.ws();
                    }
                    self.value(depth)?;
                    self.ws();
                    match *self.b.get(self.i)? {
                        b',' => self.i += 1,
                        c if c == close => {
                            self.i += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b't' => self.lit(b"true"),
            b'f' => self.lit(b"false"),
            b'n' => self.lit(b"null"),
            _ => None,
        }
    }

    #[inline(always)]
    fn lit(&mut self, word: &[u8]) -> Option<()> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Some(())
        } else {
            None
        }
    }

    /// A number with JSON's grammar (the parser accepts every such number).
    #[inline(always)]
    fn number(&mut self) -> Option<()> {
        let b = self.b;
        let digits = |mut j: usize| {
            let s = j;
            while b.get(j).is_some_and(u8::is_ascii_digit) {
                j += 1;
            }
            (j > s).then_some(j)
        };
        let mut j = self.i;
        if b[j] == b'-' {
            j += 1;
        }
        match b.get(j) {
            Some(b'0') => j += 1,
            Some(b'1'..=b'9') => j = digits(j)?,
            _ => return None,
        }
        if b.get(j) == Some(&b'.') {
            j = digits(j + 1)?;
        }
        if matches!(b.get(j), Some(b'e' | b'E')) {
            j += 1;
            if matches!(b.get(j), Some(b'+' | b'-')) {
                j += 1;
            }
            j = digits(j)?;
        }
        self.i = j;
        Some(())
    }

    /// The string whose opening quote is at `i`: the index just past its
    /// closing quote and whether it holds escapes; `None` if invalid (raw
    /// control character, bad escape, lone surrogate — the parser rejects
    /// those too).
    #[inline(always)]
    fn string(&self) -> Option<(usize, bool)> {
        let b = self.b;
        let mut j = self.i + 1;
        let mut escaped = false;
        loop {
            // Eight bytes at a time up to the first '"', '\\' or control byte.
            while let Some(chunk) = b.get(j..j + 8) {
                let x = u64::from_le_bytes(chunk.try_into().ok()?);
                let m = lanes_eq(x, b'"') | lanes_eq(x, b'\\') | lanes_less(x, 0x20);
                if m != 0 {
                    j += (m.trailing_zeros() / 8) as usize;
                    break;
                }
                j += 8;
            }
            loop {
                match *b.get(j)? {
                    b'"' => return Some((j + 1, escaped)),
                    b'\\' => {
                        escaped = true;
                        j = self.escape(j + 1)?;
                        break;
                    }
                    c if c < 0x20 => return None,
                    _ => j += 1,
                }
            }
        }
    }

    /// An escape whose character (after the backslash) is at `j`: the
    /// index just past it.
    fn escape(&self, j: usize) -> Option<usize> {
        match *self.b.get(j)? {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Some(j + 1),
            b'u' => {
                let hi = hex4(self.b, j + 1)?;
                if (0xd800..0xdc00).contains(&hi) {
                    if self.b.get(j + 5) != Some(&b'\\') || self.b.get(j + 6) != Some(&b'u') {
                        return None;
                    }
                    let lo = hex4(self.b, j + 7)?;
                    (0xdc00..0xe000).contains(&lo).then_some(j + 11)
                } else if (0xdc00..0xe000).contains(&hi) {
                    None
                } else {
                    Some(j + 5)
                }
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::skim_below;
    use crate::parse::parse_json;
    use crate::record::is_valid_record;

    /// What the full path decides for raw bytes: decode like the CLI
    /// (invalid UTF-8 becomes U+FFFD), parse, `isValidRecord`, `-l min`.
    fn hidden_by_full_parse(line: &[u8], min: f64) -> bool {
        let text = String::from_utf8_lossy(line);
        match parse_json(&text).filter(|_| text.starts_with('{')) {
            Some(v) if is_valid_record(&v) => crate::js::to_number(v.get("level").unwrap()) < min,
            _ => false,
        }
    }

    const BASE: &str = r#"{"name":"a","hostname":"h","pid":1,"level":20,"x":{"y":[1,"\n",{},-2.5e3,true,false,null]},"msg":"m é","time":"t","v":0}"#;

    #[test]
    fn recognises_plain_hidden_records() {
        let long = "x".repeat(300);
        let cases = [
            BASE.to_owned(),
            BASE.replace(r#""v":0}"#, r#""v":0}  "#),
            BASE.replace(r#""level":20"#, r#""level" : 0"#),
            BASE.replace(r#""msg":"m é""#, &format!(r#""msg":"{long}\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00""#)),
            BASE.replace(r#""msg":"m é""#, r#""msg":"a","msg":"b""#),
            BASE.replace(r#""x":{"#, r#""x":{"\u0079\n":1,"#),
            format!("{{\"level\":10,\"deep\":{}1{},\"v\":0,\"name\":\"a\",\"hostname\":\"h\",\"pid\":1,\"time\":\"t\",\"msg\":\"m\"}}", "[".repeat(127), "]".repeat(127)),
        ];
        for c in &cases {
            assert!(hidden_by_full_parse(c.as_bytes(), 30.0), "{c}");
            assert!(skim_below(c.as_bytes(), 30.0), "{c}");
            // Not below this minimum: left to the full parser.
            assert!(!skim_below(c.as_bytes(), 0.0), "{c}");
        }
    }

    #[test]
    fn never_hides_what_the_full_parse_shows_or_passes_through() {
        let mut cases: Vec<Vec<u8>> = [
            BASE.replace(r#""level":20"#, r#""level":50"#),
            BASE.replace(r#""level":20"#, r#""level":"20""#),
            BASE.replace(r#""level":20"#, r#""level":20.5"#),
            BASE.replace(r#""level":20"#, r#""level":-1"#),
            BASE.replace(r#""level":20"#, r#""level":2e1"#),
            BASE.replace(r#""level":20"#, r#""level":020"#),
            BASE.replace(r#""level":20"#, r#""level":null"#),
            BASE.replace(r#","v":0}"#, "}"),
            BASE.replace(r#""v":0}"#, r#""v":null}"#),
            BASE.replace(r#""msg":"m é""#, r#""msg":"m","msg":null"#),
            BASE.replace(r#""v":0}"#, r#""v":0,"level":50}"#),
            BASE.replace(r#""v":0}"#, r#""v":0,"\u006cevel":50}"#),
            BASE.replace(r#""v":0}"#, r#""\u0076":0}"#),
            BASE.replace(r#""v":0}"#, r#""v":0"#),
            BASE.replace(r#""v":0}"#, r#""v":0} x"#),
            BASE.replace(r#""v":0}"#, r#""v":0,}"#),
            BASE.replace(r#"[1,"#, r#"[1,,"#),
            BASE.replace(r#"[1,"#, r#"[01,"#),
            BASE.replace(r#"[1,"#, r#"[1.,"#),
            BASE.replace(r#""x":{"#, r#""x":{"a":tru,"#),
            BASE.replace(r#""m é""#, "\"m\tx\""),
            BASE.replace(r#""m é""#, r#""\x""#),
            BASE.replace(r#""m é""#, r#""\ud800""#),
            BASE.replace(r#""m é""#, r#""\udc00""#),
            BASE.replace(r#""m é""#, r#""\ud800\u0041""#),
            BASE.replace(r#""m é""#, r#""\u12""#),
            BASE.replace(r#""m é""#, r#""m"#),
            BASE.replace('{', " {"),
            format!("{{\"level\":10,\"deep\":{}1{},\"v\":0,\"name\":\"a\",\"hostname\":\"h\",\"pid\":1,\"time\":\"t\",\"msg\":\"m\"}}", "[".repeat(128), "]".repeat(128)),
            r#"{"level":10}"#.to_owned(),
            "{}".to_owned(),
            "{".to_owned(),
            String::new(),
        ]
        .into_iter()
        .map(String::into_bytes)
        .collect();
        // Invalid UTF-8: inside a string it is still a record (U+FFFD),
        // outside one it is not JSON.
        let mut in_string = BASE.as_bytes().to_vec();
        let at = BASE.find("m é").unwrap() + 1;
        in_string[at] = 0xff;
        in_string.insert(at, 0xe6);
        let mut key = BASE.as_bytes().to_vec();
        key.insert(BASE.find("msg").unwrap(), 0xc3);
        let mut outside = BASE.as_bytes().to_vec();
        outside.insert(BASE.find(r#","msg""#).unwrap(), 0x80);
        let truncated = BASE.as_bytes()[..BASE.find('é').unwrap() + 1].to_vec();
        for (bytes, hidden) in [(&in_string, true), (&key, false), (&outside, false), (&truncated, false)] {
            assert_eq!(hidden_by_full_parse(bytes, 30.0), hidden);
            assert_eq!(skim_below(bytes, 30.0), hidden);
        }
        cases.extend([in_string, key, outside, truncated]);
        for c in &cases {
            for min in [0.0, 30.0, 60.0] {
                if skim_below(c, min) {
                    assert!(hidden_by_full_parse(c, min), "{}", String::from_utf8_lossy(c));
                }
            }
        }
    }
}
