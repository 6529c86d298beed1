//! Writes that persist under `--allow-writes` (without it they are refused
//! by [`super::guard`]). Unqualified names go to the target's schema; a
//! relation is `<warehouse>/<schema>/<name>`, on local disk or S3, always
//! through the storage layer.
//!
//! - `CREATE [OR REPLACE] TABLE s.t AS query` (or with a column list and no
//!   query: an empty table) writes a Delta table in one overwrite commit,
//!   the `table` materialization's path. If `s.t` exists it is an error,
//!   unless `OR REPLACE` (a new Delta version; the history stays) or
//!   `IF NOT EXISTS` (nothing is done). A source's name is refused.
//! - `CREATE [OR REPLACE] VIEW s.v AS query` stores the query, with every
//!   table name qualified, as the view's `_dp_view.sql` (the file a `view`
//!   model writes). A view that reads a session-only (TEMP) relation is
//!   refused: other processes could not read it.
//! - `DROP TABLE|VIEW [IF EXISTS] s.t` removes the relation's folder
//!   (prefix); the kind must match (`DROP TABLE` of a view is an error).
//! - `INSERT INTO s.t ...` runs through DataFusion into deltalake's table
//!   provider: one append commit (`INSERT OVERWRITE`: one overwrite
//!   commit). Only Delta tables of the warehouse and session tables take
//!   rows; a source does not.
//! - `CREATE TEMP VIEW`, `CREATE TEMPORARY TABLE` and dropping them stay in
//!   the session (and are allowed without `--allow-writes`).
//! - `DELETE FROM s.t [WHERE ...]`, `UPDATE s.t SET c = expr [WHERE ...]`
//!   and `TRUNCATE s.t` on a Delta table: one commit by deltalake's delete
//!   and update operations (the WHERE clause and expressions are parsed by
//!   deltalake against the table's columns). `UPDATE ... FROM`, `DELETE
//!   ... USING`, `ORDER BY`/`LIMIT` and `RETURNING` are refused.
//! - `ALTER TABLE s.t ADD [COLUMN] [IF NOT EXISTS] c type [NULL | DEFAULT
//!   NULL], ...` on a Delta table: one commit of its metadata (deltalake's
//!   add-columns); the rows it has read NULL there. `NOT NULL`, another
//!   default and other `ALTER TABLE` operations are refused with a hint.
//! - `CREATE SCHEMA s` does nothing: a schema is the folder its first
//!   relation creates.
//!
//! A persisted write reports one line on stderr (`CREATE TABLE main.t (2
//! rows, Delta version 0)`), not with `--quiet`.

use datafusion::catalog::Session;
use datafusion::common::TableReference;
use datafusion::logical_expr::{DdlStatement, DmlStatement, LogicalPlan, WriteOp};
use datafusion::sql::sqlparser::ast::{AlterTable, CreateView, Ident, ObjectName, ObjectNamePart, Query, Statement, TableFactor, VisitMut, VisitorMut};
use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::sync::Arc;

use super::{Shell, ShellError};
use crate::project::nodes::{Node, ResourceType};
use crate::storage::RelKind;

/// A persisted view as written: its SQL and `IF NOT EXISTS`.
#[derive(Debug, Clone)]
pub struct ViewDef {
    pub sql: String,
    pub if_not_exists: bool,
}

/// The SQL a `CREATE VIEW` stores: the query with every bare table name
/// qualified by `default_schema` (CTE names excepted), a column list as
/// aliases. Reading a session-only relation (in `temp`) is an error.
pub fn view_def(v: &CreateView, default_schema: &str, temp: &BTreeSet<String>) -> Result<ViewDef, ShellError> {
    let mut query: Query = (*v.query).clone();
    let ctes = super::resolve::cte_names(&query);
    let mut q = Qualifier { schema: default_schema, ctes: &ctes, temp, used_temp: None };
    let _ = VisitMut::visit(&mut query, &mut q);
    if let Some(t) = q.used_temp {
        return Err(ShellError::Usage(format!(
            "view {}: it reads {t}, a temporary relation of this session that other sessions cannot see\n  hint: create {t} as a view or table (CREATE VIEW / CREATE TABLE), or make this view TEMP",
            v.name
        )));
    }
    let sql = if v.columns.is_empty() {
        query.to_string()
    } else {
        let cols: Vec<String> = v.columns.iter().map(|c| c.name.to_string()).collect();
        format!("SELECT * FROM ({query}) AS \"_dp_view\"({})", cols.join(", "))
    };
    Ok(ViewDef { sql, if_not_exists: v.if_not_exists })
}

