//! Project settings: `warehouse.toml` (dp's native file) and/or
//! `dbt_project.yml`, resolved for one target, with `DP_*` environment
//! overrides, into one [`Settings`].
//!
//! Precedence (lowest first): built-in defaults, `dbt_project.yml`,
//! `warehouse.toml`, environment (`DP_TARGET`, `DP_WAREHOUSE`, `DP_SCHEMA`,
//! `DP_THREADS`), command-line flags. Secrets (the Postgres password, S3
//! keys) are never read from files: only environment variables hold them.

mod storage;
mod tree;

pub use storage::{S3Config, expand_env};
pub use tree::{ConfigTree, merge_config, update_config};

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::Value as JsonValue;
use std::path::{Path, PathBuf};

use crate::fs::FileSystem;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("no warehouse.toml or dbt_project.yml in {dir}\n  hint: run dp inside a project directory, or pass --project-dir")]
    NoProject { dir: String },
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error("{file}: could not read: {source}")]
    Read { file: String, source: std::io::Error },
    #[error("target '{name}' is not defined in {file}\n  hint: defined targets are: {available}")]
    UnknownTarget { name: String, file: String, available: String },
    #[error("{what}: {message}")]
    Invalid { what: String, message: String },
}

/// Where each kind of project file lives, relative to the project root.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Paths {
    pub models: Vec<String>,
    pub seeds: Vec<String>,
    pub macros: Vec<String>,
    pub tests: Vec<String>,
    pub snapshots: Vec<String>,
    pub analyses: Vec<String>,
    pub checkpoints: Vec<String>,
    pub docs: Vec<String>,
    pub target: String,
    pub packages: String,
    /// What `dp clean` removes (dbt's `clean-targets`; default: the target folder).
    pub clean: Vec<String>,
}

impl Default for Paths {
    fn default() -> Self {
        let v = |s: &str| vec![s.to_string()];
        Paths {
            models: v("models"),
            seeds: v("seeds"),
            macros: v("macros"),
            tests: v("tests"),
            snapshots: v("snapshots"),
            analyses: v("analyses"),
            checkpoints: v("checkpoints"),
            docs: vec![],
            target: "target".into(),
            packages: "dbt_packages".into(),
            clean: v("target"),
        }
    }
}

/// PostgreSQL connection settings of a target (`[targets.<name>.postgres]`).
/// Unset fields fall back to libpq's `PGHOST`, `PGPORT`, `PGDATABASE`,
/// `PGUSER`, `PGSSLMODE`. The password is never stored here: it comes from
/// the environment variable named by `password_env`, else `PGPASSWORD`.
#[derive(Debug, Clone, Deserialize, serde::Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub dbname: Option<String>,
    pub user: Option<String>,
    pub password_env: Option<String>,
    /// disable, prefer (default), require, verify-ca, verify-full.
    pub sslmode: Option<String>,
    /// Attempts after the first one for transient errors (default 3).
    pub retries: Option<u32>,
    /// First back-off delay in milliseconds, doubled per attempt (default 500).
    pub retry_backoff_ms: Option<u64>,
    /// Seconds to wait for a connection (default 10).
    pub connect_timeout_s: Option<u64>,
}

/// One resolved target (`[targets.<name>]`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Target {
    pub name: String,
    /// Warehouse location: a path (relative to the project root) or URL.
    pub warehouse: String,
    pub schema: String,
    pub database: String,
    pub threads: usize,
    pub postgres: Option<PostgresConfig>,
    /// `[targets.<name>.s3]`: how to reach `s3://` locations.
    pub s3: Option<S3Config>,
    /// Where relative source locations (`meta.external_location`) resolve:
    /// a path or URL; `None` is the project root.
    pub source_root: Option<String>,
    /// Memory limit for query execution (`"4GB"` or bytes), read by the
    /// engine (`engine::memory`); `--memory-limit` and `DP_MEMORY_LIMIT` win.
    pub memory_limit: Option<JsonValue>,
    /// Where queries spill under a memory limit (relative to the project root).
    pub spill_dir: Option<String>,
    /// Any other key of the target table, visible to Jinja as `target.<key>`.
    pub extra: IndexMap<String, JsonValue>,
}

