//! Small JSON writing helpers: escaped strings, values that never fail, and
//! the record timestamp (ISO 8601 UTC with milliseconds).

use std::{
    cell::Cell,
    fmt::{self, Write as _},
    time::{SystemTime, UNIX_EPOCH},
};

use serde::Serialize;

/// Appends `s` as a JSON string literal (quotes included).
pub(crate) fn write_str(buf: &mut Vec<u8>, s: &str) {
    buf.push(b'"');
    escape_into(buf, s);
    buf.push(b'"');
}

/// Appends the JSON-escaped body of `s` (no quotes).
fn escape_into(buf: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f | 0x7f => b"",
            _ => continue,
        };
        buf.extend_from_slice(&bytes[start..i]);
        if esc.is_empty() {
            let _ = write!(Raw(buf), "\\u{:04x}", b);
        } else {
            buf.extend_from_slice(esc);
        }
        start = i + 1;
    }
    buf.extend_from_slice(&bytes[start..]);
}

/// `fmt::Write` into a byte buffer, verbatim.
struct Raw<'a>(&'a mut Vec<u8>);

impl fmt::Write for Raw<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// `fmt::Write` into a byte buffer, JSON-escaping as it goes.
pub(crate) struct Escaper<'a>(pub(crate) &'a mut Vec<u8>);

impl fmt::Write for Escaper<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape_into(self.0, s);
        Ok(())
    }
}

/// Appends `args` formatted, as a JSON string literal.  A `Display` impl that
/// fails leaves what it wrote so far, followed by a marker.
pub(crate) fn write_fmt_str(buf: &mut Vec<u8>, args: fmt::Arguments<'_>) {
    buf.push(b'"');
    match args.as_str() {
        Some(s) => escape_into(buf, s),
        None => {
            if Escaper(buf).write_fmt(args).is_err() {
                buf.extend_from_slice(b"[formatting failed]");
            }
        }
    }
    buf.push(b'"');
}

/// Appends `v` as JSON.  Never fails: a `Serialize` impl that errors (or a
/// map with keys JSON cannot have) is rendered as the string
/// `"[unserializable: <error>]"`; NaN and infinities become `null`.
pub(crate) fn write_value<V: Serialize + ?Sized>(buf: &mut Vec<u8>, v: &V) {
    let start = buf.len();
    if let Err(e) = serde_json::to_writer(&mut *buf, v) {
        buf.truncate(start);
        buf.push(b'"');
        let _ = write!(Escaper(buf), "[unserializable: {e}]");
        buf.push(b'"');
    }
}

thread_local! {
    /// The last second formatted, `2026-11-28T08:00:00.`, per thread: most
    /// records fall in the same second as the previous one.
    static SECOND: Cell<(u64, [u8; 20])> = const { Cell::new((u64::MAX, [0; 20])) };
}

/// Appends the current time as `"2026-11-28T08:00:00.123Z"` (quotes included).
pub(crate) fn write_now(buf: &mut Vec<u8>) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    write_time(buf, now.as_secs(), now.subsec_millis());
}

/// Appends `secs` + `ms` since the epoch as `"2026-11-28T08:00:00.123Z"`.
fn write_time(buf: &mut Vec<u8>, secs: u64, ms: u32) {
    let (cached, mut prefix) = SECOND.with(Cell::get);
    if cached != secs {
        // Years 1970..=9999 always take exactly 20 bytes; later instants are
        // beyond the `time` crate (and Bunyan's format) and show the epoch.
        let t = time::OffsetDateTime::from_unix_timestamp(secs as i64).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let _ = std::io::Write::write_fmt(
            &mut &mut prefix[..],
            format_args!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            ),
        );
        SECOND.with(|c| c.set((secs, prefix)));
    }
    buf.push(b'"');
    buf.extend_from_slice(&prefix);
    push_millis(buf, ms);
}

fn push_millis(buf: &mut Vec<u8>, ms: u32) {
    let ms = ms.min(999);
    buf.extend_from_slice(&[b'0' + (ms / 100) as u8, b'0' + (ms / 10 % 10) as u8, b'0' + (ms % 10) as u8, b'Z', b'"']);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(secs: u64, ms: u32) -> String {
        let mut b = Vec::new();
        write_time(&mut b, secs, ms);
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn times_are_iso_8601_utc_millis() {
        assert_eq!(time(0, 0), "\"1970-01-01T00:00:00.000Z\"");
        // Same second again (cached prefix), other milliseconds.
        assert_eq!(time(1_795_824_000, 256), "\"2026-11-28T00:00:00.256Z\"");
        assert_eq!(time(1_795_824_000, 999), "\"2026-11-28T00:00:00.999Z\"");
        assert_eq!(time(1_795_824_061, 7), "\"2026-11-28T00:01:01.007Z\"");
        assert_eq!(time(253_402_300_799, 5), "\"9999-12-31T23:59:59.005Z\"");
    }

    #[test]
    fn strings_are_escaped() {
        let mut b = Vec::new();
        write_str(&mut b, "a\"b\\c\n\u{1}\u{7f}é");
        assert_eq!(String::from_utf8(b).unwrap(), "\"a\\\"b\\\\c\\n\\u0001\\u007fé\"");
    }
}
