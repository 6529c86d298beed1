//! SQL rewrites applied before DataFusion plans a model, a view or a test,
//! for standard SQL semantics its planner misses. Each is exact (never a
//! guess): a statement the rewrite does not recognise is left as written.
//!
//! - **`FULL JOIN ... USING (c)`.** In standard SQL (DuckDB, PostgreSQL,
//!   Snowflake) an unqualified `c` in the select list, `WHERE`, `GROUP BY`
//!   or `HAVING` is `COALESCE(left.c, right.c)`. DataFusion takes the left
//!   side's `c`, which is NULL for the rows only the right side has: a
//!   silent wrong result (audit_helper's `compare_relation_columns` hit it).
//!   The rewrite applies when both sides of the join are named (a table or
//!   an aliased subquery) and the left side is a single relation.
//! - **`x AT TIME ZONE 'z'`** becomes `dp_at_time_zone(x, 'z')`, with
//!   PostgreSQL's and DuckDB's meaning (see [`super::timezone`]).
//! - **`CAST('2024-01-01 06:14:00-07:00' AS TIMESTAMP)`** drops the offset
//!   and keeps the wall-clock time, as PostgreSQL and DuckDB do; DataFusion
//!   converted the literal to UTC.
//! - **Integer division** ([`duckdb_division`], on the logical plan): `a / b`
//!   with two integer operands is a DOUBLE division, as in DuckDB (and
//!   dbt-duckdb, whose goldens dp matches): `7 / 2` is 3.5, not 3.
//!   jaffle-shop's `cents_to_dollars` (`(cents / 100)::numeric(16, 2)`)
//!   relies on it. `//` or `div(a, b)` divide integers.
//! - **Duplicate output names.** DuckDB takes `select a, a, b` and names
//!   the second `a` `a_1` (then `a_2`, ...: the first free name) in a
//!   subquery, a CTE, a table or a view; DataFusion refused the select
//!   ("Projections require unique expression names"). dbt_utils' `equality`
//!   writes such selects when `compare_columns` repeats a column
//!   (dbt_project_evaluator's `equality_fct_test_coverage`). A select list
//!   with `*` is left alone (its names are not known before planning).
//! - **Integer literals** ([`duckdb_integer_literals`], on the logical
//!   plan): `select 1 as n` gives an INTEGER column, as in DuckDB, not a
//!   BIGINT.

use std::borrow::Cow;
use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::utils::merge_schema;
use datafusion::logical_expr::{BinaryExpr, Expr as DfExpr, ExprSchemable, LogicalPlan, Operator, cast};
use datafusion::sql::sqlparser::ast::{
    Expr, GroupByExpr, Ident, JoinConstraint, JoinOperator, ObjectNamePart, Select, SelectItem, TableFactor, VisitMut, VisitorMut, visit_expressions_mut,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;

/// `sql` with the rewrites above applied, or `sql` itself when none applies
/// (or it does not parse: DataFusion then reports the error).
pub fn rewrite(sql: &str) -> Cow<'_, str> {
    let lower = sql.to_ascii_lowercase();
    let full_using = lower.contains("full") && lower.contains("using");
    let zones = lower.contains("time zone") || lower.contains("timestamp");
    let dups = maybe_duplicate_names(&lower);
    if !full_using && !zones && !dups {
        return Cow::Borrowed(sql);
    }
    let Ok(mut statements) = Parser::parse_sql(&GenericDialect {}, sql) else { return Cow::Borrowed(sql) };
    let mut v = FullUsing { changed: false };
    if full_using {
        let _ = statements.visit(&mut v);
    }
    let mut z = Zones { changed: false };
    if zones {
        let _ = statements.visit(&mut z);
    }
    let mut d = DuplicateNames { changed: false };
    if dups {
        let _ = statements.visit(&mut d);
    }
    if !v.changed && !z.changed && !d.changed {
        return Cow::Borrowed(sql);
    }
    Cow::Owned(statements.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(";\n"))
}

