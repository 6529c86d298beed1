//! Purging deleted rows (`dp maintain`): each data file whose deletion
//! vector deletes at least [`PURGE_SHARE`] of its rows is rewritten
//! without them, as Delta's `REORG TABLE ... APPLY (PURGE)` does, and one
//! commit (an OPTIMIZE, which changes no data) swaps the files.
//!
//! Merges by deletion vectors ([`super::dv_merge`]) leave the replaced rows
//! in their files. deltalake's compaction rewrites only files smaller than
//! its target size, and only in bins of two or more, so a large file (or a
//! table's only file) would keep its deleted rows: readers would go on
//! reading them, without Parquet predicate pushdown, which deltalake turns
//! off for files with vectors.
//!
//! A file is read in row groups, its deleted positions filtered out, and
//! the rest written by a writer of [`super::parallel`] (dp's local writer
//! on local disk) with the table's schema; as many files at a time as
//! there are cores. A merge committed in the meantime conflicts with the
//! commit (both remove the same file), so no deletion is lost: the purge
//! fails and the next one retries.

use anyhow::Context as _;
use datafusion::arrow::array::{ArrayRef, BooleanArray, RecordBatch};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::Schema as ArrowSchema;
use datafusion::parquet::file::properties::WriterProperties;
use deltalake::DeltaTable;
use deltalake::kernel::engine::arrow_conversion::TryIntoArrow as _;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, Add};
use deltalake::protocol::DeltaOperation;
use futures::TryStreamExt as _;
use std::sync::Arc;

use super::parallel::PartWriter;

/// The share of a file's rows its vector must delete for the file to be
/// rewritten: a table merged into every day is not rewritten every day.
pub const PURGE_SHARE: f64 = 0.05;

/// What a purge did (or, in a dry run, would do).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub files: usize,
    pub rows_dropped: u64,
}

/// Rewrites the files of `table` whose vectors delete at least
/// [`PURGE_SHARE`] of their rows (see the module docs); with `dry_run`,
/// only counts them. A table the parallel writers cannot write
/// (partitions, properties, other features) is left alone.
pub async fn purge(table: &mut DeltaTable, props: &WriterProperties, dry_run: bool) -> anyhow::Result<Purged> {
    let state = table.snapshot()?.clone();
    if super::parallel::plain_table(&state).is_err() {
        return Ok(Purged::default());
    }
    let files: Vec<_> = state.snapshot().file_views(table.log_store().as_ref(), None).try_collect().await?;
    let due: Vec<_> = files
        .iter()
        .filter(|f| match (f.deletion_vector_descriptor(), f.num_records()) {
            (Some(dv), Some(n)) if n > 0 => dv.cardinality as f64 >= PURGE_SHARE * n as f64,
            _ => false,
        })
        .collect();
    let purged = Purged { files: due.len(), rows_dropped: due.iter().filter_map(|f| f.deletion_vector_descriptor()).map(|dv| dv.cardinality as u64).sum() };
    if dry_run || due.is_empty() {
        return Ok(purged);
    }
    let store = table.log_store().object_store(None);
    let url = table.table_url().clone();
    let arrow: Arc<ArrowSchema> = Arc::new(state.schema().as_ref().try_into_arrow()?);
    // One writer per file, as many files at a time as there are cores.
    let permits = Arc::new(tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())));
    let mut tasks = tokio::task::JoinSet::new();
    for f in &due {
        let writer = PartWriter::new(&url, &arrow, || deltalake::writer::RecordBatchWriter::for_table(&*table))?.with_writer_properties(props.clone());
        let dv = f.deletion_vector_descriptor().expect("due files have vectors");
        let (store, url, arrow, permits) = (store.clone(), url.clone(), arrow.clone(), permits.clone());
        let (path, size) = (f.object_store_path(), f.size() as u64);
        tasks.spawn(async move {
            let _permit = permits.acquire().await?;
            rewrite(writer, &store, &url, &dv, &path, size, &arrow).await.with_context(|| format!("rewriting {path}"))
        });
    }
    let mut actions: Vec<Action> = due.iter().map(|f| Action::Remove(f.remove_action(false))).collect();
    while let Some(done) = tasks.join_next().await {
        let adds = done.map_err(|e| anyhow::anyhow!("a purge task failed: {e}"))??;
        actions.extend(adds.into_iter().map(|a| Action::Add(Add { data_change: false, ..a })));
    }
    let operation = DeltaOperation::Optimize { predicate: Some("deletion vectors purged".into()), target_size: 0 };
    let commit = CommitBuilder::from(CommitProperties::default()).with_actions(actions).build(Some(&state), table.log_store(), operation).await?;
    table.state = Some(commit.snapshot);
    Ok(purged)
}

/// The rows of the file at `path` that its vector `dv` does not delete,
/// written by `writer`; the files it wrote.
async fn rewrite(
    mut writer: PartWriter,
    store: &Arc<dyn object_store::ObjectStore>,
    url: &url::Url,
    dv: &deltalake::kernel::DeletionVectorDescriptor,
    path: &object_store::path::Path,
    size: u64,
    arrow: &Arc<ArrowSchema>,
) -> anyhow::Result<Vec<Add>> {
    let deleted = super::dv_merge::read_vector(store, url, dv).await.context("reading its deletion vector")?;
    let mut stream = super::dv_merge::parquet_file(store, path, size).await?.build()?;
    let mut at = 0u64;
    while let Some(batch) = stream.try_next().await? {
        let keep = BooleanArray::from_iter((0..batch.num_rows() as u64).map(|i| Some(!deleted.contains(at + i))));
        at += batch.num_rows() as u64;
        let batch = filter_record_batch(&batch, &keep)?;
        if batch.num_rows() > 0 {
            writer.write(conform(&batch, arrow)?).await?;
        }
    }
    writer.flush().await
}

/// `batch` with the table's columns, in its order and of its types
/// ([`super::dv_merge::conform`]).
fn conform(batch: &RecordBatch, schema: &Arc<ArrowSchema>) -> anyhow::Result<RecordBatch> {
    let cols: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| batch.column_by_name(f.name()).cloned().with_context(|| format!("no column {}", f.name())))
        .collect::<anyhow::Result<_>>()?;
    let cols = super::dv_merge::conform(&cols, schema.fields().iter().map(|f| f.data_type()))?;
    Ok(RecordBatch::try_new(schema.clone(), cols)?)
}
