//! Counted conditions that only compare one key with literals, answered
//! from one pass that sorts each row into a bucket.
//!
//! A suite holds many row conditions on one column that differ only in
//! their bounds: `c >= 0 and c <= 100`, `c >= -3 and c <= 250`, `c in
//! ('a', 'b')`, `character_length(cast(c as varchar)) <= 40`... Evaluated
//! one by one, each costs a pass of comparisons over every row. But such a
//! condition reads its column only through one key `K` (the column itself,
//! or a deterministic expression of that one column) that it compares with
//! literals (`=`, `<>`, `<`, `<=`, `>`, `>=`, `is [not] distinct from`, `in
//! (...)`), or tests for null. Between two consecutive literals of the
//! sorted set of every literal the group compares `K` with, and at each
//! literal, its truth cannot change. So the pass computes `K` once per
//! batch, finds each row's bucket by binary search among the literals (in
//! Arrow's row format, whose byte order is the order the comparison kernels
//! use: total order for floats, bytes for strings), and counts rows per
//! bucket, keeping the first row of each bucket as its representative
//! (strings the partition has already met are looked up in a bounded map
//! instead of searched again: see `BytesCache`). At
//! the end each condition is evaluated once per non-empty bucket, on its
//! representative, and the bucket counts where it holds are summed: the
//! same count as evaluating it on every row, at `O(rows · log literals)`
//! for the whole group instead of `O(rows · conditions)`.
//!
//! Rows whose column is null form one bucket (they all have the same `K`),
//! and rows whose `K` is null another; a condition that only tests its
//! column for null joins the column's own group.

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch, RecordBatchOptions, new_null_array};
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::expressions::{BinaryExpr, Column, InListExpr, IsNotNullExpr, IsNullExpr, Literal};
use datafusion::physical_expr::utils::collect_columns;
use datafusion::physical_plan::PhysicalExpr;
use std::sync::Arc;

/// The groups of one scan: conditions sharing a key.
#[derive(Default)]
pub(super) struct Groups {
    groups: Vec<Group>,
}

struct Group {
    /// The input column the key reads.
    column: usize,
    key: Arc<dyn PhysicalExpr>,
    /// `key`'s text, which identifies the group.
    name: String,
    literals: Vec<ScalarValue>,
    /// The literals in row format, sorted and distinct (after `seal`).
    thresholds: Vec<Box<[u8]>>,
    /// The same literals as native values, when the key's type has them.
    native: Option<Native>,
    key_rows: Option<RowConverter>,
    column_rows: Option<RowConverter>,
}

impl Group {
    /// Buckets: below, at and between the thresholds (`2k + 1`), then the
    /// null-column bucket and the null-key bucket.
    fn buckets(&self) -> usize {
        2 * self.thresholds.len() + 3
    }
}

impl Groups {
    /// The group that the counted condition `p` (which reads only the
    /// input column `column`, deterministically) joins, if its truth only
    /// depends on where its key falls among literals.
    pub fn add(&mut self, p: &Arc<dyn PhysicalExpr>, column: usize, schema: &Schema) -> Option<usize> {
        let mut keys: Vec<Arc<dyn PhysicalExpr>> = vec![];
        candidate_keys(p, &mut keys);
        // no comparison: the column itself, for conditions that only test it for null
        let key = match keys.first() {
            Some(k) => k.clone(),
            None => Arc::new(Column::new(schema.fields().get(column)?.name(), column)),
        };
        let name = key.to_string();
        if keys.iter().any(|k| k.to_string() != name) {
            return None;
        }
        let key_type = key.data_type(schema).ok()?;
        let reads = collect_columns(&key);
        if !orderable(&key_type) || reads.is_empty() || reads.iter().any(|c| c.index() != column) {
            return None;
        }
        let mut literals = vec![];
        if !constant_per_bucket(p, &name, &key_type, column, &mut literals) {
            return None;
        }
        let g = match self.groups.iter().position(|g| g.name == name && g.column == column) {
            Some(g) => g,
            None => {
                self.groups.push(Group { column, key, name, literals: vec![], thresholds: vec![], native: None, key_rows: None, column_rows: None });
                self.groups.len() - 1
            }
        };
        self.groups[g].literals.extend(literals);
        Some(g)
    }

