//! `prodtrace doctor` against independent facts about the running kernel:
//! bpftool's own feature probes, /sys/kernel/btf/vmlinux, uname; and the
//! uprobe attach switch (PRODTRACE_UPROBES) as `latency` uses it.
//! Needs root and bpftool (scripts/setup.sh).

mod latency_support;

use std::process::Command;
use std::time::Duration;

use latency_support::*;
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(120);

fn doctor_json(env: &[(&str, &str)]) -> Value {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_prodtrace"));
    cmd.args(["doctor", "--json"]).envs(env.iter().copied());
    let (st, out) = run(&mut cmd, LIMIT);
    assert!(st.success(), "{}", out.output());
    serde_json::from_str(&out.stdout().join("\n")).unwrap_or_else(|e| panic!("{e}: {}", out.output()))
}

fn found(doc: &Value, feature: &str) -> bool {
    match doc["features"][feature]["found"].as_str() {
        Some("yes") => true,
        Some("no") => false,
        other => panic!("{feature}: {other:?} in {doc}"),
    }
}

/// Each BPF feature as bpftool finds it; BTF and the kernel release as the
/// kernel shows them.
#[test]
fn features_agree_with_bpftool() {
    let doc = doctor_json(&[]);
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(doc["kernel"], release.trim());
    assert_eq!(doc["bpf_privileges"], true);
    assert_eq!(found(&doc, "BTF (/sys/kernel/btf/vmlinux)"), std::path::Path::new("/sys/kernel/btf/vmlinux").exists());

    let out = Command::new("bpftool").args(["-j", "feature", "probe", "kernel"]).output().expect("bpftool");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let probe: Value = serde_json::from_slice(&out.stdout).unwrap();
    let helper = |prog: &str, name: &str| {
        probe["helpers"][format!("{prog}_available_helpers")].as_array().unwrap().iter().any(|h| h == name)
    };
    assert_eq!(found(&doc, "BPF ring buffer"), probe["map_types"]["have_ringbuf_map_type"] == true);
    assert_eq!(found(&doc, "BPF cookies on uprobes"), helper("kprobe", "bpf_get_attach_cookie"));
    assert_eq!(found(&doc, "bpf_send_signal_thread"), helper("raw_tracepoint", "bpf_send_signal_thread"));
    assert_eq!(doc["tools"]["gcore"]["runs"], true);
}

/// uprobe_multi links: when doctor finds them, latency forced onto them
/// counts exactly; when not, it refuses in one line naming the feature and
/// the kernel.  doctor's latency line names the path either way.
#[test]
fn uprobe_multi_as_latency_uses_it() {
    let doc = doctor_json(&[]);
    let multi = found(&doc, "uprobe_multi links");
    let how = doc["tools"]["latency"]["how"].as_str().unwrap();
    assert_eq!(how.starts_with("uprobe_multi links"), multi, "{how}");

    let mut cmd = latency(&["--json", "--", "node", "sqlite-demo.js"]);
    cmd.env("PRODTRACE_UPROBES", "multi").env("SQLITE_DEMO_ITERATIONS", "10");
    let (st, out) = run(&mut cmd, LIMIT);
    if multi {
        assert!(st.success(), "{}", out.output());
        assert_eq!(counts(&json_reports(&out)[0]), expected_counts(10), "{}", out.output());
    } else {
        assert_eq!(st.code(), Some(1), "{}", out.output());
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        assert_eq!(
            out.stderr(),
            vec![format!(
                "prodtrace: PRODTRACE_UPROBES=multi: prodtrace latency needs uprobe_multi links (Linux 6.6+); this kernel is {}",
                release.trim()
            )]
        );
    }
}

/// PRODTRACE_UPROBES: doctor shows the forced path; a bad value is one line.
#[test]
fn forced_uprobe_method() {
    let doc = doctor_json(&[("PRODTRACE_UPROBES", "classic")]);
    let how = doc["tools"]["latency"]["how"].as_str().unwrap();
    assert!(how.starts_with("classic uprobes") && how.ends_with("(forced by PRODTRACE_UPROBES=classic)"), "{how}");

    let mut cmd = latency(&["-p", &std::process::id().to_string()]);
    cmd.env("PRODTRACE_UPROBES", "fast");
    let (st, out) = run(&mut cmd, LIMIT);
    assert_eq!(st.code(), Some(1), "{}", out.output());
    assert_eq!(
        out.stderr(),
        vec!["prodtrace: PRODTRACE_UPROBES=fast is not one of auto, multi, classic, classic-pid, classic-system"]
    );
}

/// Without privileges doctor still runs, and says what the BPF tools need.
#[test]
fn not_root() {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"])
        .arg(env!("CARGO_BIN_EXE_prodtrace"))
        .arg("doctor");
    let (st, out) = run(&mut cmd, LIMIT);
    assert!(st.success(), "{}", out.output());
    let text = out.stdout();
    for tool in ["latency ", "catch ", "bunyan -p "] {
        let line = text.iter().find(|l| l.starts_with(tool)).unwrap_or_else(|| panic!("{tool}: {}", out.output()));
        assert!(line.contains("cannot run: needs root, or the CAP_BPF and CAP_PERFMON capabilities"), "{line}");
    }
    assert!(text.iter().any(|l| l.starts_with("uprobe_multi links") && l.contains("unknown")), "{}", out.output());
}
