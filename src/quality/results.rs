//! Where a checkpoint run's results go:
//!
//! - `dp_meta.checkpoint_runs` (one row per run) and
//!   `dp_meta.expectation_results` (one row per expectation), Delta tables
//!   appended to on every run, queryable with `dp sql`;
//! - `dp_failures.<checkpoint>__<table>__<expectation>__<columns>__<hash>`:
//!   the failing rows of each failing expectation (capped at the
//!   checkpoint's `failed_rows`, with its key columns and a `dp_run_id`
//!   column), replaced on every run;
//! - `target/validations/<checkpoint>/<time>_<run_id>.json`: Great
//!   Expectations' validation-result shape (`success`, `statistics`,
//!   `results[].result.unexpected_count`, `partial_unexpected_list`, ...).

use datafusion::arrow::array::{ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::prelude::lit;
use deltalake::DeltaTable;
use deltalake::protocol::SaveMode;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::run::{CheckpointRun, ExpectationResult};
use crate::engine::Engine;

pub const META_SCHEMA: &str = "dp_meta";
pub const FAILURES_SCHEMA: &str = "dp_failures";

/// The failing-rows table of an expectation (stable across runs).
pub fn failures_table(checkpoint: &str, r: &ExpectationResult) -> String {
    let table = r.relation.rsplit('.').next().unwrap_or(&r.relation).trim_matches('"');
    let short = r.expectation.trim_start_matches("expect_").trim_start_matches("column_");
    let cols = super::expectations::columns(&r.kwargs).join("_");
    let hash = format!("{:x}", md5::compute(format!("{}|{}|{}", r.relation, r.expectation, Value::Object(r.kwargs.clone()))));
    let raw = format!("{checkpoint}__{table}__{short}__{cols}");
    let mut name: String = raw.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c.to_ascii_lowercase() } else { '_' }).collect();
    name.truncate(100);
    format!("{name}__{}", &hash[..6])
}

async fn write(engine: &Engine, schema: &str, table: &str, plan: datafusion::logical_expr::LogicalPlan, mode: SaveMode) -> anyhow::Result<()> {
    let loc = engine.warehouse.table(schema, table);
    engine.warehouse.prepare_table(&loc).await?;
    let plan = crate::materialize::delta::delta_compatible(engine, plan)?;
    let t = DeltaTable::try_from_url(loc.url.clone()).await.map_err(|e| anyhow::anyhow!("opening Delta table {loc}: {e}"))?;
    let mut b = t.write(vec![]).with_input_plan(plan).with_session_state(Arc::new(engine.ctx.state())).with_save_mode(mode).with_table_name(table.to_string());
    if mode == SaveMode::Overwrite {
        b = b.with_schema_mode(deltalake::operations::write::SchemaMode::Overwrite);
    }
    let t = b.await.map_err(|e| crate::materialize::delta::write_error(&loc, e))?;
    crate::materialize::delta::checkpoint_if_due(&t).await;
    engine.catalog.invalidate(schema, table);
    Ok(())
}

async fn append(engine: &Engine, table: &str, batch: RecordBatch) -> anyhow::Result<()> {
    let df = engine.ctx.read_batch(batch)?;
    write(engine, META_SCHEMA, table, df.into_unoptimized_plan(), SaveMode::Append).await
}

fn ts(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_micros()
}

fn utc() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// Stores each failing expectation's rows in `dp_failures` and sets the
/// result's `failed_rows_table`. The tables are written concurrently
/// (each its own Delta table and commit); the first error is returned,
/// after every write has finished, and only the tables written are named.
pub async fn store_failures(engine: &Engine, run: &mut CheckpointRun) -> anyhow::Result<()> {
    use futures::StreamExt;
    let checkpoint = run.checkpoint.clone();
    let run_id = run.run_id.clone();
    let mut writes: Vec<futures::future::BoxFuture<'_, anyhow::Result<()>>> = vec![];
    for r in run.results.iter_mut().filter(|r| !r.failed_rows.is_empty() && !r.success) {
        let name = failures_table(&checkpoint, r);
        let run_id = run_id.clone();
        writes.push(Box::pin(async move {
            let df = engine.ctx.read_batches(r.failed_rows.clone())?.with_column("dp_run_id", lit(run_id))?;
            write(engine, FAILURES_SCHEMA, &name, df.into_unoptimized_plan(), SaveMode::Overwrite).await?;
            r.failed_rows_table = Some(format!("{FAILURES_SCHEMA}.{name}"));
            anyhow::Ok(())
        }));
    }
    let done: Vec<anyhow::Result<()>> = futures::stream::iter(writes).buffer_unordered(FAILURE_WRITES).collect().await;
    done.into_iter().collect()
}

