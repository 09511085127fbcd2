//! `bunyan-snoop PID|NAME|'*'`: the snooping engine without the formatter —
//! prints each snooped record's raw JSON on one line, and at the end the
//! numbers delivered and dropped on stderr.  (`bunyan -p` is the same engine
//! behind node-bunyan's CLI flags and formatting.)

use std::io::Write;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(spec), None) = (args.next(), args.next()) else {
        eprintln!("usage: bunyan-snoop PID|NAME|'*'   (prints snooped bunyan records as JSON lines)");
        std::process::exit(2);
    };
    let mut out = std::io::stdout().lock();
    let result = bunyan_snoop::run(&spec, &mut |rec| {
        out.write_all(rec)?;
        out.write_all(b"\n")?;
        out.flush()?;
        Ok(())
    });
    match result {
        Ok(stats) => eprintln!(
            "bunyan-snoop: {} records delivered, {} dropped",
            stats.delivered, stats.dropped
        ),
        // `bunyan-snoop … | head`: the reader left; not an error.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) => {}
        Err(e) => {
            eprintln!("bunyan-snoop: {e:#}");
            std::process::exit(1);
        }
    }
}
