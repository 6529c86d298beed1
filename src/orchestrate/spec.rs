//! Pipeline definitions: every `*.yml` under `pipelines/` holds a list of
//! `pipelines:` and, in at most one file, the `alerts:` channels. Loading
//! validates everything before anything runs (cron patterns, time zones,
//! task kinds, task and pipeline references, cycles), and every error names
//! the file and line.

use indexmap::IndexMap;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::OrchestrateError;
use super::retry::RetryPolicy;
use crate::fs::FileSystem;

/// Every pipeline of a project, in file order, and the alert channels.
#[derive(Debug, Default)]
pub struct Pipelines {
    pub pipelines: IndexMap<String, Pipeline>,
    pub alerts: Option<AlertsSpec>,
}

#[derive(Debug, Clone)]
pub struct Pipeline {
    pub name: String,
    pub description: Option<String>,
    pub schedule: Option<Schedule>,
    /// Pipelines that must succeed before this one fires (on their completion).
    pub after: Vec<String>,
    /// `false` (default): one run for a missed interval, not one per missed tick.
    pub catchup: bool,
    pub tasks: Vec<Task>,
    /// Alert on a task's final failure (default true) and on the first
    /// success after a failure (`alert_on_recovery`, default false).
    pub alert_on_failure: bool,
    pub alert_on_recovery: bool,
    /// How many independent tasks may run at once (Airflow's
    /// `max_active_tasks`); `None`: the target's `threads`.
    pub max_active_tasks: Option<usize>,
    pub file: PathBuf,
    pub line: usize,
}

/// A cron schedule in a time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub expr: String,
    pub cron: croner::Cron,
    pub tz: chrono_tz::Tz,
}

impl Schedule {
    /// The first fire time strictly after `t`.
    pub fn next_after(&self, t: chrono::DateTime<chrono::Utc>) -> Option<chrono::DateTime<chrono::Utc>> {
        let local = t.with_timezone(&self.tz);
        self.cron.find_next_occurrence(&local, false).ok().map(|d| d.with_timezone(&chrono::Utc))
    }

    /// The last fire time at or before `t`.
    pub fn last_at_or_before(&self, t: chrono::DateTime<chrono::Utc>) -> Option<chrono::DateTime<chrono::Utc>> {
        let local = t.with_timezone(&self.tz);
        self.cron.find_previous_occurrence(&local, true).ok().map(|d| d.with_timezone(&chrono::Utc))
    }
}

#[derive(Debug, Clone)]
pub struct Task {
    pub name: String,
    pub kind: TaskKind,
    pub depends_on: Vec<String>,
    pub retry: RetryPolicy,
    pub line: usize,
}

/// What a task does. dp commands take a dbt selection; `Ingest` and
/// `Check` are recognised so pipelines can name them, and run once those
/// commands exist in this build.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskKind {
    Seed(Selection),
    Run(Selection),
    Test(Selection),
    Build(Selection),
    Snapshot(Selection),
    Publish(Selection),
    Load(Selection),
    Maintain(Selection),
    Ingest(Selection),
    Check(Selection),
    /// A platform health snapshot into `marts.platform_health_metrics`.
    Health,
    Shell {
        command: String,
    },
}

/// The task kinds, as written in YAML.
pub const TASK_KINDS: &[&str] = &["seed", "run", "test", "build", "snapshot", "publish", "load", "maintain", "ingest", "check", "health", "shell"];

impl TaskKind {
    pub fn name(&self) -> &'static str {
        match self {
            TaskKind::Seed(_) => "seed",
            TaskKind::Run(_) => "run",
            TaskKind::Test(_) => "test",
            TaskKind::Build(_) => "build",
            TaskKind::Snapshot(_) => "snapshot",
            TaskKind::Publish(_) => "publish",
            TaskKind::Load(_) => "load",
            TaskKind::Maintain(_) => "maintain",
            TaskKind::Ingest(_) => "ingest",
            TaskKind::Check(_) => "check",
            TaskKind::Health => "health",
            TaskKind::Shell { .. } => "shell",
        }
    }
}

