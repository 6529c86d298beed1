//! Platform health metrics: one snapshot of the platform's state, as rows of
//! `marts.platform_health_metrics` (appended; one row per metric and
//! subject per snapshot, all rows of a snapshot share `metric_time`). The
//! schema is long and stable so dashboards chart any metric by filtering on
//! `metric_name`:
//!
//! | column | type | meaning |
//! |---|---|---|
//! | `metric_time` | timestamp (UTC) | when the snapshot was taken |
//! | `metric_name` | text | one of [`METRICS`] |
//! | `subject` | text | what the value is about (pipeline, `pipeline.task`, source, table, schema, `total`) |
//! | `value` | double, nullable | the measurement (NULL: nothing to measure yet) |
//! | `unit` | text | `state`, `seconds`, `count`, `rows`, `ratio` or `bytes` |
//! | `status` | text | `ok`, `warn`, `fail` or `unknown` |
//!
//! The metrics ([`METRICS`] documents each) come from the run history
//! (`dp_meta.pipeline_runs`, `dp_meta.task_runs`), the bronze files of the
//! sources, the marts' Delta logs, `dp_meta.ingestion_log`,
//! `dp_meta.checkpoint_runs`, `data_platform.alert_history` and the
//! warehouse's files. Collecting never fails on a missing table: a platform
//! that has not ingested or checked anything yet simply has no such rows.

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{Array, ArrayRef, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use deltalake::DeltaTable;
use deltalake::protocol::SaveMode;
use futures::StreamExt;
use std::collections::BTreeMap;
use std::sync::Arc;

use super::OrchestrateError;
use super::alert::ALERT_HISTORY;
use super::history::History;
use super::spec::Pipelines;
use crate::engine::Engine;
use crate::engine::sources::SourceTable;
use crate::project::nodes::{Column, Node, ResourceType};

/// Where the metrics are written (and published, in PostgreSQL's `marts`).
pub const TABLE: (&str, &str) = ("marts", "platform_health_metrics");

/// Every metric: name, unit, subject, definition (README, the table's
/// description and PostgreSQL's comments are generated from this list).
pub const METRICS: &[(&str, &str, &str, &str)] = &[
    (
        "pipeline_last_status",
        "state",
        "pipeline",
        "1 when the pipeline's last finished run succeeded, 0 when it failed, NULL (status unknown) when it never finished a run",
    ),
    ("pipeline_last_duration_seconds", "seconds", "pipeline", "duration of the pipeline's last finished run; status as pipeline_last_status"),
    (
        "task_failures_24h",
        "count",
        "pipeline.task",
        "tries of the task that ended failed (final failures, interrupted tries) in the last 24 hours; every defined task gets a row; fail when above 0",
    ),
    (
        "source_freshness_seconds",
        "seconds",
        "source.table",
        "age of the newest bronze file the source's external_location matches; warn/fail past the source's freshness warn_after/error_after; NULL (fail) when no file exists",
    ),
    (
        "mart_freshness_seconds",
        "seconds",
        "schema.table",
        "age of the last Delta commit of each marts model materialized as a table (views have no commits); NULL (fail) when the table was never built",
    ),
    (
        "rows_ingested_24h",
        "rows",
        "source.table",
        "rows that `dp ingest` landed for the source in the last 24 hours (dp_meta.ingestion_log, successful runs); fail when the source's last ingestion failed",
    ),
    (
        "checkpoint_pass_rate",
        "ratio",
        "checkpoint",
        "passed / evaluated expectations of the checkpoint's latest run (dp_meta.checkpoint_runs); warn when only warn-severity expectations failed, fail when the run failed",
    ),
    (
        "open_alerts",
        "count",
        "pipeline",
        "error and warning alerts (data_platform.alert_history) sent since the pipeline's last successful run ended (all of them when it never succeeded); every defined pipeline gets a row; fail when above 0",
    ),
    (
        "warehouse_size_bytes",
        "bytes",
        "schema, or total",
        "bytes of every file under the warehouse (Delta data, logs and old versions kept for time travel), per schema and in total",
    ),
];

/// The table's description (also PostgreSQL's table comment).
pub const DESCRIPTION: &str = "Platform health: one row per metric, subject and snapshot, appended by the platform_health pipeline (`health` task) every 15 minutes. \
Filter on metric_name; the latest snapshot is the rows with the greatest metric_time.";

/// The columns and their descriptions.
pub const COLUMNS: &[(&str, &str)] = &[
    ("metric_time", "When the snapshot was taken (UTC); every row of one snapshot has the same value."),
    (
        "metric_name",
        "pipeline_last_status, pipeline_last_duration_seconds, task_failures_24h, source_freshness_seconds, mart_freshness_seconds, rows_ingested_24h, checkpoint_pass_rate, open_alerts or warehouse_size_bytes.",
    ),
    ("subject", "What the value is about: a pipeline, pipeline.task, source.table, schema.table, checkpoint, schema or total."),
    ("value", "The measurement, in unit; NULL when there is nothing to measure yet."),
    ("unit", "state (1 success, 0 failure), seconds, count, rows, ratio (0 to 1) or bytes."),
    ("status", "ok, warn, fail or unknown, judged per metric (see the README's \"Platform health\")."),
];

/// One row of `platform_health_metrics`.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub metric_time: DateTime<Utc>,
    pub metric_name: String,
    pub subject: String,
    pub value: Option<f64>,
    pub unit: String,
    pub status: String,
}

