//! The DAG: resolves every `ref()`/`source()` to a unique id (with the file,
//! line and closest existing name when one is missing), rejects cycles with
//! their path, and orders nodes for execution. Selection lives in [`select`].

pub mod defer;
pub mod select;
pub mod state;

use indexmap::IndexSet;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::util::{FastIndexMap, FastMap};
use std::collections::HashMap;

use crate::project::load::Project;
use crate::project::nodes::{Node, RefCall, ResourceType};
use crate::project::refs::{RefIndex, RefMiss};

#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("{file}:{line}: {what} '{name}' was not found{hint}")]
    Missing { file: String, line: usize, what: &'static str, name: String, hint: String },
    #[error("found a cycle: {0}\n  hint: a model cannot depend on itself, directly or through other models")]
    Cycle(String),
    #[error("{file}:{line}: {message}")]
    Invalid { file: String, line: usize, message: String },
}

/// The dependency graph of a project's enabled nodes.
pub struct Dag {
    pub graph: DiGraph<String, ()>,
    pub index: FastMap<String, NodeIndex>,
    /// parent → children, by unique id (the manifest's child_map).
    pub children: FastIndexMap<String, Vec<String>>,
    /// child → parents (the manifest's parent_map).
    pub parents: FastIndexMap<String, Vec<String>>,
}

fn line_of_call(raw: &str, needle: &str) -> usize {
    raw.find(needle).map(|i| raw[..i].bytes().filter(|b| *b == b'\n').count() + 1).unwrap_or(1)
}

/// Resolves refs and sources of every node into `depends_on`.
pub fn resolve_dependencies(project: &mut Project) -> Result<(), GraphError> {
    let refable = RefIndex::new(&project.settings.project_name, project.nodes.values());
    let sources: HashMap<(String, String), String> =
        project.nodes.iter().filter_map(|(uid, n)| n.source.as_ref().map(|s| ((s.source_name.clone(), n.name.clone()), uid.clone()))).collect();
    let disabled_names: IndexSet<String> = project.disabled.values().map(|n| n.name.clone()).collect();

    // Each node's parents, in parallel; the first error in the project's order.
    use rayon::prelude::*;
    let resolved: Vec<Result<Vec<String>, GraphError>> = project
        .nodes
        .par_values()
        .map(|n| {
            let mut deps: Vec<String> = Vec::with_capacity(n.sources.len() + n.refs.len());
            for (s, t) in &n.sources {
                match sources.get(&(s.clone(), t.clone())) {
                    Some(id) if deps.contains(id) => {}
                    Some(id) => deps.push(id.clone()),
                    None => {
                        let names: Vec<String> = sources.keys().map(|(a, b)| format!("{a}.{b}")).collect();
                        let hint = crate::util::suggest(&format!("{s}.{t}"), names.iter().map(String::as_str))
                            .map(|x| format!("\n  hint: did you mean source('{}', '{}')?", x.split_once('.').unwrap().0, x.split_once('.').unwrap().1))
                            .unwrap_or_else(|| "\n  hint: declare it under `sources:` in a YAML file of models/".into());
                        let (file, line) = locate(n, &format!("'{t}'"));
                        return Err(GraphError::Missing { file, line, what: "source", name: format!("{s}.{t}"), hint });
                    }
                }
            }
            // after the sources, as dbt's `process_sources` runs before
            // `process_refs`; a parent named twice is kept once
            for r in &n.refs {
                let d = resolve_ref(n, r, &refable, &disabled_names)?;
                if !deps.contains(&d) {
                    deps.push(d);
                }
            }
            Ok(deps)
        })
        .collect();
    let resolved: Vec<Vec<String>> = resolved.into_iter().collect::<Result<_, _>>()?;
    for (n, deps) in project.nodes.values_mut().zip(resolved) {
        n.depends_on = deps;
    }
    Ok(())
}

fn locate(n: &Node, needle: &str) -> (String, usize) {
    if n.resource_type == ResourceType::Test && n.test_metadata.is_some() || n.resource_type == ResourceType::Exposure {
        (n.patch_path.clone().unwrap_or(n.original_file_path.clone()), n.line.unwrap_or(1))
    } else {
        (n.original_file_path.clone(), line_of_call(&n.raw_code, needle) + n.line.unwrap_or(1).saturating_sub(1))
    }
}

