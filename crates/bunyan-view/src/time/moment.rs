//! `moment(string)` as moment 2.31 (node-bunyan's dependency) reads it:
//! ASP.NET `/Date(ms)/`, then ISO 8601 (extended and basic forms, six-digit
//! signed years, week and ordinal dates), then RFC 2822. Strings that moment
//! hands to its `new Date(string)` fallback are not read here (see docs).
//!
//! The ISO path follows moment step for step: the ISO regexes pick a
//! format such as `YYYY-MM-DDTHH:mm:ss.SSSSZ`, whose tokens are then
//! matched one after the other against the rest of the string (each
//! token's regex anywhere in what is left, as moment does when not strict),
//! and the parts are checked for overflow.

use super::{days_from_civil, utc_millis_of, Wall};

/// Where a parsed time is anchored.
#[derive(Debug, PartialEq)]
pub enum Parsed {
    /// An instant (ms since the epoch, possibly beyond Date's range).
    Utc(f64),
    /// A wall-clock time in the local zone, with moment's `_nextDay`.
    Local(Wall, bool),
}

fn is_js_space(c: char) -> bool {
    crate::js::is_js_whitespace(c)
}

/// One element of the small regexes moment uses.
#[derive(Clone, Copy)]
enum Pat {
    Sign,
    Digits(usize),
    /// `\d+`
    DigitsPlus,
    Lit(u8),
}

use Pat::*;

/// Length of a match of `pat` at `i`, if any.
fn match_at(b: &[u8], i: usize, pat: &[Pat]) -> Option<usize> {
    let mut j = i;
    for p in pat {
        match *p {
            Sign => {
                if !matches!(b.get(j), Some(b'+' | b'-')) {
                    return None;
                }
                j += 1;
            }
            Digits(n) => {
                if j + n > b.len() || !b[j..j + n].iter().all(u8::is_ascii_digit) {
                    return None;
                }
                j += n;
            }
            DigitsPlus => {
                let k = j + b[j..].iter().take_while(|c| c.is_ascii_digit()).count();
                if k == j {
                    return None;
                }
                j = k;
            }
            Lit(c) => {
                if b.get(j) != Some(&c) {
                    return None;
                }
                j += 1;
            }
        }
    }
    Some(j - i)
}

/// Whether `pat` occurs anywhere in `b` (an unanchored `regex.exec`).
fn occurs(b: &[u8], pat: &[Pat]) -> bool {
    (0..=b.len()).any(|i| match_at(b, i, pat).is_some())
}

/// moment's `isoDates`: format, regex, whether a time may follow.
const ISO_DATES: &[(&str, &[Pat], bool)] = &[
    ("YYYYYY-MM-DD", &[Sign, Digits(6), Lit(b'-'), Digits(2), Lit(b'-'), Digits(2)], true),
    ("YYYY-MM-DD", &[Digits(4), Lit(b'-'), Digits(2), Lit(b'-'), Digits(2)], true),
    ("GGGG-[W]WW-E", &[Digits(4), Lit(b'-'), Lit(b'W'), Digits(2), Lit(b'-'), Digits(1)], true),
    ("GGGG-[W]WW", &[Digits(4), Lit(b'-'), Lit(b'W'), Digits(2)], false),
    ("YYYY-DDD", &[Digits(4), Lit(b'-'), Digits(3)], true),
    ("YYYY-MM", &[Digits(4), Lit(b'-'), Digits(2)], false),
    ("YYYYYYMMDD", &[Sign, Digits(10)], true),
    ("YYYYMMDD", &[Digits(8)], true),
    ("GGGG[W]WWE", &[Digits(4), Lit(b'W'), Digits(3)], true),
    ("GGGG[W]WW", &[Digits(4), Lit(b'W'), Digits(2)], false),
    ("YYYYDDD", &[Digits(7)], true),
    ("YYYYMM", &[Digits(6)], false),
    ("YYYY", &[Digits(4)], false),
];

