//! The warehouse as dbt's Jinja sees it while compiling: `run_query`,
//! `statement` blocks and `adapter.get_columns_in_relation` run here, on the
//! command's DataFusion session ([`crate::jinja::Database`]).

use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::common::TableReference;
use std::sync::Arc;

use super::{CATALOG, Engine};
use crate::jinja::{ColumnInfo, Database, QueryResult};
use crate::storage::RelKind;

/// [`Database`] over an [`Engine`].
pub struct EngineDb {
    engine: Arc<Engine>,
    handle: tokio::runtime::Handle,
}

impl EngineDb {
    /// `None` outside a tokio runtime (queries need one).
    pub fn new(engine: Arc<Engine>) -> Option<EngineDb> {
        Some(EngineDb { engine, handle: tokio::runtime::Handle::try_current().ok()? })
    }

    /// Runs `f` to completion from Jinja (synchronous code), on a runtime
    /// worker (blocking in place) or on a plain thread such as rayon's.
    pub fn block<F: std::future::Future + Send>(&self, f: F) -> F::Output
    where
        F::Output: Send,
    {
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(|| self.handle.block_on(f)),
            Ok(_) => crate::storage::block_on(f),
            Err(_) => self.handle.block_on(f),
        }
    }
}

/// The SQL name of an Arrow type, spelled as DuckDB reports it (what dbt
/// macros written for dbt-duckdb compare against).
pub fn sql_type(dt: &DataType) -> String {
    match dt {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "VARCHAR".into(),
        DataType::Int8 => "TINYINT".into(),
        DataType::Int16 => "SMALLINT".into(),
        DataType::Int32 => "INTEGER".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::UInt8 => "UTINYINT".into(),
        DataType::UInt16 => "USMALLINT".into(),
        DataType::UInt32 => "UINTEGER".into(),
        DataType::UInt64 => "UBIGINT".into(),
        DataType::Float16 | DataType::Float32 => "FLOAT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Date32 | DataType::Date64 => "DATE".into(),
        DataType::Timestamp(_, None) => "TIMESTAMP".into(),
        DataType::Timestamp(_, Some(_)) => "TIMESTAMP WITH TIME ZONE".into(),
        DataType::Time32(_) | DataType::Time64(_) => "TIME".into(),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => format!("DECIMAL({p},{s})"),
        DataType::Interval(_) | DataType::Duration(_) => "INTERVAL".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => "BLOB".into(),
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => format!("{}[]", sql_type(f.data_type())),
        DataType::Struct(fields) => {
            let fields: Vec<String> = fields.iter().map(|f| format!("{} {}", crate::util::ident::quote_ident(f.name()), sql_type(f.data_type()))).collect();
            format!("STRUCT({})", fields.join(", "))
        }
        DataType::Null => "NULL".into(),
        DataType::Dictionary(_, v) => sql_type(v),
        other => other.to_string(),
    }
}

/// One cell as JSON: numbers stay numbers, the rest is text.
fn cell(col: &ArrayRef, row: usize) -> serde_json::Value {
    use serde_json::json;
    if col.is_null(row) {
        return serde_json::Value::Null;
    }
    let Ok(v) = ScalarValue::try_from_array(col, row) else { return serde_json::Value::Null };
    match v {
        ScalarValue::Boolean(Some(b)) => json!(b),
        ScalarValue::Int8(Some(x)) => json!(x),
        ScalarValue::Int16(Some(x)) => json!(x),
        ScalarValue::Int32(Some(x)) => json!(x),
        ScalarValue::Int64(Some(x)) => json!(x),
        ScalarValue::UInt8(Some(x)) => json!(x),
        ScalarValue::UInt16(Some(x)) => json!(x),
        ScalarValue::UInt32(Some(x)) => json!(x),
        ScalarValue::UInt64(Some(x)) => json!(x),
        ScalarValue::Float32(Some(x)) => json!(x),
        ScalarValue::Float64(Some(x)) => json!(x),
        ScalarValue::Decimal128(Some(x), _, 0) => json!(x as i64),
        ScalarValue::Decimal128(Some(x), _, s) => json!(x as f64 / 10f64.powi(s as i32)),
        ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => json!(s),
        // Dates and times as Python's str() of the agate value prints them.
        ScalarValue::Date32(Some(d)) => json!(chrono::NaiveDate::from_num_days_from_ce_opt(d + 719_163).map(|d| d.to_string())),
        ScalarValue::TimestampSecond(Some(x), _) => py_datetime(x.saturating_mul(1_000_000)),
        ScalarValue::TimestampMillisecond(Some(x), _) => py_datetime(x.saturating_mul(1_000)),
        ScalarValue::TimestampMicrosecond(Some(x), _) => py_datetime(x),
        ScalarValue::TimestampNanosecond(Some(x), _) => py_datetime(x / 1_000),
        other => json!(other.to_string()),
    }
}

