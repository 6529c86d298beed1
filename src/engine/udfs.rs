//! DuckDB / PostgreSQL functions that dbt models call directly and
//! DataFusion lacks, as scalar UDFs registered on every session:
//! `year`, `month`, `day`, `quarter`, `hour`, `minute`, `second`,
//! `dayofweek`, `isodow`, `dayofyear`, `week`, `dayname`, `monthname`,
//! `last_day`, `epoch`, `epoch_ms`, `date_diff`/`datediff`, `strftime`,
//! `strptime`, `regexp_matches`, `make_timestamp`, `convert_timezone`, `len`,
//! `mod`, `str_split`/`string_split`.
//!
//! Dates, timestamps and strings are accepted wherever a timestamp is
//! (cast to a naive microsecond timestamp; zoned values are taken in UTC).

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Timelike};
use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};
use datafusion::prelude::SessionContext;
use std::sync::Arc;

type Body = fn(&[ArrayRef]) -> Result<ArrayRef>;
type Ret = fn(&[DataType]) -> Result<DataType>;

/// A UDF from a name, an arity and a function over arrays.
struct Udf {
    name: &'static str,
    aliases: Vec<String>,
    signature: Signature,
    ret: Ret,
    body: Body,
}

impl std::fmt::Debug for Udf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Udf({})", self.name)
    }
}

impl PartialEq for Udf {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Udf {}

impl std::hash::Hash for Udf {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state)
    }
}

impl ScalarUDFImpl for Udf {
    fn name(&self) -> &str {
        self.name
    }
    fn aliases(&self) -> &[String] {
        &self.aliases
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        (self.ret)(arg_types)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let all_scalar = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let out = (self.body)(&arrays)?;
        if all_scalar && out.len() == 1 {
            Ok(ColumnarValue::Scalar(datafusion::common::ScalarValue::try_from_array(&out, 0)?))
        } else {
            Ok(ColumnarValue::Array(out))
        }
    }
}

fn udf(name: &'static str, aliases: &[&str], arity: Vec<usize>, ret: Ret, body: Body) -> ScalarUDF {
    let signature = if arity.len() == 1 {
        Signature::any(arity[0], Volatility::Immutable)
    } else {
        Signature::one_of(arity.into_iter().map(datafusion::logical_expr::TypeSignature::Any).collect(), Volatility::Immutable)
    };
    ScalarUDF::new_from_impl(Udf { name, aliases: aliases.iter().map(|s| s.to_string()).collect(), signature, ret, body })
}

/// Registers every function of this module on `ctx`, and `count` with
/// dp's distinct count of integers ([`super::count_distinct`]).
pub fn register(ctx: &SessionContext) {
    for f in all() {
        ctx.register_udf(f);
    }
    ctx.register_udf(ScalarUDF::new_from_impl(Coalesce(datafusion::functions::core::coalesce())));
    ctx.register_udf(ScalarUDF::new_from_impl(DatePart(datafusion::functions::datetime::date_part())));
    ctx.register_udf(ScalarUDF::new_from_impl(super::timezone::AtTimeZone::default()));
    ctx.register_udaf(datafusion::logical_expr::AggregateUDF::new_from_impl(super::count_distinct::Count::default()));
}

/// DuckDB's names of date parts that DataFusion's `date_part` spells
/// otherwise (dbt_date's `day_of_year` calls `date_part('dayofyear', d)`).
fn duckdb_date_part(part: &str) -> Option<&'static str> {
    Some(match part.to_ascii_lowercase().as_str() {
        "dayofyear" => "doy",
        "dayofweek" | "weekday" => "dow",
        "dayofmonth" => "day",
        "weekofyear" => "week",
        _ => return None,
    })
}

/// DataFusion's `date_part` (and `extract`), also taking DuckDB's part names.
#[derive(Debug, PartialEq, Eq, Hash)]
struct DatePart(Arc<ScalarUDF>);

