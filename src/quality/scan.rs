//! One streaming pass per relation for a batch of checks, without the SQL
//! planner.
//!
//! DataFusion's logical optimizer and physical planner walk every
//! expression of a plan many times, so planning one query with thousands of
//! aggregate expressions costs far more than scanning the data. Here each
//! aggregate is parsed and type-coerced on its own (linear), lowered to
//! DataFusion's own `AggregateFunctionExpr` (the same accumulators a query
//! would use, so results are identical), and fed from one scan of the
//! relation: every partition of the scan streams its record batches through
//! its own accumulators (no collect of the table), and the partitions'
//! states are merged at the end. The values over the aggregates and the
//! checks over the values are evaluated on one-row batches that hold only
//! the columns they name, so they too plan in linear time.

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::record_batch::RecordBatchOptions;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::DFSchema;
use datafusion::common::tree_node::TreeNode;
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::simplify::SimplifyContext;
use datafusion::optimizer::simplify_expressions::ExprSimplifier;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties, PhysicalExpr};
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::Arc;

use super::buckets::{Groups, Tally, column_batch};
use super::shapes::Shapes;
use crate::engine::Engine;

/// A value over aggregates: its SQL with `{0}`, `{1}` standing for the
/// aggregates it reads (by index into the batch's aggregates).
pub(super) struct Value {
    pub template: String,
    pub args: Vec<usize>,
}

/// A check over one value: its SQL over `n<value>`.
pub(super) struct Check {
    pub sql: String,
    pub value: usize,
}

/// The aggregates, then the values, then the checks (`1` when true, else `0`)
/// of one batch: one array of one row per value, then per check.
pub(super) async fn evaluate(engine: &Engine, relation: &str, aggregates: &[String], values: &[Value], checks: &[Check]) -> anyhow::Result<Vec<ArrayRef>> {
    let state = engine.ctx.state();
    let t = std::time::Instant::now();
    let aggs = aggregate(engine, &state, relation, aggregates).await?;
    let aggregated = t.elapsed();
    let agg_fields: Vec<Arc<Field>> = aggs.iter().map(|(f, _)| f.clone()).collect();
    let agg_values: Vec<ArrayRef> = aggs.into_iter().map(|(_, a)| a).collect();

    let mut planned = Planned::default();
    let mut out: Vec<ArrayRef> = Vec::with_capacity(values.len() + checks.len());
    for v in values {
        let inputs: Vec<(String, Arc<Field>, ArrayRef)> = v.args.iter().map(|&k| (format!("a{k}"), agg_fields[k].clone(), agg_values[k].clone())).collect();
        let mut sql = v.template.clone();
        for (i, (name, _, _)) in inputs.iter().enumerate() {
            sql = sql.replace(&format!("{{{i}}}"), name);
        }
        out.push(fast_value(&v.template, &inputs).map_or_else(|| planned.eval(&state, &sql, &inputs), Ok)?);
    }
    let valued = t.elapsed();
    for c in checks {
        let input =
            vec![(format!("n{}", c.value), Arc::new(Field::new(format!("n{}", c.value), out[c.value].data_type().clone(), true)), out[c.value].clone())];
        let a = planned.eval(&state, &c.sql, &input)?;
        let v = match a.data_type() {
            DataType::Boolean => a.as_boolean().is_valid(0) && a.as_boolean().value(0),
            _ => anyhow::bail!("the check `{}` is not a boolean", c.sql),
        };
        out.push(Arc::new(Int64Array::from(vec![i64::from(v)])));
    }
    tracing::debug!(relation, ?aggregated, ?valued, checked = ?t.elapsed(), "batch evaluated");
    Ok(out)
}

