//! The warehouse as Jinja sees it while compiling: `statement` blocks,
//! `load_result`, `run_query` and the introspective `adapter` methods
//! (`get_columns_in_relation`, `get_relation`, ...). The engine implements
//! [`Database`]; this module only defines what Jinja needs and the agate-like
//! result table dbt macros read (`table.columns[0].values()`, `rows`,
//! `load_result(name)['data']`).

use indexmap::IndexMap;
use minijinja::value::{Enumerator, Kwargs, Object, ObjectRepr, Value, from_args};
use minijinja::{Error, ErrorKind, State};
use std::sync::{Arc, Mutex, RwLock};

use super::objects::{Phase, RenderCtx};

/// A column of a relation or a query result: its name and SQL type.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnInfo {
    pub name: String,
    pub data_type: String,
}

/// A query's result: columns and rows (JSON scalars).
#[derive(Debug, Clone, Default)]
pub struct QueryResult {
    pub columns: Vec<ColumnInfo>,
    pub rows: Vec<Vec<serde_json::Value>>,
    /// Rows affected (statements that write).
    pub rows_affected: Option<u64>,
}

/// What Jinja may ask of the warehouse while compiling. Errors are plain
/// messages; Jinja wraps them with the node being rendered.
pub trait Database: Send + Sync {
    /// Runs `sql` and returns its rows (empty for statements).
    fn query(&self, sql: &str) -> Result<QueryResult, String>;
    /// Columns of `schema.identifier`, or `None` when it does not exist.
    fn columns(&self, schema: &str, identifier: &str) -> Result<Option<Vec<ColumnInfo>>, String>;
    /// Relations of a schema: (name, "table" | "view").
    fn relations(&self, schema: &str) -> Result<Vec<(String, String)>, String>;
    /// Drops a relation if it exists.
    fn drop_relation(&self, schema: &str, identifier: &str) -> Result<(), String>;
}

/// The database slot of a [`super::JinjaEnv`]: empty until a command that
/// can reach the warehouse sets it.
pub type DbSlot = Arc<RwLock<Option<Arc<dyn Database>>>>;

pub(crate) fn current(slot: &DbSlot) -> Option<Arc<dyn Database>> {
    slot.read().ok().and_then(|g| g.clone())
}

fn err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// Results of named `statement` blocks, kept per render.
#[derive(Debug, Default)]
pub struct Results(pub Mutex<IndexMap<String, Value>>);

/// Whether `execute` is true for this render (dbt's second phase).
pub(crate) fn executing(state: &State) -> bool {
    match RenderCtx::from_state(state) {
        Some(r) => r.phase == Phase::Compile,
        None => state.lookup("execute").is_some_and(|v| v.is_true()),
    }
}

fn who(state: &State) -> String {
    RenderCtx::from_state(state).map(|r| format!(" (in {})", r.node_id)).unwrap_or_default()
}

/// Notes on the render that it asked the warehouse (see `Captured::queried`).
pub(crate) fn touch(state: &State) {
    if let Some(r) = RenderCtx::from_state(state) {
        r.captured.lock().unwrap().queried = true;
    }
}

pub(crate) fn need_db(slot: &DbSlot, state: &State, what: &str) -> Result<Arc<dyn Database>, Error> {
    touch(state);
    current(slot).ok_or_else(|| {
        err(format!(
            "{what} needs the warehouse, which this command does not open{}\n  hint: run it with `dp run`, `dp build` or `dp compile`, which query the warehouse while compiling",
            who(state)
        ))
    })
}

/// Runs `sql` and stores the result as dbt's `load_result` value.
fn run_and_store(slot: &DbSlot, state: &State, name: &str, sql: &str) -> Result<Value, Error> {
    let db = need_db(slot, state, &format!("statement '{name}'"))?;
    let res = db.query(sql).map_err(|e| err(format!("Database Error in statement '{name}'{}: {e}\n  SQL: {}", who(state), sql.trim())))?;
    let table = Arc::new(AgateTable::new(res.columns.clone(), res.rows.clone()));
    let data: Vec<Value> = res.rows.iter().map(|r| Value::from(r.iter().map(Value::from_serialize).collect::<Vec<_>>())).collect();
    let mut m: IndexMap<&str, Value> = IndexMap::new();
    let code = if res.columns.is_empty() { "OK" } else { "SELECT" };
    let n = res.rows_affected.unwrap_or(res.rows.len() as u64);
    m.insert("response", Value::from_serialize(serde_json::json!({"_message": format!("{code} {n}"), "code": code, "rows_affected": n})));
    m.insert("data", Value::from(data));
    m.insert("table", Value::from_dyn_object(table));
    Ok(Value::from_iter(m))
}

