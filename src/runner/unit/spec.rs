//! A unit test's YAML (dbt 1.8 `unit_tests:`) as typed parts: `given`
//! inputs (`ref('x')`, `ref('pkg', 'x')`, `source('s', 't')`, `this`), rows
//! in `dict` (default), `csv` or `sql` format, inline or from a `fixture:`
//! file under a test path's `fixtures/`, a seed input without rows reading
//! the seed's CSV, `expect` rows, and `overrides` (macros, vars, env_vars).
//! CSV values stay strings and empty CSV fields are NULL, as in dbt.

use indexmap::IndexMap;
use serde_json::{Map, Value};
use std::path::Path;

use crate::compile::unit::UnitOverrides;
use crate::config::Settings;

/// What a `given` entry stands in for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Ref { name: String, package: Option<String> },
    Source { source: String, table: String },
    This,
}

/// Fixture rows.
#[derive(Debug, Clone, PartialEq)]
pub enum Rows {
    /// `dict` and `csv` rows: column → value (CSV values are strings or NULL).
    Inline(Vec<Map<String, Value>>),
    /// `sql`: a query giving the rows.
    Sql(String),
    /// A seed input without rows: the seed's CSV file, read when run.
    Seed,
}

#[derive(Debug, Clone)]
pub struct Given {
    /// As written, e.g. `ref('stg_orders')`.
    pub text: String,
    pub input: Input,
    pub rows: Rows,
}

#[derive(Debug, Clone)]
pub struct UnitSpec {
    pub model: String,
    pub given: Vec<Given>,
    pub expect: Rows,
    pub overrides: UnitOverrides,
}

/// Parses `input:`: `ref('x')`, `ref('pkg', 'x')`, `source('s', 't')` or `this`.
pub fn parse_input(text: &str) -> Option<Input> {
    let t = text.trim();
    if t == "this" {
        return Some(Input::This);
    }
    let (func, rest) = t.split_once('(')?;
    let args = rest.trim_end().strip_suffix(')')?;
    let parts: Vec<String> = args
        .split(',')
        .map(|a| a.trim())
        .map(|a| a.strip_prefix('\'').and_then(|a| a.strip_suffix('\'')).or_else(|| a.strip_prefix('"').and_then(|a| a.strip_suffix('"'))).map(String::from))
        .collect::<Option<Vec<_>>>()?;
    match (func.trim(), parts.as_slice()) {
        ("ref", [name]) => Some(Input::Ref { name: name.clone(), package: None }),
        ("ref", [pkg, name]) => Some(Input::Ref { name: name.clone(), package: Some(pkg.clone()) }),
        ("source", [s, t]) => Some(Input::Source { source: s.clone(), table: t.clone() }),
        _ => None,
    }
}

/// CSV text → rows of strings; empty fields are NULL.
pub fn csv_rows(text: &str) -> Result<Vec<Map<String, Value>>, String> {
    let mut r = csv::ReaderBuilder::new().has_headers(true).from_reader(text.trim().as_bytes());
    let headers: Vec<String> = r.headers().map_err(|e| format!("bad CSV rows: {e}"))?.iter().map(|h| h.trim().to_string()).collect();
    let mut out = vec![];
    for rec in r.records() {
        let rec = rec.map_err(|e| format!("bad CSV rows: {e}"))?;
        let mut m = Map::new();
        for (h, v) in headers.iter().zip(rec.iter()) {
            m.insert(h.clone(), if v.is_empty() { Value::Null } else { Value::String(v.to_string()) });
        }
        out.push(m);
    }
    Ok(out)
}

/// A `fixture:` file: `<test path>/fixtures/**/<name>.<ext>`.
fn fixture_file(settings: &Settings, name: &str, ext: &str) -> Result<String, String> {
    fn find(dir: &Path, file: &str) -> Option<std::path::PathBuf> {
        for e in std::fs::read_dir(dir).ok()?.flatten() {
            let p = e.path();
            if p.is_dir() {
                if let Some(f) = find(&p, file) {
                    return Some(f);
                }
            } else if p.file_name().is_some_and(|n| n == file) {
                return Some(p);
            }
        }
        None
    }
    let file = format!("{name}.{ext}");
    for t in &settings.paths.tests {
        if let Some(p) = find(&settings.root.join(t).join("fixtures"), &file) {
            return std::fs::read_to_string(&p).map_err(|e| format!("cannot read fixture {}: {e}", p.display()));
        }
    }
    Err(format!(
        "fixture '{name}' not found: expected {file} under {}",
        settings.paths.tests.iter().map(|t| format!("{t}/fixtures/")).collect::<Vec<_>>().join(", ")
    ))
}

