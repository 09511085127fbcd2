//! `prodtrace jsstack` against V8's own view of the stack, on every node
//! version it supports — 18 (Debian 12's build, V8 10.2), 20
//! (/usr/bin/node, V8 11.3), 22 (V8 12.4) and 24 (V8 13.6): the demo
//! program (`examples/node/jsstack-demo.js`) prints `new Error().stack`
//! just before it blocks, and gdb makes V8 print its stack
//! (`_v8_internal_Print_StackTrace()`); jsstack must agree with both —
//! functions, scripts, lines and columns, tiers, inlined functions — on
//! live processes and on their cores (prodtrace gcore, gdb's gcore, the
//! kernel's).  Each check is one function taking the node version; the
//! `versions!` list at the end makes one test of it per version
//! (`node18::interpreted_frames_match_v8`, ...).

mod jsstack_support;

use std::path::Path;
use std::sync::Mutex;

use jsstack_support::*;

fn main_thread(threads: &[JsThread], pid: u32) -> &JsThread {
    threads.iter().find(|t| t.tid == pid).expect("the main thread is always shown")
}

fn tiers(frames: &[&serde_json::Value]) -> Vec<String> {
    frames
        .iter()
        .map(|f| {
            format!(
                "{} {}{}",
                f["function"],
                f["tier"].as_str().unwrap_or("?"),
                if f["inlined"] == true { " inlined" } else { "" }
            )
        })
        .collect()
}

