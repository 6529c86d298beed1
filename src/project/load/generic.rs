//! Stage 7: generic data tests declared in YAML (`data_tests:` / `tests:`
//! on models, sources and columns) become test nodes, named and hashed as
//! dbt names them; the test macro must exist.

use rayon::prelude::*;
use serde_json::Value;
use std::sync::Arc;

use super::LoadError;
use super::configs::{default_config, render_config_values};
use super::packages::PackageDir;
use crate::config::{ConfigTree, Settings, merge_config, update_config};
use crate::jinja::{JinjaEnv, Phase, RenderCtx};
use crate::project::generic_tests::{parse_entry, synthesize_names, test_hash};
use crate::project::nodes::{Node, NodeMap, RefCall, ResourceType};
use crate::project::properties::ColumnDef;
use crate::util::yaml::NameIndex;

/// The config keys a generic test's project file or YAML set (kept in
/// `Node::extra`): the test macro's own `config()` does not override them.
pub const EXPLICIT_CONFIG: &str = "__explicit_config";
/// How many of a generic test's `unrendered_config` keys its YAML entry
/// set (they come first).
pub const ENTRY_CONFIG_LEN: &str = "__entry_config_len";

/// Adds the tests collected from YAML.
pub fn add(tests: Vec<PendingTest>, settings: &Settings, packages: &[PackageDir], jinja: &JinjaEnv, nodes: &mut NodeMap) -> Result<(), LoadError> {
    // Each test is built on its own (naming, hashing, config rendering);
    // they are built in parallel, a chunk at a time (a bounded buffer), and
    // inserted in declaration order, so the first error and the first of two
    // same-named tests are the sequential pass's.
    nodes.reserve(tests.len());
    // most tests of a project share one of a few configs and `extra` maps: held once each
    let mut shared = crate::project::shared_map::Interner::default();
    let mut tests = tests.into_iter();
    loop {
        let chunk: Vec<PendingTest> = tests.by_ref().take(2048).collect();
        if chunk.is_empty() {
            break;
        }
        let built: Vec<Result<Option<Node>, LoadError>> = chunk
            .into_par_iter()
            .map(|t| {
                let own = packages.iter().find(|p| p.name == t.package).map(|p| &p.project.tests);
                build_generic_test(&t, jinja, own, &settings.tests)
            })
            .collect();
        for node in built {
            let Some(mut node) = node? else { continue };
            if nodes.contains_key(&node.unique_id) {
                continue;
            }
            node.config = shared.share(std::mem::take(&mut node.config).into_map());
            node.extra = shared.share(std::mem::take(&mut node.extra).into_map());
            nodes.insert(node.unique_id.clone(), node);
        }
    }

    Ok(())
}

pub enum TestTarget {
    /// A model, seed or snapshot (`version` for a model version).
    Node {
        name: String,
        uid: String,
        version: Option<String>,
    },
    Source {
        source: String,
        table: String,
        uid: String,
    },
}

pub struct PendingTest {
    /// The package whose YAML declared the test (the test belongs to it).
    package: String,
    target_name: String,
    target_uid: String,
    is_source: bool,
    source: Option<(String, String)>,
    model_name: String,
    version: Option<String>,
    column: Option<String>,
    entry: Value,
    file: String,
    line: usize,
    dirs: Vec<String>,
}

