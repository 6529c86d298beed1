//! Loading: files → macros → Jinja environment → nodes → YAML patches →
//! configs (tree < YAML < in-file `config()`) → parse-pass rendering that
//! discovers refs and sources → schema/alias naming → generic tests.

use indexmap::IndexMap;
use rayon::prelude::*;
use serde_json::{Map, Value};
use std::sync::Arc;

use super::blocks::find_blocks;
use super::generic_tests::{parse_entry, synthesize_names, test_hash};
use super::nodes::{Column, DocBlock, Macro, Node, RefCall, ResourceType, SourceInfo};
use super::properties::{ColumnDef, NodePatch, PropertiesFile, SourceDef};
use super::yaml::{NameIndex, find_name_line};
use crate::config::{ConfigTree, Settings, merge_config};
use crate::fs::FileSystem;
use crate::jinja::{EnvInputs, JinjaEnv, MacroSource, Phase, RenderCtx, RenderError, block_to_macro};

/// An error that stops loading; each names the file (and line) at fault.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("{file}: could not read: {message}")]
    Io { file: String, message: String },
    #[error("{file}: invalid YAML: {message}")]
    Yaml { file: String, message: String },
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error("{file}:{line}: {message}")]
    Located { file: String, line: usize, message: String },
    #[error("{file}: {message}")]
    File { file: String, message: String },
    #[error("dbt found two {kind}s with the name '{name}':\n  - {first}\n  - {second}\n  hint: rename one of them, or disable one with `enabled: false`")]
    Duplicate { kind: String, name: String, first: String, second: String },
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n\n"))]
    Many(Vec<LoadError>),
}

/// Invocation facts the Jinja context exposes.
pub struct LoadOptions {
    pub env: Arc<dyn Fn(&str) -> Option<String> + Send + Sync>,
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
    pub nodes: IndexMap<String, Node>,
    pub disabled: IndexMap<String, Node>,
    pub macros: IndexMap<String, Macro>,
    pub docs: IndexMap<String, DocBlock>,
    /// groups, metrics, semantic_models, saved_queries: kept for the manifest.
    pub other: IndexMap<&'static str, IndexMap<String, Value>>,
    pub packages: Vec<String>,
    pub jinja: Arc<JinjaEnv>,
    pub warnings: Vec<String>,
}

