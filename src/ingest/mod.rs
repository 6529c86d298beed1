//! `dp ingest`: files and PostgreSQL tables into bronze Parquet, declared
//! next to the dbt source that reads them (`spec`).
//!
//! - `spec`: the `ingest:` block and its validation (file:line errors).
//! - `bronze`: bronze paths from the source's location, atomic publishing.
//! - `files`: CSV / JSON / Parquet file drops read into Arrow;
//!   `stream`: large ones streamed in constant memory.
//! - `postgres`: binary COPY decoded into Arrow, full and incremental.
//! - `schema`: detected schemas and their differences.
//! - `state`: `dp_meta.ingestion_log`, `dp_meta.watermarks`,
//!   `dp_meta.schema_history` (Delta tables in the warehouse).
//!
//! Tables run in parallel up to `threads`; a failing table is logged
//! (`failed`, with its error) and the others still land. The library never
//! prints: [`run`] calls back with each table's [`Outcome`].

pub mod bronze;
pub mod files;
pub mod postgres;
pub mod schema;
pub mod spec;
pub mod state;
pub mod stream;

use anyhow::anyhow;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{PostgresConfig, Settings};
use crate::postgres::{PgPool, PgSettings};
use bronze::Bronze;
use spec::{IngestSpec, Mode, Origin, SchemaPolicy};
use state::{LogRow, SchemaRow, State, WatermarkRow};

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Incremental sources extract everything again (the watermark restarts).
    pub full_refresh: bool,
    pub threads: usize,
}

/// One source table's result.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub source_name: String,
    /// `full`, `incremental` or `files`.
    pub mode: String,
    pub ok: bool,
    pub rows: u64,
    pub bytes: u64,
    /// Files: new files landed, and files already landed before.
    pub files: usize,
    pub already: usize,
    pub skipped_rows: u64,
    pub watermark_from: Option<String>,
    pub watermark_to: Option<String>,
    /// The bronze objects written.
    pub objects: Vec<String>,
    /// `v2: added discount Float64`, when the schema changed.
    pub schema_change: Option<String>,
    /// Bronze files of interrupted runs logged by this one.
    pub recovered: usize,
    pub error: Option<String>,
    pub elapsed: Duration,
}

struct Ctx {
    settings: Settings,
    state: State,
    run_id: String,
    date: String,
    opts: Options,
    pools: tokio::sync::Mutex<HashMap<String, PgPool>>,
}

/// Ingests every spec (in parallel up to `threads`), calling `on_done` as
/// each finishes; returns the outcomes in completion order. An error is
/// returned only when the state tables cannot be read.
pub async fn run(settings: &Settings, specs: Vec<IngestSpec>, opts: Options, on_done: &(dyn Fn(&Outcome) + Sync)) -> anyhow::Result<Vec<Outcome>> {
    let wh = crate::storage::Warehouse::open(settings)?;
    let state = State::load(wh).await?;
    let run_id = uuid::Uuid::new_v4().to_string();
    let ctx = Arc::new(Ctx {
        settings: settings.clone(),
        state,
        run_id,
        date: chrono::Utc::now().format("%Y-%m-%d").to_string(),
        opts: opts.clone(),
        pools: Default::default(),
    });
    let sem = Arc::new(tokio::sync::Semaphore::new(opts.threads.max(1)));
    let mut tasks = futures::stream::FuturesUnordered::new();
    for s in specs {
        let ctx = ctx.clone();
        let sem = sem.clone();
        let name = s.source_name.clone();
        let handle = tokio::spawn(async move {
            let _permit = sem.acquire_owned().await.expect("semaphore open");
            ingest_one(&ctx, &s).await
        });
        tasks.push(async move { (name, handle.await) });
    }
    let mut out = vec![];
    use futures::StreamExt;
    while let Some((name, r)) = tasks.next().await {
        let o = r.unwrap_or_else(|e| Outcome { source_name: name, error: Some(format!("the ingestion task stopped: {e}")), ..Default::default() });
        on_done(&o);
        out.push(o);
    }
    Ok(out)
}

