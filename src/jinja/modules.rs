//! `modules.datetime` and `modules.re`: the parts of Python's modules that
//! dbt projects use in Jinja, plus the `run_started_at` datetime object.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use minijinja::value::{DynObject, Kwargs, Object, ObjectRepr, Value, from_args};
use minijinja::{Error, ErrorKind, State};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// A Python-like `datetime`: a wall-clock time, aware when `tz` is set.
#[derive(Debug, Clone)]
pub struct PyDateTime {
    pub dt: NaiveDateTime,
    pub tz: Option<Tz>,
}

impl PyDateTime {
    pub fn now_utc() -> PyDateTime {
        PyDateTime { dt: Utc::now().naive_utc(), tz: Some(Tz::UTC) }
    }
    pub fn from_utc(dt: DateTime<Utc>) -> PyDateTime {
        PyDateTime { dt: dt.naive_utc(), tz: Some(Tz::UTC) }
    }
    /// The instant in UTC (naive times are taken as UTC, as dbt's are).
    pub fn utc(&self) -> NaiveDateTime {
        match self.tz {
            Some(tz) => tz.from_local_datetime(&self.dt).earliest().map(|d| d.naive_utc()).unwrap_or(self.dt),
            None => self.dt,
        }
    }
    fn offset(&self) -> Option<String> {
        let tz = self.tz?;
        let secs = tz.from_local_datetime(&self.dt).earliest().map(|d| d.offset().fix().local_minus_utc()).unwrap_or(0);
        let sign = if secs < 0 { '-' } else { '+' };
        let secs = secs.abs();
        Some(format!("{sign}{:02}:{:02}", secs / 3600, (secs % 3600) / 60))
    }
    fn iso(&self, sep: &str) -> String {
        let mut s = self.dt.format(&format!("%Y-%m-%d{sep}%H:%M:%S")).to_string();
        if self.dt.nanosecond() / 1000 != 0 {
            s.push_str(&format!(".{:06}", self.dt.nanosecond() / 1000));
        }
        if let Some(o) = self.offset() {
            s.push_str(&o);
        }
        s
    }
    fn astimezone(&self, tz: Tz) -> PyDateTime {
        let utc = self.utc();
        PyDateTime { dt: tz.from_utc_datetime(&utc).naive_local(), tz: Some(tz) }
    }
}

impl Object for PyDateTime {
    /// Plain: a datetime stored in a config (`begin=modules.datetime.datetime(2020, 1, 1)`)
    /// serializes as its text, `2020-01-01 00:00:00`, not as an empty map.
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let d = &self.dt;
        Some(Value::from(match key.as_str()? {
            "year" => d.year() as i64,
            "month" => d.month() as i64,
            "day" => d.day() as i64,
            "hour" => d.hour() as i64,
            "minute" => d.minute() as i64,
            "second" => d.second() as i64,
            "microsecond" => (d.nanosecond() / 1000) as i64,
            "tzinfo" => return Some(self.tz.map(|t| Value::from_object(PyTz(t))).unwrap_or(Value::from(()))),
            _ => return None,
        }))
    }

    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<std::cmp::Ordering> {
        other.downcast_ref::<PyDateTime>().map(|o| self.utc().cmp(&o.utc()))
    }

    fn call_method(self: &Arc<Self>, _state: &State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        match method {
            "strftime" => {
                let (fmt,): (String,) = from_args(args)?;
                Ok(Value::from(strftime(&self.dt, &fmt)?))
            }
            "isoformat" => {
                let (sep,): (Option<String>,) = from_args(args)?;
                Ok(Value::from(self.iso(sep.as_deref().unwrap_or("T"))))
            }
            "date" => Ok(Value::from_object(PyDate(self.dt.date()))),
            "timestamp" => Ok(Value::from(self.utc().and_utc().timestamp_micros() as f64 / 1e6)),
            "weekday" => Ok(Value::from(self.dt.weekday().num_days_from_monday())),
            "isoweekday" => Ok(Value::from(self.dt.weekday().number_from_monday())),
            "astimezone" => {
                let (tz,): (Option<Value>,) = from_args(args)?;
                let tz = match tz {
                    Some(t) => tz_of(&t)?,
                    None => Tz::UTC,
                };
                Ok(Value::from_object(self.astimezone(tz)))
            }
            "utcoffset" => Ok(self.offset().map(Value::from).unwrap_or(Value::from(()))),
            "replace" => {
                let (_, kw): (&[Value], Kwargs) = from_args(args)?;
                let mut d = self.dt;
                let bad = |what: &str| Error::new(ErrorKind::InvalidOperation, format!("datetime.replace: {what} is out of range"));
                if let Some(y) = kw.get::<Option<i32>>("year")? {
                    d = d.with_year(y).ok_or_else(|| bad("year"))?;
                }
                if let Some(m) = kw.get::<Option<u32>>("month")? {
                    d = d.with_month(m).ok_or_else(|| bad("month"))?;
                }
                if let Some(v) = kw.get::<Option<u32>>("day")? {
                    d = d.with_day(v).ok_or_else(|| bad("day"))?;
                }
                if let Some(v) = kw.get::<Option<u32>>("hour")? {
                    d = d.with_hour(v).ok_or_else(|| bad("hour"))?;
                }
                if let Some(v) = kw.get::<Option<u32>>("minute")? {
                    d = d.with_minute(v).ok_or_else(|| bad("minute"))?;
                }
                if let Some(v) = kw.get::<Option<u32>>("second")? {
                    d = d.with_second(v).ok_or_else(|| bad("second"))?;
                }
                if let Some(v) = kw.get::<Option<u32>>("microsecond")? {
                    d = d.with_nanosecond(v * 1000).ok_or_else(|| bad("microsecond"))?;
                }
                let tz = match kw.get::<Option<Value>>("tzinfo")? {
                    Some(v) if v.is_none() => None,
                    Some(v) => Some(tz_of(&v)?),
                    None => self.tz,
                };
                Ok(Value::from_object(PyDateTime { dt: d, tz }))
            }
            _ => Err(Error::new(ErrorKind::UnknownMethod, format!("datetime has no method '{method}'"))),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.iso(" "))
    }
}