fn resolve_ref(from: &Node, r: &RefCall, refable: &RefIndex, disabled: &IndexSet<String>) -> Result<String, GraphError> {
    match refable.resolve(&from.package_name, r) {
        Ok(t) => Ok(t.uid.clone()),
        Err(RefMiss::NotFound) => {
            let (file, line) = locate(from, &format!("'{}'", r.name));
            let hint = if disabled.contains(&r.name) {
                format!("\n  hint: '{}' is disabled; enable it or remove the ref", r.name)
            } else {
                crate::util::suggest(&r.name, refable.names()).map(|s| format!("\n  hint: did you mean ref('{s}')?")).unwrap_or_default()
            };
            let what = if from.resource_type == ResourceType::Test { "ref in test" } else { "ref" };
            Err(GraphError::Missing { file, line, what, name: r.name.clone(), hint })
        }
        Err(RefMiss::Ambiguous(many)) => {
            let (file, line) = locate(from, &r.name);
            let ids: Vec<&str> = many.iter().map(|t| t.uid.as_str()).collect();
            Err(GraphError::Invalid { file, line, message: format!("ref('{}') is ambiguous: {}", r.name, ids.join(", ")) })
        }
    }
}

impl Dag {
    /// Builds the DAG from resolved `depends_on`; errors on cycles.
    pub fn build(project: &Project) -> Result<Dag, GraphError> {
        let nodes = &project.nodes;
        // A node's index in the graph is its position among the nodes (and
        // in `children`, `parents`). The graph with its children, and the
        // index with the parents, are built at once.
        let ((graph, children), (index, parents)) = rayon::join(
            || {
                let mut graph = DiGraph::with_capacity(nodes.len(), nodes.len());
                for uid in nodes.keys() {
                    graph.add_node(uid.clone());
                }
                let mut children: FastIndexMap<String, Vec<String>> = nodes.keys().map(|k| (k.clone(), vec![])).collect();
                for (b, (uid, n)) in nodes.iter().enumerate() {
                    for d in &n.depends_on {
                        if let Some(a) = nodes.get_index_of(d.as_str()) {
                            graph.add_edge(NodeIndex::new(a), NodeIndex::new(b), ());
                            children[a].push(uid.clone());
                        }
                    }
                }
                for v in children.values_mut() {
                    v.sort();
                }
                (graph, children)
            },
            || {
                let index: FastMap<String, NodeIndex> = nodes.keys().enumerate().map(|(i, k)| (k.clone(), NodeIndex::new(i))).collect();
                let parents: FastIndexMap<String, Vec<String>> = nodes.iter().map(|(k, n)| (k.clone(), n.depends_on.clone())).collect();
                (index, parents)
            },
        );
        let dag = Dag { graph, index, children, parents };
        if let Some(cycle) = dag.find_cycle() {
            return Err(GraphError::Cycle(cycle));
        }
        Ok(dag)
    }

    fn find_cycle(&self) -> Option<String> {
        let sccs = petgraph::algo::tarjan_scc(&self.graph);
        for scc in sccs {
            let self_loop = scc.len() == 1 && self.graph.contains_edge(scc[0], scc[0]);
            if scc.len() > 1 || self_loop {
                // Walk the cycle in edge order starting from the smallest name.
                let set: std::collections::HashSet<NodeIndex> = scc.iter().copied().collect();
                let start = *scc.iter().min_by_key(|i| &self.graph[**i]).unwrap();
                let mut path = vec![start];
                let mut cur = start;
                loop {
                    let next = self.graph.neighbors(cur).filter(|n| set.contains(n)).min_by_key(|n| &self.graph[*n]).unwrap();
                    if next == start || path.contains(&next) {
                        path.push(next);
                        break;
                    }
                    path.push(next);
                    cur = next;
                }
                let names: Vec<String> = path.iter().map(|i| short_name(&self.graph[*i])).collect();
                return Some(names.join(" -> "));
            }
        }
        None
    }

    /// Nodes in dependency order (parents first), restricted to `subset`;
    /// ties are broken by unique id so the order is stable.
    ///
    /// Only the subset and its ancestors are walked: no other node has an
    /// edge into them, so the subset comes out in the order a walk of the
    /// whole graph gives it (`dp run -s one_model` of 40,000 nodes walks
    /// that model's few ancestors).
    pub fn topo_order(&self, subset: &IndexSet<String>) -> Vec<String> {
        use petgraph::Direction::{Incoming, Outgoing};
        let mut within = fixedbitset::FixedBitSet::with_capacity(self.graph.node_count());
        let mut stack: Vec<NodeIndex> = subset.iter().filter_map(|u| self.index.get(u).copied()).filter(|i| !within.put(i.index())).collect();
        while let Some(i) = stack.pop() {
            for p in self.graph.neighbors_directed(i, Incoming) {
                if !within.put(p.index()) {
                    stack.push(p);
                }
            }
        }
        let mut indegree = vec![0usize; self.graph.node_count()];
        let mut ready = std::collections::BTreeSet::new();
        for i in within.ones().map(NodeIndex::new) {
            indegree[i.index()] = self.graph.neighbors_directed(i, Incoming).count();
            if indegree[i.index()] == 0 {
                ready.insert((self.graph[i].as_str(), i));
            }
        }
        let mut out = Vec::with_capacity(subset.len());
        while let Some((uid, i)) = ready.pop_first() {
            if subset.contains(uid) {
                out.push(uid.to_string());
            }
            for c in self.graph.neighbors_directed(i, Outgoing).filter(|c| within.contains(c.index())) {
                let d = &mut indegree[c.index()];
                *d -= 1;
                if *d == 0 {
                    ready.insert((self.graph[c].as_str(), c));
                }
            }
        }
        out
    }

