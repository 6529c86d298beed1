//! `merge` of an incremental model by deletion vectors: the table's old
//! versions of the new rows are marked deleted where they lie, and the new
//! rows are added in a file of their own. No existing data file is
//! rewritten.
//!
//! deltalake's MERGE rewrites every file that holds a matching row. The
//! updates of an incremental run are few but scattered (a late status
//! change hits an order from any day of the year), so in practice it
//! rewrites the whole table: on the demo at scale 10 a merge of 21,824
//! rows into `fct_orders` (952,594 rows) took longer than rebuilding it.
//! Here a merge costs the new rows' write plus one read of the key
//! columns of the files whose statistics may hold a new key:
//!
//! 1. The new rows are written to new data files of the table, by the
//!    writers of [`super::parallel`], not yet committed.
//! 2. Their keys are read back into a set.
//! 3. Each current file whose key range (for an integer key: the log's
//!    statistics, then each row group's) may hold one of them has its key
//!    columns read; the positions of matching rows make its new deletion
//!    vector, with the rows its current one already deletes.
//! 4. One commit removes each touched file and adds it back with its new
//!    deletion vector (all of them in one `deletion_vector_<uuid>.bin`
//!    beside the data; a file left without rows is only removed), and adds
//!    the new files. Readers apply the vectors (deltalake's scan does, as
//!    Delta readers since protocol 3 do).
//!
//! The result is MERGE's with every column updated and every new row
//! inserted: a target row whose key matches is replaced by the source row,
//! the other source rows are inserted, and NULL keys match nothing. It is
//! used only where that is exactly what deltalake's MERGE would do, and
//! otherwise returns `None` for deltalake's MERGE to run. `delete+insert`
//! goes the same way ([`Strategy::DeleteInsert`]: every matching row is
//! deleted, every new row inserted, repeated keys allowed on both sides)
//! instead of rewriting the table; the table conditions below apply to it
//! too, and its fallback is that rewrite.
//!
//! - the new rows have the table's columns, in its order, or those followed
//!   by new ones (`on_schema_change='append_new_columns'`: the commit also
//!   holds the table's metadata with the new columns appended, nullable, so
//!   the older files read NULL there). A merge with `merge_update_columns` or
//!   `merge_exclude_columns` comes here with the other columns already
//!   taken from the matching rows of the table
//!   (`super::delta::kept_columns`), so replacing the rows is its update;
//! - the table is unpartitioned, its files are its own (not a shallow
//!   clone's), no column carries Delta metadata, and it has no table
//!   features or properties but `timestampNtz` and deletion vectors;
//! - no key appears twice among the new rows, or among the table's rows
//!   that match (MERGE updates each of those; here they would become one).
//!   The files written for the new rows are then deleted before MERGE runs.
//!
//! With the model's `incremental_predicates` ([`super::predicates`]) only
//! the table's rows that satisfy them match: the predicates' columns are
//! read beside the keys, and files whose Delta statistics rule them out are
//! not opened. Predicates that name the new rows go to deltalake's MERGE.
//! With no keys ([`Strategy::ReplaceWhere`]) the filter alone decides: a
//! microbatch window with incremental predicates, committed as a write
//! with that predicate, as Delta's replaceWhere is.
//!
//! The table gets the `deletionVectors` feature (reader 3 / writer 7) on
//! its first such merge, by a commit of its own that changes only the
//! protocol and `delta.enableDeletionVectors`. `config(deletion_vectors=
//! false)` on the model (or `DP_DELETION_VECTORS=off`) keeps a table
//! readable by Delta readers older than protocol 3 and merges it through
//! deltalake. A full refresh replaces the files and their vectors.
//! `dp maintain` rewrites files without their deleted rows
//! ([`super::purge`], and its compaction for small files),
//! and its vacuum deletes the vector files no version within the retention
//! reads ([`stale_vectors`]; deltalake's lite vacuum deletes only data files).
//!
//! A killed merge leaves the table at its previous version: the new files
//! and the vector file are not in the log until the one commit.
//!
//! When another writer commits between the matching and the commit, the
//! matching runs again on the newest version (the new rows' files stay),
//! a few times: deltalake would rebase the commit, and over a compaction
//! (whose removes carry no data change, which its conflict checker
//! ignores) that would re-add files whose rows the compaction already
//! copied ([`super::parallel::NO_REBASE`]).

use anyhow::Context as _;
use datafusion::arrow::array::{Array, ArrayRef, AsArray as _, BooleanArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type, Schema as ArrowSchema};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::logical_expr::LogicalPlan;
use datafusion::parquet::arrow::ProjectionMask;
#[allow(deprecated)] // parquet 59's object_store reader: still the one that takes a store and a path
use datafusion::parquet::arrow::async_reader::{ParquetObjectReader, ParquetRecordBatchStreamBuilder};
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::parquet::file::statistics::Statistics;
use deltalake::DeltaTable;
use deltalake::kernel::engine::arrow_conversion::{TryIntoArrow as _, TryIntoKernel as _};
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, Add, DeletionVectorDescriptor, StorageType, StructType};
use deltalake::protocol::{DeltaOperation, MergePredicate};
use futures::TryStreamExt as _;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt as _};
use roaring::RoaringTreemap;
use std::sync::Arc;

use super::predicates::{RowFilter, RowGroups};
use crate::engine::Engine;
use crate::project::nodes::Node;
use crate::util::FastSet;

