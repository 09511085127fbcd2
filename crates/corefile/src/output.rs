//! The core file on disk: written as a hidden temporary file (mode 0600)
//! in the destination directory, renamed into place only when complete, and
//! removed on any failure — a reader never sees a partial core. The
//! destination must be a new name or a regular file (checked before the
//! target is touched, and again just before the rename): a device, a FIFO,
//! a socket, a directory or a symbolic link there is never replaced.

use std::fs::{File, OpenOptions};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// A core being written; removed on drop unless [`TempCore::commit`]ted.
pub struct TempCore {
    tmp: PathBuf,
    dest: PathBuf,
    pub file: File,
    committed: bool,
}

impl TempCore {
    /// Creates the temporary file next to `dest`.
    pub fn create(dest: &Path) -> Result<TempCore> {
        check_destination(dest)?;
        let name = dest.file_name().with_context(|| format!("{} is not a file name", dest.display()))?;
        let dir = match dest.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if dest.is_dir() {
            anyhow::bail!("{} is a directory", dest.display())
        }
        let tmp = dir.join(format!(".{}.tmp{}", name.to_string_lossy(), std::process::id()));
        let _ = std::fs::remove_file(&tmp); // a leftover of a killed run
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("cannot create a file in {}", dir.display()))?;
        // The umask can only remove bits, but be explicit: cores hold secrets.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        Ok(TempCore { tmp, dest: dest.to_path_buf(), file, committed: false })
    }

    /// Renames the finished file to its destination.
    pub fn commit(mut self) -> Result<()> {
        // Something may have been put there while the core was written.
        check_destination(&self.dest)?;
        std::fs::rename(&self.tmp, &self.dest)
            .with_context(|| format!("cannot rename {} to {}", self.tmp.display(), self.dest.display()))?;
        self.committed = true;
        Ok(())
    }
}

/// Fails unless `dest` is a new name in an existing directory or an
/// existing regular file (which the core replaces).
pub fn check_destination(dest: &Path) -> Result<()> {
    if dest.as_os_str().as_bytes().ends_with(b"/") && !dest.is_dir() {
        bail!("no such directory")
    }
    match std::fs::symlink_metadata(dest) {
        Ok(meta) => {
            let t = meta.file_type();
            let what = if t.is_file() {
                return Ok(());
            } else if t.is_dir() {
                "a directory".to_string()
            } else if t.is_symlink() {
                let to = std::fs::read_link(dest).map(|l| l.display().to_string()).unwrap_or_else(|_| "?".into());
                format!("a symbolic link (to {to})")
            } else if t.is_char_device() {
                "a character device".to_string()
            } else if t.is_block_device() {
                "a block device".to_string()
            } else if t.is_fifo() {
                "a FIFO".to_string()
            } else if t.is_socket() {
                "a socket".to_string()
            } else {
                "not a regular file".to_string()
            };
            bail!("it is {what}; a core is written only to a new name or over a regular file")
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) => {
            let dir = match dest.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            match std::fs::metadata(dir) {
                Ok(m) if m.is_dir() => Ok(()),
                Ok(_) => bail!("{} is not a directory", dir.display()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    bail!("directory {} does not exist", dir.display())
                }
                Err(e) => Err(e).with_context(|| format!("cannot use directory {}", dir.display())),
            }
        }
        Err(e) => Err(e).with_context(|| format!("cannot look at {}", dest.display())),
    }
}

impl Drop for TempCore {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn commit_renames_and_drop_removes() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("core.1");
        let mut t = TempCore::create(&dest).unwrap();
        t.file.write_all(b"x").unwrap();
        t.commit().unwrap();
        assert_eq!(std::fs::metadata(&dest).unwrap().mode() & 0o777, 0o600);
        let dest2 = dir.path().join("core.2");
        drop(TempCore::create(&dest2).unwrap());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn only_new_names_and_regular_files_are_destinations() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        std::fs::write(p("regular"), b"old").unwrap();
        check_destination(&p("regular")).unwrap();
        check_destination(&p("new")).unwrap();
        let fifo = std::ffi::CString::new(p("fifo").as_os_str().as_bytes()).unwrap();
        // SAFETY: mkfifo on a valid path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        std::os::unix::fs::symlink("/proc/self/fd/1", p("link")).unwrap();
        let err = |n: &str| check_destination(&p(n)).unwrap_err().to_string();
        assert!(err("fifo").starts_with("it is a FIFO; "), "{}", err("fifo"));
        assert!(err("link").starts_with("it is a symbolic link (to /proc/self/fd/1); "));
        assert!(check_destination(Path::new("/dev/null"))
            .unwrap_err()
            .to_string()
            .starts_with("it is a character device"));
        assert!(
            err("missing/core").starts_with("directory ") && err("missing/core").ends_with("missing does not exist")
        );
        assert_eq!(
            check_destination(Path::new(&format!("{}/", p("newdir").display()))).unwrap_err().to_string(),
            "no such directory"
        );
        assert!(err("regular/core").ends_with("regular is not a directory"));
        // A FIFO that appears while the core is written is not replaced.
        let t = TempCore::create(&p("late")).unwrap();
        let late = std::ffi::CString::new(p("late").as_os_str().as_bytes()).unwrap();
        // SAFETY: as above.
        assert_eq!(unsafe { libc::mkfifo(late.as_ptr(), 0o600) }, 0);
        assert!(t.commit().is_err());
        assert!(std::fs::symlink_metadata(p("late")).unwrap().file_type().is_fifo());
    }
}
