//! `prodtrace`: DTrace-style production debugging for Linux, on eBPF.
//!
//! The binary is a thin dispatcher: each subcommand lives in its own module
//! (`latency`, `catch`, `gcore`, `jsstack`) with its clap `Args` and a `run` function.
//! Errors are printed as one line (`prodtrace: what happened: why`) and the
//! process exits 1; subcommands never leave probes attached or a target
//! stopped behind them.

mod catch;
mod console;
mod gcore;
mod jsstack;
mod latency;
mod privileges;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "prodtrace", version, about = "DTrace-style production debugging for Linux, on eBPF")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Latency histograms of the async operations native add-ons start on libuv's thread pool.
    Latency(latency::Args),
    /// Act at the exact moment a system call returns a matching result (print, abort, core, stop).
    Catch(catch::Args),
    /// Write a core file of a live process and let it run on (like gdb's gcore).
    Gcore(gcore::Args),
    /// JavaScript stacks of a live node process or a core file (names, scripts, current lines, inlined frames).
    Jsstack(jsstack::Args),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Latency(args) => latency::run(args),
        Command::Catch(args) => catch::run(args),
        Command::Gcore(args) => gcore::run(args),
        Command::Jsstack(args) => jsstack::run(args),
    };
    if let Err(err) = result {
        console::errln!("prodtrace: {err:#}");
        std::process::exit(1);
    }
}
