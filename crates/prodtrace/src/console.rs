//! Writing to standard output and standard error without ever failing.
//!
//! `println!` panics when stdout is a closed pipe (`prodtrace ... | head`)
//! or a full disk (`> /dev/full`); a tool that holds processes stopped must
//! not die there. [`outln!`] writes a line of the report to stdout; once
//! stdout fails it says so once on stderr and sends the rest of the report
//! to stderr, so nothing (a core's path, how to resume a process) is lost.
//! [`errln!`] writes to stderr and ignores failures.

use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once writing to stdout failed.
static STDOUT_FAILED: AtomicBool = AtomicBool::new(false);

/// Writes one line to stdout, or to stderr once stdout has failed.
pub fn out(args: fmt::Arguments) {
    if !STDOUT_FAILED.load(Ordering::SeqCst) {
        let mut stdout = std::io::stdout().lock();
        match stdout.write_fmt(args).and_then(|()| stdout.write_all(b"\n")).and_then(|()| stdout.flush()) {
            Ok(()) => return,
            Err(e) => {
                STDOUT_FAILED.store(true, Ordering::SeqCst);
                let why = e.to_string();
                let why = why.split(" (os error").next().unwrap_or(&why).to_string();
                err(format_args!(
                    "prodtrace: cannot write to standard output ({why}); the rest of the report goes to standard error"
                ));
            }
        }
    }
    err(args);
}

/// Writes one line to stderr; a failure is ignored (there is nowhere left
/// to report it).
pub fn err(args: fmt::Arguments) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_fmt(args).and_then(|()| stderr.write_all(b"\n"));
}

/// `println!` that never panics: see the module documentation.
macro_rules! outln {
    ($($arg:tt)*) => { $crate::console::out(format_args!($($arg)*)) };
}

/// `eprintln!` that never panics.
macro_rules! errln {
    ($($arg:tt)*) => { $crate::console::err(format_args!($($arg)*)) };
}

pub(crate) use {errln, outln};
