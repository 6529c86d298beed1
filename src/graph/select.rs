//! Node selection with dbt's semantics (`--select`, `--exclude`, `--selector`).
//!
//! A faithful port of dbt-core 1.11's `dbt/graph/{cli,selector_spec,selector,
//! selector_methods,graph}.py`:
//!
//! * every `--select`/`--exclude` value is split on single spaces (union) and
//!   each term on commas (intersection); each part is one *criterion*
//!   `[@][N+][method[.arg...]:]value[+N]`;
//! * without `--select` the include set is `fqn:* source:* exposure:* metric:*
//!   semantic_model:*` (everything), unless `selectors.yml` has a
//!   `default: true` selector and neither `--select` nor `--exclude` is given;
//! * a criterion selects the matching graph members (enabled nodes), adds the
//!   requested parents/children, then adds the tests attached to them
//!   (indirect selection: eager / cautious / buildable / empty);
//! * unions, intersections and differences combine both the direct and the
//!   "indirect" (test) sets exactly as dbt does, and the resource-type filter
//!   is applied last.

use fixedbitset::FixedBitSet;

use indexmap::IndexSet;
use serde_json::{Map, Value};

use crate::fs::FileSystem;
use crate::graph::Dag;
use crate::project::load::Project;
use crate::project::nodes::{Node, ResourceType, compare_versions};

#[cfg(test)]
#[path = "select_tests.rs"]
mod tests;

/// The selectors file, at the project root.
pub const SELECTORS_FILE: &str = "selectors.yml";

/// How tests attached to selected nodes are selected (`--indirect-selection`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IndirectSelection {
    /// A test is selected if ANY of its parents is selected.
    #[default]
    Eager,
    /// A test is selected if ALL of its parents are selected.
    Cautious,
    /// ALL parents are selected or are ancestors of the selection.
    Buildable,
    /// No indirect selection.
    Empty,
}

impl IndirectSelection {
    pub fn parse(s: &str) -> Option<IndirectSelection> {
        Some(match s {
            "eager" => IndirectSelection::Eager,
            "cautious" => IndirectSelection::Cautious,
            "buildable" => IndirectSelection::Buildable,
            "empty" => IndirectSelection::Empty,
            _ => return None,
        })
    }
}

/// What the command line asked for.
#[derive(Debug, Clone, Default)]
pub struct SelectionSpec {
    /// Each CLI value of `-s/--select` (a value may hold several space-separated terms).
    pub select: Vec<String>,
    pub exclude: Vec<String>,
    /// `--selector NAME` from `selectors.yml` (takes precedence over select/exclude, as in dbt).
    pub selector: Option<String>,
    /// `--resource-type` filter (empty = all).
    pub resource_types: Vec<ResourceType>,
    pub indirect: IndirectSelection,
    /// What `state:` selectors compare against (`--state DIR`).
    pub state: Option<std::sync::Arc<crate::graph::state::StateSets>>,
}

#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    #[error("'{method}' is not a selection method (in '{raw}'); valid methods are: {valid}{hint}")]
    UnknownMethod { method: String, raw: String, valid: String, hint: String },
    #[error("invalid selector '{raw}': {message}")]
    Syntax { raw: String, message: String },
    #[error("invalid selector '{raw}': {message}")]
    Value { raw: String, message: String },
    #[error("{file}: there is no selector named '{name}'; {defined}")]
    UnknownSelector { file: String, name: String, defined: String },
    #[error("{file}:{line}: {message}")]
    SelectorsFile { file: String, line: usize, message: String },
}

/// The selection plus dbt's "does not match any enabled nodes" warnings.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Selected unique ids, in project order.
    pub selected: IndexSet<String>,
    pub warnings: Vec<String>,
    /// The default selector used (no --select/--exclude and `default: true` in selectors.yml).
    pub default_selector: Option<String>,
}

/// Selects nodes like dbt (`dbt ls` with `--resource-type all` when
/// `resource_types` is empty). Returns unique ids in project order.
pub fn select(project: &Project, dag: &Dag, spec: &SelectionSpec, fs: &dyn FileSystem) -> Result<IndexSet<String>, SelectError> {
    Ok(select_detailed(project, dag, spec, fs)?.selected)
}

/// [`select`], also returning warnings and the default selector used.
pub fn select_detailed(project: &Project, dag: &Dag, spec: &SelectionSpec, fs: &dyn FileSystem) -> Result<Selection, SelectError> {
    let selectors = load_selectors(project, fs, spec.indirect)?;
    let mut default_selector = None;
    let tree = if let Some(name) = &spec.selector {
        match selectors.as_ref().and_then(|s| s.get(name)) {
            Some(def) => def.definition.clone(),
            None => {
                let defined: Vec<&str> = selectors.as_ref().map(|s| s.iter().map(|d| d.name.as_str()).collect()).unwrap_or_default();
                let defined = if selectors.is_none() {
                    format!("the project has no {SELECTORS_FILE}")
                } else if defined.is_empty() {
                    "it defines no selectors".to_string()
                } else {
                    let hint = crate::util::suggest(name, defined.iter().copied()).map(|s| format!(" (did you mean '{s}'?)")).unwrap_or_default();
                    format!("defined selectors: {}{hint}", defined.join(", "))
                };
                return Err(SelectError::UnknownSelector { file: SELECTORS_FILE.into(), name: name.clone(), defined });
            }
        }
    } else if let (true, true, Some(def)) = (spec.select.is_empty(), spec.exclude.is_empty(), selectors.as_ref().and_then(|s| s.iter().find(|d| d.default))) {
        default_selector = Some(def.name.clone());
        def.definition.clone()
    } else {
        parse_difference(
            if spec.select.is_empty() { None } else { Some(&spec.select) },
            if spec.exclude.is_empty() { None } else { Some(&spec.exclude) },
            spec.indirect,
        )?
    };
    let t = std::time::Instant::now();
    let mut sel = Selector::new(project, dag);
    sel.state = spec.state.as_deref();
    let graph = t.elapsed();
    let mut warnings = vec![];
    let (direct, _indirect) = sel.select_recursively(&tree, &mut warnings)?;
    let searched = t.elapsed();
    let selected = direct
        .ones()
        .filter_map(|i| project.nodes.get_index(i))
        .filter(|(_, n)| spec.resource_types.is_empty() || spec.resource_types.contains(&n.resource_type))
        .map(|(uid, _)| uid.clone())
        .collect();
    tracing::debug!(?graph, ?searched, collected = ?t.elapsed(), "selected");
    Ok(Selection { selected, warnings, default_selector })
}

