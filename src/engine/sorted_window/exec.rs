//! [`SortedWindowExec`]: ranking and shift functions over input sorted on
//! the partition keys, computed batch by batch.
//!
//! Each row gets a partition number (one more than the row before's where
//! the keys change) and, for ranks, a peer flag (the `ORDER BY` values
//! change). Counters carry over from one batch to the next, and so do the
//! last row's keys. For `lag`/`lead` a batch is evaluated in a context of
//! the rows before it (the last `max lag` rows, kept from earlier batches)
//! and after it (the first `max lead` rows, which is why a batch waits for
//! enough later input, or the end); the value `n` rows away is taken when
//! its partition number is the row's own, else the default.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, UInt32Array, UInt64Array};
use datafusion::arrow::compute::kernels::zip::zip;
use datafusion::arrow::compute::{cast, concat, take};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::row::{OwnedRow, RowConverter, Rows, SortField};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Result, internal_err};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{PhysicalExpr, PhysicalSortExpr};
use datafusion::physical_plan::InputDistributionRequirements;
use datafusion::physical_plan::execution_plan::{apply_expression_roots, replace_children_if_necessary};
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::windows::BoundedWindowAggExec;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::StreamExt;

use super::Function;

/// The replaced window operator's output, computed in one streaming pass;
/// see the module docs of `sorted_window`.
#[derive(Debug)]
pub struct SortedWindowExec {
    /// The `BoundedWindowAggExec` replaced: its requirements and output
    /// properties are this operator's.
    window: Arc<dyn ExecutionPlan>,
    input: Arc<dyn ExecutionPlan>,
    partition_by: Vec<Arc<dyn PhysicalExpr>>,
    order_by: Vec<PhysicalSortExpr>,
    functions: Vec<Function>,
    metrics: ExecutionPlanMetricsSet,
}

impl SortedWindowExec {
    /// `window`: a `BoundedWindowAggExec` whose expressions are `functions`,
    /// all with the same `PARTITION BY` and `ORDER BY`.
    pub fn try_new(window: Arc<dyn ExecutionPlan>, functions: Vec<Function>) -> Result<SortedWindowExec> {
        let Some(w) = window.downcast_ref::<BoundedWindowAggExec>() else {
            return internal_err!("SortedWindowExec replaces a BoundedWindowAggExec, not {}", window.name());
        };
        let Some(first) = w.window_expr().first() else { return internal_err!("a window operator without expressions") };
        if w.window_expr().iter().any(|e| e.partition_by() != first.partition_by() || e.order_by() != first.order_by()) {
            return internal_err!("window expressions over different partitions or orders");
        }
        let exec = SortedWindowExec {
            input: w.input().clone(),
            partition_by: first.partition_by().to_vec(),
            order_by: first.order_by().to_vec(),
            functions,
            metrics: ExecutionPlanMetricsSet::new(),
            window: window.clone(),
        };
        // The key types must have a row format.
        State::try_new(&exec)?;
        Ok(exec)
    }

    fn needs_peers(&self) -> bool {
        self.functions.iter().any(|f| matches!(f, Function::Rank | Function::DenseRank))
    }
}

impl DisplayAs for SortedWindowExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let keys: Vec<String> = self.partition_by.iter().map(|k| k.to_string()).collect();
        let order: Vec<String> = self.order_by.iter().map(|o| o.to_string()).collect();
        let first_out = self.input.schema().fields().len();
        let schema = self.window.schema();
        let names: Vec<&str> = (first_out..schema.fields().len()).map(|i| schema.field(i).name().as_str()).collect();
        write!(f, "SortedWindowExec: partition_by=[{}], order_by=[{}], wdw=[{}]", keys.join(", "), order.join(", "), names.join(", "))
    }
}

