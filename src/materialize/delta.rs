//! Delta Lake materializations: `table` (one overwrite commit streamed from
//! the query plan; creating or replacing a table encodes its Parquet on
//! every core, see [`super::parallel`]), `view` (SQL stored beside the
//! tables), `incremental` (`append`, `merge` via Delta MERGE,
//! `delete+insert`) with `on_schema_change`, and seeds.

use anyhow::{Context as _, bail};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::logical_expr::LogicalPlan;
use datafusion::parquet::basic::{Compression, GzipLevel, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::prelude::DataFrame;
use deltalake::DeltaTable;
use deltalake::operations::write::SchemaMode;
use deltalake::protocol::SaveMode;
use futures::StreamExt;
use std::sync::Arc;

use super::dv_merge::Strategy;
use super::parallel::Rows;
use crate::engine::Engine;
use crate::engine::subquery::inline_scalar_subqueries;
use crate::project::nodes::{Materialization, Node};
use crate::storage::TableLoc;
use crate::util::ident::quote_ident;

/// The outcome of building one relation.
#[derive(Debug, Clone, Default)]
pub struct Materialized {
    pub rows: Option<u64>,
    /// e.g. `CREATE TABLE`, `MERGE`, `INSERT`, `CREATE VIEW`.
    pub message: String,
    pub version: Option<i64>,
}

/// The codec of a table's Parquet files when a model names none.
pub const DEFAULT_COMPRESSION: &str = "zstd";

/// zstd's level when a model names none: 1, not the zstd library's 3. On
/// the demo at scale 10 (`dp run --full-refresh`, copies of the project
/// run in turn) level 3 made zstd's compressor a fifth of the CPU: 9.1 s
/// of CPU (median) against 8.1 s at level 1, for files 6 % larger (137 MB
/// against 129 MB). Snappy saved little more (7.8 s) for files 57 %
/// larger. `compression_level` takes the time back for space.
const DEFAULT_ZSTD_LEVEL: i32 = 1;

/// Commit properties for deltalake's operations that remove the files they
/// read (its overwrite and MERGE): a lost commit race fails the write
/// rather than being rebased over a concurrent compaction, which would
/// keep rows twice ([`super::parallel::NO_REBASE`]).
pub(super) fn no_rebase() -> deltalake::kernel::transaction::CommitProperties {
    deltalake::kernel::transaction::CommitProperties::default().with_max_retries(super::parallel::NO_REBASE)
}

/// The writer properties of a model with no compression config.
pub(crate) fn default_writer_properties() -> WriterProperties {
    WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::try_new(DEFAULT_ZSTD_LEVEL).expect("a valid zstd level"))).build()
}

/// The Parquet writer properties of a model's, seed's or snapshot's files:
/// its `compression` (a codec) and `compression_level` (zstd 1–22, gzip
/// 0–9). The loader has already rejected values outside those.
pub(crate) fn writer_properties(node: &Node) -> anyhow::Result<WriterProperties> {
    let comp = node.config_str("compression").unwrap_or(DEFAULT_COMPRESSION).to_ascii_lowercase();
    let level = node.config.get("compression_level").and_then(serde_json::Value::as_i64);
    let c = match comp.as_str() {
        "zstd" => Compression::ZSTD(ZstdLevel::try_new(level.map_or(DEFAULT_ZSTD_LEVEL, |l| l as i32))?),
        "snappy" => Compression::SNAPPY,
        "gzip" => Compression::GZIP(match level {
            Some(l) => GzipLevel::try_new(l as u32)?,
            None => GzipLevel::default(),
        }),
        "lz4" => Compression::LZ4_RAW,
        "none" | "uncompressed" => Compression::UNCOMPRESSED,
        other => bail!("model {}: compression '{other}' is not supported; use zstd, snappy, gzip, lz4 or none", node.name),
    };
    Ok(WriterProperties::builder().set_compression(c).build())
}

pub fn partition_by(node: &Node) -> Vec<String> {
    match node.config.get("partition_by") {
        Some(serde_json::Value::String(s)) => vec![s.clone()],
        Some(serde_json::Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(String::from)).collect(),
        Some(serde_json::Value::Object(o)) => o.get("field").and_then(|f| f.as_str()).map(|s| vec![s.to_string()]).unwrap_or_default(),
        _ => vec![],
    }
}

/// The model's `incremental_strategy`; unset, `delete+insert` with a
/// `unique_key` and `append` without, as dbt-duckdb and dbt-postgres
/// default.
pub fn default_strategy(node: &Node) -> &str {
    node.config_str("incremental_strategy").unwrap_or(if unique_key(node).is_empty() { "append" } else { "delete+insert" })
}

pub fn unique_key(node: &Node) -> Vec<String> {
    match node.config.get("unique_key") {
        Some(serde_json::Value::String(s)) => s.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect(),
        Some(serde_json::Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(String::from)).collect(),
        _ => vec![],
    }
}

