//! Runs one pipeline: tasks in dependency order, each try recorded in
//! `dp_meta.task_runs`, transient failures retried with Airflow's back-off,
//! alerts on a task's final failure, and the run's state in
//! `dp_meta.pipeline_runs`. A task whose upstream task failed is skipped
//! (Airflow's `upstream_failed`); independent tasks still run, side by side
//! (up to `max_active_tasks` at once).

use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::OrchestrateError;
use super::alert::{Alert, AlertRecord, Alerter};
use super::history::{History, RunRow, TaskRow};
use super::retry::is_transient;
use super::spec::{Pipeline, Task, TaskKind};

/// Runs the tasks that are dp commands (seed, run, test, build, publish,
/// load, ...) in-process; the CLI provides it, so tasks go through the same
/// code as the commands.
#[async_trait::async_trait(?Send)]
pub trait TaskExecutor: Send + Sync {
    /// `Ok(summary)` or `Err(error text)` (the text decides whether a retry
    /// can help, see [`super::retry::is_transient`]).
    async fn execute(&self, pipeline: &Pipeline, task: &Task) -> Result<String, String>;
}

/// What a pipeline run reports while it works.
#[derive(Debug)]
pub enum PipelineEvent<'a> {
    RunStarted {
        pipeline: &'a str,
        run_id: &'a str,
        trigger: &'a str,
        tasks: usize,
    },
    TaskStarted {
        pipeline: &'a str,
        task: &'a Task,
        index: usize,
        total: usize,
        try_number: u32,
    },
    TaskFinished {
        pipeline: &'a str,
        task: &'a Task,
        index: usize,
        total: usize,
        try_number: u32,
        result: &'a Result<String, String>,
        elapsed: Duration,
        retry_in: Option<Duration>,
    },
    TaskSkipped {
        pipeline: &'a str,
        task: &'a Task,
        index: usize,
        total: usize,
        reason: &'a str,
    },
    Alerted {
        pipeline: &'a str,
        record: &'a AlertRecord,
    },
    RunFinished {
        pipeline: &'a str,
        run_id: &'a str,
        state: &'a str,
        elapsed: Duration,
    },
    /// Scheduler messages (firing, waiting, recovering).
    Scheduler {
        message: String,
    },
}