/// A Python-like `timedelta`, in microseconds.
#[derive(Debug, Clone, Copy)]
pub struct PyTimeDelta(pub i64);

impl Object for PyTimeDelta {
    fn is_true(self: &Arc<Self>) -> bool {
        self.0 != 0
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let us = self.0;
        let days = us.div_euclid(86_400_000_000);
        let rest = us.rem_euclid(86_400_000_000);
        Some(Value::from(match key.as_str()? {
            "days" => days,
            "seconds" => rest / 1_000_000,
            "microseconds" => rest % 1_000_000,
            _ => return None,
        }))
    }
    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<std::cmp::Ordering> {
        other.downcast_ref::<PyTimeDelta>().map(|o| self.0.cmp(&o.0))
    }
    fn call_method(self: &Arc<Self>, _state: &State<'_, '_>, method: &str, _args: &[Value]) -> Result<Value, Error> {
        match method {
            "total_seconds" => Ok(Value::from(self.0 as f64 / 1e6)),
            _ => Err(Error::new(ErrorKind::UnknownMethod, format!("timedelta has no method '{method}'"))),
        }
    }
    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (days, rest) = (self.0.div_euclid(86_400_000_000), self.0.rem_euclid(86_400_000_000));
        let secs = rest / 1_000_000;
        if days != 0 {
            write!(f, "{days} day{}, ", if days.abs() == 1 { "" } else { "s" })?;
        }
        write!(f, "{}:{:02}:{:02}", secs / 3600, (secs % 3600) / 60, secs % 60)?;
        if rest % 1_000_000 != 0 {
            write!(f, ".{:06}", rest % 1_000_000)?;
        }
        Ok(())
    }
}

/// A pytz time zone: `localize(dt)`, `zone`.
#[derive(Debug, Clone, Copy)]
pub struct PyTz(pub Tz);

impl Object for PyTz {
    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "zone" | "key" => Some(Value::from(self.0.name())),
            _ => None,
        }
    }
    fn call_method(self: &Arc<Self>, _state: &State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        match method {
            "localize" => {
                let (dt, _kw): (Value, Kwargs) = from_args(args)?;
                let d = dt.downcast_object_ref::<PyDateTime>().ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "localize() expects a datetime"))?;
                if d.tz.is_some() {
                    return Err(Error::new(ErrorKind::InvalidOperation, "Not naive datetime (tzinfo is already set)"));
                }
                Ok(Value::from_object(PyDateTime { dt: d.dt, tz: Some(self.0) }))
            }
            "normalize" => {
                let (dt,): (Value,) = from_args(args)?;
                let d = dt.downcast_object_ref::<PyDateTime>().ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "normalize() expects a datetime"))?;
                Ok(Value::from_object(d.astimezone(self.0)))
            }
            "tzname" | "__str__" => Ok(Value::from(self.0.name())),
            _ => Err(Error::new(ErrorKind::UnknownMethod, format!("timezone has no method '{method}'"))),
        }
    }
    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name())
    }
}

fn tz_of(v: &Value) -> Result<Tz, Error> {
    if let Some(t) = v.downcast_object_ref::<PyTz>() {
        return Ok(t.0);
    }
    match v.as_str() {
        Some(s) => parse_tz(s),
        None => Err(Error::new(ErrorKind::InvalidOperation, format!("expected a time zone, got {v}"))),
    }
}

