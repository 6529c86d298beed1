//! Shared set-up of commands: settings, project, DAG, selection, artifacts.

use anyhow::Context as _;
use indexmap::IndexSet;
use std::path::PathBuf;
use std::sync::Arc;

use super::args::{GlobalArgs, SelectArgs};
use crate::config::{Overrides, Settings};
use crate::fs::OsFs;
use crate::graph::select::{IndirectSelection, SelectionSpec};
use crate::graph::{Dag, resolve_dependencies};
use crate::project::load::{LoadOptions, Project};
use crate::project::nodes::ResourceType;

pub struct Loaded {
    pub project: Project,
    pub dag: Dag,
    pub fs: OsFs,
    pub invocation_id: String,
    pub started: chrono::DateTime<chrono::Utc>,
    /// What the partial-parse cache did (src/project/cache.rs), what the
    /// load read (env vars keep being recorded while Jinja renders) and
    /// the parse key the render cache builds on.
    pub parse_cache: crate::project::cache::Outcome,
    pub recorder: Arc<crate::project::cache::Recorder>,
    pub parse_key: u64,
    /// Which parse the project is (the manifest writer reuses what did not change).
    pub generation: crate::project::cache::Generation,
    /// The render cache, read while the project loaded (commands that render).
    pub render_prefetch: std::sync::Mutex<Option<crate::compile::cache::Prefetch>>,
}

impl Loaded {
    /// Ends a command without waiting for the project to be freed
    /// ([`crate::util::drop_in_background`]): freeing 40,000 nodes one
    /// allocation at a time was a tenth of `dp ls` at 10,000 models.
    pub fn leave_for_exit(self) {
        crate::util::drop_in_background(self);
    }
}

#[derive(Default)]
pub struct LoadArgs<'a> {
    pub threads: Option<usize>,
    pub full_refresh: bool,
    pub which: &'a str,
    pub store_failures: bool,
}

pub fn project_root(g: &GlobalArgs) -> anyhow::Result<PathBuf> {
    let p = if g.project_dir.is_absolute() { g.project_dir.clone() } else { std::env::current_dir()?.join(&g.project_dir) };
    Ok(crate::config::normalize_path(&p))
}

pub fn settings(g: &GlobalArgs, threads: Option<usize>) -> anyhow::Result<Settings> {
    let root = project_root(g)?;
    let fs = OsFs::new(&root);
    let overrides = Overrides { target: g.target.clone(), threads, warehouse: None, vars: g.vars.clone() };
    Ok(Settings::load(&root, &fs, &overrides, &|k| std::env::var(k).ok())?)
}

pub fn load(g: &GlobalArgs, a: LoadArgs<'_>, printer: &super::Printer) -> anyhow::Result<Loaded> {
    let settings = settings(g, a.threads)?;
    let fs = OsFs::new(&settings.root);
    let opts = LoadOptions {
        env: Arc::new(|k| std::env::var(k).ok()),
        invocation_id: uuid::Uuid::new_v4().to_string(),
        run_started_at: chrono::Utc::now(),
        full_refresh: a.full_refresh,
        which: a.which.to_string(),
        store_failures: a.store_failures,
    };
    let invocation_id = opts.invocation_id.clone();
    let started = opts.run_started_at;
    let mut clock = crate::project::load::Phases::start();
    let parse_key = crate::project::cache::parse_key(&settings, &opts);
    // Commands that render read the render cache meanwhile.
    let renders = ["compile", "run", "build", "test", "seed", "snapshot"].contains(&a.which);
    let render_prefetch = (renders && !g.no_partial_parse).then(|| crate::compile::cache::Prefetch::start(&settings.target_dir()));
    let cached = crate::project::cache::load(settings, &fs, &opts, !g.no_partial_parse)?;
    let (mut project, parse_cache, recorder, generation) = (cached.project, cached.outcome, cached.recorder, cached.generation);
    clock.lap("load_project");
    // `ingest:` blocks of sources are checked on every load (file:line errors).
    crate::ingest::spec::validate_project(&project, &fs)?;
    for w in &project.warnings {
        printer.warn(w);
    }
    clock.lap("ingest specs");
    resolve_dependencies(&mut project)?;
    clock.lap("resolve dependencies");
    let dag = Dag::build(&project)?;
    clock.lap("dag");
    Ok(Loaded { project, dag, fs, invocation_id, started, parse_cache, recorder, parse_key, generation, render_prefetch: render_prefetch.into() })
}

pub fn spec(s: &SelectArgs, resource_types: Vec<ResourceType>) -> anyhow::Result<SelectionSpec> {
    let indirect: IndirectSelection = s.indirect_selection.into();
    Ok(SelectionSpec { select: s.select.clone(), exclude: s.exclude.clone(), selector: s.selector.clone(), resource_types, indirect, state: None })
}

/// The selected unique ids; dbt's warnings (a criterion matching nothing)
/// and the default selector used are printed.
pub fn select(l: &Loaded, s: &SelectArgs, types: Vec<ResourceType>, printer: &super::Printer) -> anyhow::Result<IndexSet<String>> {
    let mut spec = spec(s, types)?;
    if let Some(dir) = &s.state {
        spec.state = Some(std::sync::Arc::new(state_sets(l, dir)?));
    }
    let sel = crate::graph::select::select_detailed(&l.project, &l.dag, &spec, &l.fs)?;
    if let Some(name) = &sel.default_selector {
        printer.info(format!("Using default selector {name}"));
    }
    for w in &sel.warnings {
        printer.warn(w);
    }
    Ok(sel.selected)
}