/// A dbt selection plus the few flags tasks take.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selection {
    #[serde(default, deserialize_with = "one_or_many")]
    pub select: Vec<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub exclude: Vec<String>,
    #[serde(default)]
    pub full_refresh: bool,
    /// `publish`: every selected model, not only `publish = ["postgres"]` ones.
    #[serde(default)]
    pub all: bool,
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => s.split_whitespace().map(String::from).collect(),
        OneOrMany::Many(v) => v,
    })
}

/// Alert channels (`alerts:`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsSpec {
    pub slack: Option<SlackSpec>,
    pub email: Option<EmailSpec>,
    /// Also alert when a task runs longer than this (e.g. `2h`).
    pub long_running: Option<String>,
    #[serde(skip)]
    pub file: PathBuf,
    #[serde(skip)]
    pub line: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackSpec {
    /// The incoming-webhook URL; `${VAR}` takes it from the environment.
    pub webhook_url: String,
    pub channel: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSpec {
    pub smtp_host: String,
    pub smtp_port: Option<u16>,
    /// `starttls` (default, port 587), `tls` (port 465) or `none` (port 25).
    #[serde(default = "default_tls")]
    pub tls: String,
    pub username: Option<String>,
    /// The variable holding the SMTP password (never the password itself).
    pub password_env: Option<String>,
    pub from: String,
    #[serde(deserialize_with = "one_or_many")]
    pub to: Vec<String>,
}

fn default_tls() -> String {
    "starttls".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    pipelines: Vec<RawPipeline>,
    alerts: Option<AlertsSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPipeline {
    name: String,
    description: Option<String>,
    schedule: Option<String>,
    timezone: Option<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    after: Vec<String>,
    #[serde(default)]
    catchup: bool,
    #[serde(flatten)]
    retry: RawRetry,
    alert_on_failure: Option<bool>,
    alert_on_recovery: Option<bool>,
    max_active_tasks: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    tasks: Vec<RawTask>,
}

#[derive(Deserialize, Default, Clone)]
struct RawRetry {
    retries: Option<u32>,
    retry_delay: Option<serde_yaml_ng::Value>,
    retry_exponential_backoff: Option<bool>,
    max_retry_delay: Option<serde_yaml_ng::Value>,
}

#[derive(Deserialize)]
struct RawTask {
    name: String,
    #[serde(default, deserialize_with = "one_or_many")]
    depends_on: Vec<String>,
    #[serde(flatten)]
    retry: RawRetry,
    #[serde(flatten)]
    kind: IndexMap<String, serde_yaml_ng::Value>,
}

/// Parses `30s`, `5m`, `1h`, `250ms`, `1d`, or a number of seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if let Ok(n) = s.parse::<f64>() {
        return (n >= 0.0).then(|| Duration::from_secs_f64(n));
    }
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "s" | "sec" | "secs" | "second" | "seconds" => n,
        "m" | "min" | "mins" | "minute" | "minutes" => n * 60.0,
        "h" | "hour" | "hours" => n * 3600.0,
        "d" | "day" | "days" => n * 86400.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(secs))
}

/// Parses a cron pattern: 5 fields (minute hour day month weekday), an
/// optional leading seconds field, or `@hourly`, `@daily`, `@weekly`,
/// `@monthly`, `@yearly`.
pub fn parse_cron(expr: &str) -> Result<croner::Cron, String> {
    let fields = expr.split_whitespace().count();
    if !expr.trim_start().starts_with('@') && !(5..=6).contains(&fields) {
        return Err(format!("cron pattern '{expr}' has {fields} fields; expected 5 (minute hour day-of-month month day-of-week)"));
    }
    croner::parser::CronParser::new().parse(expr).map_err(|e| format!("invalid cron pattern '{expr}': {e}"))
}

