//! The expectation catalogue: Great Expectations' names and arguments (so
//! suites port by copy) plus dp's referential-integrity and freshness
//! expectations, and how each becomes SQL.
//!
//! Every expectation is one of a few shapes:
//!
//! - **map** (row-wise, e.g. `expect_column_values_to_be_between`): three
//!   aggregates over the relation, `element_count`, `missing_count` (rows GX
//!   leaves out, NULLs for most) and `unexpected_count` (counted rows whose
//!   predicate is not true); `mostly` applies to `unexpected / (element -
//!   missing)` as in GX;
//! - **aggregate** (`expect_column_mean_to_be_between`, row counts,
//!   freshness): one aggregate, its observed value and a bounds check;
//! - **unique** (column and compound uniqueness): GX counts every row whose
//!   value occurs more than once; a batched `count - count(distinct)` says
//!   whether there is any duplicate, and only a failing one needs its own
//!   group-by query;
//! - **schema** (column lists, types): answered from the relation's schema,
//!   no query;
//! - **other relation** (referential integrity, row count equal to another
//!   table) and **custom SQL** (`unexpected_rows_expectation`): their own query.
//!
//! `row_condition` restricts every aggregate to the matching rows (`case
//! when <condition> then ... end`), so expectations with different
//! conditions still share one scan.

use serde_json::{Map, Value};

use crate::util::ident::quote_ident;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Map,
    Unique,
    Aggregate,
    Schema,
    OtherTable,
    RowCountOther,
    Custom,
}

/// One catalogue entry.
#[derive(Debug)]
pub struct Def {
    pub name: &'static str,
    pub kind: Kind,
    pub required: &'static [&'static str],
    pub optional: &'static [&'static str],
}

impl Def {
    /// Whether `mostly` applies.
    pub fn takes_mostly(&self) -> bool {
        matches!(self.kind, Kind::Map | Kind::Unique | Kind::OtherTable)
    }

    /// Every argument this expectation accepts.
    pub fn arguments(&self) -> Vec<&'static str> {
        let mostly: &'static [&'static str] = if self.takes_mostly() { &["mostly"] } else { &[] };
        self.required.iter().chain(self.optional).chain(mostly).chain(COMMON).copied().collect()
    }
}

/// Arguments every expectation accepts (GX's own plus `severity`).
pub const COMMON: &[&str] =
    &["row_condition", "condition_parser", "severity", "result_format", "catch_exceptions", "include_config", "meta", "notes", "description", "id"];
const BOUNDS: &[&str] = &["min_value", "max_value", "strict_min", "strict_max"];

macro_rules! def {
    ($name:literal, $kind:ident, [$($r:literal),*], [$($o:literal),*]) => {
        Def { name: $name, kind: Kind::$kind, required: &[$($r),*], optional: &[$($o),*] }
    };
    ($name:literal, $kind:ident, [$($r:literal),*], BOUNDS) => {
        Def { name: $name, kind: Kind::$kind, required: &[$($r),*], optional: BOUNDS }
    };
}

