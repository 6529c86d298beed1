//! Reading a dbt seed CSV into Arrow with dbt's type inference.
//!
//! dbt (`dbt.context.providers` → `dbt_common.clients.agate_helper.from_csv`) reads a
//! seed with agate and a custom `TypeTester` whose candidate types are, in order of
//! preference:
//!
//! 1. `Integer` (dbt's own type; it only accepts Python `int`s, so it never matches a
//!    CSV string and is effectively unused for seeds),
//! 2. `Number` (agate `Decimal` parsing; the adapter then picks `integer` when the
//!    column's `MaxPrecision` is 0 and `float8` otherwise),
//! 3. `Date` (`strptime` format `%Y-%m-%d`),
//! 4. `DateTime` (`strptime` format `%Y-%m-%d %H:%M:%S`),
//! 5. `ISODateTime` (`isodate.parse_datetime`, needs a `T` separator),
//! 6. `Boolean` (only `true` / `false`, case-insensitive),
//! 7. `Text`.
//!
//! Every candidate treats `''` and `'null'` (after stripping whitespace, any case) as
//! NULL; a column keeps the first candidate that accepted every value. dbt-duckdb 1.11
//! then creates the table with those types and (default `fast: true`) loads the file
//! with DuckDB's `COPY ... (FORMAT CSV, HEADER TRUE)`, so the *values* of text
//! columns are the raw fields (whitespace and the literal `null` kept, only empty
//! fields are NULL) and a naive `TIMESTAMP` drops any UTC offset (wall clock kept).
//!
//! Columns listed in `column_types` are forced to text for inference (as in dbt) and
//! their values are parsed straight into the requested SQL type, the way DuckDB's
//! `COPY` casts them.
//!
//! Deliberate differences from dbt-duckdb (which fails on these inputs):
//! * inferred integer columns are `Int32` (DuckDB's `INTEGER`) when every value fits
//!   32 bits, else `Int64` (where DuckDB fails); a value beyond 64 bits is a precise
//!   error;
//! * `null`/whitespace-only values in non-text inferred columns are NULL (agate's
//!   reading; DuckDB's COPY would reject them), and agate's number decorations
//!   (`1,000`, `$5`, `50%`) parse to their numeric values (DuckDB's COPY rejects them);
//! * an integer column containing `NaN`/`Infinity` becomes `Float64`;
//! * ragged rows, empty and duplicate header names are errors (agate pads short rows
//!   and renames empty/duplicate headers).

use std::sync::{Arc, LazyLock};

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Timelike};
use datafusion::arrow::{
    array::{
        ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array, Int8Array, Int16Array, Int32Array, Int64Array, StringBuilder,
        Time64MicrosecondArray, TimestampMicrosecondArray, UInt8Array, UInt16Array, UInt32Array, UInt64Array,
    },
    datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit},
    error::ArrowError,
    record_batch::RecordBatch,
};
use indexmap::IndexMap;
use regex::Regex;

/// Maximum number of rows in one produced `RecordBatch`.
pub const BATCH_ROWS: usize = 8192;

/// How to read a seed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedOptions {
    /// Field delimiter (dbt's `delimiter` seed config), default `b','`.
    pub delimiter: u8,
    /// Column name -> SQL type name (dbt's `column_types` seed config). Overrides
    /// inference; names are matched exactly, as dbt's `column_override.get(col_name)`.
    pub column_types: IndexMap<String, String>,
    /// An inferred integer column is `Int32` when every value fits 32 bits
    /// (dbt-duckdb's INTEGER; the default), else `Int64`. `dp ingest` keeps
    /// `Int64`, so a later file's larger values fit the same column type.
    pub int32_when_fits: bool,
}

impl Default for SeedOptions {
    fn default() -> Self {
        SeedOptions { delimiter: b',', column_types: IndexMap::new(), int32_when_fits: true }
    }
}

/// A seed read into Arrow.
#[derive(Debug, Clone)]
pub struct SeedData {
    pub schema: SchemaRef,
    /// Batches of at most [`BATCH_ROWS`] rows; empty when the file has no data rows.
    pub batches: Vec<RecordBatch>,
    pub rows: usize,
}

/// Why a seed could not be read. Every message names the file (and the 1-based line of
/// the CSV record where one applies) and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("{file}: the file is empty — a seed needs a header row naming its columns")]
    Empty { file: String },

    #[error("{file}:{line}: row has {found} fields, header has {expected} — fix the row or quote the field containing the delimiter")]
    TooManyFields { file: String, line: u64, found: usize, expected: usize },

    #[error("{file}:{line}: row has {found} fields, header has {expected} — add the missing fields (leave a field empty for NULL)")]
    TooFewFields { file: String, line: u64, found: usize, expected: usize },

    #[error("{file}:{line}: invalid UTF-8 in {what} — save the file as UTF-8")]
    InvalidUtf8 { file: String, line: u64, what: String },

    #[error("{file}:{line}: malformed CSV: {message}")]
    Csv { file: String, line: u64, message: String },

    #[error("{file}:1: header field {index} is empty — give every column a name")]
    EmptyHeader { file: String, index: usize },

    #[error("{file}:1: duplicate column name \"{name}\" (header fields {first} and {second}; names are compared case-insensitively) — rename one of them")]
    DuplicateHeader { file: String, name: String, first: usize, second: usize },

    #[error(
        "{file}: column_types: {message} for column \"{column}\" — use a type such as varchar, integer, bigint, double, decimal(p,s), boolean, date, timestamp or timestamptz"
    )]
    UnknownType { file: String, column: String, message: String },

    /// A value that does not parse as its column's type (boxed to keep results small).
    #[error(transparent)]
    BadValue(Box<BadValue>),

    #[error("{file}: building Arrow data: {source}")]
    Arrow {
        file: String,
        #[source]
        source: ArrowError,
    },
}

/// Details of [`SeedError::BadValue`].
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: column \"{column}\": cannot read \"{value}\" as {ty}: {reason} — {hint}")]
pub struct BadValue {
    pub file: String,
    /// 1-based line of the CSV record.
    pub line: u64,
    pub column: String,
    /// The raw field (shortened to 80 characters).
    pub value: String,
    /// The SQL type name (as written in `column_types`, or the inferred type).
    pub ty: String,
    pub reason: String,
    pub hint: String,
}

// ---------------------------------------------------------------------------------
// SQL type names
// ---------------------------------------------------------------------------------

/// Map a SQL type name as users write it in `column_types` / CAST to Arrow.
///
/// Names follow DuckDB (dbt-duckdb's database): `int`/`integer` is 32-bit, `float`/`real`
/// is 32-bit, `double`/`float8` is 64-bit, `decimal` without arguments is
/// `decimal(18,3)`, `timestamp` is naive microseconds and `timestamptz` is UTC
/// microseconds. Matching is case-insensitive; length arguments on string types
/// (`varchar(255)`) are accepted and ignored.
pub fn sql_type_to_arrow(ty: &str) -> Result<DataType, String> {
    let norm = ty.split_whitespace().collect::<Vec<_>>().join(" ").to_ascii_lowercase();
    if norm.is_empty() {
        return Err("empty type name".to_string());
    }
    let (base, args) = match norm.find('(') {
        Some(open) => {
            let Some(inner) = norm[open + 1..].strip_suffix(')') else {
                return Err(format!("malformed type \"{ty}\" (unbalanced parentheses)"));
            };
            let args: Vec<&str> = inner.split(',').map(str::trim).collect();
            (norm[..open].trim_end(), Some(args))
        }
        None => (norm.as_str(), None),
    };
    let parse_args = |args: &[&str]| -> Result<Vec<i64>, String> {
        args.iter().map(|a| a.parse::<i64>().map_err(|_| format!("invalid type argument \"{a}\" in \"{ty}\""))).collect()
    };
    let no_args = |dt: DataType| -> Result<DataType, String> {
        match &args {
            None => Ok(dt),
            Some(_) => Err(format!("type \"{base}\" takes no arguments (got \"{ty}\")")),
        }
    };
    match base {
        "varchar" | "text" | "string" | "char" | "bpchar" | "character" | "character varying" | "nvarchar" | "nchar" => {
            if let Some(a) = &args {
                parse_args(a)?;
            }
            Ok(DataType::Utf8)
        }
        "tinyint" | "int1" => no_args(DataType::Int8),
        "smallint" | "int2" | "short" => no_args(DataType::Int16),
        "integer" | "int" | "int4" | "signed" => no_args(DataType::Int32),
        "bigint" | "int8" | "long" => no_args(DataType::Int64),
        "utinyint" => no_args(DataType::UInt8),
        "usmallint" => no_args(DataType::UInt16),
        "uinteger" => no_args(DataType::UInt32),
        "ubigint" => no_args(DataType::UInt64),
        "real" | "float4" => no_args(DataType::Float32),
        "float" => match &args {
            None => Ok(DataType::Float32),
            Some(a) => match parse_args(a)?.as_slice() {
                [p] if (1..=24).contains(p) => Ok(DataType::Float32),
                [p] if (25..=53).contains(p) => Ok(DataType::Float64),
                _ => Err(format!("invalid float precision in \"{ty}\" (expected 1 to 53)")),
            },
        },
        "double" | "float8" | "double precision" => no_args(DataType::Float64),
        "decimal" | "numeric" | "dec" => {
            let (p, s) = match &args {
                None => (18, 3),
                Some(a) => match parse_args(a)?.as_slice() {
                    [p] => (*p, 0),
                    [p, s] => (*p, *s),
                    _ => {
                        return Err(format!("\"{ty}\": decimal takes (precision) or (precision, scale)"));
                    }
                },
            };
            if !(1..=38).contains(&p) {
                return Err(format!("\"{ty}\": decimal precision must be between 1 and 38"));
            }
            if !(0..=p).contains(&s) {
                return Err(format!("\"{ty}\": decimal scale must be between 0 and the precision"));
            }
            Ok(DataType::Decimal128(p as u8, s as i8))
        }
        "boolean" | "bool" | "logical" => no_args(DataType::Boolean),
        "date" => no_args(DataType::Date32),
        "timestamp" | "datetime" | "timestamp without time zone" => no_args(DataType::Timestamp(TimeUnit::Microsecond, None)),
        "timestamptz" | "timestamp with time zone" => no_args(DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))),
        "time" | "time without time zone" => no_args(DataType::Time64(TimeUnit::Microsecond)),
        _ => Err(format!("unknown type \"{ty}\"")),
    }
}

