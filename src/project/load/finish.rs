//! Stage 9: disabled nodes leave the project (and so does anything attached
//! to them); every remaining relation gets its database, schema and alias
//! from `generate_database_name` / `generate_schema_name` /
//! `generate_alias_name`.

use indexmap::IndexMap;
use rayon::prelude::*;

use super::LoadError;
use super::env::model_value;
use crate::jinja::JinjaEnv;
use crate::project::nodes::{Macro, Node, NodeMap, ResourceType};

/// Moves disabled nodes (and tests attached to them) out of `nodes`.
pub fn split_disabled(nodes: &mut NodeMap) -> NodeMap {
    let mut disabled = NodeMap::default();
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

/// Names every relation with the project's naming macros. Where a name
/// macro is dp's own default (not overridden by the project or a package,
/// no `dispatch:` config) the name is computed here, as that macro would:
/// one Jinja call per node and name is most of a large project's parse.
pub fn name_relations(jinja: &JinjaEnv, macros: &IndexMap<String, Macro>, dispatch: bool, nodes: &mut NodeMap) -> Result<(), LoadError> {
    let default_of = |name: &str, custom: &str| -> Result<Option<String>, LoadError> {
        let overridden = dispatch || definitions(macros, name).next().is_some();
        if overridden {
            return Ok(None);
        }
        let none = minijinja::Value::from(());
        Ok(Some(jinja.call_macro_str(name, &[(custom, none.clone()), ("node", none)], None)?))
    };
    let default_schema = default_of("generate_schema_name", "custom_schema_name")?;
    let default_db = default_of("generate_database_name", "custom_database_name")?;
    let alias_default = default_of("generate_alias_name", "custom_alias_name")?.is_some();
    let named_kind = |n: &Node| n.resource_type.is_executable() || n.resource_type == ResourceType::Analysis;
    let names = |k: &'static str| nodes.values().filter(|n| named_kind(n)).map(move |n| n.config.get(k));
    let memo_schema = once_per_value(jinja, macros, "generate_schema_name", "custom_schema_name", default_schema.is_none(), names("schema"))?;
    let memo_alias = once_per_value(jinja, macros, "generate_alias_name", "custom_alias_name", !alias_default, names("alias"))?;
    let memo_db = once_per_value(jinja, macros, "generate_database_name", "custom_database_name", default_db.is_none(), names("database"))?;
    let named: Vec<Result<(String, String, String, String), LoadError>> = nodes
        .par_iter()
        .filter(|(_, n)| named_kind(n))
        .map(|(uid, n)| {
            let custom = |k: &str| n.config.get(k).filter(|v| !v.is_null());
            // an overridden macro's result, when it was computed once per value
            let memo = |m: &Option<Memo>, k: &str| m.as_ref().and_then(|m| m.get(&memo_key(n.config.get(k))).cloned());
            let schema = match (&default_schema, custom("schema")) {
                (Some(d), None) => Some(d.clone()),
                (Some(d), Some(serde_json::Value::String(c))) => Some(format!("{d}_{}", c.trim())),
                _ => None,
            }
            .or_else(|| memo(&memo_schema, "schema"));
            let alias = match (alias_default, custom("alias"), &n.version) {
                (true, None, None) => Some(n.name.clone()),
                (true, Some(serde_json::Value::String(c)), _) if !c.is_empty() => Some(c.trim().to_string()),
                _ => None,
            }
            .or_else(|| memo(&memo_alias, "alias"));
            let db = match (&default_db, custom("database")) {
                (Some(d), None) => Some(d.clone()),
                (Some(_), Some(serde_json::Value::String(c))) if c.trim() == c && !c.is_empty() => Some(c.clone()),
                _ => None,
            }
            .or_else(|| memo(&memo_db, "database"));
            if let (Some(schema), Some(alias), Some(db)) = (&schema, &alias, &db) {
                return Ok((uid.clone(), db.clone(), schema.clone(), alias.clone()));
            }
            let nv = model_value(n);
            let value = |k: &str| n.config.get(k).map(minijinja::Value::from_serialize).unwrap_or(minijinja::Value::from(()));
            let schema = match schema {
                Some(s) => s,
                None => jinja.call_macro_str("generate_schema_name", &[("custom_schema_name", value("schema")), ("node", nv.clone())], None)?,
            };
            let alias = match alias {
                Some(a) => a,
                None => jinja.call_macro_str("generate_alias_name", &[("custom_alias_name", value("alias")), ("node", nv.clone())], None)?,
            };
            let db = match db {
                Some(d) => d,
                None => jinja.call_macro_str("generate_database_name", &[("custom_database_name", value("database")), ("node", nv)], None)?,
            };
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

/// A naming macro's result per distinct custom value (its JSON text).
type Memo = std::collections::HashMap<String, String>;

fn memo_key(v: Option<&serde_json::Value>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "null".into())
}

/// When the project overrides naming macro `name` (`overridden`) and no
/// definition of it or of a dispatch candidate (`*__name`) reads its `node`
/// argument, its result depends on the custom value alone: it is computed
/// once per distinct value (in node order, so the first error is the one a
/// call per node would raise) instead of once per node.
fn once_per_value<'a>(
    jinja: &JinjaEnv,
    macros: &IndexMap<String, Macro>,
    name: &str,
    custom: &str,
    overridden: bool,
    values: impl Iterator<Item = Option<&'a serde_json::Value>>,
) -> Result<Option<Memo>, LoadError> {
    if !overridden || definitions(macros, name).next().is_none() || definitions(macros, name).any(|m| reads_node(&m.macro_sql)) {
        return Ok(None);
    }
    let mut memo = Memo::new();
    for v in values {
        let key = memo_key(v);
        if memo.contains_key(&key) {
            continue;
        }
        let value = v.map(minijinja::Value::from_serialize).unwrap_or(minijinja::Value::from(()));
        let out = jinja.call_macro_str(name, &[(custom, value), ("node", minijinja::Value::from(()))], None)?;
        memo.insert(key, out);
    }
    Ok(Some(memo))
}

/// The project's and packages' definitions of naming macro `name`: the
/// macro itself and its dispatch candidates (`*__name`).
fn definitions<'a>(macros: &'a IndexMap<String, Macro>, name: &'a str) -> impl Iterator<Item = &'a Macro> {
    macros.values().filter(move |m| m.name == name || m.name.strip_suffix(name).is_some_and(|p| p.ends_with("__")))
}

/// Whether a macro's body (after its `{% macro ... %}` tag) names `node`
/// anywhere, even inside a string: a conservative test.
pub(super) fn reads_node(macro_sql: &str) -> bool {
    let body = macro_sql.split_once("%}").map(|(_, b)| b).unwrap_or(macro_sql);
    body.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).any(|w| w == "node")
}

/// Two enabled models, seeds or snapshots that would be the same relation
/// fail the load, as dbt's `_check_resource_uniqueness` fails its parse
/// (the second one's build would replace the first one's table).
pub fn unique_relations(settings: &crate::config::Settings, nodes: &NodeMap) -> Result<(), LoadError> {
    let mut seen: crate::util::FastMap<String, &Node> = Default::default();
    for n in nodes.values().filter(|n| matches!(n.resource_type, ResourceType::Model | ResourceType::Seed | ResourceType::Snapshot)) {
        let relation = n.dbt_relation_name(settings);
        if let Some(first) = seen.insert(relation.clone(), n) {
            let at = |n: &Node| format!("{} ({})", n.unique_id, n.original_file_path);
            return Err(LoadError::SameRelation { relation, first: at(first), second: at(n) });
        }
    }
    Ok(())
}