fn parse_tz(name: &str) -> Result<Tz, Error> {
    name.parse::<Tz>().map_err(|_| Error::new(ErrorKind::InvalidOperation, format!("UnknownTimeZoneError: '{name}'")))
}

fn delta_of(v: &Value) -> Option<i64> {
    v.downcast_object_ref::<PyTimeDelta>().map(|d| d.0)
}

/// `a + b` / `a - b` for datetimes, dates and timedeltas (minijinja has no
/// operator overloading: templates reach this through a source rewrite).
pub fn dt_op(a: Value, op: String, b: Value) -> Result<Value, Error> {
    let bad = || Error::new(ErrorKind::InvalidOperation, format!("unsupported operand types for {op}: '{a}' and '{b}'"));
    let sign = match op.as_str() {
        "+" => 1,
        "-" => -1,
        _ => return Err(bad()),
    };
    if let (Some(d), Some(td)) = (a.downcast_object_ref::<PyDateTime>(), delta_of(&b)) {
        let dt = d.dt.checked_add_signed(chrono::Duration::microseconds(sign * td)).ok_or_else(bad)?;
        return Ok(Value::from_object(PyDateTime { dt, tz: d.tz }));
    }
    if let (Some(d), Some(td)) = (a.downcast_object_ref::<PyDate>(), delta_of(&b)) {
        let dt = d.0.checked_add_signed(chrono::Duration::days((sign * td).div_euclid(86_400_000_000))).ok_or_else(bad)?;
        return Ok(Value::from_object(PyDate(dt)));
    }
    if let (Some(x), Some(y)) = (delta_of(&a), delta_of(&b)) {
        return Ok(Value::from_object(PyTimeDelta(x + sign * y)));
    }
    if sign == 1
        && let (Some(td), Some(_)) = (delta_of(&a), b.downcast_object_ref::<PyDateTime>())
    {
        return dt_op(b.clone(), op.clone(), Value::from_object(PyTimeDelta(td)));
    }
    if sign == -1 {
        if let (Some(x), Some(y)) = (a.downcast_object_ref::<PyDateTime>(), b.downcast_object_ref::<PyDateTime>()) {
            return Ok(Value::from_object(PyTimeDelta((x.utc() - y.utc()).num_microseconds().ok_or_else(bad)?)));
        }
        if let (Some(x), Some(y)) = (a.downcast_object_ref::<PyDate>(), b.downcast_object_ref::<PyDate>()) {
            return Ok(Value::from_object(PyTimeDelta((x.0 - y.0).num_days() * 86_400_000_000)));
        }
    }
    Err(bad())
}

/// A Python-like `date`.
#[derive(Debug, Clone)]
pub struct PyDate(pub NaiveDate);

impl Object for PyDate {
    /// Plain, as [`PyDateTime`]: serialized as `2020-01-01`.
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<std::cmp::Ordering> {
        other.downcast_ref::<PyDate>().map(|o| self.0.cmp(&o.0))
    }
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(Value::from(match key.as_str()? {
            "year" => self.0.year() as i64,
            "month" => self.0.month() as i64,
            "day" => self.0.day() as i64,
            _ => return None,
        }))
    }
    fn call_method(self: &Arc<Self>, _state: &State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        match method {
            "strftime" => {
                let (fmt,): (String,) = from_args(args)?;
                Ok(Value::from(strftime(&self.0.and_hms_opt(0, 0, 0).unwrap(), &fmt)?))
            }
            "isoformat" => Ok(Value::from(self.0.format("%Y-%m-%d").to_string())),
            "weekday" => Ok(Value::from(self.0.weekday().num_days_from_monday())),
            "isoweekday" => Ok(Value::from(self.0.weekday().number_from_monday())),
            "replace" => {
                let (_, kw): (&[Value], Kwargs) = from_args(args)?;
                let mut d = self.0;
                let bad = |what: &str| Error::new(ErrorKind::InvalidOperation, format!("date.replace: {what} is out of range"));
                if let Some(y) = kw.get::<Option<i32>>("year")? {
                    d = d.with_year(y).ok_or_else(|| bad("year"))?;
                }
                if let Some(m) = kw.get::<Option<u32>>("month")? {
                    d = d.with_month(m).ok_or_else(|| bad("month"))?;
                }
                if let Some(v) = kw.get::<Option<u32>>("day")? {
                    d = d.with_day(v).ok_or_else(|| bad("day"))?;
                }
                Ok(Value::from_object(PyDate(d)))
            }
            _ => Err(Error::new(ErrorKind::UnknownMethod, format!("date has no method '{method}'"))),
        }
    }
    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

