//! `row_number() over (partition by k order by o) = 1` as a hash lookup.
//!
//! dbt projects deduplicate with this idiom in nearly every staging model
//! ("the latest version of each row"). DataFusion 55 plans it as a hash
//! repartition on `k`, a sort of every row by `(k, o)`, a window operator
//! that numbers each partition, and a filter that keeps the ones; with
//! about a row per key (the usual case: a few late updates among a million
//! orders) the window operator alone spends ~1.7 µs a row starting and
//! finishing one-row partitions. DataFusion's own `WindowTopN` rule (off by
//! default) keeps a heap per key, which at a million keys is slower still.
//!
//! [`TopOnePerKey`] is a physical optimizer rule that matches
//!
//! ```text
//! FilterExec(… AND rn = 1 AND …)          rn = 1, rn <= 1, rn < 2, 1 = rn, …;
//!   [ProjectionExec passing rn through]    rn may be cast to another integer type
//!     BoundedWindowAggExec | WindowAggExec(row_number() PARTITION BY k… ORDER BY o…)
//! ```
//!
//! where `row_number()` is the window operator's only expression and has
//! a `PARTITION BY`, and replaces the window operator with a
//! [`TopOneExec`] over the window's input: one pass that keeps, per key,
//! the first row in `o`'s order (one integer-like key and integer-like
//! orderings compared as 64-bit words, anything else in Arrow's row format; either way `DESC`,
//! `NULLS FIRST/LAST` and NULL keys mean what they mean to the window),
//! and then emits those rows with an `rn` column of
//! ones. The filter stays above it, so every other conjunct still applies
//! and the output schema is the window's. Among rows that tie on `o`,
//! `row_number()` numbers them in an unspecified order; `TopOneExec` keeps
//! the first it reads.
//!
//! The rule runs before DataFusion's `EnsureRequirements`, so the hash
//! repartition on `k` is planned for the new operator, and no sort is
//! planned for it; operators above that need an order get their sorts as
//! they would over any unordered input.
//!
//! It is off under a memory limit (`--memory-limit`): `TopOneExec` holds
//! the rows it keeps and cannot spill them, where the sort it replaces can.
//! `DP_TOP_ONE=off` turns it off too (to measure against the window plan).

mod exec;
mod rows;
mod word_winners;

pub use exec::TopOneExec;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::expressions::{BinaryExpr, CastExpr, Column, Literal, TryCastExpr};
use datafusion::physical_expr::window::{StandardWindowExpr, WindowExpr};
use datafusion::physical_expr::{PhysicalExpr, split_conjunction};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::execution_plan::Boundedness;
use datafusion::physical_plan::execution_plan::replace_children_if_necessary;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::windows::{BoundedWindowAggExec, WindowAggExec, WindowUDFExpr};
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};
use std::sync::Arc;

/// The rule; see the module docs.
#[derive(Debug, Default)]
pub struct TopOnePerKey {
    enabled: bool,
}

impl TopOnePerKey {
    /// On unless `DP_TOP_ONE=off` or the session has a memory limit.
    pub fn new(memory_limited: bool) -> TopOnePerKey {
        let off = std::env::var("DP_TOP_ONE").is_ok_and(|v| v.eq_ignore_ascii_case("off"));
        TopOnePerKey { enabled: !memory_limited && !off }
    }

    /// The rules of DataFusion's default physical optimizer with this one
    /// before `EnsureRequirements`.
    pub fn with_default_rules(self) -> Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> {
        let mut rules = datafusion::physical_optimizer::optimizer::PhysicalOptimizer::new().rules;
        let at = rules.iter().position(|r| r.name() == "EnsureRequirements").unwrap_or(0);
        rules.insert(at, Arc::new(self));
        rules
    }
}

