//! The partial-parse cache, `target/partial_parse.bin` (`crate::util::frames`): a second load of an
//! unchanged project takes its nodes back from the cache instead of parsing
//! every file, rendering every config and naming every relation again.
//!
//! Loading reads through a recording [`FileSystem`] and a recording
//! `env_var()` lookup, so the cache knows every input of the parse: each file
//! read (a hash of its text), each folder listing (a hash of the names), each
//! `exists` probe and each environment variable read (a hash of its value).
//! A file that had not changed for [`SETTLED`] seconds when it was read also
//! has its [`Stamp`] recorded (taken before the read); while the stamp is
//! the same the file is not read again to be compared, as git trusts its
//! index. Files changed more recently are compared by their text.
//! It is used only when all of them are unchanged and so is its key: the dp
//! version and binary, the resolved settings (target, profile, `vars:` and
//! `--vars`) and the `--full-refresh` / `--store-failures` flags. A project
//! whose files read `invocation_id` or `run_started_at` is never cached, and
//! one that reads `flags.WHICH` only for the same command. Anything else
//! changed (a model, a YAML file, a macro, a file added or removed, a var, an
//! env var, the target): the project is parsed again in full and the cache is
//! rewritten. The rendered SQL of nodes has its own cache
//! (`crate::compile::cache`), keyed per node.

use indexmap::IndexMap;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::load::{EnvLookup, LoadError, LoadOptions, Project, Restored, load_project, restore};
use super::nodes::{DocBlock, Macro, Node, NodeMap};
use crate::config::Settings;
use crate::fs::{FileSystem, Stamp, now_ns};
use crate::util::frames;

/// The cache file, under the target folder.
pub const FILE: &str = "partial_parse.bin";

/// A file changed less than this many seconds before it was read is
/// compared by its text on the next load, not by its [`Stamp`].
pub const SETTLED: i128 = 2;

/// Tokens that make a parse depend on the invocation itself.
const VOLATILE: [&str; 2] = ["invocation_id", "run_started_at"];

/// A stable 64-bit hash of `s` (std's SipHash with fixed keys; the dp binary
/// is part of every key, so a different hasher can only cause a miss).
pub fn hash_str(s: &str) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

/// What a load read.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inputs {
    /// File → hash of its text (`None`: it could not be read).
    pub files: BTreeMap<String, Option<u64>>,
    /// File → its [`Stamp`], taken before it was read, for the files that
    /// had not changed for [`SETTLED`] seconds then: a file whose stamp is
    /// still that is not read again to be compared.
    #[serde(default)]
    pub stamps: BTreeMap<String, Stamp>,
    /// `dir|ext,ext` → hash of the listing (`None`: an error).
    pub lists: BTreeMap<String, Option<u64>>,
    pub exists: BTreeMap<String, bool>,
    /// Environment variable → hash of its value (`None`: unset).
    pub env: BTreeMap<String, Option<u64>>,
    /// Some file read mentions `invocation_id` / `run_started_at`.
    pub volatile: bool,
    /// Some file read mentions `WHICH` (`flags.WHICH`).
    pub reads_which: bool,
}

/// Records the inputs of a load (files through [`RecordingFs`], env vars
/// through [`Recorder::env`]); shared with the Jinja environment, so the
/// env vars read while compiling are recorded too.
#[derive(Debug)]
pub struct Recorder {
    inputs: Mutex<Inputs>,
    /// Files changed less than this many seconds before they are read get
    /// no stamp ([`SETTLED`]; tests lower it).
    settle_secs: i128,
}

impl Default for Recorder {
    fn default() -> Recorder {
        Recorder { inputs: Mutex::default(), settle_secs: SETTLED }
    }
}