    /// Sorts each group's literals into thresholds; call once, after every `add`.
    pub fn seal(&mut self, schema: &Schema) -> datafusion::error::Result<()> {
        for g in &mut self.groups {
            let key_type = g.key.data_type(schema)?;
            let conv = RowConverter::new(vec![SortField::new(key_type.clone())])?;
            let values = ScalarValue::iter_to_array(std::mem::take(&mut g.literals).into_iter().filter(|v| !v.is_null()))
                .unwrap_or_else(|_| new_null_array(&key_type, 0));
            let rows = conv.convert_columns(std::slice::from_ref(&values))?;
            let mut t: Vec<Box<[u8]>> = rows.iter().map(|r| r.as_ref().into()).collect();
            t.sort_unstable();
            t.dedup();
            g.native = Native::of(values.as_ref());
            g.thresholds = t;
            g.key_rows = Some(conv);
            g.column_rows = Some(RowConverter::new(vec![SortField::new(schema.field(g.column).data_type().clone())])?);
        }
        Ok(())
    }

    /// Groups, and the literals each sorts its rows between.
    pub fn sizes(&self) -> Vec<(String, usize)> {
        self.groups.iter().map(|g| (g.name.clone(), g.thresholds.len())).collect()
    }

    /// An empty tally for one partition of the scan.
    pub fn tally(&self) -> Tally {
        Tally {
            counts: self.groups.iter().map(|g| vec![0; g.buckets()]).collect(),
            reps: self.groups.iter().map(|g| vec![None; g.buckets()]).collect(),
            caches: self.groups.iter().map(|_| KeyCache::default()).collect(),
            scratch: vec![],
            lanes: vec![],
        }
    }

    /// One batch of the scan into a partition's tally: each row's bucket
    /// first (one tight loop per group), then the counts, then, only when
    /// a bucket got its first row, the representatives.
    pub fn update(&self, tally: &mut Tally, batch: &RecordBatch) -> datafusion::error::Result<()> {
        let n = batch.num_rows();
        let mut out = std::mem::take(&mut tally.scratch);
        for (gi, g) in self.groups.iter().enumerate() {
            let (Some(key_rows), Some(column_rows)) = (&g.key_rows, &g.column_rows) else {
                return Err(datafusion::error::DataFusionError::Internal("bucket groups used before seal".into()));
            };
            let key = g.key.evaluate(batch)?.into_array(n)?;
            let column = batch.column(g.column);
            out.clear();
            let native = g.native.as_ref().is_some_and(|t| t.buckets_into(key.as_ref(), &mut out, &mut tally.caches[gi]));
            if !native {
                out.clear();
                let rows = key_rows.convert_columns(std::slice::from_ref(&key))?;
                let t: Vec<&[u8]> = g.thresholds.iter().map(|x| x.as_ref()).collect();
                out.extend((0..n).map(|i| bucket(&t, &rows.row(i).as_ref()) as u32));
            }
            // a null column outranks a null key
            let (null_column, null_key) = ((g.buckets() - 2) as u32, (g.buckets() - 1) as u32);
            for (nulls, b) in [(key.logical_nulls(), null_key), (column.logical_nulls(), null_column)] {
                if let Some(nulls) = nulls.filter(|x| x.null_count() > 0) {
                    for (slot, valid) in out.iter_mut().zip(nulls.iter()) {
                        if !valid {
                            *slot = b;
                        }
                    }
                }
            }
            let first = count_into(&mut tally.counts[gi], &out, &mut tally.lanes);
            if first {
                let reps = &mut tally.reps[gi];
                for (i, &b) in out.iter().enumerate() {
                    if reps[b as usize].is_none() {
                        let r = column_rows.convert_columns(&[column.slice(i, 1)])?;
                        reps[b as usize] = Some(r.row(0).as_ref().into());
                    }
                }
            }
        }
        tally.scratch = out;
        Ok(())
    }

