//! The static docs site under `target/docs/`: `index.html`, `app.js`,
//! `style.css` (no CDN, no network) and the project as data:
//! `data/index.js` (every node's name, type, schema and parents: what search
//! and the lineage graph need) and `data/d<k>.js` shards of [`SHARD`] nodes
//! each with the details a node's page shows (descriptions, SQL, columns,
//! tests, column lineage, stats), loaded on demand. Data files are scripts,
//! not JSON, so the site also works when opened from disk (`file://`).

use std::collections::HashMap;
use std::path::Path;

use serde_json::{Value, json};

use crate::compile::Compiled;
use crate::lineage::Lineage;
use crate::project::load::Project;
use crate::project::nodes::{Node, ResourceType};

pub const SHARD: usize = 100;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

fn listed(n: &Node) -> bool {
    matches!(
        n.resource_type,
        ResourceType::Model | ResourceType::Seed | ResourceType::Source | ResourceType::Snapshot | ResourceType::Exposure | ResourceType::Analysis
    )
}

fn short(s: &str, max: usize) -> String {
    let line = s.trim().lines().next().unwrap_or("");
    if line.chars().count() <= max { line.to_string() } else { format!("{}…", line.chars().take(max).collect::<String>()) }
}

/// A test's label on a column or node page: `not_null`, `accepted_values`, ...
fn test_label(t: &Node) -> String {
    t.test_metadata.as_ref().map(|m| m.name.clone()).unwrap_or_else(|| t.name.clone())
}

/// Writes the site into `dir` (replacing what was there).
pub fn write_site(
    dir: &Path,
    project: &Project,
    compiled: Option<&Compiled>,
    catalog: &Value,
    lineage: Option<&Lineage>,
    generated_at: &str,
) -> std::io::Result<usize> {
    let data = dir.join("data");
    if data.exists() {
        std::fs::remove_dir_all(&data)?;
    }
    std::fs::create_dir_all(&data)?;
    std::fs::write(dir.join("index.html"), INDEX_HTML)?;
    std::fs::write(dir.join("app.js"), APP_JS)?;
    std::fs::write(dir.join("style.css"), STYLE_CSS)?;

    let nodes: Vec<&Node> = project.nodes.values().filter(|n| listed(n)).collect();
    let pos: HashMap<&str, usize> = nodes.iter().enumerate().map(|(i, n)| (n.unique_id.as_str(), i)).collect();
    // Tests by the node (and column) they check.
    let mut tests: HashMap<&str, Vec<(Option<&str>, String)>> = HashMap::new();
    for t in project.nodes.values().filter(|n| n.resource_type == ResourceType::Test) {
        let target = t.attached_node.as_deref().or_else(|| t.depends_on.iter().find(|d| pos.contains_key(d.as_str())).map(String::as_str));
        if let Some(a) = target {
            tests.entry(a).or_default().push((t.column_name.as_deref(), test_label(t)));
        }
    }
    // index.js: [uid, name, type, group (schema or source), materialized, parents, short description]
    let rows: Vec<Value> = nodes
        .iter()
        .map(|n| {
            let parents: Vec<usize> = n.depends_on.iter().filter_map(|d| pos.get(d.as_str()).copied()).collect();
            let group = n.source.as_ref().map(|s| s.source_name.clone()).unwrap_or_else(|| n.schema.clone());
            json!([n.unique_id, n.name, n.resource_type.as_str(), group, n.materialized().as_str(), parents, short(&n.description, 90)])
        })
        .collect();
    let index = json!({"project": project.settings.project_name, "generated_at": generated_at, "shard": SHARD, "nodes": rows});
    std::fs::write(data.join("index.js"), format!("window.DP_INDEX={index};\n"))?;

    let cat = |uid: &str| catalog["nodes"].get(uid).or_else(|| catalog["sources"].get(uid)).cloned();
    for (k, chunk) in nodes.chunks(SHARD).enumerate() {
        let mut shard = serde_json::Map::new();
        for (j, n) in chunk.iter().enumerate() {
            shard.insert((k * SHARD + j).to_string(), detail(n, project, compiled, cat(&n.unique_id), lineage, tests.get(n.unique_id.as_str())));
        }
        std::fs::write(data.join(format!("d{k}.js")), format!("window.DP_SHARD({k},{});\n", Value::Object(shard)))?;
    }
    Ok(nodes.len())
}