fn strftime(dt: &NaiveDateTime, fmt: &str) -> Result<String, Error> {
    use std::fmt::Write;
    let mut out = String::new();
    write!(out, "{}", dt.format(fmt)).map_err(|_| Error::new(ErrorKind::InvalidOperation, format!("invalid strftime format '{fmt}'")))?;
    Ok(out)
}

/// Parses Python's `fromisoformat` input: a date, a date and time, and an
/// optional UTC offset (`+02:00`, `Z`).
fn parse_datetime(s: &str) -> Option<PyDateTime> {
    let s = s.trim();
    for f in ["%Y-%m-%dT%H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%dT%H:%M%:z", "%Y-%m-%d %H:%M%:z"] {
        if let Ok(d) = DateTime::parse_from_str(&s.replace('Z', "+00:00"), f) {
            // Whole-hour offsets keep their wall time (as Etc/GMT∓N zones);
            // others become the UTC instant.
            let secs = d.offset().local_minus_utc();
            let zone = match secs {
                0 => Some(Tz::UTC),
                s if s % 3600 == 0 && s.abs() <= 14 * 3600 => format!("Etc/GMT{}{}", if s > 0 { '-' } else { '+' }, s.abs() / 3600).parse::<Tz>().ok(),
                _ => None,
            };
            return Some(match zone {
                Some(tz) => PyDateTime { dt: d.naive_local(), tz: Some(tz) },
                None => PyDateTime { dt: d.naive_utc(), tz: Some(Tz::UTC) },
            });
        }
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"] {
        if let Ok(d) = NaiveDateTime::parse_from_str(s, f) {
            return Some(PyDateTime { dt: d, tz: None });
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().map(|d| PyDateTime { dt: d.and_hms_opt(0, 0, 0).unwrap(), tz: None })
}

fn func<F>(f: F) -> Value
where
    F: Fn(&[Value]) -> Result<Value, Error> + Send + Sync + 'static,
{
    Value::from_function(move |args: minijinja::value::Rest<Value>| f(&args))
}

/// A Python class: callable (the constructor) with class attributes.
#[derive(Debug)]
pub struct PyClass {
    name: &'static str,
    ctor: Value,
    attrs: BTreeMap<&'static str, Value>,
}

impl Object for PyClass {
    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.attrs.get(key.as_str()?).cloned()
    }
    fn call(self: &Arc<Self>, state: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        self.ctor.call(state, args)
    }
    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<class '{}'>", self.name)
    }
}

fn now_in(args: &[Value]) -> Result<Value, Error> {
    let (tz, kw): (Option<Value>, Kwargs) = from_args(args)?;
    let tz = tz.or(kw.get::<Option<Value>>("tz")?).filter(|v| !v.is_none());
    Ok(Value::from_object(match tz {
        Some(t) => PyDateTime::now_utc().astimezone(tz_of(&t)?),
        None => PyDateTime { dt: chrono::Local::now().naive_local(), tz: None },
    }))
}

fn new_datetime(args: &[Value]) -> Result<Value, Error> {
    let (pos, kw): (&[Value], Kwargs) = from_args(args)?;
    let names = ["year", "month", "day", "hour", "minute", "second", "microsecond"];
    let mut parts = [0i64, 1, 1, 0, 0, 0, 0];
    for (i, n) in names.iter().enumerate() {
        if let Some(v) = pos.get(i) {
            parts[i] = v.as_i64().ok_or_else(|| Error::new(ErrorKind::InvalidOperation, format!("datetime(): {n} must be an integer")))?;
        } else if let Some(v) = kw.get::<Option<i64>>(n)? {
            parts[i] = v;
        } else if i < 3 {
            return Err(Error::new(ErrorKind::MissingArgument, format!("datetime(): missing argument '{n}'")));
        }
    }
    let tz = match pos.get(7).cloned().or(kw.get::<Option<Value>>("tzinfo")?) {
        Some(v) if !v.is_none() => Some(tz_of(&v)?),
        _ => None,
    };
    let bad = || Error::new(ErrorKind::InvalidOperation, format!("datetime(): {parts:?} is not a valid date and time"));
    let date = NaiveDate::from_ymd_opt(parts[0] as i32, parts[1] as u32, parts[2] as u32).ok_or_else(bad)?;
    let dt = date.and_hms_micro_opt(parts[3] as u32, parts[4] as u32, parts[5] as u32, parts[6] as u32).ok_or_else(bad)?;
    Ok(Value::from_object(PyDateTime { dt, tz }))
}