async fn ingest_one(ctx: &Ctx, spec: &IngestSpec) -> Outcome {
    let t = Instant::now();
    let started = state::now();
    let mode = match (&spec.from, spec.mode) {
        (Origin::Files(_), _) => "files",
        (_, Mode::Incremental) if !ctx.opts.full_refresh => "incremental",
        _ => "full",
    };
    let mut o = Outcome { source_name: spec.source_name.clone(), mode: mode.into(), ..Default::default() };
    let r: anyhow::Result<()> = async {
        let bronze = Bronze::open(&ctx.settings, &spec.location)?;
        bronze.sweep_staged();
        let in_bronze;
        (o.recovered, in_bronze) = recover(ctx, spec, &bronze).await?;
        match &spec.from {
            Origin::Postgres(p) => ingest_postgres(ctx, spec, p, &bronze, &started, &mut o).await,
            Origin::Files(f) => ingest_files(ctx, spec, f, &bronze, &started, &mut o, &in_bronze).await,
        }
    }
    .await;
    o.elapsed = t.elapsed();
    if let Err(e) = r {
        let msg = format!("source {}: {e:#}", spec.source_name);
        let row = LogRow {
            run_id: ctx.run_id.clone(),
            source_name: spec.source_name.clone(),
            mode: mode.into(),
            started_at: started,
            finished_at: state::now(),
            status: "failed".into(),
            watermark_from: o.watermark_from.clone(),
            error: Some(msg.clone()),
            source_file: o.error.take(),
            ..Default::default()
        };
        o.error = Some(match ctx.state.log(vec![row]).await {
            Ok(()) => msg,
            Err(le) => format!("{msg}\n(the failure could not be logged either: {le:#})"),
        });
        o.ok = false;
    } else {
        o.ok = true;
    }
    o
}

/// Logs bronze files a killed run published but never logged (their footer
/// holds the run's bookkeeping); returns how many, and the keys of the
/// source's bronze files (a landing file whose bronze file was deleted lands
/// again).
async fn recover(ctx: &Ctx, spec: &IngestSpec, bronze: &Bronze) -> anyhow::Result<(usize, HashSet<String>)> {
    let known = ctx.state.logged_keys(&spec.source_name);
    let mut rows = vec![];
    let objects = bronze.list().await?;
    let in_bronze: HashSet<String> = objects.iter().map(|o| o.key.clone()).collect();
    for obj in objects {
        if known.contains(&obj.key) {
            continue;
        }
        let f = match bronze.footer(&obj).await {
            Ok(f) => f,
            Err(_) => continue,
        };
        if f.get("dp.ingest.source") != Some(&spec.source_name) {
            continue;
        }
        let g = |k: &str| f.get(&format!("dp.ingest.{k}")).cloned();
        let n = |k: &str| g(k).and_then(|v| v.parse::<i64>().ok());
        rows.push(LogRow {
            run_id: g("run_id").unwrap_or_default(),
            source_name: spec.source_name.clone(),
            mode: g("mode").unwrap_or_default(),
            started_at: state::now(),
            finished_at: state::now(),
            status: "success".into(),
            row_count: n("rows"),
            bytes: Some(obj.size as i64),
            file_checksum: g("source_sha256"),
            object_key: Some(obj.key.clone()),
            watermark_from: g("watermark_from"),
            watermark_to: g("watermark_to"),
            schema_version: n("schema_version"),
            error: Some("recovered: published by a run that stopped before logging it".into()),
            source_file: g("source_file"),
            source_size: n("source_size"),
            ..Default::default()
        });
    }
    let count = rows.len();
    if count > 0 {
        ctx.state.log(rows).await?;
    }
    Ok((count, in_bronze))
}

/// Records the extract's schema: the current version, or a new one (an
/// error under `freeze`). Returns the version and the change, if any.
async fn check_schema(state: &State, spec: &IngestSpec, schema: &Schema) -> anyhow::Result<(i64, Option<String>)> {
    let cols = schema::columns(schema);
    let prev = state.latest_schema(&spec.source_name);
    let (version, summary) = match &prev {
        None => (1, "initial schema".to_string()),
        Some(p) => {
            let d = schema::diff(&schema::from_json(&p.columns), &cols);
            if d.is_empty() {
                return Ok((p.version, None));
            }
            // Bronze files of one source are read together, and readers
            // cannot merge two types of one column: a retyped column is an
            // error under either policy.
            let retyped: Vec<&String> = d.iter().filter(|c| c.starts_with("type of ")).collect();
            if !retyped.is_empty() && spec.schema_policy == SchemaPolicy::Evolve {
                return Err(anyhow!(
                    "the schema changed incompatibly: {}; the source's bronze files would disagree on the column's type\n  hint: cast the column back to its old type (in a `query:`, or with column_types for files), or move the source's older bronze files away and ingest again",
                    retyped.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("; ")
                ));
            }
            if spec.schema_policy == SchemaPolicy::Freeze {
                return Err(anyhow!(
                    "the schema changed and schema_policy is freeze: {}\n  hint: change the source back, or set schema_policy: evolve to accept the change (version {} would be recorded)",
                    d.join("; "),
                    p.version + 1
                ));
            }
            (p.version + 1, d.join("; "))
        }
    };
    state
        .add_schema(SchemaRow {
            source_name: spec.source_name.clone(),
            version,
            detected_at: state::now(),
            columns: schema::to_json(&cols),
            change_summary: summary.clone(),
        })
        .await?;
    Ok((version, prev.map(|_| format!("v{version}: {summary}"))))
}