struct Ctx<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Ctx<'_> {
    fn err(&self, line: usize, message: impl Into<String>, hint: impl Into<String>) -> OrchestrateError {
        OrchestrateError::Definition { file: self.file.to_path_buf(), line, message: message.into(), hint: hint.into() }
    }

    /// The line of `key:` at or after `from` (before the next `- name:` entry at a shallower depth).
    fn key_line(&self, from: usize, key: &str) -> usize {
        let prefix = format!("{key}:");
        self.text
            .lines()
            .enumerate()
            .skip(from.saturating_sub(1))
            .find(|(_, l)| l.trim_start().trim_start_matches("- ").starts_with(&prefix))
            .map(|(i, _)| i + 1)
            .unwrap_or(from)
    }
}

fn duration_value(ctx: &Ctx, line: usize, key: &str, v: &Option<serde_yaml_ng::Value>) -> Result<Option<Duration>, OrchestrateError> {
    let Some(v) = v else { return Ok(None) };
    let text = match v {
        serde_yaml_ng::Value::Number(n) => n.to_string(),
        serde_yaml_ng::Value::String(s) => s.clone(),
        other => format!("{other:?}"),
    };
    parse_duration(&text)
        .map(Some)
        .ok_or_else(|| ctx.err(ctx.key_line(line, key), format!("{key}: '{text}' is not a duration"), "write a number of seconds or e.g. 30s, 5m, 1h"))
}

fn retry_policy(ctx: &Ctx, line: usize, raw: &RawRetry, base: &RetryPolicy) -> Result<RetryPolicy, OrchestrateError> {
    let mut p = base.clone();
    if let Some(r) = raw.retries {
        p.retries = r;
    }
    if let Some(d) = duration_value(ctx, line, "retry_delay", &raw.retry_delay)? {
        p.retry_delay = d;
    }
    if let Some(b) = raw.retry_exponential_backoff {
        p.exponential_backoff = b;
    }
    if let Some(d) = duration_value(ctx, line, "max_retry_delay", &raw.max_retry_delay)? {
        p.max_retry_delay = Some(d);
    }
    Ok(p)
}

fn task_kind(ctx: &Ctx, line: usize, pipeline: &str, name: &str, kind: &IndexMap<String, serde_yaml_ng::Value>) -> Result<TaskKind, OrchestrateError> {
    let kinds = TASK_KINDS.join(", ");
    let mut keys = kind.keys();
    let (Some(key), None) = (keys.next(), keys.next()) else {
        let what = if kind.is_empty() {
            "names no task kind".to_string()
        } else {
            format!("names several task kinds ({})", kind.keys().cloned().collect::<Vec<_>>().join(", "))
        };
        return Err(ctx.err(line, format!("task '{name}' of pipeline '{pipeline}' {what}"), format!("give each task exactly one of: {kinds}")));
    };
    let value = &kind[key];
    // Only errors need the line (finding it scans the file: keep loading linear).
    let kline = || ctx.key_line(line, key);
    if key == "shell" {
        return match value {
            serde_yaml_ng::Value::String(s) if !s.trim().is_empty() => Ok(TaskKind::Shell { command: s.clone() }),
            _ => Err(ctx.err(kline(), format!("task '{name}': shell needs a command string"), "write e.g. `shell: ./scripts/export.sh`")),
        };
    }
    if key == "health" {
        return match value {
            serde_yaml_ng::Value::Null => Ok(TaskKind::Health),
            _ => Err(ctx.err(kline(), format!("task '{name}': health takes no options"), "write `health:` with nothing after it")),
        };
    }
    if !TASK_KINDS.contains(&key.as_str()) {
        let hint = match crate::util::suggest(key, TASK_KINDS.iter().copied()) {
            Some(s) => format!("did you mean '{s}'? Task kinds: {kinds}"),
            None => format!("task kinds: {kinds}"),
        };
        return Err(ctx.err(kline(), format!("task '{name}' of pipeline '{pipeline}' has unknown kind or key '{key}'"), hint));
    }
    let sel: Selection = match value {
        serde_yaml_ng::Value::Null => Selection::default(),
        serde_yaml_ng::Value::String(s) => Selection { select: s.split_whitespace().map(String::from).collect(), ..Default::default() },
        serde_yaml_ng::Value::Sequence(_) => Selection {
            select: serde_yaml_ng::from_value(value.clone())
                .map_err(|e| ctx.err(kline(), format!("task '{name}': {key}: {e}"), "write a selector string or a list of them"))?,
            ..Default::default()
        },
        _ => serde_yaml_ng::from_value(value.clone())
            .map_err(|e| ctx.err(kline(), format!("task '{name}': {key}: {e}"), "write a selector, or a map with select, exclude, full_refresh, all"))?,
    };
    Ok(match key.as_str() {
        "seed" => TaskKind::Seed(sel),
        "run" => TaskKind::Run(sel),
        "test" => TaskKind::Test(sel),
        "build" => TaskKind::Build(sel),
        "snapshot" => TaskKind::Snapshot(sel),
        "publish" => TaskKind::Publish(sel),
        "load" => TaskKind::Load(sel),
        "maintain" => TaskKind::Maintain(sel),
        "ingest" => TaskKind::Ingest(sel),
        _ => TaskKind::Check(sel),
    })
}

