//! Tokens of the `-c CONDITION` language: a JavaScript subset (numbers,
//! strings, regex literals, identifiers, punctuators). Iterative; text that
//! JavaScript would read differently in sloppy mode (legacy octal numbers
//! and escapes, `<!--` comments, `++`/`--`) is refused here rather than
//! read another way.

use anyhow::{bail, Result};

#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    Num(f64),
    Str(String),
    /// `/source/flags`.
    Regex(String, String),
    Ident(String),
    Punct(&'static str),
}

/// A token and whether a line terminator precedes it (for `return`'s
/// automatic semicolon: `return\nx` returns undefined in JavaScript).
#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub newline_before: bool,
}

/// Longest first. `++`, `--`, `**` and `=>` are recognised only to be
/// refused by the parser (reading `--x` as `-(-x)` would be wrong).
const PUNCTS: [&str; 33] = [
    "===", "!==", "...", "**", "=>", "++", "--", "==", "!=", "<=", ">=", "&&", "||", "??", "?.", "(", ")", "[", "]",
    "{", "}", ".", ",", ";", "?", ":", "!", "<", ">", "+", "-", "*", "%",
];

/// Whether a `/` after this token starts a regex (no operand precedes it).
fn regex_allowed(prev: Option<&Token>) -> bool {
    match prev.map(|t| &t.tok) {
        None => true,
        Some(Tok::Num(_) | Tok::Str(_) | Tok::Regex(..)) => false,
        Some(Tok::Ident(id)) => matches!(id.as_str(), "return" | "typeof" | "in" | "else"),
        Some(Tok::Punct(p)) => !matches!(*p, ")" | "]" | "}"),
    }
}

pub fn is_line_terminator(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}')
}

/// Splits a condition into tokens.
pub fn tokenize(src: &str) -> Result<Vec<Token>> {
    let chars: Vec<char> = src.chars().collect();
    let mut toks: Vec<Token> = Vec::new();
    let mut i = 0;
    let mut newline = false;
    while i < chars.len() {
        let c = chars[i];
        if crate::js::is_js_whitespace(c) {
            newline |= is_line_terminator(c);
            i += 1;
            continue;
        }
        let tok;
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) {
            let start = i;
            if c == '0' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()) {
                bail!("numbers with a leading zero (legacy octal in JavaScript) are not supported");
            }
            if c == '0' && matches!(chars.get(i + 1), Some('x' | 'X' | 'o' | 'O' | 'b' | 'B')) {
                i += 2;
                while i < chars.len() && chars[i].is_ascii_alphanumeric() {
                    i += 1;
                }
            } else {
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
                if chars.get(i) == Some(&'.') {
                    i += 1;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                }
                if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                    i += 1;
                    if i < chars.len() && (chars[i] == '+' || chars[i] == '-') {
                        i += 1;
                    }
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let text: String = chars[start..i].iter().collect();
            let n = crate::js::string_to_number(&text);
            if n.is_nan()
                || chars
                    .get(i)
                    .is_some_and(|c| c.is_alphanumeric() || *c == '_' || *c == '$' || *c == '.' || *c == '\\')
            {
                bail!("invalid number {text:?}");
            }
            tok = Tok::Num(n);
        } else if c.is_alphabetic() || c == '_' || c == '$' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$') {
                i += 1;
            }
            if chars.get(i) == Some(&'\\') {
                bail!("escapes in identifiers are not supported");
            }
            tok = Tok::Ident(chars[start..i].iter().collect());
        } else if c == '"' || c == '\'' || c == '`' {
            let (s, next) = string_literal(&chars, i)?;
            tok = Tok::Str(s);
            i = next;
        } else if c == '/' && regex_allowed(toks.last()) {
            let (re, flags, next) = regex_literal(&chars, i)?;
            tok = Tok::Regex(re, flags);
            i = next;
        } else if c == '/' && matches!(chars.get(i + 1), Some('/' | '*')) {
            bail!("comments are not supported");
        } else if c == '<' && chars[i..].starts_with(&['<', '!', '-', '-']) {
            bail!("'<!--' (an HTML-like comment in JavaScript) is not supported");
        } else {
            let rest: String = chars[i..chars.len().min(i + 3)].iter().collect();
            let found = PUNCTS.iter().chain(&["/"]).find(|p| rest.starts_with(**p));
            match found {
                // `?.` followed by a digit is `? .5`, not optional chaining.
                Some(&"?.") if chars.get(i + 2).is_some_and(|d| d.is_ascii_digit()) => {
                    tok = Tok::Punct("?");
                    i += 1;
                }
                Some(p) => {
                    tok = Tok::Punct(p);
                    i += p.chars().count();
                }
                None => bail!("unexpected character {c:?}"),
            }
            toks.push(Token { tok, newline_before: newline });
            newline = false;
            continue;
        }
        toks.push(Token { tok, newline_before: newline });
        newline = false;
    }
    Ok(toks)
}

fn hex(chars: &[char], i: usize, n: usize) -> Result<u32> {
    let s: String = chars.get(i..i + n).unwrap_or(&[]).iter().collect();
    if s.chars().count() != n || n == 0 || !s.chars().all(|c| c.is_ascii_hexdigit()) {
        bail!("bad escape in string");
    }
    u32::from_str_radix(&s, 16).map_err(|_| anyhow::anyhow!("bad escape in string"))
}