impl ScalarUDFImpl for DatePart {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn aliases(&self) -> &[String] {
        self.0.aliases()
    }
    fn signature(&self) -> &Signature {
        self.0.signature()
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.0.inner().return_type(arg_types)
    }
    fn return_field_from_args(&self, args: datafusion::logical_expr::ReturnFieldArgs) -> Result<datafusion::arrow::datatypes::FieldRef> {
        self.0.inner().return_field_from_args(args)
    }
    fn invoke_with_args(&self, mut args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if let Some(ColumnarValue::Scalar(sv)) = args.args.first()
            && let Some(Some(part)) = sv.try_as_str()
            && let Some(mapped) = duckdb_date_part(part)
        {
            args.args[0] = ColumnarValue::Scalar(ScalarValue::Utf8(Some(mapped.to_string())));
        }
        self.0.inner().invoke_with_args(args)
    }
    fn documentation(&self) -> Option<&datafusion::logical_expr::Documentation> {
        self.0.inner().documentation()
    }
}

/// DataFusion's `coalesce`, with DuckDB's coercion of text to the date or
/// timestamp it is coalesced with (`coalesce(valid_to, '2099-01-01')`), and
/// a nullable result (see `return_field_from_args`).
#[derive(Debug, PartialEq, Eq, Hash)]
struct Coalesce(Arc<ScalarUDF>);

impl ScalarUDFImpl for Coalesce {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn signature(&self) -> &Signature {
        self.0.signature()
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.0.inner().return_type(arg_types)
    }
    /// Always nullable: DataFusion plans `coalesce` as a CASE whose physical
    /// field is nullable, and a non-null logical field (`coalesce(x, false)`)
    /// then fails the physical/logical schema check.
    fn return_field_from_args(&self, args: datafusion::logical_expr::ReturnFieldArgs) -> Result<datafusion::arrow::datatypes::FieldRef> {
        let f = self.0.inner().return_field_from_args(args)?;
        Ok(Arc::new(f.as_ref().clone().with_nullable(true)))
    }
    fn simplify(
        &self,
        args: Vec<datafusion::logical_expr::Expr>,
        info: &datafusion::logical_expr::simplify::SimplifyContext,
    ) -> Result<datafusion::logical_expr::simplify::ExprSimplifyResult> {
        self.0.inner().simplify(args, info)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        self.0.inner().invoke_with_args(args)
    }
    fn short_circuits(&self) -> bool {
        self.0.inner().short_circuits()
    }
    fn conditional_arguments<'a>(
        &self,
        args: &'a [datafusion::logical_expr::Expr],
    ) -> Option<(Vec<&'a datafusion::logical_expr::Expr>, Vec<&'a datafusion::logical_expr::Expr>)> {
        self.0.inner().conditional_arguments(args)
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.0.inner().coerce_types(arg_types).or_else(|e| {
            let is_text = |t: &DataType| matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null);
            let temporal: Vec<&DataType> = arg_types.iter().filter(|t| t.is_temporal()).collect();
            match temporal.first() {
                Some(t) if temporal.iter().all(|x| x == t) && arg_types.iter().all(|x| x == *t || is_text(x)) => Ok(vec![(*t).clone(); arg_types.len()]),
                _ => Err(e),
            }
        })
    }
    fn documentation(&self) -> Option<&datafusion::logical_expr::Documentation> {
        self.0.inner().documentation()
    }
}

