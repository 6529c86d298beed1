//! The dbt context functions: `ref`, `source`, `var`, `env_var`,
//! `is_incremental`, `return`, `log`, `print`, `exceptions`, `adapter`,
//! `tojson`/`fromjson`/`toyaml`/`fromyaml`, `zip`, `set`, `local_md5`, ...

use indexmap::IndexMap;
use minijinja::value::{Kwargs, Object, Rest, Value, from_args};
use minijinja::{Environment, Error, ErrorKind, State};
use std::sync::Arc;

use super::objects::{Phase, Relation, RenderCtx, make_mutable, quote};
use super::refs::RefCall;
use super::{EnvInputs, MacroTable, modules};

fn err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

pub(super) fn register(env: &mut Environment<'static>, inputs: &EnvInputs, table: Arc<MacroTable>) {
    env.add_function("ref", ref_fn);
    env.add_function("source", source_fn);

    let vars = Arc::new(inputs.vars.clone());
    {
        let vars = vars.clone();
        env.add_function("var", move |state: &State, name: String, default: Option<Value>| -> Result<Value, Error> {
            if let Some(v) = RenderCtx::from_state(state).and_then(|r| r.var_overrides.get(&name).cloned()) {
                return Ok(Value::from_serialize(&v));
            }
            match vars.get(&name) {
                Some(v) => Ok(Value::from_serialize(v)),
                None => match default {
                    Some(d) => Ok(d),
                    None => {
                        let who = RenderCtx::from_state(state).map(|r| r.node_id.clone()).unwrap_or_default();
                        Err(err(format!(
                            "required var '{name}' is not defined{}\n  hint: set it under [vars] in warehouse.toml or vars: in dbt_project.yml, or pass --vars '{{{name}: ...}}'",
                            if who.is_empty() { String::new() } else { format!(" (used by {who})") }
                        )))
                    }
                },
            }
        });
    }
    let envf = inputs.env.clone();
    env.add_function("env_var", move |state: &State, name: String, default: Option<Value>| -> Result<Value, Error> {
        if let Some(v) = RenderCtx::from_state(state).and_then(|r| r.env_overrides.get(&name).cloned()) {
            return Ok(Value::from(v));
        }
        match envf(&name) {
            Some(v) => Ok(Value::from(v)),
            None => default.ok_or_else(|| {
                err(format!("env var required but not provided: '{name}'\n  hint: export {name}=... or give env_var('{name}', 'default') a default"))
            }),
        }
    });
    env.add_function("is_incremental", |state: &State| -> Value { Value::from(RenderCtx::from_state(state).is_some_and(|r| r.is_incremental)) });
    env.add_function("return", |v: Option<Value>| -> Result<Value, Error> { Err(super::return_error(v.unwrap_or(Value::from(())))) });
    env.add_function("log", |msg: Value, kwargs: Kwargs| -> Result<Value, Error> {
        let info: Option<bool> = kwargs.get("info")?;
        if info.unwrap_or(false) {
            tracing::info!(target: "dp::jinja", "{msg}");
        } else {
            tracing::debug!(target: "dp::jinja", "{msg}");
        }
        Ok(Value::from(""))
    });
    env.add_function("print", |msg: Value| -> Value {
        eprintln!("{msg}");
        Value::from("")
    });
    env.add_function("__dp_mut", make_mutable);
    env.add_function("tojson", |v: Value, kwargs: Kwargs| -> Result<Value, Error> {
        let sort: Option<bool> = kwargs.get("sort_keys")?;
        let mut json = serde_json::to_value(&v).map_err(|e| err(format!("tojson: {e}")))?;
        if sort.unwrap_or(false) {
            json = sort_json(json);
        }
        Ok(Value::from(serde_json::to_string(&json).unwrap_or_default()))
    });
    env.add_function("fromjson", |s: String, default: Option<Value>| -> Result<Value, Error> {
        match serde_json::from_str::<serde_json::Value>(&s) {
            Ok(v) => Ok(Value::from_serialize(&v)),
            Err(e) => default.ok_or_else(|| err(format!("fromjson: {e}"))),
        }
    });
    env.add_function("toyaml", |v: Value| -> Result<Value, Error> { serde_yaml_ng::to_string(&v).map(Value::from).map_err(|e| err(format!("toyaml: {e}"))) });
    env.add_function("fromyaml", |s: String, default: Option<Value>| -> Result<Value, Error> {
        match serde_yaml_ng::from_str::<serde_json::Value>(&s) {
            Ok(v) => Ok(Value::from_serialize(&v)),
            Err(e) => default.ok_or_else(|| err(format!("fromyaml: {e}"))),
        }
    });
    env.add_function("zip", |seqs: Rest<Value>| -> Result<Value, Error> {
        let lists: Vec<Vec<Value>> = seqs.iter().map(|s| s.try_iter().map(|i| i.collect())).collect::<Result<_, _>>()?;
        let n = lists.iter().map(Vec::len).min().unwrap_or(0);
        Ok(Value::from((0..n).map(|i| Value::from(lists.iter().map(|l| l[i].clone()).collect::<Vec<_>>())).collect::<Vec<_>>()))
    });
    env.add_function("set", |seq: Value| -> Result<Value, Error> {
        let mut out: Vec<Value> = vec![];
        for v in seq.try_iter()? {
            if !out.contains(&v) {
                out.push(v);
            }
        }
        Ok(Value::from(out))
    });
    env.add_function("local_md5", |s: String| -> Value { Value::from(format!("{:x}", md5::compute(s.as_bytes()))) });
    env.add_function("run_query", |state: &State, _sql: Value| -> Result<Value, Error> {
        match RenderCtx::from_state(state).map(|r| r.phase) {
            Some(Phase::Compile) => Err(err("run_query() is not supported by dp yet: macros that query the warehouse while compiling cannot run")),
            _ => Ok(Value::from(())),
        }
    });
    for f in ["as_bool", "as_number", "as_text", "as_native"] {
        env.add_filter(f, |v: Value| v);
    }

    // exceptions.*
    let mut exc: IndexMap<&str, Value> = IndexMap::new();
    exc.insert("raise_compiler_error", Value::from_function(|msg: Value| -> Result<Value, Error> { Err(err(format!("Compilation Error: {msg}"))) }));
    exc.insert("raise_not_implemented", Value::from_function(|msg: Value| -> Result<Value, Error> { Err(err(format!("Not implemented: {msg}"))) }));
    exc.insert(
        "warn",
        Value::from_function(|msg: Value| -> Value {
            tracing::warn!(target: "dp::jinja", "{msg}");
            Value::from("")
        }),
    );
    env.add_global("exceptions", Value::from_iter(exc));

    env.add_global("modules", modules::modules());
    env.add_global("target", Value::from_serialize(&inputs.target));
    env.add_global("flags", Value::from_serialize(&inputs.flags));
    env.add_global("invocation_id", Value::from(inputs.invocation_id.clone()));
    env.add_global("run_started_at", Value::from_object(modules::PyDateTime::from_utc(inputs.run_started_at)));
    env.add_global("project_name", Value::from(inputs.root_package.clone()));
    env.add_global("dbt_version", Value::from("1.11.0"));
    let mut graph = IndexMap::new();
    for k in ["nodes", "sources", "exposures", "metrics", "groups", "semantic_models", "saved_queries"] {
        graph.insert(k, Value::from_iter(IndexMap::<String, Value>::new()));
    }
    env.add_global("graph", Value::from_iter(graph));
    let mut rel_api: IndexMap<&str, Value> = IndexMap::new();
    rel_api.insert(
        "create",
        Value::from_function(|kwargs: Kwargs| -> Result<Value, Error> {
            let database: Option<String> = kwargs.get("database")?;
            let schema: Option<String> = kwargs.get("schema")?;
            let identifier: Option<String> = kwargs.get("identifier")?;
            let _ = kwargs.get::<Option<Value>>("type")?;
            Ok(Value::from_object(Relation::new(&database.unwrap_or_default(), &schema.unwrap_or_default(), &identifier.unwrap_or_default())))
        }),
    );
    let mut api = IndexMap::new();
    api.insert("Relation", Value::from_iter(rel_api));
    env.add_global("api", Value::from_iter(api));
    env.add_global("adapter", Value::from_object(Adapter { table }));
}