/// The property that turns deletion vectors on for a table.
pub const ENABLE_PROPERTY: &str = "delta.enableDeletionVectors";
/// The magic number of a serialized `RoaringBitmapArray` (little-endian).
const PORTABLE_MAGIC: u32 = 1681511377;

/// What a merge by deletion vectors did.
pub struct Merged {
    pub inserted: u64,
    pub updated: u64,
    pub version: Option<i64>,
}

/// What happens to the table's rows whose key is among the new rows'.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Strategy {
    /// `merge`: each is replaced by the one new row with its key. A key
    /// repeated among the new rows, or matching two of the table's rows,
    /// sends the merge to deltalake's MERGE (see the module docs).
    Merge,
    /// `delete+insert`: all are deleted and every new row is inserted, as
    /// dbt's `delete ... where key in (new keys); insert ...`. Repeats are
    /// kept on both sides.
    DeleteInsert,
    /// No keys: every row of the table that satisfies the filter is deleted
    /// and every new row inserted (a microbatch window with incremental
    /// predicates, as dbt-duckdb's `delete ... where window and (p); insert`).
    ReplaceWhere,
}

/// Whether deletion vectors may be used for `node`'s table at all.
pub fn wanted(node: &Node) -> bool {
    !crate::util::switched_off("DP_DELETION_VECTORS") && node.config.get("deletion_vectors").and_then(serde_json::Value::as_bool) != Some(false)
}