/// The functions, for registration and tests.
pub fn all() -> Vec<ScalarUDF> {
    let int: Ret = |_| Ok(DataType::Int64);
    let text: Ret = |_| Ok(DataType::Utf8);
    let mut v = vec![];
    macro_rules! part {
        ($name:literal, $aliases:expr, $f:expr) => {
            v.push(udf($name, $aliases, vec![1], int, |a| ints(&a[0], $f)));
        };
    }
    part!("year", &[], |d| d.year() as i64);
    part!("month", &[], |d| d.month() as i64);
    part!("day", &["dayofmonth"], |d| d.day() as i64);
    part!("quarter", &[], |d| ((d.month() - 1) / 3 + 1) as i64);
    part!("hour", &[], |d| d.hour() as i64);
    part!("minute", &[], |d| d.minute() as i64);
    part!("second", &[], |d| d.second() as i64);
    part!("dayofweek", &["weekday"], |d| d.weekday().num_days_from_sunday() as i64);
    part!("isodow", &[], |d| d.weekday().number_from_monday() as i64);
    part!("dayofyear", &[], |d| d.ordinal() as i64);
    part!("week", &["weekofyear"], |d| d.iso_week().week() as i64);
    v.push(udf("dayname", &[], vec![1], text, |a| strings(&a[0], |d| d.format("%A").to_string())));
    v.push(udf("monthname", &[], vec![1], text, |a| strings(&a[0], |d| d.format("%B").to_string())));
    v.push(udf("last_day", &[], vec![1], |_| Ok(DataType::Date32), |a| last_day(&a[0])));
    v.push(udf("epoch", &[], vec![1], |_| Ok(DataType::Float64), |a| epoch(&a[0], 1e6)));
    v.push(udf("epoch_ms", &[], vec![1], |_| Ok(DataType::Int64), |a| epoch_ms(&a[0])));
    v.push(udf("date_diff", &["datediff"], vec![3], int, |a| date_diff(&a[0], &a[1], &a[2])));
    v.push(udf("strftime", &[], vec![2], text, |a| strftime(&a[0], &a[1])));
    v.push(udf("strptime", &[], vec![2], |_| Ok(DataType::Timestamp(TimeUnit::Microsecond, None)), |a| strptime(&a[0], &a[1])));
    v.push(udf("regexp_matches", &[], vec![2, 3], |_| Ok(DataType::Boolean), regexp_matches));
    v.push(udf("make_timestamp", &[], vec![6], |_| Ok(DataType::Timestamp(TimeUnit::Microsecond, None)), make_timestamp));
    v.push(udf("convert_timezone", &[], vec![2, 3], |_| Ok(DataType::Timestamp(TimeUnit::Microsecond, None)), convert_timezone));
    v.push(udf("mod", &[], vec![2], mod_type, modulo));
    v.push(udf("str_split", &["string_split"], vec![2], |_| Ok(DataType::new_list(DataType::Utf8, true)), str_split));
    v.push(udf("len", &[], vec![1], int, |a| {
        let s = texts(&a[0])?;
        Ok(Arc::new(s.iter().map(|x| x.as_ref().map(|x| x.chars().count() as i64)).collect::<Int64Array>()))
    }));
    v
}

/// Any date/timestamp/string array as naive timestamps.
fn timestamps(a: &ArrayRef) -> Result<Vec<Option<NaiveDateTime>>> {
    let target = DataType::Timestamp(TimeUnit::Microsecond, None);
    let c = match a.data_type() {
        DataType::Timestamp(_, Some(_)) => cast(&cast(a, &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())))?, &target)?,
        _ => cast(a, &target)?,
    };
    let ts = c.as_any().downcast_ref::<TimestampMicrosecondArray>().expect("cast to timestamp");
    Ok(ts.iter().map(|v| v.and_then(|us| DateTime::from_timestamp_micros(us).map(|d| d.naive_utc()))).collect())
}

fn texts(a: &ArrayRef) -> Result<Vec<Option<String>>> {
    let c = cast(a, &DataType::Utf8)?;
    let s = c.as_any().downcast_ref::<StringArray>().expect("cast to utf8");
    Ok(s.iter().map(|v| v.map(String::from)).collect())
}

fn ints(a: &ArrayRef, f: fn(&NaiveDateTime) -> i64) -> Result<ArrayRef> {
    Ok(Arc::new(timestamps(a)?.iter().map(|d| d.as_ref().map(f)).collect::<Int64Array>()))
}

fn strings(a: &ArrayRef, f: fn(&NaiveDateTime) -> String) -> Result<ArrayRef> {
    Ok(Arc::new(timestamps(a)?.iter().map(|d| d.as_ref().map(f)).collect::<StringArray>()))
}

fn days_from_epoch(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days() as i32
}

fn last_day(a: &ArrayRef) -> Result<ArrayRef> {
    let out = timestamps(a)?
        .iter()
        .map(|d| {
            d.map(|d| {
                let (y, m) = if d.month() == 12 { (d.year() + 1, 1) } else { (d.year(), d.month() + 1) };
                days_from_epoch(NaiveDate::from_ymd_opt(y, m, 1).unwrap().pred_opt().unwrap())
            })
        })
        .collect::<Date32Array>();
    Ok(Arc::new(out))
}

fn epoch(a: &ArrayRef, per_second: f64) -> Result<ArrayRef> {
    Ok(Arc::new(timestamps(a)?.iter().map(|d| d.map(|d| d.and_utc().timestamp_micros() as f64 / per_second)).collect::<Float64Array>()))
}

fn epoch_ms(a: &ArrayRef) -> Result<ArrayRef> {
    Ok(Arc::new(timestamps(a)?.iter().map(|d| d.map(|d| d.and_utc().timestamp_millis())).collect::<Int64Array>()))
}

