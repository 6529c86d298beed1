//! `--defer` / `--favor-state` / `--defer-state` for the commands that
//! compile (run, build, test, compile, show): which refs resolve to the
//! state's relations ([`crate::graph::defer`]) and the state's warehouse
//! attached to the engine when it is not the target's.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use super::Printer;
use super::args::SelectArgs;
use super::context::Loaded;
use crate::engine::Engine;
use crate::graph::defer::{STATE_CATALOG, StateRelations, deferred, relation, state_relations};
use crate::jinja::Relation;
use crate::quality::gate::GatePlan;
use datafusion::catalog::SchemaProvider as _;

/// What `--defer` changes for one command.
#[derive(Debug, Default)]
pub struct Deferral {
    /// `ref()` targets resolved to the state's relation.
    pub relations: HashMap<String, Relation>,
    /// The state's warehouse, when it is not the target's (attached as `dp_state`).
    pub attach: Option<String>,
}

impl Deferral {
    /// Readies `engine` for the deferred refs of a command running
    /// `chosen`: attaches the state's warehouse when refs read it, leaves
    /// out of `gates` (a build's quality gates) those that would only check
    /// relations read from the state, and makes the relations that the
    /// remaining gates and the unit tests (for their inputs' columns) read
    /// and this target lacks readable under their own names, from the state.
    pub async fn apply(
        &self,
        engine: &Engine,
        l: &Loaded,
        chosen: &indexmap::IndexSet<String>,
        gates: Option<&mut Vec<GatePlan>>,
        printer: &Printer,
    ) -> anyhow::Result<()> {
        let catalog = match &self.attach {
            Some(loc) if !self.relations.is_empty() => {
                engine.attach_warehouse(STATE_CATALOG, loc, &l.project.settings)?;
                STATE_CATALOG
            }
            _ => crate::engine::CATALOG,
        };
        let mut read: HashSet<&String> = HashSet::new();
        if let Some(gates) = gates {
            for name in skip_state_gates(gates, self) {
                printer.info(format!("Skipping checkpoint {name}: every relation it checks is read from the state (--defer)"));
            }
            let rels = gates.iter().flat_map(|g| g.resolved.bound.iter().flat_map(|b| std::iter::once(&b.relation).chain(b.others.iter().flatten())));
            read.extend(rels.map(|r| &r.unique_id));
        }
        // a unit test's model and its parents (the columns of its inputs)
        let nodes = &l.project.nodes;
        for u in chosen.iter().filter(|u| nodes.get(*u).is_some_and(|n| n.resource_type == crate::project::nodes::ResourceType::UnitTest)) {
            for m in &nodes[u].depends_on {
                read.insert(m);
                read.extend(nodes.get(m).into_iter().flat_map(|n| n.depends_on.iter()));
            }
        }
        read.retain(|u| self.relations.contains_key(*u));
        let existing = crate::engine::existing_relations(&l.project);
        for uid in read {
            let (n, rel) = (&l.project.nodes[uid], &self.relations[uid]);
            if existing.contains(uid) || (catalog == crate::engine::CATALOG && n.schema == rel.schema && n.alias == rel.identifier) {
                continue;
            }
            let Some(schema) = engine.ctx.catalog(catalog).and_then(|c| c.schema(&rel.schema)) else { continue };
            // one the state lacks (or cannot open) fails where it is read, by name
            if let Ok(Some(table)) = schema.table(&rel.identifier).await {
                engine.catalog.schema_provider(&n.schema).register_table(n.alias.clone(), table)?;
            }
        }
        Ok(())
    }

    /// Attaches the state's warehouse to `engine` when refs read it.
    pub fn attach(&self, engine: &Engine, l: &Loaded) -> anyhow::Result<()> {
        if let Some(loc) = &self.attach
            && !self.relations.is_empty()
        {
            engine.attach_warehouse(STATE_CATALOG, loc, &l.project.settings)?;
        }
        Ok(())
    }
}

/// The state folder deferral reads: `--defer-state`, else `--state`.
pub fn state_dir(s: &SelectArgs) -> anyhow::Result<PathBuf> {
    s.defer_state.clone().or_else(|| s.state.clone()).ok_or_else(|| {
        anyhow::anyhow!(
            "--state or --defer-state are required for deferral, but neither was provided\n  hint: pass --state DIR, a copy of the target/ folder of the run to defer to (e.g. production's)"
        )
    })
}

/// Reads the manifest.json of a state folder for its relations.
pub fn read_state(dir: &std::path::Path) -> anyhow::Result<StateRelations> {
    let file = dir.join("manifest.json");
    let text = std::fs::read_to_string(&file).map_err(|e| {
        anyhow::anyhow!(
            "Could not find manifest in --state path: \"{}\" ({e})\n  hint: point --state (or --defer-state) at a folder holding the manifest.json of an earlier run",
            dir.display()
        )
    })?;
    state_relations(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))
}

