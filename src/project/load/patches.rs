//! Stage 5: YAML property files. Patches (descriptions, columns, config,
//! meta) go onto their models, seeds, snapshots and analyses; sources become
//! nodes; data tests, unit tests, exposures, macro descriptions and the
//! manifest-only kinds (groups, metrics, ...) are collected for later
//! stages.

use indexmap::IndexMap;
use rayon::prelude::*;
use serde_json::{Map, Value, json};

use super::files::NodeSet;
use super::generic::{PendingTest, TestTarget, collect_tests};
use super::packages::{PackageDir, units};
use super::versions;
use super::{LoadError, list, read, split_path};
use crate::config::{Settings, merge_config};
use crate::fs::FileSystem;
use crate::jinja::JinjaEnv;
use crate::project::nodes::{Column, Macro, Node, ResourceType, SourceInfo};
use crate::project::properties::{ColumnDef, NodePatch, PropertiesFile, SourceDef, SourceTableDef};
use crate::util::yaml::NameIndex;

/// Keys whose strings are not rendered with the file, as dbt's
/// `SchemaYamlRenderer`: descriptions (docs render them), tests (rendered
/// when they compile), hooks (rendered when they run) and `loaded_at_query`.
const UNRENDERED: &[&str] = &["description", "data_tests", "tests", "pre_hook", "post_hook", "pre-hook", "post-hook", "loaded_at_query"];

/// The resource lists whose strings dbt renders when it reads a property
/// file (`schema: "{{ target.schema }}"` on a source, a column's
/// `data_type: "{{ 'int' if ... }}"`, `meta`, `config`, ...).
const RENDERED_LISTS: &[&str] = &["models", "seeds", "snapshots", "analyses", "sources", "exposures"];

/// A property file with Jinja in its strings rendered, as dbt renders it.
fn render_properties(jinja: &JinjaEnv, file: &str, text: &str) -> Result<PropertiesFile, LoadError> {
    let mut doc: Value = crate::util::yaml::from_str(text).map_err(|message| LoadError::Yaml { file: file.into(), message })?;
    for key in RENDERED_LISTS {
        if let Some(list) = doc.get_mut(*key) {
            render_strings(jinja, file, list)?;
        }
    }
    serde_json::from_value(doc).map_err(|e| LoadError::Yaml { file: file.into(), message: e.to_string() })
}

fn render_strings(jinja: &JinjaEnv, file: &str, v: &mut Value) -> Result<(), LoadError> {
    match v {
        Value::String(s) if s.contains("{{") || s.contains("{%") => *s = jinja.render_str(file, s, None, &[])?,
        Value::Array(a) => a.iter_mut().try_for_each(|x| render_strings(jinja, file, x))?,
        Value::Object(o) => o.iter_mut().filter(|(k, _)| !UNRENDERED.contains(&k.as_str())).try_for_each(|(_, x)| render_strings(jinja, file, x))?,
        _ => {}
    }
    Ok(())
}

/// A property file read and parsed: (package, base folder, file, text, properties).
type PropsFile = (String, String, String, String, PropertiesFile);

/// A YAML entry kept for a later stage: (file, file text, the entry).
pub type Entry = (String, String, Map<String, Value>);

/// What the property files declared beyond patches and sources.
#[derive(Default)]
pub struct Declared {
    pub tests: Vec<PendingTest>,
    pub unit_tests: Vec<Entry>,
    pub exposures: Vec<Entry>,
    /// groups, metrics, semantic_models, saved_queries.
    pub other: IndexMap<&'static str, IndexMap<String, Value>>,
}

