//! Relation names as DataFusion resolves them: `schema.table`, each part
//! quoted only when it must be (upper case, spaces, keywords, quotes).

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
}
