//! `dp pipeline run NAME | status | list`, and what `dp scheduler` and
//! `dp alert` share with them: the pipelines' context and the lines a run
//! prints. Tasks that are dp commands run in-process through the commands'
//! own functions ([`CliExecutor`]).

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::cli::Printer;
use crate::cli::args::{GlobalArgs, LoadCmdArgs, LoadModeArg, PipelineAction, PublishArgs, RunArgs, SelectArgs};
use crate::cli::printer::Tone;
use crate::config::Settings;
use crate::orchestrate::alert::Alerter;
use crate::orchestrate::history::History;
use crate::orchestrate::run::{PipelineEvent, RunContext, TaskExecutor, run_pipeline};
use crate::orchestrate::spec::{Pipeline, Pipelines, Selection, Task, TaskKind};
use crate::runner::Status;
use crate::runner::events::{Event, EventSink};
use crate::storage::Warehouse;

/// Everything a pipeline command needs.
pub struct Setup {
    pub settings: Settings,
    pub pipelines: Pipelines,
    pub ctx: RunContext,
    pub cancel: tokio::sync::watch::Sender<bool>,
    pub warehouse: Warehouse,
}

/// Loads settings and pipelines (validated), resolves the alert channels
/// (their variables must be set) and opens the history tables.
pub fn setup(g: &GlobalArgs) -> anyhow::Result<Setup> {
    let settings = crate::cli::context::settings(g, None)?;
    let fs = crate::fs::OsFs::new(&settings.root);
    let pipelines = crate::orchestrate::spec::load(&fs)?;
    let warehouse = Warehouse::open(&settings)?;
    if let Some(d) = warehouse.local_dir() {
        std::fs::create_dir_all(d)?;
    }
    let publisher = crate::postgres::publisher(&settings)?;
    let env = |k: &str| std::env::var(k).ok();
    let alerter = Alerter::new(pipelines.alerts.as_ref(), &settings.root, &env, warehouse.clone(), publisher)?;
    let long_running = pipelines.alerts.as_ref().and_then(|a| a.long_running.as_deref()).and_then(crate::orchestrate::spec::parse_duration);
    let (cancel, cancel_rx) = tokio::sync::watch::channel(false);
    let ctx = RunContext {
        history: Arc::new(History::new(warehouse.clone())),
        executor: Arc::new(CliExecutor { g: g.clone() }),
        alerter: Arc::new(alerter),
        project_root: settings.root.clone(),
        log_dir: settings.target_dir().join("pipeline_logs"),
        long_running,
        max_active_tasks: settings.target.threads.max(1),
        cancel: cancel_rx,
    };
    Ok(Setup { settings, pipelines, ctx, cancel, warehouse })
}