/// Every this many versions a table gets a checkpoint (Delta's default is
/// 100). Opening a table and committing to it replay the log from the last
/// checkpoint: with a `table` model replaced on every run, 100 JSON commits
/// made each open cost up to ~100x one commit's parse; 10 bounds that at
/// the price of one small Parquet file per 10 runs.
const CHECKPOINT_EVERY: u64 = 10;

/// Writes a checkpoint when the table's version is a multiple of
/// [`CHECKPOINT_EVERY`]. A failure only costs speed, so it is logged.
/// Every writer calls it after its commit: models, seeds, snapshots, and
/// the `dp_meta` tables appended to on every run (the ingestion log gets a
/// commit per landed file, checkpoint results one per run).
pub async fn checkpoint_if_due(table: &DeltaTable) {
    let Some(v) = table.version() else { return };
    if v > 0
        && v % CHECKPOINT_EVERY == 0
        && let Err(e) = deltalake::checkpoints::create_checkpoint(table, None).await
    {
        tracing::warn!(version = v, error = %e, "could not write a Delta checkpoint");
    }
}

pub(crate) async fn rows_of_last_commit(table: &DeltaTable) -> Option<u64> {
    let mut h = table.history(Some(1));
    let info = h.next().await?.ok()?;
    let m = info.info.get("operationMetrics")?;
    for k in ["num_added_rows", "num_output_rows", "numOutputRows"] {
        if let Some(v) = m.get(k).and_then(|v| v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))) {
            return Some(v);
        }
    }
    None
}

/// Writes a plan as the table's new version (one overwrite commit).
pub async fn overwrite(engine: &Engine, loc: &TableLoc, plan: LogicalPlan, node: &Node) -> anyhow::Result<Materialized> {
    engine.warehouse.prepare_table(loc).await?;
    let table = DeltaTable::try_from_url(loc.url.clone()).await.with_context(|| format!("opening Delta table {loc}"))?;
    let committed = replace(engine, loc, table, plan, node, Rows::Rebuilt).await?;
    committed.with_context(|| format!("writing {loc}: another writer committed meanwhile"))
}

/// [`overwrite`] for a plan whose rows were read from `table` (opened at
/// the version the plan reads): committed only over that version.
/// `Ok(None)`: another writer committed since, and nothing was committed;
/// the caller reads the table again.
async fn overwrite_read(engine: &Engine, loc: &TableLoc, table: DeltaTable, plan: LogicalPlan, node: &Node) -> anyhow::Result<Option<Materialized>> {
    replace(engine, loc, table, plan, node, Rows::ReadFromTable).await
}

async fn replace(
    engine: &Engine,
    loc: &TableLoc,
    mut table: DeltaTable,
    plan: LogicalPlan,
    node: &Node,
    depends: Rows,
) -> anyhow::Result<Option<Materialized>> {
    let plan = delta_compatible(engine, plan)?;
    let existed = table.version().is_some();
    let parts = partition_by(node);
    let props = writer_properties(node)?;
    let parallel = if existed {
        super::parallel::overwrite(engine, &mut table, &plan, &parts, &props, depends).await
    } else {
        super::parallel::create(engine, &mut table, &plan, &parts, &props, &node.alias).await
    };
    let parallel = match parallel.map_err(|e| e.downcast::<deltalake::DeltaTableError>()) {
        Ok(p) => p,
        Err(Ok(e)) if depends == Rows::ReadFromTable && super::parallel::lost_race(&e) => return Ok(None),
        Err(Ok(e)) => return Err(write_error(loc, e)),
        Err(Err(e)) => bail!("writing {loc}: {e}"),
    };
    if let Some(rows) = parallel {
        checkpoint_if_due(&table).await;
        let message = if existed { "REPLACE TABLE" } else { "CREATE TABLE" };
        return Ok(Some(Materialized { rows: Some(rows), message: message.into(), version: table.version().map(|v| v as i64) }));
    }
    let mut b = table
        .write(vec![])
        .with_input_plan(plan)
        .with_session_state(Arc::new(engine.ctx.state()))
        .with_save_mode(SaveMode::Overwrite)
        .with_schema_mode(SchemaMode::Overwrite)
        .with_commit_properties(no_rebase())
        .with_writer_properties(props)
        .with_table_name(node.alias.clone());
    if !parts.is_empty() {
        b = b.with_partition_columns(parts);
    }
    let mut table = match b.await {
        Ok(t) => t,
        Err(e) if depends == Rows::ReadFromTable && super::parallel::lost_race(&e) => return Ok(None),
        Err(e) => return Err(write_error(loc, e)),
    };
    if table.version().is_none() {
        // A table created by this write comes back without its state.
        table.load().await?;
    }
    checkpoint_if_due(&table).await;
    Ok(Some(Materialized {
        rows: rows_of_last_commit(&table).await,
        message: if existed { "REPLACE TABLE".into() } else { "CREATE TABLE".into() },
        version: table.version().map(|v| v as i64),
    }))
}