/// dbt's `node.empty`: a non-seed node whose SQL is blank. `dbt ls` and
/// `dbt docs generate` keep such nodes; the other commands drop them from
/// the selection (dbt's `include_empty_nodes=False`), which callers do with
/// this after [`select`].
pub fn is_empty_node(n: &Node) -> bool {
    is_manifest_node(n.resource_type) && n.resource_type != ResourceType::Seed && n.raw_code.trim().is_empty()
}

// ------------------------------------------------------------------ spec tree

/// dbt's `MethodName`, in dbt's order (used in the error message).
const METHODS: &[&str] = &[
    "fqn",
    "tag",
    "group",
    "access",
    "source",
    "path",
    "file",
    "package",
    "config",
    "test_name",
    "test_type",
    "resource_type",
    "state",
    "exposure",
    "metric",
    "result",
    "source_status",
    "version",
    "semantic_model",
    "saved_query",
    "unit_test",
];

/// dbt's `NodeType` values (what `resource_type:` accepts).
const NODE_TYPES: &[&str] = &[
    "model",
    "analysis",
    "test",
    "snapshot",
    "operation",
    "seed",
    "rpc",
    "sql_operation",
    "doc",
    "source",
    "macro",
    "exposure",
    "metric",
    "group",
    "saved_query",
    "semantic_model",
    "unit_test",
    "fixture",
    "function",
];

const DEFAULT_INCLUDES: &[&str] = &["fqn:*", "source:*", "exposure:*", "metric:*", "semantic_model:*"];

#[derive(Debug, Clone)]
struct Criteria {
    raw: String,
    method: String,
    args: Vec<String>,
    value: Value,
    childrens_parents: bool,
    parents: bool,
    parents_depth: Option<usize>,
    children: bool,
    children_depth: Option<usize>,
    indirect: IndirectSelection,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Union,
    Intersection,
    Difference,
}

#[derive(Debug, Clone)]
enum Spec {
    Criteria(Criteria),
    Group { op: Op, components: Vec<Spec>, indirect: IndirectSelection, expect_exists: bool, raw: String },
}

fn group(op: Op, components: Vec<Spec>) -> Spec {
    Spec::Group { op, components, indirect: IndirectSelection::Eager, expect_exists: false, raw: String::new() }
}

/// Python's `bool(x)`.
fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
    }
}

/// Python's `str(x)` for scalars.
fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `RAW_SELECTOR_PATTERN` of selector_spec.py, as a map like `groupdict()`
/// (absent groups left out).
fn match_raw_spec(raw: &str) -> Option<Map<String, Value>> {
    if raw.contains('\n') {
        return None;
    }
    let mut d = Map::new();
    let mut s = raw;
    if let Some(rest) = s.strip_prefix('@') {
        d.insert("childrens_parents".into(), Value::String("@".into()));
        s = rest;
    }
    let digits = s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    if s[digits..].starts_with('+') {
        d.insert("parents".into(), Value::String(s[..=digits].into()));
        d.insert("parents_depth".into(), Value::String(s[..digits].into()));
        s = &s[digits + 1..];
    }
    let run = s.len() - s.trim_start_matches(|c: char| is_word_char(c) || c == '.').len();
    if run > 0 && s[run..].starts_with(':') {
        d.insert("method".into(), Value::String(s[..run].into()));
        s = &s[run + 1..];
    }
    let mut value = s;
    if let Some(pos) = s.rfind('+')
        && s[pos + 1..].chars().all(|c| c.is_ascii_digit())
    {
        d.insert("children".into(), Value::String(s[pos..].into()));
        d.insert("children_depth".into(), Value::String(s[pos + 1..].into()));
        value = &s[..pos];
    }
    d.insert("value".into(), Value::String(value.into()));
    Some(d)
}

fn default_method(value: &str) -> &'static str {
    let lower = value.to_lowercase();
    if value.contains('/') {
        "path"
    } else if lower.ends_with(".sql") || lower.ends_with(".py") || lower.ends_with(".csv") {
        "file"
    } else {
        "fqn"
    }
}

fn unknown_method(method: &str, raw: &str) -> SelectError {
    let hint = crate::util::suggest(method, METHODS.iter().copied()).map(|s| format!("\n  hint: did you mean '{s}:'?")).unwrap_or_default();
    SelectError::UnknownMethod { method: method.into(), raw: raw.into(), valid: METHODS.join(", "), hint }
}

