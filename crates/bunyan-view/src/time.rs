//! Record timestamps: parsing ISO 8601 the way moment.js (used by
//! node-bunyan for `-o short` and `--time local`) and `new Date()` (used to
//! merge several files by time) read them, and formatting in UTC or in the
//! local time zone (through the C library, so `TZ` is honoured).

use crate::parse::after_digits;
use crate::value::Value;

/// A broken-down ISO 8601 timestamp.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Iso {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    millis: u32,
    /// Offset east of UTC in minutes, when the text names one.
    offset: Option<i32>,
    /// Whether only a date (no time of day) was given.
    date_only: bool,
}

fn digits(b: &[u8], i: &mut usize, n: usize) -> Option<u32> {
    if *i + n > b.len() {
        return None;
    }
    let mut v = 0u32;
    for &c in &b[*i..*i + n] {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    *i += n;
    Some(v)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Parses moment's extended ISO 8601 forms: `YYYY-MM[-DD][(T| )HH[:mm[:ss[.fff]]]][Z|±HH[:]mm|±HH]`.
fn parse_iso(s: &str) -> Option<Iso> {
    let b = s.trim_start().as_bytes();
    let mut i = 0;
    let year = i64::from(digits(b, &mut i, 4)?);
    if b.get(i) != Some(&b'-') {
        return None;
    }
    i += 1;
    let month = digits(b, &mut i, 2)?;
    let mut day = 1;
    if b.get(i) == Some(&b'-') {
        i += 1;
        day = digits(b, &mut i, 2)?;
    }
    let mut t = Iso {
        year,
        month,
        day,
        hour: 0,
        minute: 0,
        second: 0,
        millis: 0,
        offset: None,
        date_only: true,
    };
    if i < b.len() && (b[i] == b'T' || b[i] == b' ') {
        i += 1;
        t.date_only = false;
        t.hour = digits(b, &mut i, 2)?;
        if b.get(i) == Some(&b':') {
            i += 1;
            t.minute = digits(b, &mut i, 2)?;
            if b.get(i) == Some(&b':') {
                i += 1;
                t.second = digits(b, &mut i, 2)?;
                if matches!(b.get(i), Some(b'.') | Some(b',')) {
                    i += 1;
                    let f = i;
                    i = after_digits(b, f)?;
                    // moment: toInt(('0.' + digits) * 1000), i.e. truncation.
                    let frac: f64 = format!("0.{}", &s.trim_start()[f..i]).parse().ok()?;
                    t.millis = (frac * 1000.0) as u32;
                }
            }
        }
        let tz_start = i;
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        if b.get(i) == Some(&b'Z') {
            i += 1;
            t.offset = Some(0);
        } else {
            i = tz_start;
            if let Some(&sign @ (b'+' | b'-')) = b.get(i) {
                i += 1;
                let h = digits(b, &mut i, 2)? as i32;
                if b.get(i) == Some(&b':') {
                    i += 1;
                }
                let m = if i < b.len() {
                    digits(b, &mut i, 2)? as i32
                } else {
                    0
                };
                let off = h * 60 + m;
                t.offset = Some(if sign == b'-' { -off } else { off });
            }
        }
    }
    if i != b.len() {
        return None;
    }
    let valid = (1..=12).contains(&t.month)
        && t.day >= 1
        && t.day <= days_in_month(t.year, t.month)
        && (t.hour < 24 || (t.hour == 24 && t.minute == 0 && t.second == 0 && t.millis == 0))
        && t.minute < 60
        && t.second < 60;
    valid.then_some(t)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since the epoch.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn utc_millis(t: &Iso) -> i64 {
    let days = days_from_civil(t.year, t.month, t.day);
    ((days * 24 + i64::from(t.hour)) * 60 + i64::from(t.minute)) * 60_000
        + i64::from(t.second) * 1000
        + i64::from(t.millis)
}

/// Offset of local time from UTC (minutes east) at the given instant.
pub fn local_offset_minutes(epoch_ms: i64) -> i32 {
    let secs = epoch_ms.div_euclid(1000) as libc::time_t;
    extern "C" {
        fn tzset();
    }
    static TZSET: std::sync::Once = std::sync::Once::new();
    // SAFETY: tzset (POSIX, in every libc) has no preconditions; run once.
    TZSET.call_once(|| unsafe { tzset() });
    // SAFETY: localtime_r only writes into `tm`.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&secs, &mut tm).is_null() {
            return 0;
        }
        (tm.tm_gmtoff / 60) as i32
    }
}

fn local_to_millis(t: &Iso) -> i64 {
    // Guess with the offset at the same wall-clock time read as UTC, then
    // correct once (enough outside the skipped hour of a DST change).
    let wall = utc_millis(t);
    let guess = wall - i64::from(local_offset_minutes(wall)) * 60_000;
    wall - i64::from(local_offset_minutes(guess)) * 60_000
}

/// `moment(rec.time).valueOf()`: ms since the epoch, or `None` for "Invalid date".
pub fn moment_millis(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => {
            let f = n.as_f64();
            f.is_finite().then_some(f as i64)
        }
        Value::String(s) => {
            let t = parse_iso(s)?;
            Some(match t.offset {
                Some(off) => utc_millis(&t) - i64::from(off) * 60_000,
                None => local_to_millis(&t),
            })
        }
        _ => None,
    }
}

