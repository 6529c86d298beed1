//! The Delta statistics of a Parquet file dp wrote itself
//! ([`super::local_file`]), from the file's footer: the `stats` string of
//! its `add` action, as deltalake's writer computes it.
//!
//! deltalake keeps that function to itself (`create_add` is crate-private),
//! so this is the same rule for the flat schemas the local writer takes:
//!
//! - `numRecords` is the file's row count.
//! - The first 32 columns (`delta.dataSkippingNumIndexedCols`'s default;
//!   the local writer takes only tables without properties) get a
//!   `nullCount`, the sum over row groups, and a `minValues` /
//!   `maxValues` entry where every row group's footer has both bounds and
//!   they convert to a value.
//! - Values are the logical ones: dates as `YYYY-MM-DD`, timestamps at
//!   millisecond precision (`2024-01-02T03:04:05.678Z`, or
//!   `2024-01-02 03:04:05.678` without a time zone, the fraction left out
//!   when zero), decimals as numbers (integers at scale 0), UUIDs
//!   hyphenated. One departure: an integer decimal bound beyond i64 is
//!   left out (deltalake saturates it to i64's maximum, a wrong bound that
//!   would let a scan skip a file holding matching rows).
//! - Binary columns (byte arrays that are not strings) get no entry at
//!   all, not even a null count.
//!
//! A test writes the same batches through both writers and compares
//! the statistics (`tests::matches_deltalake`).

use chrono::Timelike as _;
use datafusion::parquet::basic::{ConvertedType, LogicalType, TimeUnit, Type as PhysicalType};
use datafusion::parquet::file::metadata::ParquetMetaData;
use datafusion::parquet::file::statistics::Statistics;
use datafusion::parquet::schema::types::ColumnDescriptor;
use serde_json::{Map, Value};

/// Columns given statistics: deltalake's default number of indexed columns.
const INDEXED_COLUMNS: usize = 32;

/// The `stats` JSON of the file whose footer is `meta` (flat schema).
pub fn stats_json(meta: &ParquetMetaData) -> String {
    let schema = meta.file_metadata().schema_descr();
    let (mut min, mut max, mut nulls) = (Map::new(), Map::new(), Map::new());
    for idx in 0..schema.num_columns().min(INDEXED_COLUMNS) {
        let column = schema.column(idx);
        if column.max_rep_level() > 0 || column.path().parts().len() != 1 {
            continue;
        }
        let binary = column.physical_type() == PhysicalType::BYTE_ARRAY && !matches!(column.logical_type_ref(), Some(LogicalType::String));
        if binary {
            continue;
        }
        let logical = logical_type(&column);
        let Some(agg) =
            meta.row_groups().iter().filter_map(|g| g.column(idx).statistics()).map(|s| Aggregated::of(s, logical.as_ref())).reduce(Aggregated::merge)
        else {
            continue;
        };
        let name = column.name().to_string();
        if let Some(v) = agg.min.and_then(Scalar::into_json) {
            min.insert(name.clone(), v);
        }
        if let Some(v) = agg.max.and_then(Scalar::into_json) {
            max.insert(name.clone(), v);
        }
        nulls.insert(name, Value::from(agg.null_count as i64));
    }
    let stats = Stats { num_records: meta.file_metadata().num_rows(), min_values: min, max_values: max, null_count: nulls };
    serde_json::to_string(&stats).expect("statistics serialize")
}

/// The shape of deltalake's `Stats`, fields in its order.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Stats {
    num_records: i64,
    min_values: Map<String, Value>,
    max_values: Map<String, Value>,
    null_count: Map<String, Value>,
}

/// The column's logical type, or the one its legacy converted type names.
fn logical_type(column: &ColumnDescriptor) -> Option<LogicalType> {
    column.logical_type_ref().cloned().or(match column.converted_type() {
        ConvertedType::UTF8 => Some(LogicalType::String),
        ConvertedType::DATE => Some(LogicalType::Date),
        ConvertedType::JSON => Some(LogicalType::Json),
        ConvertedType::BSON => Some(LogicalType::Bson),
        _ => None,
    })
}

/// A bound as its logical value; ordered within a column as deltalake
/// orders them (one variant per column).
#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum Scalar {
    Boolean(bool),
    Int32(i32),
    Int64(i64),
    Float32(f32),
    Float64(f64),
    Date(chrono::NaiveDate),
    Timestamp(chrono::NaiveDateTime),
    TimestampNtz(chrono::NaiveDateTime),
    Decimal { value: f64, scale: i32 },
    String(String),
    Uuid(uuid::Uuid),
}

