//! Ingestion state, as Delta tables in the warehouse's `dp_meta` schema (so
//! `dp sql`, docs and dashboards read them like any table):
//!
//! - `dp_meta.ingestion_log`: one row per source per run (`success` or
//!   `failed`), with rows, bytes, checksum, bronze object key, watermark
//!   range, schema version and error.
//! - `dp_meta.watermarks`: the current watermark per source.
//! - `dp_meta.schema_history`: one row per detected schema version.
//!
//! The log is the record of truth: the stored watermark of a source is the
//! `watermark_to` of its latest successful run, and `dp_meta.watermarks` is
//! rewritten from it. A bronze file carries its run's bookkeeping in its
//! footer, so a file published by a run killed before it logged is logged
//! (`recovered`) by the next run: the watermark moves exactly when a file
//! becomes visible.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use deltalake::DeltaTable;
use deltalake::protocol::SaveMode;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};

use crate::storage::Warehouse;

pub const SCHEMA: &str = "dp_meta";

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct LogRow {
    pub run_id: String,
    pub source_name: String,
    pub mode: String,
    pub started_at: String,
    pub finished_at: String,
    /// `success` or `failed`.
    pub status: String,
    pub row_count: Option<i64>,
    pub bytes: Option<i64>,
    /// sha256 (hex) of the landing file (files) or of the bronze file (PostgreSQL).
    pub file_checksum: Option<String>,
    /// The bronze file, as the source's location names it.
    pub object_key: Option<String>,
    pub watermark_from: Option<String>,
    pub watermark_to: Option<String>,
    pub schema_version: Option<i64>,
    pub error: Option<String>,
    /// Files: the landing file (path or URL) and its size.
    pub source_file: Option<String>,
    pub source_size: Option<i64>,
    /// Rows skipped under `on_error: skip`, and the first bad lines.
    pub skipped_rows: Option<i64>,
    pub bad_lines: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct WatermarkRow {
    pub source_name: String,
    pub watermark_column: String,
    pub watermark_value: Option<String>,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct SchemaRow {
    pub source_name: String,
    pub version: i64,
    pub detected_at: String,
    /// `[{"name": ..., "type": ..., "nullable": ...}]`.
    pub columns: String,
    pub change_summary: String,
}

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn log_schema() -> SchemaRef {
    let s = |n: &str| Field::new(n, DataType::Utf8, true);
    let i = |n: &str| Field::new(n, DataType::Int64, true);
    Arc::new(Schema::new(vec![
        Field::new("run_id", DataType::Utf8, false),
        Field::new("source_name", DataType::Utf8, false),
        s("mode"),
        Field::new("started_at", ts(), true),
        Field::new("finished_at", ts(), true),
        Field::new("status", DataType::Utf8, false),
        i("row_count"),
        i("bytes"),
        s("file_checksum"),
        s("object_key"),
        s("watermark_from"),
        s("watermark_to"),
        i("schema_version"),
        s("error"),
        s("source_file"),
        i("source_size"),
        i("skipped_rows"),
        s("bad_lines"),
    ]))
}

fn watermark_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("source_name", DataType::Utf8, false),
        Field::new("watermark_column", DataType::Utf8, true),
        Field::new("watermark_value", DataType::Utf8, true),
        Field::new("updated_at", ts(), true),
    ]))
}

fn schema_history_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("source_name", DataType::Utf8, false),
        Field::new("version", DataType::Int64, false),
        Field::new("detected_at", ts(), true),
        Field::new("columns", DataType::Utf8, true),
        Field::new("change_summary", DataType::Utf8, true),
    ]))
}

/// A logged timestamp as microseconds (the table's text form varies in its fraction digits).
fn micros(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s).map(|t| t.timestamp_micros()).unwrap_or(i64::MIN)
}

/// Now, as the log writes it.
pub fn now() -> String {
    crate::compile::manifest::now_stamp()
}

#[derive(Default)]
struct Inner {
    log: Vec<LogRow>,
    schemas: Vec<SchemaRow>,
    watermarks: indexmap::IndexMap<String, WatermarkRow>,
}

/// The state tables, read once per run; writes are serialized (one Delta
/// commit at a time per table).
pub struct State {
    wh: Warehouse,
    inner: Mutex<Inner>,
    commit: tokio::sync::Mutex<()>,
}

impl State {
    pub async fn load(wh: Warehouse) -> anyhow::Result<State> {
        // three tables, three independent Delta log reads: at once
        let (log, schemas, wms): (_, _, Vec<WatermarkRow>) =
            tokio::try_join!(read_rows(&wh, "ingestion_log"), read_rows(&wh, "schema_history"), read_rows(&wh, "watermarks"))?;
        let watermarks = wms.into_iter().map(|w| (w.source_name.clone(), w)).collect();
        Ok(State { wh, inner: Mutex::new(Inner { log, schemas, watermarks }), commit: tokio::sync::Mutex::new(()) })
    }

    /// The latest successful run of a source that recorded a watermark.
    pub fn watermark(&self, source: &str) -> Option<String> {
        let i = self.inner.lock().expect("state");
        i.log.iter().filter(|r| r.source_name == source && r.status == "success").max_by_key(|r| micros(&r.finished_at)).and_then(|r| r.watermark_to.clone())
    }

