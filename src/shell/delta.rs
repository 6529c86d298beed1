//! Delta time travel in the shell: the `delta_version('schema.table', N)`
//! table function (N a version, or a timestamp string) and `\history`.

use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl};
use datafusion::common::ScalarValue;
use datafusion::datasource::TableProvider;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::Expr;
use futures::TryStreamExt;
use std::sync::Arc;

use crate::storage::{RelKind, TableLoc, Warehouse};

use super::{ShellError, run_cancellable};

/// Where a `schema.table` (or a bare name, resolved like queries) lives.
#[derive(Debug, Clone)]
pub struct TableLocator {
    pub warehouse: Warehouse,
    pub default_schema: String,
    pub catalog: Arc<crate::engine::catalog::WarehouseCatalog>,
}

impl TableLocator {
    /// The Delta table folder of `name`, or an error naming the table.
    pub fn delta_dir(&self, name: &str) -> std::result::Result<(String, TableLoc), String> {
        let parts: Vec<&str> = name.trim().split('.').map(|p| p.trim_matches('"')).collect();
        let (schema, table) = match parts.as_slice() {
            [t] => {
                let names = super::resolve::Names { catalog: &self.catalog, default_schema: &self.default_schema };
                (names.unique_schema(&t.to_lowercase()).unwrap_or_else(|| self.default_schema.clone()), t.to_string())
            }
            [s, t] => (s.to_string(), t.to_string()),
            [_, s, t] => (s.to_string(), t.to_string()),
            _ => return Err(format!("'{name}' is not a table name; use schema.table")),
        };
        let dir = self.warehouse.table(&schema, &table);
        let label = format!("{schema}.{table}");
        let kind = self.warehouse.kind_blocking(&schema, &table);
        if kind == Some(RelKind::Table) {
            return Ok((label, dir));
        }
        let names = super::resolve::Names { catalog: &self.catalog, default_schema: &self.default_schema };
        let close = names.close_names(&label);
        let hint = if close.is_empty() { String::new() } else { format!("\n  hint: did you mean {}?", close.join(", ")) };
        if kind == Some(RelKind::View) {
            return Err(format!("{label} is a view, not a Delta table: it has no versions"));
        }
        Err(format!("Delta table {label} not found in {}{hint}", self.warehouse))
    }
}

/// `delta_version('marts.fct_orders', 3)` or `delta_version('marts.fct_orders', '2024-05-01T00:00:00Z')`.
#[derive(Debug)]
pub struct DeltaVersion {
    pub tables: TableLocator,
}

enum At {
    Version(i64),
    Timestamp(String),
}

fn literal(e: &Expr) -> Option<&ScalarValue> {
    match e {
        Expr::Literal(v, _) => Some(v),
        _ => None,
    }
}

