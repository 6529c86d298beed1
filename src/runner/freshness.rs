//! `dp source freshness`: for every selected source table with a
//! `loaded_at_field` and a `freshness` (`warn_after` / `error_after`, each
//! `{count, period}`, and an optional `filter`), the age of its newest row,
//! judged as dbt judges it (`pass`, `warn`, `error`, or `runtime error`
//! when the query fails), and `target/sources.json` in dbt's sources v3
//! shape. Timestamps without a time zone are taken as UTC, as in dbt.

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{Array, TimestampMicrosecondArray};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

use crate::engine::Engine;
use crate::project::nodes::Node;
use crate::util::ident::{quote_ident, relation_name};

/// The outcome of one source table.
#[derive(Debug, Clone)]
pub struct Freshness {
    pub unique_id: String,
    /// `pass`, `warn`, `error` or `runtime error`.
    pub status: &'static str,
    pub max_loaded_at: Option<DateTime<Utc>>,
    pub snapshotted_at: DateTime<Utc>,
    pub age_s: Option<f64>,
    /// `warn_after`, `error_after`, `filter` as configured.
    pub criteria: Value,
    /// What went wrong (runtime error), or the criterion crossed.
    pub message: Option<String>,
    pub started_at: DateTime<Utc>,
    pub execution_time: Duration,
}

/// The freshness criteria of a source table (`config.freshness` wins over
/// the property), or None when it has none or no `loaded_at_field`.
pub fn criteria(n: &Node) -> Option<(String, Value)> {
    let s = n.source.as_ref()?;
    let field = n.config.get("loaded_at_field").and_then(Value::as_str).map(String::from).or_else(|| s.loaded_at_field.clone())?;
    let f = n.config.get("freshness").filter(|v| v.is_object()).or(s.freshness.as_ref()).filter(|v| v.is_object())?;
    if f.get("warn_after").is_none_or(Value::is_null) && f.get("error_after").is_none_or(Value::is_null) {
        return None;
    }
    Some((field, f.clone()))
}

/// A `{count, period}` as seconds (None when unset or malformed).
fn threshold(v: Option<&Value>) -> Option<f64> {
    let v = v?;
    let count = v.get("count")?.as_f64()?;
    let unit = match v.get("period")?.as_str()? {
        "minute" => 60.0,
        "hour" => 3600.0,
        "day" => 86400.0,
        _ => return None,
    };
    Some(count * unit)
}

/// Judges an age against the criteria, as dbt does (error wins over warn).
pub fn judge(age_s: f64, criteria: &Value) -> (&'static str, Option<String>) {
    let crossed = |key: &str| threshold(criteria.get(key)).filter(|t| age_s > *t);
    if let Some(t) = crossed("error_after") {
        return ("error", Some(format!("newest row is {} old, over error_after ({})", human(age_s), human(t))));
    }
    if let Some(t) = crossed("warn_after") {
        return ("warn", Some(format!("newest row is {} old, over warn_after ({})", human(age_s), human(t))));
    }
    ("pass", None)
}

fn human(s: f64) -> String {
    let s = s.max(0.0) as u64;
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

/// Checks one source table.
pub async fn check(engine: &Engine, n: &Node, field: &str, criteria: Value) -> Freshness {
    let started_at = Utc::now();
    let t = Instant::now();
    let identifier = n.source.as_ref().map(|s| s.identifier.as_str()).unwrap_or(&n.alias);
    let filter = criteria.get("filter").and_then(Value::as_str).map(|f| format!(" where {f}")).unwrap_or_default();
    let sql = format!("select cast(max({}) as timestamp) as max_loaded_at from {}{filter}", quote_ident(field), relation_name(&n.schema, identifier));
    let newest = async {
        let batches = engine.ctx.sql(&sql).await?.collect().await?;
        let col = batches.iter().find(|b| b.num_rows() > 0).map(|b| b.column(0).clone());
        let micros = match col {
            Some(c) => {
                let c = datafusion::arrow::compute::cast(
                    &c,
                    &datafusion::arrow::datatypes::DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Microsecond, None),
                )?;
                let a = c.as_any().downcast_ref::<TimestampMicrosecondArray>().cloned();
                a.filter(|a| !a.is_null(0)).map(|a| a.value(0))
            }
            None => None,
        };
        anyhow::Ok(micros.and_then(DateTime::<Utc>::from_timestamp_micros))
    }
    .await;
    let snapshotted_at = Utc::now();
    let mut f = Freshness {
        unique_id: n.unique_id.clone(),
        status: "runtime error",
        max_loaded_at: None,
        snapshotted_at,
        age_s: None,
        criteria,
        message: None,
        started_at,
        execution_time: Duration::ZERO,
    };
    match newest {
        Ok(Some(max)) => {
            let age = (snapshotted_at - max).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6;
            let (status, message) = judge(age, &f.criteria);
            (f.status, f.message, f.max_loaded_at, f.age_s) = (status, message, Some(max), Some(age));
        }
        // No rows (or only NULLs): dbt cannot tell the age and errors.
        Ok(None) => f.message = Some(format!("no rows with a {field} in {}", relation_name(&n.schema, identifier))),
        Err(e) => f.message = Some(format!("{e}\n  query: {sql}")),
    }
    f.execution_time = t.elapsed();
    f
}

/// `sources.json` (dbt's sources v3 schema).
pub fn sources_json(results: &[Freshness], elapsed: f64, invocation_id: &str) -> Value {
    let ts = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let items: Vec<Value> = results
        .iter()
        .map(|f| {
            let timing = json!([
                {"name": "compile", "started_at": ts(f.started_at), "completed_at": ts(f.started_at)},
                {"name": "execute", "started_at": ts(f.started_at), "completed_at": ts(f.started_at + f.execution_time)},
            ]);
            if f.status == "runtime error" {
                json!({"unique_id": f.unique_id, "error": f.message, "status": f.status})
            } else {
                json!({
                    "unique_id": f.unique_id,
                    "max_loaded_at": f.max_loaded_at.map(ts),
                    "snapshotted_at": ts(f.snapshotted_at),
                    "max_loaded_at_time_ago_in_s": f.age_s,
                    "status": f.status,
                    "criteria": {
                        "warn_after": f.criteria.get("warn_after").cloned().unwrap_or(json!({})),
                        "error_after": f.criteria.get("error_after").cloned().unwrap_or(json!({})),
                        "filter": f.criteria.get("filter").cloned().unwrap_or(Value::Null),
                    },
                    "adapter_response": {},
                    "timing": timing,
                    "thread_id": "Thread-1",
                    "execution_time": f.execution_time.as_secs_f64(),
                })
            }
        })
        .collect();
    json!({
        "metadata": crate::compile::manifest::artifact_metadata("https://schemas.getdbt.com/dbt/sources/v3.json", invocation_id, &ts(Utc::now())),
        "results": items,
        "elapsed_time": elapsed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_wins_over_warn_and_periods_convert() {
        let c = json!({"warn_after": {"count": 12, "period": "hour"}, "error_after": {"count": 1, "period": "day"}});
        assert_eq!(judge(3600.0, &c), ("pass", None));
        assert_eq!(judge(13.0 * 3600.0, &c).0, "warn");
        assert_eq!(judge(2.0 * 86400.0, &c), ("error", Some("newest row is 2d old, over error_after (24h)".into())));
        assert_eq!(judge(90.0, &json!({"warn_after": {"count": 1, "period": "minute"}})).1.as_deref(), Some("newest row is 90s old, over warn_after (60s)"));
    }
}
