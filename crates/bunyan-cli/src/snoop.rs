//! `bunyan -p PID|NAME|'*'`: records from live processes, through the
//! same filter and renderer as files. The snooping engine (crate
//! `bunyan-snoop`) handles Ctrl-C/SIGTERM and reports what it dropped.

use crate::args::Pids;
use crate::output::Output;
use crate::process::Processor;
use anyhow::{bail, Result};

/// Snoops until interrupted or until the targets exit; returns the exit status.
pub fn run(pids: &Pids, level: Option<f64>, p: &mut Processor, out: &mut Output) -> Result<i32> {
    if let Some(l) = level.filter(|l| *l > 60.0) {
        bail!("level ({l}) exceeds maximum logging level");
    }
    let spec = match pids {
        Pids::Numbers(list) if list.iter().any(|p| p == "*") => "*".to_owned(),
        Pids::Numbers(list) => list.iter().map(|p| p.trim()).collect::<Vec<_>>().join(","),
        Pids::Name(name) => name.clone(),
    };
    let options = bunyan_snoop::Options { notices: Some(|m| eprintln!("bunyan: {m}")), ..Default::default() };
    let stats = bunyan_snoop::run_with(&spec, options, &mut |record: &[u8]| {
        let end = record.iter().rposition(|&b| b != 0 && b != b'\n' && b != b'\r').map_or(0, |i| i + 1);
        p.handle_line(&record[..end], &mut out.buf);
        out.flush()?;
        if out.closed {
            bail!("output closed");
        }
        Ok(())
    });
    out.flush()?;
    let stats = match stats {
        Ok(s) => s,
        Err(_) if out.closed => return Ok(0),
        Err(e) => return Err(e),
    };
    if stats.dropped > 0 {
        eprintln!("bunyan: {} records dropped (the reader fell behind)", stats.dropped);
    }
    if stats.too_long > 0 {
        eprintln!(
            "bunyan: {} records left out: longer than {} bytes, too long to snoop",
            stats.too_long,
            bunyan_snoop::MAX_RECORD
        );
    }
    if stats.unreadable > 0 {
        eprintln!(
            "bunyan: {} records left out: their text could not be read from the process's memory",
            stats.unreadable
        );
    }
    Ok(0)
}