/// `rows` / `fixture` of a `given` or `expect` entry by its `format`.
fn rows_of(settings: &Settings, entry: &Map<String, Value>, what: &str, seed_input: bool) -> Result<Rows, String> {
    let format = entry.get("format").and_then(Value::as_str).unwrap_or("dict");
    let fixture = entry.get("fixture").and_then(Value::as_str);
    let rows = entry.get("rows");
    match format {
        "dict" => match (rows, fixture) {
            (Some(Value::Array(a)), _) => a
                .iter()
                .map(|r| match r {
                    Value::Object(m) => Ok(m.clone()),
                    other => Err(format!("{what}: each dict row must be a mapping of column to value, got {other}")),
                })
                .collect::<Result<_, _>>()
                .map(Rows::Inline),
            (None | Some(Value::Null), None) if seed_input => Ok(Rows::Seed),
            (None | Some(Value::Null), None) => Ok(Rows::Inline(vec![])),
            (None | Some(Value::Null), Some(_)) => Err(format!("{what}: a fixture file needs `format: csv` or `format: sql`")),
            (Some(other), _) => Err(format!("{what}: rows in dict format must be a list of mappings, got {other}")),
        },
        "csv" => match (rows, fixture) {
            (Some(Value::String(s)), _) => csv_rows(s).map(Rows::Inline).map_err(|e| format!("{what}: {e}")),
            (_, Some(f)) => {
                csv_rows(&fixture_file(settings, f, "csv").map_err(|e| format!("{what}: {e}"))?).map(Rows::Inline).map_err(|e| format!("{what}: {e}"))
            }
            _ => Err(format!("{what}: rows in csv format must be a string (or give `fixture: <name>`)")),
        },
        "sql" => match (rows, fixture) {
            (Some(Value::String(s)), _) => Ok(Rows::Sql(s.clone())),
            (_, Some(f)) => fixture_file(settings, f, "sql").map(Rows::Sql).map_err(|e| format!("{what}: {e}")),
            _ => Err(format!("{what}: rows in sql format must be a string (or give `fixture: <name>`)")),
        },
        other => Err(format!("{what}: unknown format '{other}' (use dict, csv or sql)")),
    }
}

/// Parses the unit test's YAML mapping.
pub fn parse(settings: &Settings, name: &str, def: &Map<String, Value>, is_seed: &dyn Fn(&Input) -> bool) -> Result<UnitSpec, String> {
    let model = def.get("model").and_then(Value::as_str).ok_or_else(|| format!("unit test '{name}' needs `model:`"))?.to_string();
    let mut given = vec![];
    for g in def.get("given").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
        let g = g.as_object().ok_or_else(|| format!("unit test '{name}': each `given` entry must be a mapping with `input:` and `rows:`"))?;
        let text = g.get("input").and_then(Value::as_str).ok_or_else(|| format!("unit test '{name}': a `given` entry has no `input:`"))?.to_string();
        let input = parse_input(&text).ok_or_else(|| format!("unit test '{name}': input '{text}' is not ref('...'), source('...', '...') or this"))?;
        let rows = rows_of(settings, g, &format!("unit test '{name}', given {text}"), is_seed(&input))?;
        given.push(Given { text, input, rows });
    }
    let expect = match def.get("expect") {
        Some(Value::Object(e)) => rows_of(settings, e, &format!("unit test '{name}', expect"), false)?,
        _ => return Err(format!("unit test '{name}' needs `expect:` with rows")),
    };
    let mut overrides = UnitOverrides::default();
    if let Some(Value::Object(o)) = def.get("overrides") {
        let map = |k: &str| o.get(k).and_then(Value::as_object).cloned().unwrap_or_default();
        overrides.macros = map("macros");
        overrides.vars = map("vars");
        overrides.env_vars = map("env_vars")
            .into_iter()
            .map(|(k, v)| {
                (
                    k,
                    match v {
                        Value::String(s) => s,
                        other => other.to_string(),
                    },
                )
            })
            .collect::<IndexMap<_, _>>();
    }
    Ok(UnitSpec { model, given, expect, overrides })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs() {
        assert_eq!(parse_input("ref('a')"), Some(Input::Ref { name: "a".into(), package: None }));
        assert_eq!(parse_input(" ref(\"p\", 'a') "), Some(Input::Ref { name: "a".into(), package: Some("p".into()) }));
        assert_eq!(parse_input("source('raw', 'orders')"), Some(Input::Source { source: "raw".into(), table: "orders".into() }));
        assert_eq!(parse_input("this"), Some(Input::This));
        assert_eq!(parse_input("model('a')"), None);
        assert_eq!(parse_input("ref(a)"), None);
    }

    #[test]
    fn csv_empty_is_null() {
        let rows = csv_rows("id,name\n1,\n2,b\n").unwrap();
        assert_eq!(rows[0]["id"], Value::String("1".into()));
        assert_eq!(rows[0]["name"], Value::Null);
        assert_eq!(rows[1]["name"], Value::String("b".into()));
    }
}