impl TableFunctionImpl for DeltaVersion {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let usage = || DataFusionError::Plan("usage: delta_version('schema.table', version) or delta_version('schema.table', 'timestamp')".into());
        let [name, at] = args.exprs() else { return Err(usage()) };
        let name = match literal(name) {
            Some(ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s))) => s.clone(),
            _ => return Err(usage()),
        };
        let at = match literal(at) {
            Some(ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s))) => At::Timestamp(s.clone()),
            Some(
                v @ (ScalarValue::Int64(Some(_))
                | ScalarValue::Int32(Some(_))
                | ScalarValue::UInt64(Some(_))
                | ScalarValue::Int8(Some(_))
                | ScalarValue::Int16(Some(_))),
            ) => match v.cast_to(&DataType::Int64)? {
                ScalarValue::Int64(Some(n)) if n >= 0 => At::Version(n),
                _ => return Err(usage()),
            },
            _ => return Err(usage()),
        };
        let (label, dir) = self.tables.delta_dir(&name).map_err(DataFusionError::Plan)?;
        let url = dir.url.clone();
        let what = match &at {
            At::Version(v) => format!("version {v}"),
            At::Timestamp(t) => format!("timestamp '{t}'"),
        };
        // Opening may wait on storage: Ctrl-C gives up (see run_cancellable).
        let cancelled = |e: ShellError| DataFusionError::Plan(e.to_string());
        let table = run_cancellable(async move {
            let mut t = deltalake::open_table(url).await?;
            match at {
                At::Version(v) => t.load_version(v as u64).await?,
                At::Timestamp(ts) => {
                    let dt = chrono::DateTime::parse_from_rfc3339(&ts)
                        .map(|d| d.with_timezone(&chrono::Utc))
                        .or_else(|_| chrono::NaiveDateTime::parse_from_str(&ts, "%Y-%m-%d %H:%M:%S").map(|d| d.and_utc()))
                        .or_else(|_| chrono::NaiveDate::parse_from_str(&ts, "%Y-%m-%d").map(|d| d.and_hms_opt(0, 0, 0).unwrap().and_utc()))
                        .map_err(|_| deltalake::DeltaTableError::Generic(format!("'{ts}' is not a timestamp (use 2024-05-01T12:00:00Z)")))?;
                    t.load_with_datetime(dt).await?
                }
            }
            Ok::<_, deltalake::DeltaTableError>(t)
        })
        .map_err(cancelled)?
        .map_err(|e| DataFusionError::Plan(format!("delta_version: table {label} at {what}: {e}")))?;
        table.update_datafusion_session(args.session()).map_err(|e| DataFusionError::External(Box::new(e)))?;
        run_cancellable(async move { table.table_provider().await })
            .map_err(cancelled)?
            .map_err(|e| DataFusionError::Plan(format!("delta_version: table {label}: {e}")))
    }
}

/// `\history schema.table`: version, timestamp, operation, parameters, rows.
pub async fn history(tables: &TableLocator, name: &str) -> std::result::Result<RecordBatch, String> {
    let (label, dir) = tables.delta_dir(name)?;
    let infos = read_history(&dir).await.map_err(|e| format!("table {label}: could not read its Delta log at {dir}: {e}"))?;
    let mut version = Vec::new();
    let mut ts = Vec::new();
    let mut op = Vec::new();
    let mut params = Vec::new();
    let mut rows = Vec::new();
    for (v, c) in infos {
        version.push(v);
        ts.push(c.timestamp.and_then(chrono::DateTime::from_timestamp_millis).map(|d| d.format("%Y-%m-%d %H:%M:%S%.3f").to_string()));
        op.push(c.operation.clone());
        params.push(c.operation_parameters.as_ref().map(|p| serde_json::to_string(p).unwrap_or_default()));
        let metrics = c.info.get("operationMetrics");
        let n = metrics.and_then(|m| {
            ["num_added_rows", "numOutputRows", "num_output_rows", "num_target_rows_inserted"].iter().find_map(|k| m.get(*k).and_then(|v| v.as_i64()))
        });
        rows.push(n);
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("version", DataType::Int64, false),
        Field::new("timestamp", DataType::Utf8, true),
        Field::new("operation", DataType::Utf8, true),
        Field::new("parameters", DataType::Utf8, true),
        Field::new("rows", DataType::Int64, true),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(version)),
        Arc::new(StringArray::from(ts)),
        Arc::new(StringArray::from(op)),
        Arc::new(StringArray::from(params)),
        Arc::new(Int64Array::from(rows)),
    ];
    RecordBatch::try_new(schema, cols).map_err(|e| e.to_string())
}

/// Commits newest first, with their versions.
async fn read_history(dir: &TableLoc) -> std::result::Result<Vec<(i64, deltalake::kernel::CommitInfo)>, deltalake::DeltaTableError> {
    let table = deltalake::open_table(dir.url.clone()).await?;
    let latest = table.version().unwrap_or(0) as i64;
    let infos: Vec<_> = table.history(None).try_collect().await?;
    Ok(infos.into_iter().enumerate().map(|(i, c)| (latest - i as i64, c)).collect())
}
