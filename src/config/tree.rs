//! Folder-level config trees (`models:` / `seeds:` / `data_tests:` in
//! dbt_project.yml, `[models]`... in warehouse.toml) and dbt's config merge
//! rules.
//!
//! A tree is keyed by package name, then by folder names, then optionally by
//! node name. A key is a config when it starts with `+`, when it is a known
//! config name, or when its value is not a table; otherwise it names a
//! sub-folder. Along a node's fqn, deeper levels win, except `tags` (union),
//! `meta` (merged) and hooks (appended), as in dbt.

use serde_json::{Map, Value};

/// Config keys whose values may be tables but are configs, not folders.
const DICT_CONFIGS: &[&str] =
    &["meta", "docs", "persist_docs", "grants", "column_types", "contract", "quoting", "partition_by", "indexes", "labels", "freshness", "external"];

/// Config names dp knows (used to tell configs from folders without `+`).
const KNOWN: &[&str] = &[
    "materialized",
    "schema",
    "alias",
    "database",
    "tags",
    "enabled",
    "meta",
    "docs",
    "persist_docs",
    "pre-hook",
    "post-hook",
    "pre_hook",
    "post_hook",
    "unique_key",
    "incremental_strategy",
    "on_schema_change",
    "full_refresh",
    "partition_by",
    "grants",
    "contract",
    "quoting",
    "column_types",
    "delimiter",
    "quote_columns",
    "severity",
    "warn_if",
    "error_if",
    "fail_calc",
    "limit",
    "where",
    "store_failures",
    "store_failures_as",
    "publish",
    "indexes",
    "compression",
    "compression_level",
    "group",
    "access",
    "sql_header",
    "strategy",
    "updated_at",
    "check_cols",
    "target_schema",
    "target_database",
    "invalidate_hard_deletes",
    "snapshot_meta_column_names",
    "dbt_valid_to_current",
    "hard_deletes",
    "event_time",
    "batch_size",
    "lookback",
    "begin",
    "concurrent_batches",
    "incremental_predicates",
    "merge_update_columns",
    "merge_exclude_columns",
    "docs",
    "labels",
    "freshness",
    "loaded_at_field",
    "external",
    "identifier",
    "location",
];

pub fn is_config_key(key: &str, value: &Value) -> bool {
    if key.starts_with('+') {
        return true;
    }
    if DICT_CONFIGS.contains(&key) {
        return true;
    }
    if KNOWN.contains(&key) {
        return !value.is_object() || DICT_CONFIGS.contains(&key);
    }
    !value.is_object()
}

/// Canonical name of a config key: no `+`, hooks spelled `pre-hook`/`post-hook`.
pub fn canonical_key(key: &str) -> String {
    let k = key.trim_start_matches('+');
    match k {
        "pre_hook" => "pre-hook".into(),
        "post_hook" => "post-hook".into(),
        other => other.to_string(),
    }
}

#[derive(Debug, Clone, Default)]
pub struct ConfigTree {
    root: Value,
}

impl ConfigTree {
    pub fn new(root: Value) -> Self {
        Self { root }
    }

    /// The configs along `fqn` (package, folders..., name), merged: first
    /// the configs at the top of the tree (`seeds: {+schema: raw}` applies
    /// to every seed of every package, as in dbt), then each level down.
    ///
    /// Beside them, the same levels as dbt's `unrendered_config` collects
    /// them: each level's keys replace the level above's (no merging of
    /// tags, meta or hooks).
    pub fn resolve_both(&self, fqn: &[String]) -> (Map<String, Value>, Map<String, Value>) {
        let (mut merged, mut unrendered) = (Map::new(), Map::new());
        let mut apply = |level: &Map<String, Value>| {
            let c = configs_of(level);
            merge_config(&mut merged, &c);
            update_config(&mut unrendered, &c);
        };
        let mut node = &self.root;
        if let Some(top) = node.as_object() {
            apply(top);
        }
        for part in fqn {
            let Some(obj) = node.as_object() else { break };
            let Some(child) = obj.get(part) else { break };
            if let Some(c) = child.as_object() {
                apply(c);
            }
            node = child;
        }
        (merged, unrendered)
    }
}

/// `over`'s keys replace `base`'s (a key already there keeps its place):
/// how dbt builds `unrendered_config`, a plain `dict.update`.
pub fn update_config(base: &mut Map<String, Value>, over: &Map<String, Value>) {
    for (k, v) in over {
        base.insert(canonical_key(k), v.clone());
    }
}

/// The config keys of one level (its other keys name sub-folders).
fn configs_of(level: &Map<String, Value>) -> Map<String, Value> {
    level.iter().filter(|(k, v)| is_config_key(k, v)).map(|(k, v)| (canonical_key(k), v.clone())).collect()
}

/// Applies `over` on top of `base` with dbt's merge rules.
pub fn merge_config(base: &mut Map<String, Value>, over: &Map<String, Value>) {
    for (k, v) in over {
        let k = canonical_key(k);
        match k.as_str() {
            "tags" => {
                let mut tags = as_string_list(base.get("tags"));
                for t in as_string_list(Some(v)) {
                    if !tags.contains(&t) {
                        tags.push(t);
                    }
                }
                base.insert(k, Value::Array(tags.into_iter().map(Value::String).collect()));
            }
            "meta" | "docs" | "grants" => match (base.get_mut(&k), v) {
                (Some(Value::Object(b)), Value::Object(o)) => {
                    for (mk, mv) in o {
                        b.insert(mk.clone(), mv.clone());
                    }
                }
                _ => {
                    base.insert(k, v.clone());
                }
            },
            "pre-hook" | "post-hook" => {
                let mut hooks = match base.remove(&k) {
                    Some(Value::Array(a)) => a,
                    Some(Value::Null) | None => vec![],
                    Some(other) => vec![other],
                };
                match v {
                    Value::Array(a) => hooks.extend(a.iter().cloned()),
                    Value::Null => {}
                    other => hooks.push(other.clone()),
                }
                base.insert(k, Value::Array(hooks));
            }
            _ => {
                base.insert(k, v.clone());
            }
        }
    }
}

fn as_string_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| match x {
                Value::String(s) => Some(s.clone()),
                Value::Null => None,
                other => Some(other.to_string()),
            })
            .collect(),
        _ => vec![],
    }
}

/// Deep-merges tree `over` into `base` (tables merge, other values replace).
pub(crate) fn merge_trees(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) if existing.is_object() && v.is_object() => merge_trees(existing, v),
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}
