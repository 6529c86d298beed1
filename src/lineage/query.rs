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
    if let Some(l) = &n.location {
        s.push_str(&format!("  <- files {l}"));
    }
    if let Some(p) = n.published.as_deref().and_then(|p| p.strip_prefix("postgres:")) {
        s.push_str(&format!("  -> PostgreSQL {p}"));
    }
    s
}

pub fn json(lineage: &Lineage, start: &Col, dir: Direction, edges: &[Edge]) -> Value {
    let col = |c: &Col| json!({"node": c.0, "name": display(lineage, &c.0), "column": c.1});
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

pub fn dot(lineage: &Lineage, start: &Col, edges: &[Edge]) -> String {
    let q = |s: String| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let mut out = String::from("digraph lineage {\n  rankdir=LR;\n  node [shape=box, fontname=\"Helvetica\"];\n");
    out.push_str(&format!("  {} [style=bold];\n", q(col_name(lineage, start))));
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