impl ExecutionPlan for SortedWindowExec {
    fn name(&self) -> &'static str {
        "SortedWindowExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.window.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(&self, f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>) -> Result<TreeNodeRecursion> {
        let shifted = self.functions.iter().filter_map(|f| match f {
            Function::Shift { value, .. } => Some(value),
            _ => None,
        });
        apply_expression_roots(self.partition_by.iter().chain(self.order_by.iter().map(|o| &o.expr)).chain(shifted), f)
    }

    fn input_distribution_requirements(&self) -> InputDistributionRequirements {
        self.window.input_distribution_requirements()
    }

    fn required_input_ordering(&self) -> Vec<Option<datafusion::physical_expr::OrderingRequirements>> {
        self.window.required_input_ordering()
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        self.window.benefits_from_input_partitioning()
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        let window = replace_children_if_necessary(self.window.clone(), children)?;
        Ok(Arc::new(SortedWindowExec::try_new(window, self.functions.clone())?))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context)?;
        let state = State::try_new(self)?;
        let metrics = BaselineMetrics::new(&self.metrics, partition);
        let out = futures::stream::unfold(Some((input, state, metrics)), |running| async move {
            let (mut input, mut state, metrics) = running?;
            loop {
                if let Some(out) = state.next_ready(&metrics) {
                    let go_on = out.is_ok();
                    return Some((out, go_on.then_some((input, state, metrics))));
                }
                if state.done {
                    metrics.done();
                    return None;
                }
                match input.next().await {
                    Some(Ok(batch)) => {
                        let _timer = metrics.elapsed_compute().timer();
                        if let Err(e) = state.push(batch) {
                            return Some((Err(e), None));
                        }
                    }
                    Some(Err(e)) => return Some((Err(e), None)),
                    None => state.done = true,
                }
            }
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.window.schema(), out)))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// An input batch with what could be computed when it arrived.
struct Pending {
    batch: RecordBatch,
    /// Per row, its partition's number in this stream.
    partitions: UInt64Array,
    /// Per function: its column for counters, the shifted value for shifts.
    columns: Vec<ArrayRef>,
}

/// One output partition's progress.
struct State {
    schema: SchemaRef,
    partition_by: Vec<Arc<dyn PhysicalExpr>>,
    /// The `ORDER BY` expressions, when ranks need peer groups.
    order_by: Vec<Arc<dyn PhysicalExpr>>,
    functions: Vec<Function>,
    keys: Option<RowConverter>,
    peers: Option<RowConverter>,
    last_key: Option<OwnedRow>,
    last_peer: Option<OwnedRow>,
    /// The current partition's number and its counters.
    partition: u64,
    row_number: u64,
    rank: u64,
    dense_rank: u64,
    /// Rows needed after a batch (the largest lead) and before it (the
    /// largest lag).
    ahead: usize,
    behind: usize,
    pending: VecDeque<Pending>,
    pending_rows: usize,
    /// The last `behind` rows before the first pending batch: partition
    /// numbers and, per function, the values shifts take (an empty array
    /// for counters).
    before: Option<(UInt64Array, Vec<ArrayRef>)>,
    done: bool,
}

impl State {
    fn try_new(exec: &SortedWindowExec) -> Result<State> {
        let schema = exec.input.schema();
        let converter = |exprs: Vec<&Arc<dyn PhysicalExpr>>| -> Result<Option<RowConverter>> {
            if exprs.is_empty() {
                return Ok(None);
            }
            let fields = exprs.iter().map(|e| Ok(SortField::new(e.data_type(&schema)?))).collect::<Result<Vec<_>>>()?;
            Ok(Some(RowConverter::new(fields)?))
        };
        let order_by: Vec<Arc<dyn PhysicalExpr>> = if exec.needs_peers() { exec.order_by.iter().map(|o| o.expr.clone()).collect() } else { vec![] };
        let keys = converter(exec.partition_by.iter().collect())?;
        let peers = converter(order_by.iter().collect())?;
        let offsets = exec.functions.iter().filter_map(|f| match f {
            Function::Shift { offset, .. } => Some(*offset),
            _ => None,
        });
        let (mut ahead, mut behind) = (0usize, 0usize);
        for o in offsets {
            if o > 0 {
                ahead = ahead.max(o as usize);
            } else {
                behind = behind.max(o.unsigned_abs() as usize);
            }
        }
        Ok(State {
            schema: exec.window.schema(),
            partition_by: exec.partition_by.clone(),
            order_by,
            functions: exec.functions.clone(),
            keys,
            peers,
            last_key: None,
            last_peer: None,
            partition: 0,
            row_number: 0,
            rank: 0,
            dense_rank: 0,
            ahead,
            behind,
            pending: VecDeque::new(),
            pending_rows: 0,
            before: None,
            done: false,
        })
    }

