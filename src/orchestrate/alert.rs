//! Alerts: a Slack incoming-webhook message, an email over SMTP, and always
//! a row in `data_platform.alert_history` (Delta; also inserted into
//! PostgreSQL when the target publishes there). A channel that cannot
//! deliver is recorded as undelivered; it never fails the pipeline.

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{ArrayRef, BooleanArray, RecordBatch, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use deltalake::DeltaTable;
use deltalake::protocol::SaveMode;
use std::sync::Arc;
use std::time::Duration;

use super::OrchestrateError;
use super::spec::{AlertsSpec, EmailSpec, SlackSpec};
use crate::postgres::publish::Publisher;
use crate::storage::Warehouse;

pub const ALERT_HISTORY: (&str, &str) = ("data_platform", "alert_history");

/// One alert.
#[derive(Debug, Clone)]
pub struct Alert {
    pub pipeline: String,
    pub task: Option<String>,
    /// `error` (final failure), `info` (recovery, test), `warning`.
    pub severity: String,
    pub title: String,
    pub message: String,
    pub try_number: Option<i64>,
    pub run_id: Option<String>,
    /// Where the task's output is (a log file, or the scheduler's log).
    pub log: Option<String>,
}

/// What one channel did with an alert.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub channel: String,
    pub delivered: bool,
    pub error: Option<String>,
}

/// The row written to `data_platform.alert_history`.
#[derive(Debug, Clone)]
pub struct AlertRecord {
    pub alert_id: String,
    pub deliveries: Vec<Delivery>,
    /// Why the row could not be written (Delta or PostgreSQL); the alert
    /// still went out.
    pub history_error: Option<String>,
}

/// Resolved channels (secrets read from the environment once).
pub struct Alerter {
    slack: Option<(SlackSpec, String)>,
    email: Option<(EmailSpec, Option<String>)>,
    warehouse: Warehouse,
    publisher: Option<Arc<Publisher>>,
    http: reqwest::Client,
}

