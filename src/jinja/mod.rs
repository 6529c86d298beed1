//! dbt's Jinja on minijinja: one [`JinjaEnv`] per command, built once, with
//! every macro of the project, its packages and dp's built-in `dbt` macros
//! registered as templates, and the dbt context functions as globals.
//!
//! Rendering a node gives it a [`RenderCtx`] (as `__dp` in the context) that
//! `ref`, `source`, `config` and `is_incremental` use. Macros are called
//! through [`MacroFn`], which evaluates the macro's own template with the
//! caller's root context and turns `{{ return(x) }}` into the call's value.
//!
//! Differences from Python Jinja that dbt code meets are bridged here:
//! `{% set xs = [] %}` / `{% set d = {} %}` literals become mutable so
//! `{% do xs.append(x) %}` works; Python string/dict methods come from
//! minijinja-contrib's pycompat.

mod adapter;
pub mod blocks;
pub mod column;
pub mod db;
mod functions;
pub mod modules;
pub mod objects;
pub mod refs;

pub use db::{ColumnInfo, Database, QueryResult};
pub use objects::{Captured, Phase, Relation, RenderCtx, Resolver};

use indexmap::IndexMap;
use minijinja::value::{Object, Value};
use minijinja::{Environment, Error, ErrorKind, State, UndefinedBehavior};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use crate::jinja::blocks::{find_blocks, parse_args};

/// The built-in `dbt` package: cross-database macros as DataFusion SQL,
/// and the default `generate_*_name` macros.
pub const BUILTIN_MACROS: &str = include_str!("builtins.sql");
pub const BUILTIN_PACKAGE: &str = "dbt";
pub const ADAPTER_TYPE: &str = "datafusion";
/// What `target.type` and `adapter.type()` say: dbt-duckdb's `duckdb`, as
/// dp runs DuckDB's SQL dialect. Packages branch on it to pick their SQL
/// and configs (dbt_project_evaluator's `materialized`, `column_types` and
/// ordered `listagg`); dispatch still finds `datafusion__` macros first
/// ([`ADAPTER_CHAIN`]).
pub const TARGET_TYPE: &str = "duckdb";
/// The dispatch prefixes, most specific first (see `MacroTable::dispatch`).
pub const ADAPTER_CHAIN: [&str; 3] = [ADAPTER_TYPE, "duckdb", "default"];

/// Prefix of template names that carry their own source (see `render_str`).
const INLINE: &str = "\u{0}inline:";

/// A macro to register: its package, name, file and full `{% macro %}` text.
#[derive(Debug, Clone)]
pub struct MacroSource {
    pub package: String,
    pub name: String,
    pub file: String,
    pub line: usize,
    pub text: String,
}

/// Reads an environment variable (a seam so tests need not set real ones).
pub type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// What the environment needs from the project and the invocation.
pub struct EnvInputs {
    pub root_package: String,
    pub packages: Vec<String>,
    pub macros: Vec<MacroSource>,
    pub target: serde_json::Value,
    pub vars: IndexMap<String, serde_json::Value>,
    /// Each package's own `vars:` (from its dbt_project.yml), by package.
    pub package_vars: IndexMap<String, IndexMap<String, serde_json::Value>>,
    pub env: EnvLookup,
    pub dispatch: Vec<crate::config::Dispatch>,
    pub invocation_id: String,
    pub run_started_at: chrono::DateTime<chrono::Utc>,
    pub flags: serde_json::Value,
    /// The project's `quoting:` (`api.Relation.create` quotes with it).
    pub quoting: crate::util::ident::Quoting,
}

/// An error while rendering, located in a file.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", self.render())]
pub struct RenderError {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
    pub source_line: Option<String>,
}

impl RenderError {
    fn render(&self) -> String {
        let mut s = match self.line {
            Some(l) => format!("{}:{}: {}", self.file, l, self.message),
            None => format!("{}: {}", self.file, self.message),
        };
        if let (Some(l), Some(text)) = (self.line, &self.source_line) {
            s.push_str(&format!("\n  {l:>4} | {}", text.trim_end()));
        }
        s
    }
}