/// How many `dp_failures` tables are written at once.
const FAILURE_WRITES: usize = 8;

/// Appends the run to `dp_meta.checkpoint_runs` and its results to
/// `dp_meta.expectation_results`.
pub async fn store(engine: &Engine, run: &CheckpointRun) -> anyhow::Result<()> {
    let started = ts(run.started_at);
    let runs = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("run_id", DataType::Utf8, false),
            Field::new("checkpoint", DataType::Utf8, false),
            Field::new("file", DataType::Utf8, false),
            Field::new("trigger", DataType::Utf8, false),
            Field::new("success", DataType::Boolean, false),
            Field::new("evaluated", DataType::Int64, false),
            Field::new("passed", DataType::Int64, false),
            Field::new("failed_error", DataType::Int64, false),
            Field::new("failed_warn", DataType::Int64, false),
            Field::new("started_at", utc(), false),
            Field::new("duration", DataType::Float64, false),
        ])),
        vec![
            Arc::new(StringArray::from(vec![run.run_id.clone()])) as ArrayRef,
            Arc::new(StringArray::from(vec![run.checkpoint.clone()])),
            Arc::new(StringArray::from(vec![run.file.clone()])),
            Arc::new(StringArray::from(vec![run.trigger.clone()])),
            Arc::new(BooleanArray::from(vec![run.success()])),
            Arc::new(Int64Array::from(vec![run.results.len() as i64])),
            Arc::new(Int64Array::from(vec![run.passed() as i64])),
            Arc::new(Int64Array::from(vec![run.failed(super::Severity::Error) as i64])),
            Arc::new(Int64Array::from(vec![run.failed(super::Severity::Warn) as i64])),
            Arc::new(TimestampMicrosecondArray::from(vec![started]).with_timezone("UTC")),
            Arc::new(Float64Array::from(vec![run.duration.as_secs_f64()])),
        ],
    )?;
    if run.results.is_empty() {
        return append(engine, "checkpoint_runs", runs).await;
    }
    let rs = &run.results;
    let s = |f: &dyn Fn(&ExpectationResult) -> String| Arc::new(StringArray::from(rs.iter().map(f).collect::<Vec<_>>())) as ArrayRef;
    let so = |f: &dyn Fn(&ExpectationResult) -> Option<String>| Arc::new(StringArray::from(rs.iter().map(f).collect::<Vec<_>>())) as ArrayRef;
    let i = |f: &dyn Fn(&ExpectationResult) -> Option<i64>| Arc::new(Int64Array::from(rs.iter().map(f).collect::<Vec<_>>())) as ArrayRef;
    let results = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("run_id", DataType::Utf8, false),
            Field::new("checkpoint", DataType::Utf8, false),
            Field::new("relation", DataType::Utf8, false),
            Field::new("expectation", DataType::Utf8, false),
            Field::new("kwargs", DataType::Utf8, false),
            Field::new("success", DataType::Boolean, false),
            Field::new("element_count", DataType::Int64, true),
            Field::new("unexpected_count", DataType::Int64, true),
            Field::new("unexpected_percent", DataType::Float64, true),
            Field::new("observed_value", DataType::Utf8, true),
            Field::new("severity", DataType::Utf8, false),
            Field::new("started_at", utc(), false),
            Field::new("duration", DataType::Float64, false),
            Field::new("failed_rows_table", DataType::Utf8, true),
            Field::new("exception", DataType::Utf8, true),
        ])),
        vec![
            s(&|_| run.run_id.clone()),
            s(&|_| run.checkpoint.clone()),
            s(&|r| r.relation.clone()),
            s(&|r| r.expectation.clone()),
            s(&|r| serde_json::to_string(&r.kwargs).unwrap_or_default()),
            Arc::new(BooleanArray::from(rs.iter().map(|r| r.success).collect::<Vec<_>>())),
            i(&|r| r.element_count),
            i(&|r| r.unexpected_count),
            Arc::new(Float64Array::from(rs.iter().map(|r| r.unexpected_percent).collect::<Vec<_>>())),
            so(&|r| if r.observed_value.is_null() { None } else { Some(r.observed_value.to_string()) }),
            s(&|r| r.severity.as_str().to_string()),
            Arc::new(TimestampMicrosecondArray::from(vec![started; rs.len()]).with_timezone("UTC")),
            Arc::new(Float64Array::from(rs.iter().map(|r| r.duration.as_secs_f64()).collect::<Vec<_>>())),
            so(&|r| r.failed_rows_table.clone()),
            so(&|r| r.exception.clone()),
        ],
    )?;
    // two tables, two independent Delta commits: at once
    tokio::try_join!(append(engine, "checkpoint_runs", runs), append(engine, "expectation_results", results))?;
    Ok(())
}

