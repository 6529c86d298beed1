//! [`TopOneExec`]: per key, the first row in an order, in one pass.
//!
//! Each partition of the input (hash-partitioned on the keys, so a key
//! lives in one partition) is read to its end. An [`Index`] decides each
//! row in a hash lookup: one integer-like key with integer-like orderings
//! (the usual `partition by id order by updated_at desc`) goes as 64-bit
//! words (`word_winners.rs`), anything else in Arrow's row format
//! (`rows.rs`). Input batches are kept until the end, since their rows may
//! be chosen; when they hold many more rows than there are keys they are
//! compacted to the current winners, so memory follows the number of keys,
//! not the input. The output is the winners in the order they were read,
//! with the window's row-number column set to one.

use super::rows::Winners;
use super::word_winners::WordWinners;
use crate::engine::words;
use datafusion::arrow::array::{Array, ArrayRef, RecordBatch};
use datafusion::arrow::compute::{SortOptions, interleave_record_batch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Result, ScalarValue};
use datafusion::error::DataFusionError;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr, PhysicalSortExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType, apply_expression_roots};
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, ExecutionPlanProperties, PlanProperties};
use futures::{StreamExt, TryStreamExt};
use std::fmt;
use std::sync::Arc;

/// Keeps, per value of `keys`, the first row in `order`; its schema is the
/// input's plus one last column of ones (the replaced window's row number).
#[derive(Debug)]
pub struct TopOneExec {
    input: Arc<dyn ExecutionPlan>,
    keys: Vec<Arc<dyn PhysicalExpr>>,
    order: Vec<PhysicalSortExpr>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl TopOneExec {
    /// `schema`: the input's columns and then the row number's.
    pub fn try_new(input: Arc<dyn ExecutionPlan>, keys: Vec<Arc<dyn PhysicalExpr>>, order: Vec<PhysicalSortExpr>, schema: SchemaRef) -> Result<TopOneExec> {
        let properties =
            PlanProperties::new(EquivalenceProperties::new(schema.clone()), input.output_partitioning().clone(), EmissionType::Final, Boundedness::Bounded);
        Ok(TopOneExec { input, keys, order, schema, properties: Arc::new(properties), metrics: ExecutionPlanMetricsSet::new() })
    }
}

impl DisplayAs for TopOneExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let keys: Vec<String> = self.keys.iter().map(|k| k.to_string()).collect();
        let order: Vec<String> = self.order.iter().map(|o| o.to_string()).collect();
        write!(f, "TopOneExec: partition_by=[{}], order_by=[{}]", keys.join(", "), order.join(", "))
    }
}

impl ExecutionPlan for TopOneExec {
    fn name(&self) -> &'static str {
        "TopOneExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(&self, f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>) -> Result<TreeNodeRecursion> {
        apply_expression_roots(self.keys.iter().chain(self.order.iter().map(|o| &o.expr)), f)
    }

    fn required_input_distribution(&self) -> Vec<Distribution> {
        vec![Distribution::KeyPartitioned(self.keys.clone())]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![false]
    }

    fn with_new_children(self: Arc<Self>, mut children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        let input = children.swap_remove(0);
        Ok(Arc::new(TopOneExec::try_new(input, self.keys.clone(), self.order.clone(), self.schema.clone())?))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context.clone())?;
        let reservation = MemoryConsumer::new(format!("TopOneExec[{partition}]")).register(context.memory_pool());
        let mut state = State::try_new(self, context.session_config().batch_size(), reservation)?;
        let metrics = BaselineMetrics::new(&self.metrics, partition);
        let schema = self.schema.clone();
        let out = futures::stream::once(async move {
            let mut input = input;
            while let Some(batch) = input.next().await {
                let batch = batch?;
                let _timer = metrics.elapsed_compute().timer();
                state.push(batch)?;
            }
            let mut winners = state.finish()?;
            let out = std::iter::from_fn(move || {
                let _timer = metrics.elapsed_compute().timer();
                let next = winners.next();
                match &next {
                    Some(Ok(b)) => metrics.record_output(b.num_rows()),
                    _ => metrics.done(),
                }
                next
            });
            Ok::<_, DataFusionError>(futures::stream::iter(out))
        })
        .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, out)))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// Orderings the word path takes (`ORDER BY a, b, ...`); more go as rows.
const MAX_WORD_ORDERS: usize = 8;

