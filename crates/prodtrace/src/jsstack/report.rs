//! Printing stacks: native frames named with the `symbolize` crate (from
//! the live process, or from the files a core maps), JavaScript frames as
//! `name (script:line:column)`, as text or JSON.

use std::io::Write;

use anyhow::Result;
use serde_json::json;
use symbolize::{Snapshot, Symbolizer};
use v8::{Frame, FrameKind, Module};

pub struct Options {
    pub json: bool,
    pub all_threads: bool,
    pub js_only: bool,
}

/// One thread's stack.
pub struct ThreadStack {
    pub tid: u32,
    pub name: Option<String>,
    pub main: bool,
    pub frames: Vec<Frame>,
}

/// What was read from a process or a core.
pub struct Stacks {
    pub pid: u32,
    pub command: Option<String>,
    pub v8_version: Option<String>,
    /// How long a live process was stopped.
    pub paused_ms: Option<f64>,
    /// The process was stopped by a signal and was left so.
    pub left_stopped: bool,
    pub threads: Vec<ThreadStack>,
}

/// How native frames get their names.
pub enum Namer {
    Live { pid: u32, snapshot: Snapshot },
    Core { modules: Vec<Module> },
}

/// One printed line of a stack.
struct Line {
    pc: u64,
    text: String,
    json: serde_json::Value,
}

impl Namer {
    /// `(symbol+off, module)` of native PCs (return addresses: looked up
    /// at pc - 1, like a debugger).
    fn names(&self, symbolizer: &Symbolizer, pcs: &[(u64, bool)]) -> Vec<(Option<String>, Option<String>)> {
        let lookup: Vec<u64> = pcs.iter().map(|&(pc, ret)| if ret { pc - 1 } else { pc }).collect();
        match self {
            Namer::Live { pid, snapshot } => {
                let frames =
                    symbolizer.symbolize(*pid, &lookup).unwrap_or_else(|_| snapshot.symbolize(symbolizer, &lookup));
                frames
                    .into_iter()
                    .zip(pcs)
                    .map(|(f, &(_, ret))| {
                        let f = symbolize::Frame { offset: f.offset + u64::from(ret), ..f };
                        (
                            f.name.is_some().then(|| f.display()),
                            f.module.map(|m| symbolize::short_module(&m).to_string()),
                        )
                    })
                    .collect()
            }
            Namer::Core { modules } => lookup
                .iter()
                .zip(pcs)
                .map(|(&addr, &(_, ret))| {
                    let i = modules.partition_point(|m| m.end <= addr);
                    let Some(m) = modules.get(i).filter(|m| m.contains(addr)) else { return (None, None) };
                    let name = symbolizer.file_symbol(&m.file, addr - m.start + m.file_offset).map(|(n, off)| {
                        if off + u64::from(ret) == 0 {
                            n
                        } else {
                            format!("{n}+{:#x}", off + u64::from(ret))
                        }
                    });
                    (name, Some(symbolize::short_module(&m.path).to_string()))
                })
                .collect(),
        }
    }
}

fn has_js(frames: &[Frame]) -> bool {
    frames.iter().any(|f| matches!(f.kind, FrameKind::Js { .. }))
}