pub type Sink<'a> = &'a (dyn Fn(&PipelineEvent<'_>) + Send + Sync);

/// What a run needs: where history goes, how dp tasks execute, alerts.
pub struct RunContext {
    pub history: Arc<History>,
    pub executor: Arc<dyn TaskExecutor>,
    pub alerter: Arc<Alerter>,
    pub project_root: PathBuf,
    /// Where shell tasks' output is kept (`target/pipeline_logs`).
    pub log_dir: PathBuf,
    /// Alert when a task runs longer than this.
    pub long_running: Option<Duration>,
    /// How many independent tasks of a pipeline run at once, unless the
    /// pipeline sets `max_active_tasks` (the target's `threads`).
    pub max_active_tasks: usize,
    /// Turns `true` when running tasks must stop (scheduler shutdown).
    pub cancel: tokio::sync::watch::Receiver<bool>,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub state: String,
}

fn pid() -> i64 {
    std::process::id() as i64
}

/// Runs `pipeline` now. History write failures end the run with an error
/// (a run that cannot be recorded would be run again by the scheduler).
pub async fn run_pipeline(
    ctx: &RunContext,
    pipeline: &Pipeline,
    trigger: &str,
    scheduled_for: Option<DateTime<Utc>>,
    sink: Sink<'_>,
) -> Result<RunSummary, OrchestrateError> {
    let t0 = Instant::now();
    let run_id = uuid::Uuid::new_v4().to_string();
    let started_at = Utc::now();
    let mut run = RunRow {
        run_id: run_id.clone(),
        pipeline: pipeline.name.clone(),
        trigger: trigger.to_string(),
        scheduled_for,
        state: "running".into(),
        started_at,
        ended_at: None,
        error: None,
        pid: pid(),
        recorded_at: started_at,
    };
    // Whether the previous run failed (for recovery alerts).
    let previous_failed = if pipeline.alert_on_recovery {
        ctx.history.runs().await?.iter().rev().find(|r| r.pipeline == pipeline.name).is_some_and(|r| r.state == "failed")
    } else {
        false
    };
    ctx.history.record_run(&run).await?;
    let order = pipeline.task_order();
    let total = order.len();
    let limit = pipeline.max_active_tasks.unwrap_or(ctx.max_active_tasks).max(1);
    sink(&PipelineEvent::RunStarted { pipeline: &pipeline.name, run_id: &run_id, trigger, tasks: total });
    // Tasks start as soon as every task they depend on succeeded, up to
    // `limit` at once; a task whose upstream failed is skipped.
    let mut outcome: HashMap<&str, bool> = HashMap::new();
    let mut started: HashSet<&str> = HashSet::new();
    let mut running = FuturesUnordered::new();
    let mut first_error: Option<String> = None;
    let mut cancelled = false;
    loop {
        let mut progressed = !cancelled;
        while progressed {
            progressed = false;
            for (i, task) in order.iter().enumerate() {
                let index = i + 1;
                if started.contains(task.name.as_str()) || !task.depends_on.iter().all(|d| outcome.contains_key(d.as_str())) {
                    continue;
                }
                if let Some(up) = task.depends_on.iter().find(|d| outcome.get(d.as_str()) == Some(&false)) {
                    let reason = format!("upstream task '{up}' failed");
                    sink(&PipelineEvent::TaskSkipped { pipeline: &pipeline.name, task, index, total, reason: &reason });
                    let now = Utc::now();
                    ctx.history
                        .record_task(&TaskRow {
                            run_id: run_id.clone(),
                            pipeline: pipeline.name.clone(),
                            task: task.name.clone(),
                            kind: task.kind.name().into(),
                            try_number: 0,
                            state: "upstream_failed".into(),
                            started_at: now,
                            ended_at: Some(now),
                            error: Some(reason),
                            transient: false,
                            retry_delay_ms: None,
                            pid: pid(),
                            recorded_at: now,
                        })
                        .await?;
                    started.insert(&task.name);
                    outcome.insert(&task.name, false);
                    progressed = true;
                } else if running.len() < limit {
                    started.insert(&task.name);
                    let run_id = &run_id;
                    running.push(async move { (task, run_task(ctx, pipeline, task, run_id, index, total, sink).await) });
                    progressed = true;
                }
            }
        }
        let Some((task, result)) = running.next().await else { break };
        let ok = match result? {
            Ok(()) => true,
            Err(e) => {
                first_error.get_or_insert(format!("task {}: {e}", task.name));
                false
            }
        };
        outcome.insert(&task.name, ok);
        if *ctx.cancel.borrow() && !cancelled {
            // Tasks not started yet are left alone: the run is failed as cancelled.
            cancelled = true;
            first_error.get_or_insert("cancelled: the scheduler is stopping".into());
        }
    }
    let state = if first_error.is_none() { "success" } else { "failed" };
    let now = Utc::now();
    run.state = state.into();
    run.ended_at = Some(now);
    run.recorded_at = now;
    run.error = first_error;
    ctx.history.record_run(&run).await?;
    if state == "success" && previous_failed {
        let a = Alert {
            pipeline: pipeline.name.clone(),
            task: None,
            severity: "info".into(),
            title: format!("dp: pipeline {} recovered", pipeline.name),
            message: format!("pipeline {} succeeded after a failed run", pipeline.name),
            try_number: None,
            run_id: Some(run_id.clone()),
            log: None,
        };
        let record = ctx.alerter.send(&a).await;
        sink(&PipelineEvent::Alerted { pipeline: &pipeline.name, record: &record });
    }
    sink(&PipelineEvent::RunFinished { pipeline: &pipeline.name, run_id: &run_id, state, elapsed: t0.elapsed() });
    Ok(RunSummary { state: state.into() })
}

/// Runs one task with its retries. The outer error is a history failure;
/// the inner one the task's final error.
async fn run_task(
    ctx: &RunContext,
    pipeline: &Pipeline,
    task: &Task,
    run_id: &str,
    index: usize,
    total: usize,
    sink: Sink<'_>,
) -> Result<Result<(), String>, OrchestrateError> {
    let max_tries = task.retry.retries + 1;
    let mut try_number = 1u32;
    loop {
        let started_at = Utc::now();
        let mut row = TaskRow {
            run_id: run_id.to_string(),
            pipeline: pipeline.name.clone(),
            task: task.name.clone(),
            kind: task.kind.name().into(),
            try_number: try_number as i64,
            state: "running".into(),
            started_at,
            ended_at: None,
            error: None,
            transient: false,
            retry_delay_ms: None,
            pid: pid(),
            recorded_at: started_at,
        };
        ctx.history.record_task(&row).await?;
        sink(&PipelineEvent::TaskStarted { pipeline: &pipeline.name, task, index, total, try_number });
        let t = Instant::now();
        let log = ctx.log_dir.join(&pipeline.name).join(run_id).join(format!("{}.{try_number}.log", task.name));
        let result = execute_watched(ctx, pipeline, task, run_id, try_number, &log, sink).await;
        let elapsed = t.elapsed();
        let now = Utc::now();
        row.ended_at = Some(now);
        row.recorded_at = now;
        match &result {
            Ok(_) => {
                row.state = "success".into();
                ctx.history.record_task(&row).await?;
                sink(&PipelineEvent::TaskFinished { pipeline: &pipeline.name, task, index, total, try_number, result: &result, elapsed, retry_in: None });
                return Ok(Ok(()));
            }
            Err(e) => {
                let transient = is_transient(e);
                let cancelled = *ctx.cancel.borrow();
                row.error = Some(e.clone());
                row.transient = transient;
                if transient && try_number < max_tries && !cancelled {
                    let delay = task.retry.delay(try_number);
                    row.state = "up_for_retry".into();
                    row.retry_delay_ms = Some(delay.as_millis() as i64);
                    ctx.history.record_task(&row).await?;
                    sink(&PipelineEvent::TaskFinished {
                        pipeline: &pipeline.name,
                        task,
                        index,
                        total,
                        try_number,
                        result: &result,
                        elapsed,
                        retry_in: Some(delay),
                    });
                    let mut cancel = ctx.cancel.clone();
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = cancel.wait_for(|c| *c) => {}
                    }
                    if *ctx.cancel.borrow() {
                        return Ok(Err(format!("{e} (retry cancelled: the scheduler is stopping)")));
                    }
                    try_number += 1;
                    continue;
                }
                row.state = "failed".into();
                ctx.history.record_task(&row).await?;
                sink(&PipelineEvent::TaskFinished { pipeline: &pipeline.name, task, index, total, try_number, result: &result, elapsed, retry_in: None });
                if pipeline.alert_on_failure && !cancelled {
                    let why = if transient {
                        format!("failed {try_number} times (retries exhausted)")
                    } else {
                        "failed (not retried: the error is not transient)".to_string()
                    };
                    let a = Alert {
                        pipeline: pipeline.name.clone(),
                        task: Some(task.name.clone()),
                        severity: "error".into(),
                        title: format!("dp: task {}.{} failed", pipeline.name, task.name),
                        message: format!("task {} of pipeline {} {why}:\n{e}", task.name, pipeline.name),
                        try_number: Some(try_number as i64),
                        run_id: Some(run_id.to_string()),
                        log: Some(if log.exists() { log.display().to_string() } else { "the dp process's log (stderr)".into() }),
                    };
                    let record = ctx.alerter.send(&a).await;
                    sink(&PipelineEvent::Alerted { pipeline: &pipeline.name, record: &record });
                }
                return Ok(Err(e.clone()));
            }
        }
    }
}

/// Runs a dp task on a thread (and runtime) of its own, so tasks that run
/// side by side use several cores: a dp command's work is not `Send` and
/// partly synchronous (loading the project), so on the pipeline's own task
/// it would only interleave. When the run stops waiting (cancellation),
/// the thread finishes on its own or ends with the process.
async fn on_own_thread(executor: Arc<dyn TaskExecutor>, pipeline: Pipeline, task: Task) -> Result<String, String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let name = format!("dp-task-{}", task.name);
    let spawned = std::thread::Builder::new().name(name).spawn(move || {
        let r = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
            Ok(rt) => {
                let r = rt.block_on(executor.execute(&pipeline, &task));
                rt.shutdown_background();
                r
            }
            Err(e) => Err(format!("could not start a runtime for the task: {e}")),
        };
        let _ = tx.send(r);
    });
    if let Err(e) = spawned {
        return Err(format!("could not start a thread for the task: {e}"));
    }
    rx.await.unwrap_or_else(|_| Err("the task's thread stopped before it finished (a panic; see the log above)".into()))
}