/// A source whose bronze files are measured.
pub struct SourceInput {
    /// `source.table`.
    pub label: String,
    pub table: SourceTable,
    /// The source's `freshness` (warn_after / error_after), if declared.
    pub freshness: Option<serde_json::Value>,
}

/// What a snapshot is taken from.
pub struct Inputs<'a> {
    pub engine: &'a Engine,
    pub history: &'a History,
    pub pipelines: &'a Pipelines,
    pub sources: Vec<SourceInput>,
    /// The marts' tables: `(schema, table)`.
    pub marts: Vec<(String, String)>,
    pub now: DateTime<Utc>,
}

struct Out {
    time: DateTime<Utc>,
    rows: Vec<Metric>,
}

impl Out {
    fn push(&mut self, name: &str, subject: &str, value: Option<f64>, status: &str) {
        let unit = METRICS.iter().find(|m| m.0 == name).map(|m| m.1).unwrap_or("");
        self.rows.push(Metric { metric_time: self.time, metric_name: name.into(), subject: subject.into(), value, unit: unit.into(), status: status.into() });
    }
}

fn err(table: &str) -> impl Fn(String) -> OrchestrateError + '_ {
    move |e| OrchestrateError::history(table, e)
}

/// Takes one snapshot of every metric.
pub async fn collect(i: &Inputs<'_>) -> Result<Vec<Metric>, OrchestrateError> {
    let mut out = Out { time: i.now, rows: vec![] };
    pipelines(i, &mut out).await?;
    sources(i, &mut out).await;
    marts(i, &mut out).await;
    ingestion(i, &mut out).await?;
    checkpoints(i, &mut out).await?;
    alerts(i, &mut out).await?;
    warehouse(i, &mut out).await?;
    Ok(out.rows)
}

fn secs(d: chrono::TimeDelta) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

