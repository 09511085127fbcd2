//! `prodtrace doctor`: what this host's kernel offers and which path each
//! tool will take on it (or why it cannot run), so that an operator rolling
//! prodtrace out to a mixed fleet sees at once why something will or won't
//! work on a host.  Text, or one JSON object with --json.

use anyhow::Result;
use serde_json::{json, Value};

use crate::console;
use crate::features::{self, Feature, Found};
use crate::uprobes::{self, Method};

#[derive(clap::Args)]
#[command(after_help = "\
Run it as root: checking BPF features means loading small BPF programs.
PRODTRACE_UPROBES=auto|multi|classic|classic-pid|classic-system chooses how
`latency` attaches its uprobes (default auto: uprobe_multi links when the
kernel has them); doctor shows the result.")]
pub struct Args {
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// One tool's verdict: whether it runs here, and how (or what it lacks).
struct Verdict {
    tool: &'static str,
    runs: bool,
    how: String,
}

pub fn run(args: Args) -> Result<()> {
    let found: Vec<(Feature, Found)> = Feature::ALL.iter().map(|&f| (f, features::check(f))).collect();
    let root = crate::privileges::require_bpf("prodtrace").is_ok();
    let verdicts = verdicts(root);
    if args.json {
        let feats: serde_json::Map<String, Value> = found
            .iter()
            .map(|(f, st)| {
                let (state, why) = match st {
                    Found::Yes => ("yes", None),
                    Found::No => ("no", None),
                    Found::Unknown(why) => ("unknown", Some(why.clone())),
                };
                (f.label().to_string(), json!({ "found": state, "since": f.since(), "why": why }))
            })
            .collect();
        let tools: serde_json::Map<String, Value> =
            verdicts.iter().map(|v| (v.tool.to_string(), json!({ "runs": v.runs, "how": v.how }))).collect();
        let out = json!({
            "version": env!("CARGO_PKG_VERSION"),
            "kernel": features::kernel_release(),
            "bpf_privileges": root,
            "features": feats,
            "tools": tools,
        });
        console::outln!("{out}");
        return Ok(());
    }
    let mut out = String::new();
    out.push_str(&format!("prodtrace {} on Linux {}\n", env!("CARGO_PKG_VERSION"), features::kernel_release()));
    if !root {
        out.push_str("not root: BPF features cannot be checked (run prodtrace doctor as root)\n");
    }
    out.push_str(&format!("\n{:<32} {:<10} {}\n", "kernel feature", "since", "here"));
    for (f, st) in &found {
        let here = match st {
            Found::Yes => "yes".to_string(),
            Found::No => "no".to_string(),
            Found::Unknown(why) => format!("unknown ({why})"),
        };
        out.push_str(&format!("{:<32} {:<10} {here}\n", f.label(), format!("Linux {}", f.since())));
    }
    out.push('\n');
    for v in &verdicts {
        out.push_str(&format!("{:<11} {}: {}\n", v.tool, if v.runs { "runs" } else { "cannot run" }, v.how));
    }
    for line in out.lines() {
        console::outln!("{line}");
    }
    Ok(())
}

/// What each tool needs and which path it takes on this kernel (`root`:
/// whether this process may load BPF programs).
fn verdicts(root: bool) -> Vec<Verdict> {
    // The first feature of `needs` the kernel lacks (or that could not be checked), as a message.
    let lacking = |tool: &str, needs: &[Feature]| -> Option<String> {
        if !root {
            return Some("needs root, or the CAP_BPF and CAP_PERFMON capabilities".into());
        }
        needs.iter().find_map(|&f| features::require(tool, f).err().map(|e| format!("{e:#}")))
    };
    let latency = match lacking("prodtrace latency", &crate::latency::NEEDS) {
        Some(why) => Verdict { tool: "latency", runs: false, how: why },
        None => match Method::choose("prodtrace latency") {
            Ok(m) => {
                let forced = std::env::var(uprobes::ENV).ok().filter(|v| !v.is_empty() && v != "auto");
                let mut how = m.describe().to_string();
                if let Some(v) = forced {
                    how.push_str(&format!(" (forced by {}={v})", uprobes::ENV));
                } else if m != Method::Multi {
                    how.push_str(&format!(" (uprobe_multi links: Linux {}+)", Feature::UprobeMulti.since()));
                }
                if m != Method::Multi && !features::has(Feature::UprobeCookies) {
                    how.push_str(&format!(
                        "; --breakdown needs BPF cookies on uprobes (Linux {}+)",
                        Feature::UprobeCookies.since()
                    ));
                }
                Verdict { tool: "latency", runs: true, how }
            }
            Err(e) => Verdict { tool: "latency", runs: false, how: format!("{e:#}") },
        },
    };
    let catch = match lacking("prodtrace catch", &crate::catch::NEEDS) {
        Some(why) => Verdict { tool: "catch", runs: false, how: why },
        None => {
            let mut how = "BPF program on the raw tracepoint sys_exit".to_string();
            if !features::has(Feature::SendSignalThread) {
                how.push_str(&format!(
                    "; --abort needs bpf_send_signal_thread (Linux {}+)",
                    Feature::SendSignalThread.since()
                ));
            }
            Verdict { tool: "catch", runs: true, how }
        }
    };
    let gcore = Verdict {
        tool: "gcore",
        runs: true,
        how: if features::has(Feature::PagemapScan) {
            "ptrace; memory planned with the PAGEMAP_SCAN ioctl".into()
        } else {
            format!(
                "ptrace; memory planned by reading /proc/PID/pagemap page by page (PAGEMAP_SCAN: Linux {}+, faster)",
                Feature::PagemapScan.since()
            )
        },
    };
    let bunyan = match lacking("bunyan -p", &[Feature::Btf, Feature::RingBuf]) {
        Some(why) => Verdict { tool: "bunyan -p", runs: false, how: why },
        None => Verdict {
            tool: "bunyan -p",
            runs: true,
            how: format!(
                "USDT probes through libbpf ({})",
                if features::has(Feature::UprobeMulti) { "uprobe_multi links" } else { "classic uprobes" }
            ),
        },
    };
    let jsstack = Verdict { tool: "jsstack", runs: true, how: "ptrace and /proc (no BPF)".into() };
    vec![latency, catch, gcore, jsstack, bunyan]
}
