//! `dp load`: bronze files of sources into PostgreSQL tables (the seed
//! platform's `MinIOToPostgresOperator`), through the same streaming binary
//! COPY as publishing.
//!
//! - `replace`: a new table, swapped in atomically (see `publish`).
//! - `append`: rows are copied into the existing table inside one
//!   transaction (created first if missing); the table's columns must be the
//!   source's columns, by name and in order, or nothing is written.
//!
//! The number of rows PostgreSQL stored is checked against the number read.

use anyhow::{Context as _, bail};
use datafusion::arrow::datatypes::SchemaRef;
use std::sync::Arc;

use super::connect::{PgPool, pg_err};
use super::publish::{create_schema, replace_table, table_columns};
use super::{check_identifier, copy, ident, qualified, types};
use crate::engine::Engine;
use crate::project::nodes::Node;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadMode {
    Replace,
    Append,
}

/// Loads one source table into `schema.<identifier>`; returns the rows
/// loaded.
pub async fn load_source(pool: &PgPool, engine: &Engine, node: &Node, schema: &str, mode: LoadMode) -> anyhow::Result<u64> {
    let source = node.source.as_ref().context("not a source")?;
    let name = source.identifier.clone();
    check_identifier("schema", schema)?;
    check_identifier("table", &name)?;
    let target = qualified(schema, &name);
    let sql = format!("SELECT * FROM {}", qualified(&node.schema, &source.identifier));
    pool.retry(|| async {
        let df = engine.ctx.sql(&sql).await.with_context(|| format!("reading source {}.{}", source.source_name, node.name))?;
        let mut c = pool.get().await?;
        let r = match mode {
            LoadMode::Replace => replace_table(&mut c, df, schema, &name, node, None).await,
            LoadMode::Append => append(&mut c, df, schema, &name, &target).await,
        };
        if r.is_err() {
            let _ = c.batch_execute("ROLLBACK").await;
        }
        r
    })
    .await
    .with_context(|| format!("loading source {}.{} into {target} on {}", source.source_name, node.name, pool.settings.describe()))
}

async fn append(c: &mut super::connect::PgClient, df: datafusion::prelude::DataFrame, schema: &str, name: &str, target: &str) -> anyhow::Result<u64> {
    let arrow: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    create_schema(c, schema).await?;
    c.batch_execute("BEGIN").await.map_err(pg_err("BEGIN"))?;
    let existing = table_columns(c, schema, name).await?;
    let wanted: Vec<String> = arrow.fields().iter().map(|f| f.name().clone()).collect();
    if existing.is_empty() {
        c.batch_execute(&format!("CREATE TABLE {target} ({})", types::column_defs(&arrow)?)).await.map_err(pg_err(format!("creating {target}")))?;
    } else if existing != wanted {
        bail!(
            "{target} has columns ({}) but the source has ({})\n  hint: load with --mode replace to recreate the table",
            existing.join(", "),
            wanted.join(", ")
        );
    }
    let cols: Vec<String> = wanted.iter().map(|n| ident(n)).collect();
    let stream = df.execute_stream().await?;
    let rows = copy::copy_in(c, &format!("{target} ({})", cols.join(", ")), stream).await?;
    c.batch_execute("COMMIT").await.map_err(pg_err("COMMIT"))?;
    Ok(rows)
}