fn new_timedelta(args: &[Value]) -> Result<Value, Error> {
    let (pos, kw): (&[Value], Kwargs) = from_args(args)?;
    let names = [
        ("days", 86_400_000_000f64),
        ("seconds", 1_000_000.0),
        ("microseconds", 1.0),
        ("milliseconds", 1_000.0),
        ("minutes", 60_000_000.0),
        ("hours", 3_600_000_000.0),
        ("weeks", 604_800_000_000.0),
    ];
    let mut us = 0f64;
    for (i, (n, scale)) in names.iter().enumerate() {
        let v = match pos.get(i) {
            Some(v) => Some(v.clone()),
            None => kw.get::<Option<Value>>(n)?,
        };
        if let Some(v) = v {
            let x = f64::try_from(v.clone()).map_err(|_| Error::new(ErrorKind::InvalidOperation, format!("timedelta(): {n} must be a number, got {v}")))?;
            us += x * scale;
        }
    }
    Ok(Value::from_object(PyTimeDelta(us.round() as i64)))
}

/// `modules.datetime`.
fn datetime_module() -> Value {
    let mut dt = BTreeMap::new();
    dt.insert("now", func(now_in));
    dt.insert("today", func(|_| Ok(Value::from_object(PyDateTime { dt: chrono::Local::now().naive_local(), tz: None }))));
    dt.insert("utcnow", func(|_| Ok(Value::from_object(PyDateTime { dt: Utc::now().naive_utc(), tz: None }))));
    dt.insert(
        "strptime",
        func(|args| {
            let (s, fmt): (String, String) = from_args(args)?;
            NaiveDateTime::parse_from_str(&s, &fmt)
                .or_else(|_| NaiveDate::parse_from_str(&s, &fmt).map(|d| d.and_hms_opt(0, 0, 0).unwrap()))
                .map(|dt| Value::from_object(PyDateTime { dt, tz: None }))
                .map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("strptime('{s}', '{fmt}'): {e}")))
        }),
    );
    dt.insert(
        "fromisoformat",
        func(|args| {
            let (s,): (String,) = from_args(args)?;
            parse_datetime(&s).map(Value::from_object).ok_or_else(|| Error::new(ErrorKind::InvalidOperation, format!("Invalid isoformat string: '{s}'")))
        }),
    );
    dt.insert(
        "fromtimestamp",
        func(|args| {
            let (ts, tz): (f64, Option<Value>) = from_args(args)?;
            let utc = DateTime::<Utc>::from_timestamp_micros((ts * 1e6) as i64)
                .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, format!("fromtimestamp({ts}): out of range")))?;
            Ok(Value::from_object(match tz.filter(|v| !v.is_none()) {
                Some(t) => PyDateTime::from_utc(utc).astimezone(tz_of(&t)?),
                None => PyDateTime { dt: utc.with_timezone(&chrono::Local).naive_local(), tz: None },
            }))
        }),
    );
    dt.insert(
        "combine",
        func(|args| {
            let (d, _t): (Value, Option<Value>) = from_args(args)?;
            let d = d.downcast_object_ref::<PyDate>().ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "combine() expects a date"))?;
            Ok(Value::from_object(PyDateTime { dt: d.0.and_hms_opt(0, 0, 0).unwrap(), tz: None }))
        }),
    );
    let mut date = BTreeMap::new();
    date.insert("today", func(|_| Ok(Value::from_object(PyDate(chrono::Local::now().date_naive())))));
    date.insert(
        "fromisoformat",
        func(|args| {
            let (s,): (String,) = from_args(args)?;
            NaiveDate::parse_from_str(&s, "%Y-%m-%d")
                .map(|d| Value::from_object(PyDate(d)))
                .map_err(|_| Error::new(ErrorKind::InvalidOperation, format!("Invalid isoformat string: '{s}'")))
        }),
    );
    let mut tzmod = BTreeMap::new();
    tzmod.insert("utc", Value::from_object(PyTz(Tz::UTC)));
    let mut m = BTreeMap::new();
    m.insert("datetime", Value::from_object(PyClass { name: "datetime.datetime", ctor: func(new_datetime), attrs: dt }));
    m.insert(
        "date",
        Value::from_object(PyClass {
            name: "datetime.date",
            ctor: func(|args| {
                let (y, mo, d): (i32, u32, u32) = from_args(args)?;
                NaiveDate::from_ymd_opt(y, mo, d)
                    .map(|d| Value::from_object(PyDate(d)))
                    .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, format!("date({y}, {mo}, {d}): day is out of range for month")))
            }),
            attrs: date,
        }),
    );
    m.insert("timedelta", Value::from_object(PyClass { name: "datetime.timedelta", ctor: func(new_timedelta), attrs: BTreeMap::new() }));
    m.insert("timezone", Value::from_object(PyClass { name: "datetime.timezone", ctor: func(|a| Ok(a.first().cloned().unwrap_or_default())), attrs: tzmod }));
    Value::from(m)
}

