//! Where the generated objects live: `$PRODTRACE_USDT_DIR`, else `$TMPDIR`,
//! else `/tmp`; file names `prodtrace-usdt-<pid>-<provider>-<n>.so`; and the
//! sweep that removes files left behind by processes that died without
//! cleaning up (SIGKILL, crashes), run once per process at the first enable.

use std::path::{Path, PathBuf};
use std::sync::Once;

/// Prefix of every generated object's file name.
pub const PREFIX: &str = "prodtrace-usdt-";

/// The directory for generated objects.
pub fn directory() -> PathBuf {
    match std::env::var_os("PRODTRACE_USDT_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => std::env::temp_dir(),
    }
}

/// `prodtrace-usdt-<pid>-<provider>-<seq>.so`, the provider name reduced to
/// file-name-safe characters.
pub fn file_name(pid: u32, provider: &str, seq: u64) -> String {
    let safe: String = provider
        .chars()
        .take(64)
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '.' { c } else { '_' })
        .collect();
    format!("{PREFIX}{pid}-{safe}-{seq}.so")
}

/// The pid a generated object's file name belongs to.
fn owner_pid(name: &str) -> Option<u32> {
    name.strip_prefix(PREFIX)?.split('-').next()?.parse().ok()
}

/// Removes, once per process and before its first object is written, the
/// objects in `dir` whose process is gone, and those bearing this process's
/// pid (left by an earlier process that had the same pid).
pub fn sweep_stale(dir: &Path) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let me = std::process::id();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(owner_pid) else {
                continue;
            };
            if pid == me || !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe_and_parse_back() {
        let name = file_name(42, "my provider/x-y", 3);
        assert_eq!(name, "prodtrace-usdt-42-my_provider_x_y-3.so");
        assert_eq!(owner_pid(&name), Some(42));
        assert_eq!(owner_pid("prodtrace-usdt-x-1.so"), None);
        assert_eq!(owner_pid("other-42.so"), None);
    }
}
