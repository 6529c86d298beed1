//! `target/run_results.json` in dbt's shape, written by a [`RunResultsFile`]
//! subscribed to the run's events.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::events::{Event, EventSink};
use super::{NodeResult, Status};
use crate::compile::manifest::{artifact_metadata, now_stamp};
use crate::project::load::Project;

/// Writes `run_results.json` into `dir` when the run finishes.
pub struct RunResultsFile<'a> {
    pub dir: PathBuf,
    pub project: &'a Project,
    pub invocation_id: &'a str,
    /// The command (`run`, `build`, ...) and the flags `dp retry` repeats.
    pub args: Args,
    written: Mutex<Option<anyhow::Result<()>>>,
}

/// The invocation's command and the flags `dp retry` repeats (dbt's `args`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Args {
    pub which: String,
    pub full_refresh: bool,
    pub store_failures: bool,
    /// `--event-time-start` / `--event-time-end` (microbatch backfills).
    pub event_time_start: Option<String>,
    pub event_time_end: Option<String>,
    /// The time microbatch models planned from (`metadata.invocation_started_at`).
    pub invocation_started_at: Option<chrono::DateTime<chrono::Utc>>,
    /// `--defer`, `--favor-state`, `--state`, `--defer-state` (as dbt's args).
    pub defer: bool,
    pub favor_state: bool,
    pub state: Option<String>,
    pub defer_state: Option<String>,
}

impl Args {
    fn json(&self) -> Value {
        let mut v = json!({"which": self.which, "full_refresh": self.full_refresh, "store_failures": self.store_failures});
        // a backfill's window, for `dp retry` (dbt's args)
        for (k, t) in [("event_time_start", &self.event_time_start), ("event_time_end", &self.event_time_end)] {
            if let Some(t) = t {
                v[k] = json!(t);
            }
        }
        if self.defer {
            v["defer"] = json!(true);
            v["favor_state"] = json!(self.favor_state);
        }
        for (k, d) in [("state", &self.state), ("defer_state", &self.defer_state)] {
            if let Some(d) = d {
                v[k] = json!(d);
            }
        }
        v
    }

    /// Reads the args back from a run_results.json.
    pub fn from_json(v: &Value) -> Args {
        let a = &v["args"];
        Args {
            which: a["which"].as_str().unwrap_or_default().to_string(),
            full_refresh: a["full_refresh"].as_bool().unwrap_or(false),
            store_failures: a["store_failures"].as_bool().unwrap_or(false),
            event_time_start: a["event_time_start"].as_str().map(String::from),
            event_time_end: a["event_time_end"].as_str().map(String::from),
            invocation_started_at: None,
            defer: a["defer"].as_bool().unwrap_or(false),
            favor_state: a["favor_state"].as_bool().unwrap_or(false),
            state: a["state"].as_str().map(String::from),
            defer_state: a["defer_state"].as_str().map(String::from),
        }
    }
}

impl<'a> RunResultsFile<'a> {
    pub fn new(dir: PathBuf, project: &'a Project, invocation_id: &'a str, args: Args) -> Self {
        RunResultsFile { dir, project, invocation_id, args, written: Mutex::new(None) }
    }

    /// Whether the file was written (an error if writing failed or the run
    /// never finished).
    pub fn finish(self) -> anyhow::Result<()> {
        self.written.into_inner().unwrap_or_else(|e| e.into_inner()).unwrap_or_else(|| Err(anyhow::anyhow!("the run did not finish")))
    }
}

impl EventSink for RunResultsFile<'_> {
    fn on_event(&self, event: &Event<'_>) {
        if let Event::RunFinished { results, elapsed } = event {
            let v = run_results(self.project, results, elapsed.as_secs_f64(), self.invocation_id, &self.args);
            *self.written.lock().unwrap_or_else(|e| e.into_inner()) = Some(write(&self.dir, &v));
        }
    }
}

/// `target/run_results.json` of a command that ran nothing (an empty
/// selection), as dbt writes it: no results.
pub fn write_empty(project: &Project, invocation_id: &str, args: &Args) -> anyhow::Result<()> {
    write(&project.settings.target_dir(), &run_results(project, &[], 0.0, invocation_id, args))
}

pub fn run_results(project: &Project, results: &[NodeResult], elapsed: f64, invocation_id: &str, args: &Args) -> Value {
    let items: Vec<Value> = results
        .iter()
        .map(|r| {
            let n = &project.nodes[&r.unique_id];
            let ts = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            json!({
                "status": r.status.as_str(),
                "timing": if r.status == Status::Skipped { json!([]) } else { json!([
                    {"name": "compile", "started_at": ts(r.started_at), "completed_at": ts(r.started_at)},
                    {"name": "execute", "started_at": ts(r.started_at), "completed_at": ts(r.completed_at)},
                ]) },
                "thread_id": format!("Thread-{}", r.thread),
                "execution_time": r.execution_time.as_secs_f64(),
                "adapter_response": if matches!(r.status, Status::Success | Status::Pass | Status::Warn | Status::Fail) { json!({
                    "_message": format!("{} {}", r.message, r.rows.map(|x| x.to_string()).unwrap_or_default()).trim().to_string(),
                    "code": r.message,
                    "rows_affected": r.rows,
                }) } else { json!({}) },
                "message": if r.status == Status::Pass { Value::Null } else { Value::String(r.message.clone()) },
                "failures": r.failures,
                "unique_id": r.unique_id,
                "compiled": r.compiled_code.is_some(),
                "compiled_code": r.compiled_code,
                "relation_name": if matches!(n.resource_type, crate::project::nodes::ResourceType::Test | crate::project::nodes::ResourceType::UnitTest) { Value::Null } else { json!(n.dbt_relation_name(&project.settings)) },
                "batch_results": r.batches.as_ref().map(|b| b.results.to_json()),
            })
        })
        .collect();
    let mut metadata = artifact_metadata("https://schemas.getdbt.com/dbt/run-results/v6.json", invocation_id, &now_stamp());
    if let Some(t) = args.invocation_started_at {
        metadata.insert("invocation_started_at".into(), json!(t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)));
    }
    json!({
        "metadata": metadata,
        "results": items,
        "elapsed_time": elapsed,
        "args": args.json(),
    })
}

/// Statuses `dp retry` runs again (dbt's RETRYABLE_STATUSES).
pub const RETRYABLE: &[&str] = &["error", "fail", "skipped", "runtime error", "partial success"];

/// The previous invocation's args and the unique ids to retry, from
/// `<dir>/run_results.json`.
pub fn retry_plan(dir: &Path) -> anyhow::Result<(Args, Vec<String>)> {
    let path = dir.join("run_results.json");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        anyhow::anyhow!(
            "{}: {e}\n  hint: `dp retry` re-runs the failed and skipped nodes of the last `dp run`, `seed`, `test` or `build`; run one first",
            path.display()
        )
    })?;
    let v: Value = serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: not a run_results.json: {e}", path.display()))?;
    let ids = v["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["status"].as_str().is_some_and(|s| RETRYABLE.contains(&s)))
        .filter_map(|r| r["unique_id"].as_str().map(String::from))
        .collect();
    Ok((Args::from_json(&v), ids))
}

pub fn write(dir: &Path, v: &Value) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!("run_results.json.{}.tmp", std::process::id()));
    std::fs::write(&tmp, serde_json::to_vec_pretty(v)?)?;
    std::fs::rename(&tmp, dir.join("run_results.json"))?;
    Ok(())
}