/// `plan` as a Delta table stores it. Delta has no unsigned, nanosecond or
/// view types: they are cast to the nearest type it stores (UInt64 →
/// BIGINT, timestamps → microseconds, Utf8View → Utf8). Every column is
/// nullable ([`nullable`]).
pub fn delta_compatible(engine: &Engine, plan: LogicalPlan) -> anyhow::Result<LogicalPlan> {
    use datafusion::arrow::datatypes::{DataType as D, TimeUnit};
    fn target(dt: &D) -> Option<D> {
        Some(match dt {
            D::UInt8 => D::Int16,
            D::UInt16 => D::Int32,
            D::UInt32 | D::UInt64 => D::Int64,
            D::Float16 => D::Float32,
            D::Utf8View | D::LargeUtf8 => D::Utf8,
            D::BinaryView | D::LargeBinary => D::Binary,
            D::Date64 => D::Date32,
            D::Timestamp(u, tz) if *u != TimeUnit::Microsecond => D::Timestamp(TimeUnit::Microsecond, tz.clone()),
            D::Dictionary(_, v) => target(v).unwrap_or((**v).clone()),
            D::Null => D::Utf8,
            _ => return None,
        })
    }
    let df = DataFrame::new(engine.ctx.state(), plan);
    let fields = df.schema().fields().clone();
    let plan = if !fields.iter().any(|f| target(f.data_type()).is_some()) {
        df.into_unoptimized_plan()
    } else {
        let exprs: Vec<datafusion::prelude::Expr> = df
            .schema()
            .iter()
            .map(|(q, f)| {
                let col = datafusion::prelude::Expr::Column(datafusion::common::Column::new(q.cloned(), f.name()));
                match target(f.data_type()) {
                    Some(t) => datafusion::prelude::cast(col, t).alias(f.name()),
                    None => col,
                }
            })
            .collect();
        df.select(exprs)?.into_unoptimized_plan()
    };
    nullable(plan)
}

/// `plan` with every column nullable. A table's columns take their
/// nullability from the plan that creates it, and a column DataFusion
/// proves never NULL (a literal, `count(*)`, `coalesce(x, 0)`) would be
/// NOT NULL in Delta: a later incremental run whose rows hold a NULL there
/// would fail ("rows failed validation check"), where dbt's `create table
/// as` leaves every column nullable. The projection names the input's
/// columns with the schema relaxed; the rows are the input's.
fn nullable(plan: LogicalPlan) -> anyhow::Result<LogicalPlan> {
    use datafusion::common::DFSchema;
    use datafusion::logical_expr::Projection;
    if plan.schema().fields().iter().all(|f| f.is_nullable()) {
        return Ok(plan);
    }
    let schema = plan.schema();
    let fields = schema.iter().map(|(q, f)| (q.cloned(), Arc::new(f.as_ref().clone().with_nullable(true)))).collect();
    let relaxed = DFSchema::new_with_metadata(fields, schema.metadata().clone())?;
    let exprs = schema.iter().map(|(q, f)| datafusion::prelude::Expr::Column(datafusion::common::Column::new(q.cloned(), f.name()))).collect();
    Ok(LogicalPlan::Projection(Projection::try_new_with_schema(exprs, Arc::new(plan), Arc::new(relaxed))?))
}

/// What to do after losing commit races to another writer.
pub(super) const RACE_HINT: &str = "another writer committed to this table at the same time; nothing of this write was committed: run it again";

/// A failed Delta write, naming the table and, for storage failures and
/// lost commit races, what to do next.
pub fn write_error(loc: &TableLoc, e: deltalake::DeltaTableError) -> anyhow::Error {
    let full = e.to_string();
    let text = crate::storage::s3::summarize(&full);
    let hint = if matches!(e, deltalake::DeltaTableError::Transaction { .. }) || text.contains("concurrent") || text.contains("Concurrent") {
        Some(RACE_HINT)
    } else if text.contains("matched a target row with multiple source rows") {
        Some("two of the model's new rows share a unique_key value: deduplicate them, or use incremental_strategy='delete+insert', which inserts both")
    } else {
        crate::storage::s3::hint(&full)
    };
    match hint {
        Some(h) => anyhow::anyhow!("writing {loc}: {text}\n  hint: {h}"),
        None => anyhow::anyhow!("writing {loc}: {text}"),
    }
}

/// Stores a view's SQL (atomically).
pub async fn write_view(engine: &Engine, loc: &TableLoc, sql: &str) -> anyhow::Result<Materialized> {
    engine.warehouse.write_view(loc, sql).await?;
    Ok(Materialized { rows: None, message: "CREATE VIEW".into(), version: None })
}

/// A model's query with its `sql_header` config (`{% call set_sql_header(config) %}`)
/// before it, as dbt sends both as one query (a CTE the query reads, in DataFusion;
/// session statements of other warehouses do not parse here).
pub fn with_sql_header(node: &Node, sql: &str) -> String {
    match node.config_str("sql_header") {
        Some(h) if !h.trim().is_empty() => format!("{h}\n{sql}"),
        _ => sql.to_string(),
    }
}

