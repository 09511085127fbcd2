//! End-to-end tests of `prodtrace latency` on real targets: /usr/bin/node
//! running examples/node/sqlite-demo.js with the npm sqlite3 add-on (N-API),
//! node's own thread-pool work, and a C program using Debian's libuv.so.
//! The number of operations is established independently (bpftrace
//! counting the add-on's execute callbacks and uv_queue_work calls in the
//! same run, and the programs' own counts) and must match exactly.
//! Needs root (BPF), bpftrace, cc and libuv1-dev (scripts/setup.sh).

mod latency_support;

use std::collections::BTreeMap;
use std::time::Duration;

use latency_support::*;
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(120);

/// The core promise: attached with -p to a live node, the per-kind counts
/// equal what bpftrace sees the add-on execute, kinds are sqlite3's own
/// functions, and the latencies are plausible.
#[test]
fn counts_match_bpftrace_exactly() {
    const N: u64 = 300;
    let mut demo = waiting_demo(N as u32);
    let pid = demo.pid();
    let bpf = Bpftrace::count_operations(pid);
    let mut tracer = Running::start(&mut latency(&["-p", &pid.to_string(), "--json"]));
    tracer.wait_line("Tracing", true, LIMIT);
    demo.send_line("go");
    assert!(demo.wait(LIMIT).success(), "{}", demo.output());
    // The target exited: prodtrace prints what it collected and exits 0.
    let st = tracer.wait(Duration::from_secs(30));
    assert!(st.success(), "{}", tracer.output());
    let (truth, queued) = bpf.finish();

    let reports = json_reports(&tracer);
    assert_eq!(reports.len(), 1, "{}", tracer.output());
    let got = counts(&reports[0]);
    assert_eq!(got, truth, "prodtrace counts vs bpftrace's count of execute callbacks");
    assert_eq!(got.values().sum::<u64>(), queued, "every uv_queue_work call is counted once");
    // And against the demo's own count of completed calls.
    let summary = demo_summary(&demo);
    assert_eq!(summary["iterations"], N);
    assert_eq!(got["node_sqlite3::Database::Work_Open"], summary["calls"]["open"].as_u64().unwrap());
    assert_eq!(got["node_sqlite3::Database::Work_Close"], summary["calls"]["close"].as_u64().unwrap());
    assert_eq!(got["node_sqlite3::Database::Work_Exec"], summary["calls"]["exec"].as_u64().unwrap());
    let runs = summary["calls"]["run"].as_u64().unwrap() + summary["calls"]["stmt_run"].as_u64().unwrap();
    assert_eq!(got["node_sqlite3::Statement::Work_Run"], runs);
    assert_eq!(got, expected_counts(N), "per-iteration table used by the other tests");
    for k in &reports[0] {
        assert_eq!(k["module"], "node_sqlite3.node", "{k}");
        assert!(k["kind"].as_str().unwrap().starts_with("node_sqlite3::"), "{k}");
        assert_plausible(k);
    }
}

/// `-- CMD` traces from the first instruction (nothing missed: exact
/// counts), and the text output is DTrace's quantize layout.
#[test]
fn command_mode_text_output_is_dtrace_quantize() {
    const N: u64 = 100;
    let mut cmd = latency(&["--", "node", "sqlite-demo.js"]);
    cmd.env("SQLITE_DEMO_ITERATIONS", N.to_string());
    let (st, out) = run(&mut cmd, LIMIT);
    assert!(st.success(), "{}", out.output());
    let lines = out.stdout();
    // Blocks: "", "  module`kind", header, rows...
    let mut kinds: Vec<(String, u64)> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(name) = lines[i].strip_prefix("  node_sqlite3.node`") else {
            i += 1;
            continue;
        };
        assert_eq!(lines[i - 1], "", "blank line before each kind");
        assert_eq!(lines[i + 1], "           value  ------------- Distribution ------------- count");
        let mut rows = Vec::new();
        let mut j = i + 2;
        while j < lines.len() && lines[j].len() > 17 && lines[j].as_bytes()[17] == b'|' {
            rows.push(lines[j].clone());
            j += 1;
        }
        let mut total = 0;
        let mut values = Vec::new();
        for row in &rows {
            let (value, rest) = row.split_at(16);
            let value: u64 = value.trim_start().parse().unwrap_or_else(|_| panic!("row {row:?}"));
            let bar = &rest[2..42];
            assert!(bar.chars().all(|c| c == '@' || c == ' ') && !bar.contains(" @"), "bar {row:?}");
            let count: u64 = rest[43..].parse().unwrap_or_else(|_| panic!("row {row:?}"));
            total += count;
            values.push((value, count));
        }
        assert!(rows.len() >= 3, "{rows:?}");
        assert_eq!(values.first().unwrap().1, 0, "an empty row above the data");
        assert_eq!(values.last().unwrap().1, 0, "an empty row below the data");
        for w in values.windows(2) {
            assert!(w[1].0 == 2 * w[0].0 || (w[0].0 == 0 && w[1].0 == 1), "powers of two: {values:?}");
        }
        kinds.push((name.to_string(), total));
        i = j;
    }
    let got: BTreeMap<String, u64> = kinds.iter().cloned().collect();
    assert_eq!(got, expected_counts(N), "{}", out.output());
    let order: Vec<u64> = kinds.iter().map(|k| k.1).collect();
    assert!(order.windows(2).all(|w| w[0] <= w[1]), "sorted by count like DTrace: {order:?}");
    assert_eq!(demo_summary(&out)["iterations"], N);
}

