//! PostgreSQL extraction: `COPY (SELECT ...) TO STDOUT (FORMAT binary)`
//! decoded straight into Arrow builders and streamed into a zstd Parquet
//! bronze file, one batch at a time (constant memory whatever the table
//! size; the Parquet encoder runs in its own task).
//!
//! Full and incremental extracts both run inside one `REPEATABLE READ`
//! read-only transaction: an incremental extract first reads the new
//! maximum of the watermark column, then copies the rows with
//! `watermark > stored - lookback AND watermark <= new maximum` from the same
//! snapshot, so rows committed while it runs are left for the next run.
//!
//! Types (the reverse of `crate::postgres::types`):
//!
//! | PostgreSQL | Arrow |
//! |---|---|
//! | boolean | Boolean |
//! | smallint, integer, bigint | Int16, Int32, Int64 |
//! | oid | Int64 |
//! | real, double precision | Float32, Float64 |
//! | numeric(p,s) | Decimal128(p,s) (Decimal256 when p > 38) |
//! | numeric (no precision) | Decimal128(38,9); a value with more decimals is an error |
//! | text, varchar, char(n), name, citext, enums | Utf8 |
//! | json, jsonb, xml | Utf8 (the document's text) |
//! | uuid | Utf8 (hyphenated) |
//! | bytea | Binary |
//! | date | Date32 |
//! | timestamp | Timestamp(µs) |
//! | timestamptz | Timestamp(µs, UTC) |
//! | time | Time64(µs) |
//! | interval | Utf8 (ISO 8601, e.g. `P1M2DT3H`) |
//! | domains | their base type |
//! | one-dimensional arrays | List of the element type |
//!
//! Any other type (geometry, ranges, composites, money, inet, ...) is an
//! error naming the table and column, with a hint to cast it in a `query:`.

use anyhow::{Context as _, anyhow, bail};
use bytes::{Buf, BytesMut};
use datafusion::arrow::array::*;
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef, TimeUnit, i256};
use futures::StreamExt;
use std::sync::Arc;
use tokio_postgres::types::{Kind as PgKind, Type};

use super::bronze::{Bronze, BronzeObject, Published};
use super::spec::{PgRelation, PgSpec};
use crate::postgres::connect::{PgPool, pg_err};
use crate::postgres::{ident, literal, qualified};

/// Rows per Arrow batch handed to the Parquet writer.
const BATCH_ROWS: usize = 65_536;
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
const PG_EPOCH_DAYS: i32 = 10_957;

/// How a column's binary values decode.
#[derive(Debug, Clone)]
enum Kind {
    Bool,
    I16,
    I32,
    I64,
    Oid,
    F32,
    F64,
    Numeric(u8, i8),
    Text,
    Jsonb,
    Uuid,
    Interval,
    Bytea,
    Date,
    Ts,
    TsTz,
    Time,
    List(Box<Kind>),
}

impl Kind {
    fn arrow(&self) -> DataType {
        match self {
            Kind::Bool => DataType::Boolean,
            Kind::I16 => DataType::Int16,
            Kind::I32 => DataType::Int32,
            Kind::I64 | Kind::Oid => DataType::Int64,
            Kind::F32 => DataType::Float32,
            Kind::F64 => DataType::Float64,
            Kind::Numeric(p, s) if *p > 38 => DataType::Decimal256(*p, *s),
            Kind::Numeric(p, s) => DataType::Decimal128(*p, *s),
            Kind::Text | Kind::Jsonb | Kind::Uuid | Kind::Interval => DataType::Utf8,
            Kind::Bytea => DataType::Binary,
            Kind::Date => DataType::Date32,
            Kind::Ts => DataType::Timestamp(TimeUnit::Microsecond, None),
            Kind::TsTz => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Kind::Time => DataType::Time64(TimeUnit::Microsecond),
            Kind::List(k) => DataType::List(Arc::new(Field::new("item", k.arrow(), true))),
        }
    }
}

