//! Read-only by default: which statements may run without `--allow-writes`,
//! decided on the parsed statement (never on the text). Session-only
//! relations (`CREATE TEMP VIEW`, `CREATE TEMPORARY TABLE`, dropping them)
//! do not write the warehouse; [`super::write`] says what the others do.

use datafusion::sql::parser::{CopyToSource, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::{ObjectType, Statement};
use std::collections::BTreeSet;
use std::path::Path;

/// Why a statement is refused in read-only mode, or `None` if it may run.
/// `temp_views` are the session's temporary views (which may be dropped);
/// `warehouse` is a local folder or a URL such as `s3://bucket/warehouse`.
pub fn refusal(stmt: &DFStatement, warehouse: &str, temp_views: &BTreeSet<String>) -> Option<String> {
    match stmt {
        DFStatement::Statement(s) => refusal_sql(s, temp_views),
        // Session-only: registers files as a table of this session.
        DFStatement::CreateExternalTable(_) | DFStatement::Reset(_) => None,
        DFStatement::CopyTo(c) => {
            let target = Path::new(&c.target);
            let abs = if target.is_absolute() {
                target.to_path_buf()
            } else {
                std::env::current_dir().map(|d| d.join(target)).unwrap_or_else(|_| target.to_path_buf())
            };
            let abs = crate::config::normalize_path(&abs);
            let inside = if c.target.contains("://") {
                warehouse.contains("://") && format!("{}/", c.target.trim_end_matches('/')).starts_with(&format!("{}/", warehouse.trim_end_matches('/')))
            } else {
                !warehouse.contains("://") && abs.starts_with(warehouse)
            };
            if inside {
                Some(format!("COPY TO '{}' would write inside the warehouse ({warehouse})", c.target))
            } else {
                match &c.source {
                    CopyToSource::Relation(_) | CopyToSource::Query(_) => None,
                }
            }
        }
        DFStatement::Explain(e) if e.options.analyze => refusal(&e.statement, warehouse, temp_views),
        DFStatement::Explain(_) => None,
    }
}

fn refusal_sql(s: &Statement, temp_views: &BTreeSet<String>) -> Option<String> {
    let what = match s {
        Statement::Query(_)
        | Statement::Set(_)
        | Statement::ShowFunctions { .. }
        | Statement::ShowVariable { .. }
        | Statement::ShowVariables { .. }
        | Statement::ShowStatus { .. }
        | Statement::ShowCreate { .. }
        | Statement::ShowColumns { .. }
        | Statement::ShowTables { .. }
        | Statement::ShowViews { .. }
        | Statement::ShowSchemas { .. }
        | Statement::ShowDatabases { .. }
        | Statement::ShowCatalogs { .. }
        | Statement::ShowObjects(_)
        | Statement::ExplainTable { .. }
        | Statement::Prepare { .. }
        | Statement::Execute { .. }
        | Statement::Deallocate { .. }
        | Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. }
        | Statement::Reset(_) => return None,
        Statement::Explain { analyze, statement, .. } => return if *analyze { refusal_sql(statement, temp_views) } else { None },
        Statement::CreateView(v) if v.temporary && !v.materialized => return None,
        Statement::CreateTable(t) if t.temporary => return None,
        Statement::Drop { object_type: ObjectType::View | ObjectType::Table, names, .. }
            if names.iter().all(|n| temp_views.contains(&n.to_string().to_lowercase())) =>
        {
            return None;
        }
        Statement::Insert(_) => "INSERT",
        Statement::Update(_) => "UPDATE",
        Statement::Delete(_) => "DELETE",
        Statement::Merge(_) => "MERGE",
        Statement::Truncate(_) => "TRUNCATE",
        Statement::Copy { .. } | Statement::CopyIntoSnowflake { .. } => "COPY",
        Statement::CreateTable(_) => "CREATE TABLE",
        Statement::CreateView(_) => "CREATE VIEW (not TEMP)",
        Statement::CreateSchema { .. } | Statement::CreateDatabase { .. } => "CREATE SCHEMA",
        Statement::Drop { object_type, .. } => return Some(format!("DROP {object_type}")),
        Statement::AlterTable(_) | Statement::AlterView { .. } | Statement::AlterSchema(_) => "ALTER",
        other => {
            let text = other.to_string();
            let head: Vec<&str> = text.split_whitespace().take(2).collect();
            return Some(head.join(" ").to_uppercase());
        }
    };
    Some(what.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::parser::DFParser;

    fn check(sql: &str) -> Option<String> {
        let mut s = DFParser::parse_sql(sql).unwrap();
        refusal(&s.pop_front().unwrap(), "/wh", &["v".to_string()].into_iter().collect())
    }

    #[test]
    fn reads_pass_writes_are_refused() {
        for ok in [
            "select 1",
            "with a as (select 1) select * from a",
            "explain select 1",
            "describe t",
            "show tables",
            "set datafusion.execution.batch_size = 10",
            "create temp view v2 as select 1",
            "create temporary view v2 as select 1",
            "create temporary table t2 as select 1",
            "drop view v",
            "drop table v",
            "copy (select 1) to '/tmp/x.parquet'",
            "copy t to 'out.csv'",
        ] {
            assert_eq!(check(ok), None, "{ok}");
        }
        for (bad, what) in [
            ("insert into t values (1)", "INSERT"),
            ("update t set a = 1", "UPDATE"),
            ("delete from t", "DELETE"),
            ("create table t as select 1", "CREATE TABLE"),
            ("create view w as select 1", "CREATE VIEW (not TEMP)"),
            ("drop table t", "DROP TABLE"),
            ("drop view w", "DROP VIEW"),
            ("truncate table t", "TRUNCATE"),
            ("explain analyze insert into t values (1)", "INSERT"),
        ] {
            assert_eq!(check(bad).as_deref(), Some(what), "{bad}");
        }
        assert!(check("copy (select 1) to '/wh/marts/x/part.parquet'").unwrap().contains("inside the warehouse"));
    }
}