// ---------------------------------------------------------------------------------
// Python-compatible helpers
// ---------------------------------------------------------------------------------

/// Python `str.strip()` with no argument (Unicode whitespace, including \x1c-\x1f).
fn py_strip(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

/// dbt's type tester gives every type `null_values=("null", "")`; agate lower-cases the
/// (stripped) value before comparing.
fn is_null_token(stripped: &str) -> bool {
    stripped.is_empty() || stripped.eq_ignore_ascii_case("null")
}

/// A parsed Python `Decimal`, normalized (no leading/trailing zeros in `digits`;
/// zero is `digits == "0", exp == 0`).
#[derive(Debug, Clone, PartialEq)]
enum Num {
    Finite { neg: bool, digits: String, exp: i64 },
    Inf { neg: bool },
    NaN,
}

/// Python's decimal context precision (`getcontext().prec`).
const DEC_PREC: usize = 28;

impl Num {
    fn to_f64(&self) -> f64 {
        match self {
            Num::NaN => f64::NAN,
            Num::Inf { neg } => {
                if *neg {
                    f64::NEG_INFINITY
                } else {
                    f64::INFINITY
                }
            }
            Num::Finite { neg, digits, exp } => {
                let v: f64 = format!("{digits}e{exp}").parse().unwrap_or(f64::NAN);
                if *neg { -v } else { v }
            }
        }
    }

    /// The value rounded to `scale` fractional digits (half away from zero, as DuckDB's
    /// casts do), scaled by 10^scale. `None` when it does not fit in an i128.
    fn to_scaled_i128(&self, scale: i64) -> Option<i128> {
        let Num::Finite { neg, digits, exp } = self else {
            return None;
        };
        let shift = exp + scale; // value * 10^scale = digits * 10^shift
        let mut v: i128 = 0;
        if shift >= 0 {
            if digits.len() as i64 + shift > 38 {
                return None;
            }
            for b in digits.bytes() {
                v = v * 10 + i128::from(b - b'0');
            }
            for _ in 0..shift {
                v = v.checked_mul(10)?;
            }
        } else {
            let drop = (-shift) as usize;
            let keep = digits.len().saturating_sub(drop);
            if keep > 38 {
                return None;
            }
            for b in digits[..keep].bytes() {
                v = v * 10 + i128::from(b - b'0');
            }
            // First dropped digit decides the rounding (half away from zero).
            let first_dropped = if drop > digits.len() { b'0' } else { digits.as_bytes()[keep] };
            if first_dropped >= b'5' {
                v = v.checked_add(1)?;
            }
        }
        Some(if *neg { -v } else { v })
    }
}

/// Parse a string the way Python's `Decimal(str)` does (ASCII digits only), including
/// the context rounding to 28 significant digits that agate's `Decimal(d) * sign`
/// applies. `None` when Python would raise.
fn py_decimal(s: &str) -> Option<Num> {
    let s: String = py_strip(s).chars().filter(|&c| c != '_').collect();
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, &s[..]),
    };
    let lower = body.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        return Some(Num::Inf { neg });
    }
    if let Some(payload) = lower.strip_prefix("nan") {
        return payload.bytes().all(|b| b.is_ascii_digit()).then_some(Num::NaN);
    }
    // decimal-part [exponent-part]
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int_part, frac_part) = match mantissa.find('.') {
        Some(i) => (&mantissa[..i], &mantissa[i + 1..]),
        None => (mantissa, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if !int_part.bytes().all(|b| b.is_ascii_digit()) || !frac_part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut exp: i64 = match exponent {
        None => 0,
        Some(e) => {
            let (eneg, edigits) = match e.as_bytes().first() {
                Some(b'-') => (true, &e[1..]),
                Some(b'+') => (false, &e[1..]),
                _ => (false, e),
            };
            if edigits.is_empty() || !edigits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let trimmed = edigits.trim_start_matches('0');
            // Python would overflow its context (Emax 999999) anyway.
            if trimmed.len() > 7 {
                return None;
            }
            let v: i64 = trimmed.parse().unwrap_or(0);
            if eneg { -v } else { v }
        }
    };
    exp -= frac_part.len() as i64;
    let mut digits: String = format!("{int_part}{frac_part}").trim_start_matches('0').to_string();
    if digits.is_empty() {
        return Some(Num::Finite { neg, digits: "0".into(), exp: 0 });
    }
    // Context rounding to 28 significant digits (ROUND_HALF_EVEN).
    if digits.len() > DEC_PREC {
        let extra = digits.len() - DEC_PREC;
        let rest = &digits.as_bytes()[DEC_PREC..];
        let mut kept: Vec<u8> = digits.as_bytes()[..DEC_PREC].to_vec();
        let first = rest[0];
        let tail_nonzero = rest[1..].iter().any(|&b| b != b'0');
        let last_odd = (kept[DEC_PREC - 1] - b'0') % 2 == 1;
        let round_up = first > b'5' || (first == b'5' && (tail_nonzero || last_odd));
        if round_up {
            let mut i = DEC_PREC;
            loop {
                if i == 0 {
                    kept.insert(0, b'1');
                    kept.pop();
                    exp += 1;
                    break;
                }
                i -= 1;
                if kept[i] == b'9' {
                    kept[i] = b'0';
                } else {
                    kept[i] += 1;
                    break;
                }
            }
        }
        exp += extra as i64;
        digits = String::from_utf8(kept).unwrap_or_default();
    }
    // normalize(): strip trailing zeros into the exponent.
    let trimmed = digits.trim_end_matches('0');
    exp += (digits.len() - trimmed.len()) as i64;
    Some(Num::Finite { neg, digits: trimmed.to_string(), exp })
}

/// agate's currency symbols (`agate.data_types.number.DEFAULT_CURRENCY_SYMBOLS`).
const CURRENCY_SYMBOLS: [char; 19] = ['؋', '$', 'ƒ', '៛', '¥', '₡', '₱', '£', '€', '¢', '﷼', '₪', '₩', '₭', '₮', '₦', '฿', '₤', '₫'];

/// `agate.Number(null_values=("null", "")).cast` (locale en_US): `Some(None)` is NULL,
/// `None` is "not a number".
fn agate_number(raw: &str) -> Option<Option<Num>> {
    let d = py_strip(raw);
    if is_null_token(d) {
        return Some(None);
    }
    let mut d = d.trim_matches('%');
    let mut neg = false;
    if let Some(rest) = d.strip_prefix('-') {
        d = rest;
        neg = true;
    }
    for sym in CURRENCY_SYMBOLS {
        d = d.trim_matches(sym);
    }
    let d = d.replace(',', "");
    let mut n = py_decimal(&d)?;
    if neg {
        match &mut n {
            Num::Finite { neg, .. } | Num::Inf { neg } => *neg = !*neg,
            Num::NaN => {}
        }
    }
    Some(Some(n))
}

/// `agate.Boolean(true_values=("true",), false_values=("false",), null_values=("null", ""))`.
fn agate_boolean(raw: &str) -> Option<Option<bool>> {
    let without_commas = raw.replace(',', "");
    let d = py_strip(&without_commas);
    if is_null_token(d) {
        Some(None)
    } else if d.eq_ignore_ascii_case("true") {
        Some(Some(true))
    } else if d.eq_ignore_ascii_case("false") {
        Some(Some(false))
    } else {
        None
    }
}

// Python `_strptime` regexes for %Y, %m, %d, %H, %M, %S (ASCII digits).
const PY_YMD: &str = r"([0-9]{4})-(1[0-2]|0[1-9]|[1-9])-(3[01]|[12][0-9]|0[1-9]|[1-9]| [1-9])";
static STRPTIME_DATE: LazyLock<Regex> = LazyLock::new(|| Regex::new(&format!("^{PY_YMD}$")).expect("valid regex"));
static STRPTIME_DATETIME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!(r"^{PY_YMD}\s+(2[0-3]|[0-1][0-9]|[0-9]):([0-5][0-9]|[0-9]):(6[0-1]|[0-5][0-9]|[0-9])$")).expect("valid regex"));

fn cap_u32(c: &regex::Captures<'_>, i: usize) -> u32 {
    c.get(i).map(|m| m.as_str().trim().parse().unwrap_or(0)).unwrap_or(0)
}

fn py_date(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
    // Python's date starts at year 1.
    if y < 1 { None } else { NaiveDate::from_ymd_opt(y, m, d) }
}

/// `agate.Date(date_format="%Y-%m-%d")` on a stripped, non-null value.
fn strptime_date(d: &str) -> Option<NaiveDate> {
    let c = STRPTIME_DATE.captures(d)?;
    py_date(cap_u32(&c, 1) as i32, cap_u32(&c, 2), cap_u32(&c, 3))
}

/// `agate.DateTime(datetime_format="%Y-%m-%d %H:%M:%S")` on a stripped, non-null value.
fn strptime_datetime(d: &str) -> Option<NaiveDateTime> {
    let c = STRPTIME_DATETIME.captures(d)?;
    let date = py_date(cap_u32(&c, 1) as i32, cap_u32(&c, 2), cap_u32(&c, 3))?;
    let time = NaiveTime::from_hms_opt(cap_u32(&c, 4), cap_u32(&c, 5), cap_u32(&c, 6))?;
    Some(date.and_time(time))
}