/// `SelectionCriteria.selection_criteria_from_dict`.
fn criteria_from_dict(raw: &str, d: &Map<String, Value>, default_indirect: IndirectSelection) -> Result<Criteria, SelectError> {
    let Some(value) = d.get("value") else {
        return Err(SelectError::Syntax { raw: raw.into(), message: "no search value".into() });
    };
    let (method, args) = match d.get("method") {
        None | Some(Value::Null) => (default_method(&py_str(value)).to_string(), vec![]),
        Some(m) => {
            let m = py_str(m);
            let mut parts = m.split('.').map(String::from);
            let name = parts.next().unwrap_or_default();
            if !METHODS.contains(&name.as_str()) {
                return Err(unknown_method(&name, raw));
            }
            (name, parts.collect())
        }
    };
    let to_int = |key: &str| -> Result<Option<usize>, SelectError> {
        let v = d.get(key);
        if !truthy(v) {
            return Ok(None);
        }
        let v = v.unwrap();
        let n = match v {
            Value::Number(n) => n.as_u64().or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
            Value::Bool(b) => Some(*b as u64),
            Value::String(s) => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        n.map(|n| Some(n as usize))
            .ok_or_else(|| SelectError::Syntax { raw: raw.into(), message: format!("could not handle {} {}", key.replace('_', " "), py_str(v)) })
    };
    let parents_depth = to_int("parents_depth")?;
    let children_depth = to_int("children_depth")?;
    let indirect = match d.get("indirect_selection") {
        None | Some(Value::Null) => default_indirect,
        Some(v) => IndirectSelection::parse(&py_str(v)).ok_or_else(|| SelectError::Syntax {
            raw: raw.into(),
            message: format!("'{}' is not a valid indirect_selection; expected eager, cautious, buildable or empty", py_str(v)),
        })?,
    };
    let c = Criteria {
        raw: raw.into(),
        method,
        args,
        value: value.clone(),
        childrens_parents: truthy(d.get("childrens_parents")),
        parents: truthy(d.get("parents")),
        parents_depth,
        children: truthy(d.get("children")),
        children_depth,
        indirect,
    };
    if c.children && c.childrens_parents {
        return Err(SelectError::Syntax { raw: raw.into(), message: "the \"@\" prefix and the \"+\" suffix are incompatible".into() });
    }
    Ok(c)
}

/// `SelectionCriteria.from_single_spec`.
fn criteria_from_single_spec(raw: &str, indirect: IndirectSelection) -> Result<Criteria, SelectError> {
    let d = match_raw_spec(raw).ok_or_else(|| SelectError::Syntax { raw: raw.into(), message: "invalid selector spec".into() })?;
    criteria_from_dict(raw, &d, indirect)
}

/// `parse_union`: `['a b', 'c,d']` → union(intersection(a), intersection(b), intersection(c, d)).
fn parse_union(components: &[String], expect_exists: bool, indirect: IndirectSelection) -> Result<Spec, SelectError> {
    let mut union = vec![];
    for raw_spec in components.iter().flat_map(|c| c.split(' ')) {
        let parts = raw_spec.split(',').map(|p| criteria_from_single_spec(p, indirect).map(Spec::Criteria)).collect::<Result<Vec<_>, _>>()?;
        union.push(Spec::Group { op: Op::Intersection, components: parts, indirect, expect_exists, raw: raw_spec.to_string() });
    }
    Ok(Spec::Group { op: Op::Union, components: union, indirect, expect_exists: false, raw: format!("{components:?}") })
}

/// `parse_difference`: include (default: everything) minus exclude.
fn parse_difference(include: Option<&[String]>, exclude: Option<&[String]>, indirect: IndirectSelection) -> Result<Spec, SelectError> {
    let defaults: Vec<String> = DEFAULT_INCLUDES.iter().map(|s| s.to_string()).collect();
    let included = match include {
        None => parse_union(&defaults, false, indirect)?,
        Some(v) => parse_union(v, true, indirect)?,
    };
    let excluded = match exclude {
        None => parse_union(&[], false, indirect)?,
        Some(v) => parse_union(v, true, indirect)?,
    };
    Ok(group(Op::Difference, vec![included, excluded]))
}

// ------------------------------------------------------------------ selectors.yml

#[derive(Debug, Clone)]
struct SelectorDef {
    name: String,
    default: bool,
    definition: Spec,
}

struct Selectors(Vec<SelectorDef>);

impl Selectors {
    fn get(&self, name: &str) -> Option<&SelectorDef> {
        self.0.iter().find(|d| d.name == name)
    }
    fn iter(&self) -> impl Iterator<Item = &SelectorDef> {
        self.0.iter()
    }
}

fn load_selectors(project: &Project, fs: &dyn FileSystem, indirect: IndirectSelection) -> Result<Option<Selectors>, SelectError> {
    if !fs.exists(SELECTORS_FILE) {
        return Ok(None);
    }
    let text = fs.read_to_string(SELECTORS_FILE).map_err(|e| SelectError::SelectorsFile {
        file: SELECTORS_FILE.into(),
        line: 1,
        message: format!("could not read: {e}"),
    })?;
    let render = |s: &str| -> Result<String, String> { project.jinja.render_str(SELECTORS_FILE, s, None, &[]).map_err(|e| e.to_string()) };
    parse_selectors_text(&text, &render, indirect).map(Some)
}

/// Line of `name: <selector>` in the file (1 when unknown).
fn name_line(text: &str, name: &str) -> usize {
    crate::util::yaml::find_name_line(text, name).unwrap_or(1)
}

fn render_strings(v: Value, render: &dyn Fn(&str) -> Result<String, String>) -> Result<Value, String> {
    Ok(match v {
        Value::String(s) if s.contains("{{") || s.contains("{%") => Value::String(render(&s)?),
        Value::Array(a) => Value::Array(a.into_iter().map(|x| render_strings(x, render)).collect::<Result<_, _>>()?),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, x)| Ok((k, render_strings(x, render)?))).collect::<Result<_, String>>()?),
        other => other,
    })
}

