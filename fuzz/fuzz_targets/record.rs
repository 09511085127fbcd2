//! Fuzzes the record path of the `bunyan` CLI: JSON parsing (checked
//! against serde_json's acceptance), record validation, and rendering in
//! every output mode, with and without colors and local time.
#![no_main]

use bunyan_view::js::to_number;
use bunyan_view::parse::{parse_json, parse_record_above, Filtered};
use bunyan_view::{is_valid_record, OutputMode, RenderOptions, Renderer, TimeZone};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let ours = parse_json(&text);
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(_) => assert!(ours.is_some(), "valid JSON rejected: {text:?}"),
        Err(e) => assert!(
            ours.is_none() || e.to_string().contains("number out of range"),
            "invalid JSON accepted: {text:?} ({e})"
        ),
    }
    // The `-l` fast path must decide exactly like a full parse.
    for min in [30.0, 45.0] {
        let full = match ours.as_ref().filter(|_| text.starts_with('{')) {
            Some(v) if is_valid_record(v) => Some(to_number(v.get("level").unwrap()) < min),
            _ => None,
        };
        let fast = match parse_record_above(&text, min) {
            Filtered::Below => Some(true),
            Filtered::NotRecord => None,
            Filtered::Parsed(v) if is_valid_record(&v) => {
                Some(to_number(v.get("level").unwrap()) < min)
            }
            Filtered::Parsed(_) => None,
        };
        assert_eq!(fast, full, "-l {min} decision differs for {text:?}");
    }
    let Some(v) = ours else { return };
    if !is_valid_record(&v) {
        return;
    }
    let mut out = Vec::new();
    for mode in [
        OutputMode::Long,
        OutputMode::Short,
        OutputMode::Simple,
        OutputMode::Json,
        OutputMode::Bunyan,
        OutputMode::Inspect,
    ] {
        for (color, time) in [(false, TimeZone::Utc), (true, TimeZone::Local)] {
            let mut r = Renderer::new(RenderOptions {
                mode,
                json_indent: 2,
                color,
                time,
            });
            out.clear();
            r.render(&mut out, &v);
            assert!(out.ends_with(b"\n"));
        }
    }
});
