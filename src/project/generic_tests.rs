//! Generic data tests declared in YAML (`data_tests:` / `tests:`): parsing
//! each entry into a test name, arguments and config, and naming the test
//! node exactly as dbt does (names, 64-char truncation with an md5, and the
//! 10-hex-digit hash in the unique_id).

use serde_json::{Map, Value};

/// Config keys dbt lifts out of a test's arguments.
const CONFIG_ARGS: &[&str] = &[
    "severity",
    "tags",
    "enabled",
    "where",
    "limit",
    "warn_if",
    "error_if",
    "fail_calc",
    "store_failures",
    "store_failures_as",
    "meta",
    "database",
    "schema",
    "alias",
];

/// One test entry from YAML.
#[derive(Debug, Clone, PartialEq)]
pub struct TestEntry {
    /// Test name without namespace (`unique`, `expression_is_true`).
    pub name: String,
    pub namespace: Option<String>,
    /// Arguments (without `model`/`column_name`), in YAML order.
    pub args: Map<String, Value>,
    /// Which of `args` came under `arguments:` (dbt lists them after
    /// `column_name` in `test_metadata.kwargs`, the others before).
    pub under_arguments: Vec<String>,
    pub config: Map<String, Value>,
    /// A user-given name (`name:` in the entry).
    pub custom_name: Option<String>,
    pub description: Option<String>,
}

/// Parses a YAML test entry: `unique`, `{not_null: {config: ...}}`,
/// `{relationships: {arguments: {to: ..., field: ...}}}`, legacy
/// `{relationships: {to: ..., field: ...}}`, or `{name: x, test_name: y, ...}`.
pub fn parse_entry(v: &Value) -> Result<TestEntry, String> {
    let (full_name, body) = match v {
        Value::String(s) => (s.clone(), Map::new()),
        Value::Object(m) if m.contains_key("test_name") => {
            let name = m["test_name"].as_str().ok_or("test_name must be a string")?.to_string();
            let mut body = m.clone();
            body.remove("test_name");
            (name, body)
        }
        Value::Object(m) if m.len() == 1 => {
            let (k, v) = m.iter().next().unwrap();
            let body = match v {
                Value::Object(b) => b.clone(),
                Value::Null => Map::new(),
                other => return Err(format!("test '{k}' must map to its arguments, got {other}")),
            };
            (k.clone(), body)
        }
        Value::Object(m) => {
            return Err(format!("a test entry must have exactly one key (the test name), got {}", m.keys().cloned().collect::<Vec<_>>().join(", ")));
        }
        other => return Err(format!("a test entry must be a name or a mapping, got {other}")),
    };
    let (namespace, name) = match full_name.rsplit_once('.') {
        Some((ns, n)) => (Some(ns.to_string()), n.to_string()),
        None => (None, full_name.clone()),
    };
    let mut args = Map::new();
    let (mut config, mut legacy) = (Map::new(), Map::new());
    let mut custom_name = None;
    let mut description = None;
    let mut under_arguments = vec![];
    for (k, v) in body {
        match k.as_str() {
            "config" => {
                if let Value::Object(c) = v {
                    config.extend(c);
                } else {
                    return Err(format!("test '{full_name}': config must be a mapping"));
                }
            }
            "arguments" => {
                if let Value::Object(a) = v {
                    under_arguments.extend(a.keys().cloned());
                    args.extend(a);
                } else {
                    return Err(format!("test '{full_name}': arguments must be a mapping"));
                }
            }
            "name" => custom_name = v.as_str().map(String::from),
            "description" => description = v.as_str().map(String::from),
            k if CONFIG_ARGS.contains(&k) => {
                legacy.insert(k.to_string(), v);
            }
            _ => {
                args.insert(k, v);
            }
        }
    }
    // dbt's order (TestBuilder): the config keys it knows in CONFIG_ARGS'
    // order (a top-level one unless falsy, else the `config:` one), then
    // the other `config:` keys in theirs
    let truthy =
        |v: &Value| !matches!(v, Value::Null | Value::Bool(false)) && v != "" && v != 0 && v != &Value::Array(vec![]) && v != &Value::Object(Map::new());
    let mut ordered = Map::new();
    for k in CONFIG_ARGS {
        let v = match legacy.remove(*k) {
            Some(v) if truthy(&v) => Some(v),
            top => config.remove(*k).or(top),
        };
        if let Some(v) = v.filter(|v| !v.is_null()) {
            ordered.insert(k.to_string(), v);
        }
    }
    ordered.extend(config);
    let config = ordered;
    Ok(TestEntry { name, namespace, args, under_arguments, config, custom_name, description })
}

/// dbt's `synthesize_generic_test_names`: (short name for files, full name).
pub fn synthesize_names(test_type: &str, target_name: &str, args: &Map<String, Value>) -> (String, String) {
    let mut keys: Vec<&String> = args.keys().filter(|k| *k != "model").collect();
    keys.sort();
    let mut flat: Vec<String> = vec![];
    for k in keys {
        match &args[k] {
            Value::Object(m) => flat.extend(m.values().map(py_str)),
            Value::Array(a) => flat.extend(a.iter().map(py_str)),
            other => flat.push(py_str(other)),
        }
    }
    static NON_WORD: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| regex::Regex::new("[^0-9a-zA-Z_]+").unwrap());
    let clean: Vec<String> = flat.iter().map(|a| NON_WORD.replace_all(a, "_").into_owned()).collect();
    let unique = clean.join("__");
    let identifier = format!("{test_type}_{target_name}");
    let full_name = format!("{identifier}_{unique}");
    if full_name.len() >= 64 {
        let trunc: String = identifier.chars().take(30).collect();
        (format!("{trunc}_{:x}", md5::compute(full_name.as_bytes())), full_name)
    } else {
        (full_name.clone(), full_name)
    }
}