/// `modules.pytz`.
fn pytz_module() -> Value {
    let mut m = BTreeMap::new();
    m.insert(
        "timezone",
        func(|args| {
            let (name,): (String,) = from_args(args)?;
            Ok(Value::from_object(PyTz(parse_tz(&name)?)))
        }),
    );
    m.insert("utc", Value::from_object(PyTz(Tz::UTC)));
    m.insert("UTC", Value::from_object(PyTz(Tz::UTC)));
    m.insert("all_timezones", Value::from(chrono_tz::TZ_VARIANTS.iter().map(|t| Value::from(t.name())).collect::<Vec<_>>()));
    Value::from(m)
}

fn items(v: &Value) -> Result<Vec<Value>, Error> {
    Ok(v.try_iter()?.collect())
}

fn combos(pool: &[Value], r: usize, start: usize, cur: &mut Vec<Value>, out: &mut Vec<Value>, replace: bool) {
    if cur.len() == r {
        out.push(Value::from(cur.clone()));
        return;
    }
    for i in start..pool.len() {
        cur.push(pool[i].clone());
        combos(pool, r, if replace { i } else { i + 1 }, cur, out, replace);
        cur.pop();
    }
}

fn perms(pool: &[Value], r: usize, used: &mut Vec<bool>, cur: &mut Vec<Value>, out: &mut Vec<Value>) {
    if cur.len() == r {
        out.push(Value::from(cur.clone()));
        return;
    }
    for i in 0..pool.len() {
        if !used[i] {
            used[i] = true;
            cur.push(pool[i].clone());
            perms(pool, r, used, cur, out);
            cur.pop();
            used[i] = false;
        }
    }
}

/// `modules.itertools` (results are lists, not lazy iterators).
fn itertools_module() -> Value {
    let mut m = BTreeMap::new();
    m.insert(
        "chain",
        func(|args| {
            let mut out = vec![];
            for a in args {
                out.extend(items(a)?);
            }
            Ok(Value::from(out))
        }),
    );
    m.insert(
        "product",
        func(|args| {
            let (pos, kw): (&[Value], Kwargs) = from_args(args)?;
            let repeat = kw.get::<Option<usize>>("repeat")?.unwrap_or(1);
            let mut pools = vec![];
            for _ in 0..repeat {
                for p in pos {
                    pools.push(items(p)?);
                }
            }
            let mut out: Vec<Vec<Value>> = vec![vec![]];
            for pool in pools {
                out = out.into_iter().flat_map(|prefix| pool.iter().map(move |x| [prefix.clone(), vec![x.clone()]].concat())).collect();
            }
            Ok(Value::from(out.into_iter().map(Value::from).collect::<Vec<_>>()))
        }),
    );
    m.insert(
        "combinations",
        func(|args| {
            let (it, r): (Value, usize) = from_args(args)?;
            let mut out = vec![];
            combos(&items(&it)?, r, 0, &mut vec![], &mut out, false);
            Ok(Value::from(out))
        }),
    );
    m.insert(
        "combinations_with_replacement",
        func(|args| {
            let (it, r): (Value, usize) = from_args(args)?;
            let mut out = vec![];
            combos(&items(&it)?, r, 0, &mut vec![], &mut out, true);
            Ok(Value::from(out))
        }),
    );
    m.insert(
        "permutations",
        func(|args| {
            let (it, r): (Value, Option<usize>) = from_args(args)?;
            let pool = items(&it)?;
            let r = r.unwrap_or(pool.len());
            let mut out = vec![];
            perms(&pool, r, &mut vec![false; pool.len()], &mut vec![], &mut out);
            Ok(Value::from(out))
        }),
    );
    m.insert(
        "islice",
        func(|args| {
            let (it, a, b): (Value, Option<usize>, Option<usize>) = from_args(args)?;
            let (start, stop) = match b {
                Some(b) => (a.unwrap_or(0), b),
                None => (0, a.unwrap_or(usize::MAX)),
            };
            Ok(Value::from(items(&it)?.into_iter().skip(start).take(stop.saturating_sub(start)).collect::<Vec<_>>()))
        }),
    );
    Value::from(m)
}

/// The `modules` global: `datetime`, `pytz`, `re`, `itertools`.
pub fn modules() -> Value {
    let mut re_mod = BTreeMap::new();
    re_mod.insert("match", func(|a| re_call("match", a)));
    re_mod.insert("search", func(|a| re_call("search", a)));
    re_mod.insert("fullmatch", func(|a| re_call("fullmatch", a)));
    re_mod.insert("findall", func(|a| re_call("findall", a)));
    re_mod.insert("sub", func(|a| re_call("sub", a)));
    re_mod.insert("split", func(|a| re_call("split", a)));
    re_mod.insert(
        "escape",
        func(|a| {
            let (s,): (String,) = from_args(a)?;
            Ok(Value::from(regex::escape(&s)))
        }),
    );
    re_mod.insert(
        "compile",
        func(|args| {
            let (p, flags): (String, Option<i64>) = from_args(args)?;
            let re = compile(&with_flags(&p, flags.unwrap_or(0)))?;
            Ok(Value::from_object(PyRegex(re)))
        }),
    );
    for (k, v) in [("IGNORECASE", 2), ("I", 2), ("MULTILINE", 8), ("M", 8), ("DOTALL", 16), ("S", 16), ("VERBOSE", 64), ("X", 64)] {
        re_mod.insert(k, Value::from(v));
    }

    let mut m = BTreeMap::new();
    m.insert("datetime", datetime_module());
    m.insert("pytz", pytz_module());
    m.insert("re", Value::from(re_mod));
    m.insert("itertools", itertools_module());
    Value::from(m)
}

