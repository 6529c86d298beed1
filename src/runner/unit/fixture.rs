//! Fixture SQL, as dbt's `get_fixture_sql` / `get_expected_sql`: one
//! `select ... union all select ...` per row. With the relation's columns
//! known, every column appears in every row, cast to its type
//! (`arrow_cast`, so the fixture's types equal the real relation's) and NULL
//! where the row leaves it out; a row naming a column the relation does not
//! have is an error listing the accepted columns. Without them (upstream not
//! built yet), the columns are the rows' keys and values keep their literal
//! types.

use datafusion::arrow::datatypes::Schema;
use serde_json::{Map, Value};

use crate::util::ident::quote_ident;

/// A YAML value as a SQL literal.
fn literal(v: &Value, what: &str) -> Result<String, String> {
    Ok(match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("'{}'", s.replace('\'', "''")),
        other => return Err(format!("{what}: value {other} is not a scalar")),
    })
}

/// `select`s for `rows` over `schema` (all its columns) or, without one, the rows' keys.
pub fn fixture_sql(rows: &[Map<String, Value>], schema: Option<&Schema>, what: &str) -> Result<String, String> {
    // (column name as written in SQL, arrow type if known)
    let columns: Vec<(String, Option<String>)> = match schema {
        Some(s) => s.fields().iter().map(|f| (f.name().clone(), Some(f.data_type().to_string()))).collect(),
        None => {
            let mut cols: Vec<(String, Option<String>)> = vec![];
            for r in rows {
                for k in r.keys() {
                    if !cols.iter().any(|(c, _)| c.eq_ignore_ascii_case(k)) {
                        cols.push((k.clone(), None));
                    }
                }
            }
            cols
        }
    };
    if columns.is_empty() {
        return Err(format!("{what}: no columns: give at least one row, or build the relation first so its columns are known"));
    }
    for r in rows {
        for k in r.keys() {
            if !columns.iter().any(|(c, _)| c.eq_ignore_ascii_case(k)) {
                let accepted: Vec<String> = columns.iter().map(|(c, _)| format!("'{}'", c.to_lowercase())).collect();
                return Err(format!("{what}: invalid column name '{}'\n  accepted columns are: [{}]", k.to_lowercase(), accepted.join(", ")));
            }
        }
    }
    let cell = |value: &str, ty: &Option<String>| match ty {
        Some(t) => format!("arrow_cast({value}, '{t}')"),
        None => value.to_string(),
    };
    let select = |r: Option<&Map<String, Value>>| -> Result<String, String> {
        let mut items = vec![];
        for (c, ty) in &columns {
            let v = r.and_then(|r| r.iter().find(|(k, _)| k.eq_ignore_ascii_case(c)).map(|(_, v)| v));
            let lit = match v {
                Some(v) => literal(v, what)?,
                None => "null".into(),
            };
            items.push(format!("{} as {}", cell(&lit, ty), quote_ident(c)));
        }
        Ok(format!("select {}", items.join(", ")))
    };
    if rows.is_empty() {
        return Ok(format!("{}\nlimit 0", select(None)?));
    }
    Ok(rows.iter().map(|r| select(Some(r))).collect::<Result<Vec<_>, _>>()?.join("\nunion all\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{DataType, Field};
    use serde_json::json;

    fn rows(v: Value) -> Vec<Map<String, Value>> {
        v.as_array().unwrap().iter().map(|r| r.as_object().unwrap().clone()).collect()
    }

    #[test]
    fn typed_rows_fill_missing_columns_with_null() {
        let schema = Schema::new(vec![Field::new("id", DataType::Int64, true), Field::new("name", DataType::Utf8, true)]);
        let sql = fixture_sql(&rows(json!([{"id": 1}, {"ID": "2", "name": "o'k"}])), Some(&schema), "t").unwrap();
        assert_eq!(
            sql,
            "select arrow_cast(1, 'Int64') as id, arrow_cast(null, 'Utf8') as name\nunion all\nselect arrow_cast('2', 'Int64') as id, arrow_cast('o''k', 'Utf8') as name"
        );
        let err = fixture_sql(&rows(json!([{"nope": 1}])), Some(&schema), "unit test 'u', given ref('x')").unwrap_err();
        assert_eq!(err, "unit test 'u', given ref('x'): invalid column name 'nope'\n  accepted columns are: ['id', 'name']");
        assert_eq!(fixture_sql(&[], Some(&schema), "t").unwrap(), "select arrow_cast(null, 'Int64') as id, arrow_cast(null, 'Utf8') as name\nlimit 0");
    }

    #[test]
    fn untyped_rows_use_their_keys() {
        let sql = fixture_sql(&rows(json!([{"a": 1, "b": true}, {"a": 2}])), None, "t").unwrap();
        assert_eq!(sql, "select 1 as a, true as b\nunion all\nselect 2 as a, null as b");
    }
}
