//! `dp lineage <column>`: a column's upstream (or downstream) columns from
//! [`Lineage`], as a text tree, JSON or Graphviz dot.

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};

use super::{Input, Lineage, LineageError, Transformation};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Upstream,
    Downstream,
}

/// A column of a node.
pub type Col = (String, String);

/// One edge of the walk: `from` feeds `to`.
#[derive(Clone, Debug)]
pub struct Edge {
    pub from: Col,
    pub to: Col,
    pub transformations: Vec<Transformation>,
    /// Hops from the start column (1 = adjacent).
    pub depth: usize,
}

/// A readable name of a node: `schema.table` for relations, the model's
/// name for ephemeral models, `source_name.table` for sources.
pub fn display(lineage: &Lineage, uid: &str) -> String {
    match lineage.nodes.get(uid) {
        Some(n) if n.external.is_some() => n.external.as_ref().map(|e| e.name.clone()).unwrap_or_default(),
        Some(n) if n.resource_type == "source" => format!("source {}", crate::graph::short_name(uid)),
        Some(n) if !n.relation.is_empty() => n.relation.clone(),
        _ if uid.starts_with("table:") => uid.trim_start_matches("table:").to_string(),
        _ => crate::graph::short_name(uid),
    }
}

/// Names a column may be given by, each pointing at (node, column).
fn names(lineage: &Lineage) -> HashMap<String, Col> {
    let mut out = HashMap::new();
    for (uid, n) in &lineage.nodes {
        if let Some(e) = &n.external {
            for c in n.columns.keys() {
                // A chart's `sum__revenue` is `sum(revenue)` in its dashboard file.
                let written = c.split_once("__").filter(|_| n.resource_type == super::systems::CHART).map(|(f, col)| format!("{f}({col})"));
                for name in std::iter::once(&e.name).chain(&e.aliases) {
                    for col in std::iter::once(c).chain(written.as_ref()) {
                        out.entry(format!("{name}.{col}").to_lowercase()).or_insert_with(|| (uid.clone(), c.clone()));
                    }
                }
            }
            continue;
        }
        let short = crate::graph::short_name(uid);
        for c in n.columns.keys() {
            let col = (uid.clone(), c.clone());
            if !n.relation.is_empty() {
                out.insert(format!("{}.{c}", n.relation).to_lowercase(), col.clone());
            }
            out.entry(format!("{short}.{c}").to_lowercase()).or_insert(col);
        }
    }
    out
}

/// Resolves `schema.model.column`, `model.column` or `source.table.column`.
pub fn resolve(lineage: &Lineage, name: &str) -> Result<Col, LineageError> {
    unknown_superset_name(lineage, name)?;
    if !name.contains('.') {
        return Err(LineageError::BadName(name.to_string()));
    }
    let all = names(lineage);
    if let Some(c) = all.get(&name.to_lowercase()) {
        return Ok(c.clone());
    }
    let mut scored: Vec<(f64, &String)> = all.keys().map(|k| (strsim::jaro_winkler(&name.to_lowercase(), k), k)).collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    let close: Vec<String> = scored.iter().filter(|(s, _)| *s > 0.75).take(3).map(|(_, k)| (*k).clone()).collect();
    // The node exists but not the column: say which columns it has.
    let (node_part, _) = name.rsplit_once('.').unwrap_or((name, ""));
    let hint = if close.is_empty() {
        let example = all.keys().filter(|k| k.matches('.').count() == 2).min().or(all.keys().min()).cloned().unwrap_or_default();
        format!("\n  hint: columns are named schema.model.column, e.g. {example}")
    } else {
        format!("\n  hint: did you mean {}?", close.join(", "))
    };
    let what = if all.keys().any(|k| k.starts_with(&format!("{}.", node_part.to_lowercase()))) {
        format!("{node_part} has no column '{}'", name.rsplit('.').next().unwrap_or(""))
    } else {
        format!("no column named '{name}' in the project's lineage")
    };
    Err(LineageError::NotFound(format!("{what}{hint}")))
}

