//! One batch of a microbatch model as one Delta commit. The first batch of
//! a first run (or a full refresh) creates the table from the batch's rows,
//! as dbt's incremental materialization does; every later batch replaces
//! the rows of its event-time window: the batch's rows inside
//! `[start, end)` overwrite exactly the table's rows inside it (Delta's
//! `replaceWhere`: the delete and the insert are one commit, as
//! dbt-duckdb's `delete ... where; insert ... where` in one transaction).
//! A failed batch commits nothing, so the table stays at the version the
//! previous batch left. The table keeps its columns (`on_schema_change:
//! ignore`): new query columns are dropped, missing ones are NULL.
//! With `incremental_predicates` only the window's rows that satisfy them
//! are replaced, as dbt-duckdb's `delete ... where window and (p)` does:
//! by deletion vectors, or a rewrite of the table where those are off.

use anyhow::Context as _;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::prelude::DataFrame;
use deltalake::protocol::SaveMode;
use std::sync::Arc;

use super::Materialized;
use super::delta::{checkpoint_if_due, delta_compatible, no_rebase, overwrite, rows_of_last_commit, write_error, writer_properties};
use crate::engine::Engine;
use crate::project::microbatch::Batch;
use crate::project::nodes::Node;
use crate::util::ident::quote_ident;

/// Builds one batch of `node` from its batch-compiled `sql`. `incremental`
/// is the batch's `is_incremental()`: false only for the first batch of a
/// first run or a full refresh, which (re)creates the table. `at_once`:
/// how many batches of the model run at the same time (`concurrent_batches`).
///
/// The replacement is committed over the version it read, never rebased
/// by deltalake: its conflict checker ignores a compaction (`dp maintain`),
/// and a batch rebased over one removed files the compaction had already
/// folded into a new one, so the window's old rows stayed beside the new.
/// A batch that loses its commit race is written again on the newest
/// version, up to [`CONFLICT_ATTEMPTS`](super::parallel::CONFLICT_ATTEMPTS)
/// times plus once per batch running beside it (each of which may commit first).
pub async fn write_batch(
    engine: &Engine,
    node: &Node,
    sql: &str,
    event_time: &str,
    batch: &Batch,
    incremental: bool,
    at_once: usize,
) -> anyhow::Result<Materialized> {
    let dir = engine.warehouse.table(&node.schema, &node.alias);
    if !incremental {
        let df = engine.ctx.sql(sql).await?;
        return overwrite(engine, &dir, df.into_unoptimized_plan(), node).await;
    }
    let predicate = batch.filter(&quote_ident(event_time));
    let windowed = format!("select * from (\n{sql}\n) as __dp_batch where {predicate}");
    let query = engine.ctx.sql(&windowed).await?;
    let query = DataFrame::new(engine.ctx.state(), delta_compatible(engine, query.into_unoptimized_plan())?);
    let attempts = super::parallel::CONFLICT_ATTEMPTS + at_once.saturating_sub(1);
    let mut attempt = 0;
    loop {
        let table = deltalake::open_table(dir.url.clone()).await.with_context(|| format!("opening Delta table {dir}"))?;
        let existing: SchemaRef = table.snapshot()?.snapshot().arrow_schema();
        if existing.field_with_name(event_time).is_err() {
            anyhow::bail!(
                "the table has no column '{event_time}', the model's event_time\n  hint: select the event_time column in the model, or run with --full-refresh after renaming it"
            );
        }
        let df = query.clone().select(super::delta::table_columns(&existing, query.schema().as_arrow()))?;
        if let Some(p) = super::delta::requalified(node, None, None)? {
            // by deletion vectors or a rewrite, both of which retry themselves
            return super::delta::replace_where(engine, &dir, table, df, node, format!("({predicate}) AND {p}")).await;
        }
        super::parallel::pause_before_commit().await;
        let written = table
            .write(vec![])
            .with_input_plan(df.into_unoptimized_plan())
            .with_session_state(Arc::new(engine.ctx.state()))
            .with_save_mode(SaveMode::Overwrite)
            .with_replace_where(predicate.clone())
            .with_writer_properties(writer_properties(node)?)
            .with_commit_properties(no_rebase())
            .await;
        match written {
            Ok(t) => {
                checkpoint_if_due(&t).await;
                return Ok(Materialized { rows: rows_of_last_commit(&t).await, message: "INSERT".into(), version: t.version().map(|v| v as i64) });
            }
            Err(e) if attempt < attempts && super::parallel::lost_race(&e) => {
                attempt += 1;
                tracing::debug!(attempt, error = %e, "another writer committed meanwhile: writing the batch again on the newest version");
            }
            Err(e) => return Err(write_error(&dir, e)),
        }
    }
}
