//! The file-system seam: project loading reads through [`FileSystem`] so the
//! parse → graph → compile stages run in memory in tests ([`MemFs`]) and on
//! disk in the CLI ([`OsFs`]). Paths are relative to the project root and use
//! `/` separators.

use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};

pub trait FileSystem: Send + Sync {
    /// Reads a whole file as UTF-8.
    fn read_to_string(&self, path: &str) -> io::Result<String>;
    /// Every file under `dir` (recursively) whose name ends with one of `exts`,
    /// sorted, as paths relative to the project root.
    fn list_files(&self, dir: &str, exts: &[&str]) -> io::Result<Vec<String>>;
    fn exists(&self, path: &str) -> bool;
    /// The file's [`Stamp`], where the file system has one (`None`: it
    /// does not, or there is no such file).
    fn stamp(&self, _path: &str) -> Option<Stamp> {
        None
    }
    /// [`FileSystem::stamp`] of each of `paths`, in their order.
    fn stamps(&self, paths: &[&str]) -> Vec<Option<Stamp>> {
        paths.iter().map(|p| self.stamp(p)).collect()
    }
}

/// What a cache records of a file, to recognise it unchanged since without
/// reading it: size, inode, and modification and change times
/// (nanoseconds). Any write, `touch` or replacement moves the change time,
/// which no program can set, so a file edited back to its old size and
/// modification time is still told apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub size: u64,
    pub ino: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
}

impl Stamp {
    pub fn of(m: &std::fs::Metadata) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        let ns = |s: i64, n: i64| s as i128 * 1_000_000_000 + n as i128;
        Stamp { size: m.len(), ino: m.ino(), mtime_ns: ns(m.mtime(), m.mtime_nsec()), ctime_ns: ns(m.ctime(), m.ctime_nsec()) }
    }

    /// The stamp of the file at `path` (`None`: it does not exist).
    pub fn read(path: &Path) -> Option<Stamp> {
        std::fs::metadata(path).ok().map(|m| Stamp::of(&m))
    }

    /// Whether the file was last changed (`mtime` and `ctime`) at least
    /// `secs` seconds before `now_ns`: a stamp taken then, before reading
    /// the file, tells its text apart from any later one. (A write within
    /// the same clock tick as the stamp's could leave it equal; one that
    /// long after cannot.)
    pub fn settled(&self, now_ns: i128, secs: i128) -> bool {
        let limit = now_ns - secs * 1_000_000_000;
        self.mtime_ns < limit && self.ctime_ns < limit
    }
}

/// The [`Stamp`]s of many files under `base` (relative `/`-separated
/// paths; `None` where a file does not exist), in the order of `paths`
/// ([`map_stamps`]).
pub fn stamps_under(base: &Path, paths: &[&str]) -> Vec<Option<Stamp>> {
    let mut out = vec![None; paths.len()];
    for (i, s) in map_stamps(base, paths, |i, s| (i, s)) {
        out[i] = s;
    }
    out
}

/// `f` of each of `paths` (its position) and its [`Stamp`] under `base`
/// (`None`: no such file), folder by folder and in parallel: what `f`
/// returned, in no set order. Each folder is opened once and its files
/// are looked up by name in it (`fstatat`): a warm compile stamps 40,000
/// compiled files and 10,000 inputs, and walking each path from the root
/// was most of the cost of those calls. The stamps are those
/// [`Stamp::read`] gives for the same file (symbolic links followed).
pub fn map_stamps<T: Send>(base: &Path, paths: &[&str], f: impl Fn(usize, Option<Stamp>) -> T + Sync) -> std::iter::Flatten<std::vec::IntoIter<Vec<T>>> {
    use rayon::prelude::*;
    let mut folders: indexmap::IndexMap<&str, Vec<usize>, crate::util::FastHash> = Default::default();
    for (i, p) in paths.iter().enumerate() {
        folders.entry(p.rsplit_once('/').map_or("", |(dir, _)| dir)).or_default().push(i);
    }
    let done: Vec<Vec<T>> = folders
        .par_iter()
        .map(|(dir, at)| {
            let folder = std::fs::File::open(base.join(dir)).ok();
            at.iter()
                .map(|&i| {
                    let name = paths[i].rsplit_once('/').map_or(paths[i], |(_, name)| name);
                    f(i, folder.as_ref().and_then(|d| stamp_at(d, name)))
                })
                .collect()
        })
        .collect();
    done.into_iter().flatten()
}

/// The stamp of the file `name` in the open `folder` (`None`: no such file).
fn stamp_at(folder: &std::fs::File, name: &str) -> Option<Stamp> {
    use std::os::fd::AsRawFd;
    let name = std::ffi::CString::new(name).ok()?;
    // SAFETY: `st` is plain data the call fills; the descriptor is open
    // for the call's duration and `name` is a NUL-terminated C string.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::fstatat(folder.as_raw_fd(), name.as_ptr(), &mut st, 0) };
    if rc != 0 {
        return None;
    }
    let ns = |s: i64, n: i64| s as i128 * 1_000_000_000 + n as i128;
    #[allow(clippy::unnecessary_cast)] // the field types differ between targets
    let stamp = Stamp {
        size: st.st_size as u64,
        ino: st.st_ino as u64,
        mtime_ns: ns(st.st_mtime as i64, st.st_mtime_nsec as i64),
        ctime_ns: ns(st.st_ctime as i64, st.st_ctime_nsec as i64),
    };
    Some(stamp)
}

/// Now, in nanoseconds since the epoch (as [`Stamp`]'s times).
pub fn now_ns() -> i128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i128)
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

    fn stamp(&self, path: &str) -> Option<Stamp> {
        Stamp::read(&self.root.join(path))
    }

    fn stamps(&self, paths: &[&str]) -> Vec<Option<Stamp>> {
        stamps_under(&self.root, paths)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Stamps taken folder by folder are those of `Stamp::read`, in the
    /// order asked, through symbolic links, and `None` for a missing file
    /// or folder; a rewrite moves the stamp.
    #[test]
    fn stamps_under_a_root_are_those_read_path_by_path() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        for p in ["top.sql", "a/one.sql", "a/b/two.sql", "a/b/three.sql", "c/four.sql"] {
            let path = root.join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, p).unwrap();
        }
        std::os::unix::fs::symlink(root.join("c/four.sql"), root.join("a/link.sql")).unwrap();
        let paths = ["a/b/two.sql", "top.sql", "a/missing.sql", "c/four.sql", "nowhere/x.sql", "a/one.sql", "a/link.sql", "a/b/three.sql"];
        let got = stamps_under(root, &paths);
        let want: Vec<Option<Stamp>> = paths.iter().map(|p| Stamp::read(&root.join(p))).collect();
        assert_eq!(got, want);
        assert_eq!(got.iter().filter(|s| s.is_none()).count(), 2, "{got:?}");
        assert_eq!(got[6], got[3], "a link has its target's stamp");
        assert_eq!(OsFs::new(root).stamps(&paths), want);

        std::thread::sleep(std::time::Duration::from_millis(5));
        std::fs::write(root.join("a/b/two.sql"), "a/b/two.sqX").unwrap();
        let again = stamps_under(root, &paths);
        assert_ne!(again[0], got[0]);
        assert_eq!(again[0], Stamp::read(&root.join("a/b/two.sql")));
        assert_eq!(again[1..], got[1..]);
    }
}