/// `chart:...`, `dashboard:...` or `dataset:...` naming no such Superset
/// object: an error with the closest names of that kind.
fn unknown_superset_name(lineage: &Lineage, name: &str) -> Result<(), LineageError> {
    let lower = name.to_lowercase();
    let kinds = [
        ("chart:", "chart", super::systems::CHART, "chart:<dashboard>/<chart>.<metric or column>"),
        ("dashboard:", "dashboard", super::systems::DASHBOARD, "dashboard:<title>.<chart>"),
        ("dataset:", "dataset", super::systems::DATASET, "dataset:<schema>.<table>.<column or metric>"),
    ];
    let Some((prefix, what, kind, form)) = kinds.into_iter().find(|(p, _, _, _)| lower.starts_with(p)) else {
        return Ok(());
    };
    // (lowercased name or alias, name as shown)
    let known: Vec<(String, &str)> = lineage
        .nodes
        .values()
        .filter(|n| n.resource_type == kind)
        .filter_map(|n| n.external.as_ref())
        .flat_map(|e| std::iter::once(&e.name).chain(&e.aliases).map(move |a| (a.to_lowercase(), e.name.as_str())))
        .collect();
    if known.iter().any(|(k, _)| lower == *k || lower.starts_with(&format!("{k}."))) {
        return Ok(());
    }
    // The object's part: what comes before `.column` (all of it without one).
    let obj = name.rsplit_once('.').map_or(name, |(o, _)| o);
    let asked = &obj[prefix.len()..];
    let mut scored: Vec<(f64, &str)> =
        known.iter().map(|(k, shown)| (strsim::jaro_winkler(&asked.to_lowercase(), k.get(prefix.len()..).unwrap_or(k)), *shown)).collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    let mut close: Vec<&str> = vec![];
    for (s, shown) in scored {
        if s > 0.8 && !close.contains(&shown) && close.len() < 3 {
            close.push(shown);
        }
    }
    let mut all: Vec<&str> = known.iter().map(|(_, s)| *s).collect();
    all.sort();
    all.dedup();
    let hint = if !close.is_empty() {
        format!("did you mean {}?", close.join(", "))
    } else if all.is_empty() {
        format!("the lineage has no Superset {what}s (dashboards/*.yml); `dp lineage` without --cached rebuilds target/lineage.json")
    } else {
        format!("the {what}s are {}", all.iter().take(8).copied().collect::<Vec<_>>().join(", "))
    };
    Err(LineageError::NotFound(format!("no Superset {what} named '{asked}'\n  hint: {hint} (columns are named {form})")))
}

/// Walks from `start` in `dir`, up to `depth` hops (all when `None`).
pub fn walk(lineage: &Lineage, start: &Col, dir: Direction, depth: Option<usize>) -> Vec<Edge> {
    let mut reverse: HashMap<Col, Vec<(Col, &Input)>> = HashMap::new();
    if dir == Direction::Downstream {
        for (uid, n) in &lineage.nodes {
            for (c, cl) in &n.columns {
                for i in &cl.inputs {
                    reverse.entry((i.node.clone(), i.column.clone())).or_default().push(((uid.clone(), c.clone()), i));
                }
            }
        }
    }
    let mut out = vec![];
    let mut seen: HashSet<Col> = HashSet::from([start.clone()]);
    let mut frontier = vec![start.clone()];
    let mut level = 0;
    while !frontier.is_empty() && depth.is_none_or(|d| level < d) {
        level += 1;
        let mut next = vec![];
        for col in frontier {
            let adjacent: Vec<(Col, Vec<Transformation>)> = match dir {
                Direction::Upstream => lineage
                    .nodes
                    .get(&col.0)
                    .and_then(|n| n.columns.get(&col.1))
                    .map(|c| c.inputs.iter().map(|i| ((i.node.clone(), i.column.clone()), i.transformations.clone())).collect())
                    .unwrap_or_default(),
                Direction::Downstream => reverse.get(&col).map(|v| v.iter().map(|(c, i)| (c.clone(), i.transformations.clone())).collect()).unwrap_or_default(),
            };
            for (other, ts) in adjacent {
                let (from, to) = if dir == Direction::Upstream { (other.clone(), col.clone()) } else { (col.clone(), other.clone()) };
                out.push(Edge { from, to, transformations: ts, depth: level });
                if seen.insert(other.clone()) {
                    next.push(other);
                }
            }
        }
        frontier = next;
    }
    out
}

