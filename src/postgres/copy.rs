//! Streaming Arrow record batches into PostgreSQL with `COPY ... FROM STDIN
//! (FORMAT binary)`.
//!
//! Batches are encoded straight from Arrow's buffers into COPY's binary row
//! format (no per-value allocation, no text round trip) and sent in chunks
//! of about 1 MiB as they arrive, so memory stays bounded whatever the table
//! size. The row count the server reports is checked against the rows sent.

use anyhow::{Context as _, bail};
use bytes::{BufMut, BytesMut};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::buffer::{NullBuffer, ScalarBuffer};
use datafusion::arrow::datatypes::*;
use datafusion::arrow::json::writer::{EncoderOptions, NullableEncoder, make_encoder};
use datafusion::physical_plan::SendableRecordBatchStream;
use futures::{SinkExt, StreamExt};

use super::connect::pg_err;
use super::types::encodable;

const CHUNK: usize = 1 << 20;
/// Microseconds between 1970-01-01 and PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
const PG_EPOCH_DAYS: i32 = 10_957;

/// Streams `stream` into `COPY <target> FROM STDIN (FORMAT binary)` and
/// returns the number of rows copied. `target` is the quoted table name with
/// an optional column list. Encoding runs in its own task, a few chunks
/// ahead of the socket, so reading, encoding and the server's work overlap.
pub async fn copy_in(client: &tokio_postgres::Client, target: &str, stream: SendableRecordBatchStream) -> anyhow::Result<u64> {
    let sql = format!("COPY {target} FROM STDIN (FORMAT binary)");
    let sink = client.copy_in::<_, bytes::Bytes>(&sql).await.map_err(pg_err(format!("could not start COPY into {target}")))?;
    futures::pin_mut!(sink);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(4);
    let producer = tokio::spawn(encode_chunks(stream, tx));
    let sent = async {
        while let Some(chunk) = rx.recv().await {
            sink.send(chunk).await.map_err(pg_err(format!("COPY into {target} failed")))?;
        }
        anyhow::Ok(())
    }
    .await;
    if let Err(e) = sent {
        producer.abort();
        return Err(e);
    }
    let sent = producer.await.context("the COPY encoder stopped")??;
    let copied = sink.as_mut().finish().await.map_err(pg_err(format!("COPY into {target} failed")))?;
    if copied != sent {
        bail!("COPY into {target}: PostgreSQL stored {copied} rows but {sent} were sent");
    }
    Ok(copied)
}

/// Encodes the stream into COPY chunks of about 1 MiB (header first,
/// trailer last); returns the rows encoded.
async fn encode_chunks(mut stream: SendableRecordBatchStream, tx: tokio::sync::mpsc::Sender<bytes::Bytes>) -> anyhow::Result<u64> {
    let mut buf = BytesMut::with_capacity(CHUNK + CHUNK / 4);
    buf.put_slice(b"PGCOPY\n\xff\r\n\0");
    buf.put_i32(0);
    buf.put_i32(0);
    let mut sent: u64 = 0;
    let mut scratch = Vec::new();
    while let Some(batch) = stream.next().await {
        let batch = batch.context("reading the rows to copy")?;
        sent += batch.num_rows() as u64;
        encode_batch(&batch, &mut buf, &mut scratch)?;
        if buf.len() >= CHUNK && tx.send(buf.split().freeze()).await.is_err() {
            return Ok(sent);
        }
    }
    buf.put_i16(-1);
    let _ = tx.send(buf.split().freeze()).await;
    Ok(sent)
}