    /// Per group, its non-empty buckets as a batch of representatives (the
    /// group's column holds them, the other columns are null) and each
    /// bucket's row count.
    pub fn finish(&self, tally: Tally, nullable: &SchemaRef) -> datafusion::error::Result<Vec<(RecordBatch, Vec<i64>)>> {
        let mut out = Vec::with_capacity(self.groups.len());
        for ((g, counts), reps) in self.groups.iter().zip(tally.counts).zip(tally.reps) {
            let Some(conv) = &g.column_rows else {
                return Err(datafusion::error::DataFusionError::Internal("bucket groups used before seal".into()));
            };
            let (kept, weights): (Vec<Box<[u8]>>, Vec<i64>) = reps.into_iter().zip(counts).filter_map(|(r, n)| Some((r?, n)).filter(|(_, n)| *n > 0)).unzip();
            out.push((column_batch(nullable, g.column, conv, kept.iter().map(|k| k.as_ref()))?, weights));
        }
        Ok(out)
    }
}

/// A batch over `nullable` whose `column` holds the given values (in
/// `conv`'s row format) and whose other columns are null: what a condition
/// on that one column is evaluated on, a row standing for many (a bucket's
/// representative, a histogram's distinct value).
pub(super) fn column_batch<'k>(
    nullable: &SchemaRef,
    column: usize,
    conv: &RowConverter,
    values: impl Iterator<Item = &'k [u8]>,
) -> datafusion::error::Result<RecordBatch> {
    let parser = conv.parser();
    let values = conv.convert_rows(values.map(|k| parser.parse(k)))?.remove(0);
    let d = values.len();
    let columns: Vec<ArrayRef> =
        nullable.fields().iter().enumerate().map(|(j, f)| if j == column { values.clone() } else { new_null_array(f.data_type(), d) }).collect();
    Ok(RecordBatch::try_new_with_options(nullable.clone(), columns, &RecordBatchOptions::new().with_row_count(Some(d)))?)
}

/// One partition's rows per bucket, and a representative row (of the
/// group's column, in row format) per bucket.
pub(super) struct Tally {
    counts: Vec<Vec<i64>>,
    reps: Vec<Vec<Option<Box<[u8]>>>>,
    /// Per group, the buckets of string values seen (see [`BytesCache`]
    /// and [`ViewCache`]), and the batch's keys as native values.
    caches: Vec<KeyCache>,
    /// The bucket of each row of the batch being tallied.
    scratch: Vec<u32>,
    /// [`count_into`]'s per-lane counters.
    lanes: Vec<u32>,
}

/// The buckets of the string (or binary) values a partition has met, so
/// that a column with few distinct values costs one hash lookup per row
/// instead of a binary search of byte comparisons. It holds at most
/// [`BytesCache::CAPACITY`] values; once full, it is consulted only while
/// it answers at least half of the lookups (a column of mostly distinct
/// values, such as e-mail addresses, goes back to the search alone).
#[derive(Default)]
struct BytesCache {
    map: datafusion::common::HashMap<Box<[u8]>, u32>,
    hits: u64,
    misses: u64,
    off: bool,
}

impl BytesCache {
    const CAPACITY: usize = 4096;

    fn bucket(&mut self, t: &[&[u8]], v: &[u8]) -> u32 {
        if self.off {
            return bucket(t, &v) as u32;
        }
        if let Some(&b) = self.map.get(v) {
            self.hits += 1;
            return b;
        }
        self.misses += 1;
        let b = bucket(t, &v) as u32;
        if self.map.len() < Self::CAPACITY {
            self.map.insert(v.into(), b);
        } else if self.misses > self.hits && self.misses + self.hits > 4 * Self::CAPACITY as u64 {
            self.off = true;
            self.map = Default::default();
        }
        b
    }
}

impl Tally {
    pub fn merge(&mut self, other: Tally) {
        for (into, from) in self.counts.iter_mut().zip(other.counts) {
            for (a, b) in into.iter_mut().zip(from) {
                *a += b;
            }
        }
        for (into, from) in self.reps.iter_mut().zip(other.reps) {
            for (a, b) in into.iter_mut().zip(from) {
                if a.is_none() {
                    *a = b;
                }
            }
        }
    }
}