/// moment's `isoTimes`.
const ISO_TIMES: &[(&str, &[Pat])] = &[
    ("HH:mm:ss.SSSS", &[Digits(2), Lit(b':'), Digits(2), Lit(b':'), Digits(2), Lit(b'.'), DigitsPlus]),
    ("HH:mm:ss,SSSS", &[Digits(2), Lit(b':'), Digits(2), Lit(b':'), Digits(2), Lit(b','), DigitsPlus]),
    ("HH:mm:ss", &[Digits(2), Lit(b':'), Digits(2), Lit(b':'), Digits(2)]),
    ("HH:mm", &[Digits(2), Lit(b':'), Digits(2)]),
    ("HHmmss.SSSS", &[Digits(6), Lit(b'.'), DigitsPlus]),
    ("HHmmss,SSSS", &[Digits(6), Lit(b','), DigitsPlus]),
    ("HHmmss", &[Digits(6)]),
    ("HHmm", &[Digits(4)]),
    ("HH", &[Digits(2)]),
];

/// The parts of moment's `extendedIsoRegex`/`basicIsoRegex` match:
/// date, separator, time, zone.
struct IsoMatch<'s> {
    date: &'s str,
    sep: Option<char>,
    time: Option<&'s str>,
    tz: Option<&'s str>,
}

/// `(?:(T| )(TIME)(ZONE)?)?$` from `i`; `extended` uses `:` in times.
fn iso_tail(s: &str, i: usize, extended: bool) -> Option<(Option<char>, Option<&str>, Option<&str>)> {
    let b = s.as_bytes();
    if i == b.len() {
        return Some((None, None, None));
    }
    let sep = match b[i] {
        b'T' => 'T',
        b' ' => ' ',
        _ => return None,
    };
    let t0 = i + 1;
    let mut j = t0 + match_at(b, t0, &[Digits(2)])?;
    // Each further part is greedy: what a shorter match leaves (':', '.',
    // a digit) could never start a zone or the end.
    let colon: &[Pat] = if extended { &[Lit(b':'), Digits(2)] } else { &[Digits(2)] };
    if let Some(n) = match_at(b, j, colon) {
        j += n;
        if let Some(n) = match_at(b, j, colon) {
            j += n;
            if matches!(b.get(j), Some(b'.' | b',')) {
                if let Some(n) = match_at(b, j + 1, &[DigitsPlus]) {
                    j += 1 + n;
                }
            }
        }
    }
    let time = &s[t0..j];
    if j == b.len() {
        return Some((Some(sep), Some(time), None));
    }
    // `[+-]\d\d(?::?\d\d)?|\s*Z`, then the end.
    let z0 = j;
    if let Some(n) = match_at(b, j, &[Sign, Digits(2)]) {
        j += n;
        if let Some(n) = match_at(b, j, &[Lit(b':'), Digits(2)]).or_else(|| match_at(b, j, &[Digits(2)])) {
            j += n;
        }
    } else {
        let rest = &s[j..];
        let trimmed = rest.trim_start_matches(is_js_space);
        if !trimmed.starts_with('Z') {
            return None;
        }
        j += rest.len() - trimmed.len() + 1;
    }
    (j == b.len()).then_some((Some(sep), Some(time), Some(&s[z0..j])))
}

fn iso_match(s: &str) -> Option<IsoMatch<'_>> {
    let start = s.len() - s.trim_start_matches(is_js_space).len();
    let b = s.as_bytes();
    let year = match_at(b, start, &[Sign, Digits(6)]).or_else(|| match_at(b, start, &[Digits(4)]))?;
    let after_year = start + year;
    let extended: [&[Pat]; 5] = [
        &[Lit(b'-'), Digits(2), Lit(b'-'), Digits(2)],
        &[Lit(b'-'), Lit(b'W'), Digits(2), Lit(b'-'), Digits(1)],
        &[Lit(b'-'), Lit(b'W'), Digits(2)],
        &[Lit(b'-'), Digits(3)],
        &[Lit(b'-'), Digits(2)],
    ];
    let basic: [&[Pat]; 6] =
        [&[Digits(4)], &[Lit(b'W'), Digits(3)], &[Lit(b'W'), Digits(2)], &[Digits(3)], &[Digits(2)], &[]];
    for (alts, ext) in [(&extended[..], true), (&basic[..], false)] {
        for alt in alts {
            let Some(n) = match_at(b, after_year, alt) else { continue };
            let end = after_year + n;
            if let Some((sep, time, tz)) = iso_tail(s, end, ext) {
                return Some(IsoMatch { date: &s[start..end], sep, time, tz });
            }
        }
    }
    None
}

/// moment's `toInt`: `+x`, truncated, 0 unless finite and non-zero.
fn to_int(s: &str) -> f64 {
    let n = crate::js::string_to_number(s);
    if n.is_finite() && n != 0.0 {
        n.trunc()
    } else {
        0.0
    }
}