// isodate 0.7 `parse_date(yeardigits=4, expanded=False)` patterns, in order.
static ISO_DATES: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    [
        r"^(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})$",
        r"^(?P<year>[0-9]{4})(?P<month>[0-9]{2})(?P<day>[0-9]{2})$",
        r"^(?P<year>[0-9]{4})-W(?P<week>[0-9]{2})-(?P<day>[0-9])$",
        r"^(?P<year>[0-9]{4})W(?P<week>[0-9]{2})(?P<day>[0-9])$",
        r"^(?P<year>[0-9]{4})-(?P<day>[0-9]{3})$",
        r"^(?P<year>[0-9]{4})(?P<day>[0-9]{3})$",
        r"^(?P<year>[0-9]{4})-W(?P<week>[0-9]{2})$",
        r"^(?P<year>[0-9]{4})W(?P<week>[0-9]{2})$",
        r"^(?P<year>[0-9]{4})-(?P<month>[0-9]{2})$",
        r"^(?P<year>[0-9]{4})(?P<month>[0-9]{2})$",
        r"^(?P<year>[0-9]{4})$",
        r"^(?P<century>[0-9]{2})$",
    ]
    .iter()
    .map(|p| Regex::new(p).expect("valid regex"))
    .collect()
});

// isodate 0.7 `parse_time` patterns, in order (TZ_REGEX appended).
static ISO_TIMES: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    const TZ: &str = r"(?P<tzname>(Z|(?P<tzsign>[+-])(?P<tzhour>[0-9]{2})(:?(?P<tzmin>[0-9]{2}))?)?)";
    [
        r"T?(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})(?P<frac>[,.][0-9]+)?",
        r"T?(?P<hour>[0-9]{2})(?P<minute>[0-9]{2})(?P<second>[0-9]{2})(?P<frac>[,.][0-9]+)?",
        r"T?(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})(?P<frac>[,.][0-9]+)?",
        r"T?(?P<hour>[0-9]{2})(?P<minute>[0-9]{2})(?P<frac>[,.][0-9]+)?",
        r"T?(?P<hour>[0-9]{2})(?P<frac>[,.][0-9]+)?",
    ]
    .iter()
    .map(|p| Regex::new(&format!("^{p}{TZ}$")).expect("valid regex"))
    .collect()
});

fn named_u32(c: &regex::Captures<'_>, name: &str) -> Option<u32> {
    c.name(name).map(|m| m.as_str().parse().unwrap_or(0))
}

/// `isodate.parse_date`.
fn iso_date(s: &str) -> Option<NaiveDate> {
    let c = ISO_DATES.iter().find_map(|re| re.captures(s))?;
    if let Some(century) = named_u32(&c, "century") {
        return py_date(century as i32 * 100 + 1, 1, 1);
    }
    let year = named_u32(&c, "year")? as i32;
    if let Some(month) = named_u32(&c, "month") {
        // `int(groups["month"]) or defaultmonth`: month 00 means January.
        let month = if month == 0 { 1 } else { month };
        return py_date(year, month, named_u32(&c, "day").unwrap_or(1));
    }
    let jan1 = py_date(year, 1, 1)?;
    let max = NaiveDate::from_ymd_opt(9999, 12, 31)?;
    let within = |d: NaiveDate| (d >= NaiveDate::from_ymd_opt(1, 1, 1)? && d <= max).then_some(d);
    if let Some(week) = named_u32(&c, "week") {
        let day = named_u32(&c, "day").unwrap_or(1);
        let iso = jan1.iso_week();
        let weeks = i64::from(week) - if iso.week() == 1 { 1 } else { 0 };
        let days = -i64::from(jan1.weekday().number_from_monday()) + i64::from(day);
        return within(jan1.checked_add_signed(TimeDelta::weeks(weeks) + TimeDelta::days(days))?);
    }
    if let Some(day) = named_u32(&c, "day") {
        return within(jan1.checked_add_signed(TimeDelta::days(i64::from(day) - 1))?);
    }
    Some(jan1)
}

/// Digits of a fraction (without separator) as numerator / 10^len, truncated to 20
/// digits so the arithmetic below stays within u128.
fn fraction(frac: &str) -> (u128, u128) {
    let f = &frac[..frac.len().min(20)];
    (f.parse().unwrap_or(0), 10u128.pow(f.len() as u32))
}

/// `isodate.parse_time`, returning the naive wall-clock time (the UTC offset is
/// validated but dropped, as DuckDB does when casting to TIMESTAMP).
fn iso_time(s: &str) -> Option<NaiveTime> {
    let c = ISO_TIMES.iter().find_map(|re| re.captures(s))?;
    let hour = named_u32(&c, "hour")?;
    let frac = c.name("frac").map(|m| &m.as_str()[1..]).unwrap_or("");
    let (num, den) = fraction(frac);
    let (minute, second, micro) = if let Some(second) = named_u32(&c, "second") {
        // Decimal(second).quantize(Decimal(".000001"), ROUND_FLOOR)
        (named_u32(&c, "minute")?, second, (num * 1_000_000 / den) as u32)
    } else if let Some(minute) = named_u32(&c, "minute") {
        let micros = num * 60_000_000 / den; // floor
        (minute, (micros / 1_000_000) as u32, (micros % 1_000_000) as u32)
    } else {
        // hour fraction; microseconds rounded half-even by `to_integral()`
        let scaled = num * 3_600_000_000;
        let (q, r) = (scaled / den, scaled % den);
        let micros = if r * 2 > den || (r * 2 == den && q % 2 == 1) { q + 1 } else { q };
        let m = micros / 60_000_000;
        let rest = micros % 60_000_000;
        let (sec, us) = (rest / 1_000_000, rest % 1_000_000);
        (m as u32, sec as u32, us as u32)
    };
    if hour > 23 || minute > 59 || second > 59 || micro > 999_999 {
        return None;
    }
    NaiveTime::from_hms_micro_opt(hour, minute, second, micro)
}

/// dbt's `ISODateTime` (`isodate.parse_datetime`) on a stripped, non-null value.
fn iso_datetime(d: &str) -> Option<NaiveDateTime> {
    let mut parts = d.split('T');
    let (date, time) = (parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    Some(iso_date(date)?.and_time(iso_time(time)?))
}

// ---------------------------------------------------------------------------------
// DuckDB-style parsing for `column_types` overrides
// ---------------------------------------------------------------------------------

static DUCK_TIMESTAMP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?P<y>[0-9]{1,6})-(?P<mo>[0-9]{1,2})-(?P<d>[0-9]{1,2})(?:(?:T|\s+)(?P<h>[0-9]{1,2}):(?P<mi>[0-9]{1,2})(?::(?P<s>[0-9]{1,2})(?:\.(?P<f>[0-9]+))?)?)?\s*(?P<tz>Z|UTC|(?P<sign>[+-])(?P<th>[0-9]{2})(?::?(?P<tm>[0-9]{2}))?)?$",
    )
    .expect("valid regex")
});
static DUCK_TIME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(?P<h>[0-9]{1,2}):(?P<mi>[0-9]{1,2})(?::(?P<s>[0-9]{1,2})(?:\.(?P<f>[0-9]+))?)?$").expect("valid regex"));

fn micros_of_fraction(c: &regex::Captures<'_>) -> u32 {
    c.name("f")
        .map(|f| {
            let f = f.as_str();
            let six: String = f.chars().chain(std::iter::repeat('0')).take(6).collect();
            six.parse().unwrap_or(0)
        })
        .unwrap_or(0)
}

/// A timestamp as DuckDB reads one: `YYYY-MM-DD[( |T)HH:MM[:SS[.ffffff]]][Z|UTC|±HH[:MM]]`.
/// Returns the wall-clock time and the UTC offset in seconds, if any.
fn duck_timestamp(s: &str) -> Option<(NaiveDateTime, Option<i64>)> {
    let c = DUCK_TIMESTAMP.captures(s)?;
    let date = NaiveDate::from_ymd_opt(named_u32(&c, "y")? as i32, named_u32(&c, "mo")?, named_u32(&c, "d")?)?;
    let time = NaiveTime::from_hms_micro_opt(
        named_u32(&c, "h").unwrap_or(0),
        named_u32(&c, "mi").unwrap_or(0),
        named_u32(&c, "s").unwrap_or(0),
        micros_of_fraction(&c),
    )?;
    let offset = c.name("tz").map(|_| {
        let sign = if c.name("sign").map(|m| m.as_str()) == Some("-") { -1 } else { 1 };
        sign * (i64::from(named_u32(&c, "th").unwrap_or(0)) * 3600 + i64::from(named_u32(&c, "tm").unwrap_or(0)) * 60)
    });
    Some((date.and_time(time), offset))
}

fn duck_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "t" | "1" | "yes" | "y" => Some(true),
        "false" | "f" | "0" | "no" | "n" => Some(false),
        _ => None,
    }
}

const UNIX_EPOCH_DATE: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");

fn date32(d: NaiveDate) -> i64 {
    (d - UNIX_EPOCH_DATE).num_days()
}

fn micros(dt: NaiveDateTime) -> i64 {
    dt.and_utc().timestamp_micros()
}

// ---------------------------------------------------------------------------------
// Inference
// ---------------------------------------------------------------------------------

/// agate type tester candidates, in dbt's order of preference (Text is the fallback).
const NUMBER: u8 = 1;
const DATE: u8 = 2;
const DATETIME: u8 = 4;
const ISODATETIME: u8 = 8;
const BOOLEAN: u8 = 16;
const ALL: u8 = NUMBER | DATE | DATETIME | ISODATETIME | BOOLEAN;

