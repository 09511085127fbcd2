//! `bunyan`: filter and pretty-print Bunyan logs, a drop-in for
//! node-bunyan's CLI (same options, same output byte for byte), plus
//! `-p` snooping of live processes through eBPF.

mod args;
mod input;
mod output;
mod pager;
mod process;
mod snoop;
mod sources;

use args::Opts;
use bunyan_view::{Filter, RenderOptions, Renderer};
use output::Output;
use process::Processor;
use std::io::{self, Write};
use std::sync::atomic::Ordering;

const NODE_BUNYAN_VERSION: &str = "1.8.15";

fn main() {
    std::process::exit(run());
}

fn run() -> i32 {
    let argv: Vec<String> = std::env::args_os().skip(1).map(|a| a.to_string_lossy().into_owned()).collect();
    let opts = match args::parse(&argv) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("bunyan: error: {e:#}");
            return 1;
        }
    };
    if opts.help {
        print!("{}", include_str!("help.txt"));
        return 0;
    }
    if opts.version {
        println!("bunyan {NODE_BUNYAN_VERSION} (prodtrace bunyan-cli {})", env!("CARGO_PKG_VERSION"));
        return 0;
    }
    if let (Some(p), false) = (&opts.pids, opts.files.is_empty()) {
        let shown = match p {
            args::Pids::Numbers(v) => v.join(","),
            args::Pids::Name(n) => n.clone(),
        };
        eprintln!("bunyan: error: can't use both \"-p PID\" ({shown}) and file ({}) args", opts.files.join(" "));
        return 1;
    }
    let color = opts.color.unwrap_or_else(|| {
        let env_off = std::env::var("BUNYAN_NO_COLOR").is_ok_and(|v| !v.is_empty());
        !env_off && unsafe { libc::isatty(1) } == 1
    });
    match execute(opts, color) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("bunyan: error: {e:#}");
            1
        }
    }
}

fn execute(opts: Opts, color: bool) -> anyhow::Result<i32> {
    let mut processor = Processor {
        filter: Filter { level: opts.level, conditions: opts.conditions },
        renderer: Renderer::new(RenderOptions {
            mode: opts.mode,
            json_indent: opts.json_indent,
            color,
            time: opts.time,
        }),
        strict: opts.strict,
    };

    if let Some(pids) = &opts.pids {
        let mut out = Output::new(Box::new(io::stdout()));
        let code = snoop::run(pids, opts.level, &mut processor, &mut out)?;
        finish_colors(color, &mut out)?;
        return Ok(code);
    }

    let mut pager =
        if pager::wanted(opts.paginate, !opts.files.is_empty(), false) { Some(pager::spawn()?) } else { None };
    let sink: Box<dyn Write> = match pager.as_mut().and_then(|p| p.stdin.take()) {
        Some(stdin) => Box::new(stdin),
        None => Box::new(io::stdout()),
    };
    let mut out = Output::new(sink);
    install_signal_handler(color, pager.is_some());

    let mut code = 0;
    match opts.files.as_slice() {
        [] => {
            if let Err(msg) = sources::run_single(stdin_input(), "-", &mut processor, &mut out)? {
                out.flush()?;
                eprintln!("bunyan: {msg}");
                code = 1;
            }
        }
        [path] => match sources::open(path) {
            Ok(r) => {
                if let Err(msg) = sources::run_single(r, path, &mut processor, &mut out)? {
                    out.flush()?;
                    eprintln!("bunyan: {msg}");
                    code = 1;
                }
            }
            Err(msg) => {
                eprintln!("bunyan: {msg}");
                code = 1;
            }
        },
        paths => code = sources::run_merged(paths, &mut processor, &mut out)?,
    }
    if sources::INTERRUPTED.load(Ordering::Relaxed) {
        code = 1;
    }
    finish_colors(color, &mut out)?;
    if let Some(mut child) = pager {
        out.close_sink();
        let status = child.wait()?;
        let pager_code = status.code().unwrap_or(1);
        if pager_code != 0 {
            return Ok(pager_code);
        }
    }
    Ok(code)
}

/// Standard input, polled unless it is a regular file.
fn stdin_input() -> input::Input {
    // SAFETY: fstat on fd 0 into a zeroed struct.
    let regular = unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        libc::fstat(0, &mut st) == 0 && (st.st_mode & libc::S_IFMT) == libc::S_IFREG
    };
    input::Input { reader: Box::new(io::stdin()), poll_fd: (!regular).then_some(0) }
}

/// node-bunyan ends colored output with a reset (`ESC[0m`).
fn finish_colors(color: bool, out: &mut Output) -> io::Result<()> {
    if color {
        out.buf.extend_from_slice(b"\x1b[0m");
    }
    out.flush()
}

/// Ctrl-C, SIGTERM, SIGHUP: reset colors and exit 1 like node-bunyan; with
/// a pager, stop reading and let the pager finish instead.
fn install_signal_handler(color: bool, paging: bool) {
    let _ = ctrlc::set_handler(move || {
        if paging {
            sources::INTERRUPTED.store(true, Ordering::Relaxed);
            return;
        }
        if color {
            let reset = b"\x1b[0m";
            // SAFETY: writing a static buffer to fd 1 is async-signal-safe enough here (handler thread).
            unsafe { libc::write(1, reset.as_ptr().cast(), reset.len()) };
        }
        std::process::exit(1);
    });
}