    /// Numbers `batch`'s rows and queues it.
    fn push(&mut self, batch: RecordBatch) -> Result<()> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        let keys = match &self.keys {
            Some(c) => Some(c.convert_columns(&evaluate(&self.partition_by, &batch)?)?),
            None => None,
        };
        let peers = match &self.peers {
            Some(c) => Some(c.convert_columns(&evaluate(&self.order_by, &batch)?)?),
            None => None,
        };
        let changed = |rows: &Option<Rows>, last: &Option<OwnedRow>, i: usize| match rows {
            None => false,
            Some(r) if i == 0 => last.as_ref().is_none_or(|l| l.row() != r.row(0)),
            Some(r) => r.row(i) != r.row(i - 1),
        };
        // Row numbers are never 0 once a row has been seen.
        let first_ever = self.row_number == 0;
        let (mut partitions, mut row_numbers, mut ranks, mut dense_ranks) =
            (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
        for i in 0..n {
            if (i == 0 && first_ever) || changed(&keys, &self.last_key, i) {
                self.partition += 1;
                (self.row_number, self.rank, self.dense_rank) = (1, 1, 1);
            } else {
                self.row_number += 1;
                if changed(&peers, &self.last_peer, i) {
                    self.rank = self.row_number;
                    self.dense_rank += 1;
                }
            }
            partitions.push(self.partition);
            row_numbers.push(self.row_number);
            ranks.push(self.rank);
            dense_ranks.push(self.dense_rank);
        }
        if let Some(k) = &keys {
            self.last_key = Some(k.row(n - 1).owned());
        }
        if let Some(p) = &peers {
            self.last_peer = Some(p.row(n - 1).owned());
        }
        let (row_numbers, ranks, dense_ranks) = (counter(row_numbers), counter(ranks), counter(dense_ranks));
        let columns = self
            .functions
            .iter()
            .map(|f| match f {
                Function::RowNumber => Ok(row_numbers.clone()),
                Function::Rank => Ok(ranks.clone()),
                Function::DenseRank => Ok(dense_ranks.clone()),
                Function::Shift { value, .. } => value.evaluate(&batch)?.into_array(n),
            })
            .collect::<Result<Vec<_>>>()?;
        self.pending.push_back(Pending { batch, partitions: UInt64Array::from(partitions), columns });
        self.pending_rows += n;
        Ok(())
    }

    /// The first pending batch with its window columns, once the rows its
    /// leads need have arrived (or the input has ended).
    fn next_ready(&mut self, metrics: &BaselineMetrics) -> Option<Result<RecordBatch>> {
        let front = self.pending.front()?;
        if !self.done && self.pending_rows - front.batch.num_rows() < self.ahead {
            return None;
        }
        let _timer = metrics.elapsed_compute().timer();
        let out = self.emit_front();
        if let Ok(b) = &out {
            metrics.record_output(b.num_rows());
        }
        Some(out)
    }