#[derive(Debug, Clone)]
struct Inference {
    candidates: u8,
    /// agate `max_precision` state over the Number values (skipping NaN/Infinity).
    max_whole: i64,
    max_decimals: i64,
    non_finite: bool,
}

impl Inference {
    fn new() -> Self {
        Inference { candidates: ALL, max_whole: 1, max_decimals: 0, non_finite: false }
    }

    fn observe(&mut self, raw: &str) {
        if self.candidates & NUMBER != 0 {
            match agate_number(raw) {
                None => self.candidates &= !NUMBER,
                Some(None) => {}
                Some(Some(Num::Finite { digits, exp, .. })) => {
                    let decimals = -exp;
                    let whole = digits.len() as i64 - decimals;
                    self.max_whole = self.max_whole.max(whole);
                    self.max_decimals = self.max_decimals.max(decimals);
                }
                Some(Some(_)) => self.non_finite = true,
            }
        }
        if self.candidates & (DATE | DATETIME | ISODATETIME) != 0 {
            let d = py_strip(raw);
            if !is_null_token(d) {
                if self.candidates & DATE != 0 && strptime_date(d).is_none() {
                    self.candidates &= !DATE;
                }
                if self.candidates & DATETIME != 0 && strptime_datetime(d).is_none() {
                    self.candidates &= !DATETIME;
                }
                if self.candidates & ISODATETIME != 0 && iso_datetime(d).is_none() {
                    self.candidates &= !ISODATETIME;
                }
            }
        }
        if self.candidates & BOOLEAN != 0 && agate_boolean(raw).is_none() {
            self.candidates &= !BOOLEAN;
        }
    }

    fn finish(&self) -> Kind {
        if self.candidates & NUMBER != 0 {
            // agate.utils.max_precision clamps to the context precision.
            let mut decimals = self.max_decimals;
            if self.max_whole + decimals > DEC_PREC as i64 {
                decimals = DEC_PREC as i64 - self.max_whole;
            }
            if decimals != 0 || self.non_finite { Kind::Float } else { Kind::Integer }
        } else if self.candidates & DATE != 0 {
            Kind::Date
        } else if self.candidates & DATETIME != 0 {
            Kind::DateTime
        } else if self.candidates & ISODATETIME != 0 {
            Kind::IsoDateTime
        } else if self.candidates & BOOLEAN != 0 {
            Kind::Boolean
        } else {
            Kind::Text
        }
    }
}

/// How a column's values are read.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Integer,
    Float,
    Date,
    DateTime,
    IsoDateTime,
    Boolean,
    Text,
    Override { dt: DataType },
}

impl Kind {
    fn data_type(&self) -> DataType {
        match self {
            Kind::Integer => DataType::Int64,
            Kind::Float => DataType::Float64,
            Kind::Date => DataType::Date32,
            Kind::DateTime | Kind::IsoDateTime => DataType::Timestamp(TimeUnit::Microsecond, None),
            Kind::Boolean => DataType::Boolean,
            Kind::Text => DataType::Utf8,
            Kind::Override { dt, .. } => dt.clone(),
        }
    }
}

// ---------------------------------------------------------------------------------
// Values and column buffers
// ---------------------------------------------------------------------------------

enum Val<'a> {
    Null,
    Str(&'a str),
    Bool(bool),
    /// Integers, decimals (scaled), dates (days), timestamps and times (microseconds).
    Int(i128),
    Float(f64),
}

enum Buf {
    Str(StringBuilder),
    Bool(Vec<Option<bool>>),
    Int(Vec<Option<i128>>),
    Float(Vec<Option<f64>>),
}

impl Buf {
    fn new(dt: &DataType) -> Buf {
        match dt {
            DataType::Utf8 => Buf::Str(StringBuilder::new()),
            DataType::Boolean => Buf::Bool(Vec::new()),
            DataType::Float32 | DataType::Float64 => Buf::Float(Vec::new()),
            _ => Buf::Int(Vec::new()),
        }
    }

    fn push(&mut self, v: Val<'_>) {
        match (self, v) {
            (Buf::Str(b), Val::Str(s)) => b.append_value(s),
            (Buf::Str(b), _) => b.append_null(),
            (Buf::Bool(b), Val::Bool(x)) => b.push(Some(x)),
            (Buf::Bool(b), _) => b.push(None),
            (Buf::Int(b), Val::Int(x)) => b.push(Some(x)),
            (Buf::Int(b), _) => b.push(None),
            (Buf::Float(b), Val::Float(x)) => b.push(Some(x)),
            (Buf::Float(b), _) => b.push(None),
        }
    }

    /// Build the array for `dt` and reset the buffer. Values were range-checked when
    /// parsed, so the narrowing casts below are exact.
    fn finish(&mut self, dt: &DataType) -> Result<ArrayRef, ArrowError> {
        fn ints<T>(v: &[Option<i128>], f: impl Fn(i128) -> T) -> impl Iterator<Item = Option<T>> {
            v.iter().map(move |x| x.map(&f))
        }
        let arr: ArrayRef = match self {
            Buf::Str(b) => Arc::new(b.finish()),
            Buf::Bool(v) => Arc::new(BooleanArray::from(std::mem::take(v))),
            Buf::Float(v) => {
                let v = std::mem::take(v);
                match dt {
                    DataType::Float32 => Arc::new(v.iter().map(|x| x.map(|x| x as f32)).collect::<Float32Array>()),
                    _ => Arc::new(Float64Array::from(v)),
                }
            }
            Buf::Int(v) => {
                let v = std::mem::take(v);
                match dt {
                    DataType::Int8 => Arc::new(ints(&v, |x| x as i8).collect::<Int8Array>()),
                    DataType::Int16 => Arc::new(ints(&v, |x| x as i16).collect::<Int16Array>()),
                    DataType::Int32 => Arc::new(ints(&v, |x| x as i32).collect::<Int32Array>()),
                    DataType::Int64 => Arc::new(ints(&v, |x| x as i64).collect::<Int64Array>()),
                    DataType::UInt8 => Arc::new(ints(&v, |x| x as u8).collect::<UInt8Array>()),
                    DataType::UInt16 => Arc::new(ints(&v, |x| x as u16).collect::<UInt16Array>()),
                    DataType::UInt32 => Arc::new(ints(&v, |x| x as u32).collect::<UInt32Array>()),
                    DataType::UInt64 => Arc::new(ints(&v, |x| x as u64).collect::<UInt64Array>()),
                    DataType::Date32 => Arc::new(ints(&v, |x| x as i32).collect::<Date32Array>()),
                    DataType::Time64(_) => Arc::new(ints(&v, |x| x as i64).collect::<Time64MicrosecondArray>()),
                    DataType::Timestamp(_, tz) => Arc::new(ints(&v, |x| x as i64).collect::<TimestampMicrosecondArray>().with_timezone_opt(tz.clone())),
                    DataType::Decimal128(p, s) => Arc::new(ints(&v, |x| x).collect::<Decimal128Array>().with_precision_and_scale(*p, *s)?),
                    other => {
                        return Err(ArrowError::NotYetImplemented(format!("seed column type {other}")));
                    }
                }
            }
        };
        Ok(arr)
    }
}

/// A parse failure: (reason, hint).
type ParseFail = (String, String);

fn override_hint(column: &str) -> String {
    format!("fix the value, or change column_types.{column} for this seed")
}

fn int_range(dt: &DataType) -> (i128, i128) {
    match dt {
        DataType::Int8 => (i8::MIN.into(), i8::MAX.into()),
        DataType::Int16 => (i16::MIN.into(), i16::MAX.into()),
        DataType::Int32 => (i32::MIN.into(), i32::MAX.into()),
        DataType::UInt8 => (0, u8::MAX.into()),
        DataType::UInt16 => (0, u16::MAX.into()),
        DataType::UInt32 => (0, u32::MAX.into()),
        DataType::UInt64 => (0, u64::MAX.into()),
        _ => (i64::MIN.into(), i64::MAX.into()),
    }
}

/// Parse one raw field for a column. `column` is the header name (for hints).
fn parse_value<'a>(kind: &Kind, column: &str, raw: &'a str) -> Result<Val<'a>, ParseFail> {
    // Text: DuckDB's COPY keeps the raw field; only an empty field is NULL.
    let is_text = matches!(kind, Kind::Text) || matches!(kind, Kind::Override { dt: DataType::Utf8, .. });
    if is_text {
        return Ok(if raw.is_empty() { Val::Null } else { Val::Str(raw) });
    }
    let stripped = py_strip(raw);
    if is_null_token(stripped) {
        return Ok(Val::Null);
    }
    let not_a = |what: &str| -> ParseFail { (format!("not a valid {what}"), "fix the value".to_string()) };
    match kind {
        Kind::Integer => match agate_number(raw) {
            Some(Some(n)) => match n.to_scaled_i128(0) {
                Some(v) if (i128::from(i64::MIN)..=i128::from(i64::MAX)).contains(&v) => Ok(Val::Int(v)),
                _ => Err((
                    "out of range for a 64-bit integer".to_string(),
                    format!("declare the column in column_types (e.g. {column}: varchar or decimal(38,0))"),
                )),
            },
            _ => Err(not_a("number")),
        },
        Kind::Float => match agate_number(raw) {
            Some(Some(n)) => Ok(Val::Float(n.to_f64())),
            _ => Err(not_a("number")),
        },
        Kind::Date => strptime_date(stripped).map(|d| Val::Int(date32(d).into())).ok_or_else(|| not_a("date")),
        Kind::DateTime => strptime_datetime(stripped).map(|t| Val::Int(micros(t).into())).ok_or_else(|| not_a("timestamp")),
        Kind::IsoDateTime => iso_datetime(stripped).map(|t| Val::Int(micros(t).into())).ok_or_else(|| not_a("timestamp")),
        Kind::Boolean => match agate_boolean(raw) {
            Some(Some(b)) => Ok(Val::Bool(b)),
            // agate.Boolean drops commas before its null check: "," is NULL.
            Some(None) => Ok(Val::Null),
            None => Err(not_a("boolean")),
        },
        Kind::Text => Ok(Val::Str(raw)),
        Kind::Override { dt, .. } => parse_override(dt, column, stripped),
    }
}