/// Builds one model according to its `materialized` config.
pub async fn materialize(engine: &Engine, node: &Node, sql: &str, incremental: bool) -> anyhow::Result<Materialized> {
    let sql = &with_sql_header(node, sql);
    let dir = engine.warehouse.table(&node.schema, &node.alias);
    match node.materialized() {
        Materialization::View => {
            // Plan it now so a broken view fails its own node, not a later one.
            crate::engine::idents::plan(&engine.ctx.state(), sql).await?;
            write_view(engine, &dir, sql).await
        }
        Materialization::Table => {
            let df = inline_scalar_subqueries(engine, engine.sql(sql).await?).await?;
            overwrite(engine, &dir, df.into_unoptimized_plan(), node).await
        }
        Materialization::Incremental => {
            let df = engine.sql(sql).await?;
            if !incremental {
                return overwrite(engine, &dir, df.into_unoptimized_plan(), node).await;
            }
            // `where ts > (select max(ts) from {{ this }})` reaches the scans as a literal.
            let df = inline_scalar_subqueries(engine, df).await?;
            incremental_update(engine, &dir, df, node).await
        }
        Materialization::Ephemeral => Ok(Materialized { rows: None, message: "EPHEMERAL".into(), version: None }),
        other => bail!("model {}: materialization '{other}' is not supported\n  hint: use table, view, incremental or ephemeral", node.name),
    }
}

/// How the new rows' schema relates to the existing table's.
fn schema_change(existing: &SchemaRef, new: &SchemaRef) -> (Vec<String>, Vec<String>, Vec<String>) {
    let mut added = vec![];
    let mut removed = vec![];
    let mut changed = vec![];
    for f in new.fields() {
        match existing.field_with_name(f.name()) {
            Ok(e) if e.data_type() != f.data_type() => changed.push(format!("{} ({} -> {})", f.name(), e.data_type(), f.data_type())),
            Ok(_) => {}
            Err(_) => added.push(f.name().clone()),
        }
    }
    for f in existing.fields() {
        if new.field_with_name(f.name()).is_err() {
            removed.push(f.name().clone());
        }
    }
    (added, removed, changed)
}

