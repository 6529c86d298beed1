//! `--state DIR`: how the current project compares with the manifest of an
//! earlier run, node by node, in dbt's terms (`state:new`,
//! `state:modified` and its parts). The state may be a manifest written by
//! dp or by dbt itself: each part compares what dbt 1.11 compares
//! (`same_body`, `same_config`, ... in `dbt/contracts/graph/nodes.py`):
//!
//! - `body`: the node's raw code (seeds: the checksum of their file);
//! - `configs`: its `unrendered_config` (the values its files set, before
//!   rendering), but database, schema, alias, tags and group (dbt's
//!   `CompareBehavior.Exclude` fields); for tests only the keys that change
//!   their outcome (`severity`, `where`, `limit`, `fail_calc`, `warn_if`,
//!   `error_if`, `store_failures`, `store_failures_as`);
//! - `relation`: database, schema and alias as configured
//!   (`unrendered_config`; for sources the resolved ones and identifier);
//! - `persisted_descriptions`: descriptions, when `persist_docs` persists them;
//! - `contract`: column names and types of an enforced contract;
//! - `macros`: a macro in the node's `depends_on.macros` (current
//!   manifest), or one those depend on, to any depth, is new, changed its
//!   SQL, or is gone (dbt's `recursively_check_macros_modified`); macros of
//!   packages the current project does not have (dbt's own `dbt`,
//!   `dbt_duckdb`, ... in a dbt-written manifest) are left out.
//!
//! As dbt, a new node counts as modified in every part but `macros`.

use serde_json::Value;
use std::collections::HashSet;

use crate::graph::state::StateSets;

/// Each node's status in a run_results.json (`result:<status>` selectors).
pub fn results(run_results: &str) -> Result<std::collections::HashMap<String, String>, String> {
    let v: Value = serde_json::from_str(run_results).map_err(|e| format!("not a run_results.json: {e}"))?;
    let list = v.get("results").and_then(Value::as_array).ok_or("not a run_results.json: it has no `results`")?;
    Ok(list.iter().filter_map(|r| Some((r.get("unique_id")?.as_str()?.to_string(), r.get("status")?.as_str()?.to_string()))).collect())
}

/// Sources whose `max_loaded_at` in the current sources.json is newer than
/// in the state's, or that had none there (dbt's `source_status:fresher`:
/// a source that errored now is never fresher).
pub fn fresher(previous: &str, current: &str) -> Result<HashSet<String>, String> {
    fn loaded(text: &str, which: &str) -> Result<std::collections::HashMap<String, chrono::DateTime<chrono::FixedOffset>>, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("the {which} sources.json: {e}"))?;
        let list = v.get("results").and_then(Value::as_array).ok_or_else(|| format!("the {which} sources.json has no `results`"))?;
        Ok(list
            .iter()
            .filter_map(|r| {
                let at = r.get("max_loaded_at")?.as_str()?;
                let at = chrono::DateTime::parse_from_rfc3339(at).or_else(|_| chrono::DateTime::parse_from_rfc3339(&format!("{at}Z"))).ok()?;
                Some((r.get("unique_id")?.as_str()?.to_string(), at))
            })
            .collect())
    }
    let before = loaded(previous, "state's")?;
    let now = loaded(current, "current")?;
    Ok(now.into_iter().filter(|(uid, at)| before.get(uid).is_none_or(|b| at > b)).map(|(uid, _)| uid).collect())
}

