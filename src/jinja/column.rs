//! `api.Column` and the column objects `adapter.get_columns_in_relation`
//! returns, with dbt's base `Column` semantics (`dbt/adapters/base/column.py`):
//! `translate_type`, `is_string`, `is_number`, `data_type`, `quoted`, ...

use indexmap::IndexMap;
use minijinja::value::{Kwargs, Object, Value, from_args};
use minijinja::{Error, ErrorKind, State};
use std::fmt;
use std::sync::Arc;

/// A column: `name`/`column`, `dtype` and the size parts of its type.
#[derive(Debug, Clone)]
pub struct Column {
    pub column: String,
    pub dtype: String,
    pub char_size: Option<i64>,
    pub numeric_precision: Option<i64>,
    pub numeric_scale: Option<i64>,
}

/// dbt's `Column.TYPE_LABELS`.
pub fn translate_type(dtype: &str) -> String {
    match dtype.to_uppercase().as_str() {
        "STRING" => "TEXT".into(),
        "TIMESTAMP" => "TIMESTAMP".into(),
        "FLOAT" => "FLOAT".into(),
        "INTEGER" => "INT".into(),
        "BOOLEAN" => "BOOLEAN".into(),
        _ => dtype.into(),
    }
}

fn base(dtype: &str) -> String {
    dtype.split('(').next().unwrap_or("").trim().to_lowercase()
}

impl Column {
    /// A column from a SQL type such as `DECIMAL(18,3)` or `VARCHAR(20)`.
    pub fn new(name: &str, dtype: &str) -> Column {
        let mut c = Column { column: name.into(), dtype: dtype.into(), char_size: None, numeric_precision: None, numeric_scale: None };
        if let Some(inner) = dtype.split_once('(').and_then(|(_, r)| r.strip_suffix(')')) {
            let parts: Vec<Option<i64>> = inner.split(',').map(|p| p.trim().parse().ok()).collect();
            if c.is_string() {
                c.char_size = parts.first().copied().flatten();
            } else if c.is_numeric() {
                c.numeric_precision = parts.first().copied().flatten();
                c.numeric_scale = parts.get(1).copied().flatten();
            }
            if c.is_string() || c.is_numeric() {
                c.dtype = dtype.split('(').next().unwrap_or(dtype).trim().to_string();
            }
        }
        c
    }
    pub fn is_string(&self) -> bool {
        matches!(
            base(&self.dtype).as_str(),
            "text" | "character varying" | "character" | "varchar" | "string" | "char" | "bpchar" | "utf8" | "largeutf8" | "utf8view"
        )
    }
    pub fn is_integer(&self) -> bool {
        matches!(
            base(&self.dtype).as_str(),
            "smallint"
                | "integer"
                | "bigint"
                | "smallserial"
                | "serial"
                | "bigserial"
                | "int2"
                | "int4"
                | "int8"
                | "int"
                | "tinyint"
                | "hugeint"
                | "utinyint"
                | "usmallint"
                | "uinteger"
                | "ubigint"
        )
    }
    pub fn is_float(&self) -> bool {
        matches!(base(&self.dtype).as_str(), "real" | "float4" | "float" | "double precision" | "float8" | "double")
    }
    pub fn is_numeric(&self) -> bool {
        matches!(base(&self.dtype).as_str(), "numeric" | "decimal")
    }
    pub fn is_number(&self) -> bool {
        self.is_integer() || self.is_float() || self.is_numeric()
    }
    pub fn string_size(&self) -> Result<i64, Error> {
        if !self.is_string() {
            return Err(Error::new(ErrorKind::InvalidOperation, format!("Called string_size() on non-string field '{}' ({})", self.column, self.dtype)));
        }
        Ok(self.char_size.unwrap_or(256))
    }
    pub fn data_type(&self) -> String {
        if self.is_string() {
            // DataFusion's varchar has no length.
            self.dtype.clone()
        } else if self.is_numeric() {
            numeric_type(&self.dtype, self.numeric_precision, self.numeric_scale)
        } else {
            self.dtype.clone()
        }
    }
}

/// dbt-duckdb's `DuckDBColumn.fields`: the fields of a
/// `STRUCT(a VARCHAR, b DECIMAL(10,2))` type as columns (nested types kept
/// whole); no fields for other types.
fn struct_fields(dtype: &str) -> Vec<Column> {
    let t = dtype.trim();
    let Some(inner) = t.get(..7).filter(|p| p.eq_ignore_ascii_case("STRUCT(")).and_then(|_| t[7..].strip_suffix(')')) else { return vec![] };
    let (mut parts, mut depth, mut cur) = (vec![], 0i32, String::new());
    for ch in inner.chars() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    parts.push(cur);
    parts.iter().filter_map(|p| p.trim().split_once(' ')).map(|(name, ty)| Column::new(name, ty.trim())).collect()
}

fn numeric_type(dtype: &str, precision: Option<i64>, scale: Option<i64>) -> String {
    match (precision, scale) {
        (Some(p), Some(s)) => format!("{dtype}({p},{s})"),
        _ => dtype.to_string(),
    }
}

fn string_type(size: Option<i64>) -> String {
    match size {
        Some(n) => format!("character varying({n})"),
        None => "character varying".into(),
    }
}

