//! `dp run`, `dp seed`, `dp test` and `dp build`: compile, then execute the
//! selected nodes in parallel in DAG order, with dbt-style output and
//! target/run_results.json. `build` makes each node's children wait for its
//! tests, so an error-severity failure skips what depends on it.

use indexmap::IndexSet;
use std::process::ExitCode;
use std::sync::Arc;

use crate::cli::Printer;
use crate::cli::args::{GlobalArgs, RunArgs};
use crate::cli::context::{LoadArgs, load, select, write_compiled_and_manifest};
use crate::cli::reporter::{Reporter, show_failures, summarize};
use crate::compile::{CompileOptions, compile_prepared};
use crate::engine::{Engine, existing_tables, parse_size};
use crate::graph::select::is_empty_node;
use crate::lineage::openlineage::{Config, Emitter, Outcome};
use crate::project::nodes::{Materialization, ResourceType};
use crate::runner::batch::{self, Batches};
use crate::runner::events::{Event, EventSink, Fanout};
use crate::runner::microbatch::BatchResults;
use crate::runner::results::{Args, RunResultsFile};
use crate::runner::test::TestFlags;
use crate::runner::{RunOptions, execute, run_statements};
use std::collections::HashMap;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Run,
    Seed,
    Test,
    Build,
    Snapshot,
}

impl Kind {
    fn which(self) -> &'static str {
        match self {
            Kind::Run => "run",
            Kind::Seed => "seed",
            Kind::Test => "test",
            Kind::Build => "build",
            Kind::Snapshot => "snapshot",
        }
    }

    fn types(self) -> Vec<ResourceType> {
        match self {
            Kind::Run => vec![ResourceType::Model],
            Kind::Seed => vec![ResourceType::Seed],
            Kind::Test => vec![ResourceType::Test, ResourceType::UnitTest],
            // dbt 1.11 lists exposures in a build, as NO-OP.
            Kind::Build => {
                vec![
                    ResourceType::Model,
                    ResourceType::Seed,
                    ResourceType::Snapshot,
                    ResourceType::Test,
                    ResourceType::UnitTest,
                    ResourceType::Exposure,
                    ResourceType::SavedQuery,
                ]
            }
            Kind::Snapshot => vec![ResourceType::Snapshot],
        }
    }
}

impl Kind {
    /// The command a run_results.json names (`args.which`).
    fn from_which(which: &str) -> Option<Kind> {
        [Kind::Run, Kind::Seed, Kind::Test, Kind::Build, Kind::Snapshot].into_iter().find(|k| k.which() == which)
    }
}

/// `dp retry`: the last run's command again, on the nodes that ended in
/// error, fail or skipped (dbt's `retry`), with its flags.
pub async fn retry(g: &GlobalArgs, threads: Option<usize>, printer: &Printer) -> anyhow::Result<ExitCode> {
    let target = crate::cli::context::settings(g, None)?.target_dir();
    let (args, ids) = crate::runner::results::retry_plan(&target)?;
    let Some(kind) = Kind::from_which(&args.which) else {
        anyhow::bail!(
            "dp retry: the last command was '{}', which dp cannot retry\n  hint: retry works after dp run, seed, snapshot, test or build",
            args.which
        );
    };
    if ids.is_empty() {
        printer.info("Nothing to do: the last run had no failed or skipped nodes.");
        return Ok(ExitCode::SUCCESS);
    }
    // the last run's --defer and --state hold for its retry, as in dbt
    let select = crate::cli::defer::select_args(&args);
    let a = RunArgs {
        select,
        threads,
        full_refresh: args.full_refresh,
        store_failures: args.store_failures,
        event_time_start: args.event_time_start.clone(),
        event_time_end: args.event_time_end.clone(),
        ..Default::default()
    };
    // microbatch models run only their failed batches, planned from the same "now"
    let (batches, now) = crate::runner::microbatch::retry_batches(&target);
    execute_kind(g, &a, kind, Some((ids.into_iter().collect(), batches, now)), printer, None).await
}

pub async fn run(g: &GlobalArgs, a: &RunArgs, kind: Kind, printer: &Printer) -> anyhow::Result<ExitCode> {
    execute_kind(g, a, kind, None, printer, None).await
}

/// [`run`] with one more subscriber to the run's events (pipeline tasks
/// collect their nodes' errors this way).
pub async fn run_with(g: &GlobalArgs, a: &RunArgs, kind: Kind, printer: &Printer, extra: Option<&dyn EventSink>) -> anyhow::Result<ExitCode> {
    execute_kind(g, a, kind, None, printer, extra).await
}