pub static CATALOGUE: &[Def] = &[
    // column map expectations
    def!("expect_column_values_to_not_be_null", Map, ["column"], []),
    def!("expect_column_values_to_be_null", Map, ["column"], []),
    def!("expect_column_values_to_be_in_set", Map, ["column", "value_set"], []),
    def!("expect_column_values_to_not_be_in_set", Map, ["column", "value_set"], []),
    def!("expect_column_values_to_be_between", Map, ["column"], BOUNDS),
    def!("expect_column_values_to_match_regex", Map, ["column", "regex"], []),
    def!("expect_column_values_to_not_match_regex", Map, ["column", "regex"], []),
    def!("expect_column_values_to_match_regex_list", Map, ["column", "regex_list"], ["match_on"]),
    def!("expect_column_values_to_match_like_pattern", Map, ["column", "like_pattern"], []),
    def!("expect_column_values_to_not_match_like_pattern", Map, ["column", "like_pattern"], []),
    def!("expect_column_values_to_be_dateutil_parseable", Map, ["column"], []),
    def!("expect_column_value_lengths_to_be_between", Map, ["column"], ["min_value", "max_value"]),
    def!("expect_column_value_lengths_to_equal", Map, ["column", "value"], []),
    def!("expect_column_pair_values_to_be_equal", Map, ["column_A", "column_B"], ["ignore_row_if"]),
    def!("expect_column_pair_values_a_to_be_greater_than_b", Map, ["column_A", "column_B"], ["or_equal", "ignore_row_if"]),
    def!("expect_select_column_values_to_be_unique_within_record", Map, ["column_list"], ["ignore_row_if"]),
    // uniqueness
    def!("expect_column_values_to_be_unique", Unique, ["column"], []),
    def!("expect_compound_columns_to_be_unique", Unique, ["column_list"], ["ignore_row_if"]),
    // aggregates
    def!("expect_table_row_count_to_be_between", Aggregate, [], BOUNDS),
    def!("expect_table_row_count_to_equal", Aggregate, ["value"], []),
    def!("expect_column_min_to_be_between", Aggregate, ["column"], BOUNDS),
    def!("expect_column_max_to_be_between", Aggregate, ["column"], BOUNDS),
    def!("expect_column_mean_to_be_between", Aggregate, ["column"], BOUNDS),
    def!("expect_column_median_to_be_between", Aggregate, ["column"], BOUNDS),
    def!("expect_column_sum_to_be_between", Aggregate, ["column"], BOUNDS),
    def!("expect_column_stdev_to_be_between", Aggregate, ["column"], BOUNDS),
    def!("expect_column_unique_value_count_to_be_between", Aggregate, ["column"], BOUNDS),
    def!("expect_column_proportion_of_unique_values_to_be_between", Aggregate, ["column"], BOUNDS),
    // dp: freshness (the newest value no older than max_age before as_of, default now)
    def!("expect_column_max_to_be_recent", Aggregate, ["column", "max_age"], ["as_of"]),
    // schema
    def!("expect_table_columns_to_match_ordered_list", Schema, ["column_list"], []),
    def!("expect_table_columns_to_match_set", Schema, ["column_set"], ["exact_match"]),
    def!("expect_table_column_count_to_equal", Schema, ["value"], []),
    def!("expect_table_column_count_to_be_between", Schema, [], ["min_value", "max_value"]),
    def!("expect_column_to_exist", Schema, ["column"], ["column_index"]),
    def!("expect_column_values_to_be_of_type", Schema, ["column", "type_"], []),
    def!("expect_column_values_to_be_in_type_list", Schema, ["column", "type_list"], []),
    // other relations and custom SQL
    def!("expect_column_values_to_be_in_other_table", OtherTable, ["column", "other_table"], ["other_column"]),
    def!("expect_table_row_count_to_equal_other_table", RowCountOther, ["other_table_name"], []),
    def!("unexpected_rows_expectation", Custom, ["unexpected_rows_query"], []),
];

pub fn lookup(name: &str) -> Option<&'static Def> {
    CATALOGUE.iter().find(|d| d.name == name)
}

/// A SQL literal for a YAML value.
pub fn literal(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("'{}'", s.replace('\'', "''")),
        other => format!("'{}'", other.to_string().replace('\'', "''")),
    }
}

pub fn col(name: &str) -> String {
    quote_ident(name)
}

fn s<'a>(kw: &'a Map<String, Value>, k: &str) -> &'a str {
    kw.get(k).and_then(Value::as_str).unwrap_or("")
}

fn b(kw: &Map<String, Value>, k: &str) -> bool {
    kw.get(k).and_then(Value::as_bool).unwrap_or(false)
}

pub fn list(kw: &Map<String, Value>, k: &str) -> Vec<String> {
    kw.get(k).and_then(Value::as_array).map(|a| a.iter().map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())).collect()).unwrap_or_default()
}

/// The columns an expectation reads (for validation and failing rows).
pub fn columns(kw: &Map<String, Value>) -> Vec<String> {
    let mut out = vec![];
    for k in ["column", "column_A", "column_B"] {
        if let Some(c) = kw.get(k).and_then(Value::as_str) {
            out.push(c.to_string());
        }
    }
    out.extend(list(kw, "column_list"));
    out
}

/// `obs` within `min_value` / `max_value` (strict when asked), as SQL.
pub fn bounds_check(obs: &str, kw: &Map<String, Value>) -> String {
    let mut parts = vec![];
    if let Some(v) = kw.get("min_value").filter(|v| !v.is_null()) {
        parts.push(format!("{obs} {} {}", if b(kw, "strict_min") { ">" } else { ">=" }, literal(v)));
    }
    if let Some(v) = kw.get("max_value").filter(|v| !v.is_null()) {
        parts.push(format!("{obs} {} {}", if b(kw, "strict_max") { "<" } else { "<=" }, literal(v)));
    }
    if parts.is_empty() { format!("{obs} is not null") } else { parts.join(" and ") }
}