fn results_of(state: &State) -> Option<Arc<RenderCtx>> {
    RenderCtx::from_state(state)
}

/// `{% call statement(name, fetch_result=True) %}sql{% endcall %}`.
pub struct Statement {
    pub db: DbSlot,
    /// Results when rendering outside a node (hooks).
    pub loose: Arc<Results>,
}

impl std::fmt::Debug for Statement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<statement>")
    }
}

impl Object for Statement {
    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn call(self: &Arc<Self>, state: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let (name, fetch, auto_begin, language, kwargs): (Option<String>, Option<bool>, Option<bool>, Option<String>, Kwargs) = from_args(args)?;
        let name = name.or(kwargs.get::<Option<String>>("name")?).unwrap_or_else(|| "main".into());
        let _ = (fetch.or(kwargs.get::<Option<bool>>("fetch_result")?), auto_begin.or(kwargs.get::<Option<bool>>("auto_begin")?));
        let language = language.or(kwargs.get::<Option<String>>("language")?).unwrap_or_else(|| "sql".into());
        let caller: Option<Value> = kwargs.get("caller")?;
        kwargs.assert_all_used()?;
        if language != "sql" {
            return Err(err(format!("statement '{name}': language '{language}' is not supported by dp (only sql)")));
        }
        if !executing(state) {
            return Ok(Value::from(""));
        }
        let sql = match caller {
            Some(c) => c.call(state, &[])?.to_string(),
            None => String::new(),
        };
        let v = run_and_store(&self.db, state, &name, &sql)?;
        store(state, &self.loose, &name, v);
        Ok(Value::from(""))
    }
}

fn store(state: &State, loose: &Results, name: &str, v: Value) {
    match results_of(state) {
        Some(r) => {
            r.results.0.lock().unwrap().insert(name.to_string(), v);
        }
        None => {
            loose.0.lock().unwrap().insert(name.to_string(), v);
        }
    }
}

/// `load_result(name)`: the stored result, or none.
pub fn load_result(loose: &Results, state: &State, name: &str) -> Value {
    let found = match results_of(state) {
        Some(r) => r.results.0.lock().unwrap().get(name).cloned(),
        None => loose.0.lock().unwrap().get(name).cloned(),
    };
    found.unwrap_or(Value::from(()))
}

/// `run_query(sql)`: the result table, or none while parsing.
pub fn run_query(slot: &DbSlot, loose: &Results, state: &State, sql: &str) -> Result<Value, Error> {
    if !executing(state) {
        return Ok(Value::from(()));
    }
    let v = run_and_store(slot, state, "run_query_statement", sql)?;
    store(state, loose, "run_query_statement", v.clone());
    v.get_attr("table")
}

/// dbt's agate `Table`, as far as macros read it.
#[derive(Debug)]
pub struct AgateTable {
    pub columns: Vec<ColumnInfo>,
    pub rows: Vec<Arc<AgateRow>>,
}

impl AgateTable {
    pub fn new(columns: Vec<ColumnInfo>, rows: Vec<Vec<serde_json::Value>>) -> AgateTable {
        let names: Arc<Vec<String>> = Arc::new(columns.iter().map(|c| c.name.clone()).collect());
        let rows = rows.into_iter().map(|r| Arc::new(AgateRow { names: names.clone(), values: r.iter().map(Value::from_serialize).collect() })).collect();
        AgateTable { columns, rows }
    }

    fn column(self: &Arc<Self>, i: usize) -> Value {
        Value::from_object(AgateColumn { name: self.columns[i].name.clone(), data_type: self.columns[i].data_type.clone(), table: self.clone(), index: i })
    }

    fn column_index(&self, key: &Value) -> Option<usize> {
        match key.as_str() {
            Some(s) => self.columns.iter().position(|c| c.name == s),
            None => {
                let i = key.as_i64()?;
                let i = if i < 0 { self.columns.len() as i64 + i } else { i };
                usize::try_from(i).ok().filter(|i| *i < self.columns.len())
            }
        }
    }
}