/// What `dp retry` runs: the nodes, microbatch models' batches of the last
/// run, and the time that run planned batches from.
type Retry = (IndexSet<String>, HashMap<String, BatchResults>, Option<chrono::DateTime<chrono::Utc>>);

/// Runs `kind` on the selection of `a`, or on exactly `only` (retry), with
/// `extra` subscribed to the run's events.
async fn execute_kind(
    g: &GlobalArgs,
    a: &RunArgs,
    kind: Kind,
    only: Option<Retry>,
    printer: &Printer,
    extra: Option<&dyn EventSink>,
) -> anyhow::Result<ExitCode> {
    let t = std::time::Instant::now();
    let mut microbatch = crate::runner::microbatch::Options::from_flags(a.event_time_start.as_deref(), a.event_time_end.as_deref())?;
    let only = only.map(|(ids, batches, now)| {
        microbatch.retry = batches;
        microbatch.now = now.unwrap_or(microbatch.now);
        ids
    });
    let which = kind.which();
    let l = load(g, LoadArgs { threads: a.threads, full_refresh: a.full_refresh, which, store_failures: a.store_failures }, printer)?;
    let types = kind.types();
    // What refs resolve to is found while the selection is computed.
    let (prepared, selected) = crate::util::beside(
        || crate::compile::prepare(&l.project),
        || -> anyhow::Result<IndexSet<String>> {
            match only {
                // Nodes of the last run that no longer exist are left out.
                Some(ids) => Ok(ids.into_iter().filter(|u| l.project.nodes.contains_key(u)).collect()),
                None => select(&l, &a.select, types.clone(), printer),
            }
        },
    );
    let selected = selected?;
    let chosen: IndexSet<String> = selected
        .into_iter()
        // dbt drops blank models and tests from what it runs.
        .filter(|u| {
            l.project.nodes.get(u).is_some_and(|n| types.contains(&n.resource_type) && n.materialized() != Materialization::Ephemeral && !is_empty_node(n))
        })
        .collect();
    let mut order = units_before_models(&l.project, l.dag.topo_order(&chosen));
    // quality checkpoints gate the layers of a build (src/quality/gate.rs)
    let mut gates = if kind == Kind::Build { Some(super::check::BuildGates::plan(&l, &chosen)?) } else { None };
    let mut extra_edges = if kind == Kind::Build {
        let mut e = test_gates(&l, &chosen);
        e.extend(crate::runner::unit::gates(&l.project, &chosen));
        e
    } else {
        vec![]
    };
    let mut opts = CompileOptions {
        existing: existing_tables(&l.project),
        full_refresh: a.full_refresh,
        empty: a.empty,
        sample: a
            .sample
            .as_deref()
            .map(|spec| crate::project::microbatch::sample_window(spec, crate::runner::microbatch::now()))
            .transpose()
            .map_err(|e| anyhow::anyhow!("--sample: {e}"))?,
        cache: crate::cli::context::render_cache(&l, g),
        ..Default::default()
    };
    // --defer: refs to unselected nodes missing here read the state's relations
    let deferral = crate::cli::defer::plan_run(&l, &a.select, &chosen)?;
    // Jinja may query the warehouse while compiling (run_query, statement,
    // adapter.get_columns_in_relation).
    let memory = a.memory_limit.as_deref().map(parse_size).transpose()?;
    let engine = Arc::new(Engine::new(&l.project, memory)?);
    engine.preflight().await?;
    if let Some(d) = deferral {
        d.apply(&engine, &l, &chosen, gates.as_mut().map(|g| &mut g.plans), printer).await?;
        opts.deferred = d.relations;
    }
    if let Some(db) = crate::engine::introspect::EngineDb::new(engine.clone()) {
        l.project.jinja.set_database(Arc::new(db));
    }
    l.project.jinja.set_selected(order.clone());
    let compiled = tokio::task::block_in_place(|| compile_prepared(&l.project, &order.iter().cloned().collect(), &opts, prepared))?;
    let deferred: Vec<String> = opts.deferred.keys().cloned().collect();
    write_compiled_and_manifest(&l, &compiled, opts.cache.as_ref())?;
    let count = |r: ResourceType| l.project.nodes.values().filter(|n| n.resource_type == r).count();
    let units = count(ResourceType::UnitTest);
    let snapshots = count(ResourceType::Snapshot);
    printer.info(format!(
        "Found {} models, {}{} seeds, {} data tests, {} sources, {} macros{}",
        count(ResourceType::Model),
        if snapshots > 0 { format!("{snapshots} snapshots, ") } else { String::new() },
        count(ResourceType::Seed),
        count(ResourceType::Test),
        count(ResourceType::Source),
        l.project.macros.len(),
        if units > 0 { format!(", {units} unit tests") } else { String::new() },
    ));
    if order.is_empty() {
        printer.warn("nothing to do: the selection matched no nodes");
        // dbt still writes a run_results.json, with no results.
        let args = Args { which: which.to_string(), full_refresh: a.full_refresh, ..crate::cli::defer::run_args(&a.select) };
        crate::runner::results::write_empty(&l.project, &l.invocation_id, &args)?;
        return Ok(ExitCode::SUCCESS);
    }
    printer.info(format!("Concurrency: {} threads (target='{}')", l.project.settings.target.threads, l.project.settings.target.name));
    printer.info("");
    let hooks_ctx =
        |which: &str, list: &[String]| -> anyhow::Result<Vec<String>> { list.iter().map(|h| Ok(l.project.jinja.render_str(which, h, None, &[])?)).collect() };
    if matches!(kind, Kind::Run | Kind::Build | Kind::Snapshot) {
        let start = hooks_ctx("on-run-start", &l.project.settings.on_run_start)?;
        run_statements(&engine, "on-run-start", &start).await?;
    }
    let lineage = openlineage_lineage(&l).await;
    let threads = l.project.settings.target.threads;
    let mut l = l;
    let mut virtual_nodes = std::collections::HashMap::new();
    if let Some(g) = &gates {
        g.apply(&mut l.project, &mut order, &mut extra_edges);
        virtual_nodes = g.virtual_nodes(l.project.settings.target_dir(), l.project.settings.project_name.clone(), threads);
    }
    let publisher = if kind == Kind::Test { None } else { crate::postgres::publisher(&l.project.settings)? };
    let project = Arc::new(l.project);
    let tests = TestFlags { store_failures: a.store_failures, show_failures: a.show_failures };
    let batchable = crate::cli::defer::batchable(&project, &order, &deferred);
    let batches = if batch::enabled() { Batches::plan(&project, &batchable, &compiled, tests) } else { Batches::default() };
    if !batches.is_empty() {
        tracing::debug!(tests = batches.len(), "column tests batched by relation");
    }
    let openlineage = lineage.map(|(t, lin)| Arc::new(Emitter::start(t, project.clone(), lin.map(Arc::new), &l.invocation_id, which)));
    let args = Args {
        which: which.to_string(),
        full_refresh: a.full_refresh,
        store_failures: a.store_failures,
        event_time_start: a.event_time_start.clone(),
        event_time_end: a.event_time_end.clone(),
        invocation_started_at: Some(microbatch.now),
        ..crate::cli::defer::run_args(&a.select)
    };
    microbatch.threads = threads;
    let microbatch = Arc::new(microbatch);
    let opts = RunOptions { threads, fail_fast: a.fail_fast, tests, batches: Arc::new(batches), extra_edges, publisher, virtual_nodes, microbatch };
    let reporter = Reporter { printer };
    let run_results = RunResultsFile::new(project.settings.target_dir(), &project, &l.invocation_id, args);
    let ol_sink = openlineage.as_deref().map(OpenLineageSink);
    let mut sinks: Vec<&dyn EventSink> = vec![&reporter, &run_results];
    if let Some(s) = &ol_sink {
        sinks.push(s);
    }
    sinks.extend(extra);
    let compiled = Arc::new(compiled);
    let res = execute(project.clone(), &order, compiled.clone(), engine.clone(), &Fanout(sinks), &opts).await;
    // microbatch models: each batch's SQL beside the model's, as dbt
    for (r, o) in res.iter().filter_map(|r| r.batches.as_ref().map(|o| (r, o))) {
        let dir = project.settings.target_dir().join("compiled");
        if let Err(e) = crate::runner::microbatch::write_compiled(&dir, &project.nodes[&r.unique_id], o) {
            printer.warn(format!("could not write the compiled SQL of {}'s batches: {e}", r.unique_id));
        }
    }
    if let Some(ol) = openlineage {
        let s = ol.finish(std::time::Duration::from_secs(5)).await;
        printer.info(format!("OpenLineage: {} events sent", s.sent));
        if s.dropped + s.failed > 0 {
            printer.warn(format!("OpenLineage: {} events dropped (queue full), {} failed to send", s.dropped, s.failed));
        }
    }
    if matches!(kind, Kind::Run | Kind::Build | Kind::Snapshot) {
        let end: Vec<String> = project.settings.on_run_end.iter().map(|h| project.jinja.render_str("on-run-end", h, None, &[])).collect::<Result<_, _>>()?;
        if let Err(e) = run_statements(&engine, "on-run-end", &end).await {
            printer.error(format!("{e:#}"));
        }
    }
    // Unit tests compile as they run, and so do nodes whose SQL depends on
    // the warehouse: their compiled files are those that ran.
    let ran_compiled =
        |r: &&crate::runner::NodeResult| project.nodes[&r.unique_id].resource_type == ResourceType::UnitTest || compiled.needs_recompile(&r.unique_id);
    for r in res.iter().filter(ran_compiled) {
        if let Some(sql) = &r.compiled_code {
            let path = project.settings.target_dir().join("compiled").join(crate::compile::compiled_path(&project.nodes[&r.unique_id]));
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&path, sql)?;
        }
    }
    if let Some(s) = engine.spills.summary(engine.memory.limit) {
        printer.info(format!("Queries {s}"));
    }
    run_results.finish()?;
    let ok = summarize(printer, &res, t.elapsed(), &project);
    if a.show_failures {
        show_failures(printer, &res, &project)?;
    }
    crate::util::drop_in_background((project, l.dag, compiled, engine, res, opts));
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// The OpenLineage transport (and namespace) the environment configures, with the
/// project's column lineage (planned in a session of its own; `None` if
/// it cannot be built, and the events then go without it).
async fn openlineage_lineage(l: &crate::cli::context::Loaded) -> Option<(Config, Option<crate::lineage::Lineage>)> {
    let config = Config::from_env(&|k| std::env::var(k).ok())?;
    let compiled = super::lineage::compile_models(l).ok();
    let engine = Engine::new(&l.project, None).ok();
    let lineage = match (compiled, engine) {
        (Some(c), Some(e)) => Some(crate::lineage::build::build(&l.project, &l.dag, &c, &e, l.parse_cache != crate::project::cache::Outcome::Disabled).await),
        _ => None,
    };
    Some((config, lineage))
}