/// The plan with every integer `/` turned into a DOUBLE division; output
/// names are kept (an unaliased `a / b` is still called `a / b`).
pub fn duckdb_division(plan: LogicalPlan) -> datafusion::error::Result<LogicalPlan> {
    let mut changed = false;
    let t = plan.transform_up_with_subqueries(|node| {
        let schema = merge_schema(&node.inputs());
        let names = NamePreserver::new(&node);
        let node = node.map_expressions(|e| {
            let saved = names.save(&e);
            let t = e.transform_up(|e| {
                let DfExpr::BinaryExpr(BinaryExpr { left, op: Operator::Divide, right }) = &e else { return Ok(Transformed::no(e)) };
                let (Ok(l), Ok(r)) = (left.get_type(&schema), right.get_type(&schema)) else { return Ok(Transformed::no(e)) };
                if !(l.is_integer() && r.is_integer()) {
                    return Ok(Transformed::no(e));
                }
                let DfExpr::BinaryExpr(b) = e else { unreachable!("matched above") };
                Ok(Transformed::yes(DfExpr::BinaryExpr(BinaryExpr::new(
                    Box::new(cast(*b.left, DataType::Float64)),
                    Operator::Divide,
                    Box::new(cast(*b.right, DataType::Float64)),
                ))))
            })?;
            Ok(if t.transformed { Transformed::yes(saved.restore(t.data)) } else { t })
        })?;
        changed |= node.transformed;
        // an input's column types may have changed: every node from the first change up is re-typed
        if changed { Ok(Transformed::yes(node.data.recompute_schema()?)) } else { Ok(node) }
    })?;
    Ok(t.data)
}

/// The plan typed as DuckDB types it: [`duckdb_division`], then
/// [`duckdb_integer_literals`]. Models, views, tests and the shell plan
/// through here.
pub fn duckdb_plan(plan: LogicalPlan) -> datafusion::error::Result<LogicalPlan> {
    duckdb_integer_literals(duckdb_division(plan)?)
}

/// A select-list item that is a bare integer literal is an INTEGER when it
/// fits 32 bits, as in DuckDB (`select 1 as n` gives an INTEGER column,
/// which `adapter.get_columns_in_relation` reports and codegen's YAML
/// prints), where DataFusion types every integer literal BIGINT. Literals
/// inside expressions keep DataFusion's typing. A set operation's output
/// type is then derived again from its branches (an INTEGER branch with a
/// BIGINT one gives BIGINT, as in DuckDB); the non-recursive term of a
/// recursive CTE keeps its types (its recursive term is planned against
/// them).
pub fn duckdb_integer_literals(plan: LogicalPlan) -> datafusion::error::Result<LogicalPlan> {
    use datafusion::common::ScalarValue;
    use datafusion::common::tree_node::TreeNodeRecursion;
    use datafusion::logical_expr::Union;
    use datafusion::optimizer::analyzer::type_coercion::{TypeCoercionRewriter, coerce_union_schema};
    let narrow = |node: LogicalPlan| -> datafusion::error::Result<Transformed<LogicalPlan>> {
        match node {
            LogicalPlan::RecursiveQuery(_) => Ok(Transformed::new(node, false, TreeNodeRecursion::Jump)),
            LogicalPlan::Projection(_) => {
                let names = NamePreserver::new(&node);
                node.map_expressions(|e| {
                    let inner = match &e {
                        DfExpr::Alias(a) => a.expr.as_ref(),
                        e => e,
                    };
                    let DfExpr::Literal(ScalarValue::Int64(Some(v)), meta) = inner else { return Ok(Transformed::no(e)) };
                    let Ok(v) = i32::try_from(*v) else { return Ok(Transformed::no(e)) };
                    let saved = names.save(&e);
                    let lit = DfExpr::Literal(ScalarValue::Int32(Some(v)), meta.clone());
                    Ok(Transformed::yes(saved.restore(match e {
                        DfExpr::Alias(a) => lit.alias_qualified(a.relation, a.name),
                        _ => lit,
                    })))
                })
            }
            other => Ok(Transformed::no(other)),
        }
    };
    let t = plan.transform_down_with_subqueries(narrow)?;
    if !t.transformed {
        return Ok(t.data);
    }
    // every node above a change is re-typed; a union takes its branches' types again
    let t = t.data.transform_up_with_subqueries(|node| match node {
        LogicalPlan::Union(Union { inputs, schema })
            if inputs.iter().any(|i| i.schema().fields().iter().zip(schema.fields()).any(|(a, b)| a.data_type() != b.data_type())) =>
        {
            // the common types of the branches as they are now (coerce_union alone would keep the old ones)
            let fresh = Arc::new(coerce_union_schema(&inputs)?);
            let names_kept = fresh.fields().iter().zip(schema.fields()).all(|(a, b)| a.name() == b.name());
            let schema = if names_kept { fresh } else { schema };
            Ok(Transformed::yes(TypeCoercionRewriter::coerce_union(Union { inputs, schema })?))
        }
        LogicalPlan::RecursiveQuery(_) => Ok(Transformed::no(node)),
        other => Ok(Transformed::yes(other.recompute_schema()?)),
    })?;
    Ok(t.data)
}

