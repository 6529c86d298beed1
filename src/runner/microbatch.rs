//! Runs a microbatch model batch by batch, as dbt 1.11's
//! `MicrobatchModelRunner`: the batches are planned from the model's config
//! and the run's window ([`crate::project::microbatch::plan`]), or, for
//! `dp retry`, are exactly the batches that failed last time; each batch
//! compiles with its window ([`Compiled::compile_batch`]) and commits on
//! its own ([`crate::materialize::microbatch::write_batch`]). A failed
//! batch does not stop the others (unless it is the first batch, which
//! creates the table: then the rest are skipped); the model ends `success`,
//! `partial success` or `error` with dbt's `batch_results`.

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use super::Status;
use crate::compile::Compiled;
use crate::compile::microbatch::BatchCtx;
use crate::engine::Engine;
use crate::materialize::Materialized;
use crate::project::load::Project;
use crate::project::microbatch::{Batch, MicrobatchConfig, Window, is_microbatch, parse_datetime, plan};
use crate::project::nodes::Node;

/// The environment variable that pins "now" for microbatch planning (an
/// ISO date-time, UTC), for reproducible runs and tests.
pub const NOW_ENV: &str = "DP_MICROBATCH_NOW";

/// What a run tells microbatch models.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--event-time-start` / `--event-time-end`.
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    /// The invocation's time (or the retried invocation's).
    pub now: DateTime<Utc>,
    /// `dp retry`: each model's batches from the last run.
    pub retry: HashMap<String, BatchResults>,
    /// Batches run at once by a model with `concurrent_batches: true`.
    pub threads: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options { start: None, end: None, now: now(), retry: HashMap::new(), threads: 1 }
    }
}

/// "Now" for planning: `DP_MICROBATCH_NOW` when set, else the clock.
pub fn now() -> DateTime<Utc> {
    std::env::var(NOW_ENV).ok().and_then(|s| parse_datetime(&s)).unwrap_or_else(Utc::now)
}

/// Why `--event-time-start`/`--event-time-end` cannot be used (dbt's
/// words).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WindowError {
    #[error(
        "The flag `--event-time-end` was specified, but `--event-time-start` was not. When specifying `--event-time-end`, `--event-time-start` must also be present."
    )]
    EndWithoutStart,
    #[error(
        "The flag `--event-time-start` was specified, but `--event-time-end` was not. When specifying `--event-time-start`, `--event-time-end` must also be present."
    )]
    StartWithoutEnd,
    #[error("Value for `--event-time-start` must be less than `--event-time-end`")]
    NotBefore,
    #[error("--event-time-{which} '{value}' is not a date or date-time\n  hint: write 2024-01-01, 2024-01-01T06:00:00 or '2024-01-01 06:00:00'")]
    Invalid { which: &'static str, value: String },
}

impl Options {
    /// Reads the run's `--event-time-start` / `--event-time-end`.
    pub fn from_flags(start: Option<&str>, end: Option<&str>) -> Result<Options, WindowError> {
        let parse = |which: &'static str, v: Option<&str>| -> Result<Option<DateTime<Utc>>, WindowError> {
            v.map(|s| parse_datetime(s).ok_or_else(|| WindowError::Invalid { which, value: s.to_string() })).transpose()
        };
        let (s, e) = (parse("start", start)?, parse("end", end)?);
        match (s, e) {
            (None, Some(_)) => return Err(WindowError::EndWithoutStart),
            (Some(_), None) => return Err(WindowError::StartWithoutEnd),
            (Some(s), Some(e)) if s >= e => return Err(WindowError::NotBefore),
            _ => {}
        }
        Ok(Options { start: s, end: e, ..Options::default() })
    }
}

/// What a node's task tells the run about its batches.
#[derive(Debug)]
pub enum Note {
    Started { uid: String, index: usize, total: usize, label: String },
    Finished { uid: String, index: usize, total: usize, run: BatchRun },
}