/// A token of a moment format string.
enum Tok<'f> {
    Token(&'f str),
    Lit(&'f str),
}

fn tokenize(f: &str) -> Vec<Tok<'_>> {
    const TOKENS: [&str; 13] = ["YYYYYY", "YYYY", "GGGG", "SSSS", "DDD", "MM", "DD", "WW", "HH", "mm", "ss", "E", "Z"];
    let mut out = Vec::new();
    let mut i = 0;
    while i < f.len() {
        let rest = &f[i..];
        if let Some(t) = TOKENS.iter().find(|t| rest.starts_with(**t)) {
            out.push(Tok::Token(t));
            i += t.len();
        } else if rest.starts_with("[W]") {
            out.push(Tok::Lit("W"));
            i += 3;
        } else {
            out.push(Tok::Lit(&rest[..1]));
            i += 1;
        }
    }
    out
}

/// The first match of a token's (non-strict) regex in `s`: (start, end).
fn find_token(token: &str, s: &str) -> Option<(usize, usize)> {
    let b = s.as_bytes();
    let digits = |min: usize, max: usize| -> Option<(usize, usize)> {
        let start = b.iter().position(u8::is_ascii_digit)?;
        let run = b[start..].iter().take_while(|c| c.is_ascii_digit()).count();
        // A run shorter than `min` cannot match; look further.
        if run < min {
            let (a, e) = find_token_digits(&b[start + run..], min, max)?;
            return Some((start + run + a, start + run + e));
        }
        Some((start, start + run.min(max)))
    };
    match token {
        // /[+-]?\d{1,6}/
        "YYYYYY" => {
            let (a, e) = digits(1, 6)?;
            let a = if a > 0 && matches!(b[a - 1], b'+' | b'-') { a - 1 } else { a };
            Some((a, e))
        }
        "YYYY" | "GGGG" => digits(1, 4),
        "DDD" => digits(1, 3),
        "MM" | "DD" | "WW" | "HH" | "mm" | "ss" => digits(1, 2),
        "E" => digits(1, 1),
        "SSSS" => digits(1, usize::MAX),
        // /Z|[+-]\d\d(?::?\d\d)?/i
        "Z" => (0..b.len()).find_map(|i| {
            if matches!(b[i], b'Z' | b'z') {
                return Some((i, i + 1));
            }
            let n = match_at(b, i, &[Sign, Digits(2)])?;
            let m =
                match_at(b, i + n, &[Lit(b':'), Digits(2)]).or_else(|| match_at(b, i + n, &[Digits(2)])).unwrap_or(0);
            Some((i, i + n + m))
        }),
        lit => s.find(lit).map(|p| (p, p + lit.len())),
    }
}

fn find_token_digits(b: &[u8], min: usize, max: usize) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let run = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
            if run >= min {
                return Some((i, i + run.min(max)));
            }
            i += run;
        } else {
            i += 1;
        }
    }
    None
}

/// moment's `offsetFromString`: minutes east, None when out of range.
fn offset_minutes(z: &str) -> Option<i32> {
    let b = z.as_bytes();
    if matches!(b.first(), Some(b'Z' | b'z')) {
        return Some(0);
    }
    let sign = b[0];
    let h: i32 = z[1..3].parse().ok()?;
    let m: i32 = z[3..].trim_start_matches(':').parse().unwrap_or(0);
    let total = h * 60 + m;
    if m > 59 || (if sign == b'+' { total > 14 * 60 } else { total > 12 * 60 }) {
        return None;
    }
    Some(if sign == b'-' { -total } else { total })
}

fn is_leap(y: f64) -> bool {
    (y % 4.0 == 0.0 && y % 100.0 != 0.0) || y % 400.0 == 0.0
}

fn days_in_year(y: f64) -> f64 {
    if is_leap(y) {
        366.0
    } else {
        365.0
    }
}

/// moment's `daysInMonth(year, month)` (month 0-based, any integer).
pub(super) fn days_in_month(y: f64, m: f64) -> f64 {
    let mm = m.rem_euclid(12.0);
    let y = y + (m - mm) / 12.0;
    if mm == 1.0 {
        if is_leap(y) {
            29.0
        } else {
            28.0
        }
    } else {
        31.0 - (mm % 7.0) % 2.0
    }
}

/// Weekday (0 = Sunday) of a proleptic Gregorian date, month 0-based.
fn utc_weekday(y: f64, m0: f64, d: f64) -> f64 {
    let days = days_from_civil(y as i64, 1, 1) as f64 + day_offset(y, m0) + d - 1.0;
    (days + 4.0).rem_euclid(7.0)
}

