//! Table names: a bare model name that lives in exactly one schema resolves
//! there (`select * from fct_orders` reads `marts.fct_orders`), rewritten
//! on the AST with sqlparser's visitor; unknown names get close suggestions.

use datafusion::catalog::{CatalogProvider, SchemaProvider};
use datafusion::sql::parser::{CopyToSource, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::{Ident, ObjectName, ObjectNamePart, Query, Statement, TableFactor, Visit, VisitMut, Visitor, VisitorMut};
use std::collections::HashSet;
use std::ops::ControlFlow;

use crate::engine::catalog::WarehouseCatalog;

/// Looks up which schema holds a bare table name.
pub struct Names<'a> {
    pub catalog: &'a WarehouseCatalog,
    pub default_schema: &'a str,
}

impl Names<'_> {
    /// The one schema (other than the default) holding `table`, if the
    /// default schema does not have it and exactly one other schema does.
    pub fn unique_schema(&self, table: &str) -> Option<String> {
        if self.catalog.schema_provider(self.default_schema).table_exist(table) {
            return None;
        }
        let mut found = self
            .catalog
            .schema_names()
            .into_iter()
            .filter(|s| s != self.default_schema && !s.starts_with('.') && !s.starts_with('_'))
            .filter(|s| self.catalog.schema_provider(s).table_exist(table));
        let first = found.next()?;
        if found.next().is_some() { None } else { Some(first) }
    }

    /// Every table as `schema.table`.
    pub fn all_tables(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for s in self.catalog.schema_names() {
            if s.starts_with('.') || s.starts_with('_') {
                continue;
            }
            for t in self.catalog.schema_provider(&s).table_names() {
                out.push((s.clone(), t));
            }
        }
        out
    }

    /// Up to three close names for an unknown table (`name` may be qualified).
    pub fn close_names(&self, name: &str) -> Vec<String> {
        let all = self.all_tables();
        let bare = name.rsplit('.').next().unwrap_or(name).to_string();
        let mut pool: Vec<(String, String)> = all.iter().map(|(s, t)| (t.clone(), format!("{s}.{t}"))).collect();
        let mut out = Vec::new();
        while out.len() < 3 {
            let Some(best) = crate::util::suggest(&bare, pool.iter().map(|(t, _)| t.as_str())) else { break };
            let Some(i) = pool.iter().position(|(t, _)| *t == best) else { break };
            out.push(pool.remove(i).1);
        }
        out
    }
}

fn ident_key(i: &Ident) -> String {
    if i.quote_style.is_some() { i.value.clone() } else { i.value.to_lowercase() }
}

fn bare(name: &ObjectName) -> Option<String> {
    match name.0.as_slice() {
        [ObjectNamePart::Identifier(i)] => Some(ident_key(i)),
        _ => None,
    }
}

struct Ctes(HashSet<String>);

impl Visitor for Ctes {
    type Break = ();
    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
        if let Some(w) = &q.with {
            for c in &w.cte_tables {
                self.0.insert(ident_key(&c.alias.name));
            }
        }
        ControlFlow::Continue(())
    }
}

/// The names of the CTEs defined anywhere in a query.
pub fn cte_names(q: &Query) -> HashSet<String> {
    let mut ctes = Ctes(HashSet::new());
    let _ = Visit::visit(q, &mut ctes);
    ctes.0
}

struct Rewriter<'a, 'b> {
    names: &'a Names<'b>,
    ctes: HashSet<String>,
}

impl Rewriter<'_, '_> {
    fn qualify(&self, name: &mut ObjectName) {
        let Some(key) = bare(name) else { return };
        if self.ctes.contains(&key) {
            return;
        }
        if let Some(schema) = self.names.unique_schema(&key) {
            name.0.insert(0, ObjectNamePart::Identifier(Ident::with_quote('"', schema)));
        }
    }
}

impl VisitorMut for Rewriter<'_, '_> {
    type Break = ();
    fn pre_visit_table_factor(&mut self, tf: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table { name, args: None, .. } = tf {
            self.qualify(name);
        }
        ControlFlow::Continue(())
    }
}

/// Qualifies bare table names that resolve to exactly one schema.
pub fn qualify_bare_names(stmt: &mut DFStatement, names: &Names<'_>) {
    match stmt {
        DFStatement::Statement(s) => qualify_sql(s, names),
        DFStatement::CopyTo(c) => match &mut c.source {
            CopyToSource::Relation(n) => Rewriter { names, ctes: HashSet::new() }.qualify(n),
            CopyToSource::Query(q) => {
                let mut ctes = Ctes(HashSet::new());
                let _ = Visit::visit(q.as_ref(), &mut ctes);
                let _ = VisitMut::visit(q.as_mut(), &mut Rewriter { names, ctes: ctes.0 });
            }
        },
        DFStatement::Explain(e) => qualify_bare_names(&mut e.statement, names),
        DFStatement::CreateExternalTable(_) | DFStatement::Reset(_) => {}
    }
}

fn qualify_sql(s: &mut Statement, names: &Names<'_>) {
    let mut ctes = Ctes(HashSet::new());
    let _ = Visit::visit(&*s, &mut ctes);
    let mut rw = Rewriter { names, ctes: ctes.0 };
    if let Statement::ExplainTable { table_name, .. } = s {
        rw.qualify(table_name);
        return;
    }
    let _ = VisitMut::visit(s, &mut rw);
}