/// Runs one try; alerts once if it outlives `long_running`; stops it when
/// the scheduler is cancelled.
async fn execute_watched(
    ctx: &RunContext,
    pipeline: &Pipeline,
    task: &Task,
    run_id: &str,
    try_number: u32,
    log: &std::path::Path,
    sink: Sink<'_>,
) -> Result<String, String> {
    let work = async {
        match &task.kind {
            TaskKind::Shell { command } => shell(ctx, pipeline, task, command, run_id, try_number, log).await,
            _ => on_own_thread(ctx.executor.clone(), pipeline.clone(), task.clone()).await,
        }
    };
    tokio::pin!(work);
    let mut cancel = ctx.cancel.clone();
    let mut warned = ctx.long_running.is_none();
    let long = ctx.long_running.unwrap_or(Duration::MAX / 4);
    let timer = tokio::time::sleep(long);
    tokio::pin!(timer);
    loop {
        tokio::select! {
            r = &mut work => return r,
            _ = cancel.wait_for(|c| *c) => return Err("cancelled: the scheduler was stopped (SIGTERM) while this task ran".into()),
            _ = &mut timer, if !warned => {
                warned = true;
                let a = Alert {
                    pipeline: pipeline.name.clone(),
                    task: Some(task.name.clone()),
                    severity: "warning".into(),
                    title: format!("dp: task {}.{} is running long", pipeline.name, task.name),
                    message: format!("task {} of pipeline {} has run for more than {}s (try {try_number})", task.name, pipeline.name, long.as_secs()),
                    try_number: Some(try_number as i64),
                    run_id: Some(run_id.to_string()),
                    log: None,
                };
                let record = ctx.alerter.send(&a).await;
                sink(&PipelineEvent::Alerted { pipeline: &pipeline.name, record: &record });
            }
        }
    }
}