fn sort_json(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => {
            let mut items: Vec<_> = m.into_iter().collect();
            items.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(items.into_iter().map(|(k, v)| (k, sort_json(v))).collect())
        }
        serde_json::Value::Array(a) => serde_json::Value::Array(a.into_iter().map(sort_json).collect()),
        other => other,
    }
}

fn ref_fn(state: &State, args: Rest<Value>) -> Result<Value, Error> {
    let (pos, kwargs): (&[Value], Kwargs) = from_args(&args)?;
    let version = kwargs.get::<Option<Value>>("v")?.or(kwargs.get::<Option<Value>>("version")?).map(|v| v.to_string());
    let strs: Vec<String> = pos.iter().map(|v| v.to_string()).collect();
    let call = match strs.as_slice() {
        [name] => RefCall { name: name.clone(), package: None, version },
        [pkg, name] => RefCall { name: name.clone(), package: Some(pkg.clone()), version },
        _ => return Err(err(format!("ref() takes 1 or 2 arguments (got {})", strs.len()))),
    };
    let Some(rctx) = RenderCtx::from_state(state) else {
        return Ok(Value::from_object(Relation::new("", "", &call.name)));
    };
    match (rctx.phase, &rctx.resolver) {
        (Phase::Compile, Some(resolver)) => {
            let rel = resolver.resolve_ref(&rctx.node_id, &call).map_err(err)?;
            let mut cap = rctx.captured.lock().unwrap();
            if !cap.refs.contains(&call) {
                cap.refs.push(call);
            }
            Ok(Value::from_object(rel))
        }
        _ => {
            let mut cap = rctx.captured.lock().unwrap();
            if !cap.refs.contains(&call) {
                cap.refs.push(call.clone());
            }
            Ok(Value::from_object(Relation::new("", "", &call.name)))
        }
    }
}