async fn pipelines(i: &Inputs<'_>, out: &mut Out) -> Result<(), OrchestrateError> {
    let runs = i.history.runs().await?;
    let tries = i.history.tasks().await?;
    let since = i.now - chrono::TimeDelta::hours(24);
    for p in i.pipelines.pipelines.values() {
        let last = runs.iter().rev().find(|r| r.pipeline == p.name && r.state != "running");
        match last {
            Some(r) => {
                let (v, status) = if r.state == "success" { (1.0, "ok") } else { (0.0, "fail") };
                out.push("pipeline_last_status", &p.name, Some(v), status);
                out.push("pipeline_last_duration_seconds", &p.name, r.ended_at.map(|e| secs(e - r.started_at)), status);
            }
            None => {
                out.push("pipeline_last_status", &p.name, None, "unknown");
                out.push("pipeline_last_duration_seconds", &p.name, None, "unknown");
            }
        }
    }
    // Every defined task, then tasks only the history knows (removed since).
    let mut failures: BTreeMap<(String, String), usize> = BTreeMap::new();
    for p in i.pipelines.pipelines.values() {
        for t in &p.tasks {
            failures.insert((p.name.clone(), t.name.clone()), 0);
        }
    }
    let mut order: Vec<(String, String)> = i.pipelines.pipelines.values().flat_map(|p| p.tasks.iter().map(|t| (p.name.clone(), t.name.clone()))).collect();
    for t in tries.iter().filter(|t| t.state == "failed" && t.ended_at.unwrap_or(t.started_at) > since) {
        let key = (t.pipeline.clone(), t.task.clone());
        if !failures.contains_key(&key) {
            order.push(key.clone());
        }
        *failures.entry(key).or_default() += 1;
    }
    for key in order {
        let n = failures[&key];
        out.push("task_failures_24h", &format!("{}.{}", key.0, key.1), Some(n as f64), if n == 0 { "ok" } else { "fail" });
    }
    Ok(())
}

/// The newest file a source's location matches.
async fn newest_file(engine: &Engine, t: &SourceTable) -> Option<DateTime<Utc>> {
    let files = t.files(&engine.ctx).await.ok()?;
    files.iter().map(|f| f.last_modified).max()
}

async fn sources(i: &Inputs<'_>, out: &mut Out) {
    for s in &i.sources {
        match newest_file(i.engine, &s.table).await {
            Some(t) => {
                let age = secs(i.now - t).max(0.0);
                let status = match &s.freshness {
                    Some(f) => match crate::runner::freshness::judge(age, f).0 {
                        "error" => "fail",
                        "warn" => "warn",
                        _ => "ok",
                    },
                    None => "ok",
                };
                out.push("source_freshness_seconds", &s.label, Some(age), status);
            }
            None => out.push("source_freshness_seconds", &s.label, None, "fail"),
        }
    }
}

async fn marts(i: &Inputs<'_>, out: &mut Out) {
    for (schema, table) in &i.marts {
        let url = i.engine.warehouse.table(schema, table).url;
        let committed = match deltalake::open_table(url).await {
            Ok(t) => {
                let mut h = t.history(Some(1));
                h.next().await.and_then(|c| c.ok()).and_then(|c| c.timestamp).and_then(DateTime::from_timestamp_millis)
            }
            Err(_) => None,
        };
        let label = format!("{schema}.{table}");
        match committed {
            Some(t) => out.push("mart_freshness_seconds", &label, Some(secs(i.now - t).max(0.0)), "ok"),
            None => out.push("mart_freshness_seconds", &label, None, "fail"),
        }
    }
}

/// Rows of a query over warehouse tables, or none when a table is missing.
async fn query(engine: &Engine, tables: &[(&str, &str)], sql: &str) -> Result<Vec<RecordBatch>, OrchestrateError> {
    for (s, t) in tables {
        let exists = engine.warehouse.kind(s, t).await.map_err(|e| OrchestrateError::history(&format!("{s}.{t}"), e))?.is_some();
        if !exists {
            return Ok(vec![]);
        }
        engine.catalog.invalidate(s, t);
    }
    let name = tables.iter().map(|(s, t)| format!("{s}.{t}")).collect::<Vec<_>>().join(", ");
    let df = engine.ctx.sql(sql).await.map_err(|e| err(&name)(e.to_string()))?;
    df.collect().await.map_err(|e| err(&name)(e.to_string()))
}

fn text(b: &RecordBatch, col: usize, row: usize) -> String {
    let c = datafusion::arrow::compute::cast(b.column(col), &DataType::Utf8).expect("anything casts to text");
    let a = c.as_any().downcast_ref::<StringArray>().expect("utf8");
    if a.is_null(row) { String::new() } else { a.value(row).to_string() }
}