/// One expectation's result in GX's shape, serialized from the result's
/// own fields (no intermediate values: a run writes 10,000 of them).
struct GxResult<'a>(&'a ExpectationResult);

/// A map's entries, with `extra`'s keys set (in place when the map has
/// them, else appended in order): what inserting them into a copy gives.
struct Extended<'a> {
    base: &'a serde_json::Map<String, Value>,
    extra: &'a [(&'a str, Value)],
}

impl serde::Serialize for Extended<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        for (k, v) in self.base {
            match self.extra.iter().find(|(x, _)| x == k) {
                Some((_, e)) => m.serialize_entry(k, e)?,
                None => m.serialize_entry(k, v)?,
            }
        }
        for (k, v) in self.extra {
            if !self.base.contains_key(*k) {
                m.serialize_entry(k, v)?;
            }
        }
        m.end()
    }
}

struct GxStats<'a>(&'a ExpectationResult);

impl serde::Serialize for GxStats<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let r = self.0;
        let mut m = s.serialize_map(None)?;
        if let Some(n) = r.element_count {
            m.serialize_entry("element_count", &n)?;
        }
        if let Some(u) = r.unexpected_count {
            if let Some(missing) = r.missing_count {
                m.serialize_entry("missing_count", &missing)?;
                m.serialize_entry("missing_percent", &r.element_count.filter(|n| *n > 0).map(|n| missing as f64 * 100.0 / n as f64))?;
            }
            m.serialize_entry("unexpected_count", &u)?;
            m.serialize_entry("unexpected_percent", &r.unexpected_percent)?;
            m.serialize_entry("unexpected_percent_total", &r.element_count.filter(|n| *n > 0).map(|n| u as f64 * 100.0 / n as f64))?;
            m.serialize_entry("unexpected_percent_nonmissing", &r.unexpected_percent)?;
            m.serialize_entry("partial_unexpected_list", &r.partial_unexpected_list)?;
        }
        if !r.observed_value.is_null() || r.unexpected_count.is_none() {
            m.serialize_entry("observed_value", &r.observed_value)?;
        }
        m.end()
    }
}

impl serde::Serialize for GxResult<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let r = self.0;
        let kwargs_extra = [("batch_id", json!(r.relation))];
        let mut meta_extra = vec![("severity", json!(r.severity.as_str())), ("source", json!(format!("{}:{}", r.file, r.line)))];
        if let Some(t) = &r.failed_rows_table {
            meta_extra.push(("failed_rows_table", json!(t)));
        }
        struct Config<'a>(&'a str, Extended<'a>, Extended<'a>);
        impl serde::Serialize for Config<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(3))?;
                m.serialize_entry("type", self.0)?;
                m.serialize_entry("kwargs", &self.1)?;
                m.serialize_entry("meta", &self.2)?;
                m.end()
            }
        }
        struct Exception<'a>(&'a Option<String>);
        impl serde::Serialize for Exception<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(3))?;
                m.serialize_entry("raised_exception", &self.0.is_some())?;
                m.serialize_entry("exception_message", self.0)?;
                m.serialize_entry("exception_traceback", &())?;
                m.end()
            }
        }
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry("success", &r.success)?;
        m.serialize_entry(
            "expectation_config",
            &Config(&r.expectation, Extended { base: &r.kwargs, extra: &kwargs_extra }, Extended { base: &r.meta, extra: &meta_extra }),
        )?;
        m.serialize_entry("result", &GxStats(r))?;
        m.serialize_entry("exception_info", &Exception(&r.exception))?;
        m.end()
    }
}

/// The GX-shaped validation result of a run (`success`, `statistics`,
/// `results`, `suite_name`, `meta`), serialized one result at a time (a run
/// of 10,000 expectations never holds the whole document as a value).
struct Validation<'a>(&'a CheckpointRun);

impl serde::Serialize for Validation<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let run = self.0;
        let n = run.results.len();
        let ok = run.passed();
        let mut m = s.serialize_map(Some(5))?;
        m.serialize_entry("success", &run.success())?;
        m.serialize_entry(
            "statistics",
            &json!({
                "evaluated_expectations": n,
                "successful_expectations": ok,
                "unsuccessful_expectations": n - ok,
                "success_percent": if n > 0 { Some(ok as f64 * 100.0 / n as f64) } else { None },
            }),
        )?;
        m.serialize_entry("results", &Results(&run.results))?;
        m.serialize_entry("suite_name", &run.checkpoint)?;
        m.serialize_entry(
            "meta",
            &json!({
                "checkpoint_name": run.checkpoint,
                "checkpoint_file": run.file,
                "run_id": {"run_name": run.run_id, "run_time": run.started_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)},
                "validation_time": run.started_at.format("%Y%m%dT%H%M%S%.6fZ").to_string(),
                "duration": run.duration.as_secs_f64(),
                "trigger": run.trigger,
                "great_expectations_version": "1.x (dp)",
            }),
        )?;
        m.end()
    }
}

