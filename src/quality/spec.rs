//! Checkpoint files (`checkpoints/*.yml`): parsing and validation, with
//! `file:line` and the closest valid name in every error, before any query
//! runs.
//!
//! ```yaml
//! name: staging_checkpoint            # default: the file name
//! description: Silver business rules
//! severity: error                     # default severity of its expectations
//! failed_rows: 100                    # failing rows kept per failing expectation
//! gate: {guards: "tag:intermediate+"} # or `gate: false`
//! actions: [store_results, update_data_docs, {notify: {on: failure}}]
//! validations:
//!   - relation: stg_orders            # model/seed name, source:raw.orders, raw.orders
//!     key_columns: [order_id]
//!     expectations:
//!       - expect_column_values_to_be_in_set: {column: status, value_set: [pending, shipped]}
//!       - expectation_type: expect_column_values_to_not_be_null   # GX's serialized form
//!         kwargs: {column: customer_id, mostly: 0.99}
//!   - select: "tag:marts"              # the same suite for each selected relation
//!     expectations: [...]
//! ```

use serde_json::{Map, Value};

use super::expectations::{self, Def, Kind};
use crate::fs::FileSystem;
use crate::util::suggest;

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{file}:{line}: {message}{}", .hint.as_ref().map(|h| format!("\n  hint: {h}")).unwrap_or_default())]
    Invalid { file: String, line: usize, message: String, hint: Option<String> },
    #[error("reading {file}: {message}")]
    Read { file: String, message: String },
}

impl SpecError {
    pub fn at(file: &str, line: usize, message: impl Into<String>, hint: Option<String>) -> SpecError {
        SpecError::Invalid { file: file.to_string(), line, message: message.into(), hint }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warn,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warn => "warn",
            Severity::Error => "error",
        }
    }

    fn parse(s: &str) -> Option<Severity> {
        // GX 1.x spells them critical / warning / info
        match s.to_ascii_lowercase().as_str() {
            "error" | "critical" => Some(Severity::Error),
            "warn" | "warning" | "info" => Some(Severity::Warn),
            _ => None,
        }
    }
}

/// Where a checkpoint sits in `dp build`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Gate {
    /// Not part of builds (`gate: false`).
    Off,
    /// Runs once `after` (default: the models it validates) is built; on an
    /// error-severity failure skips `guards` (default: everything downstream
    /// of the relations it validates) and what depends on them.
    #[default]
    Default,
    On {
        after: Option<String>,
        guards: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actions {
    pub store_results: bool,
    pub update_data_docs: bool,
    /// `notify`: when to alert (`failure`, `always`); nothing delivers yet.
    pub notify: Option<String>,
}

impl Default for Actions {
    fn default() -> Self {
        Actions { store_results: true, update_data_docs: true, notify: None }
    }
}

#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub name: String,
    /// Project-relative path of the file.
    pub file: String,
    pub description: String,
    pub gate: Gate,
    pub actions: Actions,
    pub failed_rows: usize,
    pub validations: Vec<Validation>,
    /// A hash of the file's text (Data Docs rewrite a suite page only when it changes).
    pub digest: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One relation as written: `stg_orders`, `source:raw.orders`, `raw.orders`.
    Relation(String),
    /// Every model/seed/source a selector picks.
    Select(String),
}

#[derive(Debug, Clone)]
pub struct Validation {
    pub target: Target,
    pub line: usize,
    pub key_columns: Vec<String>,
    pub expectations: Vec<Expectation>,
}

#[derive(Debug, Clone)]
pub struct Expectation {
    pub def: &'static Def,
    /// GX's kwargs (with `mostly`, `row_condition`, ... as written).
    pub kwargs: Map<String, Value>,
    pub mostly: f64,
    /// The row condition as SQL.
    pub row_condition: Option<String>,
    pub severity: Severity,
    pub meta: Map<String, Value>,
    pub line: usize,
}

