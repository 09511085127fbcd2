//! Record timestamps: reading `rec.time` the way moment 2.31 (used by
//! node-bunyan for `-o short` and `--time local`; strings in `moment.rs`,
//! numbers, arrays and objects here) and `new Date()` (used to merge
//! several files by time) read it, within Date's range of ±8.64e15 ms, and
//! formatting in UTC or in the local time zone (through the C library, so
//! `TZ` is honoured, with V8's handling of DST gaps and LMT seconds).

mod moment;

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

/// Parses the ISO 8601 forms `new Date(string)` reads for merging files:
/// `YYYY-MM[-DD][(T| )HH[:mm[:ss[.fff]]]][Z|±HH[:]mm|±HH]`.
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
    let mut t = Iso { year, month, day, hour: 0, minute: 0, second: 0, millis: 0, offset: None, date_only: true };
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
                let m = if i < b.len() { digits(b, &mut i, 2)? as i32 } else { 0 };
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

/// A wall-clock time, as `Date.UTC`/`new Date(y, m, ...)` take it (month
/// 0-based; fields may be out of their usual ranges).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Wall {
    year: f64,
    month0: f64,
    day: f64,
    hour: f64,
    minute: f64,
    second: f64,
    millis: f64,
}

/// `Date.UTC(...)` before TimeClip (MakeDate(MakeDay, MakeTime)).
fn utc_millis_of(w: &Wall) -> f64 {
    if !within(w.year, 1e9) {
        return f64::NAN;
    }
    let ym = w.year + (w.month0 / 12.0).floor();
    let mn = w.month0.rem_euclid(12.0);
    let days = days_from_civil(ym as i64, mn as u32 + 1, 1) as f64 + w.day - 1.0;
    days * 86_400_000.0 + ((w.hour * 60.0 + w.minute) * 60.0 + w.second) * 1000.0 + w.millis
}

/// |x| <= limit (false for NaN).
fn within(x: f64, limit: f64) -> bool {
    x.abs() <= limit
}

/// ECMAScript TimeClip: the instant, or None beyond ±8.64e15 ms.
fn time_clip(t: f64) -> Option<i64> {
    (t.is_finite() && t.abs() <= 8.64e15).then(|| t.trunc() as i64)
}

/// Offset of local time from UTC (seconds east) at the given instant.
pub fn local_offset_seconds(epoch_ms: i64) -> i64 {
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
        tm.tm_gmtoff
    }
}

/// Offset of local time from UTC (minutes east, truncated) at an instant.
pub fn local_offset_minutes(epoch_ms: i64) -> i32 {
    (local_offset_seconds(epoch_ms) / 60) as i32
}

/// The instant of a local wall-clock time (as ms read as UTC), the way V8
/// converts it: a repeated time takes the earlier offset, a skipped one
/// the offset before the change.
fn local_to_utc(wall: f64) -> f64 {
    let at = |t: f64| local_offset_seconds(t as i64) as f64 * 1000.0;
    let (before, after) = (at(wall - 86_400_000.0), at(wall + 86_400_000.0));
    let (t1, t2) = (wall - before, wall - after);
    if at(t1) == before || at(t2) != after {
        t1
    } else {
        t2
    }
}

/// `moment(rec.time).valueOf()`: ms since the epoch, or `None` for "Invalid date".
pub fn moment_millis(v: &Value) -> Option<i64> {
    match v {
        // moment(number) is new Date(number).
        Value::Number(n) => time_clip(n.as_f64()),
        Value::String(s) => match moment::parse(s)? {
            moment::Parsed::Utc(t) => time_clip(t),
            moment::Parsed::Local(mut wall, next_day) => {
                if next_day {
                    wall.day += 1.0;
                }
                let w = utc_millis_of(&wall);
                // V8 converts local times up to 10 days beyond the range.
                if !within(w, 8.64e15 + 864e6) {
                    return None;
                }
                time_clip(local_to_utc(w))
            }
        },
        Value::Array(a) if a.is_empty() => Some(now_millis()),
        Value::Object(o) if o.is_empty() => Some(now_millis()),
        // configFromArray: `parseInt(x, 10)` of each element.
        Value::Array(a) => {
            let mut parts = [None; 7];
            for (p, v) in parts.iter_mut().zip(a) {
                *p = Some(parse_int10(&crate::js::to_string(v)));
            }
            from_parts(parts)
        }
        // configFromObject: unit names and their aliases, `obj && parseInt(obj, 10)`.
        Value::Object(o) => {
            let mut units: [Option<&Value>; 8] = [None; 8];
            for (k, v) in o.iter_js() {
                let k: &str = k;
                let unit = unit_alias(k).or_else(|| unit_alias(&k.to_lowercase()));
                if let Some(u) = unit {
                    units[u] = Some(v);
                }
            }
            // [year, month, day ?? date, hour, minute, second, millisecond]
            let day_or_date = if units[7].is_some() { units[7] } else { units[2] };
            let picked = [units[0], units[1], day_or_date, units[3], units[4], units[5], units[6]];
            let mut parts = [None; 7];
            for (p, v) in parts.iter_mut().zip(picked) {
                *p = match v {
                    None | Some(Value::Null) => None,
                    Some(v) if !crate::js::truthy(v) => Some(0.0),
                    Some(v) => Some(parse_int10(&crate::js::to_string(v))),
                };
            }
            from_parts(parts)
        }
        _ => None,
    }
}

