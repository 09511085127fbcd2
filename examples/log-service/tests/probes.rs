//! The service's USDT probes: present in its ELF notes as standard tools see
//! them (readelf), usable from bpftrace, and off (semaphores 0) by default.

mod common;

use std::{process::Command, time::Duration};

use common::*;

const LEVELS: [&str; 6] = ["log-debug", "log-error", "log-fatal", "log-info", "log-trace", "log-warn"];

#[test]
fn notes_list_six_probes_with_semaphores() {
    let mut probes = bunyan_snoop::notes::bunyan_probes(&service_bin()).unwrap();
    probes.sort_by(|a, b| a.name.cmp(&b.name));
    let names: Vec<_> = probes.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, LEVELS);
    assert!(probes.iter().all(|p| p.semaphore_offset.is_some()));

    // binutils' readelf decodes the same notes.
    let out = Command::new("readelf").arg("-n").arg(service_bin()).output().expect("readelf (binutils) is installed");
    let text = String::from_utf8_lossy(&out.stdout);
    for name in LEVELS {
        assert!(text.contains(&format!("Name: {name}")), "readelf shows {name}:\n{text}");
    }
    assert_eq!(text.matches("Provider: bunyan").count(), 6);
    assert_eq!(text.matches("Arguments: 8@%rdi").count(), 6);
}

#[test]
fn semaphores_are_zero_without_a_tracer() {
    let svc = start_service(&["--rate", "100"]);
    assert!(semaphores(svc.pid()).iter().all(|(_, v)| *v == 0));
}

/// `bpftrace -e 'usdt:BINARY:bunyan:log-debug { printf("%s\n", str(arg0)); }'`
/// prints the debug records the service's own stdout never shows.
#[test]
fn bpftrace_prints_debug_records() {
    let svc = start_service(&["--rate", "50"]);
    let script = format!("usdt:{}:bunyan:log-debug {{ printf(\"%s\\n\", str(arg0)); }}", service_bin().display());
    let mut bt = Proc::spawn(
        Command::new("bpftrace")
            .env("BPFTRACE_STRLEN", "200")
            .args(["-p", &svc.pid().to_string(), "-e", &script])
            .stderr(std::process::Stdio::null()),
    );
    let mut debug = Vec::new();
    while debug.len() < 10 {
        let line = bt.stdout.next(Duration::from_secs(20)).expect("bpftrace printed records");
        if line.starts_with('{') {
            debug.push(line);
        }
    }
    // bpftrace stops on SIGINT; the kernel then drops the semaphores.
    bt.signal(libc::SIGINT);
    bt.wait(Duration::from_secs(10));
    let prefix = "{\"name\":\"log-service\",\"hostname\":";
    for line in &debug {
        assert!(line.starts_with(prefix), "{line}");
        assert!(
            line.contains(&format!("\"pid\":{},\"component\":\"handler\",\"level\":20,\"req_id\":", svc.pid())),
            "{line}"
        );
    }
    wait_semaphores(svc.pid(), 0, Duration::from_secs(5));
    drop(svc);
}
