//! Creating and replacing a table with its Parquet encoded on every core.
//!
//! deltalake's write operation feeds all partitions of the plan into one
//! Parquet writer, so for an unpartitioned table one thread encodes and
//! compresses every row. At 3M rows that thread is the bottleneck of the
//! model, and the other core is mostly idle. [`overwrite`] instead gives each
//! output partition of the physical plan its own writer (a
//! [`RecordBatchWriter`], which encodes as batches arrive and computes the
//! files' Delta statistics). Each writer writes its own files. One commit
//! then removes every current file and adds the new ones, so the table moves
//! to its new version atomically, as it does through deltalake's own write.
//!
//! Creating a table (its first build) works the same way: the files are
//! written first, then one commit (version 0) holds the protocol and
//! metadata actions deltalake's create builds for the plan's schema, with
//! the files added ([`create`]), for an unpartitioned table whose schema
//! needs no cast to be stored and carries no Delta column metadata.
//!
//! For a table on local disk whose columns are all flat, a writer is a
//! [`LocalFile`] (parquet's writer on the file itself, statistics computed
//! from its footer) rather than deltalake's; see [`super::local_file`].
//!
//! Each writer dictionary-encodes only the columns its first rows show not
//! to be mostly distinct ([`super::dictionary`]).
//!
//! Small outputs stay one file: a partition is given its own writer only
//! once it has produced [`OWN_FILE_ROWS`] rows; the rows of smaller
//! partitions are written together, in partition order, into one file after
//! the others. A plan with one partition, such as a model ending in
//! `order by`, thus keeps its row order.
//!
//! A replacement applies only where that commit is exactly what deltalake's
//! overwrite would write: the table exists, it is unpartitioned (and the model asks
//! for no partitions), it has no table properties but deletion vectors
//! (constraints, change data feed, append-only and the like are
//! properties), its protocol is legacy reader 1 / writer ≤ 2 or has no
//! table feature but `timestampNtz` and `deletionVectors`, no
//! column carries Delta metadata (invariants, generated or identity
//! columns, column mapping), and the plan's schema as Delta sees it is the
//! table's (a changed schema needs a metadata action). Everything else
//! returns `None` before anything is planned and goes through deltalake's
//! write.
//!
//! `DP_PARALLEL_WRITE=off` sends every write through deltalake's writer
//! (benchmarks compare the two; an escape hatch).
//!
//! If a writer fails, the others are aborted and nothing is committed. Files
//! already written stay in the table's folder, unreferenced by the log, as
//! after a killed deltalake write: readers never see them, and `VACUUM`
//! removes them.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::Schema as ArrowSchema;
use datafusion::logical_expr::LogicalPlan;
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::physical_plan::execute_stream_partitioned;
use datafusion::prelude::DataFrame;
use deltalake::DeltaTable;
use deltalake::kernel::Add;
use deltalake::kernel::engine::arrow_conversion::{TryIntoArrow as _, TryIntoKernel as _};
use deltalake::kernel::schema::cast::normalize_for_delta;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties, TransactionError};
use deltalake::kernel::{Action, StructType};
use deltalake::operations::create::CreateBuilder;
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use futures::{StreamExt, TryStreamExt};
use tokio::task::JoinSet;

use super::local_file::LocalFile;
use crate::engine::Engine;
use std::sync::Arc;

/// Rows a partition of the plan must reach to be written to files of its own
/// (by its own writer, in parallel with the others). Smaller partitions are
/// written together into one file after the others, so a small table stays
/// one file, as deltalake's writer would leave it.
const OWN_FILE_ROWS: u64 = 131_072;

/// Whether `table` can be replaced by [`overwrite`]'s commit (see the module
/// docs); `Err` says why not, for the debug log.
fn eligible(table: &DeltaTable, partition_by: &[String]) -> Result<(), &'static str> {
    if turned_off() {
        return Err("DP_PARALLEL_WRITE=off");
    }
    let Ok(state) = table.snapshot() else { return Err("table not loaded") };
    if !partition_by.is_empty() {
        return Err("partitioned");
    }
    plain_table(state)
}

