//! Loading a project, in named stages, each in its own module and each
//! reading only through the [`FileSystem`] seam:
//!
//! 1. [`packages`]: installed packages under `dbt_packages/`;
//! 2. [`macros`]: macros and generic tests of the project and packages;
//! 3. [`env`]: the Jinja environment;
//! 4. [`files`]: models, seeds, snapshots, analyses, singular tests, docs blocks;
//! 5. [`patches`]: YAML properties (patches, sources, declared tests, ...);
//! 6. [`configs`]: configs merged and rendered (discovering refs/sources);
//! 7. [`generic`]: generic data tests from YAML;
//! 8. [`unit`]: unit tests and exposures;
//! 9. [`finish`]: disabled nodes set aside, then (after [`validate`] has
//!    checked the enabled nodes' configs) relation names.
//!
//! A folder that exists but cannot be listed is an error naming it, never
//! "nothing to do".
//!
//! [`FileSystem`]: crate::fs::FileSystem

mod configs;
mod env;
mod files;
mod finish;
mod generic;
mod macros;
mod packages;
mod patches;
mod unit;
pub mod validate;
mod versions;

#[cfg(test)]
mod tests;

use indexmap::IndexMap;
use serde_json::Value;
use std::sync::Arc;

use super::nodes::{DocBlock, Macro, Node, NodeMap};
use crate::config::Settings;
use crate::fs::FileSystem;
use crate::jinja::{JinjaEnv, RenderError};

pub use configs::UNRENDERED_CONFIG;
pub use env::model_value;
pub use generic::{ENTRY_CONFIG_LEN, EXPLICIT_CONFIG};

/// An error that stops loading; each names the file (and line) at fault.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("{file}: could not read: {message}")]
    Io { file: String, message: String },
    #[error("{dir}/: could not list the folder: {message}\n  hint: check that it is readable, or remove it from the project's paths")]
    Folder { dir: String, message: String },
    #[error(
        "{file}: invalid YAML: {message}\n  hint: check the indentation and quoting around that line (quote values that contain ': ' or start with '{{', '*' or '&')"
    )]
    Yaml { file: String, message: String },
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error("{file}:{line}: {message}")]
    Located { file: String, line: usize, message: String },
    #[error("dbt found two {kind}s with the name '{name}':\n  - {first}\n  - {second}\n  hint: rename one of them, or disable one with `enabled: false`")]
    Duplicate { kind: String, name: String, first: String, second: String },
    #[error(
        "dbt found two resources with the database representation {relation}.\ndbt cannot create two resources with identical database representations. To fix this,\nchange the configuration of one of these resources:\n- {first}\n- {second}\n  hint: give one of them another alias (config(alias='...')) or schema"
    )]
    SameRelation { relation: String, first: String, second: String },
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n\n"))]
    Many(Vec<LoadError>),
}

/// Looks up an environment variable (`env_var()`).
pub type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Invocation facts the Jinja context exposes.
pub struct LoadOptions {
    pub env: EnvLookup,
    pub invocation_id: String,
    pub run_started_at: chrono::DateTime<chrono::Utc>,
    pub full_refresh: bool,
    pub which: String,
    pub store_failures: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            env: Arc::new(|k| std::env::var(k).ok()),
            invocation_id: uuid::Uuid::new_v4().to_string(),
            run_started_at: chrono::Utc::now(),
            full_refresh: false,
            which: "parse".into(),
            store_failures: false,
        }
    }
}

/// A loaded project.
pub struct Project {
    pub settings: Settings,
    pub nodes: NodeMap,
    pub disabled: NodeMap,
    pub macros: IndexMap<String, Macro>,
    pub docs: IndexMap<String, DocBlock>,
    /// groups, metrics, semantic_models, saved_queries: kept for the manifest.
    pub other: IndexMap<&'static str, IndexMap<String, Value>>,
    pub jinja: Arc<JinjaEnv>,
    pub warnings: Vec<String>,
}

/// Files under `dir` with one of `exts`; a missing folder has none, an
/// unreadable one is an error.
fn list(fs: &dyn FileSystem, dir: &str, exts: &[&str]) -> Result<Vec<String>, LoadError> {
    fs.list_files(dir, exts).map_err(|e| LoadError::Folder { dir: dir.trim_end_matches('/').to_string(), message: e.to_string() })
}

fn read(fs: &dyn FileSystem, file: &str) -> Result<String, LoadError> {
    fs.read_to_string(file).map_err(|e| LoadError::Io { file: file.into(), message: e.to_string() })
}

fn join(dir: &str, rel: &str) -> String {
    if dir.is_empty() || dir == "." { rel.to_string() } else { format!("{}/{}", dir.trim_end_matches('/'), rel) }
}

/// `models/staging/stg_x.sql` under `models` → (`staging/stg_x.sql`, [`staging`], `stg_x`).
fn split_path(base: &str, file: &str) -> (String, Vec<String>, String) {
    let rel = file.strip_prefix(&format!("{}/", base.trim_end_matches('/'))).unwrap_or(file).to_string();
    let mut parts: Vec<String> = rel.split('/').map(String::from).collect();
    let fname = parts.pop().unwrap_or_default();
    let stem = fname.rsplit_once('.').map(|(s, _)| s.to_string()).unwrap_or(fname);
    (rel, parts, stem)
}

