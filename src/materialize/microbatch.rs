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
use datafusion::prelude::{DataFrame, Expr, cast, ident, lit};
use datafusion::scalar::ScalarValue;
use deltalake::protocol::SaveMode;
use std::sync::Arc;

use super::Materialized;
use super::delta::{checkpoint_if_due, delta_compatible, overwrite, rows_of_last_commit, write_error, writer_properties};
use crate::engine::Engine;
use crate::project::microbatch::Batch;
use crate::project::nodes::Node;
use crate::util::ident::quote_ident;

/// Builds one batch of `node` from its batch-compiled `sql`. `incremental`
/// is the batch's `is_incremental()`: false only for the first batch of a
/// first run or a full refresh, which (re)creates the table.
pub async fn write_batch(engine: &Engine, node: &Node, sql: &str, event_time: &str, batch: &Batch, incremental: bool) -> anyhow::Result<Materialized> {
    let dir = engine.warehouse.table(&node.schema, &node.alias);
    if !incremental {
        let df = engine.ctx.sql(sql).await?;
        return overwrite(engine, &dir, df.into_unoptimized_plan(), node).await;
    }
    let predicate = batch.filter(&quote_ident(event_time));
    let windowed = format!("select * from (\n{sql}\n) as __dp_batch where {predicate}");
    let df = engine.ctx.sql(&windowed).await?;
    let df = DataFrame::new(engine.ctx.state(), delta_compatible(engine, df.into_unoptimized_plan())?);
    let table = deltalake::open_table(dir.url.clone()).await.with_context(|| format!("opening Delta table {dir}"))?;
    let existing: SchemaRef = table.snapshot()?.snapshot().arrow_schema();
    if existing.field_with_name(event_time).is_err() {
        anyhow::bail!(
            "the table has no column '{event_time}', the model's event_time\n  hint: select the event_time column in the model, or run with --full-refresh after renaming it"
        );
    }
    let new_schema = df.schema().as_arrow().clone();
    let exprs: Vec<Expr> = existing
        .fields()
        .iter()
        .map(|f| {
            let value = if new_schema.field_with_name(f.name()).is_ok() { ident(f.name()) } else { lit(ScalarValue::Null) };
            cast(value, f.data_type().clone()).alias(f.name())
        })
        .collect();
    let df = df.select(exprs)?;
    if let Some(p) = super::delta::requalified(node, None, None)? {
        return super::delta::replace_where(engine, &dir, table, df, node, format!("({predicate}) AND {p}")).await;
    }
    let t = table
        .write(vec![])
        .with_input_plan(df.into_unoptimized_plan())
        .with_session_state(Arc::new(engine.ctx.state()))
        .with_save_mode(SaveMode::Overwrite)
        .with_replace_where(predicate)
        .with_writer_properties(writer_properties(node)?)
        .await
        .map_err(|e| write_error(&dir, e))?;
    checkpoint_if_due(&t).await;
    Ok(Materialized { rows: rows_of_last_commit(&t).await, message: "INSERT".into(), version: t.version().map(|v| v as i64) })
}