/// Merges `plan`'s rows into `table` on `keys` (see the module docs); with
/// `filter` (the model's incremental predicates), only the table's rows
/// that satisfy it match, and files whose statistics rule it out are not
/// read. `Ok(None)`: not applicable, nothing was committed; deltalake's
/// MERGE (or, for `delete+insert`, a rewrite of the table) must run.
pub async fn merge(
    engine: &Engine,
    table: &mut DeltaTable,
    plan: &LogicalPlan,
    keys: &[String],
    filter: Option<Arc<RowFilter>>,
    props: &WriterProperties,
    strategy: Strategy,
) -> anyhow::Result<Option<Merged>> {
    let evolved = match shape(table, plan, keys) {
        Ok(evolved) => evolved,
        Err(why) => {
            tracing::debug!(why, "merge through deltalake's MERGE");
            return Ok(None);
        }
    };
    anyhow::ensure!(strategy != Strategy::ReplaceWhere || (keys.is_empty() && filter.is_some()), "a replace-where merge takes a filter and no keys");
    let store = table.log_store().object_store(None);
    let url = table.table_url().clone();
    let read_schema = table.snapshot()?.schema();
    // The files' schema: the table's, or the one the commit evolves it to.
    let arrow: Arc<ArrowSchema> = Arc::new(evolved.as_ref().unwrap_or(read_schema.as_ref()).try_into_arrow()?);

    // 1. The new rows, in files not yet in the log. None: no commit at all.
    let started = std::time::Instant::now();
    let (new_files, rows) = super::parallel::write_partitions(engine, plan, props, || {
        super::parallel::PartWriter::new(&url, &arrow, || match evolved {
            None => deltalake::writer::RecordBatchWriter::for_table(&*table),
            Some(_) => deltalake::writer::RecordBatchWriter::try_new(url.as_str(), arrow.clone(), None, None),
        })
    })
    .await?;
    let new_adds: Vec<Add> = new_files.into_iter().filter_map(|a| if let Action::Add(a) = a { Some(a) } else { None }).collect();
    // (A replace-where with no new rows still deletes.)
    if rows == 0 && strategy != Strategy::ReplaceWhere {
        return Ok(Some(Merged { inserted: 0, updated: 0, version: table.version().map(|v| v as i64) }));
    }
    let discard = |why: &'static str| {
        let store = store.clone();
        let paths: Vec<Path> = new_adds.iter().filter_map(|a| Path::parse(&a.path).ok()).collect();
        async move {
            tracing::debug!(why, "merge through deltalake's MERGE");
            for p in paths {
                let _ = store.delete(&p).await;
            }
            Ok(None)
        }
    };

    let written = started.elapsed();
    // 2. Their keys.
    let mut source = if strategy == Strategy::ReplaceWhere { KeySet::All } else { KeySet::new(&arrow, keys)? };
    for a in new_adds.iter().filter(|_| strategy != Strategy::ReplaceWhere) {
        let path = Path::parse(&a.path)?;
        let mut duplicate = false;
        read_keys(&store, &path, a.size as u64, keys, None, None, |_, cols| {
            duplicate |= source.insert_all(cols)?;
            Ok(())
        })
        .await?;
        if duplicate && strategy == Strategy::Merge {
            return discard("a key appears twice among the new rows").await;
        }
    }

    if !has_deletion_vectors(table) {
        let upgrade = std::collections::HashMap::from([(ENABLE_PROPERTY.to_string(), "true".to_string())]);
        *table = table.clone().set_tbl_properties().with_properties(upgrade).await?;
        if !has_deletion_vectors(table) {
            return discard("the table did not take the deletionVectors feature").await;
        }
    }
    let keyed = started.elapsed();
    let range = source.int_range();
    // The key columns, then the other columns the predicates read.
    let mut columns = keys.to_vec();
    columns.extend(filter.iter().flat_map(|f| f.columns()).filter(|c| !keys.contains(c)).cloned());
    let picked: Arc<Vec<usize>> = Arc::new(filter.iter().flat_map(|f| f.columns()).map(|c| columns.iter().position(|k| k == c).unwrap_or_default()).collect());
    let source = Arc::new(source);
    // Steps 3 and 4 run again on the newest version when another writer
    // commits in the meantime (see the commit below).
    let mut attempt = 0;
    loop {
        let state = table.snapshot()?.clone();
        if state.schema() != read_schema {
            // Another writer changed the columns since the rows were written.
            let version = state.version();
            return Err(
                deltalake::DeltaTableError::Transaction { source: deltalake::kernel::transaction::TransactionError::VersionAlreadyExists(version) }.into()
            );
        }
        // 3. The rows they replace.
        let files: Vec<_> = state.snapshot().file_views(table.log_store().as_ref(), None).try_collect().await?;
        // Files whose statistics show no row satisfies the predicates.
        let ruled_out: FastSet<String> = match &filter {
            Some(f) => {
                state.snapshot().log_data().iter().zip(f.files(state.snapshot())).filter(|(_, keep)| !keep).map(|(v, _)| v.path().into_owned()).collect()
            }
            None => FastSet::default(),
        };
        let mut tasks = tokio::task::JoinSet::new();
        for (i, f) in files.iter().enumerate() {
            if let (Some((lo, hi)), [key]) = (range, keys)
                && !log_range_overlaps(f.stats().as_deref(), key, lo, hi)
            {
                continue; // the log's statistics hold no key of the new rows: the file is not opened
            }
            if ruled_out.contains(f.path().as_ref()) {
                continue;
            }
            let (store, source, columns, picked, filter, n) = (store.clone(), source.clone(), columns.clone(), picked.clone(), filter.clone(), keys.len());
            let (path, size, old, url) = (f.object_store_path(), f.size() as u64, f.deletion_vector_descriptor(), url.clone());
            tasks.spawn(async move {
                // Rows the file's vector already deletes are not the table's: they match nothing.
                let deleted = match old {
                    Some(dv) => read_vector(&store, &url, &dv).await.with_context(|| format!("reading the deletion vector of {path}"))?,
                    None => RoaringTreemap::new(),
                };
                let mut hits = RoaringTreemap::new();
                // Only a merge checks that no key matches twice.
                let mut matched = (strategy == Strategy::Merge).then(Vec::new);
                read_keys(&store, &path, size, &columns, range, filter.as_deref(), |start, cols| {
                    let satisfied = match &filter {
                        Some(f) => Some(f.rows(&picked.iter().map(|i| cols[*i].clone()).collect::<Vec<_>>())?),
                        None => None,
                    };
                    source.matches(&cols[..n], start, &deleted, satisfied.as_ref(), &mut hits, matched.as_mut())
                })
                .await?;
                let replaced = hits.len();
                anyhow::Ok((!hits.is_empty()).then_some((i, hits | deleted, matched.unwrap_or_default(), replaced)))
            });
        }
        // Per touched file: its position, its new vector (old and new deletions),
        // the keys matched (merge only), the rows it newly deletes.
        let mut found: Vec<(usize, RoaringTreemap, Vec<Vec<u8>>, u64)> = vec![];
        while let Some(done) = tasks.join_next().await {
            found.extend(done.map_err(|e| anyhow::anyhow!("reading a data file's keys: {e}"))??);
        }
        found.sort_by_key(|(i, ..)| *i);
        let positions = found.iter().map(|(.., replaced)| *replaced).sum::<u64>();
        let distinct: FastSet<&[u8]> = found.iter().flat_map(|(_, _, m, _)| m.iter().map(Vec::as_slice)).collect();
        if positions != distinct.len() as u64 && strategy == Strategy::Merge {
            return discard("a key of the new rows matches more than one row of the table").await;
        }

        if found.is_empty() && new_adds.is_empty() {
            return Ok(Some(Merged { inserted: 0, updated: 0, version: table.version().map(|v| v as i64) })); // nothing to commit
        }
        let matched = started.elapsed();
        // 4. One vector file and one commit. A file left without rows is only removed.
        let mut actions = vec![];
        if let Some(schema) = &evolved {
            use deltalake::kernel::MetadataExt as _;
            actions.push(Action::Metadata(state.metadata().clone().with_schema(schema)?));
        }
        let uuid = uuid::Uuid::new_v4();
        let (mut vectors, mut at, mut with_vector) = (vec![1u8], 1usize, 0usize); // the file's format version
        for (i, deleted, ..) in &found {
            let f = &files[*i];
            actions.push(Action::Remove(f.remove_action(true)));
            if f.num_records().is_some_and(|n| deleted.len() >= n as u64) {
                continue;
            }
            let (offset, size) = append_vector(&mut vectors, &mut at, deleted)?;
            #[allow(deprecated)] // the file's add action, with its new vector
            let mut add = f.add_action();
            add.data_change = true;
            add.deletion_vector = Some(DeletionVectorDescriptor {
                storage_type: StorageType::UuidRelativePath,
                path_or_inline_dv: z85::encode(uuid.as_bytes()),
                offset: Some(offset),
                size_in_bytes: size,
                cardinality: deleted.len() as i64,
            });
            actions.push(Action::Add(add));
            with_vector += 1;
        }
        let vector_file = Path::from(format!("deletion_vector_{uuid}.bin"));
        if with_vector > 0 {
            store.put(&vector_file, vectors.into()).await?;
        }
        // For delete+insert, "updated" is the rows deleted and every new row is inserted.
        let updated = positions;
        let inserted = if strategy == Strategy::Merge { rows - updated } else { rows };
        let files_added = new_adds.len();
        actions.extend(new_adds.iter().cloned().map(Action::Add));
        let metrics = serde_json::json!({
            "num_source_rows": rows,
            "num_target_rows_inserted": inserted,
            "num_target_rows_updated": updated,
            "num_target_rows_deleted": 0,
            "num_target_files_added": files_added,
            "num_target_files_removed": found.len() - with_vector,
            "num_deletion_vectors_added": with_vector,
        });
        let mut predicate = keys.iter().map(|k| format!("target.{k} = source.{k}", k = crate::util::ident::quote_ident(k))).collect::<Vec<_>>();
        predicate.extend(filter.iter().map(|f| f.sql.clone()));
        let predicate = predicate.join(" AND ");
        let all = |action: &str| vec![MergePredicate { action_type: action.into(), predicate: None }];
        let operation = match strategy {
            // Delta's replaceWhere is recorded as a write with its predicate.
            Strategy::ReplaceWhere => DeltaOperation::Write { mode: deltalake::protocol::SaveMode::Overwrite, partition_by: None, predicate: Some(predicate) },
            _ => DeltaOperation::Merge {
                predicate: None,
                merge_predicate: Some(predicate),
                matched_predicates: all(if strategy == Strategy::Merge { "update" } else { "delete" }),
                not_matched_predicates: all("insert"),
                not_matched_by_source_predicates: vec![],
            },
        };
        super::parallel::pause_before_commit().await;
        // Not rebased by deltalake over a commit made since `state`
        // (`parallel::NO_REBASE`): the rows are matched again on the newest
        // version instead, a few times.
        let committed = CommitBuilder::from(
            CommitProperties::default().with_metadata([("operationMetrics".to_string(), metrics)]).with_max_retries(super::parallel::NO_REBASE),
        )
        .with_actions(actions)
        .build(Some(&state), table.log_store(), operation)
        .await;
        let commit = match committed {
            Ok(c) => c,
            Err(e) if attempt < super::parallel::CONFLICT_ATTEMPTS && super::parallel::lost_race(&e) => {
                attempt += 1;
                tracing::debug!(attempt, error = %e, "another writer committed meanwhile: matching again on the newest version");
                if with_vector > 0 {
                    let _ = store.delete(&vector_file).await;
                }
                table.update_state().await?;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        table.state = Some(commit.snapshot);
        tracing::debug!(
            rows,
            updated,
            files = files.len(),
            vectors = with_vector,
            write_ms = written.as_millis() as u64,
            keys_ms = (keyed - written).as_millis() as u64,
            match_ms = (matched - keyed).as_millis() as u64,
            commit_ms = (started.elapsed() - matched).as_millis() as u64,
            "merged by deletion vectors"
        );
        return Ok(Some(Merged { inserted, updated, version: table.version().map(|v| v as i64) }));
    }
}

/// Why the table or the plan rules a merge by deletion vectors out; else
/// the schema the commit evolves the table to, if the plan's columns are
/// the table's followed by new ones (nullable in the table: its older
/// files hold none of them).
fn shape(table: &DeltaTable, plan: &LogicalPlan, keys: &[String]) -> Result<Option<StructType>, &'static str> {
    let Ok(state) = table.snapshot() else { return Err("table not loaded") };
    super::parallel::plain_table(state)?;
    // The same columns and types, in the same order, maybe with new ones
    // after them; a NULL in a column the table declares NOT NULL is refused
    // by the writer, as by deltalake's.
    let Ok(plan_schema): Result<StructType, _> = plan.schema().as_arrow().try_into_kernel() else { return Err("the columns change") };
    let table_schema = state.schema();
    let n = table_schema.fields().len();
    let same = plan_schema.fields().len() >= n
        && plan_schema.fields().zip(table_schema.fields()).all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type())
        && plan_schema.fields().skip(n).all(|f| table_schema.field(f.name()).is_none());
    if !same {
        return Err("the columns change");
    }
    let arrow = plan.schema().as_arrow();
    for k in keys {
        match arrow.field_with_name(k) {
            Ok(f) if f.data_type().is_primitive() || matches!(f.data_type(), DataType::Utf8 | DataType::LargeUtf8 | DataType::Boolean) => {}
            _ => return Err("a key column is missing or not a primitive"),
        }
    }
    if state.log_data().iter().any(|f| url::Url::parse(&f.path()).is_ok()) {
        return Err("files of another table (a shallow clone)");
    }
    if plan_schema.fields().len() == n {
        return Ok(None);
    }
    let added = plan_schema.fields().skip(n).map(|f| {
        let mut f = f.clone();
        f.nullable = true;
        f
    });
    StructType::try_new(table_schema.fields().cloned().chain(added)).map(Some).map_err(|_| "the columns change")
}