impl Expectation {
    pub fn name(&self) -> &'static str {
        self.def.name
    }

    /// `expect_column_values_to_be_between(quantity)`.
    pub fn label(&self) -> String {
        let cols = expectations::columns(&self.kwargs);
        let mut args = cols.join(", ");
        if let Some(o) = self.kwargs.get("other_table").or(self.kwargs.get("other_table_name")).and_then(Value::as_str) {
            if !args.is_empty() {
                args.push_str(" -> ");
            }
            args.push_str(o);
        }
        if self.row_condition.is_some() {
            args.push_str(if args.is_empty() { "where ..." } else { " where ..." });
        }
        format!("{}({args})", self.def.name)
    }

    /// The kwargs GX reports (without dp's `severity`).
    pub fn gx_kwargs(&self) -> Map<String, Value> {
        let mut k = self.kwargs.clone();
        k.remove("severity");
        k
    }
}

/// Finds the lines of keys and values in a YAML text, walking forward as
/// the document is read (serde's YAML values carry no positions).
struct Lines<'a> {
    lines: Vec<&'a str>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        Lines { lines: text.lines().collect() }
    }

    /// The first line at or after `from` (1-based) holding `needle` as a
    /// whole word (not part of a longer name).
    fn find(&self, from: usize, needle: &str) -> Option<usize> {
        let from = from.max(1);
        for (i, l) in self.lines.iter().enumerate().skip(from - 1) {
            let code = l.split(" #").next().unwrap_or(l);
            let mut start = 0;
            while let Some(p) = code[start..].find(needle) {
                let a = start + p;
                let z = a + needle.len();
                let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
                if !word(code[..a].chars().last()) && !word(code[z..].chars().next()) {
                    return Some(i + 1);
                }
                start = z;
            }
        }
        None
    }

    fn key(&self, from: usize, key: &str) -> usize {
        self.find(from, &format!("{key}:")).or_else(|| self.find(from, key)).unwrap_or(from.max(1))
    }
}

/// Reads every `*.yml` / `*.yaml` under the project's checkpoint paths.
pub fn load(fs: &dyn FileSystem, dirs: &[String]) -> Result<Vec<Checkpoint>, SpecError> {
    let mut out: Vec<Checkpoint> = vec![];
    for dir in dirs {
        if !fs.exists(dir) {
            continue;
        }
        let mut files = fs.list_files(dir, &["yml", "yaml"]).map_err(|e| SpecError::Read { file: dir.clone(), message: e.to_string() })?;
        files.sort();
        for f in files {
            let path = if f.starts_with(dir.as_str()) { f.clone() } else { format!("{}/{}", dir.trim_end_matches('/'), f) };
            let text = fs.read_to_string(&path).map_err(|e| SpecError::Read { file: path.clone(), message: e.to_string() })?;
            let cp = parse(&path, &text)?;
            if let Some(other) = out.iter().find(|c| c.name == cp.name) {
                return Err(SpecError::at(
                    &path,
                    1,
                    format!("checkpoint '{}' is already defined in {}", cp.name, other.file),
                    Some("give each checkpoint a unique `name`".into()),
                ));
            }
            out.push(cp);
        }
    }
    Ok(out)
}

const TOP_KEYS: &[&str] = &["name", "description", "gate", "actions", "severity", "failed_rows", "validations", "config_version", "class_name", "meta"];
const VALIDATION_KEYS: &[&str] = &["relation", "select", "key_columns", "expectations", "expectation_suite_name", "suite", "meta"];

