//! The `adapter` object: `dispatch` with the project's `dispatch:` search
//! order, quoting, and the introspective methods dbt macros call while
//! compiling (answered by the warehouse through [`super::db::Database`]).

use minijinja::value::{Kwargs, Object, Value, from_args};
use minijinja::{Error, ErrorKind, State};
use std::sync::Arc;

use super::MacroTable;
use super::column::Column;
use super::db::{self, DbSlot};
use super::objects::{Relation, quote};

fn err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// Adapter methods of dbt that dp does not provide (they fail by name).
const UNSUPPORTED: &[&str] =
    &["get_csv_data", "submit_python_job", "get_model_query_settings", "rename_relation", "truncate_relation", "cancel_open_connections"];

pub struct Adapter {
    pub table: Arc<MacroTable>,
    pub db: DbSlot,
}

impl std::fmt::Debug for Adapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<adapter>")
    }
}

/// `schema` and `identifier` of a relation argument (a Relation, or
/// anything with those attributes).
/// `target.database`: the database of every relation in dp's warehouse.
fn target_database(state: &State) -> String {
    state.lookup("target").and_then(|t| t.get_attr("database").ok()).and_then(|d| d.as_str().map(String::from)).unwrap_or_default()
}

fn parts(v: &Value) -> (String, String) {
    let get = |k: &str| v.get_attr(k).ok().filter(|x| !x.is_undefined() && !x.is_none()).map(|x| x.to_string()).unwrap_or_default();
    (get("schema"), get("identifier"))
}

impl Adapter {
    fn relation(&self, state: &State, schema: &str, identifier: &str) -> Result<Value, Error> {
        if !db::executing(state) {
            return Ok(Value::from(()));
        }
        db::touch(state);
        let Some(dbx) = db::current(&self.db) else { return Ok(Value::from(())) };
        let rels = dbx.relations(schema).map_err(err)?;
        Ok(match rels.into_iter().find(|(n, _)| n.eq_ignore_ascii_case(identifier)) {
            Some((name, kind)) => {
                let mut r = Relation::new(&target_database(state), schema, &name);
                r.kind = Some(kind);
                Value::from_object(r)
            }
            None => Value::from(()),
        })
    }

    fn columns(&self, state: &State, rel: &Value) -> Result<Vec<Column>, Error> {
        if !db::executing(state) {
            return Ok(vec![]);
        }
        // A CTE or a subquery has no catalog entry.
        if rel.is_none() || rel.is_undefined() {
            return Ok(vec![]);
        }
        let dbx = db::need_db(&self.db, state, "adapter.get_columns_in_relation")?;
        let (schema, identifier) = parts(rel);
        let cols = dbx.columns(&schema, &identifier).map_err(err)?.unwrap_or_default();
        Ok(cols.iter().map(|c| Column::new(&c.name, &c.data_type)).collect())
    }
}

fn columns_value(cols: Vec<Column>) -> Value {
    Value::from(cols.into_iter().map(Value::from_object).collect::<Vec<_>>())
}

