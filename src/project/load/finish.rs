//! Stage 9: disabled nodes leave the project (and so does anything attached
//! to them); every remaining relation gets its database, schema and alias
//! from `generate_database_name` / `generate_schema_name` /
//! `generate_alias_name`.

use indexmap::IndexMap;
use rayon::prelude::*;

use super::LoadError;
use super::env::model_value;
use crate::jinja::JinjaEnv;
use crate::project::nodes::{Node, ResourceType};

/// Moves disabled nodes (and tests attached to them) out of `nodes`.
pub fn split_disabled(nodes: &mut IndexMap<String, Node>) -> IndexMap<String, Node> {
    let mut disabled = IndexMap::new();
    let off: Vec<String> = nodes.iter().filter(|(_, n)| !n.enabled()).map(|(k, _)| k.clone()).collect();
    for k in off {
        if let Some(n) = nodes.shift_remove(&k) {
            disabled.insert(k, n);
        }
    }
    let orphan: Vec<String> =
        nodes.iter().filter(|(_, n)| n.attached_node.as_ref().is_some_and(|a| disabled.contains_key(a))).map(|(k, _)| k.clone()).collect();
    for k in orphan {
        if let Some(n) = nodes.shift_remove(&k) {
            disabled.insert(k, n);
        }
    }

    disabled
}

/// Names every relation with the project's naming macros.
pub fn name_relations(jinja: &JinjaEnv, nodes: &mut IndexMap<String, Node>) -> Result<(), LoadError> {
    let named: Vec<Result<(String, String, String, String), LoadError>> = nodes
        .par_iter()
        .filter(|(_, n)| n.resource_type.is_executable() || n.resource_type == ResourceType::Analysis)
        .map(|(uid, n)| {
            let nv = model_value(n);
            let custom_schema = n.config.get("schema").map(minijinja::Value::from_serialize).unwrap_or(minijinja::Value::from(()));
            let custom_alias = n.config.get("alias").map(minijinja::Value::from_serialize).unwrap_or(minijinja::Value::from(()));
            let custom_db = n.config.get("database").map(minijinja::Value::from_serialize).unwrap_or(minijinja::Value::from(()));
            let schema = jinja.call_macro_str("generate_schema_name", &[("custom_schema_name", custom_schema), ("node", nv.clone())], None)?;
            let alias = jinja.call_macro_str("generate_alias_name", &[("custom_alias_name", custom_alias), ("node", nv.clone())], None)?;
            let db = jinja.call_macro_str("generate_database_name", &[("custom_database_name", custom_db), ("node", nv)], None)?;
            Ok((uid.clone(), db, schema, alias))
        })
        .collect();
    for r in named {
        let (uid, db, schema, alias) = r?;
        let n = nodes.get_mut(&uid).unwrap();
        n.database = db;
        n.schema = schema;
        n.alias = alias;
        // dbt's legacy snapshot configs name the relation verbatim
        if n.resource_type == ResourceType::Snapshot {
            for (key, slot) in [("target_schema", &mut n.schema), ("target_database", &mut n.database)] {
                if let Some(v) = n.config.get(key).and_then(|v| v.as_str()).filter(|v| !v.is_empty()) {
                    *slot = v.to_string();
                }
            }
        }
    }

    Ok(())
}