impl Recorder {
    /// `inner`, recording each variable read and its value's hash.
    pub fn env(self: &Arc<Self>, inner: EnvLookup) -> EnvLookup {
        let rec = self.clone();
        Arc::new(move |k: &str| {
            let v = inner(k);
            rec.inputs.lock().unwrap().env.insert(k.to_string(), v.as_deref().map(hash_str));
            v
        })
    }

    pub fn inputs(&self) -> Inputs {
        self.inputs.lock().unwrap().clone()
    }
}

/// A [`FileSystem`] that records what is read through it.
pub struct RecordingFs<'a> {
    pub inner: &'a dyn FileSystem,
    pub rec: Arc<Recorder>,
}

fn list_key(dir: &str, exts: &[&str]) -> String {
    format!("{dir}|{}", exts.join(","))
}

fn list_hash(r: &io::Result<Vec<String>>) -> Option<u64> {
    r.as_ref().ok().map(|v| hash_str(&v.join("\n")))
}

impl FileSystem for RecordingFs<'_> {
    fn read_to_string(&self, path: &str) -> io::Result<String> {
        let stamp = self.inner.stamp(path).filter(|s| s.settled(now_ns(), self.rec.settle_secs));
        let r = self.inner.read_to_string(path);
        let h = r.as_ref().ok().map(|t| hash_str(t));
        let (volatile, which) = r.as_ref().map(|t| (VOLATILE.iter().any(|v| t.contains(v)), t.contains("WHICH"))).unwrap_or_default();
        let mut i = self.rec.inputs.lock().unwrap();
        i.files.insert(path.to_string(), h);
        match stamp.filter(|_| h.is_some()) {
            Some(s) => i.stamps.insert(path.to_string(), s),
            None => i.stamps.remove(path),
        };
        i.volatile |= volatile;
        i.reads_which |= which;
        r
    }

    fn list_files(&self, dir: &str, exts: &[&str]) -> io::Result<Vec<String>> {
        let r = self.inner.list_files(dir, exts);
        self.rec.inputs.lock().unwrap().lists.insert(list_key(dir, exts), list_hash(&r));
        r
    }

    fn exists(&self, path: &str) -> bool {
        let e = self.inner.exists(path);
        self.rec.inputs.lock().unwrap().exists.insert(path.to_string(), e);
        e
    }
}

/// What differs now from the recorded inputs: something other than a
/// file's text (an env var, a probe, a listing: files added or removed),
/// and the files whose text changed.
pub struct Diff {
    pub other: Option<String>,
    pub files: Vec<String>,
}

pub fn diff(inputs: &Inputs, fs: &dyn FileSystem, env: &EnvLookup) -> Diff {
    if let Some(other) = changed_other(inputs, fs, env) {
        return Diff { other: Some(other), files: vec![] };
    }
    let files: Vec<_> = inputs.files.iter().collect();
    // the stamps of the files that have one recorded, taken at once
    let stamped: Vec<&str> = files.iter().filter(|(p, _)| inputs.stamps.contains_key(*p)).map(|(p, _)| p.as_str()).collect();
    let now: crate::util::FastMap<&str, Stamp> = stamped.iter().zip(fs.stamps(&stamped)).filter_map(|(p, s)| Some((*p, s?))).collect();
    let changed = |p: &str, h: &Option<u64>| {
        let same_stamp = inputs.stamps.get(p).is_some_and(|s| now.get(p) == Some(s));
        !same_stamp && fs.read_to_string(p).ok().map(|t| hash_str(&t)) != *h
    };
    let files = files.par_iter().filter(|(p, h)| changed(p, h)).map(|(p, _)| p.to_string()).collect();
    Diff { other: None, files }
}