/// Python `re` flags as an inline group.
fn with_flags(p: &str, flags: i64) -> String {
    let mut f = String::new();
    for (bit, c) in [(2, 'i'), (8, 'm'), (16, 's'), (64, 'x')] {
        if flags & bit != 0 {
            f.push(c);
        }
    }
    if f.is_empty() { p.to_string() } else { format!("(?{f}){p}") }
}

/// Compiles a Python `re` pattern; lookaround and backreferences work.
fn compile(p: &str) -> Result<fancy_regex::Regex, Error> {
    fancy_regex::Regex::new(p).map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("invalid regular expression '{p}': {e}")))
}

fn re_err(e: fancy_regex::Error) -> Error {
    Error::new(ErrorKind::InvalidOperation, format!("regular expression: {e}"))
}

/// `re.<op>(pattern, ..., flags=0)`: Python's positional `flags` slot
/// (after the string; `sub` has `count` and `split` has `maxsplit` first)
/// or the `flags=` keyword.
fn re_call(op: &str, args: &[Value]) -> Result<Value, Error> {
    let (args, flags_kw) = match args.last().filter(|v| v.is_kwargs()) {
        Some(k) => {
            let kw = minijinja::value::Kwargs::try_from(k.clone())?;
            let f: Option<i64> = kw.get("flags")?;
            let count: Option<i64> = kw.get("count").or_else(|_| kw.get("maxsplit"))?;
            let mut a = args[..args.len() - 1].to_vec();
            if let Some(c) = count {
                a.push(Value::from(c));
            }
            (a, f)
        }
        None => (args.to_vec(), None),
    };
    let (pattern, rest): (String, &[Value]) = from_args(&args)?;
    let flags_at = match op {
        "sub" => 3,
        "split" => 2,
        _ => 1,
    };
    let flags = match rest.get(flags_at) {
        Some(v) => Some(i64::try_from(v.clone())?),
        None => flags_kw,
    };
    let rest = &rest[..rest.len().min(flags_at)];
    let re = compile(&with_flags(&pattern, flags.unwrap_or(0)))?;
    Arc::new(PyRegex(re)).apply(op, rest)
}

/// One part of a Python `re.sub` replacement template.
#[derive(Debug, PartialEq)]
enum ReplPiece {
    Text(String),
    Group(usize),
    Named(String),
}

/// Parses a Python replacement template as `re.sub` reads it: `\\1`..`\\99`
/// and `\\g<1>` / `\\g<name>` insert a group (empty when it did not take
/// part in the match), `\\n`, `\\t`, `\\\\` and the other C escapes give
/// their character, a backslash before anything else stays; `$` is plain text.
fn repl_template(repl: &str, re: &fancy_regex::Regex) -> Result<Vec<ReplPiece>, Error> {
    let bad = |what: String| Error::new(ErrorKind::InvalidOperation, format!("re.sub: {what} in replacement '{repl}'"));
    let group = |i: usize| if i < re.captures_len() { Ok(ReplPiece::Group(i)) } else { Err(bad(format!("invalid group reference {i}"))) };
    let mut out = vec![];
    let mut text = String::new();
    let mut chars = repl.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            text.push(c);
            continue;
        }
        let Some(n) = chars.next() else { return Err(bad("bad escape (end of pattern)".into())) };
        let piece = match n {
            'g' => {
                if chars.next() != Some('<') {
                    return Err(bad("missing < after \\g".into()));
                }
                let name: String = chars.by_ref().take_while(|c| *c != '>').collect();
                match name.parse::<usize>() {
                    Ok(i) => group(i)?,
                    Err(_) if re.capture_names().any(|n| n == Some(name.as_str())) => ReplPiece::Named(name),
                    Err(_) => return Err(bad(format!("unknown group name '{name}'"))),
                }
            }
            '1'..='9' => {
                let mut i = n.to_digit(10).unwrap() as usize;
                if let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                    chars.next();
                    i = i * 10 + d as usize;
                }
                group(i)?
            }
            _ => {
                match n {
                    'n' => text.push('\n'),
                    't' => text.push('\t'),
                    'r' => text.push('\r'),
                    'f' => text.push('\x0c'),
                    'v' => text.push('\x0b'),
                    'a' => text.push('\x07'),
                    'b' => text.push('\x08'),
                    '\\' => text.push('\\'),
                    '0' => text.push('\0'),
                    c if c.is_ascii_alphabetic() => return Err(bad(format!("bad escape \\{c}"))),
                    c => {
                        text.push('\\');
                        text.push(c);
                    }
                }
                continue;
            }
        };
        if !text.is_empty() {
            out.push(ReplPiece::Text(std::mem::take(&mut text)));
        }
        out.push(piece);
    }
    if !text.is_empty() {
        out.push(ReplPiece::Text(text));
    }
    Ok(out)
}

