//! The fault tests of latency_faults.rs again, with prodtrace forced onto
//! classic uprobes (`PRODTRACE_UPROBES=classic`): probes removed after
//! Ctrl-C and `kill -9`, targets left running, on the fallback path too.
//! See `latency_support::latency`.

#[path = "latency_faults.rs"]
mod latency_faults;