/// Reads and validates every `pipelines/**/*.yml` of the project.
pub fn load(fs: &dyn FileSystem) -> Result<Pipelines, OrchestrateError> {
    let files = fs.list_files("pipelines", &[".yml", ".yaml"]).map_err(|e| OrchestrateError::Io(format!("listing pipelines/: {e}")))?;
    let mut out = Pipelines::default();
    let texts: Vec<(PathBuf, String)> = files
        .into_iter()
        .map(|f| {
            let text = fs.read_to_string(&f).map_err(|e| OrchestrateError::Io(format!("reading {f}: {e}")))?;
            Ok((PathBuf::from(f), text))
        })
        .collect::<Result<_, OrchestrateError>>()?;
    for (file, text) in &texts {
        parse_file(file, text, &mut out)?;
    }
    validate_after(&out, &texts)?;
    Ok(out)
}

/// Parses one file's pipelines into `out` (duplicates are errors).
pub fn parse_file(file: &Path, text: &str, out: &mut Pipelines) -> Result<(), OrchestrateError> {
    let ctx = Ctx { file, text };
    if text.trim().is_empty() {
        return Ok(());
    }
    let raw: RawFile = crate::util::yaml::from_str(text).map_err(|e| {
        let line = e.find("line ").and_then(|i| e[i + 5..].split(|c: char| !c.is_ascii_digit()).next()).and_then(|n| n.parse().ok()).unwrap_or(1);
        ctx.err(line, e, "a pipelines file holds `pipelines:` (a list) and optionally `alerts:`; see README, \"Pipelines\"")
    })?;
    let names = crate::util::yaml::NameIndex::new(text);
    if let Some(mut a) = raw.alerts {
        let line = text.lines().position(|l| l.starts_with("alerts:")).map(|i| i + 1).unwrap_or(1);
        if let Some(prev) = &out.alerts {
            return Err(ctx.err(line, "alerts: defined twice", format!("keep one `alerts:` block (the other is in {}:{})", prev.file.display(), prev.line)));
        }
        a.file = file.to_path_buf();
        a.line = line;
        validate_alerts(&ctx, &a)?;
        out.alerts = Some(a);
    }
    let mut cursor = 0;
    for p in raw.pipelines {
        let line = names.after(&p.name, cursor).or_else(|| names.first(&p.name)).unwrap_or(1);
        cursor = line;
        if let Some(prev) = out.pipelines.get(&p.name) {
            return Err(ctx.err(
                line,
                format!("pipeline '{}' is defined twice", p.name),
                format!("the other definition is at {}:{}; rename one", prev.file.display(), prev.line),
            ));
        }
        let tz = match &p.timezone {
            None => chrono_tz::UTC,
            Some(z) => z.parse::<chrono_tz::Tz>().map_err(|_| {
                ctx.err(
                    ctx.key_line(line, "timezone"),
                    format!("pipeline '{}': unknown time zone '{z}'", p.name),
                    "use an IANA name such as UTC or Europe/Paris",
                )
            })?,
        };
        let schedule = match &p.schedule {
            None => None,
            Some(expr) => Some(Schedule {
                expr: expr.clone(),
                cron: parse_cron(expr).map_err(|m| {
                    ctx.err(ctx.key_line(line, "schedule"), format!("pipeline '{}': {m}", p.name), "write 5 fields (e.g. \"*/15 * * * *\") or @hourly, @daily")
                })?,
                tz,
            }),
        };
        if schedule.is_none() && p.after.is_empty() {
            // Manual-only pipelines are allowed (dp pipeline run NAME).
        }
        let max_active_tasks = match &p.max_active_tasks {
            None => None,
            Some(serde_yaml_ng::Value::Number(n)) if n.as_u64().is_some_and(|n| n >= 1) => Some(n.as_u64().unwrap_or(1) as usize),
            Some(v) => {
                let text = match v {
                    serde_yaml_ng::Value::Number(n) => n.to_string(),
                    serde_yaml_ng::Value::String(s) => format!("'{s}'"),
                    other => format!("{other:?}"),
                };
                return Err(ctx.err(
                    ctx.key_line(line, "max_active_tasks"),
                    format!("pipeline '{}': max_active_tasks {text} is not a whole number of at least 1", p.name),
                    "write e.g. `max_active_tasks: 4`, or leave it out to run up to the target's `threads` tasks at once",
                ));
            }
        };
        let base = retry_policy(&ctx, line, &p.retry, &RetryPolicy::default())?;
        let mut tasks: Vec<Task> = vec![];
        let mut tcursor = line;
        for t in p.tasks {
            let tline = names.after(&t.name, tcursor).unwrap_or(tcursor);
            tcursor = tline;
            if tasks.iter().any(|x| x.name == t.name) {
                return Err(ctx.err(tline, format!("pipeline '{}' has two tasks named '{}'", p.name, t.name), "task names must be unique within a pipeline"));
            }
            let kind = task_kind(&ctx, tline, &p.name, &t.name, &t.kind)?;
            let retry = retry_policy(&ctx, tline, &t.retry, &base)?;
            tasks.push(Task { name: t.name, kind, depends_on: t.depends_on, retry, line: tline });
        }
        if tasks.is_empty() {
            return Err(ctx.err(line, format!("pipeline '{}' has no tasks", p.name), "add `tasks:` with at least one task"));
        }
        for t in &tasks {
            for d in &t.depends_on {
                if !tasks.iter().any(|x| &x.name == d) {
                    let hint = match crate::util::suggest(d, tasks.iter().map(|x| x.name.as_str())) {
                        Some(s) => format!("did you mean '{s}'?"),
                        None => format!("tasks of '{}': {}", p.name, tasks.iter().map(|x| x.name.as_str()).collect::<Vec<_>>().join(", ")),
                    };
                    return Err(ctx.err(ctx.key_line(t.line, "depends_on"), format!("task '{}' depends on unknown task '{d}'", t.name), hint));
                }
            }
        }
        if let Some(cycle) = find_cycle(tasks.iter().map(|t| (t.name.as_str(), t.depends_on.iter().map(String::as_str).collect()))) {
            let first = tasks.iter().find(|t| t.name == cycle[0]).map(|t| t.line).unwrap_or(line);
            return Err(ctx.err(first, format!("tasks of pipeline '{}' form a cycle: {}", p.name, cycle.join(" -> ")), "remove one of these depends_on"));
        }
        let pipeline = Pipeline {
            name: p.name.clone(),
            description: p.description,
            schedule,
            after: p.after,
            catchup: p.catchup,
            tasks,
            alert_on_failure: p.alert_on_failure.unwrap_or(true),
            alert_on_recovery: p.alert_on_recovery.unwrap_or(false),
            max_active_tasks,
            file: file.to_path_buf(),
            line,
        };
        out.pipelines.insert(p.name, pipeline);
    }
    Ok(())
}

