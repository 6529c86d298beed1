//! `modules.datetime` and `modules.re`: the parts of Python's modules that
//! dbt projects use in Jinja, plus the `run_started_at` datetime object.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Timelike, Utc};
use minijinja::value::{Kwargs, Object, Value, from_args};
use minijinja::{Error, ErrorKind, State};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// A Python-like `datetime` (UTC-aware when `aware`).
#[derive(Debug, Clone)]
pub struct PyDateTime {
    pub dt: NaiveDateTime,
    pub aware: bool,
}

impl PyDateTime {
    pub fn now_utc() -> PyDateTime {
        PyDateTime { dt: Utc::now().naive_utc(), aware: true }
    }
    pub fn from_utc(dt: DateTime<Utc>) -> PyDateTime {
        PyDateTime { dt: dt.naive_utc(), aware: true }
    }
    fn iso(&self, sep: &str) -> String {
        let mut s = self.dt.format(&format!("%Y-%m-%d{sep}%H:%M:%S")).to_string();
        if self.dt.nanosecond() / 1000 != 0 {
            s.push_str(&format!(".{:06}", self.dt.nanosecond() / 1000));
        }
        if self.aware {
            s.push_str("+00:00");
        }
        s
    }
}

impl Object for PyDateTime {
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
            _ => return None,
        }))
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
            "timestamp" => Ok(Value::from(self.dt.and_utc().timestamp_micros() as f64 / 1e6)),
            "replace" => {
                let (_, kw): (&[Value], Kwargs) = from_args(args)?;
                let mut d = self.dt;
                if let Some(y) = kw.get::<Option<i32>>("year")? {
                    d = d.with_year(y).unwrap_or(d);
                }
                if let Some(m) = kw.get::<Option<u32>>("month")? {
                    d = d.with_month(m).unwrap_or(d);
                }
                if let Some(v) = kw.get::<Option<u32>>("day")? {
                    d = d.with_day(v).unwrap_or(d);
                }
                if let Some(v) = kw.get::<Option<u32>>("hour")? {
                    d = d.with_hour(v).unwrap_or(d);
                }
                if let Some(v) = kw.get::<Option<u32>>("minute")? {
                    d = d.with_minute(v).unwrap_or(d);
                }
                if let Some(v) = kw.get::<Option<u32>>("second")? {
                    d = d.with_second(v).unwrap_or(d);
                }
                if let Some(v) = kw.get::<Option<u32>>("microsecond")? {
                    d = d.with_nanosecond(v * 1000).unwrap_or(d);
                }
                let _ = kw.get::<Option<Value>>("tzinfo")?;
                Ok(Value::from_object(PyDateTime { dt: d, aware: self.aware }))
            }
            _ => Err(Error::new(ErrorKind::UnknownMethod, format!("datetime has no method '{method}'"))),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.iso(" "))
    }
}

/// A Python-like `date`.
#[derive(Debug, Clone)]
pub struct PyDate(pub NaiveDate);