fn detail(
    n: &Node,
    project: &Project,
    compiled: Option<&Compiled>,
    catalog: Option<Value>,
    lineage: Option<&Lineage>,
    tests: Option<&Vec<(Option<&str>, String)>>,
) -> Value {
    let nl = lineage.and_then(|l| l.nodes.get(&n.unique_id));
    let display = |uid: &str| lineage.map(|l| crate::lineage::query::display(l, uid)).unwrap_or_else(|| crate::graph::short_name(uid));
    // Columns: the warehouse's (catalog), else the planned ones (lineage),
    // else the documented ones; documented descriptions and tests on top.
    let mut names: Vec<String> = vec![];
    let mut types: HashMap<String, String> = HashMap::new();
    if let Some(Value::Object(cols)) = catalog.as_ref().map(|c| c["columns"].clone()) {
        for (k, v) in cols {
            types.insert(k.clone(), v["type"].as_str().unwrap_or("").to_string());
            names.push(k);
        }
    } else if let Some(nl) = nl {
        for (k, c) in &nl.columns {
            types.insert(k.clone(), c.data_type.clone());
            names.push(k.clone());
        }
    }
    for k in n.columns.keys() {
        if !names.iter().any(|x| x.eq_ignore_ascii_case(k)) {
            names.push(k.clone());
        }
    }
    let columns: Vec<Value> = names
        .iter()
        .map(|name| {
            let doc = n.columns.get(name).or_else(|| n.columns.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, c)| c));
            let ty = types.get(name).cloned().or_else(|| doc.and_then(|d| d.data_type.clone())).unwrap_or_default();
            let col_tests: Vec<&String> =
                tests.map(|t| t.iter().filter(|(c, _)| c.is_some_and(|c| c.eq_ignore_ascii_case(name))).map(|(_, l)| l).collect()).unwrap_or_default();
            let cl = nl.and_then(|l| l.columns.get(name));
            let inputs: Vec<Value> = cl
                .map(|c| {
                    c.inputs
                        .iter()
                        .map(|i| {
                            json!([i.node, display(&i.node), i.column, i.transformations.iter().map(|t| t.subtype.as_str()).collect::<Vec<_>>().join(",")])
                        })
                        .collect()
                })
                .unwrap_or_default();
            json!({"name": name, "type": ty, "description": doc.map(|d| d.description.clone()).unwrap_or_default(),
                   "tests": col_tests, "inputs": inputs, "unknown": cl.and_then(|c| c.unknown.clone())})
        })
        .collect();
    let node_tests: Vec<&String> = tests.map(|t| t.iter().filter(|(c, _)| c.is_none()).map(|(_, l)| l).collect()).unwrap_or_default();
    let stats = catalog.as_ref().map(|c| c["stats"].clone()).unwrap_or(Value::Null);
    json!({
        "description": n.description,
        "path": n.original_file_path,
        "relation": if n.resource_type == ResourceType::Source || n.materialized() != crate::project::nodes::Materialization::Ephemeral { json!(n.relation_name()) } else { Value::Null },
        "tags": n.tags(),
        "raw": n.raw_code,
        "compiled": compiled.and_then(|c| c.sql.get(&n.unique_id)),
        "location": n.source.as_ref().and_then(|s| s.location.clone()),
        "published": nl.and_then(|l| l.published.clone()),
        "columns": columns,
        "tests": node_tests,
        "stats": stats,
        "lineage_note": nl.and_then(|l| l.unavailable.clone()),
        "dataset": nl.map(|l| l.dataset.iter().map(|i| json!([i.node, display(&i.node), i.column, i.transformations.iter().map(|t| t.subtype.as_str()).collect::<Vec<_>>().join(",")])).collect::<Vec<_>>()).unwrap_or_default(),
        "project": project.settings.project_name,
    })
}