fn validate_alerts(ctx: &Ctx, a: &AlertsSpec) -> Result<(), OrchestrateError> {
    if let Some(s) = &a.slack
        && !s.webhook_url.contains("${")
    {
        check_webhook(&s.webhook_url)
            .map_err(|m| ctx.err(ctx.key_line(a.line, "webhook_url"), m, "write the incoming-webhook URL, or ${VAR} to read it from the environment"))?;
    }
    if let Some(e) = &a.email
        && !matches!(e.tls.as_str(), "starttls" | "tls" | "none")
    {
        return Err(ctx.err(
            ctx.key_line(a.line, "tls"),
            format!("email tls '{}' is not one of starttls, tls, none", e.tls),
            "starttls (port 587), tls (port 465), none (port 25, loopback only)",
        ));
    }
    if let Some(d) = &a.long_running
        && parse_duration(d).is_none()
    {
        return Err(ctx.err(ctx.key_line(a.line, "long_running"), format!("long_running: '{d}' is not a duration"), "e.g. 2h"));
    }
    Ok(())
}

/// A webhook URL must be absolute http(s).
pub fn check_webhook(u: &str) -> Result<url::Url, String> {
    match url::Url::parse(u) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => Ok(url),
        Ok(_) => Err(format!("webhook_url '{}' is not an http(s) URL", redact(u))),
        Err(e) => Err(format!("webhook_url '{}' is malformed: {e}", redact(u))),
    }
}