impl Object for Adapter {
    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "type" => Some(Value::from(super::TARGET_TYPE)),
            "Relation" => None,
            _ => None,
        }
    }

    fn call_method(self: &Arc<Self>, state: &State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        match method {
            "dispatch" => {
                let (name, ns, kwargs): (String, Option<String>, Kwargs) = from_args(args)?;
                let ns = ns.or(kwargs.get::<Option<String>>("macro_namespace")?);
                let _ = kwargs.get::<Option<Value>>("packages")?;
                let m = self.table.dispatch(&name, ns.as_deref()).map_err(err)?;
                Ok(Value::from_dyn_object(m))
            }
            "quote" => {
                let (s,): (String,) = from_args(args)?;
                Ok(Value::from(quote(&s)))
            }
            "quote_as_configured" | "quote_seed_column" => {
                let (s, q): (String, Option<Value>) = from_args(args)?;
                Ok(Value::from(if method == "quote_seed_column" && q.is_some_and(|q| q.is_true()) { quote(&s) } else { s }))
            }
            "type" => Ok(Value::from(super::TARGET_TYPE)),
            "get_relation" => {
                let (pos, kwargs): (&[Value], Kwargs) = from_args(args)?;
                let arg = |i: usize, k: &str| -> Result<String, Error> {
                    Ok(match pos.get(i) {
                        Some(v) => v.to_string(),
                        None => kwargs.get::<Option<Value>>(k)?.filter(|v| !v.is_none()).map(|v| v.to_string()).unwrap_or_default(),
                    })
                };
                let (_database, schema, identifier) = (arg(0, "database")?, arg(1, "schema")?, arg(2, "identifier")?);
                self.relation(state, &schema, &identifier)
            }
            "load_relation" => {
                let (rel,): (Value,) = from_args(args)?;
                let (schema, identifier) = parts(&rel);
                self.relation(state, &schema, &identifier)
            }
            "get_columns_in_relation" => {
                let (rel,): (Value,) = from_args(args)?;
                Ok(columns_value(self.columns(state, &rel)?))
            }
            "get_missing_columns" => {
                let (from, to): (Value, Value) = from_args(args)?;
                let to_cols: Vec<String> = self.columns(state, &to)?.into_iter().map(|c| c.column.to_lowercase()).collect();
                Ok(columns_value(self.columns(state, &from)?.into_iter().filter(|c| !to_cols.contains(&c.column.to_lowercase())).collect()))
            }
            "expand_target_column_types" | "expand_column_types" => Ok(Value::from("")),
            "list_relations_without_caching" | "list_relations" => {
                let (pos, kwargs): (&[Value], Kwargs) = from_args(args)?;
                let schema = match pos.first() {
                    Some(_) if method == "list_relations" && pos.len() > 1 => pos[1].to_string(),
                    Some(r) => parts(r).0,
                    None => kwargs.get::<Option<String>>("schema")?.unwrap_or_default(),
                };
                if !db::executing(state) {
                    return Ok(Value::from(Vec::<Value>::new()));
                }
                let dbx = db::need_db(&self.db, state, "adapter.list_relations_without_caching")?;
                let rels = dbx.relations(&schema).map_err(err)?;
                let database = target_database(state);
                Ok(Value::from(
                    rels.into_iter()
                        .map(|(n, k)| {
                            let mut r = Relation::new(&database, &schema, &n);
                            r.kind = Some(k);
                            Value::from_object(r)
                        })
                        .collect::<Vec<_>>(),
                ))
            }
            "drop_relation" => {
                let (rel,): (Value,) = from_args(args)?;
                if db::executing(state) {
                    let dbx = db::need_db(&self.db, state, "adapter.drop_relation")?;
                    let (schema, identifier) = parts(&rel);
                    dbx.drop_relation(&schema, &identifier).map_err(err)?;
                }
                Ok(Value::from(""))
            }
            "execute" | "add_query" => {
                let (sql, kwargs): (String, Kwargs) = from_args(args)?;
                let _ = (kwargs.get::<Option<bool>>("fetch")?, kwargs.get::<Option<bool>>("auto_begin")?, kwargs.get::<Option<Value>>("bindings")?);
                let _ = kwargs.get::<Option<bool>>("abridge_sql_log")?;
                if !db::executing(state) {
                    return Ok(Value::from(()));
                }
                let table = db::run_query(&self.db, &Default::default(), state, &sql)?;
                let response = Value::from_serialize(serde_json::json!({"_message": "OK", "code": "OK", "rows_affected": null}));
                Ok(Value::from(vec![response, table]))
            }
            "check_schema_exists" => Ok(Value::from(true)),
            "create_schema" | "drop_schema" | "commit" | "begin" | "cache_added" | "cache_dropped" | "cache_renamed" => Ok(Value::from("")),
            "already_exists" => {
                let (schema, identifier): (String, String) = from_args(args)?;
                Ok(Value::from(!self.relation(state, &schema, &identifier)?.is_none()))
            }
            // While parsing, a method dp lacks answers none, as dbt's parse-time
            // Jinja lets an unknown attribute be called: the node fails when it
            // compiles, not the whole project when it loads.
            _ if !db::executing(state) => Ok(Value::from(())),
            "get_incremental_strategy_macro" => Err(err("adapter.get_incremental_strategy_macro: dp runs incremental strategies natively, not as macros")),
            m if UNSUPPORTED.contains(&m) => Err(err(format!("adapter.{m} is part of dbt's adapter API but is not supported by dp"))),
            _ => Err(Error::new(ErrorKind::InvalidOperation, format!("adapter has no method '{method}'"))),
        }
    }
}
