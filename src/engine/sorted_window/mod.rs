//! `row_number()`, `rank()`, `dense_rank()`, `lag()` and `lead()` over
//! sorted input, in one pass of adjacent-row comparisons.
//!
//! dbt models number and shift rows within a key all the time (a
//! customer's order sequence, the previous order's date). DataFusion 55
//! plans these as a sort on `(k, o)` and a `BoundedWindowAggExec`, which
//! handles each partition as a unit: a key turned into scalars, a hash map
//! entry, a slice of batches concatenated, an evaluator run and pruned. At
//! a few rows per key (95,000 customers among 950,000 orders) that costs
//! about 0.7 µs a row, more than the sort before it.
//!
//! [`SortedWindow`] is a physical optimizer rule that replaces a
//! `BoundedWindowAggExec` whose input is sorted on its `PARTITION BY` keys
//! (DataFusion's `InputOrderMode::Sorted`) and whose every expression is one
//! of
//!
//! - `row_number()`, `rank()`, `dense_rank()`;
//! - `lag(x [, n [, default]])`, `lead(x [, n [, default]])` with literal
//!   `n` and `default` and without `IGNORE NULLS`,
//!
//! with a [`SortedWindowExec`]. Since the input arrives sorted, a partition
//! starts where the keys differ from the row before and a rank's peer group
//! where the `ORDER BY` values do (both compared in Arrow's row format, so
//! NULLs are equal to NULLs, as they are to the window). Row numbers and
//! ranks are running counters reset at partition starts; `lag`/`lead` take
//! the value `n` rows back or ahead when that row has the same partition
//! number, else the default. Batches stream through: `lead` holds back a
//! batch until `n` rows after it have arrived, `lag` keeps the last `n`
//! rows before it. Frames do not apply to these functions; peers under
//! `row_number()` are numbered in input order, one of the orders the
//! window allows.
//!
//! The rule runs last, before DataFusion's `SanityCheckPlan`, once the sort
//! and the repartition the window required are in place; the new operator
//! requires what the window required and keeps its output properties, so
//! nothing above it changes. Any other function, a window the optimizer
//! reversed (to reuse a sort made in the other direction, DataFusion then
//! evaluates it over the reversed order with flipped offsets), or an input
//! order mode other than `Sorted`, leaves the window operator alone. `DP_SORTED_WINDOW=off` turns the rule off (to measure
//! against DataFusion's operator).

mod exec;

pub use exec::SortedWindowExec;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::{Result, ScalarValue};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Literal;
use datafusion::physical_expr::window::{StandardWindowExpr, WindowExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::InputOrderMode;
use datafusion::physical_plan::windows::{BoundedWindowAggExec, WindowUDFExpr};
use std::sync::Arc;

/// Offsets further than this (rows) are left to DataFusion, which does not
/// buffer them.
const MAX_OFFSET: i64 = 1 << 16;

/// The rule; see the module docs.
#[derive(Debug)]
pub struct SortedWindow {
    enabled: bool,
}

impl SortedWindow {
    /// On unless `DP_SORTED_WINDOW=off`.
    pub fn new() -> SortedWindow {
        SortedWindow { enabled: !crate::util::switched_off("DP_SORTED_WINDOW") }
    }

    /// Adds the rule to `rules`, before `SanityCheckPlan` (last otherwise).
    pub fn add_to(self, rules: &mut Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>>) {
        crate::engine::add_before_sanity_check(rules, Arc::new(self));
    }
}

impl Default for SortedWindow {
    fn default() -> Self {
        SortedWindow::new()
    }
}

impl PhysicalOptimizerRule for SortedWindow {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _config: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        if !self.enabled {
            return Ok(plan);
        }
        plan.transform_up(|node| {
            let Some(window) = node.downcast_ref::<BoundedWindowAggExec>() else { return Ok(Transformed::no(node)) };
            if window.input_order_mode != InputOrderMode::Sorted {
                return Ok(Transformed::no(node));
            }
            let schema = window.schema();
            let first_out = window.input().schema().fields().len();
            let functions: Option<Vec<Function>> =
                window.window_expr().iter().enumerate().map(|(i, e)| function_of(e, schema.field(first_out + i).data_type())).collect();
            let Some(functions) = functions else { return Ok(Transformed::no(node)) };
            // Keys without a row format, or expressions over different
            // partitions or orders, stay with DataFusion's operator: declining
            // is always correct, failing the query never is.
            Ok(match SortedWindowExec::try_new(node.clone(), functions) {
                Ok(exec) => Transformed::yes(Arc::new(exec) as Arc<dyn ExecutionPlan>),
                Err(_) => Transformed::no(node),
            })
        })
        .data()
    }

    fn name(&self) -> &str {
        "SortedWindow"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// One window expression, as [`SortedWindowExec`] computes it.
#[derive(Debug, Clone)]
pub enum Function {
    RowNumber,
    Rank,
    DenseRank,
    /// The value of `value` `offset` rows ahead (`lead`; negative: back,
    /// `lag`) in the same partition, else `default` (of the output type).
    Shift {
        value: Arc<dyn PhysicalExpr>,
        offset: i64,
        default: ScalarValue,
    },
}

/// `expr` as a [`Function`], if it is one this operator computes exactly as
/// DataFusion does. `output`: its column's type.
fn function_of(expr: &Arc<dyn WindowExpr>, output: &DataType) -> Option<Function> {
    let standard = expr.as_any().downcast_ref::<StandardWindowExpr>()?;
    let udf = standard.get_standard_func_expr().as_any().downcast_ref::<WindowUDFExpr>()?;
    let fun = udf.fun().name();
    // A window the optimizer reversed (to reuse a sort in the other
    // direction) is evaluated over the reversed order with its shift's sign
    // flipped, and `IGNORE NULLS` skips rows; both are left to DataFusion.
    // `WindowUDFExpr` has no getter for either flag, only its `Debug` output
    // (a DataFusion that prints them otherwise just turns the rule off).
    let flags = format!("{udf:?}");
    if !flags.contains("is_reversed: false") || !flags.contains("ignore_nulls: false") {
        return None;
    }
    let counter = matches!(fun, "row_number" | "rank" | "dense_rank");
    if counter && output != &DataType::UInt64 {
        return None;
    }
    match fun {
        "row_number" => Some(Function::RowNumber),
        "rank" => Some(Function::Rank),
        "dense_rank" => Some(Function::DenseRank),
        "lag" | "lead" => {
            let args = udf.args();
            let value = standard.expressions().into_iter().next()?;
            let n = match args.get(1) {
                None => 1,
                Some(e) => match e.downcast_ref::<Literal>()?.value().cast_to(&DataType::Int64).ok()? {
                    ScalarValue::Int64(Some(n)) if n.abs() <= MAX_OFFSET => n,
                    _ => return None,
                },
            };
            let default = match args.get(2) {
                None => ScalarValue::try_from(output).ok()?,
                Some(e) => {
                    let v = e.downcast_ref::<Literal>()?.value();
                    if v.data_type().is_null() { ScalarValue::try_from(output).ok()? } else { v.cast_to(output).ok()? }
                }
            };
            let offset = if fun == "lag" { -n } else { n };
            Some(Function::Shift { value, offset, default })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