/// Days from Jan 1 to the first of month `m0` (0-based, any integer).
fn day_offset(y: f64, m0: f64) -> f64 {
    let ym = y + (m0 / 12.0).floor();
    let mn = m0.rem_euclid(12.0);
    (days_from_civil(ym as i64, mn as u32 + 1, 1) - days_from_civil(y as i64, 1, 1)) as f64
}

/// `firstWeekOffset(year, 1, 4)` (ISO weeks).
fn first_week_offset(y: f64) -> f64 {
    let fwd = 4.0;
    let fwdlw = (7.0 + utc_weekday(y, 0.0, fwd) - 1.0) % 7.0;
    -fwdlw + fwd - 1.0
}

/// What moment's parse of an ISO string gives.
fn parse_iso(s: &str) -> Option<Parsed> {
    let m = iso_match(s)?;
    let db = m.date.as_bytes();
    let (date_format, allow_time) = ISO_DATES.iter().find(|(_, p, _)| occurs(db, p)).map(|(f, _, a)| (*f, *a))?;
    let mut format = date_format.to_owned();
    if let Some(time) = m.time {
        let tb = time.as_bytes();
        let (tf, _) = ISO_TIMES.iter().find(|(_, p)| occurs(tb, p))?;
        if !allow_time {
            return None;
        }
        format.push(m.sep.unwrap_or(' '));
        format.push_str(tf);
    }
    if m.tz.is_some() {
        format.push('Z');
    }
    from_format(s, &format)
}