/// A URL with its path hidden (Slack webhook paths are secrets).
pub fn redact(u: &str) -> String {
    match url::Url::parse(u) {
        Ok(url) => format!("{}://{}/…", url.scheme(), url.host_str().unwrap_or("")),
        Err(_) => "<url>".into(),
    }
}

fn validate_after(out: &Pipelines, texts: &[(PathBuf, String)]) -> Result<(), OrchestrateError> {
    let text_of = |f: &Path| texts.iter().find(|(p, _)| p == f).map(|(_, t)| t.as_str()).unwrap_or("");
    for p in out.pipelines.values() {
        for a in &p.after {
            if !out.pipelines.contains_key(a) {
                let ctx = Ctx { file: &p.file, text: text_of(&p.file) };
                let hint = match crate::util::suggest(a, out.pipelines.keys().map(String::as_str)) {
                    Some(s) => format!("did you mean '{s}'?"),
                    None => format!("pipelines: {}", out.pipelines.keys().cloned().collect::<Vec<_>>().join(", ")),
                };
                return Err(ctx.err(ctx.key_line(p.line, "after"), format!("pipeline '{}' runs after unknown pipeline '{a}'", p.name), hint));
            }
        }
    }
    if let Some(cycle) = find_cycle(out.pipelines.values().map(|p| (p.name.as_str(), p.after.iter().map(String::as_str).collect()))) {
        let p = &out.pipelines[cycle[0].as_str()];
        let ctx = Ctx { file: &p.file, text: text_of(&p.file) };
        return Err(ctx.err(
            ctx.key_line(p.line, "after"),
            format!("pipelines form a cycle through `after`: {}", cycle.join(" -> ")),
            "remove one of these `after` entries",
        ));
    }
    Ok(())
}

