//! JavaScript regular expressions for conditions, on the `regress` crate
//! (ECMAScript syntax and backtracking semantics, matched on UTF-16 like
//! V8, so `\w`, `\b`, `.`, case folding and astral characters behave as in
//! node). Flags `g i m s u`; `d`, `y`, `v` and node-21+ syntax (inline
//! modifiers `(?i:...)`) are refused.

use anyhow::{bail, Result};

/// Deepest nesting of groups/classes accepted in a pattern (keeps the
/// regex compiler's recursion bounded).
const MAX_NESTING: usize = 100;

#[derive(Debug)]
pub struct JsRegex {
    re: regress::Regex,
    /// The pattern as written (`RegExp.prototype.source`).
    pub source: String,
    /// The flags in JavaScript's canonical order (`RegExp.prototype.flags`).
    pub flags: String,
    pub global: bool,
    unicode: bool,
}

/// A match, in UTF-16 code units.
pub struct Found {
    pub start: usize,
    pub end: usize,
    /// Capture groups 1..: `None` when the group did not take part.
    pub groups: Vec<Option<(usize, usize)>>,
    pub named: bool,
}

impl JsRegex {
    /// Compiles a pattern as `new RegExp(source, flags)` would.
    pub fn new(source: &str, flags: &str) -> Result<JsRegex> {
        let mut canonical = String::new();
        for f in "dgimsuvy".chars() {
            match flags.matches(f).count() {
                0 => {}
                1 => canonical.push(f),
                _ => bail!("invalid regular expression flags '{flags}'"),
            }
        }
        if let Some(bad) = flags.chars().find(|c| !"dgimsuvy".contains(*c)) {
            bail!("invalid regular expression flag '{bad}'");
        }
        if let Some(f) = flags.chars().find(|c| "dvy".contains(*c)) {
            bail!("regular expression flag '{f}' is not supported");
        }
        check_syntax(source)?;
        let engine_flags: String = canonical.chars().filter(|c| "imsu".contains(*c)).collect();
        let re = regress::Regex::with_flags(source, engine_flags.as_str())
            .map_err(|e| anyhow::anyhow!("invalid regular expression /{source}/{flags}: {e}"))?;
        Ok(JsRegex {
            re,
            source: if source.is_empty() { "(?:)".into() } else { source.to_owned() },
            global: canonical.contains('g'),
            unicode: canonical.contains('u'),
            flags: canonical,
        })
    }

    /// The first match at or after UTF-16 position `from`.
    pub fn find(&self, text: &[u16], from: usize) -> Option<Found> {
        if from > text.len() {
            return None;
        }
        // Without `u`, JavaScript matches code units (UCS-2); with it, code points.
        let m = if self.unicode {
            self.re.find_from_utf16(text, from).next()?
        } else {
            self.re.find_from_ucs2(text, from).next()?
        };
        let named = m.named_groups().next().is_some();
        Some(Found {
            start: m.start(),
            end: m.end(),
            groups: m.captures.iter().map(|c| c.as_ref().map(|r| (r.start, r.end))).collect(),
            named,
        })
    }

    /// `String(re)`.
    pub fn to_js_string(&self) -> String {
        format!("/{}/{}", self.source, self.flags)
    }
}

/// Refuses what V8 in node 20 rejects but `regress` accepts (inline
/// modifiers `(?i:...)`), and bounds nesting.
fn check_syntax(src: &str) -> Result<()> {
    let chars: Vec<char> = src.chars().collect();
    let (mut depth, mut i, mut in_class) = (0usize, 0, false);
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 1,
            '[' if !in_class => in_class = true,
            ']' if in_class => in_class = false,
            '(' if !in_class => {
                depth += 1;
                if depth > MAX_NESTING {
                    bail!("regular expression nested too deeply");
                }
                if chars.get(i + 1) == Some(&'?') && !matches!(chars.get(i + 2), Some(':' | '=' | '!' | '<')) {
                    bail!("invalid regular expression /{src}/: invalid group");
                }
            }
            ')' if !in_class => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// A string as UTF-16 code units.
pub fn utf16(s: &str) -> Vec<u16> {
    s.encode_utf16().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_match(src: &str, flags: &str, text: &str) -> bool {
        JsRegex::new(src, flags).unwrap().find(&utf16(text), 0).is_some()
    }

    #[test]
    fn javascript_semantics() {
        assert!(!is_match(r"^\w$", "", "é"));
        assert!(!is_match("^.$", "", "😀"));
        assert!(is_match("^.$", "u", "😀"));
        assert!(is_match(r"(a)\1", "", "aa"));
        assert!(is_match(r"a(?=b)", "", "ab"));
        assert!(is_match("a{", "", "a{"));
        assert!(JsRegex::new("(?i:a)", "").is_err());
        assert!(JsRegex::new("a", "gg").is_err());
        assert!(JsRegex::new("a", "y").is_err());
        assert_eq!(JsRegex::new("a", "mgi").unwrap().flags, "gim");
        assert!(JsRegex::new(&"(".repeat(200), "").is_err());
    }
}