/// A row-wise expectation: `missing` (rows left out of the count) and
/// `pred` (a row meets the expectation).
#[derive(Debug, Clone, PartialEq)]
pub struct MapSql {
    pub missing: Option<String>,
    pub pred: String,
}

pub fn map_sql(name: &str, kw: &Map<String, Value>) -> MapSql {
    let c = col(s(kw, "column"));
    let not_null = Some(format!("{c} is null"));
    let values = || kw.get("value_set").and_then(Value::as_array).map(|a| a.iter().map(literal).collect::<Vec<_>>().join(", ")).unwrap_or_default();
    let (missing, pred) = match name {
        "expect_column_values_to_not_be_null" => (None, format!("{c} is not null")),
        "expect_column_values_to_be_null" => (None, format!("{c} is null")),
        "expect_column_values_to_be_in_set" => (not_null, if values().is_empty() { "false".into() } else { format!("{c} in ({})", values()) }),
        "expect_column_values_to_not_be_in_set" => (not_null, if values().is_empty() { "true".into() } else { format!("{c} not in ({})", values()) }),
        "expect_column_values_to_be_between" => (not_null, bounds_check(&c, kw)),
        "expect_column_values_to_match_regex" => (not_null, format!("regexp_like(cast({c} as varchar), {})", literal(&kw["regex"]))),
        "expect_column_values_to_not_match_regex" => (not_null, format!("not regexp_like(cast({c} as varchar), {})", literal(&kw["regex"]))),
        "expect_column_values_to_match_regex_list" => {
            let any = s(kw, "match_on") != "all";
            let parts: Vec<String> =
                list(kw, "regex_list").iter().map(|r| format!("regexp_like(cast({c} as varchar), {})", literal(&Value::String(r.clone())))).collect();
            (not_null, if parts.is_empty() { "false".into() } else { parts.join(if any { " or " } else { " and " }) })
        }
        "expect_column_values_to_match_like_pattern" => (not_null, format!("cast({c} as varchar) like {}", literal(&kw["like_pattern"]))),
        "expect_column_values_to_not_match_like_pattern" => (not_null, format!("cast({c} as varchar) not like {}", literal(&kw["like_pattern"]))),
        "expect_column_values_to_be_dateutil_parseable" => (not_null, format!("try_cast(cast({c} as varchar) as timestamp) is not null")),
        "expect_column_value_lengths_to_be_between" => (not_null, bounds_check(&format!("character_length(cast({c} as varchar))"), kw)),
        "expect_column_value_lengths_to_equal" => (not_null, format!("character_length(cast({c} as varchar)) = {}", literal(&kw["value"]))),
        "expect_column_pair_values_to_be_equal" | "expect_column_pair_values_a_to_be_greater_than_b" => {
            let (a, bb) = (col(s(kw, "column_A")), col(s(kw, "column_B")));
            let missing = match s(kw, "ignore_row_if") {
                "either_value_is_missing" => Some(format!("({a} is null or {bb} is null)")),
                "neither" | "never" => None,
                _ => Some(format!("({a} is null and {bb} is null)")),
            };
            let op = if name.ends_with("_equal") {
                "="
            } else if b(kw, "or_equal") {
                ">="
            } else {
                ">"
            };
            (missing, format!("{a} {op} {bb}"))
        }
        "expect_select_column_values_to_be_unique_within_record" => {
            let cols: Vec<String> = list(kw, "column_list").iter().map(|c| col(c)).collect();
            let missing = match s(kw, "ignore_row_if") {
                "any_value_is_missing" => Some(format!("({})", cols.iter().map(|c| format!("{c} is null")).collect::<Vec<_>>().join(" or "))),
                "never" | "neither" => None,
                _ => Some(format!("({})", cols.iter().map(|c| format!("{c} is null")).collect::<Vec<_>>().join(" and "))),
            };
            let mut pairs = vec![];
            for i in 0..cols.len() {
                for j in i + 1..cols.len() {
                    pairs.push(format!("({} is distinct from {})", cols[i], cols[j]));
                }
            }
            (missing, if pairs.is_empty() { "true".into() } else { pairs.join(" and ") })
        }
        _ => (None, "true".into()),
    };
    MapSql { missing, pred }
}

/// The success check of an aggregate over its observed value's SQL name.
pub type Check = Box<dyn Fn(&str) -> String>;

