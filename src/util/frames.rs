//! The files of dp's caches in `target/` (partial parse, renderings): a
//! head and a long list of items, in postcard (a compact binary serde
//! format: no field names, no escaped text), so that reading 40,000 nodes
//! back costs a fraction of parsing them from JSON.
//!
//! Layout: the magic bytes [`MAGIC`] (which carry the layout's version),
//! then frames, each a little-endian `u32` length and that many bytes: the
//! first frame is the head, each later one a list of up to [`CHUNK`]
//! items. Frames are written and read in parallel; [`append`] adds frames
//! to an existing file. A file that is not of this layout, cut short or
//! otherwise unreadable reads as `None`: to a cache, a miss.

use rayon::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::io::{self, Write};
use std::path::Path;

/// The first bytes of a cache file (the last one is the layout's version).
pub const MAGIC: &[u8; 8] = b"dpcache\x02";

/// Items per frame.
pub const CHUNK: usize = 512;

/// Reads a file of [`write`]: the head, then the items.
pub fn read<H: DeserializeOwned, T: DeserializeOwned + Send>(path: &Path) -> Option<(H, Vec<T>)> {
    let (head, chunks) = read_chunks(path)?;
    let mut items = Vec::with_capacity(chunks.iter().map(Vec::len).sum());
    for c in chunks {
        items.extend(c);
    }
    Some((head, items))
}

/// [`read`], the items in their frames.
pub fn read_chunks<H: DeserializeOwned, T: DeserializeOwned + Send>(path: &Path) -> Option<(H, Vec<Vec<T>>)> {
    let bytes = std::fs::read(path).ok()?;
    let mut frames = split(bytes.strip_prefix(MAGIC)?)?.into_iter();
    let head: H = postcard::from_bytes(frames.next()?).ok()?;
    let frames: Vec<&[u8]> = frames.collect();
    let chunks = frames.par_iter().map(|f| crate::project::shared_map::interning(|| postcard::from_bytes(f).ok())).collect::<Option<_>>()?;
    Some((head, chunks))
}

/// The frames of `bytes`; `None` when the last one is cut short.
fn split(mut bytes: &[u8]) -> Option<Vec<&[u8]>> {
    let mut frames = vec![];
    while !bytes.is_empty() {
        let (len, rest) = bytes.split_first_chunk::<4>()?;
        let len = u32::from_le_bytes(*len) as usize;
        frames.push(rest.get(..len)?);
        bytes = &rest[len..];
    }
    Some(frames)
}

/// The frames of `items`, encoded in parallel, 16 at a time (both cores
/// busy, memory bounded), passed to `out`.
fn frames<T: Serialize + Sync>(items: &[T], out: &mut dyn FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
    for batch in items.chunks(CHUNK * 16) {
        let encoded: Vec<Vec<u8>> = batch.par_chunks(CHUNK).map(postcard::to_stdvec).collect::<Result<_, _>>().map_err(io::Error::other)?;
        for f in encoded {
            out(&f)?;
        }
    }
    Ok(())
}

fn frame(w: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    let len = u32::try_from(bytes.len()).map_err(|_| io::Error::other("a cache frame over 4 GB"))?;
    w.write_all(&len.to_le_bytes())?;
    w.write_all(bytes)
}

/// Writes `head` and `items` to `path`, through a temporary file renamed
/// over it.
pub fn write<H: Serialize, T: Serialize + Sync>(path: &Path, head: &H, items: &[T]) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
    let mut w = io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
    w.write_all(MAGIC)?;
    frame(&mut w, &postcard::to_stdvec(head).map_err(io::Error::other)?)?;
    frames(items, &mut |f| frame(&mut w, f))?;
    w.flush()?;
    drop(w);
    std::fs::rename(&tmp, path)
}

/// Adds `items` at the end of the file of [`write`] at `path`, in one
/// `write` call; a reader takes them after the earlier ones.
pub fn append<T: Serialize + Sync>(path: &Path, items: &[T]) -> io::Result<()> {
    let mut buf = vec![];
    frames(items, &mut |f| frame(&mut buf, f))?;
    std::fs::OpenOptions::new().append(true).open(path)?.write_all(&buf)
}

/// One value in the same encoding, for small files of their own.
pub fn encode<T: Serialize>(v: &T) -> io::Result<Vec<u8>> {
    let mut out = MAGIC.to_vec();
    postcard::to_io(v, &mut out).map_err(io::Error::other)?;
    Ok(out)
}

/// Reads what [`encode`] wrote; `None` when it is not that.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    postcard::from_bytes(bytes.strip_prefix(MAGIC)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_come_back_after_a_write_and_appends_and_a_cut_file_reads_as_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.bin");
        let items: Vec<(String, u64)> = (0..1500).map(|i| (format!("n{i}"), i)).collect();
        write(&path, &"head".to_string(), &items).unwrap();
        append(&path, &[("late".to_string(), 7u64)]).unwrap();
        let (head, chunks): (String, Vec<Vec<(String, u64)>>) = read_chunks(&path).unwrap();
        assert_eq!(head, "head");
        assert_eq!(chunks.iter().map(Vec::len).collect::<Vec<_>>(), [512, 512, 476, 1]);
        let (_, all): (String, Vec<(String, u64)>) = read(&path).unwrap();
        assert_eq!(all.len(), 1501);
        assert_eq!(all[1499], ("n1499".to_string(), 1499));
        assert_eq!(all[1500], ("late".to_string(), 7));

        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        assert!(read::<String, (String, u64)>(&path).is_none());
        std::fs::write(&path, b"{\"json\": true}\n[]").unwrap();
        assert!(read::<String, (String, u64)>(&path).is_none());
        assert_eq!(decode::<Vec<u32>>(&encode(&vec![1u32, 2]).unwrap()), Some(vec![1, 2]));
        assert_eq!(decode::<Vec<u32>>(b"[1, 2]"), None);
    }
}