/// A scalar-or-column argument's value for row `i`.
fn at<T: Clone>(v: &[Option<T>], i: usize) -> Option<T> {
    if v.len() == 1 { v[0].clone() } else { v.get(i).cloned().flatten() }
}

/// DuckDB's `date_diff(part, start, end)`: part boundaries crossed.
fn date_diff(part: &ArrayRef, start: &ArrayRef, end: &ArrayRef) -> Result<ArrayRef> {
    let parts = texts(part)?;
    let (s, e) = (timestamps(start)?, timestamps(end)?);
    let n = parts.len().max(s.len()).max(e.len());
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let (Some(p), Some(a), Some(b)) = (at(&parts, i), at(&s, i), at(&e, i)) else {
            out.push(None);
            continue;
        };
        let secs = |d: &NaiveDateTime| d.and_utc().timestamp();
        let micros = |d: &NaiveDateTime| d.and_utc().timestamp_micros();
        let months = |d: &NaiveDateTime| d.year() as i64 * 12 + d.month0() as i64;
        let v = match p.to_lowercase().trim_matches('\'') {
            "year" | "years" | "y" | "yr" | "yrs" => (b.year() - a.year()) as i64,
            "quarter" | "quarters" => months(&b).div_euclid(3) - months(&a).div_euclid(3),
            "month" | "months" | "mon" | "mons" => months(&b) - months(&a),
            "week" | "weeks" | "w" => {
                let monday = |d: &NaiveDateTime| days_from_epoch(d.date()) as i64 - d.weekday().num_days_from_monday() as i64;
                (monday(&b) - monday(&a)) / 7
            }
            "day" | "days" | "d" | "dayofmonth" => days_from_epoch(b.date()) as i64 - days_from_epoch(a.date()) as i64,
            "hour" | "hours" | "h" => secs(&b).div_euclid(3600) - secs(&a).div_euclid(3600),
            "minute" | "minutes" | "m" | "min" => secs(&b).div_euclid(60) - secs(&a).div_euclid(60),
            "second" | "seconds" | "s" | "sec" => secs(&b) - secs(&a),
            "millisecond" | "milliseconds" | "ms" => micros(&b).div_euclid(1000) - micros(&a).div_euclid(1000),
            "microsecond" | "microseconds" | "us" => micros(&b) - micros(&a),
            other => return exec_err!("date_diff: unknown date part '{other}' (use year, quarter, month, week, day, hour, minute, second, millisecond)"),
        };
        out.push(Some(v));
    }
    Ok(Arc::new(Int64Array::from(out)))
}

fn strftime(ts: &ArrayRef, fmt: &ArrayRef) -> Result<ArrayRef> {
    let (d, f) = (timestamps(ts)?, texts(fmt)?);
    let n = d.len().max(f.len());
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(match (at(&d, i), at(&f, i)) {
            (Some(d), Some(f)) => {
                use std::fmt::Write;
                let mut s = String::new();
                if write!(s, "{}", d.format(&f)).is_err() {
                    return exec_err!("strftime: invalid format '{f}'");
                }
                Some(s)
            }
            _ => None,
        });
    }
    Ok(Arc::new(StringArray::from(out)))
}

fn strptime(s: &ArrayRef, fmt: &ArrayRef) -> Result<ArrayRef> {
    let (t, f) = (texts(s)?, texts(fmt)?);
    let n = t.len().max(f.len());
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(match (at(&t, i), at(&f, i)) {
            (Some(t), Some(f)) => {
                let parsed = NaiveDateTime::parse_from_str(&t, &f).or_else(|_| NaiveDate::parse_from_str(&t, &f).map(|d| d.and_hms_opt(0, 0, 0).unwrap()));
                match parsed {
                    Ok(d) => Some(d.and_utc().timestamp_micros()),
                    Err(e) => return exec_err!("strptime: could not parse '{t}' with format '{f}': {e}"),
                }
            }
            _ => None,
        });
    }
    Ok(Arc::new(TimestampMicrosecondArray::from(out)))
}

/// `mod(a, b)`: integers stay integers; `b` = 0 is an error (as DuckDB 1.4+).
fn mod_type(t: &[DataType]) -> Result<DataType> {
    Ok(if t.iter().all(|t| t.is_integer() || t.is_null()) { DataType::Int64 } else { DataType::Float64 })
}

