//! Configs are checked when the project loads, before anything runs: an
//! unknown `materialized`, `incremental_strategy`, `on_schema_change` or
//! `compression`, a `compression_level` its codec does not have, a
//! `deletion_vectors` that is not a boolean, an `incremental_predicates`
//! entry that is not a SQL condition, or a
//! malformed `indexes` or `grants` entry, is reported with the file and line
//! where the value is written (the model's file, its YAML, or the project
//! file) and the values dp accepts.

use serde_json::Value;

use super::LoadError;
use crate::fs::FileSystem;
use crate::project::nodes::{Materialization, Node, NodeMap, ResourceType};

pub const INCREMENTAL_STRATEGIES: &[&str] = &["append", "merge", "delete+insert", "microbatch"];
pub const ON_SCHEMA_CHANGE: &[&str] = &["ignore", "fail", "append_new_columns", "sync_all_columns"];
pub const COMPRESSIONS: &[&str] = &["zstd", "snappy", "gzip", "lz4", "none", "uncompressed"];
/// Table privileges dbt's `grants` may name.
pub const PRIVILEGES: &[&str] = &["select", "insert", "update", "delete", "truncate", "references", "trigger", "all"];

/// Checks every enabled node's config; all problems are reported at once.
pub fn configs(nodes: &NodeMap, fs: &dyn FileSystem) -> Result<(), LoadError> {
    let mut errors = vec![];
    for n in nodes.values().filter(|n| n.enabled()) {
        for (key, problem) in problems(n) {
            let (file, line) = locate(n, key, fs);
            errors.push(LoadError::Located { file, line, message: format!("{} '{}': {problem}", n.resource_type, n.name) });
        }
    }
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.remove(0)),
        _ => Err(LoadError::Many(errors)),
    }
}

/// (config key, what is wrong with it) for one node.
fn problems(n: &Node) -> Vec<(&'static str, String)> {
    let mut out = vec![];
    let s = |k: &str| n.config.get(k).and_then(Value::as_str).map(str::to_string);
    let one_of = |key: &'static str, v: &str, allowed: &[&str], out: &mut Vec<(&'static str, String)>| {
        if !allowed.contains(&v.to_ascii_lowercase().as_str()) {
            let hint = crate::util::suggest(&v.to_ascii_lowercase(), allowed.iter().copied()).map(|s| format!("did you mean '{s}'? ")).unwrap_or_default();
            out.push((key, format!("{key} '{v}' is not supported\n  hint: {hint}use {}", allowed.join(", "))));
        }
    };
    if n.resource_type == ResourceType::Model {
        let m = n.materialized();
        if !Materialization::FOR_MODELS.contains(&m) {
            let allowed: Vec<&str> = Materialization::FOR_MODELS.iter().map(|m| m.as_str()).collect();
            one_of("materialized", &s("materialized").unwrap_or_default(), &allowed, &mut out);
        }
        if m == Materialization::Incremental {
            if let Some(v) = s("incremental_strategy") {
                one_of("incremental_strategy", &v, INCREMENTAL_STRATEGIES, &mut out);
            }
            if let Some(v) = s("on_schema_change") {
                one_of("on_schema_change", &v, ON_SCHEMA_CHANGE, &mut out);
            }
            if let Some(v) = n.config.get("deletion_vectors").filter(|v| !v.is_null() && !v.is_boolean()) {
                out.push((
                    "deletion_vectors",
                    format!("deletion_vectors {v} is not a boolean\n  hint: write deletion_vectors=false to merge by rewriting files (true is the default)"),
                ));
            }
            for key in ["incremental_predicates", "predicates"] {
                if let Some(v) = n.config.get(key)
                    && let Err(p) = crate::materialize::predicates::check(key, v)
                {
                    out.push((key, p));
                }
            }
            if crate::project::microbatch::is_microbatch(&n.config)
                && let Err(p) = crate::project::microbatch::MicrobatchConfig::from_config(&n.config)
            {
                out.push(p);
            }
        }
    }
    if n.resource_type == ResourceType::Snapshot
        && let Err(p) = crate::project::snapshot::SnapshotConfig::from_config(&n.config)
    {
        out.push(p);
    }
    if matches!(n.resource_type, ResourceType::Model | ResourceType::Seed | ResourceType::Snapshot) {
        if let Some(v) = s("compression") {
            one_of("compression", &v, COMPRESSIONS, &mut out);
        }
        if let Some(v) = n.config.get("compression_level").filter(|v| !v.is_null()) {
            let codec = s("compression").unwrap_or_else(|| crate::materialize::delta::DEFAULT_COMPRESSION.to_string()).to_ascii_lowercase();
            if let Some(p) = compression_level_problem(&codec, v) {
                out.push(("compression_level", p));
            }
        }
        if let Some(v) = n.config.get("indexes").filter(|v| !v.is_null())
            && let Err(e) = check_indexes(v)
        {
            out.push(("indexes", e));
        }
        if let Some(v) = n.config.get("grants").filter(|v| !v.is_null())
            && let Err(e) = check_grants(v)
        {
            out.push(("grants", e));
        }
    }
    out
}