/// --breakdown: every operation has its three phases, and they add up
/// exactly to the total latency.
#[test]
fn breakdown_phases_add_up() {
    const N: u64 = 100;
    let mut cmd = latency(&["--json", "--breakdown", "--", "node", "sqlite-demo.js"]);
    cmd.env("SQLITE_DEMO_ITERATIONS", N.to_string());
    let (st, out) = run(&mut cmd, LIMIT);
    assert!(st.success(), "{}", out.output());
    let report = &json_reports(&out)[0];
    assert_eq!(counts(report), expected_counts(N));
    for k in report {
        let phases = ["queue_wait", "run", "completion_delay"];
        let mut sum = 0;
        for p in phases {
            assert_eq!(k[p]["count"], k["count"], "{p} of {k}");
            assert!(k[p]["max_ns"].as_u64().unwrap() <= k["max_ns"].as_u64().unwrap(), "{p} of {k}");
            sum += k[p]["sum_ns"].as_u64().unwrap();
        }
        assert_eq!(sum, k["sum_ns"].as_u64().unwrap(), "phases add up to the total: {k}");
        assert!(k["run"]["min_ns"].as_u64().unwrap() > 0);
    }
}

/// --by caller names the native function that started each operation (the
/// first frame outside node and libuv), not the execute callback.
#[test]
fn by_caller_names_native_callers() {
    const N: u64 = 100;
    let mut cmd = latency(&["--json", "--by", "caller", "--", "node", "sqlite-demo.js"]);
    cmd.env("SQLITE_DEMO_ITERATIONS", N.to_string());
    let (st, out) = run(&mut cmd, LIMIT);
    assert!(st.success(), "{}", out.output());
    let report = &json_reports(&out)[0];
    let got = counts(report);
    assert_eq!(got.values().sum::<u64>(), 17 * N, "{got:?}");
    let defaults = expected_counts(N);
    for k in report {
        assert_eq!(k["module"], "node_sqlite3.node", "{k}");
        let name = k["kind"].as_str().unwrap();
        assert!(name.starts_with("node_sqlite3::"), "{k}");
        assert!(!defaults.contains_key(name), "a caller, not the execute callback: {k}");
        assert_plausible(k);
    }
}

/// --interval prints one report per interval; together they count every
/// operation of the run exactly once.
#[test]
fn interval_reports_add_up() {
    let mut cmd = latency(&["--json", "--interval", "1", "--", "node", "sqlite-demo.js"]);
    cmd.env("SQLITE_DEMO_DURATION", "3.5");
    let (st, out) = run(&mut cmd, LIMIT);
    assert!(st.success(), "{}", out.output());
    let reports = json_reports(&out);
    assert!(reports.len() >= 3, "{} reports:\n{}", reports.len(), out.output());
    let mut total: BTreeMap<String, u64> = BTreeMap::new();
    for r in &reports {
        for (k, n) in counts(r) {
            *total.entry(k).or_default() += n;
        }
    }
    let iterations = demo_summary(&out)["iterations"].as_u64().unwrap();
    assert!(iterations > 0);
    assert_eq!(total, expected_counts(iterations));
}

