//! `target/catalog.json` in dbt's catalog v1 shape: every model, seed and
//! snapshot that exists in the warehouse and every source with files, with
//! column names, types and comments, and stats read from metadata only
//! (Delta logs; Parquet footers for sources): no table is scanned.

use std::collections::HashSet;

use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::common::TableReference;
use futures::StreamExt;
use serde_json::{Map, Value, json};

use crate::engine::Engine;
use crate::project::load::Project;
use crate::project::nodes::{Node, ResourceType};
use crate::storage::RelKind;

pub const SCHEMA_URL: &str = "https://schemas.getdbt.com/dbt/catalog/v1.json";

/// A column type as SQL names it (what dbt's catalogs show).
pub fn sql_type(dt: &DataType) -> String {
    use DataType::*;
    match dt {
        Boolean => "BOOLEAN".into(),
        Int8 => "TINYINT".into(),
        Int16 | UInt8 => "SMALLINT".into(),
        Int32 | UInt16 => "INTEGER".into(),
        Int64 | UInt32 => "BIGINT".into(),
        UInt64 => "UBIGINT".into(),
        Float16 | Float32 => "FLOAT".into(),
        Float64 => "DOUBLE".into(),
        Decimal32(p, s) | Decimal64(p, s) | Decimal128(p, s) | Decimal256(p, s) => format!("DECIMAL({p},{s})"),
        Utf8 | LargeUtf8 | Utf8View => "VARCHAR".into(),
        Binary | LargeBinary | BinaryView | FixedSizeBinary(_) => "BLOB".into(),
        Date32 | Date64 => "DATE".into(),
        Timestamp(_, None) => "TIMESTAMP".into(),
        Timestamp(_, Some(_)) => "TIMESTAMP WITH TIME ZONE".into(),
        Time32(_) | Time64(_) => "TIME".into(),
        Interval(_) | Duration(_) => "INTERVAL".into(),
        Null => "NULL".into(),
        List(f) | LargeList(f) | ListView(f) | LargeListView(f) | FixedSizeList(f, _) => format!("{}[]", sql_type(f.data_type())),
        Dictionary(_, v) => sql_type(v),
        other => other.to_string().to_uppercase(),
    }
}

fn stat(id: &str, label: &str, value: Value, include: bool, description: &str) -> Value {
    json!({"id": id, "label": label, "value": value, "include": include, "description": description})
}

/// dbt's stats block: `has_stats`, plus row count / size / files when known.
fn stats(rows: Option<u64>, bytes: Option<u64>, files: Option<u64>) -> Value {
    let mut m = Map::new();
    let has = rows.is_some() || bytes.is_some();
    m.insert("has_stats".into(), stat("has_stats", "Has Stats?", json!(has), false, "Indicates whether there are statistics for this table"));
    if let Some(r) = rows {
        m.insert("row_count".into(), stat("row_count", "Row Count", json!(r), true, "Number of rows in the table (from the Delta log / Parquet footers)"));
    }
    if let Some(b) = bytes {
        m.insert("bytes".into(), stat("bytes", "Approximate Size", json!(b), true, "Size of the table's data files in bytes"));
    }
    if let Some(f) = files {
        m.insert("num_files".into(), stat("num_files", "Files", json!(f), true, "Number of data files"));
    }
    Value::Object(m)
}

fn columns(schema: &Schema, n: &Node) -> Value {
    let mut m = Map::new();
    for (i, f) in schema.fields().iter().enumerate() {
        let comment = n.columns.get(f.name()).map(|c| c.description.clone()).filter(|d| !d.is_empty());
        m.insert(f.name().clone(), json!({"type": sql_type(f.data_type()), "index": i + 1, "name": f.name(), "comment": comment}));
    }
    Value::Object(m)
}

fn entry(n: &Node, kind: &str, name: &str, schema: &Schema, stats: Value) -> Value {
    json!({
        "metadata": {
            "type": kind, "schema": n.schema, "name": name,
            "database": if n.database.is_empty() { Value::Null } else { json!(n.database) },
            "comment": if n.description.is_empty() { Value::Null } else { json!(n.description) },
            "owner": null,
        },
        "columns": columns(schema, n),
        "stats": stats,
        "unique_id": n.unique_id,
    })
}

