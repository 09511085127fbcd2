//! The per-line pipeline shared by files, stdin and `-p`: recognise a
//! record, filter it, render it; anything that is not a valid record is
//! passed through byte for byte (unless `--strict`).

use bunyan_view::parse::{parse_record_above_built, Filtered};
use bunyan_view::skim::skim_below;
use bunyan_view::time::date_millis;
use bunyan_view::{is_valid_record, parse_record, Filter, Renderer};
use std::borrow::Cow;

/// What a line turned out to be, for merging several files by time.
pub enum Kind {
    /// Not a record: shown as is (or dropped with `--strict`).
    Other,
    /// A record the filters hide.
    Hidden,
    /// A record to show, with its time (ms since the epoch, NaN if unknown).
    Shown(f64),
}

/// The line as text. Like node (which decodes input as UTF-8), invalid
/// bytes become U+FFFD for parsing; lines that are not records are still
/// passed through with their original bytes.
fn decode(line: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(line) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(line),
    }
}

pub struct Processor {
    pub filter: Filter,
    pub renderer: Renderer,
    pub strict: bool,
}

impl Processor {
    /// An independent copy for another thread.
    pub fn fork(&self) -> Processor {
        Processor {
            filter: self.filter.clone(),
            renderer: Renderer::new(*self.renderer.options()),
            strict: self.strict,
        }
    }

    /// Handles one input line (without its `\n`), appending output to `out`.
    pub fn handle_line(&mut self, line: &[u8], out: &mut Vec<u8>) {
        if line.first() != Some(&b'{') {
            return self.pass_through(line, out);
        }
        if let Some(min) = self.filter.level_only() {
            // Most hidden records are recognised on the raw bytes.
            if skim_below(line, min) {
                return;
            }
            let decoded = decode(line);
            match parse_record_above_built(&decoded, min) {
                Filtered::Below => {}
                Filtered::NotRecord => self.pass_through(line, out),
                Filtered::Parsed(rec) if is_valid_record(&rec) => {
                    if self.filter.matches(&rec) {
                        self.renderer.render(out, &rec);
                    }
                }
                Filtered::Parsed(_) => self.pass_through(line, out),
            }
            return;
        }
        match parse_record(&decode(line)) {
            Some(rec) => {
                if self.filter.matches(&rec) {
                    self.renderer.render(out, &rec);
                }
            }
            None => self.pass_through(line, out),
        }
    }

    /// Appends a non-record line as is (unless strict).
    pub fn pass_through(&self, line: &[u8], out: &mut Vec<u8>) {
        if !self.strict {
            out.extend_from_slice(line);
            out.push(b'\n');
        }
    }

    /// Classifies a line without rendering it.
    pub fn classify(&self, line: &[u8]) -> Kind {
        if line.first() != Some(&b'{') {
            return Kind::Other;
        }
        match parse_record(&decode(line)) {
            Some(rec) if self.filter.matches(&rec) => {
                Kind::Shown(date_millis(rec.get("time").unwrap_or(&bunyan_view::Value::Null)))
            }
            Some(_) => Kind::Hidden,
            None => Kind::Other,
        }
    }

    /// Renders a line already classified as [`Kind::Shown`].
    pub fn render_shown(&mut self, line: &[u8], out: &mut Vec<u8>) {
        if let Some(rec) = parse_record(&decode(line)) {
            self.renderer.render(out, &rec);
        }
    }
}