/// How a partition's pass finds each key's winner.
enum Index {
    /// Any keys and orders, compared in Arrow's row format.
    Rows { keys: RowConverter, orders: Option<RowConverter>, winners: Winners },
    /// One integer-like key and integer-like orders, as words.
    Words { order: Vec<SortOptions>, winners: WordWinners },
}

impl Index {
    fn new(exec: &TopOneExec) -> Result<Index> {
        let input = exec.input.schema();
        let key_types = exec.keys.iter().map(|k| k.data_type(&input)).collect::<Result<Vec<_>>>()?;
        let order_types = exec.order.iter().map(|o| o.expr.data_type(&input)).collect::<Result<Vec<_>>>()?;
        if key_types.len() == 1 && key_types.iter().chain(&order_types).all(words::is_word) && order_types.len() <= MAX_WORD_ORDERS {
            let order: Vec<SortOptions> = exec.order.iter().map(|o| o.options).collect();
            return Ok(Index::Words { winners: WordWinners::new(order.len()), order });
        }
        let key_fields = key_types.into_iter().map(SortField::new).collect();
        let order_fields: Vec<SortField> = order_types.into_iter().zip(&exec.order).map(|(t, o)| SortField::new_with_options(t, o.options)).collect();
        let orders = if order_fields.is_empty() { None } else { Some(RowConverter::new(order_fields)?) };
        Ok(Index::Rows { keys: RowConverter::new(key_fields)?, orders, winners: Winners::default() })
    }

    /// Offers every row of a batch (its evaluated keys and orders); true
    /// when some row became its key's winner.
    fn offer(&mut self, keys: &[ArrayRef], orders: &[ArrayRef], index: u32) -> Result<bool> {
        let n = keys[0].len();
        let mut chosen = false;
        match self {
            Index::Rows { keys: key_rows, orders: order_rows, winners } => {
                let keys = key_rows.convert_columns(keys)?;
                let orders = match order_rows {
                    Some(c) => Some(c.convert_columns(orders)?),
                    None => None,
                };
                for row in 0..n {
                    let order: &[u8] = orders.as_ref().map_or(&[], |o| o.row(row).data());
                    chosen |= winners.offer(keys.row(row).data(), order, (index, row as u32))?;
                }
            }
            Index::Words { order, winners } => {
                let key = &keys[0];
                let key_words = words::words(key)?;
                let ranks = orders.iter().zip(order.iter()).map(|(o, options)| words::ranks(o, *options)).collect::<Result<Vec<_>>>()?;
                let mut rest = [(0, 0); MAX_WORD_ORDERS];
                let rest = &mut rest[..ranks.len().saturating_sub(1)];
                for (row, word) in key_words.into_iter().enumerate() {
                    let word = (!key.is_null(row)).then_some(word);
                    let first = ranks.first().map_or((0, 0), |r| r[row]);
                    for (r, column) in rest.iter_mut().zip(ranks.iter().skip(1)) {
                        *r = column[row];
                    }
                    chosen |= winners.offer(word, first, rest, (index, row as u32))?;
                }
            }
        }
        Ok(chosen)
    }

    fn memory(&self) -> usize {
        match self {
            Index::Rows { winners, .. } => winners.memory(),
            Index::Words { winners, .. } => winners.memory(),
        }
    }

    /// Where each slot's row is: (kept batch, row).
    fn at(&self) -> &[(u32, u32)] {
        match self {
            Index::Rows { winners, .. } => &winners.at,
            Index::Words { winners, .. } => &winners.at,
        }
    }

    fn at_mut(&mut self) -> &mut [(u32, u32)] {
        match self {
            Index::Rows { winners, .. } => &mut winners.at,
            Index::Words { winners, .. } => &mut winners.at,
        }
    }
}

/// One partition's pass.
struct State {
    keys: Vec<Arc<dyn PhysicalExpr>>,
    order: Vec<Arc<dyn PhysicalExpr>>,
    index: Index,
    batches: Vec<RecordBatch>,
    kept_rows: usize,
    kept_bytes: usize,
    schema: SchemaRef,
    batch_size: usize,
    reservation: MemoryReservation,
}

/// Compaction starts once the kept batches hold this many more rows than
/// twice the number of keys.
const COMPACT_SLACK: usize = 1 << 16;

impl State {
    fn try_new(exec: &TopOneExec, batch_size: usize, reservation: MemoryReservation) -> Result<State> {
        Ok(State {
            keys: exec.keys.clone(),
            order: exec.order.iter().map(|o| o.expr.clone()).collect(),
            index: Index::new(exec)?,
            batches: vec![],
            kept_rows: 0,
            kept_bytes: 0,
            schema: exec.schema.clone(),
            batch_size: batch_size.max(1),
            reservation,
        })
    }

