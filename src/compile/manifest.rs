//! `target/manifest.json` in dbt's v12 shape, so tools that read dbt
//! artifacts (docs sites, lineage tools, state comparison) can consume it.

use serde_json::{Map, Value, json};

use super::Compiled;
use super::fields::Fields;
use super::macro_deps::MacroDeps;
use crate::graph::Dag;
use crate::project::generic_tests::py_repr;
use crate::project::load::Project;
use crate::project::nodes::{Materialization, Node, ResourceType};
use crate::util::FastSet;
use std::collections::{BTreeSet, HashMap};

pub const SCHEMA_URL: &str = "https://schemas.getdbt.com/dbt/manifest/v12.json";

/// dbt's checksum: the sha256 of the node's file (seeds: computed at load).
fn checksum(n: &Node) -> Value {
    if n.test_metadata.is_some() {
        return json!({"name": "none", "checksum": ""});
    }
    n.extra.get("checksum").cloned().unwrap_or_else(|| crate::util::checksum::file_checksum(&n.raw_code))
}

/// Hooks as dbt stores them: `[{sql, transaction, index}]`.
fn hooks(v: Option<&Value>) -> Value {
    let items: Vec<Value> = match v {
        Some(Value::Array(a)) => a.clone(),
        Some(Value::Null) | None => vec![],
        Some(other) => vec![other.clone()],
    };
    Value::Array(
        items
            .into_iter()
            .map(|h| match h {
                Value::Object(o) => Value::Object(o),
                Value::String(s) => json!({"sql": s, "transaction": true, "index": null}),
                other => json!({"sql": other.to_string(), "transaction": true, "index": null}),
            })
            .collect(),
    )
}

/// dbt 1.11's config of a model (`ModelConfig`), every key in its order
/// with its default; a seed's (`SeedConfig`) shares the keys up to
/// `concurrent_batches`.
const MODEL_CONFIG: &[(&str, &str)] = &[
    ("enabled", "true"),
    ("alias", "null"),
    ("schema", "null"),
    ("database", "null"),
    ("tags", "[]"),
    ("meta", "{}"),
    ("group", "null"),
    ("static_analysis", "null"),
    ("materialized", "\"view\""),
    ("incremental_strategy", "null"),
    ("batch_size", "null"),
    ("lookback", "1"),
    ("begin", "null"),
    ("persist_docs", "{}"),
    ("post-hook", "[]"),
    ("pre-hook", "[]"),
    ("quoting", "{}"),
    ("column_types", "{}"),
    ("full_refresh", "null"),
    ("unique_key", "null"),
    ("on_schema_change", "\"ignore\""),
    ("on_configuration_change", "\"apply\""),
    ("grants", "{}"),
    ("packages", "[]"),
    ("docs", r#"{"show": true, "node_color": null}"#),
    ("contract", r#"{"enforced": false, "alias_types": true}"#),
    ("event_time", "null"),
    ("concurrent_batches", "null"),
    ("access", "\"protected\""),
    ("freshness", "null"),
];

/// `SeedConfig`'s own keys, after the model's up to `concurrent_batches`.
const SEED_CONFIG: &[(&str, &str)] = &[("delimiter", "\",\""), ("quote_columns", "null")];

/// `SnapshotConfig`'s own keys, after the model's up to `concurrent_batches`.
const SNAPSHOT_CONFIG: &[(&str, &str)] = &[
    ("strategy", "null"),
    ("target_schema", "null"),
    ("target_database", "null"),
    ("updated_at", "null"),
    ("check_cols", "null"),
    ("snapshot_meta_column_names", r#"{"dbt_valid_to": null, "dbt_valid_from": null, "dbt_scd_id": null, "dbt_updated_at": null, "dbt_is_deleted": null}"#),
    ("dbt_valid_to_current", "null"),
];

/// `TestConfig`.
const TEST_CONFIG: &[(&str, &str)] = &[
    ("enabled", "true"),
    ("alias", "null"),
    ("schema", "\"dbt_test__audit\""),
    ("database", "null"),
    ("tags", "[]"),
    ("meta", "{}"),
    ("group", "null"),
    ("static_analysis", "null"),
    ("materialized", "\"test\""),
    ("severity", "\"ERROR\""),
    ("store_failures", "null"),
    ("store_failures_as", "null"),
    ("where", "null"),
    ("limit", "null"),
    ("fail_calc", "\"count(*)\""),
    ("warn_if", "\"!= 0\""),
    ("error_if", "\"!= 0\""),
];

/// The defaults dbt writes for a node of this type (models, seeds, data
/// tests, analyses, snapshots); `None` for the others.
/// Built once per type.
fn config_defaults(rt: ResourceType) -> Option<&'static Map<String, Value>> {
    use std::sync::LazyLock;
    fn build(keys: Vec<&(&str, &str)>) -> Map<String, Value> {
        keys.into_iter().map(|(k, v)| (k.to_string(), serde_json::from_str(v).expect("a config default is JSON"))).collect()
    }
    static MODEL: LazyLock<Map<String, Value>> = LazyLock::new(|| build(MODEL_CONFIG.iter().collect()));
    static SEED: LazyLock<Map<String, Value>> = LazyLock::new(|| build(MODEL_CONFIG.iter().take_while(|(k, _)| *k != "access").chain(SEED_CONFIG).collect()));
    static TEST: LazyLock<Map<String, Value>> = LazyLock::new(|| build(TEST_CONFIG.iter().collect()));
    // an analysis' `NodeConfig`: the model's keys up to `concurrent_batches`
    static ANALYSIS: LazyLock<Map<String, Value>> = LazyLock::new(|| build(MODEL_CONFIG.iter().take_while(|(k, _)| *k != "access").collect()));
    static SNAPSHOT: LazyLock<Map<String, Value>> = LazyLock::new(|| {
        let mut m = build(MODEL_CONFIG.iter().take_while(|(k, _)| *k != "access").chain(SNAPSHOT_CONFIG).collect());
        m.insert("materialized".into(), json!("snapshot"));
        m
    });
    match rt {
        ResourceType::Model => Some(&MODEL),
        ResourceType::Analysis => Some(&ANALYSIS),
        ResourceType::Snapshot => Some(&SNAPSHOT),
        ResourceType::Seed => Some(&SEED),
        ResourceType::Test => Some(&TEST),
        _ => None,
    }
}

/// A node's config as dbt writes it: dbt's keys in dbt's order with their
/// defaults, the node's values over them (`docs` and `contract` merged key
/// by key), then the node's own keys dbt does not know, in their order.
fn config(n: &Node, from_macro: Option<&Map<String, Value>>) -> Value {
    // a test macro's config() under the project's and YAML's, as at run time
    let mut set = super::with_macro_config(n, from_macro).into_map();
    // dbt's TestConfig has no hooks
    for k in ["pre-hook", "post-hook"] {
        if !matches!(n.resource_type, ResourceType::Source | ResourceType::Test) || n.config.contains_key(k) {
            set.insert(k.into(), hooks(n.config.get(k)));
        }
    }
    if let Some(Value::String(t)) = set.get("tags").cloned() {
        set.insert("tags".into(), json!([t]));
    }
    let Some(defaults) = config_defaults(n.resource_type) else { return Value::Object(set) };
    let mut c = defaults.clone();
    for (k, v) in set {
        match (c.get_mut(&k), v) {
            (Some(Value::Object(d)), Value::Object(o)) if matches!(k.as_str(), "docs" | "contract" | "snapshot_meta_column_names") => d.extend(o),
            (Some(slot), v) => *slot = v,
            (None, v) => {
                c.insert(k, v);
            }
        }
    }
    Value::Object(c)
}

fn columns(n: &Node) -> Value {
    let mut m = Map::new();
    for (k, c) in &n.columns {
        m.insert(
            k.clone(),
            json!({"name": c.name, "description": c.description, "meta": c.meta, "data_type": c.data_type,
                   "constraints": c.constraints, "quote": c.quote, "config": {"meta": c.meta, "tags": c.tags}, "tags": c.tags,
                   "granularity": c.granularity, "doc_blocks": []}),
        );
    }
    Value::Object(m)
}

/// dbt's `original_file_path`: relative to the node's own package root
/// (`models/x.sql`, not `dbt_packages/pkg/models/x.sql`). dp keeps the path
/// from the project root internally, for reading files and for errors.
fn package_relative<'a>(project: &Project, n: &'a Node) -> &'a str {
    relative_to_package(project, &n.original_file_path)
}

