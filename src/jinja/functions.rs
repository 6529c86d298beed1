//! The dbt context functions: `ref`, `source`, `var`, `env_var`,
//! `is_incremental`, `return`, `log`, `print`, `exceptions`, `adapter`,
//! `tojson`/`fromjson`/`toyaml`/`fromyaml`, `zip`, `set`, `local_md5`, ...

use indexmap::IndexMap;
use minijinja::value::{Kwargs, Rest, Value, from_args};
use minijinja::{Environment, Error, ErrorKind, State};
use std::sync::Arc;

use super::adapter::Adapter;
use super::objects::{Phase, Relation, RenderCtx, make_mutable};
use super::refs::RefCall;
use super::{EnvInputs, MacroTable, Slots, db, modules};

fn zip_of(seqs: &[Value]) -> Result<Value, Error> {
    let lists: Vec<Vec<Value>> = seqs.iter().map(|s| s.try_iter().map(|i| i.collect())).collect::<Result<_, _>>()?;
    let n = lists.iter().map(Vec::len).min().unwrap_or(0);
    Ok(Value::from((0..n).map(|i| Value::from(lists.iter().map(|l| l[i].clone()).collect::<Vec<_>>())).collect::<Vec<_>>()))
}

/// The distinct items of `seq`, in first-seen order (a Python set, shown as a list).
/// Python's `set(seq)`: the distinct values, sorted. A Python set has no
/// order of its own (string hashes change from run to run), so sorting
/// loses nothing, and it makes two sets of the same values compare equal
/// whatever order they were built in (dbt_utils' `equality` compares the
/// column sets of two relations with `!=`).
fn set_of(seq: &Value) -> Result<Value, Error> {
    let mut out: Vec<Value> = seq.try_iter()?.collect();
    out.sort();
    out.dedup();
    Ok(Value::from(out))
}

fn err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