struct Qualifier<'a> {
    schema: &'a str,
    ctes: &'a std::collections::HashSet<String>,
    temp: &'a BTreeSet<String>,
    used_temp: Option<String>,
}

impl VisitorMut for Qualifier<'_> {
    type Break = ();
    fn pre_visit_table_factor(&mut self, tf: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table { name, args: None, .. } = tf
            && let [ObjectNamePart::Identifier(i)] = name.0.as_slice()
        {
            let key = if i.quote_style.is_some() { i.value.clone() } else { i.value.to_lowercase() };
            if self.ctes.contains(&key) {
                return ControlFlow::Continue(());
            }
            if self.temp.contains(&key) {
                self.used_temp.get_or_insert(key);
                return ControlFlow::Continue(());
            }
            name.0.insert(0, ObjectNamePart::Identifier(Ident::with_quote('"', self.schema)));
        }
        ControlFlow::Continue(())
    }
}

/// What deltalake needs of an UPDATE or DELETE, as SQL text it parses
/// against the table's columns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowChange {
    pub predicate: Option<String>,
    /// `(column, expression)`; empty for DELETE.
    pub assignments: Vec<(String, String)>,
    /// A clause dp cannot run (`UPDATE ... FROM`, `DELETE ... USING`, ...).
    pub unsupported: Option<&'static str>,
}

/// The row change of an UPDATE, DELETE or TRUNCATE statement.
pub fn row_change(stmt: &Statement) -> Option<RowChange> {
    let text = |e: &Option<datafusion::sql::sqlparser::ast::Expr>| e.as_ref().map(|e| e.to_string());
    match stmt {
        Statement::Delete(d) => Some(RowChange {
            predicate: text(&d.selection),
            assignments: Vec::new(),
            unsupported: if d.using.is_some() {
                Some("DELETE ... USING")
            } else if d.limit.is_some() || !d.order_by.is_empty() {
                Some("DELETE ... ORDER BY/LIMIT")
            } else if d.returning.is_some() {
                Some("RETURNING")
            } else {
                None
            },
        }),
        Statement::Update(u) => Some(RowChange {
            predicate: text(&u.selection),
            assignments: u.assignments.iter().map(|a| (a.target.to_string(), a.value.to_string())).collect(),
            unsupported: if u.from.is_some() {
                Some("UPDATE ... FROM")
            } else if u.limit.is_some() || !u.order_by.is_empty() {
                Some("UPDATE ... ORDER BY/LIMIT")
            } else if u.returning.is_some() {
                Some("RETURNING")
            } else {
                None
            },
        }),
        Statement::Truncate(_) => Some(RowChange::default()),
        _ => None,
    }
}

/// Whether an `ObjectName` names one of the session's temporary relations.
pub fn is_temp(name: &ObjectName, temp: &BTreeSet<String>) -> bool {
    temp.contains(&name.to_string().to_lowercase())
}

/// Names may not leave their folder or hide themselves.
fn check_name(kind: &str, name: &str) -> Result<(), ShellError> {
    let bad = name.is_empty() || name.starts_with('.') || name.contains(['/', '\\', '\0']) || (kind == "schema" && name.starts_with('_'));
    if bad {
        return Err(ShellError::Usage(format!(
            "'{name}' cannot be a {kind} name in the warehouse (it names a folder)\n  hint: use letters, digits and '_' (a schema may not start with '_' or '.')"
        )));
    }
    Ok(())
}

fn kind_name(k: RelKind) -> &'static str {
    match k {
        RelKind::Table => "table",
        RelKind::View => "view",
    }
}