fn parse_override<'a>(dt: &DataType, column: &str, s: &str) -> Result<Val<'a>, ParseFail> {
    let fail = |reason: &str| (reason.to_string(), override_hint(column));
    match dt {
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 | DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
            let n = py_decimal(s).ok_or_else(|| fail("not a number"))?;
            let v = n.to_scaled_i128(0).ok_or_else(|| fail("not a finite number in range"))?;
            let (lo, hi) = int_range(dt);
            if v < lo || v > hi {
                return Err(fail(&format!("out of range ({lo} to {hi})")));
            }
            Ok(Val::Int(v))
        }
        DataType::Float32 | DataType::Float64 => {
            let n = py_decimal(s).ok_or_else(|| fail("not a number"))?;
            Ok(Val::Float(n.to_f64()))
        }
        DataType::Decimal128(p, sc) => {
            let n = py_decimal(s).ok_or_else(|| fail("not a number"))?;
            let v = n.to_scaled_i128(i64::from(*sc)).ok_or_else(|| fail("not a finite number in range"))?;
            if v.unsigned_abs() >= 10u128.pow(u32::from(*p)) {
                return Err(fail(&format!("does not fit in precision {p}")));
            }
            Ok(Val::Int(v))
        }
        DataType::Boolean => duck_bool(s).map(Val::Bool).ok_or_else(|| fail("expected true/false, t/f, yes/no, y/n or 1/0")),
        DataType::Date32 => duck_timestamp(s).map(|(t, _)| Val::Int(date32(t.date()).into())).ok_or_else(|| fail("expected YYYY-MM-DD")),
        DataType::Timestamp(_, tz) => {
            let (t, offset) = duck_timestamp(s).ok_or_else(|| fail("expected YYYY-MM-DD[ HH:MM[:SS[.ffffff]]][±HH:MM]"))?;
            let us = micros(t);
            // A naive TIMESTAMP keeps the wall clock (DuckDB drops the offset); a
            // TIMESTAMPTZ converts to UTC, reading a value without offset as UTC.
            Ok(Val::Int(
                match (tz, offset) {
                    (Some(_), Some(off)) => us - off * 1_000_000,
                    _ => us,
                }
                .into(),
            ))
        }
        DataType::Time64(_) => {
            let c = DUCK_TIME.captures(s).ok_or_else(|| fail("expected HH:MM[:SS[.ffffff]]"))?;
            let t = NaiveTime::from_hms_micro_opt(
                named_u32(&c, "h").unwrap_or(0),
                named_u32(&c, "mi").unwrap_or(0),
                named_u32(&c, "s").unwrap_or(0),
                micros_of_fraction(&c),
            )
            .ok_or_else(|| fail("not a valid time of day"))?;
            Ok(Val::Int((i64::from(t.num_seconds_from_midnight()) * 1_000_000 + i64::from(t.nanosecond() / 1000)).into()))
        }
        _ => Err(fail("unsupported type")),
    }
}

// ---------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

fn csv_reader(bytes: &[u8], delimiter: u8) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new().delimiter(delimiter).has_headers(false).flexible(true).from_reader(bytes)
}

/// Shorten a value for an error message.
fn shown(value: &str) -> String {
    const MAX: usize = 80;
    if value.chars().count() <= MAX { value.to_string() } else { format!("{}…", value.chars().take(MAX).collect::<String>()) }
}

struct Records<'b> {
    file: &'b str,
    reader: csv::Reader<&'b [u8]>,
    record: csv::ByteRecord,
}

impl<'b> Records<'b> {
    fn new(file: &'b str, bytes: &'b [u8], delimiter: u8) -> Self {
        Records { file, reader: csv_reader(bytes, delimiter), record: csv::ByteRecord::new() }
    }

    /// Advance; returns the 1-based line of the record just read.
    fn next(&mut self) -> Result<Option<u64>, SeedError> {
        match self.reader.read_byte_record(&mut self.record) {
            Ok(true) => Ok(Some(self.record.position().map(|p| p.line()).unwrap_or(0))),
            Ok(false) => Ok(None),
            Err(e) => Err(SeedError::Csv { file: self.file.to_string(), line: e.position().map(|p| p.line()).unwrap_or(0), message: e.to_string() }),
        }
    }

    /// The fields of the current record as UTF-8, checked against the header width.
    fn fields(&self, line: u64, names: &[String]) -> Result<Vec<&str>, SeedError> {
        let found = self.record.len();
        let expected = names.len();
        if found > expected {
            return Err(SeedError::TooManyFields { file: self.file.to_string(), line, found, expected });
        }
        if found < expected {
            return Err(SeedError::TooFewFields { file: self.file.to_string(), line, found, expected });
        }
        self.record
            .iter()
            .zip(names)
            .map(|(field, name)| {
                std::str::from_utf8(field).map_err(|_| SeedError::InvalidUtf8 { file: self.file.to_string(), line, what: format!("column \"{name}\"") })
            })
            .collect()
    }
}

fn read_header(file: &str, records: &mut Records<'_>) -> Result<Vec<String>, SeedError> {
    let Some(line) = records.next()? else {
        return Err(SeedError::Empty { file: file.to_string() });
    };
    let mut names: Vec<String> = Vec::with_capacity(records.record.len());
    for (i, field) in records.record.iter().enumerate() {
        let name = std::str::from_utf8(field).map_err(|_| SeedError::InvalidUtf8 { file: file.to_string(), line, what: format!("header field {}", i + 1) })?;
        if name.is_empty() {
            return Err(SeedError::EmptyHeader { file: file.to_string(), index: i + 1 });
        }
        if let Some(first) = names.iter().position(|n| n.to_lowercase() == name.to_lowercase()) {
            return Err(SeedError::DuplicateHeader { file: file.to_string(), name: name.to_string(), first: first + 1, second: i + 1 });
        }
        names.push(name.to_string());
    }
    Ok(names)
}

/// Read a dbt seed CSV into Arrow, inferring column types the way dbt-core 1.11 +
/// dbt-duckdb 1.11 do (see the module docs). Two passes over `bytes`: the first
/// validates every record and infers types, the second builds batches of at most
/// [`BATCH_ROWS`] rows.
pub fn read_seed(file: &str, bytes: &[u8], opts: &SeedOptions) -> Result<SeedData, SeedError> {
    // dbt's from_csv skips a UTF-8 byte order mark.
    let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);

    // Pass 1: header, validation, inference.
    let mut records = Records::new(file, bytes, opts.delimiter);
    let names = read_header(file, &mut records)?;

    let mut overrides: Vec<Option<DataType>> = Vec::with_capacity(names.len());
    for name in &names {
        overrides.push(match opts.column_types.get(name) {
            None => None,
            Some(ty) => Some(sql_type_to_arrow(ty).map_err(|message| SeedError::UnknownType { file: file.to_string(), column: name.clone(), message })?),
        });
    }
    for key in opts.column_types.keys() {
        if !names.contains(key) {
            tracing::warn!("{file}: column_types names \"{key}\", which is not a column of this seed");
        }
    }

    let mut inference: Vec<Inference> = vec![Inference::new(); names.len()];
    let mut rows = 0usize;
    while let Some(line) = records.next()? {
        let fields = records.fields(line, &names)?;
        for ((value, inf), ov) in fields.iter().zip(inference.iter_mut()).zip(&overrides) {
            if ov.is_none() {
                inf.observe(value);
            }
        }
        rows += 1;
    }

    let kinds: Vec<Kind> = overrides
        .iter()
        .zip(&inference)
        .map(|(ov, inf)| match ov {
            Some(dt) => Kind::Override { dt: dt.clone() },
            None => inf.finish(),
        })
        .collect();
    let schema: SchemaRef = Arc::new(Schema::new(names.iter().zip(&kinds).map(|(name, kind)| Field::new(name, kind.data_type(), true)).collect::<Vec<_>>()));

    // Pass 2: values.
    let arrow_err = |source| SeedError::Arrow { file: file.to_string(), source };
    let mut bufs: Vec<Buf> = kinds.iter().map(|k| Buf::new(&k.data_type())).collect();
    let mut batches = Vec::with_capacity(rows.div_ceil(BATCH_ROWS));
    let mut in_batch = 0usize;
    let flush = |bufs: &mut Vec<Buf>, batches: &mut Vec<RecordBatch>| -> Result<(), SeedError> {
        let columns = bufs.iter_mut().zip(schema.fields()).map(|(b, f)| b.finish(f.data_type())).collect::<Result<Vec<_>, _>>().map_err(arrow_err)?;
        batches.push(RecordBatch::try_new(schema.clone(), columns).map_err(arrow_err)?);
        Ok(())
    };

    let mut records = Records::new(file, bytes, opts.delimiter);
    records.next()?; // header
    while let Some(line) = records.next()? {
        let fields = records.fields(line, &names)?;
        for (((raw, kind), name), buf) in fields.iter().zip(&kinds).zip(&names).zip(bufs.iter_mut()) {
            let val = parse_value(kind, name, raw).map_err(|(reason, hint)| {
                SeedError::BadValue(Box::new(BadValue {
                    file: file.to_string(),
                    line,
                    column: name.clone(),
                    value: shown(raw),
                    ty: match kind {
                        Kind::Override { .. } => opts.column_types.get(name).cloned().unwrap_or_default(),
                        other => inferred_type_name(other).to_string(),
                    },
                    reason,
                    hint,
                }))
            })?;
            buf.push(val);
        }
        in_batch += 1;
        if in_batch == BATCH_ROWS {
            flush(&mut bufs, &mut batches)?;
            in_batch = 0;
        }
    }
    if in_batch > 0 {
        flush(&mut bufs, &mut batches)?;
    }
    let (schema, batches) = if opts.int32_when_fits { narrow_integers(schema, batches, &kinds).map_err(arrow_err)? } else { (schema, batches) };

    Ok(SeedData { schema, batches, rows })
}

