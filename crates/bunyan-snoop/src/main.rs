//! `bunyan-snoop [-l LEVEL] PID|NAME|'*'`: the snooping engine without the
//! formatter — prints each snooped record's raw JSON on one line, and at the
//! end the numbers delivered and lost (reader behind, too long,
//! unreadable) on stderr.  `-l` enables only the
//! probes at LEVEL (a name or 10..60) and above.  (`bunyan -p` is the same
//! engine behind node-bunyan's CLI flags and formatting.)

use std::io::Write;

const USAGE: &str = "usage: bunyan-snoop [-l LEVEL] PID|NAME|'*'   (prints snooped bunyan records as JSON lines)";

/// A level name (`debug`) or number (`20`).
fn parse_level(s: &str) -> Option<u8> {
    const NAMES: [&str; 6] = ["trace", "debug", "info", "warn", "error", "fatal"];
    s.parse::<u8>().ok().or_else(|| NAMES.iter().position(|n| n.eq_ignore_ascii_case(s)).map(|i| (i as u8 + 1) * 10))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (min_level, spec) = match args.as_slice() {
        [spec] => (0, spec),
        [flag, level, spec] if flag == "-l" => match parse_level(level) {
            Some(l) => (l, spec),
            None => {
                eprintln!("bunyan-snoop: unknown level {level:?} (trace, debug, info, warn, error, fatal or a number)");
                std::process::exit(2);
            }
        },
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    let mut out = std::io::stdout().lock();
    let options =
        bunyan_snoop::Options { min_level, notices: Some(|m| eprintln!("bunyan-snoop: {m}")), ..Default::default() };
    let result = bunyan_snoop::run_with(spec, options, &mut |rec| {
        out.write_all(rec)?;
        out.write_all(b"\n")?;
        out.flush()?;
        Ok(())
    });
    match result {
        Ok(stats) => eprintln!(
            "bunyan-snoop: {} records delivered, {} dropped (reader behind), {} too long, {} unreadable",
            stats.delivered, stats.dropped, stats.too_long, stats.unreadable
        ),
        // `bunyan-snoop … | head`: the reader left; not an error.
        Err(e) if e.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) => {}
        Err(e) => {
            eprintln!("bunyan-snoop: {e:#}");
            std::process::exit(1);
        }
    }
}
