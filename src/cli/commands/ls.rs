//! `dp ls`: list resources as `dbt ls` does (`--output selector|name|path|json`,
//! `selector` by default), one line per resource in unique id order.

use std::process::ExitCode;

use crate::cli::Printer;
use crate::cli::args::{GlobalArgs, LsOutput, SelectArgs};
use crate::cli::context::{LoadArgs, load, select};
use crate::project::nodes::{Node, ResourceType};

pub fn run(g: &GlobalArgs, s: &SelectArgs, output: LsOutput, keys: &[String], types: &[String], printer: &Printer) -> anyhow::Result<ExitCode> {
    let l = load(g, LoadArgs { which: "list", ..Default::default() }, printer)?;
    let mut rts = vec![];
    for t in types {
        if t == "all" || t == "default" {
            continue;
        }
        rts.push(ResourceType::parse(t).ok_or_else(|| {
            anyhow::anyhow!("unknown resource type '{t}'\n  hint: use one of model, seed, snapshot, source, test, unit_test, analysis, exposure, metric, semantic_model, saved_query")
        })?);
    }
    // `all` with other types is still every type (dbt's union)
    if types.iter().any(|t| t == "all") {
        rts.clear();
    }
    let wants = |rt: ResourceType| rts.is_empty() || rts.contains(&rt);
    let semantic = semantic_resources(&l.project, s, (wants(ResourceType::Metric), wants(ResourceType::SemanticModel)));
    let mut ids: Vec<String> = select(&l, s, rts, printer)?.into_iter().collect();
    // dbt prints in unique id order.
    ids.extend(semantic.keys().cloned());
    ids.sort();
    if ids.is_empty() {
        printer.warn("No nodes selected!");
    }
    // dbt lists the parse-time macro dependencies
    let deps = matches!(output, LsOutput::Json).then(|| crate::compile::manifest::Derived::new(&l.project));
    let keys: Vec<&String> = keys.iter().filter(|k| !k.is_empty()).collect();
    for uid in &ids {
        if let Some(v) = semantic.get(uid) {
            let text = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
            printer.data(match output {
                LsOutput::Name => text("name"),
                LsOutput::Path => text("original_file_path"),
                LsOutput::Selector => format!("{}:{}.{}", text("resource_type"), text("package_name"), text("name")),
                LsOutput::Json => json_line(v.clone(), &keys),
            });
            continue;
        }
        let n = &l.project.nodes[uid];
        printer.data(match output {
            LsOutput::Name => search_name(n),
            LsOutput::Path => n.original_file_path.clone(),
            LsOutput::Selector => selector(n),
            LsOutput::Json => {
                let deps = deps.as_ref().expect("macro deps for --output json");
                json_line(crate::compile::manifest::resource_json(&l.project, n, deps).unwrap_or_else(|| default_json(n)), &keys)
            }
        });
    }
    l.leave_for_exit();
    Ok(ExitCode::SUCCESS)
}

/// Metrics and semantic models (`metrics` / `semantic_models` wanted), as
/// the manifest describes them, by unique id: listed with every other
/// resource when nothing narrows the selection but `--resource-type`. They
/// are not nodes of dp's graph, so `-s`, `--exclude` and `--selector` do
/// not reach them yet.
fn semantic_resources(
    project: &crate::project::load::Project,
    s: &SelectArgs,
    (metrics, semantic): (bool, bool),
) -> serde_json::Map<String, serde_json::Value> {
    let mut out = serde_json::Map::new();
    if !s.select.is_empty() || !s.exclude.is_empty() || s.selector.is_some() {
        return out;
    }
    if metrics {
        out.extend(crate::compile::metrics::metrics(project));
    }
    if semantic {
        out.extend(crate::compile::metrics::semantic_models(project));
    }
    out
}

/// dbt's `search_name`: `source.table` for sources, `name.v<N>` for a
/// versioned model, else the name.
pub fn search_name(n: &Node) -> String {
    match (&n.resource_type, &n.source, &n.version) {
        (ResourceType::Source, Some(s), _) => format!("{}.{}", s.source_name, n.name),
        (ResourceType::Model, _, Some(v)) => format!("{}.v{v}", n.name),
        _ => n.name.clone(),
    }
}

/// dbt's selector output: the fqn, or `<type>:<package>.<name>` for
/// sources, exposures and unit tests.
pub fn selector(n: &Node) -> String {
    match n.resource_type {
        ResourceType::Source => {
            let source_name = n.source.as_ref().map(|s| s.source_name.as_str()).unwrap_or("");
            format!("source:{}.{}.{}", n.package_name, source_name, n.name)
        }
        ResourceType::Exposure => format!("exposure:{}.{}", n.package_name, n.name),
        ResourceType::SavedQuery => format!("saved_query:{}.{}", n.package_name, n.name),
        ResourceType::UnitTest => format!("unit_test:{}.{}", n.package_name, n.name),
        _ => n.fqn.join("."),
    }
}

/// The keys `dbt ls --output json` prints without `--output-keys`.
const ALLOWED_KEYS: &[&str] =
    &["alias", "name", "package_name", "depends_on", "tags", "config", "resource_type", "source_name", "original_file_path", "unique_id"];

/// A resource the manifest keeps outside `nodes` (exposures, unit tests,
/// saved queries): the keys `dbt ls` prints.
fn default_json(n: &Node) -> serde_json::Value {
    serde_json::json!({
        "name": n.name,
        "resource_type": n.resource_type.as_str(),
        "package_name": n.package_name,
        "original_file_path": n.original_file_path,
        "unique_id": n.unique_id,
        "config": n.config,
        "tags": n.tags(),
        "depends_on": {"macros": [], "nodes": n.depends_on},
    })
}

/// One line of `dbt ls --output json`: the resource's dict (as the manifest
/// holds it) cut to `keys` (dotted keys reach into nested values and are
/// left out when missing or null, plain keys when missing), else to
/// [`ALLOWED_KEYS`]; written as Python's `json.dumps`.
fn json_line(dict: serde_json::Value, keys: &[&String]) -> String {
    let serde_json::Value::Object(full) = dict else { return crate::util::pyjson::dumps(&dict, false) };
    let mut o = serde_json::Map::new();
    if keys.is_empty() {
        for (k, v) in &full {
            if ALLOWED_KEYS.contains(&k.as_str()) {
                o.insert(k.clone(), v.clone());
            }
        }
    }
    for k in keys {
        if k.contains('.') {
            let mut at = full.get(k.split('.').next().unwrap_or(""));
            for part in k.split('.').skip(1) {
                at = at.and_then(|v| v.as_object()).and_then(|m| m.get(part));
            }
            if let Some(v) = at.filter(|v| !v.is_null()) {
                o.insert(k.to_string(), v.clone());
            }
        } else if let Some(v) = full.get(k.as_str()) {
            o.insert(k.to_string(), v.clone());
        }
    }
    crate::util::pyjson::dumps(&serde_json::Value::Object(o), false)
}