/// The decoder kind of a PostgreSQL type (`typmod` for numeric precision).
fn kind_of(ty: &Type, typmod: i32) -> Option<Kind> {
    match ty.kind() {
        PgKind::Enum(_) => return Some(Kind::Text),
        PgKind::Domain(base) => return kind_of(base, typmod),
        PgKind::Array(elem) => {
            let k = kind_of(elem, typmod)?;
            return if matches!(k, Kind::List(_)) { None } else { Some(Kind::List(Box::new(k))) };
        }
        PgKind::Simple => {}
        _ => return None,
    }
    Some(match ty.oid() {
        16 => Kind::Bool,
        21 => Kind::I16,
        23 => Kind::I32,
        20 => Kind::I64,
        26 => Kind::Oid,
        700 => Kind::F32,
        701 => Kind::F64,
        1700 => {
            if typmod >= 4 {
                let p = ((typmod - 4) >> 16) & 0xffff;
                let s = (typmod - 4) & 0xffff;
                if p > 76 || s > p {
                    return None;
                }
                Kind::Numeric(p as u8, s as i8)
            } else {
                Kind::Numeric(38, 9)
            }
        }
        // text, varchar, char(n), name, json, xml
        25 | 1043 | 1042 | 19 | 114 | 142 => Kind::Text,
        3802 => Kind::Jsonb,
        2950 => Kind::Uuid,
        1186 => Kind::Interval,
        17 => Kind::Bytea,
        1082 => Kind::Date,
        1114 => Kind::Ts,
        1184 => Kind::TsTz,
        1083 => Kind::Time,
        _ if ty.name() == "citext" => Kind::Text,
        _ => return None,
    })
}

/// One column of the extract.
#[derive(Debug, Clone)]
struct Col {
    name: String,
    kind: Kind,
    nullable: bool,
    pg_type: String,
}

/// What an extract did.
#[derive(Debug, Clone)]
pub struct Extract {
    /// `None`: no new rows (nothing written).
    pub published: Option<Published>,
    pub watermark_from: Option<String>,
    pub watermark_to: Option<String>,
    pub schema_version: Option<i64>,
}

/// Inputs of one extract.
pub struct Request<'a> {
    pub source_name: &'a str,
    pub spec: &'a PgSpec,
    /// The stored watermark (`None`: extract everything).
    pub stored: Option<String>,
    pub incremental: bool,
    /// The source is declared incremental (NULL watermarks are an error).
    pub declared_incremental: bool,
    pub run_id: &'a str,
    pub date: &'a str,
    pub mode: &'a str,
}

fn relation_sql(spec: &PgSpec) -> (String, String) {
    match &spec.relation {
        PgRelation::Table(Some(s), t) => (qualified(s, t), format!("{s}.{t}")),
        PgRelation::Table(None, t) => (ident(t), t.clone()),
        PgRelation::Query(q) => (format!("({q})"), "the query".to_string()),
    }
}