fn changed_other(inputs: &Inputs, fs: &dyn FileSystem, env: &EnvLookup) -> Option<String> {
    if let Some((k, _)) = inputs.env.iter().find(|(k, h)| env(k).as_deref().map(hash_str) != **h) {
        return Some(format!("env var {k}"));
    }
    if let Some((k, _)) = inputs.exists.iter().find(|(p, e)| fs.exists(p) != **e) {
        return Some(format!("{k} appeared or disappeared"));
    }
    let lists: Vec<_> = inputs.lists.iter().collect();
    lists
        .par_iter()
        .find_any(|(k, h)| {
            let (dir, exts) = k.split_once('|').unwrap_or((k, ""));
            let exts: Vec<&str> = exts.split(',').filter(|e| !e.is_empty()).collect();
            list_hash(&fs.list_files(dir, &exts)) != **h
        })
        .map(|(k, _)| format!("files added or removed under {}", k.split('|').next().unwrap_or(k)))
}

/// Identifies this dp build: version, and the executable's size and mtime
/// (a rebuilt binary invalidates the cache even at the same version).
pub fn build_id() -> String {
    let exe = std::env::current_exe().ok().and_then(|p| std::fs::metadata(p).ok());
    let stamp = exe.map(|m| format!("{}:{:?}", m.len(), m.modified().ok())).unwrap_or_default();
    format!("{}+{stamp}", env!("CARGO_PKG_VERSION"))
}

/// The key of a parse: dp build, resolved settings (target, profile, vars),
/// flags that configs may read.
pub fn parse_key(settings: &Settings, opts: &LoadOptions) -> u64 {
    hash_str(&format!("{}\n{settings:?}\n{}\n{}", build_id(), opts.full_refresh, opts.store_failures))
}

/// Which parse of the project a load holds: a random id, and the earlier
/// parses it differs from by re-parsed models alone (their id, those
/// nodes), newest first. `id` 0: not cached (`--no-partial-parse`).
/// The manifest writer (`crate::compile::manifest_reuse`) copies the
/// entries of nodes unchanged since the parse its last manifest came from.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    pub id: u64,
    pub since: Vec<(u64, Vec<String>)>,
}

/// How many earlier parses a [`Generation`] remembers. A render-cache
/// entry checked under a parse that many edits ago is keyed again
/// (`crate::compile::cache`), so entries are refreshed before they age out.
pub const GENERATIONS: usize = 16;

/// An earlier parse is forgotten once more nodes than this changed since:
/// looking them up would cost more than keying those nodes again.
const MAX_CHANGED: usize = 512;

impl Generation {
    fn new() -> Generation {
        Generation { id: uuid::Uuid::new_v4().as_u64_pair().0 | 1, since: vec![] }
    }

    /// The nodes that may differ between parse `id` and this one; `None`
    /// when unknown (then any may).
    pub fn changed_since(&self, id: u64) -> Option<Vec<&str>> {
        if self.id == 0 || id == 0 {
            return None;
        }
        if id == self.id {
            return Some(vec![]);
        }
        self.since.iter().find(|(g, _)| *g == id).map(|(_, nodes)| nodes.iter().map(String::as_str).collect())
    }

    /// Whether node `uid` is the same in parse `id` and this one (the
    /// render cache keeps the same test in a set per parse).
    #[cfg(test)]
    fn unchanged_since(&self, id: u64, uid: &str) -> bool {
        self.id != 0 && id != 0 && (id == self.id || self.since.iter().any(|(g, nodes)| *g == id && !nodes.iter().any(|n| n == uid)))
    }

    /// This parse with `nodes` re-parsed.
    fn after(&self, nodes: &[String]) -> Generation {
        let mut since = vec![(self.id, nodes.to_vec())];
        for (g, old) in self.since.iter().take(GENERATIONS - 1) {
            let mut all = old.clone();
            all.extend(nodes.iter().filter(|n| !old.contains(n)).cloned());
            since.push((*g, all));
        }
        since.truncate(since.iter().position(|(_, nodes)| nodes.len() > MAX_CHANGED).unwrap_or(since.len()));
        Generation { since, ..Generation::new() }
    }
}