#[derive(Debug)]
pub struct PyRegex(fancy_regex::Regex);

impl PyRegex {
    fn apply(self: &Arc<Self>, op: &str, args: &[Value]) -> Result<Value, Error> {
        let re = &self.0;
        match op {
            "match" | "search" | "fullmatch" => {
                let (s, _f): (String, Option<Value>) = from_args(args)?;
                let caps = re.captures(&s).map_err(re_err)?;
                let ok = match (&caps, op) {
                    (Some(c), "match") => c.get(0).is_some_and(|m| m.start() == 0),
                    (Some(c), "fullmatch") => c.get(0).is_some_and(|m| m.start() == 0 && m.end() == s.len()),
                    (Some(_), _) => true,
                    (None, _) => false,
                };
                if !ok {
                    return Ok(Value::from(()));
                }
                let c = caps.unwrap();
                let groups: Vec<Value> = (0..c.len()).map(|i| c.get(i).map(|m| Value::from(m.as_str())).unwrap_or(Value::from(()))).collect();
                Ok(Value::from_object(PyMatch(groups)))
            }
            "findall" => {
                let (s,): (String,) = from_args(args)?;
                let out: Vec<Value> = re
                    .captures_iter(&s)
                    .map(|c| {
                        let c = c.map_err(re_err)?;
                        Ok(if c.len() == 2 {
                            Value::from(c.get(1).map(|m| m.as_str()).unwrap_or(""))
                        } else if c.len() > 2 {
                            Value::from((1..c.len()).map(|i| Value::from(c.get(i).map(|m| m.as_str()).unwrap_or(""))).collect::<Vec<_>>())
                        } else {
                            Value::from(c.get(0).map(|m| m.as_str()).unwrap_or(""))
                        })
                    })
                    .collect::<Result<_, Error>>()?;
                Ok(Value::from(out))
            }
            "sub" => {
                let (repl, s, count): (String, String, Option<usize>) = from_args(args)?;
                let pieces = repl_template(&repl, re)?;
                let expand = |c: &fancy_regex::Captures<'_>| -> String {
                    let mut out = String::new();
                    for p in &pieces {
                        match p {
                            ReplPiece::Text(t) => out.push_str(t),
                            ReplPiece::Group(i) => out.push_str(c.get(*i).map(|m| m.as_str()).unwrap_or("")),
                            ReplPiece::Named(n) => out.push_str(c.name(n).map(|m| m.as_str()).unwrap_or("")),
                        }
                    }
                    out
                };
                Ok(Value::from(re.replacen(&s, count.unwrap_or(0), expand).into_owned()))
            }
            "split" => {
                let (s, max): (String, Option<usize>) = from_args(args)?;
                let parts: Vec<Value> = match max.filter(|m| *m > 0) {
                    Some(m) => re.splitn(&s, m + 1).map(|p| p.map(Value::from).map_err(re_err)).collect::<Result<_, _>>()?,
                    None => re.split(&s).map(|p| p.map(Value::from).map_err(re_err)).collect::<Result<_, _>>()?,
                };
                Ok(Value::from(parts))
            }
            _ => Err(Error::new(ErrorKind::UnknownMethod, format!("regex has no method '{op}'"))),
        }
    }
}

impl Object for PyRegex {
    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn call_method(self: &Arc<Self>, _state: &State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        self.apply(method, args)
    }
}

#[derive(Debug)]
pub struct PyMatch(Vec<Value>);

impl Object for PyMatch {
    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn call_method(self: &Arc<Self>, _state: &State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        match method {
            "group" => {
                let (i,): (Option<usize>,) = from_args(args)?;
                Ok(self.0.get(i.unwrap_or(0)).cloned().unwrap_or(Value::from(())))
            }
            "groups" => Ok(Value::from(self.0[1..].to_vec())),
            _ => Err(Error::new(ErrorKind::UnknownMethod, format!("match has no method '{method}'"))),
        }
    }
}
