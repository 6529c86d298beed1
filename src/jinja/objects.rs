//! The objects dbt's Jinja context exposes: relations (`this`, `ref()`),
//! the per-render context behind `ref`/`source`/`config`, mutable lists and
//! dicts (`{% do xs.append(x) %}`), and macro handles.

use indexmap::IndexMap;
use minijinja::value::{Enumerator, Kwargs, Object, ObjectRepr, Value, from_args};
use minijinja::{Error, ErrorKind, State};
use std::fmt;
use std::sync::{Arc, Mutex};

use super::refs::RefCall;
use crate::util::ident::{Quoting, dbt_relation_name};

/// A relation, as `this`, `ref()`, `source()` and `api.Relation.create()`
/// return. It renders as dbt renders it: `"dp"."main"."orders"`, each part
/// quoted as the quote policy says (dbt-duckdb's default quotes all three;
/// `quoting:` in dbt_project.yml or on a source changes it), the parts
/// `include()` keeps, and the database only where dp can resolve it (see
/// [`Relation::for_node`]).
#[derive(Debug, Clone)]
pub struct Relation {
    pub database: String,
    pub schema: String,
    pub identifier: String,
    /// Rendered text override (ephemeral CTE names render bare).
    pub rendered: Option<String>,
    /// `table`, `view`, `cte`, or unknown.
    pub kind: Option<String>,
    /// Which parts are quoted.
    pub quoting: Quoting,
    /// Which parts are rendered (`include(database=false)` drops one).
    pub include: Quoting,
    /// Rows a `ref()` or `source()` reads: `Some(0)` under `--empty`, as
    /// dbt's `resolve_limit`. Shown where the relation is rendered into SQL
    /// ([`Relation::limited`]), not by `.render()`.
    pub limit: Option<u64>,
}

impl Relation {
    pub fn new(database: &str, schema: &str, identifier: &str) -> Relation {
        Relation {
            database: database.into(),
            schema: schema.into(),
            identifier: identifier.into(),
            rendered: None,
            kind: None,
            quoting: Quoting::default(),
            include: Quoting::default(),
            limit: None,
        }
    }

    /// A project node's relation. Its database is rendered when it is the
    /// target's (dp's warehouse catalog, which DataFusion resolves under that
    /// name); a source declared in another database is read through the
    /// warehouse too, so its database is left out of the SQL, as before.
    pub fn for_node(database: &str, schema: &str, identifier: &str, target_database: &str, quoting: Quoting) -> Relation {
        let mut r = Relation::new(database, schema, identifier);
        r.quoting = quoting;
        r.include.database = database == target_database;
        r
    }

    pub fn cte(name: &str) -> Relation {
        Relation { rendered: Some(name.into()), kind: Some("cte".into()), ..Relation::new("", "", name) }
    }

    /// The relation as SQL reads it: its name, or with a limit, dbt's
    /// `render_limited()` as dbt-duckdb renders it (no subquery alias, so a
    /// model's own `as x` after it still parses): `(select * from <name>
    /// where false limit 0)`.
    pub fn limited(&self) -> String {
        match self.limit {
            None => self.render_name(),
            Some(0) => format!("(select * from {} where false limit 0)", self.render_name()),
            Some(n) => format!("(select * from {} limit {n})", self.render_name()),
        }
    }

    pub fn render_name(&self) -> String {
        if let Some(r) = &self.rendered {
            return r.clone();
        }
        let part = |on: bool, p: &str| if on { p.to_string() } else { String::new() };
        dbt_relation_name(
            &part(self.include.database, &self.database),
            &part(self.include.schema, &self.schema),
            &part(self.include.identifier, &self.identifier),
            self.quoting,
        )
    }
}