/// The cache file: this head, then the `(unique id, node)` pairs
/// ([`frames::write`]).
#[derive(Clone, Serialize, Deserialize)]
struct Stored {
    key: u64,
    which: String,
    inputs: Inputs,
    #[serde(default)]
    generation: Generation,
    #[serde(skip)]
    nodes: NodeMap,
    /// Nodes read from the patch ([`Patch`]).
    #[serde(skip)]
    patched: Vec<String>,
    disabled: Vec<(String, Node)>,
    macros: Vec<(String, Macro)>,
    docs: Vec<(String, DocBlock)>,
    #[serde(with = "crate::util::binval")]
    other: Vec<(String, Vec<(String, Value)>)>,
    warnings: Vec<String>,
}

/// How a load used the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `--no-partial-parse`.
    Disabled,
    /// Parsed in full; why (no cache, or what changed).
    Miss(String),
    /// Nodes taken from the cache.
    Hit,
}

/// A loaded project and what the cache did, plus the recorder (whose env
/// reads keep growing while the project's Jinja renders).
pub struct Loaded {
    pub project: Project,
    pub outcome: Outcome,
    pub recorder: Arc<Recorder>,
    pub generation: Generation,
}

fn cache_path(settings: &Settings) -> std::path::PathBuf {
    settings.target_dir().join(FILE)
}

/// Reads the cache file and its patch, and runs `check` on the head as it
/// stands after the patch (what [`diff`] needs) while the nodes are put in
/// their map. The patch is read and decoded while the file is read; the
/// two steps would otherwise each leave a core idle.
fn read_stored<T: Send>(path: &Path, check: impl FnOnce(&Stored) -> T + Send) -> Option<(Stored, T)> {
    let (patch, file) = rayon::join(|| read_patch(path), || frames::read_chunks::<Stored, (String, Node)>(path));
    let (mut head, chunks) = file?;
    let mut patch_nodes = vec![];
    if let Some(patch) = patch {
        patch_nodes = patch.nodes;
        head = Stored { patched: head.patched, ..patch.head };
    }
    let (checked, nodes) = rayon::join(
        || check(&head),
        || {
            let mut nodes = NodeMap::with_capacity_and_hasher(chunks.iter().map(Vec::len).sum(), Default::default());
            for c in chunks {
                nodes.extend(c);
            }
            let mut patched = vec![];
            for (uid, n) in patch_nodes {
                *nodes.get_mut(&uid)? = n;
                patched.push(uid);
            }
            Some((nodes, patched))
        },
    );
    let (nodes, patched) = nodes?;
    head.patched.extend(patched);
    head.nodes = nodes;
    Some((head, checked))
}

/// Models re-parsed since the cache file was written, saved beside it
/// (`partial_parse.bin.patch`) instead of rewriting 50 MB for a one-model
/// edit: the head as it is now, and those nodes. Used only while the cache
/// file is the one it was written against (size and mtime).
#[derive(Serialize, Deserialize)]
struct Patch {
    base: Stamp,
    head: Stored,
    nodes: Vec<(String, Node)>,
}

/// A patch holds at most this many nodes; then the cache is written in full.
const PATCH_NODES: usize = 1000;

fn patch_path(path: &Path) -> std::path::PathBuf {
    path.with_extension("bin.patch")
}

fn read_patch(path: &Path) -> Option<Patch> {
    let patch: Patch = frames::decode(&std::fs::read(patch_path(path)).ok()?)?;
    (Some(patch.base) == Stamp::read(path)).then_some(patch)
}

fn static_kind(k: &str) -> Option<&'static str> {
    ["groups", "metrics", "semantic_models", "saved_queries"].into_iter().find(|s| *s == k)
}