/// What is wrong with `compression_level = v` beside `compression = codec`:
/// zstd takes 1–22, gzip 0–9, and the other codecs have no level.
fn compression_level_problem(codec: &str, v: &Value) -> Option<String> {
    let range = match codec {
        "zstd" => 1..=22,
        "gzip" => 0..=9,
        "snappy" | "lz4" | "none" | "uncompressed" => {
            return Some(format!(
                "compression_level {v} is set but compression '{codec}' has no levels\n  hint: set compression to zstd (levels 1-22) or gzip (0-9), or remove compression_level"
            ));
        }
        _ => return None, // the unknown codec is reported on its own
    };
    match v.as_i64() {
        Some(l) if range.contains(&l) => None,
        _ => Some(format!("compression_level {v} is not a level of {codec}\n  hint: use a whole number from {} to {}", range.start(), range.end())),
    }
}

/// dbt-postgres's `indexes`: `[{columns: [a, b], unique: true, type: btree}]`.
pub fn check_indexes(v: &Value) -> Result<(), String> {
    let shape = "\n  hint: write indexes=[{'columns': ['id'], 'unique': true, 'type': 'btree'}]";
    let Value::Array(list) = v else { return Err(format!("indexes must be a list{shape}")) };
    for (i, ix) in list.iter().enumerate() {
        let Value::Object(o) = ix else { return Err(format!("indexes[{i}] must be a mapping{shape}")) };
        match o.get("columns") {
            Some(Value::Array(a)) if !a.is_empty() && a.iter().all(Value::is_string) => {}
            Some(Value::String(_)) => {}
            _ => return Err(format!("indexes[{i}] needs `columns`, a list of column names{shape}")),
        }
        if let Some(u) = o.get("unique")
            && !u.is_boolean()
        {
            return Err(format!("indexes[{i}].unique must be true or false{shape}"));
        }
        if let Some(t) = o.get("type") {
            let ok = t.as_str().is_some_and(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
            if !ok {
                return Err(format!("indexes[{i}].type must be an index method (btree, hash, gist, gin, brin){shape}"));
            }
        }
        if let Some(k) = o.keys().find(|k| !["columns", "unique", "type"].contains(&k.as_str())) {
            return Err(format!("indexes[{i}] has an unknown key '{k}'{shape}"));
        }
    }
    Ok(())
}

/// dbt's `grants`: `{select: [role, ...]}`.
pub fn check_grants(v: &Value) -> Result<(), String> {
    let Value::Object(g) = v else { return Err("grants must be a mapping of privilege to roles\n  hint: write grants={'select': ['reporter']}".into()) };
    for (privilege, roles) in g {
        let p = privilege.trim_start_matches('+').to_ascii_lowercase();
        if !PRIVILEGES.contains(&p.as_str()) {
            return Err(format!("grants key '{privilege}' is not a table privilege\n  hint: use one of {}", PRIVILEGES.join(", ")));
        }
        let ok = match roles {
            Value::String(_) => true,
            Value::Array(a) => a.iter().all(Value::is_string),
            _ => false,
        };
        if !ok {
            return Err(format!("grants.{privilege} must be a role name or a list of role names"));
        }
    }
    Ok(())
}

/// Where the node's `key` is written: its own file (a `config()` call), its
/// YAML properties, or the project file; the first line mentioning the key
/// with the node's value.
fn locate(n: &Node, key: &str, fs: &dyn FileSystem) -> (String, usize) {
    let value = match n.config.get(key) {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    };
    let find = |text: &str| {
        text.lines()
            .position(|l| l.contains(key) && (value.is_empty() || l.contains(&value)))
            .or_else(|| text.lines().position(|l| l.contains(key)))
            .map(|i| i + 1)
    };
    if let Some(line) = find(&n.raw_code) {
        // A snapshot's code is its block, which starts at the node's line.
        let offset = if n.resource_type == ResourceType::Snapshot { n.line.unwrap_or(1) - 1 } else { 0 };
        return (n.original_file_path.clone(), line + offset);
    }
    if let Some(yaml) = &n.patch_path
        && let Some(line) = fs.read_to_string(yaml).ok().as_deref().and_then(find)
    {
        return (yaml.clone(), line);
    }
    for file in [crate::config::DBT_PROJECT_YML, "warehouse.toml"] {
        if let Some(line) = fs.read_to_string(file).ok().as_deref().and_then(find) {
            return (file.to_string(), line);
        }
    }
    (n.patch_path.clone().unwrap_or_else(|| n.original_file_path.clone()), n.line.unwrap_or(1))
}