async fn pool_for(ctx: &Ctx, p: &spec::PgSpec) -> anyhow::Result<PgPool> {
    let mut cfg: PostgresConfig = ctx.settings.target.postgres.clone().unwrap_or_default();
    if let Some(c) = &p.connection {
        let base = serde_json::to_value(&cfg)?;
        let over = serde_json::to_value(c)?;
        let mut m = base.as_object().cloned().unwrap_or_default();
        for (k, v) in over.as_object().cloned().unwrap_or_default() {
            if !v.is_null() {
                m.insert(k, v);
            }
        }
        cfg = serde_json::from_value(serde_json::Value::Object(m))?;
    }
    let key = serde_json::to_string(&cfg)?;
    let mut pools = ctx.pools.lock().await;
    if let Some(p) = pools.get(&key) {
        return Ok(p.clone());
    }
    let pool = PgPool::new(PgSettings::resolve(&cfg)?, ctx.opts.threads.max(1))?;
    pools.insert(key, pool.clone());
    Ok(pool)
}

async fn ingest_postgres(ctx: &Ctx, spec: &IngestSpec, p: &spec::PgSpec, bronze: &Bronze, started: &str, o: &mut Outcome) -> anyhow::Result<()> {
    let pool = pool_for(ctx, p).await?;
    let incremental = o.mode == "incremental";
    let stored = if incremental { ctx.state.watermark(&spec.source_name) } else { None };
    o.watermark_from = stored.clone();
    let change = std::sync::Mutex::new(None);
    let mode = o.mode.clone();
    // Transient failures (connection lost, serialization failures) are
    // retried with back-off: nothing is visible until an extract completes.
    let ex = pool
        .retry(|| {
            let req = postgres::Request {
                source_name: &spec.source_name,
                spec: p,
                stored: stored.clone(),
                incremental,
                declared_incremental: spec.mode == Mode::Incremental,
                run_id: &ctx.run_id,
                date: &ctx.date,
                mode: &mode,
            };
            let change = &change;
            postgres::extract(&pool, bronze, req, move |schema: SchemaRef| async move {
                let (v, c) = check_schema(&ctx.state, spec, &schema).await?;
                if c.is_some() {
                    *change.lock().expect("schema change") = c;
                }
                Ok(v)
            })
        })
        .await
        .map_err(|e| anyhow!("{e:#}").context(format!("extracting from {}", pool.settings.describe())))?;
    o.schema_change = change.into_inner().expect("schema change");
    o.watermark_to = ex.watermark_to.clone();
    let mut row = LogRow {
        run_id: ctx.run_id.clone(),
        source_name: spec.source_name.clone(),
        mode: o.mode.clone(),
        started_at: started.to_string(),
        finished_at: state::now(),
        status: "success".into(),
        row_count: Some(0),
        bytes: Some(0),
        watermark_from: ex.watermark_from.clone(),
        watermark_to: ex.watermark_to.clone(),
        schema_version: ex.schema_version,
        ..Default::default()
    };
    if let Some(pb) = &ex.published {
        o.rows = pb.rows;
        o.bytes = pb.bytes;
        o.objects.push(pb.key.clone());
        row.row_count = Some(pb.rows as i64);
        row.bytes = Some(pb.bytes as i64);
        row.file_checksum = Some(pb.sha256.clone());
        row.object_key = Some(pb.key.clone());
    }
    ctx.state.log(vec![row]).await?;
    if let (Some(col), Some(to)) = (&p.watermark_column, &ex.watermark_to)
        && ex.published.is_some()
    {
        ctx.state
            .set_watermark(WatermarkRow {
                source_name: spec.source_name.clone(),
                watermark_column: col.clone(),
                watermark_value: Some(to.clone()),
                updated_at: state::now(),
            })
            .await?;
    }
    Ok(())
}