/// Loads the project, from the cache in `target/` when its inputs are
/// unchanged (`use_cache`), else in full (then the cache is rewritten).
pub fn load(settings: Settings, fs: &dyn FileSystem, opts: &LoadOptions, use_cache: bool) -> Result<Loaded, LoadError> {
    let recorder = Arc::new(Recorder::default());
    let ropts = LoadOptions {
        env: recorder.env(opts.env.clone()),
        invocation_id: opts.invocation_id.clone(),
        run_started_at: opts.run_started_at,
        full_refresh: opts.full_refresh,
        which: opts.which.clone(),
        store_failures: opts.store_failures,
    };
    let path = cache_path(&settings);
    let key = parse_key(&settings, opts);
    // Phase timings: `DP_LOG=dp::project=debug`.
    let mut clock = super::load::Phases::start();
    let outcome = if !use_cache {
        Outcome::Disabled
    } else {
        // Why the cache cannot serve this load whatever the files say.
        let unusable = |s: &Stored| -> Option<&'static str> {
            if s.key != key {
                Some("dp, settings, target or vars changed")
            } else if s.inputs.volatile {
                Some("the project reads invocation_id or run_started_at")
            } else if s.inputs.reads_which && s.which != opts.which {
                Some("the project reads flags.WHICH")
            } else {
                None
            }
        };
        // The inputs are compared while the nodes are put in their map.
        let stored = read_stored(&path, |s| match unusable(s) {
            Some(why) => Err(why),
            None => Ok(diff(&s.inputs, fs, &opts.env)),
        });
        clock.lap("read partial parse cache, compare inputs");
        match stored {
            None => Outcome::Miss("no cache".into()),
            Some((_, Err(why))) => Outcome::Miss(why.into()),
            Some((s, Ok(d))) => {
                match d.other {
                    Some(what) => Outcome::Miss(what),
                    None => {
                        // The recorder starts from the cached inputs: they are this load's too.
                        *recorder.inputs.lock().unwrap() = s.inputs.clone();
                        let other = s.other.into_iter().filter_map(|(k, v)| Some((static_kind(&k)?, v.into_iter().collect::<IndexMap<_, _>>()))).collect();
                        let parts = Restored {
                            nodes: s.nodes,
                            disabled: s.disabled.into_iter().collect(),
                            macros: s.macros.into_iter().collect(),
                            docs: s.docs.into_iter().collect(),
                            other,
                            warnings: s.warnings,
                        };
                        let mut project = restore(settings.clone(), fs, &ropts, parts)?;
                        clock.lap("restore");
                        if d.files.is_empty() {
                            tracing::debug!("partial parse: cache hit ({})", path.display());
                            return Ok(Loaded { project, outcome: Outcome::Hit, recorder, generation: s.generation });
                        }
                        match reparse_models(&mut project, fs, &d.files, &recorder) {
                            Ok((nodes, same_deps)) => {
                                tracing::debug!("partial parse: cache hit, re-parsed {}", d.files.join(", "));
                                // new refs or sources change the DAG: not just these nodes
                                let generation = if same_deps { s.generation.after(&nodes) } else { Generation::new() };
                                let mut patched = s.patched;
                                patched.extend(nodes.iter().filter(|n| !patched.contains(n)).cloned().collect::<Vec<_>>());
                                save(&path, key, opts, &recorder, &project, &generation, Some(&patched));
                                return Ok(Loaded { project, outcome: Outcome::Hit, recorder, generation });
                            }
                            Err(why) => {
                                *recorder.inputs.lock().unwrap() = Inputs::default();
                                Outcome::Miss(why)
                            }
                        }
                    }
                }
            }
        }
    };
    if let Outcome::Miss(why) = &outcome {
        tracing::debug!("partial parse: full parse ({why})");
    }
    let rfs = RecordingFs { inner: fs, rec: recorder.clone() };
    let project = load_project(settings, &rfs, &ropts)?;
    let mut generation = Generation::default();
    if use_cache {
        generation = Generation::new();
        save(&path, key, opts, &recorder, &project, &generation, None);
    }
    Ok(Loaded { project, outcome, recorder, generation })
}