/// Parses one checkpoint file.
pub fn parse(file: &str, text: &str) -> Result<Checkpoint, SpecError> {
    let lines = Lines::new(text);
    // straight into JSON values (no intermediate YAML value to convert)
    let root: Value = serde_yaml_ng::from_str(text).map_err(|e| {
        let line = e.location().map(|l| l.line()).unwrap_or(1);
        let msg = e.to_string();
        let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
        SpecError::at(file, line, format!("invalid YAML: {msg}"), Some("check the indentation and quoting around this line".into()))
    })?;
    let Value::Object(top) = root else {
        return Err(SpecError::at(
            file,
            1,
            "a checkpoint file must be a mapping with `validations:`",
            Some("see README.md, section \"Quality checkpoints\"".into()),
        ));
    };
    for k in top.keys() {
        if !TOP_KEYS.contains(&k.as_str()) {
            return Err(unknown(file, lines.key(1, k), "checkpoint key", k, TOP_KEYS.iter().copied()));
        }
    }
    let stem = file.rsplit('/').next().unwrap_or(file);
    let stem = stem.strip_suffix(".yml").or_else(|| stem.strip_suffix(".yaml")).unwrap_or(stem);
    let name = match top.get("name") {
        None => stem.to_string(),
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        Some(_) => return Err(SpecError::at(file, lines.key(1, "name"), "`name` must be a non-empty string", None)),
    };
    let default_severity = match top.get("severity") {
        None => Severity::Error,
        Some(v) => severity(file, lines.key(1, "severity"), v)?,
    };
    let failed_rows = match top.get("failed_rows") {
        None => 100,
        Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64().unwrap() as usize,
        Some(_) => return Err(SpecError::at(file, lines.key(1, "failed_rows"), "`failed_rows` must be a whole number (0 keeps none)", None)),
    };
    let gate = gate(file, &lines, top.get("gate"))?;
    let actions = actions(file, &lines, top.get("actions"))?;
    let Some(Value::Array(vals)) = top.get("validations") else {
        return Err(SpecError::at(
            file,
            lines.find(1, "validations:").unwrap_or(1),
            "a checkpoint needs `validations:`, a list of relations with their expectations",
            Some("e.g. validations: [{relation: stg_orders, expectations: [{expect_column_values_to_not_be_null: {column: order_id}}]}]".into()),
        ));
    };
    let mut cursor = lines.find(1, "validations:").unwrap_or(1);
    let mut validations = vec![];
    for v in vals {
        let Value::Object(v) = v else {
            return Err(SpecError::at(file, cursor, "each validation must be a mapping with `relation:` (or `select:`) and `expectations:`", None));
        };
        let (target, line) = match (v.get("relation"), v.get("select")) {
            (Some(Value::String(r)), None) => (Target::Relation(r.trim().to_string()), lines.key(cursor, "relation")),
            (None, Some(Value::String(s))) => (Target::Select(s.trim().to_string()), lines.key(cursor, "select")),
            _ => {
                return Err(SpecError::at(
                    file,
                    lines.find(cursor + 1, "expectations:").unwrap_or(cursor),
                    "a validation names exactly one of `relation:` (a model, seed or source) or `select:` (a selector)",
                    None,
                ));
            }
        };
        cursor = line;
        for k in v.keys() {
            if !VALIDATION_KEYS.contains(&k.as_str()) {
                return Err(unknown(file, lines.key(cursor, k), "validation key", k, VALIDATION_KEYS.iter().copied()));
            }
        }
        let key_columns = match v.get("key_columns") {
            None => vec![],
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) if a.iter().all(Value::is_string) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
            Some(_) => return Err(SpecError::at(file, lines.key(cursor, "key_columns"), "`key_columns` must be a column name or a list of them", None)),
        };
        let Some(Value::Array(exps)) = v.get("expectations") else {
            return Err(SpecError::at(file, line, "this validation has no `expectations:` list", None));
        };
        let mut expectations = vec![];
        cursor = lines.key(cursor, "expectations");
        for e in exps {
            let (x, at) = expectation(file, &lines, cursor + 1, e, default_severity)?;
            cursor = at;
            expectations.push(x);
        }
        validations.push(Validation { target, line, key_columns, expectations });
    }
    Ok(Checkpoint {
        digest: twox_hash::XxHash64::oneshot(0, text.as_bytes()),
        name,
        file: file.to_string(),
        description: top.get("description").and_then(Value::as_str).unwrap_or("").to_string(),
        gate,
        actions,
        failed_rows,
        validations,
    })
}

fn unknown<'a>(file: &str, line: usize, what: &str, name: &str, valid: impl Iterator<Item = &'a str> + Clone) -> SpecError {
    let hint = match suggest(name, valid.clone()) {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!("valid: {}", valid.collect::<Vec<_>>().join(", ")),
    };
    SpecError::at(file, line, format!("unknown {what} `{name}`"), Some(hint))
}