/// An aggregate expectation's SQL: pure aggregate calls, the observed value
/// over them (`{0}`, `{1}`: the aggregates' results) and its success check
/// over the observed value's name. Aggregates stay plain calls so a batch
/// of thousands is planned without the SQL planner's quadratic rewrites.
pub struct AggregateSql {
    pub aggregates: Vec<String>,
    pub value: String,
    pub check: Check,
}

/// The row count of the domain (`cond`'s rows).
pub fn rows_sql(cond: Option<&str>) -> (String, &'static str) {
    match cond {
        Some(k) => (format!("sum(case when {k} then 1 else 0 end)"), "cast(coalesce({0}, 0) as bigint)"),
        None => ("count(1)".into(), "{0}"),
    }
}

pub fn aggregate_sql(name: &str, kw: &Map<String, Value>, cond: Option<&str>, now: chrono::DateTime<chrono::Utc>) -> AggregateSql {
    let c = col(s(kw, "column"));
    let within = |x: &str| match cond {
        Some(k) => format!("case when {k} then {x} end"),
        None => x.to_string(),
    };
    let kwc = kw.clone();
    let bounds: Check = Box::new(move |o: &str| bounds_check(o, &kwc));
    let one = |agg: String, check: Check| AggregateSql { aggregates: vec![agg], value: "{0}".into(), check };
    let (rows, rows_value) = rows_sql(cond);
    match name {
        "expect_table_row_count_to_be_between" => AggregateSql { aggregates: vec![rows], value: rows_value.into(), check: bounds },
        "expect_table_row_count_to_equal" => {
            let v = literal(&kw["value"]);
            AggregateSql { aggregates: vec![rows], value: rows_value.into(), check: Box::new(move |o: &str| format!("{o} = {v}")) }
        }
        "expect_column_min_to_be_between" => one(format!("min({})", within(&c)), bounds),
        "expect_column_max_to_be_between" => one(format!("max({})", within(&c)), bounds),
        "expect_column_mean_to_be_between" => one(format!("avg(cast({} as double))", within(&c)), bounds),
        "expect_column_median_to_be_between" => one(format!("median(cast({} as double))", within(&c)), bounds),
        "expect_column_sum_to_be_between" => one(format!("sum({})", within(&c)), bounds),
        "expect_column_stdev_to_be_between" => one(format!("stddev_samp(cast({} as double))", within(&c)), bounds),
        "expect_column_unique_value_count_to_be_between" => one(format!("count(distinct {})", within(&c)), bounds),
        "expect_column_proportion_of_unique_values_to_be_between" => {
            let x = within(&c);
            AggregateSql {
                aggregates: vec![format!("count(distinct {x})"), format!("count({x})")],
                value: "cast({0} as double) / cast(nullif({1}, 0) as double)".into(),
                check: bounds,
            }
        }
        "expect_column_max_to_be_recent" => {
            let age = kw.get("max_age").and_then(Value::as_str).and_then(parse_duration).unwrap_or_default();
            let as_of = kw.get("as_of").and_then(Value::as_str).and_then(parse_timestamp).unwrap_or(now.naive_utc());
            let cutoff = (as_of - age).format("%Y-%m-%d %H:%M:%S%.6f").to_string();
            one(format!("max(cast({} as timestamp))", within(&c)), Box::new(move |o: &str| format!("{o} >= timestamp '{cutoff}'")))
        }
        _ => AggregateSql { aggregates: vec![rows], value: rows_value.into(), check: Box::new(|_: &str| "true".into()) },
    }
}

/// `48h`, `2d`, `30m`, `90s`, `1w`, `2 days`, `36 hours`.
pub fn parse_duration(text: &str) -> Option<chrono::Duration> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = t.split_at(split);
    let n: i64 = n.parse().ok()?;
    let secs = match unit.trim().trim_end_matches('s') {
        "" if unit.trim() == "s" => 1,
        "sec" | "second" => 1,
        "m" | "min" | "minute" => 60,
        "h" | "hour" => 3600,
        "d" | "day" => 86_400,
        "w" | "week" => 7 * 86_400,
        _ => return None,
    };
    Some(chrono::Duration::seconds(n.checked_mul(secs)?))
}

/// `2024-01-17`, `2024-01-17 12:00:00`, `2024-01-17T12:00:00Z`.
pub fn parse_timestamp(text: &str) -> Option<chrono::NaiveDateTime> {
    let t = text.trim().trim_end_matches('Z');
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"] {
        if let Ok(v) = chrono::NaiveDateTime::parse_from_str(t, f) {
            return Some(v);
        }
    }
    chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0))
}

