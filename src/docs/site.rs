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
use crate::lineage::{Lineage, NodeLineage};
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

/// Writes the site into `dir` (replacing what was there: every file is
/// rewritten and shards beyond the project's count are removed).
pub fn write_site(
    dir: &Path,
    project: &Project,
    compiled: Option<&Compiled>,
    catalog: &Value,
    lineage: Option<&Lineage>,
    generated_at: &str,
) -> std::io::Result<usize> {
    let data = dir.join("data");
    std::fs::create_dir_all(&data)?;
    std::fs::write(dir.join("index.html"), INDEX_HTML)?;
    std::fs::write(dir.join("app.js"), APP_JS)?;
    std::fs::write(dir.join("style.css"), STYLE_CSS)?;

    let nodes: Vec<&Node> = project.nodes.values().filter(|n| listed(n)).collect();
    // Nodes of other systems (ingestion sources, bronze, PostgreSQL,
    // Superset) from the lineage, after the project's.
    let external: Vec<(&String, &NodeLineage)> = lineage.map(|l| l.nodes.iter().filter(|(_, n)| n.external.is_some()).collect()).unwrap_or_default();
    let pos: HashMap<&str, usize> =
        nodes.iter().map(|n| n.unique_id.as_str()).chain(external.iter().map(|(u, _)| u.as_str())).enumerate().map(|(i, u)| (u, i)).collect();
    // Tests by the node (and column) they check.
    let mut tests: HashMap<&str, Vec<(Option<&str>, String)>> = HashMap::new();
    for t in project.nodes.values().filter(|n| n.resource_type == ResourceType::Test) {
        let target = t.attached_node.as_deref().or_else(|| t.depends_on.iter().find(|d| pos.contains_key(d.as_str())).map(String::as_str));
        if let Some(a) = target {
            tests.entry(a).or_default().push((t.column_name.as_deref(), test_label(t)));
        }
    }
    // Parents: the project's, plus those the lineage adds (a source's bronze).
    let parents_of = |uid: &str, own: &[String]| -> Vec<usize> {
        let extra = lineage.and_then(|l| l.nodes.get(uid)).map(|nl| nl.depends_on.as_slice()).unwrap_or_default();
        let mut ps: Vec<usize> = own.iter().chain(extra).filter_map(|d| pos.get(d.as_str()).copied()).collect();
        ps.dedup();
        ps.sort_unstable();
        ps.dedup();
        ps
    };
    // index.js: [uid, name, type, group (schema or source), materialized, parents, short description]
    let mut rows: Vec<Value> = nodes
        .iter()
        .map(|n| {
            let group = n.source.as_ref().map(|s| s.source_name.clone()).unwrap_or_else(|| n.schema.clone());
            json!([
                n.unique_id,
                n.name,
                n.resource_type.as_str(),
                group,
                n.materialized().as_str(),
                parents_of(&n.unique_id, &n.depends_on),
                short(&n.description, 90)
            ])
        })
        .collect();
    for (uid, nl) in &external {
        let e = nl.external.as_ref().expect("external");
        rows.push(json!([uid, external_name(nl), nl.resource_type, e.system, "", parents_of(uid, &[]), short(e.detail.as_deref().unwrap_or(""), 90)]));
    }
    let index = json!({"project": project.settings.project_name, "generated_at": generated_at, "shard": SHARD, "nodes": rows});
    std::fs::write(data.join("index.js"), format!("window.DP_INDEX={index};\n"))?;

    let cat = |uid: &str| catalog["nodes"].get(uid).or_else(|| catalog["sources"].get(uid)).cloned();
    // Shards are built and written in parallel (one shard a task).
    use rayon::prelude::*;
    let items: Vec<Result<&Node, &NodeLineage>> = nodes.iter().map(|n| Ok(*n)).chain(external.iter().map(|(_, nl)| Err(*nl))).collect();
    let total = items.len();
    let shards = items.len().div_ceil(SHARD);
    items.par_chunks(SHARD).enumerate().try_for_each(|(k, chunk)| -> std::io::Result<()> {
        let shard: serde_json::Map<String, Value> = chunk
            .iter()
            .enumerate()
            .map(|(j, item)| {
                let d = match item {
                    Ok(n) => detail(n, project, compiled, cat(&n.unique_id), lineage, tests.get(n.unique_id.as_str())),
                    Err(nl) => external_detail(nl, lineage),
                };
                ((k * SHARD + j).to_string(), d)
            })
            .collect();
        std::fs::write(data.join(format!("d{k}.js")), format!("window.DP_SHARD({k},{});\n", Value::Object(shard)))
    })?;
    // Shards of an earlier, bigger project go.
    for e in std::fs::read_dir(&data)?.flatten() {
        let name = e.file_name();
        let stale = name.to_str().and_then(|n| n.strip_prefix('d')?.strip_suffix(".js")?.parse::<usize>().ok()).is_some_and(|k| k >= shards);
        if stale {
            std::fs::remove_file(e.path())?;
        }
    }
    Ok(total)
}

/// A short label for a node of another system: the chart's or dashboard's
/// name, the dataset's or PostgreSQL table's `schema.table`, the bronze
/// location, the landing path.
fn external_name(nl: &NodeLineage) -> String {
    let e = nl.external.as_ref().expect("external");
    let name = e.name.as_str();
    match nl.resource_type.as_str() {
        crate::lineage::systems::CHART => name.rsplit_once('/').map_or(name, |(_, c)| c).to_string(),
        crate::lineage::systems::POSTGRES_TABLE => {
            // postgres://host:port/db.schema.table → schema.table (with the db when it is a query)
            let after = name.split_once("://").map_or(name, |(_, r)| r);
            let path = after.split_once('/').map_or(after, |(_, p)| p);
            let parts: Vec<&str> = path.splitn(2, '.').collect();
            parts.get(1).copied().unwrap_or(path).to_string()
        }
        _ => name.split_once(':').map_or(name, |(_, r)| r).to_string(),
    }
}

/// A page of a node of another system: what it is, where it lives, its
/// columns with their inputs and (bronze) the objects ingestion wrote.
fn external_detail(nl: &NodeLineage, lineage: Option<&Lineage>) -> Value {
    let e = nl.external.as_ref().expect("external");
    let display = |uid: &str| lineage.map(|l| crate::lineage::query::display(l, uid)).unwrap_or_else(|| uid.to_string());
    let inputs = |list: &[crate::lineage::Input]| -> Vec<Value> {
        list.iter()
            .map(|i| json!([i.node, display(&i.node), i.column, i.transformations.iter().map(|t| t.subtype.as_str()).collect::<Vec<_>>().join(",")]))
            .collect()
    };
    let columns: Vec<Value> = nl
        .columns
        .iter()
        .map(|(name, c)| json!({"name": name, "type": c.data_type, "description": "", "tests": [], "inputs": inputs(&c.inputs), "unknown": c.unknown}))
        .collect();
    json!({
        "description": e.detail,
        "path": "",
        "relation": e.name,
        "location": e.uri,
        "system": e.system,
        "objects": e.objects,
        "tags": [],
        "columns": columns,
        "tests": [],
        "stats": Value::Null,
        "dataset": inputs(&nl.dataset),
    })
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