impl Object for Relation {
    /// Relations are equal when they name the same table (a relation is a
    /// dict key in dbt_utils' `union_relations`).
    fn custom_cmp(self: &Arc<Self>, other: &minijinja::value::DynObject) -> Option<std::cmp::Ordering> {
        let o = other.downcast_ref::<Self>()?;
        let key = |r: &Relation| (r.database.to_lowercase(), r.schema.to_lowercase(), r.identifier.to_lowercase(), r.rendered.clone());
        Some(key(self).cmp(&key(o)))
    }

    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(match key.as_str()? {
            "database" => Value::from(self.database.clone()),
            "schema" => Value::from(self.schema.clone()),
            "identifier" | "name" | "table" => Value::from(self.identifier.clone()),
            "is_table" => Value::from(self.kind.as_deref() == Some("table")),
            "is_view" => Value::from(self.kind.as_deref() == Some("view")),
            "is_cte" => Value::from(self.kind.as_deref() == Some("cte")),
            "is_materialized_view" => Value::from(false),
            "type" => self.kind.clone().map(Value::from).unwrap_or(Value::from(())),
            "path" => Value::from_iter([("database", self.database.clone()), ("schema", self.schema.clone()), ("identifier", self.identifier.clone())]),
            "quote_character" => Value::from("\""),
            // dbt_utils' `_is_relation` checks `metadata.type` ends with "Relation".
            "metadata" => Value::from_iter([("type", Value::from("DataFusionRelation"))]),
            _ => return None,
        })
    }

    fn call_method(self: &Arc<Self>, _state: &State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        match method {
            "include" | "quote" | "incorporate" | "replace_path" => {
                let (_, kwargs): (&[Value], Kwargs) = from_args(args)?;
                let mut r = (**self).clone();
                if method == "include" || method == "quote" {
                    // include(database=False, ...) leaves a part out of the
                    // rendered name; quote(identifier=False, ...) unquotes it
                    let slots = if method == "include" { &mut r.include } else { &mut r.quoting };
                    for (k, slot) in [("database", &mut slots.database), ("schema", &mut slots.schema), ("identifier", &mut slots.identifier)] {
                        if let Some(b) = kwargs.get::<Option<bool>>(k)? {
                            *slot = b;
                        }
                    }
                } else {
                    let path = if method == "incorporate" { kwargs.get::<Option<Value>>("path")? } else { None };
                    let parts = |k: &str| -> Option<String> {
                        match &path {
                            Some(p) => p.get_attr(k).ok().and_then(|v| v.as_str().map(String::from)),
                            None => kwargs.get::<Option<String>>(k).ok().flatten(),
                        }
                    };
                    if let Some(id) = parts("identifier") {
                        r.identifier = id;
                        r.rendered = None;
                    }
                    if let Some(s) = parts("schema") {
                        r.schema = s;
                    }
                    if let Some(d) = parts("database") {
                        r.database = d;
                    }
                    if let Some(t) = kwargs.get::<Option<String>>("type")? {
                        r.kind = Some(t);
                    }
                }
                Ok(Value::from_object(r))
            }
            "without_identifier" => {
                let mut r = (**self).clone();
                r.identifier.clear();
                r.rendered = None;
                Ok(Value::from_object(r))
            }
            "render" => Ok(Value::from(self.render_name())),
            _ => Err(Error::new(ErrorKind::UnknownMethod, format!("relation has no method '{method}'"))),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.limited())
    }
}

/// Which rendering pass is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Discover refs, sources and config() calls (`execute` is false).
    Parse,
    /// Produce the SQL that runs (`execute` is true).
    Compile,
}

/// Answers `ref()` / `source()` during compilation.
pub trait Resolver: Send + Sync {
    /// The relation `call` names, made from a node of `package` (which
    /// decides between namesakes in several packages).
    fn resolve_ref(&self, package: &str, call: &RefCall) -> Result<Relation, String>;
    fn resolve_source(&self, from: &str, source: &str, table: &str) -> Result<Relation, String>;
}

/// What a parse-pass render found.
#[derive(Debug, Default, Clone)]
pub struct Captured {
    pub refs: Vec<RefCall>,
    pub sources: Vec<(String, String)>,
    pub config: serde_json::Map<String, serde_json::Value>,
    /// The `config()` calls' values as given (a hook string stays a
    /// string), the last call's winning: dbt's `unrendered_config`.
    pub config_as_called: serde_json::Map<String, serde_json::Value>,
    /// Whether the render asked the warehouse anything (`run_query`,
    /// `statement`, `adapter.get_columns_in_relation`, ...): its SQL then
    /// depends on the warehouse's state and is compiled again just before
    /// the node runs, as dbt compiles each node.
    pub queried: bool,
}