/// A registered macro, callable from Jinja.
#[derive(Debug)]
pub struct MacroFn {
    pub package: String,
    pub name: String,
    pub template: String,
    pub file: String,
    /// The macro's parameters; when its body reads `kwargs` or `varargs`
    /// (Jinja2's catch-alls), arguments beyond them land there.
    pub params: Vec<String>,
    pub catch_kwargs: bool,
    pub catch_varargs: bool,
}

impl MacroFn {
    /// A unit test's override of this macro: keyed by its bare name, or by
    /// `package.name` (`audit_helper._get_comparison_bounds`), as dbt's
    /// `overrides: macros:` accepts both.
    fn overridden<'a>(&self, overrides: &'a IndexMap<String, Value>) -> Option<&'a Value> {
        if overrides.is_empty() {
            return None;
        }
        overrides
            .get(&self.name)
            .or_else(|| overrides.iter().find(|(k, _)| k.split_once('.').is_some_and(|(p, n)| p == self.package && n == self.name)).map(|(_, v)| v))
    }

    fn new(m: &MacroSource, template: String) -> MacroFn {
        let block = crate::jinja::blocks::find_blocks(&m.text, &["macro"]).ok().and_then(|b| b.into_iter().next());
        let params = macro_arguments(block.as_ref().and_then(|b| b.args.as_deref()));
        let body = block.map(|b| b.body).unwrap_or_default();
        let mentions = |w: &str| {
            body.match_indices(w).any(|(i, _)| {
                let before = body[..i].chars().next_back();
                let after = body[i + w.len()..].chars().next();
                !before.is_some_and(|c| c.is_alphanumeric() || c == '_') && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
            })
        };
        MacroFn {
            package: m.package.clone(),
            name: m.name.clone(),
            template,
            file: m.file.clone(),
            catch_kwargs: mentions("kwargs") && !params.iter().any(|p| p == "kwargs"),
            catch_varargs: mentions("varargs") && !params.iter().any(|p| p == "varargs"),
            params,
        }
    }

    /// Splits a call's arguments as Jinja2 does for a macro with catch-alls:
    /// (arguments for the parameters, `kwargs`, `varargs`).
    fn split(&self, args: &[Value]) -> (Vec<Value>, Option<Value>, Option<Value>) {
        if !self.catch_kwargs && !self.catch_varargs {
            return (args.to_vec(), None, None);
        }
        let (mut pos, kw) = match args.last().filter(|v| v.is_kwargs()) {
            Some(k) => (args[..args.len() - 1].to_vec(), minijinja::value::Kwargs::try_from(k.clone()).ok()),
            None => (args.to_vec(), None),
        };
        let varargs = if self.catch_varargs && pos.len() > self.params.len() { pos.split_off(self.params.len()) } else { vec![] };
        let mut known: Vec<(String, Value)> = vec![];
        let mut extra: IndexMap<String, Value> = IndexMap::new();
        if let Some(kw) = &kw {
            for k in kw.args() {
                let v: Value = kw.peek(k).unwrap_or_default();
                if self.catch_kwargs && !self.params.iter().any(|p| p == k) && k != "caller" {
                    extra.insert(k.to_string(), v);
                } else {
                    known.push((k.to_string(), v));
                }
            }
        }
        if !known.is_empty() {
            pos.push(Value::from(minijinja::value::Kwargs::from_iter(known)));
        }
        (pos, self.catch_kwargs.then(|| Value::from_iter(extra)), self.catch_varargs.then(|| Value::from(varargs)))
    }
}

thread_local! {
    static RETURN_SLOT: RefCell<Option<Value>> = const { RefCell::new(None) };
}

const RETURN_MARKER: &str = "__dp_return__";

pub(crate) fn return_error(v: Value) -> Error {
    RETURN_SLOT.with(|s| *s.borrow_mut() = Some(v));
    Error::new(ErrorKind::InvalidOperation, RETURN_MARKER)
}

fn is_return(e: &Error) -> bool {
    e.detail() == Some(RETURN_MARKER)
}

