//! `req`, `client_req`, `res` and `client_res` in long output, as node-bunyan
//! renders them: a request line plus headers (and body), or a status line
//! plus headers (and body). Each function writes the detail text into `out`
//! and returns the fields it consumed; the rest become `req.x` extras.

use super::push_format_s;
use super::status::reason;
use crate::js;
use crate::json::push_json;
use crate::value::{Object, Value};

/// `util.format('%s', x)` where `x` may be undefined.
fn push_s(out: &mut Vec<u8>, v: Option<&Value>) {
    match v {
        Some(v) => push_format_s(out, v),
        None => out.extend_from_slice(b"undefined"),
    }
}

/// `x || '1.1'` for `httpVersion`.
fn push_http_version(out: &mut Vec<u8>, v: Option<&Value>) {
    match v {
        Some(v) if js::truthy(v) => push_format_s(out, v),
        _ => out.extend_from_slice(b"1.1"),
    }
}

/// `Object.keys(h).map(k => k + ': ' + h[k]).join('\n')`.
fn push_header_lines(out: &mut Vec<u8>, headers: &Value) {
    match headers {
        Value::Object(o) => {
            for (i, (k, v)) in o.iter_js().enumerate() {
                if i > 0 {
                    out.push(b'\n');
                }
                out.extend_from_slice(k.as_bytes());
                out.extend_from_slice(b": ");
                js::push_to_string(out, v);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b'\n');
                }
                js::push_int(out, i as i64);
                out.extend_from_slice(b": ");
                js::push_to_string(out, v);
            }
        }
        Value::String(s) => {
            let mut idx = 0;
            for (i, c) in s.chars().enumerate() {
                if i > 0 {
                    out.push(b'\n');
                }
                js::push_int(out, idx);
                out.extend_from_slice(b": ");
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
                idx += c.len_utf16() as i64;
            }
        }
        _ => {}
    }
}

/// `Object.keys(v)` joined with ',' (for node's odd trailers test).
fn keys_joined(v: &Value) -> String {
    match v {
        Value::Object(o) => o.iter_js().map(|(k, _)| k).collect::<Vec<_>>().join(","),
        Value::Array(a) => (0..a.len()).map(|i| i.to_string()).collect::<Vec<_>>().join(","),
        Value::String(s) => (0..js::utf16_len(s)).map(|i| i.to_string()).collect::<Vec<_>>().join(","),
        _ => String::new(),
    }
}

/// Appends `'\n\n' + body` (JSON with 2-space indent for objects).
fn push_body(out: &mut Vec<u8>, body: &Value) {
    out.extend_from_slice(b"\n\n");
    if body.is_object_like() || matches!(body, Value::Null) {
        push_json(out, body, 2);
    } else {
        js::push_to_string(out, body);
    }
}

/// `req`: `METHOD URL HTTP/x` + headers + body + trailers.
pub(super) fn render_req(req: &Object, out: &mut Vec<u8>) -> Vec<&'static str> {
    out.clear();
    let mut skipped = vec!["url", "method", "httpVersion", "headers", "trailers"];
    push_s(out, req.get("method"));
    out.push(b' ');
    push_s(out, req.get("url"));
    out.extend_from_slice(b" HTTP/");
    push_http_version(out, req.get("httpVersion"));
    match req.get("headers") {
        Some(h) if !js::truthy(h) => {}
        None => {}
        Some(Value::String(h)) => {
            out.push(b'\n');
            out.extend_from_slice(h.as_bytes());
        }
        Some(h @ (Value::Object(_) | Value::Array(_))) => {
            out.push(b'\n');
            push_header_lines(out, h);
        }
        Some(other) => push_format_s(out, other),
    }
    if let Some(body) = req.get("body").filter(|b| js::truthy(b)) {
        push_body(out, body);
        skipped.push("body");
    }
    if let Some(trailers) = req.get("trailers").filter(|t| js::truthy(t)) {
        // `Object.keys(req.trailers) > 0` compares the joined key list as a number.
        if js::string_to_number(&keys_joined(trailers)) > 0.0 {
            out.push(b'\n');
            push_header_lines(out, trailers);
        }
    }
    skipped
}