fn string_literal(chars: &[char], start: usize) -> Result<(String, usize)> {
    let q = chars[start];
    let template = q == '`';
    let mut s = String::new();
    let mut i = start + 1;
    let mut pending_high: Option<u32> = None;
    let lone = || anyhow::anyhow!("lone surrogate escapes (\\uD800-\\uDFFF) are not supported");
    while i < chars.len() {
        let c = chars[i];
        if c == q {
            if pending_high.is_some() {
                return Err(lone());
            }
            return Ok((s, i + 1));
        }
        if template && c == '$' && chars.get(i + 1) == Some(&'{') {
            bail!("template substitutions are not supported");
        }
        if c == '\\' {
            i += 1;
            let Some(&e) = chars.get(i) else { break };
            let mut code: Option<u32> = None;
            match e {
                'n' => s.push('\n'),
                't' => s.push('\t'),
                'r' => s.push('\r'),
                'b' => s.push('\u{8}'),
                'f' => s.push('\u{c}'),
                'v' => s.push('\u{b}'),
                '0' if !chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()) => s.push('\0'),
                '0'..='9' => bail!("octal escapes (\\1, \\01, ...) are not supported"),
                'x' => {
                    code = Some(hex(chars, i + 1, 2)?);
                    i += 2;
                }
                'u' if chars.get(i + 1) == Some(&'{') => {
                    let end = chars[i..].iter().position(|&c| c == '}').map(|p| p + i);
                    let Some(end) = end else { bail!("bad escape in string") };
                    let cp = hex(chars, i + 2, end - i - 2)?;
                    if cp > 0x10ffff {
                        bail!("bad escape in string");
                    }
                    code = Some(cp);
                    i = end;
                }
                'u' => {
                    code = Some(hex(chars, i + 1, 4)?);
                    i += 4;
                }
                '\r' => {
                    // Line continuation (CRLF counts as one terminator).
                    if chars.get(i + 1) == Some(&'\n') {
                        i += 1;
                    }
                }
                '\n' | '\u{2028}' | '\u{2029}' => {}
                other => s.push(other),
            }
            match (pending_high.take(), code) {
                (Some(h), Some(cp)) if (0xdc00..0xe000).contains(&cp) => {
                    let full = 0x10000 + ((h - 0xd800) << 10) + (cp - 0xdc00);
                    s.push(char::from_u32(full).ok_or_else(lone)?);
                }
                (Some(_), _) => return Err(lone()),
                (None, Some(cp)) if (0xd800..0xdc00).contains(&cp) => pending_high = Some(cp),
                (None, Some(cp)) => s.push(char::from_u32(cp).ok_or_else(lone)?),
                (None, None) => {}
            }
            i += 1;
            continue;
        }
        if pending_high.is_some() {
            return Err(lone());
        }
        if c == '\n' || c == '\r' {
            if !template {
                bail!("unterminated string literal");
            }
            // Template literals read CR and CRLF as LF.
            if c == '\r' && chars.get(i + 1) == Some(&'\n') {
                i += 1;
            }
            s.push('\n');
            i += 1;
            continue;
        }
        s.push(c);
        i += 1;
    }
    bail!("unterminated string literal")
}

fn regex_literal(chars: &[char], start: usize) -> Result<(String, String, usize)> {
    let mut i = start + 1;
    let mut src = String::new();
    let mut in_class = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                let Some(&n) = chars.get(i + 1) else { break };
                if is_line_terminator(n) {
                    break;
                }
                src.push('\\');
                src.push(n);
                i += 2;
                continue;
            }
            '[' => in_class = true,
            ']' => in_class = false,
            '/' if !in_class => {
                i += 1;
                let fstart = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$') {
                    i += 1;
                }
                let flags: String = chars[fstart..i].iter().collect();
                if src.is_empty() {
                    bail!("empty regular expression");
                }
                return Ok((src, flags, i));
            }
            c if is_line_terminator(c) => break,
            _ => {}
        }
        src.push(c);
        i += 1;
    }
    bail!("unterminated regular expression literal")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        tokenize(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn regex_versus_division() {
        let t = toks("this.a / 2 > 1 && /x\\/y/i.test(this.msg)");
        assert!(t.contains(&Tok::Punct("/")));
        assert!(t.contains(&Tok::Regex("x\\/y".into(), "i".into())));
    }

    #[test]
    fn strings_and_numbers() {
        let t = toks(r#"'a\'b' "\u00e9\x41" 0x10 1.5e3 .5 "\ud83d\ude00""#);
        assert_eq!(
            t,
            vec![
                Tok::Str("a'b".into()),
                Tok::Str("éA".into()),
                Tok::Num(16.0),
                Tok::Num(1500.0),
                Tok::Num(0.5),
                Tok::Str("😀".into()),
            ]
        );
        assert!(tokenize("'open").is_err());
        assert!(tokenize("1x").is_err());
    }

    #[test]
    fn sloppy_mode_readings_are_refused() {
        // JavaScript reads these as 8, "\x01", a comment, a lone surrogate.
        for src in ["010", "'\\1'", "'\\01'", "this.a <!-- 2", "'\\ud800'", "'\\ud800x'", "1 // c", "1 /* c */"] {
            assert!(tokenize(src).is_err(), "{src}");
        }
        assert_eq!(toks("--"), vec![Tok::Punct("--")]);
        let t = tokenize("return\nthis").unwrap();
        assert!(t[1].newline_before && !t[0].newline_before);
        assert_eq!(toks("`a\r\nb`"), vec![Tok::Str("a\nb".into())]);
    }
}