/// Why a writer that honours no Delta feature but `timestampNtz` and
/// deletion vectors may not write this table itself (this module and
/// [`super::dv_merge`]): partitions, table properties other than
/// `delta.enableDeletionVectors`, another protocol ([`plain_protocol`]), or
/// Delta column metadata.
pub(super) fn plain_table(state: &deltalake::table::state::DeltaTableState) -> Result<(), &'static str> {
    if !state.metadata().partition_columns().is_empty() {
        return Err("partitioned");
    }
    if state.metadata().configuration().iter().any(|(k, v)| k != super::dv_merge::ENABLE_PROPERTY || v != "true") {
        return Err("table properties");
    }
    // Legacy reader 1 / writer ≤ 2, or table features limited to timestampNtz
    // (dp's tables with timestamps without a time zone) and deletion vectors
    // (incremental tables merged by [`super::dv_merge`]; a commit removes
    // each file with its vector): nothing else that a writer must honour.
    if !plain_protocol(state.protocol()) {
        return Err("protocol");
    }
    if delta_column_metadata(&state.schema()) {
        return Err("column metadata");
    }
    Ok(())
}

/// What a replacement's rows depend on, which decides what it does after
/// losing its commit race to another writer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rows {
    /// Not on the table (a rebuild): the newest version's files are
    /// replaced instead, whatever the other writer committed.
    Rebuilt,
    /// On the table at `table`'s version (the rows a `delete+insert` or a
    /// schema sync keeps): replacing a newer version would lose the other
    /// writer's rows, so the lost race is returned and nothing is committed.
    ReadFromTable,
}