fn parse_selectors_text(text: &str, render: &dyn Fn(&str) -> Result<String, String>, indirect: IndirectSelection) -> Result<Selectors, SelectError> {
    let file = SELECTORS_FILE.to_string();
    let err = |line: usize, message: String| SelectError::SelectorsFile { file: file.clone(), line, message };
    let data: Value = serde_yaml_ng::from_str(text).map_err(|e| {
        let line = e.location().map(|l| l.line()).unwrap_or(1);
        err(line, format!("invalid YAML: {e}"))
    })?;
    if data.is_null() {
        return Ok(Selectors(vec![]));
    }
    let data = render_strings(data, render).map_err(|m| err(1, format!("could not render: {m}")))?;
    let Some(obj) = data.as_object() else {
        return Err(err(1, "expected a mapping with a `selectors:` list".into()));
    };
    let list = match obj.get("selectors") {
        Some(Value::Array(a)) => a,
        Some(_) => return Err(err(text.lines().position(|l| l.starts_with("selectors")).map(|i| i + 1).unwrap_or(1), "`selectors` must be a list".into())),
        None => return Err(err(1, "missing the `selectors:` list".into())),
    };
    let mut out: Vec<SelectorDef> = vec![];
    for (i, item) in list.iter().enumerate() {
        let Some(item) = item.as_object() else {
            return Err(err(1, format!("selector #{} must be a mapping with `name` and `definition`", i + 1)));
        };
        let Some(name) = item.get("name").and_then(Value::as_str) else {
            return Err(err(1, format!("selector #{} has no `name` (a string)", i + 1)));
        };
        let line = name_line(text, name);
        let Some(definition) = item.get("definition") else {
            return Err(err(line, format!("selector '{name}' has no `definition`")));
        };
        let default = match item.get("default") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => return Err(err(line, format!("selector '{name}': `default` must be true or false, got {other}"))),
        };
        if let Some(d) = item.get("description")
            && !d.is_string()
        {
            return Err(err(line, format!("selector '{name}': `description` must be a string")));
        }
        if !definition.is_string() && !definition.is_object() {
            return Err(err(line, format!("selector '{name}': valid root-level selector definitions are union, intersection, string, dictionary (no lists)")));
        }
        if default && let Some(prev) = out.iter().find(|d| d.default) {
            return Err(err(line, format!("found multiple selectors with `default: true`: {} and {name}", prev.name)));
        }
        if out.iter().any(|d| d.name == name) {
            return Err(err(line, format!("selector '{name}' is defined twice")));
        }
        let spec = parse_from_definition(definition, true, &out, indirect).map_err(|e| {
            let msg = match e {
                SelectError::SelectorsFile { message, .. } => message,
                other => other.to_string(),
            };
            err(line, format!("selector '{name}': {msg}"))
        })?;
        out.push(SelectorDef { name: name.to_string(), default, definition: spec });
    }
    Ok(Selectors(out))
}

fn yerr(message: String) -> SelectError {
    SelectError::SelectorsFile { file: SELECTORS_FILE.into(), line: 1, message }
}

fn get_list<'v>(d: &'v Map<String, Value>, key: &str) -> Result<&'v Vec<Value>, SelectError> {
    let v = d.get(key).ok_or_else(|| yerr(format!("expected to find key {key}")))?;
    let Value::Array(a) = v else {
        return Err(yerr(format!("invalid value for key \"{key}\": expected a list")));
    };
    for x in a {
        if !x.is_string() && !x.is_object() {
            return Err(yerr(format!("invalid value in key \"{key}\": expected a mapping or a string, got {x}")));
        }
    }
    Ok(a)
}

fn parse_exclusions(d: &Map<String, Value>, known: &[SelectorDef], indirect: IndirectSelection) -> Result<Option<Spec>, SelectError> {
    let list = get_list(d, "exclude")?;
    let mut parsed = list.iter().map(|x| parse_from_definition(x, false, known, indirect)).collect::<Result<Vec<_>, _>>()?;
    Ok(match parsed.len() {
        0 => None,
        1 => parsed.pop(),
        _ => Some(group(Op::Union, parsed)),
    })
}

fn parse_set_definition(d: &Map<String, Value>, key: &str, op: Op, known: &[SelectorDef], indirect: IndirectSelection) -> Result<Spec, SelectError> {
    let mut include = vec![];
    let mut exclude: Option<Option<Spec>> = None;
    for def in get_list(d, key)? {
        if let Value::Object(o) = def
            && o.contains_key("exclude")
        {
            if exclude.is_some() {
                return Err(yerr(format!("you cannot provide multiple exclude arguments to the same selector set operator ({key})")));
            }
            exclude = Some(parse_exclusions(o, known, indirect)?);
        } else {
            include.push(parse_from_definition(def, false, known, indirect)?);
        }
    }
    let set = group(op, include);
    Ok(match exclude.flatten() {
        None => set,
        Some(ex) => group(Op::Difference, vec![set, ex]),
    })
}

fn parse_dict_definition(d: &Map<String, Value>, known: &[SelectorDef], indirect: IndirectSelection) -> Result<Spec, SelectError> {
    let raw = serde_json::to_string(d).unwrap_or_default();
    let mut exclude = None;
    let dct: Map<String, Value> = if d.len() == 1 {
        let (k, v) = d.iter().next().unwrap();
        let mut m = Map::new();
        m.insert("method".into(), Value::String(k.clone()));
        m.insert("value".into(), v.clone());
        m
    } else if d.get("method").and_then(Value::as_str) == Some("selector") {
        let name = d.get("value").map(py_str).unwrap_or_default();
        return match known.iter().find(|s| s.name == name) {
            Some(s) => Ok(s.definition.clone()),
            None => Err(yerr(format!("existing selector definition for {name} not found (a selector can only use selectors defined above it)"))),
        };
    } else if d.contains_key("method") && d.contains_key("value") {
        if d.contains_key("exclude") {
            exclude = parse_exclusions(d, known, indirect)?;
        }
        d.iter().filter(|(k, _)| *k != "exclude").map(|(k, v)| (k.clone(), v.clone())).collect()
    } else {
        let keys: Vec<&String> = d.keys().collect();
        return Err(yerr(format!("expected either 1 key or else \"method\" and \"value\" keys, but got {keys:?}")));
    };
    let base = Spec::Criteria(criteria_from_dict(&raw, &dct, indirect)?);
    Ok(match exclude {
        None => base,
        Some(ex) => group(Op::Difference, vec![base, ex]),
    })
}

fn parse_from_definition(def: &Value, root: bool, known: &[SelectorDef], indirect: IndirectSelection) -> Result<Spec, SelectError> {
    match def {
        Value::String(s) => Ok(Spec::Criteria(criteria_from_single_spec(s, indirect)?)),
        Value::Object(d) => {
            let set = d.contains_key("union") || d.contains_key("intersection");
            if set && root && d.len() > 1 {
                let keys: Vec<&str> = d.keys().map(String::as_str).collect();
                return Err(yerr(format!(
                    "only a single 'union' or 'intersection' key is allowed in a root level selector definition; found {}",
                    keys.join(",")
                )));
            }
            if d.contains_key("union") {
                parse_set_definition(d, "union", Op::Union, known, indirect)
            } else if d.contains_key("intersection") {
                parse_set_definition(d, "intersection", Op::Intersection, known, indirect)
            } else {
                parse_dict_definition(d, known, indirect)
            }
        }
        other => Err(yerr(format!("expected to find union, intersection, str or dict, instead found {other}"))),
    }
}