/// The per-render state behind `ref`, `source`, `config`, `this` and
/// `is_incremental()`; stored in the context as `__dp`.
pub struct RenderCtx {
    pub node_id: String,
    pub package: String,
    pub phase: Phase,
    pub resolver: Option<Arc<dyn Resolver>>,
    pub is_incremental: bool,
    /// The node's resolved config (compile pass) for `config.get`.
    pub config: crate::project::nodes::SharedMap,
    pub captured: Mutex<Captured>,
    pub this: Value,
    pub model: Value,
    /// Macro overrides (unit tests): name → value returned.
    pub overrides: IndexMap<String, Value>,
    /// `var()` overrides (unit tests), before the project's vars.
    pub var_overrides: serde_json::Map<String, serde_json::Value>,
    /// `env_var()` overrides (unit tests), before the environment.
    pub env_overrides: IndexMap<String, String>,
    /// Results of `statement` blocks, for `load_result`.
    pub results: super::db::Results,
}

impl fmt::Debug for RenderCtx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RenderCtx({})", self.node_id)
    }
}

impl Object for RenderCtx {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }
}

impl RenderCtx {
    pub fn new(node_id: &str, package: &str, phase: Phase) -> RenderCtx {
        RenderCtx {
            node_id: node_id.into(),
            package: package.into(),
            phase,
            resolver: None,
            is_incremental: false,
            config: Default::default(),
            captured: Mutex::new(Captured::default()),
            this: Value::from(()),
            model: Value::from(()),
            overrides: IndexMap::new(),
            var_overrides: Default::default(),
            env_overrides: IndexMap::new(),
            results: Default::default(),
        }
    }

    pub fn from_state(state: &State) -> Option<Arc<RenderCtx>> {
        state.lookup("__dp").and_then(|v| v.downcast_object::<RenderCtx>())
    }

    /// The root context passed to macros called from this render.
    pub fn context(self: &Arc<Self>) -> Value {
        let mut m: IndexMap<&str, Value> = IndexMap::new();
        m.insert("__dp", Value::from_dyn_object(self.clone()));
        m.insert("this", self.this.clone());
        m.insert("model", self.model.clone());
        m.insert("execute", Value::from(self.phase == Phase::Compile));
        m.insert("config", Value::from_object(ConfigObj { ctx: self.clone() }));
        Value::from_iter(m)
    }

    pub fn take_captured(&self) -> Captured {
        std::mem::take(&mut *self.captured.lock().unwrap())
    }
}

/// `config(...)`, `config.get(k, default)`, `config.require(k)`.
#[derive(Debug)]
pub struct ConfigObj {
    pub ctx: Arc<RenderCtx>,
}

impl ConfigObj {
    fn lookup(&self, key: &str) -> Option<serde_json::Value> {
        if let Some(v) = self.ctx.captured.lock().unwrap().config.get(key) {
            return Some(v.clone());
        }
        self.ctx.config.get(key).cloned()
    }
}