/// Whether the table's protocol and properties have deletion vectors on.
fn has_deletion_vectors(table: &DeltaTable) -> bool {
    let Ok(state) = table.snapshot() else { return false };
    let p = serde_json::to_value(state.protocol()).unwrap_or_default();
    let listed = |k: &str| p.get(k).and_then(|v| v.as_array()).is_some_and(|fs| fs.iter().any(|f| f.as_str() == Some("deletionVectors")));
    listed("readerFeatures") && listed("writerFeatures") && state.metadata().configuration().get(ENABLE_PROPERTY).is_some_and(|v| v == "true")
}

/// The key values of a set of rows: `i64` for one integer column, else
/// arrow's row format.
enum KeySet {
    /// No keys: every row matches (as the filter allows).
    All,
    Int(FastSet<i64>),
    /// The converter, the key columns' types (a file's columns are cast to them), the keys.
    Rows(RowConverter, Vec<DataType>, FastSet<Box<[u8]>>),
}

impl KeySet {
    fn new(schema: &ArrowSchema, keys: &[String]) -> anyhow::Result<KeySet> {
        let types: Vec<DataType> = keys.iter().map(|k| Ok(schema.field_with_name(k)?.data_type().clone())).collect::<anyhow::Result<_>>()?;
        Ok(match types.as_slice() {
            [t] if t.is_integer() && !matches!(t, DataType::UInt64) => KeySet::Int(FastSet::default()),
            _ => KeySet::Rows(RowConverter::new(types.iter().cloned().map(SortField::new).collect())?, types, FastSet::default()),
        })
    }

