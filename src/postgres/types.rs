//! Arrow → PostgreSQL types. Every Arrow type dp can produce has a column
//! type, and `copy.rs` encodes its values in COPY's binary format:
//!
//! | Arrow | PostgreSQL |
//! |---|---|
//! | Boolean | boolean |
//! | Int8, Int16, UInt8 | smallint |
//! | Int32, UInt16 | integer |
//! | Int64, UInt32 | bigint |
//! | UInt64 | numeric(20,0) |
//! | Float16, Float32 | real |
//! | Float64 | double precision |
//! | Decimal(p, s) | numeric(p, s) (plain numeric when s < 0 or s > p) |
//! | Utf8, LargeUtf8, Utf8View, Null | text |
//! | Binary, LargeBinary, BinaryView, FixedSizeBinary | bytea |
//! | Date32, Date64 | date |
//! | Timestamp(_, None) | timestamp |
//! | Timestamp(_, Some(tz)) | timestamptz |
//! | Time32, Time64 | time |
//! | Interval, Duration | interval |
//! | List, LargeList, FixedSizeList, Struct, Map | jsonb |
//! | Dictionary(_, V) | V's type |
//!
//! Timestamps are stored with microsecond precision (PostgreSQL's), so
//! nanoseconds are truncated toward negative infinity.

use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};

use super::ident;

/// The PostgreSQL column type for an Arrow type.
pub fn pg_type(dt: &DataType) -> anyhow::Result<String> {
    use DataType::*;
    Ok(match dt {
        Boolean => "boolean".into(),
        Int8 | Int16 | UInt8 => "smallint".into(),
        Int32 | UInt16 => "integer".into(),
        Int64 | UInt32 => "bigint".into(),
        UInt64 => "numeric(20,0)".into(),
        Float16 | Float32 => "real".into(),
        Float64 => "double precision".into(),
        Decimal32(p, s) | Decimal64(p, s) | Decimal128(p, s) | Decimal256(p, s) => {
            if *s < 0 || *s as i16 > *p as i16 {
                "numeric".into()
            } else {
                format!("numeric({p},{s})")
            }
        }
        Utf8 | LargeUtf8 | Utf8View | Null => "text".into(),
        Binary | LargeBinary | BinaryView | FixedSizeBinary(_) => "bytea".into(),
        Date32 | Date64 => "date".into(),
        Timestamp(_, None) => "timestamp".into(),
        Timestamp(_, Some(_)) => "timestamptz".into(),
        Time32(_) | Time64(_) => "time".into(),
        Interval(_) | Duration(_) => "interval".into(),
        List(_) | LargeList(_) | FixedSizeList(..) | ListView(_) | LargeListView(_) | Struct(_) | Map(..) => "jsonb".into(),
        Dictionary(_, v) => pg_type(v)?,
        RunEndEncoded(_, v) => pg_type(v.data_type())?,
        Union(..) => anyhow::bail!("union columns cannot be published to PostgreSQL\n  hint: cast the column to a concrete type in the model"),
    })
}

/// The column list of `CREATE TABLE` for a schema.
pub fn column_defs(schema: &Schema) -> anyhow::Result<String> {
    let cols: Vec<String> = schema.fields().iter().map(|f| column_def(f)).collect::<anyhow::Result<_>>()?;
    Ok(cols.join(", "))
}

fn column_def(f: &Field) -> anyhow::Result<String> {
    let ty = pg_type(f.data_type()).map_err(|e| anyhow::anyhow!("column {}: {e}", f.name()))?;
    Ok(format!("{} {ty}{}", ident(f.name()), if f.is_nullable() { "" } else { " NOT NULL" }))
}

/// The Arrow type a column is converted to before encoding (a few types are
/// cast to a sibling the encoder handles).
pub fn encodable(dt: &DataType) -> DataType {
    use DataType::*;
    match dt {
        Int8 | UInt8 => Int16,
        UInt16 => Int32,
        UInt32 => Int64,
        UInt64 => Decimal128(20, 0),
        Float16 => Float32,
        Decimal32(p, s) | Decimal64(p, s) => Decimal128(*p, *s),
        Date64 => Date32,
        Time32(_) => Time64(TimeUnit::Microsecond),
        Time64(TimeUnit::Nanosecond) => Time64(TimeUnit::Microsecond),
        Dictionary(_, v) => encodable(v),
        RunEndEncoded(_, v) => encodable(v.data_type()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn column_types_follow_the_table() {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("order", DataType::Utf8View, true),
            Field::new("amount", DataType::Decimal128(18, 2), true),
            Field::new("at", DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())), true),
            Field::new("tags", DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))), true),
            Field::new("n", DataType::UInt64, true),
        ]);
        assert_eq!(
            column_defs(&schema).unwrap(),
            r#""id" bigint NOT NULL, "order" text, "amount" numeric(18,2), "at" timestamptz, "tags" jsonb, "n" numeric(20,0)"#
        );
    }
}