/// Compares the current manifest (JSON text) with the state's.
pub fn compare(old: &str, current: &str) -> Result<StateSets, String> {
    let old: Value = serde_json::from_str(old).map_err(|e| format!("not a manifest.json: {e}"))?;
    let cur: Value = serde_json::from_str(current).map_err(|e| format!("the current manifest: {e}"))?;
    if !old.get("nodes").is_some_and(Value::is_object) {
        return Err("not a manifest.json: it has no `nodes`".into());
    }
    let macros = changed_macros(&old, &cur);
    let old_is_dp = old.pointer("/metadata/adapter_type").and_then(Value::as_str) == Some(crate::jinja::ADAPTER_TYPE);
    let mut s = StateSets::default();
    for section in ["nodes", "sources"] {
        let empty = serde_json::Map::new();
        let before = old.get(section).and_then(Value::as_object).unwrap_or(&empty);
        for (uid, n) in cur.get(section).and_then(Value::as_object).unwrap_or(&empty) {
            let Some(p) = before.get(uid) else {
                s.new.insert(uid.clone());
                continue;
            };
            s.old.insert(uid.clone());
            let differs = |key: &str| n.get(key) != p.get(key);
            let mark = |set: &mut HashSet<String>, yes: bool| {
                if yes {
                    set.insert(uid.clone());
                }
            };
            let is_seed = n.get("resource_type").and_then(Value::as_str) == Some("seed");
            let code = |v: &Value| v.get("raw_code").and_then(Value::as_str).unwrap_or("").trim().to_string();
            mark(&mut s.body, section == "nodes" && if is_seed { differs("checksum") } else { code(n) != code(p) });
            let configs_differ = if section == "sources" {
                compared_config(n, "config") != compared_config(p, "config")
            } else {
                compared_config(n, "unrendered_config") != compared_config(p, "unrendered_config")
            };
            mark(&mut s.configs, configs_differ);
            // moved or renamed; for models also dbt's `same_ref_representation`
            let refs_differ = ["latest_version", "access", "deprecation_date"].iter().any(|k| differs(k));
            mark(&mut s.fqn, differs("fqn") || (uid.starts_with("model.") && refs_differ));
            // a source's quoting, freshness and external location (dbt's
            // same_quoting, same_freshness, same_external); dp derives
            // `external` from meta, so it is compared with dp's manifests only
            let quoting = |v: &Value| v.get("quoting").filter(|q| q.as_object().is_some_and(|o| o.values().any(|x| !x.is_null()))).cloned();
            let source_differs =
                section == "sources" && (quoting(n) != quoting(p) || differs("freshness") || differs("loaded_at_field") || (old_is_dp && differs("external")));
            mark(&mut s.fqn, source_differs);
            let relation_differs = if section == "sources" {
                // a source's database defaults to the target's, which dbt names
                // after its warehouse (the DuckDB file) and dp "dp": compared
                // between dp's own manifests only
                let db = |v: &Value| v.get("database").and_then(Value::as_str).unwrap_or("").to_string();
                (old_is_dp && db(n) != db(p)) || differs("schema") || differs("identifier")
            } else {
                ["database", "schema", "alias"].iter().any(|k| n.pointer(&format!("/unrendered_config/{k}")) != p.pointer(&format!("/unrendered_config/{k}")))
            };
            mark(&mut s.relation, relation_differs);
            mark(&mut s.persisted_descriptions, descriptions_changed(n, p));
            mark(&mut s.contract, contract_changed(n, p));
            mark(&mut s.macros, !macros.is_empty() && depends_on_any(n, &cur, &macros, &mut HashSet::new()));
        }
    }
    Ok(s)
}

/// The config (`key`: `unrendered_config`, or `config` for sources) as dbt
/// compares it: without the keys other parts (or nothing) compare:
/// database, schema, alias, tags, group; for tests only the keys that
/// change their outcome.
fn compared_config(n: &Value, key: &str) -> Option<serde_json::Map<String, Value>> {
    let mut c = n.get(key)?.as_object()?.clone();
    if n.get("resource_type").and_then(Value::as_str) == Some("test") {
        const MODIFIERS: [&str; 8] = ["severity", "where", "limit", "fail_calc", "warn_if", "error_if", "store_failures", "store_failures_as"];
        c.retain(|k, _| MODIFIERS.contains(&k.as_str()));
        return Some(c);
    }
    for k in ["database", "schema", "alias", "tags", "group"] {
        c.remove(k);
    }
    Some(c)
}

