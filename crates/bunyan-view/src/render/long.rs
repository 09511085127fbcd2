//! `-o long` and `-o short`: node-bunyan's `emitRecord` for OM_LONG/OM_SHORT,
//! step for step (which fields are consumed, how leftovers become
//! `key=value` extras or indented details, `req_id`, `src`, colors).

use super::http::{render_client_req, render_req, render_res};
use super::{push_format_s, push_indented, push_indented_tail, styled, OutputMode, RenderOptions, TimeZone};
use crate::js;
use crate::json::{push_json, push_json_string};
use crate::level::{standard_level, upper_name};
use crate::time::{push_time, TimeStyle};
use crate::value::{Object, Value};
use std::borrow::Cow;

/// Buffers reused from record to record.
#[derive(Default)]
pub(super) struct Scratch {
    extras: Vec<u8>,
    details: Vec<u8>,
    tmp: Vec<u8>,
}

/// The record's fields with a place of their own in long output, found in
/// one pass; every other field (in JS order) goes to `left`.
#[derive(Default)]
struct Known<'r, 'a> {
    time: Option<&'r Value<'a>>,
    level: Option<&'r Value<'a>>,
    name: Option<&'r Value<'a>>,
    component: Option<&'r Value<'a>>,
    pid: Option<&'r Value<'a>>,
    hostname: Option<&'r Value<'a>>,
    src: Option<&'r Value<'a>>,
    req_id: Option<&'r Value<'a>>,
    msg: Option<&'r Value<'a>>,
    req: Option<&'r Object<'a>>,
    client_req: Option<&'r Object<'a>>,
    res: Option<&'r Object<'a>>,
    client_res: Option<&'r Object<'a>>,
    err: Option<&'r Value<'a>>,
}

impl<'r, 'a> Known<'r, 'a> {
    fn split(rec: &'r Object<'a>) -> (Known<'r, 'a>, Leftovers<'r, 'a>) {
        let mut k = Known::default();
        let mut left = Leftovers { entries: Vec::with_capacity(rec.len()) };
        for (key, v) in rec.iter_js() {
            let slot = match key {
                "v" => continue,
                "time" => &mut k.time,
                "level" => &mut k.level,
                "name" => &mut k.name,
                "component" => &mut k.component,
                "pid" => &mut k.pid,
                "hostname" => &mut k.hostname,
                "src" => &mut k.src,
                "req_id" => &mut k.req_id,
                "msg" => &mut k.msg,
                "req" | "client_req" | "res" | "client_res" => {
                    // Only objects get their own rendering (arrays were turned into objects).
                    if let Value::Object(o) = v {
                        match key {
                            "req" => k.req = Some(o),
                            "client_req" => k.client_req = Some(o),
                            "res" => k.res = Some(o),
                            _ => k.client_res = Some(o),
                        }
                    } else {
                        left.entries.push((Cow::Borrowed(key), v));
                    }
                    continue;
                }
                "err" => {
                    if js::truthy(v) && v.get("stack").is_some_and(js::truthy) {
                        k.err = Some(v);
                    } else {
                        left.entries.push((Cow::Borrowed(key), v));
                    }
                    continue;
                }
                _ => {
                    left.entries.push((Cow::Borrowed(key), v));
                    continue;
                }
            };
            *slot = Some(v);
        }
        (k, left)
    }
}