/// Runs one extract: schema check through `check_schema` (returns the
/// schema version, or an error under `freeze`), then the COPY into `bronze`.
pub async fn extract<F, Fut>(pool: &PgPool, bronze: &Bronze, req: Request<'_>, check_schema: F) -> anyhow::Result<Extract>
where
    F: FnOnce(SchemaRef) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<i64>>,
{
    let c = pool.get().await?;
    c.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL TIME ZONE 'UTC'").await.map_err(pg_err("starting the snapshot"))?;
    let r = run(&c, bronze, &req, check_schema).await;
    let _ = c.batch_execute(if r.is_ok() { "COMMIT" } else { "ROLLBACK" }).await;
    r
}

async fn run<F, Fut>(c: &tokio_postgres::Client, bronze: &Bronze, req: &Request<'_>, check_schema: F) -> anyhow::Result<Extract>
where
    F: FnOnce(SchemaRef) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<i64>>,
{
    let (rel, label) = relation_sql(req.spec);
    let stmt = c.prepare(&format!("SELECT * FROM {rel} AS dp_src")).await.map_err(|e| {
        let hint = match &req.spec.relation {
            PgRelation::Query(_) => "check `query:` in the ingest block",
            PgRelation::Table(..) => "check `table:` in the ingest block (schema.table)",
        };
        anyhow!("{label}: {}\n  hint: {hint}", crate::postgres::connect::pg_error_text(&e))
    })?;
    let cols = columns(c, &stmt, &label).await?;
    let schema: SchemaRef = Arc::new(Schema::new(cols.iter().map(|c| Field::new(&c.name, c.kind.arrow(), c.nullable)).collect::<Vec<_>>()));

    let mut filter = String::new();
    let (mut wm_from, mut wm_to) = (None, None);
    if let Some(wcol) = &req.spec.watermark_column {
        let Some(col) = cols.iter().find(|c| &c.name == wcol) else {
            bail!(
                "watermark column {wcol} not found in {label} (columns: {})\n  hint: fix watermark_column in the ingest block",
                cols.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
            );
        };
        let ty = match col.kind {
            Kind::Ts | Kind::TsTz | Kind::Date | Kind::I16 | Kind::I32 | Kind::I64 => col.pg_type.clone(),
            _ => bail!(
                "watermark column {wcol} of {label} is {}, not a timestamp, date or integer\n  hint: pick a column that grows when rows change",
                col.pg_type
            ),
        };
        let w = ident(wcol);
        let nulls: i64 = if req.declared_incremental {
            c.query_one(&*format!("SELECT count(*) FROM {rel} AS dp_src WHERE {w} IS NULL"), &[])
                .await
                .map_err(pg_err(format!("counting NULL watermarks in {label}")))?
                .get(0)
        } else {
            0
        };
        if nulls > 0 {
            bail!(
                "{nulls} rows of {label} have NULL in the watermark column {wcol}; incremental extracts would never read them\n  hint: fill {wcol} in the source (e.g. with the row's creation time), or extract the table with mode: full"
            );
        }
        let lower = match (&req.stored, req.incremental) {
            (Some(s), true) => {
                let base = format!("{}::{ty}", literal(s));
                Some(match (&req.spec.lookback, &col.kind) {
                    (None, _) => base,
                    (Some(l), Kind::I16 | Kind::I32 | Kind::I64) => {
                        let n: i64 = l.trim().parse().map_err(|_| anyhow!("lookback '{l}' is not an integer, as the watermark column {wcol} is {ty}"))?;
                        format!("({base} - {n})")
                    }
                    (Some(l), _) => format!("({base} - {}::interval)", literal(l)),
                })
            }
            _ => None,
        };
        let above = lower.as_ref().map(|l| format!(" WHERE {w} > {l}")).unwrap_or_default();
        let hi: Option<String> = c
            .query_one(&*format!("SELECT max({w})::text FROM {rel} AS dp_src{above}"), &[])
            .await
            .map_err(pg_err(format!("reading the new maximum of {wcol} in {label}")))?
            .get(0);
        wm_from = if req.incremental { req.stored.clone() } else { None };
        let Some(hi) = hi else {
            // Nothing newer: the watermark stays.
            return Ok(Extract { published: None, watermark_from: wm_from.clone(), watermark_to: wm_from, schema_version: None });
        };
        let upper = format!("{w} <= {}::{ty}", literal(&hi));
        filter = match lower {
            Some(l) => format!(" WHERE {w} > {l} AND {upper}"),
            None => format!(" WHERE {upper}"),
        };
        wm_to = Some(hi);
    }
    let version = check_schema(schema.clone()).await?;

    let list: Vec<String> = cols.iter().map(|c| ident(&c.name)).collect();
    let sql = format!("COPY (SELECT {} FROM {rel} AS dp_src{filter}) TO STDOUT (FORMAT binary)", list.join(", "));
    let stream = c.copy_out(sql.as_str()).await.map_err(pg_err(format!("starting COPY of {label}")))?;
    let obj: BronzeObject = bronze.next_object(req.date, &req.run_id[..8.min(req.run_id.len())]).await?;
    let mut writer = bronze.writer(&obj, schema.clone())?;
    writer.note("run_id", req.run_id);
    writer.note("source", req.source_name);
    writer.note("mode", req.mode);
    if let Some(v) = &wm_from {
        writer.note("watermark_from", v.clone());
    }
    if let Some(v) = &wm_to {
        writer.note("watermark_to", v.clone());
    }
    writer.note("schema_version", version.to_string());

    // Decoding here, Parquet encoding in its own task: two cores, bounded queue.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<RecordBatch>(2);
    let writer_task = tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            writer.write(&b).await?;
        }
        anyhow::Ok(writer)
    });
    let decoded = decode(stream, &cols, schema.clone(), &label, tx).await;
    let writer = writer_task.await.context("the Parquet writer stopped")?;
    decoded?;
    let published = writer?.finish().await?;
    Ok(Extract { published: Some(published), watermark_from: wm_from, watermark_to: wm_to, schema_version: Some(version) })
}