/// One column, ready to encode.
enum Col<'a> {
    Null,
    Bool(&'a datafusion::arrow::array::BooleanArray),
    I16(&'a ScalarBuffer<i16>),
    I32(&'a ScalarBuffer<i32>),
    I64(&'a ScalarBuffer<i64>),
    F32(&'a ScalarBuffer<f32>),
    F64(&'a ScalarBuffer<f64>),
    Dec128(&'a ScalarBuffer<i128>, i8),
    Dec256(&'a ScalarBuffer<i256>, i8),
    Str(&'a datafusion::arrow::array::StringArray),
    LStr(&'a datafusion::arrow::array::LargeStringArray),
    VStr(&'a datafusion::arrow::array::StringViewArray),
    Bin(&'a datafusion::arrow::array::BinaryArray),
    LBin(&'a datafusion::arrow::array::LargeBinaryArray),
    VBin(&'a datafusion::arrow::array::BinaryViewArray),
    FBin(&'a datafusion::arrow::array::FixedSizeBinaryArray),
    Date(&'a ScalarBuffer<i32>),
    /// Values and the unit's nanoseconds per tick.
    Ts(&'a ScalarBuffer<i64>, TimeUnit),
    Time(&'a ScalarBuffer<i64>),
    IntervalYm(&'a ScalarBuffer<i32>),
    IntervalDt(&'a ScalarBuffer<IntervalDayTime>),
    IntervalMdn(&'a ScalarBuffer<IntervalMonthDayNano>),
    Duration(&'a ScalarBuffer<i64>, TimeUnit),
    Json(NullableEncoder<'a>),
}

fn to_micros(v: i64, unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => v.saturating_mul(1_000_000),
        TimeUnit::Millisecond => v.saturating_mul(1_000),
        TimeUnit::Microsecond => v,
        TimeUnit::Nanosecond => v.div_euclid(1_000),
    }
}

fn encode_batch(batch: &RecordBatch, buf: &mut BytesMut, scratch: &mut Vec<u8>) -> anyhow::Result<()> {
    let arrays: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .zip(batch.schema().fields())
        .map(|(a, f)| {
            let want = encodable(a.data_type());
            if &want == a.data_type() {
                Ok(a.clone())
            } else {
                datafusion::arrow::compute::cast(a, &want).with_context(|| format!("column {}: converting {} for PostgreSQL", f.name(), a.data_type()))
            }
        })
        .collect::<anyhow::Result<_>>()?;
    let schema = batch.schema();
    let json_opts = EncoderOptions::default();
    let fields: Vec<FieldRef> = schema.fields().iter().cloned().collect();
    let mut cols: Vec<(Col, Option<NullBuffer>)> = Vec::with_capacity(arrays.len());
    for (a, f) in arrays.iter().zip(&fields) {
        let nulls = a.logical_nulls();
        let col = match a.data_type() {
            DataType::Null => Col::Null,
            DataType::Boolean => Col::Bool(a.as_boolean()),
            DataType::Int16 => Col::I16(a.as_primitive::<Int16Type>().values()),
            DataType::Int32 => Col::I32(a.as_primitive::<Int32Type>().values()),
            DataType::Int64 => Col::I64(a.as_primitive::<Int64Type>().values()),
            DataType::Float32 => Col::F32(a.as_primitive::<Float32Type>().values()),
            DataType::Float64 => Col::F64(a.as_primitive::<Float64Type>().values()),
            DataType::Decimal128(_, s) => Col::Dec128(a.as_primitive::<Decimal128Type>().values(), *s),
            DataType::Decimal256(_, s) => Col::Dec256(a.as_primitive::<Decimal256Type>().values(), *s),
            DataType::Utf8 => Col::Str(a.as_string::<i32>()),
            DataType::LargeUtf8 => Col::LStr(a.as_string::<i64>()),
            DataType::Utf8View => Col::VStr(a.as_string_view()),
            DataType::Binary => Col::Bin(a.as_binary::<i32>()),
            DataType::LargeBinary => Col::LBin(a.as_binary::<i64>()),
            DataType::BinaryView => Col::VBin(a.as_binary_view()),
            DataType::FixedSizeBinary(_) => Col::FBin(a.as_fixed_size_binary()),
            DataType::Date32 => Col::Date(a.as_primitive::<Date32Type>().values()),
            DataType::Timestamp(unit, _) => Col::Ts(
                match unit {
                    TimeUnit::Second => a.as_primitive::<TimestampSecondType>().values(),
                    TimeUnit::Millisecond => a.as_primitive::<TimestampMillisecondType>().values(),
                    TimeUnit::Microsecond => a.as_primitive::<TimestampMicrosecondType>().values(),
                    TimeUnit::Nanosecond => a.as_primitive::<TimestampNanosecondType>().values(),
                },
                *unit,
            ),
            DataType::Time64(_) => Col::Time(a.as_primitive::<Time64MicrosecondType>().values()),
            DataType::Interval(IntervalUnit::YearMonth) => Col::IntervalYm(a.as_primitive::<IntervalYearMonthType>().values()),
            DataType::Interval(IntervalUnit::DayTime) => Col::IntervalDt(a.as_primitive::<IntervalDayTimeType>().values()),
            DataType::Interval(IntervalUnit::MonthDayNano) => Col::IntervalMdn(a.as_primitive::<IntervalMonthDayNanoType>().values()),
            DataType::Duration(unit) => Col::Duration(
                match unit {
                    TimeUnit::Second => a.as_primitive::<DurationSecondType>().values(),
                    TimeUnit::Millisecond => a.as_primitive::<DurationMillisecondType>().values(),
                    TimeUnit::Microsecond => a.as_primitive::<DurationMicrosecondType>().values(),
                    TimeUnit::Nanosecond => a.as_primitive::<DurationNanosecondType>().values(),
                },
                *unit,
            ),
            DataType::List(_)
            | DataType::LargeList(_)
            | DataType::FixedSizeList(..)
            | DataType::ListView(_)
            | DataType::LargeListView(_)
            | DataType::Struct(_)
            | DataType::Map(..) => Col::Json(make_encoder(f, a.as_ref(), &json_opts).with_context(|| format!("column {}: encoding as JSON", f.name()))?),
            other => bail!("column {}: type {other} cannot be published to PostgreSQL\n  hint: cast it in the model", f.name()),
        };
        cols.push((col, nulls));
    }
    let ncols = i16::try_from(cols.len()).context("PostgreSQL tables hold at most 1600 columns")?;
    buf.reserve(batch.num_rows() * (2 + cols.len() * 12));
    for row in 0..batch.num_rows() {
        buf.put_i16(ncols);
        for (col, nulls) in cols.iter_mut() {
            // A Null column's logical nulls are all set.
            if nulls.as_ref().is_some_and(|n| n.is_null(row)) {
                buf.put_i32(-1);
                continue;
            }
            encode_value(col, row, buf, scratch);
        }
    }
    Ok(())
}

fn put_bytes(buf: &mut BytesMut, b: &[u8]) {
    buf.put_i32(b.len() as i32);
    buf.put_slice(b);
}

fn encode_value(col: &mut Col, row: usize, buf: &mut BytesMut, scratch: &mut Vec<u8>) {
    match col {
        Col::Null => buf.put_i32(-1),
        Col::Bool(a) => {
            buf.put_i32(1);
            buf.put_u8(a.value(row) as u8);
        }
        Col::I16(v) => {
            buf.put_i32(2);
            buf.put_i16(v[row]);
        }
        Col::I32(v) => {
            buf.put_i32(4);
            buf.put_i32(v[row]);
        }
        Col::I64(v) => {
            buf.put_i32(8);
            buf.put_i64(v[row]);
        }
        Col::F32(v) => {
            buf.put_i32(4);
            buf.put_f32(v[row]);
        }
        Col::F64(v) => {
            buf.put_i32(8);
            buf.put_f64(v[row]);
        }
        Col::Dec128(v, s) => put_numeric_i128(buf, v[row], *s),
        Col::Dec256(v, s) => {
            let text = v[row].to_string();
            let (neg, digits) = match text.strip_prefix('-') {
                Some(d) => (true, d),
                None => (false, text.as_str()),
            };
            put_numeric_digits(buf, neg, digits, *s);
        }
        Col::Str(a) => put_bytes(buf, a.value(row).as_bytes()),
        Col::LStr(a) => put_bytes(buf, a.value(row).as_bytes()),
        Col::VStr(a) => put_bytes(buf, a.value(row).as_bytes()),
        Col::Bin(a) => put_bytes(buf, a.value(row)),
        Col::LBin(a) => put_bytes(buf, a.value(row)),
        Col::VBin(a) => put_bytes(buf, a.value(row)),
        Col::FBin(a) => put_bytes(buf, a.value(row)),
        Col::Date(v) => {
            buf.put_i32(4);
            buf.put_i32(v[row].saturating_sub(PG_EPOCH_DAYS));
        }
        Col::Ts(v, unit) => {
            buf.put_i32(8);
            buf.put_i64(to_micros(v[row], *unit).saturating_sub(PG_EPOCH_MICROS));
        }
        Col::Time(v) => {
            buf.put_i32(8);
            buf.put_i64(v[row]);
        }
        Col::IntervalYm(v) => put_interval(buf, 0, 0, v[row]),
        Col::IntervalDt(v) => put_interval(buf, v[row].milliseconds as i64 * 1000, v[row].days, 0),
        Col::IntervalMdn(v) => put_interval(buf, v[row].nanoseconds.div_euclid(1000), v[row].days, v[row].months),
        Col::Duration(v, unit) => put_interval(buf, to_micros(v[row], *unit), 0, 0),
        Col::Json(enc) => {
            scratch.clear();
            scratch.push(1); // jsonb binary format version
            enc.encode(row, scratch);
            put_bytes(buf, scratch);
        }
    }
}

fn put_interval(buf: &mut BytesMut, micros: i64, days: i32, months: i32) {
    buf.put_i32(16);
    buf.put_i64(micros);
    buf.put_i32(days);
    buf.put_i32(months);
}

/// numeric in binary form: base-10000 digits around the decimal point.
fn put_numeric_i128(buf: &mut BytesMut, v: i128, scale: i8) {
    let neg = v < 0;
    let abs = v.unsigned_abs();
    if scale < 0 || abs > u128::MAX / 1000 {
        return put_numeric_digits(buf, neg, &abs.to_string(), scale);
    }
    let s = scale as u32;
    let pad = (4 - s % 4) % 4;
    let mut x = abs * 10u128.pow(pad);
    let frac_groups = ((s + pad) / 4) as i16;
    // Least significant group first.
    let mut groups = [0i16; 12];
    let mut n = 0usize;
    while x > 0 {
        groups[n] = (x % 10_000) as i16;
        x /= 10_000;
        n += 1;
    }
    let weight = n as i16 - frac_groups - 1;
    let mut lo = 0;
    while lo < n && groups[lo] == 0 {
        lo += 1;
    }
    write_numeric(buf, neg && n > 0, if n == 0 { 0 } else { weight }, s as u16, groups[lo..n].iter().rev().copied());
}

/// The same from decimal digits (Decimal256, negative scales).
fn put_numeric_digits(buf: &mut BytesMut, neg: bool, digits: &str, scale: i8) {
    let (digits, scale) = if scale < 0 { (format!("{digits}{}", "0".repeat((-scale) as usize)), 0usize) } else { (digits.to_string(), scale as usize) };
    let pad = (4 - scale % 4) % 4;
    let padded = format!("{digits}{}", "0".repeat(pad));
    let lead = (4 - padded.len() % 4) % 4;
    let padded = format!("{}{padded}", "0".repeat(lead));
    let mut groups: Vec<i16> = padded.as_bytes().chunks(4).map(|c| std::str::from_utf8(c).unwrap_or("0").parse().unwrap_or(0)).collect();
    let frac_groups = ((scale + pad) / 4) as i16;
    let mut weight = groups.len() as i16 - frac_groups - 1;
    while groups.first() == Some(&0) {
        groups.remove(0);
        weight -= 1;
    }
    while groups.last() == Some(&0) {
        groups.pop();
    }
    let empty = groups.is_empty();
    write_numeric(buf, neg && !empty, if empty { 0 } else { weight }, scale as u16, groups.into_iter());
}

fn write_numeric(buf: &mut BytesMut, neg: bool, weight: i16, dscale: u16, digits: impl ExactSizeIterator<Item = i16>) {
    let nd = digits.len();
    buf.put_i32(8 + 2 * nd as i32);
    buf.put_i16(nd as i16);
    buf.put_i16(weight);
    buf.put_u16(if neg { 0x4000 } else { 0 });
    buf.put_u16(dscale);
    for d in digits {
        buf.put_i16(d);
    }
}

/// For tests: the binary COPY bytes of one batch (without header/trailer).
#[cfg(test)]
pub(crate) fn encode_for_test(batch: &RecordBatch) -> Vec<u8> {
    let mut buf = BytesMut::new();
    encode_batch(batch, &mut buf, &mut Vec::new()).unwrap();
    buf.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn numeric(v: i128, s: i8) -> Vec<u8> {
        let mut b = BytesMut::new();
        put_numeric_i128(&mut b, v, s);
        b.to_vec()
    }

    fn numeric_text(neg: bool, d: &str, s: i8) -> Vec<u8> {
        let mut b = BytesMut::new();
        put_numeric_digits(&mut b, neg, d, s);
        b.to_vec()
    }

    /// (ndigits, weight, sign, dscale, digits...)
    fn parts(b: &[u8]) -> Vec<i32> {
        let mut out = vec![];
        for c in b[4..].chunks(2) {
            out.push(i16::from_be_bytes([c[0], c[1]]) as i32);
        }
        out
    }

    #[test]
    fn numeric_groups_align_on_the_decimal_point() {
        // 100.5 → digits [100, 5000], weight 0, dscale 1
        assert_eq!(parts(&numeric(1005, 1)), vec![2, 0, 0, 1, 100, 5000]);
        // -12345.6789 → [1, 2345, 6789], weight 1, negative, dscale 4
        assert_eq!(parts(&numeric(-123456789, 4)), vec![3, 1, 0x4000, 4, 1, 2345, 6789]);
        // 0.00000005 → [5], weight -2, dscale 8
        assert_eq!(parts(&numeric(5, 8)), vec![1, -2, 0, 8, 5]);
        // 0 at scale 2 → no digits
        assert_eq!(parts(&numeric(0, 2)), vec![0, 0, 0, 2]);
        // 1000000 at scale 0 → [100, 0] trimmed to [100], weight 1
        assert_eq!(parts(&numeric(1_000_000, 0)), vec![1, 1, 0, 0, 100]);
        // 1.5e3 as 15 with scale -2
        assert_eq!(parts(&numeric(15, -2)), vec![1, 0, 0, 0, 1500]);
    }

    #[test]
    fn digit_path_agrees_with_the_integer_path() {
        for (v, s) in [(1005i128, 1i8), (-123456789, 4), (5, 8), (0, 2), (1_000_000, 0), (99_999_999, 3), (10_000, 4)] {
            let d = v.unsigned_abs().to_string();
            assert_eq!(numeric(v, s), numeric_text(v < 0, &d, s), "{v} scale {s}");
        }
    }

    #[test]
    fn a_null_typed_column_is_all_nulls() {
        let batch = RecordBatch::try_from_iter([("n", Arc::new(datafusion::arrow::array::NullArray::new(2)) as ArrayRef)]).unwrap();
        let row = [&[0, 1][..], &(-1i32).to_be_bytes()].concat();
        assert_eq!(encode_for_test(&batch), [row.clone(), row].concat());
    }

    #[test]
    fn timestamps_shift_to_the_2000_epoch_in_microseconds() {
        assert_eq!(to_micros(-1, TimeUnit::Nanosecond), -1);
        assert_eq!(to_micros(1_999, TimeUnit::Nanosecond), 1);
        let batch = RecordBatch::try_from_iter([(
            "t",
            Arc::new(datafusion::arrow::array::TimestampMicrosecondArray::from(vec![Some(PG_EPOCH_MICROS + 7), None])) as ArrayRef,
        )])
        .unwrap();
        let b = encode_for_test(&batch);
        // row 1: ncols=1, len=8, value 7; row 2: ncols=1, len=-1
        assert_eq!(b, [&[0, 1, 0, 0, 0, 8][..], &7i64.to_be_bytes(), &[0, 1], &(-1i32).to_be_bytes()].concat());
    }
}
