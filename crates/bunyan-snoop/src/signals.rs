//! Ctrl-C / SIGTERM while snooping: a flag set by the handler, and the
//! previous handlers restored when snooping ends.

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_sig: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// SIGINT and SIGTERM set a flag while this guard lives.
pub(crate) struct StopSignals {
    old: [(libc::c_int, libc::sigaction); 2],
}

impl StopSignals {
    pub fn install() -> StopSignals {
        STOP.store(false, Ordering::SeqCst);
        let mut old = [(libc::SIGINT, unsafe { std::mem::zeroed() }), (libc::SIGTERM, unsafe { std::mem::zeroed() })];
        for (sig, prev) in old.iter_mut() {
            // SAFETY: a plain sigaction with an async-signal-safe handler
            // (an atomic store); no SA_RESTART, so blocking waits return
            // EINTR and the loop sees the flag at once.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
                libc::sigemptyset(&mut sa.sa_mask);
                libc::sigaction(*sig, &sa, prev);
            }
        }
        StopSignals { old }
    }

    /// Whether Ctrl-C or SIGTERM arrived.
    pub fn stopped(&self) -> bool {
        STOP.load(Ordering::SeqCst)
    }
}

impl Drop for StopSignals {
    fn drop(&mut self) {
        for (sig, prev) in &self.old {
            // SAFETY: restores the handler saved by install().
            unsafe { libc::sigaction(*sig, prev, std::ptr::null_mut()) };
        }
    }
}
