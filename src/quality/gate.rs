//! Checkpoints as gates in `dp build`. A gate is an extra node of the
//! build: it runs once the nodes it comes `after` are built (default: the
//! models and seeds it validates, and the other relations its expectations
//! read), and the nodes it `guards` (default: everything downstream of the
//! relations it validates, except what it must wait for) wait for it. An
//! error-severity failure fails the gate node, so the runner skips what it
//! guards and everything downstream of that.
//!
//! For the demo: `raw_data_checkpoint` validates sources, so it runs first
//! and guards every model; `staging_checkpoint` runs after the staging
//! models and guards intermediate and marts; `marts_checkpoint` runs after
//! the marts and guards nothing (its failure still fails the build).

use indexmap::IndexSet;

use super::spec::{Checkpoint, Gate, SpecError};
use super::{Resolved, resolve};
use crate::fs::FileSystem;
use crate::graph::Dag;
use crate::graph::select::{IndirectSelection, SelectionSpec};
use crate::project::load::Project;
use crate::project::nodes::{Node, ResourceType};

#[derive(Debug, Clone)]
pub struct GatePlan {
    /// The gate node's unique id (`checkpoint.<project>.<name>`).
    pub uid: String,
    pub resolved: Resolved,
    /// Nodes of the build the gate waits for.
    pub after: Vec<String>,
    /// Nodes of the build that wait for the gate.
    pub guards: Vec<String>,
}

impl GatePlan {
    /// The build's edges `(parent, child)` for this gate.
    pub fn edges(&self) -> Vec<(String, String)> {
        self.guards.iter().map(|g| (self.uid.clone(), g.clone())).collect()
    }

    /// The node the runner schedules and reports for this gate.
    pub fn node(&self, package: &str) -> Node {
        let cp = &self.resolved.checkpoint;
        let stem = cp.file.rsplit_once('.').map(|(s, _)| s).unwrap_or(&cp.file);
        let mut n = Node::new(ResourceType::Test, package, &format!("checkpoint {}", cp.name), &format!("{stem}.sql"));
        n.unique_id = self.uid.clone();
        n.patch_path = Some(cp.file.clone());
        n.description = cp.description.clone();
        n.depends_on = self.after.clone();
        n.config.insert("severity".into(), "error".into());
        n
    }
}

fn pick(project: &Project, dag: &Dag, fs: &dyn FileSystem, selector: &str, file: &str) -> Result<IndexSet<String>, SpecError> {
    let spec = SelectionSpec {
        select: vec![selector.to_string()],
        exclude: vec![],
        selector: None,
        resource_types: vec![ResourceType::Model, ResourceType::Seed, ResourceType::Snapshot],
        indirect: IndirectSelection::Empty,
        state: None,
    };
    crate::graph::select::select(project, dag, &spec, fs).map_err(|e| SpecError::at(file, 1, format!("gate selector `{selector}`: {e}"), None))
}

/// The gates of a build over `chosen` (the build's nodes): one per gated
/// checkpoint that validates or guards something of the build.
pub fn plan(project: &Project, dag: &Dag, fs: &dyn FileSystem, checkpoints: &[Checkpoint], chosen: &IndexSet<String>) -> Result<Vec<GatePlan>, SpecError> {
    let mut out = vec![];
    for cp in checkpoints {
        let (after_sel, guards_sel) = match &cp.gate {
            Gate::Off => continue,
            Gate::Default => (None, None),
            Gate::On { after, guards } => (after.clone(), guards.clone()),
        };
        let resolved = resolve(project, dag, fs, cp)?;
        let validated: IndexSet<String> = resolved.bound.iter().map(|b| b.relation.unique_id.clone()).collect();
        let others: IndexSet<String> = resolved.bound.iter().flat_map(|b| b.others.iter().flatten().map(|o| o.unique_id.clone())).collect();
        let buildable = |u: &String| {
            chosen.contains(u)
                && project.nodes.get(u).is_some_and(|n| matches!(n.resource_type, ResourceType::Model | ResourceType::Seed | ResourceType::Snapshot))
        };
        let after: IndexSet<String> = match &after_sel {
            Some(s) => pick(project, dag, fs, s, &cp.file)?.into_iter().filter(buildable).collect(),
            None => validated.iter().chain(&others).filter(|u| buildable(u)).cloned().collect(),
        };
        let mut upstream: IndexSet<String> = IndexSet::new();
        for a in &after {
            upstream.insert(a.clone());
            upstream.extend(dag.ancestors(a, None));
        }
        let candidates: IndexSet<String> = match &guards_sel {
            Some(s) => pick(project, dag, fs, s, &cp.file)?,
            None => validated.iter().flat_map(|v| dag.descendants(v, None)).collect(),
        };
        let guards: Vec<String> = candidates
            .into_iter()
            .filter(|g| chosen.contains(g) && !validated.contains(g) && !upstream.contains(g))
            .filter(|g| project.nodes.get(g).is_some_and(|n| !matches!(n.resource_type, ResourceType::Test | ResourceType::UnitTest)))
            .collect();
        if after.is_empty() && guards.is_empty() {
            continue;
        }
        out.push(GatePlan { uid: format!("checkpoint.{}.{}", project.settings.project_name, cp.name), resolved, after: after.into_iter().collect(), guards });
    }
    Ok(out)
}