impl Object for PyDate {
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

fn parse_datetime(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"] {
        if let Ok(d) = NaiveDateTime::parse_from_str(s, f) {
            return Some(d);
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().map(|d| d.and_hms_opt(0, 0, 0).unwrap())
}

fn func<F>(f: F) -> Value
where
    F: Fn(&[Value]) -> Result<Value, Error> + Send + Sync + 'static,
{
    Value::from_function(move |args: minijinja::value::Rest<Value>| f(&args))
}

/// The `modules` global.
pub fn modules() -> Value {
    let mut datetime_cls = BTreeMap::new();
    datetime_cls.insert("now", func(|_| Ok(Value::from_object(PyDateTime { dt: chrono::Local::now().naive_local(), aware: false }))));
    datetime_cls.insert("utcnow", func(|_| Ok(Value::from_object(PyDateTime { dt: Utc::now().naive_utc(), aware: false }))));
    datetime_cls.insert(
        "strptime",
        func(|args| {
            let (s, fmt): (String, String) = from_args(args)?;
            NaiveDateTime::parse_from_str(&s, &fmt)
                .or_else(|_| NaiveDate::parse_from_str(&s, &fmt).map(|d| d.and_hms_opt(0, 0, 0).unwrap()))
                .map(|dt| Value::from_object(PyDateTime { dt, aware: false }))
                .map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("strptime('{s}', '{fmt}'): {e}")))
        }),
    );
    datetime_cls.insert(
        "fromisoformat",
        func(|args| {
            let (s,): (String,) = from_args(args)?;
            parse_datetime(&s)
                .map(|dt| Value::from_object(PyDateTime { dt, aware: false }))
                .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, format!("invalid isoformat string: '{s}'")))
        }),
    );
    let mut date_cls = BTreeMap::new();
    date_cls.insert("today", func(|_| Ok(Value::from_object(PyDate(chrono::Local::now().date_naive())))));
    date_cls.insert(
        "fromisoformat",
        func(|args| {
            let (s,): (String,) = from_args(args)?;
            NaiveDate::parse_from_str(&s, "%Y-%m-%d")
                .map(|d| Value::from_object(PyDate(d)))
                .map_err(|_| Error::new(ErrorKind::InvalidOperation, format!("invalid isoformat string: '{s}'")))
        }),
    );
    let mut datetime_mod = BTreeMap::new();
    datetime_mod.insert("datetime", Value::from(datetime_cls));
    datetime_mod.insert("date", Value::from(date_cls));

    let mut re_mod = BTreeMap::new();
    re_mod.insert("match", func(|a| re_call("match", a)));
    re_mod.insert("search", func(|a| re_call("search", a)));
    re_mod.insert("fullmatch", func(|a| re_call("fullmatch", a)));
    re_mod.insert("findall", func(|a| re_call("findall", a)));
    re_mod.insert("sub", func(|a| re_call("sub", a)));
    re_mod.insert("split", func(|a| re_call("split", a)));
    re_mod.insert(
        "compile",
        func(|args| {
            let (p, _flags): (String, Option<Value>) = from_args(args)?;
            let re = compile(&p)?;
            Ok(Value::from_object(PyRegex(re)))
        }),
    );
    re_mod.insert("IGNORECASE", Value::from(2));
    re_mod.insert("I", Value::from(2));

    let mut m = BTreeMap::new();
    m.insert("datetime", Value::from(datetime_mod));
    m.insert("re", Value::from(re_mod));
    Value::from(m)
}

fn compile(p: &str) -> Result<regex::Regex, Error> {
    regex::Regex::new(p).map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("invalid regular expression '{p}': {e}")))
}

fn re_call(op: &str, args: &[Value]) -> Result<Value, Error> {
    let (pattern, rest): (String, &[Value]) = from_args(args)?;
    let re = compile(&pattern)?;
    Arc::new(PyRegex(re)).apply(op, rest)
}

#[derive(Debug)]
pub struct PyRegex(regex::Regex);

impl PyRegex {
    fn apply(self: &Arc<Self>, op: &str, args: &[Value]) -> Result<Value, Error> {
        let re = &self.0;
        match op {
            "match" | "search" | "fullmatch" => {
                let (s, _f): (String, Option<Value>) = from_args(args)?;
                let caps = re.captures(&s);
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
                        if c.len() == 2 {
                            Value::from(c.get(1).map(|m| m.as_str()).unwrap_or(""))
                        } else if c.len() > 2 {
                            Value::from((1..c.len()).map(|i| Value::from(c.get(i).map(|m| m.as_str()).unwrap_or(""))).collect::<Vec<_>>())
                        } else {
                            Value::from(c.get(0).unwrap().as_str())
                        }
                    })
                    .collect();
                Ok(Value::from(out))
            }
            "sub" => {
                let (repl, s): (String, String) = from_args(args)?;
                // Python's \1 becomes ${1}.
                let repl = regex::Regex::new(r"\\(\d+)").unwrap().replace_all(&repl, "$${$1}").into_owned();
                Ok(Value::from(re.replace_all(&s, repl.as_str()).into_owned()))
            }
            "split" => {
                let (s,): (String,) = from_args(args)?;
                Ok(Value::from(re.split(&s).map(Value::from).collect::<Vec<_>>()))
            }
            _ => Err(Error::new(ErrorKind::UnknownMethod, format!("regex has no method '{op}'"))),
        }
    }
}

impl Object for PyRegex {
    fn call_method(self: &Arc<Self>, _state: &State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        self.apply(method, args)
    }
}

#[derive(Debug)]
pub struct PyMatch(Vec<Value>);

impl Object for PyMatch {
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