/// Overrides the warehouse a state's manifest recorded (its path on the
/// machine that ran it), e.g. where CI reaches production's warehouse.
pub const STATE_WAREHOUSE_ENV: &str = "DP_STATE_WAREHOUSE";

/// The state's warehouse when it differs from the target's:
/// `DP_STATE_WAREHOUSE`, else the one its manifest recorded (relative
/// paths resolve against the project).
pub fn foreign_warehouse(state: &StateRelations, l: &Loaded) -> Option<String> {
    let norm = |s: &str| s.strip_prefix("file://").unwrap_or(s).trim_end_matches('/').to_string();
    let recorded = std::env::var(STATE_WAREHOUSE_ENV).ok().filter(|v| !v.is_empty()).or_else(|| state.warehouse.clone())?;
    let mut settings = l.project.settings.clone();
    settings.target.warehouse = recorded;
    let location = settings.warehouse_url();
    (norm(&location) != norm(&l.project.settings.warehouse_url())).then_some(location)
}

/// `--defer`'s relations for a command whose selection is `selected` and
/// that builds `built` (before anything reads them); `None` without `--defer`.
pub fn plan(l: &Loaded, s: &SelectArgs, selected: &HashSet<String>, built: &HashSet<String>) -> anyhow::Result<Option<Deferral>> {
    if !s.defer {
        return Ok(None);
    }
    let state = read_state(&state_dir(s)?)?;
    let attach = foreign_warehouse(&state, l);
    let mut exists = crate::engine::existing_relations(&l.project);
    exists.extend(built.iter().cloned());
    let catalog = attach.as_ref().map(|_| STATE_CATALOG);
    let relations = deferred(&l.project, &state, selected, &exists, s.favor_state).into_iter().map(|(u, r)| (u, relation(&r, catalog))).collect();
    Ok(Some(Deferral { relations, attach }))
}

/// Drops the build's quality gates that would only check relations read
/// from the state (their checkpoint's models are all deferred and none is
/// built here): production validated them, and this target does not have
/// them. Returns the names of the checkpoints left out.
fn skip_state_gates(plans: &mut Vec<GatePlan>, deferral: &Deferral) -> Vec<String> {
    let mut skipped = vec![];
    plans.retain(|p| {
        let state_only = p.after.is_empty() && p.resolved.bound.iter().all(|b| deferral.relations.contains_key(&b.relation.unique_id));
        if state_only {
            skipped.push(p.resolved.checkpoint.name.clone());
        }
        !state_only
    });
    skipped
}

/// [`plan`] for run/seed/test/build/snapshot: `chosen` is what the command
/// runs; the models, seeds and snapshots among them are built before
/// anything reads them.
pub fn plan_run(l: &Loaded, s: &SelectArgs, chosen: &indexmap::IndexSet<String>) -> anyhow::Result<Option<Deferral>> {
    use crate::project::nodes::ResourceType;
    let built: HashSet<String> = chosen
        .iter()
        .filter(|u| l.project.nodes.get(*u).is_some_and(|n| matches!(n.resource_type, ResourceType::Model | ResourceType::Seed | ResourceType::Snapshot)))
        .cloned()
        .collect();
    plan(l, s, &chosen.iter().cloned().collect(), &built)
}

/// The nodes of `order` dp may batch: tests reading a deferred relation
/// run alone (a batch reads the target's relation).
pub fn batchable(project: &crate::project::load::Project, order: &[String], deferred: &[String]) -> Vec<String> {
    let deferred: HashSet<&String> = deferred.iter().collect();
    order.iter().filter(|u| project.nodes.get(*u).is_none_or(|n| !n.depends_on.iter().any(|d| deferred.contains(d)))).cloned().collect()
}

/// The defer flags of a run, for its run_results.json `args`.
pub fn run_args(s: &SelectArgs) -> crate::runner::results::Args {
    let path = |d: &Option<PathBuf>| d.as_ref().map(|d| d.display().to_string());
    crate::runner::results::Args { defer: s.defer, favor_state: s.favor_state, state: path(&s.state), defer_state: path(&s.defer_state), ..Default::default() }
}

/// The defer flags a retry repeats, from the last run's `args`.
pub fn select_args(a: &crate::runner::results::Args) -> SelectArgs {
    SelectArgs {
        defer: a.defer,
        favor_state: a.favor_state,
        state: a.state.clone().map(Into::into),
        defer_state: a.defer_state.clone().map(Into::into),
        ..Default::default()
    }
}