/// Where a gate goes in the build order: after the last node it waits for
/// (first when it waits for nothing).
pub fn insert_in_order(order: &mut Vec<String>, gate: &GatePlan) {
    let pos = order.iter().rposition(|u| gate.after.contains(u)).map(|i| i + 1).unwrap_or(0);
    order.insert(pos, gate.uid.clone());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::OsFs;

    /// The demo project at the repository root, with its checkpoints.
    fn demo() -> (Project, Dag, OsFs) {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let fs = OsFs::new(root);
        let settings = crate::config::Settings::load(root, &fs, &Default::default(), &|_: &str| None::<String>).expect("settings");
        let mut project = crate::project::load::load_project(settings, &fs, &Default::default()).expect("load");
        crate::graph::resolve_dependencies(&mut project).expect("resolve");
        let dag = Dag::build(&project).expect("dag");
        (project, dag, fs)
    }

    fn names(p: &Project, ids: &[String]) -> Vec<String> {
        let mut v: Vec<String> = ids.iter().map(|u| p.nodes[u].name.clone()).collect();
        v.sort();
        v
    }

    #[test]
    fn demo_gates_sit_between_the_layers() {
        let (p, dag, fs) = demo();
        let checkpoints = super::super::spec::load(&fs, &p.settings.paths.checkpoints).unwrap();
        assert_eq!(checkpoints.len(), 4);
        let chosen: IndexSet<String> = p
            .nodes
            .iter()
            .filter(|(_, n)| matches!(n.resource_type, ResourceType::Model | ResourceType::Seed | ResourceType::Test))
            .map(|(u, _)| u.clone())
            .collect();
        let gates = plan(&p, &dag, &fs, &checkpoints, &chosen).unwrap();
        let by = |name: &str| gates.iter().find(|g| g.resolved.checkpoint.name == name);
        assert!(by("full_pipeline_checkpoint").is_none(), "gate: false");
        let raw = by("raw_data_checkpoint").unwrap();
        assert!(raw.after.is_empty());
        let staging = ["stg_customers", "stg_orders", "stg_products", "stg_transactions"];
        let downstream = ["int_customer_orders", "int_daily_aggregates", "int_product_sales", "dim_customers", "dim_products", "fct_orders"];
        let raw_guards = names(&p, &raw.guards);
        for m in staging.iter().chain(&downstream) {
            assert!(raw_guards.contains(&m.to_string()), "{m} not guarded by raw_data_checkpoint: {raw_guards:?}");
        }
        assert!(!raw_guards.iter().any(|g| g == "category_mapping"), "seeds do not read bronze");
        let st = by("staging_checkpoint").unwrap();
        assert_eq!(names(&p, &st.after), staging);
        let st_guards = names(&p, &st.guards);
        for m in &downstream {
            assert!(st_guards.contains(&m.to_string()), "{m}: {st_guards:?}");
        }
        assert!(!st_guards.iter().any(|g| g.starts_with("stg_")));
        let marts = by("marts_checkpoint").unwrap();
        assert!(marts.guards.is_empty(), "{:?}", marts.guards);
        assert!(names(&p, &marts.after).contains(&"fct_orders".to_string()));
        // the order: raw first, staging after the last staging model
        let mut order: Vec<String> = dag.topo_order(&chosen);
        for g in &gates {
            insert_in_order(&mut order, g);
        }
        assert_eq!(order[0], raw.uid);
        let pos = |u: &str| order.iter().position(|x| x == u).unwrap();
        for s in &st.after {
            assert!(pos(s) < pos(&st.uid));
        }
    }

    #[test]
    fn gate_selectors_override_both_sides() {
        let (p, dag, fs) = demo();
        let yaml = "gate: {after: \"tag:intermediate\", guards: \"tag:marts\"}\nvalidations:\n  - relation: stg_orders\n    expectations:\n      - expect_table_row_count_to_be_between: {min_value: 1}\n";
        let cp = super::super::spec::parse("checkpoints/g.yml", yaml).unwrap();
        let chosen: IndexSet<String> =
            p.nodes.iter().filter(|(_, n)| matches!(n.resource_type, ResourceType::Model | ResourceType::Seed)).map(|(u, _)| u.clone()).collect();
        let gates = plan(&p, &dag, &fs, &[cp], &chosen).unwrap();
        assert_eq!(names(&p, &gates[0].after), ["int_customer_orders", "int_daily_aggregates", "int_product_sales"]);
        assert_eq!(
            names(&p, &gates[0].guards),
            ["dim_customers", "dim_products", "fct_orders", "mart_customer_analytics", "mart_daily_summary", "mart_product_analytics"]
        );
        // nothing of the build is validated or guarded: no gate
        let only_seeds: IndexSet<String> = chosen.iter().filter(|u| u.starts_with("seed.")).cloned().collect();
        let yaml = "validations:\n  - relation: stg_orders\n    expectations:\n      - expect_table_row_count_to_be_between: {min_value: 1}\n";
        let cp = super::super::spec::parse("checkpoints/g.yml", yaml).unwrap();
        assert!(plan(&p, &dag, &fs, &[cp], &only_seeds).unwrap().is_empty());
    }
}
