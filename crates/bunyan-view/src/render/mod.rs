//! Output modes of node-bunyan's CLI (`-o long|short|simple|json|json-N|bunyan|inspect`)
//! and the shared helpers they use (ANSI styles, `util.format('%s')`, indentation).

mod http;
mod long;
mod status;

use crate::inspect::{push_inspect, InspectOptions};
use crate::js;
use crate::json::push_json;
use crate::level::{standard_level, upper_name};
use crate::value::{Number, Value};

/// How records are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputMode {
    /// `[time] LEVEL: name/pid on host: msg (extras)` plus indented details.
    Long,
    /// Like long without date, pid and hostname.
    Short,
    /// `LEVEL - msg`.
    Simple,
    /// `JSON.stringify(rec, null, indent)`.
    Json,
    /// `JSON.stringify(rec)` (one line, bunyan's own format).
    Bunyan,
    /// `util.inspect(rec, false, Infinity, true)`.
    Inspect,
}

impl OutputMode {
    /// The mode for a `-o` name (`paul` is node-bunyan's old alias of `long`).
    pub fn from_name(name: &str) -> Option<OutputMode> {
        Some(match name {
            "long" | "paul" => OutputMode::Long,
            "short" => OutputMode::Short,
            "simple" => OutputMode::Simple,
            "json" => OutputMode::Json,
            "bunyan" => OutputMode::Bunyan,
            "inspect" => OutputMode::Inspect,
            _ => return None,
        })
    }
}

/// Time zone of displayed times (`--time utc|local`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeZone {
    Utc,
    Local,
}

/// Rendering options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RenderOptions {
    pub mode: OutputMode,
    /// Indentation of `-o json` (0..=10).
    pub json_indent: usize,
    /// ANSI colors.
    pub color: bool,
    pub time: TimeZone,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions { mode: OutputMode::Long, json_indent: 2, color: false, time: TimeZone::Utc }
    }
}

/// Renders valid records; keeps scratch buffers between records.
pub struct Renderer {
    opts: RenderOptions,
    scratch: long::Scratch,
}

impl Renderer {
    pub fn new(opts: RenderOptions) -> Renderer {
        Renderer { opts, scratch: long::Scratch::default() }
    }

    /// The options in use.
    pub fn options(&self) -> &RenderOptions {
        &self.opts
    }

    /// Appends the rendering of `rec` (a valid bunyan record, see
    /// [`crate::record::is_valid_record`]) to `out`.
    pub fn render(&mut self, out: &mut Vec<u8>, rec: &Value) {
        match self.opts.mode {
            OutputMode::Long | OutputMode::Short => {
                if let Some(obj) = rec.as_object() {
                    long::render(out, obj, &self.opts, &mut self.scratch);
                }
            }
            OutputMode::Json => {
                push_json(out, rec, self.opts.json_indent);
                out.push(b'\n');
            }
            OutputMode::Bunyan => {
                push_json(out, rec, 0);
                out.push(b'\n');
            }
            OutputMode::Inspect => {
                push_inspect(out, rec, &InspectOptions { depth: None, colors: true });
                out.push(b'\n');
            }
            OutputMode::Simple => {
                let level = rec.get("level").unwrap_or(&Value::Null);
                match standard_level(level) {
                    Some(l) => out.extend_from_slice(upper_name(l).as_bytes()),
                    None => {
                        out.extend_from_slice(b"LVL");
                        js::push_to_string(out, level);
                    }
                }
                out.extend_from_slice(b" - ");
                push_format_s(out, rec.get("msg").unwrap_or(&Value::Null));
                out.push(b'\n');
            }
        }
    }
}

/// ANSI codes of node-bunyan's `colors` table.
fn color_codes(color: &str) -> Option<(u8, u8)> {
    Some(match color {
        "bold" => (1, 22),
        "italic" => (3, 23),
        "underline" => (4, 24),
        "inverse" => (7, 27),
        "white" => (37, 39),
        "grey" => (90, 39),
        "black" => (30, 39),
        "blue" => (34, 39),
        "cyan" => (36, 39),
        "green" => (32, 39),
        "magenta" => (35, 39),
        "red" => (31, 39),
        "yellow" => (33, 39),
        _ => return None,
    })
}

/// Appends `\x1b[<a>m` ... `\x1b[<b>m` around what `body` writes.
pub(crate) fn styled(out: &mut Vec<u8>, color: &str, body: impl FnOnce(&mut Vec<u8>)) {
    let Some((a, b)) = color_codes(color) else {
        body(out);
        return;
    };
    let mark = out.len();
    out.extend_from_slice(b"\x1b[");
    js::push_u64(out, a.into());
    out.push(b'm');
    let start = out.len();
    body(out);
    if out.len() == start {
        // stylizeWithColor('') returns '' (no codes).
        out.truncate(mark);
        return;
    }
    out.extend_from_slice(b"\x1b[");
    js::push_u64(out, b.into());
    out.push(b'm');
}

/// Appends what `util.format('%s', v)` prints for `v`.
pub fn push_format_s(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::String(s) => out.extend_from_slice(s.as_bytes()),
        Value::Number(Number::F(f)) if *f == 0.0 && f.is_sign_negative() => out.extend_from_slice(b"-0"),
        Value::Array(_) | Value::Object(_) => push_inspect(out, v, &InspectOptions { depth: Some(0), colors: false }),
        _ => js::push_to_string(out, v),
    }
}

/// Appends `'    ' + s.split(/\r?\n/).join('\n    ')`.
pub(crate) fn push_indented(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(b"    ");
    push_indented_tail(out, s);
}

/// [`push_indented`] without the leading four spaces (already written).
pub(crate) fn push_indented_tail(out: &mut Vec<u8>, s: &[u8]) {
    let mut start = 0;
    while let Some(p) = memchr::memchr(b'\n', &s[start..]) {
        let nl = start + p;
        let end = if nl > start && s[nl - 1] == b'\r' { nl - 1 } else { nl };
        out.extend_from_slice(&s[start..end]);
        out.extend_from_slice(b"\n    ");
        start = nl + 1;
    }
    out.extend_from_slice(&s[start..]);
}