async fn incremental_update(engine: &Engine, dir: &TableLoc, df: DataFrame, node: &Node) -> anyhow::Result<Materialized> {
    let df = DataFrame::new(engine.ctx.state(), delta_compatible(engine, df.into_unoptimized_plan())?);
    let table = deltalake::open_table(dir.url.clone()).await.with_context(|| format!("opening Delta table {dir}"))?;
    let existing: SchemaRef = table.snapshot()?.snapshot().arrow_schema();
    let new_schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let (added, removed, changed) = schema_change(&existing, &new_schema);
    let mode = node.config_str("on_schema_change").unwrap_or("ignore");
    let differs = !added.is_empty() || !removed.is_empty() || !changed.is_empty();
    let mut df = df;
    let mut schema_mode = None;
    if differs {
        match mode {
            "fail" => bail!(
                "model {}: the incremental model's columns changed (added: [{}], removed: [{}], changed: [{}]) and on_schema_change is 'fail'\n  hint: run with --full-refresh, or set on_schema_change to append_new_columns or sync_all_columns",
                node.name,
                added.join(", "),
                removed.join(", "),
                changed.join(", ")
            ),
            "append_new_columns" => {
                if !changed.is_empty() {
                    bail!(
                        "model {}: column types changed ({}); append_new_columns cannot change types\n  hint: run with --full-refresh or use on_schema_change='sync_all_columns'",
                        node.name,
                        changed.join(", ")
                    );
                }
                schema_mode = Some(SchemaMode::Merge);
                // The table's columns in its order, then the new rows' new
                // ones, as dbt's `alter table add column` appends them. The
                // table keeps the columns the new rows lack: NULL in new rows
                // (so Delta's schema merge lets a NOT NULL column take it),
                // left as they are by a merge's update, which sets the new
                // rows' columns (dbt's `dest_columns`).
                let mut exprs = table_columns(&existing, &new_schema);
                exprs.extend(added.iter().map(datafusion::prelude::ident));
                df = df.select(exprs)?;
            }
            "sync_all_columns" => {
                // Rewrite the table with the new shape: existing rows keep
                // shared columns, new columns are NULL, removed ones go
                // (those the new rows replace, but for `append`).
                let (keys, kept) = match default_strategy(node) {
                    "append" => (vec![], None),
                    _ => (unique_key(node), requalified(node, Some("c"), None)?),
                };
                return sync_all_columns(engine, dir, df, node, &existing, &keys, kept.as_deref()).await;
            }
            _ => {
                // ignore: keep the table's columns; drop new ones, NULL for missing.
                df = df.select(table_columns(&existing, &new_schema))?;
            }
        }
    }
    let strategy = default_strategy(node);
    let keys = unique_key(node);
    if strategy != "append"
        && let Some(missing) = keys.iter().find(|k| df.schema().field_with_unqualified_name(k).is_err())
    {
        let columns: Vec<&str> = df.schema().fields().iter().map(|f| f.name().as_str()).collect();
        bail!(
            "model {}: unique_key column '{missing}' is not one of the model's columns ({})\n  hint: name a column the model selects in its unique_key config",
            node.name,
            columns.join(", ")
        );
    }
    match strategy {
        "append" => {
            let mut b = table
                .write(vec![])
                .with_input_plan(df.into_unoptimized_plan())
                .with_session_state(Arc::new(engine.ctx.state()))
                .with_save_mode(SaveMode::Append)
                .with_writer_properties(writer_properties(node)?);
            if let Some(m) = schema_mode {
                b = b.with_schema_mode(m);
            }
            let t = b.await.map_err(|e| write_error(dir, e))?;
            checkpoint_if_due(&t).await;
            Ok(Materialized { rows: rows_of_last_commit(&t).await, message: "INSERT".into(), version: t.version().map(|v| v as i64) })
        }
        "merge" => {
            if keys.is_empty() {
                bail!("model {}: incremental_strategy 'merge' needs a unique_key\n  hint: add unique_key='id' (or a list) to the model's config", node.name);
            }
            let mut table = table;
            let cols: Vec<String> = df.schema().fields().iter().map(|f| f.name().clone()).collect();
            let update_cols: Vec<String> = match node.config.get("merge_update_columns") {
                Some(serde_json::Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(String::from)).collect(),
                _ => {
                    let excl: Vec<String> = match node.config.get("merge_exclude_columns") {
                        Some(serde_json::Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(String::from)).collect(),
                        _ => vec![],
                    };
                    cols.iter().filter(|c| !(excl.contains(c) || schema_mode.is_some() && removed.contains(c))).cloned().collect()
                }
            };
            // Predicates that name the new rows are a join condition only deltalake's MERGE can take.
            let predicates = super::predicates::of(node);
            if !super::predicates::names_source(&predicates) {
                // Columns a match keeps come from the table's row (see `kept_columns`).
                let rows = match cols.iter().all(|c| update_cols.contains(c) || keys.contains(c)) {
                    true => Some(df.clone()),
                    false => kept_columns(engine, &table, &df, node, &keys, &update_cols).await?,
                };
                if let Some(rows) = rows
                    && let Some(m) = by_deletion_vectors(engine, dir, &mut table, &rows, &keys, node, Strategy::Merge, requalified(node, None, None)?).await?
                {
                    return Ok(m);
                }
            }
            let mut predicate = keys.iter().map(|k| format!("target.{q} = source.{q}", q = quote_ident(k))).collect::<Vec<_>>().join(" AND ");
            if let Some(p) = requalified(node, Some("target"), Some("source"))? {
                predicate = format!("{predicate} AND {p}");
            }
            let mut mb = table
                .merge(df, predicate)
                .with_source_alias("source")
                .with_target_alias("target")
                .with_session_state(Arc::new(engine.ctx.state()))
                .with_writer_properties(writer_properties(node)?)
                .with_commit_properties(no_rebase())
                .with_merge_schema(schema_mode.is_some());
            let uc = update_cols.clone();
            mb = mb.when_matched_update(move |mut u| {
                for c in &uc {
                    u = u.update(quote_ident(c), format!("source.{}", quote_ident(c)));
                }
                u
            })?;
            let ic = cols.clone();
            mb = mb.when_not_matched_insert(move |mut i| {
                for c in &ic {
                    i = i.set(quote_ident(c), format!("source.{}", quote_ident(c)));
                }
                i
            })?;
            let (t, metrics) = mb.await.map_err(|e| write_error(dir, e))?;
            checkpoint_if_due(&t).await;
            Ok(Materialized {
                rows: Some((metrics.num_target_rows_inserted + metrics.num_target_rows_updated) as u64),
                message: "MERGE".into(),
                version: t.version().map(|v| v as i64),
            })
        }
        "delete+insert" => {
            if keys.is_empty() {
                bail!("model {}: incremental_strategy 'delete+insert' needs a unique_key", node.name);
            }
            let mut table = table;
            if let Some(m) = by_deletion_vectors(engine, dir, &mut table, &df, &keys, node, Strategy::DeleteInsert, requalified(node, None, None)?).await? {
                return Ok(m);
            }
            // One overwrite commit: old rows whose key is not in the new
            // batch (or that fail the predicates), plus every new row.
            // With append_new_columns the table gains the new rows' new
            // columns (NULL in its old rows), and keeps those the new rows
            // lack (NULL in the new rows), as dbt's `alter table add column`
            // and `insert into t (<the new rows' columns>)` leave it.
            // (the append_new_columns arm above made the new rows those columns)
            let rows: SchemaRef = Arc::new(df.schema().as_arrow().clone());
            let columns = if schema_mode.is_some() { rows.fields().to_vec() } else { existing.fields().to_vec() };
            let (current, new) = (select_as(&columns, &existing), select_as(&columns, &rows));
            let kept = requalified(node, Some("c"), None)?;
            let mut m = rewrite_keeping(engine, dir, node, df, &current, &new, &keys, kept.as_deref()).await?;
            m.message = "DELETE+INSERT".into();
            Ok(m)
        }
        other => bail!("model {}: incremental_strategy '{other}' is not supported\n  hint: use append, merge or delete+insert", node.name),
    }
}