/// `${VAR}` and `${VAR:-default}` in a value, from the environment.
fn expand(v: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = v;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let Some(j) = rest[i..].find('}') else { return Err(format!("unclosed ${{ in '{v}'")) };
        let inner = &rest[i + 2..i + j];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        match env(name).filter(|s| !s.is_empty()).or(default.map(String::from)) {
            Some(val) => out.push_str(&val),
            None => return Err(format!("environment variable {name} is not set")),
        }
        rest = &rest[i + j + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

impl Alerter {
    /// Resolves the channels: a webhook URL from `${VAR}`, the SMTP password
    /// from `password_env`. A missing variable or malformed URL is an error
    /// naming the definition's file and line, before anything runs.
    pub fn new(
        spec: Option<&AlertsSpec>,
        root: &std::path::Path,
        env: &dyn Fn(&str) -> Option<String>,
        warehouse: Warehouse,
        publisher: Option<Arc<Publisher>>,
    ) -> Result<Alerter, OrchestrateError> {
        let def_err = |a: &AlertsSpec, key: &str, message: String, hint: &str| {
            let line = std::fs::read_to_string(root.join(&a.file))
                .ok()
                .and_then(|t| {
                    t.lines().enumerate().skip(a.line.saturating_sub(1)).find(|(_, l)| l.trim_start().starts_with(&format!("{key}:"))).map(|(i, _)| i + 1)
                })
                .unwrap_or(a.line);
            OrchestrateError::Definition { file: a.file.clone(), line, message, hint: hint.to_string() }
        };
        let mut slack = None;
        let mut email = None;
        if let Some(a) = spec {
            if let Some(s) = &a.slack {
                let url = expand(&s.webhook_url, env)
                    .map_err(|m| def_err(a, "webhook_url", format!("slack webhook_url: {m}"), "export the variable, or remove the slack channel"))?;
                super::spec::check_webhook(&url)
                    .map_err(|m| def_err(a, "webhook_url", m, "write the incoming-webhook URL (https://hooks.slack.com/services/...)"))?;
                slack = Some((s.clone(), url));
            }
            if let Some(e) = &a.email {
                let password = match (&e.username, &e.password_env) {
                    (Some(_), var) => {
                        let var = var.clone().unwrap_or_else(|| "SMTP_PASSWORD".into());
                        Some(env(&var).ok_or_else(|| {
                            def_err(
                                a,
                                "password_env",
                                format!("the SMTP password variable {var} is not set"),
                                "export it (the password is only ever read from the environment)",
                            )
                        })?)
                    }
                    (None, _) => None,
                };
                email = Some((e.clone(), password));
            }
        }
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().map_err(|e| OrchestrateError::Io(format!("HTTP client: {e}")))?;
        Ok(Alerter { slack, email, warehouse, publisher, http })
    }

    /// The configured channels' names.
    pub fn channels(&self) -> Vec<String> {
        let mut v = vec![];
        if self.slack.is_some() {
            v.push("slack".to_string());
        }
        if self.email.is_some() {
            v.push("email".to_string());
        }
        v
    }

    /// Sends an alert through every channel and records it.
    pub async fn send(&self, a: &Alert) -> AlertRecord {
        let mut deliveries = vec![];
        if let Some((s, url)) = &self.slack {
            let r = self.slack(s, url, a).await;
            deliveries.push(Delivery { channel: "slack".into(), delivered: r.is_ok(), error: r.err() });
        }
        if let Some((e, pw)) = &self.email {
            let r = send_email(e, pw.as_deref(), a).await;
            deliveries.push(Delivery { channel: "email".into(), delivered: r.is_ok(), error: r.err() });
        }
        let alert_id = uuid::Uuid::new_v4().to_string();
        let history_error = self.record(&alert_id, a, &deliveries).await.err();
        AlertRecord { alert_id, deliveries, history_error }
    }

    async fn slack(&self, s: &SlackSpec, url: &str, a: &Alert) -> Result<(), String> {
        let mut body = serde_json::json!({
            "text": format!("{}\n{}", a.title, a.message),
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": format!("*{}*\n```{}```", a.title, a.message)}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": context_line(a)}]},
            ],
        });
        if let Some(c) = &s.channel {
            body["channel"] = serde_json::Value::String(c.clone());
        }
        let resp = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| format!("posting to {}: {}", super::spec::redact(url), error_chain(&e.without_url())))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let text = resp.text().await.unwrap_or_default();
        Err(format!("{} answered {status}: {}", super::spec::redact(url), text.chars().take(200).collect::<String>()))
    }

    async fn record(&self, alert_id: &str, a: &Alert, d: &[Delivery]) -> Result<(), String> {
        let channels = d.iter().map(|x| x.channel.as_str()).collect::<Vec<_>>().join(",");
        let delivered = !d.is_empty() && d.iter().all(|x| x.delivered);
        let error = if d.is_empty() {
            Some("no alert channels configured".to_string())
        } else {
            let e: Vec<String> = d.iter().filter_map(|x| x.error.as_ref().map(|e| format!("{}: {e}", x.channel))).collect();
            (!e.is_empty()).then(|| e.join("; "))
        };
        let sent_at = Utc::now();
        let message = format!("{}\n{}", a.title, a.message);
        let mut problems = vec![];
        let row = HistoryRow { alert_id, alert: a, message: &message, channels: &channels, sent_at, delivered, error: error.as_deref() };
        if let Err(e) = self.record_delta(row).await {
            problems.push(format!("data_platform.alert_history: {e}"));
        }
        if let Some(p) = &self.publisher
            && let Err(e) = record_pg(p, row).await
        {
            problems.push(format!("PostgreSQL data_platform.alert_history: {e:#}"));
        }
        if problems.is_empty() { Ok(()) } else { Err(problems.join("; ")) }
    }

    async fn record_delta(&self, row: HistoryRow<'_>) -> Result<(), String> {
        let HistoryRow { alert_id, alert: a, message, channels, sent_at, delivered, error } = row;
        let schema = Arc::new(Schema::new(vec![
            Field::new("alert_id", DataType::Utf8, false),
            Field::new("pipeline", DataType::Utf8, false),
            Field::new("task", DataType::Utf8, true),
            Field::new("severity", DataType::Utf8, false),
            Field::new("message", DataType::Utf8, false),
            Field::new("channels", DataType::Utf8, false),
            Field::new("sent_at", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
            Field::new("delivered", DataType::Boolean, false),
            Field::new("error", DataType::Utf8, true),
        ]));
        let s = |v: Option<&str>| -> ArrayRef { Arc::new(StringArray::from(vec![v])) };
        let cols: Vec<ArrayRef> = vec![
            s(Some(alert_id)),
            s(Some(&a.pipeline)),
            s(a.task.as_deref()),
            s(Some(&a.severity)),
            s(Some(message)),
            s(Some(channels)),
            Arc::new(TimestampMicrosecondArray::from(vec![sent_at.timestamp_micros()]).with_timezone("UTC")),
            Arc::new(BooleanArray::from(vec![delivered])),
            s(error),
        ];
        let batch = RecordBatch::try_new(schema, cols).map_err(|e| e.to_string())?;
        let loc = self.warehouse.table(ALERT_HISTORY.0, ALERT_HISTORY.1);
        self.warehouse.prepare_table(&loc).await.map_err(|e| e.to_string())?;
        let t = DeltaTable::try_from_url(loc.url.clone()).await.map_err(|e| e.to_string())?;
        let t = t.write(vec![batch]).with_save_mode(SaveMode::Append).await.map_err(|e| e.to_string())?;
        crate::materialize::delta::checkpoint_if_due(&t).await;
        Ok(())
    }
}

