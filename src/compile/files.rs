//! Writing `target/compiled/`: each compiled node's SQL to its file, only
//! where the file does not hold it already.
//!
//! `target/compiled_files.bin` records, for each file written (or found
//! holding its SQL), a hash of its path, a hash of that SQL and the file's
//! [`Stamp`] (size, inode, modification and change times). A file whose
//! path, SQL and stamp are all as recorded is left alone without being
//! opened: a warm compile of 40,000 nodes used to read every file back,
//! a fifth of its CPU. The stamps are taken folder by folder, each file
//! looked up by name in its open folder ([`crate::fs::map_stamps`]).
//! Any other file is read and compared, written when
//! it differs, and recorded anew. A file edited, replaced or touched since
//! has a new change time, which no program can set back, so it is read
//! again (on kernels whose file times are per clock tick rather than
//! per nanosecond, an edit in the very tick dp wrote the file is the one
//! not seen, as with git's index). Records of files not compiled this time
//! are kept. The record file is a cache: unreadable or from another
//! layout, every file is checked by reading it, as before it existed.

use crate::util::FastMap;
use std::io;
use std::path::Path;
use twox_hash::XxHash64;

use crate::fs::Stamp;

/// The record file, under the target folder.
pub const FILE: &str = "compiled_files.bin";
const MAGIC: &[u8; 8] = b"dpcf\x00\x00\x00\x01";
/// Bytes per record: path hash, SQL hash, size, inode, mtime, ctime.
const RECORD: usize = 8 * 4 + 16 * 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Record {
    sql: u64,
    stamp: Stamp,
}

fn read(path: &Path) -> FastMap<u64, Record> {
    let Ok(bytes) = std::fs::read(path) else { return FastMap::default() };
    let Some(body) = bytes.strip_prefix(MAGIC.as_slice()).filter(|b| b.len() % RECORD == 0) else { return FastMap::default() };
    let u = |c: &[u8]| u64::from_le_bytes(c.try_into().unwrap());
    let i = |c: &[u8]| i128::from_le_bytes(c.try_into().unwrap());
    body.chunks_exact(RECORD)
        .map(|c| {
            (
                u(&c[0..8]),
                Record { sql: u(&c[8..16]), stamp: Stamp { size: u(&c[16..24]), ino: u(&c[24..32]), mtime_ns: i(&c[32..48]), ctime_ns: i(&c[48..64]) } },
            )
        })
        .collect()
}

fn save(path: &Path, records: &FastMap<u64, Record>) -> io::Result<()> {
    let mut buf = Vec::with_capacity(MAGIC.len() + records.len() * RECORD);
    buf.extend_from_slice(MAGIC);
    for (k, r) in records {
        buf.extend_from_slice(&k.to_le_bytes());
        buf.extend_from_slice(&r.sql.to_le_bytes());
        buf.extend_from_slice(&r.stamp.size.to_le_bytes());
        buf.extend_from_slice(&r.stamp.ino.to_le_bytes());
        buf.extend_from_slice(&r.stamp.mtime_ns.to_le_bytes());
        buf.extend_from_slice(&r.stamp.ctime_ns.to_le_bytes());
    }
    let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
    std::fs::write(&tmp, buf)?;
    std::fs::rename(&tmp, path)
}

/// Whether the file at `path` holds exactly `bytes` (one open, one read).
fn holds(path: &Path, bytes: &[u8]) -> bool {
    use std::io::Read;
    let Ok(f) = std::fs::File::open(path) else { return false };
    let mut buf = Vec::with_capacity(bytes.len() + 1);
    f.take(bytes.len() as u64 + 1).read_to_end(&mut buf).is_ok() && buf == bytes
}

/// What became of one file.
enum Outcome {
    /// Left alone by its record.
    Trusted,
    /// Read and found holding its SQL.
    Checked,
    Written,
}

/// How a write went (for logs and tests): files left alone by their
/// record, files read and found holding their SQL, files written.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub trusted: usize,
    pub checked: usize,
    pub written: usize,
}

