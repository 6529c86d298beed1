//! `dp check [checkpoint ...] [-s ...]`: runs quality checkpoints
//! (`checkpoints/*.yml`), one line per expectation and a summary; exit 1 on
//! an error-severity failure. Also the checkpoint gates of `dp build`.

use indexmap::IndexSet;
use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use crate::cli::Printer;
use crate::cli::args::{CheckArgs, GlobalArgs};
use crate::cli::context::{LoadArgs, Loaded, load, select};
use crate::cli::printer::Tone;
use crate::engine::Engine;
use crate::project::nodes::ResourceType;
use crate::quality::run::{CheckpointRun, ExpectationResult, RunConfig};
use crate::quality::{Recorded, Resolved, Severity, gate, record, resolve, run as qrun, spec};
use crate::util::fmt_thousands;

/// Whether checks share one query per relation (`DP_CHECK_BATCH=off` runs
/// one query per expectation, through DataFusion's SQL planner).
fn batched() -> bool {
    !crate::util::switched_off("DP_CHECK_BATCH")
}

pub async fn run(g: &GlobalArgs, a: &CheckArgs, printer: &Printer) -> anyhow::Result<ExitCode> {
    let t = std::time::Instant::now();
    let l = load(g, LoadArgs { threads: a.threads, which: "check", ..Default::default() }, printer)?;
    tracing::debug!(elapsed = ?t.elapsed(), "project loaded");
    let all = spec::load(&l.fs, &l.project.settings.paths.checkpoints)?;
    tracing::debug!(elapsed = ?t.elapsed(), "checkpoint files parsed");
    if all.is_empty() {
        printer.warn(format!(
            "no checkpoints found in {}\n  hint: add a checkpoints/<name>.yml (see README.md, \"Quality checkpoints\")",
            l.project.settings.paths.checkpoints.join(", ")
        ));
        return Ok(ExitCode::SUCCESS);
    }
    let mut chosen = vec![];
    for name in &a.checkpoints {
        match all.iter().find(|c| &c.name == name) {
            Some(c) => chosen.push(c.clone()),
            None => {
                let hint = crate::util::suggest(name, all.iter().map(|c| c.name.as_str()))
                    .map(|s| format!("did you mean `{s}`?"))
                    .unwrap_or_else(|| format!("defined: {}", all.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")));
                anyhow::bail!("checkpoint '{name}' is not defined\n  hint: {hint}");
            }
        }
    }
    if chosen.is_empty() {
        chosen = all;
    }
    let only: Option<IndexSet<String>> = if a.select.select.is_empty() && a.select.exclude.is_empty() && a.select.selector.is_none() {
        None
    } else {
        Some(select(&l, &a.select, vec![ResourceType::Model, ResourceType::Seed, ResourceType::Source, ResourceType::Snapshot], printer)?)
    };
    let mut resolved = vec![];
    for cp in &chosen {
        let mut r = resolve(&l.project, &l.dag, &l.fs, cp)?;
        if let Some(only) = &only {
            r.bound.retain(|b| only.contains(&b.relation.unique_id));
        }
        if !r.bound.is_empty() {
            resolved.push(r);
        }
    }
    let total: usize = resolved.iter().map(Resolved::expectation_count).sum();
    printer.info(format!("Found {} checkpoints with {} expectations", resolved.len(), fmt_thousands(total as u64)));
    if resolved.is_empty() {
        printer.warn("nothing to check: the selection matched no validated relation");
        return Ok(ExitCode::SUCCESS);
    }
    tracing::debug!(elapsed = ?t.elapsed(), "checkpoints resolved");
    let engine = Engine::new(&l.project, None)?;
    engine.preflight().await?;
    tracing::debug!(elapsed = ?t.elapsed(), "engine ready");
    // Every schema, column, condition and other relation is checked before any query runs.
    let mut prepared = vec![];
    for r in resolved {
        let schemas = qrun::check(&engine, &r).await?;
        prepared.push((Arc::new(r), schemas));
    }
    tracing::debug!(elapsed = ?t.elapsed(), "checkpoints checked against their relations");
    printer.info("");
    let cfg = RunConfig { batch: batched(), concurrency: l.project.settings.target.threads.max(1), now: chrono::Utc::now() };
    let target = l.project.settings.target_dir();
    let mut index = 0;
    let mut runs = vec![];
    for (r, schemas) in &prepared {
        let mut run = qrun::run(&engine, r, schemas, &cfg, "check").await;
        let rec = record(&engine, &target, &l.project.settings.project_name, r, &mut run).await;
        let held = printer.hold();
        for res in &run.results {
            index += 1;
            print_result(printer, index, total, res);
        }
        report_recorded(printer, &run, &rec);
        drop(held);
        runs.push(run);
    }
    Ok(if summarize(printer, &runs, t.elapsed()) { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn print_result(printer: &Printer, i: usize, total: usize, r: &ExpectationResult) {
    let what = format!("{} {}", r.relation, r.label);
    let n = r.unexpected_count.unwrap_or(0);
    let (verb, tone) = match (r.success, r.severity, &r.exception) {
        (_, _, Some(_)) => ("ERROR".to_string(), Tone::Bad),
        (true, _, _) => ("PASS".to_string(), Tone::Good),
        (false, Severity::Warn, _) => (format!("WARN {n}"), Tone::Warn),
        (false, Severity::Error, _) => (format!("FAIL {n}"), Tone::Bad),
    };
    let fields = if printer.is_json() {
        serde_json::json!({"relation": r.relation, "expectation": r.expectation, "success": r.success, "unexpected_count": r.unexpected_count, "observed_value": r.observed_value})
    } else {
        serde_json::Value::Null
    };
    printer.node_line(i, total, &verb, &what, &verb, tone, Some(r.duration), fields);
}

fn report_recorded(printer: &Printer, run: &CheckpointRun, rec: &Recorded) {
    for w in &rec.warnings {
        printer.warn(w);
    }
    if let Some(n) = &rec.notify {
        printer.info(n);
    }
    let verdict = if run.success() { printer.good("PASSED") } else { printer.bad("FAILED") };
    let docs = rec.docs_page.as_ref().map(|p| format!("; Data Docs: {}", p.display())).unwrap_or_default();
    printer.info(format!(
        "Checkpoint {} {verdict}: {} of {} expectations passed in {:.2}s{docs}",
        run.checkpoint,
        run.passed(),
        run.results.len(),
        run.duration.as_secs_f64()
    ));
}

/// One failing expectation, for the summary and build gates.
pub fn describe_failure(r: &ExpectationResult) -> String {
    let mut s = format!("{} on {} ({}:{})", r.label, r.relation, r.file, r.line);
    if let Some(e) = &r.exception {
        s.push_str(&format!(": could not be evaluated: {e}"));
        return s;
    }
    match (r.unexpected_count, r.element_count) {
        (Some(u), Some(n)) => {
            s.push_str(&format!(": {} unexpected of {} ({:.2}%)", fmt_thousands(u as u64), fmt_thousands(n as u64), r.unexpected_percent.unwrap_or(0.0)))
        }
        (Some(u), None) => s.push_str(&format!(": {} unexpected rows", fmt_thousands(u as u64))),
        _ => s.push_str(&format!(": observed {}", r.observed_value)),
    }
    if !r.partial_unexpected_list.is_empty() {
        let sample: Vec<String> = r.partial_unexpected_list.iter().take(5).map(|v| v.to_string()).collect();
        s.push_str(&format!("; e.g. {}", sample.join(", ")));
    }
    if let Some(t) = &r.failed_rows_table {
        s.push_str(&format!("\n  failing rows in {t}"));
    }
    s
}

fn summarize(printer: &Printer, runs: &[CheckpointRun], elapsed: std::time::Duration) -> bool {
    let all: Vec<&ExpectationResult> = runs.iter().flat_map(|r| &r.results).collect();
    let pass = all.iter().filter(|r| r.success).count();
    let warn = all.iter().filter(|r| !r.success && r.severity == Severity::Warn).count();
    let err = all.iter().filter(|r| !r.success && r.severity == Severity::Error).count();
    printer.info("");
    printer.info(format!("Finished {} checkpoints ({} expectations) in {:.2}s.", runs.len(), all.len(), elapsed.as_secs_f64()));
    if err > 0 {
        printer.info("");
        printer.info(printer.bad("Completed with errors:"));
        for r in all.iter().filter(|r| !r.success && r.severity == Severity::Error) {
            printer.error(format!("Failure: {}", describe_failure(r)));
        }
    } else {
        printer.info(printer.good("Completed successfully"));
    }
    for r in all.iter().filter(|r| !r.success && r.severity == Severity::Warn) {
        printer.warn(describe_failure(r));
    }
    printer.info("");
    printer.info(format!("Done. PASS={pass} WARN={warn} ERROR={err} TOTAL={}", all.len()));
    err == 0
}

/// The checkpoint gates of a `dp build` over `chosen`.
pub struct BuildGates {
    pub plans: Vec<gate::GatePlan>,
    /// The gates' runs (in completion order).
    pub runs: Arc<Mutex<Vec<CheckpointRun>>>,
}

impl BuildGates {
    pub fn plan(l: &Loaded, chosen: &IndexSet<String>) -> anyhow::Result<BuildGates> {
        let checkpoints = spec::load(&l.fs, &l.project.settings.paths.checkpoints)?;
        let plans = gate::plan(&l.project, &l.dag, &l.fs, &checkpoints, chosen)?;
        Ok(BuildGates { plans, runs: Arc::new(Mutex::new(vec![])) })
    }

    /// Adds the gate nodes to the project, the build order and its edges.
    pub fn apply(&self, project: &mut crate::project::load::Project, order: &mut Vec<String>, edges: &mut Vec<(String, String)>) {
        let pkg = project.settings.project_name.clone();
        for p in &self.plans {
            project.nodes.insert(p.uid.clone(), p.node(&pkg));
            gate::insert_in_order(order, p);
            edges.extend(p.edges());
        }
    }

    /// The runner's callbacks for the gate nodes.
    pub fn virtual_nodes(&self, target: std::path::PathBuf, package: String, threads: usize) -> HashMap<String, crate::runner::VirtualNode> {
        let mut out: HashMap<String, crate::runner::VirtualNode> = HashMap::new();
        for p in &self.plans {
            let resolved = Arc::new(p.resolved.clone());
            let runs = self.runs.clone();
            let target = target.clone();
            let package = package.clone();
            out.insert(
                p.uid.clone(),
                Arc::new(move |engine: Arc<Engine>| {
                    let resolved = resolved.clone();
                    let runs = runs.clone();
                    let target = target.clone();
                    let package = package.clone();
                    let fut: futures::future::BoxFuture<'static, anyhow::Result<crate::runner::test::TestOutcome>> = Box::pin(async move {
                        let schemas = qrun::check(&engine, &resolved).await?;
                        let cfg = RunConfig { batch: batched(), concurrency: threads.max(1), now: chrono::Utc::now() };
                        let mut run = qrun::run(&engine, &resolved, &schemas, &cfg, "build").await;
                        let rec = record(&engine, &target, &package, &resolved, &mut run).await;
                        let outcome = gate_outcome(&run, &rec);
                        runs.lock().unwrap().push(run);
                        Ok::<_, anyhow::Error>(outcome)
                    });
                    fut
                }),
            );
        }
        out
    }
}

fn gate_outcome(run: &CheckpointRun, rec: &Recorded) -> crate::runner::test::TestOutcome {
    use crate::runner::Status;
    let failed: Vec<&ExpectationResult> = run.results.iter().filter(|r| !r.success).collect();
    let errors = run.failed(Severity::Error);
    let status = if errors > 0 {
        Status::Fail
    } else if !failed.is_empty() {
        Status::Warn
    } else {
        Status::Pass
    };
    let message = if failed.is_empty() {
        None
    } else {
        let mut m = format!("{} of {} expectations failed ({errors} error-severity):", failed.len(), run.results.len());
        for r in failed.iter().take(10) {
            m.push_str(&format!("\n    {}", describe_failure(r).replace('\n', "\n    ")));
        }
        if failed.len() > 10 {
            m.push_str(&format!("\n    ... and {} more", failed.len() - 10));
        }
        if let Some(p) = &rec.docs_page {
            m.push_str(&format!("\n  Data Docs: {}", p.display()));
        }
        Some(m)
    };
    crate::runner::test::TestOutcome { status, failures: failed.len() as u64, message, stored_in: None, sample: None }
}