/// Replaces the table's rows with `plan`'s in one commit, one Parquet writer
/// per output partition. `Ok(None)`: not applicable, nothing was written.
/// `Ok(Some(rows))`: committed, and `table` holds the new version.
pub async fn overwrite(
    engine: &Engine,
    table: &mut DeltaTable,
    plan: &LogicalPlan,
    partition_by: &[String],
    props: &WriterProperties,
    depends: Rows,
) -> anyhow::Result<Option<u64>> {
    if let Err(why) = eligible(table, partition_by) {
        tracing::debug!(why, "overwrite through deltalake's writer");
        return Ok(None);
    }
    let state = table.snapshot()?;
    // deltalake's overwrite writes a metadata action when the plan's schema,
    // as Delta sees it, is not the table's; this commit has none.
    let plan_schema: StructType = plan.schema().as_arrow().try_into_kernel()?;
    if &plan_schema != state.schema().as_ref() {
        tracing::debug!("overwrite through deltalake's writer: the schema changes");
        return Ok(None);
    }

    let started = std::time::Instant::now();
    // The file schema deltalake's writer would use: the table's, as Arrow.
    let arrow: Arc<ArrowSchema> = Arc::new(state.schema().as_ref().try_into_arrow()?);
    let url = table.table_url().clone();
    let (adds, rows) = write_partitions(engine, plan, props, || PartWriter::new(&url, &arrow, || RecordBatchWriter::for_table(&*table))).await?;
    // Not rebased by deltalake (see `NO_REBASE`): after another writer's
    // commit, this one removes the newest version's files instead.
    let mut attempt = 0;
    loop {
        let state = table.snapshot()?.clone();
        if attempt > 0 && (eligible(table, partition_by).is_err() || &plan_schema != state.schema().as_ref()) {
            // Another writer changed the table's shape meanwhile.
            return Err(deltalake::DeltaTableError::Transaction { source: TransactionError::VersionAlreadyExists(state.version()) }.into());
        }
        let removes: Vec<Action> =
            state.snapshot().file_views(table.log_store().as_ref(), None).map_ok(|f| Action::Remove(f.remove_action(true))).try_collect().await?;
        let metrics = commit_metrics(adds.len(), removes.len(), rows, started);
        let mut actions = removes;
        actions.extend(adds.iter().cloned());
        pause_before_commit().await;
        let committed = CommitBuilder::from(CommitProperties::default().with_metadata([metrics]).with_max_retries(NO_REBASE))
            .with_actions(actions)
            .build(Some(&state), table.log_store(), DeltaOperation::Write { mode: SaveMode::Overwrite, partition_by: None, predicate: None })
            .await;
        match committed {
            Ok(commit) => {
                table.state = Some(commit.snapshot);
                return Ok(Some(rows));
            }
            Err(e) if depends == Rows::Rebuilt && attempt < CONFLICT_ATTEMPTS && lost_race(&e) => {
                attempt += 1;
                tracing::debug!(attempt, error = %e, "another writer committed meanwhile: replacing the newest version's files");
                table.update_state().await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// In debug builds, with `DP_TEST_PAUSE_COMMIT=<dir>`: writes `<dir>/paused`
/// and waits (up to 30 s) for `<dir>/go` before committing, so a test can
/// commit to the table in between (`tests/it/orchestrate.rs`).
pub(super) async fn pause_before_commit() {
    if !cfg!(debug_assertions) {
        return;
    }
    let Some(dir) = std::env::var_os("DP_TEST_PAUSE_COMMIT").map(std::path::PathBuf::from) else { return };
    let _ = std::fs::write(dir.join("paused"), b"");
    for _ in 0..3000 {
        if dir.join("go").exists() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// How many times a write that lost a commit race is made again on the
/// newest version (see [`NO_REBASE`]).
pub(super) const CONFLICT_ATTEMPTS: usize = 5;

/// Whether a commit failed because another writer committed first.
pub(super) fn lost_race(e: &deltalake::DeltaTableError) -> bool {
    matches!(
        e,
        deltalake::DeltaTableError::Transaction {
            source: TransactionError::VersionAlreadyExists(_) | TransactionError::MaxCommitAttempts(_) | TransactionError::CommitConflict(_)
        }
    )
}

/// Creates the table at `loc` with `plan`'s rows, one Parquet writer per
/// output partition, in one commit: the protocol and metadata actions
/// deltalake's create writes, with the new files added. `Ok(None)`: not
/// applicable (partitions asked for, or a schema Delta stores differently
/// or with column metadata of its own), nothing was written.
pub async fn create(
    engine: &Engine,
    table: &mut DeltaTable,
    plan: &LogicalPlan,
    partition_by: &[String],
    props: &WriterProperties,
    name: &str,
) -> anyhow::Result<Option<u64>> {
    if turned_off() || !partition_by.is_empty() {
        return Ok(None);
    }
    // As deltalake's write: the plan's schema normalized for Delta. Only a
    // plan that needs no cast for it is written here.
    let arrow = plan.schema().inner().clone();
    if !std::sync::Arc::ptr_eq(&normalize_for_delta(&arrow), &arrow) {
        tracing::debug!("create through deltalake's writer: types to cast");
        return Ok(None);
    }
    let schema: StructType = arrow.as_ref().try_into_kernel()?;
    if delta_column_metadata(&schema) {
        return Ok(None);
    }
    let url = table.table_url().clone();
    let started = std::time::Instant::now();
    let (adds, rows) =
        write_partitions(engine, plan, props, || PartWriter::new(&url, &arrow, || RecordBatchWriter::try_new(url.as_str(), arrow.clone(), None, None))).await?;
    let metrics = commit_metrics(adds.len(), 0, rows, started);
    let created = CreateBuilder::new()
        .with_log_store(table.log_store())
        .with_columns(schema.fields().cloned())
        .with_table_name(name)
        .with_actions(adds)
        .with_commit_properties(CommitProperties::default().with_metadata([metrics]))
        .await;
    let created = match created {
        Ok(t) => t,
        // Another writer created the table since this one found none: a lost
        // commit race, reported as deltalake's write reports one.
        Err(_) if table.log_store().is_delta_table_location().await.unwrap_or(false) => {
            return Err(deltalake::DeltaTableError::Transaction { source: TransactionError::VersionAlreadyExists(0) }.into());
        }
        Err(e) => return Err(e.into()),
    };
    *table = created;
    Ok(Some(rows))
}

/// Runs `plan`, each output partition into its own writer once it reaches
/// [`OWN_FILE_ROWS`]; the smaller partitions are written together, in
/// partition order, by one more writer. Each writer gets `props` with the
/// dictionary off for the columns its first rows show to be mostly
/// distinct (see [`super::dictionary`]). Returns the files' add actions and
/// the rows written.
pub(super) async fn write_partitions(
    engine: &Engine,
    plan: &LogicalPlan,
    props: &WriterProperties,
    new_writer: impl Fn() -> anyhow::Result<PartWriter>,
) -> anyhow::Result<(Vec<Action>, u64)> {
    let physical = DataFrame::new(engine.ctx.state(), plan.clone()).create_physical_plan().await?;
    let streams = execute_stream_partitioned(physical, engine.ctx.task_ctx())?;
    let mut writers = JoinSet::new();
    for (i, mut stream) in streams.into_iter().enumerate() {
        let mut writer = Some(new_writer()?);
        let props = props.clone();
        writers.spawn(async move {
            // Held back until the partition proves big enough for a file of its own.
            let (mut held, mut rows, mut own) = (vec![], 0u64, None::<PartWriter>);
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                rows += batch.num_rows() as u64;
                match own.as_mut() {
                    Some(w) => w.write(batch).await?,
                    None => {
                        held.push(batch);
                        if rows >= OWN_FILE_ROWS {
                            let props = sampled(&props, &held);
                            let w = own.insert(writer.take().expect("one writer per partition").with_writer_properties(props));
                            for b in held.drain(..) {
                                w.write(b).await?;
                            }
                        }
                    }
                }
            }
            let adds = match own.as_mut() {
                Some(w) => w.flush().await?,
                None => vec![],
            };
            anyhow::Ok((adds, (i, held), rows))
        });
    }
    let (mut adds, mut rows, mut small) = (vec![], 0u64, vec![]);
    while let Some(done) = writers.join_next().await {
        match done.map_err(|e| anyhow::anyhow!("a Parquet writer task failed: {e}")).and_then(|r| r) {
            Ok((a, held, r)) => {
                adds.extend(a.into_iter().map(Action::Add));
                small.push(held);
                rows += r;
            }
            Err(e) => {
                writers.abort_all();
                return Err(e);
            }
        }
    }
    small.sort_by_key(|(i, _)| *i);
    let small: Vec<RecordBatch> = small.into_iter().flat_map(|(_, h)| h).collect();
    if !small.is_empty() {
        let mut w = new_writer()?.with_writer_properties(sampled(props, &small));
        for b in small {
            w.write(b).await?;
        }
        adds.extend(w.flush().await?.into_iter().map(Action::Add));
    }
    Ok((adds, rows))
}

/// deltalake's retries for a commit that removes the files it read: none.
/// deltalake rebases a commit over a concurrent one its conflict checker
/// lets pass, and the checker ignores removes without data change: a
/// compaction (`dp maintain`) committed meanwhile would replace files this
/// commit removes by new ones it does not, and their rows would come back
/// beside the new ones (an overwrite's, or a merge's re-added files). So
/// such a commit is made again by dp on the newest version, its removes
/// (and a merge's matching) computed anew, [`CONFLICT_ATTEMPTS`] times; a
/// replacement whose rows were read from the table ([`Rows::ReadFromTable`])
/// and a microbatch batch are computed anew from the newest version.
pub(super) const NO_REBASE: usize = 0;

/// The writer of one file: dp's own ([`LocalFile`]) for a table on local
/// disk, deltalake's elsewhere.
#[allow(clippy::large_enum_variant)] // one per partition of a plan: a handful, moved rarely
pub(super) enum PartWriter {
    Local(LocalFile),
    Delta(RecordBatchWriter),
}

impl PartWriter {
    /// A [`LocalFile`] where it applies, else `delta()`'s writer.
    pub(super) fn new(
        url: &url::Url,
        schema: &Arc<ArrowSchema>,
        delta: impl FnOnce() -> deltalake::DeltaResult<RecordBatchWriter>,
    ) -> anyhow::Result<PartWriter> {
        Ok(match LocalFile::new(url, schema.clone()) {
            Some(local) => PartWriter::Local(local),
            None => PartWriter::Delta(delta()?),
        })
    }

    pub(super) fn with_writer_properties(self, props: WriterProperties) -> PartWriter {
        match self {
            PartWriter::Local(w) => PartWriter::Local(w.with_writer_properties(props)),
            PartWriter::Delta(w) => PartWriter::Delta(w.with_writer_properties(props)),
        }
    }

    pub(super) async fn write(&mut self, batch: RecordBatch) -> anyhow::Result<()> {
        match self {
            PartWriter::Local(w) => w.write(batch),
            PartWriter::Delta(w) => Ok(w.write(batch).await?),
        }
    }

    pub(super) async fn flush(&mut self) -> anyhow::Result<Vec<Add>> {
        match self {
            PartWriter::Local(w) => w.flush(),
            PartWriter::Delta(w) => Ok(w.flush().await?),
        }
    }
}

/// `props` as [`super::dictionary`] adapts them to the largest of `batches`.
fn sampled(props: &WriterProperties, batches: &[RecordBatch]) -> WriterProperties {
    match batches.iter().max_by_key(|b| b.num_rows()) {
        Some(b) => super::dictionary::for_sample(props, b),
        None => props.clone(),
    }
}

/// The commit's `operationMetrics`, named as deltalake's write names them
/// (`rows_of_last_commit` and `\history` read `num_added_rows`).
fn commit_metrics(added: usize, removed: usize, rows: u64, started: std::time::Instant) -> (String, serde_json::Value) {
    let metrics = serde_json::json!({
        "num_added_files": added,
        "num_removed_files": removed,
        "num_partitions": 0,
        "num_added_rows": rows,
        "execution_time_ms": started.elapsed().as_millis() as u64,
    });
    ("operationMetrics".to_string(), metrics)
}

fn turned_off() -> bool {
    crate::util::switched_off("DP_PARALLEL_WRITE")
}

/// Whether a writer that honours no table feature but `timestampNtz` and
/// `deletionVectors` may write a table with protocol `p`: legacy reader 1 /
/// writer ≤ 2, or reader 3 / writer 7 with those features. `appendOnly` and
/// `invariants` may be listed too (deltalake lists them when it upgrades a
/// legacy protocol): the callers refuse tables with properties (so
/// `delta.appendOnly` is off) or with Delta column metadata (so no column
/// has an invariant).
fn plain_protocol(p: &deltalake::kernel::Protocol) -> bool {
    let p = serde_json::to_value(p).unwrap_or_default();
    let version = |k: &str| p.get(k).and_then(|v| v.as_i64()).unwrap_or(i64::MAX);
    let known = |k: &str, extra: &[&str]| {
        p.get(k)
            .and_then(|v| v.as_array())
            .is_none_or(|fs| fs.iter().filter_map(|f| f.as_str()).all(|f| matches!(f, "timestampNtz" | "deletionVectors") || extra.contains(&f)))
    };
    let legacy = version("minReaderVersion") <= 1 && version("minWriterVersion") <= 2;
    legacy
        || (version("minReaderVersion") == 3
            && version("minWriterVersion") == 7
            && known("readerFeatures", &[])
            && known("writerFeatures", &["appendOnly", "invariants"]))
}

/// Whether a column carries Delta metadata of its own (invariants, generated
/// or identity columns, column mapping), which has rules a writer must apply.
fn delta_column_metadata(schema: &StructType) -> bool {
    serde_json::to_string(schema).map_or(true, |s| s.contains("\"delta."))
}