/// Writes each `(path under compiled/, SQL)` of `files` under
/// `target_dir/compiled`, in parallel, where the file does not already hold
/// that SQL. An error names the file.
pub fn write(target_dir: &Path, files: &[(String, &str)]) -> Result<Written, (std::path::PathBuf, io::Error)> {
    let base = target_dir.join("compiled");
    let record_path = target_dir.join(FILE);
    let old = read(&record_path);
    let rels: Vec<&str> = files.iter().map(|(rel, _)| rel.as_str()).collect();
    // each file's outcome, found folder by folder
    let outcomes = crate::fs::map_stamps(&base, &rels, |i, now| -> Result<(u64, Option<Record>, Outcome), (std::path::PathBuf, io::Error)> {
        let (rel, sql) = &files[i];
        let key = XxHash64::oneshot(0, rel.as_bytes());
        let hash = XxHash64::oneshot(0, sql.as_bytes());
        if let (Some(r), Some(s)) = (old.get(&key), now)
            && r.sql == hash
            && r.stamp == s
        {
            return Ok((key, None, Outcome::Trusted));
        }
        let path = base.join(rel);
        let how = if now.is_some() && holds(&path, sql.as_bytes()) {
            Outcome::Checked
        } else {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| (path.clone(), e))?;
            }
            std::fs::write(&path, sql).map_err(|e| (path.clone(), e))?;
            Outcome::Written
        };
        Ok((key, Stamp::read(&path).map(|stamp| Record { sql: hash, stamp }), how))
    });
    let mut counts = Written::default();
    let mut records = old;
    let mut changed = false;
    for outcome in outcomes {
        let (key, rec, how) = outcome?;
        match how {
            Outcome::Trusted => counts.trusted += 1,
            Outcome::Checked => counts.checked += 1,
            Outcome::Written => counts.written += 1,
        }
        if let Some(r) = rec {
            changed |= records.insert(key, r) != Some(r);
        }
    }
    if changed && let Err(e) = save(&record_path, &records) {
        tracing::debug!("compiled files: could not record {}: {e}", record_path.display());
    }
    tracing::debug!("compiled files: {counts:?}");
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files<'a>(v: &[(&str, &'a str)]) -> Vec<(String, &'a str)> {
        v.iter().map(|(p, s)| (p.to_string(), *s)).collect()
    }

    #[test]
    fn a_file_is_trusted_only_while_its_sql_and_stamp_are_as_recorded() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path();
        let a = t.join("compiled/p/models/a.sql");
        let w = write(t, &files(&[("p/models/a.sql", "select 1"), ("p/models/b.sql", "select 2")])).unwrap();
        assert_eq!(w, Written { trusted: 0, checked: 0, written: 2 });
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "select 1");
        let w = write(t, &files(&[("p/models/a.sql", "select 1"), ("p/models/b.sql", "select 2")])).unwrap();
        assert_eq!(w, Written { trusted: 2, checked: 0, written: 0 });

        // new SQL for a: written
        let w = write(t, &files(&[("p/models/a.sql", "select 3")])).unwrap();
        assert_eq!(w, Written { trusted: 0, checked: 0, written: 1 });
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "select 3");

        // a edited by hand to the same size, its mtime set back: read and rewritten
        let mtime = std::fs::metadata(&a).unwrap().modified().unwrap();
        std::fs::write(&a, "select 4").unwrap();
        std::fs::File::options().write(true).open(&a).unwrap().set_modified(mtime).unwrap();
        let w = write(t, &files(&[("p/models/a.sql", "select 3")])).unwrap();
        assert_eq!(w, Written { trusted: 0, checked: 0, written: 1 });
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "select 3");

        // touched only: read, found right, recorded again; then trusted
        std::fs::File::options().write(true).open(&a).unwrap().set_modified(std::time::SystemTime::now()).unwrap();
        assert_eq!(write(t, &files(&[("p/models/a.sql", "select 3")])).unwrap(), Written { trusted: 0, checked: 1, written: 0 });
        assert_eq!(write(t, &files(&[("p/models/a.sql", "select 3")])).unwrap(), Written { trusted: 1, checked: 0, written: 0 });

        // deleted: written again; b's record survived the compiles that left it out
        std::fs::remove_dir_all(t.join("compiled")).unwrap();
        let w = write(t, &files(&[("p/models/a.sql", "select 3")])).unwrap();
        assert_eq!(w, Written { trusted: 0, checked: 0, written: 1 });
        assert_eq!(read(&t.join(FILE)).len(), 2);

        // a record file that is not one: every file is checked by reading it
        std::fs::write(t.join(FILE), "garbage").unwrap();
        assert_eq!(write(t, &files(&[("p/models/a.sql", "select 3")])).unwrap(), Written { trusted: 0, checked: 1, written: 0 });
    }
}
