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
            anyhow::anyhow!("unknown resource type '{t}'\n  hint: use one of model, seed, snapshot, source, test, unit_test, analysis, exposure")
        })?);
    }
    // `all` with other types is still every type (dbt's union)
    if types.iter().any(|t| t == "all") {
        rts.clear();
    }
    let mut ids: Vec<String> = select(&l, s, rts, printer)?.into_iter().collect();
    // dbt prints in unique id order.
    ids.sort();
    if ids.is_empty() {
        printer.warn("No nodes selected!");
    }
    // dbt lists the parse-time macro dependencies
    let deps = matches!(output, LsOutput::Json).then(|| crate::compile::macro_deps::MacroDeps::new(&l.project));
    for uid in &ids {
        let n = &l.project.nodes[uid];
        printer.data(match output {
            LsOutput::Name => search_name(n),
            LsOutput::Path => n.original_file_path.clone(),
            LsOutput::Selector => selector(n),
            LsOutput::Json => json_line(n, keys, deps.as_ref().map(|d| d.of_node(n, false)).unwrap_or_default()),
        });
    }
    Ok(ExitCode::SUCCESS)
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

fn json_line(n: &Node, keys: &[String], macros: Vec<String>) -> String {
    let mut full = serde_json::json!({
        "name": n.name,
        "resource_type": n.resource_type.as_str(),
        "package_name": n.package_name,
        "original_file_path": n.original_file_path,
        "unique_id": n.unique_id,
        "alias": n.alias,
        "config": n.config,
        "tags": n.tags(),
        "depends_on": {"macros": macros, "nodes": n.depends_on},
    });
    if let (Some(s), Some(o)) = (&n.source, full.as_object_mut()) {
        o.shift_remove("alias");
        o.shift_remove("depends_on");
        o.insert("source_name".into(), serde_json::json!(s.source_name));
    }
    if keys.is_empty() {
        return full.to_string();
    }
    let mut o = serde_json::Map::new();
    for k in keys {
        if let Some(v) = full.get(k) {
            o.insert(k.clone(), v.clone());
        }
    }
    serde_json::Value::Object(o).to_string()
}