pub(super) fn register(env: &mut Environment<'static>, inputs: &EnvInputs, table: Arc<MacroTable>, slots: &Slots) {
    env.add_function("ref", ref_fn);
    env.add_function("source", source_fn);

    let vars = Arc::new(VarScope { root: inputs.root_package.clone(), vars: inputs.vars.clone(), packages: inputs.package_vars.clone() });
    {
        let vars = vars.clone();
        env.add_function("var", move |state: &State, name: String, default: Option<Value>| -> Result<Value, Error> {
            let rctx = RenderCtx::from_state(state);
            if let Some(v) = rctx.as_ref().and_then(|r| r.var_overrides.get(&name).cloned()) {
                return Ok(Value::from_serialize(&v));
            }
            match vars.lookup(rctx.as_ref().map(|r| r.package.as_str()), &name) {
                // Strings with Jinja are rendered when read, as dbt's
                // `get_rendered_var` does (`max_depth: "{{ 4 if ... }}"`).
                Some(serde_json::Value::String(s)) if s.contains("{{") || s.contains("{%") => {
                    let ctx = rctx.as_ref().map(|r| r.context()).unwrap_or_else(|| minijinja::context! {});
                    state.env().render_str(s, ctx).map(Value::from)
                }
                Some(v) => Ok(Value::from_serialize(v)),
                None => match default {
                    Some(d) => Ok(d),
                    None => {
                        let who = rctx.map(|r| r.node_id.clone()).unwrap_or_default();
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
        let rctx = RenderCtx::from_state(state);
        if let Some(v) = rctx.as_ref().and_then(|r| r.env_overrides.get(&name).cloned()) {
            return Ok(Value::from(v));
        }
        if name.starts_with(SECRET_PREFIX) {
            let at = rctx.as_ref().map(|r| r.node_id.clone()).unwrap_or_else(|| "the project".into());
            return Err(err(format!(
                "Secret env vars are allowed only in profiles.yml or packages.yml. Found '{name}' referenced in {at}\n  hint: read secrets in the target's settings (warehouse.toml `${{VAR}}`), not in models, macros or dbt_project.yml"
            )));
        }
        match envf(&name) {
            Some(v) => Ok(Value::from(v)),
            None => default.filter(|d| !d.is_none()).ok_or_else(|| {
                err(format!("Env var required but not provided: '{name}'\n  hint: export {name}=... or give env_var('{name}', 'default') a default"))
            }),
        }
    });
    env.add_function("is_incremental", |state: &State| -> Value { Value::from(RenderCtx::from_state(state).is_some_and(|r| r.is_incremental)) });
    env.add_function("return", |v: Option<Value>| -> Result<Value, Error> { Err(super::return_error(v.unwrap_or(Value::from(())))) });
    let log_sink = slots.log.clone();
    env.add_function("log", move |msg: Value, kwargs: Kwargs| -> Result<Value, Error> {
        let info: Option<bool> = kwargs.get("info")?;
        let sink = log_sink.read().unwrap().clone();
        if let (true, Some(sink)) = (info.unwrap_or(false), sink) {
            sink(&msg.to_string());
        } else if info.unwrap_or(false) {
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
    // Jinja's `list` filter gives a new Python list, which `append`/`pop` change.
    env.add_filter("list", |v: Value| -> Result<Value, Error> {
        let items: Vec<Value> = match v.as_str() {
            Some(s) => s.chars().map(|c| Value::from(c.to_string())).collect(),
            None => v.try_iter()?.collect(),
        };
        Ok(Value::from_object(super::objects::MutList(std::sync::Mutex::new(items))))
    });
    env.add_function("tojson", |v: Value, kwargs: Kwargs| -> Result<Value, Error> {
        let sort: Option<bool> = kwargs.get("sort_keys")?;
        let json = serde_json::to_value(&v).map_err(|e| err(format!("tojson: {e}")))?;
        Ok(Value::from(crate::util::pyjson::dumps(&json, sort.unwrap_or(false))))
    });
    // Jinja2's `tojson` filter: sorted keys, Python separators, HTML-safe.
    env.add_filter("tojson", |v: Value, _indent: Option<Value>| -> Result<Value, Error> {
        let json = serde_json::to_value(&v).map_err(|e| err(format!("tojson: {e}")))?;
        let s = crate::util::pyjson::dumps(&json, true).replace('<', "\\u003c").replace('>', "\\u003e").replace('&', "\\u0026").replace('\'', "\\u0027");
        Ok(Value::from_safe_string(s))
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
    // dbt's `zip`/`set` return `default` (None) when an argument is not
    // iterable; `zip_strict`/`set_strict` raise.
    env.add_function("zip", |seqs: Rest<Value>| -> Value { zip_of(&seqs).unwrap_or(Value::from(())) });
    env.add_function("zip_strict", |seqs: Rest<Value>| -> Result<Value, Error> { zip_of(&seqs) });
    env.add_function("set", |seq: Value| -> Value { set_of(&seq).unwrap_or(Value::from(())) });
    env.add_function("set_strict", |seq: Value| -> Result<Value, Error> { set_of(&seq) });
    env.add_function("local_md5", |s: String| -> Value { Value::from(format!("{:x}", md5::compute(s.as_bytes()))) });
    {
        let (db, loose) = (slots.db.clone(), slots.loose.clone());
        env.add_function("run_query", move |state: &State, sql: Value| -> Result<Value, Error> { db::run_query(&db, &loose, state, &sql.to_string()) });
    }
    {
        let loose = slots.loose.clone();
        env.add_function("load_result", move |state: &State, name: String| -> Value { db::load_result(&loose, state, &name) });
    }
    env.add_global("statement", Value::from_object(db::Statement { db: slots.db.clone(), loose: slots.loose.clone() }));
    {
        let loose = slots.loose.clone();
        env.add_function("store_result", move |state: &State, name: String, kwargs: Kwargs| -> Result<Value, Error> {
            let response: Option<Value> = kwargs.get("response")?;
            let table: Option<Value> = kwargs.get("agate_table")?;
            let mut m: IndexMap<&str, Value> = IndexMap::new();
            m.insert("response", response.unwrap_or_default());
            m.insert("data", Value::from(Vec::<Value>::new()));
            m.insert("table", table.unwrap_or_default());
            store_loose(state, &loose, &name, Value::from_iter(m));
            Ok(Value::from(""))
        });
    }
    {
        let loose = slots.loose.clone();
        env.add_function("store_raw_result", move |state: &State, name: String, kwargs: Kwargs| -> Result<Value, Error> {
            let mut m: IndexMap<String, Value> = IndexMap::new();
            for k in ["message", "code", "rows_affected", "agate_table"] {
                m.insert(k.to_string(), kwargs.get::<Option<Value>>(k)?.unwrap_or_default());
            }
            store_loose(state, &loose, &name, Value::from_iter(m));
            Ok(Value::from(""))
        });
    }
    env.add_function("diff_of_two_dicts", |a: Value, b: Value| -> Result<Value, Error> {
        // Keys of `a` whose values (case-insensitively) are missing from `b`.
        let mut out: IndexMap<String, Value> = IndexMap::new();
        for k in a.try_iter()? {
            let av = a.get_item(&k)?;
            let bv = b.get_item(&k).unwrap_or_default();
            let lower = |v: &Value| -> Vec<String> { v.try_iter().map(|i| i.map(|x| x.to_string().to_lowercase()).collect()).unwrap_or_default() };
            let bl = lower(&bv);
            let missing: Vec<Value> = av.try_iter()?.filter(|x| !bl.contains(&x.to_string().to_lowercase())).collect();
            if !missing.is_empty() {
                out.insert(k.to_string(), Value::from(missing));
            }
        }
        Ok(Value::from_iter(out))
    });
    env.add_function("try_or_compiler_error", |state: &State, message: String, func: Value, args: Rest<Value>| -> Result<Value, Error> {
        func.call(state, &args).map_err(|_| err(format!("Compilation Error: {message}")))
    });
    env.add_function("render", |state: &State, s: String| -> Result<Value, Error> {
        let ctx = RenderCtx::from_state(state).map(|r| r.context()).unwrap_or_else(|| minijinja::context! {});
        state.env().render_str(&s, ctx).map(Value::from)
    });
    // Jinja2's `round(precision=0, method='common'|'ceil'|'floor')`
    // (minijinja's takes no method); the result stays a float.
    env.add_filter("round", |v: f64, precision: Option<i32>, method: Option<String>| -> Result<Value, Error> {
        let m = 10f64.powi(precision.unwrap_or(0));
        let x = v * m;
        let r = match method.as_deref().unwrap_or("common") {
            "common" => x.round(),
            "ceil" => x.ceil(),
            "floor" => x.floor(),
            other => return Err(err(format!("round: method must be 'common', 'ceil' or 'floor', got '{other}'"))),
        };
        Ok(Value::from(r / m))
    });
    env.add_function("__dp_dtop", modules::dt_op);
    for f in ["as_bool", "as_number", "as_text", "as_native"] {
        env.add_filter(f, |v: Value| v);
    }

    // exceptions.*
    let mut exc: IndexMap<&str, Value> = IndexMap::new();
    exc.insert(
        "raise_compiler_error",
        Value::from_function(|msg: Value, _node: Option<Value>| -> Result<Value, Error> { Err(err(format!("Compilation Error: {msg}"))) }),
    );
    exc.insert("raise_not_implemented", Value::from_function(|msg: Value| -> Result<Value, Error> { Err(err(format!("Not implemented: {msg}"))) }));
    exc.insert("raise_database_error", Value::from_function(|msg: Value| -> Result<Value, Error> { Err(err(format!("Database Error: {msg}"))) }));
    exc.insert(
        "raise_fail_fast_error",
        Value::from_function(|msg: Value, _node: Option<Value>| -> Result<Value, Error> {
            Err(err(format!("Failing early due to test failure or runtime error: {msg}")))
        }),
    );
    exc.insert(
        "warn",
        Value::from_function(|msg: Value, _node: Option<Value>| -> Value {
            tracing::warn!(target: "dp::jinja", "{msg}");
            Value::from("")
        }),
    );
    for name in ["column_type_missing", "relation_wrong_type", "raise_dep_not_found", "raise_dependency_error", "raise_contract_error"] {
        exc.insert(
            name,
            Value::from_function(move |args: Rest<Value>| -> Result<Value, Error> {
                Err(err(format!("Compilation Error: {name}({})", args.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", "))))
            }),
        );
    }
    env.add_global("exceptions", Value::from_iter(exc));

    env.add_global("modules", modules::modules());
    env.add_global("target", Value::from_serialize(&inputs.target));
    env.add_global("flags", Value::from_serialize(&inputs.flags));
    env.add_global("invocation_id", Value::from(inputs.invocation_id.clone()));
    env.add_global("run_started_at", Value::from_object(modules::PyDateTime::from_utc(inputs.run_started_at)));
    env.add_global("project_name", Value::from(inputs.root_package.clone()));
    env.add_global("dbt_version", Value::from(crate::util::dbt_version::DBT_VERSION));
    env.add_global("graph", Value::from_dyn_object(slots.graph.clone()));
    env.add_global("selected_resources", Value::from_dyn_object(slots.selected.clone()));
    {
        let docs = slots.docs.clone();
        env.add_function("doc", move |state: &State, a: String, b: Option<String>| -> Result<Value, Error> {
            let (pkg, name) = match b {
                Some(n) => (Some(a), n),
                None => (None, a),
            };
            let docs = docs.read().unwrap();
            let found = match &pkg {
                Some(p) => docs.get(&format!("{p}.{name}")),
                None => {
                    let own = RenderCtx::from_state(state).map(|r| r.package.clone());
                    own.and_then(|p| docs.get(&format!("{p}.{name}")))
                        .or_else(|| docs.iter().find(|(k, _)| k.rsplit('.').next() == Some(name.as_str())).map(|(_, v)| v))
                }
            };
            found.cloned().map(Value::from).ok_or_else(|| {
                err(format!("Documentation for '{name}' not found\n  hint: define it in a {{% docs {name} %}} block in a .md file under the model paths"))
            })
        });
    }
    let mut rel_api: IndexMap<&str, Value> = IndexMap::new();
    // dbt's `api.Relation` quotes as the project's `quoting:` says
    let quoting = inputs.quoting;
    rel_api.insert(
        "create",
        Value::from_function(move |kwargs: Kwargs| -> Result<Value, Error> {
            let database: Option<String> = kwargs.get("database")?;
            let schema: Option<String> = kwargs.get("schema")?;
            let identifier: Option<String> = kwargs.get("identifier")?;
            let kind: Option<String> = kwargs.get("type")?;
            let policy = |k: &str| -> Result<Option<serde_json::Value>, Error> {
                Ok(kwargs.get::<Option<Value>>(k)?.map(|v| serde_json::to_value(&v).unwrap_or_default()))
            };
            let (quote, include) = (policy("quote_policy")?, policy("include_policy")?);
            let mut r = Relation::new(&database.unwrap_or_default(), &schema.unwrap_or_default(), &identifier.unwrap_or_default());
            r.kind = kind;
            r.quoting = quoting.merged(quote.as_ref());
            r.include = r.include.merged(include.as_ref());
            Ok(Value::from_object(r))
        }),
    );
    rel_api.insert("add_ephemeral_prefix", Value::from_function(|name: String| -> Value { Value::from(format!("__dbt__cte__{name}")) }));
    let mut api = IndexMap::new();
    api.insert("Relation", Value::from_iter(rel_api));
    api.insert("Column", super::column::column_api());
    env.add_global("api", Value::from_iter(api));
    let adapter = Value::from_object(Adapter { table, db: slots.db.clone() });
    env.add_global("adapter", adapter.clone());
    // dbt's context shortcut for `adapter.load_relation`.
    env.add_function("load_relation", move |state: &State, rel: Value| -> Result<Value, Error> { adapter.call_method(state, "load_relation", &[rel]) });

    // `builtins`: the original ref/source/config, for projects that override them.
    let mut builtins: IndexMap<&str, Value> = IndexMap::new();
    builtins.insert("ref", Value::from_function(ref_fn));
    builtins.insert("source", Value::from_function(source_fn));
    builtins.insert(
        "config",
        Value::from_function(|state: &State, args: Rest<Value>| -> Result<Value, Error> {
            match state.lookup("config") {
                Some(c) => c.call(state, &args),
                None => Ok(Value::from("")),
            }
        }),
    );
    env.add_global("builtins", Value::from_iter(builtins));

    // Names of dbt's context that dp does not provide: fail by name.
    for name in UNSUPPORTED {
        env.add_function(*name, move |_args: Rest<Value>| -> Result<Value, Error> {
            Err(err(format!("'{name}' is part of dbt's Jinja context but is not supported by dp\n  hint: dp has no equivalent; remove the call")))
        });
    }
}

/// dbt context names dp does not implement; calling one says so by name.
pub const UNSUPPORTED: &[&str] = &["submit_python_job", "write", "load_agate_table", "metric", "get_rendered", "generate_runtime_model_context"];

/// The `DBT_ENV_SECRET_` prefix of variables dbt keeps out of models.
pub const SECRET_PREFIX: &str = "DBT_ENV_SECRET_";

fn store_loose(state: &State, loose: &db::Results, name: &str, v: Value) {
    match RenderCtx::from_state(state) {
        Some(r) => {
            r.results.0.lock().unwrap().insert(name.to_string(), v);
        }
        None => {
            loose.0.lock().unwrap().insert(name.to_string(), v);
        }
    }
}

/// `var()` lookup in dbt's order: for a node of package P, P's own
/// dbt_project.yml vars (global, then its `P:` scope), overridden by the root
/// project's global vars, then the root's `P:` scope (and `--vars` on top,
/// already merged into the root's).
#[derive(Debug)]
pub(super) struct VarScope {
    pub root: String,
    pub vars: IndexMap<String, serde_json::Value>,
    pub packages: IndexMap<String, IndexMap<String, serde_json::Value>>,
}

impl VarScope {
    fn lookup(&self, package: Option<&str>, name: &str) -> Option<&serde_json::Value> {
        fn scoped<'a>(m: &'a IndexMap<String, serde_json::Value>, p: &str, name: &str) -> Option<&'a serde_json::Value> {
            m.get(p).and_then(|v| v.as_object()).and_then(|o| o.get(name))
        }
        match package {
            Some(p) if p != self.root => scoped(&self.vars, p, name)
                .or_else(|| self.vars.get(name))
                .or_else(|| self.packages.get(p).and_then(|pv| scoped(pv, p, name).or_else(|| pv.get(name)))),
            _ => self.vars.get(name),
        }
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
            let rel = resolver.resolve_ref(&rctx.package, &call).map_err(err)?;
            let mut cap = rctx.captured.lock().unwrap();
            if !cap.refs.contains(&call) {
                cap.refs.push(call);
            }
            Ok(Value::from_object(rel))
        }
        _ => {
            // dbt's parse records every call, repeats too (`refs` in the manifest)
            rctx.captured.lock().unwrap().refs.push(call.clone());
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
            rctx.captured.lock().unwrap().sources.push((source.clone(), table.clone()));
            Ok(Value::from_object(Relation::new("", &source, &table)))
        }
    }
}