impl Object for ConfigObj {
    fn call(self: &Arc<Self>, _state: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let (pos, kwargs): (&[Value], Kwargs) = from_args(args)?;
        let mut cap = self.ctx.captured.lock().unwrap();
        let mut apply = |k: &str, v: &Value| -> Result<(), Error> {
            let json = serde_json::to_value(v).map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("config({k}=...): value cannot be stored: {e}")))?;
            let mut one = serde_json::Map::new();
            one.insert(k.to_string(), json);
            crate::config::update_config(&mut cap.config_as_called, &one);
            crate::config::merge_config(&mut cap.config, &one);
            Ok(())
        };
        // config({'materialized': 'table'}) as a positional dict.
        for p in pos {
            if let Ok(items) = p.try_iter() {
                for k in items {
                    let v = p.get_item(&k)?;
                    if let Some(k) = k.as_str() {
                        apply(k, &v)?;
                    }
                }
            }
        }
        for k in kwargs.args().map(String::from).collect::<Vec<_>>() {
            let v: Value = kwargs.get(&k)?;
            apply(&k, &v)?;
        }
        Ok(Value::from(""))
    }

    fn call_method(self: &Arc<Self>, _state: &State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        match method {
            "get" => {
                let (key, default, kwargs): (String, Option<Value>, Kwargs) = from_args(args)?;
                let default = match default {
                    Some(d) => d,
                    None => kwargs.get::<Option<Value>>("default")?.unwrap_or(Value::from(())),
                };
                Ok(self.lookup(&key).map(|v| Value::from_serialize(&v)).unwrap_or(default))
            }
            "require" => {
                let (key,): (String,) = from_args(args)?;
                match self.lookup(&key) {
                    Some(v) => Ok(Value::from_serialize(&v)),
                    None if self.ctx.phase == Phase::Parse => Ok(Value::from(())),
                    None => Err(Error::new(ErrorKind::InvalidOperation, format!("required config '{key}' was not set for {}", self.ctx.node_id))),
                }
            }
            "set" => {
                let (key, value): (String, Value) = from_args(args)?;
                let json = serde_json::to_value(&value).unwrap_or(serde_json::Value::Null);
                self.ctx.captured.lock().unwrap().config.insert(key, json);
                Ok(Value::from(""))
            }
            "persist_relation_docs" | "persist_column_docs" => Ok(Value::from(false)),
            _ => Err(Error::new(ErrorKind::UnknownMethod, format!("config has no method '{method}'"))),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("")
    }
}

/// A list that `append`/`extend`/`pop` can change, as in Python's Jinja.
#[derive(Debug, Default)]
pub struct MutList(pub Mutex<Vec<Value>>);

impl Object for MutList {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let items = self.0.lock().unwrap();
        let idx = key.as_i64()?;
        let idx = if idx < 0 { items.len() as i64 + idx } else { idx };
        items.get(usize::try_from(idx).ok()?).cloned()
    }
    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.0.lock().unwrap().clone())
    }
    fn call_method(self: &Arc<Self>, _state: &State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        let mut items = self.0.lock().unwrap();
        match method {
            "append" => {
                let (v,): (Value,) = from_args(args)?;
                items.push(v);
                Ok(Value::from(()))
            }
            "extend" => {
                let (v,): (Value,) = from_args(args)?;
                items.extend(v.try_iter()?);
                Ok(Value::from(()))
            }
            "insert" => {
                let (i, v): (usize, Value) = from_args(args)?;
                let i = i.min(items.len());
                items.insert(i, v);
                Ok(Value::from(()))
            }
            "pop" => {
                let (i,): (Option<i64>,) = from_args(args)?;
                let len = items.len() as i64;
                let i = match i {
                    None => len - 1,
                    Some(i) if i < 0 => len + i,
                    Some(i) => i,
                };
                if i < 0 || i >= len {
                    return Err(Error::new(ErrorKind::InvalidOperation, "pop index out of range"));
                }
                Ok(items.remove(i as usize))
            }
            "remove" => {
                let (v,): (Value,) = from_args(args)?;
                if let Some(pos) = items.iter().position(|x| *x == v) {
                    items.remove(pos);
                }
                Ok(Value::from(()))
            }
            "index" => {
                let (v,): (Value,) = from_args(args)?;
                items.iter().position(|x| *x == v).map(Value::from).ok_or_else(|| Error::new(ErrorKind::InvalidOperation, format!("{v} is not in list")))
            }
            "count" => {
                let (v,): (Value,) = from_args(args)?;
                Ok(Value::from(items.iter().filter(|x| **x == v).count()))
            }
            "reverse" => {
                items.reverse();
                Ok(Value::from(()))
            }
            "copy" => Ok(Value::from(items.clone())),
            "clear" => {
                items.clear();
                Ok(Value::from(()))
            }
            _ => Err(Error::new(ErrorKind::UnknownMethod, format!("list has no method '{method}'"))),
        }
    }
}

/// A dict that `update`/`pop`/`setdefault` can change.
#[derive(Debug, Default)]
pub struct MutMap(pub Mutex<IndexMap<Value, Value>>);