/// `client_req`: like `req`, plus a guessed `Host:` line from `address`/`port`.
pub(super) fn render_client_req(creq: &Object, out: &mut Vec<u8>) -> Vec<&'static str> {
    out.clear();
    let mut skipped = vec!["headers", "method", "url", "httpVersion"];
    let headers = creq.get("headers");
    let has_host = matches!(headers, Some(Value::Object(h))
        if h.get("host").is_some() || h.get("Host").is_some() || h.get("HOST").is_some());
    let mut host_line = Vec::new();
    if (!headers.is_some_and(js::truthy) || !has_host) && creq.get("address").is_some() {
        host_line.extend_from_slice(b"\nHost: ");
        js::push_to_string(&mut host_line, creq.get("address").unwrap_or(&Value::Null));
        if let Some(port) = creq.get("port") {
            let p = js::to_number(port);
            if p != 80.0 && p != 443.0 {
                host_line.push(b':');
                js::push_to_string(&mut host_line, port);
            }
            skipped.push("port");
        }
        skipped.push("address");
    }
    push_s(out, creq.get("method"));
    out.push(b' ');
    push_s(out, creq.get("url"));
    out.extend_from_slice(b" HTTP/");
    push_http_version(out, creq.get("httpVersion"));
    out.extend_from_slice(&host_line);
    if let Some(h) = headers.filter(|h| js::truthy(h)) {
        out.push(b'\n');
        push_header_lines(out, h);
    }
    if let Some(body) = creq.get("body").filter(|b| js::truthy(b)) {
        push_body(out, body);
        skipped.push("body");
    }
    skipped
}

/// `res`/`client_res`: status line, headers (`header` string or `headers`), body, trailer.
/// Leaves `out` empty when there is nothing to show.
pub(super) fn render_res(res: &Object, out: &mut Vec<u8>) -> Vec<&'static str> {
    out.clear();
    let mut skipped = vec!["statusCode", "body", "trailer"];
    let usable = |v: &&Value| js::truthy(v) && matches!(v, Value::String(_) | Value::Object(_) | Value::Array(_));
    let headers = if let Some(h) = res.get("header").filter(usable) {
        skipped.push("header");
        Some(h)
    } else if let Some(h) = res.get("headers").filter(usable) {
        skipped.push("headers");
        Some(h)
    } else {
        None
    };
    let mut headers_str = Vec::new();
    let mut has_status_line = false;
    match headers {
        None => {}
        Some(Value::String(h)) => {
            let t = h.trim_end_matches(js::is_js_whitespace);
            has_status_line = t.starts_with("HTTP/");
            headers_str.extend_from_slice(t.as_bytes());
        }
        Some(h) => push_header_lines(&mut headers_str, h),
    }
    if !has_status_line {
        if let Some(code) = res.get("statusCode") {
            out.extend_from_slice(b"HTTP/1.1 ");
            push_format_s(out, code);
            out.push(b' ');
            let key = js::to_string(code);
            out.extend_from_slice(reason(&key).unwrap_or("undefined").as_bytes());
            out.push(b'\n');
        }
    }
    out.extend_from_slice(&headers_str);
    match res.get("body") {
        Some(body) => {
            let mut text = Vec::new();
            let has_length = match body {
                Value::String(b) => {
                    text.extend_from_slice(b.as_bytes());
                    true
                }
                Value::Object(_) | Value::Array(_) | Value::Null => {
                    push_json(&mut text, body, 2);
                    true
                }
                _ => false,
            };
            if has_length && !text.is_empty() {
                out.extend_from_slice(b"\n\n");
                out.extend_from_slice(&text);
            }
        }
        None => {
            let keep =
                std::str::from_utf8(out).map(|s| s.trim_end_matches(js::is_js_whitespace).len()).unwrap_or(out.len());
            out.truncate(keep);
        }
    }
    if let Some(trailer) = res.get("trailer").filter(|t| js::truthy(t)) {
        out.push(b'\n');
        js::push_to_string(out, trailer);
    }
    skipped
}