    /// Adds the non-NULL keys of `cols`; `true` if one was there already.
    fn insert_all(&mut self, cols: &[ArrayRef]) -> anyhow::Result<bool> {
        let mut dup = false;
        match self {
            KeySet::All => {}
            KeySet::Int(set) => {
                let a = cast(&cols[0], &DataType::Int64)?;
                for v in a.as_primitive::<Int64Type>().iter().flatten() {
                    dup |= !set.insert(v);
                }
            }
            KeySet::Rows(conv, types, set) => {
                let rows = conv.convert_columns(&conform(cols, types.iter())?)?;
                for (i, r) in rows.iter().enumerate() {
                    if cols.iter().all(|c| c.is_valid(i)) {
                        dup |= !set.insert(r.as_ref().into());
                    }
                }
            }
        }
        Ok(dup)
    }

    /// Marks in `hits` the positions (from `start`) of the rows of `cols`
    /// whose key is in the set, but those in `deleted` and those `satisfied`
    /// leaves out, and pushes each match's key (encoded) to `matched`.
    fn matches(
        &self,
        cols: &[ArrayRef],
        start: u64,
        deleted: &RoaringTreemap,
        satisfied: Option<&BooleanArray>,
        hits: &mut RoaringTreemap,
        mut matched: Option<&mut Vec<Vec<u8>>>,
    ) -> anyhow::Result<()> {
        let kept = |i: usize| !deleted.contains(start + i as u64) && satisfied.is_none_or(|s| s.value(i));
        let mut hit = |i: usize, key: &[u8]| {
            hits.insert(start + i as u64);
            if let Some(m) = matched.as_mut() {
                m.push(key.to_vec());
            }
        };
        match self {
            KeySet::All => {
                let n = satisfied.context("matching every row needs a filter")?.len();
                (0..n).filter(|i| kept(*i)).for_each(|i| hit(i, &[]));
            }
            KeySet::Int(set) => {
                let a = cast(&cols[0], &DataType::Int64)?;
                for (i, v) in a.as_primitive::<Int64Type>().iter().enumerate() {
                    if let Some(v) = v.filter(|v| set.contains(v) && kept(i)) {
                        hit(i, &v.to_le_bytes());
                    }
                }
            }
            KeySet::Rows(conv, types, set) => {
                let rows = conv.convert_columns(&conform(cols, types.iter())?)?;
                for (i, r) in rows.iter().enumerate() {
                    if set.contains(r.as_ref()) && cols.iter().all(|c| c.is_valid(i)) && kept(i) {
                        hit(i, r.as_ref());
                    }
                }
            }
        }
        Ok(())
    }

    /// The smallest and largest key of an integer key set.
    fn int_range(&self) -> Option<(i64, i64)> {
        match self {
            KeySet::Int(set) => Some((*set.iter().min()?, *set.iter().max()?)),
            KeySet::All | KeySet::Rows(..) => None,
        }
    }
}

/// `cols` cast to `types` (the table's): a file's strings may read as
/// `Utf8View` or `LargeUtf8`, its timestamps with another zone annotation,
/// depending on the writer that wrote it.
pub(super) fn conform<'a>(cols: &[ArrayRef], types: impl IntoIterator<Item = &'a DataType>) -> Result<Vec<ArrayRef>, ArrowError> {
    cols.iter().zip(types).map(|(c, t)| if c.data_type() == t { Ok(c.clone()) } else { cast(c, t) }).collect()
}

/// A reader of the Parquet file at `path` of `store` (`size` bytes), in
/// batches of 65,536 rows.
#[allow(deprecated)] // parquet 59's object_store reader: still the one that takes a store and a path
pub(super) async fn parquet_file(store: &Arc<dyn ObjectStore>, path: &Path, size: u64) -> anyhow::Result<ParquetRecordBatchStreamBuilder<ParquetObjectReader>> {
    let reader = ParquetObjectReader::new(store.clone(), path.clone()).with_file_size(size);
    Ok(ParquetRecordBatchStreamBuilder::new(reader).await.with_context(|| format!("reading {path}"))?.with_batch_size(65_536))
}