impl Scalar {
    /// The minimum (`min`) or maximum of `stats`; `None` for a type or a
    /// value with no Delta representation.
    fn of(stats: &Statistics, logical: Option<&LogicalType>, min: bool) -> Option<Scalar> {
        macro_rules! bound {
            ($v:expr) => {
                if min { *$v.min_opt()? } else { *$v.max_opt()? }
            };
        }
        let bytes = || if min { stats.min_bytes_opt() } else { stats.max_bytes_opt() }.unwrap_or_default();
        Some(match (stats, logical) {
            (Statistics::Boolean(v), _) => Scalar::Boolean(bound!(v)),
            (Statistics::Int32(v), Some(LogicalType::Date)) => {
                Scalar::Date(chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?.checked_add_signed(chrono::Duration::days(bound!(v) as i64))?)
            }
            (Statistics::Int32(v), Some(LogicalType::Decimal(d))) => Scalar::Decimal { value: bound!(v) as f64 / 10f64.powi(d.scale), scale: d.scale },
            (Statistics::Int32(v), _) => Scalar::Int32(bound!(v)),
            (Statistics::Int64(v), Some(LogicalType::Timestamp(t))) => {
                let v = bound!(v);
                let at = match t.unit {
                    TimeUnit::MILLIS => chrono::DateTime::from_timestamp_millis(v),
                    TimeUnit::MICROS => chrono::DateTime::from_timestamp_micros(v),
                    TimeUnit::NANOS => chrono::DateTime::from_timestamp(v / 1_000_000_000, (v % 1_000_000_000) as u32),
                }?
                .naive_utc();
                if t.is_adjusted_to_u_t_c { Scalar::Timestamp(at) } else { Scalar::TimestampNtz(at) }
            }
            (Statistics::Int64(v), Some(LogicalType::Decimal(d))) => match d.scale {
                // exact integer bounds, not rounded through f64
                0 => Scalar::Int64(bound!(v)),
                scale => Scalar::Decimal { value: bound!(v) as f64 / 10f64.powi(scale), scale },
            },
            (Statistics::Int64(v), _) => Scalar::Int64(bound!(v)),
            (Statistics::Float(v), _) => Scalar::Float32(bound!(v)),
            (Statistics::Double(v), _) => Scalar::Float64(bound!(v)),
            (Statistics::ByteArray(_), Some(LogicalType::String)) => Scalar::String(String::from_utf8(bytes().to_vec()).ok()?),
            (Statistics::FixedLenByteArray(_), Some(LogicalType::Decimal(d))) => {
                let b = bytes();
                if b.is_empty() || b.len() > 16 {
                    return None;
                }
                let mut wide = if b[0] & 0x80 != 0 { [0xff; 16] } else { [0; 16] };
                wide[16 - b.len()..].copy_from_slice(b);
                let mut value = i128::from_be_bytes(wide) as f64 / 10f64.powi(d.scale);
                // A bound rounded past the type's integer digits steps back
                // by one ulp, as deltalake does.
                if value.is_normal() && (value.trunc() as i128).to_string().len() > (d.precision - d.scale) as usize {
                    value = f64::from_bits(value.to_bits() - 1);
                }
                Scalar::Decimal { value, scale: d.scale }
            }
            (Statistics::FixedLenByteArray(_), Some(LogicalType::Uuid)) => Scalar::Uuid(uuid::Uuid::from_slice(bytes()).ok()?),
            _ => return None,
        })
    }

    /// The bound as JSON; `None` for an integer decimal beyond i64, which
    /// deltalake would saturate into a wrong bound.
    fn into_json(self) -> Option<Value> {
        Some(match self {
            Scalar::Boolean(v) => Value::Bool(v),
            Scalar::Int32(v) => Value::from(v),
            Scalar::Int64(v) => Value::from(v),
            Scalar::Float32(v) => Value::from(v),
            Scalar::Float64(v) => Value::from(v),
            Scalar::Date(v) => Value::from(v.format("%Y-%m-%d").to_string()),
            // milliseconds at most, as the Delta protocol's JSON statistics hold
            Scalar::Timestamp(v) => Value::from(v.format(if v.nanosecond() == 0 { "%Y-%m-%dT%H:%M:%SZ" } else { "%Y-%m-%dT%H:%M:%S%.3fZ" }).to_string()),
            Scalar::TimestampNtz(v) => Value::from(v.format(if v.nanosecond() == 0 { "%Y-%m-%d %H:%M:%S" } else { "%Y-%m-%d %H:%M:%S%.3f" }).to_string()),
            Scalar::Decimal { value, scale: 0 } if value.abs() >= i64::MAX as f64 => return None,
            Scalar::Decimal { value, scale: 0 } => Value::from(value.round() as i64),
            Scalar::Decimal { value, .. } => Value::from(value),
            Scalar::String(v) => Value::from(v),
            Scalar::Uuid(v) => Value::from(v.hyphenated().to_string()),
        })
    }
}