impl PhysicalOptimizerRule for TopOnePerKey {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _config: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        if !self.enabled {
            return Ok(plan);
        }
        plan.transform_down(|node| {
            Ok(match rewrite(&node)? {
                Some(new) => Transformed::yes(new),
                None => Transformed::no(node),
            })
        })
        .data()
    }

    fn name(&self) -> &str {
        "TopOnePerKey"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// The filter `node` with its window operator replaced, if it matches.
fn rewrite(node: &Arc<dyn ExecutionPlan>) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let Some(filter) = node.downcast_ref::<FilterExec>() else { return Ok(None) };
    let below = filter.input();
    // The columns the filter's conjuncts compare to one, as indices into the
    // window operator's output (through a projection that passes them on).
    let projection = below.downcast_ref::<ProjectionExec>();
    let window = projection.map_or(below, ProjectionExec::input);
    let Some((exprs, input)) = window_parts(window) else { return Ok(None) };
    let [expr] = exprs else { return Ok(None) };
    let rn = input.schema().fields().len();
    let to_window = |i: usize| match projection {
        Some(p) => p.expr().get(i).and_then(|e| e.expr.downcast_ref::<Column>()).map(Column::index),
        None => Some(i),
    };
    let keeps_first = split_conjunction(filter.predicate()).into_iter().any(|c| is_rn_one(c).and_then(to_window) == Some(rn));
    if !keeps_first || !is_row_number(expr) || expr.partition_by().is_empty() || input.boundedness() != Boundedness::Bounded {
        return Ok(None);
    }
    let top = Arc::new(TopOneExec::try_new(input.clone(), expr.partition_by().to_vec(), expr.order_by().to_vec(), window.schema())?);
    let mut new: Arc<dyn ExecutionPlan> = top;
    if projection.is_some() {
        new = replace_children_if_necessary(below.clone(), vec![new])?;
    }
    Ok(Some(replace_children_if_necessary(node.clone(), vec![new])?))
}

/// A window operator's expressions and its input.
type WindowParts<'a> = (&'a [Arc<dyn WindowExpr>], &'a Arc<dyn ExecutionPlan>);

fn window_parts(plan: &Arc<dyn ExecutionPlan>) -> Option<WindowParts<'_>> {
    if let Some(w) = plan.downcast_ref::<BoundedWindowAggExec>() {
        return Some((w.window_expr(), w.input()));
    }
    plan.downcast_ref::<WindowAggExec>().map(|w| (w.window_expr(), w.input()))
}

fn is_row_number(expr: &Arc<dyn WindowExpr>) -> bool {
    expr.as_any()
        .downcast_ref::<StandardWindowExpr>()
        .and_then(|s| s.get_standard_func_expr().as_any().downcast_ref::<WindowUDFExpr>())
        .is_some_and(|u| u.fun().name() == "row_number")
}

/// The column of a conjunct that holds only for a row number of one:
/// `c = 1`, `c <= 1`, `c < 2` and their mirrors, `c` possibly cast to an
/// integer type.
fn is_rn_one(conjunct: &Arc<dyn PhysicalExpr>) -> Option<usize> {
    let b = conjunct.downcast_ref::<BinaryExpr>()?;
    let (column, literal, op) = match (column_of(b.left()), int_of(b.right())) {
        (Some(c), Some(v)) => (c, v, *b.op()),
        _ => (column_of(b.right())?, int_of(b.left())?, b.op().swap()?),
    };
    let one = match op {
        Operator::Eq | Operator::LtEq => literal == 1,
        Operator::Lt => literal == 2,
        _ => false,
    };
    one.then_some(column)
}

fn column_of(e: &Arc<dyn PhysicalExpr>) -> Option<usize> {
    if let Some(c) = e.downcast_ref::<Column>() {
        return Some(c.index());
    }
    let (inner, to) = match (e.downcast_ref::<CastExpr>(), e.downcast_ref::<TryCastExpr>()) {
        (Some(c), _) => (c.expr(), c.cast_type()),
        (_, Some(c)) => (c.expr(), c.cast_type()),
        _ => return None,
    };
    // Row numbers start at one: any integer type holds 1 and 2 unchanged.
    if to.is_integer() { column_of(inner) } else { None }
}

fn int_of(e: &Arc<dyn PhysicalExpr>) -> Option<i128> {
    let v = e.downcast_ref::<Literal>()?.value();
    if !v.data_type().is_integer() {
        return None;
    }
    match v.cast_to(&DataType::Decimal128(38, 0)).ok()? {
        ScalarValue::Decimal128(Some(n), ..) => Some(n),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