impl Object for AgateTable {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        if let Some(i) = key.as_i64() {
            let i = if i < 0 { self.rows.len() as i64 + i } else { i };
            return self.rows.get(usize::try_from(i).ok()?).map(|r| Value::from_dyn_object(r.clone()));
        }
        match key.as_str()? {
            "rows" => Some(Value::from(self.rows.iter().map(|r| Value::from_dyn_object(r.clone())).collect::<Vec<_>>())),
            "columns" => Some(Value::from_object(AgateColumns(self.clone()))),
            "column_names" => Some(Value::from(self.columns.iter().map(|c| Value::from(c.name.clone())).collect::<Vec<_>>())),
            "column_types" => Some(Value::from(self.columns.iter().map(|c| Value::from(c.data_type.clone())).collect::<Vec<_>>())),
            _ => None,
        }
    }
    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.rows.iter().map(|r| Value::from_dyn_object(r.clone())).collect())
    }
    fn call_method(self: &Arc<Self>, _state: &State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        match method {
            "print_table" | "print_csv" | "print_json" => Ok(Value::from("")),
            "where" | "limit" => {
                let (n,): (Option<usize>,) = from_args(args).unwrap_or((None,));
                let rows = self.rows.iter().take(n.unwrap_or(usize::MAX)).cloned().collect();
                Ok(Value::from_object(AgateTable { columns: self.columns.clone(), rows }))
            }
            _ => Err(Error::new(ErrorKind::UnknownMethod, format!("agate table has no method '{method}'"))),
        }
    }
}

/// `table.columns`: by position or name, iterable.
#[derive(Debug)]
pub struct AgateColumns(Arc<AgateTable>);

impl Object for AgateColumns {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.0.column_index(key).map(|i| self.0.column(i))
    }
    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values((0..self.0.columns.len()).map(|i| self.0.column(i)).collect())
    }
    fn call_method(self: &Arc<Self>, _state: &State<'_, '_>, method: &str, _args: &[Value]) -> Result<Value, Error> {
        match method {
            "keys" => Ok(Value::from(self.0.columns.iter().map(|c| Value::from(c.name.clone())).collect::<Vec<_>>())),
            "values" => Ok(Value::from((0..self.0.columns.len()).map(|i| self.0.column(i)).collect::<Vec<_>>())),
            "items" => Ok(Value::from(
                (0..self.0.columns.len()).map(|i| Value::from(vec![Value::from(self.0.columns[i].name.clone()), self.0.column(i)])).collect::<Vec<_>>(),
            )),
            _ => Err(Error::new(ErrorKind::UnknownMethod, format!("columns have no method '{method}'"))),
        }
    }
}

/// One column of an agate table: `name`, `values()`.
#[derive(Debug)]
pub struct AgateColumn {
    name: String,
    data_type: String,
    table: Arc<AgateTable>,
    index: usize,
}

impl AgateColumn {
    fn values(&self) -> Vec<Value> {
        self.table.rows.iter().map(|r| r.values.get(self.index).cloned().unwrap_or_default()).collect()
    }
}

impl Object for AgateColumn {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        if let Some(i) = key.as_i64() {
            return self.values().get(usize::try_from(i).ok()?).cloned();
        }
        match key.as_str()? {
            "name" => Some(Value::from(self.name.clone())),
            "data_type" => Some(Value::from(self.data_type.clone())),
            _ => None,
        }
    }
    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.values())
    }
    fn call_method(self: &Arc<Self>, _state: &State<'_, '_>, method: &str, _args: &[Value]) -> Result<Value, Error> {
        match method {
            "values" => Ok(Value::from(self.values())),
            "values_distinct" => {
                let mut out: Vec<Value> = vec![];
                for v in self.values() {
                    if !out.contains(&v) {
                        out.push(v);
                    }
                }
                Ok(Value::from(out))
            }
            "values_without_nulls" => Ok(Value::from(self.values().into_iter().filter(|v| !v.is_none()).collect::<Vec<_>>())),
            _ => Err(Error::new(ErrorKind::UnknownMethod, format!("agate column has no method '{method}'"))),
        }
    }
}

/// One row: by position or column name.
#[derive(Debug)]
pub struct AgateRow {
    names: Arc<Vec<String>>,
    values: Vec<Value>,
}

impl Object for AgateRow {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str() {
            Some(s) => self.names.iter().position(|n| n == s).and_then(|i| self.values.get(i).cloned()),
            None => {
                let i = key.as_i64()?;
                let i = if i < 0 { self.values.len() as i64 + i } else { i };
                self.values.get(usize::try_from(i).ok()?).cloned()
            }
        }
    }
    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.values.clone())
    }
    fn call_method(self: &Arc<Self>, _state: &State<'_, '_>, method: &str, _args: &[Value]) -> Result<Value, Error> {
        match method {
            "keys" => Ok(Value::from(self.names.iter().map(|n| Value::from(n.clone())).collect::<Vec<_>>())),
            "values" => Ok(Value::from(self.values.clone())),
            "items" => {
                Ok(Value::from(self.names.iter().zip(&self.values).map(|(n, v)| Value::from(vec![Value::from(n.clone()), v.clone()])).collect::<Vec<_>>()))
            }
            "dict" => Ok(Value::from_iter(self.names.iter().zip(&self.values).map(|(n, v)| (n.clone(), v.clone())))),
            _ => Err(Error::new(ErrorKind::UnknownMethod, format!("agate row has no method '{method}'"))),
        }
    }
}
