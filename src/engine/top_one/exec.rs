//! [`TopOneExec`]: per key, the first row in an order, in one pass.
//!
//! Each partition of the input (hash-partitioned on the keys, so a key
//! lives in one partition) is read to its end. Keys and orderings are
//! encoded in Arrow's row format, whose bytes compare as the sort
//! expressions order their values; a hash map from key bytes to the best
//! ordering bytes seen and where that row is decides each row in a hash
//! lookup and, when it wins, a byte comparison. Input batches are kept
//! until the end, since their rows may be chosen; when they hold many more
//! rows than there are keys they are compacted to the current winners, so
//! memory follows the number of keys, not the input. The output is the
//! winners in the order they were read, with the window's row-number
//! column set to one.

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::compute::interleave_record_batch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Result, ScalarValue};
use datafusion::error::DataFusionError;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr, PhysicalSortExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, ExecutionPlanProperties, PlanProperties};
use futures::{StreamExt, TryStreamExt};
use hashbrown::HashTable;
use std::fmt;
use std::hash::BuildHasher;
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
        for e in self.keys.iter().chain(self.order.iter().map(|o| &o.expr)) {
            if f(e)? == TreeNodeRecursion::Stop {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
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

/// The winning row of every key seen: keys and orderings in byte arenas,
/// found through a table of slot numbers (no allocation per key).
#[derive(Default)]
struct Winners {
    table: HashTable<u32>,
    hasher: foldhash::fast::RandomState,
    hashes: Vec<u64>,
    keys: Arena,
    orders: Arena,
    /// Where each slot's row is: (kept batch, row).
    at: Vec<(u32, u32)>,
}

impl Winners {
    fn len(&self) -> usize {
        self.at.len()
    }

    fn memory(&self) -> usize {
        self.table.capacity() * (size_of::<u32>() + 1) + self.hashes.capacity() * 8 + self.keys.memory() + self.orders.memory() + self.at.capacity() * 8
    }

    /// Offers row `at` with `key` and `order`; true when it becomes its
    /// key's winner.
    fn offer(&mut self, key: &[u8], order: &[u8], at: (u32, u32)) -> Result<bool> {
        let hash = self.hasher.hash_one(key);
        let keys = &self.keys;
        if let Some(&slot) = self.table.find(hash, |&s| keys.get(s) == key) {
            if order < self.orders.get(slot) {
                self.orders.set(slot, order);
                self.at[slot as usize] = at;
                return Ok(true);
            }
            return Ok(false);
        }
        let slot = u32::try_from(self.at.len()).map_err(|_| DataFusionError::Execution("TopOneExec: more than 4 billion keys in one partition".into()))?;
        let hashes = &self.hashes;
        self.table.insert_unique(hash, slot, |&s| hashes[s as usize]);
        self.hashes.push(hash);
        self.keys.push(key);
        self.orders.push(order);
        self.at.push(at);
        Ok(true)
    }
}

/// Byte strings, one per slot, in one buffer. A longer replacement is
/// appended (its old bytes left unused).
#[derive(Default)]
struct Arena {
    bytes: Vec<u8>,
    spans: Vec<(usize, usize)>,
}

impl Arena {
    fn get(&self, slot: u32) -> &[u8] {
        let (start, len) = self.spans[slot as usize];
        &self.bytes[start..start + len]
    }

    fn push(&mut self, b: &[u8]) {
        self.spans.push((self.bytes.len(), b.len()));
        self.bytes.extend_from_slice(b);
    }

    fn set(&mut self, slot: u32, b: &[u8]) {
        let span = &mut self.spans[slot as usize];
        if b.len() <= span.1 {
            self.bytes[span.0..span.0 + b.len()].copy_from_slice(b);
            span.1 = b.len();
        } else {
            *span = (self.bytes.len(), b.len());
            self.bytes.extend_from_slice(b);
        }
    }

    fn memory(&self) -> usize {
        self.bytes.capacity() + self.spans.capacity() * 16
    }
}

/// One partition's pass.
struct State {
    keys: Vec<Arc<dyn PhysicalExpr>>,
    order: Vec<Arc<dyn PhysicalExpr>>,
    key_rows: RowConverter,
    order_rows: Option<RowConverter>,
    winners: Winners,
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
        let input = exec.input.schema();
        let key_fields = exec.keys.iter().map(|k| Ok(SortField::new(k.data_type(&input)?))).collect::<Result<Vec<_>>>()?;
        let order_fields = exec.order.iter().map(|o| Ok(SortField::new_with_options(o.expr.data_type(&input)?, o.options))).collect::<Result<Vec<_>>>()?;
        let order_rows = if order_fields.is_empty() { None } else { Some(RowConverter::new(order_fields)?) };
        Ok(State {
            keys: exec.keys.clone(),
            order: exec.order.iter().map(|o| o.expr.clone()).collect(),
            key_rows: RowConverter::new(key_fields)?,
            order_rows,
            winners: Winners::default(),
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
        let keys = self.key_rows.convert_columns(&evaluate(&self.keys, &batch)?)?;
        let orders = match &self.order_rows {
            Some(c) => Some(c.convert_columns(&evaluate(&self.order, &batch)?)?),
            None => None,
        };
        let index = u32::try_from(self.batches.len()).map_err(|_| DataFusionError::Execution("TopOneExec: too many input batches".into()))?;
        let mut chosen = false;
        for row in 0..n {
            let order: &[u8] = orders.as_ref().map_or(&[], |o| o.row(row).data());
            chosen |= self.winners.offer(keys.row(row).data(), order, (index, row as u32))?;
        }
        if chosen {
            self.kept_bytes += batch.get_array_memory_size();
            self.kept_rows += n;
            self.batches.push(batch);
        }
        self.reservation.try_resize(self.kept_bytes + self.winners.memory())?;
        if self.kept_rows > 2 * self.winners.len() + COMPACT_SLACK {
            self.compact()?;
        }
        Ok(())
    }

    /// The winners' slots in the order their rows were read.
    fn slots_in_reading_order(&self) -> Vec<u32> {
        let mut slots: Vec<u32> = (0..self.winners.len() as u32).collect();
        slots.sort_unstable_by_key(|&s| self.winners.at[s as usize]);
        slots
    }

    /// Where the rows of `slots` are, as `interleave_record_batch` takes them.
    fn places_of(&self, slots: &[u32]) -> Vec<(usize, usize)> {
        slots
            .iter()
            .map(|&s| {
                let (b, r) = self.winners.at[s as usize];
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
        for (p, slot) in slots.into_iter().enumerate() {
            self.winners.at[slot as usize] = (p as u32 / size, p as u32 % size);
        }
        self.kept_rows = taken.len();
        self.kept_bytes = batches.iter().map(RecordBatch::get_array_memory_size).sum();
        self.batches = batches;
        self.reservation.try_resize(self.kept_bytes + self.winners.memory())
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
