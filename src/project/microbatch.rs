//! A microbatch model's config and its batches, as dbt-core 1.11 reads and
//! plans them (`ManifestLoader.check_valid_microbatch_config`,
//! `MicrobatchBuilder`): `event_time`, `batch_size` (hour, day, month,
//! year), `begin`, `lookback` (default 1) and `concurrent_batches`, checked
//! when the project loads; batches from `begin` on a first run or a full
//! refresh, from now minus `lookback` batches afterwards, or exactly the
//! `--event-time-start`/`--event-time-end` window. Every boundary is UTC,
//! whatever the machine's time zone: times are plain UTC fields, never
//! local clock readings. Pure: no I/O, no clock (the caller passes "now").

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};
use serde_json::{Map, Value};

/// `batch_size`: how much event time one batch covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchSize {
    Hour,
    Day,
    Month,
    Year,
}

impl BatchSize {
    pub const ALL: [&'static str; 4] = ["hour", "day", "month", "year"];

    pub fn parse(s: &str) -> Option<BatchSize> {
        Some(match s {
            "hour" => BatchSize::Hour,
            "day" => BatchSize::Day,
            "month" => BatchSize::Month,
            "year" => BatchSize::Year,
            _ => return None,
        })
    }
}

/// A microbatch model's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MicrobatchConfig {
    /// The model's event-time column: each batch replaces the rows whose
    /// value falls in its window.
    pub event_time: String,
    pub batch_size: BatchSize,
    /// The earliest event time a first run (or a full refresh) builds from.
    pub begin: DateTime<Utc>,
    /// How many batches before the current one a later run rebuilds.
    pub lookback: u32,
    pub concurrent_batches: Option<bool>,
}

/// One batch: events in `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Batch {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// Whether a node's config asks for the microbatch strategy.
pub fn is_microbatch(config: &Map<String, Value>) -> bool {
    config.get("materialized").and_then(Value::as_str) == Some("incremental")
        && config.get("incremental_strategy").and_then(Value::as_str).is_some_and(|s| s.eq_ignore_ascii_case("microbatch"))
}

impl MicrobatchConfig {
    /// Reads and checks the config of a model known to be microbatch; the
    /// error names the config key and says what is wrong, in dbt's words.
    pub fn from_config(cfg: &Map<String, Value>) -> Result<MicrobatchConfig, (&'static str, String)> {
        let event_time = match cfg.get("event_time") {
            None | Some(Value::Null) => {
                return Err((
                    "event_time",
                    "a microbatch model must provide an 'event_time' (string) config that indicates the name of the event time column\n  hint: add event_time='<column>' to the model's config".into(),
                ));
            }
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
            Some(other) => return Err(("event_time", format!("a microbatch model must provide an 'event_time' config of type string, but got: {other}"))),
        };
        let begin = match cfg.get("begin") {
            None | Some(Value::Null) => {
                return Err((
                    "begin",
                    "a microbatch model must provide a 'begin' (datetime) config that indicates the earliest timestamp the microbatch model should be built from\n  hint: add begin='2024-01-01' to the model's config".into(),
                ));
            }
            Some(Value::String(s)) => parse_datetime(s).ok_or_else(|| {
                ("begin", format!("a microbatch model must provide a 'begin' config of valid datetime (ISO format), but got: {s}\n  hint: write begin='2024-01-01' or '2024-01-01T00:00:00'"))
            })?,
            Some(other) => return Err(("begin", format!("a microbatch model must provide a 'begin' config of type datetime, but got: {other}"))),
        };
        let batch_size = match cfg.get("batch_size") {
            Some(Value::String(s)) if BatchSize::parse(s).is_some() => BatchSize::parse(s).unwrap_or(BatchSize::Day),
            other => {
                let got = match other {
                    None | Some(Value::Null) => "None".to_string(),
                    Some(Value::String(s)) => s.clone(),
                    Some(v) => v.to_string(),
                };
                let hint = match other.and_then(Value::as_str).and_then(|s| crate::util::suggest(&s.to_ascii_lowercase(), BatchSize::ALL.iter().copied())) {
                    Some(s) => format!("did you mean '{s}'? "),
                    None => String::new(),
                };
                return Err((
                    "batch_size",
                    format!(
                        "a microbatch model must provide a 'batch_size' config that is one of ['hour', 'day', 'month', 'year'], but got: {got}\n  hint: {hint}set batch_size='day' (or hour, month, year)"
                    ),
                ));
            }
        };
        let lookback = match cfg.get("lookback") {
            None | Some(Value::Null) => 1,
            Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64().unwrap_or(1) as u32,
            Some(other) => {
                return Err((
                    "lookback",
                    format!("a microbatch model must provide the optional 'lookback' config as a non-negative integer, but got: {other}"),
                ));
            }
        };
        let concurrent_batches = match cfg.get("concurrent_batches") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(other) => {
                return Err((
                    "concurrent_batches",
                    format!("a microbatch model's optional 'concurrent_batches' config must be true or false if specified, but got: {other}"),
                ));
            }
        };
        if cfg.get("unique_key").is_some_and(|v| !v.is_null() && v != &Value::Array(vec![])) {
            return Err((
                "unique_key",
                "the microbatch strategy does not support 'unique_key': each batch replaces the rows of its event-time window (delete+insert on event_time), it does not upsert by key\n  hint: remove unique_key, or use incremental_strategy='merge'".into(),
            ));
        }
        Ok(MicrobatchConfig { event_time, batch_size, begin, lookback, concurrent_batches })
    }
}