/// dbt-duckdb declares an inferred integer column INTEGER: it is `Int32`
/// when every value fits 32 bits, and stays `Int64` beyond (where
/// dbt-duckdb fails to load it).
fn narrow_integers(
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    kinds: &[Kind],
) -> Result<(SchemaRef, Vec<RecordBatch>), datafusion::arrow::error::ArrowError> {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Int64Type;
    let fits = |i: usize| batches.iter().all(|b| b.column(i).as_primitive::<Int64Type>().iter().flatten().all(|v| i32::try_from(v).is_ok()));
    let narrow: Vec<bool> = kinds.iter().enumerate().map(|(i, k)| *k == Kind::Integer && fits(i)).collect();
    if !narrow.contains(&true) {
        return Ok((schema, batches));
    }
    let fields: Vec<Field> =
        schema.fields().iter().zip(&narrow).map(|(f, n)| if *n { f.as_ref().clone().with_data_type(DataType::Int32) } else { f.as_ref().clone() }).collect();
    let narrowed: SchemaRef = Arc::new(Schema::new(fields));
    let batches = batches.iter().map(|b| crate::util::cast_batch(b, &narrowed)).collect::<Result<Vec<_>, _>>()?;
    Ok((narrowed, batches))
}

fn inferred_type_name(kind: &Kind) -> &'static str {
    match kind {
        Kind::Integer => "bigint",
        Kind::Float => "double",
        Kind::Date => "date",
        Kind::DateTime | Kind::IsoDateTime => "timestamp",
        Kind::Boolean => "boolean",
        Kind::Text | Kind::Override { .. } => "varchar",
    }
}

#[cfg(test)]
mod tests {
    //! Expected types below were observed by running `dbt seed` with dbt-core 1.11.16 +
    //! dbt-duckdb 1.11.1 (agate 1.9.1, duckdb 2.0.1) and reading the resulting DuckDB
    //! column types, unless a comment says the case is a deliberate difference.
    use super::*;
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::{Date32Type, Float64Type, Int64Type, TimestampMicrosecondType};

    fn read(csv: &str) -> SeedData {
        read_seed("seeds/t.csv", csv.as_bytes(), &SeedOptions::default()).expect("seed reads")
    }

