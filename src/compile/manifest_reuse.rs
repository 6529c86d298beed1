//! Writing `target/manifest.json` from the previous one: a warm compile
//! copies the entries of the nodes that did not change and serializes only
//! the others (and the `metadata` block), instead of rebuilding 100 MB of
//! JSON for a one-model edit.
//!
//! Beside the manifest, `target/manifest_layout.bin` records where its
//! parts lie: the `metadata` value and each node's `"uid":{...}` entry
//! (byte offsets), with a hash of what each entry's compiled part came
//! from (its SQL, the CTEs it inlines). It also records the manifest's
//! [`Stamp`] (size, inode, modification and change times, taken from the
//! file dp wrote: a manifest edited by hand, touched, or written by another
//! tool or another dp process since is never trusted: it is written in
//! full) and the partial parse the manifest came from ([`Generation`]).
//! The unchanged parts are copied file to file by the kernel
//! (`copy_file_range`), never read into dp. A node's entry is copied
//! when the parse it came from and this one are the same but for re-parsed
//! models (the cache knows which), the node is not one of them, and its
//! compiled part's hash is unchanged. Everything outside `nodes` but
//! `metadata` depends only on the parse, so it is copied too. The result
//! is byte for byte what a full write gives (`write_manifest`); with no
//! layout, or any doubt, the manifest is written in full.

use std::collections::HashSet;
use std::hash::Hasher;
use std::io::{self, BufWriter, Seek, Write};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use twox_hash::XxHash64;

use super::Compiled;
use super::manifest::{Derived, Layout, manifest_nodes, metadata_json, node_entry, write_manifest};
use crate::fs::Stamp;
use crate::graph::Dag;
use crate::project::cache::Generation;
use crate::project::load::Project;
use crate::project::nodes::Node;
use crate::util::replace::Replacement;

/// The layout file, under the target folder.
pub const FILE: &str = "manifest_layout.bin";
const VERSION: u32 = 2;

/// The layout file's first line (JSON); then `count` records of three
/// little-endian u64: entry start, entry end, compiled-part hash.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Head {
    version: u32,
    /// The dp build (a different build may write different JSON).
    build: String,
    generation: u64,
    /// The manifest as written.
    stamp: Stamp,
    /// Hash of the nodes' unique ids in the manifest's order.
    uids: u64,
    metadata: (u64, u64),
    count: usize,
}

struct Record {
    start: u64,
    end: u64,
    compiled: u64,
}

/// How a manifest was written (for logs and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// Serialized in full; why the previous one could not be reused.
    Full(String),
    /// Copied from the previous manifest but for these many nodes.
    Reused { serialized: usize },
}

fn uids_hash(nodes: &[(&String, &crate::project::nodes::Node)]) -> u64 {
    let mut h = XxHash64::with_seed(0);
    for (uid, _) in nodes {
        h.write(uid.as_bytes());
        h.write(b"\n");
    }
    h.finish()
}

/// What a node's entry takes from the compile: its SQL and the CTEs it
/// inlines (none: not compiled).
fn compiled_hash(uid: &str, compiled: Option<&Compiled>) -> u64 {
    let mut h = XxHash64::with_seed(0);
    match compiled.and_then(|c| c.sql.get(uid).map(|sql| (c, sql))) {
        None => h.write(b"-"),
        Some((c, sql)) => {
            h.write(b"+");
            h.write(sql.as_bytes());
            for e in c.ephemerals.get(uid).into_iter().flatten() {
                h.write(b"\0");
                h.write(e.as_bytes());
                h.write(b"\0");
                h.write(c.cte_sql.get(e).map(String::as_bytes).unwrap_or(b"\x01"));
            }
        }
    }
    h.finish()
}

fn read_layout(path: &Path) -> Option<(Head, Vec<Record>)> {
    let bytes = std::fs::read(path).ok()?;
    let nl = bytes.iter().position(|b| *b == b'\n')?;
    let head: Head = serde_json::from_slice(&bytes[..nl]).ok()?;
    let body = &bytes[nl + 1..];
    if body.len() != head.count * 24 {
        return None;
    }
    let u = |c: &[u8]| u64::from_le_bytes(c.try_into().unwrap());
    let records = body.chunks_exact(24).map(|c| Record { start: u(&c[..8]), end: u(&c[8..16]), compiled: u(&c[16..]) }).collect();
    Some((head, records))
}

fn write_layout(path: &Path, head: &Head, records: &[Record]) -> io::Result<()> {
    let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
    let mut w = BufWriter::new(std::fs::File::create(&tmp)?);
    serde_json::to_writer(&mut w, head)?;
    w.write_all(b"\n")?;
    for r in records {
        for v in [r.start, r.end, r.compiled] {
            w.write_all(&v.to_le_bytes())?;
        }
    }
    w.flush()?;
    drop(w);
    std::fs::rename(&tmp, path)
}