/// `2017-01-01 00:00:00` (`.ffffff` only when there are microseconds), as
/// Python prints a datetime.
fn py_datetime(micros: i64) -> serde_json::Value {
    match chrono::DateTime::from_timestamp_micros(micros) {
        Some(t) => {
            let t = t.naive_utc();
            let us = t.and_utc().timestamp_subsec_micros();
            let base = t.format("%Y-%m-%d %H:%M:%S").to_string();
            serde_json::Value::String(if us == 0 { base } else { format!("{base}.{us:06}") })
        }
        None => serde_json::Value::Null,
    }
}

impl Database for EngineDb {
    fn query(&self, sql: &str) -> Result<QueryResult, String> {
        self.block(async {
            let df = self.engine.ctx.sql(sql).await.map_err(|e| e.to_string())?;
            let columns: Vec<ColumnInfo> =
                df.schema().fields().iter().map(|f| ColumnInfo { name: f.name().clone(), data_type: sql_type(f.data_type()) }).collect();
            let batches = df.collect().await.map_err(|e| e.to_string())?;
            let mut rows = vec![];
            for b in &batches {
                for r in 0..b.num_rows() {
                    rows.push(b.columns().iter().map(|c| cell(c, r)).collect());
                }
            }
            Ok(QueryResult { columns, rows, rows_affected: None })
        })
    }

    fn columns(&self, schema: &str, identifier: &str) -> Result<Option<Vec<ColumnInfo>>, String> {
        self.block(async {
            match self.engine.ctx.table(TableReference::full(CATALOG, schema, identifier)).await {
                Ok(df) => Ok(Some(df.schema().fields().iter().map(|f| ColumnInfo { name: f.name().clone(), data_type: sql_type(f.data_type()) }).collect())),
                Err(_) => Ok(None),
            }
        })
    }

    fn relations(&self, schema: &str) -> Result<Vec<(String, String)>, String> {
        let mut out: Vec<(String, String)> = self.block(async {
            self.engine
                .warehouse
                .relations(schema)
                .await
                .map_err(|e| e.to_string())
                .map(|rs| rs.into_iter().map(|(n, k)| (n, if matches!(k, RelKind::View) { "view" } else { "table" }.to_string())).collect::<Vec<_>>())
        })?;
        // File sources registered in the catalog count as tables.
        if let Some(s) = self.engine.ctx.catalog(CATALOG).and_then(|c| c.schema(schema)) {
            for t in s.table_names() {
                if !out.iter().any(|(n, _)| *n == t) {
                    out.push((t, "table".into()));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn drop_relation(&self, schema: &str, identifier: &str) -> Result<(), String> {
        self.block(async {
            let loc = self.engine.warehouse.table(schema, identifier);
            self.engine.warehouse.drop_relation(&loc).await.map_err(|e| e.to_string())
        })?;
        self.engine.catalog.invalidate(schema, identifier);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Date32Array, TimestampMicrosecondArray};

    #[test]
    fn dates_and_timestamps_read_as_python_prints_them() {
        let d: ArrayRef = Arc::new(Date32Array::from(vec![Some(17_167), None]));
        let ts: ArrayRef = Arc::new(TimestampMicrosecondArray::from(vec![1_483_228_800_000_000, 1_483_228_800_000_250]));
        assert_eq!(cell(&d, 0), "2017-01-01");
        assert_eq!(cell(&d, 1), serde_json::Value::Null);
        assert_eq!(cell(&ts, 0), "2017-01-01 00:00:00");
        assert_eq!(cell(&ts, 1), "2017-01-01 00:00:00.000250");
    }
}