/// `new Date(rec.time).getTime()`, used to merge files; NaN when unparseable.
pub fn date_millis(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match parse_iso(s) {
            Some(t) if t.offset.is_some() || t.date_only => {
                (utc_millis(&t) - i64::from(t.offset.unwrap_or(0)) * 60_000) as f64
            }
            Some(t) => local_to_millis(&t) as f64,
            None => f64::NAN,
        },
        _ => f64::NAN,
    }
}

fn push2(out: &mut Vec<u8>, n: u32) {
    out.push(b'0' + (n / 10 % 10) as u8);
    out.push(b'0' + (n % 10) as u8);
}

/// Which moment format node-bunyan would use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeStyle {
    /// `HH:mm:ss.SSS[Z]` (short, UTC).
    ShortUtc,
    /// `[YYYY-MM-DDTHH:mm:ss.SSSZ]` (long, local).
    LongLocal,
    /// `HH:mm:ss.SSS` (short, local).
    ShortLocal,
}

/// Appends the record time in `style`, or `Invalid date` like moment.
pub fn push_time(out: &mut Vec<u8>, v: &Value, style: TimeStyle) {
    let Some(ms) = moment_millis(v) else {
        out.extend_from_slice(b"Invalid date");
        return;
    };
    let offset = match style {
        TimeStyle::ShortUtc => 0,
        _ => local_offset_minutes(ms),
    };
    let local = ms + i64::from(offset) * 60_000;
    let days = local.div_euclid(86_400_000);
    let rem = local.rem_euclid(86_400_000);
    let (h, mi, s, milli) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    if style == TimeStyle::LongLocal {
        let (y, mo, d) = civil_from_days(days);
        out.push(b'[');
        if (0..=9999).contains(&y) {
            out.extend_from_slice(format!("{y:04}").as_bytes());
        } else if y > 9999 {
            out.extend_from_slice(format!("+{y}").as_bytes());
        } else {
            out.extend_from_slice(format!("-{:04}", -y).as_bytes());
        }
        out.push(b'-');
        push2(out, mo);
        out.push(b'-');
        push2(out, d);
        out.push(b'T');
    }
    push2(out, h as u32);
    out.push(b':');
    push2(out, mi as u32);
    out.push(b':');
    push2(out, s as u32);
    out.push(b'.');
    out.extend_from_slice(format!("{milli:03}").as_bytes());
    match style {
        TimeStyle::ShortUtc => out.push(b'Z'),
        TimeStyle::ShortLocal => {}
        TimeStyle::LongLocal => {
            out.push(if offset < 0 { b'-' } else { b'+' });
            push2(out, offset.unsigned_abs() / 60);
            out.push(b':');
            push2(out, offset.unsigned_abs() % 60);
            out.push(b']');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn s(x: &str) -> Value<'_> {
        Value::String(Cow::Borrowed(x))
    }

    #[test]
    fn parses_bunyan_times() {
        assert_eq!(
            moment_millis(&s("2012-02-08T22:56:52.856Z")),
            Some(1_328_741_812_856)
        );
        assert_eq!(
            moment_millis(&s("2012-02-08T23:56:52.856+01:00")),
            Some(1_328_741_812_856)
        );
        assert_eq!(moment_millis(&s("2012-02-30T22:56:52Z")), None);
        assert_eq!(moment_millis(&s("yesterday")), None);
        let mut out = Vec::new();
        push_time(
            &mut out,
            &s("2012-02-08T22:56:52.8569Z"),
            TimeStyle::ShortUtc,
        );
        assert_eq!(out, b"22:56:52.856Z");
    }

    #[test]
    fn civil_round_trip() {
        for d in [-800_000i64, -1, 0, 59, 10_000, 2_932_896] {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
    }
}
