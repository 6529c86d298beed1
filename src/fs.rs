//! The file-system seam: project loading reads through [`FileSystem`] so the
//! parse → graph → compile stages run in memory in tests ([`MemFs`]) and on
//! disk in the CLI ([`OsFs`]). Paths are relative to the project root and use
//! `/` separators.

use std::io;
use std::path::PathBuf;

pub trait FileSystem: Send + Sync {
    /// Reads a whole file as UTF-8.
    fn read_to_string(&self, path: &str) -> io::Result<String>;
    /// Every file under `dir` (recursively) whose name ends with one of `exts`,
    /// sorted, as paths relative to the project root.
    fn list_files(&self, dir: &str, exts: &[&str]) -> io::Result<Vec<String>>;
    fn exists(&self, path: &str) -> bool;
}

/// The real disk, rooted at the project directory.
pub struct OsFs {
    root: PathBuf,
}

impl OsFs {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }
}

impl FileSystem for OsFs {
    fn read_to_string(&self, path: &str) -> io::Result<String> {
        let bytes = std::fs::read(self.root.join(path))?;
        String::from_utf8(bytes)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("file is not valid UTF-8 (byte {})", e.utf8_error().valid_up_to())))
    }

    fn list_files(&self, dir: &str, exts: &[&str]) -> io::Result<Vec<String>> {
        let base = self.root.join(dir);
        if !base.is_dir() {
            return Ok(vec![]);
        }
        let mut out = Vec::new();
        for entry in walkdir::WalkDir::new(&base).follow_links(true) {
            let entry = entry.map_err(io::Error::other)?;
            if !entry.file_type().is_file() {
                continue;
            }
            let name = entry.file_name().to_string_lossy();
            if !exts.iter().any(|e| name.ends_with(e)) {
                continue;
            }
            let rel = entry.path().strip_prefix(&self.root).unwrap_or(entry.path());
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
        out.sort();
        Ok(out)
    }

    fn exists(&self, path: &str) -> bool {
        self.root.join(path).exists()
    }
}

/// An in-memory project for tests.
#[cfg(test)]
#[derive(Default, Clone)]
pub struct MemFs {
    files: std::collections::BTreeMap<String, String>,
    /// Folders whose listing fails (as an unreadable folder on disk does).
    unreadable: Vec<String>,
}

#[cfg(test)]
impl MemFs {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn with(mut self, path: &str, contents: &str) -> Self {
        self.files.insert(path.to_string(), contents.to_string());
        self
    }
    /// Makes listing `dir` fail with "permission denied".
    pub fn unreadable(mut self, dir: &str) -> Self {
        self.unreadable.push(dir.to_string());
        self
    }
}

#[cfg(test)]
impl FileSystem for MemFs {
    fn read_to_string(&self, path: &str) -> io::Result<String> {
        self.files.get(path).cloned().ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{path}: not found")))
    }

    fn list_files(&self, dir: &str, exts: &[&str]) -> io::Result<Vec<String>> {
        if self.unreadable.iter().any(|d| d == dir) {
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, "Permission denied (os error 13)"));
        }
        let prefix = format!("{}/", dir.trim_end_matches('/'));
        Ok(self.files.keys().filter(|p| p.starts_with(&prefix) && exts.iter().any(|e| p.ends_with(e))).cloned().collect())
    }

    fn exists(&self, path: &str) -> bool {
        let prefix = format!("{}/", path.trim_end_matches('/'));
        self.files.contains_key(path) || self.files.keys().any(|p| p.starts_with(&prefix))
    }
}