/// Reads the `keys` columns of the Parquet file at `path` (the key columns,
/// then any the predicates read), calling `f` with each batch's first row
/// position in the file. Row groups are skipped whose statistics show no
/// integer key (the first column) within `range`, or no row that can
/// satisfy `filter`.
async fn read_keys(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    size: u64,
    keys: &[String],
    range: Option<(i64, i64)>,
    filter: Option<&RowFilter>,
    mut f: impl FnMut(u64, &[ArrayRef]) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let builder = parquet_file(store, path, size).await?;
    let indices: Vec<usize> =
        keys.iter().map(|k| builder.schema().index_of(k).with_context(|| format!("{path} has no column {k}"))).collect::<anyhow::Result<_>>()?;
    let meta = builder.metadata().clone();
    let leaf = |name: &str| meta.file_metadata().schema_descr().columns().iter().position(|c| c.path().string() == name);
    let key_leaf = if range.is_some() { leaf(&keys[0]) } else { None };
    let satisfiable = match filter.and_then(|f| Some((f, f.table_schema()?))) {
        Some((f, table)) => {
            let (file, parquet) = (builder.schema().clone(), builder.parquet_schema().clone());
            f.files(&RowGroups { table, file: &file, parquet: &parquet, groups: meta.row_groups() })
        }
        None => vec![true; meta.num_row_groups()],
    };
    let mut starts = vec![];
    let mut selected = vec![];
    let mut at = 0u64;
    for (i, rg) in meta.row_groups().iter().enumerate() {
        let keep = satisfiable[i]
            && match (range, key_leaf.map(|c| rg.column(c).statistics())) {
                (Some((lo, hi)), Some(Some(stats))) => match int_bounds(stats) {
                    Some((min, max)) => max >= lo && min <= hi,
                    None => true,
                },
                _ => true,
            };
        if keep {
            selected.push(i);
            starts.push(at);
        }
        at += rg.num_rows() as u64;
    }
    if selected.is_empty() {
        return Ok(());
    }
    // Flat schemas: an Arrow field's index is its Parquet root column's.
    let mask = ProjectionMask::roots(builder.parquet_schema(), indices);
    let order: Vec<String> = keys.to_vec();
    let mut stream = builder.with_projection(mask).with_row_groups(selected).build()?;
    let mut groups = starts.into_iter();
    while let Some(group) = stream.next_row_group().await? {
        let mut pos = groups.next().context("more row groups than selected")?;
        for batch in group {
            let batch: RecordBatch = batch?;
            let cols: Vec<ArrayRef> = order.iter().map(|k| batch.column_by_name(k).cloned().context("key column")).collect::<anyhow::Result<_>>()?;
            f(pos, &cols)?;
            pos += batch.num_rows() as u64;
        }
    }
    Ok(())
}

/// Whether a file whose `add` statistics are `stats` may hold an integer
/// `key` within `lo..=hi`; `true` when the statistics do not say.
fn log_range_overlaps(stats: Option<&str>, key: &str, lo: i64, hi: i64) -> bool {
    let Some(v) = stats.and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok()) else { return true };
    let bound = |side: &str| v.get(side).and_then(|m| m.get(key)).and_then(serde_json::Value::as_i64);
    match (bound("minValues"), bound("maxValues")) {
        (Some(min), Some(max)) => max >= lo && min <= hi,
        _ => true,
    }
}

/// An integer column chunk's bounds, from its statistics.
fn int_bounds(stats: &Statistics) -> Option<(i64, i64)> {
    match stats {
        Statistics::Int32(s) => Some((*s.min_opt()? as i64, *s.max_opt()? as i64)),
        Statistics::Int64(s) => Some((*s.min_opt()?, *s.max_opt()?)),
        _ => None,
    }
}

/// Appends one vector to a deletion vector file's bytes (size, magic,
/// bitmap, CRC, as the Delta protocol lays them out); its offset and size.
fn append_vector(out: &mut Vec<u8>, at: &mut usize, deleted: &RoaringTreemap) -> anyhow::Result<(i32, i32)> {
    let mut bitmap = vec![];
    deleted.serialize_into(&mut bitmap)?;
    let size = i32::try_from(bitmap.len() + 4).context("deletion vector too large")?;
    let offset = i32::try_from(*at).context("deletion vector file too large")?;
    out.extend_from_slice(&(size as u32).to_be_bytes());
    let mut body = PORTABLE_MAGIC.to_le_bytes().to_vec();
    body.extend_from_slice(&bitmap);
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
    *at += 4 + body.len() + 4;
    Ok((offset, size))
}

/// Where a persisted deletion vector's file is, relative to the table's
/// root for `u` (`<prefix>/deletion_vector_<uuid>.bin`), as given for `p`;
/// `None` for an inline one.
fn vector_file(dv: &DeletionVectorDescriptor) -> anyhow::Result<Option<String>> {
    Ok(match dv.storage_type {
        StorageType::Inline => None,
        StorageType::UuidRelativePath => {
            let encoded = &dv.path_or_inline_dv;
            anyhow::ensure!(encoded.len() >= 20, "deletion vector path {encoded} is too short");
            let (prefix, id) = encoded.split_at(encoded.len() - 20);
            let uuid = uuid::Uuid::from_slice(&z85::decode(id).map_err(|e| anyhow::anyhow!("deletion vector id {id}: {e:?}"))?)?;
            let name = format!("deletion_vector_{uuid}.bin");
            Some(if prefix.is_empty() { name } else { format!("{prefix}/{name}") })
        }
        StorageType::AbsolutePath => Some(dv.path_or_inline_dv.clone()),
    })
}

/// `dv` of a file of the table at `table`, as a table elsewhere (a shallow
/// clone) must name it: a `u` vector becomes `p`, its file's absolute URL.
pub fn absolute(dv: DeletionVectorDescriptor, table: &url::Url) -> anyhow::Result<DeletionVectorDescriptor> {
    if dv.storage_type != StorageType::UuidRelativePath {
        return Ok(dv);
    }
    let rel = vector_file(&dv)?.expect("a persisted vector has a file");
    let base = if table.path().ends_with('/') { table.clone() } else { url::Url::parse(&format!("{table}/"))? };
    Ok(DeletionVectorDescriptor { storage_type: StorageType::AbsolutePath, path_or_inline_dv: base.join(&rel)?.to_string(), ..dv })
}

