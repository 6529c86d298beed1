//! `--defer` (with `--state DIR` or `--defer-state DIR`): which `ref()`s
//! resolve to the relation an earlier run built, as dbt 1.11 decides it
//! (`RuntimeRefResolver.create_relation` after `merge_from_artifact`).
//!
//! A node of the current project is deferred when the state's manifest has
//! it as a non-ephemeral model, seed or snapshot (its `defer_relation`), it
//! is not ephemeral now, and either
//! - `--favor-state` is on and the node is not selected, or
//! - its relation does not exist in the current target (and, unlike dbt
//!   which compiles each node just before it runs, is not about to be built
//!   by this invocation before the nodes that ref it).
//!
//! The state's relation is its database, schema and alias, in the
//! warehouse the state's run wrote (`metadata.env.DP_WAREHOUSE` of a dp
//! manifest); a manifest without it (one written by dbt) names relations of
//! the current warehouse.

use serde_json::Value;
use std::collections::{HashMap, HashSet};

use crate::project::load::Project;
use crate::project::nodes::{Materialization, ResourceType};

/// The key of a dp manifest's `metadata.env` holding the warehouse the run
/// wrote (an absolute path or URL).
pub const WAREHOUSE_ENV_KEY: &str = "DP_WAREHOUSE";

/// A relation recorded in the state's manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRelation {
    pub database: String,
    pub schema: String,
    pub alias: String,
    pub resource_type: String,
}

/// What the state's manifest says about relations.
#[derive(Debug, Clone, Default)]
pub struct StateRelations {
    /// Where the state's run wrote its relations, when the manifest says.
    pub warehouse: Option<String>,
    /// Refable, non-ephemeral nodes by unique id.
    pub relations: HashMap<String, StateRelation>,
}

/// Reads the refable relations of a manifest.json (dp's or dbt's).
pub fn state_relations(manifest: &str) -> Result<StateRelations, String> {
    let v: Value = serde_json::from_str(manifest).map_err(|e| format!("not a manifest.json: {e}"))?;
    let nodes = v.get("nodes").and_then(Value::as_object).ok_or("not a manifest.json: it has no `nodes`")?;
    let warehouse = v.pointer(&format!("/metadata/env/{WAREHOUSE_ENV_KEY}")).and_then(Value::as_str).map(String::from);
    let s = |n: &Value, k: &str| n.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let relations = nodes
        .iter()
        .filter(|(_, n)| matches!(n.get("resource_type").and_then(Value::as_str), Some("model" | "seed" | "snapshot")))
        .filter(|(_, n)| n.pointer("/config/materialized").and_then(Value::as_str) != Some("ephemeral"))
        .map(|(uid, n)| {
            let alias = match s(n, "alias") {
                a if a.is_empty() => s(n, "name"),
                a => a,
            };
            (uid.clone(), StateRelation { database: s(n, "database"), schema: s(n, "schema"), alias, resource_type: s(n, "resource_type") })
        })
        .collect();
    Ok(StateRelations { warehouse, relations })
}

/// The nodes whose `ref()` resolves to the state's relation, by unique id.
///
/// `selected`: the command's selection; `exists`: nodes whose relation
/// exists in the current target or that this invocation builds before
/// anything reads them.
pub fn deferred(
    project: &Project,
    state: &StateRelations,
    selected: &HashSet<String>,
    exists: &HashSet<String>,
    favor_state: bool,
) -> HashMap<String, StateRelation> {
    state
        .relations
        .iter()
        .filter(|(uid, _)| {
            project.nodes.get(*uid).is_some_and(|n| {
                matches!(n.resource_type, ResourceType::Model | ResourceType::Seed | ResourceType::Snapshot) && n.materialized() != Materialization::Ephemeral
            })
        })
        .filter(|(uid, _)| (favor_state && !selected.contains(*uid)) || !exists.contains(*uid))
        .map(|(u, r)| (u.clone(), r.clone()))
        .collect()
}

/// The catalog a deferred relation of another warehouse is read through
/// (the state's warehouse, attached beside the target's `dp` catalog).
pub const STATE_CATALOG: &str = "dp_state";

/// The relation `ref()` returns for a deferred node: `schema.alias` when
/// the state's warehouse is the target's, `dp_state.schema.alias` when
/// `catalog` names another one.
pub fn relation(r: &StateRelation, catalog: Option<&str>) -> crate::jinja::Relation {
    let mut rel = crate::jinja::Relation::new(&r.database, &r.schema, &r.alias);
    if let Some(c) = catalog {
        rel.rendered = Some(format!("{}.{}", crate::util::ident::quote_ident(c), crate::util::ident::relation_name(&r.schema, &r.alias)));
    }
    rel
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_refable_relations_and_the_warehouse() {
        let m = json!({
            "metadata": {"env": {"DP_WAREHOUSE": "/prod/warehouse"}},
            "nodes": {
                "model.p.a": {"resource_type": "model", "database": "dp", "schema": "marts", "alias": "a_tbl", "name": "a", "config": {"materialized": "table"}},
                "model.p.e": {"resource_type": "model", "database": "dp", "schema": "main", "alias": "e", "name": "e", "config": {"materialized": "ephemeral"}},
                "seed.p.s": {"resource_type": "seed", "database": "dp", "schema": "main", "alias": "s", "name": "s", "config": {}},
                "test.p.t": {"resource_type": "test", "database": "dp", "schema": "main", "alias": "t", "name": "t", "config": {}},
            }
        });
        let s = state_relations(&m.to_string()).unwrap();
        assert_eq!(s.warehouse.as_deref(), Some("/prod/warehouse"));
        let mut ids: Vec<&String> = s.relations.keys().collect();
        ids.sort();
        assert_eq!(ids, ["model.p.a", "seed.p.s"]);
        assert_eq!(s.relations["model.p.a"].alias, "a_tbl");
        assert_eq!(s.relations["model.p.a"].schema, "marts");
        assert!(state_relations("{}").unwrap_err().contains("no `nodes`"));
    }
}