/// A macro's `arguments`: those its properties file documents, else with
/// the `validate_macro_args` flag its signature's (not for the generic
/// tests of `<test-path>/generic/`, which dbt parses apart), else none.
fn macro_arguments(project: &Project, m: &crate::project::nodes::Macro) -> Value {
    let rel = relative_to_package(project, &m.path);
    let generic =
        project.settings.paths.tests.iter().map(String::as_str).chain(["tests"]).any(|t| rel.starts_with(&format!("{}/generic/", t.trim_end_matches('/'))));
    match &m.patch {
        Some((_, args)) if !args.is_empty() => json!(args),
        _ if !generic && project.settings.flags.get("validate_macro_args").and_then(Value::as_bool) == Some(true) => {
            Value::Array(m.arguments.iter().map(|a| json!({"name": a, "type": null, "description": ""})).collect())
        }
        _ => json!([]),
    }
}

/// dbt's `patch_path`: `<package of the YAML file>://<path in that package>`.
fn patch_path(project: &Project, path: &str) -> String {
    let install = project.settings.paths.packages.trim_end_matches('/');
    let package = path.strip_prefix(install).and_then(|p| p.strip_prefix('/')).and_then(|p| p.split_once('/')).map(|(pkg, _)| pkg);
    format!("{}://{}", package.unwrap_or(&project.settings.project_name), relative_to_package(project, path))
}

/// A path from the project root made relative to its package's root.
pub(super) fn relative_to_package<'a>(project: &Project, path: &'a str) -> &'a str {
    let install = project.settings.paths.packages.trim_end_matches('/');
    path.strip_prefix(install).and_then(|p| p.strip_prefix('/')).and_then(|p| p.split_once('/')).map(|(_, rest)| rest).unwrap_or(path)
}

/// What a node's manifest entry needs beyond the node: the parse-time
/// macro lists and the models' inferred primary keys.
pub struct Derived<'p> {
    pub deps: MacroDeps<'p>,
    primary_keys: HashMap<String, Vec<String>>,
    /// What generic tests' macros set with `config()` at parse.
    test_configs: HashMap<String, Map<String, Value>>,
}