/// The rows a file's current deletion vector deletes.
pub(super) async fn read_vector(store: &Arc<dyn ObjectStore>, table: &url::Url, dv: &DeletionVectorDescriptor) -> anyhow::Result<RoaringTreemap> {
    let bitmap_of = |body: &[u8]| -> anyhow::Result<RoaringTreemap> {
        anyhow::ensure!(body.len() >= 4 && u32::from_le_bytes(body[..4].try_into()?) == PORTABLE_MAGIC, "not a RoaringBitmapArray");
        Ok(RoaringTreemap::deserialize_from(&body[4..])?)
    };
    let rel = match vector_file(dv)? {
        None => {
            let raw = z85::decode(&dv.path_or_inline_dv).map_err(|e| anyhow::anyhow!("inline deletion vector: {e:?}"))?;
            return bitmap_of(&raw[..(dv.size_in_bytes as usize).min(raw.len())]);
        }
        Some(rel) if dv.storage_type == StorageType::AbsolutePath => {
            let url = url::Url::parse(&rel)?;
            url.path().strip_prefix(table.path()).context("a deletion vector outside the table")?.trim_start_matches('/').to_string()
        }
        Some(rel) => rel,
    };
    let bytes = store.get(&Path::parse(&rel)?).await?.bytes().await?;
    let start = dv.offset.unwrap_or(1) as usize;
    let end = start + 4 + dv.size_in_bytes as usize;
    anyhow::ensure!(end <= bytes.len(), "deletion vector beyond the end of its file");
    bitmap_of(&bytes[start + 4..end])
}