/// Fields left for `key=value` / details, in JS order, with `req.x`-style
/// additions applied the way node's `rec['req.' + k] = ...` does.
struct Leftovers<'r, 'a> {
    entries: Vec<(Cow<'r, str>, &'r Value<'a>)>,
}

impl<'r, 'a> Leftovers<'r, 'a> {
    /// `rec[prefix + key] = value` for every field of `obj` except `skip`.
    fn add_prefixed(&mut self, prefix: &str, obj: &'r Object<'a>, skip: &[&str]) {
        for (k, v) in obj.iter_js() {
            if skip.contains(&k) {
                continue;
            }
            let key = format!("{prefix}{k}");
            match self.entries.iter_mut().find(|(ek, _)| *ek == key) {
                Some(slot) => slot.1 = v,
                None => self.entries.push((Cow::Owned(key), v)),
            }
        }
    }
}

/// The HTTP fields node renders whenever `typeof x === 'object'`.
const HTTP_FIELDS: [&str; 4] = ["req", "client_req", "res", "client_res"];

/// Appends the long (or short) rendering of a valid record.
pub(super) fn render(out: &mut Vec<u8>, rec: &Object, opts: &RenderOptions, s: &mut Scratch) {
    if HTTP_FIELDS.iter().any(|k| matches!(rec.get(k), Some(Value::Array(_)))) {
        // Arrays are objects with index keys to node: render a copy where
        // they are (rare, so the copy does not matter).
        let mut copy = rec.clone();
        for k in HTTP_FIELDS {
            if let Some(Value::Array(a)) = rec.get(k) {
                copy.set(Cow::Borrowed(k), Value::Object(Object::from_array(a)));
            }
        }
        return render_object(out, &copy, opts, s);
    }
    render_object(out, rec, opts, s)
}

fn render_object(out: &mut Vec<u8>, rec: &Object, opts: &RenderOptions, s: &mut Scratch) {
    let short = opts.mode == OutputMode::Short;
    let color = opts.color;
    let null = Value::Null;
    let (known, mut left) = Known::split(rec);
    s.extras.clear();
    s.details.clear();

    // Time.
    let time = known.time.unwrap_or(&null);
    match (short, opts.time) {
        (false, TimeZone::Utc) => {
            out.push(b'[');
            js::push_to_string(out, time);
            out.push(b']');
        }
        (true, TimeZone::Utc) => push_time(out, time, TimeStyle::ShortUtc),
        (false, TimeZone::Local) => push_time(out, time, TimeStyle::LongLocal),
        (true, TimeZone::Local) => push_time(out, time, TimeStyle::ShortLocal),
    }
    out.push(b' ');

    // Level.
    let level = known.level.unwrap_or(&null);
    let std_level = standard_level(level);
    let write_level = |out: &mut Vec<u8>| match std_level {
        Some(l) => {
            if l == 30 || l == 40 {
                out.push(b' ');
            }
            out.extend_from_slice(upper_name(l).as_bytes());
        }
        None => {
            out.extend_from_slice(b"LVL");
            js::push_to_string(out, level);
        }
    };
    if color {
        let c = match std_level {
            Some(10) => "white",
            Some(20) => "yellow",
            Some(30) => "cyan",
            Some(40) => "magenta",
            Some(50) => "red",
            Some(60) => "inverse",
            _ => "",
        };
        styled(out, c, write_level);
    } else {
        write_level(out);
    }
    out.extend_from_slice(if short { b" " } else { b": " });

    // name[/component][/pid]
    let name = known.name.unwrap_or(&null);
    let component = known.component.unwrap_or(&null);
    if !short || js::truthy(component) {
        js::push_to_string(out, name);
    } else {
        push_format_s(out, name);
    }
    if js::truthy(component) {
        out.push(b'/');
        js::push_to_string(out, component);
    }
    if !short {
        out.push(b'/');
        js::push_to_string(out, known.pid.unwrap_or(&null));
    }

    if !short {
        out.extend_from_slice(b" on ");
        let hostname = known.hostname.unwrap_or(&null);
        if js::truthy(hostname) {
            push_format_s(out, hostname);
        } else {
            out.extend_from_slice(b"<no-hostname>");
        }
        // src
        let src = known.src.unwrap_or(&null);
        let file = src.get("file").unwrap_or(&null);
        if js::truthy(src) && js::truthy(file) {
            let write_src = |out: &mut Vec<u8>| {
                out.extend_from_slice(b" (");
                push_format_s(out, file);
                out.push(b':');
                let line = match src.get("line") {
                    Some(l) => js::to_number(l),
                    None => f64::NAN,
                };
                if line == 0.0 && line.is_sign_negative() {
                    out.extend_from_slice(b"-0");
                } else {
                    js::push_f64(out, line);
                }
                let func = src.get("func").unwrap_or(&Value::Null);
                if js::truthy(func) {
                    out.extend_from_slice(b" in ");
                    push_format_s(out, func);
                }
                out.push(b')');
            };
            if color {
                styled(out, "green", write_src);
            } else {
                write_src(out);
            }
        }
    }
    out.push(b':');

    // req_id
    let req_id = known.req_id.unwrap_or(&null);
    if js::truthy(req_id) {
        s.extras.extend_from_slice(b"req_id=");
        js::push_to_string(&mut s.extras, req_id);
    }

    // msg
    let msg = known.msg.unwrap_or(&null);
    let msg_text: Cow<str> = match msg {
        Value::String(m) => Cow::Borrowed(m.as_ref()),
        other => Cow::Owned(js::to_string(other)),
    };
    if msg_text.contains('\n') {
        s.tmp.clear();
        if color {
            styled(&mut s.tmp, "cyan", |o| o.extend_from_slice(msg_text.as_bytes()));
        } else {
            s.tmp.extend_from_slice(msg_text.as_bytes());
        }
        push_detail(&mut s.details, &s.tmp);
    } else {
        out.push(b' ');
        if color {
            styled(out, "cyan", |o| o.extend_from_slice(msg_text.as_bytes()));
        } else {
            out.extend_from_slice(msg_text.as_bytes());
        }
    }

    if let Some(req) = known.req {
        let skipped = render_req(req, &mut s.tmp);
        push_detail(&mut s.details, &s.tmp);
        left.add_prefixed("req.", req, &skipped);
    }
    if let Some(creq) = known.client_req {
        let skipped = render_client_req(creq, &mut s.tmp);
        left.add_prefixed("client_req.", creq, &skipped);
        push_detail(&mut s.details, &s.tmp);
    }
    for res in [known.res, known.client_res].into_iter().flatten() {
        let skipped = render_res(res, &mut s.tmp);
        if !s.tmp.is_empty() {
            push_detail(&mut s.details, &s.tmp);
        }
        // node uses the 'res.' prefix for client_res too.
        left.add_prefixed("res.", res, &skipped);
    }
    if let Some(err) = known.err {
        s.tmp.clear();
        js::push_to_string(&mut s.tmp, err.get("stack").unwrap_or(&null));
        push_detail(&mut s.details, &s.tmp);
        if let Value::Object(e) = err {
            left.add_prefixed("err.", e, &["message", "name", "stack"]);
        }
    }

    for (key, value) in &left.entries {
        s.tmp.clear();
        let stringified = match value {
            Value::String(v) => {
                s.tmp.extend_from_slice(v.as_bytes());
                false
            }
            other => {
                push_json(&mut s.tmp, other, 2);
                true
            }
        };
        let text = &s.tmp;
        let long = (text.len() > 50 && utf16_len_bytes(text) > 50) || memchr::memchr(b'\n', text).is_some();
        if long {
            if !s.details.is_empty() {
                s.details.extend_from_slice(b"\n    --\n");
            }
            s.details.extend_from_slice(b"    ");
            push_indented_tail(&mut s.details, key.as_bytes());
            s.details.extend_from_slice(b": ");
            push_indented_tail(&mut s.details, text);
        } else {
            if !s.extras.is_empty() {
                s.extras.extend_from_slice(b", ");
            }
            s.extras.extend_from_slice(key.as_bytes());
            s.extras.push(b'=');
            if !stringified && (text.is_empty() || memchr::memchr(b' ', text).is_some()) {
                push_json_string(&mut s.extras, value.as_str().unwrap_or(""));
            } else {
                s.extras.extend_from_slice(text);
            }
        }
    }

    if !s.extras.is_empty() {
        out.extend_from_slice(b" (");
        out.extend_from_slice(&s.extras);
        out.push(b')');
    }
    out.push(b'\n');
    if !s.details.is_empty() {
        out.extend_from_slice(&s.details);
        out.push(b'\n');
    }
}

/// `string.length` (UTF-16 units) of valid UTF-8 bytes.
fn utf16_len_bytes(b: &[u8]) -> usize {
    b.iter().map(|&c| usize::from(c & 0xc0 != 0x80) + usize::from(c >= 0xf0)).sum()
}

/// Adds one indented detail block (joined with `\n    --\n`).
fn push_detail(details: &mut Vec<u8>, text: &[u8]) {
    if !details.is_empty() {
        details.extend_from_slice(b"\n    --\n");
    }
    push_indented(details, text);
}