    fn read_with(csv: &str, types: &[(&str, &str)]) -> Result<SeedData, SeedError> {
        let opts = SeedOptions { column_types: types.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), ..Default::default() };
        read_seed("seeds/t.csv", csv.as_bytes(), &opts)
    }

    fn err(csv: &[u8]) -> String {
        read_seed("seeds/x.csv", csv, &SeedOptions::default()).expect_err("should fail").to_string()
    }

    /// Type of the single column `c` with the given values.
    fn ty(values: &[&str]) -> DataType {
        let csv = format!("c\n{}\n", values.join("\n"));
        read(&csv).schema.field(0).data_type().clone()
    }

    fn col(d: &SeedData, i: usize) -> ArrayRef {
        assert_eq!(d.batches.len(), 1);
        d.batches[0].column(i).clone()
    }

    fn ints(d: &SeedData, i: usize) -> Vec<Option<i64>> {
        let c = datafusion::arrow::compute::cast(&col(d, i), &DataType::Int64).unwrap();
        c.as_primitive::<Int64Type>().iter().collect()
    }

    fn floats(d: &SeedData, i: usize) -> Vec<Option<f64>> {
        col(d, i).as_primitive::<Float64Type>().iter().collect()
    }

    fn strs(d: &SeedData, i: usize) -> Vec<Option<String>> {
        col(d, i).as_string::<i32>().iter().map(|s| s.map(str::to_string)).collect()
    }

    fn ts(d: &SeedData, i: usize) -> Vec<Option<String>> {
        col(d, i)
            .as_primitive::<TimestampMicrosecondType>()
            .iter()
            .map(|v| v.map(|v| chrono::DateTime::from_timestamp_micros(v).unwrap().naive_utc().to_string()))
            .collect()
    }

    const TS: DataType = DataType::Timestamp(TimeUnit::Microsecond, None);

    #[test]
    fn infers_basic_types_and_values() {
        // agate Number with MaxPrecision 0 -> dbt "integer" (Int32 here: the values fit); with decimals
        // -> "float8"/DOUBLE; Boolean -> boolean; Date -> date; DateTime -> timestamp.
        let d = read(
            "id,amount,flag,day,at,name\n\
             1,1.5,true,2024-01-05,2024-01-05 10:11:12,alice\n\
             -3,2,False,2024-12-31,2024-12-31 23:59:59,bob\n",
        );
        let types: Vec<DataType> = d.schema.fields().iter().map(|f| f.data_type().clone()).collect();
        assert_eq!(types, vec![DataType::Int32, DataType::Float64, DataType::Boolean, DataType::Date32, TS, DataType::Utf8]);
        assert!(d.schema.fields().iter().all(|f| f.is_nullable()));
        assert_eq!(d.rows, 2);
        assert_eq!(ints(&d, 0), vec![Some(1), Some(-3)]);
        assert_eq!(floats(&d, 1), vec![Some(1.5), Some(2.0)]);
        assert_eq!(col(&d, 2).as_boolean().iter().collect::<Vec<_>>(), vec![Some(true), Some(false)]);
        let days: Vec<_> = col(&d, 3).as_primitive::<Date32Type>().iter().collect();
        assert_eq!(days, vec![Some(19727), Some(20088)]);
        assert_eq!(ts(&d, 4), vec![Some("2024-01-05 10:11:12".into()), Some("2024-12-31 23:59:59".into())]);
        assert_eq!(strs(&d, 5), vec![Some("alice".into()), Some("bob".into())]);
    }

    #[test]
    fn numbers_follow_agate_decimal_and_max_precision() {
        // observed: 007,010 -> INTEGER [7, 10] (leading zeros are not text)
        let d = read("c\n007\n010\n");
        assert_eq!(ints(&d, 0), vec![Some(7), Some(10)]);
        // observed: 1.0,2.00 -> INTEGER [1, 2] (MaxPrecision normalizes trailing zeros)
        let d = read("c\n1.0\n2.00\n");
        assert_eq!(d.schema.field(0).data_type(), &DataType::Int32);
        assert_eq!(ints(&d, 0), vec![Some(1), Some(2)]);
        // observed: 1e3,2E5 -> INTEGER [1000, 200000]; 1e-3 -> DOUBLE 0.001
        assert_eq!(ints(&read("c\n1e3\n2E5\n"), 0), vec![Some(1000), Some(200000)]);
        assert_eq!(floats(&read("c\n1e-3\n"), 0), vec![Some(0.001)]);
        // observed: +5 -> 5, " 5 " -> 5, 1_000 -> 1000 (Python Decimal drops underscores)
        assert_eq!(ints(&read("c\n+5\n 5 \n1_000\n"), 0), vec![Some(5), Some(5), Some(1000)]);
        // observed: 1,0 -> INTEGER; 20240105 -> INTEGER (not a date)
        assert_eq!(ty(&["1", "0"]), DataType::Int32);
        assert_eq!(ty(&["20240105"]), DataType::Int32);
        // observed: 30-digit integer -> DOUBLE (agate max_precision clamps to 28 digits)
        assert_eq!(ty(&["123456789012345678901234567890"]), DataType::Float64);
        // observed: Infinity,1.5 -> DOUBLE [inf, 1.5]
        assert_eq!(floats(&read("c\nInfinity\n1.5\n"), 0), vec![Some(f64::INFINITY), Some(1.5)]);
    }

    #[test]
    fn agate_number_decorations_are_numbers() {
        // agate infers Number for these (dbt type "integer"); dbt-duckdb's fast COPY then
        // rejects the raw strings, dbt-duckdb with `fast: false` inserts agate's values,
        // which is what we produce. Deliberate difference from the default (an error).
        let d = read("c\n\"1,000\"\n$5\n50%\n-$7\n");
        assert_eq!(ints(&d, 0), vec![Some(1000), Some(5), Some(50), Some(-7)]);
        let d = read("c\n\"1,234.5\"\n€2\n");
        assert_eq!(floats(&d, 0), vec![Some(1234.5), Some(2.0)]);
        // agate: NaN is a Number and MaxPrecision ignores it (-> "integer", which DuckDB
        // cannot load); we make such a column Float64.
        let d = read("c\nNaN\n1\n");
        assert_eq!(d.schema.field(0).data_type(), &DataType::Float64);
        let v = floats(&d, 0);
        assert!(v[0].unwrap().is_nan());
        assert_eq!(v[1], Some(1.0));
    }

    #[test]
    fn integers_are_64_bit() {
        // dbt-duckdb declares INTEGER and fails on 3000000000; we use Int64 (Int32 when every value fits).
        assert_eq!(ints(&read("c\n3000000000\n-9223372036854775808\n"), 0), vec![Some(3_000_000_000), Some(i64::MIN)]);
        assert_eq!(ty(&["3000000000", "1"]), DataType::Int64);
        assert_eq!(ty(&["2147483647", "-2147483648"]), DataType::Int32);
        let opts = SeedOptions { int32_when_fits: false, ..Default::default() };
        assert_eq!(read_seed("s.csv", b"c\n1\n", &opts).unwrap().schema.field(0).data_type(), &DataType::Int64);
        assert_eq!(
            err(b"id\n1\n99999999999999999999\n"),
            "seeds/x.csv:3: column \"id\": cannot read \"99999999999999999999\" as bigint: out of range for a 64-bit integer — declare the column in column_types (e.g. id: varchar or decimal(38,0))"
        );
    }

    #[test]
    fn nulls() {
        // agate null_values are ("null", "") after strip, any case. observed: an all-empty
        // column and a column of null/NULL both get INTEGER (agate Number).
        let d = read("a,b\n,null\n,NULL\n");
        assert_eq!(d.schema.field(0).data_type(), &DataType::Int32);
        assert_eq!(d.schema.field(1).data_type(), &DataType::Int32);
        assert_eq!(ints(&d, 0), vec![None, None]);
        assert_eq!(ints(&d, 1), vec![None, None]);
        // Nulls do not affect inference: ints with null/blank stay integer; dates too.
        let d = read("i,d,b\n1,2024-01-05,true\nnull,null,null\n  ,,\n");
        assert_eq!(ints(&d, 0), vec![Some(1), None, None]);
        assert_eq!(d.schema.field(1).data_type(), &DataType::Date32);
        assert_eq!(d.schema.field(2).data_type(), &DataType::Boolean);
        assert_eq!(col(&d, 2).as_boolean().iter().collect::<Vec<_>>(), vec![Some(true), None, None]);
        // observed: text column abc,null,NULL,"" -> ['abc', 'null', 'NULL', NULL]: DuckDB's
        // COPY keeps the literal; only empty (also quoted "") fields are NULL.
        let d = read("c\nabc\nnull\nNULL\n\"\"\n");
        assert_eq!(strs(&d, 0), vec![Some("abc".into()), Some("null".into()), Some("NULL".into()), None]);
        // observed: NA, None and . are not nulls for dbt -> VARCHAR
        assert_eq!(ty(&["NA", "1"]), DataType::Utf8);
        assert_eq!(ty(&["None", "1"]), DataType::Utf8);
        assert_eq!(ty(&[".", "1"]), DataType::Utf8);
    }

    #[test]
    fn booleans_are_only_true_false() {
        // dbt's tester: Boolean(true_values=("true",), false_values=("false",)).
        assert_eq!(ty(&["true", "False", "TRUE"]), DataType::Boolean); // observed BOOLEAN
        assert_eq!(ty(&["t", "f"]), DataType::Utf8); // observed VARCHAR
        assert_eq!(ty(&["yes", "no"]), DataType::Utf8); // observed VARCHAR
        assert_eq!(ty(&["1", "0"]), DataType::Int32); // observed INTEGER (Number first)
        // agate.Boolean removes commas first: "tr,ue" is true and "," is NULL (a
        // column of only "," is Boolean for agate; DuckDB's COPY rejects both).
        let d = read("c\n\"tr,ue\"\n\",\"\n");
        assert_eq!(d.schema.field(0).data_type(), &DataType::Boolean);
        assert_eq!(col(&d, 0).as_boolean().iter().collect::<Vec<_>>(), vec![Some(true), None]);
        // agate strips whitespace (DuckDB's COPY would reject " true ").
        let d = read("c\n true \nfalse\n");
        assert_eq!(col(&d, 0).as_boolean().iter().collect::<Vec<_>>(), vec![Some(true), Some(false)]);
    }

    #[test]
    fn dates() {
        // Date(date_format="%Y-%m-%d") via strptime: unpadded month/day accepted.
        let d = read("c\n2024-1-5\n");
        assert_eq!(d.schema.field(0).data_type(), &DataType::Date32); // observed DATE
        let days: Vec<_> = col(&d, 0).as_primitive::<Date32Type>().iter().collect();
        assert_eq!(days, vec![Some(19727)]);
        assert_eq!(ty(&["2024/01/05"]), DataType::Utf8); // observed VARCHAR
        assert_eq!(ty(&["01/05/2024"]), DataType::Utf8); // observed VARCHAR
        assert_eq!(ty(&["Jan 5 2024"]), DataType::Utf8); // observed VARCHAR
        assert_eq!(ty(&["2024-W01-1"]), DataType::Utf8); // observed VARCHAR
        assert_eq!(ty(&["2024-005"]), DataType::Utf8); // observed VARCHAR
        assert_eq!(ty(&["2024-02-30"]), DataType::Utf8); // strptime rejects invalid dates
        assert_eq!(ty(&["10:11:12"]), DataType::Utf8); // observed VARCHAR (no time type)
    }

    #[test]
    fn timestamps() {
        // DateTime(datetime_format="%Y-%m-%d %H:%M:%S"): observed TIMESTAMP, including
        // unpadded fields and several spaces.
        assert_eq!(ts(&read("c\n2024-1-5 1:2:3\n2024-01-05  10:11:12\n"), 0), vec![Some("2024-01-05 01:02:03".into()), Some("2024-01-05 10:11:12".into())]);
        // The strptime format has no fractions, offsets, or optional seconds: observed
        // VARCHAR for each of these.
        assert_eq!(ty(&["2024-01-05 10:11:12.123"]), DataType::Utf8);
        assert_eq!(ty(&["2024-01-05 10:11:12+02:00"]), DataType::Utf8);
        assert_eq!(ty(&["2024-01-05 10:11"]), DataType::Utf8);
        // ISODateTime (isodate, needs 'T'): observed TIMESTAMP; a UTC offset or Z is
        // dropped keeping the wall clock (DuckDB's cast to naive TIMESTAMP).
        let d = read(
            "c\n2024-01-05T10:11:12\n2024-01-05T10:11:12.123456\n2024-01-05T10:11:12Z\n\
             2024-01-05T10:11:12+02:00\n2024-01-05T23:11:12-05:00\n2024-01-05T10:11\n2024-01-05T10:11:12.5Z\n",
        );
        assert_eq!(d.schema.field(0).data_type(), &TS);
        assert_eq!(
            ts(&d, 0),
            vec![
                Some("2024-01-05 10:11:12".into()),
                Some("2024-01-05 10:11:12.123456".into()),
                Some("2024-01-05 10:11:12".into()),
                Some("2024-01-05 10:11:12".into()),
                Some("2024-01-05 23:11:12".into()),
                Some("2024-01-05 10:11:00".into()),
                Some("2024-01-05 10:11:12.500".into()),
            ]
        );
        // isodate accepts basic/reduced forms that DuckDB then cannot load; we read
        // them as agate does (deliberate: dbt-duckdb fails on these).
        assert_eq!(
            ts(&read("c\n20240105T101112\n2024-01-05T10\n2024-W01-2T10:30\n"), 0),
            vec![Some("2024-01-05 10:11:12".into()), Some("2024-01-05 10:00:00".into()), Some("2024-01-02 10:30:00".into()),]
        );
        // Mixing formats: every candidate is eliminated -> observed VARCHAR.
        assert_eq!(ty(&["2024-01-05", "2024-01-05 10:11:12"]), DataType::Utf8);
        assert_eq!(ty(&["2024-01-05", "2024-01-05T10:11:12"]), DataType::Utf8);
        assert_eq!(ty(&["2024-01-05 10:11:12", "2024-01-05T10:11:12"]), DataType::Utf8);
    }

    #[test]
    fn text_is_raw() {
        // observed: text fields keep their whitespace (' x ', '  y  ', '   '); numbers
        // in the same file are stripped. Quoted newlines and "" escapes are text.
        let d = read("a,b\n1, x \n2,\"  y  \"\n3,   \n");
        assert_eq!(ints(&d, 0), vec![Some(1), Some(2), Some(3)]);
        assert_eq!(strs(&d, 1), vec![Some(" x ".into()), Some("  y  ".into()), Some("   ".into())]);
        let d = read("a,b\n\"multi\nline\",1\n\"q\"\"uote\",2\n");
        assert_eq!(strs(&d, 0), vec![Some("multi\nline".into()), Some("q\"uote".into())]);
    }

    #[test]
    fn file_shapes() {
        // observed: BOM and CRLF are handled, blank lines are skipped, header names are
        // kept verbatim (' a ' stays ' a ').
        let d = read_seed("s.csv", b"\xEF\xBB\xBFid, a \r\n1,x\r\n\r\n2,y\r\n\r\n", &SeedOptions::default()).unwrap();
        assert_eq!(d.schema.field(0).name(), "id");
        assert_eq!(d.schema.field(1).name(), " a ");
        assert_eq!(ints(&d, 0), vec![Some(1), Some(2)]);
        // observed: header only -> INTEGER column, no rows.
        let d = read("a,b\n");
        assert_eq!(d.rows, 0);
        assert!(d.batches.is_empty());
        assert_eq!(d.schema.field(1).data_type(), &DataType::Int32);
        // Delimiter option (dbt's `delimiter` config).
        let opts = SeedOptions { delimiter: b';', ..Default::default() };
        let d = read_seed("s.csv", b"a;b\n1,5;x\n", &opts).unwrap();
        assert_eq!(ints(&d, 0), vec![Some(15)]); // agate drops the group separator
        assert_eq!(strs(&d, 1), vec![Some("x".into())]);
    }

    #[test]
    fn batches_hold_at_most_8192_rows() {
        let mut csv = String::from("n,s\n");
        for i in 0..20_000 {
            csv.push_str(&format!("{i},v{i}\n"));
        }
        let d = read(&csv);
        assert_eq!(d.rows, 20_000);
        let sizes: Vec<usize> = d.batches.iter().map(|b| b.num_rows()).collect();
        assert_eq!(sizes, vec![8192, 8192, 3616]);
        let last = d.batches[2].column(0).as_primitive::<datafusion::arrow::datatypes::Int32Type>();
        assert_eq!(last.value(3615), 19_999);
    }

    #[test]
    fn column_types_override_inference() {
        // observed: column_types {zip: varchar, n: bigint} -> ['007', '010'] as VARCHAR.
        let d = read_with("zip,n\n007,1\n010,2\n", &[("zip", "varchar"), ("n", "bigint")]).unwrap();
        assert_eq!(d.schema.field(0).data_type(), &DataType::Utf8);
        assert_eq!(strs(&d, 0), vec![Some("007".into()), Some("010".into())]);
        assert_eq!(ints(&d, 1), vec![Some(1), Some(2)]);
        // observed: decimal(10,1) rounds 2.25 half away from zero -> 2.3.
        let d = read_with("n\n1.5\n2.25\n-2.25\n", &[("n", "decimal(10,1)")]).unwrap();
        assert_eq!(d.schema.field(0).data_type(), &DataType::Decimal128(10, 1));
        let v: Vec<_> = col(&d, 0).as_primitive::<datafusion::arrow::datatypes::Decimal128Type>().iter().collect();
        assert_eq!(v, vec![Some(15), Some(23), Some(-23)]);
        // observed: timestamptz reads a naive value as UTC; an offset converts to UTC.
        let d = read_with("t\n2024-01-05 10:11:12\n2024-01-05T10:11:12+02:00\n", &[("t", "timestamptz")]).unwrap();
        assert_eq!(d.schema.field(0).data_type(), &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())));
        assert_eq!(ts(&d, 0), vec![Some("2024-01-05 10:11:12".into()), Some("2024-01-05 08:11:12".into())]);
        // DuckDB casts: '1.5'::INTEGER = 2 (half away from zero), 'yes'::BOOLEAN = true.
        let d = read_with("i,b\n1.5,yes\n-2.5,F\n", &[("i", "integer"), ("b", "bool")]).unwrap();
        let i: Vec<_> = col(&d, 0).as_primitive::<datafusion::arrow::datatypes::Int32Type>().iter().collect();
        assert_eq!(i, vec![Some(2), Some(-3)]);
        assert_eq!(col(&d, 1).as_boolean().iter().collect::<Vec<_>>(), vec![Some(true), Some(false)]);
        // An override name must match the header exactly; others are inferred.
        let d = read_with("A\n1\n", &[("a", "varchar")]).unwrap();
        assert_eq!(d.schema.field(0).data_type(), &DataType::Int32);
    }

    #[test]
    fn override_errors() {
        let e = read_with("id,n\n1,2\n2,abc\n", &[("n", "integer")]).unwrap_err().to_string();
        assert_eq!(e, "seeds/t.csv:3: column \"n\": cannot read \"abc\" as integer: not a number — fix the value, or change column_types.n for this seed");
        let e = read_with("n\n300\n", &[("n", "tinyint")]).unwrap_err().to_string();
        assert_eq!(
            e,
            "seeds/t.csv:2: column \"n\": cannot read \"300\" as tinyint: out of range (-128 to 127) — fix the value, or change column_types.n for this seed"
        );
        let e = read_with("n\n123.4\n", &[("n", "decimal(3,1)")]).unwrap_err().to_string();
        assert_eq!(
            e,
            "seeds/t.csv:2: column \"n\": cannot read \"123.4\" as decimal(3,1): does not fit in precision 3 — fix the value, or change column_types.n for this seed"
        );
        let e = read_with("d\n05/01/2024\n", &[("d", "date")]).unwrap_err().to_string();
        assert_eq!(
            e,
            "seeds/t.csv:2: column \"d\": cannot read \"05/01/2024\" as date: expected YYYY-MM-DD — fix the value, or change column_types.d for this seed"
        );
        let e = read_with("n\n1\n", &[("n", "money")]).unwrap_err().to_string();
        assert_eq!(
            e,
            "seeds/t.csv: column_types: unknown type \"money\" for column \"n\" — use a type such as varchar, integer, bigint, double, decimal(p,s), boolean, date, timestamp or timestamptz"
        );
    }

    #[test]
    fn structural_errors() {
        assert_eq!(err(b"a,b,c\n1,2,3\n1,2,3,4\n"), "seeds/x.csv:3: row has 4 fields, header has 3 — fix the row or quote the field containing the delimiter");
        assert_eq!(err(b"a,b,c\n1,2\n"), "seeds/x.csv:2: row has 2 fields, header has 3 — add the missing fields (leave a field empty for NULL)");
        // Line numbers are those of the record's first line (after a quoted newline).
        assert_eq!(err(b"a,b\n\"x\ny\",1\n1\n"), "seeds/x.csv:4: row has 1 fields, header has 2 — add the missing fields (leave a field empty for NULL)");
        assert_eq!(err(b"a,b\n1,ok\n2,caf\xE9\n"), "seeds/x.csv:3: invalid UTF-8 in column \"b\" — save the file as UTF-8");
        assert_eq!(err(b"a,\xFF\n"), "seeds/x.csv:1: invalid UTF-8 in header field 2 — save the file as UTF-8");
        assert_eq!(err(b""), "seeds/x.csv: the file is empty — a seed needs a header row naming its columns");
        assert_eq!(err(b"\xEF\xBB\xBF\n\n"), "seeds/x.csv: the file is empty — a seed needs a header row naming its columns");
        assert_eq!(err(b"a,,c\n1,2,3\n"), "seeds/x.csv:1: header field 2 is empty — give every column a name");
        assert_eq!(
            err(b"id,name,ID\n1,2,3\n"),
            "seeds/x.csv:1: duplicate column name \"ID\" (header fields 1 and 3; names are compared case-insensitively) — rename one of them"
        );
    }

    #[test]
    fn sql_type_names() {
        let ok = |t: &str| sql_type_to_arrow(t).unwrap();
        for t in ["varchar", "TEXT", "string", "varchar(255)", "character varying"] {
            assert_eq!(ok(t), DataType::Utf8, "{t}");
        }
        assert_eq!(ok("smallint"), DataType::Int16);
        assert_eq!(ok("int"), DataType::Int32);
        assert_eq!(ok("Integer"), DataType::Int32);
        assert_eq!(ok("bigint"), DataType::Int64);
        assert_eq!(ok("double"), DataType::Float64);
        assert_eq!(ok("double  precision"), DataType::Float64);
        assert_eq!(ok("float8"), DataType::Float64);
        // DuckDB: FLOAT and REAL are 4-byte floats.
        assert_eq!(ok("float"), DataType::Float32);
        assert_eq!(ok("real"), DataType::Float32);
        assert_eq!(ok("decimal(10,2)"), DataType::Decimal128(10, 2));
        assert_eq!(ok("numeric(12, 4)"), DataType::Decimal128(12, 4));
        assert_eq!(ok("numeric"), DataType::Decimal128(18, 3)); // DuckDB default
        assert_eq!(ok("boolean"), DataType::Boolean);
        assert_eq!(ok("date"), DataType::Date32);
        assert_eq!(ok("timestamp"), TS);
        assert_eq!(ok("timestamptz"), DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())));
        assert_eq!(ok("timestamp with time zone"), DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())));
        assert_eq!(sql_type_to_arrow("decimal(40,2)").unwrap_err(), "\"decimal(40,2)\": decimal precision must be between 1 and 38");
        assert_eq!(sql_type_to_arrow("int(").unwrap_err(), "malformed type \"int(\" (unbalanced parentheses)");
        assert_eq!(sql_type_to_arrow("geometry").unwrap_err(), "unknown type \"geometry\"");
        assert_eq!(sql_type_to_arrow("  ").unwrap_err(), "empty type name");
    }

    #[test]
    fn python_decimal_grammar() {
        let n = |s: &str| py_decimal(s);
        assert_eq!(n("1."), Some(Num::Finite { neg: false, digits: "1".into(), exp: 0 }));
        assert_eq!(n(".5"), Some(Num::Finite { neg: false, digits: "5".into(), exp: -1 }));
        assert_eq!(n("-0.000"), Some(Num::Finite { neg: true, digits: "0".into(), exp: 0 }));
        assert_eq!(n("nan12"), Some(Num::NaN));
        assert_eq!(n("-Inf"), Some(Num::Inf { neg: true }));
        for bad in ["", ".", "+", "1e", "e5", "snan", "1.2.3", "0x10", "1 2"] {
            assert_eq!(n(bad), None, "{bad:?}");
        }
        // 28-digit context rounding, half-even with carry.
        assert_eq!(n("99999999999999999999999999999"), Some(Num::Finite { neg: false, digits: "1".into(), exp: 29 }));
        // agate: '--5' strips one '-' then Decimal('-5') * -1 = 5.
        assert_eq!(agate_number("--5"), Some(Some(Num::Finite { neg: false, digits: "5".into(), exp: 0 })));
        // agate.Boolean drops commas.
        assert_eq!(agate_boolean("tr,ue"), Some(Some(true)));
    }

    #[test]
    fn never_panics_on_garbage() {
        // Deterministic pseudo-random inputs drawn from bytes that matter to the parser.
        let alphabet = b"0123456789,;\"\n\r -+.eETZ:/$%\xEF\xBB\xBF\xFFnulltrfasNI_W";
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..3000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 64) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|i| {
                    let x = state.rotate_left(i as u32 * 7).wrapping_mul(0x2545_F491_4F6C_DD1D);
                    alphabet[(x >> 33) as usize % alphabet.len()]
                })
                .collect();
            let _ = read_seed("fuzz.csv", &bytes, &SeedOptions::default());
            let opts =
                SeedOptions { delimiter: b';', column_types: [("0".to_string(), "decimal(5,2)".to_string())].into_iter().collect(), ..Default::default() };
            let _ = read_seed("fuzz.csv", &bytes, &opts);
        }
    }
}