impl Shell {
    /// `(schema, name)` of a relation a statement writes.
    fn target(&self, r: &TableReference) -> Result<(String, String), ShellError> {
        if let Some(c) = r.catalog()
            && c != crate::engine::CATALOG
        {
            return Err(ShellError::Usage(format!(
                "{r}: catalog '{c}' is not the warehouse\n  hint: write schema.name (the warehouse catalog is '{}')",
                crate::engine::CATALOG
            )));
        }
        let schema = r.schema().unwrap_or(&self.default_schema).to_string();
        let table = r.table().to_string();
        check_name("schema", &schema)?;
        check_name("table", &table)?;
        Ok((schema, table))
    }

    async fn kind_of(&self, schema: &str, table: &str) -> Result<Option<RelKind>, ShellError> {
        self.engine.warehouse.kind(schema, table).await.map_err(|e| ShellError::Other(e.to_string()))
    }

    fn is_source(&self, schema: &str, table: &str) -> bool {
        self.engine.catalog.schema_provider(schema).sources.lock().unwrap().contains_key(table)
    }

    /// Persists a planned write (see the module docs). `Ok(None)`: not a
    /// persisted write, DataFusion runs the plan. `Ok(Some(line))`: done.
    pub(super) async fn persist(&mut self, plan: &LogicalPlan, view: Option<&ViewDef>, rows: Option<&RowChange>) -> Result<Option<String>, ShellError> {
        match plan {
            LogicalPlan::Ddl(DdlStatement::CreateMemoryTable(c)) => {
                let (s, t) = self.target(&c.name)?;
                if !c.constraints.is_empty() || !c.column_defaults.is_empty() {
                    return Err(ShellError::Usage(format!(
                        "CREATE TABLE {s}.{t}: constraints and column defaults are not kept by Delta tables\n  hint: remove them from the statement"
                    )));
                }
                if self.is_source(&s, &t) {
                    return Err(ShellError::Usage(format!(
                        "CREATE TABLE {s}.{t}: {s}.{t} is a source (files declared in the project's YAML)\n  hint: choose another name"
                    )));
                }
                if let Some(k) = self.kind_of(&s, &t).await? {
                    if c.if_not_exists {
                        return Ok(Some(format!("CREATE TABLE {s}.{t}: a {} of that name exists, nothing done", kind_name(k))));
                    }
                    if !c.or_replace {
                        return Err(exists(&s, &t, k, "TABLE"));
                    }
                }
                let loc = self.engine.warehouse.table(&s, &t);
                let node = Node::new(ResourceType::Model, &self.project.settings.project_name, &t, "<dp sql>");
                let m = crate::materialize::delta::overwrite(&self.engine, &loc, (*c.input).clone(), &node)
                    .await
                    .map_err(|e| ShellError::Other(format!("CREATE TABLE {s}.{t}: {e:#}")))?;
                self.engine.catalog.invalidate(&s, &t);
                let rows = m.rows.map(|n| format!("{n} row{}, ", if n == 1 { "" } else { "s" })).unwrap_or_default();
                let version = m.version.map(|v| format!("Delta version {v}")).unwrap_or_default();
                Ok(Some(format!("{} {s}.{t} ({rows}{version})", m.message)))
            }
            LogicalPlan::Ddl(DdlStatement::CreateView(v)) => {
                let Some(def) = view else { return Ok(None) };
                let (s, t) = self.target(&v.name)?;
                if self.is_source(&s, &t) {
                    return Err(ShellError::Usage(format!(
                        "CREATE VIEW {s}.{t}: {s}.{t} is a source (files declared in the project's YAML)\n  hint: choose another name"
                    )));
                }
                let existing = self.kind_of(&s, &t).await?;
                if let Some(k) = existing {
                    if def.if_not_exists {
                        return Ok(Some(format!("CREATE VIEW {s}.{t}: a {} of that name exists, nothing done", kind_name(k))));
                    }
                    if !v.or_replace {
                        return Err(exists(&s, &t, k, "VIEW"));
                    }
                }
                let loc = self.engine.warehouse.table(&s, &t);
                crate::materialize::delta::write_view(&self.engine, &loc, &def.sql)
                    .await
                    .map_err(|e| ShellError::Other(format!("CREATE VIEW {s}.{t}: {e:#}")))?;
                self.engine.catalog.invalidate(&s, &t);
                let verb = if existing.is_some() { "REPLACE VIEW" } else { "CREATE VIEW" };
                Ok(Some(format!("{verb} {s}.{t}")))
            }
            LogicalPlan::Ddl(DdlStatement::DropTable(d)) => self.drop(&d.name, d.if_exists, RelKind::Table).await.map(Some),
            LogicalPlan::Ddl(DdlStatement::DropView(d)) => self.drop(&d.name, d.if_exists, RelKind::View).await.map(Some),
            LogicalPlan::Dml(DmlStatement { table_name, op: WriteOp::Insert(_), .. }) => {
                let (s, t) = self.target(table_name)?;
                if self.kind_of(&s, &t).await?.is_none() && self.is_source(&s, &t) {
                    return Err(ShellError::Usage(format!(
                        "INSERT INTO {s}.{t}: {s}.{t} is a source (files declared in the project's YAML); dp sql writes only warehouse tables\n  hint: CREATE TABLE {s}.copy AS SELECT * FROM {s}.{t}, then insert into that"
                    )));
                }
                Ok(None)
            }
            LogicalPlan::Ddl(DdlStatement::CreateCatalogSchema(c)) => {
                check_name("schema", &c.schema_name)?;
                Ok(Some(format!("CREATE SCHEMA {}: nothing to do (a schema is the folder its first table or view creates)", c.schema_name)))
            }
            LogicalPlan::Dml(DmlStatement { table_name, op: op @ (WriteOp::Update | WriteOp::Delete | WriteOp::Truncate), .. }) => {
                let (s, t) = self.target(table_name)?;
                let verb = op.name().to_uppercase();
                let is_table = self.kind_of(&s, &t).await? == Some(RelKind::Table);
                let Some(change) = rows.filter(|_| is_table) else {
                    // Temporary tables, sources and views: DataFusion says what it supports.
                    return Ok(None);
                };
                if let Some(what) = &change.unsupported {
                    return Err(ShellError::Usage(format!(
                        "{verb} {s}.{t}: {what} is not supported on warehouse tables\n  hint: CREATE OR REPLACE TABLE {s}.{t} AS SELECT ... with the rows you want (one commit; the old version stays in \\history)"
                    )));
                }
                self.change_rows(&s, &t, &verb, change).await.map(Some)
            }
            _ => Ok(None),
        }
    }