/// A shell task: `sh -c COMMAND` in the project root, its output kept in
/// the task's log file. Exit status 75 (EX_TEMPFAIL) marks the failure as
/// transient, as do the usual error texts in its output.
async fn shell(
    ctx: &RunContext,
    pipeline: &Pipeline,
    task: &Task,
    command: &str,
    run_id: &str,
    try_number: u32,
    log: &std::path::Path,
) -> Result<String, String> {
    let out = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(&ctx.project_root)
        .env("DP_PIPELINE", &pipeline.name)
        .env("DP_TASK", &task.name)
        .env("DP_RUN_ID", run_id)
        .env("DP_TRY_NUMBER", try_number.to_string())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("starting `sh -c {command}`: {e}"))?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    if let Some(dir) = log.parent() {
        let _ = std::fs::create_dir_all(dir);
        let _ = std::fs::write(log, &text);
    }
    if out.status.success() {
        return Ok(format!("exit 0, {} bytes of output", text.len()));
    }
    let tail: Vec<&str> = text.lines().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect();
    let code = out.status.code().map(|c| c.to_string()).unwrap_or_else(|| "signal".into());
    let prefix = if out.status.code() == Some(75) { "transient: " } else { "" };
    Err(format!("{prefix}`{command}` exited with status {code}: {}", tail.join("\n").trim()))
}