fn severity(file: &str, line: usize, v: &Value) -> Result<Severity, SpecError> {
    v.as_str().and_then(Severity::parse).ok_or_else(|| SpecError::at(file, line, format!("severity must be `warn` or `error`, not {v}"), None))
}

fn gate(file: &str, lines: &Lines, v: Option<&Value>) -> Result<Gate, SpecError> {
    let line = lines.key(1, "gate");
    Ok(match v {
        None | Some(Value::Bool(true)) => Gate::Default,
        Some(Value::Bool(false)) => Gate::Off,
        Some(Value::Object(m)) => {
            for k in m.keys() {
                if !["after", "guards"].contains(&k.as_str()) {
                    return Err(unknown(file, lines.key(line, k), "gate key", k, ["after", "guards"].into_iter()));
                }
            }
            let get = |k: &str| -> Result<Option<String>, SpecError> {
                match m.get(k) {
                    None => Ok(None),
                    Some(Value::String(s)) => Ok(Some(s.clone())),
                    Some(_) => Err(SpecError::at(file, lines.key(line, k), format!("gate.{k} must be a selector such as \"tag:staging\""), None)),
                }
            };
            Gate::On { after: get("after")?, guards: get("guards")? }
        }
        Some(_) => return Err(SpecError::at(file, line, "`gate` must be false, true or {after: <selector>, guards: <selector>}", None)),
    })
}

fn actions(file: &str, lines: &Lines, v: Option<&Value>) -> Result<Actions, SpecError> {
    let Some(v) = v else { return Ok(Actions::default()) };
    let line = lines.key(1, "actions");
    let Value::Array(items) = v else {
        return Err(SpecError::at(file, line, "`actions` must be a list: store_results, update_data_docs, notify", None));
    };
    let mut a = Actions { store_results: false, update_data_docs: false, notify: None };
    const NAMES: &[&str] = &["store_results", "update_data_docs", "notify"];
    for item in items {
        let (name, arg) = match item {
            Value::String(s) => (s.as_str(), None),
            Value::Object(m) if m.len() == 1 => {
                let (k, v) = m.iter().next().unwrap();
                (k.as_str(), Some(v))
            }
            _ => return Err(SpecError::at(file, line, format!("an action is a name or {{name: options}}, not {item}"), None)),
        };
        match name {
            "store_results" | "store_validation_result" => a.store_results = true,
            "update_data_docs" => a.update_data_docs = true,
            "notify" | "slack" | "email" => {
                let on = arg.and_then(|v| v.get("on")).and_then(Value::as_str).unwrap_or("failure");
                if !["failure", "always", "success"].contains(&on) {
                    return Err(SpecError::at(file, lines.key(line, "on"), format!("notify.on must be failure, success or always, not `{on}`"), None));
                }
                a.notify = Some(on.to_string());
            }
            other => return Err(unknown(file, lines.key(line, other), "action", other, NAMES.iter().copied())),
        }
    }
    Ok(a)
}