    /// DELETE / UPDATE / TRUNCATE of a Delta table: one commit by deltalake
    /// (files without matching rows are kept as they are).
    async fn change_rows(&mut self, s: &str, t: &str, verb: &str, change: &RowChange) -> Result<String, ShellError> {
        let loc = self.engine.warehouse.table(s, t);
        let table = deltalake::open_table(loc.url.clone())
            .await
            .map_err(|e| ShellError::Other(format!("{verb} {s}.{t}: could not open its Delta log at {loc}: {e}")))?;
        let state: Arc<dyn Session> = Arc::new(self.engine.ctx.state());
        let failed = |e| ShellError::Other(format!("{verb} {s}.{t}: {:#}", crate::materialize::delta::write_error(&loc, e)));
        let (table, n) = if change.assignments.is_empty() {
            let mut b = table.delete().with_session_state(state);
            if let Some(p) = &change.predicate {
                b = b.with_predicate(p.as_str());
            }
            let (table, m) = b.await.map_err(failed)?;
            (table, m.num_deleted_rows)
        } else {
            let mut b = table.update().with_session_state(state);
            if let Some(p) = &change.predicate {
                b = b.with_predicate(p.as_str());
            }
            for (column, value) in &change.assignments {
                b = b.with_update(column.as_str(), value.as_str());
            }
            let (table, m) = b.await.map_err(failed)?;
            (table, Some(m.num_updated_rows))
        };
        self.engine.catalog.invalidate(s, t);
        let rows = n.map(|n| format!("{n} row{}, ", if n == 1 { "" } else { "s" })).unwrap_or_default();
        let version = table.version().map(|v| format!("Delta version {v}")).unwrap_or_default();
        Ok(format!("{verb} {s}.{t} ({rows}{version})"))
    }