struct FullUsing {
    changed: bool,
}

/// Whether some name starts a select item twice (the word after `select`,
/// a comma or `as`): a cheap test that leaves most statements unparsed;
/// [`DuplicateNames`] decides.
fn maybe_duplicate_names(lower: &str) -> bool {
    let mut seen = std::collections::HashSet::new();
    let starts = lower.split(',').skip(1).chain(lower.split("select").skip(1)).chain(lower.split(" as ").skip(1));
    starts
        .filter_map(|part| {
            let word = part.trim_start().split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.' || c == '"')).next()?;
            let word = word.rsplit('.').next().unwrap_or(word).trim_matches('"');
            (!word.is_empty()).then_some(word)
        })
        .any(|w| !seen.insert(w))
}

/// Names repeated in a select list, renamed as DuckDB names them (see the
/// module docs).
struct DuplicateNames {
    changed: bool,
}

impl VisitorMut for DuplicateNames {
    type Break = ();

    fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
        self.changed |= dedupe_select(select);
        ControlFlow::Continue(())
    }
}

/// The output name of a select item, as DuckDB compares names (case
/// insensitive), when it is a column or an alias.
fn item_name(item: &SelectItem) -> Option<String> {
    match item {
        SelectItem::UnnamedExpr(Expr::Identifier(id)) | SelectItem::ExprWithAlias { alias: id, .. } => Some(id.value.to_lowercase()),
        SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) => parts.last().map(|id| id.value.to_lowercase()),
        _ => None,
    }
}

fn dedupe_select(select: &mut Select) -> bool {
    if select.projection.iter().any(|i| matches!(i, SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..))) {
        return false;
    }
    let mut used = std::collections::HashSet::new();
    let mut changed = false;
    for item in &mut select.projection {
        let Some(name) = item_name(item) else { continue };
        if used.insert(name.clone()) {
            continue;
        }
        let fresh = (1..).map(|k| format!("{name}_{k}")).find(|n| !used.contains(n)).expect("some suffix is free");
        used.insert(fresh.clone());
        let alias = Ident::with_quote('"', fresh);
        *item = match std::mem::replace(item, SelectItem::UnnamedExpr(Expr::Value(datafusion::sql::sqlparser::ast::Value::Null.into()))) {
            SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } => SelectItem::ExprWithAlias { expr, alias },
            other => other,
        };
        changed = true;
    }
    changed
}

/// `AT TIME ZONE` and timestamp literals with an offset (see the module docs).
struct Zones {
    changed: bool,
}