impl Note {
    /// Tells `events` (on the run's task).
    pub fn tell(self, project: &Project, events: &dyn super::events::EventSink) {
        use super::events::Event;
        match self {
            Note::Started { uid, index, total, label } => {
                if let Some(node) = project.nodes.get(&uid) {
                    events.on_event(&Event::BatchStarted { node, index, total, label: &label });
                }
            }
            Note::Finished { uid, index, total, run } => {
                if let Some(node) = project.nodes.get(&uid) {
                    events.on_event(&Event::BatchFinished { node, index, total, run: &run });
                }
            }
        }
    }
}

/// A node's view of the run: the options and where batch notes go.
#[derive(Clone)]
pub struct Ctx {
    pub opts: std::sync::Arc<Options>,
    pub notes: tokio::sync::mpsc::UnboundedSender<Note>,
}

/// dbt's `batch_results`: which batches succeeded and which failed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchResults {
    pub successful: Vec<Batch>,
    pub failed: Vec<Batch>,
}

impl BatchResults {
    pub fn to_json(&self) -> Value {
        json!({
            "successful": self.successful.iter().map(|b| b.to_json()).collect::<Vec<_>>(),
            "failed": self.failed.iter().map(|b| b.to_json()).collect::<Vec<_>>(),
        })
    }

    pub fn from_json(v: &Value) -> Option<BatchResults> {
        let list = |k: &str| -> Option<Vec<Batch>> { v.get(k)?.as_array()?.iter().map(Batch::from_json).collect() };
        Some(BatchResults { successful: list("successful")?, failed: list("failed")? })
    }
}

/// One batch's run.
#[derive(Debug, Clone)]
pub struct BatchRun {
    pub batch: Batch,
    /// `2024-01-04` (as dbt prints the batch's start).
    pub label: String,
    /// `Success`, `Error` or `Skipped`.
    pub status: Status,
    /// The error of a failed batch.
    pub error: Option<String>,
    pub rows: Option<u64>,
    pub elapsed: Duration,
    /// The batch's compiled SQL (when it compiled).
    pub sql: Option<String>,
}

/// A microbatch model's run.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub runs: Vec<BatchRun>,
    /// For run_results.json (a retry adds the earlier successes).
    pub results: BatchResults,
    pub version: Option<i64>,
}

impl Outcome {
    /// dbt's status and message: `SUCCESS`, `PARTIAL SUCCESS (4/5)`, `ERROR`.
    pub fn status(&self) -> (Status, String) {
        let ok = self.runs.iter().filter(|r| r.status == Status::Success).count();
        let bad = self.runs.len() - ok;
        if bad == 0 {
            (Status::Success, "SUCCESS".into())
        } else if ok == 0 {
            (Status::Error, "ERROR".into())
        } else {
            (Status::PartialSuccess, format!("PARTIAL SUCCESS ({ok}/{})", ok + bad))
        }
    }

    /// What failed, one line per failed batch.
    pub fn errors(&self) -> String {
        self.runs.iter().filter_map(|r| r.error.as_ref().map(|e| format!("batch {}: {e}", r.label))).collect::<Vec<_>>().join("\n")
    }

    pub fn materialized(&self) -> Materialized {
        let rows = self.runs.iter().filter_map(|r| r.rows).sum::<u64>();
        Materialized { rows: Some(rows), message: "SUCCESS".into(), version: self.version }
    }
}

/// Whether `node` runs batch by batch.
pub fn applies(node: &Node) -> bool {
    node.resource_type == crate::project::nodes::ResourceType::Model && is_microbatch(&node.config)
}

