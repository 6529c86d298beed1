//! Compilation: renders every selected node with `execute = true`, resolving
//! `ref()`/`source()` to DataFusion relation names, inlining ephemeral models
//! as `__dbt__cte__<name>` CTEs exactly where dbt puts them, and rendering
//! generic tests from their macros. I/O-free: which relations already exist
//! (for `is_incremental()`) is passed in.

pub mod cache;
pub mod ctes;
mod fields;
pub mod files;
pub mod macro_deps;
pub mod manifest;
pub mod manifest_reuse;
pub mod metrics;
pub mod microbatch;
pub mod state;
pub mod unit;

use indexmap::{IndexMap, IndexSet};
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::util::{FastIndexMap, FastIndexSet, FastMap, FastSet};

use crate::jinja::{Phase, Relation, RenderCtx, RenderError, Resolver};
use crate::project::load::{Project, model_value};
use crate::project::nodes::{Materialization, Node, RefCall, ResourceType};
use crate::project::refs::RefIndex;

/// The compiled SQL of each node, by unique id. Hooks are not compiled
/// here: they render when they run ([`Compiled::hooks`]), as dbt's
/// materializations render them, so a hook's `statement` sees the table
/// its model just built.
#[derive(Default, Clone)]
pub struct Compiled {
    pub sql: FastIndexMap<String, String>,
    /// Ephemeral models each node inlines (in CTE order).
    pub ephemerals: FastIndexMap<String, Vec<String>>,
    /// Each inlined ephemeral model's CTE as injected
    /// (` __dbt__cte__x as (\n...\n)`): the manifest's `extra_ctes`.
    pub cte_sql: FastMap<String, String>,
    /// Whether `is_incremental()` was true for the node.
    pub incremental: FastSet<String>,
    /// Nodes whose rendering asked the warehouse something (directly or
    /// through an inlined ephemeral): compiled again just before they run.
    pub queried: FastSet<String>,
    /// What generic tests' macros set with `config()` (`fail_calc`, ...).
    pub test_configs: IndexMap<String, serde_json::Map<String, serde_json::Value>>,
    /// Nodes that failed to compile, with the error (as dbt, a compile
    /// error fails that node and what inlines it, not the whole command).
    pub errors: IndexMap<String, String>,
    opts: CompileOptions,
    resolver: Option<Arc<ProjectResolver>>,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiled").field("sql", &self.sql).field("errors", &self.errors).field("queried", &self.queried).finish_non_exhaustive()
    }
}

/// A node's pre- or post-hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    Pre,
    Post,
}

impl Hook {
    fn key(self) -> &'static str {
        match self {
            Hook::Pre => "pre-hook",
            Hook::Post => "post-hook",
        }
    }
}

impl Compiled {
    /// Whether `uid` must be compiled again when it runs: its SQL depends on
    /// the warehouse's state, or it failed (maybe on a relation that was not
    /// built yet).
    pub fn needs_recompile(&self, uid: &str) -> bool {
        self.queried.contains(uid) || self.errors.contains_key(uid)
    }

    /// Compiles `uid` again now, as dbt compiles a node just before running
    /// it: its SQL (ephemerals inlined) and whether it ran incrementally.
    pub fn recompile(&self, project: &Project, uid: &str) -> Result<(String, bool), String> {
        let ids: IndexSet<String> = [uid.to_string()].into_iter().collect();
        let c = compile_with(project, &ids, &self.opts, self.resolver.clone().unwrap_or_else(|| resolver(project, &self.opts)), None);
        if let Some(e) = c.errors.get(uid) {
            return Err(e.clone());
        }
        let sql = c.sql.get(uid).cloned().ok_or_else(|| format!("{uid} was not compiled"))?;
        Ok((sql, c.incremental.contains(uid)))
    }

    /// A node's config with what its generic test macro set by `config()`
    /// (`dbt_utils.equal_rowcount`'s `fail_calc`), beneath the keys its
    /// project file or YAML set.
    pub fn config_of(&self, n: &Node) -> crate::project::nodes::SharedMap {
        with_macro_config(n, self.test_configs.get(&n.unique_id))
    }

