//! Names of x86_64 system calls and errno values: parsing what the user typed
//! (`close`, `EBADF`, `9`) into numbers, printing numbers back as names, and
//! suggesting the closest names when one is unknown.
//!
//! The tables come from the `syscalls` crate (generated from the kernel's
//! syscall table and errno headers), so every x86_64 syscall is known, not
//! only the ones libc happens to wrap.

use anyhow::{bail, Result};
use syscalls::{Errno, Sysno};

/// Names that are common aliases of another errno (glibc defines them).
const ERRNO_ALIASES: &[(&str, i32)] = &[("EWOULDBLOCK", 11), ("EDEADLOCK", 35), ("ENOTSUP", 95)];

/// Highest errno number the kernel hands to user space.
const MAX_ERRNO: i32 = 4095;

/// The syscall number of `name` (`close`, in any case, also accepted as
/// `sys_close`, or a number of a known syscall: `3`). System calls that
/// never return (`exit`, `exit_group`) are refused: nothing can be caught
/// at their return.
pub fn syscall_number(name: &str) -> Result<u32> {
    let sysno = if name.bytes().all(|b| b.is_ascii_digit()) && !name.is_empty() {
        match name.parse::<usize>().ok().and_then(Sysno::new) {
            Some(s) => s,
            None => bail!("there is no x86_64 system call number {name}"),
        }
    } else {
        let lower = name.to_ascii_lowercase();
        let wanted = lower.strip_prefix("sys_").unwrap_or(&lower);
        match wanted.parse::<Sysno>() {
            Ok(s) => s,
            Err(_) => {
                let names: Vec<&str> = Sysno::iter().map(|s| s.name()).collect();
                bail!("unknown system call '{name}'{}", suggest(wanted, &names))
            }
        }
    };
    if matches!(sysno, Sysno::exit | Sysno::exit_group) {
        bail!(
            "{}() never returns, so it cannot be caught at its return (catch the call that fails before it, \
             or use --abort/--core on that one)",
            sysno.name()
        )
    }
    Ok(sysno.id() as u32)
}

/// The name of syscall number `nr`, or `syscall_NR` when it has none.
pub fn syscall_name(nr: i64) -> String {
    usize::try_from(nr)
        .ok()
        .and_then(Sysno::new)
        .map(|s| s.name().to_string())
        .unwrap_or_else(|| format!("syscall_{nr}"))
}

/// The errno number of `text`: a name (`EBADF`, case-insensitive) or a
/// number (`9`).
pub fn errno_number(text: &str) -> Result<i32> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<i32>() {
            Ok(n) if (1..=MAX_ERRNO).contains(&n) => Ok(n),
            _ => bail!("errno {text} is out of range (1 to {MAX_ERRNO})"),
        };
    }
    let upper = text.to_ascii_uppercase();
    if let Some(&(_, n)) = ERRNO_ALIASES.iter().find(|(a, _)| *a == upper) {
        return Ok(n);
    }
    let known = errno_names();
    if let Some((_, n)) = known.iter().find(|(name, _)| *name == upper) {
        return Ok(*n);
    }
    let names: Vec<&str> = known.iter().map(|(name, _)| *name).chain(ERRNO_ALIASES.iter().map(|(a, _)| *a)).collect();
    bail!("unknown errno name '{text}'{}", suggest(&upper, &names))
}

/// `EBADF` for 9; `None` for numbers without a name.
pub fn errno_name(n: i32) -> Option<&'static str> {
    Errno::new(n).name()
}

/// `Bad file descriptor` for 9: the C library's strerror() text, as
/// perror() and `%m` print it.
pub fn errno_description(n: i32) -> String {
    let text = std::io::Error::from_raw_os_error(n).to_string();
    text.strip_suffix(&format!(" (os error {n})")).unwrap_or(&text).to_string()
}

fn errno_names() -> Vec<(&'static str, i32)> {
    (1..=MAX_ERRNO).filter_map(|n| errno_name(n).map(|name| (name, n))).collect()
}

/// `; did you mean: a, b?` with the names closest to `wanted` (edit
/// distance), or `` when nothing is close.
fn suggest(wanted: &str, names: &[&str]) -> String {
    let mut scored: Vec<(usize, &str)> = names
        .iter()
        .map(|n| (strsim::damerau_levenshtein(wanted, n), *n))
        .filter(|(d, n)| *d <= (wanted.len() / 3).max(2) || n.starts_with(wanted) || wanted.starts_with(*n))
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    let best: Vec<&str> = scored.iter().take(4).map(|(_, n)| *n).collect();
    if best.is_empty() {
        String::new()
    } else {
        format!("; did you mean: {}?", best.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syscalls_by_name() {
        assert_eq!(syscall_number("close").unwrap(), 3);
        assert_eq!(syscall_number("sys_openat").unwrap(), 257);
        assert_eq!(syscall_number("io_uring_enter").unwrap(), 426);
        assert_eq!(syscall_number("3").unwrap(), 3);
        assert_eq!(syscall_number("CLOSE").unwrap(), 3);
        assert_eq!(syscall_number("SYS_Openat").unwrap(), 257);
        assert!(syscall_number("999").is_err());
        assert_eq!(syscall_name(3), "close");
        assert_eq!(syscall_name(100_000), "syscall_100000");
    }

    #[test]
    fn syscalls_that_never_return_are_refused() {
        for name in ["exit", "exit_group", "EXIT_GROUP", "60", "231"] {
            let err = syscall_number(name).unwrap_err().to_string();
            assert!(err.contains("never returns, so it cannot be caught at its return"), "{name}: {err}");
        }
    }

    #[test]
    fn unknown_syscall_suggests_close_names() {
        let err = syscall_number("clsoe").unwrap_err().to_string();
        assert!(err.starts_with("unknown system call 'clsoe'; did you mean: close"), "{err}");
        let err = syscall_number("opnat").unwrap_err().to_string();
        assert!(err.contains("openat"), "{err}");
        let err = syscall_number("CLSOE").unwrap_err().to_string();
        assert!(err.starts_with("unknown system call 'CLSOE'; did you mean: close"), "{err}");
    }

    #[test]
    fn errnos_by_name_and_number() {
        assert_eq!(errno_number("EBADF").unwrap(), 9);
        assert_eq!(errno_number("ebadf").unwrap(), 9);
        assert_eq!(errno_number("9").unwrap(), 9);
        assert_eq!(errno_number("EWOULDBLOCK").unwrap(), 11);
        assert_eq!(errno_name(9), Some("EBADF"));
        assert_eq!(errno_description(9), "Bad file descriptor");
        for n in ["0", "4096", "99999999999", "-9"] {
            assert_eq!(errno_number(n).unwrap_err().to_string(), format!("errno {n} is out of range (1 to 4095)"));
        }
    }

    #[test]
    fn unknown_errno_suggests_close_names() {
        let err = errno_number("EBADFD2").unwrap_err().to_string();
        assert!(err.contains("did you mean: EBADFD"), "{err}");
        let err = errno_number("EBDAF").unwrap_err().to_string();
        assert!(err.contains("EBADF"), "{err}");
    }
}