    /// Whether a landing file (name, size, sha256) already landed, and its
    /// bronze file is still there (`in_bronze`: the source's bronze keys).
    pub fn landed(&self, source: &str, file: &str, size: i64, sha256: &str, in_bronze: &std::collections::HashSet<String>) -> bool {
        let i = self.inner.lock().expect("state");
        i.log.iter().any(|r| {
            r.source_name == source
                && r.status == "success"
                && r.source_file.as_deref() == Some(file)
                && r.source_size == Some(size)
                && r.file_checksum.as_deref() == Some(sha256)
                && r.object_key.as_ref().is_some_and(|k| in_bronze.contains(k))
        })
    }

    /// Whether the log holds a landed file of this name and size (whose
    /// bronze file is still there): only then is its checksum needed before
    /// it is read.
    pub fn seen(&self, source: &str, file: &str, size: i64, in_bronze: &std::collections::HashSet<String>) -> bool {
        let i = self.inner.lock().expect("state");
        i.log.iter().any(|r| {
            r.source_name == source
                && r.status == "success"
                && r.source_file.as_deref() == Some(file)
                && r.source_size == Some(size)
                && r.object_key.as_ref().is_some_and(|k| in_bronze.contains(k))
        })
    }

    /// Bronze keys the log knows for a source.
    pub fn logged_keys(&self, source: &str) -> std::collections::HashSet<String> {
        let i = self.inner.lock().expect("state");
        i.log.iter().filter(|r| r.source_name == source && r.status == "success").filter_map(|r| r.object_key.clone()).collect()
    }

    pub fn latest_schema(&self, source: &str) -> Option<SchemaRow> {
        let i = self.inner.lock().expect("state");
        i.schemas.iter().filter(|r| r.source_name == source).max_by_key(|r| r.version).cloned()
    }

    /// Appends rows to the log (one commit).
    pub async fn log(&self, rows: Vec<LogRow>) -> anyhow::Result<()> {
        let _g = self.commit.lock().await;
        append(&self.wh, "ingestion_log", log_schema(), &rows, SaveMode::Append).await?;
        self.inner.lock().expect("state").log.extend(rows);
        Ok(())
    }

    pub async fn add_schema(&self, row: SchemaRow) -> anyhow::Result<()> {
        let _g = self.commit.lock().await;
        append(&self.wh, "schema_history", schema_history_schema(), std::slice::from_ref(&row), SaveMode::Append).await?;
        self.inner.lock().expect("state").schemas.push(row);
        Ok(())
    }

    /// Rewrites `dp_meta.watermarks` with a source's new value (one commit).
    pub async fn set_watermark(&self, row: WatermarkRow) -> anyhow::Result<()> {
        let _g = self.commit.lock().await;
        let rows: Vec<WatermarkRow> = {
            let mut i = self.inner.lock().expect("state");
            i.watermarks.insert(row.source_name.clone(), row);
            i.watermarks.values().cloned().collect()
        };
        append(&self.wh, "watermarks", watermark_schema(), &rows, SaveMode::Overwrite).await
    }
}

async fn open(wh: &Warehouse, table: &str) -> anyhow::Result<Option<DeltaTable>> {
    if wh.kind(SCHEMA, table).await? != Some(crate::storage::RelKind::Table) {
        return Ok(None);
    }
    let loc = wh.table(SCHEMA, table);
    Ok(Some(deltalake::open_table(loc.url.clone()).await.map_err(|e| anyhow::anyhow!("opening {SCHEMA}.{table} ({loc}): {e}"))?))
}

async fn read_rows<T: serde::de::DeserializeOwned>(wh: &Warehouse, table: &str) -> anyhow::Result<Vec<T>> {
    let Some(t) = open(wh, table).await? else { return Ok(vec![]) };
    let (_, mut stream) = t.scan_table().await.map_err(|e| anyhow::anyhow!("reading {SCHEMA}.{table}: {e}"))?;
    let mut out = vec![];
    while let Some(b) = stream.next().await {
        let b = b?;
        let mut w = datafusion::arrow::json::ArrayWriter::new(Vec::new());
        w.write_batches(&[&b])?;
        w.finish()?;
        let buf = w.into_inner();
        if buf.is_empty() {
            continue;
        }
        let rows: Vec<T> = serde_json::from_slice(&buf).map_err(|e| anyhow::anyhow!("reading {SCHEMA}.{table}: {e}"))?;
        out.extend(rows);
    }
    Ok(out)
}

fn to_batch<T: Serialize>(schema: SchemaRef, rows: &[T]) -> anyhow::Result<RecordBatch> {
    let mut d = datafusion::arrow::json::ReaderBuilder::new(schema.clone()).build_decoder()?;
    d.serialize(rows)?;
    Ok(d.flush()?.unwrap_or_else(|| RecordBatch::new_empty(schema)))
}

async fn append<T: Serialize>(wh: &Warehouse, table: &str, schema: SchemaRef, rows: &[T], mode: SaveMode) -> anyhow::Result<()> {
    let loc = wh.table(SCHEMA, table);
    wh.prepare_table(&loc).await?;
    let batch = to_batch(schema, rows)?;
    let t = DeltaTable::try_from_url(loc.url.clone()).await.map_err(|e| anyhow::anyhow!("opening {SCHEMA}.{table} ({loc}): {e}"))?;
    let t = t.write(vec![batch]).with_save_mode(mode).with_table_name(table).await.map_err(|e| crate::materialize::delta::write_error(&loc, e))?;
    // every file landed is a commit: without checkpoints each open replays them all
    crate::materialize::delta::checkpoint_if_due(&t).await;
    Ok(())
}
