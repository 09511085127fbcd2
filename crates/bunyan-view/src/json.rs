//! `JSON.stringify(value, null, indent)` for parsed [`Value`]s, byte for byte
//! as node writes it (key order, escapes, number formatting, indentation).

use crate::js::push_number;
use crate::value::Value;

/// Appends `JSON.stringify(v, null, indent)`; `indent` is clamped to 10 like JS.
pub fn push_json(out: &mut Vec<u8>, v: &Value, indent: usize) {
    write_value(out, v, indent.min(10), 0);
}

/// `JSON.stringify(v, null, indent)` as a `String`.
pub fn to_json(v: &Value, indent: usize) -> String {
    let mut out = Vec::new();
    push_json(&mut out, v, indent);
    String::from_utf8(out).unwrap_or_default()
}

fn newline(out: &mut Vec<u8>, indent: usize, depth: usize) {
    out.push(b'\n');
    out.extend(std::iter::repeat_n(b' ', indent * depth));
}

fn write_value(out: &mut Vec<u8>, v: &Value, indent: usize, depth: usize) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => {
            let f = n.as_f64();
            if f.is_finite() {
                push_number(out, *n)
            } else {
                out.extend_from_slice(b"null")
            }
        }
        Value::String(s) => push_json_string(out, s),
        Value::Array(a) => {
            if a.is_empty() {
                out.extend_from_slice(b"[]");
                return;
            }
            out.push(b'[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                if indent > 0 {
                    newline(out, indent, depth + 1);
                }
                write_value(out, e, indent, depth + 1);
            }
            if indent > 0 {
                newline(out, indent, depth);
            }
            out.push(b']');
        }
        Value::Object(o) => {
            if o.is_empty() {
                out.extend_from_slice(b"{}");
                return;
            }
            out.push(b'{');
            for (i, (k, e)) in o.iter_js().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                if indent > 0 {
                    newline(out, indent, depth + 1);
                }
                push_json_string(out, k);
                out.push(b':');
                if indent > 0 {
                    out.push(b' ');
                }
                write_value(out, e, indent, depth + 1);
            }
            if indent > 0 {
                newline(out, indent, depth);
            }
            out.push(b'}');
        }
    }
}

/// Appends a string quoted and escaped like `JSON.stringify` does.
pub fn push_json_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let b = s.as_bytes();
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&b[start..i]);
        if esc.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(c >> 4) as usize]);
            out.push(HEX[(c & 0xf) as usize]);
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&b[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stringify_matches_node() {
        let v = Value::parse(r#"{"a":[1,{"b":null}],"c":{},"d":[],"e":"x\u0001\"y","f":1.50}"#).unwrap();
        assert_eq!(to_json(&v, 0), r#"{"a":[1,{"b":null}],"c":{},"d":[],"e":"x\u0001\"y","f":1.5}"#);
        assert_eq!(
            to_json(&v, 2),
            "{\n  \"a\": [\n    1,\n    {\n      \"b\": null\n    }\n  ],\n  \"c\": {},\n  \"d\": [],\n  \"e\": \"x\\u0001\\\"y\",\n  \"f\": 1.5\n}"
        );
    }
}
