//! `run_query` / `{% call statement %}` DDL that lands in the warehouse, as
//! dbt-duckdb's would land in the database file: an operation such as
//! dbt-codegen's `create_source_table` (`dp run-operation`) creates tables
//! that later commands read.
//!
//! [`WarehouseDb`] is the [`Database`] Jinja sees: reads go to the engine
//! ([`EngineDb`]); these statements persist instead of staying in the
//! command's DataFusion session:
//! - `CREATE [OR REPLACE] TABLE s.t [IF NOT EXISTS] AS query`: a Delta table
//!   in one overwrite commit (the `table` materialization's write);
//! - `DROP TABLE|VIEW [IF EXISTS] s.t`: the relation's folder is removed.
//!
//! An unqualified name is the target's schema; `CREATE TEMP TABLE`, other
//! statements and relations of the session alone run in the session as
//! before.

use datafusion::sql::sqlparser::ast::{CreateTable, ObjectName, ObjectType, Statement};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use std::sync::Arc;

use crate::engine::Engine;
use crate::engine::introspect::EngineDb;
use crate::jinja::{ColumnInfo, Database, QueryResult};
use crate::project::nodes::{Node, ResourceType};
use crate::storage::RelKind;

/// The warehouse as Jinja writes to it (see the module docs).
pub struct WarehouseDb {
    inner: EngineDb,
    engine: Arc<Engine>,
    project: String,
    schema: String,
    database: String,
}

impl WarehouseDb {
    /// `None` outside a tokio runtime (as [`EngineDb::new`]).
    pub fn new(engine: Arc<Engine>, project: &crate::project::load::Project) -> Option<WarehouseDb> {
        let target = &project.settings.target;
        Some(WarehouseDb {
            inner: EngineDb::new(engine.clone())?,
            engine,
            project: project.settings.project_name.clone(),
            schema: target.schema.clone(),
            database: target.database.clone(),
        })
    }

    /// (schema, name) of a relation the statement names; its database part,
    /// when given, must be the warehouse's.
    fn target(&self, name: &ObjectName) -> Result<(String, String), String> {
        let parts: Vec<String> = name.0.iter().map(|p| p.as_ident().map(|i| i.value.clone()).unwrap_or_else(|| p.to_string())).collect();
        match parts.as_slice() {
            [t] => Ok((self.schema.clone(), t.clone())),
            [s, t] => Ok((s.clone(), t.clone())),
            [d, s, t] if d.eq_ignore_ascii_case(crate::engine::CATALOG) || d.eq_ignore_ascii_case(&self.database) => Ok((s.clone(), t.clone())),
            _ => Err(format!("{name}: not a relation of the warehouse\n  hint: name it schema.name or {}.schema.name (the target's database)", self.database)),
        }
    }

    async fn kind(&self, s: &str, t: &str) -> Result<Option<RelKind>, String> {
        self.engine.warehouse.kind(s, t).await.map_err(|e| e.to_string())
    }

    async fn create_table_as(&self, c: &CreateTable) -> Result<Option<QueryResult>, String> {
        let Some(query) = &c.query else { return Ok(None) };
        let (s, t) = self.target(&c.name)?;
        if self.kind(&s, &t).await?.is_some() {
            if c.if_not_exists {
                return Ok(Some(empty()));
            }
            if !c.or_replace {
                return Err(format!("CREATE TABLE {s}.{t}: a relation of that name already exists\n  hint: CREATE OR REPLACE TABLE replaces it"));
            }
        }
        let plan = self.engine.sql(&query.to_string()).await.map_err(|e| format!("CREATE TABLE {s}.{t}: {e}"))?.into_unoptimized_plan();
        let loc = self.engine.warehouse.table(&s, &t);
        let node = Node::new(ResourceType::Model, &self.project, &t, "<run_query>");
        let m = super::delta::overwrite(&self.engine, &loc, plan, &node).await.map_err(|e| format!("CREATE TABLE {s}.{t}: {e:#}"))?;
        self.engine.catalog.invalidate(&s, &t);
        Ok(Some(QueryResult { columns: vec![], rows: vec![], rows_affected: m.rows }))
    }

    async fn drop(&self, names: &[ObjectName], want: RelKind) -> Result<Option<QueryResult>, String> {
        let mut found = vec![];
        for n in names {
            let (s, t) = self.target(n)?;
            match self.kind(&s, &t).await? {
                Some(k) if k == want => found.push((s, t)),
                Some(_) => return Err(format!("DROP {}: {s}.{t} is not a {}", kind_word(want), kind_word(want).to_lowercase())),
                // a relation of this session alone (or none): the session decides
                None => return Ok(None),
            }
        }
        for (s, t) in found {
            let loc = self.engine.warehouse.table(&s, &t);
            self.engine.warehouse.drop_relation(&loc).await.map_err(|e| format!("DROP {} {s}.{t}: {e}", kind_word(want)))?;
            self.engine.catalog.invalidate(&s, &t);
        }
        Ok(Some(empty()))
    }

    /// The statement persisted, or `None` when it is not one of ours.
    fn persist(&self, sql: &str) -> Result<Option<QueryResult>, String> {
        let Ok(mut statements) = Parser::parse_sql(&GenericDialect {}, sql) else { return Ok(None) };
        if statements.len() != 1 {
            return Ok(None);
        }
        let statement = statements.remove(0);
        self.inner.block(async {
            match &statement {
                Statement::CreateTable(c) if !c.temporary && !c.external => self.create_table_as(c).await,
                Statement::Drop { object_type: ObjectType::Table, names, temporary: false, .. } => self.drop(names, RelKind::Table).await,
                Statement::Drop { object_type: ObjectType::View, names, temporary: false, .. } => self.drop(names, RelKind::View).await,
                _ => Ok(None),
            }
        })
    }
}

fn empty() -> QueryResult {
    QueryResult { columns: vec![], rows: vec![], rows_affected: None }
}

fn kind_word(k: RelKind) -> &'static str {
    if k == RelKind::View { "VIEW" } else { "TABLE" }
}

impl Database for WarehouseDb {
    fn query(&self, sql: &str) -> Result<QueryResult, String> {
        match self.persist(sql)? {
            Some(r) => Ok(r),
            None => self.inner.query(sql),
        }
    }

    fn columns(&self, schema: &str, identifier: &str) -> Result<Option<Vec<ColumnInfo>>, String> {
        self.inner.columns(schema, identifier)
    }

    fn relations(&self, schema: &str) -> Result<Vec<(String, String)>, String> {
        self.inner.relations(schema)
    }

    fn drop_relation(&self, schema: &str, identifier: &str) -> Result<(), String> {
        self.inner.drop_relation(schema, identifier)
    }
}