/// Values whose shape needs no planning: the aggregate itself, and a
/// counting sum that is already a bigint (`cast(coalesce({0}, 0) as bigint)`).
fn fast_value(template: &str, inputs: &[(String, Arc<Field>, ArrayRef)]) -> Option<ArrayRef> {
    match (template, inputs) {
        ("{0}", [(_, _, a)]) => Some(a.clone()),
        ("cast(coalesce({0}, 0) as bigint)", [(_, f, a)]) if f.data_type() == &DataType::Int64 => {
            let v = if a.is_null(0) { 0 } else { a.as_primitive::<Int64Type>().value(0) };
            Some(Arc::new(Int64Array::from(vec![v])))
        }
        _ => None,
    }
}

/// Physical expressions over one-row inputs, cached by their SQL and input
/// types (checks of one shape on values of one type plan once); checks
/// that differ only in their literals share their preparation (`shapes.rs`).
#[derive(Default)]
struct Planned<'a> {
    cache: HashMap<(String, Vec<DataType>), Arc<dyn PhysicalExpr>>,
    shapes: HashMap<Vec<DataType>, (Preparer<'a>, Shapes)>,
}

impl<'a> Planned<'a> {
    fn eval(&mut self, state: &'a SessionState, sql: &str, inputs: &[(String, Arc<Field>, ArrayRef)]) -> anyhow::Result<ArrayRef> {
        // name the inputs by position so expressions of one shape share a plan
        let mut generic = sql.to_string();
        let mut fields = vec![];
        let mut columns = vec![];
        for (i, (name, f, a)) in inputs.iter().enumerate() {
            generic = replace_ident(&generic, name, &format!("dp_in{i}"));
            fields.push(Field::new(format!("dp_in{i}"), f.data_type().clone(), true));
            columns.push(a.clone());
        }
        let types: Vec<DataType> = fields.iter().map(|f| f.data_type().clone()).collect();
        let schema = Arc::new(Schema::new(fields));
        let key = (generic, types);
        let expr = match self.cache.get(&key) {
            Some(e) => e.clone(),
            None => {
                let (preparer, shapes) = match self.shapes.entry(key.1.clone()) {
                    std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert((Preparer::new(state, &DFSchema::try_from(schema.as_ref().clone())?), Shapes::default()))
                    }
                };
                let logical = shapes.prepare(state, &preparer.schema, preparer, &key.0)?;
                let e = physical(state, &logical, &preparer.schema)?;
                self.cache.insert(key, e.clone());
                e
            }
        };
        let batch = if columns.is_empty() {
            RecordBatch::try_new_with_options(schema, columns, &RecordBatchOptions::new().with_row_count(Some(1)))?
        } else {
            RecordBatch::try_new(schema, columns)?
        };
        Ok(expr.evaluate(&batch)?.into_array(1)?)
    }
}