/// Adds each row's bucket to `counts`; `true` if a bucket got its first
/// row. Four lanes of counters take turns, so that a run of rows in one
/// bucket does not wait on its own previous increment.
fn count_into(counts: &mut [i64], buckets: &[u32], lanes: &mut Vec<u32>) -> bool {
    let n = counts.len();
    lanes.clear();
    lanes.resize(4 * n, 0);
    let (l0, rest) = lanes.split_at_mut(n);
    let (l1, rest) = rest.split_at_mut(n);
    let (l2, l3) = rest.split_at_mut(n);
    let mut quads = buckets.chunks_exact(4);
    for q in &mut quads {
        l0[q[0] as usize] += 1;
        l1[q[1] as usize] += 1;
        l2[q[2] as usize] += 1;
        l3[q[3] as usize] += 1;
    }
    for &b in quads.remainder() {
        l0[b as usize] += 1;
    }
    let mut first = false;
    for (k, c) in counts.iter_mut().enumerate() {
        let v = i64::from(l0[k]) + i64::from(l1[k]) + i64::from(l2[k]) + i64::from(l3[k]);
        first |= v > 0 && *c == 0;
        *c += v;
    }
    first
}

/// The bucket of a non-null key among sorted distinct thresholds: `2p`
/// between the `p-1`-th and the `p`-th, `2p + 1` at the `p`-th.
fn bucket<T: Ord>(t: &[T], v: &T) -> usize {
    let p = t.partition_point(|x| x < v);
    if p < t.len() && &t[p] == v { 2 * p + 1 } else { 2 * p }
}

/// A group's thresholds as native values, for the key types the pass reads
/// without the row format: integers, temporal types and decimals as
/// integers (`i64` where every value fits, else `i128`), floats as integers
/// in IEEE 754 total order (the order of `f64::total_cmp`, which Arrow's
/// comparison kernels use), strings and binaries as their bytes.
enum Native {
    /// Integers of at most 64 bits but `u64`, temporal types, durations and floats.
    Narrow(Vec<i64>),
    /// `u64` and `decimal(p, s)`.
    Wide(Vec<i128>),
    Bytes(Vec<Vec<u8>>),
}

/// Whether keys of type `t` need `i128` ([`Native::Wide`]): values past `i64`.
fn wide(t: &DataType) -> bool {
    matches!(t, DataType::UInt64 | DataType::Decimal128(..))
}

/// Per group and partition: the caches of string buckets, and the batch's
/// keys as native values (reused from batch to batch).
#[derive(Default)]
struct KeyCache {
    bytes: BytesCache,
    views: ViewCache,
    narrow: Vec<i64>,
    wide: Vec<i128>,
}

/// The buckets of many keys among sorted distinct thresholds (see
/// [`bucket`]), eight keys at a time: the eight searches take the same
/// steps (the thresholds' count fixes them) and select without branching,
/// so the processor runs them side by side instead of waiting on each
/// comparison's load in turn.
fn buckets_of<T: Copy + Ord>(t: &[T], keys: &[T], out: &mut Vec<u32>) {
    use core::hint::select_unpredictable as pick;
    if t.is_empty() {
        out.resize(out.len() + keys.len(), 0);
        return;
    }
    // the largest index whose threshold is <= the key (0 when none is),
    // then below (0), at (2p + 1) or above (2p + 2) it
    let last = |base: usize, v: T| -> u32 {
        let x = t[base];
        (2 * (base + usize::from(x < v)) + usize::from(x == v)) as u32
    };
    let mut quads = keys.chunks_exact(8);
    for k in &mut quads {
        let mut base = [0usize; 8];
        let mut size = t.len();
        while size > 1 {
            let half = size / 2;
            for j in 0..8 {
                let mid = base[j] + half;
                base[j] = pick(t[mid] <= k[j], mid, base[j]);
            }
            size -= half;
        }
        for j in 0..8 {
            out.push(last(base[j], k[j]));
        }
    }
    for &v in quads.remainder() {
        let mut base = 0usize;
        let mut size = t.len();
        while size > 1 {
            let half = size / 2;
            let mid = base + half;
            base = pick(t[mid] <= v, mid, base);
            size -= half;
        }
        out.push(last(base, v));
    }
}