// ------------------------------------------------------------------ evaluation

/// Sets of nodes, as bits over their positions in the project's node map
/// (a default selection builds and merges several sets of every node:
/// hashing 40,000 unique ids into each was a fifth of a warm compile).
type Set = FixedBitSet;

struct Selector<'a> {
    project: &'a Project,
    state: Option<&'a crate::graph::state::StateSets>,
    dag: &'a Dag,
}

/// Nodes that live in dbt's `manifest.nodes` (not sources, exposures, unit tests...).
fn is_manifest_node(rt: ResourceType) -> bool {
    matches!(rt, ResourceType::Model | ResourceType::Seed | ResourceType::Test | ResourceType::Snapshot | ResourceType::Analysis)
}

fn is_generic_test(n: &Node) -> bool {
    n.resource_type == ResourceType::Test && n.test_metadata.is_some()
}

impl<'a> Selector<'a> {
    fn new(project: &'a Project, dag: &'a Dag) -> Selector<'a> {
        Selector { project, state: None, dag }
    }

    /// A set with no node in it.
    fn empty(&self) -> Set {
        FixedBitSet::with_capacity(self.project.nodes.len())
    }

    /// A node's parents (`up`) or children among the project's nodes, read
    /// from the DAG, whose maps are in the project's order (looked up by
    /// unique id where they are not).
    fn adjacent(&self, i: usize, up: bool) -> impl Iterator<Item = usize> + use<'a> {
        let edges = if up { &self.dag.parents } else { &self.dag.children };
        let nodes = &self.project.nodes;
        let uid = nodes.get_index(i).map_or("", |(k, _)| k.as_str());
        let list = match edges.get_index(i) {
            Some((k, v)) if k == uid => Some(v),
            _ => edges.get(uid),
        };
        list.into_iter().flatten().filter_map(move |m| nodes.get_index_of(m.as_str()))
    }

    fn node(&self, i: usize) -> &'a Node {
        &self.project.nodes[i]
    }

    /// Whether every parent the node depends on is in `set` (a parent that
    /// is not among the project's nodes is in no set).
    fn parents_all_in(&self, i: usize, set: &Set) -> bool {
        let nodes = &self.project.nodes;
        self.node(i).depends_on.iter().all(|d| nodes.get_index_of(d.as_str()).is_some_and(|p| set.contains(p)))
    }

    /// `Graph.select_parents` / `select_children`: layered BFS up to `depth`.
    fn walk(&self, selected: &Set, depth: Option<usize>, up: bool) -> Set {
        let mut found = self.empty();
        let mut layer: Vec<usize> = selected.ones().collect();
        let mut i = 0;
        while !layer.is_empty() && depth.is_none_or(|d| i < d) {
            let mut next = vec![];
            for &n in &layer {
                for m in self.adjacent(n, up) {
                    if !found.put(m) {
                        next.push(m);
                    }
                }
            }
            layer = next;
            i += 1;
        }
        found
    }

    fn select_parents(&self, selected: &Set, depth: Option<usize>) -> Set {
        self.walk(selected, depth, true)
    }

    fn select_children(&self, selected: &Set, depth: Option<usize>) -> Set {
        self.walk(selected, depth, false)
    }

    fn select_childrens_parents(&self, selected: &Set) -> Set {
        let mut ancestors_for = self.select_children(selected, None);
        ancestors_for.union_with(selected);
        let mut out = self.select_parents(&ancestors_for, None);
        out.union_with(&ancestors_for);
        out
    }

    fn select_recursively(&self, spec: &Spec, warnings: &mut Vec<String>) -> Result<(Set, Set), SelectError> {
        match spec {
            Spec::Criteria(c) => self.nodes_from_criteria(c),
            Spec::Group { op, components, indirect, expect_exists, raw } => {
                let mut direct_sets = vec![];
                let mut indirect_sets = vec![];
                for comp in components {
                    let (d, i) = self.select_recursively(comp, warnings)?;
                    let mut both = d.clone();
                    both.union_with(&i);
                    indirect_sets.push(both);
                    direct_sets.push(d);
                }
                let initial_direct = combine(*op, direct_sets, self.empty());
                let indirect_nodes = combine(*op, indirect_sets, self.empty());
                let direct = self.incorporate_indirect_nodes(initial_direct, &indirect_nodes, *indirect);
                if *expect_exists && direct.is_clear() {
                    warnings.push(format!("The selection criterion '{raw}' does not match any enabled nodes"));
                }
                Ok((direct, indirect_nodes))
            }
        }
    }

    fn nodes_from_criteria(&self, c: &Criteria) -> Result<(Set, Set), SelectError> {
        let mut selected = self.search(c)?;
        // graph operators walk from what the criterion matched
        if c.childrens_parents || c.parents || c.children {
            let collected = selected.clone();
            if c.childrens_parents {
                selected.union_with(&self.select_childrens_parents(&collected));
            }
            if c.parents {
                selected.union_with(&self.select_parents(&collected, c.parents_depth));
            }
            if c.children {
                selected.union_with(&self.select_children(&collected, c.children_depth));
            }
        }
        if c.indirect == IndirectSelection::Empty {
            return Ok((selected, self.empty()));
        }
        Ok(self.expand_selection(selected, c.indirect))
    }

    /// Adds the tests (and unit tests) attached to `selected`.
    fn expand_selection(&self, selected: Set, mode: IndirectSelection) -> (Set, Set) {
        let mut direct = selected.clone();
        let mut indirect = self.empty();
        let mut selected_and_parents = self.empty();
        if mode == IndirectSelection::Buildable {
            selected_and_parents = selected.clone();
            selected_and_parents.union_with(&self.select_parents(&selected, None));
            for (i, (_, n)) in self.project.nodes.iter().enumerate() {
                if n.resource_type == ResourceType::Source {
                    selected_and_parents.insert(i);
                }
            }
        }
        let mut successors: Vec<usize> = vec![];
        for s in selected.ones() {
            successors.extend(self.adjacent(s, false));
        }
        for i in successors {
            let n = self.node(i);
            if !matches!(n.resource_type, ResourceType::Test | ResourceType::UnitTest) {
                continue;
            }
            let all_selected = || self.parents_all_in(i, &selected);
            let buildable = || mode == IndirectSelection::Buildable && self.parents_all_in(i, &selected_and_parents);
            if mode == IndirectSelection::Eager || all_selected() || buildable() {
                direct.insert(i);
            } else if mode != IndirectSelection::Empty {
                indirect.insert(i);
            }
        }
        (direct, indirect)
    }

    fn incorporate_indirect_nodes(&self, direct: Set, indirect: &Set, mode: IndirectSelection) -> Set {
        if direct == *indirect {
            return direct;
        }
        let mut selected = direct;
        match mode {
            IndirectSelection::Cautious => {
                for i in indirect.ones() {
                    if is_manifest_node(self.node(i).resource_type) && self.parents_all_in(i, &selected) {
                        selected.insert(i);
                    }
                }
            }
            IndirectSelection::Buildable => {
                let mut sap = selected.clone();
                sap.union_with(&self.select_parents(&selected, None));
                for i in indirect.ones() {
                    if is_manifest_node(self.node(i).resource_type) && self.parents_all_in(i, &sap) {
                        selected.insert(i);
                    }
                }
            }
            _ => {}
        }
        selected
    }

    // -------------------------------------------------------------- methods

    fn search(&self, c: &Criteria) -> Result<Set, SelectError> {
        let sv = py_str(&c.value);
        let sel = sv.as_str();
        let bad = |message: String| SelectError::Value { raw: c.raw.clone(), message };
        let pick = |f: &dyn Fn(&Node) -> bool| -> Set {
            let mut set = self.empty();
            for (i, n) in self.project.nodes.values().enumerate() {
                if f(n) {
                    set.insert(i);
                }
            }
            set
        };
        Ok(match c.method.as_str() {
            "fqn" => pick(&|n| {
                n.resource_type != ResourceType::Source && {
                    let versioned = n.resource_type == ResourceType::Model && n.version.is_some();
                    is_selected_node(&n.fqn, sel, versioned) || is_selected_node(&n.fqn[1.min(n.fqn.len())..], sel, versioned)
                }
            }),
            "tag" => pick(&|n| node_tags(n).iter().any(|t| fnmatch(t, sel))),
            "group" => pick(&|n| {
                (is_manifest_node(n.resource_type) || n.resource_type == ResourceType::Metric)
                    && n.config.get("group").and_then(Value::as_str).is_some_and(|g| !g.is_empty() && fnmatch(g, sel))
            }),
            "access" => pick(&|n| n.resource_type == ResourceType::Model && n.config.get("access").and_then(Value::as_str).unwrap_or("protected") == sel),
            "source" => {
                let parts: Vec<&str> = sel.split('.').collect();
                let (pkg, src, table) = match parts.as_slice() {
                    [s] => ("*", *s, "*"),
                    [s, t] => ("*", *s, *t),
                    [p, s, t] => (*p, *s, *t),
                    _ => {
                        return Err(bad(format!(
                            "invalid source selector value \"{sel}\"; sources must be of the form `source_name`, `source_name.table_name` or `package_name.source_name.table_name`"
                        )));
                    }
                };
                pick(&|n| {
                    n.resource_type == ResourceType::Source
                        && fnmatch(&n.package_name, pkg)
                        && n.source.as_ref().is_some_and(|s| fnmatch(&s.source_name, src))
                        && fnmatch(&n.name, table)
                })
            }
            "path" => {
                let pattern = glob_parts(sel).map_err(bad)?;
                pick(&|n| path_matches(n, &pattern))
            }
            "file" => pick(&|n| {
                let name = n.original_file_path.rsplit('/').next().unwrap_or("");
                fnmatch(name, sel) || fnmatch(file_stem(name), sel)
            }),
            "package" => {
                let target = if sel == "this" { self.project.settings.project_name.as_str() } else { sel };
                pick(&|n| fnmatch(&n.package_name, target))
            }
            "config" => pick(&|n| (is_manifest_node(n.resource_type) || n.resource_type == ResourceType::Source) && config_matches(n, &c.args, &c.value)),
            "test_name" => pick(&|n| match n.resource_type {
                ResourceType::Test => n.test_metadata.as_ref().is_some_and(|m| fnmatch(&m.name, sel)),
                ResourceType::UnitTest => fnmatch(&n.name, sel),
                _ => false,
            }),
            "test_type" => {
                // dbt tests `selector in ("data")`: a substring test on a string.
                let (generic, singular, unit) = if sel == "generic" || sel == "schema" {
                    (true, false, false)
                } else if "data".contains(sel) {
                    (true, true, false)
                } else if "singular".contains(sel) {
                    (false, true, false)
                } else if "unit".contains(sel) {
                    (false, false, true)
                } else {
                    return Err(bad(format!("invalid test type selector {sel}: expected \"generic\", \"singular\", \"unit\", or \"data\"")));
                };
                pick(&|n| match n.resource_type {
                    ResourceType::Test if is_generic_test(n) => generic,
                    ResourceType::Test => singular,
                    ResourceType::UnitTest => unit,
                    _ => false,
                })
            }
            "resource_type" => {
                if !NODE_TYPES.contains(&sel) {
                    return Err(bad(format!("invalid resource_type selector \"{sel}\"; valid resource types are: {}", NODE_TYPES.join(", "))));
                }
                pick(&|n| n.resource_type.as_str() == sel)
            }
            "exposure" | "metric" | "semantic_model" | "saved_query" | "unit_test" => {
                let rt = match c.method.as_str() {
                    "exposure" => ResourceType::Exposure,
                    "metric" => ResourceType::Metric,
                    "semantic_model" => ResourceType::SemanticModel,
                    "saved_query" => ResourceType::SavedQuery,
                    _ => ResourceType::UnitTest,
                };
                let parts: Vec<&str> = sel.split('.').collect();
                let (pkg, name) = match parts.as_slice() {
                    [n] => ("*", *n),
                    [p, n] => (*p, *n),
                    _ => return Err(bad(format!("invalid {} selector value \"{sel}\"; expected `name` or `package.name`", c.method))),
                };
                pick(&|n| n.resource_type == rt && fnmatch(&n.package_name, pkg) && fnmatch(&n.name, name))
            }
            "version" => {
                if !matches!(sel, "latest" | "prerelease" | "old" | "none") {
                    return Err(bad(format!("invalid version type selector {sel}: expected one of: \"latest\", \"prerelease\", \"old\", or \"none\"")));
                }
                pick(&|n| {
                    if n.resource_type != ResourceType::Model {
                        return false;
                    }
                    let latest = n.extra.get("latest_version").map(py_str);
                    match (sel, &n.version, latest) {
                        ("none", v, _) => v.is_none(),
                        ("latest", Some(v), Some(l)) => *v == l,
                        ("prerelease", Some(v), Some(l)) => compare_versions(v, &l) == std::cmp::Ordering::Greater,
                        ("old", Some(v), Some(l)) => compare_versions(v, &l) == std::cmp::Ordering::Less,
                        _ => false,
                    }
                })
            }
            "state" => {
                let Some(state) = self.state else {
                    return Err(bad("a state: selector needs a previous manifest to compare with\n  hint: pass --state DIR (a folder holding the manifest.json of an earlier dp run)".into()));
                };
                state.matches(sel, "").map_err(bad)?;
                pick(&|n| state.matches(sel, &n.unique_id).unwrap_or(false))
            }
            "result" => {
                let Some(state) = self.state.filter(|s| !s.results.is_empty()) else {
                    return Err(bad("a result: selector needs the run_results.json of an earlier run\n  hint: pass --state DIR (a folder holding the run_results.json and manifest.json of an earlier dp run)".into()));
                };
                pick(&|n| state.result_is(sel, &n.unique_id))
            }
            "source_status" => {
                let Some(state) = self.state else {
                    return Err(bad("a source_status: selector compares two source freshness runs\n  hint: pass --state DIR (a folder holding the sources.json of an earlier `dp source freshness`)".into()));
                };
                state.source_status(sel, "").map_err(bad)?;
                pick(&|n| state.source_status(sel, &n.unique_id).unwrap_or(false))
            }
            other => return Err(unknown_method(other, &c.raw)),
        })
    }
}