    /// `ALTER TABLE ... ADD COLUMN ...` (see the module docs).
    pub(super) async fn alter_table(&mut self, alter: &AlterTable) -> Result<String, ShellError> {
        use datafusion::sql::sqlparser::ast::{AlterTableOperation, ColumnOption, Expr, Value};
        use deltalake::kernel::engine::arrow_conversion::TryIntoKernel as _;
        let name = TableReference::from(alter.name.to_string().as_str());
        let (s, t) = self.target(&name)?;
        let usage = |what: String| ShellError::Usage(format!("ALTER TABLE {s}.{t}: {what}"));
        match self.kind_of(&s, &t).await? {
            Some(RelKind::Table) => {}
            Some(RelKind::View) => return Err(usage("is a view\n  hint: CREATE OR REPLACE VIEW with the new columns".into())),
            None if alter.if_exists => return Ok(format!("ALTER TABLE {s}.{t}: no such table, nothing to do")),
            None => return Err(usage("no such table in the warehouse".into())),
        }
        let loc = self.engine.warehouse.table(&s, &t);
        let table = deltalake::open_table(loc.url.clone())
            .await
            .map_err(|e| ShellError::Other(format!("ALTER TABLE {s}.{t}: could not open its Delta log at {loc}: {e}")))?;
        let existing = table.snapshot().map_err(|e| ShellError::Other(e.to_string()))?.snapshot().arrow_schema();
        let mut fields = vec![];
        let mut added = vec![];
        for op in &alter.operations {
            let AlterTableOperation::AddColumn { if_not_exists, column_def, column_position, .. } = op else {
                return Err(usage(format!(
                    "'{op}' is not supported\n  hint: only ADD COLUMN is; for other changes, CREATE OR REPLACE TABLE {s}.{t} AS SELECT ..."
                )));
            };
            if column_position.is_some() {
                return Err(usage("a column goes after the others (FIRST / AFTER are not supported)".into()));
            }
            let column = column_def.name.value.clone();
            for o in &column_def.options {
                match &o.option {
                    ColumnOption::Null => {}
                    ColumnOption::Default(Expr::Value(v)) if matches!(v.value, Value::Null) => {}
                    other => {
                        return Err(usage(format!(
                            "column {column}: '{other}' is not supported\n  hint: a new column is NULL in the existing rows; fill it with UPDATE {s}.{t} SET {column} = ..."
                        )));
                    }
                }
            }
            if existing.field_with_name(&column).is_ok() {
                if *if_not_exists {
                    continue;
                }
                return Err(usage(format!("column {column} already exists\n  hint: ADD COLUMN IF NOT EXISTS leaves it as it is")));
            }
            // The type as DataFusion reads it, stored as Delta stores it.
            let sql = format!("SELECT CAST(NULL AS {}) AS {}", column_def.data_type, crate::util::ident::quote_ident(&column));
            let plan =
                self.engine.ctx.sql(&sql).await.map_err(|e| usage(format!("column {column}: type {}: {e}", column_def.data_type)))?.into_unoptimized_plan();
            let plan = crate::materialize::delta::delta_compatible(&self.engine, plan).map_err(|e| ShellError::Other(e.to_string()))?;
            let field = plan.schema().field(0).as_ref().clone().with_nullable(true);
            let field: deltalake::kernel::StructField = (&field).try_into_kernel().map_err(|e| usage(format!("column {column}: {e}")))?;
            fields.push(field);
            added.push(column);
        }
        if fields.is_empty() {
            return Ok(format!("ALTER TABLE {s}.{t}: nothing to do"));
        }
        let table = table
            .add_columns()
            .with_fields(fields)
            .await
            .map_err(|e| ShellError::Other(format!("ALTER TABLE {s}.{t}: {:#}", crate::materialize::delta::write_error(&loc, e))))?;
        self.engine.catalog.invalidate(&s, &t);
        let version = table.version().map(|v| format!(", Delta version {v}")).unwrap_or_default();
        Ok(format!("ALTER TABLE {s}.{t} (added {}{version})", added.join(", ")))
    }