/// The buckets of short strings, by their 16-byte view (length and bytes
/// inline when at most 12 bytes long, as Arrow's view arrays hold them): a
/// direct-mapped table of [`ViewCache::SLOTS`] entries, so a string the
/// partition has met costs a multiply and one comparison.
#[derive(Default)]
struct ViewCache {
    /// The view, and its bucket + 1 (0: an empty slot).
    slots: Vec<(u128, u32)>,
}

impl ViewCache {
    const SLOTS: usize = 4096;

    /// `view`'s bucket, from the table or else from `search` (then kept).
    fn bucket(&mut self, view: u128, search: impl FnOnce() -> u32) -> u32 {
        if self.slots.is_empty() {
            self.slots = vec![(0, 0); Self::SLOTS];
        }
        let h = ((view as u64) ^ ((view >> 64) as u64)).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - Self::SLOTS.trailing_zeros());
        let slot = &mut self.slots[h as usize];
        if slot.1 != 0 && slot.0 == view {
            return slot.1 - 1;
        }
        let b = search();
        *slot = (view, b + 1);
        b
    }
}

fn f64_key(v: f64) -> i128 {
    let b = v.to_bits() as i64;
    (b ^ (((b >> 63) as u64) >> 1) as i64) as i128
}

fn f32_key(v: f32) -> i128 {
    let b = v.to_bits() as i32;
    (b ^ (((b >> 31) as u32) >> 1) as i32) as i128
}

/// For the first of the types `a` is an array of: `f(i, value as i128)`
/// for each slot, then returns `true`.
macro_rules! try_ints {
    ($a:expr, $f:expr, $($ty:ty),*) => {
        $(if let Some(p) = $a.as_primitive_opt::<$ty>() {
            for (i, v) in p.values().iter().enumerate() {
                $f(i, *v as i128);
            }
            return true;
        })*
    };
}

/// Calls `$f(i, key)` for each slot of a primitive array of one of the
/// ordered types, then returns `true`.
macro_rules! each_ordered {
    ($a:expr, $f:expr) => {{
        use datafusion::arrow::array::AsArray;
        use datafusion::arrow::datatypes as t;
        let a = $a;
        try_ints!(
            a,
            $f,
            t::Int8Type,
            t::Int16Type,
            t::Int32Type,
            t::Int64Type,
            t::UInt8Type,
            t::UInt16Type,
            t::UInt32Type,
            t::UInt64Type,
            t::Date32Type,
            t::Date64Type,
            t::TimestampSecondType,
            t::TimestampMillisecondType,
            t::TimestampMicrosecondType,
            t::TimestampNanosecondType,
            t::Time32SecondType,
            t::Time32MillisecondType,
            t::Time64MicrosecondType,
            t::Time64NanosecondType,
            t::DurationSecondType,
            t::DurationMillisecondType,
            t::DurationMicrosecondType,
            t::DurationNanosecondType,
            t::Decimal128Type
        );
        if let Some(p) = a.as_primitive_opt::<t::Float64Type>() {
            for (i, v) in p.values().iter().enumerate() {
                $f(i, f64_key(*v));
            }
            return true;
        }
        if let Some(p) = a.as_primitive_opt::<t::Float32Type>() {
            for (i, v) in p.values().iter().enumerate() {
                $f(i, f32_key(*v));
            }
            return true;
        }
    }};
}

