//! node's `util.inspect` for JSON values (no classes, getters or cycles can
//! occur), ported from node 20's lib/internal/util/inspect.js: quoting and
//! escaping of strings, `compact: 3` line breaking at `breakLength` 80,
//! grouping of long arrays into columns, `maxArrayLength` 100,
//! `maxStringLength` 10000, depth limits and colors. Used by `-o inspect`
//! and by `util.format('%s', object)`.

use crate::js;
use crate::value::{Number, Value};

/// `util.inspect` options that matter for JSON values.
#[derive(Clone, Copy, Debug)]
pub struct InspectOptions {
    /// `None` is `Infinity`.
    pub depth: Option<usize>,
    pub colors: bool,
}

const BREAK_LENGTH: usize = 80;
const COMPACT: usize = 3;
const MAX_ARRAY_LENGTH: usize = 100;
const MAX_STRING_LENGTH: usize = 10_000;
const MIN_LINE_LENGTH: usize = 16;

struct Ctx {
    opts: InspectOptions,
    indentation_lvl: usize,
    current_depth: usize,
}

/// Appends `util.inspect(v, {depth, colors})`.
pub fn push_inspect(out: &mut Vec<u8>, v: &Value, opts: &InspectOptions) {
    let mut ctx = Ctx { opts: *opts, indentation_lvl: 0, current_depth: 0 };
    out.extend_from_slice(format_value(&mut ctx, v, 0).as_bytes());
}

fn stylize(ctx: &Ctx, s: &str, style: &str) -> String {
    if !ctx.opts.colors {
        return s.to_owned();
    }
    let (a, b) = match style {
        "special" => (36, 39),
        "number" | "boolean" => (33, 39),
        "undefined" => (90, 39),
        "null" => (1, 22),
        "string" => (32, 39),
        _ => return s.to_owned(),
    };
    format!("\x1b[{a}m{s}\x1b[{b}m")
}

fn format_value(ctx: &mut Ctx, v: &Value, recurse_times: usize) -> String {
    match v {
        Value::Null => stylize(ctx, "null", "null"),
        Value::Bool(b) => stylize(ctx, if *b { "true" } else { "false" }, "boolean"),
        Value::Number(n) => {
            let mut o = Vec::new();
            match n {
                Number::F(f) if *f == 0.0 && f.is_sign_negative() => o.extend_from_slice(b"-0"),
                _ => js::push_number(&mut o, *n),
            }
            stylize(ctx, &String::from_utf8(o).unwrap_or_default(), "number")
        }
        Value::String(s) => format_string(ctx, s),
        Value::Array(_) | Value::Object(_) => format_raw(ctx, v, recurse_times),
    }
}

fn format_string(ctx: &Ctx, value: &str) -> String {
    let units: Vec<u16> = value.encode_utf16().collect();
    let (value, trailer) = if units.len() > MAX_STRING_LENGTH {
        let remaining = units.len() - MAX_STRING_LENGTH;
        let cut = String::from_utf16_lossy(&units[..MAX_STRING_LENGTH]);
        (cut, format!("... {remaining} more character{}", if remaining > 1 { "s" } else { "" }))
    } else {
        (value.to_owned(), String::new())
    };
    let len = js::utf16_len(&value);
    if len > MIN_LINE_LENGTH && len as isize > BREAK_LENGTH as isize - ctx.indentation_lvl as isize - 4 {
        let sep = format!(" +\n{}", " ".repeat(ctx.indentation_lvl + 2));
        let parts: Vec<String> =
            value.split_inclusive('\n').map(|line| stylize(ctx, &str_escape(line), "string")).collect();
        return parts.join(&sep) + &trailer;
    }
    stylize(ctx, &str_escape(&value), "string") + &trailer
}