impl Object for MacroFn {
    fn call(self: &Arc<Self>, state: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let rctx = RenderCtx::from_state(state);
        if let Some(r) = &rctx {
            if let Some(v) = self.overridden(&r.overrides) {
                return Ok(v.clone());
            }
            if self.name == "is_incremental" {
                return Ok(Value::from(r.is_incremental));
            }
        }
        let ctx = match &rctx {
            Some(r) => r.context(),
            None => Value::from(()),
        };
        let guard = CallerGuard::default();
        let args: Vec<Value> = args.iter().map(|a| prepare_arg(a, state, &guard)).collect();
        let (args, kwargs, varargs) = self.split(&args);
        let ctx = match (kwargs, varargs) {
            (None, None) => ctx,
            (k, v) => minijinja::context! { kwargs => k, varargs => v, ..ctx },
        };
        let tmpl = state.env().get_template(&self.template)?;
        #[allow(deprecated)]
        let st = tmpl.eval_to_state(ctx)?;
        let m =
            st.lookup(&self.name).ok_or_else(|| Error::new(ErrorKind::UnknownFunction, format!("macro '{}' is not defined in {}", self.name, self.file)))?;
        let result = m.call(&st, &args);
        guard.close();
        match result {
            Ok(v) => Ok(v),
            Err(e) if is_return(&e) => Ok(RETURN_SLOT.with(|s| s.borrow_mut().take()).unwrap_or(Value::from(()))),
            Err(e) => Err(e),
        }
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<macro {}.{}>", self.package, self.name)
    }
}

/// Marks the calling state as gone once a macro call returns.
#[derive(Default, Clone)]
struct CallerGuard(Arc<std::sync::atomic::AtomicBool>);

impl CallerGuard {
    fn close(&self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    fn closed(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A `caller` macro bound to the state that defined it.
struct BoundCaller {
    inner: Value,
    state: *const (),
    guard: CallerGuard,
}

// SAFETY: the pointer is only dereferenced while `guard` is open, i.e.
// during the macro call whose caller state is alive on the same thread.
unsafe impl Send for BoundCaller {}
unsafe impl Sync for BoundCaller {}

impl std::fmt::Debug for BoundCaller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<caller>")
    }
}

impl Object for BoundCaller {
    fn call(self: &Arc<Self>, _state: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        if self.guard.closed() {
            return Err(Error::new(ErrorKind::InvalidOperation, "caller() used after its {% call %} block ended"));
        }
        // SAFETY: see the Send/Sync note above.
        let state: &State<'_, '_> = unsafe { &*(self.state as *const State<'_, '_>) };
        self.inner.call(state, args)
    }
}

/// One argument as the macro receives it:
/// - `caller` (from `{% call %}`) belongs to the calling template's state;
///   it is bound to that state so the macro can call it back through it;
/// - an argument passed explicitly as undefined (`x if cond` without an
///   `else`) stays falsy and renders empty in Jinja2, where minijinja would
///   give the parameter its default (`none`, which renders "None"): pass ''.
fn prepare_arg(v: &Value, state: &State<'_, '_>, guard: &CallerGuard) -> Value {
    if v.is_undefined() {
        return Value::from("");
    }
    if v.is_kwargs()
        && let Ok(kw) = minijinja::value::Kwargs::try_from(v.clone())
        && (kw.has("caller") || kw.args().any(|k| kw.peek::<Value>(k).is_ok_and(|x| x.is_undefined())))
    {
        let pairs: Vec<(String, Value)> = kw
            .args()
            .map(|k| {
                let val: Value = kw.peek(k).unwrap_or_default();
                let val = match k {
                    "caller" => Value::from_object(BoundCaller { inner: val, state: state as *const State<'_, '_> as *const (), guard: guard.clone() }),
                    _ if val.is_undefined() => Value::from(""),
                    _ => val,
                };
                (k.to_string(), val)
            })
            .collect();
        return Value::from(minijinja::value::Kwargs::from_iter(pairs));
    }
    v.clone()
}

/// Every macro by package and name, and the dispatch search orders.
#[derive(Debug, Default)]
pub struct MacroTable {
    pub root: String,
    pub by_package: HashMap<String, IndexMap<String, Arc<MacroFn>>>,
    pub dispatch: HashMap<String, Vec<String>>,
    pub packages: Vec<String>,
}

impl MacroTable {
    pub fn get(&self, package: &str, name: &str) -> Option<&Arc<MacroFn>> {
        self.by_package.get(package).and_then(|m| m.get(name))
    }