/// The deletion vector files at the root of `table` that no version within
/// `retention` reads: not named by a file of the current version, nor of the
/// version that was current at the cutoff (versions after it name only
/// vectors written after it), and written before the cutoff. deltalake's
/// vacuum (lite) deletes only data files. Each comes with its size.
pub async fn stale_vectors(table: &DeltaTable, retention: chrono::Duration) -> anyhow::Result<Vec<(Path, u64)>> {
    if !has_deletion_vectors(table) {
        return Ok(vec![]); // vectors are written only once the feature is on: no listing
    }
    let cutoff = chrono::Utc::now() - retention;
    let store = table.log_store().object_store(None);
    let listed = store.list_with_delimiter(None).await?;
    let candidates: Vec<_> = listed
        .objects
        .into_iter()
        .filter(|o| o.location.filename().is_some_and(|n| n.starts_with("deletion_vector_") && n.ends_with(".bin")) && o.last_modified < cutoff)
        .collect();
    if candidates.is_empty() {
        return Ok(vec![]);
    }
    let mut named = FastSet::default();
    let mut then = table.clone();
    let versions = match then.load_with_datetime(cutoff).await {
        Ok(()) => vec![table, &then],
        // No version as old as the cutoff: every vector may still be read.
        Err(_) => return Ok(vec![]),
    };
    for t in versions {
        let files: Vec<_> = t.snapshot()?.snapshot().file_views(t.log_store().as_ref(), None).try_collect().await?;
        for f in files {
            if let Some(dv) = f.deletion_vector_descriptor()
                && dv.storage_type == StorageType::UuidRelativePath
                && let Some(rel) = vector_file(&dv)?
            {
                named.insert(rel);
            }
        }
    }
    Ok(candidates.into_iter().filter(|o| !named.contains(o.location.as_ref())).map(|o| (o.location, o.size)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int32Array, StringArray};
    use datafusion::arrow::datatypes::Field;
    use object_store::memory::InMemory;

    fn table() -> url::Url {
        url::Url::parse("memory:///wh/main/t").unwrap()
    }

    /// Two vectors in one file read back as written; a second vector's
    /// offset is past the first's size, magic and CRC; the CRC is Delta's
    /// (CRC-32 of the magic and bitmap, big-endian).
    #[tokio::test]
    async fn vectors_in_one_file_read_back() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let a: RoaringTreemap = [0u64, 5, 1 << 33].into_iter().collect();
        let b: RoaringTreemap = (10u64..20).collect();
        let (mut bytes, mut at) = (vec![1u8], 1usize);
        let (oa, sa) = append_vector(&mut bytes, &mut at, &a).unwrap();
        let (ob, sb) = append_vector(&mut bytes, &mut at, &b).unwrap();
        assert_eq!(oa, 1);
        assert_eq!(ob as usize, 1 + 4 + sa as usize + 4);
        assert_eq!(at, bytes.len());
        let body = &bytes[5..5 + sa as usize];
        assert_eq!(&bytes[5 + sa as usize..9 + sa as usize], crc32fast::hash(body).to_be_bytes());
        let uuid = uuid::Uuid::new_v4();
        store.put(&Path::from(format!("ab/deletion_vector_{uuid}.bin")), bytes.clone().into()).await.unwrap();
        let dv = |offset, size, card| DeletionVectorDescriptor {
            storage_type: StorageType::UuidRelativePath,
            path_or_inline_dv: format!("ab{}", z85::encode(uuid.as_bytes())),
            offset: Some(offset),
            size_in_bytes: size,
            cardinality: card,
        };
        assert_eq!(read_vector(&store, &table(), &dv(oa, sa, 3)).await.unwrap(), a);
        assert_eq!(read_vector(&store, &table(), &dv(ob, sb, 10)).await.unwrap(), b);
        // A clone names the same file by URL, and reads the same rows.
        let abs = absolute(dv(ob, sb, 10), &table()).unwrap();
        assert_eq!(abs.storage_type, StorageType::AbsolutePath);
        assert_eq!(abs.path_or_inline_dv, format!("memory:///wh/main/t/ab/deletion_vector_{uuid}.bin"));
        assert_eq!(read_vector(&store, &table(), &abs).await.unwrap(), b);
        // A size that runs past the file is an error, not a panic.
        assert!(read_vector(&store, &table(), &dv(ob, sb + 100, 10)).await.is_err());
    }

    #[test]
    fn a_file_is_skipped_only_when_its_log_statistics_miss_the_keys() {
        let stats = r#"{"numRecords":3,"minValues":{"id":10,"v":"a"},"maxValues":{"id":20,"v":"c"}}"#;
        assert!(log_range_overlaps(Some(stats), "id", 15, 30));
        assert!(log_range_overlaps(Some(stats), "id", 0, 10));
        assert!(!log_range_overlaps(Some(stats), "id", 21, 30));
        assert!(!log_range_overlaps(Some(stats), "id", 0, 9));
        // No bound for the column (or no statistics at all): the file is read.
        assert!(log_range_overlaps(Some(stats), "other", 21, 30));
        assert!(log_range_overlaps(None, "id", 21, 30));
        assert!(log_range_overlaps(Some("not json"), "id", 21, 30));
    }

    /// Keys: NULLs never enter the set nor match; a repeated key is
    /// reported; rows already deleted do not match; composite keys go
    /// through the row format.
    #[test]
    fn key_sets_match_as_merge_does() {
        let int = ArrowSchema::new(vec![Field::new("id", DataType::Int32, true)]);
        let mut set = KeySet::new(&int, &["id".into()]).unwrap();
        let col = |v: Vec<Option<i32>>| -> Vec<ArrayRef> { vec![Arc::new(Int32Array::from(v))] };
        assert!(!set.insert_all(&col(vec![Some(1), None, Some(3), None])).unwrap(), "NULLs are not duplicates");
        assert!(set.insert_all(&col(vec![Some(3)])).unwrap());
        assert_eq!(set.int_range(), Some((1, 3)));
        let deleted: RoaringTreemap = [101u64].into_iter().collect();
        let (mut hits, mut matched) = (RoaringTreemap::new(), vec![]);
        set.matches(&col(vec![Some(3), Some(1), None, Some(2)]), 100, &deleted, None, &mut hits, Some(&mut matched)).unwrap();
        assert_eq!(hits.iter().collect::<Vec<_>>(), [100]);
        assert_eq!(matched, [3i64.to_le_bytes().to_vec()]);
        // Rows the incremental predicates leave out do not match.
        let (mut hits, mut matched) = (RoaringTreemap::new(), vec![]);
        let satisfied = BooleanArray::from(vec![false, true, true]);
        set.matches(&col(vec![Some(3), Some(1), Some(1)]), 0, &deleted, Some(&satisfied), &mut hits, Some(&mut matched)).unwrap();
        assert_eq!(hits.iter().collect::<Vec<_>>(), [1, 2]);
        // With no keys, every row the filter keeps matches (but deleted ones).
        let (mut hits, mut matched) = (RoaringTreemap::new(), vec![]);
        KeySet::All.matches(&[], 100, &deleted, Some(&satisfied), &mut hits, Some(&mut matched)).unwrap();
        assert_eq!(hits.iter().collect::<Vec<_>>(), [102]);
        assert!(KeySet::All.matches(&[], 0, &deleted, None, &mut hits, None).is_err(), "no keys and no filter");

        let two = ArrowSchema::new(vec![Field::new("a", DataType::Int32, true), Field::new("b", DataType::Utf8, true)]);
        let mut set = KeySet::new(&two, &["a".into(), "b".into()]).unwrap();
        let cols = |a: Vec<Option<i32>>, b: Vec<Option<&str>>| -> Vec<ArrayRef> { vec![Arc::new(Int32Array::from(a)), Arc::new(StringArray::from(b))] };
        assert!(!set.insert_all(&cols(vec![Some(1), Some(1), None], vec![Some("x"), Some("y"), Some("x")])).unwrap());
        assert!(set.int_range().is_none());
        let (mut hits, mut matched) = (RoaringTreemap::new(), vec![]);
        set.matches(
            &cols(vec![Some(1), Some(1), None, Some(2)], vec![Some("y"), Some("z"), Some("x"), Some("x")]),
            0,
            &RoaringTreemap::new(),
            None,
            &mut hits,
            Some(&mut matched),
        )
        .unwrap();
        assert_eq!(hits.iter().collect::<Vec<_>>(), [0], "(NULL, 'x') matches nothing");
        // A file whose strings read as views matches the same keys.
        let viewed: Vec<ArrayRef> = vec![Arc::new(Int32Array::from(vec![Some(1)])), Arc::new(datafusion::arrow::array::StringViewArray::from(vec![Some("x")]))];
        let (mut hits, mut matched) = (RoaringTreemap::new(), vec![]);
        set.matches(&viewed, 7, &RoaringTreemap::new(), None, &mut hits, Some(&mut matched)).unwrap();
        assert_eq!(hits.iter().collect::<Vec<_>>(), [7]);
    }
}