fn persist(n: &Value, what: &str) -> bool {
    n.pointer(&format!("/config/persist_docs/{what}")).and_then(Value::as_bool).unwrap_or(false)
}

fn descriptions_changed(n: &Value, p: &Value) -> bool {
    let column_docs = |v: &Value| -> Vec<(String, Value)> {
        let mut c: Vec<(String, Value)> = v
            .get("columns")
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, c)| (k.clone(), c.get("description").cloned().unwrap_or(Value::Null))).collect())
            .unwrap_or_default();
        c.sort_by(|a, b| a.0.cmp(&b.0));
        c
    };
    (persist(n, "relation") && n.get("description") != p.get("description")) || (persist(n, "columns") && column_docs(n) != column_docs(p))
}

fn contract_changed(n: &Value, p: &Value) -> bool {
    let enforced = |v: &Value| v.pointer("/config/contract/enforced").and_then(Value::as_bool).unwrap_or(false);
    if !enforced(n) {
        return false;
    }
    let shape = |v: &Value| -> Vec<(String, Value)> {
        v.get("columns")
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, c)| (k.clone(), c.get("data_type").cloned().unwrap_or(Value::Null))).collect())
            .unwrap_or_default()
    };
    !enforced(p) || shape(n) != shape(p)
}

/// Unique ids of the macros whose SQL changed, that are new or that are
/// gone (dbt's `_macros_modified`).
fn changed_macros(old: &Value, cur: &Value) -> HashSet<String> {
    let empty = serde_json::Map::new();
    let before = old.get("macros").and_then(Value::as_object).unwrap_or(&empty);
    let now = cur.get("macros").and_then(Value::as_object).unwrap_or(&empty);
    let sql = |m: &Value| m.get("macro_sql").and_then(Value::as_str).unwrap_or("").to_string();
    // a dbt-written manifest lists dbt's own macros (packages `dbt`,
    // `dbt_<adapter>`), which dp's never has: only packages on both sides count
    let package = |m: &Value| m.get("package_name").and_then(Value::as_str).unwrap_or("").to_string();
    let packages: HashSet<String> = now.values().map(package).chain(cur.pointer("/metadata/project_name").and_then(Value::as_str).map(String::from)).collect();
    let mut changed: HashSet<String> = now.iter().filter(|(uid, m)| before.get(*uid).is_none_or(|p| sql(p) != sql(m))).map(|(uid, _)| uid.clone()).collect();
    changed.extend(before.iter().filter(|(uid, m)| packages.contains(&package(m)) && !now.contains_key(*uid)).map(|(uid, _)| uid.clone()));
    changed
}