pub async fn run(g: &GlobalArgs, action: PipelineAction, printer: &Printer) -> anyhow::Result<ExitCode> {
    match action {
        PipelineAction::Run { name } => {
            let s = setup(g)?;
            let p = s.pipelines.get(&name)?;
            let sink = |e: &PipelineEvent<'_>| print_event(printer, e);
            let r = run_pipeline(&s.ctx, p, "manual", None, &sink).await?;
            Ok(if r.state == "success" { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        PipelineAction::Status { name, runs } => status(g, name.as_deref(), runs, printer).await,
        PipelineAction::List { next } => list(g, next, printer),
        PipelineAction::Health { dry_run } => super::health::run(g, dry_run, printer).await,
    }
}

fn table() -> comfy_table::Table {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    t
}

fn fmt_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn fmt_ms(ms: i64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

fn first_line(s: &str) -> String {
    let l = s.lines().next().unwrap_or("");
    if l.chars().count() > 100 { format!("{}…", l.chars().take(100).collect::<String>()) } else { l.to_string() }
}

async fn status(g: &GlobalArgs, only: Option<&str>, runs: usize, printer: &Printer) -> anyhow::Result<ExitCode> {
    let settings = crate::cli::context::settings(g, None)?;
    let fs = crate::fs::OsFs::new(&settings.root);
    let pipelines = crate::orchestrate::spec::load(&fs)?;
    if let Some(n) = only {
        pipelines.get(n)?;
    }
    let history = History::new(Warehouse::open(&settings)?);
    let all_runs = history.runs().await?;
    let all_tasks = history.tasks().await?;
    let mut t = table();
    t.set_header(vec!["pipeline", "task", "state", "started (UTC)", "duration", "tries", "trigger", "error"]);
    for p in pipelines.pipelines.values().filter(|p| only.is_none_or(|n| n == p.name)) {
        let mine: Vec<_> = all_runs.iter().filter(|r| r.pipeline == p.name).collect();
        if mine.is_empty() {
            t.add_row(vec![p.name.clone(), String::new(), "never run".into(), String::new(), String::new(), String::new(), String::new(), String::new()]);
            continue;
        }
        for r in mine.iter().rev().take(runs.max(1)) {
            let dur = r.ended_at.map(|e| fmt_ms((e - r.started_at).num_milliseconds())).unwrap_or_else(|| "…".into());
            t.add_row(vec![
                p.name.clone(),
                String::new(),
                r.state.clone(),
                fmt_time(r.started_at),
                dur,
                String::new(),
                r.trigger.clone(),
                r.error.as_deref().map(first_line).unwrap_or_default(),
            ]);
            for task in &p.tasks {
                let tries: Vec<_> = all_tasks.iter().filter(|x| x.run_id == r.run_id && x.task == task.name).collect();
                let Some(last) = tries.iter().max_by_key(|x| x.try_number) else {
                    continue;
                };
                let first = tries.iter().min_by_key(|x| x.try_number).expect("non-empty");
                let dur = last.ended_at.map(|e| fmt_ms((e - first.started_at).num_milliseconds())).unwrap_or_else(|| "…".into());
                t.add_row(vec![
                    String::new(),
                    task.name.clone(),
                    last.state.clone(),
                    fmt_time(first.started_at),
                    dur,
                    last.try_number.to_string(),
                    String::new(),
                    last.error.as_deref().map(first_line).unwrap_or_default(),
                ]);
            }
        }
    }
    printer.data(t.to_string());
    Ok(ExitCode::SUCCESS)
}

fn list(g: &GlobalArgs, next: usize, printer: &Printer) -> anyhow::Result<ExitCode> {
    let settings = crate::cli::context::settings(g, None)?;
    let fs = crate::fs::OsFs::new(&settings.root);
    let pipelines = crate::orchestrate::spec::load(&fs)?;
    if pipelines.pipelines.is_empty() {
        printer.warn("no pipelines defined\n  hint: add pipelines/*.yml (see README, \"Pipelines\")");
        return Ok(ExitCode::SUCCESS);
    }
    let now = chrono::Utc::now();
    let mut t = table();
    t.set_content_arrangement(comfy_table::ContentArrangement::Dynamic).set_width(150);
    t.set_header(vec!["pipeline", "schedule", "after", "tasks", "next fire (UTC)", "defined in"]);
    for p in pipelines.pipelines.values() {
        let sched = p.schedule.as_ref().map(|s| if s.tz == chrono_tz::UTC { s.expr.clone() } else { format!("{} ({})", s.expr, s.tz) }).unwrap_or_default();
        let fires = crate::orchestrate::scheduler::next_fires(p, now, next.max(1));
        let next_s = if fires.is_empty() {
            if p.after.is_empty() { "manual".into() } else { "after upstream".into() }
        } else {
            fires.iter().map(|f| fmt_time(*f)).collect::<Vec<_>>().join("\n")
        };
        let name = match &p.description {
            Some(d) => format!("{}\n{}", p.name, d),
            None => p.name.clone(),
        };
        t.add_row(vec![
            name,
            sched,
            p.after.join(", "),
            p.tasks.iter().map(|x| format!("{} ({})", x.name, x.kind.name())).collect::<Vec<_>>().join("\n"),
            next_s,
            format!("{}:{}", p.file.display(), p.line),
        ]);
    }
    printer.data(t.to_string());
    Ok(ExitCode::SUCCESS)
}

/// The lines a pipeline run prints (stderr; JSON with `--log-format json`).
pub fn print_event(printer: &Printer, e: &PipelineEvent<'_>) {
    let fields = |pipeline: &str, task: &Task, status: &str, try_number: u32| serde_json::json!({"pipeline": pipeline, "task": task.name, "kind": task.kind.name(), "status": status, "try": try_number});
    match e {
        PipelineEvent::RunStarted { pipeline, run_id, trigger, tasks } => {
            printer.info(format!("Running pipeline {pipeline} ({trigger}, run {}): {tasks} tasks", &run_id[..8]));
        }
        PipelineEvent::TaskStarted { pipeline, task, index, total, try_number } => {
            let what = format!("{pipeline}.{} [{}]", task.name, task.kind.name());
            let t = if *try_number > 1 { format!(" (try {try_number} of {})", task.retry.retries + 1) } else { String::new() };
            printer.info(format!("{index} of {total} START task {what}{t}"));
        }
        PipelineEvent::TaskFinished { pipeline, task, index, total, try_number, result, elapsed, retry_in } => {
            let what = format!("{pipeline}.{}", task.name);
            match (result, retry_in) {
                (Ok(_), _) => {
                    printer.node_line(*index, *total, "OK task", &what, "SUCCESS", Tone::Good, Some(*elapsed), fields(pipeline, task, "success", *try_number))
                }
                (Err(err), Some(d)) => {
                    let tag = format!("RETRY {try_number}/{} in {:.1}s", task.retry.retries, d.as_secs_f64());
                    printer.node_line(
                        *index,
                        *total,
                        "RETRY task",
                        &what,
                        &tag,
                        Tone::Warn,
                        Some(*elapsed),
                        fields(pipeline, task, "up_for_retry", *try_number),
                    );
                    printer.warn(first_line(err));
                }
                (Err(err), None) => {
                    printer.node_line(*index, *total, "ERROR task", &what, "ERROR", Tone::Bad, Some(*elapsed), fields(pipeline, task, "failed", *try_number));
                    printer.error(err);
                }
            }
        }
        PipelineEvent::TaskSkipped { pipeline, task, index, total, reason } => {
            let what = format!("{pipeline}.{}", task.name);
            printer.node_line(*index, *total, "SKIP task", &what, "SKIPPED", Tone::Warn, None, fields(pipeline, task, "upstream_failed", 0));
            printer.info(format!("  ({reason})"));
        }
        PipelineEvent::Alerted { pipeline, record } => {
            if record.deliveries.is_empty() {
                printer.info(format!("Alert for {pipeline} recorded in data_platform.alert_history (no channels configured)"));
            }
            for d in &record.deliveries {
                match &d.error {
                    None => printer.info(format!("Alert for {pipeline} sent via {}", d.channel)),
                    Some(err) => printer.warn(format!("alert for {pipeline} not delivered via {}: {err}", d.channel)),
                }
            }
            if let Some(err) = &record.history_error {
                printer.warn(format!("alert for {pipeline} not recorded: {err}"));
            }
        }
        PipelineEvent::RunFinished { pipeline, run_id, state, elapsed } => {
            let tag = state.to_uppercase();
            let tag = if *state == "success" { printer.good(&tag) } else { printer.bad(&tag) };
            printer.info(format!("Pipeline {pipeline}: {tag} in {:.2}s (run {})", elapsed.as_secs_f64(), &run_id[..8]));
        }
        PipelineEvent::Scheduler { message } => printer.info(message),
    }
}

/// Runs dp tasks through the commands' functions, in this process.
pub struct CliExecutor {
    pub g: GlobalArgs,
}

/// Collects the errors of a run's nodes from its events.
#[derive(Default)]
struct Errors(Mutex<Vec<String>>);

impl EventSink for Errors {
    fn on_event(&self, event: &Event<'_>) {
        if let Event::NodeFinished { node, result, .. } = event
            && matches!(result.status, Status::Error | Status::Fail)
        {
            self.0.lock().unwrap().push(format!("{}: {}", node.name, result.message));
        }
    }
}

fn select_args(s: &Selection) -> SelectArgs {
    SelectArgs { select: s.select.clone(), exclude: s.exclude.clone(), ..Default::default() }
}

#[async_trait::async_trait(?Send)]
impl TaskExecutor for CliExecutor {
    async fn execute(&self, _pipeline: &Pipeline, task: &Task) -> Result<String, String> {
        use super::run::Kind;
        let printer = Printer::new(self.g.quiet, self.g.log_format);
        let g = &self.g;
        let err = |e: anyhow::Error| format!("{e:#}");
        let (kind, sel) = match &task.kind {
            TaskKind::Seed(s) => (Kind::Seed, s),
            TaskKind::Run(s) => (Kind::Run, s),
            TaskKind::Test(s) => (Kind::Test, s),
            TaskKind::Build(s) => (Kind::Build, s),
            TaskKind::Snapshot(s) => (Kind::Snapshot, s),
            TaskKind::Publish(s) => {
                let a = PublishArgs { select: select_args(s), all: s.all, full_refresh: s.full_refresh };
                let code = super::publish::run(g, &a, &printer).await.map_err(err)?;
                return if code == ExitCode::SUCCESS {
                    Ok("published".into())
                } else {
                    Err("dp publish: some relations failed to publish (see the lines above)".into())
                };
            }
            TaskKind::Load(s) => {
                let a = LoadCmdArgs { select: select_args(s), mode: LoadModeArg::Replace, schema: None };
                let code = super::load::run(g, &a, &printer).await.map_err(err)?;
                return if code == ExitCode::SUCCESS { Ok("loaded".into()) } else { Err("dp load: some sources failed to load (see the lines above)".into()) };
            }
            TaskKind::Maintain(s) => {
                let a = crate::cli::args::MaintainArgs { select: select_args(s), ..Default::default() };
                let code = super::maintain::run(g, &a, &printer).await.map_err(err)?;
                return if code == ExitCode::SUCCESS { Ok("maintained".into()) } else { Err("dp maintain: some tables failed (see the lines above)".into()) };
            }
            TaskKind::Ingest(s) => {
                let a = crate::cli::args::IngestArgs { select: select_args(s), full_refresh: s.full_refresh, threads: None };
                let code = super::ingest::run(g, &a, &printer).await.map_err(err)?;
                return if code == ExitCode::SUCCESS { Ok("ingested".into()) } else { Err("dp ingest: some sources failed (see the lines above)".into()) };
            }
            TaskKind::Check(s) => {
                // `check: [raw_data_checkpoint, ...]` names checkpoints; `exclude` is not used.
                let a = crate::cli::args::CheckArgs { checkpoints: s.select.clone(), ..Default::default() };
                let code = super::check::run(g, &a, &printer).await.map_err(err)?;
                return if code == ExitCode::SUCCESS {
                    Ok("checked".into())
                } else {
                    Err("dp check: an error-severity expectation failed (see the lines above)".into())
                };
            }
            TaskKind::Health => {
                let s = super::health::snapshot(g, false, &printer).await.map_err(err)?;
                return Ok(super::health::summary(&s));
            }
            TaskKind::Shell { .. } => unreachable!("shell tasks run in orchestrate"),
        };
        let a = RunArgs { select: select_args(sel), full_refresh: sel.full_refresh, ..Default::default() };
        let errors = Errors::default();
        let code = super::run::run_with(g, &a, kind, &printer, Some(&errors)).await.map_err(err)?;
        if code == ExitCode::SUCCESS {
            return Ok("done".into());
        }
        let list = errors.0.into_inner().unwrap();
        Err(if list.is_empty() { format!("dp {} failed (see the lines above)", task.kind.name()) } else { list.join("\n") })
    }
}

/// `--grace` and friends.
pub fn duration_arg(s: &str) -> anyhow::Result<Duration> {
    crate::orchestrate::spec::parse_duration(s).ok_or_else(|| anyhow::anyhow!("'{s}' is not a duration\n  hint: write e.g. 30s, 5m"))
}
