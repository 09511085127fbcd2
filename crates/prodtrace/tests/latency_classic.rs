//! The end-to-end tests of latency.rs again, with prodtrace forced onto
//! classic uprobes (`PRODTRACE_UPROBES=classic`): the path kernels without
//! uprobe_multi links take (before 6.6, e.g. Debian 12's 6.1), checked here
//! on this kernel with the same exact counts.  See `latency_support::latency`.

#[path = "latency.rs"]
mod latency;