fn label(ts: &[Transformation]) -> String {
    ts.iter().map(|t| format!("{}/{}", if t.kind == super::Kind::Direct { "DIRECT" } else { "INDIRECT" }, t.subtype.as_str())).collect::<Vec<_>>().join(", ")
}

fn col_name(lineage: &Lineage, c: &Col) -> String {
    format!("{}.{}", display(lineage, &c.0), c.1)
}

/// The walk as an indented tree, one column per line.
pub fn text(lineage: &Lineage, start: &Col, dir: Direction, edges: &[Edge]) -> String {
    let mut out = format!("{}{}\n", col_name(lineage, start), notes(lineage, start));
    let mut by_parent: HashMap<&Col, Vec<&Edge>> = HashMap::new();
    for e in edges {
        let key = if dir == Direction::Upstream { &e.to } else { &e.from };
        by_parent.entry(key).or_default().push(e);
    }
    fn rec(lineage: &Lineage, dir: Direction, at: &Col, prefix: &str, by: &HashMap<&Col, Vec<&Edge>>, path: &mut Vec<Col>, out: &mut String) {
        let Some(children) = by.get(at) else { return };
        for (i, e) in children.iter().enumerate() {
            let last = i + 1 == children.len();
            let other = if dir == Direction::Upstream { &e.from } else { &e.to };
            let cycle = path.contains(other);
            out.push_str(&format!(
                "{prefix}{}{}  [{}]{}\n",
                if last { "└─ " } else { "├─ " },
                col_name(lineage, other),
                label(&e.transformations),
                notes(lineage, other)
            ));
            if !cycle {
                path.push(other.clone());
                rec(lineage, dir, other, &format!("{prefix}{}", if last { "   " } else { "│  " }), by, path, out);
                path.pop();
            }
        }
    }
    rec(lineage, dir, start, "", &by_parent, &mut vec![start.clone()], &mut out);
    if let Some(n) = lineage.nodes.get(&start.0).filter(|n| dir == Direction::Upstream && !n.dataset.is_empty()) {
        out.push_str(&format!("\nall rows of {} also depend on:\n", display(lineage, &start.0)));
        for i in &n.dataset {
            out.push_str(&format!("   {}  [{}]\n", col_name(lineage, &(i.node.clone(), i.column.clone())), label(&i.transformations)));
        }
    }
    out
}

/// "(unknown: ...)", "(bronze: <files>)" or a note that the model has no column lineage.
fn notes(lineage: &Lineage, c: &Col) -> String {
    let Some(n) = lineage.nodes.get(&c.0) else { return String::new() };
    let mut s = String::new();
    if let Some(u) = &n.unavailable {
        s.push_str(&format!("  ({u})"));
    }
    if let Some(u) = n.columns.get(&c.1).and_then(|x| x.unknown.as_ref()) {
        s.push_str(&format!("  (unknown: {u})"));
    }
    // A source ingested by dp shows its bronze node instead.
    if let Some(l) = n.location.as_ref().filter(|_| !n.depends_on.iter().any(|d| d.starts_with("bronze:"))) {
        s.push_str(&format!("  <- files {l}"));
    }
    if let Some(e) = n.external.as_ref().filter(|e| !e.objects.is_empty()) {
        let rows: i64 = e.objects.iter().filter_map(|o| o.rows).sum();
        let last = e.objects.iter().map(|o| o.ingested_at.as_str()).max().unwrap_or("");
        let n = e.objects.len();
        s.push_str(&format!("  ({n} object{}, {rows} rows; last ingested {last})", if n == 1 { "" } else { "s" }));
    }
    if let Some(p) = n.published.as_deref().and_then(|p| p.strip_prefix("postgres:")) {
        s.push_str(&format!("  -> PostgreSQL {p}"));
    }
    s
}