/// moment's `configFromStringAndFormat` (not strict) for ISO formats.
fn from_format(input: &str, format: &str) -> Option<Parsed> {
    let mut a: [Option<f64>; 7] = [None; 7];
    // Week-year, week, weekday, day of year, zone offset (minutes).
    let (mut gg, mut ww, mut e, mut doy) = (None, None, None, None);
    let mut tzm: Option<i32> = None;
    let mut empty = true;
    let mut rest = input;
    for tok in tokenize(format) {
        let (name, is_token) = match tok {
            Tok::Token(t) => (t, true),
            Tok::Lit(l) => (l, false),
        };
        let Some((st, en)) = find_token(name, rest) else { continue };
        let text = &rest[st..en];
        rest = &rest[en..];
        if !is_token {
            continue;
        }
        empty = false;
        let v = to_int(text);
        match name {
            "YYYYYY" => a[0] = Some(v),
            "YYYY" => a[0] = Some(if text.len() == 2 { v + if v > 68.0 { 1900.0 } else { 2000.0 } } else { v }),
            "MM" => a[1] = Some(v - 1.0),
            "DD" => a[2] = Some(v),
            "HH" => a[3] = Some(v),
            "mm" => a[4] = Some(v),
            "ss" => a[5] = Some(v),
            "SSSS" => {
                let frac: f64 = format!("0.{text}").parse().unwrap_or(0.0);
                let ms = frac * 1000.0;
                a[6] = Some(if ms.is_finite() { ms.trunc() } else { 0.0 });
            }
            "DDD" => doy = Some(v),
            "GGGG" => gg = Some(v),
            "WW" => ww = Some(v),
            "E" => e = Some(v),
            "Z" => tzm = Some(offset_minutes(text)?),
            _ => {}
        }
    }
    if empty {
        return None;
    }
    // configFromArray.
    let (mut overflow_weeks, mut overflow_weekday, mut overflow_doy) = (false, false, false);
    if (gg.is_some() || ww.is_some() || e.is_some()) && a[2].is_none() && a[1].is_none() {
        // dayOfYearFromWeekInfo with ISO weeks (dow 1, doy 4). The week-year
        // is always given in ISO forms.
        let week_year = gg.or(a[0])?;
        let week = ww.unwrap_or(1.0);
        let weekday = e.unwrap_or(1.0);
        let weeks = (days_in_year(week_year) - first_week_offset(week_year) + first_week_offset(week_year + 1.0)) / 7.0;
        if week < 1.0 || week > weeks {
            overflow_weeks = true;
        } else if !(1.0..=7.0).contains(&weekday) {
            overflow_weekday = true;
        } else {
            let local_weekday = (7.0 + weekday - 1.0) % 7.0;
            let day = 1.0 + 7.0 * (week - 1.0) + local_weekday + first_week_offset(week_year);
            let (y, d) = if day <= 0.0 {
                (week_year - 1.0, days_in_year(week_year - 1.0) + day)
            } else if day > days_in_year(week_year) {
                (week_year + 1.0, day - days_in_year(week_year))
            } else {
                (week_year, day)
            };
            a[0] = Some(y);
            doy = Some(d);
        }
    }
    if let Some(d) = doy {
        // The year is always given in ISO forms.
        let y = a[0]?;
        if d > days_in_year(y) || d == 0.0 {
            overflow_doy = true;
        }
        // createUTCDate(y, 0, d): day d of the year, rolling over.
        let days = days_from_civil(y as i64, 1, 1) as f64 + d - 1.0;
        let (_, mm, dd) = super::civil_from_days(days as i64);
        a[1] = Some(f64::from(mm) - 1.0);
        a[2] = Some(f64::from(dd));
    }
    // Week forms whose week overflowed leave the date to "today"; invalid anyway.
    let year = a[0]?;
    let month = a[1].unwrap_or(0.0);
    let day = a[2].unwrap_or(1.0);
    let (mut h, mi, se, ms) = (a[3].unwrap_or(0.0), a[4].unwrap_or(0.0), a[5].unwrap_or(0.0), a[6].unwrap_or(0.0));
    // checkOverflow.
    let mut overflow = !(0.0..=11.0).contains(&month)
        || day < 1.0
        || day > days_in_month(year, month)
        || !(0.0..=24.0).contains(&h)
        || (h == 24.0 && (mi != 0.0 || se != 0.0 || ms != 0.0))
        || !(0.0..=59.0).contains(&mi)
        || !(0.0..=59.0).contains(&se)
        || !(0.0..=999.0).contains(&ms);
    overflow |= overflow_doy || overflow_weeks || overflow_weekday;
    if overflow {
        return None;
    }
    let next_day = h == 24.0;
    if next_day {
        h = 0.0;
    }
    let wall = Wall { year, month0: month, day, hour: h, minute: mi, second: se, millis: ms };
    match tzm {
        Some(off) => {
            let t = utc_millis_of(&wall);
            if t.abs() > 8.64e15 {
                return None;
            }
            let t = t - f64::from(off) * 60_000.0 + if next_day { 86_400_000.0 } else { 0.0 };
            Some(Parsed::Utc(t))
        }
        None => Some(Parsed::Local(wall, next_day)),
    }
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/// moment's `configFromRFC2822` (with `preprocessRFC2822`).
fn parse_rfc2822(s: &str) -> Option<Parsed> {
    // Comments and tabs/newlines become spaces, runs of two or more white
    // space characters one space, and the ends are trimmed.
    let mut pre = String::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '(' {
            if let Some(n) = chars[i + 1..].iter().position(|&c| c == '(' || c == ')') {
                if chars[i + 1 + n] == ')' {
                    pre.push(' ');
                    i += n + 2;
                    continue;
                }
            }
        }
        pre.push(if matches!(chars[i], '\n' | '\t') { ' ' } else { chars[i] });
        i += 1;
    }
    let mut collapsed = String::new();
    let mut run: Vec<char> = Vec::new();
    for c in pre.chars().chain(std::iter::once('\u{0}')) {
        if is_js_space(c) {
            run.push(c);
            continue;
        }
        match run.len() {
            0 => {}
            1 => collapsed.push(run[0]),
            _ => collapsed.push(' '),
        }
        run.clear();
        if c != '\u{0}' {
            collapsed.push(c);
        }
    }
    let t = collapsed.trim_matches(is_js_space);
    let mut parts: Vec<&str> = t.split(is_js_space).collect();
    let mut weekday = None;
    if let Some(p) = WEEKDAYS.iter().position(|d| parts.first().is_some_and(|w| w.strip_suffix(',').unwrap_or(w) == *d))
    {
        weekday = Some(p as f64);
        parts.remove(0);
    }
    let [day, mon, year, hm, zone] = parts[..] else { return None };
    let digits = |x: &str, lo: usize, hi: usize| (lo..=hi).contains(&x.len()) && x.bytes().all(|c| c.is_ascii_digit());
    if !digits(day, 1, 2) || !digits(year, 2, 4) {
        return None;
    }
    let month = MONTHS.iter().position(|m| *m == mon)?;
    let hb = hm.as_bytes();
    let (hour, minute, second) = match hb.len() {
        5 if hb[2] == b':' => (&hm[0..2], &hm[3..5], None),
        8 if hb[2] == b':' && hb[5] == b':' => (&hm[0..2], &hm[3..5], Some(&hm[6..8])),
        _ => return None,
    };
    if !digits(hour, 2, 2) || !digits(minute, 2, 2) || !second.is_none_or(|s| digits(s, 2, 2)) {
        return None;
    }
    let offset = match zone {
        "UT" | "GMT" | "Z" | "z" => 0,
        "EDT" => -4 * 60,
        "EST" | "CDT" => -5 * 60,
        "CST" | "MDT" => -6 * 60,
        "MST" | "PDT" => -7 * 60,
        "PST" => -8 * 60,
        z if z.len() == 5 && matches!(z.as_bytes()[0], b'+' | b'-') && digits(&z[1..], 4, 4) => {
            let hm: i32 = z.parse().ok()?;
            let m = hm % 100;
            (hm - m) / 100 * 60 + m
        }
        _ => return None,
    };
    let y: f64 = year.parse().ok()?;
    let y = if y <= 49.0 {
        2000.0 + y
    } else if y <= 999.0 {
        1900.0 + y
    } else {
        y
    };
    let wall = Wall {
        year: y,
        month0: month as f64,
        day: day.parse().ok()?,
        hour: hour.parse().ok()?,
        minute: minute.parse().ok()?,
        second: second.map_or(Some(0.0), |s| s.parse().ok())?,
        millis: 0.0,
    };
    // checkWeekday: against `new Date(y, m, d).getDay()`.
    if weekday.is_some_and(|w| w != utc_weekday(wall.year, wall.month0, wall.day)) {
        return None;
    }
    // checkOverflow (the array has no milliseconds, so hour 24 overflows).
    if wall.day < 1.0
        || wall.day > days_in_month(wall.year, wall.month0)
        || wall.hour > 23.0
        || wall.minute > 59.0
        || wall.second > 59.0
    {
        return None;
    }
    let t = utc_millis_of(&wall);
    if t.abs() > 8.64e15 {
        return None;
    }
    Some(Parsed::Utc(t - f64::from(offset) * 60_000.0))
}

