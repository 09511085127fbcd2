//! Rendering of errors as Bunyan's `err` field: `{message, name, stack}`.

use std::error::Error;

use serde::Serialize;

/// An error as node-bunyan's `err` serializer renders it: `message` (its
/// `Display`), `name` (the error's type name, without its module path) and
/// `stack` (`name: message`, then one `Caused by: …` line per `source()`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ErrValue {
    /// The error's `Display` text.
    pub message: String,
    /// The error's type name (`"Error"` for a `dyn Error`).
    pub name: String,
    /// `name: message` and the chain of sources, one per line.
    pub stack: String,
}

/// Renders `e` (and its `source()` chain) for the `err` field.
pub fn err<E: Error + ?Sized>(e: &E) -> ErrValue {
    let name = short_type_name(std::any::type_name::<E>());
    let message = e.to_string();
    let mut stack = format!("{name}: {message}");
    let mut source = e.source();
    while let Some(s) = source {
        stack.push_str("\nCaused by: ");
        stack.push_str(&s.to_string());
        source = s.source();
    }
    ErrValue { message, name, stack }
}

/// `std::io::error::Error` → `Error`, `&my::ParseError<u8>` → `ParseError`,
/// `dyn core::error::Error + Send` → `Error`.
fn short_type_name(full: &str) -> String {
    let t = full.trim_start_matches('&').trim_start_matches("dyn ");
    let t = t.split(['<', ' ']).next().unwrap_or(t);
    t.rsplit("::").next().unwrap_or(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short() {
        assert_eq!(short_type_name("std::io::error::Error"), "Error");
        assert_eq!(short_type_name("&my::ParseError<u8>"), "ParseError");
        assert_eq!(short_type_name("dyn core::error::Error + Send + Sync"), "Error");
    }
}