pub fn apply(
    settings: &Settings,
    packages: &[PackageDir],
    fs: &dyn FileSystem,
    jinja: &JinjaEnv,
    set: &mut NodeSet,
    macros: &mut IndexMap<String, Macro>,
    warnings: &mut Vec<String>,
) -> Result<Declared, LoadError> {
    // (package, base folder, file) of every property file, in dbt's order
    let mut found: Vec<(String, String, String)> = vec![];
    let mut seen_yaml = std::collections::HashSet::new();
    for unit in units(settings, packages) {
        let p = unit.paths;
        for base in [&p.models, &p.seeds, &p.snapshots, &p.analyses, &p.macros, &p.tests].into_iter().flatten() {
            for f in list(fs, base, &[".yml", ".yaml"])? {
                if seen_yaml.insert(f.clone()) {
                    found.push((unit.package.to_string(), base.clone(), f));
                }
            }
        }
    }
    // Files are read, parsed and rendered in parallel; the first error in
    // file order is reported, as a sequential pass would.
    let parsed: Vec<Result<Option<PropsFile>, LoadError>> = found
        .into_par_iter()
        .map(|(pkg, base, f)| {
            let text = read(fs, &f)?;
            if text.trim().is_empty() {
                return Ok(None);
            }
            let mut pf: PropertiesFile = crate::util::yaml::from_str(&text).map_err(|message| LoadError::Yaml { file: f.clone(), message })?;
            if text.contains("{{") || text.contains("{%") {
                pf = render_properties(jinja, &f, &text)?;
            }
            Ok(Some((pkg, base, f, text, pf)))
        })
        .collect();
    let props: Vec<PropsFile> = parsed.into_iter().filter_map(Result::transpose).collect::<Result<_, _>>()?;

    for (pkg, base, file, text, pf) in &props {
        for patch in pf.snapshots.iter().filter(|p| p.relation.is_some()) {
            add_yaml_snapshot(set, pkg, patch, base, file, text)?;
        }
    }
    let NodeSet { nodes, by_name } = set;
    let mut yaml_tests: Vec<PendingTest> = vec![];
    let mut other: IndexMap<&'static str, IndexMap<String, Value>> = IndexMap::new();
    let mut unit_tests: Vec<(String, String, Map<String, Value>)> = vec![];
    let mut exposures: Vec<(String, String, Map<String, Value>)> = vec![];
    let mut macro_patches: Vec<(String, String, crate::project::properties::MacroPatch)> = vec![];
    for (pkg, base, file, text, pf) in props {
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
                if rt == ResourceType::Model && !patch.versions.is_empty() {
                    let t = versions::Target { nodes, by_name, package: &pkg, file: &file, idx: &idx, dirs: &dirs };
                    versions::apply(t, patch, &mut yaml_tests, warnings)?;
                    continue;
                }
                let key_type = if rt == ResourceType::Analysis { ResourceType::Analysis } else { ResourceType::Model };
                let mut uid = by_name.get(&(key_type, pkg.clone(), format!("{}:", patch.name))).cloned();
                // dbt patches the package's node when it is enabled, else the
                // root project's namesake (its ref lookup's fallback)
                if let Some(u) = &uid
                    && pkg != settings.project_name
                    && disabled_by_project(settings, packages, &nodes[u])
                    && let Some(root) =
                        by_name.get(&(key_type, settings.project_name.clone(), format!("{}:", patch.name))).filter(|r| nodes[*r].resource_type == rt)
                {
                    uid = Some(root.clone());
                }
                // Another kind of node by that name (a seed under `models:`):
                // as dbt, a warning, no patch, but its tests are the node's.
                if let Some(u) = uid.as_ref().filter(|u| nodes[*u].resource_type != rt && rt != ResourceType::Analysis) {
                    let kind = nodes[u].resource_type;
                    warnings.push(format!(
                        "{file}:{}: '{}' is a {kind} node, but it is specified in the {rt}s section of {file}. To fix this error, place the `{}` specification under the {kind}s key instead.",
                        idx.first(&patch.name).unwrap_or(1),
                        patch.name,
                        patch.name
                    ));
                    let target = TestTarget::Node { name: patch.name.clone(), uid: u.clone(), version: None };
                    collect_tests(&mut yaml_tests, &pkg, &target, &file, &idx, &dirs, patch.all_tests(), &patch.columns)?;
                    continue;
                }
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
                let target = TestTarget::Node { name: patch.name.clone(), uid: uid.clone(), version: None };
                collect_tests(&mut yaml_tests, &pkg, &target, &file, &idx, &dirs, patch.all_tests(), &patch.columns)?;
            }
        }
        for src in &pf.sources {
            for t in &src.tables {
                let n = source_node(&pkg, src, t, &file, &idx, &dirs, &settings.target.database);
                let target = TestTarget::Source { source: src.name.clone(), table: t.name.clone(), uid: n.unique_id.clone() };
                collect_tests(&mut yaml_tests, &pkg, &target, &file, &idx, &dirs, t.data_tests.iter().chain(t.tests.iter()).cloned().collect(), &t.columns)?;
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
            macro_patches.push((pkg.clone(), file.clone(), m));
        }
        // Packages' unit tests and exposures describe the package's own
        // development; like `dbt build` on an installed package, skip them.
        let is_root = pkg == settings.project_name;
        for u in pf.unit_tests.into_iter().filter(|_| is_root) {
            unit_tests.push((file.clone(), text.clone(), u));
        }
        for e in pf.exposures.into_iter().filter(|_| is_root) {
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
                other.entry(kind).or_default().insert(format!("{prefix}.{pkg}.{name}"), Value::Object(item));
            }
        }
    }
    for (pkg, file, m) in macro_patches {
        if let Some(mac) = macros.get_mut(&format!("macro.{pkg}.{}", m.name)) {
            mac.description = m.description.unwrap_or_default();
            // dbt's MacroArgument: name, type (null), description ("")
            let args = m
                .arguments
                .iter()
                .map(|a| json!({"name": a.get("name"), "type": a.get("type"), "description": a.get("description").cloned().unwrap_or(json!(""))}))
                .collect();
            mac.patch = Some((file.clone(), args));
        } else {
            warnings.push(format!("{file}: macro '{}' is described here but no such macro exists", m.name));
        }
    }

    Ok(Declared { tests: yaml_tests, unit_tests, exposures, other })
}