/// A `dispatch:` entry of dbt_project.yml.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct Dispatch {
    pub macro_namespace: String,
    pub search_order: Vec<String>,
}

/// Everything a command needs to know about the project and its target.
#[derive(Debug, Clone)]
pub struct Settings {
    pub root: PathBuf,
    pub project_name: String,
    pub version: Option<String>,
    /// The file that defined the project (for messages).
    pub project_file: String,
    pub paths: Paths,
    pub vars: IndexMap<String, JsonValue>,
    pub target: Target,
    pub targets: Vec<String>,
    pub models: ConfigTree,
    pub seeds: ConfigTree,
    pub tests: ConfigTree,
    pub snapshots: ConfigTree,
    pub sources: ConfigTree,
    pub on_run_start: Vec<String>,
    pub on_run_end: Vec<String>,
    pub dispatch: Vec<Dispatch>,
    /// `require-dbt-version` ranges of the project (checked when it loads).
    pub require_dbt_version: Vec<String>,
    /// dbt_project.yml's `flags:` (behaviour flags such as `validate_macro_args`).
    pub flags: IndexMap<String, JsonValue>,
    /// dbt_project.yml's `quoting:`: how relations' names are quoted in SQL
    /// (dbt-duckdb's default quotes database, schema and identifier).
    pub quoting: crate::util::ident::Quoting,
}