/// Calls `$f(i, bytes)` for each slot of a string or binary array, then
/// returns `true`.
macro_rules! each_bytes {
    ($a:expr, $f:expr) => {{
        use datafusion::arrow::array::AsArray;
        let a = $a;
        if let Some(s) = a.as_string_opt::<i32>() {
            for i in 0..s.len() {
                $f(i, s.value(i).as_bytes());
            }
            return true;
        }
        if let Some(s) = a.as_string_opt::<i64>() {
            for i in 0..s.len() {
                $f(i, s.value(i).as_bytes());
            }
            return true;
        }
        if let Some(s) = a.as_string_view_opt() {
            for i in 0..s.len() {
                $f(i, s.value(i).as_bytes());
            }
            return true;
        }
        if let Some(s) = a.as_binary_opt::<i32>() {
            for i in 0..s.len() {
                $f(i, s.value(i));
            }
            return true;
        }
        if let Some(s) = a.as_binary_opt::<i64>() {
            for i in 0..s.len() {
                $f(i, s.value(i));
            }
            return true;
        }
        if let Some(s) = a.as_binary_view_opt() {
            for i in 0..s.len() {
                $f(i, s.value(i));
            }
            return true;
        }
    }};
}

impl Native {
    /// The literals' native values, sorted and distinct.
    fn of(a: &dyn Array) -> Option<Native> {
        fn ordered(a: &dyn Array) -> Option<Vec<i128>> {
            let mut out = vec![];
            let mut push = |_: usize, k: i128| out.push(k);
            let found = (|| -> bool {
                each_ordered!(a, push);
                false
            })();
            found.then_some(out)
        }
        fn bytes(a: &dyn Array) -> Option<Vec<Vec<u8>>> {
            let mut out = vec![];
            let mut push = |_: usize, b: &[u8]| out.push(b.to_vec());
            let found = (|| -> bool {
                each_bytes!(a, push);
                false
            })();
            found.then_some(out)
        }
        let mut n = match ordered(a) {
            Some(k) if wide(a.data_type()) => Native::Wide(k),
            Some(k) => Native::Narrow(k.into_iter().map(|k| k as i64).collect()),
            None => Native::Bytes(bytes(a)?),
        };
        match &mut n {
            Native::Narrow(k) => {
                k.sort_unstable();
                k.dedup();
            }
            Native::Wide(k) => {
                k.sort_unstable();
                k.dedup();
            }
            Native::Bytes(b) => {
                b.sort_unstable();
                b.dedup();
            }
        }
        Some(n)
    }

    /// Pushes the bucket of every slot of `key` onto `out` (null slots
    /// too: the caller sorts them out); `false` if `key` is not of the
    /// thresholds' kind.
    fn buckets_into(&self, key: &dyn Array, out: &mut Vec<u32>, cache: &mut KeyCache) -> bool {
        match self {
            Native::Narrow(t) => {
                if wide(key.data_type()) {
                    return false;
                }
                native_buckets(t, key, &mut cache.narrow, out, |k| k as i64)
            }
            Native::Wide(t) => native_buckets(t, key, &mut cache.wide, out, |k| k),
            Native::Bytes(t) => {
                let t: Vec<&[u8]> = t.iter().map(Vec::as_slice).collect();
                if let Some(s) = key.as_any().downcast_ref::<datafusion::arrow::array::StringViewArray>() {
                    // short strings by their view, longer ones by their bytes
                    let KeyCache { bytes, views, .. } = cache;
                    for (i, &view) in s.views().iter().enumerate() {
                        let b = if (view as u32) <= 12 {
                            views.bucket(view, || bucket(&t, &s.value(i).as_bytes()) as u32)
                        } else {
                            bytes.bucket(&t, s.value(i).as_bytes())
                        };
                        out.push(b);
                    }
                    return true;
                }
                let mut visit = |_: usize, b: &[u8]| out.push(cache.bytes.bucket(&t, b));
                each_bytes!(key, visit);
                false
            }
        }
    }
}

/// Types whose row format sorts as the comparison kernels compare.
fn orderable(t: &DataType) -> bool {
    (t.is_primitive() && !matches!(t, DataType::Interval(_)))
        || matches!(
            t,
            DataType::Boolean | DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Binary | DataType::LargeBinary | DataType::BinaryView
        )
}

