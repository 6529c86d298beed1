//! DuckDB's case-insensitive column names, where DataFusion matches a
//! quoted name exactly.
//!
//! DuckDB, and so every dbt-duckdb project, resolves `"ID"`, `id` and `Id`
//! to the same column, and names the output column as the relation spells
//! it. Projects lean on it: audit_helper compares `a."ID"` in a relation
//! whose column is `id`, and tests a seed whose header is `COLUMN_NAME` with
//! `select "column_name"`. DataFusion folds unquoted names to lower case and
//! then matches exactly, so both fail to plan.
//!
//! [`plan`] plans a statement as [`super::Engine::sql`] does. When planning
//! fails because a column is not found, and exactly one column name of the
//! scope the planner searched differs from it in case only, the references
//! to it in the `SELECT`s over that scope (the ones whose `FROM` names every
//! relation of the scope) are spelled as the column is, and the statement is
//! planned again, up to [`MAX_FIXES`] times. Output names follow the
//! relation's spelling, as in DuckDB. A statement that plans the first time
//! costs nothing more; one that cannot be fixed this way reports the
//! planner's first error.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use datafusion::common::SchemaError;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::sqlparser::ast::{Expr, GroupByExpr, Ident, Select, SelectItem, Statement, VisitMut, VisitorMut, visit_expressions_mut};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;

use super::rewrite;

/// How many column references one statement may have respelled.
pub const MAX_FIXES: usize = 64;

/// `sql` planned with the rewrites of [`rewrite::rewrite`], its column names
/// matched without regard to case where an exact match fails (module docs).
pub async fn plan(state: &SessionState, sql: &str) -> Result<LogicalPlan> {
    let sql = rewrite::rewrite(sql);
    let first = match state.create_logical_plan(&sql).await {
        Ok(plan) => return Ok(plan),
        Err(e) => e,
    };
    let Some(mut fix) = Respell::for_error(&first) else { return Err(first) };
    let Ok(mut statements) = Parser::parse_sql(&GenericDialect {}, &sql) else { return Err(first) };
    for _ in 0..MAX_FIXES {
        if !fix.apply(&mut statements) {
            return Err(first);
        }
        let text = statements.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(";\n");
        match state.create_logical_plan(&text).await {
            Ok(plan) => return Ok(plan),
            Err(e) => match Respell::for_error(&e) {
                Some(next) => fix = next,
                // the case is fixed; what fails now is another mistake
                None => return Err(e),
            },
        }
    }
    Err(first)
}

/// One column reference to spell as its relation does.
#[derive(Debug, Clone, PartialEq)]
struct Respell {
    /// The name as the planner looked it up (unquoted names folded).
    written: String,
    /// The qualifier the reference was written with, if any.
    qualifier: Option<String>,
    /// The column's own spelling.
    column: String,
    /// The relations of the scope the planner searched (lower case).
    scope: BTreeSet<String>,
}

impl Respell {
    /// The respelling a "no field named" error calls for, when exactly one
    /// column of the searched scope matches without regard to case.
    fn for_error(err: &DataFusionError) -> Option<Respell> {
        let DataFusionError::SchemaError(e, _) = err.find_root() else { return None };
        let SchemaError::FieldNotFound { field, valid_fields } = e.as_ref() else { return None };
        let qualifier = field.relation.as_ref().map(|r| r.table().to_string());
        let names: BTreeSet<&str> = valid_fields
            .iter()
            .filter(|c| c.name.eq_ignore_ascii_case(&field.name) && c.name != field.name)
            .filter(|c| match (&qualifier, &c.relation) {
                (Some(q), Some(r)) => r.table().eq_ignore_ascii_case(q),
                (Some(_), None) => false,
                (None, _) => true,
            })
            .map(|c| c.name.as_str())
            .collect();
        let [column] = names.into_iter().collect::<Vec<_>>()[..] else { return None };
        let scope = valid_fields.iter().filter_map(|c| c.relation.as_ref()).map(|r| r.table().to_ascii_lowercase()).collect();
        Some(Respell { written: field.name.clone(), qualifier, column: column.to_string(), scope })
    }

    /// Respells the matching references; false when none was found.
    fn apply(&self, statements: &mut Vec<Statement>) -> bool {
        let mut v = Visitor { fix: self, changed: false };
        let _ = statements.visit(&mut v);
        v.changed
    }

    fn matches(&self, expr: &Expr) -> bool {
        match (expr, &self.qualifier) {
            (Expr::Identifier(id), None) => folded(id) == self.written,
            (Expr::CompoundIdentifier(parts), Some(q)) => match parts.as_slice() {
                [.., table, col] => folded(col) == self.written && folded(table).eq_ignore_ascii_case(q),
                _ => false,
            },
            _ => false,
        }
    }

