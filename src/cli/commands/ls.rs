//! `dp ls`: list resources (`--output name|path|json|selector`).

use std::process::ExitCode;

use crate::cli::Printer;
use crate::cli::args::{GlobalArgs, SelectArgs};
use crate::cli::context::{LoadArgs, load, select};
use crate::project::nodes::{Node, ResourceType};

pub fn run(g: &GlobalArgs, s: &SelectArgs, output: &str, keys: &[String], types: &[String], printer: &Printer) -> anyhow::Result<ExitCode> {
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
    let ids = select(&l, s, rts, printer)?;
    let mut lines: Vec<String> = vec![];
    for uid in &ids {
        let n = &l.project.nodes[uid];
        lines.push(match output {
            "name" => display_name(n),
            "path" => n.original_file_path.clone(),
            "selector" => n.fqn.join("."),
            "json" => json_line(n, keys),
            other => anyhow::bail!("--output must be name, path, json or selector, not '{other}'"),
        });
    }
    lines.sort();
    for line in lines {
        printer.data(line);
    }
    Ok(ExitCode::SUCCESS)
}

fn display_name(n: &Node) -> String {
    match n.resource_type {
        ResourceType::Source => format!("source:{}", n.fqn.join(".")),
        ResourceType::Exposure => format!("exposure:{}", n.fqn.join(".")),
        ResourceType::UnitTest => format!("unit_test:{}", n.fqn.join(".")),
        _ => n.fqn.join("."),
    }
}

fn json_line(n: &Node, keys: &[String]) -> String {
    let full = serde_json::json!({
        "name": n.name,
        "resource_type": n.resource_type.as_str(),
        "package_name": n.package_name,
        "original_file_path": n.original_file_path,
        "unique_id": n.unique_id,
        "alias": n.alias,
        "config": n.config,
        "tags": n.tags(),
        "depends_on": {"nodes": n.depends_on},
    });
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