struct PackageDir {
    name: String,
    root: String,
    macro_paths: Vec<String>,
    vars: IndexMap<String, Value>,
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

pub fn load_project(settings: Settings, fs: &dyn FileSystem, opts: &LoadOptions) -> Result<Project, LoadError> {
    let root_pkg = settings.project_name.clone();
    let mut warnings = vec![];

    // Packages installed under dbt_packages/.
    let mut packages: Vec<PackageDir> = vec![];
    for f in fs.list_files(&settings.paths.packages, &["dbt_project.yml"]).unwrap_or_default() {
        let rel = f.strip_prefix(&format!("{}/", settings.paths.packages)).unwrap_or(&f);
        if rel.matches('/').count() != 1 {
            continue;
        }
        let dir = f.trim_end_matches("/dbt_project.yml").to_string();
        let text = read(fs, &f)?;
        let y: Value = super::yaml::from_str(&text).map_err(|message| LoadError::Yaml { file: f.clone(), message })?;
        let name = y.get("name").and_then(Value::as_str).unwrap_or(rel.split('/').next().unwrap_or("")).to_string();
        let macro_paths = y
            .get("macro-paths")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
            .unwrap_or_else(|| vec!["macros".to_string()]);
        let vars = y.get("vars").and_then(Value::as_object).map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default();
        packages.push(PackageDir { name, root: dir, macro_paths, vars });
    }
    packages.sort_by(|a, b| a.name.cmp(&b.name));

    // Macros and generic tests.
    let mut macro_sources: Vec<MacroSource> = vec![];
    let mut macros: IndexMap<String, Macro> = IndexMap::new();
    let mut macro_files: Vec<(String, String)> = vec![];
    for p in &settings.paths.macros {
        for f in fs.list_files(p, &[".sql", ".jinja"]).unwrap_or_default() {
            macro_files.push((root_pkg.clone(), f));
        }
    }
    for p in &settings.paths.tests {
        for f in fs.list_files(p, &[".sql"]).unwrap_or_default() {
            macro_files.push((root_pkg.clone(), f));
        }
    }
    for pkg in &packages {
        for mp in &pkg.macro_paths {
            for f in fs.list_files(&join(&pkg.root, mp), &[".sql"]).unwrap_or_default() {
                macro_files.push((pkg.name.clone(), f));
            }
        }
    }
    let mut test_files_with_blocks = std::collections::HashSet::new();
    for (pkg, f) in &macro_files {
        let text = read(fs, f)?;
        if !text.contains("{%") {
            continue;
        }
        let blocks =
            find_blocks(&text, &["macro", "test", "materialization"]).map_err(|e| LoadError::Located { file: f.clone(), line: e.line, message: e.message })?;
        for b in blocks {
            if b.kind == "materialization" {
                warnings.push(format!("{f}:{}: custom materialization '{}' is not supported by dp and was ignored", b.line, b.name));
                continue;
            }
            if b.kind == "test" {
                test_files_with_blocks.insert(f.clone());
            }
            let ms = block_to_macro(&b, pkg, f);
            let uid = format!("macro.{}.{}", pkg, ms.name);
            if let Some(prev) = macros.get(&uid) {
                return Err(LoadError::Duplicate {
                    kind: "macro".into(),
                    name: ms.name.clone(),
                    first: format!("{}:{}", prev.original_file_path, prev.line),
                    second: format!("{f}:{}", b.line),
                });
            }
            let path = f.clone();
            macros.insert(
                uid.clone(),
                Macro {
                    unique_id: uid,
                    name: ms.name.clone(),
                    package_name: pkg.clone(),
                    path: path.clone(),
                    original_file_path: path,
                    macro_sql: b.full.clone(),
                    arguments: crate::jinja::macro_arguments(b.args.as_deref()),
                    description: String::new(),
                    line: b.line,
                },
            );
            macro_sources.push(ms);
        }
    }

    // The Jinja environment, built once.
    let mut vars = settings.vars.clone();
    if let Some(Value::Object(scoped)) = settings.vars.get(&root_pkg) {
        for (k, v) in scoped {
            vars.insert(k.clone(), v.clone());
        }
    }
    let target = serde_json::json!({
        "name": settings.target.name,
        "schema": settings.target.schema,
        "database": settings.target.database,
        "type": crate::jinja::ADAPTER_TYPE,
        "threads": settings.target.threads,
        "profile_name": root_pkg,
        "target_name": settings.target.name,
    });
    let jinja = Arc::new(JinjaEnv::new(EnvInputs {
        root_package: root_pkg.clone(),
        packages: packages.iter().map(|p| p.name.clone()).collect(),
        macros: macro_sources,
        target,
        vars,
        package_vars: packages.iter().map(|p| (p.name.clone(), p.vars.clone())).collect(),
        env: opts.env.clone(),
        dispatch: settings.dispatch.clone(),
        invocation_id: opts.invocation_id.clone(),
        run_started_at: opts.run_started_at,
        flags: serde_json::json!({
            "FULL_REFRESH": opts.full_refresh,
            "STORE_FAILURES": opts.store_failures,
            "WHICH": opts.which,
        }),
    })?);

    let mut nodes: IndexMap<String, Node> = IndexMap::new();
    let mut by_name: IndexMap<(ResourceType, String), String> = IndexMap::new();
    let mut add = |node: Node, nodes: &mut IndexMap<String, Node>| -> Result<(), LoadError> {
        let refable = matches!(node.resource_type, ResourceType::Model | ResourceType::Seed | ResourceType::Snapshot);
        let key_type = if refable { ResourceType::Model } else { node.resource_type };
        let key = (key_type, format!("{}:{}", node.name, node.version.clone().unwrap_or_default()));
        if let Some(prev) = by_name.get(&key) {
            let prev = &nodes[prev];
            return Err(LoadError::Duplicate {
                kind: node.resource_type.as_str().into(),
                name: node.name.clone(),
                first: prev.original_file_path.clone(),
                second: node.original_file_path.clone(),
            });
        }
        by_name.insert(key, node.unique_id.clone());
        nodes.insert(node.unique_id.clone(), node);
        Ok(())
    };

    // Models.
    for base in &settings.paths.models {
        for f in fs.list_files(base, &[".sql"]).unwrap_or_default() {
            let (rel, dirs, name) = split_path(base, &f);
            let mut n = Node::new(ResourceType::Model, &root_pkg, &name, &f);
            n.path = rel;
            n.fqn = std::iter::once(root_pkg.clone()).chain(dirs).chain(std::iter::once(name)).collect();
            n.raw_code = read(fs, &f)?;
            add(n, &mut nodes)?;
        }
        for f in fs.list_files(base, &[".py"]).unwrap_or_default() {
            warnings.push(format!("{f}: Python models are not supported by dp and were skipped"));
        }
    }
    // Seeds.
    for base in &settings.paths.seeds {
        for f in fs.list_files(base, &[".csv"]).unwrap_or_default() {
            let (rel, dirs, name) = split_path(base, &f);
            let mut n = Node::new(ResourceType::Seed, &root_pkg, &name, &f);
            n.path = rel;
            n.fqn = std::iter::once(root_pkg.clone()).chain(dirs).chain(std::iter::once(name)).collect();
            add(n, &mut nodes)?;
        }
    }
    // Snapshots ({% snapshot %} blocks).
    for base in &settings.paths.snapshots {
        for f in fs.list_files(base, &[".sql"]).unwrap_or_default() {
            let text = read(fs, &f)?;
            let (rel, dirs, _) = split_path(base, &f);
            let blocks = find_blocks(&text, &["snapshot"]).map_err(|e| LoadError::Located { file: f.clone(), line: e.line, message: e.message })?;
            for b in blocks {
                let mut n = Node::new(ResourceType::Snapshot, &root_pkg, &b.name, &f);
                n.path = rel.clone();
                n.fqn = std::iter::once(root_pkg.clone()).chain(dirs.clone()).chain([b.name.clone()]).collect();
                n.raw_code = b.body.clone();
                n.line = Some(b.line);
                add(n, &mut nodes)?;
            }
        }
    }
    // Analyses.
    for base in &settings.paths.analyses {
        for f in fs.list_files(base, &[".sql"]).unwrap_or_default() {
            let (rel, dirs, name) = split_path(base, &f);
            let mut n = Node::new(ResourceType::Analysis, &root_pkg, &name, &f);
            n.path = format!("analysis/{rel}");
            n.fqn = std::iter::once(root_pkg.clone()).chain(["analysis".to_string()]).chain(dirs).chain([name]).collect();
            n.raw_code = read(fs, &f)?;
            add(n, &mut nodes)?;
        }
    }
    // Singular tests.
    for base in &settings.paths.tests {
        for f in fs.list_files(base, &[".sql"]).unwrap_or_default() {
            if test_files_with_blocks.contains(&f) {
                continue;
            }
            let (rel, dirs, name) = split_path(base, &f);
            if dirs.first().is_some_and(|d| d == "generic") {
                continue;
            }
            let mut n = Node::new(ResourceType::Test, &root_pkg, &name, &f);
            n.path = rel;
            n.fqn = std::iter::once(root_pkg.clone()).chain(dirs).chain([name]).collect();
            n.raw_code = read(fs, &f)?;
            add(n, &mut nodes)?;
        }
    }

    // Docs blocks.
    let mut docs = IndexMap::new();
    let doc_dirs: Vec<&String> = settings.paths.models.iter().chain(settings.paths.docs.iter()).collect();
    for base in doc_dirs {
        for f in fs.list_files(base, &[".md"]).unwrap_or_default() {
            let text = read(fs, &f)?;
            for b in find_blocks(&text, &["docs"]).map_err(|e| LoadError::Located { file: f.clone(), line: e.line, message: e.message })? {
                let uid = format!("doc.{}.{}", root_pkg, b.name);
                docs.insert(
                    uid.clone(),
                    DocBlock {
                        unique_id: uid,
                        name: b.name.clone(),
                        package_name: root_pkg.clone(),
                        path: f.clone(),
                        original_file_path: f.clone(),
                        block_contents: b.body.trim().to_string(),
                    },
                );
            }
        }
    }

    jinja.set_docs(docs.values().map(|d: &DocBlock| (format!("{}.{}", d.package_name, d.name), d.block_contents.clone())).collect());

    // YAML property files.
    let mut yaml_dirs: Vec<&String> = vec![];
    for group in
        [&settings.paths.models, &settings.paths.seeds, &settings.paths.snapshots, &settings.paths.analyses, &settings.paths.macros, &settings.paths.tests]
    {
        yaml_dirs.extend(group.iter());
    }
    let mut props: Vec<(String, String, PropertiesFile)> = vec![];
    let mut seen_yaml = std::collections::HashSet::new();
    for base in yaml_dirs {
        for f in fs.list_files(base, &[".yml", ".yaml"]).unwrap_or_default() {
            if !seen_yaml.insert(f.clone()) {
                continue;
            }
            let text = read(fs, &f)?;
            if text.trim().is_empty() {
                continue;
            }
            let pf: PropertiesFile = super::yaml::from_str(&text).map_err(|message| LoadError::Yaml { file: f.clone(), message })?;
            props.push((base.clone(), f, pf));
        }
    }

    let mut yaml_tests: Vec<PendingTest> = vec![];
    let mut other: IndexMap<&'static str, IndexMap<String, Value>> = IndexMap::new();
    let mut unit_tests: Vec<(String, String, Map<String, Value>)> = vec![];
    let mut exposures: Vec<(String, String, Map<String, Value>)> = vec![];
    let mut macro_patches: Vec<(String, super::properties::MacroPatch)> = vec![];
    for (base, file, pf) in props {
        let text = read(fs, &file)?;
        let idx = NameIndex::new(&text);
        let (_, dirs, _) = split_path(&base, &file);
        let groups = [
            (ResourceType::Model, &pf.models),
            (ResourceType::Seed, &pf.seeds),
            (ResourceType::Snapshot, &pf.snapshots),
            (ResourceType::Analysis, &pf.analyses),
        ];
        for (rt, patches) in groups {
            for patch in patches {
                let key_type = if rt == ResourceType::Analysis { ResourceType::Analysis } else { ResourceType::Model };
                let uid = by_name.get(&(key_type, format!("{}:", patch.name))).cloned();
                let Some(uid) = uid.filter(|u| nodes[u].resource_type == rt) else {
                    warnings.push(format!(
                        "{file}:{}: {} '{}' is described here but no such {} exists",
                        idx.first(&patch.name).unwrap_or(1),
                        rt,
                        patch.name,
                        rt
                    ));
                    continue;
                };
                let node = nodes.get_mut(&uid).unwrap();
                if let Some(prev) = &node.patch_path {
                    return Err(LoadError::Duplicate { kind: format!("{rt} patche"), name: patch.name.clone(), first: prev.clone(), second: file.clone() });
                }
                apply_patch(node, patch, &file, &idx);
                let target = TestTarget::Node { name: patch.name.clone(), uid: uid.clone() };
                collect_tests(&mut yaml_tests, &target, &file, &idx, &dirs, patch.all_tests(), &patch.columns)?;
            }
        }
        for src in &pf.sources {
            for t in &src.tables {
                let n = source_node(&root_pkg, src, t, &file, &idx, &dirs);
                let target = TestTarget::Source { source: src.name.clone(), table: t.name.clone(), uid: n.unique_id.clone() };
                collect_tests(&mut yaml_tests, &target, &file, &idx, &dirs, t.data_tests.iter().chain(t.tests.iter()).cloned().collect(), &t.columns)?;
                if nodes.contains_key(&n.unique_id) {
                    return Err(LoadError::Duplicate {
                        kind: "source".into(),
                        name: format!("{}.{}", src.name, t.name),
                        first: nodes[&n.unique_id].original_file_path.clone(),
                        second: file.clone(),
                    });
                }
                nodes.insert(n.unique_id.clone(), n);
            }
        }
        for m in pf.macros {
            macro_patches.push((file.clone(), m));
        }
        for u in pf.unit_tests {
            unit_tests.push((file.clone(), text.clone(), u));
        }
        for e in pf.exposures {
            exposures.push((file.clone(), text.clone(), e));
        }
        for (kind, items) in [("groups", pf.groups), ("metrics", pf.metrics), ("semantic_models", pf.semantic_models), ("saved_queries", pf.saved_queries)] {
            for item in items {
                let name = item.get("name").and_then(Value::as_str).unwrap_or("").to_string();
                let prefix = match kind {
                    "groups" => "group",
                    "metrics" => "metric",
                    "semantic_models" => "semantic_model",
                    _ => "saved_query",
                };
                let mut item = item;
                item.insert("original_file_path".into(), Value::String(file.clone()));
                other.entry(kind).or_default().insert(format!("{prefix}.{root_pkg}.{name}"), Value::Object(item));
            }
        }
    }
    for (file, m) in macro_patches {
        if let Some(mac) = macros.get_mut(&format!("macro.{root_pkg}.{}", m.name)) {
            mac.description = m.description.unwrap_or_default();
        } else {
            warnings.push(format!("{file}: macro '{}' is described here but no such macro exists", m.name));
        }
    }

    // Configs: tree, then YAML config, then the parse-pass render.
    let trees = |rt: ResourceType| -> &ConfigTree {
        match rt {
            ResourceType::Seed => &settings.seeds,
            ResourceType::Snapshot => &settings.snapshots,
            ResourceType::Test => &settings.tests,
            ResourceType::Source => &settings.sources,
            _ => &settings.models,
        }
    };
    let ids: Vec<String> = nodes.keys().cloned().collect();
    let rendered: Vec<Result<(String, Map<String, Value>, crate::jinja::Captured), LoadError>> = ids
        .par_iter()
        .map(|uid| {
            let node = &nodes[uid];
            let mut cfg = default_config(node.resource_type);
            let tree_cfg = render_config_values(&jinja, trees(node.resource_type).resolve(&node.fqn), &node.original_file_path)?;
            merge_config(&mut cfg, &tree_cfg);
            let yaml_cfg = render_config_values(&jinja, node.config.clone(), node.patch_path.as_deref().unwrap_or(&node.original_file_path))?;
            merge_config(&mut cfg, &yaml_cfg);
            let mut captured = crate::jinja::Captured::default();
            if matches!(node.resource_type, ResourceType::Model | ResourceType::Snapshot | ResourceType::Analysis | ResourceType::Test)
                && node.raw_code.contains("{")
            {
                let mut rctx = RenderCtx::new(uid, &node.package_name, Phase::Parse);
                rctx.config = cfg.clone();
                rctx.this = this_value(node, &settings);
                rctx.model = model_value(node);
                let rctx = Arc::new(rctx);
                jinja.render_node(&node.original_file_path, &node.raw_code, rctx.clone())?;
                captured = rctx.take_captured();
                merge_config(&mut cfg, &captured.config);
            }
            Ok((uid.clone(), cfg, captured))
        })
        .collect();
    let mut errors = vec![];
    for r in rendered {
        match r {
            Ok((uid, cfg, cap)) => {
                let n = nodes.get_mut(&uid).unwrap();
                n.config = cfg;
                n.refs = cap.refs;
                n.sources = cap.sources;
            }
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(if errors.len() == 1 { errors.pop().unwrap() } else { LoadError::Many(errors) });
    }

    // Generic tests from YAML.
    for t in yaml_tests {
        let node = build_generic_test(&t, &root_pkg, &jinja, &settings.tests)?;
        let Some(node) = node else { continue };
        if nodes.contains_key(&node.unique_id) {
            continue;
        }
        nodes.insert(node.unique_id.clone(), node);
    }

    // Unit tests and exposures.
    for (file, text, u) in unit_tests {
        let name = u.get("name").and_then(Value::as_str).unwrap_or("").to_string();
        let model = u.get("model").and_then(Value::as_str).unwrap_or("").to_string();
        let line = find_name_line(&text, &name).unwrap_or(1);
        if name.is_empty() || model.is_empty() {
            return Err(LoadError::Located { file, line, message: "a unit test needs `name` and `model`".into() });
        }
        let mut n = Node::new(ResourceType::UnitTest, &root_pkg, &name, &file);
        n.unique_id = format!("unit_test.{root_pkg}.{model}.{name}");
        let model_node = nodes.values().find(|m| m.resource_type == ResourceType::Model && m.name == model);
        let Some(model_node) = model_node else {
            return Err(LoadError::Located { file, line, message: format!("unit test '{name}' refers to model '{model}', which does not exist") });
        };
        n.fqn = model_node.fqn[..model_node.fqn.len() - 1].iter().cloned().chain([model.clone(), name.clone()]).collect();
        n.path = model_node.path.clone();
        n.refs = vec![RefCall { name: model.clone(), package: None, version: None }];
        n.description = u.get("description").and_then(Value::as_str).unwrap_or("").into();
        n.config = u.get("config").and_then(Value::as_object).cloned().unwrap_or_default();
        n.extra = u.clone();
        n.line = Some(line);
        n.patch_path = Some(file);
        nodes.insert(n.unique_id.clone(), n);
    }
    for (file, text, e) in exposures {
        let name = e.get("name").and_then(Value::as_str).unwrap_or("").to_string();
        let mut n = Node::new(ResourceType::Exposure, &root_pkg, &name, &file);
        n.fqn = vec![root_pkg.clone(), name.clone()];
        n.line = find_name_line(&text, &name);
        n.description = e.get("description").and_then(Value::as_str).unwrap_or("").into();
        if let Some(Value::Array(deps)) = e.get("depends_on") {
            let src: String = deps.iter().filter_map(Value::as_str).map(|d| format!("{{{{ {d} }}}}")).collect();
            let rctx = Arc::new(RenderCtx::new(&n.unique_id, &root_pkg, Phase::Parse));
            jinja.render_node(&file, &src, rctx.clone())?;
            let cap = rctx.take_captured();
            n.refs = cap.refs;
            n.sources = cap.sources;
        }
        n.extra = e;
        nodes.insert(n.unique_id.clone(), n);
    }

    // Disabled nodes leave the project (and so does anything attached to them).
    let mut disabled = IndexMap::new();
    let off: Vec<String> = nodes.iter().filter(|(_, n)| !n.enabled()).map(|(k, _)| k.clone()).collect();
    for k in off {
        if let Some(n) = nodes.shift_remove(&k) {
            disabled.insert(k, n);
        }
    }
    let orphan: Vec<String> =
        nodes.iter().filter(|(_, n)| n.attached_node.as_ref().is_some_and(|a| disabled.contains_key(a))).map(|(k, _)| k.clone()).collect();
    for k in orphan {
        if let Some(n) = nodes.shift_remove(&k) {
            disabled.insert(k, n);
        }
    }

    // Relation names: generate_database_name / generate_schema_name / generate_alias_name.
    let named: Vec<Result<(String, String, String, String), LoadError>> = nodes
        .par_iter()
        .filter(|(_, n)| n.resource_type.is_executable() || n.resource_type == ResourceType::Analysis)
        .map(|(uid, n)| {
            let nv = model_value(n);
            let custom_schema = n.config.get("schema").map(|v| minijinja::Value::from_serialize(v)).unwrap_or(minijinja::Value::from(()));
            let custom_alias = n.config.get("alias").map(|v| minijinja::Value::from_serialize(v)).unwrap_or(minijinja::Value::from(()));
            let custom_db = n.config.get("database").map(|v| minijinja::Value::from_serialize(v)).unwrap_or(minijinja::Value::from(()));
            let schema = jinja.call_macro_str("generate_schema_name", &[("custom_schema_name", custom_schema), ("node", nv.clone())], None)?;
            let alias = jinja.call_macro_str("generate_alias_name", &[("custom_alias_name", custom_alias), ("node", nv.clone())], None)?;
            let db = jinja.call_macro_str("generate_database_name", &[("custom_database_name", custom_db), ("node", nv)], None)?;
            Ok((uid.clone(), db, schema, alias))
        })
        .collect();
    for r in named {
        let (uid, db, schema, alias) = r?;
        let n = nodes.get_mut(&uid).unwrap();
        n.database = db;
        n.schema = schema;
        n.alias = alias;
    }

    Ok(Project { settings, nodes, disabled, macros, docs, other, packages: packages.into_iter().map(|p| p.name).collect(), jinja, warnings })
}

/// Config every node of a kind starts with (as dbt's defaults).
fn default_config(rt: ResourceType) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("enabled".into(), Value::Bool(true));
    m.insert("tags".into(), Value::Array(vec![]));
    m.insert("meta".into(), Value::Object(Map::new()));
    match rt {
        ResourceType::Model => {
            m.insert("materialized".into(), Value::String("view".into()));
        }
        ResourceType::Seed => {
            m.insert("materialized".into(), Value::String("seed".into()));
        }
        ResourceType::Snapshot => {
            m.insert("materialized".into(), Value::String("snapshot".into()));
        }
        ResourceType::Test => {
            m.insert("materialized".into(), Value::String("test".into()));
            m.insert("severity".into(), Value::String("ERROR".into()));
            m.insert("schema".into(), Value::String("dbt_test__audit".into()));
            m.insert("fail_calc".into(), Value::String("count(*)".into()));
            m.insert("warn_if".into(), Value::String("!= 0".into()));
            m.insert("error_if".into(), Value::String("!= 0".into()));
        }
        _ => {}
    }
    m
}

/// Renders Jinja inside string config values (e.g. `+enabled: "{{ var('x') }}"`).
fn render_config_values(jinja: &JinjaEnv, cfg: Map<String, Value>, file: &str) -> Result<Map<String, Value>, LoadError> {
    let mut out = Map::new();
    for (k, v) in cfg {
        let v = match v {
            Value::String(s) if s.contains("{{") || s.contains("{%") => {
                let r = jinja.render_str(file, &s, None, &[])?;
                match r.trim() {
                    "True" | "true" => Value::Bool(true),
                    "False" | "false" => Value::Bool(false),
                    "None" | "none" => Value::Null,
                    other => Value::String(other.to_string()),
                }
            }
            other => other,
        };
        out.insert(k, v);
    }
    Ok(out)
}

fn apply_patch(node: &mut Node, patch: &NodePatch, file: &str, idx: &NameIndex) {
    node.patch_path = Some(file.to_string());
    node.line = idx.first(&patch.name);
    if let Some(d) = &patch.description {
        node.description = d.clone();
    }
    node.columns = columns(&patch.columns);
    let mut cfg = patch.config.clone();
    if !patch.meta.is_empty() {
        cfg.insert("meta".into(), Value::Object(patch.meta.clone()));
    }
    node.config = cfg;
}

fn columns(defs: &[ColumnDef]) -> IndexMap<String, Column> {
    defs.iter()
        .map(|c| {
            (
                c.name.clone(),
                Column {
                    name: c.name.clone(),
                    description: c.description.clone().unwrap_or_default(),
                    data_type: c.data_type.clone(),
                    meta: c.meta.clone(),
                    tags: c.tags.clone(),
                    quote: c.quote,
                },
            )
        })
        .collect()
}

fn source_node(pkg: &str, src: &SourceDef, t: &super::properties::SourceTableDef, file: &str, idx: &NameIndex, dirs: &[String]) -> Node {
    let name = format!("{}.{}", src.name, t.name);
    let mut n = Node::new(ResourceType::Source, pkg, &name, file);
    n.name = t.name.clone();
    n.unique_id = format!("source.{pkg}.{}.{}", src.name, t.name);
    n.fqn = std::iter::once(pkg.to_string()).chain(dirs.iter().cloned()).chain([src.name.clone(), t.name.clone()]).collect();
    n.path = file.to_string();
    n.description = t.description.clone().unwrap_or_default();
    n.columns = columns(&t.columns);
    n.schema = src.schema.clone().unwrap_or_else(|| src.name.clone());
    n.database = src.database.clone().unwrap_or_default();
    let identifier = t.identifier.clone().unwrap_or_else(|| t.name.clone());
    n.alias = identifier.clone();
    n.line = idx.first(&t.name);
    let mut cfg = src.config.clone();
    merge_config(&mut cfg, &t.config);
    n.config = cfg;
    let mut meta = src.meta.clone();
    meta.extend(t.meta.clone());
    let ext = t.external.clone().unwrap_or_default();
    let fmt_loc = |s: &str| s.replace("{name}", &t.name).replace("{identifier}", &identifier).replace("{source_name}", &src.name);
    let location = ext
        .get("location")
        .and_then(Value::as_str)
        .or_else(|| n.config.get("external_location").and_then(Value::as_str))
        .or_else(|| meta.get("external_location").and_then(Value::as_str))
        .map(fmt_loc);
    let format =
        ext.get("file_format").or(ext.get("format")).or(meta.get("format")).or(n.config.get("format")).and_then(Value::as_str).map(|s| s.to_ascii_lowercase());
    let mut options = Map::new();
    if let Some(Value::Object(o)) = ext.get("options").or(meta.get("options")) {
        options = o.clone();
    }
    n.source = Some(SourceInfo {
        source_name: src.name.clone(),
        source_description: src.description.clone().unwrap_or_default(),
        identifier,
        loaded_at_field: t.loaded_at_field.clone().or(src.loaded_at_field.clone()),
        freshness: t.freshness.clone().or(src.freshness.clone()),
        meta,
        source_meta: src.meta.clone(),
        location,
        format,
        options,
    });
    n
}

enum TestTarget {
    Node { name: String, uid: String },
    Source { source: String, table: String, uid: String },
}

struct PendingTest {
    target_name: String,
    target_uid: String,
    is_source: bool,
    source: Option<(String, String)>,
    model_name: String,
    column: Option<String>,
    entry: Value,
    file: String,
    line: usize,
    dirs: Vec<String>,
}

fn collect_tests(
    out: &mut Vec<PendingTest>,
    target: &TestTarget,
    file: &str,
    idx: &NameIndex,
    dirs: &[String],
    model_tests: Vec<Value>,
    cols: &[ColumnDef],
) -> Result<(), LoadError> {
    let (target_name, uid, is_source, source, model_name) = match target {
        TestTarget::Node { name, uid } => (name.clone(), uid.clone(), false, None, name.clone()),
        TestTarget::Source { source, table, uid } => (format!("{source}_{table}"), uid.clone(), true, Some((source.clone(), table.clone())), table.clone()),
    };
    let base_line = idx.first(&model_name).unwrap_or(1);
    let mut push = |entry: Value, column: Option<String>| {
        let line = column.as_ref().and_then(|c| idx.after(c, base_line)).unwrap_or(base_line);
        out.push(PendingTest {
            target_name: target_name.clone(),
            target_uid: uid.clone(),
            is_source,
            source: source.clone(),
            model_name: model_name.clone(),
            column,
            entry,
            file: file.to_string(),
            line,
            dirs: dirs.to_vec(),
        });
    };
    for t in model_tests {
        push(t, None);
    }
    for c in cols {
        for t in c.all_tests() {
            push(t, Some(c.name.clone()));
        }
    }
    Ok(())
}

fn build_generic_test(t: &PendingTest, pkg: &str, jinja: &JinjaEnv, tests_tree: &ConfigTree) -> Result<Option<Node>, LoadError> {
    let entry = parse_entry(&t.entry).map_err(|message| LoadError::Located { file: t.file.clone(), line: t.line, message })?;
    // The test macro must exist.
    let macro_name = format!("test_{}", entry.name);
    let ns_pkg = entry.namespace.clone();
    let found = match &ns_pkg {
        Some(ns) => jinja.macros.get(ns, &macro_name).is_some(),
        None => {
            [pkg, crate::jinja::BUILTIN_PACKAGE].iter().any(|p| jinja.macros.get(p, &macro_name).is_some())
                || jinja.macros.by_package.values().any(|m| m.contains_key(&macro_name))
        }
    };
    if !found {
        let known: Vec<String> = jinja.macros.by_package.values().flat_map(|m| m.keys()).filter_map(|k| k.strip_prefix("test_").map(String::from)).collect();
        let hint =
            crate::graph::suggest(&entry.name, known.iter().map(String::as_str)).map(|s| format!("\n  hint: did you mean '{s}'?")).unwrap_or_else(|| {
                "\n  hint: define it with {% test name(model, column_name) %} in macros/ or tests/generic/, or install the package that provides it".into()
            });
        let what = match &t.column {
            Some(c) => format!("column '{}' of '{}'", c, t.model_name),
            None => format!("'{}'", t.model_name),
        };
        return Err(LoadError::Located {
            file: t.file.clone(),
            line: t.line,
            message: format!(
                "unknown generic test '{}' on {what}{hint}",
                entry.namespace.as_ref().map(|n| format!("{n}.{}", entry.name)).unwrap_or(entry.name.clone())
            ),
        });
    }
    let test_type = match &entry.namespace {
        Some(ns) => format!("{ns}_{}", entry.name),
        None => entry.name.clone(),
    };
    let test_type = if t.is_source { format!("source_{test_type}") } else { test_type };
    let mut name_args = entry.args.clone();
    if let Some(c) = &t.column {
        name_args.insert("column_name".into(), Value::String(c.clone()));
    }
    let (short, full) = synthesize_names(&test_type, &t.target_name, &name_args);
    let name = entry.custom_name.clone().unwrap_or(full.clone());
    let model_expr = match &t.source {
        Some((s, tb)) => format!("{{{{ get_where_subquery(source('{s}', '{tb}')) }}}}"),
        None => format!("{{{{ get_where_subquery(ref('{}')) }}}}", t.model_name),
    };
    let mut kwargs = entry.args.clone();
    if let Some(c) = &t.column {
        kwargs.insert("column_name".into(), Value::String(c.clone()));
    }
    kwargs.insert("model".into(), Value::String(model_expr.clone()));
    let hash = test_hash(&name, &entry.name, &kwargs, entry.namespace.as_deref());
    let mut n = Node::new(ResourceType::Test, pkg, &name, &t.file);
    n.unique_id = format!("test.{pkg}.{name}.{hash}");
    n.path = format!("{}.sql", if entry.custom_name.is_some() { name.clone() } else { short });
    n.fqn = std::iter::once(pkg.to_string()).chain(t.dirs.iter().cloned()).chain([name.clone()]).collect();
    n.raw_code = format!("{{{{ test_{}(**_dbt_generic_test_kwargs) }}}}", entry.name);
    n.description = entry.description.clone().unwrap_or_default();
    n.column_name = t.column.clone();
    n.attached_node = Some(t.target_uid.clone());
    n.line = Some(t.line);
    n.patch_path = Some(t.file.clone());
    n.test_metadata = Some(super::nodes::TestMetadata { name: entry.name.clone(), kwargs: kwargs.clone(), namespace: entry.namespace.clone() });
    // Config: defaults < tests tree < entry config.
    let mut cfg = default_config(ResourceType::Test);
    merge_config(&mut cfg, &render_config_values(jinja, tests_tree.resolve(&n.fqn), &t.file)?);
    merge_config(&mut cfg, &render_config_values(jinja, entry.config.clone(), &t.file)?);
    if let Some(Value::String(s)) = cfg.get("severity") {
        let up = s.to_ascii_uppercase();
        if up != "ERROR" && up != "WARN" {
            return Err(LoadError::Located {
                file: t.file.clone(),
                line: t.line,
                message: format!("test '{name}': severity must be 'error' or 'warn', got '{s}'"),
            });
        }
    }
    n.config = cfg;
    // Dependencies: the target plus refs/sources inside the arguments. The
    // target needs no rendering; arguments that call ref()/source() do.
    match &t.source {
        Some((s, tb)) => n.sources = vec![(s.clone(), tb.clone())],
        None => n.refs = vec![RefCall { name: t.model_name.clone(), package: None, version: None }],
    }
    let mut src = String::new();
    collect_arg_exprs(&Value::Object(entry.args.clone()), &mut src);
    if src.is_empty() {
        return Ok(Some(n));
    }
    let src = format!("{model_expr}{src}");
    let rctx = Arc::new(RenderCtx::new(&n.unique_id, pkg, Phase::Parse));
    jinja.render_node(&t.file, &src, rctx.clone()).map_err(|e| LoadError::Located {
        file: t.file.clone(),
        line: t.line,
        message: format!("test '{name}': {}", e.message),
    })?;
    let cap = rctx.take_captured();
    n.refs = cap.refs;
    n.sources = cap.sources;
    Ok(Some(n))
}

/// Appends `{{ expr }}` for every argument string that calls ref()/source().
fn collect_arg_exprs(v: &Value, out: &mut String) {
    match v {
        Value::String(s) if s.contains("ref(") || s.contains("source(") => {
            if s.contains("{{") {
                out.push_str(s);
            } else {
                out.push_str(&format!("{{{{ {s} }}}}"));
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_arg_exprs(x, out)),
        Value::Object(m) => m.values().for_each(|x| collect_arg_exprs(x, out)),
        _ => {}
    }
}

/// `this` for a node before its final schema is known (parse pass).
fn this_value(node: &Node, settings: &Settings) -> minijinja::Value {
    let schema = if node.schema.is_empty() { settings.target.schema.clone() } else { node.schema.clone() };
    minijinja::Value::from_object(crate::jinja::Relation::new(&node.database, &schema, &node.alias))
}

/// The `model`/`node` object macros see.
pub fn model_value(node: &Node) -> minijinja::Value {
    minijinja::Value::from_serialize(serde_json::json!({
        "unique_id": node.unique_id,
        "name": node.name,
        "resource_type": node.resource_type.as_str(),
        "package_name": node.package_name,
        "path": node.path,
        "original_file_path": node.original_file_path,
        "fqn": node.fqn,
        "version": node.version,
        "config": node.config,
        "tags": node.tags(),
        "schema": node.schema,
        "alias": node.alias,
        "database": node.database,
        "description": node.description,
    }))
}