    /// The packages an unqualified macro name is looked up in, in order:
    /// the root project, dbt's built-ins, then the other packages.
    pub fn unqualified_order(&self) -> Vec<String> {
        let mut order = vec![self.root.clone(), BUILTIN_PACKAGE.to_string()];
        order.extend(self.packages.iter().filter(|p| **p != self.root).cloned());
        order
    }

    /// dbt's `adapter.dispatch` search: for each package in the search
    /// order, `datafusion__<name>`, `duckdb__<name>`, then `default__<name>`.
    /// dp's SQL is DuckDB's dialect where DataFusion allows (and its UDFs
    /// fill the gaps), so `duckdb__` implementations are the parent of
    /// dp's, as `postgres__` is redshift's in dbt.
    pub fn dispatch(&self, name: &str, namespace: Option<&str>) -> Result<Arc<MacroFn>, String> {
        let order: Vec<String> = match namespace {
            Some(ns) => match self.dispatch.get(ns) {
                Some(o) => o.clone(),
                // dbt: a namespace without `dispatch:` config searches the
                // root project, then the namespace itself.
                None if ns == self.root => vec![ns.to_string()],
                None => vec![self.root.clone(), ns.to_string()],
            },
            None => self.unqualified_order(),
        };
        let mut searched = vec![];
        for pkg in &order {
            // dp's shim for a package comes before the package's own macros.
            let shim = format!("{SHIM_PREFIX}{pkg}");
            if let Some(m) = self.get(&shim, &format!("{ADAPTER_TYPE}__{name}")) {
                return Ok(m.clone());
            }
            for prefix in ADAPTER_CHAIN {
                let candidate = format!("{prefix}__{name}");
                if let Some(m) = self.get(pkg, &candidate) {
                    return Ok(m.clone());
                }
                searched.push(format!("'{pkg}.{candidate}'"));
            }
        }
        Err(format!(
            "In dispatch: no macro named '{name}' found within namespace '{}'\n    searched for: {}",
            namespace.unwrap_or(&self.root),
            searched.join(", ")
        ))
    }
}

/// The Jinja environment of one command.
pub struct JinjaEnv {
    env: Environment<'static>,
    pub macros: Arc<MacroTable>,
    slots: Slots,
}

/// Parts of the context known only after loading (the graph, the
/// selection, docs) or only to commands that open the warehouse.
#[derive(Clone, Default)]
pub(crate) struct Slots {
    pub db: db::DbSlot,
    pub loose: Arc<db::Results>,
    pub graph: Arc<SlotValue>,
    pub graph_set: Arc<std::sync::atomic::AtomicBool>,
    pub selected: Arc<SlotValue>,
    pub docs: Arc<std::sync::RwLock<HashMap<String, String>>>,
    /// Where `log(msg, info=True)` goes (`dp run-operation` prints it).
    pub log: Arc<std::sync::RwLock<Option<LogSink>>>,
}

/// Receives the messages of `log(msg, info=True)`.
pub type LogSink = Arc<dyn Fn(&str) + Send + Sync>;

/// A global whose value is set after the environment is built.
#[derive(Debug, Default)]
pub struct SlotValue(std::sync::RwLock<Value>);

impl SlotValue {
    fn get(&self) -> Value {
        self.0.read().unwrap().clone()
    }
    fn set(&self, v: Value) {
        *self.0.write().unwrap() = v;
    }
}

impl Object for SlotValue {
    fn repr(self: &Arc<Self>) -> minijinja::value::ObjectRepr {
        match self.get().kind() {
            minijinja::value::ValueKind::Seq => minijinja::value::ObjectRepr::Seq,
            _ => minijinja::value::ObjectRepr::Map,
        }
    }
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get().get_item(key).ok().filter(|v| !v.is_undefined())
    }
    fn enumerate(self: &Arc<Self>) -> minijinja::value::Enumerator {
        minijinja::value::Enumerator::Values(self.get().try_iter().map(|i| i.collect()).unwrap_or_default())
    }
    fn call_method(self: &Arc<Self>, state: &State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        self.get().call_method(state, method, args)
    }
}

static SET_LITERAL: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"(\{%[-+]?\s*set\s+[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?\s*=\s*)([\[{][^%]*?)(\s*[-+]?%\})").unwrap());

