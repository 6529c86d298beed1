//! `dp run`, `dp seed`, `dp test` and `dp build`: compile, then execute the
//! selected nodes in parallel in DAG order, with dbt-style output and
//! target/run_results.json. `build` makes each node's children wait for its
//! tests, so an error-severity failure skips what depends on it.

use indexmap::IndexSet;
use std::process::ExitCode;
use std::sync::Arc;

use crate::cli::Printer;
use crate::cli::args::{GlobalArgs, RunArgs};
use crate::cli::context::{LoadArgs, load, select, write_compiled, write_manifest};
use crate::compile::{CompileOptions, compile};
use crate::engine::{Engine, existing_relations, parse_size};
use crate::project::nodes::ResourceType;
use crate::runner::batch::{self, Batches};
use crate::runner::test::TestFlags;
use crate::runner::{RunOptions, execute, results, run_statements, summarize};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Run,
    Seed,
    Test,
    Build,
}

impl Kind {
    fn which(self) -> &'static str {
        match self {
            Kind::Run => "run",
            Kind::Seed => "seed",
            Kind::Test => "test",
            Kind::Build => "build",
        }
    }

    fn types(self) -> Vec<ResourceType> {
        match self {
            Kind::Run => vec![ResourceType::Model],
            Kind::Seed => vec![ResourceType::Seed],
            Kind::Test => vec![ResourceType::Test, ResourceType::UnitTest],
            Kind::Build => vec![ResourceType::Model, ResourceType::Seed, ResourceType::Test, ResourceType::UnitTest],
        }
    }
}

pub async fn run(g: &GlobalArgs, a: &RunArgs, kind: Kind, printer: &Printer) -> anyhow::Result<ExitCode> {
    let t = std::time::Instant::now();
    let which = kind.which();
    let l = load(g, LoadArgs { threads: a.threads, full_refresh: a.full_refresh, which, store_failures: a.store_failures }, printer)?;
    let types = kind.types();
    let chosen: IndexSet<String> = select(&l, &a.select, types.clone())?
        .into_iter()
        .filter(|u| l.project.nodes.get(u).is_some_and(|n| types.contains(&n.resource_type) && n.materialized() != "ephemeral"))
        .collect();
    let order = units_before_models(&l.project, l.dag.topo_order(&chosen));
    let extra_edges = if kind == Kind::Build {
        let mut e = test_gates(&l, &chosen);
        e.extend(crate::runner::unit::gates(&l.project, &chosen));
        e
    } else {
        vec![]
    };
    let opts = CompileOptions { existing: existing_relations(&l.project), full_refresh: a.full_refresh };
    // Jinja may query the warehouse while compiling (run_query, statement,
    // adapter.get_columns_in_relation).
    let memory = a.memory_limit.as_deref().map(parse_size).transpose()?;
    let engine = Arc::new(Engine::new(&l.project, memory)?);
    engine.preflight().await?;
    if let Some(db) = crate::engine::introspect::EngineDb::new(engine.clone()) {
        l.project.jinja.set_database(Arc::new(db));
    }
    l.project.jinja.set_selected(order.clone());
    let compiled = tokio::task::block_in_place(|| compile(&l.project, &order.iter().cloned().collect(), &opts))?;
    write_compiled(&l, &compiled)?;
    write_manifest(&l, Some(&compiled))?;
    let count = |r: ResourceType| l.project.nodes.values().filter(|n| n.resource_type == r).count();
    let units = count(ResourceType::UnitTest);
    printer.info(format!(
        "Found {} models, {} seeds, {} data tests, {} sources, {} macros{}",
        count(ResourceType::Model),
        count(ResourceType::Seed),
        count(ResourceType::Test),
        count(ResourceType::Source),
        l.project.macros.len(),
        if units > 0 { format!(", {units} unit tests") } else { String::new() },
    ));
    if order.is_empty() {
        printer.warn("nothing to do: the selection matched no nodes");
        return Ok(ExitCode::SUCCESS);
    }
    printer.info(format!("Concurrency: {} threads (target='{}')", l.project.settings.target.threads, l.project.settings.target.name));
    printer.info("");
    let hooks_ctx =
        |which: &str, list: &[String]| -> anyhow::Result<Vec<String>> { list.iter().map(|h| Ok(l.project.jinja.render_str(which, h, None, &[])?)).collect() };
    if matches!(kind, Kind::Run | Kind::Build) {
        let start = hooks_ctx("on-run-start", &l.project.settings.on_run_start)?;
        run_statements(&engine, "on-run-start", &start).await?;
    }
    let threads = l.project.settings.target.threads;
    let publisher = if kind == Kind::Test { None } else { crate::postgres::publisher(&l.project.settings)? };
    let project = Arc::new(l.project);
    let tests = TestFlags { store_failures: a.store_failures, show_failures: a.show_failures };
    let batches = if batch::enabled() { Batches::plan(&project, &order, &compiled, tests) } else { Batches::default() };
    if !batches.is_empty() {
        tracing::debug!(tests = batches.len(), "column tests batched by relation");
    }
    let opts = RunOptions { threads, fail_fast: a.fail_fast, tests, batches: Arc::new(batches), extra_edges, publisher };
    let res = execute(project.clone(), &order, Arc::new(compiled), engine.clone(), printer, &opts).await;
    if matches!(kind, Kind::Run | Kind::Build) {
        let end: Vec<String> = project.settings.on_run_end.iter().map(|h| project.jinja.render_str("on-run-end", h, None, &[])).collect::<Result<_, _>>()?;
        if let Err(e) = run_statements(&engine, "on-run-end", &end).await {
            printer.error(format!("{e:#}"));
        }
    }
    // unit tests are compiled as they run
    for r in res.iter().filter(|r| project.nodes[&r.unique_id].resource_type == ResourceType::UnitTest) {
        if let Some(sql) = &r.compiled_code {
            let path = project.settings.target_dir().join("compiled").join(crate::compile::compiled_path(&project.nodes[&r.unique_id]));
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&path, sql)?;
        }
    }
    let elapsed = t.elapsed();
    let rr = results::run_results(&project, &res, elapsed.as_secs_f64(), &l.invocation_id, which);
    results::write(&project.settings.target_dir(), &rr)?;
    let ok = summarize(printer, &res, elapsed, &project);
    if a.show_failures {
        crate::runner::failures::print(printer, &res, &project)?;
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
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
