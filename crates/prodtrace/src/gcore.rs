//! `prodtrace gcore PID [-o FILE] [--max-size SIZE]`: write a core file of a
//! live process and let it run on, like gdb's `gcore`, with a much shorter
//! pause and a much smaller file (the writer is the `corefile` crate).
//!
//! SIGINT, SIGTERM and SIGHUP end a dump cleanly: the target is thawed and
//! the temporary file removed before gcore exits.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{bail, Context, Result};

use crate::console::outln;

/// Set by SIGINT, SIGTERM or SIGHUP; the core writer checks it between steps.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

#[derive(clap::Args)]
pub struct Args {
    /// Process to dump (it is paused while its memory is copied, then runs on;
    /// a process stopped by a signal is left stopped).
    pub pid: u32,
    /// Core file to write (an existing directory: DIR/core.PID) [default: core.PID]
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Refuse to write a core larger than this (bytes, or with a K, M, G or T suffix)
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_size: Option<u64>,
}

pub fn run(args: Args) -> Result<()> {
    ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst)).context("installing the Ctrl-C handler")?;
    let default_name = format!("core.{}", args.pid);
    let path = match args.output {
        Some(p) if p.is_dir() => p.join(default_name),
        Some(p) => p,
        None => PathBuf::from(default_name),
    };
    let opts = corefile::Options { max_size: args.max_size, first_thread: None, cancel: Some(&INTERRUPTED) };
    let r = match corefile::write_core(args.pid, &path, &opts) {
        Ok(r) => r,
        Err(e) if e.is::<corefile::Interrupted>() => {
            bail!("interrupted; no core written (process {} is as it was before the dump)", args.pid)
        }
        Err(e) => return Err(e),
    };
    outln!(
        "Saved {}: {}, {} thread{}, process paused {:.1} ms{}",
        path.display(),
        human(r.bytes),
        r.threads,
        if r.threads == 1 { "" } else { "s" },
        r.paused.as_secs_f64() * 1e3,
        if r.stopped { " (left stopped, as it was)" } else { "" }
    );
    Ok(())
}

/// "500M" → 500 MiB. Suffixes K, M, G, T (powers of 1024), optionally
/// followed by "B" or "iB".
fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim();
    let t = t.strip_suffix("iB").or_else(|| t.strip_suffix('B')).unwrap_or(t);
    let (num, shift) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => bail!("bad size {s:?}: use a number of bytes or a K, M, G or T suffix (e.g. 500M)"),
            };
            (&t[..i], shift)
        }
        _ => (t, 0),
    };
    match num.trim().parse::<u64>() {
        Ok(n) if n.leading_zeros() >= shift => Ok(n << shift),
        _ => bail!("bad size {s:?}: use a number of bytes or a K, M, G or T suffix (e.g. 500M)"),
    }
}

fn human(bytes: u64) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("500M").unwrap(), 500 << 20);
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("1kB").unwrap(), 1024);
        assert!(parse_size("12X").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("99999999999T").is_err());
        assert_eq!(human(1536), "1.5 KiB");
    }
}
