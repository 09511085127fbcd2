//! The engine against a plain C program whose bunyan probe has no semaphore
//! (tests/fixtures/nosema.c, compiled here with the system C compiler).

mod common;

use std::{path::Path, process::Command, time::Duration};

use common::*;

#[test]
fn snoops_probes_without_semaphores_in_a_c_program() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("nosema");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nosema.c");
    let st = Command::new("cc").arg("-O2").arg("-o").arg(&exe).arg(&src).status().expect("a C compiler (cc)");
    assert!(st.success(), "compiling {}", src.display());
    let probes = bunyan_snoop::notes::bunyan_probes(&exe).unwrap();
    assert_eq!(probes.len(), 1);
    assert_eq!((probes[0].name.as_str(), probes[0].semaphore_offset), ("log-info", None));

    let prog = Proc::spawn(&mut Command::new(&exe));
    assert_eq!(prog.stdout.next(Duration::from_secs(10)).as_deref(), Some("ready"));
    let mut snoop = Proc::spawn(Command::new(sibling_bin("bunyan-snoop", "bunyan-snoop")).arg(prog.pid().to_string()));
    let mut ns = Vec::new();
    while ns.len() < 10 {
        let r = record(&snoop.stdout.next(Duration::from_secs(20)).expect("records from the C program"));
        assert_eq!((r["name"].as_str(), r["pid"].as_i64()), (Some("nosema"), Some(prog.pid() as i64)));
        ns.push(r["n"].as_u64().unwrap());
    }
    assert!(ns.windows(2).all(|w| w[1] == w[0] + 1), "{ns:?}");
    snoop.signal(libc::SIGINT);
    assert!(snoop.wait(Duration::from_secs(10)).success());
}