/// The sets combined by `op` (`empty` when there are none).
fn combine(op: Op, sets: Vec<Set>, empty: Set) -> Set {
    let mut sets = sets.into_iter();
    let Some(mut acc) = sets.next() else { return empty };
    for s in sets {
        match op {
            Op::Union => acc.union_with(&s),
            Op::Intersection => acc.intersect_with(&s),
            Op::Difference => acc.difference_with(&s),
        }
    }
    acc
}

fn node_tags(n: &Node) -> Vec<String> {
    let mut tags = n.tags();
    if let Some(extra) = n.extra.get("tags") {
        let more: Vec<String> = match extra {
            Value::Array(a) => a.iter().filter_map(|v| v.as_str().map(String::from)).collect(),
            Value::String(s) => vec![s.clone()],
            _ => vec![],
        };
        for t in more {
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
    }
    tags
}

/// `qualified_name` against an fqn: dbt's `is_selected_node`.
fn is_selected_node(fqn: &[String], sel: &str, versioned: bool) -> bool {
    let Some(last) = fqn.last() else { return false };
    // every default selection (`fqn:*`) of every node: no pattern to match
    if sel == "*" {
        return true;
    }
    if versioned && fqn.len() >= 2 {
        if fqn[fqn.len() - 2] == sel {
            return true;
        }
        let flat: Vec<&str> = sel.split('.').collect();
        if fqn[fqn.len() - 2..].join("_") == flat[flat.len().saturating_sub(2)..].join("_") {
            return true;
        }
    } else if last == sel {
        return true;
    }
    let flat_fqn: Vec<&str> = fqn.iter().flat_map(|s| s.split('.')).collect();
    let parts: Vec<&str> = sel.split('.').collect();
    if flat_fqn.len() < parts.len() {
        return false;
    }
    for (i, part) in parts.iter().enumerate() {
        if part.contains(['*', '?', '[', ']']) {
            if fnmatch(&flat_fqn[i..].join("."), &parts[i..].join(".")) {
                return true;
            }
            if !sel.contains('.') {
                let leaf = if versioned && fqn.len() >= 2 { &fqn[fqn.len() - 2] } else { last };
                return fnmatch(leaf, sel);
            }
            return false;
        } else if flat_fqn[i] != *part {
            return false;
        }
    }
    true
}

/// Config defaults dbt's config objects carry as attributes even when unset
/// (only the ones a string selector can ever equal).
fn config_default(n: &Node, key: &str) -> Option<Value> {
    use ResourceType as R;
    let rt = n.resource_type;
    Some(match (rt, key) {
        (_, "enabled") => Value::Bool(true),
        (R::Source, _) => return None,
        (_, "materialized") => Value::String(n.materialized().to_string()),
        (R::Test, "severity") => Value::String("ERROR".into()),
        (R::Test, "fail_calc") => Value::String("count(*)".into()),
        (R::Test, "warn_if" | "error_if") => Value::String("!= 0".into()),
        (R::Test, "schema") => Value::String("dbt_test__audit".into()),
        (R::Test, _) => return None,
        (_, "on_schema_change") => Value::String("ignore".into()),
        (_, "on_configuration_change") => Value::String("apply".into()),
        (_, "docs") => serde_json::json!({"show": true, "node_color": null}),
        (_, "contract") => serde_json::json!({"enforced": false, "alias_types": true}),
        (R::Model, "access") => Value::String("protected".into()),
        (R::Seed, "delimiter") => Value::String(",".into()),
        _ => return None,
    })
}

/// Python `==` between a selector value and a config value.
fn py_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Bool(x), Value::Number(n)) | (Value::Number(n), Value::Bool(x)) => n.as_f64() == Some(if *x { 1.0 } else { 0.0 }),
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| py_eq(a, b)),
        (Value::Object(x), Value::Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| py_eq(v, w))),
        _ => a == b,
    }
}