struct Results<'a>(&'a [ExpectationResult]);

impl serde::Serialize for Results<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(GxResult))
    }
}

/// Writes the validation JSON under `target/validations/<checkpoint>/`.
pub fn write_json(target_dir: &Path, run: &CheckpointRun) -> anyhow::Result<PathBuf> {
    let dir = target_dir.join("validations").join(&run.checkpoint);
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{}_{}.json", run.started_at.format("%Y%m%dT%H%M%S"), run.run_id));
    let tmp = dir.join(format!(".{}.tmp", run.run_id));
    let mut w = std::io::BufWriter::with_capacity(1 << 16, std::fs::File::create(&tmp)?);
    serde_json::to_writer_pretty(&mut w, &Validation(run))?;
    std::io::Write::flush(&mut w)?;
    drop(w);
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The document as values: what `GxResult` must write, key for key and in order.
    fn as_values(r: &ExpectationResult) -> Value {
        let mut result = serde_json::Map::new();
        if let Some(n) = r.element_count {
            result.insert("element_count".into(), json!(n));
        }
        if let Some(u) = r.unexpected_count {
            let missing = r.missing_count.unwrap_or(0);
            if r.missing_count.is_some() {
                result.insert("missing_count".into(), json!(missing));
                result.insert("missing_percent".into(), json!(r.element_count.filter(|n| *n > 0).map(|n| missing as f64 * 100.0 / n as f64)));
            }
            result.insert("unexpected_count".into(), json!(u));
            result.insert("unexpected_percent".into(), json!(r.unexpected_percent));
            result.insert("unexpected_percent_total".into(), json!(r.element_count.filter(|n| *n > 0).map(|n| u as f64 * 100.0 / n as f64)));
            result.insert("unexpected_percent_nonmissing".into(), json!(r.unexpected_percent));
            result.insert("partial_unexpected_list".into(), json!(r.partial_unexpected_list));
        }
        if !r.observed_value.is_null() || r.unexpected_count.is_none() {
            result.insert("observed_value".into(), r.observed_value.clone());
        }
        let mut kwargs = r.kwargs.clone();
        kwargs.insert("batch_id".into(), json!(r.relation));
        let mut meta = r.meta.clone();
        meta.insert("severity".into(), json!(r.severity.as_str()));
        meta.insert("source".into(), json!(format!("{}:{}", r.file, r.line)));
        if let Some(t) = &r.failed_rows_table {
            meta.insert("failed_rows_table".into(), json!(t));
        }
        json!({
            "success": r.success,
            "expectation_config": {"type": r.expectation, "kwargs": kwargs, "meta": meta},
            "result": result,
            "exception_info": {"raised_exception": r.exception.is_some(), "exception_message": r.exception, "exception_traceback": null},
        })
    }

    #[test]
    fn results_stream_as_the_documents_they_stand_for() {
        let base = ExpectationResult {
            relation: "raw.orders".into(),
            relation_id: "source.p.raw.orders".into(),
            expectation: "expect_column_values_to_be_between".into(),
            label: "expect_column_values_to_be_between(total)".into(),
            kwargs: Default::default(),
            meta: Default::default(),
            severity: crate::quality::Severity::Error,
            success: false,
            element_count: None,
            missing_count: None,
            unexpected_count: None,
            unexpected_percent: None,
            observed_value: Value::Null,
            partial_unexpected_list: vec![],
            exception: None,
            file: "checkpoints/c.yml".into(),
            line: 12,
            duration: std::time::Duration::ZERO,
            failed_rows_table: None,
            failed_rows: vec![],
        };
        let mut failing = base.clone();
        failing.kwargs = serde_json::from_str(r#"{"column": "total", "batch_id": "kept in place", "min_value": 0}"#).unwrap();
        failing.meta = serde_json::from_str(r#"{"notes": "n", "severity": "old"}"#).unwrap();
        failing.element_count = Some(10);
        failing.unexpected_count = Some(3);
        failing.missing_count = Some(1);
        failing.unexpected_percent = Some(33.3);
        failing.partial_unexpected_list = vec![json!(-1), json!("x")];
        failing.failed_rows_table = Some("dp_failures.t".into());
        let mut observed = base.clone();
        observed.success = true;
        observed.observed_value = json!(4.5);
        let mut raised = base.clone();
        raised.exception = Some("boom".into());
        for r in [&base, &failing, &observed, &raised] {
            assert_eq!(serde_json::to_string_pretty(&GxResult(r)).unwrap(), serde_json::to_string_pretty(&as_values(r)).unwrap());
        }
    }
}
