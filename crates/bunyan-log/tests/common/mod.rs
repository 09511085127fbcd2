//! Shared test helper: a `Write` sink whose lines the test can read back.

use std::{
    io::{self, Write},
    sync::{Arc, Mutex},
};

/// A clonable in-memory sink.
#[derive(Clone, Default)]
pub struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Sink {
    /// Every line written so far, parsed as JSON (panics on invalid JSON).
    pub fn records(&self) -> Vec<serde_json::Map<String, serde_json::Value>> {
        let bytes = self.0.lock().unwrap().clone();
        let text = String::from_utf8(bytes).expect("records are UTF-8");
        text.lines()
            .map(|l| match serde_json::from_str::<serde_json::Value>(l) {
                Ok(serde_json::Value::Object(m)) => m,
                other => panic!("not a JSON object: {l:?} ({other:?})"),
            })
            .collect()
    }
}