async fn ingest_files(
    ctx: &Ctx,
    spec: &IngestSpec,
    f: &spec::FilesSpec,
    bronze: &Bronze,
    started: &str,
    o: &mut Outcome,
    in_bronze: &HashSet<String>,
) -> anyhow::Result<()> {
    let landing = files::Landing::open(&ctx.settings, &f.path)?;
    for lf in landing.list().await? {
        // Parquet always streams (a small compressed file can hold many
        // rows); CSV and JSON above the threshold.
        if let Ok(format) = files::format_of(f, &lf.name)
            && (format == spec::FileFormat::Parquet || lf.size > stream::stream_threshold())
        {
            ingest_streamed(ctx, spec, f, bronze, started, o, (&landing, &lf, format), in_bronze).await?;
            continue;
        }
        let bytes = landing.read(&lf).await?;
        let sha = bronze::sha256_hex(&bytes);
        if ctx.state.landed(&spec.source_name, &lf.name, lf.size as i64, &sha, in_bronze) {
            o.already += 1;
            continue;
        }
        // Failures below name this file in the log row.
        o.error = Some(lf.name.clone());
        let (fs2, name) = (f.clone(), lf.name.clone());
        let parsed = tokio::task::spawn_blocking(move || files::parse(&fs2, &name, &bytes)).await?.map_err(|e| anyhow!("{e}"))?;
        let (schema, batches) = conform(ctx.state.latest_schema(&spec.source_name), parsed.schema.clone(), parsed.batches)?;
        let (version, mut w) = landing_writer(ctx, spec, bronze, &lf, Some(&sha), schema.clone(), o).await?;
        for b in &batches {
            w.write(b).await?;
        }
        let pb = w.finish().await?;
        let landed = Landed { started, file: &lf, sha, version, skipped: parsed.skipped, bad_lines: parsed.bad_lines };
        record_landed(ctx, spec, landed, pb, o).await?;
    }
    Ok(())
}

/// One large landing file, streamed in constant memory: typed from its
/// first rows (CSV, JSON) or its footer (Parquet), parsed batch by batch
/// into the bronze writer. A new local CSV or JSON file is read once,
/// hashed as it streams; a remote one is first copied to local disk, and a
/// file the log may already hold (same name and size) or a Parquet file is
/// hashed first.
#[allow(clippy::too_many_arguments)]
async fn ingest_streamed(
    ctx: &Ctx,
    spec: &IngestSpec,
    f: &spec::FilesSpec,
    bronze: &Bronze,
    started: &str,
    o: &mut Outcome,
    (landing, lf, format): (&files::Landing, &files::LandingFile, spec::FileFormat),
    in_bronze: &HashSet<String>,
) -> anyhow::Result<()> {
    use spec::FileFormat;
    let in_place = landing.local_path(lf).filter(|_| format != FileFormat::Parquet && !ctx.state.seen(&spec.source_name, &lf.name, lf.size as i64, in_bronze));
    let mut copy = match in_place {
        Some(path) => stream::LocalCopy::teed(path, &lf.name).map_err(|e| anyhow!("{e}"))?,
        None => {
            let copy = stream::local_copy(landing, lf).await?;
            if ctx.state.landed(&spec.source_name, &lf.name, lf.size as i64, &copy.sha256, in_bronze) {
                o.already += 1;
                return Ok(());
            }
            copy
        }
    };
    o.error = Some(lf.name.clone());
    loop {
        let (fs2, name) = (f.clone(), lf.name.clone());
        let (schema, c) = tokio::task::spawn_blocking(move || {
            let s = match format {
                FileFormat::Csv => stream::csv_prefix_schema(&fs2, &name, &copy),
                FileFormat::Json => stream::json_prefix_schema(&fs2, &name, &copy),
                FileFormat::Parquet => stream::parquet_schema(&name, &copy),
            };
            (s, copy)
        })
        .await?;
        copy = c;
        let schema = schema.map_err(|e| anyhow!("{e}"))?;
        // Inferred types keep the source's earlier types where they convert;
        // Parquet's own only where they widen losslessly (Int32 → Int64, ...).
        let prev = ctx.state.latest_schema(&spec.source_name);
        let schema = if format == FileFormat::Parquet { widen_schema(prev, schema) } else { conform_schema(prev, schema) };
        let known_sha = copy.tee.is_none().then(|| copy.sha256.clone());
        let (version, mut w) = landing_writer(ctx, spec, bronze, lf, known_sha.as_deref(), schema.clone(), o).await?;
        tracing::debug!(target: "dp::ingest", "streaming {} into {}", lf.name, w.key);
        let (tx, mut rx) = tokio::sync::mpsc::channel::<RecordBatch>(2);
        let (fs3, name) = (f.clone(), lf.name.clone());
        let producer = tokio::task::spawn_blocking(move || {
            let r = match format {
                FileFormat::Csv => stream::stream_csv(&fs3, &name, &copy, schema, tx),
                FileFormat::Json => stream::stream_json(&fs3, &name, &copy, schema, tx),
                FileFormat::Parquet => stream::stream_parquet(&name, &copy, schema, tx),
            };
            (r, copy)
        });
        let (mut written, mut batches, mut largest) = (Ok(()), 0usize, 0usize);
        while let Some(b) = rx.recv().await {
            batches += 1;
            largest = largest.max(b.num_rows());
            if let Err(e) = w.write(&b).await {
                written = Err(e);
                break;
            }
        }
        drop(rx);
        let (streamed, c) = producer.await?;
        copy = c;
        if streamed.is_err() && copy.utf8_broken() {
            // The first rows were UTF-8, a later one is not: a CSV file under
            // `encoding: auto` is read again as Latin-1 (the unfinished bronze
            // object is dropped, never published).
            if format == FileFormat::Csv && f.encoding == spec::Encoding::Auto {
                drop(w);
                copy.utf8 = false;
                copy.tee = Some(Default::default());
                continue;
            }
            if format == FileFormat::Json {
                written?;
                return Err(anyhow!("{}", stream::not_utf8(&lf.name, &copy)));
            }
        }
        written?;
        let (skipped, bad_lines) = streamed.map_err(|e| anyhow!("{e}"))?;
        let sha = match &copy.tee {
            Some(t) => {
                let (sha, _) = t.lock().expect("tee state").finish();
                w.note("source_sha256", sha.clone());
                sha
            }
            None => copy.sha256.clone(),
        };
        let pb = w.finish().await?;
        tracing::debug!(target: "dp::ingest", "streamed {}: {} rows in {batches} batches of at most {largest} rows", lf.name, pb.rows);
        return record_landed(ctx, spec, Landed { started, file: lf, sha, version, skipped, bad_lines }, pb, o).await;
    }
}

