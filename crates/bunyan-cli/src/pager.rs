//! Paging like node-bunyan: when stdout and stdin are terminals and files
//! are given, output goes through `$PAGER` (default `less`, with
//! `LESS=FRX` unless `LESS` is set) unless `--no-pager` or `BUNYAN_NO_PAGER`.

use anyhow::{bail, Context, Result};
use std::process::{Child, Command, Stdio};

/// Starts the pager; its stdin is where output goes.
pub fn spawn() -> Result<Child> {
    let cmd = std::env::var("PAGER").ok().filter(|p| !p.trim().is_empty()).unwrap_or_else(|| "less".into());
    if cmd.contains('"') || cmd.contains('\'') {
        bail!("cannot parse PAGER quotes yet");
    }
    let argv: Vec<&str> = cmd.split_whitespace().collect();
    let mut c = Command::new(argv[0]);
    c.args(&argv[1..]).stdin(Stdio::piped());
    if std::env::var_os("LESS").is_none() {
        c.env("LESS", "FRX");
    }
    c.spawn().with_context(|| format!("could not start the pager {:?}", argv[0]))
}

/// Whether output should be paged (node-bunyan's rule).
pub fn wanted(paginate: Option<bool>, have_files: bool, snooping: bool) -> bool {
    let tty = |fd| unsafe { libc::isatty(fd) } == 1;
    let env_off = std::env::var("BUNYAN_NO_PAGER").is_ok_and(|v| !v.is_empty());
    tty(1) && tty(0) && !snooping && have_files && (paginate == Some(true) || (paginate != Some(false) && !env_off))
}