    /// Renders a node's pre- or post-hooks now, just before they run.
    pub fn hooks(&self, project: &Project, n: &Node, which: Hook, incremental: bool) -> Result<Vec<String>, CompileError> {
        let resolver = self.resolver.clone().unwrap_or_else(|| resolver(project, &self.opts));
        render_hooks(project, n, resolver, which, incremental)
    }

    /// Every compile error, one paragraph each (for commands that stop on them).
    pub fn error_report(&self) -> Option<String> {
        (!self.errors.is_empty()).then(|| self.errors.values().cloned().collect::<Vec<_>>().join("\n\n"))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error(transparent)]
    Render(#[from] RenderError),
}

/// What compilation needs from outside: existing relations and flags.
#[derive(Debug, Default, Clone)]
pub struct CompileOptions {
    /// unique ids whose relation exists in the warehouse as a table
    /// ([`crate::engine::existing_tables`]): `is_incremental()`.
    pub existing: HashSet<String>,
    pub full_refresh: bool,
    /// `--defer`: the relations these unique ids' `ref()`s resolve to
    /// instead of their own ([`crate::graph::defer`]).
    pub deferred: HashMap<String, Relation>,
    /// Renderings of an earlier compile (`target/render_cache.bin`).
    pub cache: Option<Arc<cache::RenderCache>>,
    /// `--empty`: every `ref()` and `source()` reads no rows (dbt's
    /// `(select * from x where false limit 0)`); the render cache is not used.
    pub empty: bool,
    /// `--sample`: a model's or snapshot's `ref()`s and `source()`s of nodes
    /// with an `event_time` read only the rows inside this window, as dbt's
    /// sample mode (tests are not sampled); the render cache is not used.
    pub sample: Option<crate::project::microbatch::Batch>,
}

#[derive(Clone)]
struct ProjectResolver {
    refable: RefIndex,
    relations: FastMap<String, (Relation, bool)>,
    /// Nodes materialized as ephemeral (of any kind): those rendered with
    /// whoever inlines them. Found once here, not on each (re)compile.
    ephemeral: FastSet<String>,
    sources: HashMap<(String, String), Relation>,
    /// `event_time` configs of inputs (microbatch filters), by unique id
    /// and by (source, table).
    event_times: HashMap<String, String>,
    source_event_times: HashMap<(String, String), String>,
    /// `--empty`: the limit every resolved relation carries (`Some(0)`).
    limit: Option<u64>,
    /// `--sample`'s window (models and snapshots only: see [`compile_with`]).
    sample: Option<crate::project::microbatch::Batch>,
}

impl Resolver for ProjectResolver {
    fn resolve_ref(&self, package: &str, call: &RefCall) -> Result<Relation, String> {
        let (rel, event_time) = self.input_ref(package, call)?;
        Ok(self.sampled(rel, event_time))
    }

    fn resolve_source(&self, _from: &str, source: &str, table: &str) -> Result<Relation, String> {
        let (rel, event_time) = self.input_source(source, table)?;
        Ok(self.sampled(rel, event_time))
    }
}

impl ProjectResolver {
    /// The relation `call` names (limited under `--empty`, not sampled) and
    /// the `event_time` of its node.
    fn input_ref(&self, package: &str, call: &RefCall) -> Result<(Relation, Option<&String>), String> {
        let uid = self.pick(package, call).ok_or_else(|| format!("ref('{}') was not found", call.name))?;
        let (rel, ephemeral) = &self.relations[uid];
        let rel = if *ephemeral { Relation::cte(&format!("__dbt__cte__{}", rel.identifier)) } else { rel.clone() };
        Ok((Relation { limit: self.limit, ..rel }, self.event_times.get(uid)))
    }

