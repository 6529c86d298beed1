//! A snapshot's config, read and checked as dbt 1.9+ does
//! (`SnapshotConfig.final_validate`, `get_hard_deletes_behavior`,
//! `snapshot_table_column_names`): the strategy (`timestamp` with
//! `updated_at`, or `check` with `check_cols`), the `unique_key` (one column
//! or a list), what happens to hard deletes, `dbt_valid_to_current` and the
//! names of the meta columns. The loader checks every snapshot with it; the
//! materialization (`src/materialize/snapshot.rs`) runs from it.

use serde_json::{Map, Value};

/// How a snapshot tells that a row changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    /// A newer `updated_at` (a column or an expression of the query) is a change.
    Timestamp { updated_at: String },
    /// A difference in the checked columns is a change; `updated_at`, when
    /// set, stamps the versions instead of the snapshot time.
    Check { cols: CheckCols, updated_at: Option<String> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckCols {
    All,
    List(Vec<String>),
}

/// What a row missing from the source does to its current version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HardDeletes {
    /// Nothing (dbt's default).
    Ignore,
    /// Its `dbt_valid_to` is set to the snapshot time.
    Invalidate,
    /// As `invalidate`, and a new version with `dbt_is_deleted = 'True'`.
    NewRecord,
}

/// The names of the columns a snapshot adds (`snapshot_meta_column_names`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaColumns {
    pub scd_id: String,
    pub updated_at: String,
    pub valid_from: String,
    pub valid_to: String,
    pub is_deleted: String,
}