/// `moment(string)`: what moment reads, before range checks.
pub fn parse(s: &str) -> Option<Parsed> {
    // aspNetJsonRegex: /^\/?Date\((-?\d+)/i
    let t = s.strip_prefix('/').unwrap_or(s);
    if t.len() >= 5 && t.is_char_boundary(5) && t[..5].eq_ignore_ascii_case("date(") {
        let rest = &t[5..];
        let neg = rest.starts_with('-');
        let digits: String = rest[usize::from(neg)..].chars().take_while(char::is_ascii_digit).collect();
        if !digits.is_empty() {
            let v: f64 = digits.parse().unwrap_or(f64::INFINITY);
            return Some(Parsed::Utc(if neg { -v } else { v }));
        }
    }
    if iso_match(s).is_some() {
        return parse_iso(s);
    }
    parse_rfc2822(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> Option<f64> {
        match parse(s)? {
            Parsed::Utc(t) => Some(t),
            Parsed::Local(..) => None,
        }
    }

    #[test]
    fn iso_forms() {
        assert_eq!(utc("2024-01-15T09:30:00.016Z"), Some(1_705_311_000_016.0));
        assert_eq!(utc("+275760-09-13T00:00:00.000Z"), Some(8.64e15));
        assert_eq!(utc("20240115T093000Z"), Some(1_705_311_000_000.0));
        assert_eq!(utc("2024-01-15T24:00:00Z"), Some(1_705_363_200_000.0));
        assert_eq!(utc("2024-01-15T09:30:00+05:30"), Some(1_705_291_200_000.0));
        assert!(parse("2024-01-15T24:00:01Z").is_none());
        assert!(parse("2023-02-29").is_none());
        assert!(matches!(parse("2024-W03-1"), Some(Parsed::Local(w, false)) if w.month0 == 0.0 && w.day == 15.0));
        assert!(matches!(parse("2024-015"), Some(Parsed::Local(w, false)) if w.day == 15.0));
        assert_eq!(utc("Mon, 15 Jan 2024 09:30:00 GMT"), Some(1_705_311_000_000.0));
        assert!(parse("Tue, 15 Jan 2024 09:30:00 GMT").is_none());
        assert_eq!(utc("/Date(1705311000000)/"), Some(1_705_311_000_000.0));
    }
}