/// A C program using Debian's (stripped) libuv.so, started with `-- CMD`:
/// libuv is found through DT_NEEDED before it is loaded, and each work_cb
/// is a kind with its exact count.
#[test]
fn libuv_so_program() {
    let dir = tempfile::tempdir().unwrap();
    let exe = build_uv_work(dir.path());
    let exe = exe.to_str().unwrap();
    // 300 + 50 uv_queue_work items and 40 uv_fs_stat, libuv's own request
    // type, found in the stripped libuv.so through uv_fs_stat's code; libuv.so
    // is not even loaded when the probes go in (the command is held at exec).
    let (st, out) = run(&mut latency(&["--json", "--", exe, "300", "50", "40"]), LIMIT);
    assert!(st.success(), "{}", out.output());
    assert!(out.stdout().contains(&r#"{"uv_work":{"hash_work":300,"sleep_work":50,"fs_stat":40}}"#.to_string()));
    let report = &json_reports(&out)[0];
    let want: BTreeMap<String, u64> = [("hash_work", 300), ("sleep_work", 50), ("uv_fs_stat", 40)]
        .into_iter()
        .map(|(k, n)| (k.to_string(), n))
        .collect();
    assert_eq!(counts(report), want, "{}", out.output());
    for k in report {
        let module = if k["kind"] == "uv_fs_stat" { "libuv.so.1" } else { "uv-work" };
        assert_eq!(k["module"], module, "{k}");
        assert_plausible(k);
    }
    // sleep_work sleeps 200 µs on the worker: its latency includes it.
    let sleep = report.iter().find(|k| k["kind"] == "sleep_work").unwrap();
    assert!(sleep["min_ns"].as_u64().unwrap() >= 200_000, "{sleep}");

    // --breakdown finds libuv.so's worker loop without symbols: every
    // operation has its phases, and sleep_work's run phase is its sleep.
    let (st, out) = run(&mut latency(&["--json", "--breakdown", "--", exe, "30", "5", "10"]), LIMIT);
    assert!(st.success(), "{}", out.output());
    assert!(!out.output().contains("worker loop not found"), "{}", out.output());
    let report = &json_reports(&out)[0];
    for k in report {
        for p in ["queue_wait", "run", "completion_delay"] {
            assert_eq!(k[p]["count"], k["count"], "{p} of {k}");
        }
    }
    let sleep = report.iter().find(|k| k["kind"] == "sleep_work").unwrap();
    assert!(sleep["run"]["min_ns"].as_u64().unwrap() >= 200_000, "{sleep}");

    let (st, out) = run(&mut latency(&["--json", "--by", "caller", "--", exe, "30", "5"]), LIMIT);
    assert!(st.success(), "{}", out.output());
    let report = &json_reports(&out)[0];
    assert_eq!(report.len(), 1, "{report:?}");
    assert!(report[0]["kind"].as_str().unwrap().starts_with("submit_next"), "{report:?}");
    assert_eq!(report[0]["count"], 35);
}

/// Node's own thread-pool work (crypto, zlib) is named by its
/// ThreadPoolWork class.
#[test]
fn node_internal_threadpool_work() {
    let mut cmd = latency(&["--json", "--", "node", "threadpool-demo.js"]);
    cmd.env("THREADPOOL_DEMO_COUNT", "10");
    let (st, out) = run(&mut cmd, LIMIT);
    assert!(st.success(), "{}", out.output());
    let got = counts(&json_reports(&out)[0]);
    assert_eq!(
        got.get("node::crypto::DeriveBitsJob<node::crypto::PBKDF2Traits>::DoThreadPoolWork"),
        Some(&10),
        "{got:?}"
    );
    assert_eq!(
        got.get("node::crypto::DeriveBitsJob<node::crypto::ScryptTraits>::DoThreadPoolWork"),
        Some(&10),
        "{got:?}"
    );
    let zlib: u64 = got.iter().filter(|(k, _)| k.contains("Zlib")).map(|(_, n)| n).sum();
    assert!(zlib >= 10, "{got:?}");
    // One name for the one binary: `node`, as for its fs kinds (was `exe`,
    // from /proc/PID/exe).
    for k in &json_reports(&out)[0] {
        assert_eq!(k["module"], "node", "{k}");
    }
}

/// --by caller on work JavaScript starts (node's crypto and fs, on the main
/// thread and in worker threads): no native function outside node starts
/// it, so every operation keeps its default kind, with exact counts —
/// attached to a running process as with `-- CMD`.  (With -p every
/// operation was attributed to libc's __libc_start_call_main or
/// start_thread: the range skipped as "node" covered every mapping of the
/// node binary, including the copies of its builtins V8 maps next to its
/// JIT code; worker threads' JIT code showed as raw addresses.)
#[test]
fn by_caller_without_native_caller_keeps_default_kinds() {
    const N: u64 = 40;
    const WORKERS: u64 = 2;
    let want: BTreeMap<String, u64> = [
        ("node::crypto::DeriveBitsJob<node::crypto::PBKDF2Traits>::DoThreadPoolWork", N * (WORKERS + 1)),
        ("uv_fs_stat", N * (WORKERS + 1)),
    ]
    .into_iter()
    .map(|(k, n)| (k.to_string(), n))
    .collect();
    let demo_args = ["worker-demo.js".to_string(), N.to_string(), WORKERS.to_string()];
    let check = |out: &Running| {
        let report = &json_reports(out)[0];
        assert_eq!(counts(report), want, "{}", out.output());
        for k in report {
            assert_eq!(k["module"], "node", "{k}");
        }
    };

    let mut cmd = latency(&["--json", "--by", "caller", "--", "node"]);
    cmd.args(&demo_args);
    let (st, out) = run(&mut cmd, LIMIT);
    assert!(st.success(), "{}", out.output());
    check(&out);

    let mut cmd = std::process::Command::new(NODE);
    cmd.args(&demo_args).current_dir(node_dir()).env("WORKER_DEMO_WAIT", "stdin");
    let mut demo = Running::start(&mut cmd);
    demo.wait_line("ready", false, LIMIT);
    let mut tracer = Running::start(&mut latency(&["-p", &demo.pid().to_string(), "--json", "--by", "caller"]));
    tracer.wait_line("Tracing", true, LIMIT);
    demo.send_line("go");
    assert!(demo.wait(LIMIT).success(), "{}", demo.output());
    assert!(tracer.wait(LIMIT).success(), "{}", tracer.output());
    check(&tracer);
}

/// Thousands of operations in flight at once (more than the BPF program's
/// table of slots, so some take its overflow map) are all counted.
#[test]
fn many_operations_in_flight() {
    const N: u64 = 6000;
    let script = format!(
        "const c = require('crypto'); let n = 0; \
         for (let i = 0; i < {N}; i++) c.pbkdf2('p', 's', 1, 16, 'sha1', () => {{ n++; }}); \
         process.on('exit', () => console.log(JSON.stringify({{ completed: n }})));"
    );
    let (st, out) = run(&mut latency(&["--json", "--", "node", "-e", &script]), LIMIT);
    assert!(st.success(), "{}", out.output());
    assert!(out.stdout().contains(&format!("{{\"completed\":{N}}}")), "{}", out.output());
    let got = counts(&json_reports(&out)[0]);
    assert_eq!(
        got.get("node::crypto::DeriveBitsJob<node::crypto::PBKDF2Traits>::DoThreadPoolWork"),
        Some(&N),
        "{got:?}"
    );
    assert!(!out.output().contains("not tracked"), "{}", out.output());
}

/// -d ends the session on time while the target keeps running; the
/// target is left running, not stopped, and without breakpoints.
#[test]
fn duration_ends_tracing_and_leaves_target_clean() {
    let mut demo = looping_demo();
    std::thread::sleep(Duration::from_millis(500));
    let pid = demo.pid();
    let t0 = std::time::Instant::now();
    let (st, out) = run(&mut latency(&["-p", &pid.to_string(), "-d", "2s", "--json"]), LIMIT);
    let took = t0.elapsed();
    assert!(st.success(), "{}", out.output());
    assert!(took >= Duration::from_secs(2) && took < Duration::from_secs(20), "{took:?}");
    let report = &json_reports(&out)[0];
    assert!(!report.is_empty());
    for k in report {
        assert_plausible(k);
    }
    assert!(!stopped(pid));
    assert!(!code_modified(pid, "uv_queue_work") && !code_modified(pid, "uv__queue_done"));
    demo.signal(libc::SIGTERM);
    assert!(demo.wait(LIMIT).success());
    assert!(demo_summary(&demo)["iterations"].as_u64().unwrap() > 0);
}

#[test]
fn json_fields_are_complete() {
    let mut cmd = latency(&["--json", "--", "node", "sqlite-demo.js"]);
    cmd.env("SQLITE_DEMO_ITERATIONS", "20");
    let (st, out) = run(&mut cmd, LIMIT);
    assert!(st.success(), "{}", out.output());
    for k in &json_reports(&out)[0] {
        for f in ["kind", "module", "count", "sum_ns", "min_ns", "max_ns", "p50_ns", "p90_ns", "p99_ns", "buckets"] {
            assert!(k.get(f).is_some_and(|v| !v.is_null()), "{f} in {k}");
        }
        assert!(matches!(k["buckets"], Value::Array(_)));
    }
}

/// A target that exits right after its first operations still gets its
/// kinds named (prodtrace hears about the add-on being loaded through
/// ld.so's debugger hook and reads the mappings while they exist).
#[test]
fn short_lived_target_kinds_are_named() {
    let mut cmd = latency(&["--json", "--", "node", "sqlite-demo.js"]);
    cmd.env("SQLITE_DEMO_ITERATIONS", "1");
    let (st, out) = run(&mut cmd, LIMIT);
    assert!(st.success(), "{}", out.output());
    assert_eq!(counts(&json_reports(&out)[0]), expected_counts(1), "{}", out.output());
}

/// A NAN-style add-on (examples/node/uv-addon) calling uv_queue_work
/// directly inside node: kinds are its work callback, or with --by caller
/// the add-on function that queued the work; counts are exact.
#[test]
fn nan_style_addon_in_node() {
    let dir = tempfile::tempdir().unwrap();
    let addon = dir.path().join("uv_addon.node");
    let src = repo().join("examples/node/uv-addon/uv_addon.c");
    let st = std::process::Command::new("cc")
        .args(["-O2", "-shared", "-fPIC", "-I/usr/include/node", "-o"])
        .arg(&addon)
        .arg(&src)
        .status()
        .unwrap();
    assert!(st.success(), "compiling {}", src.display());
    let demo = repo().join("examples/node/uv-addon/demo.js");
    for (by, kind) in [("work", "checksum_work"), ("caller", "checksum")] {
        let mut cmd = latency(&["--json", "--by", by, "--", "node"]);
        cmd.arg(&demo).arg("80").arg(&addon);
        let (st, out) = run(&mut cmd, LIMIT);
        assert!(st.success(), "{}", out.output());
        let report = &json_reports(&out)[0];
        assert_eq!(counts(report), BTreeMap::from([(kind.to_string(), 80)]), "{}", out.output());
        assert_eq!(report[0]["module"], "uv_addon.node");
        assert_plausible(&report[0]);
    }
}

/// A node whose executable was deleted after it started (a package
/// upgrade under a running service) can still be traced.
#[test]
fn executable_deleted_since_start() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("node");
    // cp(1), not std::fs::copy: a write descriptor of this test process
    // would leak into children other tests fork meanwhile (ETXTBSY at exec).
    assert!(std::process::Command::new("cp").arg(NODE).arg(&copy).status().unwrap().success());
    let mut cmd = std::process::Command::new(&copy);
    cmd.arg("sqlite-demo.js").current_dir(node_dir());
    let mut demo = Running::start(&mut cmd);
    std::thread::sleep(Duration::from_millis(500));
    std::fs::remove_file(&copy).unwrap();
    let (st, out) = run(&mut latency(&["-p", &demo.pid().to_string(), "-d", "1s", "--json"]), LIMIT);
    assert!(st.success(), "{}", out.output());
    let got = counts(&json_reports(&out)[0]);
    assert!(got.contains_key("node_sqlite3::Statement::Work_Run"), "{got:?}");
    demo.signal(libc::SIGTERM);
    assert!(demo.wait(LIMIT).success());
}

/// libuv's own requests from node (fs, getaddrinfo), which do not go
/// through uv_queue_work, are counted exactly and named by their uv_fs
/// type or work function.
#[test]
fn node_fs_and_dns_requests() {
    let (st, out) = run(&mut latency(&["--json", "--", "node", "fs-demo.js", "40"]), LIMIT);
    assert!(st.success(), "{}", out.output());
    let got = counts(&json_reports(&out)[0]);
    let want: BTreeMap<String, u64> =
        [("uv_fs_stat", 40), ("uv_fs_open", 40), ("uv_fs_close", 40), ("uv__getaddrinfo_work", 1)]
            .into_iter()
            .map(|(k, n)| (k.to_string(), n))
            .collect();
    assert_eq!(got, want, "{}", out.output());
    for k in &json_reports(&out)[0] {
        assert_eq!(k["module"], "node");
        assert_plausible(k);
    }
    // The worker-loop probes of --breakdown see libuv's own requests too.
    let (st, out) = run(&mut latency(&["--json", "--breakdown", "--", "node", "fs-demo.js", "40"]), LIMIT);
    assert!(st.success(), "{}", out.output());
    let report = &json_reports(&out)[0];
    assert_eq!(counts(report), want, "{}", out.output());
    for k in report {
        for p in ["queue_wait", "run", "completion_delay"] {
            assert_eq!(k[p]["count"], k["count"], "{p} of {k}");
        }
    }
}