impl VisitorMut for Zones {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        use datafusion::sql::sqlparser::ast::{DataType as SqlType, TimezoneInfo, Value, ValueWithSpan};
        match expr {
            Expr::AtTimeZone { timestamp, time_zone } => {
                let text = format!("{}({timestamp}, {time_zone})", super::timezone::NAME);
                if let Ok(call) = Parser::new(&GenericDialect {}).try_with_sql(&text).and_then(|mut p| p.parse_expr()) {
                    *expr = call;
                    self.changed = true;
                }
            }
            Expr::Cast { expr: inner, data_type: SqlType::Timestamp(_, TimezoneInfo::None | TimezoneInfo::WithoutTimeZone), .. } => {
                if let Expr::Value(ValueWithSpan { value: Value::SingleQuotedString(s), .. }) = inner.as_mut()
                    && let Some(wall) = without_offset(s)
                {
                    *s = wall;
                    self.changed = true;
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// `2024-01-01 06:14:00-07:00` (or `+05:30`, `Z`) without its offset.
fn without_offset(s: &str) -> Option<String> {
    let t = s.trim();
    if t.len() < 19 || !t.as_bytes()[..4].iter().all(u8::is_ascii_digit) || t.as_bytes()[4] != b'-' {
        return None;
    }
    if let Some(rest) = t.strip_suffix('Z') {
        return Some(rest.to_string());
    }
    let tail = &t[t.len().saturating_sub(6)..];
    let b = tail.as_bytes();
    let offset = b.len() == 6
        && (b[0] == b'+' || b[0] == b'-')
        && b[1].is_ascii_digit()
        && b[2].is_ascii_digit()
        && b[3] == b':'
        && b[4].is_ascii_digit()
        && b[5].is_ascii_digit();
    offset.then(|| t[..t.len() - 6].to_string())
}

impl VisitorMut for FullUsing {
    type Break = ();

    fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
        self.changed |= select_full_using(select);
        ControlFlow::Continue(())
    }
}

/// The name a relation's columns are qualified with.
pub(super) fn qualifier(factor: &TableFactor) -> Option<Ident> {
    match factor {
        TableFactor::Table { alias: Some(a), .. } | TableFactor::Derived { alias: Some(a), .. } => Some(a.name.clone()),
        TableFactor::Table { name, alias: None, .. } => match name.0.last()? {
            ObjectNamePart::Identifier(i) => Some(i.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// (column, left qualifier, right qualifier) for each `USING` column of a
/// full join whose left side is one named relation.
fn full_using_columns(select: &Select) -> Vec<(Ident, Ident, Ident)> {
    let mut out = vec![];
    for twj in &select.from {
        let Some(left) = qualifier(&twj.relation) else { continue };
        for (i, join) in twj.joins.iter().enumerate() {
            let JoinOperator::FullOuter(JoinConstraint::Using(cols)) = &join.join_operator else { continue };
            let Some(right) = qualifier(&join.relation) else { continue };
            if i > 0 {
                break;
            }
            for c in cols {
                if let [ObjectNamePart::Identifier(col)] = c.0.as_slice() {
                    out.push((col.clone(), left.clone(), right.clone()));
                }
            }
        }
    }
    out
}

fn same(a: &Ident, b: &Ident) -> bool {
    match (a.quote_style, b.quote_style) {
        (None, None) => a.value.eq_ignore_ascii_case(&b.value),
        _ => a.value == b.value,
    }
}

fn coalesced(col: &Ident, left: &Ident, right: &Ident) -> Option<Expr> {
    let text = format!("COALESCE({left}.{col}, {right}.{col})");
    Parser::new(&GenericDialect {}).try_with_sql(&text).ok()?.parse_expr().ok()
}

fn select_full_using(select: &mut Select) -> bool {
    let cols = full_using_columns(select);
    if cols.is_empty() {
        return false;
    }
    let mut changed = false;
    let mut replace = |e: &mut Expr| {
        let _ = visit_expressions_mut(e, |x: &mut Expr| {
            if let Expr::Identifier(id) = x
                && let Some((c, l, r)) = cols.iter().find(|(c, _, _)| same(c, id))
                && let Some(new) = coalesced(c, l, r)
            {
                *x = new;
                changed = true;
            }
            ControlFlow::<()>::Continue(())
        });
    };
    for item in &mut select.projection {
        match item {
            SelectItem::UnnamedExpr(Expr::Identifier(id)) => {
                let alias = id.clone();
                let mut e = Expr::Identifier(id.clone());
                replace(&mut e);
                if !matches!(e, Expr::Identifier(_)) {
                    *item = SelectItem::ExprWithAlias { expr: e, alias };
                }
            }
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => replace(e),
            _ => {}
        }
    }
    if let Some(w) = &mut select.selection {
        replace(w);
    }
    if let Some(h) = &mut select.having {
        replace(h);
    }
    if let GroupByExpr::Expressions(exprs, _) = &mut select.group_by {
        exprs.iter_mut().for_each(&mut replace);
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::rewrite;

    #[test]
    fn full_join_using_coalesces_the_join_column() {
        let sql = "with a as (select 1 as c), b as (select 2 as c) select c, a.c as ac from a full outer join b using (c) where c > 0 group by c";
        assert_eq!(
            rewrite(sql),
            "WITH a AS (SELECT 1 AS c), b AS (SELECT 2 AS c) SELECT COALESCE(a.c, b.c) AS c, a.c AS ac FROM a FULL JOIN b USING(c) WHERE COALESCE(a.c, b.c) > 0 GROUP BY COALESCE(a.c, b.c)"
        );
    }

    #[tokio::test]
    async fn integer_division_is_double_and_keeps_its_name() {
        let ctx = datafusion::prelude::SessionContext::new();
        let sql = "select 7 / 2, cast(7 as int) / 2 as b, 7.0 / 2 as c, 7 % 2 as m from (select 1) where 3 / 2 > 1";
        let plan = super::duckdb_division(ctx.sql(sql).await.unwrap().into_unoptimized_plan()).unwrap();
        let df = datafusion::dataframe::DataFrame::new(ctx.state(), plan);
        let batches = df.collect().await.unwrap();
        let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches).unwrap().to_string();
        assert_eq!(
            text,
            "+---------------------+-----+-----+---+\n| Int64(7) / Int64(2) | b   | c   | m |\n+---------------------+-----+-----+---+\n| 3.5                 | 3.5 | 3.5 | 1 |\n+---------------------+-----+-----+---+"
        );
    }

    #[tokio::test]
    async fn a_bare_integer_literal_is_an_integer_as_in_duckdb() {
        // DuckDB 1.4's `describe`: a INTEGER, b INTEGER (DataFusion: BIGINT), c BIGINT, d INTEGER, u INTEGER, w BIGINT, r INTEGER
        let ctx = datafusion::prelude::SessionContext::new();
        let sql = "with t as (select 1 as a, -2 as n), \
                   u as (select 1 as u union all select 2), w as (select 1 as w union all select 3000000000), \
                   r as (select 1 as r union all select cast(2 as int)) \
                   select a, a + 1 as b, 3000000000 as c, 4, u, w, r from t, u, w, r order by u, w limit 1";
        let plan = super::duckdb_plan(ctx.sql(sql).await.unwrap().into_unoptimized_plan()).unwrap();
        let df = datafusion::dataframe::DataFrame::new(ctx.state(), plan);
        let types: Vec<String> = df.schema().fields().iter().map(|f| format!("{} {}", f.name(), f.data_type())).collect();
        assert_eq!(types, ["a Int32", "b Int64", "c Int64", "Int64(4) Int32", "u Int32", "w Int64", "r Int32"]);
        let batches = df.collect().await.unwrap();
        let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches).unwrap().to_string();
        assert!(text.contains("| 1 | 2 | 3000000000 | 4        | 1 | 1 | 1 |"), "{text}");
        // a recursive CTE's first term keeps DataFusion's types: its recursive term adds BIGINT literals
        let sql = "with recursive r as (select 0 as d union all select d + 1 from r where d < 2) select d from r";
        let plan = super::duckdb_plan(ctx.sql(sql).await.unwrap().into_unoptimized_plan()).unwrap();
        let n = datafusion::dataframe::DataFrame::new(ctx.state(), plan).count().await.unwrap();
        assert_eq!(n, 3);
    }

    #[test]
    fn at_time_zone_and_offset_literals() {
        assert_eq!(
            rewrite("select cast(t as timestamp) at time zone 'UTC' at time zone 'America/Los_Angeles' as x from s"),
            "SELECT dp_at_time_zone(dp_at_time_zone(CAST(t AS TIMESTAMP), 'UTC'), 'America/Los_Angeles') AS x FROM s"
        );
        assert_eq!(rewrite("select cast('1997-09-29 06:14:00-07:00' as timestamp) as d"), "SELECT CAST('1997-09-29 06:14:00' AS TIMESTAMP) AS d");
        let plain = "select cast('1997-09-29 06:14:00' as timestamp) as d";
        assert_eq!(rewrite(plain), plain);
    }

    #[tokio::test]
    async fn at_time_zone_means_what_postgres_and_duckdb_mean() {
        let ctx = datafusion::prelude::SessionContext::new();
        ctx.register_udf(datafusion::logical_expr::ScalarUDF::new_from_impl(crate::engine::timezone::AtTimeZone::default()));
        // DuckDB 2.0: 07:35:20 (LA wall time of 14:35:20 UTC), and 21:35:20 UTC for LA's 14:35:20
        let sql = "select cast(cast(timestamp '2021-06-07 14:35:20' as timestamp) at time zone 'UTC' at time zone 'America/Los_Angeles' as timestamp) as a, \
                   timestamp '2021-06-07 14:35:20' at time zone 'America/Los_Angeles' as b";
        let batches = ctx.sql(&rewrite(sql)).await.unwrap().collect().await.unwrap();
        let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches).unwrap().to_string();
        assert!(text.contains("| 2021-06-07T07:35:20 | 2021-06-07T21:35:20Z |"), "{text}");
    }

    #[test]
    fn duplicate_output_names_are_renamed_as_duckdb_names_them() {
        // DuckDB 1.x: `with x as (select a, a, A, b, a_1 from t) select * from x` has columns a, a_1, a_2, b, a_1_1
        assert_eq!(
            rewrite("with x as (select a, t.a, A, b, a_1 from t) select * from x"),
            r#"WITH x AS (SELECT a, t.a AS "a_1", A AS "a_2", b, a_1 AS "a_1_1" FROM t) SELECT * FROM x"#
        );
        assert_eq!(rewrite("select x, y as x from a except select x, x from b"), r#"SELECT x, y AS "x_1" FROM a EXCEPT SELECT x, x AS "x_1" FROM b"#);
        for sql in ["select *, a, a from t", "select a, b from t", "select f(a, b), f(a, c) from t", "select 1, 1"] {
            assert_eq!(rewrite(sql), sql);
        }
    }

    #[tokio::test]
    async fn a_select_repeating_a_column_plans() {
        let ctx = datafusion::prelude::SessionContext::new();
        let sql = "with t as (select 1 as a, 2 as b), d as (select a, a, b from t except select a, a, b from t) select 'x' as w, d.* from d";
        let df = ctx.sql(&rewrite(sql)).await.unwrap();
        let names: Vec<String> = df.schema().fields().iter().map(|f| f.name().clone()).collect();
        assert_eq!(names, ["w", "a", "a_1", "b"]);
    }

    #[test]
    fn other_joins_and_unnamed_sides_are_left_alone() {
        for sql in [
            "select c from a left join b using (c)",
            "select c from a full join b on a.c = b.c",
            "select c from (select 1 as c) full join b using (c)",
            "select 'full' as using_it",
        ] {
            assert_eq!(rewrite(sql), sql);
        }
    }
}