    pub fn ancestors(&self, uid: &str, depth: Option<usize>) -> IndexSet<String> {
        self.walk(uid, depth, petgraph::Direction::Incoming)
    }

    pub fn descendants(&self, uid: &str, depth: Option<usize>) -> IndexSet<String> {
        self.walk(uid, depth, petgraph::Direction::Outgoing)
    }

    fn walk(&self, uid: &str, depth: Option<usize>, dir: petgraph::Direction) -> IndexSet<String> {
        let mut out = IndexSet::new();
        let Some(&start) = self.index.get(uid) else { return out };
        let mut frontier = vec![start];
        let mut level = 0;
        while !frontier.is_empty() && depth.is_none_or(|d| level < d) {
            let mut next = vec![];
            for n in frontier {
                for m in self.graph.neighbors_directed(n, dir) {
                    if out.insert(self.graph[m].clone()) {
                        next.push(m);
                    }
                }
            }
            frontier = next;
            level += 1;
        }
        out
    }
}

/// `model.proj.stg_x` → `stg_x`; sources keep `source.table`.
pub fn short_name(uid: &str) -> String {
    let parts: Vec<&str> = uid.split('.').collect();
    match parts.first() {
        Some(&"source") if parts.len() >= 4 => format!("{}.{}", parts[2], parts[3]),
        _ if parts.len() >= 3 => parts[2].to_string(),
        _ => uid.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole-graph walk `topo_order` replaced: Kahn's algorithm over
    /// every node, the smallest unique id first, filtered to the subset.
    fn whole_graph_order(dag: &Dag, subset: &IndexSet<String>) -> Vec<String> {
        let mut indegree: HashMap<NodeIndex, usize> = HashMap::new();
        for i in dag.graph.node_indices() {
            indegree.insert(i, dag.graph.neighbors_directed(i, petgraph::Direction::Incoming).count());
        }
        let mut ready: std::collections::BTreeSet<(String, NodeIndex)> =
            indegree.iter().filter(|(_, d)| **d == 0).map(|(i, _)| (dag.graph[*i].clone(), *i)).collect();
        let mut out = vec![];
        while let Some((uid, i)) = ready.pop_first() {
            if subset.contains(&uid) {
                out.push(uid);
            }
            for c in dag.graph.neighbors_directed(i, petgraph::Direction::Outgoing) {
                let d = indegree.get_mut(&c).unwrap();
                *d -= 1;
                if *d == 0 {
                    ready.insert((dag.graph[c].clone(), c));
                }
            }
        }
        out
    }

    #[test]
    fn a_subset_comes_out_in_the_order_of_the_whole_graph() {
        // a pseudo-random DAG of 300 nodes whose ids do not follow its order, with doubled edges
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut dag = Dag { graph: DiGraph::new(), index: FastMap::default(), children: Default::default(), parents: Default::default() };
        let ids: Vec<String> = (0..300).map(|i| format!("model.p.m{:03}", (i * 7919) % 300)).collect();
        for id in &ids {
            let i = dag.graph.add_node(id.clone());
            dag.index.insert(id.clone(), i);
        }
        for c in 1..300 {
            for _ in 0..next() % 4 {
                let p = (next() % c as u64) as usize;
                dag.graph.add_edge(NodeIndex::new(p), NodeIndex::new(c), ());
            }
        }
        let mut subsets: Vec<IndexSet<String>> = vec![ids.iter().cloned().collect(), IndexSet::new(), ["model.p.nowhere".to_string()].into()];
        subsets.extend(ids.iter().step_by(37).map(|id| [id.clone()].into()));
        for k in [2, 5, 20, 150] {
            for _ in 0..10 {
                subsets.push((0..k).map(|_| ids[(next() % 300) as usize].clone()).collect());
            }
        }
        for s in &subsets {
            assert_eq!(dag.topo_order(s), whole_graph_order(&dag, s), "subset {s:?}");
        }
        assert_eq!(dag.topo_order(&subsets[0]).len(), 300);
    }
}