/// `x - modules.datetime.timedelta(...)` (and `+`), with `x` a name, an
/// attribute path or a call without nested parentheses.
static DT_ARITH: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(
        r"([A-Za-z_][A-Za-z0-9_.]*(?:\([^()]*\))?(?:\.[A-Za-z_][A-Za-z0-9_]*(?:\([^()]*\))?)*)\s*([+-])\s*(modules\.datetime\.timedelta\([^()]*\))",
    )
    .unwrap()
});

/// Makes `{% set x = [...] %}` and `{% set x = {...} %}` (and `set ns.x =`) mutable lists/dicts,
/// and turns datetime arithmetic with `timedelta` into calls (minijinja has
/// no operator overloading).
pub fn rewrite_mutables(source: &str) -> std::borrow::Cow<'_, str> {
    let mut out = std::borrow::Cow::Borrowed(source);
    if source.contains("set")
        && let std::borrow::Cow::Owned(s) = SET_LITERAL.replace_all(&out, "${1}__dp_mut(${2})${3}")
    {
        out = std::borrow::Cow::Owned(s);
    }
    if source.contains("timedelta")
        && let std::borrow::Cow::Owned(s) = DT_ARITH.replace_all(&out, "__dp_dtop(${1}, '${2}', ${3})")
    {
        out = std::borrow::Cow::Owned(s);
    }
    out
}

/// Names a Jinja expression reads: identifiers outside string literals,
/// not after a `.` (attributes).
fn expr_names(expr: &str) -> Vec<&str> {
    let mut out = vec![];
    let b = expr.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'\'' || c == b'"' {
            i += 1;
            while i < b.len() && b[i] != c {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            if expr[..start].trim_end().ends_with('.') {
                continue;
            }
            out.push(&expr[start..i]);
        } else {
            i += 1;
        }
    }
    out
}

/// A parameter not passed (the value of [`MISSING_ARG`]).
#[derive(Debug)]
struct MissingArg;

impl Object for MissingArg {}

/// The global whose value marks a parameter not passed (see
/// [`rewrite_param_defaults`]).
const MISSING_ARG: &str = "__dp_missing_arg";

/// A macro parameter whose default reads an earlier parameter
/// (codegen's `generate_source(schema_name, ..., name=schema_name)`):
/// Jinja2 evaluates defaults at call time with the earlier parameters
/// bound, minijinja before binding them (the name would read a global).
/// Such a default moves into the body: in the signature a marker replaces
/// it, and `{% if p is sameas <marker> %}{% set p = default %}{% endif %}`
/// follows the opening tag (on its line, with its whitespace control, so
/// neither the output nor line numbers change).
pub fn rewrite_param_defaults(text: &str) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    let Some(block) = find_blocks(text, &["macro"]).ok().and_then(|b| b.into_iter().next()) else { return Cow::Borrowed(text) };
    let Some(args) = block.args.as_deref() else { return Cow::Borrowed(text) };
    let params = parse_args(args);
    let moved: Vec<usize> =
        (0..params.len()).filter(|&i| params[i].1.as_deref().is_some_and(|d| expr_names(d).iter().any(|n| params[..i].iter().any(|(p, _)| p == n)))).collect();
    if moved.is_empty() {
        return Cow::Borrowed(text);
    }
    let (start, _) = block.span;
    let Some(tag_len) = text[start..].find("%}") else { return Cow::Borrowed(text) };
    let tag_end = start + tag_len + 2;
    let tag = &text[start..tag_end];
    let (Some(open), Some(close)) = (tag.find('('), tag.rfind(')')) else { return Cow::Borrowed(text) };
    let signature: Vec<String> = params
        .iter()
        .enumerate()
        .map(|(i, (p, d))| match d {
            Some(d) if !moved.contains(&i) => format!("{p}={d}"),
            Some(_) => format!("{p}={MISSING_ARG}"),
            None => p.clone(),
        })
        .collect();
    let strip = if tag.ends_with("-%}") { "-" } else { "" };
    let mut prologue = String::new();
    for &i in &moved {
        let (p, d) = (&params[i].0, params[i].1.as_deref().unwrap_or("none"));
        prologue.push_str(&format!("{{% if {p} is sameas {MISSING_ARG} %}}{{% set {p} = {d} %}}{{% endif {strip}%}}"));
    }
    Cow::Owned(format!("{}{}{}{}{}", &text[..start + open + 1], signature.join(", "), &text[start + close..tag_end], prologue, &text[tag_end..]))
}