    fn emit_front(&mut self) -> Result<RecordBatch> {
        let front = self.pending.pop_front().expect("a pending batch");
        let m = front.batch.num_rows();
        self.pending_rows -= m;
        if self.ahead == 0 && self.behind == 0 {
            let mut columns = front.batch.columns().to_vec();
            columns.extend(front.columns);
            return Ok(RecordBatch::try_new(self.schema.clone(), columns)?);
        }
        // The context: rows kept from before, this batch, and up to `ahead`
        // rows of the batches after it.
        let mut parts: Vec<(&UInt64Array, Vec<&ArrayRef>, usize)> = vec![];
        if let Some((p, v)) = &self.before {
            parts.push((p, v.iter().collect(), p.len()));
        }
        let before_len = self.before.as_ref().map_or(0, |(p, _)| p.len());
        parts.push((&front.partitions, front.columns.iter().collect(), m));
        let mut wanted = self.ahead;
        for next in self.pending.iter() {
            if wanted == 0 {
                break;
            }
            let take_rows = wanted.min(next.batch.num_rows());
            parts.push((&next.partitions, next.columns.iter().collect(), take_rows));
            wanted -= take_rows;
        }
        let sliced_partitions: Vec<ArrayRef> = parts.iter().map(|(p, _, len)| Arc::new(p.slice(0, *len)) as ArrayRef).collect();
        let context_partitions = concat(&sliced_partitions.iter().map(|a| a.as_ref()).collect::<Vec<_>>())?;
        let context_partitions = context_partitions.as_any().downcast_ref::<UInt64Array>().expect("u64 partition numbers").clone();
        let first_out = front.batch.num_columns();
        let mut out_columns = front.batch.columns().to_vec();
        let mut context_values = Vec::with_capacity(self.functions.len());
        for (fi, f) in self.functions.iter().enumerate() {
            let Function::Shift { offset, default, .. } = f else {
                out_columns.push(front.columns[fi].clone());
                context_values.push(None);
                continue;
            };
            let sliced: Vec<ArrayRef> = parts.iter().map(|(_, v, len)| v[fi].slice(0, *len)).collect();
            let values = concat(&sliced.iter().map(|a| a.as_ref()).collect::<Vec<_>>())?;
            let column = shift(&values, &context_partitions, before_len, m, *offset, default)?;
            let want = self.schema.field(first_out + fi).data_type();
            out_columns.push(if column.data_type() == want { column } else { cast(&column, want)? });
            context_values.push(Some(values));
        }
        // Keep the last `behind` rows of what came before and this batch.
        let upto = before_len + m;
        let keep = self.behind.min(upto);
        let values = context_values
            .into_iter()
            .map(|v| v.map_or_else(|| Arc::new(UInt64Array::from(Vec::<u64>::new())) as ArrayRef, |v| v.slice(upto - keep, keep)))
            .collect();
        self.before = Some((context_partitions.slice(upto - keep, keep), values));
        Ok(RecordBatch::try_new(self.schema.clone(), out_columns)?)
    }
}

fn counter(values: Vec<u64>) -> ArrayRef {
    Arc::new(UInt64Array::from(values))
}

fn evaluate(exprs: &[Arc<dyn PhysicalExpr>], batch: &RecordBatch) -> Result<Vec<ArrayRef>> {
    exprs.iter().map(|e| e.evaluate(batch)?.into_array(batch.num_rows())).collect()
}

/// For the `m` rows at `start..start + m` of the context, the value
/// `offset` rows away if that row is in the same partition, else `default`.
fn shift(values: &ArrayRef, partitions: &UInt64Array, start: usize, m: usize, offset: i64, default: &datafusion::common::ScalarValue) -> Result<ArrayRef> {
    let len = partitions.len() as i64;
    let p = partitions.values();
    let mut found = Vec::with_capacity(m);
    for g in start..start + m {
        let j = g as i64 + offset;
        found.push((0..len).contains(&j).then_some(j as usize).filter(|&j| p[j] == p[g]).map(|j| j as u32));
    }
    let indices = UInt32Array::from(found);
    let taken = take(values.as_ref(), &indices, None)?;
    if default.is_null() {
        return Ok(taken);
    }
    let mask = BooleanArray::from_iter(indices.iter().map(|i| Some(i.is_some())));
    let default = default.cast_to(taken.data_type())?.to_scalar()?;
    Ok(zip(&mask, &taken, &default)?)
}