fn source_fn(state: &State, source: String, table: String) -> Result<Value, Error> {
    let Some(rctx) = RenderCtx::from_state(state) else {
        return Ok(Value::from_object(Relation::new("", &source, &table)));
    };
    match (rctx.phase, &rctx.resolver) {
        (Phase::Compile, Some(resolver)) => {
            let rel = resolver.resolve_source(&rctx.node_id, &source, &table).map_err(err)?;
            Ok(Value::from_object(rel))
        }
        _ => {
            let mut cap = rctx.captured.lock().unwrap();
            let pair = (source.clone(), table.clone());
            if !cap.sources.contains(&pair) {
                cap.sources.push(pair);
            }
            Ok(Value::from_object(Relation::new("", &source, &table)))
        }
    }
}

/// The `adapter` object.
#[derive(Debug)]
struct Adapter {
    table: Arc<MacroTable>,
}

impl Object for Adapter {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "type" => Some(Value::from(super::ADAPTER_TYPE)),
            _ => None,
        }
    }

    fn call_method(self: &Arc<Self>, _state: &State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
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
            "type" => Ok(Value::from(super::ADAPTER_TYPE)),
            "get_relation" => {
                let (_, kwargs): (&[Value], Kwargs) = from_args(args)?;
                let _ = (kwargs.get::<Option<Value>>("database")?, kwargs.get::<Option<Value>>("schema")?, kwargs.get::<Option<Value>>("identifier")?);
                Ok(Value::from(()))
            }
            "get_columns_in_relation" => Ok(Value::from(Vec::<Value>::new())),
            "check_schema_exists" => Ok(Value::from(true)),
            _ => Err(Error::new(ErrorKind::UnknownMethod, format!("adapter has no method '{method}'"))),
        }
    }
}
