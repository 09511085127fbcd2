//! Tokens of the `-c CONDITION` language: a JavaScript subset (numbers,
//! strings, regex literals, identifiers, punctuators).

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

const PUNCTS: [&str; 27] = [
    "===", "!==", "...", "==", "!=", "<=", ">=", "&&", "||", "??", "?.", "(", ")", "[", "]", "{",
    "}", ".", ",", ";", "?", ":", "!", "<", ">", "+", "-",
];
const PUNCTS2: [&str; 3] = ["*", "/", "%"];

/// Whether a `/` after this token starts a regex (no operand precedes it).
fn regex_allowed(prev: Option<&Tok>) -> bool {
    match prev {
        None => true,
        Some(Tok::Num(_) | Tok::Str(_) | Tok::Regex(..)) => false,
        Some(Tok::Ident(id)) => matches!(id.as_str(), "return" | "typeof" | "in" | "else"),
        Some(Tok::Punct(p)) => !matches!(*p, ")" | "]" | "}"),
    }
}

/// Splits a condition into tokens.
pub fn tokenize(src: &str) -> Result<Vec<Tok>> {
    let chars: Vec<char> = src.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let start = i;
            if c == '0' && matches!(chars.get(i + 1), Some('x' | 'X' | 'o' | 'O' | 'b' | 'B')) {
                i += 2;
                while i < chars.len() && chars[i].is_ascii_alphanumeric() {
                    i += 1;
                }
            } else {
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
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
                    .is_some_and(|c| c.is_alphanumeric() || *c == '_' || *c == '$')
            {
                bail!("invalid number {text:?}");
            }
            toks.push(Tok::Num(n));
            continue;
        }
        if c.is_alphabetic() || c == '_' || c == '$' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            toks.push(Tok::Ident(chars[start..i].iter().collect()));
            continue;
        }
        if c == '"' || c == '\'' || c == '`' {
            let (s, next) = string_literal(&chars, i)?;
            toks.push(Tok::Str(s));
            i = next;
            continue;
        }
        if c == '/' && regex_allowed(toks.last()) {
            let (re, flags, next) = regex_literal(&chars, i)?;
            toks.push(Tok::Regex(re, flags));
            i = next;
            continue;
        }
        let rest: String = chars[i..chars.len().min(i + 3)].iter().collect();
        if let Some(p) = PUNCTS
            .iter()
            .chain(PUNCTS2.iter())
            .find(|p| rest.starts_with(**p))
        {
            // `?.` followed by a digit is `? .5`, not optional chaining.
            if *p == "?." && chars.get(i + 2).is_some_and(|d| d.is_ascii_digit()) {
                toks.push(Tok::Punct("?"));
                i += 1;
                continue;
            }
            toks.push(Tok::Punct(p));
            i += p.chars().count();
            continue;
        }
        bail!("unexpected character {c:?}");
    }
    Ok(toks)
}

fn hex(chars: &[char], i: usize, n: usize) -> Result<u32> {
    let s: String = chars.get(i..i + n).unwrap_or(&[]).iter().collect();
    if s.len() != n {
        bail!("bad escape in string");
    }
    u32::from_str_radix(&s, 16).map_err(|_| anyhow::anyhow!("bad escape in string"))
}

fn string_literal(chars: &[char], start: usize) -> Result<(String, usize)> {
    let q = chars[start];
    let mut s = String::new();
    let mut i = start + 1;
    let mut pending_high: Option<u32> = None;
    while i < chars.len() {
        let c = chars[i];
        if c == q {
            return Ok((s, i + 1));
        }
        if q == '`' && c == '$' && chars.get(i + 1) == Some(&'{') {
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
                'x' => {
                    code = Some(hex(chars, i + 1, 2)?);
                    i += 2;
                }
                'u' if chars.get(i + 1) == Some(&'{') => {
                    let end = chars[i..].iter().position(|&c| c == '}').map(|p| p + i);
                    let Some(end) = end else {
                        bail!("bad escape in string")
                    };
                    code = Some(hex(chars, i + 2, end - i - 2)?);
                    i = end;
                }
                'u' => {
                    code = Some(hex(chars, i + 1, 4)?);
                    i += 4;
                }
                '\n' => {}
                other => s.push(other),
            }
            if let Some(cp) = code {
                if (0xd800..0xdc00).contains(&cp) {
                    pending_high = Some(cp);
                } else if let (Some(h), true) =
                    (pending_high.take(), (0xdc00..0xe000).contains(&cp))
                {
                    let full = 0x10000 + ((h - 0xd800) << 10) + (cp - 0xdc00);
                    s.push(char::from_u32(full).unwrap_or('\u{fffd}'));
                } else {
                    s.push(char::from_u32(cp).unwrap_or('\u{fffd}'));
                }
            }
            i += 1;
            continue;
        }
        if (c == '\n' || c == '\r') && q != '`' {
            bail!("unterminated string literal");
        }
        if pending_high.take().is_some() {
            s.push('\u{fffd}');
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
                while i < chars.len() && chars[i].is_ascii_alphabetic() {
                    i += 1;
                }
                let flags: String = chars[fstart..i].iter().collect();
                if src.is_empty() {
                    bail!("empty regular expression");
                }
                return Ok((src, flags, i));
            }
            '\n' | '\r' => break,
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

    #[test]
    fn regex_versus_division() {
        let t = tokenize("this.a / 2 > 1 && /x\\/y/i.test(this.msg)").unwrap();
        assert!(t.contains(&Tok::Punct("/")));
        assert!(t.contains(&Tok::Regex("x\\/y".into(), "i".into())));
    }

    #[test]
    fn strings_and_numbers() {
        let t = tokenize(r#"'a\'b' "\u00e9\x41" 0x10 1.5e3 .5"#).unwrap();
        assert_eq!(
            t,
            vec![
                Tok::Str("a'b".into()),
                Tok::Str("éA".into()),
                Tok::Num(16.0),
                Tok::Num(1500.0),
                Tok::Num(0.5)
            ]
        );
        assert!(tokenize("'open").is_err());
        assert!(tokenize("1x").is_err());
    }
}