impl<'p> Derived<'p> {
    pub fn new(project: &'p Project) -> Derived<'p> {
        Self::of(project, None)
    }

    /// What the entries of the nodes `only` (unique ids) need, when a
    /// manifest is written from the previous one (`super::manifest_reuse`):
    /// the other nodes' test configs and primary keys are not computed.
    pub fn of(project: &'p Project, only: Option<&FastSet<&str>>) -> Derived<'p> {
        let deps = MacroDeps::new(project);
        let test_configs = test_configs(project, &deps, only);
        Derived { deps, primary_keys: primary_keys(project, only), test_configs }
    }
}

/// dbt renders every generic test but `not_null` and `unique` at parse,
/// recording the `config()` calls its macro makes: the tests whose macro
/// (or a macro it calls) calls `config(` are rendered so.
fn test_configs(project: &Project, deps: &MacroDeps, only: Option<&FastSet<&str>>) -> HashMap<String, Map<String, Value>> {
    fn sets_config(project: &Project, deps: &MacroDeps, uid: &str, memo: &mut HashMap<String, bool>) -> bool {
        if let Some(b) = memo.get(uid) {
            return *b;
        }
        memo.insert(uid.to_string(), false);
        let Some(m) = project.macros.get(uid) else { return false };
        let calls_config = m.macro_sql.match_indices("config").any(|(i, _)| m.macro_sql[i + 6..].trim_start().starts_with('('));
        let b = calls_config || deps.of_macro(m).iter().any(|d| sets_config(project, deps, d, memo));
        memo.insert(uid.to_string(), b);
        b
    }
    let mut memo = HashMap::new();
    let tests: Vec<&Node> = project
        .nodes
        .values()
        .chain(project.disabled.values())
        .filter(|n| n.test_metadata.is_some() && only.is_none_or(|o| o.contains(n.unique_id.as_str())))
        .filter(|n| deps.test_macro(n).is_some_and(|m| sets_config(project, deps, &m, &mut memo)))
        .collect();
    use rayon::prelude::*;
    tests.par_iter().filter_map(|n| super::parse_test_config(project, n).filter(|c| !c.is_empty()).map(|c| (n.unique_id.clone(), c))).collect()
}

/// dbt's `infer_primary_key` for every model, sorted: a column with a
/// `primary_key` constraint, else the columns with both a `unique` (or
/// `unique_combination_of_columns`) and a `not_null` test, else the
/// columns with a unique test (enabled ones before disabled ones).
fn primary_keys(project: &Project, only: Option<&FastSet<&str>>) -> HashMap<String, Vec<String>> {
    #[derive(Default)]
    struct Tested {
        unique: BTreeSet<String>,
        disabled_unique: BTreeSet<String>,
        not_null: BTreeSet<String>,
    }
    let mut tested: HashMap<&str, Tested> = HashMap::new();
    let tests = project.nodes.values().map(|t| (t, true)).chain(project.disabled.values().map(|t| (t, false)));
    for (t, enabled) in tests {
        let (Some(tm), Some(model)) = (&t.test_metadata, &t.attached_node) else { continue };
        if only.is_some_and(|o| !o.contains(model.as_str())) {
            continue;
        }
        let columns: Vec<String> = match (tm.kwargs.get("column_name"), tm.kwargs.get("combination_of_columns")) {
            (Some(Value::String(c)), _) => vec![c.clone()],
            (_, Some(Value::Array(cs))) => cs.iter().filter_map(|c| c.as_str().map(String::from)).collect(),
            _ => continue,
        };
        let e = tested.entry(model.as_str()).or_default();
        for c in columns {
            match tm.name.as_str() {
                "unique" | "unique_combination_of_columns" if enabled => e.unique.insert(c),
                "unique" | "unique_combination_of_columns" => e.disabled_unique.insert(c),
                "not_null" => e.not_null.insert(c),
                _ => false,
            };
        }
    }
    let mut out = HashMap::new();
    for (uid, n) in &project.nodes {
        if n.resource_type != ResourceType::Model || only.is_some_and(|o| !o.contains(uid.as_str())) {
            continue;
        }
        let constrained = n.columns.iter().find(|(_, c)| c.constraints.iter().any(|k| k.get("type").and_then(Value::as_str) == Some("primary_key")));
        let pk: Vec<String> = match (constrained, tested.get(uid.as_str())) {
            (Some((name, _)), _) => vec![name.clone()],
            (None, Some(t)) => {
                let both: Vec<String> = t.not_null.iter().filter(|c| t.unique.contains(*c) || t.disabled_unique.contains(*c)).cloned().collect();
                if !both.is_empty() {
                    both
                } else if !t.unique.is_empty() {
                    t.unique.iter().cloned().collect()
                } else {
                    t.disabled_unique.iter().cloned().collect()
                }
            }
            (None, None) => vec![],
        };
        if !pk.is_empty() {
            out.insert(uid.clone(), pk);
        }
    }
    out
}

/// A node as dbt 1.11's manifest holds it, keys in dbt's order (models,
/// seeds, tests, snapshots, analyses).
fn node_json(project: &Project, n: &Node, compiled: Option<&Compiled>, derived: Option<&Derived>) -> Value {
    let mut o = Map::new();
    node_fields(&mut o, project, n, compiled, derived);
    Value::Object(o)
}

/// A node's manifest entry, field by field, in dbt's order, into a JSON map
/// or straight into the manifest's bytes ([`Fields`]).
fn node_fields(o: &mut impl Fields, project: &Project, n: &Node, compiled: Option<&Compiled>, derived: Option<&Derived>) {
    let deps = derived.map(|d| &d.deps);
    o.put("database", &n.database);
    o.put("schema", &n.schema);
    o.put("name", &n.name);
    o.put("resource_type", &n.resource_type.as_str());
    o.put("package_name", &n.package_name);
    o.put("path", &n.path);
    o.put("original_file_path", &package_relative(project, n));
    o.put("unique_id", &n.unique_id);
    o.put("fqn", &n.fqn);
    o.put("alias", &n.alias);
    o.put_value("checksum", checksum(n));
    let from_macro = derived.and_then(|d| d.test_configs.get(&n.unique_id));
    o.put_value("config", config(n, from_macro));
    o.put("tags", &n.tags());
    o.put("description", &n.description);
    o.put_value("columns", columns(n));
    o.put_value("meta", n.config.get("meta").cloned().unwrap_or(json!({})));
    o.put_value("group", n.config.get("group").cloned().unwrap_or(Value::Null));
    o.put_value("docs", json!({"show": true, "node_color": null}));
    // a generic test has no patch of its own in dbt
    let patch = n.patch_path.as_ref().filter(|_| n.test_metadata.is_none());
    o.put("patch_path", &patch.map(|p| patch_path(project, p)));
    o.put_value("build_path", Value::Null);
    let mut unrendered = n.extra.get(crate::project::load::UNRENDERED_CONFIG).cloned().unwrap_or(json!({}));
    if let (Some(from_macro), Value::Object(u)) = (from_macro, &mut unrendered) {
        // after the YAML entry's keys, before the project files'
        let at = n.extra.get(crate::project::load::ENTRY_CONFIG_LEN).and_then(Value::as_u64).map_or(u.len(), |l| l as usize);
        let mut ordered: Map<String, Value> = u.iter().take(at).map(|(k, v)| (k.clone(), v.clone())).collect();
        ordered.extend(from_macro.iter().filter(|(k, _)| !u.contains_key(*k)).map(|(k, v)| (k.clone(), v.clone())));
        ordered.extend(u.iter().skip(at).map(|(k, v)| (k.clone(), v.clone())));
        *u = ordered;
    }
    o.put_value("unrendered_config", unrendered);
    o.put("created_at", &0.0);
    let relation = match n.resource_type {
        ResourceType::Test | ResourceType::Analysis => Value::Null,
        _ if n.materialized() == Materialization::Ephemeral => Value::Null,
        _ => json!(n.dbt_relation_name(&project.settings)),
    };
    o.put_value("relation_name", relation);
    // dbt reads a node's file stripped of surrounding whitespace
    let raw = if n.resource_type == ResourceType::Snapshot { n.raw_code.as_str() } else { n.raw_code.trim() };
    o.put("raw_code", &raw);
    o.put_value("doc_blocks", json!([]));
    let macros: Vec<String> = deps.map(|d| d.of_node(n, compiled.is_some_and(|c| c.sql.contains_key(&n.unique_id)))).unwrap_or_default();
    if n.resource_type == ResourceType::Seed {
        o.put("root_path", &project.settings.root.display().to_string());
        o.put_value("depends_on", json!({"macros": macros}));
    } else {
        o.put("language", &"sql");
        o.put_value("refs", Value::Array(n.refs.iter().map(|r| json!({"name": r.name, "package": r.package, "version": r.version})).collect()));
        let mut sources: Vec<&(String, String)> = n.sources.iter().collect();
        if n.resource_type == ResourceType::Model && statically_parsed(&n.raw_code) {
            // dbt's static parser returns the sources as a set
            let mut seen = BTreeSet::new();
            sources.retain(|s| seen.insert(*s));
        }
        o.put_value("sources", Value::Array(sources.iter().map(|(s, t)| json!([s, t])).collect()));
        o.put_value("metrics", json!([]));
        o.put_value("functions", json!([]));
        o.put_value("depends_on", json!({"macros": macros, "nodes": n.depends_on}));
        let code = compiled.and_then(|c| c.sql.get(&n.unique_id));
        // an uncompiled node (`dbt parse`) has a null compiled_path and no `compiled`
        let path = code.map(|_| format!("{}/compiled/{}", project.settings.paths.target, super::compiled_path(n)));
        o.put("compiled_path", &path);
        if let Some(code) = code {
            o.put("compiled", &true);
            o.put("compiled_code", &code);
            let ctes: Vec<Value> = compiled
                .and_then(|c| c.ephemerals.get(&n.unique_id).map(|e| e.iter().map(|id| json!({"id": id, "sql": c.cte_sql.get(id)})).collect()))
                .unwrap_or_default();
            o.put("extra_ctes_injected", &true);
            o.put_value("extra_ctes", Value::Array(ctes));
        }
        let contract = n.config.get("contract");
        let flag = |k: &str, d: bool| contract.and_then(|c| c.get(k)).and_then(Value::as_bool).unwrap_or(d);
        let enforced = flag("enforced", false);
        let checksum = (enforced && n.resource_type == ResourceType::Model).then(|| contract_checksum(n));
        o.put_value("contract", json!({"enforced": enforced, "alias_types": flag("alias_types", true), "checksum": checksum}));
    }
    match n.resource_type {
        ResourceType::Model => {
            o.put_value("access", json!(n.config.get("access").cloned().unwrap_or(json!("protected"))));
            o.put_value("constraints", json!([]));
            o.put_value("version", n.version.as_deref().map(version_json).unwrap_or(Value::Null));
            let latest = n.extra.get("latest_version").map(|v| v.as_str().map(version_json).unwrap_or_else(|| v.clone()));
            o.put_value("latest_version", latest.unwrap_or(Value::Null));
            o.put_value("deprecation_date", n.extra.get("deprecation_date").map(deprecation_date).unwrap_or(Value::Null));
            o.put_value("primary_key", json!(derived.and_then(|d| d.primary_keys.get(&n.unique_id)).cloned().unwrap_or_default()));
            let mut time_spine = n.extra.get("time_spine").cloned().unwrap_or(Value::Null);
            if let Value::Object(t) = &mut time_spine {
                t.entry("custom_granularities").or_insert(json!([]));
            }
            o.put_value("time_spine", time_spine);
        }
        ResourceType::Test if n.test_metadata.is_some() => {
            let tm = n.test_metadata.as_ref().unwrap();
            o.put("column_name", &n.column_name);
            o.put(
                "file_key_name",
                &(n.attached_node.as_ref().map(|a| {
                    // the properties key the test was declared under
                    match a.split('.').next() {
                        Some("source") => format!("sources.{}", a.split('.').nth(2).unwrap_or("")),
                        Some(kind @ ("seed" | "snapshot")) => format!("{kind}s.{}", crate::graph::short_name(a)),
                        _ => format!("models.{}", crate::graph::short_name(a)),
                    }
                })),
            );
            o.put("attached_node", &n.attached_node.clone().filter(|a| !a.starts_with("source.")));
            o.put_value("test_metadata", json!({"name": tm.name, "kwargs": tm.kwargs, "namespace": tm.namespace}));
        }
        _ => {}
    }
}

/// dbt's `build_contract_checksum` of a model whose contract is enforced:
/// the sha256 of each column (by name) with its `data_type` and its
/// constraints as Python prints them, then, for a table or incremental
/// model, the materialization and the model's constraints (dp keeps none).
fn contract_checksum(n: &Node) -> String {
    use sha2::Digest;
    let mut columns: Vec<_> = n.columns.values().collect();
    columns.sort_by(|a, b| a.name.cmp(&b.name));
    let mut state = String::new();
    for c in columns {
        state.push('|');
        state.push_str(&c.name);
        state.push_str(c.data_type.as_deref().unwrap_or("None"));
        state.push_str(&py_list(c.constraints.iter().map(py_constraint)));
    }
    let materialized = n.config.get("materialized").and_then(Value::as_str).unwrap_or("view");
    if matches!(materialized, "table" | "incremental") {
        state.push_str(materialized);
        state.push_str("[]");
    }
    sha2::Sha256::digest(state.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A column constraint as Python prints dbt's `ColumnLevelConstraint`.
fn py_constraint(c: &Value) -> String {
    let field = |k: &str| c.get(k).unwrap_or(&Value::Null);
    let kind = field("type").as_str().unwrap_or_default();
    let bool_or_true = |k: &str| py_repr(field(k).as_bool().map(Value::Bool).as_ref().unwrap_or(&Value::Bool(true)));
    let to_columns = match field("to_columns") {
        Value::Null => "[]".to_string(),
        v => py_repr(v),
    };
    format!(
        "ColumnLevelConstraint(type=<ConstraintType.{kind}: {}>, name={}, expression={}, warn_unenforced={}, warn_unsupported={}, to={}, to_columns={to_columns})",
        py_repr(&json!(kind)),
        py_repr(field("name")),
        py_repr(field("expression")),
        bool_or_true("warn_unenforced"),
        bool_or_true("warn_unsupported"),
        py_repr(field("to")),
    )
}

fn py_list(items: impl Iterator<Item = String>) -> String {
    format!("[{}]", items.collect::<Vec<_>>().join(", "))
}

/// A model version as dbt writes it: YAML's `v: 2` a number (dp keeps
/// versions as text; a quoted `v: "2"` is written as a number too).
fn version_json(v: &str) -> Value {
    let plain = !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit() || b == b'.') && !v.starts_with('.') && !v.ends_with('.');
    match (plain, v.parse::<i64>(), v.parse::<f64>()) {
        (true, Ok(i), _) => json!(i),
        (true, _, Ok(f)) => json!(f),
        _ => json!(v),
    }
}

/// A `deprecation_date` as dbt writes it: a datetime in ISO format, a
/// date alone at midnight UTC.
fn deprecation_date(v: &Value) -> Value {
    match v.as_str() {
        Some(d) if d.len() == 10 => json!(format!("{d}T00:00:00+00:00")),
        Some(d) if d.len() == 19 => json!(format!("{}T{}+00:00", &d[..10], &d[11..])),
        _ => v.clone(),
    }
}

/// Whether dbt's static parser (dbt-extractor) reads a model without
/// rendering it: its only Jinja is `{{ ref(...) }}`, `{{ source(...) }}` and
/// `{{ config(...) }}` calls with literal arguments, and comments.
fn statically_parsed(raw: &str) -> bool {
    if raw.contains("{%") {
        return false;
    }
    let mut rest = raw;
    while let Some(i) = rest.find("{{") {
        let Some(j) = rest[i..].find("}}") else { return false };
        let expr = rest[i + 2..i + j].trim_matches(|c: char| c.is_whitespace() || c == '-');
        let call = ["ref(", "source(", "config("].iter().find_map(|f| expr.strip_prefix(f));
        match call.and_then(|a| a.strip_suffix(')')) {
            Some(args) if !args.contains('(') => {}
            _ => return false,
        }
        rest = &rest[i + j + 2..];
    }
    true
}

/// A source's freshness in dbt's shape: every key present, unset ones null.
fn freshness_json(f: Option<&Value>) -> Value {
    let after = |k: &str| {
        let a = f.and_then(|f| f.get(k));
        json!({"count": a.and_then(|a| a.get("count")).cloned().unwrap_or(Value::Null), "period": a.and_then(|a| a.get("period")).cloned().unwrap_or(Value::Null)})
    };
    json!({"warn_after": after("warn_after"), "error_after": after("error_after"), "filter": f.and_then(|f| f.get("filter")).cloned().unwrap_or(Value::Null)})
}

/// A source's `quoting:` as declared (the table's over the source's), each
/// part `null` where neither sets it, as dbt's manifest holds it.
fn source_quoting(n: &Node) -> Value {
    let declared = n.extra.get("quoting");
    let part = |k: &str| declared.and_then(|q| q.get(k)).cloned().unwrap_or(Value::Null);
    json!({"database": part("database"), "schema": part("schema"), "identifier": part("identifier"), "column": part("column")})
}

fn source_json(project: &Project, n: &Node) -> Value {
    let s = n.source.as_ref().unwrap();
    // an explicit `freshness: null` is written null
    let off = n.extra.get("freshness").is_some_and(Value::is_null);
    let freshness = if off { Value::Null } else { freshness_json(s.freshness.as_ref()) };
    // dbt's unrendered config of a source table: its freshness when set, then the same keys always
    let mut unrendered = Map::new();
    if s.freshness.is_some() || off {
        unrendered.insert("freshness".into(), freshness.clone());
    }
    unrendered.insert("loaded_at_field".into(), json!(s.loaded_at_field));
    unrendered.insert("loaded_at_query".into(), Value::Null);
    unrendered.insert("meta".into(), json!(s.meta));
    unrendered.insert("tags".into(), json!(n.tags()));
    let file = relative_to_package(project, &n.original_file_path);
    json!({
        "database": n.database, "schema": n.schema, "name": n.name, "resource_type": "source",
        "package_name": n.package_name, "path": file, "original_file_path": file,
        "unique_id": n.unique_id, "fqn": n.fqn, "source_name": s.source_name,
        "source_description": s.source_description, "loader": "", "identifier": s.identifier,
        "quoting": source_quoting(n),
        "loaded_at_field": s.loaded_at_field, "loaded_at_query": null, "freshness": freshness,
        "external": s.location.as_ref().map(|l| json!({"location": l, "file_format": s.format})),
        "description": n.description, "columns": columns(n), "meta": s.meta, "source_meta": s.source_meta,
        "tags": n.tags(),
        "config": {"enabled": true, "event_time": null, "freshness": freshness, "loaded_at_field": s.loaded_at_field, "loaded_at_query": null, "meta": s.meta, "tags": n.tags(), "static_analysis": null},
        "patch_path": null, "unrendered_config": unrendered,
        "relation_name": n.dbt_relation_name(&project.settings), "created_at": 0.0,
        "unrendered_database": n.extra.get("unrendered_database"), "unrendered_schema": n.extra.get("unrendered_schema"), "doc_blocks": [],
    })
}

/// One resource as the manifest holds it (dbt's `node.to_dict()`, parse-time
/// macro lists), for `dp ls --output json`; `None` for exposures, unit tests
/// and saved queries, which the manifest keeps elsewhere.
pub fn resource_json(project: &Project, n: &Node, derived: &Derived) -> Option<Value> {
    match n.resource_type {
        ResourceType::Source => Some(source_json(project, n)),
        ResourceType::Exposure | ResourceType::UnitTest | ResourceType::SavedQuery => None,
        _ => Some(node_json(project, n, None, Some(derived))),
    }
}

/// `groups:` from YAML, in dbt's shape.
fn groups(project: &Project) -> Value {
    let mut out = Map::new();
    for (uid, g) in project.other.get("groups").into_iter().flatten() {
        let name = g.get("name").cloned().unwrap_or(Value::Null);
        let file = g.get("original_file_path").cloned().unwrap_or(Value::Null);
        out.insert(
            uid.clone(),
            json!({
                "name": name, "resource_type": "group", "package_name": project.settings.project_name,
                "path": file, "original_file_path": file, "unique_id": uid,
                "owner": g.get("owner").cloned().unwrap_or(json!({})),
                "description": g.get("description").cloned().unwrap_or(Value::Null),
            }),
        );
    }
    Value::Object(out)
}

/// Where the parts of a written manifest lie (byte offsets): the
/// `metadata` value and each node's `"uid":{...}` entry, in order
/// (`super::manifest_reuse` copies unchanged entries from it).
#[derive(Debug, Default, Clone)]
pub struct Layout {
    pub metadata: (u64, u64),
    pub nodes: Vec<(u64, u64)>,
}

/// The nodes of the manifest's `nodes` section, in its order.
pub fn manifest_nodes(project: &Project) -> Vec<(&String, &Node)> {
    project
        .nodes
        .iter()
        .filter(|(_, n)| !matches!(n.resource_type, ResourceType::Source | ResourceType::Exposure | ResourceType::UnitTest | ResourceType::SavedQuery))
        .collect()
}

/// One node's entry of the `nodes` section: `"uid":{...}`.
pub fn node_entry(buf: &mut Vec<u8>, project: &Project, uid: &str, n: &Node, compiled: Option<&Compiled>, derived: &Derived) -> std::io::Result<()> {
    serde_json::to_writer(&mut *buf, uid)?;
    buf.push(b':');
    let mut o = super::fields::JsonObject::new(buf);
    node_fields(&mut o, project, n, compiled, Some(derived));
    Ok(o.finish()?)
}

/// The manifest's `metadata` value.
pub fn metadata_json(project: &Project, invocation_id: &str, generated_at: &str) -> Vec<u8> {
    serde_json::to_vec(&Value::Object(metadata(project, invocation_id, generated_at))).unwrap_or_default()
}

/// Writes the manifest, streaming the nodes (the bulk of a large project)
/// one at a time instead of building them all in memory; returns where its
/// parts lie.
pub fn write_manifest<W: std::io::Write>(
    w: &mut W,
    project: &Project,
    dag: &Dag,
    compiled: Option<&Compiled>,
    invocation_id: &str,
    generated_at: &str,
) -> std::io::Result<Layout> {
    let derived = Derived::new(project);
    let rest = manifest_without_nodes(project, dag, invocation_id, generated_at, &derived);
    let Value::Object(rest) = rest else { unreachable!() };
    let mut layout = Layout::default();
    let mut at: u64 = 0;
    let put = |w: &mut W, at: &mut u64, b: &[u8]| -> std::io::Result<u64> {
        w.write_all(b)?;
        *at += b.len() as u64;
        Ok(*at)
    };
    let start = put(w, &mut at, b"{\"metadata\":")?;
    let end = put(w, &mut at, &serde_json::to_vec(&rest["metadata"])?)?;
    layout.metadata = (start, end);
    put(w, &mut at, b",\"nodes\":{")?;
    // Nodes are serialized in parallel, a batch at a time (bounded memory),
    // and written in the project's order: the bytes are the same as one
    // sequential pass.
    use rayon::prelude::*;
    let nodes = manifest_nodes(project);
    const BATCH: usize = 2048;
    // a chunk's bytes and its entries' ranges in them
    type Part = (Vec<u8>, Vec<(usize, usize)>);
    for (b, batch) in nodes.chunks(BATCH).enumerate() {
        let parts: Vec<Part> = batch
            .par_chunks(64)
            .map(|chunk| -> std::io::Result<Part> {
                let mut buf = Vec::with_capacity(chunk.len() * 8192);
                let mut ranges = Vec::with_capacity(chunk.len());
                for (i, (uid, n)) in chunk.iter().enumerate() {
                    if i > 0 {
                        buf.push(b',');
                    }
                    let s = buf.len();
                    node_entry(&mut buf, project, uid, n, compiled, &derived)?;
                    ranges.push((s, buf.len()));
                }
                Ok((buf, ranges))
            })
            .collect::<std::io::Result<_>>()?;
        for (i, (part, ranges)) in parts.iter().enumerate() {
            if b > 0 || i > 0 {
                put(w, &mut at, b",")?;
            }
            let base = at;
            put(w, &mut at, part)?;
            layout.nodes.extend(ranges.iter().map(|(s, e)| (base + *s as u64, base + *e as u64)));
        }
    }
    put(w, &mut at, b"}")?;
    for (k, v) in &rest {
        if k == "metadata" || k == "nodes" {
            continue;
        }
        put(w, &mut at, b",")?;
        put(w, &mut at, &serde_json::to_vec(k)?)?;
        put(w, &mut at, b":")?;
        put(w, &mut at, &serde_json::to_vec(v)?)?;
    }
    put(w, &mut at, b"}")?;
    Ok(layout)
}

/// dbt's `graph` context variable (the manifest's flat graph): nodes,
/// sources, exposures, metrics, groups, semantic models, saved queries and
/// unit tests as the manifest has them.
pub fn flat_graph(project: &Project) -> Value {
    let (sources, exposures, unit_tests) = resources(project);
    // dbt builds the graph before compiling: the parse-time macro lists
    let derived = Derived::new(project);
    let mut nodes = Map::new();
    for (uid, n) in &project.nodes {
        if !matches!(n.resource_type, ResourceType::Source | ResourceType::Exposure | ResourceType::UnitTest | ResourceType::SavedQuery) {
            nodes.insert(uid.clone(), node_json(project, n, None, Some(&derived)));
        }
    }
    json!({
        "nodes": nodes, "sources": sources, "exposures": exposures, "metrics": super::metrics::metrics(project), "groups": groups(project),
        "semantic_models": super::metrics::semantic_models(project), "saved_queries": {}, "unit_tests": unit_tests,
    })
}

/// Sources, exposures and unit tests in the manifest's shape.
fn resources(project: &Project) -> (Map<String, Value>, Map<String, Value>, Map<String, Value>) {
    let mut sources = Map::new();
    let mut exposures = Map::new();
    let mut unit_tests = Map::new();
    for (uid, n) in &project.nodes {
        match n.resource_type {
            ResourceType::Source => {
                sources.insert(uid.clone(), source_json(project, n));
            }
            ResourceType::Exposure => {
                let e = &n.extra;
                exposures.insert(
                    uid.clone(),
                    json!({
                        "name": n.name, "resource_type": "exposure", "package_name": n.package_name,
                        "path": n.original_file_path, "original_file_path": n.original_file_path,
                        "unique_id": uid, "fqn": n.fqn,
                        "type": e.get("type").cloned().unwrap_or(json!("dashboard")),
                        "owner": e.get("owner").cloned().unwrap_or(json!({})),
                        "description": n.description,
                        "label": e.get("label").cloned().unwrap_or(Value::Null),
                        "maturity": e.get("maturity").cloned().unwrap_or(Value::Null),
                        "url": e.get("url").cloned().unwrap_or(Value::Null),
                        "depends_on": {"macros": [], "nodes": n.depends_on},
                        "refs": n.refs.iter().map(|r| json!({"name": r.name, "package": r.package, "version": r.version})).collect::<Vec<_>>(),
                        "sources": n.sources.iter().map(|(s, t)| json!([s, t])).collect::<Vec<_>>(),
                        "meta": e.get("meta").cloned().unwrap_or(json!({})), "tags": [], "config": {"enabled": true},
                    }),
                );
            }
            ResourceType::UnitTest => {
                let e = &n.extra;
                unit_tests.insert(
                    uid.clone(),
                    json!({
                        "model": e.get("model").cloned().unwrap_or(Value::Null),
                        "given": e.get("given").cloned().unwrap_or(json!([])),
                        "expect": e.get("expect").cloned().unwrap_or(json!({})),
                        "name": n.name, "resource_type": "unit_test", "package_name": n.package_name,
                        "path": n.path, "original_file_path": n.original_file_path, "unique_id": uid,
                        "fqn": n.fqn, "description": n.description,
                        "overrides": e.get("overrides").cloned().unwrap_or(Value::Null),
                        "depends_on": {"macros": [], "nodes": n.depends_on},
                        "config": {"tags": [], "meta": {}, "enabled": true},
                        "schema": n.schema,
                    }),
                );
            }
            _ => {}
        }
    }
    (sources, exposures, unit_tests)
}

/// The dbt version whose artifacts dp writes.
pub use crate::util::dbt_version::DBT_VERSION;

/// The `metadata` block every dbt artifact starts with (manifest, catalog,
/// run_results, sources); callers add their artifact's own keys.
pub fn artifact_metadata(schema_url: &str, invocation_id: &str, generated_at: &str) -> Map<String, Value> {
    let v = json!({
        "dbt_schema_version": schema_url,
        "dbt_version": DBT_VERSION,
        "generated_at": generated_at,
        "invocation_id": invocation_id,
        "env": {},
    });
    match v {
        Value::Object(m) => m,
        _ => unreachable!("a JSON object literal"),
    }
}

/// `generated_at` as dbt writes it (UTC, microseconds).
pub fn now_stamp() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn metadata(project: &Project, invocation_id: &str, generated_at: &str) -> Map<String, Value> {
    let mut metadata = artifact_metadata(SCHEMA_URL, invocation_id, generated_at);
    metadata.insert("project_name".into(), json!(project.settings.project_name));
    metadata.insert("project_id".into(), json!(format!("{:x}", md5::compute(project.settings.project_name.as_bytes()))));
    metadata.insert("user_id".into(), Value::Null);
    metadata.insert("send_anonymous_usage_stats".into(), json!(false));
    metadata.insert("adapter_type".into(), json!(crate::jinja::ADAPTER_TYPE));
    // where this run's relations live, for a later `--defer --state` (graph::defer)
    metadata.insert("env".into(), json!({ crate::graph::defer::WAREHOUSE_ENV_KEY: project.settings.warehouse_url() }));
    metadata
}

fn manifest_without_nodes(project: &Project, dag: &Dag, invocation_id: &str, generated_at: &str, derived: &Derived) -> Value {
    let deps = &derived.deps;
    let nodes = Map::new();
    let (sources, exposures, unit_tests) = resources(project);
    let mut macros = Map::new();
    for (uid, m) in &project.macros {
        macros.insert(
            uid.clone(),
            json!({
                "name": m.name, "resource_type": "macro", "package_name": m.package_name,
                "path": relative_to_package(project, &m.path), "original_file_path": relative_to_package(project, &m.original_file_path),
                "unique_id": uid, "macro_sql": m.macro_sql,
                "depends_on": {"macros": deps.of_macro(m)}, "description": m.description, "meta": {},
                "docs": {"show": true, "node_color": null}, "config": {"meta": {}, "docs": {"show": true, "node_color": null}},
                "patch_path": m.patch.as_ref().map(|(file, _)| patch_path(project, file)),
                "arguments": macro_arguments(project, m),
                "created_at": 0.0, "supported_languages": null,
            }),
        );
    }
    let mut docs = Map::new();
    for (uid, d) in &project.docs {
        docs.insert(
            uid.clone(),
            json!({"name": d.name, "resource_type": "doc", "package_name": d.package_name, "path": d.path,
                   "original_file_path": d.original_file_path, "unique_id": uid, "block_contents": d.block_contents}),
        );
    }
    let mut disabled = Map::new();
    for (uid, n) in &project.disabled {
        let v = if n.resource_type == ResourceType::Source { source_json(project, n) } else { node_json(project, n, None, Some(derived)) };
        disabled.insert(uid.clone(), json!([v]));
    }
    let metadata = metadata(project, invocation_id, generated_at);
    let (metrics, semantic_models) = (super::metrics::metrics(project), super::metrics::semantic_models(project));
    let (parent_map, child_map) = super::metrics::parent_child_maps(&dag.parents, &dag.children, &[&metrics, &semantic_models]);
    json!({
        "metadata": metadata,
        "nodes": nodes,
        "sources": sources,
        "macros": macros,
        "docs": docs,
        "exposures": exposures,
        "metrics": metrics,
        "groups": groups(project),
        "selectors": {},
        "disabled": disabled,
        "parent_map": parent_map,
        "child_map": child_map,
        "group_map": {},
        "saved_queries": {},
        "semantic_models": semantic_models,
        "unit_tests": unit_tests,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_checksum_is_dbts() {
        // dbt-core 1.11's checksum of dbt_project_evaluator's dim_model_7:
        // a table with one `int` column `id` under a not_null constraint
        let mut n = Node::new(ResourceType::Model, "p", "dim_model_7", "models/dim_model_7.sql");
        n.config.insert("materialized".into(), json!("table"));
        let not_null =
            json!({"type": "not_null", "name": null, "expression": null, "warn_unenforced": true, "warn_unsupported": true, "to": null, "to_columns": []});
        let column = crate::project::nodes::Column { name: "id".into(), data_type: Some("int".into()), constraints: vec![not_null], ..Default::default() };
        n.columns.insert("id".into(), column);
        assert_eq!(contract_checksum(&n), "3e1618b3bf71f9b2f1c1ce987203cbaaf4a9cd275f139b108bbe6745bc135b95");
        assert_eq!(py_repr(&json!("it's")), "\"it's\"");
        assert_eq!(py_repr(&json!(["a", null, true])), "['a', None, True]");
    }

    #[test]
    fn snapshot_config_has_dbts_defaults() {
        // SnapshotConfig(strategy='timestamp', unique_key='id', updated_at='u').to_dict(omit_none=False), dbt-core 1.11
        let want = r#"{"enabled":true,"alias":null,"schema":null,"database":null,"tags":[],"meta":{},"group":null,"static_analysis":null,"materialized":"snapshot","incremental_strategy":null,"batch_size":null,"lookback":1,"begin":null,"persist_docs":{},"post-hook":[],"pre-hook":[],"quoting":{},"column_types":{},"full_refresh":null,"unique_key":"id","on_schema_change":"ignore","on_configuration_change":"apply","grants":{},"packages":[],"docs":{"show":true,"node_color":null},"contract":{"enforced":false,"alias_types":true},"event_time":null,"concurrent_batches":null,"strategy":"timestamp","target_schema":null,"target_database":null,"updated_at":"u","check_cols":null,"snapshot_meta_column_names":{"dbt_valid_to":null,"dbt_valid_from":null,"dbt_scd_id":null,"dbt_updated_at":null,"dbt_is_deleted":null},"dbt_valid_to_current":null}"#;
        let mut n = Node::new(ResourceType::Snapshot, "p", "s", "snapshots/s.sql");
        for (k, v) in [("strategy", "timestamp"), ("unique_key", "id"), ("updated_at", "u")] {
            n.config.insert(k.into(), json!(v));
        }
        assert_eq!(config(&n, None).to_string(), want);
    }

    #[test]
    fn static_parser_reads_only_literal_calls() {
        assert!(statically_parsed("-- {{ source('a', 'b') }}\nselect * from {{ ref('x') }} {{ config(materialized='table') }}"));
        assert!(!statically_parsed("select {{ dbt_utils.star(ref('x')) }}"));
        assert!(!statically_parsed("{% if execute %}select 1{% endif %}"));
        assert_eq!(version_json("2"), json!(2));
        assert_eq!(version_json("1.5"), json!(1.5));
        assert_eq!(version_json("v2"), json!("v2"));
        assert_eq!(deprecation_date(&json!("2024-01-01")), json!("2024-01-01T00:00:00+00:00"));
    }
}