/// One expectation: `{expect_x: {kwargs}}` or GX's serialized
/// `{expectation_type|type: expect_x, kwargs: {...}, meta: {...}}`.
fn expectation(file: &str, lines: &Lines, from: usize, e: &Value, default: Severity) -> Result<(Expectation, usize), SpecError> {
    let (name, mut kwargs, meta) = match e {
        Value::Object(m) if m.contains_key("expectation_type") || m.contains_key("type") => {
            for k in m.keys() {
                if !["expectation_type", "type", "kwargs", "meta", "id", "notes", "description", "severity", "rendered_content"].contains(&k.as_str()) {
                    return Err(unknown(file, lines.key(from, k), "expectation key", k, ["expectation_type", "type", "kwargs", "meta"].into_iter()));
                }
            }
            let name = m.get("expectation_type").or(m.get("type")).and_then(Value::as_str).unwrap_or("").to_string();
            let mut kwargs = match m.get("kwargs") {
                None | Some(Value::Null) => Map::new(),
                Some(Value::Object(k)) => k.clone(),
                Some(_) => return Err(SpecError::at(file, lines.key(from, "kwargs"), "`kwargs` must be a mapping", None)),
            };
            if let Some(s) = m.get("severity") {
                kwargs.insert("severity".into(), s.clone());
            }
            let meta = m.get("meta").and_then(Value::as_object).cloned().unwrap_or_default();
            (name, kwargs, meta)
        }
        Value::Object(m) if m.len() == 1 => {
            let (k, v) = m.iter().next().unwrap();
            let kwargs = match v {
                Value::Null => Map::new(),
                Value::Object(o) => o.clone(),
                _ => return Err(SpecError::at(file, lines.key(from, k), format!("the arguments of {k} must be a mapping, e.g. {{column: id}}"), None)),
            };
            (k.clone(), kwargs, Map::new())
        }
        Value::String(s) => (s.clone(), Map::new(), Map::new()),
        _ => return Err(SpecError::at(file, from, "an expectation is `expect_<name>: {arguments}` or GX's {expectation_type: ..., kwargs: ...}", None)),
    };
    let line = lines.find(from, &name).unwrap_or(from);
    let Some(def) = expectations::lookup(&name) else {
        return Err(unknown(file, line, "expectation", &name, expectations::CATALOGUE.iter().map(|d| d.name)));
    };
    let at = |k: &str| lines.key(line, k);
    for k in kwargs.keys() {
        let valid = def.arguments();
        if !valid.contains(&k.as_str()) {
            return Err(unknown(file, at(k), &format!("argument of {name}"), k, valid.iter().copied()));
        }
    }
    for r in def.required {
        if !kwargs.contains_key(*r) {
            return Err(SpecError::at(file, line, format!("{name} needs `{r}`"), Some(format!("arguments: {}", def.required.join(", ")))));
        }
    }
    check_arguments(file, line, def, &kwargs, &at)?;
    let mostly = match kwargs.get("mostly") {
        None | Some(Value::Null) => 1.0,
        Some(v) => match v.as_f64() {
            Some(m) if (0.0..=1.0).contains(&m) => m,
            _ => return Err(SpecError::at(file, at("mostly"), format!("`mostly` must be a number between 0 and 1, not {v}"), None)),
        },
    };
    let severity = match kwargs.get("severity").or(meta.get("severity")) {
        None => default,
        Some(v) => severity(file, at("severity"), v)?,
    };
    let row_condition = match kwargs.get("row_condition") {
        None | Some(Value::Null) => None,
        Some(Value::String(c)) if c.trim().is_empty() => None,
        Some(Value::String(c)) => {
            let parser = kwargs.get("condition_parser").and_then(Value::as_str).unwrap_or("sql");
            Some(row_condition(c, parser).map_err(|m| {
                SpecError::at(
                    file,
                    at("row_condition"),
                    format!("row_condition `{c}` does not parse: {m}"),
                    Some("write a SQL boolean expression such as \"status = 'shipped'\" (GX's col(\"status\")==\"shipped\" also works)".into()),
                )
            })?)
        }
        Some(v) => return Err(SpecError::at(file, at("row_condition"), format!("row_condition must be a string, not {v}"), None)),
    };
    kwargs.remove("condition_parser");
    Ok((Expectation { def, kwargs, mostly, row_condition, severity, meta, line }, line))
}