/// Whether `n` (a node or a macro of `cur`) depends on one of `changed`,
/// directly or through the macros it depends on.
fn depends_on_any(n: &Value, cur: &Value, changed: &HashSet<String>, seen: &mut HashSet<String>) -> bool {
    let Some(deps) = n.pointer("/depends_on/macros").and_then(Value::as_array) else {
        return false;
    };
    for uid in deps.iter().filter_map(Value::as_str) {
        if !seen.insert(uid.to_string()) {
            continue;
        }
        if changed.contains(uid) {
            return true;
        }
        if let Some(m) = cur.get("macros").and_then(|ms| ms.get(uid))
            && depends_on_any(m, cur, changed, seen)
        {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn manifest(nodes: Value, macros: Value) -> String {
        json!({"nodes": nodes, "sources": {}, "macros": macros}).to_string()
    }

    #[test]
    fn tells_each_kind_of_change() {
        let node = |sum: &str, mat: &str, schema: &str, code: &str| json!({"checksum": {"name": "sha256", "checksum": sum}, "config": {"materialized": mat}, "unrendered_config": {"materialized": mat, "schema": schema}, "database": "", "schema": schema, "alias": "m", "raw_code": code});
        let with_macros = |mut n: Value, m: &[&str]| {
            n["depends_on"] = json!({"macros": m});
            n
        };
        let old = manifest(
            json!({"model.p.a": node("1", "view", "main", "select 1"), "model.p.b": node("2", "view", "main", "select 2"),
                   "model.p.c": node("3", "view", "main", "select 3"), "model.p.d": node("4", "view", "main", "{{ m1() }}"),
                   "model.p.e": node("5", "view", "main", "select 5")}),
            json!({"macro.p.m1": {"name": "m1", "macro_sql": "{{ m2() }}", "depends_on": {"macros": ["macro.p.m2"]}}, "macro.p.m2": {"name": "m2", "macro_sql": "1"}}),
        );
        let cur = manifest(
            json!({"model.p.a": node("1x", "view", "main", "select 11"), "model.p.b": node("2", "table", "main", "select 2"),
                   "model.p.c": node("3", "view", "other", "select 3"), "model.p.d": with_macros(node("4", "view", "main", "{{ m1() }}"), &["macro.p.m1"]),
                   "model.p.e": node("5", "view", "main", "select 5"), "model.p.f": node("6", "view", "main", "select 6")}),
            json!({"macro.p.m1": {"name": "m1", "macro_sql": "{{ m2() }}", "depends_on": {"macros": ["macro.p.m2"]}}, "macro.p.m2": {"name": "m2", "macro_sql": "2"}}),
        );
        let s = compare(&old, &cur).unwrap();
        let ids = |set: &HashSet<String>| {
            let mut v: Vec<String> = set.iter().cloned().collect();
            v.sort();
            v
        };
        assert_eq!(ids(&s.new), ["model.p.f"]);
        assert_eq!(ids(&s.body), ["model.p.a"]);
        assert_eq!(ids(&s.configs), ["model.p.b"]);
        assert_eq!(ids(&s.relation), ["model.p.c"]);
        assert_eq!(ids(&s.macros), ["model.p.d"]);
        assert!(s.matches("modified", "model.p.f").unwrap());
        assert!(!s.matches("modified", "model.p.e").unwrap());
        assert!(s.matches("unmodified", "model.p.e").unwrap());
        assert!(s.matches("modified.body", "model.p.a").unwrap());
        assert!(s.matches("modified.nope", "model.p.a").unwrap_err().starts_with("unknown state selector 'modified.nope'"));
        assert!(compare("{}", &cur).unwrap_err().contains("no `nodes`"));
    }

    #[test]
    fn fresher_sources_have_newer_rows_than_in_the_state() {
        let r = |uid: &str, at: Option<&str>| match at {
            Some(at) => json!({"unique_id": uid, "max_loaded_at": at, "status": "pass"}),
            None => json!({"unique_id": uid, "status": "runtime error", "error": "boom"}),
        };
        let prev = json!({"results": [r("source.p.s.same", Some("2024-01-01T00:00:00Z")), r("source.p.s.newer", Some("2024-01-01T00:00:00Z")),
                                      r("source.p.s.erred_before", None), r("source.p.s.erring", Some("2024-01-01T00:00:00Z"))]});
        let cur = json!({"results": [r("source.p.s.same", Some("2024-01-01T00:00:00.000000Z")), r("source.p.s.newer", Some("2024-01-02T00:00:00Z")),
                                     r("source.p.s.erred_before", Some("2023-01-01T00:00:00Z")), r("source.p.s.erring", None),
                                     r("source.p.s.new", Some("2020-01-01T00:00:00Z"))]});
        let mut got: Vec<String> = fresher(&prev.to_string(), &cur.to_string()).unwrap().into_iter().collect();
        got.sort();
        assert_eq!(got, ["source.p.s.erred_before", "source.p.s.new", "source.p.s.newer"]);
    }
}