/// An ISO date or date-time (`2024-01-01`, `2024-01-01T06:00:00`,
/// `2024-01-01 06:00`, with an optional fraction and offset) read as its
/// UTC fields: as dbt (`datetime.fromisoformat`, then `tzinfo=UTC`), an
/// offset is dropped, not applied.
pub fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some(Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0)?));
    }
    // Drop a trailing `Z` or `+HH:MM` offset.
    let body = s.strip_suffix('Z').unwrap_or(s);
    let body = match body.len().checked_sub(6).map(|i| body.split_at(i)) {
        Some((b, off)) if (off.starts_with('+') || off.starts_with('-')) && off.as_bytes()[3] == b':' && b.len() > 10 => b,
        _ => body,
    };
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H", "%Y-%m-%d %H"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(body, fmt) {
            return Some(Utc.from_utc_datetime(&t));
        }
    }
    None
}

/// `t` truncated to the start of its hour, day, month or year.
pub fn truncate(t: DateTime<Utc>, size: BatchSize) -> DateTime<Utc> {
    let d = t.date_naive();
    let (y, m, day, h) = match size {
        BatchSize::Hour => (d.year(), d.month(), d.day(), t.hour()),
        BatchSize::Day => (d.year(), d.month(), d.day(), 0),
        BatchSize::Month => (d.year(), d.month(), 1, 0),
        BatchSize::Year => (d.year(), 1, 1, 0),
    };
    Utc.with_ymd_and_hms(y, m, day, h, 0, 0).single().unwrap_or(t)
}

/// `t` truncated, then moved by `n` batches (dbt's `offset_timestamp`).
pub fn offset(t: DateTime<Utc>, size: BatchSize, n: i64) -> DateTime<Utc> {
    let t = truncate(t, size);
    match size {
        BatchSize::Hour => t + Duration::hours(n),
        BatchSize::Day => t + Duration::days(n),
        BatchSize::Month => {
            let months = t.year() as i64 * 12 + t.month0() as i64 + n;
            Utc.with_ymd_and_hms(months.div_euclid(12) as i32, months.rem_euclid(12) as u32 + 1, 1, 0, 0, 0).single().unwrap_or(t)
        }
        BatchSize::Year => Utc.with_ymd_and_hms(t.year() + n as i32, 1, 1, 0, 0, 0).single().unwrap_or(t),
    }
}

/// `t` moved up to the next batch boundary (itself when on one).
pub fn ceiling(t: DateTime<Utc>, size: BatchSize) -> DateTime<Utc> {
    let tr = truncate(t, size);
    if tr == t { t } else { offset(tr, size, 1) }
}

/// What a run asks for: the `--event-time-start`/`--event-time-end`
/// window (both or neither) and the invocation's time.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub now: DateTime<Utc>,
}

