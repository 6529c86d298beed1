//! The render cache, `target/render_cache.bin` (`crate::util::frames`): the SQL each node rendered
//! to, under a key of everything its rendering reads, so a compile after an
//! edit renders only the nodes whose key changed.
//!
//! A node's key hashes the global key (the partial-parse key: dp build,
//! settings, vars, target; every macro's text; the values of the env vars
//! the project read while loading and compiling), the node itself as loaded
//! (its code, config, columns, refs...), the relations its `ref()`s and
//! `source()`s resolve to, and whether it runs incrementally. Not cached:
//! snapshots, nodes that inline ephemeral models, nodes whose rendering
//! queried the warehouse, nodes whose code mentions something that changes
//! between runs or acts (`run_started_at`, `invocation_id`,
//! `selected_resources`, `graph`, `flags`, `modules`, `log`, `print`,
//! `run_query`, `statement`, `load_result`, `doc`), and every node when a macro of the project
//! or its packages mentions one of those or some macro reads `graph`.
//!
//! Computing the keys of 40,000 nodes costs a fifth of a second, so an
//! entry also records the parse it was last checked against
//! ([`Generation`]), the global key and whether the node ran
//! incrementally: when all three say nothing it reads can have changed
//! (the parses differ only by re-parsed models, this node not among them,
//! whose refs and configs did not change), the entry is reused without its key.
//! A parse remembers the last [`GENERATIONS`] parses, so when the cache is
//! saved, an entry checked under a parse half that many edits old whose
//! node was not re-parsed since is recorded under this parse instead,
//! rendered now or not (`dp run -s one_model` renders one node): one full
//! write of the file every few edits, instead of keying every node again
//! once its parse is forgotten. Its global key and `incremental` stay as
//! they were, and are still checked when it is reused.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::project::cache::{GENERATIONS, Generation, hash_str};
use crate::project::load::Project;
use crate::project::nodes::{Node, ResourceType};
use crate::util::frames;

/// The cache file, under the target folder.
pub const FILE: &str = "render_cache.bin";

/// What makes a rendering depend on more than its inputs.
/// (`log`/`print` too: their output is the point.)
const VOLATILE: [&str; 12] =
    ["run_started_at", "invocation_id", "selected_resources", "graph", "flags", "modules", "log(", "print(", "run_query", "statement", "load_result", "doc("];

/// A node's rendering, as `compile` keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub key: u64,
    pub sql: String,
    /// What a generic test's macro set with `config()`.
    #[serde(with = "crate::util::binval::map")]
    pub config: serde_json::Map<String, serde_json::Value>,
    /// The parse, global key and `is_incremental()` the key was last
    /// checked under (set by [`RenderCache::put`]).
    #[serde(default)]
    pub generation: u64,
    #[serde(default)]
    pub global: u64,
    #[serde(default)]
    pub incremental: bool,
}

/// The file: this head, then the `(unique id, entry)` pairs
/// (`crate::util::frames::write`).
#[derive(Default, Serialize, Deserialize)]
struct Stored {
    /// Env vars read while rendering (their values are part of the global key).
    env_keys: Vec<String>,
    #[serde(skip)]
    entries: crate::util::FastMap<String, Entry>,
    /// Entries in the file, counting those a later one replaces.
    #[serde(skip)]
    lines: usize,
}

fn read(path: &Path) -> Option<Stored> {
    let (mut head, entries): (Stored, Vec<(String, Entry)>) = frames::read(path)?;
    head.lines = entries.len();
    // later entries (appended by `save`) replace earlier ones
    head.entries = entries.into_iter().collect();
    Some(head)
}

/// The cache of one compile: the entries read, the ones rendered now.
pub struct RenderCache {
    path: PathBuf,
    global: u64,
    /// False when some macro makes every rendering volatile.
    enabled: bool,
    old: Stored,
    generation: Generation,
    /// The earlier parses `generation` remembers: how many edits ago, and
    /// the nodes re-parsed since.
    since: crate::util::FastMap<u64, (usize, crate::util::FastSet<String>)>,
    new: Mutex<crate::util::FastMap<String, Entry>>,
    hits: std::sync::atomic::AtomicUsize,
    /// Hits whose key was not computed ([`RenderCache::reuse`]).
    reused: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for RenderCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RenderCache").field("path", &self.path).field("enabled", &self.enabled).finish_non_exhaustive()
    }
}

fn volatile(text: &str) -> bool {
    VOLATILE.iter().any(|v| text.contains(v))
}

/// The cache file of a target folder, read on a thread of its own while
/// the project loads: at 10,000 models the load's first 60 ms (reading
/// the partial-parse cache) keep one core busy, and reading this file
/// takes about as long on the other.
pub struct Prefetch {
    path: PathBuf,
    read: std::thread::JoinHandle<Option<Stored>>,
}

impl Prefetch {
    pub fn start(target_dir: &Path) -> Prefetch {
        let path = target_dir.join(FILE);
        let p = path.clone();
        Prefetch { path, read: std::thread::spawn(move || read(&p)) }
    }
}

