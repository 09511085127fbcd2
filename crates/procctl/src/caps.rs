//! The capabilities this process has: its effective set, read from
//! `/proc/self/status`, and the capability numbers the tools check.

/// Capability numbers from <linux/capability.h>.
pub const CAP_SYS_PTRACE: u32 = 19;
pub const CAP_SYS_ADMIN: u32 = 21;
pub const CAP_PERFMON: u32 = 38;
pub const CAP_BPF: u32 = 39;

/// A set of capabilities (a `CapEff`-style bit mask).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caps(u64);

impl Caps {
    /// Whether capability number `cap` is in the set.
    pub fn has(self, cap: u32) -> bool {
        self.0 & (1u64 << cap) != 0
    }
}

/// The effective capabilities of this process (none if
/// `/proc/self/status` cannot be read).
pub fn effective() -> Caps {
    from_status(&std::fs::read_to_string("/proc/self/status").unwrap_or_default())
}

/// The `CapEff:` line of a `/proc/PID/status` text (none if missing).
fn from_status(status: &str) -> Caps {
    Caps(
        status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_effective_set() {
        let status = "Name:\tx\nCapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\n\
                      CapEff:\t0000008000080000\nCapBnd:\t000001ffffffffff\n";
        let caps = from_status(status);
        assert!(caps.has(CAP_SYS_PTRACE) && caps.has(CAP_BPF));
        assert!(!caps.has(CAP_SYS_ADMIN) && !caps.has(CAP_PERFMON));
        assert_eq!(from_status("Name:\tx\n"), Caps(0));
    }
}