/// The current time (moment() of an empty object or array).
fn now_millis() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Index in [year, month, date, hour, minute, second, millisecond, day]
/// of a moment unit name or alias.
fn unit_alias(k: &str) -> Option<usize> {
    Some(match k {
        "y" | "years" | "year" => 0,
        "M" | "months" | "month" => 1,
        "D" | "dates" | "date" => 2,
        "h" | "hours" | "hour" => 3,
        "m" | "minutes" | "minute" => 4,
        "s" | "seconds" | "second" => 5,
        "ms" | "milliseconds" | "millisecond" => 6,
        "d" | "days" | "day" => 7,
        _ => return None,
    })
}

/// `parseInt(s, 10)`.
fn parse_int10(s: &str) -> f64 {
    let t = s.trim_start_matches(crate::js::is_js_whitespace);
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let end = t.bytes().take_while(u8::is_ascii_digit).count();
    if end == 0 {
        return f64::NAN;
    }
    let v: f64 = t[..end].parse().unwrap_or(f64::NAN);
    if neg {
        -v
    } else {
        v
    }
}

/// moment's configFromArray + checkOverflow for local dates: missing
/// leading parts are today's, the others 1 (date) or 0.
fn from_parts(mut a: [Option<f64>; 7]) -> Option<i64> {
    if a[0].is_none() || a[1].is_none() || a[2].is_none() {
        let now = now_millis();
        let local = now + local_offset_seconds(now) * 1000;
        let (y, m, d) = civil_from_days(local.div_euclid(86_400_000));
        let today = [y as f64, f64::from(m) - 1.0, f64::from(d)];
        for i in 0..3 {
            if a[i].is_some() {
                break;
            }
            a[i] = Some(today[i]);
        }
    }
    let v = |i: usize| a[i].unwrap_or(if i == 2 { 1.0 } else { 0.0 });
    let (year, month, day, mut hour, minute, second, millis) = (v(0), v(1), v(2), v(3), v(4), v(5), v(6));
    if [year, month, day, hour, minute, second, millis].iter().any(|x| x.is_nan()) {
        return None;
    }
    let overflow = !(0.0..=11.0).contains(&month)
        || day < 1.0
        || day > moment::days_in_month(year, month)
        || !(0.0..=24.0).contains(&hour)
        || (hour == 24.0 && (minute != 0.0 || second != 0.0 || millis != 0.0))
        || !(0.0..=59.0).contains(&minute)
        || !(0.0..=59.0).contains(&second)
        || !(0.0..=999.0).contains(&millis);
    if overflow {
        return None;
    }
    let mut wall = Wall { year, month0: month, day, hour, minute, second, millis };
    if hour == 24.0 {
        hour = 0.0;
        wall.hour = hour;
        wall.day += 1.0;
    }
    let w = utc_millis_of(&wall);
    if !within(w, 8.64e15 + 864e6) {
        return None;
    }
    time_clip(local_to_utc(w))
}

/// `new Date(rec.time).getTime()`, used to merge files; NaN when unparseable.
pub fn date_millis(v: &Value) -> f64 {
    match v {
        Value::Number(n) => time_clip(n.as_f64()).map_or(f64::NAN, |t| t as f64),
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

fn utc_millis(t: &Iso) -> i64 {
    let days = days_from_civil(t.year, t.month, t.day);
    ((days * 24 + i64::from(t.hour)) * 60 + i64::from(t.minute)) * 60_000
        + i64::from(t.second) * 1000
        + i64::from(t.millis)
}

fn local_to_millis(t: &Iso) -> i64 {
    local_to_utc(utc_millis(t) as f64) as i64
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
    let offset_s = match style {
        TimeStyle::ShortUtc => 0,
        _ => local_offset_seconds(ms),
    };
    let local = ms + offset_s * 1000;
    let days = local.div_euclid(86_400_000);
    let rem = local.rem_euclid(86_400_000);
    let (h, mi, s, milli) = (rem / 3_600_000, rem / 60_000 % 60, rem / 1000 % 60, rem % 1000);
    if style == TimeStyle::LongLocal {
        let (y, mo, d) = civil_from_days(days);
        out.push(b'[');
        // moment's YYYY: zeroFill(year, 4), no sign for years past 9999.
        if y < 0 {
            out.extend_from_slice(format!("-{:04}", -y).as_bytes());
        } else {
            out.extend_from_slice(format!("{y:04}").as_bytes());
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
            // moment: utcOffset() = -Math.round(date.getTimezoneOffset()).
            let tz_offset = -offset_s as f64 / 60.0;
            let offset = -((tz_offset + 0.5).floor() as i64);
            out.push(if offset < 0 { b'-' } else { b'+' });
            push2(out, (offset.unsigned_abs() / 60) as u32);
            out.push(b':');
            push2(out, (offset.unsigned_abs() % 60) as u32);
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
        assert_eq!(moment_millis(&s("2012-02-08T22:56:52.856Z")), Some(1_328_741_812_856));
        assert_eq!(moment_millis(&s("2012-02-08T23:56:52.856+01:00")), Some(1_328_741_812_856));
        assert_eq!(moment_millis(&s("2012-02-30T22:56:52Z")), None);
        assert_eq!(moment_millis(&s("yesterday")), None);
        let mut out = Vec::new();
        push_time(&mut out, &s("2012-02-08T22:56:52.8569Z"), TimeStyle::ShortUtc);
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
