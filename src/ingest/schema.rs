//! Schema detection results and their history: each extract's Arrow schema
//! is compared with the source's latest version in
//! `dp_meta.schema_history`; any difference (column added, removed, type
//! or nullability changed) is a new version. Under `schema_policy: freeze`
//! a difference fails the ingestion with the diff in the message; under
//! `evolve` (the default) it is recorded and the extract lands (bronze
//! readers see NULL for a column older files do not have).

use datafusion::arrow::datatypes::Schema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
    pub nullable: bool,
}

pub fn columns(schema: &Schema) -> Vec<Column> {
    schema.fields().iter().map(|f| Column { name: f.name().clone(), ty: f.data_type().to_string(), nullable: f.is_nullable() }).collect()
}

pub fn to_json(cols: &[Column]) -> String {
    serde_json::to_string(cols).expect("columns serialize")
}

pub fn from_json(s: &str) -> Vec<Column> {
    serde_json::from_str(s).unwrap_or_default()
}

/// The changes from `old` to `new`, one phrase each (empty: same schema).
pub fn diff(old: &[Column], new: &[Column]) -> Vec<String> {
    let mut out = vec![];
    for n in new {
        match old.iter().find(|o| o.name == n.name) {
            None => out.push(format!("added {} {}", n.name, n.ty)),
            Some(o) => {
                if o.ty != n.ty {
                    out.push(format!("type of {}: {} → {}", n.name, o.ty, n.ty));
                }
                if o.nullable != n.nullable {
                    out.push(format!("{} is {}", n.name, if n.nullable { "now nullable" } else { "now NOT NULL" }));
                }
            }
        }
    }
    for o in old {
        if !new.iter().any(|n| n.name == o.name) {
            out.push(format!("removed {}", o.name));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str, ty: &str, nullable: bool) -> Column {
        Column { name: name.into(), ty: ty.into(), nullable }
    }

    #[test]
    fn diff_names_every_change() {
        let old = vec![c("id", "Int64", false), c("a", "Int32", true), c("gone", "Utf8", true)];
        let new = vec![c("id", "Int64", true), c("a", "Int64", true), c("extra", "Utf8", true)];
        assert_eq!(diff(&old, &new), vec!["id is now nullable", "type of a: Int32 → Int64", "added extra Utf8", "removed gone"]);
        assert!(diff(&old, &old).is_empty());
    }
}