impl RenderCache {
    /// Opens the cache of `project` in its target folder (read already by
    /// `prefetch` when it is of that folder). `parse_key` is
    /// the partial-parse key; `env` gives the current value of an env var
    /// and `env_read` lists those the load read.
    /// `generation` is the parse the project came from.
    pub fn open(
        project: &Project,
        parse_key: u64,
        generation: &Generation,
        env: &dyn Fn(&str) -> Option<String>,
        env_read: &BTreeMap<String, Option<u64>>,
        prefetch: Option<Prefetch>,
    ) -> RenderCache {
        let path = project.settings.target_dir().join(FILE);
        let old = match prefetch {
            Some(p) if p.path == path => p.read.join().ok().flatten(),
            _ => read(&path),
        }
        .unwrap_or_default();
        let mut g = format!("{parse_key}\n");
        for m in project.macros.values() {
            g.push_str(&m.unique_id);
            g.push_str(&m.macro_sql);
        }
        let mut keys: Vec<&String> = old.env_keys.iter().chain(env_read.keys()).collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            g.push_str(&format!("\n{k}={:?}", env(k).as_deref().map(hash_str)));
        }
        let enabled = !project.jinja.has_graph() && !project.macros.values().any(|m| volatile(&m.macro_sql));
        RenderCache {
            path,
            global: hash_str(&g),
            enabled,
            old,
            generation: generation.clone(),
            since: generation.since.iter().enumerate().map(|(age, (g, nodes))| (*g, (age + 1, nodes.iter().cloned().collect()))).collect(),
            new: Mutex::new(Default::default()),
            hits: Default::default(),
            reused: Default::default(),
        }
    }

    /// The key of `n`'s rendering, `None` when it is not cacheable;
    /// `deps` are the relations its refs and sources resolve to.
    pub fn key(&self, n: &Node, deps: &[String], incremental: bool) -> Option<u64> {
        if !self.enabled || !matches!(n.resource_type, ResourceType::Model | ResourceType::Test | ResourceType::Analysis) || volatile(&n.raw_code) {
            return None;
        }
        let node = serde_json::to_string(n).ok()?;
        Some(hash_str(&format!("{}\n{node}\n{}\n{incremental}", self.global, deps.join("\n"))))
    }

    /// The cached rendering of `uid` without its key: its entry was
    /// checked under this global key and `incremental`, against a parse
    /// this one differs from only by re-parsed nodes `uid` is not among.
    pub fn reuse(&self, uid: &str, incremental: bool) -> Option<Entry> {
        if !self.enabled {
            return None;
        }
        let e = self.old.entries.get(uid)?;
        if e.global != self.global || e.incremental != incremental || self.generation.id == 0 || e.generation == 0 {
            return None;
        }
        let unchanged = e.generation == self.generation.id || self.since.get(&e.generation).is_some_and(|(_, changed)| !changed.contains(uid));
        if !unchanged {
            return None;
        }
        self.hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.reused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Some(e.clone())
    }

    /// The cached rendering of `uid` under `key` (then it is recorded as
    /// checked under this parse).
    pub fn get(&self, uid: &str, key: u64, incremental: bool) -> Option<Entry> {
        let e = self.old.entries.get(uid).filter(|e| e.key == key)?;
        self.hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if e.generation != self.generation.id || e.global != self.global || e.incremental != incremental {
            self.put(uid, e.clone(), incremental);
        }
        Some(e.clone())
    }

    /// Keeps a rendering for the next compile.
    pub fn put(&self, uid: &str, entry: Entry, incremental: bool) {
        let entry = Entry { generation: self.generation.id, global: self.global, incremental, ..entry };
        self.new.lock().unwrap().insert(uid.to_string(), entry);
    }

    /// Nodes served from the cache so far.
    pub fn hits(&self) -> usize {
        self.hits.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Writes the cache back: this compile's renderings over the earlier
    /// ones (nodes not compiled now keep theirs, still under their key);
    /// `env_read` are the env vars read by now, loading and rendering.
    pub fn save(&self, env_read: &BTreeMap<String, Option<u64>>) -> std::io::Result<()> {
        tracing::debug!("render cache: {} reused without their key", self.reused.load(std::sync::atomic::Ordering::Relaxed));
        let mut new = self.new.lock().unwrap();
        // Entries about to outlive the parse they were checked under.
        for (uid, e) in &self.old.entries {
            if !new.contains_key(uid)
                && let Some((age, changed)) = self.since.get(&e.generation)
                && *age >= GENERATIONS / 2
                && !changed.contains(uid)
            {
                new.insert(uid.clone(), Entry { generation: self.generation.id, ..e.clone() });
            }
        }
        let mut env_keys: Vec<String> = self.old.env_keys.iter().cloned().chain(env_read.keys().cloned()).collect();
        env_keys.sort();
        env_keys.dedup();
        if new.is_empty() && env_keys == self.old.env_keys {
            return Ok(());
        }
        let mut pairs: Vec<(&String, &Entry)> = new.iter().collect();
        pairs.sort_by(|a, b| a.0.cmp(b.0));
        // A few renderings: appended to the file (a later entry replaces an
        // earlier one), while the file holds less than half replaced entries.
        let few = env_keys == self.old.env_keys && self.old.lines > 0 && (self.old.lines + pairs.len()) * 2 < self.old.entries.len() * 3;
        if few && frames::append(&self.path, &pairs).is_ok() {
            return Ok(());
        }
        pairs.extend(self.old.entries.iter().filter(|(k, _)| !new.contains_key(*k)));
        // the JSON file of dp before 2026-12-04
        let _ = std::fs::remove_file(self.path.with_file_name("render_cache.json"));
        frames::write(&self.path, &Stored { env_keys, ..Stored::default() }, &pairs)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}
