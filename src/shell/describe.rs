//! What the catalog commands print (`\d`, `\dt`): relations with their
//! kind (table, view, source, or temp for session-only ones) and the
//! columns of one relation.

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::SchemaProvider;
use std::sync::Arc;

use super::{Shell, ShellError, strip};

impl Shell {
    /// Relations as (schema, name, type), filtered by a glob on `name` or `schema.name`.
    pub(super) fn relations(&self, pattern: Option<&str>) -> Result<RecordBatch, ShellError> {
        let matcher = match pattern {
            Some(p) => Some(
                globset::GlobBuilder::new(p).case_insensitive(true).build().map_err(|e| ShellError::Usage(format!("pattern '{p}': {e}")))?.compile_matcher(),
            ),
            None => None,
        };
        let qualified = pattern.is_some_and(|p| p.contains('.'));
        let mut cols: Vec<Vec<String>> = vec![Vec::new(), Vec::new(), Vec::new()];
        let mut all: Vec<(String, String, String)> = self
            .names()
            .all_tables()
            .into_iter()
            .map(|(s, t)| {
                let kind = self.kind(&s, &t);
                (s, t, kind)
            })
            .collect();
        all.extend(self.temp_views.iter().map(|v| (self.default_schema.clone(), v.clone(), "temp".to_string())));
        all.sort();
        for (s, t, kind) in all {
            if let Some(m) = &matcher {
                let key = if qualified { format!("{s}.{t}") } else { t.clone() };
                if !m.is_match(&key) {
                    continue;
                }
            }
            cols[0].push(s);
            cols[1].push(t);
            cols[2].push(kind);
        }
        string_batch(&["schema", "name", "type"], cols)
    }

    fn kind(&self, schema: &str, table: &str) -> String {
        match self.engine.warehouse.kind_blocking(schema, table) {
            Some(crate::storage::RelKind::Table) => "table",
            Some(crate::storage::RelKind::View) => "view",
            None => "source",
        }
        .to_string()
    }

    /// Resolves a table name the way queries do: `schema.table`, or a bare
    /// name from the default schema or the one schema holding it.
    pub fn locate(&self, name: &str) -> (String, String) {
        let parts: Vec<String> = name.split('.').map(|p| p.trim_matches('"').to_string()).collect();
        match parts.as_slice() {
            [t] => {
                let t = t.to_lowercase();
                (self.names().unique_schema(&t).unwrap_or_else(|| self.default_schema.clone()), t)
            }
            [.., s, t] => (s.clone(), t.clone()),
            [] => (self.default_schema.clone(), String::new()),
        }
    }

    pub(super) async fn columns(&self, name: &str) -> Result<RecordBatch, ShellError> {
        let (schema, table) = self.locate(name);
        let provider = self.engine.catalog.schema_provider(&schema).table(&table).await.map_err(|e| ShellError::Engine(strip(&e)))?;
        let Some(provider) = provider else {
            return Err(ShellError::UnknownTable { name: format!("{schema}.{table}"), suggestions: self.names().close_names(name) });
        };
        let s = provider.schema();
        let cols = vec![
            s.fields().iter().map(|f| f.name().clone()).collect(),
            s.fields().iter().map(|f| f.data_type().to_string()).collect(),
            s.fields().iter().map(|f| if f.is_nullable() { "YES" } else { "NO" }.to_string()).collect(),
        ];
        string_batch(&["column", "type", "nullable"], cols)
    }
}

pub(super) fn string_batch(names: &[&str], cols: Vec<Vec<String>>) -> Result<RecordBatch, ShellError> {
    let schema = Arc::new(Schema::new(names.iter().map(|n| Field::new(*n, DataType::Utf8, false)).collect::<Vec<_>>()));
    let arrays: Vec<ArrayRef> = cols.into_iter().map(|c| Arc::new(StringArray::from(c)) as ArrayRef).collect();
    RecordBatch::try_new(schema, arrays).map_err(|e| ShellError::Other(e.to_string()))
}