fn float(b: &RecordBatch, col: usize, row: usize) -> Option<f64> {
    let c = datafusion::arrow::compute::cast(b.column(col), &DataType::Float64).ok()?;
    let a = c.as_any().downcast_ref::<Float64Array>()?;
    (!a.is_null(row)).then(|| a.value(row))
}

async fn ingestion(i: &Inputs<'_>, out: &mut Out) -> Result<(), OrchestrateError> {
    let since = i.now - chrono::TimeDelta::hours(24);
    let sql = format!(
        "WITH log AS (SELECT source_name, status, row_count, finished_at, \
                row_number() OVER (PARTITION BY source_name ORDER BY finished_at DESC) AS rn FROM dp_meta.ingestion_log) \
         SELECT source_name, \
                coalesce(sum(CASE WHEN status = 'success' AND finished_at > to_timestamp_micros({}) THEN row_count END), 0), \
                max(CASE WHEN rn = 1 THEN status END) \
         FROM log GROUP BY source_name ORDER BY source_name",
        since.timestamp_micros()
    );
    for b in query(i.engine, &[("dp_meta", "ingestion_log")], &sql).await? {
        for r in 0..b.num_rows() {
            let status = if text(&b, 2, r) == "success" { "ok" } else { "fail" };
            out.push("rows_ingested_24h", &text(&b, 0, r), float(&b, 1, r), status);
        }
    }
    Ok(())
}

async fn checkpoints(i: &Inputs<'_>, out: &mut Out) -> Result<(), OrchestrateError> {
    let sql = "SELECT checkpoint, evaluated, passed, success, failed_warn FROM ( \
                 SELECT *, row_number() OVER (PARTITION BY checkpoint ORDER BY started_at DESC) AS rn FROM dp_meta.checkpoint_runs) \
               WHERE rn = 1 ORDER BY checkpoint";
    for b in query(i.engine, &[("dp_meta", "checkpoint_runs")], sql).await? {
        for r in 0..b.num_rows() {
            let evaluated = float(&b, 1, r).unwrap_or(0.0);
            let passed = float(&b, 2, r).unwrap_or(0.0);
            let rate = if evaluated > 0.0 { Some(passed / evaluated) } else { None };
            let status = if text(&b, 3, r) != "true" {
                "fail"
            } else if float(&b, 4, r).unwrap_or(0.0) > 0.0 {
                "warn"
            } else {
                "ok"
            };
            out.push("checkpoint_pass_rate", &text(&b, 0, r), rate, status);
        }
    }
    Ok(())
}

async fn alerts(i: &Inputs<'_>, out: &mut Out) -> Result<(), OrchestrateError> {
    let runs = i.history.runs().await?;
    let mut sent: Vec<(String, DateTime<Utc>)> = vec![];
    let sql = format!("SELECT pipeline, CAST(sent_at AS BIGINT) FROM {}.{} WHERE severity IN ('error', 'warning')", ALERT_HISTORY.0, ALERT_HISTORY.1);
    for b in query(i.engine, &[ALERT_HISTORY], &sql).await? {
        for r in 0..b.num_rows() {
            if let Some(at) = text(&b, 1, r).parse::<i64>().ok().and_then(DateTime::from_timestamp_micros) {
                sent.push((text(&b, 0, r), at));
            }
        }
    }
    let mut names: Vec<String> = i.pipelines.pipelines.keys().cloned().collect();
    for (p, _) in &sent {
        if !names.contains(p) {
            names.push(p.clone());
        }
    }
    for p in names {
        let last_ok = runs.iter().filter(|r| r.pipeline == p && r.state == "success").filter_map(|r| r.ended_at).max();
        let open = sent.iter().filter(|(q, at)| *q == p && last_ok.is_none_or(|ok| *at > ok)).count();
        out.push("open_alerts", &p, Some(open as f64), if open == 0 { "ok" } else { "fail" });
    }
    Ok(())
}