pub fn json(lineage: &Lineage, start: &Col, dir: Direction, edges: &[Edge]) -> Value {
    let col = |c: &Col| {
        let mut v = json!({"node": c.0, "name": display(lineage, &c.0), "column": c.1});
        if let Some(n) = lineage.nodes.get(&c.0).filter(|n| n.external.is_some()) {
            v["resource_type"] = json!(n.resource_type);
        }
        v
    };
    let node = lineage.nodes.get(&start.0);
    json!({
        "column": col(start),
        "direction": if dir == Direction::Upstream { "upstream" } else { "downstream" },
        "unknown": node.and_then(|n| n.columns.get(&start.1)).and_then(|c| c.unknown.clone()),
        "unavailable": node.and_then(|n| n.unavailable.clone()),
        "dataset": node.map(|n| n.dataset.clone()).unwrap_or_default(),
        "edges": edges.iter().map(|e| json!({"from": col(&e.from), "to": col(&e.to), "transformations": e.transformations, "depth": e.depth})).collect::<Vec<_>>(),
    })
}

/// The system a node belongs to, for dot's clusters.
fn system(lineage: &Lineage, uid: &str) -> &'static str {
    match lineage.nodes.get(uid).and_then(|n| n.external.as_ref()).map(|e| e.system.as_str()) {
        Some("postgres") => "PostgreSQL",
        Some("files") => "Landing files",
        Some("bronze") => "Bronze",
        Some("superset") => "Superset",
        _ => "dp warehouse",
    }
}

pub fn dot(lineage: &Lineage, start: &Col, edges: &[Edge]) -> String {
    let q = |s: String| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let mut out = String::from("digraph lineage {\n  rankdir=LR;\n  node [shape=box, fontname=\"Helvetica\"];\n");
    // One cluster per system, in the order the chain runs.
    let mut cols: Vec<&Col> = vec![start];
    for e in edges {
        for c in [&e.from, &e.to] {
            if !cols.contains(&c) {
                cols.push(c);
            }
        }
    }
    let systems = [
        ("PostgreSQL", "#336791", "cylinder"),
        ("Landing files", "#8a6d3b", "folder"),
        ("Bronze", "#b87333", "folder"),
        ("dp warehouse", "#2f6fdf", "box"),
        ("Superset", "#1fa8c9", "component"),
    ];
    let many = cols.iter().any(|c| system(lineage, &c.0) != "dp warehouse");
    for (i, (name, colour, shape)) in systems.iter().enumerate() {
        let members: Vec<&&Col> = cols.iter().filter(|c| system(lineage, &c.0) == *name).collect();
        if members.is_empty() {
            continue;
        }
        let indent = if many {
            out.push_str(&format!("  subgraph cluster_{i} {{\n    label={};\n    color=\"{colour}\";\n", q(name.to_string())));
            "    "
        } else {
            "  "
        };
        for c in members {
            let bold = if *c == start { ", style=bold" } else { "" };
            let attrs = if *name == "dp warehouse" { bold.trim_start_matches(", ").to_string() } else { format!("shape={shape}, color=\"{colour}\"{bold}") };
            if !attrs.is_empty() {
                out.push_str(&format!("{indent}{} [{attrs}];\n", q(col_name(lineage, c))));
            } else if many {
                out.push_str(&format!("{indent}{};\n", q(col_name(lineage, c))));
            }
        }
        if many {
            out.push_str("  }\n");
        }
    }
    for e in edges {
        let indirect = e.transformations.iter().all(|t| t.kind == super::Kind::Indirect);
        out.push_str(&format!(
            "  {} -> {} [label={}{}];\n",
            q(col_name(lineage, &e.from)),
            q(col_name(lineage, &e.to)),
            q(e.transformations.iter().map(|t| t.subtype.as_str()).collect::<Vec<_>>().join(",")),
            if indirect { ", style=dashed" } else { "" }
        ));
    }
    out.push_str("}\n");
    out
}