fn comparison(op: &Operator) -> bool {
    matches!(
        op,
        Operator::Eq | Operator::NotEq | Operator::Lt | Operator::LtEq | Operator::Gt | Operator::GtEq | Operator::IsDistinctFrom | Operator::IsNotDistinctFrom
    )
}

fn literal(e: &Arc<dyn PhysicalExpr>) -> Option<&ScalarValue> {
    e.downcast_ref::<Literal>().map(Literal::value)
}

/// The non-literal sides of comparisons with a literal, and of `in`
/// lists of literals.
fn candidate_keys(e: &Arc<dyn PhysicalExpr>, out: &mut Vec<Arc<dyn PhysicalExpr>>) {
    if let Some(b) = e.downcast_ref::<BinaryExpr>()
        && comparison(b.op())
    {
        match (literal(b.left()), literal(b.right())) {
            (None, Some(_)) => return out.push(b.left().clone()),
            (Some(_), None) => return out.push(b.right().clone()),
            _ => {}
        }
    }
    if let Some(i) = e.downcast_ref::<InListExpr>()
        && literal(i.expr()).is_none()
        && i.list().iter().all(|x| literal(x).is_some())
    {
        return out.push(i.expr().clone());
    }
    for c in e.children() {
        candidate_keys(c, out);
    }
}

/// Whether `e` is constant on every bucket of the key named `key`
/// (collecting the literals it compares the key with): it reads the
/// column only through comparisons of the key with literals of the key's
/// type, `in` lists of them, and null tests of the key or the column.
fn constant_per_bucket(e: &Arc<dyn PhysicalExpr>, key: &str, key_type: &DataType, column: usize, literals: &mut Vec<ScalarValue>) -> bool {
    if collect_columns(e).is_empty() {
        return true;
    }
    let is_key = |x: &Arc<dyn PhysicalExpr>| x.to_string() == key;
    let is_column = |x: &Arc<dyn PhysicalExpr>| x.downcast_ref::<Column>().is_some_and(|c| c.index() == column);
    if let Some(b) = e.downcast_ref::<BinaryExpr>()
        && comparison(b.op())
    {
        for (x, l) in [(b.left(), b.right()), (b.right(), b.left())] {
            if let Some(v) = literal(l)
                && is_key(x)
                && (v.is_null() || &v.data_type() == key_type)
            {
                literals.push(v.clone());
                return true;
            }
        }
    }
    if let Some(i) = e.downcast_ref::<InListExpr>()
        && is_key(i.expr())
    {
        let values: Option<Vec<&ScalarValue>> = i.list().iter().map(literal).collect();
        return match values {
            Some(v) if v.iter().all(|v| v.is_null() || &v.data_type() == key_type) => {
                literals.extend(v.into_iter().cloned());
                true
            }
            _ => false,
        };
    }
    let null_test = e.downcast_ref::<IsNullExpr>().map(IsNullExpr::arg).or_else(|| e.downcast_ref::<IsNotNullExpr>().map(IsNotNullExpr::arg));
    if let Some(arg) = null_test
        && (is_key(arg) || is_column(arg))
    {
        return true;
    }
    if is_key(e) || e.downcast_ref::<Column>().is_some() {
        return false;
    }
    e.children().iter().all(|c| constant_per_bucket(c, key, key_type, column, literals))
}

