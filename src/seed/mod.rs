//! Seeds: CSV files under `seeds/` loaded as Delta tables, with dbt's type
//! inference and `column_types` overrides ([`infer`]). A seed is always
//! replaced whole, in one commit.

pub mod infer;

use anyhow::Context as _;
use std::sync::Arc;

use crate::engine::Engine;
use crate::materialize::Materialized;
use crate::project::nodes::Node;

/// The options a seed's config gives the CSV reader.
pub fn options(node: &Node) -> anyhow::Result<infer::SeedOptions> {
    let mut o = infer::SeedOptions::default();
    if let Some(d) = node.config_str("delimiter") {
        let mut b = d.bytes();
        o.delimiter = match (b.next(), b.next()) {
            (Some(c), None) => c,
            _ => anyhow::bail!("seed {}: delimiter must be a single character, got '{d}'", node.name),
        };
    }
    if let Some(serde_json::Value::Object(ct)) = node.config.get("column_types") {
        for (k, v) in ct {
            let ty = v.as_str().ok_or_else(|| anyhow::anyhow!("seed {}: column_types.{k} must be a type name string", node.name))?;
            o.column_types.insert(k.clone(), ty.to_string());
        }
    }
    Ok(o)
}

/// Reads the seed's CSV and replaces its Delta table.
pub async fn load_seed(engine: &Engine, node: &Node) -> anyhow::Result<Materialized> {
    let root = engine.project_root.clone();
    let path = root.join(&node.original_file_path);
    let bytes = std::fs::read(&path).with_context(|| format!("reading seed {}", node.original_file_path))?;
    let data = infer::read_seed(&node.original_file_path, &bytes, &options(node)?)?;
    let loc = engine.warehouse.table(&node.schema, &node.alias);
    engine.warehouse.prepare_table(&loc).await?;
    let table = deltalake::DeltaTable::try_from_url(loc.url.clone()).await.with_context(|| format!("opening Delta table {loc}"))?;
    let existed = table.version().is_some();
    let mem = datafusion::datasource::MemTable::try_new(data.schema.clone(), vec![data.batches])?;
    let df = engine.ctx.read_table(Arc::new(mem))?;
    let plan = crate::materialize::delta::delta_compatible(engine, df.into_unoptimized_plan())?;
    let table = table
        .write(vec![])
        .with_input_plan(plan)
        .with_session_state(Arc::new(engine.ctx.state()))
        .with_save_mode(deltalake::protocol::SaveMode::Overwrite)
        .with_schema_mode(deltalake::operations::write::SchemaMode::Overwrite)
        .with_table_name(node.alias.clone())
        .await
        .map_err(|e| crate::materialize::delta::write_error(&loc, e))?;
    crate::materialize::delta::checkpoint_if_due(&table).await;
    Ok(Materialized {
        rows: Some(data.rows as u64),
        message: if existed { "REPLACE".into() } else { "INSERT".into() },
        version: table.version().map(|v| v as i64),
    })
}