/// Whether the project files disable `n` (`+enabled: false` in the root's
/// `dbt_project.yml`, else in its package's), as dbt knows before it reads
/// properties files.
fn disabled_by_project(settings: &Settings, packages: &[PackageDir], n: &Node) -> bool {
    let root = match n.resource_type {
        ResourceType::Seed => &settings.seeds,
        ResourceType::Snapshot => &settings.snapshots,
        _ => &settings.models,
    };
    let enabled = |tree: &crate::config::ConfigTree| tree.resolve_both(&n.fqn).0.get("enabled").and_then(Value::as_bool);
    let own = packages.iter().find(|p| p.name == n.package_name).and_then(|p| enabled(p.tree(n.resource_type)));
    enabled(root).or(own) == Some(false)
}

/// A dbt 1.9+ snapshot defined in YAML (`relation: ref('m')` or
/// `source('s', 't')`): a node whose SQL is `select * from <relation>`, as
/// dbt's `_add_yaml_snapshot_nodes_to_manifest` makes it. The entry then
/// patches it like any snapshot.
fn add_yaml_snapshot(set: &mut NodeSet, pkg: &str, patch: &NodePatch, base: &str, file: &str, text: &str) -> Result<(), LoadError> {
    let relation = patch.relation.as_deref().unwrap_or_default();
    let rel = relation.trim().trim_start_matches("{{").trim_end_matches("}}").trim();
    if !(rel.starts_with("ref(") || rel.starts_with("source(")) || !rel.ends_with(')') {
        return Err(LoadError::Located {
            file: file.to_string(),
            line: NameIndex::new(text).first(&patch.name).unwrap_or(1),
            message: format!(
                "snapshot '{}': relation must be a ref() or source() call, not '{relation}'\n  hint: relation: ref('stg_orders') or relation: source('raw', 'orders')",
                patch.name
            ),
        });
    }
    let (yml_rel, dirs, _) = split_path(base, file);
    let mut n = Node::new(ResourceType::Snapshot, pkg, &patch.name, file);
    n.path = format!("{yml_rel}/{}.sql", patch.name);
    n.fqn = std::iter::once(pkg.to_string()).chain(dirs.iter().cloned()).chain([patch.name.clone()]).collect();
    n.raw_code = format!("select * from {{{{ {rel} }}}}");
    set.add(n)
}

pub(super) fn apply_patch(node: &mut Node, patch: &NodePatch, file: &str, idx: &NameIndex) {
    node.patch_path = Some(file.to_string());
    node.line = idx.first(&patch.name);
    if let Some(ts) = &patch.time_spine {
        node.extra.insert("time_spine".into(), ts.clone());
    }
    if let Some(d) = &patch.deprecation_date {
        node.extra.insert("deprecation_date".into(), d.clone());
    }
    if let Some(d) = &patch.description {
        node.description = d.clone();
    }
    node.columns = columns(&patch.columns);
    let mut cfg = patch.config.clone();
    if !patch.meta.is_empty() {
        cfg.insert("meta".into(), Value::Object(patch.meta.clone()));
    }
    node.config = cfg.into();
}