/// The buckets of an integer-like key column, its values converted into the
/// reused `keys` buffer first; false when the column is not integer-like.
fn native_buckets<T: Copy + Ord>(t: &[T], key: &dyn Array, keys: &mut Vec<T>, out: &mut Vec<u32>, conv: impl Fn(i128) -> T) -> bool {
    keys.clear();
    let found = (|| -> bool {
        let mut push = |_: usize, k: i128| keys.push(conv(k));
        each_ordered!(key, push);
        false
    })();
    if found {
        buckets_of(t, keys, out);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_count_as_one_counter_does() {
        // runs of one bucket, alternations and a tail that is not a multiple of four
        let rows: Vec<u32> = (0..1003u32).map(|i| if i % 7 < 3 { 4 } else { (i * 31) % 9 }).collect();
        let mut counts = vec![0i64; 9];
        counts[2] = 5; // an earlier batch's
        let mut lanes = vec![];
        assert!(count_into(&mut counts, &rows, &mut lanes));
        let mut expected = vec![0i64; 9];
        expected[2] = 5;
        for &b in &rows {
            expected[b as usize] += 1;
        }
        assert_eq!(counts, expected);
        // every bucket already holds rows: no first row
        assert!(!count_into(&mut counts, &rows, &mut lanes));
        assert!(!count_into(&mut [0; 9], &[], &mut lanes));
    }

    #[test]
    fn eight_searches_at_a_time_find_what_one_search_finds() {
        // thresholds of every small size and a larger one; keys below, at,
        // between and above them, in a count that is not a multiple of eight
        let mut seed = 7u64;
        let mut next = move || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as i64 % 400 - 200
        };
        for n in [0usize, 1, 2, 3, 4, 5, 7, 8, 9, 16, 93, 100, 257] {
            let mut t: Vec<i64> = (0..n).map(|_| next()).collect();
            t.sort_unstable();
            t.dedup();
            let keys: Vec<i64> = (0..1003).map(|_| next()).chain(t.iter().copied()).chain([i64::MIN, i64::MAX]).collect();
            let mut out = vec![];
            buckets_of(&t, &keys, &mut out);
            let expected: Vec<u32> = keys.iter().map(|k| bucket(&t, k) as u32).collect();
            assert_eq!(out, expected, "{} thresholds", t.len());
            let wide: Vec<i128> = t.iter().map(|&x| i128::from(x) << 64).collect();
            let wkeys: Vec<i128> = keys.iter().map(|&x| i128::from(x) << 64).collect();
            out.clear();
            buckets_of(&wide, &wkeys, &mut out);
            assert_eq!(out, expected, "{} wide thresholds", t.len());
        }
    }

    #[test]
    fn short_strings_are_bucketed_by_their_view() {
        use datafusion::arrow::array::StringViewArray;
        let values: Vec<Option<&str>> =
            ["PAID", "", "cancelled", "a string longer than twelve", "zz", "PAID", "b"].iter().cycle().take(5000).map(|s| Some(*s)).chain([None]).collect();
        let key = StringViewArray::from(values.clone());
        let thresholds: Vec<Vec<u8>> = ["", "PAID", "b", "cancelled", "m"].iter().map(|s| s.as_bytes().to_vec()).collect();
        let native = Native::Bytes(thresholds.clone());
        let mut cache = KeyCache::default();
        let mut out = vec![];
        assert!(native.buckets_into(&key, &mut out, &mut cache));
        let t: Vec<&[u8]> = thresholds.iter().map(Vec::as_slice).collect();
        for (i, v) in values.iter().enumerate().take(5000) {
            assert_eq!(out[i], bucket(&t, &v.unwrap_or_default().as_bytes()) as u32, "{v:?}");
        }
        assert_eq!(out.len(), 5001);
    }

    #[test]
    fn the_bytes_cache_answers_as_the_search_and_gives_up_on_distinct_values() {
        let thresholds: Vec<Vec<u8>> = ["b", "d", "f"].iter().map(|s| s.as_bytes().to_vec()).collect();
        let t: Vec<&[u8]> = thresholds.iter().map(Vec::as_slice).collect();
        let mut cache = BytesCache::default();
        // few distinct values: answered from the map
        for v in ["a", "b", "c", "d", "e", "f", "g"].iter().cycle().take(700) {
            assert_eq!(cache.bucket(&t, v.as_bytes()), bucket(&t, &v.as_bytes()) as u32);
        }
        assert_eq!(cache.map.len(), 7);
        assert!(cache.hits > 600 && !cache.off);
        // then only distinct values: the cache fills, then turns itself off
        for i in 0..(6 * BytesCache::CAPACITY) {
            let v = format!("c{i:08}");
            assert_eq!(cache.bucket(&t, v.as_bytes()), bucket(&t, &v.as_bytes()) as u32, "{v}");
        }
        assert!(cache.off && cache.map.is_empty());
        assert_eq!(cache.bucket(&t, b"d"), 3);
    }
}
