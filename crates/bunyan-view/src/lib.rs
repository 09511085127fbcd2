//! Bunyan log record parsing and rendering (not yet implemented).