/// Column names, types and nullability (from the catalog when the column
/// comes from a table).
async fn columns(c: &tokio_postgres::Client, stmt: &tokio_postgres::Statement, label: &str) -> anyhow::Result<Vec<Col>> {
    let mut out = vec![];
    for col in stmt.columns() {
        let mut typmod = col.type_modifier();
        let mut not_null = false;
        if let (Some(oid), Some(num)) = (col.table_oid(), col.column_id())
            && oid != 0
        {
            let r = c
                .query_opt(
                    "SELECT a.attnotnull, t.typtypmod FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid WHERE a.attrelid = $1 AND a.attnum = $2",
                    &[&oid, &num],
                )
                .await
                .map_err(pg_err("reading the catalog"))?;
            if let Some(r) = r {
                not_null = r.get(0);
                let domain_mod: i32 = r.get(1);
                if typmod < 0 {
                    typmod = domain_mod;
                }
            }
        }
        let kind = kind_of(col.type_(), typmod).ok_or_else(|| {
            anyhow!(
                "column {} of {label} has type {}, which dp cannot extract\n  hint: cast it in a `query:` (e.g. {}::text) or leave it out",
                col.name(),
                col.type_().name(),
                ident(col.name())
            )
        })?;
        out.push(Col { name: col.name().to_string(), kind, nullable: !not_null, pg_type: col.type_().name().to_string() });
    }
    Ok(out)
}

/// Decodes COPY's binary stream into batches sent to `tx`.
async fn decode(
    stream: tokio_postgres::CopyOutStream,
    cols: &[Col],
    schema: SchemaRef,
    label: &str,
    tx: tokio::sync::mpsc::Sender<RecordBatch>,
) -> anyhow::Result<u64> {
    futures::pin_mut!(stream);
    let mut buf = BytesMut::new();
    let mut header_done = false;
    let mut builders: Vec<Builder> = cols.iter().map(|c| Builder::new(&c.kind)).collect();
    let mut in_batch = 0usize;
    let mut rows = 0u64;
    let mut ended = false;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(pg_err(format!("COPY of {label} failed")))?;
        buf.extend_from_slice(&chunk);
        if !header_done {
            if buf.len() < 19 {
                continue;
            }
            if &buf[..11] != b"PGCOPY\n\xff\r\n\0" {
                bail!("COPY of {label}: not a binary COPY stream");
            }
            let ext = u32::from_be_bytes(buf[15..19].try_into().unwrap()) as usize;
            if buf.len() < 19 + ext {
                continue;
            }
            buf.advance(19 + ext);
            header_done = true;
        }
        loop {
            let Some(len) = tuple_len(&buf, cols.len(), label)? else { break };
            if len == 2 {
                ended = true;
                buf.advance(2);
                break;
            }
            let mut p = 2;
            for (b, col) in builders.iter_mut().zip(cols) {
                let n = i32::from_be_bytes(buf[p..p + 4].try_into().unwrap());
                p += 4;
                let v = if n < 0 {
                    None
                } else {
                    let s = &buf[p..p + n as usize];
                    p += n as usize;
                    Some(s)
                };
                b.push(v).map_err(|e| anyhow!("column {} of {label} (row {}): {e}", col.name, rows + 1))?;
            }
            buf.advance(len);
            rows += 1;
            in_batch += 1;
            if in_batch == BATCH_ROWS {
                let batch = finish(&mut builders, &schema)?;
                in_batch = 0;
                if tx.send(batch).await.is_err() {
                    bail!("the Parquet writer stopped");
                }
            }
        }
        if ended {
            break;
        }
    }
    if !ended {
        bail!("COPY of {label} ended before its trailer (connection lost?)");
    }
    if in_batch > 0 {
        let batch = finish(&mut builders, &schema)?;
        if tx.send(batch).await.is_err() {
            bail!("the Parquet writer stopped");
        }
    }
    Ok(rows)
}

