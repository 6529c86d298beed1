//! Uncorrelated scalar subqueries in a model's `WHERE`, evaluated before the
//! model is planned, so that their value reaches the scans as a literal.
//!
//! dbt's incremental idiom filters new rows against the table being built:
//!
//! ```sql
//! select * from {{ ref('events') }}
//! {% if is_incremental() %}
//! where event_ts > (select max(event_ts) from {{ this }})
//! {% endif %}
//! ```
//!
//! DataFusion 55 evaluates the subquery when the query runs
//! (`ScalarSubqueryExec`) and prunes Parquet row groups with its value, but
//! the scan chose its files while it was planned: every file of `events` is
//! opened and its footer read (a request or two per file on S3). With the
//! subquery's value substituted first, the predicate is
//! `event_ts > TIMESTAMP '...'` at planning: a Delta table picks only the
//! files whose log statistics may hold a newer row (an incremental upstream
//! writes a file per run) and never opens the others.
//!
//! The substitution is exact. A subquery qualifies when it sits in a filter
//! of the model's query (its `WHERE` or `HAVING`, in any CTE or derived
//! table), refers to nothing of the outer query (at any depth), calls no
//! function whose value changes between calls (`now()`, `random()`), and
//! returns one column. It then has one value for the whole statement, computed once
//! either way; the snapshot it reads is the one the statement would read
//! (the table is written only after the query). No row gives SQL's NULL, of
//! the column's type. Anything else is left to DataFusion as written: more
//! than one row (its own error then), or a subquery that fails to run
//! (the statement reports it).
//!
//! Models materialized as tables, and incremental models in an incremental
//! run, go through here; views (stored as SQL), tests and the shell do not.

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, LogicalPlan, Subquery, Volatility};
use datafusion::prelude::DataFrame;
use datafusion::scalar::ScalarValue;

use super::Engine;

/// `df` with each qualifying scalar subquery of its filters replaced by its
/// value (see the module docs); `df` itself when none qualifies.
pub async fn inline_scalar_subqueries(engine: &Engine, df: DataFrame) -> Result<DataFrame> {
    let plan = df.into_unoptimized_plan();
    let mut values: Vec<(Subquery, ScalarValue)> = vec![];
    for sq in constant_in_filters(&plan)? {
        if let Some(v) = evaluate(engine, &sq).await {
            tracing::debug!(target: "dp::engine::subquery", value = %v, "scalar subquery evaluated before planning");
            values.push((sq, v));
        }
    }
    let plan = if values.is_empty() {
        plan
    } else {
        plan.transform_up(|node| match node {
            LogicalPlan::Filter(_) => node.map_expressions(|e| {
                e.transform_up(|e| match &e {
                    Expr::ScalarSubquery(sq) => match values.iter().find(|(s, _)| s == sq) {
                        Some((_, v)) => Ok(Transformed::yes(Expr::Literal(v.clone(), None))),
                        None => Ok(Transformed::no(e)),
                    },
                    _ => Ok(Transformed::no(e)),
                })
            }),
            _ => Ok(Transformed::no(node)),
        })?
        .data
    };
    Ok(DataFrame::new(engine.ctx.state(), plan))
}

/// The distinct scalar subqueries of `plan`'s filters that have one value
/// for the whole statement ([`is_constant`]) and one column, in the order
/// met.
fn constant_in_filters(plan: &LogicalPlan) -> Result<Vec<Subquery>> {
    let mut found: Vec<Subquery> = vec![];
    plan.apply(|node| {
        if let LogicalPlan::Filter(f) = node {
            f.predicate.apply(|e| {
                if let Expr::ScalarSubquery(sq) = e {
                    if !found.contains(sq) && is_constant(sq) && sq.subquery.schema().fields().len() == 1 {
                        found.push(sq.clone());
                    }
                    return Ok(TreeNodeRecursion::Jump);
                }
                Ok(TreeNodeRecursion::Continue)
            })?;
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(found)
}

/// No outer reference in the subquery's nodes or in those of the
/// subqueries nested in them (`apply_with_subqueries` walks both), and no
/// function whose value may change between calls (`now()`, `random()`:
/// evaluated apart from the statement, `now()` would differ from the
/// statement's own).
fn is_constant(sq: &Subquery) -> bool {
    if !sq.outer_ref_columns.is_empty() {
        return false;
    }
    let mut constant = true;
    let _ = sq.subquery.apply_with_subqueries(|node| {
        let volatile = node
            .expressions()
            .iter()
            .any(|e| e.exists(|x| Ok(matches!(x, Expr::ScalarFunction(f) if f.func.signature().volatility != Volatility::Immutable))).unwrap_or(true));
        constant = !volatile && !node.contains_outer_reference();
        Ok(if constant { TreeNodeRecursion::Continue } else { TreeNodeRecursion::Stop })
    });
    constant
}

/// The subquery's one value, or `None` to leave it to DataFusion (it
/// failed, or returned more than one row).
async fn evaluate(engine: &Engine, sq: &Subquery) -> Option<ScalarValue> {
    let batches = DataFrame::new(engine.ctx.state(), sq.subquery.as_ref().clone()).collect().await.ok()?;
    let mut rows = batches.iter().filter(|b| b.num_rows() > 0);
    let Some(batch) = rows.next() else {
        return ScalarValue::try_from(sq.subquery.schema().field(0).data_type()).ok();
    };
    if batch.num_rows() > 1 || rows.next().is_some() {
        return None;
    }
    ScalarValue::try_from_array(batch.column(0), 0).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    async fn found(sql: &str) -> usize {
        let ctx = SessionContext::new();
        ctx.sql("create view t as select * from (values (1, 10), (2, 20)) as v(id, n)").await.unwrap();
        let plan = ctx.sql(sql).await.unwrap().into_unoptimized_plan();
        constant_in_filters(&plan).unwrap().len()
    }

    #[tokio::test]
    async fn only_uncorrelated_deterministic_one_column_subqueries_in_filters_qualify() {
        // WHERE, in a CTE, HAVING; the same subquery twice counts once.
        assert_eq!(found("select * from t where n > (select max(n) from t) or n < (select max(n) from t)").await, 1);
        assert_eq!(found("with c as (select * from t where n > (select min(n) from t)) select * from c").await, 1);
        assert_eq!(found("select id from t group by id having sum(n) > (select avg(n) from t)").await, 1);
        // Correlated, directly or through a nested subquery; time and randomness; a select list.
        assert_eq!(found("select * from t as a where n > (select max(n) from t as b where b.id < a.id)").await, 0);
        assert_eq!(found("select * from t as a where n > (select max(n) from t as b where exists (select 1 from t as c where c.id = a.id))").await, 0);
        assert_eq!(found("select * from t where n > (select max(n) * random() from t)").await, 0);
        assert_eq!(found("select * from t where id > (select extract(day from now()))").await, 0);
        assert_eq!(found("select id, (select max(n) from t) as m from t").await, 0);
    }
}
