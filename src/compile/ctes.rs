//! dbt's `inject_ctes_into_sql`, byte for byte: ephemeral CTEs go right
//! after an existing leading `WITH` (and `RECURSIVE`), followed by `, `;
//! otherwise a `with` is added before the first token.

/// Injects `ctes` (each already shaped ` __dbt__cte__x as (\n...\n)`).
pub fn inject_ctes(sql: &str, ctes: &[String]) -> String {
    if ctes.is_empty() {
        return sql.to_string();
    }
    let bytes = sql.as_bytes();
    let mut i = skip_ws(bytes, 0);
    let first_token = i;
    // Skip leading comments to look for WITH (comments are tokens, not ws).
    loop {
        if bytes[i..].starts_with(b"--") {
            i = sql[i..].find('\n').map(|p| i + p + 1).unwrap_or(bytes.len());
        } else if bytes[i..].starts_with(b"/*") {
            i = sql[i + 2..].find("*/").map(|p| i + 2 + p + 2).unwrap_or(bytes.len());
        } else {
            break;
        }
        i = skip_ws(bytes, i);
    }
    if let Some(after_with) = keyword_at(sql, i, "with") {
        let mut end = after_with;
        let j = skip_ws(bytes, end);
        if let Some(after_rec) = keyword_at(sql, j, "recursive") {
            end = after_rec;
        }
        let insert_at = skip_ws(bytes, end);
        format!("{}{}, {}", &sql[..insert_at], ctes.join(", "), &sql[insert_at..])
    } else {
        format!("{}with{} {}", &sql[..first_token], ctes.join(", "), &sql[first_token..])
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

fn keyword_at(sql: &str, i: usize, kw: &str) -> Option<usize> {
    let end = i + kw.len();
    if end <= sql.len() && sql[i..end].eq_ignore_ascii_case(kw) {
        let next = sql.as_bytes().get(end).copied();
        if next.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == b'_')) {
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn injects_into_existing_with() {
        let out = inject_ctes("\nwith customers as (select 1)\nselect * from customers", &[" __dbt__cte__p as (\nselect 2\n)".into()]);
        assert_eq!(out, "\nwith  __dbt__cte__p as (\nselect 2\n), customers as (select 1)\nselect * from customers");
    }

    #[test]
    fn adds_with_when_missing() {
        let out = inject_ctes("select * from __dbt__cte__p", &[" __dbt__cte__p as (\nselect 2\n)".into(), " __dbt__cte__q as (\nselect 3\n)".into()]);
        assert_eq!(out, "with __dbt__cte__p as (\nselect 2\n),  __dbt__cte__q as (\nselect 3\n) select * from __dbt__cte__p");
    }
}