/// The byte length of the next complete tuple (2 for the trailer), or None
/// when more data is needed.
fn tuple_len(buf: &[u8], ncols: usize, label: &str) -> anyhow::Result<Option<usize>> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let n = i16::from_be_bytes([buf[0], buf[1]]);
    if n == -1 {
        return Ok(Some(2));
    }
    if n as usize != ncols {
        bail!("COPY of {label}: a row has {n} fields, expected {ncols}");
    }
    let mut p = 2;
    for _ in 0..ncols {
        if buf.len() < p + 4 {
            return Ok(None);
        }
        let len = i32::from_be_bytes(buf[p..p + 4].try_into().unwrap());
        p += 4;
        if len > 0 {
            p += len as usize;
        }
    }
    Ok(if buf.len() >= p { Some(p) } else { None })
}

fn finish(builders: &mut [Builder], schema: &SchemaRef) -> anyhow::Result<RecordBatch> {
    let arrays: Vec<ArrayRef> = builders.iter_mut().map(Builder::finish).collect();
    Ok(RecordBatch::try_new(schema.clone(), arrays)?)
}

enum Builder {
    Bool(BooleanBuilder),
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder, bool),
    F32(Float32Builder),
    F64(Float64Builder),
    D128(Decimal128Builder, u8, i8),
    D256(Decimal256Builder, u8, i8),
    Str(StringBuilder, Kind),
    Bin(BinaryBuilder),
    Date(Date32Builder),
    Ts(TimestampMicrosecondBuilder, bool),
    Time(Time64MicrosecondBuilder),
    List { values: Box<Builder>, offsets: Vec<i32>, nulls: Vec<bool>, field: FieldRef },
}

fn be<const N: usize>(v: &[u8]) -> Result<[u8; N], String> {
    v.try_into().map_err(|_| format!("expected {N} bytes, got {}", v.len()))
}

impl Builder {
    fn new(k: &Kind) -> Builder {
        match k {
            Kind::Bool => Builder::Bool(BooleanBuilder::new()),
            Kind::I16 => Builder::I16(Int16Builder::new()),
            Kind::I32 => Builder::I32(Int32Builder::new()),
            Kind::I64 => Builder::I64(Int64Builder::new(), false),
            Kind::Oid => Builder::I64(Int64Builder::new(), true),
            Kind::F32 => Builder::F32(Float32Builder::new()),
            Kind::F64 => Builder::F64(Float64Builder::new()),
            Kind::Numeric(p, s) if *p > 38 => Builder::D256(Decimal256Builder::new(), *p, *s),
            Kind::Numeric(p, s) => Builder::D128(Decimal128Builder::new(), *p, *s),
            Kind::Text | Kind::Jsonb | Kind::Uuid | Kind::Interval => Builder::Str(StringBuilder::new(), k.clone()),
            Kind::Bytea => Builder::Bin(BinaryBuilder::new()),
            Kind::Date => Builder::Date(Date32Builder::new()),
            Kind::Ts => Builder::Ts(TimestampMicrosecondBuilder::new(), false),
            Kind::TsTz => Builder::Ts(TimestampMicrosecondBuilder::new(), true),
            Kind::Time => Builder::Time(Time64MicrosecondBuilder::new()),
            Kind::List(e) => {
                Builder::List { values: Box::new(Builder::new(e)), offsets: vec![0], nulls: vec![], field: Arc::new(Field::new("item", e.arrow(), true)) }
            }
        }
    }

