//! JSON as Python's `json.dumps` writes it: `", "` and `": "` separators,
//! non-ASCII escaped as `\uXXXX`, keys sorted on request. dbt's `tojson`
//! and its package-lock hash are made this way.

use serde_json::Value;

/// `json.dumps(v, sort_keys=sort_keys)`.
pub fn dumps(v: &Value, sort_keys: bool) -> String {
    match v {
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            if sort_keys {
                keys.sort();
            }
            let items: Vec<String> = keys.iter().map(|k| format!("{}: {}", string(k), dumps(&o[*k], sort_keys))).collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::Array(a) => format!("[{}]", a.iter().map(|x| dumps(x, sort_keys)).collect::<Vec<_>>().join(", ")),
        Value::String(s) => string(s),
        other => other.to_string(),
    }
}

/// A JSON string literal with Python's escapes (`ensure_ascii=True`).
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for u in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn as_python_writes_it() {
        let v = serde_json::json!({"b": [1, "é\"\n"], "a": null});
        assert_eq!(super::dumps(&v, false), r#"{"b": [1, "\u00e9\"\n"], "a": null}"#);
        assert_eq!(super::dumps(&v, true), r#"{"a": null, "b": [1, "\u00e9\"\n"]}"#);
    }
}