    fn push(&mut self, batch: RecordBatch) -> Result<()> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        let index = u32::try_from(self.batches.len()).map_err(|_| DataFusionError::Execution("TopOneExec: too many input batches".into()))?;
        let chosen = self.index.offer(&evaluate(&self.keys, &batch)?, &evaluate(&self.order, &batch)?, index)?;
        if chosen {
            self.kept_bytes += batch.get_array_memory_size();
            self.kept_rows += n;
            self.batches.push(batch);
        }
        self.reservation.try_resize(self.kept_bytes + self.index.memory())?;
        if self.kept_rows > 2 * self.index.at().len() + COMPACT_SLACK {
            self.compact()?;
        }
        Ok(())
    }

    /// The winners' slots in the order their rows were read.
    fn slots_in_reading_order(&self) -> Vec<u32> {
        let at = self.index.at();
        let mut slots: Vec<u32> = (0..at.len() as u32).collect();
        slots.sort_unstable_by_key(|&s| at[s as usize]);
        slots
    }

    /// Where the rows of `slots` are, as `interleave_record_batch` takes them.
    fn places_of(&self, slots: &[u32]) -> Vec<(usize, usize)> {
        let at = self.index.at();
        slots
            .iter()
            .map(|&s| {
                let (b, r) = at[s as usize];
                (b as usize, r as usize)
            })
            .collect()
    }

    /// Replaces the kept batches by the winners' rows alone.
    fn compact(&mut self) -> Result<()> {
        let slots = self.slots_in_reading_order();
        let taken = self.places_of(&slots);
        let refs: Vec<&RecordBatch> = self.batches.iter().collect();
        let batches = taken.chunks(self.batch_size).map(|chunk| interleave_record_batch(&refs, chunk)).collect::<Result<Vec<_>, _>>()?;
        let size = self.batch_size as u32;
        let at = self.index.at_mut();
        for (p, slot) in slots.into_iter().enumerate() {
            at[slot as usize] = (p as u32 / size, p as u32 % size);
        }
        self.kept_rows = taken.len();
        self.kept_bytes = batches.iter().map(RecordBatch::get_array_memory_size).sum();
        self.batches = batches;
        self.reservation.try_resize(self.kept_bytes + self.index.memory())
    }

    /// The winners, `batch_size` rows a batch, with the row number column.
    /// Winners are emitted in the order they were read, so each batch kept
    /// is dropped once the last of its winners has been emitted.
    fn finish(self) -> Result<impl Iterator<Item = Result<RecordBatch>> + Send> {
        let taken = self.places_of(&self.slots_in_reading_order());
        let one = ScalarValue::new_one(self.schema.field(self.schema.fields().len() - 1).data_type())?;
        let State { batches, schema, batch_size, reservation, mut kept_bytes, .. } = self;
        let mut batches: Vec<Option<RecordBatch>> = batches.into_iter().map(Some).collect();
        reservation.resize(kept_bytes);
        let mut pos = 0;
        Ok(std::iter::from_fn(move || {
            let chunk = taken.get(pos..taken.len().min(pos + batch_size)).filter(|c| !c.is_empty())?;
            pos += chunk.len();
            let (first, last) = (chunk[0].0, chunk[chunk.len() - 1].0);
            let emit = || -> Result<RecordBatch> {
                let refs = batches[first..=last]
                    .iter()
                    .map(|b| b.as_ref().ok_or_else(|| DataFusionError::Internal("TopOneExec: a batch was dropped early".into())))
                    .collect::<Result<Vec<_>>>()?;
                let at: Vec<(usize, usize)> = chunk.iter().map(|&(b, r)| (b - first, r)).collect();
                let mut columns = interleave_record_batch(&refs, &at)?.columns().to_vec();
                columns.push(one.to_array_of_size(chunk.len())?);
                Ok(RecordBatch::try_new(schema.clone(), columns)?)
            };
            let out = emit();
            let done = if pos == taken.len() { batches.len() } else { taken[pos].0 };
            for b in batches[..done].iter_mut().filter_map(Option::take) {
                kept_bytes -= b.get_array_memory_size();
            }
            reservation.resize(kept_bytes);
            Some(out)
        }))
    }
}

fn evaluate(exprs: &[Arc<dyn PhysicalExpr>], batch: &RecordBatch) -> Result<Vec<ArrayRef>> {
    exprs.iter().map(|e| e.evaluate(batch)?.into_array(batch.num_rows())).collect()
}