/// Writes the cache of `project` (a failure only costs the next load its
/// speed): when `patched` (the models re-parsed since the cache file was
/// written), a [`Patch`] beside it, else the whole file.
fn save(path: &Path, key: u64, opts: &LoadOptions, recorder: &Recorder, project: &Project, generation: &Generation, patched: Option<&[String]>) {
    let stored = Stored {
        key,
        which: opts.which.clone(),
        inputs: recorder.inputs(),
        generation: generation.clone(),
        nodes: Default::default(),
        patched: vec![],
        disabled: project.disabled.iter().map(|(k, n)| (k.clone(), n.clone())).collect(),
        macros: project.macros.iter().map(|(k, m)| (k.clone(), m.clone())).collect(),
        docs: project.docs.iter().map(|(k, d)| (k.clone(), d.clone())).collect(),
        other: project.other.iter().map(|(k, v)| (k.to_string(), v.iter().map(|(a, b)| (a.clone(), b.clone())).collect())).collect(),
        warnings: project.warnings.clone(),
    };
    let patch = || -> io::Result<()> {
        let patched = patched.filter(|p| p.len() <= PATCH_NODES).ok_or_else(|| io::Error::other("no patch"))?;
        let base = Stamp::read(path).ok_or_else(|| io::Error::other("no cache file"))?;
        let nodes: Vec<(String, Node)> = patched.iter().filter_map(|u| Some((u.clone(), project.nodes.get(u)?.clone()))).collect();
        let p = patch_path(path);
        let tmp = p.with_extension(format!("{}.tmp", std::process::id()));
        std::fs::write(&tmp, frames::encode(&Patch { base, head: stored.clone(), nodes })?)?;
        std::fs::rename(&tmp, &p)
    };
    if patch().is_ok() {
        return;
    }
    let nodes: Vec<(&String, &Node)> = project.nodes.iter().collect();
    let _ = std::fs::remove_file(patch_path(path));
    // the JSON files of dp before 2026-12-04
    for old in ["partial_parse.json", "partial_parse.json.patch"] {
        let _ = std::fs::remove_file(path.with_file_name(old));
    }
    if let Err(e) = frames::write(path, &stored, &nodes) {
        tracing::debug!("partial parse: could not write {}: {e}", path.display());
    }
}

/// Tokens in a model's code that make its parse depend on more than the
/// code (reading its own config or node): such an edit is parsed in full.
const SELF_READING: [&str; 5] = ["config.get", "config.require", "model.", "model[", "WHICH"];