/// Prints the stacks.
pub fn print(stacks: &Stacks, namer: &Namer, opts: &Options) -> Result<()> {
    let symbolizer = Symbolizer::new();
    let shown: Vec<&ThreadStack> =
        stacks.threads.iter().filter(|t| opts.all_threads || t.main || has_js(&t.frames)).collect();
    let hidden = stacks.threads.len() - shown.len();
    let mut threads_json = Vec::new();
    let mut out = String::new();
    if !opts.json {
        out += &format!(
            "process {}{}{}{}\n",
            stacks.pid,
            stacks.command.as_ref().map_or(String::new(), |c| format!(" ({c})")),
            stacks.v8_version.as_ref().map_or(String::new(), |v| format!(", V8 {v}")),
            stacks.paused_ms.map_or(String::new(), |ms| format!(", paused {ms:.1} ms")),
        );
    }
    for t in shown {
        let lines = lines_of(t, namer, &symbolizer, opts);
        let label = thread_label(t);
        if opts.json {
            threads_json.push(json!({
                "tid": t.tid,
                "name": t.name,
                "main": t.main,
                "label": label,
                "frames": lines.iter().map(|l| l.json.clone()).collect::<Vec<_>>(),
            }));
        } else {
            out += &format!(
                "\nthread {} ({label}){}\n",
                t.tid,
                t.name.as_ref().map_or(String::new(), |n| format!(" \"{n}\""))
            );
            if lines.is_empty() {
                out += "  (no frames)\n";
            }
            for (i, l) in lines.iter().enumerate() {
                out += &format!("  #{i:<3} {:#018x}  {}\n", l.pc, l.text);
            }
        }
    }
    if opts.json {
        let doc = json!({
            "pid": stacks.pid,
            "command": stacks.command,
            "v8_version": stacks.v8_version,
            "paused_ms": stacks.paused_ms,
            "left_stopped": stacks.left_stopped,
            "threads": threads_json,
        });
        out = serde_json::to_string_pretty(&doc)? + "\n";
    } else {
        if hidden > 0 {
            out += &format!(
                "\n({hidden} other thread{} without JavaScript frames; -a shows them)\n",
                if hidden == 1 { "" } else { "s" }
            );
        }
        if stacks.left_stopped {
            out += "(the process was stopped by a signal before; it is left stopped)\n";
        }
    }
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error worth a message.
    let _ = stdout.write_all(out.as_bytes()).and_then(|_| stdout.flush());
    Ok(())
}

fn thread_label(t: &ThreadStack) -> &'static str {
    if t.main {
        "main thread"
    } else if has_js(&t.frames) {
        "worker thread"
    } else {
        "thread"
    }
}

/// The printed lines of one thread: one per native or V8 frame, one per
/// JavaScript function (inlined ones included).
fn lines_of(t: &ThreadStack, namer: &Namer, symbolizer: &Symbolizer, opts: &Options) -> Vec<Line> {
    let natives: Vec<(u64, bool)> =
        t.frames.iter().enumerate().filter(|(_, f)| f.kind == FrameKind::Native).map(|(i, f)| (f.pc, i > 0)).collect();
    let mut names = if opts.js_only { Vec::new() } else { namer.names(symbolizer, &natives) }.into_iter();
    let mut lines = Vec::new();
    for f in &t.frames {
        match &f.kind {
            FrameKind::Native => {
                if opts.js_only {
                    continue;
                }
                let (name, module) = names.next().unwrap_or((None, None));
                let text = match (&name, &module) {
                    (Some(n), Some(m)) => format!("{n}  [{m}]"),
                    (Some(n), None) => n.clone(),
                    (None, Some(m)) => format!("?? [{m}]"),
                    (None, None) => "??".to_string(),
                };
                let json = json!({"pc": format!("{:#x}", f.pc), "kind": "native", "symbol": name, "module": module});
                lines.push(Line { pc: f.pc, text, json });
            }
            FrameKind::V8 { label, builtin } => {
                if opts.js_only {
                    continue;
                }
                let text = f.kind.lines().unwrap_or_default().concat();
                let json = json!({"pc": format!("{:#x}", f.pc), "kind": "v8", "frame": label, "builtin": builtin});
                lines.push(Line { pc: f.pc, text, json });
            }
            FrameKind::Js { tier, functions } => {
                let texts = f.kind.lines().unwrap_or_default();
                for (i, (func, text)) in functions.iter().zip(texts).enumerate() {
                    let json = json!({
                        "pc": format!("{:#x}", f.pc),
                        "kind": "js",
                        "function": func.name,
                        "script": func.script,
                        "line": func.line,
                        "column": func.column,
                        "tier": tier.as_str(),
                        "inlined": i + 1 < functions.len(),
                    });
                    lines.push(Line { pc: f.pc, text, json });
                }
            }
        }
    }
    lines
}