/// `merge`, `delete+insert` or a replace-where by deletion vectors
/// ([`super::dv_merge`]), with `filter` (unqualified SQL over the table:
/// the incremental predicates), where the model allows it; `None` when the
/// strategy's own way must run.
#[allow(clippy::too_many_arguments)]
async fn by_deletion_vectors(
    engine: &Engine,
    dir: &TableLoc,
    table: &mut DeltaTable,
    df: &DataFrame,
    keys: &[String],
    node: &Node,
    strategy: Strategy,
    filter: Option<String>,
) -> anyhow::Result<Option<Materialized>> {
    if !super::dv_merge::wanted(node) {
        return Ok(None);
    }
    let filter = match filter {
        Some(sql) => {
            let arrow = table.snapshot()?.snapshot().arrow_schema();
            let f = super::predicates::RowFilter::new(&engine.ctx.state(), &arrow, &sql).map_err(|e| {
                anyhow::anyhow!("model {}: incremental_predicates {sql}: {e}\n  hint: name the table's columns, as DBT_INTERNAL_DEST.col or col", node.name)
            })?;
            Some(Arc::new(f))
        }
        None => None,
    };
    let merged = super::dv_merge::merge(engine, table, df.logical_plan(), keys, filter, &writer_properties(node)?, strategy).await.map_err(|e| {
        match e.downcast::<deltalake::DeltaTableError>() {
            Ok(e) => write_error(dir, e),
            Err(e) => anyhow::anyhow!("writing {dir}: {e:#}"),
        }
    })?;
    let Some(m) = merged else { return Ok(None) };
    checkpoint_if_due(table).await;
    Ok(Some(match strategy {
        Strategy::Merge => Materialized { rows: Some(m.inserted + m.updated), message: "MERGE".into(), version: m.version },
        Strategy::DeleteInsert => Materialized { rows: Some(m.inserted), message: "DELETE+INSERT".into(), version: m.version },
        Strategy::ReplaceWhere => Materialized { rows: Some(m.inserted), message: "INSERT".into(), version: m.version },
    }))
}

/// A merge that updates only `update_cols` as rows a merge by deletion
/// vectors can take: each new row whose key matches a row of the table
/// (that satisfies the incremental predicates) takes that row's values of
/// the other columns, the others stay as they are. Replacing the matched
/// rows by these is then MERGE's update. `None` when an update column is
/// not the table's (deltalake's MERGE reports it).
async fn kept_columns(
    engine: &Engine,
    table: &DeltaTable,
    new_rows: &DataFrame,
    node: &Node,
    keys: &[String],
    update_cols: &[String],
) -> anyhow::Result<Option<DataFrame>> {
    let schema = table.snapshot()?.snapshot().arrow_schema();
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    // The new rows' columns: the table's, maybe followed by new ones (append_new_columns).
    let columns: Vec<String> = new_rows.schema().fields().iter().map(|f| f.name().clone()).collect();
    let kept: Vec<&String> = names.iter().filter(|c| !update_cols.contains(c) && !keys.contains(c)).collect();
    if update_cols.iter().any(|c| !columns.contains(c)) || keys.iter().any(|k| !names.contains(k)) || kept.iter().any(|c| !columns.contains(c)) {
        return Ok(None);
    }
    let (new_tbl, cur_tbl) = (scratch_table(node, "new"), scratch_table(node, "cur"));
    engine.ctx.register_table(&new_tbl, new_rows.clone().into_view())?;
    engine.ctx.register_table(&cur_tbl, table.table_provider().await?)?;
    let select: Vec<String> = columns
        .iter()
        .map(|c| match kept.contains(&c) {
            true => format!("CASE WHEN t.\"__dp_matched\" THEN t.{q} ELSE s.{q} END AS {q}", q = quote_ident(c)),
            false => format!("s.{q} AS {q}", q = quote_ident(c)),
        })
        .collect();
    let inner: Vec<String> = keys.iter().chain(kept.iter().copied()).map(|c| quote_ident(c)).collect();
    let on: Vec<String> = keys.iter().map(|k| format!("s.{q} = t.{q}", q = quote_ident(k))).collect();
    let filter = requalified(node, None, None)?.map(|p| format!(" WHERE {p}")).unwrap_or_default();
    let sql = format!(
        "SELECT {} FROM {} s LEFT JOIN (SELECT {}, TRUE AS \"__dp_matched\" FROM {}{filter}) t ON {}",
        select.join(", "),
        quote_ident(&new_tbl),
        inner.join(", "),
        quote_ident(&cur_tbl),
        on.join(" AND ")
    );
    let plan = engine.ctx.sql(&sql).await.map(|df| df.into_unoptimized_plan());
    let _ = engine.ctx.deregister_table(&new_tbl);
    let _ = engine.ctx.deregister_table(&cur_tbl);
    // A kept column comes back in the type the table reads as (Utf8View
    // for strings), which is not the type Delta stores.
    Ok(Some(DataFrame::new(engine.ctx.state(), delta_compatible(engine, plan?)?)))
}