/// Writes `target/manifest.json` (returns its path and how it was
/// written), reusing the previous one's unchanged entries when it can.
#[allow(clippy::too_many_arguments)]
pub fn write(
    project: &Project,
    dag: &Dag,
    compiled: Option<&Compiled>,
    generation: &Generation,
    invocation_id: &str,
    generated_at: &str,
) -> io::Result<(PathBuf, Written)> {
    let dir = project.settings.target_dir();
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("manifest.json");
    let layout_path = dir.join(FILE);
    // The previous manifest's spare, or a per-process temporary file
    // (`crate::util::replace`).
    let (replacement, mut file) = Replacement::open(&path)?;
    let mut clock = crate::project::load::Phases::start();
    let nodes = manifest_nodes(project);
    clock.lap("manifest: nodes");
    let hashes: Vec<u64> = nodes.par_iter().map(|(uid, _)| compiled_hash(uid, compiled)).collect();
    let uids = uids_hash(&nodes);
    let meta = metadata_json(project, invocation_id, generated_at);
    let build = crate::project::cache::build_id();
    clock.lap("manifest: hashes, metadata");

    let reused = match reusable(&path, &layout_path, generation, &build, &nodes, uids, &hashes) {
        Err(why) => Err(why),
        Ok((head, records, dirty)) => {
            let dirty: Vec<usize> = dirty.into_iter().collect();
            match splice(&path, &mut file, project, compiled, &nodes, &head, &records, &dirty, &meta) {
                Ok(Some(done)) => Ok((done, dirty.len())),
                Ok(None) => Err("the manifest changed since it was written".to_string()),
                Err(e) => Err(format!("reading the previous manifest: {e}")),
            }
        }
    };
    let (layout, how) = match reused {
        Ok((done, serialized)) => (done, Written::Reused { serialized }),
        Err(why) => {
            file.rewind()?;
            let mut w = BufWriter::with_capacity(1 << 20, &mut file);
            let layout = write_manifest(&mut w, project, dag, compiled, invocation_id, generated_at)?;
            w.flush()?;
            (layout, Written::Full(why))
        }
    };
    clock.lap("manifest: written");
    replacement.commit(&mut file)?;
    tracing::debug!("manifest: {how:?}");
    // The layout of the manifest just written (a failure costs the next
    // write its speed only; a stale layout is never trusted). The stamp is
    // of the file this process wrote, after its rename: if another process
    // has renamed its own manifest over it meanwhile, the inodes differ and
    // no layout is kept.
    let saved = (|| -> io::Result<()> {
        if generation.id == 0 || layout.nodes.len() != nodes.len() {
            return Err(io::Error::other("no partial parse"));
        }
        let stamp = Stamp::of(&file.metadata()?);
        if Stamp::read(&path).map(|s| s.ino) != Some(stamp.ino) {
            return Err(io::Error::other("another process replaced the manifest"));
        }
        let head = Head { version: VERSION, build, generation: generation.id, stamp, uids, metadata: layout.metadata, count: nodes.len() };
        let records: Vec<Record> = layout.nodes.iter().zip(&hashes).map(|((s, e), c)| Record { start: *s, end: *e, compiled: *c }).collect();
        write_layout(&layout_path, &head, &records)
    })();
    clock.lap("manifest: layout");
    if let Err(e) = saved {
        tracing::debug!("manifest layout not kept: {e}");
        let _ = std::fs::remove_file(&layout_path);
    }
    Ok((path, how))
}

/// The previous manifest's layout when it can be reused, with the
/// positions of the nodes to serialize again; `Err(why)` otherwise.
fn reusable(
    path: &Path,
    layout_path: &Path,
    generation: &Generation,
    build: &str,
    nodes: &[(&String, &Node)],
    uids: u64,
    hashes: &[u64],
) -> Result<(Head, Vec<Record>, Vec<usize>), String> {
    let (head, records) = read_layout(layout_path).ok_or("no manifest layout")?;
    if head.version != VERSION || head.build != build {
        return Err("another dp build wrote the manifest".into());
    }
    let changed = generation.changed_since(head.generation).ok_or("the project was parsed again in full")?;
    if Stamp::read(path).ok_or("no manifest")? != head.stamp {
        return Err("the manifest changed since it was written".into());
    }
    if head.uids != uids || records.len() != hashes.len() || records.len() != nodes.len() {
        return Err("the nodes changed".into());
    }
    let changed: HashSet<&str> = changed.into_iter().collect();
    let dirty = (0..nodes.len()).filter(|i| records[*i].compiled != hashes[*i] || changed.contains(nodes[*i].0.as_str())).collect();
    Ok((head, records, dirty))
}