/// `name` replaced where it stands as a whole identifier.
fn replace_ident(sql: &str, name: &str, with: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let bytes = sql.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    let mut quoted = false;
    while i < sql.len() {
        if bytes[i] == b'\'' {
            quoted = !quoted;
        }
        if !quoted && sql[i..].starts_with(name) && (i == 0 || !ident(bytes[i - 1])) && bytes.get(i + name.len()).is_none_or(|&c| !ident(c)) {
            out.push_str(with);
            i += name.len();
        } else {
            let ch = sql[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// What the optimizer does to an expression before it is planned (type
/// coercion, function rewrites and simplification, which also lowers
/// `coalesce`, `nvl`, ... to `case`), for many expressions over one
/// schema: the simplifier (with its copy of the schema and of the
/// session's options) is built once.
pub(super) struct Preparer<'a> {
    state: &'a SessionState,
    schema: Arc<DFSchema>,
    simplifier: ExprSimplifier,
}

impl<'a> Preparer<'a> {
    pub(super) fn new(state: &'a SessionState, schema: &DFSchema) -> Self {
        let schema = Arc::new(schema.clone());
        let ctx = SimplifyContext::builder()
            .with_schema(schema.clone())
            .with_config_options(state.config_options().clone())
            .with_query_execution_start_time(state.execution_props().query_execution_start_time)
            .build();
        Preparer { state, schema, simplifier: ExprSimplifier::new(ctx) }
    }

    pub(super) fn prepare(&self, e: Expr) -> datafusion::error::Result<Expr> {
        let (state, schema) = (self.state, self.schema.as_ref());
        let mut e = self.simplifier.coerce(e, schema)?;
        for rewrite in state.analyzer().function_rewrites() {
            e = e.transform_up(|x| rewrite.rewrite(x, schema, state.config_options()))?.data;
        }
        self.simplifier.simplify(e)
    }

    /// One pass of the simplifier over an expression already prepared but
    /// for its literals (see `shapes.rs`): unwraps the casts of columns that
    /// the new literals make unnecessary, as preparing it in full would.
    pub(super) fn resimplify(&self, e: Expr) -> datafusion::error::Result<Expr> {
        self.simplifier.simplify(e)
    }
}

fn physical(state: &SessionState, e: &Expr, schema: &DFSchema) -> datafusion::error::Result<Arc<dyn PhysicalExpr>> {
    datafusion::physical_expr::create_physical_expr(e, schema, state.execution_props(), &PhysicalPlanningContext::default())
}

/// `sum(case when <predicate> then 1 else 0 end)`: the rows where the
/// predicate is true, counted without building the case column.
fn counted_predicate(sql: &str) -> Option<&str> {
    sql.strip_prefix("sum(case when ")?.strip_suffix(" then 1 else 0 end)")
}

/// How one aggregate is computed over the scan.
#[derive(Clone)]
enum Lowered {
    /// Rows where the predicate is true (`NULL` over no rows, as `sum`).
    Count(Arc<dyn PhysicalExpr>),
    /// A counted condition on one column (the input's `usize`-th): judged
    /// once per distinct value of the column, weighted by how often the
    /// value occurs (the column's histogram, built once in the scan).
    Hist(usize, Arc<dyn PhysicalExpr>),
    /// A counted condition comparing one key with literals: judged once
    /// per bucket of its group (`buckets.rs`).
    Bucket(usize, Arc<dyn PhysicalExpr>),
    Udaf(Arc<AggregateFunctionExpr>),
}

/// One partition's running state of one aggregate.
enum Acc {
    Count(i64),
    Udaf(Box<dyn datafusion::logical_expr::Accumulator>),
}

/// Every aggregate over one scan of the relation: its output field and its
/// one-row value.
async fn aggregate(engine: &Engine, state: &SessionState, relation: &str, aggregates: &[String]) -> anyhow::Result<Vec<(Arc<Field>, ArrayRef)>> {
    let t = std::time::Instant::now();
    let df = engine.ctx.table(relation).await?;
    let full = Arc::new(df.schema().clone());
    // Parsing and lowering hundreds of aggregates is CPU work: it runs on
    // a blocking thread, so that the relations of a checkpoint are planned
    // in parallel (and beside the scans already running).
    let (logical, used) = {
        let (state, full, aggregates) = (state.clone(), full.clone(), aggregates.to_vec());
        tokio::task::spawn_blocking(move || parse(&state, &full, &aggregates)).await??
    };
    let names: Vec<&str> = used.iter().map(String::as_str).collect();
    let df = df.select_columns(&names)?;
    let input = Arc::new(df.schema().clone());
    let task = Arc::new(df.task_ctx());
    let parsed = t.elapsed();
    let plan: Arc<dyn ExecutionPlan> = df.create_physical_plan().await?;
    let physical_schema = plan.schema();
    let (lowered, groups) = {
        let (state, input, physical_schema) = (state.clone(), input.clone(), physical_schema.clone());
        tokio::task::spawn_blocking(move || lower(&state, logical, &input, &physical_schema)).await??
    };
    tracing::debug!(relation, groups = ?groups.sizes(), "bucket groups");
    let lowered = Arc::new(lowered);
    let groups = Arc::new(groups);
    tracing::debug!(relation, ?parsed, lowered = ?t.elapsed(), "aggregates lowered");
    let mut tasks = vec![];
    for p in 0..plan.output_partitioning().partition_count() {
        let stream = plan.execute(p, task.clone())?;
        let (lowered, groups) = (lowered.clone(), groups.clone());
        tasks.push(tokio::spawn(async move { accumulate(stream, &lowered, &groups).await }));
    }
    let mut merged: Option<(u64, Vec<Acc>)> = None;
    let mut hists: Histograms = HashMap::new();
    let mut tally = groups.tally();
    for t in tasks {
        let (rows, mut accs, h, partition_tally) = t.await??;
        tally.merge(partition_tally);
        for (c, m) in h {
            let into = hists.entry(c).or_default();
            for (k, n) in m {
                *into.entry(k).or_insert(0) += n;
            }
        }
        match &mut merged {
            None => merged = Some((rows, accs)),
            Some((total, m)) => {
                *total += rows;
                for (into, from) in m.iter_mut().zip(accs.iter_mut()) {
                    match (into, from) {
                        (Acc::Count(a), Acc::Count(b)) => *a += *b,
                        (Acc::Udaf(into), Acc::Udaf(from)) => {
                            let states = from.state()?.iter().map(|s| s.to_array()).collect::<Result<Vec<_>, _>>()?;
                            into.merge_batch(&states)?;
                        }
                        _ => anyhow::bail!("partitions disagree on an aggregate"),
                    }
                }
            }
        }
    }
    let (rows, mut merged) = match merged {
        Some(m) => m,
        None => (0, accumulators(&lowered)?),
    };
    tracing::debug!(relation, scanned = ?t.elapsed(), sizes = ?hists.iter().map(|(c, m)| (*c, m.len())).collect::<Vec<_>>(), "scanned");
    // each histogram as a batch of the column's distinct values (the other
    // columns null) and their counts
    let nullable = Arc::new(Schema::new(physical_schema.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect::<Vec<_>>()));
    let mut distinct: HashMap<usize, (RecordBatch, Vec<i64>)> = HashMap::new();
    for (c, m) in hists {
        let conv = RowConverter::new(vec![SortField::new(physical_schema.field(c).data_type().clone())])?;
        let counts: Vec<i64> = m.values().copied().collect();
        distinct.insert(c, (column_batch(&nullable, c, &conv, m.keys().map(|k| k.as_ref()))?, counts));
    }
    let bucketed = groups.finish(tally, &nullable)?;
    // a counted condition's value: NULL over no rows, as `sum`
    let count =
        |n: i64| -> (Arc<Field>, ArrayRef) { (Arc::new(Field::new("a", DataType::Int64, true)), Arc::new(Int64Array::from(vec![(rows > 0).then_some(n)]))) };
    let mut out = Vec::with_capacity(merged.len());
    for (l, acc) in lowered.iter().zip(merged.iter_mut()) {
        match (l, acc) {
            (Lowered::Hist(c, p), Acc::Count(direct)) => {
                let n = *direct
                    + match distinct.get(c) {
                        Some((batch, counts)) => weighted_true(p, batch, counts)?,
                        None => 0,
                    };
                out.push(count(n));
            }
            (Lowered::Bucket(g, p), Acc::Count(_)) => {
                let (batch, counts) = &bucketed[*g];
                out.push(count(weighted_true(p, batch, counts)?));
            }
            (Lowered::Count(_), Acc::Count(n)) => out.push(count(*n)),
            (Lowered::Udaf(agg), Acc::Udaf(acc)) => {
                let field = agg.field();
                let mut a = acc.evaluate()?.to_array()?;
                if a.data_type() != field.data_type() {
                    a = datafusion::arrow::compute::cast(&a, field.data_type())?;
                }
                out.push((Arc::new(Field::new("a", field.data_type().clone(), true)), a));
            }
            _ => anyhow::bail!("an aggregate lost its kind"),
        }
    }
    Ok(out)
}

/// [`parse`]'s aggregates and the columns they read.
type Parsed = (Vec<(bool, Expr)>, Vec<String>);

/// Each aggregate as a prepared logical expression (whether it is a
/// counted condition, and the expression), and the columns they read (at
/// least one, for the row count).
fn parse(state: &SessionState, full: &DFSchema, aggregates: &[String]) -> anyhow::Result<Parsed> {
    let mut logical: Vec<(bool, Expr)> = Vec::with_capacity(aggregates.len());
    let mut used: Vec<String> = vec![];
    let preparer = Preparer::new(state, full);
    let mut shapes = Shapes::default();
    for sql in aggregates {
        let (count, text) = match counted_predicate(sql) {
            Some(p) => (true, p),
            None => (false, sql.as_str()),
        };
        let e = shapes.prepare(state, full, &preparer, text)?;
        for c in e.column_refs() {
            if !used.contains(&c.name) {
                used.push(c.name.clone());
            }
        }
        logical.push((count, e));
    }
    if used.is_empty()
        && let Some(f) = full.fields().first()
    {
        used.push(f.name().clone());
    }
    Ok((logical, used))
}

/// The aggregates lowered against the scan's physical schema, and the
/// bucket groups of its counted conditions (sealed).
fn lower(state: &SessionState, logical: Vec<(bool, Expr)>, input: &DFSchema, physical_schema: &SchemaRef) -> anyhow::Result<(Vec<Lowered>, Groups)> {
    let mut lowered: Vec<Lowered> = Vec::with_capacity(logical.len());
    let mut groups = Groups::default();
    for (count, e) in logical {
        if count {
            let p = physical(state, &e, input)?;
            anyhow::ensure!(p.data_type(physical_schema)? == DataType::Boolean, "a counted condition is not a boolean");
            let refs: Vec<_> = e.column_refs().into_iter().collect();
            match refs.as_slice() {
                [c] if !e.is_volatile() => {
                    let column = input.index_of_column(c)?;
                    match groups.add(&p, column, physical_schema) {
                        Some(g) => lowered.push(Lowered::Bucket(g, p)),
                        None => lowered.push(Lowered::Hist(column, p)),
                    }
                }
                _ => lowered.push(Lowered::Count(p)),
            }
        } else {
            #[allow(deprecated)] // its replacement is not public API yet
            let (agg, filter, _) = datafusion::physical_planner::create_aggregate_expr_and_maybe_filter(&e, input, physical_schema, state.execution_props())?;
            anyhow::ensure!(filter.is_none(), "aggregate filters are not supported in batched checks");
            lowered.push(Lowered::Udaf(agg));
        }
    }
    groups.seal(physical_schema)?;
    Ok((lowered, groups))
}

/// The rows where `p` holds, over a batch of distinct values (or bucket
/// representatives) and how many rows each stands for.
fn weighted_true(p: &Arc<dyn PhysicalExpr>, batch: &RecordBatch, counts: &[i64]) -> anyhow::Result<i64> {
    let v = p.evaluate(batch)?.into_array(batch.num_rows())?;
    let v = v.as_boolean();
    Ok(counts.iter().enumerate().filter(|(i, _)| v.is_valid(*i) && v.value(*i)).map(|(_, n)| *n).sum())
}

fn accumulators(lowered: &[Lowered]) -> anyhow::Result<Vec<Acc>> {
    lowered
        .iter()
        .map(|l| {
            Ok(match l {
                Lowered::Count(_) | Lowered::Hist(..) | Lowered::Bucket(..) => Acc::Count(0),
                Lowered::Udaf(a) => Acc::Udaf(a.create_accumulator()?),
            })
        })
        .collect()
}

/// One partition's record batches through its own accumulators: its row
/// count and their states.
async fn accumulate(
    mut stream: datafusion::execution::SendableRecordBatchStream,
    lowered: &[Lowered],
    groups: &Groups,
) -> anyhow::Result<(u64, Vec<Acc>, Histograms, Tally)> {
    let mut accs = accumulators(lowered)?;
    let mut tally = groups.tally();
    let args: Vec<Vec<Arc<dyn PhysicalExpr>>> = lowered
        .iter()
        .map(|l| match l {
            Lowered::Count(p) => vec![p.clone()],
            Lowered::Hist(..) | Lowered::Bucket(..) => vec![],
            Lowered::Udaf(a) => a.expressions(),
        })
        .collect();
    let mut hist_columns: Vec<usize> = lowered.iter().filter_map(|l| if let Lowered::Hist(c, _) = l { Some(*c) } else { None }).collect();
    hist_columns.sort_unstable();
    hist_columns.dedup();
    let schema = stream.schema();
    let mut converters = vec![];
    for &c in &hist_columns {
        converters.push(RowConverter::new(vec![SortField::new(schema.field(c).data_type().clone())])?);
    }
    let mut hists: Histograms = HashMap::new();
    let mut abandoned = vec![false; schema.fields().len()];
    let mut rows = 0u64;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        let n = batch.num_rows();
        if n == 0 {
            continue;
        }
        rows += n as u64;
        groups.update(&mut tally, &batch)?;
        // a column with too many distinct values stops being histogrammed:
        // from the next batch on, its conditions are evaluated on the rows
        let direct = abandoned.clone();
        for (&c, conv) in hist_columns.iter().zip(&converters) {
            if direct[c] {
                continue;
            }
            let keys = conv.convert_columns(&[batch.column(c).clone()])?;
            let h = hists.entry(c).or_default();
            for k in keys.iter() {
                match h.get_mut(k.as_ref()) {
                    Some(n) => *n += 1,
                    None => {
                        h.insert(k.as_ref().into(), 1);
                    }
                }
            }
            if h.len() > HISTOGRAM_MAX || (h.len() > HISTOGRAM_MIN && h.len() as u64 * 4 > rows) {
                abandoned[c] = true;
            }
        }
        for (l, acc) in lowered.iter().zip(accs.iter_mut()) {
            if let (Lowered::Hist(c, p), Acc::Count(k)) = (l, acc)
                && direct[*c]
            {
                *k += p.evaluate(&batch)?.into_array(n)?.as_boolean().true_count() as i64;
            }
        }
        for (acc, exprs) in accs.iter_mut().zip(&args) {
            if exprs.is_empty() {
                continue;
            }
            match acc {
                Acc::Count(c) => {
                    let v = exprs[0].evaluate(&batch)?.into_array(n)?;
                    *c += v.as_boolean().true_count() as i64;
                }
                Acc::Udaf(acc) => {
                    let values = exprs.iter().map(|e| e.evaluate(&batch).and_then(|v| v.into_array(n))).collect::<Result<Vec<_>, _>>()?;
                    acc.update_batch(&values)?;
                }
            }
        }
    }
    Ok((rows, accs, hists, tally))
}

/// Distinct values a histogram may reach before its column's share of
/// distinct values decides whether it is kept (more than a quarter: no).
const HISTOGRAM_MIN: usize = 4096;

/// Distinct values a histogram never exceeds (its memory stays bounded).
const HISTOGRAM_MAX: usize = 1 << 20;

/// Per column (by input index): each distinct value (in the row format) and
/// how many rows hold it.
type Histograms = HashMap<usize, datafusion::common::HashMap<Box<[u8]>, i64>>;

#[cfg(test)]
mod tests {
    #[test]
    fn identifiers_are_replaced_whole() {
        assert_eq!(super::replace_ident("n1 >= 3 and n12 < n1", "n1", "v"), "v >= 3 and n12 < v");
        assert_eq!(super::replace_ident("cast(a1 as double)", "a1", "x"), "cast(x as double)");
        assert_eq!(super::replace_ident("n1 = 'n1'", "n1", "v"), "v = 'n1'");
    }
}
