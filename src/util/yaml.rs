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
    text.lines()
        .position(|l| {
            let t = l.trim_start().trim_start_matches("- ").trim();
            t.strip_prefix("name:").map(|v| v.trim().trim_matches(|c| c == '"' || c == '\'') == name).unwrap_or(false)
        })
        .map(|i| i + 1)
}

/// Every `name: <x>` line of a YAML file, indexed once (a file may describe
/// thousands of models and columns).
pub struct NameIndex {
    lines: Vec<(usize, String)>,
    first: std::collections::HashMap<String, usize>,
}

impl NameIndex {
    pub fn new(text: &str) -> NameIndex {
        let mut lines = vec![];
        let mut first = std::collections::HashMap::new();
        for (i, l) in text.lines().enumerate() {
            let t = l.trim_start().trim_start_matches("- ").trim();
            if let Some(v) = t.strip_prefix("name:") {
                let name = v.trim().trim_matches(|c| c == '"' || c == '\'').to_string();
                first.entry(name.clone()).or_insert(i + 1);
                lines.push((i + 1, name));
            }
        }
        NameIndex { lines, first }
    }

    /// The first line naming `name`.
    pub fn first(&self, name: &str) -> Option<usize> {
        self.first.get(name).copied()
    }

    /// The first line after `line` naming `name`.
    pub fn after(&self, name: &str, line: usize) -> Option<usize> {
        let start = self.lines.partition_point(|(l, _)| *l <= line);
        self.lines[start..].iter().find(|(_, n)| n == name).map(|(l, _)| *l)
    }
}
