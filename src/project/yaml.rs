//! YAML reading with `line:col` in every error.

use serde::de::DeserializeOwned;

/// Parses YAML into `T`; the error text carries `line L column C`.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    serde_yaml_ng::from_str(text).map_err(|e| {
        let msg = e.to_string();
        match e.location() {
            Some(loc) if !msg.contains("line ") => format!("line {} column {}: {msg}", loc.line(), loc.column()),
            _ => msg,
        }
    })
}

/// The 1-based line of the first line whose trimmed text starts with
/// `- name: <name>` or `name: <name>` (for locating YAML entries).
pub fn find_name_line(text: &str, name: &str) -> Option<usize> {
    text.lines().position(|l| {
        let t = l.trim_start().trim_start_matches("- ").trim();
        t.strip_prefix("name:")
            .map(|v| v.trim().trim_matches(|c| c == '"' || c == '\'') == name)
            .unwrap_or(false)
    })
    .map(|i| i + 1)
}