/// Old pieces at least this long are copied file to file by the kernel.
const KERNEL_COPY: u64 = 256 << 10;

/// A piece of the new manifest: bytes of the old one, or new bytes.
enum Piece {
    Old(u64, u64),
    New(Vec<u8>),
}

/// Writes `out` (from its start) from the previous manifest at `path`,
/// serializing the `dirty` nodes (positions in `nodes`) and the metadata
/// again. Returns the new layout; `None` when the previous manifest is not
/// the one recorded or another process is replacing it (`out` is then
/// rewound and written in full).
#[allow(clippy::too_many_arguments)]
fn splice(
    path: &Path,
    out: &mut std::fs::File,
    project: &Project,
    compiled: Option<&Compiled>,
    nodes: &[(&String, &Node)],
    head: &Head,
    records: &[Record],
    dirty: &[usize],
    meta: &[u8],
) -> io::Result<Option<Layout>> {
    let only: crate::util::FastSet<&str> = dirty.iter().map(|i| nodes[*i].0.as_str()).collect();
    let derived = (!dirty.is_empty()).then(|| Derived::of(project, Some(&only)));
    let fresh: Vec<Vec<u8>> = dirty
        .par_iter()
        .map(|i| {
            let (uid, n) = nodes[*i];
            let mut buf = Vec::with_capacity(8192);
            node_entry(&mut buf, project, uid, n, compiled, derived.as_ref().unwrap())?;
            Ok(buf)
        })
        .collect::<io::Result<_>>()?;
    // The pieces, in order (consecutive old ranges merged), and where
    // each part lands in the new file.
    let mut pieces: Vec<Piece> = vec![];
    let mut layout = Layout { metadata: (0, 0), nodes: Vec::with_capacity(records.len()) };
    let mut out_at: u64 = 0;
    let old = |pieces: &mut Vec<Piece>, out_at: &mut u64, s: u64, e: u64| {
        *out_at += e - s;
        match pieces.last_mut() {
            Some(Piece::Old(_, end)) if *end == s => *end = e,
            _ => pieces.push(Piece::Old(s, e)),
        }
    };
    old(&mut pieces, &mut out_at, 0, head.metadata.0);
    layout.metadata = (out_at, out_at + meta.len() as u64);
    out_at += meta.len() as u64;
    pieces.push(Piece::New(meta.to_vec()));
    let mut fresh = dirty.iter().copied().zip(fresh).peekable();
    let mut at = head.metadata.1;
    for (i, r) in records.iter().enumerate() {
        if r.start < at || r.end < r.start || r.end > head.stamp.size {
            return Ok(None);
        }
        old(&mut pieces, &mut out_at, at, r.start);
        let start = out_at;
        match fresh.next_if(|(d, _)| *d == i) {
            Some((_, bytes)) => {
                out_at += bytes.len() as u64;
                pieces.push(Piece::New(bytes));
            }
            None => old(&mut pieces, &mut out_at, r.start, r.end),
        }
        layout.nodes.push((start, out_at));
        at = r.end;
    }
    old(&mut pieces, &mut out_at, at, head.stamp.size);

    // Large old pieces are copied by the kernel (`copy_file_range`); small
    // ones (the commas between entries serialized again, a syscall each
    // otherwise) and the new pieces go through one buffer.
    use std::os::unix::fs::FileExt;
    let mut src = std::fs::File::open(path)?;
    // Held while reading, so no other process overwrites this file as its
    // spare meanwhile (`crate::util::replace`); checked after locking.
    if src.try_lock_shared().is_err() || Stamp::of(&src.metadata()?) != head.stamp {
        return Ok(None);
    }
    let mut out = BufWriter::with_capacity(1 << 20, out);
    let mut small = vec![];
    for p in &pieces {
        match p {
            Piece::Old(s, e) if e - s >= KERNEL_COPY => {
                out.flush()?;
                src.seek(io::SeekFrom::Start(*s))?;
                if io::copy(&mut io::Read::take(&mut src, e - s), out.get_mut())? != e - s {
                    return Ok(None);
                }
            }
            Piece::Old(s, e) => {
                small.resize((e - s) as usize, 0);
                src.read_exact_at(&mut small, *s)?;
                out.write_all(&small)?;
            }
            Piece::New(bytes) => out.write_all(bytes)?,
        }
    }
    out.flush()?;
    Ok(Some(layout))
}