fn check_arguments(file: &str, line: usize, def: &Def, kw: &Map<String, Value>, at: &dyn Fn(&str) -> usize) -> Result<(), SpecError> {
    let bad = |k: &str, what: &str| Err(SpecError::at(file, at(k), format!("{}: `{k}` must be {what}", def.name), None));
    for k in ["column", "column_A", "column_B", "other_table", "other_column", "other_table_name", "type_", "unexpected_rows_query", "max_age", "as_of"] {
        if let Some(v) = kw.get(k)
            && !v.is_string()
        {
            return bad(k, "a string");
        }
    }
    for k in ["column_list", "column_set", "value_set", "type_list", "regex_list"] {
        if let Some(v) = kw.get(k)
            && !v.is_array()
        {
            return bad(k, "a list");
        }
    }
    for k in ["regex"] {
        if let Some(v) = kw.get(k) {
            let Some(r) = v.as_str() else { return bad(k, "a string") };
            if let Err(e) = regex::Regex::new(r) {
                return Err(SpecError::at(file, at(k), format!("{}: regex `{r}` does not compile: {}", def.name, first_line(&e.to_string())), None));
            }
        }
    }
    for r in expectations::list(kw, "regex_list") {
        if let Err(e) = regex::Regex::new(&r) {
            return Err(SpecError::at(file, at("regex_list"), format!("{}: regex `{r}` does not compile: {}", def.name, first_line(&e.to_string())), None));
        }
    }
    if let Some(v) = kw.get("max_age")
        && v.as_str().and_then(expectations::parse_duration).is_none()
    {
        return bad("max_age", "a duration such as \"48h\", \"2d\" or \"30m\"");
    }
    if let Some(v) = kw.get("as_of")
        && v.as_str().and_then(expectations::parse_timestamp).is_none()
    {
        return bad("as_of", "a timestamp such as \"2024-01-17\" or \"2024-01-17 06:00:00\"");
    }
    for k in ["min_value", "max_value", "value"] {
        if let Some(v) = kw.get(k)
            && (v.is_array() || v.is_object())
        {
            return bad(k, "a number, a string or null");
        }
    }
    if def.kind == Kind::Custom {
        let q = kw.get("unexpected_rows_query").and_then(Value::as_str).unwrap_or("");
        if !q.contains("{batch}") {
            return Err(SpecError::at(
                file,
                at("unexpected_rows_query"),
                "unexpected_rows_query must read the validated relation as {batch}",
                Some("e.g. \"select * from {batch} where shipped_at < ordered_at\"".into()),
            ));
        }
        parse_query(&q.replace("{batch}", "batch_relation"))
            .map_err(|m| SpecError::at(file, at("unexpected_rows_query"), format!("unexpected_rows_query does not parse: {m}"), None))?;
    }
    let _ = line;
    Ok(())
}

fn first_line(s: &str) -> String {
    s.lines().rfind(|l| !l.trim().is_empty()).unwrap_or(s).trim().to_string()
}

/// The row condition as SQL: GX's `col("x")==5` spelling is translated
/// (`col("x")` → `"x"`, `==` → `=`); the result must be one SQL expression.
pub fn row_condition(text: &str, parser: &str) -> Result<String, String> {
    let mut sql = text.trim().to_string();
    if parser != "sql" || sql.contains("col(") || sql.contains("==") {
        // col("x") is a column; other double-quoted text is a string
        let col = regex::Regex::new(r#"col\(\s*["']([^"']+)["']\s*\)"#).expect("static regex");
        sql = col.replace_all(&sql, "\u{1}$1\u{1}").into_owned();
        let text = regex::Regex::new(r#""([^"]*)""#).expect("static regex");
        sql = text.replace_all(&sql, "'$1'").into_owned();
        sql = sql.replace('\u{1}', "\"");
        sql = sql.replace("==", "=").replace(" & ", " and ").replace(" | ", " or ");
    }
    parse_expr(&sql)?;
    Ok(sql)
}

fn parse_expr(sql: &str) -> Result<(), String> {
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;
    use datafusion::sql::sqlparser::tokenizer::Token;
    let dialect = GenericDialect {};
    let mut p = Parser::new(&dialect).try_with_sql(sql).map_err(|e| e.to_string())?;
    p.parse_expr().map_err(|e| e.to_string())?;
    match p.peek_token().token {
        Token::EOF => Ok(()),
        t => Err(format!("unexpected `{t}` after the condition")),
    }
}

fn parse_query(sql: &str) -> Result<(), String> {
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;
    let stmts = Parser::parse_sql(&GenericDialect {}, sql).map_err(|e| e.to_string())?;
    match stmts.as_slice() {
        [datafusion::sql::sqlparser::ast::Statement::Query(_)] => Ok(()),
        _ => Err("it must be exactly one SELECT".into()),
    }
}

#[cfg(test)]
mod tests;