/// node's `strEscape`: picks ' or " or ` quotes and escapes control characters.
pub fn str_escape(s: &str) -> String {
    let mut quote = '\'';
    if s.contains('\'') {
        if !s.contains('"') {
            quote = '"';
        } else if !s.contains('`') && !s.contains("${") {
            quote = '`';
        }
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        let code = c as u32;
        match c {
            '\'' if quote == '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            _ if code < 0x20 || (0x7f..=0x9f).contains(&code) => out.push_str(&format!("\\x{code:02X}")),
            _ => out.push(c),
        }
    }
    out.push(quote);
    out
}

fn is_identifier(key: &str) -> bool {
    let b = key.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

fn format_raw(ctx: &mut Ctx, v: &Value, recurse_times: usize) -> String {
    let is_array = matches!(v, Value::Array(_));
    match v {
        Value::Array(a) if a.is_empty() => return "[]".into(),
        Value::Object(o) if o.is_empty() => return "{}".into(),
        _ => {}
    }
    if ctx.opts.depth.is_some_and(|d| recurse_times > d) {
        return stylize(ctx, if is_array { "[Array]" } else { "[Object]" }, "special");
    }
    let recurse_times = recurse_times + 1;
    ctx.current_depth = recurse_times;
    let mut output = Vec::new();
    match v {
        Value::Array(a) => {
            let len = a.len().min(MAX_ARRAY_LENGTH);
            for e in &a[..len] {
                ctx.indentation_lvl += 2;
                output.push(format_value(ctx, e, recurse_times));
                ctx.indentation_lvl -= 2;
            }
            let remaining = a.len() - len;
            if remaining > 0 {
                output.push(format!("... {remaining} more item{}", if remaining > 1 { "s" } else { "" }));
            }
        }
        Value::Object(o) => {
            for (k, e) in o.iter_js() {
                ctx.indentation_lvl += 2;
                let s = format_value(ctx, e, recurse_times);
                ctx.indentation_lvl -= 2;
                let name = if k == "__proto__" {
                    "['__proto__']".to_owned()
                } else if is_identifier(k) {
                    k.to_owned()
                } else {
                    stylize(ctx, &str_escape(k), "string")
                };
                output.push(format!("{name}: {s}"));
            }
        }
        _ => unreachable!("format_raw is only called for arrays and objects"),
    }
    let braces = if is_array { ("[", "]") } else { ("{", "}") };
    reduce_to_single_string(ctx, output, braces, is_array, recurse_times, v)
}

/// Display width as node measures it (colors removed when colors are on).
fn width(ctx: &Ctx, s: &str) -> usize {
    let s = if ctx.opts.colors { remove_colors(s) } else { s.to_owned() };
    s.chars().filter(|c| *c as u32 >= 32).count()
}

fn js_len(ctx: &Ctx, s: &str) -> usize {
    if ctx.opts.colors {
        js::utf16_len(&remove_colors(s))
    } else {
        js::utf16_len(s)
    }
}

fn remove_colors(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\x1b' && it.peek() == Some(&'[') {
            it.next();
            while let Some(&d) = it.peek() {
                it.next();
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn is_below_break_length(ctx: &Ctx, output: &[String], start: usize) -> bool {
    let mut total = output.len() + start;
    if total + output.len() > BREAK_LENGTH {
        return false;
    }
    for o in output {
        total += js_len(ctx, o);
        if total > BREAK_LENGTH {
            return false;
        }
    }
    true
}

fn reduce_to_single_string(
    ctx: &mut Ctx,
    mut output: Vec<String>,
    braces: (&str, &str),
    is_array: bool,
    recurse_times: usize,
    value: &Value,
) -> String {
    let entries = output.len();
    if is_array && entries > 6 {
        output = group_array_elements(ctx, output, value);
    }
    if ctx.current_depth - recurse_times < COMPACT && entries == output.len() {
        let start = output.len() + ctx.indentation_lvl + braces.0.len() + 10;
        if is_below_break_length(ctx, &output, start) {
            let joined = output.join(", ");
            if !joined.contains('\n') {
                return format!("{} {} {}", braces.0, joined, braces.1);
            }
        }
    }
    let indentation = format!("\n{}", " ".repeat(ctx.indentation_lvl));
    format!("{}{indentation}  {}{indentation}{}", braces.0, output.join(&format!(",{indentation}  ")), braces.1)
}

fn group_array_elements(ctx: &Ctx, output: Vec<String>, value: &Value) -> Vec<String> {
    let mut total_length = 0usize;
    let mut max_length = 0usize;
    let mut output_length = output.len();
    if MAX_ARRAY_LENGTH < output.len() {
        output_length -= 1;
    }
    let separator_space = 2;
    let data_len: Vec<usize> = output[..output_length].iter().map(|o| width(ctx, o)).collect();
    for &len in &data_len {
        total_length += len + separator_space;
        max_length = max_length.max(len);
    }
    let actual_max = max_length + separator_space;
    if actual_max * 3 + ctx.indentation_lvl < BREAK_LENGTH
        && (total_length as f64 / actual_max as f64 > 5.0 || max_length <= 6)
    {
        let approx_char_heights = 2.5;
        let average_bias = (actual_max as f64 - total_length as f64 / output.len() as f64).sqrt();
        let biased_max = (actual_max as f64 - 3.0 - average_bias).max(1.0);
        let columns = [
            ((approx_char_heights * biased_max * output_length as f64).sqrt() / biased_max).round(),
            ((BREAK_LENGTH - ctx.indentation_lvl) as f64 / actual_max as f64).floor(),
            (COMPACT * 4) as f64,
            15.0,
        ]
        .into_iter()
        .fold(f64::INFINITY, f64::min);
        if columns <= 1.0 || columns.is_nan() {
            return output;
        }
        let columns = columns as usize;
        let mut max_line_length = Vec::with_capacity(columns);
        for i in 0..columns {
            let mut line_max = 0;
            let mut j = i;
            while j < output.len() {
                if j < data_len.len() && data_len[j] > line_max {
                    line_max = data_len[j];
                }
                j += columns;
            }
            max_line_length.push(line_max + separator_space);
        }
        let Value::Array(items) = value else {
            return output;
        };
        let pad_start = (0..output.len()).all(|i| matches!(items.get(i), Some(Value::Number(_))));
        let mut tmp = Vec::new();
        let mut i = 0;
        while i < output_length {
            let max = (i + columns).min(output_length);
            let mut line = String::new();
            let mut j = i;
            while j < max - 1 {
                let cell = format!("{}, ", output[j]);
                let padding = max_line_length[j - i] + js::utf16_len(&output[j]) - data_len[j];
                line.push_str(&pad(&cell, padding, pad_start));
                j += 1;
            }
            if pad_start {
                let padding = max_line_length[j - i] + js::utf16_len(&output[j]) - data_len[j] - separator_space;
                line.push_str(&pad(&output[j], padding, true));
            } else {
                line.push_str(&output[j]);
            }
            tmp.push(line);
            i += columns;
        }
        if MAX_ARRAY_LENGTH < output.len() {
            tmp.push(output[output_length].clone());
        }
        return tmp;
    }
    output
}

fn pad(s: &str, target: usize, start: bool) -> String {
    let len = js::utf16_len(s);
    if len >= target {
        return s.to_owned();
    }
    let fill = " ".repeat(target - len);
    if start {
        fill + s
    } else {
        s.to_owned() + &fill
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insp(json: &str) -> String {
        let v = Value::parse(json).unwrap();
        let mut out = Vec::new();
        push_inspect(&mut out, &v, &InspectOptions { depth: None, colors: false });
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn small_objects_stay_on_one_line() {
        assert_eq!(
            insp(r#"{"a":1,"b":"x'y","c":[1,2],"d e":null}"#),
            r#"{ a: 1, b: "x'y", c: [ 1, 2 ], 'd e': null }"#
        );
    }

    #[test]
    fn numbers_group_into_columns() {
        let arr: Vec<String> = (0..30).map(|i| i.to_string()).collect();
        let got = insp(&format!("[{}]", arr.join(",")));
        assert!(got.starts_with("[\n   0,  1,  2,"), "{got}");
    }
}