fn interpreted_frames_match_v8(node: Node) {
    let demo = Demo::start(node, &[], "interp", 1);
    let v8 = demo.v8_print_stack_trace(demo.pid);
    let (doc, threads) = parse_json(&jsstack(&[&demo.pid.to_string(), "--json"]));
    assert_eq!(doc["pid"], demo.pid);
    assert_eq!(doc["v8_version"], node.v8());
    let main = main_thread(&threads, demo.pid);
    assert_eq!(main.label, "main thread");
    let js = main.js();
    assert_matches_error_stack(&js, &demo.error_stack("main"));
    assert_matches_v8_trace(&js, &v8);
    // block <- recurse x4 <- the script, all in the interpreter.
    let names: Vec<&str> = js.iter().take(6).map(|f| f["function"].as_str().unwrap()).collect();
    assert_eq!(names, ["block", "recurse", "recurse", "recurse", "recurse", ""]);
    assert!(js.iter().take(6).all(|f| f["tier"] == "interpreted"), "{:?}", tiers(&js));
    // node's Module.prototype._compile: named from the source where node
    // compiles its modules (18, 20), from the receiver where they come
    // from its code cache without a name (22, 24).
    let compile = js.iter().find(|f| f["script"] == "node:internal/modules/cjs/loader").expect("node's module loader");
    assert!(["Module._compile", "_compile"].contains(&compile["function"].as_str().unwrap()), "{compile}");
    // Native frames around: the futex wait at the top, node's main below.
    let kinds: Vec<&str> = main.frames.iter().map(|f| f["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"native"), "{kinds:?}");
    let symbols: Vec<&str> = main.frames.iter().filter_map(|f| f["symbol"].as_str()).collect();
    assert!(symbols.iter().any(|s| s.contains("Builtin_AtomicsWait")), "{symbols:?}");
    assert!(symbols.iter().any(|s| s.starts_with("node::Start")), "{symbols:?}");
    let builtin_exit =
        main.frames.iter().position(|f| f["frame"] == "BuiltinExit wait").expect("the Atomics.wait exit frame");
    let first_js = main.frames.iter().position(|f| f["kind"] == "js").unwrap();
    assert_eq!(builtin_exit + 1, first_js);
}

fn optimized_frame_with_inlined_callee(node: Node) {
    optimized_frame(node, &["--allow-natives-syntax"], "opt", "turbofan");
}

/// Node 24 is the first whose V8 is built with Maglev.
fn maglev_frame_with_inlined_callee(node: Node) {
    optimized_frame(node, &["--allow-natives-syntax", "--maglev"], "maglev", "maglev");
}

fn optimized_frame(node: Node, node_args: &[&str], mode: &str, tier: &str) {
    let demo = Demo::start(node, node_args, mode, 1);
    let v8 = demo.v8_print_stack_trace(demo.pid);
    let (_, threads) = parse_json(&jsstack(&[&demo.pid.to_string(), "--json"]));
    let js = main_thread(&threads, demo.pid).js();
    assert_matches_error_stack(&js, &demo.error_stack("main"));
    assert_matches_v8_trace(&js, &v8);
    assert_eq!(
        tiers(&js)[..5],
        [
            "\"block\" interpreted".to_string(),
            "\"check\" interpreted".to_string(),
            format!("\"middle\" {tier} inlined"),
            format!("\"hot\" {tier}"),
            "\"optimized\" interpreted".to_string(),
        ]
    );
    // One machine frame for hot and the inlined middle.
    assert_eq!(js[2]["pc"], js[3]["pc"]);
    assert!(!v8.iter().any(|f| f.name == "middle"), "V8 prints physical frames only: {v8:?}");
}

fn baseline_frames(node: Node) {
    let demo = Demo::start(node, &["--allow-natives-syntax"], "baseline", 1);
    let v8 = demo.v8_print_stack_trace(demo.pid);
    let (_, threads) = parse_json(&jsstack(&[&demo.pid.to_string(), "--json"]));
    let js = main_thread(&threads, demo.pid).js();
    assert_matches_error_stack(&js, &demo.error_stack("main"));
    assert_matches_v8_trace(&js, &v8);
    assert_eq!(
        tiers(&js)[..5],
        [
            "\"block\" baseline",
            "\"check\" baseline",
            "\"middle\" baseline",
            "\"hot\" baseline",
            "\"baseline\" interpreted"
        ]
    );
}

fn frames_of_nodes_own_modules_and_builtins(node: Node) {
    let demo = Demo::start(node, &[], "internal", 1);
    let v8 = demo.v8_print_stack_trace(demo.pid);
    let (_, threads) = parse_json(&jsstack(&[&demo.pid.to_string(), "--json"]));
    let js = main_thread(&threads, demo.pid).js();
    let with_scripts: Vec<&serde_json::Value> = js.iter().copied().filter(|f| f["tier"] != "builtin").collect();
    let theirs: Vec<StackLine> = demo.error_stack("main").into_iter().filter(|l| l.file.is_some()).collect();
    assert_matches_error_stack(&with_scripts, &theirs);
    assert_matches_v8_trace(&js, &v8);
    let emit = js.iter().find(|f| f["function"] == "emit").expect("EventEmitter.prototype.emit");
    assert_eq!(emit["script"], "node:events");
    let for_each = js.iter().find(|f| f["function"] == "forEach").expect("Array.prototype.forEach");
    assert_eq!(for_each["tier"], "builtin");
    assert!(for_each["script"].is_null());
}

fn names_of_methods_and_anonymous_functions(node: Node) {
    let demo = Demo::start(node, &[], "names", 1);
    let v8 = demo.v8_print_stack_trace(demo.pid);
    let (_, threads) = parse_json(&jsstack(&[&demo.pid.to_string(), "--json"]));
    let js = main_thread(&threads, demo.pid).js();
    // The async function's resumption is a builtin Error.stack leaves out.
    let with_scripts: Vec<&serde_json::Value> = js.iter().copied().filter(|f| f["tier"] != "builtin").collect();
    assert_matches_error_stack(&with_scripts, &demo.error_stack("main"));
    assert_matches_v8_trace(&js, &v8);
    // fastKey and dictKey are anonymous functions only their receivers
    // name (a fast object, a dictionary-mode object); obj.method is the
    // name V8 inferred from the source; m and s are class methods.
    let names: Vec<&str> = js.iter().take(7).map(|f| f["function"].as_str().unwrap()).collect();
    assert_eq!(names, ["block", "fastKey", "dictKey", "obj.method", "m", "s", "asy"]);
}

fn worker_thread_and_main_thread(node: Node) {
    let demo = Demo::start(node, &[], "worker", 2);
    let (_, threads) = parse_json(&jsstack(&[&demo.pid.to_string(), "--json"]));
    let main = main_thread(&threads, demo.pid);
    let workers: Vec<&JsThread> = threads.iter().filter(|t| t.label == "worker thread").collect();
    assert_eq!(workers.len(), 1, "{threads:?}");
    assert_matches_error_stack(&main.js(), &demo.error_stack("main"));
    assert_matches_error_stack(&workers[0].js(), &demo.error_stack("worker"));
    let v8 = demo.v8_print_stack_trace(workers[0].tid);
    assert_matches_v8_trace(&workers[0].js(), &v8);
    let v8_main = demo.v8_print_stack_trace(demo.pid);
    assert_matches_v8_trace(&main.js(), &v8_main);
    // Text output labels both.
    let out = jsstack(&[&demo.pid.to_string()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("thread {} (main thread)", demo.pid)), "{stdout}");
    assert!(stdout.contains(&format!("thread {} (worker thread)", workers[0].tid)), "{stdout}");
}

/// The JavaScript frames of a thread as comparable tuples.
fn js_tuples(t: &JsThread) -> Vec<String> {
    t.js()
        .iter()
        .map(|f| {
            format!("{} {} {} {} {} {}", f["function"], f["script"], f["line"], f["column"], f["tier"], f["inlined"])
        })
        .collect()
}

fn cores_from_prodtrace_gdb_and_the_kernel_read_like_the_live_process(node: Node) {
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(node, &["--allow-natives-syntax"], "opt", 1);
    let pid = demo.pid.to_string();
    let (_, live) = parse_json(&jsstack(&[&pid, "--json"]));
    let live = js_tuples(main_thread(&live, demo.pid));
    assert!(live.len() >= 5, "{live:?}");

    let ours = dir.path().join("core.prodtrace");
    gcore(demo.pid, &ours);
    let gdbs = dir.path().join("core.gdb");
    let o = std::process::Command::new("gdb")
        .args(["-nx", "-batch", "-p", &pid, "-ex"])
        .arg(format!("gcore {}", gdbs.display()))
        .output()
        .unwrap();
    assert!(gdbs.exists(), "gdb wrote no core: {}", text(&o));
    for core in [&ours, &gdbs] {
        let (doc, threads) = parse_json(&jsstack(&["--core", core.to_str().unwrap(), "--json"]));
        assert_eq!(doc["pid"], demo.pid, "{}", core.display());
        assert_eq!(js_tuples(main_thread(&threads, demo.pid)), live, "{}", core.display());
        // --exe names the binary explicitly.
        let exe = node.path();
        let (_, threads) =
            parse_json(&jsstack(&["--core", core.to_str().unwrap(), "--exe", exe.to_str().unwrap(), "--json"]));
        assert_eq!(js_tuples(main_thread(&threads, demo.pid)), live, "{} --exe", core.display());
    }
    drop(demo);

    // The kernel's core of the same program, killed by SIGABRT.
    let kernel = kernel_core(node, dir.path());
    let (_, threads) = parse_json(&jsstack(&["--core", kernel.1.to_str().unwrap(), "--json"]));
    let main = main_thread(&threads, kernel.0);
    let js = js_tuples(main);
    // Same program, same stop: the same frames (the PCs differ).
    assert_eq!(js, live, "kernel core");
}

/// Held while core_pattern is changed (tests run in parallel).
static CORE_PATTERN: Mutex<()> = Mutex::new(());

/// Runs the demo ("opt") with `ulimit -c unlimited`, kills it with
/// SIGABRT and returns its PID and the core the kernel wrote into `dir`
/// (core_pattern is set for this and restored).
fn kernel_core(node: Node, dir: &Path) -> (u32, std::path::PathBuf) {
    let _lock = CORE_PATTERN.lock().unwrap_or_else(|e| e.into_inner());
    let _guard = CorePattern::set(&format!("{}/core.%p", dir.display()));
    let demo = Demo::start_with(node, &["--allow-natives-syntax"], "opt", 1, |cmd| {
        use std::os::unix::process::CommandExt;
        // SAFETY: setrlimit is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                let lim = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
                if libc::setrlimit(libc::RLIMIT_CORE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    });
    let pid = demo.pid;
    unsafe { libc::kill(pid as i32, libc::SIGABRT) };
    let core = dir.join(format!("core.{pid}"));
    let mut demo = demo;
    let status = demo.child.wait().unwrap();
    assert!(!status.success());
    // The kernel has written the core once the process is reaped.
    assert!(core.exists(), "no kernel core at {}", core.display());
    (pid, core)
}

/// Sets /proc/sys/kernel/core_pattern and puts the old one back when dropped.
struct CorePattern(String);

impl CorePattern {
    fn set(pattern: &str) -> CorePattern {
        let old = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
        std::fs::write("/proc/sys/kernel/core_pattern", pattern).unwrap();
        CorePattern(old)
    }
}

impl Drop for CorePattern {
    fn drop(&mut self) {
        let _ = std::fs::write("/proc/sys/kernel/core_pattern", self.0.trim_end());
    }
}

fn running_optimized_code_is_read_and_left_running(node: Node) {
    let demo = Demo::start(node, &[], "spin", 1);
    // Let the loop get optimized (on-stack replacement).
    let mut js = Vec::new();
    for _ in 0..100 {
        let (_, threads) = parse_json(&jsstack(&[&demo.pid.to_string(), "--json"]));
        js = main_thread(&threads, demo.pid).js().into_iter().cloned().collect();
        if js.first().is_some_and(|f| f["function"] == "spin" && f["tier"] == "turbofan") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let first = &js[0];
    assert_eq!((first["function"].as_str(), first["tier"].as_str()), (Some("spin"), Some("turbofan")), "{js:#?}");
    assert_eq!(first["script"].as_str(), Some(demo_script().to_str().unwrap()));
    // Inside the loop's body (inlined callees allowed on top of it).
    let spin = js.iter().find(|f| f["function"] == "spin" && f["inlined"] == false).unwrap();
    let line = spin["line"].as_u64().unwrap();
    let src = std::fs::read_to_string(demo_script()).unwrap();
    let loop_line = src.lines().position(|l| l.contains("for (;;)")).unwrap() as u64 + 1;
    assert_eq!(line, loop_line, "{js:#?}");
    // Left running, untraced.
    let status = std::fs::read_to_string(format!("/proc/{}/status", demo.pid)).unwrap();
    assert!(status.contains("TracerPid:\t0"), "{status}");
    let cpu = || -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", demo.pid)).unwrap();
        let f: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
        f[11].parse().unwrap()
    };
    let before = cpu();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(cpu() > before, "the target runs on");
}

/// One test per check and node version: `node18::baseline_frames`, ...
macro_rules! versions {
    ($($module:ident: $major:literal { $($extra:ident),* }),* $(,)?) => {$(
        mod $module {
            const NODE: super::Node = super::Node($major);
            #[test]
            fn interpreted_frames_match_v8() {
                super::interpreted_frames_match_v8(NODE)
            }
            #[test]
            fn optimized_frame_with_inlined_callee() {
                super::optimized_frame_with_inlined_callee(NODE)
            }
            #[test]
            fn baseline_frames() {
                super::baseline_frames(NODE)
            }
            #[test]
            fn frames_of_nodes_own_modules_and_builtins() {
                super::frames_of_nodes_own_modules_and_builtins(NODE)
            }
            #[test]
            fn names_of_methods_and_anonymous_functions() {
                super::names_of_methods_and_anonymous_functions(NODE)
            }
            #[test]
            fn worker_thread_and_main_thread() {
                super::worker_thread_and_main_thread(NODE)
            }
            #[test]
            fn cores_from_prodtrace_gdb_and_the_kernel_read_like_the_live_process() {
                super::cores_from_prodtrace_gdb_and_the_kernel_read_like_the_live_process(NODE)
            }
            #[test]
            fn running_optimized_code_is_read_and_left_running() {
                super::running_optimized_code_is_read_and_left_running(NODE)
            }
            $(
                #[test]
                fn $extra() {
                    super::$extra(NODE)
                }
            )*
        }
    )*};
}

versions! {
    node18: 18 {},
    node20: 20 {},
    node22: 22 {},
    node24: 24 { maglev_frame_with_inlined_callee },
}