/// Checks a landing file's schema against the source's history (noting a
/// change on the outcome) and opens its bronze object, noted with where it
/// came from (`sha`: the landing file's checksum, when known before it
/// streams); returns the schema version and the writer.
async fn landing_writer(
    ctx: &Ctx,
    spec: &IngestSpec,
    bronze: &Bronze,
    lf: &files::LandingFile,
    sha: Option<&str>,
    schema: SchemaRef,
    o: &mut Outcome,
) -> anyhow::Result<(i64, bronze::BronzeWriter)> {
    let (version, change) = check_schema(&ctx.state, spec, &schema).await?;
    if change.is_some() {
        o.schema_change = change;
    }
    let obj = bronze.next_object(&ctx.date, &ctx.run_id[..8]).await?;
    let mut w = bronze.writer(&obj, schema)?;
    for (k, v) in [
        ("run_id", ctx.run_id.clone()),
        ("source", spec.source_name.clone()),
        ("mode", "files".to_string()),
        ("schema_version", version.to_string()),
        ("source_file", lf.name.clone()),
        ("source_size", lf.size.to_string()),
    ] {
        w.note(k, v);
    }
    // A file hashed as it streams notes its checksum at the end.
    if let Some(sha) = sha {
        w.note("source_sha256", sha);
    }
    Ok((version, w))
}

/// A landing file published to bronze, as the log records it.
struct Landed<'a> {
    started: &'a str,
    file: &'a files::LandingFile,
    sha: String,
    version: i64,
    skipped: u64,
    bad_lines: Vec<String>,
}