/// The batches to build, in order (dbt's `build_end_time`,
/// `build_start_time` and `build_batches`). `incremental` is whether the
/// table exists and this is not a full refresh.
pub fn plan(cfg: &MicrobatchConfig, incremental: bool, w: &Window) -> Vec<Batch> {
    let size = cfg.batch_size;
    // dbt compares "now" (naive) with its truncation (UTC-aware), which is
    // never equal: the end is always the start of the next batch after now.
    let end = match w.end {
        Some(e) => ceiling(e, size),
        None => offset(w.now, size, 1),
    };
    let start = match w.start {
        Some(s) => truncate(s, size),
        None if !incremental => truncate(cfg.begin, size),
        None => {
            // The end is on a boundary, so one more batch back (dbt's
            // "checkpoint straddles the batch line").
            offset(end, size, -(cfg.lookback as i64 + 1))
        }
    };
    let mut batches = vec![];
    let mut s = start;
    let mut e = offset(s, size, 1);
    batches.push(Batch { start: s, end: e });
    while e < end {
        s = e;
        e = offset(s, size, 1);
        batches.push(Batch { start: s, end: e });
    }
    // the last batch stops at the exact end
    if let Some(last) = batches.last_mut() {
        last.end = end;
    }
    batches
}

impl Batch {
    /// The batch's start as dbt prints it: `2024-09-17T16` (hour),
    /// `2024-09-17` (day), `2024-09` (month), `2024` (year).
    pub fn label(&self, size: BatchSize) -> String {
        let f = match size {
            BatchSize::Hour => "%Y-%m-%dT%H",
            BatchSize::Day => "%Y-%m-%d",
            BatchSize::Month => "%Y-%m",
            BatchSize::Year => "%Y",
        };
        self.start.format(f).to_string()
    }

    /// `model.batch.id`: the label without dashes (`20240917`).
    pub fn id(&self, size: BatchSize) -> String {
        self.label(size).replace('-', "")
    }

    /// The predicate dbt renders for an input with `event_time` `field`:
    /// `field >= '2024-01-04 00:00:00+00:00' and field < '...'`.
    pub fn filter(&self, field: &str) -> String {
        format!("{field} >= '{}' and {field} < '{}'", py_str(self.start), py_str(self.end))
    }

    /// The batch as run_results.json's `batch_results` writes it.
    pub fn to_json(self) -> Value {
        Value::Array(vec![Value::String(iso(self.start)), Value::String(iso(self.end))])
    }

    /// A batch read back from `batch_results`.
    pub fn from_json(v: &Value) -> Option<Batch> {
        let a = v.as_array()?;
        let t = |i: usize| a.get(i)?.as_str().and_then(|s| DateTime::parse_from_rfc3339(s).ok()).map(|t| t.with_timezone(&Utc));
        Some(Batch { start: t(0)?, end: t(1)? })
    }
}

/// dbt's `--sample` window: `"N grain"` (hours, days, months or years back
/// from `now`, not truncated) or `"{start: ..., end: ...}"`. Refs and sources
/// with an `event_time` read only the rows inside it.
pub fn sample_window(spec: &str, now: DateTime<Utc>) -> Result<Batch, String> {
    let spec = spec.trim();
    if spec.starts_with('{') {
        let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(spec).map_err(|e| format!("Cannot load SAMPLE_WINDOW from '{spec}': {e}"))?;
        let at = |k: &str| -> Result<DateTime<Utc>, String> {
            let raw = match v.get(k) {
                Some(serde_yaml_ng::Value::String(s)) => s.clone(),
                Some(other) => serde_yaml_ng::to_string(other).unwrap_or_default().trim().to_string(),
                None => return Err(format!("Cannot load SAMPLE_WINDOW from '{spec}': it has no '{k}'")),
            };
            parse_datetime(&raw).ok_or_else(|| format!("Cannot load SAMPLE_WINDOW from '{spec}': '{raw}' is not a date or date-time"))
        };
        return Ok(Batch { start: at("start")?, end: at("end")? });
    }
    let parts: Vec<&str> = spec.split(' ').collect();
    let [n, grain] = parts.as_slice() else {
        return Err(format!("Cannot load SAMPLE_WINDOW from '{spec}'. Must be of form 'DAYS_INT GRAIN_SIZE'."));
    };
    let n: i64 = n.parse().map_err(|_| format!("Unable to convert '{n}' to an integer."))?;
    let bad = || format!("Invalid grain size '{grain}'. Must be one of ['hour', 'day', 'month', 'year', 'hours', 'days', 'months', 'years'].");
    let start = match grain.to_lowercase().trim_end_matches('s') {
        "hour" => now.checked_sub_signed(chrono::Duration::hours(n)),
        "day" => now.checked_sub_signed(chrono::Duration::days(n)),
        "month" => u32::try_from(n).ok().and_then(|m| now.checked_sub_months(chrono::Months::new(m))),
        "year" => u32::try_from(n).ok().and_then(|y| now.checked_sub_months(chrono::Months::new(y.saturating_mul(12)))),
        _ => return Err(bad()),
    };
    let start = start.ok_or_else(|| format!("Cannot load SAMPLE_WINDOW from '{spec}': out of range"))?;
    Ok(Batch { start, end: now })
}