/// Re-parses edited model files alone, in place: allowed when every
/// changed file is one enabled model of the root project whose `config()`
/// calls are unchanged (then only its code, refs and sources change).
/// Returns the re-parsed nodes and whether their refs and sources are the
/// same; `Err(why)` when the project must be parsed in full.
fn reparse_models(project: &mut Project, fs: &dyn FileSystem, files: &[String], recorder: &Recorder) -> Result<(Vec<String>, bool), String> {
    let mut reparsed = vec![];
    let mut same_deps = true;
    for f in files {
        let full = || format!("{f} changed");
        let mut owners = project.nodes.iter().filter(|(_, n)| n.original_file_path == *f);
        let (uid, n) = owners.next().ok_or_else(full)?;
        if owners.next().is_some()
            || n.resource_type != super::nodes::ResourceType::Model
            || n.package_name != project.settings.project_name
            || project.disabled.values().any(|d| d.original_file_path == *f)
        {
            return Err(full());
        }
        let text = fs.read_to_string(f).map_err(|_| full())?;
        if [&text, &n.raw_code].iter().any(|t| VOLATILE.iter().chain(SELF_READING.iter()).any(|v| t.contains(v))) {
            return Err(full());
        }
        let old = super::load::parse_render(&project.settings, &project.jinja, n, &n.raw_code).map_err(|_| full())?;
        let new = super::load::parse_render(&project.settings, &project.jinja, n, &text).map_err(|_| full())?;
        if old.config != new.config || old.refs != n.refs || old.sources != n.sources {
            return Err(full());
        }
        let uid = uid.clone();
        let n = project.nodes.get_mut(&uid).unwrap();
        same_deps &= n.refs == new.refs && n.sources == new.sources;
        n.raw_code = text.clone();
        n.refs = new.refs;
        n.sources = new.sources;
        let mut inputs = recorder.inputs.lock().unwrap();
        inputs.files.insert(f.clone(), Some(hash_str(&text)));
        inputs.stamps.remove(f);
        reparsed.push(uid);
    }
    Ok((reparsed, same_deps))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Overrides;
    use crate::fs::MemFs;

    const PROJECT: &str = "name: p\nversion: '1.0'\nprofile: p\n";

    fn fs(model: &str) -> MemFs {
        MemFs::new().with("dbt_project.yml", PROJECT).with("models/a.sql", model).with("models/b.sql", "select * from {{ ref('a') }}")
    }

    fn record(fs: &MemFs, env: EnvLookup) -> Inputs {
        let settings = Settings::load(Path::new("/p"), fs, &Overrides::default(), &|_| None).unwrap();
        let rec = Arc::new(Recorder::default());
        let opts = LoadOptions { env: rec.env(env), ..LoadOptions::default() };
        load_project(settings, &RecordingFs { inner: fs, rec: rec.clone() }, &opts).unwrap();
        rec.inputs()
    }

    #[test]
    fn a_generation_knows_which_nodes_changed_since_an_earlier_parse() {
        let g0 = Generation::new();
        let g1 = g0.after(&["a".into()]);
        let g2 = g1.after(&["b".into()]);
        assert_eq!(g2.changed_since(g2.id), Some(vec![]));
        assert_eq!(g2.changed_since(g1.id), Some(vec!["b"]));
        assert_eq!(g2.changed_since(g0.id), Some(vec!["a", "b"]));
        assert!(g2.unchanged_since(g0.id, "c") && !g2.unchanged_since(g0.id, "a") && g2.unchanged_since(g1.id, "a"));
        // unknown parses, and no parse (0), say nothing
        assert_eq!(g2.changed_since(12345), None);
        assert!(!g2.unchanged_since(0, "c") && !Generation::default().unchanged_since(0, "c"));
        // only the last few are remembered
        let mut g = g2.clone();
        for _ in 0..GENERATIONS - 2 {
            g = g.after(&[]);
        }
        assert_eq!(g.changed_since(g0.id), Some(vec!["a", "b"]));
        g = g.after(&[]);
        assert_eq!(g.changed_since(g0.id), None);
        // and none from before more than MAX_CHANGED nodes changed
        let many: Vec<String> = (0..=MAX_CHANGED).map(|i| i.to_string()).collect();
        let g3 = g2.after(&many);
        assert_eq!(g3.changed_since(g2.id).map(|c| c.len()), None);
        assert!(g3.since.is_empty());
        let g4 = g3.after(&["a".into()]);
        assert_eq!(g4.changed_since(g3.id), Some(vec!["a"]));
    }

    #[test]
    fn the_recorded_inputs_name_what_changed() {
        let region: EnvLookup = Arc::new(|k| (k == "REGION").then(|| "eu".to_string()));
        let model = "select '{{ env_var('REGION') }}' as r";
        let inputs = record(&fs(model), region.clone());
        assert_eq!(inputs.env.get("REGION"), Some(&Some(hash_str("eu"))));
        assert!(inputs.files.contains_key("models/a.sql") && inputs.files.contains_key("models/b.sql"));
        assert!(!inputs.volatile);

        let same = diff(&inputs, &fs(model), &region);
        assert!(same.other.is_none() && same.files.is_empty());
        let edited = diff(&inputs, &fs("select 2 as r"), &region);
        assert_eq!((edited.other, edited.files), (None, vec!["models/a.sql".to_string()]));
        let added = diff(&inputs, &fs(model).with("models/c.sql", "select 3"), &region);
        assert_eq!(added.other.as_deref(), Some("files added or removed under models"));
        let us: EnvLookup = Arc::new(|k| (k == "REGION").then(|| "us".to_string()));
        assert_eq!(diff(&inputs, &fs(model), &us).other.as_deref(), Some("env var REGION"));
        let unset: EnvLookup = Arc::new(|_| None);
        assert_eq!(diff(&inputs, &fs(model), &unset).other.as_deref(), Some("env var REGION"));

        let stamped = record(&fs("select '{{ run_started_at }}' as at"), region);
        assert!(stamped.volatile);
    }

    /// A file read after it had settled is compared by its stamp, without
    /// reading it; any write moves the stamp, even one that restores the
    /// size and modification time, and the file is read and compared again.
    #[test]
    fn a_settled_file_is_trusted_by_its_stamp_until_it_is_written() {
        struct Counting<'a>(&'a crate::fs::OsFs, std::sync::atomic::AtomicUsize);
        impl FileSystem for Counting<'_> {
            fn read_to_string(&self, path: &str) -> io::Result<String> {
                self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.0.read_to_string(path)
            }
            fn list_files(&self, dir: &str, exts: &[&str]) -> io::Result<Vec<String>> {
                self.0.list_files(dir, exts)
            }
            fn exists(&self, path: &str) -> bool {
                self.0.exists(path)
            }
            fn stamp(&self, path: &str) -> Option<Stamp> {
                self.0.stamp(path)
            }
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("dbt_project.yml"), PROJECT).unwrap();
        std::fs::create_dir(dir.path().join("models")).unwrap();
        let a = dir.path().join("models/a.sql");
        std::fs::write(&a, "select 1 as x").unwrap();
        let os = crate::fs::OsFs::new(dir.path());
        let settings = Settings::load(dir.path(), &os, &Overrides::default(), &|_| None).unwrap();
        let no_env: EnvLookup = Arc::new(|_| None);
        // settled at once (0 s), then a clock tick apart from any later write
        let rec = Arc::new(Recorder { settle_secs: 0, ..Recorder::default() });
        std::thread::sleep(std::time::Duration::from_millis(50));
        load_project(settings, &RecordingFs { inner: &os, rec: rec.clone() }, &LoadOptions::default()).unwrap();
        let inputs = rec.inputs();
        assert!(inputs.stamps.contains_key("models/a.sql"));
        // the default: a file written just now is compared by its text
        let fresh = Arc::new(Recorder::default());
        RecordingFs { inner: &os, rec: fresh.clone() }.read_to_string("models/a.sql").unwrap();
        assert!(fresh.inputs().stamps.is_empty() && fresh.inputs().files.contains_key("models/a.sql"));

        let counting = Counting(&os, Default::default());
        let same = diff(&inputs, &counting, &no_env);
        assert!(same.other.is_none() && same.files.is_empty());
        assert_eq!(counting.1.load(std::sync::atomic::Ordering::Relaxed), 0, "a settled file was read");

        std::thread::sleep(std::time::Duration::from_millis(50));
        let before = std::fs::metadata(&a).unwrap();
        std::fs::write(&a, "select 2 as x").unwrap();
        std::fs::File::options().write(true).open(&a).unwrap().set_modified(before.modified().unwrap()).unwrap();
        assert_eq!((std::fs::metadata(&a).unwrap().len(), std::fs::metadata(&a).unwrap().modified().unwrap()), (before.len(), before.modified().unwrap()));
        let edited = diff(&inputs, &counting, &no_env);
        assert_eq!((edited.other, edited.files), (None, vec!["models/a.sql".to_string()]));
        assert_eq!(counting.1.load(std::sync::atomic::Ordering::Relaxed), 1, "only the written file is read");
    }
}