/// The name under which a write registers one of its inputs in the shared
/// session while it plans: per relation (schema and alias), since models
/// of the same name in two schemas may be written at the same time.
fn scratch_table(node: &Node, role: &str) -> String {
    format!("__dp_{role}_{}_{}", node.schema, node.alias)
}

/// Replaces the table's rows that satisfy `filter` (unqualified SQL over
/// the table) with `df`'s rows, in one commit: by deletion vectors where
/// the table allows it, else by rewriting the table without those rows.
pub(super) async fn replace_where(
    engine: &Engine,
    dir: &TableLoc,
    mut table: DeltaTable,
    df: DataFrame,
    node: &Node,
    filter: String,
) -> anyhow::Result<Materialized> {
    if let Some(m) = by_deletion_vectors(engine, dir, &mut table, &df, &[], node, Strategy::ReplaceWhere, Some(filter.clone())).await? {
        return Ok(m);
    }
    let cols: Vec<String> = table.snapshot()?.snapshot().arrow_schema().fields().iter().map(|f| quote_ident(f.name())).collect();
    let mut m = rewrite_keeping(engine, dir, node, df, &cols, &cols, &[], Some(&filter)).await?;
    m.message = "INSERT".into();
    Ok(m)
}

/// The model's incremental predicates ([`super::predicates`]) joined, the
/// table named `dest` and the new rows `source` (`None`: unqualified).
pub(super) fn requalified(node: &Node, dest: Option<&str>, source: Option<&str>) -> anyhow::Result<Option<String>> {
    super::predicates::requalify(&super::predicates::of(node), &node.alias, dest, source).map_err(|e| anyhow::anyhow!("model {}: {e}", node.name))
}

/// The table's columns (`existing`, in its order and types) from rows of
/// schema `have`: each cast to the table's type, NULL where `have` lacks it.
pub(super) fn table_columns(existing: &datafusion::arrow::datatypes::Schema, have: &datafusion::arrow::datatypes::Schema) -> Vec<datafusion::prelude::Expr> {
    use datafusion::prelude::{cast, ident, lit};
    existing
        .fields()
        .iter()
        .map(|f| {
            let value = if have.field_with_name(f.name()).is_ok() { ident(f.name()) } else { lit(datafusion::scalar::ScalarValue::Null) };
            cast(value, f.data_type().clone()).alias(f.name())
        })
        .collect()
}