/// dbt's unique_id hash: md5(name + repr(hashable(test_metadata)))[-10:].
pub fn test_hash(name: &str, metadata_name: &str, kwargs: &Map<String, Value>, namespace: Option<&str>) -> String {
    // repr({"kwargs": ..., "name": ..., "namespace": ...}) with its keys
    // sorted, written without building that dict
    let mut repr = String::with_capacity(256);
    repr.push_str("{'kwargs': ");
    write_map_hashable(kwargs, &mut repr);
    repr.push_str(", 'name': ");
    write_repr_str(metadata_name, &mut repr);
    repr.push_str(", 'namespace': ");
    write_repr_str(namespace.unwrap_or("None"), &mut repr);
    repr.push('}');
    let mut md5 = md5::Context::new();
    md5.consume(name.as_bytes());
    md5.consume(repr.as_bytes());
    let digest = format!("{:x}", md5.finalize());
    digest[digest.len() - 10..].to_string()
}

/// Python's `str(x)` for a JSON scalar (lists/dicts as their repr).
pub fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => format!("[{}]", a.iter().map(py_repr).collect::<Vec<_>>().join(", ")),
        Value::Object(m) => format!("{{{}}}", m.iter().map(|(k, v)| format!("{}: {}", py_repr_str(k), py_repr(v))).collect::<Vec<_>>().join(", ")),
    }
}

/// Python's `repr(x)`.
pub fn py_repr(v: &Value) -> String {
    match v {
        Value::String(s) => py_repr_str(s),
        other => py_str(other),
    }
}

/// repr() of dbt's `get_hashable_md(x)`: dict keys sorted, leaves str()'d.
fn write_repr_hashable(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => write_map_hashable(m, out),
        Value::Array(a) => write_joined(out, '[', a, ']', write_repr_hashable),
        Value::String(s) => write_repr_str(s, out),
        other => write_repr_str(&py_str(other), out),
    }
}

fn write_map_hashable(m: &Map<String, Value>, out: &mut String) {
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort();
    write_joined(out, '{', keys, '}', |k, out| {
        write_repr_str(k, out);
        out.push_str(": ");
        write_repr_hashable(&m[k], out);
    });
}

/// `open`, the items written by `each` and separated by ", ", `close`.
fn write_joined<T>(out: &mut String, open: char, items: impl IntoIterator<Item = T>, close: char, mut each: impl FnMut(T, &mut String)) {
    out.push(open);
    for (i, x) in items.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        each(x, out);
    }
    out.push(close);
}

/// Python's repr of a str.
pub fn py_repr_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    write_repr_str(s, &mut out);
    out
}

fn write_repr_str(s: &str, out: &mut String) {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push(quote);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn config_keys_in_dbts_order() {
        // CONFIG_ARGS' order first (top-level or under `config:`), then the rest
        let e =
            parse_entry(&json!({"unique": {"config": {"error_if": "=0", "meta": {"a": 1}, "warn_if": "<4", "where": "x > 1"}, "severity": "warn"}})).unwrap();
        assert_eq!(e.config.keys().collect::<Vec<_>>(), ["severity", "where", "warn_if", "error_if", "meta"]);
    }

    #[test]
    fn names_and_hashes_match_dbt() {
        // From dbt-core 1.11's manifest for tests/fixtures/projects/jaffle.
        let mut args = Map::new();
        args.insert("column_name".into(), json!("customer_segment"));
        args.insert("values".into(), json!(["none", "new", "repeat", "loyal"]));
        let (short, full) = synthesize_names("accepted_values", "customers", &args);
        assert_eq!(full, "accepted_values_customers_customer_segment__none__new__repeat__loyal");
        assert_eq!(short, "accepted_values_customers_0d6351e16af31ef4cd64a9d8afcd1bd7");
        let mut kwargs = args.clone();
        kwargs.insert("model".into(), json!("{{ get_where_subquery(ref('customers')) }}"));
        assert_eq!(test_hash(&full, "accepted_values", &kwargs, None), "75d0be6a41");

        let mut args = Map::new();
        args.insert("to".into(), json!("ref('customers')"));
        args.insert("field".into(), json!("customer_id"));
        args.insert("column_name".into(), json!("customer_id"));
        let (_, full) = synthesize_names("relationships", "orders", &args);
        assert_eq!(full, "relationships_orders_customer_id__customer_id__ref_customers_");
        let mut kwargs = args.clone();
        kwargs.insert("model".into(), json!("{{ get_where_subquery(ref('orders')) }}"));
        assert_eq!(test_hash(&full, "relationships", &kwargs, None), "c6ec7f58f2");
    }

    #[test]
    fn parses_entry_styles() {
        let e = parse_entry(&json!({"relationships": {"to": "ref('x')", "field": "id", "severity": "warn"}})).unwrap();
        assert_eq!(e.name, "relationships");
        assert_eq!(e.args.len(), 2);
        assert_eq!(e.config["severity"], json!("warn"));
        let e = parse_entry(&json!({"dbt_utils.expression_is_true": {"arguments": {"expression": "a > 0"}}})).unwrap();
        assert_eq!(e.namespace.as_deref(), Some("dbt_utils"));
        assert_eq!(e.name, "expression_is_true");
        assert!(parse_entry(&json!({"a": 1, "b": 2})).is_err());
    }
}