/// A cycle among `(node, its dependencies)`, as a path that ends where it starts.
fn find_cycle<'a>(edges: impl Iterator<Item = (&'a str, Vec<&'a str>)>) -> Option<Vec<String>> {
    let map: IndexMap<&str, Vec<&str>> = edges.collect();
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let mut mark: IndexMap<&str, Mark> = map.keys().map(|k| (*k, Mark::New)).collect();
    fn visit<'a>(n: &'a str, map: &IndexMap<&'a str, Vec<&'a str>>, mark: &mut IndexMap<&'a str, Mark>, stack: &mut Vec<&'a str>) -> Option<Vec<String>> {
        match mark.get(n).copied() {
            Some(Mark::Done) | None => return None,
            Some(Mark::Active) => {
                let start = stack.iter().position(|x| *x == n).unwrap_or(0);
                let mut c: Vec<String> = stack[start..].iter().map(|s| s.to_string()).collect();
                c.push(n.to_string());
                return Some(c);
            }
            Some(Mark::New) => {}
        }
        mark.insert(n, Mark::Active);
        stack.push(n);
        for d in map.get(n).into_iter().flatten() {
            if let Some(c) = visit(d, map, mark, stack) {
                return Some(c);
            }
        }
        stack.pop();
        mark.insert(n, Mark::Done);
        None
    }
    let keys: Vec<&str> = map.keys().copied().collect();
    for k in keys {
        let mut stack = vec![];
        if let Some(c) = visit(k, &map, &mut mark, &mut stack) {
            return Some(c);
        }
    }
    None
}

impl Pipelines {
    pub fn get(&self, name: &str) -> Result<&Pipeline, OrchestrateError> {
        self.pipelines.get(name).ok_or_else(|| OrchestrateError::UnknownPipeline {
            name: name.to_string(),
            suggestion: crate::util::suggest(name, self.pipelines.keys().map(String::as_str)),
        })
    }

    /// Pipelines that list `name` in their `after`.
    pub fn downstream(&self, name: &str) -> Vec<&Pipeline> {
        self.pipelines.values().filter(|p| p.after.iter().any(|a| a == name)).collect()
    }
}