/// A constraint with dbt's defaults filled in.
fn constraint(c: &Map<String, Value>) -> Value {
    let mut m = Map::new();
    m.insert("type".into(), c.get("type").cloned().unwrap_or(Value::Null));
    for (k, d) in [
        ("name", Value::Null),
        ("expression", Value::Null),
        ("warn_unenforced", Value::Bool(true)),
        ("warn_unsupported", Value::Bool(true)),
        ("to", Value::Null),
        ("to_columns", Value::Array(vec![])),
    ] {
        m.insert(k.into(), c.get(k).cloned().unwrap_or(d));
    }
    Value::Object(m)
}

pub(super) fn columns(defs: &[ColumnDef]) -> IndexMap<String, Column> {
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
                    constraints: c.constraints.iter().map(constraint).collect(),
                    granularity: c.granularity.clone(),
                },
            )
        })
        .collect()
}

fn source_node(pkg: &str, src: &SourceDef, t: &SourceTableDef, file: &str, idx: &NameIndex, dirs: &[String], target_database: &str) -> Node {
    let name = format!("{}.{}", src.name, t.name);
    let mut n = Node::new(ResourceType::Source, pkg, &name, file);
    n.name = t.name.clone();
    n.unique_id = format!("source.{pkg}.{}.{}", src.name, t.name);
    n.fqn = std::iter::once(pkg.to_string()).chain(dirs.iter().cloned()).chain([src.name.clone(), t.name.clone()]).collect();
    n.path = file.to_string();
    n.description = t.description.clone().unwrap_or_default();
    n.columns = columns(&t.columns);
    n.schema = src.schema.clone().unwrap_or_else(|| src.name.clone());
    // the manifest's `unrendered_schema`/`unrendered_database`: as declared
    // (dp renders the whole file first: Jinja in them is already rendered)
    for (k, v) in [("unrendered_schema", &src.schema), ("unrendered_database", &src.database)] {
        if let Some(v) = v {
            n.extra.insert(k.into(), Value::String(v.clone()));
        }
    }
    // dbt: a source without `database` is in the target's database
    n.database = src.database.clone().unwrap_or_else(|| target_database.to_string());
    // `quoting:` as declared, the table's keys over the source's (the
    // project's `quoting:` applies beneath it when the relation renders)
    let mut quoting = src.quoting.as_ref().and_then(Value::as_object).cloned().unwrap_or_default();
    quoting.extend(t.quoting.as_ref().and_then(Value::as_object).cloned().unwrap_or_default());
    if !quoting.is_empty() {
        n.extra.insert("quoting".into(), Value::Object(quoting));
    }
    let identifier = t.identifier.clone().unwrap_or_else(|| t.name.clone());
    n.alias = identifier.clone();
    n.line = idx.first(&t.name);
    let mut cfg = src.config.clone();
    merge_config(&mut cfg, &t.config);
    // Tags of the source and of the table apply to the table (as dbt's).
    let mut tags: Vec<Value> = cfg.get("tags").and_then(Value::as_array).cloned().unwrap_or_default();
    for t in src.tags.iter().chain(t.tags.iter()) {
        if !tags.iter().any(|x| x.as_str() == Some(t)) {
            tags.push(Value::String(t.clone()));
        }
    }
    if !tags.is_empty() {
        cfg.insert("tags".into(), Value::Array(tags));
    }
    n.config = cfg.into();
    // `freshness: null` (dbt writes it so in the manifest)
    let off = match n.config.get("freshness") {
        Some(f) => f.is_null(),
        None => t.freshness.as_ref().or(src.freshness.as_ref()).is_some_and(Value::is_null),
    };
    if off {
        n.extra.insert("freshness".into(), Value::Null);
    }
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
        // `config: {freshness: ...}` (dbt 1.10+) wins, table over source;
        // an explicit `freshness: null` turns it off.
        freshness: match n.config.get("freshness") {
            Some(Value::Null) => None,
            Some(f) => Some(f.clone()),
            None => t.freshness.clone().or(src.freshness.clone()).filter(|f| !f.is_null()),
        },
        meta,
        source_meta: src.meta.clone(),
        location,
        format,
        options,
    });
    n
}