/// A column's bounds and null count over the row groups seen so far.
struct Aggregated {
    min: Option<Scalar>,
    max: Option<Scalar>,
    null_count: u64,
}

impl Aggregated {
    fn of(stats: &Statistics, logical: Option<&LogicalType>) -> Aggregated {
        let null_count = stats.null_count_opt().unwrap_or_default();
        if stats.min_bytes_opt().is_none() || stats.max_bytes_opt().is_none() {
            return Aggregated { min: None, max: None, null_count };
        }
        Aggregated { min: Scalar::of(stats, logical, true), max: Scalar::of(stats, logical, false), null_count }
    }

    /// deltalake's rule, kept exactly: a bound missing on one side takes the
    /// other's, and a comparison that fails (NaN) keeps the right-hand one.
    fn merge(self, other: Aggregated) -> Aggregated {
        let min = match (self.min, other.min) {
            (Some(l), Some(r)) => Some(if l < r { l } else { r }),
            (l, r) => l.or(r),
        };
        let max = match (self.max, other.max) {
            (Some(l), Some(r)) => Some(if l > r { l } else { r }),
            (l, r) => l.or(r),
        };
        Aggregated { min, max, null_count: self.null_count + other.null_count }
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{
        ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array, Int16Array, Int32Array, Int64Array, RecordBatch,
        StringArray, TimestampMicrosecondArray,
    };
    use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use datafusion::parquet::file::properties::WriterProperties;
    use deltalake::writer::{DeltaWriter as _, RecordBatchWriter};
    use std::sync::Arc;

    /// Every flat type dp writes, with nulls, NaN-free floats, bounds that
    /// need conversion, and rows spread over several row groups.
    fn batches() -> (Arc<Schema>, Vec<RecordBatch>) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("i16", DataType::Int16, true),
            Field::new("i32", DataType::Int32, false),
            Field::new("i64", DataType::Int64, true),
            Field::new("f32", DataType::Float32, true),
            Field::new("f64", DataType::Float64, true),
            Field::new("flag", DataType::Boolean, true),
            Field::new("name", DataType::Utf8, true),
            Field::new("blob", DataType::Binary, true),
            Field::new("day", DataType::Date32, true),
            Field::new("at", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
            Field::new("local", DataType::Timestamp(TimeUnit::Microsecond, None), true),
            Field::new("amount", DataType::Decimal128(10, 2), true),
            Field::new("big", DataType::Decimal128(38, 0), true),
            Field::new("wide", DataType::Decimal128(20, 4), true),
            Field::new("empty", DataType::Utf8, true),
        ]));
        let batch = |seed: i64| {
            let columns: Vec<ArrayRef> = vec![
                Arc::new(Int16Array::from(vec![Some(-3), None, Some(7)])),
                Arc::new(Int32Array::from(vec![1 + seed as i32, -5, 9])),
                Arc::new(Int64Array::from(vec![Some(i64::MAX - seed), Some(-seed), None])),
                Arc::new(Float32Array::from(vec![Some(0.5), Some(-1.25), None])),
                Arc::new(Float64Array::from(vec![Some(1e300), None, Some(-0.1 * seed as f64)])),
                Arc::new(BooleanArray::from(vec![Some(true), None, Some(seed > 2)])),
                Arc::new(StringArray::from(vec![Some("zebra"), Some("Äpfel"), None])),
                Arc::new(BinaryArray::from(vec![Some(&b"\x00\xff"[..]), None, Some(&b"a"[..])])),
                Arc::new(Date32Array::from(vec![Some(19_000 + seed as i32), Some(-1), None])),
                Arc::new(TimestampMicrosecondArray::from(vec![Some(1_700_000_000_123_456 + seed), Some(0), None]).with_timezone("UTC")),
                Arc::new(TimestampMicrosecondArray::from(vec![Some(1_600_000_000_000_000), None, Some(-86_400_000_001 * seed)])),
                Arc::new(Decimal128Array::from(vec![Some(12_345 * seed as i128), Some(-99), None]).with_precision_and_scale(10, 2).unwrap()),
                Arc::new(Decimal128Array::from(vec![Some(10i128.pow(37) + seed as i128), Some(-7), None]).with_precision_and_scale(38, 0).unwrap()),
                Arc::new(
                    Decimal128Array::from(vec![Some(99_999_999_999_999_999_999 / 10 + seed as i128), None, Some(1)]).with_precision_and_scale(20, 4).unwrap(),
                ),
                Arc::new(StringArray::from(vec![None::<&str>, None, None])),
            ];
            RecordBatch::try_new(schema.clone(), columns).unwrap()
        };
        (schema.clone(), (1..=4).map(batch).collect())
    }

    fn stats_of(dir: &std::path::Path, adds: &[deltalake::kernel::Add]) -> (serde_json::Value, u64) {
        assert_eq!(adds.len(), 1);
        let stats = serde_json::from_str(adds[0].stats.as_deref().unwrap()).unwrap();
        let size = std::fs::metadata(dir.join(&adds[0].path)).unwrap().len();
        assert_eq!(size as i64, adds[0].size, "size of {}", adds[0].path);
        (stats, size)
    }

    /// The local writer's `add` carries the statistics deltalake's writer
    /// computes for the same rows, and files of the same size.
    #[test]
    fn matches_deltalake() {
        let (schema, batches) = batches();
        let props = WriterProperties::builder().set_max_row_group_row_count(Some(5)).build();
        let (ours, theirs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());

        let url = url::Url::from_directory_path(ours.path()).unwrap();
        let mut local = super::super::local_file::LocalFile::new(&url, schema.clone()).unwrap().with_writer_properties(props.clone());
        for b in &batches {
            local.write(b.clone()).unwrap();
        }
        let (ours_stats, ours_size) = stats_of(ours.path(), &local.flush().unwrap());

        let url = url::Url::from_directory_path(theirs.path()).unwrap();
        let adds = tokio::runtime::Runtime::new().unwrap().block_on(async {
            let mut w = RecordBatchWriter::try_new(url.as_str(), schema.clone(), None, None).unwrap().with_writer_properties(props);
            for b in &batches {
                w.write(b.clone()).await.unwrap();
            }
            w.flush().await.unwrap()
        });
        let (mut theirs_stats, theirs_size) = stats_of(theirs.path(), &adds);

        // One deliberate difference: deltalake saturates an integer decimal
        // beyond i64 to i64::MAX, a maximum below the real one that would let
        // a scan skip a file holding matching rows; dp leaves that bound out.
        assert_eq!(theirs_stats["maxValues"]["big"], i64::MAX);
        assert_eq!(ours_stats["maxValues"].get("big"), None);
        theirs_stats["maxValues"].as_object_mut().unwrap().remove("big");
        assert_eq!(ours_stats, theirs_stats);
        assert_eq!(ours_stats["numRecords"], 12);
        assert_eq!(ours_size, theirs_size);
    }

    /// Rows whose schema differs from the table's beyond what Delta
    /// normalizes are refused, naming both schemas; nulls in a non-nullable
    /// column are refused.
    #[test]
    fn refuses_rows_that_do_not_fit() {
        let dir = tempfile::tempdir().unwrap();
        let url = url::Url::from_directory_path(dir.path()).unwrap();
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        let mut local = super::super::local_file::LocalFile::new(&url, schema).unwrap();
        let wrong =
            RecordBatch::try_new(Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, true)])), vec![Arc::new(StringArray::from(vec!["1"])) as ArrayRef])
                .unwrap();
        let err = local.write(wrong).unwrap_err().to_string();
        assert!(err.starts_with("the rows' schema"), "{err}");
        let null = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true)])),
            vec![Arc::new(Int64Array::from(vec![None, Some(1)])) as ArrayRef],
        )
        .unwrap();
        let err = local.write(null).unwrap_err().to_string();
        assert!(err.contains("Column 'id' is declared as non-nullable but contains null values"), "{err}");
        assert!(local.flush().unwrap().is_empty(), "no rows, no file");
    }
}