    async fn drop(&mut self, name: &TableReference, if_exists: bool, want: RelKind) -> Result<String, ShellError> {
        let (s, t) = self.target(name)?;
        let what = if want == RelKind::Table { "DROP TABLE" } else { "DROP VIEW" };
        match self.kind_of(&s, &t).await? {
            Some(k) if k == want => {
                let loc = self.engine.warehouse.table(&s, &t);
                self.engine.warehouse.drop_relation(&loc).await.map_err(|e| ShellError::Other(format!("{what} {s}.{t}: {e}")))?;
                self.engine.catalog.invalidate(&s, &t);
                Ok(format!("{what} {s}.{t}"))
            }
            Some(k) => Err(ShellError::Usage(format!("{what} {s}.{t}: {s}.{t} is a {}\n  hint: DROP {} {s}.{t}", kind_name(k), kind_name(k).to_uppercase()))),
            None if self.is_source(&s, &t) => Err(ShellError::Usage(format!(
                "{what} {s}.{t}: {s}.{t} is a source (files declared in the project's YAML), not a warehouse relation\n  hint: remove it from the YAML to stop reading it"
            ))),
            None if if_exists => Ok(format!("{what} {s}.{t}: it does not exist, nothing done")),
            None => Err(ShellError::UnknownTable { name: format!("{s}.{t}"), suggestions: self.names().close_names(&format!("{s}.{t}")) }),
        }
    }
}

fn exists(s: &str, t: &str, k: RelKind, creating: &str) -> ShellError {
    ShellError::Usage(format!(
        "CREATE {creating} {s}.{t}: a {} of that name already exists\n  hint: CREATE OR REPLACE {creating} {s}.{t} replaces it; DROP {} {s}.{t} removes it",
        kind_name(k),
        kind_name(k).to_uppercase()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::parser::{DFParser, Statement as DFStatement};
    use datafusion::sql::sqlparser::ast::Statement;

    fn def(sql: &str) -> Result<String, String> {
        let mut s = DFParser::parse_sql(sql).unwrap();
        let DFStatement::Statement(s) = s.pop_front().unwrap() else { panic!("not SQL") };
        let Statement::CreateView(v) = *s else { panic!("not a view") };
        view_def(&v, "main", &["tv".to_string()].into_iter().collect()).map(|d| d.sql).map_err(|e| e.to_string())
    }

    #[test]
    fn stored_views_qualify_names() {
        assert_eq!(
            def("create view v as with c as (select id from base) select * from c join marts.f using (id)").unwrap(),
            "WITH c AS (SELECT id FROM \"main\".base) SELECT * FROM c JOIN marts.f USING(id)"
        );
        assert_eq!(def("create view v (a) as select 1").unwrap(), "SELECT * FROM (SELECT 1) AS \"_dp_view\"(a)");
        let e = def("create view v as select * from tv").unwrap_err();
        assert!(e.starts_with("view v: it reads tv, a temporary relation of this session"), "{e}");
    }

    fn change(sql: &str) -> RowChange {
        let mut s = DFParser::parse_sql(sql).unwrap();
        let DFStatement::Statement(s) = s.pop_front().unwrap() else { panic!("not SQL") };
        row_change(&s).unwrap()
    }

    #[test]
    fn row_changes_for_deltalake() {
        assert_eq!(change("delete from t where a = 1"), RowChange { predicate: Some("a = 1".into()), ..Default::default() });
        assert_eq!(
            change("update t set a = a + 1, b = 'x' where c > 2"),
            RowChange { predicate: Some("c > 2".into()), assignments: vec![("a".into(), "a + 1".into()), ("b".into(), "'x'".into())], unsupported: None }
        );
        assert_eq!(change("truncate table t"), RowChange::default());
        assert_eq!(change("delete from t using u where t.a = u.a").unsupported, Some("DELETE ... USING"));
    }

    #[test]
    fn names_stay_in_their_folder() {
        assert!(check_name("table", "t_1").is_ok());
        for bad in ["", "../x", "a/b", ".hidden"] {
            assert!(check_name("table", bad).is_err(), "{bad}");
        }
        assert!(check_name("schema", "_dp").is_err());
    }
}