/// `ConfigSelectorMethod`: `config.<a>.<b>:<value>`.
fn config_matches(n: &Node, args: &[String], selector: &Value) -> bool {
    let mut value: Option<Value> = None;
    for (i, a) in args.iter().enumerate() {
        let next = if i == 0 {
            n.config.get(a).cloned().or_else(|| config_default(n, a))
        } else {
            value.as_ref().and_then(|v| v.as_object()).and_then(|o| o.get(a).cloned())
        };
        match next {
            Some(v) => value = Some(v),
            None => return false,
        }
    }
    let Some(value) = value else { return false };
    let case_insensitive = args.len() == 1 && args[0] == "severity";
    let eq = |v: &Value| -> bool {
        match (selector, v) {
            (Value::String(s), Value::String(t)) if case_insensitive => s.to_uppercase() == t.to_uppercase(),
            _ => py_eq(selector, v),
        }
    };
    let sel_upper = py_str(selector).to_uppercase();
    match &value {
        Value::Array(items) => {
            items.iter().any(eq) || (sel_upper == "TRUE" && items.contains(&Value::Bool(true))) || (sel_upper == "FALSE" && items.contains(&Value::Bool(false)))
        }
        v => eq(v) || (sel_upper == "TRUE" && *v == Value::Bool(true)) || (sel_upper == "FALSE" && *v == Value::Bool(false)),
    }
}