/// Python's `str()` of a UTC datetime: `2024-01-04 00:00:00+00:00`.
pub fn py_str(t: DateTime<Utc>) -> String {
    let frac = if t.nanosecond() == 0 { String::new() } else { format!(".{:06}", t.nanosecond() / 1000) };
    format!("{}{frac}+00:00", t.format("%Y-%m-%d %H:%M:%S"))
}

/// ISO 8601 as dbt's artifacts write a UTC datetime: `2024-01-04T00:00:00+00:00`.
pub fn iso(t: DateTime<Utc>) -> String {
    py_str(t).replacen(' ', "T", 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        parse_datetime(s).unwrap()
    }

    fn cfg(size: &str, begin: &str, lookback: u32) -> MicrobatchConfig {
        MicrobatchConfig { event_time: "ts".into(), batch_size: BatchSize::parse(size).unwrap(), begin: t(begin), lookback, concurrent_batches: None }
    }

    fn labels(b: &[Batch], size: BatchSize) -> Vec<String> {
        b.iter().map(|b| b.label(size)).collect()
    }

    #[test]
    fn truncate_offset_ceiling_as_dbt_documents() {
        let x = t("2024-09-17 16:06:00");
        assert_eq!(offset(x, BatchSize::Hour, -1), t("2024-09-17 15:00"));
        assert_eq!(offset(x, BatchSize::Hour, 1), t("2024-09-17 17:00"));
        assert_eq!(offset(x, BatchSize::Day, -1), t("2024-09-16"));
        assert_eq!(offset(x, BatchSize::Day, 1), t("2024-09-18"));
        assert_eq!(offset(x, BatchSize::Month, -1), t("2024-08-01"));
        assert_eq!(offset(x, BatchSize::Month, 1), t("2024-10-01"));
        assert_eq!(offset(x, BatchSize::Year, -1), t("2023-01-01"));
        assert_eq!(offset(x, BatchSize::Year, 1), t("2025-01-01"));
        assert_eq!(offset(t("2024-01-31"), BatchSize::Month, -13), t("2022-12-01"));
        assert_eq!(offset(t("2024-12-31 23:59:59"), BatchSize::Month, 1), t("2025-01-01"));
        assert_eq!(ceiling(x, BatchSize::Hour), t("2024-09-17 17:00"));
        assert_eq!(ceiling(t("2024-09-17 16:00"), BatchSize::Hour), t("2024-09-17 16:00"));
        assert_eq!(ceiling(x, BatchSize::Day), t("2024-09-18"));
        assert_eq!(ceiling(t("2024-09-01"), BatchSize::Month), t("2024-09-01"));
        assert_eq!(ceiling(x, BatchSize::Year), t("2025-01-01"));
        assert_eq!(Batch { start: x, end: x }.label(BatchSize::Hour), "2024-09-17T16");
        assert_eq!(Batch { start: x, end: x }.id(BatchSize::Day), "20240917");
        assert_eq!(Batch { start: x, end: x }.label(BatchSize::Month), "2024-09");
        assert_eq!(Batch { start: x, end: x }.label(BatchSize::Year), "2024");
    }

    #[test]
    fn first_run_from_begin_later_runs_from_lookback() {
        let now = t("2024-01-05 12:00");
        let w = Window { start: None, end: None, now };
        let c = cfg("day", "2024-01-01", 1);
        let first = plan(&c, false, &w);
        assert_eq!(labels(&first, BatchSize::Day), ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"]);
        assert_eq!(first.last().unwrap().end, t("2024-01-06"));
        assert_eq!(labels(&plan(&c, true, &w), BatchSize::Day), ["2024-01-04", "2024-01-05"]);
        assert_eq!(labels(&plan(&cfg("day", "2024-01-01", 0), true, &w), BatchSize::Day), ["2024-01-05"]);
        assert_eq!(labels(&plan(&cfg("day", "2024-01-01", 3), true, &w), BatchSize::Day), ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"]);
        // hours: a begin inside an hour starts at that hour
        let h = plan(&cfg("hour", "2024-01-05 09:30", 1), false, &w);
        assert_eq!(labels(&h, BatchSize::Hour), ["2024-01-05T09", "2024-01-05T10", "2024-01-05T11", "2024-01-05T12"]);
        assert_eq!(labels(&plan(&cfg("hour", "2024-01-01", 2), true, &w), BatchSize::Hour), ["2024-01-05T10", "2024-01-05T11", "2024-01-05T12"]);
        // months and years, across a year end
        let m = plan(&cfg("month", "2023-11-15", 1), false, &Window { now: t("2024-02-10"), ..w });
        assert_eq!(labels(&m, BatchSize::Month), ["2023-11", "2023-12", "2024-01", "2024-02"]);
        assert_eq!(labels(&plan(&cfg("month", "2020-01-01", 1), true, &Window { now: t("2024-01-10"), ..w }), BatchSize::Month), ["2023-12", "2024-01"]);
        assert_eq!(labels(&plan(&cfg("year", "2021-06-01", 1), false, &w), BatchSize::Year), ["2021", "2022", "2023", "2024"]);
    }

    #[test]
    fn explicit_window_truncates_start_and_ceils_end() {
        let w = Window { start: Some(t("2024-01-02 10:00")), end: Some(t("2024-01-04")), now: t("2030-01-01") };
        let b = plan(&cfg("day", "2020-01-01", 1), true, &w);
        assert_eq!(b, vec![Batch { start: t("2024-01-02"), end: t("2024-01-03") }, Batch { start: t("2024-01-03"), end: t("2024-01-04") }]);
        // an end inside a day includes that day
        let w = Window { end: Some(t("2024-01-04 00:00:01")), ..w };
        assert_eq!(plan(&cfg("day", "2020-01-01", 1), false, &w).len(), 3);
    }

    #[test]
    fn boundaries_are_utc_fields_whatever_the_offset() {
        // dbt drops an offset rather than converting it
        assert_eq!(parse_datetime("2024-01-02T23:30:00+05:00"), Some(t("2024-01-02 23:30")));
        assert_eq!(parse_datetime("2024-01-02T23:30:00Z"), Some(t("2024-01-02 23:30")));
        assert_eq!(parse_datetime("2024-01-02 23:30:00.250"), Some(t("2024-01-02 23:30") + Duration::milliseconds(250)));
        assert_eq!(parse_datetime("2024-13-02"), None);
        let b = Batch { start: t("2024-01-04"), end: t("2024-01-05") };
        assert_eq!(b.filter("ts"), "ts >= '2024-01-04 00:00:00+00:00' and ts < '2024-01-05 00:00:00+00:00'");
        assert_eq!(b.to_json(), serde_json::json!(["2024-01-04T00:00:00+00:00", "2024-01-05T00:00:00+00:00"]));
        assert_eq!(Batch::from_json(&b.to_json()), Some(b));
    }

    #[test]
    fn config_errors_name_the_key() {
        let c = |v: Value| MicrobatchConfig::from_config(v.as_object().unwrap());
        let ok = serde_json::json!({"event_time": "ts", "batch_size": "day", "begin": "2024-01-01"});
        assert_eq!(c(ok.clone()).unwrap().lookback, 1);
        let mut m = ok.clone();
        m.as_object_mut().unwrap().remove("event_time");
        assert_eq!(c(m).unwrap_err().0, "event_time");
        let mut m = ok.clone();
        m["batch_size"] = "week".into();
        let e = c(m).unwrap_err();
        assert_eq!(e.0, "batch_size");
        assert!(e.1.contains("but got: week"), "{}", e.1);
        let mut m = ok.clone();
        m["begin"] = "yesterday".into();
        assert_eq!(c(m).unwrap_err().0, "begin");
        let mut m = ok.clone();
        m["lookback"] = "2".into();
        assert_eq!(c(m).unwrap_err().0, "lookback");
        let mut m = ok;
        m["unique_key"] = "id".into();
        assert_eq!(c(m).unwrap_err().0, "unique_key");
    }
}