impl Default for MetaColumns {
    fn default() -> Self {
        MetaColumns {
            scd_id: "dbt_scd_id".into(),
            updated_at: "dbt_updated_at".into(),
            valid_from: "dbt_valid_from".into(),
            valid_to: "dbt_valid_to".into(),
            is_deleted: "dbt_is_deleted".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotConfig {
    pub strategy: Strategy,
    /// Key columns (or expressions); one or more.
    pub unique_key: Vec<String>,
    pub hard_deletes: HardDeletes,
    /// The SQL expression current versions carry in `dbt_valid_to` instead of NULL.
    pub valid_to_current: Option<String>,
    pub columns: MetaColumns,
}

/// A problem with one config key: (key, message with a hint).
pub type Problem = (&'static str, String);

fn strings(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(a) => a.iter().map(|x| x.as_str().map(String::from)).collect(),
        _ => None,
    }
}

fn text<'a>(cfg: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    cfg.get(key).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

fn truthy(v: Option<&Value>) -> Option<bool> {
    match v? {
        Value::Null => None,
        Value::Bool(b) => Some(*b),
        Value::String(s) => Some(matches!(s.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes")),
        Value::Number(n) => Some(n.as_i64() != Some(0)),
        _ => Some(true),
    }
}

impl SnapshotConfig {
    /// Reads a snapshot's resolved config; the first problem found, if any.
    pub fn from_config(cfg: &Map<String, Value>) -> Result<SnapshotConfig, Problem> {
        let shape =
            "\n  hint: configure e.g. unique_key='id', strategy='timestamp', updated_at='updated_at' (or strategy='check', check_cols=['status'] or 'all')";
        let unique_key = match cfg.get("unique_key") {
            None | Some(Value::Null) => return Err(("unique_key", format!("a snapshot needs a unique_key{shape}"))),
            Some(v) => strings(v).filter(|k| !k.is_empty() && k.iter().all(|c| !c.trim().is_empty())).ok_or_else(|| {
                (
                    "unique_key",
                    "unique_key must be a column name or a list of column names\n  hint: unique_key='id' or unique_key=['order_id', 'line_no']".to_string(),
                )
            })?,
        };
        let updated_at = text(cfg, "updated_at").map(String::from);
        let strategy = match text(cfg, "strategy") {
            None => return Err(("strategy", format!("a snapshot needs a strategy{shape}"))),
            Some("timestamp") => {
                let Some(updated_at) = updated_at else {
                    return Err((
                        "updated_at",
                        "a snapshot with the timestamp strategy needs updated_at\n  hint: updated_at='updated_at' (the column that changes when the row does)"
                            .into(),
                    ));
                };
                if cfg.get("check_cols").is_some_and(|v| !v.is_null()) {
                    return Err(("check_cols", "a 'timestamp' snapshot should not have check_cols\n  hint: remove check_cols, or use strategy='check'".into()));
                }
                Strategy::Timestamp { updated_at }
            }
            Some("check") => {
                let cols = match cfg.get("check_cols") {
                    Some(Value::String(s)) if s.trim() == "all" => CheckCols::All,
                    Some(Value::Array(a)) if !a.is_empty() && a.iter().all(Value::is_string) => {
                        CheckCols::List(a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
                    }
                    None | Some(Value::Null) => {
                        return Err((
                            "check_cols",
                            "a snapshot with the check strategy needs check_cols\n  hint: check_cols=['status', 'amount'] or check_cols='all'".into(),
                        ));
                    }
                    Some(other) => {
                        return Err(("check_cols", format!("invalid value for check_cols: {other}\n  hint: use 'all' or a list of column names")));
                    }
                };
                Strategy::Check { cols, updated_at }
            }
            Some(other) => {
                return Err((
                    "strategy",
                    format!("snapshot strategy '{other}' is not supported\n  hint: use 'timestamp' (with updated_at) or 'check' (with check_cols)"),
                ));
            }
        };
        let invalidate = truthy(cfg.get("invalidate_hard_deletes"));
        let hard = text(cfg, "hard_deletes");
        if invalidate.is_some() && hard.is_some() {
            return Err((
                "hard_deletes",
                "invalidate_hard_deletes and hard_deletes cannot both be set on the same snapshot\n  hint: keep hard_deletes ('invalidate' replaces invalidate_hard_deletes=true)".into(),
            ));
        }
        let hard_deletes = match (invalidate, hard) {
            (Some(true), _) | (_, Some("invalidate")) => HardDeletes::Invalidate,
            (_, Some("new_record")) => HardDeletes::NewRecord,
            (_, None | Some("ignore")) => HardDeletes::Ignore,
            (_, Some(other)) => {
                let hint = crate::util::suggest(other, ["ignore", "invalidate", "new_record"].into_iter())
                    .map(|s| format!("did you mean '{s}'? "))
                    .unwrap_or_default();
                return Err(("hard_deletes", format!("hard_deletes '{other}' is not supported\n  hint: {hint}use ignore, invalidate or new_record")));
            }
        };
        let mut columns = MetaColumns::default();
        match cfg.get("snapshot_meta_column_names") {
            None | Some(Value::Null) => {}
            Some(Value::Object(o)) => {
                for (k, v) in o {
                    let slot = match k.as_str() {
                        "dbt_scd_id" => &mut columns.scd_id,
                        "dbt_updated_at" => &mut columns.updated_at,
                        "dbt_valid_from" => &mut columns.valid_from,
                        "dbt_valid_to" => &mut columns.valid_to,
                        "dbt_is_deleted" => &mut columns.is_deleted,
                        other => {
                            return Err((
                                "snapshot_meta_column_names",
                                format!(
                                    "snapshot_meta_column_names has an unknown key '{other}'\n  hint: use dbt_scd_id, dbt_updated_at, dbt_valid_from, dbt_valid_to or dbt_is_deleted"
                                ),
                            ));
                        }
                    };
                    match v {
                        Value::Null => {}
                        Value::String(s) if !s.trim().is_empty() => *slot = s.trim().to_string(),
                        _ => return Err(("snapshot_meta_column_names", format!("snapshot_meta_column_names.{k} must be a column name"))),
                    }
                }
            }
            Some(_) => {
                return Err((
                    "snapshot_meta_column_names",
                    "snapshot_meta_column_names must be a mapping\n  hint: snapshot_meta_column_names: {dbt_valid_from: valid_from, dbt_valid_to: valid_to}"
                        .into(),
                ));
            }
        }
        let valid_to_current = text(cfg, "dbt_valid_to_current").map(String::from);
        Ok(SnapshotConfig { strategy, unique_key, hard_deletes, valid_to_current, columns })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg(v: Value) -> Result<SnapshotConfig, Problem> {
        SnapshotConfig::from_config(v.as_object().unwrap())
    }

    #[test]
    fn reads_dbt_configs() {
        let c = cfg(json!({"unique_key": "id", "strategy": "timestamp", "updated_at": "updated_at"})).unwrap();
        assert_eq!(c.strategy, Strategy::Timestamp { updated_at: "updated_at".into() });
        assert_eq!(c.unique_key, vec!["id"]);
        assert_eq!(c.hard_deletes, HardDeletes::Ignore);
        let c = cfg(json!({"unique_key": ["a", "b"], "strategy": "check", "check_cols": "all", "invalidate_hard_deletes": true})).unwrap();
        assert_eq!(c.strategy, Strategy::Check { cols: CheckCols::All, updated_at: None });
        assert_eq!(c.unique_key, vec!["a", "b"]);
        assert_eq!(c.hard_deletes, HardDeletes::Invalidate);
        let c = cfg(json!({"unique_key": "id", "strategy": "check", "check_cols": ["x"], "hard_deletes": "new_record",
            "snapshot_meta_column_names": {"dbt_valid_to": "valid_to"}, "dbt_valid_to_current": "cast('9999-12-31' as timestamp)"}))
        .unwrap();
        assert_eq!(c.hard_deletes, HardDeletes::NewRecord);
        assert_eq!(c.columns.valid_to, "valid_to");
        assert_eq!(c.columns.valid_from, "dbt_valid_from");
        assert_eq!(c.valid_to_current.as_deref(), Some("cast('9999-12-31' as timestamp)"));
    }

    #[test]
    fn says_what_is_missing() {
        assert_eq!(cfg(json!({"strategy": "timestamp"})).unwrap_err().0, "unique_key");
        assert_eq!(cfg(json!({"unique_key": "id"})).unwrap_err().0, "strategy");
        assert_eq!(cfg(json!({"unique_key": "id", "strategy": "timestamp"})).unwrap_err().0, "updated_at");
        assert_eq!(cfg(json!({"unique_key": "id", "strategy": "check"})).unwrap_err().0, "check_cols");
        assert_eq!(cfg(json!({"unique_key": "id", "strategy": "check", "check_cols": "x"})).unwrap_err().0, "check_cols");
        let (k, m) = cfg(json!({"unique_key": "id", "strategy": "check", "check_cols": "all", "hard_deletes": "invalidat"})).unwrap_err();
        assert_eq!(k, "hard_deletes");
        assert!(m.contains("did you mean 'invalidate'?"), "{m}");
        let both = json!({"unique_key": "id", "strategy": "check", "check_cols": "all", "hard_deletes": "invalidate", "invalidate_hard_deletes": true});
        assert_eq!(cfg(both).unwrap_err().0, "hard_deletes");
        assert_eq!(cfg(json!({"unique_key": "id", "strategy": "custom"})).unwrap_err().0, "strategy");
    }
}