/// Runs every batch of `node`. `incremental` is whether its table exists
/// and this is not a full refresh.
pub async fn run(engine: &Engine, project: &Project, compiled: &Compiled, node: &Node, incremental: bool, ctx: &Ctx) -> anyhow::Result<Outcome> {
    let opts = &*ctx.opts;
    let cfg = MicrobatchConfig::from_config(&node.config).map_err(|(_, e)| anyhow::anyhow!("{e}"))?;
    let previous = opts.retry.get(&node.unique_id);
    let (batches, incremental) = match previous {
        // A retry runs the failed batches into the existing table.
        Some(p) => (p.failed.clone(), true),
        None => (plan(&cfg, incremental, &Window { start: opts.start, end: opts.end, now: opts.now }), incremental),
    };
    // As dbt: the first batch runs alone (it may create the table), then
    // the middle ones (at once when `concurrent_batches` is true), then the
    // last; when the first fails, the rest are skipped.
    let total = batches.len();
    let note = |n: Note| {
        let _ = ctx.notes.send(n);
    };
    let (note, cfg_ref) = (&note, &cfg);
    let parallel = if cfg.concurrent_batches == Some(true) { opts.threads.max(1) } else { 1 };
    let one = |i: usize, batch: Batch| {
        let cfg = cfg_ref;
        async move {
            note(Note::Started { uid: node.unique_id.clone(), index: i + 1, total, label: batch.label(cfg.batch_size) });
            let (r, v) = run_one(engine, project, compiled, node, cfg, batch, i > 0 || incremental, parallel).await;
            note(Note::Finished { uid: node.unique_id.clone(), index: i + 1, total, run: r.clone() });
            (r, v)
        }
    };
    let mut runs: Vec<BatchRun> = vec![];
    let mut version = None;
    if let Some(first) = batches.first() {
        let (r, v) = one(0, *first).await;
        version = v;
        let failed = r.status != Status::Success;
        runs.push(r);
        if failed {
            for (i, b) in batches.iter().enumerate().skip(1) {
                let skipped = BatchRun {
                    batch: *b,
                    label: b.label(cfg.batch_size),
                    status: Status::Skipped,
                    error: None,
                    rows: None,
                    elapsed: Duration::ZERO,
                    sql: None,
                };
                note(Note::Finished { uid: node.unique_id.clone(), index: i + 1, total, run: skipped.clone() });
                runs.push(skipped);
            }
        } else if batches.len() > 1 {
            let middle = &batches[1..batches.len() - 1];
            let futs: Vec<_> = middle.iter().enumerate().map(|(i, b)| one(i + 1, *b)).collect();
            let done: Vec<(BatchRun, Option<i64>)> = futures::stream::iter(futs).buffered(parallel).collect().await;
            for (r, v) in done {
                version = version.max(v);
                runs.push(r);
            }
            let (r, v) = one(batches.len() - 1, batches[batches.len() - 1]).await;
            version = version.max(v);
            runs.push(r);
        }
    }
    let mut results = BatchResults::default();
    for r in &runs {
        if r.status == Status::Success { results.successful.push(r.batch) } else { results.failed.push(r.batch) }
    }
    results.successful.sort();
    results.failed.sort();
    if let Some(p) = previous {
        results.successful.extend(p.successful.iter().copied());
    }
    Ok(Outcome { runs, results, version })
}

/// Runs one batch (`at_once` of them running at the same time); its
/// outcome and the table version it committed.
#[allow(clippy::too_many_arguments)]
async fn run_one(
    engine: &Engine,
    project: &Project,
    compiled: &Compiled,
    node: &Node,
    cfg: &MicrobatchConfig,
    batch: Batch,
    incremental: bool,
    at_once: usize,
) -> (BatchRun, Option<i64>) {
    let t = Instant::now();
    let label = batch.label(cfg.batch_size);
    let ctx = BatchCtx { uid: node.unique_id.clone(), batch, id: batch.id(cfg.batch_size), incremental };
    let sql = tokio::task::block_in_place(|| compiled.compile_batch(project, ctx));
    let r = match &sql {
        Ok(sql) => crate::materialize::microbatch::write_batch(engine, node, sql, &cfg.event_time, &batch, incremental, at_once).await,
        Err(e) => Err(anyhow::anyhow!("{e}")),
    };
    engine.catalog.invalidate(&node.schema, &node.alias);
    let sql = sql.ok();
    match r {
        Ok(m) => (BatchRun { batch, label, status: Status::Success, error: None, rows: m.rows, elapsed: t.elapsed(), sql }, m.version),
        Err(e) => (BatchRun { batch, label, status: Status::Error, error: Some(e.to_string()), rows: None, elapsed: t.elapsed(), sql }, None),
    }
}