/// Whether an Arrow type answers to a GX type name (SQL, pandas or Arrow
/// spelling, case-insensitive): `BIGINT`, `int64`, `INTEGER`, `VARCHAR`,
/// `str`, `TIMESTAMP`, `datetime64[ns]`, `DECIMAL(10,2)`, ...
pub fn type_matches(dt: &datafusion::arrow::datatypes::DataType, name: &str) -> bool {
    use datafusion::arrow::datatypes::DataType as D;
    let n = name.trim().to_ascii_lowercase().replace(' ', "");
    if n == dt.to_string().to_ascii_lowercase().replace(' ', "") {
        return true;
    }
    let base = n.split(['(', '[']).next().unwrap_or("").to_string();
    let names: &[&str] = match dt {
        D::Int8 => &["tinyint", "int8", "integer", "int"],
        D::Int16 => &["smallint", "int16", "integer", "int"],
        D::Int32 => &["int", "integer", "int32"],
        D::Int64 => &["bigint", "int64", "integer", "int", "long"],
        D::UInt8 | D::UInt16 | D::UInt32 | D::UInt64 => &["uint8", "uint16", "uint32", "uint64", "integer", "int", "unsigned"],
        D::Float16 | D::Float32 => &["float", "real", "float32", "float4"],
        D::Float64 => &["double", "float", "float64", "float8", "doubleprecision", "double_precision"],
        D::Decimal128(..) | D::Decimal256(..) => &["decimal", "numeric", "number"],
        D::Utf8 | D::LargeUtf8 | D::Utf8View => &["varchar", "string", "text", "str", "object", "utf8", "char"],
        D::Boolean => &["boolean", "bool"],
        D::Date32 | D::Date64 => &["date", "datetime64"],
        D::Timestamp(..) => &["timestamp", "datetime", "datetime64", "timestamp_ntz", "timestamptz", "timestamp_tz"],
        D::Binary | D::LargeBinary | D::BinaryView => &["binary", "bytea", "blob", "bytes"],
        _ => &[],
    };
    names.contains(&base.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kw(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn map_predicates() {
        let m = map_sql("expect_column_values_to_be_in_set", &kw(json!({"column": "status", "value_set": ["a", "b'c"]})));
        assert_eq!(m, MapSql { missing: Some("status is null".into()), pred: "status in ('a', 'b''c')".into() });
        let m = map_sql("expect_column_values_to_be_between", &kw(json!({"column": "q", "min_value": 1, "max_value": 5, "strict_max": true})));
        assert_eq!(m.pred, "q >= 1 and q < 5");
        let m = map_sql("expect_column_pair_values_a_to_be_greater_than_b", &kw(json!({"column_A": "price", "column_B": "cost", "or_equal": true})));
        assert_eq!(m, MapSql { missing: Some("(price is null and cost is null)".into()), pred: "price >= cost".into() });
        let m = map_sql("expect_select_column_values_to_be_unique_within_record", &kw(json!({"column_list": ["a", "b", "c"]})));
        assert_eq!(m.pred, "(a is distinct from b) and (a is distinct from c) and (b is distinct from c)");
    }

    #[test]
    fn every_catalogue_name_is_unique_and_gx_shaped() {
        let mut names: Vec<&str> = CATALOGUE.iter().map(|d| d.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), CATALOGUE.len());
        assert!(names.iter().all(|n| n.starts_with("expect_") || *n == "unexpected_rows_expectation"));
    }

    #[test]
    fn durations_and_types() {
        assert_eq!(parse_duration("48h"), Some(chrono::Duration::hours(48)));
        assert_eq!(parse_duration("2 days"), Some(chrono::Duration::days(2)));
        assert_eq!(parse_duration("90s"), Some(chrono::Duration::seconds(90)));
        assert_eq!(parse_duration("soon"), None);
        use datafusion::arrow::datatypes::DataType as D;
        assert!(type_matches(&D::Int64, "BIGINT"));
        assert!(type_matches(&D::Int64, "int64"));
        assert!(type_matches(&D::Decimal128(10, 2), "DECIMAL(10,2)"));
        assert!(type_matches(&D::Utf8View, "VARCHAR"));
        assert!(!type_matches(&D::Utf8, "INTEGER"));
    }
}