/// A select list giving `columns` from rows of schema `have`: a column
/// `have` lacks is NULL, one it has is cast to the column's type where
/// the types differ.
fn select_as(columns: &[datafusion::arrow::datatypes::FieldRef], have: &SchemaRef) -> Vec<String> {
    columns
        .iter()
        .map(|f| match have.field_with_name(f.name()) {
            Ok(h) if h.data_type() == f.data_type() => quote_ident(f.name()),
            Ok(_) => format!("CAST({} AS {}) AS {}", quote_ident(f.name()), sql_type(f.data_type()), quote_ident(f.name())),
            Err(_) => format!("CAST(NULL AS {}) AS {}", sql_type(f.data_type()), quote_ident(f.name())),
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
async fn sync_all_columns(
    engine: &Engine,
    dir: &TableLoc,
    df: DataFrame,
    node: &Node,
    existing: &SchemaRef,
    keys: &[String],
    kept: Option<&str>,
) -> anyhow::Result<Materialized> {
    let new_schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let (old_cols, new_cols) = (select_as(new_schema.fields(), existing), select_as(new_schema.fields(), &new_schema));
    let mut m = rewrite_keeping(engine, dir, node, df, &old_cols, &new_cols, keys, kept).await?;
    m.message = "SYNC COLUMNS".into();
    Ok(m)
}

/// Rewrites the table in one overwrite commit as its current rows whose
/// key is not among the new rows, or that fail `predicates` (over the
/// current rows, as `c`; with no key, the rows that fail them; with
/// neither, all of them), projected with `current_cols`, followed by the
/// new rows (`new_cols`). The commit goes over the version read: when
/// another writer committed meanwhile, the table is read again, up to
/// [`CONFLICT_ATTEMPTS`](super::parallel::CONFLICT_ATTEMPTS) times, so its
/// rows are kept too.
#[allow(clippy::too_many_arguments)]
async fn rewrite_keeping(
    engine: &Engine,
    dir: &TableLoc,
    node: &Node,
    new_rows: DataFrame,
    current_cols: &[String],
    new_cols: &[String],
    keys: &[String],
    predicates: Option<&str>,
) -> anyhow::Result<Materialized> {
    let (new_tbl, cur_tbl) = (scratch_table(node, "new"), scratch_table(node, "cur"));
    let (current, cur) = (current_cols.join(", "), quote_ident(&cur_tbl));
    let kept = if keys.is_empty() {
        match predicates {
            None => format!("SELECT {current} FROM {cur} c"),
            Some(p) => format!("SELECT {current} FROM {cur} c WHERE NOT COALESCE({p}, FALSE)"),
        }
    } else {
        let on = keys.iter().map(|k| format!("n.{q} = c.{q}", q = quote_ident(k))).collect::<Vec<_>>().join(" AND ");
        let unmatched = format!("NOT EXISTS (SELECT 1 FROM {} n WHERE {on})", quote_ident(&new_tbl));
        match predicates {
            None => format!("SELECT {current} FROM {cur} c WHERE {unmatched}"),
            // Rows that fail the predicates are kept whatever their key.
            // (DataFusion plans NOT EXISTS only as a conjunct, hence two selects.)
            Some(p) => format!(
                "SELECT {current} FROM {cur} c WHERE NOT COALESCE({p}, FALSE) UNION ALL SELECT {current} FROM {cur} c WHERE COALESCE({p}, FALSE) AND {unmatched}"
            ),
        }
    };
    let sql = format!("{kept} UNION ALL SELECT {} FROM {}", new_cols.join(", "), quote_ident(&new_tbl));
    engine.ctx.register_table(&new_tbl, new_rows.into_view())?;
    let result = async {
        engine.warehouse.prepare_table(dir).await?;
        for attempt in 0.. {
            let table = deltalake::open_table(dir.url.clone()).await.with_context(|| format!("opening Delta table {dir}"))?;
            engine.ctx.register_table(&cur_tbl, table.table_provider().await?)?;
            let plan = engine.ctx.sql(&sql).await?.into_unoptimized_plan();
            match overwrite_read(engine, dir, table, plan, node).await? {
                Some(m) => return Ok(m),
                None if attempt < super::parallel::CONFLICT_ATTEMPTS => {
                    tracing::debug!(attempt = attempt + 1, "another writer committed meanwhile: reading the table again");
                }
                None => break,
            }
        }
        bail!("writing {dir}: other writers kept committing to this table\n  hint: {}", RACE_HINT)
    }
    .await;
    let _ = engine.ctx.deregister_table(&new_tbl);
    let _ = engine.ctx.deregister_table(&cur_tbl);
    result
}

fn sql_type(dt: &datafusion::arrow::datatypes::DataType) -> String {
    use datafusion::arrow::datatypes::DataType as D;
    match dt {
        D::Boolean => "BOOLEAN".into(),
        D::Int8 | D::Int16 => "SMALLINT".into(),
        D::Int32 => "INT".into(),
        D::Int64 => "BIGINT".into(),
        D::Float32 => "REAL".into(),
        D::Float64 => "DOUBLE".into(),
        D::Decimal128(p, s) => format!("DECIMAL({p},{s})"),
        D::Date32 => "DATE".into(),
        D::Timestamp(_, None) => "TIMESTAMP".into(),
        D::Timestamp(_, Some(_)) => "TIMESTAMPTZ".into(),
        _ => "VARCHAR".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::nodes::ResourceType;
    use datafusion::parquet::schema::types::ColumnPath;

    fn compression(config: serde_json::Value) -> Compression {
        let mut node = Node::new(ResourceType::Model, "p", "m", "models/m.sql");
        node.config = config.as_object().unwrap().clone().into();
        writer_properties(&node).unwrap().compression(&ColumnPath::from("id"))
    }

    #[test]
    fn the_codec_and_its_level_reach_the_writer() {
        use serde_json::json;
        assert_eq!(compression(json!({})), Compression::ZSTD(ZstdLevel::try_new(1).unwrap()));
        assert_eq!(compression(json!({"compression": "ZSTD"})), Compression::ZSTD(ZstdLevel::try_new(1).unwrap()));
        assert_eq!(compression(json!({"compression_level": 19})), Compression::ZSTD(ZstdLevel::try_new(19).unwrap()));
        assert_eq!(compression(json!({"compression": "gzip", "compression_level": 9})), Compression::GZIP(GzipLevel::try_new(9).unwrap()));
        assert_eq!(compression(json!({"compression": "gzip"})), Compression::GZIP(GzipLevel::default()));
        assert_eq!(compression(json!({"compression": "snappy"})), Compression::SNAPPY);
        assert_eq!(compression(json!({"compression": "none"})), Compression::UNCOMPRESSED);
    }
}