/// Python methods on plain values: `list.index(x)` here, the rest (str,
/// dict, `list.count`) from minijinja-contrib's pycompat.
fn unknown_method(state: &minijinja::State, value: &Value, method: &str, args: &[Value]) -> Result<Value, minijinja::Error> {
    if value.kind() == minijinja::value::ValueKind::Seq && method == "index" {
        let (what,): (Value,) = minijinja::value::from_args(args)?;
        return value
            .try_iter()?
            .position(|x| x == what)
            .map(Value::from)
            .ok_or_else(|| minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, format!("{what} is not in list")));
    }
    minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)
}

impl JinjaEnv {
    pub fn new(inputs: EnvInputs) -> Result<JinjaEnv, RenderError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Lenient);
        // SQL is never escaped, whatever the file name (`.yml` would mean JSON).
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        env.set_unknown_method_callback(unknown_method);
        env.set_recursion_limit(500);
        minijinja_contrib::add_to_environment(&mut env);
        // Snippets rendered by `render_str` are named by their own source.
        env.set_loader(|name| Ok(name.strip_prefix(INLINE).map(str::to_string)));

        let mut table = MacroTable {
            root: inputs.root_package.clone(),
            packages: inputs.packages.clone(),
            dispatch: inputs.dispatch.iter().map(|d| (d.macro_namespace.clone(), d.search_order.clone())).collect(),
            ..Default::default()
        };

        // Built-in dbt macros first; project and package macros may override
        // them by name (unqualified lookup prefers the root project).
        let mut all = builtin_macros()?;
        all.extend(inputs.macros.iter().cloned());
        for m in &all {
            let template = format!("{}::{}.{}", m.file, m.package, m.name);
            let text = rewrite_param_defaults(&m.text);
            let padded = format!("{}{}", "\n".repeat(m.line.saturating_sub(1)), rewrite_mutables(&text));
            env.add_template_owned(template.clone(), padded).map_err(|e| to_render_error(&e, &m.file, &m.text, m.line))?;
            table.by_package.entry(m.package.clone()).or_default().insert(m.name.clone(), Arc::new(MacroFn::new(m, template)));
        }

        // Unqualified names: root project, then dbt, then other packages.
        let mut seen = std::collections::HashSet::new();
        for pkg in &table.unqualified_order() {
            if let Some(ms) = table.by_package.get(pkg) {
                for (name, m) in ms {
                    if seen.insert(name.clone()) {
                        env.add_global(name.clone(), Value::from_dyn_object(m.clone()));
                    }
                }
            }
        }
        // Namespaces: `dbt.x`, `dbt_utils.x`, `<project>.x`.
        for (pkg, ms) in &table.by_package {
            let ns: IndexMap<String, Value> = ms.iter().map(|(n, m)| (n.clone(), Value::from_dyn_object(m.clone()))).collect();
            env.add_global(pkg.clone(), Value::from_iter(ns));
        }

        let table = Arc::new(table);
        let slots = Slots::default();
        slots.graph.set(empty_graph());
        slots.selected.set(Value::from(Vec::<Value>::new()));
        env.add_global(MISSING_ARG, Value::from_object(MissingArg));
        functions::register(&mut env, &inputs, table.clone(), &slots);
        Ok(JinjaEnv { env, macros: table, slots })
    }

    /// Lets `run_query`, `statement` and `adapter.get_columns_in_relation`
    /// reach the warehouse (commands that open it call this).
    pub fn set_database(&self, db: Arc<dyn Database>) {
        *self.slots.db.write().unwrap() = Some(db);
    }

    /// Sends `log(msg, info=True)` messages to `sink` (else they are
    /// tracing events at info level).
    pub fn set_log_sink(&self, sink: Option<LogSink>) {
        *self.slots.log.write().unwrap() = sink;
    }

    /// Sets `graph` (dbt's manifest subset: nodes, sources, exposures, ...).
    pub fn set_graph(&self, graph: serde_json::Value) {
        self.slots.graph.set(Value::from_serialize(&graph));
        self.slots.graph_set.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether `graph` was set (compile sets it once per command).
    pub fn has_graph(&self) -> bool {
        self.slots.graph_set.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Sets `selected_resources` (unique ids the command selected).
    pub fn set_selected(&self, ids: Vec<String>) {
        self.slots.selected.set(Value::from(ids));
    }

    /// Sets the `{% docs %}` blocks `doc()` returns, keyed `package.name`.
    pub fn set_docs(&self, docs: HashMap<String, String>) {
        *self.slots.docs.write().unwrap() = docs;
    }

    /// Renders `source` (the text of `file`) for one node.
    pub fn render_node(&self, file: &str, source: &str, rctx: Arc<RenderCtx>) -> Result<String, RenderError> {
        let src = rewrite_mutables(source);
        let tmpl = self.env.template_from_named_str(file, &src).map_err(|e| to_render_error(&e, file, source, 1))?;
        let ctx = rctx.context();
        match tmpl.render(ctx) {
            Ok(s) => Ok(s),
            Err(e) if is_return(&e) => Ok(RETURN_SLOT.with(|s| s.borrow_mut().take()).map(|v| v.to_string()).unwrap_or_default()),
            Err(e) => Err(to_render_error(&e, file, source, 1)),
        }
    }

    /// Renders a string with extra context variables (hooks, config values).
    pub fn render_str(&self, what: &str, source: &str, rctx: Option<Arc<RenderCtx>>, extra: &[(&str, Value)]) -> Result<String, RenderError> {
        if !source.contains("{{") && !source.contains("{%") {
            return Ok(source.to_string());
        }
        // The same snippets (generate_schema_name calls, test macro calls,
        // folder config values) render once per node: compile each once.
        let key = format!("{INLINE}{}", rewrite_mutables(source));
        let tmpl = self.env.get_template(&key).map_err(|e| to_render_error(&e, what, source, 1))?;
        let mut ctx: IndexMap<String, Value> = IndexMap::new();
        if let Some(r) = &rctx
            && let Ok(items) = r.context().try_iter_pairs_owned()
        {
            for (k, v) in items {
                ctx.insert(k.to_string(), v);
            }
        }
        for (k, v) in extra {
            ctx.insert(k.to_string(), v.clone());
        }
        tmpl.render(Value::from_iter(ctx)).map_err(|e| to_render_error(&e, what, source, 1))
    }

    /// Evaluates one Jinja expression (`ref('x')`) to its value, so a
    /// generic test receives a Relation, not its rendered name.
    pub fn eval_expr(&self, what: &str, expr: &str, rctx: Option<Arc<RenderCtx>>) -> Result<Value, RenderError> {
        let e = self.env.compile_expression_owned(rewrite_mutables(expr).into_owned()).map_err(|e| to_render_error(&e, what, expr, 1))?;
        let ctx = rctx.map(|r| r.context()).unwrap_or_else(|| minijinja::context! {});
        e.eval(ctx).map_err(|e| to_render_error(&e, what, expr, 1))
    }

    /// Calls a macro by (unqualified) name with positional arguments and
    /// returns its output as a trimmed string.
    pub fn call_macro_str(&self, name: &str, args: &[(&str, Value)], rctx: Option<Arc<RenderCtx>>) -> Result<String, RenderError> {
        let params: Vec<&str> = args.iter().map(|(n, _)| *n).collect();
        let src = format!("{{{{ {}({}) }}}}", name, params.join(", "));
        Ok(self.render_str(name, &src, rctx, args)?.trim().to_string())
    }
}

fn empty_graph() -> Value {
    let mut graph = IndexMap::new();
    for k in ["nodes", "sources", "exposures", "metrics", "groups", "semantic_models", "saved_queries", "unit_tests"] {
        graph.insert(k, Value::from_iter(IndexMap::<String, Value>::new()));
    }
    Value::from_iter(graph)
}

trait PairsOwned {
    fn try_iter_pairs_owned(&self) -> Result<Vec<(Value, Value)>, Error>;
}

impl PairsOwned for Value {
    fn try_iter_pairs_owned(&self) -> Result<Vec<(Value, Value)>, Error> {
        let mut out = vec![];
        for k in self.try_iter()? {
            let v = self.get_item(&k)?;
            out.push((k, v));
        }
        Ok(out)
    }
}

/// dp's `datafusion__` implementations of package macros whose `duckdb__`
/// (or `default__`) version DataFusion cannot run, by package: dispatch
/// finds them before the package's own, as a dbt shim package (spark_utils,
/// tsql_utils) placed first in `dispatch:` would be.
const SHIMS: &[(&str, &str)] = &[("dbt_expectations", include_str!("shims/dbt_expectations.sql"))];

/// The package name dp's shims for `<package>` live under.
const SHIM_PREFIX: &str = "dp_shim__";

fn builtin_macros() -> Result<Vec<MacroSource>, RenderError> {
    let mut out = vec![];
    for (package, file, text) in std::iter::once((BUILTIN_PACKAGE.to_string(), "<dp builtins>/dbt.sql".to_string(), BUILTIN_MACROS))
        .chain(SHIMS.iter().map(|(p, t)| (format!("{SHIM_PREFIX}{p}"), format!("<dp shims>/{p}.sql"), *t)))
    {
        let blocks =
            find_blocks(text, &["macro", "test"]).map_err(|e| RenderError { file: file.clone(), line: Some(e.line), message: e.message, source_line: None })?;
        out.extend(blocks.iter().map(|b| block_to_macro(b, &package, &file)));
    }
    Ok(out)
}

/// Turns a `{% test name(...) %}` block into the macro `test_name`.
pub fn block_to_macro(b: &crate::jinja::blocks::Block, package: &str, file: &str) -> MacroSource {
    if b.kind == "test" {
        let args = b.args.clone().unwrap_or_default();
        let text = format!("{{% macro test_{}({}) %}}{}{{% endmacro %}}", b.name, args, b.body);
        MacroSource { package: package.into(), name: format!("test_{}", b.name), file: file.into(), line: b.line, text }
    } else {
        MacroSource { package: package.into(), name: b.name.clone(), file: file.into(), line: b.line, text: b.full.clone() }
    }
}

/// Argument names of a macro signature (for the manifest).
pub fn macro_arguments(args: Option<&str>) -> Vec<String> {
    args.map(|a| parse_args(a).into_iter().map(|(n, _)| n).collect()).unwrap_or_default()
}

/// Turns a minijinja error into a located [`RenderError`].
pub fn to_render_error(e: &Error, file: &str, source: &str, _first_line: usize) -> RenderError {
    // Find the innermost error that has a location.
    let mut located: Option<&Error> = None;
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(me) = err.downcast_ref::<Error>()
            && me.line().is_some()
        {
            located = Some(me);
        }
        cur = err.source();
    }
    let at = located.unwrap_or(e);
    let (name, line) = (at.name().unwrap_or(file), at.line());
    let shown_file = if name.starts_with(INLINE) { file.to_string() } else { name.split("::").next().unwrap_or(name).to_string() };
    let text = if shown_file == file { Some(source.to_string()) } else { at.template_source().map(String::from) };
    let source_line = match (line, text) {
        (Some(l), Some(t)) => t.lines().nth(l.saturating_sub(1)).map(String::from),
        _ => None,
    };
    let mut message = describe(e);
    if !std::ptr::eq(at, e) && at.detail() != e.detail() {
        message = describe(at);
    }
    RenderError { file: shown_file, line, message, source_line }
}

fn describe(e: &Error) -> String {
    let detail = e.detail().unwrap_or("");
    match e.kind() {
        ErrorKind::SyntaxError => format!("Jinja syntax error: {detail}"),
        ErrorKind::UnknownFunction => format!("undefined macro or function: {detail}"),
        ErrorKind::TooManyArguments => format!("macro called with too many arguments{}", if detail.is_empty() { String::new() } else { format!(": {detail}") }),
        ErrorKind::MissingArgument => {
            format!("macro called without a required argument{}", if detail.is_empty() { String::new() } else { format!(": {detail}") })
        }
        ErrorKind::UndefinedError => format!("undefined value: {detail}"),
        ErrorKind::UnknownMethod => format!("unknown method: {detail}"),
        ErrorKind::InvalidOperation if !detail.is_empty() => detail.to_string(),
        _ => {
            if detail.is_empty() {
                e.kind().to_string()
            } else {
                format!("{}: {detail}", e.kind())
            }
        }
    }
}

#[cfg(test)]
mod builtins_tests;
#[cfg(test)]
mod context_tests;
#[cfg(test)]
mod tests;