fn modulo(a: &[ArrayRef]) -> Result<ArrayRef> {
    use datafusion::arrow::datatypes::{Float64Type, Int64Type};
    let types: Vec<DataType> = a.iter().map(|x| x.data_type().clone()).collect();
    if mod_type(&types)? == DataType::Int64 { rem_each::<Int64Type>(a, |p, q| p.wrapping_rem(q)) } else { rem_each::<Float64Type>(a, |p, q| p % q) }
}

/// `rem(a[i], b[i])` in type `T`, a single value broadcast.
fn rem_each<T: datafusion::arrow::datatypes::ArrowPrimitiveType>(a: &[ArrayRef], rem: fn(T::Native, T::Native) -> T::Native) -> Result<ArrayRef> {
    use datafusion::arrow::array::{AsArray, PrimitiveArray};
    let (x, y) = (cast(&a[0], &T::DATA_TYPE)?, cast(&a[1], &T::DATA_TYPE)?);
    let (x, y) = (x.as_primitive::<T>(), y.as_primitive::<T>());
    let get = |arr: &PrimitiveArray<T>, i: usize| {
        let i = if arr.len() == 1 { 0 } else { i };
        arr.is_valid(i).then(|| arr.value(i))
    };
    let mut out = Vec::with_capacity(x.len().max(y.len()));
    for i in 0..x.len().max(y.len()) {
        out.push(match (get(x, i), get(y, i)) {
            (Some(_), Some(q)) if q == T::Native::default() => return exec_err!("mod: division by zero"),
            (Some(p), Some(q)) => Some(rem(p, q)),
            _ => None,
        });
    }
    Ok(Arc::new(out.into_iter().collect::<PrimitiveArray<T>>()))
}

/// DuckDB's `str_split(s, sep)`: the parts of `s` between `sep`s.
fn str_split(a: &[ArrayRef]) -> Result<ArrayRef> {
    use datafusion::arrow::array::{ListBuilder, StringBuilder};
    let (s, sep) = (texts(&a[0])?, texts(&a[1])?);
    let n = s.len().max(sep.len());
    let mut b = ListBuilder::new(StringBuilder::new());
    for i in 0..n {
        match (at(&s, i), at(&sep, i)) {
            (Some(s), Some(sep)) => {
                if sep.is_empty() {
                    s.chars().for_each(|c| b.values().append_value(c.to_string()));
                } else {
                    s.split(sep.as_str()).for_each(|p| b.values().append_value(p));
                }
                b.append(true);
            }
            _ => b.append(false),
        }
    }
    Ok(Arc::new(b.finish()))
}

fn regexp_matches(a: &[ArrayRef]) -> Result<ArrayRef> {
    let (s, p) = (texts(&a[0])?, texts(&a[1])?);
    let opts = if a.len() > 2 { texts(&a[2])? } else { vec![None] };
    let n = s.len().max(p.len()).max(opts.len());
    let mut cache: Option<(String, regex::Regex)> = None;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let (Some(s), Some(p)) = (at(&s, i), at(&p, i)) else {
            out.push(None);
            continue;
        };
        let flags: String = at(&opts, i).unwrap_or_default().chars().filter(|c| matches!(c, 'i' | 's' | 'm' | 'x')).collect();
        let pat = if flags.is_empty() { p } else { format!("(?{flags}){p}") };
        if cache.as_ref().is_none_or(|(k, _)| *k != pat) {
            match regex::Regex::new(&pat) {
                Ok(re) => cache = Some((pat.clone(), re)),
                Err(e) => return exec_err!("regexp_matches: invalid pattern '{pat}': {e}"),
            }
        }
        out.push(Some(cache.as_ref().unwrap().1.is_match(&s)));
    }
    Ok(Arc::new(BooleanArray::from(out)))
}