    fn push(&mut self, v: Option<&[u8]>) -> Result<(), String> {
        let Some(v) = v else {
            match self {
                Builder::Bool(b) => b.append_null(),
                Builder::I16(b) => b.append_null(),
                Builder::I32(b) => b.append_null(),
                Builder::I64(b, _) => b.append_null(),
                Builder::F32(b) => b.append_null(),
                Builder::F64(b) => b.append_null(),
                Builder::D128(b, ..) => b.append_null(),
                Builder::D256(b, ..) => b.append_null(),
                Builder::Str(b, _) => b.append_null(),
                Builder::Bin(b) => b.append_null(),
                Builder::Date(b) => b.append_null(),
                Builder::Ts(b, _) => b.append_null(),
                Builder::Time(b) => b.append_null(),
                Builder::List { offsets, nulls, .. } => {
                    offsets.push(*offsets.last().unwrap());
                    nulls.push(false);
                }
            }
            return Ok(());
        };
        match self {
            Builder::Bool(b) => b.append_value(v.first().copied().unwrap_or(0) != 0),
            Builder::I16(b) => b.append_value(i16::from_be_bytes(be(v)?)),
            Builder::I32(b) => b.append_value(i32::from_be_bytes(be(v)?)),
            Builder::I64(b, oid) => b.append_value(if *oid { u32::from_be_bytes(be(v)?) as i64 } else { i64::from_be_bytes(be(v)?) }),
            Builder::F32(b) => b.append_value(f32::from_be_bytes(be(v)?)),
            Builder::F64(b) => b.append_value(f64::from_be_bytes(be(v)?)),
            Builder::D128(b, p, s) => b.append_value(numeric128(v, *p, *s)?),
            Builder::D256(b, _, s) => b.append_value(numeric(v, *s)?),
            Builder::Str(b, k) => match k {
                Kind::Jsonb => b.append_value(std::str::from_utf8(v.get(1..).unwrap_or_default()).map_err(|e| e.to_string())?),
                Kind::Uuid => {
                    let h = hex::encode(v);
                    if h.len() != 32 {
                        return Err("malformed uuid".into());
                    }
                    b.append_value(format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..]))
                }
                Kind::Interval => {
                    let micros = i64::from_be_bytes(be(&v[..8.min(v.len())])?);
                    let days = i32::from_be_bytes(be(v.get(8..12).unwrap_or_default())?);
                    let months = i32::from_be_bytes(be(v.get(12..16).unwrap_or_default())?);
                    b.append_value(iso_interval(months, days, micros))
                }
                _ => b.append_value(std::str::from_utf8(v).map_err(|e| format!("invalid UTF-8: {e}"))?),
            },
            Builder::Bin(b) => b.append_value(v),
            Builder::Date(b) => {
                let d = i32::from_be_bytes(be(v)?);
                if d == i32::MAX || d == i32::MIN {
                    return Err("the date is infinity, which Arrow cannot hold".into());
                }
                b.append_value(d + PG_EPOCH_DAYS)
            }
            Builder::Ts(b, _) => {
                let t = i64::from_be_bytes(be(v)?);
                if t == i64::MAX || t == i64::MIN {
                    return Err("the timestamp is infinity, which Arrow cannot hold".into());
                }
                b.append_value(t + PG_EPOCH_MICROS)
            }
            Builder::Time(b) => b.append_value(i64::from_be_bytes(be(v)?)),
            Builder::List { values, offsets, nulls, .. } => {
                if v.len() < 12 {
                    return Err("malformed array".into());
                }
                let ndim = i32::from_be_bytes(be(&v[0..4])?);
                let mut n = 0i32;
                if ndim > 1 {
                    return Err(format!("{ndim}-dimensional arrays are not supported (only one dimension)"));
                }
                if ndim == 1 {
                    n = i32::from_be_bytes(be(v.get(12..16).ok_or("malformed array")?)?);
                    let mut p = 20;
                    for _ in 0..n {
                        let len = i32::from_be_bytes(be(v.get(p..p + 4).ok_or("malformed array")?)?);
                        p += 4;
                        if len < 0 {
                            values.push(None)?;
                        } else {
                            let e = v.get(p..p + len as usize).ok_or("malformed array")?;
                            p += len as usize;
                            values.push(Some(e))?;
                        }
                    }
                }
                offsets.push(offsets.last().unwrap() + n);
                nulls.push(true);
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::I16(b) => Arc::new(b.finish()),
            Builder::I32(b) => Arc::new(b.finish()),
            Builder::I64(b, _) => Arc::new(b.finish()),
            Builder::F32(b) => Arc::new(b.finish()),
            Builder::F64(b) => Arc::new(b.finish()),
            Builder::D128(b, p, s) => Arc::new(b.finish().with_precision_and_scale(*p, *s).expect("valid precision")),
            Builder::D256(b, p, s) => Arc::new(b.finish().with_precision_and_scale(*p, *s).expect("valid precision")),
            Builder::Str(b, _) => Arc::new(b.finish()),
            Builder::Bin(b) => Arc::new(b.finish()),
            Builder::Date(b) => Arc::new(b.finish()),
            Builder::Ts(b, tz) => {
                let a = b.finish();
                Arc::new(if *tz { a.with_timezone("UTC") } else { a })
            }
            Builder::Time(b) => Arc::new(b.finish()),
            Builder::List { values, offsets, nulls, field, .. } => {
                let vals = values.finish();
                let offs = OffsetBuffer::new(std::mem::replace(offsets, vec![0]).into());
                let nb = NullBuffer::from(std::mem::take(nulls));
                Arc::new(ListArray::new(field.clone(), offs, vals, Some(nb)))
            }
        }
    }
}

