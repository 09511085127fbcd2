//! Bunyan levels: names, numbers, and the `-l LEVEL` argument.

use crate::js;
use crate::value::{Number, Value};

/// `trace`..`fatal` with their numbers.
pub const LEVELS: [(&str, u32); 6] =
    [("trace", 10), ("debug", 20), ("info", 30), ("warn", 40), ("error", 50), ("fatal", 60)];

/// The standard level a record's `level` value designates, looked up the
/// way node does (`table[rec.level]`, i.e. by the value's string form).
pub fn standard_level(v: &Value) -> Option<u32> {
    let n = match v {
        Value::Number(Number::U(u)) => *u,
        Value::Number(Number::F(f)) if f.fract() == 0.0 && *f >= 0.0 && *f < 100.0 => *f as u64,
        Value::Number(_) => return None,
        Value::String(s) => match s.as_ref() {
            "10" => 10,
            "20" => 20,
            "30" => 30,
            "40" => 40,
            "50" => 50,
            "60" => 60,
            _ => return None,
        },
        Value::Array(_) => return standard_level(&Value::String(js::to_string(v).into())),
        _ => return None,
    };
    (n % 10 == 0 && (10..=60).contains(&n)).then_some(n as u32)
}

/// Upper-case name (`INFO`) of a standard level number.
pub fn upper_name(level: u32) -> &'static str {
    match level {
        10 => "TRACE",
        20 => "DEBUG",
        30 => "INFO",
        40 => "WARN",
        50 => "ERROR",
        _ => "FATAL",
    }
}

/// Parses `-l LEVEL` like node-bunyan: `Number(arg)`, else a level name
/// (case-insensitive). `None` if neither.
pub fn parse_level_arg(arg: &str) -> Option<f64> {
    let n = js::string_to_number(arg);
    if !n.is_nan() {
        return Some(n);
    }
    let lower = arg.to_lowercase();
    LEVELS.iter().find(|(name, _)| *name == lower).map(|&(_, n)| f64::from(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_args() {
        assert_eq!(parse_level_arg("WARN"), Some(40.0));
        assert_eq!(parse_level_arg("35"), Some(35.0));
        assert_eq!(parse_level_arg("loud"), None);
    }

    #[test]
    fn level_lookup_uses_string_form() {
        assert_eq!(standard_level(&Value::parse("30").unwrap()), Some(30));
        assert_eq!(standard_level(&Value::parse("\"40\"").unwrap()), Some(40));
        assert_eq!(standard_level(&Value::parse("[50]").unwrap()), Some(50));
        assert_eq!(standard_level(&Value::parse("30.0").unwrap()), Some(30));
        assert_eq!(standard_level(&Value::parse("35").unwrap()), None);
        assert_eq!(standard_level(&Value::parse("\"030\"").unwrap()), None);
    }
}
