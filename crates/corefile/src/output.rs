//! The core file on disk: written as a hidden temporary file (mode 0600)
//! in the destination directory, renamed into place only when complete, and
//! removed on any failure — a reader never sees a partial core.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

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
        let name = dest
            .file_name()
            .with_context(|| format!("{} is not a file name", dest.display()))?;
        let dir = match dest.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if dest.is_dir() {
            anyhow::bail!("{} is a directory", dest.display())
        }
        let tmp = dir.join(format!(
            ".{}.tmp{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        let _ = std::fs::remove_file(&tmp); // a leftover of a killed run
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("cannot create a file in {}", dir.display()))?;
        // The umask can only remove bits, but be explicit: cores hold secrets.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        Ok(TempCore {
            tmp,
            dest: dest.to_path_buf(),
            file,
            committed: false,
        })
    }

    /// Renames the finished file to its destination.
    pub fn commit(mut self) -> Result<()> {
        std::fs::rename(&self.tmp, &self.dest).with_context(|| {
            format!(
                "cannot rename {} to {}",
                self.tmp.display(),
                self.dest.display()
            )
        })?;
        self.committed = true;
        Ok(())
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
}