/// Writes each batch's compiled SQL where dbt does:
/// `<compiled dir>/<pkg>/models/m/m_2024-01-04.sql` beside `m.sql`.
pub fn write_compiled(compiled_dir: &Path, node: &Node, o: &Outcome) -> std::io::Result<()> {
    let path = crate::compile::compiled_path(node);
    let stem = path.strip_suffix(".sql").unwrap_or(&path);
    let dir = compiled_dir.join(stem);
    for r in &o.runs {
        if let Some(sql) = &r.sql {
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join(format!("{}_{}.sql", node.name, r.label)), sql)?;
        }
    }
    Ok(())
}

/// `dp retry`: the batches of each microbatch model that partly succeeded
/// in `<dir>/run_results.json` (dbt passes none for a model with no
/// success, which then runs again from scratch), and the time that run
/// planned from.
pub fn retry_batches(dir: &Path) -> (HashMap<String, BatchResults>, Option<DateTime<Utc>>) {
    let Ok(text) = std::fs::read_to_string(dir.join("run_results.json")) else { return (HashMap::new(), None) };
    let Ok(v) = serde_json::from_str::<Value>(&text) else { return (HashMap::new(), None) };
    let mut out = HashMap::new();
    for r in v["results"].as_array().into_iter().flatten() {
        if let (Some(uid), Some(b)) = (r["unique_id"].as_str(), BatchResults::from_json(&r["batch_results"]))
            && !b.successful.is_empty()
            && !b.failed.is_empty()
        {
            out.insert(uid.to_string(), b);
        }
    }
    let started = v["metadata"]["invocation_started_at"].as_str().and_then(|s| DateTime::parse_from_rfc3339(s).ok()).map(|t| t.with_timezone(&Utc));
    (out, started)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_flags_are_checked_as_dbt_does() {
        assert_eq!(Options::from_flags(None, Some("2024-01-02")).unwrap_err(), WindowError::EndWithoutStart);
        assert_eq!(Options::from_flags(Some("2024-01-02"), None).unwrap_err(), WindowError::StartWithoutEnd);
        assert_eq!(Options::from_flags(Some("2024-01-02"), Some("2024-01-02")).unwrap_err(), WindowError::NotBefore);
        assert!(matches!(Options::from_flags(Some("soon"), Some("2024-01-02")), Err(WindowError::Invalid { which: "start", .. })));
        let o = Options::from_flags(Some("2024-01-02"), Some("2024-01-03 12:00:00")).unwrap();
        assert_eq!(o.start, parse_datetime("2024-01-02"));
        assert_eq!(o.end, parse_datetime("2024-01-03T12:00:00"));
        assert!(Options::from_flags(None, None).unwrap().start.is_none());
    }

    #[test]
    fn batch_results_round_trip() {
        let b = |d: &str| Batch { start: parse_datetime(d).unwrap(), end: parse_datetime(d).unwrap() + chrono::Duration::days(1) };
        let r = BatchResults { successful: vec![b("2024-01-01")], failed: vec![b("2024-01-02"), b("2024-01-03")] };
        assert_eq!(
            r.to_json(),
            json!({"successful": [["2024-01-01T00:00:00+00:00", "2024-01-02T00:00:00+00:00"]], "failed": [["2024-01-02T00:00:00+00:00", "2024-01-03T00:00:00+00:00"], ["2024-01-03T00:00:00+00:00", "2024-01-04T00:00:00+00:00"]]})
        );
        assert_eq!(BatchResults::from_json(&r.to_json()), Some(r));
    }
}