async fn warehouse(i: &Inputs<'_>, out: &mut Out) -> Result<(), OrchestrateError> {
    let sizes = i.engine.warehouse.size_by_schema().await.map_err(|e| OrchestrateError::history("the warehouse", e))?;
    let total: u64 = sizes.iter().map(|(_, b)| b).sum();
    for (schema, bytes) in &sizes {
        out.push("warehouse_size_bytes", schema, Some(*bytes as f64), "ok");
    }
    out.push("warehouse_size_bytes", "total", Some(total as f64), "ok");
    Ok(())
}

fn arrow_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("metric_time", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
        Field::new("metric_name", DataType::Utf8, false),
        Field::new("subject", DataType::Utf8, false),
        Field::new("value", DataType::Float64, true),
        Field::new("unit", DataType::Utf8, false),
        Field::new("status", DataType::Utf8, false),
    ]))
}

/// Appends a snapshot to `marts.platform_health_metrics`; returns the new
/// Delta version.
pub async fn write(engine: &Engine, rows: &[Metric]) -> Result<i64, OrchestrateError> {
    let name = format!("{}.{}", TABLE.0, TABLE.1);
    let cols: Vec<ArrayRef> = vec![
        Arc::new(TimestampMicrosecondArray::from(rows.iter().map(|m| m.metric_time.timestamp_micros()).collect::<Vec<_>>()).with_timezone("UTC")),
        Arc::new(StringArray::from(rows.iter().map(|m| m.metric_name.as_str()).collect::<Vec<_>>())),
        Arc::new(StringArray::from(rows.iter().map(|m| m.subject.as_str()).collect::<Vec<_>>())),
        Arc::new(Float64Array::from(rows.iter().map(|m| m.value).collect::<Vec<_>>())),
        Arc::new(StringArray::from(rows.iter().map(|m| m.unit.as_str()).collect::<Vec<_>>())),
        Arc::new(StringArray::from(rows.iter().map(|m| m.status.as_str()).collect::<Vec<_>>())),
    ];
    let batch = RecordBatch::try_new(arrow_schema(), cols).map_err(|e| err(&name)(e.to_string()))?;
    let loc = engine.warehouse.table(TABLE.0, TABLE.1);
    engine.warehouse.prepare_table(&loc).await.map_err(|e| err(&name)(e.to_string()))?;
    let t = DeltaTable::try_from_url(loc.url.clone()).await.map_err(|e| err(&name)(e.to_string()))?;
    let t = t.write(vec![batch]).with_save_mode(SaveMode::Append).await.map_err(|e| err(&name)(e.to_string()))?;
    crate::materialize::delta::checkpoint_if_due(&t).await;
    engine.catalog.invalidate(TABLE.0, TABLE.1);
    Ok(t.version().unwrap_or_default() as i64)
}

/// The table as a node, for publishing: an append-only incremental model
/// (PostgreSQL receives only each new snapshot's rows), described for the
/// comments PostgreSQL shows.
pub fn node(package: &str) -> Node {
    let mut n = Node::new(ResourceType::Model, package, TABLE.1, "pipelines/");
    n.schema = TABLE.0.into();
    n.description = DESCRIPTION.into();
    n.config.insert("materialized".into(), "incremental".into());
    n.config.insert("incremental_strategy".into(), "append".into());
    for (c, d) in COLUMNS {
        n.columns.insert(c.to_string(), Column { name: c.to_string(), description: d.to_string(), ..Default::default() });
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_has_a_unit_and_a_definition() {
        for (name, unit, subject, def) in METRICS {
            assert!(!unit.is_empty() && !subject.is_empty() && def.len() > 20, "{name}");
            assert!(COLUMNS[1].1.contains(name), "metric_name's description lists {name}");
        }
        let n = node("p");
        assert_eq!((n.schema.as_str(), n.alias.as_str()), TABLE);
        assert_eq!(n.columns.len(), arrow_schema().fields().len());
    }
}
