//! Relation names as DataFusion resolves them: `schema.table`, each part
//! quoted only when it must be (upper case, spaces, keywords, quotes); and
//! as dbt renders them in SQL (`"dp"."main"."orders"`, [`dbt_relation_name`]).

/// SQL keywords that may not appear bare as identifiers.
const RESERVED: &[&str] = &[
    "all",
    "and",
    "any",
    "as",
    "asc",
    "between",
    "by",
    "case",
    "cast",
    "check",
    "collate",
    "column",
    "constraint",
    "create",
    "cross",
    "current_date",
    "current_time",
    "current_timestamp",
    "default",
    "delete",
    "desc",
    "distinct",
    "drop",
    "else",
    "end",
    "except",
    "exists",
    "false",
    "fetch",
    "for",
    "foreign",
    "from",
    "full",
    "group",
    "having",
    "in",
    "inner",
    "insert",
    "intersect",
    "interval",
    "into",
    "is",
    "join",
    "lateral",
    "left",
    "like",
    "limit",
    "natural",
    "not",
    "null",
    "offset",
    "on",
    "or",
    "order",
    "outer",
    "primary",
    "references",
    "right",
    "select",
    "set",
    "table",
    "then",
    "to",
    "true",
    "union",
    "unique",
    "update",
    "user",
    "using",
    "values",
    "when",
    "where",
    "window",
    "with",
];

pub fn needs_quotes(ident: &str) -> bool {
    let mut chars = ident.chars();
    let Some(first) = chars.next() else { return true };
    if !(first.is_ascii_lowercase() || first == '_') {
        return true;
    }
    if !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        return true;
    }
    RESERVED.contains(&ident)
}

/// Quotes `ident` with double quotes when needed.
pub fn quote_ident(ident: &str) -> String {
    if needs_quotes(ident) { format!("\"{}\"", ident.replace('"', "\"\"")) } else { ident.to_string() }
}

/// Always quotes (for `adapter.quote`).
pub fn force_quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// dbt's quote policy (`quoting:` in dbt_project.yml, on a source or on one
/// of its tables): which parts of a relation's name are quoted in SQL.
/// dbt-duckdb's default, and so dp's, quotes all three.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quoting {
    pub database: bool,
    pub schema: bool,
    pub identifier: bool,
}

impl Default for Quoting {
    fn default() -> Quoting {
        Quoting { database: true, schema: true, identifier: true }
    }
}

impl Quoting {
    /// `self` with the boolean keys of a `quoting:` mapping applied (other
    /// keys, and `null`s, leave a part as it was).
    pub fn merged(mut self, quoting: Option<&serde_json::Value>) -> Quoting {
        if let Some(q) = quoting.and_then(|q| q.as_object()) {
            for (key, slot) in [("database", &mut self.database), ("schema", &mut self.schema), ("identifier", &mut self.identifier)] {
                if let Some(b) = q.get(key).and_then(|v| v.as_bool()) {
                    *slot = b;
                }
            }
        }
        self
    }
}

/// A relation's name as dbt renders it in SQL: its non-empty parts, joined
/// by dots, each quoted when `quoting` says so (`"dp"."main"."orders"`).
pub fn dbt_relation_name(database: &str, schema: &str, identifier: &str, quoting: Quoting) -> String {
    let parts = [(database, quoting.database), (schema, quoting.schema), (identifier, quoting.identifier)];
    let parts: Vec<String> = parts.iter().filter(|(p, _)| !p.is_empty()).map(|(p, q)| if *q { force_quote(p) } else { p.to_string() }).collect();
    parts.join(".")
}

pub fn relation_name(schema: &str, table: &str) -> String {
    if schema.is_empty() { quote_ident(table) } else { format!("{}.{}", quote_ident(schema), quote_ident(table)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(relation_name("marts", "fct_orders"), "marts.fct_orders");
        assert_eq!(relation_name("marts", "order"), "marts.\"order\"");
        assert_eq!(relation_name("Marts", "Mixed Case"), "\"Marts\".\"Mixed Case\"");
        assert_eq!(quote_ident("x\"y"), "\"x\"\"y\"");
        assert_eq!(quote_ident("_t1"), "_t1");
        assert_eq!(quote_ident("1t"), "\"1t\"");
    }

    #[test]
    fn dbt_names_follow_the_quote_policy() {
        let all = Quoting::default();
        assert_eq!(dbt_relation_name("dp", "main", "orders", all), r#""dp"."main"."orders""#);
        assert_eq!(dbt_relation_name("", "a", "B", all), r#""a"."B""#);
        let q = all.merged(Some(&serde_json::json!({"identifier": false, "schema": null, "column": true})));
        assert_eq!(q, Quoting { database: true, schema: true, identifier: false });
        assert_eq!(dbt_relation_name("dp", "qq", "T2", q), r#""dp"."qq".T2"#);
        assert_eq!(dbt_relation_name("dp", "main", "", all), r#""dp"."main""#);
    }
}