impl Object for MutMap {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.0.lock().unwrap().get(key).cloned()
    }
    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.0.lock().unwrap().keys().cloned().collect())
    }
    fn call_method(self: &Arc<Self>, _state: &State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        let mut map = self.0.lock().unwrap();
        match method {
            "update" => {
                let (other, kwargs): (Option<Value>, Kwargs) = from_args(args)?;
                // Literal values become mutable too: `d.update({k: []})` then `d[k].append(x)`.
                if let Some(other) = other {
                    for k in other.try_iter()? {
                        let v = other.get_item(&k)?;
                        map.insert(k, make_mutable(v)?);
                    }
                }
                for k in kwargs.args().map(String::from).collect::<Vec<_>>() {
                    let v: Value = kwargs.get(&k)?;
                    map.insert(Value::from(k), make_mutable(v)?);
                }
                Ok(Value::from(()))
            }
            "pop" => {
                let (k, default): (Value, Option<Value>) = from_args(args)?;
                Ok(map.shift_remove(&k).or(default).unwrap_or(Value::from(())))
            }
            "get" => {
                let (k, default): (Value, Option<Value>) = from_args(args)?;
                Ok(map.get(&k).cloned().or(default).unwrap_or(Value::from(())))
            }
            "setdefault" => {
                let (k, default): (Value, Option<Value>) = from_args(args)?;
                Ok(map.entry(k).or_insert(make_mutable(default.unwrap_or(Value::from(())))?).clone())
            }
            "keys" => Ok(Value::from(map.keys().cloned().collect::<Vec<_>>())),
            "values" => Ok(Value::from(map.values().cloned().collect::<Vec<_>>())),
            "items" => Ok(Value::from(map.iter().map(|(k, v)| Value::from(vec![k.clone(), v.clone()])).collect::<Vec<_>>())),
            "copy" => Ok(Value::from_iter(map.iter().map(|(k, v)| (k.clone(), v.clone())))),
            "clear" => {
                map.clear();
                Ok(Value::from(()))
            }
            _ => Err(Error::new(ErrorKind::UnknownMethod, format!("dict has no method '{method}'"))),
        }
    }
}

fn is_dp_object(v: &Value) -> bool {
    use super::{column::Column, db, modules};
    let Some(o) = v.as_object() else { return false };
    o.downcast_ref::<Relation>().is_some()
        || o.downcast_ref::<Column>().is_some()
        || o.downcast_ref::<MutList>().is_some()
        || o.downcast_ref::<MutMap>().is_some()
        || o.downcast_ref::<ConfigObj>().is_some()
        || o.downcast_ref::<RenderCtx>().is_some()
        || o.downcast_ref::<modules::PyDateTime>().is_some()
        || o.downcast_ref::<modules::PyDate>().is_some()
        || o.downcast_ref::<modules::PyTimeDelta>().is_some()
        || o.downcast_ref::<modules::PyTz>().is_some()
        || o.downcast_ref::<db::AgateTable>().is_some()
        || o.downcast_ref::<db::AgateRow>().is_some()
        || o.downcast_ref::<db::AgateColumn>().is_some()
        || o.downcast_ref::<db::AgateColumns>().is_some()
}

/// Wraps a list or dict literal so Jinja code can mutate it.
pub fn make_mutable(v: Value) -> Result<Value, Error> {
    // Only plain list/dict values: dp's objects (relations, columns, ...) stay as they are.
    if is_dp_object(&v) {
        return Ok(v);
    }
    match v.kind() {
        minijinja::value::ValueKind::Seq => Ok(Value::from_object(MutList(Mutex::new(v.try_iter()?.map(make_mutable).collect::<Result<_, _>>()?)))),
        minijinja::value::ValueKind::Map => {
            let mut m = IndexMap::new();
            for k in v.try_iter()? {
                let val = v.get_item(&k)?;
                m.insert(k, make_mutable(val)?);
            }
            Ok(Value::from_object(MutMap(Mutex::new(m))))
        }
        _ => Ok(v),
    }
}

/// Renders an identifier the way `adapter.quote` does.
pub fn quote(ident: &str) -> String {
    crate::util::ident::force_quote(ident)
}