// ------------------------------------------------------------------ paths & wildcards

fn file_stem(name: &str) -> &str {
    match name.rfind('.') {
        Some(i) if i > 0 => &name[..i],
        _ => name,
    }
}

/// A `path:` value as pathlib glob segments (relative to the project root).
fn glob_parts(sel: &str) -> Result<Vec<String>, String> {
    if sel.starts_with('/') {
        return Err(format!("path selector '{sel}' must be relative to the project root"));
    }
    let parts: Vec<String> = sel.split('/').filter(|p| !p.is_empty() && *p != ".").map(String::from).collect();
    if parts.is_empty() {
        return Err(format!("unacceptable path pattern '{sel}'"));
    }
    Ok(parts)
}

fn segment_matches(pattern: &str, name: &str) -> bool {
    if pattern.contains(['*', '?', '[']) { fnmatch(name, pattern) } else { pattern == name }
}

/// Does the path `cs` (a directory when `is_dir`) come out of pathlib's
/// `root.glob(pattern)`?
fn glob_match(ps: &[String], cs: &[&str], is_dir: bool) -> bool {
    match ps.split_first() {
        None => cs.is_empty(),
        Some((p, rest)) if p == "**" => {
            for k in 0..=cs.len() {
                if k == cs.len() && k > 0 && !is_dir {
                    break;
                }
                if glob_match(rest, &cs[k..], is_dir) {
                    return true;
                }
            }
            false
        }
        Some((p, rest)) => {
            let Some((c, crest)) = cs.split_first() else { return false };
            if !rest.is_empty() && crest.is_empty() && !is_dir {
                return false;
            }
            segment_matches(p, c) && glob_match(rest, crest, is_dir)
        }
    }
}

fn path_segments(p: &str) -> Vec<&str> {
    p.split('/').filter(|s| !s.is_empty() && *s != ".").collect()
}

fn path_matches(n: &Node, pattern: &[String]) -> bool {
    let ofp = path_segments(&n.original_file_path);
    if glob_match(pattern, &ofp, false) {
        return true;
    }
    if let Some(pp) = &n.patch_path {
        let pp = pp.split_once("://").map(|(_, p)| p).unwrap_or(pp);
        if glob_match(pattern, &path_segments(pp), false) {
            return true;
        }
    }
    (0..ofp.len()).any(|k| glob_match(pattern, &ofp[..k], true))
}

/// Python's `fnmatch.fnmatchcase` (`*`, `?`, `[seq]`, `[!seq]`; `*` crosses `/`).
pub fn fnmatch(name: &str, pattern: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let n: Vec<char> = name.chars().collect();
    let p = compile_pattern(pattern);
    match_tokens(&p, &n)
}

#[derive(Debug)]
enum Tok {
    Char(char),
    Any,
    Star,
    Class { negate: bool, items: Vec<(char, char)> },
}

fn compile_pattern(pat: &str) -> Vec<Tok> {
    let p: Vec<char> = pat.chars().collect();
    let mut out = vec![];
    let mut i = 0;
    while i < p.len() {
        let c = p[i];
        i += 1;
        match c {
            '*' => {
                if !matches!(out.last(), Some(Tok::Star)) {
                    out.push(Tok::Star);
                }
            }
            '?' => out.push(Tok::Any),
            '[' => {
                let mut j = i;
                if j < p.len() && p[j] == '!' {
                    j += 1;
                }
                if j < p.len() && p[j] == ']' {
                    j += 1;
                }
                while j < p.len() && p[j] != ']' {
                    j += 1;
                }
                if j >= p.len() {
                    out.push(Tok::Char('['));
                    continue;
                }
                let mut body: &[char] = &p[i..j];
                i = j + 1;
                let negate = body.first() == Some(&'!');
                if negate {
                    body = &body[1..];
                }
                let mut items = vec![];
                let mut k = 0;
                while k < body.len() {
                    if k + 2 < body.len() && body[k + 1] == '-' {
                        if body[k] <= body[k + 2] {
                            items.push((body[k], body[k + 2]));
                        }
                        k += 3;
                    } else {
                        items.push((body[k], body[k]));
                        k += 1;
                    }
                }
                out.push(Tok::Class { negate, items });
            }
            c => out.push(Tok::Char(c)),
        }
    }
    out
}

fn match_tokens(p: &[Tok], n: &[char]) -> bool {
    // Iterative matching with single-star backtracking (sufficient because
    // every token other than `*` consumes exactly one character).
    let (mut pi, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        let ok = match p.get(pi) {
            Some(Tok::Char(c)) => *c == n[ni],
            Some(Tok::Any) => true,
            Some(Tok::Class { negate, items }) => items.iter().any(|(a, b)| *a <= n[ni] && n[ni] <= *b) != *negate,
            Some(Tok::Star) => {
                star = Some((pi, ni));
                pi += 1;
                continue;
            }
            None => false,
        };
        if ok {
            pi += 1;
            ni += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|t| matches!(t, Tok::Star))
}