/// Snowflake/Redshift `convert_timezone([source_tz,] target_tz, ts)`: the
/// wall time `ts` in `source_tz` (default UTC) as wall time in `target_tz`.
fn convert_timezone(a: &[ArrayRef]) -> Result<ArrayRef> {
    let (src, tgt, ts) =
        if a.len() == 3 { (texts(&a[0])?, texts(&a[1])?, timestamps(&a[2])?) } else { (vec![Some("UTC".to_string())], texts(&a[0])?, timestamps(&a[1])?) };
    let n = src.len().max(tgt.len()).max(ts.len());
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let (Some(s), Some(t), Some(d)) = (at(&src, i), at(&tgt, i), at(&ts, i)) else {
            out.push(None);
            continue;
        };
        let zone = |z: &str| {
            z.parse::<chrono_tz::Tz>().map_err(|_| datafusion::common::DataFusionError::Execution(format!("convert_timezone: unknown time zone '{z}'")))
        };
        let (s, t) = (zone(&s)?, zone(&t)?);
        use chrono::TimeZone;
        let local = s.from_local_datetime(&d).earliest().map(|x| x.with_timezone(&t).naive_local());
        out.push(local.map(|x| x.and_utc().timestamp_micros()));
    }
    Ok(Arc::new(TimestampMicrosecondArray::from(out)))
}

fn make_timestamp(a: &[ArrayRef]) -> Result<ArrayRef> {
    let cols: Vec<Vec<Option<f64>>> = a
        .iter()
        .map(|c| {
            let f = cast(c, &DataType::Float64)?;
            Ok(f.as_any().downcast_ref::<Float64Array>().expect("cast to f64").iter().collect())
        })
        .collect::<Result<_>>()?;
    let n = cols.iter().map(Vec::len).max().unwrap_or(0);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let vals: Option<Vec<f64>> = cols.iter().map(|c| at(c, i)).collect();
        out.push(match vals {
            Some(v) => {
                let secs = v[5].trunc();
                let micros = ((v[5] - secs) * 1e6).round() as u32;
                match NaiveDate::from_ymd_opt(v[0] as i32, v[1] as u32, v[2] as u32)
                    .and_then(|d| d.and_hms_micro_opt(v[3] as u32, v[4] as u32, secs as u32, micros))
                {
                    Some(d) => Some(d.and_utc().timestamp_micros()),
                    None => return exec_err!("make_timestamp: {v:?} is not a valid date and time"),
                }
            }
            None => None,
        });
    }
    Ok(Arc::new(TimestampMicrosecondArray::from(out)))
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
    use datafusion::prelude::SessionContext;

    /// Runs a sqllogictest-style file: `query <types>` + SQL + `----` +
    /// rows (space-separated), or `statement error <text>` + SQL.
    async fn run_slt(text: &str) {
        let ctx = SessionContext::new();
        super::register(&ctx);
        let blocks: Vec<&str> = text.split("\n\n").map(str::trim).filter(|b| !b.is_empty() && !b.lines().all(|l| l.starts_with('#'))).collect();
        for block in blocks {
            let lines: Vec<&str> = block.lines().filter(|l| !l.starts_with('#')).collect();
            let head = lines[0];
            if let Some(expected) = head.strip_prefix("statement error ") {
                let sql = lines[1..].join("\n");
                let e = match ctx.sql(&sql).await {
                    Ok(df) => df.collect().await.err().unwrap_or_else(|| panic!("expected an error: {sql}")),
                    Err(e) => e,
                };
                assert!(e.to_string().contains(expected), "{sql}\n  error: {e}\n  expected: {expected}");
                continue;
            }
            assert!(head.starts_with("query "), "bad block: {block}");
            let sep = lines.iter().position(|l| *l == "----").unwrap_or_else(|| panic!("no ---- in {block}"));
            let sql = lines[1..sep].join("\n");
            let expected: Vec<String> = lines[sep + 1..].iter().map(|l| l.to_string()).collect();
            let df = ctx.sql(&sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
            let batches = df.collect().await.unwrap_or_else(|e| panic!("{sql}: {e}"));
            let opts = FormatOptions::default().with_null("NULL");
            let mut got = vec![];
            for b in &batches {
                let fmts: Vec<_> = b.columns().iter().map(|c| ArrayFormatter::try_new(c.as_ref(), &opts).unwrap()).collect();
                for r in 0..b.num_rows() {
                    got.push(fmts.iter().map(|f| f.value(r).to_string()).collect::<Vec<_>>().join(" "));
                }
            }
            assert_eq!(got, expected, "{sql}");
        }
    }

    #[tokio::test]
    async fn duckdb_functions_slt() {
        run_slt(include_str!("../../tests/slt/udfs.slt")).await;
    }
}