impl Object for Column {
    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(match key.as_str()? {
            "name" | "column" => Value::from(self.column.clone()),
            "dtype" => Value::from(self.dtype.clone()),
            "data_type" => Value::from(self.data_type()),
            "quoted" => Value::from(super::objects::quote(&self.column)),
            "char_size" => Value::from(self.char_size),
            "numeric_precision" => Value::from(self.numeric_precision),
            "numeric_scale" => Value::from(self.numeric_scale),
            "mode" => Value::from("NULLABLE"),
            "fields" => Value::from_iter(struct_fields(&self.dtype).into_iter().map(Value::from_object)),
            _ => return None,
        })
    }

    fn call_method(self: &Arc<Self>, _state: &State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        match method {
            "is_string" => Ok(Value::from(self.is_string())),
            "is_number" => Ok(Value::from(self.is_number())),
            "is_numeric" => Ok(Value::from(self.is_numeric())),
            "is_integer" => Ok(Value::from(self.is_integer())),
            "is_float" => Ok(Value::from(self.is_float())),
            "is_struct" => Ok(Value::from(self.dtype.trim_start().to_ascii_uppercase().starts_with("STRUCT"))),
            "string_size" => Ok(Value::from(self.string_size()?)),
            "can_expand_to" => {
                let (other,): (Value,) = from_args(args)?;
                let other_size = other.get_attr("char_size").ok().and_then(|v| v.as_i64());
                Ok(Value::from(self.is_string() && other.get_attr("dtype").is_ok() && self.char_size.unwrap_or(256) > other_size.unwrap_or(256)))
            }
            "literal" => {
                let (v,): (Value,) = from_args(args)?;
                Ok(Value::from(format!("{v}::{}", self.data_type())))
            }
            _ => Err(Error::new(ErrorKind::UnknownMethod, format!("Column has no method '{method}'"))),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<Column {} ({})>", self.column, self.data_type())
    }
}

fn func<F>(f: F) -> Value
where
    F: Fn(&[Value]) -> Result<Value, Error> + Send + Sync + 'static,
{
    Value::from_function(move |args: minijinja::value::Rest<Value>| f(&args))
}

/// The `api.Column` class.
pub fn column_api() -> Value {
    let mut m: IndexMap<&str, Value> = IndexMap::new();
    m.insert(
        "translate_type",
        func(|a| {
            let (t,): (String,) = from_args(a)?;
            Ok(Value::from(translate_type(&t)))
        }),
    );
    m.insert(
        "create",
        func(|a| {
            let (name, t): (String, String) = from_args(a)?;
            Ok(Value::from_object(Column::new(&name, &translate_type(&t))))
        }),
    );
    m.insert(
        "string_type",
        func(|a| {
            let (n,): (Option<i64>,) = from_args(a)?;
            Ok(Value::from(string_type(n)))
        }),
    );
    m.insert(
        "numeric_type",
        func(|a| {
            let (t, p, s): (String, Option<i64>, Option<i64>) = from_args(a)?;
            Ok(Value::from(numeric_type(&t, p, s)))
        }),
    );
    m.insert(
        "from_description",
        func(|a| {
            let (name, t): (String, String) = from_args(a)?;
            Ok(Value::from_object(Column::new(&name, &t)))
        }),
    );
    // Column(name, dtype, char_size=..., numeric_precision=..., numeric_scale=...)
    m.insert(
        "__call__",
        func(|a| {
            let (name, t, kw): (String, String, Kwargs) = from_args(a)?;
            let mut c = Column::new(&name, &t);
            c.char_size = kw.get::<Option<i64>>("char_size")?.or(c.char_size);
            c.numeric_precision = kw.get::<Option<i64>>("numeric_precision")?.or(c.numeric_precision);
            c.numeric_scale = kw.get::<Option<i64>>("numeric_scale")?.or(c.numeric_scale);
            Ok(Value::from_object(c))
        }),
    );
    Value::from_object(ColumnClass(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
}

/// `api.Column`: callable like the Python class, with its class methods.
#[derive(Debug)]
struct ColumnClass(IndexMap<String, Value>);

impl Object for ColumnClass {
    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.0.get(key.as_str()?).cloned()
    }
    fn call(self: &Arc<Self>, state: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        self.0["__call__"].call(state, args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_fields_as_dbt_duckdb_parses_them() {
        let f = struct_fields("STRUCT(a VARCHAR, b DECIMAL(10,2), c STRUCT(x INTEGER, y VARCHAR[]))");
        let got: Vec<(String, String)> = f.iter().map(|c| (c.column.clone(), c.data_type())).collect();
        assert_eq!(got, [("a".into(), "VARCHAR".into()), ("b".into(), "DECIMAL(10,2)".into()), ("c".into(), "STRUCT(x INTEGER, y VARCHAR[])".into())]);
        assert!(struct_fields("BIGINT").is_empty());
    }

    #[test]
    fn types_classify_as_dbt_does() {
        assert_eq!(translate_type("string"), "TEXT");
        assert_eq!(translate_type("integer"), "INT");
        assert_eq!(translate_type("varchar"), "varchar");
        let d = Column::new("amount", "DECIMAL(18,3)");
        assert!(d.is_numeric() && d.is_number() && !d.is_string());
        assert_eq!(d.data_type(), "DECIMAL(18,3)");
        assert!(Column::new("n", "BIGINT").is_integer());
        assert!(Column::new("x", "DOUBLE").is_float());
        let s = Column::new("s", "VARCHAR");
        assert!(s.is_string() && !s.is_number());
        assert_eq!(s.string_size().unwrap(), 256);
        assert!(Column::new("b", "BOOLEAN").string_size().is_err());
    }
}
