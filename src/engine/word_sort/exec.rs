//! [`WordSortExec`]: a partition read whole, its keys sorted once, its rows
//! emitted in that order (see the module docs of `word_sort`).

use super::keys;
use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::compute::{SortOptions, interleave_record_batch};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Result, internal_err};
use datafusion::error::DataFusionError;
use datafusion::execution::memory_pool::MemoryConsumer;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{PhysicalExpr, PhysicalSortExpr};
use datafusion::physical_plan::InputDistributionRequirements;
use datafusion::physical_plan::execution_plan::{apply_expression_roots, replace_children_if_necessary};
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::{StreamExt, TryStreamExt};
use std::fmt;
use std::sync::Arc;

/// The replaced `SortExec`'s output, sorted on word keys.
#[derive(Debug)]
pub struct WordSortExec {
    /// The `SortExec` replaced: its requirements and output properties are
    /// this operator's.
    sort: Arc<dyn ExecutionPlan>,
    input: Arc<dyn ExecutionPlan>,
    expr: Vec<PhysicalSortExpr>,
    preserve_partitioning: bool,
    metrics: ExecutionPlanMetricsSet,
}

impl WordSortExec {
    /// `sort`: a `SortExec` without a fetch.
    pub fn try_new(sort: Arc<dyn ExecutionPlan>) -> Result<WordSortExec> {
        let Some(s) = sort.downcast_ref::<SortExec>() else {
            return internal_err!("WordSortExec replaces a SortExec, not {}", sort.name());
        };
        if s.fetch().is_some() {
            return internal_err!("WordSortExec does not replace a top-k sort");
        }
        Ok(WordSortExec {
            input: s.input().clone(),
            expr: s.expr().iter().cloned().collect(),
            preserve_partitioning: s.preserve_partitioning(),
            metrics: ExecutionPlanMetricsSet::new(),
            sort: sort.clone(),
        })
    }
}

impl DisplayAs for WordSortExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let expr: Vec<String> = self.expr.iter().map(|e| e.to_string()).collect();
        write!(f, "WordSortExec: expr=[{}], preserve_partitioning=[{}]", expr.join(", "), self.preserve_partitioning)
    }
}

impl ExecutionPlan for WordSortExec {
    fn name(&self) -> &'static str {
        "WordSortExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.sort.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(&self, f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>) -> Result<TreeNodeRecursion> {
        apply_expression_roots(self.expr.iter().map(|e| &e.expr), f)
    }

    fn input_distribution_requirements(&self) -> InputDistributionRequirements {
        self.sort.input_distribution_requirements()
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![false]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        self.sort.benefits_from_input_partitioning()
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        let sort = replace_children_if_necessary(self.sort.clone(), children)?;
        Ok(Arc::new(WordSortExec::try_new(sort)?))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let mut input = self.input.execute(partition, context.clone())?;
        let reservation = MemoryConsumer::new(format!("WordSortExec[{partition}]")).register(context.memory_pool());
        let batch_size = context.session_config().batch_size().max(1);
        let exprs: Vec<Arc<dyn PhysicalExpr>> = self.expr.iter().map(|e| e.expr.clone()).collect();
        let options: Vec<SortOptions> = self.expr.iter().map(|e| e.options).collect();
        let metrics = BaselineMetrics::new(&self.metrics, partition);
        let schema = self.schema();
        let out = futures::stream::once(async move {
            let mut batches = vec![];
            while let Some(batch) = input.next().await {
                let batch = batch?;
                if batch.num_rows() > 0 {
                    reservation.try_grow(batch.get_array_memory_size())?;
                    batches.push(batch);
                }
            }
            let timer = metrics.elapsed_compute().timer();
            let held = reservation.size();
            let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
            // The keys while they sort: up to a word per column and a place.
            reservation.try_grow(rows * 8 * (exprs.len() * 2 + 1))?;
            let sort_columns =
                batches.iter().map(|b| exprs.iter().map(|e| e.evaluate(b)?.into_array(b.num_rows())).collect()).collect::<Result<Vec<Vec<ArrayRef>>>>()?;
            let places = keys::sorted_places(&sort_columns, &options)?;
            drop(sort_columns);
            reservation.try_resize(held + places.len() * 8)?;
            timer.done();
            let mut pos = 0;
            let out = std::iter::from_fn(move || {
                let _timer = metrics.elapsed_compute().timer();
                let Some(chunk) = places.get(pos..places.len().min(pos + batch_size)).filter(|c| !c.is_empty()) else {
                    metrics.done();
                    reservation.free();
                    return None;
                };
                pos += chunk.len();
                let at: Vec<(usize, usize)> = chunk.iter().map(|&p| ((p >> 32) as usize, (p & u32::MAX as u64) as usize)).collect();
                let refs: Vec<&RecordBatch> = batches.iter().collect();
                let out = interleave_record_batch(&refs, &at).map_err(DataFusionError::from);
                if let Ok(b) = &out {
                    metrics.record_output(b.num_rows());
                }
                Some(out)
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
