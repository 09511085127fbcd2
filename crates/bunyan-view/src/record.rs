//! Recognising Bunyan records among input lines, as node-bunyan does: a
//! line is a record only if it starts with `{`, parses as JSON, and has
//! non-null `v`, `level`, `name`, `hostname`, `pid`, `time` and `msg`.
//! Everything else is passed through (or dropped with `--strict`).

use crate::value::Value;

/// The bit of a field a valid record must have (non-null): `v`, `level`,
/// `name`, `hostname`, `pid`, `time`, `msg`; 0 for other fields.
pub(crate) fn required_bit(key: &str) -> u8 {
    match key {
        "v" => 1,
        "level" => 2,
        "name" => 4,
        "hostname" => 8,
        "pid" => 16,
        "time" => 32,
        "msg" => 64,
        _ => 0,
    }
}

/// All required fields present.
pub(crate) const ALL_REQUIRED: u8 = 0x7f;

/// Whether a parsed value is a valid Bunyan record (`isValidRecord`).
pub fn is_valid_record(v: &Value) -> bool {
    let Some(obj) = v.as_object() else {
        return false;
    };
    let mut seen = 0u8;
    for (k, val) in obj.entries() {
        let bit = required_bit(k);
        if bit != 0 {
            if matches!(val, Value::Null) {
                return false;
            }
            seen |= bit;
        }
    }
    seen == ALL_REQUIRED
}

/// Parses a line (without its newline) into a valid record, or `None` if
/// the line must be passed through unchanged.
pub fn parse_record(line: &str) -> Option<Value<'_>> {
    if !line.starts_with('{') {
        return None;
    }
    Value::parse(line).filter(is_valid_record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity() {
        let ok = r#"{"v":0,"level":30,"name":"a","hostname":"h","pid":1,"time":"t","msg":""}"#;
        assert!(parse_record(ok).is_some());
        assert!(parse_record(r#"{"v":0,"level":30,"name":"a","hostname":"h","pid":1,"time":"t","msg":null}"#).is_none());
        assert!(parse_record(r#"{"v":0,"level":30,"name":"a","hostname":"h","pid":1,"time":"t"}"#).is_none());
        assert!(parse_record(" {}").is_none());
        assert!(parse_record("{\"v\":0").is_none());
        assert!(parse_record("[1]").is_none());
        assert!(parse_record("").is_none());
    }
}
