//! Replacing a large file atomically without paying for a new one each
//! time: `target/manifest.json`, 110 MB for a 10,000-model project, is
//! rewritten by every `dp compile` and `dp run`.
//!
//! Writing a new file and renaming it over the old one costs three times
//! over on Linux's ext4: the new file's page cache is fresh memory the
//! kernel must find and zero (on this project's VM, 200 ms for 110 MB
//! against 45 ms to overwrite cached pages), the rename over an existing
//! file starts writeback of the new one (ext4's `auto_da_alloc`), and the
//! old inode's pages and blocks are freed when the rename drops it (50–130
//! and 60–170 ms measured).
//!
//! [`Replacement`] instead keeps the previous version as a spare beside
//! the file (`.NAME.spare`), overwrites it in place, truncates it to the
//! new length, and swaps it in with `renameat2(RENAME_EXCHANGE)`: readers
//! see the old file or the new one, never a mix, and the old one becomes
//! the next spare. The spare is locked (`flock`, exclusive) while it is
//! written; if another process holds it, or the target does not exist yet,
//! or the file system cannot exchange, the replacement falls back to a new
//! per-process temporary file renamed over the target, as before.
//!
//! A reader that keeps the file open across the *second* replacement after
//! it opened it would see its inode overwritten (it is the spare by then).
//! dp's own reader of the previous manifest (the warm path in
//! `compile::manifest_reuse`) takes a shared lock on it, so the spare is
//! not reused while it reads; other readers are expected to read the file
//! within the seconds between two compiles.

use std::fs::File;
use std::io::{self, Seek};
use std::path::{Path, PathBuf};

/// A file being written to replace `target` (see the module docs).
#[derive(Debug)]
pub struct Replacement {
    target: PathBuf,
    written: PathBuf,
    /// Whether `written` is the spare (else a new temporary file).
    spare: bool,
}

impl Replacement {
    /// The file to write `target`'s new contents into, positioned at its
    /// start: the spare when this process can have it, else a new file.
    pub fn open(target: &Path) -> io::Result<(Replacement, File)> {
        let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let dir = target.parent().unwrap_or(Path::new("."));
        if target.exists() {
            let spare = dir.join(format!(".{name}.spare"));
            if let Ok(file) = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&spare)
                && file.try_lock().is_ok()
            {
                return Ok((Replacement { target: target.to_path_buf(), written: spare, spare: true }, file));
            }
        }
        let tmp = dir.join(format!("{name}.{}.tmp", std::process::id()));
        let file = File::create(&tmp)?;
        Ok((Replacement { target: target.to_path_buf(), written: tmp, spare: false }, file))
    }

    /// Ends the file where `file` stands (its old contents past that are
    /// cut off) and puts it in the target's place.
    pub fn commit(self, file: &mut File) -> io::Result<()> {
        let len = file.stream_position()?;
        file.set_len(len)?;
        if !(self.spare && exchange(&self.written, &self.target).is_ok()) {
            std::fs::rename(&self.written, &self.target)?;
        }
        file.unlock()
    }
}

/// Swaps the names of `a` and `b` atomically (Linux's `renameat2`).
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(io::Error::other);
    let (a, b) = (c(a)?, c(b)?);
    // SAFETY: both paths are NUL-terminated C strings that outlive the call.
    let rc = unsafe { libc::syscall(libc::SYS_renameat2, libc::AT_FDCWD, a.as_ptr(), libc::AT_FDCWD, b.as_ptr(), libc::RENAME_EXCHANGE) };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// Elsewhere the replacement renames, as it does where exchanging fails.
#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

#[cfg(test)]
mod tests {
    use super::Replacement;
    use std::io::Write;

    fn replace(target: &std::path::Path, text: &str) -> bool {
        let (r, mut f) = Replacement::open(target).unwrap();
        let spare = r.spare;
        f.write_all(text.as_bytes()).unwrap();
        r.commit(&mut f).unwrap();
        spare
    }

    /// The first write creates the file, the second makes a spare of the
    /// first version, the third overwrites that spare in place (shorter
    /// contents cut to length); a spare held by another process is left
    /// alone.
    #[test]
    fn replaces_through_the_spare() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("manifest.json");
        let spare = dir.path().join(".manifest.json.spare");
        assert!(!replace(&target, "first version, long"));
        assert!(replace(&target, "second"));
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "second");
        assert_eq!(std::fs::read_to_string(&spare).unwrap(), "first version, long");
        assert!(replace(&target, "third"));
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "third");
        assert_eq!(std::fs::read_to_string(&spare).unwrap(), "second");

        let held = std::fs::File::open(&spare).unwrap();
        held.lock_shared().unwrap();
        assert!(!replace(&target, "fourth"), "a spare being read is not overwritten");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "fourth");
        assert_eq!(std::fs::read_to_string(&spare).unwrap(), "second");
        let names: Vec<String> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
    }
}