/// Each unit test just before its model in the run order (as dbt numbers them).
fn units_before_models(project: &crate::project::load::Project, order: Vec<String>) -> Vec<String> {
    let set: IndexSet<String> = order.iter().cloned().collect();
    let gates = crate::runner::unit::gates(project, &set);
    let mut by_model: std::collections::HashMap<&str, Vec<&String>> = std::collections::HashMap::new();
    for (u, m) in &gates {
        if set.contains(m) {
            by_model.entry(m.as_str()).or_default().push(u);
        }
    }
    let moved: std::collections::HashSet<&String> = by_model.values().flatten().copied().collect();
    let mut out = Vec::with_capacity(order.len());
    for u in &order {
        if moved.contains(u) {
            continue;
        }
        for t in by_model.get(u.as_str()).into_iter().flatten() {
            out.push((*t).clone());
        }
        out.push(u.clone());
    }
    out
}

/// `dp build`'s extra edges: a test runs before the children of the nodes
/// it tests (unless that child is one of the test's own ancestors) and
/// before those children's unit tests.
fn test_gates(l: &crate::cli::context::Loaded, chosen: &IndexSet<String>) -> Vec<(String, String)> {
    // unit tests of each model: they wait like the model does
    let mut units: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
    for (u, m) in crate::runner::unit::gates(&l.project, chosen) {
        units.entry(m).or_default().push(u);
    }
    let mut edges = vec![];
    for t in chosen {
        let n = &l.project.nodes[t];
        if n.resource_type != ResourceType::Test {
            continue;
        }
        let ancestors = l.dag.ancestors(t, None);
        for p in &n.depends_on {
            for c in l.dag.children.get(p).into_iter().flatten() {
                let cn = &l.project.nodes[c];
                if chosen.contains(c) && !matches!(cn.resource_type, ResourceType::Test | ResourceType::UnitTest) && !ancestors.contains(c) {
                    edges.push((t.clone(), c.clone()));
                    for u in units.get(c).into_iter().flatten() {
                        edges.push((t.clone(), u.clone()));
                    }
                }
            }
        }
    }
    edges
}

/// OpenLineage START / COMPLETE / FAIL events from the run's events.
struct OpenLineageSink<'a>(&'a Emitter);

impl EventSink for OpenLineageSink<'_> {
    fn on_event(&self, event: &Event<'_>) {
        match event {
            Event::NodeStarted { node, .. } => self.0.node_started(node),
            // A skipped node never started: it has no run to close.
            Event::NodeFinished { node, result: r, .. } if r.status != crate::runner::Status::Skipped => {
                let outcome = if r.status.blocks() { Outcome::Fail } else { Outcome::Complete };
                self.0.node_finished(node, outcome, r.rows, r.status.blocks().then_some(r.message.as_str()));
            }
            _ => {}
        }
    }
}