    /// Whether `select`'s FROM names every relation of the searched scope.
    fn in_scope(&self, select: &Select) -> bool {
        let named: BTreeSet<String> = select
            .from
            .iter()
            .flat_map(|t| std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)))
            .filter_map(rewrite::qualifier)
            .map(|i| folded(&i).to_ascii_lowercase())
            .collect();
        !self.scope.is_empty() && self.scope.is_subset(&named)
    }
}

/// A name as the planner reads it: unquoted names fold to lower case.
fn folded(id: &Ident) -> String {
    if id.quote_style.is_some() { id.value.clone() } else { id.value.to_lowercase() }
}

struct Visitor<'a> {
    fix: &'a Respell,
    changed: bool,
}

impl VisitorMut for Visitor<'_> {
    type Break = ();

    fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
        if !self.fix.in_scope(select) {
            return ControlFlow::Continue(());
        }
        let fix = self.fix;
        let mut changed = false;
        let mut respell = |e: &mut Expr| {
            if fix.matches(e) {
                let id = Ident::with_quote('"', fix.column.clone());
                match e {
                    Expr::CompoundIdentifier(parts) => *parts.last_mut().expect("matched two parts") = id,
                    _ => *e = Expr::Identifier(id),
                }
                changed = true;
            }
            ControlFlow::<()>::Continue(())
        };
        for item in &mut select.projection {
            if let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } = item {
                let _ = visit_expressions_mut(e, &mut respell);
            }
        }
        if let Some(e) = &mut select.selection {
            let _ = visit_expressions_mut(e, &mut respell);
        }
        if let GroupByExpr::Expressions(exprs, _) = &mut select.group_by {
            for e in exprs {
                let _ = visit_expressions_mut(e, &mut respell);
            }
        }
        if let Some(e) = &mut select.having {
            let _ = visit_expressions_mut(e, &mut respell);
        }
        self.changed |= changed;
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::SessionContext;

    use super::*;

    async fn ctx() -> SessionContext {
        let ctx = SessionContext::new();
        ctx.sql("create table lower_t as select 1 as id, 'x' as col1").await.unwrap();
        ctx.sql(r#"create table upper_t as select 'x' as "COLUMN_NAME", 2 as "A_POS""#).await.unwrap();
        ctx
    }

    async fn rows(ctx: &SessionContext, sql: &str) -> Result<String> {
        let plan = plan(&ctx.state(), sql).await?;
        let batches = datafusion::dataframe::DataFrame::new(ctx.state(), plan).collect().await?;
        Ok(datafusion::arrow::util::pretty::pretty_format_batches(&batches)?.to_string())
    }

    #[tokio::test]
    async fn quoted_names_match_columns_of_another_case() {
        let ctx = ctx().await;
        let out = rows(&ctx, r#"select a."ID", a."COL1" from lower_t a where a."Id" = 1"#).await.unwrap();
        assert_eq!(out, "+----+------+\n| id | col1 |\n+----+------+\n| 1  | x    |\n+----+------+");
    }

    #[tokio::test]
    async fn only_the_failing_scope_is_respelled() {
        let ctx = ctx().await;
        let sql = r#"with a as (select 'x' as column_name, 2 as a_pos), b as (select * from upper_t)
            select "column_name", "a_pos" from a except select "column_name", "a_pos" from b"#;
        assert_eq!(rows(&ctx, sql).await.unwrap(), "++\n++");
        let sql = "select column_name, a_pos from upper_t group by column_name, a_pos having a_pos > 1";
        assert_eq!(
            rows(&ctx, sql).await.unwrap(),
            "+-------------+-------+\n| COLUMN_NAME | A_POS |\n+-------------+-------+\n| x           | 2     |\n+-------------+-------+"
        );
    }

    #[tokio::test]
    async fn other_errors_and_ambiguity_are_reported_as_they_are() {
        let ctx = ctx().await;
        let e = rows(&ctx, r#"select "xx" from lower_t"#).await.unwrap_err().to_string();
        assert!(e.contains("No field named xx"), "{e}");
        // two columns differ from "Ab" in case only: DuckDB refuses it too
        ctx.sql(r#"create table two_t as select 1 as "ab", 2 as "AB""#).await.unwrap();
        let e = rows(&ctx, r#"select "Ab" from two_t"#).await.unwrap_err().to_string();
        assert!(e.contains(r#"No field named "Ab""#), "{e}");
        // once the case is fixed, the next mistake is the one reported
        let e = rows(&ctx, r#"select "ID", nope from lower_t"#).await.unwrap_err().to_string();
        assert!(e.contains("No field named nope"), "{e}");
    }
}