/// A binary numeric's digit count (base 10,000), weight and sign.
fn numeric_header(v: &[u8]) -> Result<(usize, i32, u16), String> {
    if v.len() < 8 {
        return Err("malformed numeric".into());
    }
    let ndigits = u16::from_be_bytes([v[0], v[1]]) as usize;
    let weight = i16::from_be_bytes([v[2], v[3]]) as i32;
    let sign = u16::from_be_bytes([v[4], v[5]]);
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Err("NaN cannot be stored as a decimal".into()),
        _ => return Err("infinity cannot be stored as a decimal".into()),
    }
    if v.len() < 8 + 2 * ndigits {
        return Err("malformed numeric".into());
    }
    Ok((ndigits, weight, sign))
}

/// Powers of ten that fit an i128.
const POW10: [i128; 39] = {
    let mut t = [1i128; 39];
    let mut i = 1;
    while i < 39 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// A binary numeric as an unscaled i128 of `numeric(precision, scale)` (the
/// hot path of Decimal128 columns: table look-ups, no 256-bit arithmetic);
/// more decimals than the scale holds, or more digits than the precision,
/// is an error (never rounded).
fn numeric128(v: &[u8], precision: u8, scale: i8) -> Result<i128, String> {
    let (ndigits, weight, sign) = numeric_header(v)?;
    let too_big = || format!("value does not fit numeric({precision},{scale})");
    let mut acc: i128 = 0;
    for i in 0..ndigits {
        let d = u16::from_be_bytes([v[8 + 2 * i], v[9 + 2 * i]]) as i128;
        if d == 0 {
            continue;
        }
        let e = 4 * (weight - i as i32) + scale as i32;
        let term = if e >= 0 {
            POW10.get(e as usize).and_then(|p| d.checked_mul(*p)).ok_or_else(too_big)?
        } else {
            if -e >= 4 || d % POW10[(-e) as usize] != 0 {
                return Err(format!("value has more than {scale} decimals"));
            }
            d / POW10[(-e) as usize]
        };
        acc = acc.checked_add(term).ok_or_else(too_big)?;
    }
    if acc.unsigned_abs() >= POW10[precision.min(38) as usize].unsigned_abs() {
        return Err(too_big());
    }
    Ok(if sign == 0x4000 { -acc } else { acc })
}

/// A binary numeric as an unscaled integer at `scale`; more decimals than
/// the scale holds is an error (never rounded).
fn numeric(v: &[u8], scale: i8) -> Result<i256, String> {
    let (ndigits, weight, sign) = numeric_header(v)?;
    let ten = i256::from_i128(10);
    let pow10 = |e: u32| -> Option<i256> {
        let mut r = i256::from_i128(1);
        for _ in 0..e {
            r = r.checked_mul(ten)?;
        }
        Some(r)
    };
    let overflow = || "value out of range for a 76-digit decimal".to_string();
    let mut acc = i256::from_i128(0);
    for i in 0..ndigits {
        let d = u16::from_be_bytes([v[8 + 2 * i], v[9 + 2 * i]]) as i128;
        if d == 0 {
            continue;
        }
        let e = 4 * (weight - i as i32) + scale as i32;
        let term = if e >= 0 {
            i256::from_i128(d).checked_mul(pow10(e as u32).ok_or_else(overflow)?).ok_or_else(overflow)?
        } else {
            // A non-zero digit entirely below the scale, or one whose low
            // decimals are: more decimals than the column keeps.
            if -e >= 4 || d % 10i128.pow((-e) as u32) != 0 {
                return Err(format!("value has more than {scale} decimals"));
            }
            i256::from_i128(d / 10i128.pow((-e) as u32))
        };
        acc = acc.checked_add(term).ok_or_else(overflow)?;
    }
    Ok(if sign == 0x4000 { acc.checked_neg().ok_or_else(overflow)? } else { acc })
}

/// `P1Y2M3DT4H5M6.5S` (PostgreSQL's `iso_8601` interval style).
fn iso_interval(months: i32, days: i32, micros: i64) -> String {
    if months == 0 && days == 0 && micros == 0 {
        return "PT0S".into();
    }
    let mut s = String::from("P");
    let (y, m) = (months / 12, months % 12);
    if y != 0 {
        s.push_str(&format!("{y}Y"));
    }
    if m != 0 {
        s.push_str(&format!("{m}M"));
    }
    if days != 0 {
        s.push_str(&format!("{days}D"));
    }
    if micros != 0 {
        s.push('T');
        let h = micros / 3_600_000_000;
        let mi = (micros % 3_600_000_000) / 60_000_000;
        let us = micros % 60_000_000;
        if h != 0 {
            s.push_str(&format!("{h}H"));
        }
        if mi != 0 {
            s.push_str(&format!("{mi}M"));
        }
        if us != 0 {
            let secs = format!("{}.{:06}", us / 1_000_000, (us % 1_000_000).abs());
            s.push_str(secs.trim_end_matches('0').trim_end_matches('.'));
            s.push('S');
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(ndigits: &[u16], weight: i16, neg: bool, dscale: u16) -> Vec<u8> {
        let mut v = vec![];
        v.extend_from_slice(&(ndigits.len() as u16).to_be_bytes());
        v.extend_from_slice(&weight.to_be_bytes());
        v.extend_from_slice(&(if neg { 0x4000u16 } else { 0 }).to_be_bytes());
        v.extend_from_slice(&dscale.to_be_bytes());
        for d in ndigits {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v
    }

    #[test]
    fn numerics_decode_exactly_or_fail() {
        // 12345.67 = [1, 2345, 6700], weight 1
        assert_eq!(numeric(&num(&[1, 2345, 6700], 1, false, 2), 2).unwrap(), i256::from_i128(1234567));
        assert_eq!(numeric(&num(&[1, 2345, 6700], 1, true, 2), 4).unwrap(), i256::from_i128(-123456700));
        // 0.001 = [10], weight -1
        assert_eq!(numeric(&num(&[10], -1, false, 3), 3).unwrap(), i256::from_i128(1));
        assert_eq!(numeric(&num(&[10], -1, false, 3), 2).unwrap_err(), "value has more than 2 decimals");
        // 0.00001 = [1000], weight -2.
        assert_eq!(numeric(&num(&[1000], -2, false, 7), 0).unwrap_err(), "value has more than 0 decimals");
        assert_eq!(numeric(&num(&[1000], -2, false, 7), 7).unwrap(), i256::from_i128(100));
        // The Decimal128 path agrees, and checks the precision.
        for (digits, weight, neg, p, s) in
            [(&[1u16, 2345, 6700][..], 1i16, false, 12u8, 2i8), (&[1, 2345, 6700], 1, true, 38, 4), (&[10], -1, false, 5, 3), (&[1000], -2, false, 9, 7)]
        {
            let v = num(digits, weight, neg, s as u16);
            assert_eq!(i256::from_i128(numeric128(&v, p, s).unwrap()), numeric(&v, s).unwrap());
        }
        assert_eq!(numeric128(&num(&[1, 2345, 6700], 1, false, 2), 6, 2).unwrap_err(), "value does not fit numeric(6,2)");
        assert_eq!(numeric128(&num(&[10], -1, false, 3), 5, 2).unwrap_err(), "value has more than 2 decimals");
        assert_eq!(numeric128(&num(&[9999; 12], 11, false, 0), 38, 0).unwrap_err(), "value does not fit numeric(38,0)");
    }

    #[test]
    fn intervals_print_as_iso_8601() {
        assert_eq!(iso_interval(14, 3, 3_600_000_000 + 5_500_000), "P1Y2M3DT1H5.5S");
        assert_eq!(iso_interval(0, 0, 0), "PT0S");
    }
}