#[allow(clippy::too_many_arguments)]
pub fn collect_tests(
    out: &mut Vec<PendingTest>,
    package: &str,
    target: &TestTarget,
    file: &str,
    idx: &NameIndex,
    dirs: &[String],
    model_tests: Vec<Value>,
    cols: &[ColumnDef],
) -> Result<(), LoadError> {
    let (target_name, uid, is_source, source, model_name, version) = match target {
        TestTarget::Node { name, uid, version: None } => (name.clone(), uid.clone(), false, None, name.clone(), None),
        TestTarget::Node { name, uid, version: Some(v) } => (format!("{name}_v{v}"), uid.clone(), false, None, name.clone(), Some(v.clone())),
        TestTarget::Source { source, table, uid } => {
            (format!("{source}_{table}"), uid.clone(), true, Some((source.clone(), table.clone())), table.clone(), None)
        }
    };
    let base_line = idx.first(&model_name).unwrap_or(1);
    let mut push = |entry: Value, column: Option<String>| {
        let line = column.as_ref().and_then(|c| idx.after(c, base_line)).unwrap_or(base_line);
        out.push(PendingTest {
            package: package.to_string(),
            target_name: target_name.clone(),
            target_uid: uid.clone(),
            is_source,
            source: source.clone(),
            model_name: model_name.clone(),
            version: version.clone(),
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

fn build_generic_test(t: &PendingTest, jinja: &JinjaEnv, own_tree: Option<&ConfigTree>, tests_tree: &ConfigTree) -> Result<Option<Node>, LoadError> {
    let pkg = t.package.as_str();
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
        let hint = crate::util::suggest(&entry.name, known.iter().map(String::as_str)).map(|s| format!("\n  hint: did you mean '{s}'?")).unwrap_or_else(|| {
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
        None => match &t.version {
            Some(v) => format!("{{{{ get_where_subquery(ref('{}', v='{v}')) }}}}", t.model_name),
            None => format!("{{{{ get_where_subquery(ref('{}')) }}}}", t.model_name),
        },
    };
    // dbt's order: the arguments given beside the test's name, column_name,
    // those under `arguments:`, the model
    let mut kwargs: serde_json::Map<String, Value> =
        entry.args.iter().filter(|(k, _)| !entry.under_arguments.contains(k)).map(|(k, v)| (k.clone(), v.clone())).collect();
    if let Some(c) = &t.column {
        kwargs.insert("column_name".into(), Value::String(c.clone()));
    }
    kwargs.extend(entry.args.iter().filter(|(k, _)| entry.under_arguments.contains(k)).map(|(k, v)| (k.clone(), v.clone())));
    kwargs.insert("model".into(), Value::String(model_expr.clone()));
    let hash = test_hash(&name, &entry.name, &kwargs, entry.namespace.as_deref());
    let mut n = Node::new(ResourceType::Test, pkg, &name, &t.file);
    n.unique_id = format!("test.{pkg}.{name}.{hash}");
    n.path = format!("{}.sql", if entry.custom_name.is_some() { name.clone() } else { short.clone() });
    n.fqn = std::iter::once(pkg.to_string()).chain(t.dirs.iter().cloned()).chain([name.clone()]).collect();
    let callee = match &entry.namespace {
        Some(ns) => format!("{ns}.test_{}", entry.name),
        None => format!("test_{}", entry.name),
    };
    n.description = entry.description.clone().unwrap_or_default();
    n.column_name = t.column.clone();
    n.attached_node = Some(t.target_uid.clone());
    n.line = Some(t.line);
    n.patch_path = Some(t.file.clone());
    n.test_metadata = Some(crate::project::nodes::TestMetadata { name: entry.name.clone(), kwargs: kwargs.clone(), namespace: entry.namespace.clone() });
    // Config: defaults < the test macro's own config() (applied when it
    // compiles) < the package's own tests tree < the root's < entry config.
    let mut cfg = default_config(ResourceType::Test);
    let mut explicit: Vec<String> = vec![];
    // dbt's unrendered_config (state:modified.configs compares it)
    let mut unrendered = serde_json::Map::new();
    if let Some(own) = own_tree {
        let (raw, raw_unrendered) = own.resolve_both(&n.fqn);
        update_config(&mut unrendered, &raw_unrendered);
        let c = render_config_values(jinja, raw, &t.file)?;
        explicit.extend(c.keys().cloned());
        merge_config(&mut cfg, &c);
    }
    let (raw, raw_unrendered) = tests_tree.resolve_both(&n.fqn);
    update_config(&mut unrendered, &raw_unrendered);
    let c = render_config_values(jinja, raw, &t.file)?;
    explicit.extend(c.keys().cloned());
    merge_config(&mut cfg, &c);
    let mut c = render_config_values(jinja, entry.config.clone(), &t.file)?;
    // dbt aliases a test whose synthesized name (64 characters or more) it
    // shortened to the short, hashed name: its relation, unrendered config and raw code
    if entry.custom_name.is_none() && short != full && !c.contains_key("alias") {
        c.insert("alias".into(), Value::String(short.clone()));
    }
    explicit.extend(c.keys().cloned());
    merge_config(&mut cfg, &c);
    // dbt lists the entry's config first (its values win), then the
    // project files' (the manifest puts the test macro's config() between)
    let mut entry_first = serde_json::Map::new();
    update_config(&mut entry_first, &c);
    n.extra.insert(ENTRY_CONFIG_LEN.into(), Value::from(entry_first.len()));
    for (k, v) in unrendered {
        entry_first.entry(k).or_insert(v);
    }
    n.extra.insert(EXPLICIT_CONFIG.into(), Value::from(explicit));
    n.extra.insert(super::UNRENDERED_CONFIG.into(), Value::Object(entry_first));
    // dbt's raw code: the macro call, then the test's own config as a config() call
    n.raw_code = format!("{{{{ {callee}(**_dbt_generic_test_kwargs) }}}}{}", config_call(&c));
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
    n.config = cfg.into();
    // Dependencies: the target plus refs/sources inside the arguments. The
    // target needs no rendering; arguments that call ref()/source() do.
    match &t.source {
        Some((s, tb)) => n.sources = vec![(s.clone(), tb.clone())],
        None => n.refs = vec![RefCall { name: t.model_name.clone(), package: None, version: t.version.clone() }],
    }
    let mut src = String::new();
    collect_arg_exprs(&Value::Object(entry.args.clone()), &mut src);
    if src.is_empty() {
        return Ok(Some(n));
    }
    // dbt renders the arguments before the target: a relationships test
    // refs its `to` model first (refs and depends_on.nodes in that order).
    let src = format!("{src}{model_expr}");
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

/// dbt's `construct_config`: `{{ config(k="v",n=1) }}` (non-strings as
/// Python prints them), or nothing for an empty config.
fn config_call(config: &serde_json::Map<String, Value>) -> String {
    fn py(v: &Value) -> String {
        match v {
            Value::Null => "None".into(),
            Value::Bool(b) => if *b { "True" } else { "False" }.into(),
            Value::Number(n) => n.to_string(),
            Value::String(s) if s.contains('\'') && !s.contains('"') => format!("\"{s}\""),
            Value::String(s) => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
            Value::Array(a) => format!("[{}]", a.iter().map(py).collect::<Vec<_>>().join(", ")),
            Value::Object(o) => {
                format!("{{{}}}", o.iter().map(|(k, v)| format!("{}: {}", py(&Value::String(k.clone())), py(v))).collect::<Vec<_>>().join(", "))
            }
        }
    }
    if config.is_empty() {
        return String::new();
    }
    let items: Vec<String> = config
        .iter()
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}=\"{}\"", s.replace('"', "\\\"")),
            other => format!("{k}={}", py(other)),
        })
        .collect();
    format!("{{{{ config({}) }}}}", items.join(","))
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