/// One row of `alert_history`, written to Delta and to PostgreSQL alike.
#[derive(Clone, Copy)]
struct HistoryRow<'a> {
    alert_id: &'a str,
    alert: &'a Alert,
    message: &'a str,
    channels: &'a str,
    sent_at: DateTime<Utc>,
    delivered: bool,
    error: Option<&'a str>,
}

async fn record_pg(p: &Publisher, row: HistoryRow<'_>) -> anyhow::Result<()> {
    let HistoryRow { alert_id, alert: a, message, channels, sent_at, delivered, error } = row;
    let client = p.pool.get().await?;
    client
        .batch_execute(
            "CREATE SCHEMA IF NOT EXISTS data_platform; \
             CREATE TABLE IF NOT EXISTS data_platform.alert_history (alert_id text PRIMARY KEY, pipeline text NOT NULL, task text, severity text NOT NULL, \
             message text NOT NULL, channels text NOT NULL, sent_at timestamptz NOT NULL, delivered boolean NOT NULL, error text)",
        )
        .await?;
    client
        .execute(
            "INSERT INTO data_platform.alert_history (alert_id, pipeline, task, severity, message, channels, sent_at, delivered, error) \
             VALUES ($1, $2, $3, $4, $5, $6, $7::text::timestamptz, $8, $9)",
            &[&alert_id, &a.pipeline, &a.task, &a.severity, &message, &channels, &sent_at.to_rfc3339(), &delivered, &error],
        )
        .await?;
    Ok(())
}

fn context_line(a: &Alert) -> String {
    let mut parts = vec![format!("pipeline `{}`", a.pipeline)];
    if let Some(t) = &a.task {
        parts.push(format!("task `{t}`"));
    }
    if let Some(n) = a.try_number {
        parts.push(format!("tries: {n}"));
    }
    if let Some(r) = &a.run_id {
        parts.push(format!("run `{r}`"));
    }
    if let Some(l) = &a.log {
        parts.push(format!("log: {l}"));
    }
    parts.join(" · ")
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

async fn send_email(e: &EmailSpec, password: Option<&str>, a: &Alert) -> Result<(), String> {
    let body = format!("{}\n\n{}\n", a.message, context_line(a).replace('`', ""));
    super::smtp::send(e, password, &a.title, &body).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn env_expansion() {
        let env = |k: &str| (k == "HOOK").then(|| "https://hooks.example/x".to_string());
        assert_eq!(super::expand("${HOOK}", &env).unwrap(), "https://hooks.example/x");
        assert_eq!(super::expand("${NOPE:-http://a/b}", &env).unwrap(), "http://a/b");
        assert_eq!(super::expand("${NOPE}", &env).unwrap_err(), "environment variable NOPE is not set");
    }
}
