//! `prodtrace jsstack`: the JavaScript stacks of a live node process or of
//! a core file, like a debugger's `bt` with JavaScript frames: function
//! names, scripts and current line:column (inlined functions expanded),
//! native frames interleaved.
//!
//! Submodules: [`live`] (stop the process briefly, read, resume),
//! [`core`] (read a core file), [`report`] (name native frames, print text
//! or JSON).  The V8 reading itself lives in the `v8` crate.

mod core;
mod live;
mod report;

pub(crate) use live::modules_of;

use std::path::PathBuf;

use anyhow::{bail, Result};

const EXAMPLES: &str = "\
Examples:
  prodtrace jsstack 4242                    # every thread with JavaScript frames
  prodtrace jsstack 4242 --json
  prodtrace jsstack --core core.4242        # executable found from the core's notes
  prodtrace jsstack --core core.4242 --exe /opt/node-20/bin/node";

/// Command line of `prodtrace jsstack`.
#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Process to read (it is stopped while its stacks are read, then resumed; a process stopped by a signal
    /// stays stopped)
    #[arg(value_name = "PID", required_unless_present = "core", conflicts_with = "core")]
    pid: Option<u32>,
    /// Read a core file instead of a live process
    #[arg(long, value_name = "FILE")]
    core: Option<PathBuf>,
    /// With --core: the node executable to read (default: the one the core names)
    #[arg(long, value_name = "BINARY", requires = "core")]
    exe: Option<PathBuf>,
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
    /// Show every thread, also those without JavaScript frames
    #[arg(short = 'a', long)]
    all_threads: bool,
    /// Show JavaScript frames only (no native or V8-internal frames)
    #[arg(long)]
    js_only: bool,
}

pub fn run(args: Args) -> Result<()> {
    let opts = report::Options { json: args.json, all_threads: args.all_threads, js_only: args.js_only };
    match (args.pid, &args.core) {
        (Some(pid), None) => live::run(pid, &opts),
        (None, Some(core)) => core::run(core, args.exe.as_deref(), &opts),
        _ => bail!("give a PID or --core FILE"),
    }
}
