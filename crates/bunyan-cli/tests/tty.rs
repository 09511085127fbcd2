//! Behaviour on a terminal (through `script`, which gives the CLI a pty as
//! stdin and stdout): paging through `$PAGER` like node-bunyan (with
//! `LESS=FRX`), `--pager`/`--no-pager`/`BUNYAN_NO_PAGER`, and colors by
//! default unless `BUNYAN_NO_COLOR`.

mod common;

use std::process::Command;

/// Runs `bunyan ARGS` on a pseudo-terminal with extra environment.
fn on_tty(env: &str, args: &str) -> String {
    let cmd = format!("env -u BUNYAN_NO_PAGER -u BUNYAN_NO_COLOR {env} {} {args}", common::ours().display());
    let out = Command::new("script").args(["-qec", &cmd, "/dev/null"]).output().expect("script (bsdutils) is needed");
    assert!(out.status.success(), "{cmd}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).replace('\r', "")
}

fn sample() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.log");
    std::fs::write(
        &p,
        "{\"v\":0,\"level\":40,\"name\":\"app\",\"hostname\":\"h\",\"pid\":9,\"time\":\"2024-01-01T00:00:00.000Z\",\"msg\":\"careful\"}\nplain line\n",
    )
    .unwrap();
    let s = p.to_str().unwrap().to_owned();
    (dir, s)
}

#[test]
fn pages_and_colors_on_a_terminal() {
    let (_d, f) = sample();
    let paged = on_tty("PAGER='sed s/^/PAGED:/'", &f);
    assert_eq!(
        paged,
        "PAGED:[2024-01-01T00:00:00.000Z] \x1b[35m WARN\x1b[39m: app/9 on h: \x1b[36mcareful\x1b[39m\nPAGED:plain line\nPAGED:\x1b[0m"
    );
    let plain = on_tty("BUNYAN_NO_COLOR=1 PAGER='sed s/^/PAGED:/'", &format!("--no-pager {f}"));
    assert_eq!(plain, "[2024-01-01T00:00:00.000Z]  WARN: app/9 on h: careful\nplain line\n");
}

#[test]
fn pager_switches_and_less_settings() {
    let (_d, f) = sample();
    assert!(!on_tty("BUNYAN_NO_PAGER=1 PAGER='sed s/^/PAGED:/'", &f).contains("PAGED:"));
    assert!(on_tty("BUNYAN_NO_PAGER=1 PAGER='sed s/^/PAGED:/'", &format!("--pager {f}")).contains("PAGED:"));
    // The pager gets LESS=FRX unless LESS is set (`env` as the pager prints its environment).
    assert!(on_tty("-u LESS PAGER=env", &f).lines().any(|l| l == "LESS=FRX"));
    assert!(on_tty("LESS=S PAGER=env", &f).lines().any(|l| l == "LESS=S"));
}