/// How the project compares with the manifest in `--state DIR`.
fn state_sets(l: &Loaded, dir: &std::path::Path) -> anyhow::Result<crate::graph::state::StateSets> {
    let file = dir.join("manifest.json");
    let old = std::fs::read_to_string(&file).map_err(|e| {
        anyhow::anyhow!(
            "--state: could not read {}: {e}\n  hint: point --state at a folder holding the manifest.json of an earlier run (e.g. a copy of its target/)",
            file.display()
        )
    })?;
    let mut current = vec![];
    crate::compile::manifest::write_manifest(&mut current, &l.project, &l.dag, None, &l.invocation_id, "")?;
    let mut sets = crate::compile::state::compare(&old, &String::from_utf8_lossy(&current)).map_err(|e| anyhow::anyhow!("--state: {}: {e}", file.display()))?;
    sets.fresher = source_freshness(dir, &l.project.settings.target_dir());
    let rr = dir.join("run_results.json");
    if let Ok(text) = std::fs::read_to_string(&rr) {
        sets.results = crate::compile::state::results(&text).map_err(|e| anyhow::anyhow!("--state: {}: {e}", rr.display()))?;
    }
    Ok(sets)
}

/// `source_status:fresher`: the state's sources.json against target/sources.json.
fn source_freshness(dir: &std::path::Path, target: &std::path::Path) -> Result<std::collections::HashSet<String>, String> {
    let read = |p: PathBuf, which: &str, hint: &str| {
        std::fs::read_to_string(&p).map_err(|e| format!("No {which} state comparison freshness results in sources.json ({}: {e})\n  hint: {hint}", p.display()))
    };
    let previous = read(dir.join("sources.json"), "previous", "keep the target/sources.json of an earlier `dp source freshness` in the --state folder")?;
    let current = read(target.join("sources.json"), "current", "run `dp source freshness` first")?;
    crate::compile::state::fresher(&previous, &current)
}

/// The render cache of a compile (none under `--no-partial-parse`).
pub fn render_cache(l: &Loaded, g: &GlobalArgs) -> Option<Arc<crate::compile::cache::RenderCache>> {
    if g.no_partial_parse {
        return None;
    }
    let env = |k: &str| std::env::var(k).ok();
    let prefetch = l.render_prefetch.lock().ok().and_then(|mut p| p.take());
    Some(Arc::new(crate::compile::cache::RenderCache::open(&l.project, l.parse_key, &l.generation, &env, &l.recorder.inputs().env, prefetch)))
}

/// Saves the render cache after a compile (a failure only costs speed).
pub fn save_render_cache(l: &Loaded, cache: Option<&Arc<crate::compile::cache::RenderCache>>) {
    if let Some(c) = cache {
        tracing::debug!("render cache: {} nodes reused", c.hits());
        if let Err(e) = c.save(&l.recorder.inputs().env) {
            tracing::debug!("render cache: could not write {}: {e}", c.path().display());
        }
    }
}

/// Writes target/manifest.json (and returns its path); the entries of
/// nodes unchanged since the previous one are copied from it
/// (`crate::compile::manifest_reuse`).
pub fn write_manifest(l: &Loaded, compiled: Option<&crate::compile::Compiled>) -> anyhow::Result<PathBuf> {
    let generated_at = l.started.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let (path, _) = crate::compile::manifest_reuse::write(&l.project, &l.dag, compiled, &l.generation, &l.invocation_id, &generated_at)
        .with_context(|| format!("writing {}", l.project.settings.target_dir().join("manifest.json").display()))?;
    Ok(path)
}

/// [`save_render_cache`], then [`write_compiled`] and [`write_manifest`]
/// at once, on two threads (the one mostly system calls, the other mostly
/// copying); the files' error first. The render cache is saved first, so
/// that its full write (every few edits, or after a full parse) never adds
/// its buffers to the manifest's at the peak.
pub fn write_compiled_and_manifest(
    l: &Loaded,
    compiled: &crate::compile::Compiled,
    cache: Option<&Arc<crate::compile::cache::RenderCache>>,
) -> anyhow::Result<()> {
    save_render_cache(l, cache);
    let (files, manifest) = crate::util::beside(|| write_compiled(l, compiled), || write_manifest(l, Some(compiled)));
    files?;
    manifest.map(drop)
}

/// Writes each compiled node to target/compiled/<pkg>/<path>; a file that
/// already holds the same SQL is left alone, unopened when its record says
/// so (`crate::compile::files`).
pub fn write_compiled(l: &Loaded, compiled: &crate::compile::Compiled) -> anyhow::Result<()> {
    use rayon::prelude::*;
    let files: Vec<(String, &str)> =
        compiled.sql.par_iter().filter_map(|(uid, sql)| Some((crate::compile::compiled_path(l.project.nodes.get(uid)?), sql.as_str()))).collect();
    crate::compile::files::write(&l.project.settings.target_dir(), &files).map_err(|(path, e)| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    Ok(())
}