/// Options that come from the command line.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub target: Option<String>,
    pub threads: Option<usize>,
    pub warehouse: Option<String>,
    /// `--vars` as YAML or JSON text.
    pub vars: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct WarehouseToml {
    #[serde(default)]
    project: ProjectSection,
    #[serde(default)]
    paths: PathsSection,
    #[serde(default)]
    vars: IndexMap<String, JsonValue>,
    default_target: Option<String>,
    #[serde(default)]
    targets: IndexMap<String, TargetSection>,
    #[serde(default)]
    models: Option<JsonValue>,
    #[serde(default)]
    seeds: Option<JsonValue>,
    #[serde(default)]
    tests: Option<JsonValue>,
    #[serde(default)]
    data_tests: Option<JsonValue>,
    #[serde(default)]
    snapshots: Option<JsonValue>,
    #[serde(default)]
    sources: Option<JsonValue>,
    #[serde(default, rename = "on-run-start", alias = "on_run_start")]
    on_run_start: Option<StringOrList>,
    #[serde(default, rename = "on-run-end", alias = "on_run_end")]
    on_run_end: Option<StringOrList>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ProjectSection {
    name: Option<String>,
    version: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PathsSection {
    models: Option<StringOrList>,
    seeds: Option<StringOrList>,
    macros: Option<StringOrList>,
    tests: Option<StringOrList>,
    snapshots: Option<StringOrList>,
    analyses: Option<StringOrList>,
    checkpoints: Option<StringOrList>,
    docs: Option<StringOrList>,
    target: Option<String>,
    packages: Option<String>,
    clean: Option<StringOrList>,
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct TargetSection {
    warehouse: Option<String>,
    schema: Option<String>,
    database: Option<String>,
    threads: Option<usize>,
    postgres: Option<PostgresConfig>,
    s3: Option<storage::S3Section>,
    source_root: Option<String>,
    memory_limit: Option<JsonValue>,
    spill_dir: Option<String>,
    #[serde(default)]
    extra: IndexMap<String, JsonValue>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
enum StringOrList {
    One(String),
    Many(Vec<String>),
}

impl StringOrList {
    fn into_vec(self) -> Vec<String> {
        match self {
            StringOrList::One(s) => vec![s],
            StringOrList::Many(v) => v,
        }
    }
}

#[derive(Debug, Deserialize, Default)]
struct DbtProjectYml {
    name: Option<String>,
    version: Option<JsonValue>,
    #[serde(rename = "model-paths", alias = "source-paths")]
    model_paths: Option<Vec<String>>,
    #[serde(rename = "seed-paths", alias = "data-paths")]
    seed_paths: Option<Vec<String>>,
    #[serde(rename = "macro-paths")]
    macro_paths: Option<Vec<String>>,
    #[serde(rename = "test-paths")]
    test_paths: Option<Vec<String>>,
    #[serde(rename = "snapshot-paths")]
    snapshot_paths: Option<Vec<String>>,
    #[serde(rename = "analysis-paths")]
    analysis_paths: Option<Vec<String>>,
    #[serde(rename = "docs-paths")]
    docs_paths: Option<Vec<String>>,
    #[serde(rename = "target-path")]
    target_path: Option<String>,
    #[serde(rename = "packages-install-path")]
    packages_install_path: Option<String>,
    #[serde(rename = "clean-targets")]
    clean_targets: Option<Vec<String>>,
    #[serde(default)]
    vars: IndexMap<String, JsonValue>,
    models: Option<JsonValue>,
    seeds: Option<JsonValue>,
    tests: Option<JsonValue>,
    data_tests: Option<JsonValue>,
    snapshots: Option<JsonValue>,
    sources: Option<JsonValue>,
    #[serde(rename = "on-run-start")]
    on_run_start: Option<StringOrList>,
    #[serde(rename = "on-run-end")]
    on_run_end: Option<StringOrList>,
    #[serde(default)]
    dispatch: Vec<Dispatch>,
    #[serde(rename = "require-dbt-version")]
    require_dbt_version: Option<StringOrList>,
    #[serde(default)]
    flags: IndexMap<String, JsonValue>,
    quoting: Option<JsonValue>,
}

/// An installed package's own `dbt_project.yml`: its name, where its files
/// live (relative to the package folder), its vars and its config trees,
/// which apply to the package's nodes beneath the root project's.
#[derive(Debug, Clone)]
pub struct PackageProject {
    pub name: Option<String>,
    pub paths: Paths,
    pub vars: IndexMap<String, JsonValue>,
    pub models: ConfigTree,
    pub seeds: ConfigTree,
    pub tests: ConfigTree,
    pub snapshots: ConfigTree,
    pub sources: ConfigTree,
    /// `require-dbt-version` ranges (checked when the project loads).
    pub require_dbt_version: Vec<String>,
}

impl PackageProject {
    /// Parses a package's `dbt_project.yml` (`file` names it in errors).
    pub fn parse(text: &str, file: &str) -> Result<PackageProject, ConfigError> {
        let dbt: DbtProjectYml = crate::util::yaml::from_str(text).map_err(|message| ConfigError::Parse { file: file.into(), message })?;
        let d = Paths::default();
        let paths = Paths {
            models: dbt.model_paths.unwrap_or(d.models),
            seeds: dbt.seed_paths.unwrap_or(d.seeds),
            macros: dbt.macro_paths.unwrap_or(d.macros),
            tests: dbt.test_paths.unwrap_or(d.tests),
            snapshots: dbt.snapshot_paths.unwrap_or(d.snapshots),
            analyses: dbt.analysis_paths.unwrap_or(d.analyses),
            checkpoints: vec![],
            docs: dbt.docs_paths.unwrap_or(d.docs),
            ..d
        };
        let tree = |v: Option<JsonValue>| ConfigTree::new(v.unwrap_or(JsonValue::Object(Default::default())));
        Ok(PackageProject {
            name: dbt.name,
            paths,
            vars: dbt.vars,
            models: tree(dbt.models),
            seeds: tree(dbt.seeds),
            tests: tree(dbt.data_tests.or(dbt.tests)),
            snapshots: tree(dbt.snapshots),
            sources: tree(dbt.sources),
            require_dbt_version: dbt.require_dbt_version.map(StringOrList::into_vec).unwrap_or_default(),
        })
    }
}

/// Renders the Jinja in `dbt_project.yml` as dbt does when it loads the
/// project (`target-path: "{{ env_var('DBT_TARGET', 'target') }}"`), with
/// `env_var`. Node configs render per node later; `vars` when read; hooks
/// and `query-comment` when they run: those are left as written.
fn render_project_file(v: &mut JsonValue, env: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
    const LATER: &[&str] = &["models", "seeds", "snapshots", "tests", "data_tests", "sources", "vars", "on-run-start", "on-run-end", "query-comment"];
    let Some(top) = v.as_object_mut() else { return Ok(()) };
    let mut jinja = minijinja::Environment::new();
    let vars: std::collections::HashMap<String, String> =
        top.values().flat_map(collect_env_names).filter_map(|name| env(&name).map(|val| (name, val))).collect();
    jinja.add_function("env_var", move |name: String, default: Option<String>| -> Result<String, minijinja::Error> {
        vars.get(&name).cloned().or(default).ok_or_else(|| {
            minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                format!("Env var required but not provided: '{name}'\n  hint: export {name}=... or give env_var('{name}', 'default') a default"),
            )
        })
    });
    fn walk(v: &mut JsonValue, jinja: &minijinja::Environment) -> Result<(), String> {
        match v {
            JsonValue::String(s) if s.contains("{{") || s.contains("{%") => {
                *s = jinja.render_str(s, ()).map_err(|e| e.detail().map(String::from).unwrap_or_else(|| e.to_string()))?
            }
            JsonValue::Array(a) => a.iter_mut().try_for_each(|x| walk(x, jinja))?,
            JsonValue::Object(o) => o.values_mut().try_for_each(|x| walk(x, jinja))?,
            _ => {}
        }
        Ok(())
    }
    for (k, x) in top.iter_mut().filter(|(k, _)| !LATER.contains(&k.as_str())) {
        walk(x, &jinja).map_err(|message| ConfigError::Parse { file: DBT_PROJECT_YML.into(), message: format!("{k}: {message}") })?;
    }
    Ok(())
}

/// The names `env_var('NAME'...)` reads anywhere in `v`.
fn collect_env_names(v: &JsonValue) -> Vec<String> {
    match v {
        JsonValue::String(s) => s
            .match_indices("env_var(")
            .filter_map(|(i, _)| {
                let rest = s[i + 8..].trim_start();
                let q = rest.chars().next().filter(|c| *c == '\'' || *c == '"')?;
                rest[1..].split(q).next().map(String::from)
            })
            .collect(),
        JsonValue::Array(a) => a.iter().flat_map(collect_env_names).collect(),
        JsonValue::Object(o) => o.values().flat_map(collect_env_names).collect(),
        _ => vec![],
    }
}

pub const WAREHOUSE_TOML: &str = "warehouse.toml";
pub const DBT_PROJECT_YML: &str = "dbt_project.yml";

impl Settings {
    /// Loads the project at `root` (through `fs`, whose root it is).
    pub fn load(root: &Path, fs: &dyn FileSystem, overrides: &Overrides, env: &dyn Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
        let has_toml = fs.exists(WAREHOUSE_TOML);
        let has_dbt = fs.exists(DBT_PROJECT_YML);
        if !has_toml && !has_dbt {
            return Err(ConfigError::NoProject { dir: root.display().to_string() });
        }
        let read = |file: &str| fs.read_to_string(file).map_err(|source| ConfigError::Read { file: file.to_string(), source });
        let dbt: DbtProjectYml = if has_dbt {
            let text = read(DBT_PROJECT_YML)?;
            let parse_err = |message| ConfigError::Parse { file: DBT_PROJECT_YML.into(), message };
            if text.contains("{{") || text.contains("{%") {
                let mut raw: JsonValue = crate::util::yaml::from_str(&text).map_err(parse_err)?;
                render_project_file(&mut raw, env)?;
                serde_json::from_value(raw).map_err(|e| parse_err(e.to_string()))?
            } else {
                crate::util::yaml::from_str(&text).map_err(parse_err)?
            }
        } else {
            DbtProjectYml::default()
        };
        let wt: WarehouseToml = if has_toml {
            let text = read(WAREHOUSE_TOML)?;
            toml::from_str(&text).map_err(|e| ConfigError::Parse { file: WAREHOUSE_TOML.into(), message: e.to_string().trim_end().to_string() })?
        } else {
            WarehouseToml::default()
        };
        let project_file = if has_toml { WAREHOUSE_TOML } else { DBT_PROJECT_YML }.to_string();

        let project_name = wt.project.name.clone().or(dbt.name.clone()).ok_or_else(|| ConfigError::Invalid {
            what: project_file.clone(),
            message: "the project has no name\n  hint: set `[project] name = \"...\"` in warehouse.toml (or `name:` in dbt_project.yml)".into(),
        })?;
        validate_identifier(&project_name, &project_file)?;

        let mut paths = Paths::default();
        let pick = |toml: Option<StringOrList>, yml: Option<Vec<String>>, default: Vec<String>| toml.map(StringOrList::into_vec).or(yml).unwrap_or(default);
        let p = wt.paths;
        paths.models = pick(p.models, dbt.model_paths, paths.models);
        paths.seeds = pick(p.seeds, dbt.seed_paths, paths.seeds);
        paths.macros = pick(p.macros, dbt.macro_paths, paths.macros);
        paths.tests = pick(p.tests, dbt.test_paths, paths.tests);
        paths.snapshots = pick(p.snapshots, dbt.snapshot_paths, paths.snapshots);
        paths.analyses = pick(p.analyses, dbt.analysis_paths, paths.analyses);
        paths.checkpoints = pick(p.checkpoints, None, paths.checkpoints);
        paths.docs = pick(p.docs, dbt.docs_paths, paths.docs);
        paths.target = p.target.or(dbt.target_path).unwrap_or(paths.target);
        paths.packages = p.packages.or(dbt.packages_install_path).unwrap_or(paths.packages);
        paths.clean = pick(p.clean, dbt.clean_targets, vec![paths.target.clone()]);

        // Vars: dbt_project.yml, then warehouse.toml, then --vars.
        let mut vars = dbt.vars;
        vars.extend(wt.vars);
        if let Some(cli) = &overrides.vars {
            let parsed = parse_cli_vars(cli)?;
            vars.extend(parsed);
        }

        // Config trees are keyed by package name at their top level (as in
        // dbt_project.yml); warehouse.toml's are relative to the project.
        let wrap = |v: Option<JsonValue>| -> JsonValue {
            match v {
                Some(v) => {
                    let mut m = serde_json::Map::new();
                    m.insert(project_name.clone(), v);
                    JsonValue::Object(m)
                }
                None => JsonValue::Object(Default::default()),
            }
        };
        let tree = |yml: Option<JsonValue>, toml: Option<JsonValue>| {
            let mut base = yml.unwrap_or(JsonValue::Object(Default::default()));
            tree::merge_trees(&mut base, wrap(toml));
            ConfigTree::new(base)
        };
        let models = tree(dbt.models, wt.models);
        let seeds = tree(dbt.seeds, wt.seeds);
        let tests = tree(dbt.data_tests.or(dbt.tests), wt.data_tests.or(wt.tests));
        let snapshots = tree(dbt.snapshots, wt.snapshots);
        let sources = tree(dbt.sources, wt.sources);

        let mut on_run_start = dbt.on_run_start.map(StringOrList::into_vec).unwrap_or_default();
        on_run_start.extend(wt.on_run_start.map(StringOrList::into_vec).unwrap_or_default());
        let mut on_run_end = dbt.on_run_end.map(StringOrList::into_vec).unwrap_or_default();
        on_run_end.extend(wt.on_run_end.map(StringOrList::into_vec).unwrap_or_default());

        // Target.
        let targets: Vec<String> = wt.targets.keys().cloned().collect();
        let target_name = overrides.target.clone().or_else(|| env("DP_TARGET")).or(wt.default_target.clone()).unwrap_or_else(|| "dev".into());
        let section = match wt.targets.get(&target_name) {
            Some(s) => s.clone(),
            None if wt.targets.is_empty() && target_name == "dev" => TargetSection::default(),
            None => {
                return Err(ConfigError::UnknownTarget {
                    name: target_name,
                    file: project_file,
                    available: if targets.is_empty() { "(none)".into() } else { targets.join(", ") },
                });
            }
        };
        let threads = match overrides.threads {
            Some(t) => t,
            None => match env("DP_THREADS") {
                Some(t) => {
                    t.parse().map_err(|_| ConfigError::Invalid { what: "DP_THREADS".into(), message: format!("'{t}' is not a whole number of threads") })?
                }
                None => section.threads.unwrap_or(4),
            },
        };
        if threads == 0 {
            return Err(ConfigError::Invalid { what: format!("target '{target_name}'"), message: "threads must be at least 1".into() });
        }
        let what = |k: &str| format!("target '{target_name}' {k}");
        let warehouse = match overrides.warehouse.clone().or_else(|| env("DP_WAREHOUSE")) {
            Some(w) => w,
            None => expand_env(section.warehouse.as_deref().unwrap_or("./warehouse"), &what("warehouse"), env)?,
        };
        let source_root = match section.source_root.as_deref() {
            Some(r) => Some(expand_env(r, &what("source_root"), env)?),
            None => None,
        };
        let s3 = match section.s3 {
            Some(s) => Some(s.resolve(&target_name, env)?),
            None => None,
        };
        let target = Target {
            name: target_name,
            warehouse,
            schema: env("DP_SCHEMA").or(section.schema).unwrap_or_else(|| "main".into()),
            database: section.database.unwrap_or_else(|| "dp".into()),
            threads,
            postgres: section.postgres,
            s3,
            source_root,
            memory_limit: section.memory_limit,
            spill_dir: section.spill_dir,
            extra: section.extra,
        };

        let version = wt.project.version.or(dbt.version.map(|v| match v {
            JsonValue::String(s) => s,
            other => other.to_string(),
        }));

        Ok(Settings {
            root: root.to_path_buf(),
            project_name,
            version,
            project_file,
            paths,
            vars,
            target,
            targets,
            models,
            seeds,
            tests,
            snapshots,
            sources,
            on_run_start,
            on_run_end,
            dispatch: dbt.dispatch,
            require_dbt_version: dbt.require_dbt_version.map(StringOrList::into_vec).unwrap_or_default(),
            flags: dbt.flags,
            quoting: crate::util::ident::Quoting::default().merged(dbt.quoting.as_ref()),
        })
    }

    /// The warehouse location as an absolute path or URL string.
    pub fn warehouse_url(&self) -> String {
        let w = &self.target.warehouse;
        if w.contains("://") {
            w.clone()
        } else {
            let p = Path::new(w.strip_prefix("file:").unwrap_or(w));
            let abs = if p.is_absolute() { p.to_path_buf() } else { self.root.join(p) };
            normalize_path(&abs).display().to_string()
        }
    }

    pub fn target_dir(&self) -> PathBuf {
        self.root.join(&self.paths.target)
    }
}

/// Parses `--vars` (YAML or JSON: `{key: value}` or `key: value`).
pub fn parse_cli_vars(text: &str) -> Result<IndexMap<String, JsonValue>, ConfigError> {
    let v: JsonValue = crate::util::yaml::from_str(text).map_err(|message| ConfigError::Parse { file: "--vars".into(), message })?;
    match v {
        JsonValue::Object(m) => Ok(m.into_iter().collect()),
        JsonValue::Null => Ok(IndexMap::new()),
        other => Err(ConfigError::Invalid {
            what: "--vars".into(),
            message: format!("expected a mapping like '{{key: value}}', got {other}\n  hint: pass --vars '{{\"start_date\": \"2024-01-01\"}}'"),
        }),
    }
}

fn validate_identifier(name: &str, file: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !name.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            what: file.into(),
            message: format!("project name '{name}' is not valid: use letters, digits and underscores, not starting with a digit"),
        })
    }
}

/// Removes `.` and `..` components without touching the disk.
pub fn normalize_path(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests;