    /// [`Self::input_ref`] for a source table.
    fn input_source(&self, source: &str, table: &str) -> Result<(Relation, Option<&String>), String> {
        let key = (source.to_string(), table.to_string());
        let rel = self.sources.get(&key).cloned().ok_or_else(|| format!("source('{source}', '{table}') was not found"))?;
        Ok((Relation { limit: self.limit, ..rel }, self.source_event_times.get(&key)))
    }

    /// `rel` filtered to the `--sample` window when it has an `event_time`.
    fn sampled(&self, rel: Relation, event_time: Option<&String>) -> Relation {
        match (&self.sample, event_time) {
            (Some(w), Some(field)) => microbatch::windowed(rel, w, field),
            _ => rel,
        }
    }
}

impl ProjectResolver {
    /// The unique id `call` names when made from a node of `package`.
    fn pick(&self, package: &str, call: &RefCall) -> Option<&String> {
        self.refable.resolve(package, call).ok().map(|t| &t.uid)
    }
}

fn resolver(project: &Project, opts: &CompileOptions) -> Arc<ProjectResolver> {
    prepare(project).with_deferred(opts)
}

/// What `ref()` and `source()` resolve to, before `--defer` (which needs
/// the selection): built beside the selection ([`compile_prepared`]).
pub struct Prepared(ProjectResolver);

impl Prepared {
    fn with_deferred(self, opts: &CompileOptions) -> Arc<ProjectResolver> {
        let mut r = self.0;
        for (uid, rel) in &opts.deferred {
            r.relations.insert(uid.clone(), (rel.clone(), false));
        }
        r.limit = opts.empty.then_some(0);
        r.sample = opts.sample;
        Arc::new(r)
    }
}

/// [`Prepared`] for `project`.
pub fn prepare(project: &Project) -> Prepared {
    let refable = RefIndex::new(&project.settings.project_name, project.nodes.values());
    let mut relations = FastMap::default();
    let mut ephemeral = FastSet::default();
    let mut sources = HashMap::new();
    for (uid, n) in &project.nodes {
        // (a data test is never inlined: no config lookup for 30,000 tests)
        let eph = n.resource_type != ResourceType::Test && n.materialized() == Materialization::Ephemeral;
        if eph {
            ephemeral.insert(uid.clone());
        }
        match n.resource_type {
            ResourceType::Model | ResourceType::Seed | ResourceType::Snapshot => {
                relations.insert(uid.clone(), (n.jinja_relation(&project.settings), eph));
            }
            ResourceType::Source => {
                let s = n.source.as_ref().unwrap();
                sources.insert((s.source_name.clone(), n.name.clone()), n.jinja_relation(&project.settings));
            }
            _ => {}
        }
    }
    let (event_times, source_event_times) = microbatch::event_times(project);
    Prepared(ProjectResolver { refable, relations, ephemeral, sources, event_times, source_event_times, limit: None, sample: None })
}

/// Compiles `ids` (and the ephemeral models they inline).
pub fn compile(project: &Project, ids: &IndexSet<String>, opts: &CompileOptions) -> Result<Compiled, CompileError> {
    compile_prepared(project, ids, opts, prepare(project))
}

/// [`compile`] with the resolver [`prepare`]d already.
pub fn compile_prepared(project: &Project, ids: &IndexSet<String>, opts: &CompileOptions, prepared: Prepared) -> Result<Compiled, CompileError> {
    set_graph(project);
    Ok(compile_with(project, ids, opts, prepared.with_deferred(opts), None))
}

/// Compiles `ids` with `resolver`; `batch` is the batch a microbatch model
/// among them renders for ([`Compiled::compile_batch`]).
fn compile_with(
    project: &Project,
    ids: &IndexSet<String>,
    opts: &CompileOptions,
    resolver: Arc<ProjectResolver>,
    batch: Option<&microbatch::BatchCtx>,
) -> Compiled {
    // Ephemeral models are needed by whoever inlines them (looked for
    // only in a project that has some: 40,000 nodes' parents otherwise).
    let mut todo: FastIndexSet<String> = ids.iter().cloned().collect();
    let ephemeral = &resolver.ephemeral;
    let mut stack: Vec<&str> = if ephemeral.is_empty() { vec![] } else { ids.iter().map(String::as_str).collect() };
    while let Some(u) = stack.pop() {
        if let Some(n) = project.nodes.get(u) {
            for d in &n.depends_on {
                if ephemeral.contains(d) && todo.insert(d.clone()) {
                    stack.push(d.as_str());
                }
            }
        }
    }
    let renderable: Vec<(&String, &Node)> = todo
        .iter()
        .filter_map(|u| project.nodes.get(u).map(|n| (u, n)))
        .filter(|(_, n)| matches!(n.resource_type, ResourceType::Model | ResourceType::Test | ResourceType::Snapshot | ResourceType::Analysis))
        .collect();
    let plain = resolver.sample.is_some().then(|| Arc::new(ProjectResolver { sample: None, ..(*resolver).clone() }));
    type Rendered = (String, String, Vec<String>, bool, bool, serde_json::Map<String, serde_json::Value>);
    let results: Vec<Result<Rendered, (String, CompileError)>> = renderable
        .par_iter()
        .map(|&(uid, n)| {
            let batch = batch.filter(|b| b.uid == *uid);
            let incremental = match batch {
                Some(b) => b.incremental,
                None => n.materialized() == Materialization::Incremental && !opts.full_refresh && opts.existing.contains(uid),
            };
            // the render cache holds whole-model compiles: not a microbatch batch, not under --defer
            let cache = opts.cache.as_ref().filter(|_| batch.is_none() && opts.deferred.is_empty() && !opts.empty && opts.sample.is_none());
            if let Some(e) = cache.and_then(|c| c.reuse(uid, incremental)) {
                return Ok((uid.clone(), e.sql, vec![], incremental, false, e.config));
            }
            let key = cache.and_then(|c| c.key(n, &cache_deps(project, n)?, incremental));
            if let (Some(c), Some(k)) = (cache, key)
                && let Some(e) = c.get(uid, k, incremental)
            {
                return Ok((uid.clone(), e.sql, vec![], incremental, false, e.config));
            }
            // dbt samples the inputs of models and snapshots, not of tests
            let resolver = match &plain {
                Some(p) if !matches!(n.resource_type, ResourceType::Model | ResourceType::Snapshot) => p.clone(),
                _ => resolver.clone(),
            };
            match render_one(project, n, resolver, incremental, batch) {
                Ok((sql, ephemerals, queried, cfg)) => {
                    if let (Some(c), Some(k)) = (cache, key)
                        && ephemerals.is_empty()
                        && !queried
                    {
                        c.put(uid, cache::Entry { key: k, sql: sql.clone(), config: cfg.clone(), generation: 0, global: 0, incremental }, incremental);
                    }
                    Ok((uid.clone(), sql, ephemerals, incremental, queried, cfg))
                }
                Err(e) => Err((uid.clone(), e)),
            }
        })
        .collect();
    let mut pre: FastIndexMap<String, (String, Vec<String>)> = FastIndexMap::default();
    let mut out = Compiled { opts: opts.clone(), resolver: Some(resolver), ..Compiled::default() };
    for (r, (_, n)) in results.into_iter().zip(&renderable) {
        match r {
            Ok((uid, sql, eph, inc, queried, cfg)) => {
                if !cfg.is_empty() && n.test_metadata.is_some() {
                    out.test_configs.insert(uid.clone(), cfg);
                }
                if queried {
                    out.queried.insert(uid.clone());
                }
                if inc {
                    out.incremental.insert(uid.clone());
                }
                pre.insert(uid, (sql, eph));
            }
            Err((uid, e)) => {
                out.errors.insert(uid, e.to_string());
            }
        }
    }
    // A node inlining an ephemeral model that failed fails too.
    for (uid, _) in pre.iter().filter(|(_, (_, ephs))| !ephs.is_empty()) {
        if let Some(bad) = failed_ephemeral(&pre, &out.errors, uid, &mut HashSet::new()) {
            let n = &project.nodes[&bad];
            let message = format!("ephemeral model {} ({}) failed to compile: {}", n.name, n.original_file_path, out.errors[&bad]);
            out.errors.insert(uid.clone(), message);
        }
    }
    if !out.errors.is_empty() {
        pre.retain(|uid, _| !out.errors.contains_key(uid));
    }
    // Inject ephemeral CTEs (recursively, as dbt's _recursively_prepend_ctes).
    let mut injected: FastMap<String, (String, Vec<String>)> = FastMap::default();
    for (uid, (sql, ephs)) in &pre {
        if ephs.is_empty() {
            continue;
        }
        let mut ctes: IndexMap<String, String> = IndexMap::new();
        collect_ctes(project, &pre, uid, &mut ctes);
        let text = ctes::inject_ctes(sql, &ctes.values().cloned().collect::<Vec<_>>());
        if ctes.keys().any(|e| out.queried.contains(e)) {
            out.queried.insert(uid.clone());
        }
        for (e, text) in &ctes {
            out.cte_sql.entry(e.clone()).or_insert_with(|| text.clone());
        }
        injected.insert(uid.clone(), (text, ctes.keys().cloned().collect()));
    }
    // In the caller's order, which `pre` is in (the SQL of 40,000 nodes
    // moved, not copied).
    out.sql.reserve(pre.len());
    out.ephemerals.reserve(pre.len());
    for (u, (sql, _)) in pre {
        let (sql, ephs) = if injected.is_empty() { (sql, vec![]) } else { injected.remove(&u).unwrap_or((sql, vec![])) };
        out.ephemerals.insert(u.clone(), ephs);
        out.sql.insert(u, sql);
    }
    out
}

/// `n`'s config with `from_macro` (what its generic test macro set by
/// `config()`) beneath the keys its project file or YAML set
/// (`EXPLICIT_CONFIG`): the config a test runs with, and the manifest's.
pub(crate) fn with_macro_config(n: &Node, from_macro: Option<&serde_json::Map<String, serde_json::Value>>) -> crate::project::nodes::SharedMap {
    let mut cfg = n.config.clone();
    if let Some(from_macro) = from_macro {
        let explicit = n.extra.get(crate::project::load::EXPLICIT_CONFIG).and_then(|v| v.as_array());
        for (k, v) in from_macro {
            if !explicit.is_some_and(|e| e.iter().any(|x| x.as_str() == Some(k))) {
                cfg.insert(k.clone(), v.clone());
            }
        }
    }
    cfg
}

/// The relations `n`'s dependencies resolve to, for its render-cache key;
/// `None` (not cacheable) when it depends on an ephemeral model.
fn cache_deps(project: &Project, n: &Node) -> Option<Vec<String>> {
    let mut out = vec![];
    for d in &n.depends_on {
        let Some(p) = project.nodes.get(d) else {
            out.push(format!("{d}=?"));
            continue;
        };
        if p.materialized() == Materialization::Ephemeral && p.resource_type == ResourceType::Model {
            return None;
        }
        let ident = p.source.as_ref().map(|s| s.identifier.as_str()).unwrap_or("");
        out.push(format!("{d}={}.{}.{}/{ident}", p.database, p.schema, p.alias));
    }
    Some(out)
}

/// The first ephemeral model `uid` inlines (directly or not) that failed.
fn failed_ephemeral(
    pre: &FastIndexMap<String, (String, Vec<String>)>,
    errors: &IndexMap<String, String>,
    uid: &str,
    seen: &mut HashSet<String>,
) -> Option<String> {
    let (_, ephs) = pre.get(uid)?;
    for e in ephs {
        if errors.contains_key(e) {
            return Some(e.clone());
        }
        if seen.insert(e.clone())
            && let Some(bad) = failed_ephemeral(pre, errors, e, seen)
        {
            return Some(bad);
        }
    }
    None
}

/// Fills Jinja's `graph` once, when some macro or node reads it.
pub fn set_graph(project: &Project) {
    if project.jinja.has_graph() {
        return;
    }
    let uses = |text: &str| text.contains("graph.") || text.contains("graph[");
    if project.macros.values().any(|m| uses(&m.macro_sql)) || project.nodes.values().any(|n| uses(&n.raw_code)) {
        project.jinja.set_graph(manifest::flat_graph(project));
    }
}

fn collect_ctes(project: &Project, pre: &FastIndexMap<String, (String, Vec<String>)>, uid: &str, out: &mut IndexMap<String, String>) {
    let Some((_, ephs)) = pre.get(uid) else { return };
    for e in ephs {
        if out.contains_key(e) {
            continue;
        }
        // The ephemeral's own prepended CTEs come first.
        collect_ctes(project, pre, e, out);
        let (Some(n), Some((sql, _))) = (project.nodes.get(e), pre.get(e)) else { continue };
        out.insert(e.clone(), format!(" __dbt__cte__{} as (\n{}\n)", n.alias, sql));
    }
}

fn render_ctx(project: &Project, n: &Node, resolver: Arc<ProjectResolver>, incremental: bool, batch: Option<&microbatch::BatchCtx>) -> Arc<RenderCtx> {
    let mut rctx = RenderCtx::new(&n.unique_id, &n.package_name, Phase::Compile);
    rctx.resolver = Some(resolver.clone());
    rctx.is_incremental = incremental;
    rctx.config = n.config.clone();
    rctx.this = minijinja::Value::from_object(n.jinja_relation(&project.settings));
    rctx.model = model_value(n);
    if let Some(b) = batch {
        microbatch::scope(&mut rctx, resolver, n, b);
    } else if crate::project::microbatch::is_microbatch(&n.config) {
        rctx.model = microbatch::model_with_batch(n, None);
    }
    Arc::new(rctx)
}

/// Renders a model's `pre-hook` or `post-hook` SQL.
fn render_hooks(project: &Project, n: &Node, resolver: Arc<ProjectResolver>, which: Hook, incremental: bool) -> Result<Vec<String>, CompileError> {
    let mut dst = vec![];
    {
        let key = which.key();
        let hooks: Vec<String> = match n.config.get(key) {
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .filter_map(|h| match h {
                    serde_json::Value::String(s) => Some(s.clone()),
                    serde_json::Value::Object(o) => o.get("sql").and_then(|v| v.as_str()).map(String::from),
                    _ => None,
                })
                .collect(),
            Some(serde_json::Value::String(s)) => vec![s.clone()],
            _ => vec![],
        };
        for h in hooks {
            let rctx = render_ctx(project, n, resolver.clone(), incremental, None);
            let sql = project.jinja.render_str(&format!("{} ({key})", n.original_file_path), &h, Some(rctx), &[])?;
            if !sql.trim().is_empty() {
                dst.push(sql);
            }
        }
    }
    Ok(dst)
}

/// A test argument with the Jinja in its strings rendered, as dbt renders
/// test arguments natively: one `{{ expr }}` keeps its value's type
/// (`values: "{{ var('types') }}"` is a list), in lists and dicts too
/// (`column_type_list: [date, "{{ type_timestamp() }}"]`).
fn render_nested(project: &Project, file: &str, v: &serde_json::Value, rctx: &Arc<RenderCtx>) -> Result<minijinja::Value, CompileError> {
    Ok(match v {
        serde_json::Value::String(s) if whole_expr(s).is_some() => {
            let v = project.jinja.eval_expr(file, whole_expr(s).unwrap(), Some(rctx.clone()))?;
            if v.kind() == minijinja::value::ValueKind::String { minijinja::Value::from_safe_string(v.to_string()) } else { v }
        }
        serde_json::Value::String(s) if s.contains("{{") || s.contains("{%") => {
            minijinja::Value::from_safe_string(project.jinja.render_str(file, s, Some(rctx.clone()), &[])?)
        }
        serde_json::Value::Array(a) => minijinja::Value::from(a.iter().map(|x| render_nested(project, file, x, rctx)).collect::<Result<Vec<_>, _>>()?),
        serde_json::Value::Object(o) => minijinja::Value::from_iter(
            o.iter().map(|(k, x)| Ok((k.clone(), render_nested(project, file, x, rctx)?))).collect::<Result<Vec<_>, CompileError>>()?,
        ),
        other => minijinja::Value::from_serialize(other),
    })
}

/// `expr` when `s` is exactly one `{{ expr }}` and nothing else.
fn whole_expr(s: &str) -> Option<&str> {
    let inner = s.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    (!inner.contains("{{") && !inner.contains("}}") && !inner.contains("{%")).then(|| inner.trim())
}

/// A node's SQL, the ephemeral models it inlines, whether rendering it
/// asked the warehouse anything, and what it set with `config()`.
type RenderedNode = (String, Vec<String>, bool, serde_json::Map<String, serde_json::Value>);

fn render_one(
    project: &Project,
    n: &Node,
    resolver: Arc<ProjectResolver>,
    incremental: bool,
    batch: Option<&microbatch::BatchCtx>,
) -> Result<RenderedNode, CompileError> {
    let rctx = render_ctx(project, n, resolver.clone(), incremental, batch);
    let sql = render_code(project, n, &rctx)?;
    let captured = rctx.take_captured();
    let mut ephemerals = vec![];
    for r in &captured.refs {
        if let Some(uid) = resolver.pick(&n.package_name, r)
            && resolver.relations[uid].1
            && !ephemerals.contains(uid)
        {
            ephemerals.push(uid.clone());
        }
    }
    Ok((sql, ephemerals, captured.queried, captured.config))
}

/// What a generic test's macro sets with `config()` when dbt parses the
/// test (`execute` false: `dbt_utils.equality`'s `fail_calc`), for the
/// parse manifest; `None` when the render fails (dbt's parse would stop).
pub fn parse_test_config(project: &Project, n: &Node) -> Option<serde_json::Map<String, serde_json::Value>> {
    let mut rctx = RenderCtx::new(&n.unique_id, &n.package_name, Phase::Parse);
    rctx.config = n.config.clone();
    rctx.this = minijinja::Value::from_object(n.jinja_relation(&project.settings));
    rctx.model = model_value(n);
    let rctx = Arc::new(rctx);
    render_code(project, n, &rctx).ok()?;
    Some(rctx.take_captured().config)
}

/// Renders a node's code in `rctx`: a generic test's macro called with its
/// rendered kwargs, any other node's own Jinja.
fn render_code(project: &Project, n: &Node, rctx: &Arc<RenderCtx>) -> Result<String, CompileError> {
    Ok(match &n.test_metadata {
        Some(tm) => {
            // Generic test: call its macro with the rendered kwargs.
            let mut args: Vec<(String, minijinja::Value)> = vec![];
            for (k, v) in &tm.kwargs {
                let single_expr = |s: &str| -> Option<String> {
                    let t = s.trim();
                    let inner = t.strip_prefix("{{").and_then(|x| x.strip_suffix("}}")).map(str::trim).unwrap_or(t);
                    let is_rel = inner.starts_with("ref(") || inner.starts_with("source(");
                    let wrapped = inner.strip_prefix("get_where_subquery(").and_then(|x| x.strip_suffix(')')).map(str::trim);
                    let simple = |x: &str| (x.starts_with("ref(") || x.starts_with("source(")) && x.ends_with(')') && x.matches('(').count() == 1;
                    let ok = !inner.contains("{{") && ((is_rel && simple(inner)) || wrapped.is_some_and(simple));
                    ok.then(|| inner.to_string())
                };
                let val = match v {
                    // `ref('x')` / `{{ ref('x') }}` arguments are relations, as in dbt.
                    serde_json::Value::String(s) if single_expr(s).is_some() => {
                        project.jinja.eval_expr(&n.original_file_path, &single_expr(s).unwrap(), Some(rctx.clone()))?
                    }
                    serde_json::Value::String(s) if s.trim_start().starts_with("ref(") || s.trim_start().starts_with("source(") => {
                        minijinja::Value::from_safe_string(project.jinja.render_str(
                            &n.original_file_path,
                            &format!("{{{{ {s} }}}}"),
                            Some(rctx.clone()),
                            &[],
                        )?)
                    }
                    // Jinja renders natively, in lists and dicts too; those
                    // may be mutated by the test macro (`pruned_cols.append(...)`).
                    other => {
                        let v = render_nested(project, &n.original_file_path, other, rctx)?;
                        crate::jinja::objects::make_mutable(v.clone()).unwrap_or(v)
                    }
                };
                args.push((k.clone(), val));
            }
            let callee = match &tm.namespace {
                Some(ns) => format!("{ns}.test_{}", tm.name),
                None => format!("test_{}", tm.name),
            };
            let params: Vec<String> = args.iter().enumerate().map(|(i, (k, _))| format!("{k}=__a{i}")).collect();
            let src = format!("{{{{ {callee}({}) }}}}", params.join(", "));
            let extra: Vec<(String, minijinja::Value)> = args.into_iter().enumerate().map(|(i, (_, v))| (format!("__a{i}"), v)).collect();
            let extra_ref: Vec<(&str, minijinja::Value)> = extra.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
            project.jinja.render_str(n.patch_path.as_deref().unwrap_or(&n.original_file_path), &src, Some(rctx.clone()), &extra_ref)?
        }
        None => project.jinja.render_node(&n.original_file_path, &n.raw_code, rctx.clone())?,
    })
}

/// Compiles one ad-hoc node (e.g. `dp show --inline`), ephemerals inlined.
pub fn compile_one(project: &Project, n: &Node, opts: &CompileOptions) -> Result<String, CompileError> {
    let resolver = resolver(project, opts);
    let (sql, ephs, _, _) = render_one(project, n, resolver, false, None)?;
    if ephs.is_empty() {
        return Ok(sql);
    }
    let ids: IndexSet<String> = ephs.iter().cloned().collect();
    let c = compile(project, &ids, opts)?;
    let ctes: Vec<String> = ephs
        .iter()
        .flat_map(|e| {
            let mut v: Vec<String> = c.ephemerals.get(e).cloned().unwrap_or_default();
            v.push(e.clone());
            v
        })
        .filter_map(|e| c.sql.get(&e).map(|s| format!(" __dbt__cte__{} as (\n{}\n)", project.nodes[&e].alias, s)))
        .collect();
    Ok(ctes::inject_ctes(&sql, &ctes))
}

/// Where dbt writes a node's compiled SQL: `target/compiled/<pkg>/<path>`.
pub fn compiled_path(n: &Node) -> String {
    let base = if n.resource_type == ResourceType::UnitTest {
        // dbt's pseudo path: <yml>/<yml's folder>/<test>.sql
        let dir = n.original_file_path.rsplit_once('/').map(|(d, _)| format!("{d}/")).unwrap_or_default();
        format!("{}/{dir}{}.sql", n.original_file_path, n.name)
    } else if n.resource_type == ResourceType::Snapshot && (n.original_file_path.ends_with(".yml") || n.original_file_path.ends_with(".yaml")) {
        // YAML snapshots: <yml>/<name>.sql, as dbt
        format!("{}/{}.sql", n.original_file_path, n.name)
    } else if n.test_metadata.is_some() {
        // Generic tests live under their YAML file's path.
        format!("{}/{}", n.patch_path.as_deref().unwrap_or(&n.original_file_path), n.path)
    } else {
        n.original_file_path.clone()
    };
    format!("{}/{}", n.package_name, base)
}