/// One relation of the warehouse: its schema and stats, read from metadata.
async fn relation(engine: &Engine, n: &Node) -> Result<Option<Value>, String> {
    let loc = engine.warehouse.table(&n.schema, &n.alias);
    match engine.warehouse.kind(&n.schema, &n.alias).await.map_err(|e| e.to_string())? {
        Some(RelKind::Table) => {
            let table = deltalake::open_table(loc.url.clone()).await.map_err(|e| format!("{}: {e}", n.relation_name()))?;
            let snapshot = table.snapshot().map_err(|e| format!("{}: {e}", n.relation_name()))?;
            let schema = snapshot.snapshot().arrow_schema();
            let (mut rows, mut bytes, mut files, mut counted) = (0u64, 0u64, 0u64, true);
            for f in snapshot.log_data().iter() {
                files += 1;
                bytes += f.size().max(0) as u64;
                // Rows a merge marked deleted are in the file, not in the table.
                let deleted = f.deletion_vector_descriptor().map_or(0, |dv| dv.cardinality.max(0) as u64);
                match f.num_records() {
                    Some(r) => rows += (r as u64).saturating_sub(deleted),
                    None => counted = false,
                }
            }
            Ok(Some(entry(n, "BASE TABLE", &n.alias, &schema, stats(counted.then_some(rows), Some(bytes), Some(files)))))
        }
        Some(RelKind::View) => {
            let t = engine.ctx.table_provider(TableReference::partial(n.schema.as_str(), n.alias.as_str())).await.map_err(|e| e.to_string())?;
            Ok(Some(entry(n, "VIEW", &n.alias, &t.schema(), stats(None, None, None))))
        }
        None => Ok(None),
    }
}

async fn source(engine: &Engine, n: &Node) -> Result<Option<Value>, String> {
    let Some(s) = &n.source else { return Ok(None) };
    let name = TableReference::partial(n.schema.as_str(), s.identifier.as_str());
    let Ok(t) = engine.ctx.table_provider(name.clone()).await else { return Ok(None) };
    let schema = t.schema();
    // Parquet answers count(*) from its footers (DataFusion's statistics);
    // other formats would need a scan, so they get no row count.
    let loc = s.location.as_deref().unwrap_or("").to_ascii_lowercase();
    let parquet = match s.format.as_deref() {
        Some(f) => f == "parquet",
        None => ![".csv", ".csv.gz", ".tsv", ".json", ".ndjson", ".jsonl"].iter().any(|e| loc.ends_with(e)),
    };
    let rows = if parquet { count_from_metadata(engine, &name).await } else { None };
    Ok(Some(entry(n, "external", &s.identifier, &schema, stats(rows, None, None))))
}

async fn count_from_metadata(engine: &Engine, name: &TableReference) -> Option<u64> {
    let n = engine.ctx.table(name.clone()).await.ok()?.count().await.ok()?;
    Some(n as u64)
}

/// Builds the catalog; errors (a table that cannot be opened) go into
/// dbt's `errors` list rather than failing the whole catalog.
pub async fn catalog(project: &Project, engine: &Engine, existing: &HashSet<String>, invocation_id: &str, generated_at: &str) -> Value {
    let wanted: Vec<&Node> = project
        .nodes
        .values()
        .filter(|n| match n.resource_type {
            ResourceType::Model | ResourceType::Seed | ResourceType::Snapshot => {
                n.materialized() != crate::project::nodes::Materialization::Ephemeral && existing.contains(&n.unique_id)
            }
            ResourceType::Source => true,
            _ => false,
        })
        .collect();
    let results: Vec<(&Node, Result<Option<Value>, String>)> = futures::stream::iter(wanted)
        .map(|n| async move {
            let r = if n.resource_type == ResourceType::Source { source(engine, n).await } else { relation(engine, n).await };
            (n, r)
        })
        .buffered(8)
        .collect()
        .await;
    let mut nodes = Map::new();
    let mut sources = Map::new();
    let mut errors = vec![];
    for (n, r) in results {
        match r {
            Ok(Some(v)) if n.resource_type == ResourceType::Source => {
                sources.insert(n.unique_id.clone(), v);
            }
            Ok(Some(v)) => {
                nodes.insert(n.unique_id.clone(), v);
            }
            Ok(None) => {}
            Err(e) => errors.push(format!("{} {}: {e}", n.resource_type, n.name)),
        }
    }
    json!({
        "metadata": crate::compile::manifest::artifact_metadata(SCHEMA_URL, invocation_id, generated_at),
        "nodes": nodes,
        "sources": sources,
        "errors": if errors.is_empty() { Value::Null } else { json!(errors) },
    })
}