/// Logs a landing file's bronze object (the step that makes the file count
/// as ingested) and adds it to the outcome.
async fn record_landed(ctx: &Ctx, spec: &IngestSpec, l: Landed<'_>, pb: bronze::Published, o: &mut Outcome) -> anyhow::Result<()> {
    ctx.state
        .log(vec![LogRow {
            run_id: ctx.run_id.clone(),
            source_name: spec.source_name.clone(),
            mode: "files".into(),
            started_at: l.started.to_string(),
            finished_at: state::now(),
            status: "success".into(),
            row_count: Some(pb.rows as i64),
            bytes: Some(pb.bytes as i64),
            file_checksum: Some(l.sha),
            object_key: Some(pb.key.clone()),
            schema_version: Some(l.version),
            source_file: Some(l.file.name.clone()),
            source_size: Some(l.file.size as i64),
            skipped_rows: Some(l.skipped as i64),
            bad_lines: (!l.bad_lines.is_empty()).then(|| l.bad_lines.join("\n")),
            ..Default::default()
        }])
        .await?;
    o.error = None;
    o.files += 1;
    o.rows += pb.rows;
    o.bytes += pb.bytes;
    o.skipped_rows += l.skipped;
    o.objects.push(pb.key);
    Ok(())
}

/// A streamed file's reading schema: the source's earlier type for a column
/// whenever the inferred one converts to it (the parser then reads values
/// straight into it).
fn conform_schema(prev: Option<SchemaRow>, schema: SchemaRef) -> SchemaRef {
    let Some(prev) = prev else { return schema };
    let old = schema::from_json(&prev.columns);
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            let want = old.iter().find(|c| &c.name == f.name()).and_then(|c| c.ty.parse::<DataType>().ok());
            match want {
                Some(w) if &w != f.data_type() && datafusion::arrow::compute::can_cast_types(f.data_type(), &w) => Field::new(f.name(), w, f.is_nullable()),
                _ => f.as_ref().clone(),
            }
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// A Parquet file's schema with each column at the source's earlier type
/// when the file's type widens to it without loss (the batches are cast as
/// they stream).
fn widen_schema(prev: Option<SchemaRow>, schema: SchemaRef) -> SchemaRef {
    let Some(prev) = prev else { return schema };
    let old = schema::from_json(&prev.columns);
    let lossless = |from: &DataType, to: &DataType| {
        use DataType::*;
        matches!(
            (from, to),
            (Int8, Int16 | Int32 | Int64)
                | (Int16, Int32 | Int64)
                | (Int32, Int64)
                | (UInt8, Int16 | Int32 | Int64)
                | (UInt16, Int32 | Int64)
                | (UInt32, Int64)
                | (Int8 | Int16 | Int32 | UInt8 | UInt16 | UInt32, Float64)
                | (Float16 | Float32, Float64)
                | (Utf8 | LargeUtf8 | Utf8View, Utf8 | LargeUtf8 | Utf8View)
                | (Binary | LargeBinary | BinaryView, Binary | LargeBinary | BinaryView)
        )
    };
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match old.iter().find(|c| &c.name == f.name()).and_then(|c| c.ty.parse::<DataType>().ok()) {
            Some(w) if &w != f.data_type() && lossless(f.data_type(), &w) => Field::new(f.name(), w, f.is_nullable()),
            _ => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// Keeps a file's columns at the types the source already has when its
/// values convert losslessly (a file whose amounts happen to be whole stays
/// `Float64`), so bronze files of one source share their types.
fn conform(prev: Option<SchemaRow>, schema: SchemaRef, batches: Vec<RecordBatch>) -> anyhow::Result<(SchemaRef, Vec<RecordBatch>)> {
    let Some(prev) = prev else { return Ok((schema, batches)) };
    let old = schema::from_json(&prev.columns);
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    let mut changed = false;
    for f in fields.iter_mut() {
        let Some(o) = old.iter().find(|c| &c.name == f.name()) else { continue };
        let Ok(want) = o.ty.parse::<DataType>() else { continue };
        if &want == f.data_type() {
            continue;
        }
        let opts = datafusion::arrow::compute::CastOptions { safe: false, ..Default::default() };
        let ok = batches.iter().all(|b| b.column_by_name(f.name()).is_some_and(|a| datafusion::arrow::compute::cast_with_options(a, &want, &opts).is_ok()));
        if ok && datafusion::arrow::compute::can_cast_types(f.data_type(), &want) {
            *f = Field::new(f.name(), want, f.is_nullable());
            changed = true;
        }
    }
    if !changed {
        return Ok((schema, batches));
    }
    let target = Arc::new(Schema::new(fields));
    let out = batches.iter().map(|b| crate::util::cast_batch(b, &target)).collect::<Result<Vec<_>, _>>()?;
    Ok((target, out))
}

/// Human size: `3.2 MB`.
pub fn human_bytes(b: u64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < units.len() {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 { format!("{b} B") } else { format!("{v:.1} {}", units[i]) }
}