impl Pipeline {
    /// Tasks in an order that respects `depends_on` (file order otherwise).
    pub fn task_order(&self) -> Vec<&Task> {
        let mut done: Vec<&str> = vec![];
        let mut out = vec![];
        while out.len() < self.tasks.len() {
            let before = out.len();
            for t in &self.tasks {
                if !done.contains(&t.name.as_str()) && t.depends_on.iter().all(|d| done.contains(&d.as_str())) {
                    done.push(&t.name);
                    out.push(t);
                }
            }
            if out.len() == before {
                break; // cycles are rejected at load
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Pipelines, String> {
        let mut out = Pipelines::default();
        parse_file(Path::new("pipelines/p.yml"), text, &mut out).map_err(|e| e.to_string())?;
        let texts = vec![(PathBuf::from("pipelines/p.yml"), text.to_string())];
        validate_after(&out, &texts).map_err(|e| e.to_string())?;
        Ok(out)
    }

    #[test]
    fn full_example() {
        let p = parse(
            "pipelines:\n  - name: ingestion\n    schedule: \"@hourly\"\n    retries: 3\n    retry_delay: 5m\n    retry_exponential_backoff: true\n    max_retry_delay: 30m\n    tasks:\n      - name: seeds\n        seed:\n      - name: models\n        build: staging+\n        depends_on: seeds\n        retries: 1\n  - name: transform\n    after: [ingestion]\n    tasks:\n      - name: sh\n        shell: echo hi\n",
        )
        .unwrap();
        let i = &p.pipelines["ingestion"];
        assert_eq!(i.tasks[0].retry.retries, 3);
        assert_eq!(i.tasks[1].retry.retries, 1);
        assert_eq!(i.tasks[1].retry.max_retry_delay, Some(Duration::from_secs(1800)));
        assert_eq!(i.tasks[1].kind, TaskKind::Build(Selection { select: vec!["staging+".into()], ..Default::default() }));
        assert_eq!(i.tasks[1].line, 11);
        assert_eq!(i.max_active_tasks, None);
        assert_eq!(p.downstream("ingestion")[0].name, "transform");
    }

    #[test]
    fn bad_input_names_file_and_line() {
        let e = parse("pipelines:\n  - name: a\n    schedule: \"61 * * * *\"\n    tasks:\n      - name: t\n        shell: x\n").unwrap_err();
        assert!(e.starts_with("pipelines/p.yml:3: pipeline 'a': invalid cron pattern '61 * * * *'"), "{e}");
        let e = parse("pipelines:\n  - name: a\n    schedule: \"* * *\"\n    tasks:\n      - name: t\n        shell: x\n").unwrap_err();
        assert!(e.contains("has 3 fields"), "{e}");
        let e = parse("pipelines:\n  - name: a\n    tasks:\n      - name: t\n        biuld: x\n").unwrap_err();
        assert!(e.starts_with("pipelines/p.yml:5: task 't' of pipeline 'a' has unknown kind or key 'biuld'\n  hint: did you mean 'build'?"), "{e}");
        let e = parse("pipelines:\n  - name: a\n    after: b\n    tasks:\n      - name: t\n        shell: x\n  - name: b\n    after: a\n    tasks:\n      - name: t\n        shell: x\n").unwrap_err();
        assert!(e.starts_with("pipelines/p.yml:3: pipelines form a cycle through `after`: a -> b -> a"), "{e}");
        let e = parse("pipelines:\n  - name: a\n    after: [ingest]\n    tasks:\n      - name: t\n        shell: x\n").unwrap_err();
        assert!(e.starts_with("pipelines/p.yml:3: pipeline 'a' runs after unknown pipeline 'ingest'"), "{e}");
        let e = parse("pipelines:\n  - name: a\n    max_active_tasks: 0\n    tasks:\n      - name: t\n        shell: x\n").unwrap_err();
        assert!(e.starts_with("pipelines/p.yml:3: pipeline 'a': max_active_tasks 0 is not a whole number of at least 1\n  hint: write e.g."), "{e}");
        let e = parse("pipelines:\n  - name: a\n    max_active_tasks: lots\n    tasks:\n      - name: t\n        shell: x\n").unwrap_err();
        assert!(e.starts_with("pipelines/p.yml:3: pipeline 'a': max_active_tasks 'lots' is not"), "{e}");
        let e = parse("pipelines:\n  - name: a\n    tasks:\n      - name: t\n        health: marts\n").unwrap_err();
        assert!(e.starts_with("pipelines/p.yml:5: task 't': health takes no options\n  hint: write `health:` with nothing after it"), "{e}");
        let e = parse("alerts:\n  slack:\n    webhook_url: not a url\npipelines: []\n").unwrap_err();
        assert!(e.starts_with("pipelines/p.yml:3: webhook_url '<url>' is malformed"), "{e}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("30"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("5 parsecs"), None);
    }

    #[test]
    fn schedules_in_a_time_zone() {
        let s = Schedule { expr: "0 2 * * *".into(), cron: parse_cron("0 2 * * *").unwrap(), tz: "Europe/Paris".parse().unwrap() };
        let t = chrono::DateTime::parse_from_rfc3339("2026-06-01T12:00:00Z").unwrap().with_timezone(&chrono::Utc);
        assert_eq!(s.next_after(t).unwrap().to_rfc3339(), "2026-06-02T00:00:00+00:00");
        let h = parse_cron("@hourly").unwrap();
        assert_eq!(h.find_next_occurrence(&t, false).unwrap().to_rfc3339(), "2026-06-01T13:00:00+00:00");
    }
}