/// Loads the project: the stages above, in order.
pub fn load_project(settings: Settings, fs: &dyn FileSystem, opts: &LoadOptions) -> Result<Project, LoadError> {
    // Phase timings: `DP_LOG=dp::project::load=debug`.
    let mut clock = Phases::start();
    let mut warnings = vec![];
    let packages = packages::discover(&settings, fs)?;
    packages::check_versions(&settings, &packages, fs, &opts.env)?;
    clock.lap("packages");
    let mut macros = macros::load(&settings, fs, &packages, &mut warnings)?;
    clock.lap("macros");
    let jinja = env::build(&settings, &packages, std::mem::take(&mut macros.sources), opts)?;
    clock.lap("jinja environment");
    let mut set = files::load(&settings, &packages, fs, &macros.test_files_with_blocks, &mut warnings)?;
    let docs = files::docs(&settings, &packages, fs)?;
    jinja.set_docs(docs.values().map(|d| (format!("{}.{}", d.package_name, d.name), d.block_contents.clone())).collect());
    clock.lap("files");
    let declared = patches::apply(&settings, &packages, fs, &jinja, &mut set, &mut macros.macros, &mut warnings)?;
    clock.lap("yaml properties");
    let mut nodes = set.nodes;
    configs::render(&settings, &packages, &jinja, &mut nodes)?;
    clock.lap("configs");
    generic::add(declared.tests, &settings, &packages, &jinja, &mut nodes)?;
    clock.lap("generic tests");
    unit::add(&settings.project_name, declared.unit_tests, declared.exposures, &jinja, &mut nodes)?;
    unit::add_saved_queries(declared.other.get("saved_queries"), &mut nodes)?;
    let mut disabled = finish::split_disabled(&mut nodes);
    validate::configs(&nodes, fs)?;
    clock.lap("unit tests, validation");
    finish::name_relations(&jinja, &macros.macros, !settings.dispatch.is_empty(), &mut nodes)?;
    finish::unique_relations(&settings, &nodes)?;
    // dbt names disabled nodes too (the manifest's `disabled` lists them so)
    finish::name_relations(&jinja, &macros.macros, !settings.dispatch.is_empty(), &mut disabled)?;
    clock.lap("relation names");
    Ok(Project { settings, nodes, disabled, macros: macros.macros, docs, other: declared.other, jinja, warnings })
}

/// What [`restore`] takes back from the partial-parse cache
/// (`crate::project::cache`): the loaded nodes, macros (patched) and docs.
pub struct Restored {
    pub nodes: NodeMap,
    pub disabled: NodeMap,
    pub macros: IndexMap<String, Macro>,
    pub docs: IndexMap<String, DocBlock>,
    pub other: IndexMap<&'static str, IndexMap<String, Value>>,
    pub warnings: Vec<String>,
}

/// A project from cached parts: only the Jinja environment is built again
/// (packages, macros), the files are not parsed.
pub fn restore(settings: Settings, fs: &dyn FileSystem, opts: &LoadOptions, parts: Restored) -> Result<Project, LoadError> {
    let mut scratch = vec![];
    let packages = packages::discover(&settings, fs)?;
    let macros = macros::load(&settings, fs, &packages, &mut scratch)?;
    let jinja = env::build(&settings, &packages, macros.sources, opts)?;
    jinja.set_docs(parts.docs.values().map(|d| (format!("{}.{}", d.package_name, d.name), d.block_contents.clone())).collect());
    let Restored { nodes, disabled, macros, docs, other, warnings } = parts;
    Ok(Project { settings, nodes, disabled, macros, docs, other, jinja, warnings })
}

/// The parse-pass render of `raw` as node `n`'s code: the refs, sources
/// and `config()` calls it makes (for the partial-parse cache, which
/// re-parses an edited model alone).
pub fn parse_render(settings: &Settings, jinja: &JinjaEnv, n: &Node, raw: &str) -> Result<crate::jinja::Captured, LoadError> {
    let mut rctx = crate::jinja::RenderCtx::new(&n.unique_id, &n.package_name, crate::jinja::Phase::Parse);
    rctx.config = n.config.clone();
    rctx.this = env::this_value(n, settings);
    rctx.model = model_value(n);
    let rctx = Arc::new(rctx);
    if raw.contains('{') {
        jinja.render_node(&n.original_file_path, raw, rctx.clone())?;
    }
    Ok(rctx.take_captured())
}

/// Debug-log timings of named phases (`DP_LOG=dp::project::load=debug`).
pub struct Phases {
    start: std::time::Instant,
    last: std::time::Instant,
}

impl Phases {
    pub fn start() -> Self {
        let now = std::time::Instant::now();
        Phases { start: now, last: now }
    }

    /// Logs the time since the previous lap under `phase`.
    pub fn lap(&mut self, phase: &str) {
        let now = std::time::Instant::now();
        tracing::debug!(phase, ms = (now - self.last).as_secs_f64() * 1e3, total_ms = (now - self.start).as_secs_f64() * 1e3, "phase");
        self.last = now;
    }
}
